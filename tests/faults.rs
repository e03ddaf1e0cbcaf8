//! Fault injection: the real binary, real servers and real processes, broken on purpose.
//!
//! 1. SIGKILL of the supervisor (`run`) with a postgres service and committed rows: no app
//!    process survives, the next `run` recovers and the rows are intact.
//! 2. kill -9 of the postgres / MariaDB server while `run` is up: the run says so, starts it
//!    again, the app writes and reads again and the committed rows are intact.
//! 3. A web process's port taken by another program; a service's port taken.
//! 4. A state directory that cannot be written (a file in its place; a read-only mount).
//! 5. A full disk (a 64 KiB tmpfs holding the project).
//! 6. A staging hook that hangs, with `--hook-timeout`.
//! 7. A web process and a worker that both ignore SIGTERM (`--grace 1`).
//! 8. Daemons that leave their process group and session (`setsid`), on Ctrl-C and on SIGKILL
//!    of the supervisor.
//!
//! Each test has its own temp dir (the app in `<root>/app`, the pid files the apps write in
//! `<root>`). Guards SIGKILL a run left behind, stop and reset its services, kill every
//! process working inside the test's dir and unmount what the test mounted, also when it
//! panics. Tests that need a server print a loud SKIP when it is not installed (they fail
//! instead under `STACKATO_LOCAL_REQUIRE_SERVICES=1`); tests that need `mount` (root) print a
//! loud SKIP when mounting is not permitted.
//!
//! Tests marked `#[ignore = "BUG: …"]` show a product bug; run them with
//! `cargo test --test faults -- --ignored`.

use std::io::Write;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::http::http_get;
use crate::common::procs::{
    alive, assert_all_alive, assert_all_dead, assert_dead, cmdline, cmdlines, kill9, pids,
    procs_under, procs_using, read_pid,
};
use crate::common::project::{Project, mariadb_serial};
use crate::common::session::Session;
use crate::common::*;
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use serde_json::Value;
use tempfile::TempDir;

/// How long a Ctrl-C may take to end a run.
const CTRL_C: Duration = Duration::from_secs(40);

/// A [`Project`] in a new temp dir whose guard also kills what holds a file open in it.
fn project(files: &[(&str, &str)]) -> Project {
    Project::new(files).reaping_open_files()
}

/// A [`Project`] in `root/app` whose guard also kills what holds a file open in it.
fn project_at(root: &Path, files: &[(&str, &str)]) -> Project {
    Project::at(root, files).reaping_open_files()
}

// ---------------------------------------------------------------------------------------------
// Mounts (tmpfs, read-only bind mounts), unmounted whatever happens
// ---------------------------------------------------------------------------------------------

/// Something this test mounted; dropping it kills whatever still uses it, then unmounts it.
struct Mount {
    path: PathBuf,
    _tmp: Option<TempDir>,
}

impl Mount {
    /// `mount args… path`; `None` (after a loud SKIP) when mounting is not permitted here.
    fn mount(test: &str, args: &[&str], path: &Path) -> Option<()> {
        let out = Command::new("mount")
            .args(args)
            .arg(path)
            .stdin(Stdio::null())
            .output();
        match out {
            Ok(o) if o.status.success() => Some(()),
            Ok(o) => {
                skip(&format!(
                    "{test}: `mount {}` is not permitted here ({}); this test needs root with CAP_SYS_ADMIN",
                    args.join(" "),
                    String::from_utf8_lossy(&o.stderr).trim()
                ));
                None
            }
            Err(e) => {
                skip(&format!("{test}: cannot run mount: {e}"));
                None
            }
        }
    }

    /// A fresh temp dir with a tmpfs of `size` mounted on `<tmp>/app`; the project root is
    /// `<tmp>` ([`Mount::root`]).
    fn tmpfs(test: &str, size: &str) -> Option<Mount> {
        let tmp = tempfile::Builder::new()
            .prefix("stackato-local-full-")
            .tempdir()
            .expect("temp dir");
        let path = canon(tmp.path()).join("app");
        std::fs::create_dir_all(&path).expect("mount point");
        Mount::mount(
            test,
            &[
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ],
            &path,
        )?;
        Some(Mount {
            path,
            _tmp: Some(tmp),
        })
    }

    /// `path` bind-mounted on itself, then made read-only (which binds root too).
    fn read_only(test: &str, path: &Path) -> Option<Mount> {
        Mount::mount(test, &["--bind", &path.display().to_string()], path)?;
        let m = Mount {
            path: path.to_path_buf(),
            _tmp: None,
        };
        Mount::mount(test, &["-o", "remount,bind,ro"], path)?;
        Some(m)
    }

    fn root(&self) -> &Path {
        self.path.parent().expect("mount point has a parent")
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        for pid in procs_using(&self.path) {
            kill9(pid);
        }
        let t0 = Instant::now();
        loop {
            let ok = Command::new("umount")
                .arg(&self.path)
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if ok {
                return;
            }
            if t0.elapsed() > Duration::from_secs(5) {
                // Busy for good: detach it, so nothing stays mounted after the tests.
                let _ = Command::new("umount").arg("-l").arg(&self.path).status();
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// A file that fills the disk it is on; removed on drop (before the project's cleanup).
struct Filler(PathBuf);

impl Filler {
    /// Write zeros to `path` until the disk is full.
    fn fill(path: &Path) -> Filler {
        let mut f = std::fs::File::create(path).expect("create the filler");
        let chunk = vec![0u8; 4096];
        loop {
            match f.write(&chunk) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(nix::libc::ENOSPC) => break,
                Err(e) => panic!("filling {}: {e}", path.display()),
            }
        }
        // Also the last partial page, if any.
        while f.write(&[0u8]).is_ok_and(|n| n == 1) {}
        let _ = f.sync_all();
        Filler(path.to_path_buf())
    }
}

impl Drop for Filler {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

// ---------------------------------------------------------------------------------------------
// An app that writes to its database
// ---------------------------------------------------------------------------------------------

/// A web app (stdlib only) on `$PORT` backed by the `DATABASE_URL` service, through the
/// server's own client (`python3 db_web.py pg|my CLIENT`): it creates its table when it
/// starts; `GET /write` inserts a row and answers the row count, `GET /count` the count;
/// failures answer 500 with the client's message. `--pidfile F` writes its pid.
const DB_WEB_PY: &str = r#"
import os, subprocess, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import unquote, urlparse

kind, client = sys.argv[1], sys.argv[2]
url = os.environ["DATABASE_URL"]
u = urlparse(url)

def sql(q):
    if kind == "pg":
        cmd = [client, "-X", "-qtA", "-v", "ON_ERROR_STOP=1", "-d", url, "-c", q]
        env = dict(os.environ, PGCONNECT_TIMEOUT="5")
    else:
        cmd = [client, "--no-defaults", "--protocol=tcp", "--connect-timeout=5", "-N", "-B",
               "-h", u.hostname, "-P", str(u.port), "-u", unquote(u.username),
               "-D", u.path.lstrip("/"), "-e", q]
        env = dict(os.environ, MYSQL_PWD=unquote(u.password))
    r = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=30)
    if r.returncode != 0:
        return False, (r.stdout + r.stderr).strip()
    return True, r.stdout.strip().splitlines()[-1] if r.stdout.strip() else ""

CREATE = {
    "pg": "CREATE TABLE IF NOT EXISTS hits (id serial PRIMARY KEY)",
    "my": "CREATE TABLE IF NOT EXISTS hits (id INT AUTO_INCREMENT PRIMARY KEY) ENGINE=InnoDB",
}[kind]
INSERT = {"pg": "INSERT INTO hits DEFAULT VALUES", "my": "INSERT INTO hits () VALUES ()"}[kind]

ok, msg = sql(CREATE)
if not ok:
    print("cannot create the table: " + msg, flush=True)
    sys.exit(1)

class H(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/write":
            ok, text = sql(INSERT + "; SELECT count(*) FROM hits")
        else:
            ok, text = sql("SELECT count(*) FROM hits")
        body = text.encode()
        self.send_response(200 if ok else 500)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

server = HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H)
if len(sys.argv) > 4 and sys.argv[3] == "--pidfile":
    with open(sys.argv[4] + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.rename(sys.argv[4] + ".tmp", sys.argv[4])
print("listening", flush=True)
server.serve_forever()
"#;

/// A project whose web is [`DB_WEB_PY`] on a `db` service of `kind` (`postgresql`/`mysql`).
fn db_project(name: &str, kind: &str) -> Project {
    let (short, client) = match kind {
        "postgresql" => ("pg", "psql"),
        _ => ("my", "mariadb|mysql"),
    };
    let client = find_program(client).expect("client checked with require");
    project(&[
        (
            "stackato.yml",
            &format!(
                "name: {name}\nservices:\n  db: {kind}\nprocesses:\n  web: python3 db_web.py {short} {} --pidfile @ROOT@/web.pid\n",
                client.display()
            ),
        ),
        ("db_web.py", DB_WEB_PY),
    ])
    .with_services(&["db"])
}

/// `GET path` must answer 200 with `body`.
#[track_caller]
fn expect_http(port: u16, path: &str, body: &str, s: &Session) {
    let got = http_get(port, path);
    assert_eq!(got, (200, body.to_string()), "GET {path}\n{}", s.dump());
}

// ---------------------------------------------------------------------------------------------
// 1. SIGKILL of the supervisor, with a postgres service and committed rows
// ---------------------------------------------------------------------------------------------

#[test]
fn sigkill_of_the_supervisor_leaves_no_app_process_and_the_next_run_keeps_the_rows() {
    if !require_all(&["postgres", "initdb", "pg_isready", "psql"]) {
        return;
    }
    let p = db_project("killsup", "postgresql");
    let mut s = p.run(&["--db", "native", "--no-watch"]);
    let port = s.ready("web.0", SERVICES);
    for n in 1..=3 {
        expect_http(port, "/write", &n.to_string(), &s);
    }
    let web = read_pid(&p.file("web.pid"), SHORT);
    let server = p.server_pid("db").expect("postgres has a server.pid");
    assert!(alive(server), "postgres (pid {server}) is not running");

    s.signal(Signal::SIGKILL);
    assert_eq!(s.wait_exit(SHORT), 128 + 9);
    // The guardian kills the app at once and stops the postgres this run started.
    assert_dead("the web", web, SHORT, "SIGKILL of the supervisor");
    assert_dead(
        "postgres started by the killed run",
        server,
        Duration::from_secs(40),
        "SIGKILL of the supervisor",
    );
    // Nothing else either (the guardian, working in the app dir, exits once it is done).
    wait_until(
        SHORT,
        || procs_under(&p.root).is_empty(),
        || {
            format!(
                "processes left in the project after SIGKILL of the supervisor: {:?}",
                cmdlines(&procs_under(&p.root))
            )
        },
    );
    drop(s);

    // The next run: no "already running" refusal (the run lock died with the process), the
    // server comes back and the committed rows are there.
    let mut s = p.run(&["--db", "native", "--no-watch"]);
    let port = s.ready("web.0", SERVICES);
    let line = s.err_lines("services: db (postgresql) ready on 127.0.0.1:");
    assert_eq!(line.len(), 1, "{}", s.dump());
    expect_http(port, "/count", "3", &s);
    expect_http(port, "/write", "4", &s);
    s.interrupt(CTRL_C);
}

// ---------------------------------------------------------------------------------------------
// 2. kill -9 of a database server while `run` is up
// ---------------------------------------------------------------------------------------------

/// kill -9 the `db` server of a running [`db_project`]: the run must notice within a few
/// seconds, start it again (same port, same data) and the app must write and read again.
fn database_killed_during_run(kind: &str, name: &str) {
    let p = db_project(name, kind);
    let mut s = p.run(&["--db", "native", "--no-watch"]);
    let port = s.ready("web.0", SERVICES);
    expect_http(port, "/write", "1", &s);
    expect_http(port, "/write", "2", &s);
    let old = p.server_pid("db").expect("server.pid of db");
    let service_port = p.service_port("db");
    kill9(old);
    assert_dead("the db server", old, SHORT, "kill -9");
    let gone =
        format!("error: service db stopped unexpectedly (pid {old} is gone); starting it again");
    s.wait_err(&gone, SHORT);
    s.wait_err("==> service db is back (pid ", SERVICES);
    let back = s.err_lines("==> service db is back (pid ");
    assert_eq!(back.len(), 1, "{}", s.dump());
    assert!(back[0].contains("its data was kept"), "{}", back[0]);
    let new = p.server_pid("db").expect("server.pid after the restart");
    assert!(
        back[0].contains(&format!("(pid {new})")),
        "{} vs server.pid {new}",
        back[0]
    );
    assert_ne!(new, old);
    assert!(alive(new));
    assert_eq!(p.service_port("db"), service_port, "the service moved");
    // The app was not restarted, and reaches the server again: rows before the kill are
    // there, and it takes new ones.
    expect_http(port, "/count", "2", &s);
    expect_http(port, "/write", "3", &s);
    assert!(
        !s.stderr().contains("web.0 exited"),
        "the app was restarted\n{}",
        s.dump()
    );
    s.interrupt(CTRL_C);
    // The restarted server was started by this run: it is stopped with it.
    assert_dead(
        "the restarted db server",
        new,
        Duration::from_secs(40),
        "the end of the run",
    );
}

#[test]
fn a_postgres_killed_during_run_is_started_again_with_its_rows() {
    if !require_all(&["postgres", "initdb", "pg_isready", "psql"]) {
        return;
    }
    database_killed_during_run("postgresql", "pgdies");
}

#[test]
fn a_mariadb_killed_during_run_is_started_again_with_its_rows() {
    if !require_all(&[
        "mariadbd|mysqld",
        "mariadb-install-db|mysql_install_db",
        "mariadb|mysql",
    ]) {
        return;
    }
    let _serial = mariadb_serial();
    database_killed_during_run("mysql", "mydies");
}

// ---------------------------------------------------------------------------------------------
// 3. Ports taken by another program
// ---------------------------------------------------------------------------------------------

/// A small web app (stdlib only) on 0.0.0.0:$PORT, as most apps listen. Options:
/// `--ignore-term`, `--pidfile F`.
const WEB_PY: &str = r#"
import os, signal, sys
from http.server import BaseHTTPRequestHandler, HTTPServer

if "--ignore-term" in sys.argv:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
if "--pidfile" in sys.argv:
    path = sys.argv[sys.argv.index("--pidfile") + 1]
    with open(path + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.rename(path + ".tmp", path)

class H(BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass

server = HTTPServer(("0.0.0.0", int(os.environ["PORT"])), H)
print("listening", flush=True)
server.serve_forever()
"#;

/// A project with [`WEB_PY`], and its web port (remembered in ports.json after `env`) bound
/// by the test, as another program would.
fn squatted_web() -> (Project, TcpListener, u16) {
    let p = project(&[
        (
            "stackato.yml",
            "name: squat\nprocesses:\n  web: python3 web.py\n",
        ),
        ("web.py", WEB_PY),
    ]);
    p.cmd(&["env"]).code(0);
    let ports: Value = serde_json::from_str(
        &std::fs::read_to_string(p.state("ports.json")).expect("ports.json after env"),
    )
    .expect("ports.json is JSON");
    let port = ports["squat/0"].as_u64().expect("squat/0 in ports.json") as u16;
    let squatter = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).expect("bind the web's port");
    (p, squatter, port)
}

#[test]
fn a_web_whose_port_is_taken_moves_to_a_free_port() {
    let (p, _squatter, port) = squatted_web();
    let mut s = p.run(&["--no-watch"]);
    s.wait_err("ready at http://127.0.0.1:", SHORT);
    let err = s.stderr();
    let note = err
        .lines()
        .find(|l| l.contains("is taken by another program"))
        .unwrap_or_else(|| panic!("no line says the port is taken\n{}", s.dump()));
    assert!(
        note.contains(&format!("port {port} of squat instance 0")),
        "{note}"
    );
    let ports: Value =
        serde_json::from_str(&std::fs::read_to_string(p.state("ports.json")).unwrap()).unwrap();
    let new = ports["squat/0"].as_u64().unwrap() as u16;
    assert_ne!(new, port, "the remembered port did not move");
    assert!(
        note.ends_with(&format!("it now uses port {new} ($PORT follows)")),
        "{note}"
    );
    assert!(
        err.contains(&format!("web.0 ready at http://127.0.0.1:{new}")),
        "{}",
        s.dump()
    );
    assert!(
        !err.contains(&format!("ready at http://127.0.0.1:{port}")),
        "reported ready on the squatted port\n{}",
        s.dump()
    );
    s.interrupt(CTRL_C);
}

#[test]
fn a_service_whose_port_is_taken_moves_and_says_so() {
    if !require("memcached") {
        return;
    }
    let p = project(&[("stackato.yml", "name: mcport\nservices:\n  mc: memcached\n")])
        .with_services(&["mc"]);
    p.cmd(&["env"]).code(0);
    let old = p.service_port("mc");
    let _squatter = TcpListener::bind((Ipv4Addr::LOCALHOST, old)).expect("bind mc's port");
    let r = p.cmd(&["services", "start"]);
    r.code(0);
    let new = p.service_port("mc");
    assert_ne!(new, old);
    r.stderr_has(&format!(
        "services: mc: port {old} is taken by another program; now on port {new} (the environment follows)"
    ))
    .stderr_has(&format!("services: mc (memcached) ready on 127.0.0.1:{new}"));
    let env = p.cmd(&["env", "--format", "json"]);
    env.code(0);
    assert_eq!(env.json()["MEMCACHE_URL"], format!("127.0.0.1:{new}"));
}

// ---------------------------------------------------------------------------------------------
// 4. A state directory that cannot be written
// ---------------------------------------------------------------------------------------------

const WORKER: &str =
    "name: rostate\nservices:\n  cache: redis\nprocesses:\n  web: ~\ncommand: sleep 0\n";

/// Commands that write the state directory: `env`, `services start`, `run`.
const STATE_WRITERS: [&[&str]; 3] = [
    &["env"],
    &["services", "start"],
    &["run", "--no-watch", "--exit-on-crash"],
];

/// `.stackato-local` is a regular file, so the directory cannot be created. This works
/// whoever runs the tests: root ignores file modes (a chmod 0500 directory would still be
/// writable for root, and the tests run as root here), but not `EEXIST`/`ENOTDIR`.
#[test]
fn a_state_dir_that_cannot_be_created_is_a_clear_error_with_exit_74() {
    let p = project(&[("stackato.yml", WORKER), (".stackato-local", "not a dir\n")]);
    let path = p.app.join(".stackato-local");
    for args in STATE_WRITERS {
        let r = p.cmd(args);
        r.code(74);
        r.stderr_has(&format!(
            "error: cannot create the state directory {}: File exists",
            path.display()
        ));
        assert_eq!(r.stdout, "", "{}", r.dump());
    }
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "not a dir\n",
        "the file was changed"
    );
}

/// After a first `env`, `.stackato-local` is made read-only with a read-only bind mount of
/// itself: permissions would not stop root (these tests run as root), `chattr +i` depends on
/// the filesystem, a read-only mount stops everyone. Skipped (loudly) where mounting is not
/// permitted.
#[test]
fn a_read_only_state_dir_is_a_clear_error_with_exit_74_and_leaves_the_files_whole() {
    let test = "a_read_only_state_dir_is_a_clear_error_with_exit_74_and_leaves_the_files_whole";
    let p = project(&[("stackato.yml", WORKER)]).with_services(&["cache", "more"]);
    p.cmd(&["env"]).code(0);
    let before = std::fs::read(p.state("services.json")).unwrap();
    let state = p.app.join(".stackato-local");
    let Some(_ro) = Mount::read_only(test, &state) else {
        return;
    };
    assert!(
        std::fs::write(state.join("probe"), "x").is_err(),
        "the read-only mount does not stop writes"
    );
    // A new service must be recorded: services.json cannot be written.
    std::fs::write(
        p.app.join("stackato.yml"),
        WORKER.replace("  cache: redis\n", "  cache: redis\n  more: memcached\n"),
    )
    .unwrap();
    for args in STATE_WRITERS {
        let r = p.cmd(args);
        r.code(74);
        let line = r.diag("error: ", &["Read-only file system"]);
        assert!(
            line.contains(&state.display().to_string()),
            "the error does not name the path: {line}\n{}",
            r.dump()
        );
        assert!(
            line.contains("cannot write")
                || line.contains("cannot lock")
                || line.contains("cannot create"),
            "{line}"
        );
    }
    assert_eq!(
        std::fs::read(p.state("services.json")).unwrap(),
        before,
        "services.json changed"
    );
    p.registry();
}

// ---------------------------------------------------------------------------------------------
// 5. A full disk
// ---------------------------------------------------------------------------------------------

/// The files below `dir` whose names say they are temporary (`.NAME.tmp.PID`).
fn temp_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.filter_map(Result::ok) {
        let path = e.path();
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            out.extend(temp_files(&path));
        } else if e.file_name().to_string_lossy().contains(".tmp") {
            out.push(path);
        }
    }
    out
}

#[test]
fn a_full_disk_is_a_clear_error_with_exit_74_and_services_json_stays_whole() {
    let test = "a_full_disk_is_a_clear_error_with_exit_74_and_services_json_stays_whole";
    let Some(m) = Mount::tmpfs(test, "64k") else {
        return;
    };
    let p = project_at(m.root(), &[("stackato.yml", WORKER)]).with_services(&["cache", "more"]);
    p.cmd(&["env"]).code(0);
    let before = std::fs::read(p.state("services.json")).unwrap();
    let _fill = Filler::fill(&p.app.join("fill"));
    std::fs::write(
        p.app.join("stackato.yml"),
        WORKER.replace("  cache: redis\n", "  cache: redis\n  more: memcached\n"),
    )
    .expect("the manifest fits (its size hardly changes; tmpfs pages were allocated)");
    let services_json = p.state("services.json");
    for args in [&["env"][..], &["services", "start"][..]] {
        let r = p.cmd(args);
        r.code(74);
        r.stderr_has(&format!(
            "error: cannot write {}: No space left on device",
            services_json.display()
        ));
        assert_eq!(
            std::fs::read(&services_json).unwrap(),
            before,
            "services.json changed\n{}",
            r.dump()
        );
        let reg = p.registry();
        assert!(reg["services"]["cache"].is_object(), "{reg:#}");
        let left = temp_files(&p.app.join(".stackato-local"));
        assert!(left.is_empty(), "temp files left behind: {left:?}");
    }
}

#[test]
fn a_full_disk_while_starting_a_service_leaves_no_server_behind() {
    let test = "a_full_disk_while_starting_a_service_leaves_no_server_behind";
    if !require("memcached") {
        return;
    }
    let Some(m) = Mount::tmpfs(test, "64k") else {
        return;
    };
    let p = project_at(
        m.root(),
        &[("stackato.yml", "name: fullmc\nservices:\n  mc: memcached\n")],
    )
    .with_services(&["mc"]);
    p.cmd(&["env"]).code(0);
    let port = p.service_port("mc");
    let _fill = Filler::fill(&p.app.join("fill"));
    let r = p.cmd(&["services", "start"]);
    let pid_file = p.state("services/mc/server.pid");
    let flag = format!("-p {port} ");
    let servers: Vec<i32> = pids()
        .into_iter()
        .filter(|&pid| {
            alive(pid) && cmdline(pid).contains("memcached") && cmdline(pid).contains(&flag)
        })
        .collect();
    for pid in &servers {
        kill9(*pid);
    }
    r.code(74);
    r.stderr_has(&format!(
        "error: cannot write {}: No space left on device",
        pid_file.display()
    ));
    assert!(
        servers.is_empty(),
        "memcached left running on port {port} without a pid file: {:?}",
        cmdlines(&servers)
    );
}

// ---------------------------------------------------------------------------------------------
// 6. A staging hook that hangs
// ---------------------------------------------------------------------------------------------

#[test]
fn a_hanging_hook_is_killed_after_the_hook_timeout_with_exit_6() {
    let manifest = "name: hang\nhooks:\n  post-staging:\n    - echo started; sleep 1000 & echo $! > @ROOT@/sleep.pid; wait\nprocesses:\n  web: ~\ncommand: sleep 100\n";
    let p = project(&[("stackato.yml", manifest)]);
    let t0 = Instant::now();
    let mut s = p.run(&["--hook-timeout", "2", "--no-watch"]);
    let sleep = read_pid(&p.file("sleep.pid"), SHORT);
    s.expect_exit(6, SHORT);
    // Not before the timeout (a lower bound: the behaviour, never a speed limit).
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(1900),
        "stopped after {took:?} with --hook-timeout 2\n{}",
        s.dump()
    );
    let err = s.err_lines("error: post-staging hook #1");
    assert_eq!(err.len(), 1, "{}", s.dump());
    assert_eq!(
        err[0],
        "error: post-staging hook #1 `echo started; sleep 1000 & echo $! > @ROOT@/sleep.pid; wait` did not finish in time and was killed"
            .replace("@ROOT@", &p.root.display().to_string())
    );
    assert!(s.stderr().contains(" --> stackato.yml:4:7"), "{}", s.dump());
    assert!(
        s.stderr()
            .contains("last lines of its output:\n    started"),
        "{}",
        s.dump()
    );
    assert_dead("the hook's sleep", sleep, SHORT, "the hook timeout");
    assert!(
        s.lines_of("worker.0").is_empty(),
        "the app started after a failed hook\n{}",
        s.dump()
    );
}

// ---------------------------------------------------------------------------------------------
// 7. A web and a worker that both ignore SIGTERM
// ---------------------------------------------------------------------------------------------

#[test]
fn a_web_and_a_worker_that_ignore_sigterm_are_both_killed_after_the_grace() {
    let p = project(&[
        (
            "stackato.yml",
            r#"applications:
  - name: front
    path: front
    processes:
      web: python3 web.py --ignore-term --pidfile @ROOT@/web.pid
  - name: back
    path: back
    processes:
      web: ~
    command: trap '' TERM; echo $$ > @ROOT@/worker.pid; while :; do sleep 0.2; done
"#,
        ),
        ("front/web.py", WEB_PY),
        ("back/README", "back\n"),
    ]);
    let mut s = p.run(&["--grace", "1", "--no-watch"]);
    s.ready("front:web.0", SHORT);
    let pids = p.pids(&[("the web", "web.pid"), ("the worker", "worker.pid")]);
    assert_all_alive(&pids);
    let took = s.stop(Signal::SIGINT, 130, SHORT);
    // Not before the grace period (a lower bound: the behaviour, never a speed limit).
    assert!(
        took >= Duration::from_millis(900),
        "stopped after {took:?} with --grace 1\n{}",
        s.dump()
    );
    for name in ["front:web.0", "back:worker.0"] {
        let line = format!("{name}: did not stop within the grace period; killed");
        assert_eq!(s.err_lines(&line).len(), 1, "no {line:?}\n{}", s.dump());
    }
    assert_all_dead(&pids, SHORT, "exit 130");
}

// ---------------------------------------------------------------------------------------------
// 8. Daemons in their own session
// ---------------------------------------------------------------------------------------------

/// A worker that starts a daemon with `setsid -f` (its own session and group, reparented to
/// the supervisor as its parent exits) that ignores SIGTERM and SIGHUP; `@ENV@` lets the
/// daemon clear its environment (`env -i`).
const DAEMON_YML: &str = "name: daemons\nprocesses:\n  web: ~\ncommand: setsid -f @ENV@ sh -c 'trap \"\" TERM HUP; echo $$ > @ROOT@/daemon.pid; exec sleep 1000' </dev/null >/dev/null 2>&1; echo $$ > @ROOT@/worker.pid; exec sleep 1000\n";

fn daemon_project(env: &str) -> Project {
    project(&[("stackato.yml", &DAEMON_YML.replace("@ENV@", env))])
}

/// The daemon's and the worker's pids, once both run; the daemon in another session.
#[track_caller]
fn daemon_pids(p: &Project) -> Vec<(String, i32)> {
    let daemon = read_pid(&p.file("daemon.pid"), SHORT);
    let worker = read_pid(&p.file("worker.pid"), SHORT);
    let sid = |pid: i32| nix::unistd::getsid(Some(Pid::from_raw(pid))).ok();
    assert!(alive(daemon), "the daemon does not run");
    assert_ne!(
        sid(daemon),
        sid(worker),
        "the daemon is in the worker's session"
    );
    vec![("the worker".into(), worker), ("the daemon".into(), daemon)]
}

#[test]
fn a_daemon_in_its_own_session_that_ignores_sigterm_dies_on_ctrl_c() {
    let p = daemon_project("");
    let mut s = p.run(&["--grace", "1", "--no-watch"]);
    let pids = daemon_pids(&p);
    s.interrupt(CTRL_C);
    assert_all_dead(&pids, SHORT, "Ctrl-C (exit 130)");
}

#[test]
fn a_daemon_in_its_own_session_dies_when_the_supervisor_is_sigkilled() {
    // At once (found by the run's mark in its environment), and a daemon that cleared its
    // environment once the supervisor adopted it: it looks for orphans 0.5 s after a start,
    // then 1.5 s, 3.5 s, … (nothing shows that it did: wait past two looks, for a busy machine).
    for (env, wait) in [("", Duration::ZERO), ("env -i", Duration::from_secs(2))] {
        let p = daemon_project(env);
        let mut s = p.run(&["--no-watch"]);
        let pids = daemon_pids(&p);
        std::thread::sleep(wait);
        s.signal(Signal::SIGKILL);
        assert_eq!(s.wait_exit(SHORT), 128 + 9);
        assert_all_dead(
            &pids,
            SHORT,
            &format!("SIGKILL of the supervisor ({env:?} daemon, killed after {wait:?})"),
        );
    }
}
