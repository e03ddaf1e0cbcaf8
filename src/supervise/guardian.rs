//! The guardian: a tiny process of our own, in its own session, that outlives the supervisor.
//! The supervisor tells it, over a pipe, which process groups and services it is running; if
//! the pipe closes without a final `done` (the supervisor was killed, even with SIGKILL), the
//! guardian terminates those groups (TERM, then KILL) and stops those services, so nothing
//! survives a dead supervisor.

use std::io::{BufRead, Write};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

/// The supervisor's end.
pub struct Guardian {
    stdin: Option<ChildStdin>,
    child: Option<Child>,
}

impl Guardian {
    /// Start the guardian (our own executable, hidden subcommand, in a session of its own).
    /// Without it we still run, relying on PR_SET_PDEATHSIG for direct children. Commands use
    /// it through [`crate::process::start_guardian`].
    pub fn start() -> Guardian {
        let exe = std::env::current_exe();
        let spawned = exe.and_then(|exe| {
            let mut c = Command::new(exe);
            c.arg("__guardian")
                .stdin(Stdio::piped())
                .stdout(Stdio::null())
                .stderr(Stdio::inherit());
            crate::process::spawn(&mut c, crate::process::Tie::Detached)
        });
        match spawned {
            Ok(mut child) => Guardian {
                stdin: child.stdin.take(),
                child: Some(child),
            },
            Err(_) => Guardian {
                stdin: None,
                child: None,
            },
        }
    }

    /// The guardian's pid, if it runs.
    pub fn pid(&self) -> Option<i32> {
        self.child.as_ref().map(|c| c.id() as i32)
    }

    fn say(&mut self, line: &str) {
        if let Some(s) = self.stdin.as_mut() {
            let _ = writeln!(s, "{line}");
            let _ = s.flush();
        }
    }

    /// A process group to kill if we die.
    pub fn watch_group(&mut self, pgid: i32) {
        self.say(&format!("pg {pgid}"));
    }

    /// The run's mark: processes whose environment carries it are killed if we die.
    pub fn mark(&mut self, id: &str) {
        self.say(&format!("mark {id}"));
    }

    /// A single process to kill if we die (a daemon that left its group).
    pub fn watch_pid(&mut self, pid: i32) {
        self.say(&format!("pid {pid}"));
    }

    pub fn forget_group(&mut self, pgid: i32) {
        self.say(&format!("unpg {pgid}"));
    }

    /// A service (detached server) to stop with `signal` if we die.
    pub fn watch_service(&mut self, pid: i32, signal: Signal) {
        self.say(&format!("svc {pid} {}", signal as i32));
    }

    /// A clean end: the guardian exits without doing anything.
    pub fn done(mut self) {
        self.say("done");
        drop(self.stdin.take());
        if let Some(mut c) = self.child.take() {
            let _ = c.wait();
        }
    }
}

/// The guardian's own main loop (`stackato-local __guardian`).
pub fn main() -> i32 {
    // Ignore terminal signals: only the pipe closing matters.
    for s in [
        Signal::SIGINT,
        Signal::SIGQUIT,
        Signal::SIGHUP,
        Signal::SIGTERM,
    ] {
        // SAFETY: installing SIG_IGN.
        let _ = unsafe { nix::sys::signal::signal(s, nix::sys::signal::SigHandler::SigIgn) };
    }
    let _ = nix::unistd::setsid();
    let mut groups: Vec<i32> = Vec::new();
    let mut pids: Vec<i32> = Vec::new();
    let mut mark: Option<String> = None;
    let mut services: Vec<(i32, i32)> = Vec::new();
    let stdin = std::io::stdin();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        let mut parts = line.split_whitespace();
        match (parts.next(), parts.next(), parts.next()) {
            (Some("pg"), Some(p), _) => {
                if let Ok(p) = p.parse() {
                    groups.push(p);
                }
            }
            (Some("mark"), Some(m), _) => mark = Some(m.to_string()),
            (Some("pid"), Some(p), _) => {
                if let Ok(p) = p.parse() {
                    pids.push(p);
                }
            }
            (Some("unpg"), Some(p), _) => {
                if let Ok(p) = p.parse::<i32>() {
                    groups.retain(|g| *g != p);
                }
            }
            (Some("svc"), Some(p), Some(sig)) => {
                if let (Ok(p), Ok(sig)) = (p.parse(), sig.parse()) {
                    services.push((p, sig));
                }
            }
            (Some("done"), _, _) => return 0,
            _ => {}
        }
    }
    // The supervisor is gone without saying goodbye: clean up after it.
    for g in &groups {
        let _ = killpg(Pid::from_raw(*g), Signal::SIGTERM);
    }
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(3)
        && groups
            .iter()
            .any(|g| killpg(Pid::from_raw(*g), None).is_ok())
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    for g in &groups {
        let _ = killpg(Pid::from_raw(*g), Signal::SIGKILL);
    }
    for p in &pids {
        let _ = kill(Pid::from_raw(*p), Signal::SIGKILL);
    }
    // Daemons that left their groups still carry the run's mark in their environment.
    if let Some(m) = mark {
        for pid in marked(&format!("{}={m}", crate::process::RUN_MARK)) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
    for (pid, sig) in &services {
        if let Ok(s) = Signal::try_from(*sig) {
            let _ = kill(Pid::from_raw(*pid), s);
        }
    }
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(30)
        && services
            .iter()
            .any(|(p, _)| crate::services::lifecycle::alive(*p))
    {
        std::thread::sleep(Duration::from_millis(50));
    }
    for (pid, _) in &services {
        if crate::services::lifecycle::alive(*pid) {
            let _ = killpg(Pid::from_raw(*pid), Signal::SIGKILL);
        }
    }
    0
}

/// Processes whose environment contains `needle` (`NAME=value`), other than us.
pub fn marked(needle: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return out;
    };
    for e in rd.filter_map(Result::ok) {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        if env.split(|b| *b == 0).any(|kv| kv == needle.as_bytes()) {
            out.push(pid);
        }
    }
    out
}
