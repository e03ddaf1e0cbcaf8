//! Restarts asked for by changes, keys and `stackato-local restart`: requests that come close
//! together (a storm of file events) are coalesced into one restart that waits for a quiet
//! period; a restart that keeps following each start on the same paths is reported as the
//! app writing into its own directory, and those paths are ignored from then on. Pure.

use std::path::PathBuf;
use std::time::{Duration, Instant};

/// More paths than this are not kept: the copies are compared in full before the restart.
const KEEP_PATHS: usize = 1000;
/// A change of this many paths is a storm: it gets a longer quiet period.
const STORM: usize = 50;
const STORM_QUIET: Duration = Duration::from_millis(250);

/// A restart waiting for the changes to settle.
#[derive(Debug, Clone)]
pub(super) struct Pending {
    pub paths: Vec<PathBuf>,
    /// More paths than kept, or a restart by hand: compare the copies in full first.
    pub overflow: bool,
    /// When the changes began (for the loop detector).
    pub first_event: Instant,
    pub last_event: Instant,
    /// The jobs to start again.
    pub jobs: Vec<usize>,
}

/// How long a restart waits for the old process's port to be let go of.
pub(super) const PORT_WAIT: Duration = Duration::from_secs(5);

#[derive(Debug, Default)]
pub(super) struct Restarts {
    pending: Option<Pending>,
    /// Set when a port was still taken: try again then.
    retry_at: Option<Instant>,
    /// Since when a port has been found taken (the wait is bounded: see [`Restarts::retry`]).
    port_wait: Option<Instant>,
    debounce: Duration,
    /// Restarts that came right after a start: a self-triggered loop?
    quick: Vec<(Instant, Vec<PathBuf>)>,
    /// Paths found to be written by the app itself; their changes are ignored from now on.
    self_written: Vec<PathBuf>,
}

impl Restarts {
    /// `debounce`: the quiet period after the last change before the processes start again.
    pub(super) fn new(debounce: Duration) -> Restarts {
        Restarts {
            debounce,
            ..Restarts::default()
        }
    }

    /// Add a request for `jobs` because of `paths` (none: by hand). `true` when it begins a
    /// new restart rather than joining one under way.
    pub(super) fn request(&mut self, jobs: &[usize], paths: Vec<PathBuf>, now: Instant) -> bool {
        let fresh = self.pending.is_none();
        let p = self.pending.get_or_insert(Pending {
            paths: Vec::new(),
            overflow: false,
            first_event: now,
            last_event: now,
            jobs: Vec::new(),
        });
        p.last_event = now;
        // A restart by hand compares the copies in full first: edits the watcher does not
        // report (files .gitignore leaves out) go in too.
        if paths.is_empty() {
            p.overflow = true;
        }
        for path in paths {
            if p.paths.len() >= KEEP_PATHS {
                p.overflow = true;
            } else if !p.paths.contains(&path) {
                p.paths.push(path);
            }
        }
        for j in jobs {
            if !p.jobs.contains(j) {
                p.jobs.push(*j);
            }
        }
        fresh
    }

    /// When the pending restart may go (if its processes are down by then).
    pub(super) fn due(&self) -> Option<Instant> {
        let p = self.pending.as_ref()?;
        // A storm (a checkout, a build writing many files) gets a longer quiet period, so a
        // pause in the middle of it does not cause a second restart.
        let quiet = if p.paths.len() >= STORM {
            self.debounce.max(STORM_QUIET)
        } else {
            self.debounce
        };
        Some((p.last_event + quiet).max(self.retry_at.unwrap_or(p.last_event)))
    }

    pub(super) fn waiting(&self) -> &[usize] {
        self.pending.as_ref().map_or(&[], |p| &p.jobs)
    }

    /// Not yet: a port is still taken (at `now`); try again at `at`. `false` once it has been
    /// taken for [`PORT_WAIT`]: another process holds it (a daemon the old one left behind),
    /// and the restart goes ahead anyway, to fail with its own message.
    pub(super) fn retry(&mut self, now: Instant, at: Instant) -> bool {
        let since = *self.port_wait.get_or_insert(now);
        if now.saturating_duration_since(since) >= PORT_WAIT {
            return false;
        }
        self.retry_at = Some(at);
        true
    }

    pub(super) fn clear(&mut self) {
        self.pending = None;
        self.retry_at = None;
        self.port_wait = None;
    }

    pub(super) fn take(&mut self) -> Option<Pending> {
        self.retry_at = None;
        self.port_wait = None;
        self.pending.take()
    }

    /// Drop the paths the app writes itself.
    pub(super) fn unwritten(&self, mut paths: Vec<PathBuf>) -> Vec<PathBuf> {
        paths.retain(|p| !self.self_written.iter().any(|s| p.starts_with(s)));
        paths
    }

    /// The restart `p` is going ahead; `started_recently`: its changes began within a second
    /// of its processes' start. The error to show when this is the third such restart in a
    /// row on the same paths (those are ignored from now on).
    pub(super) fn detect_loop(
        &mut self,
        p: &Pending,
        started_recently: bool,
        now: Instant,
    ) -> Option<String> {
        if !started_recently || p.paths.is_empty() {
            self.quick.clear();
            return None;
        }
        self.quick.push((now, p.paths.clone()));
        self.quick
            .retain(|(t, _)| now.saturating_duration_since(*t) < Duration::from_secs(30));
        // The same paths each time: a person editing files does not do that within a second
        // of every start.
        let mut common: Vec<PathBuf> = self.quick[0].1.clone();
        for (_, ps) in &self.quick[1..] {
            common.retain(|c| ps.contains(c));
        }
        if common.is_empty() {
            self.quick = vec![(now, p.paths.clone())];
            return None;
        }
        if self.quick.len() < 3 {
            return None;
        }
        let msg = format!(
            "restart loop: the app seems to write into its own directory ({}) right after starting, which triggered {} restarts; changes there are ignored from now on. Add them to `ignores:` in stackato.yml or pass --ignore",
            describe_paths(&common),
            self.quick.len()
        );
        self.self_written.extend(common);
        self.quick.clear();
        Some(msg)
    }
}

/// `app.py`, `app.py (+3 more)`.
pub(super) fn describe_paths(paths: &[PathBuf]) -> String {
    let first = paths
        .first()
        .map(|p| crate::diag::display_path(p))
        .unwrap_or_default();
    match paths.len() {
        0 | 1 => first,
        n => format!("{first} (+{} more)", n - 1),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn requests_coalesce_and_each_pushes_the_quiet_period_back() {
        let t0 = Instant::now();
        let mut r = Restarts::new(ms(100));
        assert!(r.request(&[0], vec!["a".into()], t0));
        assert!(!r.request(&[1], vec!["b".into(), "a".into()], t0 + ms(50)));
        assert_eq!(r.due(), Some(t0 + ms(150)));
        assert_eq!(r.waiting(), [0, 1]);
        let p = r.take().expect("pending");
        assert_eq!(p.paths, [PathBuf::from("a"), PathBuf::from("b")]);
        assert!(!p.overflow);
        assert_eq!(r.due(), None);
    }

    #[test]
    fn a_storm_waits_longer_and_too_many_paths_overflow() {
        let t0 = Instant::now();
        let mut r = Restarts::new(ms(10));
        let many: Vec<PathBuf> = (0..1500).map(|i| PathBuf::from(format!("f{i}"))).collect();
        r.request(&[0], many, t0);
        assert_eq!(r.due(), Some(t0 + STORM_QUIET));
        let p = r.take().expect("pending");
        assert!(p.overflow);
        assert_eq!(p.paths.len(), KEEP_PATHS);
    }

    #[test]
    fn the_third_quick_restart_on_the_same_paths_is_a_loop() {
        let t0 = Instant::now();
        let mut r = Restarts::new(ms(10));
        let p = |t| Pending {
            paths: vec!["log/x.log".into()],
            overflow: false,
            first_event: t,
            last_event: t,
            jobs: vec![0],
        };
        assert_eq!(r.detect_loop(&p(t0), true, t0), None);
        assert_eq!(r.detect_loop(&p(t0 + ms(500)), true, t0 + ms(500)), None);
        let msg = r.detect_loop(&p(t0 + ms(900)), true, t0 + ms(900));
        assert!(msg.is_some_and(|m| m.contains("3 restarts")));
        assert!(
            r.unwritten(vec!["log/x.log".into(), "app.py".into()]) == [PathBuf::from("app.py")]
        );
        // A restart long after the start is a person editing.
        assert_eq!(r.detect_loop(&p(t0), false, t0), None);
    }
}
