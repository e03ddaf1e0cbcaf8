//! `stackato-local export`: the real binary writes Cloud Foundry, docker compose, Procfile and
//! systemd configuration for a seed-style app and a multi-app manifest with a worker; each
//! file is read back with a parser for its format (the crate's own YAML and dotenv readers,
//! `bash -n`, `systemd-analyze verify` and `docker compose config` when installed) and
//! checked for structure, secrets and what the summary says was not carried over.

use crate::common;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use crate::common::{Run, app, canon, run, skip};
use stackato_local::api::yaml::{self, Node, Style, Value as Y};

const SEED: &str = r#"name: stackto-demo
framework: {type: python, runtime: python27}
min_version: {client: 1.5.1}
env:
  DJANGO_SETTINGS_MODULE: settings
  STATIC_ROOT: $HOME/static
  SECRET_KEY: {default: s3cr3t-Value-9f8e7d, hidden: true}
  GREETING: "it's \\$HOME"
requirements:
  pip: [django, pymysql, pymemcache]
services:
  ${name}-db: mysql
  ${name}-memcached: memcached
processes:
  web: $STACKATO_UWSGI --check-static $HOME/static
hooks:
  post-staging:
    - python manage.py migrate --noinput
cron:
  - "*/10 * * * * python manage.py clearsessions"
"#;

const MULTI: &str = r#"applications:
  - name: shop
    framework: python
    instances: 2
    mem: 256M
    url: [shop.example.com]
    timeout: 120
    services: {shop-db: postgresql, shop-cache: redis}
    env: {SHOP_MODE: production}
    processes: {web: "gunicorn -b 0.0.0.0:$VCAP_APP_PORT shop.wsgi"}
    depends-on: worker
    hooks: {pre-running: ["python warm.py"]}
  - name: worker
    framework: python
    processes: {web: ~}
    command: python worker.py
    services: {shop-db: postgresql, shop-cache: redis}
    cron:
      - "0 3 * * 1-5 python nightly.py"
      - "@daily echo \"it's\" $HOME 100% >/dev/null"
"#;

fn seed() -> tempfile::TempDir {
    app(&[
        ("stackato.yml", SEED),
        ("wsgi.py", "application = None\n"),
        ("manage.py", "print('manage')\n"),
    ])
}

fn multi() -> tempfile::TempDir {
    app(&[("stackato.yml", MULTI), ("wsgi.py", "application = None\n")])
}

/// `export --format FORMAT`, asserting exit 0; returns the run and the output directory.
#[track_caller]
fn export(dir: &Path, format: &str) -> (Run, std::path::PathBuf) {
    let r = run(dir, &["export", "--format", format]);
    r.code(0);
    (r, dir.join("stackato-export").join(format))
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("stat {}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

#[track_caller]
fn parse_yaml(text: &str) -> Node {
    match yaml::parse(text, stackato_local::api::diag::FileId(0)) {
        Ok(p) => p.root.expect("a YAML document"),
        Err(e) => panic!("not YAML: {e:?}\n{text}"),
    }
}

fn keys(n: &Node) -> Vec<String> {
    n.as_map()
        .unwrap_or_default()
        .iter()
        .map(|e| e.key.scalar_text().unwrap_or_default().to_string())
        .collect()
}

#[track_caller]
fn get<'a>(n: &'a Node, path: &[&str]) -> &'a Node {
    let mut cur = n;
    for k in path {
        cur = cur
            .get(k)
            .unwrap_or_else(|| panic!("no key {k:?} (path {path:?}) in {:#}", n.to_json()));
    }
    cur
}

fn text<'a>(n: &'a Node, path: &[&str]) -> &'a str {
    get(n, path).as_str().unwrap_or("")
}

/// The plain scalar's text, asserting it was written plainly (so a YAML reader types it).
#[track_caller]
fn plain(n: &Node) -> &str {
    match &n.value {
        Y::Scalar(s) if s.style == Style::Plain => &s.text,
        _ => panic!("expected a plain scalar, got {:#}", n.to_json()),
    }
}

#[track_caller]
fn dotenv(p: &Path) -> BTreeMap<String, String> {
    let t = read(p);
    match stackato_local::api::env::dotenv::parse(&t, &|_| None) {
        Ok(v) => v.into_iter().map(|e| (e.key, e.value)).collect(),
        Err(e) => panic!("{} does not parse as .env: {e}\n{t}", p.display()),
    }
}

#[track_caller]
fn bash_n(p: &Path) {
    let out = Command::new("bash")
        .arg("-n")
        .arg(p)
        .output()
        .expect("run bash -n");
    assert!(
        out.status.success(),
        "{} is not valid bash: {}\n{}",
        p.display(),
        String::from_utf8_lossy(&out.stderr),
        read(p)
    );
}

/// The "Not carried over:" section of the summary.
fn not_carried(r: &Run) -> String {
    let s = &r.stdout;
    let start = s
        .find("Not carried over:")
        .unwrap_or_else(|| panic!("no 'Not carried over' section\n{}", r.dump()));
    let rest = &s[start..];
    let end = rest
        .find("\nNotes:")
        .or_else(|| rest.find("\nNext:"))
        .unwrap_or(rest.len());
    rest[..end].to_string()
}

// ---------------------------------------------------------------------------------------------
// compose

/// `${VAR}` / `${VAR:?msg}` references in compose text (after `$$` escapes are removed).
fn compose_refs(t: &str) -> Vec<String> {
    let t = t.replace("$$", "");
    let mut out = Vec::new();
    let mut rest = t.as_str();
    while let Some(i) = rest.find("${") {
        let after = &rest[i + 2..];
        let end = after.find('}').unwrap_or(after.len());
        let name: String = after[..end]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        out.push(name);
        rest = &after[end..];
    }
    out
}

/// Compose's interpolation: `${VAR}` from `vars`, `$$` → `$`.
fn interpolate(t: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = t.replace("$$", "\u{0}");
    for (k, v) in vars {
        out = out.replace(&format!("${{{k}}}"), v);
    }
    out.replace('\u{0}', "$")
}

#[test]
fn compose_for_the_seed_app_wires_services_like_the_platform() {
    let dir = seed();
    let (r, out) = export(dir.path(), "compose");
    let file = out.join("compose.yaml");
    let ctext = read(&file);
    let doc = parse_yaml(&ctext);
    let services = get(&doc, &["services"]);
    assert_eq!(
        keys(services),
        ["stackto-demo", "stackto-demo-db", "stackto-demo-memcached"],
        "{ctext}"
    );
    assert_eq!(text(services, &["stackto-demo-db", "image"]), "mariadb:11");
    assert_eq!(
        text(services, &["stackto-demo-memcached", "image"]),
        "memcached:1.6"
    );
    let db_hc = get(services, &["stackto-demo-db", "healthcheck", "test"]).to_json();
    assert!(db_hc.to_string().contains("healthcheck.sh"), "{db_hc}");
    assert!(
        keys(get(&doc, &["volumes"])).contains(&"stackto-demo-db-data".to_string()),
        "{ctext}"
    );

    let web = get(services, &["stackto-demo"]);
    assert_eq!(text(web, &["image"]), "python:3");
    assert_eq!(text(web, &["working_dir"]), "/app");
    assert_eq!(
        text(web, &["depends_on", "stackto-demo-db", "condition"]),
        "service_healthy"
    );
    assert_eq!(
        text(web, &["depends_on", "stackto-demo-memcached", "condition"]),
        "service_started"
    );
    let env = get(web, &["environment"]);
    let env_keys = keys(env);
    for k in [
        "HOME",
        "PORT",
        "STACKATO_APP_NAME",
        "DATABASE_URL",
        "MYSQL_URL",
        "MEMCACHE_URL",
        "VCAP_SERVICES",
        "STACKATO_SERVICES",
        "DJANGO_SETTINGS_MODULE",
        "STATIC_ROOT",
        "SECRET_KEY",
    ] {
        assert!(env_keys.contains(&k.to_string()), "no {k} in {env_keys:?}");
    }
    assert_eq!(text(env, &["HOME"]), "/app");
    assert_eq!(
        text(env, &["STATIC_ROOT"]),
        "/app/static",
        "expanded like the platform's shell"
    );
    assert_eq!(text(env, &["MEMCACHE_URL"]), "stackto-demo-memcached:11211");
    let db_url = text(env, &["DATABASE_URL"]);
    assert!(
        db_url.starts_with("mysql://${") && db_url.contains("@stackto-demo-db:3306/${"),
        "{db_url}"
    );
    assert_eq!(text(env, &["SECRET_KEY"]), "${SECRET_KEY}");
    assert_eq!(
        text(env, &["GREETING"]),
        "it's $$HOME",
        "a literal $ for compose"
    );
    let cmd = get(web, &["command"]).to_json();
    let script = cmd[2].as_str().unwrap_or_default();
    assert_eq!(cmd[0], "bash", "{cmd}");
    assert!(
        script.contains("python manage.py migrate --noinput"),
        "{script}"
    );
    assert!(
        script.contains("exec uwsgi --http-socket 0.0.0.0:$$PORT")
            && script.contains("--check-static $$HOME/static"),
        "$ must be escaped for compose: {script}"
    );

    // Credentials: only in .env.compose (0600); every reference resolves there.
    let envf = out.join(".env.compose");
    assert_eq!(mode(&envf), 0o600);
    let vars = dotenv(&envf);
    assert_eq!(
        vars.get("SECRET_KEY").map(String::as_str),
        Some("s3cr3t-Value-9f8e7d")
    );
    for name in compose_refs(&ctext) {
        assert!(
            vars.contains_key(&name),
            "${{{name}}} is not in .env.compose: {vars:?}"
        );
    }
    let password = vars
        .get("STACKTO_DEMO_DB_PASSWORD")
        .unwrap_or_else(|| panic!("no db password in {vars:?}"));
    assert!(password.len() >= 16, "a real random password: {password}");
    for v in vars.values().filter(|v| v.len() >= 8) {
        assert!(
            !ctext.contains(v.as_str()),
            "a secret is in compose.yaml: {v}"
        );
        assert!(
            !r.stdout.contains(v.as_str()) && !r.stderr.contains(v.as_str()),
            "a secret was printed: {v}\n{}",
            r.dump()
        );
    }
    // VCAP_SERVICES, once compose has filled it in, is the platform's JSON.
    let vcap: serde_json::Value =
        serde_json::from_str(&interpolate(text(env, &["VCAP_SERVICES"]), &vars))
            .expect("VCAP_SERVICES is JSON");
    assert_eq!(vcap["mysql"][0]["name"], "stackto-demo-db");
    assert_eq!(vcap["mysql"][0]["credentials"]["host"], "stackto-demo-db");
    assert_eq!(
        vcap["mysql"][0]["credentials"]["password"],
        password.as_str()
    );
    assert_eq!(vcap["memcached"][0]["credentials"]["port"], 11211);
    let mariadb = get(services, &["stackto-demo-db", "environment"]);
    assert!(text(mariadb, &["MARIADB_PASSWORD"]).starts_with("${STACKTO_DEMO_DB_PASSWORD:?"));

    let nc = not_carried(&r);
    assert!(nc.contains("cron"), "{nc}");
    assert!(r.stdout.contains("compose.yaml") && r.stdout.contains(".env.compose"));
    assert!(read(&out.join(".gitignore")).contains("/.env.compose"));

    docker_compose_config(&file, &envf);
}

/// `docker compose config` when a compose implementation is installed (it needs no engine).
fn docker_compose_config(file: &Path, envf: &Path) {
    let candidates: [&[&str]; 2] = [&["docker", "compose"], &["docker-compose"]];
    for c in candidates {
        let works = Command::new(c[0])
            .args(&c[1..])
            .arg("version")
            .output()
            .is_ok_and(|o| {
                o.status.success() && !String::from_utf8_lossy(&o.stdout).contains("version 1.")
            });
        if !works {
            continue;
        }
        let out = Command::new(c[0])
            .args(&c[1..])
            .arg("-f")
            .arg(file)
            .arg("--env-file")
            .arg(envf)
            .args(["config", "-q"])
            .output()
            .expect("run docker compose config");
        assert!(
            out.status.success(),
            "docker compose config rejects {}: {}",
            file.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        return;
    }
    skip(
        "docker compose validation: no `docker compose` plugin or compose v2 installed; structure checked with the YAML reader only",
    );
}

#[test]
fn compose_for_several_apps_has_postgres_redis_and_a_worker() {
    let dir = multi();
    let (_, out) = export(dir.path(), "compose");
    let ctext = read(&out.join("compose.yaml"));
    let doc = parse_yaml(&ctext);
    let s = get(&doc, &["services"]);
    assert_eq!(
        keys(s),
        ["worker", "shop", "shop-db", "shop-cache"],
        "{ctext}"
    );
    assert_eq!(text(s, &["shop-db", "image"]), "postgres:16");
    let pg = get(s, &["shop-db", "environment"]);
    assert_eq!(
        keys(pg),
        ["POSTGRES_USER", "POSTGRES_PASSWORD", "POSTGRES_DB"]
    );
    assert!(
        get(s, &["shop-db", "healthcheck", "test"])
            .to_json()
            .to_string()
            .contains("pg_isready")
    );
    assert_eq!(text(s, &["shop-cache", "image"]), "redis:7");
    let redis_cmd = get(s, &["shop-cache", "command"]).to_json().to_string();
    assert!(
        redis_cmd.contains("--requirepass") && redis_cmd.contains("${SHOP_CACHE_PASSWORD"),
        "{redis_cmd}"
    );
    assert!(
        get(s, &["shop-cache", "healthcheck", "test"])
            .to_json()
            .to_string()
            .contains("redis-cli")
    );
    assert!(
        get(s, &["worker"]).get("ports").is_none(),
        "a worker publishes no port"
    );
    assert!(
        get(s, &["shop", "ports"])
            .to_json()
            .to_string()
            .contains("8080:8080")
    );
    assert_eq!(
        text(s, &["shop", "depends_on", "worker", "condition"]),
        "service_started"
    );
    assert_eq!(
        text(s, &["shop", "depends_on", "shop-db", "condition"]),
        "service_healthy"
    );
    let env = get(s, &["shop", "environment"]);
    assert!(text(env, &["DATABASE_URL"]).starts_with("postgres://${"));
    assert!(text(env, &["REDIS_URL"]).contains("@shop-cache:6379"));
    let script = get(s, &["shop", "command"]).to_json()[2]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        script.contains("python warm.py\nexec gunicorn -b 0.0.0.0:$$PORT"),
        "{script}"
    );
}

#[test]
fn exports_reuse_the_projects_credentials_and_never_print_them() {
    let dir = seed();
    // `env` provisions the project's services (credentials in .stackato-local/services.json).
    run(dir.path(), &["env", "--format", "json"]).code(0);
    let reg: serde_json::Value =
        serde_json::from_str(&read(&dir.path().join(".stackato-local/services.json")))
            .expect("json");
    let db = &reg["services"]["stackto-demo-db"];
    let password = db["credentials"]["password"]
        .as_str()
        .expect("a password")
        .to_string();
    let port = db["port"].as_u64().expect("a port");

    let (rc, out) = export(dir.path(), "compose");
    let vars = dotenv(&out.join(".env.compose"));
    assert_eq!(vars.get("STACKTO_DEMO_DB_PASSWORD"), Some(&password));
    assert!(!read(&out.join("compose.yaml")).contains(&password));

    let (rp, pout) = export(dir.path(), "procfile");
    let env = dotenv(&pout.join(".env"));
    assert_eq!(
        env.get("DATABASE_URL").map(String::as_str),
        Some(format!(
            "mysql://{}:{password}@127.0.0.1:{port}/{}",
            db["credentials"]["user"].as_str().unwrap_or_default(),
            db["credentials"]["name"].as_str().unwrap_or_default()
        ))
        .as_deref()
    );
    let (rs, sout) = export(dir.path(), "systemd");
    assert!(read(&sout.join("stackto-demo.env")).contains(&password));
    assert_eq!(mode(&sout.join("stackto-demo.env")), 0o600);
    for r in [&rc, &rp, &rs] {
        assert!(
            !r.stdout.contains(&password) && !r.stderr.contains(&password),
            "the password was printed\n{}",
            r.dump()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Cloud Foundry

/// Keys of a Cloud Foundry app manifest (v3 manifest schema).
const CF_TOP: &[&str] = &["applications", "version"];
const CF_APP: &[&str] = &[
    "name",
    "path",
    "memory",
    "disk_quota",
    "instances",
    "buildpacks",
    "command",
    "routes",
    "no-route",
    "random-route",
    "env",
    "services",
    "health-check-type",
    "health-check-http-endpoint",
    "timeout",
    "stack",
    "docker",
    "processes",
    "sidecars",
    "metadata",
];

/// Check one CF app entry against the schema: allowed keys and value types.
#[track_caller]
fn check_cf_app(a: &Node) {
    for k in keys(a) {
        assert!(
            CF_APP.contains(&k.as_str()),
            "`{k}` is not a CF manifest key: {:#}",
            a.to_json()
        );
    }
    let size = |k: &str| {
        let v = plain(get(a, &[k]));
        let digits = v.strip_suffix('M').unwrap_or("");
        assert!(
            !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()),
            "{k} must look like 256M, got {v}"
        );
    };
    size("memory");
    size("disk_quota");
    let inst = plain(get(a, &["instances"]));
    assert!(
        inst.parse::<u32>().is_ok_and(|n| n >= 1),
        "instances: {inst}"
    );
    if let Some(t) = a.get("timeout") {
        assert!(
            plain(t).parse::<u32>().is_ok(),
            "timeout: {:?}",
            t.to_json()
        );
    }
    if let Some(n) = a.get("no-route") {
        assert_eq!(plain(n), "true");
    }
    for k in ["buildpacks", "services"] {
        if let Some(l) = a.get(k) {
            let items = l.as_seq().unwrap_or_else(|| panic!("{k} must be a list"));
            assert!(
                items
                    .iter()
                    .all(|i| i.as_str().is_some_and(|s| !s.is_empty()))
            );
        }
    }
    if let Some(r) = a.get("routes") {
        for route in r.as_seq().expect("routes is a list") {
            assert_eq!(keys(route), ["route"], "{:#}", route.to_json());
        }
    }
    if let Some(e) = a.get("env") {
        for entry in e.as_map().expect("env is a mapping") {
            assert!(entry.value.as_str().is_some(), "env values are scalars");
        }
    }
    for k in ["name", "path", "command", "health-check-type"] {
        if let Some(v) = a.get(k) {
            assert!(
                v.as_str().is_some_and(|s| !s.is_empty()),
                "{k} must be text"
            );
        }
    }
}

#[test]
fn cf_manifest_for_the_seed_app_follows_the_cf_schema() {
    let dir = seed();
    let (r, out) = export(dir.path(), "cf");
    let mtext = read(&out.join("manifest.yml"));
    let doc = parse_yaml(&mtext);
    for k in keys(&doc) {
        assert!(CF_TOP.contains(&k.as_str()), "top-level key {k}");
    }
    let apps = get(&doc, &["applications"])
        .as_seq()
        .expect("a list of applications");
    assert_eq!(apps.len(), 1);
    let a = &apps[0];
    check_cf_app(a);
    assert_eq!(text(a, &["name"]), "stackto-demo");
    assert_eq!(
        plain(get(a, &["memory"])),
        "128M",
        "python's default memory"
    );
    assert_eq!(
        get(a, &["buildpacks"]).to_json(),
        serde_json::json!(["python_buildpack"])
    );
    let path = out.join(text(a, &["path"]));
    assert_eq!(
        canon(&path),
        canon(dir.path()),
        "path is relative to manifest.yml"
    );
    let cmd = text(a, &["command"]);
    assert!(
        cmd.starts_with("uwsgi --http-socket 0.0.0.0:$PORT")
            && cmd.contains("--wsgi-file $HOME/wsgi.py")
            && cmd.ends_with("--check-static $HOME/static")
            && !cmd.contains("STACKATO_UWSGI"),
        "{cmd}"
    );
    assert_eq!(
        get(a, &["services"]).to_json(),
        serde_json::json!(["stackto-demo-db", "stackto-demo-memcached"])
    );
    assert_eq!(text(a, &["env", "DJANGO_SETTINGS_MODULE"]), "settings");
    assert_eq!(
        text(a, &["env", "GREETING"]),
        "it's $HOME",
        "\\$ is a literal $"
    );
    assert!(
        a.get("env").and_then(|e| e.get("SECRET_KEY")).is_none(),
        "secrets stay out"
    );
    assert!(!mtext.contains("s3cr3t"), "{mtext}");
    assert!(a.get("no-route").is_none() && a.get("health-check-type").is_none());

    let svc = out.join("cf-services.sh");
    bash_n(&svc);
    let st = read(&svc);
    assert!(st.contains("cf create-service"), "{st}");
    assert!(
        st.contains("create p.mysql db-small stackto-demo-db"),
        "{st}"
    );
    assert!(
        st.contains("cups stackto-demo-memcached"),
        "memcached is user-provided: {st}"
    );
    assert!(
        st.contains("cf marketplace"),
        "says plans depend on the marketplace"
    );

    let profile = out.join(".profile");
    bash_n(&profile);
    let pt = read(&profile);
    assert!(
        pt.contains("_stackato_url DATABASE_URL stackto-demo-db"),
        "{pt}"
    );
    assert!(
        pt.contains("_stackato_url MEMCACHE_URL stackto-demo-memcached"),
        "{pt}"
    );
    assert!(
        pt.contains("export STATIC_ROOT=\"$HOME/static\""),
        "a value using $HOME: {pt}"
    );
    assert!(
        pt.contains("CF_INSTANCE_INDEX") && pt.contains("  python manage.py migrate --noinput"),
        "{pt}"
    );

    profile_derives_urls(&profile);

    let nc = not_carried(&r);
    for needle in ["post-staging", "cron", "min_version", "SECRET_KEY"] {
        assert!(nc.contains(needle), "not-carried lacks {needle}:\n{nc}");
    }
    assert!(r.stdout.contains("cf-services.sh") && r.stdout.contains(".profile"));
}

/// Source the seed's `.profile` with a Cloud Foundry-shaped VCAP_SERVICES (instance 1, so the
/// staging hooks do not run) and read back the variables Stackato used to set.
fn profile_derives_urls(profile: &Path) {
    if common::find_program("jq").is_none() {
        skip("cf .profile: jq is not installed; the URL derivation is checked with bash -n only");
        return;
    }
    let vcap = r#"{"p.mysql":[{"name":"stackto-demo-db","credentials":{"uri":"mysql://u:p@db.internal:3306/app?reconnect=true"}}],
        "user-provided":[{"name":"stackto-demo-memcached","credentials":{"host":"mc.internal","port":"11211"}}]}"#;
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            ". {}; printf '%s\\n' \"$DATABASE_URL\" \"$MYSQL_URL\" \"$MEMCACHE_URL\" \"$STATIC_ROOT\" \"$STACKATO_SERVICES\"",
            profile.display()
        ))
        .env("VCAP_SERVICES", vcap)
        .env("CF_INSTANCE_INDEX", "1")
        .env("HOME", "/home/vcap/app")
        .output()
        .expect("run bash");
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        lines[..4],
        [
            "mysql://u:p@db.internal:3306/app?reconnect=true",
            "mysql://u:p@db.internal:3306/app?reconnect=true",
            "mc.internal:11211",
            "/home/vcap/app/static",
        ],
        "{text}"
    );
    let stk: serde_json::Value = serde_json::from_str(lines[4]).expect("STACKATO_SERVICES is JSON");
    assert_eq!(stk["stackto-demo-memcached"]["host"], "mc.internal");
}

#[test]
fn cf_manifest_for_several_apps_has_the_worker_without_a_route() {
    let dir = multi();
    let (r, out) = export(dir.path(), "cf");
    let doc = parse_yaml(&read(&out.join("manifest.yml")));
    let apps = get(&doc, &["applications"]).as_seq().expect("a list");
    let names: Vec<&str> = apps.iter().map(|a| text(a, &["name"])).collect();
    assert_eq!(names, ["worker", "shop"], "start order");
    for a in apps {
        check_cf_app(a);
    }
    let (worker, shop) = (&apps[0], &apps[1]);
    assert_eq!(plain(get(worker, &["no-route"])), "true");
    assert_eq!(text(worker, &["health-check-type"]), "process");
    assert_eq!(text(worker, &["command"]), "python worker.py");
    assert_eq!(plain(get(shop, &["instances"])), "2");
    assert_eq!(plain(get(shop, &["memory"])), "256M");
    assert_eq!(plain(get(shop, &["timeout"])), "120");
    assert_eq!(
        get(shop, &["routes"]).to_json(),
        serde_json::json!([{"route": "shop.example.com"}])
    );
    assert_eq!(
        text(shop, &["command"]),
        "gunicorn -b 0.0.0.0:$PORT shop.wsgi"
    );
    let st = read(&out.join("cf-services.sh"));
    bash_n(&out.join("cf-services.sh"));
    assert_eq!(
        st.matches("create postgres ").count(),
        1,
        "one service, shared: {st}"
    );
    assert!(st.contains("create p.redis cache-small shop-cache"));
    let profile = out.join("shop/.profile");
    bash_n(&profile);
    assert!(
        read(&profile).contains("python warm.py"),
        "pre-running hook in .profile"
    );
    let nc = not_carried(&r);
    assert!(nc.contains("worker: cron"), "{nc}");
    assert!(!nc.contains("shop: cron"), "{nc}");
}

// ---------------------------------------------------------------------------------------------
// Procfile

#[track_caller]
fn procfile_lines(p: &Path) -> Vec<(String, String)> {
    read(p)
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (k, v) = l
                .split_once(": ")
                .unwrap_or_else(|| panic!("not `name: command`: {l:?}"));
            assert!(
                !k.is_empty()
                    && k.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
                "bad process name {k:?}"
            );
            assert!(!v.trim().is_empty(), "empty command in {l:?}");
            (k.to_string(), v.to_string())
        })
        .collect()
}

#[test]
fn procfile_and_env_for_the_seed_app() {
    let dir = seed();
    let (r, out) = export(dir.path(), "procfile");
    let lines = procfile_lines(&out.join("Procfile"));
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0].0, "web");
    assert!(
        lines[0].1.starts_with("uwsgi --http-socket 0.0.0.0:$PORT"),
        "{lines:?}"
    );
    let proc_text = read(&out.join("Procfile"));
    assert!(
        proc_text.contains("# release: python manage.py migrate --noinput"),
        "{proc_text}"
    );

    let envp = out.join(".env");
    assert_eq!(mode(&envp), 0o600);
    let env = dotenv(&envp);
    assert_eq!(
        env.get("HOME").map(|h| canon(Path::new(h))),
        Some(canon(dir.path()))
    );
    let db = env.get("DATABASE_URL").expect("DATABASE_URL");
    assert!(
        db.starts_with("mysql://") && db.contains("@127.0.0.1:3306/"),
        "{db}"
    );
    assert_eq!(
        env.get("MEMCACHE_URL").map(String::as_str),
        Some("127.0.0.1:11211")
    );
    assert_eq!(
        env.get("DJANGO_SETTINGS_MODULE").map(String::as_str),
        Some("settings")
    );
    assert_eq!(
        env.get("SECRET_KEY").map(String::as_str),
        Some("s3cr3t-Value-9f8e7d")
    );
    assert!(
        env.get("STATIC_ROOT")
            .is_some_and(|v| v.ends_with("/static") && !v.contains('$'))
    );
    assert!(!env.contains_key("PORT"), "foreman and honcho set PORT");
    assert_eq!(env.get("GREETING").map(String::as_str), Some("it's $HOME"));
    let vcap: serde_json::Value = serde_json::from_str(&env["VCAP_SERVICES"]).expect("JSON");
    assert_eq!(vcap["mysql"][0]["credentials"]["host"], "127.0.0.1");
    assert!(!r.stdout.contains("s3cr3t"), "{}", r.dump());

    let nc = not_carried(&r);
    assert!(nc.contains("post-staging") && nc.contains("cron"), "{nc}");
    assert!(
        r.stdout.contains("placeholder"),
        "says the credentials are placeholders"
    );
}

#[test]
fn procfile_for_several_apps_has_web_and_worker() {
    let dir = multi();
    let (_, out) = export(dir.path(), "procfile");
    let shop = procfile_lines(&out.join("shop/Procfile"));
    assert_eq!(
        shop,
        [(
            "web".to_string(),
            "python warm.py && exec gunicorn -b 0.0.0.0:$PORT shop.wsgi".to_string()
        )]
    );
    assert!(read(&out.join("shop/Procfile")).contains("2 instances"));
    let worker = procfile_lines(&out.join("worker/Procfile"));
    assert_eq!(
        worker,
        [("worker".to_string(), "python worker.py".to_string())]
    );
    for a in ["shop", "worker"] {
        let p = out.join(a).join(".env");
        assert_eq!(mode(&p), 0o600);
        let env = dotenv(&p);
        assert_eq!(env.get("STACKATO_APP_NAME").map(String::as_str), Some(a));
        assert!(
            env.get("POSTGRESQL_URL")
                .is_some_and(|u| u.contains("@127.0.0.1:5432/"))
        );
        assert!(
            env.get("REDIS_URL")
                .is_some_and(|u| u.ends_with("@127.0.0.1:6379"))
        );
    }
}

// ---------------------------------------------------------------------------------------------
// systemd

/// `section → [(key, value)]` of a unit file.
fn unit(p: &Path) -> BTreeMap<String, Vec<(String, String)>> {
    let mut out: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    let mut section = String::new();
    for l in read(p).lines() {
        let l = l.trim();
        if l.is_empty() || l.starts_with('#') || l.starts_with(';') {
            continue;
        }
        if let Some(s) = l.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
            section = s.to_string();
            out.entry(section.clone()).or_default();
            continue;
        }
        let (k, v) = l
            .split_once('=')
            .unwrap_or_else(|| panic!("{}: not `Key=value`: {l}", p.display()));
        assert!(
            !section.is_empty(),
            "{}: {l} outside a section",
            p.display()
        );
        out.entry(section.clone())
            .or_default()
            .push((k.to_string(), v.to_string()));
    }
    out
}

#[track_caller]
fn key<'a>(u: &'a BTreeMap<String, Vec<(String, String)>>, section: &str, k: &str) -> Vec<&'a str> {
    u.get(section)
        .unwrap_or_else(|| panic!("no [{section}] in {u:?}"))
        .iter()
        .filter(|(kk, _)| kk == k)
        .map(|(_, v)| v.as_str())
        .collect()
}

/// `systemd-analyze verify` on every unit, when systemd-analyze is installed.
fn verify(dir: &Path) {
    let Some(sa) = common::find_program("systemd-analyze") else {
        skip(
            "systemd-analyze verify: systemd-analyze is not installed; units checked by structure only",
        );
        return;
    };
    let mut units: Vec<_> = std::fs::read_dir(dir)
        .expect("list units")
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.extension()
                .is_some_and(|e| e == "service" || e == "timer")
        })
        .collect();
    units.sort();
    assert!(!units.is_empty());
    let out = Command::new(sa)
        .arg("verify")
        .arg("--man=no")
        .args(&units)
        .output()
        .expect("run systemd-analyze");
    let err = String::from_utf8_lossy(&out.stderr);
    // Without systemd as PID 1 some versions warn about the host; a unit's own problems name it.
    let own: Vec<&str> = err
        .lines()
        .filter(|l| {
            units
                .iter()
                .any(|u| l.contains(&*u.file_name().unwrap_or_default().to_string_lossy()))
        })
        .collect();
    assert!(
        out.status.success() && own.is_empty(),
        "systemd-analyze verify failed:\n{err}"
    );
}

#[test]
fn systemd_units_for_the_seed_app() {
    let dir = seed();
    let (r, out) = export(dir.path(), "systemd");
    let web = unit(&out.join("stackto-demo-web.service"));
    for s in ["Unit", "Service", "Install"] {
        assert!(web.contains_key(s), "no [{s}]: {web:?}");
    }
    let wd = key(&web, "Service", "WorkingDirectory");
    assert_eq!(wd.len(), 1);
    assert_eq!(canon(Path::new(wd[0])), canon(dir.path()));
    let ef = key(&web, "Service", "EnvironmentFile");
    assert_eq!(ef.len(), 1);
    assert_eq!(
        mode(Path::new(ef[0])),
        0o600,
        "EnvironmentFile holds credentials"
    );
    let env = dotenv(Path::new(ef[0]));
    assert!(
        env.get("DATABASE_URL")
            .is_some_and(|u| u.contains("@127.0.0.1:3306/"))
    );
    let start = key(&web, "Service", "ExecStart");
    assert_eq!(start.len(), 1);
    assert!(
        start[0].starts_with("/bin/bash -c '")
            && start[0].contains("uwsgi --http-socket 127.0.0.1:$$PORT"),
        "{start:?}"
    );
    assert_eq!(key(&web, "Service", "Restart"), ["on-failure"]);
    assert_eq!(
        key(&web, "Service", "Environment"),
        ["PORT=8080 VCAP_APP_PORT=8080"]
    );
    for k in ["After", "Wants"] {
        let v = key(&web, "Unit", k).join(" ");
        assert!(
            v.contains("mariadb.service") && v.contains("memcached.service"),
            "{k}={v}"
        );
    }
    assert_eq!(key(&web, "Install", "WantedBy"), ["multi-user.target"]);

    let timer = unit(&out.join("stackto-demo-cron-1.timer"));
    assert_eq!(key(&timer, "Timer", "OnCalendar"), ["*-*-* *:0/10:00"]);
    assert_eq!(key(&timer, "Install", "WantedBy"), ["timers.target"]);
    let job = unit(&out.join("stackto-demo-cron-1.service"));
    assert_eq!(key(&job, "Service", "Type"), ["oneshot"]);
    assert_eq!(
        key(&job, "Service", "ExecStart"),
        ["/bin/bash -c 'python manage.py clearsessions'"]
    );
    let staging = read(&out.join("stackto-demo-staging.service"));
    assert!(
        staging.contains("python manage.py migrate --noinput"),
        "{staging}"
    );

    let nc = not_carried(&r);
    assert!(nc.contains("post-staging"), "{nc}");
    assert!(!nc.contains("cron"), "cron is carried over as timers: {nc}");
    verify(&out);
}

#[test]
fn systemd_units_for_several_apps() {
    let dir = multi();
    let (_, out) = export(dir.path(), "systemd");
    let shop = unit(&out.join("shop-web@.service"));
    assert_eq!(
        key(&shop, "Service", "Environment"),
        ["PORT=%i VCAP_APP_PORT=%i"]
    );
    assert_eq!(
        key(&shop, "Service", "ExecStartPre"),
        ["/bin/bash -c 'python warm.py'"]
    );
    assert_eq!(
        key(&shop, "Service", "ExecStart"),
        ["/bin/bash -c 'exec gunicorn -b 0.0.0.0:$$PORT shop.wsgi'"]
    );
    assert_eq!(key(&shop, "Service", "TimeoutStartSec"), ["120"]);
    let after = key(&shop, "Unit", "After").join(" ");
    for u in [
        "postgresql.service",
        "redis-server.service",
        "worker-worker.service",
    ] {
        assert!(after.contains(u), "After={after}");
    }
    let worker = unit(&out.join("worker-worker.service"));
    assert_eq!(
        key(&worker, "Service", "ExecStart"),
        ["/bin/bash -c 'exec python worker.py'"]
    );
    assert!(
        key(&worker, "Service", "Environment").is_empty(),
        "a worker has no port"
    );
    let timer = unit(&out.join("worker-cron-1.timer"));
    assert_eq!(
        key(&timer, "Timer", "OnCalendar"),
        ["Mon,Tue,Wed,Thu,Fri *-*-* 3:0:00"]
    );
    let daily = unit(&out.join("worker-cron-2.service"));
    assert_eq!(
        key(&daily, "Service", "ExecStart"),
        [r#"/bin/bash -c 'echo "it\'s" $$HOME 100%% >/dev/null'"#],
        "quotes, $ and % escaped for systemd"
    );
    assert!(key(&daily, "Unit", "Description")[0].contains("100%%"));
    assert_eq!(
        key(
            &unit(&out.join("worker-cron-2.timer")),
            "Timer",
            "OnCalendar"
        ),
        ["*-*-* 00:00:00"]
    );
    verify(&out);
}

// ---------------------------------------------------------------------------------------------
// Files and options

#[test]
fn existing_files_are_kept_unless_forced() {
    let dir = seed();
    let (_, out) = export(dir.path(), "cf");
    let manifest = out.join("manifest.yml");
    std::fs::write(&manifest, "mine\n").expect("edit");
    let again = run(dir.path(), &["export", "--format", "cf"]);
    again
        .code(64)
        .stderr_has("already exist")
        .stderr_has("--force");
    assert_eq!(read(&manifest), "mine\n", "not overwritten");
    run(dir.path(), &["export", "--format", "cf", "--force"]).code(0);
    assert!(read(&manifest).contains("applications:"));
    // A secret file replaced with --force keeps mode 0600.
    let (_, cout) = export(dir.path(), "compose");
    let envf = cout.join(".env.compose");
    std::fs::set_permissions(&envf, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    run(dir.path(), &["export", "--format", "compose", "--force"]).code(0);
    assert_eq!(mode(&envf), 0o600);
}

#[test]
fn out_dir_and_app_selection() {
    let dir = multi();
    let r = run(
        dir.path(),
        &[
            "export",
            "--format",
            "procfile",
            "--app",
            "worker",
            "--out",
            "elsewhere",
        ],
    );
    r.code(0);
    let out = dir.path().join("elsewhere");
    assert_eq!(
        procfile_lines(&out.join("Procfile")),
        [("worker".to_string(), "python worker.py".to_string())]
    );
    assert!(!out.join("shop").exists(), "only the chosen app");
    assert!(!dir.path().join("stackato-export").exists());
    run(dir.path(), &["export", "--format", "cf", "--app", "nope"])
        .code(64)
        .stderr_has("no application named \"nope\"");
    run(dir.path(), &["export", "--format", "helm"]).code(64);
    let empty = app(&[]);
    run(empty.path(), &["export", "--format", "cf"]).code(3);
}
