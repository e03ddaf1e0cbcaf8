//! Readiness: when a web process's next connection attempt is due (a deadline of its job, not
//! a tick), and the attempt itself, a task that reports one event: the port answered or not.

use std::time::Duration;

/// The wait before the next attempt, `waited` after the start: quick while a server usually
/// comes up, gentler after.
pub(super) fn next_attempt(waited: Duration) -> Duration {
    if waited < Duration::from_secs(2) {
        Duration::from_millis(2)
    } else {
        Duration::from_millis(25)
    }
}

/// One connection attempt to 127.0.0.1:`port`; whether a server (not the socket itself, see
/// [`crate::services::ports::is_self_connection`]) accepted it.
pub(super) async fn attempt(port: u16) -> bool {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    match tokio::net::TcpStream::connect(addr).await {
        Ok(s) => match (s.local_addr(), s.peer_addr()) {
            (Ok(l), Ok(p)) => !crate::services::ports::is_self_connection(l, p),
            _ => false,
        },
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_come_quickly_at_first_then_slower() {
        assert_eq!(next_attempt(Duration::ZERO), Duration::from_millis(2));
        assert_eq!(
            next_attempt(Duration::from_secs(3)),
            Duration::from_millis(25)
        );
    }
}
