//! `stackato-local exec -- CMD`: a one-off command in the app's runtime environment with its
//! services up. It runs in the checkout (what it generates, such as migrations, is yours to
//! keep), or with `--staged` in the instance's staged copy, where `run` runs the app, as
//! `stackato run` did. Services this command started are stopped again when it ends; ones
//! that were already running are left alone.

use std::time::Duration;

use crate::cli::Global;
use crate::cli::env::{self as cenv};
use crate::cli::services::{self as csvc};
use crate::plan::{self, EnvOptions};

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// Which application (default: the first in start order).
    #[arg(long, value_name = "NAME")]
    pub app: Option<String>,
    /// Which instance's environment.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub instance: u32,
    /// Imitate Stackato 2.x or 3.x.
    #[arg(long, value_name = "2|3", value_parser = cenv::parse_profile)]
    pub profile: Option<crate::platform::Profile>,
    /// Set a variable; repeatable.
    #[arg(long = "env", short = 'e', value_name = "KEY=VALUE", value_parser = crate::env::user::parse_cli_pair)]
    pub env: Vec<(String, String)>,
    /// Leave the services running afterwards.
    #[arg(long)]
    pub keep_services: bool,
    /// Run in the instance's staged copy (where `run` runs the app; what the command writes
    /// there is dropped at the next restage), as `stackato run` did; by default it runs in
    /// the checkout, so what it generates (migrations, …) is yours to keep.
    #[arg(long)]
    pub staged: bool,
    /// Give the command the whole host environment (by default it gets the app's variables
    /// plus TERM, TZ, USER, LOGNAME, the proxies and the locale, as `stackato run` did).
    #[arg(long)]
    pub inherit_env: bool,
    /// Run on this runtime instead of the declared one (`python27`, `python3.12`,
    /// `python-2.7.18`, `node18`, `ruby3.1`), as `run --runtime`.
    #[arg(long, value_name = "RUNTIME")]
    pub runtime: Option<String>,
    #[command(flatten)]
    pub services: crate::cli::ServiceOpts,
    /// The command and its arguments.
    #[arg(trailing_var_arg = true, required = true, value_name = "CMD")]
    pub command: Vec<String>,
}

/// `ssh`: an interactive shell (or a command) in the app's environment, like `stackato ssh`.
#[derive(Debug, clap::Args)]
pub(crate) struct SshArgs {
    /// Which application (default: the first in start order).
    #[arg(long, value_name = "NAME")]
    pub app: Option<String>,
    /// Which instance's environment.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub instance: u32,
    /// Imitate Stackato 2.x or 3.x.
    #[arg(long, value_name = "2|3", value_parser = cenv::parse_profile)]
    pub profile: Option<crate::platform::Profile>,
    /// Leave the services running afterwards.
    #[arg(long)]
    pub keep_services: bool,
    /// Run in the instance's staged copy (where `run` runs the app; what the command writes
    /// there is dropped at the next restage), as `stackato run` did; by default it runs in
    /// the checkout, so what it generates (migrations, …) is yours to keep.
    #[arg(long)]
    pub staged: bool,
    /// Give the command the whole host environment (by default it gets the app's variables
    /// plus TERM, TZ, USER, LOGNAME, the proxies and the locale, as `stackato run` did).
    #[arg(long)]
    pub inherit_env: bool,
    /// Run on this runtime instead of the declared one (`python27`, `python3.12`,
    /// `python-2.7.18`, `node18`, `ruby3.1`), as `run --runtime`.
    #[arg(long, value_name = "RUNTIME")]
    pub runtime: Option<String>,
    #[command(flatten)]
    pub services: crate::cli::ServiceOpts,
    /// A command instead of an interactive shell.
    #[arg(trailing_var_arg = true, value_name = "CMD")]
    pub command: Vec<String>,
}

impl Args {
    /// The environment options of `exec` (and `ssh`): no `.env` options of their own.
    fn env_options(&self) -> EnvOptions {
        EnvOptions {
            profile: self.profile,
            cli: self.env.clone(),
            db: self.services.db_mode(),
            skip: self.services.skip_service.clone(),
            place: crate::platform::layout::Place::Checkout,
            ..EnvOptions::default()
        }
    }
}

pub(super) fn ssh(g: &Global, a: &SshArgs) -> i32 {
    let command = if a.command.is_empty() {
        let shell = std::env::var("SHELL")
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| crate::stage::run::shell().to_string());
        vec![shell, "-i".to_string()]
    } else {
        a.command.clone()
    };
    run(
        g,
        &Args {
            app: a.app.clone(),
            instance: a.instance,
            profile: a.profile,
            env: Vec::new(),
            keep_services: a.keep_services,
            staged: a.staged,
            inherit_env: a.inherit_env,
            services: a.services.clone(),
            runtime: a.runtime.clone(),
            command,
        },
    )
}

pub(super) fn run(g: &Global, args: &Args) -> i32 {
    if let Err(e) = crate::platform::runtime::set_from_cli(args.runtime.as_deref(), false) {
        eprintln!("{e}");
        return crate::exit::USAGE;
    }
    let (loaded, state) = match csvc::open(g) {
        Ok(x) => x,
        Err(c) => return c,
    };
    if let Err(c) = csvc::gate(g, &loaded) {
        return c;
    }
    let mut planned = match csvc::plan(g, &loaded, &state, &args.services) {
        Ok(p) => p,
        Err(c) => return c,
    };
    // If we are killed (even with SIGKILL), the guardian kills what the command left behind
    // and stops the services this command started (unless they are to be kept).
    crate::process::start_guardian(!args.keep_services);
    let ups = match csvc::start(
        &mut planned,
        &state,
        &args.services,
        &crate::interrupt::Stop::never(),
    ) {
        Ok(u) => u,
        Err(c) => {
            crate::process::end_guardian();
            return c;
        }
    };
    let ours = plan::services::started(&planned, &ups).ours;
    let code = run_command(g, args, &loaded, &state);
    // A `run` of this project that started meanwhile uses them (it found them running and
    // leaves them alone when it ends): they stay up for it.
    let run_uses_them = matches!(state.try_lock("run"), Ok(None));
    if !args.keep_services && !ours.is_empty() && run_uses_them {
        let names: Vec<&str> = ours.iter().map(|p| p.record.name.as_str()).collect();
        eprintln!(
            "note: services {} kept running: a `run` of this project uses them (`stackato-local services stop` stops them)",
            names.join(", ")
        );
    } else if !args.keep_services && !ours.is_empty() {
        csvc::stop(&ours, &state, Duration::from_secs(30));
    }
    crate::process::end_guardian();
    code
}

fn run_command(
    g: &Global,
    args: &Args,
    loaded: &crate::manifest::Loaded,
    state: &crate::state::StateDir,
) -> i32 {
    let facts = plan::facts(&g.load.target_url);
    let mut opts = args.env_options();
    if args.staged {
        match staged_place(loaded, state, args) {
            Ok(p) => opts.place = p,
            Err(c) => return c,
        }
    }
    let req = opts.request(args.app.as_deref(), args.instance, false);
    let mut prompt = cenv::terminal_prompt();
    let built = match plan::instance_env(loaded, state, &facts, &req, &mut prompt) {
        Ok(b) => b,
        Err(e) => return crate::cli::report_plan_error(g, loaded, e),
    };
    // Staged with a buildpack: its config vars, and `.profile.d/*.sh` sourced first.
    let (argv, release_vars) =
        plan::prepare::one_off_command(state, &built, opts.place, &args.command);
    let mut cmd = std::process::Command::new(&argv[0]);
    crate::env::host::apply(
        &mut cmd,
        built
            .env
            .vars()
            .iter()
            .map(|v| (v.name.as_str(), v.value.as_str()))
            .chain(release_vars.iter().map(|(k, v)| (k.as_str(), v.as_str()))),
        crate::env::host::Host::from_flag(args.inherit_env),
    );
    cmd.args(&argv[1..]).current_dir(&built.layout.home);
    // Ctrl-C reaches the command (same process group); we wait for it, then clean up.
    let _guard = crate::process::IgnoreInterrupts::new();
    let status = crate::process::status(&mut cmd, crate::process::Tie::Foreground);
    // What it left running in the background ends with it (as after a killed `exec`,
    // where the guardian does it).
    crate::supervise::orphans::kill_marked();
    match status {
        Ok(s) => {
            use std::os::unix::process::ExitStatusExt;
            s.code().unwrap_or_else(|| 128 + s.signal().unwrap_or(0))
        }
        Err(e) => {
            eprintln!("error: cannot run `{}`: {e}", args.command[0]);
            if e.kind() == std::io::ErrorKind::NotFound {
                127
            } else {
                126
            }
        }
    }
}

/// `--staged`: the generation `run` staged last, with the instance's copy made if needed.
fn staged_place(
    loaded: &crate::manifest::Loaded,
    state: &crate::state::StateDir,
    args: &Args,
) -> Result<crate::platform::layout::Place, i32> {
    let app = match &args.app {
        Some(name) => loaded.manifest.app(name),
        None => loaded.manifest.start_order().into_iter().next(),
    };
    let Some(app) = app else {
        eprintln!(
            "error: no application named \"{}\"",
            args.app.as_deref().unwrap_or_default()
        );
        return Err(crate::exit::USAGE);
    };
    let Some(generation) = crate::stage::current_generation(app, state) else {
        eprintln!(
            "error: {} has no staged copy yet: `stackato-local run` stages it (or drop --staged to run in the checkout)",
            app.name.value
        );
        return Err(crate::exit::USAGE);
    };
    if let Err(e) =
        crate::stage::droplet::instance_home(state, &app.name.value, generation, args.instance)
    {
        eprintln!(
            "error: could not make the copy of instance {}: {e}",
            args.instance
        );
        return Err(crate::exit::IO);
    }
    // Edits made since `run` last synced the copies go in first, as `run` would do.
    let homes = crate::stage::droplet::instance_homes(state, &app.name.value, generation);
    if let Some(copies) = crate::stage::droplet::Copies::open(state, app, generation, homes, false)
    {
        match copies.diff() {
            Ok(changes) => {
                let n = changes.paths().count();
                for note in copies.sync(&changes) {
                    eprintln!("note: {note}");
                }
                copies.flush();
                if n > 0 {
                    eprintln!(
                        "note: synced {n} changed path(s) from your checkout into the staged copy"
                    );
                }
            }
            Err(e) => {
                eprintln!("warning: the staged copy was not compared with your checkout: {e}")
            }
        }
    }
    Ok(crate::platform::layout::Place::Staged { generation })
}
