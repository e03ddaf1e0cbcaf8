//! The job logic against a fake child and a fake clock: no processes, no sleeps.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use super::super::Outcome;
use super::super::health::Policy;
use super::super::job::{Action, Config, Level, Rules, State, World};
use super::Core;

/// The fake world: last lines, hook failures and taken ports on command.
#[derive(Default)]
struct Fake {
    taken: RefCell<HashSet<u16>>,
}

impl World for Fake {
    fn tail(&self, job: usize) -> String {
        format!("last line of job {job}")
    }
    fn hint(&self, _: usize) -> String {
        String::new()
    }
    fn hook_failure(&self, _: usize) -> Option<String> {
        None
    }
    fn port_free(&self, port: u16) -> bool {
        !self.taken.borrow().contains(&port)
    }
}

/// The fake children: each spawn gets a pid; a stop signal ends it unless its job ignores
/// TERM; a probe answers when its instance listens.
struct Sim {
    core: Core,
    world: Fake,
    now: Instant,
    next_pid: i32,
    /// pid → (job, generation)
    alive: HashMap<i32, (usize, u64)>,
    ignores_term: HashSet<usize>,
    listening: HashSet<(usize, u64)>,
    log: Vec<Action>,
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn cfg(name: &str, probe: Option<u16>) -> Config {
    Config {
        name: name.into(),
        probe,
        port: probe,
        ready_timeout: Duration::from_secs(60),
        grace: Duration::from_secs(10),
        overlap: false,
    }
}

fn rules(watching: bool) -> Rules {
    Rules {
        grace: Duration::from_secs(10),
        exit_on_crash: false,
        watching,
        policy: Policy::PLATFORM,
    }
}

impl Sim {
    fn new(jobs: Vec<(Config, usize)>, deps: Vec<Vec<usize>>, watching: bool) -> Sim {
        let now = Instant::now();
        let mut sim = Sim {
            core: Core::new(jobs, deps, rules(watching), ms(100), now),
            world: Fake::default(),
            now,
            next_pid: 100,
            alive: HashMap::new(),
            ignores_term: HashSet::new(),
            listening: HashSet::new(),
            log: Vec::new(),
        };
        sim.core.start(now, &sim.world);
        sim.pump();
        sim
    }

    /// Carry out the core's actions the way the event loop does, until there are none.
    fn pump(&mut self) {
        loop {
            let acts = self.core.take_actions();
            if acts.is_empty() {
                return;
            }
            for a in acts {
                self.log.push(a.clone());
                match a {
                    Action::Spawn { job, generation } => {
                        self.next_pid += 1;
                        self.alive.insert(self.next_pid, (job, generation));
                        let pid = Ok(self.next_pid);
                        self.core
                            .spawned(job, generation, pid, self.now, &self.world);
                    }
                    Action::Stop { job, pid } if !self.ignores_term.contains(&job) => {
                        self.exit(pid, 143)
                    }
                    Action::Kill { pid, .. } => self.exit(pid, 137),
                    Action::Probe {
                        job, generation, ..
                    } => {
                        let up = self.listening.contains(&(job, generation));
                        self.core.probed(job, generation, up, self.now, &self.world);
                    }
                    _ => {}
                }
            }
        }
    }

    fn exit(&mut self, pid: i32, code: i32) {
        if let Some((job, generation)) = self.alive.remove(&pid) {
            self.core
                .exited(job, generation, code, self.now, &self.world);
        }
    }

    /// The running instance of `job` (its pid and generation).
    fn running(&self, job: usize) -> Vec<(i32, u64)> {
        let mut v: Vec<(i32, u64)> = self
            .alive
            .iter()
            .filter(|(_, (j, _))| *j == job)
            .map(|(p, (_, g))| (*p, *g))
            .collect();
        v.sort();
        v
    }

    fn crash(&mut self, job: usize, after: Duration, code: i32) {
        self.now += after;
        let pid = self.running(job)[0].0;
        self.exit(pid, code);
        self.pump();
    }

    /// Let the clock run to the next deadline.
    fn next(&mut self) -> Instant {
        let at = self.core.deadline().expect("a deadline");
        self.now = self.now.max(at);
        self.core.tick(self.now, &self.world);
        self.pump();
        at
    }

    fn spawns(&self, job: usize) -> usize {
        self.log
            .iter()
            .filter(|a| matches!(a, Action::Spawn { job: j, .. } if *j == job))
            .count()
    }

    fn said(&self, needle: &str) -> bool {
        self.log
            .iter()
            .any(|a| matches!(a, Action::Say(_, m) if m.contains(needle)))
    }
}

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
fn a_replacement_that_dies_before_it_is_ready_leaves_the_old_one_serving() {
    let mut c = cfg("web.0", Some(5000));
    c.overlap = true;
    let mut sim = Sim::new(vec![(c, 0)], vec![], true);
    sim.listening.insert((0, 1));
    sim.next();
    sim.core.restart(None, Vec::new(), sim.now, &sim.world);
    sim.pump();
    sim.next();
    let new = sim.running(0)[1].0;
    sim.exit(new, 1);
    sim.pump();
    assert!(sim.said("the new instance exited with status 1 before it was ready"));
    assert_eq!(sim.running(0).iter().map(|r| r.1).collect::<Vec<_>>(), [1]);
    assert!(sim.core.jobs[0].ready());
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
            generation: 1
        }]
    );
    core.spawned(0, 1, Err("No such file".into()), now, &world);
    assert!(
        matches!(core.finished(), Some(Outcome::SpawnFailed(m)) if m == "web.0 could not be started: No such file")
    );
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
