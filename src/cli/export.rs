//! `stackato-local export --format cf|compose|procfile|systemd`: write the manifest as another
//! platform's configuration, then say what was written and what could not be carried over.
//! Passwords go only into files (0600), never to the terminal.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use crate::cli::{Global, print_diagnostics, report_load_error, terminal_asker};
use crate::diag::display_path;
use crate::exit;
use crate::export::{self, Format, Input, WriteError};
use crate::manifest;
use crate::random::OsRng;
use crate::services::registry;
use crate::state::StateDir;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum FormatArg {
    /// Cloud Foundry: manifest.yml, cf-services.sh, .profile.
    Cf,
    /// docker compose: compose.yaml and .env.compose (credentials).
    Compose,
    /// Procfile and .env, for foreman, honcho, heroku local.
    Procfile,
    /// systemd units (.service, .timer) and their EnvironmentFile.
    Systemd,
}

impl FormatArg {
    fn format(self) -> Format {
        match self {
            FormatArg::Cf => Format::Cf,
            FormatArg::Compose => Format::Compose,
            FormatArg::Procfile => Format::Procfile,
            FormatArg::Systemd => Format::Systemd,
        }
    }
}

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// What to write.
    #[arg(long, value_enum, value_name = "FORMAT")]
    pub format: FormatArg,
    /// Where to write the files (default: stackato-export/<format>/ beside the manifest).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Only this application (default: all, in start order).
    #[arg(long, value_name = "NAME")]
    pub app: Option<String>,
    /// Overwrite files that already exist.
    #[arg(long)]
    pub force: bool,
}

pub(super) fn run(g: &Global, args: &Args) -> i32 {
    let mut asker = terminal_asker();
    let loaded = match manifest::load(&g.load, &mut asker) {
        Ok(l) => l,
        Err(e) => return report_load_error(g, &e),
    };
    print_diagnostics(g, &loaded.sources, &loaded.warnings);
    let m = &loaded.manifest;
    let apps: Vec<&manifest::App> = m
        .start_order()
        .into_iter()
        .filter(|a| args.app.as_ref().is_none_or(|n| *n == a.name.value))
        .collect();
    if let Some(name) = &args.app
        && apps.is_empty()
    {
        eprintln!(
            "error: no application named \"{name}\" in {} (it has: {})",
            display_path(&loaded.file),
            m.apps
                .iter()
                .map(|a| a.name.value.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        return exit::USAGE;
    }
    if apps.is_empty() {
        eprintln!(
            "error: {} describes no application",
            display_path(&loaded.file)
        );
        return exit::INVALID_MANIFEST;
    }
    let format = args.format.format();
    let out_dir = match &args.out {
        Some(d) => std::path::absolute(d).unwrap_or_else(|_| d.clone()),
        None => {
            let d = m.dir.join("stackato-export").join(format.name());
            // The repository may ship `stackato-export/<format>` as a link out of the project
            // (to `~`, where `.profile` would run at the next login): never write through one.
            if let Some(link) = link_below(&m.dir, &d) {
                eprintln!(
                    "error: {} is a symbolic link (to {}); nothing was written",
                    display_path(&link),
                    std::fs::read_link(&link)
                        .map(|t| crate::trust::display::path(&t))
                        .unwrap_or_default()
                );
                eprintln!("help: remove it, or choose where to write with --out DIR");
                return exit::USAGE;
            }
            d
        }
    };

    // The project's own credentials, read only: exporting never provisions anything.
    let state = StateDir::at(&m.dir);
    let registry = match registry::load(&state) {
        Ok(r) if !r.services.is_empty() => Some(r),
        Ok(_) => None,
        Err(e) => {
            eprintln!("warning: {e}; not using the project's service credentials");
            None
        }
    };
    let answers: BTreeMap<String, BTreeMap<String, String>> = state
        .read_json("answers.json")
        .ok()
        .flatten()
        .unwrap_or_default();
    let target = manifest::Target {
        url: g.load.target_url.clone(),
        random_word: String::new(),
    };
    let input = Input {
        manifest: m,
        apps,
        registry,
        answers,
        out_dir: out_dir.clone(),
        domain: target.target_base(),
    };
    let ex = match export::export(format, &input, &mut OsRng) {
        Ok(ex) => ex,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::IO;
        }
    };

    let written = match export::write(&out_dir, &ex.files, args.force) {
        Ok(p) => p,
        Err(WriteError::Exists(paths)) => {
            eprintln!("error: {}", WriteError::Exists(paths));
            eprintln!(
                "help: nothing was written; pass --force to overwrite, or choose another directory with --out DIR"
            );
            return exit::USAGE;
        }
        Err(e) => {
            eprintln!("error: {e}");
            return exit::IO;
        }
    };

    let mut out = anstream::stdout();
    let bold = anstyle::Style::new().bold();
    let (b, r) = if g.ui.color_out {
        (bold.render().to_string(), bold.render_reset().to_string())
    } else {
        (String::new(), String::new())
    };
    let names: Vec<&str> = input.apps.iter().map(|a| a.name.value.as_str()).collect();
    let shown_dir = display_path(&out_dir);
    let _ = writeln!(
        out,
        "{b}Exported {} as {} into {}/{r}",
        names.join(", "),
        format.name(),
        shown_dir.trim_end_matches('/')
    );
    let _ = writeln!(out, "Files written:");
    for (f, p) in ex.files.iter().zip(&written) {
        let why = match (f.secret, f.executable) {
            (true, _) => format!("  (mode {:04o}: holds credentials)", f.mode()),
            (false, true) => "  (executable)".to_string(),
            _ => String::new(),
        };
        let _ = writeln!(out, "  {}{why}", display_path(p));
    }
    let _ = writeln!(out, "Not carried over:");
    if ex.not_carried.is_empty() {
        let _ = writeln!(out, "  (nothing)");
    }
    for l in &ex.not_carried {
        let _ = writeln!(out, "  - {l}");
    }
    if !ex.notes.is_empty() {
        let _ = writeln!(out, "Notes:");
        for l in &ex.notes {
            let _ = writeln!(out, "  - {l}");
        }
    }
    if !ex.next_steps.is_empty() {
        let _ = writeln!(out, "Next:");
        if matches!(format, Format::Cf | Format::Compose) {
            let _ = writeln!(out, "  cd {}", crate::shell::word(&shown_dir));
        }
        for l in &ex.next_steps {
            let _ = writeln!(out, "  {l}");
        }
    }
    exit::OK
}

/// The first path from `base` (excluded) down to `dir` that is a symbolic link.
fn link_below(base: &std::path::Path, dir: &std::path::Path) -> Option<PathBuf> {
    let rel = dir.strip_prefix(base).ok()?;
    let mut cur = base.to_path_buf();
    for c in rel.components() {
        cur.push(c);
        match std::fs::symlink_metadata(&cur) {
            Ok(md) if md.file_type().is_symlink() => return Some(cur),
            Ok(_) => {}
            Err(_) => return None,
        }
    }
    None
}
