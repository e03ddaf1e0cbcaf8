//! Local stand-ins for the platform's services: the registry of provisioned instances
//! (credentials and remembered ports), one backend per server type behind one small trait,
//! and their lifecycle (start in order, readiness, stale-state recovery, clean stop).

pub(crate) mod backend;
pub(crate) mod couchdb;
pub(crate) mod elasticsearch;
pub(crate) mod http;
pub(crate) mod lifecycle;
pub(crate) mod memcached;
pub(crate) mod mongodb;
pub(crate) mod mysql;
pub(crate) mod paths;
pub(crate) mod ports;
pub(crate) mod postgres;
pub(crate) mod probe;
pub(crate) mod rabbitmq;
pub(crate) mod redis;
pub(crate) mod registry;

use std::path::PathBuf;

use crate::state::StateError;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{kind} needs `{program}`, which is not installed; {install}")]
    Missing {
        kind: String,
        program: String,
        install: String,
    },
    #[error(
        "service \"{name}\" ({kind}): stackato-local cannot run {kind} locally yet; skip it with --skip-service {name}"
    )]
    Unsupported { name: String, kind: String },
    #[error("failed to {what}: {source}")]
    Io {
        what: String,
        source: std::io::Error,
    },
    #[error("failed to {what} (exit status {status}):\n{output}")]
    Tool {
        what: String,
        status: i32,
        output: String,
    },
    #[error(transparent)]
    State(#[from] StateError),
    #[error("{0}")]
    Setup(String),
    /// A server failed to come up; the log tail is included.
    #[error("service \"{}\" ({}) {}; last lines of {}:\n{}{}", .0.name, .0.kind, .0.what, .0.log.display(), .0.tail, .0.hint_line())]
    Failed(Box<Failure>),
}

/// Details of a server that did not come up.
#[derive(Debug)]
pub struct Failure {
    pub name: String,
    pub kind: String,
    /// "did not answer within 60 s (connection refused)", "exited while starting".
    pub what: String,
    pub log: PathBuf,
    pub tail: String,
    /// What the user can do about it (`services reset NAME` for a damaged data directory).
    pub hint: Option<String>,
}

impl Failure {
    fn hint_line(&self) -> String {
        self.hint
            .as_deref()
            .map_or_else(String::new, |h| format!("\nhint: {h}"))
    }
}

/// Services the platform had whose servers no Debian 12 package provides: the server program
/// and where to get it, for the message when it is missing. Started like the others when
/// their server is installed.
pub(crate) const NOT_PACKAGED: &[(&str, &str, &str)] = &[
    (
        "mongodb",
        "mongod",
        "MongoDB Community Server from MongoDB's own apt repository or tarball",
    ),
    (
        "elasticsearch",
        "elasticsearch",
        "Elasticsearch from Elastic's own apt repository or tarball",
    ),
    (
        "couchdb",
        "couchdb",
        "Apache CouchDB from the CouchDB project's own apt repository (or `npm install -g pouchdb-server`, which speaks CouchDB's HTTP API)",
    ),
];

/// Why service `name` of type `kind` cannot run here: the type has no local stand-in. (The
/// types whose server is only missing get [`ServiceError::Missing`] from [`backend::find`].)
pub(crate) fn unavailable_message(name: &str, kind: &str) -> String {
    ServiceError::Unsupported {
        name: name.to_string(),
        kind: kind.to_string(),
    }
    .to_string()
}

impl ServiceError {
    /// Name the service in a "missing program" error.
    pub(crate) fn for_service(self, name: &str) -> ServiceError {
        match self {
            ServiceError::Missing {
                kind,
                program,
                install,
            } => ServiceError::Missing {
                kind: format!("service \"{name}\" ({kind})"),
                program,
                install: format!("{install}; or skip it with --skip-service {name}"),
            },
            other => other,
        }
    }
}

/// The backend for a service type, if we can run it locally.
pub fn for_kind(kind: &str) -> Option<&'static dyn backend::Backend> {
    match kind {
        "postgresql" => Some(&crate::services::postgres::Postgres),
        "mysql" => Some(&crate::services::mysql::Mysql),
        "redis" => Some(&crate::services::redis::Redis),
        "memcached" => Some(&crate::services::memcached::Memcached),
        "rabbitmq" | "rabbitmq3" => Some(&crate::services::rabbitmq::Rabbitmq),
        "mongodb" => Some(&crate::services::mongodb::Mongodb),
        "couchdb" => Some(&crate::services::couchdb::Couchdb),
        "elasticsearch" => Some(&crate::services::elasticsearch::Elasticsearch),
        _ => None,
    }
}
