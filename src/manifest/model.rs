//! The typed manifest that the rest of the tool uses, built from the normalised, resolved tree.
//! Value checks that need types (integers, memory sizes, dependency cycles) happen here, each
//! reported at the value's position.

use std::path::PathBuf;

use crate::diag::{Diagnostic, Span};
use crate::manifest::keys::parse_bool;
use crate::yaml::{Node, Value};

/// A value with the place it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spanned<T> {
    pub value: T,
    pub(crate) span: Span,
}

/// The platform's minimum memory (3.x); smaller values are raised to it.
pub(crate) const MIN_MEMORY_MB: u64 = 20;

#[derive(Debug, Clone)]
pub struct Manifest {
    /// The root manifest file.
    pub file: PathBuf,
    /// Its directory.
    pub dir: PathBuf,
    /// Applications in file order.
    pub apps: Vec<App>,
    /// What in the file's shape says it was written for Stackato 3.x (see
    /// [`crate::manifest::normalize::v3_signs`]), for the profile rule.
    pub(crate) v3_signs: Vec<String>,
}

impl Manifest {
    pub fn app(&self, name: &str) -> Option<&App> {
        self.apps.iter().find(|a| a.name.value == name)
    }

    /// Start order: dependencies first, file order otherwise (a stable topological order).
    /// Cycles were refused at load; should one remain, the rest keep file order.
    pub(crate) fn start_order(&self) -> Vec<&App> {
        use std::collections::HashMap;
        let index: HashMap<&str, usize> = self
            .apps
            .iter()
            .enumerate()
            .map(|(i, a)| (a.name.value.as_str(), i))
            .collect();
        let mut done = vec![false; self.apps.len()];
        let mut on_path = vec![false; self.apps.len()];
        let mut out = Vec::with_capacity(self.apps.len());
        for root in 0..self.apps.len() {
            // Depth-first, dependencies before dependents, without recursion.
            let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
            while let Some(&mut (i, ref mut next)) = stack.last_mut() {
                if done[i] {
                    stack.pop();
                    continue;
                }
                on_path[i] = true;
                let deps = &self.apps[i].depends_on;
                if *next < deps.len() {
                    let d = &deps[*next];
                    *next += 1;
                    if let Some(&j) = index.get(d.value.as_str())
                        && !done[j]
                        && !on_path[j]
                    {
                        stack.push((j, 0));
                    }
                    continue;
                }
                done[i] = true;
                on_path[i] = false;
                out.push(&self.apps[i]);
                stack.pop();
            }
        }
        out
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Web {
    /// No `processes: web`: the framework's default web command.
    Default,
    /// `processes: web: CMD`.
    Command(Spanned<String>),
    /// `web: ~`, or framework `standalone`: a worker running `command:`, no URL.
    Worker,
}

#[derive(Debug, Clone, Default)]
pub struct Framework {
    pub name: Option<String>,
    /// Where `framework: type` is written (for messages about the framework).
    pub(crate) name_span: Option<Span>,
    pub(crate) start_file: Option<String>,
    pub(crate) document_root: Option<String>,
}

#[derive(Debug, Clone)]
pub struct ServiceRequest {
    pub name: Spanned<String>,
    /// `None` for the CF v2 list form, which only binds an existing service.
    pub kind: Option<Spanned<String>>,
    pub plan: Option<String>,
    pub version: Option<String>,
    pub tags: Vec<String>,
    pub credentials: Vec<(String, String)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Staging,
    Runtime,
    Both,
}

#[derive(Debug, Clone)]
pub struct EnvVar {
    pub name: Spanned<String>,
    pub default: Option<Spanned<String>>,
    pub required: bool,
    pub inherit: bool,
    pub prompt: Option<String>,
    pub choices: Vec<String>,
    pub hidden: bool,
    pub scope: Scope,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    pub command: String,
    /// The entry started with `-`: a failure is ignored.
    pub(crate) ignore_failure: bool,
    pub(crate) span: Span,
}

#[derive(Debug, Clone, Default)]
pub struct Hooks {
    pub(crate) pre_push: Vec<Hook>,
    pub(crate) pre_staging: Vec<Hook>,
    pub post_staging: Vec<Hook>,
    pub(crate) pre_running: Vec<Hook>,
    pub(crate) legacy_running: Vec<Hook>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OsPackage {
    Package(String),
    /// A one-element list: a repository such as `ppa:gophers/go`.
    Repository(String),
}

#[derive(Debug, Clone, Default)]
pub struct OsRequirements {
    pub(crate) ubuntu: Vec<OsPackage>,
    pub(crate) redhat: Vec<OsPackage>,
    pub unix: Vec<OsPackage>,
}

#[derive(Debug, Clone, Default)]
pub struct Requirements {
    pub pip: Vec<String>,
    pub(crate) pypm: Vec<String>,
    pub(crate) ppm: Vec<String>,
    pub cpan: Vec<String>,
    /// Both staging and running.
    pub os: OsRequirements,
    pub staging: OsRequirements,
    pub running: OsRequirements,
}

impl Requirements {
    /// The Python packages to install: `pip:` then `pypm:` (pypm is gone; pip installs them).
    pub(crate) fn python_packages(&self) -> Vec<&str> {
        self.pip
            .iter()
            .chain(&self.pypm)
            .map(String::as_str)
            .collect()
    }
}

#[derive(Debug, Clone, Default)]
pub struct MinVersion {
    pub client: Option<Spanned<String>>,
    pub server: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Autoscale {
    pub(crate) enabled: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Drain {
    pub name: String,
    pub url: String,
    pub json: bool,
}

#[derive(Debug, Clone)]
pub struct App {
    pub name: Spanned<String>,
    /// Absolute application directory (`app-dir`/`path`).
    pub path: PathBuf,
    /// As written (`-1` and `0` are kept); see [`App::instance_count`].
    pub instances: Option<Spanned<i64>>,
    pub(crate) memory_mb: Option<Spanned<i64>>,
    pub(crate) disk_mb: Option<Spanned<i64>>,
    pub framework: Option<Framework>,
    /// The framework found from the app's files when `framework: type` is absent (see
    /// [`crate::platform::detect`]); [`App::framework_name`] falls back to it.
    pub detected: Option<crate::platform::detect::Detected>,
    pub runtime: Option<String>,
    /// Where `runtime` is written (its value), for warnings about it.
    pub(crate) runtime_span: Option<Span>,
    pub command: Option<Spanned<String>>,
    pub web: Web,
    pub buildpack: Option<String>,
    /// Where `buildpack:` is written (its value), for messages about it.
    pub(crate) buildpack_span: Option<Span>,
    pub stack: Option<String>,
    pub(crate) docker_image: Option<String>,
    pub services: Vec<ServiceRequest>,
    pub env: Vec<EnvVar>,
    pub hooks: Hooks,
    pub cron: Vec<Spanned<String>>,
    /// `None`: the platform's default ignore list applies.
    pub ignores: Option<Vec<String>>,
    pub requirements: Requirements,
    /// `None`: the default URL; `Some([])`: no route.
    pub urls: Option<Vec<String>>,
    /// Where `urls:` (or a legacy `url:`) is written.
    pub(crate) urls_span: Option<Span>,
    pub depends_on: Vec<Spanned<String>>,
    pub min_version: MinVersion,
    pub timeout: Option<Spanned<u32>>,
    pub(crate) autoscale: Option<Autoscale>,
    pub sso_enabled: bool,
    pub(crate) placement_zone: Option<String>,
    pub(crate) drains: Vec<Drain>,
}

impl App {
    /// Instances to run: values below 1 are raised to 1, as the client did at push.
    pub(crate) fn instance_count(&self) -> u32 {
        self.instances
            .as_ref()
            .map_or(1, |i| i.value.clamp(1, 1024) as u32)
    }

    /// Memory in MB: the manifest's value raised to the minimum, else the framework default.
    pub(crate) fn memory_limit_mb(&self) -> u64 {
        match &self.memory_mb {
            Some(m) => (m.value.max(0) as u64).max(MIN_MEMORY_MB),
            None => default_memory_mb(self.framework.as_ref().and_then(|f| f.name.as_deref())),
        }
    }

    /// Disk in MB (2048 by default).
    pub(crate) fn disk_limit_mb(&self) -> u64 {
        self.disk_mb
            .as_ref()
            .map_or(2048, |d| d.value.max(0) as u64)
    }

    /// The framework: declared (`framework: type`), else detected from the app's files.
    pub(crate) fn framework_name(&self) -> Option<&str> {
        self.declared_framework()
            .or(self.detected.as_ref().map(|d| d.framework))
    }

    /// The framework `framework: type` declares.
    pub(crate) fn declared_framework(&self) -> Option<&str> {
        self.framework.as_ref().and_then(|f| f.name.as_deref())
    }

    /// A legacy-buildpack app (any `framework:`).
    pub(crate) fn is_legacy(&self) -> bool {
        self.framework.is_some()
    }
}

/// The client's per-framework default memory when `mem` is absent.
pub(crate) fn default_memory_mb(framework: Option<&str>) -> u64 {
    match framework {
        Some("aspnet" | "aspdotnet" | "grails" | "java_ee" | "java_web" | "lift" | "spring") => 512,
        Some("generic") => 256,
        Some(
            "node" | "php" | "perl" | "python" | "rack" | "rails3" | "sinatra" | "otp_rebar"
            | "django" | "wsgi" | "perlcgi",
        ) => 128,
        Some("standalone") => 64,
        _ => 256,
    }
}

/// A memory size the client would refuse; the message is the hint to show.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum MemSpecError {
    #[error("Stackato accepts only the suffixes M and G: write `{0}`")]
    TwoLetterSuffix(String),
    #[error("write a size in megabytes such as 256 or 256M, or gigabytes such as 1G or 1.5G")]
    NotASize,
}

/// Parse a memory size as the client's memspec: `N` or `NM` megabytes, `X.YG` gigabytes.
/// `MB`/`GB` suffixes and unit-less fractions are refused.
pub(crate) fn parse_memspec(s: &str) -> Result<i64, MemSpecError> {
    let t = s.trim();
    let bad = || {
        if t.to_ascii_uppercase().ends_with("MB") || t.to_ascii_uppercase().ends_with("GB") {
            MemSpecError::TwoLetterSuffix(t[..t.len() - 1].to_string())
        } else {
            MemSpecError::NotASize
        }
    };
    if t.is_empty() {
        return Err(bad());
    }
    let (num, unit) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&t[..i], Some(c.to_ascii_uppercase())),
        _ => (t, None),
    };
    match unit {
        None | Some('M') => num.parse::<i64>().map_err(|_| bad()),
        Some('G') => {
            let v: f64 = num.parse().map_err(|_| bad())?;
            if !v.is_finite() || v.abs() > 1.0e9 {
                return Err(bad());
            }
            Ok((v * 1024.0) as i64)
        }
        _ => Err(bad()),
    }
}

/// Build the typed manifest from a normalised, resolved tree.
pub(crate) fn build(tree: &Node, file: PathBuf, diags: &mut Vec<Diagnostic>) -> Manifest {
    let dir = file
        .parent()
        .map(std::path::Path::to_path_buf)
        .unwrap_or_default();
    let mut apps = Vec::new();
    for e in tree
        .get("applications")
        .and_then(Node::as_map)
        .unwrap_or_default()
    {
        check_app_dir(&e.value, &dir, diags);
        let mut app = build_app(&e.value, diags);
        if app.declared_framework().is_none() {
            // 2.x: `env: BUILDPACK_URL` makes a buildpack app before the files are looked at.
            app.detected = if app.env.iter().any(|e| e.name.value == "BUILDPACK_URL") {
                Some(crate::platform::detect::Detected {
                    framework: "buildpack",
                    why: "env: BUILDPACK_URL is set".into(),
                })
            } else {
                crate::platform::detect::framework(&app.path)
            };
        }
        check_cron(&app, diags);
        apps.push(app);
    }
    check_cycles(&apps, diags);
    Manifest {
        file,
        dir,
        apps,
        v3_signs: Vec::new(),
    }
}

/// An application's directory (`app-dir:`, `path:`, a path key of `applications:`) must be
/// inside the manifest's directory, both as written and once symlinks are resolved: the app
/// directory becomes the app's HOME, is hashed for staging and watched for changes.
fn check_app_dir(app: &Node, manifest_dir: &std::path::Path, diags: &mut Vec<Diagnostic>) {
    let Some(node) = app.get("path") else {
        return;
    };
    let Some(path) = node.as_str() else {
        return;
    };
    let base = manifest_dir
        .canonicalize()
        .unwrap_or_else(|_| manifest_dir.to_path_buf());
    let written = crate::manifest::normalize::lexical(&base.join(path));
    let resolved = written.canonicalize().ok();
    let outside = if !written.starts_with(&base) {
        Some(written)
    } else {
        resolved.filter(|r| !r.starts_with(&base))
    };
    if let Some(p) = outside {
        diags.push(
            Diagnostic::error(format!(
                "the application directory {} is outside the project ({})",
                p.display(),
                base.display()
            ))
            .at(node.span)
            .hint("app-dir and path name a directory inside the manifest's directory (no `..` or link that leads out of it)"),
        );
    }
}

/// `cron:` lines through the parser `run` uses, so `check` and `run` give one verdict.
fn check_cron(app: &App, diags: &mut Vec<Diagnostic>) {
    for line in &app.cron {
        if let Err(e) = crate::manifest::cron::parse(&line.value) {
            diags.push(
                Diagnostic::error(format!("bad cron line: {e}"))
                    .at(line.span)
                    .hint("a cron line is five time fields and a command, e.g. `*/5 * * * * ./cleanup`, or NAME=value"),
            );
        }
    }
}

fn text(n: Option<&Node>) -> Option<String> {
    n.and_then(Node::as_str).map(str::to_string)
}

fn spanned_text(n: Option<&Node>) -> Option<Spanned<String>> {
    n.and_then(|n| {
        n.as_str().map(|s| Spanned {
            value: s.to_string(),
            span: n.span,
        })
    })
}

fn boolean(n: Option<&Node>) -> bool {
    n.and_then(Node::scalar_text)
        .and_then(parse_bool)
        .unwrap_or(false)
}

/// Scalar or list of scalars → list of strings.
fn list(n: Option<&Node>) -> Vec<Spanned<String>> {
    match n.map(|n| &n.value) {
        Some(Value::Seq(items)) => items.iter().filter_map(|i| spanned_text(Some(i))).collect(),
        Some(Value::Scalar(_)) => spanned_text(n).into_iter().collect(),
        _ => Vec::new(),
    }
}

fn strings(n: Option<&Node>) -> Vec<String> {
    list(n).into_iter().map(|s| s.value).collect()
}

fn integer(key: &str, n: Option<&Node>, diags: &mut Vec<Diagnostic>) -> Option<Spanned<i64>> {
    let n = n?;
    let s = n.as_str()?;
    match s.trim().parse::<i64>() {
        Ok(v) => Some(Spanned {
            value: v,
            span: n.span,
        }),
        Err(_) => {
            diags.push(
                Diagnostic::error(format!(
                    "Expected integer value for key \"{key}\", got \"{s}\""
                ))
                .at(n.span)
                .label("not a whole number"),
            );
            None
        }
    }
}

fn memspec(key: &str, n: Option<&Node>, diags: &mut Vec<Diagnostic>) -> Option<Spanned<i64>> {
    let n = n?;
    let s = n.as_str()?;
    match parse_memspec(s) {
        Ok(v) => Some(Spanned {
            value: v,
            span: n.span,
        }),
        Err(hint) => {
            diags.push(
                Diagnostic::error(format!(
                    "Expected a memory size for key \"{key}\", got \"{s}\""
                ))
                .at(n.span)
                .hint(hint.to_string()),
            );
            None
        }
    }
}

fn build_app(app: &Node, diags: &mut Vec<Diagnostic>) -> App {
    let st = app.get("stackato");
    let sget = |k: &str| st.and_then(|s| s.get(k));
    let name_node = app.get("name");
    let name = Spanned {
        value: text(name_node).unwrap_or_default(),
        span: name_node.map_or(app.span, |n| n.span),
    };

    let instances = integer("instances", app.get("instances"), diags);
    if let Some(i) = &instances
        && i.value < 1
    {
        diags.push(
            Diagnostic::warning(format!(
                "instances: {} is below 1; the platform forces it to 1",
                i.value
            ))
            .at(i.span),
        );
    }
    let memory_mb = memspec("memory", app.get("memory"), diags);
    if let Some(m) = &memory_mb
        && m.value < MIN_MEMORY_MB as i64
    {
        diags.push(
            Diagnostic::warning(format!(
                "memory {}M is below the platform minimum; it is raised to {MIN_MEMORY_MB}M",
                m.value
            ))
            .at(m.span),
        );
    }
    let disk_mb = memspec("disk_quota", app.get("disk_quota"), diags);

    let framework = app.get("framework").and_then(|f| {
        f.as_map()?;
        Some(Framework {
            name: text(f.get("name")),
            name_span: spanned_text(f.get("name")).map(|n| n.span),
            start_file: text(f.get("start-file")),
            document_root: text(f.get("document-root")),
        })
    });

    let web = match sget("processes").and_then(|p| p.entry("web")) {
        Some(e) if e.value.is_null() => Web::Worker,
        Some(e) => match spanned_text(Some(&e.value)) {
            Some(c) if !c.value.trim().is_empty() => Web::Command(c),
            _ => Web::Worker,
        },
        None if framework.as_ref().and_then(|f| f.name.as_deref()) == Some("standalone") => {
            Web::Worker
        }
        None => Web::Default,
    };
    let command = spanned_text(app.get("command"));
    if web == Web::Worker && command.is_none() {
        diags.push(
            Diagnostic::error(format!(
                "Application \"{}\" is a worker (no web process) and needs a non-empty start command",
                name.value
            ))
            .at(name.span)
            .hint("add a \"command\" key, e.g. `command: python worker.py`"),
        );
    }

    let timeout = integer("timeout", app.get("timeout"), diags).and_then(|t| {
        if t.value < 1 || t.value > 86_400 {
            diags.push(
                Diagnostic::error(format!(
                    "Expected integer value >= 1 for key \"timeout\", got \"{}\"",
                    t.value
                ))
                .at(t.span),
            );
            None
        } else {
            Some(Spanned {
                value: t.value as u32,
                span: t.span,
            })
        }
    });

    App {
        name,
        path: PathBuf::from(text(app.get("path")).unwrap_or_default()),
        instances,
        memory_mb,
        disk_mb,
        framework,
        detected: None,
        runtime: text(app.get("runtime")),
        runtime_span: app.get("runtime").map(|n| n.span),
        command,
        web,
        buildpack: text(app.get("buildpack")),
        buildpack_span: app.get("buildpack").map(|n| n.span),
        stack: text(app.get("stack")),
        docker_image: text(app.get("docker_image")),
        services: build_services(app.get("services")),
        env: build_env(sget("env")),
        hooks: build_hooks(sget("hooks")),
        cron: list(sget("cron")),
        ignores: sget("ignores").and_then(|n| n.as_seq().map(|_| strings(Some(n)))),
        requirements: build_requirements(sget("requirements")),
        urls: app.get("urls").map(|u| {
            strings(Some(u))
                .into_iter()
                .map(|s| s.to_lowercase())
                .collect()
        }),
        urls_span: app.get("urls").map(|n| n.span),
        depends_on: list(app.get("depends-on")),
        min_version: MinVersion {
            client: spanned_text(sget("min_version").and_then(|m| m.get("client"))),
            server: spanned_text(sget("min_version").and_then(|m| m.get("server"))),
        },
        timeout,
        autoscale: sget("autoscale").map(|a| Autoscale {
            enabled: boolean(a.get("enabled")),
        }),
        sso_enabled: boolean(sget("sso-enabled")),
        placement_zone: text(sget("placement-zone")),
        drains: sget("drain")
            .and_then(Node::as_map)
            .unwrap_or_default()
            .iter()
            .map(|e| Drain {
                name: e.key.scalar_text().unwrap_or_default().to_string(),
                url: text(e.value.get("url")).unwrap_or_default(),
                json: boolean(e.value.get("json")),
            })
            .collect(),
    }
}

fn build_services(n: Option<&Node>) -> Vec<ServiceRequest> {
    n.and_then(Node::as_map)
        .unwrap_or_default()
        .iter()
        .map(|e| {
            let b = &e.value;
            ServiceRequest {
                name: Spanned {
                    value: e.key.scalar_text().unwrap_or_default().to_string(),
                    span: e.key.span,
                },
                kind: spanned_text(b.get("type")),
                plan: text(b.get("plan")),
                version: text(b.get("version")),
                tags: strings(b.get("tags")),
                credentials: b
                    .get("credentials")
                    .and_then(Node::as_map)
                    .unwrap_or_default()
                    .iter()
                    .map(|c| {
                        (
                            c.key.scalar_text().unwrap_or_default().to_string(),
                            c.value.scalar_text().unwrap_or_default().to_string(),
                        )
                    })
                    .collect(),
            }
        })
        .collect()
}

fn build_env(n: Option<&Node>) -> Vec<EnvVar> {
    n.and_then(Node::as_map)
        .unwrap_or_default()
        .iter()
        .filter(|e| e.value.as_map().is_some())
        .map(|e| {
            let a = &e.value;
            let default = a.get("default").map(|d| Spanned {
                value: d.as_str().unwrap_or_default().to_string(),
                span: d.span,
            });
            EnvVar {
                name: Spanned {
                    value: e.key.scalar_text().unwrap_or_default().to_string(),
                    span: e.key.span,
                },
                default,
                required: boolean(a.get("required")),
                inherit: boolean(a.get("inherit")),
                prompt: text(a.get("prompt")),
                choices: strings(a.get("choices")),
                hidden: boolean(a.get("hidden")),
                scope: match a.get("scope").and_then(Node::as_str) {
                    Some("staging") => Scope::Staging,
                    Some("runtime") => Scope::Runtime,
                    _ => Scope::Both,
                },
            }
        })
        .collect()
}

fn hooks_of(n: Option<&Node>) -> Vec<Hook> {
    list(n)
        .into_iter()
        .filter(|s| !s.value.trim().is_empty())
        .map(|s| match s.value.strip_prefix('-') {
            Some(rest) => Hook {
                command: rest.trim_start().to_string(),
                ignore_failure: true,
                span: s.span,
            },
            None => Hook {
                command: s.value,
                ignore_failure: false,
                span: s.span,
            },
        })
        .collect()
}

fn build_hooks(n: Option<&Node>) -> Hooks {
    let g = |k: &str| hooks_of(n.and_then(|h| h.get(k)));
    Hooks {
        pre_push: g("pre-push"),
        pre_staging: g("pre-staging"),
        post_staging: g("post-staging"),
        pre_running: g("pre-running"),
        legacy_running: g("legacy-running"),
    }
}

fn os_list(n: Option<&Node>) -> Vec<OsPackage> {
    match n.map(|n| &n.value) {
        Some(Value::Seq(items)) => items
            .iter()
            .filter_map(|i| match &i.value {
                Value::Seq(inner) => text(inner.first()).map(OsPackage::Repository),
                _ => i.as_str().map(|s| OsPackage::Package(s.to_string())),
            })
            .collect(),
        Some(Value::Scalar(_)) => text(n).map(OsPackage::Package).into_iter().collect(),
        _ => Vec::new(),
    }
}

fn os_reqs(n: Option<&Node>) -> OsRequirements {
    OsRequirements {
        ubuntu: os_list(n.and_then(|r| r.get("ubuntu"))),
        redhat: os_list(n.and_then(|r| r.get("redhat"))),
        unix: os_list(n.and_then(|r| r.get("unix"))),
    }
}

fn build_requirements(n: Option<&Node>) -> Requirements {
    let g = |k: &str| strings(n.and_then(|r| r.get(k)));
    Requirements {
        pip: g("pip"),
        pypm: g("pypm"),
        ppm: g("ppm"),
        cpan: g("cpan"),
        os: os_reqs(n),
        staging: os_reqs(n.and_then(|r| r.get("staging"))),
        running: os_reqs(n.and_then(|r| r.get("running"))),
    }
}

/// Refuse dependency cycles, naming the loop (iterative: a long chain cannot overflow).
fn check_cycles(apps: &[App], diags: &mut Vec<Diagnostic>) {
    use std::collections::HashMap;
    let index: HashMap<&str, usize> = apps
        .iter()
        .enumerate()
        .map(|(i, a)| (a.name.value.as_str(), i))
        .collect();
    // 0 = not visited, 1 = on the current path, 2 = done.
    let mut mark = vec![0u8; apps.len()];
    for root in 0..apps.len() {
        if mark[root] != 0 {
            continue;
        }
        // (app, next dependency to look at)
        let mut stack: Vec<(usize, usize)> = vec![(root, 0)];
        mark[root] = 1;
        while let Some(&mut (i, ref mut next)) = stack.last_mut() {
            let deps = &apps[i].depends_on;
            if *next >= deps.len() {
                mark[i] = 2;
                stack.pop();
                continue;
            }
            let d = &deps[*next];
            *next += 1;
            let Some(&j) = index.get(d.value.as_str()) else {
                continue;
            };
            match mark[j] {
                0 => {
                    mark[j] = 1;
                    stack.push((j, 0));
                }
                1 => {
                    let pos = stack.iter().position(|(k, _)| *k == j).unwrap_or(0);
                    let mut names: Vec<&str> = stack[pos..]
                        .iter()
                        .map(|(k, _)| apps[*k].name.value.as_str())
                        .collect();
                    names.push(&apps[j].name.value);
                    diags.push(
                        Diagnostic::error(format!("Circular dependency: {}", names.join(" -> ")))
                            .at(d.span)
                            .hint("remove one of the `depends-on` entries"),
                    );
                    return;
                }
                _ => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memspec_follows_the_client() {
        assert_eq!(parse_memspec("256"), Ok(256));
        assert_eq!(parse_memspec("256M"), Ok(256));
        assert_eq!(parse_memspec("256m"), Ok(256));
        assert_eq!(parse_memspec("1G"), Ok(1024));
        assert_eq!(parse_memspec("1.5g"), Ok(1536));
        assert_eq!(parse_memspec("-1M"), Ok(-1));
        assert!(
            parse_memspec("256MB")
                .unwrap_err()
                .to_string()
                .contains("256M")
        );
        assert!(parse_memspec("3.5GB").is_err());
        assert!(parse_memspec("1.5").is_err());
        assert!(parse_memspec("1.5M").is_err());
        assert!(parse_memspec("").is_err());
        assert!(parse_memspec("lots").is_err());
    }

    #[test]
    fn default_memory_per_framework() {
        assert_eq!(default_memory_mb(Some("python")), 128);
        assert_eq!(default_memory_mb(Some("java_ee")), 512);
        assert_eq!(default_memory_mb(Some("standalone")), 64);
        assert_eq!(default_memory_mb(None), 256);
    }
}
