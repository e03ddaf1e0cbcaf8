//! `stackato-local doctor`: one ✔/✘ line per thing this manifest's apps need on this machine,
//! with install commands for Debian/Ubuntu, Fedora and macOS under each failure. Exit 0 when
//! everything is there, 1 (the "warnings" code) when something is missing.

use std::io::Write;

use crate::cli::{Global, print_diagnostics, report_load_error, terminal_asker};
use crate::diag::display_path;
use crate::exit;
use crate::manifest::{self, LoadError};
use crate::onboard::doctor::{self, Check, Fix};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Only what this application needs.
    #[arg(long, value_name = "NAME")]
    pub app: Option<String>,
}

pub(super) fn run(g: &Global, args: &Args) -> i32 {
    let mut asker = terminal_asker();
    let loaded = match manifest::load(&g.load, &mut asker) {
        Ok(l) => l,
        Err(e) => {
            let code = report_load_error(g, &e);
            if matches!(e, LoadError::NotFound { .. }) {
                let _ = writeln!(
                    anstream::stderr(),
                    "help: `stackato-local init` writes a stackato.yml for the app in this directory"
                );
            }
            return code;
        }
    };
    print_diagnostics(g, &loaded.sources, &loaded.warnings);
    if let Some(name) = &args.app
        && loaded.manifest.app(name).is_none()
    {
        let names: Vec<&str> = loaded
            .manifest
            .apps
            .iter()
            .map(|a| a.name.value.as_str())
            .collect();
        eprintln!(
            "error: no application named \"{name}\" in {} (it has: {})",
            display_path(&loaded.file),
            names.join(", ")
        );
        return exit::USAGE;
    }
    let apps: Vec<String> = loaded
        .manifest
        .start_order()
        .into_iter()
        .filter(|a| args.app.as_ref().is_none_or(|n| *n == a.name.value))
        .map(|a| a.name.value.clone())
        .collect();
    let mut out = anstream::stdout();
    let _ = writeln!(
        out,
        "What {} needs on this machine ({}):",
        display_path(&loaded.file),
        apps.join(", ")
    );
    let checks = doctor::checks(&loaded, args.app.as_deref());
    for c in &checks {
        let _ = write!(out, "{}", render(c, g.ui.color_out));
    }
    let failed = checks.iter().filter(|c| !c.ok).count();
    if failed == 0 {
        let _ = writeln!(out, "All {} checks passed.", checks.len());
        exit::OK
    } else {
        let _ = writeln!(
            out,
            "{failed} of {} checks failed: install what is missing, then run `stackato-local doctor` again.",
            checks.len()
        );
        exit::WARNINGS
    }
}

/// One check: its ✔/✘ line, and under a failure how to fix it.
fn render(c: &Check, color: bool) -> String {
    let (mark, style) = if c.ok {
        (
            "✔",
            anstyle::Style::new().fg_color(Some(anstyle::AnsiColor::Green.into())),
        )
    } else {
        (
            "✘",
            anstyle::Style::new()
                .bold()
                .fg_color(Some(anstyle::AnsiColor::Red.into())),
        )
    };
    let mark = if color {
        format!("{}{mark}{}", style.render(), style.render_reset())
    } else {
        mark.to_string()
    };
    let mut s = format!("{mark} {}: {}\n", c.label, c.detail);
    match &c.fix {
        Some(Fix::Install {
            debian,
            fedora,
            macos,
        }) => {
            s.push_str(&format!("    Debian/Ubuntu: {debian}\n"));
            s.push_str(&format!("    Fedora:        {fedora}\n"));
            s.push_str(&format!("    macOS:         {macos}\n"));
        }
        Some(Fix::Hint(h)) => s.push_str(&format!("    fix: {h}\n")),
        None => {}
    }
    s
}
