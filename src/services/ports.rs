//! Free loopback ports.

use std::net::{Ipv4Addr, TcpListener};

/// A port that is free on 127.0.0.1 right now (the OS picks it; the listener is closed
/// before returning, so a caller must cope with losing a race for it).
pub fn free_port() -> std::io::Result<u16> {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    Ok(l.local_addr()?.port())
}

/// Whether `port` can be bound on 127.0.0.1 now.
pub fn is_free(port: u16) -> bool {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
}
