//! `export`: the manifest as another platform's configuration (Cloud Foundry, docker compose,
//! a Procfile, systemd units), for teams leaving Stackato without rewriting their config.
//!
//! Each format is a pure function of the manifest, the project's existing service credentials
//! (`.stackato-local/services.json`, read only) and the output directory; it returns the files
//! to write and what could not be carried over. Secrets never go into a summary: they travel
//! inside strings as [`secret_ref`] markers until a writer decides whether a file gets the
//! value (a 0600 env file) or a reference to it (`${VAR}` in `compose.yaml`).

pub(crate) mod cf;
pub(crate) mod compose;
pub(crate) mod emit;
pub(crate) mod procfile;
pub(crate) mod systemd;

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use serde_json::{Map, Value};

use crate::env::mask::is_secret_name;
use crate::manifest::model::{Hook, OsRequirements, Web};
use crate::manifest::{App, Manifest};
use crate::model::ServiceRecord;
use crate::platform::env::{self as penv, Binding, DbUrlRule, Facts, SqliteEnv};
use crate::platform::layout::Layout;
use crate::platform::services::{self as shapes, is_relational, is_secret_field};
use crate::platform::{Profile, profile, web};
use crate::random::Rng;
use crate::services::registry::Registry;

/// The formats we write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Cf,
    Compose,
    Procfile,
    Systemd,
}

impl Format {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Format::Cf => "cf",
            Format::Compose => "compose",
            Format::Procfile => "procfile",
            Format::Systemd => "systemd",
        }
    }
}

/// Everything an exporter reads.
pub(crate) struct Input<'a> {
    pub manifest: &'a Manifest,
    /// The applications to export, in start order.
    pub apps: Vec<&'a App>,
    /// The project's provisioned services, when `.stackato-local/services.json` exists.
    pub registry: Option<Registry>,
    /// Remembered answers to `required` variables (`.stackato-local/answers.json`), per app.
    pub answers: BTreeMap<String, BTreeMap<String, String>>,
    /// Where the files go (absolute).
    pub out_dir: PathBuf,
    /// The domain of default URLs (`${target-base}`).
    pub domain: String,
}

/// One file to write, relative to the output directory.
#[derive(Debug, Clone)]
pub(crate) struct OutFile {
    pub name: String,
    pub contents: String,
    /// Holds credentials: written 0600 (0700 when executable).
    pub secret: bool,
    pub executable: bool,
}

impl OutFile {
    pub(crate) fn new(name: impl Into<String>, contents: String) -> OutFile {
        OutFile {
            name: name.into(),
            contents,
            secret: false,
            executable: false,
        }
    }

    pub(crate) fn secret(mut self) -> OutFile {
        self.secret = true;
        self
    }

    pub(crate) fn executable(mut self) -> OutFile {
        self.executable = true;
        self
    }

    pub(crate) fn mode(&self) -> u32 {
        match (self.secret, self.executable) {
            (true, true) => 0o700,
            (true, false) => 0o600,
            (false, true) => 0o755,
            (false, false) => 0o644,
        }
    }
}

/// What an export produced.
#[derive(Debug, Default)]
pub(crate) struct Export {
    pub files: Vec<OutFile>,
    /// What the target has no place for, one line each.
    pub not_carried: Vec<String>,
    /// How things were translated, and what to check.
    pub notes: Vec<String>,
    /// What to do next, as commands.
    pub next_steps: Vec<String>,
}

impl Export {
    fn lost(&mut self, app: &App, what: impl AsRef<str>) {
        self.not_carried
            .push(format!("{}: {}", app.name.value, what.as_ref()));
    }

    fn note(&mut self, app: &App, what: impl AsRef<str>) {
        self.notes
            .push(format!("{}: {}", app.name.value, what.as_ref()));
    }

    /// The two caveats every env-file export shares: services named only (no type), and
    /// `inherit: true` variables written with their stackato.yml default into `env_file`.
    fn note_unknowns(&mut self, app: &App, svcs: &[Svc], inherited: &[String], env_file: &str) {
        for s in svcs.iter().filter(|s| s.unknown) {
            if app.services.iter().any(|x| x.name.value == s.name) {
                self.lost(
                    app,
                    format!("service {}: only named, its type is unknown", s.name),
                );
            }
        }
        if !inherited.is_empty() {
            self.note(
                app,
                format!(
                    "env {} (inherit: true): {env_file} has the stackato.yml default; edit it",
                    inherited.join(", ")
                ),
            );
        }
    }
}

/// Produce the files of `format`.
pub(crate) fn export(
    format: Format,
    input: &Input<'_>,
    rng: &mut dyn Rng,
) -> Result<Export, crate::random::RandomError> {
    let mut ex = match format {
        Format::Cf => cf::export(input),
        Format::Compose => compose::export(input, rng)?,
        Format::Procfile => procfile::export(input, rng)?,
        Format::Systemd => systemd::export(input, rng)?,
    };
    for app in &input.apps {
        common_losses(format, app, &mut ex);
    }
    let secret: Vec<String> = ex
        .files
        .iter()
        .filter(|f| f.secret)
        .map(|f| format!("/{}", f.name))
        .collect();
    if !secret.is_empty() && !ex.files.iter().any(|f| f.name == ".gitignore") {
        ex.files.push(OutFile::new(
            ".gitignore",
            format!(
                "# These files hold credentials: keep them out of version control.\n{}\n",
                secret.join("\n")
            ),
        ));
    }
    Ok(ex)
}

/// Manifest keys no target carries over, the same for every format.
fn common_losses(format: Format, app: &App, ex: &mut Export) {
    let os = os_packages(app);
    if !os.is_empty() {
        let hint = match format {
            Format::Cf => "use the apt-buildpack (apt.yml) or a Docker image",
            Format::Compose => "install them in a Dockerfile (RUN apt-get install …)",
            Format::Procfile => "install them on the host (or with a buildpack)",
            Format::Systemd => "install them on the host with apt-get",
        };
        ex.lost(
            app,
            format!("requirements: OS packages {} — {hint}", os.join(", ")),
        );
    }
    if !app.hooks.pre_push.is_empty() {
        ex.lost(
            app,
            format!(
                "pre-push hooks ({}) ran on the developer's machine before each push: run them yourself before deploying",
                commands(&app.hooks.pre_push)
            ),
        );
    }
    if !app.hooks.legacy_running.is_empty() {
        ex.lost(
            app,
            "legacy-running hooks (an internal Stackato stage; not run anywhere)",
        );
    }
    if app.sso_enabled {
        ex.lost(
            app,
            "sso-enabled: Stackato's single sign-on in front of the app — put an authenticating proxy in front of it",
        );
    }
    if let Some(a) = &app.autoscale
        && a.enabled
    {
        let hint = match format {
            Format::Cf => "use the App Autoscaler service (cf create-autoscaling-policy)",
            _ => "scale by hand or with your orchestrator",
        };
        ex.lost(app, format!("autoscale — {hint}"));
    }
    if !app.drains.is_empty() && format != Format::Cf {
        let names: Vec<&str> = app.drains.iter().map(|d| d.name.as_str()).collect();
        ex.lost(
            app,
            format!(
                "drain ({}) — send the logs with your log shipper (journald, docker logging driver…)",
                names.join(", ")
            ),
        );
    }
    let mv = &app.min_version;
    if mv.client.is_some() || mv.server.is_some() {
        let mut v = Vec::new();
        if let Some(c) = &mv.client {
            v.push(format!("client {}", c.value));
        }
        if let Some(s) = &mv.server {
            v.push(format!("server {}", s.value));
        }
        ex.lost(
            app,
            format!(
                "min_version ({}) — a check of the Stackato client/server versions; nothing to do",
                v.join(", ")
            ),
        );
    }
    if let Some(z) = &app.placement_zone {
        ex.lost(app, format!("placement-zone: {z}"));
    }
    if let Some(s) = &app.stack {
        ex.lost(
            app,
            format!("stack: {s} (a Stackato stack name; the target chooses its own)"),
        );
    }
    for s in &app.services {
        match s.kind.as_ref().map(|k| k.value.as_str()) {
            Some("harbor") if format != Format::Cf => ex.lost(
                app,
                format!(
                    "service {} (harbor: an extra public TCP port) — publish a port yourself",
                    s.name.value
                ),
            ),
            Some("filesystem") if format != Format::Compose => ex.lost(
                app,
                format!(
                    "service {} (filesystem: a persistent directory shared by instances) — mount shared storage yourself",
                    s.name.value
                ),
            ),
            _ => {}
        }
    }
}

/// OS packages of `requirements:` (`ubuntu`, `redhat`, `unix`, `staging`, `running`).
pub(crate) fn os_packages(app: &App) -> Vec<String> {
    let r = &app.requirements;
    let mut out = Vec::new();
    let mut add = |o: &OsRequirements| {
        for p in o.ubuntu.iter().chain(&o.redhat).chain(&o.unix) {
            let s = match p {
                crate::manifest::model::OsPackage::Package(n) => n.clone(),
                crate::manifest::model::OsPackage::Repository(r) => format!("repository {r}"),
            };
            if !out.contains(&s) {
                out.push(s);
            }
        }
    };
    add(&r.os);
    add(&r.staging);
    add(&r.running);
    out
}

/// `a; b; c` for messages.
pub(crate) fn commands(hooks: &[Hook]) -> String {
    hooks
        .iter()
        .map(|h| h.command.as_str())
        .collect::<Vec<_>>()
        .join("; ")
}

// ---------------------------------------------------------------------------------------------
// Processes and commands

/// What an app runs.
#[derive(Debug, Clone)]
pub(crate) struct Process {
    /// No web process (`web: ~`, `standalone`): a worker without a route.
    pub worker: bool,
    /// The command as the manifest (or the framework's default) gives it, before translation.
    pub command: Option<String>,
    /// The command is the framework's default, not written in the manifest.
    pub from_default: bool,
}

/// The app's process: `processes: web`, else `command:`, else the framework's default.
pub(crate) fn process(app: &App) -> Process {
    match &app.web {
        Web::Command(c) => Process {
            worker: false,
            command: Some(c.value.clone()),
            from_default: false,
        },
        Web::Worker => Process {
            worker: true,
            command: app.command.as_ref().map(|c| c.value.clone()),
            from_default: false,
        },
        Web::Default => match &app.command {
            Some(c) => Process {
                worker: false,
                command: Some(c.value.clone()),
                from_default: false,
            },
            None => Process {
                worker: false,
                command: default_web(app),
                from_default: true,
            },
        },
    }
}

/// The framework's default web command (`$PROCESSES_WEB`) in portable form, from the table
/// `run` uses too ([`web::default_web_template`]): `$PORT`, `$HOME`, `$STACKATO_DOCUMENT_ROOT`,
/// `$STACKATO_UWSGI` and `$VCAP_APP_HOST` are left to the target ([`translate`] fills in the
/// host).
pub(crate) fn default_web(app: &App) -> Option<String> {
    web::default_web_template(app)
        .map(|d| d.template().to_string())
        .or_else(|| {
            // A buildpack app without a Procfile: its release's default, once `run` staged it.
            let bp = app.framework_name() == Some("buildpack")
                || crate::stage::buildpack::manifest_value(app).is_some();
            bp.then(|| crate::stage::buildpack::last_release_web(app))
                .flatten()
        })
}

/// Replace the shell variable `name` (`$name` or `${name}`) in `s` with `with`.
pub(crate) fn replace_var(s: &str, name: &str, with: &str) -> String {
    let braced = format!("${{{name}}}");
    let s = s.replace(&braced, with);
    let bare = format!("${name}");
    let mut out = String::with_capacity(s.len());
    let mut rest = s.as_str();
    while let Some(i) = rest.find(&bare) {
        let after = &rest[i + bare.len()..];
        let escaped = rest[..i].ends_with('\\');
        let continues = after
            .chars()
            .next()
            .is_some_and(|c| c == '_' || c.is_ascii_alphanumeric());
        out.push_str(&rest[..i]);
        if escaped || continues {
            out.push_str(&bare);
        } else {
            out.push_str(with);
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

/// Whether `s` uses the shell variable `name`.
pub(crate) fn uses_var(s: &str, name: &str) -> bool {
    replace_var(s, name, "\u{0}") != s
}

/// A command translated for a target.
#[derive(Debug, Clone)]
pub(crate) struct Command {
    pub text: String,
    /// `$STACKATO_UWSGI` became a uWSGI command line (uWSGI must be installed).
    pub uwsgi: bool,
    /// A Perl app's uWSGI (needs the psgi plugin).
    pub perl: bool,
    /// `php -S` that `run` gives its router: exported without it (see [`PHP_NOTE`]).
    pub php_builtin: bool,
}

/// The note for an exported `php -S` command: what `run`'s router did is not there.
pub(crate) const PHP_NOTE: &str = "the PHP command is PHP's built-in server without stackato-local's router: .htaccess rules (front controller, DirectoryIndex, rewrites, redirects), the 404s of unknown paths and the refusal of .ht* files are not applied, and $STACKATO_APP_ROOT/apache/php/*.ini is not read; serve the app with Apache and mod_php (as the platform did) for those";

/// The uWSGI command `$STACKATO_UWSGI` stood for, listening on `host:$PORT` (the arguments
/// `run` gives its own uWSGI, [`web::uwsgi_args`]).
pub(crate) fn uwsgi_line(app: &App, host: &str) -> String {
    let args = web::uwsgi_args_any(app);
    format!("uwsgi {}", web::expand(&args, &[("VCAP_APP_HOST", host)]))
}

/// Translate the platform-only variables of a command: `$PROCESSES_WEB` (the default
/// command), `$STACKATO_UWSGI` (a uWSGI line), `$VCAP_APP_PORT` (`$PORT`), `$VCAP_APP_HOST`.
pub(crate) fn translate(app: &App, cmd: &str, host: &str) -> Command {
    let mut text = cmd.to_string();
    if uses_var(&text, "PROCESSES_WEB") {
        let d = default_web(app).unwrap_or_default();
        text = replace_var(&text, "PROCESSES_WEB", &d);
    }
    // The PHP router lives in run's instance root; an exported target serves PHP its own way.
    let php_builtin = text.contains(web::PHP_ROUTER);
    text = text.replace(&format!(" {}", web::PHP_ROUTER), "");
    let uwsgi = uses_var(&text, "STACKATO_UWSGI");
    if uwsgi {
        text = replace_var(&text, "STACKATO_UWSGI", &uwsgi_line(app, host));
    }
    text = replace_var(&text, "VCAP_APP_PORT", "$PORT");
    text = replace_var(&text, "VCAP_APP_HOST", host);
    Command {
        text,
        uwsgi,
        perl: uwsgi
            && (web::is_perl(app.framework_name())
                || crate::platform::perl::is_cgi(app.framework_name())),
        php_builtin,
    }
}

/// The note explaining a `$STACKATO_UWSGI` translation.
pub(crate) fn uwsgi_note(c: &Command, install: &str) -> String {
    if c.perl && c.text.contains("--plugin cgi") {
        format!(
            "$STACKATO_UWSGI became a uWSGI command line with its CGI plugin (--plugin cgi --cgi $HOME): it needs uWSGI's cgi plugin ({install}; Debian: uwsgi-core)"
        )
    } else if c.perl {
        format!(
            "$STACKATO_UWSGI became a uWSGI command line (--psgi): it needs uWSGI built with the psgi plugin ({install}); \
             or serve app.psgi with `plackup -s Starman --port $PORT app.psgi`"
        )
    } else {
        format!(
            "$STACKATO_UWSGI became `uwsgi --http-socket … --wsgi-file …` with your options kept ({install}); \
             gunicorn works too: `gunicorn --bind 0.0.0.0:$PORT wsgi:application` (serve static files with WhiteNoise)"
        )
    }
}

/// `exec CMD` when `exec` replaces the shell with the whole command, else the command itself.
pub(crate) fn exec_form(cmd: &str) -> String {
    let t = cmd.trim();
    let simple =
        !t.contains(['\n', ';', '&', '|', '(', ')', '<', '>', '`']) && !t.starts_with("exec ");
    if simple {
        format!("exec {t}")
    } else {
        t.to_string()
    }
}

/// A hook as one shell statement; `-` entries may fail.
pub(crate) fn hook_stmt(h: &Hook) -> String {
    let c = h.command.trim_end();
    if h.ignore_failure && !c.ends_with('&') {
        format!("{c} || true")
    } else {
        c.to_string()
    }
}

/// Statements as one line (`a && b`, a background job followed by a space).
pub(crate) fn one_line(stmts: &[String]) -> String {
    let mut out = String::new();
    for (i, s) in stmts.iter().enumerate() {
        let s = s.trim();
        out.push_str(s);
        if i + 1 < stmts.len() {
            out.push_str(if s.ends_with('&') { " " } else { " && " });
        }
    }
    out
}

/// Whether a pre-running hook needs to share the process's shell (an `export`, a background
/// job, `cd`, `source`): the platform ran hooks and the process in one shell.
pub(crate) fn needs_shell(h: &Hook) -> bool {
    let c = h.command.trim();
    c.ends_with('&')
        || c.contains("export ")
        || c.starts_with("cd ")
        || c.starts_with(". ")
        || c.starts_with("source ")
        || c.contains("ulimit ")
        || c.contains("umask ")
}

// ---------------------------------------------------------------------------------------------
// Secrets

const SECRET_OPEN: char = '\u{1}';
const SECRET_CLOSE: char = '\u{2}';
/// Closes a marker that sits inside a JSON string: its value is JSON-escaped when revealed.
const SECRET_CLOSE_JSON: char = '\u{3}';

/// A marker standing for the secret variable `var` inside a string.
pub(crate) fn secret_ref(var: &str) -> String {
    format!("{SECRET_OPEN}{var}{SECRET_CLOSE}")
}

/// After serialising markers into JSON text (`\u0001VAR\u0002`), turn them back into
/// markers whose values will be JSON-escaped.
pub(crate) fn json_markers(json: &str) -> String {
    json.replace("\\u0001", &SECRET_OPEN.to_string())
        .replace("\\u0002", &SECRET_CLOSE_JSON.to_string())
}

/// Replace each marker with `f(var, in_json)`, and the text between with `lit(text)`.
fn map_secrets(s: &str, lit: &dyn Fn(&str) -> String, f: &dyn Fn(&str, bool) -> String) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find(SECRET_OPEN) {
        out.push_str(&lit(&rest[..i]));
        let after = &rest[i + SECRET_OPEN.len_utf8()..];
        match after.find([SECRET_CLOSE, SECRET_CLOSE_JSON]) {
            Some(j) => {
                let json = after[j..].starts_with(SECRET_CLOSE_JSON);
                out.push_str(&f(&after[..j], json));
                rest = &after[j + SECRET_CLOSE.len_utf8()..];
            }
            None => {
                rest = after;
            }
        }
    }
    out.push_str(&lit(rest));
    out
}

/// Whether `s` holds a secret marker.
pub(crate) fn has_secret(s: &str) -> bool {
    s.contains(SECRET_OPEN)
}

/// Secret variables and their values, in the order they were first used.
#[derive(Debug, Clone, Default)]
pub(crate) struct Secrets {
    pub vars: Vec<(String, String)>,
}

impl Secrets {
    /// Record `var = value` (the first value wins) and return its marker.
    pub(crate) fn add(&mut self, var: &str, value: &str) -> String {
        if !self.vars.iter().any(|(k, _)| k == var) {
            self.vars.push((var.to_string(), value.to_string()));
        }
        secret_ref(var)
    }

    pub(crate) fn get(&self, var: &str) -> Option<&str> {
        self.vars
            .iter()
            .find(|(k, _)| k == var)
            .map(|(_, v)| v.as_str())
    }

    /// The real text: each marker replaced by its value (for 0600 files).
    pub(crate) fn reveal(&self, s: &str) -> String {
        map_secrets(s, &|t| t.to_string(), &|v, json| {
            let value = self.get(v).unwrap_or_default();
            if json {
                let q = serde_json::to_string(value).unwrap_or_default();
                q.get(1..q.len().saturating_sub(1))
                    .unwrap_or_default()
                    .to_string()
            } else {
                value.to_string()
            }
        })
    }
}

/// The text for `compose.yaml`: `$` doubled (compose would interpolate it) and each marker
/// turned into `${VAR}`, which compose fills from `--env-file .env.compose`.
pub(crate) fn compose_text(s: &str) -> String {
    map_secrets(s, &|t| t.replace('$', "$$"), &|v, _| format!("${{{v}}}"))
}

// ---------------------------------------------------------------------------------------------
// Services

/// Where a service's credentials came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CredSource {
    /// `.stackato-local/services.json`.
    Project,
    /// Fresh random values.
    Generated,
    /// `change-me` placeholders.
    Placeholder,
}

/// A service the exported apps use, merged across apps.
#[derive(Debug, Clone)]
pub(crate) struct Svc {
    pub name: String,
    pub kind: String,
    /// Prefix of its variables: `STACKTO_DEMO_DB` for `stackto-demo-db`.
    pub var: String,
    /// Credentials in the platform's shape (host and port set per target).
    pub creds: Map<String, Value>,
    pub source: CredSource,
    /// The local stand-in's port, when the project has one.
    pub local_port: Option<u16>,
    /// Named only (CF v2 list form) and unknown to the project: its type is unknown.
    pub unknown: bool,
}

/// The port each server listens on by default.
pub(crate) fn default_port(kind: &str) -> Option<u16> {
    Some(match kind {
        "mysql" => 3306,
        "postgresql" => 5432,
        "redis" => 6379,
        "memcached" => 11211,
        "mongodb" => 27017,
        "rabbitmq" | "rabbitmq3" => 5672,
        _ => return None,
    })
}

/// The services of the exported apps, in first-use order, with credentials: the project's
/// own when it has them, else from `fallback` (fresh random ones or placeholders).
pub(crate) fn services(
    input: &Input<'_>,
    fallback: CredSource,
    rng: &mut dyn Rng,
) -> Result<Vec<Svc>, crate::random::RandomError> {
    let mut out: Vec<Svc> = Vec::new();
    for app in &input.apps {
        for s in &app.services {
            if out.iter().any(|o| o.name == s.name.value) {
                continue;
            }
            let known = input
                .registry
                .as_ref()
                .and_then(|r| r.services.get(&s.name.value));
            let kind = match (&s.kind, known) {
                (Some(k), _) => k.value.clone(),
                (None, Some(r)) => r.kind.clone(),
                (None, None) => {
                    out.push(Svc {
                        name: s.name.value.clone(),
                        kind: String::new(),
                        var: crate::shell::safe_name(&s.name.value),
                        creds: Map::new(),
                        source: fallback,
                        local_port: None,
                        unknown: true,
                    });
                    continue;
                }
            };
            let (creds, source, local_port) = match known {
                Some(r) if r.kind == kind => (r.credentials.clone(), CredSource::Project, r.port),
                _ => match fallback {
                    CredSource::Placeholder => (
                        placeholder(&kind, &s.name.value, &s.credentials),
                        fallback,
                        None,
                    ),
                    _ => (
                        shapes::generate(&kind, default_port(&kind), None, &s.credentials, rng)?,
                        CredSource::Generated,
                        None,
                    ),
                },
            };
            out.push(Svc {
                name: s.name.value.clone(),
                kind,
                var: crate::shell::safe_name(&s.name.value),
                creds,
                source,
                local_port,
                unknown: false,
            });
        }
    }
    Ok(out)
}

fn placeholder(kind: &str, name: &str, user_provided: &[(String, String)]) -> Map<String, Value> {
    let ident: String = name
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    let s = |v: &str| Value::String(v.to_string());
    let fields: &[(&str, &str)] = match kind {
        "user-provided" => {
            return user_provided
                .iter()
                .map(|(k, v)| (k.clone(), s(v)))
                .collect();
        }
        "mysql" | "postgresql" | "oracledb" | "mssql2012" | "mssql2014" => &[
            ("name", &ident),
            ("user", &ident),
            ("username", &ident),
            ("password", "change-me"),
        ],
        "redis" => &[("password", "change-me")],
        "mongodb" => &[
            ("username", &ident),
            ("password", "change-me"),
            ("db", "db"),
        ],
        "rabbitmq" | "rabbitmq3" => &[
            ("user", &ident),
            ("username", &ident),
            ("password", "change-me"),
            ("vhost", "/"),
        ],
        _ => &[],
    };
    fields.iter().map(|(k, v)| (k.to_string(), s(v))).collect()
}

/// Which variable a credential field goes into, if it is kept out of the main file.
fn field_var(kind: &str, prefix: &str, field: &str) -> Option<String> {
    let f = field.to_ascii_lowercase();
    if matches!(f.as_str(), "password" | "pass") {
        return Some(format!("{prefix}_PASSWORD"));
    }
    if is_secret_field(&f) {
        return Some(format!("{prefix}_{}", crate::shell::safe_name(field)));
    }
    let userish = is_relational(kind) || kind == "mongodb" || kind.starts_with("rabbitmq");
    if userish && matches!(f.as_str(), "user" | "username") {
        return Some(format!("{prefix}_USER"));
    }
    if is_relational(kind) && f == "name" {
        return Some(format!("{prefix}_DB"));
    }
    None
}

/// The service record as the app at `host:port` sees it, its secrets (and user/database
/// names) replaced by markers recorded in `secrets`.
pub(crate) fn record_for(
    svc: &Svc,
    host: &str,
    port: Option<u16>,
    secrets: &mut Secrets,
) -> ServiceRecord {
    let mut creds = Map::new();
    for (k, v) in &svc.creds {
        let value = match (v, field_var(&svc.kind, &svc.var, k)) {
            (Value::String(s), Some(var)) => Value::String(secrets.add(&var, s)),
            (other, _) => other.clone(),
        };
        creds.insert(k.clone(), value);
    }
    if shapes::has_port(&svc.kind) && svc.kind != "user-provided" {
        for k in ["hostname", "host"] {
            creds.insert(k.into(), Value::String(host.to_string()));
        }
        if let Some(p) = port {
            creds.insert("port".into(), Value::from(p));
        }
    }
    if svc.kind.starts_with("rabbitmq") {
        let g = |k: &str| {
            creds
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string()
        };
        let url = format!(
            "amqp://{}:{}@{host}:{}/{}",
            g("user"),
            g("password"),
            port.unwrap_or(5672),
            g("vhost").trim_start_matches('/')
        );
        creds.insert("url".into(), Value::String(url));
    }
    ServiceRecord {
        name: svc.name.clone(),
        kind: svc.kind.clone(),
        port,
        credentials: creds,
    }
}

// ---------------------------------------------------------------------------------------------
// The environment

/// Where the app lives on the target.
pub(crate) struct Target<'a> {
    /// `$HOME`: the app directory there.
    pub home: String,
    /// The address processes bind (`VCAP_APP_HOST`).
    pub bind_host: &'a str,
    /// `$PORT`, when the target fixes it in the environment (compose); `None` when the
    /// process manager sets it per process (foreman, systemd units).
    pub port: Option<u16>,
}

/// An app's environment on a target.
#[derive(Debug, Clone, Default)]
pub(crate) struct AppEnv {
    /// Values may hold secret markers.
    pub vars: Vec<(String, String)>,
    /// `env:` values that use variables the target cannot expand statically: exported by the
    /// shell that starts the process (`export K="V"`), as the platform did.
    pub deferred: Vec<(String, String)>,
    /// `required` variables without a value.
    pub missing: Vec<String>,
    /// `env:` variables with `inherit: true`.
    pub inherited: Vec<String>,
}

/// Variables of the platform's runtime environment worth carrying to another host.
fn keep_platform_var(k: &str) -> bool {
    matches!(
        k,
        "HOME"
            | "PORT"
            | "VCAP_APP_PORT"
            | "VCAP_APP_HOST"
            | "STACKATO_APP_NAME"
            | "STACKATO_APP_NAME_UPCASE"
            | "STACKATO_DOCUMENT_ROOT"
            | "STACKATO_START_FILE"
            | "PYTHONPATH"
            | "MEMORY_LIMIT"
            | "VCAP_SERVICES"
            | "STACKATO_SERVICES"
    ) || k.ends_with("_URL")
        || k.starts_with("STACKATO_FILESYSTEM")
}

/// The environment of `app` on `target`: the platform's variables (built by the same code as
/// `stackato-local env`, with the services' target addresses), then the `env:` defaults,
/// expanded as the platform's shell did when every variable they use is known.
pub(crate) fn app_env(
    input: &Input<'_>,
    app: &App,
    records: &[ServiceRecord],
    target: &Target<'_>,
    secrets: &mut Secrets,
    use_answers: bool,
) -> AppEnv {
    let bindings: Vec<Binding> = app
        .services
        .iter()
        .filter_map(|s| records.iter().find(|r| r.name == s.name.value))
        .map(|r| Binding {
            record: r.clone(),
            sqlite: None,
        })
        .collect();
    let home = PathBuf::from(&target.home);
    let layout = Layout {
        home: home.clone(),
        app_root: home.clone(),
        logs: home.join("logs"),
        state: home.join(".state"),
        venv: home.join(".venv"),
    };
    let facts = Facts {
        now: 0,
        user: "app".into(),
        domain: input.domain.clone(),
        path: "/usr/local/bin:/usr/bin:/bin".into(),
        perl5lib: None,
        lang: "C.UTF-8".into(),
    };
    let profile: Profile = profile::default_for(input.manifest).profile;
    let pin = penv::Input {
        manifest: input.manifest,
        app,
        profile,
        layout: &layout,
        instance: 0,
        port: target.port.unwrap_or(8080),
        bindings: &bindings,
        facts: &facts,
        db_url_rule: DbUrlRule::Relational,
        sqlite_env: SqliteEnv::Omit,
        router_port: None,
    };
    let platform = penv::runtime(&pin);
    let mut out = AppEnv::default();
    for (k, v) in platform.sorted_pairs() {
        if !keep_platform_var(k) {
            continue;
        }
        if target.port.is_none() && matches!(k, "PORT" | "VCAP_APP_PORT") {
            continue;
        }
        let v = match k {
            "VCAP_APP_HOST" => target.bind_host.to_string(),
            "VCAP_SERVICES" | "STACKATO_SERVICES" => json_markers(v),
            _ => v.to_string(),
        };
        out.vars.push((k.to_string(), v));
    }
    // The platform's order: HOME first, then the rest sorted.
    out.vars.sort_by_key(|(k, _)| (k != "HOME", k.clone()));
    let answers = input.answers.get(&app.name.value);
    for var in &app.env {
        let name = var.name.value.clone();
        if var.inherit {
            out.inherited.push(name.clone());
        }
        let value = match (&var.default, answers.and_then(|a| a.get(&name))) {
            (_, Some(a)) if use_answers => a.clone(),
            (Some(d), _) => d.value.clone(),
            (None, _) => {
                if var.required {
                    out.missing.push(name);
                }
                continue;
            }
        };
        let secret = var.hidden || is_secret_name(&name);
        let refs = referenced(&value);
        let known = |n: &str| {
            out.vars
                .iter()
                .rev()
                .find(|(k, _)| k == n)
                .map(|(_, v)| v.clone())
        };
        let all_known = refs.iter().all(|r| known(r).is_some());
        if !refs.is_empty() && !all_known && !secret {
            out.deferred.push((name, value));
            continue;
        }
        let Ok(expanded) = crate::env::user::expand(&value, &|n| {
            Some(known(n).unwrap_or_else(|| format!("${n}")))
        }) else {
            // Too long once expanded: leave it to the platform's shell.
            out.deferred.push((name, value));
            continue;
        };
        let expanded = if secret {
            secrets.add(&name, &expanded)
        } else {
            expanded
        };
        out.vars.retain(|(k, _)| *k != name);
        out.vars.push((name, expanded));
    }
    out
}

/// The shell variables a value uses (`$X`, `${X}`).
pub(crate) fn referenced(value: &str) -> Vec<String> {
    let seen = RefCell::new(Vec::new());
    // Every lookup answers nothing, so the expansion cannot fail.
    let _ = crate::env::user::expand(value, &|n| {
        seen.borrow_mut().push(n.to_string());
        None
    });
    seen.into_inner()
}

/// `export K="V"` lines for deferred variables: `$VAR` and `${VAR}` expand when the script runs,
/// as on the platform; nothing else in the value is special. (Names are `env:` keys, which the
/// manifest reader checked are shell identifiers; any other is left out.)
pub(crate) fn export_lines(deferred: &[(String, String)]) -> Vec<String> {
    deferred
        .iter()
        .filter_map(|(k, v)| crate::shell::assign_expanding(k, v).ok())
        .collect()
}

/// A `KEY=VALUE` file (0600): the variables with their real values.
pub(crate) fn env_file(header: &[String], env: &AppEnv, secrets: &Secrets) -> String {
    let mut s = String::new();
    for h in header {
        s.push_str(&format!("# {h}\n"));
    }
    for (k, v) in &env.vars {
        match crate::shell::assign(crate::shell::Dialect::Dotenv, k, &secrets.reveal(v)) {
            Ok(line) => s.push_str(&format!("{line}\n")),
            Err(e) => s.push_str(&format!("# skipped: {e}\n")),
        }
    }
    for k in &env.missing {
        match crate::shell::assign(crate::shell::Dialect::Dotenv, k, "") {
            Ok(line) => s.push_str(&format!(
                "# required by stackato.yml, no value yet: set it\n{line}\n"
            )),
            Err(e) => s.push_str(&format!("# skipped: {e}\n")),
        }
    }
    s
}

// ---------------------------------------------------------------------------------------------
// Paths

/// `to` relative to the directory `from` (both absolute), `.` when equal.
pub(crate) fn relative(from: &Path, to: &Path) -> String {
    let norm = |p: &Path| -> Vec<String> {
        let mut v: Vec<String> = Vec::new();
        for c in p.components() {
            match c {
                Component::Normal(s) => v.push(s.to_string_lossy().into_owned()),
                Component::ParentDir => {
                    v.pop();
                }
                _ => {}
            }
        }
        v
    };
    let (f, t) = (norm(from), norm(to));
    let common = f.iter().zip(&t).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<String> = std::iter::repeat_n("..".to_string(), f.len() - common).collect();
    parts.extend(t[common..].iter().cloned());
    if parts.is_empty() {
        ".".into()
    } else {
        parts.join("/")
    }
}

/// A name safe for files, units and compose services: lower case, `[a-z0-9_-]`.
pub(crate) fn slug(s: &str) -> String {
    let v: String = s
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    let v = v.trim_matches('-').to_string();
    if v.is_empty() { "app".into() } else { v }
}

// ---------------------------------------------------------------------------------------------
// Writing

#[derive(Debug, thiserror::Error)]
pub(crate) enum WriteError {
    #[error("{} already exist{}", list(.0), if .0.len() == 1 { "s" } else { "" })]
    Exists(Vec<PathBuf>),
    #[error("cannot write {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

fn list(p: &[PathBuf]) -> String {
    p.iter()
        .map(|p| crate::diag::display_path(p))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Write the files into `dir`. Existing files are refused (nothing is written) unless
/// `force`. Each file is written whole (a temp file renamed over the target) with its mode.
pub(crate) fn write(
    dir: &Path,
    files: &[OutFile],
    force: bool,
) -> Result<Vec<PathBuf>, WriteError> {
    let paths: Vec<PathBuf> = files.iter().map(|f| dir.join(&f.name)).collect();
    if !force {
        let existing: Vec<PathBuf> = paths
            .iter()
            .filter(|p| std::fs::symlink_metadata(p).is_ok())
            .cloned()
            .collect();
        if !existing.is_empty() {
            return Err(WriteError::Exists(existing));
        }
    }
    for (f, path) in files.iter().zip(&paths) {
        let parent = path.parent().unwrap_or(dir);
        std::fs::create_dir_all(parent).map_err(|source| WriteError::Io {
            path: parent.to_path_buf(),
            source,
        })?;
        let tmp = parent.join(format!(
            ".{}.tmp.{}",
            path.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            std::process::id()
        ));
        let result = (|| -> std::io::Result<()> {
            let _ = std::fs::remove_file(&tmp);
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(f.mode())
                .open(&tmp)?;
            file.write_all(f.contents.as_bytes())?;
            file.set_permissions(std::fs::Permissions::from_mode(f.mode()))?;
            file.sync_all()?;
            std::fs::rename(&tmp, path)
        })();
        if let Err(source) = result {
            let _ = std::fs::remove_file(&tmp);
            return Err(WriteError::Io {
                path: path.clone(),
                source,
            });
        }
    }
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replace_only_whole_variables() {
        assert_eq!(
            replace_var(
                "$STACKATO_UWSGI --x ${STACKATO_UWSGI} $STACKATO_UWSGI_X \\$STACKATO_UWSGI",
                "STACKATO_UWSGI",
                "u"
            ),
            "u --x u $STACKATO_UWSGI_X \\$STACKATO_UWSGI"
        );
        assert!(uses_var("a $PORT", "PORT"));
        assert!(!uses_var("a $PORTS", "PORT"));
    }

    #[test]
    fn secrets_are_markers_until_written() {
        let mut s = Secrets::default();
        let m = s.add("DB_PASSWORD", "hunter2");
        let text = format!("mysql://u:{m}@db:3306/x $HOME");
        assert_eq!(s.reveal(&text), "mysql://u:hunter2@db:3306/x $HOME");
        assert_eq!(
            compose_text(&text),
            "mysql://u:${DB_PASSWORD}@db:3306/x $$HOME"
        );
        assert!(!compose_text(&text).contains("hunter2"));
    }

    #[test]
    fn relative_paths() {
        assert_eq!(
            relative(Path::new("/a/b/out/cf"), Path::new("/a/b")),
            "../.."
        );
        assert_eq!(relative(Path::new("/a/b"), Path::new("/a/b")), ".");
        assert_eq!(relative(Path::new("/a/b"), Path::new("/a/b/c")), "c");
        assert_eq!(relative(Path::new("/x/y"), Path::new("/a")), "../../a");
    }

    #[test]
    fn exec_only_simple_commands() {
        assert_eq!(exec_form("uwsgi --x"), "exec uwsgi --x");
        assert_eq!(exec_form("cd x && run"), "cd x && run");
    }

    #[test]
    fn names() {
        assert_eq!(
            crate::shell::safe_name("stackto-demo-db"),
            "STACKTO_DEMO_DB"
        );
        assert_eq!(slug("My App.1"), "my-app-1");
    }
}
