//! The supervisor's decisions, apart from any process or clock: every job, the start order,
//! the restart coordinator, and the stop of the run. The event loop feeds it what happened
//! (with the time) and carries out the [`Action`]s it queues; the unit tests feed it a fake
//! child instead.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use super::Outcome;
use super::job::{Action, Config, Job, Level, Rules, World};
use super::restart::{Restarts, describe_paths};

/// A port still taken by the old process is checked again after this.
const PORT_RETRY: Duration = Duration::from_millis(2);

pub(super) struct Core {
    pub jobs: Vec<Job>,
    /// Each job's group (app).
    group_of: Vec<usize>,
    started: Vec<bool>,
    deps: Vec<Vec<usize>>,
    rules: Rules,
    pub restarts: Restarts,
    stopping: Option<Outcome>,
    killed: bool,
    acts: Vec<Action>,
}

impl Core {
    /// `jobs`: each job's configuration and group, groups in start order; `deps[g]`: the
    /// groups `g` waits for.
    pub(super) fn new(
        jobs: Vec<(Config, usize)>,
        mut deps: Vec<Vec<usize>>,
        rules: Rules,
        debounce: Duration,
        now: Instant,
    ) -> Core {
        let groups = jobs
            .iter()
            .map(|(_, g)| g + 1)
            .max()
            .unwrap_or(0)
            .max(deps.len());
        deps.resize(groups, Vec::new());
        let group_of = jobs.iter().map(|(_, g)| *g).collect();
        Core {
            jobs: jobs
                .into_iter()
                .enumerate()
                .map(|(i, (cfg, _))| Job::new(i, cfg, now))
                .collect(),
            group_of,
            started: vec![false; groups],
            deps,
            rules,
            restarts: Restarts::new(debounce),
            stopping: None,
            killed: false,
            acts: Vec::new(),
        }
    }

    /// What to do now, in order.
    pub(super) fn take_actions(&mut self) -> Vec<Action> {
        std::mem::take(&mut self.acts)
    }

    pub(super) fn stopping(&self) -> bool {
        self.stopping.is_some()
    }

    /// The run is over: stopping and no process left.
    pub(super) fn finished(&self) -> Option<Outcome> {
        let outcome = self.stopping.clone()?;
        self.jobs.iter().all(Job::down).then_some(outcome)
    }

    /// The earliest deadline of any job or of the pending restart.
    pub(super) fn deadline(&self) -> Option<Instant> {
        let restart = (!self.stopping()).then(|| self.restarts.due()).flatten();
        self.jobs
            .iter()
            .filter_map(Job::deadline)
            .chain(restart)
            .min()
    }

    /// Start the apps whose dependencies are ready (all apps without dependencies at once).
    pub(super) fn start(&mut self, now: Instant, world: &dyn World) {
        self.settle(now, world);
    }

    /// After anything happened: start what may start now, release a restart that may go.
    fn settle(&mut self, now: Instant, world: &dyn World) {
        if self.stopping() {
            return;
        }
        self.start_ready_groups(now);
        self.release(now, world);
    }

    /// Start the apps not started yet whose dependencies are ready, until none is left.
    fn start_ready_groups(&mut self, now: Instant) {
        loop {
            let next = super::order::startable(&self.started, &self.deps, |g| self.group_ready(g));
            if next.is_empty() {
                break;
            }
            for g in next {
                self.started[g] = true;
                for j in 0..self.jobs.len() {
                    if self.group_of[j] == g {
                        self.jobs[j].start(now, &mut self.acts);
                    }
                }
            }
        }
    }

    fn group_ready(&self, g: usize) -> bool {
        (0..self.jobs.len())
            .filter(|&j| self.group_of[j] == g)
            .all(|j| self.jobs[j].ready())
    }

    fn fail(&mut self, outcome: Option<Outcome>, now: Instant) {
        if let Some(o) = outcome {
            self.begin_stop(o, now);
        }
    }

    pub(super) fn spawned(
        &mut self,
        job: usize,
        generation: u64,
        result: Result<i32, String>,
        now: Instant,
        world: &dyn World,
    ) {
        let failed = self.jobs[job].spawned(generation, result, now, &mut self.acts);
        self.fail(failed, now);
        self.settle(now, world);
    }

    pub(super) fn exited(
        &mut self,
        job: usize,
        generation: u64,
        code: i32,
        now: Instant,
        world: &dyn World,
    ) {
        let failed =
            self.jobs[job].exited(generation, code, now, &self.rules, world, &mut self.acts);
        self.fail(failed, now);
        if self.jobs[job].fallback && !self.stopping() {
            // A failed overlap restart: once more, the old instance stopped first.
            self.restarts.request(&[job], Vec::new(), now);
            self.jobs[job].request_restart(now, &mut self.acts);
        }
        self.settle(now, world);
    }

    pub(super) fn probed(
        &mut self,
        job: usize,
        generation: u64,
        answered: bool,
        now: Instant,
        world: &dyn World,
    ) {
        let failed = self.jobs[job].probed(generation, answered, now, world, &mut self.acts);
        self.fail(failed, now);
        self.settle(now, world);
    }

    /// The clock reached `now`: every deadline up to it is due.
    pub(super) fn tick(&mut self, now: Instant, world: &dyn World) {
        for j in &mut self.jobs {
            if j.deadline().is_some_and(|d| d <= now) {
                j.tick(now, &mut self.acts);
            }
        }
        self.settle(now, world);
    }

    /// Restart these jobs (all when `None`) because of `paths` (none: by hand).
    pub(super) fn restart(
        &mut self,
        which: Option<Vec<usize>>,
        paths: Vec<PathBuf>,
        now: Instant,
        world: &dyn World,
    ) {
        if self.stopping() {
            return;
        }
        let which = which.unwrap_or_else(|| (0..self.jobs.len()).collect());
        let described = (!paths.is_empty()).then(|| describe_paths(&paths));
        if self.restarts.request(&which, paths, now)
            && let Some(what) = described
        {
            let names: Vec<&str> = which
                .iter()
                .map(|&j| self.jobs[j].cfg.name.as_str())
                .collect();
            self.acts.push(Action::Say(
                Level::Phase,
                format!("{what} changed: restarting {}", names.join(", ")),
            ));
        }
        for j in which {
            self.jobs[j].request_restart(now, &mut self.acts);
        }
        self.settle(now, world);
    }

    /// Start the held jobs again once the changes are quiet, the old processes are gone and
    /// their ports free (a job with overlap waits only until one of its two ports is free).
    fn release(&mut self, now: Instant, world: &dyn World) {
        let Some(due) = self.restarts.due() else {
            return;
        };
        if self.stopping() {
            self.restarts.clear();
            return;
        }
        if now < due {
            return;
        }
        let waiting = self.restarts.waiting().to_vec();
        if !waiting.iter().all(|&j| self.jobs[j].can_start()) {
            // Their exits bring us back here.
            return;
        }
        let blocking = || {
            waiting
                .iter()
                .map(|&j| &self.jobs[j])
                .filter(|j| !j.overlaps())
        };
        // The old process must have let go of its port (no EADDRINUSE for the new one).
        let taken: Vec<String> = blocking()
            .filter_map(|j| j.cfg.port.filter(|p| !world.port_free(*p)).map(|p| (j, p)))
            .map(|(j, p)| format!("{} ({p})", j.cfg.name))
            .collect();
        if !taken.is_empty() {
            if self.restarts.retry(now, now + PORT_RETRY) {
                return;
            }
            self.acts.push(Action::Say(
                Level::Error,
                format!(
                    "the port of {} is still taken {} s after the old process ended: another process holds it (a daemon the old one started?); starting anyway. Stop that process, or Ctrl-C and run again",
                    taken.join(", "),
                    super::restart::PORT_WAIT.as_secs()
                ),
            ));
        }
        let Some(p) = self.restarts.take() else {
            return;
        };
        let recent = waiting.iter().all(|&j| {
            p.first_event
                .saturating_duration_since(self.jobs[j].last_start)
                < Duration::from_secs(1)
        });
        if let Some(msg) = self.restarts.detect_loop(&p, recent, now) {
            self.acts.push(Action::Say(Level::Error, msg));
        }
        // Edits reach the staged copies of the apps restarting before they start again.
        if !p.paths.is_empty() || p.overflow {
            self.acts.push(Action::Sync {
                jobs: waiting.clone(),
                paths: p.paths,
                overflow: p.overflow,
            });
        }
        // An app restarted as a whole starts again in dependency order, as at the start:
        // after the apps it depends on are ready again. The others' processes start now.
        let whole: Vec<usize> = (0..self.started.len())
            .filter(|&g| {
                (0..self.jobs.len())
                    .filter(|&j| self.group_of[j] == g)
                    .all(|j| waiting.contains(&j) && self.jobs[j].held)
            })
            .collect();
        for &g in &whole {
            self.started[g] = false;
        }
        for j in waiting {
            if self.jobs[j].held && !whole.contains(&self.group_of[j]) {
                self.jobs[j].start(now, &mut self.acts);
            }
        }
        self.start_ready_groups(now);
    }

    /// A signal asked us to stop: the first one stops everything gracefully, a second SIGINT
    /// kills at once.
    pub(super) fn signal(&mut self, name: &str, number: i32, now: Instant) {
        if self.stopping() {
            if number == libc::SIGINT && !self.killed {
                self.acts.push(Action::Say(
                    Level::Note,
                    "second Ctrl-C: killing everything now".into(),
                ));
                self.kill_all("killed (second Ctrl-C)");
            }
            return;
        }
        self.acts.push(Action::Say(
            Level::Phase,
            format!(
                "{name} received: stopping (grace {} s; Ctrl-C again to kill at once)",
                self.rules.grace.as_secs()
            ),
        ));
        self.begin_stop(Outcome::Signal(number), now);
    }

    /// Stop the run: every process gets its stop signal, and SIGKILL after the grace period.
    pub(super) fn begin_stop(&mut self, outcome: Outcome, now: Instant) {
        if self.stopping() {
            return;
        }
        self.stopping = Some(outcome);
        self.restarts.clear();
        for j in &mut self.jobs {
            j.stop(now, true, &mut self.acts);
        }
        self.acts.push(Action::Crons { kill: false });
    }

    fn kill_all(&mut self, why: &str) {
        self.killed = true;
        for j in &mut self.jobs {
            j.kill(why, &mut self.acts);
        }
        self.acts.push(Action::Crons { kill: true });
    }
}
