//! The test seam of the job logic: a fake child (spawns get pids, a stop signal ends a
//! child unless it ignores TERM, a probe answers when it listens) and a fake clock that jumps
//! from deadline to deadline. No processes, no sleeps.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use super::core::Core;
use super::health::Policy;
use super::job::{Action, Config, Rules, World};

/// The fake world: last lines, hook failures and taken ports on command.
#[derive(Default)]
pub(super) struct Fake {
    pub(super) taken: RefCell<HashSet<u16>>,
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
pub(super) struct Sim {
    pub(super) core: Core,
    pub(super) world: Fake,
    pub(super) now: Instant,
    next_pid: i32,
    /// pid → (job, generation)
    alive: HashMap<i32, (usize, u64)>,
    pub(super) ignores_term: HashSet<usize>,
    pub(super) listening: HashSet<(usize, u64)>,
    pub(super) log: Vec<Action>,
}

pub(super) fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

pub(super) fn cfg(name: &str, probe: Option<u16>) -> Config {
    Config {
        name: name.into(),
        probe,
        port: probe,
        ready_timeout: Duration::from_secs(60),
        grace: Duration::from_secs(10),
        overlap: false,
        alt_port: None,
    }
}

pub(super) fn rules(watching: bool) -> Rules {
    Rules {
        grace: Duration::from_secs(10),
        exit_on_crash: false,
        watching,
        policy: Policy::PLATFORM,
    }
}

impl Sim {
    pub(super) fn new(jobs: Vec<(Config, usize)>, deps: Vec<Vec<usize>>, watching: bool) -> Sim {
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
    pub(super) fn pump(&mut self) {
        loop {
            let acts = self.core.take_actions();
            if acts.is_empty() {
                return;
            }
            for a in acts {
                self.log.push(a.clone());
                match a {
                    Action::Spawn {
                        job, generation, ..
                    } => {
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

    pub(super) fn exit(&mut self, pid: i32, code: i32) {
        if let Some((job, generation)) = self.alive.remove(&pid) {
            self.core
                .exited(job, generation, code, self.now, &self.world);
        }
    }

    /// The running instance of `job` (its pid and generation).
    pub(super) fn running(&self, job: usize) -> Vec<(i32, u64)> {
        let mut v: Vec<(i32, u64)> = self
            .alive
            .iter()
            .filter(|(_, (j, _))| *j == job)
            .map(|(p, (_, g))| (*p, *g))
            .collect();
        v.sort();
        v
    }

    pub(super) fn crash(&mut self, job: usize, after: Duration, code: i32) {
        self.now += after;
        let pid = self.running(job)[0].0;
        self.exit(pid, code);
        self.pump();
    }

    /// Let the clock run to the next deadline.
    pub(super) fn next(&mut self) -> Instant {
        let at = self.core.deadline().expect("a deadline");
        self.now = self.now.max(at);
        self.core.tick(self.now, &self.world);
        self.pump();
        at
    }

    pub(super) fn spawns(&self, job: usize) -> usize {
        self.log
            .iter()
            .filter(|a| matches!(a, Action::Spawn { job: j, .. } if *j == job))
            .count()
    }

    pub(super) fn said(&self, needle: &str) -> bool {
        self.log
            .iter()
            .any(|a| matches!(a, Action::Say(_, m) if m.contains(needle)))
    }
}
