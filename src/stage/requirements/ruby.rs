//! Ruby at staging: `bundle install --local` when the app has a Gemfile (gems from the app's
//! `vendor/cache` and those installed on this machine, e.g. Debian's `ruby-*` packages; never
//! fetched), skipped with a note, and recorded as skipped, when bundler is missing.

use std::process::Command;

use crate::stage::requirements::{requirement_error, user_home};
use crate::stage::{Outcome, Skip, StageError, Stager};

/// Gems that give rackup or Sinatra a web server under bundler.
const SERVER_GEMS: [&str; 5] = ["webrick", "puma", "thin", "unicorn", "passenger"];

pub fn install(s: &Stager<'_>, outcome: &mut Outcome) -> Result<(), StageError> {
    let Some(bundle) = crate::services::backend::which("bundle") else {
        let msg = "bundle install skipped: bundler is not installed (`apt-get install ruby-bundler`); the next run installs the Gemfile once it is".to_string();
        s.out.line(&s.prefix, &format!("-----> {msg}"));
        outcome.notes.push(msg);
        outcome.skipped.push(Skip::new("bundle install", "bundle"));
        return Ok(());
    };
    s.out.line(&s.prefix, "-----> bundle install --local");
    let mut c = Command::new(bundle);
    // `--no-cache`: with a vendor/cache, bundler otherwise copies every gem it used into it
    // and fails on the distribution's gems, which have no .gem file to copy.
    c.args(["install", "--local", "--no-cache"]);
    if std::env::var_os("BUNDLE_USER_HOME").is_none()
        && let Some(home) = user_home()
    {
        c.env("BUNDLE_USER_HOME", home.join(".bundle"));
    }
    let done = s.run(c);
    if !done.ended.ok() {
        let hint = ruby_version_refused(&done.tail).unwrap_or_else(|| "bundler's own message is above; gems are not fetched from rubygems.org here: put their .gem files in vendor/cache (`bundle package` where they can be fetched) or install them from your distribution (`apt-get install ruby-<gem>`)".to_string());
        return Err(requirement_error("bundle install --local", done, &hint));
    }
    let gems = crate::platform::detect::gemfile_gems(&s.home);
    if !gems.iter().any(|g| SERVER_GEMS.contains(&g.as_str())) {
        let msg = "the Gemfile lists no web server gem (webrick, puma, thin): Ruby 1.9 and 2.x, the platform's, had WEBrick built in; Ruby 3 does not, so `bundle exec` finds no server: add `gem 'webrick'` to the Gemfile".to_string();
        s.out.line(&s.prefix, &format!("-----> note: {msg}"));
        outcome.notes.push(msg);
    }
    Ok(())
}

/// The fix when bundler refused the Gemfile's `ruby` line ("Your Ruby version is 3.1.2, but
/// your Gemfile specified 1.9.3"): bundler runs nothing on another Ruby, so the closest-runtime
/// fallback cannot apply.
fn ruby_version_refused(tail: &[String]) -> Option<String> {
    let line = tail.iter().find_map(|l| {
        l.trim()
            .strip_prefix("Your Ruby version is ")
            .and_then(|rest| rest.split_once(", but your Gemfile specified "))
    })?;
    let (have, wants) = (line.0.trim(), line.1.trim());
    Some(format!(
        "the Gemfile's `ruby '{wants}'` line makes bundler refuse Ruby {have}, the one here: install Ruby {wants} (`rbenv install {wants}` or `mise use ruby@{wants}`) and put it first on PATH, or remove the `ruby` line from the Gemfile (code of the Ruby 1.9/2.x era often runs on Ruby 3 once the Gemfile lets it)"
    ))
}

#[cfg(test)]
mod tests {
    use super::ruby_version_refused;

    #[test]
    fn bundlers_ruby_version_refusal_names_the_gemfile_line_and_both_fixes() {
        let tail = vec![
            "Don't run Bundler as root.".to_string(),
            "Your Ruby version is 3.1.2, but your Gemfile specified 1.9.3".to_string(),
        ];
        let hint = ruby_version_refused(&tail).expect("recognised");
        assert!(hint.contains("`ruby '1.9.3'`"), "{hint}");
        assert!(hint.contains("refuse Ruby 3.1.2"), "{hint}");
        assert!(hint.contains("rbenv install 1.9.3"), "{hint}");
        assert!(ruby_version_refused(&["Could not find gem 'x'".to_string()]).is_none());
    }
}
