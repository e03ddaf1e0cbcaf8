//! Staging, in the platform's order, in a fresh copy of the upload (a new generation of the
//! staged copy, [`droplet`]; or in the checkout with `run --in-place`): pre-staging hooks →
//! requirements or a buildpack's compile (OS packages checked, Python modules into the project's virtualenv, npm,
//! cpanm, uWSGI when the web command needs it) → post-staging hooks. Skipped when what staging
//! reads (the manifest, the requirements files) did not change since the last staging; code
//! edits are synced into the copy instead; `--restage` forces it. A step skipped because its
//! tool is missing is recorded as skipped, not done: once the tool is there, the next run
//! stages again.

pub(crate) mod buildpack;
pub(crate) mod copy;
pub(crate) mod droplet;
pub(crate) mod glob;
pub(crate) mod ignores;
pub(crate) mod requirements;
pub(crate) mod run;

use crate::fnv::Fnv;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::diag::Span;
use crate::manifest::model::Hook;
use crate::manifest::{App, Loaded};
use crate::model::EnvSet;
use crate::output::{Output, Prefix};
use crate::stage::run::{Ended, Finished};
use crate::state::StateDir;

/// A staging failure.
#[derive(Debug)]
pub(crate) enum StageError {
    /// A hook entry failed (and did not start with `-`).
    Hook {
        stage: &'static str,
        index: usize,
        command: String,
        ended: Ended,
        tail: Vec<String>,
        span: Span,
    },
    /// An installer failed.
    Requirement {
        what: String,
        ended: Ended,
        tail: Vec<String>,
        hint: String,
    },
    Io(String),
}

impl std::fmt::Display for StageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StageError::Hook {
                stage,
                index,
                command,
                ended,
                ..
            } => write!(
                f,
                "{stage} hook #{} `{command}` {}",
                index + 1,
                describe(ended)
            ),
            StageError::Requirement { what, ended, .. } => {
                write!(f, "{what} {}", describe(ended))
            }
            StageError::Io(m) => f.write_str(m),
        }
    }
}

/// "failed with exit status 3", "timed out", …
pub(crate) fn describe(e: &Ended) -> String {
    match e {
        Ended::Exit(0) => "succeeded".into(),
        Ended::Exit(c) if *c > 128 => format!("was killed by signal {}", c - 128),
        Ended::Exit(c) => format!("failed with exit status {c}"),
        Ended::TimedOut => "did not finish in time and was killed".into(),
        Ended::NotStarted(m) => format!("could not be started: {m}"),
        Ended::Interrupted => "was interrupted".into(),
    }
}

/// What staging did.
#[derive(Debug, Clone)]
pub(crate) struct Staged {
    /// Nothing that staging reads changed since the last staging: skipped.
    pub cached: bool,
    pub notes: Vec<String>,
}

/// Whether to stage, and where.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    /// The last staging still holds: run from it (generation `None`: in place).
    Reuse { generation: Option<u64> },
    /// Stage (into a new generation of the staged copy, or in place).
    Build { generation: Option<u64> },
}

impl Decision {
    /// Where `$HOME` is for this staging and the processes after it.
    pub(crate) fn place(&self) -> crate::platform::layout::Place {
        match self {
            Decision::Reuse {
                generation: Some(g),
            }
            | Decision::Build {
                generation: Some(g),
            } => crate::platform::layout::Place::Staged { generation: *g },
            _ => crate::platform::layout::Place::Checkout,
        }
    }
}

/// Everything staging needs.
pub(crate) struct Stager<'a> {
    pub loaded: &'a Loaded,
    pub app: &'a App,
    pub state: &'a StateDir,
    /// The staging environment (built for the decision's place).
    pub env: &'a EnvSet,
    /// Where hooks and installers run: the new generation's copy, or the checkout.
    pub home: PathBuf,
    /// How much of the host environment hooks and installers get besides `env`.
    pub host: crate::env::host::Host,
    pub out: &'a Arc<Output>,
    /// The prefix for staging output (`staging`, or `<app>:staging` with several apps).
    pub prefix: Prefix,
    /// Time limit of one hook or installer.
    pub limit: Duration,
    /// `--restage`: tried again even where a fallback is in place (the uWSGI build).
    pub restage: bool,
    /// `--copy-unsafe-links`.
    pub copy_unsafe_links: bool,
    /// `--buildpack DIR`: stage with this buildpack (see [`buildpack`]).
    pub buildpack: Option<PathBuf>,
    /// Ctrl-C and the other stop signals: a staging command is stopped at once.
    pub stop: crate::interrupt::Stop,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct CacheRecord {
    /// The staging key: what staging reads besides the code (see [`staging_key`]).
    hash: String,
    staged_at: u64,
    /// The generation of the staged copy (`None`: staged in place, `run --in-place`).
    #[serde(default)]
    generation: Option<u64>,
    /// Steps skipped because their tool was missing (retried once the tool is there).
    #[serde(default)]
    skipped: Vec<Skip>,
}

/// A staging step that did not run (or fell back) because a tool was missing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Skip {
    /// What was not done, for messages (`npm install`).
    pub step: String,
    /// The program it needs (`npm`), looked up on the tool's search path.
    pub tool: String,
    /// Where the tool was found when the step was skipped (`None`: nowhere).
    pub found: Option<String>,
}

impl Skip {
    /// A skip of `step` for want of `tool`, noting where `tool` is now.
    pub(crate) fn new(step: &str, tool: &str) -> Skip {
        Skip {
            step: step.to_string(),
            tool: tool.to_string(),
            found: locate(tool),
        }
    }

    /// Whether the tool changed since (installed, removed or moved): worth trying again.
    pub(crate) fn tool_changed(&self) -> bool {
        locate(&self.tool) != self.found
    }
}

fn locate(tool: &str) -> Option<String> {
    crate::programs::find(tool).map(|p| p.display().to_string())
}

/// What the requirements step did besides installing: notes for the user, steps skipped for
/// want of a tool, and the steps to try again because their tool appeared since last time.
#[derive(Debug, Default)]
pub(crate) struct Outcome {
    pub notes: Vec<String>,
    pub skipped: Vec<Skip>,
    /// Steps (by [`Skip::step`]) to retry even where a fallback is in place.
    pub retry: Vec<String>,
}

/// The per-app directory's path relative to the state dir (the name made a safe component).
fn app_rel(app: &App) -> String {
    format!("apps/{}", crate::state::component(&app.name.value))
}

fn cache_file(app: &App) -> String {
    format!("{}/staged.json", app_rel(app))
}

/// What staging reads besides the code, whose change makes a restage (the code itself is
/// synced into the staged copy instead, as an edit while watching is): the manifest and what
/// it inherits, the requirements files at the top of the app (the ones a watcher restages
/// for) and this tool's version.
pub(crate) fn staging_key(loaded: &Loaded, app: &App) -> String {
    let mut h = Fnv::new();
    for f in loaded.sources.files() {
        h.field(f.path.display().to_string().as_bytes());
        h.field(f.text.as_bytes());
    }
    for name in crate::watch::REQUIREMENT_FILES {
        h.field(name.as_bytes());
        match crate::fsx::read_capped(&app.path.join(name), true, 16 << 20) {
            Ok(bytes) => h.field(&bytes),
            Err(_) => h.field(b"\0absent"),
        }
    }
    // The runtime the app declares (`runtime:`, runtime.txt, .python-version, `--runtime`):
    // another one stages again. Read from files only, no interpreter run: this is on the
    // start-up path. (The virtualenv is remade at staging when its interpreter changed.)
    let flag = crate::platform::runtime::flags().runtime;
    if let Some(d) = crate::platform::runtime::declared(app, &app.path, flag.as_deref()) {
        h.field(d.text.as_bytes());
        h.field(format!("{:?}", d.version).as_bytes());
    }
    // The Node or Ruby interpreter chosen for that declaration (one installed since: stage
    // again with it).
    if let Some(k) = crate::platform::runtime_bin::staging_key(app) {
        h.field(k.as_bytes());
    }
    h.field(env!("CARGO_PKG_VERSION").as_bytes());
    h.hex()
}

/// The last staging's record, unless what it staged is gone (its virtualenv, its copy).
fn record(app: &App, state: &StateDir) -> Option<CacheRecord> {
    let rec: CacheRecord = state.read_json(&cache_file(app)).ok().flatten()?;
    if requirements::is_python(app) && !requirements::venv_python(state).is_file() {
        return None;
    }
    if let Some(g) = rec.generation
        && !generation_complete(state, app, g)
    {
        return None;
    }
    // A step skipped for want of a tool is not done: once the tool is there, stage again.
    if rec.skipped.iter().any(Skip::tool_changed) {
        return None;
    }
    Some(rec)
}

/// Whether generation `g` of the staged copy is all there (its droplet and upload record).
fn generation_complete(state: &StateDir, app: &App, g: u64) -> bool {
    let dir = crate::platform::layout::generation_dir(state.root(), &app.name.value, g);
    dir.join("staging").join("app").is_dir() && dir.join(droplet::UPLOAD_RECORD).is_file()
}

/// The generation the app last staged into, if it is complete (for `exec --staged`).
pub(crate) fn current_generation(app: &App, state: &StateDir) -> Option<u64> {
    let rec: CacheRecord = state.read_json(&cache_file(app)).ok().flatten()?;
    rec.generation
        .filter(|g| generation_complete(state, app, *g))
}

/// Reminders of the steps the last staging skipped (shown when it is reused).
fn skipped_notes(app: &App, state: &StateDir) -> Vec<String> {
    state
        .read_json::<CacheRecord>(&cache_file(app))
        .ok()
        .flatten()
        .map(|r| r.skipped)
        .unwrap_or_default()
        .iter()
        .map(|s| {
            format!(
                "the last staging skipped {} ({} was not found); it runs once {} is installed",
                s.step, s.tool, s.tool
            )
        })
        .collect()
}

/// Stage or reuse: reuse when the last staging read the same manifest and requirements, in
/// the same place, and what it made is still there.
pub(crate) fn decide(
    loaded: &Loaded,
    app: &App,
    state: &StateDir,
    restage: bool,
    in_place: bool,
) -> Decision {
    let rec = record(app, state);
    if !restage
        && let Some(r) = &rec
        && r.hash == staging_key(loaded, app)
        && r.generation.is_some() != in_place
    {
        return Decision::Reuse {
            generation: r.generation,
        };
    }
    if in_place {
        return Decision::Build { generation: None };
    }
    // The next generation: above the recorded one and any directory left over.
    let recorded = state
        .read_json::<CacheRecord>(&cache_file(app))
        .ok()
        .flatten()
        .and_then(|r| r.generation)
        .unwrap_or(0);
    let leftover = droplet::generations(state.root(), &app.name.value)
        .into_iter()
        .max()
        .unwrap_or(0);
    Decision::Build {
        generation: Some(recorded.max(leftover) + 1),
    }
}

/// Forget the cache (after a failed staging, or to force the next one).
pub(crate) fn forget(app: &App, state: &StateDir) {
    let _ = std::fs::remove_file(state.path(cache_file(app)));
}

impl Stager<'_> {
    /// Stage the app as `decision` says (nothing to do for [`Decision::Reuse`]).
    pub(crate) fn stage(&self, decision: Decision) -> Result<Staged, StageError> {
        let app = self.app;
        let key = staging_key(self.loaded, app);
        let generation = match decision {
            Decision::Reuse { .. } => {
                return Ok(Staged {
                    cached: true,
                    notes: skipped_notes(app, self.state),
                });
            }
            Decision::Build { generation } => generation,
        };
        // Steps the last staging skipped whose tool has appeared since: tried again.
        let previous: Option<CacheRecord> = self.state.read_json(&cache_file(app)).ok().flatten();
        let retry: Vec<String> = previous
            .as_ref()
            .map(|r| r.skipped.clone())
            .unwrap_or_default()
            .into_iter()
            .filter(Skip::tool_changed)
            .map(|s| s.step)
            .collect();
        let _lock = self
            .state
            .lock("staging")
            .map_err(|e| StageError::Io(e.to_string()))?;
        if generation.is_none() {
            // In place: the record stays valid only once this staging succeeds.
            forget(app, self.state);
        }
        let copy = match generation {
            Some(g) => Some(droplet::build(self, g)?),
            None => None,
        };
        let mut outcome = Outcome {
            retry,
            ..Outcome::default()
        };
        // The platform's per-app PHP ini dir, where hooks drop `*.ini` files (see
        // [`crate::platform::layout::PHP_INI_DIR`]); the instances get a copy.
        // Private like the rest of the state dir, made without following links.
        if let Some(r) = self.env.get("STACKATO_APP_ROOT") {
            let _ = crate::state::create_private_dir_in(
                self.state.root(),
                &std::path::Path::new(r).join(crate::platform::layout::PHP_INI_DIR),
            );
        }
        self.hooks("pre-staging", &app.hooks.pre_staging)?;
        // A buildpack app is built by its buildpack instead of the language installers.
        let built = buildpack::applies(app, self.buildpack.as_deref())
            && self.buildpack(self.buildpack.as_deref(), decision.place(), &mut outcome)?;
        if !built {
            buildpack::forget(self.state, &app.name.value, decision.place());
            requirements::install(self, &mut outcome)?;
        }
        self.hooks("post-staging", &app.hooks.post_staging)?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if let Err(e) = self.state.dir(app_rel(app)) {
            return Err(StageError::Io(e.to_string()));
        }
        if let (Some(g), Some(rec)) = (generation, &copy) {
            droplet::seal(self.state, app, g, rec).map_err(|e| StageError::Io(e.to_string()))?;
        }
        // Writing the record switches the app to the new generation (an atomic rename).
        self.state
            .write_json(
                &cache_file(app),
                &CacheRecord {
                    hash: key.clone(),
                    staged_at: now,
                    generation,
                    skipped: outcome.skipped,
                },
            )
            .map_err(|e| StageError::Io(e.to_string()))?;
        if let Some(g) = generation {
            droplet::switched(self.state, app, g);
        }
        Ok(Staged {
            cached: false,
            notes: outcome.notes,
        })
    }

    /// Run one hook list: each entry through the shell, in the app dir, stopping at the first
    /// failure unless the entry starts with `-`.
    pub(crate) fn hooks(&self, stage: &'static str, hooks: &[Hook]) -> Result<(), StageError> {
        for (i, h) in hooks.iter().enumerate() {
            self.out
                .line(&self.prefix, &format!("-----> {}", h.command));
            let mut cmd = std::process::Command::new(run::shell());
            cmd.arg("-c").arg(&h.command);
            let done = self.run(cmd);
            if !done.ended.ok() {
                if h.ignore_failure {
                    self.out.line(
                        &self.prefix,
                        &format!(
                            "       ({} {}; ignored because it starts with `-`)",
                            stage,
                            describe(&done.ended)
                        ),
                    );
                    continue;
                }
                return Err(StageError::Hook {
                    stage,
                    index: i,
                    command: h.command.clone(),
                    ended: done.ended,
                    tail: done.tail,
                    span: h.span,
                });
            }
        }
        Ok(())
    }

    /// Run a staging command in the app dir with the staging environment.
    pub(crate) fn run(&self, cmd: std::process::Command) -> Finished {
        run::run(
            cmd,
            &self.home,
            self.env,
            self.host,
            self.out,
            &self.prefix,
            run::Until {
                limit: self.limit,
                stop: &self.stop,
            },
        )
    }

    pub(crate) fn venv(&self) -> PathBuf {
        requirements::venv_dir(self.state)
    }
}
