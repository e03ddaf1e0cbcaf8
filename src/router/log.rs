//! The access log: one line per request (`GET /path 200 1.3ms web.1`) in the app's prefixed
//! output. Request tasks only format and hand the line to a bounded channel (never blocking;
//! a full channel drops the line and counts it); one printer task writes them in batches.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use hyper::Method;
use tokio::sync::{mpsc, watch};

use super::table::RouteTable;
use crate::output::{Output, Prefix};

/// Lines waiting for the printer at most; more are dropped (and counted).
const QUEUE: usize = 8192;
/// Lines the printer takes at once at most.
const BATCH: usize = 1024;
/// How long the printer lets lines gather after a write that did not take all it could.
const GATHER: std::time::Duration = std::time::Duration::from_millis(20);
/// Paths longer than this (in characters) are cut.
const MAX_PATH: usize = 200;

pub(crate) struct LogLine {
    app: usize,
    log_name: Arc<str>,
    text: String,
}

/// The sending side, shared by all request tasks.
#[derive(Clone)]
pub(crate) struct LogTx {
    tx: mpsc::Sender<LogLine>,
    dropped: Arc<AtomicUsize>,
}

impl LogTx {
    pub(crate) fn send(&self, app: usize, log_name: Arc<str>, text: String) {
        let line = LogLine {
            app,
            log_name,
            text,
        };
        if self.tx.try_send(line).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// A request's log line, sent when its response ends.
pub(crate) struct Pending {
    pub tx: LogTx,
    pub app: usize,
    pub log_name: Arc<str>,
    pub method: Method,
    pub path: String,
    pub status: u16,
    pub start: Instant,
    pub label: Option<Arc<str>>,
}

impl Pending {
    pub(crate) fn send(self) {
        let text = format_line(
            &self.method,
            &self.path,
            self.status,
            self.start.elapsed().as_secs_f64() * 1000.0,
            self.label.as_deref(),
        );
        self.tx.send(self.app, self.log_name, text);
    }
}

/// `GET /path 200 1.3ms web.1`: the path without its query, control characters escaped, cut
/// at [`MAX_PATH`] characters; `-` for no instance.
pub(crate) fn format_line(
    method: &Method,
    path: &str,
    status: u16,
    ms: f64,
    label: Option<&str>,
) -> String {
    let mut s = String::with_capacity(path.len().min(MAX_PATH) + 32);
    s.push_str(method.as_str());
    s.push(' ');
    let path = path.split('?').next().unwrap_or("");
    let mut chars = path.chars();
    for c in chars.by_ref().take(MAX_PATH) {
        if c.is_control() {
            let _ = write!(s, "\\x{:02x}", c as u32);
        } else {
            s.push(c);
        }
    }
    if chars.next().is_some() {
        s.push('…');
    }
    let _ = write!(s, " {status} {ms:.1}ms {}", label.unwrap_or("-"));
    s
}

/// The channel and its printer task (spawn the returned future).
pub(crate) fn channel(
    out: Arc<Output>,
    routes: watch::Receiver<Arc<RouteTable>>,
) -> (LogTx, impl Future<Output = ()>) {
    let (tx, rx) = mpsc::channel(QUEUE);
    let dropped = Arc::new(AtomicUsize::new(0));
    let log_tx = LogTx {
        tx,
        dropped: dropped.clone(),
    };
    (log_tx, printer(rx, routes, out, dropped))
}

async fn printer(
    mut rx: mpsc::Receiver<LogLine>,
    mut routes: watch::Receiver<Arc<RouteTable>>,
    out: Arc<Output>,
    dropped: Arc<AtomicUsize>,
) {
    let mut prefixes: HashMap<(Arc<str>, usize), Prefix> = HashMap::new();
    let mut batch = Vec::new();
    let mut buf = Vec::new();
    reserve(&out, &routes.borrow_and_update());
    loop {
        let n = rx.recv_many(&mut batch, BATCH).await;
        if n == 0 {
            break;
        }
        if routes.has_changed().unwrap_or(false) {
            reserve(&out, &routes.borrow_and_update());
            prefixes.clear();
        }
        buf.clear();
        for line in batch.drain(..) {
            let prefix = prefixes
                .entry((line.log_name.clone(), line.app))
                .or_insert_with(|| out.prefix(&line.log_name, line.app));
            out.format_line(prefix, line.text.as_bytes(), &mut buf);
        }
        let lost = dropped.swap(0, Ordering::Relaxed);
        if lost > 0 {
            let prefix = out.prefix("router", 0);
            let text = format!("({lost} access-log lines dropped: output too slow)");
            out.format_line(&prefix, text.as_bytes(), &mut buf);
        }
        out.write(&buf);
        if n < BATCH {
            // Let lines gather: a wake-up and a write per request would cost the router's
            // thread more than the request itself.
            tokio::time::sleep(GATHER).await;
        }
    }
}

fn reserve(out: &Output, table: &RouteTable) {
    for a in &table.apps {
        out.reserve(&a.spec.log_name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_short_and_clean() {
        assert_eq!(
            format_line(&Method::GET, "/a/b?secret=1", 200, 1.26, Some("web.1")),
            "GET /a/b 200 1.3ms web.1"
        );
        assert_eq!(
            format_line(&Method::POST, "/x\u{1b}[31m\n", 502, 0.0, None),
            "POST /x\\x1b[31m\\x0a 502 0.0ms -"
        );
        let long = format!("/{}", "a".repeat(500));
        let line = format_line(&Method::GET, &long, 404, 2.0, None);
        assert!(
            line.contains('…') && line.chars().count() < MAX_PATH + 30,
            "{line}"
        );
    }
}
