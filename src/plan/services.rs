//! The project's services in a plan: provisioned (credentials, ports) and planned (native
//! server, sqlite fallback, directory, skipped), and restarting one that died during a run.

use std::sync::Arc;
use std::time::Duration;

use crate::manifest::Loaded;
use crate::plan::PlanError;
use crate::random::OsRng;
use crate::services::lifecycle::{self, DbMode, Mode, Planned, StartOptions};
use crate::services::registry;
use crate::state::StateDir;

/// Provision every service of the manifest and plan how each runs.
pub fn provision(
    loaded: &Loaded,
    state: &StateDir,
    db: DbMode,
    skip: &[String],
) -> Result<Vec<Planned>, PlanError> {
    let records =
        registry::provision(state, &loaded.manifest, &mut OsRng).map_err(PlanError::Provision)?;
    lifecycle::plan(state, &records, db, skip).map_err(PlanError::Service)
}

/// Start one of `natives` again (after it died), with the same checks as at start-up, waiting
/// up to `timeout` for it to answer; gives its new pid and its stop signal.
pub fn restarter(
    state: &StateDir,
    natives: &[Planned],
    timeout: Duration,
) -> crate::supervise::ServiceRestarter {
    let state = state.clone();
    let natives = natives.to_vec();
    Arc::new(move |name: &str| {
        let Some(p) = natives.iter().find(|p| p.record.name == name) else {
            return Err(format!("{name} is not a service of this run"));
        };
        let mut one = vec![p.clone()];
        let so = StartOptions {
            timeout,
            spinner: false,
        };
        let ups =
            lifecycle::start_all(&state, &mut one, &so, &mut |_| {}).map_err(|e| e.to_string())?;
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
