//! One request through the router: find the app by host, pick an instance (waiting for one
//! while none is ready, within the app's `timeout:`), forward with the rewritten head and the
//! streamed body, retry where nothing was sent, and turn upgrades into tunnels.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use hyper::body::{Body as _, Incoming};
use hyper::client::conn::TrySendError;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode, Uri, Version};
use hyper_util::rt::TokioIo;
use tokio::sync::watch;

use super::body::{Flight, Reclaim, RespBody, Slot};
use super::headers;
use super::log::{LogTx, Pending};
use super::page::{Why, page};
use super::table::{Instance, InstanceStats, RouteTable};
use super::upstream::{self, Kept, Mode, Watch};

/// What every request of the router shares.
pub(crate) struct Ctx {
    pub routes: watch::Receiver<Arc<RouteTable>>,
    pub show_tails: bool,
    pub log: Option<LogTx>,
    /// Hosts that mean the first app besides the loopback names (the listeners' addresses).
    pub default_hosts: Vec<String>,
    /// A listener is on an unspecified address (`--bind 0.0.0.0`): any IP address as the host
    /// (`http://192.168.1.5:PORT/` from another machine) means the first app too. An address
    /// cannot be rebound by DNS, so this answers no host name the 404 protects.
    pub any_ip: bool,
}

impl Ctx {
    /// The app a normalised host routes to.
    fn app_for(&self, table: &RouteTable, host: Option<&str>) -> Option<usize> {
        table.lookup(host, &self.default_hosts).or_else(|| {
            (self.any_ip && host.is_some_and(headers::is_ip_literal) && !table.apps.is_empty())
                .then_some(0)
        })
    }
}

/// What the requests of one client connection share.
pub(crate) struct Conn {
    /// The peer's IP, as `X-Forwarded-For` appends it.
    pub peer: HeaderValue,
    /// The port the client connected to (for the `Host` of a request without one).
    pub local_port: u16,
    /// The connection to the instance it used last.
    pub kept: Arc<Kept>,
}

/// What the access log needs of a request.
struct Req<'a> {
    ctx: &'a Ctx,
    start: Instant,
    method: Method,
    path: String,
}

impl Req<'_> {
    fn pending(
        &self,
        table: &RouteTable,
        app: usize,
        status: u16,
        label: Option<Arc<str>>,
    ) -> Option<Pending> {
        let tx = self.ctx.log.clone()?;
        let a = table.apps.get(app)?;
        Some(Pending {
            tx,
            app,
            log_name: a.log_name.clone(),
            method: self.method.clone(),
            path: self.path.clone(),
            status,
            start: self.start,
            label,
        })
    }

    /// A page of the router's own, logged now.
    fn page(
        &self,
        table: &RouteTable,
        app: Option<usize>,
        status: StatusCode,
        failure: Why,
        inst: Option<&Instance>,
        what: &str,
    ) -> Response<RespBody> {
        let name = app
            .and_then(|a| table.apps.get(a))
            .map(|a| a.spec.name.as_str());
        if let Some(p) = self.pending(
            table,
            app.unwrap_or(0),
            status.as_u16(),
            inst.map(|i| i.label.clone()),
        ) {
            p.send();
        }
        page(status, failure, name, inst, what, self.ctx.show_tails)
    }
}

/// Answer one request.
pub(crate) async fn handle(
    ctx: &Ctx,
    conn: &Conn,
    mut req: Request<Incoming>,
) -> Response<RespBody> {
    let r = Req {
        ctx,
        start: Instant::now(),
        method: req.method().clone(),
        path: if ctx.log.is_some() {
            req.uri().path().to_owned()
        } else {
            String::new()
        },
    };
    let mut routes = ctx.routes.clone();
    let mut table = routes.borrow_and_update().clone();
    if req.method() == Method::CONNECT {
        return r.page(
            &table,
            None,
            StatusCode::METHOD_NOT_ALLOWED,
            Why::Method,
            None,
            "The router does not tunnel CONNECT requests.",
        );
    }
    if req.headers().get_all(header::HOST).iter().nth(1).is_some() {
        // RFC 9112 §3.2: the router routed by one, the app might read the other.
        return r.page(
            &table,
            None,
            StatusCode::BAD_REQUEST,
            Why::BadRequest,
            None,
            "The request has more than one Host header.",
        );
    }
    let raw = headers::raw_host(req.uri(), req.headers());
    let raw_text = raw.as_ref().map(|v| String::from_utf8_lossy(v.as_bytes()));
    let host = raw_text.as_deref().map(headers::normalize_host);
    let Some(mut app) = ctx.app_for(&table, host.as_deref()) else {
        return unknown_route(&r, &table, raw_text.as_deref());
    };
    let deadline = tokio::time::Instant::from_std(r.start) + table.apps[app].spec.timeout;
    let upgrade = headers::wants_upgrade(req.headers());
    let mut down = upgrade.then(|| hyper::upgrade::on(&mut req));
    let pin = headers::affinity_cookie(req.headers());
    let (mut parts, body) = req.into_parts();

    // The head the instance gets.
    if let Some(a) = parts.uri.authority()
        && let Ok(v) = HeaderValue::from_str(a.as_str())
    {
        parts.headers.insert(header::HOST, v);
    } else if !parts.headers.contains_key(header::HOST) {
        let h = match table.apps[app].spec.hosts.first() {
            Some(h) => format!("{h}:{}", conn.local_port),
            None => format!("127.0.0.1:{}", conn.local_port),
        };
        if let Ok(v) = HeaderValue::from_str(&h) {
            parts.headers.insert(header::HOST, v);
        }
    }
    headers::strip_hop_by_hop(&mut parts.headers, upgrade, true);
    parts.headers.remove(header::EXPECT);
    headers::add_forwarded(&mut parts.headers, &conn.peer, raw.as_ref());
    // Origin form (`/path?query`) as the instance gets it; `*` and the like become `/`.
    let target = match parts.uri.path_and_query() {
        Some(pq) if parts.uri.authority().is_none() && pq.as_str().starts_with('/') => {
            parts.uri.clone()
        }
        Some(pq) if pq.as_str().starts_with('/') => Uri::from(pq.clone()),
        _ => Uri::from_static("/"),
    };

    let empty = body.is_end_stream();
    let slot: Option<Slot> = (!empty).then(|| Arc::new(Mutex::new(Some(body))));
    let idempotent = matches!(
        parts.method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE | Method::PUT | Method::DELETE
    );
    let mut retried = false;

    let (inst, flight, mut resp) = loop {
        let Some(pick) = table.pick(app, pin.as_deref()) else {
            let spec = &table.apps[app].spec;
            let what = if let Some(why) = &table.apps[app].down {
                format!("{} is not running: {why}", spec.name)
            } else if let Ok(Ok(())) = tokio::time::timeout_at(deadline, routes.changed()).await {
                table = routes.borrow_and_update().clone();
                match ctx.app_for(&table, host.as_deref()) {
                    Some(a) => app = a,
                    None => return unknown_route(&r, &table, raw_text.as_deref()),
                }
                continue;
            } else {
                format!(
                    "No instance of {} was ready to take the request within {:.1} s (its timeout).",
                    spec.name,
                    spec.timeout.as_secs_f64()
                )
            };
            // Nothing to send it to: the page, with the newest instance's output.
            let inst = table.latest(app);
            return r.page(
                &table,
                Some(app),
                StatusCode::SERVICE_UNAVAILABLE,
                Why::NoInstance,
                inst.as_deref(),
                &what,
            );
        };
        let inst = pick.inst;
        let flight = Flight::new(inst.stats.clone());
        // The supervisor drains an instance by waiting for `in_flight == 0` after it published
        // the instance as draining: counted first, checked against the newest table second,
        // this request either shows in the count or sees the drain.
        let newest = routes.borrow().clone();
        if !Arc::ptr_eq(&newest, &table) && !newest.still_routable(app, &inst) {
            drop(flight);
            table = routes.borrow_and_update().clone();
            match ctx.app_for(&table, host.as_deref()) {
                Some(a) => app = a,
                None => return unknown_route(&r, &table, raw_text.as_deref()),
            }
            continue;
        }
        let mode = if upgrade {
            Mode::Upgrade
        } else if inst.no_reuse() {
            Mode::Fresh
        } else {
            Mode::Kept
        };
        let w = Watch {
            kept: &conn.kept,
            routes: &routes,
            app,
        };
        let Ok(mut lease) = upstream::lease(&inst, mode, &w).await else {
            // Refused (or no answer to the connect): skip it until the table changes.
            inst.mark_suspect(table.version);
            continue;
        };
        let body = match &slot {
            None => Reclaim::new(None, None),
            Some(s) => match s.lock().ok().and_then(|mut b| b.take()) {
                Some(b) => Reclaim::new(Some(b), Some(s.clone())),
                None => {
                    let what = "The request body was lost on a failed attempt.";
                    return r.page(
                        &table,
                        Some(app),
                        StatusCode::BAD_GATEWAY,
                        Why::EndpointFailure,
                        Some(&inst),
                        what,
                    );
                }
            },
        };
        // Only a request that may be sent again after a failure needs its head kept.
        let again = empty && idempotent && !retried;
        let mut up = Request::new(body);
        *up.method_mut() = parts.method.clone();
        *up.version_mut() = Version::HTTP_11;
        *up.uri_mut() = target.clone();
        *up.headers_mut() = if again {
            parts.headers.clone()
        } else {
            std::mem::take(&mut parts.headers)
        };
        let mut sent = lease.tx.try_send_request(up).await;
        if let Err(e) = &mut sent
            && let Some(mut unsent) = e.take_message()
        {
            // The kept connection closed before the request went out: a new one.
            match upstream::connect(&inst, mode, &w).await {
                Ok(l) => {
                    lease = l;
                    sent = lease.tx.try_send_request(unsent).await;
                }
                Err(_) => {
                    parts.headers = std::mem::take(unsent.headers_mut());
                    drop(unsent); // its body goes back to the slot
                    inst.mark_suspect(table.version);
                    continue;
                }
            }
        }
        match sent.map_err(TrySendError::into_error) {
            Ok(resp) => {
                if mode == Mode::Kept {
                    conn.kept.put(lease, &inst);
                }
                break (inst, flight, resp);
            }
            Err(e) if keepalive_race(&e) && again => {
                // The retry and every later request of this instance use a fresh connection.
                no_reuse_unless_stopping(&routes, app, &inst);
                retried = true;
            }
            Err(e) => {
                if keepalive_race(&e) {
                    no_reuse_unless_stopping(&routes, app, &inst);
                }
                let what = format!(
                    "Instance {} of {} failed while answering: {}.",
                    inst.label,
                    table.apps[app].spec.name,
                    cause(&e)
                );
                return r.page(
                    &table,
                    Some(app),
                    StatusCode::BAD_GATEWAY,
                    Why::EndpointFailure,
                    Some(&inst),
                    &what,
                );
            }
        }
    };

    let status = resp.status();
    if status == StatusCode::SWITCHING_PROTOCOLS {
        let Some(down) = down.take() else {
            let what = format!("Instance {} switched protocols unasked.", inst.label);
            return r.page(
                &table,
                Some(app),
                StatusCode::BAD_GATEWAY,
                Why::EndpointFailure,
                Some(&inst),
                &what,
            );
        };
        let up = hyper::upgrade::on(&mut resp);
        let tunnel = Tunnel::new(inst.stats.clone());
        tokio::spawn(async move {
            let _tunnel = tunnel;
            if let (Ok(a), Ok(b)) = tokio::join!(down, up) {
                let _ =
                    tokio::io::copy_bidirectional(&mut TokioIo::new(a), &mut TokioIo::new(b)).await;
            }
        });
        drop(flight);
        if let Some(p) = r.pending(&table, app, status.as_u16(), Some(inst.label.clone())) {
            p.send();
        }
        let (mut rp, _) = resp.into_parts();
        rp.version = Version::HTTP_11;
        return Response::from_parts(rp, RespBody::Full(None));
    }
    let (mut rp, body) = resp.into_parts();
    headers::strip_hop_by_hop(&mut rp.headers, false, false);
    rp.version = Version::HTTP_11;
    if let Some(v) = headers::affinity_set_cookie(&rp.headers, &inst.instance_id, pin.as_deref()) {
        rp.headers.append(header::SET_COOKIE, v);
    }
    let log = r.pending(&table, app, status.as_u16(), Some(inst.label.clone()));
    Response::from_parts(rp, RespBody::upstream(body, flight, log))
}

fn unknown_route(r: &Req<'_>, table: &RouteTable, raw: Option<&str>) -> Response<RespBody> {
    let mut host: String = raw.unwrap_or("").chars().take(200).collect();
    if host.len() < raw.map_or(0, str::len) {
        host.push('…');
    }
    let what = format!("Requested route ('{host}') does not exist.");
    r.page(
        table,
        None,
        StatusCode::NOT_FOUND,
        Why::UnknownRoute,
        None,
        &what,
    )
}

/// An open tunnel in an instance's `tunnels`, from creation to drop.
struct Tunnel(Arc<InstanceStats>);

impl Tunnel {
    fn new(stats: Arc<InstanceStats>) -> Tunnel {
        stats.tunnels.fetch_add(1, Ordering::SeqCst);
        Tunnel(stats)
    }
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        self.0.tunnels.fetch_sub(1, Ordering::SeqCst);
    }
}

/// After a connection to `inst` was closed under a request: no more reuse of its connections,
/// unless it is being stopped (draining or gone: its process closes everything, a long poll
/// cut by a restart says nothing about how the program keeps connections).
fn no_reuse_unless_stopping(
    routes: &watch::Receiver<Arc<RouteTable>>,
    app: usize,
    inst: &Arc<Instance>,
) {
    if routes.borrow().still_routable(app, inst) {
        inst.mark_no_reuse();
    }
}

/// Whether a failure before any response byte looks like a kept-alive connection the app had just
/// closed (ROUTER-DESIGN §5.2): worth one more try for an idempotent request without a body.
fn keepalive_race(e: &hyper::Error) -> bool {
    if e.is_incomplete_message() || e.is_canceled() {
        return true;
    }
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        if let Some(io) = s.downcast_ref::<std::io::Error>()
            && matches!(
                io.kind(),
                std::io::ErrorKind::ConnectionReset
                    | std::io::ErrorKind::ConnectionAborted
                    | std::io::ErrorKind::BrokenPipe
            )
        {
            return true;
        }
        src = s.source();
    }
    false
}

/// The innermost cause of a client error, for the 502 page.
fn cause(e: &hyper::Error) -> String {
    let mut last = e.to_string();
    let mut src = std::error::Error::source(e);
    while let Some(s) = src {
        last = s.to_string();
        src = s.source();
    }
    last
}
