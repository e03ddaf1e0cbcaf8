//! `stackato-local check`: validate the manifest and print every problem at once.

use std::io::Write;

use crate::cli::{Global, print_diagnostics, report_load_error, terminal_asker};
use crate::diag::{Diagnostic, Sources, display_path};
use crate::exit;
use crate::manifest::{self, LoadError};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// Snippets with carets and hints.
    Human,
    /// One `file:line:col: severity: message` line per problem.
    Short,
}

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Exit with 1 when there are warnings (and no errors).
    #[arg(long)]
    pub strict: bool,
    /// How to print problems.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
}

pub(super) fn run(g: &Global, args: &Args) -> i32 {
    let mut asker = terminal_asker();
    match manifest::load(&g.load, &mut asker) {
        Ok(l) => {
            let mut warnings = l.warnings.clone();
            warnings.extend(start_warnings(&l.manifest));
            warnings.extend(
                l.manifest
                    .apps
                    .iter()
                    .filter_map(crate::platform::web::node_main_missing),
            );
            warnings.extend(
                l.manifest
                    .apps
                    .iter()
                    .filter_map(crate::stage::copy::unsafe_links_warning),
            );
            // A declared runtime not installed here (what `run` warns about too).
            warnings.extend(
                l.manifest
                    .apps
                    .iter()
                    .flat_map(|a| crate::platform::runtime::diagnostics(a, &a.path)),
            );
            warnings.extend(
                l.manifest
                    .apps
                    .iter()
                    .flat_map(crate::platform::php_ext::missing)
                    .map(|m| Diagnostic::warning(m.message()).at(m.at).hint(m.hint())),
            );
            warnings.extend(route_warnings(g, &l.manifest));
            print(g, args, &l.sources, &warnings);
            let n = warnings.len();
            let names: Vec<&str> = l
                .manifest
                .apps
                .iter()
                .map(|a| a.name.value.as_str())
                .collect();
            let mut out = anstream::stdout();
            let _ = writeln!(
                out,
                "{}: valid, {} application{} ({}){}",
                display_path(&l.file),
                names.len(),
                if names.len() == 1 { "" } else { "s" },
                names.join(", "),
                match n {
                    0 => String::new(),
                    1 => ", 1 warning".into(),
                    n => format!(", {n} warnings"),
                }
            );
            if args.strict && n > 0 {
                exit::WARNINGS
            } else {
                exit::OK
            }
        }
        Err(LoadError::Invalid {
            sources,
            file,
            diagnostics,
        }) => {
            print(g, args, &sources, &diagnostics);
            let errors = diagnostics.iter().filter(|d| d.is_error()).count();
            let warnings = diagnostics.len() - errors;
            let _ = writeln!(
                anstream::stderr(),
                "{}: invalid, {errors} error{}{}",
                display_path(&file),
                if errors == 1 { "" } else { "s" },
                match warnings {
                    0 => String::new(),
                    1 => ", 1 warning".into(),
                    n => format!(", {n} warnings"),
                }
            );
            exit::INVALID_MANIFEST
        }
        Err(e) => report_load_error(g, &e),
    }
}

/// A warning at the framework key (or the app's name) for each app `run` cannot start here.
fn start_warnings(m: &crate::manifest::Manifest) -> Vec<Diagnostic> {
    m.apps
        .iter()
        .filter_map(|a| {
            let c = crate::plan::cannot_start(a, &m.dir)?;
            let at = a
                .framework
                .as_ref()
                .and_then(|f| f.name_span)
                .unwrap_or(a.name.span);
            Some(
                Diagnostic::warning(format!("`run` cannot start {}: {}", a.name.value, c.what))
                    .at(at)
                    .hint(c.fix()),
            )
        })
        .collect()
}

/// A warning at `urls:` for each URL the router cannot serve and each local name an app
/// before it has (what `run` notes at start).
fn route_warnings(g: &Global, m: &crate::manifest::Manifest) -> Vec<Diagnostic> {
    let names =
        crate::platform::routes::of_manifest(m, &crate::plan::facts(&g.load.target_url).domain);
    let mut out = Vec::new();
    for (name, n) in &names {
        let Some(app) = m.apps.iter().find(|a| a.name.value == *name) else {
            continue;
        };
        let at = app.urls_span.unwrap_or(app.name.span);
        for url in &n.unusable {
            out.push(
                Diagnostic::warning(format!(
                    "the router cannot serve the URL `{}` of {name}: it is not a host name of ASCII letters, digits and `-`",
                    crate::trust::display::escape(url)
                ))
                .at(at)
                .hint("`run` leaves it out; write the host name in ASCII (punycode: `xn--…`)"),
            );
        }
        for (host, other) in &n.shared {
            out.push(
                Diagnostic::warning(format!(
                    "{host}, the router's name for a URL of {name}, is {other}'s already ({other} starts first): it goes to {other}"
                ))
                .at(at)
                .hint(format!("{name} still answers at its other names; give it a URL of its own to reach it there")),
            );
        }
    }
    out
}

fn print(g: &Global, args: &Args, sources: &Sources, diags: &[Diagnostic]) {
    match args.format {
        Format::Human => print_diagnostics(g, sources, diags),
        Format::Short => {
            let mut err = anstream::stderr();
            for d in diags {
                let _ = writeln!(err, "{}", d.short(sources));
            }
        }
    }
}
