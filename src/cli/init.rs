//! `stackato-local init`: recognise the app in the directory and write a commented
//! `stackato.yml` for it, printing each guess and its reason.

use std::io::Write;

use crate::cli::Global;
use crate::diag::display_path;
use crate::exit;
use crate::onboard::detect::{DetectError, Kind};
use crate::onboard::init::{self, Gitignore, InitError, Request};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The application's name (default: the directory's name, lower-cased, other characters
    /// than a-z, 0-9 and - replaced by -).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// Replace an existing stackato.yml (or write one beside a manifest.yml).
    #[arg(long)]
    pub force: bool,
    /// Print the manifest instead of writing it; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// What kind of app it is, when detection guesses wrong or finds nothing.
    #[arg(long, value_name = "KIND", value_parser = clap::builder::PossibleValuesParser::new(Kind::IDS))]
    pub kind: Option<String>,
}

pub(super) fn run(g: &Global, args: &Args) -> i32 {
    let mut err = anstream::stderr();
    let req = Request {
        dir: g.load.dir.clone(),
        manifest: g.load.manifest.clone(),
        name: args.name.clone(),
        kind: args.kind.as_deref().and_then(Kind::from_id),
        force: args.force,
        dry_run: args.dry_run,
    };
    let out = match init::init(&req) {
        Ok(o) => o,
        Err(e) => {
            let _ = writeln!(err, "error: {e}");
            return match e {
                InitError::Exists(_) | InitError::BadName(_) => exit::USAGE,
                InitError::Detect(DetectError::Unrecognised { .. }) => {
                    let _ = writeln!(
                        err,
                        "help: say what it is with --kind ({})",
                        Kind::IDS.join(", ")
                    );
                    exit::USAGE
                }
                InitError::Detect(DetectError::Unreadable { .. }) | InitError::Write { .. } => {
                    exit::IO
                }
            };
        }
    };
    let bold = anstyle::Style::new().bold();
    let (b, r) = if g.ui.color_err {
        (bold.render().to_string(), bold.render_reset().to_string())
    } else {
        (String::new(), String::new())
    };
    let _ = writeln!(
        err,
        "{b}{}{r} in {}:",
        capitalised(out.detection.kind.describe()),
        display_path(&g.load.dir)
    );
    let _ = writeln!(err, "  name {} ({})", out.name, out.name_why);
    for line in out.detection.explain() {
        let _ = writeln!(err, "  {line}");
    }
    for note in &out.detection.notes {
        let _ = writeln!(err, "note: {note}");
    }
    let shown = display_path(&out.path);
    if args.dry_run {
        let _ = writeln!(err, "--dry-run: {shown} not written; it would be:");
        let _ = err.flush();
        let _ = std::io::stdout().write_all(out.text.as_bytes());
        return exit::OK;
    }
    if let Some(p) = &out.replaced {
        let _ = writeln!(err, "replaced {} (--force)", display_path(p));
    }
    let _ = writeln!(err, "wrote {shown}");
    if let Some(p) = &out.shadowed {
        let _ = writeln!(
            err,
            "note: {} is left as it was; {shown} takes precedence over it",
            display_path(p)
        );
    }
    match &out.gitignore {
        Some(Gitignore::Added) => {
            let _ = writeln!(err, "added /.stackato-local/ to .gitignore");
        }
        Some(Gitignore::Created) => {
            let _ = writeln!(
                err,
                "created .gitignore with /.stackato-local/ (the state directory: service data, credentials, logs)"
            );
        }
        Some(Gitignore::AlreadyIgnored) | None => {}
        Some(Gitignore::Failed(why)) => {
            let _ = writeln!(
                err,
                "warning: .stackato-local/ is not in .gitignore ({why}); keep it out of version control, it holds credentials"
            );
        }
    }
    let _ = writeln!(
        err,
        "next: stackato-local check, then stackato-local doctor, then stackato-local run"
    );
    exit::OK
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}
