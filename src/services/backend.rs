//! One small trait for every local stand-in (postgres, MariaDB, redis, memcached, RabbitMQ,
//! MongoDB, Elasticsearch, CouchDB), and how to find their programs: on PATH, in `/usr/sbin`,
//! in `/usr/lib/postgresql/*/bin`, and in the vendors' install places of the servers Debian
//! does not package (`/opt/couchdb/bin`, `$ES_HOME/bin`, `/usr/share/elasticsearch/bin`).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::model::ServiceRecord;
use crate::services::ServiceError;
use crate::services::paths::{RunAs, ServicePaths};

/// Everything a backend needs to act on one service.
pub struct Ctx<'a> {
    pub record: &'a ServiceRecord,
    pub paths: &'a ServicePaths,
    pub run_as: &'a RunAs,
    pub bins: &'a Bins,
    pub port: u16,
}

impl Ctx<'_> {
    /// A string credential.
    pub(crate) fn cred(&self, k: &str) -> String {
        match self.record.credentials.get(k) {
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(v) => v.to_string(),
            None => String::new(),
        }
    }

    /// A command for one of the backend's programs, run as the service user.
    pub fn command(&self, program: &str) -> Command {
        let mut c = Command::new(self.bins.get(program));
        self.run_as.apply(&mut c);
        c.stdin(std::process::Stdio::null());
        c
    }
}

/// Programs found for a backend, by name.
#[derive(Debug, Clone, Default)]
pub struct Bins {
    found: Vec<(String, PathBuf)>,
}

impl Bins {
    pub fn get(&self, name: &str) -> PathBuf {
        self.found
            .iter()
            .find(|(n, _)| n == name)
            .map_or_else(|| PathBuf::from(name), |(_, p)| p.clone())
    }

    pub fn has(&self, name: &str) -> bool {
        self.found.iter().any(|(n, _)| n == name)
    }

    pub fn insert(&mut self, name: &str, path: PathBuf) {
        self.found.push((name.to_string(), path));
    }
}

/// The outcome of a readiness probe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    Ready,
    NotYet(String),
}

pub trait Backend: Send + Sync {
    /// The service type (`postgresql`, …).
    fn kind(&self) -> &'static str;
    /// Words for messages: "PostgreSQL".
    fn product(&self) -> &'static str;
    /// What to install, per system: (Debian/Ubuntu, Fedora, Homebrew).
    fn packages(&self) -> (&'static str, &'static str, &'static str);
    /// Programs needed (first alternatives first); `find` fails naming the first missing.
    fn programs(&self) -> &'static [&'static [&'static str]];
    /// Whether `<server> --version` prints the version (and starts nothing).
    fn has_version_flag(&self) -> bool {
        true
    }
    /// The installed version, read without running anything (for servers without a
    /// `--version`).
    fn installed_version(&self) -> Option<String> {
        None
    }
    /// Names the server's process may have in `/proc` (its program, or what it execs).
    fn process_names(&self) -> &'static [&'static str] {
        self.programs().first().copied().unwrap_or_default()
    }
    /// Whether the data directory has been initialised.
    fn initialized(&self, ctx: &Ctx<'_>) -> bool;
    /// Initialise the data directory (once).
    fn init(&self, ctx: &Ctx<'_>) -> Result<(), ServiceError>;
    /// The server in the foreground, listening on 127.0.0.1:`ctx.port`.
    fn server(&self, ctx: &Ctx<'_>) -> Result<Command, ServiceError>;
    /// Is it answering?
    fn probe(&self, ctx: &Ctx<'_>) -> Probe;
    /// Create the database and user named in the credentials (idempotent).
    fn provision(&self, _ctx: &Ctx<'_>) -> Result<(), ServiceError> {
        Ok(())
    }
    /// The signal for a clean, fast shutdown.
    fn stop_signal(&self) -> nix::sys::signal::Signal {
        nix::sys::signal::Signal::SIGTERM
    }
    /// Remove files a crashed server left behind (it is known not to be running).
    fn clean_stale(&self, _ctx: &Ctx<'_>) {}
    /// Clean up after the server stopped (helpers it started that outlive it).
    fn after_stop(&self, _paths: &crate::services::paths::ServicePaths) {}
    /// An interactive client connected with the app's credentials.
    fn shell(&self, ctx: &Ctx<'_>) -> Option<Command>;
}

/// Find a backend's programs; the error names what is missing and how to install it.
pub fn find(b: &dyn Backend) -> Result<Bins, ServiceError> {
    let mut bins = Bins::default();
    // Postgres programs must come from one installation.
    let mut pg_dir: Option<PathBuf> = None;
    for alternatives in b.programs() {
        let mut hit = None;
        for name in *alternatives {
            let local = pg_dir
                .as_ref()
                .map(|d| d.join(name))
                .filter(|p| p.is_file());
            if let Some(p) = local.or_else(|| crate::programs::find(name)) {
                hit = Some((name, p));
                break;
            }
        }
        match hit {
            Some((name, p)) => {
                if b.kind() == "postgresql" && pg_dir.is_none() {
                    pg_dir = std::fs::canonicalize(&p)
                        .ok()
                        .and_then(|c| c.parent().map(Path::to_path_buf));
                }
                for alt in *alternatives {
                    // Later code asks for the first name; map it to what was found.
                    if !bins.has(alt) {
                        bins.insert(alt, p.clone());
                    }
                }
                bins.insert(name, p);
            }
            None => {
                if let Some((kind, program, source)) = crate::services::NOT_PACKAGED
                    .iter()
                    .find(|(k, _, _)| *k == b.kind())
                {
                    return Err(ServiceError::Missing {
                        kind: (*kind).into(),
                        program: (*program).into(),
                        install: format!(
                            "the platform offered {kind} as a service, but Debian 12 has no package for its server; install {source}, or bind a server of your own as a user-provided service"
                        ),
                    });
                }
                let (deb, fedora, brew) = b.packages();
                return Err(ServiceError::Missing {
                    kind: b.kind().into(),
                    program: alternatives.join(" or "),
                    install: format!(
                        "install {}: `apt-get install {deb}` (Debian/Ubuntu), `dnf install {fedora}` (Fedora), `brew install {brew}` (macOS)",
                        b.product()
                    ),
                });
            }
        }
    }
    Ok(bins)
}

/// The last `n` lines of a log file, for error messages (from its last few MiB, never through
/// a symlink: the log is in the project's state dir).
pub(crate) fn log_tail(path: &Path, n: usize) -> String {
    let cap = (n as u64).saturating_mul(4096).clamp(1 << 20, 64 << 20);
    let text = crate::state::read_tail(path, cap)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Run a helper program to completion, feeding `stdin`; an error carries its output.
pub(crate) fn run_tool(
    mut cmd: Command,
    stdin: Option<&str>,
    what: &str,
) -> Result<String, ServiceError> {
    use std::io::Write;
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    if stdin.is_some() {
        cmd.stdin(std::process::Stdio::piped());
    }
    let mut child = crate::process::spawn(&mut cmd, crate::process::Tie::Group).map_err(|e| {
        ServiceError::Io {
            what: what.to_string(),
            source: e,
        }
    })?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        let _ = pipe.write_all(input.as_bytes());
    }
    let pid = child.id();
    let out = child.wait_with_output();
    crate::process::waited(pid, crate::process::Tie::Group);
    let out = out.map_err(|e| ServiceError::Io {
        what: what.to_string(),
        source: e,
    })?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(ServiceError::Tool {
            what: what.to_string(),
            status: out.status.code().unwrap_or(-1),
            output: text.trim().to_string(),
        })
    }
}
