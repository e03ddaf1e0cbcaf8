//! Local stand-ins for the platform's services. For now: the registry of provisioned
//! instances (credentials and remembered ports) that the environment advertises.

pub mod ports;
pub mod registry;
