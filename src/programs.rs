//! Finding programs: one lookup (the `which` crate) for every program the tool runs by name:
//! on `PATH` plus the directories where Debian and Homebrew keep servers out of it, or only
//! in `STACKATO_LOCAL_SERVER_PATH` when that is set; and on `PATH` alone, as a build tool
//! such as pip finds a compiler.

use std::path::{Path, PathBuf};

/// Directories searched besides PATH.
fn extra_dirs() -> Vec<PathBuf> {
    let mut v = vec![PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/sbin")];
    // Debian keeps postgres out of PATH; prefer the newest version.
    let mut pg: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path().join("bin"))
                .filter(|p| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    pg.sort_by_key(|p| {
        std::cmp::Reverse(
            p.parent()
                .and_then(Path::file_name)
                .and_then(|n| n.to_str())
                .and_then(|n| n.parse::<f64>().ok())
                .map_or(0, |f| (f * 100.0) as i64),
        )
    });
    v.extend(pg);
    // Servers not packaged by Debian: their vendors' install places.
    v.push(PathBuf::from("/opt/couchdb/bin"));
    if let Some(home) = std::env::var_os("ES_HOME") {
        v.push(PathBuf::from(home).join("bin"));
    }
    v.push(PathBuf::from("/usr/share/elasticsearch/bin"));
    v.push(PathBuf::from("/opt/homebrew/bin"));
    v.push(PathBuf::from("/usr/local/opt/postgresql/bin"));
    v
}

/// Find one program on PATH or in the extra directories. `STACKATO_LOCAL_SERVER_PATH`, when
/// set, replaces both (a colon-separated list; empty means "find nothing").
pub(crate) fn find(name: &str) -> Option<PathBuf> {
    let dirs: Vec<PathBuf> = match std::env::var_os("STACKATO_LOCAL_SERVER_PATH") {
        Some(p) => std::env::split_paths(&p)
            .filter(|d| !d.as_os_str().is_empty())
            .collect(),
        None => {
            let path = std::env::var_os("PATH").unwrap_or_default();
            std::env::split_paths(&path).chain(extra_dirs()).collect()
        }
    };
    find_in(name, dirs)
}

/// A program on `PATH` only.
pub(crate) fn on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    find_in(name, std::env::split_paths(&path))
}

/// The first executable file `name` in `dirs` (empty entries skipped: they are not "here");
/// a name with a `/` is a path, taken as it is.
fn find_in(name: &str, dirs: impl IntoIterator<Item = PathBuf>) -> Option<PathBuf> {
    if name.contains('/') {
        return which::which(name).ok();
    }
    if name.is_empty() {
        return None;
    }
    let dirs: Vec<PathBuf> = dirs
        .into_iter()
        .filter(|d| !d.as_os_str().is_empty())
        .collect();
    if dirs.is_empty() {
        return None;
    }
    let paths = std::env::join_paths(dirs).ok()?;
    which::which_in(name, Some(paths), Path::new("/")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_an_executable_in_the_given_directories_only() {
        let d = tempfile::tempdir().unwrap();
        let exe = d.path().join("tool");
        std::fs::write(&exe, "#!/bin/sh\n").unwrap();
        let plain = d.path().join("data");
        std::fs::write(&plain, "").unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        let dirs = || vec![PathBuf::new(), d.path().to_path_buf()];
        assert_eq!(find_in("tool", dirs()), Some(exe.clone()));
        assert_eq!(find_in("data", dirs()), None, "not executable");
        assert_eq!(
            find_in("tool", vec![PathBuf::new()]),
            None,
            "an empty entry is nowhere"
        );
        assert_eq!(find_in("nothing-by-this-name", dirs()), None);
        assert_eq!(on_path(&exe.display().to_string()), Some(exe));
    }
}
