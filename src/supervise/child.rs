//! One supervised process: the shell script that runs the pre-running hooks and then execs
//! the command (so hooks' exports and background jobs reach it, as on the platform), spawned
//! in its own process group, with its output pumped line by line to the shared printer.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncReadExt;

use crate::manifest::model::Hook;
use crate::output::{Output, Prefix};

/// Exit status of the script when a pre-running hook failed.
pub(crate) const HOOK_FAILED: i32 = 86;
/// The marker a failing hook prints on stderr (ASCII record separator first).
pub(crate) const MARKER: &str = "\u{1e}stackato-local:";

/// What to run.
#[derive(Debug, Clone)]
pub(crate) struct Spec {
    /// `web.0`, `worker.1`, `cron.0`, or `<app>:web.0` with several apps.
    pub name: String,
    pub app: String,
    /// Hooks to run first, in the same shell.
    pub hooks: Vec<Hook>,
    /// The command line (run by the shell).
    pub command: String,
    pub env: Vec<(String, String)>,
    pub cwd: PathBuf,
    /// The checkout directory the process's files come from (its `cwd` is a staged copy of
    /// it, or the directory itself with `--in-place`): changes there restart it.
    pub source: PathBuf,
    /// For web processes: `$PORT`, which the old process must have let go before a restart.
    pub port: Option<u16>,
    /// Whether `port` must accept connections (a web process with a route).
    pub check: super::health::Check,
    /// How long the port may take.
    pub ready_timeout: Duration,
    /// Give the child a pseudo-terminal instead of pipes.
    pub tty: bool,
    /// A restart starts the new instance first (on [`Spec::alt`]'s port) and stops the old
    /// one once the new one is ready (a web process behind the router).
    pub overlap: bool,
    /// Its second port, and the environment and command that use it.
    pub alt: Option<Arc<AltPort>>,
    /// Behind the router: which app and instance of its route table it is.
    pub route: Option<RouteRef>,
    /// How much of the host environment it gets besides `env` (see [`crate::env::host`]).
    pub host: crate::env::host::Host,
    /// The runtime the app declares (`python27`), for the crash hint (`None`: none).
    pub declared_runtime: Option<String>,
    /// When the declared runtime is not installed and another one runs the app: that
    /// warning and what to install, repeated when the process crashes.
    pub runtime_fallback: Option<String>,
}

/// A web instance's second port: its replacement listens there during an overlap restart while
/// the old process still holds `$PORT`, then the next replacement on `$PORT` again.
#[derive(Debug, Clone)]
pub(crate) struct AltPort {
    pub port: u16,
    /// [`Spec::env`] with the second port (`PORT`, `VCAP_APP_PORT`, `VCAP_APPLICATION`, …).
    pub env: Vec<(String, String)>,
    /// [`Spec::command`] with the second port.
    pub command: String,
}

/// Where a web instance sits in the router's table.
#[derive(Debug, Clone)]
pub(crate) struct RouteRef {
    /// The app's place in the table.
    pub app: usize,
    pub index: u32,
    /// `VCAP_APPLICATION.instance_id` (the affinity cookie's value).
    pub instance_id: String,
}

/// The signal that stops `command`'s process group: SIGTERM, except for a command that runs
/// `uwsgi` itself without `--die-on-term`: uWSGI (2.0) takes SIGTERM as "reload" and would
/// only go at the SIGKILL after the grace period, while SIGINT stops it at once (the
/// platform stopped such apps promptly). `$STACKATO_UWSGI` has `--die-on-term`.
pub(crate) fn stop_signal(command: &str) -> nix::sys::signal::Signal {
    use nix::sys::signal::Signal;
    let words = command.split(|c: char| c.is_whitespace() || ";&|()`'\"".contains(c));
    let mut uwsgi = false;
    for w in words {
        let base = w.rsplit('/').next().unwrap_or(w);
        if base == "uwsgi" || base.starts_with("uwsgi_") {
            uwsgi = true;
        }
        if w == "--die-on-term" || w.starts_with("--die-on-term=") {
            return Signal::SIGTERM;
        }
    }
    if uwsgi {
        Signal::SIGINT
    } else {
        Signal::SIGTERM
    }
}

/// The script: pre-running hooks in order (stopping at the first failure unless it starts
/// with `-`), then `exec` of the command through the shell.
pub(crate) fn script(spec: &Spec) -> String {
    if spec.hooks.is_empty() {
        // Nothing to run first: one shell, which execs a simple command itself.
        return spec.command.clone();
    }
    let mut s = String::from("cd \"$HOME\" 2>/dev/null || true\n");
    for (i, h) in spec.hooks.iter().enumerate() {
        s.push_str(&h.command);
        s.push('\n');
        if !h.ignore_failure {
            s.push_str(&format!(
                "__sl_rc=$?; if [ \"$__sl_rc\" -ne 0 ]; then printf '%s pre-running hook #{} failed with exit status %d: %s\\n' {} \"$__sl_rc\" {} >&2; exit {HOOK_FAILED}; fi\n",
                i + 1,
                crate::shell::quote(MARKER),
                crate::shell::quote(&h.command),
            ));
        }
    }
    s.push_str(&format!(
        "exec {} -c {}\n",
        crate::stage::run::shell(),
        crate::shell::quote(&spec.command)
    ));
    s
}

/// A running child.
pub(crate) struct Running {
    pub pid: i32,
    pub child: tokio::process::Child,
    /// The tasks pumping its output (they end when its pipes close).
    pub output: Vec<tokio::task::JoinHandle<()>>,
}

/// How long, after a process exited, its last output may take to reach the tail (a daemon
/// that keeps the pipe open must not hold up the exit for long; a busy machine may take a
/// while to hand over the last lines of a process that did not leave one).
const LAST_OUTPUT: Duration = Duration::from_secs(1);

impl Running {
    /// Wait for the process to exit, then briefly for its last lines to reach the tail; its
    /// exit status (128+N when killed by signal N, -1 when it cannot be waited for).
    pub(crate) async fn finished(mut self) -> i32 {
        use std::os::unix::process::ExitStatusExt;
        let code = match self.child.wait().await {
            Ok(s) => s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(0)),
            Err(_) => -1,
        };
        let deadline = tokio::time::Instant::now() + LAST_OUTPUT;
        for h in self.output {
            let _ = tokio::time::timeout_at(deadline, h).await;
        }
        code
    }
}

/// The last lines a process printed, and a hook failure if it reported one.
#[derive(Debug, Default)]
pub(crate) struct Tail {
    pub lines: VecDeque<String>,
    pub hook_failure: Option<String>,
    /// The runtime the process's app declares (see [`Spec::declared_runtime`]).
    pub declared_runtime: Option<String>,
    /// See [`Spec::runtime_fallback`].
    pub runtime_fallback: Option<String>,
}

pub(crate) type SharedTail = Arc<Mutex<Tail>>;

/// Spawn `spec` in its own process group (dies with us, registered with the guardian); pump its output through `out` behind `prefix`.
/// Its last lines go to `tail` (the job's, shared by its restarts) and to `own` (this
/// process's alone: the router's error pages for it) when given.
pub(crate) fn spawn(
    spec: &Spec,
    out: &Arc<Output>,
    prefix: &Prefix,
    tail: &SharedTail,
    own: Option<&SharedTail>,
) -> std::io::Result<Running> {
    if let Ok(mut t) = tail.lock() {
        t.declared_runtime.clone_from(&spec.declared_runtime);
        t.runtime_fallback.clone_from(&spec.runtime_fallback);
    }
    let mut cmd = tokio::process::Command::new(crate::stage::run::shell());
    cmd.env_clear().envs(crate::env::host::compose(
        spec.env.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        spec.host,
    ));
    cmd.arg("-c")
        .arg(script(spec))
        .current_dir(&spec.cwd)
        .stdin(Stdio::null())
        .kill_on_drop(false);
    if spec.tty {
        let pty = nix::pty::openpty(None, None).map_err(std::io::Error::from)?;
        let slave: std::fs::File = pty.slave.into();
        cmd.stdout(slave.try_clone()?).stderr(slave);
        let child = crate::process::spawn_async(&mut cmd, crate::process::Tie::Group)?;
        let pid = child.id().unwrap_or(0) as i32;
        let master = tokio::fs::File::from_std(std::fs::File::from(pty.master));
        let output = vec![tokio::spawn(pump(
            master,
            Arc::clone(out),
            prefix.clone(),
            Arc::clone(tail),
            own.cloned(),
        ))];
        return Ok(Running { pid, child, output });
    }
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = crate::process::spawn_async(&mut cmd, crate::process::Tie::Group)?;
    let pid = child.id().unwrap_or(0) as i32;
    let mut output = Vec::new();
    if let Some(o) = child.stdout.take() {
        output.push(tokio::spawn(pump(
            o,
            Arc::clone(out),
            prefix.clone(),
            Arc::clone(tail),
            own.cloned(),
        )));
    }
    if let Some(e) = child.stderr.take() {
        output.push(tokio::spawn(pump(
            e,
            Arc::clone(out),
            prefix.clone(),
            Arc::clone(tail),
            own.cloned(),
        )));
    }
    Ok(Running { pid, child, output })
}

/// How long a partial line may wait for its end before it is printed anyway.
const PARTIAL_FLUSH: Duration = Duration::from_millis(100);
const TAIL_LINES: usize = 20;
/// How much of a line a tail keeps (a process printing megabyte lines must not make each of
/// its tails hold megabytes; verdicts and pages show a line's start).
const TAIL_LINE_BYTES: usize = 4096;

/// `line` as a tail keeps it: text, cut at [`TAIL_LINE_BYTES`] (on a character boundary) with
/// `…` when longer.
fn tail_line(line: &[u8]) -> String {
    if line.len() <= TAIL_LINE_BYTES {
        return String::from_utf8_lossy(line).into_owned();
    }
    let mut s = String::from_utf8_lossy(&line[..TAIL_LINE_BYTES]).into_owned();
    // A character cut in two became U+FFFD at the end: drop it.
    if s.ends_with('\u{FFFD}') {
        s.pop();
    }
    s.push('…');
    s
}

/// Copy a stream to the printer as whole prefixed lines; never split or drop a line; print a
/// partial line after a short pause.
async fn pump<R: tokio::io::AsyncRead + Unpin>(
    mut r: R,
    out: Arc<Output>,
    prefix: Prefix,
    tail: SharedTail,
    own: Option<SharedTail>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    let mut pending: Vec<u8> = Vec::new();
    let mut batch: Vec<u8> = Vec::with_capacity(128 * 1024);
    loop {
        let read = if pending.is_empty() {
            r.read(&mut buf).await
        } else {
            match tokio::time::timeout(PARTIAL_FLUSH, r.read(&mut buf)).await {
                Ok(res) => res,
                Err(_) => {
                    // The line has no end yet: show what there is.
                    let line = std::mem::take(&mut pending);
                    emit(&out, &prefix, (&tail, own.as_ref()), &[&line], &mut batch);
                    continue;
                }
            }
        };
        let n = match read {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        pending.extend_from_slice(&buf[..n]);
        if let Some(last) = pending.iter().rposition(|b| *b == b'\n') {
            let lines: Vec<&[u8]> = pending[..last].split(|b| *b == b'\n').collect();
            emit(&out, &prefix, (&tail, own.as_ref()), &lines, &mut batch);
            pending.drain(..=last);
        }
        if pending.len() > 1024 * 1024 {
            // A megabyte without a newline: print it rather than grow without bound.
            let line = std::mem::take(&mut pending);
            emit(&out, &prefix, (&tail, own.as_ref()), &[&line], &mut batch);
        }
    }
    if !pending.is_empty() {
        emit(
            &out,
            &prefix,
            (&tail, own.as_ref()),
            &[&pending],
            &mut batch,
        );
    }
}

fn emit(
    out: &Output,
    prefix: &Prefix,
    (tail, own): (&SharedTail, Option<&SharedTail>),
    lines: &[&[u8]],
    batch: &mut Vec<u8>,
) {
    batch.clear();
    for l in lines {
        let l = l.strip_suffix(b"\r").unwrap_or(l);
        if l.starts_with(MARKER.as_bytes()) {
            if let Ok(mut t) = tail.lock() {
                t.hook_failure = Some(
                    String::from_utf8_lossy(&l[MARKER.len()..])
                        .trim()
                        .to_string(),
                );
            }
            continue;
        }
        out.format_line(prefix, l, batch);
    }
    if !batch.is_empty() {
        out.write(batch);
    }
    let last: Vec<String> = lines
        .iter()
        .rev()
        .take(TAIL_LINES)
        .rev()
        .map(|l| tail_line(l))
        .collect();
    for t in std::iter::once(tail).chain(own) {
        if let Ok(mut t) = t.lock() {
            t.lines.extend(last.iter().cloned());
            while t.lines.len() > TAIL_LINES {
                t.lines.pop_front();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Output, SharedTail, Spec, spawn, stop_signal};
    use nix::sys::signal::Signal;
    use std::sync::Arc;
    use std::time::Duration;

    fn echo(line: &str) -> Spec {
        Spec {
            name: "web.0".into(),
            app: "a".into(),
            hooks: Vec::new(),
            command: format!("echo {line}; echo {line}-err >&2"),
            env: vec![("PATH".into(), "/usr/bin:/bin".into())],
            cwd: std::env::temp_dir(),
            source: std::env::temp_dir(),
            port: None,
            check: super::super::health::Check::Running,
            ready_timeout: Duration::from_secs(1),
            tty: false,
            overlap: false,
            alt: None,
            route: None,
            host: crate::env::host::Host::Clean,
            declared_runtime: None,
            runtime_fallback: None,
        }
    }

    fn lines(t: &SharedTail) -> Vec<String> {
        let mut l: Vec<String> = t.lock().unwrap().lines.iter().cloned().collect();
        l.sort();
        l
    }

    #[test]
    fn a_tail_keeps_the_start_of_a_huge_line() {
        assert_eq!(super::tail_line(b"short"), "short");
        let huge = "é".repeat(1_000_000);
        let kept = super::tail_line(huge.as_bytes());
        assert!(
            kept.len() <= super::TAIL_LINE_BYTES + '…'.len_utf8(),
            "{}",
            kept.len()
        );
        assert!(kept.ends_with("é…"), "cut inside a character");
    }

    #[tokio::test]
    async fn each_process_has_its_own_tail_beside_the_jobs() {
        let out = Arc::new(Output::new(false, false, false));
        let prefix = out.prefix("web.0", 0);
        let job = SharedTail::default();
        let (old, new) = (SharedTail::default(), SharedTail::default());
        for (line, own) in [("old", &old), ("new", &new)] {
            let r = spawn(&echo(line), &out, &prefix, &job, Some(own)).expect("spawn");
            assert_eq!(r.finished().await, 0);
        }
        assert_eq!(lines(&old), ["old", "old-err"]);
        assert_eq!(lines(&new), ["new", "new-err"]);
        assert_eq!(lines(&job), ["new", "new-err", "old", "old-err"]);
    }

    #[test]
    fn uwsgi_without_die_on_term_gets_sigint() {
        let int = [
            "uwsgi --http :$PORT --master --wsgi-file app.py",
            "exec /usr/bin/uwsgi --ini uwsgi.ini",
            "cd src && uwsgi_python3 --socket :$PORT",
        ];
        for c in int {
            assert_eq!(stop_signal(c), Signal::SIGINT, "{c}");
        }
        let term = [
            "uwsgi --http :$PORT --master --die-on-term --wsgi-file app.py",
            "$STACKATO_UWSGI",
            "python app.py --ini uwsgi.ini",
            "gunicorn app:app",
        ];
        for c in term {
            assert_eq!(stop_signal(c), Signal::SIGTERM, "{c}");
        }
    }
}
