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
const KEEP: usize = 32;

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

#[cfg(test)]
mod tests {
    use super::*;

    const P: Policy = Policy::PLATFORM;

    fn s(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    /// A history built from `(seconds it ran, ready)`, each restart after the delay the rule
    /// gave for the exit before; returns the history and the time of the last exit.
    fn run(t0: Instant, runs: &[(u64, bool)], policy: &Policy) -> (Vec<Exit>, Instant) {
        let mut history = Vec::new();
        let mut now = t0;
        for &(ran, ready) in runs {
            now += s(ran);
            record(
                &mut history,
                Exit {
                    at: now,
                    ran: s(ran),
                    ready,
                },
            );
            match verdict(&history, now, policy) {
                Verdict::Restart { after, .. } => now += after,
                Verdict::Flapping(_) => {}
            }
        }
        (history, now)
    }

    fn delays(runs: &[(u64, bool)], policy: &Policy) -> Vec<Verdict> {
        let t0 = Instant::now();
        (1..=runs.len())
            .map(|n| {
                let (h, now) = run(t0, &runs[..n], policy);
                let at = h.last().map_or(now, |e| e.at);
                verdict(&h, at, policy)
            })
            .collect()
    }

    fn after(v: &Verdict) -> Option<u64> {
        match v {
            Verdict::Restart { after, .. } => Some(after.as_secs()),
            Verdict::Flapping(_) => None,
        }
    }

    #[test]
    fn each_crash_in_a_row_doubles_the_delay_up_to_the_cap() {
        // Without a flapping limit, the doubling shows up to its cap.
        let policy = Policy {
            flapping_after: 0,
            ..P
        };
        let v = delays(&[(2, true); 8], &policy);
        let got: Vec<Option<u64>> = v.iter().map(after).collect();
        let want = [1, 2, 4, 8, 16, 30, 30, 30].map(Some);
        assert_eq!(got, want);
    }

    #[test]
    fn a_healthy_stretch_starts_the_delay_over() {
        let v = delays(
            &[(2, true), (2, true), (2, true), (31, true), (2, true)],
            &P,
        );
        let got: Vec<Option<u64>> = v.iter().map(after).collect();
        assert_eq!(got, [1, 2, 4, 1, 1].map(Some));
    }

    #[test]
    fn a_long_run_that_never_became_ready_was_not_healthy() {
        let v = delays(&[(2, true), (2, true), (40, false)], &P);
        assert_eq!(after(&v[2]), Some(4));
    }

    #[test]
    fn five_quick_exits_in_a_row_after_becoming_ready_are_flapping() {
        let v = delays(&[(0, true); 5], &P);
        assert_eq!(
            v.iter().take(4).map(after).collect::<Vec<_>>(),
            [1, 2, 4, 8].map(Some)
        );
        assert_eq!(
            v[4],
            Verdict::Flapping(Flap::Unhealthy {
                exits: 5,
                healthy_after: s(30)
            })
        );
    }

    #[test]
    fn slow_crashes_without_a_healthy_stretch_are_flapping_too() {
        // 29 s each: never 5 within a minute, but never healthy either; no endless loop.
        let v = delays(&[(29, true); 5], &P);
        assert!(matches!(v[3], Verdict::Restart { .. }));
        assert!(matches!(v[4], Verdict::Flapping(Flap::Unhealthy { .. })));
    }

    #[test]
    fn crashes_with_healthy_stretches_between_them_are_restarted_forever() {
        let v = delays(&[(45, true); 20], &P);
        assert!(v.iter().all(|v| after(v) == Some(1)), "{v:?}");
    }

    #[test]
    fn a_healthy_stretch_in_the_window_breaks_the_flapping_count() {
        let runs = [
            (1, true),
            (1, true),
            (1, true),
            (60, true),
            (1, true),
            (1, true),
        ];
        let v = delays(&runs, &P);
        assert!(v.iter().all(|v| after(v).is_some()), "{v:?}");
    }

    #[test]
    fn three_exits_during_startup_are_flapping_sooner() {
        let v = delays(&[(0, false); 3], &P);
        assert_eq!(after(&v[0]), Some(1));
        assert_eq!(after(&v[1]), Some(2));
        assert_eq!(v[2], Verdict::Flapping(Flap::NeverReady { exits: 3 }));
    }

    #[test]
    fn an_exit_after_becoming_ready_breaks_the_startup_count() {
        let v = delays(
            &[(0, false), (0, false), (0, true), (0, false), (0, false)],
            &P,
        );
        assert!(v.iter().take(4).all(|v| after(v).is_some()), "{v:?}");
        assert!(matches!(
            v[4],
            Verdict::Flapping(Flap::Unhealthy { exits: 5, .. })
        ));
    }

    #[test]
    fn a_crash_loop_is_reported_from_the_third_exit_within_two_minutes() {
        let v = delays(&[(0, true); 4], &P);
        let loops: Vec<Option<usize>> = v
            .iter()
            .map(|v| match v {
                Verdict::Restart { crash_loop, .. } => *crash_loop,
                Verdict::Flapping(_) => None,
            })
            .collect();
        assert_eq!(loops, [None, None, Some(3), Some(4)]);
        // Exits older than the window do not count.
        let t0 = Instant::now();
        let (h, now) = run(t0, &[(0, true); 3], &P);
        let later = now + s(200);
        let Verdict::Restart { crash_loop, .. } = verdict(&h, later, &P) else {
            panic!("flapping after 3 exits");
        };
        assert_eq!(crash_loop, None);
    }

    #[test]
    fn no_history_restarts_after_the_first_delay() {
        assert_eq!(
            verdict(&[], Instant::now(), &P),
            Verdict::Restart {
                after: s(1),
                crash_loop: None
            }
        );
    }

    #[test]
    fn the_history_keeps_only_what_the_rule_looks_at() {
        let t0 = Instant::now();
        let mut h = Vec::new();
        for i in 0..100 {
            record(
                &mut h,
                Exit {
                    at: t0 + s(i * 60),
                    ran: s(59),
                    ready: true,
                },
            );
        }
        assert_eq!(h.len(), KEEP);
        assert_eq!(h.last().map(|e| e.at), Some(t0 + s(99 * 60)));
    }

    #[test]
    fn the_verdict_says_why() {
        assert_eq!(
            Flap::NeverReady { exits: 3 }.to_string(),
            "it exited 3 times in a row before its port accepted connections"
        );
        assert_eq!(
            Flap::Unhealthy {
                exits: 5,
                healthy_after: s(30)
            }
            .to_string(),
            "it exited 5 times in a row, each time after less than 30 s of running"
        );
        let msg = flapping_message("web.0", Flap::NeverReady { exits: 3 }, 1, "boom\n    bye");
        assert!(
            msg.starts_with("web.0 is flapping: it exited 3 times in a row before its port"),
            "{msg}"
        );
        assert!(msg.contains("(last status 1)"), "{msg}");
        assert!(msg.ends_with("Last lines:\n    boom\n    bye"), "{msg}");
    }

    #[test]
    fn a_huge_limit_never_overflows_the_delay() {
        let policy = Policy {
            flapping_after: 0,
            startup_flapping_after: 0,
            ..P
        };
        let v = delays(&[(0, true); 40], &policy);
        assert_eq!(after(&v[39]), Some(30));
    }
}
