//! `export --format cf`: a Cloud Foundry `manifest.yml` for today's CF (v3 manifest keys),
//! `cf-services.sh` to create the services in the marketplace, and a `.profile` per app for
//! what Cloud Foundry does differently (the URL variables Stackato set, `env:` values that use
//! other variables, hooks).

use serde_json::{Map, Value, json};

use crate::export::{
    Export, Input, OutFile, commands, emit, export_lines, hook_stmt, process, referenced, relative,
    translate, uwsgi_note,
};
use crate::manifest::App;
use crate::platform::services::is_relational;

/// What Cloud Foundry has no place for.
#[derive(Debug, thiserror::Error)]
enum NotCarried {
    #[error(
        "framework perl: Cloud Foundry has no Perl buildpack — add a community Perl buildpack's git URL under `buildpacks:`, or push a Docker image (`docker: {{image: …}}`)"
    )]
    PerlFramework,
    #[error(
        "framework {0}: no Cloud Foundry buildpack matches; Cloud Foundry will try to detect one"
    )]
    NoBuildpack(String),
    #[error("Cloud Foundry drains are syslog over TCP/TLS or HTTPS, not UDP")]
    UdpDrain,
}

/// Cloud Foundry's buildpack for a Stackato framework, or why there is none.
fn buildpack(app: &App) -> Result<Option<String>, NotCarried> {
    if let Some(bp) = &app.buildpack {
        return Ok(Some(bp.clone()));
    }
    let Some(fw) = app.framework_name() else {
        return Ok(None);
    };
    Ok(Some(
        match fw {
            "python" | "wsgi" | "django" => "python_buildpack",
            "node" => "nodejs_buildpack",
            "php" => "php_buildpack",
            "ruby" | "rack" | "rails3" | "sinatra" => "ruby_buildpack",
            "go" => "go_buildpack",
            f if f.starts_with("java") || matches!(f, "spring" | "grails" | "lift" | "play") => {
                "java_buildpack"
            }
            "perl" | "perlcgi" => {
                return Err(NotCarried::PerlFramework);
            }
            "buildpack" => {
                return Ok(app
                    .env
                    .iter()
                    .find(|v| v.name.value == "BUILDPACK_URL")
                    .and_then(|v| v.default.as_ref())
                    .map(|d| d.value.clone()));
            }
            "generic" | "standalone" => return Ok(None),
            other => {
                return Err(NotCarried::NoBuildpack(other.to_string()));
            }
        }
        .to_string(),
    ))
}

/// The frameworks whose buildpack on CF needs the start command spelled out (Stackato's
/// default was `$STACKATO_UWSGI` or `node <file>`; the others' buildpacks start the app).
fn default_needs_command(app: &App) -> bool {
    matches!(
        app.framework_name(),
        Some("python" | "wsgi" | "django" | "perl" | "node")
    )
}

/// A service to create: its name, Stackato type (`None`: only named) and user-provided
/// credentials.
struct Wanted {
    name: String,
    kind: Option<String>,
    creds: Vec<(String, String)>,
}

/// A Stackato drain URL as a CF syslog drain URL.
fn drain_url(url: &str) -> Result<String, NotCarried> {
    if let Some(rest) = url.strip_prefix("tcp://") {
        return Ok(format!("syslog://{rest}"));
    }
    if url.starts_with("udp://") {
        return Err(NotCarried::UdpDrain);
    }
    Ok(url.to_string())
}

/// The marketplace offering and plan to suggest for a service type, with a comment.
fn offering(kind: &str) -> Option<(&'static str, &'static str, &'static str)> {
    Some(match kind {
        "mysql" => (
            "p.mysql",
            "db-small",
            "a MySQL offering, e.g. p.mysql / db-small",
        ),
        "postgresql" => (
            "postgres",
            "small",
            "a PostgreSQL offering, e.g. postgres / small",
        ),
        "redis" => (
            "p.redis",
            "cache-small",
            "a Redis offering, e.g. p.redis / cache-small",
        ),
        "mongodb" => (
            "mongodb",
            "standard",
            "a MongoDB offering, e.g. mongodb / standard",
        ),
        "rabbitmq" | "rabbitmq3" => (
            "p.rabbitmq",
            "single-node",
            "a RabbitMQ offering, e.g. p.rabbitmq / single-node",
        ),
        _ => return None,
    })
}

/// The jq filter giving a service's URL from its CF credentials, in Stackato's format.
fn url_filter(kind: &str) -> &'static str {
    match kind {
        "redis" => {
            r#"(.uri // ("redis://:" + (.password // "") + "@" + (.host // .hostname) + ":" + (.port|tostring)))"#
        }
        "memcached" => r#"((.host // .hostname) + ":" + (.port|tostring))"#,
        _ => "(.uri // .url)",
    }
}

/// The URL variables Stackato set for these services: (variable, service, kind).
fn url_vars(services: &[(String, String)]) -> Vec<(String, String, String)> {
    let count = |k: &str| services.iter().filter(|(_, kind)| kind == k).count();
    let mut out = Vec::new();
    for (name, kind) in services {
        let var = match kind.as_str() {
            "mysql" => "MYSQL_URL",
            "postgresql" => "POSTGRESQL_URL",
            "redis" => "REDIS_URL",
            "mongodb" => "MONGODB_URL",
            "rabbitmq" | "rabbitmq3" => "RABBITMQ_URL",
            "memcached" => "MEMCACHE_URL",
            _ => continue,
        };
        if count(kind) == 1 {
            out.push((var.to_string(), name.clone(), kind.clone()));
        }
    }
    let rel: Vec<&(String, String)> = services.iter().filter(|(_, k)| is_relational(k)).collect();
    if let [(name, kind)] = rel.as_slice() {
        out.push(("DATABASE_URL".into(), name.clone(), kind.clone()));
    }
    out
}

pub(crate) fn export(input: &Input<'_>) -> Export {
    let mut ex = Export::default();
    let mut apps_out = Vec::new();
    let multi = input.apps.len() > 1;
    // name → (kind, first app), in first-use order
    let mut all_services: Vec<Wanted> = Vec::new();
    let mut drains: Vec<(String, String)> = Vec::new();
    let mut profiles = Vec::new();
    for app in &input.apps {
        let name = &app.name.value;
        let mut a = Map::new();
        a.insert("name".into(), json!(name));
        a.insert("path".into(), json!(relative(&input.out_dir, &app.path)));
        a.insert(
            "memory".into(),
            json!(format!("{}M", app.memory_limit_mb())),
        );
        a.insert(
            "disk_quota".into(),
            json!(format!("{}M", app.disk_limit_mb())),
        );
        a.insert("instances".into(), json!(app.instance_count()));
        if let Some(img) = &app.docker_image {
            a.insert("docker".into(), json!({ "image": img }));
        } else {
            match buildpack(app) {
                Ok(Some(bp)) => {
                    a.insert("buildpacks".into(), json!([bp]));
                }
                Ok(None) => {}
                Err(why) => ex.lost(app, why.to_string()),
            }
        }
        if let Some(rt) = &app.runtime {
            let hint = if rt.starts_with("python2") || rt == "python27" {
                "today's python_buildpack has no Python 2: port the app to Python 3 and pin the version in .python-version or runtime.txt"
            } else {
                "the buildpack picks the language version from the app's files (runtime.txt, .python-version, package.json engines, Gemfile)"
            };
            ex.note(app, format!("runtime {rt}: {hint}"));
        }

        let p = process(app);
        match &p.command {
            Some(cmd) if !p.from_default || default_needs_command(app) => {
                let c = translate(app, cmd, "0.0.0.0");
                if c.uwsgi {
                    ex.note(
                        app,
                        uwsgi_note(&c, "add `uwsgi` to requirements.txt: python_buildpack installs only that file"),
                    );
                }
                a.insert("command".into(), json!(c.text));
            }
            Some(_) => {}
            None if p.worker => {}
            None => ex.note(
                app,
                "no start command: Cloud Foundry's buildpack decides (a Procfile's `web:` line, or its default)",
            ),
        }
        let no_route = p.worker || app.urls.as_ref().is_some_and(|u| u.is_empty());
        if no_route {
            a.insert("no-route".into(), json!(true));
        } else if let Some(urls) = &app.urls {
            a.insert(
                "routes".into(),
                Value::Array(urls.iter().map(|u| json!({ "route": u })).collect()),
            );
            let local: Vec<&String> = urls
                .iter()
                .filter(|u| u.ends_with(".stackato.local"))
                .collect();
            if !local.is_empty() {
                ex.note(
                    app,
                    "routes use the domain stackato.local (`${target-base}` with no --target): pass --target https://api.YOUR-DOMAIN, or edit the routes",
                );
            }
        } else {
            ex.note(
                app,
                "no `urls:` in stackato.yml: Cloud Foundry maps its default route (NAME.<default domain>), as Stackato did",
            );
        }
        if p.worker {
            a.insert("health-check-type".into(), json!("process"));
        }
        if let Some(t) = &app.timeout {
            a.insert("timeout".into(), json!(t.value));
            if t.value > 180 {
                ex.note(
                    app,
                    format!(
                        "timeout: {}: Cloud Foundry's default maximum is 180 seconds (an operator can raise it)",
                        t.value
                    ),
                );
            }
        }

        // env: literal values go into the manifest; values using other variables into
        // .profile (Cloud Foundry sets manifest values literally); secrets stay out.
        let mut env = Map::new();
        let mut deferred = Vec::new();
        let uses_buildpack_url = app.framework_name() == Some("buildpack");
        for v in &app.env {
            let vname = &v.name.value;
            if uses_buildpack_url && vname == "BUILDPACK_URL" {
                continue;
            }
            if v.inherit {
                ex.lost(
                    app,
                    format!("env {vname}: inherit: true (taken from the pushing shell) — set it with `cf set-env {name} {vname} VALUE`"),
                );
            }
            let Some(d) = &v.default else {
                if v.required {
                    ex.lost(
                        app,
                        format!("env {vname}: required, no default (Stackato prompted at push) — set it with `cf set-env {name} {vname} VALUE`"),
                    );
                }
                continue;
            };
            if v.hidden || crate::env::mask::is_secret_name(vname) {
                ex.lost(
                    app,
                    format!("env {vname}: a secret, kept out of manifest.yml — set it with `cf set-env {name} {vname} VALUE`"),
                );
                continue;
            }
            if referenced(&d.value).is_empty() {
                // Nothing is referenced, so nothing can grow: only `\$` escapes change.
                let literal = crate::env::user::expand(&d.value, &|_| None)
                    .unwrap_or_else(|_| d.value.clone());
                env.insert(vname.clone(), json!(literal));
            } else {
                deferred.push((vname.clone(), d.value.clone()));
            }
        }
        if !env.is_empty() {
            a.insert("env".into(), Value::Object(env));
        }

        let mut bound = Vec::new();
        let mut url_services = Vec::new();
        for s in &app.services {
            let kind = s.kind.as_ref().map(|k| k.value.clone()).or_else(|| {
                input
                    .registry
                    .as_ref()
                    .and_then(|r| r.services.get(&s.name.value))
                    .map(|r| r.kind.clone())
            });
            match kind.as_deref() {
                Some("filesystem") => {
                    ex.lost(
                        app,
                        format!(
                            "service {} (filesystem) — Cloud Foundry has volume services (e.g. nfs) or use an object store",
                            s.name.value
                        ),
                    );
                    continue;
                }
                Some("harbor") => {
                    ex.lost(
                        app,
                        format!(
                            "service {} (harbor) — use a TCP route (`cf create-route DOMAIN --port N`, `cf map-route`)",
                            s.name.value
                        ),
                    );
                    continue;
                }
                _ => {}
            }
            bound.push(json!(s.name.value));
            if let Some(k) = &kind {
                url_services.push((s.name.value.clone(), k.clone()));
            }
            if !all_services.iter().any(|w| w.name == s.name.value) {
                all_services.push(Wanted {
                    name: s.name.value.clone(),
                    kind: kind.clone(),
                    creds: s.credentials.clone(),
                });
            }
        }
        for d in &app.drains {
            match drain_url(&d.url) {
                Ok(url) => {
                    let dname = format!("{name}-{}", d.name);
                    bound.push(json!(dname));
                    drains.push((dname, url));
                    if d.json {
                        ex.note(
                            app,
                            format!("drain {}: json: true has no Cloud Foundry equivalent (CF sends syslog)", d.name),
                        );
                    }
                }
                Err(why) => ex.lost(app, format!("drain {} ({}) — {why}", d.name, d.url)),
            }
        }
        if !bound.is_empty() {
            a.insert("services".into(), Value::Array(bound));
        }
        if !app.cron.is_empty() {
            ex.lost(
                app,
                format!(
                    "cron ({} entr{}) — Cloud Foundry has no cron: use a scheduler service, `cf run-task` from a CI schedule, or a worker app running a scheduler",
                    app.cron.len(),
                    if app.cron.len() == 1 { "y" } else { "ies" }
                ),
            );
        }
        let r = &app.requirements;
        let inline: Vec<String> = r.pip.iter().chain(&r.pypm).cloned().collect();
        if !inline.is_empty() {
            ex.lost(
                app,
                format!(
                    "requirements: pip/pypm ({}) — list them in requirements.txt: python_buildpack installs only that file",
                    inline.join(", ")
                ),
            );
        }
        let perl: Vec<String> = r.cpan.iter().chain(&r.ppm).cloned().collect();
        if !perl.is_empty() {
            ex.lost(
                app,
                format!(
                    "requirements: cpan/ppm ({}) — list them in a cpanfile",
                    perl.join(", ")
                ),
            );
        }
        if !app.depends_on.is_empty() {
            ex.note(
                app,
                format!(
                    "depends-on ({}): Cloud Foundry has no such key; manifest.yml lists the apps in start order and `cf push` pushes them in that order",
                    app.depends_on.iter().map(|d| d.value.as_str()).collect::<Vec<_>>().join(", ")
                ),
            );
        }
        if app.ignores.is_some() {
            ex.lost(
                app,
                "ignores — write the patterns into a .cfignore in the app directory (gitignore syntax: anchor top-level names with `/`)",
            );
        }

        let file = if multi {
            format!("{}/.profile", crate::export::slug(name))
        } else {
            ".profile".to_string()
        };
        if let Some(text) = profile_script(input, app, &url_services, &deferred, &mut ex) {
            ex.next_steps.push(format!(
                "review {file} and copy it into the app directory as .profile ({})",
                crate::diag::display_path(&app.path)
            ));
            profiles.push(OutFile::new(file, text));
        }
        apps_out.push(Value::Object(a));
    }

    let source = crate::diag::display_path(&input.manifest.file);
    let mut manifest = format!(
        "# Cloud Foundry manifest generated by `stackato-local export --format cf` from {source}.\n\
         # Paths are relative to this file. Create the services first (cf-services.sh), then:\n\
         #   cf push -f manifest.yml\n---\n"
    );
    manifest.push_str(&emit::to_yaml(&json!({ "applications": apps_out })));
    ex.files.push(OutFile::new("manifest.yml", manifest));
    if !all_services.is_empty() || !drains.is_empty() {
        let (script, secret) = services_script(&source, &all_services, &drains);
        let mut f = OutFile::new("cf-services.sh", script).executable();
        if secret {
            f = f.secret();
        }
        ex.files.push(f);
        ex.next_steps.insert(
            0,
            "check the offerings and plans in cf-services.sh against `cf marketplace`, then run it"
                .into(),
        );
    }
    ex.files.extend(profiles);
    ex.next_steps.push("cf push -f manifest.yml".into());
    ex
}

fn services_script(
    source: &str,
    services: &[Wanted],
    drains: &[(String, String)],
) -> (String, bool) {
    let mut s = format!(
        "#!/usr/bin/env bash\n\
         # Create the services of {source} on Cloud Foundry (generated by\n\
         # `stackato-local export --format cf`). Offering and plan names depend on your\n\
         # foundation's marketplace: compare with `cf marketplace` and edit them before running.\n\
         # `cf push -f manifest.yml` then binds them to the apps.\n\
         set -euo pipefail\n\n\
         exists() {{ cf service \"$1\" >/dev/null 2>&1; }}\n\
         # create NAME OFFERING PLAN: a marketplace service\n\
         create() {{ if exists \"$1\"; then echo \"service $1 exists\"; else cf create-service \"$2\" \"$3\" \"$1\"; fi; }}\n\
         # cups NAME JSON: a user-provided service with these credentials\n\
         cups() {{ if exists \"$1\"; then echo \"service $1 exists\"; else cf create-user-provided-service \"$1\" -p \"$2\"; fi; }}\n\
         # drain NAME URL: a user-provided log drain\n\
         drain() {{ if exists \"$1\"; then echo \"service $1 exists\"; else cf create-user-provided-service \"$1\" -l \"$2\"; fi; }}\n"
    );
    let mut secret = false;
    let q = crate::shell::word;
    for Wanted { name, kind, creds } in services {
        s.push('\n');
        match kind.as_deref() {
            None => s.push_str(&format!(
                "# {name}: named only in stackato.yml (bound, never created): it must exist already\n\
                 exists {n} || echo \"warning: service {name} does not exist\" >&2\n",
                n = q(name)
            )),
            Some("user-provided") => {
                let obj: Map<String, Value> = creds
                    .iter()
                    .map(|(k, v)| (k.clone(), Value::String(v.clone())))
                    .collect();
                secret |= !obj.is_empty();
                s.push_str(&format!(
                    "# {name}: user-provided on Stackato, with the credentials stackato.yml gave\ncups {} {}\n",
                    q(name),
                    q(&Value::Object(obj).to_string())
                ));
            }
            Some("memcached") => s.push_str(&format!(
                "# {name} (memcached on Stackato): marketplaces rarely offer memcached; point a\n\
                 # user-provided service at a memcached you run (edit host and port)\n\
                 cups {} '{{\"host\":\"memcached.example.internal\",\"port\":\"11211\"}}'\n",
                q(name)
            )),
            Some(k) => match offering(k) {
                Some((o, p, what)) => s.push_str(&format!(
                    "# {name} ({k} on Stackato): {what}\ncreate {o} {p} {}\n",
                    q(name)
                )),
                None => s.push_str(&format!(
                    "# {name} ({k} on Stackato): no usual marketplace offering; a user-provided\n\
                     # service with its address and credentials (edit them)\n\
                     cups {} '{{\"uri\":\"CHANGE-ME\"}}'\n",
                    q(name)
                )),
            },
        }
    }
    for (name, url) in drains {
        s.push_str(&format!(
            "\n# {name}: a Stackato log drain\ndrain {} {}\n",
            q(name),
            q(url)
        ));
    }
    (s, secret)
}

/// The `.profile` for one app, or `None` when it would be empty.
fn profile_script(
    input: &Input<'_>,
    app: &App,
    services: &[(String, String)],
    deferred: &[(String, String)],
    ex: &mut Export,
) -> Option<String> {
    let mut body = String::new();
    let urls = url_vars(services);
    if !services.is_empty() {
        body.push_str(
            "\n# Stackato set these from the bound services; Cloud Foundry sets only VCAP_SERVICES.\n\
             # Derived here with jq when the droplet has it; brokers usually give a `uri`.\n\
             if command -v jq >/dev/null 2>&1; then\n\
             \x20 _stackato_url() { # VARIABLE SERVICE FILTER\n\
             \x20   local v\n\
             \x20   v=\"$(printf '%s' \"${VCAP_SERVICES:-}\" | jq -r --arg n \"$2\" \"first(.[][] | select(.name == \\$n) | .credentials) | $3 // empty\" 2>/dev/null || true)\"\n\
             \x20   if [ -n \"$v\" ]; then export \"$1=$v\"; fi\n\
             \x20 }\n\
             \x20 STACKATO_SERVICES=\"$(printf '%s' \"${VCAP_SERVICES:-}\" | jq -c '[.[][] | {(.name): .credentials}] | add // {}' 2>/dev/null || true)\"\n\
             \x20 export STACKATO_SERVICES\n",
        );
        for (var, svc, kind) in &urls {
            body.push_str(&format!(
                "  _stackato_url {var} {} {}\n",
                crate::shell::word(svc),
                crate::shell::word(url_filter(kind))
            ));
        }
        body.push_str(
            "  unset -f _stackato_url\nelse\n  echo \"warning: jq not found: STACKATO_SERVICES and the *_URL variables are not set\" >&2\nfi\n",
        );
    }
    if !deferred.is_empty() {
        body.push_str(
            "\n# env: values that use other variables (Cloud Foundry sets manifest values literally)\n",
        );
        for l in export_lines(deferred) {
            body.push_str(&l);
            body.push('\n');
        }
        ex.note(
            app,
            format!(
                "env {}: the values use other variables, so they are exported in .profile",
                deferred
                    .iter()
                    .map(|(k, _)| k.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        );
    }
    let h = &app.hooks;
    if !h.pre_running.is_empty() {
        body.push_str(
            "\n# pre-running hooks: before every instance start, in the shell that starts the app (as on Stackato)\n",
        );
        for hook in &h.pre_running {
            if hook.ignore_failure {
                body.push_str(&hook_stmt(hook));
                body.push('\n');
            } else {
                body.push_str(&format!(
                    "{} || {{ echo \"pre-running hook failed\" >&2; exit 1; }}\n",
                    hook.command.trim_end()
                ));
            }
        }
        ex.note(
            app,
            "pre-running hooks are in .profile, which Cloud Foundry runs before every instance start",
        );
    }
    let staging: Vec<_> = h.pre_staging.iter().chain(&h.post_staging).collect();
    if !staging.is_empty() {
        body.push_str(
            "\n# Staging hooks (pre-staging, post-staging): Cloud Foundry has no such step. Better: run\n\
             # them once per push as a task, e.g.\n",
        );
        for hook in &staging {
            body.push_str(&format!(
                "#   cf run-task {} --command {}\n",
                crate::shell::word(&app.name.value),
                crate::shell::word(&hook.command)
            ));
        }
        body.push_str(
            "# Or, as below, at every start of instance 0 (they must be safe to run again):\n\
             if [ \"${CF_INSTANCE_INDEX:-0}\" = 0 ]; then\n",
        );
        for hook in &staging {
            body.push_str("  ");
            body.push_str(&hook_stmt(hook));
            body.push('\n');
        }
        body.push_str("fi\n");
        for (what, list) in [
            ("pre-staging", &h.pre_staging),
            ("post-staging", &h.post_staging),
        ] {
            if !list.is_empty() {
                ex.lost(
                    app,
                    format!(
                        "{what} hooks ({}) — no Cloud Foundry equivalent: suggested in .profile (instance 0) or as `cf run-task`",
                        commands(list)
                    ),
                );
            }
        }
    }
    if body.is_empty() {
        return None;
    }
    Some(format!(
        "# .profile for {name}, generated by `stackato-local export --format cf` from {src}.\n\
         # Cloud Foundry sources .profile from the app's root directory before the start command,\n\
         # on every instance start. Review it, then copy it into the app directory.\n{body}",
        name = app.name.value,
        src = crate::diag::display_path(&input.manifest.file),
    ))
}
