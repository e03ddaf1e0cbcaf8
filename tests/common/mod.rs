//! Helpers shared by the integration tests: write small apps into temp dirs, run the real
//! `stackato-local` binary in them, and look at what a user sees (exit code, stdout, stderr,
//! the JSON of `config --json`).
//!
//! For the tests that run apps (tests/run.rs, watch.rs, faults.rs, security.rs):
//! [`project`] (a temp project with the app in `<root>/app` and a guard that stops its
//! services and kills what is left), [`session`] (a running `stackato-local run`: waiting for
//! output, signals, the exit code), [`procs`] (processes by pid, from /proc) and [`http`]
//! (`GET` on 127.0.0.1). [`corpus`] runs a check over the shared corpus of real-world files.
//! For the tests of `services` (tests/services.rs): [`services`] (a project whose manifest
//! declares services, their credentials, the servers' own clients).

#![allow(dead_code)]

pub mod corpus;
pub mod http;
pub mod procs;
pub mod project;
pub mod python27;
pub mod services;
pub mod session;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

/// A generous deadline for things that take a fraction of a second when all is well.
pub const SHORT: Duration = Duration::from_secs(20);
/// Time for services to start (a cold postgres or MariaDB initialises its data first).
pub const SERVICES: Duration = Duration::from_secs(120);

/// How often [`wait_until`] looks again.
pub const POLL: Duration = Duration::from_millis(20);

/// Wait for an event: poll `done` until it holds. `within` is a hang guard, never a speed
/// limit (speed is measured by the benches): past it, panic with `what()` (say what did not
/// happen, with whatever helps to see why).
#[track_caller]
pub fn wait_until(within: Duration, mut done: impl FnMut() -> bool, what: impl FnOnce() -> String) {
    let deadline = Instant::now() + within;
    while !done() {
        if Instant::now() > deadline {
            panic!("{} (waited {within:?})", what());
        }
        std::thread::sleep(POLL);
    }
}

/// The binary cargo built for these tests.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_stackato-local")
}

/// A temp dir holding `files` (path relative to the dir, text). Parent dirs are created.
pub fn app(files: &[(&str, &str)]) -> TempDir {
    let dir = tempfile::Builder::new()
        .prefix("stackato-local-test-")
        .tempdir()
        .expect("create temp dir");
    for (rel, text) in files {
        write(dir.path(), rel, text.as_bytes());
    }
    dir
}

/// Like [`app`], with raw bytes (for non-UTF-8 input).
pub fn app_bytes(files: &[(&str, &[u8])]) -> TempDir {
    let dir = app(&[]);
    for (rel, bytes) in files {
        write(dir.path(), rel, bytes);
    }
    dir
}

/// Copy a fixture directory `from` into `to` (regular files and directories; links and
/// special files left out), never a `.stackato-local` a local run may have left there, nor
/// an entry `skip(dir, name)` rejects.
pub fn copy_tree(from: &Path, to: &Path, skip: &dyn Fn(&Path, &str) -> bool) {
    std::fs::create_dir_all(to).expect("mkdir");
    for e in std::fs::read_dir(from).expect("read fixture") {
        let e = e.expect("entry");
        let name = e.file_name();
        let n = name.to_string_lossy();
        if n == ".stackato-local" || skip(from, &n) {
            continue;
        }
        let ty = e.file_type().expect("type");
        if ty.is_dir() {
            copy_tree(&e.path(), &to.join(&name), skip);
        } else if ty.is_file() {
            std::fs::copy(e.path(), to.join(&name)).expect("copy");
        }
    }
}

/// Write one file below `dir`, creating parent directories.
pub fn write(dir: &Path, rel: &str, bytes: &[u8]) {
    let p = dir.join(rel);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).expect("create parent dirs");
    }
    std::fs::write(&p, bytes).expect("write test file");
}

/// A single-file app: `stackato.yml` with `text`.
pub fn yml(text: &str) -> TempDir {
    app(&[("stackato.yml", text)])
}

/// The permission bits of `p` (not following a symlink).
pub fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::symlink_metadata(p)
        .unwrap_or_else(|e| panic!("stat {}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o7777
}

/// The canonical (symlink-resolved) form of `p`, as the tool prints paths.
pub fn canon(p: &Path) -> PathBuf {
    p.canonicalize().expect("canonicalize")
}

/// The canonical path of `dir` joined with `rel`, as a string.
pub fn canon_str(dir: &Path, rel: &str) -> String {
    let base = canon(dir);
    let p = if rel.is_empty() { base } else { base.join(rel) };
    p.display().to_string()
}

/// A command for the binary, run in `dir`, with an environment that does not leak the
/// developer's settings into the test (target, colours) and no terminal on stdin.
pub fn cmd(dir: &Path) -> Command {
    let mut c = Command::new(bin());
    c.current_dir(dir)
        .env_remove("STACKATO_TARGET")
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR")
        .env_remove("CLICOLOR_FORCE")
        .env_remove("RUST_BACKTRACE")
        .env_remove("STACKATO_LOCAL_SERVER_PATH")
        // The tests' own manifests are trusted; tests of the trust prompt remove this.
        .env("STACKATO_LOCAL_TRUST", "1")
        .stdin(Stdio::null());
    c
}

/// Where the product looks for server programs besides `PATH`: `/usr/sbin`,
/// `/usr/local/sbin` and `/usr/lib/postgresql/*/bin` (newest first).
fn extra_program_dirs() -> Vec<PathBuf> {
    let mut v = vec![PathBuf::from("/usr/sbin"), PathBuf::from("/usr/local/sbin")];
    let mut pg: Vec<(u64, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| {
                    let version = e
                        .file_name()
                        .to_str()
                        .and_then(|n| n.parse::<f64>().ok())
                        .map_or(0, |f| (f * 100.0) as u64);
                    (version, e.path().join("bin"))
                })
                .filter(|(_, p)| p.is_dir())
                .collect()
        })
        .unwrap_or_default();
    pg.sort_by_key(|b| std::cmp::Reverse(b.0));
    v.extend(pg.into_iter().map(|(_, p)| p));
    v
}

/// Find a program the way the product does (`PATH`, then `/usr/sbin`, `/usr/local/sbin`,
/// `/usr/lib/postgresql/*/bin`). `name` may list alternatives: `mariadbd|mysqld`.
pub fn find_program(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<PathBuf> = std::env::split_paths(&path)
        .chain(extra_program_dirs())
        .collect();
    name.split('|').find_map(|alt| {
        dirs.iter().map(|d| d.join(alt)).find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
    })
}

/// Whether the program `bin` (alternatives separated by `|`) is installed. When it is not,
/// the calling test should return early: this prints a loud SKIP line, or panics when
/// `STACKATO_LOCAL_REQUIRE_SERVICES=1` (CI), so a missing server never passes silently.
#[track_caller]
pub fn require(bin: &str) -> bool {
    if find_program(bin).is_some() {
        return true;
    }
    let test = std::thread::current()
        .name()
        .unwrap_or("<unnamed test>")
        .to_string();
    if std::env::var("STACKATO_LOCAL_REQUIRE_SERVICES").as_deref() == Ok("1") {
        panic!("{test}: {bin} not installed, and STACKATO_LOCAL_REQUIRE_SERVICES=1 requires it");
    }
    skip(&format!(
        "{test}: {bin} not installed (set STACKATO_LOCAL_REQUIRE_SERVICES=1 to fail instead)"
    ));
    false
}

/// Print `SKIP <why>` loudly. Straight to the process's stderr, not through `eprintln!`,
/// which the test harness captures and hides for passing tests: a skip must be seen.
pub fn skip(why: &str) {
    use std::io::Write;
    let star = "*".repeat(78);
    let _ = writeln!(std::io::stderr().lock(), "\n{star}\nSKIP {why}\n{star}");
}

/// [`require`] for each of `bins`; stops at the first missing one.
#[track_caller]
pub fn require_all(bins: &[&str]) -> bool {
    bins.iter().all(|b| require(b))
}

/// What one run of the binary showed.
#[derive(Debug)]
pub struct Run {
    pub args: Vec<String>,
    /// `None` when the process was killed by a signal.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn from_output(args: Vec<String>, out: Output) -> Run {
        Run {
            args,
            code: out.status.code(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Everything the run printed, for failure messages.
    pub fn dump(&self) -> String {
        format!(
            "args: {:?}\nexit: {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.args, self.code, self.stdout, self.stderr
        )
    }

    /// Assert the exit code (and that it was not a panic or a signal).
    #[track_caller]
    pub fn code(&self, expected: i32) -> &Run {
        assert_eq!(
            self.code,
            Some(expected),
            "unexpected exit code\n{}",
            self.dump()
        );
        assert!(
            !self.stderr.contains("panicked"),
            "the binary panicked\n{}",
            self.dump()
        );
        self
    }

    /// Assert stderr contains `needle`.
    #[track_caller]
    pub fn stderr_has(&self, needle: &str) -> &Run {
        assert!(
            self.stderr.contains(needle),
            "stderr lacks {needle:?}\n{}",
            self.dump()
        );
        self
    }

    /// Assert stderr does not contain `needle`.
    #[track_caller]
    pub fn stderr_lacks(&self, needle: &str) -> &Run {
        assert!(
            !self.stderr.contains(needle),
            "stderr unexpectedly has {needle:?}\n{}",
            self.dump()
        );
        self
    }

    /// Assert stdout contains `needle`.
    #[track_caller]
    pub fn stdout_has(&self, needle: &str) -> &Run {
        assert!(
            self.stdout.contains(needle),
            "stdout lacks {needle:?}\n{}",
            self.dump()
        );
        self
    }

    /// Assert some stderr line starts with `prefix` (e.g. `stackato.yml:2:12: error:`) and
    /// contains every one of `parts`. Returns that line.
    #[track_caller]
    pub fn diag(&self, prefix: &str, parts: &[&str]) -> String {
        let found = self
            .stderr
            .lines()
            .find(|l| l.starts_with(prefix) && parts.iter().all(|p| l.contains(p)));
        match found {
            Some(l) => l.to_string(),
            None => panic!(
                "no stderr line starts with {prefix:?} and contains {parts:?}\n{}",
                self.dump()
            ),
        }
    }

    /// The `file:line:col: severity:` lines of `--format short` output.
    pub fn short_lines(&self, severity: &str) -> Vec<&str> {
        let tag = format!(": {severity}: ");
        self.stderr
            .lines()
            .filter(|l| l.contains(&tag) && !l.starts_with(severity))
            .collect()
    }

    /// Stdout parsed as JSON.
    #[track_caller]
    pub fn json(&self) -> Value {
        match serde_json::from_str(&self.stdout) {
            Ok(v) => v,
            Err(e) => panic!("stdout is not JSON ({e})\n{}", self.dump()),
        }
    }
}

/// Run `cmd` to the end with a generous deadline: a hang is a failure (the process is killed),
/// never a stuck test.
pub fn run_deadline(mut c: Command, what: &str) -> Run {
    let out_dir = app(&[]);
    let out = out_dir.path().join("stdout");
    let err = out_dir.path().join("stderr");
    c.stdout(std::fs::File::create(&out).expect("stdout file"))
        .stderr(std::fs::File::create(&err).expect("stderr file"));
    let mut child = c.spawn().expect("spawn stackato-local");
    let deadline = Instant::now() + SHORT;
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait") {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: still running after {SHORT:?} (it hangs); killed");
        }
        std::thread::sleep(POLL);
    };
    Run {
        args: vec![what.to_string()],
        code: status.code(),
        stdout: std::fs::read_to_string(&out).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err).unwrap_or_default(),
    }
}

/// Run the binary in `dir` with `args`.
pub fn run(dir: &Path, args: &[&str]) -> Run {
    run_with(dir, args, &[])
}

/// Run the binary in `dir` with `args` and extra environment variables.
pub fn run_with(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut c = cmd(dir);
    c.args(args);
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().expect("run stackato-local");
    Run::from_output(args.iter().map(|s| s.to_string()).collect(), out)
}

/// The binary in `dir` as a user who trusted nothing yet and passes no `--trust`: `HOME` at
/// `home` (so the trust store is there), no XDG_DATA_HOME, no STACKATO_LOCAL_TRUST.
pub fn untrusting(dir: &Path, home: &Path, args: &[&str]) -> Run {
    let out = cmd(dir)
        .env_remove("STACKATO_LOCAL_TRUST")
        .env_remove("XDG_DATA_HOME")
        .env("HOME", home)
        .args(args)
        .output()
        .expect("run stackato-local");
    Run::from_output(args.iter().map(|s| s.to_string()).collect(), out)
}

/// [`untrusting`], for commands that must not block (on a FIFO, `/dev/zero`, …): killed and
/// reported if they have not ended by [`SHORT`]. Exit code, stdout, stderr.
pub fn untrusting_bounded(dir: &Path, home: &Path, args: &[&str]) -> (Option<i32>, String, String) {
    let mut child = Command::new(bin())
        .args(args)
        .current_dir(dir)
        .env("HOME", home)
        .env_remove("XDG_DATA_HOME")
        .env_remove("STACKATO_LOCAL_TRUST")
        .env_remove("STACKATO_LOCAL_DIR")
        .env_remove("STACKATO_LOCAL_STAMP")
        .env_remove("STACKATO_LOCAL_DENIED")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start stackato-local");
    let t0 = std::time::Instant::now();
    loop {
        if let Ok(Some(_)) = child.try_wait() {
            break;
        }
        if t0.elapsed() > SHORT {
            let _ = child.kill();
            let out = child.wait_with_output().expect("output");
            panic!(
                "`{}` hung (it read something it must not)\n{}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().expect("output");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `script` in a bash that loaded the shell hook, in `cwd`, with `home` as `$HOME`, as a user
/// who trusted nothing by default; `env` on top. Its stdout and stderr together.
pub fn hooked_bash(script: &str, cwd: &Path, home: &Path, env: &[(&str, &str)]) -> String {
    let full = format!("eval \"$('{}' hook bash)\"\n{script}", bin());
    let mut c = Command::new("bash");
    c.args(["--norc", "--noprofile", "-c", &full])
        .current_dir(cwd)
        .env("HOME", home)
        .env_remove("XDG_DATA_HOME")
        .env_remove("STACKATO_LOCAL_TRUST")
        .env_remove("STACKATO_LOCAL_DIR")
        .env_remove("STACKATO_LOCAL_BACKUP")
        .env_remove("STACKATO_LOCAL_STAMP")
        .env_remove("STACKATO_LOCAL_DENIED");
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.output().expect("run bash");
    assert!(out.status.success(), "{out:?}");
    format!(
        "{}\n--stderr--\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A fresh home directory for [`untrusting`].
pub fn home() -> TempDir {
    tempfile::tempdir().expect("a home")
}

/// `check --format short` in `dir`.
pub fn check(dir: &Path) -> Run {
    run(dir, &["check", "--format", "short"])
}

/// `config --json` in `dir`; asserts exit 0 and returns the parsed JSON.
#[track_caller]
pub fn config_json(dir: &Path) -> Value {
    let r = run(dir, &["config", "--json"]);
    r.code(0);
    r.json()
}

/// `manifest.applications` of a `config --json` document.
#[track_caller]
pub fn apps(doc: &Value) -> &serde_json::Map<String, Value> {
    doc.pointer("/manifest/applications")
        .and_then(Value::as_object)
        .unwrap_or_else(|| panic!("no manifest.applications object in {doc:#}"))
}

/// One application of a `config --json` document.
#[track_caller]
pub fn app_of<'a>(doc: &'a Value, name: &str) -> &'a Value {
    apps(doc)
        .get(name)
        .unwrap_or_else(|| panic!("no application {name:?} in {doc:#}"))
}

/// The single application of a manifest in `dir`, from `config --json`.
#[track_caller]
pub fn only_app(dir: &Path) -> Value {
    let doc = config_json(dir);
    let a = apps(&doc);
    assert_eq!(a.len(), 1, "expected exactly one application in {doc:#}");
    a.values().next().cloned().unwrap_or(Value::Null)
}

/// Whether the tests run as root (as in CI).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Every regular file below `dir` (not following symlinks).
pub fn files_below(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return out;
    };
    for e in rd.filter_map(Result::ok) {
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() {
            out.extend(files_below(&e.path()));
        } else if ft.is_file() {
            out.push(e.path());
        }
    }
    out
}

/// The stderr lines that mention `needle`.
pub fn lines_with<'a>(text: &'a str, needle: &str) -> Vec<&'a str> {
    text.lines().filter(|l| l.contains(needle)).collect()
}
