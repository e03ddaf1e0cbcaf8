//! Perl at staging: the server `$STACKATO_UWSGI` runs (the CGI runner written for `perlcgi`;
//! for `perl`, Debian's PSGI uWSGI, else plackup with a note, else an error naming the
//! packages), then the app's modules with cpanm into the project's `perl5/` (local::lib
//! layout): `cpanfile` or `Makefile.PL` (`cpanm --installdeps .`), `requirements: cpan:`/`ppm:`
//! and a Perl app's requirements.txt. A Carton bundle (`vendor/cache`, with its
//! `modules/02packages.details.txt.gz`) is the only mirror used when the app has one, since CPAN
//! itself may be out of reach. Without cpanm the modules are skipped with a note, and recorded
//! as skipped.

use std::path::Path;
use std::process::Command;

use crate::manifest::App;
use crate::manifest::model::Web;
use crate::platform::perl::{self, PsgiServer};
use crate::platform::web;
use crate::stage::requirements::{requirement_error, user_cache};
use crate::stage::{Outcome, Skip, StageError, Stager};

/// A Carton bundle in the app: cpanm's mirror when present.
pub(crate) const BUNDLE: &str = "vendor/cache";

/// Whether staging has Perl work for the app (its server or its modules).
pub(crate) fn wanted(app: &App) -> bool {
    perl::is_perl_app(app)
}

/// Whether the app's web command runs `$STACKATO_UWSGI` (by default or by name).
fn uses_uwsgi(app: &App) -> bool {
    match &app.web {
        Web::Command(c) => c.value.contains("STACKATO_UWSGI") || c.value.contains("PROCESSES_WEB"),
        Web::Default => true,
        Web::Worker => false,
    }
}

/// The modules the app lists (`requirements: cpan:`/`ppm:`, and requirements.txt for a Perl
/// framework), and whether it has a `cpanfile` or `Makefile.PL` for `--installdeps`.
pub(crate) fn modules(app: &App, home: &Path) -> (Vec<String>, Option<&'static str>) {
    let mut mods: Vec<String> = app
        .requirements
        .cpan
        .iter()
        .chain(&app.requirements.ppm)
        .cloned()
        .collect();
    let fw = app.framework_name();
    if (web::is_perl(fw) || perl::is_cgi(fw))
        && let Ok(t) = std::fs::read_to_string(home.join("requirements.txt"))
    {
        mods.extend(
            t.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(str::to_string),
        );
    }
    let deps = ["cpanfile", "Makefile.PL"]
        .into_iter()
        .find(|f| home.join(f).is_file() && perl::is_perl_app(app));
    (mods, deps)
}

pub(crate) fn install(s: &Stager<'_>, outcome: &mut Outcome) -> Result<(), StageError> {
    let app = s.app;
    let fw = app.framework_name();
    if perl::is_cgi(fw) {
        let path = perl::runner_path(s.state.root());
        crate::state::write_atomic(&path, perl::RUNNER_TEXT.as_bytes())
            .map_err(|e| StageError::Io(e.to_string()))?;
    } else if web::is_perl(fw) && uses_uwsgi(app) {
        match perl::psgi_server() {
            PsgiServer::Uwsgi(_) => {}
            PsgiServer::Plackup(_) => {
                let msg = format!(
                    "uWSGI's PSGI plugin is not installed here ({}): $STACKATO_UWSGI serves app.psgi with plackup instead, which does not understand uWSGI options an app appends",
                    "`apt-get install uwsgi-core uwsgi-plugin-psgi`"
                );
                s.out.line(&s.prefix, &format!("-----> {msg}"));
                outcome.notes.push(msg);
            }
            PsgiServer::Missing => {
                return Err(StageError::Requirement {
                    what: "a PSGI server for $STACKATO_UWSGI".into(),
                    ended: crate::stage::run::Ended::NotStarted(
                        "neither uwsgi_psgi (uWSGI's PSGI plugin) nor plackup is installed".into(),
                    ),
                    tail: Vec::new(),
                    hint: format!("install one: `{}`", perl::PSGI_INSTALL),
                });
            }
        }
    }

    let (mods, deps) = modules(app, &s.home);
    if mods.is_empty() && deps.is_none() {
        return Ok(());
    }
    let what = deps
        .map(|d| format!("the dependencies in {d}"))
        .into_iter()
        .chain((!mods.is_empty()).then(|| super::python::shown_args(&mods)))
        .collect::<Vec<_>>()
        .join(", ");
    let Some(cpanm) = crate::programs::find("cpanm") else {
        let msg = format!(
            "Perl modules not installed (cpanm is missing; `apt-get install cpanminus`): {what}"
        );
        s.out.line(&s.prefix, &format!("-----> {msg}"));
        outcome.notes.push(msg);
        outcome
            .skipped
            .push(Skip::new("cpanm (Perl modules)", "cpanm"));
        return Ok(());
    };
    let local = perl::local_lib(s.state.root());
    let bundle = s.home.join(BUNDLE);
    let mirror = bundle
        .join("modules")
        .join("02packages.details.txt.gz")
        .is_file()
        .then(|| format!("file://{}", bundle.display()));
    let cpanm_cmd = |args: &[&str]| {
        let mut c = Command::new(&cpanm);
        // Modules already installed here (Debian's lib*-perl) are not fetched again: offline,
        // CPAN cannot be reached at all.
        c.arg("--notest")
            .arg("--quiet")
            .arg("--skip-satisfied")
            .arg("-l")
            .arg(&local);
        if let Some(m) = &mirror {
            c.args(["--mirror", m, "--mirror-only"]);
        }
        // cpanm's work dir in the user's cache, not in the app ($HOME during staging).
        if std::env::var_os("PERL_CPANM_HOME").is_none()
            && let Some(cache) = user_cache()
        {
            c.env("PERL_CPANM_HOME", cache.join("cpanm"));
        }
        c.args(args);
        c
    };
    let fail = |done: crate::stage::run::Finished, what: &str| {
        let hint = if mirror.is_some() {
            format!("cpanm's own message is above; only the Carton bundle in {BUNDLE} was used")
        } else {
            "cpanm's own message is above (CPAN must be reachable, or vendor the modules with `carton bundle` into vendor/cache)".to_string()
        };
        requirement_error(what, done, &hint)
    };
    if let Some(m) = &mirror {
        s.out.line(
            &s.prefix,
            &format!("-----> cpanm uses the Carton bundle {BUNDLE} only ({m})"),
        );
    }
    if let Some(d) = deps {
        s.out
            .line(&s.prefix, &format!("-----> cpanm --installdeps . ({d})"));
        let done = s.run(cpanm_cmd(&["--installdeps", "."]));
        if !done.ended.ok() {
            return Err(fail(done, &format!("cpanm --installdeps . ({d})")));
        }
    }
    if !mods.is_empty() {
        if !app.requirements.ppm.is_empty() {
            outcome.notes.push(
                "requirements: ppm (ActivePerl PPM) no longer exists; installed with cpanm".into(),
            );
        }
        s.out.line(
            &s.prefix,
            &format!("-----> cpanm {}", super::python::shown_args(&mods)),
        );
        // Names are data: `--` ends cpanm's options, so none is taken for one.
        let refs: Vec<&str> = std::iter::once("--")
            .chain(mods.iter().map(String::as_str))
            .collect();
        let done = s.run(cpanm_cmd(&refs));
        if !done.ended.ok() {
            return Err(fail(done, "cpanm"));
        }
    }
    Ok(())
}
