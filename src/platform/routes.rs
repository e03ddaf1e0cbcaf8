//! The apps' routes behind the local router: the host names each answers to
//! (`<first label>.localhost` of its URLs, `<name>.localhost`, and its URLs' own hosts; a
//! name two apps share goes to the first in start order) and its URIs with the router's
//! port. Pure functions of the manifest's URLs.

use std::collections::{HashMap, HashSet};

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
    if host.parse::<std::net::Ipv4Addr>().is_ok() {
        return None;
    }
    let label = host.split('.').next()?;
    Some(format!("{label}.localhost"))
}

/// The names the router gives one app (see [`names`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Names {
    /// `<first label>.localhost` of its URLs that no app before it has.
    pub labels: Vec<String>,
    /// `<app name>.localhost`, when no app before it has that name.
    pub by_name: Option<String>,
    /// Its URLs' own host names (for `/etc/hosts` entries).
    pub fulls: Vec<String>,
    /// Local names of its URLs that an app before it has: (name, that app).
    pub shared: Vec<(String, String)>,
    /// URLs that are not host names the router can serve (a wildcard, non-ASCII).
    pub unusable: Vec<String>,
}

impl Names {
    /// Every host name the router sends to the app, its URLs' labels first.
    pub(crate) fn hosts(&self) -> Vec<String> {
        let mut seen = HashSet::new();
        self.labels
            .iter()
            .chain(&self.by_name)
            .chain(&self.fulls)
            .filter(|h| seen.insert(*h))
            .cloned()
            .collect()
    }

    /// The app's URIs as the router serves them (`VCAP_APPLICATION.uris`):
    /// `<label>.localhost:PORT` for each URL of its own, else `<name>.localhost:PORT`.
    pub(crate) fn uris(&self, port: u16) -> Vec<String> {
        let own: Vec<&String> = if self.labels.is_empty() {
            self.by_name.iter().collect()
        } else {
            self.labels.iter().collect()
        };
        own.into_iter().map(|h| format!("{h}:{port}")).collect()
    }
}

/// The router's names for each app that has URLs, apps in start order as `(name, urls)`: a
/// local name two apps' URLs share goes to the first one; each app is also
/// `<name>.localhost` when that is free, so every app has a name a browser can open.
pub(crate) fn names(apps: &[(&str, Vec<String>)]) -> Vec<Names> {
    // Local name -> the app that has it (a manifest may have tens of thousands of URLs).
    let mut taken: HashMap<String, String> = HashMap::new();
    let mut all = Vec::new();
    for (name, urls) in apps {
        let mut n = Names::default();
        let mut fulls = HashSet::new();
        for u in urls {
            match (local_host(u), host_of(u)) {
                (Some(l), Some(full)) => {
                    match taken.get(&l) {
                        Some(other) if other != name => {
                            n.shared.push((l.clone(), other.clone()));
                        }
                        Some(_) => {}
                        None => {
                            taken.insert(l.clone(), (*name).to_string());
                            n.labels.push(l);
                        }
                    }
                    if fulls.insert(full.clone()) {
                        n.fulls.push(full);
                    }
                }
                (None, Some(full)) => {
                    if fulls.insert(full.clone()) {
                        n.fulls.push(full);
                    }
                }
                _ => n.unusable.push(u.clone()),
            }
        }
        all.push(n);
    }
    // Names by app name come after every URL's: a URL label always wins over an app's name.
    for ((name, urls), n) in apps.iter().zip(all.iter_mut()) {
        if urls.is_empty() {
            continue;
        }
        let Some(l) = local_host(&name.to_ascii_lowercase()) else {
            continue;
        };
        if !n.labels.contains(&l) && !taken.contains_key(&l) {
            taken.insert(l.clone(), (*name).to_string());
            n.by_name = Some(l);
        }
    }
    all
}

/// [`names`] of the manifest's apps (start order, URLs as `platform::env::uris` gives them),
/// by app name.
pub(crate) fn of_manifest(
    manifest: &crate::manifest::model::Manifest,
    domain: &str,
) -> Vec<(String, Names)> {
    let apps: Vec<(&str, Vec<String>)> = manifest
        .start_order()
        .into_iter()
        .map(|a| (a.name.value.as_str(), super::env::uris(a, domain)))
        .collect();
    let names = names(&apps);
    apps.iter()
        .map(|(n, _)| (*n).to_string())
        .zip(names)
        .collect()
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
    fn each_app_gets_the_names_no_app_before_it_has() {
        let apps = vec![
            (
                "alpha",
                vec!["WWW.EXAMPLE.ORG".to_string(), "api.example.com".to_string()],
            ),
            (
                "beta",
                vec![
                    "www.example.com".to_string(),
                    "api.example.org".to_string(),
                    "*.example.net".to_string(),
                ],
            ),
            (
                "gamma",
                vec!["gamma.stackato.local".to_string(), "127.0.0.1".to_string()],
            ),
            ("worker", vec![]),
        ];
        let n = names(&apps);
        assert_eq!(n[0].labels, ["www.localhost", "api.localhost"]);
        assert_eq!(n[0].by_name.as_deref(), Some("alpha.localhost"));
        assert_eq!(n[0].uris(80), ["www.localhost:80", "api.localhost:80"]);
        assert!(n[1].labels.is_empty());
        assert_eq!(
            n[1].shared,
            [
                ("www.localhost".to_string(), "alpha".to_string()),
                ("api.localhost".to_string(), "alpha".to_string())
            ]
        );
        assert_eq!(n[1].unusable, ["*.example.net"]);
        assert_eq!(
            n[1].uris(80),
            ["beta.localhost:80"],
            "reachable by its name"
        );
        assert_eq!(
            n[1].hosts(),
            ["beta.localhost", "www.example.com", "api.example.org"]
        );
        assert_eq!(n[2].labels, ["gamma.localhost"]);
        assert_eq!(n[2].by_name, None, "its URL label is its name");
        assert_eq!(n[2].fulls, ["gamma.stackato.local", "127.0.0.1"]);
        assert_eq!(n[3], Names::default(), "no URL, no name");
    }
}
