//! Free loopback ports, chosen below the kernel's ephemeral range: a port in that range can be
//! taken at any moment by an outgoing connection, and a readiness check connecting to it while
//! nothing listens can even connect to itself (TCP simultaneous open), which looks like a
//! server answering.

use std::net::{Ipv4Addr, TcpListener};

use crate::random::Rng;

/// Where ports are chosen: from 10000 up to the start of the ephemeral range.
fn range() -> (u16, u16) {
    let low = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|t| t.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32768);
    (10000, low.max(10100))
}

/// A port that is free on 127.0.0.1 right now, below the ephemeral range when one is found
/// there (else one the OS picks). The listener is closed before returning, so a caller must
/// cope with losing a race for it.
pub(crate) fn free_port() -> std::io::Result<u16> {
    let (lo, hi) = range();
    let mut rng = crate::random::OsRng;
    for _ in 0..64 {
        let mut b = [0u8; 2];
        rng.fill(&mut b).map_err(std::io::Error::other)?;
        let port = lo + u16::from_le_bytes(b) % (hi - lo);
        if is_free(port) {
            return Ok(port);
        }
    }
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(l.local_addr()?.port())
}

/// Whether a connection from `local` to `peer` reached itself (no server: the kernel's
/// simultaneous open).
pub(crate) fn is_self_connection(local: std::net::SocketAddr, peer: std::net::SocketAddr) -> bool {
    local == peer
}

/// Whether `port` can be bound on 127.0.0.1 now.
pub(crate) fn is_free(port: u16) -> bool {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
}
