//! stackato-local: run an app described by a Stackato `stackato.yml` on a laptop the way the
//! platform would. The library holds everything; the binary is a thin shell over [`main`].
//!
//! Every module is private and items are `pub(crate)` by default, so the compiler reports dead
//! code. The one public module, [`api`], re-exports what the fuzz targets, the benches and the
//! integration tests reach; it is not a stable API. `unreachable_pub` keeps it so: a `pub` item
//! that [`api`] does not reach is a warning (`tools/visibility.py` turns them into `pub(crate)`).

#![warn(unreachable_pub)]

// Printing never panics. std's `print!`, `println!`, `eprint!` and `eprintln!` panic when the
// write fails: a closed stdout (`| head`) or stderr (a parent that dropped our stderr pipe)
// turned an ordinary error into a panic and exit 101. These macros shadow them in every module
// of the crate (a `macro_rules!` defined before the modules wins over the prelude's) and write
// through `io::Write`, ignoring the error: the exit code still tells what happened. SIGPIPE
// stays ignored (Rust's default) so a closed pipe is an EPIPE error here, never a signal; the
// few direct writes elsewhere already discard their errors (`let _ = writeln!(…)`).
macro_rules! print {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout(), $($t)*);
    }};
}
macro_rules! println {
    () => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout());
    }};
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout(), $($t)*);
    }};
}
macro_rules! eprint {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stderr(), $($t)*);
    }};
}
macro_rules! eprintln {
    () => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr());
    }};
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stderr(), $($t)*);
    }};
}

pub mod api;

mod cli;
mod diag;
mod env;
mod exit;
mod export;
mod fnv;
mod fsx;
mod interrupt;
mod manifest;
mod model;
mod onboard;
mod output;
mod plan;
mod platform;
mod process;
mod programs;
mod random;
mod router;
mod services;
mod shell;
mod stage;
mod state;
mod supervise;
mod trust;
mod watch;
mod yaml;

pub use cli::main;
