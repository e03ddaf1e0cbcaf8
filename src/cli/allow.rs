//! `stackato-local allow`: show everything the project would run (commands, installers that run
//! its code, variables that change how programs run, files inherited from outside it) and
//! record trust outside the project; `allow --list` shows what is trusted; `deny` revokes.

use std::path::PathBuf;

use crate::cli::{Global, report_load_error, terminal_asker};
use crate::exit;
use crate::trust::{self, Standing, display};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// List the trusted projects and whether their files still match, instead.
    #[arg(long)]
    pub list: bool,
    /// Also adopt a `.stackato-local` this machine's stackato-local did not create (one an
    /// earlier version made here; never one that came with the repository).
    #[arg(long)]
    pub adopt_state: bool,
}

#[derive(Debug, clap::Args)]
pub(crate) struct DenyArgs {
    /// The project directory (default: the current one, or -C DIR).
    #[arg(value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

pub(super) fn run(g: &Global, args: &Args) -> i32 {
    if args.list {
        return list();
    }
    let mut opts = g.load.clone();
    // `allow` reads inherited files outside the project, to show them and record them.
    opts.outside_all = true;
    let mut asker = terminal_asker();
    let loaded = match crate::manifest::load(&opts, &mut asker) {
        Ok(l) => l,
        Err(e) => return report_load_error(g, &e),
    };
    crate::cli::print_warnings_brief(&loaded.sources, &loaded.warnings);
    crate::cli::trust_prompt::old_store_notice();
    let previous = trust::Store::load().ok().and_then(|(_, s)| {
        s.projects
            .get(&trust::record::manifest_key(&loaded.file))
            .cloned()
    });
    let foreign = crate::state::StateDir::foreign(&loaded.manifest.dir);
    match trust::allow(&loaded) {
        Ok((r, path)) => {
            let file = display::rel_path(&loaded.file);
            if let Some(contents) = &foreign
                && args.adopt_state
            {
                if let Err(e) = crate::state::StateDir::open_with(&loaded.manifest.dir, true) {
                    eprintln!("error: {e}");
                    return e.exit_code();
                }
                println!(
                    "adopted {} (it holds: {contents}): the tool uses what is in it from now on",
                    crate::state::DIR_NAME
                );
            }
            if !r.outside.is_empty() {
                println!(
                    "{file} INHERITS FILES FROM OUTSIDE ITS DIRECTORY (they are read and trusted too):"
                );
                for o in &r.outside {
                    println!("  {}", display::escape(o));
                }
            }
            if let Some(old) = previous {
                let d = old.diff(&r);
                if !d.is_empty() {
                    print!("changed since it was last allowed:\n{}", display::diff(&d));
                }
            }
            if r.shown.is_empty() {
                println!("{file} runs no commands of its own (its files are covered all the same)");
            } else {
                println!("{file} runs:");
                print!("{}", display::listing(&r.shown));
            }
            println!("trusted (recorded in {})", display::path(&path));
            match foreign {
                Some(contents) if !args.adopt_state => {
                    eprintln!(
                        "error: {}",
                        crate::state::StateError::Foreign {
                            path: loaded.manifest.dir.join(crate::state::DIR_NAME),
                            contents,
                        }
                    );
                    exit::UNTRUSTED
                }
                _ => exit::OK,
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            e.exit_code()
        }
    }
}

/// A UTC date and time for seconds since the epoch.
fn date(secs: u64) -> String {
    let t = secs as libc::time_t;
    // SAFETY: gmtime_r writes only into the tm we pass.
    let tm = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::gmtime_r(&t, &mut tm).is_null() {
            return secs.to_string();
        }
        tm
    };
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02} UTC",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min
    )
}

fn list() -> i32 {
    crate::cli::trust_prompt::old_store_notice();
    let all = match trust::list() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::IO;
        }
    };
    if all.is_empty() {
        println!("no project is trusted on this machine");
        return exit::OK;
    }
    for (r, st) in all {
        let state = match st {
            Standing::Matching => "files unchanged".to_string(),
            Standing::Gone => "gone (the manifest no longer exists)".to_string(),
            Standing::Changed(files) => format!(
                "changed since allowed: {}",
                files
                    .iter()
                    .map(|f| display::escape(f))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        };
        println!(
            "{}  (allowed {}; {state})",
            display::escape(&r.manifest),
            date(r.allowed_at)
        );
    }
    exit::OK
}

pub(super) fn deny(g: &Global, args: &DenyArgs) -> i32 {
    let (dir, manifest) = match &args.dir {
        Some(d) => (d.clone(), None),
        None => (g.load.dir.clone(), g.load.manifest.clone()),
    };
    match trust::deny(&dir, manifest.as_deref()) {
        Ok(gone) if gone.is_empty() => {
            println!("{} was not trusted", display::path(&dir));
            exit::OK
        }
        Ok(gone) => {
            for m in gone {
                println!("no longer trusted: {}", display::escape(&m));
            }
            exit::OK
        }
        Err(e) => {
            eprintln!("error: {e}");
            exit::IO
        }
    }
}
