//! The variables the platform gives an app's processes (runtime) and its staging hooks, as pure
//! functions of the manifest, the provisioned services, the profile and the local layout.

use std::path::PathBuf;

use serde_json::{Map, Value, json};

use crate::manifest::{App, Manifest};
use crate::model::ServiceRecord;
use crate::model::{EnvSet, Layer};
use crate::platform::layout::Layout;
use crate::platform::services::{self as shapes, is_relational};
use crate::platform::{Profile, web};

/// Facts about this machine and moment, gathered once by the caller.
#[derive(Debug, Clone)]
pub struct Facts {
    /// Unix time used for `start`/`state_timestamp`.
    pub now: i64,
    /// The developer's login, for `users`/`group`.
    pub user: String,
    /// The domain of default URLs (`${target-base}`).
    pub domain: String,
    /// The shell's PATH, appended after the virtualenv's `bin`.
    pub path: String,
    /// The shell's PERL5LIB, appended after the staged Perl modules.
    pub perl5lib: Option<String>,
    /// The locale to export on 3.x (`en_US.UTF-8` when installed, else `C.UTF-8`).
    pub lang: String,
}

/// Which services may set `DATABASE_URL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbUrlRule {
    /// Exactly one mysql/postgresql (3.x documentation; the default).
    Relational,
    /// Exactly one of mysql/postgresql/redis/mongodb (a literal reading of the 2.10 docs).
    AnyDatabase,
}

/// What a relational service that fell back to sqlite exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SqliteEnv {
    /// Nothing: the service's variables are left out, so the app uses its own development
    /// default (what Stackato-era apps did when `DATABASE_URL` was absent). The default.
    Omit,
    /// `DATABASE_URL=sqlite:////abs/path.db`.
    Url,
}

/// A service bound to the app, and whether it runs as sqlite instead of its server.
#[derive(Debug, Clone)]
pub struct Binding {
    pub record: ServiceRecord,
    pub sqlite: Option<PathBuf>,
}

pub struct Input<'a> {
    pub manifest: &'a Manifest,
    pub app: &'a App,
    pub profile: Profile,
    pub layout: &'a Layout,
    pub instance: u32,
    /// The instance's `$PORT`.
    pub port: u16,
    /// Every service bound to this app, in manifest order.
    pub bindings: &'a [Binding],
    pub facts: &'a Facts,
    pub db_url_rule: DbUrlRule,
    pub sqlite_env: SqliteEnv,
    /// The local router's port: `VCAP_APPLICATION.uris` are then its URLs
    /// (`<label>.localhost:PORT`); `None` keeps the manifest's (export).
    pub router_port: Option<u16>,
}

/// `STACKATO_APP_NAME_UPCASE`: upper case, `-` → `_`.
pub(crate) fn upcase_name(name: &str) -> String {
    name.to_uppercase().replace('-', "_")
}

/// The platform and service variables of a running instance.
pub fn runtime(input: &Input<'_>) -> EnvSet {
    let mut e = EnvSet::new();
    common(&mut e, input, false);
    let p = |e: &mut EnvSet, k: &str, v: String, why: &str| e.set(k, v, Layer::Platform, why);
    let port = input.port.to_string();
    p(
        &mut e,
        "PORT",
        port.clone(),
        "the port the web process must listen on",
    );
    p(&mut e, "VCAP_APP_PORT", port, "same as PORT");
    let host = match input.profile {
        Profile::V2 => "127.0.0.1",
        Profile::V3 => "0.0.0.0",
    };
    p(
        &mut e,
        "VCAP_APP_HOST",
        host.into(),
        "2.x: the host's address (here loopback); 3.x: 0.0.0.0",
    );
    let doc = input.layout.document_root(input.app);
    p(
        &mut e,
        "STACKATO_DOCUMENT_ROOT",
        doc.display().to_string(),
        "$HOME, or $HOME/<framework document-root>",
    );
    if let Some(f) = web::start_file(input.app) {
        p(
            &mut e,
            "STACKATO_START_FILE",
            f,
            "the framework's start file (start-file, wsgi.py, app.psgi, server.js…)",
        );
    }
    if let Some(u) = web::uwsgi_command(input.app, input.layout, input.port) {
        p(
            &mut e,
            "STACKATO_UWSGI",
            u,
            "a local uWSGI serving the app over HTTP on $PORT (Python/Perl frameworks)",
        );
    }
    if let Some(w) = web::default_web(input.app, input.layout, input.port, &doc) {
        p(
            &mut e,
            "PROCESSES_WEB",
            w,
            "the framework's default web command",
        );
    }
    if web::is_python(input.app.framework_name()) {
        p(
            &mut e,
            "PYTHONPATH",
            input.layout.home.display().to_string(),
            "the app directory, for Python frameworks",
        );
    }
    let vcap = vcap_application(input, false);
    p(
        &mut e,
        "VCAP_APPLICATION",
        vcap.to_string(),
        match input.profile {
            Profile::V2 => "the 2.x instance record (limits in bytes)",
            Profile::V3 => "the 3.x instance record (limits in MB)",
        },
    );
    for (k, v, why) in harbor_vars(input) {
        e.set(&k, v, Layer::Service, why);
    }
    e
}

/// The platform and service variables of the staging hooks.
pub(crate) fn staging(input: &Input<'_>) -> EnvSet {
    let mut e = EnvSet::new();
    common(&mut e, input, true);
    let p = |e: &mut EnvSet, k: &str, v: String, why: &str| e.set(k, v, Layer::Platform, why);
    p(
        &mut e,
        "STAGING_TIMEOUT",
        "900.0".into(),
        "staging's time limit in seconds",
    );
    p(
        &mut e,
        "BUILDPACK_CACHE",
        input.layout.state.join("cache").display().to_string(),
        "a cache kept between stagings",
    );
    let vcap = vcap_application(input, true);
    p(
        &mut e,
        "VCAP_APPLICATION",
        vcap.to_string(),
        "the staging record (no instance fields)",
    );
    e
}

/// Variables shared by staging and runtime.
fn common(e: &mut EnvSet, input: &Input<'_>, staging: bool) {
    let app = input.app;
    let l = input.layout;
    let p = |e: &mut EnvSet, k: &str, v: String, why: &str| e.set(k, v, Layer::Platform, why);
    p(
        e,
        "HOME",
        l.home.display().to_string(),
        "the app directory (the container's /app/app or /home/stackato/app)",
    );
    p(
        e,
        "STACKATO_APP_ROOT",
        l.app_root.display().to_string(),
        "this instance's root in the state dir (the container's /app or /home/stackato); $STACKATO_APP_ROOT/app is $HOME",
    );
    p(
        e,
        "STACKATO_APP_NAME",
        app.name.value.clone(),
        "the app's name",
    );
    p(
        e,
        "STACKATO_APP_NAME_UPCASE",
        upcase_name(&app.name.value),
        "the name upper-cased, - replaced by _",
    );
    // Perl modules installed by staging (cpanm -l) live in the state dir too.
    let perl = crate::platform::perl::is_perl_app(app);
    let perl5 = crate::platform::perl::local_lib(&l.state);
    // Gems bundler installs (from vendor/cache) have their executables in the state dir too.
    let ruby = app.path.join("Gemfile").is_file();
    let mut dirs = vec![l.venv.join("bin")];
    if perl {
        dirs.push(perl5.join("bin"));
    }
    if ruby {
        dirs.push(l.state.join("gems").join("bin"));
    }
    let mut path: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    path.push(input.facts.path.clone());
    p(
        e,
        "PATH",
        path.join(":"),
        "the project's virtualenv (and the bin of Perl modules and gems staged here) first, then your PATH",
    );
    if perl {
        // Extended, not replaced: the modules staged here first, then your own (local::lib).
        let mut lib = perl5.join("lib").join("perl5").display().to_string();
        if let Some(yours) = input.facts.perl5lib.as_deref().filter(|v| !v.is_empty()) {
            lib = format!("{lib}:{yours}");
        }
        p(
            e,
            "PERL5LIB",
            lib,
            "Perl modules installed at staging (cpanm -l), then your PERL5LIB",
        );
    }
    if ruby {
        // Gems bundler installs from the app's vendor/cache go into the state dir, not into
        // the system's gem dir; the distribution's gems stay visible (Gem.default_path).
        p(
            e,
            "GEM_HOME",
            l.state.join("gems").display().to_string(),
            "gems installed at staging (bundle install --local), in the state dir",
        );
    }
    if crate::platform::perl::dot_in_inc(app) {
        p(
            e,
            "PERL_USE_UNSAFE_INC",
            "1".into(),
            "`.` in @INC, as in the platform's Perl 5.14/5.16 (Perl 5.26 removed it)",
        );
    }
    if input.profile == Profile::V3 {
        let mem = app.memory_limit_mb();
        p(
            e,
            "MEMORY_LIMIT",
            format!("{mem}m"),
            "the app's memory limit",
        );
        p(
            e,
            "STACKATO_LOG_FILES",
            format!(
                "stdout={}:stderr={}",
                l.logs.join("stdout.log").display(),
                l.logs.join("stderr.log").display()
            ),
            "the log files `stackato logs` streams",
        );
        p(
            e,
            "STACKATO_DOCKER",
            "True".into(),
            "3.x runs apps in Docker",
        );
        for k in ["LANG", "LANGUAGE", "LC_ALL"] {
            p(
                e,
                k,
                input.facts.lang.clone(),
                "3.x sets en_US.UTF-8 (C.UTF-8 here when that locale is not installed)",
            );
        }
    }
    services(e, input, staging);
}

/// VCAP_SERVICES, STACKATO_SERVICES, URL variables, filesystem variables.
fn services(e: &mut EnvSet, input: &Input<'_>, _staging: bool) {
    let native: Vec<&Binding> = input
        .bindings
        .iter()
        .filter(|b| b.sqlite.is_none())
        .collect();
    let mut vcap: Map<String, Value> = Map::new();
    let mut stk: Map<String, Value> = Map::new();
    for b in &native {
        let r = &b.record;
        let plan = input
            .app
            .services
            .iter()
            .find(|s| s.name.value == r.name)
            .and_then(|s| s.plan.clone())
            .unwrap_or_else(|| "free".into());
        let mut entry = json!({
            "name": r.name,
            "label": shapes::label(&r.kind, input.profile),
        });
        if r.kind != "user-provided" {
            entry["plan"] = json!(plan);
        }
        entry["tags"] = json!(shapes::tags(&r.kind, input.profile));
        entry["credentials"] = Value::Object(r.credentials.clone());
        let key = r.kind.clone();
        match vcap.get_mut(&key) {
            Some(Value::Array(a)) => a.push(entry),
            _ => {
                vcap.insert(key, Value::Array(vec![entry]));
            }
        }
        stk.insert(r.name.clone(), Value::Object(r.credentials.clone()));
    }
    e.set(
        "VCAP_SERVICES",
        Value::Object(vcap).to_string(),
        Layer::Service,
        "bound services keyed by type (unversioned)",
    );
    e.set(
        "STACKATO_SERVICES",
        Value::Object(stk).to_string(),
        Layer::Service,
        "bound services keyed by name → credentials",
    );
    for (k, v, why) in url_vars(&native, input.profile, input.db_url_rule) {
        e.set(&k, v, Layer::Service, why);
    }
    if input.sqlite_env == SqliteEnv::Url {
        let sq: Vec<&Binding> = input
            .bindings
            .iter()
            .filter(|b| b.sqlite.is_some())
            .collect();
        if let [b] = sq.as_slice()
            && let Some(path) = &b.sqlite
        {
            e.set(
                "DATABASE_URL",
                // sqlite:////abs/path: SQLAlchemy's and dj-database-url's absolute form.
                format!("sqlite:///{}", path.display()),
                Layer::Service,
                format!(
                    "service {} runs as sqlite (--sqlite-env url)",
                    b.record.name
                ),
            );
        }
    }
    let fs: Vec<&&Binding> = native
        .iter()
        .filter(|b| b.record.kind == "filesystem")
        .collect();
    for b in &fs {
        let dir = b
            .record
            .credentials
            .get("dir")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if fs.len() == 1 {
            e.set(
                "STACKATO_FILESYSTEM",
                dir,
                Layer::Service,
                "the one filesystem service's directory",
            );
        } else {
            e.set(
                &format!(
                    "STACKATO_FILESYSTEM_{}",
                    crate::shell::safe_name(&b.record.name)
                ),
                dir,
                Layer::Service,
                "one per filesystem service when there are several",
            );
        }
    }
}

fn harbor_vars(input: &Input<'_>) -> Vec<(String, String, String)> {
    let hb: Vec<&Binding> = input
        .bindings
        .iter()
        .filter(|b| b.record.kind == "harbor")
        .collect();
    hb.iter()
        .map(|b| {
            let port = b
                .record
                .credentials
                .get("int_port")
                .map(|v| v.to_string())
                .unwrap_or_default();
            if hb.len() == 1 {
                (
                    "STACKATO_HARBOR".into(),
                    port,
                    "the harbor port to listen on".into(),
                )
            } else {
                (
                    format!(
                        "STACKATO_HARBOR_{}",
                        crate::shell::safe_name(&b.record.name)
                    ),
                    port,
                    "one per harbor service when there are several".into(),
                )
            }
        })
        .collect()
}

fn cred(r: &ServiceRecord, k: &str) -> String {
    match r.credentials.get(k) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(v) => v.to_string(),
    }
}

/// The URL of one service in the platform's formats; `None` for types without one.
pub(crate) fn service_url(r: &ServiceRecord) -> Option<(&'static str, String)> {
    let host = cred(r, "host");
    let port = cred(r, "port");
    Some(match r.kind.as_str() {
        "mysql" => (
            "MYSQL_URL",
            format!(
                "mysql://{}:{}@{host}:{port}/{}",
                cred(r, "user"),
                cred(r, "password"),
                cred(r, "name")
            ),
        ),
        "postgresql" => (
            "POSTGRESQL_URL",
            format!(
                "postgres://{}:{}@{host}:{port}/{}",
                cred(r, "user"),
                cred(r, "password"),
                cred(r, "name")
            ),
        ),
        "redis" => (
            "REDIS_URL",
            format!("redis://:{}@{host}:{port}", cred(r, "password")),
        ),
        "mongodb" => (
            "MONGODB_URL",
            format!(
                "mongodb://{}:{}@{host}:{port}/{}",
                cred(r, "username"),
                cred(r, "password"),
                cred(r, "db")
            ),
        ),
        "rabbitmq" | "rabbitmq3" => ("RABBITMQ_URL", cred(r, "url")),
        "memcached" => ("MEMCACHE_URL", format!("{host}:{port}")),
        _ => return None,
    })
}

/// URL variables: one per type with exactly one instance; `DATABASE_URL` by the rule.
pub(crate) fn url_vars(
    bound: &[&Binding],
    profile: Profile,
    rule: DbUrlRule,
) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let count = |k: &str| bound.iter().filter(|b| b.record.kind == k).count();
    for b in bound {
        let r = &b.record;
        let Some((var, url)) = service_url(r) else {
            continue;
        };
        if count(&r.kind) != 1 {
            continue;
        }
        out.push((
            var.to_string(),
            url.clone(),
            format!("the only {} service ({})", r.kind, r.name),
        ));
        if r.kind == "postgresql" && profile == Profile::V3 {
            out.push((
                "JDBC_DATABASE_URL".into(),
                format!(
                    "jdbc:postgresql://{}:{}/{}?user={}&password={}",
                    cred(r, "host"),
                    cred(r, "port"),
                    cred(r, "name"),
                    cred(r, "user"),
                    cred(r, "password")
                ),
                format!("the only postgresql service ({}), 3.0.1+", r.name),
            ));
        }
    }
    let dbs: Vec<&&Binding> = bound
        .iter()
        .filter(|b| match rule {
            DbUrlRule::Relational => is_relational(&b.record.kind),
            DbUrlRule::AnyDatabase => {
                matches!(
                    b.record.kind.as_str(),
                    "mysql" | "postgresql" | "redis" | "mongodb"
                )
            }
        })
        .collect();
    if let [only] = dbs.as_slice()
        && let Some((_, url)) = service_url(&only.record)
    {
        out.push((
            "DATABASE_URL".into(),
            url,
            format!(
                "exactly one {} service is bound ({})",
                match rule {
                    DbUrlRule::Relational => "relational",
                    DbUrlRule::AnyDatabase => "database",
                },
                only.record.name
            ),
        ));
    }
    out
}

/// The framework's default runtime name, for `VCAP_APPLICATION.runtime`.
fn runtime_name(app: &App, profile: Profile) -> String {
    if let Some(r) = &app.runtime {
        return r.clone();
    }
    match app.framework_name() {
        Some("python" | "wsgi" | "django" | "generic" | "standalone") => "python27",
        Some("node") if profile == Profile::V2 => "node08",
        Some("node") => "node010",
        Some("perl" | "perlcgi") => "perl514",
        Some("php") => "php",
        Some("rack" | "rails3" | "sinatra") => "ruby19",
        Some("java_web" | "java_ee" | "spring" | "grails" | "lift") => "java7",
        _ => "",
    }
    .to_string()
}

/// The app's URLs: as given, or `<name>.<domain>` (none for workers).
pub(crate) fn uris(app: &App, domain: &str) -> Vec<String> {
    match &app.urls {
        Some(u) => u.clone(),
        None if app.web == crate::manifest::model::Web::Worker => Vec::new(),
        None => vec![format!("{}.{domain}", app.name.value).to_lowercase()],
    }
}

/// A stable id made of hex digits from the given parts (ids only, never secrets).
pub(crate) fn stable_hex(parts: &[&str], len: usize) -> String {
    let mut out = String::new();
    let mut round: u64 = 0;
    while out.len() < len {
        let mut h = crate::fnv::Fnv::seeded(round);
        for p in parts {
            h.write(p.as_bytes());
            h.write(&[0]);
        }
        out.push_str(&h.hex());
        round += 1;
    }
    out.truncate(len);
    out
}

fn stable_uuid(parts: &[&str]) -> String {
    let h = stable_hex(parts, 32);
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

/// `YYYY-MM-DD HH:MM:SS +0000` for a Unix time (UTC).
pub(crate) fn format_time(t: i64) -> String {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} +0000",
        secs / 3600,
        (secs / 60) % 60,
        secs % 60
    )
}

/// `VCAP_APPLICATION.instance_id` of instance `index` of `app` (stable across runs).
pub(crate) fn instance_id(app: &str, index: u32) -> String {
    stable_hex(&["stackato-local", app, &index.to_string(), "instance"], 32)
}

/// `VCAP_APPLICATION` in the profile's shape.
pub(crate) fn vcap_application(input: &Input<'_>, staging: bool) -> Value {
    let app = input.app;
    let f = input.facts;
    // Ids derive from the app's name only, so they are stable across runs and machines.
    let project = "stackato-local";
    let instance_id = instance_id(&app.name.value, input.instance);
    let uris = match input.router_port {
        Some(port) => super::routes::uris(&uris(app, &f.domain), port),
        None => uris(app, &f.domain),
    };
    let mem_mb = app.memory_limit_mb();
    let disk_mb = app.disk_limit_mb();
    let users = vec![format!("{}@localhost", f.user)];
    let start = format_time(f.now);
    match input.profile {
        Profile::V2 => {
            let version = format!("{}-1", stable_hex(&[project, &app.name.value, "v"], 40));
            let mut v = json!({
                "instance_id": instance_id,
                "instance_index": input.instance,
                "name": app.name.value,
                "uris": uris,
                "users": users,
                "group": users[0],
                "version": version,
                "start": start,
                "runtime": runtime_name(app, input.profile),
                "state_timestamp": f.now,
                "port": input.port,
                "lxcip": "127.0.0.1",
                "lxcport": input.port,
                "limits": {
                    "fds": 256,
                    "mem": mem_mb * 1024 * 1024,
                    "disk": disk_mb * 1024 * 1024,
                    "sudo": false
                },
                "host": "127.0.0.1",
            });
            if staging && let Some(o) = v.as_object_mut() {
                for k in ["port", "lxcport", "instance_index", "instance_id"] {
                    o.remove(k);
                }
            }
            v
        }
        Profile::V3 => {
            let version = stable_uuid(&[project, &app.name.value, "version"]);
            let mut v = json!({
                "limits": {"mem": mem_mb, "disk": disk_mb, "fds": 16384, "allow_sudo": false},
                "application_version": version,
                "application_name": app.name.value,
                "application_uris": uris,
                "version": version,
                "name": app.name.value,
                "space_name": "local",
                "space_id": stable_uuid(&[project, "space"]),
                "uris": uris,
                "users": Value::Null,
                "sso_enabled": app.sso_enabled,
            });
            if !staging && let Some(o) = v.as_object_mut() {
                o.insert("instance_id".into(), json!(instance_id));
                o.insert("instance_index".into(), json!(input.instance));
                o.insert("host".into(), json!("0.0.0.0"));
                o.insert("port".into(), json!(input.port));
                o.insert("started_at".into(), json!(start));
                o.insert("started_at_timestamp".into(), json!(f.now));
                o.insert("start".into(), json!(start));
                o.insert("state_timestamp".into(), json!(f.now));
            }
            v
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_format() {
        assert_eq!(format_time(0), "1970-01-01 00:00:00 +0000");
        assert_eq!(format_time(1_357_000_000), "2013-01-01 00:26:40 +0000");
        assert_eq!(format_time(951_782_400), "2000-02-29 00:00:00 +0000");
    }

    #[test]
    fn upcase() {
        assert_eq!(upcase_name("php-info"), "PHP_INFO");
    }

    #[test]
    fn stable_ids() {
        assert_eq!(stable_hex(&["a"], 32), stable_hex(&["a"], 32));
        assert_ne!(stable_hex(&["a"], 32), stable_hex(&["b"], 32));
        assert_eq!(stable_hex(&["a"], 40).len(), 40);
    }
}
