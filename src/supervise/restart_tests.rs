//! Restarts against the fake child: storms coalesced, waiting for the old process and its
//! port, overlap restarts.

use super::job::{Action, State};
use super::sim::{Sim, cfg, ms};

#[test]
fn a_storm_of_changes_is_one_restart() {
    let mut sim = Sim::new(
        vec![(cfg("web.0", None), 0), (cfg("worker.0", None), 0)],
        vec![],
        true,
    );
    for i in 0..200 {
        sim.now += ms(1);
        let path = format!("/app/f{}.py", i % 20);
        sim.core
            .restart(None, vec![path.into()], sim.now, &sim.world);
        sim.pump();
    }
    let stops = sim
        .log
        .iter()
        .filter(|a| matches!(a, Action::Stop { .. }))
        .count();
    assert_eq!(stops, 2, "one stop per process");
    assert_eq!(sim.core.jobs[0].state(), State::Stopped);
    let last = sim.now;
    assert_eq!(
        sim.next(),
        last + ms(100),
        "the quiet period follows the last change"
    );
    assert_eq!((sim.spawns(0), sim.spawns(1)), (2, 2));
    let syncs: Vec<&Action> = sim
        .log
        .iter()
        .filter(|a| matches!(a, Action::Sync { .. }))
        .collect();
    assert_eq!(syncs.len(), 1);
    assert!(matches!(syncs[0], Action::Sync { paths, overflow: false, .. } if paths.len() == 20));
    assert_eq!(sim.core.deadline(), None);
}

#[test]
fn a_restart_waits_for_the_old_process_and_its_port() {
    let mut sim = Sim::new(vec![(cfg("web.0", Some(5000)), 0)], vec![], true);
    sim.listening.insert((0, 1));
    sim.next();
    sim.ignores_term.insert(0);
    sim.core.restart(None, Vec::new(), sim.now, &sim.world);
    sim.pump();
    sim.now += ms(500);
    sim.core.tick(sim.now, &sim.world);
    sim.pump();
    assert_eq!(sim.spawns(0), 1, "the old process still runs");
    sim.world.taken.borrow_mut().insert(5000);
    let pid = sim.running(0)[0].0;
    sim.exit(pid, 0);
    sim.pump();
    sim.next();
    assert_eq!(sim.spawns(0), 1, "its port is still taken");
    sim.world.taken.borrow_mut().clear();
    sim.next();
    assert_eq!(sim.spawns(0), 2);
    assert!(
        sim.log
            .iter()
            .any(|a| matches!(a, Action::Sync { overflow: true, .. }))
    );
}

#[test]
fn a_port_another_process_keeps_is_waited_for_a_while_then_named() {
    let mut sim = Sim::new(vec![(cfg("web.0", Some(5000)), 0)], vec![], true);
    sim.listening.insert((0, 1));
    sim.next();
    // A daemon the old process left keeps the port for good.
    sim.world.taken.borrow_mut().insert(5000);
    sim.core.restart(None, Vec::new(), sim.now, &sim.world);
    sim.pump();
    let t0 = sim.now;
    while sim.spawns(0) < 2 && sim.now < t0 + super::restart::PORT_WAIT + ms(1000) {
        sim.next();
    }
    assert_eq!(sim.spawns(0), 2, "started again once the wait is over");
    assert!(sim.now >= t0 + super::restart::PORT_WAIT);
    assert!(sim.said("still taken"), "{:?}", sim.log);
}

#[test]
fn an_overlap_restart_stops_the_old_instance_once_the_new_one_is_ready() {
    let mut c = cfg("web.0", Some(5000));
    c.overlap = true;
    let mut sim = Sim::new(vec![(c, 0)], vec![], true);
    sim.listening.insert((0, 1));
    sim.next();
    sim.core.restart(None, Vec::new(), sim.now, &sim.world);
    sim.pump();
    assert!(!sim.log.iter().any(|a| matches!(a, Action::Stop { .. })));
    sim.next();
    assert_eq!(sim.spawns(0), 2);
    assert_eq!(sim.running(0).len(), 2, "old and new side by side");
    sim.next();
    sim.next();
    assert_eq!(
        sim.running(0).len(),
        2,
        "the old one serves until the new one is ready"
    );
    assert!(sim.core.jobs[0].ready());
    sim.listening.insert((0, 2));
    sim.next();
    let ready = sim
        .log
        .iter()
        .rposition(|a| matches!(a, Action::Say(_, m) if m.starts_with("web.0 ready")));
    let stop = sim
        .log
        .iter()
        .position(|a| matches!(a, Action::Stop { .. }));
    assert!(
        ready.is_some() && stop.is_some() && ready < stop,
        "{:?}",
        sim.log
    );
    assert_eq!(sim.running(0).iter().map(|r| r.1).collect::<Vec<_>>(), [2]);
    assert_eq!(sim.core.jobs[0].state(), State::Ready);
}

#[test]
fn a_replacement_that_dies_before_it_is_ready_is_tried_again_after_the_old_one_stopped() {
    let mut c = cfg("web.0", Some(5000));
    c.overlap = true;
    c.alt_port = Some(5001);
    let mut sim = Sim::new(vec![(c, 0)], vec![], true);
    sim.listening.insert((0, 1));
    sim.next();
    sim.core.restart(None, Vec::new(), sim.now, &sim.world);
    sim.pump();
    sim.next();
    assert!(sim.log.iter().any(|a| matches!(
        a,
        Action::Spawn {
            generation: 2,
            slot: 1,
            ..
        }
    )));
    let new = sim.running(0)[1].0;
    sim.exit(new, 1);
    sim.pump();
    assert!(sim.said("the new instance exited with status 1 before it was ready"));
    assert!(sim.said("--stop-first"));
    // The old one is stopped (it exits at its stop signal in the simulation), then the third
    // instance starts alone, on the first port.
    for _ in 0..50 {
        if sim.spawns(0) == 3 {
            break;
        }
        sim.next();
    }
    assert_eq!(sim.running(0).iter().map(|r| r.1).collect::<Vec<_>>(), [3]);
    assert!(sim.log.iter().any(|a| matches!(
        a,
        Action::Spawn {
            generation: 3,
            slot: 0,
            ..
        }
    )));
    sim.listening.insert((0, 3));
    sim.next();
    assert!(sim.core.jobs[0].ready());
    // The next restart overlaps again, on the second port.
    sim.core.restart(None, Vec::new(), sim.now, &sim.world);
    sim.pump();
    sim.next();
    assert_eq!(sim.running(0).len(), 2, "old and new side by side");
}

#[test]
fn a_change_while_the_restarted_process_starts_restarts_it_again() {
    let mut sim = Sim::new(vec![(cfg("web.0", Some(5000)), 0)], vec![], true);
    sim.listening.insert((0, 1));
    sim.next();
    sim.core
        .restart(None, vec!["/app/a".into()], sim.now, &sim.world);
    sim.pump();
    sim.next();
    assert_eq!(sim.spawns(0), 2);
    // The new instance is still starting when the rest of the changes come.
    sim.now += ms(20);
    let many: Vec<std::path::PathBuf> = (0..3000).map(|i| format!("/app/f{i}").into()).collect();
    sim.core.restart(None, many, sim.now, &sim.world);
    sim.pump();
    for _ in 0..200 {
        if sim.spawns(0) == 3 {
            break;
        }
        sim.next();
    }
    assert_eq!(sim.spawns(0), 3);
}

#[test]
fn a_replacement_that_crashes_while_the_old_one_drains_never_takes_its_port() {
    let mut c = cfg("web.0", Some(5000));
    c.overlap = true;
    c.alt_port = Some(5001);
    let mut sim = Sim::new(vec![(c, 0)], vec![], true);
    // The old one takes its time to stop (it ignores its stop signal until killed).
    sim.ignores_term.insert(0);
    sim.listening.insert((0, 1));
    sim.next();
    sim.core.restart(None, Vec::new(), sim.now, &sim.world);
    sim.pump();
    sim.next();
    sim.listening.insert((0, 2));
    sim.next();
    assert_eq!(sim.running(0).len(), 2, "the old one still stops");
    // The replacement (second port) crashes: its restart must not take the first port,
    // which the old one still holds.
    let new = sim
        .running(0)
        .into_iter()
        .find(|r| r.1 == 2)
        .expect("the replacement")
        .0;
    sim.exit(new, 1);
    sim.pump();
    for _ in 0..20 {
        if sim.spawns(0) == 3 {
            break;
        }
        sim.next();
    }
    let third = sim.log.iter().find_map(|a| match a {
        Action::Spawn {
            generation: 3,
            slot,
            ..
        } => Some(*slot),
        _ => None,
    });
    assert!(
        sim.running(0).iter().any(|r| r.1 == 1),
        "the old one still runs when the third starts"
    );
    assert_eq!(third, Some(1), "{:?}", sim.log);
}
