//! Node at staging: `npm install` when the app has a package.json (skipped with a note, and
//! recorded as skipped, when npm is missing), with the npm of the app's Node (the first on
//! the staging PATH: see [`crate::platform::runtime_bin`]).

use std::process::Command;

use crate::stage::requirements::{requirement_error, user_home};
use crate::stage::{Outcome, Skip, StageError, Stager};

pub(crate) fn install(s: &Stager<'_>, outcome: &mut Outcome) -> Result<(), StageError> {
    let npm = crate::platform::runtime_bin::which_in(s.env, "npm")
        .or_else(|| crate::programs::find("npm"));
    let Some(npm) = npm else {
        let msg = "npm install skipped: npm is not installed (`apt-get install npm`); the next run installs the package.json dependencies once it is".to_string();
        s.out.line(&s.prefix, &format!("-----> {msg}"));
        outcome.notes.push(msg);
        outcome.skipped.push(Skip::new("npm install", "npm"));
        return Ok(());
    };
    s.out.line(
        &s.prefix,
        &format!("-----> npm install ({})", npm.display()),
    );
    let mut c = Command::new(npm);
    c.args(["install", "--no-audit", "--no-fund"]);
    if std::env::var_os("npm_config_cache").is_none()
        && std::env::var_os("NPM_CONFIG_CACHE").is_none()
        && let Some(home) = user_home()
    {
        c.env("npm_config_cache", home.join(".npm"));
    }
    let done = s.run(c);
    if done.ended.ok() {
        Ok(())
    } else {
        Err(requirement_error(
            "npm install",
            done,
            "npm's own message is above",
        ))
    }
}
