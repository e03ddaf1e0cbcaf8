//! Starting and stopping the project's services: decide how each runs (its real server, the
//! sqlite fallback, a directory), detect a server left by an earlier run (alive and answering →
//! reuse; dead → clean up and start), move to a new port when the remembered one is taken,
//! wait for readiness with a protocol check, and stop cleanly (then forcibly after a grace
//! period). Servers are detached daemons: they keep running between commands until stopped.

use std::io::IsTerminal;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::sys::wait::{WaitPidFlag, waitpid};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use crate::services::backend::{self, Backend, Bins, Ctx, Probe};
use crate::services::paths::{RunAs, ServicePaths};
use crate::services::ports;
use crate::services::registry::{self, Registry, ServiceRecord};
use crate::services::{Failure, ServiceError};
use crate::state::StateDir;

/// How relational services run (`--db`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbMode {
    /// The real server when installed, else sqlite.
    Auto,
    /// The real server; an error when it is not installed.
    Native,
    /// Always sqlite.
    Sqlite,
}

/// How one service will run.
#[derive(Clone)]
pub enum Mode {
    Native(&'static dyn Backend, Bins),
    /// A relational service replaced by a sqlite file.
    Sqlite(PathBuf),
    /// A filesystem service: a directory.
    Directory(PathBuf),
    /// Nothing to run (user-provided, harbor).
    Nothing,
    /// `--skip-service NAME`: not started, and left out of the environment.
    Skipped,
    /// Cannot run here (server not installed, type not supported): starting it fails with
    /// this message; the environment still advertises it.
    Unavailable(String),
}

impl std::fmt::Debug for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mode::Native(b, _) => write!(f, "Native({})", b.kind()),
            Mode::Sqlite(p) => write!(f, "Sqlite({})", p.display()),
            Mode::Directory(p) => write!(f, "Directory({})", p.display()),
            Mode::Nothing => f.write_str("Nothing"),
            Mode::Skipped => f.write_str("Skipped"),
            Mode::Unavailable(m) => write!(f, "Unavailable({m})"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Planned {
    pub record: ServiceRecord,
    pub mode: Mode,
    /// One line for the user (e.g. why sqlite is used).
    pub note: Option<String>,
}

/// Decide how each service runs. A relational service whose server is missing falls back to
/// sqlite under `--db auto`; any other missing server makes the service `Unavailable` (an
/// error naming what to install when it is started).
pub fn plan(
    state: &StateDir,
    records: &[ServiceRecord],
    db: DbMode,
    skip: &[String],
) -> Result<Vec<Planned>, ServiceError> {
    let mut out = Vec::new();
    for r in records {
        let base = state.path("services").join(&r.name);
        let relational = crate::platform::services::is_relational(&r.kind);
        if skip.contains(&r.name) {
            out.push(Planned {
                record: r.clone(),
                mode: Mode::Skipped,
                note: Some(format!(
                    "{} ({}): skipped (--skip-service); its variables are left out",
                    r.name, r.kind
                )),
            });
            continue;
        }
        if relational && db == DbMode::Sqlite {
            out.push(Planned {
                record: r.clone(),
                mode: Mode::Sqlite(base.join("sqlite.db")),
                note: Some(format!(
                    "{} ({}): using sqlite (--db sqlite)",
                    r.name, r.kind
                )),
            });
            continue;
        }
        let mode = match r.kind.as_str() {
            "filesystem" => Mode::Directory(crate::platform::layout::Layout::filesystem_dir(
                state.root(),
                &r.name,
            )),
            "user-provided" | "harbor" => Mode::Nothing,
            kind => match backend::for_kind(kind) {
                Some(b) => match backend::find(b) {
                    Ok(bins) => Mode::Native(b, bins),
                    Err(ServiceError::Missing { install, .. })
                        if relational && db == DbMode::Auto =>
                    {
                        out.push(Planned {
                            record: r.clone(),
                            mode: Mode::Sqlite(base.join("sqlite.db")),
                            note: Some(format!(
                                "{} ({}): {} is not installed, using sqlite instead; {install}",
                                r.name,
                                r.kind,
                                b.product()
                            )),
                        });
                        continue;
                    }
                    Err(e) => Mode::Unavailable(e.for_service(&r.name).to_string()),
                },
                None => Mode::Unavailable(
                    ServiceError::Unsupported {
                        name: r.name.clone(),
                        kind: r.kind.clone(),
                    }
                    .to_string(),
                ),
            },
        };
        out.push(Planned {
            record: r.clone(),
            mode,
            note: None,
        });
    }
    Ok(out)
}

/// Our record of a running server.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PidFile {
    pub pid: i32,
    pub port: u16,
    pub kind: String,
    pub started: u64,
}

/// How a service came up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum How {
    /// A server from an earlier run was alive and answering.
    Reused,
    /// Started now; `cold` when its data directory was initialised first.
    Started {
        cold: bool,
    },
    Sqlite(PathBuf),
    Directory(PathBuf),
    Nothing,
    Skipped,
}

#[derive(Debug, Clone)]
pub struct Up {
    pub name: String,
    pub kind: String,
    pub how: How,
    pub port: Option<u16>,
    pub pid: Option<i32>,
    pub elapsed: Duration,
    /// Messages for the user (port moved, stale files cleaned, fallback).
    pub notes: Vec<String>,
}

/// Options for starting.
#[derive(Debug, Clone)]
pub struct StartOptions {
    /// How long to wait for each server to answer.
    pub timeout: Duration,
    /// Show a spinner (only on a terminal).
    pub spinner: bool,
}

impl Default for StartOptions {
    fn default() -> Self {
        StartOptions {
            timeout: Duration::from_secs(60),
            spinner: std::io::stderr().is_terminal(),
        }
    }
}

/// A stable id for the project, used to name root-owned data directories.
pub fn project_id(state: &StateDir) -> String {
    let dir = state
        .root()
        .canonicalize()
        .unwrap_or_else(|_| state.root().to_path_buf());
    crate::platform::env::stable_hex(&[&dir.display().to_string()], 16)
}

pub fn paths_for(state: &StateDir, name: &str, run_as: &RunAs) -> ServicePaths {
    ServicePaths::new(state.root(), &project_id(state), name, run_as)
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Whether `pid` is a live process (reaping it first if it is our exited child).
pub fn alive(pid: i32) -> bool {
    if pid <= 0 {
        return false;
    }
    let _ = waitpid(Pid::from_raw(pid), Some(WaitPidFlag::WNOHANG));
    if kill(Pid::from_raw(pid), None).is_err() {
        return false;
    }
    // A zombie is not alive.
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => !s
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => !Path::new("/proc/self").exists(),
    }
}

/// Whether `pid` runs one of `programs` (guards against a recycled pid).
fn runs(pid: i32, programs: &[&[&str]]) -> bool {
    let Ok(cmd) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return !Path::new("/proc/self").exists();
    };
    let first = cmd.split(|b| *b == 0).next().unwrap_or_default();
    let exe = String::from_utf8_lossy(first);
    let name = exe.rsplit('/').next().unwrap_or_default().to_string();
    programs[0].iter().any(|p| name.starts_with(p))
}

fn read_pid(paths: &ServicePaths) -> Option<PidFile> {
    let bytes = std::fs::read(&paths.pid).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// The state of a native service, for `services list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Running {
        pid: i32,
        port: u16,
    },
    /// A pid file whose process is gone (a crash, a kill -9).
    Crashed,
    Stopped,
}

pub fn status(b: &dyn Backend, paths: &ServicePaths) -> Status {
    match read_pid(paths) {
        Some(p) if alive(p.pid) && runs(p.pid, b.programs()) => Status::Running {
            pid: p.pid,
            port: p.port,
        },
        Some(_) => Status::Crashed,
        None => Status::Stopped,
    }
}

/// Bring every planned service up, in order. Holds the `services` lock throughout, so two
/// commands never start the same server twice.
pub fn start_all(
    state: &StateDir,
    planned: &mut [Planned],
    opts: &StartOptions,
    on_up: &mut dyn FnMut(&Up),
) -> Result<Vec<Up>, ServiceError> {
    let _lock = state.lock("services")?;
    let run_as = RunAs::for_services()?;
    let mut ups: Vec<Up> = Vec::new();
    // Refuse before starting anything when a service cannot run here.
    if let Some(msg) = planned.iter().find_map(|p| match &p.mode {
        Mode::Unavailable(m) => Some(m.clone()),
        _ => None,
    }) {
        return Err(ServiceError::Setup(msg));
    }
    for p in planned.iter_mut() {
        let t0 = Instant::now();
        let mut notes: Vec<String> = p.note.iter().cloned().collect();
        let how = match &p.mode {
            Mode::Skipped => How::Skipped,
            Mode::Nothing | Mode::Unavailable(_) => How::Nothing,
            Mode::Sqlite(path) => {
                if let Some(dir) = path.parent() {
                    crate::state::create_private_dir(dir)?;
                }
                How::Sqlite(path.clone())
            }
            Mode::Directory(dir) => {
                std::fs::create_dir_all(dir).map_err(|e| ServiceError::Io {
                    what: format!("create {}", dir.display()),
                    source: e,
                })?;
                How::Directory(dir.clone())
            }
            Mode::Native(b, bins) => {
                let (how, port, pid) =
                    match start_native(state, &mut p.record, *b, bins, &run_as, opts, &mut notes) {
                        Ok(x) => x,
                        Err(e) => {
                            // Leave nothing behind: stop what this call started.
                            for up in &ups {
                                if let (How::Started { .. }, Some(pid)) = (&up.how, up.pid)
                                    && let Some(b) = backend::for_kind(&up.kind)
                                {
                                    let paths = paths_for(state, &up.name, &run_as);
                                    stop_pid(b, &paths, pid, Duration::from_secs(30));
                                    let _ = std::fs::remove_file(&paths.pid);
                                }
                            }
                            return Err(e);
                        }
                    };
                let up = Up {
                    name: p.record.name.clone(),
                    kind: p.record.kind.clone(),
                    how,
                    port: Some(port),
                    pid: Some(pid),
                    elapsed: t0.elapsed(),
                    notes,
                };
                on_up(&up);
                ups.push(up);
                continue;
            }
        };
        let up = Up {
            name: p.record.name.clone(),
            kind: p.record.kind.clone(),
            how,
            port: None,
            pid: None,
            elapsed: t0.elapsed(),
            notes,
        };
        on_up(&up);
        ups.push(up);
    }
    Ok(ups)
}

/// Move a service to a new port: the record, its credentials, and the registry file.
fn move_port(state: &StateDir, record: &mut ServiceRecord, port: u16) -> Result<(), ServiceError> {
    record.port = Some(port);
    if record.credentials.contains_key("port") {
        record
            .credentials
            .insert("port".into(), serde_json::json!(port));
    }
    if let Some(serde_json::Value::String(url)) = record.credentials.get("url").cloned()
        && let Some((head, tail)) = url.rsplit_once('@')
        && let Some((host, rest)) = tail.split_once(':')
    {
        let after = rest.find('/').map_or("", |i| &rest[i..]);
        record.credentials.insert(
            "url".into(),
            serde_json::json!(format!("{head}@{host}:{port}{after}")),
        );
    }
    if record.kind == "harbor" {
        record
            .credentials
            .insert("int_port".into(), serde_json::json!(port));
    }
    let mut reg: Registry = registry::load(state)?;
    reg.services.insert(record.name.clone(), record.clone());
    state.write_json(registry::FILE, &reg)?;
    Ok(())
}

fn start_native(
    state: &StateDir,
    record: &mut ServiceRecord,
    b: &dyn Backend,
    bins: &Bins,
    run_as: &RunAs,
    opts: &StartOptions,
    notes: &mut Vec<String>,
) -> Result<(How, u16, i32), ServiceError> {
    let paths = paths_for(state, &record.name, run_as);
    paths.prepare(run_as)?;
    let mut port = match record.port {
        Some(p) => p,
        None => ports::free_port().map_err(|e| ServiceError::Io {
            what: "find a free port".into(),
            source: e,
        })?,
    };

    // A server from an earlier run?
    if let Some(pf) = read_pid(&paths) {
        if alive(pf.pid) && runs(pf.pid, b.programs()) {
            if pf.port != port {
                // The registry moved on (reset?); that server is not ours to reuse.
                stop_pid(b, &paths, pf.pid, Duration::from_secs(30));
            } else {
                let ctx = Ctx {
                    record,
                    paths: &paths,
                    run_as,
                    bins,
                    port,
                };
                wait_ready(b, &ctx, None, opts, &record.name)?;
                b.provision(&ctx)?;
                return Ok((How::Reused, port, pf.pid));
            }
        } else {
            notes.push(format!(
                "{}: the server of an earlier run (pid {}) is gone; cleaned up its files",
                record.name, pf.pid
            ));
        }
        let ctx = Ctx {
            record,
            paths: &paths,
            run_as,
            bins,
            port,
        };
        b.clean_stale(&ctx);
        let _ = std::fs::remove_file(&paths.pid);
    }

    if !ports::is_free(port) {
        let new = ports::free_port().map_err(|e| ServiceError::Io {
            what: "find a free port".into(),
            source: e,
        })?;
        notes.push(format!(
            "{}: port {port} is taken by another program; now on port {new} (the environment follows)",
            record.name
        ));
        port = new;
        move_port(state, record, port)?;
    }

    let ctx = Ctx {
        record,
        paths: &paths,
        run_as,
        bins,
        port,
    };
    let cold = !b.initialized(&ctx);
    if cold {
        b.init(&ctx)?;
    }
    let mut cmd = b.server(&ctx)?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(&paths.log)
        .map_err(|e| ServiceError::Io {
            what: format!("open {}", paths.log.display()),
            source: e,
        })?;
    let log2 = log.try_clone().map_err(|e| ServiceError::Io {
        what: format!("open {}", paths.log.display()),
        source: e,
    })?;
    cmd.stdout(log).stderr(log2);
    let child = crate::process::spawn(&mut cmd, crate::process::Tie::Daemon(b.stop_signal()))
        .map_err(|e| ServiceError::Io {
            what: format!("start {}", b.product()),
            source: e,
        })?;
    let pid = child.id() as i32;
    drop(child);
    let pf = PidFile {
        pid,
        port,
        kind: record.kind.clone(),
        started: now(),
    };
    if let Err(e) =
        crate::state::write_atomic(&paths.pid, &serde_json::to_vec(&pf).unwrap_or_default())
    {
        // Without its pid file nobody could stop it later: stop it now.
        stop_pid(b, &paths, pid, Duration::from_secs(5));
        return Err(e.into());
    }
    if let Err(e) = wait_ready(b, &ctx, Some(pid), opts, &record.name) {
        stop_pid(b, &paths, pid, Duration::from_secs(5));
        let _ = std::fs::remove_file(&paths.pid);
        return Err(e);
    }
    b.provision(&ctx)?;
    Ok((How::Started { cold }, port, pid))
}

fn wait_ready(
    b: &dyn Backend,
    ctx: &Ctx<'_>,
    pid: Option<i32>,
    opts: &StartOptions,
    name: &str,
) -> Result<(), ServiceError> {
    let t0 = Instant::now();
    let spinner = opts.spinner.then(|| {
        let s = indicatif::ProgressBar::new_spinner();
        s.set_message(format!("waiting for {name} ({}) to answer…", b.kind()));
        s.enable_steady_tick(Duration::from_millis(80));
        s
    });
    let mut delay = Duration::from_millis(5);
    let result = loop {
        let last = match b.probe(ctx) {
            Probe::Ready => break Ok(()),
            Probe::NotYet(why) => why,
        };
        if let Some(pid) = pid
            && !alive(pid)
        {
            break Err(ServiceError::Failed(Box::new(Failure {
                name: name.to_string(),
                kind: b.kind().to_string(),
                what: "exited while starting".into(),
                log: ctx.paths.log.clone(),
                tail: backend::log_tail(&ctx.paths.log, 15),
            })));
        }
        if crate::interrupt::received().is_some() {
            break Err(ServiceError::Setup(format!(
                "interrupted while waiting for {name} to answer"
            )));
        }
        if t0.elapsed() > opts.timeout {
            break Err(ServiceError::Failed(Box::new(Failure {
                name: name.to_string(),
                kind: b.kind().to_string(),
                what: format!(
                    "did not answer within {} s ({last})",
                    opts.timeout.as_secs()
                ),
                log: ctx.paths.log.clone(),
                tail: backend::log_tail(&ctx.paths.log, 15),
            })));
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(50));
    };
    if let Some(s) = spinner {
        s.finish_and_clear();
    }
    result
}

/// Ask a server to stop, wait up to `grace`, then kill its process group.
fn stop_pid(b: &dyn Backend, _paths: &ServicePaths, pid: i32, grace: Duration) -> bool {
    let p = Pid::from_raw(pid);
    let _ = kill(p, b.stop_signal());
    let t0 = Instant::now();
    while alive(pid) {
        if t0.elapsed() > grace {
            let _ = killpg(p, Signal::SIGKILL);
            let _ = kill(p, Signal::SIGKILL);
            let t1 = Instant::now();
            while alive(pid) && t1.elapsed() < Duration::from_secs(5) {
                std::thread::sleep(Duration::from_millis(10));
            }
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    true
}

/// What stopping did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stopped {
    Clean,
    Killed,
    WasNotRunning,
}

/// Stop one native service cleanly (the backend's shutdown signal, then SIGKILL after
/// `grace`). Holds the `services` lock.
pub fn stop(
    state: &StateDir,
    record: &ServiceRecord,
    b: &dyn Backend,
    grace: Duration,
) -> Result<Stopped, ServiceError> {
    let _lock = state.lock("services")?;
    let run_as = RunAs::for_services()?;
    let paths = paths_for(state, &record.name, &run_as);
    let r = match read_pid(&paths) {
        Some(pf) if alive(pf.pid) && runs(pf.pid, b.programs()) => {
            if stop_pid(b, &paths, pf.pid, grace) {
                Stopped::Clean
            } else {
                Stopped::Killed
            }
        }
        _ => Stopped::WasNotRunning,
    };
    let _ = std::fs::remove_file(&paths.pid);
    Ok(r)
}
