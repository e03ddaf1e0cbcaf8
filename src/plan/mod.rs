//! The run pipeline as a library: what `run` does, and what `exec`, `ssh`, `env`, the shell
//! hook and `export` share of it, decided in one place from the loaded manifest and the
//! options, with no printing of its own beyond `run`'s progress lines and typed errors
//! ([`PlanError`]) that `src/cli/` maps to exit codes.
//!
//! - [`options`] — one [`EnvOptions`] (profile, `--env`, `--env-file`, `--no-dotenv`, the
//!   database mode, skipped services, where `$HOME` is) that every command converts its
//!   arguments into, and the one function, [`EnvOptions::request`], that makes the
//!   environment [`Request`](crate::env::build::Request) from it.
//! - [`apps`] — the [`Plan`]: the selected apps in start order (`--app`, `depends-on`), each
//!   with its staging request and one request per instance, and the dependency edges.
//! - [`services`] — provisioning and planning the project's services, sorting what a start
//!   gave (to stop, keep and watch), restarting one that died.
//! - [`prepare`] — staging an app (the call to `Stager::stage()`) and turning each instance
//!   into a supervised process, then the whole round into a `supervise::Plan`.
//! - [`cron`] — an instance's cron jobs (`$HOME/crontab`, then `cron:`) and the UTC offset.
//! - [`error`] — [`PlanError`].

pub(crate) mod apps;
pub(crate) mod cron;
pub(crate) mod error;
pub(crate) mod options;
pub(crate) mod prepare;
pub(crate) mod routes;
pub(crate) mod services;

pub(crate) use apps::{AppPlan, Plan, check_selection};
pub(crate) use error::PlanError;
pub(crate) use options::{EnvOptions, facts};
pub(crate) use prepare::{Ctx, RunOptions, build_env, instance_env, prepare};

/// Why `run` cannot start `app` (of the project in `project`), for `check` and `doctor`: no
/// buildpack to stage it with (as `run` stops before staging), whatever its web command; else
/// what [`crate::platform::web::cannot_start`] finds (no default web command, its program
/// missing).
pub(crate) fn cannot_start(
    app: &crate::manifest::App,
    project: &std::path::Path,
) -> Option<crate::platform::web::CannotStart> {
    if let Some((what, _, hint)) = crate::stage::buildpack::unavailable(app, None, project) {
        return Some(crate::platform::web::CannotStart {
            what,
            debian: None,
            hint: Some(hint),
        });
    }
    crate::platform::web::cannot_start(app)
}
