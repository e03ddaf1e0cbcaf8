//! The supervisor's side of the router: it publishes each routed web instance's life into the
//! route table (spawned on a port, ready, draining, gone; an app that crashed too often is
//! down) and drains an instance before its stop signal: no new requests, then the signal once
//! the requests it is answering are done (bounded), so a restart fails none of them.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::watch;

use super::child::{SharedTail, Spec};
use super::events::Event;
use crate::router::table::{InstanceStats, RouteEvent, RouteTable, TailFn};

/// How often a draining instance's in-flight count is looked at.
const DRAIN_POLL: Duration = Duration::from_millis(5);

/// The table's publisher and what it tracks per instance.
pub(super) struct Routing {
    tx: watch::Sender<Arc<RouteTable>>,
    /// Per (job, generation): the counters the router keeps for that instance.
    stats: HashMap<(usize, u64), Arc<InstanceStats>>,
    /// Per job: whether its app was said to be down (it crashed too often).
    down: Vec<bool>,
    /// Per job: the own last lines of the process spawned last (what a page about the next
    /// one shows while that one has printed nothing: why the app went away, say).
    last_tail: Vec<Option<SharedTail>>,
}

impl Routing {
    pub(super) fn new(tx: watch::Sender<Arc<RouteTable>>, jobs: usize) -> Routing {
        Routing {
            tx,
            stats: HashMap::new(),
            down: vec![false; jobs],
            last_tail: vec![None; jobs],
        }
    }

    fn publish(&self, ev: RouteEvent) {
        self.tx.send_modify(|t| Arc::make_mut(t).apply(ev));
    }

    /// Instance `generation` of `job` was spawned, listening (soon) on `port`.
    pub(super) fn starting(
        &mut self,
        job: usize,
        generation: u64,
        spec: &Spec,
        port: u16,
        tail: &SharedTail,
    ) {
        let Some(r) = &spec.route else { return };
        let stats = Arc::new(InstanceStats::default());
        self.stats.insert((job, generation), Arc::clone(&stats));
        self.down[job] = false;
        let before = self
            .last_tail
            .get_mut(job)
            .and_then(|t| t.replace(Arc::clone(tail)));
        let (tail, name) = (Arc::clone(tail), spec.name.clone());
        let tail: TailFn = Arc::new(move || {
            let own = lines(&tail);
            let before = before.as_ref().map(lines).unwrap_or_default();
            if !own.is_empty() || before.is_empty() {
                return own;
            }
            std::iter::once(format!(
                "({name} has printed nothing yet; the last lines of the process before it:)"
            ))
            .chain(before)
            .collect()
        });
        self.publish(RouteEvent::Starting {
            app: r.app,
            index: r.index,
            generation,
            port,
            label: spec.name.clone(),
            instance_id: r.instance_id.clone(),
            stats,
            tail,
        });
    }

    /// Its port answered: it gets requests (an older instance of it is drained).
    pub(super) fn ready(&self, spec: &Spec, generation: u64) {
        if let Some(r) = &spec.route {
            self.publish(RouteEvent::Ready {
                app: r.app,
                index: r.index,
                generation,
            });
        }
    }

    /// It exited.
    pub(super) fn gone(&mut self, job: usize, generation: u64, spec: &Spec) {
        self.stats.remove(&(job, generation));
        if let Some(r) = &spec.route {
            self.publish(RouteEvent::Gone {
                app: r.app,
                index: r.index,
                generation,
            });
        }
    }

    /// Whether its app is down (every instance crashed too often) changed: say so.
    pub(super) fn set_down(&mut self, job: usize, spec: &Spec, down: bool) {
        let Some(r) = &spec.route else { return };
        if self.down[job] == down {
            return;
        }
        self.down[job] = down;
        if down {
            self.publish(RouteEvent::AppDown {
                app: r.app,
                why: format!(
                    "{} kept crashing; it starts again when you change a file (or press r)",
                    spec.name
                ),
            });
        }
    }

    /// It is about to be stopped: no new requests for it. Returns `true` when it can be
    /// signalled now; otherwise a [`Event::Drained`] comes once its requests are done, or
    /// after `limit` (long polls and event streams are cut then).
    pub(super) fn drain(
        &self,
        job: usize,
        generation: u64,
        pid: i32,
        spec: &Spec,
        limit: Duration,
        tx: &UnboundedSender<Event>,
    ) -> bool {
        let Some(r) = &spec.route else { return true };
        let Some(stats) = self.stats.get(&(job, generation)).cloned() else {
            return true;
        };
        // The router counts a request in, then checks it against the newest table: either it
        // sees this update and picks another instance, or the count below sees the request.
        self.publish(RouteEvent::Draining {
            app: r.app,
            index: r.index,
            generation,
        });
        if stats.in_flight.load(Ordering::SeqCst) == 0 {
            return true;
        }
        let tx = tx.clone();
        tokio::spawn(async move {
            let until = tokio::time::Instant::now() + limit;
            while stats.in_flight.load(Ordering::SeqCst) > 0 && tokio::time::Instant::now() < until
            {
                tokio::time::sleep(DRAIN_POLL).await;
            }
            let _ = tx.send(Event::Drained { job, pid });
        });
        false
    }
}

/// The lines in `tail`.
fn lines(tail: &SharedTail) -> Vec<String> {
    tail.lock()
        .map(|t| t.lines.iter().cloned().collect())
        .unwrap_or_default()
}
