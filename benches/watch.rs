//! Watching figures: restart latency (file saved → the new instance answers; median and p90 of
//! 10, with the app's own boot time alone for comparison), restarts per 5,000-file storm, the
//! supervisor's RSS and CPU while idle for 10 s watching a 50,000-file tree, and the time from
//! launch to ready on that tree. Run with `cargo bench --bench watch`.
#![allow(clippy::disallowed_methods)] // tests drive the real binary from outside

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_stackato-local");

/// A trivial server (boots in a few tens of ms): answers every connection with the version
/// it read at start.
const SERVER: &str = r#"
import os, socket
v = open("version.txt").read().strip()
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(os.environ["PORT"]))); s.listen(64)
while True:
    c, _ = s.accept()
    try:
        c.recv(1024)
        c.sendall(("HTTP/1.0 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(v), v)).encode())
    finally:
        c.close()
"#;

fn get(port: u16) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_millis(500))).ok()?;
    s.write_all(b"GET / HTTP/1.0\r\n\r\n").ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    body.split("\r\n\r\n").nth(1).map(str::to_string)
}

fn wait_for(port: u16, want: &str, deadline: Duration) -> Option<Duration> {
    let t0 = Instant::now();
    while t0.elapsed() < deadline {
        if get(port).as_deref() == Some(want) {
            return Some(t0.elapsed());
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    None
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p).round() as usize]
}

struct Run {
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
}

impl Run {
    fn start(dir: &Path) -> Run {
        let mut child = Command::new(BIN)
            .env("STACKATO_LOCAL_TRUST", "1")
            .args(["--color", "never", "run"])
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let l2 = Arc::clone(&log);
        let err = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                l2.lock().unwrap().push(line);
            }
        });
        Run { child, log }
    }

    fn count(&self, needle: &str) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(needle))
            .count()
    }

    fn stop(mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGINT,
        );
        let _ = self.child.wait();
    }
}

fn port_of(dir: &Path) -> u16 {
    let out = Command::new(BIN)
        .env("STACKATO_LOCAL_TRUST", "1")
        .args(["env", "--format", "json"])
        .current_dir(dir)
        .stderr(Stdio::null())
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    v["PORT"].as_str().unwrap().parse().unwrap()
}

fn app(dir: &Path) {
    std::fs::write(
        dir.join("stackato.yml"),
        "name: w\nprocesses:\n  web: python3 server.py\n",
    )
    .unwrap();
    std::fs::write(dir.join("server.py"), SERVER).unwrap();
    std::fs::write(dir.join("version.txt"), "v0").unwrap();
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

fn cpu_secs(pid: u32) -> f64 {
    let tick = 100.0;
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1.split_whitespace().collect::<Vec<_>>();
            let u: f64 = rest.get(11)?.parse().ok()?;
            let k: f64 = rest.get(12)?.parse().ok()?;
            Some((u + k) / tick)
        })
        .unwrap_or(0.0)
}

fn main() {
    println!("| measure | stackato-local | target |");
    println!("|---|---|---|");
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    app(dir);
    let port = port_of(dir);

    // The app's own boot time.
    let mut boots = Vec::new();
    for _ in 0..5 {
        let t0 = Instant::now();
        let mut c = Command::new("python3")
            .arg("server.py")
            .current_dir(dir)
            .env("PORT", port.to_string())
            .spawn()
            .unwrap();
        wait_for(port, "v0", Duration::from_secs(10)).unwrap();
        boots.push(t0.elapsed().as_secs_f64());
        let _ = c.kill();
        let _ = c.wait();
        while TcpStream::connect(("127.0.0.1", port)).is_ok() {
            std::thread::sleep(Duration::from_millis(2));
        }
    }
    let boot = pct(&mut boots, 0.5);

    // Restart latency.
    let run = Run::start(dir);
    wait_for(port, "v0", Duration::from_secs(60)).expect("the app did not start");
    let mut lat = Vec::new();
    for i in 1..=10 {
        // A person's pace: edits within a second of every start look like the app writing
        // into its own directory, which the loop detector stops.
        std::thread::sleep(Duration::from_millis(1200));
        let v = format!("v{i}");
        let t0 = Instant::now();
        std::fs::write(dir.join("version.txt"), &v).unwrap();
        if wait_for(port, &v, Duration::from_secs(10)).is_some() {
            lat.push(t0.elapsed().as_secs_f64());
        }
    }
    let restarts_before = run.count("changed: restarting");
    println!(
        "| restart latency, save → new instance answers (10 edits) | median {:.1} ms, p90 {:.1} ms ({} of 10 answered; app boot alone {:.1} ms) | median ≤ 75 ms |",
        pct(&mut lat.clone(), 0.5) * 1000.0,
        pct(&mut lat, 0.9) * 1000.0,
        lat.len(),
        boot * 1000.0
    );

    // A 5,000-file storm.
    std::thread::sleep(Duration::from_millis(300));
    std::fs::create_dir_all(dir.join("storm")).unwrap();
    for i in 0..5000 {
        std::fs::write(dir.join("storm").join(format!("f{i}.txt")), "x").unwrap();
    }
    std::fs::write(dir.join("version.txt"), "storm").unwrap();
    let served = wait_for(port, "storm", Duration::from_secs(10)).is_some();
    std::thread::sleep(Duration::from_millis(1500));
    let storm_restarts = run.count("changed: restarting") - restarts_before;
    println!(
        "| restarts for one 5,000-file storm | {storm_restarts} (new code serving at the end: {}) | exactly 1 |",
        if served { "yes" } else { "NO" }
    );
    run.stop();

    // A 50,000-file tree: launch → ready, idle RSS and CPU.
    let big = tempfile::tempdir().unwrap();
    let bdir = big.path();
    app(bdir);
    for d in 0..500 {
        let sub = bdir.join("src").join(format!("pkg{d}"));
        std::fs::create_dir_all(&sub).unwrap();
        for f in 0..100 {
            std::fs::write(sub.join(format!("m{f}.py")), "").unwrap();
        }
    }
    let bport = port_of(bdir);
    // Stage once, so launch → ready measures watching, not staging.
    let warm = Run::start(bdir);
    wait_for(bport, "v0", Duration::from_secs(120)).unwrap();
    warm.stop();
    while TcpStream::connect(("127.0.0.1", bport)).is_ok() {
        std::thread::sleep(Duration::from_millis(2));
    }
    let t0 = Instant::now();
    let run = Run::start(bdir);
    wait_for(bport, "v0", Duration::from_secs(60)).unwrap();
    let ready = t0.elapsed();
    std::thread::sleep(Duration::from_secs(2));
    let pid = run.child.id();
    let cpu0 = cpu_secs(pid);
    let rss0 = rss_kb(pid);
    std::thread::sleep(Duration::from_secs(10));
    let cpu1 = cpu_secs(pid);
    let rss1 = rss_kb(pid);
    println!(
        "| launch → ready, 50,000-file tree (cached staging) | {:.0} ms | ≤ 150 ms |",
        ready.as_secs_f64() * 1000.0
    );
    println!(
        "| supervisor RSS while watching the 50,000-file tree | {:.1} MB (start of idle {:.1} MB) | ≤ 15 MB |",
        rss1 as f64 / 1024.0,
        rss0 as f64 / 1024.0
    );
    println!(
        "| supervisor CPU while idle for 10 s | {:.2} s | ≈ 0 |",
        cpu1 - cpu0
    );
    run.stop();
}
