//! One round of `run` for the plan's apps: stage each app (the call to `Stager::stage()`),
//! then make a supervised process, and the cron jobs, of each instance; together the
//! `supervise::Plan` the supervisor runs. Progress goes to `run`'s [`Output`]; failures are
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
use crate::random::OsRng;
use crate::stage::{HashInput, Stager};
use crate::state::StateDir;
use crate::supervise::{self, CronJob, child::Spec};

/// What a round works with.
pub struct Ctx<'a> {
    pub loaded: &'a Loaded,
    pub state: &'a StateDir,
    pub facts: &'a Facts,
    /// `run`'s output: phases, notes, the staging hooks' lines.
    pub out: &'a Arc<Output>,
}

/// `run`'s options that shape staging and the processes.
#[derive(Debug, Clone, Copy)]
pub struct RunOptions {
    /// `--restage`: stage even when nothing changed.
    pub restage: bool,
    /// `--hook-timeout`: time limit of one staging hook or installer, in seconds.
    pub hook_timeout: u64,
    /// How much of the host environment hooks, processes and cron jobs get.
    pub host: Host,
    /// `--tty`: processes get a pseudo-terminal.
    pub tty: bool,
}

/// The environment `req` asks for (`prompt` asks for required variables without a value).
pub fn build_env(
    loaded: &Loaded,
    state: &StateDir,
    facts: &Facts,
    req: &Request,
    prompt: &mut Prompter<'_>,
) -> Result<Built, PlanError> {
    build::build(loaded, req, state, facts, &mut OsRng, prompt).map_err(PlanError::Build)
}

/// Make the instance's directories (`$STACKATO_APP_ROOT`, `logs/`).
pub fn prepare_layout(built: &Built) -> Result<(), PlanError> {
    built.layout.prepare().map_err(PlanError::Layout)
}

/// The environment of one instance, its directories made: what `exec` and `ssh` run in.
pub fn instance_env(
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

/// Stage every app of `plan` and collect its processes and cron jobs, with the dependency
/// edges. `optimistic`: an app whose staging record is unchanged starts while its files are
/// hashed in the background (the pairs to check are in `verify`).
pub fn prepare(
    ctx: &Ctx<'_>,
    plan: &Plan<'_>,
    opts: &RunOptions,
    optimistic: bool,
    prompt: &mut Prompter<'_>,
) -> Result<supervise::Plan, PlanError> {
    let mut sp = supervise::Plan {
        utc_offset: cron::utc_offset(),
        ..supervise::Plan::default()
    };
    for a in &plan.apps {
        let (specs, crons) =
            prepare_app(ctx, a, plan.multi, opts, optimistic, &mut sp.verify, prompt)?;
        sp.groups.push(specs);
        sp.crons.extend(crons);
    }
    sp.deps = plan.deps.clone();
    Ok(sp)
}

/// Stage one app, then give the processes and cron jobs of its instances.
pub fn prepare_app(
    ctx: &Ctx<'_>,
    a: &AppPlan<'_>,
    multi: bool,
    opts: &RunOptions,
    optimistic: bool,
    verify: &mut Vec<(HashInput, String)>,
    prompt: &mut Prompter<'_>,
) -> Result<(Vec<Spec>, Vec<CronJob>), PlanError> {
    stage(ctx, a, multi, opts, optimistic, verify, prompt)?;
    processes(ctx, a, multi, opts, prompt)
}

/// Stage one app (or find its staging unchanged), saying so on the output.
pub fn stage(
    ctx: &Ctx<'_>,
    a: &AppPlan<'_>,
    multi: bool,
    opts: &RunOptions,
    optimistic: bool,
    verify: &mut Vec<(HashInput, String)>,
    prompt: &mut Prompter<'_>,
) -> Result<(), PlanError> {
    let (loaded, out, app) = (ctx.loaded, ctx.out, a.app);
    let staging_env = build_env(loaded, ctx.state, ctx.facts, &a.staging, prompt)?;
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
        host: opts.host,
        out,
        prefix: out.prefix(&label, 8),
        limit: Duration::from_secs(opts.hook_timeout),
        restage: opts.restage,
        optimistic,
    };
    match stager.stage() {
        Ok(s) if s.cached => {
            if optimistic {
                verify.push((HashInput::of(loaded, app), s.hash.clone()));
            }
            for n in &s.notes {
                out.note(&format!("note: {n}"));
            }
            out.phase(&format!(
                "staging {}: nothing pushed changed since the last staging; skipped (--restage to force)",
                app.name.value
            ));
            Ok(())
        }
        Ok(s) => {
            for n in &s.notes {
                out.note(&format!("note: {n}"));
            }
            out.phase(&format!("staged {}", app.name.value));
            Ok(())
        }
        Err(error) => Err(PlanError::Stage {
            error: Box::new(error),
            limit: opts.hook_timeout,
        }),
    }
}

/// The processes of one app, one per instance, and the cron jobs (instance 0's, or every
/// instance's with `STACKATO_CRON_INSTANCES=all`).
pub fn processes(
    ctx: &Ctx<'_>,
    a: &AppPlan<'_>,
    multi: bool,
    opts: &RunOptions,
    prompt: &mut Prompter<'_>,
) -> Result<(Vec<Spec>, Vec<CronJob>), PlanError> {
    let (out, app) = (ctx.out, a.app);
    let mut specs = Vec::new();
    let mut crons = Vec::new();
    for req in &a.instances {
        let i = req.instance;
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
        let built = instance_env(ctx.loaded, ctx.state, ctx.facts, req, prompt)?;
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
        specs.push(Spec {
            name: a.label(multi, &format!("{kind}.{i}")),
            app: app.name.value.clone(),
            instance: i,
            hooks: app.hooks.pre_running.clone(),
            command,
            env: env.clone(),
            cwd: cwd.clone(),
            port,
            check,
            ready_timeout: Duration::from_secs(
                app.timeout.as_ref().map_or(60, |t| u64::from(t.value)),
            ),
            tty: opts.tty,
            host: opts.host,
        });
        if i == 0 || built.env.get("STACKATO_CRON_INSTANCES") == Some("all") {
            crons.extend(cron::cron_jobs(
                app,
                opts.host,
                &env,
                &cwd,
                &a.label(multi, &format!("cron.{i}")),
                out,
            ));
        }
    }
    Ok((specs, crons))
}
