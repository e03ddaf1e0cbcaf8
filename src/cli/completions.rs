//! `completions bash|zsh|fish` and `man`: generated from the clap definitions, so they never
//! drift from the real options.

use std::io::Write;

use clap::CommandFactory;

use crate::cli::Cli;
use crate::exit;

/// The shells we print completions and hooks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Shell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The shell.
    #[arg(value_enum)]
    pub shell: Shell,
}

pub(super) fn completions(args: &Args) -> i32 {
    let mut cmd = Cli::command();
    let shell = match args.shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "stackato-local", &mut out);
    let _ = std::io::stdout().write_all(&out);
    exit::OK
}

pub(super) fn man() -> i32 {
    let cmd = Cli::command();
    let mut out = Vec::new();
    if clap_mangen::Man::new(cmd).render(&mut out).is_err() {
        return exit::INTERNAL;
    }
    let _ = std::io::stdout().write_all(&out);
    exit::OK
}
