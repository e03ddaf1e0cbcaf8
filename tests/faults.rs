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

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::*;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;
use tempfile::TempDir;

/// Where root-run services keep their data (see `src/services/paths.rs`).
const SYSTEM_ROOT: &str = "/var/lib/stackato-local";
/// A generous deadline for things that take a fraction of a second when all is well.
const SHORT: Duration = Duration::from_secs(20);
/// Time for services to start (a cold postgres or MariaDB initialises its data first).
const SERVICES: Duration = Duration::from_secs(120);

// ---------------------------------------------------------------------------------------------
// Processes, by pid
// ---------------------------------------------------------------------------------------------

/// Whether `pid` runs (a zombie is dead).
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s.rsplit_once(')').is_some_and(|(_, rest)| {
            let st = rest.trim_start();
            st.starts_with('Z') || st.starts_with('X')
        }),
        Err(_) => false,
    }
}

fn pids() -> Vec<i32> {
    std::fs::read_dir("/proc")
        .map(|rd| {
            rd.filter_map(Result::ok)
                .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Every live process (not us) whose working directory, or one of whose open files, is
/// `root` or below.
fn procs_using(root: &Path) -> Vec<i32> {
    let me = std::process::id() as i32;
    let uses = |pid: i32| {
        let under = |p: PathBuf| p.starts_with(root);
        if std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(under) {
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

/// Every live process whose working directory is `root` or below.
fn procs_under(root: &Path) -> Vec<i32> {
    let me = std::process::id() as i32;
    let mut v: Vec<i32> = pids()
        .into_iter()
        .filter(|&pid| pid != me && alive(pid))
        .filter(|&pid| {
            std::fs::read_link(format!("/proc/{pid}/cwd")).is_ok_and(|c| c.starts_with(root))
        })
        .collect();
    v.sort_unstable();
    v
}

/// The command line of `pid`, for messages.
fn cmdline(pid: i32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            String::from_utf8_lossy(&b)
                .replace('\0', " ")
                .trim()
                .to_string()
        })
        .unwrap_or_default()
}

fn kill9(pid: i32) {
    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
}

/// Wait up to `within` for every one of `pids` to be dead; panic naming the survivors.
#[track_caller]
fn assert_all_dead(pids: &[(String, i32)], within: Duration, context: &str) {
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

/// Wait for `path` to hold a pid (written by an app), and return it.
#[track_caller]
fn read_pid(path: &Path, within: Duration) -> i32 {
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

/// Held by every test that starts MariaDB (also across test binaries: a file lock). MariaDB
/// deletes every `#sql*` file in its tmpdir when it starts and the product leaves that at the
/// shared /tmp, so two fresh instances starting at once can break each other (see
/// `mariadb_fresh_projects_start_in_parallel` in tests/services.rs).
fn mariadb_serial() -> std::fs::File {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(std::env::temp_dir().join("stackato-local-tests-mariadb.lock"))
        .expect("open the MariaDB test lock");
    f.lock().expect("take the MariaDB test lock");
    f
}

// ---------------------------------------------------------------------------------------------
// A project: the app in <root>/app, the test's own files in <root>
// ---------------------------------------------------------------------------------------------

/// A temp dir with the app in `app/`. `@ROOT@` in file texts becomes the (canonical) root.
/// Dropping it stops and resets the services named with [`Project::with_services`] and kills
/// every process still working inside it.
struct Project {
    root: PathBuf,
    app: PathBuf,
    services: Vec<String>,
    _tmp: Option<TempDir>,
}

impl Project {
    fn new(files: &[(&str, &str)]) -> Project {
        let tmp = common::app(&[]);
        let mut p = Project::at(&canon(tmp.path()), files);
        p._tmp = Some(tmp);
        p
    }

    /// A project in `root/app` (`root` is someone else's, e.g. a mount's).
    fn at(root: &Path, files: &[(&str, &str)]) -> Project {
        let app = root.join("app");
        std::fs::create_dir_all(&app).expect("create app dir");
        let p = Project {
            root: root.to_path_buf(),
            app,
            services: Vec::new(),
            _tmp: None,
        };
        p.write_all(files);
        p
    }

    fn write_all(&self, files: &[(&str, &str)]) {
        let root_s = self.root.display().to_string();
        for (rel, text) in files {
            write(&self.app, rel, text.replace("@ROOT@", &root_s).as_bytes());
        }
    }

    /// Remember the app's services, to stop and reset them at the end.
    fn with_services(mut self, names: &[&str]) -> Project {
        self.services = names.iter().map(|s| s.to_string()).collect();
        self
    }

    fn file(&self, rel: &str) -> PathBuf {
        self.root.join(rel)
    }

    fn state(&self, rel: &str) -> PathBuf {
        self.app.join(".stackato-local").join(rel)
    }

    /// Start `stackato-local run <args>` in the app dir.
    fn run(&self, args: &[&str]) -> Session {
        Session::start(&self.app, args)
    }

    /// Run the binary to completion in the app dir.
    fn cmd(&self, args: &[&str]) -> Run {
        run(&self.app, args)
    }

    /// The pid in `.stackato-local/services/<name>/server.pid`.
    fn server_pid(&self, name: &str) -> Option<i32> {
        let text =
            std::fs::read_to_string(self.state(&format!("services/{name}/server.pid"))).ok()?;
        let v: Value = serde_json::from_str(&text).ok()?;
        v["pid"].as_i64().map(|p| p as i32)
    }

    /// `services.json`, parsed (panics when it is not JSON).
    #[track_caller]
    fn registry(&self) -> Value {
        let path = self.state("services.json");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not JSON ({e}):\n{text}", path.display()))
    }

    /// The remembered port of service `name`.
    #[track_caller]
    fn service_port(&self, name: &str) -> u16 {
        let reg = self.registry();
        reg["services"][name]["port"]
            .as_u64()
            .unwrap_or_else(|| panic!("no port for {name} in {reg:#}")) as u16
    }

    /// Where a root-run service keeps its files (the `data` link's parent), if it has any.
    fn service_root(&self, name: &str) -> Option<PathBuf> {
        let target = std::fs::read_link(self.state(&format!("services/{name}/data"))).ok()?;
        target.parent().map(Path::to_path_buf)
    }
}

/// Run the binary in `dir`, ignoring every failure (for cleanup).
fn quiet(dir: &Path, args: &[&str]) {
    let _ = cmd(dir)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

impl Drop for Project {
    fn drop(&mut self) {
        if !self.services.is_empty() {
            let roots: Vec<Option<PathBuf>> =
                self.services.iter().map(|n| self.service_root(n)).collect();
            quiet(&self.app, &["services", "stop", "--grace", "5"]);
            for (name, root) in self.services.iter().zip(roots) {
                quiet(&self.app, &["services", "reset", name, "--yes"]);
                if let Some(root) = root {
                    for pid in procs_under(&root) {
                        kill9(pid);
                    }
                    if root.starts_with(SYSTEM_ROOT) && root.exists() {
                        let _ = std::fs::remove_dir_all(&root);
                    }
                }
            }
        }
        for pid in procs_using(&self.root) {
            kill9(pid);
        }
    }
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
// A running `stackato-local run`
// ---------------------------------------------------------------------------------------------

type Buf = Arc<Mutex<Vec<u8>>>;

/// `stackato-local run` as a child, its stdout and stderr read by threads into buffers.
/// Dropping it SIGKILLs the run if it still runs (its guardian then cleans up after it).
struct Session {
    child: Child,
    pid: i32,
    out: Buf,
    err: Buf,
    readers: Vec<JoinHandle<()>>,
    args: Vec<String>,
    exit: Option<Option<i32>>,
}

fn reader(mut r: impl Read + Send + 'static, buf: Buf) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            match r.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.lock().unwrap().extend_from_slice(&chunk[..n]),
            }
        }
    })
}

impl Session {
    fn start(dir: &Path, args: &[&str]) -> Session {
        let mut c = cmd(dir);
        c.arg("run")
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().expect("start stackato-local run");
        let out: Buf = Arc::default();
        let err: Buf = Arc::default();
        let readers = vec![
            reader(child.stdout.take().expect("stdout"), Arc::clone(&out)),
            reader(child.stderr.take().expect("stderr"), Arc::clone(&err)),
        ];
        Session {
            pid: child.id() as i32,
            child,
            out,
            err,
            readers,
            args: std::iter::once("run")
                .chain(args.iter().copied())
                .map(str::to_string)
                .collect(),
            exit: None,
        }
    }

    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.out.lock().unwrap()).into_owned()
    }

    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.err.lock().unwrap()).into_owned()
    }

    fn dump(&self) -> String {
        format!(
            "args: {:?}\nexit: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.args,
            self.exit,
            self.stdout(),
            self.stderr()
        )
    }

    /// Whether the run has ended (and record how).
    fn poll_exit(&mut self) -> bool {
        if self.exit.is_some() {
            return true;
        }
        if let Ok(Some(st)) = self.child.try_wait() {
            use std::os::unix::process::ExitStatusExt;
            self.exit = Some(st.code().or_else(|| st.signal().map(|s| 128 + s)));
            let t0 = Instant::now();
            while self.readers.iter().any(|r| !r.is_finished())
                && t0.elapsed() < Duration::from_secs(10)
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            return true;
        }
        false
    }

    /// Wait for `needle` on stderr; return the time it took. Panics (with everything
    /// printed) on timeout, or when the run ends first.
    #[track_caller]
    fn wait_err(&mut self, needle: &str, within: Duration) -> Duration {
        let t0 = Instant::now();
        loop {
            let ended = self.poll_exit();
            if self.stderr().contains(needle) {
                return t0.elapsed();
            }
            if ended || t0.elapsed() > within {
                panic!(
                    "no {needle:?} on stderr within {within:?} (ended: {ended})\n{}",
                    self.dump()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Wait for `<name> ready at http://127.0.0.1:PORT` and return the port.
    #[track_caller]
    fn ready(&mut self, name: &str, within: Duration) -> u16 {
        let needle = format!("==> {name} ready at http://127.0.0.1:");
        self.wait_err(&needle, within);
        let err = self.stderr();
        let at = err.find(&needle).unwrap() + needle.len();
        let digits: String = err[at..].chars().take_while(char::is_ascii_digit).collect();
        digits
            .parse()
            .unwrap_or_else(|_| panic!("no port after {needle:?}\n{}", self.dump()))
    }

    fn signal(&self, sig: Signal) {
        let _ = kill(Pid::from_raw(self.pid), sig);
    }

    /// Wait for the run to end; its exit code (128+N when killed by signal N).
    #[track_caller]
    fn wait_exit(&mut self, within: Duration) -> i32 {
        let t0 = Instant::now();
        while !self.poll_exit() {
            if t0.elapsed() > within {
                panic!("the run did not end within {within:?}\n{}", self.dump());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.exit.flatten().unwrap_or(-1)
    }

    /// Wait for the end and assert its exit code, and that nothing panicked.
    #[track_caller]
    fn expect_exit(&mut self, code: i32, within: Duration) {
        let got = self.wait_exit(within);
        assert_eq!(got, code, "unexpected exit code\n{}", self.dump());
        assert!(
            !self.stderr().contains("panicked"),
            "the binary panicked\n{}",
            self.dump()
        );
    }

    /// Ctrl-C, then wait for the end; asserts exit 130.
    #[track_caller]
    fn interrupt(&mut self) {
        self.signal(Signal::SIGINT);
        self.expect_exit(130, Duration::from_secs(40));
    }

    /// The text after `name | ` of each stdout line of process `name`, in order.
    fn lines_of(&self, name: &str) -> Vec<String> {
        self.stdout()
            .lines()
            .filter_map(|l| {
                let (n, rest) = l.split_once(" | ")?;
                (n.trim_end() == name).then(|| rest.to_string())
            })
            .collect()
    }

    /// The stderr lines containing `needle`.
    fn err_lines(&self, needle: &str) -> Vec<String> {
        self.stderr()
            .lines()
            .filter(|l| l.contains(needle))
            .map(str::to_string)
            .collect()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if !self.poll_exit() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP, and an app that writes to its database
// ---------------------------------------------------------------------------------------------

/// `GET path` on 127.0.0.1:`port`: (status, body). Retries a refused connection briefly.
#[track_caller]
fn http_get(port: u16, path: &str) -> (u16, String) {
    let t0 = Instant::now();
    let mut stream = loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => break s,
            Err(e) => {
                assert!(
                    t0.elapsed() < Duration::from_secs(5),
                    "cannot connect to port {port}: {e}"
                );
                std::thread::sleep(Duration::from_millis(50));
            }
        }
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .unwrap_or_else(|e| panic!("reading the answer to GET {path} on port {port}: {e}"));
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP answer to GET {path} on port {port}: {text:?}"));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line in {head:?}"));
    (status, body.to_string())
}

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
    Project::new(&[
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
    assert_all_dead(
        &[("the web".into(), web)],
        Duration::from_secs(5),
        "SIGKILL of the supervisor",
    );
    assert_all_dead(
        &[("postgres started by the killed run".into(), server)],
        Duration::from_secs(40),
        "SIGKILL of the supervisor",
    );
    // Nothing else either (the guardian, working in the app dir, exits once it is done).
    let t0 = Instant::now();
    loop {
        let left = procs_under(&p.root);
        if left.is_empty() {
            break;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "processes left in the project after SIGKILL of the supervisor: {:?}",
            left.iter().map(|p| cmdline(*p)).collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(s);

    // The next run: no "already running" refusal (the run lock died with the process), the
    // server comes back and the committed rows are there.
    let mut s = p.run(&["--db", "native", "--no-watch"]);
    let port = s.ready("web.0", SERVICES);
    let line = s.err_lines("services: db (postgresql) ready on 127.0.0.1:");
    assert_eq!(line.len(), 1, "{}", s.dump());
    expect_http(port, "/count", "3", &s);
    expect_http(port, "/write", "4", &s);
    s.interrupt();
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
    assert_all_dead(&[("the db server".into(), old)], SHORT, "kill -9");
    let gone =
        format!("error: service db stopped unexpectedly (pid {old} is gone); starting it again");
    let noticed = s.wait_err(&gone, SHORT);
    assert!(
        noticed < Duration::from_secs(4),
        "the run noticed the dead server only after {noticed:?}\n{}",
        s.dump()
    );
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
    s.interrupt();
    // The restarted server was started by this run: it is stopped with it.
    assert_all_dead(
        &[("the restarted db server".into(), new)],
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
    let p = Project::new(&[
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
    s.interrupt();
}

#[test]
fn a_service_whose_port_is_taken_moves_and_says_so() {
    if !require("memcached") {
        return;
    }
    let p = Project::new(&[("stackato.yml", "name: mcport\nservices:\n  mc: memcached\n")])
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

/// `.stackato-local` is a regular file, so the directory cannot be created. This works
/// whoever runs the tests: root ignores file modes (a chmod 0500 directory would still be
/// writable for root, and the tests run as root here), but not `EEXIST`/`ENOTDIR`.
#[test]
fn a_state_dir_that_cannot_be_created_is_a_clear_error_with_exit_74() {
    let p = Project::new(&[("stackato.yml", WORKER), (".stackato-local", "not a dir\n")]);
    let path = p.app.join(".stackato-local");
    for args in [
        &["env"][..],
        &["services", "start"][..],
        &["run", "--no-watch", "--exit-on-crash"][..],
    ] {
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
    let p = Project::new(&[("stackato.yml", WORKER)]).with_services(&["cache", "more"]);
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
    for args in [
        &["env"][..],
        &["services", "start"][..],
        &["run", "--no-watch", "--exit-on-crash"][..],
    ] {
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
    let p = Project::at(m.root(), &[("stackato.yml", WORKER)]).with_services(&["cache", "more"]);
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
    let p = Project::at(
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
        servers.iter().map(|p| cmdline(*p)).collect::<Vec<_>>()
    );
}

// ---------------------------------------------------------------------------------------------
// 6. A staging hook that hangs
// ---------------------------------------------------------------------------------------------

#[test]
fn a_hanging_hook_is_killed_after_the_hook_timeout_with_exit_6() {
    let manifest = "name: hang\nhooks:\n  post-staging:\n    - echo started; sleep 1000 & echo $! > @ROOT@/sleep.pid; wait\nprocesses:\n  web: ~\ncommand: sleep 100\n";
    let p = Project::new(&[("stackato.yml", manifest)]);
    let t0 = Instant::now();
    let mut s = p.run(&["--hook-timeout", "2", "--no-watch"]);
    let sleep = read_pid(&p.file("sleep.pid"), SHORT);
    s.expect_exit(6, SHORT);
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(1900) && took < Duration::from_secs(6),
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
    assert_all_dead(
        &[("the hook's sleep".into(), sleep)],
        Duration::from_secs(2),
        "the hook timeout",
    );
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
    let p = Project::new(&[
        (
            "stackato.yml",
            r#"applications:
  - name: front
    path: front
    processes:
      web: python3 ../web.py --ignore-term --pidfile @ROOT@/web.pid
  - name: back
    path: back
    processes:
      web: ~
    command: trap '' TERM; echo $$ > @ROOT@/worker.pid; while :; do sleep 0.2; done
"#,
        ),
        ("web.py", WEB_PY),
        ("front/README", "front\n"),
        ("back/README", "back\n"),
    ]);
    let mut s = p.run(&["--grace", "1", "--no-watch"]);
    s.ready("front:web.0", SHORT);
    let pids = vec![
        ("the web".to_string(), read_pid(&p.file("web.pid"), SHORT)),
        (
            "the worker".to_string(),
            read_pid(&p.file("worker.pid"), SHORT),
        ),
    ];
    for (what, pid) in &pids {
        assert!(alive(*pid), "{what} is not running");
    }
    let t0 = Instant::now();
    s.signal(Signal::SIGINT);
    s.expect_exit(130, SHORT);
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(5),
        "stopped after {took:?} with --grace 1\n{}",
        s.dump()
    );
    for name in ["front:web.0", "back:worker.0"] {
        let line = format!("{name}: did not stop within the grace period; killed");
        assert_eq!(s.err_lines(&line).len(), 1, "no {line:?}\n{}", s.dump());
    }
    assert_all_dead(&pids, Duration::from_secs(1), "exit 130");
}

// ---------------------------------------------------------------------------------------------
// 8. Daemons in their own session
// ---------------------------------------------------------------------------------------------

/// A worker that starts a daemon with `setsid -f` (its own session and group, reparented to
/// the supervisor as its parent exits) that ignores SIGTERM and SIGHUP; `@ENV@` lets the
/// daemon clear its environment (`env -i`).
const DAEMON_YML: &str = "name: daemons\nprocesses:\n  web: ~\ncommand: setsid -f @ENV@ sh -c 'trap \"\" TERM HUP; echo $$ > @ROOT@/daemon.pid; exec sleep 1000' </dev/null >/dev/null 2>&1; echo $$ > @ROOT@/worker.pid; exec sleep 1000\n";

fn daemon_project(env: &str) -> Project {
    Project::new(&[("stackato.yml", &DAEMON_YML.replace("@ENV@", env))])
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
    s.interrupt();
    assert_all_dead(&pids, Duration::from_secs(2), "Ctrl-C (exit 130)");
}

#[test]
fn a_daemon_in_its_own_session_dies_when_the_supervisor_is_sigkilled() {
    // At once (found by the run's mark in its environment), and a daemon that cleared its
    // environment once the supervisor adopted it (it looks for orphans every 0.5 s).
    for (env, wait) in [("", Duration::ZERO), ("env -i", Duration::from_secs(1))] {
        let p = daemon_project(env);
        let mut s = p.run(&["--no-watch"]);
        let pids = daemon_pids(&p);
        std::thread::sleep(wait);
        s.signal(Signal::SIGKILL);
        assert_eq!(s.wait_exit(SHORT), 128 + 9);
        assert_all_dead(
            &pids,
            Duration::from_secs(6),
            &format!("SIGKILL of the supervisor ({env:?} daemon, killed after {wait:?})"),
        );
    }
}
