//! A running `stackato-local run`: the real binary as a child, its stdout and stderr read by
//! threads into buffers the tests wait on (`==>` phase lines on stderr, `name | line` output on
//! stdout), signals, the exit code, and everything printed for failure messages.
//!
//! The two pipes are read by two threads: what the run wrote to one before it wrote the line
//! a test waited for on the other may be read after that line. So a test waits for what it
//! expects on the other stream too ([`Session::wait_for`], [`Session::wait_line`],
//! [`Session::has`] and the `assert_*_has` built on it), or looks once the run has ended
//! ([`Session::poll_exit`] reads both pipes to their end).

#![allow(dead_code)]

use std::io::Read;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use super::cmd;

/// What a reader thread has read so far.
pub type Buf = Arc<Mutex<Vec<u8>>>;

/// One of the run's output streams.
#[derive(Clone, Copy, Debug)]
pub enum Stream {
    Out,
    Err,
}

/// `stackato-local run` as a child, its stdout and stderr read by threads into buffers.
/// Dropping it SIGKILLs the run if it still runs (its guardian then cleans up after it).
pub struct Session {
    pub child: Child,
    pub pid: i32,
    pub out: Buf,
    pub err: Buf,
    readers: Vec<JoinHandle<()>>,
    pub args: Vec<String>,
    /// `None` while it runs; then its exit code (128+N when killed by signal N).
    pub exit: Option<Option<i32>>,
}

fn reader(mut r: impl Read + Send + 'static, buf: Buf) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut chunk = vec![0u8; 256 * 1024];
        loop {
            match r.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.lock().unwrap().extend_from_slice(&chunk[..n]),
            }
        }
    })
}

/// Where `needle` occurs in `hay` at or after `from`.
fn find_from(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() {
        return Some(from.min(hay.len()));
    }
    hay.get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| p + from)
}

impl Session {
    /// Start `stackato-local run <args>` in `dir`, with extra environment variables.
    pub fn start(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Session {
        Session::start_sub(dir, "run", args, env)
    }

    /// Start `stackato-local <sub> <args>` in `dir` (`exec` beside a `run`, …).
    pub fn start_sub(dir: &Path, sub: &str, args: &[&str], env: &[(&str, &str)]) -> Session {
        let mut c = cmd(dir);
        c.envs(env.iter().copied());
        c.arg(sub)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = c.spawn().expect("start stackato-local run");
        let out: Buf = Arc::default();
        let err: Buf = Arc::default();
        let readers = vec![
            reader(child.stdout.take().expect("stdout"), Arc::clone(&out)),
            reader(child.stderr.take().expect("stderr"), Arc::clone(&err)),
        ];
        Session {
            pid: child.id() as i32,
            child,
            out,
            err,
            readers,
            args: std::iter::once(sub)
                .chain(args.iter().copied())
                .map(str::to_string)
                .collect(),
            exit: None,
        }
    }

    fn buf(&self, s: Stream) -> &Buf {
        match s {
            Stream::Out => &self.out,
            Stream::Err => &self.err,
        }
    }

    /// What `stream` printed so far.
    pub fn text(&self, s: Stream) -> String {
        String::from_utf8_lossy(&self.buf(s).lock().unwrap()).into_owned()
    }

    pub fn stdout(&self) -> String {
        self.text(Stream::Out)
    }

    pub fn stderr(&self) -> String {
        self.text(Stream::Err)
    }

    /// How many times `needle` occurs in `stream` so far.
    pub fn count(&self, s: Stream, needle: &str) -> usize {
        self.text(s).matches(needle).count()
    }

    /// Everything it printed so far, for failure messages (long stdout is cut in the middle).
    pub fn dump(&self) -> String {
        let mut out = self.stdout();
        if out.len() > 20_000 {
            let head: String = out.chars().take(8_000).collect();
            let tail: String = {
                let v: Vec<char> = out.chars().rev().take(8_000).collect();
                v.into_iter().rev().collect()
            };
            out = format!("{head}\n[… {} bytes …]\n{tail}", out.len());
        }
        format!(
            "args: {:?}\nexit: {:?}\n--- stdout ---\n{out}\n--- stderr ---\n{}",
            self.args,
            self.exit,
            self.stderr()
        )
    }

    /// Whether the run has ended (and record how).
    pub fn poll_exit(&mut self) -> bool {
        if self.exit.is_some() {
            return true;
        }
        if let Ok(Some(st)) = self.child.try_wait() {
            use std::os::unix::process::ExitStatusExt;
            self.exit = Some(st.code().or_else(|| st.signal().map(|s| 128 + s)));
            // Let the readers catch up with what is still in the pipes (a guardian that is
            // still cleaning up may hold stderr a little longer).
            let t0 = Instant::now();
            while self.readers.iter().any(|r| !r.is_finished())
                && t0.elapsed() < Duration::from_secs(10)
            {
                std::thread::sleep(Duration::from_millis(10));
            }
            return true;
        }
        false
    }

    /// Wait until `stream` has `count` occurrences of `needle`; return the time it took.
    /// Panics (with everything printed) on timeout, or when the run ends first.
    #[track_caller]
    pub fn wait_count(
        &mut self,
        s: Stream,
        needle: &str,
        count: usize,
        within: Duration,
    ) -> Duration {
        let t0 = Instant::now();
        let n = needle.as_bytes();
        let mut found = 0;
        let mut from = 0;
        loop {
            let ended = self.poll_exit();
            {
                let b = self.buf(s).lock().unwrap();
                while found < count {
                    match find_from(&b, n, from) {
                        Some(p) => {
                            found += 1;
                            from = p + n.len();
                        }
                        None => break,
                    }
                }
            }
            if found >= count {
                return t0.elapsed();
            }
            if ended {
                panic!(
                    "the run ended before {s:?} had {count}× {needle:?} (found {found})\n{}",
                    self.dump()
                );
            }
            if t0.elapsed() > within {
                panic!(
                    "no {count}× {needle:?} on {s:?} within {within:?} (found {found})\n{}",
                    self.dump()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Wait for `needle` on `stream`; return the time it took.
    #[track_caller]
    pub fn wait_for(&mut self, s: Stream, needle: &str, within: Duration) -> Duration {
        self.wait_count(s, needle, 1, within)
    }

    /// Wait for `needle` on stderr; return the time it took.
    #[track_caller]
    pub fn wait_err(&mut self, needle: &str, within: Duration) -> Duration {
        self.wait_for(Stream::Err, needle, within)
    }

    /// Wait until process `name` printed `count` lines starting with `start` (whatever the
    /// padding of its prefix); return the time it took.
    #[track_caller]
    pub fn wait_line(
        &mut self,
        name: &str,
        start: &str,
        count: usize,
        within: Duration,
    ) -> Duration {
        let t0 = Instant::now();
        loop {
            let ended = self.poll_exit();
            let found = self
                .lines_of(name)
                .iter()
                .filter(|l| l.starts_with(start))
                .count();
            if found >= count {
                return t0.elapsed();
            }
            if ended || t0.elapsed() > within {
                panic!(
                    "no {count}× `{name} | {start}…` within {within:?} (found {found}; ended: {ended})\n{}",
                    self.dump()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Wait for `==> <name> ready at http://127.0.0.1:PORT` and return the port.
    #[track_caller]
    pub fn ready(&mut self, name: &str, within: Duration) -> u16 {
        self.ready_nth(name, 1, within)
    }

    /// Wait for the `n`th `==> <name> ready at http://127.0.0.1:PORT` line (from 1) and return
    /// the port it names.
    #[track_caller]
    pub fn ready_nth(&mut self, name: &str, n: usize, within: Duration) -> u16 {
        let needle = format!("==> {name} ready at http://127.0.0.1:");
        self.wait_count(Stream::Err, &needle, n, within);
        let err = self.stderr();
        let (at, _) = err.match_indices(&needle).nth(n - 1).unwrap();
        let digits: String = err[at + needle.len()..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits
            .parse()
            .unwrap_or_else(|_| panic!("no port after {needle:?}\n{}", self.dump()))
    }

    /// For `within`, assert that each `(stream, needle, n)` keeps exactly `n` occurrences
    /// (fails as soon as one differs) and that the run keeps running.
    #[track_caller]
    pub fn stays(&mut self, within: Duration, expect: &[(Stream, &str, usize)]) {
        let t0 = Instant::now();
        loop {
            for &(s, needle, n) in expect {
                let got = self.count(s, needle);
                assert_eq!(
                    got,
                    n,
                    "after {:.2} s of waiting: {needle:?} on {s:?} {got}× instead of {n}×\n{}",
                    t0.elapsed().as_secs_f64(),
                    self.dump()
                );
            }
            assert!(!self.poll_exit(), "the run ended\n{}", self.dump());
            if t0.elapsed() >= within {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Send `sig` to the run.
    pub fn signal(&self, sig: Signal) {
        let _ = kill(Pid::from_raw(self.pid), sig);
    }

    /// Wait for the run to end; its exit code (128+N when killed by signal N).
    #[track_caller]
    pub fn wait_exit(&mut self, within: Duration) -> i32 {
        let t0 = Instant::now();
        while !self.poll_exit() {
            if t0.elapsed() > within {
                panic!("the run did not end within {within:?}\n{}", self.dump());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.exit.flatten().unwrap_or(-1)
    }

    /// Wait for the end and assert its exit code, and that nothing panicked.
    #[track_caller]
    pub fn expect_exit(&mut self, code: i32, within: Duration) {
        let got = self.wait_exit(within);
        assert_eq!(got, code, "unexpected exit code\n{}", self.dump());
        assert!(
            !self.stderr().contains("panicked"),
            "the binary panicked\n{}",
            self.dump()
        );
    }

    /// Send `sig`, then wait up to `within` for the end and assert exit `code` (and no
    /// panic); the time from the signal to the end.
    #[track_caller]
    pub fn stop(&mut self, sig: Signal, code: i32, within: Duration) -> Duration {
        let t0 = Instant::now();
        self.signal(sig);
        self.expect_exit(code, within);
        t0.elapsed()
    }

    /// Ctrl-C, then wait up to `within` for the end; asserts exit 130 (and no panic) and
    /// returns the stderr.
    #[track_caller]
    pub fn interrupt(&mut self, within: Duration) -> String {
        self.signal(Signal::SIGINT);
        self.expect_exit(130, within);
        self.stderr()
    }

    /// The text after `name | ` of each stdout line of process `name`, in order.
    pub fn lines_of(&self, name: &str) -> Vec<String> {
        self.stdout()
            .lines()
            .filter_map(|l| {
                let (n, rest) = l.split_once(" | ")?;
                (n.trim_end() == name).then(|| rest.to_string())
            })
            .collect()
    }

    /// The stderr lines containing `needle`.
    pub fn err_lines(&self, needle: &str) -> Vec<String> {
        self.stderr()
            .lines()
            .filter(|l| l.contains(needle))
            .map(str::to_string)
            .collect()
    }

    /// Whether `stream` has `needle`, waiting for it (up to [`SHORT`](super::SHORT)) while
    /// more may still come on it (its pipe is open). stdout and stderr are two pipes read by
    /// two threads, and one line may be written in several pieces: what was written before
    /// the text a test waited for, on the other stream or in another write, may be read after
    /// it. Once the stream's pipe closed (the run ended and [`Session::poll_exit`] drained
    /// it), only what it printed counts.
    pub fn has(&self, s: Stream, needle: &str) -> bool {
        let reader = match s {
            Stream::Out => &self.readers[0],
            Stream::Err => &self.readers[1],
        };
        let t0 = Instant::now();
        loop {
            // Finished before looking: then the text looked at is the whole stream.
            let closed = reader.is_finished();
            if self.text(s).contains(needle) {
                return true;
            }
            if closed || t0.elapsed() > super::SHORT {
                return false;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Assert stderr has `needle` (waiting for it while the run may still print it: see
    /// [`Session::has`]).
    #[track_caller]
    pub fn assert_err_has(&self, needle: &str) {
        assert!(
            self.has(Stream::Err, needle),
            "stderr lacks {needle:?}\n{}",
            self.dump()
        );
    }

    /// Assert stdout has `needle` (waiting for it while the run may still print it: see
    /// [`Session::has`]).
    #[track_caller]
    pub fn assert_out_has(&self, needle: &str) {
        assert!(
            self.has(Stream::Out, needle),
            "stdout lacks {needle:?}\n{}",
            self.dump()
        );
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        if !self.poll_exit() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
