//! Where the event loop's outside events come from: the one signal path (SIGINT, SIGTERM,
//! SIGHUP and SIGCHLD as events, and a stop signal that came before the loop listened), the
//! file watcher, the background comparison of checkouts with their staged copies, and the
//! exit of a service's server (a pidfd that becomes readable: no polling).

use std::sync::Arc;

use nix::sys::signal::Signal;
use tokio::sync::mpsc::UnboundedSender;

use super::Event;

/// Forward our signals into the loop; `Err` when they cannot be listened for.
pub(super) fn signals(tx: &UnboundedSender<Event>) -> Result<(), String> {
    use tokio::signal::unix::{SignalKind, signal};
    let kinds = [
        (SignalKind::interrupt(), Signal::SIGINT),
        (SignalKind::terminate(), Signal::SIGTERM),
        (SignalKind::hangup(), Signal::SIGHUP),
        (SignalKind::child(), Signal::SIGCHLD),
    ];
    for (kind, sig) in kinds {
        let mut s = signal(kind).map_err(|e| format!("cannot listen for signals: {e}"))?;
        let tx = tx.clone();
        tokio::spawn(async move {
            while s.recv().await.is_some() {
                if tx.send(Event::Signal(sig)).is_err() {
                    break;
                }
            }
        });
    }
    // A stop signal that came while the loop was being set up (before it listened).
    if let Some(sig) = crate::interrupt::received().and_then(|s| Signal::try_from(s).ok()) {
        let _ = tx.send(Event::Signal(sig));
    }
    Ok(())
}

/// Forward the watcher's changes into the loop; the watcher runs while the result lives.
pub(super) fn watch(
    w: &super::WatchOptions,
    tx: &UnboundedSender<Event>,
    out: &Arc<crate::output::Output>,
) -> crate::watch::Watching {
    let (wtx, mut wrx) = tokio::sync::mpsc::unbounded_channel::<Vec<std::path::PathBuf>>();
    let watching = crate::watch::start(
        w.roots.clone(),
        Arc::clone(&w.filter),
        w.poll,
        wtx,
        Arc::clone(out),
    );
    let tx = tx.clone();
    tokio::spawn(async move {
        while let Some(paths) = wrx.recv().await {
            if tx.send(Event::Changed(paths)).is_err() {
                break;
            }
        }
    });
    watching
}

/// Compare each checkout with its staged copy in the background; report what changed.
pub(super) fn verify(copies: &[Arc<crate::stage::droplet::Copies>], tx: &UnboundedSender<Event>) {
    for c in copies {
        let (tx, c) = (tx.clone(), Arc::clone(c));
        tokio::task::spawn_blocking(move || {
            let (paths, notes) = match c.diff() {
                Ok(changes) => {
                    let notes = if changes.unsafe_links.is_empty() {
                        Vec::new()
                    } else {
                        vec![format!(
                            "error: {}: {} — the app runs on its last staged copy of them; remove the links, or run with --copy-unsafe-links",
                            c.app,
                            crate::stage::copy::refusal(&changes.unsafe_links, c.checkout())
                        )]
                    };
                    (
                        changes.paths().map(|r| c.checkout().join(r)).collect(),
                        notes,
                    )
                }
                Err(e) => (
                    Vec::new(),
                    vec![format!(
                        "error: {}: the checkout could not be compared with the staged copy: {e}",
                        c.app
                    )],
                ),
            };
            if paths.is_empty() {
                // In step: nothing to hold in memory until the next edit.
                c.release();
            }
            if !paths.is_empty() || !notes.is_empty() {
                let _ = tx.send(Event::Stale {
                    app: c.app.clone(),
                    paths,
                    notes,
                });
            }
        });
    }
}

/// Report when the service server `pid` ends. `false` when its end cannot be awaited (no
/// pidfd): the caller checks on it at a deadline instead.
pub(super) fn service_exit(name: &str, pid: i32, tx: &UnboundedSender<Event>) -> bool {
    use std::os::fd::{FromRawFd, OwnedFd};
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    let died = |tx: &UnboundedSender<Event>| {
        let _ = tx.send(Event::ServiceDied {
            name: name.to_string(),
            pid,
        });
    };
    if fd < 0 {
        if std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH) {
            died(tx);
            return true;
        }
        return false;
    }
    // SAFETY: a descriptor just returned by the kernel, owned by nobody else.
    let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
    // SAFETY: the OwnedFd is moved in and stays open, the same descriptor, while it lives.
    let registered = unsafe {
        tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE)
    };
    let Ok(afd) = registered else {
        return false;
    };
    let (tx, name) = (tx.clone(), name.to_string());
    tokio::spawn(async move {
        // Readable once the process has ended.
        if afd.readable().await.is_ok() {
            let _ = tx.send(Event::ServiceDied { name, pid });
        }
    });
    true
}
