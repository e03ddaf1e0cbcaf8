//! Trust before anything of a project runs, as direnv does: every command the project would
//! run, the installers that run its code and the variables that change how programs run are
//! shown (`allow`, or the prompt on a terminal) and recorded outside the project with the
//! SHA-256 digest of every file that decides them; a change to any of them asks again.
//! [`require`] is the one gate of `run`, `exec`, `ssh`, `dbshell` and `services start`;
//! [`hook_gate`] is the shell hook's (a `stat` and the recorded digests, no parsing).

pub(crate) mod display;
pub(crate) mod files;
pub(crate) mod record;
pub(crate) mod shown;
pub(crate) mod store;

use std::path::{Path, PathBuf};

use crate::manifest::Loaded;
pub(crate) use record::Record;
pub(crate) use store::{Store, StoreError};

/// Seconds since the epoch.
fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// How the gate let the project through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Granted {
    /// A matching record.
    Recorded,
    /// `--trust` or STACKATO_LOCAL_TRUST=1: this invocation only.
    Once,
    /// The user answered yes at the prompt; recorded.
    Answered,
}

/// Why the gate refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Refused {
    #[error(
        "{file} runs these commands, and they have not been trusted on this machine yet:\n{listing}review them, then run `stackato-local allow` (or pass --trust)"
    )]
    NotAllowed { file: String, listing: String },
    #[error(
        "{file} or a file it reads changed since it was allowed:\n{diff}it runs these commands now:\n{listing}review them, then run `stackato-local allow` (or pass --trust)"
    )]
    Changed {
        file: String,
        diff: String,
        listing: String,
    },
    #[error("{file} cannot be trusted: {why}")]
    Uncheckable { file: String, why: String },
    #[error("not trusted: nothing was run")]
    Declined,
    /// Ctrl-C (or another stop signal) while the question waited: `128 + signal`.
    #[error("interrupted: nothing was run")]
    Interrupted(i32),
    #[error("{0}")]
    Store(#[from] StoreError),
}

impl Refused {
    /// The exit code to end with.
    pub(crate) fn exit_code(&self) -> i32 {
        match self {
            Refused::Store(_) => crate::exit::IO,
            Refused::Interrupted(sig) => 128 + sig,
            _ => crate::exit::UNTRUSTED,
        }
    }
}

/// Whether STACKATO_LOCAL_TRUST=1 is set in this process's own environment.
pub(crate) fn env_trust() -> bool {
    std::env::var_os("STACKATO_LOCAL_TRUST").is_some_and(|v| v == "1")
}

/// The listing shown for a record: outside files first, then everything it runs.
pub(crate) fn listing(r: &Record) -> String {
    let mut s = String::new();
    for o in &r.outside {
        s.push_str(&format!(
            "  INHERITED FROM OUTSIDE THE PROJECT: {}\n",
            display::escape(o)
        ));
    }
    if r.shown.is_empty() {
        s.push_str("  (no commands of its own; its installers and environment are covered)\n");
    }
    s.push_str(&display::listing(&r.shown));
    s
}

fn uncheckable(r: &Record) -> Option<String> {
    let bad = r.uncheckable();
    if bad.is_empty() {
        return None;
    }
    Some(
        bad.iter()
            .map(|(p, st)| {
                let why = match st {
                    files::FileState::TooLarge { size } => {
                        format!(
                            "{size} bytes, more than the {} MiB checked",
                            files::MAX_FILE >> 20
                        )
                    }
                    files::FileState::Unreadable { error } => error.clone(),
                    _ => String::new(),
                };
                format!("{} ({})", display::escape(p), display::escape(&why))
            })
            .collect::<Vec<_>>()
            .join(", "),
    )
}

/// Asks the user whether to trust what a question lists: `Ok(true)` for yes, `Err(signal)`
/// when a stop signal came first. The `cli` asks on the terminal.
pub(crate) type Ask<'a> = &'a mut dyn FnMut(&str) -> Result<bool, i32>;

/// The gate: `loaded` runs only with a matching record, `--trust` (`assume`) or
/// STACKATO_LOCAL_TRUST=1, or a yes from `ask` (the caller passes none when nobody can
/// answer).
pub(crate) fn require(
    loaded: &Loaded,
    assume: bool,
    ask: Option<Ask<'_>>,
) -> Result<Granted, Refused> {
    if assume || env_trust() {
        return Ok(Granted::Once);
    }
    let file = display::rel_path(&loaded.file);
    let now = Record::of(loaded, now());
    if let Some(why) = uncheckable(&now) {
        return Err(Refused::Uncheckable { file, why });
    }
    let (_, store) = Store::load()?;
    // A record made for another directory (this manifest is a link to that project's) says
    // nothing of this directory's files: not allowed here.
    let refusal = match store
        .projects
        .get(&now.manifest)
        .filter(|o| o.root == now.root)
    {
        Some(old) => {
            let d = old.diff(&now);
            if d.is_empty() {
                return Ok(Granted::Recorded);
            }
            Refused::Changed {
                file,
                diff: display::diff(&d),
                listing: listing(&now),
            }
        }
        None => Refused::NotAllowed {
            file,
            listing: listing(&now),
        },
    };
    let Some(ask) = ask else {
        return Err(refusal);
    };
    let question = match &refusal {
        Refused::Changed {
            file,
            diff,
            listing,
        } => format!(
            "{file} or a file it reads changed since it was allowed:\n{diff}it will run these commands on your machine:\n{listing}"
        ),
        _ => format!(
            "{} will run these commands on your machine:\n{}",
            display::rel_path(&loaded.file),
            listing(&now)
        ),
    };
    if ask(&question).map_err(Refused::Interrupted)? {
        record(now)?;
        Ok(Granted::Answered)
    } else {
        Err(Refused::Declined)
    }
}

/// Store `r` (replacing the project's older record); the store's path.
fn record(r: Record) -> Result<PathBuf, StoreError> {
    let mut l = Store::lock()?;
    l.store.projects.insert(r.manifest.clone(), r);
    l.save()?;
    Ok(l.path)
}

/// `allow`: the record of the project as it is now, and where it was stored. Refused when a
/// file that decides what runs cannot be checked.
pub(crate) fn allow(loaded: &Loaded) -> Result<(Record, PathBuf), Refused> {
    let r = Record::of(loaded, now());
    if let Some(why) = uncheckable(&r) {
        return Err(Refused::Uncheckable {
            file: display::rel_path(&loaded.file),
            why,
        });
    }
    let path = record(r.clone())?;
    Ok((r, path))
}

/// `deny DIR`: forget the record of the manifest in `dir` (or of `manifest`); the manifests
/// whose records were removed.
pub(crate) fn deny(dir: &Path, manifest: Option<&Path>) -> Result<Vec<String>, StoreError> {
    let dir_c = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let key = crate::manifest::locate(dir, manifest)
        .ok()
        .map(|f| record::manifest_key(&f));
    let mut l = Store::lock()?;
    let gone: Vec<String> = l
        .store
        .projects
        .keys()
        .filter(|k| {
            Some(k.as_str()) == key.as_deref()
                || (manifest.is_none() && Path::new(k.as_str()).parent() == Some(dir_c.as_path()))
        })
        .cloned()
        .collect();
    for k in &gone {
        l.store.projects.remove(k);
    }
    if !gone.is_empty() {
        l.save()?;
    }
    Ok(gone)
}

/// How a recorded project stands now, for `allow --list` (nothing is parsed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Standing {
    Matching,
    /// These recorded files differ.
    Changed(Vec<String>),
    Gone,
}

/// Every record, with how it stands.
pub(crate) fn list() -> Result<Vec<(Record, Standing)>, StoreError> {
    let (_, store) = Store::load()?;
    Ok(store
        .projects
        .into_values()
        .map(|r| {
            let st = if !Path::new(&r.manifest).exists() {
                Standing::Gone
            } else {
                let c = r.changed_files(false);
                if c.is_empty() {
                    Standing::Matching
                } else {
                    Standing::Changed(c)
                }
            };
            (r, st)
        })
        .collect())
}

/// The manifest file the hook would load in `root` (where it found one): a `stat` only.
fn manifest_in(root: &Path) -> Option<PathBuf> {
    ["stackato.yml", "manifest.yml"]
        .iter()
        .map(|n| root.join(n))
        .find(|p| p.is_file())
}

/// Why the shell hook does not load a project (one line, shown by the hook).
#[derive(Debug, thiserror::Error)]
pub(crate) enum HookGateError {
    #[error("stackato-local: {dir} is not allowed{why}; review it and run `stackato-local allow`")]
    NotAllowed { dir: String, why: String },
    #[error("stackato-local: {0}")]
    Store(#[from] StoreError),
}

/// The shell hook's gate for the project in `root`: without a record nothing is read (a
/// `stat`); with one, the files the hook evaluates (manifest, inherited files, `.env`) are
/// hashed and compared, without parsing. `Ok` carries the accepted outside files.
pub(crate) fn hook_gate(root: &Path) -> Result<Vec<PathBuf>, HookGateError> {
    let not_allowed = |why: &str| HookGateError::NotAllowed {
        dir: display::path(root),
        why: why.to_string(),
    };
    let Some(m) = manifest_in(root) else {
        return Err(not_allowed(""));
    };
    let key = record::manifest_key(&m);
    let (_, store) = Store::load()?;
    let Some(r) = store.projects.get(&key) else {
        return Err(not_allowed(""));
    };
    // A manifest that is a link to an allowed project's: the record is that project's, and
    // its digests say nothing of this directory's `.env` and state.
    let here = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    if Path::new(&r.root) != here {
        return Err(not_allowed(&format!(
            " (its manifest is a link to {}, allowed for {})",
            display::escape(&key),
            display::escape(&r.root)
        )));
    }
    let changed = r.changed_files(true);
    if !changed.is_empty() {
        let names: Vec<String> = changed
            .iter()
            .map(|p| display::escape(&crate::diag::display_path(Path::new(p))))
            .collect();
        return Err(not_allowed(&format!(
            " ({} changed since `allow`)",
            names.join(", ")
        )));
    }
    Ok(r.outside.iter().map(PathBuf::from).collect())
}

/// The allowed project above the manifest `file` that inherits it (a shared base kept in a
/// sub-directory, as `inherit: base/stackato.yml`), when `file` has no record of its own: the
/// nearest such project's directory. Only the store is read.
pub(crate) fn inheriting_project(file: &Path) -> Option<PathBuf> {
    let key = record::manifest_key(file);
    let store = Store::read_quiet().ok()?;
    if store.projects.contains_key(&key) {
        return None;
    }
    let here = Path::new(&key).parent()?;
    store
        .projects
        .values()
        .filter_map(|r| {
            let dir = Path::new(&r.manifest).parent()?;
            (dir != here
                && here.starts_with(dir)
                && r.files.iter().any(|f| f.source && f.path == key))
            .then(|| dir.to_path_buf())
        })
        .max_by_key(|d| d.as_os_str().len())
}

/// The outside files the user accepted for the manifest `opts` would load (from its record),
/// so that commands other than `allow` read them.
pub(crate) fn accepted_outside(opts: &crate::manifest::LoadOptions) -> Vec<PathBuf> {
    let Ok(m) = crate::manifest::locate(&opts.dir, opts.manifest.as_deref()) else {
        return Vec::new();
    };
    let key = record::manifest_key(&m);
    Store::read_quiet()
        .ok()
        .and_then(|s| s.projects.get(&key).map(|r| r.outside.clone()))
        .unwrap_or_default()
        .into_iter()
        .map(PathBuf::from)
        .collect()
}

/// The `.env` files the environment reads by default, for every app.
pub(crate) fn dotenv_files(loaded: &Loaded) -> Vec<PathBuf> {
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

/// The files a watching `run` must re-check when they change (every recorded file of the
/// project), so that a change reloads and goes through the gate again.
pub(crate) fn watched_files(loaded: &Loaded) -> Vec<PathBuf> {
    let root = record::root_of(loaded);
    files::decisive(loaded, &root)
        .into_iter()
        .map(|d| d.path)
        .collect()
}
