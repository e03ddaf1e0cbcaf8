//! Plain data that several layers hand to each other and none of them owns: an environment
//! with provenance ([`EnvSet`]) and a provisioned service instance ([`ServiceRecord`]). It sits
//! below `platform`, `env`, `services` and `stage`, and imports none of them.

pub(crate) mod env_set;
mod service_record;

pub(crate) use env_set::{EnvSet, Layer, Var};
pub use service_record::ServiceRecord;
