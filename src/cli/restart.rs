//! `stackato-local restart [PROCESS]`: ask the `run` supervisor of this project (through its
//! control socket) to restart every process, one process (`web.0`), a kind (`web`) or an app.

use crate::cli::Global;
use crate::exit;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// `web.0`, `web`, `worker.1`, or an application name (default: everything).
    pub process: Option<String>,
}

pub(super) fn run(g: &Global, args: &Args) -> i32 {
    let (loaded, state) = match crate::cli::services::open(g) {
        Ok(x) => x,
        Err(c) => return c,
    };
    let _ = loaded;
    let sock = state.path("run.sock");
    let cmd = match &args.process {
        Some(p) => format!("restart {p}"),
        None => "restart".to_string(),
    };
    match crate::supervise::control::send(&sock, &cmd) {
        Ok(answer) => {
            println!("{answer}");
            if answer.starts_with("ok") {
                exit::OK
            } else {
                exit::USAGE
            }
        }
        Err(_) => {
            eprintln!(
                "error: no `stackato-local run` is running for this project (nothing answers on {})",
                crate::diag::display_path(&sock)
            );
            exit::USAGE
        }
    }
}
