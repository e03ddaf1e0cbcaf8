//! The per-project state directory `.stackato-local/`: created 0700 beside the manifest, kept
//! out of git, written atomically (temp file + fsync + rename, files 0600) and locked with
//! `flock` where two commands must not act at once (`run` in one terminal, `env` in another).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Name of the state directory inside a project.
pub const DIR_NAME: &str = ".stackato-local";

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot create the state directory {path}: {source}")]
    Create { path: PathBuf, source: io::Error },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{path} is damaged ({reason}); move it away and the tool will start afresh")]
    Corrupt { path: PathBuf, reason: String },
    #[error("cannot lock {path}: {source}")]
    Lock { path: PathBuf, source: io::Error },
}

/// The state directory of one project.
#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
}

/// An exclusive lock, released on drop.
#[derive(Debug)]
pub struct Lock {
    _file: File,
}

impl StateDir {
    /// The state directory of the project whose manifest lives in `project_dir`, without
    /// touching the disk.
    pub fn at(project_dir: &Path) -> StateDir {
        StateDir {
            root: project_dir.join(DIR_NAME),
        }
    }

    /// Create it (0700) if needed, and add it to the project's .gitignore if there is one.
    pub fn open(project_dir: &Path) -> Result<StateDir, StateError> {
        let s = StateDir::at(project_dir);
        create_private_dir(&s.root)?;
        ignore_in_git(project_dir);
        Ok(s)
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn path(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.root.join(rel)
    }

    /// A private (0700) sub-directory, created if needed.
    pub fn dir(&self, rel: impl AsRef<Path>) -> Result<PathBuf, StateError> {
        let p = self.root.join(rel);
        create_private_dir(&p)?;
        Ok(p)
    }

    /// The lock file `locks/<name>.lock`, opened (0600).
    fn lock_file(&self, name: &str) -> Result<(File, PathBuf), StateError> {
        let dir = self.dir("locks")?;
        let path = dir.join(format!("{name}.lock"));
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(|source| StateError::Lock {
                path: path.clone(),
                source,
            })?;
        Ok((file, path))
    }

    /// Take the lock `name` (a file under `locks/`), waiting for other holders.
    pub fn lock(&self, name: &str) -> Result<Lock, StateError> {
        let (file, path) = self.lock_file(name)?;
        file.lock()
            .map_err(|source| StateError::Lock { path, source })?;
        Ok(Lock { _file: file })
    }

    /// Take the lock `name` if nobody holds it; `None` when another process does.
    pub fn try_lock(&self, name: &str) -> Result<Option<Lock>, StateError> {
        let (file, path) = self.lock_file(name)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(Lock { _file: file })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(source)) => Err(StateError::Lock { path, source }),
        }
    }

    /// Read a JSON file of the state dir; `None` when it does not exist yet.
    pub fn read_json<T: serde::de::DeserializeOwned>(
        &self,
        rel: &str,
    ) -> Result<Option<T>, StateError> {
        let path = self.root.join(rel);
        match fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|e| StateError::Corrupt {
                        path,
                        reason: e.to_string(),
                    })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StateError::Read { path, source }),
        }
    }

    /// Write a JSON file of the state dir atomically, mode 0600.
    pub fn write_json<T: serde::Serialize>(&self, rel: &str, value: &T) -> Result<(), StateError> {
        let path = self.root.join(rel);
        let mut bytes = serde_json::to_vec_pretty(value).map_err(|e| StateError::Write {
            path: path.clone(),
            source: io::Error::other(e),
        })?;
        bytes.push(b'\n');
        write_atomic(&path, &bytes)
    }
}

/// `mkdir -p` with mode 0700 on the directories it creates, and 0700 enforced on `dir`.
pub fn create_private_dir(dir: &Path) -> Result<(), StateError> {
    let err = |source| StateError::Create {
        path: dir.to_path_buf(),
        source,
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(err)?;
    let md = fs::metadata(dir).map_err(err)?;
    if md.permissions().mode() & 0o077 != 0 {
        fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(err)?;
    }
    Ok(())
}

/// Write `bytes` to `path` so that readers see the old or the new content, never a part:
/// a temp file in the same directory (0600), fsync, rename, fsync the directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StateError> {
    let err = |source| StateError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let result = (|| {
        let mut f = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(err)
}

/// Add `/.stackato-local/` to the project's .gitignore when the project has one and it does
/// not ignore the directory yet. Failure to do so is not an error.
fn ignore_in_git(project_dir: &Path) {
    let gi = project_dir.join(".gitignore");
    let Ok(text) = fs::read_to_string(&gi) else {
        return;
    };
    if gitignore_covers_state(&text) {
        return;
    }
    let mut new = text;
    if !new.is_empty() && !new.ends_with('\n') {
        new.push('\n');
    }
    new.push_str("# stackato-local state: service data, credentials, logs\n/.stackato-local/\n");
    let _ = write_atomic_keep_mode(&gi, new.as_bytes());
}

/// Whether a `.gitignore` text ignores the state directory at the top of the project.
pub fn gitignore_covers_state(text: &str) -> bool {
    text.lines().any(|l| {
        let l = l.trim().trim_start_matches('/').trim_end_matches('/');
        l == DIR_NAME
    })
}

/// Atomic write that keeps the file's existing permissions (for user files like .gitignore).
fn write_atomic_keep_mode(path: &Path, bytes: &[u8]) -> Result<(), StateError> {
    let mode = fs::metadata(path)
        .map(|m| m.permissions().mode())
        .unwrap_or(0o644);
    write_atomic(path, bytes)?;
    let _ = fs::set_permissions(path, fs::Permissions::from_mode(mode));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_dir_is_private_and_ignored() {
        let t = tempfile::tempdir().unwrap();
        fs::write(t.path().join(".gitignore"), "target").unwrap();
        let s = StateDir::open(t.path()).unwrap();
        let mode = fs::metadata(s.root()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        let gi = fs::read_to_string(t.path().join(".gitignore")).unwrap();
        assert!(gi.starts_with("target\n"));
        assert!(gi.contains("/.stackato-local/"));
        // Idempotent.
        StateDir::open(t.path()).unwrap();
        let gi2 = fs::read_to_string(t.path().join(".gitignore")).unwrap();
        assert_eq!(gi, gi2);
    }

    #[test]
    fn json_files_are_0600_and_atomic() {
        let t = tempfile::tempdir().unwrap();
        let s = StateDir::open(t.path()).unwrap();
        s.write_json("x.json", &serde_json::json!({"a": 1}))
            .unwrap();
        let mode = fs::metadata(s.path("x.json")).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let v: serde_json::Value = s.read_json("x.json").unwrap().unwrap();
        assert_eq!(v["a"], 1);
        assert!(
            s.read_json::<serde_json::Value>("nope.json")
                .unwrap()
                .is_none()
        );
        fs::write(s.path("bad.json"), "{").unwrap();
        assert!(matches!(
            s.read_json::<serde_json::Value>("bad.json"),
            Err(StateError::Corrupt { .. })
        ));
    }

    #[test]
    fn no_gitignore_means_none_is_created() {
        let t = tempfile::tempdir().unwrap();
        StateDir::open(t.path()).unwrap();
        assert!(!t.path().join(".gitignore").exists());
    }
}
