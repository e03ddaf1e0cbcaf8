//! `stackato-local run` end to end: the real binary runs real (tiny) apps in temp dirs, and the
//! tests watch what a user sees (the `==>` phase lines on stderr, the `name | line` output on
//! stdout), talk HTTP to the processes, send Ctrl-C (SIGINT) and look at the exit code and at
//! which processes are left (by pid, via /proc).
//!
//! Covered: hook order and environments; failing and `-`-prefixed hooks (staging and
//! pre-running); pre-running exports and background jobs; Ctrl-C during staging; one run per
//! project; a service that cannot run (exit 5); the staging cache (`--restage`, changed files,
//! `ignores:`, a step skipped for a missing tool retried once it is there); several instances;
//! workers; several apps with `depends-on`; crash restarts, flapping (exit 7 with
//! `--no-watch`, a retry after a change when watching) and `--exit-on-crash`; the readiness
//! timeout, and apps without a route (never port-checked); shutdown (SIGINT, SIGTERM, daemons,
//! a process that
//! ignores SIGTERM, a second Ctrl-C, SIGKILL of the supervisor and the guardian); line integrity
//! under heavy output, very long and partial lines; a postgres service that keeps its rows
//! between runs; uWSGI's stand-in; and the seed-shaped Django app
//! (`tests/fixtures/django-seed/`) with MariaDB, memcached, pip requirements and uWSGI (about a
//! minute the first time: it installs Django and builds uWSGI from PyPI).
//!
//! Every test has its own temp dir: the app in `<root>/app`, and the files the test's apps
//! write (marks, pids) in `<root>`, outside the app, so they never change what staging hashes.
//! Guards SIGKILL a run left behind, stop and reset its services, and kill every process whose
//! working directory is inside the test's dir, whatever happened in the test.
//!
//! Tests that need a server (postgres, MariaDB, memcached) print a loud SKIP when it is not
//! installed, or fail when `STACKATO_LOCAL_REQUIRE_SERVICES=1` (see `common::require`).

use crate::common;

use std::path::Path;
use std::time::{Duration, Instant};

use crate::common::http::http_get;
use crate::common::procs::{
    alive, assert_all_alive, assert_all_dead, assert_dead, cmdlines, procs_under, read_pid,
};
use crate::common::project::Project;
use crate::common::session::Stream;
use crate::common::*;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// How long a Ctrl-C may take to end a run.
const CTRL_C: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------------
// HTTP and the apps' code
// ---------------------------------------------------------------------------------------------

/// `GET /env` of [`SERVER_PY`]: the process's environment.
#[track_caller]
fn env_of(port: u16) -> serde_json::Map<String, serde_json::Value> {
    let (status, body) = http_get(port, "/env");
    assert_eq!(status, 200, "GET /env: {body}");
    match serde_json::from_str(&body) {
        Ok(serde_json::Value::Object(m)) => m,
        _ => panic!("GET /env is not a JSON object: {body}"),
    }
}

/// A small web app (stdlib only) listening on `$PORT`: `GET /env` answers with its environment
/// as JSON, `GET /` with `ok`. Options: `--pidfile F` (its pid), `--child-pidfile F` (starts
/// `sleep 1000` and writes its pid), `--daemon-pidfile F` (starts a `sleep 1000` in a new
/// session whose parent exits: a daemon), `--ignore-term`, `--delay S` (before listening),
/// `--listen-time F` (the time just before it listens), `--start-time F` (the time it started).
const SERVER_PY: &str = r#"
import argparse, json, os, signal, subprocess, sys, time
from http.server import BaseHTTPRequestHandler, HTTPServer

p = argparse.ArgumentParser()
p.add_argument("--pidfile")
p.add_argument("--child-pidfile")
p.add_argument("--daemon-pidfile")
p.add_argument("--ignore-term", action="store_true")
p.add_argument("--delay", type=float, default=0)
p.add_argument("--listen-time")
p.add_argument("--start-time")
a = p.parse_args()

def put(path, text):
    with open(path + ".tmp", "w") as f:
        f.write(text)
    os.rename(path + ".tmp", path)

if a.start_time:
    put(a.start_time, repr(time.time()))
if a.ignore_term:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
if a.child_pidfile:
    child = subprocess.Popen(["sleep", "1000"])
    put(a.child_pidfile, str(child.pid))
if a.daemon_pidfile:
    subprocess.run(["setsid", "sh", "-c", "sleep 1000 >/dev/null 2>&1 </dev/null & echo $! > " + a.daemon_pidfile], check=True)
time.sleep(a.delay)

class H(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps(dict(os.environ)) if self.path == "/env" else "ok"
        body = body.encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

if a.listen_time:
    put(a.listen_time, repr(time.time()))
server = HTTPServer(("0.0.0.0", int(os.environ["PORT"])), H)
if a.pidfile:
    put(a.pidfile, str(os.getpid()))
print("listening on %s pid %d" % (os.environ["PORT"], os.getpid()), flush=True)
server.serve_forever()
"#;

/// The 1-based line and column of the first occurrence of `needle` in `text`.
fn line_col(text: &str, needle: &str) -> (usize, usize) {
    let at = text.find(needle).expect("needle in text");
    let line = text[..at].matches('\n').count() + 1;
    let col = at - text[..at].rfind('\n').map_or(0, |p| p + 1) + 1;
    (line, col)
}

// ---------------------------------------------------------------------------------------------
// 1. Hooks: order and environment
// ---------------------------------------------------------------------------------------------

#[test]
fn hooks_run_in_order_with_the_staging_then_the_runtime_environment() {
    let p = Project::new(&[
        (
            "stackato.yml",
            r#"name: hookorder
hooks:
  pre-staging:
    - echo "pre-staging cwd=$(pwd) timeout=$STAGING_TIMEOUT port=$PORT" >> @ROOT@/marks
  post-staging:
    - echo "post-staging cwd=$(pwd) timeout=$STAGING_TIMEOUT port=$PORT" >> @ROOT@/marks
  pre-running:
    - echo "pre-running cwd=$(pwd) port=$PORT app=$STACKATO_APP_NAME" >> @ROOT@/marks
processes:
  web: echo "web cwd=$(pwd) port=$PORT" >> @ROOT@/marks; exec python3 server.py
"#,
        ),
        ("server.py", SERVER_PY),
    ]);
    let mut s = p.run(&[]);
    let port = s.ready("web.0", SHORT);
    s.interrupt(CTRL_C);

    let app = p.app.display().to_string();
    let marks = p.read("marks");
    let lines: Vec<&str> = marks.lines().collect();
    let kinds: Vec<&str> = lines
        .iter()
        .map(|l| l.split_whitespace().next().unwrap_or(""))
        .collect();
    assert_eq!(
        kinds,
        ["pre-staging", "post-staging", "pre-running", "web"],
        "hooks ran out of order:\n{marks}\n{}",
        s.dump()
    );
    // Staging runs in a fresh copy of the upload (the droplet), the processes in the
    // instance's own copy of it; never in the checkout.
    let staged = format!("{app}/.stackato-local/apps/hookorder/g1/staging/app");
    let instance = format!("{app}/.stackato-local/apps/hookorder/g1/0/app");
    for l in &lines[..2] {
        // Staging: in the staged copy, STAGING_TIMEOUT set, no PORT.
        assert!(l.contains(&format!("cwd={staged} ")), "{l}");
        assert!(!l.contains("timeout= "), "STAGING_TIMEOUT not set: {l}");
        assert!(l.ends_with("port="), "PORT set at staging: {l}");
    }
    assert_eq!(
        lines[2],
        format!("pre-running cwd={instance} port={port} app=hookorder")
    );
    assert_eq!(lines[3], format!("web cwd={instance} port={port}"));
    // The staging log shows each hook command behind `staging | -----> `.
    s.assert_out_has("staging | -----> echo \"pre-staging cwd=");
    s.assert_out_has("staging | -----> echo \"post-staging cwd=");
    s.assert_out_has(&format!("web.0   | listening on {port} pid "));
    s.assert_err_has("==> staged hookorder");
}

// ---------------------------------------------------------------------------------------------
// 2. A failing post-staging hook; a `-` hook
// ---------------------------------------------------------------------------------------------

#[test]
fn a_failing_post_staging_hook_stops_the_run_with_exit_6_and_its_position() {
    let yml = r#"name: failhook
hooks:
  post-staging:
    - "-false"
    - echo "after the ignored failure" >> @ROOT@/marks
    - sh -c 'echo "about to fail"; exit 3'
    - echo never >> @ROOT@/marks
processes:
  web: echo web >> @ROOT@/marks; exec python3 server.py
"#;
    let p = Project::new(&[("stackato.yml", yml), ("server.py", SERVER_PY)]);
    let mut s = p.run(&[]);
    s.expect_exit(6, SHORT);
    let err = s.stderr();
    let (line, col) = line_col(yml, "sh -c 'echo");
    s.assert_err_has(&format!("stackato.yml:{line}:{col}"));
    let msg = err
        .lines()
        .find(|l| l.contains("post-staging hook #3"))
        .unwrap_or_else(|| panic!("no message naming the hook\n{}", s.dump()));
    assert!(
        msg.contains("sh -c 'echo \"about to fail\"; exit 3'"),
        "{msg}"
    );
    assert!(msg.contains("exit status 3"), "{msg}");
    // The failing hook's output, and the ignored one's note.
    s.assert_out_has("staging | about to fail");
    s.assert_out_has("ignored because it starts with `-`");
    // The `-` hook did not stop staging, the failing one did; nothing was started.
    assert_eq!(
        p.read("marks"),
        "after the ignored failure\n",
        "{}",
        s.dump()
    );
    assert!(!s.stderr().contains("==> running"), "{}", s.dump());
    assert!(!s.stdout().contains("web.0"), "{}", s.dump());
}

// ---------------------------------------------------------------------------------------------
// 3. Pre-running: exports reach the process, background jobs die at shutdown
// ---------------------------------------------------------------------------------------------

#[test]
fn pre_running_exports_reach_the_web_and_its_background_jobs_die_at_shutdown() {
    let p = Project::new(&[
        (
            "stackato.yml",
            r#"name: prerun
hooks:
  pre-running:
    - export FOO=bar
    - sleep 300 & echo $! > @ROOT@/bg.pid
processes:
  web: python3 server.py --pidfile @ROOT@/web.pid
"#,
        ),
        ("server.py", SERVER_PY),
    ]);
    let mut s = p.run(&[]);
    let port = s.ready("web.0", SHORT);
    let env = env_of(port);
    assert_eq!(
        env.get("FOO").and_then(|v| v.as_str()),
        Some("bar"),
        "FOO exported by a pre-running hook did not reach the web process"
    );
    let bg = read_pid(&p.file("bg.pid"), SHORT);
    let web = read_pid(&p.file("web.pid"), SHORT);
    assert!(alive(bg), "the background job died before shutdown");
    s.interrupt(CTRL_C);
    assert_all_dead(
        &[
            ("the pre-running background job".into(), bg),
            ("web".into(), web),
        ],
        SHORT,
        "the run ended",
    );
}

// ---------------------------------------------------------------------------------------------
// 3b. A clean environment: the host's variables stay out unless allowed or asked for
// ---------------------------------------------------------------------------------------------

/// `NAME=value` lines of an `env` dump, as a map.
fn env_lines(text: &str) -> std::collections::BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// Run an app whose post-staging hook, pre-running hook and web process each dump their
/// environment (the hooks into files outside the app, the web over HTTP), with
/// FOO_FROM_HOST and TERM set on the `run` command; `env_yml` goes into the manifest.
fn host_env_seen(
    name: &str,
    env_yml: &str,
    args: &[&str],
) -> [std::collections::BTreeMap<String, String>; 3] {
    let p = Project::new(&[
        (
            "stackato.yml",
            &format!(
                "name: {name}\n{env_yml}hooks:\n  post-staging:\n    - env > @ROOT@/staging.env\n  pre-running:\n    - env > @ROOT@/prerun.env\nprocesses:\n  web: python3 server.py\n"
            ),
        ),
        ("server.py", SERVER_PY),
    ]);
    let mut s = p.run_env(
        args,
        &[("FOO_FROM_HOST", "from-the-shell"), ("TERM", "xterm-host")],
    );
    let port = s.ready("web.0", SHORT);
    let web: std::collections::BTreeMap<String, String> = env_of(port)
        .into_iter()
        .map(|(k, v)| (k, v.as_str().unwrap_or_default().to_string()))
        .collect();
    s.interrupt(CTRL_C);
    [
        env_lines(&p.read("staging.env")),
        env_lines(&p.read("prerun.env")),
        web,
    ]
}

#[test]
fn a_host_variable_reaches_hooks_and_processes_only_with_inherit_or_inherit_env() {
    let what = [
        "the post-staging hook",
        "the pre-running hook",
        "the web process",
    ];
    for (env, who) in host_env_seen("hostclean", "", &["--no-watch"])
        .iter()
        .zip(what)
    {
        assert_eq!(
            env.get("FOO_FROM_HOST"),
            None,
            "{who} saw a host variable that is not in the allowlist"
        );
        assert_eq!(
            env.get("TERM").map(String::as_str),
            Some("xterm-host"),
            "{who} lost TERM, which is in the allowlist"
        );
        let path = env.get("PATH").cloned().unwrap_or_default();
        let host_path = std::env::var("PATH").unwrap_or_default();
        assert!(
            path.ends_with(&host_path) && path != host_path,
            "{who}: PATH is not the platform's entries then the host's: {path}"
        );
        assert!(
            env.get("HOME")
                .is_some_and(|h| h != &std::env::var("HOME").unwrap_or_default()),
            "{who} got the host's HOME"
        );
    }
    let inherit = "env:\n  FOO_FROM_HOST:\n    default: not-from-the-shell\n    inherit: true\n";
    for (env, who) in host_env_seen("hostinherit", inherit, &["--no-watch"])
        .iter()
        .zip(what)
    {
        assert_eq!(
            env.get("FOO_FROM_HOST").map(String::as_str),
            Some("from-the-shell"),
            "{who}: `inherit: true` did not pass the host's value"
        );
    }
    for (env, who) in host_env_seen("hostall", "", &["--no-watch", "--inherit-env"])
        .iter()
        .zip(what)
    {
        assert_eq!(
            env.get("FOO_FROM_HOST").map(String::as_str),
            Some("from-the-shell"),
            "{who}: --inherit-env did not bring the host environment back"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 4. A failing pre-running hook
// ---------------------------------------------------------------------------------------------

#[test]
fn a_failing_pre_running_hook_stops_the_run_with_exit_6() {
    let p = Project::new(&[
        (
            "stackato.yml",
            r#"name: prefail
hooks:
  pre-running:
    - "-false"
    - echo first
    - sh -c 'echo "pre-running fails"; exit 4'
    - echo never >> @ROOT@/marks
processes:
  web: echo web >> @ROOT@/marks; exec python3 server.py
"#,
        ),
        ("server.py", SERVER_PY),
    ]);
    let mut s = p.run(&[]);
    s.expect_exit(6, SHORT);
    let err = s.stderr();
    let msg = err
        .lines()
        .find(|l| l.contains("pre-running hook #3"))
        .unwrap_or_else(|| panic!("no message naming the pre-running hook\n{}", s.dump()));
    assert!(msg.contains("web.0"), "{msg}");
    assert!(msg.contains("exit status 4"), "{msg}");
    assert!(
        msg.contains("sh -c 'echo \"pre-running fails\"; exit 4'"),
        "{msg}"
    );
    assert_eq!(
        p.read("marks"),
        "",
        "the web or a later hook ran\n{}",
        s.dump()
    );
    assert!(!err.contains("ready at"), "{}", s.dump());
    // The `-` hook's failure did not stop the list; the output of the hooks is the process's.
    assert_eq!(
        s.lines_of("web.0"),
        ["first", "pre-running fails"],
        "{}",
        s.dump()
    );
}

// ---------------------------------------------------------------------------------------------
// Interrupted staging, service failures
// ---------------------------------------------------------------------------------------------

#[test]
fn ctrl_c_during_a_staging_hook_kills_it_and_exits_130() {
    let p = Project::new(&[
        (
            "stackato.yml",
            "name: slowstage\nhooks:\n  pre-staging:\n    - echo $$ > @ROOT@/hook.pid; exec sleep 100\nprocesses:\n  web: echo web >> @ROOT@/marks; exec python3 server.py\n",
        ),
        ("server.py", SERVER_PY),
    ]);
    let mut s = p.run(&[]);
    let hook = read_pid(&p.file("hook.pid"), SHORT);
    s.signal(Signal::SIGINT);
    s.expect_exit(130, SHORT);
    s.assert_err_has("was interrupted");
    assert_dead("the hook", hook, SHORT, "exit 130");
    assert_eq!(p.read("marks"), "", "the web started\n{}", s.dump());
    // An interrupted staging is not a staging: the next run stages again.
    std::fs::remove_file(p.file("hook.pid")).unwrap();
    let mut s = p.run(&[]);
    let hook2 = read_pid(&p.file("hook.pid"), SHORT);
    assert!(alive(hook2), "the hook of the second run");
    s.signal(Signal::SIGTERM);
    s.expect_exit(143, SHORT);
    assert_dead("the hook", hook2, SHORT, "exit 143");
}

/// A server that starts and never answers: a shell script named `memcached`, the only program
/// of `STACKATO_LOCAL_SERVER_PATH` (readable by the services' user).
fn mute_memcached() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::tempdir().unwrap();
    let script = d.path().join("memcached");
    std::fs::write(
        &script,
        "#!/bin/sh\n# never answers\nwhile :; do sleep 1; done\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(d.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    d
}

#[test]
fn ctrl_c_while_a_service_does_not_answer_yet_stops_it_and_exits_130() {
    let p = Project::new(&[(
        "stackato.yml",
        "name: muteservice\nservices:\n  mc: memcached\nprocesses:\n  web: echo web >> @ROOT@/marks; exec sleep 1000\n",
    )])
    .with_services(&["mc"]);
    let path = mute_memcached();
    let env = [("STACKATO_LOCAL_SERVER_PATH", path.path().to_str().unwrap())];
    p.cmd(&["env"]).code(0);
    // The service's wait lasts the default 60 s: only the Ctrl-C ends it.
    let mut s = p.run_env(&[], &env);
    let flag = format!("memcached -l 127.0.0.1 -p {} ", p.service_port("mc"));
    let deadline = Instant::now() + SHORT;
    let server = loop {
        let found = common::procs::pids()
            .into_iter()
            .find(|&pid| alive(pid) && common::procs::cmdline(pid).contains(&flag));
        if let Some(pid) = found {
            break pid;
        }
        assert!(Instant::now() < deadline, "no server started\n{}", s.dump());
        std::thread::sleep(Duration::from_millis(20));
    };
    s.signal(Signal::SIGINT);
    s.expect_exit(130, SHORT);
    s.assert_err_has("interrupted while waiting for mc to answer");
    assert_dead("the server that did not answer", server, SHORT, "exit 130");
    assert_eq!(p.read("marks"), "", "the web started\n{}", s.dump());
}

#[test]
fn a_second_run_of_the_same_project_is_refused() {
    let p = Project::new(&[
        (
            "stackato.yml",
            "name: once\nprocesses:\n  web: python3 server.py\n",
        ),
        ("server.py", SERVER_PY),
    ]);
    let mut first = p.run(&[]);
    first.ready("web.0", SHORT);
    let mut second = p.run(&[]);
    second.expect_exit(64, SHORT);
    second.assert_err_has("another `stackato-local run` is already running");
    // The first one is unharmed.
    first.wait_for(Stream::Err, "ready at", SHORT);
    assert!(!first.poll_exit(), "{}", first.dump());
    first.interrupt(CTRL_C);
}

#[test]
fn a_service_that_cannot_run_here_fails_with_exit_5() {
    let p = Project::new(&[(
        "stackato.yml",
        "name: mongo\nservices:\n  ${name}-docs: mongodb\nprocesses:\n  web: echo web >> @ROOT@/marks; sleep 100\n",
    )])
    .with_services(&["mongo-docs"]);
    let mut s = p.run(&[]);
    s.expect_exit(5, SHORT);
    s.assert_err_has("mongo-docs");
    assert!(!s.stderr().contains("==> staging"), "{}", s.dump());
    assert_eq!(p.read("marks"), "");
}

// ---------------------------------------------------------------------------------------------
// 5. The staging cache
// ---------------------------------------------------------------------------------------------

#[test]
fn staging_is_cached_until_the_manifest_changes_or_restage_is_asked_and_edits_are_synced() {
    let p = Project::new(&[
        (
            "stackato.yml",
            r#"name: cache
hooks:
  post-staging:
    - echo staged >> @ROOT@/post
processes:
  web: python3 server.py
ignores:
  - "*.tmp"
  - scratch/
"#,
        ),
        ("server.py", SERVER_PY),
        ("data.txt", "one\n"),
        ("notes.tmp", "scratch\n"),
        ("scratch/x", "x\n"),
    ]);
    const SKIPPED: &str = "==> staging cache: the manifest and requirements did not change since the last staging; skipped";
    let post_count = || p.read("post").lines().count();
    let once = |args: &[&str]| -> String {
        let mut s = p.run(args);
        s.ready("web.0", SHORT);
        s.interrupt(CTRL_C)
    };
    let restaged = |args: &[&str]| -> String {
        let mut s = p.run(args);
        s.wait_err("==> staged cache", SHORT);
        s.ready("web.0", SHORT);
        s.interrupt(CTRL_C)
    };
    // A run after an edit: the app starts on the last staged copy while the checkout is
    // compared with it in the background, then the edit is synced in and the app restarted.
    let resynced = |args: &[&str]| -> String {
        let mut s = p.run(args);
        s.wait_err("changed since the staged copy was made", SHORT);
        // The restart may come before the first start was ready: wait for one more.
        let n = s.stderr().matches("==> web.0 ready at").count();
        s.ready_nth("web.0", n + 1, SHORT);
        s.interrupt(CTRL_C)
    };

    let err = once(&[]);
    assert!(err.contains("==> staged cache"), "{err}");
    assert_eq!(post_count(), 1);

    let err = once(&[]);
    assert!(err.contains(SKIPPED), "second run not skipped:\n{err}");
    assert_eq!(post_count(), 1, "post-staging ran again:\n{err}");

    // An ignored file, and a file in an ignored directory, change: still cached.
    write(&p.app, "notes.tmp", b"changed, and longer than before\n");
    write(&p.app, "scratch/x", b"changed, and longer than before\n");
    write(&p.app, "scratch/new", b"new\n");
    let err = once(&[]);
    assert!(
        err.contains(SKIPPED),
        "a file matched by ignores: made it restage:\n{err}"
    );
    assert_eq!(post_count(), 1);

    // A pushed file changes: synced into the staged copy and the app restarted on it, not
    // restaged (the hooks do not run again; a push would, `--restage` does).
    let copy = p.app.join(".stackato-local/apps/cache/g1/0/app/data.txt");
    write(&p.app, "data.txt", b"two, and longer than before\n");
    let err = resynced(&[]);
    assert!(err.contains(SKIPPED), "{err}");
    assert!(
        err.contains("data.txt changed since the staged copy was made: syncing it in"),
        "{err}"
    );
    assert_eq!(post_count(), 1);
    assert_eq!(
        std::fs::read_to_string(&copy).unwrap(),
        "two, and longer than before\n"
    );

    // Only its mtime changes (same size): synced too.
    let f = std::fs::File::options()
        .write(true)
        .open(p.app.join("data.txt"))
        .unwrap();
    f.set_modified(std::time::SystemTime::now() + Duration::from_secs(5))
        .unwrap();
    drop(f);
    let err = resynced(&[]);
    assert!(
        err.contains("data.txt changed since the staged copy"),
        "{err}"
    );
    assert_eq!(post_count(), 1);

    // Deleted in the checkout: deleted in the copy.
    std::fs::remove_file(p.app.join("data.txt")).unwrap();
    let err = resynced(&[]);
    assert!(
        err.contains("data.txt changed since the staged copy"),
        "{err}"
    );
    assert!(
        !copy.exists(),
        "a deleted file is still in the copy:\n{err}"
    );

    let err = restaged(&["--restage"]);
    assert!(
        err.contains("==> staged cache") && !err.contains(SKIPPED),
        "--restage did not restage:\n{err}"
    );
    assert_eq!(post_count(), 2);
    // The new generation replaced the old one.
    assert!(p.app.join(".stackato-local/apps/cache/g2/0/app").is_dir());
    assert!(!p.app.join(".stackato-local/apps/cache/g1").exists());

    let err = once(&[]);
    assert!(err.contains(SKIPPED), "{err}");
    assert_eq!(post_count(), 2);

    // The manifest changes: restaged before anything starts (never on the old record).
    let manifest = std::fs::read_to_string(p.app.join("stackato.yml")).unwrap();
    write(
        &p.app,
        "stackato.yml",
        format!("{manifest}# edited\n").as_bytes(),
    );
    let err = once(&[]);
    assert!(
        err.contains("==> staged cache") && !err.contains(SKIPPED),
        "a changed manifest did not restage first:\n{err}"
    );
    assert_eq!(post_count(), 3);
}

/// A directory for `PATH` with links to the few host programs a run of [`SERVER_PY`] needs,
/// and nothing else (no npm).
fn bare_bin(root: &Path) -> std::path::PathBuf {
    let bin = root.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for tool in ["python3", "sh", "bash", "env"] {
        let found = ["/usr/local/bin", "/usr/bin", "/bin"]
            .iter()
            .map(|d| Path::new(d).join(tool))
            .find(|p| p.is_file());
        if let Some(p) = found {
            std::os::unix::fs::symlink(p, bin.join(tool)).unwrap();
        }
    }
    bin
}

#[test]
fn a_step_skipped_for_a_missing_tool_runs_once_the_tool_is_there() {
    let p = Project::new(&[
        (
            "stackato.yml",
            "name: npmlater\nprocesses:\n  web: python3 server.py\nhooks:\n  post-staging:\n    - echo staged >> @ROOT@/post\n",
        ),
        ("server.py", SERVER_PY),
        (
            "package.json",
            "{\"name\": \"npmlater\", \"version\": \"1.0.0\"}\n",
        ),
    ]);
    let bin = bare_bin(&p.root);
    let path = bin.to_str().unwrap().to_string();
    let env = [("PATH", path.as_str())];
    let once = || -> String {
        let mut s = p.run_env(&[], &env);
        s.ready("web.0", SHORT);
        s.interrupt(CTRL_C)
    };

    // No npm: the run goes on, with a note.
    let err = once();
    assert!(
        err.contains("npm install skipped: npm is not installed"),
        "no note about the skipped npm install:\n{err}"
    );
    assert_eq!(p.read("post").lines().count(), 1);

    // Still no npm: nothing to retry, the staging is reused, and the skip is recalled.
    let err = once();
    assert!(
        err.contains(
            "the manifest and requirements did not change since the last staging; skipped"
        ),
        "restaged although nothing changed:\n{err}"
    );
    assert!(
        err.contains("the last staging skipped npm install"),
        "the reused staging does not recall the skipped step:\n{err}"
    );
    assert_eq!(p.read("post").lines().count(), 1);
    assert!(!p.root.join("npm-ran").exists());

    // npm appears: the next run (no --restage) stages again and runs it.
    let npm = bin.join("npm");
    std::fs::write(
        &npm,
        format!("#!/bin/sh\necho \"$@\" >> {}/npm-ran\n", p.root.display()),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&npm, std::fs::Permissions::from_mode(0o755)).unwrap();
    let err = once();
    assert!(
        p.root.join("npm-ran").is_file(),
        "npm did not run once it was installed:\n{err}"
    );
    assert!(
        p.read("npm-ran").starts_with("install"),
        "{}",
        p.read("npm-ran")
    );
    assert!(!err.contains("npm install skipped"), "{err}");
    assert_eq!(p.read("post").lines().count(), 2);

    // Now done: the next run reuses the staging without running npm again.
    let err = once();
    assert!(
        err.contains(
            "the manifest and requirements did not change since the last staging; skipped"
        ),
        "{err}"
    );
    assert!(!err.contains("the last staging skipped"), "{err}");
    assert_eq!(p.read("npm-ran").lines().count(), 1);
}

// ---------------------------------------------------------------------------------------------
// 6. Instances
// ---------------------------------------------------------------------------------------------

#[test]
fn two_instances_run_on_their_own_ports_with_their_own_index() {
    let p = Project::new(&[
        (
            "stackato.yml",
            "name: twice\ninstances: 2\nprocesses:\n  web: python3 server.py\n",
        ),
        ("server.py", SERVER_PY),
    ]);
    let mut s = p.run(&[]);
    let p0 = s.ready("web.0", SHORT);
    let p1 = s.ready("web.1", SHORT);
    assert_ne!(p0, p1, "both instances got port {p0}");
    for (i, port) in [(0, p0), (1, p1)] {
        let env = env_of(port);
        assert_eq!(
            env.get("PORT").and_then(|v| v.as_str()),
            Some(port.to_string().as_str())
        );
        let va: serde_json::Value = serde_json::from_str(
            env.get("VCAP_APPLICATION")
                .and_then(|v| v.as_str())
                .expect("VCAP_APPLICATION"),
        )
        .expect("VCAP_APPLICATION is JSON");
        assert_eq!(va["instance_index"], i, "instance {i}: {va:#}");
        assert_eq!(va["port"], port, "instance {i}: {va:#}");
        s.wait_for(
            Stream::Out,
            &format!("web.{i}   | listening on {port} pid "),
            SHORT,
        );
    }
    s.interrupt(CTRL_C);
}

// ---------------------------------------------------------------------------------------------
// 7. A worker
// ---------------------------------------------------------------------------------------------

#[test]
fn a_worker_runs_its_command_without_port_or_readiness_wait() {
    let p = Project::new(&[
        (
            "stackato.yml",
            "name: work\nprocesses:\n  web: ~\ncommand: python3 worker.py\n",
        ),
        (
            "worker.py",
            "import os, time\nprint('worker up, PORT=%s' % os.environ.get('PORT', '(unset)'), flush=True)\ntime.sleep(300)\n",
        ),
    ]);
    let mut s = p.run(&[]);
    s.wait_for(Stream::Out, "worker.0 | worker up", SHORT);
    s.wait_for(Stream::Err, "==> running", SHORT);
    let err = s.interrupt(CTRL_C);
    assert!(!err.contains("ready at"), "a worker got a URL:\n{err}");
    assert!(!err.contains("did not accept connections"), "{err}");
    assert!(!s.stdout().contains("web.0"), "{}", s.dump());
}

// ---------------------------------------------------------------------------------------------
// 8. Several apps, depends-on
// ---------------------------------------------------------------------------------------------

#[test]
fn an_app_starts_only_after_the_app_it_depends_on_answers() {
    let p = Project::new(&[
        (
            "stackato.yml",
            r#"applications:
  - name: front
    path: front
    depends-on: back
    processes:
      web: python3 server.py --start-time @ROOT@/front.start
  - name: back
    path: back
    processes:
      web: python3 server.py --delay 1.5 --listen-time @ROOT@/back.listen
"#,
        ),
        // Each app carries what it runs: a push uploads the app's directory only.
        ("front/server.py", SERVER_PY),
        ("back/server.py", SERVER_PY),
    ]);
    let mut s = p.run(&[]);
    let back = s.ready("back:web.0", SHORT);
    let front = s.ready("front:web.0", SHORT);
    let err = s.stderr();
    assert!(
        err.find("back:web.0 ready at") < err.find("front:web.0 ready at"),
        "{err}"
    );
    let t = |f: &str| -> f64 {
        p.read(f)
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("no time in {f}\n{}", s.dump()))
    };
    let (back_listen, front_start) = (t("back.listen"), t("front.start"));
    assert!(
        front_start >= back_listen,
        "front started at {front_start}, before back listened at {back_listen}\n{}",
        s.dump()
    );
    assert_eq!(http_get(back, "/").1, "ok");
    assert_eq!(http_get(front, "/").1, "ok");
    s.wait_line("back:web.0", "listening on", 1, SHORT);
    s.wait_line("front:web.0", "listening on", 1, SHORT);
    s.interrupt(CTRL_C);
}

// ---------------------------------------------------------------------------------------------
// 9. Crashes
// ---------------------------------------------------------------------------------------------

#[test]
fn a_crashed_web_is_restarted_after_a_backoff() {
    let p = Project::new(&[(
        "stackato.yml",
        // Each start's and each exit's wall-clock time, as the app's processes saw them.
        "name: crashy\nhooks:\n  pre-running:\n    - echo \"start $(date +%s.%N)\" >> @ROOT@/starts\nprocesses:\n  web: echo \"crash run $$\"; date +%s.%N >> @ROOT@/exits; exit 1\n",
    )]);
    let times = |f: &str| -> Vec<f64> {
        p.read(f)
            .lines()
            .map(|l| {
                let t = l.trim_start_matches("start ");
                t.parse()
                    .unwrap_or_else(|_| panic!("not a time in {f}: {l:?}"))
            })
            .collect()
    };
    let mut s = p.run(&[]);
    s.wait_line("web.0", "crash run", 1, SHORT);
    // (How long it ran, `after 0.0 s` when all is well, is the machine's business.)
    s.wait_for(Stream::Err, "s; restarting in 1 s", SHORT);
    let said = s.err_lines("restarting in 1 s");
    assert!(
        said[0].contains("web.0 exited with status 1 after "),
        "{}",
        s.dump()
    );
    // The second start, about a second after the first exit: measured by the processes
    // themselves (the moment this test reads a line depends on how busy the machine is).
    s.wait_line("web.0", "crash run", 2, SHORT);
    let after = times("starts")[1] - times("exits")[0];
    assert!(
        after >= 0.7,
        "restarted {after:.3} s after the exit, not after the 1 s backoff\n{}",
        s.dump()
    );
    s.wait_for(Stream::Err, "restarting in 2 s", SHORT);
    s.interrupt(CTRL_C);
    let runs = s.lines_of("web.0");
    assert!(runs.len() >= 2, "{runs:?}");
    assert_ne!(runs[0], runs[1], "not a new process: {runs:?}");
    // The pre-running hooks ran again before each start, as on the platform.
    assert_eq!(
        p.read("starts").lines().count(),
        runs.len(),
        "pre-running hooks vs starts\n{}",
        s.dump()
    );
}

#[test]
fn with_exit_on_crash_a_crash_ends_the_run_with_exit_7() {
    let p = Project::new(&[
        (
            "stackato.yml",
            // One pid file per instance (two writing one file race on its temp name).
            "name: crashy\nprocesses:\n  web: python3 server.py --delay 0.5 --pidfile @ROOT@/web.$PORT.pid\ninstances: 2\n",
        ),
        ("server.py", SERVER_PY),
    ]);
    let mut s = p.run(&["--exit-on-crash"]);
    let port = s.ready("web.0", SHORT);
    s.ready("web.1", SHORT);
    // One instance dies.
    let pid = read_pid(&p.file(&format!("web.{port}.pid")), SHORT);
    kill(Pid::from_raw(pid), Signal::SIGKILL).unwrap();
    s.expect_exit(7, SHORT);
    let err = s.stderr();
    assert!(
        err.contains("exited with status 137") && err.contains("--exit-on-crash"),
        "{}",
        s.dump()
    );
    assert!(!err.contains("restarting in"), "{}", s.dump());
}

#[test]
fn with_exit_on_crash_a_web_that_exits_ends_the_run_with_exit_7() {
    let p = Project::new(&[(
        "stackato.yml",
        "name: crashy\nprocesses:\n  web: echo \"crash run\"; exit 1\n",
    )]);
    let mut s = p.run(&["--exit-on-crash"]);
    s.expect_exit(7, SHORT);
    assert_eq!(s.lines_of("web.0"), ["crash run"], "{}", s.dump());
    s.assert_err_has("web.0 exited with status 1");
    s.assert_err_has("(--exit-on-crash)");
}

/// The stderr from the flapping verdict of `name` on (it ends with the process's last lines).
#[track_caller]
fn flapping_message(s: &common::session::Session, name: &str) -> String {
    let err = s.stderr();
    let at = err
        .find(&format!("{name} is flapping: "))
        .unwrap_or_else(|| panic!("no flapping verdict for {name}\n{}", s.dump()));
    err[at..].to_string()
}

#[test]
fn a_web_that_exits_before_listening_is_flapping_and_ends_no_watch_with_exit_7() {
    let p = Project::new(&[(
        "stackato.yml",
        "name: crashy\nprocesses:\n  web: echo \"crash run $$\"; echo \"cannot import settings\" >&2; exit 1\n",
    )]);
    let mut s = p.run(&["--no-watch"]);
    s.expect_exit(7, Duration::from_secs(60));
    // Three exits before its port ever answered: it cannot start.
    let runs = s.lines_of("web.0");
    let starts: Vec<&String> = runs.iter().filter(|l| l.starts_with("crash run")).collect();
    assert_eq!(starts.len(), 3, "{}", s.dump());
    let msg = flapping_message(&s, "web.0");
    assert!(
        msg.contains("exited 3 times in a row before its port accepted connections"),
        "{msg}"
    );
    assert!(msg.contains("(last status 1)"), "{msg}");
    // The last lines are the crashed process's, its last run included.
    let last = starts[2].as_str();
    assert!(msg.contains("Last lines:\n    "), "{msg}");
    assert!(
        msg.contains(last),
        "the last run's line {last:?} is not in:\n{msg}"
    );
    assert!(msg.contains("cannot import settings"), "{msg}");
    assert!(!s.stderr().contains("restarting in 4 s"), "{}", s.dump());
}

#[test]
fn a_worker_that_keeps_crashing_is_flapping_after_five_exits() {
    let p = Project::new(&[(
        "stackato.yml",
        "name: crashy\nprocesses:\n  web: ~\ncommand: echo \"worker run $$\"; exit 3\n",
    )]);
    let mut s = p.run(&["--no-watch"]);
    s.expect_exit(7, Duration::from_secs(120));
    let runs = s.lines_of("worker.0");
    assert_eq!(runs.len(), 5, "{}", s.dump());
    // The backoff before the verdict: 1 s, 2 s, 4 s, 8 s.
    for delay in ["restarting in 1 s", "restarting in 2 s"] {
        s.assert_err_has(delay);
    }
    s.assert_err_has("next restart in 4 s");
    s.assert_err_has("next restart in 8 s");
    let msg = flapping_message(&s, "worker.0");
    assert!(
        msg.contains("exited 5 times in a row, each time after less than 30 s of running"),
        "{msg}"
    );
    assert!(msg.contains("(last status 3)"), "{msg}");
    assert!(msg.contains(runs[4].as_str()), "{msg}");
}

#[test]
fn when_watching_a_flapping_web_waits_for_a_change_then_tries_again() {
    let p = Project::new(&[
        (
            "stackato.yml",
            "name: crashy\nprocesses:\n  web: echo \"crash run $(cat version.txt)\"; exit 1\n",
        ),
        ("version.txt", "v1\n"),
    ]);
    let mut s = p.run(&[]);
    s.wait_err(
        "web.0 stays down until a file changes (or `stackato-local restart`)",
        Duration::from_secs(60),
    );
    // stdout and stderr are two pipes: the third run's line may reach us after the verdict.
    s.wait_line("web.0", "crash run v1", 3, SHORT);
    assert_eq!(s.lines_of("web.0"), ["crash run v1"; 3], "{}", s.dump());
    p.edit("version.txt", "v2\n");
    // A fresh start: its history starts over (1 s, 2 s, then the verdict again).
    s.wait_line("web.0", "crash run v2", 3, Duration::from_secs(60));
    s.wait_count(Stream::Err, "is flapping", 2, Duration::from_secs(60));
    assert!(!s.poll_exit(), "the run ended\n{}", s.dump());
    s.interrupt(CTRL_C);
}

// ---------------------------------------------------------------------------------------------
// 10. Readiness
// ---------------------------------------------------------------------------------------------

#[test]
fn a_web_without_a_route_is_up_while_it_runs_and_never_port_checked() {
    // `url: []` and `no-route: true`: up while the process runs, as workers are (spec §4.1).
    let app = |name: &str, route: &str| {
        format!(
            "  - name: {name}\n    path: {name}\n    {route}\n    timeout: 1\n    processes:\n      web: echo \"on $PORT\"; sleep 4; echo $$ > @ROOT@/{name}.pid; exec sleep 100\n"
        )
    };
    let yml = format!(
        "applications:\n{}{}",
        app("quiet", "url: []"),
        app("hidden", "no-route: true")
    );
    let p = Project::new(&[
        ("stackato.yml", yml.as_str()),
        ("quiet/README", "no route\n"),
        ("hidden/README", "no route either\n"),
    ]);
    let mut s = p.run(&["--no-watch"]);
    // Written 4 s after the start, well past `timeout: 1`: the process was not killed.
    let pids = p.pids(&[("quiet", "quiet.pid"), ("hidden", "hidden.pid")]);
    assert!(!s.poll_exit(), "the run ended\n{}", s.dump());
    assert_all_alive(&pids);
    let err = s.stderr();
    assert!(!err.contains("did not accept connections"), "{}", s.dump());
    assert!(!err.contains("ready at"), "{}", s.dump());
    s.assert_err_has("note: quiet has no route: its web process is up while it runs");
    s.assert_err_has("note: hidden has no route");
    s.interrupt(CTRL_C);
    assert_all_dead(&pids, SHORT, "exit 130");
}

#[test]
fn a_web_that_never_listens_fails_the_health_check_with_exit_7() {
    let p = Project::new(&[(
        "stackato.yml",
        "name: deaf\ntimeout: 2\nprocesses:\n  web: echo \"port=$PORT\"; echo $$ > @ROOT@/web.pid; exec sleep 100\n",
    )]);
    let mut s = p.run(&[]);
    s.expect_exit(7, SHORT);
    // Not before the manifest's timeout (a lower bound: the behaviour, never a speed limit),
    // counted from when the web wrote its pid file (the test seeing the exit late can only
    // make it longer).
    let started = std::fs::metadata(p.file("web.pid"))
        .and_then(|m| m.modified())
        .unwrap_or_else(|e| panic!("web.pid: {e}\n{}", s.dump()));
    let took = started.elapsed().unwrap_or_default();
    assert!(
        took >= Duration::from_millis(1500),
        "exit 7 came {took:?} after the start (timeout: 2)\n{}",
        s.dump()
    );
    let out = s.stdout();
    let port = out
        .lines()
        .find_map(|l| l.strip_prefix("web.0   | port="))
        .unwrap_or_else(|| panic!("the web did not print its port\n{}", s.dump()))
        .to_string();
    let err = s.stderr();
    let msg = err
        .lines()
        .find(|l| l.contains("did not accept connections"))
        .unwrap_or_else(|| panic!("no readiness message\n{}", s.dump()));
    assert!(msg.contains(&format!("port {port} ")), "{msg}");
    assert!(msg.contains("health check"), "{msg}");
    assert!(msg.contains("within 2 s"), "{msg}");
    let pid = read_pid(&p.file("web.pid"), SHORT);
    assert_dead("web", pid, SHORT, "exit 7");
}

// ---------------------------------------------------------------------------------------------
// 11. Shutdown
// ---------------------------------------------------------------------------------------------

#[test]
fn ctrl_c_stops_every_process_and_exits_130() {
    let p = Project::new(&[
        (
            "stackato.yml",
            r#"name: stopme
processes:
  web: python3 server.py --pidfile @ROOT@/web.pid --child-pidfile @ROOT@/child.pid
"#,
        ),
        ("server.py", SERVER_PY),
    ]);
    let mut s = p.run(&[]);
    s.ready("web.0", SHORT);
    let pids = p.pids(&[("web", "web.pid"), ("the web's child", "child.pid")]);
    assert_all_alive(&pids);
    let err = s.interrupt(CTRL_C);
    assert!(err.contains("==> SIGINT received: stopping"), "{err}");
    assert!(err.contains("==> stopped (exit status 130)"), "{err}");
    assert_all_dead(&pids, SHORT, "exit 130");
    let left = procs_under(&p.root);
    assert!(
        left.is_empty(),
        "processes left in the app dir: {:?}",
        cmdlines(&left)
    );
}

#[test]
fn sigterm_stops_every_process_and_exits_143() {
    let p = Project::new(&[
        (
            "stackato.yml",
            "name: termme\nprocesses:\n  web: python3 server.py --pidfile @ROOT@/web.pid\n",
        ),
        ("server.py", SERVER_PY),
    ]);
    let mut s = p.run(&[]);
    s.ready("web.0", SHORT);
    let web = read_pid(&p.file("web.pid"), SHORT);
    s.signal(Signal::SIGTERM);
    s.expect_exit(143, SHORT);
    assert_dead("web", web, SHORT, "exit 143");
}

#[test]
fn a_daemon_started_by_the_web_is_stopped_at_shutdown() {
    let p = Project::new(&[
        (
            "stackato.yml",
            "name: daemons\nprocesses:\n  web: python3 server.py --daemon-pidfile @ROOT@/daemon.pid\n",
        ),
        ("server.py", SERVER_PY),
    ]);
    let mut s = p.run(&[]);
    s.ready("web.0", SHORT);
    let daemon = read_pid(&p.file("daemon.pid"), SHORT);
    assert!(alive(daemon));
    s.interrupt(CTRL_C);
    assert_dead(
        "a daemon (own session) of the web",
        daemon,
        SHORT,
        "exit 130",
    );
}

#[test]
fn a_process_that_ignores_sigterm_is_killed_after_the_grace_period() {
    let p = Project::new(&[
        (
            "stackato.yml",
            "name: stubborn\nprocesses:\n  web: python3 server.py --ignore-term --pidfile @ROOT@/web.pid\n",
        ),
        ("server.py", SERVER_PY),
    ]);
    let mut s = p.run(&["--grace", "1"]);
    s.ready("web.0", SHORT);
    let web = read_pid(&p.file("web.pid"), SHORT);
    let took = s.stop(Signal::SIGINT, 130, SHORT);
    // Not before the grace period (a lower bound: the behaviour, never a speed limit).
    assert!(
        took >= Duration::from_millis(900),
        "stopped after {took:?} with --grace 1\n{}",
        s.dump()
    );
    s.assert_err_has("web.0: did not stop within the grace period; killed");
    assert_dead("web", web, SHORT, "exit 130");
}

#[test]
fn a_second_ctrl_c_kills_at_once() {
    let p = Project::new(&[
        (
            "stackato.yml",
            "name: stubborn\nprocesses:\n  web: python3 server.py --ignore-term --pidfile @ROOT@/web.pid\n",
        ),
        ("server.py", SERVER_PY),
    ]);
    let mut s = p.run(&["--grace", "60"]);
    s.ready("web.0", SHORT);
    let web = read_pid(&p.file("web.pid"), SHORT);
    s.signal(Signal::SIGINT);
    s.wait_for(Stream::Err, "SIGINT received: stopping (grace 60 s", SHORT);
    s.signal(Signal::SIGINT);
    s.expect_exit(130, SHORT);
    s.assert_err_has("second Ctrl-C: killing everything now");
    assert_dead("web", web, SHORT, "exit 130");
}

#[test]
fn when_the_supervisor_is_killed_a_daemon_of_the_web_dies_too() {
    let p = Project::new(&[
        (
            "stackato.yml",
            "name: daemons\nprocesses:\n  web: python3 server.py --daemon-pidfile @ROOT@/daemon.pid --pidfile @ROOT@/web.pid\n",
        ),
        ("server.py", SERVER_PY),
    ]);
    let mut s = p.run(&[]);
    s.ready("web.0", SHORT);
    let pids = p.pids(&[
        ("web", "web.pid"),
        ("a daemon (own session) of the web", "daemon.pid"),
    ]);
    s.signal(Signal::SIGKILL);
    assert_eq!(s.wait_exit(SHORT), 128 + 9);
    assert_all_dead(&pids, SHORT, "SIGKILL of the supervisor");
}

#[test]
fn when_the_supervisor_is_killed_the_guardian_stops_its_services() {
    if !require_all(&["postgres", "initdb", "pg_isready"]) {
        return;
    }
    let p = Project::new(&[
        (
            "stackato.yml",
            "name: pgkill\nservices:\n  ${name}-db: postgresql\nprocesses:\n  web: python3 server.py --pidfile @ROOT@/web.pid\n",
        ),
        ("server.py", SERVER_PY),
    ])
    .with_services(&["pgkill-db"]);
    let mut s = p.run(&["--db", "native"]);
    s.ready("web.0", Duration::from_secs(120));
    let pidfile = p.app.join(".stackato-local/services/pgkill-db/server.pid");
    let text = std::fs::read_to_string(&pidfile).expect("server.pid");
    let v: serde_json::Value = serde_json::from_str(&text).expect("server.pid is JSON");
    let server = v["pid"].as_i64().expect("pid in server.pid") as i32;
    assert!(alive(server), "postgres (pid {server}) is not running");
    let web = read_pid(&p.file("web.pid"), SHORT);
    s.signal(Signal::SIGKILL);
    assert_eq!(s.wait_exit(SHORT), 128 + 9);
    assert_all_dead(
        &[("web".into(), web), ("postgres".into(), server)],
        SHORT,
        "SIGKILL of the supervisor",
    );
}

#[test]
fn when_the_supervisor_is_killed_the_guardian_kills_every_app_process() {
    let p = Project::new(&[
        (
            "stackato.yml",
            r#"name: orphaned
instances: 2
hooks:
  pre-running:
    - sleep 300 & echo $! > @ROOT@/bg.$VCAP_APP_PORT.pid
processes:
  web: python3 server.py --ignore-term --pidfile @ROOT@/web.$PORT.pid --child-pidfile @ROOT@/child.$PORT.pid
"#,
        ),
        ("server.py", SERVER_PY),
    ]);
    let mut s = p.run(&[]);
    let mut pids = Vec::new();
    for name in ["web.0", "web.1"] {
        let port = s.ready(name, SHORT);
        for what in ["bg", "web", "child"] {
            let pid = read_pid(&p.file(&format!("{what}.{port}.pid")), SHORT);
            assert!(alive(pid), "{name}: {what} not running");
            pids.push((format!("{name}: {what}"), pid));
        }
    }
    s.signal(Signal::SIGKILL);
    let code = s.wait_exit(SHORT);
    assert_eq!(code, 128 + 9);
    assert_all_dead(&pids, SHORT, "SIGKILL of the supervisor");
}

// ---------------------------------------------------------------------------------------------
// 12. Output: line integrity, partial lines
// ---------------------------------------------------------------------------------------------

const LINES: usize = 200_000;

/// Line `i` of [`FLOOD_PY`] (100 bytes without the newline).
fn flood_line(i: usize) -> String {
    format!("line {i:06} {}", "x".repeat(88))
}

const FLOOD_PY: &str = r#"
import sys, time
out = sys.stdout.buffer
pad = b"x" * 88
for i in range(200000):
    out.write(b"line %06d %s\n" % (i, pad))
out.flush()
print("DONE", flush=True)
time.sleep(300)
"#;

#[test]
fn heavy_output_keeps_every_line_whole_once_and_in_order() {
    let p = Project::new(&[
        (
            "stackato.yml",
            "name: flood\ninstances: 2\nprocesses:\n  web: ~\ncommand: python3 flood.py\n",
        ),
        ("flood.py", FLOOD_PY),
    ]);
    let mut s = p.run(&[]);
    s.wait_count(Stream::Out, " | DONE\n", 2, Duration::from_secs(240));
    s.interrupt(CTRL_C);
    let out = s.out.lock().unwrap().clone();
    let text = String::from_utf8(out).expect("stdout is UTF-8");
    let mut per: [Vec<&str>; 2] = [Vec::new(), Vec::new()];
    for l in text.lines() {
        let Some((name, rest)) = l.split_once(" | ") else {
            panic!("a stdout line without prefix: {l:?}");
        };
        match name.trim_end() {
            "worker.0" => per[0].push(rest),
            "worker.1" => per[1].push(rest),
            "staging" => {}
            other => panic!("unexpected prefix {other:?} in {l:?}"),
        }
    }
    for (i, lines) in per.iter().enumerate() {
        assert_eq!(
            lines.len(),
            LINES + 1,
            "worker.{i}: {} lines instead of {}",
            lines.len(),
            LINES + 1
        );
        for (n, l) in lines[..LINES].iter().enumerate() {
            if *l != flood_line(n) {
                panic!(
                    "worker.{i}: line {n} is {l:?}, expected {:?} (context: {:?})",
                    flood_line(n),
                    &lines[n.saturating_sub(2)..(n + 3).min(lines.len())]
                );
            }
        }
        assert_eq!(lines[LINES], "DONE");
    }
}

#[test]
fn a_very_long_line_stays_whole() {
    // 300,000 bytes: several reads of the pump's 64 KiB buffer.
    let p = Project::new(&[(
        "stackato.yml",
        "name: longline\nprocesses:\n  web: ~\ncommand: python3 -c \"import sys, time; sys.stdout.write('<' + 'y' * 300000 + '>' + chr(10) + 'after' + chr(10)); sys.stdout.flush(); time.sleep(300)\"\n",
    )]);
    let mut s = p.run(&[]);
    s.wait_for(Stream::Out, "worker.0 | after\n", SHORT);
    s.interrupt(CTRL_C);
    let lines = s.lines_of("worker.0");
    assert_eq!(lines.len(), 2, "the long line was split or lost");
    assert_eq!(lines[0], format!("<{}>", "y".repeat(300_000)));
    assert_eq!(lines[1], "after");
}

#[test]
fn a_partial_line_is_shown_within_a_second() {
    let p = Project::new(&[(
        "stackato.yml",
        "name: partial\nprocesses:\n  web: ~\ncommand: printf 'no-newline'; exec sleep 300\n",
    )]);
    let mut s = p.run(&[]);
    s.wait_for(Stream::Err, "==> running", SHORT);
    // Shown while the process still runs (it ends no newline, and does not exit): how soon is
    // the benches' business.
    s.wait_for(Stream::Out, "worker.0 | no-newline\n", SHORT);
    s.interrupt(CTRL_C);
    assert_eq!(s.lines_of("worker.0"), ["no-newline"], "{}", s.dump());
}

// ---------------------------------------------------------------------------------------------
// 13. Services
// ---------------------------------------------------------------------------------------------

/// A web that inserts a row per `GET /` (with psql, stdlib only) and answers the row count.
const PG_WEB_PY: &str = r#"
import os, subprocess
from http.server import BaseHTTPRequestHandler, HTTPServer

def psql(sql):
    r = subprocess.run(["psql", os.environ["DATABASE_URL"], "-v", "ON_ERROR_STOP=1", "-qtA", "-c", sql],
                       capture_output=True, text=True)
    if r.returncode != 0:
        return r.returncode, r.stdout + r.stderr
    return 0, r.stdout.strip().splitlines()[-1]

class H(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/":
            code, text = psql("INSERT INTO hits DEFAULT VALUES; SELECT count(*) FROM hits")
        else:
            code, text = psql("SELECT count(*) FROM hits")
        body = text.encode()
        self.send_response(200 if code == 0 else 500)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

HTTPServer(("0.0.0.0", int(os.environ["PORT"])), H).serve_forever()
"#;

#[test]
fn a_postgres_service_keeps_its_rows_between_runs() {
    if !require_all(&["postgres", "initdb", "pg_isready", "psql"]) {
        return;
    }
    let p = Project::new(&[
        (
            "stackato.yml",
            r#"name: pgrun
services:
  ${name}-db: postgresql
hooks:
  post-staging:
    - psql "$DATABASE_URL" -v ON_ERROR_STOP=1 -c "CREATE TABLE IF NOT EXISTS hits (id serial PRIMARY KEY, at timestamptz DEFAULT now())"
processes:
  web: python3 web.py
"#,
        ),
        ("web.py", PG_WEB_PY),
    ])
    .with_services(&["pgrun-db"]);

    let mut s = p.run(&["--db", "native"]);
    let port = s.ready("web.0", Duration::from_secs(120));
    for n in 1..=3 {
        let (status, body) = http_get(port, "/");
        assert_eq!((status, body.as_str()), (200, n.to_string().as_str()));
    }
    let err = s.interrupt(CTRL_C);
    assert!(
        err.contains("stopping the services this run started"),
        "{err}"
    );
    s.assert_out_has("staging | CREATE TABLE");
    drop(s);

    let mut s = p.run(&["--db", "native"]);
    let port = s.ready("web.0", Duration::from_secs(120));
    s.assert_err_has("==> staging pgrun: the manifest and requirements did not change since the last staging; skipped");
    assert_eq!(http_get(port, "/count"), (200, "3".to_string()));
    assert_eq!(http_get(port, "/"), (200, "4".to_string()));
    s.interrupt(CTRL_C);
}

// ---------------------------------------------------------------------------------------------
// uWSGI and its stand-in
// ---------------------------------------------------------------------------------------------

/// A Python app served by `$STACKATO_UWSGI` (nothing but the WSGI file).
fn uwsgi_app(name: &str) -> Project {
    Project::new(&[
        (
            "stackato.yml",
            &format!(
                "name: {name}\nframework: {{type: python}}\nprocesses:\n  web: $STACKATO_UWSGI\nhooks:\n  post-staging:\n    - echo post >> @ROOT@/marks\n"
            ),
        ),
        (
            "wsgi.py",
            "def application(environ, start_response):\n    start_response('200 OK', [('Content-Type', 'text/plain')])\n    return [b'hello from wsgi\\n']\n",
        ),
    ])
}

#[test]
fn ctrl_c_while_uwsgi_builds_stops_staging_without_installing_the_stand_in() {
    let p = uwsgi_app("uwsgictrlc");
    // No pip cache: pip downloads and builds, so it is still busy when Ctrl-C comes.
    // (--inherit-env: a host variable reaches pip only when asked.)
    let mut s = p.run_env(&["--inherit-env"], &[("PIP_NO_CACHE_DIR", "1")]);
    s.wait_for(
        Stream::Out,
        "-----> Installing uWSGI",
        Duration::from_secs(60),
    );
    s.interrupt(SHORT);
    let out = s.stdout();
    assert!(
        !out.contains("stand-in"),
        "an interrupted uWSGI build fell back to the stand-in\n{}",
        s.dump()
    );
    assert!(
        !p.app.join(".stackato-local/venv/bin/uwsgi").exists(),
        "an interrupted uWSGI build left a bin/uwsgi, so no later staging builds the real one\n{}",
        s.dump()
    );
    assert!(
        !out.contains("-----> echo post"),
        "staging went on to the post-staging hooks after Ctrl-C\n{}",
        s.dump()
    );
}

#[test]
fn restage_tries_the_real_uwsgi_again_after_the_stand_in() {
    let p = uwsgi_app("uwsgiretry");
    // CC=false: uWSGI cannot be compiled; no pip cache: no wheel built before is reused.
    let env = [("CC", "false"), ("PIP_NO_CACHE_DIR", "1")];
    // (--inherit-env: host variables reach pip only when asked.)
    let mut s = p.run_env(&["--inherit-env"], &env);
    let port = s.ready("web.0", Duration::from_secs(180));
    s.assert_err_has("uWSGI could not be built");
    s.assert_err_has("stand-in");
    assert_eq!(
        http_get(port, "/"),
        (200, "hello from wsgi\n".to_string()),
        "the stand-in serves wsgi.py"
    );
    s.interrupt(CTRL_C);
    drop(s);

    let mut s = p.run_env(&["--restage", "--inherit-env"], &env);
    s.ready("web.0", Duration::from_secs(180));
    s.interrupt(CTRL_C);
    s.assert_out_has("-----> Installing uWSGI");
}

// ---------------------------------------------------------------------------------------------
// 14. The seed-shaped Django app
// ---------------------------------------------------------------------------------------------

/// Copy the fixture `from` into `to`, without what running it in place leaves behind (the
/// state dir, bytecode, and the top-level `static/` that collectstatic writes).

#[test]
fn django_seed_app_end_to_end() {
    if !require_all(&[
        "mariadbd|mysqld",
        "mariadb-install-db|mysql_install_db",
        "memcached",
    ]) {
        return;
    }
    let p = Project::new(&[]).with_services(&["stackto-demo-db", "stackto-demo-memcached"]);
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/django-seed");
    copy_tree(&fixture, &p.app, &|dir, n| {
        n == "__pycache__" || (n == "static" && dir.join("manage.py").is_file())
    });

    // First run: virtualenv, Django & co. and uWSGI from PyPI, migrate, collectstatic.
    let t0 = Instant::now();
    let mut s = p.run(&[]);
    let port = s.ready("web.0", Duration::from_secs(900));
    let first = t0.elapsed();
    s.assert_out_has("staging | -----> pip install django pymysql pymemcache");
    s.assert_out_has("staging | -----> python manage.py migrate --noinput");
    s.assert_out_has("Applying visits.0001_initial... OK");
    s.assert_out_has("staging | -----> python manage.py collectstatic --noinput");
    let standin = s.stderr().contains("stand-in");
    if !standin {
        s.assert_out_has("Starting uWSGI");
    }
    let (status, body) = http_get(port, "/");
    assert_eq!(status, 200, "{body}\n{}", s.dump());
    assert_eq!(body, "visits: 1 cache-hits: 1\n");
    assert_eq!(
        http_get(port, "/"),
        (200, "visits: 2 cache-hits: 2\n".to_string())
    );
    // The collected static file, served by --check-static $HOME/static (Django itself serves
    // no static files with DEBUG off).
    // collectstatic wrote into the staged copy, never into the checkout.
    assert!(
        p.app
            .join(".stackato-local/apps/stackto-demo/g1/0/app/static/visits/hello.txt")
            .is_file()
    );
    assert!(
        !p.app.join("static").exists(),
        "collectstatic wrote into the checkout"
    );
    assert_eq!(
        http_get(port, "/visits/hello.txt"),
        (200, "stackato-local django-seed static file\n".to_string())
    );
    s.interrupt(CTRL_C);
    drop(s);

    // Second run: staging skipped, the rows are still there.
    let mut s = p.run(&[]);
    let port = s.ready("web.0", Duration::from_secs(120));
    s.assert_err_has(
        "==> staging stackto-demo: the manifest and requirements did not change since the last staging; skipped",
    );
    assert_eq!(http_get(port, "/count"), (200, "visits: 2\n".to_string()));
    let (status, body) = http_get(port, "/");
    assert_eq!(status, 200, "{body}");
    assert!(body.starts_with("visits: 3 "), "{body}");
    assert_eq!(
        http_get(port, "/visits/hello.txt").0,
        200,
        "static file after the second start"
    );
    s.interrupt(CTRL_C);
    eprintln!(
        "django_seed_app_end_to_end: first run ready after {:.1} s ({}), whole test {:.1} s",
        first.as_secs_f64(),
        if standin {
            "uWSGI stand-in"
        } else {
            "real uWSGI"
        },
        t0.elapsed().as_secs_f64()
    );
}
