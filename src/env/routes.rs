//! The project's router port: chosen once, remembered in the state directory (`ports.json`,
//! key `router`), changed by `run --port`; and the URL a browser opens for an app behind it.

use std::collections::BTreeMap;

use super::build::{BuildError, PORTS, remembered_port};
use crate::manifest::model::App;
use crate::state::StateDir;

/// The key of the router's port in `ports.json` (app keys are `app/instance`).
const KEY: &str = "router";

/// The port the project's router listens on: remembered, or chosen (and remembered) now.
pub(crate) fn port(state: &StateDir) -> Result<u16, BuildError> {
    remembered_port(state, KEY)
}

/// Remember `port` as the router's (`run --port`).
pub(crate) fn set_port(state: &StateDir, port: u16) -> Result<(), BuildError> {
    let _lock = state.lock("ports")?;
    let mut ports: BTreeMap<String, u16> = state.read_json(PORTS)?.unwrap_or_default();
    if ports.get(KEY) != Some(&port) {
        ports.insert(KEY.to_string(), port);
        state.write_json(PORTS, &ports)?;
    }
    Ok(())
}

/// The URL a browser opens for `app` (its first URI), if it has a route.
pub(crate) fn app_url(app: &App, domain: &str, port: u16) -> Option<String> {
    let urls = crate::platform::env::uris(app, domain);
    crate::platform::routes::uris(&urls, port)
        .first()
        .map(|u| format!("http://{u}/"))
}
