//! Starting and stopping the project's services: decide how each runs (its real server, the
//! sqlite fallback, a directory), detect a server left by an earlier run (alive and answering →
//! reuse; dead → clean up and start), move to a new port when the remembered one is taken,
//! wait for readiness with a protocol check, and stop cleanly (then forcibly after a grace
//! period). Servers are detached daemons: they keep running between commands until stopped.
//!
//! The pid file is the project's, so untrusted: a pid is signalled only when `/proc` shows it
//! is this service's server (its program, its user, its data or run directory). A data
//! directory is initialised in a temporary sibling and renamed into place, so an interrupted
//! first start leaves nothing that looks initialised.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::model::ServiceRecord;
use crate::services::backend::{self, Backend, Bins, Ctx, Probe};
use crate::services::paths::{RunAs, ServicePaths};
use crate::services::ports;
use crate::services::registry::{self, Registry};
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
        let base = state
            .path("services")
            .join(crate::state::component(&r.name));
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
            kind => match crate::services::for_kind(kind) {
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
                None => Mode::Unavailable(crate::services::unavailable_message(&r.name, kind)),
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
pub(crate) struct PidFile {
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
    /// Stop requests (Ctrl-C): waiting for a server to answer ends at once.
    pub stop: crate::interrupt::Stop,
}

impl Default for StartOptions {
    fn default() -> Self {
        StartOptions {
            timeout: Duration::from_secs(60),
            stop: crate::interrupt::Stop::never(),
        }
    }
}

/// What [`start_all`] tells its caller as it goes (the caller shows it: a spinner, lines).
#[derive(Debug, Clone, Copy)]
pub enum Progress<'a> {
    /// Waiting for a server to answer (started now, or reused from an earlier run).
    Waiting { name: &'a str, kind: &'a str },
    /// A service is up (or was left out).
    Up(&'a Up),
}

/// A stable id for the project, used to name root-owned data directories.
pub(crate) fn project_id(state: &StateDir) -> String {
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

pub(crate) use crate::process::alive;

/// Why a pid (from the project's pid file) is not this service's server.
#[derive(Debug, thiserror::Error)]
pub(crate) enum NotTheServer {
    #[error("it is not running")]
    NotRunning,
    #[error("/proc: {0}")]
    Proc(std::io::Error),
    #[error("it runs `{runs}`, not {wanted}")]
    Program { runs: String, wanted: String },
    #[error("its owner cannot be read")]
    Owner,
    #[error("it runs as uid {0}, not as the services' user")]
    User(u32),
    #[error("it does not work in this service's data directory {}", .0.display())]
    Elsewhere(PathBuf),
}

/// Whether `pid` is this service's server, from `/proc`: alive, running the backend's
/// program, as our user or the service user, with its working directory or its command line
/// in this service's data or run directory. `Err` says why not. A pid read from the project's
/// pid file is signalled only after this check.
pub(crate) fn check_server(
    pid: i32,
    b: &dyn Backend,
    paths: &ServicePaths,
) -> Result<(), NotTheServer> {
    if !alive(pid) {
        return Err(NotTheServer::NotRunning);
    }
    let proc_dir = PathBuf::from(format!("/proc/{pid}"));
    if !Path::new("/proc/self").exists() {
        // No /proc to ask (not Linux): the liveness check is all there is.
        return Ok(());
    }
    let cmd = std::fs::read(proc_dir.join("cmdline")).map_err(NotTheServer::Proc)?;
    let args: Vec<String> = cmd
        .split(|b| *b == 0)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let first = args.first().map(String::as_str).unwrap_or_default();
    let name = first
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .rsplit('/')
        .next()
        .unwrap_or_default();
    let programs = b.process_names();
    if !programs.iter().any(|p| name.starts_with(p)) {
        return Err(NotTheServer::Program {
            runs: name.to_string(),
            wanted: programs.join(" or "),
        });
    }
    let uid = process_uid(&proc_dir).ok_or(NotTheServer::Owner)?;
    if !server_uids().contains(&uid) {
        return Err(NotTheServer::User(uid));
    }
    let mine: Vec<PathBuf> = [&paths.data, &paths.run]
        .into_iter()
        .flat_map(|p| [p.clone(), p.canonicalize().unwrap_or_else(|_| p.clone())])
        .collect();
    let cwd_ok = std::fs::read_link(proc_dir.join("cwd"))
        .is_ok_and(|cwd| mine.iter().any(|m| cwd.starts_with(m)));
    // An argument that is (or, after `--option=` / `name=`, whose value is) a path in them.
    let args_ok = args.iter().skip(1).any(|a| {
        let value = a.split_once('=').map_or(a.as_str(), |(_, v)| v);
        let value = Path::new(value);
        value.is_absolute() && mine.iter().any(|m| value.starts_with(m))
    });
    if cwd_ok || args_ok {
        Ok(())
    } else {
        Err(NotTheServer::Elsewhere(paths.data.clone()))
    }
}

/// The effective uid of the process whose `/proc` directory is `proc_dir`.
fn process_uid(proc_dir: &Path) -> Option<u32> {
    let status = std::fs::read_to_string(proc_dir.join("status")).ok();
    let from_status = status.as_deref().and_then(|s| {
        s.lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|ids| ids.split_whitespace().nth(1))
            .and_then(|u| u.parse().ok())
    });
    from_status.or_else(|| std::fs::metadata(proc_dir).ok().map(|m| m.uid()))
}

/// The uids our servers run as: ours, and as root the service user (or `nobody`).
fn server_uids() -> Vec<u32> {
    let me = nix::unistd::Uid::effective();
    let mut v = vec![me.as_raw()];
    if me.is_root() {
        for name in [crate::services::paths::SERVICE_USER, "nobody"] {
            if let Some(u) = nix::unistd::User::from_name(name).ok().flatten() {
                v.push(u.uid.as_raw());
            }
        }
    }
    v
}

fn read_pid(paths: &ServicePaths) -> Option<PidFile> {
    let bytes = crate::state::read_private(&paths.pid, 1 << 20).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// A note for a pid file whose process is not this service's server.
fn stale_note(name: &str, pf: &PidFile, why: &NotTheServer) -> String {
    if alive(pf.pid) {
        format!(
            "{name}: its pid file names pid {}, which is not this service's server ({why}); treated the pid file as stale and signalled nothing",
            pf.pid
        )
    } else {
        format!(
            "{name}: the server of an earlier run (pid {}) is gone; cleaned up its files",
            pf.pid
        )
    }
}

/// The state of a native service, for `services list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Status {
    Running {
        pid: i32,
        port: u16,
    },
    /// A pid file whose process is gone (a crash, a kill -9).
    Crashed,
    Stopped,
}

pub(crate) fn status(b: &dyn Backend, paths: &ServicePaths) -> Status {
    match read_pid(paths) {
        Some(p) if check_server(p.pid, b, paths).is_ok() => Status::Running {
            pid: p.pid,
            port: p.port,
        },
        Some(_) => Status::Crashed,
        None => Status::Stopped,
    }
}

/// Move data kept by an earlier version under a plain, unsafe name to its encoded place.
fn adopt_legacy(state: &StateDir, name: &str, run_as: &RunAs) {
    paths_for(state, name, run_as).adopt_legacy(name, &project_id(state));
}

/// Initialise the data directory in a temporary sibling (`data.init`) and rename it into
/// place, so that a first start killed half-way leaves no `data` that looks initialised. A
/// `data` that is there but not initialised (left by an earlier version, or damaged) is kept
/// aside as `data.broken-<time>`, never deleted.
fn init_atomically(
    b: &dyn Backend,
    ctx: &Ctx<'_>,
    notes: &mut Vec<String>,
) -> Result<(), ServiceError> {
    let paths = ctx.paths;
    let base = paths.root_base();
    let io = |what: String| move |source| ServiceError::Io { what, source };
    if std::fs::symlink_metadata(&paths.data).is_ok() {
        crate::state::check_inside(base, &paths.data)?;
        let aside = paths.root.join(format!("data.broken-{}", now()));
        std::fs::rename(&paths.data, &aside).map_err(io(format!(
            "move the incomplete {} aside",
            paths.data.display()
        )))?;
        notes.push(format!(
            "{}: its data directory was not completely initialised (a first start that was interrupted?); kept it as {} and initialised a new one",
            ctx.record.name,
            aside.display()
        ));
    }
    let tmp = paths.root.join("data.init");
    let clear = |tmp: &Path| -> Result<(), ServiceError> {
        if std::fs::symlink_metadata(tmp).is_ok() {
            crate::state::check_inside(base, tmp)?;
            std::fs::remove_dir_all(tmp)
                .map_err(io(format!("remove the incomplete {}", tmp.display())))?;
        }
        Ok(())
    };
    clear(&tmp)?;
    let mut tmp_paths = paths.clone();
    tmp_paths.data = tmp.clone();
    let tctx = Ctx {
        record: ctx.record,
        paths: &tmp_paths,
        run_as: ctx.run_as,
        bins: ctx.bins,
        port: ctx.port,
    };
    if let Err(e) = b.init(&tctx) {
        let _ = clear(&tmp);
        return Err(e);
    }
    std::fs::rename(&tmp, &paths.data).map_err(io(format!(
        "move the new data directory into place as {}",
        paths.data.display()
    )))?;
    if let Ok(d) = std::fs::File::open(&paths.root) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// The hint for a server with data that did not come up.
fn reset_hint(b: &dyn Backend, name: &str) -> Option<String> {
    (b.kind() != "memcached").then(|| {
        format!(
            "if its data directory is damaged (a first start that was interrupted, a full disk), `stackato-local services reset {name}` deletes its data and credentials and starts it afresh"
        )
    })
}

/// Bring every planned service up, in order. Holds the `services` lock throughout, so two
/// commands never start the same server twice.
pub fn start_all(
    state: &StateDir,
    planned: &mut [Planned],
    opts: &StartOptions,
    on: &mut dyn FnMut(Progress<'_>),
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
                adopt_legacy(state, &p.record.name, &run_as);
                if let Some(dir) = path.parent() {
                    crate::state::create_private_dir_in(state.root(), dir)?;
                }
                How::Sqlite(path.clone())
            }
            Mode::Directory(dir) => {
                adopt_legacy(state, &p.record.name, &run_as);
                crate::state::create_private_dir_in(state.root(), dir)?;
                How::Directory(dir.clone())
            }
            Mode::Native(b, bins) => {
                let starting = Starting {
                    state,
                    run_as: &run_as,
                    opts,
                };
                let (how, port, pid) =
                    match start_native(starting, &mut p.record, *b, bins, &mut notes, on) {
                        Ok(x) => x,
                        Err(e) => {
                            // Leave nothing behind: stop what this call started.
                            for up in &ups {
                                if let (How::Started { .. }, Some(pid)) = (&up.how, up.pid)
                                    && let Some(b) = crate::services::for_kind(&up.kind)
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
                on(Progress::Up(&up));
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
        on(Progress::Up(&up));
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

/// What every start of one [`start_all`] shares.
#[derive(Clone, Copy)]
struct Starting<'a> {
    state: &'a StateDir,
    run_as: &'a RunAs,
    opts: &'a StartOptions,
}

fn start_native(
    s: Starting<'_>,
    record: &mut ServiceRecord,
    b: &dyn Backend,
    bins: &Bins,
    notes: &mut Vec<String>,
    on: &mut dyn FnMut(Progress<'_>),
) -> Result<(How, u16, i32), ServiceError> {
    let Starting {
        state,
        run_as,
        opts,
    } = s;
    adopt_legacy(state, &record.name, run_as);
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
        let verdict = check_server(pf.pid, b, &paths);
        if verdict.is_ok() {
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
                on(Progress::Waiting {
                    name: &record.name,
                    kind: b.kind(),
                });
                wait_ready(b, &ctx, None, opts, &record.name)?;
                b.provision(&ctx)?;
                return Ok((How::Reused, port, pf.pid));
            }
        } else if let Err(why) = &verdict {
            notes.push(stale_note(&record.name, &pf, why));
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
        // A server killed a moment ago may still hold its port: its process is gone from
        // `/proc` (or a zombie) before its last threads have closed their sockets. Give the
        // port a moment before deciding another program has it.
        let until = Instant::now() + Duration::from_secs(3);
        while !ports::is_free(port) && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(20));
        }
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
        init_atomically(b, &ctx, notes)?;
    }
    let mut cmd = b.server(&ctx)?;
    let log = crate::state::open_append(&paths.log).map_err(|e| ServiceError::Io {
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
    on(Progress::Waiting {
        name: &record.name,
        kind: b.kind(),
    });
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
    let mut delay = Duration::from_millis(5);
    loop {
        let last = match b.probe(ctx) {
            Probe::Ready => return Ok(()),
            Probe::NotYet(why) => why,
        };
        if let Some(pid) = pid
            && !alive(pid)
        {
            return Err(ServiceError::Failed(Box::new(Failure {
                name: name.to_string(),
                kind: b.kind().to_string(),
                what: "exited while starting".into(),
                log: ctx.paths.log.clone(),
                tail: backend::log_tail(&ctx.paths.log, 15),
                hint: reset_hint(b, name),
            })));
        }
        let interrupted =
            || ServiceError::Setup(format!("interrupted while waiting for {name} to answer"));
        if opts.stop.requested().is_some() {
            return Err(interrupted());
        }
        if t0.elapsed() > opts.timeout {
            return Err(ServiceError::Failed(Box::new(Failure {
                name: name.to_string(),
                kind: b.kind().to_string(),
                what: format!(
                    "did not answer within {} s ({last})",
                    opts.timeout.as_secs()
                ),
                log: ctx.paths.log.clone(),
                tail: backend::log_tail(&ctx.paths.log, 15),
                hint: reset_hint(b, name),
            })));
        }
        // The next probe; a stop ends the wait at once.
        if opts.stop.sleep(delay) {
            return Err(interrupted());
        }
        delay = (delay * 2).min(Duration::from_millis(50));
    }
}

/// Ask a server to stop, wait up to `grace`, then kill its process group.
fn stop_pid(b: &dyn Backend, paths: &ServicePaths, pid: i32, grace: Duration) -> bool {
    let clean = crate::process::stop_pid(pid, b.stop_signal(), grace);
    b.after_stop(paths);
    clean
}

/// What stopping did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stopped {
    Clean,
    Killed,
    WasNotRunning,
    /// The pid file named a live process that is not this service's server: nothing was
    /// signalled, the pid file was removed. The note says so.
    Stale(String),
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
        Some(pf) => match check_server(pf.pid, b, &paths) {
            Ok(()) => {
                if stop_pid(b, &paths, pf.pid, grace) {
                    Stopped::Clean
                } else {
                    Stopped::Killed
                }
            }
            Err(why) if alive(pf.pid) => Stopped::Stale(stale_note(&record.name, &pf, &why)),
            Err(_) => Stopped::WasNotRunning,
        },
        None => Stopped::WasNotRunning,
    };
    if std::fs::symlink_metadata(&paths.pid).is_ok_and(|m| !m.is_dir()) {
        let _ = std::fs::remove_file(&paths.pid);
    }
    Ok(r)
}
