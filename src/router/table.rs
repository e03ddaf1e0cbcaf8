//! TEMPORARY stub of the route table's API (replaced by the engine on merge).
#![allow(dead_code)]
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::Duration;
pub(crate) type TailFn = Arc<dyn Fn() -> Vec<String> + Send + Sync>;
#[derive(Default, Debug)]
pub(crate) struct InstanceStats {
    pub in_flight: AtomicUsize,
    pub tunnels: AtomicUsize,
    pub draining: std::sync::atomic::AtomicBool,
}
#[derive(Clone, Debug)]
pub(crate) struct AppSpec {
    pub name: String,
    pub hosts: Vec<String>,
    pub timeout: Duration,
    pub log_name: String,
}
#[derive(Clone)]
pub(crate) enum RouteEvent {
    Starting {
        app: usize,
        index: u32,
        generation: u64,
        port: u16,
        label: String,
        instance_id: String,
        stats: Arc<InstanceStats>,
        tail: TailFn,
    },
    Ready {
        app: usize,
        index: u32,
        generation: u64,
    },
    Draining {
        app: usize,
        index: u32,
        generation: u64,
    },
    Gone {
        app: usize,
        index: u32,
        generation: u64,
    },
    AppDown {
        app: usize,
        why: String,
    },
}
#[derive(Clone, Default)]
pub(crate) struct RouteTable {
    apps: Vec<AppSpec>,
}
impl RouteTable {
    pub(crate) fn new(apps: Vec<AppSpec>) -> RouteTable {
        RouteTable { apps }
    }
    pub(crate) fn apply(&mut self, ev: RouteEvent) {
        let _ = (ev, &self.apps);
    }
}
