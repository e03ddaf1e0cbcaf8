//! Watching the app for changes: inotify (or polling, `--poll`) on every directory that is not
//! ignored, filtered by `.gitignore` files (nested, plus `.git/info/exclude`), the manifest's
//! `ignores:` (or the platform's default list), our state dir, `.git/` and `--ignore` globs.
//! Changed paths are forwarded to the supervisor, which debounces and classifies them.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ignore::gitignore::{Gitignore, GitignoreBuilder};
use notify::{EventKind, RecursiveMode, Watcher as _};

use crate::stage::ignores::Ignores;

/// What a change means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Change {
    /// Application code: restart the processes.
    Code,
    /// A requirements file: restage, then restart.
    Requirements,
    /// The manifest (or a file it inherits): reload, restage, restart.
    Manifest,
}

/// Requirement files that make a restage necessary.
pub(crate) const REQUIREMENT_FILES: &[&str] = &[
    "requirements.txt",
    "requirements.pip",
    "requirements-pypm.txt",
    "package.json",
    "package-lock.json",
    "cpanfile",
    "Makefile.PL",
    "Gemfile",
    "Gemfile.lock",
    "composer.json",
    "composer.lock",
    "crontab",
    "Procfile",
    "go.mod",
    "go.sum",
];

/// Which paths matter, for one project.
pub(crate) struct Filter {
    /// The app directories (an app's `ignores:` apply below its own directory).
    apps: Vec<(PathBuf, Ignores)>,
    state_dir: PathBuf,
    roots: Vec<PathBuf>,
    /// `.gitignore` matchers, deepest directory first; read on first use (by the watcher's
    /// thread, off the start-up path).
    gitignores: std::sync::OnceLock<Vec<(PathBuf, Gitignore)>>,
    /// `--ignore GLOB`s.
    extra: Option<Gitignore>,
    /// Manifest files (root and inherited).
    manifests: Vec<PathBuf>,
    /// App directories where any edit restages (apps built by a buildpack's compile).
    rebuilt: Vec<PathBuf>,
}

impl Filter {
    /// Build the filter; reads the `.gitignore` files below `roots`.
    pub(crate) fn new(
        roots: &[PathBuf],
        apps: Vec<(PathBuf, Option<Vec<String>>)>,
        state_dir: PathBuf,
        extra_globs: &[String],
        manifests: Vec<PathBuf>,
    ) -> Filter {
        let extra = (!extra_globs.is_empty()).then(|| {
            let base = roots.first().cloned().unwrap_or_default();
            let mut b = GitignoreBuilder::new(&base);
            for g in extra_globs {
                let _ = b.add_line(None, g);
            }
            b.build().unwrap_or_else(|_| Gitignore::empty())
        });
        Filter {
            apps: apps
                .into_iter()
                .map(|(p, i)| (p, Ignores::new(i.as_deref())))
                .collect(),
            state_dir,
            roots: roots.to_vec(),
            gitignores: std::sync::OnceLock::new(),
            extra,
            manifests,
            rebuilt: Vec::new(),
        }
    }

    /// Make any change below these directories a restage (see [`Change::Requirements`]).
    pub(crate) fn restage_on_any_edit(&mut self, dirs: Vec<PathBuf>) {
        self.rebuilt = dirs;
    }

    fn gitignores(&self) -> &[(PathBuf, Gitignore)] {
        self.gitignores.get_or_init(|| {
            let mut g = Vec::new();
            for root in &self.roots {
                collect_gitignores(root, &self.state_dir, &mut g);
            }
            g.sort_by_key(|(d, _)| std::cmp::Reverse(d.components().count()));
            g
        })
    }

    /// Whether a change of `path` should be ignored.
    pub(crate) fn is_ignored(&self, path: &Path, is_dir: bool) -> bool {
        if path.starts_with(&self.state_dir) {
            return true;
        }
        if path.components().any(|c| c.as_os_str() == ".git") {
            return true;
        }
        if self.manifests.iter().any(|m| m == path) {
            return false;
        }
        if let Some(x) = &self.extra
            && x.matched_path_or_any_parents(path, is_dir).is_ignore()
        {
            return true;
        }
        for (dir, gi) in self.gitignores() {
            if path.starts_with(dir) {
                let m = gi.matched_path_or_any_parents(path, is_dir);
                if m.is_ignore() {
                    return true;
                }
                if m.is_whitelist() {
                    break;
                }
            }
        }
        // The app's own ignore rules (client semantics), relative to its directory.
        for (app_dir, ig) in &self.apps {
            if let Ok(rel) = path.strip_prefix(app_dir) {
                let rel = rel.to_string_lossy().replace('\\', "/");
                if rel.is_empty() {
                    return false;
                }
                // An ignored parent directory ignores everything below it.
                let mut acc = String::new();
                let parts: Vec<&str> = rel.split('/').collect();
                for (i, part) in parts.iter().enumerate() {
                    if !acc.is_empty() {
                        acc.push('/');
                    }
                    acc.push_str(part);
                    let dir = i + 1 < parts.len() || is_dir;
                    if ig.is_ignored(&acc, dir) {
                        return true;
                    }
                }
                return false;
            }
        }
        false
    }

    /// What a change of `path` means.
    pub(crate) fn classify(&self, path: &Path) -> Change {
        if self.manifests.iter().any(|m| m == path) {
            return Change::Manifest;
        }
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if REQUIREMENT_FILES.contains(&name)
            && self
                .apps
                .iter()
                .any(|(d, _)| path.parent() == Some(d.as_path()))
        {
            return Change::Requirements;
        }
        if self.rebuilt.iter().any(|d| path.starts_with(d)) {
            return Change::Requirements;
        }
        Change::Code
    }
}

/// What a [`walk_dirs`] visit says about the directory it was shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Visit {
    /// Go on into its subdirectories.
    Descend,
    /// Leave its subdirectories out.
    Skip,
    /// End the walk.
    Stop,
}

/// Show `root` and every directory below it that `filter` keeps to `visit`, depth first (as
/// the watcher adds them, and as `doctor` counts them). Links are not followed.
pub(crate) fn walk_dirs(root: &Path, filter: &Filter, mut visit: impl FnMut(&Path) -> Visit) {
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        match visit(&d) {
            Visit::Descend => {}
            Visit::Skip => continue,
            Visit::Stop => return,
        }
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.filter_map(Result::ok) {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                let p = e.path();
                if !filter.is_ignored(&p, true) {
                    stack.push(p);
                }
            }
        }
    }
}

/// The roots `run` watches for a manifest (every app directory, `extra` paths, and the
/// manifest's own directory) and the filter for them.
pub(crate) fn for_project(
    loaded: &crate::manifest::Loaded,
    state_root: &Path,
    extra: &[PathBuf],
    ignore_globs: &[String],
) -> (Vec<PathBuf>, Filter) {
    let mut roots: Vec<PathBuf> = Vec::new();
    let mut push = |p: PathBuf| {
        let p = p.canonicalize().unwrap_or(p);
        if !roots.iter().any(|r| p.starts_with(r)) {
            roots.retain(|r| !r.starts_with(&p));
            roots.push(p);
        }
    };
    for a in &loaded.manifest.apps {
        push(a.path.clone());
    }
    for w in extra {
        push(w.clone());
    }
    let manifests: Vec<PathBuf> = loaded
        .sources
        .files()
        .iter()
        .map(|f| f.path.canonicalize().unwrap_or_else(|_| f.path.clone()))
        .collect();
    // The manifest's own directory, for stackato.yml itself when apps live below it.
    if let Some(d) = manifests.first().and_then(|m| m.parent()) {
        let d = d.to_path_buf();
        if !roots.iter().any(|r| d.starts_with(r)) {
            roots.push(d);
        }
    }
    // Every file trust covers reloads when it changes, and so goes through the gate again
    // (requirement files already do, as requirements).
    let mut manifests = manifests;
    for f in crate::trust::watched_files(loaded) {
        let name = f.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if !manifests.contains(&f) && !REQUIREMENT_FILES.contains(&name) {
            manifests.push(f);
        }
    }
    let state_dir = state_root
        .canonicalize()
        .unwrap_or_else(|_| state_root.to_path_buf());
    let filter = Filter::new(
        &roots,
        loaded
            .manifest
            .apps
            .iter()
            .map(|a| (a.path.clone(), a.ignores.clone()))
            .collect(),
        state_dir,
        ignore_globs,
        manifests,
    );
    (roots, filter)
}

/// Read `.gitignore` files (and `.git/info/exclude`) below `root`, skipping our state dir and
/// `.git`.
fn collect_gitignores(root: &Path, state_dir: &Path, out: &mut Vec<(PathBuf, Gitignore)>) {
    let exclude = root.join(".git").join("info").join("exclude");
    if exclude.is_file() {
        let mut b = GitignoreBuilder::new(root);
        let _ = b.add(&exclude);
        if let Ok(g) = b.build() {
            out.push((root.to_path_buf(), g));
        }
    }
    let mut stack = vec![root.to_path_buf()];
    let mut dirs = 0;
    while let Some(dir) = stack.pop() {
        dirs += 1;
        if dirs > 100_000 {
            break;
        }
        let gi = dir.join(".gitignore");
        let mut this: Option<Gitignore> = None;
        if gi.is_file() {
            let mut b = GitignoreBuilder::new(&dir);
            let _ = b.add(&gi);
            if let Ok(g) = b.build() {
                this = Some(g);
            }
        }
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.filter_map(Result::ok) {
            let Ok(ft) = e.file_type() else { continue };
            if !ft.is_dir() {
                continue;
            }
            let p = e.path();
            if p.starts_with(state_dir) || e.file_name() == ".git" {
                continue;
            }
            // Don't descend into directories the nearer .gitignore ignores (node_modules…).
            if this
                .as_ref()
                .is_some_and(|g| g.matched(&p, true).is_ignore())
            {
                continue;
            }
            stack.push(p);
        }
        if let Some(g) = this {
            out.push((dir, g));
        }
    }
}

/// The running watcher; dropping it stops watching.
pub(crate) struct Watching {
    _thread: std::thread::JoinHandle<()>,
    /// Set on drop: the thread ends, and its inotify instance is closed.
    stop: Arc<std::sync::atomic::AtomicBool>,
    /// Wakes the thread on drop, so the instance is closed at once: the kernel takes a few
    /// milliseconds to tear one down, better spent while the processes stop than at our exit.
    wake: Events,
}

impl Drop for Watching {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = self.wake.send(Err(notify::Error::generic("stopped")));
    }
}

/// The polling interval when inotify cannot be used (as `--poll` without a value).
pub(crate) const FALLBACK_POLL: Duration = Duration::from_millis(500);

type Events = std::sync::mpsc::Sender<notify::Result<notify::Event>>;

fn poll_watcher(ntx: Events, interval: Duration) -> notify::Result<Box<dyn notify::Watcher>> {
    // Compare contents too: mtimes are compared in whole seconds, which misses a second save
    // within the same second.
    // Symbolic links are not followed, as with inotify (which watches real directories only):
    // the state directory links back into the app.
    let cfg = notify::Config::default()
        .with_poll_interval(interval)
        .with_compare_contents(true)
        .with_follow_symlinks(false);
    Ok(Box::new(notify::PollWatcher::new(ntx, cfg)?))
}

/// Why inotify cannot be used, naming the limit and how to raise it.
fn inotify_exhausted(
    what: &str,
    sysctl: &str,
    limit: Option<u64>,
    used: Option<u64>,
    floor: u64,
) -> String {
    // Said in full once; a later round of the same `run` (after a reload) says it briefly.
    static SAID: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if SAID.swap(true, std::sync::atomic::Ordering::Relaxed) {
        return format!(
            "warning: still no inotify ({sysctl}); watching by polling every {} ms",
            FALLBACK_POLL.as_millis()
        );
    }
    let want = used
        .unwrap_or(0)
        .max(limit.unwrap_or(0))
        .saturating_mul(2)
        .max(floor);
    let limit = limit.map_or(String::new(), |l| format!(" = {l}"));
    let used = used.map_or(String::new(), |u| format!(", {u} in use by your programs"));
    format!(
        "warning: cannot watch files with inotify: {what} ({sysctl}{limit}{used}); watching by polling every {} ms instead. Raise the limit: `echo {sysctl}={want} | sudo tee /etc/sysctl.d/90-stackato-local-{}.conf && sudo sysctl --system` (or close programs that watch files), or pass --poll to choose polling yourself",
        FALLBACK_POLL.as_millis(),
        sysctl.rsplit('_').next().unwrap_or("inotify"),
    )
}

fn no_instance(e: &notify::Error) -> String {
    use crate::onboard::watches;
    let errno = match &e.kind {
        notify::ErrorKind::Io(io) => io.raw_os_error(),
        _ => None,
    };
    let what = if errno == Some(libc::EMFILE) {
        "no inotify instance left for this user, or too many open files".to_string()
    } else {
        format!("no inotify instance could be created ({e})")
    };
    inotify_exhausted(
        &what,
        "fs.inotify.max_user_instances",
        watches::max_user_instances(),
        watches::instances_in_use(),
        1024,
    )
}

fn no_watch_left() -> String {
    use crate::onboard::watches;
    inotify_exhausted(
        "no inotify watch left for this user",
        "fs.inotify.max_user_watches",
        watches::max_user_watches(),
        watches::watches_in_use(),
        524_288,
    )
}

/// Watch `roots` (recursively, skipping ignored directories) and send each relevant changed
/// path to `tx`. With `poll`, stat the tree at that interval instead of using inotify. When
/// inotify runs out (no instance, no watch left, at start or later) it says so through `out`,
/// naming the limit, and polls instead; other watcher errors are reported too.
pub(crate) fn start(
    roots: Vec<PathBuf>,
    filter: Arc<Filter>,
    poll: Option<Duration>,
    tx: tokio::sync::mpsc::UnboundedSender<Vec<PathBuf>>,
    out: Arc<crate::output::Output>,
    armed: tokio::sync::oneshot::Sender<()>,
) -> Watching {
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopped = Arc::clone(&stop);
    let (ntx, nrx) = std::sync::mpsc::channel::<notify::Result<notify::Event>>();
    let wake = ntx.clone();
    let thread = std::thread::spawn(move || {
        let mut poll = poll;
        // Said once the poller has taken its first look at the files, so that an edit made
        // after the warning is never part of that first look (and missed).
        let mut no_inotify: Option<String> = None;
        let made = match poll {
            Some(interval) => poll_watcher(ntx.clone(), interval),
            None => match notify::RecommendedWatcher::new(ntx.clone(), notify::Config::default()) {
                Ok(w) => Ok(Box::new(w) as Box<dyn notify::Watcher>),
                Err(e) => {
                    no_inotify = Some(no_instance(&e));
                    poll = Some(FALLBACK_POLL);
                    poll_watcher(ntx.clone(), FALLBACK_POLL)
                }
            },
        };
        let mut watcher = match made {
            Ok(w) => w,
            Err(e) => {
                out.error(&format!(
                    "cannot watch files ({e}); changes will not restart anything (Ctrl-C and run again to pick them up)"
                ));
                return;
            }
        };
        // Add `root` and the directories below it; `false` when inotify ran out of watches.
        let add_tree = |w: &mut Box<dyn notify::Watcher>, poll: Option<Duration>, root: &Path| {
            if poll.is_some() {
                if let Err(e) = w.watch(root, RecursiveMode::Recursive) {
                    out.note(&format!(
                        "warning: cannot watch {}: {e}",
                        crate::diag::display_path(root)
                    ));
                }
                return true;
            }
            let mut full = false;
            walk_dirs(root, &filter, |d| {
                match w.watch(d, RecursiveMode::NonRecursive) {
                    Ok(()) => Visit::Descend,
                    Err(e) if matches!(e.kind, notify::ErrorKind::MaxFilesWatch) => {
                        full = true;
                        Visit::Stop
                    }
                    // Gone since it was listed: nothing to watch.
                    Err(e) if matches!(e.kind, notify::ErrorKind::PathNotFound) => Visit::Skip,
                    Err(e) => {
                        out.note(&format!(
                        "warning: cannot watch {}: {e}; changes in it will not restart anything",
                        crate::diag::display_path(d)
                    ));
                        Visit::Skip
                    }
                }
            });
            !full
        };
        // Out of inotify watches: say so and poll every root instead.
        let fall_back = |w: &mut Box<dyn notify::Watcher>, poll: &mut Option<Duration>| {
            let warning = no_watch_left();
            *poll = Some(FALLBACK_POLL);
            match poll_watcher(ntx.clone(), FALLBACK_POLL) {
                Ok(p) => {
                    *w = p;
                    for r in &roots {
                        add_tree(w, *poll, r);
                    }
                    // After the poller's first look (see `no_inotify`).
                    out.note(&warning);
                }
                Err(e) => out.error(&format!(
                    "cannot poll the files either ({e}); changes will not restart anything"
                )),
            }
        };
        for r in &roots {
            if !add_tree(&mut watcher, poll, r) {
                fall_back(&mut watcher, &mut poll);
                break;
            }
        }
        if let Some(w) = no_inotify {
            out.note(&w);
        }
        // Every watch is in place: an edit from now on is seen.
        let _ = armed.send(());
        let mut reported = 0u32;
        loop {
            if stopped.load(std::sync::atomic::Ordering::Relaxed) {
                break;
            }
            let ev = match nrx.recv_timeout(Duration::from_millis(200)) {
                Ok(ev) => ev,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => continue,
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            };
            // Woken by the drop: close the instance now.
            if stopped.load(std::sync::atomic::Ordering::Relaxed) {
                break;
            }
            let ev = match ev {
                Ok(ev) => ev,
                Err(e) if poll.is_none() && matches!(e.kind, notify::ErrorKind::MaxFilesWatch) => {
                    fall_back(&mut watcher, &mut poll);
                    continue;
                }
                // About our own state directory, or something else ignored (the poller
                // following the state dir's links back into the app): not the app's business.
                Err(e)
                    if !e.paths.is_empty()
                        && e.paths.iter().all(|p| filter.is_ignored(p, p.is_dir())) =>
                {
                    continue;
                }
                Err(e) => {
                    // Not dropped silently, but not a flood either.
                    reported += 1;
                    if reported <= 10 {
                        out.note(&format!("warning: file watcher: {e}"));
                    }
                    continue;
                }
            };
            if ev.need_rescan() {
                out.note(
                    "warning: file watcher: too many changes at once (the kernel dropped some); a change may have been missed (press r or run `stackato-local restart` to restart)",
                );
            }
            if matches!(
                ev.kind,
                EventKind::Access(notify::event::AccessKind::Open(_))
                    | EventKind::Access(notify::event::AccessKind::Read)
                    | EventKind::Access(notify::event::AccessKind::Close(
                        notify::event::AccessMode::Read
                    ))
                    | EventKind::Access(notify::event::AccessKind::Any)
            ) {
                continue;
            }
            let mut paths = Vec::new();
            let mut exhausted = false;
            for p in ev.paths {
                let is_dir = p.is_dir();
                if filter.is_ignored(&p, is_dir) {
                    continue;
                }
                if is_dir {
                    if poll.is_none()
                        && matches!(
                            ev.kind,
                            EventKind::Create(_)
                                | EventKind::Modify(notify::event::ModifyKind::Name(_))
                        )
                        && !add_tree(&mut watcher, poll, &p)
                    {
                        exhausted = true;
                    }
                    // A directory created, renamed or moved in: its files may never report
                    // themselves (a rename moves them silently), so it is a change itself (the
                    // staged copies are then compared in full). Its own mtime is not.
                    if matches!(
                        ev.kind,
                        EventKind::Create(_)
                            | EventKind::Modify(notify::event::ModifyKind::Name(_))
                    ) {
                        paths.push(p);
                    }
                    continue;
                }
                paths.push(p);
            }
            if exhausted {
                fall_back(&mut watcher, &mut poll);
            }
            if !paths.is_empty() && tx.send(paths).is_err() {
                break;
            }
        }
    });
    Watching {
        _thread: thread,
        stop,
        wake,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_rules() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().canonicalize().unwrap();
        std::fs::write(root.join(".gitignore"), "*.tmp\nbuild/\n").unwrap();
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/.gitignore"), "local.cfg\n").unwrap();
        let state = root.join(".stackato-local");
        let f = Filter::new(
            std::slice::from_ref(&root),
            vec![(root.clone(), Some(vec!["dev.db".into()]))],
            state.clone(),
            &["*.swp".to_string()],
            vec![root.join("stackato.yml")],
        );
        assert!(!f.is_ignored(&root.join("app.py"), false));
        assert!(f.is_ignored(&root.join("x.tmp"), false));
        assert!(f.is_ignored(&root.join("build/out.js"), false));
        assert!(f.is_ignored(&root.join("sub/local.cfg"), false));
        assert!(
            !f.is_ignored(&root.join("local.cfg"), false),
            "nested .gitignore applies below it only"
        );
        assert!(
            f.is_ignored(&root.join("dev.db"), false),
            "manifest ignores"
        );
        assert!(f.is_ignored(&root.join(".git/index"), false));
        assert!(f.is_ignored(&state.join("services.json"), false));
        assert!(f.is_ignored(&root.join("a.swp"), false), "--ignore");
        assert_eq!(f.classify(&root.join("stackato.yml")), Change::Manifest);
        assert_eq!(
            f.classify(&root.join("requirements.txt")),
            Change::Requirements
        );
        assert_eq!(f.classify(&root.join("sub/requirements.txt")), Change::Code);
        assert_eq!(f.classify(&root.join("app.py")), Change::Code);
    }
}
