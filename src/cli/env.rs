//! `stackato-local env`: the variables the platform would give the app (or its staging
//! hooks), `env explain VAR` (where a value comes from) and `env diff FILE` (compare with an
//! environment captured in production). Secrets are masked unless `--reveal`.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use crate::cli::{Global, print_diagnostics, report_load_error, terminal_asker};
use crate::diag::display_path;
use crate::env::build::{BuildError, Built};
use crate::env::diff::{self, Kind};
use crate::env::dump;
use crate::env::mask::{MASK, Secrets};
use crate::env::user::parse_cli_pair;
use crate::exit;
use crate::manifest::model::EnvVar;
use crate::manifest::{self, Loaded};
use crate::platform::env::{DbUrlRule, SqliteEnv};
use crate::platform::profile::Profile;
use crate::shell::{self, Dialect};

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Format {
    /// `export KEY='value'` lines, for `eval "$(stackato-local env)"`.
    Shell,
    /// One flat JSON object, name → value as the process sees it.
    Json,
    /// `KEY="value"` lines, for tools that read .env files.
    Dotenv,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum DbRule {
    /// DATABASE_URL when exactly one mysql/postgresql service is bound (3.x docs).
    Relational,
    /// DATABASE_URL when exactly one of mysql/postgresql/redis/mongodb is bound (2.10 docs).
    Any,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum SqliteMode {
    /// Leave a sqlite-backed service's variables out (the app uses its own default).
    Omit,
    /// Export DATABASE_URL=sqlite:////path for it.
    Url,
}

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    #[command(subcommand)]
    pub command: Option<EnvCommand>,

    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Shell, global = true)]
    pub format: Format,
    /// The environment of the staging hooks instead of the running app.
    #[arg(long, global = true)]
    pub staging: bool,
    /// Which application (default: the first in start order).
    #[arg(long, value_name = "NAME", global = true)]
    pub app: Option<String>,
    /// Which instance (its PORT and instance_index).
    #[arg(long, value_name = "N", default_value_t = 0, global = true)]
    pub instance: u32,
    /// Imitate Stackato 2.x or 3.x (default: from min_version, else 3).
    #[arg(long, value_name = "2|3", global = true, value_parser = parse_profile)]
    pub profile: Option<Profile>,
    /// Set a variable (highest precedence); repeatable.
    #[arg(long = "env", short = 'e', value_name = "KEY=VALUE", global = true, value_parser = parse_cli_pair)]
    pub env: Vec<(String, String)>,
    /// Read another .env file after the default ones; repeatable.
    #[arg(long = "env-file", value_name = "FILE", global = true)]
    pub env_file: Vec<PathBuf>,
    /// Do not read the project's .env files.
    #[arg(long, global = true)]
    pub no_dotenv: bool,
    /// Show passwords and other secrets instead of masking them.
    #[arg(long, global = true)]
    pub reveal: bool,
    /// Which services may set DATABASE_URL.
    #[arg(long, value_enum, default_value_t = DbRule::Relational, global = true)]
    pub database_url: DbRule,
    /// What a database running as sqlite exports.
    #[arg(long, value_enum, default_value_t = SqliteMode::Omit, global = true)]
    pub sqlite_env: SqliteMode,
    /// Show the environment on this runtime instead of the declared one (`node18`,
    /// `ruby3.1`, `python27`), as `run --runtime`.
    #[arg(long, value_name = "RUNTIME", global = true)]
    pub runtime: Option<String>,
    #[command(flatten)]
    pub services: crate::cli::ServiceOpts,
}

#[derive(Debug, clap::Subcommand)]
pub(crate) enum EnvCommand {
    /// Explain one variable: its value, the layer that set it and the values it hid.
    Explain {
        /// The variable, e.g. DATABASE_URL.
        var: String,
    },
    /// Compare with an environment captured elsewhere: KEY=VALUE lines (`env` output), the
    /// JSON of `env --format json`, or a Stackato JSON dump. Exit 1 when they differ.
    Diff {
        /// The file with the other environment.
        file: PathBuf,
    },
}

impl Args {
    /// The environment options of `env`.
    fn env_options(&self) -> crate::plan::EnvOptions {
        crate::plan::EnvOptions {
            profile: self.profile,
            cli: self.env.clone(),
            env_files: self.env_file.clone(),
            no_dotenv: self.no_dotenv,
            db: self.services.db_mode(),
            skip: self.services.skip_service.clone(),
            place: crate::platform::layout::Place::Checkout,
            db_url_rule: match self.database_url {
                DbRule::Relational => DbUrlRule::Relational,
                DbRule::Any => DbUrlRule::AnyDatabase,
            },
            sqlite_env: match self.sqlite_env {
                SqliteMode::Omit => SqliteEnv::Omit,
                SqliteMode::Url => SqliteEnv::Url,
            },
        }
    }
}

pub(super) fn parse_profile(s: &str) -> Result<Profile, String> {
    Profile::from_number(s).ok_or_else(|| format!("`{s}` is not a profile: use 2 or 3"))
}

pub(super) fn run(g: &Global, args: &Args) -> i32 {
    if let Err(e) = crate::platform::runtime::set_from_cli(args.runtime.as_deref(), false) {
        eprintln!("{e}");
        return exit::USAGE;
    }
    let mut asker = terminal_asker();
    let loaded = match manifest::load(&g.load, &mut asker) {
        Ok(l) => l,
        Err(e) => return report_load_error(g, &e),
    };
    crate::cli::print_warnings_brief(&loaded.sources, &loaded.warnings);
    let built = match build_env(g, args, &loaded) {
        Ok(b) => b,
        Err(code) => return code,
    };
    match &args.command {
        None => print_env(args, &built),
        Some(EnvCommand::Explain { var }) => explain(args, &built, var),
        Some(EnvCommand::Diff { file }) => diff_with(args, &built, file),
    }
}

fn build_env(g: &Global, args: &Args, loaded: &Loaded) -> Result<Built, i32> {
    for f in &args.env_file {
        if let Err(e) = std::fs::metadata(f) {
            eprintln!("error: cannot read {}: {e}", display_path(f));
            return Err(exit::NO_MANIFEST);
        }
    }
    let state = crate::cli::services::open_state(g, &loaded.manifest.dir)?;
    let facts = crate::plan::facts(&g.load.target_url);
    let req = args
        .env_options()
        .request(args.app.as_deref(), args.instance, args.staging);
    let mut prompt = terminal_prompt();
    let built = crate::plan::build_env(loaded, &state, &facts, &req, &mut prompt)
        .map_err(|e| crate::cli::report_plan_error(g, loaded, e))?;
    for n in &built.notes {
        eprintln!("note: {n}");
    }
    if let Some(url) = &built.url {
        eprintln!(
            "note: under `run`, the router serves {} at {url}",
            built.app
        );
    }
    Ok(built)
}

/// Print why the environment could not be built; return the exit code.
pub(super) fn report_build_error(g: &Global, loaded: &Loaded, e: BuildError) -> i32 {
    match e {
        BuildError::Invalid {
            sources,
            diagnostics,
        } => {
            print_diagnostics(g, &sources, &diagnostics);
            eprintln!("error: the environment cannot be completed");
            exit::ENV
        }
        BuildError::Provision(crate::services::registry::ProvisionError::Conflict(d)) => {
            print_diagnostics(g, &loaded.sources, &d);
            exit::INVALID_MANIFEST
        }
        BuildError::NoSuchApp { .. } | BuildError::NoSuchInstance { .. } => {
            eprintln!("error: {e}");
            exit::USAGE
        }
        BuildError::Service(e) => crate::cli::services::report(&e),
        BuildError::State(_) | BuildError::Provision(_) => {
            eprintln!("error: {e}");
            exit::IO
        }
    }
}

/// Ask for a required variable on the terminal: its prompt, a menu for choices, no echo for
/// hidden ones. Nobody answers when stdin is not a terminal.
pub(super) fn terminal_prompt() -> impl FnMut(&EnvVar) -> Option<String> {
    |var: &EnvVar| {
        if !std::io::stdin().is_terminal() {
            return None;
        }
        let mut err = std::io::stderr();
        let text = var
            .prompt
            .clone()
            .unwrap_or_else(|| format!("Enter {}", var.name.value));
        if !var.choices.is_empty() {
            for (i, c) in var.choices.iter().enumerate() {
                let _ = writeln!(err, "  {}. {c}", i + 1);
            }
        }
        let _ = write!(err, "{text}: ");
        let _ = err.flush();
        let stty = |arg: &str| {
            let mut c = std::process::Command::new("stty");
            c.arg(arg).stdin(std::process::Stdio::inherit());
            crate::process::status(&mut c, crate::process::Tie::Foreground)
        };
        let echo_off = var.hidden && stty("-echo").is_ok_and(|s| s.success());
        let mut line = String::new();
        let read = std::io::stdin().read_line(&mut line);
        if echo_off {
            let _ = stty("echo");
            let _ = writeln!(err);
        }
        read.ok()?;
        let answer = line.trim_end_matches(['\n', '\r']).to_string();
        if let Ok(n) = answer.parse::<usize>()
            && n >= 1
            && n <= var.choices.len()
        {
            return Some(var.choices[n - 1].clone());
        }
        Some(answer)
    }
}

fn shown_var(secrets: &Secrets, reveal: bool, name: &str, v: &str) -> String {
    if reveal {
        v.to_string()
    } else {
        secrets.mask_var(name, v)
    }
}

fn shown(secrets: &Secrets, reveal: bool, v: &str) -> String {
    if reveal {
        v.to_string()
    } else {
        secrets.mask(v)
    }
}

fn print_env(args: &Args, b: &Built) -> i32 {
    let pairs = b.env.sorted_pairs();
    let mut out = std::io::stdout().lock();
    let mut masked = false;
    let mut skipped: Vec<shell::Unsafe> = Vec::new();
    match args.format {
        Format::Json => {
            let mut m = serde_json::Map::new();
            for (k, v) in &pairs {
                let s = shown_var(&b.secrets, args.reveal, k, v);
                masked |= s != *v;
                m.insert(k.to_string(), serde_json::Value::String(s));
            }
            let _ = writeln!(
                out,
                "{}",
                serde_json::to_string_pretty(&serde_json::Value::Object(m)).unwrap_or_default()
            );
        }
        Format::Shell | Format::Dotenv => {
            let dialect = match args.format {
                Format::Shell => Dialect::Sh,
                _ => Dialect::Dotenv,
            };
            for (k, v) in &pairs {
                let s = shown_var(&b.secrets, args.reveal, k, v);
                masked |= s != *v;
                match shell::assign(dialect, k, &s) {
                    Ok(line) => {
                        let _ = writeln!(out, "{line}");
                    }
                    Err(e) => skipped.push(e),
                }
            }
        }
    }
    drop(out);
    for e in &skipped {
        eprintln!("note: not printed: {e}");
    }
    eprintln!(
        "# {} {} of \"{}\", profile {} ({}){}",
        pairs.len(),
        if args.staging {
            "staging variables".to_string()
        } else {
            format!("variables for instance {}", args.instance)
        },
        b.app,
        b.profile.profile.number(),
        b.profile.reason,
        if masked {
            format!("; secrets shown as {MASK}, add --reveal to see them")
        } else {
            String::new()
        }
    );
    exit::OK
}

fn explain(args: &Args, b: &Built, name: &str) -> i32 {
    let mut out = std::io::stdout().lock();
    let Some(v) = b.env.var(name) else {
        if let Some(hv) = std::env::var_os(name) {
            use crate::env::host;
            let has_locale = b.env.vars().iter().any(|v| host::is_locale(&v.name));
            if host::passes(name, has_locale) {
                let _ = writeln!(
                    out,
                    "{name}={}",
                    shown_var(&b.secrets, args.reveal, name, &hv.to_string_lossy())
                );
                let _ = writeln!(
                    out,
                    "  set by:  your environment — one of the few host variables every process gets (TERM, TZ, USER, LOGNAME, the proxies, the locale when the profile sets none)"
                );
                return exit::OK;
            }
            let _ = writeln!(out, "{name} is not set for \"{}\".", b.app);
            let _ = writeln!(
                out,
                "  left out: the platform's environment does not include the host's {name}; `env: {name}: {{inherit: true}}` in stackato.yml or --inherit-env brings it."
            );
            return exit::WARNINGS;
        }
        let _ = writeln!(out, "{name} is not set for \"{}\".", b.app);
        let _ = writeln!(
            out,
            "  {}",
            why_unset(b, name, args.staging, args.sqlite_env)
        );
        return exit::WARNINGS;
    };
    let _ = writeln!(
        out,
        "{name}={}",
        shown_var(&b.secrets, args.reveal, name, &v.value)
    );
    let _ = writeln!(out, "  set by:  {} — {}", v.layer, v.why);
    for (layer, old) in v.hidden.iter().rev() {
        let _ = writeln!(
            out,
            "  hides:   {layer}: {}",
            shown_var(&b.secrets, args.reveal, name, old)
        );
    }
    exit::OK
}

/// Why a well-known variable is absent.
fn why_unset(b: &Built, name: &str, staging: bool, sqlite: SqliteMode) -> String {
    let bound = |pred: &dyn Fn(&str) -> bool| -> Vec<String> {
        b.records
            .iter()
            .filter(|r| pred(&r.kind))
            .map(|r| format!("{} ({})", r.name, r.kind))
            .collect()
    };
    // Relational services that run on the sqlite fallback: their variables are left out.
    let on_sqlite: Vec<String> = b
        .planned
        .iter()
        .filter(|p| matches!(p.mode, crate::services::lifecycle::Mode::Sqlite(_)))
        .map(|p| format!("{} ({})", p.record.name, p.record.kind))
        .collect();
    let fallback = |what: &str| -> String {
        let list = on_sqlite.join(", ");
        match sqlite {
            SqliteMode::Omit => format!(
                "{list} {} on the sqlite fallback, whose variables are left out ({what} included) so the app uses its own development default; `--sqlite-env url` exports DATABASE_URL=sqlite:///…, and installing the server (or `--db native`) gives the real variables.",
                if on_sqlite.len() == 1 { "runs" } else { "run" }
            ),
            SqliteMode::Url => format!(
                "{list} run on the sqlite fallback; `--sqlite-env url` sets DATABASE_URL only when exactly one service runs as sqlite, and the server's own variables ({what} included) only come with the real server."
            ),
        }
    };
    match name {
        "DATABASE_URL" => {
            let rel = bound(&crate::platform::services::is_relational);
            let native = rel.len().saturating_sub(on_sqlite.len());
            match rel.len() {
                0 => "no relational (mysql/postgresql) service is bound.".into(),
                _ if native == 0 => fallback(name),
                _ => format!(
                    "DATABASE_URL is set only when exactly one relational service is bound; bound: {}.",
                    rel.join(", ")
                ),
            }
        }
        n if n.ends_with("_URL")
            && b.planned.iter().any(|p| {
                matches!(p.mode, crate::services::lifecycle::Mode::Sqlite(_))
                    && match p.record.kind.as_str() {
                        "mysql" => n.starts_with("MYSQL"),
                        "postgresql" => n.starts_with("POSTGRES"),
                        "oracledb" => n.starts_with("ORACLE"),
                        _ => false,
                    }
            }) =>
        {
            fallback(n)
        }
        "PORT" | "VCAP_APP_PORT" | "VCAP_APP_HOST" if staging => {
            "the platform does not give staging hooks a port.".into()
        }
        n if n.ends_with("_URL") => {
            "URL variables are set per type only when exactly one service of that type is bound."
                .into()
        }
        n if n.starts_with("STACKATO_UWSGI") || n == "PROCESSES_WEB" => {
            "only Python and Perl frameworks get STACKATO_UWSGI; PROCESSES_WEB is unset when the framework has no default web command.".into()
        }
        _ => "neither the platform rules, the services, stackato.yml env:, .env nor --env set it."
            .into(),
    }
}

fn diff_with(args: &Args, b: &Built, file: &PathBuf) -> i32 {
    let text = match std::fs::read(file) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", display_path(file));
            return exit::NO_MANIFEST;
        }
    };
    let other = match dump::parse(&text) {
        Ok(d) => d,
        Err(e) => {
            eprintln!(
                "error: {}:{}:{}: {}",
                display_path(file),
                e.line,
                e.col,
                e.message
            );
            return exit::INVALID_MANIFEST;
        }
    };
    // Their secrets are masked too.
    let mut secrets = b.secrets.clone();
    for (k, v) in &other.vars {
        if crate::env::mask::is_secret_name(k) {
            secrets.add(v);
        }
        if k == "VCAP_SERVICES" || k == "STACKATO_SERVICES" {
            secrets.add_json(v);
        }
        if k.ends_with("_URL")
            && let Some(pw) = crate::env::mask::url_password(v)
        {
            secrets.add(&pw);
        }
    }
    let local: Vec<(String, String)> = b
        .env
        .vars()
        .iter()
        .map(|v| (v.name.clone(), v.value.clone()))
        .collect();
    let items = diff::diff(&local, &other.vars);
    let show = |v: &Option<String>| {
        v.as_deref()
            .map(|s| {
                let s = shown(&secrets, args.reveal, s);
                if s.len() > 100 {
                    format!("{}…", s.chars().take(100).collect::<String>())
                } else {
                    s
                }
            })
            .unwrap_or_default()
    };
    let mut out = std::io::stdout().lock();
    let _ = writeln!(
        out,
        "ours: \"{}\" ({}, profile {}) — theirs: {}",
        b.app,
        if args.staging { "staging" } else { "runtime" },
        b.profile.profile.number(),
        display_path(file)
    );
    for note in &other.notes {
        let _ = writeln!(out, "note: {note}");
    }
    let count = |k: Kind| items.iter().filter(|i| i.kind == k).count();
    for i in items.iter().filter(|i| i.kind == Kind::Different) {
        let _ = writeln!(out, "\n≠ {}", i.name);
        for d in &i.details {
            let _ = writeln!(out, "    {}", shown(&secrets, args.reveal, d));
        }
        if i.details.iter().all(|d| d == "values differ") {
            let _ = writeln!(out, "    ours:   {}", show(&i.local));
            let _ = writeln!(out, "    theirs: {}", show(&i.other));
        }
    }
    let group = |out: &mut std::io::StdoutLock<'_>, k: Kind, title: &str, val: bool| {
        let list: Vec<&diff::Item> = items.iter().filter(|i| i.kind == k).collect();
        if list.is_empty() {
            return;
        }
        let _ = writeln!(out, "\n{title} ({}):", list.len());
        for i in list {
            if val {
                let v = if k == Kind::Missing {
                    &i.other
                } else {
                    &i.local
                };
                let _ = writeln!(out, "    {}={}", i.name, show(v));
            } else {
                let _ = writeln!(out, "    {}", i.name);
            }
        }
    };
    group(
        &mut out,
        Kind::Missing,
        "- missing here (set in theirs)",
        true,
    );
    group(&mut out, Kind::Extra, "+ only here", true);
    group(
        &mut out,
        Kind::Expected,
        "~ differ as expected on a laptop (paths, ports, hosts, credentials)",
        false,
    );
    group(
        &mut out,
        Kind::Noise,
        "· only theirs, set by the container or shell (ignored)",
        false,
    );
    let significant = count(Kind::Different) + count(Kind::Missing) + count(Kind::Extra);
    let _ = writeln!(
        out,
        "\n{} different, {} missing, {} only here, {} as expected, {} identical",
        count(Kind::Different),
        count(Kind::Missing),
        count(Kind::Extra),
        count(Kind::Expected),
        count(Kind::Same)
    );
    if significant > 0 {
        exit::WARNINGS
    } else {
        exit::OK
    }
}
