//! Assembling one process environment: the manifest's app, its provisioned services, the
//! chosen profile, the instance's port, then the user's layers. Used by `env` and, later, by
//! everything that starts a process.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::diag::{Diagnostic, Sources};
use crate::env::mask::Secrets;
use crate::env::user::{self, Prompter};
use crate::manifest::{App, Loaded};
use crate::model::EnvSet;
use crate::model::ServiceRecord;
use crate::platform::env::{self as penv, Binding, DbUrlRule, Facts, SqliteEnv};
use crate::platform::layout::Layout;
use crate::platform::profile::{self, Choice, Profile};
use crate::random::Rng;
use crate::services::lifecycle::{self, DbMode, Mode, Planned};
use crate::services::registry::{self, ProvisionError};
use crate::state::{StateDir, StateError};

/// What to build.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    /// The app (`None`: the only one, or the first in start order).
    pub app: Option<String>,
    pub instance: u32,
    pub staging: bool,
    /// Where `$HOME` is: the checkout, or a generation of the staged copy.
    pub place: crate::platform::layout::Place,
    /// `None`: the manifest's default profile.
    pub profile: Option<Profile>,
    /// `--env KEY=VALUE`.
    pub cli: Vec<(String, String)>,
    /// Extra `.env` files (`--env-file`), after the default ones.
    pub env_files: Vec<PathBuf>,
    /// Skip the default `.env` files.
    pub no_dotenv: bool,
    pub db_url_rule: DbUrlRule,
    pub sqlite_env: SqliteEnv,
    /// How relational services run (decides sqlite fallbacks).
    pub db: DbMode,
    /// `--skip-service NAME`: left out of the environment.
    pub skip: Vec<String>,
}

impl Default for Request {
    fn default() -> Self {
        Request {
            app: None,
            instance: 0,
            staging: false,
            place: crate::platform::layout::Place::Checkout,
            profile: None,
            cli: Vec::new(),
            env_files: Vec::new(),
            no_dotenv: false,
            db_url_rule: DbUrlRule::Relational,
            sqlite_env: SqliteEnv::Omit,
            db: DbMode::Auto,
            skip: Vec::new(),
        }
    }
}

/// The result: the environment with provenance, and what is needed to print it safely.
#[derive(Debug)]
pub(crate) struct Built {
    pub env: EnvSet,
    pub secrets: Secrets,
    pub profile: Choice,
    pub layout: Layout,
    pub app: String,
    pub records: Vec<ServiceRecord>,
    /// How each service runs (sqlite fallback, skipped…).
    pub planned: Vec<Planned>,
    /// One-line messages for the user (fallbacks, skipped services).
    pub notes: Vec<String>,
    /// Where `run`'s router serves the app (`http://<app>.localhost:PORT/`), if it has a route.
    pub url: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum BuildError {
    #[error("no application named \"{name}\" (the manifest has: {known})")]
    NoSuchApp { name: String, known: String },
    #[error(
        "instance {instance} does not exist: \"{app}\" has {count} instance(s), numbered from 0"
    )]
    NoSuchInstance {
        app: String,
        instance: u32,
        count: u32,
    },
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Provision(#[from] ProvisionError),
    #[error(transparent)]
    Service(#[from] crate::services::ServiceError),
    /// Problems in the user's input (manifest env, .env), positioned in `sources`.
    #[error("the environment cannot be completed")]
    Invalid {
        sources: Box<Sources>,
        diagnostics: Vec<Diagnostic>,
    },
}

/// Remembered answers to prompts, per app (`answers.json`, 0600).
const ANSWERS: &str = "answers.json";
/// Remembered instance ports, `app/instance` → port (`ports.json`).
pub(crate) const PORTS: &str = "ports.json";

/// Pick the requested app.
pub(crate) fn select_app<'a>(
    loaded: &'a Loaded,
    name: Option<&str>,
) -> Result<&'a App, BuildError> {
    let m = &loaded.manifest;
    match name {
        Some(n) => m.app(n).ok_or_else(|| BuildError::NoSuchApp {
            name: n.to_string(),
            known: m
                .apps
                .iter()
                .map(|a| a.name.value.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        }),
        None => m
            .start_order()
            .into_iter()
            .next()
            .ok_or_else(|| BuildError::NoSuchApp {
                name: String::new(),
                known: String::new(),
            }),
    }
}

/// The port of an app instance: remembered in the state dir, allocated on first use.
pub(crate) fn instance_port(state: &StateDir, app: &str, instance: u32) -> Result<u16, BuildError> {
    remembered_port(state, &format!("{app}/{instance}"))
}

/// The second port of an app instance (`app/instance/b`), which its replacement listens on
/// during an overlap restart behind the router while the old process still holds the first.
pub(crate) fn alt_instance_port(
    state: &StateDir,
    app: &str,
    instance: u32,
) -> Result<u16, BuildError> {
    remembered_port(state, &format!("{app}/{instance}/b"))
}

/// The port remembered under `key` in `ports.json`, allocated (and remembered) on first use.
pub(crate) fn remembered_port(state: &StateDir, key: &str) -> Result<u16, BuildError> {
    let _lock = state.lock("ports")?;
    let mut ports: BTreeMap<String, u16> = state.read_json(PORTS)?.unwrap_or_default();
    let key = key.to_string();
    if let Some(p) = ports.get(&key) {
        return Ok(*p);
    }
    let p = crate::services::ports::free_port()
        .map_err(|e| BuildError::Provision(ProvisionError::Port(e)))?;
    ports.insert(key, p);
    state.write_json(PORTS, &ports)?;
    Ok(p)
}

/// Make sure an instance's remembered port is free before its process starts: when another
/// program holds it, move to a free one and say so (the environment follows).
pub(crate) fn ensure_instance_port_free(
    state: &StateDir,
    app: &str,
    instance: u32,
) -> Result<Option<(u16, u16)>, BuildError> {
    ensure_port_free(state, &format!("{app}/{instance}"))
}

/// Make sure the port remembered under `key` is free: when another program holds it, move to
/// a free one (remembered instead); `Some((old, new))` when it moved.
pub(crate) fn ensure_port_free(
    state: &StateDir,
    key: &str,
) -> Result<Option<(u16, u16)>, BuildError> {
    let port = remembered_port(state, key)?;
    if crate::services::ports::is_free(port) {
        return Ok(None);
    }
    let _lock = state.lock("ports")?;
    let mut ports: BTreeMap<String, u16> = state.read_json(PORTS)?.unwrap_or_default();
    let new = crate::services::ports::free_port()
        .map_err(|e| BuildError::Provision(ProvisionError::Port(e)))?;
    ports.insert(key.to_string(), new);
    state.write_json(PORTS, &ports)?;
    Ok(Some((port, new)))
}

/// Whether a locale is installed, asked of the C library itself (no `locale -a` process).
fn locale_available(name: &str) -> bool {
    let Ok(c) = std::ffi::CString::new(name) else {
        return false;
    };
    // SAFETY: newlocale/freelocale only read the name and return an owned handle (or null);
    // the process's own locale is not touched.
    unsafe {
        let l = libc::newlocale(libc::LC_ALL_MASK, c.as_ptr(), std::ptr::null_mut());
        if l.is_null() {
            false
        } else {
            libc::freelocale(l);
            true
        }
    }
}

/// Gather the machine facts once.
pub(crate) fn facts(domain: &str) -> Facts {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "stackato".into());
    let has_en_us = locale_available("en_US.UTF-8");
    Facts {
        now,
        user,
        domain: domain.to_string(),
        path: std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into()),
        perl5lib: std::env::var("PERL5LIB").ok(),
        lang: if has_en_us { "en_US.UTF-8" } else { "C.UTF-8" }.into(),
    }
}

/// Build the environment of one instance (or of staging) of one app.
pub(crate) fn build(
    loaded: &Loaded,
    req: &Request,
    state: &StateDir,
    facts: &Facts,
    rng: &mut dyn Rng,
    prompt: &mut Prompter<'_>,
) -> Result<Built, BuildError> {
    let app = select_app(loaded, req.app.as_deref())?;
    let count = app.instance_count();
    if !req.staging && req.instance >= count {
        return Err(BuildError::NoSuchInstance {
            app: app.name.value.clone(),
            instance: req.instance,
            count,
        });
    }
    let choice = match req.profile {
        Some(p) => Choice {
            profile: p,
            reason: "chosen with --profile".into(),
        },
        None => profile::default_for(&loaded.manifest),
    };
    let records = registry::provision(state, &loaded.manifest, rng)?;
    let mut notes = Vec::new();
    let planned = lifecycle::plan(state, &records, req.db, &req.skip)?;
    for p in &planned {
        if let Mode::Unavailable(m) = &p.mode {
            // The environment can still be shown; starting will report this again.
            notes.push(format!("warning: {m}"));
        }
    }
    let bindings = bindings_for(app, &planned);
    notes.extend(
        planned
            .iter()
            .filter(|p| app.services.iter().any(|s| s.name.value == p.record.name))
            .filter_map(|p| p.note.clone()),
    );
    let layout = Layout::new(
        &loaded.manifest.dir,
        app,
        req.instance,
        req.staging,
        req.place,
    );
    let port = if req.staging {
        0
    } else {
        instance_port(state, &app.name.value, req.instance)?
    };
    let router_port = if req.staging {
        None
    } else {
        Some(super::routes::port(state)?)
    };
    let input = penv::Input {
        manifest: &loaded.manifest,
        app,
        profile: choice.profile,
        layout: &layout,
        instance: req.instance,
        port,
        bindings: &bindings,
        facts,
        db_url_rule: req.db_url_rule,
        sqlite_env: req.sqlite_env,
        router_port,
    };
    let mut env = if req.staging {
        penv::staging(&input)
    } else {
        penv::runtime(&input)
    };
    // The interpreter staging made the virtualenv with (a file read, no interpreter run).
    if crate::stage::requirements::is_python(app)
        && let Some(used) = crate::stage::requirements::python::venv_interpreter(state)
    {
        crate::platform::runtime::stamp_vcap(&mut env, &used);
    }
    // A Node or Ruby app's interpreter: its bin/ first on PATH when it is not PATH's.
    crate::platform::runtime_bin::apply(&mut env, state, app, req.staging);

    // A local addition: `python app.py` prints into a pipe here, block-buffered until exit;
    // the platform's logs were files read afterwards, foreman and Heroku set it too. The
    // user's own value (stackato.yml, .env, --env) comes in a later layer and wins.
    if !req.staging && crate::stage::requirements::is_python(app) {
        env.set(
            "PYTHONUNBUFFERED",
            "1".to_string(),
            crate::model::Layer::Platform,
            "a local addition (not on the platform): a Python app's prints reach the terminal as they happen instead of waiting in a pipe's buffer until it exits (the platform kept logs in files; foreman and Heroku set it too); set PYTHONUNBUFFERED yourself (env:, .env, --env) to override",
        );
    }
    let mut answers_all: BTreeMap<String, BTreeMap<String, String>> =
        state.read_json(ANSWERS)?.unwrap_or_default();
    let answers = answers_all
        .get(&app.name.value)
        .cloned()
        .unwrap_or_default();
    let mut files = if req.no_dotenv {
        Vec::new()
    } else {
        user::default_dotenv_files(&loaded.manifest.dir, &app.path)
    };
    let out = user::dotenv_links_out(&loaded.manifest.dir, &files);
    if !out.is_empty() {
        return Err(BuildError::Invalid {
            sources: Box::new(loaded.sources.clone()),
            diagnostics: out,
        });
    }
    files.extend(req.env_files.iter().cloned());
    let shell = |n: &str| std::env::var(n).ok();
    let uinput = user::Input {
        app,
        dotenv_files: &files,
        cli: &req.cli,
        shell: &shell,
        answers: &answers,
    };
    let mut sources = loaded.sources.clone();
    let outcome =
        user::apply(&mut env, &uinput, &mut sources, prompt).map_err(|d| BuildError::Invalid {
            sources: Box::new(sources.clone()),
            diagnostics: d,
        })?;
    if !outcome.new_answers.is_empty() {
        let _lock = state.lock("answers")?;
        let entry = answers_all.entry(app.name.value.clone()).or_default();
        for (k, v) in outcome.new_answers {
            entry.insert(k, v);
        }
        state.write_json(ANSWERS, &answers_all)?;
    }

    let mut secrets = Secrets::new();
    secrets.add_services(&records);
    let hidden: Vec<String> = app
        .env
        .iter()
        .filter(|v| v.hidden)
        .map(|v| v.name.value.clone())
        .collect();
    secrets.add_vars(&env, &hidden);
    Ok(Built {
        env,
        secrets,
        profile: choice,
        layout,
        app: app.name.value.clone(),
        records,
        planned,
        notes,
        url: router_port.and_then(|p| super::routes::app_url(app, facts.domain.as_str(), p)),
    })
}

/// The app's services as bindings: sqlite fallbacks marked, skipped ones left out.
pub(crate) fn bindings_for(app: &App, planned: &[Planned]) -> Vec<Binding> {
    app.services
        .iter()
        .filter_map(|s| planned.iter().find(|p| p.record.name == s.name.value))
        .filter(|p| !matches!(p.mode, Mode::Skipped))
        .map(|p| Binding {
            record: p.record.clone(),
            sqlite: match &p.mode {
                Mode::Sqlite(path) => Some(path.clone()),
                _ => None,
            },
        })
        .collect()
}
