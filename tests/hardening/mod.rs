//! Hardening tests (issue 11): a cloned repository gets nothing it was not allowed. One module
//! per area; each test reproduces an attack or a fault as a user or a hostile repository would.

mod glob;
mod misc;
mod names;
mod process;
mod redteam1;
mod redteam2;
mod state;
mod trust;
