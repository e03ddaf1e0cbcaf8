//! Router tests over real sockets, continued: streamed bodies and trailers, upgrade tunnels, the
//! `in_flight` count, error pages, and stopping.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Duration;

use http_body::{Body, Frame};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

use super::page::ERROR_HEADER;
use super::tests::{PATIENCE, echo, fixture, raw_backend, read_head, spec, until};

/// A response body fed by a channel.
struct ChanBody(mpsc::Receiver<Frame<Bytes>>);

impl Body for ChanBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.0.poll_recv(cx).map(|f| f.map(Ok))
    }
}

/// A backend whose every response streams what the test sends into the channel it receives
/// (declaring an `x-sum` trailer).
async fn streaming_backend() -> (u16, mpsc::UnboundedReceiver<mpsc::Sender<Frame<Bytes>>>) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = l.local_addr().expect("addr").port();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = l.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let svc = service_fn(move |_req: Request<Incoming>| {
                    let (ftx, frx) = mpsc::channel(4);
                    let _ = tx.send(ftx);
                    async move {
                        let mut resp = Response::new(ChanBody(frx));
                        resp.headers_mut()
                            .insert(header::TRAILER, HeaderValue::from_static("x-sum"));
                        Ok::<_, hyper::Error>(resp)
                    }
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(tcp), svc)
                    .await;
            });
        }
    });
    (port, rx)
}

/// Read frames until `want` data bytes arrived.
async fn read_data(body: &mut Incoming, want: usize) -> Vec<u8> {
    let mut got = Vec::new();
    while got.len() < want {
        let frame = tokio::time::timeout(PATIENCE, body.frame())
            .await
            .expect("in time")
            .expect("a frame")
            .expect("no error");
        if let Ok(d) = frame.into_data() {
            got.extend_from_slice(&d);
        }
    }
    got
}

#[tokio::test]
async fn chunks_stream_through_and_trailers_pass() {
    let f = fixture(vec![spec("a", Duration::from_secs(600))], false, false);
    let (port, mut senders) = streaming_backend().await;
    let stats = f.ready(0, 0, port, "id-a");
    let req = Request::get(f.url("/sse"))
        .header(header::HOST, "a.localhost")
        .header(header::TE, "trailers")
        .body(Full::new(Bytes::new()))
        .expect("request");
    let pending = tokio::spawn({
        let client = f.client.clone();
        async move { client.request(req).await }
    });
    let tx = senders
        .recv()
        .await
        .expect("the request reached the backend");
    tx.send(Frame::data(Bytes::from_static(b"first;")))
        .await
        .expect("send");
    let resp = tokio::time::timeout(PATIENCE, pending)
        .await
        .expect("in time")
        .expect("task")
        .expect("response");
    assert_eq!(resp.status(), 200);
    let mut body = resp.into_body();
    // The second chunk is only sent once the client has the first: a buffering router hangs.
    assert_eq!(read_data(&mut body, 6).await, b"first;");
    assert_eq!(stats.in_flight.load(Ordering::SeqCst), 1);
    tx.send(Frame::data(Bytes::from_static(b"second")))
        .await
        .expect("send");
    assert_eq!(read_data(&mut body, 6).await, b"second");
    let mut trailers = HeaderMap::new();
    trailers.insert("x-sum", HeaderValue::from_static("12"));
    tx.send(Frame::trailers(trailers)).await.expect("send");
    drop(tx);
    let mut got_trailers = None;
    while let Some(frame) = tokio::time::timeout(PATIENCE, body.frame())
        .await
        .expect("in time")
    {
        if let Ok(t) = frame.expect("no error").into_trailers() {
            got_trailers = Some(t);
        }
    }
    assert_eq!(
        got_trailers.map(|t| t.get("x-sum").cloned()),
        Some(Some(HeaderValue::from_static("12")))
    );
    until("in_flight back to 0", || {
        stats.in_flight.load(Ordering::SeqCst) == 0
    })
    .await;
}

#[tokio::test]
async fn an_upgrade_becomes_a_tunnel() {
    let f = fixture(vec![spec("a", Duration::from_secs(600))], false, true);
    // A backend that switches protocols and then echoes every byte.
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = l.local_addr().expect("addr").port();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = l.accept().await {
            tokio::spawn(async move {
                let head = read_head(&mut tcp).await;
                if !head.to_ascii_lowercase().contains("upgrade: echo") {
                    return;
                }
                let _ = tcp
                    .write_all(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: echo\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: xyz\r\n\r\n")
                    .await;
                let (mut r, mut w) = tcp.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });
    let stats = f.ready(0, 0, port, "id-a");
    let work = async {
        let mut tcp = TcpStream::connect(("127.0.0.1", f.port))
            .await
            .expect("connect");
        tcp.write_all(b"GET /ws HTTP/1.1\r\nHost: a.localhost\r\nUpgrade: echo\r\nConnection: Upgrade\r\nSec-WebSocket-Key: abc\r\n\r\n")
            .await
            .expect("write");
        let head = read_head(&mut tcp).await;
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        let lower = head.to_ascii_lowercase();
        assert!(
            lower.contains("upgrade: echo") && lower.contains("sec-websocket-accept: xyz"),
            "{head}"
        );
        until("the tunnel to count", || {
            stats.tunnels.load(Ordering::SeqCst) == 1
        })
        .await;
        assert_eq!(stats.in_flight.load(Ordering::SeqCst), 0);
        for msg in [&b"hello"[..], b"\x00\xffbinary", b"bye"] {
            tcp.write_all(msg).await.expect("write");
            let mut back = vec![0u8; msg.len()];
            tcp.read_exact(&mut back).await.expect("echo");
            assert_eq!(back, msg);
        }
        drop(tcp);
        until("the tunnel to close", || {
            stats.tunnels.load(Ordering::SeqCst) == 0
        })
        .await;
    };
    tokio::time::timeout(PATIENCE * 2, work)
        .await
        .expect("in time");
}

#[tokio::test]
async fn in_flight_returns_to_zero_after_errors_and_drops() {
    let f = fixture(vec![spec("a", Duration::from_secs(600))], false, false);
    let zero = |s: &Arc<super::table::InstanceStats>| {
        let s = s.clone();
        move || s.in_flight.load(Ordering::SeqCst) == 0
    };

    // Normal.
    let normal = f.ready(0, 0, echo("A").await, "id-a");
    let (status, _, _) = f.get("a.localhost", "/").await;
    assert_eq!(status, 200);
    until("normal", zero(&normal)).await;
    f.apply(super::table::RouteEvent::Draining {
        app: 0,
        index: 0,
        generation: 1,
    });

    // The body breaks off: the client sees an error.
    let (port, _heads) =
        raw_backend("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789").await;
    let broken = f.ready(0, 1, port, "id-b");
    let resp = f
        .send(
            Request::get(f.url("/"))
                .header(header::HOST, "a.localhost")
                .body(Full::new(Bytes::new()))
                .expect("request"),
        )
        .await;
    assert_eq!(resp.status(), 200);
    assert!(resp.into_body().collect().await.is_err());
    until("broken body", zero(&broken)).await;
    f.apply(super::table::RouteEvent::Draining {
        app: 0,
        index: 1,
        generation: 1,
    });

    // The instance closes without an answer: 502.
    let (port, _heads) = raw_backend("").await;
    let closed = f.ready(0, 2, port, "id-c");
    let (status, h, _) = f
        .call(
            hyper::Method::POST,
            "a.localhost",
            "/",
            &[],
            Bytes::from_static(b"data"),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert_eq!(h[ERROR_HEADER], "endpoint_failure");
    until("502", zero(&closed)).await;
    f.apply(super::table::RouteEvent::Draining {
        app: 0,
        index: 2,
        generation: 1,
    });

    // The client goes away in the middle of a stream.
    let (port, mut senders) = streaming_backend().await;
    let dropped = f.ready(0, 3, port, "id-d");
    let pending = tokio::spawn({
        let client = f.client.clone();
        let req = Request::get(f.url("/"))
            .header(header::HOST, "a.localhost")
            .body(Full::new(Bytes::new()))
            .expect("request");
        async move { client.request(req).await }
    });
    let tx = senders
        .recv()
        .await
        .expect("the request reached the backend");
    tx.send(Frame::data(Bytes::from_static(b"part")))
        .await
        .expect("send");
    let resp = tokio::time::timeout(PATIENCE, pending)
        .await
        .expect("in time")
        .expect("task")
        .expect("response");
    let mut body = resp.into_body();
    assert_eq!(read_data(&mut body, 4).await, b"part");
    assert_eq!(dropped.in_flight.load(Ordering::SeqCst), 1);
    drop(body);
    // The router notices when it next writes (or reads EOF): keep the stream going until the
    // backend's body is dropped, which happens when the router drops the upstream response.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while tx
        .send(Frame::data(Bytes::from_static(b"more")))
        .await
        .is_ok()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the upstream stream never ended"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    until("dropped", zero(&dropped)).await;
}

#[tokio::test]
async fn error_pages_escape_and_show_tails_only_when_allowed() {
    for show in [true, false] {
        let f = fixture(vec![spec("a<1>", Duration::from_secs(600))], show, false);
        let (port, _heads) = raw_backend("").await;
        f.ready(0, 0, port, "id-a");
        let (status, h, body) = f.get("127.0.0.1", "/").await;
        assert_eq!(status, StatusCode::BAD_GATEWAY);
        assert_eq!(h[header::CONTENT_TYPE], "text/html; charset=utf-8");
        let body = String::from_utf8_lossy(&body);
        assert!(
            body.contains("a&lt;1&gt;") && !body.contains("a<1>"),
            "{body}"
        );
        assert!(body.contains("web.0"), "{body}");
        assert!(!body.contains("<script>"), "{body}");
        assert_eq!(body.contains("crashed &lt;script&gt;"), show, "{body}");
        assert_eq!(body.contains("booted"), show, "{body}");
    }
}

#[tokio::test]
async fn dropping_the_router_closes_its_port() {
    let mut f = fixture(vec![spec("a", Duration::from_secs(600))], false, false);
    f.ready(0, 0, echo("A").await, "id-a");
    let (status, _, _) = f.get("a.localhost", "/").await;
    assert_eq!(status, 200);
    let router = f.router.take().expect("router");
    tokio::task::spawn_blocking(move || drop(router))
        .await
        .expect("joined");
    assert!(TcpStream::connect(("127.0.0.1", f.port)).await.is_err());
}

/// A backend that answers the first request of each connection and closes the connection on
/// the next one without an answer, as an app closing an idle keep-alive connection does at
/// the moment the router reuses it. Each such close is reported.
async fn closing_backend() -> (u16, mpsc::UnboundedReceiver<()>) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = l.local_addr().expect("addr").port();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut tcp, _)) = l.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let head = read_head(&mut tcp).await;
                let len = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                    })
                    .unwrap_or(0);
                let mut body = vec![0u8; len];
                let _ = tcp.read_exact(&mut body).await;
                let _ = tcp
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                    .await;
                if !read_head(&mut tcp).await.is_empty() {
                    let _ = tx.send(());
                }
            });
        }
    });
    (port, rx)
}

#[tokio::test]
async fn a_reused_connection_closed_by_the_app_is_retried_only_without_a_body() {
    let f = fixture(
        vec![
            spec("a", Duration::from_secs(600)),
            spec("b", Duration::from_secs(600)),
        ],
        false,
        false,
    );
    let (port, mut closes) = closing_backend().await;
    f.ready(0, 0, port, "id-a");
    let mut closed = 0;
    for _ in 0..20 {
        let (status, _, body) = f.get("a.localhost", "/").await;
        assert_eq!((status, &body[..]), (StatusCode::OK, &b"ok"[..]));
        while closes.try_recv().is_ok() {
            closed += 1;
        }
        if closed > 0 {
            break;
        }
    }
    assert!(closed > 0, "the router never reused a connection");
    // A POST with a body is never sent twice: on a reused connection it fails.
    let (port, mut closes) = closing_backend().await;
    f.ready(1, 0, port, "id-b");
    let mut statuses = Vec::new();
    for _ in 0..20 {
        let (status, _, _) = f.get("b.localhost", "/").await;
        assert_eq!(status, StatusCode::OK);
        let (status, _, _) = f
            .call(
                hyper::Method::POST,
                "b.localhost",
                "/",
                &[],
                Bytes::from_static(b"once"),
            )
            .await;
        statuses.push(status);
        if status == StatusCode::BAD_GATEWAY {
            break;
        }
    }
    assert!(statuses.contains(&StatusCode::BAD_GATEWAY), "{statuses:?}");
    // That instance's connections are not reused from then on: nothing more is lost.
    while closes.try_recv().is_ok() {}
    for _ in 0..20 {
        for method in [hyper::Method::GET, hyper::Method::POST] {
            let (status, _, _) = f
                .call(method, "b.localhost", "/", &[], Bytes::from_static(b"once"))
                .await;
            assert_eq!(status, StatusCode::OK);
        }
    }
    assert!(closes.try_recv().is_err(), "a connection was reused");
}
