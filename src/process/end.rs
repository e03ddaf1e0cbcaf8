//! Waiting for processes and ending them: a blocking wait on a process's exit (a pidfd on
//! Linux, so an exit wakes us at once), a child waited for with a time limit and a stop
//! request, a process group killed with a grace period, a server (any pid) stopped with its
//! own signal, a short run of a program with a time limit, and the foreground guard of
//! interactive commands.

use std::io;
use std::os::fd::AsFd;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::sys::wait::{WaitPidFlag, waitpid};
use nix::unistd::Pid;

use super::{Tie, spawn, waited};
use crate::interrupt::{Stop, Woke};

/// Whether `pid` is a live process (reaping it first if it is our exited child). A zombie is
/// not alive.
pub(crate) fn alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    let _ = waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG));
    if kill(Pid::from_raw(pid), None).is_err() {
        return false;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => !std::path::Path::new("/proc/self").exists(),
    }
}

/// Wait up to `timeout` for process `pid` (any process, not only our child) to end; `true`
/// when it has (an exited child of ours is left for its owner to reap). Blocks on a pidfd
/// where the kernel has them, so the exit wakes us without polling.
pub(super) fn wait_gone(pid: i32, timeout: Duration) -> bool {
    match pidfd::open(pid) {
        Some(None) => true,
        Some(Some(fd)) => matches!(
            Stop::never().wait(&[fd.as_fd()], Some(timeout)),
            Ok(Woke::Ready(_))
        ),
        None => poll_gone(pid, timeout),
    }
}

/// [`wait_gone`] without pidfds: look every few milliseconds.
fn poll_gone(pid: i32, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if !alive(pid) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[cfg(target_os = "linux")]
mod pidfd {
    use std::os::fd::{FromRawFd, OwnedFd};

    /// A descriptor that becomes readable when `pid` ends: `Some(None)` when it has already
    /// ended, `None` when this kernel has no pidfds (the caller polls instead).
    pub(super) fn open(pid: i32) -> Option<Option<OwnedFd>> {
        // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if fd < 0 {
            return match std::io::Error::last_os_error().raw_os_error() {
                Some(libc::ESRCH) => Some(None),
                _ => None,
            };
        }
        // SAFETY: the descriptor was just returned to us and is owned by nobody else.
        Some(Some(unsafe {
            OwnedFd::from_raw_fd(i32::try_from(fd).ok()?)
        }))
    }
}

#[cfg(not(target_os = "linux"))]
mod pidfd {
    pub fn open(_pid: i32) -> Option<Option<std::os::fd::OwnedFd>> {
        None
    }
}

/// How a [`wait_child`] ended.
#[derive(Debug)]
pub(crate) enum Waited {
    Exited(ExitStatus),
    /// The time limit ran out; the child still runs.
    TimedOut,
    /// `stop` was asked to stop; the child still runs.
    Stopped,
}

/// Wait for `child` until it exits, `limit` runs out, or `stop` is asked to stop: one
/// `poll()` on the child's pidfd and the stop latch, so either wakes us at once.
pub(crate) fn wait_child(child: &mut Child, limit: Duration, stop: &Stop) -> io::Result<Waited> {
    let deadline = Instant::now() + limit;
    let pid = i32::try_from(child.id()).unwrap_or(i32::MAX);
    let fd = pidfd::open(pid);
    loop {
        if let Some(s) = child.try_wait()? {
            return Ok(Waited::Exited(s));
        }
        if stop.requested().is_some() {
            return Ok(Waited::Stopped);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(Waited::TimedOut);
        }
        match &fd {
            Some(Some(fd)) => {
                stop.wait(&[fd.as_fd()], Some(left))?;
            }
            // No pidfd: the stop still wakes us; the exit is looked for every few ms.
            _ => {
                stop.sleep(left.min(Duration::from_millis(5)));
            }
        }
    }
}

/// Kill the process group of `child` (spawned as [`Tie::Group`]): SIGTERM, up to `grace` for
/// it to end (the leader's exit wakes us; what else of the group is left gets the rest of the
/// grace), then SIGKILL to whatever is left; returns how the child ended.
pub(crate) fn terminate(child: &mut Child, grace: Duration) -> io::Result<ExitStatus> {
    let pid = child.id();
    let raw = i32::try_from(pid).unwrap_or(i32::MAX);
    let pg = Pid::from_raw(raw);
    let _ = killpg(pg, Signal::SIGTERM);
    let deadline = Instant::now() + grace;
    wait_gone(raw, grace);
    let status = child.try_wait()?;
    if status.is_some() {
        // The rest of the group gets the rest of the grace; each one's exit wakes us.
        for pid in crate::supervise::orphans::group_members(raw) {
            wait_gone(pid, deadline.saturating_duration_since(Instant::now()));
        }
    }
    let _ = killpg(pg, Signal::SIGKILL);
    let status = match status {
        Some(s) => s,
        None => child.wait()?,
    };
    waited(pid, Tie::Group);
    Ok(status)
}

/// Stop a server that may not be our child (a daemon of an earlier run): `signal` to it, up
/// to `grace` for it to end, then SIGKILL to its process group and to it. `true` when it
/// ended by itself within the grace period.
pub(crate) fn stop_pid(pid: i32, signal: Signal, grace: Duration) -> bool {
    let p = Pid::from_raw(pid);
    let _ = kill(p, signal);
    if wait_gone(pid, grace) {
        alive(pid); // reaps it when it is our child
        return true;
    }
    let _ = killpg(p, Signal::SIGKILL);
    let _ = kill(p, Signal::SIGKILL);
    wait_gone(pid, Duration::from_secs(5));
    alive(pid);
    false
}

/// Run `cmd` with stdin from /dev/null, collecting its output, for at most `limit`: `None`
/// when it took longer (it is killed; its output is dropped).
pub(crate) fn output_within(
    cmd: &mut Command,
    tie: Tie,
    limit: Duration,
) -> io::Result<Option<Output>> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = spawn(cmd, tie)?;
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => {
            waited(pid, tie);
            out.map(Some)
        }
        Err(_) => {
            if let Ok(raw) = i32::try_from(pid) {
                if tie == Tie::Group {
                    let _ = killpg(Pid::from_raw(raw), Signal::SIGKILL);
                }
                let _ = kill(Pid::from_raw(raw), Signal::SIGKILL);
            }
            Ok(None)
        }
    }
}

/// Ignores SIGINT and SIGQUIT in this process while it lives: a [`Tie::Foreground`] child
/// gets the terminal's Ctrl-C, we wait for it and then clean up.
pub(crate) struct IgnoreInterrupts {
    old: Vec<(Signal, nix::sys::signal::SigAction)>,
}

impl IgnoreInterrupts {
    pub(crate) fn new() -> Self {
        use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, sigaction};
        let ignore = SigAction::new(SigHandler::SigIgn, SaFlags::empty(), SigSet::empty());
        let mut old = Vec::new();
        for s in [Signal::SIGINT, Signal::SIGQUIT] {
            // SAFETY: installing SIG_IGN has no handler code to be unsafe.
            if let Ok(prev) = unsafe { sigaction(s, &ignore) } {
                old.push((s, prev));
            }
        }
        IgnoreInterrupts { old }
    }
}

impl Default for IgnoreInterrupts {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for IgnoreInterrupts {
    fn drop(&mut self) {
        for (s, prev) in &self.old {
            // SAFETY: restoring the previous disposition.
            let _ = unsafe { nix::sys::signal::sigaction(*s, prev) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Wait until the shell `pid` runs a child: it has set its trap by then.
    fn has_a_child(pid: i32) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .is_ok_and(|s| !s.trim().is_empty())
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn wait_gone_wakes_on_exit_and_times_out_on_a_live_process() {
        let mut c = Command::new("sleep");
        c.arg("1000");
        let mut child = spawn(&mut c, Tie::Group).unwrap();
        let pid = child.id() as i32;
        assert!(!wait_gone(pid, Duration::from_millis(50)), "still running");
        assert!(alive(pid));
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        assert!(wait_gone(pid, Duration::from_secs(60)), "the kill ends it");
        assert!(!alive(pid), "a zombie is not alive (and is reaped)");
        let _ = child.wait();
    }

    #[test]
    fn wait_child_reports_exit_time_limit_and_stop() {
        let mut c = Command::new("sh");
        c.args(["-c", "exit 3"]);
        let mut child = spawn(&mut c, Tie::Group).unwrap();
        let never = Stop::never();
        match wait_child(&mut child, Duration::from_secs(60), &never).unwrap() {
            Waited::Exited(s) => assert_eq!(s.code(), Some(3)),
            other => panic!("{other:?}"),
        }
        let mut c = Command::new("sleep");
        c.arg("1000");
        let mut child = spawn(&mut c, Tie::Group).unwrap();
        let stop = Stop::detached();
        let w = wait_child(&mut child, Duration::from_millis(30), &stop).unwrap();
        assert!(matches!(w, Waited::TimedOut), "{w:?}");
        // A stop asked for while waiting wakes the wait (no time limit to end it otherwise).
        let asker = {
            let stop = stop.clone();
            std::thread::spawn(move || stop.request(Signal::SIGINT))
        };
        let w = wait_child(&mut child, Duration::from_secs(3600), &stop).unwrap();
        assert!(matches!(w, Waited::Stopped), "{w:?}");
        asker.join().unwrap();
        let st = terminate(&mut child, Duration::from_secs(5)).unwrap();
        assert!(!st.success());
    }

    #[test]
    fn terminate_kills_a_group_that_ignores_term_after_the_grace() {
        let mut c = Command::new("sh");
        c.args(["-c", "trap '' TERM; sleep 1000 & wait"]);
        let mut child = spawn(&mut c, Tie::Group).unwrap();
        let pg = Pid::from_raw(child.id() as i32);
        has_a_child(pg.as_raw());
        let st = terminate(&mut child, Duration::from_millis(200)).unwrap();
        assert!(!st.success());
        // The killed `sleep` is reaped by init, in its own time.
        let deadline = Instant::now() + Duration::from_secs(60);
        while killpg(pg, None).is_ok() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(killpg(pg, None).is_err(), "nothing of the group is left");
    }

    #[test]
    fn stop_pid_is_clean_for_a_server_that_obeys_and_kills_one_that_does_not() {
        let mut c = Command::new("sleep");
        c.arg("1000");
        // Reaped by `stop_pid` (through `alive`), as a server of an earlier run would be by
        // its parent: no `wait` here.
        let pid = spawn(&mut c, Tie::Daemon(Signal::SIGTERM)).unwrap().id() as i32;
        assert!(stop_pid(pid, Signal::SIGTERM, Duration::from_secs(60)));
        assert!(!alive(pid));
        let mut c = Command::new("sh");
        c.args(["-c", "trap '' TERM; while :; do sleep 1; done"]);
        let pid = spawn(&mut c, Tie::Daemon(Signal::SIGTERM)).unwrap().id() as i32;
        has_a_child(pid);
        assert!(!stop_pid(pid, Signal::SIGTERM, Duration::from_millis(100)));
        assert!(!alive(pid));
    }

    #[test]
    fn output_within_returns_the_output_or_none_after_the_limit() {
        let mut c = Command::new("echo");
        c.arg("hi");
        let out = output_within(&mut c, Tie::Probe, Duration::from_secs(60))
            .unwrap()
            .unwrap();
        assert_eq!(out.stdout, b"hi\n");
        let mut c = Command::new("sleep");
        c.arg("1000");
        assert!(
            output_within(&mut c, Tie::Group, Duration::from_millis(50))
                .unwrap()
                .is_none()
        );
    }
}
