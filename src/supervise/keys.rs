//! Keys on the terminal while `run` watches: `r` restarts every process, `q` quits. The
//! terminal is put in non-canonical, no-echo mode for single key presses and restored after.

use std::io::Read;
use std::os::fd::AsFd;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use nix::sys::termios::{self, LocalFlags, SetArg, Termios};
use tokio::sync::mpsc;

use super::Event;

/// Restores the terminal when dropped, after stopping the key reader: what is typed next (the
/// answer to a trust question when a reload asks) goes to whoever reads stdin then.
pub struct RawGuard {
    saved: Termios,
    stop: Arc<AtomicBool>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Drop for RawGuard {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(r) = self.reader.take() {
            let _ = r.join();
        }
        let stdin = std::io::stdin();
        let _ = termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &self.saved);
    }
}

/// Whether stdin has a byte to read within `ms` milliseconds; `None` when it is closed.
fn readable(ms: i32) -> Option<bool> {
    let mut fds = libc::pollfd {
        fd: libc::STDIN_FILENO,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd for the duration of the call.
    let n = unsafe { libc::poll(&mut fds, 1, ms) };
    if n > 0 && fds.revents & libc::POLLIN != 0 {
        Some(true)
    } else if n > 0 {
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
    let mut raw = saved.clone();
    raw.local_flags
        .remove(LocalFlags::ICANON | LocalFlags::ECHO);
    termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw).ok()?;
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = Arc::clone(&stop);
    let reader = std::thread::spawn(move || {
        let mut b = [0u8; 1];
        let mut input = std::io::stdin();
        while !stopped.load(Ordering::SeqCst) {
            match readable(100) {
                Some(true) => {}
                Some(false) => continue,
                None => break,
            }
            if stopped.load(Ordering::SeqCst) {
                break;
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
        stop,
        reader: Some(reader),
    })
}
