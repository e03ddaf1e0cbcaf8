//! What reaches the event loop: process exits and probe answers from its own tasks, and
//! everything from outside (signals, file changes, keys, the control socket, services).

use std::path::PathBuf;

use nix::sys::signal::Signal;
use tokio::sync::oneshot;

#[derive(Debug)]
pub(super) enum Event {
    /// Instance `generation` of job `job` (process group `pid`) exited.
    Exited {
        job: usize,
        generation: u64,
        pid: i32,
        code: i32,
    },
    /// Instance `generation` of `job` (process group `pid`), behind the router, finished the
    /// requests it was answering: its stop signal may go.
    Drained {
        job: usize,
        generation: u64,
        pid: i32,
    },
    /// A connection attempt to a job's port ended.
    Probed {
        job: usize,
        generation: u64,
        answered: bool,
    },
    /// SIGINT, SIGTERM, SIGHUP (stop) or SIGCHLD (an orphan may have ended).
    Signal(Signal),
    Changed(Vec<PathBuf>),
    /// The background comparison found files changed since the copies were made.
    Stale {
        app: String,
        paths: Vec<PathBuf>,
        /// What the comparison could not do (links reaching outside, errors).
        notes: Vec<String>,
    },
    /// A watched service's server is gone.
    ServiceDied {
        name: String,
        pid: i32,
    },
    ServiceRestarted {
        name: String,
        result: Result<(i32, Signal), String>,
    },
    Key(u8),
    Control(String, oneshot::Sender<String>),
    CronExited {
        name: String,
        pid: i32,
        code: i32,
    },
}
