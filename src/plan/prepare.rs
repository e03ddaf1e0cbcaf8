//! One round of `run` for the plan's apps: stage each app (the call to `Stager::stage()`, into
//! a new generation of its staged copy unless the last one still holds), then make each
//! instance's own copy and a supervised process, and the cron jobs, of each instance; together
//! the `supervise::Plan` the supervisor runs, with the copies it keeps in step with the
//! checkout. Progress goes to `run`'s [`Output`]; failures are
//! [`PlanError`]s.

use std::sync::Arc;
use std::time::Duration;

use crate::diag::Diagnostic;
use crate::env::build::{self, Built, Request};
use crate::env::host::Host;
use crate::env::user::Prompter;
use crate::manifest::Loaded;
use crate::manifest::model::Web;
use crate::output::Output;
use crate::plan::{AppPlan, Plan, PlanError, cron};
use crate::platform::env::Facts;
use crate::platform::layout::Place;
use crate::random::OsRng;
use crate::stage::Stager;
use crate::stage::droplet::Copies;
use crate::state::StateDir;
use crate::supervise::{self, CronJob, child::Spec};

/// What a round works with.
pub(crate) struct Ctx<'a> {
    pub loaded: &'a Loaded,
    pub state: &'a StateDir,
    pub facts: &'a Facts,
    /// `run`'s output: phases, notes, the staging hooks' lines.
    pub out: &'a Arc<Output>,
}

/// `run`'s options that shape staging and the processes.
#[derive(Debug, Clone)]
pub(crate) struct RunOptions {
    /// `--restage`: stage even when nothing changed.
    pub restage: bool,
    /// `--hook-timeout`: time limit of one staging hook or installer, in seconds.
    pub hook_timeout: u64,
    /// How much of the host environment hooks, processes and cron jobs get.
    pub host: Host,
    /// `--tty`: processes get a pseudo-terminal.
    pub tty: bool,
    /// `--in-place`: stage and run in the checkout, not in a staged copy.
    pub in_place: bool,
    /// `--copy-unsafe-links`: copy what links reaching outside the app point to.
    pub copy_unsafe_links: bool,
    /// `--buildpack DIR`: stage with this buildpack directory.
    pub buildpack: Option<std::path::PathBuf>,
    /// Stop requests (Ctrl-C): a staging command is stopped at once.
    pub stop: crate::interrupt::Stop,
    /// The web processes are behind the router (not with `--no-router`).
    pub router: bool,
    /// `--stop-first APP`: these apps restart stop-first (no overlap).
    pub stop_first: Vec<String>,
}

/// The environment `req` asks for (`prompt` asks for required variables without a value).
pub(crate) fn build_env(
    loaded: &Loaded,
    state: &StateDir,
    facts: &Facts,
    req: &Request,
    prompt: &mut Prompter<'_>,
) -> Result<Built, PlanError> {
    build::build(loaded, req, state, facts, &mut OsRng, prompt).map_err(PlanError::Build)
}

/// Make the instance's directories (`$STACKATO_APP_ROOT`, `logs/`).
pub(crate) fn prepare_layout(built: &Built) -> Result<(), PlanError> {
    built.layout.prepare().map_err(PlanError::Layout)
}

/// The environment of one instance, its directories made: what `exec` and `ssh` run in.
pub(crate) fn instance_env(
    loaded: &Loaded,
    state: &StateDir,
    facts: &Facts,
    req: &Request,
    prompt: &mut Prompter<'_>,
) -> Result<Built, PlanError> {
    let built = build_env(loaded, state, facts, req, prompt)?;
    prepare_layout(&built)?;
    Ok(built)
}

/// A one-off command (`exec`, `ssh`) in the instance `built` of an app staged with a buildpack
/// at `place`: the release's config vars (under the app's own variables) and the command run
/// after `$HOME/.profile.d/*.sh` is sourced, as the web process is. Unchanged for an app
/// staged without a buildpack there.
pub(crate) fn one_off_command(
    state: &StateDir,
    built: &Built,
    place: Place,
    command: &[String],
) -> (Vec<String>, Vec<(String, String)>) {
    let Some(release) = crate::stage::buildpack::release(state, &built.app, place) else {
        return (command.to_vec(), Vec::new());
    };
    let vars = release
        .config_vars
        .into_iter()
        .filter(|(k, _)| built.env.get(k).is_none())
        .collect();
    let mut argv = vec![
        crate::stage::run::shell().to_string(),
        "-c".to_string(),
        format!("{}; exec \"$@\"", crate::stage::buildpack::SOURCE_PROFILE_D),
        "sh".to_string(),
    ];
    argv.extend(command.iter().cloned());
    (argv, vars)
}

/// Stage every app of `plan` and collect its processes and cron jobs, with the dependency
/// edges. `optimistic`: the apps start on their last staged copy, and the checkouts are
/// compared with it in the background (then edits are synced in and the apps restarted).
pub(crate) fn prepare(
    ctx: &Ctx<'_>,
    plan: &Plan<'_>,
    opts: &RunOptions,
    optimistic: bool,
    prompt: &mut Prompter<'_>,
) -> Result<supervise::Plan, PlanError> {
    let mut sp = supervise::Plan {
        utc_offset: cron::utc_offset(),
        verify: optimistic && !opts.in_place,
        ..supervise::Plan::default()
    };
    for a in &plan.apps {
        let (specs, crons, copies) = prepare_app(ctx, a, plan.multi, opts, prompt)?;
        sp.groups.push(specs);
        sp.crons.extend(crons);
        sp.copies.extend(copies);
    }
    sp.deps = plan.deps.clone();
    super::routes::finish(
        &mut sp,
        plan,
        &ctx.facts.domain,
        opts.router,
        &opts.stop_first,
    );
    Ok(sp)
}

/// What one app gives a round: its processes, its cron jobs, and its staged copies (none
/// with `--in-place`).
pub(crate) type AppRound = (Vec<Spec>, Vec<CronJob>, Option<Arc<Copies>>);

/// Stage one app, then give the processes and cron jobs of its instances.
pub(crate) fn prepare_app(
    ctx: &Ctx<'_>,
    a: &AppPlan<'_>,
    multi: bool,
    opts: &RunOptions,
    prompt: &mut Prompter<'_>,
) -> Result<AppRound, PlanError> {
    let place = stage(ctx, a, multi, opts, prompt)?;
    let (specs, crons, homes) = processes(ctx, a, multi, opts, place, prompt)?;
    let copies = match place {
        Place::Staged { generation } => Some(Arc::new(
            Copies::open(ctx.state, a.app, generation, homes, opts.copy_unsafe_links).ok_or_else(
                || PlanError::Copy(format!(
                    "the staged copy of {} has no record of what it copied; run again with --restage",
                    a.app.name.value
                )),
            )?,
        )),
        Place::Checkout => None,
    };
    Ok((specs, crons, copies))
}

/// Stage one app (or find its staging unchanged), saying so on the output; returns where its
/// processes run (the generation of its staged copy, or the checkout with `--in-place`).
pub(crate) fn stage(
    ctx: &Ctx<'_>,
    a: &AppPlan<'_>,
    multi: bool,
    opts: &RunOptions,
    prompt: &mut Prompter<'_>,
) -> Result<Place, PlanError> {
    let (loaded, out, app) = (ctx.loaded, ctx.out, a.app);
    for d in crate::platform::runtime::diagnostics(app, &app.path) {
        if d.is_error() {
            return Err(PlanError::Runtime(Box::new(d)));
        }
        out.note(&d.render(&loaded.sources, false));
    }
    for m in crate::platform::php_ext::missing(app) {
        out.note(&format!("warning: {}\nhelp: {}", m.message(), m.hint()));
    }
    if let Some(n) = crate::platform::runtime_bin::remember(ctx.state, app) {
        out.note(&format!("note: {n}"));
    }
    // A buildpack app with no buildpack to stage with stops here, at the key that asks for one.
    let root = crate::trust::record::root_of(loaded);
    if let Some((what, at, hint)) =
        crate::stage::buildpack::unavailable(app, opts.buildpack.as_deref(), &root)
    {
        let d = Diagnostic::error(what).at(at).hint(hint);
        return Err(PlanError::NoWebCommand(Box::new(d)));
    }
    let mut decision = crate::stage::decide(loaded, app, ctx.state, opts.restage, opts.in_place);
    // Another buildpack than the last staging's (or none now), or an edit of what a
    // buildpack compiled: stage again.
    if let crate::stage::Decision::Reuse { .. } = decision
        && (crate::stage::buildpack::changed(
            ctx.state,
            app,
            opts.buildpack.as_deref(),
            decision.place(),
        ) || crate::stage::buildpack::upload_changed(
            ctx.state,
            app,
            decision.place(),
            opts.copy_unsafe_links,
        ))
    {
        decision = crate::stage::decide(loaded, app, ctx.state, true, opts.in_place);
    }
    let place = decision.place();
    let mut req = a.staging.clone();
    req.place = place;
    let staging_env = build_env(loaded, ctx.state, ctx.facts, &req, prompt)?;
    for n in &staging_env.notes {
        out.note(&format!("note: {n}"));
    }
    prepare_layout(&staging_env)?;
    out.phase(&format!("staging {}", app.name.value));
    let label = a.label(multi, "staging");
    out.reserve(&label);
    let stager = Stager {
        loaded,
        app,
        state: ctx.state,
        env: &staging_env.env,
        home: staging_env.layout.home.clone(),
        host: opts.host,
        out,
        prefix: out.prefix(&label, 8),
        limit: Duration::from_secs(opts.hook_timeout),
        restage: opts.restage,
        copy_unsafe_links: opts.copy_unsafe_links,
        buildpack: opts.buildpack.clone(),
        stop: opts.stop.clone(),
    };
    let staged = stager.stage(decision);
    // What hooks and installers left running (background jobs) ends with the staging, as
    // the platform's staging container did (nothing ran when it was skipped).
    if !matches!(&staged, Ok(s) if s.cached) {
        crate::supervise::orphans::kill_marked();
    }
    match staged {
        Ok(s) if s.cached => {
            for n in &s.notes {
                out.note(&format!("note: {n}"));
            }
            out.phase(&format!(
                "staging {}: the manifest and requirements did not change since the last staging; skipped (--restage to force)",
                app.name.value
            ));
            Ok(place)
        }
        Ok(s) => {
            for n in &s.notes {
                out.note(&format!("note: {n}"));
            }
            out.phase(&format!("staged {}", app.name.value));
            Ok(place)
        }
        Err(error) => Err(PlanError::Stage {
            error: Box::new(error),
            limit: opts.hook_timeout,
        }),
    }
}

/// The processes, the cron jobs and (with a staged copy) the homes of an app's instances.
pub(crate) type Instances = (Vec<Spec>, Vec<CronJob>, Vec<std::path::PathBuf>);

/// The processes of one app, one per instance, and the cron jobs (instance 0's, or every
/// instance's with `STACKATO_CRON_INSTANCES=all`), at `place`; with a staged copy, also the
/// instances' own copies (made when missing), by instance.
pub(crate) fn processes(
    ctx: &Ctx<'_>,
    a: &AppPlan<'_>,
    multi: bool,
    opts: &RunOptions,
    place: Place,
    prompt: &mut Prompter<'_>,
) -> Result<Instances, PlanError> {
    let (out, app) = (ctx.out, a.app);
    let mut specs = Vec::new();
    let mut crons = Vec::new();
    let mut homes = Vec::new();
    let source = app.path.canonicalize().unwrap_or_else(|_| app.path.clone());
    if matches!(place, Place::Staged { .. }) {
        outside_note(app, out);
    }
    // Staged with a buildpack: its release, and `.profile.d/*.sh` sourced before the hooks.
    let release = crate::stage::buildpack::release(ctx.state, &app.name.value, place);
    let mut hooks = app.hooks.pre_running.clone();
    if release.is_some() {
        hooks.insert(
            0,
            crate::manifest::model::Hook {
                command: crate::stage::buildpack::SOURCE_PROFILE_D.to_string(),
                ignore_failure: true,
                span: app.name.span,
            },
        );
    }
    // Running on another runtime than declared: said at start, and again when a process
    // crashes.
    let runtime_fallback = crate::platform::runtime::resolve(app, &app.path).and_then(|c| {
        c.mismatch().map(|m| {
            format!(
                "it runs on another runtime than declared: {m}; {}",
                c.install_hint()
            )
        })
    });
    for req in &a.instances {
        let i = req.instance;
        let mut req = req.clone();
        req.place = place;
        // The instance's own copy of the staged tree (kept between runs), made before its
        // environment, which looks at its files (the start file of `$STACKATO_UWSGI`).
        if let Place::Staged { generation } = place {
            let home =
                crate::stage::droplet::instance_home(ctx.state, &app.name.value, generation, i)
                    .map_err(|e| {
                        PlanError::Copy(format!(
                            "could not make the copy of instance {i} of {}: {e}",
                            app.name.value
                        ))
                    })?;
            homes.push(home);
        }
        if app.web != Web::Worker {
            match build::ensure_instance_port_free(ctx.state, &app.name.value, i) {
                Ok(Some((old, new))) => out.note(&format!(
                    "note: port {old} of {} instance {i} is taken by another program; it now uses port {new} ($PORT follows)",
                    app.name.value
                )),
                Ok(None) => {}
                Err(e) => return Err(PlanError::Build(e)),
            }
        }
        let built = instance_env(ctx.loaded, ctx.state, ctx.facts, &req, prompt)?;
        crate::platform::web::install_php_router(app, &built.layout).map_err(PlanError::Layout)?;
        let mut env: Vec<(String, String)> = built
            .env
            .vars()
            .iter()
            .map(|v| (v.name.clone(), v.value.clone()))
            .collect();
        // PHP reads the app's ini dir after the distribution's scan dir (the leading `:`).
        if app.framework_name() == Some("php") && built.env.get("PHP_INI_SCAN_DIR").is_none() {
            let dir = built
                .layout
                .app_root
                .join(crate::platform::layout::PHP_INI_DIR);
            env.push(("PHP_INI_SCAN_DIR".into(), format!(":{}", dir.display())));
        }
        // A buildpack's release: its config vars under everything else.
        if let Some(r) = &release {
            for (k, v) in &r.config_vars {
                if built.env.get(k).is_none() {
                    env.push((k.clone(), v.clone()));
                }
            }
        }
        let mut apache = false;
        if app.web == Web::Default
            && app.command.is_none()
            && let Some(port) = built.env.get("PORT").and_then(|p| p.parse().ok())
        {
            let names: Vec<String> = env.iter().map(|(k, _)| k.clone()).collect();
            apache = crate::platform::php_apache::install(app, &built.layout, port, &names)
                .map_err(|e| PlanError::Copy(e.to_string()))?;
        }
        // A buildpack app built by no buildpack: nothing to start (its Procfile names the
        // buildpack's build output).
        if crate::stage::buildpack::needs_one(app) && release.is_none() {
            let (what, hint) = crate::stage::buildpack::missing(app);
            let d = Diagnostic::error(what).at(framework_at(app)).hint(hint);
            return Err(PlanError::NoWebCommand(Box::new(d)));
        }
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
                (None, Some(w)) => {
                    if i == 0
                        && let Some(how) = crate::platform::web::how_it_starts(app, &built.layout)
                    {
                        out.note(&format!("note: {}: {how}", app.name.value));
                    }
                    ("web", w.to_string(), built.env.get("PORT"))
                }
                (None, None) if release.as_ref().is_some_and(|r| r.web.is_some()) => (
                    "web",
                    release
                        .as_ref()
                        .and_then(|r| r.web.clone())
                        .unwrap_or_default(),
                    built.env.get("PORT"),
                ),
                (None, None) => {
                    let d = Diagnostic::error(format!(
                        "Application \"{}\" has no web command: framework {} has no default one here",
                        app.name.value,
                        app.framework_name().unwrap_or("(none)")
                    ))
                    .at(framework_at(app))
                    .hint("add `processes: {web: <command listening on $PORT>}`, or `command:`");
                    return Err(PlanError::NoWebCommand(Box::new(d)));
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
        // A web process with a route goes behind the router, with a second port for overlap
        // restarts (not Apache's: its configuration holds the port and a pid file).
        let (route, alt) = match port {
            Some(p) if kind == "web" && check == supervise::health::Check::Port => {
                let alt = if apache {
                    None
                } else {
                    let alt_port =
                        build::ensure_port_free(ctx.state, &format!("{}/{i}/b", app.name.value))
                            .map_err(PlanError::Build)?
                            .map_or_else(
                                || build::alt_instance_port(ctx.state, &app.name.value, i),
                                |(_, new)| Ok(new),
                            )
                            .map_err(PlanError::Build)?;
                    super::routes::alt_port(&env, &command, p, alt_port)
                };
                let route = supervise::child::RouteRef {
                    app: 0,
                    index: i,
                    instance_id: crate::platform::env::instance_id(&app.name.value, i),
                };
                (Some(route), alt.map(Arc::new))
            }
            _ => (None, None),
        };
        specs.push(Spec {
            name: a.label(multi, &format!("{kind}.{i}")),
            app: app.name.value.clone(),
            hooks: hooks.clone(),
            command,
            env: env.clone(),
            cwd: cwd.clone(),
            source: source.clone(),
            port,
            check,
            ready_timeout: Duration::from_secs(
                app.timeout.as_ref().map_or(60, |t| u64::from(t.value)),
            ),
            tty: opts.tty,
            overlap: false,
            alt,
            route,
            host: opts.host,
            declared_runtime: crate::platform::runtime::declared(
                app,
                &app.path,
                crate::platform::runtime::flags().runtime.as_deref(),
            )
            .map(|d| d.text),
            runtime_fallback: runtime_fallback.clone(),
        });
        if i == 0 || built.env.get("STACKATO_CRON_INSTANCES") == Some("all") {
            let mut jobs = cron::cron_jobs(
                app,
                opts.host,
                &env,
                &cwd,
                &a.label(multi, &format!("cron.{i}")),
                out,
            );
            // A buildpack app's cron jobs see what `.profile.d/*.sh` sets, as its web does.
            if release.is_some() {
                for j in &mut jobs {
                    j.command = format!(
                        "{}; {}",
                        crate::stage::buildpack::SOURCE_PROFILE_D,
                        j.command
                    );
                }
            }
            crons.extend(jobs);
        }
    }
    Ok((specs, crons, homes))
}

/// A note when the app's commands or hooks reach outside its directory (`../shared.py`): a push
/// uploaded the app directory only, and the staged copy holds only that too.
fn outside_note(app: &crate::manifest::App, out: &Output) {
    let web = match &app.web {
        Web::Command(c) => Some(c.value.as_str()),
        _ => None,
    };
    let commands = web
        .into_iter()
        .chain(app.command.as_ref().map(|c| c.value.as_str()))
        .chain(
            app.hooks
                .pre_staging
                .iter()
                .chain(&app.hooks.post_staging)
                .chain(&app.hooks.pre_running)
                .map(|h| h.command.as_str()),
        );
    let reaching = |c: &str| {
        c.split(|ch: char| ch.is_whitespace() || ch == '=' || ch == ':')
            .any(|w| w.trim_matches(['"', '\'']).starts_with("../"))
    };
    if let Some(c) = commands.into_iter().find(|c| reaching(c)) {
        out.note(&format!(
            "note: {} runs `{}`, which reaches outside the app directory: a push uploaded the app directory only, and the staged copy holds only that ({}); `run --in-place` runs in the checkout",
            app.name.value,
            crate::shell::shown_name(c),
            "include what it needs in the app, or set `app-dir:`/`path:` to the directory that holds both"
        ));
    }
}

/// Where a "no web command" error points: the framework's type (what `check` points at),
/// else the app's name.
fn framework_at(app: &crate::manifest::App) -> crate::diag::Span {
    app.framework
        .as_ref()
        .and_then(|f| f.name_span)
        .unwrap_or(app.name.span)
}
