//! The integration tests: one binary (as just and ripgrep build theirs), one module per area,
//! all sharing one harness in `common`. Each test runs the real `stackato-local` binary on real
//! files and processes. Run one area with `cargo test --test main <module>::`, e.g.
//! `cargo test --test main services::`.
#![allow(clippy::disallowed_methods)] // tests drive the real binary from outside

mod common;

mod bad_input;
mod buildpacks;
mod conformance;
mod corpus;
mod detection;
mod doctor;
mod env_cli;
mod env_corpus;
mod env_golden;
mod export;
mod faults;
mod frameworks;
mod fuzz_regressions;
mod fuzz_regressions_env;
mod hardening;
mod hints;
mod hook;
mod init;
mod leftovers;
mod legacy_apps;
mod more_services;
mod perl;
mod php;
mod php_router;
mod reader;
mod red13_apps;
mod red13_trust;
mod router;
mod run;
mod runtimes;
mod runtimes_more;
mod security;
mod services;
mod staged;
mod trust;
mod watch;
