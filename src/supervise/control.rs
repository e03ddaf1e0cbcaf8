//! The control socket `.stackato-local/run.sock` (0600): `stackato-local restart [PROCESS]`
//! from another terminal reaches the running supervisor through it. A socket left by a crashed
//! run is detected by connecting to it, not by its existence.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

use super::Event;
use crate::output::Output;

/// Listen on `path` for one-line commands (`restart [NAME]`, `ping`).
pub(super) fn listen(path: &Path, tx: mpsc::UnboundedSender<Event>, out: &Arc<Output>) {
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            out.note(&format!(
                "note: another supervisor answers on {}; `restart` will reach it, not this one",
                crate::diag::display_path(path)
            ));
            return;
        }
        let _ = std::fs::remove_file(path);
    }
    let listener = match tokio::net::UnixListener::bind(path) {
        Ok(l) => l,
        Err(e) => {
            out.note(&format!(
                "note: no control socket ({}: {e}); `stackato-local restart` will not reach this run",
                crate::diag::display_path(path)
            ));
            return;
        }
    };
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let (r, mut w) = stream.into_split();
                let mut lines = tokio::io::BufReader::new(r).lines();
                if let Ok(Some(cmd)) = lines.next_line().await {
                    let (otx, orx) = oneshot::channel();
                    let answer = if tx.send(Event::Control(cmd, otx)).is_ok() {
                        orx.await
                            .unwrap_or_else(|_| "error: the supervisor is stopping".into())
                    } else {
                        "error: the supervisor is stopping".into()
                    };
                    let _ = w.write_all(format!("{answer}\n").as_bytes()).await;
                }
            });
        }
    });
}

/// Send one command to the supervisor listening on `path` and return its answer.
pub(crate) fn send(path: &Path, cmd: &str) -> std::io::Result<String> {
    let mut s = std::os::unix::net::UnixStream::connect(path)?;
    s.set_read_timeout(Some(Duration::from_secs(10)))?;
    s.write_all(format!("{cmd}\n").as_bytes())?;
    let mut line = String::new();
    BufReader::new(s).read_line(&mut line)?;
    Ok(line.trim_end().to_string())
}
