//! Where a service keeps its files, and which OS user runs it.
//!
//! As a normal user, everything lives in the project's `.stackato-local/services/<name>/`,
//! where `<name>` is the service's name made a safe path component ([`crate::state::component`]:
//! a name like `../../x` can never lead outside; a plain name stays as it is).
//! As root (containers, CI), postgres and MariaDB refuse to run, so servers run as an
//! unprivileged user (`stackato-local`, created on first use, else `nobody`); that user may not
//! be able to reach a project under a 0700 home, so the files the server itself must open (data
//! and sockets) live under `/var/lib/stackato-local/<project-id>-<name>/`, owned by that user,
//! with a `data` link to them from the project's state dir. Logs and pid files, which we open
//! ourselves, stay in the project.

use std::os::unix::fs::{PermissionsExt, lchown};
use std::path::{Path, PathBuf};

use nix::unistd::{Gid, Uid, User};

use crate::services::ServiceError;
use crate::state::{component, create_private_dir_in};

/// The directory under which root-run services keep their data.
pub(crate) const SYSTEM_ROOT: &str = "/var/lib/stackato-local";
/// The dedicated user for services started by root.
pub(crate) const SERVICE_USER: &str = "stackato-local";

/// The OS user a server runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAs {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// We are root and must drop to this user before exec.
    pub(crate) drop_privileges: bool,
}

impl RunAs {
    /// The current user, or the unprivileged service user when we are root.
    pub fn for_services() -> Result<RunAs, ServiceError> {
        let uid = Uid::effective();
        if !uid.is_root() {
            let name = User::from_uid(uid)
                .ok()
                .flatten()
                .map_or_else(|| uid.to_string(), |u| u.name);
            return Ok(RunAs {
                name,
                uid: uid.as_raw(),
                gid: Gid::effective().as_raw(),
                drop_privileges: false,
            });
        }
        let user = match User::from_name(SERVICE_USER).ok().flatten() {
            Some(u) => u,
            None => {
                let mut useradd = std::process::Command::new("useradd");
                useradd
                    .args([
                        "--system",
                        "--no-create-home",
                        "--home-dir",
                        "/nonexistent",
                        "--shell",
                        "/usr/sbin/nologin",
                        SERVICE_USER,
                    ])
                    .stdout(std::process::Stdio::null())
                    .stderr(std::process::Stdio::null());
                let created = crate::process::status(&mut useradd, crate::process::Tie::Probe)
                    .is_ok_and(|s| s.success());
                let found = if created {
                    User::from_name(SERVICE_USER).ok().flatten()
                } else {
                    None
                };
                match found.or_else(|| User::from_name("nobody").ok().flatten()) {
                    Some(u) => u,
                    None => {
                        return Err(ServiceError::Setup(
                            "running as root, and neither a `stackato-local` user could be created nor `nobody` found to run services as".into(),
                        ));
                    }
                }
            }
        };
        Ok(RunAs {
            name: user.name,
            uid: user.uid.as_raw(),
            gid: user.gid.as_raw(),
            drop_privileges: true,
        })
    }

    /// Make `cmd` run as this user (no supplementary groups). Its process group or session
    /// comes from how it is spawned ([`crate::process::Tie`]).
    pub fn apply(&self, cmd: &mut std::process::Command) {
        if self.drop_privileges {
            crate::process::as_user(cmd, self.uid, self.gid);
            cmd.env("USER", &self.name).env("LOGNAME", &self.name);
        }
    }

    /// Give `path` to this user (when we are root); a symlink at `path` is given itself,
    /// never its target.
    pub fn own(&self, path: &Path) -> Result<(), ServiceError> {
        if self.drop_privileges {
            lchown(path, Some(self.uid), Some(self.gid)).map_err(|e| ServiceError::Io {
                what: format!("give {} to user {}", path.display(), self.name),
                source: e,
            })?;
        }
        Ok(())
    }
}

/// The files of one service.
#[derive(Debug, Clone)]
pub struct ServicePaths {
    /// The project's state directory.
    pub state: PathBuf,
    /// `.stackato-local/services/<name>/`: logs, pid file, sqlite file, filesystem dir.
    pub base: PathBuf,
    /// Where the server-owned files live (the project dir, or `/var/lib/…` as root).
    pub root: PathBuf,
    /// The server's data directory.
    pub data: PathBuf,
    /// Sockets and the server's own pid file.
    pub run: PathBuf,
    /// The server's stdout and stderr.
    pub log: PathBuf,
    /// Our record of the running server.
    pub pid: PathBuf,
}

impl ServicePaths {
    pub fn new(state_root: &Path, project_id: &str, name: &str, run_as: &RunAs) -> ServicePaths {
        let safe = component(name);
        let base = state_root.join("services").join(&safe);
        let root = if run_as.drop_privileges {
            PathBuf::from(SYSTEM_ROOT).join(format!("{project_id}-{safe}"))
        } else {
            base.clone()
        };
        ServicePaths {
            state: state_root.to_path_buf(),
            data: root.join("data"),
            run: root.join("run"),
            log: base.join("server.log"),
            pid: base.join("server.pid"),
            base,
            root,
        }
    }

    /// Where `root` (the directory that holds `data` and `run`) lies: the state dir, or
    /// `/var/lib/stackato-local` as root. Every path of this service is below it.
    pub(crate) fn root_base(&self) -> &Path {
        if self.root.starts_with(&self.state) {
            &self.state
        } else {
            Path::new(SYSTEM_ROOT)
        }
    }

    /// Create the directories, owned by the service user where it matters. Nothing is
    /// created, chmod-ed or chown-ed through a symlink.
    pub(crate) fn prepare(&self, run_as: &RunAs) -> Result<(), ServiceError> {
        create_private_dir_in(&self.state, &self.base)?;
        if run_as.drop_privileges {
            std::fs::create_dir_all(SYSTEM_ROOT).map_err(|e| ServiceError::Io {
                what: format!("create {SYSTEM_ROOT}"),
                source: e,
            })?;
            let _ = std::fs::set_permissions(SYSTEM_ROOT, std::fs::Permissions::from_mode(0o711));
            create_private_dir_in(Path::new(SYSTEM_ROOT), &self.root)?;
            run_as.own(&self.root)?;
            let link = self.base.join("data");
            if std::fs::read_link(&link).ok().as_deref() != Some(self.data.as_path()) {
                let _ = std::fs::remove_file(&link);
                let _ = std::os::unix::fs::symlink(&self.data, &link);
            }
        }
        create_private_dir_in(self.root_base(), &self.run)?;
        run_as.own(&self.run)?;
        Ok(())
    }

    /// A private directory below this service's `root` (the data dir, a tmpdir), created
    /// without following links.
    pub(crate) fn private_dir(&self, dir: &Path) -> Result<(), ServiceError> {
        Ok(create_private_dir_in(self.root_base(), dir)?)
    }

    /// Data that an earlier version kept under the plain name `name` (which was a valid
    /// single path component, but is not a safe one, e.g. `Bulletin Board`): move it to the
    /// encoded place, once, when nothing is there yet and no server of it is recorded.
    pub(crate) fn adopt_legacy(&self, name: &str, project_id: &str) {
        let safe = component(name);
        let plain = Path::new(name);
        if safe == name
            || name.starts_with('.')
            || plain.components().count() != 1
            || !matches!(
                plain.components().next(),
                Some(std::path::Component::Normal(_))
            )
        {
            return;
        }
        let old_base = self.state.join("services").join(name);
        let real_dir =
            |p: &Path| std::fs::symlink_metadata(p).is_ok_and(|m| m.file_type().is_dir());
        if !real_dir(&old_base)
            || std::fs::symlink_metadata(&self.base).is_ok()
            || std::fs::symlink_metadata(old_base.join("server.pid")).is_ok()
        {
            return;
        }
        if self.root != self.base {
            let old_root = PathBuf::from(SYSTEM_ROOT).join(format!("{project_id}-{name}"));
            if real_dir(&old_root) && std::fs::symlink_metadata(&self.root).is_err() {
                let _ = std::fs::rename(&old_root, &self.root);
            }
        }
        let _ = std::fs::rename(&old_base, &self.base);
    }

    /// Bytes used by the data directory (for `services list`).
    pub(crate) fn data_size(&self) -> u64 {
        fn walk(p: &Path) -> u64 {
            let Ok(md) = std::fs::symlink_metadata(p) else {
                return 0;
            };
            if md.is_dir() {
                std::fs::read_dir(p)
                    .map(|rd| rd.filter_map(Result::ok).map(|e| walk(&e.path())).sum())
                    .unwrap_or(0)
            } else {
                md.len()
            }
        }
        walk(&self.data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me() -> RunAs {
        RunAs {
            name: "me".into(),
            uid: Uid::effective().as_raw(),
            gid: Gid::effective().as_raw(),
            drop_privileges: false,
        }
    }

    #[test]
    fn service_dirs_stay_inside_the_state_dir_whatever_the_name() {
        let state = Path::new("/p/.stackato-local");
        for name in ["../../../victim", "/etc", "..", ".", "", "a/../../b"] {
            let p = ServicePaths::new(state, "id", name, &me());
            assert_eq!(
                p.base.parent(),
                Some(state.join("services").as_path()),
                "{name:?}"
            );
            for path in [&p.base, &p.root, &p.data, &p.run, &p.log, &p.pid] {
                assert!(
                    path.components()
                        .all(|c| !matches!(c, std::path::Component::ParentDir)),
                    "{name:?}: {}",
                    path.display()
                );
            }
        }
        let as_root = RunAs {
            drop_privileges: true,
            ..me()
        };
        let p = ServicePaths::new(state, "id", "../../x", &as_root);
        assert_eq!(p.root, Path::new(SYSTEM_ROOT).join("id-%2E.%2F..%2Fx"));
        // A safe name is its own directory, as in earlier versions.
        let p = ServicePaths::new(state, "id", "free.postgresql-c8ea", &me());
        assert_eq!(p.base, state.join("services/free.postgresql-c8ea"));
    }

    #[test]
    fn data_under_an_unsafe_plain_name_is_adopted() {
        let t = tempfile::tempdir().unwrap();
        let state = t.path().join(".stackato-local");
        let old = state.join("services/Bulletin Board/fs");
        std::fs::create_dir_all(&old).unwrap();
        std::fs::write(old.join("upload.png"), "png").unwrap();
        let p = ServicePaths::new(&state, "id", "Bulletin Board", &me());
        p.adopt_legacy("Bulletin Board", "id");
        assert_eq!(
            std::fs::read_to_string(state.join("services/Bulletin%20Board/fs/upload.png")).unwrap(),
            "png"
        );
        assert!(!state.join("services/Bulletin Board").exists());
        // Never over existing data, never for names that were not one plain component.
        std::fs::create_dir_all(state.join("services/a b")).unwrap();
        std::fs::create_dir_all(state.join("services/a%20b")).unwrap();
        ServicePaths::new(&state, "id", "a b", &me()).adopt_legacy("a b", "id");
        assert!(state.join("services/a b").exists());
        ServicePaths::new(&state, "id", "../x", &me()).adopt_legacy("../x", "id");
    }
}
