//! One provisioned service instance, as the registry keeps it and the environment advertises
//! it (`VCAP_SERVICES`, `DATABASE_URL`).

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A service instance: its name and type, its local port, and exactly the credentials the
/// environment advertises.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServiceRecord {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// The local port, remembered between runs (`None` for filesystem, user-provided).
    #[serde(default)]
    pub port: Option<u16>,
    /// Exactly what the environment advertises.
    pub credentials: Map<String, Value>,
}
