//! The health manager's rule: from a process's exit history alone (no clock, no processes),
//! how long to wait before restarting it, or the verdict that it is flapping.
//!
//! The rule, with the numbers of [`Policy::PLATFORM`]:
//! - The restart waits 1 s, then 2 s, 4 s … doubling up to 30 s for each exit in a row; an exit
//!   that came after 30 s or more of healthy running starts over at 1 s.
//! - A process is *flapping* when its last 3 exits all came before it ever became ready (a web
//!   process whose port never accepted connections: it cannot start), or when its last 5 exits
//!   all came after less than 30 s of healthy running (it cannot stay up). No process restarts
//!   forever without one of these verdicts or a healthy stretch between its exits.
//! - `--exit-on-crash` is not part of the rule: it ends the run at the first exit. Flapping is
//!   the verdict without it.
//!
//! A process without a health check (a worker, or a web process of an app without a route) is
//! ready as soon as it runs (spec §4.1, §4.6: "workers are considered up while the process
//! runs").

use std::time::{Duration, Instant};

/// How the health manager decides that a started process is up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    /// A web process with a route: its `$PORT` must accept connections within `timeout:`.
    Port,
    /// Workers and apps without a route: up while the process runs, never port-checked.
    Running,
}

/// One exit of a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Exit {
    /// When it exited.
    pub at: Instant,
    /// How long it had been running.
    pub ran: Duration,
    /// Whether it had become ready (its port answered, or it needs no check).
    pub ready: bool,
}

/// The numbers of the rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Policy {
    /// The first restart delay; each exit in a row doubles it.
    pub first_delay: Duration,
    /// The longest restart delay.
    pub max_delay: Duration,
    /// A process that ran (ready) this long before exiting was healthy: the delay starts over.
    pub healthy_after: Duration,
    /// This many exits within [`Policy::loop_window`] are reported as a crash loop.
    pub loop_after: usize,
    pub loop_window: Duration,
    /// This many exits in a row, none after a healthy stretch: flapping.
    pub flapping_after: usize,
    /// This many exits in a row, each before the process became ready: flapping.
    pub startup_flapping_after: usize,
}

impl Policy {
    /// The numbers `run` uses (documented in the README's `run` section).
    pub(crate) const PLATFORM: Policy = Policy {
        first_delay: Duration::from_secs(1),
        max_delay: Duration::from_secs(30),
        healthy_after: Duration::from_secs(30),
        loop_after: 3,
        loop_window: Duration::from_secs(120),
        flapping_after: 5,
        startup_flapping_after: 3,
    };

    /// Whether this exit came after a healthy stretch.
    fn healthy(&self, e: &Exit) -> bool {
        e.ready && e.ran >= self.healthy_after
    }
}

/// Why a process is flapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flap {
    /// It exited this many times in a row before it ever became ready.
    NeverReady { exits: usize },
    /// It exited this many times in a row, each after less than `healthy_after` of running.
    Unhealthy {
        exits: usize,
        healthy_after: Duration,
    },
}

impl std::fmt::Display for Flap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Flap::NeverReady { exits } => write!(
                f,
                "it exited {exits} times in a row before its port accepted connections"
            ),
            Flap::Unhealthy {
                exits,
                healthy_after,
            } => write!(
                f,
                "it exited {exits} times in a row, each time after less than {} s of running",
                healthy_after.as_secs()
            ),
        }
    }
}

/// What to do after the last exit of the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Start it again after this delay. `crash_loop`: the number of exits within the loop
    /// window when there are enough of them to say so.
    Restart {
        after: Duration,
        crash_loop: Option<usize>,
    },
    /// It keeps crashing: no more restarts.
    Flapping(Flap),
}

/// The supervisor's error for process `name` that is flapping: why, its last exit status
/// `code`, and its last lines `tail`.
pub(crate) fn flapping_message(name: &str, why: Flap, code: i32, tail: &str) -> String {
    format!(
        "{name} is flapping: {why} (last status {code}); the app cannot stay up, and the platform's health manager would mark it flapping too. Last lines:\n    {tail}"
    )
}

/// How many exits history keeps (more never change the verdict of [`Policy::PLATFORM`]).
pub(super) const KEEP: usize = 32;

/// Add an exit to a history, forgetting the oldest ones beyond what the rule looks at.
pub(crate) fn record(history: &mut Vec<Exit>, exit: Exit) {
    history.push(exit);
    if history.len() > KEEP {
        let extra = history.len() - KEEP;
        history.drain(..extra);
    }
}

/// The verdict on a process whose exits, oldest first, are `history` (the last one just
/// happened), at `now`.
pub(crate) fn verdict(history: &[Exit], now: Instant, policy: &Policy) -> Verdict {
    let never_ready = history.iter().rev().take_while(|e| !e.ready).count();
    if policy.startup_flapping_after > 0 && never_ready >= policy.startup_flapping_after {
        return Verdict::Flapping(Flap::NeverReady { exits: never_ready });
    }
    let unhealthy = history
        .iter()
        .rev()
        .take_while(|e| !policy.healthy(e))
        .count();
    if policy.flapping_after > 0 && unhealthy >= policy.flapping_after {
        return Verdict::Flapping(Flap::Unhealthy {
            exits: unhealthy,
            healthy_after: policy.healthy_after,
        });
    }
    // The n-th unhealthy exit in a row waits first_delay × 2^(n-1); after a healthy one, 1×.
    let doublings = u32::try_from(unhealthy.saturating_sub(1)).unwrap_or(u32::MAX);
    let after = 2u32
        .checked_pow(doublings)
        .and_then(|f| policy.first_delay.checked_mul(f))
        .map_or(policy.max_delay, |d| d.min(policy.max_delay));
    let recent = history
        .iter()
        .filter(|e| now.saturating_duration_since(e.at) < policy.loop_window)
        .count();
    Verdict::Restart {
        after,
        crash_loop: (policy.loop_after > 0 && recent >= policy.loop_after).then_some(recent),
    }
}
