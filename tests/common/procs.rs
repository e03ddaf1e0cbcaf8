//! Processes, by pid, from /proc: whether one runs, which ones work in (or hold files open in)
//! a directory, killing them, waiting for them to die, and the pids apps write into files.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::wait_until;

/// Whether `pid` runs (a zombie is dead).
pub fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s.rsplit_once(')').is_some_and(|(_, rest)| {
            let st = rest.trim_start();
            st.starts_with('Z') || st.starts_with('X')
        }),
        Err(_) => false,
    }
}

/// Every pid in /proc (live or not).
pub fn pids() -> Vec<i32> {
    std::fs::read_dir("/proc")
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The working directory of `pid`.
pub fn cwd_of(pid: i32) -> Option<PathBuf> {
    std::fs::read_link(format!("/proc/{pid}/cwd")).ok()
}

/// Every live process (not us) whose working directory is `root` or below, by pid.
pub fn procs_under(root: &Path) -> Vec<i32> {
    let me = std::process::id() as i32;
    let mut v: Vec<i32> = pids()
        .into_iter()
        .filter(|&pid| pid != me && alive(pid))
        .filter(|&pid| cwd_of(pid).is_some_and(|c| c.starts_with(root)))
        .collect();
    v.sort_unstable();
    v
}

/// Every live process (not us) whose working directory, or one of whose open files, is
/// `root` or below, by pid.
pub fn procs_using(root: &Path) -> Vec<i32> {
    let me = std::process::id() as i32;
    let uses = |pid: i32| {
        let under = |p: PathBuf| p.starts_with(root);
        if cwd_of(pid).is_some_and(under) {
            return true;
        }
        std::fs::read_dir(format!("/proc/{pid}/fd")).is_ok_and(|rd| {
            rd.filter_map(Result::ok)
                .any(|e| std::fs::read_link(e.path()).is_ok_and(under))
        })
    };
    let mut v: Vec<i32> = pids()
        .into_iter()
        .filter(|&pid| pid != me && alive(pid) && uses(pid))
        .collect();
    v.sort_unstable();
    v
}

/// The command line of `pid`, for messages.
pub fn cmdline(pid: i32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            String::from_utf8_lossy(&b)
                .replace('\0', " ")
                .trim()
                .to_string()
        })
        .unwrap_or_default()
}

/// The command lines of `pids`, for messages.
pub fn cmdlines(pids: &[i32]) -> Vec<String> {
    pids.iter().map(|p| cmdline(*p)).collect()
}

/// Assert that each of `pids` runs (`<what> is not running`).
#[track_caller]
pub fn assert_all_alive(pids: &[(String, i32)]) {
    for (what, pid) in pids {
        assert!(alive(*pid), "{what} is not running");
    }
}

/// SIGKILL `pid`, ignoring failures.
pub fn kill9(pid: i32) {
    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
}

/// Wait for every one of `pids` to be dead (`within` is a hang guard); panic naming the
/// survivors.
#[track_caller]
pub fn assert_all_dead(pids: &[(String, i32)], within: Duration, context: &str) {
    let live = || -> Vec<&(String, i32)> { pids.iter().filter(|(_, p)| alive(*p)).collect() };
    wait_until(
        within,
        || live().is_empty(),
        || {
            let desc: Vec<String> = live()
                .iter()
                .map(|(what, p)| format!("{what} (pid {p}: {})", cmdline(*p)))
                .collect();
            format!("still running after {context}: {}", desc.join(", "))
        },
    );
}

/// [`assert_all_dead`] for the one process `what`, `pid`.
#[track_caller]
pub fn assert_dead(what: &str, pid: i32, within: Duration, context: &str) {
    assert_all_dead(&[(what.to_string(), pid)], within, context);
}

/// Wait for `path` to hold a pid (written by an app), and return it.
#[track_caller]
pub fn read_pid(path: &Path, within: Duration) -> i32 {
    let read = || {
        std::fs::read_to_string(path)
            .ok()
            .and_then(|t| t.trim().parse::<i32>().ok())
    };
    let mut pid = None;
    wait_until(
        within,
        || {
            pid = read();
            pid.is_some()
        },
        || format!("no pid in {}", path.display()),
    );
    pid.unwrap_or_default()
}

/// The TCP sockets listening on `port`, as `tcp:ADDR` / `tcp6:ADDR` (hex, from /proc/net/tcp
/// and /proc/net/tcp6): `tcp:0100007F` is 127.0.0.1.
pub fn listeners(port: u16) -> Vec<String> {
    let mut v = Vec::new();
    for file in ["tcp", "tcp6"] {
        let text = std::fs::read_to_string(format!("/proc/net/{file}")).unwrap_or_default();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 4 || f[3] != "0A" {
                continue;
            }
            let Some((addr, p)) = f[1].rsplit_once(':') else {
                continue;
            };
            if u16::from_str_radix(p, 16).ok() == Some(port) {
                v.push(format!("{file}:{addr}"));
            }
        }
    }
    v
}

/// The parent pid of `pid`.
pub fn parent_of(pid: i32) -> Option<i32> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = s.rsplit_once(')')?;
    rest.split_whitespace().nth(1)?.parse().ok()
}

/// (real, effective) uid of `pid`.
pub fn uids_of(pid: i32) -> (u32, u32) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("read /proc/{pid}/status: {e}"));
    let line = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .expect("Uid line");
    let v: Vec<u32> = line
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().expect("uid"))
        .collect();
    (v[0], v[1])
}

/// Every live process working in `root` (servers chdir to their data or run dir there) whose
/// parent does not: the top-level server processes of one service.
pub fn server_pids(root: &Path) -> Vec<i32> {
    let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    let inside = |pid: i32| cwd_of(pid).is_some_and(|c| c.starts_with(&root));
    let mut v: Vec<i32> = pids()
        .into_iter()
        .filter(|&pid| alive(pid) && inside(pid))
        .filter(|&pid| !parent_of(pid).is_some_and(inside))
        .collect();
    v.sort_unstable();
    v
}

/// Every live process working in `root` (resolved first), children included.
pub fn all_pids(root: &Path) -> Vec<i32> {
    procs_under(&root.canonicalize().unwrap_or_else(|_| root.to_path_buf()))
}

/// Assert only 127.0.0.1 listens on `port`.
#[track_caller]
pub fn assert_loopback_only(what: &str, port: u16) {
    assert_eq!(
        listeners(port),
        vec!["tcp:0100007F".to_string()],
        "{what}: expected exactly one listener on 127.0.0.1:{port} (from /proc/net/tcp{{,6}})"
    );
}

/// How many inotify watches `pid` holds (from /proc/<pid>/fdinfo): more than none once its
/// file watcher has set itself up.
pub fn inotify_watches(pid: i32) -> usize {
    let Ok(rd) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return 0;
    };
    rd.filter_map(Result::ok)
        .filter(|e| {
            std::fs::read_link(e.path()).is_ok_and(|t| t.to_string_lossy() == "anon_inode:inotify")
        })
        .map(|e| {
            std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{}", e.file_name().display()))
                .map(|t| t.lines().filter(|l| l.starts_with("inotify wd:")).count())
                .unwrap_or(0)
        })
        .sum()
}

/// Wait until `pid`'s file watcher is set up (it holds an inotify watch).
#[track_caller]
pub fn wait_watching(pid: i32, within: Duration) {
    wait_until(
        within,
        || inotify_watches(pid) > 0,
        || format!("pid {pid} ({}) holds no inotify watch", cmdline(pid)),
    );
}
