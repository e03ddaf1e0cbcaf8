//! `export --format compose`: a `compose.yaml` running each app with its services as
//! official images (postgres, mariadb, redis, memcached, mongo, rabbitmq), the environment
//! wired as on the platform (the URL variables, `VCAP_SERVICES`, `STACKATO_SERVICES` with the
//! services' host names), health-checked `depends_on` and data volumes. Credentials go into
//! `.env.compose` (0600); `compose.yaml` only references them as `${VAR}`.

use serde_json::{Map, Value, json};

use crate::export::{
    AppEnv, CredSource, Export, Input, OutFile, Secrets, Svc, Target, app_env, commands,
    compose_text, default_port, emit, exec_form, export_lines, has_secret, hook_stmt, process,
    record_for, relative, services, slug, translate, uwsgi_note,
};
use crate::manifest::App;
use crate::model::ServiceRecord;
use crate::platform::web;
use crate::random::Rng;

/// The service types we have an image for.
fn image_for(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "postgresql" => "postgres:16",
        "mysql" => "mariadb:11",
        "redis" => "redis:7",
        "memcached" => "memcached:1.6",
        "mongodb" => "mongo:7",
        "rabbitmq" | "rabbitmq3" => "rabbitmq:3",
        _ => return None,
    })
}

/// The base image for an app without a Dockerfile.
fn app_image(app: &App) -> &'static str {
    let fw = app.framework_name();
    if web::is_python(fw) {
        return "python:3";
    }
    match fw {
        Some("perl" | "perlcgi") => "perl:5",
        Some("node") => "node:20",
        Some("php") => "php:8",
        Some("ruby" | "rack" | "rails3" | "sinatra") => "ruby:3",
        Some(f) if f.starts_with("java") || matches!(f, "spring" | "grails" | "lift") => {
            "eclipse-temurin:21"
        }
        _ => {
            let has = |f: &str| app.path.join(f).is_file();
            if has("package.json") {
                "node:20"
            } else if has("Gemfile") {
                "ruby:3"
            } else {
                "python:3"
            }
        }
    }
}

/// The install steps staging ran (requirements), for an app run from a base image.
fn install_lines(app: &App, uwsgi: bool) -> Vec<String> {
    let has = |f: &str| app.path.join(f).is_file();
    let r = &app.requirements;
    let mut out = Vec::new();
    let image = app_image(app);
    if image.starts_with("python") {
        let file = app
            .env
            .iter()
            .find(|v| v.name.value == "PIP_REQUIREMENTS_FILE")
            .and_then(|v| v.default.as_ref())
            .map(|d| d.value.clone())
            .filter(|f| has(f))
            .or_else(|| {
                ["requirements.txt", "requirements.pip"]
                    .iter()
                    .find(|f| has(f))
                    .map(|f| f.to_string())
            });
        if let Some(f) = file {
            out.push(format!("pip install -r {}", crate::shell::word(&f)));
        }
        let inline: Vec<String> = r
            .pip
            .iter()
            .chain(&r.pypm)
            .map(|p| crate::shell::word(p))
            .collect();
        if !inline.is_empty() {
            out.push(format!("pip install {}", inline.join(" ")));
        }
        if uwsgi {
            out.push("pip install uwsgi".into());
        }
    }
    if image.starts_with("node") && has("package.json") {
        out.push("npm install".into());
    }
    if image.starts_with("ruby") && has("Gemfile") {
        out.push("bundle install".into());
    }
    if image.starts_with("perl") {
        if has("cpanfile") {
            out.push("cpanm --installdeps .".into());
        }
        let inline: Vec<String> = r
            .cpan
            .iter()
            .chain(&r.ppm)
            .map(|p| crate::shell::word(p))
            .collect();
        if !inline.is_empty() {
            out.push(format!("cpanm {}", inline.join(" ")));
        }
        if uwsgi {
            out.push("cpanm --notest uWSGI".into());
        }
    }
    out
}

/// `${VAR:?…}` for a value that is exactly one secret marker: compose stops with a message
/// when `.env.compose` was not given.
fn required(v: &str) -> String {
    let t = compose_text(v);
    match t.strip_prefix("${").and_then(|r| r.strip_suffix('}')) {
        Some(var) if !var.contains(['$', '{', '}', ':']) => {
            format!("${{{var}:?run docker compose with --env-file .env.compose}}")
        }
        _ => t,
    }
}

fn cred(r: &ServiceRecord, k: &str) -> String {
    match r.credentials.get(k) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(v) => v.to_string(),
    }
}

/// The compose service of one Stackato service, and its data volume.
fn service_def(svc: &Svc, r: &ServiceRecord) -> Option<(Value, Option<String>)> {
    let vol = format!("{}-data", slug(&svc.name));
    let hc =
        |test: Value| json!({ "test": test, "interval": "5s", "timeout": "5s", "retries": 30 });
    let def = match svc.kind.as_str() {
        "postgresql" => json!({
            "image": image_for("postgresql"),
            "environment": {
                "POSTGRES_USER": required(&cred(r, "user")),
                "POSTGRES_PASSWORD": required(&cred(r, "password")),
                "POSTGRES_DB": required(&cred(r, "name")),
            },
            "volumes": [format!("{vol}:/var/lib/postgresql/data")],
            "healthcheck": hc(json!(["CMD-SHELL", "pg_isready -U \"$${POSTGRES_USER}\" -d \"$${POSTGRES_DB}\""])),
        }),
        "mysql" => json!({
            "image": image_for("mysql"),
            "environment": {
                "MARIADB_USER": required(&cred(r, "user")),
                "MARIADB_PASSWORD": required(&cred(r, "password")),
                "MARIADB_DATABASE": required(&cred(r, "name")),
                "MARIADB_RANDOM_ROOT_PASSWORD": "1",
            },
            "volumes": [format!("{vol}:/var/lib/mysql")],
            "healthcheck": hc(json!(["CMD", "healthcheck.sh", "--connect", "--innodb_initialized"])),
        }),
        "redis" => {
            let pw = required(&cred(r, "password"));
            json!({
                "image": image_for("redis"),
                "command": ["redis-server", "--requirepass", pw, "--appendonly", "yes"],
                "environment": { "REDISCLI_AUTH": pw },
                "volumes": [format!("{vol}:/data")],
                "healthcheck": hc(json!(["CMD-SHELL", "redis-cli ping | grep -q PONG"])),
            })
        }
        "memcached" => {
            return Some((
                json!({ "image": image_for("memcached"), "command": ["memcached", "-m", "64"] }),
                None,
            ));
        }
        "mongodb" => json!({
            "image": image_for("mongodb"),
            "environment": {
                "MONGO_INITDB_ROOT_USERNAME": required(&cred(r, "username")),
                "MONGO_INITDB_ROOT_PASSWORD": required(&cred(r, "password")),
                "MONGO_INITDB_DATABASE": compose_text(&cred(r, "db")),
            },
            "volumes": [format!("{vol}:/data/db")],
            "healthcheck": hc(json!(["CMD", "mongosh", "--quiet", "--eval", "db.adminCommand('ping').ok"])),
        }),
        "rabbitmq" | "rabbitmq3" => json!({
            "image": image_for(&svc.kind),
            "environment": {
                "RABBITMQ_DEFAULT_USER": required(&cred(r, "user")),
                "RABBITMQ_DEFAULT_PASS": required(&cred(r, "password")),
                "RABBITMQ_DEFAULT_VHOST": compose_text(&cred(r, "vhost")),
            },
            "volumes": [format!("{vol}:/var/lib/rabbitmq")],
            "healthcheck": hc(json!(["CMD", "rabbitmq-diagnostics", "-q", "ping"])),
        }),
        _ => return None,
    };
    Some((def, Some(vol)))
}

pub(crate) fn export(
    input: &Input<'_>,
    rng: &mut dyn Rng,
) -> Result<Export, crate::random::RandomError> {
    let mut ex = Export::default();
    let svcs = services(input, CredSource::Generated, rng)?;
    let mut secrets = Secrets::default();
    let app_slugs: Vec<String> = input.apps.iter().map(|a| slug(&a.name.value)).collect();
    let host_of = |s: &Svc| {
        let h = slug(&s.name);
        if app_slugs.contains(&h) {
            format!("{h}-svc")
        } else {
            h
        }
    };

    // Records as the apps see them, and the compose services behind them.
    let mut records: Vec<ServiceRecord> = Vec::new();
    let mut svc_defs: Vec<(String, Value)> = Vec::new();
    let mut volumes = Map::new();
    let mut healthy: Vec<String> = Vec::new();
    let mut fs_mounts: Vec<(String, String)> = Vec::new();
    for s in &svcs {
        let user = input
            .apps
            .iter()
            .find(|a| a.services.iter().any(|x| x.name.value == s.name))
            .copied();
        if s.unknown {
            if let Some(a) = user {
                ex.lost(
                    a,
                    format!(
                        "service {}: only named, its type is unknown — declare it (`{}: mysql`)",
                        s.name, s.name
                    ),
                );
            }
            continue;
        }
        match s.kind.as_str() {
            "user-provided" => {
                records.push(record_for(s, "", None, &mut secrets));
                continue;
            }
            // No container: common_losses reports it.
            "harbor" => continue,
            "filesystem" => {
                let dir = format!("/srv/fs/{}", slug(&s.name));
                let mut r = record_for(s, "", None, &mut secrets);
                r.credentials.insert("dir".into(), json!(dir));
                records.push(r);
                let vol = format!("{}-fs", slug(&s.name));
                volumes.insert(vol.clone(), json!({}));
                fs_mounts.push((s.name.clone(), format!("{vol}:{dir}")));
                continue;
            }
            _ => {}
        }
        let host = host_of(s);
        let r = record_for(s, &host, default_port(&s.kind), &mut secrets);
        match service_def(s, &r) {
            Some((def, vol)) => {
                if def.get("healthcheck").is_some() {
                    healthy.push(s.name.clone());
                }
                if let Some(v) = vol {
                    volumes.insert(v, json!({}));
                }
                svc_defs.push((host, def));
                records.push(r);
            }
            None => {
                if let Some(a) = user {
                    ex.lost(
                        a,
                        format!("service {} ({}) — no official image chosen for it: add one to compose.yaml", s.name, s.kind),
                    );
                }
            }
        }
    }

    let mut services_out = Map::new();
    let mut published = 8080u16;
    for (i, app) in input.apps.iter().enumerate() {
        let target = Target {
            home: "/app".into(),
            bind_host: "0.0.0.0",
            port: Some(8080),
        };
        let mut env = app_env(input, app, &records, &target, &mut secrets, true);
        if let Some((_, v)) = env.vars.iter_mut().find(|(k, _)| k == "MONGODB_URL") {
            v.push_str("?authSource=admin");
        }
        let def = app_service(
            input,
            app,
            &env,
            &records,
            &healthy,
            &fs_mounts,
            &mut published,
            &mut ex,
        );
        for k in &env.missing {
            secrets.add(k, "");
        }
        services_out.insert(app_slugs[i].clone(), def);
    }
    for (host, def) in svc_defs {
        services_out.insert(host, def);
    }

    let source = crate::diag::display_path(&input.manifest.file);
    let mut doc = Map::new();
    doc.insert(
        "name".into(),
        json!(slug(
            &input
                .manifest
                .dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .or_else(|| input.apps.first().map(|a| a.name.value.clone()))
                .unwrap_or_default()
        )),
    );
    doc.insert("services".into(), Value::Object(services_out));
    if !volumes.is_empty() {
        doc.insert("volumes".into(), Value::Object(volumes));
    }
    let text = format!(
        "# docker compose file generated by `stackato-local export --format compose` from {source}.\n\
         # Start everything (from this directory):\n\
         #   docker compose --env-file .env.compose up --build\n\
         # Passwords are not in this file: compose reads them from .env.compose (mode 0600).\n{}",
        emit::to_yaml(&Value::Object(doc))
    );
    ex.files.push(OutFile::new("compose.yaml", text));

    let origin = if svcs.iter().any(|s| s.source == CredSource::Project) {
        "the project's stackato-local services (.stackato-local/services.json)"
    } else {
        "generated at random by stackato-local export"
    };
    let mut envf = format!(
        "# Credentials for compose.yaml: docker compose --env-file .env.compose up\n\
         # Values: {origin}. Keep this file private.\n"
    );
    for (k, v) in &secrets.vars {
        if v.is_empty() {
            envf.push_str("# required by stackato.yml, no value yet: set it\n");
        }
        match crate::shell::assign(crate::shell::Dialect::Dotenv, k, v) {
            Ok(line) => envf.push_str(&format!("{line}\n")),
            Err(e) => envf.push_str(&format!("# skipped: {e}\n")),
        }
    }
    ex.files.push(OutFile::new(".env.compose", envf).secret());
    ex.next_steps
        .push("docker compose --env-file .env.compose up --build".into());
    Ok(ex)
}

#[allow(clippy::too_many_arguments)]
fn app_service(
    input: &Input<'_>,
    app: &App,
    env: &AppEnv,
    records: &[ServiceRecord],
    healthy: &[String],
    fs_mounts: &[(String, String)],
    published: &mut u16,
    ex: &mut Export,
) -> Value {
    let mut d = Map::new();
    let rel = relative(&input.out_dir, &app.path);
    let dockerfile = app.path.join("Dockerfile").is_file();
    if dockerfile {
        d.insert("build".into(), json!(rel));
        ex.note(
            app,
            "built from its Dockerfile; the command below assumes the code is in /app",
        );
    } else {
        d.insert("image".into(), json!(app_image(app)));
    }
    d.insert("working_dir".into(), json!("/app"));
    let mut vols = Vec::new();
    if !dockerfile {
        vols.push(json!(format!("{rel}:/app")));
    }
    for s in &app.services {
        if let Some((_, m)) = fs_mounts.iter().find(|(n, _)| *n == s.name.value) {
            vols.push(json!(m));
        }
    }

    let p = process(app);
    let mut script: Vec<String> = vec!["set -e".into()];
    script.extend(export_lines(&env.deferred));
    let cmd = p.command.as_ref().map(|c| translate(app, c, "0.0.0.0"));
    if !dockerfile {
        script.extend(install_lines(app, cmd.as_ref().is_some_and(|c| c.uwsgi)));
    }
    let h = &app.hooks;
    for hook in h
        .pre_staging
        .iter()
        .chain(&h.post_staging)
        .chain(&h.pre_running)
    {
        script.push(hook_stmt(hook));
    }
    match &cmd {
        Some(c) => {
            if c.php_builtin {
                ex.note(app, crate::export::PHP_NOTE);
            }
            if c.uwsgi {
                ex.note(app, uwsgi_note(c, "installed with pip at start"));
            }
            script.push(exec_form(&c.text));
            d.insert(
                "command".into(),
                json!(["bash", "-c", compose_text(&script.join("\n"))]),
            );
        }
        None => ex.lost(
            app,
            "no command: the framework had no default web command here — set `command:` in compose.yaml",
        ),
    }
    if !p.worker {
        d.insert("ports".into(), json!([format!("{}:8080", *published)]));
        ex.note(app, format!("web on http://localhost:{}", *published));
        *published += 1;
    }
    let mut environment = Map::new();
    for (k, v) in &env.vars {
        environment.insert(k.clone(), json!(compose_text(v)));
    }
    for k in &env.missing {
        environment.insert(
            k.clone(),
            json!(format!("${{{k}:?set {k} in .env.compose}}")),
        );
    }
    d.insert("environment".into(), Value::Object(environment));
    if !vols.is_empty() {
        d.insert("volumes".into(), Value::Array(vols));
    }
    let mut deps = Map::new();
    for s in &app.services {
        let Some(r) = records.iter().find(|r| r.name == s.name.value) else {
            continue;
        };
        if matches!(r.kind.as_str(), "user-provided" | "filesystem") {
            continue;
        }
        let host = r
            .credentials
            .get("host")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let cond = if healthy.contains(&s.name.value) {
            "service_healthy"
        } else {
            "service_started"
        };
        deps.insert(host, json!({ "condition": cond }));
    }
    for dep in &app.depends_on {
        // Only apps in this file: `--app` may have left the dependency out.
        if input.apps.iter().any(|a| a.name.value == dep.value) {
            deps.insert(slug(&dep.value), json!({ "condition": "service_started" }));
        }
    }
    if !deps.is_empty() {
        d.insert("depends_on".into(), Value::Object(deps));
    }
    if !p.worker || p.command.is_some() {
        d.insert("restart".into(), json!("on-failure"));
    }

    if !h.pre_staging.is_empty() || !h.post_staging.is_empty() {
        ex.note(
            app,
            format!(
                "staging hooks ({}) run at every container start, before the process (compose has no staging step)",
                commands(&h.pre_staging.iter().chain(&h.post_staging).cloned().collect::<Vec<_>>())
            ),
        );
    }
    if app.instance_count() > 1 {
        ex.note(
            app,
            format!(
                "instances: {} — compose runs one; scale with `docker compose up --scale {}={}` after replacing the published port with a proxy",
                app.instance_count(),
                slug(&app.name.value),
                app.instance_count()
            ),
        );
    }
    if !app.cron.is_empty() {
        ex.lost(
            app,
            format!(
                "cron ({}) — compose has no scheduler: run them from the host's crontab with `docker compose exec -T {} bash -c '…'`",
                app.cron.iter().map(|c| c.value.as_str()).collect::<Vec<_>>().join("; "),
                slug(&app.name.value)
            ),
        );
    }
    if !env.inherited.is_empty() {
        ex.note(
            app,
            format!(
                "env {} (inherit: true) has its stackato.yml default; set it in .env.compose and reference it as ${{VAR}} to pass yours",
                env.inherited.join(", ")
            ),
        );
    }
    if env.vars.iter().any(|(_, v)| has_secret(v)) {
        ex.note(
            app,
            "credentials are referenced as ${VAR} and kept in .env.compose",
        );
    }
    Value::Object(d)
}
