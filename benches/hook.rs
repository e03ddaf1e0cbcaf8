//! The shell hook's cost at a prompt when nothing changed (the common case), and a full load.
//! Run with `cargo bench --bench hook`. Target: under 20 ms when nothing changed.
#![allow(clippy::disallowed_methods)] // tests drive the real binary from outside

use std::process::Command;
use std::time::Instant;

const BIN: &str = env!("CARGO_BIN_EXE_stackato-local");

fn main() {
    let root = tempfile::tempdir().unwrap();
    let proj = root.path().join("proj");
    std::fs::create_dir(&proj).unwrap();
    std::fs::write(
        proj.join("stackato.yml"),
        "name: hooked\nenv:\n  GREETING: hello\nservices:\n  hooked-cache: memcached\n",
    )
    .unwrap();
    let home = root.path().join("home");
    std::fs::create_dir(&home).unwrap();
    let run = |extra: &[(&str, &str)]| {
        let mut c = Command::new(BIN);
        c.args(["__hook-env", "bash"])
            .current_dir(&proj)
            .env("HOME", &home)
            .env_remove("XDG_DATA_HOME");
        for (k, v) in extra {
            c.env(k, v);
        }
        c.output().unwrap()
    };
    assert!(
        Command::new(BIN)
            .arg("allow")
            .current_dir(&proj)
            .env("HOME", &home)
            .env_remove("XDG_DATA_HOME")
            .output()
            .unwrap()
            .status
            .success()
    );
    // A full load, then capture the bookkeeping variables it sets.
    let t0 = Instant::now();
    let first = run(&[]);
    let full = t0.elapsed();
    let text = String::from_utf8_lossy(&first.stdout).into_owned();
    let get = |k: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("export {k}='")))
            .map(|v| v.trim_end_matches("';").replace("'\\''", "'"))
            .unwrap()
    };
    let (dir, stamp, backup) = (
        get("STACKATO_LOCAL_DIR"),
        get("STACKATO_LOCAL_STAMP"),
        get("STACKATO_LOCAL_BACKUP"),
    );
    let mut times = Vec::new();
    for _ in 0..50 {
        let t0 = Instant::now();
        let out = run(&[
            ("STACKATO_LOCAL_DIR", &dir),
            ("STACKATO_LOCAL_STAMP", &stamp),
            ("STACKATO_LOCAL_BACKUP", &backup),
        ]);
        times.push(t0.elapsed().as_secs_f64() * 1000.0);
        assert!(out.stdout.is_empty(), "nothing changed, nothing to print");
    }
    times.sort_by(|a, b| a.total_cmp(b));
    println!("| shell hook | time |");
    println!("|---|---|");
    println!(
        "| full load (manifest, services' credentials, env) | {:.1} ms |",
        full.as_secs_f64() * 1000.0
    );
    println!(
        "| prompt with nothing changed (median of 50) | {:.1} ms (p90 {:.1} ms; target < 5 ms) |",
        times[25], times[45]
    );
}
