//! TEMPORARY stub of the router's API (replaced by the engine on merge).
#![allow(dead_code)]
pub(crate) mod table;
use std::sync::Arc;
pub(crate) struct Config {
    pub listeners: Vec<std::net::TcpListener>,
    pub show_tails: bool,
    pub access_log: bool,
}
pub(crate) struct Router;
pub(crate) fn start(
    cfg: Config,
    routes: tokio::sync::watch::Receiver<Arc<table::RouteTable>>,
    out: Arc<crate::output::Output>,
) -> std::io::Result<Router> {
    let _ = (cfg, routes, out);
    Ok(Router)
}
impl Drop for Router {
    fn drop(&mut self) {}
}
