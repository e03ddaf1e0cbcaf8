//! Running one staging command (a hook, an installer) to completion: its own process group,
//! the given environment, output streamed line by line behind the phase's indentation, the last
//! lines kept for the error message, and a time limit after which (or a stop request, on which)
//! the whole group is killed.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::interrupt::Stop;
use crate::model::EnvSet;
use crate::output::{Output, Prefix};
use crate::process::{self, Tie};

/// How a command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ended {
    /// Exit status (128+N for a signal).
    Exit(i32),
    /// Killed after the time limit.
    TimedOut,
    /// Could not be started at all.
    NotStarted(String),
    /// Stopped because we were interrupted (Ctrl-C).
    Interrupted,
}

impl Ended {
    pub(crate) fn ok(&self) -> bool {
        *self == Ended::Exit(0)
    }
}

/// The result of a command, with the tail of its output.
#[derive(Debug, Clone)]
pub(crate) struct Finished {
    pub ended: Ended,
    pub tail: Vec<String>,
}

/// The shell for hooks: bash when installed, else sh.
pub(crate) fn shell() -> &'static str {
    static SHELL: std::sync::OnceLock<&'static str> = std::sync::OnceLock::new();
    SHELL.get_or_init(|| {
        if crate::programs::find("bash").is_some() {
            "bash"
        } else {
            "sh"
        }
    })
}

/// How long a staging command may run: a time limit, and the run's stop requests.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Until<'a> {
    pub limit: Duration,
    pub stop: &'a Stop,
}

/// Run `cmd` (already set up with program and arguments) in `dir` with exactly `env` and
/// the host's part of `host` (see [`crate::env::host`]), streaming output behind `prefix`,
/// stopped when `until` says so.
pub(crate) fn run(
    mut cmd: Command,
    dir: &Path,
    env: &EnvSet,
    host: crate::env::host::Host,
    out: &Arc<Output>,
    prefix: &Prefix,
    until: Until<'_>,
) -> Finished {
    let Until { limit, stop } = until;
    let t0 = Instant::now();
    crate::env::host::apply(
        &mut cmd,
        env.vars()
            .iter()
            .map(|v| (v.name.as_str(), v.value.as_str())),
        host,
    );
    cmd.current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // Its own process group, killed with us (the guardian takes what it leaves behind).
    let mut child = match process::spawn(&mut cmd, Tie::Group) {
        Ok(c) => c,
        Err(e) => {
            return Finished {
                ended: Ended::NotStarted(e.to_string()),
                tail: Vec::new(),
            };
        }
    };
    let pid = child.id();
    let tail: Arc<Mutex<VecDeque<String>>> = Arc::new(Mutex::new(VecDeque::new()));
    let streams: Vec<Box<dyn std::io::Read + Send>> = [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
    ]
    .into_iter()
    .flatten()
    .collect();
    // Each reader says when its stream has ended.
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let readers = streams.len();
    for stream in streams {
        let tail = Arc::clone(&tail);
        let out = Arc::clone(out);
        let prefix = prefix.clone();
        let done = done_tx.clone();
        std::thread::spawn(move || {
            let mut r = BufReader::new(stream);
            let mut line = Vec::new();
            loop {
                line.clear();
                match r.read_until(b'\n', &mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let text = String::from_utf8_lossy(&line);
                        let text = text.trim_end_matches(['\n', '\r']);
                        out.line(&prefix, text);
                        if let Ok(mut t) = tail.lock() {
                            t.push_back(text.to_string());
                            if t.len() > 20 {
                                t.pop_front();
                            }
                        }
                    }
                }
            }
            let _ = done.send(());
        });
    }
    drop(done_tx);
    // Wait with the time limit (a stop wakes the wait at once); kill the whole group when it
    // runs out.
    let left = limit.saturating_sub(t0.elapsed());
    let ended = match process::wait_child(&mut child, left, stop) {
        Ok(process::Waited::Exited(s)) => {
            use std::os::unix::process::ExitStatusExt;
            Ended::Exit(s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(0)))
        }
        Ok(process::Waited::Stopped) => {
            let _ = process::terminate(&mut child, Duration::from_millis(200));
            Ended::Interrupted
        }
        Ok(process::Waited::TimedOut) => {
            let _ = process::terminate(&mut child, Duration::from_millis(500));
            Ended::TimedOut
        }
        Err(e) => Ended::NotStarted(e.to_string()),
    };
    process::waited(pid, Tie::Group);
    // Background jobs of a hook may keep the pipes open: don't wait for them forever (a
    // reader left behind ends when they do).
    let deadline = Instant::now() + Duration::from_secs(2);
    for _ in 0..readers {
        let left = deadline.saturating_duration_since(Instant::now());
        if done_rx.recv_timeout(left).is_err() {
            break;
        }
    }
    Finished {
        ended,
        tail: tail
            .lock()
            .map(|t| t.iter().cloned().collect())
            .unwrap_or_default(),
    }
}
