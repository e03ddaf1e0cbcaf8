//! The job logic against the fake child: crashes, backoff, flapping, grace, start order.

use std::time::{Duration, Instant};

use super::Outcome;
use super::core::Core;
use super::job::{Action, Level, State};
use super::sim::{Fake, Sim, cfg, ms, rules};

#[test]
fn a_crash_waits_for_the_backoff_then_restarts() {
    let mut sim = Sim::new(vec![(cfg("worker.0", None), 0)], vec![], false);
    assert_eq!(sim.core.jobs[0].state(), State::Ready);
    sim.crash(0, Duration::from_secs(5), 1);
    assert_eq!(sim.core.jobs[0].state(), State::Backoff);
    assert!(sim.said("worker.0 exited with status 1 after 5.0 s; restarting in 1 s"));
    let t = sim.now;
    assert_eq!(sim.next(), t + Duration::from_secs(1));
    assert_eq!(sim.spawns(0), 2);
    assert_eq!(sim.core.jobs[0].state(), State::Ready);
    // The next crash in a row waits twice as long.
    sim.crash(0, ms(10), 1);
    let t = sim.now;
    assert_eq!(sim.next(), t + Duration::from_secs(2));
    assert_eq!(sim.spawns(0), 3);
}

#[test]
fn quick_crashes_are_flapping_and_end_the_run_unless_files_are_watched() {
    let mut sim = Sim::new(vec![(cfg("worker.0", None), 0)], vec![], false);
    for _ in 0..4 {
        sim.crash(0, ms(10), 3);
        sim.next();
    }
    sim.crash(0, ms(10), 3);
    assert!(
        matches!(sim.core.finished(), Some(Outcome::Flapping(m)) if m.contains("worker.0 is flapping"))
    );
    assert_eq!(sim.spawns(0), 5);

    let mut sim = Sim::new(vec![(cfg("worker.0", None), 0)], vec![], true);
    for _ in 0..4 {
        sim.crash(0, ms(10), 3);
        sim.next();
    }
    sim.crash(0, ms(10), 3);
    assert_eq!(sim.core.jobs[0].state(), State::Flapping);
    assert_eq!(sim.core.finished(), None);
    assert_eq!(
        sim.core.deadline(),
        None,
        "a flapping job waits for a change"
    );
    assert!(sim.said("stays down until a file changes"));
    // A change starts it again.
    sim.core
        .restart(None, vec!["app.py".into()], sim.now, &sim.world);
    sim.pump();
    sim.next();
    assert_eq!(sim.spawns(0), 6);
    assert_eq!(sim.core.jobs[0].state(), State::Ready);
}

#[test]
fn a_child_ignoring_term_is_killed_at_the_end_of_the_grace_period() {
    let mut sim = Sim::new(vec![(cfg("worker.0", None), 0)], vec![], false);
    sim.ignores_term.insert(0);
    sim.core.signal("SIGINT", libc::SIGINT, sim.now);
    sim.pump();
    assert_eq!(sim.core.jobs[0].state(), State::Stopping);
    assert_eq!(sim.core.finished(), None);
    let t = sim.now;
    assert_eq!(sim.next(), t + Duration::from_secs(10));
    assert!(sim.said("worker.0: did not stop within the grace period; killed"));
    assert!(sim.log.iter().any(|a| matches!(a, Action::Kill { .. })));
    assert_eq!(sim.core.finished(), Some(Outcome::Signal(libc::SIGINT)));
}

#[test]
fn a_second_ctrl_c_kills_at_once() {
    let mut sim = Sim::new(vec![(cfg("worker.0", None), 0)], vec![], false);
    sim.ignores_term.insert(0);
    sim.core.signal("SIGINT", libc::SIGINT, sim.now);
    sim.pump();
    sim.core.signal("SIGINT", libc::SIGINT, sim.now);
    sim.pump();
    assert!(sim.said("worker.0: killed (second Ctrl-C)"));
    assert!(sim.log.contains(&Action::Crons { kill: true }));
    assert!(sim.core.finished().is_some());
}

#[test]
fn an_app_starts_only_once_its_dependency_answers() {
    let jobs = vec![
        (cfg("db:web.0", Some(5000)), 0),
        (cfg("api:web.0", Some(5001)), 1),
    ];
    let mut sim = Sim::new(jobs, vec![vec![], vec![0]], false);
    assert_eq!((sim.spawns(0), sim.spawns(1)), (1, 0));
    assert_eq!(sim.core.jobs[0].state(), State::Starting);
    // Not listening yet: probes come again at deadlines, the dependent app waits.
    for _ in 0..3 {
        sim.next();
    }
    assert_eq!(sim.spawns(1), 0);
    sim.listening.insert((0, 1));
    sim.next();
    assert_eq!(sim.core.jobs[0].state(), State::Ready);
    assert!(sim.said("db:web.0 ready at http://127.0.0.1:5000"));
    assert_eq!(sim.spawns(1), 1);
    let ready = sim
        .log
        .iter()
        .position(|a| matches!(a, Action::Say(Level::Phase, m) if m.starts_with("db:web.0 ready")));
    let second = sim
        .log
        .iter()
        .position(|a| matches!(a, Action::Spawn { job: 1, .. }));
    assert!(ready < second, "{:?}", sim.log);
}

#[test]
fn restarting_everything_starts_again_in_dependency_order() {
    let jobs = vec![
        (cfg("db:web.0", Some(5000)), 0),
        (cfg("api:web.0", Some(5001)), 1),
    ];
    let mut sim = Sim::new(jobs, vec![vec![], vec![0]], true);
    sim.listening.insert((0, 1));
    sim.listening.insert((1, 1));
    while sim.core.jobs[1].state() != State::Ready {
        sim.next();
    }
    assert_eq!((sim.spawns(0), sim.spawns(1)), (1, 1));
    assert_eq!(sim.core.jobs[1].state(), State::Ready);
    // `r` or `stackato-local restart`: everything.
    sim.core.restart(None, Vec::new(), sim.now, &sim.world);
    sim.pump();
    while sim.spawns(0) < 2 {
        sim.next();
    }
    // The new db does not answer yet: api waits for it, as at the start.
    for _ in 0..3 {
        sim.next();
    }
    assert_eq!(sim.spawns(1), 1, "{:?}", sim.log);
    sim.listening.insert((0, 2));
    sim.listening.insert((1, 2));
    while sim.spawns(1) < 2 {
        sim.next();
    }
    let db_ready = sim.log.iter().rposition(
        |a| matches!(a, Action::Say(Level::Phase, m) if m.starts_with("db:web.0 ready")),
    );
    let api_spawn = sim
        .log
        .iter()
        .rposition(|a| matches!(a, Action::Spawn { job: 1, .. }));
    assert!(db_ready < api_spawn, "{:?}", sim.log);
}

#[test]
fn a_port_that_never_answers_stops_the_run() {
    let mut c = cfg("web.0", Some(5000));
    c.ready_timeout = Duration::from_secs(1);
    let mut sim = Sim::new(vec![(c, 0)], vec![], false);
    while sim.core.finished().is_none() {
        sim.next();
    }
    assert!(
        matches!(sim.core.finished(), Some(Outcome::NotReady(m)) if m.contains("did not accept connections on port 5000 within 1 s"))
    );
}

#[test]
fn a_spawn_failure_stops_the_run() {
    let now = Instant::now();
    let mut core = Core::new(
        vec![(cfg("web.0", None), 0)],
        vec![],
        rules(false),
        ms(1),
        now,
    );
    let world = Fake::default();
    core.start(now, &world);
    let acts = core.take_actions();
    assert_eq!(
        acts,
        [Action::Spawn {
            job: 0,
            generation: 1,
            slot: 0
        }]
    );
    core.spawned(0, 1, Err("No such file".into()), now, &world);
    assert!(
        matches!(core.finished(), Some(Outcome::SpawnFailed(m)) if m == "web.0 could not be started: No such file")
    );
}
