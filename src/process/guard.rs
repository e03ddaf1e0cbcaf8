//! The guardian of this process: started once per command (`run`, `exec`, `ssh`), told about
//! every group and service server we start, and told to stand down at a clean end.

use std::sync::Mutex;

use crate::supervise::guardian::Guardian;

use super::run_id;

// ---------------------------------------------------------------------------------------------

pub(super) struct Guarded {
    pub(super) guardian: Guardian,
    pub(super) stop_services: bool,
}

static GUARDIAN: Mutex<Option<Guarded>> = Mutex::new(None);

pub(super) fn with_guardian(f: impl FnOnce(&mut Guarded)) {
    if let Ok(mut g) = GUARDIAN.lock()
        && let Some(g) = g.as_mut()
    {
        f(g);
    }
}

/// Start the guardian for this command (`run`, `exec`, `ssh`), once: from now on every
/// [`Tie::Group`] spawn is registered with it, and, with `stop_services`, every service server
/// this process starts. If we die without [`end_guardian`], it kills them all. Without a
/// guardian (it could not be started) the death signals still take the direct children.
pub(crate) fn start_guardian(stop_services: bool) {
    if guardian_pid().is_some() {
        return;
    }
    // Started without holding the lock: its spawn goes through `spawn`, which takes it.
    let mut guardian = Guardian::start();
    if guardian.pid().is_none() {
        return;
    }
    guardian.mark(run_id());
    if let Ok(mut slot) = GUARDIAN.lock() {
        match slot.as_ref() {
            // Another thread was quicker: ours ends at once.
            Some(_) => guardian.done(),
            None => {
                *slot = Some(Guarded {
                    guardian,
                    stop_services,
                })
            }
        }
    }
}

/// A clean end: the guardian exits without doing anything.
pub(crate) fn end_guardian() {
    let g = GUARDIAN.lock().ok().and_then(|mut g| g.take());
    if let Some(g) = g {
        g.guardian.done();
    }
}

/// The guardian's pid, if it runs.
pub(crate) fn guardian_pid() -> Option<i32> {
    GUARDIAN
        .lock()
        .ok()
        .and_then(|g| g.as_ref().and_then(|g| g.guardian.pid()))
}

/// The group `pgid` is gone (or was killed): the guardian forgets it.
pub(crate) fn forget_group(pgid: i32) {
    with_guardian(|g| g.guardian.forget_group(pgid));
}

/// A process that left its group and came to us (a daemon of a child): killed with its
/// group if we die.
pub(crate) fn guard_orphan(pid: i32) {
    with_guardian(|g| {
        g.guardian.watch_group(pid);
        g.guardian.watch_pid(pid);
    });
}
