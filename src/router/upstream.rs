//! Connections to instances: each client connection keeps the HTTP/1.1 connection to the
//! instance it used last and sends its next request there (no shared pool to lock and check
//! out per request, ROUTER-DESIGN §5.3); upgrades and instances that close kept-alive
//! connections get a connection of their own per request.

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;

use super::body::Reclaim;
use super::table::{Instance, RouteTable};

/// How long a connect may take before the instance counts as refusing.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// A kept connection idle longer than this is not reused: the app may be closing it (node's
/// `keepAliveTimeout` is 5 s), and a request sent as it closes is lost (the pool this replaces
/// had the same idle timeout).
const IDLE: Duration = Duration::from_secs(1);
/// How long a kept connection may take to be ready for the next request (it finishes reading
/// the last response) before a new one is made instead.
const READY_WAIT: Duration = Duration::from_millis(500);

pub(crate) type Sender = SendRequest<Reclaim>;

/// The connection a client connection keeps to an instance.
#[derive(Default)]
pub(crate) struct Kept {
    slot: Mutex<Option<Held>>,
}

struct Held {
    id: u64,
    inst: Arc<Instance>,
    tx: Sender,
    used: Instant,
}

/// How a request reaches its instance.
#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Mode {
    /// The client connection's kept connection, or a new one it keeps.
    Kept,
    /// A connection of its own, closed after the response (instances marked `no_reuse`).
    Fresh,
    /// A connection of its own that can switch protocols (requests with `Upgrade`).
    Upgrade,
}

/// A sender for one request.
pub(crate) struct Lease {
    pub tx: Sender,
    id: u64,
}

impl Kept {
    /// The kept sender for `inst` if it is for that very instance, was used within [`IDLE`]
    /// and is ready; the connection it replaces is let go (it closes once idle).
    async fn take(&self, inst: &Arc<Instance>) -> Option<(u64, Sender)> {
        let held = self.slot.lock().ok()?.take()?;
        if !Arc::ptr_eq(&held.inst, inst) || held.used.elapsed() > IDLE {
            return None;
        }
        let Held { id, mut tx, .. } = held;
        match tokio::time::timeout(READY_WAIT, tx.ready()).await {
            Ok(Ok(())) => Some((id, tx)),
            _ => None,
        }
    }

    /// Keep `tx` (to `inst`) for the client connection's next request.
    pub(crate) fn put(&self, lease: Lease, inst: &Arc<Instance>) {
        if let Ok(mut s) = self.slot.lock() {
            *s = Some(Held {
                id: lease.id,
                inst: inst.clone(),
                tx: lease.tx,
                used: Instant::now(),
            });
        }
    }

    /// Whether the kept connection is `id` and has not been used for [`IDLE`].
    fn idle(&self, id: u64) -> bool {
        self.slot
            .lock()
            .ok()
            .and_then(|s| s.as_ref().map(|h| h.id == id && h.used.elapsed() >= IDLE))
            .unwrap_or(false)
    }

    /// Let the kept connection `id` go (if it is still the kept one).
    fn forget(&self, id: u64) {
        if let Ok(mut s) = self.slot.lock()
            && s.as_ref().is_some_and(|h| h.id == id)
        {
            *s = None;
        }
    }
}

/// What a kept connection's task needs to let it go when its instance stops taking requests.
pub(crate) struct Watch<'a> {
    pub kept: &'a Arc<Kept>,
    pub routes: &'a watch::Receiver<Arc<RouteTable>>,
    pub app: usize,
}

/// A sender for a request to `inst`: the kept one when `mode` is [`Mode::Kept`] and it can be
/// reused, else a new connection (an error: the instance did not accept it in time).
pub(crate) async fn lease(
    inst: &Arc<Instance>,
    mode: Mode,
    w: &Watch<'_>,
) -> std::io::Result<Lease> {
    if mode == Mode::Kept
        && let Some((id, tx)) = w.kept.take(inst).await
    {
        return Ok(Lease { tx, id });
    }
    connect(inst, mode, w).await
}

/// A new connection to `inst`, its I/O driven by a task of its own.
pub(crate) async fn connect(
    inst: &Arc<Instance>,
    mode: Mode,
    w: &Watch<'_>,
) -> std::io::Result<Lease> {
    static IDS: AtomicU64 = AtomicU64::new(1);
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, inst.port));
    let tcp = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
        Ok(r) => r?,
        Err(_) => return Err(std::io::ErrorKind::TimedOut.into()),
    };
    let _ = tcp.set_nodelay(true);
    // hyper's default limit of 100 response headers (as for requests): a higher one makes it
    // allocate and fill that many slots for every response it parses.
    let (tx, conn) = http1::Builder::new()
        .handshake::<_, Reclaim>(TokioIo::new(tcp))
        .await
        .map_err(std::io::Error::other)?;
    let id = IDS.fetch_add(1, Ordering::Relaxed);
    match mode {
        Mode::Upgrade => {
            tokio::spawn(conn.with_upgrades());
        }
        Mode::Fresh => {
            tokio::spawn(conn);
        }
        Mode::Kept => {
            let kept = Arc::downgrade(w.kept);
            let routes = w.routes.clone();
            let (app, inst) = (w.app, inst.clone());
            tokio::spawn(async move {
                tokio::pin!(conn);
                let stop = stopping(routes, app, inst);
                tokio::pin!(stop);
                // Let it go when its instance stops taking requests (draining or gone) or when
                // it has been idle for [`IDLE`] (as the pool this replaces did: an app that
                // serves one connection at a time must not wait for an idle client).
                loop {
                    tokio::select! {
                        _ = &mut conn => return,
                        () = &mut stop => break,
                        () = tokio::time::sleep(IDLE) => {
                            if Weak::upgrade(&kept).is_none_or(|k| k.idle(id)) {
                                break;
                            }
                        }
                    }
                }
                // Dropping its sender closes it once its response (if any) is done.
                if let Some(k) = Weak::upgrade(&kept) {
                    k.forget(id);
                }
                let _ = conn.await;
            });
        }
    }
    Ok(Lease { tx, id })
}

/// Resolves once `inst` no longer takes requests (never when the router stops first).
async fn stopping(mut routes: watch::Receiver<Arc<RouteTable>>, app: usize, inst: Arc<Instance>) {
    loop {
        if routes.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
        if !routes.borrow_and_update().still_routable(app, &inst) {
            return;
        }
    }
}
