//! Comparing our environment with one captured in production. Service and application JSON
//! are compared by structure (service names, types, credential fields; keys and value types),
//! URLs by shape (scheme, parts present), paths and ports only by presence, since those differ
//! on a laptop by design. Everything else must be equal.

use std::collections::BTreeSet;

use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// Values or structure differ where they should not.
    Different,
    /// In the dump, not here.
    Missing,
    /// Here, not in the dump.
    Extra,
    /// Present in both; differs as a laptop must (paths, ports, hosts, credentials).
    Expected,
    /// In the dump only, but set by the container or shell rather than the platform's rules.
    Noise,
    Same,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    pub name: String,
    pub kind: Kind,
    pub local: Option<String>,
    pub other: Option<String>,
    /// What differs, in words.
    pub details: Vec<String>,
}

/// Variables whose values differ locally by design: compared by presence only.
fn is_local_by_design(name: &str) -> bool {
    matches!(
        name,
        "HOME"
            | "PORT"
            | "VCAP_APP_PORT"
            | "VCAP_APP_HOST"
            | "PATH"
            | "PYTHONPATH"
            | "STACKATO_APP_ROOT"
            | "STACKATO_DOCUMENT_ROOT"
            | "STACKATO_LOG_FILES"
            | "STACKATO_UWSGI"
            | "PROCESSES_WEB"
            | "BUILDPACK_CACHE"
            | "STACKATO_HARBOR"
    ) || name.starts_with("STACKATO_FILESYSTEM")
        || name.starts_with("STACKATO_HARBOR_")
}

/// Variables a container or login shell adds: not the platform's rules.
fn is_noise(name: &str) -> bool {
    matches!(
        name,
        "SHLVL"
            | "PWD"
            | "OLDPWD"
            | "_"
            | "HOSTNAME"
            | "TERM"
            | "SHELL"
            | "USER"
            | "LOGNAME"
            | "MAIL"
            | "LS_COLORS"
            | "HISTFILE"
            | "HISTSIZE"
            | "EDITOR"
            | "PS1"
            | "TZ"
            | "container"
    ) || name.starts_with("SSH_")
        || name.starts_with("XDG_")
        || name.starts_with("LC_")
        || name.starts_with("BASH_")
}

fn is_url_var(name: &str) -> bool {
    name == "DATABASE_URL" || (name.ends_with("_URL") && name != "STACKATO_TARGET_URL")
}

/// Each name's last value (a dump may repeat a name; the last one wins, as in a shell).
fn last_values(set: &[(String, String)]) -> std::collections::HashMap<&str, &str> {
    set.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// Compare two environments given as name/value pairs.
pub fn diff(local: &[(String, String)], other: &[(String, String)]) -> Vec<Item> {
    let mut names: BTreeSet<&str> = BTreeSet::new();
    names.extend(local.iter().map(|(k, _)| k.as_str()));
    names.extend(other.iter().map(|(k, _)| k.as_str()));
    // The last value of each name (a dump may repeat one), by name: no linear search per name.
    let (li, oi) = (last_values(local), last_values(other));
    names
        .into_iter()
        .map(|n| {
            let l = li.get(n).map(|v| v.to_string());
            let o = oi.get(n).map(|v| v.to_string());
            let (kind, details) = match (&l, &o) {
                (None, Some(_)) if is_noise(n) => (Kind::Noise, Vec::new()),
                (None, Some(_)) => (Kind::Missing, Vec::new()),
                (Some(_), None) => (Kind::Extra, Vec::new()),
                (Some(a), Some(b)) => compare(n, a, b),
                (None, None) => (Kind::Same, Vec::new()),
            };
            Item {
                name: n.to_string(),
                kind,
                local: l,
                other: o,
                details,
            }
        })
        .collect()
}

fn compare(name: &str, local: &str, other: &str) -> (Kind, Vec<String>) {
    if local == other {
        return (Kind::Same, Vec::new());
    }
    // A masked value (our own output without --reveal) can only be compared by presence.
    let mask = crate::env::mask::MASK;
    if (local == mask || other == mask) && !name.ends_with("SERVICES") && name != "VCAP_APPLICATION"
    {
        return (Kind::Expected, Vec::new());
    }
    let d = match name {
        "VCAP_SERVICES" => vcap_services(local, other),
        "STACKATO_SERVICES" => stackato_services(local, other),
        "VCAP_APPLICATION" => structure("VCAP_APPLICATION", local, other, &["name"]),
        _ if is_url_var(name) => url_shape(local, other),
        _ if is_local_by_design(name) => Vec::new(),
        _ => vec!["values differ".into()],
    };
    if d.is_empty() {
        (Kind::Expected, Vec::new())
    } else {
        (Kind::Different, d)
    }
}

fn json(s: &str) -> Option<Value> {
    serde_json::from_str(s).ok()
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Keys and value types, recursively; `equal` keys must also have equal values.
fn structure(what: &str, local: &str, other: &str, equal: &[&str]) -> Vec<String> {
    match (json(local), json(other)) {
        (Some(a), Some(b)) => {
            let mut out = Vec::new();
            shape(what, &a, &b, equal, &mut out);
            out
        }
        (None, _) => vec![format!("{what}: ours is not JSON")],
        (_, None) => vec![format!("{what}: theirs is not JSON")],
    }
}

fn shape(path: &str, a: &Value, b: &Value, equal: &[&str], out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for (k, va) in x {
                let p = format!("{path}.{k}");
                match y.get(k) {
                    None => out.push(format!("{p}: only ours has it")),
                    Some(vb) => {
                        if equal.contains(&k.as_str()) && va != vb {
                            out.push(format!("{p}: ours {va}, theirs {vb}"));
                        } else {
                            shape(&p, va, vb, &[], out);
                        }
                    }
                }
            }
            for k in y.keys().filter(|k| !x.contains_key(*k)) {
                out.push(format!("{path}.{k}: only theirs has it"));
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            if let (Some(fa), Some(fb)) = (x.first(), y.first()) {
                shape(&format!("{path}[]"), fa, fb, &[], out);
            }
        }
        _ if type_name(a) != type_name(b) => out.push(format!(
            "{path}: ours is a {}, theirs a {}",
            type_name(a),
            type_name(b)
        )),
        _ => {}
    }
}

fn object(v: &Option<Value>) -> serde_json::Map<String, Value> {
    match v {
        Some(Value::Object(m)) => m.clone(),
        _ => serde_json::Map::new(),
    }
}

fn keys(v: &Value) -> BTreeSet<String> {
    match v {
        Value::Object(m) => m.keys().cloned().collect(),
        _ => BTreeSet::new(),
    }
}

/// VCAP_SERVICES: same types, same service names per type, same credential fields.
fn vcap_services(local: &str, other: &str) -> Vec<String> {
    let (a, b) = (json(local), json(other));
    if a.is_none() || b.is_none() {
        return vec!["VCAP_SERVICES: not JSON on one side".into()];
    }
    let (a, b) = (object(&a), object(&b));
    let mut out = Vec::new();
    let by_name = |m: &serde_json::Map<String, Value>| {
        let mut v: Vec<(String, String, Value)> = Vec::new();
        for (ty, list) in m {
            for s in list.as_array().into_iter().flatten() {
                let name = s.get("name").and_then(Value::as_str).unwrap_or("?");
                v.push((
                    name.to_string(),
                    ty.clone(),
                    s.get("credentials").cloned().unwrap_or(Value::Null),
                ));
            }
        }
        v
    };
    let (la, lb) = (by_name(&a), by_name(&b));
    for (name, ty, cred) in &la {
        match lb.iter().find(|(n, _, _)| n == name) {
            None => out.push(format!("service \"{name}\" ({ty}): only ours has it")),
            Some((_, ty2, cred2)) => {
                if ty != ty2 {
                    out.push(format!("service \"{name}\": ours is {ty}, theirs {ty2}"));
                }
                let (ka, kb) = (keys(cred), keys(cred2));
                let only_a: Vec<&String> = ka.difference(&kb).collect();
                let only_b: Vec<&String> = kb.difference(&ka).collect();
                if !only_a.is_empty() {
                    out.push(format!(
                        "service \"{name}\": credential fields only ours has: {}",
                        join(&only_a)
                    ));
                }
                if !only_b.is_empty() {
                    out.push(format!(
                        "service \"{name}\": credential fields only theirs has: {}",
                        join(&only_b)
                    ));
                }
            }
        }
    }
    for (name, ty, _) in &lb {
        if !la.iter().any(|(n, _, _)| n == name) {
            out.push(format!("service \"{name}\" ({ty}): only theirs has it"));
        }
    }
    out
}

/// STACKATO_SERVICES: same names, same credential fields.
fn stackato_services(local: &str, other: &str) -> Vec<String> {
    let (a, b) = (object(&json(local)), object(&json(other)));
    let mut out = Vec::new();
    for (n, ca) in &a {
        match b.get(n) {
            None => out.push(format!("service \"{n}\": only ours has it")),
            Some(cb) => {
                if keys(ca) != keys(cb) {
                    out.push(format!(
                        "service \"{n}\": credential fields differ (ours: {}; theirs: {})",
                        join(&keys(ca).iter().collect::<Vec<_>>()),
                        join(&keys(cb).iter().collect::<Vec<_>>())
                    ));
                }
            }
        }
    }
    for n in b.keys().filter(|n| !a.contains_key(*n)) {
        out.push(format!("service \"{n}\": only theirs has it"));
    }
    out
}

fn join(v: &[&String]) -> String {
    v.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
}

/// Scheme and which parts are present: `postgres://u:p@h:1/db` vs `mysql://…`.
fn url_shape(local: &str, other: &str) -> Vec<String> {
    fn parts(u: &str) -> (String, bool, bool, bool) {
        let (scheme, rest) = u.split_once("://").unwrap_or(("", u));
        let (auth, hostpath) = match rest.rsplit_once('@') {
            Some((a, h)) => (Some(a), h),
            None => (None, rest),
        };
        let has_pass = auth.is_some_and(|a| a.contains(':'));
        let has_path = hostpath.split_once('/').is_some_and(|(_, p)| !p.is_empty());
        (scheme.to_string(), auth.is_some(), has_pass, has_path)
    }
    let (a, b) = (parts(local), parts(other));
    let mut out = Vec::new();
    if a.0 != b.0 {
        out.push(format!(
            "scheme differs: ours {}, theirs {}",
            if a.0.is_empty() { "(none)" } else { &a.0 },
            if b.0.is_empty() { "(none)" } else { &b.0 }
        ));
    }
    if a.1 != b.1 || a.2 != b.2 {
        out.push("credentials part differs (user/password present on one side only)".into());
    }
    if a.3 != b.3 {
        out.push("database path differs (present on one side only)".into());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn classifies() {
        let local = kv(&[
            ("HOME", "/x/app"),
            ("DATABASE_URL", "postgres://u:p@127.0.0.1:5/d"),
            ("A", "1"),
            ("ONLY_LOCAL", "x"),
        ]);
        let other = kv(&[
            ("HOME", "/app/app"),
            ("DATABASE_URL", "mysql://u:p@10.0.0.1:3306/d"),
            ("A", "1"),
            ("FOO", "bar"),
            ("SHLVL", "1"),
        ]);
        let d = diff(&local, &other);
        let k = |n: &str| d.iter().find(|i| i.name == n).unwrap().kind;
        assert_eq!(k("HOME"), Kind::Expected);
        assert_eq!(k("DATABASE_URL"), Kind::Different);
        assert_eq!(k("A"), Kind::Same);
        assert_eq!(k("FOO"), Kind::Missing);
        assert_eq!(k("SHLVL"), Kind::Noise);
        assert_eq!(k("ONLY_LOCAL"), Kind::Extra);
    }

    #[test]
    fn services_by_structure() {
        let a = r#"{"mysql":[{"name":"db","credentials":{"host":"1","password":"x"}}]}"#;
        let b = r#"{"mysql":[{"name":"db","credentials":{"host":"2","password":"y"}}]}"#;
        assert_eq!(compare("VCAP_SERVICES", a, b).0, Kind::Expected);
        let c = r#"{"postgresql":[{"name":"db","credentials":{"host":"2"}}]}"#;
        let (k, d) = compare("VCAP_SERVICES", a, c);
        assert_eq!(k, Kind::Different);
        assert!(
            d.iter()
                .any(|x| x.contains("ours is mysql, theirs postgresql")),
            "{d:?}"
        );
    }
}
