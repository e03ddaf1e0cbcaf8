//! The key vocabulary of stackato.yml and manifest.yml, as the 3.2.4 client knew it.

/// Top-level keys of the single stackato.yml app that have a Cloud Foundry counterpart (they
/// stay at the app's level of manifest.yml).
const WITH_CF_COUNTERPART: &[&str] = &[
    "name",
    "instances",
    "mem",
    "memory",
    "disk",
    "disk_quota",
    "framework",
    "services",
    "subdomain",
    "command",
    "app-dir",
    "url",
    "urls",
    "depends-on",
    "buildpack",
    "stack",
    "host",
    "domain",
    "placementzone",
    "timeout",
    "docker_image",
    "no-route",
];

/// Keys with no Cloud Foundry counterpart: they live under the app's `stackato:` mapping.
pub(crate) const STACKATO_ONLY: &[&str] = &[
    "processes",
    "min_version",
    "env",
    "ignores",
    "hooks",
    "cron",
    "requirements",
    "drain",
    "placement-zone",
    "description",
    "sso-enabled",
    "autoscale",
    "force-war-unpacking",
];

/// Every top-level key that describes the single stackato.yml app (the client's `Decompose`
/// list): the ones with a Cloud Foundry counterpart, then the Stackato-only ones.
pub(crate) fn stackato_keys() -> impl Iterator<Item = &'static str> + Clone {
    WITH_CF_COUNTERPART.iter().chain(STACKATO_ONLY).copied()
}

/// Whether `k` is one of [`stackato_keys`].
pub(crate) fn is_stackato_key(k: &str) -> bool {
    WITH_CF_COUNTERPART.contains(&k) || STACKATO_ONLY.contains(&k)
}

pub(crate) const FRAMEWORK_KEYS: &[&str] = &[
    "name",
    "type",
    "runtime",
    "start-file",
    "document-root",
    "home-dir",
    "app-server",
];

pub(crate) const HOOK_KEYS: &[&str] = &[
    "pre-push",
    "pre-staging",
    "post-staging",
    "pre-running",
    "legacy-running",
];

pub(crate) const ENV_ATTRS: &[&str] = &[
    "default", "required", "inherit", "prompt", "choices", "hidden", "scope",
];

pub(crate) const REQUIREMENT_KEYS: &[&str] = &[
    "pip", "pypm", "ppm", "cpan", "ubuntu", "redhat", "unix", "staging", "running",
];
pub(crate) const OS_REQUIREMENT_KEYS: &[&str] = &["ubuntu", "redhat", "unix"];

pub(crate) const SERVICE_KEYS: &[&str] = &[
    "type",
    "label",
    "vendor",
    "version",
    "provider",
    "plan",
    "tags",
    "parameters",
    "credentials",
    "syslog",
];

pub(crate) const AUTOSCALE_KEYS: &[&str] = &["enabled", "instances", "cpu"];

/// Service types a Stackato target offered (core and common add-ons). Used, as the client used
/// the target's list, to tell `name: type` from the legacy `type: name`.
pub(crate) const SERVICE_TYPES: &[&str] = &[
    "mysql",
    "postgresql",
    "redis",
    "mongodb",
    "memcached",
    "rabbitmq",
    "rabbitmq3",
    "filesystem",
    "harbor",
    "user-provided",
    "oracledb",
    "mssql2012",
    "mssql2014",
    "elasticsearch",
    "couchdb",
    "activemq",
];

/// Frameworks of the 3.x legacy buildpack (plus `buildpack` from 2.x).
pub(crate) const FRAMEWORKS: &[&str] = &[
    "aspdotnet",
    "django",
    "generic",
    "grails",
    "java_ee",
    "java_web",
    "lift",
    "node",
    "otp_rebar",
    "perl",
    "perlcgi",
    "php",
    "play",
    "python",
    "rack",
    "rails3",
    "sinatra",
    "spring",
    "standalone",
    "wsgi",
    "buildpack",
    "ruby",
    "java",
];

/// The client's boolean words.
pub(crate) fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "y" | "Y" | "yes" | "Yes" | "YES" | "true" | "True" | "TRUE" | "on" | "On" | "ON" => {
            Some(true)
        }
        "n" | "N" | "no" | "No" | "NO" | "false" | "False" | "FALSE" | "off" | "Off" | "OFF" => {
            Some(false)
        }
        _ => None,
    }
}

pub(crate) fn is_service_type(s: &str) -> bool {
    SERVICE_TYPES.contains(&s)
}
