//! Hardening tests: processes (issue 11, items 17 and 18).
//!
//! 17. `kill -9` of `run` while it stages (a hook, an installer), or of `exec`: nothing the
//!     command started keeps running (the guardian runs from the first process), the services
//!     the run started are stopped, and a service that already ran before it is left alone.
//! 18. inotify exhausted (no instance, no watch left): `run` says so, naming the limit, and
//!     polls instead, so an edit still restarts the app; `doctor` checks the instances too.
//!     The limits are lowered honestly, for the tool alone: it runs in a user namespace of its
//!     own (`unshare --user --map-root-user`) whose `/proc/sys/user/max_inotify_*` is set to 0;
//!     the machine's limits, which other tests share, are not touched.

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::common::procs::{alive, assert_all_dead, assert_dead, cmdlines, procs_under, read_pid};
use crate::common::project::Project;
use crate::common::{SERVICES, SHORT, bin, require};

/// Long enough for the guardian to stop a service (it gives it up to 30 s).
const SERVICE_STOP: Duration = Duration::from_secs(40);

/// Wait until no process works in the project any more (the guardian, whose working
/// directory is the app's, exits once its cleanup is done).
#[track_caller]
fn wait_nothing_under(root: &Path, context: &str) {
    crate::common::wait_until(
        SERVICE_STOP,
        || procs_under(root).is_empty(),
        || {
            format!(
                "processes left in the project after {context}: {:?}",
                cmdlines(&procs_under(root))
            )
        },
    );
}

// ---------------------------------------------------------------------------------------------
// 17. kill -9 while staging, and of `exec`
// ---------------------------------------------------------------------------------------------

const HOOKED_YML: &str = "name: guarded
services:
  cache: redis
  kept: redis
hooks:
  pre-staging:
    - echo $$ > @ROOT@/hook-sh.pid; sleep 1000 & echo $! > @ROOT@/hook.pid; wait
processes:
  web: ~
command: sleep 1000
";

#[test]
fn sigkill_of_run_during_a_staging_hook_kills_the_hook_and_stops_only_the_services_it_started() {
    if !require("redis-server") {
        return;
    }
    let p = Project::new(&[("stackato.yml", HOOKED_YML)]).with_services(&["cache", "kept"]);
    // A service that runs before the run: the run reuses it and must leave it running.
    p.cmd(&["services", "start", "kept"]).code(0);
    let kept = p.server_pid("kept").expect("kept has a server.pid");

    let mut s = p.run(&["--no-watch"]);
    let hook = read_pid(&p.file("hook.pid"), SERVICES);
    let hook_sh = read_pid(&p.file("hook-sh.pid"), SHORT);
    let cache = p.server_pid("cache").expect("the run started cache");
    assert_ne!(cache, kept);
    assert!(alive(cache), "cache (pid {cache}) is not running");
    assert_eq!(
        p.server_pid("kept"),
        Some(kept),
        "the run reused kept\n{}",
        s.dump()
    );
    s.signal(Signal::SIGKILL);
    assert_eq!(s.wait_exit(SHORT), 128 + 9);

    assert_all_dead(
        &[
            ("the hook's shell".into(), hook_sh),
            ("the hook's background sleep".into(), hook),
        ],
        SHORT,
        "SIGKILL of run during a pre-staging hook",
    );
    assert_dead(
        "redis started by the killed run",
        cache,
        SERVICE_STOP,
        "SIGKILL of run during a pre-staging hook",
    );
    wait_nothing_under(&p.root, "SIGKILL of run during a pre-staging hook");
    assert!(
        alive(kept),
        "the redis that ran before the run (pid {kept}) was stopped\n{}",
        s.dump()
    );
    assert!(
        s.lines_of("worker.0").is_empty(),
        "the app started\n{}",
        s.dump()
    );
}

#[test]
fn sigkill_of_run_during_an_installer_kills_the_installer_and_what_it_started() {
    // `npm install`, found on PATH like the real one, that takes forever.
    let p = Project::new(&[
        (
            "stackato.yml",
            "name: installing\nprocesses:\n  web: ~\ncommand: sleep 1000\n",
        ),
        ("package.json", "{\"name\": \"installing\"}\n"),
    ]);
    let npm = p.file("bin/npm");
    crate::common::write(
        &p.root,
        "bin/npm",
        format!(
            "#!/bin/sh\necho $$ > {root}/npm.pid\nsleep 1000 &\necho $! > {root}/npm-child.pid\nwait\n",
            root = p.root.display()
        )
        .as_bytes(),
    );
    std::fs::set_permissions(&npm, std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .expect("chmod npm");
    let path = format!(
        "{}:{}",
        p.file("bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut s = p.run_env(&["--no-watch"], &[("PATH", &path)]);
    let pids = p.pids(&[
        ("the installer", "npm.pid"),
        ("the installer's child", "npm-child.pid"),
    ]);
    s.assert_out_has("-----> npm install");
    s.signal(Signal::SIGKILL);
    assert_eq!(s.wait_exit(SHORT), 128 + 9);
    assert_all_dead(&pids, SHORT, "SIGKILL of run during npm install");
    wait_nothing_under(&p.root, "SIGKILL of run during npm install");
}

#[test]
fn sigkill_of_exec_kills_the_command_and_its_background_jobs() {
    let p = Project::new(&[(
        "stackato.yml",
        "name: execd\nprocesses:\n  web: ~\ncommand: sleep 1000\n",
    )]);
    let script = format!(
        "echo $$ > {root}/exec-sh.pid; sleep 1000 & echo $! > {root}/exec.pid; wait",
        root = p.root.display()
    );
    let mut child = crate::common::cmd(&p.app)
        .args(["exec", "--", "sh", "-c", &script])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start exec");
    let pids = p.pids(&[
        ("exec's command", "exec-sh.pid"),
        ("its background job", "exec.pid"),
    ]);
    child.kill().expect("SIGKILL exec");
    let _ = child.wait();
    assert_all_dead(&pids, SHORT, "SIGKILL of exec");
    wait_nothing_under(&p.root, "SIGKILL of exec");
}

#[test]
fn sigkill_of_exec_stops_the_services_it_started_unless_they_are_kept() {
    if !require("redis-server") {
        return;
    }
    for keep in [false, true] {
        let p = Project::new(&[(
            "stackato.yml",
            "name: execsvc\nservices:\n  cache: redis\nprocesses:\n  web: ~\ncommand: sleep 1000\n",
        )])
        .with_services(&["cache"]);
        let script = format!(
            "echo $$ > {root}/exec-sh.pid; exec sleep 1000",
            root = p.root.display()
        );
        let mut args = vec!["exec"];
        if keep {
            args.push("--keep-services");
        }
        args.extend(["--", "sh", "-c", &script]);
        let mut child = crate::common::cmd(&p.app)
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start exec");
        let sh = read_pid(&p.file("exec-sh.pid"), SERVICES);
        let cache = p.server_pid("cache").expect("exec started cache");
        child.kill().expect("SIGKILL exec");
        let _ = child.wait();
        assert_dead("exec's command", sh, SHORT, "SIGKILL of exec");
        if keep {
            wait_nothing_under(&p.root, "SIGKILL of exec --keep-services");
            assert!(
                alive(cache),
                "exec --keep-services was killed, and its redis (pid {cache}) was stopped"
            );
        } else {
            assert_dead(
                "the redis exec started",
                cache,
                SERVICE_STOP,
                "SIGKILL of exec",
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// 18. inotify exhausted
// ---------------------------------------------------------------------------------------------

/// The tool in a user namespace of its own whose inotify `limit` (`max_inotify_instances` or
/// `max_inotify_watches`) is 0, with `args`, in `dir`. Its stdout and stderr go to the
/// returned buffer.
fn limited(dir: &Path, limit: &str, args: &[&str]) -> (Child, Arc<Mutex<Vec<u8>>>) {
    let script = format!("echo 0 > /proc/sys/user/{limit} || exit 90; exec \"$0\" \"$@\"");
    let mut c = Command::new("unshare");
    c.current_dir(dir)
        .args(["--user", "--map-root-user", "sh", "-c", &script])
        .arg(bin())
        .args(args)
        .env("STACKATO_LOCAL_TRUST", "1")
        .env_remove("STACKATO_TARGET")
        .env_remove("STACKATO_LOCAL_SERVER_PATH")
        .env_remove("NO_COLOR")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = c
        .spawn()
        .expect("unshare (util-linux) is needed for the inotify tests");
    let buf: Arc<Mutex<Vec<u8>>> = Arc::default();
    let streams: Vec<Box<dyn Read + Send>> = vec![
        Box::new(child.stdout.take().expect("stdout")),
        Box::new(child.stderr.take().expect("stderr")),
    ];
    for mut stream in streams {
        let b = Arc::clone(&buf);
        std::thread::spawn(move || {
            let mut line = Vec::new();
            let mut byte = [0u8; 1];
            // Whole lines, so the two streams do not interleave inside one.
            while let Ok(1) = stream.read(&mut byte) {
                line.push(byte[0]);
                if byte[0] == b'\n' {
                    b.lock().unwrap().extend_from_slice(&line);
                    line.clear();
                }
            }
            b.lock().unwrap().extend_from_slice(&line);
        });
    }
    (child, buf)
}

fn text(buf: &Arc<Mutex<Vec<u8>>>) -> String {
    String::from_utf8_lossy(&buf.lock().unwrap()).into_owned()
}

/// Wait for `needle` `count` times in `buf` (while `child`, if given, runs).
#[track_caller]
fn wait_text(buf: &Arc<Mutex<Vec<u8>>>, mut child: Option<&mut Child>, needle: &str, count: usize) {
    let t0 = Instant::now();
    loop {
        let t = text(buf);
        if t.matches(needle).count() >= count {
            return;
        }
        let ended = child.as_mut().and_then(|c| c.try_wait().ok().flatten());
        assert!(
            ended.is_none() && t0.elapsed() < SERVICES,
            "no {count}× {needle:?} (ended: {ended:?}); output:\n{t}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn run_without_inotify_instances_or_watches_warns_and_polls_so_an_edit_still_restarts() {
    for (limit, sysctl) in [
        ("max_inotify_instances", "fs.inotify.max_user_instances"),
        ("max_inotify_watches", "fs.inotify.max_user_watches"),
    ] {
        let p = Project::new(&[
            (
                "stackato.yml",
                "name: polled\nprocesses:\n  web: ~\ncommand: echo $$ >> @ROOT@/worker.pids; exec sleep 1000\n",
            ),
            ("lib.txt", "one\n"),
        ]);
        let (mut child, err) = limited(&p.app, limit, &["run"]);
        wait_text(
            &err,
            Some(&mut child),
            "running and watching for changes",
            1,
        );
        let first = read_pid(&p.file("worker.pids"), SHORT);
        let warning = "warning: cannot watch files with inotify: ";
        wait_text(&err, Some(&mut child), warning, 1);
        let t = text(&err);
        let line = t
            .lines()
            .find(|l| l.starts_with(warning))
            .unwrap_or_default()
            .to_string();
        for part in [
            &format!("({sysctl} = 0"),
            "watching by polling every 500 ms instead",
            &format!("echo {sysctl}="),
            "sudo sysctl --system",
        ] {
            assert!(line.contains(part), "{limit}: {part:?} missing in {line:?}");
        }
        // An edit restarts the worker (the poller notices it).
        p.edit("lib.txt", "two\n");
        wait_text(
            &err,
            Some(&mut child),
            "lib.txt changed: restarting worker.0",
            1,
        );
        crate::common::wait_until(
            SHORT,
            || p.read("worker.pids").lines().count() >= 2,
            || {
                format!(
                    "{limit}: the worker was not started again; stderr:\n{}",
                    text(&err)
                )
            },
        );
        let pids = p.read("worker.pids");
        let pids: Vec<&str> = pids.lines().collect();
        assert_ne!(pids[0], pids[1]);
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id() as i32),
            Signal::SIGINT,
        );
        let status = child.wait().expect("wait for run");
        assert_eq!(status.code(), Some(130), "{limit}: stderr:\n{}", text(&err));
        assert_dead("the first worker", first, SHORT, "Ctrl-C");
    }
}

#[test]
fn doctor_counts_inotify_instances_and_fails_when_none_is_left() {
    if !Path::new("/proc/sys/fs/inotify/max_user_instances").exists() {
        crate::common::skip("no inotify on this machine");
        return;
    }
    let limit = std::fs::read_to_string("/proc/sys/fs/inotify/max_user_instances")
        .unwrap()
        .trim()
        .to_string();
    let p = Project::new(&[("stackato.yml", "name: doc\n")]);
    // Two instances of ours, counted as in use.
    // SAFETY: plain system calls; the descriptors are closed below.
    let held: Vec<i32> = (0..2)
        .map(|_| unsafe { libc::inotify_init1(libc::IN_CLOEXEC) })
        .collect();
    assert!(held.iter().all(|fd| *fd >= 0), "inotify_init1 failed");
    let r = p.cmd(&["doctor"]);
    for fd in held {
        // SAFETY: our own descriptors.
        unsafe { libc::close(fd) };
    }
    let line = r
        .stdout
        .lines()
        .chain(r.stderr.lines())
        .find(|l| l.contains("inotify instances:"))
        .unwrap_or_else(|| panic!("no inotify instances line\n{}", r.dump()))
        .to_string();
    assert!(line.starts_with("✔ inotify instances: "), "{line}");
    let used: u64 = line["✔ inotify instances: ".len()..]
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count in {line:?}"));
    assert!(
        used >= 2,
        "the test's two instances are not counted: {line}"
    );
    assert!(
        line.ends_with(&format!(
            " in use by your programs; limit {limit} (fs.inotify.max_user_instances); `run` needs 1"
        )),
        "{line}"
    );

    // None left: a failure, with how to raise the limit.
    let (mut child, out) = limited(&p.app, "max_inotify_instances", &["doctor"]);
    let status = child.wait().expect("wait for doctor");
    wait_text(&out, None, "checks failed", 1);
    let t = text(&out);
    assert_eq!(status.code(), Some(1), "{t}");
    let line = t
        .lines()
        .find(|l| l.contains("inotify instances:"))
        .unwrap_or_else(|| panic!("no inotify instances line\n{t}"));
    assert!(line.starts_with("✘ inotify instances: "), "{line}");
    assert!(
        line.contains("limit 0 (fs.inotify.max_user_instances)")
            && line.ends_with("none left, so `run` would poll the files instead of watching them"),
        "{line}"
    );
    assert!(
        t.contains("fix: raise the limit: `echo fs.inotify.max_user_instances="),
        "{t}"
    );
}
