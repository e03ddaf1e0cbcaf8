//! The project's services in a plan: provisioned (credentials, ports) and planned (native
//! server, sqlite fallback, directory, skipped), what a start gave, and restarting one that
//! died during a run.

use std::sync::Arc;
use std::time::Duration;

use crate::manifest::Loaded;
use crate::plan::PlanError;
use crate::random::OsRng;
use crate::services::lifecycle::{self, DbMode, How, Mode, Planned, StartOptions, Up};
use crate::services::registry;
use crate::state::StateDir;

/// Provision every service of the manifest and plan how each runs.
pub(crate) fn provision(
    loaded: &Loaded,
    state: &StateDir,
    db: DbMode,
    skip: &[String],
) -> Result<Vec<Planned>, PlanError> {
    let records =
        registry::provision(state, &loaded.manifest, &mut OsRng).map_err(PlanError::Provision)?;
    lifecycle::plan(state, &records, db, skip).map_err(PlanError::Service)
}

/// What one start of the planned services gave, as a run keeps it between rounds.
#[derive(Debug, Default)]
pub(crate) struct Started {
    /// The native services (one that dies is started again).
    pub natives: Vec<Planned>,
    /// Each server's name and pid, to watch.
    pub watched: Vec<(String, i32)>,
    /// The servers' pids, in plan order: never taken for leftovers of the app.
    pub pids: Vec<i32>,
    /// The services this start started (not found already running): to stop at the end.
    pub ours: Vec<Planned>,
}

/// Sort what starting `planned` gave (`ups`).
pub(crate) fn started(planned: &[Planned], ups: &[Up]) -> Started {
    let mut s = Started {
        natives: planned
            .iter()
            .filter(|p| matches!(p.mode, Mode::Native(..)))
            .cloned()
            .collect(),
        watched: ups
            .iter()
            .filter_map(|u| u.pid.map(|pid| (u.name.clone(), pid)))
            .collect(),
        ..Started::default()
    };
    for p in planned {
        let Some(up) = ups.iter().find(|u| u.name == p.record.name) else {
            continue;
        };
        if let Some(pid) = up.pid {
            s.pids.push(pid);
        }
        if matches!(up.how, How::Started { .. }) {
            s.ours.push(p.clone());
        }
    }
    s
}

/// Start one of `natives` again (after it died), with the same checks as at start-up, waiting
/// up to `timeout` for it to answer (or a stop request); gives its new pid and its stop signal.
pub(crate) fn restarter(
    state: &StateDir,
    natives: &[Planned],
    timeout: Duration,
    stop: &crate::interrupt::Stop,
) -> crate::supervise::ServiceRestarter {
    let stop = stop.clone();
    let state = state.clone();
    let natives = natives.to_vec();
    Arc::new(move |name: &str| {
        let Some(p) = natives.iter().find(|p| p.record.name == name) else {
            return Err(format!("{name} is not a service of this run"));
        };
        let mut one = vec![p.clone()];
        let so = StartOptions {
            timeout,
            stop: stop.clone(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ServiceRecord;

    fn planned(name: &str) -> Planned {
        Planned {
            record: ServiceRecord {
                name: name.into(),
                kind: "redis".into(),
                port: None,
                credentials: Default::default(),
            },
            mode: Mode::Nothing,
            note: None,
        }
    }

    fn up(name: &str, how: How, pid: Option<i32>) -> Up {
        Up {
            name: name.into(),
            kind: "redis".into(),
            how,
            port: None,
            pid,
            elapsed: Duration::ZERO,
            notes: Vec::new(),
        }
    }

    #[test]
    fn only_what_this_start_started_is_ours_and_every_server_is_kept() {
        let p = [planned("a"), planned("b"), planned("c")];
        let ups = [
            up("b", How::Reused, Some(20)),
            up("a", How::Started { cold: true }, Some(10)),
            up("c", How::Skipped, None),
        ];
        let s = started(&p, &ups);
        let ours: Vec<&str> = s.ours.iter().map(|p| p.record.name.as_str()).collect();
        assert_eq!(ours, ["a"]);
        assert_eq!(s.pids, [10, 20]);
        assert_eq!(s.watched, [("b".to_string(), 20), ("a".to_string(), 10)]);
        assert!(s.natives.is_empty());
    }
}
