//! The router's own answers: small HTML pages for 400 (two Host headers), 404 (unknown host),
//! 405 (CONNECT), 502 (the instance failed mid-request) and 503 (nothing ready in time, or the
//! app is down), naming the app and instance and, only when allowed, the instance's last lines
//! of output.

use std::fmt::Write as _;

use hyper::header::{self, HeaderValue};
use hyper::{Response, StatusCode};

use super::body::RespBody;
use super::table::Instance;

/// Lines of an instance's output a page shows at most.
const TAIL_LINES: usize = 20;
/// The header naming the router's error (gorouter's `X-Cf-RouterError`).
pub(crate) const ERROR_HEADER: &str = "x-stackato-local-router-error";

/// What went wrong, as the error header says it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Why {
    UnknownRoute,
    NoInstance,
    EndpointFailure,
    Method,
    BadRequest,
}

/// A page: `status`, the app (if known), the instance (if any), one sentence of what
/// happened; the instance's tail only when `show_tail`.
pub(crate) fn page(
    status: StatusCode,
    failure: Why,
    app: Option<&str>,
    inst: Option<&Instance>,
    what: &str,
    show_tail: bool,
) -> Response<RespBody> {
    let title = format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    let mut html = String::with_capacity(1024);
    html.push_str("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>");
    html.push_str(&escape(&title));
    html.push_str("</title></head>\n<body>\n<h1>");
    html.push_str(&escape(&title));
    html.push_str("</h1>\n<p>");
    html.push_str(&escape(what));
    html.push_str("</p>\n");
    if let Some(app) = app {
        let _ = writeln!(html, "<p>App: <b>{}</b></p>", escape(app));
    }
    if let Some(inst) = inst {
        let _ = writeln!(
            html,
            "<p>Instance: <b>{}</b> (port {})</p>",
            escape(&inst.label),
            inst.port
        );
        if show_tail {
            let tail = (inst.tail)();
            let skip = tail.len().saturating_sub(TAIL_LINES);
            if !tail.is_empty() {
                let _ = writeln!(html, "<p>Its last lines of output:</p>");
                html.push_str("<pre>");
                for line in &tail[skip..] {
                    html.push_str(&escape(&plain(line)));
                    html.push('\n');
                }
                html.push_str("</pre>\n");
            }
        }
    }
    html.push_str("<p><small>stackato-local router</small></p>\n</body></html>\n");
    let mut resp = Response::new(RespBody::Full(Some(html.into())));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    let code = match failure {
        Why::UnknownRoute => Some("unknown_route"),
        Why::NoInstance => Some("no_instance"),
        Why::EndpointFailure => Some("endpoint_failure"),
        Why::Method | Why::BadRequest => None,
    };
    if let Some(code) = code {
        h.insert(ERROR_HEADER, HeaderValue::from_static(code));
    }
    if failure == Why::Method {
        h.insert(
            header::ALLOW,
            HeaderValue::from_static("GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, TRACE"),
        );
    }
    resp
}

/// A line of output without its terminal escape sequences (colours), cut at 2000 characters.
fn plain(line: &str) -> String {
    let mut out = String::with_capacity(line.len().min(2000));
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if out.len() >= 2000 {
            out.push('…');
            break;
        }
        if c == '\u{1b}' {
            // CSI: ESC [ parameters… final byte (@ to ~); other escapes: ESC and one char.
            if chars.next_if_eq(&'[').is_some() {
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            } else {
                chars.next();
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// HTML-escape text (also for attribute values).
pub(crate) fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\t' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tails_lose_their_colours() {
        assert_eq!(plain("\u{1b}[31;1mError\u{1b}[0m: <x>"), "Error: <x>");
        assert_eq!(plain(&"y".repeat(3000)).chars().count(), 2001);
    }

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<script>\"a\" & 'b'</script>\u{1b}"),
            "&lt;script&gt;&quot;a&quot; &amp; &#39;b&#39;&lt;/script&gt;\u{fffd}"
        );
    }
}
