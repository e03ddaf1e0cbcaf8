//! Processes, by pid, from /proc: whether one runs, which ones work in (or hold files open in)
//! a directory, killing them, waiting for them to die, and the pids apps write into files.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

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

/// Wait up to `within` for every one of `pids` to be dead; panic naming the survivors.
#[track_caller]
pub fn assert_all_dead(pids: &[(String, i32)], within: Duration, context: &str) {
    let t0 = Instant::now();
    loop {
        let live: Vec<&(String, i32)> = pids.iter().filter(|(_, p)| alive(*p)).collect();
        if live.is_empty() {
            return;
        }
        if t0.elapsed() > within {
            let desc: Vec<String> = live
                .iter()
                .map(|(what, p)| format!("{what} (pid {p}: {})", cmdline(*p)))
                .collect();
            panic!(
                "still running {:.1} s after {context}: {}",
                t0.elapsed().as_secs_f64(),
                desc.join(", ")
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// [`assert_all_dead`] for the one process `what`, `pid`.
#[track_caller]
pub fn assert_dead(what: &str, pid: i32, within: Duration, context: &str) {
    assert_all_dead(&[(what.to_string(), pid)], within, context);
}

/// Wait for `path` to hold a pid (written by an app), and return it.
#[track_caller]
pub fn read_pid(path: &Path, within: Duration) -> i32 {
    let t0 = Instant::now();
    loop {
        if let Some(pid) = std::fs::read_to_string(path)
            .ok()
            .and_then(|t| t.trim().parse::<i32>().ok())
        {
            return pid;
        }
        assert!(
            t0.elapsed() < within,
            "no pid in {} after {within:?}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
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
