//! Requirements at staging, in the platform's order: OS packages are checked and reported
//! (never installed), then each language's installer ([`python`]: the project's virtualenv,
//! pip and uWSGI; [`node`]: npm; [`perl`]: its server and cpanm; [`ruby`]: bundler; [`php`]: Composer), a step whose tool is missing being skipped
//! with a note and recorded as skipped. Installers get the user's own caches.

pub mod node;
pub mod perl;
pub mod php;
pub mod python;
pub mod ruby;

use std::path::PathBuf;
use std::process::Command;

use crate::manifest::model::OsPackage;
use crate::stage::{Outcome, StageError, Stager};

pub use python::{
    install_uwsgi_standin, is_python, is_uwsgi_standin, needs_uwsgi, venv_dir, venv_python,
};

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
            c.args(["-W", "-f=${Status}", name]);
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
pub fn install(s: &Stager<'_>, outcome: &mut Outcome) -> Result<(), StageError> {
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

    if is_python(app) {
        python::install(s, outcome)?;
    }
    if s.home.join("package.json").is_file()
        && matches!(app.framework_name(), Some("node") | None)
        && !is_python(app)
    {
        node::install(s, outcome)?;
    }
    if s.home.join("Gemfile").is_file()
        && matches!(
            app.framework_name(),
            Some("rack" | "rails3" | "sinatra") | None
        )
    {
        ruby::install(s, outcome)?;
    }
    if perl::wanted(app) {
        perl::install(s, outcome)?;
    }
    if php::wanted(app, &s.home) {
        php::install(s, outcome)?;
    }
    Ok(())
}

/// The user's own home, from the tool's environment. Staging runs with `HOME` set to the app
/// directory (as on the platform), so an installer left to itself would put its cache
/// (`~/.cache/pip`, `~/.npm`) into the user's checkout: the installers the tool runs get the
/// user's own cache instead (where their pip and npm keep it; shared between projects).
pub(crate) fn user_home() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
}

/// `$XDG_CACHE_HOME`, else `~/.cache`, of the user (see [`user_home`]).
pub(crate) fn user_cache() -> Option<PathBuf> {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| user_home().map(|h| h.join(".cache")))
}
