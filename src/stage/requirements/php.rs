//! PHP at staging: `composer install` when the app has a composer.json (its `scripts` run: the
//! repository's code), in the staged copy with Composer's home and cache in the user's cache
//! (never in the checkout); skipped with a note, and recorded as skipped, when Composer is
//! missing.

use std::process::Command;

use crate::manifest::App;
use crate::stage::requirements::{requirement_error, user_cache};
use crate::stage::{Outcome, Skip, StageError, Stager};

/// The command staging runs (also what `allow` shows).
pub(crate) const COMPOSER_INSTALL: &str =
    "composer install --no-interaction --no-dev --prefer-dist";

/// Whether staging runs Composer for `app` in `dir`: a composer.json, and a PHP app (or one
/// without a framework).
pub(crate) fn wanted(app: &App, dir: &std::path::Path) -> bool {
    dir.join("composer.json").is_file() && matches!(app.framework_name(), Some("php") | None)
}

pub(crate) fn install(s: &Stager<'_>, outcome: &mut Outcome) -> Result<(), StageError> {
    let Some(composer) = crate::programs::find("composer") else {
        let msg = "composer install skipped: Composer is not installed (`apt-get install composer`); the next run installs the composer.json dependencies once it is".to_string();
        s.out.line(&s.prefix, &format!("-----> {msg}"));
        outcome.notes.push(msg);
        outcome
            .skipped
            .push(Skip::new("composer install", "composer"));
        return Ok(());
    };
    s.out.line(&s.prefix, &format!("-----> {COMPOSER_INSTALL}"));
    let mut c = Command::new(composer);
    c.args(COMPOSER_INSTALL.split_whitespace().skip(1));
    if let Some(cache) = user_cache() {
        if std::env::var_os("COMPOSER_HOME").is_none() {
            c.env("COMPOSER_HOME", cache.join("composer").join("home"));
        }
        if std::env::var_os("COMPOSER_CACHE_DIR").is_none() {
            c.env("COMPOSER_CACHE_DIR", cache.join("composer"));
        }
    }
    // Staging runs as root in containers and CI; Composer refuses to run plugins as root
    // without this (it asks otherwise, and staging has no terminal).
    c.env("COMPOSER_ALLOW_SUPERUSER", "1");
    let done = s.run(c);
    if done.ended.ok() {
        Ok(())
    } else {
        Err(requirement_error(
            "composer install",
            done,
            "Composer's own message is above; packages come from the repositories composer.json names (Packagist needs the network): vendor them with a `path` repository or commit vendor/",
        ))
    }
}

/// The `url`s of the `path` repositories a composer.json names (local packages Composer
/// copies or links into vendor/; a `composer-plugin` among them runs at install).
pub(crate) fn path_repositories(json: &serde_json::Value) -> Vec<String> {
    let repos = match json.get("repositories") {
        Some(serde_json::Value::Array(a)) => a.iter().collect::<Vec<_>>(),
        Some(serde_json::Value::Object(m)) => m.values().collect(),
        _ => Vec::new(),
    };
    repos
        .into_iter()
        .filter(|r| r.get("type").and_then(|t| t.as_str()) == Some("path"))
        .filter_map(|r| r.get("url").and_then(|u| u.as_str()).map(str::to_string))
        .collect()
}

/// The scripts of a composer.json (`scripts`: event or name → command or commands), as
/// `(name, commands)`.
pub(crate) fn scripts(json: &serde_json::Value) -> Vec<(String, String)> {
    let Some(m) = json.get("scripts").and_then(|s| s.as_object()) else {
        return Vec::new();
    };
    m.iter()
        .map(|(k, v)| {
            let text = match v {
                serde_json::Value::String(s) => s.clone(),
                serde_json::Value::Array(a) => a
                    .iter()
                    .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_string))
                    .collect::<Vec<_>>()
                    .join("; "),
                other => other.to_string(),
            };
            (k.clone(), text)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_path_repositories_and_scripts() {
        let j: serde_json::Value = serde_json::from_str(
            r#"{"repositories":[{"type":"path","url":"packages/greeter"},{"type":"vcs","url":"https://x"}],
                "scripts":{"post-install-cmd":["php -r 'echo 1;'","@other"],"other":"echo hi"}}"#,
        )
        .expect("json");
        assert_eq!(path_repositories(&j), vec!["packages/greeter".to_string()]);
        assert_eq!(
            scripts(&j),
            vec![
                (
                    "post-install-cmd".to_string(),
                    "php -r 'echo 1;'; @other".to_string()
                ),
                ("other".to_string(), "echo hi".to_string()),
            ]
        );
        let obj: serde_json::Value =
            serde_json::from_str(r#"{"repositories":{"g":{"type":"path","url":"../g"}}}"#)
                .expect("json");
        assert_eq!(path_repositories(&obj), vec!["../g".to_string()]);
    }
}
