//! `stackato-local allow`: show the commands the manifest would run and trust them on this
//! machine (recorded outside the project, keyed by the manifest and a digest of the commands).

use crate::cli::Global;
use crate::exit;

pub fn run(g: &Global) -> i32 {
    let (loaded, _state) = match crate::cli::services::open(g) {
        Ok(x) => x,
        Err(c) => return c,
    };
    let cmds = crate::trust::commands(&loaded);
    if cmds.is_empty() {
        println!(
            "{} runs no commands of its own",
            crate::diag::display_path(&loaded.file)
        );
    } else {
        println!("{} runs:", crate::diag::display_path(&loaded.file));
        for (what, c) in &cmds {
            println!("  {what}: {c}");
        }
    }
    match crate::trust::allow(&loaded) {
        Ok(p) => {
            println!("trusted (recorded in {})", p.display());
            exit::OK
        }
        Err(e) => {
            eprintln!("error: cannot record trust: {e}");
            exit::IO
        }
    }
}
