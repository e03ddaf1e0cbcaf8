//! What `/proc` tells about processes: children of a pid (orphans that came to the
//! supervisor, a subreaper), processes carrying the run's mark (found by the guardian), and
//! whether a process group still has a live (not zombie) member. One scan, for the supervisor
//! and the guardian.

use nix::sys::signal::{Signal, kill};
use nix::sys::wait::{WaitPidFlag, waitpid};
use nix::unistd::Pid;

/// One process of `/proc`.
struct Entry {
    pid: i32,
    ppid: i32,
    pgid: i32,
    zombie: bool,
}

/// The pid of every process in `/proc` (none when there is no `/proc`).
fn pids() -> impl Iterator<Item = i32> {
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(Result::ok)
        .filter_map(|e| e.file_name().to_string_lossy().parse::<i32>().ok())
}

/// Every process, from `/proc/<pid>/stat`.
fn scan() -> Vec<Entry> {
    pids()
        .filter_map(|pid| read_stat(pid).and_then(|stat| parse_stat(pid, &stat)))
        .collect()
}

/// `/proc/<pid>/stat` in one `read` (a few hundred bytes; `read_to_string` would ask the
/// size and read in growing steps: three times the system calls, for every process).
fn read_stat(pid: i32) -> Option<String> {
    use std::io::Read;
    let mut f = std::fs::File::open(format!("/proc/{pid}/stat")).ok()?;
    let mut buf = [0u8; 1024];
    let n = f.read(&mut buf).ok()?;
    if n < buf.len() {
        return Some(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    let mut rest = buf.to_vec();
    f.read_to_end(&mut rest).ok()?;
    Some(String::from_utf8_lossy(&rest).into_owned())
}

/// `pid (comm) S ppid pgid …`; the command name may hold spaces and parentheses.
fn parse_stat(pid: i32, stat: &str) -> Option<Entry> {
    let (_, rest) = stat.rsplit_once(')')?;
    let mut f = rest.split_whitespace();
    let state = f.next()?;
    let ppid = f.next()?.parse().ok()?;
    let pgid = f.next()?.parse().ok()?;
    Some(Entry {
        pid,
        ppid,
        pgid,
        zombie: state == "Z" || state == "X",
    })
}

/// The pids whose parent is `parent`.
pub(super) fn children_of(parent: i32) -> Vec<i32> {
    scan()
        .into_iter()
        .filter(|e| e.ppid == parent)
        .map(|e| e.pid)
        .collect()
}

/// The members of process group `pgid` that are not zombies.
pub(crate) fn group_members(pgid: i32) -> Vec<i32> {
    scan()
        .into_iter()
        .filter(|e| e.pgid == pgid && !e.zombie)
        .map(|e| e.pid)
        .collect()
}

/// Whether any of these process groups has a member that is not a zombie.
pub(super) fn any_group_alive(groups: &[i32]) -> bool {
    !groups.is_empty() && scan().iter().any(|e| !e.zombie && groups.contains(&e.pgid))
}

/// Daemons our children left (reparented to us, a subreaper) and not `known` are told to
/// the guardian, so they die with the run even if the supervisor is killed; dead ones among
/// the `adopted` are reaped.
pub(super) fn adopt(known: &[i32], adopted: &mut Vec<i32>) {
    reap(adopted);
    let me = std::process::id() as i32;
    let guardian = crate::process::guardian_pid();
    for pid in children_of(me) {
        if !known.contains(&pid) && Some(pid) != guardian && !adopted.contains(&pid) {
            adopted.push(pid);
            crate::process::guard_orphan(pid);
        }
    }
}

/// Reap the adopted orphans that ended; keep the live ones.
pub(super) fn reap(adopted: &mut Vec<i32>) {
    adopted.retain(|&pid| {
        let _ = waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG));
        crate::services::lifecycle::alive(pid)
    });
}

/// Kill our children other than `keep` and the guardian (descendants that left their
/// process group and came to us as orphans) and reap them.
pub(super) fn cleanup(keep: &[i32]) {
    let me = std::process::id() as i32;
    let guardian = crate::process::guardian_pid();
    let orphans: Vec<i32> = children_of(me)
        .into_iter()
        .filter(|pid| !keep.contains(pid) && Some(*pid) != guardian)
        .collect();
    for pid in &orphans {
        let _ = kill(Pid::from_raw(*pid), Signal::SIGKILL);
    }
    for pid in orphans {
        let _ = waitpid(Pid::from_raw(pid), None);
    }
}

/// Kill (SIGKILL) every process still carrying this run's mark: what the run's processes
/// left behind outside their groups (double-forked daemons, a hook's background jobs), as the
/// guardian does after a killed run. Service servers carry no mark. Repeated while new ones
/// show up (a daemon forking as it dies); those that were our children are reaped.
pub(crate) fn kill_marked() {
    let needle = format!("{}={}", crate::process::RUN_MARK, crate::process::run_id());
    let guardian = crate::process::guardian_pid();
    for _ in 0..5 {
        let left: Vec<i32> = marked(&needle)
            .into_iter()
            .filter(|p| Some(*p) != guardian)
            .collect();
        if left.is_empty() {
            break;
        }
        for pid in &left {
            let _ = kill(Pid::from_raw(*pid), Signal::SIGKILL);
        }
        // Those that were (or became, as a subreaper's) our children: reap them.
        for pid in &left {
            let _ = nix::sys::wait::waitpid(
                Pid::from_raw(*pid),
                Some(nix::sys::wait::WaitPidFlag::WNOHANG),
            );
        }
    }
}

/// Processes whose environment contains `needle` (`NAME=value`), other than us.
pub(crate) fn marked(needle: &str) -> Vec<i32> {
    let me = std::process::id() as i32;
    pids()
        .filter(|&pid| pid != me)
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/environ"))
                .is_ok_and(|env| env.split(|b| *b == 0).any(|kv| kv == needle.as_bytes()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stat_line_with_odd_names_parses() {
        let e = parse_stat(42, "42 (a (b) c) S 7 42 42 0 -1").expect("parses");
        assert_eq!((e.pid, e.ppid, e.pgid, e.zombie), (42, 7, 42, false));
        let z = parse_stat(9, "9 (x) Z 1 9 9").expect("parses");
        assert!(z.zombie);
        assert!(parse_stat(1, "garbage").is_none());
    }

    #[test]
    fn our_own_group_is_alive_and_we_are_our_parents_child() {
        let me = std::process::id() as i32;
        let pgid = nix::unistd::getpgrp().as_raw();
        assert!(any_group_alive(&[pgid]));
        assert!(!any_group_alive(&[]));
        assert!(children_of(nix::unistd::getppid().as_raw()).contains(&me));
    }
}
