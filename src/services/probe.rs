//! Protocol-level readiness checks over loopback TCP, with short timeouts. No client crates:
//! a few bytes of each protocol are enough to know a server answers.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::time::Duration;

use crate::services::backend::Probe;

const TIMEOUT: Duration = Duration::from_millis(500);

fn connect(port: u16) -> Result<TcpStream, Probe> {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let s = TcpStream::connect_timeout(&addr, TIMEOUT)
        .map_err(|e| Probe::NotYet(format!("connect 127.0.0.1:{port}: {e}")))?;
    if let (Ok(l), Ok(p)) = (s.local_addr(), s.peer_addr())
        && crate::services::ports::is_self_connection(l, p)
    {
        return Err(Probe::NotYet(format!(
            "127.0.0.1:{port}: nothing listens yet (the connection reached itself)"
        )));
    }
    let _ = s.set_read_timeout(Some(TIMEOUT));
    let _ = s.set_write_timeout(Some(TIMEOUT));
    Ok(s)
}

fn read_some(s: &mut TcpStream, want: usize) -> Result<Vec<u8>, Probe> {
    let mut buf = vec![0u8; want];
    let mut got = 0;
    while got < want {
        match s.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => {
                got += n;
                if buf[..got].contains(&b'\n') {
                    break;
                }
            }
            Err(e) => return Err(Probe::NotYet(format!("read: {e}"))),
        }
    }
    buf.truncate(got);
    Ok(buf)
}

/// MySQL/MariaDB: the server speaks first, a greeting packet with protocol version 10.
pub(crate) fn mysql(port: u16) -> Probe {
    let mut s = match connect(port) {
        Ok(s) => s,
        Err(p) => return p,
    };
    let mut head = [0u8; 5];
    match s.read_exact(&mut head) {
        Ok(()) if head[4] == 10 => Probe::Ready,
        // An error packet (0xff) still proves a live server, e.g. "too many connections".
        Ok(()) if head[4] == 0xff => Probe::Ready,
        Ok(()) => Probe::NotYet(format!("unexpected greeting byte {:#x}", head[4])),
        Err(e) => Probe::NotYet(format!("no greeting: {e}")),
    }
}

/// Redis: `AUTH` then `PING`; `+PONG` means ready, `-LOADING` not yet.
pub(crate) fn redis(port: u16, password: &str) -> Probe {
    let mut s = match connect(port) {
        Ok(s) => s,
        Err(p) => return p,
    };
    let cmd = if password.is_empty() {
        "PING\r\n".to_string()
    } else {
        format!(
            "*2\r\n$4\r\nAUTH\r\n${}\r\n{password}\r\n*1\r\n$4\r\nPING\r\n",
            password.len()
        )
    };
    if let Err(e) = s.write_all(cmd.as_bytes()) {
        return Probe::NotYet(format!("write: {e}"));
    }
    let mut all = Vec::new();
    for _ in 0..4 {
        match read_some(&mut s, 256) {
            Ok(b) if b.is_empty() => break,
            Ok(b) => all.extend(b),
            Err(p) => return p,
        }
        let text = String::from_utf8_lossy(&all);
        if text.contains("+PONG") {
            return Probe::Ready;
        }
        if text.contains("-LOADING") {
            return Probe::NotYet("loading its data".into());
        }
        if text.contains("-WRONGPASS") || text.contains("-ERR") {
            return Probe::NotYet(text.trim().to_string());
        }
    }
    Probe::NotYet(format!(
        "unexpected answer {:?}",
        String::from_utf8_lossy(&all)
    ))
}

/// memcached: `version` → `VERSION x.y.z`.
pub(crate) fn memcached(port: u16) -> Probe {
    let mut s = match connect(port) {
        Ok(s) => s,
        Err(p) => return p,
    };
    if let Err(e) = s.write_all(b"version\r\n") {
        return Probe::NotYet(format!("write: {e}"));
    }
    match read_some(&mut s, 64) {
        Ok(b) if b.starts_with(b"VERSION") => Probe::Ready,
        Ok(b) => Probe::NotYet(format!(
            "unexpected answer {:?}",
            String::from_utf8_lossy(&b)
        )),
        Err(p) => p,
    }
}

/// PostgreSQL: an SSLRequest is answered with one byte, `N` or `S`, by a listening server.
/// (Whether it accepts queries yet is checked with `pg_isready` where available.)
pub(crate) fn postgres_listening(port: u16) -> Probe {
    let mut s = match connect(port) {
        Ok(s) => s,
        Err(p) => return p,
    };
    if let Err(e) = s.write_all(&[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]) {
        return Probe::NotYet(format!("write: {e}"));
    }
    let mut b = [0u8; 1];
    match s.read_exact(&mut b) {
        Ok(()) if b[0] == b'N' || b[0] == b'S' => Probe::Ready,
        Ok(()) => Probe::NotYet(format!("unexpected answer {:#x}", b[0])),
        Err(e) => Probe::NotYet(format!("no answer: {e}")),
    }
}

/// AMQP 0-9-1: after the protocol header the server sends `Connection.Start`, a method frame
/// (type 1) on channel 0.
pub(crate) fn amqp(port: u16) -> Probe {
    let mut s = match connect(port) {
        Ok(s) => s,
        Err(p) => return p,
    };
    if let Err(e) = s.write_all(b"AMQP\x00\x00\x09\x01") {
        return Probe::NotYet(format!("write: {e}"));
    }
    let mut head = [0u8; 7];
    match s.read_exact(&mut head) {
        Ok(()) if head[0] == 1 && head[1] == 0 && head[2] == 0 => Probe::Ready,
        Ok(()) => Probe::NotYet(format!("unexpected answer {head:?}")),
        Err(e) => Probe::NotYet(format!("no Connection.Start: {e}")),
    }
}
