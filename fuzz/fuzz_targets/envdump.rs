//! Fuzz `env diff FILE`: the dump reader (`env::dump::parse`: `KEY=VALUE` lines, flat JSON,
//! Stackato 2.x JSON dumps), the comparison (`env::diff::diff`, which reads VCAP_SERVICES,
//! STACKATO_SERVICES and VCAP_APPLICATION as JSON and URLs by shape) against a fixed small
//! local environment, and masking (`env::mask::Secrets`) of what would be printed. Any byte
//! string must give `Ok` or `Err`, never a panic, a hang or runaway memory.
//!
//! Bytes are decoded lossily, as `env diff` reads its file. Besides the parsed dump, the raw
//! text is also compared directly as the value of the JSON and URL variables, so the
//! structural comparison sees fuzzed JSON even when the dump itself does not parse.

#![no_main]

use std::collections::BTreeSet;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use stackato_local::api::env::diff::{self, Kind};
use stackato_local::api::env::dump;
use stackato_local::api::env::mask::{self, Secrets};
use stackato_local::api::model::{EnvSet, Layer};
use stackato_local::api::manifest::validate::is_env_name;

const VCAP_SERVICES: &str = r#"{"mysql":[{"name":"db","label":"mysql-5.5","plan":"free","tags":["mysql","relational"],"credentials":{"name":"d1","host":"127.0.0.1","port":3306,"user":"u1","username":"u1","password":"pSecret123"}}],"redis":[{"name":"cache","credentials":{"host":"127.0.0.1","port":6379,"password":"rSecret456"}}],"filesystem":[]}"#;
const STACKATO_SERVICES: &str = r#"{"db":{"name":"d1","host":"127.0.0.1","port":3306,"user":"u1","password":"pSecret123"},"cache":{"host":"127.0.0.1","port":6379,"password":"rSecret456"}}"#;
const VCAP_APPLICATION: &str = r#"{"name":"app","uris":["app.stackato.local"],"limits":{"mem":64,"disk":2048,"fds":16384},"instance_index":0,"host":"0.0.0.0","port":8080,"users":null,"sso_enabled":false}"#;

/// The fixed local side of the comparison.
fn local() -> &'static [(String, String)] {
    static LOCAL: OnceLock<Vec<(String, String)>> = OnceLock::new();
    LOCAL.get_or_init(|| {
        [
            ("VCAP_SERVICES", VCAP_SERVICES),
            ("STACKATO_SERVICES", STACKATO_SERVICES),
            ("VCAP_APPLICATION", VCAP_APPLICATION),
            ("DATABASE_URL", "mysql://u1:pSecret123@127.0.0.1:3306/d1"),
            ("REDIS_URL", "redis://:rSecret456@127.0.0.1:6379"),
            ("HOME", "/home/me/app"),
            ("PORT", "8080"),
            ("PATH", "/usr/bin:/bin"),
            ("A", "1"),
            ("SECRET_KEY", mask::MASK),
            ("API_TOKEN", "tok-abcdef"),
            ("STACKATO_APP_NAME", "app"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    })
}

/// The local secrets, as `env` collects them.
fn local_secrets() -> &'static Secrets {
    static SECRETS: OnceLock<Secrets> = OnceLock::new();
    SECRETS.get_or_init(|| {
        let mut env = EnvSet::new();
        for (k, v) in local() {
            env.set(k, v.clone(), Layer::Platform, "fuzz");
        }
        let mut s = Secrets::new();
        s.add_vars(&env, &["A".to_string()]);
        for v in ["pSecret123", "rSecret456"] {
            s.add(v);
        }
        s
    })
}

/// `diff` gives one item per name of either side, in name order.
fn check_diff(local: &[(String, String)], other: &[(String, String)]) -> Vec<diff::Item> {
    let items = diff::diff(local, other);
    let names: BTreeSet<&str> = local.iter().chain(other).map(|(k, _)| k.as_str()).collect();
    assert_eq!(items.len(), names.len(), "one item per name");
    for (item, name) in items.iter().zip(&names) {
        assert_eq!(item.name, *name, "items in name order");
        if item.kind == Kind::Different {
            assert!(
                !item.details.is_empty(),
                "{} differs without details",
                item.name
            );
        }
    }
    items
}

/// The masked text as `env diff` shows it (cut at 100 characters).
fn show(secrets: &Secrets, v: &Option<String>) -> String {
    v.as_deref()
        .map(|s| {
            let s = secrets.mask(s);
            if s.len() > 100 {
                format!("{}…", s.chars().take(100).collect::<String>())
            } else {
                s
            }
        })
        .unwrap_or_default()
}

fn check_dump(text: &str) {
    let parsed = match dump::parse(text) {
        Ok(d) => d,
        Err(e) => {
            assert!(!e.message.is_empty());
            return;
        }
    };
    for (k, _) in &parsed.vars {
        assert!(is_env_name(k), "dump gave a bad name {k:?}");
    }

    // Secrets: ours, plus theirs found the way `env diff` finds them.
    let mut secrets = local_secrets().clone();
    for (k, v) in &parsed.vars {
        if mask::is_secret_name(k) {
            secrets.add(v);
        }
        if k == "VCAP_SERVICES" || k == "STACKATO_SERVICES" {
            secrets.add_json(v);
        }
        if k.ends_with("_URL")
            && let Some(pw) = mask::url_password(v)
        {
            secrets.add(&pw);
        }
    }
    // And through an `EnvSet`, as `env` does for its own variables.
    let mut env = EnvSet::new();
    for (k, v) in &parsed.vars {
        env.set(k, v.clone(), Layer::DotEnv("dump".into()), "fuzz");
    }
    let hidden: Vec<String> = parsed.vars.iter().take(2).map(|(k, _)| k.clone()).collect();
    secrets.add_vars(&env, &hidden);

    for items in [
        check_diff(local(), &parsed.vars),
        check_diff(&parsed.vars, local()),
    ] {
        for i in &items {
            for d in &i.details {
                let _ = secrets.mask(d);
            }
            let _ = show(&secrets, &i.local);
            let _ = show(&secrets, &i.other);
        }
    }
    // A dump compared with itself is the same everywhere.
    for i in diff::diff(&parsed.vars, &parsed.vars) {
        assert_eq!(i.kind, Kind::Same, "{} differs from itself", i.name);
    }
    for (k, v) in &parsed.vars {
        let _ = secrets.mask_var(k, v);
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    check_dump(&text);

    // The raw text as the value of every structurally compared variable.
    let other: Vec<(String, String)> = [
        "VCAP_SERVICES",
        "STACKATO_SERVICES",
        "VCAP_APPLICATION",
        "DATABASE_URL",
        "SECRET_KEY",
        "HOME",
    ]
    .iter()
    .map(|k| (k.to_string(), text.to_string()))
    .collect();
    check_diff(local(), &other);
    check_diff(&other, local());
    let mut secrets = local_secrets().clone();
    secrets.add_json(&text);
    if let Some(pw) = mask::url_password(&text) {
        secrets.add(&pw);
    }
    let _ = secrets.mask(&text);
});
