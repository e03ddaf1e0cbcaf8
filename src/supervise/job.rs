//! One job: the state machine of one process instance (`web.0`, `worker.1`). Pure: it takes
//! events (started, spawned, exited, probe answered, a deadline passed, stop or restart asked)
//! with the time they happened, and answers with [`Action`]s for the event loop to carry out
//! (spawn, signal, kill, probe the port, say something). No clock, no processes, no tokio:
//! the unit tests drive it with a fake child and a fake clock.
//!
//! States: [`State::Stopped`] (not started yet, or held for a restart), `Starting` (spawned,
//! its port not answering yet), `Ready`, `Stopping` (signalled; killed at the end of the
//! grace period), `Backoff` (crashed, restarting at a deadline) and `Flapping` (crashed too
//! often; stays down until a restart request). With [`Config::overlap`] a restart starts the
//! new instance while the old one runs and stops the old one once the new one is ready. The
//! timers of one instance (its next probe, its kill at the end of the grace period) are in
//! [`super::inst`].

use std::time::Instant;

use super::Outcome;
pub(super) use super::action::{Action, Config, Level, Rules, World};
use super::crash::After;
use super::health;
pub(super) use super::inst::Inst;

/// Where a job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum State {
    Stopped,
    Starting,
    Ready,
    Stopping,
    Backoff,
    Flapping,
}

#[derive(Debug, Clone)]
pub(super) struct Job {
    pub idx: usize,
    pub cfg: Config,
    generation: u64,
    /// The instance that serves (or will).
    pub current: Option<Inst>,
    /// With overlap: the instance being replaced, stopped once `current` is ready.
    pub old: Option<Inst>,
    backoff_until: Option<Instant>,
    flapping: bool,
    /// Waiting for the restart coordinator's go.
    pub held: bool,
    history: Vec<health::Exit>,
    pub last_start: Instant,
    /// The run is stopping: nothing starts again.
    ending: bool,
    /// An overlap restart failed because the new instance exited before it was ready while
    /// the old one ran: the next start comes after the old one stopped (once).
    pub fallback: bool,
}

impl Job {
    pub(super) fn new(idx: usize, cfg: Config, now: Instant) -> Job {
        Job {
            idx,
            cfg,
            generation: 0,
            current: None,
            old: None,
            backoff_until: None,
            flapping: false,
            held: false,
            history: Vec::new(),
            last_start: now,
            ending: false,
            fallback: false,
        }
    }

    /// Whether its next restart starts the new instance beside the old one.
    pub(super) fn overlaps(&self) -> bool {
        self.cfg.overlap && !self.fallback
    }

    /// Whether a held restart may start its new instance now: without overlap once no
    /// process of it runs; with overlap once at most one runs and is not stopping (so one of
    /// its two ports is free).
    pub(super) fn can_start(&self) -> bool {
        if !self.overlaps() {
            return self.down();
        }
        let mut alive = self.current.iter().chain(self.old.iter());
        match (alive.next(), alive.next()) {
            (None, _) => true,
            (Some(one), None) => one.stop.is_none(),
            (Some(_), Some(_)) => false,
        }
    }

    pub(super) fn state(&self) -> State {
        match &self.current {
            Some(i) if i.stop.is_some() => State::Stopping,
            Some(i) if i.ready => State::Ready,
            Some(_) => State::Starting,
            None if self.old.is_some() => State::Stopping,
            None if self.backoff_until.is_some() => State::Backoff,
            None if self.flapping => State::Flapping,
            None => State::Stopped,
        }
    }

    /// No process of it runs.
    pub(super) fn down(&self) -> bool {
        matches!(
            self.state(),
            State::Stopped | State::Backoff | State::Flapping
        )
    }

    /// Up and serving (the new instance, or the old one while its replacement starts): its
    /// port answered, or it needs no check and runs.
    pub(super) fn ready(&self) -> bool {
        self.current
            .iter()
            .chain(self.old.iter())
            .any(|i| i.ready && i.stop.is_none())
    }

    /// The earliest moment it wants a [`Job::tick`].
    pub(super) fn deadline(&self) -> Option<Instant> {
        self.current
            .iter()
            .chain(self.old.iter())
            .filter_map(Inst::deadline)
            .chain(self.backoff_until)
            .min()
    }

    /// Start a new instance (its dependencies answer, a backoff or a held restart is over).
    pub(super) fn start(&mut self, now: Instant, acts: &mut Vec<Action>) {
        self.held = false;
        self.backoff_until = None;
        self.flapping = false;
        self.fallback = false;
        // Overlap: the old one keeps serving (on one port) until the new one (on the other)
        // is ready. The new one never takes the port of one still running (an old one still
        // draining when its replacement crashed); otherwise the first port.
        let flip = |slot: u8| {
            if self.cfg.alt_port.is_some() {
                1 - slot.min(1)
            } else {
                slot
            }
        };
        let slot = match self.current.take() {
            Some(cur) => {
                let slot = flip(cur.slot);
                self.old = Some(cur);
                slot
            }
            None => self.old.as_ref().map_or(0, |o| flip(o.slot)),
        };
        self.generation += 1;
        self.last_start = now;
        self.current = Some(Inst::new(self.generation, slot, now));
        acts.push(Action::Spawn {
            job: self.idx,
            generation: self.generation,
            slot,
        });
    }

    /// The spawn of `generation` succeeded (`Ok(pid)`) or not (the message to stop with).
    pub(super) fn spawned(
        &mut self,
        generation: u64,
        result: Result<i32, String>,
        now: Instant,
        acts: &mut Vec<Action>,
    ) -> Option<Outcome> {
        let cur = self
            .current
            .as_mut()
            .filter(|i| i.generation == generation)?;
        match result {
            Ok(pid) => {
                cur.pid = Some(pid);
                cur.started = now;
                self.last_start = now;
                match self.cfg.probe_port(cur.slot) {
                    // Without a port check it is up while it runs (spec §4.1).
                    None => self.became_ready(now, acts),
                    Some(port) => acts.push(Action::Probe {
                        job: self.idx,
                        generation,
                        port,
                    }),
                }
                None
            }
            Err(e) => {
                self.current = None;
                let msg = format!("{} could not be started: {e}", self.cfg.name);
                acts.push(Action::Say(Level::Error, msg.clone()));
                Some(Outcome::SpawnFailed(msg))
            }
        }
    }

    fn became_ready(&mut self, now: Instant, acts: &mut Vec<Action>) {
        let Some(cur) = self.current.as_mut() else {
            return;
        };
        cur.ready = true;
        cur.probe_at = None;
        if let Some(port) = self.cfg.probe_port(cur.slot) {
            acts.push(Action::Say(
                Level::Phase,
                format!(
                    "{} ready at http://127.0.0.1:{port} (listening after {:.2} s)",
                    self.cfg.name,
                    now.saturating_duration_since(cur.started).as_secs_f64()
                ),
            ));
        }
        // Overlap: the replacement serves; the old instance goes now.
        if let Some(old) = self.old.as_mut()
            && old.stop.is_none()
        {
            old.stop(self.idx, now + self.cfg.grace, false, acts);
        }
    }

    /// A connection attempt of `generation` ended; `answered`: a server accepted it.
    pub(super) fn probed(
        &mut self,
        generation: u64,
        answered: bool,
        now: Instant,
        world: &dyn World,
        acts: &mut Vec<Action>,
    ) -> Option<Outcome> {
        let cur = self
            .current
            .as_mut()
            .filter(|i| i.generation == generation)?;
        if cur.stop.is_some() || cur.ready {
            return None;
        }
        if answered {
            self.became_ready(now, acts);
            return None;
        }
        let waited = now.saturating_duration_since(cur.started);
        if waited > self.cfg.ready_timeout {
            if self.ending {
                return None;
            }
            let msg = format!(
                "{} did not accept connections on port {} within {} s; the platform's health check would fail the same way (listen on 0.0.0.0:$PORT or 127.0.0.1:$PORT). Last lines:\n    {}{}",
                self.cfg.name,
                self.cfg.probe_port(cur.slot).unwrap_or_default(),
                self.cfg.ready_timeout.as_secs(),
                world.tail(self.idx),
                world.hint(self.idx)
            );
            acts.push(Action::Say(Level::Error, msg.clone()));
            return Some(Outcome::NotReady(msg));
        }
        cur.probe_at = Some(now + super::ready::next_attempt(waited));
        None
    }

    /// Deadlines that passed by `now`: probes, kills at the end of a grace period, backoffs.
    pub(super) fn tick(&mut self, now: Instant, acts: &mut Vec<Action>) {
        let (idx, name) = (self.idx, self.cfg.name.as_str());
        for inst in self.current.iter_mut().chain(self.old.iter_mut()) {
            let port = self.cfg.probe_port(inst.slot);
            inst.tick(idx, name, port, now, acts);
        }
        if let Some(at) = self.backoff_until
            && at <= now
        {
            self.backoff_until = None;
            if !self.ending {
                self.start(now, acts);
            }
        }
    }

    /// Stop every instance: its stop signal now, SIGKILL at the end of the grace period.
    /// `ending`: the run is stopping (nothing starts again; a kill is reported).
    pub(super) fn stop(&mut self, now: Instant, ending: bool, acts: &mut Vec<Action>) {
        let grace = self.cfg.grace;
        let loud = ending;
        self.ending |= ending;
        self.backoff_until = None;
        let idx = self.idx;
        for inst in self.current.iter_mut().chain(self.old.iter_mut()) {
            inst.stop(idx, now + grace, loud, acts);
        }
    }

    /// SIGKILL every instance now (a second Ctrl-C).
    pub(super) fn kill(&mut self, why: &str, acts: &mut Vec<Action>) {
        for inst in self.current.iter().chain(self.old.iter()) {
            if let Some(pid) = inst.pid {
                acts.push(Action::Say(
                    Level::Note,
                    format!("{}: {why}", self.cfg.name),
                ));
                acts.push(Action::Kill { job: self.idx, pid });
            }
        }
    }

    /// A restart was asked for (a change, a key, `stackato-local restart`): without overlap
    /// the process is stopped now and started again when the coordinator says so; with
    /// overlap it keeps running until its replacement is ready.
    pub(super) fn request_restart(&mut self, now: Instant, acts: &mut Vec<Action>) {
        if self.held {
            return;
        }
        self.held = true;
        // A change or a request is a fresh start: the crash history starts over.
        self.history.clear();
        self.backoff_until = None;
        self.flapping = false;
        if !self.overlaps() {
            self.stop(now, false, acts);
        } else if let Some(cur) = self.current.as_mut()
            && !cur.ready
        {
            // An instance not ready yet (a replacement still starting, a first boot) serves
            // nobody: it is superseded at once. A ready one serves until the next one is.
            cur.stop(self.idx, now + self.cfg.grace, false, acts);
        }
    }

    /// Instance `generation` exited with `code`.
    pub(super) fn exited(
        &mut self,
        generation: u64,
        code: i32,
        now: Instant,
        rules: &Rules,
        world: &dyn World,
        acts: &mut Vec<Action>,
    ) -> Option<Outcome> {
        if self
            .old
            .as_ref()
            .is_some_and(|i| i.generation == generation)
        {
            self.old = None;
            return None;
        }
        let cur = self.current.take_if(|i| i.generation == generation)?;
        let replaced = self.old.take_if(|o| o.stop.is_none());
        if self.ending || cur.stop.is_some() {
            self.current = replaced;
            return None;
        }
        let name = self.cfg.name.clone();
        let ran = now.saturating_duration_since(cur.started);
        if let Some(old) = replaced {
            // Overlap: the replacement died before it was ready while the old one served.
            // Perhaps the app cannot run twice at once (a lock file, a fixed port): the core
            // tries once more with the old one stopped first. If that fails too, it is the
            // app, and its crash is judged as any other.
            self.current = Some(old);
            health::record(
                &mut self.history,
                health::Exit {
                    at: now,
                    ran,
                    ready: false,
                },
            );
            self.fallback = true;
            acts.push(Action::Say(
                Level::Error,
                format!("{name}: the new instance exited with status {code} before it was ready, while the old one ran; starting it again after stopping the old one (an app that cannot run twice at once, with a lock file or a fixed port, skips this attempt with `run --stop-first APP`)"),
            ));
            return None;
        }
        let crash = super::crash::Crash {
            job: self.idx,
            name: &name,
            code,
            ran,
            ready: cur.ready,
            now,
        };
        match super::crash::judge(&crash, &mut self.history, rules, world, acts) {
            After::Restart(delay) => self.backoff_until = Some(now + delay),
            After::Flapping => self.flapping = true,
            After::Stop(outcome) => return Some(outcome),
        }
        None
    }
}
