//! Staging, in the platform's order: pre-staging hooks → requirements (OS packages checked,
//! Python modules into the project's virtualenv, npm, cpanm, uWSGI when the web command needs
//! it) → post-staging hooks. Cached on a hash of the files that would be pushed plus the
//! manifest, so running twice in a row skips it; `--restage` forces it. A step skipped because
//! its tool is missing is recorded as skipped, not done: once the tool is there, the next run
//! stages again.

pub mod glob;
pub mod ignores;
pub mod requirements;
pub mod run;

use crate::fnv::Fnv;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::diag::Span;
use crate::env::set::EnvSet;
use crate::manifest::model::Hook;
use crate::manifest::{App, Loaded};
use crate::output::{Output, Prefix};
use crate::stage::run::{Ended, Finished};
use crate::state::StateDir;

/// A staging failure.
#[derive(Debug)]
pub enum StageError {
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
pub fn describe(e: &Ended) -> String {
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
pub struct Staged {
    /// Nothing changed since the last staging: skipped.
    pub cached: bool,
    pub hash: String,
    pub notes: Vec<String>,
}

/// Everything staging needs.
pub struct Stager<'a> {
    pub loaded: &'a Loaded,
    pub app: &'a App,
    pub state: &'a StateDir,
    /// The staging environment.
    pub env: &'a EnvSet,
    /// How much of the host environment hooks and installers get besides `env`.
    pub host: crate::env::host::Host,
    pub out: &'a Arc<Output>,
    /// The prefix for staging output (`staging`, or `<app>:staging` with several apps).
    pub prefix: Prefix,
    /// Time limit of one hook or installer.
    pub limit: Duration,
    /// Run it even when the cache says nothing changed.
    pub restage: bool,
    /// Trust the last staging's record without hashing the files now: the caller checks
    /// the hash in the background (so the app starts sooner) and restages if it differs.
    pub optimistic: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct CacheRecord {
    hash: String,
    staged_at: u64,
    /// The manifest's own fingerprint, checked before an optimistic start (records written
    /// before it existed never allow one).
    #[serde(default)]
    manifest: Option<String>,
    /// Steps skipped because their tool was missing (retried once the tool is there).
    #[serde(default)]
    skipped: Vec<Skip>,
}

/// A staging step that did not run (or fell back) because a tool was missing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skip {
    /// What was not done, for messages (`npm install`).
    pub step: String,
    /// The program it needs (`npm`), looked up on the tool's search path.
    pub tool: String,
    /// Where the tool was found when the step was skipped (`None`: nowhere).
    pub found: Option<String>,
}

impl Skip {
    /// A skip of `step` for want of `tool`, noting where `tool` is now.
    pub fn new(step: &str, tool: &str) -> Skip {
        Skip {
            step: step.to_string(),
            tool: tool.to_string(),
            found: locate(tool),
        }
    }

    /// Whether the tool changed since (installed, removed or moved): worth trying again.
    pub fn tool_changed(&self) -> bool {
        locate(&self.tool) != self.found
    }
}

fn locate(tool: &str) -> Option<String> {
    crate::services::backend::which(tool).map(|p| p.display().to_string())
}

/// What the requirements step did besides installing: notes for the user, steps skipped for
/// want of a tool, and the steps to try again because their tool appeared since last time.
#[derive(Debug, Default)]
pub struct Outcome {
    pub notes: Vec<String>,
    pub skipped: Vec<Skip>,
    /// Steps (by [`Skip::step`]) to retry even where a fallback is in place.
    pub retry: Vec<String>,
}

fn cache_file(app: &App) -> String {
    format!("apps/{}/staged.json", app.name.value)
}

/// The hash of what would be pushed: every file not ignored (path, size, mtime), the
/// manifest and what it inherits, and the profile-independent staging inputs.
pub fn push_hash(loaded: &Loaded, app: &App) -> String {
    HashInput::of(loaded, app).hash()
}

/// What the push hash is computed from, owned, so it can be checked on another thread.
#[derive(Debug, Clone)]
pub struct HashInput {
    pub app: String,
    pub path: PathBuf,
    pub ignores: Option<Vec<String>>,
    /// The manifest's files: path and text.
    pub sources: Vec<(PathBuf, String)>,
}

impl HashInput {
    pub fn of(loaded: &Loaded, app: &App) -> HashInput {
        HashInput {
            app: app.name.value.clone(),
            path: app.path.clone(),
            ignores: app.ignores.clone(),
            sources: loaded
                .sources
                .files()
                .iter()
                .map(|f| (f.path.clone(), f.text.clone()))
                .collect(),
        }
    }

    pub fn hash(&self) -> String {
        push_hash_of(&self.path, self.ignores.as_deref(), &self.sources)
    }
}

fn push_hash_of(
    path: &std::path::Path,
    ign: Option<&[String]>,
    sources: &[(PathBuf, String)],
) -> String {
    let ig = ignores::Ignores::new(ign);
    let files = ignores::walk(path, &ig);
    let mut h = Fnv::new();
    for f in &files {
        h.field(f.rel.as_bytes());
        h.field(&f.size.to_le_bytes());
        h.field(&f.mtime.to_le_bytes());
    }
    for (p, text) in sources {
        h.field(p.display().to_string().as_bytes());
        h.field(text.as_bytes());
    }
    h.field(env!("CARGO_PKG_VERSION").as_bytes());
    format!("{}-{}", h.hex(), files.len())
}

/// A fingerprint of the manifest and what it inherits alone (cheap: no file walk).
fn manifest_hash(loaded: &Loaded) -> String {
    let mut h = Fnv::new();
    for f in loaded.sources.files() {
        h.field(f.path.display().to_string().as_bytes());
        h.field(f.text.as_bytes());
    }
    h.hex()
}

/// The hash recorded by the last staging, when there is one, the manifest is the one it
/// staged and its virtualenv is still there, without checking the app's files.
pub fn recorded_hash(loaded: &Loaded, app: &App, state: &StateDir) -> Option<String> {
    let rec = record(app, state)?;
    (rec.manifest? == manifest_hash(loaded)).then_some(rec.hash)
}

/// The last staging's record, unless what it staged is gone (its virtualenv).
fn record(app: &App, state: &StateDir) -> Option<CacheRecord> {
    let rec: CacheRecord = state.read_json(&cache_file(app)).ok().flatten()?;
    if requirements::is_python(app) && !requirements::venv_python(state).is_file() {
        return None;
    }
    // A step skipped for want of a tool is not done: once the tool is there, stage again.
    if rec.skipped.iter().any(Skip::tool_changed) {
        return None;
    }
    Some(rec)
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

/// The hash of what would be pushed when it matches the last staging (nothing to do).
pub fn cached_hash(loaded: &Loaded, app: &App, state: &StateDir) -> Option<String> {
    let rec = record(app, state)?;
    let hash = push_hash(loaded, app);
    (rec.hash == hash).then_some(hash)
}

/// The state of the cache, without staging.
pub fn is_cached(loaded: &Loaded, app: &App, state: &StateDir) -> bool {
    cached_hash(loaded, app, state).is_some()
}

/// Forget the cache (after a failed staging, or to force the next one).
pub fn forget(app: &App, state: &StateDir) {
    let _ = std::fs::remove_file(state.path(cache_file(app)));
}

impl Stager<'_> {
    /// Stage the app, or skip it when nothing changed.
    pub fn stage(&self) -> Result<Staged, StageError> {
        let app = self.app;
        // Optimistic: the record alone (the caller checks the files later); else the files.
        if !self.restage
            && let Some(hash) = self
                .optimistic
                .then(|| recorded_hash(self.loaded, app, self.state))
                .flatten()
                .or_else(|| cached_hash(self.loaded, app, self.state))
        {
            return Ok(Staged {
                cached: true,
                hash,
                notes: skipped_notes(app, self.state),
            });
        }
        // Steps the last staging skipped whose tool has appeared since: tried again.
        let retry: Vec<String> = self
            .state
            .read_json::<CacheRecord>(&cache_file(app))
            .ok()
            .flatten()
            .map(|r| r.skipped)
            .unwrap_or_default()
            .into_iter()
            .filter(Skip::tool_changed)
            .map(|s| s.step)
            .collect();
        forget(app, self.state);
        let _lock = self
            .state
            .lock("staging")
            .map_err(|e| StageError::Io(e.to_string()))?;
        let mut outcome = Outcome {
            retry,
            ..Outcome::default()
        };
        self.hooks("pre-staging", &app.hooks.pre_staging)?;
        requirements::install(self, &mut outcome)?;
        self.hooks("post-staging", &app.hooks.post_staging)?;
        // The hash after staging: hooks may have written files (collectstatic).
        let hash = push_hash(self.loaded, app);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        if let Err(e) = self.state.dir(format!("apps/{}", app.name.value)) {
            return Err(StageError::Io(e.to_string()));
        }
        self.state
            .write_json(
                &cache_file(app),
                &CacheRecord {
                    hash: hash.clone(),
                    staged_at: now,
                    manifest: Some(manifest_hash(self.loaded)),
                    skipped: outcome.skipped,
                },
            )
            .map_err(|e| StageError::Io(e.to_string()))?;
        Ok(Staged {
            cached: false,
            hash,
            notes: outcome.notes,
        })
    }

    /// Run one hook list: each entry through the shell, in the app dir, stopping at the first
    /// failure unless the entry starts with `-`.
    pub fn hooks(&self, stage: &'static str, hooks: &[Hook]) -> Result<(), StageError> {
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
    pub fn run(&self, cmd: std::process::Command) -> Finished {
        run::run(
            cmd,
            &self.app.path,
            self.env,
            self.host,
            self.out,
            &self.prefix,
            self.limit,
        )
    }

    pub fn venv(&self) -> PathBuf {
        requirements::venv_dir(self.state)
    }
}
