//! Every child process the tool starts goes through here: how it is tied to us (its own
//! process group that dies with us, a daemon in its own session, or a foreground command), the
//! guardian that cleans up after a killed `run`/`exec`, killing a group (TERM, a grace period,
//! then KILL), and a process-wide spawn hook, the test seam of the fuzz targets.
//!
//! Death: a [`Tie::Group`], [`Tie::Foreground`] or [`Tie::Probe`] child gets SIGKILL from the
//! kernel when the *thread* that spawned it ends (PR_SET_PDEATHSIG), so spawn them from a
//! thread that outlives them. What they leave behind (background jobs, daemons) carries the
//! run's mark ([`RUN_MARK`]) in its environment and is killed by the guardian, which also
//! kills every registered group and, when asked to, stops the services this command started.

mod end;
mod guard;

use std::io;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::OnceLock;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

pub(crate) use end::{
    IgnoreInterrupts, Waited, alive, output_within, stop_pid, terminate, wait_child,
};
use guard::with_guardian;
pub(crate) use guard::{end_guardian, forget_group, guard_orphan, guardian_pid, start_guardian};

/// The variable that marks every process of one run (inherited by their descendants, even
/// daemons that leave the process group), so the guardian can find them all.
pub(crate) const RUN_MARK: &str = "STACKATO_LOCAL_RUN";

/// This process's mark value.
pub(crate) fn run_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        format!("{}-{nanos}", std::process::id())
    })
}

/// How a child is tied to us.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tie {
    /// Project or server code working for us (hooks, installers, app processes, cron jobs,
    /// a service's init and client tools): a new process group, SIGKILL when we die, the
    /// run's mark, and registered with the guardian until it has been waited for.
    Group,
    /// An interactive command (`exec`, `ssh`, `dbshell`, `stty`): stays in our process group
    /// so the terminal's Ctrl-C and job control reach it; SIGKILL when we die, and the run's
    /// mark so the guardian finds what it leaves behind.
    Foreground,
    /// A service's server: a new session, outlives us (servers are reused between commands);
    /// a guardian started with `stop_services` stops it with this signal if we die.
    Daemon(Signal),
    /// Our own helper (the guardian): a new session, not registered, outlives us.
    Detached,
    /// A short run of a system program (doctor's version probes, `dpkg-query`, `useradd`):
    /// SIGKILL when we die, nothing else.
    Probe,
}

/// Called before every spawn with the command about to run; an `Err` aborts the spawn.
pub(crate) type SpawnHook = fn(&Command) -> io::Result<()>;

static HOOK: OnceLock<SpawnHook> = OnceLock::new();

/// Install the process-wide spawn hook (fuzz targets: fail the case when project code is
/// about to run before trust). Only the first call counts; `false` when one was already set.
pub fn set_spawn_hook(hook: SpawnHook) -> bool {
    HOOK.set(hook).is_ok()
}

fn check(cmd: &Command) -> io::Result<()> {
    match HOOK.get() {
        Some(hook) => hook(cmd),
        None => Ok(()),
    }
}

/// Set up `cmd` for `tie` (process group or session, death signal, mark).
fn configure(cmd: &mut Command, tie: Tie) {
    use std::os::unix::process::CommandExt;
    match tie {
        Tie::Group => {
            cmd.process_group(0).env(RUN_MARK, run_id());
        }
        Tie::Foreground => {
            cmd.env(RUN_MARK, run_id());
        }
        // A server outlives this run: it must not carry any run's mark.
        Tie::Daemon(_) | Tie::Detached => {
            cmd.env_remove(RUN_MARK);
        }
        Tie::Probe => {}
    }
    let new_session = matches!(tie, Tie::Daemon(_) | Tie::Detached);
    let die_with_us = !new_session;
    let parent = std::process::id();
    // Closures run in the order they were added: this one after any set-up of the caller's
    // ([`as_user`] drops privileges first, which would clear the death signal).
    // SAFETY: only async-signal-safe calls (setsid, prctl, getppid) run between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if new_session {
                nix::unistd::setsid().map_err(io::Error::from)?;
            }
            #[cfg(target_os = "linux")]
            if die_with_us {
                nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(io::Error::from)?;
                // We may have died before the death signal was armed.
                if nix::unistd::getppid().as_raw() as u32 != parent {
                    return Err(io::Error::other("the parent exited during the spawn"));
                }
            }
            #[cfg(not(target_os = "linux"))]
            let _ = (die_with_us, parent);
            Ok(())
        });
    }
}

/// Make `cmd` run as user `uid` and group `gid`, with no supplementary groups (a service's
/// server and tools, when we are root). Its process group or session comes from its [`Tie`];
/// privileges are dropped before the death signal is armed (dropping them would clear it).
pub(crate) fn as_user(cmd: &mut Command, uid: u32, gid: u32) {
    use std::os::unix::process::CommandExt;
    // SAFETY: only async-signal-safe calls (setgroups, setgid, setuid) run between fork and
    // exec.
    unsafe {
        cmd.pre_exec(move || {
            nix::unistd::setgroups(&[]).map_err(io::Error::from)?;
            nix::unistd::setgid(nix::unistd::Gid::from_raw(gid)).map_err(io::Error::from)?;
            nix::unistd::setuid(nix::unistd::Uid::from_raw(uid)).map_err(io::Error::from)?;
            Ok(())
        });
    }
}

/// Tell the guardian about a child just started.
fn register(pid: u32, tie: Tie) {
    let Ok(pid) = i32::try_from(pid) else { return };
    with_guardian(|g| match tie {
        Tie::Group => g.guardian.watch_group(pid),
        Tie::Daemon(sig) if g.stop_services => g.guardian.watch_service(pid, sig),
        _ => {}
    });
}

/// Spawn `cmd` tied to us as `tie`.
pub(crate) fn spawn(cmd: &mut Command, tie: Tie) -> io::Result<Child> {
    check(cmd)?;
    configure(cmd, tie);
    #[allow(clippy::disallowed_methods)] // the one place that spawns
    let child = cmd.spawn()?;
    register(child.id(), tie);
    Ok(child)
}

/// [`spawn`] for the supervisor's event loop.
pub(crate) fn spawn_async(
    cmd: &mut tokio::process::Command,
    tie: Tie,
) -> io::Result<tokio::process::Child> {
    check(cmd.as_std())?;
    configure(cmd.as_std_mut(), tie);
    #[allow(clippy::disallowed_methods)] // the one place that spawns
    let child = cmd.spawn()?;
    if let Some(pid) = child.id() {
        register(pid, tie);
    }
    Ok(child)
}

/// Run `cmd` to completion.
pub(crate) fn status(cmd: &mut Command, tie: Tie) -> io::Result<ExitStatus> {
    let mut child = spawn(cmd, tie)?;
    let status = child.wait();
    waited(child.id(), tie);
    status
}

/// Run `cmd` to completion with stdin from /dev/null, collecting its output.
pub(crate) fn output(cmd: &mut Command, tie: Tie) -> io::Result<Output> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let child = spawn(cmd, tie)?;
    let pid = child.id();
    let out = child.wait_with_output();
    waited(pid, tie);
    out
}

/// A child has been waited for: its group is forgotten by the guardian once nothing of it is
/// left (background jobs of a hook stay registered, so they still die with us).
pub(crate) fn waited(pid: u32, tie: Tie) {
    if tie != Tie::Group {
        return;
    }
    let Ok(pgid) = i32::try_from(pid) else { return };
    if killpg(Pid::from_raw(pgid), None).is_err() {
        forget_group(pgid);
    }
}

/// Give freed heap memory back to the system (after a big walk: the supervisor stays small
/// while idle). A no-op where the C library has no `malloc_trim`.
pub(crate) fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free memory at the top of the heap and in arenas.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_group_child_leads_its_own_group_and_terminate_kills_it() {
        let mut c = Command::new("sh");
        c.args(["-c", "sleep 1000 & wait"]);
        let mut child = spawn(&mut c, Tie::Group).unwrap();
        let pid = child.id() as i32;
        let pgid = nix::unistd::getpgid(Some(Pid::from_raw(pid))).unwrap();
        assert_eq!(pgid.as_raw(), pid);
        let st = terminate(&mut child, std::time::Duration::from_secs(5)).unwrap();
        assert!(!st.success());
        // The orphaned `sleep` is reaped by PID 1, which may take a while in a container: a
        // zombie still counts for kill(2), so the group is empty once no member is alive.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while killpg(pgid, None).is_ok() && live_members(pgid.as_raw()) > 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "the group still has {} live member(s)",
                live_members(pgid.as_raw())
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Processes of group `pgid` that are not zombies (from /proc).
    fn live_members(pgid: i32) -> usize {
        let Ok(dir) = std::fs::read_dir("/proc") else {
            return 0;
        };
        dir.filter_map(Result::ok)
            .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
            .filter(|stat| {
                // `pid (comm) state ppid pgrp …`: fields after the last `)`.
                let Some((_, rest)) = stat.rsplit_once(')') else {
                    return false;
                };
                let f: Vec<&str> = rest.split_whitespace().collect();
                f.len() > 2 && f[0] != "Z" && f[2] == pgid.to_string()
            })
            .count()
    }

    #[test]
    fn the_spawn_hook_sees_every_spawn_and_can_refuse_it() {
        fn hook(cmd: &Command) -> io::Result<()> {
            if cmd.get_program() == "refused-by-the-hook" {
                return Err(io::Error::new(io::ErrorKind::PermissionDenied, "hooked"));
            }
            Ok(())
        }
        // Other tests of this binary spawn too: the hook refuses only this program.
        assert!(set_spawn_hook(hook), "the hook was already set");
        assert!(!set_spawn_hook(hook), "a second hook is refused");
        for tie in [Tie::Group, Tie::Foreground, Tie::Probe, Tie::Detached] {
            let e = spawn(&mut Command::new("refused-by-the-hook"), tie).unwrap_err();
            assert_eq!(e.to_string(), "hooked", "{tie:?}");
        }
        let mut async_cmd = tokio::process::Command::new("refused-by-the-hook");
        let e = spawn_async(&mut async_cmd, Tie::Group).unwrap_err();
        assert_eq!(e.to_string(), "hooked");
        assert!(
            status(&mut Command::new("true"), Tie::Probe)
                .unwrap()
                .success()
        );
    }

    #[test]
    fn a_daemon_gets_its_own_session_and_no_mark() {
        let mut c = Command::new("sleep");
        c.arg("30").env(RUN_MARK, "outer");
        let mut child = spawn(&mut c, Tie::Daemon(Signal::SIGTERM)).unwrap();
        let pid = Pid::from_raw(child.id() as i32);
        let sid = nix::unistd::getsid(Some(pid)).unwrap();
        let env = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(sid, pid, "a session of its own");
        let mark = format!("{RUN_MARK}=");
        assert!(
            !env.split(|b| *b == 0)
                .any(|kv| kv.starts_with(mark.as_bytes())),
            "a daemon carries no run's mark"
        );
    }
}
