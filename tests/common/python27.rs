//! A Python 2.7 interpreter for the tests of Python 2 apps: where the product looks for one
//! (pyenv, the distribution's `python2.7`), or a loud SKIP (never a failure: Debian 12 has no
//! Python 2.7 and CI has no pyenv).

use std::path::PathBuf;

/// A Python 2.7 interpreter that runs.
pub fn python27() -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    let pyenv = std::env::var_os("PYENV_ROOT")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".pyenv")));
    if let Some(versions) = pyenv.map(|p| p.join("versions"))
        && let Ok(rd) = std::fs::read_dir(versions)
    {
        for e in rd.flatten() {
            if e.file_name().to_string_lossy().starts_with("2.7") {
                candidates.push(e.path().join("bin/python"));
            }
        }
    }
    candidates.push(PathBuf::from("/usr/bin/python2.7"));
    candidates.push(PathBuf::from("/usr/local/bin/python2.7"));
    candidates.into_iter().find(|p| {
        std::process::Command::new(p)
            .args(["-c", "import sys; sys.exit(sys.version_info[:2] != (2, 7))"])
            .output()
            .is_ok_and(|o| o.status.success())
    })
}

/// [`python27`] is there, or a loud SKIP.
pub fn need_python27() -> bool {
    if python27().is_some() {
        return true;
    }
    super::skip(&format!(
        "{}: no Python 2.7 interpreter here (install one with `pyenv install 2.7.18`)",
        std::thread::current().name().unwrap_or("?")
    ));
    false
}
