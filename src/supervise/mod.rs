//! The supervisor: one job per process instance (a state machine, [`job`]), decided by a pure
//! [`core`] (start order [`order`], restarts [`restart`], backoff and flapping [`health`]) and
//! carried out by one [`event_loop`] that owns all state and waits on events and deadlines,
//! never on a polling tick. It starts the apps in dependency order (each web process must
//! accept connections on its `$PORT` before the apps that depend on it start, [`ready`]),
//! restarts crashed processes, runs cron entries ([`crons`]), and shuts everything down on
//! Ctrl-C/SIGTERM: TERM (INT for a bare uWSGI, see [`child::stop_signal`]) to every process
//! group, a grace period, then KILL; a second Ctrl-C skips the wait. The guardian (started by
//! `run`, see [`crate::process`]) and PR_SET_PDEATHSIG make sure nothing survives if the
//! supervisor itself is killed; [`orphans`] is the `/proc` scan both use.

mod action;
pub(crate) mod child;
pub(crate) mod control;
mod core;
#[cfg(test)]
mod core_tests;
mod crash;
use crate::manifest::cron;
mod crons;
mod event_loop;
mod events;
pub(crate) mod guardian;
pub(crate) mod health;
#[cfg(test)]
mod health_tests;
pub(crate) mod hints;
mod inst;
mod job;
mod keys;
mod order;
pub(crate) mod orphans;
mod ready;
mod requests;
mod restart;
#[cfg(test)]
mod restart_tests;
mod routing;
#[cfg(test)]
mod sim;
mod sources;
mod world;

use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::output::Output;
use child::Spec;
use events::Event;

/// A scheduled cron entry of one instance.
#[derive(Debug, Clone)]
pub(crate) struct CronJob {
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
pub(crate) struct Plan {
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
    /// The apps behind the router, in the order of [`child::RouteRef::app`].
    pub routes: Vec<crate::router::table::AppSpec>,
}

#[derive(Clone)]
pub(crate) struct Options {
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
    /// The run's stop requests (Ctrl-C, SIGTERM, SIGHUP): each one is an event of the loop,
    /// exactly once, also one that came before the loop listened.
    pub stop: crate::interrupt::Stop,
    /// The router's table, kept up to date with the routed instances (none: no router).
    pub routes: Option<tokio::sync::watch::Sender<Arc<crate::router::table::RouteTable>>>,
}

/// Starts a service again by name; returns its new pid and stop signal.
pub(crate) type ServiceRestarter = Arc<dyn Fn(&str) -> Result<(i32, Signal), String> + Send + Sync>;

/// File watching.
#[derive(Clone)]
pub(crate) struct WatchOptions {
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
pub(crate) enum Outcome {
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

/// Run the plan until a signal or a failure; return why it ended.
pub(crate) fn run(plan: Plan, out: Arc<Output>, opts: Options) -> Outcome {
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
    // Orphans of our children come to us, not to init, so we can clean them up.
    #[cfg(target_os = "linux")]
    let _ = nix::sys::prctl::set_child_subreaper(true);
    // `run` started it before its services and staging; this is a no-op then.
    crate::process::start_guardian(true);
    // The checkouts are compared with the staged copies once the watcher's watches are in
    // place: an edit made between the copy and then (during staging, or while the watcher
    // starts) is found by the comparison, one made after by the watcher. Without watching,
    // only a run that started on its last copy without looking compares them.
    let copies = plan.copies.clone();
    let verify_now = plan.verify && opts.watch.is_none();
    let (mut lp, rx) = event_loop::Loop::new(plan, Arc::clone(&out), opts.clone());
    let tx = lp.sender();
    // Owned by the loop, which closes it as soon as the run begins to stop.
    lp.watching = opts.watch.as_ref().map(|w| {
        let (armed, when_armed) = tokio::sync::oneshot::channel();
        let (vtx, copies) = (tx.clone(), copies.clone());
        tokio::spawn(async move {
            if when_armed.await.is_ok() && !copies.is_empty() {
                sources::verify(&copies, &vtx);
            }
        });
        sources::watch(w, &tx, &out, armed)
    });
    let _raw = if opts.keys {
        keys::start(tx.clone())
    } else {
        None
    };
    if let Some(sock) = &opts.control {
        control::listen(sock, tx.clone(), &out);
    }
    if let Err(e) = sources::signals(&tx, &opts.stop) {
        return Outcome::SpawnFailed(e);
    }
    lp.watch_services();
    if verify_now {
        sources::verify(&copies, &tx);
    }
    lp.run(rx).await
}
