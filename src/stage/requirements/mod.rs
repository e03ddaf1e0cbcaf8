//! Requirements at staging, in the platform's order: OS packages are checked and reported
//! (never installed), then each language's installer ([`python`]: the project's virtualenv,
//! pip and uWSGI; [`node`]: npm; [`perl`]: its server and cpanm; [`ruby`]: bundler; [`php`]: Composer), a step whose tool is missing being skipped
//! with a note and recorded as skipped. Installers get the user's own caches.

pub(crate) mod node;
pub(crate) mod perl;
pub(crate) mod php;
pub(crate) mod python;
pub(crate) mod ruby;

use std::process::Command;

use crate::manifest::model::OsPackage;
use crate::stage::{Outcome, StageError, Stager};

pub(crate) use python::{is_python, is_uwsgi_standin, needs_uwsgi, venv_dir, venv_python};

/// OS packages that are not installed here, per the `dpkg` database (Debian/Ubuntu only).
fn missing_os_packages(pkgs: &[&OsPackage]) -> Vec<String> {
    if crate::programs::find("dpkg-query").is_none() {
        return Vec::new();
    }
    pkgs.iter()
        .filter_map(|p| match p {
            OsPackage::Package(name) => Some(name.clone()),
            OsPackage::Repository(_) => None,
        })
        .filter(|name| {
            let mut c = Command::new("dpkg-query");
            c.args(["-W", "-f=${Status}", "--", name]);
            !crate::process::output(&mut c, crate::process::Tie::Probe)
                .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
                .unwrap_or(false)
        })
        .collect()
}

pub(crate) fn requirement_error(
    what: &str,
    done: crate::stage::run::Finished,
    hint: &str,
) -> StageError {
    StageError::Requirement {
        what: what.to_string(),
        ended: done.ended,
        tail: done.tail,
        hint: hint.to_string(),
    }
}

/// Install everything the app's requirements ask for, in the platform's order. A step whose
/// tool is missing is skipped with a note and recorded in `outcome.skipped`.
pub(crate) fn install(s: &Stager<'_>, outcome: &mut Outcome) -> Result<(), StageError> {
    let app = s.app;
    let notes = &mut outcome.notes;
    let r = &app.requirements;

    // OS packages: checked, never installed.
    let os: Vec<&OsPackage> =
        r.os.ubuntu
            .iter()
            .chain(&r.os.unix)
            .chain(&r.staging.ubuntu)
            .chain(&r.staging.unix)
            .chain(&r.running.ubuntu)
            .chain(&r.running.unix)
            .collect();
    if !os.is_empty() {
        let missing = missing_os_packages(&os);
        // Old Ubuntu names (`php5-mysql`) are suggested under Debian 12's (`php-mysql`).
        let today: Vec<String> = missing
            .iter()
            .filter_map(|m| match crate::platform::php_ext::debian12_name(m) {
                Some(n) if n.starts_with("php") => Some(n),
                Some(_) => None,
                None => Some(m.clone()),
            })
            .collect();
        let renamed: Vec<String> = missing
            .iter()
            .filter_map(|m| {
                Some(format!(
                    "{m} is {}",
                    crate::platform::php_ext::debian12_name(m)?
                ))
            })
            .collect();
        let msg = if missing.is_empty() {
            "-----> OS requirements: all installed".to_string()
        } else {
            format!(
                "-----> OS requirements not installed here (stackato-local does not install them): {}; install with `sudo apt-get install {}`{}",
                missing.join(" "),
                today.join(" "),
                if renamed.is_empty() {
                    String::new()
                } else {
                    format!(" (Debian 12's names: {})", renamed.join(", "))
                }
            )
        };
        s.out.line(&s.prefix, &msg);
        if !missing.is_empty() {
            notes.push(msg.trim_start_matches("-----> ").to_string());
        }
    }
    let repos: Vec<String> = os
        .iter()
        .filter_map(|p| match p {
            OsPackage::Repository(r) => Some(r.clone()),
            OsPackage::Package(_) => None,
        })
        .collect();
    if !repos.is_empty() {
        s.out.line(
            &s.prefix,
            &format!(
                "-----> OS package repositories ignored locally: {}",
                repos.join(" ")
            ),
        );
    }

    let help = |e| failure_help(s, e);
    if is_python(app) {
        python::install(s, outcome).map_err(help)?;
    }
    if s.home.join("package.json").is_file()
        && matches!(app.framework_name(), Some("node") | None)
        && !is_python(app)
    {
        node::install(s, outcome).map_err(help)?;
    }
    if s.home.join("Gemfile").is_file()
        && matches!(
            app.framework_name(),
            Some("rack" | "rails3" | "sinatra") | None
        )
    {
        ruby::install(s, outcome).map_err(help)?;
    }
    if perl::wanted(app) {
        perl::install(s, outcome).map_err(help)?;
    }
    if php::wanted(app, &s.home) {
        php::install(s, outcome).map_err(help)?;
    }
    Ok(())
}

/// An installer's failure with what the runtime explains: the warning that the declared
/// runtime is not installed (the installer ran on another one), or, for a Python 3
/// virtualenv of an app that declares nothing, that the app is Python 2 (old Django pins,
/// Python 2 statements in its code).
fn failure_help(s: &Stager<'_>, e: StageError) -> StageError {
    let StageError::Requirement {
        what,
        ended,
        tail,
        mut hint,
    } = e
    else {
        return e;
    };
    let app = s.app;
    if let Some(choice) = crate::platform::runtime::resolve(app, &app.path) {
        if let Some(m) = choice.mismatch() {
            hint.push_str(&format!(
                "; it ran on another runtime than declared: {m}; {}",
                choice.install_hint()
            ));
        } else if choice.declared.is_none()
            && is_python(app)
            && choice.chosen.as_ref().is_some_and(|i| {
                i.lang == crate::platform::runtime::Lang::Python && i.version.major == 3
            })
            && let Some(why) = python2_app(&s.home)
        {
            hint.push_str(&format!(
                "; this looks like a Python 2 app ({why}) staged on Python 3: add `runtime: python27` to stackato.yml (or run --runtime python27)"
            ));
        }
    }
    StageError::Requirement {
        what,
        ended,
        tail,
        hint,
    }
}

/// Why the app in `dir` looks like Python 2 code (`None`: it does not): a Django 1.x pin in
/// its requirements (no Django 1.x runs on today's Python 3), or a Python 2 statement in a
/// `.py` file at its top or one level down.
fn python2_app(dir: &std::path::Path) -> Option<String> {
    for name in ["requirements.txt", "requirements.pip"] {
        let Some(text) = small_text(&dir.join(name)) else {
            continue;
        };
        for line in text.lines() {
            let l = line.split('#').next().unwrap_or("").replace(' ', "");
            let lower = l.to_ascii_lowercase();
            if let Some(spec) = lower.strip_prefix("django")
                && ["==1.", "<1.", "<=1.", "~=1.", "<2", "<=2.0"]
                    .iter()
                    .any(|p| spec.starts_with(p))
            {
                return Some(format!("{name} pins {l}"));
            }
        }
    }
    let mut files: Vec<std::path::PathBuf> = Vec::new();
    let entries = |d: &std::path::Path| -> Vec<std::path::PathBuf> {
        std::fs::read_dir(d)
            .map(|rd| rd.flatten().take(200).map(|e| e.path()).collect())
            .unwrap_or_default()
    };
    for p in entries(dir) {
        let md = std::fs::symlink_metadata(&p);
        if md.as_ref().is_ok_and(|m| m.is_dir()) {
            files.extend(entries(&p));
        } else {
            files.push(p);
        }
    }
    files.sort();
    files
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "py"))
        .take(200)
        .find_map(|p| {
            let text = small_text(p)?;
            let (n, line) = text
                .lines()
                .enumerate()
                .find(|(_, l)| crate::supervise::hints::py2_source(l.trim()))?;
            let rel = p.strip_prefix(dir).unwrap_or(p);
            Some(format!("{}:{}: `{}`", rel.display(), n + 1, line.trim()))
        })
}

/// A small regular file's text (not a symlink, FIFO or huge file of the upload).
fn small_text(p: &std::path::Path) -> Option<String> {
    let md = std::fs::symlink_metadata(p).ok()?;
    if !md.is_file() || md.len() > 256 * 1024 {
        return None;
    }
    std::fs::read_to_string(p).ok()
}

pub(crate) use crate::fsx::{user_cache, user_home};

#[cfg(test)]
mod tests {
    use super::python2_app;

    #[test]
    fn python2_apps_are_told_by_old_django_pins_or_python2_statements() {
        let d = tempfile::tempdir().expect("tempdir");
        assert_eq!(python2_app(d.path()), None);
        std::fs::write(d.path().join("requirements.txt"), "Django==2.2\nsix\n").expect("write");
        assert_eq!(python2_app(d.path()), None);
        std::fs::write(
            d.path().join("requirements.txt"),
            "# old\nDjango == 1.4.22\n",
        )
        .expect("write");
        let why = python2_app(d.path()).expect("a Django 1.4 pin");
        assert!(why.contains("Django==1.4.22"), "{why}");
        std::fs::write(d.path().join("requirements.txt"), "flask\n").expect("write");
        std::fs::create_dir(d.path().join("pkg")).expect("mkdir");
        std::fs::write(
            d.path().join("pkg/views.py"),
            "import os\nprint \"hello\"\n",
        )
        .expect("write");
        let why = python2_app(d.path()).expect("a print statement");
        assert!(why.contains("pkg/views.py:2"), "{why}");
    }
}
