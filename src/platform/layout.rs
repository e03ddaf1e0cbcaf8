//! Where the platform's paths land on a laptop. The container had `/app/app` (2.x) or
//! `/home/stackato/app` (3.x) as `$HOME`. Locally `$HOME` is either the checkout (`exec`, `env`,
//! the shell hook, `run --in-place`) or a staged copy of the upload in the state dir
//! (`run`: the droplet during staging, each instance's own copy after); `$STACKATO_APP_ROOT`
//! is a per-instance directory with the same shape as the container's root (`app/`, `logs/`).

use std::path::{Path, PathBuf};

use crate::manifest::App;
use crate::state::{DIR_NAME, StateError, create_private_dir_in};

/// Where `$HOME` is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Place {
    /// The checkout (the app directory itself).
    #[default]
    Checkout,
    /// Generation `generation` of the app's staged copy: its droplet while staging, the instance's
    /// own copy of the droplet otherwise.
    Staged { generation: u64 },
}

/// The per-app directory in the state dir: `.stackato-local/apps/<app>/`.
pub(crate) fn app_dir(state: &Path, app: &str) -> PathBuf {
    // The name is data: one safe path component, whatever the manifest says.
    state.join("apps").join(crate::state::component(app))
}

/// Generation `generation`'s directory: `.stackato-local/apps/<app>/g<gen>/`.
pub(crate) fn generation_dir(state: &Path, app: &str, generation: u64) -> PathBuf {
    app_dir(state, app).join(format!("g{generation}"))
}

/// Local paths for one instance of one app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// `$HOME`: the application directory (`app-dir`).
    pub home: PathBuf,
    /// `$STACKATO_APP_ROOT`: `.stackato-local/apps/<app>/<instance>/`.
    pub(crate) app_root: PathBuf,
    /// `$STACKATO_APP_ROOT/logs`.
    pub logs: PathBuf,
    /// The project's state directory.
    pub state: PathBuf,
    /// The per-project Python virtualenv (its `bin` goes first on PATH).
    pub venv: PathBuf,
}

/// The platform's per-app PHP ini dir, below `$STACKATO_APP_ROOT`: PHP (the built-in server
/// and Apache's mod_php alike) reads its `*.ini` files after the distribution's, through
/// `PHP_INI_SCAN_DIR=:<dir>`.
pub(crate) const PHP_INI_DIR: &str = "apache/php";

impl Layout {
    /// The paths of `instance` (or of staging) with `$HOME` at `place`.
    pub fn new(
        project_dir: &Path,
        app: &App,
        instance: u32,
        staging: bool,
        place: Place,
    ) -> Layout {
        let state = project_dir.join(DIR_NAME);
        let (app_root, home) = match place {
            Place::Checkout => {
                let root = app_dir(&state, &app.name.value).join(instance.to_string());
                (root, app.path.clone())
            }
            Place::Staged { generation } => {
                let g = generation_dir(&state, &app.name.value, generation);
                let root = if staging {
                    g.join("staging")
                } else {
                    g.join(instance.to_string())
                };
                (root.clone(), root.join("app"))
            }
        };
        Layout {
            home,
            logs: app_root.join("logs"),
            app_root,
            venv: state.join("venv"),
            state,
        }
    }

    /// `$STACKATO_APP_ROOT/apache/php`, made; in an instance, with a copy of the `*.ini` files
    /// staging hooks wrote into the staging root's (pre-running hooks may add their own after).
    /// Staging's root is the generation's `staging/`, or, in place, instance 0's root.
    fn prepare_php_ini(&self) -> Result<(), StateError> {
        let dir = self.app_root.join(PHP_INI_DIR);
        create_private_dir_in(&self.state, &dir)?;
        let Some(g) = self.app_root.parent() else {
            return Ok(());
        };
        let staging_root = if self.home_is_link() { "0" } else { "staging" };
        let staged = g.join(staging_root).join(PHP_INI_DIR);
        if staged == dir {
            return Ok(());
        }
        for e in std::fs::read_dir(&staged).into_iter().flatten().flatten() {
            if e.file_type().is_ok_and(|t| t.is_file())
                && e.file_name().to_string_lossy().ends_with(".ini")
            {
                let to = dir.join(e.file_name());
                std::fs::copy(e.path(), &to)
                    .map_err(|source| StateError::Create { path: to, source })?;
            }
        }
        Ok(())
    }

    /// Whether `$HOME` is the checkout itself (then `app` in the root is a link to it).
    fn home_is_link(&self) -> bool {
        self.home != self.app_root.join("app")
    }

    /// `$STACKATO_DOCUMENT_ROOT`: `$HOME`, or `$HOME/<document-root>`.
    pub(crate) fn document_root(&self, app: &App) -> PathBuf {
        match app
            .framework
            .as_ref()
            .and_then(|f| f.document_root.as_deref())
        {
            Some(d) => self.home.join(d.trim_start_matches('/')),
            None => self.home.clone(),
        }
    }

    /// Where a filesystem service's directory is: shared by all apps of the project, below
    /// the service's directory (its name made a safe path component).
    pub(crate) fn filesystem_dir(state: &Path, service: &str) -> PathBuf {
        state
            .join("services")
            .join(crate::state::component(service))
            .join("fs")
    }

    /// Create the instance root with `app/` (a link to the checkout when `$HOME` is the
    /// checkout; the staged copy, made by staging, otherwise) and `logs/`, like the container's.
    pub(crate) fn prepare(&self) -> Result<(), StateError> {
        create_private_dir_in(&self.state, &self.logs)?;
        self.prepare_php_ini()?;
        if !self.home_is_link() {
            return Ok(());
        }
        let link = self.app_root.join("app");
        if std::fs::read_link(&link).ok().as_deref() != Some(self.home.as_path()) {
            let _ = std::fs::remove_file(&link);
            std::os::unix::fs::symlink(&self.home, &link).map_err(|source| StateError::Create {
                path: link.clone(),
                source,
            })?;
        }
        Ok(())
    }
}
