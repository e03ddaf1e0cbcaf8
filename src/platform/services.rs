//! What the platform said about each service type: its `VCAP_SERVICES` label and tags, and
//! the shape of the credentials it generated (field names, id formats, types).

use serde_json::{Map, Value, json};

use crate::platform::Profile;
use crate::random::{RandomError, Rng};

/// The loopback address every local service listens on.
pub(crate) const HOST: &str = "127.0.0.1";

/// Relational types: the ones that can become `DATABASE_URL`.
pub(crate) fn is_relational(kind: &str) -> bool {
    matches!(kind, "mysql" | "postgresql" | "oracledb")
}

/// Types that need a network port of their own.
pub(crate) fn has_port(kind: &str) -> bool {
    !matches!(kind, "filesystem" | "user-provided")
}

/// `VCAP_SERVICES` label: `<type>-<version>` as the platform of that profile reported it.
pub(crate) fn label(kind: &str, profile: Profile) -> String {
    let version = match (kind, profile) {
        ("mysql", _) => "5.5",
        ("postgresql", _) => "9.1",
        ("redis", _) => "2.6",
        ("mongodb", Profile::V2) => "2.0",
        ("mongodb", Profile::V3) => "2.4",
        ("memcached", _) => "1.4",
        ("rabbitmq", _) => "2.4",
        ("rabbitmq3", _) => "3.1",
        ("filesystem", _) | ("harbor", _) => "1.0",
        ("user-provided", _) => return "user-provided".into(),
        _ => "1.0",
    };
    format!("{kind}-{version}")
}

/// `VCAP_SERVICES` tags.
pub(crate) fn tags(kind: &str, profile: Profile) -> Vec<String> {
    let l = label(kind, profile);
    let extra: &[&str] = match kind {
        "mysql" | "postgresql" | "oracledb" => &["relational"],
        "redis" | "memcached" => &["key-value", "nosql"],
        "mongodb" => &["nosql"],
        "rabbitmq" | "rabbitmq3" => &["message-queue", "amqp"],
        "harbor" => &["Persistent external ports service"],
        "filesystem" | "user-provided" => return Vec::new(),
        _ => &[],
    };
    let mut t = vec![kind.to_string(), l];
    t.extend(extra.iter().map(|s| s.to_string()));
    t
}

/// Fresh credentials for a new service instance, shaped as the platform shaped them.
/// `port` is the local port; `dir` the directory of a filesystem service.
pub fn generate(
    kind: &str,
    port: Option<u16>,
    dir: Option<&str>,
    user_provided: &[(String, String)],
    rng: &mut dyn Rng,
) -> Result<Map<String, Value>, RandomError> {
    let port = port.map_or(Value::Null, |p| json!(p));
    let v = match kind {
        "mysql" => {
            let user = format!("u{}", rng.alnum(12)?);
            json!({
                "name": format!("d{}", rng.hex(32)?),
                "hostname": HOST, "host": HOST, "port": port,
                "user": user, "username": user,
                "password": format!("p{}", rng.alnum(24)?),
            })
        }
        "postgresql" => {
            let user = format!("u{}", rng.hex(32)?);
            json!({
                "name": format!("d{}", rng.hex(32)?),
                "host": HOST, "hostname": HOST, "port": port,
                "user": user, "username": user,
                "password": format!("p{}", rng.hex(32)?),
            })
        }
        "redis" => json!({
            "hostname": HOST, "host": HOST, "port": port,
            "password": rng.uuid()?, "name": rng.uuid()?,
        }),
        "mongodb" => json!({
            "hostname": HOST, "host": HOST, "port": port,
            "username": rng.uuid()?, "password": rng.uuid()?,
            "name": rng.uuid()?, "db": "db",
        }),
        "memcached" => json!({
            "hostname": HOST, "host": HOST, "port": port,
            "user": rng.hex(16)?, "password": rng.hex(16)?, "name": rng.uuid()?,
        }),
        "rabbitmq" | "rabbitmq3" => {
            let user = rng.alnum(12)?;
            let pass = rng.alnum(24)?;
            let vhost = rng.uuid()?;
            let url = format!(
                "amqp://{user}:{pass}@{HOST}:{}/{vhost}",
                port.as_u64().unwrap_or(5672)
            );
            json!({
                "name": rng.uuid()?, "hostname": HOST, "host": HOST, "port": port,
                "vhost": vhost, "username": user, "user": user,
                "password": pass, "pass": pass, "url": url,
            })
        }
        "harbor" => json!({
            "hostname": HOST, "host": HOST, "port": port,
            "name": rng.uuid()?, "node_id": "harbor_node_1", "int_port": port,
        }),
        "filesystem" => json!({ "dir": dir.unwrap_or_default() }),
        "user-provided" => Value::Object(
            user_provided
                .iter()
                .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                .collect(),
        ),
        _ => {
            let user = format!("u{}", rng.alnum(12)?);
            json!({
                "name": format!("d{}", rng.hex(32)?),
                "hostname": HOST, "host": HOST, "port": port,
                "user": user, "username": user,
                "password": format!("p{}", rng.alnum(24)?),
            })
        }
    };
    Ok(match v {
        Value::Object(m) => m,
        _ => Map::new(),
    })
}

/// The credential fields that are secrets (masked unless `--reveal`).
pub(crate) fn is_secret_field(field: &str) -> bool {
    matches!(
        field.to_ascii_lowercase().as_str(),
        "password" | "pass" | "secret" | "token" | "api_key" | "apikey"
    )
}
