//! The local router (issue 15): one port per project, requests routed by host name to an app's
//! ready instances, held while none is ready, streamed both ways, upgrades tunnelled. It runs on
//! its own thread with its own runtime; the supervisor steers it through a watch of a
//! [`RouteTable`].
//!
//! The supervisor's side: `let (tx, rx) = watch::channel(Arc::new(RouteTable::new(apps)))`,
//! `router::start(cfg, rx, out)`, then per instance event
//! `tx.send_modify(|t| Arc::make_mut(t).apply(ev))`. To stop an instance without failing a
//! request: publish `Draining` (or the new generation's `Ready`), then wait until its
//! `stats.in_flight` is 0 (a request counts itself before it checks the newest table, so 0
//! seen after the publish is final), then SIGTERM, then `Gone`.

mod body;
mod headers;
mod log;
mod page;
mod proxy;
pub(crate) mod table;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_more;
#[cfg(test)]
mod tests_red15;
mod upstream;

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use hyper::header::HeaderValue;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

pub(crate) use table::RouteTable;

use proxy::{Conn, Ctx};

/// How long a dropped [`Router`] lets requests in flight finish.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// How the router serves.
pub(crate) struct Config {
    /// Already bound (127.0.0.1:PORT, maybe [::1]:PORT).
    pub listeners: Vec<std::net::TcpListener>,
    /// Error pages may show the instance's last lines (false when `--bind` is not loopback).
    pub show_tails: bool,
    /// Print an access-log line per request (false with `--quiet-router`).
    pub access_log: bool,
}

/// The running router. Dropping it stops it: no more connections are accepted, requests in
/// flight get at most [`SHUTDOWN_GRACE`] to finish, and the router's thread is joined.
pub(crate) struct Router {
    stop: Option<watch::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Router {
    fn drop(&mut self) {
        // Dropping the sender wakes every `changed()` with an error: the stop signal.
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Start the router on its own OS thread ("router") with a single-threaded runtime. It serves
/// until the handle is dropped; `routes` may change at any time (a whole new table when the run
/// reloads its manifest). Access-log lines go through a channel to one printer task, which runs
/// on a thread of its own ("router-log").
pub(crate) fn start(
    cfg: Config,
    routes: watch::Receiver<Arc<RouteTable>>,
    out: Arc<crate::output::Output>,
) -> std::io::Result<Router> {
    let mut default_hosts = Vec::new();
    let mut any_ip = false;
    for l in &cfg.listeners {
        l.set_nonblocking(true)?;
        let ip = l.local_addr()?.ip();
        any_ip |= ip.is_unspecified();
        if !ip.is_unspecified() {
            default_hosts.push(match ip {
                IpAddr::V4(v4) => v4.to_string(),
                IpAddr::V6(v6) => format!("[{v6}]"),
            });
        }
    }
    let (log, printer) = if cfg.access_log {
        let (tx, printer) = log::channel(out, routes.clone());
        (Some(tx), Some(printer))
    } else {
        (None, None)
    };
    let ctx = Arc::new(Ctx {
        routes,
        show_tails: cfg.show_tails,
        log,
        default_hosts,
        any_ip,
    });
    let (stop_tx, stop_rx) = watch::channel(());
    // The runtime is built, used and dropped on the router's thread only: dropping a runtime
    // inside another one's task (the supervisor's) panics.
    let (ready_tx, ready_rx) = std::sync::mpsc::sync_channel(1);
    let std_listeners = cfg.listeners;
    let thread = std::thread::Builder::new()
        .name("router".into())
        .spawn(move || {
            // One thread: a request's tasks (client connection, instance connection) wake each
            // other without crossing threads, which cost a third of the router's CPU time with
            // two workers; the router needs less than a core at the load a laptop sees.
            let setup = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .and_then(|rt| {
                    let listeners = {
                        let _guard = rt.enter();
                        std_listeners
                            .into_iter()
                            .map(TcpListener::from_std)
                            .collect::<std::io::Result<Vec<_>>>()?
                    };
                    Ok((rt, listeners))
                });
            let (rt, listeners) = match setup {
                Ok(ok) => {
                    let _ = ready_tx.send(Ok(()));
                    ok
                }
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            // The printer writes to the terminal, which may block: its own thread and runtime.
            let printed = printer.and_then(|p| {
                let (done_tx, done_rx) = std::sync::mpsc::sync_channel::<()>(1);
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_time()
                    .build()
                    .ok()?;
                std::thread::Builder::new()
                    .name("router-log".into())
                    .spawn(move || {
                        rt.block_on(p);
                        let _ = done_tx.send(());
                    })
                    .ok()?;
                Some(done_rx)
            });
            rt.block_on(serve(listeners, ctx, stop_rx));
            rt.shutdown_timeout(Duration::from_millis(100));
            // The printer ends once every request's log sender is gone.
            if let Some(done) = printed {
                let _ = done.recv_timeout(Duration::from_millis(200));
            }
        })?;
    match ready_rx.recv() {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            let _ = thread.join();
            return Err(e);
        }
        Err(_) => {
            let _ = thread.join();
            return Err(std::io::Error::other("the router's thread ended at start"));
        }
    }
    Ok(Router {
        stop: Some(stop_tx),
        thread: Some(thread),
    })
}

/// Accept on every listener until stopped, then give open connections the grace period.
async fn serve(listeners: Vec<TcpListener>, ctx: Arc<Ctx>, mut stop: watch::Receiver<()>) {
    // Every connection task holds a clone; `recv` returns `None` once all have ended.
    let (alive_tx, mut alive_rx) = mpsc::channel::<()>(1);
    let mut accepts = tokio::task::JoinSet::new();
    for l in listeners {
        accepts.spawn(accept_loop(l, ctx.clone(), stop.clone(), alive_tx.clone()));
    }
    drop(alive_tx);
    drop(ctx);
    while stop.changed().await.is_ok() {}
    // The listeners close as their loops end.
    while accepts.join_next().await.is_some() {}
    let _ = tokio::time::timeout(SHUTDOWN_GRACE, alive_rx.recv()).await;
}

async fn accept_loop(
    listener: TcpListener,
    ctx: Arc<Ctx>,
    mut stop: watch::Receiver<()>,
    alive: mpsc::Sender<()>,
) {
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = stop.changed() => return,
        };
        match accepted {
            Ok((tcp, peer)) => {
                tokio::spawn(connection(
                    tcp,
                    peer,
                    ctx.clone(),
                    stop.clone(),
                    alive.clone(),
                ));
            }
            // Out of file descriptors and the like: let some connections end.
            Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
}

async fn connection(
    tcp: TcpStream,
    peer: SocketAddr,
    ctx: Arc<Ctx>,
    mut stop: watch::Receiver<()>,
    _alive: mpsc::Sender<()>,
) {
    let _ = tcp.set_nodelay(true);
    let local_port = tcp.local_addr().map(|a| a.port()).unwrap_or(0);
    let peer_ip = match peer.ip() {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        ip => ip,
    };
    let conn = Arc::new(Conn {
        peer: HeaderValue::from_str(&peer_ip.to_string())
            .unwrap_or_else(|_| HeaderValue::from_static("127.0.0.1")),
        local_port,
        kept: Arc::default(),
    });
    let svc = service_fn(move |req| {
        let ctx = ctx.clone();
        let conn = conn.clone();
        async move { Ok::<_, Infallible>(proxy::handle(&ctx, &conn, req).await) }
    });
    let served = http1::Builder::new()
        .timer(TokioTimer::new())
        .serve_connection(TokioIo::new(tcp), svc)
        .with_upgrades();
    tokio::pin!(served);
    tokio::select! {
        _ = served.as_mut() => {}
        _ = stop.changed() => {
            served.as_mut().graceful_shutdown();
            let _ = served.await;
        }
    }
}
