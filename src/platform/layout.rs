//! Where the platform's paths land on a laptop. The container had `/app/app` (2.x) or
//! `/home/stackato/app` (3.x) as `$HOME`; locally `$HOME` is the application directory itself,
//! so `$HOME/static` in a web command points inside the app, and `$STACKATO_APP_ROOT` is a
//! per-instance directory in the state dir with the same shape as the container's root.

use std::path::{Path, PathBuf};

use crate::manifest::App;
use crate::state::{DIR_NAME, StateError, create_private_dir_in};

/// Local paths for one instance of one app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// `$HOME`: the application directory (`app-dir`).
    pub home: PathBuf,
    /// `$STACKATO_APP_ROOT`: `.stackato-local/apps/<app>/<instance>/`.
    pub app_root: PathBuf,
    /// `$STACKATO_APP_ROOT/logs`.
    pub logs: PathBuf,
    /// The project's state directory.
    pub state: PathBuf,
    /// The per-project Python virtualenv (its `bin` goes first on PATH).
    pub venv: PathBuf,
}

impl Layout {
    pub fn new(project_dir: &Path, app: &App, instance: u32) -> Layout {
        let state = project_dir.join(DIR_NAME);
        let app_root = state
            .join("apps")
            // The name is data: one safe path component, whatever the manifest says.
            .join(crate::state::component(&app.name.value))
            .join(instance.to_string());
        Layout {
            home: app.path.clone(),
            logs: app_root.join("logs"),
            app_root,
            venv: state.join("venv"),
            state,
        }
    }

    /// `$STACKATO_DOCUMENT_ROOT`: `$HOME`, or `$HOME/<document-root>`.
    pub fn document_root(&self, app: &App) -> PathBuf {
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
    pub fn filesystem_dir(state: &Path, service: &str) -> PathBuf {
        state
            .join("services")
            .join(crate::state::component(service))
            .join("fs")
    }

    /// Create the instance root with `app -> $HOME` and `logs/`, like the container's root.
    pub fn prepare(&self) -> Result<(), StateError> {
        create_private_dir_in(&self.state, &self.logs)?;
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
