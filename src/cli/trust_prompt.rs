//! The trust question on the terminal: the library's gate ([`crate::trust::require`]) says
//! what to ask; this asks it (stdin and stderr both terminals) and reads the answer.

use std::io::{IsTerminal, Write};

use crate::manifest::Loaded;
use crate::trust::{self, Granted, Refused};

/// Say once that the old trust store is no longer honoured.
pub(super) fn old_store_notice() {
    if let Some(n) = trust::Store::old_format_notice() {
        eprintln!("{n}");
    }
}

/// [`trust::require`], asking on the terminal when there is one.
pub(super) fn require(loaded: &Loaded, assume: bool) -> Result<Granted, Refused> {
    if !(assume || trust::env_trust()) {
        old_store_notice();
    }
    let terminal = std::io::stdin().is_terminal() && std::io::stderr().is_terminal();
    let mut ask = |question: &str| -> Result<bool, i32> {
        let mut err = std::io::stderr();
        let _ = write!(err, "{question}Trust them and run? [y/N] ");
        let _ = err.flush();
        let answer = read_answer()?;
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
/// waiting and take whatever is typed next as the answer.
fn read_answer() -> Result<String, i32> {
    use std::os::fd::AsRawFd;
    let stdin = std::io::stdin();
    loop {
        if let Some(sig) = crate::interrupt::received() {
            let _ = writeln!(std::io::stderr());
            return Err(sig);
        }
        let mut fd = libc::pollfd {
            fd: stdin.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd for the duration of the call.
        let n = unsafe { libc::poll(&mut fd, 1, 100) };
        if n > 0
            || (n < 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted)
        {
            break;
        }
    }
    let mut answer = String::new();
    let _ = stdin.read_line(&mut answer);
    Ok(answer)
}
