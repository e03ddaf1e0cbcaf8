//! The user's side of the environment: `env:` attributes, `.env` files, `--env`, prompts and
//! remembered answers, layered over the platform's variables in one documented order; and the
//! tools to inspect it (masking, dumps of other environments, diffs); what of the host's
//! environment reaches processes.

pub(crate) mod build;
pub(crate) mod diff;
pub(crate) mod dotenv;
pub(crate) mod dump;
pub(crate) mod host;
pub(crate) mod mask;
pub(crate) mod risky;
pub(crate) mod routes;
pub(crate) mod user;
