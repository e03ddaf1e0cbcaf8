//! Hardening tests (issue 11): a cloned repository gets nothing it was not allowed. One module
//! per area; each test reproduces an attack or a fault as a user or a hostile repository would.
#![allow(clippy::disallowed_methods)] // tests drive the real binary from outside

#[path = "../common/mod.rs"]
mod common;

mod glob;
mod misc;
mod names;
mod process;
mod redteam1;
mod redteam2;
mod state;
mod trust;
