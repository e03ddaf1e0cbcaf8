//! Python at staging: the project's virtualenv `.stackato-local/venv` (made with the
//! interpreter found here), `requirements.txt` (or `PIP_REQUIREMENTS_FILE`, then
//! `requirements.pip`) and `requirements: pip/pypm` installed with pip, and uWSGI when the
//! web command uses `$STACKATO_UWSGI` (a pure-Python stand-in when it cannot be built).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::manifest::App;
use crate::manifest::model::Web;
use crate::platform::runtime::{self, Interpreter, Lang};
use crate::platform::web;
use crate::stage::requirements::{requirement_error, user_cache};
use crate::stage::{Outcome, Skip, StageError, Stager};
use crate::state::StateDir;

pub(crate) fn venv_dir(state: &StateDir) -> PathBuf {
    state.path("venv")
}

pub(crate) fn venv_python(state: &StateDir) -> PathBuf {
    venv_dir(state).join("bin").join("python")
}

pub(crate) use crate::platform::web::is_python_app as is_python;

/// Whether the app's web command runs `$STACKATO_UWSGI`, or `uwsgi` itself (which then is
/// the virtualenv's, first on PATH, not a system one without the Python plugin).
pub(crate) fn needs_uwsgi(app: &App) -> bool {
    let fw = app.framework_name();
    match &app.web {
        Web::Command(c) => {
            c.value.contains("$STACKATO_UWSGI")
                || c.value.contains("${STACKATO_UWSGI}")
                || calls_uwsgi(&c.value)
        }
        // The framework's default, or a Procfile whose `web:` line runs uwsgi itself.
        Web::Default => {
            web::is_python(fw)
                || web::is_perl(fw)
                || web::procfile_web(&app.path).is_some_and(|l| calls_uwsgi(&l))
        }
        Web::Worker => false,
    }
}

/// Whether a shell command runs a program named `uwsgi` (`uwsgi --http …`, `exec uwsgi`,
/// `cd x && uwsgi …`).
fn calls_uwsgi(command: &str) -> bool {
    command
        .split(|c: char| c.is_whitespace() || matches!(c, ';' | '&' | '|' | '(' | ')' | '`'))
        .any(|w| w == "uwsgi" || w.ends_with("/bin/uwsgi"))
}

fn python3() -> Option<PathBuf> {
    crate::programs::find("python3").or_else(|| crate::programs::find("python"))
}

/// The file in the virtualenv naming the interpreter it was made with (path, version).
const MARKER: &str = ".stackato-local-interpreter";

fn marker_text(i: &Interpreter) -> String {
    format!("{}\n{}\n", i.path.display(), i.version.shown())
}

/// The interpreter the project's virtualenv was made with, from its marker (a file read: the
/// environment is built at every shell prompt by the hook, which must not run interpreters).
pub(crate) fn venv_interpreter(state: &StateDir) -> Option<Interpreter> {
    let text = std::fs::read_to_string(venv_dir(state).join(MARKER)).ok()?;
    let mut lines = text.lines();
    let path = PathBuf::from(lines.next()?);
    let version = runtime::Version::parse(lines.next()?)?;
    Some(Interpreter {
        lang: Lang::Python,
        path,
        version,
        from: "the project's virtualenv",
    })
}

/// Whether the virtualenv at `venv` was made with `i` (one made before the marker existed
/// counts when its Python is of the same major.minor version).
fn venv_made_with(venv: &Path, i: &Interpreter) -> bool {
    match std::fs::read_to_string(venv.join(MARKER)) {
        Ok(t) => t == marker_text(i),
        Err(_) => runtime::version_of(Lang::Python, &venv.join("bin").join("python"))
            .is_some_and(|v| v.major == i.version.major && v.minor == i.version.minor),
    }
}

/// The interpreter staging makes the virtualenv with: the app's runtime (see
/// [`runtime::python_for`]), else the `python3` on PATH.
fn interpreter(s: &Stager<'_>) -> Option<Interpreter> {
    runtime::python_for(s.app, &s.home)
        .and_then(|c| c.chosen)
        .or_else(|| {
            let path = python3()?;
            let version = runtime::version_of(Lang::Python, &path)?;
            Some(Interpreter {
                lang: Lang::Python,
                path,
                version,
                from: "PATH",
            })
        })
}

/// `virtualenv` for Python 2 (which has no `venv` module): the interpreter's own
/// `-m virtualenv` when it has one, else a `virtualenv<20.22` (the last that makes Python 2
/// environments) installed from PyPI into a tool virtualenv made with Python 3, kept in the
/// user's cache (`~/.cache/stackato-local/virtualenv-py2`) and shared by all projects.
fn virtualenv_command(s: &Stager<'_>, py2: &Interpreter) -> Result<Command, StageError> {
    let mut probe = Command::new(&py2.path);
    probe.args(["-m", "virtualenv", "--version"]);
    if crate::process::output(&mut probe, crate::process::Tie::Probe)
        .is_ok_and(|o| o.status.success())
    {
        let mut c = Command::new(&py2.path);
        c.args(["-m", "virtualenv", "-p"]).arg(&py2.path);
        if let Some(cache) = user_cache() {
            c.env(
                "VIRTUALENV_OVERRIDE_APP_DATA",
                cache.join("stackato-local").join("virtualenv-app-data"),
            );
        }
        return Ok(c);
    }
    let not_made = |why: String| {
        StageError::Requirement {
        what: "installing virtualenv (for a Python 2 virtualenv)".into(),
        ended: crate::stage::run::Ended::NotStarted(why),
        tail: Vec::new(),
        hint: "install Python 3 with its venv module (`apt-get install python3-venv`), or virtualenv for Python 2 (`python2.7 -m pip install 'virtualenv<20.22'`)".into(),
    }
    };
    let Some(cache) = user_cache() else {
        return Err(not_made("no home directory for the tool's cache".into()));
    };
    let tool = cache.join("stackato-local").join("virtualenv-py2");
    let tool_py = tool.join("bin").join("python");
    if !tool_py.is_file() {
        let Some(py3) = python3() else {
            return Err(not_made("python3 is not installed".into()));
        };
        s.out.line(
            &s.prefix,
            &format!(
                "-----> Installing virtualenv<20.22 (for Python 2) into {} (once per user)",
                crate::diag::display_path(&tool)
            ),
        );
        let tmp = cache
            .join("stackato-local")
            .join(format!("virtualenv-py2.tmp{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::create_dir_all(cache.join("stackato-local"))
            .map_err(|e| StageError::Io(e.to_string()))?;
        let mut c = Command::new(&py3);
        c.arg("-m").arg("venv").arg(&tmp);
        let done = s.run(c);
        if !done.ended.ok() {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(requirement_error(
                "making the tool virtualenv for virtualenv",
                done,
                "install the venv module: `apt-get install python3-venv`",
            ));
        }
        let mut c = Command::new(tmp.join("bin").join("python"));
        c.args([
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--no-input",
            "virtualenv<20.22",
        ]);
        c.env("PIP_CACHE_DIR", cache.join("pip"));
        let done = s.run(c);
        if !done.ended.ok() {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(requirement_error(
                "installing virtualenv<20.22 from PyPI",
                done,
                "check the network (PyPI), or install virtualenv for Python 2 yourself",
            ));
        }
        // A concurrent run may have made it first: then keep theirs.
        if std::fs::rename(&tmp, &tool).is_err() {
            let _ = std::fs::remove_dir_all(&tmp);
        }
    }
    let mut c = Command::new(&tool_py);
    c.args(["-m", "virtualenv", "--no-periodic-update", "-p"])
        .arg(&py2.path);
    // Its seed cache goes with the tool, not into `$HOME` (the app's staged copy).
    c.env("VIRTUALENV_OVERRIDE_APP_DATA", tool.join("app-data"));
    Ok(c)
}

/// Requirement names as a staging line shows them: each a shell word, control characters
/// escaped (they are the repository's text).
pub(crate) fn shown_args<S: AsRef<str>>(names: &[S]) -> String {
    names
        .iter()
        .map(|n| crate::trust::display::escape(&crate::shell::word(n.as_ref())))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The uWSGI build step, as recorded when it fell back to the stand-in.
const UWSGI_STEP: &str = "the uWSGI build";

pub(crate) fn install(s: &Stager<'_>, outcome: &mut Outcome) -> Result<(), StageError> {
    let app = s.app;
    let venv = s.venv();
    let py = venv.join("bin").join("python");
    let interp = interpreter(s);
    // Made with another interpreter (the runtime changed): made again.
    if py.is_file()
        && let Some(i) = &interp
        && !venv_made_with(&venv, i)
    {
        s.out.line(
            &s.prefix,
            &format!(
                "-----> The runtime changed (now {} {}): making the virtualenv again",
                i.lang.name(),
                i.version.shown()
            ),
        );
        crate::state::check_inside(s.state.root(), &venv)
            .map_err(|e| StageError::Io(e.to_string()))?;
        std::fs::remove_dir_all(&venv).map_err(|e| StageError::Io(e.to_string()))?;
    }
    if !py.is_file() {
        let Some(i) = interp else {
            return Err(StageError::Requirement {
                what: "creating the Python virtualenv".into(),
                ended: crate::stage::run::Ended::NotStarted("python3 is not installed".into()),
                tail: Vec::new(),
                hint: "install Python 3: `apt-get install python3 python3-venv`".into(),
            });
        };
        s.out.line(
            &s.prefix,
            &format!(
                "-----> Creating the virtualenv {} with Python {} ({})",
                crate::diag::display_path(&venv),
                i.version.shown(),
                i.path.display()
            ),
        );
        let mut c = if i.version.major >= 3 {
            let mut c = Command::new(&i.path);
            c.arg("-m").arg("venv");
            c
        } else {
            virtualenv_command(s, &i)?
        };
        c.arg(&venv);
        let done = s.run(c);
        if !done.ended.ok() {
            let _ = std::fs::remove_dir_all(&venv);
            return Err(requirement_error(
                "creating the Python virtualenv",
                done,
                if i.version.major >= 3 {
                    "install the venv module: `apt-get install python3-venv`"
                } else {
                    "virtualenv's own message is above"
                },
            ));
        }
        crate::state::write_atomic(&venv.join(MARKER), marker_text(&i).as_bytes())
            .map_err(|e| StageError::Io(e.to_string()))?;
    }
    let pip = |args: &[&str], what: &str| -> Result<(), StageError> {
        let mut c = Command::new(&py);
        c.args([
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--no-input",
        ]);
        if std::env::var_os("PIP_CACHE_DIR").is_none()
            && let Some(cache) = user_cache()
        {
            c.env("PIP_CACHE_DIR", cache.join("pip"));
        }
        if let Some(opts) = s.env.get("PIP_OPTS") {
            c.args(opts.split_whitespace());
        }
        c.args(args);
        let done = s.run(c);
        if done.ended.ok() {
            Ok(())
        } else {
            Err(requirement_error(
                what,
                done,
                "check the package names and versions; pip's own message is above",
            ))
        }
    };
    let req_file = s
        .env
        .get("PIP_REQUIREMENTS_FILE")
        .map(|f| s.home.join(f))
        .filter(|p| p.is_file())
        .or_else(|| {
            ["requirements.txt", "requirements.pip"]
                .iter()
                .map(|f| s.home.join(f))
                .find(|p| p.is_file())
        });
    if let Some(f) = req_file {
        let name = f
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        s.out
            .line(&s.prefix, &format!("-----> pip install -r {name}"));
        pip(
            &["-r", &f.display().to_string()],
            &format!("pip install -r {name}"),
        )?;
    }
    let list: Vec<&str> = app.requirements.python_packages();
    if !list.is_empty() {
        if !app.requirements.pypm.is_empty() {
            outcome.notes.push(
                "requirements: pypm (ActiveState PyPM) no longer exists; installed with pip".into(),
            );
        }
        s.out.line(
            &s.prefix,
            &format!("-----> pip install {}", shown_args(&list)),
        );
        // Names are data: `--` ends pip's options, so none is taken for one (check refuses
        // names starting with `-` before this; this is the second line of defence).
        let args: Vec<&str> = std::iter::once("--").chain(list).collect();
        pip(&args, "pip install (requirements: pip/pypm)")?;
    }
    let uwsgi = venv.join("bin").join("uwsgi");
    // The stand-in is replaced by the real thing when staging is forced (--restage), or when
    // the compiler that was missing (or broken) when it went in has changed since.
    let standin = is_uwsgi_standin(&uwsgi);
    let retry = s.restage || outcome.retry.iter().any(|r| r == UWSGI_STEP);
    if needs_uwsgi(app) && (!uwsgi.is_file() || (standin && retry)) {
        s.out.line(
            &s.prefix,
            "-----> Installing uWSGI for $STACKATO_UWSGI (once per project; it compiles)",
        );
        if let Err(e) = pip(&["uwsgi"], "installing uWSGI") {
            if s.stop.requested().is_some() {
                return Err(e);
            }
            // Without a compiler uWSGI cannot be built: serve with our stand-in instead.
            install_uwsgi_standin(&venv).map_err(|e| StageError::Io(e.to_string()))?;
            let msg = format!(
                "uWSGI could not be built ({e}); $STACKATO_UWSGI uses stackato-local's pure-Python stand-in, which understands the common options (install gcc and python3-dev, then `run --restage`, for the real one)"
            );
            s.out.line(&s.prefix, &format!("-----> {msg}"));
            outcome.notes.push(msg);
            outcome.skipped.push(Skip::new(UWSGI_STEP, "cc"));
        }
    } else if needs_uwsgi(app) && standin {
        // Still the stand-in: keep watching for the compiler.
        outcome.skipped.push(Skip::new(UWSGI_STEP, "cc"));
    }
    Ok(())
}

/// Whether `path` is our pure-Python stand-in rather than a real uWSGI.
pub(crate) fn is_uwsgi_standin(path: &Path) -> bool {
    std::fs::read_to_string(path)
        .map(|t| t.contains("stackato-local's stand-in for uWSGI"))
        .unwrap_or(false)
}

/// The pure-Python stand-in for uWSGI, written into the virtualenv as `bin/uwsgi`.
pub(crate) fn install_uwsgi_standin(venv: &Path) -> Result<(), crate::state::StateError> {
    let path = venv.join("bin").join("uwsgi");
    let py = venv.join("bin").join("python");
    let text = format!(
        "#!{}\n{}",
        py.display(),
        include_str!("../../../templates/uwsgi_standin.py")
    );
    // The virtualenv is in the project's state dir: never write through a link planted there.
    crate::state::check_inside(venv, &venv.join("bin"))?;
    crate::state::write_atomic(&path, text.as_bytes())?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).map_err(|source| {
        crate::state::StateError::Write {
            path: path.clone(),
            source,
        }
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn commands_calling_uwsgi() {
        assert!(super::calls_uwsgi(
            "uwsgi --http-socket :$PORT --wsgi-file wsgi.py"
        ));
        assert!(super::calls_uwsgi("cd src && exec uwsgi --ini app.ini"));
        assert!(!super::calls_uwsgi("python app.py --uwsgi-like"));
        assert!(!super::calls_uwsgi("gunicorn wsgi:application"));
    }
}
