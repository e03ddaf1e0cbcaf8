//! Generations of an app's staged copy, the local droplet. Each staging copies the upload into
//! a new generation `apps/<app>/g<N>/staging/app` (where hooks and installers run); writing
//! the staging record switches the app to it (an atomic rename), and the older generations go.
//! Each instance runs in its own clone of the staged tree (`g<N>/<i>/app`), as each platform
//! instance had its own container; files it writes stay there until the next restage. While
//! the app runs, [`Copies`] syncs edits from the checkout into the staged tree and every
//! instance's clone.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::manifest::App;
use crate::platform::layout::{app_dir, generation_dir};
use crate::stage::copy::{self, Changes, CopyError, Record, Source};
use crate::stage::{StageError, Stager};
use crate::state::StateDir;

/// The file (in the generation's directory) recording what was copied from the checkout.
pub(crate) const UPLOAD_RECORD: &str = "upload.json";

/// The generations present on disk for `app` (complete or not).
pub(crate) fn generations(state_root: &Path, app: &str) -> Vec<u64> {
    let Ok(rd) = std::fs::read_dir(app_dir(state_root, app)) else {
        return Vec::new();
    };
    rd.filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.strip_prefix('g')?.parse::<u64>().ok()
        })
        .collect()
}

fn rel(state: &StateDir, p: &Path) -> String {
    p.strip_prefix(state.root())
        .unwrap_or(p)
        .to_string_lossy()
        .into_owned()
}

/// The staged tree of generation `g` (the droplet): `$HOME` while staging.
pub(crate) fn staged_home(state_root: &Path, app: &str, g: u64) -> PathBuf {
    generation_dir(state_root, app, g)
        .join("staging")
        .join("app")
}

/// Start generation `g`: a fresh copy of the upload, where staging then runs.
pub(crate) fn build(s: &Stager<'_>, g: u64) -> Result<Record, StageError> {
    let name = &s.app.name.value;
    let gdir = generation_dir(s.state.root(), name, g);
    if std::fs::symlink_metadata(&gdir).is_ok() {
        // Left by a staging that failed or was interrupted.
        std::fs::remove_dir_all(&gdir)
            .map_err(|e| StageError::Io(format!("could not remove {}: {e}", gdir.display())))?;
    }
    s.state
        .dir(rel(s.state, &gdir.join("staging")))
        .map_err(|e| StageError::Io(e.to_string()))?;
    let started = std::time::Instant::now();
    let (record, stats, left_out) = copy::populate_noting(&source(s.app, s.copy_unsafe_links), &s.home).map_err(
        |e| match e {
            CopyError::UnsafeLinks { .. } => StageError::Io(format!(
                "{e}\n  help: a push stops here too; remove the links, add them to `ignores:`, or run with --copy-unsafe-links to copy what they point to (as `stackato push --copy-unsafe-links` did)"
            )),
            other => StageError::Io(format!(
                "copying the upload into the staged copy: {other}\n  help: a push could not have read it either: fix its permissions, or add it to `ignores:`"
            )),
        },
    )?;
    for k in left_out.iter().take(10) {
        s.out.line(
            &s.prefix,
            &format!(
                "-----> not copied: {} ({})",
                crate::shell::shown_name(&k.rel),
                k.why
            ),
        );
    }
    if left_out.len() > 10 {
        s.out.line(
            &s.prefix,
            &format!(
                "-----> and {} more not copied (`config --upload-files` lists them)",
                left_out.len() - 10
            ),
        );
    }
    let how = if stats.files == 0 {
        String::new()
    } else if stats.reflinked == stats.files {
        ", reflinked".to_string()
    } else if stats.reflinked == 0 {
        String::new()
    } else {
        format!(", {} reflinked", stats.reflinked)
    };
    s.out.line(
        &s.prefix,
        &format!(
            "-----> copied the upload into the staged copy: {} files, {}{how} in {:.2} s ({})",
            stats.files,
            human_bytes(stats.bytes),
            started.elapsed().as_secs_f64(),
            crate::diag::display_path(&s.home)
        ),
    );
    Ok(record)
}

fn human_bytes(n: u64) -> String {
    match n {
        n if n >= 10 << 20 => format!("{} MB", n >> 20),
        n if n >= 10 << 10 => format!("{} KB", n >> 10),
        n => format!("{n} B"),
    }
}

/// The checkout side of `app`'s copies.
pub(crate) fn source(app: &App, copy_unsafe_links: bool) -> Source {
    Source {
        root: app.path.clone(),
        ignores: app.ignores.clone(),
        copy_unsafe_links,
    }
}

/// Record what generation `g` copied (once staging succeeded).
pub(crate) fn seal(
    state: &StateDir,
    app: &App,
    g: u64,
    rec: &Record,
) -> Result<(), crate::state::StateError> {
    let path = generation_dir(state.root(), &app.name.value, g).join(UPLOAD_RECORD);
    state.write_json(&rel(state, &path), rec)
}

/// After the switch to generation `g`: point `current` at it and remove the other
/// generations (their processes have stopped: a restage happens between runs of them).
pub(crate) fn switched(state: &StateDir, app: &App, g: u64) {
    let dir = app_dir(state.root(), &app.name.value);
    let tmp = dir.join(".current.tmp");
    let _ = std::fs::remove_file(&tmp);
    if std::os::unix::fs::symlink(format!("g{g}"), &tmp).is_ok() {
        let _ = std::fs::rename(&tmp, dir.join("current"));
    }
    for old in generations(state.root(), &app.name.value) {
        if old != g {
            let _ = std::fs::remove_dir_all(generation_dir(state.root(), &app.name.value, old));
        }
    }
}

/// Instance `i`'s own copy of generation `g` (its `$HOME`), cloned from the staged tree when
/// it does not exist yet; an existing one is kept (with what the instance wrote).
pub(crate) fn instance_home(
    state: &StateDir,
    app: &str,
    g: u64,
    i: u32,
) -> Result<PathBuf, CopyError> {
    let root = generation_dir(state.root(), app, g).join(i.to_string());
    let home = root.join("app");
    if std::fs::symlink_metadata(&home).is_ok_and(|m| m.is_dir()) {
        return Ok(home);
    }
    // One maker at a time (`run` and `exec --staged` in another terminal).
    let _lock = lock(state, app)?;
    if std::fs::symlink_metadata(&home).is_ok_and(|m| m.is_dir()) {
        return Ok(home);
    }
    state.dir(rel(state, &root)).map_err(|e| CopyError::Io {
        path: root.clone(),
        source: std::io::Error::other(e.to_string()),
    })?;
    let tmp = root.join(".app.tmp");
    if std::fs::symlink_metadata(&tmp).is_ok() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    copy::clone_tree(&staged_home(state.root(), app, g), &tmp)?;
    std::fs::rename(&tmp, &home).map_err(|source| CopyError::Io {
        path: home.clone(),
        source,
    })?;
    Ok(home)
}

/// The homes of the instances of generation `g` that have a copy, by instance number.
pub(crate) fn instance_homes(state: &StateDir, app: &str, g: u64) -> Vec<PathBuf> {
    let dir = generation_dir(state.root(), app, g);
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|e| {
                    let i = e.file_name().to_str()?.parse::<u32>().ok()?;
                    let home = e.path().join("app");
                    std::fs::symlink_metadata(&home)
                        .is_ok_and(|m| m.is_dir())
                        .then_some((i, home))
                })
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found.into_iter().map(|(_, h)| h).collect()
}

/// The lock of `app`'s copies: held while one is made or synced.
fn lock(state: &StateDir, app: &str) -> Result<crate::state::Lock, CopyError> {
    state
        .lock(&format!("copies-{}", crate::state::component(app)))
        .map_err(|e| CopyError::Io {
            path: state.path("locks"),
            source: std::io::Error::other(e.to_string()),
        })
}

/// One app's copies while it runs: edits in the checkout are synced into the staged tree and
/// every instance's clone before the processes restart.
pub(crate) struct Copies {
    pub app: String,
    source: Source,
    /// The checkout's canonical path (the watcher reports canonical paths).
    canon: PathBuf,
    staged: PathBuf,
    /// The instances' homes, by instance number.
    instances: Vec<PathBuf>,
    /// What the copies hold, read on first use (off the start-up path: on a big tree it is
    /// megabytes of JSON).
    record: Mutex<Option<Record>>,
    record_rel: String,
    state: StateDir,
    /// Serialises record writes (saved off the restart path).
    saving: Arc<Mutex<()>>,
    /// Saves in flight, joined by [`Copies::flush`].
    in_flight: Mutex<Vec<std::thread::JoinHandle<()>>>,
}

impl std::fmt::Debug for Copies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Copies")
            .field("app", &self.app)
            .field("staged", &self.staged)
            .finish()
    }
}

impl Copies {
    /// The copies of generation `g` of `app` for these instances' homes, with the record
    /// staging sealed; `None` when the record is missing or unreadable (then restage).
    pub(crate) fn open(
        state: &StateDir,
        app: &App,
        g: u64,
        instances: Vec<PathBuf>,
        copy_unsafe_links: bool,
    ) -> Option<Copies> {
        let path = generation_dir(state.root(), &app.name.value, g).join(UPLOAD_RECORD);
        let record_rel = rel(state, &path);
        if !std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file()) {
            return None;
        }
        let source = source(app, copy_unsafe_links);
        Some(Copies {
            app: app.name.value.clone(),
            canon: source.root.canonicalize().unwrap_or(source.root.clone()),
            source,
            staged: staged_home(state.root(), &app.name.value, g),
            instances,
            record: Mutex::new(None),
            record_rel,
            state: state.clone(),
            saving: Arc::new(Mutex::new(())),
            in_flight: Mutex::new(Vec::new()),
        })
    }

    /// The checkout directory the copies follow.
    pub(crate) fn checkout(&self) -> &Path {
        &self.source.root
    }

    fn targets(&self) -> Vec<PathBuf> {
        let mut t = vec![self.staged.clone()];
        t.extend(self.instances.iter().cloned());
        t
    }

    /// What changed in the checkout since the copies were last in step (a full walk).
    pub(crate) fn diff(&self) -> Result<Changes, CopyError> {
        let guard = self.record();
        let empty = Record::default();
        copy::diff(&self.source, guard.as_ref().unwrap_or(&empty))
    }

    /// Let go of the record in memory (read again on the next sync): a big tree's record is
    /// megabytes the supervisor need not hold while nothing changes.
    pub(crate) fn release(&self) {
        *self.record.lock().unwrap_or_else(|e| e.into_inner()) = None;
        crate::process::trim_heap();
    }

    /// The record, read now if it was not yet (an unreadable one reads as empty: every file
    /// then counts as changed and is copied again, which repairs the copies).
    fn record(&self) -> std::sync::MutexGuard<'_, Option<Record>> {
        let mut g = self.record.lock().unwrap_or_else(|e| e.into_inner());
        if g.is_none() {
            *g = Some(
                self.state
                    .read_json(&self.record_rel)
                    .ok()
                    .flatten()
                    .unwrap_or_default(),
            );
        }
        g
    }

    /// Sync these changed paths (absolute, as the watcher reports them); a directory among
    /// them, or `full`, means a full comparison. Returns notes for the user.
    pub(crate) fn sync_paths(&self, paths: &[PathBuf], full: bool) -> Vec<String> {
        let mut changes = Changes::default();
        let mut full = full;
        for p in paths {
            let Some(r) = p
                .strip_prefix(&self.canon)
                .ok()
                .or_else(|| p.strip_prefix(&self.source.root).ok())
            else {
                continue;
            };
            let r = r.to_string_lossy().into_owned();
            if r.is_empty() {
                full = true;
                break;
            }
            match std::fs::symlink_metadata(self.source.root.join(&r)) {
                Ok(m) if m.is_dir() => {
                    full = true;
                    break;
                }
                Ok(_) => changes.changed.push(r),
                Err(_) => changes.removed.push(r),
            }
        }
        if full {
            match self.diff() {
                Ok(c) => changes = c,
                Err(e) => {
                    return vec![format!(
                        "{}: could not compare with the checkout: {e}",
                        self.app
                    )];
                }
            }
        }
        self.sync(&changes)
    }

    /// Apply `changes` to every copy; the record is saved in the background.
    pub(crate) fn sync(&self, changes: &Changes) -> Vec<String> {
        if changes.is_empty() {
            return Vec::new();
        }
        let mut notes = Vec::new();
        let _lock = match lock(&self.state, &self.app) {
            Ok(l) => l,
            Err(e) => return vec![format!("{}: not synced: {e}", self.app)],
        };
        // A copy reached through a link (a `git checkout` can put one in `.stackato-local`)
        // is never written to.
        let targets: Vec<PathBuf> = self
            .targets()
            .into_iter()
            .filter(|t| match crate::state::check_inside(self.state.root(), t) {
                Ok(()) => true,
                Err(e) => {
                    notes.push(format!(
                        "error: {}: the copy {} is not synced: {e}",
                        self.app,
                        t.display()
                    ));
                    false
                }
            })
            .collect();
        if targets.first() != Some(&self.staged) {
            return notes;
        }
        let mut guard = self.record();
        let rec = guard.get_or_insert_with(Record::default);
        match copy::sync(&self.source, &targets, changes, rec) {
            Ok(skipped) => {
                let mut seen = std::collections::BTreeSet::new();
                for s in skipped {
                    if seen.insert(s.rel.clone()) {
                        notes.push(format!(
                            "{}: {} not synced into the staged copy: {}",
                            self.app,
                            crate::shell::shown_name(&s.rel),
                            s.why
                        ));
                    }
                }
            }
            Err(e) => notes.push(format!(
                "{}: syncing the edit into the staged copy failed: {e} (--restage makes a fresh copy)",
                self.app
            )),
        }
        if !changes.unsafe_links.is_empty() {
            notes.push(format!(
                "{}: not synced: {} (the app keeps the last copy of them; remove the links, or run with --copy-unsafe-links)",
                self.app,
                copy::refusal(&changes.unsafe_links, &self.source.root)
            ));
        }
        let snapshot = rec.clone();
        drop(guard);
        let (state, rel, saving) = (
            self.state.clone(),
            self.record_rel.clone(),
            Arc::clone(&self.saving),
        );
        let handle = std::thread::spawn(move || {
            let _one = saving.lock().unwrap_or_else(|e| e.into_inner());
            let _ = state.write_json(&rel, &snapshot);
        });
        let mut in_flight = self.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        in_flight.retain(|h| !h.is_finished());
        in_flight.push(handle);
        notes
    }

    /// Files each instance wrote into its own copy (new or changed since it was cloned).
    pub(crate) fn written(&self) -> Vec<(u32, PathBuf, Vec<String>)> {
        self.instances
            .iter()
            .enumerate()
            .filter_map(|(i, home)| {
                let w = copy::written(&self.staged, home);
                (!w.is_empty()).then(|| (i as u32, home.clone(), w))
            })
            .collect()
    }

    /// Wait for the record saves in flight.
    pub(crate) fn flush(&self) {
        let handles =
            std::mem::take(&mut *self.in_flight.lock().unwrap_or_else(|e| e.into_inner()));
        for h in handles {
            let _ = h.join();
        }
    }
}
