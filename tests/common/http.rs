//! HTTP/1.0 `GET` on 127.0.0.1, as plain as the tests' apps (stdlib-only Python servers).

#![allow(dead_code)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

/// `GET path` on 127.0.0.1:`port`, reading the answer with `read_timeout`: (head, body).
/// Retries a refused connection for up to [`SHORT`](super::SHORT) (a hang guard: a busy
/// machine may take seconds to get a process listening).
#[track_caller]
pub fn http_exchange(port: u16, path: &str, read_timeout: Duration) -> (String, String) {
    let t0 = Instant::now();
    let mut stream = loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(s) => break s,
            Err(e) => {
                assert!(
                    t0.elapsed() < super::SHORT,
                    "cannot connect to port {port}: {e}"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    };
    stream.set_read_timeout(Some(read_timeout)).unwrap();
    // One write, as real clients send a request: `write!` may split it into several
    // segments, which PHP's built-in server can take for a malformed request under load.
    let request =
        format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .unwrap_or_else(|e| panic!("reading the answer to GET {path} on port {port}: {e}"));
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .unwrap_or_else(|| panic!("no HTTP answer to GET {path} on port {port}: {text:?}"));
    (head.to_string(), body.to_string())
}

/// `GET path` on 127.0.0.1:`port` (30 s to answer): (status, body). Retries a refused
/// connection briefly.
#[track_caller]
pub fn http_get(port: u16, path: &str) -> (u16, String) {
    let (head, body) = http_exchange(port, path, Duration::from_secs(30));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line in {head:?}"));
    (status, body)
}
