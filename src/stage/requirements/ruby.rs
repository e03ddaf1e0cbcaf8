//! Ruby at staging: `bundle install --local` when the app has a Gemfile (gems from the app's
//! `vendor/cache` and those installed on this machine, e.g. Debian's `ruby-*` packages; never
//! fetched), skipped with a note, and recorded as skipped, when bundler is missing.

use std::process::Command;

use crate::stage::requirements::{requirement_error, user_home};
use crate::stage::{Outcome, Skip, StageError, Stager};

/// Gems that give rackup or Sinatra a web server under bundler.
const SERVER_GEMS: [&str; 5] = ["webrick", "puma", "thin", "unicorn", "passenger"];

pub fn install(s: &Stager<'_>, outcome: &mut Outcome) -> Result<(), StageError> {
    let Some(bundle) = crate::programs::find("bundle") else {
        let msg = "bundle install skipped: bundler is not installed (`apt-get install ruby-bundler`); the next run installs the Gemfile once it is".to_string();
        s.out.line(&s.prefix, &format!("-----> {msg}"));
        outcome.notes.push(msg);
        outcome.skipped.push(Skip::new("bundle install", "bundle"));
        return Ok(());
    };
    s.out.line(&s.prefix, "-----> bundle install --local");
    let mut c = Command::new(bundle);
    c.args(["install", "--local"]);
    if std::env::var_os("BUNDLE_USER_HOME").is_none()
        && let Some(home) = user_home()
    {
        c.env("BUNDLE_USER_HOME", home.join(".bundle"));
    }
    let done = s.run(c);
    if !done.ended.ok() {
        return Err(requirement_error(
            "bundle install --local",
            done,
            "bundler's own message is above; gems are not fetched from rubygems.org here: put their .gem files in vendor/cache (`bundle package` where they can be fetched) or install them from your distribution (`apt-get install ruby-<gem>`)",
        ));
    }
    let gems = crate::platform::detect::gemfile_gems(&s.home);
    if !gems.iter().any(|g| SERVER_GEMS.contains(&g.as_str())) {
        let msg = "the Gemfile lists no web server gem (webrick, puma, thin): Ruby 1.9 and 2.x, the platform's, had WEBrick built in; Ruby 3 does not, so `bundle exec` finds no server: add `gem 'webrick'` to the Gemfile".to_string();
        s.out.line(&s.prefix, &format!("-----> note: {msg}"));
        outcome.notes.push(msg);
    }
    Ok(())
}
