//! Keys on the terminal while `run` watches: `r` restarts every process, `q` quits. The
//! terminal is put in non-canonical, no-echo mode for single key presses and restored after.

use std::io::Read;
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use nix::sys::termios::{self, LocalFlags, SetArg, Termios};
use tokio::sync::mpsc;

use super::Event;

/// Restores the terminal when dropped, after stopping the key reader: what is typed next (the
/// answer to a trust question when a reload asks) goes to whoever reads stdin then.
pub(super) struct RawGuard {
    saved: Termios,
    /// Closing it wakes the reader at once (no timeout to wait out on the way to exit).
    wake: Option<OwnedFd>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Drop for RawGuard {
    fn drop(&mut self) {
        drop(self.wake.take());
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        let stdin = std::io::stdin();
        let _ = termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &self.saved);
    }
}

/// Wait until stdin has a byte to read (`Some(true)`), or it is closed or `stop` is closed or
/// written to (`None`).
fn readable(stop: &OwnedFd) -> Option<bool> {
    let mut fds = [
        libc::pollfd {
            fd: libc::STDIN_FILENO,
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: stop.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    // SAFETY: two valid pollfds for the duration of the call.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
    if n < 0 {
        // Interrupted by a signal: look again.
        return Some(false);
    }
    if fds[1].revents != 0 {
        return None;
    }
    if fds[0].revents & libc::POLLIN != 0 {
        Some(true)
    } else if fds[0].revents != 0 {
        None
    } else {
        Some(false)
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
    let (stop, wake) = nix::unistd::pipe().ok()?;
    let mut raw = saved.clone();
    raw.local_flags
        .remove(LocalFlags::ICANON | LocalFlags::ECHO);
    termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw).ok()?;
    let reader = std::thread::spawn(move || {
        let mut b = [0u8; 1];
        let mut input = std::io::stdin();
        loop {
            match readable(&stop) {
                Some(true) => {}
                Some(false) => continue,
                None => break,
            }
            match input.read(&mut b) {
                Ok(1) => {
                    if tx.send(Event::Key(b[0].to_ascii_lowercase())).is_err() {
                        break;
                    }
                }
                _ => break,
            }
        }
    });
    Some(RawGuard {
        saved,
        wake: Some(wake),
        reader: Some(reader),
    })
}
