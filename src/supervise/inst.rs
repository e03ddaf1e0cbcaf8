//! One instance of a job (a process that was spawned, or is being): its generation and pid,
//! whether it is ready, and its own timers: the next connection attempt while it is not ready,
//! and, once it was signalled to stop, the SIGKILL at the end of its grace period. Pure, like
//! [`super::job`], which decides when instances start, stop and are replaced.

use std::time::Instant;

use super::action::{Action, Level};

/// A running instance.
#[derive(Debug, Clone)]
pub(super) struct Inst {
    pub generation: u64,
    /// Which of the job's two ports it listens on (see [`super::action::Config::alt_port`]).
    pub slot: u8,
    /// `None` until the spawn is confirmed.
    pub pid: Option<i32>,
    pub started: Instant,
    pub ready: bool,
    /// The next connection attempt, while not ready and no attempt is under way.
    pub(super) probe_at: Option<Instant>,
    /// Signalled to stop.
    pub(super) stop: Option<Signalled>,
}

/// A stop under way.
#[derive(Debug, Clone, Copy)]
pub(super) struct Signalled {
    /// SIGKILL then, unless it is gone.
    kill_at: Instant,
    /// Say so when the kill comes (the run is stopping).
    loud: bool,
    killed: bool,
}

impl Inst {
    pub(super) fn new(generation: u64, slot: u8, now: Instant) -> Inst {
        Inst {
            generation,
            slot,
            pid: None,
            started: now,
            ready: false,
            probe_at: None,
            stop: None,
        }
    }

    /// Its earliest timer: the next probe, or the kill.
    pub(super) fn deadline(&self) -> Option<Instant> {
        let kill = self.stop.filter(|s| !s.killed).map(|s| s.kill_at);
        [self.probe_at, kill].into_iter().flatten().min()
    }

    /// Stop it (job `job`): its stop signal now and SIGKILL at `kill_at`; a stop already
    /// under way is only brought forward. No probe any more. `loud`: say so when it is killed.
    pub(super) fn stop(
        &mut self,
        job: usize,
        kill_at: Instant,
        loud: bool,
        acts: &mut Vec<Action>,
    ) {
        self.probe_at = None;
        let Some(pid) = self.pid else { return };
        match self.stop.as_mut() {
            Some(s) => {
                s.kill_at = s.kill_at.min(kill_at);
                s.loud |= loud;
            }
            None => {
                self.stop = Some(Signalled {
                    kill_at,
                    loud,
                    killed: false,
                });
                acts.push(Action::Stop { job, pid });
            }
        }
    }

    /// Its timers that passed by `now`: the probe of `port` is due, or the kill (once; its exit
    /// ends it).
    pub(super) fn tick(
        &mut self,
        job: usize,
        name: &str,
        port: Option<u16>,
        now: Instant,
        acts: &mut Vec<Action>,
    ) {
        let port = port.unwrap_or_default();
        if let Some(at) = self.probe_at
            && at <= now
        {
            self.probe_at = None;
            acts.push(Action::Probe {
                job,
                generation: self.generation,
                port,
            });
        }
        if let Some(stop) = self.stop.as_mut()
            && !stop.killed
            && stop.kill_at <= now
            && let Some(pid) = self.pid
        {
            stop.killed = true;
            if stop.loud {
                acts.push(Action::Say(
                    Level::Note,
                    format!("{name}: did not stop within the grace period; killed"),
                ));
            }
            acts.push(Action::Kill { job, pid });
        }
    }
}
