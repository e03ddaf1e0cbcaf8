//! Stop requests of one command (Ctrl-C, SIGTERM, SIGHUP): one [`Stop`] handle, made by `cli`
//! and passed to whatever waits (staging, services, the trust prompt, the supervisor). The
//! signal handler only stores the first signal in an atomic of the handle and writes a byte to
//! two pipes (both async-signal-safe): a *latch*, never read, which stays readable once a stop
//! was asked for, so blocking waits `poll()` it beside their pidfd and wake at once; and a
//! *queue* of the signals themselves, read only by the supervisor's event loop, which so sees
//! every signal exactly once, also one that came before it listened.

use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicI32, Ordering};
use std::time::{Duration, Instant};

use nix::fcntl::OFlag;
use nix::sys::signal::Signal;

/// The signals that ask a command to stop.
pub(crate) const STOP_SIGNALS: [Signal; 3] = [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP];

/// A command's stop requests; cheap to clone (the clones share them). [`Stop::never`] is one
/// that is never asked (commands that leave the signals' default actions alone).
#[derive(Clone, Default)]
pub struct Stop(Option<Arc<Inner>>);

impl std::fmt::Debug for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Stop").field(&self.requested()).finish()
    }
}

/// What the handler writes to; shared with the registered handlers.
struct Pipes {
    first: AtomicI32,
    latch_r: OwnedFd,
    latch_w: OwnedFd,
    queue_r: OwnedFd,
    queue_w: OwnedFd,
}

struct Inner {
    pipes: Arc<Pipes>,
    handlers: Vec<signal_hook_registry::SigId>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // The registry drops each handler (and its share of the pipes) once no signal runs it.
        for id in self.handlers.drain(..) {
            signal_hook_registry::unregister(id);
        }
    }
}

impl Pipes {
    fn new() -> io::Result<Pipes> {
        let flags = OFlag::O_CLOEXEC | OFlag::O_NONBLOCK;
        let (latch_r, latch_w) = nix::unistd::pipe2(flags)?;
        let (queue_r, queue_w) = nix::unistd::pipe2(flags)?;
        Ok(Pipes {
            first: AtomicI32::new(0),
            latch_r,
            latch_w,
            queue_r,
            queue_w,
        })
    }

    /// The signal handler's work: an atomic and two `write(2)`s, nothing else (a full pipe
    /// drops the byte: the latch is readable anyway, and the queue holds 64 KiB of signals).
    fn deliver(&self, sig: i32) {
        let _ = self
            .first
            .compare_exchange(0, sig, Ordering::SeqCst, Ordering::SeqCst);
        let byte = u8::try_from(sig).unwrap_or(0);
        for fd in [&self.queue_w, &self.latch_w] {
            // SAFETY: write(2) of one byte from a live local to an open descriptor.
            let _ = unsafe { libc::write(fd.as_raw_fd(), (&raw const byte).cast(), 1) };
        }
    }
}

/// What a [`Stop::wait`] woke up for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Woke {
    /// The descriptor at this index is readable.
    Ready(usize),
    /// A stop was asked for.
    Stopped,
    TimedOut,
}

impl Stop {
    /// Never asked to stop.
    pub fn never() -> Stop {
        Stop(None)
    }

    /// Catch SIGINT, SIGTERM and SIGHUP into a new handle, for the rest of the command (a
    /// handle's handlers go with its last clone: the signals are then ignored, not fatal).
    pub fn install() -> io::Result<Stop> {
        let pipes = Arc::new(Pipes::new()?);
        let mut handlers = Vec::new();
        for sig in STOP_SIGNALS {
            let p = Arc::clone(&pipes);
            let n = sig as i32;
            // SAFETY: the action only touches an atomic and calls write(2), both
            // async-signal-safe; it allocates nothing and takes no lock.
            let id = unsafe { signal_hook_registry::register(n, move || p.deliver(n)) }?;
            handlers.push(id);
        }
        Ok(Stop(Some(Arc::new(Inner { pipes, handlers }))))
    }

    /// A handle no signal reaches: [`Stop::request`] asks it (unit tests).
    #[cfg(test)]
    pub(crate) fn detached() -> Stop {
        let pipes = Arc::new(Pipes::new().expect("pipes"));
        Stop(Some(Arc::new(Inner {
            pipes,
            handlers: Vec::new(),
        })))
    }

    /// Ask to stop, exactly as the signal `sig` arriving does.
    #[cfg(test)]
    pub fn request(&self, sig: Signal) {
        if let Some(i) = &self.0 {
            i.pipes.deliver(sig as i32);
        }
    }

    /// The first signal that asked us to stop, if any.
    pub fn requested(&self) -> Option<Signal> {
        let i = self.0.as_ref()?;
        Signal::try_from(i.pipes.first.load(Ordering::SeqCst)).ok()
    }

    /// Wait until one of `fds` is readable, a stop is asked for, or `timeout` (`None`: no
    /// limit) runs out; a stop asked for before the call returns at once. One `poll()`, so
    /// every one of them wakes us at once.
    pub fn wait(&self, fds: &[BorrowedFd<'_>], timeout: Option<Duration>) -> io::Result<Woke> {
        if self.requested().is_some() {
            return Ok(Woke::Stopped);
        }
        let latch = self.0.as_ref().map(|i| i.pipes.latch_r.as_fd());
        let mut pfds: Vec<libc::pollfd> = fds
            .iter()
            .chain(latch.iter())
            .map(|fd| libc::pollfd {
                fd: fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        let deadline = timeout.map(|t| Instant::now() + t);
        loop {
            let ms = match deadline {
                // Rounded up, so a wait never ends before its deadline.
                Some(d) => {
                    let left = d.saturating_duration_since(Instant::now());
                    i32::try_from(left.as_micros().div_ceil(1000)).unwrap_or(i32::MAX)
                }
                None => -1,
            };
            let len = libc::nfds_t::try_from(pfds.len()).unwrap_or(0);
            // SAFETY: `pfds` is a valid array of `len` pollfds for the duration of the call.
            let n = unsafe { libc::poll(pfds.as_mut_ptr(), len, ms) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            if n == 0 {
                return Ok(Woke::TimedOut);
            }
            if let Some(i) = pfds[..fds.len()].iter().position(|p| p.revents != 0) {
                return Ok(Woke::Ready(i));
            }
            return Ok(Woke::Stopped);
        }
    }

    /// Sleep for `d` unless a stop is asked for first; `true` when it was.
    pub fn sleep(&self, d: Duration) -> bool {
        match self.wait(&[], Some(d)) {
            Ok(Woke::Stopped) => true,
            Ok(_) => self.requested().is_some(),
            Err(_) => {
                std::thread::sleep(d);
                self.requested().is_some()
            }
        }
    }

    /// The queue's descriptor (readable while signals wait in it), for the event loop.
    pub(crate) fn queue_fd(&self) -> Option<RawFd> {
        self.0.as_ref().map(|i| i.pipes.queue_r.as_raw_fd())
    }

    /// The signals waiting in the queue, oldest first; each is returned once.
    pub(crate) fn take_queued(&self) -> Vec<Signal> {
        let Some(i) = &self.0 else {
            return Vec::new();
        };
        let mut got = Vec::new();
        let mut buf = [0u8; 64];
        loop {
            match nix::unistd::read(&i.pipes.queue_r, &mut buf) {
                Ok(0) | Err(_) => return got,
                Ok(n) => got.extend(
                    buf[..n]
                        .iter()
                        .filter_map(|b| Signal::try_from(i32::from(*b)).ok()),
                ),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_latches_wakes_every_waiter_and_is_queued_once() {
        let stop = Stop::detached();
        assert_eq!(stop.requested(), None);
        assert_eq!(
            stop.wait(&[], Some(Duration::from_millis(20))).unwrap(),
            Woke::TimedOut
        );
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let s = stop.clone();
                std::thread::spawn(move || s.wait(&[], None).unwrap())
            })
            .collect();
        stop.request(Signal::SIGINT);
        stop.request(Signal::SIGTERM);
        for w in waiters {
            assert_eq!(w.join().unwrap(), Woke::Stopped);
        }
        // The first signal counts; the latch stays set.
        assert_eq!(stop.requested(), Some(Signal::SIGINT));
        assert!(stop.sleep(Duration::from_secs(60)));
        assert_eq!(stop.take_queued(), vec![Signal::SIGINT, Signal::SIGTERM]);
        assert_eq!(stop.take_queued(), vec![], "each signal is taken once");
    }

    #[test]
    fn a_readable_descriptor_wakes_a_wait_and_never_is_never_stopped() {
        let (r, w) = nix::unistd::pipe().unwrap();
        let never = Stop::never();
        assert_eq!(
            never
                .wait(&[r.as_fd()], Some(Duration::from_millis(10)))
                .unwrap(),
            Woke::TimedOut
        );
        nix::unistd::write(&w, b"x").unwrap();
        assert_eq!(never.wait(&[r.as_fd()], None).unwrap(), Woke::Ready(0));
        assert_eq!(never.requested(), None);
        assert!(never.take_queued().is_empty());
        assert!(!never.sleep(Duration::from_millis(1)));
    }

    #[test]
    fn a_real_signal_reaches_the_handle() {
        // SIGHUP to ourselves: the handler catches it, so the test process lives.
        let stop = Stop::install().unwrap();
        nix::sys::signal::raise(Signal::SIGHUP).unwrap();
        assert_eq!(stop.wait(&[], None).unwrap(), Woke::Stopped);
        assert_eq!(stop.requested(), Some(Signal::SIGHUP));
        assert_eq!(stop.take_queued(), vec![Signal::SIGHUP]);
    }
}
