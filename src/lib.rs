//! stackato-local: run an app described by a Stackato `stackato.yml` on a laptop the way the
//! platform would. The library holds everything; the binary is a thin shell over [`cli::main`].

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

pub mod cli;
pub mod diag;
pub mod env;
pub mod exit;
pub mod export;
pub mod fnv;
pub mod fsx;
pub mod interrupt;
pub mod manifest;
pub mod model;
pub mod onboard;
pub mod output;
pub mod plan;
pub mod platform;
pub mod process;
pub mod programs;
pub mod random;
pub mod services;
pub mod shell;
pub mod stage;
pub mod state;
pub mod supervise;
pub mod trust;
pub mod watch;
pub mod yaml;
