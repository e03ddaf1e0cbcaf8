//! The route table: which host names reach which app, and each app's instances (their ports,
//! whether they take requests). The supervisor owns it and publishes every change through a
//! `tokio::sync::watch` (copy-on-write: `Arc::make_mut(t).apply(ev)`); the router only reads it.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

/// An instance's last output lines (for the error pages).
pub(crate) type TailFn = Arc<dyn Fn() -> Vec<String> + Send + Sync>;

/// Live counters of one instance, shared by the router (which counts) and the supervisor (which
/// waits for `in_flight` to reach 0 before it stops a draining instance).
#[derive(Default, Debug)]
pub(crate) struct InstanceStats {
    /// Requests forwarded to this instance whose response body has not ended (or been dropped).
    pub in_flight: AtomicUsize,
    /// Open upgraded connections (WebSocket); not counted in `in_flight`.
    pub tunnels: AtomicUsize,
}

/// One routed app, as the plan describes it.
#[derive(Clone, Debug)]
pub(crate) struct AppSpec {
    /// The app's name (for pages and logs).
    pub name: String,
    /// Lower-case host names without port: "blog.localhost", "blog.example.com".
    pub hosts: Vec<String>,
    /// How long a request may wait for a ready instance (the app's `timeout:`).
    pub timeout: Duration,
    /// The prefix of its access-log lines: "router" or "blog:router".
    pub log_name: String,
    /// Its web is uWSGI's `--http-socket`, which closes kept-alive connections without saying
    /// so: each request gets a connection of its own from the first one (none is lost to
    /// learn it, a POST included).
    pub fresh_connections: bool,
}

/// A change the supervisor publishes.
#[derive(Clone)]
pub(crate) enum RouteEvent {
    /// An instance was spawned on `port`; not ready yet.
    Starting {
        app: usize,
        index: u32,
        generation: u64,
        port: u16,
        /// "web.0" or "blog:web.0".
        label: String,
        /// VCAP_APPLICATION.instance_id, stable per app+index.
        instance_id: String,
        stats: Arc<InstanceStats>,
        tail: TailFn,
    },
    /// Its port accepts connections: it gets requests from now on. An older generation of the
    /// same (app, index) still in the table is marked draining in the same update (the switch).
    Ready {
        app: usize,
        index: u32,
        generation: u64,
    },
    /// It is being stopped: no new requests (in-flight ones finish).
    Draining {
        app: usize,
        index: u32,
        generation: u64,
    },
    /// Its process exited (crash or stop): removed at once.
    Gone {
        app: usize,
        index: u32,
        generation: u64,
    },
    /// Nothing of the app will be ready until the user changes something: requests get a 503
    /// page with `why` at once instead of waiting. Cleared by the next `Starting`.
    AppDown { app: usize, why: String },
}

/// What does not change about an instance while it is in the table.
pub(crate) struct Instance {
    pub index: u32,
    pub generation: u64,
    pub port: u16,
    pub label: Arc<str>,
    pub instance_id: Arc<str>,
    pub stats: Arc<InstanceStats>,
    pub tail: TailFn,
    /// The table version in which the router saw its port refuse a connection (0: never). It
    /// is skipped until the table changes (the supervisor's `Gone` usually follows).
    suspect: AtomicU64,
    /// It closed a kept-alive connection just as a request went out on it (uWSGI's
    /// `--http-socket` answers HTTP/1.1 without `Connection: close`, then closes): its
    /// requests go on fresh connections from then on.
    no_reuse: AtomicBool,
}

impl Instance {
    /// Mark it unroutable in table version `version` (a connect error).
    pub(crate) fn mark_suspect(&self, version: u64) {
        self.suspect.store(version, Ordering::Relaxed);
    }

    /// Stop reusing connections to it (it closes them without saying so).
    pub(crate) fn mark_no_reuse(&self) {
        self.no_reuse.store(true, Ordering::Relaxed);
    }

    /// Whether its requests need a fresh connection each.
    pub(crate) fn no_reuse(&self) -> bool {
        self.no_reuse.load(Ordering::Relaxed)
    }
}

#[derive(Clone)]
pub(crate) struct Endpoint {
    pub inst: Arc<Instance>,
    pub ready: bool,
    pub draining: bool,
}

/// An app's state in the table.
#[derive(Clone)]
pub(crate) struct AppRoute {
    pub spec: AppSpec,
    pub log_name: Arc<str>,
    /// Set by `AppDown`: requests get a 503 at once.
    pub down: Option<String>,
    /// Round-robin counter; survives `apply` (not a whole new table).
    rr: Arc<AtomicUsize>,
    pub endpoints: Vec<Endpoint>,
    /// The instance removed last, for the 503 page's output when none is left.
    pub last_gone: Option<Arc<Instance>>,
}

/// The table the supervisor publishes.
#[derive(Clone)]
pub(crate) struct RouteTable {
    pub apps: Vec<AppRoute>,
    hosts: HashMap<String, usize>,
    /// Incremented by every `apply`; scopes the suspect marks.
    pub version: u64,
}

impl RouteTable {
    /// The first app is the default for 127.0.0.1 / localhost / [::1] / no Host header.
    pub(crate) fn new(apps: Vec<AppSpec>) -> RouteTable {
        let mut hosts = HashMap::new();
        for (i, spec) in apps.iter().enumerate() {
            for h in &spec.hosts {
                hosts.entry(h.to_ascii_lowercase()).or_insert(i);
            }
        }
        let apps = apps
            .into_iter()
            .map(|spec| AppRoute {
                log_name: Arc::from(spec.log_name.as_str()),
                spec,
                down: None,
                rr: Arc::new(AtomicUsize::new(0)),
                endpoints: Vec::new(),
                last_gone: None,
            })
            .collect();
        RouteTable {
            apps,
            hosts,
            version: 1,
        }
    }

    /// Apply one event; an unknown app or instance is ignored.
    pub(crate) fn apply(&mut self, ev: RouteEvent) {
        self.version += 1;
        match ev {
            RouteEvent::Starting {
                app,
                index,
                generation,
                port,
                label,
                instance_id,
                stats,
                tail,
            } => {
                let Some(a) = self.apps.get_mut(app) else {
                    return;
                };
                a.down = None;
                a.endpoints
                    .retain(|e| !(e.inst.index == index && e.inst.generation == generation));
                // The same program closes connections the same way: a restarted or another
                // instance of an app that did starts without reuse (no request lost to learn it).
                let no_reuse = a.spec.fresh_connections
                    || a.endpoints.iter().any(|e| e.inst.no_reuse())
                    || a.last_gone.as_ref().is_some_and(|i| i.no_reuse());
                a.endpoints.push(Endpoint {
                    inst: Arc::new(Instance {
                        index,
                        generation,
                        port,
                        label: Arc::from(label.as_str()),
                        instance_id: Arc::from(instance_id.as_str()),
                        stats,
                        tail,
                        suspect: AtomicU64::new(0),
                        no_reuse: AtomicBool::new(no_reuse),
                    }),
                    ready: false,
                    draining: false,
                });
            }
            RouteEvent::Ready {
                app,
                index,
                generation,
            } => {
                let Some(a) = self.apps.get_mut(app) else {
                    return;
                };
                if !a
                    .endpoints
                    .iter()
                    .any(|e| e.inst.index == index && e.inst.generation == generation)
                {
                    return;
                }
                for e in &mut a.endpoints {
                    if e.inst.index == index {
                        if e.inst.generation == generation {
                            e.ready = true;
                        } else if e.inst.generation < generation {
                            e.draining = true;
                        }
                    }
                }
            }
            RouteEvent::Draining {
                app,
                index,
                generation,
            } => {
                if let Some(e) = self.endpoint_mut(app, index, generation) {
                    e.draining = true;
                }
            }
            RouteEvent::Gone {
                app,
                index,
                generation,
            } => {
                let Some(a) = self.apps.get_mut(app) else {
                    return;
                };
                if let Some(pos) = a
                    .endpoints
                    .iter()
                    .position(|e| e.inst.index == index && e.inst.generation == generation)
                {
                    let e = a.endpoints.remove(pos);
                    a.last_gone = Some(e.inst);
                }
            }
            RouteEvent::AppDown { app, why } => {
                if let Some(a) = self.apps.get_mut(app) {
                    a.down = Some(why);
                }
            }
        }
    }

    fn endpoint_mut(&mut self, app: usize, index: u32, generation: u64) -> Option<&mut Endpoint> {
        self.apps
            .get_mut(app)?
            .endpoints
            .iter_mut()
            .find(|e| e.inst.index == index && e.inst.generation == generation)
    }

    /// The app a normalised host (lower case, no port, no trailing dot) routes to. `None` for
    /// the request without a host, the loopback names and `extra_default` (the addresses the
    /// router listens on) give the first app.
    pub(crate) fn lookup(&self, host: Option<&str>, extra_default: &[String]) -> Option<usize> {
        let host = match host {
            None | Some("") | Some("127.0.0.1") | Some("localhost") | Some("[::1]") => {
                return (!self.apps.is_empty()).then_some(0);
            }
            Some(h) => h,
        };
        if let Some(&i) = self.hosts.get(host) {
            return Some(i);
        }
        if extra_default.iter().any(|d| d == host) && !self.apps.is_empty() {
            return Some(0);
        }
        None
    }

    /// Whether `e` takes requests in this version of the table.
    pub(crate) fn routable(&self, e: &Endpoint) -> bool {
        e.ready && !e.draining && e.inst.suspect.load(Ordering::Relaxed) != self.version
    }

    /// The instance for the next request of `app`: the routable one whose `instance_id` is
    /// `sticky` if any (the newest generation), else round robin over the routable ones.
    pub(crate) fn pick(&self, app: usize, sticky: Option<&str>) -> Option<Pick> {
        let a = self.apps.get(app)?;
        if let Some(id) = sticky
            && let Some(e) = a
                .endpoints
                .iter()
                .filter(|e| self.routable(e) && &*e.inst.instance_id == id)
                .max_by_key(|e| e.inst.generation)
        {
            return Some(Pick {
                inst: e.inst.clone(),
                sticky_hit: true,
            });
        }
        let n = a.endpoints.iter().filter(|e| self.routable(e)).count();
        if n == 0 {
            return None;
        }
        let k = a.rr.fetch_add(1, Ordering::Relaxed) % n;
        let e = a.endpoints.iter().filter(|e| self.routable(e)).nth(k)?;
        Some(Pick {
            inst: e.inst.clone(),
            sticky_hit: false,
        })
    }

    /// Whether the instance (the very same one) is still routable in this table.
    pub(crate) fn still_routable(&self, app: usize, inst: &Arc<Instance>) -> bool {
        let find = |a: &AppRoute| {
            a.endpoints
                .iter()
                .find(|e| Arc::ptr_eq(&e.inst, inst))
                .is_some_and(|e| self.routable(e))
        };
        match self.apps.get(app) {
            Some(a) if find(a) => true,
            // A whole new table may have renumbered the apps.
            _ => self.apps.iter().any(find),
        }
    }

    /// The instance whose output a 503 page of `app` shows: the newest one in the table, else
    /// the one removed last.
    pub(crate) fn latest(&self, app: usize) -> Option<Arc<Instance>> {
        let a = self.apps.get(app)?;
        a.endpoints
            .iter()
            .max_by_key(|e| e.inst.generation)
            .map(|e| e.inst.clone())
            .or_else(|| a.last_gone.clone())
    }
}

/// The result of [`RouteTable::pick`].
pub(crate) struct Pick {
    pub inst: Arc<Instance>,
    /// It was chosen by the affinity cookie.
    #[cfg_attr(not(test), allow(dead_code))]
    pub sticky_hit: bool,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::router::tests::starting;

    fn spec(name: &str) -> AppSpec {
        AppSpec {
            name: name.into(),
            hosts: vec![format!("{name}.localhost")],
            timeout: Duration::from_secs(1),
            log_name: "router".into(),
            fresh_connections: false,
        }
    }

    fn ports(t: &RouteTable, app: usize) -> Vec<u16> {
        let mut v: Vec<u16> = (0..8)
            .filter_map(|_| t.pick(app, None).map(|p| p.inst.port))
            .collect();
        v.sort();
        v.dedup();
        v
    }

    #[test]
    fn ready_switches_generations_and_gone_removes() {
        let mut t = RouteTable::new(vec![spec("a")]);
        t.apply(starting(0, 0, 1, 1001));
        assert!(t.pick(0, None).is_none(), "starting is not routable");
        t.apply(RouteEvent::Ready {
            app: 0,
            index: 0,
            generation: 1,
        });
        assert_eq!(ports(&t, 0), [1001]);
        t.apply(starting(0, 0, 2, 1002));
        assert_eq!(ports(&t, 0), [1001], "the new one is not ready yet");
        t.apply(RouteEvent::Ready {
            app: 0,
            index: 0,
            generation: 2,
        });
        assert_eq!(ports(&t, 0), [1002], "the switch drains the old one");
        t.apply(RouteEvent::Gone {
            app: 0,
            index: 0,
            generation: 1,
        });
        assert_eq!(t.apps[0].endpoints.len(), 1);
        assert_eq!(t.apps[0].last_gone.as_ref().map(|i| i.port), Some(1001));
        t.apply(RouteEvent::Draining {
            app: 0,
            index: 0,
            generation: 2,
        });
        assert!(t.pick(0, None).is_none());
        assert_eq!(t.latest(0).map(|i| i.port), Some(1002));
    }

    #[test]
    fn unknown_apps_and_instances_are_ignored() {
        let mut t = RouteTable::new(vec![spec("a")]);
        t.apply(starting(5, 0, 1, 1001));
        t.apply(RouteEvent::Ready {
            app: 0,
            index: 3,
            generation: 9,
        });
        t.apply(RouteEvent::Gone {
            app: 7,
            index: 0,
            generation: 1,
        });
        t.apply(RouteEvent::AppDown {
            app: 9,
            why: "x".into(),
        });
        assert!(t.apps[0].endpoints.is_empty());
        assert!(t.apps[0].down.is_none());
    }

    #[test]
    fn app_down_is_cleared_by_starting() {
        let mut t = RouteTable::new(vec![spec("a")]);
        t.apply(RouteEvent::AppDown {
            app: 0,
            why: "crashed".into(),
        });
        assert_eq!(t.apps[0].down.as_deref(), Some("crashed"));
        t.apply(starting(0, 0, 1, 1001));
        assert!(t.apps[0].down.is_none());
    }

    #[test]
    fn suspect_lasts_for_one_table_version() {
        let mut t = RouteTable::new(vec![spec("a")]);
        t.apply(starting(0, 0, 1, 1001));
        t.apply(RouteEvent::Ready {
            app: 0,
            index: 0,
            generation: 1,
        });
        let p = t.pick(0, None).map(|p| p.inst);
        if let Some(inst) = &p {
            inst.mark_suspect(t.version);
        }
        assert!(t.pick(0, None).is_none());
        t.apply(starting(0, 1, 1, 1002));
        assert_eq!(ports(&t, 0), [1001]);
    }

    #[test]
    fn lookup_defaults_and_hosts() {
        let t = RouteTable::new(vec![spec("a"), spec("b")]);
        assert_eq!(t.lookup(None, &[]), Some(0));
        assert_eq!(t.lookup(Some("localhost"), &[]), Some(0));
        assert_eq!(t.lookup(Some("[::1]"), &[]), Some(0));
        assert_eq!(t.lookup(Some("b.localhost"), &[]), Some(1));
        assert_eq!(t.lookup(Some("c.localhost"), &[]), None);
        assert_eq!(t.lookup(Some("10.0.0.5"), &["10.0.0.5".into()]), Some(0));
        assert_eq!(RouteTable::new(vec![]).lookup(None, &[]), None);
    }

    #[test]
    fn sticky_pick_prefers_the_named_instance() {
        let mut t = RouteTable::new(vec![spec("a")]);
        for i in 0..3 {
            t.apply(starting(0, i, 1, 1000 + i as u16));
            t.apply(RouteEvent::Ready {
                app: 0,
                index: i,
                generation: 1,
            });
        }
        for _ in 0..6 {
            let p = t.pick(0, Some("id2"));
            assert_eq!(p.as_ref().map(|p| p.inst.port), Some(1002));
            assert!(p.is_some_and(|p| p.sticky_hit));
        }
        assert!(t.pick(0, Some("nope")).is_some_and(|p| !p.sticky_hit));
        assert_eq!(ports(&t, 0), [1000, 1001, 1002]);
    }
}
