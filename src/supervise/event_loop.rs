//! The event loop: the one place that owns the supervisor's state. It waits for the next
//! event (an exit, a probe's answer, a signal, a change, a key, a control command) or the
//! next deadline (`sleep_until` in `select!`, no polling tick), hands it to the [`Core`], and
//! carries out the actions the core decides: spawn, signal, probe, print, sync the copies.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};

use super::child::{self, SharedTail, Spec, Tail};
use super::core::Core;
use super::crons::Crons;
use super::job::{Action, Config, Level, Rules};
use super::world::Tails;
use super::{Event, Options, Outcome, Plan, health};
use crate::output::{Output, Prefix};

/// The first check for orphans after a spawn; each next one waits twice as long, up to
/// [`ADOPT_MAX`].
const ADOPT_FIRST: Duration = Duration::from_millis(500);
const ADOPT_MAX: Duration = Duration::from_secs(60);
/// Without pidfds: how often a service's server is checked on.
const SERVICE_CHECK: Duration = Duration::from_secs(1);

pub(super) struct Loop {
    core: Core,
    specs: Vec<Spec>,
    prefixes: Vec<Prefix>,
    tails: Vec<SharedTail>,
    out: Arc<Output>,
    opts: Options,
    tx: UnboundedSender<Event>,
    crons: Crons,
    copies: Vec<Arc<crate::stage::droplet::Copies>>,
    /// Orphans that came to us (daemons of our children), told to the guardian.
    adopted: Vec<i32>,
    adopt_at: Option<tokio::time::Instant>,
    adopt_step: Duration,
    /// Services whose end no pidfd reports: checked at this deadline.
    service_check_at: Option<tokio::time::Instant>,
    /// Publishes the routed instances to the router (none without a router).
    routing: Option<super::routing::Routing>,
    /// Process groups whose stop signal waits for their requests to finish: (job, pid).
    draining: Vec<(usize, i32)>,
    /// The file watcher, dropped once the run stops: the kernel's teardown of its inotify
    /// instance (milliseconds) then overlaps the processes' stopping instead of delaying our
    /// exit.
    pub watching: Option<crate::watch::Watching>,
}

impl Loop {
    pub(super) fn new(
        plan: Plan,
        out: Arc<Output>,
        opts: Options,
    ) -> (Loop, UnboundedReceiver<Event>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let specs: Vec<Spec> = plan.groups.iter().flatten().cloned().collect();
        for s in &specs {
            out.reserve(&s.name);
        }
        for c in &plan.crons {
            out.reserve(&c.name);
        }
        let prefixes = specs
            .iter()
            .enumerate()
            .map(|(i, s)| out.prefix(&s.name, i))
            .collect();
        let tails = specs
            .iter()
            .map(|_| Arc::new(Mutex::new(Tail::default())))
            .collect();
        let jobs = plan
            .groups
            .iter()
            .enumerate()
            .flat_map(|(g, specs)| specs.iter().map(move |s| (s, g)))
            .map(|(s, g)| {
                let cfg = Config {
                    name: s.name.clone(),
                    probe: s.port.filter(|_| s.check == health::Check::Port),
                    port: s.port,
                    ready_timeout: s.ready_timeout,
                    grace: opts.grace,
                    overlap: s.overlap && s.alt.is_some(),
                    alt_port: s.alt.as_ref().map(|a| a.port),
                };
                (cfg, g)
            })
            .collect();
        let rules = Rules {
            grace: opts.grace,
            exit_on_crash: opts.exit_on_crash,
            watching: opts.watch.is_some(),
            in_place: plan.copies.is_empty(),
            policy: health::Policy::PLATFORM,
        };
        let debounce = opts.watch.as_ref().map_or(Duration::ZERO, |w| w.debounce);
        let routing = opts.routes.clone().map(|tx| {
            // A round with apps gets a table of its own (apps may have changed); a round
            // without (a reload that failed) keeps the last one: requests wait for its apps.
            if !plan.routes.is_empty() {
                tx.send_replace(Arc::new(crate::router::table::RouteTable::new(
                    plan.routes.clone(),
                )));
            }
            super::routing::Routing::new(tx, specs.len())
        });
        let core = Core::new(jobs, plan.deps.clone(), rules, debounce, Instant::now());
        let lp = Loop {
            core,
            specs,
            prefixes,
            tails,
            out,
            opts,
            tx,
            crons: Crons::new(plan.crons, plan.utc_offset),
            copies: plan.copies,
            adopted: Vec::new(),
            adopt_at: None,
            adopt_step: ADOPT_FIRST,
            service_check_at: None,
            routing,
            draining: Vec::new(),
            watching: None,
        };
        (lp, rx)
    }

    pub(super) fn sender(&self) -> UnboundedSender<Event> {
        self.tx.clone()
    }

    /// Watch the services' servers: each one's end becomes an event.
    pub(super) fn watch_services(&mut self) {
        for (name, pid) in self.opts.watched_services.clone() {
            if pid > 0 && !super::sources::service_exit(&name, pid, &self.tx) {
                self.service_check_at = Some(tokio::time::Instant::now() + SERVICE_CHECK);
            }
        }
    }

    /// Run until the plan is over; why it ended.
    pub(super) async fn run(mut self, mut rx: UnboundedReceiver<Event>) -> Outcome {
        self.core.start(Instant::now(), &Tails(&self.tails));
        loop {
            self.carry_out();
            self.sync_down();
            if self.core.stopping() {
                // The run ends: no more waiting for requests.
                for (job, pid) in std::mem::take(&mut self.draining) {
                    self.signal(job, pid);
                }
                self.watching = None;
            }
            if let Some(outcome) = self.core.finished()
                && self.crons.pids.is_empty()
            {
                super::orphans::cleanup(&self.opts.keep);
                super::orphans::kill_marked();
                return outcome;
            }
            let deadline = [
                self.core.deadline().map(tokio::time::Instant::from_std),
                self.crons.deadline(),
                self.adopt_at.filter(|_| !self.core.stopping()),
                self.service_check_at.filter(|_| !self.core.stopping()),
            ]
            .into_iter()
            .flatten()
            .min();
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                ev = rx.recv() => match ev {
                    Some(ev) => self.on_event(ev),
                    None => return Outcome::SpawnFailed("the event loop lost its channel".into()),
                },
                () = sleep => self.on_deadline(),
            }
        }
    }

    fn on_deadline(&mut self) {
        let now = tokio::time::Instant::now();
        self.core.tick(now.into_std(), &Tails(&self.tails));
        self.crons.tick(now, &self.out, &self.tx);
        if self.adopt_at.is_some_and(|a| a <= now) {
            self.adopt_orphans();
            self.adopt_step = (self.adopt_step * 2).min(ADOPT_MAX);
            self.adopt_at = Some(now + self.adopt_step);
        }
        if self.service_check_at.is_some_and(|a| a <= now) {
            self.service_check_at = Some(now + SERVICE_CHECK);
            for (name, pid) in self.opts.watched_services.clone() {
                if pid > 0 && !crate::services::lifecycle::alive(pid) {
                    self.on_event(Event::ServiceDied { name, pid });
                }
            }
        }
    }

    /// Carry out what the core decided, until it decides nothing more.
    fn carry_out(&mut self) {
        loop {
            let acts = self.core.take_actions();
            if acts.is_empty() {
                return;
            }
            for a in acts {
                self.act(a);
            }
        }
    }

    fn act(&mut self, a: Action) {
        match a {
            Action::Spawn {
                job,
                generation,
                slot,
            } => self.spawn(job, generation, slot),
            Action::Stop { job, pid } => {
                if self.drained(job, pid) {
                    self.stop_group(job, pid);
                }
            }
            Action::Kill { pid, .. } => {
                let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
            }
            Action::Probe {
                job,
                generation,
                port,
            } => {
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    let answered = super::ready::attempt(port).await;
                    let _ = tx.send(Event::Probed {
                        job,
                        generation,
                        answered,
                    });
                });
            }
            Action::Say(Level::Phase, m) => self.out.phase(&m),
            Action::Say(Level::Note, m) => self.out.note(&m),
            Action::Say(Level::Error, m) => self.out.error(&m),
            Action::Sync {
                jobs,
                paths,
                overflow,
            } => {
                for c in &self.copies {
                    if jobs.iter().any(|&j| self.specs[j].app == c.app) {
                        for note in c.sync_paths(&paths, overflow) {
                            self.out.note(&format!("note: {note}"));
                        }
                    }
                }
            }
            Action::Crons { kill } => self.crons.stop(kill, self.opts.grace),
        }
    }

    /// Whether process group `pid` of `job` may get its stop signal now: not routed, the
    /// run is ending (requests in flight end with it), or it answers no request; otherwise
    /// the router stops sending it requests and [`Event::Drained`] comes when it is done.
    fn drained(&mut self, job: usize, pid: i32) -> bool {
        let Some(routing) = &self.routing else {
            return true;
        };
        if self.core.stopping() {
            return true;
        }
        let j = &self.core.jobs[job];
        let Some(generation) = j
            .current
            .iter()
            .chain(j.old.iter())
            .find(|i| i.pid == Some(pid))
            .map(|i| i.generation)
        else {
            return true;
        };
        // Its requests get up to the grace period; then the stop signal, and the grace
        // period again before SIGKILL.
        let limit = self.opts.grace;
        let now = routing.drain(job, generation, pid, &self.specs[job], limit, &self.tx);
        if !now {
            self.core.signal_at(job, pid, Instant::now() + limit);
            self.draining.push((job, pid));
        }
        now
    }

    /// Send process group `pid` of `job` its stop signal now (it drained), if it still runs.
    fn signal(&mut self, job: usize, pid: i32) {
        let j = &self.core.jobs[job];
        if j.current
            .iter()
            .chain(j.old.iter())
            .any(|i| i.pid == Some(pid))
        {
            self.stop_group(job, pid);
            self.core.signal_at(job, pid, Instant::now());
        }
    }

    /// Send process group `pid` of `job` its stop signal (TERM, INT for a bare uWSGI).
    fn stop_group(&self, job: usize, pid: i32) {
        let _ = killpg(
            Pid::from_raw(pid),
            child::stop_signal(&self.specs[job].command),
        );
    }

    /// Tell the router which apps are down (crashed too often, waiting for a change).
    fn sync_down(&mut self) {
        let Some(routing) = self.routing.as_mut() else {
            return;
        };
        for (j, job) in self.core.jobs.iter().enumerate() {
            let down = job.state() == super::job::State::Flapping;
            routing.set_down(j, &self.specs[j], down);
        }
    }

    fn spawn(&mut self, job: usize, generation: u64, slot: u8) {
        if let Ok(mut t) = self.tails[job].lock() {
            t.hook_failure = None;
        }
        // The replacement of an overlap restart: the second port, and what names it.
        let alt;
        let spec = match (slot, &self.specs[job].alt) {
            (1, Some(a)) => {
                let mut s = self.specs[job].clone();
                s.env.clone_from(&a.env);
                s.command.clone_from(&a.command);
                s.port = Some(a.port);
                alt = s;
                &alt
            }
            _ => &self.specs[job],
        };
        // A routed instance's own last lines, for the router's pages about it (the job's mix
        // the old and the new process of an overlap restart).
        let own = (self.routing.is_some() && spec.port.is_some()).then(SharedTail::default);
        let spawned = child::spawn(
            spec,
            &self.out,
            &self.prefixes[job],
            &self.tails[job],
            own.as_ref(),
        );
        let result = match spawned {
            Ok(running) => {
                let pid = running.pid;
                if let (Some(routing), Some(port), Some(own)) =
                    (self.routing.as_mut(), spec.port, &own)
                {
                    routing.starting(job, generation, spec, port, own);
                }
                let tx = self.tx.clone();
                tokio::spawn(async move {
                    let code = running.finished().await;
                    let _ = tx.send(Event::Exited {
                        job,
                        generation,
                        pid,
                        code,
                    });
                });
                // Its daemons, if it starts any, are looked for soon.
                self.adopt_step = ADOPT_FIRST;
                self.adopt_at = Some(tokio::time::Instant::now() + ADOPT_FIRST);
                Ok(pid)
            }
            Err(e) => Err(e.to_string()),
        };
        self.core
            .spawned(job, generation, result, Instant::now(), &Tails(&self.tails));
    }

    fn on_event(&mut self, ev: Event) {
        let now = Instant::now();
        match ev {
            Event::Exited {
                job,
                generation,
                pid,
                code,
            } => {
                // Whatever the process left in its group goes too.
                let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
                crate::process::forget_group(pid);
                if let Some(routing) = self.routing.as_mut() {
                    routing.gone(job, generation, &self.specs[job]);
                }
                self.core
                    .exited(job, generation, code, now, &Tails(&self.tails));
            }
            Event::Probed {
                job,
                generation,
                answered,
            } => {
                self.core
                    .probed(job, generation, answered, now, &Tails(&self.tails));
                if answered
                    && let Some(routing) = &self.routing
                    && self.core.jobs[job]
                        .current
                        .as_ref()
                        .is_some_and(|i| i.generation == generation && i.ready)
                {
                    routing.ready(&self.specs[job], generation);
                }
            }
            Event::Drained { job, pid } => {
                // Unless the run's end signalled it already; only while it still runs.
                if let Some(at) = self.draining.iter().position(|d| *d == (job, pid)) {
                    self.draining.swap_remove(at);
                    self.signal(job, pid);
                }
            }
            Event::Signal(Signal::SIGCHLD) => {
                if !self.core.stopping() {
                    super::orphans::reap(&mut self.adopted);
                }
            }
            Event::Signal(sig) => self.core.signal(sig.as_str(), sig as i32, now),
            Event::CronExited { name, pid, code } => self.crons.exited(&self.out, &name, pid, code),
            Event::ServiceDied { name, pid } => self.service_died(name, pid),
            Event::ServiceRestarted { name, result } => self.service_restarted(name, result),
            ev => super::requests::handle(&mut self.parts(), ev, now),
        }
    }

    /// A service server that died (a crash, a kill -9) is started again, off the event loop.
    fn service_died(&mut self, name: String, pid: i32) {
        // Reaps it if it was our child; a pidfd only wakes us when it ended.
        if self.core.stopping() || crate::services::lifecycle::alive(pid) {
            return;
        }
        let Some(restart) = self.opts.restart_service.clone() else {
            return;
        };
        let Some(s) = self
            .opts
            .watched_services
            .iter_mut()
            .find(|s| s.0 == name && s.1 == pid)
        else {
            return;
        };
        s.1 = 0;
        self.out.error(&format!(
            "service {name} stopped unexpectedly (pid {pid} is gone); starting it again"
        ));
        let tx = self.tx.clone();
        tokio::task::spawn_blocking(move || {
            let result = restart(&name);
            let _ = tx.send(Event::ServiceRestarted { name, result });
        });
    }

    fn service_restarted(&mut self, name: String, result: Result<(i32, Signal), String>) {
        match result {
            Ok((pid, _sig)) => {
                self.out.phase(&format!(
                    "service {name} is back (pid {pid}); its data was kept"
                ));
                if let Some(s) = self.opts.watched_services.iter_mut().find(|s| s.0 == name) {
                    s.1 = pid;
                }
                if !super::sources::service_exit(&name, pid, &self.tx) {
                    self.service_check_at = Some(tokio::time::Instant::now() + SERVICE_CHECK);
                }
            }
            Err(e) => {
                self.out.error(&format!(
                    "service {name} could not be started again: {e}; the app will fail to reach it (Ctrl-C, fix, run again)"
                ));
                self.opts.watched_services.retain(|s| s.0 != name);
            }
        }
    }

    /// Daemons our children left (reparented to us, a subreaper) are told to the guardian.
    fn adopt_orphans(&mut self) {
        let known: Vec<i32> = self
            .core
            .jobs
            .iter()
            .flat_map(|j| j.current.iter().chain(j.old.iter()).filter_map(|i| i.pid))
            .chain(self.crons.pids.iter().copied())
            .chain(self.opts.keep.iter().copied())
            .collect();
        super::orphans::adopt(&known, &mut self.adopted);
    }

    // For the requests module.
    pub(super) fn parts(&mut self) -> Parts<'_> {
        Parts {
            core: &mut self.core,
            specs: &self.specs,
            tails: &self.tails,
            out: &self.out,
            watch: self.opts.watch.as_ref(),
        }
    }
}

/// What handling a request needs of the loop.
pub(super) struct Parts<'a> {
    pub core: &'a mut Core,
    pub specs: &'a [Spec],
    pub tails: &'a [SharedTail],
    pub out: &'a Arc<Output>,
    pub watch: Option<&'a super::WatchOptions>,
}
