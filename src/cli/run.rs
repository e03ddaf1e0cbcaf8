//! `stackato-local run`: what a push and start would do on the platform, in its order —
//! services up and ready → staging (pre-staging hooks → requirements → post-staging hooks;
//! cached) → per instance: pre-running hooks → the process — then supervision until Ctrl-C.

use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::cli::env::{self as cenv};
use crate::cli::services::{self as csvc};
use crate::cli::{Global, ServiceOpts};
use crate::diag::Diagnostic;
use crate::exit;
use crate::interrupt::Stop;
use crate::manifest::Loaded;
use crate::output::Output;
use crate::plan::{self, EnvOptions, PlanError};
use crate::stage::StageError;
use crate::state::StateDir;
use crate::supervise::{self, Outcome};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Run only this application (and not the others of a multi-app manifest); repeatable.
    #[arg(long, value_name = "NAME")]
    pub app: Vec<String>,
    /// Stage again even when nothing changed.
    #[arg(long)]
    pub restage: bool,
    /// Stage and run in the checkout itself instead of a staged copy of the upload: hooks
    /// change your files, files `ignores:` drops are still there, and what the app writes
    /// lands in your checkout (the behaviour before staged copies).
    #[arg(long)]
    pub in_place: bool,
    /// Copy what links reaching outside the app point to into the staged copy (as
    /// `stackato push --copy-unsafe-links` did) instead of stopping.
    #[arg(long)]
    pub copy_unsafe_links: bool,
    /// Stage with this local buildpack directory (`bin/detect`, `bin/compile`, `bin/release`)
    /// instead of the manifest's `buildpack:` or the installed buildpacks (for offline use).
    #[arg(long, value_name = "DIR")]
    pub buildpack: Option<std::path::PathBuf>,
    /// Seconds between SIGTERM and SIGKILL at shutdown.
    #[arg(long, value_name = "SECS", default_value_t = 10)]
    pub grace: u64,
    /// Stop everything (exit 7) when a process exits, instead of restarting it (without it, a
    /// process that keeps crashing is declared flapping: exit 7 with --no-watch).
    #[arg(long)]
    pub exit_on_crash: bool,
    /// Give processes a pseudo-terminal instead of pipes (colours, line buffering).
    #[arg(long)]
    pub tty: bool,
    /// Prefix each line with the time.
    #[arg(long)]
    pub timestamps: bool,
    /// Imitate Stackato 2.x or 3.x.
    #[arg(long, value_name = "2|3", value_parser = cenv::parse_profile)]
    pub profile: Option<crate::platform::Profile>,
    /// Set a variable; repeatable.
    #[arg(long = "env", short = 'e', value_name = "KEY=VALUE", value_parser = crate::env::user::parse_cli_pair)]
    pub env: Vec<(String, String)>,
    /// Read another .env file; repeatable.
    #[arg(long = "env-file", value_name = "FILE")]
    pub env_file: Vec<std::path::PathBuf>,
    /// Do not read the project's .env files.
    #[arg(long)]
    pub no_dotenv: bool,
    /// Give processes, hooks and cron jobs the whole host environment (by default they get
    /// the platform's variables plus TERM, TZ, USER, LOGNAME, the proxies and the locale).
    #[arg(long)]
    pub inherit_env: bool,
    /// Time limit of each staging hook or installer, in seconds (the platform's STAGING_TIMEOUT).
    #[arg(long, value_name = "SECS", default_value_t = 900)]
    pub hook_timeout: u64,
    /// Do not watch files; restart only on crashes.
    #[arg(long)]
    pub no_watch: bool,
    /// Watch this path too (besides the app directories); repeatable.
    #[arg(long = "watch", value_name = "PATH")]
    pub watch: Vec<std::path::PathBuf>,
    /// Ignore changes to paths matching this glob (gitignore syntax); repeatable.
    #[arg(long = "ignore", value_name = "GLOB")]
    pub ignore: Vec<String>,
    /// Quiet period, in ms, after the last change before the new processes start (stopping the
    /// old ones begins at the first change).
    #[arg(long, value_name = "MS", default_value_t = 10)]
    pub debounce: u64,
    /// Poll the files every MS ms instead of using inotify (network mounts, WSL, containers).
    #[arg(long, value_name = "MS", num_args = 0..=1, default_missing_value = "500")]
    pub poll: Option<u64>,
    /// Run on this runtime instead of the declared one (`python27`, `python3.12`,
    /// `python-2.7.18`, `node18`, `ruby3.1`); every app of its language.
    #[arg(long, value_name = "RUNTIME")]
    pub runtime: Option<String>,
    /// Stop (exit 9) when an app's declared runtime is not installed, instead of running on
    /// the closest installed one with a warning.
    #[arg(long)]
    pub strict_runtime: bool,
    /// The router's port: one URL per app, `http://<app>.localhost:PORT/` (chosen once and
    /// remembered for the project; this changes it).
    #[arg(long, value_name = "PORT", value_parser = clap::value_parser!(u16).range(1..))]
    pub port: Option<u16>,
    /// The router's address (default 127.0.0.1). Another one exposes the apps beyond this
    /// machine: a warning is printed and error pages stop showing the apps' output.
    #[arg(long, value_name = "ADDR")]
    pub bind: Option<std::net::IpAddr>,
    /// No access-log lines from the router.
    #[arg(long)]
    pub quiet_router: bool,
    /// No router: each instance only on its own port, restarts stop the old process first.
    #[arg(long, conflicts_with_all = ["port", "bind", "quiet_router"])]
    pub no_router: bool,
    /// Restart this app's processes by stopping the old one before starting the new one
    /// (for an app that cannot run twice at once: a lock file, a fixed port); repeatable.
    /// By default a restart starts the new process on a second port, switches the route
    /// when it is ready, then stops the old one.
    #[arg(long, value_name = "APP")]
    pub stop_first: Vec<String>,
    #[command(flatten)]
    pub services: ServiceOpts,
}

/// The manifest's application names, for a message.
fn app_names(loaded: &Loaded) -> String {
    loaded
        .manifest
        .apps
        .iter()
        .map(|a| a.name.value.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// `128 + signal`, the shell's convention.
fn signal_code(sig: Signal) -> i32 {
    128 + sig as i32
}

pub(super) fn run(g: &Global, args: &Args) -> i32 {
    // The one signal path of the run: staging, services, the trust question and the
    // supervisor all wait on it.
    let stop = match Stop::install() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot catch Ctrl-C: {e}");
            return exit::IO;
        }
    };
    if let Err(e) =
        crate::platform::runtime::set_from_cli(args.runtime.as_deref(), args.strict_runtime)
    {
        eprintln!("{e}");
        return exit::USAGE;
    }
    let out = Arc::new(Output::new(g.ui.color_out, g.ui.color_err, args.timestamps));
    let (mut loaded, state) = match csvc::open(g) {
        Ok(x) => x,
        Err(c) => return c,
    };
    let _run_lock = match state.try_lock("run") {
        Ok(Some(l)) => l,
        Ok(None) => {
            out.error("another `stackato-local run` is already running for this project; stop it first (Ctrl-C in its terminal)");
            return exit::USAGE;
        }
        Err(e) => {
            out.error(&e.to_string());
            return exit::IO;
        }
    };
    if let Err(refused) = crate::cli::trust_prompt::require(&loaded, g.trust, &stop) {
        out.error(&refused.to_string());
        return refused.exit_code();
    }
    if let Err(e) = plan::check_selection(&loaded, &args.app) {
        return report_plan_error(g, &loaded, &out, e, &stop);
    }
    if let Some(unknown) = args
        .stop_first
        .iter()
        .find(|n| loaded.manifest.app(n).is_none())
    {
        out.error(&format!(
            "--stop-first {unknown}: no such application in the manifest (it has: {})",
            app_names(&loaded)
        ));
        return exit::USAGE;
    }
    // The router: its port is bound now, before anything starts, so a busy one is said first.
    let (routes_tx, routes_rx) =
        tokio::sync::watch::channel(Arc::new(crate::router::table::RouteTable::new(Vec::new())));
    let router = if args.no_router {
        None
    } else {
        match super::router::start(args, &state, &out, routes_rx) {
            Ok(r) => Some(r),
            Err(code) => return code,
        }
    };

    // From here on, whatever this run starts (services, staging hooks, installers, processes)
    // is stopped or killed by the guardian if the run itself is killed, even with SIGKILL.
    crate::process::start_guardian(true);
    // Services started by this run (in any round), stopped at the end.
    let mut ours: Vec<crate::services::lifecycle::Planned> = Vec::new();
    let mut keep: Vec<i32> = Vec::new();
    let mut first = true;
    // Whether the user was told that an app wrote into its staged copy (once per run).
    let mut told_writes = false;
    // Native services of this round, and their pids, to restart one that dies.
    let mut natives: Vec<crate::services::lifecycle::Planned> = Vec::new();
    let mut watched: Vec<(String, i32)> = Vec::new();
    let code = loop {
        // 1. Services (already running ones are reused).
        out.phase("services: starting and checking each one answers");
        let round = match csvc::plan(g, &loaded, &state, &args.services) {
            Ok(mut planned) => match csvc::start(&mut planned, &state, &args.services, &stop) {
                Ok(ups) => Ok((planned, ups)),
                Err(c) => Err(stop.requested().map_or(c, signal_code)),
            },
            Err(c) => Err(c),
        };
        let plan = match round {
            Ok((planned, ups)) => {
                let started = plan::services::started(&planned, &ups);
                natives = started.natives;
                watched = started.watched;
                keep.extend(started.pids);
                for p in started.ours {
                    ours.retain(|o| o.record.name != p.record.name);
                    ours.push(p);
                }
                // 2. Staging, then the processes of each app.
                // On the first round, an unchanged record lets the app start while its files
                // are hashed in the background (a reload checks them first).
                prepare_all(g, args, &loaded, &state, &out, first, &stop)
            }
            Err(c) => Err(c),
        };
        if let Some(sig) = stop.requested() {
            break signal_code(sig);
        }
        let plan = match plan {
            Ok(p) => p,
            Err(code) if first || args.no_watch => break code,
            Err(_) => {
                // A reload that failed: keep watching and try again on the next change.
                out.phase("waiting for a change to try again (Ctrl-C stops)");
                supervise::Plan::default()
            }
        };
        first = false;

        // 3. Supervise.
        if let Some(r) = &router {
            r.announce(&out, &plan.routes);
        }
        out.phase(if args.no_watch {
            "running: Ctrl-C stops everything"
        } else {
            "running and watching for changes: Ctrl-C stops everything"
        });
        let copies = plan.copies.clone();
        let outcome = supervise::run(
            plan,
            Arc::clone(&out),
            supervise::Options {
                grace: Duration::from_secs(args.grace),
                exit_on_crash: args.exit_on_crash,
                keep: keep.clone(),
                watch: watch_options(args, &loaded, &state),
                keys: !args.no_watch && std::io::IsTerminal::is_terminal(&std::io::stdin()),
                control: Some(state.path("run.sock")),
                watched_services: watched.clone(),
                restart_service: Some(plan::services::restarter(
                    &state,
                    &natives,
                    Duration::from_secs(args.services.service_timeout),
                    &stop,
                )),
                stop: stop.clone(),
                routes: router.as_ref().map(|_| routes_tx.clone()),
            },
        );
        if !told_writes {
            told_writes = tell_runtime_writes(&out, &copies, matches!(outcome, Outcome::Reload(_)));
        }
        for c in &copies {
            c.flush();
        }
        match outcome {
            Outcome::Reload(_) => {
                // Reload the manifest; an invalid one is reported and we wait for the next change.
                let mut asker = crate::cli::terminal_asker();
                match crate::manifest::load(&g.load, &mut asker) {
                    Ok(l) => {
                        crate::cli::print_warnings_brief(&l.sources, &l.warnings);
                        // A change to what runs is shown and asked about again (on a terminal;
                        // the restage waits for the answer), or stops the run.
                        if let Err(refused) = crate::cli::trust_prompt::require(&l, g.trust, &stop)
                        {
                            out.error(&refused.to_string());
                            break refused.exit_code();
                        }
                        loaded = l;
                    }
                    Err(e) => {
                        crate::cli::report_load_error(g, &e);
                        out.phase(
                            "the manifest is invalid: running the last valid one until you fix it and save",
                        );
                    }
                }
                continue;
            }
            Outcome::Signal(s) => break 128 + s,
            Outcome::Quit => break exit::OK,
            Outcome::HookFailed(_) => break exit::HOOK,
            Outcome::Crashed(_)
            | Outcome::Flapping(_)
            | Outcome::NotReady(_)
            | Outcome::SpawnFailed(_) => {
                break exit::APP;
            }
        }
    };
    // The router stops before the services go.
    if let Some(r) = router {
        r.stop();
    }
    let _ = std::fs::remove_file(state.path("run.sock"));
    if !ours.is_empty() {
        out.phase("stopping the services this run started");
        csvc::stop(&ours, &state, Duration::from_secs(30));
    }
    crate::process::end_guardian();
    out.phase(&format!("stopped (exit status {code})"));
    code
}

impl Args {
    /// The environment options of `run`.
    pub(crate) fn env_options(&self) -> EnvOptions {
        EnvOptions {
            profile: self.profile,
            cli: self.env.clone(),
            env_files: self.env_file.clone(),
            no_dotenv: self.no_dotenv,
            db: self.services.db_mode(),
            skip: self.services.skip_service.clone(),
            place: crate::platform::layout::Place::Checkout,
            ..EnvOptions::default()
        }
    }

    fn run_options(&self, stop: &Stop) -> plan::RunOptions {
        plan::RunOptions {
            restage: self.restage,
            hook_timeout: self.hook_timeout,
            host: crate::env::host::Host::from_flag(self.inherit_env),
            tty: self.tty,
            in_place: self.in_place,
            copy_unsafe_links: self.copy_unsafe_links,
            buildpack: self.buildpack.as_ref().map(|d| {
                std::path::absolute(d)
                    .map(|a| a.canonicalize().unwrap_or(a))
                    .unwrap_or_else(|_| d.clone())
            }),
            stop: stop.clone(),
            router: !self.no_router,
            stop_first: self.stop_first.clone(),
        }
    }
}

/// Say once that an app wrote files into its own copy (where they stay until the next
/// restage, as on the platform, and never reach the checkout). Returns whether it did.
fn tell_runtime_writes(
    out: &Output,
    copies: &[Arc<crate::stage::droplet::Copies>],
    restaging: bool,
) -> bool {
    let mut told = false;
    for c in copies {
        for (i, home, files) in c.written() {
            let shown: Vec<String> = files
                .iter()
                .take(3)
                .map(|f| crate::shell::shown_name(f))
                .collect();
            let more = if files.len() > 3 {
                format!(" and {} more", files.len() - 3)
            } else {
                String::new()
            };
            let fate = if restaging {
                "the restage now drops them"
            } else {
                "they stay there until the next restage, which drops them"
            };
            out.note(&format!(
                "note: instance {i} of {} wrote into its directory ({}{more}): those files are in its own copy ({}), not in your checkout; {fate}, as on the platform. Keep files that must last in a `filesystem` service",
                c.app,
                shown.join(", "),
                crate::diag::display_path(&home)
            ));
            told = true;
        }
    }
    told
}

/// Stage every selected app and collect its processes; `Err` is the exit code (the signal's
/// when interrupted).
fn prepare_all(
    g: &Global,
    args: &Args,
    loaded: &Loaded,
    state: &StateDir,
    out: &Arc<Output>,
    optimistic: bool,
    stop: &Stop,
) -> Result<supervise::Plan, i32> {
    let the_plan = plan::Plan::new(loaded, &args.app, &args.env_options());
    let facts = plan::facts(&g.load.target_url);
    let ctx = plan::Ctx {
        loaded,
        state,
        facts: &facts,
        out,
    };
    let mut prompt = cenv::terminal_prompt();
    plan::prepare(
        &ctx,
        &the_plan,
        &args.run_options(stop),
        optimistic,
        &mut prompt,
    )
    .map_err(|e| report_plan_error(g, loaded, out, e, stop))
    .map_err(|code| stop.requested().map_or(code, signal_code))
}

/// Print why the plan failed, as `run` always has; return the exit code.
fn report_plan_error(g: &Global, loaded: &Loaded, out: &Output, e: PlanError, stop: &Stop) -> i32 {
    match e {
        PlanError::NoSuchApp { .. } => {
            out.error(&e.to_string());
            exit::USAGE
        }
        PlanError::Layout(e) => {
            out.error(&e.to_string());
            exit::IO
        }
        PlanError::Stage { .. } if stop.requested().is_some() => {
            out.error("staging was interrupted");
            exit::HOOK
        }
        PlanError::Stage { error, limit } => report_stage_error(g, loaded, out, &error, limit),
        e => crate::cli::report_plan_error(g, loaded, e),
    }
}

/// What to watch, unless `--no-watch`.
fn watch_options(
    args: &Args,
    loaded: &Loaded,
    state: &StateDir,
) -> Option<supervise::WatchOptions> {
    if args.no_watch {
        return None;
    }
    let (roots, mut filter) =
        crate::watch::for_project(loaded, state.root(), &args.watch, &args.ignore);
    filter.restage_on_any_edit(crate::stage::buildpack::rebuilt_on_edit(loaded, state));
    Some(supervise::WatchOptions {
        roots,
        filter: Arc::new(filter),
        poll: args.poll.map(|ms| Duration::from_millis(ms.max(10))),
        debounce: Duration::from_millis(args.debounce),
    })
}

fn report_stage_error(
    g: &Global,
    loaded: &Loaded,
    out: &Output,
    e: &StageError,
    limit: u64,
) -> i32 {
    match e {
        StageError::Hook {
            stage,
            span,
            tail,
            ended,
            ..
        } => {
            let hint = if *ended == crate::stage::run::Ended::TimedOut {
                format!(
                    "it ran longer than the {limit} s limit (--hook-timeout SECS raises it); a hook must finish, start servers in pre-running or as processes instead"
                )
            } else {
                format!(
                    "fix the command, or start it with `-` (quoted: \"-cmd\") to ignore its failure; the {stage} hooks stop at the first failure, as on the platform"
                )
            };
            let d = Diagnostic::error(e.to_string())
                .at(*span)
                .label("this hook failed")
                .hint(hint);
            crate::cli::print_diagnostics(g, &loaded.sources, &[d]);
            if !tail.is_empty() {
                out.note(&format!(
                    "last lines of its output:\n    {}",
                    tail.join("\n    ")
                ));
            }
        }
        StageError::Requirement { tail, hint, .. } => {
            out.error(&format!("staging failed: {e}"));
            if !tail.is_empty() {
                out.note(&format!(
                    "last lines of its output:\n    {}",
                    tail.join("\n    ")
                ));
            }
            out.note(&format!("help: {hint}"));
        }
        StageError::Io(m) => out.error(m),
    }
    exit::HOOK
}
