//! The trust question on the terminal: the library's gate ([`crate::trust::require`]) says
//! what to ask; this asks it (stdin and stderr both terminals) and reads the answer.

use std::io::{IsTerminal, Write};

use crate::interrupt::{Stop, Woke};
use crate::manifest::Loaded;
use crate::trust::{self, Granted, Refused};

/// Say once that the old trust store is no longer honoured.
pub(super) fn old_store_notice() {
    if let Some(n) = trust::Store::old_format_notice() {
        eprintln!("{n}");
    }
}

/// [`trust::require`], asking on the terminal when there is one; `stop` ends the question
/// (`run` catches Ctrl-C for its own clean-up).
pub(super) fn require(loaded: &Loaded, assume: bool, stop: &Stop) -> Result<Granted, Refused> {
    if !(assume || trust::env_trust()) {
        old_store_notice();
    }
    let terminal = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    let mut ask = |question: &str| -> Result<bool, i32> {
        let mut err = std::io::stderr();
        let _ = write!(err, "{question}Trust them and run? [y/N] ");
        let _ = err.flush();
        let answer = read_answer(stop)?;
        Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "Yes"))
    };
    trust::require(
        loaded,
        assume,
        terminal.then_some(&mut ask as trust::Ask<'_>),
    )
}

/// One line typed on the terminal; `Err(signal)` when a stop signal arrives first. `run`
/// catches Ctrl-C for its own clean-up (with `SA_RESTART`), so a plain read would go on
/// waiting and take whatever is typed next as the answer: the wait is one `poll()` on stdin
/// and the stop latch.
fn read_answer(stop: &Stop) -> Result<String, i32> {
    use std::os::fd::AsFd;
    let stdin = std::io::stdin();
    let woke = stop.wait(&[stdin.as_fd()], None);
    if let (Ok(Woke::Stopped), Some(sig)) = (woke, stop.requested()) {
        let _ = writeln!(std::io::stderr());
        return Err(sig as i32);
    }
    let mut answer = String::new();
    let _ = stdin.read_line(&mut answer);
    Ok(answer)
}
