//! One project's trust record: the SHA-256 digest of every file that decides what it runs,
//! what `allow` showed, and the inherited files outside the project the user accepted; built
//! from a loaded manifest, compared with the present (what changed), or re-checked from the
//! files alone (for the shell hook and `allow --list`, without parsing anything).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::manifest::Loaded;
use crate::trust::files::{self, FileState};

/// One shown item: what it is (`web web`, `web pre-staging hook`, …) and its text.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub(crate) struct Shown {
    pub what: String,
    pub text: String,
}

/// One recorded file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct FileRecord {
    pub path: String,
    /// The shell hook evaluates it (manifest, inherited files, `.env`).
    #[serde(default)]
    pub hook: bool,
    /// A manifest file: hashed wherever it is (an accepted file outside the project).
    #[serde(default)]
    pub source: bool,
    pub state: FileState,
}

/// The trust of one project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Record {
    /// The canonical manifest path (also the key in the store).
    pub manifest: String,
    /// The project directory every non-manifest file must stay in.
    pub root: String,
    /// When `allow` recorded it (seconds since the epoch).
    pub allowed_at: u64,
    pub files: Vec<FileRecord>,
    pub shown: Vec<Shown>,
    /// Inherited files outside the project that `allow` listed and the user accepted.
    #[serde(default)]
    pub outside: Vec<String>,
}

/// What differs between a record and the present.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Diff {
    pub files_added: Vec<String>,
    pub files_removed: Vec<String>,
    pub files_changed: Vec<String>,
    pub shown_added: Vec<Shown>,
    pub shown_removed: Vec<Shown>,
}

impl Diff {
    pub(crate) fn is_empty(&self) -> bool {
        self.files_added.is_empty()
            && self.files_removed.is_empty()
            && self.files_changed.is_empty()
            && self.shown_added.is_empty()
            && self.shown_removed.is_empty()
    }
}

/// A path as recorded (lossy only for names that are not UTF-8).
pub(crate) fn path_key(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// The canonical manifest path of `loaded`, the store's key.
pub(crate) fn manifest_key(file: &Path) -> String {
    path_key(&file.canonicalize().unwrap_or_else(|_| file.to_path_buf()))
}

/// The project directory of a manifest: its (canonical) directory.
pub(crate) fn root_of(loaded: &Loaded) -> PathBuf {
    let d = &loaded.manifest.dir;
    d.canonicalize().unwrap_or_else(|_| d.clone())
}

/// Inherited files outside the project: what the loader reports, and any source file whose
/// path is not under the project directory.
pub(crate) fn outside_files(loaded: &Loaded, root: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = loaded.outside_files.clone();
    for f in loaded.sources.files() {
        let p = f.path.canonicalize().unwrap_or_else(|_| f.path.clone());
        if !p.starts_with(root) && !v.contains(&p) {
            v.push(p);
        }
    }
    v
}

fn file_state(path: &Path, source: bool, root: &Path) -> FileState {
    if source {
        files::read(path)
    } else {
        files::state(path, root)
    }
}

impl Record {
    /// The record of the project as it is now.
    pub(crate) fn of(loaded: &Loaded, now: u64) -> Record {
        let root = root_of(loaded);
        let files = files::decisive(loaded, &root)
            .into_iter()
            .map(|d| FileRecord {
                path: path_key(&d.path),
                hook: d.hook,
                source: d.source,
                state: if d.too_many {
                    FileState::Unreadable {
                        error: format!(
                            "it names more than {} files that decide what runs (local packages, requirement files), too many to check",
                            files::MAX_DECISIVE
                        ),
                    }
                } else {
                    file_state(&d.path, d.source, &root)
                },
            })
            .collect();
        Record {
            manifest: manifest_key(&loaded.file),
            root: path_key(&root),
            allowed_at: now,
            files,
            shown: crate::trust::shown::shown(loaded, &root),
            outside: outside_files(loaded, &root)
                .iter()
                .map(|p| path_key(p))
                .collect(),
        }
    }

    /// Files that cannot be checked (too large, unreadable): such a project cannot be trusted.
    pub(crate) fn uncheckable(&self) -> Vec<(&str, &FileState)> {
        self.files
            .iter()
            .filter(|f| !f.state.checkable())
            .map(|f| (f.path.as_str(), &f.state))
            .collect()
    }

    /// What changed from `self` (the record) to `now` (the present).
    pub(crate) fn diff(&self, now: &Record) -> Diff {
        let mut d = Diff::default();
        for f in &now.files {
            match self.files.iter().find(|o| o.path == f.path) {
                None if f.state != FileState::Missing => d.files_added.push(f.path.clone()),
                None => {}
                Some(o) if o.state == f.state => {}
                Some(o) if o.state == FileState::Missing => d.files_added.push(f.path.clone()),
                Some(_) if f.state == FileState::Missing => d.files_removed.push(f.path.clone()),
                Some(_) => d.files_changed.push(f.path.clone()),
            }
        }
        for o in &self.files {
            if o.state != FileState::Missing && !now.files.iter().any(|f| f.path == o.path) {
                d.files_removed.push(o.path.clone());
            }
        }
        // A file that cannot be checked never matches.
        for f in &now.files {
            if !f.state.checkable() && !d.files_changed.contains(&f.path) {
                d.files_changed.push(f.path.clone());
            }
        }
        d.shown_added = now
            .shown
            .iter()
            .filter(|s| !self.shown.contains(s))
            .cloned()
            .collect();
        d.shown_removed = self
            .shown
            .iter()
            .filter(|s| !now.shown.contains(s))
            .cloned()
            .collect();
        d
    }

    /// The recorded files (all, or only those the hook evaluates) whose state differs now:
    /// nothing is parsed, only the recorded paths are looked at.
    pub(crate) fn changed_files(&self, hook_only: bool) -> Vec<String> {
        let root = PathBuf::from(&self.root);
        self.files
            .iter()
            .filter(|f| !hook_only || f.hook)
            .filter(|f| {
                let now = file_state(Path::new(&f.path), f.source, &root);
                now != f.state || !now.checkable()
            })
            .map(|f| f.path.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(files: &[(&str, FileState)], shown: &[(&str, &str)]) -> Record {
        Record {
            manifest: "/p/stackato.yml".into(),
            root: "/p".into(),
            allowed_at: 0,
            files: files
                .iter()
                .map(|(p, s)| FileRecord {
                    path: p.to_string(),
                    hook: false,
                    source: false,
                    state: s.clone(),
                })
                .collect(),
            shown: shown
                .iter()
                .map(|(w, t)| Shown {
                    what: w.to_string(),
                    text: t.to_string(),
                })
                .collect(),
            outside: Vec::new(),
        }
    }

    fn file(h: &str) -> FileState {
        FileState::File {
            sha256: h.into(),
            size: 1,
        }
    }

    #[test]
    fn the_diff_says_what_changed() {
        let old = rec(
            &[
                ("/p/a", file("1")),
                ("/p/b", file("2")),
                ("/p/c", FileState::Missing),
                ("/p/d", file("4")),
            ],
            &[("x web", "old"), ("x cron", "same")],
        );
        let now = rec(
            &[
                ("/p/a", file("1")),
                ("/p/b", file("9")),
                ("/p/c", file("3")),
                ("/p/d", FileState::Missing),
            ],
            &[("x web", "new"), ("x cron", "same")],
        );
        let d = old.diff(&now);
        assert_eq!(d.files_changed, vec!["/p/b"]);
        assert_eq!(d.files_added, vec!["/p/c"]);
        assert_eq!(d.files_removed, vec!["/p/d"]);
        assert_eq!(d.shown_added.len(), 1);
        assert_eq!(d.shown_added[0].text, "new");
        assert_eq!(d.shown_removed[0].text, "old");
        assert!(old.diff(&old).is_empty());
    }

    #[test]
    fn a_file_that_cannot_be_checked_never_matches() {
        let r = rec(&[("/p/big", FileState::TooLarge { size: 1 << 30 })], &[]);
        assert!(!r.diff(&r).is_empty());
        assert_eq!(r.uncheckable().len(), 1);
    }
}
