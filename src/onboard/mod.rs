//! Onboarding: `init` (recognise an app and write a commented `stackato.yml` for it) and
//! `doctor` (what this machine lacks to run a manifest's apps). The CLI glue is in
//! `cli::init` and `cli::doctor`; everything here works without a terminal.

pub(crate) mod detect;
pub(crate) mod doctor;
pub(crate) mod init;
pub(crate) mod ports;
pub(crate) mod render;
pub(crate) mod tools;
pub(crate) mod watches;
