//! `run`'s router: its port bound before anything starts (remembered for the project,
//! `--port` to change it, a busy one said at once), `--bind` beyond loopback with a warning,
//! the router started on it, and the URLs announced when the apps start.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};
use std::sync::Arc;

use crate::exit;
use crate::output::Output;
use crate::router::table::{AppSpec, RouteTable};
use crate::state::StateDir;

/// The router of a run; stopped when dropped.
pub(crate) struct Running {
    router: crate::router::Router,
    port: u16,
    loopback: bool,
}

/// Bind the router's port and start it; `Err` is the exit code (said on `out`).
pub(crate) fn start(
    args: &super::run::Args,
    state: &StateDir,
    out: &Arc<Output>,
    routes: tokio::sync::watch::Receiver<Arc<RouteTable>>,
) -> Result<Running, i32> {
    let ip = args.bind.unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let loopback = ip.is_loopback();
    if !loopback {
        out.note(&format!(
            "warning: --bind {ip}: the router answers other machines too (everything this project runs becomes reachable from the network); its error pages no longer show the apps' output"
        ));
    }
    let remembered = match crate::env::routes::port(state) {
        Ok(p) => p,
        Err(e) => {
            out.error(&format!("cannot choose the router's port: {e}"));
            return Err(exit::IO);
        }
    };
    let wanted = args.port.unwrap_or(remembered);
    let listener = match TcpListener::bind(SocketAddr::new(ip, wanted)) {
        Ok(l) => l,
        Err(e) if args.port.is_none() && e.kind() == std::io::ErrorKind::AddrInUse => {
            // The remembered port went to another program: another one, remembered instead.
            match TcpListener::bind(SocketAddr::new(ip, 0)) {
                Ok(l) => {
                    if let Ok(a) = l.local_addr() {
                        out.note(&format!(
                            "note: the router's port {wanted} is taken by another program; it now uses {} (remembered; `run --port N` chooses one)",
                            a.port()
                        ));
                    }
                    l
                }
                Err(e) => return Err(bind_error(out, ip, 0, &e)),
            }
        }
        Err(e) => return Err(bind_error(out, ip, wanted, &e)),
    };
    let port = listener.local_addr().map_or(wanted, |a| a.port());
    if port != remembered
        && let Err(e) = crate::env::routes::set_port(state, port)
    {
        out.note(&format!(
            "warning: cannot remember the router's port {port}: {e}"
        ));
    }
    let mut listeners = vec![listener];
    // Browsers and curl may try ::1 first for `*.localhost`: the same port there if it binds.
    if ip == IpAddr::V4(Ipv4Addr::LOCALHOST)
        && let Ok(l6) = TcpListener::bind(SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), port))
    {
        listeners.push(l6);
    }
    let cfg = crate::router::Config {
        listeners,
        show_tails: loopback,
        access_log: !args.quiet_router,
    };
    match crate::router::start(cfg, routes, Arc::clone(out)) {
        Ok(r) => Ok(Running {
            router: r,
            port,
            loopback,
        }),
        Err(e) => {
            out.error(&format!("cannot start the router: {e}"));
            Err(exit::IO)
        }
    }
}

fn bind_error(out: &Output, ip: IpAddr, port: u16, e: &std::io::Error) -> i32 {
    let hint = if e.kind() == std::io::ErrorKind::AddrInUse {
        "another program (another `run`?) listens there; choose another with `run --port N`, or `--no-router`"
    } else {
        "choose another address with `--bind`, or `--no-router`"
    };
    out.error(&format!(
        "the router cannot listen on {}: {e}\nhelp: {hint}",
        SocketAddr::new(ip, port)
    ));
    exit::PORT
}

impl Running {
    /// Stop the router (in-flight requests get a moment to finish).
    pub(crate) fn stop(self) {
        drop(self.router);
    }

    /// Say where each app answers; a host name two apps share goes to the first (said).
    pub(crate) fn announce(&self, out: &Output, apps: &[AppSpec]) {
        let mut claimed: Vec<(&str, &str)> = Vec::new();
        for (i, a) in apps.iter().enumerate() {
            let mut own = Vec::new();
            for h in &a.hosts {
                match claimed.iter().find(|(c, _)| c == h) {
                    Some((_, first)) => out.note(&format!(
                        "note: {h} is a URL of {} and of {first}: it goes to {first}",
                        a.name
                    )),
                    None => {
                        claimed.push((h.as_str(), a.name.as_str()));
                        own.push(h.as_str());
                    }
                }
            }
            let also = if i == 0 && self.loopback {
                format!(" (and http://127.0.0.1:{}/)", self.port)
            } else {
                String::new()
            };
            match own.first() {
                Some(h) => out.phase(&format!("{}: http://{h}:{}/{also}", a.name, self.port)),
                None if i == 0 => {
                    out.phase(&format!("{}: http://127.0.0.1:{}/", a.name, self.port));
                }
                None => out.note(&format!(
                    "note: {} has no URL of its own behind the router",
                    a.name
                )),
            }
        }
    }
}
