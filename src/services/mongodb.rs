//! MongoDB: `mongod` with its own data directory, on 127.0.0.1:PORT only (no unix socket).
//! The credentials' user is created (or its password updated) in the credentials' `db` at
//! every start, through the wire protocol (`OP_MSG`, a few bytes of BSON), so drivers that log
//! in with `MONGODB_URL` succeed and a wrong password is refused. Access control is not turned
//! on (with it, the first user must be an administrator in `admin`, and creating the app's
//! user would need a SCRAM login): a client that does not log in is not refused, like the
//! local memcached; the server is reachable from this machine only.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;

use crate::services::ServiceError;
use crate::services::backend::{Backend, Ctx, Probe};

pub(crate) struct Mongodb;

/// A BSON value, as far as these commands need.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Bson {
    Str(String),
    Int(i32),
    Double(f64),
    Bool(bool),
    Doc(Vec<(String, Bson)>),
    Array(Vec<Bson>),
    /// A value of a type these commands do not read.
    Other,
}

fn cstring(out: &mut Vec<u8>, s: &str) {
    out.extend(s.bytes().filter(|b| *b != 0));
    out.push(0);
}

/// Encode a document (the order of `fields` is kept: a command's name comes first).
pub(crate) fn encode(fields: &[(String, Bson)]) -> Vec<u8> {
    let mut body = Vec::new();
    for (k, v) in fields {
        let (tag, bytes) = match v {
            Bson::Str(s) => {
                let mut b = Vec::new();
                b.extend(((s.len() + 1) as i32).to_le_bytes());
                b.extend(s.as_bytes());
                b.push(0);
                (0x02, b)
            }
            Bson::Int(i) => (0x10, i.to_le_bytes().to_vec()),
            Bson::Double(d) => (0x01, d.to_le_bytes().to_vec()),
            Bson::Bool(x) => (0x08, vec![u8::from(*x)]),
            Bson::Doc(d) => (0x03, encode(d)),
            Bson::Array(a) => {
                let keyed: Vec<(String, Bson)> = a
                    .iter()
                    .enumerate()
                    .map(|(i, v)| (i.to_string(), v.clone()))
                    .collect();
                (0x04, encode(&keyed))
            }
            Bson::Other => continue,
        };
        body.push(tag);
        cstring(&mut body, k);
        body.extend(bytes);
    }
    let mut out = ((body.len() + 5) as i32).to_le_bytes().to_vec();
    out.extend(body);
    out.push(0);
    out
}

/// Decode a document's top-level fields; nested documents and arrays are decoded too, values
/// of other types become [`Bson::Other`]. `None` for malformed input.
pub(crate) fn decode(b: &[u8]) -> Option<Vec<(String, Bson)>> {
    let len = i32::from_le_bytes(b.get(..4)?.try_into().ok()?);
    let len = usize::try_from(len).ok()?;
    let doc = b.get(..len)?;
    if len < 5 || doc[len - 1] != 0 {
        return None;
    }
    let mut i = 4;
    let mut out = Vec::new();
    let le32 = |at: usize| -> Option<i32> {
        Some(i32::from_le_bytes(doc.get(at..at + 4)?.try_into().ok()?))
    };
    while i < len - 1 {
        let tag = *doc.get(i)?;
        let name_end = i + 1 + doc.get(i + 1..)?.iter().position(|c| *c == 0)?;
        let name = String::from_utf8_lossy(&doc[i + 1..name_end]).into_owned();
        let v = name_end + 1;
        let (value, size) = match tag {
            0x01 => (
                Bson::Double(f64::from_le_bytes(doc.get(v..v + 8)?.try_into().ok()?)),
                8,
            ),
            0x02 | 0x0D | 0x0E => {
                let n = usize::try_from(le32(v)?).ok()?;
                let s = doc.get(v + 4..v + 4 + n.checked_sub(1)?)?;
                (Bson::Str(String::from_utf8_lossy(s).into_owned()), 4 + n)
            }
            0x03 | 0x04 => {
                let n = usize::try_from(le32(v)?).ok()?;
                let inner = decode(doc.get(v..v + n)?)?;
                let val = if tag == 0x03 {
                    Bson::Doc(inner)
                } else {
                    Bson::Array(inner.into_iter().map(|(_, x)| x).collect())
                };
                (val, n)
            }
            0x05 => (Bson::Other, 5 + usize::try_from(le32(v)?).ok()?),
            0x06 | 0x0A | 0x7F | 0xFF => (Bson::Other, 0),
            0x07 => (Bson::Other, 12),
            0x08 => (Bson::Bool(*doc.get(v)? != 0), 1),
            0x09 | 0x11 | 0x12 => (Bson::Other, 8),
            0x10 => (Bson::Int(le32(v)?), 4),
            0x13 => (Bson::Other, 16),
            _ => return None,
        };
        out.push((name, value));
        i = v + size;
    }
    Some(out)
}

fn field<'a>(doc: &'a [(String, Bson)], name: &str) -> Option<&'a Bson> {
    doc.iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

/// A command's outcome: `Ok(reply)` when `ok` is 1, else `Err((code, errmsg))`.
fn outcome(reply: Vec<(String, Bson)>) -> Result<Vec<(String, Bson)>, (i32, String)> {
    let ok = match field(&reply, "ok") {
        Some(Bson::Double(d)) => *d == 1.0,
        Some(Bson::Int(i)) => *i == 1,
        Some(Bson::Bool(b)) => *b,
        _ => false,
    };
    if ok {
        return Ok(reply);
    }
    let code = match field(&reply, "code") {
        Some(Bson::Int(c)) => *c,
        _ => 0,
    };
    let msg = match field(&reply, "errmsg") {
        Some(Bson::Str(s)) => s.clone(),
        _ => "no error message".into(),
    };
    Err((code, msg))
}

/// Run one command (`OP_MSG`) on 127.0.0.1:`port` and read its reply document.
fn command(
    port: u16,
    cmd: &[(String, Bson)],
    timeout: Duration,
) -> std::io::Result<Vec<(String, Bson)>> {
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut s = TcpStream::connect_timeout(&addr, timeout)?;
    if let (Ok(l), Ok(p)) = (s.local_addr(), s.peer_addr())
        && crate::services::ports::is_self_connection(l, p)
    {
        return Err(bad("nothing listens yet (the connection reached itself)"));
    }
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    let doc = encode(cmd);
    let mut msg = Vec::with_capacity(doc.len() + 21);
    msg.extend(((doc.len() + 21) as i32).to_le_bytes());
    msg.extend(1i32.to_le_bytes()); // requestID
    msg.extend(0i32.to_le_bytes()); // responseTo
    msg.extend(2013i32.to_le_bytes()); // OP_MSG
    msg.extend(0u32.to_le_bytes()); // flagBits
    msg.push(0); // section kind 0: the body
    msg.extend(doc);
    s.write_all(&msg)?;
    let mut head = [0u8; 16];
    s.read_exact(&mut head)?;
    let len = i32::from_le_bytes([head[0], head[1], head[2], head[3]]);
    let op = i32::from_le_bytes([head[12], head[13], head[14], head[15]]);
    if op != 2013 || !(21..=48 << 20).contains(&len) {
        return Err(bad("not an OP_MSG reply"));
    }
    let mut rest = vec![0u8; len as usize - 16];
    s.read_exact(&mut rest)?;
    if rest.get(4) != Some(&0) {
        return Err(bad("an OP_MSG reply without a body section"));
    }
    decode(&rest[5..]).ok_or_else(|| bad("a malformed BSON reply"))
}

fn s(k: &str, v: &str) -> (String, Bson) {
    (k.to_string(), Bson::Str(v.to_string()))
}

impl Backend for Mongodb {
    fn kind(&self) -> &'static str {
        "mongodb"
    }

    fn product(&self) -> &'static str {
        "MongoDB"
    }

    fn packages(&self) -> (&'static str, &'static str, &'static str) {
        (
            "mongodb-org-server",
            "mongodb-org-server",
            "mongodb-community",
        )
    }

    fn programs(&self) -> &'static [&'static [&'static str]] {
        &[&["mongod"]]
    }

    fn initialized(&self, ctx: &Ctx<'_>) -> bool {
        ctx.paths.data.is_dir()
    }

    fn init(&self, ctx: &Ctx<'_>) -> Result<(), ServiceError> {
        ctx.paths.private_dir(&ctx.paths.data)?;
        ctx.run_as.own(&ctx.paths.data)
    }

    fn server(&self, ctx: &Ctx<'_>) -> Result<Command, ServiceError> {
        let mut c = ctx.command("mongod");
        c.arg("--dbpath")
            .arg(&ctx.paths.data)
            .args(["--bind_ip", "127.0.0.1", "--port"])
            .arg(ctx.port.to_string())
            .arg("--nounixsocket")
            .current_dir(&ctx.paths.run);
        Ok(c)
    }

    fn probe(&self, ctx: &Ctx<'_>) -> Probe {
        let ping = [("ping".to_string(), Bson::Int(1)), s("$db", "admin")];
        match command(ctx.port, &ping, Duration::from_millis(500)) {
            Ok(reply) => match outcome(reply) {
                Ok(_) => Probe::Ready,
                Err((code, msg)) => Probe::NotYet(format!("ping: {msg} (code {code})")),
            },
            Err(e) => Probe::NotYet(format!("ping on 127.0.0.1:{}: {e}", ctx.port)),
        }
    }

    fn provision(&self, ctx: &Ctx<'_>) -> Result<(), ServiceError> {
        let (user, pass, db) = (ctx.cred("username"), ctx.cred("password"), ctx.cred("db"));
        if user.is_empty() || pass.is_empty() || db.is_empty() {
            return Err(ServiceError::Setup(
                "the mongodb credentials in .stackato-local/services.json lack a username, password or db; `stackato-local services reset NAME` generates new ones".into(),
            ));
        }
        let roles = Bson::Array(vec![Bson::Doc(vec![s("role", "dbOwner"), s("db", &db)])]);
        let run = |verb: &str| {
            let cmd = [
                s(verb, &user),
                s("pwd", &pass),
                ("roles".to_string(), roles.clone()),
                s("$db", &db),
            ];
            command(ctx.port, &cmd, Duration::from_secs(30)).map_err(|e| ServiceError::Io {
                what: format!("{verb} for the application's MongoDB user"),
                source: e,
            })
        };
        // 51003: the user exists (an earlier run); its password is set again.
        let result = match outcome(run("createUser")?) {
            Err((51003, _)) => outcome(run("updateUser")?),
            other => other,
        };
        result.map(|_| ()).map_err(|(code, msg)| {
            ServiceError::Setup(format!(
                "MongoDB refused to create the application's user in database {db}: {msg} (code {code}); `stackato-local services reset NAME` starts it afresh"
            ))
        })
    }

    fn shell(&self, ctx: &Ctx<'_>) -> Option<Command> {
        // No access control: the shell needs no password (none goes on a command line).
        let bin = crate::programs::find("mongosh").or_else(|| crate::programs::find("mongo"))?;
        let mut c = Command::new(bin);
        c.args(["--host", "127.0.0.1", "--port"])
            .arg(ctx.port.to_string())
            .arg(ctx.cred("db"));
        Some(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_the_bson_spec_examples() {
        // bsonspec.org: {"hello": "world"}.
        assert_eq!(
            encode(&[s("hello", "world")]),
            b"\x16\x00\x00\x00\x02hello\x00\x06\x00\x00\x00world\x00\x00"
        );
        // {"BSON": ["awesome", 5.05, 1986]}.
        let doc = [(
            "BSON".to_string(),
            Bson::Array(vec![
                Bson::Str("awesome".into()),
                Bson::Double(5.05),
                Bson::Int(1986),
            ]),
        )];
        let want: &[u8] = b"\x31\x00\x00\x00\x04BSON\x00\x26\x00\x00\x00\x020\x00\x08\x00\x00\x00awesome\x00\x011\x00\x33\x33\x33\x33\x33\x33\x14\x40\x102\x00\xc2\x07\x00\x00\x00\x00";
        assert_eq!(encode(&doc), want);
        assert_eq!(decode(want), Some(doc.to_vec()));
    }

    #[test]
    fn replies_are_read_for_ok_code_and_message() {
        let ok = encode(&[("ok".into(), Bson::Double(1.0))]);
        assert!(outcome(decode(&ok).expect("decoded")).is_ok());
        let exists = encode(&[
            ("ok".into(), Bson::Double(0.0)),
            s("errmsg", "User \"u@db\" already exists"),
            ("code".into(), Bson::Int(51003)),
            s("codeName", "Location51003"),
        ]);
        assert_eq!(
            outcome(decode(&exists).expect("decoded")).map(|_| ()),
            Err((51003, "User \"u@db\" already exists".into()))
        );
        // Truncated or lying lengths are refused, never read past the end.
        for bad in [
            &ok[..3],
            &ok[..ok.len() - 1],
            b"\xff\xff\xff\x7f\x00",
            b"\x00\x00\x00\x00",
            b"\x05\x00\x00\x00\x01",
        ] {
            assert_eq!(decode(bad), None, "{bad:?}");
        }
    }
}
