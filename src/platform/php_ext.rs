//! The PHP extensions a PHP app's database services need (mysqli/pdo_mysql for `mysql`,
//! pgsql/pdo_pgsql for `postgresql`), which this machine's `php` lacks, and the Debian 12 package
//! that adds them; and Debian 12's names for the old `php5-*` packages of `requirements:`.
//! `doctor` fails, `check` warns and `run` notes at its start (one call each).

use std::sync::OnceLock;

use crate::diag::Span;
use crate::manifest::App;

/// A service a PHP app binds whose client extension `php` does not load.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Missing {
    pub app: String,
    /// The service's name and its span in stackato.yml.
    pub service: String,
    pub at: Span,
    pub kind: &'static str,
    /// The extensions any one of which would do (`mysqli/pdo_mysql`).
    pub extensions: &'static str,
    /// The Debian 12 package that adds them.
    pub package: &'static str,
}

impl Missing {
    /// "PHP has no mysqli/pdo_mysql (apt-get install php-mysql)" with what needs it.
    pub(crate) fn message(&self) -> String {
        format!(
            "{}: PHP has no {} (apt-get install {}): the app binds {} service \"{}\" and its database calls fail with HTTP 500 ({})",
            self.app,
            self.extensions,
            self.package,
            self.kind,
            self.service,
            if self.kind == "mysql" {
                "`Class \"mysqli\" not found`"
            } else {
                "`Call to undefined function pg_connect()`"
            }
        )
    }

    pub(crate) fn hint(&self) -> String {
        format!(
            "install it with `sudo apt-get install {}` (Fedora: `sudo dnf install {}`)",
            self.package,
            if self.package == "php-mysql" {
                "php-mysqlnd"
            } else {
                "php-pgsql"
            }
        )
    }
}

/// Service type → (extensions any of which serve it, Debian 12 package).
const NEEDS: &[(&str, &[&str], &str, &str)] = &[
    (
        "mysql",
        &["mysqli", "pdo_mysql", "mysqlnd"],
        "mysqli/pdo_mysql",
        "php-mysql",
    ),
    (
        "postgresql",
        &["pgsql", "pdo_pgsql"],
        "pgsql/pdo_pgsql",
        "php-pgsql",
    ),
];

/// The modules `php -m` lists, lower-cased (`None`: no `php`); asked once per process.
fn modules() -> Option<&'static [String]> {
    static MODULES: OnceLock<Option<Vec<String>>> = OnceLock::new();
    MODULES
        .get_or_init(|| {
            let php = crate::programs::find("php")?;
            let mut c = std::process::Command::new(php);
            c.arg("-m");
            let o = crate::process::output(&mut c, crate::process::Tie::Probe).ok()?;
            if !o.status.success() {
                return None;
            }
            Some(
                String::from_utf8_lossy(&o.stdout)
                    .lines()
                    .map(|l| l.trim().to_ascii_lowercase())
                    .filter(|l| !l.is_empty() && !l.starts_with('['))
                    .collect(),
            )
        })
        .as_deref()
}

/// The database services of a PHP app whose extension `php` lacks (none for other apps, or
/// without a `php`: that is `doctor`'s PHP line).
pub(crate) fn missing(app: &App) -> Vec<Missing> {
    if app.framework_name() != Some("php") {
        return Vec::new();
    }
    let wanted: Vec<_> = app
        .services
        .iter()
        .filter_map(|s| {
            let kind = s.kind.as_ref()?;
            let need = NEEDS.iter().find(|n| n.0 == kind.value)?;
            Some((s, need))
        })
        .collect();
    if wanted.is_empty() {
        return Vec::new();
    }
    let Some(loaded) = modules() else {
        return Vec::new();
    };
    wanted
        .into_iter()
        .filter(|(_, (_, exts, _, _))| !exts.iter().any(|e| loaded.iter().any(|m| m == e)))
        .map(|(s, (kind, _, extensions, package))| Missing {
            app: app.name.value.clone(),
            service: s.name.value.clone(),
            at: s.name.span,
            kind,
            extensions,
            package,
        })
        .collect()
}

/// `doctor`'s lines: (ok, label, detail, Debian package to install when not ok), one per
/// database service of a PHP app.
pub(crate) fn doctor_lines(app: &App) -> Vec<(bool, String, String, Option<&'static str>)> {
    let missing = missing(app);
    let mut out = Vec::new();
    for s in &app.services {
        let Some(kind) = s.kind.as_ref() else {
            continue;
        };
        let Some(need) = NEEDS.iter().find(|n| n.0 == kind.value) else {
            continue;
        };
        if app.framework_name() != Some("php") || modules().is_none() {
            continue;
        }
        let label = format!("PHP {} for {} ({})", need.2, app.name.value, s.name.value);
        match missing.iter().find(|m| m.service == s.name.value) {
            Some(m) => out.push((
                false,
                label,
                format!(
                    "PHP has no {} (apt-get install {})",
                    m.extensions, m.package
                ),
                Some(m.package),
            )),
            None => out.push((true, label, "loaded".to_string(), None)),
        }
    }
    out
}

/// Debian 12's name for an old Ubuntu `php5-*` package of `requirements: ubuntu:`
/// (`php5-mysql` → `php-mysql`); `None` when the name is not an old PHP 5 one.
pub(crate) fn debian12_name(old: &str) -> Option<String> {
    let ext = old.strip_prefix("php5-")?;
    Some(match ext {
        "mysqlnd" | "mysql" => "php-mysql".into(),
        "pgsql" => "php-pgsql".into(),
        "cli" | "common" => "php-cli".into(),
        "fpm" => "php-fpm".into(),
        // Built into PHP 8 (json) or gone from Debian (mcrypt: PECL).
        "json" => return Some("(built into PHP 8: nothing to install)".into()),
        "mcrypt" => return Some("(no Debian 12 package: `pecl install mcrypt`)".into()),
        other => format!("php-{other}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_php5_packages_map_to_debian_12() {
        assert_eq!(debian12_name("php5-mysql").as_deref(), Some("php-mysql"));
        assert_eq!(debian12_name("php5-gd").as_deref(), Some("php-gd"));
        assert_eq!(debian12_name("php5-pgsql").as_deref(), Some("php-pgsql"));
        assert_eq!(debian12_name("php-gd"), None);
        assert_eq!(debian12_name("libxml2"), None);
    }
}
