//! The user's side of the environment: `env:` attributes, `.env` files, `--env`, prompts and
//! remembered answers, layered over the platform's variables in one documented order; and the
//! tools to inspect it (masking, dumps of other environments, diffs); what of the host's
//! environment reaches processes.

pub mod build;
pub mod diff;
pub mod dotenv;
pub mod dump;
pub mod host;
pub mod mask;
pub mod risky;
/// The environment set moved to [`crate::model`]; this path stays for the code that names it.
pub use crate::model::env_set as set;
pub mod user;
