//! Tests of the router over real sockets: small backends in the test's runtime, the router on
//! its own thread, requests from hyper's client or raw TCP. Routing, waiting and headers here;
//! streams, tunnels, counters and pages in `tests_more`.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};

use super::page::ERROR_HEADER;
use super::table::{AppSpec, InstanceStats, RouteEvent, TailFn};
use super::{Config, RouteTable, Router, start};
use crate::output::Output;

/// Generous bound for anything a test waits for.
pub(crate) const PATIENCE: Duration = Duration::from_secs(30);

pub(crate) struct Fixture {
    pub router: Option<Router>,
    pub port: u16,
    pub tx: watch::Sender<Arc<RouteTable>>,
    pub client: Client<HttpConnector, Full<Bytes>>,
}

/// Instance `index` (generation `generation`) of app `app` starting on `port`: `web.N`, no
/// output.
pub(crate) fn starting(app: usize, index: u32, generation: u64, port: u16) -> RouteEvent {
    RouteEvent::Starting {
        app,
        index,
        generation,
        port,
        label: format!("web.{index}"),
        instance_id: format!("id{index}"),
        stats: Arc::default(),
        tail: Arc::new(Vec::new),
    }
}

pub(crate) fn spec(name: &str, timeout: Duration) -> AppSpec {
    AppSpec {
        name: name.into(),
        hosts: vec![format!("{name}.localhost"), format!("{name}.example.com")],
        timeout,
        log_name: format!("{name}:router"),
        fresh_connections: false,
    }
}

pub(crate) fn fixture(apps: Vec<AppSpec>, show_tails: bool, access_log: bool) -> Fixture {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (tx, rx) = watch::channel(Arc::new(RouteTable::new(apps)));
    let cfg = Config {
        listeners: vec![listener],
        show_tails,
        access_log,
    };
    let router = start(cfg, rx, Arc::new(Output::new(false, false, false))).expect("start");
    Fixture {
        router: Some(router),
        port,
        tx,
        client: Client::builder(TokioExecutor::new()).build_http(),
    }
}

impl Fixture {
    pub(crate) fn apply(&self, ev: RouteEvent) {
        self.tx.send_modify(|t| Arc::make_mut(t).apply(ev));
    }

    /// Add a ready instance; its stats.
    pub(crate) fn ready(&self, app: usize, index: u32, port: u16, id: &str) -> Arc<InstanceStats> {
        let tail: TailFn = Arc::new(|| vec!["booted <b>".into(), "crashed <script>".into()]);
        self.ready_with_tail(app, index, port, id, tail)
    }

    pub(crate) fn ready_with_tail(
        &self,
        app: usize,
        index: u32,
        port: u16,
        id: &str,
        tail: TailFn,
    ) -> Arc<InstanceStats> {
        let stats = Arc::new(InstanceStats::default());
        self.apply(RouteEvent::Starting {
            app,
            index,
            generation: 1,
            port,
            label: format!("web.{index}"),
            instance_id: id.into(),
            stats: stats.clone(),
            tail,
        });
        self.apply(RouteEvent::Ready {
            app,
            index,
            generation: 1,
        });
        stats
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    pub(crate) async fn send(&self, req: Request<Full<Bytes>>) -> Response<Incoming> {
        tokio::time::timeout(PATIENCE, self.client.request(req))
            .await
            .expect("in time")
            .expect("response")
    }

    /// A request with `Host: host`; status, headers, whole body.
    pub(crate) async fn call(
        &self,
        method: Method,
        host: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Bytes,
    ) -> (StatusCode, HeaderMap, Bytes) {
        let mut b = Request::builder()
            .method(method)
            .uri(self.url(path))
            .header(header::HOST, host);
        for (k, v) in headers {
            b = b.header(*k, *v);
        }
        let resp = self.send(b.body(Full::new(body)).expect("request")).await;
        let (parts, body) = resp.into_parts();
        let body = tokio::time::timeout(PATIENCE, body.collect())
            .await
            .expect("in time")
            .expect("body")
            .to_bytes();
        (parts.status, parts.headers, body)
    }

    pub(crate) async fn get(&self, host: &str, path: &str) -> (StatusCode, HeaderMap, Bytes) {
        self.call(Method::GET, host, path, &[], Bytes::new()).await
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        // Joining the router's thread blocks; do it off the test's runtime.
        if let Some(r) = self.router.take() {
            std::thread::spawn(move || drop(r));
        }
    }
}

/// An HTTP backend: answers with `x-backend: NAME` and the request body; `/login` also sets a
/// `JSESSIONID` cookie. Its port.
pub(crate) async fn echo(name: &'static str) -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = l.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = l.accept().await {
            tokio::spawn(async move {
                let svc = service_fn(move |req: Request<Incoming>| async move {
                    let login = req.uri().path() == "/login";
                    let body = req.into_body().collect().await?.to_bytes();
                    let mut resp = Response::new(Full::new(body));
                    let h = resp.headers_mut();
                    h.insert("x-backend", HeaderValue::from_static(name));
                    if login {
                        h.insert(
                            header::SET_COOKIE,
                            HeaderValue::from_static("JSESSIONID=s1; Path=/; Secure; HttpOnly"),
                        );
                    }
                    Ok::<_, hyper::Error>(resp)
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    port
}

/// A raw backend: for each connection, sends the request head it read to the channel, then
/// writes `answer` and closes.
pub(crate) async fn raw_backend(answer: &'static str) -> (u16, mpsc::UnboundedReceiver<String>) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = l.local_addr().expect("addr").port();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = l.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let head = read_head(&mut tcp).await;
                let _ = tx.send(head);
                let _ = tcp.write_all(answer.as_bytes()).await;
                let _ = tcp.shutdown().await;
            });
        }
    });
    (port, rx)
}

/// Read up to the end of an HTTP head.
pub(crate) async fn read_head(tcp: &mut TcpStream) -> String {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        match tcp.read(&mut byte).await {
            Ok(1) => buf.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// Send raw bytes to the router and read until it closes.
pub(crate) async fn raw(port: u16, request: &str) -> String {
    let work = async {
        let mut tcp = TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        tcp.write_all(request.as_bytes()).await.expect("write");
        let mut out = Vec::new();
        let _ = tcp.read_to_end(&mut out).await;
        String::from_utf8_lossy(&out).into_owned()
    };
    tokio::time::timeout(PATIENCE, work).await.expect("in time")
}

/// Header `name` (lower case) of a raw head, if there.
pub(crate) fn head_value(head: &str, name: &str) -> Option<String> {
    head.split("\r\n").skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().to_owned())
    })
}

/// Wait until `cond` holds (polling), failing after [`PATIENCE`].
pub(crate) async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "gave up waiting: {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn backend_of(h: &HeaderMap) -> String {
    h.get("x-backend")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned()
}

fn long_timeout() -> Duration {
    Duration::from_secs(600)
}

#[tokio::test]
async fn round_robin_reaches_both_ready_instances() {
    let f = fixture(vec![spec("a", long_timeout())], false, false);
    f.ready(0, 0, echo("A").await, "id-a");
    f.ready(0, 1, echo("B").await, "id-b");
    let mut seen = BTreeSet::new();
    for _ in 0..10 {
        let (status, h, _) = f.get("a.localhost", "/").await;
        assert_eq!(status, 200);
        seen.insert(backend_of(&h));
    }
    assert_eq!(seen, BTreeSet::from(["A".to_owned(), "B".to_owned()]));
}

#[tokio::test]
async fn starting_and_draining_instances_are_skipped() {
    let f = fixture(vec![spec("a", long_timeout())], false, false);
    f.ready(0, 0, echo("A").await, "id-a");
    f.apply(RouteEvent::Starting {
        app: 0,
        index: 1,
        generation: 1,
        port: echo("B").await,
        label: "web.1".into(),
        instance_id: "id-b".into(),
        stats: Arc::default(),
        tail: Arc::new(Vec::new),
    });
    f.ready(0, 2, echo("C").await, "id-c");
    f.apply(RouteEvent::Draining {
        app: 0,
        index: 2,
        generation: 1,
    });
    for _ in 0..8 {
        let (status, h, _) = f.get("a.localhost", "/").await;
        assert_eq!((status, backend_of(&h).as_str()), (StatusCode::OK, "A"));
    }
}

#[tokio::test]
async fn hosts_route_to_their_apps() {
    let f = fixture(
        vec![spec("a", long_timeout()), spec("b", long_timeout())],
        false,
        false,
    );
    f.ready(0, 0, echo("A").await, "id-a");
    f.ready(1, 0, echo("B").await, "id-b");
    let p = f.port;
    for (host, want) in [
        ("a.localhost", "A"),
        ("b.localhost", "B"),
        ("B.LocalHost.", "B"),
        (&format!("b.localhost:{p}") as &str, "B"),
        ("b.example.com", "B"),
        (&format!("127.0.0.1:{p}"), "A"),
        ("localhost", "A"),
        ("[::1]", "A"),
    ] {
        let (status, h, _) = f.get(host, "/").await;
        assert_eq!(
            (status, backend_of(&h)),
            (StatusCode::OK, want.to_owned()),
            "{host}"
        );
    }
    // The absolute-form target wins over Host.
    let r = raw(
        p,
        &format!("GET http://b.localhost:{p}/x HTTP/1.1\r\nHost: a.localhost\r\nConnection: close\r\n\r\n"),
    )
    .await;
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    assert_eq!(head_value(&r, "x-backend").as_deref(), Some("B"));

    let (status, h, body) = f.get("nope.localhost:9", "/").await;
    assert_eq!(status, 404);
    assert_eq!(h[ERROR_HEADER], "unknown_route");
    assert_eq!(h[header::CONTENT_TYPE], "text/html; charset=utf-8");
    let body = String::from_utf8_lossy(&body);
    assert!(
        body.contains("Requested route (&#39;nope.localhost:9&#39;) does not exist."),
        "{body}"
    );

    let r = raw(
        p,
        "CONNECT a.localhost:443 HTTP/1.1\r\nHost: a.localhost:443\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(r.starts_with("HTTP/1.1 405"), "{r}");
}

#[tokio::test]
async fn a_request_waits_for_the_first_ready_instance() {
    let f = fixture(vec![spec("a", long_timeout())], false, false);
    let port = echo("A").await;
    let stats = Arc::new(InstanceStats::default());
    f.apply(RouteEvent::Starting {
        app: 0,
        index: 0,
        generation: 1,
        port,
        label: "web.0".into(),
        instance_id: "id-a".into(),
        stats: stats.clone(),
        tail: Arc::new(Vec::new),
    });
    let body: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let body = Bytes::from(body);
    let idle = f.tx.receiver_count();
    let req = Request::post(f.url("/upload"))
        .header(header::HOST, "a.localhost")
        .body(Full::new(body.clone()))
        .expect("request");
    let pending = tokio::spawn(f.client.request(req));
    // Each request being handled holds a receiver of the table: it has arrived.
    until("the request to arrive", || f.tx.receiver_count() > idle).await;
    assert!(!pending.is_finished());
    assert_eq!(stats.in_flight.load(std::sync::atomic::Ordering::SeqCst), 0);
    f.apply(RouteEvent::Ready {
        app: 0,
        index: 0,
        generation: 1,
    });
    let resp = tokio::time::timeout(PATIENCE, pending)
        .await
        .expect("in time")
        .expect("task")
        .expect("response");
    assert_eq!(resp.status(), 200);
    let got = resp.into_body().collect().await.expect("body").to_bytes();
    assert!(got == body, "the body arrives byte for byte");
}

#[tokio::test]
async fn nothing_ready_gives_503_after_the_timeout_and_at_once_when_down() {
    let f = fixture(
        vec![
            spec("a", Duration::from_millis(200)),
            spec("b", long_timeout()),
        ],
        true,
        false,
    );
    let (status, h, body) = f.get("a.localhost", "/").await;
    assert_eq!(status, 503);
    assert_eq!(h[ERROR_HEADER], "no_instance");
    assert!(String::from_utf8_lossy(&body).contains("No instance of a was ready"));

    // b waits up to 600 s: only `AppDown` answers it in time.
    let port = echo("B").await;
    f.apply(RouteEvent::Starting {
        app: 1,
        index: 0,
        generation: 1,
        port,
        label: "web.0".into(),
        instance_id: "id-b".into(),
        stats: Arc::default(),
        tail: Arc::new(|| vec!["Traceback <oops>".into()]),
    });
    f.apply(RouteEvent::Gone {
        app: 1,
        index: 0,
        generation: 1,
    });
    f.apply(RouteEvent::AppDown {
        app: 1,
        why: "it crashed 3 times in a row".into(),
    });
    let (status, h, body) = f.get("b.localhost", "/").await;
    assert_eq!(status, 503);
    assert_eq!(h[ERROR_HEADER], "no_instance");
    let body = String::from_utf8_lossy(&body);
    assert!(body.contains("it crashed 3 times in a row"), "{body}");
    assert!(
        body.contains("web.0") && body.contains("Traceback &lt;oops&gt;"),
        "{body}"
    );
}

#[tokio::test]
async fn a_refused_connection_goes_to_another_instance_with_its_body() {
    let f = fixture(vec![spec("a", long_timeout())], false, false);
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr").port()
    };
    let dead_stats = f.ready(0, 0, dead, "id-dead");
    f.ready(0, 1, echo("B").await, "id-b");
    for i in 0..6u8 {
        let body = Bytes::from(vec![i; 100_000]);
        let (status, h, got) = f
            .call(Method::POST, "a.localhost", "/", &[], body.clone())
            .await;
        assert_eq!((status, backend_of(&h).as_str()), (StatusCode::OK, "B"));
        assert!(got == body);
    }
    assert_eq!(
        dead_stats
            .in_flight
            .load(std::sync::atomic::Ordering::SeqCst),
        0
    );
}

#[tokio::test]
async fn forwarded_and_hop_by_hop_headers() {
    let f = fixture(vec![spec("a", long_timeout())], false, false);
    let (port, mut heads) = raw_backend(
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: X-Bar\r\nX-Bar: 1\r\n\
         Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nX-Kept: 1\r\n\r\nok",
    )
    .await;
    f.ready(0, 0, port, "id-a");
    let p = f.port;
    let r = raw(
        p,
        &format!(
            "GET /h?q=1 HTTP/1.1\r\nHost: a.localhost:{p}\r\nX-Forwarded-For: 10.1.1.1\r\n\
             Connection: close, X-Foo\r\nX-Foo: secret\r\nKeep-Alive: 300\r\n\
             Proxy-Connection: keep-alive\r\nTE: trailers, deflate\r\nExpect: 100-continue\r\n\
             X-Plain: yes\r\n\r\n"
        ),
    )
    .await;
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    assert!(r.ends_with("\r\n\r\nok"), "{r}");
    for gone in ["x-bar", "keep-alive", "proxy-connection"] {
        assert_eq!(head_value(&r, gone), None, "{gone} in {r}");
    }
    assert_eq!(head_value(&r, "x-kept").as_deref(), Some("1"));

    let head = heads.recv().await.expect("head");
    assert!(head.starts_with("GET /h?q=1 HTTP/1.1\r\n"), "{head}");
    let v = |n| head_value(&head, n);
    assert_eq!(v("host"), Some(format!("a.localhost:{p}")));
    assert_eq!(v("x-forwarded-for").as_deref(), Some("10.1.1.1, 127.0.0.1"));
    assert_eq!(v("x-forwarded-proto").as_deref(), Some("http"));
    assert_eq!(v("x-forwarded-host"), Some(format!("a.localhost:{p}")));
    assert_eq!(v("te").as_deref(), Some("trailers"));
    assert_eq!(v("x-plain").as_deref(), Some("yes"));
    for gone in [
        "x-foo",
        "keep-alive",
        "proxy-connection",
        "expect",
        "via",
        "connection",
    ] {
        assert_eq!(v(gone), None, "{gone} in {head}");
    }
    let start: u128 = v("x-request-start")
        .and_then(|s| s.parse().ok())
        .expect("X-Request-Start is a number");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis();
    assert!(
        start <= now && now - start < 3_600_000,
        "milliseconds since the epoch: {start}"
    );
}

#[tokio::test]
async fn http10_without_host_reaches_the_first_app() {
    let f = fixture(
        vec![spec("a", long_timeout()), spec("b", long_timeout())],
        false,
        false,
    );
    let (port, mut heads) =
        raw_backend("HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nhello").await;
    f.ready(0, 0, port, "id-a");
    let r = raw(f.port, "GET /ten HTTP/1.0\r\n\r\n").await;
    // hyper answers an HTTP/1.0 client in HTTP/1.0.
    assert!(r.starts_with("HTTP/1.0 200"), "{r}");
    assert!(r.ends_with("\r\n\r\nhello"), "{r}");
    let head = heads.recv().await.expect("head");
    assert!(head.starts_with("GET /ten HTTP/1.1\r\n"), "{head}");
    assert_eq!(
        head_value(&head, "host"),
        Some(format!("a.localhost:{}", f.port))
    );
}

#[tokio::test]
async fn affinity_cookie_is_set_and_honoured() {
    let f = fixture(vec![spec("a", long_timeout())], false, true);
    f.ready(0, 0, echo("A").await, "id-a");
    f.ready(0, 1, echo("B").await, "id-b");
    let (status, h, _) = f.get("a.localhost", "/login").await;
    assert_eq!(status, 200);
    let served = backend_of(&h);
    let id = if served == "A" { "id-a" } else { "id-b" };
    let cookies: Vec<&str> = h
        .get_all(header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    let ours = format!("STACKATO_SESSION_AFFINITY={id}; Path=/; HttpOnly; Secure");
    assert!(cookies.contains(&ours.as_str()), "{cookies:?}");

    let cookie = format!("JSESSIONID=s1; STACKATO_SESSION_AFFINITY={id}");
    for _ in 0..10 {
        let (status, h, _) = f
            .call(
                Method::GET,
                "a.localhost",
                "/",
                &[("cookie", &cookie)],
                Bytes::new(),
            )
            .await;
        assert_eq!(status, 200);
        assert_eq!(backend_of(&h), served);
        assert!(
            h.get(header::SET_COOKIE).is_none(),
            "an honoured pin is not set again"
        );
    }
    // A pin to an instance that is gone: any instance, and the pin is set anew.
    let (status, h, _) = f
        .call(
            Method::GET,
            "a.localhost",
            "/",
            &[("cookie", "STACKATO_SESSION_AFFINITY=gone")],
            Bytes::new(),
        )
        .await;
    assert_eq!(status, 200);
    let id = if backend_of(&h) == "A" {
        "id-a"
    } else {
        "id-b"
    };
    assert_eq!(
        h.get(header::SET_COOKIE).and_then(|v| v.to_str().ok()),
        Some(format!("STACKATO_SESSION_AFFINITY={id}; Path=/; HttpOnly").as_str())
    );
}

#[tokio::test]
async fn a_waiting_request_follows_a_whole_new_table() {
    let f = fixture(
        vec![spec("a", long_timeout()), spec("b", long_timeout())],
        false,
        false,
    );
    let idle = f.tx.receiver_count();
    let pending = tokio::spawn({
        let client = f.client.clone();
        let req = Request::get(f.url("/"))
            .header(header::HOST, "b.localhost")
            .body(Full::new(Bytes::new()))
            .expect("request");
        async move { client.request(req).await }
    });
    until("the request to arrive", || f.tx.receiver_count() > idle).await;
    // The manifest was reloaded: b is now the first app, with a ready instance.
    let mut table = RouteTable::new(vec![spec("b", long_timeout()), spec("c", long_timeout())]);
    table.apply(RouteEvent::Starting {
        app: 0,
        index: 0,
        generation: 1,
        port: echo("B").await,
        label: "web.0".into(),
        instance_id: "id-b".into(),
        stats: Arc::default(),
        tail: Arc::new(Vec::new),
    });
    table.apply(RouteEvent::Ready {
        app: 0,
        index: 0,
        generation: 1,
    });
    f.tx.send_replace(Arc::new(table));
    let resp = tokio::time::timeout(PATIENCE, pending)
        .await
        .expect("in time")
        .expect("task")
        .expect("response");
    assert_eq!(
        (resp.status(), backend_of(resp.headers())),
        (StatusCode::OK, "B".to_owned())
    );
    let (status, _, _) = f.get("a.localhost", "/").await;
    assert_eq!(status, 404, "a is gone from the new table");
}
