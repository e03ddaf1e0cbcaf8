//! `run` figures: log throughput against writing straight to a file, ready-latency overhead
//! against launching the server directly, and shutdown time after SIGINT (cooperative child,
//! and one that ignores SIGTERM). Run with `cargo bench --bench run`.
#![allow(clippy::disallowed_methods)] // tests drive the real binary from outside

use std::io::Read;
use std::net::TcpStream;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_stackato-local");
const LINES: usize = 1_000_000;
const RUNS: usize = 5;

/// 1,000,000 numbered lines of 100 bytes, written in big chunks.
const PRODUCER: &str = r#"
import sys
w = sys.stdout.write
chunk = []
for i in range(1000000):
    chunk.append("%08d %s\n" % (i, "x" * 90))
    if len(chunk) == 10000:
        w("".join(chunk)); chunk = []
w("".join(chunk))
sys.stdout.flush()
"#;

const SERVER: &str = r#"
import os, socket, signal, sys
if os.environ.get("IGNORE_TERM"):
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(os.environ["PORT"]))); s.listen(16)
while True:
    c, _ = s.accept(); c.close()
"#;

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn app(dir: &Path, manifest: &str, files: &[(&str, &str)]) {
    std::fs::write(dir.join("stackato.yml"), manifest).unwrap();
    for (n, t) in files {
        std::fs::write(dir.join(n), t).unwrap();
    }
}

fn count_lines(path: &Path) -> (usize, bool) {
    let mut s = String::new();
    let _ = std::fs::File::open(path).and_then(|mut f| f.read_to_string(&mut s));
    let mut n = 0;
    let mut intact = true;
    for l in s.lines() {
        if let Some((_, rest)) = l.split_once("| ") {
            if rest.len() == 99 && rest[..8].parse::<usize>() == Ok(n) {
                n += 1;
            } else if rest.len() == 99 {
                intact = false;
            }
        }
    }
    (n, intact && n == LINES)
}

fn throughput() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    app(
        dir,
        "name: tp\nprocesses:\n  web: ~\ncommand: python3 producer.py\n",
        &[("producer.py", PRODUCER)],
    );
    let direct_out = dir.join("direct.txt");
    let mut direct = Vec::new();
    for _ in 0..RUNS {
        let t0 = Instant::now();
        let f = std::fs::File::create(&direct_out).unwrap();
        Command::new("python3")
            .arg(dir.join("producer.py"))
            .stdout(f)
            .status()
            .unwrap();
        direct.push(t0.elapsed().as_secs_f64());
    }
    // Warm the staging cache once.
    let _ = Command::new(BIN)
        .env("STACKATO_LOCAL_TRUST", "1")
        .args(["run", "--exit-on-crash"])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    let out = dir.join("via.txt");
    let mut via = Vec::new();
    let mut intact_all = true;
    for _ in 0..RUNS {
        let f = std::fs::File::create(&out).unwrap();
        let t0 = Instant::now();
        // The worker exits after writing; --exit-on-crash ends the run there.
        Command::new(BIN)
            .env("STACKATO_LOCAL_TRUST", "1")
            .args(["--color", "never", "run", "--exit-on-crash"])
            .current_dir(dir)
            .stdout(f)
            .stderr(Stdio::null())
            .status()
            .unwrap();
        via.push(t0.elapsed().as_secs_f64());
        let (n, intact) = count_lines(&out);
        intact_all &= intact;
        if !intact {
            println!("  lines intact: {n} of {LINES}");
        }
    }
    let (d, v) = (median(&mut direct), median(&mut via));
    println!(
        "| log throughput, 1,000,000 × 100 B | direct to a file {d:.3} s | via `run` {v:.3} s (whole run: start, stage check, stop) | {:.2}× | {:.0} lines/s | every line intact: {} |",
        v / d,
        LINES as f64 / v,
        if intact_all { "yes" } else { "NO" }
    );
}

fn wait_port(port: u16, deadline: Duration) -> Option<Duration> {
    let t0 = Instant::now();
    while t0.elapsed() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some(t0.elapsed());
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    None
}

fn port_of(dir: &Path) -> u16 {
    // The instance port is remembered in the state dir once `env` ran.
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

fn latency_and_shutdown() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path();
    app(
        dir,
        "name: lat\nprocesses:\n  web: python3 server.py\n",
        &[("server.py", SERVER)],
    );
    let port = port_of(dir);
    let mut direct = Vec::new();
    for _ in 0..RUNS {
        let t0 = Instant::now();
        let mut c = Command::new("python3")
            .arg(dir.join("server.py"))
            .env("PORT", port.to_string())
            .spawn()
            .unwrap();
        wait_port(port, Duration::from_secs(10)).unwrap();
        direct.push(t0.elapsed().as_secs_f64());
        let _ = c.kill();
        let _ = c.wait();
    }
    // Warm the staging cache.
    let mut warm = Command::new(BIN)
        .env("STACKATO_LOCAL_TRUST", "1")
        .arg("run")
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_port(port, Duration::from_secs(30)).unwrap();
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(warm.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    );
    let _ = warm.wait();
    let mut via = Vec::new();
    let mut stop = Vec::new();
    // Also SIGINT half a second after ready (a person's Ctrl-C): the start-up work (the
    // watcher's first walk and its inotify watches) is over by then, and closing an inotify
    // instance that is still being filled waits for the kernel (an SRCU grace period).
    let mut settled = Vec::new();
    for round in 0..2 * RUNS {
        while TcpStream::connect(("127.0.0.1", port)).is_ok() {
            std::thread::sleep(Duration::from_millis(5));
        }
        let t0 = Instant::now();
        let mut c = Command::new(BIN)
            .env("STACKATO_LOCAL_TRUST", "1")
            .arg("run")
            .current_dir(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        wait_port(port, Duration::from_secs(30)).unwrap();
        let later = round % 2 == 1;
        if later {
            std::thread::sleep(Duration::from_millis(500));
        } else {
            via.push(t0.elapsed().as_secs_f64());
        }
        let t1 = Instant::now();
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(c.id() as i32),
            nix::sys::signal::Signal::SIGINT,
        );
        let _ = c.wait();
        if later {
            settled.push(t1.elapsed().as_secs_f64());
        } else {
            stop.push(t1.elapsed().as_secs_f64());
        }
    }
    let (d, v) = (median(&mut direct), median(&mut via));
    println!(
        "| ready latency (spawn → port accepts) | direct {:.1} ms | via `run` {:.1} ms | overhead {:.1} ms | | |",
        d * 1000.0,
        v * 1000.0,
        (v - d) * 1000.0
    );
    println!(
        "| shutdown after SIGINT, cooperative child | | `run` exits, all gone: {:.1} ms right at ready, {:.1} ms 0.5 s after (medians of {RUNS}) | | | |",
        median(&mut stop) * 1000.0,
        median(&mut settled) * 1000.0
    );
    // A child that ignores SIGTERM: killed at the grace period.
    let t0 = Instant::now();
    let mut c = Command::new(BIN)
        .env("STACKATO_LOCAL_TRUST", "1")
        .args(["run", "--grace", "1", "-e", "IGNORE_TERM=1"])
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_port(port, Duration::from_secs(30)).unwrap();
    let _ = t0;
    let t1 = Instant::now();
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(c.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    );
    let _ = c.wait();
    println!(
        "| shutdown after SIGINT, child ignoring SIGTERM (--grace 1) | | {:.3} s | | | |",
        t1.elapsed().as_secs_f64()
    );
}

fn main() {
    println!("| measure | anchor | stackato-local | ratio / overhead | rate | check |");
    println!("|---|---|---|---|---|---|");
    throughput();
    latency_and_shutdown();
}
