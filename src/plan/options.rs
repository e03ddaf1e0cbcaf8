//! The options that shape an environment request, shared by every command, and the one
//! function that turns them into a [`Request`].

use std::path::PathBuf;

use crate::env::build::Request;
use crate::platform::env::{DbUrlRule, Facts, SqliteEnv};
use crate::platform::layout::Place;
use crate::platform::profile::Profile;
use crate::services::lifecycle::DbMode;

/// What `run`, `exec`/`ssh`, `env` and the shell hook ask of the environment, whatever their
/// flags are called.
#[derive(Debug, Clone)]
pub(crate) struct EnvOptions {
    /// `--profile` (`None`: the manifest's default).
    pub profile: Option<Profile>,
    /// `--env KEY=VALUE`, in order.
    pub cli: Vec<(String, String)>,
    /// `--env-file FILE`, after the default `.env` files.
    pub env_files: Vec<PathBuf>,
    /// `--no-dotenv`.
    pub no_dotenv: bool,
    /// `--db`: how relational services run.
    pub db: DbMode,
    /// `--skip-service NAME`.
    pub skip: Vec<String>,
    /// Where `$HOME` is (the checkout, or a generation of the staged copy).
    pub place: Place,
    /// `env --database-url`.
    pub db_url_rule: DbUrlRule,
    /// `env --sqlite-env`.
    pub sqlite_env: SqliteEnv,
}

impl Default for EnvOptions {
    fn default() -> Self {
        let r = Request::default();
        EnvOptions {
            profile: r.profile,
            cli: r.cli,
            env_files: r.env_files,
            no_dotenv: r.no_dotenv,
            db: r.db,
            skip: r.skip,
            place: r.place,
            db_url_rule: r.db_url_rule,
            sqlite_env: r.sqlite_env,
        }
    }
}

impl EnvOptions {
    /// The request for `app` (`None`: the only one, or the first in start order), its
    /// `instance`, or its staging.
    pub(crate) fn request(&self, app: Option<&str>, instance: u32, staging: bool) -> Request {
        Request {
            app: app.map(str::to_string),
            instance,
            staging,
            place: self.place,
            profile: self.profile,
            cli: self.cli.clone(),
            env_files: self.env_files.clone(),
            no_dotenv: self.no_dotenv,
            db_url_rule: self.db_url_rule,
            sqlite_env: self.sqlite_env,
            db: self.db,
            skip: self.skip.clone(),
        }
    }
}

/// The machine's facts (user, time, PATH…) for a target URL (`--target`).
pub(crate) fn facts(target_url: &str) -> Facts {
    let target = crate::manifest::Target {
        url: target_url.to_string(),
        random_word: String::new(),
    };
    crate::env::build::facts(&target.target_base())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_options_make_the_default_request() {
        let r = EnvOptions::default().request(None, 0, false);
        let d = Request::default();
        assert_eq!(format!("{r:?}"), format!("{d:?}"));
    }

    #[test]
    fn every_option_reaches_the_request() {
        let o = EnvOptions {
            profile: Some(Profile::V2),
            cli: vec![("A".into(), "1".into())],
            env_files: vec![PathBuf::from("x.env")],
            no_dotenv: true,
            db: DbMode::Sqlite,
            skip: vec!["db".into()],
            place: Place::Staged { generation: 3 },
            db_url_rule: DbUrlRule::AnyDatabase,
            sqlite_env: SqliteEnv::Url,
        };
        let r = o.request(Some("web"), 2, true);
        assert_eq!(r.app.as_deref(), Some("web"));
        assert_eq!((r.instance, r.staging), (2, true));
        assert_eq!(r.place, Place::Staged { generation: 3 });
        assert_eq!(r.profile, Some(Profile::V2));
        assert_eq!(r.cli, o.cli);
        assert_eq!(r.env_files, o.env_files);
        assert!(r.no_dotenv);
        assert_eq!(r.db, DbMode::Sqlite);
        assert_eq!(r.skip, o.skip);
        assert_eq!(r.db_url_rule, DbUrlRule::AnyDatabase);
        assert_eq!(r.sqlite_env, SqliteEnv::Url);
    }
}
