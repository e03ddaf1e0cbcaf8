//! Regression inputs for the manifest reader: every entry of `tests/fuzz_regressions/` must be
//! handled without a panic, a crash (stack overflow, abort), a hang or runaway memory, both by
//! the library (`manifest::load_bytes`) and by the binary (`stackato-local check`, exit 0 or 2).
//!
//! An entry is a file (the content of a `stackato.yml`), or a directory holding an app whose
//! `stackato.yml` inherits the other files in it. Inputs come from the fuzzer
//! (`fuzz/run.sh`; minimise a find with `cargo fuzz tmin` and drop it here) and from hand-made
//! hostile cases (`hostile-*`). Inputs that still fail until a fix lands in `src/` are listed in
//! [`PENDING`]: the ordinary tests skip them, and
//! `cargo test --test fuzz_regressions -- --ignored` runs them (through the binary only, under a
//! memory and time limit, since they crash, hang or eat memory today). Once fixed, delete the
//! entry from [`PENDING`] so the input is checked like all others.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use stackato_local::api::manifest::{self, LoadError, LoadOptions};

/// Where the inputs live.
const DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fuzz_regressions");

/// Inputs that still fail, with why; remove an entry once `src/` handles it.
const PENDING: &[(&str, &str)] = &[];

/// How long one input may take, in a debug build, before we call it a hang.
const TIME_LIMIT: Duration = Duration::from_secs(60);
/// Address-space limit for the binary (KiB), so a memory bomb fails instead of swapping.
#[cfg(unix)]
const MEMORY_LIMIT_KIB: u64 = 2 * 1024 * 1024;

/// Every entry of the folder, sorted by name.
fn entries() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(DIR)
        .expect("read tests/fuzz_regressions")
        .map(|e| e.expect("read dir entry").path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| !n.starts_with('.'))
        })
        .collect();
    v.sort();
    v
}

fn name(p: &Path) -> &str {
    p.file_name().and_then(|n| n.to_str()).unwrap_or_default()
}

fn is_pending(p: &Path) -> bool {
    PENDING.iter().any(|(n, _)| *n == name(p))
}

/// The entries to check in the ordinary tests.
fn settled() -> Vec<PathBuf> {
    entries().into_iter().filter(|p| !is_pending(p)).collect()
}

/// Run `load_bytes` on one entry in its own thread (with a main thread's 8 MiB stack) and
/// describe what went wrong, if anything.
fn load_in_process(entry: &Path) -> Result<(), String> {
    let (bytes, file, opts) = if entry.is_dir() {
        let file = entry.join("stackato.yml");
        let bytes = std::fs::read(&file).map_err(|e| format!("read {}: {e}", file.display()))?;
        (bytes, file, LoadOptions::new(entry))
    } else {
        let bytes = std::fs::read(entry).map_err(|e| format!("read: {e}"))?;
        // As the fuzz target does: a directory that does not exist, so `inherit:` reads nothing.
        (
            bytes,
            PathBuf::from("/nonexistent-fuzz-dir/stackato.yml"),
            LoadOptions::new("/nonexistent-fuzz-dir"),
        )
    };
    let (tx, rx) = mpsc::channel();
    let worker = std::thread::Builder::new()
        .name(format!("load {}", name(entry)))
        .stack_size(8 * 1024 * 1024)
        .spawn(move || {
            let r = manifest::load_bytes(&bytes, &file, &opts, &mut |_q: &str| None);
            let outcome = match r {
                Ok(_) => "ok",
                Err(LoadError::Invalid { .. }) => "invalid",
                Err(LoadError::NotFound { .. }) => "not found",
                Err(LoadError::Unreadable { .. }) => "unreadable",
            };
            let _ = tx.send(outcome);
        })
        .map_err(|e| format!("spawn: {e}"))?;
    match rx.recv_timeout(TIME_LIMIT) {
        Ok("ok" | "invalid") => {
            worker.join().map_err(|_| "panicked".to_string())?;
            Ok(())
        }
        Ok(other) => Err(format!("load_bytes gave an unexpected error kind: {other}")),
        // The sender was dropped without a message: the worker panicked.
        Err(mpsc::RecvTimeoutError::Disconnected) => Err(match worker.join() {
            Err(p) => format!(
                "load_bytes panicked: {}",
                p.downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| p.downcast_ref::<&str>().copied())
                    .unwrap_or("(no message)")
            ),
            Ok(()) => "the worker ended without an answer".into(),
        }),
        // The thread is left running; the test fails anyway.
        Err(mpsc::RecvTimeoutError::Timeout) => {
            Err(format!("load_bytes took more than {TIME_LIMIT:?} (hang?)"))
        }
    }
}

/// Copy a regression entry into a fresh temp dir as an app (`stackato.yml` plus, for a
/// directory entry, its other files).
fn app_dir(entry: &Path) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("stackato-local-fuzz-regression-")
        .tempdir()
        .expect("create temp dir");
    if entry.is_dir() {
        for f in std::fs::read_dir(entry).expect("read entry dir") {
            let f = f.expect("read dir entry").path();
            std::fs::copy(&f, dir.path().join(f.file_name().expect("file name")))
                .expect("copy regression file");
        }
    } else {
        std::fs::copy(entry, dir.path().join("stackato.yml")).expect("copy regression file");
    }
    dir
}

/// What the binary did with one entry.
struct Outcome {
    status: Option<ExitStatus>,
    took: Duration,
    stderr: String,
}

impl Outcome {
    /// Exit 0 (valid) or 2 (invalid), no panic text, no signal, in time.
    fn problem(&self) -> Option<String> {
        let tail = || {
            let s = self.stderr.trim_end();
            let start = s.len().saturating_sub(600);
            let start = (start..=s.len())
                .find(|&i| s.is_char_boundary(i))
                .unwrap_or(s.len());
            format!("stderr ends with:\n{}", &s[start..])
        };
        let Some(status) = self.status else {
            return Some(format!(
                "still running after {:?}: killed (hang?)",
                self.took
            ));
        };
        match status.code() {
            Some(0 | 2)
                if !self.stderr.contains("panicked")
                    && !self.stderr.contains("overflowed its stack") =>
            {
                None
            }
            Some(c) => Some(format!("exit code {c} (want 0 or 2); {}", tail())),
            None => Some(format!("killed by a signal: {status}; {}", tail())),
        }
    }
}

/// `BIN check`, through `sh` so that `ulimit -v` caps its address space.
#[cfg(unix)]
fn check_command(bin: &str) -> Command {
    let mut c = Command::new("sh");
    c.arg("-c")
        .arg(format!(
            "ulimit -v {MEMORY_LIMIT_KIB} 2>/dev/null; exec \"$0\" \"$@\""
        ))
        .arg(bin)
        .arg("check");
    c
}

/// `BIN check`.
#[cfg(not(unix))]
fn check_command(bin: &str) -> Command {
    let mut c = Command::new(bin);
    c.arg("check");
    c
}

/// Run `stackato-local check` on one entry in a temp dir, killing it after `limit`, with the
/// address space capped on Unix so a memory bomb fails fast instead of exhausting the machine.
fn check_with_binary(entry: &Path, limit: Duration) -> Outcome {
    let dir = app_dir(entry);
    let mut cmd = check_command(env!("CARGO_BIN_EXE_stackato-local"));
    // Output goes to files: a pipe nobody reads could fill up and stall the child.
    let out_path = dir.path().join(".stdout");
    let err_path = dir.path().join(".stderr");
    cmd.current_dir(dir.path())
        .env_remove("STACKATO_TARGET")
        .env_remove("RUST_BACKTRACE")
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(File::create(&out_path).expect("create stdout file"))
        .stderr(File::create(&err_path).expect("create stderr file"));
    let started = Instant::now();
    let mut child = cmd.spawn().expect("spawn stackato-local");
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait for stackato-local") {
            break Some(s);
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let took = started.elapsed();
    let stderr =
        String::from_utf8_lossy(&std::fs::read(&err_path).unwrap_or_default()).into_owned();
    Outcome {
        status,
        took,
        stderr,
    }
}

#[test]
fn the_folder_holds_inputs_and_pending_names_exist() {
    let all = entries();
    assert!(
        all.len() >= 10,
        "expected the regression inputs in {DIR}, found {all:?}"
    );
    for (n, why) in PENDING {
        assert!(
            all.iter().any(|p| name(p) == *n),
            "PENDING names {n} ({why}), which is not in {DIR}"
        );
    }
    for p in all.iter().filter(|p| p.is_dir()) {
        assert!(
            p.join("stackato.yml").is_file(),
            "directory entry {} has no stackato.yml",
            p.display()
        );
    }
}

#[test]
fn every_input_loads_in_process_without_panic_or_hang() {
    let mut failures = Vec::new();
    for entry in settled() {
        if let Err(e) = load_in_process(&entry) {
            failures.push(format!("{}: {e}", name(&entry)));
        }
    }
    assert!(
        failures.is_empty(),
        "load_bytes failed on {} input(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_input_is_checked_by_the_binary_with_exit_0_or_2() {
    let mut failures = Vec::new();
    for entry in settled() {
        let o = check_with_binary(&entry, TIME_LIMIT);
        if let Some(p) = o.problem() {
            failures.push(format!("{}: {p}", name(&entry)));
        }
    }
    assert!(
        failures.is_empty(),
        "`stackato-local check` failed on {} input(s):\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

/// The inputs that still fail today. Run with `cargo test --test fuzz_regressions -- --ignored`;
/// this passes once every fix has landed (then empty [`PENDING`]).
#[test]
#[ignore = "known bugs awaiting fixes in src/: see PENDING"]
fn pending_inputs_are_checked_by_the_binary_with_exit_0_or_2() {
    let limit = Duration::from_secs(30);
    let mut failures = Vec::new();
    for (n, why) in PENDING {
        let o = check_with_binary(&Path::new(DIR).join(n), limit);
        if let Some(p) = o.problem() {
            failures.push(format!("{n}: {p}\n  known cause: {why}"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} pending input(s) still fail:\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}
