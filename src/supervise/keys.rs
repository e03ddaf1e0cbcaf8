//! Keys on the terminal while `run` watches: `r` restarts every process, `q` quits. The
//! terminal is put in non-canonical, no-echo mode for single key presses and restored after.

use std::io::Read;
use std::os::fd::AsFd;

use nix::sys::termios::{self, LocalFlags, SetArg, Termios};
use tokio::sync::mpsc;

use super::Event;

/// Restores the terminal when dropped.
pub struct RawGuard {
    saved: Termios,
}

impl Drop for RawGuard {
    fn drop(&mut self) {
        let stdin = std::io::stdin();
        let _ = termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &self.saved);
    }
}

/// Read keys from the terminal when stdin is one; `None` otherwise.
pub(super) fn start(tx: mpsc::UnboundedSender<Event>) -> Option<RawGuard> {
    use std::io::IsTerminal;
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return None;
    }
    let saved = termios::tcgetattr(stdin.as_fd()).ok()?;
    let mut raw = saved.clone();
    raw.local_flags
        .remove(LocalFlags::ICANON | LocalFlags::ECHO);
    termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw).ok()?;
    std::thread::spawn(move || {
        let mut b = [0u8; 1];
        let mut input = std::io::stdin();
        while let Ok(1) = input.read(&mut b) {
            if tx.send(Event::Key(b[0].to_ascii_lowercase())).is_err() {
                break;
            }
        }
    });
    Some(RawGuard { saved })
}
