//! Command-line interface: clap types, global options and dispatch to one module per
//! subcommand. Nothing below `cli` sees clap.

mod allow;
mod check;
mod completions;
mod config;
mod doctor;
mod env;
mod exec;
mod export;
mod hook;
mod init;
mod restart;
mod router;
mod run;
mod services;
mod trust_prompt;
mod upload_files;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

use crate::diag::Sources;
use crate::exit;
use crate::manifest::{self, LoadError, LoadOptions};

const EXAMPLES: &str = "\
Examples:
  stackato-local check                     validate ./stackato.yml, every problem at once
  stackato-local config                    what the platform would read from it
  stackato-local config --json             the normalised manifest, as `stackato debug-manifest`
  stackato-local -C examples/hello config  use another app directory
  stackato-local check --manifest ci.yml   validate a specific file";

/// Run a Stackato app (stackato.yml) on your laptop the way the platform would.
#[derive(Debug, Parser)]
#[command(
    name = "stackato-local",
    version,
    about,
    after_help = EXAMPLES,
    propagate_version = true
)]
pub(crate) struct Cli {
    /// When to use colour: auto (a terminal, and NO_COLOR unset), always or never.
    #[arg(long, global = true, value_enum, default_value_t = ColorWhen::Auto, value_name = "WHEN")]
    pub color: ColorWhen,

    /// The application directory (default: the current directory).
    #[arg(short = 'C', long = "path", global = true, value_name = "DIR")]
    pub path: Option<PathBuf>,

    /// Use this manifest file instead of searching for stackato.yml / manifest.yml.
    #[arg(long, global = true, value_name = "FILE")]
    pub manifest: Option<String>,

    /// The target URL behind ${target-url} and ${target-base}.
    #[arg(long, global = true, env = "STACKATO_TARGET", value_name = "URL",
          default_value = manifest::DEFAULT_TARGET, hide_env_values = true)]
    pub target: String,

    /// Trust the project's commands for this invocation without asking or recording (for CI;
    /// also STACKATO_LOCAL_TRUST=1 in this tool's own environment).
    #[arg(long, global = true)]
    pub trust: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum ColorWhen {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Print the normalised manifest (all apps, after inherit and ${...} substitution).
    #[command(after_help = "\
Examples:
  stackato-local config
  stackato-local config --json | jq '.manifest.applications | keys'
  stackato-local config --app web
  stackato-local config --upload-files     what a push would upload, and what ignores: dropped")]
    Config(config::Args),
    /// Validate the manifest and print every error and warning with file:line:col.
    #[command(after_help = "\
Exit codes: 0 valid, 1 warnings only (with --strict), 2 invalid, 3 no manifest.

Examples:
  stackato-local check
  stackato-local check --strict        fail on warnings too (for CI)
  stackato-local check --format short  one line per problem, for editors")]
    Check(check::Args),
    /// Print the environment the platform would give the app; explain or diff it.
    #[command(after_help = "\
Precedence, lowest to highest: platform rules, services, stackato.yml env:, your shell
(inherit: true), remembered answers, .env files, --env.

Examples:
  eval \"$(stackato-local env)\"                 load the app's environment into this shell
  stackato-local env --format json --reveal
  stackato-local env --staging --profile 2
  stackato-local env explain DATABASE_URL
  stackato-local env diff prod-env.txt            compare with `stackato run env > prod-env.txt`")]
    Env(env::Args),
    /// Manage the project's local services: list, start, stop, logs, reset, shell.
    #[command(after_help = "\
Examples:
  stackato-local services                 what runs, on which port, how much data
  stackato-local services start           start all and wait until they answer
  stackato-local services stop
  stackato-local services logs mydb
  stackato-local services reset mydb --yes
  stackato-local services --db sqlite     use sqlite for mysql/postgresql")]
    Services(services::Args),
    /// Open the database's own client with the app's credentials (psql, mariadb, redis-cli).
    Dbshell(services::DbshellArgs),
    /// Run a one-off command in the app's environment with its services up (like `stackato run`).
    #[command(after_help = "\
Examples:
  stackato-local exec -- python manage.py migrate
  stackato-local exec -- sh -c 'psql $DATABASE_URL'
  stackato-local exec --app worker -- env")]
    Exec(exec::Args),
    /// Run the app as the platform would: services, staging, hooks, supervised processes.
    #[command(after_help = "\
Order: services up and answering → staging (pre-staging hooks → requirements → post-staging
hooks; skipped when nothing changed) → for each instance: pre-running hooks → the process.
Ctrl-C stops everything (again to kill at once).

Examples:
  stackato-local run
  stackato-local run --restage            stage even if nothing changed
  stackato-local run --exit-on-crash      for scripts and CI
  stackato-local run --db sqlite          no database server needed")]
    Run(run::Args),
    /// Show what the project runs (commands, installers, environment) and trust it here.
    #[command(after_help = "\
Examples:
  stackato-local allow          show and trust the project in this directory
  stackato-local allow --list   every trusted project, and whether it still matches")]
    Allow(allow::Args),
    /// Forget the trust of the project in DIR (default: this one).
    Deny(allow::DenyArgs),
    /// Recognise the app in the directory and write a commented stackato.yml for it.
    #[command(after_help = "\
Recognises Django, Flask, plain WSGI, Node.js, Perl PSGI and CGI, PHP, Rails, Rack, Sinatra,
Java WAR and Go (buildpack) apps with run's detection, and guesses the runtime (python27 for
Python 2 code), services from their dependencies, migration hooks and the web command; prints
each guess and why. Never replaces a stackato.yml or manifest.yml without --force (exit 64).

Examples:
  stackato-local init
  stackato-local init --dry-run           print it, write nothing
  stackato-local -C ~/src/shop init --name shop-api
  stackato-local init --kind flask --force")]
    Init(init::Args),
    /// Check this machine for what the app needs: runtimes, service servers, ports, watches.
    #[command(after_help = "\
One ✔/✘ line per need, with install commands for Debian/Ubuntu, Fedora and macOS under each
failure. Exit codes: 0 everything is here, 1 something is missing (as check --strict's
warnings), 2 invalid manifest, 3 no manifest.

Examples:
  stackato-local doctor
  stackato-local doctor --app web
  STACKATO_LOCAL_SERVER_PATH=/opt/pg16/bin stackato-local doctor")]
    Doctor(doctor::Args),
    /// Print shell completions (bash, zsh or fish), generated from the command's options.
    #[command(after_help = "\
Examples:
  stackato-local completions bash > ~/.local/share/bash-completion/completions/stackato-local
  stackato-local completions zsh > \"${fpath[1]}/_stackato-local\"
  stackato-local completions fish > ~/.config/fish/completions/stackato-local.fish")]
    Completions(completions::Args),
    /// Print the shell snippet that loads the app's environment when you enter an allowed
    /// project (and restores yours when you leave).
    #[command(after_help = "\
Add to your rc file:
  bash: eval \"$(stackato-local hook bash)\"    (~/.bashrc)
  zsh:  eval \"$(stackato-local hook zsh)\"     (~/.zshrc)
  fish: stackato-local hook fish | source       (~/.config/fish/config.fish)
A project loads only after `stackato-local allow` in it; a changed stackato.yml or .env needs
allowing again.")]
    Hook(hook::Args),
    /// Internal: the shell code the hook evaluates at each prompt.
    #[command(name = "__hook-env", hide = true)]
    HookEnv {
        #[arg(value_enum)]
        shell: hook::Shell,
    },
    /// Print the man page (roff).
    #[command(after_help = "Example:\n  stackato-local man | man -l -")]
    Man,
    /// Restart processes of the `run` going on in another terminal.
    #[command(after_help = "\
Examples:
  stackato-local restart          every process
  stackato-local restart web.0    one process
  stackato-local restart web      all web instances")]
    Restart(restart::Args),
    /// An interactive shell in the app's environment, in $HOME, with its services up (like `stackato ssh`).
    Ssh(exec::SshArgs),
    /// Write the app's configuration for another platform: Cloud Foundry, docker compose, Procfile, systemd.
    #[command(after_help = "\
Files go to stackato-export/<format>/ beside the manifest (or --out DIR); existing files are
never replaced without --force (exit 64). Files holding credentials are written 0600 and
passwords are never printed. The summary lists what the target has no place for.

Examples:
  stackato-local export --format cf                  manifest.yml, cf-services.sh, .profile
  stackato-local export --format compose             compose.yaml + .env.compose
  stackato-local export --format procfile --app web  Procfile + .env for foreman/honcho
  stackato-local export --format systemd --out /tmp/units --force")]
    Export(export::Args),
    /// Internal: the guardian that cleans up if `run` is killed.
    #[command(name = "__guardian", hide = true)]
    Guardian,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum DbWhen {
    /// The real database server when installed, else sqlite.
    Auto,
    /// The real server; fail when it is not installed.
    Native,
    /// Always sqlite for mysql/postgresql services.
    Sqlite,
}

/// How services run; shared by every command that needs them.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct ServiceOpts {
    /// How mysql/postgresql services run.
    #[arg(long, value_enum, default_value_t = DbWhen::Auto, global = true)]
    pub db: DbWhen,
    /// Do not start this service, and leave it out of the environment; repeatable.
    #[arg(long = "skip-service", value_name = "NAME", global = true)]
    pub skip_service: Vec<String>,
    /// Seconds to wait for each service to answer.
    #[arg(long, value_name = "SECS", default_value_t = 60, global = true)]
    pub service_timeout: u64,
}

impl ServiceOpts {
    pub(crate) fn db_mode(&self) -> crate::services::lifecycle::DbMode {
        use crate::services::lifecycle::DbMode;
        match self.db {
            DbWhen::Auto => DbMode::Auto,
            DbWhen::Native => DbMode::Native,
            DbWhen::Sqlite => DbMode::Sqlite,
        }
    }
}

/// Terminal facts decided once, at the edge.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ui {
    pub color_err: bool,
    pub color_out: bool,
}

impl Ui {
    fn new(when: ColorWhen) -> Ui {
        let auto = |tty: bool| {
            tty && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                && std::env::var("TERM").map_or(true, |t| t != "dumb")
        };
        let (out, err) = match when {
            ColorWhen::Always => (true, true),
            ColorWhen::Never => (false, false),
            ColorWhen::Auto => (
                auto(std::io::stdout().is_terminal()),
                auto(std::io::stderr().is_terminal()),
            ),
        };
        anstream::ColorChoice::write_global(if out || err {
            anstream::ColorChoice::Always
        } else {
            anstream::ColorChoice::Never
        });
        Ui {
            color_err: err,
            color_out: out,
        }
    }
}

/// Options every command shares, without clap.
pub(crate) struct Global {
    pub ui: Ui,
    pub load: LoadOptions,
    /// `--trust`: trust the project for this invocation.
    pub trust: bool,
}

/// Parse the command line, run, return the exit code.
pub fn main() -> i32 {
    install_panic_hook();
    guarded(|| dispatch(std::env::args_os().collect()))
}

/// Run the tool in this process with `args` (the program name first), as `main` does but
/// without the panic hook: the `entry` fuzz target drives `run`, `exec` and the shell hook
/// through here.
pub fn run_with_args(args: Vec<std::ffi::OsString>) -> i32 {
    dispatch(args)
}

/// Run `f`, turning a panic (in it, or in any thread meanwhile) into [`exit::BUG`]. The main
/// thread's panic unwinds first, so guards still stop what they started.
pub(crate) fn guarded(f: impl FnOnce() -> i32 + std::panic::UnwindSafe) -> i32 {
    let code = std::panic::catch_unwind(f).unwrap_or(exit::BUG);
    if PANICKED.load(std::sync::atomic::Ordering::SeqCst) {
        exit::BUG
    } else {
        code
    }
}

fn dispatch(args: Vec<std::ffi::OsString>) -> i32 {
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() {
                exit::USAGE
            } else {
                exit::OK
            };
            let _ = e.print();
            return code;
        }
    };
    let ui = Ui::new(cli.color);
    let dir = match &cli.path {
        Some(p) => p.clone(),
        None => std::env::current_dir().unwrap_or_else(|_| PathBuf::from(".")),
    };
    let mut load = LoadOptions::new(dir);
    load.manifest = cli
        .manifest
        .as_deref()
        .filter(|m| !m.is_empty())
        .map(PathBuf::from);
    load.target_url = cli.target.clone();
    // Inherited files outside the project are read only when `allow` recorded them.
    if !matches!(
        cli.command,
        Command::Allow(_)
            | Command::Deny(_)
            | Command::Hook(_)
            | Command::HookEnv { .. }
            | Command::Completions(_)
            | Command::Man
            | Command::Guardian
    ) {
        load.outside = crate::trust::accepted_outside(&load);
    }
    let g = Global {
        ui,
        load,
        trust: cli.trust,
    };
    let code = match &cli.command {
        Command::Config(a) => config::run(&g, a),
        Command::Check(a) => check::run(&g, a),
        Command::Env(a) => env::run(&g, a),
        Command::Services(a) => services::run(&g, a),
        Command::Dbshell(a) => services::dbshell(&g, a),
        Command::Exec(a) => exec::run(&g, a),
        Command::Run(a) => run::run(&g, a),
        Command::Restart(a) => restart::run(&g, a),
        Command::Allow(a) => allow::run(&g, a),
        Command::Deny(a) => allow::deny(&g, a),
        Command::Init(a) => init::run(&g, a),
        Command::Doctor(a) => doctor::run(&g, a),
        Command::Completions(a) => completions::completions(a),
        Command::Man => completions::man(),
        Command::Hook(a) => hook::hook(a),
        Command::HookEnv { shell } => hook::hook_env(&g, *shell),
        Command::Ssh(a) => exec::ssh(&g, a),
        Command::Export(a) => export::run(&g, a),
        Command::Guardian => crate::supervise::guardian::main(),
    };
    let _ = std::io::stdout().flush();
    code
}

/// Set by the panic hook: some thread panicked.
static PANICKED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Report a panic as the bug it is, instead of Rust's message; [`guarded`] then exits with
/// [`exit::BUG`] (70), never Rust's 101. Writing the report cannot fail loudly (a closed
/// stderr is ignored).
pub(crate) fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        PANICKED.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = writeln!(std::io::stderr(), "{}", bug_report(info));
    }));
}

/// The one line a panic prints.
fn bug_report(info: &std::panic::PanicHookInfo<'_>) -> String {
    let payload = info.payload();
    let what = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic".into());
    let at = info
        .location()
        .map(|l| format!(" (at {}:{})", l.file(), l.line()))
        .unwrap_or_default();
    format!("stackato-local: internal error (a bug): {what}{at}; please report it")
}

/// Ask on the terminal for `${ask …}`; nobody answers when stdin is not a terminal.
pub(crate) fn terminal_asker() -> impl FnMut(&str) -> Option<String> {
    |question: &str| {
        if !std::io::stdin().is_terminal() {
            return None;
        }
        eprint!("{question}: ");
        let _ = std::io::stderr().flush();
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).ok()?;
        Some(line.trim_end_matches(['\n', '\r']).to_string())
    }
}

/// Print why a plan failed (to stderr) and return its exit code.
pub(crate) fn report_plan_error(
    g: &Global,
    loaded: &crate::manifest::Loaded,
    e: crate::plan::PlanError,
) -> i32 {
    use crate::plan::PlanError;
    use crate::services::registry::ProvisionError;
    match e {
        PlanError::NoSuchApp { .. } => {
            eprintln!("error: {e}");
            exit::USAGE
        }
        PlanError::Build(e) => env::report_build_error(g, loaded, e),
        PlanError::Provision(ProvisionError::Conflict(d)) => {
            print_diagnostics(g, &loaded.sources, &d);
            exit::INVALID_MANIFEST
        }
        PlanError::NoWebCommand(d) => {
            print_diagnostics(g, &loaded.sources, &[*d]);
            exit::INVALID_MANIFEST
        }
        PlanError::Runtime(d) => {
            print_diagnostics(g, &loaded.sources, &[*d]);
            exit::RUNTIME
        }
        PlanError::Service(e) => services::report(&e),
        PlanError::Stage { .. } => {
            eprintln!("error: {e}");
            exit::HOOK
        }
        PlanError::Layout(_) | PlanError::Provision(_) | PlanError::Copy(_) => {
            eprintln!("error: {e}");
            exit::IO
        }
    }
}

/// Print a load failure to stderr and return its exit code.
pub(crate) fn report_load_error(g: &Global, e: &LoadError) -> i32 {
    let mut err = anstream::stderr();
    match e {
        LoadError::NotFound { skipped, .. } => {
            for s in skipped {
                let _ = writeln!(err, "note: {s}");
            }
            let _ = writeln!(err, "error: {e}");
            let _ = writeln!(
                err,
                "help: run it in the app directory, pass -C DIR, or name the file with --manifest FILE"
            );
            exit::NO_MANIFEST
        }
        LoadError::Unreadable { .. } => {
            let _ = writeln!(err, "error: {e}");
            exit::NO_MANIFEST
        }
        LoadError::Invalid {
            sources,
            diagnostics,
            ..
        } => {
            print_diagnostics(g, sources, diagnostics);
            let _ = writeln!(err, "error: {e}");
            exit::INVALID_MANIFEST
        }
    }
}

/// Warnings for the commands that only use the manifest (`run`, `env`, `allow`, `services`…):
/// one line each, with a pointer to `check`, which shows them in full; a warning about a name
/// the user cannot change should not fill every command's output.
pub(crate) fn print_warnings_brief(sources: &Sources, warnings: &[crate::diag::Diagnostic]) {
    if warnings.is_empty() {
        return;
    }
    let mut err = anstream::stderr();
    for d in warnings {
        let _ = writeln!(err, "{}", d.short(sources));
    }
    let _ = writeln!(
        err,
        "(`stackato-local check` shows {} with the lines {} points at)",
        if warnings.len() == 1 { "it" } else { "them" },
        if warnings.len() == 1 { "it" } else { "each" },
    );
}

/// Render diagnostics to stderr, errors and warnings alike, in file order.
pub(crate) fn print_diagnostics(g: &Global, sources: &Sources, diags: &[crate::diag::Diagnostic]) {
    let mut err = anstream::stderr();
    for d in diags {
        let _ = writeln!(err, "{}\n", d.render(sources, g.ui.color_err));
    }
}

#[cfg(test)]
mod panic_tests {
    /// Set in the child run of [`a_panic_is_reported_as_a_bug_with_exit_70`].
    const CHILD: &str = "STACKATO_LOCAL_TEST_PANIC_CHILD";

    #[test]
    fn a_panic_is_reported_as_a_bug_with_exit_70() {
        if std::env::var_os(CHILD).is_some() {
            super::install_panic_hook();
            // A real panic (an out-of-bounds index), through the real hook and guard.
            let code = super::guarded(|| {
                let v: Vec<i32> = Vec::new();
                v[std::hint::black_box(3)]
            });
            std::process::exit(code);
        }
        // Run this very test again in a child process, where the hook is installed.
        let exe = std::env::current_exe().expect("test binary");
        #[allow(clippy::disallowed_methods)] // the test binary itself, not the tool's spawn
        let out = std::process::Command::new(exe)
            .args([
                "--exact",
                "cli::panic_tests::a_panic_is_reported_as_a_bug_with_exit_70",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD, "1")
            .output()
            .expect("run the test binary");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(crate::exit::BUG), "{err}");
        assert!(
            err.contains("stackato-local: internal error (a bug): index out of bounds")
                && err.contains("please report it"),
            "{err}"
        );
        assert!(!err.contains("panicked at"), "{err}");
    }
}
