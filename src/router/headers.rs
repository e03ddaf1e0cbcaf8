//! Header rules of the router: the request's host, hop-by-hop headers (removed both ways), the
//! forwarded headers the platform's router added, and the session-affinity cookie.

use std::borrow::Cow;

use hyper::Uri;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};

/// The affinity cookie (spec §3.2).
pub(crate) const AFFINITY: &str = "STACKATO_SESSION_AFFINITY";
/// Cookies that pin a client to an instance when a response sets one (router2g's list).
const STICKY: [&str; 3] = ["JSESSIONID", "SESSIONID", "PHPSESSID"];

/// The request's authority as written: the absolute-form target's (RFC 9112 §3.2.2) else the
/// `Host` header. `None` without either.
pub(crate) fn raw_host(uri: &Uri, headers: &HeaderMap) -> Option<HeaderValue> {
    if let Some(a) = uri.authority() {
        return HeaderValue::from_str(a.as_str()).ok();
    }
    headers.get(header::HOST).cloned()
}

/// Lower case, without `:port` and a trailing dot: `Blog.LocalHost.:8080` → `blog.localhost`.
pub(crate) fn normalize_host(raw: &str) -> Cow<'_, str> {
    let h = if raw.starts_with('[') {
        match raw.find(']') {
            Some(end) => &raw[..=end],
            None => raw,
        }
    } else {
        match raw.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => raw,
        }
    };
    let h = h.strip_suffix('.').unwrap_or(h);
    if h.bytes().any(|b| b.is_ascii_uppercase()) {
        Cow::Owned(h.to_ascii_lowercase())
    } else {
        Cow::Borrowed(h)
    }
}

/// Whether a normalised host is an IP address (`192.0.2.7`, `[2001:db8::1]`).
pub(crate) fn is_ip_literal(host: &str) -> bool {
    host.parse::<std::net::Ipv4Addr>().is_ok()
        || host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .is_some_and(|h| h.parse::<std::net::Ipv6Addr>().is_ok())
}

/// Whether a `Connection`-style header of `map` has `token` (case-insensitive).
fn has_token(map: &HeaderMap, name: &HeaderName, token: &str) -> bool {
    map.get_all(name).iter().any(|v| {
        v.to_str()
            .is_ok_and(|s| s.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    })
}

/// Whether the request asks for a protocol switch (`Upgrade` with a `Connection: upgrade`).
pub(crate) fn wants_upgrade(map: &HeaderMap) -> bool {
    map.contains_key(header::UPGRADE) && has_token(map, &header::CONNECTION, "upgrade")
}

/// Remove the hop-by-hop headers (RFC 9110 §7.6.1): `Connection` and every header it names,
/// `Keep-Alive`, `Proxy-Connection`, `TE` (except `TE: trailers` on requests, as Go's proxy
/// does), `Transfer-Encoding`, `Upgrade` and the proxy authentication headers. `Trailer` stays:
/// hyper sends trailers only when it is declared. With `upgrade`, `Upgrade` is kept and
/// `Connection: upgrade` set.
pub(crate) fn strip_hop_by_hop(map: &mut HeaderMap, upgrade: bool, request: bool) {
    if !upgrade && !map.keys().any(is_hop_by_hop) {
        // The usual case: nothing to remove (a look at each name instead of a lookup each).
        return;
    }
    let named: Vec<HeaderName> = map
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|s| s.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .collect();
    let te_trailers = request && has_token(map, &header::TE, "trailers");
    for name in named {
        if name == header::TRAILER || (upgrade && name == header::UPGRADE) {
            continue;
        }
        map.remove(&name);
    }
    for name in [
        header::CONNECTION,
        header::TE,
        header::TRANSFER_ENCODING,
        header::PROXY_AUTHORIZATION,
        header::PROXY_AUTHENTICATE,
    ] {
        map.remove(name);
    }
    map.remove("keep-alive");
    map.remove("proxy-connection");
    if upgrade {
        map.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    } else {
        map.remove(header::UPGRADE);
    }
    if te_trailers {
        map.insert(header::TE, HeaderValue::from_static("trailers"));
    }
}

/// Whether `name` is one of the hop-by-hop headers [`strip_hop_by_hop`] acts on.
fn is_hop_by_hop(name: &HeaderName) -> bool {
    name == header::CONNECTION
        || name == header::TE
        || name == header::TRANSFER_ENCODING
        || name == header::UPGRADE
        || name == header::PROXY_AUTHORIZATION
        || name == header::PROXY_AUTHENTICATE
        || name == "keep-alive"
        || name == "proxy-connection"
}

/// Add what the platform's router added: `X-Forwarded-For` (the peer appended), and when
/// absent `X-Forwarded-Proto: http`, `X-Forwarded-Host` (the original host, with its port) and
/// `X-Request-Start` (milliseconds since the epoch).
pub(crate) fn add_forwarded(
    map: &mut HeaderMap,
    peer: &HeaderValue,
    original_host: Option<&HeaderValue>,
) {
    static XFF: HeaderName = HeaderName::from_static("x-forwarded-for");
    static XFP: HeaderName = HeaderName::from_static("x-forwarded-proto");
    static XFH: HeaderName = HeaderName::from_static("x-forwarded-host");
    static XRS: HeaderName = HeaderName::from_static("x-request-start");
    let existing: Vec<&[u8]> = map.get_all(&XFF).iter().map(|v| v.as_bytes()).collect();
    let xff = if existing.is_empty() {
        peer.clone()
    } else {
        let mut joined = existing.join(&b", "[..]);
        joined.extend_from_slice(b", ");
        joined.extend_from_slice(peer.as_bytes());
        HeaderValue::from_bytes(&joined).unwrap_or_else(|_| peer.clone())
    };
    map.insert(XFF.clone(), xff);
    if !map.contains_key(&XFP) {
        map.insert(XFP.clone(), HeaderValue::from_static("http"));
    }
    if !map.contains_key(&XFH)
        && let Some(h) = original_host
    {
        map.insert(XFH.clone(), h.clone());
    }
    if !map.contains_key(&XRS) {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        map.insert(XRS.clone(), HeaderValue::from(ms));
    }
}

/// The value of our affinity cookie in the request's `Cookie` headers.
pub(crate) fn affinity_cookie(map: &HeaderMap) -> Option<String> {
    map.get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|s| s.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.split_once('=')?;
            (name.trim() == AFFINITY).then(|| value.trim().trim_matches('"').to_owned())
        })
        .filter(|v| !v.is_empty())
}

/// The `Set-Cookie` value pinning the client to `instance_id`, when it is needed: the response
/// sets a sticky session cookie (its `Secure`, `SameSite`, `Expires` are copied, `Max-Age` only
/// when ≤ 0 so a deleted session unpins too), or the request's pin was not honoured. Never when
/// the app sets our cookie itself (gorouter's `setupStickySession`).
pub(crate) fn affinity_set_cookie(
    resp: &HeaderMap,
    instance_id: &str,
    request_pin: Option<&str>,
) -> Option<HeaderValue> {
    let mut set = request_pin.is_some_and(|p| p != instance_id);
    let mut attrs = String::new();
    for v in resp.get_all(header::SET_COOKIE) {
        let Ok(s) = v.to_str() else { continue };
        let mut parts = s.split(';');
        let name = parts
            .next()
            .and_then(|p| p.split_once('='))
            .map(|(n, _)| n.trim())
            .unwrap_or("");
        if name == AFFINITY {
            return None;
        }
        if !STICKY.contains(&name) {
            continue;
        }
        set = true;
        attrs.clear();
        for attr in parts {
            let attr = attr.trim();
            let (key, value) = attr.split_once('=').unwrap_or((attr, ""));
            let key = key.trim();
            let keep = key.eq_ignore_ascii_case("secure")
                || key.eq_ignore_ascii_case("samesite")
                || key.eq_ignore_ascii_case("expires")
                || (key.eq_ignore_ascii_case("max-age")
                    && value.trim().parse::<i64>().is_ok_and(|n| n <= 0));
            if keep {
                attrs.push_str("; ");
                attrs.push_str(attr);
            }
        }
    }
    if !set
        || !instance_id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
    {
        return None;
    }
    HeaderValue::from_str(&format!(
        "{AFFINITY}={instance_id}; Path=/; HttpOnly{attrs}"
    ))
    .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_normalised() {
        assert_eq!(normalize_host("Blog.LocalHost.:8080"), "blog.localhost");
        assert_eq!(normalize_host("blog.localhost"), "blog.localhost");
        assert_eq!(normalize_host("[::1]:80"), "[::1]");
        assert_eq!(normalize_host("127.0.0.1:9"), "127.0.0.1");
        assert_eq!(normalize_host("a:b"), "a:b");
    }

    #[test]
    fn hop_by_hop_headers_go() {
        let mut m = HeaderMap::new();
        m.insert(header::CONNECTION, HeaderValue::from_static("close, X-Foo"));
        m.insert("x-foo", HeaderValue::from_static("1"));
        m.insert("x-keep", HeaderValue::from_static("1"));
        m.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        m.insert("proxy-connection", HeaderValue::from_static("keep-alive"));
        m.insert(header::TE, HeaderValue::from_static("gzip, trailers"));
        m.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        m.insert(header::TRAILER, HeaderValue::from_static("x-sum"));
        strip_hop_by_hop(&mut m, false, true);
        let mut names: Vec<&str> = m.keys().map(|k| k.as_str()).collect();
        names.sort();
        assert_eq!(names, ["te", "trailer", "x-keep"]);
        assert_eq!(
            m.get(header::TE),
            Some(&HeaderValue::from_static("trailers"))
        );

        let mut m = HeaderMap::new();
        m.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
        m.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
        assert!(wants_upgrade(&m));
        strip_hop_by_hop(&mut m, true, true);
        assert_eq!(
            m.get(header::UPGRADE),
            Some(&HeaderValue::from_static("websocket"))
        );
        assert_eq!(
            m.get(header::CONNECTION),
            Some(&HeaderValue::from_static("upgrade"))
        );
    }

    #[test]
    fn forwarded_headers_append_and_keep() {
        let peer = HeaderValue::from_static("127.0.0.1");
        let mut m = HeaderMap::new();
        m.append("x-forwarded-for", HeaderValue::from_static("1.2.3.4"));
        m.append("x-forwarded-for", HeaderValue::from_static("5.6.7.8"));
        m.insert("x-forwarded-proto", HeaderValue::from_static("https"));
        let host = HeaderValue::from_static("a.localhost:8080");
        add_forwarded(&mut m, &peer, Some(&host));
        assert_eq!(m["x-forwarded-for"], "1.2.3.4, 5.6.7.8, 127.0.0.1");
        assert_eq!(m["x-forwarded-proto"], "https");
        assert_eq!(m["x-forwarded-host"], "a.localhost:8080");
        assert!(
            m["x-request-start"]
                .to_str()
                .is_ok_and(|s| s.len() >= 13 && s.bytes().all(|b| b.is_ascii_digit()))
        );
        let mut m = HeaderMap::new();
        add_forwarded(&mut m, &peer, None);
        assert_eq!(m["x-forwarded-for"], "127.0.0.1");
        assert_eq!(m["x-forwarded-proto"], "http");
        assert!(!m.contains_key("x-forwarded-host"));
    }

    #[test]
    fn affinity_cookie_rules() {
        let mut req = HeaderMap::new();
        req.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; STACKATO_SESSION_AFFINITY=abc ; b=2"),
        );
        assert_eq!(affinity_cookie(&req).as_deref(), Some("abc"));
        assert_eq!(affinity_cookie(&HeaderMap::new()), None);

        let mut resp = HeaderMap::new();
        resp.append(
            header::SET_COOKIE,
            HeaderValue::from_static(
                "JSESSIONID=x; Path=/app; Secure; SameSite=Lax; Max-Age=3600; HttpOnly",
            ),
        );
        assert_eq!(
            affinity_set_cookie(&resp, "id1", None)
                .as_ref()
                .map(|v| v.to_str().ok()),
            Some(Some(
                "STACKATO_SESSION_AFFINITY=id1; Path=/; HttpOnly; Secure; SameSite=Lax"
            ))
        );
        let mut gone = HeaderMap::new();
        gone.append(
            header::SET_COOKIE,
            HeaderValue::from_static("PHPSESSID=; Max-Age=0"),
        );
        assert_eq!(
            affinity_set_cookie(&gone, "id1", Some("id1"))
                .as_ref()
                .map(|v| v.to_str().ok()),
            Some(Some(
                "STACKATO_SESSION_AFFINITY=id1; Path=/; HttpOnly; Max-Age=0"
            ))
        );
        // No session cookie: only a pin that was not honoured is set again.
        assert!(affinity_set_cookie(&HeaderMap::new(), "id1", None).is_none());
        assert!(affinity_set_cookie(&HeaderMap::new(), "id1", Some("id1")).is_none());
        assert!(affinity_set_cookie(&HeaderMap::new(), "id1", Some("old")).is_some());
        // The app sets ours itself: left alone.
        resp.append(
            header::SET_COOKIE,
            HeaderValue::from_static("STACKATO_SESSION_AFFINITY=mine"),
        );
        assert!(affinity_set_cookie(&resp, "id1", None).is_none());
    }
}
