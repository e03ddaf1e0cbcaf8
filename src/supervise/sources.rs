//! Where the event loop's outside events come from: the one signal path (the run's stop
//! requests, read from its [`Stop`] queue, and SIGCHLD), the
//! file watcher, the background comparison of checkouts with their staged copies, and the
//! exit of a service's server (a pidfd that becomes readable: no polling).

use std::os::fd::{AsRawFd, RawFd};
use std::sync::Arc;

use nix::sys::signal::Signal;
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tokio::sync::mpsc::UnboundedSender;

use super::Event;
use crate::interrupt::Stop;

/// Forward our signals into the loop: the stop signals from the run's [`Stop`] queue (each
/// once, those that came before the loop listened first), SIGCHLD from tokio; `Err` when they
/// cannot be listened for.
pub(super) fn signals(tx: &UnboundedSender<Event>, stop: &Stop) -> Result<(), String> {
    use tokio::signal::unix::{SignalKind, signal};
    let cannot = |e: std::io::Error| format!("cannot listen for signals: {e}");
    let mut chld = signal(SignalKind::child()).map_err(cannot)?;
    let chld_tx = tx.clone();
    tokio::spawn(async move {
        while chld.recv().await.is_some() {
            if chld_tx.send(Event::Signal(Signal::SIGCHLD)).is_err() {
                break;
            }
        }
    });
    if stop.queue_fd().is_none() {
        return Ok(());
    }
    // SAFETY: the handle inside `Queue` keeps the descriptor open, the same one, while the
    // AsyncFd lives.
    let queue = unsafe { AsyncFd::register_with_interest(Queue(stop.clone()), Interest::READABLE) }
        .map_err(|e| cannot(e.into()))?;
    let tx = tx.clone();
    tokio::spawn(async move {
        loop {
            let Ok(mut ready) = queue.readable().await else {
                break;
            };
            let got = queue.get_ref().0.take_queued();
            if got.is_empty() {
                // Drained to EAGAIN: wait for the next signal.
                ready.clear_ready();
            }
            for sig in got {
                if tx.send(Event::Signal(sig)).is_err() {
                    return;
                }
            }
        }
    });
    Ok(())
}

/// The stop queue's descriptor, for tokio (the handle keeps it open; it is not closed here).
struct Queue(Stop);

impl AsRawFd for Queue {
    fn as_raw_fd(&self) -> RawFd {
        self.0.queue_fd().unwrap_or(-1)
    }
}

/// Forward the watcher's changes into the loop; the watcher runs while the result lives.
pub(super) fn watch(
    w: &super::WatchOptions,
    tx: &UnboundedSender<Event>,
    out: &Arc<crate::output::Output>,
    armed: tokio::sync::oneshot::Sender<()>,
) -> crate::watch::Watching {
    let (wtx, mut wrx) = tokio::sync::mpsc::unbounded_channel::<Vec<std::path::PathBuf>>();
    let watching = crate::watch::start(
        w.roots.clone(),
        Arc::clone(&w.filter),
        w.poll,
        wtx,
        Arc::clone(out),
        armed,
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
