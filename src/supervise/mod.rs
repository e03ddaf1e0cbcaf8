//! The supervisor: one event loop that owns every process's state. It starts the apps in
//! dependency order (each web process must accept connections on its `$PORT` before the apps
//! that depend on it start), restarts crashed processes with capped exponential backoff, runs
//! cron entries, and shuts everything down on Ctrl-C/SIGTERM: TERM to every process group, a
//! grace period, then KILL; a second Ctrl-C skips the wait. A guardian process and
//! PR_SET_PDEATHSIG make sure nothing survives if the supervisor itself is killed.

pub mod child;
pub mod cron;
pub mod guardian;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::sync::mpsc;

use crate::output::{Output, Prefix};
use child::{SharedTail, Spec, Tail};
use guardian::Guardian;

/// A scheduled cron entry of one instance.
#[derive(Debug, Clone)]
pub struct CronJob {
    pub name: String,
    pub schedule: cron::Schedule,
    pub command: String,
    pub env: Vec<(String, String)>,
    pub cwd: std::path::PathBuf,
}

/// Everything to run, apps in start order.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// One group per app, in dependency order.
    pub groups: Vec<Vec<Spec>>,
    pub crons: Vec<CronJob>,
    /// Seconds east of UTC, for cron schedules.
    pub utc_offset: i64,
}

#[derive(Debug, Clone)]
pub struct Options {
    /// How long processes get between SIGTERM and SIGKILL.
    pub grace: Duration,
    /// Stop everything when a process exits instead of restarting it.
    pub exit_on_crash: bool,
    /// Our own children that are not app processes (service daemons): never cleaned up.
    pub keep: Vec<i32>,
    /// Services this run started, with their stop signal: the guardian stops them if we die.
    pub services: Vec<(i32, Signal)>,
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
    /// A web process never accepted connections on its port.
    NotReady(String),
    /// A process could not be started at all.
    SpawnFailed(String),
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
    backoff: Duration,
    crashes: Vec<Instant>,
    ready: bool,
}

const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// A process that ran this long before exiting was healthy: its backoff starts over.
const HEALTHY_AFTER: Duration = Duration::from_secs(30);

struct Loop {
    procs: Vec<Proc>,
    out: Arc<Output>,
    opts: Options,
    tx: mpsc::UnboundedSender<Event>,
    guardian: Guardian,
    started_groups: usize,
    groups: usize,
    stopping: Option<Outcome>,
    killed: bool,
    crons: Vec<CronJob>,
    cron_pids: Vec<i32>,
    utc_offset: i64,
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
                backoff: Duration::from_secs(1),
                crashes: Vec::new(),
                ready: false,
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
        guardian: Guardian::start(),
        started_groups: 0,
        groups: plan.groups.len(),
        stopping: None,
        killed: false,
        crons: plan.crons,
        cron_pids: Vec::new(),
        utc_offset: plan.utc_offset,
    };
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
    for (pid, sig) in lp.opts.services.clone() {
        lp.guardian.watch_service(pid, sig);
    }
    lp.start_next_group();
    loop {
        if let Some(outcome) = lp.finished() {
            lp.cleanup_orphans();
            lp.guardian.done();
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

    fn start_next_group(&mut self) {
        if self.stopping.is_some() || self.started_groups >= self.groups {
            return;
        }
        let g = self.started_groups;
        self.started_groups += 1;
        for i in 0..self.procs.len() {
            if self.procs[i].group == g {
                self.spawn(i);
            }
        }
        self.maybe_next_group();
    }

    /// Start the next app once every web process of the current one answers.
    fn maybe_next_group(&mut self) {
        let g = self.started_groups;
        if g == 0 || g >= self.groups {
            return;
        }
        let ready = self
            .procs
            .iter()
            .filter(|p| p.group == g - 1)
            .all(|p| p.spec.port.is_none() || p.ready);
        if ready {
            self.start_next_group();
        }
    }

    fn spawn(&mut self, i: usize) {
        let p = &mut self.procs[i];
        p.generation += 1;
        p.ready = false;
        if let Ok(mut t) = p.tail.lock() {
            t.hook_failure = None;
        }
        match child::spawn(&p.spec, &self.out, &p.prefix, &p.tail) {
            Ok(running) => {
                let pid = running.pid;
                p.pid = Some(pid);
                p.state = State::Running;
                p.started = Instant::now();
                self.guardian.watch_group(pid);
                let tx = self.tx.clone();
                let generation = p.generation;
                let mut child = running.child;
                tokio::spawn(async move {
                    let code = match child.wait().await {
                        Ok(s) => {
                            use std::os::unix::process::ExitStatusExt;
                            s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(0))
                        }
                        Err(_) => -1,
                    };
                    let _ = tx.send(Event::Exited {
                        idx: i,
                        generation,
                        code,
                    });
                });
                if let Some(port) = p.spec.port {
                    let tx = self.tx.clone();
                    let timeout = p.spec.ready_timeout;
                    tokio::spawn(async move {
                        let t0 = Instant::now();
                        loop {
                            let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
                            if tokio::net::TcpStream::connect(addr).await.is_ok() {
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
                if p.generation != generation || p.state != State::Running {
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
                    "{} did not accept connections on port {} within {} s; the platform's health check would fail the same way (listen on 0.0.0.0:$PORT or 127.0.0.1:$PORT). Last lines:\n    {}",
                    p.spec.name,
                    p.spec.port.unwrap_or_default(),
                    p.spec.ready_timeout.as_secs(),
                    self.tail_text(idx)
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
            Event::CronTick => self.cron_tick(),
            Event::CronExited { name, pid, code } => {
                self.cron_pids.retain(|p| *p != pid);
                self.guardian.forget_group(pid);
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
        let p = &mut self.procs[idx];
        if p.generation != generation {
            return;
        }
        // Whatever the process left in its group goes too.
        if let Some(pid) = p.pid.take() {
            let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
            self.guardian.forget_group(pid);
        }
        p.state = State::Exited;
        if stopping {
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
                "{name} exited with status {code} after {:.1} s (--exit-on-crash)",
                ran.as_secs_f64()
            );
            self.out.error(&msg);
            self.begin_stop(Outcome::Crashed(msg));
            return;
        }
        if ran >= HEALTHY_AFTER {
            p.backoff = Duration::from_secs(1);
        }
        let now = Instant::now();
        p.crashes
            .retain(|t| now.duration_since(*t) < Duration::from_secs(120));
        p.crashes.push(now);
        let delay = p.backoff;
        p.backoff = (p.backoff * 2).min(MAX_BACKOFF);
        p.state = State::Backoff;
        let crashes = p.crashes.len();
        let g = p.generation;
        if crashes >= 3 {
            self.out.error(&format!(
                "{name} is in a crash loop: it exited {crashes} times in 2 minutes (status {code}); next restart in {} s. Last lines:\n    {tail}",
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
                let _ = killpg(Pid::from_raw(pid), Signal::SIGTERM);
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
                port: None,
                ready_timeout: Duration::from_secs(1),
                tty: false,
                clear_env: true,
            };
            let prefix = self.out.prefix(&job.name, 9);
            let tail: SharedTail = Arc::new(Mutex::new(Tail::default()));
            match child::spawn(&spec, &self.out, &prefix, &tail) {
                Ok(running) => {
                    let pid = running.pid;
                    self.cron_pids.push(pid);
                    self.guardian.watch_group(pid);
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
                if ppid == me && !self.opts.keep.contains(&pid) && Some(pid) != self.guardian.pid()
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
