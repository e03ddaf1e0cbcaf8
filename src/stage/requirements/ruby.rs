//! Ruby at staging: `bundle install --local` when the app has a Gemfile (gems from the app's
//! `vendor/cache` and those installed on this machine, e.g. Debian's `ruby-*` packages; never
//! fetched), skipped with a note, and recorded as skipped, when bundler is missing; with the
//! bundler of the app's Ruby (the first on the staging PATH: see
//! [`crate::platform::runtime_bin`]). A Gemfile `ruby` line that this Ruby does not satisfy
//! is reported at that line, with what to install or change.

use std::path::Path;
use std::process::Command;

use crate::stage::requirements::{requirement_error, user_home};
use crate::stage::{Outcome, Skip, StageError, Stager};

/// Gems that give rackup or Sinatra a web server under bundler.
const SERVER_GEMS: [&str; 5] = ["webrick", "puma", "thin", "unicorn", "passenger"];

pub(crate) fn install(s: &Stager<'_>, outcome: &mut Outcome) -> Result<(), StageError> {
    let bundle = crate::platform::runtime_bin::which_in(s.env, "bundle")
        .or_else(|| crate::programs::find("bundle"));
    let Some(bundle) = bundle else {
        let msg = "bundle install skipped: bundler is not installed (`apt-get install ruby-bundler`); the next run installs the Gemfile once it is".to_string();
        s.out.line(&s.prefix, &format!("-----> {msg}"));
        outcome.notes.push(msg);
        outcome.skipped.push(Skip::new("bundle install", "bundle"));
        return Ok(());
    };
    s.out.line(
        &s.prefix,
        &format!("-----> bundle install --local ({})", bundle.display()),
    );
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
        if let Some(hint) = ruby_version_hint(&done.tail, &s.home) {
            return Err(requirement_error("bundle install --local", done, &hint));
        }
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

/// When bundler stopped on the Gemfile's `ruby` line ("Your Ruby version is 3.1.2, but your
/// Gemfile specified 1.9.3"): the hint naming that line, the Ruby to install and the change
/// that would do instead.
fn ruby_version_hint(tail: &[String], home: &Path) -> Option<String> {
    let said = tail
        .iter()
        .find(|l| l.contains("Your Ruby version is") && l.contains("Gemfile specified"))?;
    let (lang, line, version) = gemfile_ruby(home);
    let at = line.map_or("the Gemfile's `ruby` line".to_string(), |(l, text)| {
        format!("Gemfile:{l} (`{text}`)")
    });
    Some(format!(
        "{at} asks for a Ruby this machine does not have ({}): {}, or remove or relax that line (e.g. `ruby '>= {}'`) to run on the installed one",
        said.trim(),
        crate::platform::runtime::install_hint(lang, version),
        version.map_or("2".to_string(), |v| v.shown())
    ))
}

/// The Gemfile's `ruby` declaration: its 1-based line and text, and its version.
fn gemfile_ruby(
    home: &Path,
) -> (
    crate::platform::runtime::Lang,
    Option<(u32, String)>,
    Option<crate::platform::runtime::Version>,
) {
    use crate::platform::runtime::{Lang, Source};
    match crate::platform::runtime::declared_in_files(Lang::Ruby, home) {
        Some(d) => {
            let line = match &d.source {
                Source::File(_, l) => Some((*l, d.text.clone())),
                _ => None,
            };
            (Lang::Ruby, line, d.version)
        }
        None => (Lang::Ruby, None, None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundlers_ruby_version_error_points_at_the_gemfile_line() {
        let d = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            d.path().join("Gemfile"),
            "source 'https://rubygems.org'\nruby '1.9.3'\ngem 'sinatra'\n",
        )
        .expect("write");
        let tail = vec!["Your Ruby version is 3.1.2, but your Gemfile specified 1.9.3".to_string()];
        let h = ruby_version_hint(&tail, d.path()).expect("a hint");
        assert!(h.contains("Gemfile:2 (`ruby '1.9.3'`)"), "{h}");
        assert!(h.contains("rbenv install 1.9.3-p551"), "{h}");
        assert!(h.contains("mise use ruby@1.9.3"), "{h}");
        assert!(h.contains("remove or relax that line"), "{h}");
        assert!(ruby_version_hint(&["Could not find gem 'x'".to_string()], d.path()).is_none());
    }
}
