//! What of the host's environment reaches the app's processes, hooks, installers and cron
//! jobs: the built (platform + user) environment plus the short [`ALLOWLIST`], as a container
//! would have; `--inherit-env` brings back the whole host environment under the built one.

use std::collections::BTreeMap;
use std::ffi::OsString;

/// How much of the host environment a process gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Host {
    /// The built environment plus [`ALLOWLIST`] (and the host's locale when the built
    /// environment sets none).
    #[default]
    Clean,
    /// The whole host environment, with the built one over it (`--inherit-env`).
    Inherit,
}

impl Host {
    /// `--inherit-env` given or not.
    pub(crate) fn from_flag(inherit_env: bool) -> Host {
        if inherit_env {
            Host::Inherit
        } else {
            Host::Clean
        }
    }
}

/// Host variables every process gets when the built environment does not set them: the
/// terminal, the time zone, who you are, and the proxies (the platform passed its DEA's
/// proxy as `http_proxy`/`https_proxy`/`no_proxy`, spec §3.2; the upper-case spellings that
/// tools also read come along). `PATH` is not here: the platform's `PATH` already ends with
/// the host's, where the runtimes live; `HOME` is always the platform's.
pub(crate) const ALLOWLIST: &[&str] = &[
    "TERM",
    "TZ",
    "USER",
    "LOGNAME",
    "http_proxy",
    "https_proxy",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
];

/// `LANG`, `LANGUAGE` and `LC_*`: the host's pass only when the built environment (the 3.x
/// profile, or the user) sets none of them.
pub(crate) fn is_locale(name: &str) -> bool {
    name == "LANG" || name == "LANGUAGE" || name.starts_with("LC_")
}

/// Whether the host's `name` reaches a clean process whose built environment sets a locale
/// variable (`built_has_locale`) or not.
pub(crate) fn passes(name: &str, built_has_locale: bool) -> bool {
    ALLOWLIST.contains(&name) || (is_locale(name) && !built_has_locale)
}

/// The complete environment of a process: `built` over the host's part of `mode`.
pub(crate) fn compose<'a>(
    built: impl IntoIterator<Item = (&'a str, &'a str)>,
    mode: Host,
) -> Vec<(OsString, OsString)> {
    compose_from(std::env::vars_os(), built, mode)
}

/// [`compose`] with the host's variables given.
pub(crate) fn compose_from<'a>(
    host: impl IntoIterator<Item = (OsString, OsString)>,
    built: impl IntoIterator<Item = (&'a str, &'a str)>,
    mode: Host,
) -> Vec<(OsString, OsString)> {
    let built: Vec<(&str, &str)> = built.into_iter().collect();
    let has_locale = built.iter().any(|(k, _)| is_locale(k));
    let mut env: BTreeMap<OsString, OsString> = host
        .into_iter()
        .filter(|(k, _)| match mode {
            Host::Inherit => true,
            Host::Clean => k.to_str().is_some_and(|k| passes(k, has_locale)),
        })
        .collect();
    for (k, v) in built {
        env.insert(k.into(), v.into());
    }
    env.into_iter().collect()
}

/// Start `cmd` from exactly [`compose`]'s environment (nothing else inherited); variables
/// the caller already set or removed on `cmd` (an installer's cache dir) stay as they were.
pub(crate) fn apply<'a>(
    cmd: &mut std::process::Command,
    built: impl IntoIterator<Item = (&'a str, &'a str)>,
    mode: Host,
) {
    let own: Vec<(OsString, Option<OsString>)> = cmd
        .get_envs()
        .map(|(k, v)| (k.to_os_string(), v.map(|v| v.to_os_string())))
        .collect();
    cmd.env_clear().envs(compose(built, mode));
    for (k, v) in own {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host() -> Vec<(OsString, OsString)> {
        [
            ("FOO_FROM_HOST", "x"),
            ("TERM", "xterm"),
            ("LANG", "de_DE.UTF-8"),
            ("LC_TIME", "de_DE.UTF-8"),
            ("HOME", "/root"),
            ("PATH", "/usr/bin"),
            ("https_proxy", "http://proxy:3128"),
        ]
        .into_iter()
        .map(|(k, v)| (k.into(), v.into()))
        .collect()
    }

    fn get(env: &[(OsString, OsString)], k: &str) -> Option<String> {
        env.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.to_string_lossy().into_owned())
    }

    #[test]
    fn clean_keeps_the_allowlist_and_the_built_environment_only() {
        let env = compose_from(
            host(),
            [("HOME", "/app/app"), ("PATH", "/venv/bin:/usr/bin")],
            Host::Clean,
        );
        assert_eq!(get(&env, "FOO_FROM_HOST"), None);
        assert_eq!(get(&env, "TERM").as_deref(), Some("xterm"));
        assert_eq!(
            get(&env, "https_proxy").as_deref(),
            Some("http://proxy:3128")
        );
        assert_eq!(get(&env, "HOME").as_deref(), Some("/app/app"));
        assert_eq!(get(&env, "PATH").as_deref(), Some("/venv/bin:/usr/bin"));
        assert_eq!(get(&env, "LC_TIME").as_deref(), Some("de_DE.UTF-8"));
    }

    #[test]
    fn a_built_locale_keeps_the_hosts_out() {
        let env = compose_from(host(), [("LANG", "en_US.UTF-8")], Host::Clean);
        assert_eq!(get(&env, "LANG").as_deref(), Some("en_US.UTF-8"));
        assert_eq!(get(&env, "LC_TIME"), None);
    }

    #[test]
    fn inherit_brings_everything_under_the_built_environment() {
        let env = compose_from(host(), [("HOME", "/app/app")], Host::Inherit);
        assert_eq!(get(&env, "FOO_FROM_HOST").as_deref(), Some("x"));
        assert_eq!(get(&env, "HOME").as_deref(), Some("/app/app"));
    }
}
