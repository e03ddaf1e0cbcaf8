//! The one table of exit codes for the whole tool (documented in the README).

/// Success.
pub(crate) const OK: i32 = 0;
/// `check --strict`: the manifest is valid but has warnings; `env diff`: the environments
/// differ; `env explain`: the variable is not set.
pub(crate) const WARNINGS: i32 = 1;
/// The manifest is invalid (syntax, types, unknown symbols, …).
pub(crate) const INVALID_MANIFEST: i32 = 2;
/// No manifest was found, or the one named cannot be read.
pub(crate) const NO_MANIFEST: i32 = 3;
/// The environment cannot be completed: a required variable has no value, a value is not
/// among its `choices`, a `.env` file is malformed.
pub(crate) const ENV: i32 = 4;
/// A service could not be started: its server is not installed, it did not answer in time,
/// it crashed while starting.
pub(crate) const SERVICE: i32 = 5;
/// Staging failed: a hook (staging or pre-running) or an installer failed.
pub(crate) const HOOK: i32 = 6;
/// The app failed: it crashed with `--exit-on-crash`, kept crashing (flapping) with
/// `--no-watch`, never accepted connections on its port (the platform's health check), or could
/// not be started.
pub(crate) const APP: i32 = 7;
/// The project is not trusted, or changed since `allow` (answer "no", or no terminal and no
/// --trust).
pub(crate) const UNTRUSTED: i32 = 8;
/// `--strict-runtime`: an app declares a runtime (`runtime:`, `runtime.txt`, …) that is not
/// installed here.
pub(crate) const RUNTIME: i32 = 9;
/// `run`: the router cannot listen on its port (`--port`, `--bind`): another program has it,
/// or the address is not this machine's.
pub(crate) const PORT: i32 = 10;
/// The command line is wrong (unknown flag, bad value).
pub(crate) const USAGE: i32 = 64;
/// An unexpected internal failure (a bug: please report it).
pub(crate) const INTERNAL: i32 = 70;
/// A panic: the panic hook (`cli::install_panic_hook`) says "internal error (a bug)" and exits
/// with this code (Rust's own 101 is never used). The same code as [`INTERNAL`].
pub(crate) const BUG: i32 = INTERNAL;
/// A file or directory the tool needs cannot be read or written.
pub(crate) const IO: i32 = 74;
