//! Perl's servers here: what `$STACKATO_UWSGI` runs for `perl` (Debian's uWSGI with its PSGI
//! plugin, else plackup) and for `perlcgi` (stackato-local's CGI runner,
//! `templates/perlcgi_runner.pl`, which takes uWSGI's CGI options), where staged modules live
//! (`perl5/`, local::lib layout) and whether `.` goes into `@INC`.

use std::path::{Path, PathBuf};

use crate::manifest::App;
use crate::platform::layout::Layout;

/// Debian's uWSGI with the PSGI plugin (`uwsgi-plugin-psgi`: a `uwsgi-core` named so that it
/// loads the plugin).
pub(crate) const UWSGI_PSGI: &str = "uwsgi_psgi";

/// The install command for a PSGI server.
pub(crate) const PSGI_INSTALL: &str =
    "apt-get install uwsgi-core uwsgi-plugin-psgi (or libplack-perl for plackup)";

/// Whether Debian's Plack (libplack-perl) is installed: plackup and Plack.pm need no cpanm.
pub(crate) fn debian_plack() -> bool {
    Path::new("/usr/share/perl5/Plack.pm").is_file()
}

/// The CGI runner's text, written into the state dir at staging.
pub(crate) const RUNNER_TEXT: &str = include_str!("../../templates/perlcgi_runner.pl");

/// A `perlcgi` app.
pub(crate) fn is_cgi(framework: Option<&str>) -> bool {
    matches!(framework, Some("perlcgi"))
}

/// A Perl app: a Perl framework or Perl modules to install.
pub(crate) fn is_perl_app(app: &App) -> bool {
    let fw = app.framework_name();
    crate::platform::web::is_perl(fw)
        || is_cgi(fw)
        || !app.requirements.cpan.is_empty()
        || !app.requirements.ppm.is_empty()
}

/// The project's Perl modules (`cpanm -l`), in the state dir: `lib/perl5`, `bin`.
pub(crate) fn local_lib(state: &Path) -> PathBuf {
    state.join("perl5")
}

/// Where staging writes the CGI runner.
pub(crate) fn runner_path(state: &Path) -> PathBuf {
    state.join("perlcgi-runner.pl")
}

/// What serves `app.psgi` here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PsgiServer {
    /// uWSGI with its PSGI plugin: `$STACKATO_UWSGI` as on the platform.
    Uwsgi(PathBuf),
    /// No PSGI uWSGI: Plack's `plackup` (uWSGI options an app appends are not understood).
    Plackup(PathBuf),
    Missing,
}

pub(crate) fn psgi_server() -> PsgiServer {
    use crate::programs::find as which;
    if let Some(p) = which(UWSGI_PSGI) {
        PsgiServer::Uwsgi(p)
    } else if let Some(p) = which("plackup") {
        PsgiServer::Plackup(p)
    } else {
        PsgiServer::Missing
    }
}

/// The program (and its first arguments) that takes the uWSGI arguments of a `perl` or
/// `perlcgi` app's `$STACKATO_UWSGI`; `None` when plackup stands in (it takes its own).
pub(crate) fn uwsgi_program(framework: Option<&str>, layout: &Layout) -> Option<String> {
    if is_cgi(framework) {
        let perl = crate::programs::find("perl")
            .map_or_else(|| "perl".to_string(), |p| p.display().to_string());
        return Some(format!("{perl} {}", runner_path(&layout.state).display()));
    }
    match psgi_server() {
        PsgiServer::Uwsgi(p) => Some(p.display().to_string()),
        PsgiServer::Plackup(_) => None,
        PsgiServer::Missing => Some(UWSGI_PSGI.to_string()),
    }
}

/// `$STACKATO_UWSGI` of a `perl`/`perlcgi` app for `run`: `args` are the uWSGI arguments with
/// the instance's values in.
pub(crate) fn uwsgi_command(app: &App, layout: &Layout, port: u16, args: &str) -> String {
    if let Some(p) = uwsgi_program(app.framework_name(), layout) {
        return format!("{p} {args}");
    }
    let start = crate::platform::web::start_file(app).unwrap_or_else(|| "app.psgi".into());
    let plackup = match psgi_server() {
        PsgiServer::Plackup(p) => p.display().to_string(),
        _ => "plackup".into(),
    };
    format!(
        "{plackup} --host {} --port {port} --app {}",
        crate::platform::web::LOCAL_HOST,
        layout.home.join(start).display()
    )
}

/// Whether the app gets `.` in `@INC` (`PERL_USE_UNSAFE_INC=1`): Perl 5.26 removed it, and the
/// platform's Perls (5.14, 5.16) had it. So: a Perl app with no runtime (the platform's
/// default was `perl514`) or a `perl5NN` runtime with NN < 26.
pub(crate) fn dot_in_inc(app: &App) -> bool {
    if !is_perl_app(app) {
        return false;
    }
    let Some(rt) = app.runtime.as_deref() else {
        return true;
    };
    let rt = rt.to_ascii_lowercase();
    let Some(v) = rt.strip_prefix("perl") else {
        return false;
    };
    let v = v.trim_start_matches(['-', '_', '.']);
    let digits: String = v.chars().filter(char::is_ascii_digit).collect();
    // perl514, perl516, perl-5.20, perl5.36 → minor 14, 16, 20, 36; a bare "perl" → the default.
    if digits.is_empty() {
        return true;
    }
    let Some(minor) = digits.strip_prefix('5') else {
        return false;
    };
    minor
        .get(..2)
        .unwrap_or(minor)
        .parse::<u32>()
        .ok()
        .is_none_or(|m| m < 26)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(fw: &str, runtime: Option<&str>) -> (tempfile::TempDir, crate::manifest::Manifest) {
        let d = tempfile::tempdir().expect("tempdir");
        let rt = runtime.map_or(String::new(), |r| format!("runtime: {r}\n"));
        std::fs::write(
            d.path().join("stackato.yml"),
            format!("name: a\nframework:\n  type: {fw}\n{rt}"),
        )
        .expect("write");
        let opts = crate::manifest::LoadOptions::new(d.path());
        let mut ask = |_: &str| None;
        let m = crate::manifest::load(&opts, &mut ask)
            .expect("loads")
            .manifest;
        (d, m)
    }

    #[test]
    fn dot_is_in_inc_for_the_platforms_perls_only() {
        for (fw, rt, want) in [
            ("perl", None, true),
            ("perlcgi", None, true),
            ("perl", Some("perl514"), true),
            ("perl", Some("perl516"), true),
            ("perl", Some("perl-5.20"), true),
            ("perl", Some("perl526"), false),
            ("perl", Some("perl5.36"), false),
            ("perl", Some("perl"), true),
            ("perl", Some("python27"), false),
            ("python", None, false),
        ] {
            let (_d, m) = app(fw, rt);
            assert_eq!(dot_in_inc(&m.apps[0]), want, "{fw} {rt:?}");
        }
    }
}
