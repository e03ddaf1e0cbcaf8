//! Where everything a run prints goes: children's output to stdout as whole lines behind a
//! coloured `name |` prefix (optionally timestamped), the tool's own phase messages to
//! stderr. Lines from different processes never interleave inside a line: each batch of
//! complete lines is written with one call while holding stdout.

use std::io::Write;
use std::sync::Mutex;
use std::time::Instant;

use anstyle::{AnsiColor, Style};

const PALETTE: &[AnsiColor] = &[
    AnsiColor::Cyan,
    AnsiColor::Yellow,
    AnsiColor::Green,
    AnsiColor::Magenta,
    AnsiColor::Blue,
    AnsiColor::BrightCyan,
    AnsiColor::BrightYellow,
    AnsiColor::BrightGreen,
    AnsiColor::BrightMagenta,
    AnsiColor::BrightBlue,
];

/// The printer shared by staging and the supervisor.
#[derive(Debug)]
pub(crate) struct Output {
    pub color_out: bool,
    pub color_err: bool,
    pub timestamps: bool,
    /// Width the prefixes are padded to.
    width: Mutex<usize>,
    started: Instant,
    stdout: Mutex<()>,
}

/// A prefix, rendered once.
#[derive(Debug, Clone)]
pub(crate) struct Prefix {
    rendered: Vec<u8>,
    timestamps: bool,
}

impl Output {
    pub(crate) fn new(color_out: bool, color_err: bool, timestamps: bool) -> Output {
        Output {
            color_out,
            color_err,
            timestamps,
            width: Mutex::new(6),
            started: Instant::now(),
            stdout: Mutex::new(()),
        }
    }

    /// Make later prefixes at least as wide as `name`, so columns line up.
    pub(crate) fn reserve(&self, name: &str) {
        if let Ok(mut w) = self.width.lock() {
            *w = (*w).max(name.chars().count());
        }
    }

    /// A prefix `name |`, coloured by `index`.
    pub(crate) fn prefix(&self, name: &str, index: usize) -> Prefix {
        let width = self.width.lock().map(|w| *w).unwrap_or(6);
        let text = format!("{name:<width$} | ");
        let rendered = if self.color_out {
            let style = Style::new().fg_color(Some(PALETTE[index % PALETTE.len()].into()));
            format!("{}{text}{}", style.render(), style.render_reset()).into_bytes()
        } else {
            text.into_bytes()
        };
        Prefix {
            rendered,
            timestamps: self.timestamps,
        }
    }

    /// Append `line` (without its newline) with `prefix` to `buf`.
    pub(crate) fn format_line(&self, prefix: &Prefix, line: &[u8], buf: &mut Vec<u8>) {
        if prefix.timestamps {
            buf.extend_from_slice(clock().as_bytes());
            buf.push(b' ');
        }
        buf.extend_from_slice(&prefix.rendered);
        buf.extend_from_slice(line);
        buf.push(b'\n');
    }

    /// Write formatted lines to stdout in one call.
    pub(crate) fn write(&self, bytes: &[u8]) {
        let _g = self.stdout.lock();
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(bytes);
        let _ = out.flush();
    }

    /// One prefixed line.
    pub(crate) fn line(&self, prefix: &Prefix, text: &str) {
        let mut buf = Vec::with_capacity(text.len() + 32);
        self.format_line(prefix, text.as_bytes(), &mut buf);
        self.write(&buf);
    }

    /// A phase message on stderr: `==> text (1.2 s)`.
    pub(crate) fn phase(&self, text: &str) {
        let t = self.started.elapsed().as_secs_f64();
        let arrow = if self.color_err {
            let s = Style::new().bold().fg_color(Some(AnsiColor::Green.into()));
            format!("{}==>{}", s.render(), s.render_reset())
        } else {
            "==>".into()
        };
        err_line(&self.stdout, &format!("{arrow} {text} [{t:.2}s]"));
    }

    /// A message from the tool on stderr (warnings, notes).
    pub(crate) fn note(&self, text: &str) {
        err_line(&self.stdout, text);
    }

    /// An error line on stderr, in red when colour is on.
    pub(crate) fn error(&self, text: &str) {
        let label = if self.color_err {
            let s = Style::new().bold().fg_color(Some(AnsiColor::Red.into()));
            format!("{}error:{}", s.render(), s.render_reset())
        } else {
            "error:".into()
        };
        err_line(&self.stdout, &format!("{label} {text}"));
    }
}

/// `text` and a newline on stderr in one write (stderr is unbuffered: `writeln!` would make a
/// write per piece, and another writer's output could land between them), holding `lock`.
fn err_line(lock: &Mutex<()>, text: &str) {
    let mut line = String::with_capacity(text.len() + 1);
    line.push_str(text);
    line.push('\n');
    let _g = lock.lock();
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
}

/// `HH:MM:SS.mmm` (UTC).
fn clock() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let s = now.as_secs() % 86_400;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        s / 3600,
        (s / 60) % 60,
        s % 60,
        now.subsec_millis()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_line_up_and_lines_end_with_newline() {
        let o = Output::new(false, false, false);
        o.reserve("worker.10");
        let p = o.prefix("web.0", 0);
        let mut buf = Vec::new();
        o.format_line(&p, b"hello", &mut buf);
        assert_eq!(String::from_utf8(buf).unwrap(), "web.0     | hello\n");
    }
}
