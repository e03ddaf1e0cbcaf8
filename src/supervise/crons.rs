//! Running the `cron:` entries: the next minute boundary as a deadline of the event loop, a
//! process per due entry, and their stop with the run (stop signal, SIGKILL after the grace).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::sync::mpsc::UnboundedSender;
use tokio::time::Instant;

use super::child::{self, SharedTail, Spec, Tail};
use super::{CronJob, Event, health};
use crate::output::Output;

pub(super) struct Crons {
    jobs: Vec<CronJob>,
    /// Seconds east of UTC, for the schedules.
    utc_offset: i64,
    /// The process groups of the entries running.
    pub pids: Vec<i32>,
    /// The next check of the schedules.
    next: Option<Instant>,
    /// Entries still running then are killed (the run is stopping).
    kill_at: Option<Instant>,
}

/// Just after the next minute boundary of the wall clock.
fn next_minute() -> Instant {
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis() as u64;
    Instant::now() + Duration::from_millis(60_000 - now_ms % 60_000 + 50)
}

impl Crons {
    pub(super) fn new(jobs: Vec<CronJob>, utc_offset: i64) -> Crons {
        let next = (!jobs.is_empty()).then(next_minute);
        Crons {
            jobs,
            utc_offset,
            pids: Vec::new(),
            next,
            kill_at: None,
        }
    }

    pub(super) fn deadline(&self) -> Option<Instant> {
        [self.next, self.kill_at].into_iter().flatten().min()
    }

    /// The deadline passed: start the entries due this minute, or kill the ones left.
    pub(super) fn tick(&mut self, now: Instant, out: &Arc<Output>, tx: &UnboundedSender<Event>) {
        if self.kill_at.is_some_and(|k| k <= now) {
            self.kill_at = None;
            self.signal(Signal::SIGKILL);
        }
        if self.next.is_some_and(|n| n <= now) {
            self.next = Some(next_minute());
            self.fire(out, tx);
        }
    }

    /// The run stops: no more entries; `kill`: SIGKILL the ones running, else their stop
    /// signal now and SIGKILL after `grace`.
    pub(super) fn stop(&mut self, kill: bool, grace: Duration) {
        self.next = None;
        if kill {
            self.kill_at = None;
            self.signal(Signal::SIGKILL);
        } else {
            self.kill_at = Some(Instant::now() + grace);
            self.signal(Signal::SIGTERM);
        }
    }

    fn signal(&self, sig: Signal) {
        for pid in &self.pids {
            let _ = killpg(Pid::from_raw(*pid), sig);
        }
    }

    /// Entry `name` (process group `pid`) ended with `code`.
    pub(super) fn exited(&mut self, out: &Output, name: &str, pid: i32, code: i32) {
        self.pids.retain(|p| *p != pid);
        crate::process::forget_group(pid);
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
        if code != 0 {
            out.note(&format!("{name}: cron job exited with status {code}"));
        }
    }

    fn fire(&mut self, out: &Arc<Output>, tx: &UnboundedSender<Event>) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let tm = super::cron::Tm::from_unix(now, self.utc_offset);
        let due: Vec<CronJob> = self
            .jobs
            .iter()
            .filter(|c| c.schedule.matches(&tm))
            .cloned()
            .collect();
        for job in due {
            let spec = Spec {
                name: job.name.clone(),
                app: String::new(),
                hooks: Vec::new(),
                command: job.command.clone(),
                env: job.env.clone(),
                cwd: job.cwd.clone(),
                source: job.cwd.clone(),
                port: None,
                check: health::Check::Running,
                ready_timeout: Duration::from_secs(1),
                tty: false,
                overlap: false,
                alt: None,
                route: None,
                host: job.host,
                declared_runtime: None,
                runtime_fallback: None,
            };
            let prefix = out.prefix(&job.name, 9);
            let tail: SharedTail = Arc::new(Mutex::new(Tail::default()));
            match child::spawn(&spec, out, &prefix, &tail, None) {
                Ok(running) => {
                    let pid = running.pid;
                    self.pids.push(pid);
                    let tx = tx.clone();
                    let name = job.name.clone();
                    let mut ch = running.child;
                    tokio::spawn(async move {
                        let code = ch.wait().await.ok().and_then(|s| s.code()).unwrap_or(-1);
                        let _ = tx.send(Event::CronExited { name, pid, code });
                    });
                }
                Err(e) => out.error(&format!("{}: cron job could not start: {e}", job.name)),
            }
        }
    }
}
