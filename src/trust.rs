//! Trust before running a project's commands, as direnv does: the first `run` of a freshly
//! cloned project shows every command its manifest would run (hooks, web and worker commands,
//! cron) and asks; the answer is kept outside the project (a repository cannot ship its own
//! trust), keyed by the manifest's path and a digest of those commands, so a change to any of
//! them asks again. `--trust` (or STACKATO_LOCAL_TRUST=1) skips the question, for CI.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};

use crate::manifest::Loaded;
use crate::manifest::model::Web;

/// Every command the manifest would run, as (what, command) pairs.
pub fn commands(loaded: &Loaded) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for app in &loaded.manifest.apps {
        let n = &app.name.value;
        for (stage, hooks) in [
            ("pre-staging", &app.hooks.pre_staging),
            ("post-staging", &app.hooks.post_staging),
            ("pre-running", &app.hooks.pre_running),
        ] {
            for h in hooks {
                out.push((format!("{n} {stage} hook"), h.command.clone()));
            }
        }
        match &app.web {
            Web::Command(c) => out.push((format!("{n} web"), c.value.clone())),
            Web::Worker | Web::Default => {}
        }
        if let Some(c) = &app.command {
            out.push((format!("{n} command"), c.value.clone()));
        }
        for c in &app.cron {
            out.push((format!("{n} cron"), c.value.clone()));
        }
        // The app's own crontab file runs too.
        if let Ok(t) = std::fs::read_to_string(app.path.join("crontab")) {
            for l in t
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
            {
                out.push((format!("{n} crontab"), l.to_string()));
            }
        }
    }
    out
}

/// A digest of the commands and the manifest's location.
pub fn digest(loaded: &Loaded) -> String {
    let mut h = crate::fnv::Fnv::new();
    h.field(loaded.file.display().to_string().as_bytes());
    for (what, cmd) in commands(loaded) {
        h.field(what.as_bytes());
        h.field(cmd.as_bytes());
    }
    h.hex()
}

/// Where trust is recorded: `$XDG_DATA_HOME/stackato-local/trusted` (else
/// `~/.local/share/…`).
pub fn store() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".local").join("share"))
        })?;
    Some(base.join("stackato-local").join("trusted"))
}

/// A digest of the manifest's files and the project's `.env` files, for the shell hook: a
/// changed file needs allowing again.
pub fn files_digest(loaded: &Loaded) -> String {
    let mut h = crate::fnv::Fnv::new();
    for f in loaded.sources.files() {
        h.field(f.path.display().to_string().as_bytes());
        h.field(f.text.as_bytes());
    }
    for e in dotenv_files(loaded) {
        h.field(e.display().to_string().as_bytes());
        h.field(&std::fs::read(&e).unwrap_or_default());
    }
    h.hex()
}

/// The `.env` files the environment reads by default, for every app.
pub fn dotenv_files(loaded: &Loaded) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = Vec::new();
    for app in &loaded.manifest.apps {
        for f in crate::env::user::default_dotenv_files(&loaded.manifest.dir, &app.path) {
            if !v.contains(&f) {
                v.push(f);
            }
        }
    }
    v
}

/// What trust covers: `run` (the commands) or `env` (the files, for the shell hook).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Run,
    Env,
}

fn line(loaded: &Loaded, kind: Kind) -> String {
    match kind {
        Kind::Run => format!("run {} {}", digest(loaded), loaded.file.display()),
        Kind::Env => format!("env {} {}", files_digest(loaded), loaded.file.display()),
    }
}

pub fn is_trusted(loaded: &Loaded) -> bool {
    is_trusted_for(loaded, Kind::Run)
}

pub fn is_trusted_for(loaded: &Loaded, kind: Kind) -> bool {
    let Some(p) = store() else { return false };
    let want = line(loaded, kind);
    std::fs::read_to_string(p)
        .map(|t| t.lines().any(|l| l == want))
        .unwrap_or(false)
}

/// Record trust for both `run` and the shell hook (replacing older digests of this manifest).
pub fn allow(loaded: &Loaded) -> Result<PathBuf, String> {
    let p = store().ok_or("neither XDG_DATA_HOME nor HOME is set")?;
    let dir = p.parent().unwrap_or(Path::new("."));
    crate::state::create_private_dir(dir).map_err(|e| e.to_string())?;
    let file = loaded.file.display().to_string();
    let mut lines: Vec<String> = std::fs::read_to_string(&p)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.splitn(3, ' ').nth(2).is_none_or(|f| f != file))
        .map(str::to_string)
        .collect();
    lines.push(line(loaded, Kind::Run));
    lines.push(line(loaded, Kind::Env));
    let mut text = lines.join("\n");
    text.push('\n');
    crate::state::write_atomic(&p, text.as_bytes()).map_err(|e| e.to_string())?;
    Ok(p)
}

/// How the check ended.
pub enum Decision {
    Trusted,
    /// Refused at the prompt, or nobody to ask.
    Refused(String),
}

/// Check trust; ask on a terminal; `assume` (--trust) records it without asking.
pub fn check(loaded: &Loaded, assume: bool) -> Decision {
    let cmds = commands(loaded);
    if cmds.is_empty() || is_trusted(loaded) {
        return Decision::Trusted;
    }
    let env_trust = std::env::var("STACKATO_LOCAL_TRUST").is_ok_and(|v| v == "1");
    if assume || env_trust {
        // Trusted for this run only; `stackato-local allow` records it.
        return Decision::Trusted;
    }
    let listing: String = cmds.iter().map(|(w, c)| format!("  {w}: {c}\n")).collect();
    if !std::io::stdin().is_terminal() {
        return Decision::Refused(format!(
            "{} runs these commands, and they have not been trusted on this machine yet:\n{listing}review them, then run `stackato-local allow` (or pass --trust)",
            crate::diag::display_path(&loaded.file)
        ));
    }
    let mut err = std::io::stderr();
    let _ = write!(
        err,
        "{} will run these commands on your machine:\n{listing}Trust them and run? [y/N] ",
        crate::diag::display_path(&loaded.file)
    );
    let _ = err.flush();
    let mut answer = String::new();
    let _ = std::io::stdin().read_line(&mut answer);
    if matches!(answer.trim(), "y" | "Y" | "yes" | "Yes") {
        let _ = allow(loaded);
        Decision::Trusted
    } else {
        Decision::Refused("not trusted: nothing was run".into())
    }
}
