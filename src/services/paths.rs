//! Where a service keeps its files, and which OS user runs it.
//!
//! As a normal user, everything lives in the project's `.stackato-local/services/<name>/`.
//! As root (containers, CI), postgres and MariaDB refuse to run, so servers run as an
//! unprivileged user (`stackato-local`, created on first use, else `nobody`); that user may not
//! be able to reach a project under a 0700 home, so the files the server itself must open (data
//! and sockets) live under `/var/lib/stackato-local/<project-id>-<name>/`, owned by that user,
//! with a `data` link to them from the project's state dir. Logs and pid files, which we open
//! ourselves, stay in the project.

use std::os::unix::fs::{PermissionsExt, chown};
use std::path::{Path, PathBuf};

use nix::unistd::{Gid, Uid, User};

use crate::services::ServiceError;
use crate::state::create_private_dir;

/// The directory under which root-run services keep their data.
pub const SYSTEM_ROOT: &str = "/var/lib/stackato-local";
/// The dedicated user for services started by root.
pub const SERVICE_USER: &str = "stackato-local";

/// The OS user a server runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAs {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// We are root and must drop to this user before exec.
    pub drop_privileges: bool,
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
        use std::os::unix::process::CommandExt;
        let drop = self.drop_privileges;
        let (uid, gid) = (self.uid, self.gid);
        // SAFETY: only async-signal-safe calls (setgroups, setgid, setuid) run between fork
        // and exec.
        unsafe {
            cmd.pre_exec(move || {
                if drop {
                    nix::unistd::setgroups(&[]).map_err(std::io::Error::from)?;
                    nix::unistd::setgid(Gid::from_raw(gid)).map_err(std::io::Error::from)?;
                    nix::unistd::setuid(Uid::from_raw(uid)).map_err(std::io::Error::from)?;
                }
                Ok(())
            });
        }
        if drop {
            cmd.env("USER", &self.name).env("LOGNAME", &self.name);
        }
    }

    /// Give `path` to this user (when we are root).
    pub fn own(&self, path: &Path) -> Result<(), ServiceError> {
        if self.drop_privileges {
            chown(path, Some(self.uid), Some(self.gid)).map_err(|e| ServiceError::Io {
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
        let base = state_root.join("services").join(name);
        let root = if run_as.drop_privileges {
            PathBuf::from(SYSTEM_ROOT).join(format!("{project_id}-{name}"))
        } else {
            base.clone()
        };
        ServicePaths {
            data: root.join("data"),
            run: root.join("run"),
            log: base.join("server.log"),
            pid: base.join("server.pid"),
            base,
            root,
        }
    }

    /// Create the directories, owned by the service user where it matters.
    pub fn prepare(&self, run_as: &RunAs) -> Result<(), ServiceError> {
        create_private_dir(&self.base)?;
        if run_as.drop_privileges {
            std::fs::create_dir_all(SYSTEM_ROOT).map_err(|e| ServiceError::Io {
                what: format!("create {SYSTEM_ROOT}"),
                source: e,
            })?;
            let _ = std::fs::set_permissions(SYSTEM_ROOT, std::fs::Permissions::from_mode(0o711));
            create_private_dir(&self.root)?;
            run_as.own(&self.root)?;
            let link = self.base.join("data");
            if std::fs::read_link(&link).ok().as_deref() != Some(self.data.as_path()) {
                let _ = std::fs::remove_file(&link);
                let _ = std::os::unix::fs::symlink(&self.data, &link);
            }
        }
        create_private_dir(&self.run)?;
        run_as.own(&self.run)?;
        Ok(())
    }

    /// Bytes used by the data directory (for `services list`).
    pub fn data_size(&self) -> u64 {
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
