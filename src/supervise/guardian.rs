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
pub(crate) struct Guardian {
    stdin: Option<ChildStdin>,
    child: Option<Child>,
}

impl Guardian {
    /// Start the guardian (our own executable, hidden subcommand, in a session of its own).
    /// Without it we still run, relying on PR_SET_PDEATHSIG for direct children. Commands use
    /// it through [`crate::process::start_guardian`].
    pub(crate) fn start() -> Guardian {
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
    pub(crate) fn pid(&self) -> Option<i32> {
        self.child.as_ref().map(|c| c.id() as i32)
    }

    fn say(&mut self, line: &str) {
        if let Some(s) = self.stdin.as_mut() {
            let _ = writeln!(s, "{line}");
            let _ = s.flush();
        }
    }

    /// A process group to kill if we die.
    pub(crate) fn watch_group(&mut self, pgid: i32) {
        self.say(&format!("pg {pgid}"));
    }

    /// The run's mark: processes whose environment carries it are killed if we die.
    pub(crate) fn mark(&mut self, id: &str) {
        self.say(&format!("mark {id}"));
    }

    /// A single process to kill if we die (a daemon that left its group).
    pub(crate) fn watch_pid(&mut self, pid: i32) {
        self.say(&format!("pid {pid}"));
    }

    pub(crate) fn forget_group(&mut self, pgid: i32) {
        self.say(&format!("unpg {pgid}"));
    }

    /// A service (detached server) to stop with `signal` if we die.
    pub(crate) fn watch_service(&mut self, pid: i32, signal: Signal) {
        self.say(&format!("svc {pid} {}", signal as i32));
    }

    /// A clean end: the guardian exits without doing anything.
    pub(crate) fn done(mut self) {
        self.say("done");
        drop(self.stdin.take());
        if let Some(mut c) = self.child.take() {
            let _ = c.wait();
        }
    }
}

/// The guardian's own main loop (`stackato-local __guardian`).
pub(crate) fn main() -> i32 {
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
    cleanup(&groups, &pids, mark.as_deref(), &services);
    0
}

/// Stop what the supervisor left: its groups (TERM, then KILL to what is left after a grace
/// period), orphans and marked processes (KILL), and the services (their stop signal, then
/// KILL). Returns as soon as all of it is gone: zombies waiting for their parent count as gone.
fn cleanup(groups: &[i32], pids: &[i32], mark: Option<&str>, services: &[(i32, i32)]) {
    for g in groups {
        let _ = killpg(Pid::from_raw(*g), Signal::SIGTERM);
    }
    let t0 = Instant::now();
    while t0.elapsed() < GROUP_GRACE && super::orphans::any_group_alive(groups) {
        std::thread::sleep(GROUP_RECHECK);
    }
    for g in groups {
        let _ = killpg(Pid::from_raw(*g), Signal::SIGKILL);
    }
    for p in pids {
        let _ = kill(Pid::from_raw(*p), Signal::SIGKILL);
    }
    // Daemons that left their groups still carry the run's mark in their environment.
    if let Some(m) = mark {
        for pid in super::orphans::marked(&format!("{}={m}", crate::process::RUN_MARK)) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
    if services.is_empty() {
        return;
    }
    // Each service's end is awaited on a pidfd (no polling); without one, checked now and then.
    let fds: Vec<(i32, Option<std::os::fd::OwnedFd>)> = services
        .iter()
        .map(|(pid, _)| (*pid, pidfd(*pid)))
        .collect();
    for (pid, sig) in services {
        if let Ok(s) = Signal::try_from(*sig) {
            let _ = kill(Pid::from_raw(*pid), s);
        }
    }
    let t0 = Instant::now();
    for (pid, fd) in &fds {
        while crate::services::lifecycle::alive(*pid) {
            let Some(left) = SERVICE_GRACE.checked_sub(t0.elapsed()) else {
                break;
            };
            match fd {
                Some(fd) => wait_readable(fd, left),
                None => std::thread::sleep(SERVICE_RECHECK.min(left)),
            }
        }
    }
    for (pid, _) in services {
        if crate::services::lifecycle::alive(*pid) {
            let _ = killpg(Pid::from_raw(*pid), Signal::SIGKILL);
        }
    }
}

const GROUP_GRACE: Duration = Duration::from_secs(3);
const GROUP_RECHECK: Duration = Duration::from_millis(5);
const SERVICE_GRACE: Duration = Duration::from_secs(30);
const SERVICE_RECHECK: Duration = Duration::from_millis(50);

/// A pidfd for `pid`: readable once it has ended.
fn pidfd(pid: i32) -> Option<std::os::fd::OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    // SAFETY: a descriptor just returned by the kernel, owned by nobody else.
    (fd >= 0).then(|| unsafe { std::os::fd::OwnedFd::from_raw_fd(fd as i32) })
}

fn wait_readable(fd: &std::os::fd::OwnedFd, within: Duration) {
    use std::os::fd::AsRawFd;
    let mut p = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ms = i32::try_from(within.as_millis()).unwrap_or(i32::MAX).max(1);
    // SAFETY: one valid pollfd for the duration of the call.
    let _ = unsafe { libc::poll(&mut p, 1, ms) };
}
