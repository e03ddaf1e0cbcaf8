//! Golden tests for the platform environment: the worked example of the spec (§3.7, app
//! `stackto-demo` with `${name}-db: mysql` and `${name}-memcached: memcached`) under both
//! profiles, with credentials from a fixed seed, and the 2.x shapes checked against a real
//! Stackato 2.x dump. Regenerate the golden files with `UPDATE_GOLDEN=1 cargo test --test env_golden`.

use std::path::{Path, PathBuf};

use serde_json::Value;
use stackato_local::api::manifest::{self, LoadOptions, Loaded};
use stackato_local::api::model::EnvSet;
use stackato_local::api::model::ServiceRecord;
use stackato_local::api::platform::Profile;
use stackato_local::api::platform::env::{self as penv, Binding, DbUrlRule, Facts, SqliteEnv};
use stackato_local::api::platform::layout::Layout;
use stackato_local::api::platform::services as shapes;
use stackato_local::api::random::SeededRng;

const SEED_MANIFEST: &str = "\
name: stackto-demo
framework:
  type: python
  runtime: python27
min_version:
  client: 1.5.1
env:
  DJANGO_SETTINGS_MODULE: settings.production
services:
  ${name}-db: mysql
  ${name}-memcached: memcached
processes:
  web: $STACKATO_UWSGI --check-static $HOME/static --check-static $HOME/media
";

fn load(dir: &Path, text: &str) -> Loaded {
    let file = dir.join("stackato.yml");
    std::fs::write(&file, text).unwrap();
    let mut ask = |_: &str| None;
    match manifest::load_bytes(text.as_bytes(), &file, &LoadOptions::new(dir), &mut ask) {
        Ok(l) => l,
        Err(e) => panic!("manifest did not load: {e:?}"),
    }
}

fn facts() -> Facts {
    Facts {
        now: 1_357_000_000,
        user: "dev".into(),
        domain: "stackato.local".into(),
        path: "/usr/bin:/bin".into(),
        perl5lib: None,
        lang: "en_US.UTF-8".into(),
    }
}

/// The seed app's services with credentials from a fixed seed, on the platform's ports.
fn records(seed: u64) -> Vec<ServiceRecord> {
    let mut rng = SeededRng::new(seed);
    [
        ("stackto-demo-db", "mysql", 3306),
        ("stackto-demo-memcached", "memcached", 11211),
    ]
    .iter()
    .map(|(name, kind, port)| ServiceRecord {
        name: name.to_string(),
        kind: kind.to_string(),
        port: Some(*port),
        credentials: shapes::generate(kind, Some(*port), None, &[], &mut rng).unwrap(),
    })
    .collect()
}

fn runtime_env(loaded: &Loaded, profile: Profile, seed: u64) -> EnvSet {
    let app = &loaded.manifest.apps[0];
    let layout = Layout::new(&loaded.manifest.dir, app, 0, false, Default::default());
    let bindings: Vec<Binding> = records(seed)
        .into_iter()
        .map(|record| Binding {
            record,
            sqlite: None,
        })
        .collect();
    let f = facts();
    let input = penv::Input {
        manifest: &loaded.manifest,
        app,
        profile,
        layout: &layout,
        instance: 0,
        port: 5000,
        bindings: &bindings,
        facts: &f,
        db_url_rule: DbUrlRule::Relational,
        sqlite_env: SqliteEnv::Omit,
        router_port: None,
    };
    penv::runtime(&input)
}

fn render(env: &EnvSet, dir: &Path) -> String {
    let d = dir.display().to_string();
    let mut out = String::new();
    for (k, v) in env.sorted_pairs() {
        out.push_str(&format!("{k}={}\n", v.replace(&d, "/APP")));
    }
    out
}

fn golden(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}; run with UPDATE_GOLDEN=1", path.display()));
    if expected != actual {
        for (a, b) in expected.lines().zip(actual.lines()) {
            if a != b {
                panic!("golden {name} differs:\n  expected: {a}\n  actual:   {b}");
            }
        }
        panic!("golden {name} differs in length");
    }
}

fn json(env: &EnvSet, k: &str) -> Value {
    serde_json::from_str(env.get(k).unwrap_or_else(|| panic!("{k} not set"))).unwrap()
}

#[test]
fn worked_example_profile_2() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().canonicalize().unwrap();
    let loaded = load(&dir, SEED_MANIFEST);
    // min_version client 1.5.1 picks the 2.x profile.
    assert_eq!(
        stackato_local::api::platform::profile::default_for(&loaded.manifest).profile,
        Profile::V2
    );
    let env = runtime_env(&loaded, Profile::V2, 42);
    golden("stackto-demo.profile2.env", &render(&env, &dir));

    // The facts §3.7 states, checked one by one.
    let home = dir.display().to_string();
    assert_eq!(env.get("HOME"), Some(home.as_str()));
    assert_eq!(env.get("STACKATO_DOCUMENT_ROOT"), Some(home.as_str()));
    assert_eq!(env.get("STACKATO_APP_NAME"), Some("stackto-demo"));
    assert_eq!(env.get("STACKATO_APP_NAME_UPCASE"), Some("STACKTO_DEMO"));
    assert_eq!(env.get("PORT"), Some("5000"));
    assert_eq!(env.get("VCAP_APP_PORT"), Some("5000"));
    assert_eq!(env.get("VCAP_APP_HOST"), Some("127.0.0.1"));
    assert_eq!(env.get("MEMCACHE_URL"), Some("127.0.0.1:11211"));
    let mysql = env.get("MYSQL_URL").unwrap();
    assert!(mysql.starts_with("mysql://u") && mysql.contains("@127.0.0.1:3306/d"));
    assert_eq!(env.get("DATABASE_URL"), Some(mysql));
    assert_eq!(env.get("PYTHONPATH"), Some(home.as_str()));
    assert_eq!(env.get("PROCESSES_WEB"), env.get("STACKATO_UWSGI"));
    for absent in [
        "MEMORY_LIMIT",
        "STACKATO_LOG_FILES",
        "LANG",
        "STACKATO_DOCKER",
    ] {
        assert!(env.get(absent).is_none(), "{absent} is 3.x only");
    }
    let vs = json(&env, "VCAP_SERVICES");
    assert_eq!(vs["mysql"][0]["name"], "stackto-demo-db");
    assert_eq!(vs["mysql"][0]["label"], "mysql-5.5");
    assert_eq!(vs["mysql"][0]["plan"], "free");
    assert_eq!(
        vs["mysql"][0]["tags"],
        serde_json::json!(["mysql", "mysql-5.5", "relational"])
    );
    assert_eq!(vs["memcached"][0]["label"], "memcached-1.4");
    assert_eq!(
        vs["memcached"][0]["tags"],
        serde_json::json!(["memcached", "memcached-1.4", "key-value", "nosql"])
    );
    assert_eq!(vs["mysql"][0]["credentials"]["port"], 3306);
    let ss = json(&env, "STACKATO_SERVICES");
    assert_eq!(ss["stackto-demo-db"], vs["mysql"][0]["credentials"]);
    let va = json(&env, "VCAP_APPLICATION");
    assert_eq!(va["name"], "stackto-demo");
    assert_eq!(
        va["uris"],
        serde_json::json!(["stackto-demo.stackato.local"])
    );
    assert_eq!(va["runtime"], "python27");
    assert_eq!(
        va["limits"]["mem"], 134_217_728u64,
        "python default 128M, in bytes"
    );
    assert_eq!(va["start"], "2013-01-01 00:26:40 +0000");
}

#[test]
fn worked_example_profile_3() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().canonicalize().unwrap();
    let loaded = load(&dir, SEED_MANIFEST);
    let env = runtime_env(&loaded, Profile::V3, 42);
    golden("stackto-demo.profile3.env", &render(&env, &dir));
    assert_eq!(env.get("VCAP_APP_HOST"), Some("0.0.0.0"));
    assert_eq!(env.get("MEMORY_LIMIT"), Some("128m"));
    assert_eq!(env.get("LANG"), Some("en_US.UTF-8"));
    assert_eq!(env.get("STACKATO_DOCKER"), Some("True"));
    let logs = env.get("STACKATO_LOG_FILES").unwrap();
    assert!(
        logs.starts_with("stdout=") && logs.contains(":stderr="),
        "{logs}"
    );
    assert!(
        env.get("DATABASE_URL").is_some(),
        "memcached is not relational (3.x rule)"
    );
    let va = json(&env, "VCAP_APPLICATION");
    assert_eq!(va["limits"]["mem"], 128, "MB on 3.x");
    assert_eq!(va["space_name"], "local");
    assert_eq!(va["host"], "0.0.0.0");
    assert_eq!(va["instance_index"], 0);
}

#[test]
fn same_seed_same_credentials_other_seed_others() {
    assert_eq!(records(1), records(1));
    assert_ne!(records(1)[0].credentials, records(2)[0].credentials);
}

/// Keys and JSON types of an object, recursively (arrays by their first element).
fn shape(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(m.iter().map(|(k, x)| (k.clone(), shape(x))).collect()),
        Value::Array(a) => Value::Array(a.first().map(shape).into_iter().collect()),
        Value::String(_) => "string".into(),
        Value::Number(_) => "number".into(),
        Value::Bool(_) => "bool".into(),
        Value::Null => "null".into(),
    }
}

#[test]
fn profile_2_shapes_match_the_real_2x_dump() {
    let dump_path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/spec/dumps/stackato-2x-env.json");
    let Ok(text) = std::fs::read_to_string(&dump_path) else {
        eprintln!(
            "SKIP: {} not found; the shapes were not checked",
            dump_path.display()
        );
        return;
    };
    let dump: Value = serde_json::from_str(&text).unwrap();
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().canonicalize().unwrap();
    let loaded = load(
        &dir,
        "name: shapes\nframework: node\nservices:\n  my: mysql\n  pg: postgresql\n  rd: redis\n  mg: mongodb\n",
    );
    let app = &loaded.manifest.apps[0];
    let mut rng = SeededRng::new(9);
    let bindings: Vec<Binding> = app
        .services
        .iter()
        .map(|s| {
            let kind = s.kind.as_ref().unwrap().value.clone();
            Binding {
                record: ServiceRecord {
                    name: s.name.value.clone(),
                    port: Some(4000),
                    credentials: shapes::generate(&kind, Some(4000), None, &[], &mut rng).unwrap(),
                    kind,
                },
                sqlite: None,
            }
        })
        .collect();
    let layout = Layout::new(&loaded.manifest.dir, app, 0, false, Default::default());
    let f = facts();
    let input = penv::Input {
        manifest: &loaded.manifest,
        app,
        profile: Profile::V2,
        layout: &layout,
        instance: 0,
        port: 5000,
        bindings: &bindings,
        facts: &f,
        db_url_rule: DbUrlRule::Relational,
        sqlite_env: SqliteEnv::Omit,
        router_port: None,
    };
    let env = penv::runtime(&input);
    let ours_vs = json(&env, "VCAP_SERVICES");
    for kind in ["mysql", "postgresql", "redis", "mongodb"] {
        let theirs = &dump["vcap_services"][kind][0];
        let ours = &ours_vs[kind][0];
        assert_eq!(shape(ours), shape(theirs), "VCAP_SERVICES.{kind} shape");
        assert_eq!(ours["label"], theirs["label"], "{kind} label");
        assert_eq!(ours["tags"], theirs["tags"], "{kind} tags");
        let name = ours["name"].as_str().unwrap();
        let their_name = theirs["name"].as_str().unwrap();
        assert_eq!(
            shape(&json(&env, "STACKATO_SERVICES")[name]),
            shape(&dump["stackato_services"][their_name]),
            "STACKATO_SERVICES.{kind} shape"
        );
    }
    assert_eq!(
        shape(&json(&env, "VCAP_APPLICATION")),
        shape(&dump["vcap_application"]),
        "VCAP_APPLICATION shape"
    );
}
