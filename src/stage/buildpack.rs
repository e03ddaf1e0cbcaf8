//! Heroku-style buildpacks (Stackato 3.x) at staging: which buildpack stages an app (`run
//! --buildpack DIR`, the manifest's `buildpack:` git URL cloned once into the user's cache or a
//! directory inside the project, else the user's installed buildpacks tried in order with
//! `detect`), and the protocol: `bin/detect BUILD_DIR`, `bin/compile BUILD_DIR CACHE_DIR
//! ENV_DIR` (a cache kept per app and buildpack), `bin/release BUILD_DIR`, whose default web
//! process and config vars are recorded beside the staged copy for the processes.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};

use crate::fnv::Fnv;
use crate::manifest::App;
use crate::model::Layer;
use crate::platform::layout::Place;
use crate::stage::{Outcome, StageError, Stager};
use crate::state::StateDir;

/// The buildpack an app asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Requested {
    /// A directory: `--buildpack DIR`, or a `buildpack:` path inside the project.
    Dir(PathBuf),
    /// A git URL (`#branch` split off), cloned once into the user's cache.
    Url { url: String, branch: Option<String> },
}

impl Requested {
    /// What identifies it in the release record (a different one stages again).
    pub(crate) fn identity(&self) -> String {
        match self {
            Requested::Dir(d) => format!("dir:{}", d.display()),
            Requested::Url { url, branch } => {
                format!("url:{url}#{}", branch.as_deref().unwrap_or(""))
            }
        }
    }
}

/// The scripts of a buildpack that run (recorded by the trust record for one in the project).
pub(crate) const BIN_SCRIPTS: &[&str] = &["detect", "compile", "release"];

/// Whether a `buildpack:` value is a git URL (else it is a path).
pub(crate) fn is_url(v: &str) -> bool {
    v.contains("://") || v.starts_with("git@")
}

/// The manifest's buildpack: `buildpack:`, or on 2.x `framework: buildpack` with `env:
/// BUILDPACK_URL`.
pub(crate) fn manifest_value(app: &App) -> Option<String> {
    if let Some(b) = app.buildpack.as_ref().filter(|b| !b.trim().is_empty()) {
        return Some(b.trim().to_string());
    }
    if app.framework_name() == Some("buildpack") {
        return app
            .env
            .iter()
            .find(|e| e.name.value == "BUILDPACK_URL")
            .and_then(|e| e.default.as_ref().map(|d| d.value.trim().to_string()))
            .filter(|v| !v.is_empty());
    }
    None
}

/// A `buildpack:` path resolved against the app directory (it must stay in the project: one
/// outside it is given with `--buildpack`).
pub(crate) fn manifest_dir(app: &App, value: &str) -> PathBuf {
    crate::trust::files::resolve(&app.path, value)
}

/// The buildpack requested for `app`: `--buildpack DIR` first, then the manifest's.
pub(crate) fn requested(app: &App, flag: Option<&Path>) -> Option<Requested> {
    if let Some(d) = flag {
        return Some(Requested::Dir(d.to_path_buf()));
    }
    let v = manifest_value(app)?;
    if is_url(&v) {
        let (url, branch) = match v.rsplit_once('#') {
            Some((u, b)) if !b.is_empty() => (u.to_string(), Some(b.to_string())),
            _ => (v.trim_end_matches('#').to_string(), None),
        };
        Some(Requested::Url { url, branch })
    } else {
        Some(Requested::Dir(manifest_dir(app, &v)))
    }
}

/// The user's installed buildpacks: `$XDG_DATA_HOME/stackato-local/buildpacks/*` (else
/// `~/.local/share/…`), tried in name order when an app asks for none.
pub(crate) fn installed_dir() -> Option<PathBuf> {
    crate::trust::store::data_home().map(|d| d.join("stackato-local").join("buildpacks"))
}

fn installed() -> Vec<PathBuf> {
    let Some(dir) = installed_dir() else {
        return Vec::new();
    };
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.join("bin").join("detect").is_file())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Whether staging uses a buildpack for `app`: one is requested, or the app is a 3.x app (no
/// `framework:`) or a 2.x `framework: buildpack` app and the user has installed buildpacks to
/// try.
pub(crate) fn applies(app: &App, flag: Option<&Path>) -> bool {
    requested(app, flag).is_some()
        || ((!app.is_legacy() || app.framework_name() == Some("buildpack"))
            && !installed().is_empty())
}

/// The names of the user's installed buildpacks, in the order they are tried.
fn installed_names() -> String {
    let names: Vec<String> = installed()
        .iter()
        .filter_map(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .collect();
    if names.is_empty() {
        "none is installed".into()
    } else {
        format!("tried: {}", names.join(", "))
    }
}

/// Whether `app` can only be built by a buildpack: `framework: buildpack` (or a Go app, or 2.x
/// `env: BUILDPACK_URL`) with no web command of its own.
pub(crate) fn needs_one(app: &App) -> bool {
    app.framework_name() == Some("buildpack")
        && app.web == crate::manifest::model::Web::Default
        && app.command.is_none()
}

/// Why a buildpack app (`framework: buildpack`, or a Go app) cannot be built here, and how to
/// give it a buildpack: what `run` says when none was given and none installed matched.
pub(crate) fn missing(app: &App) -> (String, String) {
    let why = match (&app.declared_framework(), &app.detected) {
        (None, Some(d)) => format!("detected: {}", d.why),
        _ => "framework: buildpack".into(),
    };
    let dir = installed_dir().map_or_else(
        || "$XDG_DATA_HOME/stackato-local/buildpacks/".into(),
        |d| format!("{}/", d.display()),
    );
    (
        format!(
            "Application \"{}\" is a buildpack app ({why}) and has no buildpack: none is named \
             (`buildpack:`, `env: BUILDPACK_URL`, `run --buildpack DIR`), and no local buildpack \
             in {dir} detects it ({})",
            app.name.value,
            installed_names()
        ),
        format!(
            "give one with `run --buildpack DIR`, or in the manifest with `buildpack: <git URL or \
             directory>` (2.x: `env: BUILDPACK_URL`), or install one into {dir} \
             ($XDG_DATA_HOME/stackato-local/buildpacks/<name>, with bin/detect, bin/compile, \
             bin/release)"
        ),
    )
}

/// Why `app` has no buildpack to stage with, found before staging (nothing of it runs): a
/// `buildpack:` (or 2.x `BUILDPACK_URL`) directory that is not a buildpack inside the
/// project, or an app that needs one (see [`needs_one`]) with none named and none installed.
/// The message, where it is written (the key's line), and how to fix it. A git URL is
/// checked by cloning it, and installed buildpacks by their detect, at staging.
pub(crate) fn unavailable(
    app: &App,
    flag: Option<&Path>,
    project: &Path,
) -> Option<(String, crate::diag::Span, String)> {
    if flag.is_some() {
        return None;
    }
    if let Some(v) = manifest_value(app) {
        if is_url(&v) {
            return None;
        }
        let (key, span) = match (&app.buildpack, app.buildpack_span) {
            (Some(b), Some(span)) if !b.trim().is_empty() => ("buildpack:".to_string(), span),
            _ => (
                "env: BUILDPACK_URL".to_string(),
                app.env
                    .iter()
                    .find(|e| e.name.value == "BUILDPACK_URL")
                    .map_or(app.name.span, |e| e.name.span),
            ),
        };
        let dir = manifest_dir(app, &v);
        let root = project
            .canonicalize()
            .unwrap_or_else(|_| project.to_path_buf());
        let why = match dir.canonicalize() {
            Err(_) => "no such directory".to_string(),
            Ok(c) if !c.starts_with(&root) => "it is outside the project".to_string(),
            Ok(c) if !c.join("bin").join("compile").is_file() => {
                "it has no bin/compile".to_string()
            }
            Ok(_) => return None,
        };
        return Some((
            format!(
                "{key} {v} names no buildpack here ({why}): it is not a git URL nor a buildpack \
                 directory inside the project; the local buildpacks are not tried when one is \
                 named"
            ),
            span,
            "give the buildpack with `run --buildpack DIR` (a directory with bin/detect, \
             bin/compile, bin/release), or name a git URL or a directory inside the project"
                .into(),
        ));
    }
    if !needs_one(app) || !installed().is_empty() {
        return None;
    }
    let (what, hint) = missing(app);
    let span = app
        .framework
        .as_ref()
        .and_then(|f| f.name_span)
        .unwrap_or(app.name.span);
    Some((what, span, hint))
}

/// What `doctor` says of the buildpack `app` stages with (`None`: no buildpack is involved):
/// `Ok(where it comes from)`, or `Err((why there is none, how to give one))` as `run` would
/// stop (see [`unavailable`]).
pub(crate) fn availability(app: &App, project: &Path) -> Option<Result<String, (String, String)>> {
    if let Some((what, _, hint)) = unavailable(app, None, project) {
        return Some(Err((what, hint)));
    }
    match requested(app, None) {
        Some(Requested::Dir(d)) => {
            Some(Ok(format!("{} (a directory of the project)", d.display())))
        }
        Some(Requested::Url { url, branch }) => {
            let cached = cache_root()
                .ok()
                .map(|c| {
                    c.join("buildpacks")
                        .join(key(&format!("{url}#{}", branch.as_deref().unwrap_or(""))))
                })
                .filter(|d| d.join("bin").is_dir());
            Some(Ok(match cached {
                Some(d) => format!("{url} (cloned before, in {})", d.display()),
                None => format!(
                    "{url} (cloned into the user's cache at the first staging: needs the network once; offline, `run --buildpack DIR`)"
                ),
            }))
        }
        None if needs_one(app) => Some(Ok(format!(
            "one of the installed buildpacks in {}, chosen by their bin/detect at staging ({})",
            installed_dir()
                .map(|d| d.display().to_string())
                .unwrap_or_default(),
            installed_names()
        ))),
        None => None,
    }
}

/// What `bin/release` said, recorded beside the staged copy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Release {
    /// The buildpack used (its directory) and what `bin/detect` named it.
    pub buildpack: String,
    pub name: String,
    /// [`Requested::identity`] of the request (`None`: found by detect among the installed).
    pub requested: Option<String>,
    /// `default_process_types: web:`.
    pub web: Option<String>,
    /// `config_vars:`, in order (lowest precedence in the environment).
    pub config_vars: Vec<(String, String)>,
}

/// Where the release of an app staged at `place` is recorded (relative to the state dir).
fn release_rel(state: &StateDir, app: &str, place: Place) -> PathBuf {
    match place {
        Place::Staged { generation } => {
            crate::platform::layout::generation_dir(state.root(), app, generation)
                .join("release.json")
        }
        Place::Checkout => crate::platform::layout::app_dir(state.root(), app).join("release.json"),
    }
}

fn rel_str(state: &StateDir, p: &Path) -> String {
    p.strip_prefix(state.root())
        .unwrap_or(p)
        .display()
        .to_string()
}

/// The release recorded for `app` staged at `place` (`None`: not staged with a buildpack).
pub(crate) fn release(state: &StateDir, app: &str, place: Place) -> Option<Release> {
    let p = release_rel(state, app, place);
    state.read_json(&rel_str(state, &p)).ok().flatten()
}

/// The web command of the last release `run` recorded for `app` (its newest generation, else
/// the checkout's), found in the state directory of the nearest project holding `app.path`;
/// only a state directory this machine created is read. For `export` when the app names no
/// web command (the release's default, as `run` used it).
pub(crate) fn last_release_web(app: &App) -> Option<String> {
    let project = app
        .path
        .ancestors()
        .find(|d| d.join(crate::state::DIR_NAME).is_dir())?;
    if StateDir::foreign(project).is_some() {
        return None;
    }
    let state = StateDir::at(project);
    let dir = crate::platform::layout::app_dir(state.root(), &app.name.value);
    let newest = std::fs::read_dir(&dir)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|e| {
            e.file_name()
                .to_str()?
                .strip_prefix('g')?
                .parse::<u64>()
                .ok()
        })
        .filter(|g| {
            crate::platform::layout::generation_dir(state.root(), &app.name.value, *g)
                .join("release.json")
                .is_file()
        })
        .max();
    let place = newest.map_or(Place::Checkout, |generation| Place::Staged { generation });
    release(&state, &app.name.value, place)?.web
}

/// Whether the staging at `place` used another buildpack than the one requested now (then it
/// is staged again).
pub(crate) fn changed(state: &StateDir, app: &App, flag: Option<&Path>, place: Place) -> bool {
    let now = requested(app, flag).map(|r| r.identity());
    match release(state, &app.name.value, place) {
        Some(r) => r.requested != now,
        None => now.is_some(),
    }
}

/// Whether the upload of `app` changed since generation `place` was staged with a buildpack:
/// what compile built from it (a binary) is stale then, so the app is staged again rather than
/// the edit synced into the copy. Always `false` for a staging without a buildpack or in place.
pub(crate) fn upload_changed(
    state: &StateDir,
    app: &App,
    place: Place,
    copy_unsafe_links: bool,
) -> bool {
    let Place::Staged { generation } = place else {
        return false;
    };
    if release(state, &app.name.value, place).is_none() {
        return false;
    }
    match crate::stage::droplet::Copies::open(state, app, generation, Vec::new(), copy_unsafe_links)
    {
        Some(c) => c.diff().map_or(true, |d| !d.is_empty()),
        None => true,
    }
}

/// The directories of the apps whose last staging used a buildpack (in a staged copy): any
/// edit there restages them (compile runs again, with its cache) instead of a plain restart.
pub(crate) fn rebuilt_on_edit(loaded: &crate::manifest::Loaded, state: &StateDir) -> Vec<PathBuf> {
    loaded
        .manifest
        .apps
        .iter()
        .filter(|app| {
            crate::stage::current_generation(app, state).is_some_and(|generation| {
                release(state, &app.name.value, Place::Staged { generation }).is_some()
            })
        })
        .map(|app| app.path.canonicalize().unwrap_or_else(|_| app.path.clone()))
        .collect()
}

/// The user's cache for buildpacks: `$XDG_CACHE_HOME/stackato-local/…`.
fn cache_root() -> Result<PathBuf, StageError> {
    crate::stage::requirements::user_cache()
        .map(|c| c.join("stackato-local"))
        .ok_or_else(|| {
            StageError::Io(
                "cannot find a cache directory for buildpacks: set HOME or XDG_CACHE_HOME".into(),
            )
        })
}

/// A file-name-safe key: the text's last path component and its hash.
fn key(text: &str) -> String {
    let mut h = Fnv::new();
    h.field(text.as_bytes());
    let tail: String = text
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or("")
        .trim_end_matches(".git")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .take(40)
        .collect();
    format!("{}-{}", tail.trim_start_matches('.'), &h.hex())
}

fn io(what: &str, p: &Path, e: std::io::Error) -> StageError {
    StageError::Io(format!("{what} {}: {e}", p.display()))
}

impl Stager<'_> {
    /// Run a program with `args` in the app dir, its stdout into `to` (stderr streamed).
    fn run_to_file(
        &self,
        program: &Path,
        args: &[&Path],
        to: &Path,
    ) -> crate::stage::run::Finished {
        let mut cmd = Command::new(crate::stage::run::shell());
        cmd.arg("-c")
            .arg("out=$1; shift; exec \"$@\" > \"$out\"")
            .arg("sh");
        cmd.arg(to).arg(program).args(args);
        self.run(cmd)
    }

    /// The clone of `url` in the user's cache, made on first use.
    fn clone_url(&self, url: &str, branch: Option<&str>) -> Result<PathBuf, StageError> {
        let root = cache_root()?.join("buildpacks");
        let dest = root.join(key(&format!("{url}#{}", branch.unwrap_or(""))));
        if dest.join("bin").is_dir() {
            self.out.line(
                &self.prefix,
                &format!(
                    "-----> Buildpack {url} (cloned before, in {})",
                    dest.display()
                ),
            );
            return Ok(dest);
        }
        std::fs::create_dir_all(&root).map_err(|e| io("cannot create", &root, e))?;
        let tmp = root.join(format!(
            ".{}.tmp{}",
            dest.file_name().and_then(|n| n.to_str()).unwrap_or("bp"),
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&tmp);
        self.out
            .line(&self.prefix, &format!("-----> Cloning buildpack {url}"));
        let mut cmd = Command::new("git");
        cmd.args(["clone", "--depth", "1", "--quiet"]);
        if let Some(b) = branch {
            cmd.args(["--branch", b]);
        }
        cmd.arg("--").arg(url).arg(&tmp);
        // git reads the user's settings (proxies, credentials helpers), never the app's.
        if let Some(h) = crate::stage::requirements::user_home() {
            cmd.env("HOME", h);
        }
        cmd.env("GIT_TERMINAL_PROMPT", "0");
        // The URL comes from the repository: only plain transports (never `ext::`).
        cmd.env("GIT_ALLOW_PROTOCOL", "https:http:git:ssh:file");
        let done = self.run(cmd);
        if !done.ended.ok() {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(StageError::Requirement {
                what: format!("git clone of the buildpack {url}"),
                ended: done.ended,
                tail: done.tail,
                hint: format!(
                    "the buildpack is cloned once and kept in {}; without the network, clone it yourself when you can and run with `--buildpack DIR`",
                    root.display()
                ),
            });
        }
        if std::fs::rename(&tmp, &dest).is_err() {
            // Another run cloned it meanwhile.
            let _ = std::fs::remove_dir_all(&tmp);
        }
        Ok(dest)
    }

    /// `bin/detect BUILD_DIR`: the name it prints, or `None` when it declines.
    fn detect(&self, bp: &Path, scratch: &Path) -> Result<Option<String>, StageError> {
        let out = scratch.join("detect.out");
        let done = self.run_to_file(&bp.join("bin").join("detect"), &[&self.home], &out);
        let name = std::fs::read_to_string(&out).unwrap_or_default();
        let name = name.lines().next().unwrap_or("").trim().to_string();
        match done.ended {
            crate::stage::run::Ended::Exit(0) => Ok(Some(if name.is_empty() {
                bp.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            } else {
                name
            })),
            crate::stage::run::Ended::Exit(_) => Ok(None),
            ended => Err(StageError::Requirement {
                what: format!("{}/bin/detect", bp.display()),
                ended,
                tail: done.tail,
                hint: "fix the buildpack's detect script".into(),
            }),
        }
    }

    /// The buildpack to use and its detected name (`None`: none of the installed buildpacks
    /// detected the app).
    fn choose(
        &self,
        flag: Option<&Path>,
        scratch: &Path,
    ) -> Result<Option<(PathBuf, String)>, StageError> {
        let app = self.app;
        match requested(app, flag) {
            Some(req) => {
                let dir = match &req {
                    Requested::Dir(d) => {
                        if flag.is_none() {
                            let root = crate::trust::record::root_of(self.loaded);
                            let inside = d.canonicalize().is_ok_and(|c| c.starts_with(&root));
                            if !inside {
                                return Err(StageError::Io(format!(
                                    "buildpack: {} is not a git URL nor a directory inside the project; give a buildpack elsewhere with `run --buildpack DIR`",
                                    d.display()
                                )));
                            }
                        }
                        d.clone()
                    }
                    Requested::Url { url, branch } => self.clone_url(url, branch.as_deref())?,
                };
                if !dir.join("bin").join("compile").is_file() {
                    return Err(StageError::Io(format!(
                        "{} is not a buildpack: it has no bin/compile",
                        dir.display()
                    )));
                }
                // An explicit buildpack is used even when its detect declines, as the
                // platform did; detect still names it.
                let name = if dir.join("bin").join("detect").is_file() {
                    self.detect(&dir, scratch)?
                } else {
                    None
                };
                let name = name.unwrap_or_else(|| {
                    self.out.line(
                        &self.prefix,
                        "       (its bin/detect does not recognise the app; used anyway, as it was asked for)",
                    );
                    dir.display().to_string()
                });
                Ok(Some((dir, name)))
            }
            None => {
                let all = installed();
                for bp in &all {
                    if let Some(name) = self.detect(bp, scratch)? {
                        self.out.line(
                            &self.prefix,
                            &format!("-----> {name} app detected by {}", bp.display()),
                        );
                        return Ok(Some((bp.clone(), name)));
                    }
                }
                if needs_one(app) {
                    let (what, hint) = missing(app);
                    return Err(StageError::Io(format!("{what}\n  help: {hint}")));
                }
                let msg = format!(
                    "none of the installed buildpacks in {} detected the app (tried: {}); staged with the built-in installers (name a buildpack with `buildpack:` or `run --buildpack DIR`)",
                    installed_dir()
                        .map(|d| d.display().to_string())
                        .unwrap_or_default(),
                    all.iter()
                        .filter_map(|p| p.file_name())
                        .map(|n| n.to_string_lossy().into_owned())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                self.out.line(&self.prefix, &format!("-----> {msg}"));
                Ok(None)
            }
        }
    }

    /// The buildpack cache of this app and buildpack, kept between stagings.
    fn cache_dir(&self, buildpack: &Path) -> Result<PathBuf, StageError> {
        let project = crate::trust::record::root_of(self.loaded);
        let d = cache_root()?
            .join("buildpack-cache")
            .join(key(&project.display().to_string()))
            .join(crate::state::component(&self.app.name.value))
            .join(key(&buildpack.display().to_string()));
        std::fs::create_dir_all(&d).map_err(|e| io("cannot create", &d, e))?;
        Ok(d)
    }

    /// ENV_DIR: one file per variable the user set (manifest, `.env`, answers, `--env`).
    fn env_dir(&self, scratch: &Path) -> Result<PathBuf, StageError> {
        let d = scratch.join("env");
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).map_err(|e| io("cannot create", &d, e))?;
        for v in self.env.vars() {
            let user = matches!(
                v.layer,
                Layer::Manifest | Layer::Answer | Layer::DotEnv(_) | Layer::Cli
            );
            let safe = !v.name.is_empty()
                && v.name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_');
            if user && safe {
                let p = d.join(&v.name);
                std::fs::write(&p, &v.value).map_err(|e| io("cannot write", &p, e))?;
            }
        }
        Ok(d)
    }

    /// Stage with a buildpack: detect, compile, release; the release recorded for `place`.
    /// `false`: no buildpack was asked for and none of the installed ones detected the app
    /// (the built-in installers stage it instead).
    pub(crate) fn buildpack(
        &self,
        flag: Option<&Path>,
        place: Place,
        outcome: &mut Outcome,
    ) -> Result<bool, StageError> {
        let scratch = self
            .state
            .dir(format!(
                "apps/{}/buildpack",
                crate::state::component(&self.app.name.value)
            ))
            .map_err(|e| StageError::Io(e.to_string()))?;
        forget(self.state, &self.app.name.value, place);
        let Some((dir, name)) = self.choose(flag, &scratch)? else {
            return Ok(false);
        };
        self.out.line(
            &self.prefix,
            &format!("-----> Buildpack {name} ({})", dir.display()),
        );
        let cache = self.cache_dir(&dir)?;
        let env_dir = self.env_dir(&scratch)?;
        let compile = dir.join("bin").join("compile");
        let mut cmd = Command::new(&compile);
        cmd.arg(&self.home).arg(&cache).arg(&env_dir);
        let done = self.run(cmd);
        let _ = std::fs::remove_dir_all(&env_dir);
        if !done.ended.ok() {
            return Err(StageError::Requirement {
                what: format!("{}/bin/compile", dir.display()),
                ended: done.ended,
                tail: done.tail,
                hint: format!(
                    "the buildpack {name} could not build the app; its cache is {}",
                    cache.display()
                ),
            });
        }
        let mut rel = Release {
            buildpack: dir.display().to_string(),
            name: name.clone(),
            requested: requested(self.app, flag).map(|r| r.identity()),
            ..Release::default()
        };
        let release_bin = dir.join("bin").join("release");
        if release_bin.is_file() {
            let out = scratch.join("release.out");
            let done = self.run_to_file(&release_bin, &[&self.home], &out);
            if !done.ended.ok() {
                return Err(StageError::Requirement {
                    what: format!("{}/bin/release", dir.display()),
                    ended: done.ended,
                    tail: done.tail,
                    hint: "fix the buildpack's release script".into(),
                });
            }
            let text = std::fs::read_to_string(&out).unwrap_or_default();
            let Released {
                web,
                config_vars,
                addons,
            } = parse_release(&text).map_err(|e| {
                StageError::Io(format!(
                    "{}/bin/release printed YAML that cannot be read: {e}",
                    dir.display()
                ))
            })?;
            rel.web = web;
            rel.config_vars = config_vars;
            if !addons.is_empty() {
                outcome.notes.push(format!(
                    "the buildpack {name} asks for add-ons ({}); they are not provisioned locally",
                    addons.join(", ")
                ));
            }
        }
        if let Some(w) = &rel.web {
            self.out
                .line(&self.prefix, &format!("-----> Default web process: {w}"));
        }
        let p = release_rel(self.state, &self.app.name.value, place);
        self.state
            .write_json(&rel_str(self.state, &p), &rel)
            .map_err(|e| StageError::Io(e.to_string()))?;
        Ok(true)
    }
}

/// Remove the release recorded for `place` (staged without a buildpack now).
pub(crate) fn forget(state: &StateDir, app: &str, place: Place) {
    let _ = std::fs::remove_file(release_rel(state, app, place));
}

/// The parts of `bin/release`'s YAML used here.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Released {
    /// `default_process_types.web`.
    pub web: Option<String>,
    /// `config_vars`, in order.
    pub config_vars: Vec<(String, String)>,
    /// The names in `addons` (not provisioned locally).
    pub addons: Vec<String>,
}

/// Read `bin/release`'s YAML (empty output: nothing released).
pub(crate) fn parse_release(text: &str) -> Result<Released, String> {
    if text.trim().is_empty() {
        return Ok(Released::default());
    }
    let parsed = crate::yaml::parse(text, crate::diag::FileId(0)).map_err(|e| e.to_string())?;
    let Some(root) = parsed.root else {
        return Ok(Released::default());
    };
    let web = root
        .get("default_process_types")
        .and_then(|d| d.get("web"))
        .and_then(|w| w.as_str())
        .map(str::to_string)
        .filter(|w| !w.trim().is_empty());
    let config_vars = root
        .get("config_vars")
        .and_then(|c| c.as_map())
        .map(|m| {
            m.iter()
                .filter_map(|e| {
                    Some((
                        e.key.scalar_text()?.to_string(),
                        e.value.as_str().unwrap_or("").to_string(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default();
    let addons = root
        .get("addons")
        .and_then(|a| a.as_seq())
        .map(|s| {
            s.iter()
                .filter_map(|n| n.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    Ok(Released {
        web,
        config_vars,
        addons,
    })
}

/// The line a process script starts with for a buildpack app: source `$HOME/.profile.d/*.sh`,
/// as the platform did before the command.
pub(crate) const SOURCE_PROFILE_D: &str = "for __sl_f in \"$HOME\"/.profile.d/*.sh; do [ -r \"$__sl_f\" ] && . \"$__sl_f\"; done; unset __sl_f; true";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_yaml_gives_web_vars_and_addons() {
        let r = parse_release(
            "---\naddons:\n  - heroku-postgresql:dev\nconfig_vars:\n  GOPATH: /app/go\n  EMPTY:\ndefault_process_types:\n  web: ./bin/app -port $PORT\n",
        )
        .unwrap();
        assert_eq!(r.web.as_deref(), Some("./bin/app -port $PORT"));
        assert_eq!(
            r.config_vars,
            vec![
                ("GOPATH".to_string(), "/app/go".to_string()),
                ("EMPTY".to_string(), String::new())
            ]
        );
        assert_eq!(r.addons, vec!["heroku-postgresql:dev".to_string()]);
        assert_eq!(parse_release("").unwrap(), Released::default());
        assert!(parse_release("a: [").is_err());
    }

    #[test]
    fn urls_and_paths_are_told_apart() {
        assert!(is_url("https://github.com/heroku/heroku-buildpack-go.git"));
        assert!(is_url("git@github.com:x/y.git"));
        assert!(is_url("file:///srv/bp.git"));
        assert!(!is_url("buildpacks/go"));
        assert!(!is_url("/opt/bp"));
        assert_ne!(key("https://a/x.git"), key("https://b/x.git"));
        assert!(key("https://a/heroku-buildpack-go.git").starts_with("heroku-buildpack-go-"));
        assert!(!key("../..").contains('/'));
    }
}
