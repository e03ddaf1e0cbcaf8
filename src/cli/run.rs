//! `stackato-local run`: what a push and start would do on the platform, in its order —
//! services up and ready → staging (pre-staging hooks → requirements → post-staging hooks;
//! cached) → per instance: pre-running hooks → the process — then supervision until Ctrl-C.

use std::sync::Arc;
use std::time::Duration;

use crate::cli::env::{self as cenv};
use crate::cli::services::{self as csvc};
use crate::cli::{Global, ServiceOpts};
use crate::diag::Diagnostic;
use crate::env::build::{self, Built, Request};
use crate::exit;
use crate::manifest::model::Web;
use crate::manifest::{App, Loaded};
use crate::output::Output;
use crate::random::OsRng;
use crate::services::lifecycle::{How, Mode};
use crate::stage::{StageError, Stager};
use crate::state::StateDir;
use crate::supervise::{self, Outcome, Plan, child::Spec};

#[derive(Debug, clap::Args)]
pub struct Args {
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
    #[command(flatten)]
    pub services: ServiceOpts,
}

/// `128 + signal`, the shell's convention.
fn signal_code(sig: i32) -> i32 {
    128 + sig
}

pub fn run(g: &Global, args: &Args) -> i32 {
    crate::interrupt::install();
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
    if let Err(refused) = crate::trust::require(&loaded, g.trust) {
        out.error(&refused.to_string());
        return refused.exit_code();
    }
    for name in &args.app {
        if loaded.manifest.app(name).is_none() {
            let known: Vec<&str> = loaded
                .manifest
                .apps
                .iter()
                .map(|a| a.name.value.as_str())
                .collect();
            out.error(&format!(
                "no application named \"{name}\" (the manifest has: {})",
                known.join(", ")
            ));
            return exit::USAGE;
        }
    }

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
            Ok(mut planned) => match csvc::start(&mut planned, &state, &args.services) {
                Ok(ups) => Ok((planned, ups)),
                Err(c) => Err(crate::interrupt::received().map_or(c, signal_code)),
            },
            Err(c) => Err(c),
        };
        let plan = match round {
            Ok((planned, ups)) => {
                natives = planned
                    .iter()
                    .filter(|p| matches!(p.mode, Mode::Native(..)))
                    .cloned()
                    .collect();
                watched = ups
                    .iter()
                    .filter_map(|u| u.pid.map(|pid| (u.name.clone(), pid)))
                    .collect();
                for p in &planned {
                    let Some(up) = ups.iter().find(|u| u.name == p.record.name) else {
                        continue;
                    };
                    if let Some(pid) = up.pid {
                        keep.push(pid);
                    }
                    if matches!(up.how, How::Started { .. }) {
                        ours.retain(|o| o.record.name != p.record.name);
                        ours.push(p.clone());
                    }
                }
                // 2. Staging, then the processes of each app.
                // On the first round, an unchanged record lets the app start while its files
                // are hashed in the background (a reload checks them first).
                prepare_all(g, args, &loaded, &state, &out, first)
            }
            Err(c) => Err(c),
        };
        if let Some(sig) = crate::interrupt::received() {
            break signal_code(sig);
        }
        let plan = match plan {
            Ok(p) => p,
            Err(code) if first || args.no_watch => break code,
            Err(_) => {
                // A reload that failed: keep watching and try again on the next change.
                out.phase("waiting for a change to try again (Ctrl-C stops)");
                Plan::default()
            }
        };
        first = false;

        // 3. Supervise.
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
                restart_service: Some(restarter(&state, &natives, &args.services)),
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
                        if let Err(refused) = crate::trust::require(&l, g.trust) {
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
            Outcome::Signal(s) => break signal_code(s),
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
    let _ = std::fs::remove_file(state.path("run.sock"));
    if !ours.is_empty() {
        out.phase("stopping the services this run started");
        csvc::stop(&ours, &state, Duration::from_secs(30));
    }
    crate::process::end_guardian();
    out.phase(&format!("stopped (exit status {code})"));
    code
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

/// Start one service again (after it died): the same checks as at start-up.
fn restarter(
    state: &StateDir,
    natives: &[crate::services::lifecycle::Planned],
    opts: &ServiceOpts,
) -> supervise::ServiceRestarter {
    let state = state.clone();
    let natives = natives.to_vec();
    let timeout = Duration::from_secs(opts.service_timeout);
    Arc::new(move |name: &str| {
        let Some(p) = natives.iter().find(|p| p.record.name == name) else {
            return Err(format!("{name} is not a service of this run"));
        };
        let mut one = vec![p.clone()];
        let so = crate::services::lifecycle::StartOptions {
            timeout,
            spinner: false,
        };
        let ups = crate::services::lifecycle::start_all(&state, &mut one, &so, &mut |_| {})
            .map_err(|e| e.to_string())?;
        let pid = ups
            .first()
            .and_then(|u| u.pid)
            .ok_or_else(|| format!("{name} has no server process"))?;
        let sig = match &p.mode {
            Mode::Native(b, _) => b.stop_signal(),
            _ => nix::sys::signal::Signal::SIGTERM,
        };
        Ok((pid, sig))
    })
}

/// Stage every selected app and collect its processes.
fn prepare_all(
    g: &Global,
    args: &Args,
    loaded: &Loaded,
    state: &StateDir,
    out: &Arc<Output>,
    optimistic: bool,
) -> Result<Plan, i32> {
    let apps: Vec<&App> = loaded
        .manifest
        .start_order()
        .into_iter()
        .filter(|a| args.app.is_empty() || args.app.contains(&a.name.value))
        .collect();
    let target = crate::manifest::Target {
        url: g.load.target_url.clone(),
        random_word: String::new(),
    };
    let facts = build::facts(&target.target_base());
    let multi = loaded.manifest.apps.len() > 1;
    let mut plan = Plan {
        utc_offset: utc_offset(),
        // On the first round the apps start on their last staged copy; the checkouts are
        // compared with it in the background (a reload has just made fresh copies).
        verify: optimistic && !args.in_place,
        ..Plan::default()
    };
    for app in &apps {
        let (specs, crons, copies) =
            prepare_app(g, args, loaded, state, &facts, app, multi, out)
                .map_err(|code| crate::interrupt::received().map_or(code, signal_code))?;
        plan.groups.push(specs);
        plan.copies.extend(copies);
        plan.crons.extend(crons);
    }
    // Each app waits for the apps it depends on (and only those).
    plan.deps = apps
        .iter()
        .map(|a| {
            a.depends_on
                .iter()
                .filter_map(|d| apps.iter().position(|x| x.name.value == d.value))
                .collect()
        })
        .collect();
    Ok(plan)
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
    let (roots, filter) =
        crate::watch::for_project(loaded, state.root(), &args.watch, &args.ignore);
    Some(supervise::WatchOptions {
        roots,
        filter: Arc::new(filter),
        poll: args.poll.map(|ms| Duration::from_millis(ms.max(10))),
        debounce: Duration::from_millis(args.debounce),
    })
}

/// Seconds east of UTC now, from the C library's local time (honours TZ).
fn utc_offset() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as libc::time_t);
    // SAFETY: localtime_r writes only into the tm we pass.
    unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&now, &mut tm).is_null() {
            0
        } else {
            tm.tm_gmtoff
        }
    }
}

fn request(
    args: &Args,
    app: &App,
    instance: u32,
    staging: bool,
    place: crate::platform::layout::Place,
) -> Request {
    Request {
        app: Some(app.name.value.clone()),
        instance,
        staging,
        place,
        profile: args.profile,
        cli: args.env.clone(),
        env_files: args.env_file.clone(),
        no_dotenv: args.no_dotenv,
        db: args.services.db_mode(),
        skip: args.services.skip_service.clone(),
        ..Request::default()
    }
}

fn build_env(
    g: &Global,
    loaded: &Loaded,
    state: &StateDir,
    facts: &crate::platform::env::Facts,
    req: &Request,
) -> Result<Built, i32> {
    let mut prompt = cenv::terminal_prompt();
    build::build(loaded, req, state, facts, &mut OsRng, &mut prompt)
        .map_err(|e| cenv::report_build_error(g, loaded, e))
}

#[allow(clippy::too_many_arguments)]
fn prepare_app(
    g: &Global,
    args: &Args,
    loaded: &Loaded,
    state: &StateDir,
    facts: &crate::platform::env::Facts,
    app: &App,
    multi: bool,
    out: &Arc<Output>,
) -> Result<AppPlan, i32> {
    let label = |s: &str| {
        if multi {
            format!("{}:{s}", app.name.value)
        } else {
            s.to_string()
        }
    };
    // Staging: into a new generation of the staged copy, unless the last one still holds.
    let decision = crate::stage::decide(loaded, app, state, args.restage, args.in_place);
    let place = decision.place();
    let staging_env = build_env(g, loaded, state, facts, &request(args, app, 0, true, place))?;
    for n in &staging_env.notes {
        out.note(&format!("note: {n}"));
    }
    if let Err(e) = staging_env.layout.prepare() {
        out.error(&e.to_string());
        return Err(exit::IO);
    }
    out.phase(&format!("staging {}", app.name.value));
    out.reserve(&label("staging"));
    let stager = Stager {
        loaded,
        app,
        state,
        env: &staging_env.env,
        home: staging_env.layout.home.clone(),
        host: crate::env::host::Host::from_flag(args.inherit_env),
        out,
        prefix: out.prefix(&label("staging"), 8),
        limit: Duration::from_secs(args.hook_timeout),
        restage: args.restage,
        copy_unsafe_links: args.copy_unsafe_links,
    };
    match stager.stage(decision) {
        Ok(s) if s.cached => {
            for n in &s.notes {
                out.note(&format!("note: {n}"));
            }
            out.phase(&format!(
                "staging {}: the manifest and requirements did not change since the last staging; skipped (--restage to force)",
                app.name.value
            ))
        }
        Ok(s) => {
            for n in &s.notes {
                out.note(&format!("note: {n}"));
            }
            out.phase(&format!("staged {}", app.name.value));
        }
        Err(e) => return Err(report_stage_error(g, loaded, out, &e, args.hook_timeout)),
    }

    // The processes, one per instance.
    let mut specs = Vec::new();
    let mut crons = Vec::new();
    let mut homes = Vec::new();
    let source = app.path.canonicalize().unwrap_or_else(|_| app.path.clone());
    let count = app.instance_count();
    let all_cron = false;
    for i in 0..count {
        if app.web != Web::Worker {
            match build::ensure_instance_port_free(state, &app.name.value, i) {
                Ok(Some((old, new))) => out.note(&format!(
                    "note: port {old} of {} instance {i} is taken by another program; it now uses port {new} ($PORT follows)",
                    app.name.value
                )),
                Ok(None) => {}
                Err(e) => return Err(cenv::report_build_error(g, loaded, e)),
            }
        }
        // The instance's own copy of the staged tree (kept between runs), made before its
        // environment, which looks at its files (the start file of `$STACKATO_UWSGI`).
        if let crate::platform::layout::Place::Staged { generation } = place {
            match crate::stage::droplet::instance_home(state, &app.name.value, generation, i) {
                Ok(home) => homes.push(home),
                Err(e) => {
                    out.error(&format!(
                        "could not make the copy of instance {i} of {}: {e}",
                        app.name.value
                    ));
                    return Err(exit::IO);
                }
            }
        }
        let built = build_env(
            g,
            loaded,
            state,
            facts,
            &request(args, app, i, false, place),
        )?;
        if let Err(e) = built.layout.prepare() {
            out.error(&e.to_string());
            return Err(exit::IO);
        }
        let env: Vec<(String, String)> = built
            .env
            .vars()
            .iter()
            .map(|v| (v.name.clone(), v.value.clone()))
            .collect();
        let (kind, command, port) = match &app.web {
            Web::Command(c) => ("web", c.value.clone(), built.env.get("PORT")),
            Web::Worker => (
                "worker",
                app.command
                    .as_ref()
                    .map(|c| c.value.clone())
                    .unwrap_or_default(),
                None,
            ),
            Web::Default => match (&app.command, built.env.get("PROCESSES_WEB")) {
                (Some(c), _) => ("web", c.value.clone(), built.env.get("PORT")),
                (None, Some(w)) => ("web", w.to_string(), built.env.get("PORT")),
                (None, None) => {
                    let d = Diagnostic::error(format!(
                        "Application \"{}\" has no web command: framework {} has no default one here",
                        app.name.value,
                        app.framework_name().unwrap_or("(none)")
                    ))
                    .at(app.name.span)
                    .hint("add `processes: {web: <command listening on $PORT>}`, or `command:`");
                    crate::cli::print_diagnostics(g, &loaded.sources, &[d]);
                    return Err(exit::INVALID_MANIFEST);
                }
            },
        };
        let port = port.and_then(|p| p.parse::<u16>().ok());
        // No route (`url: []`, `no-route: true`): up while it runs, as on the platform (§4.1).
        let check = if app.urls.as_ref().is_some_and(Vec::is_empty) {
            if i == 0 && port.is_some() {
                out.note(&format!(
                    "note: {} has no route: its web process is up while it runs; its port is not checked",
                    app.name.value
                ));
            }
            supervise::health::Check::Running
        } else {
            supervise::health::Check::Port
        };
        let cwd = built.layout.home.clone();
        specs.push(Spec {
            name: label(&format!("{kind}.{i}")),
            app: app.name.value.clone(),
            instance: i,
            hooks: app.hooks.pre_running.clone(),
            command,
            env: env.clone(),
            cwd: cwd.clone(),
            source: source.clone(),
            port,
            check,
            ready_timeout: Duration::from_secs(
                app.timeout.as_ref().map_or(60, |t| u64::from(t.value)),
            ),
            tty: args.tty,
            host: crate::env::host::Host::from_flag(args.inherit_env),
        });
        let cron_everywhere = all_cron || built.env.get("STACKATO_CRON_INSTANCES") == Some("all");
        if i == 0 || cron_everywhere {
            crons.extend(cron_jobs(
                app,
                crate::env::host::Host::from_flag(args.inherit_env),
                &env,
                &cwd,
                &label(&format!("cron.{i}")),
                out,
            ));
        }
    }
    let copies = match place {
        crate::platform::layout::Place::Staged { generation } => {
            match crate::stage::droplet::Copies::open(
                state,
                app,
                generation,
                homes,
                args.copy_unsafe_links,
            ) {
                Some(c) => Some(Arc::new(c)),
                None => {
                    out.error(&format!(
                        "the staged copy of {} has no record of what it copied; run again with --restage",
                        app.name.value
                    ));
                    return Err(exit::IO);
                }
            }
        }
        crate::platform::layout::Place::Checkout => None,
    };
    Ok((specs, crons, copies))
}

/// One app's processes, cron jobs and staged copies.
type AppPlan = (
    Vec<Spec>,
    Vec<supervise::CronJob>,
    Option<Arc<crate::stage::droplet::Copies>>,
);

/// The crontab of one instance: `$HOME/crontab`, then `cron:`; assignments apply to the jobs.
fn cron_jobs(
    app: &App,
    host: crate::env::host::Host,
    env: &[(String, String)],
    cwd: &std::path::Path,
    name: &str,
    out: &Output,
) -> Vec<supervise::CronJob> {
    use crate::supervise::cron::{self, Line};
    let mut lines: Vec<String> = crate::platform::web::app_file(cwd, "crontab")
        .map(|t| {
            t.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    lines.extend(app.cron.iter().map(|c| c.value.clone()));
    let mut assigns = Vec::new();
    let mut jobs = Vec::new();
    for l in lines {
        match cron::parse(&l) {
            Ok(Line::Assign(k, v)) => assigns.push((k, v)),
            Ok(Line::Job(schedule, command)) => jobs.push((schedule, command)),
            Err(e) => out.error(&format!("cron entry `{l}` ignored: {e}")),
        }
    }
    let cenv = cron::env(env, &assigns);
    jobs.into_iter()
        .map(|(schedule, command)| supervise::CronJob {
            name: name.to_string(),
            schedule,
            command,
            env: cenv.clone(),
            cwd: cwd.to_path_buf(),
            host,
        })
        .collect()
}

fn report_stage_error(
    g: &Global,
    loaded: &Loaded,
    out: &Output,
    e: &StageError,
    limit: u64,
) -> i32 {
    if crate::interrupt::received().is_some() {
        out.error("staging was interrupted");
        return exit::HOOK;
    }
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
