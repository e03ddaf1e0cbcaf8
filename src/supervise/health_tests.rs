//! Unit tests of the restart rule in [`super::health`]: delays, healthy stretches and the
//! flapping verdicts, from exit histories alone.

use std::time::{Duration, Instant};

use super::health::*;

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
