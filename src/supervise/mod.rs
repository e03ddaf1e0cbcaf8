//! The supervisor: one event loop that owns every process's state. It starts the apps in
//! dependency order (each web process must accept connections on its `$PORT` before the apps
//! that depend on it start), restarts crashed processes as [`health`] rules (backoff, then a
//! flapping verdict), runs cron entries, and shuts everything down on Ctrl-C/SIGTERM: TERM (INT
//! for a bare uWSGI, see [`child::stop_signal`]) to
//! every process group, a grace period, then KILL; a second Ctrl-C skips the wait. The guardian
//! (started by `run`, see [`crate::process`]) and PR_SET_PDEATHSIG make sure nothing survives
//! if the supervisor itself is killed.

pub mod child;
pub mod control;
pub mod cron;
pub mod guardian;
pub mod health;
pub mod hints;
mod keys;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::sync::mpsc;

use crate::output::{Output, Prefix};
use child::{SharedTail, Spec, Tail};

/// A scheduled cron entry of one instance.
#[derive(Debug, Clone)]
pub struct CronJob {
    pub name: String,
    pub schedule: cron::Schedule,
    pub command: String,
    pub env: Vec<(String, String)>,
    pub cwd: std::path::PathBuf,
    /// How much of the host environment it gets besides `env`.
    pub host: crate::env::host::Host,
}

/// Everything to run, apps in start order.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// One group per app, in dependency order.
    pub groups: Vec<Vec<Spec>>,
    /// For each group, the groups (apps) it depends on; it starts once their web processes
    /// answer. Empty: no dependencies.
    pub deps: Vec<Vec<usize>>,
    pub crons: Vec<CronJob>,
    /// Seconds east of UTC, for cron schedules.
    pub utc_offset: i64,
    /// The apps' staged copies: edits in the checkout are synced into them before the
    /// processes restart (none with `--in-place`).
    pub copies: Vec<Arc<crate::stage::droplet::Copies>>,
    /// Compare the checkouts with the copies in the background once started (the run
    /// started on the last staged copy without looking), then sync and restart what changed.
    pub verify: bool,
}

#[derive(Clone)]
pub struct Options {
    /// How long processes get between SIGTERM and SIGKILL.
    pub grace: Duration,
    /// Stop everything when a process exits instead of restarting it.
    pub exit_on_crash: bool,
    /// Our own children that are not app processes (service daemons): never cleaned up.
    pub keep: Vec<i32>,
    /// Restart on file changes.
    pub watch: Option<WatchOptions>,
    /// `r` restarts, `q` quits (stdin is a terminal).
    pub keys: bool,
    /// Listen here for `stackato-local restart` (a unix socket, 0600).
    pub control: Option<std::path::PathBuf>,
    /// Service servers to keep an eye on: (name, pid). One that dies is started again with
    /// `restart_service`, which returns its new pid.
    pub watched_services: Vec<(String, i32)>,
    pub restart_service: Option<ServiceRestarter>,
}

/// Starts a service again by name; returns its new pid and stop signal.
pub type ServiceRestarter = Arc<dyn Fn(&str) -> Result<(i32, Signal), String> + Send + Sync>;

/// File watching.
#[derive(Clone)]
pub struct WatchOptions {
    pub roots: Vec<std::path::PathBuf>,
    pub filter: Arc<crate::watch::Filter>,
    /// Stat the tree at this interval instead of inotify.
    pub poll: Option<Duration>,
    /// Quiet period after the last change before the new processes start.
    pub debounce: Duration,
}

impl std::fmt::Debug for WatchOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchOptions")
            .field("roots", &self.roots)
            .field("poll", &self.poll)
            .field("debounce", &self.debounce)
            .finish()
    }
}

/// Why the supervisor stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// A signal (SIGINT, SIGTERM, SIGHUP) asked us to stop.
    Signal(i32),
    /// A pre-running hook failed.
    HookFailed(String),
    /// A process exited and `--exit-on-crash` was given.
    Crashed(String),
    /// A process kept crashing ([`health::Verdict::Flapping`]) and nothing is watched.
    Flapping(String),
    /// A web process never accepted connections on its port.
    NotReady(String),
    /// A process could not be started at all.
    SpawnFailed(String),
    /// The manifest or a requirements file changed: restage and start again.
    Reload(String),
    /// `q` was pressed.
    Quit,
}

#[derive(Debug)]
enum Event {
    Exited {
        idx: usize,
        generation: u64,
        code: i32,
    },
    Ready {
        idx: usize,
        generation: u64,
        after: Duration,
    },
    NotReady {
        idx: usize,
        generation: u64,
    },
    Restart {
        idx: usize,
        generation: u64,
    },
    GraceOver,
    CronTick,
    Changed(Vec<std::path::PathBuf>),
    RestartTick,
    AdoptTick,
    ServiceTick,
    /// The background comparison found files changed since the copies were made.
    Stale {
        app: String,
        paths: Vec<std::path::PathBuf>,
        /// What the comparison could not do (links reaching outside, errors).
        notes: Vec<String>,
    },
    ServiceRestarted {
        name: String,
        result: Result<(i32, Signal), String>,
    },
    Key(u8),
    Control(String, tokio::sync::oneshot::Sender<String>),
    CronExited {
        name: String,
        pid: i32,
        code: i32,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Running,
    Backoff,
    Exited,
}

struct Proc {
    spec: Spec,
    group: usize,
    prefix: Prefix,
    tail: SharedTail,
    state: State,
    generation: u64,
    pid: Option<i32>,
    started: Instant,
    /// Its exits since the last change or restart request, for [`health::verdict`].
    history: Vec<health::Exit>,
    ready: bool,
    /// Stopped for a restart; the restart tick starts it again.
    restarting: bool,
}

/// A restart waiting for the changes to settle.
struct Pending {
    paths: Vec<std::path::PathBuf>,
    /// More paths than kept: the copies are compared in full before the restart.
    overflow: bool,
    last_event: Instant,
    /// When the changes began (for the loop detector).
    first_event: Instant,
}

struct Loop {
    procs: Vec<Proc>,
    out: Arc<Output>,
    opts: Options,
    tx: mpsc::UnboundedSender<Event>,
    /// Which groups have been started.
    started: Vec<bool>,
    deps: Vec<Vec<usize>>,
    /// Orphans that came to us (daemons of our children), told to the guardian.
    adopted: Vec<i32>,
    stopping: Option<Outcome>,
    killed: bool,
    crons: Vec<CronJob>,
    cron_pids: Vec<i32>,
    utc_offset: i64,
    pending: Option<Pending>,
    tick_armed: bool,
    /// Restarts caused by changes that came right after a start: a self-triggered loop?
    quick_restarts: Vec<(Instant, Vec<std::path::PathBuf>)>,
    /// Paths found to be written by the app itself; their changes are ignored from now on.
    self_written: Vec<std::path::PathBuf>,
    copies: Vec<Arc<crate::stage::droplet::Copies>>,
    _watching: Option<crate::watch::Watching>,
}

/// Run the plan until a signal or a failure; return why it ended.
pub fn run(plan: Plan, out: Arc<Output>, opts: Options) -> Outcome {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return Outcome::SpawnFailed(format!("cannot start the event loop: {e}")),
    };
    rt.block_on(run_async(plan, out, opts))
}

async fn run_async(plan: Plan, out: Arc<Output>, opts: Options) -> Outcome {
    use tokio::signal::unix::{SignalKind, signal};
    // Orphans of our children come to us, not to init, so we can clean them up.
    #[cfg(target_os = "linux")]
    let _ = nix::sys::prctl::set_child_subreaper(true);
    // `run` started it before its services and staging; this is a no-op then.
    crate::process::start_guardian(true);
    let (tx, mut rx) = mpsc::unbounded_channel();
    for s in plan.groups.iter().flatten() {
        out.reserve(&s.name);
    }
    let mut index = 0;
    let mut table = Vec::new();
    for (g, specs) in plan.groups.iter().enumerate() {
        for s in specs {
            table.push(Proc {
                prefix: out.prefix(&s.name, index),
                spec: s.clone(),
                group: g,
                tail: Arc::new(Mutex::new(Tail::default())),
                state: State::Exited,
                generation: 0,
                pid: None,
                started: Instant::now(),
                history: Vec::new(),
                ready: false,
                restarting: false,
            });
            index += 1;
        }
    }
    for c in &plan.crons {
        out.reserve(&c.name);
    }
    let mut lp = Loop {
        procs: table,
        out: Arc::clone(&out),
        opts,
        tx: tx.clone(),
        started: vec![false; plan.groups.len()],
        deps: {
            let mut d = plan.deps.clone();
            d.resize(plan.groups.len(), Vec::new());
            d
        },
        adopted: Vec::new(),
        stopping: None,
        killed: false,
        crons: plan.crons,
        cron_pids: Vec::new(),
        utc_offset: plan.utc_offset,
        pending: None,
        tick_armed: false,
        quick_restarts: Vec::new(),
        self_written: Vec::new(),
        copies: plan.copies.clone(),
        _watching: None,
    };
    if let Some(w) = lp.opts.watch.clone() {
        let (wtx, mut wrx) = mpsc::unbounded_channel::<Vec<std::path::PathBuf>>();
        lp._watching = Some(crate::watch::start(
            w.roots.clone(),
            Arc::clone(&w.filter),
            w.poll,
            wtx,
            Arc::clone(&lp.out),
        ));
        let tx = tx.clone();
        tokio::spawn(async move {
            while let Some(paths) = wrx.recv().await {
                if tx.send(Event::Changed(paths)).is_err() {
                    break;
                }
            }
        });
    }
    let _raw = if lp.opts.keys {
        keys::start(tx.clone())
    } else {
        None
    };
    if let Some(sock) = lp.opts.control.clone() {
        control::listen(&sock, tx.clone(), &lp.out);
    }
    let (mut sigint, mut sigterm, mut sighup) = match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
        signal(SignalKind::hangup()),
    ) {
        (Ok(a), Ok(b), Ok(c)) => (a, b, c),
        _ => return Outcome::SpawnFailed("cannot listen for signals".into()),
    };
    if !lp.crons.is_empty() {
        let tx = tx.clone();
        tokio::spawn(async move {
            loop {
                // Wake just after each minute boundary.
                let now_ms = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_millis() as u64;
                let wait = 60_000 - now_ms % 60_000 + 50;
                tokio::time::sleep(Duration::from_millis(wait)).await;
                if tx.send(Event::CronTick).is_err() {
                    break;
                }
            }
        });
    }
    #[cfg(target_os = "linux")]
    {
        let tx = tx.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(500)).await;
                if tx.send(Event::AdoptTick).is_err() {
                    break;
                }
            }
        });
    }
    if !lp.opts.watched_services.is_empty() {
        let tx = tx.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                if tx.send(Event::ServiceTick).is_err() {
                    break;
                }
            }
        });
    }
    lp.start_next_group();
    if plan.verify {
        for c in &plan.copies {
            let (tx, c) = (tx.clone(), Arc::clone(c));
            tokio::task::spawn_blocking(move || {
                let (paths, notes) = match c.diff() {
                    Ok(changes) => {
                        let notes = if changes.unsafe_links.is_empty() {
                            Vec::new()
                        } else {
                            vec![format!(
                                "error: {}: {} — the app runs on its last staged copy of them; remove the links, or run with --copy-unsafe-links",
                                c.app,
                                crate::stage::copy::refusal(&changes.unsafe_links, c.checkout())
                            )]
                        };
                        (
                            changes.paths().map(|r| c.checkout().join(r)).collect(),
                            notes,
                        )
                    }
                    Err(e) => (
                        Vec::new(),
                        vec![format!(
                            "error: {}: the checkout could not be compared with the staged copy: {e}",
                            c.app
                        )],
                    ),
                };
                if paths.is_empty() {
                    // In step: nothing to hold in memory until the next edit.
                    c.release();
                }
                if !paths.is_empty() || !notes.is_empty() {
                    let _ = tx.send(Event::Stale {
                        app: c.app.clone(),
                        paths,
                        notes,
                    });
                }
            });
        }
    }
    loop {
        if let Some(outcome) = lp.finished() {
            lp.cleanup_orphans();
            return outcome;
        }
        tokio::select! {
            Some(ev) = rx.recv() => lp.on_event(ev),
            _ = sigint.recv() => lp.on_signal(Signal::SIGINT),
            _ = sigterm.recv() => lp.on_signal(Signal::SIGTERM),
            _ = sighup.recv() => lp.on_signal(Signal::SIGHUP),
        }
    }
}

impl Loop {
    fn finished(&self) -> Option<Outcome> {
        let outcome = self.stopping.clone()?;
        let all_down =
            self.procs.iter().all(|p| p.state != State::Running) && self.cron_pids.is_empty();
        all_down.then_some(outcome)
    }

    /// Start every app whose dependencies answer (all apps without dependencies at once).
    fn start_next_group(&mut self) {
        self.maybe_next_group();
    }

    fn group_ready(&self, g: usize) -> bool {
        self.started[g] && self.procs.iter().filter(|p| p.group == g).all(|p| p.ready)
    }

    fn maybe_next_group(&mut self) {
        loop {
            if self.stopping.is_some() {
                return;
            }
            let next = (0..self.started.len())
                .find(|&g| !self.started[g] && self.deps[g].iter().all(|&d| self.group_ready(d)));
            let Some(g) = next else { return };
            self.started[g] = true;
            for i in 0..self.procs.len() {
                if self.procs[i].group == g {
                    self.spawn(i);
                }
            }
        }
    }

    /// A service server that died (a crash, a kill -9) is started again, off the event loop.
    fn check_services(&mut self) {
        if self.stopping.is_some() {
            return;
        }
        let Some(restart) = self.opts.restart_service.clone() else {
            return;
        };
        let dead: Vec<(String, i32)> = self
            .opts
            .watched_services
            .iter()
            .filter(|(_, pid)| *pid > 0 && !crate::services::lifecycle::alive(*pid))
            .cloned()
            .collect();
        for (name, pid) in dead {
            self.out.error(&format!(
                "service {name} stopped unexpectedly (pid {pid} is gone); starting it again"
            ));
            if let Some(s) = self.opts.watched_services.iter_mut().find(|s| s.0 == name) {
                s.1 = 0;
            }
            let tx = self.tx.clone();
            let restart = Arc::clone(&restart);
            tokio::task::spawn_blocking(move || {
                let result = restart(&name);
                let _ = tx.send(Event::ServiceRestarted { name, result });
            });
        }
    }

    /// Daemons our children left (reparented to us, a subreaper) are told to the guardian,
    /// so they die with the run even if the supervisor is killed; dead ones are reaped.
    fn adopt_orphans(&mut self) {
        let me = std::process::id() as i32;
        let known: Vec<i32> = self
            .procs
            .iter()
            .filter_map(|p| p.pid)
            .chain(self.cron_pids.iter().copied())
            .chain(self.opts.keep.iter().copied())
            .chain(crate::process::guardian_pid())
            .collect();
        self.adopted.retain(|&pid| {
            let _ = nix::sys::wait::waitpid(
                Pid::from_raw(pid),
                Some(nix::sys::wait::WaitPidFlag::WNOHANG),
            );
            crate::services::lifecycle::alive(pid)
        });
        for pid in children_of(me) {
            if !known.contains(&pid) && !self.adopted.contains(&pid) {
                self.adopted.push(pid);
                crate::process::guard_orphan(pid);
            }
        }
    }

    fn spawn(&mut self, i: usize) {
        let p = &mut self.procs[i];
        p.generation += 1;
        p.ready = false;
        p.restarting = false;
        if let Ok(mut t) = p.tail.lock() {
            t.hook_failure = None;
        }
        match child::spawn(&p.spec, &self.out, &p.prefix, &p.tail) {
            Ok(running) => {
                let pid = running.pid;
                p.pid = Some(pid);
                p.state = State::Running;
                p.started = Instant::now();
                // Without a port check it is up while it runs (spec §4.1).
                let checked = p.spec.port.filter(|_| p.spec.check == health::Check::Port);
                p.ready = checked.is_none();
                let tx = self.tx.clone();
                let generation = p.generation;
                tokio::spawn(async move {
                    let code = running.finished().await;
                    let _ = tx.send(Event::Exited {
                        idx: i,
                        generation,
                        code,
                    });
                });
                if let Some(port) = checked {
                    let tx = self.tx.clone();
                    let timeout = p.spec.ready_timeout;
                    tokio::spawn(async move {
                        let t0 = Instant::now();
                        loop {
                            let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
                            // A connection to itself is no server (see services::ports).
                            let answered = match tokio::net::TcpStream::connect(addr).await {
                                Ok(s) => match (s.local_addr(), s.peer_addr()) {
                                    (Ok(l), Ok(p)) => {
                                        !crate::services::ports::is_self_connection(l, p)
                                    }
                                    _ => false,
                                },
                                Err(_) => false,
                            };
                            if answered {
                                let _ = tx.send(Event::Ready {
                                    idx: i,
                                    generation,
                                    after: t0.elapsed(),
                                });
                                return;
                            }
                            if t0.elapsed() > timeout {
                                let _ = tx.send(Event::NotReady { idx: i, generation });
                                return;
                            }
                            let step = if t0.elapsed() < Duration::from_secs(2) {
                                Duration::from_millis(2)
                            } else {
                                Duration::from_millis(25)
                            };
                            tokio::time::sleep(step).await;
                        }
                    });
                }
            }
            Err(e) => {
                let msg = format!("{} could not be started: {e}", p.spec.name);
                self.out.error(&msg);
                p.state = State::Exited;
                self.begin_stop(Outcome::SpawnFailed(msg));
            }
        }
    }

    fn tail_text(&self, i: usize) -> String {
        self.procs[i]
            .tail
            .lock()
            .map(|t| t.lines.iter().cloned().collect::<Vec<_>>().join("\n    "))
            .unwrap_or_default()
    }

    /// A `help:` line (after a newline) when the process's last lines show a known cause
    /// ([`hints`]), else nothing.
    fn tail_hint(&self, i: usize) -> String {
        let lines: Vec<String> = self.procs[i]
            .tail
            .lock()
            .map(|t| t.lines.iter().cloned().collect())
            .unwrap_or_default();
        let py27 = || {
            crate::platform::runtime::installed(crate::platform::runtime::Lang::Python)
                .iter()
                .any(|i| i.version.major == 2 && i.version.minor == Some(7))
        };
        hints::hint(&lines, py27)
            .map(|h| format!("\n{h}"))
            .unwrap_or_default()
    }

    fn on_event(&mut self, ev: Event) {
        match ev {
            Event::Exited {
                idx,
                generation,
                code,
            } => self.on_exit(idx, generation, code),
            Event::Ready {
                idx,
                generation,
                after,
            } => {
                let p = &mut self.procs[idx];
                if p.generation != generation || p.state != State::Running || p.restarting {
                    return;
                }
                p.ready = true;
                if let Some(port) = p.spec.port {
                    self.out.phase(&format!(
                        "{} ready at http://127.0.0.1:{port} (listening after {:.2} s)",
                        p.spec.name,
                        after.as_secs_f64()
                    ));
                }
                self.maybe_next_group();
            }
            Event::NotReady { idx, generation } => {
                let p = &self.procs[idx];
                if p.generation != generation
                    || p.state != State::Running
                    || self.stopping.is_some()
                {
                    return;
                }
                let msg = format!(
                    "{} did not accept connections on port {} within {} s; the platform's health check would fail the same way (listen on 0.0.0.0:$PORT or 127.0.0.1:$PORT). Last lines:\n    {}{}",
                    p.spec.name,
                    p.spec.port.unwrap_or_default(),
                    p.spec.ready_timeout.as_secs(),
                    self.tail_text(idx),
                    self.tail_hint(idx)
                );
                self.out.error(&msg);
                self.begin_stop(Outcome::NotReady(msg));
            }
            Event::Restart { idx, generation } => {
                if self.stopping.is_none()
                    && self.procs[idx].generation == generation
                    && self.procs[idx].state == State::Backoff
                {
                    self.spawn(idx);
                }
            }
            Event::GraceOver => self.kill_all("did not stop within the grace period; killed"),
            Event::Changed(paths) => self.on_changed(paths),
            Event::RestartTick => {
                self.tick_armed = false;
                self.restart_tick();
            }
            Event::Key(b'r') => {
                self.out.phase("r pressed: restarting every process");
                self.restart(None, Vec::new());
            }
            Event::Key(b'q') => {
                self.out.phase("q pressed: stopping");
                self.begin_stop(Outcome::Quit);
            }
            Event::Key(_) => {}
            Event::Control(cmd, reply) => {
                let answer = self.on_control(&cmd);
                let _ = reply.send(answer);
            }
            Event::CronTick => self.cron_tick(),
            Event::AdoptTick => self.adopt_orphans(),
            Event::ServiceTick => self.check_services(),
            Event::Stale { app, paths, notes } => {
                if self.stopping.is_some() {
                    return;
                }
                for n in notes {
                    self.out.error(n.trim_start_matches("error: "));
                }
                if paths.is_empty() {
                    return;
                }
                self.out.phase(&format!(
                    "{app}: {} changed since the staged copy was made: syncing it in, then restarting (--restage runs the hooks again)",
                    describe_paths(&paths)
                ));
                let affected: Vec<usize> = (0..self.procs.len())
                    .filter(|&i| self.procs[i].spec.app == app)
                    .collect();
                self.restart(Some(affected), paths);
            }
            Event::ServiceRestarted { name, result } => match result {
                Ok((pid, _sig)) => {
                    self.out.phase(&format!(
                        "service {name} is back (pid {pid}); its data was kept"
                    ));
                    if let Some(s) = self.opts.watched_services.iter_mut().find(|s| s.0 == name) {
                        s.1 = pid;
                    }
                }
                Err(e) => {
                    self.out.error(&format!(
                        "service {name} could not be started again: {e}; the app will fail to reach it (Ctrl-C, fix, run again)"
                    ));
                    self.opts.watched_services.retain(|s| s.0 != name);
                }
            },
            Event::CronExited { name, pid, code } => {
                self.cron_pids.retain(|p| *p != pid);
                crate::process::forget_group(pid);
                let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
                if code != 0 {
                    self.out
                        .note(&format!("{name}: cron job exited with status {code}"));
                }
            }
        }
    }

    fn on_exit(&mut self, idx: usize, generation: u64, code: i32) {
        let stopping = self.stopping.is_some();
        let exit_on_crash = self.opts.exit_on_crash;
        let hook_failure = self.procs[idx]
            .tail
            .lock()
            .ok()
            .and_then(|t| t.hook_failure.clone());
        let tail = self.tail_text(idx);
        let help = self.tail_hint(idx);
        let p = &mut self.procs[idx];
        if p.generation != generation {
            return;
        }
        // Whatever the process left in its group goes too.
        if let Some(pid) = p.pid.take() {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
            crate::process::forget_group(pid);
        }
        p.state = State::Exited;
        if stopping || p.restarting {
            return;
        }
        let ran = p.started.elapsed();
        let name = p.spec.name.clone();
        if code == child::HOOK_FAILED && hook_failure.is_some() {
            let msg = format!("{name}: {}", hook_failure.unwrap_or_default());
            self.out.error(&msg);
            self.begin_stop(Outcome::HookFailed(msg));
            return;
        }
        if exit_on_crash {
            let msg = format!(
                "{name} exited with status {code} after {:.1} s (--exit-on-crash){help}",
                ran.as_secs_f64()
            );
            self.out.error(&msg);
            self.begin_stop(Outcome::Crashed(msg));
            return;
        }
        let (at, ready) = (Instant::now(), p.ready);
        health::record(&mut p.history, health::Exit { at, ran, ready });
        let (delay, crash_loop) = match health::verdict(&p.history, at, &health::Policy::PLATFORM) {
            health::Verdict::Restart { after, crash_loop } => (after, crash_loop),
            health::Verdict::Flapping(why) => {
                let msg = health::flapping_message(&name, why, code, &tail) + &help;
                self.out.error(&msg);
                if self.opts.watch.is_some() {
                    let next = "stays down until a file changes (or `stackato-local restart`)";
                    return self.out.phase(&format!("{name} {next}"));
                }
                return self.begin_stop(Outcome::Flapping(msg));
            }
        };
        p.state = State::Backoff;
        let g = p.generation;
        if let Some(crashes) = crash_loop {
            self.out.error(&format!(
                "{name} is in a crash loop: it exited {crashes} times in 2 minutes (status {code}); next restart in {} s. Last lines:\n    {tail}{help}",
                delay.as_secs()
            ));
        } else {
            self.out.note(&format!(
                "{name} exited with status {code} after {:.1} s; restarting in {} s",
                ran.as_secs_f64(),
                delay.as_secs()
            ));
        }
        let tx = self.tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            let _ = tx.send(Event::Restart { idx, generation: g });
        });
    }

    /// Changed files: restart the processes of the apps they belong to, or reload.
    fn on_changed(&mut self, mut paths: Vec<std::path::PathBuf>) {
        if self.stopping.is_some() {
            return;
        }
        paths.retain(|p| !self.self_written.iter().any(|s| p.starts_with(s)));
        if paths.is_empty() {
            return;
        }
        let Some(w) = self.opts.watch.clone() else {
            return;
        };
        let change = paths
            .iter()
            .map(|p| w.filter.classify(p))
            .max()
            .unwrap_or(crate::watch::Change::Code);
        let what = describe_paths(&paths);
        match change {
            crate::watch::Change::Manifest | crate::watch::Change::Requirements => {
                let why = if change == crate::watch::Change::Manifest {
                    "it decides what runs"
                } else {
                    "requirements changed"
                };
                self.out
                    .phase(&format!("{what} changed: {why}, restaging then restarting"));
                self.begin_stop(Outcome::Reload(format!("{what} changed")));
            }
            crate::watch::Change::Code => {
                let affected: Vec<usize> = (0..self.procs.len())
                    .filter(|&i| {
                        let s = &self.procs[i].spec;
                        paths
                            .iter()
                            .any(|p| p.starts_with(&s.source) || p.starts_with(&s.cwd))
                    })
                    .collect();
                if affected.is_empty() {
                    return;
                }
                self.restart(Some(affected), paths);
            }
        }
    }

    /// Stop these processes (all when `None`) now; start them again once changes have been
    /// quiet for the debounce period and they are gone.
    fn restart(&mut self, which: Option<Vec<usize>>, paths: Vec<std::path::PathBuf>) {
        let which: Vec<usize> = which.unwrap_or_else(|| (0..self.procs.len()).collect());
        let now = Instant::now();
        if self.pending.is_none() && !paths.is_empty() {
            let names: Vec<&str> = which
                .iter()
                .map(|&i| self.procs[i].spec.name.as_str())
                .collect();
            self.out.phase(&format!(
                "{} changed: restarting {}",
                describe_paths(&paths),
                names.join(", ")
            ));
        }
        let pending = self.pending.get_or_insert(Pending {
            paths: Vec::new(),
            overflow: false,
            last_event: now,
            first_event: now,
        });
        pending.last_event = now;
        // A restart by hand (a key, `stackato-local restart`) compares the copies in full
        // first: edits the watcher does not report (files .gitignore leaves out) go in too.
        if paths.is_empty() {
            pending.overflow = true;
        }
        for p in paths {
            if pending.paths.len() >= 1000 {
                pending.overflow = true;
            } else if !pending.paths.contains(&p) {
                pending.paths.push(p);
            }
        }
        for &i in &which {
            let p = &mut self.procs[i];
            if p.restarting {
                continue;
            }
            p.restarting = true;
            // A change or a request is a fresh start: the crash history starts over.
            p.history.clear();
            match (p.state, p.pid) {
                (State::Running, Some(pid)) => {
                    let _ = killpg(Pid::from_raw(pid), child::stop_signal(&p.spec.command));
                    let tx = self.tx.clone();
                    let grace = self.opts.grace;
                    tokio::spawn(async move {
                        tokio::time::sleep(grace).await;
                        // Whatever of that group is left after the grace period is killed.
                        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
                        let _ = tx.send(Event::RestartTick);
                    });
                }
                _ => {
                    // Crashed and waiting for its backoff: restart with the change instead.
                    p.generation += 1;
                    p.state = State::Exited;
                }
            }
        }
        self.arm_tick();
    }

    fn arm_tick(&mut self) {
        if self.tick_armed {
            return;
        }
        self.tick_armed = true;
        let tx = self.tx.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(2)).await;
            let _ = tx.send(Event::RestartTick);
        });
    }

    fn restart_tick(&mut self) {
        let Some(pending) = &self.pending else {
            return;
        };
        if self.stopping.is_some() {
            self.pending = None;
            return;
        }
        let debounce = self
            .opts
            .watch
            .as_ref()
            .map_or(Duration::ZERO, |w| w.debounce);
        // A storm (a checkout, a build writing many files) gets a longer quiet period, so a
        // pause in the middle of it does not cause a second restart.
        let debounce = if pending.paths.len() >= 50 {
            debounce.max(Duration::from_millis(250))
        } else {
            debounce
        };
        let quiet = pending.last_event.elapsed() >= debounce;
        let waiting: Vec<usize> = (0..self.procs.len())
            .filter(|&i| self.procs[i].restarting)
            .collect();
        let all_down = waiting
            .iter()
            .all(|&i| self.procs[i].state != State::Running);
        // The old process must have let go of its port (no EADDRINUSE for the new one).
        let ports_free = waiting.iter().all(|&i| {
            self.procs[i]
                .spec
                .port
                .is_none_or(crate::services::ports::is_free)
        });
        if !(quiet && all_down && ports_free) {
            self.arm_tick();
            return;
        }
        let pending = self.pending.take();
        // A change that came right after the processes (re)started, three times in a row:
        // the app writes into its own directory.
        if let Some(p) = &pending {
            let started_recently = waiting.iter().all(|&i| {
                p.first_event.duration_since(self.procs[i].started) < Duration::from_secs(1)
            });
            if started_recently && !p.paths.is_empty() {
                self.quick_restarts.push((Instant::now(), p.paths.clone()));
                self.quick_restarts
                    .retain(|(t, _)| t.elapsed() < Duration::from_secs(30));
                // The same paths each time: a person editing files does not do that within
                // a second of every start.
                let mut common: Vec<std::path::PathBuf> = self.quick_restarts[0].1.clone();
                for (_, ps) in &self.quick_restarts[1..] {
                    common.retain(|c| ps.contains(c));
                }
                if common.is_empty() {
                    self.quick_restarts = vec![(Instant::now(), p.paths.clone())];
                } else if self.quick_restarts.len() >= 3 {
                    self.out.error(&format!(
                        "restart loop: the app seems to write into its own directory ({}) right after starting, which triggered {} restarts; changes there are ignored from now on. Add them to `ignores:` in stackato.yml or pass --ignore",
                        describe_paths(&common),
                        self.quick_restarts.len()
                    ));
                    self.self_written.extend(common);
                    self.quick_restarts.clear();
                }
            } else {
                self.quick_restarts.clear();
            }
        }
        // Edits reach the staged copies of the apps restarting before they start again.
        if let Some(p) = &pending
            && (!p.paths.is_empty() || p.overflow)
        {
            for c in &self.copies {
                if waiting.iter().any(|&i| self.procs[i].spec.app == c.app) {
                    for note in c.sync_paths(&p.paths, p.overflow) {
                        self.out.note(&format!("note: {note}"));
                    }
                }
            }
        }
        for i in waiting {
            self.spawn(i);
        }
    }

    /// A command from `stackato-local restart`.
    fn on_control(&mut self, cmd: &str) -> String {
        let mut parts = cmd.split_whitespace();
        match (parts.next(), parts.next()) {
            (Some("restart"), None) => {
                self.out
                    .phase("restart requested: restarting every process");
                self.restart(None, Vec::new());
                let names: Vec<&str> = self.procs.iter().map(|p| p.spec.name.as_str()).collect();
                format!("ok: restarting {}", names.join(", "))
            }
            (Some("restart"), Some(name)) => {
                let which: Vec<usize> = (0..self.procs.len())
                    .filter(|&i| {
                        let n = &self.procs[i].spec.name;
                        n == name
                            || n.split('.').next() == Some(name)
                            || self.procs[i].spec.app == name
                    })
                    .collect();
                if which.is_empty() {
                    let names: Vec<&str> =
                        self.procs.iter().map(|p| p.spec.name.as_str()).collect();
                    return format!(
                        "error: no process named {name} (running: {})",
                        names.join(", ")
                    );
                }
                self.out
                    .phase(&format!("restart requested: restarting {name}"));
                self.restart(Some(which), Vec::new());
                format!("ok: restarting {name}")
            }
            (Some("ping"), _) => "ok".into(),
            _ => format!("error: unknown command {cmd:?}"),
        }
    }

    fn on_signal(&mut self, sig: Signal) {
        if self.stopping.is_some() {
            if sig == Signal::SIGINT && !self.killed {
                self.out.note("second Ctrl-C: killing everything now");
                self.kill_all("killed (second Ctrl-C)");
            }
            return;
        }
        self.out.phase(&format!(
            "{} received: stopping (grace {} s; Ctrl-C again to kill at once)",
            sig.as_str(),
            self.opts.grace.as_secs()
        ));
        self.begin_stop(Outcome::Signal(sig as i32));
    }

    fn begin_stop(&mut self, outcome: Outcome) {
        if self.stopping.is_some() {
            return;
        }
        self.stopping = Some(outcome);
        for p in &mut self.procs {
            if p.state == State::Backoff {
                p.state = State::Exited;
            }
            if let (State::Running, Some(pid)) = (p.state, p.pid) {
                let _ = killpg(Pid::from_raw(pid), child::stop_signal(&p.spec.command));
            }
        }
        for pid in &self.cron_pids {
            let _ = killpg(Pid::from_raw(*pid), Signal::SIGTERM);
        }
        let tx = self.tx.clone();
        let grace = self.opts.grace;
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            let _ = tx.send(Event::GraceOver);
        });
    }

    fn kill_all(&mut self, why: &str) {
        self.killed = true;
        for p in &self.procs {
            if let (State::Running, Some(pid)) = (p.state, p.pid) {
                self.out.note(&format!("{}: {why}", p.spec.name));
                let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
            }
        }
        for pid in &self.cron_pids {
            let _ = killpg(Pid::from_raw(*pid), Signal::SIGKILL);
        }
    }

    fn cron_tick(&mut self) {
        if self.stopping.is_some() {
            return;
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let tm = cron::Tm::from_unix(now, self.utc_offset);
        let due: Vec<CronJob> = self
            .crons
            .iter()
            .filter(|c| c.schedule.matches(&tm))
            .cloned()
            .collect();
        for job in due {
            let spec = Spec {
                name: job.name.clone(),
                app: String::new(),
                instance: 0,
                hooks: Vec::new(),
                command: job.command.clone(),
                env: job.env.clone(),
                cwd: job.cwd.clone(),
                source: job.cwd.clone(),
                port: None,
                check: health::Check::Running,
                ready_timeout: Duration::from_secs(1),
                tty: false,
                host: job.host,
            };
            let prefix = self.out.prefix(&job.name, 9);
            let tail: SharedTail = Arc::new(Mutex::new(Tail::default()));
            match child::spawn(&spec, &self.out, &prefix, &tail) {
                Ok(running) => {
                    let pid = running.pid;
                    self.cron_pids.push(pid);
                    let tx = self.tx.clone();
                    let name = job.name.clone();
                    let mut ch = running.child;
                    tokio::spawn(async move {
                        let code = ch.wait().await.ok().and_then(|s| s.code()).unwrap_or(-1);
                        let _ = tx.send(Event::CronExited { name, pid, code });
                    });
                }
                Err(e) => self
                    .out
                    .error(&format!("{}: cron job could not start: {e}", job.name)),
            }
        }
    }

    /// Kill descendants that left their process group (daemons) and came to us as orphans.
    fn cleanup_orphans(&self) {
        #[cfg(target_os = "linux")]
        {
            let me = std::process::id() as i32;
            let Ok(rd) = std::fs::read_dir("/proc") else {
                return;
            };
            let mut orphans = Vec::new();
            for e in rd.filter_map(Result::ok) {
                let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
                    continue;
                };
                let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
                    continue;
                };
                let Some((_, rest)) = stat.rsplit_once(')') else {
                    continue;
                };
                let ppid: i32 = rest
                    .split_whitespace()
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                if ppid == me
                    && !self.opts.keep.contains(&pid)
                    && Some(pid) != crate::process::guardian_pid()
                {
                    orphans.push(pid);
                }
            }
            for pid in &orphans {
                let _ = nix::sys::signal::kill(Pid::from_raw(*pid), Signal::SIGKILL);
            }
            for pid in orphans {
                let _ = nix::sys::wait::waitpid(Pid::from_raw(pid), None);
            }
        }
    }
}

/// `app.py`, `app.py (+3 more)`.
fn describe_paths(paths: &[std::path::PathBuf]) -> String {
    let first = paths
        .first()
        .map(|p| crate::diag::display_path(p))
        .unwrap_or_default();
    match paths.len() {
        0 | 1 => first,
        n => format!("{first} (+{} more)", n - 1),
    }
}

/// The pids whose parent is `parent` (from /proc).
fn children_of(parent: i32) -> Vec<i32> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in rd.filter_map(Result::ok) {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|s| s.parse::<i32>().ok());
        if ppid == Some(parent) {
            out.push(pid);
        }
    }
    out
}
