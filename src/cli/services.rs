//! `stackato-local services …` (list, start, stop, logs, reset, shell) and `dbshell`: the
//! project's local service stand-ins.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use crate::cli::{Global, ServiceOpts, report_load_error, terminal_asker};
use crate::exit;
use crate::interrupt::Stop;
use crate::manifest::{self, Loaded};
use crate::services::ServiceError;
use crate::services::backend::{self, Ctx};
use crate::services::lifecycle::{self, How, Mode, Planned, Progress, StartOptions, Status, Up};
use crate::services::paths::RunAs;
use crate::services::registry;
use crate::state::StateDir;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    pub command: Option<Cmd>,
    #[command(flatten)]
    pub opts: ServiceOpts,
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum Cmd {
    /// Each service: type, state, port, data size (the default).
    List,
    /// Start services (all, or those named) and wait until they answer.
    Start { names: Vec<String> },
    /// Stop services cleanly (all, or those named).
    Stop {
        names: Vec<String>,
        /// Seconds to wait for a clean stop before killing.
        #[arg(long, default_value_t = 30)]
        grace: u64,
    },
    /// Print a service's server log.
    Logs {
        name: String,
        /// Only the last N lines.
        #[arg(short = 'n', long, default_value_t = 100)]
        lines: usize,
    },
    /// Delete a service's data and credentials; it starts empty next time.
    Reset {
        name: String,
        /// Do not ask for confirmation.
        #[arg(long)]
        yes: bool,
    },
    /// Open the service's client (psql, mariadb, redis-cli) with the app's credentials.
    Shell { name: String },
}

/// `dbshell [NAME]`.
#[derive(Debug, clap::Args)]
pub(crate) struct DbshellArgs {
    /// The service (default: the only mysql/postgresql/redis service).
    pub name: Option<String>,
    #[command(flatten)]
    pub opts: ServiceOpts,
}

/// Load the manifest and open the state dir, or print why not.
pub(super) fn open(g: &Global) -> Result<(Loaded, StateDir), i32> {
    let mut asker = terminal_asker();
    let loaded = manifest::load(&g.load, &mut asker).map_err(|e| report_load_error(g, &e))?;
    crate::cli::print_warnings_brief(&loaded.sources, &loaded.warnings);
    let state = open_state(g, &loaded.manifest.dir)?;
    Ok((loaded, state))
}

/// The project's state directory; with `--trust` (or STACKATO_LOCAL_TRUST=1), one this
/// machine did not create is adopted (with a note), otherwise refused with exit 8 (see
/// `StateError::Foreign`).
pub(super) fn open_state(g: &Global, dir: &std::path::Path) -> Result<StateDir, i32> {
    match StateDir::open_with(dir, g.trust || crate::trust::env_trust()) {
        Ok((state, adopted)) => {
            if adopted {
                eprintln!(
                    "note: adopted {}, which this machine's stackato-local did not create (--trust)",
                    crate::diag::display_path(state.root())
                );
            }
            Ok(state)
        }
        Err(e) => {
            eprintln!("error: {e}");
            Err(e.exit_code())
        }
    }
}

/// The trust gate before anything of the project runs: print the refusal, return its code.
pub(super) fn gate(g: &Global, loaded: &Loaded) -> Result<crate::trust::Granted, i32> {
    crate::cli::trust_prompt::require(loaded, g.trust, &Stop::never()).map_err(|r| {
        eprintln!("error: {r}");
        r.exit_code()
    })
}

/// Provision and plan every service of the manifest, or print why not.
pub(super) fn plan(
    g: &Global,
    loaded: &Loaded,
    state: &StateDir,
    opts: &ServiceOpts,
) -> Result<Vec<Planned>, i32> {
    crate::plan::services::provision(loaded, state, opts.db_mode(), &opts.skip_service)
        .map_err(|e| crate::cli::report_plan_error(g, loaded, e))
}

/// Print a service error and return its exit code.
pub(super) fn report(e: &ServiceError) -> i32 {
    eprintln!("error: {e}");
    match e {
        ServiceError::State(_) => exit::IO,
        _ => exit::SERVICE,
    }
}

/// One line per service as it comes up.
pub(super) fn describe(up: &Up) -> String {
    let addr = up
        .port
        .map(|p| format!(" on 127.0.0.1:{p}"))
        .unwrap_or_default();
    let how = match &up.how {
        How::Reused => "already running".to_string(),
        How::Started { cold: true } => "started; data directory initialised".to_string(),
        How::Started { cold: false } => "started".to_string(),
        How::Sqlite(p) => format!("sqlite file {}", crate::diag::display_path(p)),
        How::Directory(p) => format!("directory {}", crate::diag::display_path(p)),
        How::Nothing => "nothing to run".to_string(),
        How::Skipped => "skipped".to_string(),
    };
    format!(
        "{} ({}) ready{addr} in {:.2} s ({how})",
        up.name,
        up.kind,
        up.elapsed.as_secs_f64()
    )
}

/// Bring the planned services up, printing a line each; `Err` is an exit code. `stop` ends
/// the wait for a server to answer.
pub(super) fn start(
    planned: &mut [Planned],
    state: &StateDir,
    opts: &ServiceOpts,
    stop: &Stop,
) -> Result<Vec<Up>, i32> {
    let so = StartOptions {
        timeout: Duration::from_secs(opts.service_timeout),
        stop: stop.clone(),
    };
    let mut err = anstream::stderr();
    let terminal = std::io::stderr().is_terminal();
    let mut spinner: Option<indicatif::ProgressBar> = None;
    let r = lifecycle::start_all(state, planned, &so, &mut |p| match p {
        Progress::Waiting { name, kind } => {
            if terminal {
                let s = spinner.get_or_insert_with(|| {
                    let s = indicatif::ProgressBar::new_spinner();
                    s.enable_steady_tick(Duration::from_millis(80));
                    s
                });
                s.set_message(format!("waiting for {name} ({kind}) to answer…"));
            }
        }
        Progress::Up(up) => {
            if let Some(s) = spinner.take() {
                s.finish_and_clear();
            }
            for n in &up.notes {
                let _ = writeln!(err, "services: {n}");
            }
            if !matches!(up.how, How::Skipped) {
                let _ = writeln!(err, "services: {}", describe(up));
            }
        }
    });
    if let Some(s) = spinner.take() {
        s.finish_and_clear();
    }
    r.map_err(|e| report(&e))
}

/// Stop the native services in `planned` (reverse order).
pub(super) fn stop(planned: &[Planned], state: &StateDir, grace: Duration) -> i32 {
    let mut code = exit::OK;
    for p in planned.iter().rev() {
        if let Mode::Native(b, _) = &p.mode {
            match lifecycle::stop(state, &p.record, *b, grace) {
                Ok(lifecycle::Stopped::Clean) => {
                    eprintln!("services: {} ({}) stopped", p.record.name, p.record.kind)
                }
                Ok(lifecycle::Stopped::Killed) => eprintln!(
                    "services: {} ({}) did not stop within {} s and was killed",
                    p.record.name,
                    p.record.kind,
                    grace.as_secs()
                ),
                Ok(lifecycle::Stopped::WasNotRunning) => {}
                Ok(lifecycle::Stopped::Stale(note)) => eprintln!("services: {note}"),
                Err(e) => code = report(&e),
            }
        }
    }
    code
}

fn select<'a>(planned: &'a mut [Planned], names: &[String]) -> Result<Vec<&'a mut Planned>, i32> {
    for n in names {
        if !planned.iter().any(|p| p.record.name == *n) {
            let known: Vec<&str> = planned.iter().map(|p| p.record.name.as_str()).collect();
            eprintln!(
                "error: no service named \"{n}\" (the manifest has: {})",
                known.join(", ")
            );
            return Err(exit::USAGE);
        }
    }
    Ok(planned
        .iter_mut()
        .filter(|p| names.is_empty() || names.contains(&p.record.name))
        .collect())
}

pub(super) fn run(g: &Global, args: &Args) -> i32 {
    let (loaded, state) = match open(g) {
        Ok(x) => x,
        Err(c) => return c,
    };
    // Reset works from the record alone: it is the way out of a type conflict with the
    // manifest, so it must not provision first.
    if let Some(Cmd::Reset { name, yes }) = &args.command {
        return reset(&state, name, *yes);
    }
    if matches!(args.command, Some(Cmd::Start { .. } | Cmd::Shell { .. }))
        && let Err(c) = gate(g, &loaded)
    {
        return c;
    }
    let mut planned = match plan(g, &loaded, &state, &args.opts) {
        Ok(p) => p,
        Err(c) => return c,
    };
    match args.command.as_ref().unwrap_or(&Cmd::List) {
        Cmd::List => list(&planned, &state),
        Cmd::Start { names } => {
            let mut chosen: Vec<Planned> = match select(&mut planned, names) {
                Ok(v) => v.into_iter().map(|p| p.clone()).collect(),
                Err(c) => return c,
            };
            match start(&mut chosen, &state, &args.opts, &Stop::never()) {
                Ok(_) => exit::OK,
                Err(c) => c,
            }
        }
        Cmd::Stop { names, grace } => {
            // A run would take the stop for a crash and start the servers again.
            let _run_lock = match state.try_lock("run") {
                Ok(Some(l)) => l,
                Ok(None) => {
                    eprintln!(
                        "error: `services stop` refused: a `stackato-local run` of this project is running and uses its services (it would start them again); stop the run instead (Ctrl-C in its terminal, which stops the services it started)"
                    );
                    return exit::USAGE;
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    return exit::IO;
                }
            };
            let chosen: Vec<Planned> = match select(&mut planned, names) {
                Ok(v) => v.into_iter().map(|p| p.clone()).collect(),
                Err(c) => return c,
            };
            stop(&chosen, &state, Duration::from_secs(*grace))
        }
        Cmd::Logs { name, lines } => logs(&planned, &state, name, *lines),
        Cmd::Reset { .. } => exit::OK,
        Cmd::Shell { name } => shell(&mut planned, &state, &args.opts, Some(name)),
    }
}

pub(super) fn dbshell(g: &Global, args: &DbshellArgs) -> i32 {
    let (loaded, state) = match open(g) {
        Ok(x) => x,
        Err(c) => return c,
    };
    if let Err(c) = gate(g, &loaded) {
        return c;
    }
    let mut planned = match plan(g, &loaded, &state, &args.opts) {
        Ok(p) => p,
        Err(c) => return c,
    };
    shell(&mut planned, &state, &args.opts, args.name.as_ref())
}

fn human_size(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.1} GB", n as f64 / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{:.1} MB", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} kB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}

fn list(planned: &[Planned], state: &StateDir) -> i32 {
    let run_as = match RunAs::for_services() {
        Ok(r) => r,
        Err(e) => return report(&e),
    };
    let mut out = std::io::stdout().lock();
    if planned.is_empty() {
        let _ = writeln!(out, "no services: the manifest declares none");
        return exit::OK;
    }
    let _ = writeln!(
        out,
        "{:<24} {:<11} {:<22} {:<6} DATA",
        "NAME", "TYPE", "STATE", "PORT"
    );
    for p in planned {
        let paths = lifecycle::paths_for(state, &p.record.name, &run_as);
        let (st, port, size) = match &p.mode {
            Mode::Native(b, _) => {
                let port = p.record.port.map(|x| x.to_string()).unwrap_or_default();
                let st = match lifecycle::status(*b, &paths) {
                    Status::Running { pid, .. } => format!("running (pid {pid})"),
                    Status::Crashed => "crashed (stale pid)".into(),
                    Status::Stopped => "stopped".into(),
                };
                (st, port, human_size(paths.data_size()))
            }
            Mode::Sqlite(f) => (
                "sqlite fallback".into(),
                String::new(),
                human_size(std::fs::metadata(f).map(|m| m.len()).unwrap_or(0)),
            ),
            Mode::Directory(_) => ("directory".into(), String::new(), String::new()),
            Mode::Nothing => ("nothing to run".into(), String::new(), String::new()),
            Mode::Skipped => ("skipped".into(), String::new(), String::new()),
            Mode::Unavailable(_) => ("not installed".into(), String::new(), String::new()),
        };
        let _ = writeln!(
            out,
            "{:<24} {:<11} {:<22} {:<6} {size}",
            p.record.name, p.record.kind, st, port
        );
    }
    exit::OK
}

fn find<'a>(planned: &'a [Planned], name: &str) -> Result<&'a Planned, i32> {
    planned
        .iter()
        .find(|p| p.record.name == name)
        .ok_or_else(|| {
            let known: Vec<&str> = planned.iter().map(|p| p.record.name.as_str()).collect();
            eprintln!(
                "error: no service named \"{name}\" (the manifest has: {})",
                known.join(", ")
            );
            exit::USAGE
        })
}

fn logs(planned: &[Planned], state: &StateDir, name: &str, lines: usize) -> i32 {
    let p = match find(planned, name) {
        Ok(p) => p,
        Err(c) => return c,
    };
    let run_as = match RunAs::for_services() {
        Ok(r) => r,
        Err(e) => return report(&e),
    };
    let paths = lifecycle::paths_for(state, &p.record.name, &run_as);
    if !paths.log.exists() {
        eprintln!(
            "{name}: no log yet ({} has not been started)",
            p.record.kind
        );
        return exit::OK;
    }
    let _ = writeln!(
        std::io::stdout(),
        "{}",
        backend::log_tail(&paths.log, lines)
    );
    exit::OK
}

fn reset(state: &StateDir, name: &str, yes: bool) -> i32 {
    // A run of this project uses its services and would restart the server on data that is
    // gone: refuse while one is up, and keep its lock so that none starts meanwhile.
    let _run_lock = match state.try_lock("run") {
        Ok(Some(l)) => l,
        Ok(None) => {
            eprintln!(
                "error: `services reset {name}` refused: a `stackato-local run` of this project is running and uses its services; stop it first (Ctrl-C in its terminal), then reset"
            );
            return exit::USAGE;
        }
        Err(e) => {
            eprintln!("error: {e}");
            return exit::IO;
        }
    };
    let reg = match registry::load(state) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::IO;
        }
    };
    let Some(record) = reg.services.get(name).cloned() else {
        let known: Vec<&str> = reg.services.keys().map(String::as_str).collect();
        eprintln!(
            "error: no service named \"{name}\" has been created in this project (known: {})",
            if known.is_empty() {
                "none".to_string()
            } else {
                known.join(", ")
            }
        );
        return exit::USAGE;
    };
    if !yes {
        if !std::io::stdin().is_terminal() {
            eprintln!(
                "error: `services reset {name}` deletes its data and credentials; add --yes to confirm"
            );
            return exit::USAGE;
        }
        eprint!(
            "Delete all data of {name} ({}) and its credentials? [y/N] ",
            record.kind
        );
        let _ = std::io::stderr().flush();
        let mut line = String::new();
        let _ = std::io::stdin().read_line(&mut line);
        if !matches!(line.trim(), "y" | "Y" | "yes") {
            eprintln!("nothing deleted");
            return exit::OK;
        }
    }
    if let Some(b) = crate::services::for_kind(&record.kind) {
        match lifecycle::stop(state, &record, b, Duration::from_secs(30)) {
            Ok(lifecycle::Stopped::Stale(note)) => eprintln!("services: {note}"),
            Ok(_) => {}
            Err(e) => return report(&e),
        }
    }
    let run_as = match RunAs::for_services() {
        Ok(r) => r,
        Err(e) => return report(&e),
    };
    let paths = lifecycle::paths_for(state, &record.name, &run_as);
    let _lock = match state.lock("services") {
        Ok(l) => l,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::IO;
        }
    };
    // Only inside the state dir (or the service's own directory under /var/lib), never
    // through a link: the name, and the directories, came with the project.
    for (base, dir) in [
        (paths.root_base(), &paths.root),
        (state.root(), &paths.base),
    ] {
        if let Err(e) = crate::state::check_inside(base, dir) {
            eprintln!("error: {e}");
            return exit::IO;
        }
        if std::fs::symlink_metadata(dir).is_ok()
            && let Err(e) = std::fs::remove_dir_all(dir)
        {
            eprintln!("error: cannot delete {}: {e}", dir.display());
            return exit::IO;
        }
    }
    let mut reg = match registry::load(state) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::IO;
        }
    };
    reg.services.remove(name);
    if let Err(e) = state.write_json(registry::FILE, &reg) {
        eprintln!("error: {e}");
        return exit::IO;
    }
    eprintln!(
        "{name}: data and credentials deleted; it starts empty, with new credentials, next time"
    );
    exit::OK
}

fn shell(
    planned: &mut [Planned],
    state: &StateDir,
    opts: &ServiceOpts,
    name: Option<&String>,
) -> i32 {
    let chosen = match name {
        Some(n) => n.clone(),
        None => {
            let dbs: Vec<&Planned> = planned
                .iter()
                .filter(|p| matches!(p.record.kind.as_str(), "mysql" | "postgresql" | "redis"))
                .collect();
            match dbs.as_slice() {
                [one] => one.record.name.clone(),
                [] => {
                    eprintln!("error: no mysql, postgresql or redis service to open a shell on");
                    return exit::USAGE;
                }
                many => {
                    let names: Vec<&str> = many.iter().map(|p| p.record.name.as_str()).collect();
                    eprintln!(
                        "error: several database services ({}); name one: `stackato-local dbshell NAME`",
                        names.join(", ")
                    );
                    return exit::USAGE;
                }
            }
        }
    };
    let mut sel: Vec<Planned> = match select(planned, std::slice::from_ref(&chosen)) {
        Ok(v) => v.into_iter().map(|p| p.clone()).collect(),
        Err(c) => return c,
    };
    if let Err(c) = start(&mut sel, state, opts, &Stop::never()) {
        return c;
    }
    let p = &sel[0];
    let cmd = match &p.mode {
        Mode::Native(b, bins) => {
            let run_as = match RunAs::for_services() {
                Ok(r) => r,
                Err(e) => return report(&e),
            };
            let paths = lifecycle::paths_for(state, &p.record.name, &run_as);
            let ctx = Ctx {
                record: &p.record,
                paths: &paths,
                run_as: &run_as,
                bins,
                port: p.record.port.unwrap_or_default(),
            };
            b.shell(&ctx)
        }
        Mode::Sqlite(f) => crate::programs::find("sqlite3").map(|s| {
            let mut c = std::process::Command::new(s);
            c.arg(f);
            c
        }),
        _ => None,
    };
    let Some(mut cmd) = cmd else {
        eprintln!(
            "error: no client program for {} ({}) found",
            p.record.name, p.record.kind
        );
        return exit::SERVICE;
    };
    match crate::process::status(&mut cmd, crate::process::Tie::Foreground) {
        Ok(s) => s.code().unwrap_or(1),
        Err(e) => {
            eprintln!("error: cannot run {:?}: {e}", cmd.get_program());
            exit::SERVICE
        }
    }
}
