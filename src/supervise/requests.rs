//! Requests to restart or stop from outside the processes: changed files (restart the apps
//! they belong to, or reload on a manifest or requirements change), the background
//! comparison's findings, the keys `r` and `q`, and `stackato-local restart` commands.

use std::path::PathBuf;
use std::time::Instant;

use super::event_loop::Parts;
use super::restart::describe_paths;
use super::{Event, Outcome};

pub(super) fn handle(p: &mut Parts<'_>, ev: Event, now: Instant) {
    match ev {
        Event::Changed(paths) => changed(p, paths, now),
        Event::Stale { app, paths, notes } => stale(p, app, paths, notes, now),
        Event::Key(b'r') => {
            p.out.phase("r pressed: restarting every process");
            let world = super::world::Tails(p.tails);
            p.core.restart(None, Vec::new(), now, &world);
        }
        Event::Key(b'q') => {
            p.out.phase("q pressed: stopping");
            p.core.begin_stop(Outcome::Quit, now);
        }
        Event::Control(cmd, reply) => {
            let answer = control(p, &cmd, now);
            let _ = reply.send(answer);
        }
        _ => {}
    }
}

/// Changed files: restart the processes of the apps they belong to, or reload.
fn changed(p: &mut Parts<'_>, paths: Vec<PathBuf>, now: Instant) {
    if p.core.stopping() {
        return;
    }
    let paths = p.core.restarts.unwritten(paths);
    if paths.is_empty() {
        return;
    }
    let Some(w) = p.watch else {
        return;
    };
    let change = paths
        .iter()
        .map(|p| w.filter.classify(p))
        .max()
        .unwrap_or(crate::watch::Change::Code);
    let what = describe_paths(&paths);
    match change {
        crate::watch::Change::Manifest | crate::watch::Change::Requirements => {
            let why = if change == crate::watch::Change::Manifest {
                "it decides what runs"
            } else {
                "requirements changed"
            };
            p.out
                .phase(&format!("{what} changed: {why}, restaging then restarting"));
            p.core
                .begin_stop(Outcome::Reload(format!("{what} changed")), now);
        }
        crate::watch::Change::Code => {
            let affected: Vec<usize> = (0..p.specs.len())
                .filter(|&i| {
                    let s = &p.specs[i];
                    paths
                        .iter()
                        .any(|p| p.starts_with(&s.source) || p.starts_with(&s.cwd))
                })
                .collect();
            if affected.is_empty() {
                return;
            }
            let world = super::world::Tails(p.tails);
            p.core.restart(Some(affected), paths, now, &world);
        }
    }
}

fn stale(p: &mut Parts<'_>, app: String, paths: Vec<PathBuf>, notes: Vec<String>, now: Instant) {
    if p.core.stopping() {
        return;
    }
    for n in notes {
        p.out.error(n.trim_start_matches("error: "));
    }
    if paths.is_empty() {
        return;
    }
    p.out.phase(&format!(
        "{app}: {} changed since the staged copy was made: syncing it in, then restarting (--restage runs the hooks again)",
        describe_paths(&paths)
    ));
    let affected: Vec<usize> = (0..p.specs.len())
        .filter(|&i| p.specs[i].app == app)
        .collect();
    let world = super::world::Tails(p.tails);
    p.core.restart(Some(affected), paths, now, &world);
}

/// A command from `stackato-local restart`.
fn control(p: &mut Parts<'_>, cmd: &str, now: Instant) -> String {
    let names: Vec<&str> = p.specs.iter().map(|s| s.name.as_str()).collect();
    let mut parts = cmd.split_whitespace();
    match (parts.next(), parts.next()) {
        (Some("restart"), None) => {
            p.out.phase("restart requested: restarting every process");
            let world = super::world::Tails(p.tails);
            p.core.restart(None, Vec::new(), now, &world);
            format!("ok: restarting {}", names.join(", "))
        }
        (Some("restart"), Some(name)) => {
            let which: Vec<usize> = (0..p.specs.len())
                .filter(|&i| {
                    let s = &p.specs[i];
                    s.name == name || s.name.split('.').next() == Some(name) || s.app == name
                })
                .collect();
            if which.is_empty() {
                return format!(
                    "error: no process named {name} (running: {})",
                    names.join(", ")
                );
            }
            p.out
                .phase(&format!("restart requested: restarting {name}"));
            let world = super::world::Tails(p.tails);
            p.core.restart(Some(which), Vec::new(), now, &world);
            format!("ok: restarting {name}")
        }
        (Some("ping"), _) => "ok".into(),
        _ => format!("error: unknown command {cmd:?}"),
    }
}
