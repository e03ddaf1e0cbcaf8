//! The router in front of `run`'s apps, tried as a user would: one URL per app over its
//! instances, host names for the apps of a multi-app project, a WebSocket through it, a
//! crashed instance skipped, an edit that restarts the app while requests keep coming (none
//! fails), requests waiting for the first boot, and the router's port remembered.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::common::project::Project;
use crate::common::session::{Session, Stream};
use crate::common::wait_until;

const SHORT: Duration = Duration::from_secs(30);

/// A stdlib Python app: answers JSON with its instance index, its version (`version.txt`) and
/// the request's headers; `/ws` is a WebSocket echo; `BOOT` seconds before it listens.
const APP: &str = r#"import os, sys, json, time, hashlib, base64
from http.server import ThreadingHTTPServer, BaseHTTPRequestHandler
time.sleep(float(os.environ.get('BOOT', '0')))
idx = json.loads(os.environ['VCAP_APPLICATION'])['instance_index']
VERSION = open('version.txt').read().strip() if os.path.exists('version.txt') else 'v0'
NAME = os.environ.get('WHO', 'app')
print('serving', NAME, 'instance', idx, 'pid', os.getpid(), 'version', VERSION, flush=True)
class H(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    def log_message(self, *a):
        pass
    def do_GET(self):
        if self.path == '/ws':
            return self.ws()
        if self.path == '/slow':
            print('slow request started', flush=True)
            time.sleep(6)
        if self.path == '/pid':
            body = str(os.getpid()).encode()
        else:
            body = json.dumps({'who': NAME, 'instance': idx, 'version': VERSION, 'path': self.path,
                               'headers': {k.lower(): v for k, v in self.headers.items()}}).encode()
        self.send_response(200)
        if self.path == '/login':
            self.send_header('Set-Cookie', 'JSESSIONID=s%d; Path=/; HttpOnly' % idx)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def ws(self):
        key = self.headers['Sec-WebSocket-Key']
        acc = base64.b64encode(hashlib.sha1((key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').encode()).digest()).decode()
        self.send_response(101)
        self.send_header('Upgrade', 'websocket')
        self.send_header('Connection', 'Upgrade')
        self.send_header('Sec-WebSocket-Accept', acc)
        self.end_headers()
        self.wfile.flush()
        while True:
            h = self.rfile.read(2)
            if len(h) < 2:
                return
            n = h[1] & 0x7f
            mask = self.rfile.read(4) if h[1] & 0x80 else b'\0\0\0\0'
            data = bytes(b ^ mask[i % 4] for i, b in enumerate(self.rfile.read(n)))
            if h[0] & 0x0f == 8:
                return
            self.wfile.write(bytes([0x81, len(data)]) + data)
            self.wfile.flush()
ThreadingHTTPServer(('127.0.0.1', int(os.environ['PORT'])), H).serve_forever()
"#;

fn manifest(name: &str, extra: &str) -> String {
    format!("name: {name}\nframework:\n  type: generic\nprocesses:\n  web: python3 app.py\n{extra}")
}

/// The router's port, from the start-up line `==> APP: http://APP.localhost:PORT/ (and …)`.
#[track_caller]
fn router_port(s: &mut Session) -> u16 {
    let needle = "(and http://127.0.0.1:";
    s.wait_for(Stream::Err, needle, SHORT);
    let err = s.stderr();
    let at = err.find(needle).expect("found") + needle.len();
    err[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .unwrap_or_else(|_| panic!("no router port\n{}", s.dump()))
}

/// One HTTP/1.1 request (`Connection: close`) to 127.0.0.1:`port` with `Host: host`:
/// (status, head, body). `Err` when the connection fails or no answer comes.
fn request(port: u16, host: &str, path: &str) -> Result<(u16, String, String), String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(60)))
        .map_err(|e| e.to_string())?;
    let req = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no HTTP answer: {text:?}"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line: {head:?}"))?;
    Ok((status, head.to_string(), body.to_string()))
}

/// [`request`] with a `Cookie` header.
fn get_with_cookie(port: u16, host: &str, path: &str, cookie: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(SHORT)).expect("timeout");
    let req = format!(
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nCookie: {cookie}\r\nConnection: close\r\n\r\n"
    );
    s.write_all(req.as_bytes()).expect("write");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read");
    let (head, body) = raw.split_once("\r\n\r\n").expect("an answer");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|x| x.parse().ok())
        .expect("status");
    (status, head.to_string(), body.to_string())
}

#[track_caller]
fn get(port: u16, host: &str, path: &str) -> (u16, String, String) {
    request(port, host, path).unwrap_or_else(|e| panic!("GET {path} (Host {host}): {e}"))
}

/// Ask `web.localhost` through the router until it answers `version` (within [`SHORT`]).
#[track_caller]
fn wait_for_version(s: &Session, port: u16, version: &str) {
    let t0 = Instant::now();
    loop {
        let (_, _, body) = get(port, "web.localhost", "/");
        if json(&body)["version"] == version {
            return;
        }
        assert!(t0.elapsed() < SHORT, "{version} never served\n{}", s.dump());
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn json(body: &str) -> serde_json::Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body:?}"))
}

#[test]
fn two_instances_both_answer_behind_one_url() {
    let p = Project::new(&[
        ("stackato.yml", &manifest("web", "instances: 2\n")),
        ("app.py", APP),
    ]);
    let mut s = p.run(&["--no-watch"]);
    let port = router_port(&mut s);
    s.ready("web.0", SHORT);
    s.ready("web.1", SHORT);
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..20 {
        let (status, _, body) = get(port, "web.localhost", "/");
        assert_eq!(status, 200, "{body}");
        seen.insert(json(&body)["instance"].as_u64().expect("index"));
    }
    assert_eq!(
        seen.into_iter().collect::<Vec<_>>(),
        [0, 1],
        "both instances get requests\n{}",
        s.dump()
    );
    // The access log says which instance answered.
    s.wait_for(Stream::Out, "GET / 200", SHORT);
    s.interrupt(SHORT);
}

#[test]
fn a_multi_app_project_routes_by_host_name() {
    let yml = "applications:\n  - name: shop\n    path: shop\n    framework: {type: generic}\n    processes: {web: python3 app.py}\n    env: {WHO: shop}\n  - name: blog\n    path: blog\n    framework: {type: generic}\n    processes: {web: python3 app.py}\n    env: {WHO: blog}\n    url: [blog.example.com, news.example.com]\n";
    let p = Project::new(&[
        ("stackato.yml", yml),
        ("shop/app.py", APP),
        ("blog/app.py", APP),
    ]);
    let mut s = p.run(&["--no-watch"]);
    let port = router_port(&mut s);
    s.assert_err_has(&format!("shop: http://shop.localhost:{port}/"));
    s.assert_err_has(&format!("blog: http://blog.localhost:{port}/"));
    s.ready("blog:web.0", SHORT);
    s.ready("shop:web.0", SHORT);
    let who = |host: &str| {
        let (status, _, body) = get(port, host, "/");
        assert_eq!(status, 200, "{host}: {body}");
        json(&body)["who"].as_str().unwrap_or_default().to_string()
    };
    assert_eq!(who("shop.localhost"), "shop");
    assert_eq!(who(&format!("Blog.LOCALHOST:{port}")), "blog");
    assert_eq!(who("news.localhost"), "blog", "each URL's first label");
    assert_eq!(
        who("blog.example.com"),
        "blog",
        "the manifest's own host too"
    );
    assert_eq!(who("127.0.0.1"), "shop", "the first app by address");
    let (status, head, body) = get(port, "elsewhere.example.org", "/");
    assert_eq!(status, 404, "{head}\n{body}");
    assert!(
        body.contains("Requested route (&#39;elsewhere.example.org&#39;) does not exist."),
        "{body}"
    );
    // The app sees the headers the platform's router set.
    let (_, _, body) = get(port, "shop.localhost", "/x?y=1");
    let h = &json(&body)["headers"];
    assert_eq!(h["host"], "shop.localhost");
    assert_eq!(h["x-forwarded-for"], "127.0.0.1");
    assert_eq!(h["x-forwarded-proto"], "http");
    assert_eq!(h["x-forwarded-host"], "shop.localhost");
    let start: u128 = h["x-request-start"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("X-Request-Start in {h}"));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis();
    assert!(
        now.abs_diff(start) < 60_000,
        "milliseconds since the epoch: {start}"
    );
    s.interrupt(SHORT);
}

#[test]
fn a_websocket_echo_works_through_the_router() {
    let p = Project::new(&[("stackato.yml", &manifest("chat", "")), ("app.py", APP)]);
    let mut s = p.run(&["--no-watch"]);
    let port = router_port(&mut s);
    s.ready("web.0", SHORT);
    let mut c = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    c.set_read_timeout(Some(SHORT)).expect("timeout");
    c.write_all(b"GET /ws HTTP/1.1\r\nHost: chat.localhost\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
        .expect("handshake");
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(
            c.read(&mut b).expect("read the head"),
            1,
            "closed: {head:?}"
        );
        head.push(b[0]);
    }
    let head = String::from_utf8_lossy(&head).to_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    // RFC 6455's own example key and answer.
    assert!(
        head.contains("sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo="),
        "{head}"
    );
    for msg in ["hello", "through the router"] {
        let mask = [1u8, 2, 3, 4];
        let mut frame = vec![0x81, 0x80 | msg.len() as u8];
        frame.extend_from_slice(&mask);
        frame.extend(msg.bytes().enumerate().map(|(i, x)| x ^ mask[i % 4]));
        c.write_all(&frame).expect("send a frame");
        let mut back = vec![0u8; 2 + msg.len()];
        c.read_exact(&mut back).expect("the echo");
        assert_eq!(back[0], 0x81);
        assert_eq!(&back[2..], msg.as_bytes());
    }
    s.interrupt(SHORT);
}

#[test]
fn a_crashed_instance_is_skipped() {
    let p = Project::new(&[
        ("stackato.yml", &manifest("web", "instances: 2\n")),
        ("app.py", APP),
    ]);
    let mut s = p.run(&["--no-watch"]);
    let port = router_port(&mut s);
    let direct = s.ready("web.1", SHORT);
    s.ready("web.0", SHORT);
    let (_, _, pid) = get(direct, "127.0.0.1", "/pid");
    crate::common::procs::kill9(pid.trim().parse().expect("a pid"));
    // At once, before any restart: every request is answered, by the instance left.
    for i in 0..20 {
        let (status, _, body) = get(port, "web.localhost", "/");
        assert_eq!(status, 200, "request {i}: {body}\n{}", s.dump());
    }
    s.interrupt(SHORT);
}

#[test]
fn requests_during_the_first_boot_wait_for_it() {
    let p = Project::new(&[
        ("stackato.yml", &manifest("slow", "env:\n  BOOT: '5'\n")),
        ("app.py", APP),
    ]);
    let mut s = p.run(&["--no-watch"]);
    let port = router_port(&mut s);
    assert_eq!(
        s.count(Stream::Err, "web.0 ready at"),
        0,
        "asked before the boot"
    );
    let (status, _, body) = get(port, "slow.localhost", "/");
    assert_eq!(status, 200, "{body}\n{}", s.dump());
    s.interrupt(SHORT);
}

#[test]
fn an_edit_restarts_the_app_and_no_request_fails() {
    let p = Project::new(&[
        ("stackato.yml", &manifest("web", "env:\n  BOOT: '1'\n")),
        ("app.py", APP),
        ("version.txt", "v1\n"),
    ]);
    let mut s = p.run(&[]);
    let port = router_port(&mut s);
    let first = s.ready("web.0", SHORT);
    let stop = Arc::new(AtomicBool::new(false));
    let (done, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let errors = Arc::new(std::sync::Mutex::new(Vec::new()));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (stop, done, failed, errors) =
                (stop.clone(), done.clone(), failed.clone(), errors.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match request(port, "web.localhost", "/") {
                        Ok((200, _, _)) => done.fetch_add(1, Ordering::SeqCst),
                        Ok((status, _, body)) => {
                            errors.lock().unwrap().push(format!("{status}: {body}"));
                            failed.fetch_add(1, Ordering::SeqCst)
                        }
                        Err(e) => {
                            errors.lock().unwrap().push(e);
                            failed.fetch_add(1, Ordering::SeqCst)
                        }
                    };
                }
            })
        })
        .collect();
    wait_until(SHORT, || done.load(Ordering::SeqCst) > 10, || s.dump());
    for v in ["v2", "v3"] {
        p.edit("version.txt", &format!("{v}\n"));
        wait_for_version(&s, port, v);
    }
    stop.store(true, Ordering::SeqCst);
    for c in clients {
        c.join().expect("client");
    }
    assert_eq!(
        failed.load(Ordering::SeqCst),
        0,
        "{:?} of {} requests\n{}",
        errors.lock().unwrap(),
        done.load(Ordering::SeqCst),
        s.dump()
    );
    // The replacement listened on the second port while the first one served, then the
    // next one on the first port again.
    let second = s.ready_nth("web.0", 2, SHORT);
    assert_ne!(first, second, "{}", s.dump());
    assert_eq!(s.ready_nth("web.0", 3, SHORT), first);
    s.interrupt(SHORT);
}

#[test]
fn the_router_port_is_remembered_and_shown_by_env() {
    let p = Project::new(&[("stackato.yml", &manifest("web", "")), ("app.py", APP)]);
    let free = TcpListener::bind("127.0.0.1:0").expect("bind");
    let chosen = free.local_addr().expect("addr").port();
    drop(free);
    let mut s = p.run(&["--no-watch", "--port", &chosen.to_string()]);
    assert_eq!(router_port(&mut s), chosen);
    s.ready("web.0", SHORT);
    s.interrupt(SHORT);
    let env = p.cmd(&["env", "--format", "json"]);
    env.code(0);
    let doc = env.json();
    let vcap = doc["VCAP_APPLICATION"]
        .as_str()
        .map(json)
        .unwrap_or_else(|| panic!("VCAP_APPLICATION in {doc}"));
    assert_eq!(vcap["uris"][0], format!("web.localhost:{chosen}"));
    env.stderr_has(&format!("http://web.localhost:{chosen}/"));
    // Without --port, the next run is on the same port.
    let mut s = p.run(&["--no-watch"]);
    assert_eq!(router_port(&mut s), chosen);
    s.interrupt(SHORT);
}

#[test]
fn a_busy_router_port_is_refused_with_the_way_out() {
    let p = Project::new(&[("stackato.yml", &manifest("web", "")), ("app.py", APP)]);
    let busy = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = busy.local_addr().expect("addr").port();
    let r = p.cmd(&["run", "--no-watch", "--port", &port.to_string()]);
    r.code(10)
        .stderr_has(&format!("the router cannot listen on 127.0.0.1:{port}"))
        .stderr_has("--port")
        .stderr_lacks("services:");
}

/// An app that prints a marker and exits at once.
const CRASHER: &str =
    "import sys\nprint('BOOM <b>marker</b> before listening', flush=True)\nsys.exit(1)\n";

#[test]
fn an_app_that_cannot_start_gets_a_503_page_with_its_last_lines() {
    let p = Project::new(&[
        ("stackato.yml", &manifest("broken", "timeout: 30\n")),
        ("app.py", CRASHER),
    ]);
    let mut s = p.run(&[]);
    let port = router_port(&mut s);
    // Asked while it starts: the request waits, and gets the page once the app is declared
    // down (it crashed before ever listening), well before its 30 s timeout.
    let (status, head, body) = get(port, "broken.localhost", "/");
    assert_eq!(status, 503, "{head}\n{body}\n{}", s.dump());
    assert!(
        head.to_lowercase()
            .contains("x-stackato-local-router-error: no_instance"),
        "{head}"
    );
    assert!(body.contains("broken"), "names the app: {body}");
    assert!(
        body.contains("BOOM &lt;b&gt;marker&lt;/b&gt; before listening"),
        "its last lines, escaped: {body}"
    );
    s.interrupt(SHORT);
}

#[test]
fn bound_beyond_loopback_it_warns_and_error_pages_show_no_output() {
    let p = Project::new(&[
        ("stackato.yml", &manifest("broken", "timeout: 30\n")),
        ("app.py", CRASHER),
    ]);
    let mut s = p.run(&["--bind", "0.0.0.0"]);
    s.wait_for(Stream::Err, "warning: --bind 0.0.0.0", SHORT);
    let needle = "broken: http://broken.localhost:";
    s.wait_for(Stream::Err, needle, SHORT);
    let err = s.stderr();
    let at = err.find(needle).expect("found") + needle.len();
    let port: u16 = err[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect::<String>()
        .parse()
        .expect("port");
    let (status, _, body) = get(port, "broken.localhost", "/");
    assert_eq!(status, 503, "{body}");
    assert!(!body.contains("BOOM"), "no output beyond loopback: {body}");
    s.interrupt(SHORT);
}

#[test]
fn a_session_cookie_pins_the_client_to_its_instance() {
    let p = Project::new(&[
        ("stackato.yml", &manifest("web", "instances: 2\n")),
        ("app.py", APP),
    ]);
    let mut s = p.run(&["--no-watch"]);
    let port = router_port(&mut s);
    s.ready("web.0", SHORT);
    s.ready("web.1", SHORT);
    let (status, head, body) = get(port, "web.localhost", "/login");
    assert_eq!(status, 200, "{body}");
    let pinned = json(&body)["instance"].clone();
    let affinity = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
        .map(|(_, v)| v.trim())
        .find(|v| v.starts_with("STACKATO_SESSION_AFFINITY="))
        .unwrap_or_else(|| panic!("no affinity cookie in {head}"));
    assert!(affinity.contains("Path=/"), "{affinity}");
    let pair = affinity.split(';').next().expect("name=value");
    let session = format!("JSESSIONID=s{pinned}; {pair}");
    for i in 0..10 {
        let (status, _, body) = get_with_cookie(port, "web.localhost", "/", &session);
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            json(&body)["instance"],
            pinned,
            "request {i} left its instance"
        );
    }
    s.interrupt(SHORT);
}

/// [`APP`] that holds a lock file in its directory and exits when another copy holds it.
fn locking_app() -> String {
    format!(
        "import fcntl, sys\nlock = open('app.lock', 'w')\ntry:\n    fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)\nexcept OSError:\n    print('another copy holds app.lock', flush=True)\n    sys.exit(2)\n{APP}"
    )
}

#[test]
fn an_app_that_cannot_run_twice_is_restarted_stop_first_and_says_how_to_skip_the_attempt() {
    let p = Project::new(&[
        ("stackato.yml", &manifest("locky", "")),
        ("app.py", &locking_app()),
        ("version.txt", "v1\n"),
    ]);
    let mut s = p.run(&[]);
    let port = router_port(&mut s);
    s.ready("web.0", SHORT);
    p.edit("version.txt", "v2\n");
    s.wait_for(Stream::Err, "--stop-first", SHORT);
    s.ready_nth("web.0", 2, SHORT);
    let (status, _, body) = get(port, "locky.localhost", "/");
    assert_eq!(status, 200, "{body}");
    assert_eq!(json(&body)["version"], "v2", "{}", s.dump());
    s.assert_out_has("another copy holds app.lock");
    s.interrupt(SHORT);

    // With --stop-first, no attempt beside the old one.
    let mut s = p.run(&["--stop-first", "locky"]);
    let port = router_port(&mut s);
    s.ready("web.0", SHORT);
    p.edit("version.txt", "v3\n");
    s.ready_nth("web.0", 2, SHORT);
    let (status, _, body) = get(port, "locky.localhost", "/");
    assert_eq!((status, json(&body)["version"].clone()), (200, "v3".into()));
    // Once the run ended, its stdout was read to the end: a line printed by an attempt would
    // be there (while it runs, it might still be on its way).
    s.interrupt(SHORT);
    assert!(
        !s.stdout().contains("another copy holds app.lock"),
        "{}",
        s.dump()
    );
}

#[test]
fn a_long_request_finishes_on_the_old_instance_across_a_restart() {
    let p = Project::new(&[
        ("stackato.yml", &manifest("web", "")),
        ("app.py", APP),
        ("version.txt", "v1\n"),
    ]);
    let mut s = p.run(&[]);
    let port = router_port(&mut s);
    s.ready("web.0", SHORT);
    // Six seconds, longer than any fixed drain bound but within the grace period (10 s).
    let slow = std::thread::spawn(move || request(port, "web.localhost", "/slow"));
    // The old instance has it before the edit.
    s.wait_line("web.0", "slow request started", 1, SHORT);
    p.edit("version.txt", "v2\n");
    s.ready_nth("web.0", 2, SHORT);
    let (status, _, body) = get(port, "web.localhost", "/");
    assert_eq!((status, json(&body)["version"].clone()), (200, "v2".into()));
    let (status, _, body) = slow
        .join()
        .expect("thread")
        .unwrap_or_else(|e| panic!("the long request failed: {e}\n{}", s.dump()));
    assert_eq!(status, 200, "{body}\n{}", s.dump());
    assert_eq!(json(&body)["version"], "v1", "answered by the old instance");
    s.interrupt(SHORT);
}

#[test]
fn saving_again_and_again_while_the_app_boots_is_never_taken_for_a_restart_loop() {
    let p = Project::new(&[
        ("stackato.yml", &manifest("web", "env:\n  BOOT: '1.2'\n")),
        ("app.py", APP),
        ("version.txt", "v0\n"),
    ]);
    let mut s = p.run(&[]);
    let port = router_port(&mut s);
    s.ready("web.0", SHORT);
    for i in 1..=4 {
        p.edit("version.txt", &format!("v{i}\n"));
        std::thread::sleep(Duration::from_millis(800));
    }
    wait_for_version(&s, port, "v4");
    assert!(!s.stderr().contains("restart loop"), "{}", s.dump());
    s.interrupt(SHORT);
}

/// An app that crashes just after answering `/crash`, printing why; the process after it
/// boots silently (it never listens).
const CRASH_THEN_SILENT: &str = r#"import os, sys, time, threading
from http.server import HTTPServer, BaseHTTPRequestHandler
if os.path.exists('crashed'):
    time.sleep(600)
class H(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass
    def do_GET(self):
        self.send_response(200)
        self.send_header('Content-Length', '2')
        self.end_headers()
        self.wfile.write(b'ok')
        if self.path == '/crash':
            threading.Thread(target=crash).start()
def crash():
    time.sleep(0.3)
    open('crashed', 'w').close()
    print('BOOM the reason it crashed', flush=True)
    os._exit(1)
HTTPServer(('127.0.0.1', int(os.environ['PORT'])), H).serve_forever()
"#;

#[test]
fn a_503_while_the_next_process_boots_silently_shows_why_the_last_one_crashed() {
    let p = Project::new(&[
        ("stackato.yml", &manifest("crashy", "timeout: 10\n")),
        ("app.py", CRASH_THEN_SILENT),
    ]);
    let mut s = p.run(&["--no-watch"]);
    let port = router_port(&mut s);
    s.ready("web.0", SHORT);
    let (status, _, body) = get(port, "crashy.localhost", "/crash");
    assert_eq!(status, 200, "{body}\n{}", s.dump());
    s.wait_for(Stream::Out, "BOOM the reason it crashed", SHORT);
    // The request waits for the next process, which starts (after the crash's 1 s backoff)
    // but prints nothing and never listens: the page is about it.
    let (status, _, body) = get(port, "crashy.localhost", "/");
    assert_eq!(status, 503, "{body}\n{}", s.dump());
    assert!(
        body.contains("BOOM the reason it crashed"),
        "the page says why the app went away: {body}\n{}",
        s.dump()
    );
    s.interrupt(SHORT);
}
