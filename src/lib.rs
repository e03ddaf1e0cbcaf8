//! stackato-local: run an app described by a Stackato `stackato.yml` on a laptop the way the
//! platform would. The library holds everything; the binary is a thin shell over [`cli::main`].

pub mod cli;
pub mod diag;
pub mod exit;
pub mod manifest;
pub mod yaml;
