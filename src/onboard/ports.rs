//! The ports a project remembers (`ports.json` for app instances, `services.json` for
//! services) and, for a busy one, which process listens on it: the kernel's TCP tables and each
//! process's open sockets under `/proc` (Linux; elsewhere the holder stays unknown).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::services::registry::{self, Registry};
use crate::state::StateDir;

/// One remembered port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Remembered {
    pub port: u16,
    pub user: User,
}

/// Who the port is remembered for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum User {
    /// An app instance, `app/instance`.
    Instance(String),
    /// A service: its name and type.
    Service { name: String, kind: String },
}

impl std::fmt::Display for User {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            User::Instance(i) => write!(f, "app instance {i}"),
            User::Service { name, kind } => write!(f, "service {name} ({kind})"),
        }
    }
}

/// The file instance ports are remembered in (kept by `env::build`).
pub(crate) const PORTS_FILE: &str = crate::env::build::PORTS;

/// Every port the state directory remembers, in port order; an unreadable file is an error
/// naming it.
pub(crate) fn remembered(state: &StateDir) -> Result<Vec<Remembered>, crate::state::StateError> {
    let mut v = Vec::new();
    let ports: BTreeMap<String, u16> = state.read_json(PORTS_FILE)?.unwrap_or_default();
    for (k, p) in ports {
        v.push(Remembered {
            port: p,
            user: User::Instance(k),
        });
    }
    let reg: Registry = state.read_json(registry::FILE)?.unwrap_or_default();
    for r in reg.services.values() {
        if let Some(p) = r.port {
            v.push(Remembered {
                port: p,
                user: User::Service {
                    name: r.name.clone(),
                    kind: r.kind.clone(),
                },
            });
        }
    }
    v.sort_by_key(|r| r.port);
    Ok(v)
}

/// A process listening on a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Holder {
    pub pid: i32,
    pub command: String,
    pub cwd: Option<PathBuf>,
}

/// The inodes of the sockets listening on TCP `port` (IPv4 and IPv6).
fn listening_inodes(port: u16) -> Vec<u64> {
    let mut v = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
            if f.len() < 10 || f[3] != "0A" {
                continue;
            }
            let local_port = f[1]
                .rsplit_once(':')
                .and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
            if local_port == Some(port)
                && let Ok(inode) = f[9].parse::<u64>()
                && inode != 0
            {
                v.push(inode);
            }
        }
    }
    v
}

/// The process listening on TCP `port`, when this user may see it.
pub(crate) fn holder(port: u16) -> Option<Holder> {
    let inodes = listening_inodes(port);
    if inodes.is_empty() {
        return None;
    }
    let wanted: Vec<String> = inodes.iter().map(|i| format!("socket:[{i}]")).collect();
    let rd = std::fs::read_dir("/proc").ok()?;
    for e in rd.filter_map(Result::ok) {
        let Some(pid) = e.file_name().to_str().and_then(|n| n.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(e.path().join("fd")) else {
            continue;
        };
        let holds = fds.filter_map(Result::ok).any(|fd| {
            std::fs::read_link(fd.path())
                .ok()
                .and_then(|l| l.to_str().map(str::to_string))
                .is_some_and(|l| wanted.contains(&l))
        });
        if holds {
            return Some(Holder {
                pid,
                command: command_line(pid),
                cwd: std::fs::read_link(e.path().join("cwd")).ok(),
            });
        }
    }
    None
}

/// A process's command line, for messages (at most 80 characters).
pub(crate) fn command_line(pid: i32) -> String {
    let text = std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            String::from_utf8_lossy(&b)
                .replace('\0', " ")
                .trim()
                .to_string()
        })
        .unwrap_or_default();
    if text.chars().count() > 80 {
        let cut: String = text.chars().take(77).collect();
        format!("{cut}...")
    } else {
        text
    }
}

/// Whether `holder` is one of the project's own processes: it runs inside the project
/// directory (the app processes `run` starts work in `$HOME`, the app directory).
pub(crate) fn is_inside(holder: &Holder, project: &Path) -> bool {
    let project = project
        .canonicalize()
        .unwrap_or_else(|_| project.to_path_buf());
    holder.cwd.as_ref().is_some_and(|c| c.starts_with(&project))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_our_own_listener() {
        if !Path::new("/proc/net/tcp").exists() {
            return;
        }
        let l = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let port = l.local_addr().unwrap().port();
        let h = holder(port).expect("a holder for our listener");
        assert_eq!(h.pid, std::process::id() as i32);
        drop(l);
        assert_eq!(holder(port), None);
    }
}
