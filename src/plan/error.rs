//! Why a plan could not be made or carried out; `src/cli/` prints each the way it always has
//! and maps it to its exit code.

use crate::diag::Diagnostic;
use crate::env::build::BuildError;
use crate::services::ServiceError;
use crate::services::registry::ProvisionError;
use crate::stage::StageError;
use crate::state::StateError;

#[derive(Debug, thiserror::Error)]
pub(crate) enum PlanError {
    /// `--app NAME` names no app of the manifest (exit 2).
    #[error("no application named \"{name}\" (the manifest has: {known})")]
    NoSuchApp { name: String, known: String },
    /// The environment of a process or of staging cannot be built.
    #[error(transparent)]
    Build(BuildError),
    /// An instance's directories cannot be made (exit 6).
    #[error(transparent)]
    Layout(StateError),
    /// The app has no web command, positioned at its framework's type, else its name (exit 2).
    #[error("{}", .0.message)]
    NoWebCommand(Box<Diagnostic>),
    /// Staging failed; `limit` is the time limit of one hook, in seconds (exit 5).
    #[error("{error}")]
    Stage { error: Box<StageError>, limit: u64 },
    /// The manifest's services cannot be provisioned (a type conflict: exit 3; else exit 6).
    #[error(transparent)]
    Provision(ProvisionError),
    /// A service cannot be planned (its state: exit 6; else exit 4).
    #[error(transparent)]
    Service(ServiceError),
    /// `--strict-runtime` and the declared runtime is not installed (exit 9).
    #[error("{}", .0.message)]
    Runtime(Box<Diagnostic>),
    /// An instance's copy of the staged tree cannot be made or found (exit 74, I/O).
    #[error("{0}")]
    Copy(String),
}

impl From<BuildError> for PlanError {
    fn from(e: BuildError) -> Self {
        PlanError::Build(e)
    }
}
