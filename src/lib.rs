//! stackato-local: run an app described by a Stackato `stackato.yml` on a laptop the way the
//! platform would. The library holds everything; the binary is a thin shell over [`cli::main`].

pub mod cli;
pub mod diag;
pub mod env;
pub mod exit;
pub mod export;
pub mod fnv;
pub mod interrupt;
pub mod manifest;
pub mod onboard;
pub mod output;
pub mod platform;
pub mod process;
pub mod random;
pub mod services;
pub mod stage;
pub mod state;
pub mod supervise;
pub mod trust;
pub mod watch;
pub mod yaml;
