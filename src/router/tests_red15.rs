//! Router tests from the red team of issue 15: an instance that closes kept-alive connections
//! without saying so (uWSGI's `--http-socket`), IP addresses as the host under
//! `--bind 0.0.0.0`, and requests with two `Host` headers.

use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::header;
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::watch;

use super::page::ERROR_HEADER;
use super::tests::{PATIENCE, echo, fixture, head_value, raw, raw_backend, read_head, spec};
use super::{Config, RouteTable, start};
use crate::output::Output;

/// What uWSGI's `--http-socket` does: an HTTP/1.1 answer with a length and no
/// `Connection: close`, then the connection is closed.
const CLOSES_SILENTLY: &str = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok\n";

/// A backend that answers each connection's first request with [`CLOSES_SILENTLY`] and closes
/// it a moment later, as uWSGI does once it has logged the request: a request the router sends
/// on that connection meanwhile is lost (reset). Its port.
async fn closes_a_moment_later() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = l.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = l.accept().await {
            tokio::spawn(async move {
                let _ = read_head(&mut tcp).await;
                let _ = tcp.write_all(CLOSES_SILENTLY.as_bytes()).await;
                tokio::time::sleep(Duration::from_millis(3)).await;
                drop(tcp);
            });
        }
    });
    port
}

/// Requests from 4 keep-alive clients at once (as a browser or a load generator), `each` per
/// client, to app `a` served by [`closes_a_moment_later`]: GETs, or POSTs with a body, its
/// instances on fresh connections from the start when `fresh`. The failures, as
/// "status: page".
async fn through_closing_connections(fresh: bool, post: bool, each: usize) -> Vec<String> {
    let mut s = spec("a", PATIENCE);
    s.fresh_connections = fresh;
    let f = Arc::new(fixture(vec![s], false, false));
    let port = closes_a_moment_later().await;
    f.ready(0, 0, port, "id-a");
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let f = f.clone();
        tasks.push(tokio::spawn(async move {
            let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
            let mut failed = Vec::new();
            for i in 0..each {
                let (method, body) = if post {
                    (Method::POST, Bytes::from(format!("n={i}")))
                } else {
                    (Method::GET, Bytes::new())
                };
                let req = Request::builder()
                    .method(method)
                    .uri(f.url("/form"))
                    .header(header::HOST, "a.localhost")
                    .body(Full::new(body))
                    .expect("request");
                let resp = tokio::time::timeout(PATIENCE, client.request(req))
                    .await
                    .expect("in time")
                    .expect("response");
                let status = resp.status();
                let body = resp.into_body().collect().await.expect("body").to_bytes();
                if status != StatusCode::OK {
                    failed.push(format!("{status}: {}", String::from_utf8_lossy(&body)));
                }
            }
            failed
        }));
    }
    let mut failed = Vec::new();
    for t in tasks {
        failed.extend(t.await.expect("task"));
    }
    failed
}

#[tokio::test]
async fn an_instance_closing_kept_alive_connections_fails_no_request() {
    // Not known beforehand: the router learns it at the first race (the GET is sent again).
    let failed = through_closing_connections(false, false, 400).await;
    assert!(
        failed.is_empty(),
        "{} of 1600 requests failed, the first: {}",
        failed.len(),
        failed[0]
    );
}

#[tokio::test]
async fn under_an_unspecified_bind_an_ip_address_reaches_the_first_app() {
    let listener = std::net::TcpListener::bind("0.0.0.0:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let (tx, rx) = watch::channel(Arc::new(RouteTable::new(vec![
        spec("a", PATIENCE),
        spec("b", PATIENCE),
    ])));
    let cfg = Config {
        listeners: vec![listener],
        show_tails: false,
        access_log: false,
    };
    let router = start(cfg, rx, Arc::new(Output::new(false, false, false))).expect("start");
    let up = echo("A").await;
    tx.send_modify(|t| {
        let t = Arc::make_mut(t);
        t.apply(super::table::RouteEvent::Starting {
            app: 0,
            index: 0,
            generation: 1,
            port: up,
            label: "web.0".into(),
            instance_id: "id-a".into(),
            stats: Arc::default(),
            tail: Arc::new(Vec::new),
        });
        t.apply(super::table::RouteEvent::Ready {
            app: 0,
            index: 0,
            generation: 1,
        });
    });
    // What a phone on the LAN sends for http://192.168.1.5:PORT/.
    for host in [format!("192.0.2.7:{port}"), "[2001:db8::1]".to_string()] {
        let r = raw(
            port,
            &format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
        )
        .await;
        assert!(r.starts_with("HTTP/1.1 200"), "{host}: {r}");
        assert_eq!(head_value(&r, "x-backend").as_deref(), Some("A"), "{host}");
    }
    // Names still need a route (DNS rebinding).
    let r = raw(
        port,
        "GET / HTTP/1.1\r\nHost: rebound.example.com\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(r.starts_with("HTTP/1.1 404"), "{r}");
    std::thread::spawn(move || drop(router));
}

#[tokio::test]
async fn on_loopback_an_ip_address_that_is_not_ours_is_unknown() {
    let f = fixture(vec![spec("a", PATIENCE)], false, false);
    f.ready(0, 0, echo("A").await, "id-a");
    let (status, h, _) = f.get("192.0.2.7", "/").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(h[ERROR_HEADER], "unknown_route");
}

#[tokio::test]
async fn two_host_headers_are_refused() {
    let f = fixture(vec![spec("a", PATIENCE), spec("b", PATIENCE)], false, false);
    let (port, mut heads) = raw_backend(CLOSES_SILENTLY).await;
    f.ready(0, 0, port, "id-a");
    f.ready(1, 0, echo("B").await, "id-b");
    let r = raw(
        f.port,
        "GET / HTTP/1.1\r\nHost: a.localhost\r\nHost: b.localhost\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(r.starts_with("HTTP/1.1 400"), "{r}");
    assert!(r.contains("more than one Host header"), "{r}");
    assert!(heads.try_recv().is_err(), "no instance saw it");
    // One Host is fine.
    let (status, _, body) = f.get("a.localhost", "/").await;
    assert_eq!((status, &body[..]), (StatusCode::OK, &b"ok\n"[..]));
}

#[test]
fn a_new_instance_of_an_app_that_closes_connections_starts_without_reuse() {
    use super::table::RouteEvent;
    use super::tests::starting;
    let mut t = RouteTable::new(vec![spec("a", PATIENCE), spec("b", PATIENCE)]);
    t.apply(starting(0, 0, 1, 1001));
    let first = t.apps[0].endpoints[0].inst.clone();
    assert!(!first.no_reuse(), "reuse until it fails");
    first.mark_no_reuse();
    t.apply(starting(0, 0, 2, 1002));
    t.apply(RouteEvent::Gone {
        app: 0,
        index: 0,
        generation: 1,
    });
    t.apply(starting(0, 1, 1, 1003));
    t.apply(starting(1, 0, 1, 1005));
    t.apply(RouteEvent::Gone {
        app: 0,
        index: 0,
        generation: 2,
    });
    t.apply(starting(0, 0, 3, 1004));
    let ends = |t: &RouteTable, app: usize| -> Vec<(u16, bool)> {
        t.apps[app]
            .endpoints
            .iter()
            .map(|e| (e.inst.port, e.inst.no_reuse()))
            .collect()
    };
    // The restarts of instance 0 (generation 3 after the marked one left) and instance 1.
    assert_eq!(ends(&t, 0), [(1003, true), (1004, true)]);
    assert_eq!(ends(&t, 1), [(1005, false)], "another app, another program");
}

#[tokio::test]
async fn a_request_cut_by_a_restart_does_not_stop_connection_reuse() {
    use super::table::RouteEvent;
    let f = Arc::new(fixture(vec![spec("a", PATIENCE)], false, false));
    // The old instance: takes the request, then closes when told to (its process stopped).
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let old = l.local_addr().expect("addr").port();
    let (got_tx, mut got) = tokio::sync::mpsc::unbounded_channel::<()>();
    let (cut_tx, cut) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        if let Ok((mut tcp, _)) = l.accept().await {
            let _ = read_head(&mut tcp).await;
            let _ = got_tx.send(());
            let _ = cut.await;
            drop(tcp);
        }
    });
    f.ready(0, 0, old, "id-a");
    let g = f.clone();
    let long_poll = tokio::spawn(async move { g.get("a.localhost", "/poll").await });
    tokio::time::timeout(PATIENCE, got.recv())
        .await
        .expect("in time")
        .expect("the old instance got the request");
    // An overlap restart: the new generation is ready, the old one drains and is stopped.
    let new = echo("NEW").await;
    f.apply(RouteEvent::Starting {
        app: 0,
        index: 0,
        generation: 2,
        port: new,
        label: "web.0".into(),
        instance_id: "id-a".into(),
        stats: Arc::default(),
        tail: Arc::new(Vec::new),
    });
    f.apply(RouteEvent::Ready {
        app: 0,
        index: 0,
        generation: 2,
    });
    let _ = cut_tx.send(());
    let (status, h, _) = tokio::time::timeout(PATIENCE, long_poll)
        .await
        .expect("in time")
        .expect("task");
    assert_eq!(status, StatusCode::OK, "the GET went to the new instance");
    assert_eq!(h["x-backend"], "NEW");
    let t = f.tx.borrow().clone();
    let marks: Vec<(u64, bool)> = t.apps[0]
        .endpoints
        .iter()
        .map(|e| (e.inst.generation, e.inst.no_reuse()))
        .collect();
    assert_eq!(marks, [(1, false), (2, false)]);
}

#[tokio::test]
async fn no_post_to_uwsgi_http_socket_is_lost_to_a_closed_kept_connection() {
    // POSTs are never sent twice: the race must not happen at all (without `fresh`, one POST
    // per client fails at the first race).
    let failed = through_closing_connections(true, true, 200).await;
    assert!(
        failed.is_empty(),
        "{} of 800 POSTs failed, the first: {}",
        failed.len(),
        failed[0]
    );
}
