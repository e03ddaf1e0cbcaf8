//! The Node or Ruby interpreter an app runs on, on its PATH: when it is not the `node`/`ruby`
//! of PATH (an nvm, fnm, volta, rbenv, asdf or mise version the app declares), its `bin/` goes
//! first on the PATH of staging and of every process of the app (web, workers, cron, `exec`,
//! `ssh`), so `node`, `npm`, `npx`, `ruby`, `gem` and `bundle` are that version's, and
//! `VCAP_APPLICATION.runtime` names it. The same for the Python a non-Python app declares
//! (`framework: standalone` with `runtime: python27` and `command: python main.py`): its
//! `python` is the declared one (a Python app gets it through its virtualenv instead). The choice `run` made is remembered per app, so an
//! environment built without running an interpreter (the shell hook) agrees with it.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};

use crate::manifest::App;
use crate::model::env_set::EnvSet;
use crate::platform::runtime::{self, Interpreter, Lang, Version};
use crate::state::StateDir;

/// The interpreter used and the directory put first on PATH (`None`: PATH's own).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Used {
    pub interp: Interpreter,
    pub bin: Option<PathBuf>,
}

/// What `run` chose for an app, kept in its state dir.
#[derive(Debug, Serialize, Deserialize)]
struct Record {
    /// The declaration it was chosen for, as written (`None`: nothing declared).
    declared: Option<String>,
    lang: String,
    path: PathBuf,
    version: String,
    from: String,
    bin: Option<PathBuf>,
}

static FILES_ONLY: AtomicBool = AtomicBool::new(false);

/// For this process, never run an interpreter to build an environment (the shell hook, at
/// every prompt): only what `run` remembered is used.
pub(crate) fn set_files_only() {
    FILES_ONLY.store(true, Ordering::Relaxed);
}

fn record_rel(app: &App) -> String {
    format!(
        "apps/{}/interpreter.json",
        crate::state::component(&app.name.value)
    )
}

/// `node` / `ruby` / `python` (the name the app's commands call).
fn program(lang: Lang) -> &'static str {
    match lang {
        Lang::Node => "node",
        Lang::Ruby => "ruby",
        Lang::Python => "python",
    }
}

/// The language whose interpreter goes on `app`'s PATH here: a Node or Ruby app's, or the
/// Python a non-Python app declares (a Python app's is its virtualenv's). Files read only.
fn node_or_ruby(app: &App) -> Option<Lang> {
    let flag = runtime::flags().runtime;
    let declared = runtime::declared(app, &app.path, flag.as_deref()).map(|d| d.lang);
    if declared == Some(Lang::Python) && !super::web::is_python_app(app) {
        return declared;
    }
    declared
        .or_else(|| runtime::app_lang(app, &app.path))
        .filter(|l| matches!(l, Lang::Node | Lang::Ruby))
}

/// The declaration as a key of the record (files read only).
fn declared_text(app: &App) -> Option<String> {
    let flag = runtime::flags().runtime;
    runtime::declared(app, &app.path, flag.as_deref())
        .map(|d| format!("{} {:?}", d.text, d.version))
}

/// The interpreter chosen now (interpreters are asked their version; cached per process).
pub(crate) fn live(app: &App) -> Option<Used> {
    let lang = node_or_ruby(app)?;
    let interp = runtime::resolve(app, &app.path)?.chosen?;
    if interp.lang != lang {
        return None;
    }
    let path_one = crate::programs::find(program(lang));
    let dir = interp.path.parent().map(Path::to_path_buf);
    let bin = dir.filter(|d| path_one.as_deref().and_then(Path::parent) != Some(d.as_path()));
    Some(Used { interp, bin })
}

/// What `run` remembered for `app`, when made for the app's current declaration and its
/// interpreter is still there.
fn remembered(state: &StateDir, app: &App) -> Option<Used> {
    let r: Record = state.read_json(&record_rel(app)).ok().flatten()?;
    if r.declared != declared_text(app) || !r.path.is_file() {
        return None;
    }
    let lang = match r.lang.as_str() {
        "node" => Lang::Node,
        "ruby" => Lang::Ruby,
        "python" => Lang::Python,
        _ => return None,
    };
    Some(Used {
        interp: Interpreter {
            lang,
            path: r.path,
            version: Version::parse(&r.version)?,
            from: "run's last choice",
        },
        bin: r.bin.filter(|b| b.is_dir()),
    })
}

/// Choose the interpreter of a Node or Ruby app (or a non-Python app's Python) for this run and remember it; the note to
/// show when it is not PATH's (`None` otherwise, and for other apps).
pub(crate) fn remember(state: &StateDir, app: &App) -> Option<String> {
    let used = live(app)?;
    let i = &used.interp;
    let record = Record {
        declared: declared_text(app),
        lang: program(i.lang).into(),
        path: i.path.clone(),
        version: i.version.shown(),
        from: i.from.into(),
        bin: used.bin.clone(),
    };
    // Not kept: the next environment asks the interpreters again.
    let _ = state.write_json(&record_rel(app), &record);
    used.bin.as_ref().map(|b| {
        format!(
            "{} runs on {} {} ({}, from {}): {} is first on its PATH for staging and every process",
            app.name.value,
            i.lang.name(),
            i.version.shown(),
            i.path.display(),
            i.from,
            b.display()
        )
    })
}

/// A piece of the staging key: the interpreter chosen for a Node or Ruby app that declares a
/// runtime (another one stages again).
pub(crate) fn staging_key(app: &App) -> Option<String> {
    declared_text(app)?;
    live(app).map(|u| format!("{} {}", u.interp.path.display(), u.interp.version.shown()))
}

/// Put the app's interpreter into `env`: its `bin/` first on PATH (when not PATH's own) and
/// its id in `VCAP_APPLICATION.runtime`. Staging and `--runtime` choose now; a process's
/// environment uses what `run` remembered, else chooses now (unless
/// [`set_files_only`]).
pub(crate) fn apply(env: &mut EnvSet, state: &StateDir, app: &App, staging: bool) {
    if node_or_ruby(app).is_none() {
        return;
    }
    let now = staging || runtime::flags().runtime.is_some();
    let used = if now {
        live(app)
    } else {
        remembered(state, app).or_else(|| {
            (!FILES_ONLY.load(Ordering::Relaxed))
                .then(|| live(app))
                .flatten()
        })
    };
    let Some(used) = used else { return };
    runtime::stamp_vcap(env, &used.interp);
    if let Some(bin) = &used.bin {
        let rest = env.get("PATH").unwrap_or_default().to_string();
        env.amend("PATH", prepend(bin, &rest));
    }
}

/// `bin` then `rest` (without another copy of `bin`).
fn prepend(bin: &Path, rest: &str) -> String {
    let b = bin.display().to_string();
    let others: Vec<&str> = rest.split(':').filter(|d| *d != b).collect();
    if others.iter().all(|d| d.is_empty()) {
        return b;
    }
    format!("{b}:{}", others.join(":"))
}

/// `name` in the directories of `env`'s PATH (what a staging command of the app finds).
pub(crate) fn which_in(env: &EnvSet, name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    env.get("PATH")?
        .split(':')
        .filter(|d| d.starts_with('/'))
        .map(|d| Path::new(d).join(name))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepend_puts_bin_first_once() {
        let b = Path::new("/n/v22/bin");
        assert_eq!(
            prepend(b, "/venv/bin:/usr/bin"),
            "/n/v22/bin:/venv/bin:/usr/bin"
        );
        assert_eq!(prepend(b, "/usr/bin:/n/v22/bin"), "/n/v22/bin:/usr/bin");
        assert_eq!(prepend(b, ""), "/n/v22/bin");
    }

    #[test]
    fn which_in_reads_the_env_path() {
        let d = tempfile::tempdir().expect("tempdir");
        let exe = d.path().join("npm");
        std::fs::write(&exe, "#!/bin/sh\n").expect("write");
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let mut env = EnvSet::new();
        env.set(
            "PATH",
            format!("/nonexistent:{}", d.path().display()),
            crate::model::env_set::Layer::Platform,
            "test",
        );
        assert_eq!(which_in(&env, "npm"), Some(exe));
        assert_eq!(which_in(&env, "npx"), None);
    }
}
