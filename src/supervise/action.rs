//! The vocabulary between the pure job logic and the event loop: the [`Action`]s the core
//! asks for, the per-job [`Config`] and run-wide [`Rules`], and the [`World`] the loop
//! answers questions about (a process's last lines, whether a port is free).

use std::path::PathBuf;
use std::time::Duration;

use super::health::Policy;

/// What the loop must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Action {
    /// Start instance `generation` of `job` on its port `slot` (0: `$PORT`; 1: its second
    /// port, for the replacement in an overlap restart); answer with [`Job::spawned`].
    Spawn {
        job: usize,
        generation: u64,
        slot: u8,
    },
    /// Send the process group `pid` its stop signal (TERM, INT for a bare uWSGI).
    Stop {
        job: usize,
        pid: i32,
    },
    /// SIGKILL the process group `pid`.
    Kill {
        job: usize,
        pid: i32,
    },
    /// Try one connection to `port`; answer with [`Job::probed`].
    Probe {
        job: usize,
        generation: u64,
        port: u16,
    },
    Say(Level, String),
    /// Bring edits into the staged copies of these jobs' apps before they start again.
    Sync {
        jobs: Vec<usize>,
        paths: Vec<PathBuf>,
        overflow: bool,
    },
    /// Signal the cron jobs under way: their stop signal, or SIGKILL.
    Crons {
        kill: bool,
    },
}

/// How a message is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Level {
    Phase,
    Note,
    Error,
}

/// What the job knows of its process (from the plan).
#[derive(Debug, Clone)]
pub(super) struct Config {
    pub name: String,
    /// `$PORT` when it must accept connections before the process counts as ready.
    pub probe: Option<u16>,
    /// `$PORT`, which the old process must let go before a restart (without overlap).
    pub port: Option<u16>,
    pub ready_timeout: Duration,
    /// How long it gets between its stop signal and SIGKILL.
    pub grace: Duration,
    /// Start the replacement before stopping the old instance (off by default). It listens
    /// on `alt_port` while the old one holds `port` (and the other way round next time).
    pub overlap: bool,
    /// The second port, for overlap restarts.
    pub alt_port: Option<u16>,
}

impl Config {
    /// The port an instance on `slot` must accept connections on, if it is checked.
    pub(super) fn probe_port(&self, slot: u8) -> Option<u16> {
        match (slot, self.alt_port) {
            (1, Some(alt)) => self.probe.map(|_| alt),
            _ => self.probe,
        }
    }
}

/// The rules every job follows.
#[derive(Debug, Clone)]
pub(super) struct Rules {
    /// How long processes get between their stop signal and SIGKILL.
    pub grace: Duration,
    pub exit_on_crash: bool,
    /// Files are watched: a flapping process waits for a change instead of ending the run.
    pub watching: bool,
    pub policy: Policy,
}

/// What the loop can tell about a job's process beyond its exit status.
pub(super) trait World {
    /// Its last lines, joined by "\n    ".
    fn tail(&self, job: usize) -> String;
    /// A "\nhelp: …" line for a known cause in its last lines, or nothing.
    fn hint(&self, job: usize) -> String;
    /// The pre-running hook failure it reported, if any.
    fn hook_failure(&self, job: usize) -> Option<String>;
    fn port_free(&self, port: u16) -> bool;
}
