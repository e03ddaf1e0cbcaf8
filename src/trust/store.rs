//! The trust store: one JSON file, `$XDG_DATA_HOME/stackato-local/trust.json` (else
//! `~/.local/share/…`), located from this process's own environment only, holding one
//! [`Record`] per project keyed by its canonical manifest path. Written atomically under a
//! lock; the old line-based `trusted` file is not honoured (a one-time notice says so).

use std::collections::BTreeMap;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::trust::record::Record;

/// The store's format version.
const VERSION: u32 = 1;
/// Largest store we read.
const MAX_STORE: u64 = 256 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    #[error("cannot find the trust store: neither XDG_DATA_HOME (absolute) nor HOME is set")]
    NoLocation,
    #[error("cannot read the trust store {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the trust store {path} is damaged ({reason}); move it away and allow projects again")]
    Corrupt { path: PathBuf, reason: String },
    #[error("{0}")]
    State(#[from] crate::state::StateError),
}

/// The whole store.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub(crate) struct Store {
    pub version: u32,
    /// The notice about the old `trusted` file was printed.
    #[serde(default)]
    pub old_format_noticed: bool,
    #[serde(default)]
    pub projects: BTreeMap<String, Record>,
}

/// The data directory: `$XDG_DATA_HOME` when absolute (the XDG rule), else
/// `$HOME/.local/share`; from this process's environment, never a project's.
pub(crate) fn data_home() -> Option<PathBuf> {
    std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".local").join("share"))
        })
}

/// `…/stackato-local/trust.json`.
pub(crate) fn location() -> Result<PathBuf, StoreError> {
    data_home()
        .map(|d| d.join("stackato-local").join("trust.json"))
        .ok_or(StoreError::NoLocation)
}

/// The old line-based store beside the new one.
fn old_location(store: &Path) -> PathBuf {
    store.with_file_name("trusted")
}

fn read_store(path: &Path) -> Result<Option<Store>, StoreError> {
    use crate::fsx::ReadError;
    let corrupt = |reason: String| StoreError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    // The user's own file: a link to it is followed (dotfile managers link such files).
    let bytes = match crate::fsx::read_capped(path, true, MAX_STORE) {
        Ok(b) => b,
        Err(ReadError::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(ReadError::Io(source)) => {
            return Err(StoreError::Read {
                path: path.to_path_buf(),
                source,
            });
        }
        Err(e) => return Err(corrupt(e.to_string())),
    };
    let s: Store = serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
    if s.version != VERSION {
        return Err(corrupt(format!(
            "format version {} is not {VERSION}",
            s.version
        )));
    }
    Ok(Some(s))
}

/// An exclusive lock on the store, for read-modify-write; released on drop.
pub(crate) struct Locked {
    pub path: PathBuf,
    pub store: Store,
    _lock: std::fs::File,
}

impl Store {
    /// Read the store (empty when it does not exist yet).
    pub(crate) fn load() -> Result<(PathBuf, Store), StoreError> {
        let path = location()?;
        let store = read_store(&path)?.unwrap_or(Store {
            version: VERSION,
            ..Store::default()
        });
        Ok((path, store))
    }

    /// The notice that the old format is no longer honoured, once (the store remembers it
    /// was given): for the `cli` to show before it consults the store.
    pub(crate) fn old_format_notice() -> Option<String> {
        let path = location().ok()?;
        let store = read_store(&path).ok()?.unwrap_or_default();
        let old = old_location(&path);
        if store.old_format_noticed || std::fs::symlink_metadata(&old).is_err() {
            return None;
        }
        // Once: remember it (a failure only means the notice comes again).
        if let Ok(mut l) = Store::lock() {
            l.store.old_format_noticed = true;
            let _ = l.save();
        }
        Some(format!(
            "stackato-local: the trust store changed format; projects must be allowed again (old file: {})",
            crate::trust::display::path(&old)
        ))
    }

    /// Read the store without the notice (for looking a record up on the side).
    pub(crate) fn read_quiet() -> Result<Store, StoreError> {
        Ok(read_store(&location()?)?.unwrap_or(Store {
            version: VERSION,
            ..Store::default()
        }))
    }

    /// Lock the store and read it, to change it.
    pub(crate) fn lock() -> Result<Locked, StoreError> {
        let path = location()?;
        let dir = path.parent().unwrap_or(Path::new("/"));
        crate::state::create_private_dir(dir)?;
        let lock_path = dir.join("trust.lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&lock_path)
            .map_err(|source| StoreError::Read {
                path: lock_path.clone(),
                source,
            })?;
        lock.lock().map_err(|source| StoreError::Read {
            path: lock_path,
            source,
        })?;
        let store = read_store(&path)?.unwrap_or(Store {
            version: VERSION,
            ..Store::default()
        });
        Ok(Locked {
            path,
            store,
            _lock: lock,
        })
    }
}

impl Locked {
    /// Write the store atomically (0600).
    pub(crate) fn save(&mut self) -> Result<(), StoreError> {
        self.store.version = VERSION;
        let mut text =
            serde_json::to_string_pretty(&self.store).map_err(|e| StoreError::Corrupt {
                path: self.path.clone(),
                reason: e.to_string(),
            })?;
        text.push('\n');
        crate::state::write_atomic(&self.path, text.as_bytes())?;
        Ok(())
    }
}
