//! An app's routes behind the local router: the host names it answers to
//! (`<first label>.localhost`, and its manifest URLs' own hosts) and its URIs with the
//! router's port. Pure functions of the manifest's URLs.

/// The host part of a manifest URL (`blog.example.com`, `http://blog.example.com:80/x`):
/// lower-case, without scheme, port, path or trailing dot; `None` when it is not a host name
/// made of DNS labels (a wildcard, spaces, an empty label).
pub(crate) fn host_of(url: &str) -> Option<String> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
    let host = match host.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => h,
        _ => host,
    };
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    let ok = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    ok.then_some(host)
}

/// The local name of a manifest URL: its first label under `localhost`.
pub(crate) fn local_host(url: &str) -> Option<String> {
    let host = host_of(url)?;
    let label = host.split('.').next()?;
    Some(format!("{label}.localhost"))
}

/// Every host name the router sends to `app`: `<first label>.localhost` of each URL, then the
/// URLs' own hosts (for `/etc/hosts` entries), without repeats. `urls`: the app's URLs
/// (`platform::env::uris`).
pub(crate) fn hosts(urls: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let locals = urls.iter().filter_map(|u| local_host(u));
    let fulls = urls.iter().filter_map(|u| host_of(u));
    for h in locals.chain(fulls) {
        if !out.contains(&h) {
            out.push(h);
        }
    }
    out
}

/// The app's URIs as the router serves them (`VCAP_APPLICATION.uris`): `<label>.localhost:PORT`
/// for each URL, in order, without repeats.
pub(crate) fn uris(urls: &[String], port: u16) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for h in urls.iter().filter_map(|u| local_host(u)) {
        let u = format!("{h}:{port}");
        if !out.contains(&u) {
            out.push(u);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_gives_its_host_and_local_name() {
        assert_eq!(
            host_of("Blog.Example.com").as_deref(),
            Some("blog.example.com")
        );
        assert_eq!(
            host_of("http://user@blog.example.com:8080/path?q").as_deref(),
            Some("blog.example.com")
        );
        assert_eq!(
            host_of("blog.example.com.").as_deref(),
            Some("blog.example.com")
        );
        assert_eq!(
            local_host("blog.example.com").as_deref(),
            Some("blog.localhost")
        );
        for bad in [
            "",
            "*.example.com",
            "a b.com",
            "a..b",
            "../etc",
            "é.com",
            ":80",
        ] {
            assert_eq!(local_host(bad), None, "{bad}");
        }
    }

    #[test]
    fn hosts_put_the_local_names_first_without_repeats() {
        let urls = vec![
            "blog.stackato.local".to_string(),
            "blog.example.com".to_string(),
            "www.example.com".to_string(),
        ];
        assert_eq!(
            hosts(&urls),
            [
                "blog.localhost",
                "www.localhost",
                "blog.stackato.local",
                "blog.example.com",
                "www.example.com"
            ]
        );
        assert_eq!(
            uris(&urls, 5000),
            ["blog.localhost:5000", "www.localhost:5000"]
        );
    }
}
