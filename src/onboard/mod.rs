//! Onboarding: `init` (recognise an app and write a commented `stackato.yml` for it) and
//! `doctor` (what this machine lacks to run a manifest's apps). The CLI glue is in
//! `cli::init` and `cli::doctor`; everything here works without a terminal.

pub mod detect;
pub mod doctor;
pub mod init;
pub mod ports;
pub mod render;
pub mod tools;
pub mod watches;
