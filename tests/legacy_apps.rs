//! Apps modelled on what people pushed to Stackato in 2012–2015 (issue 13): Django 1.11 and
//! Bottle on Python 2.7, Dancer on Perl, Sinatra with its gems in bundler's `vendor/cache`,
//! Express 3 without a Procfile. `run` stages each (hooks, pip, npm, bundler, cpanm) and it
//! answers HTTP; Django on the postgresql service through `DATABASE_URL` too. What cannot run
//! here stops with its cause and fix: Python 2 code run on Python 3, a Gemfile pinning an
//! absent Ruby.
//!
//! The Python 2 tests need a Python 2.7 interpreter (pyenv's, `python2.7` on PATH, …); Debian 12
//! has none, so where none is found they print a loud SKIP and pass, in CI too (the issue allows
//! that for Python 2 only). The others need Debian packages that .ci/run installs; without them
//! they skip loudly, and fail under `STACKATO_LOCAL_REQUIRE_SERVICES=1` (CI).

use std::path::Path;
use std::time::Duration;

use crate::common::http::http_get;
use crate::common::project::Project;
use crate::common::python27::need_python27;
use crate::common::session::Stream;
use crate::common::*;

/// How long a first staging may take (virtualenv, pip and npm from their registries, uWSGI
/// compiling).
const STAGING: Duration = Duration::from_secs(900);
const CTRL_C: Duration = Duration::from_secs(30);

/// Whether `perl` loads `module`; like [`require`]: a loud SKIP, or a failure in CI.
fn require_perl_module(module: &str, package: &str) -> bool {
    let loads = std::process::Command::new("perl")
        .args([&format!("-M{module}"), "-e1"])
        .output()
        .is_ok_and(|o| o.status.success());
    if loads {
        return true;
    }
    let test = std::thread::current().name().unwrap_or("?").to_string();
    if std::env::var("STACKATO_LOCAL_REQUIRE_SERVICES").as_deref() == Ok("1") {
        panic!("{test}: Perl's {module} is not installed (apt-get install {package})");
    }
    skip(&format!(
        "{test}: Perl's {module} is not installed (apt-get install {package})"
    ));
    false
}

fn fixture(name: &str) -> Project {
    let from = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let p = Project::new(&[]);
    copy_tree(&from, &p.app, &|_, n| {
        n == "__pycache__" || n == "node_modules" || n == ".stackato-local" || n.ends_with(".pyc")
    });
    p
}

#[test]
fn django_1_11_on_python_27_migrates_in_its_hook_and_answers_from_wsgi_py() {
    if !need_python27() {
        return;
    }
    let p = fixture("py2-django");
    let mut s = p.run(&[]);
    let port = s.ready("web.0", STAGING);
    s.assert_out_has("with Python 2.7");
    s.assert_out_has("pip install -r requirements.txt");
    // The hook ran in the staged copy, with the virtualenv's Python 2.7 and Django first.
    s.assert_out_has("-----> python manage.py migrate --noinput");
    s.assert_out_has("Applying auth.0001_initial... OK");
    let (status, body) = http_get(port, "/");
    assert_eq!(status, 200, "{body}\n{}", s.dump());
    assert!(
        body.starts_with("django 1.11.29 on Python 2.7.")
            && body.contains("sqlite database")
            && !body.contains(", 0 migrations applied"),
        "{body}\n{}",
        s.dump()
    );
    // The sqlite file the hook made is in the staged copy, never in the checkout.
    assert!(!p.app.join("db.sqlite3").exists());
    assert!(
        p.state("apps/py2-django/g1/staging/app/db.sqlite3")
            .is_file()
    );
    s.interrupt(CTRL_C);
}

/// The same app bound to a postgresql service, as such apps were: its settings read the
/// platform's `DATABASE_URL`, and the hook migrates that database.
#[test]
fn django_1_11_on_python_27_uses_the_postgresql_service_from_database_url() {
    if !(need_python27() && require_all(&["postgres", "initdb", "pg_isready"])) {
        return;
    }
    let p = fixture("py2-django").with_services(&["mydb"]);
    let yml = std::fs::read_to_string(p.app.join("stackato.yml")).expect("stackato.yml");
    p.edit(
        "stackato.yml",
        &format!("{yml}services:\n  mydb: postgresql\n"),
    );
    // psycopg2-binary 2.8.6: the last release with Python 2.7 wheels.
    p.edit(
        "requirements.txt",
        "Django==1.11.29\npsycopg2-binary==2.8.6\n",
    );
    let mut s = p.run(&[]);
    let port = s.ready("web.0", STAGING);
    s.assert_out_has("Applying auth.0001_initial... OK");
    let (status, body) = http_get(port, "/");
    assert_eq!(status, 200, "{body}\n{}", s.dump());
    assert!(
        body.starts_with("django 1.11.29 on Python 2.7.")
            && body.contains("postgresql database")
            && !body.contains(", 0 migrations applied"),
        "{body}\n{}",
        s.dump()
    );
    assert!(
        !p.state("apps/py2-django/g1/staging/app/db.sqlite3")
            .exists()
    );
    s.interrupt(CTRL_C);
}

#[test]
fn bottle_on_python_2_without_a_runtime_runs_with_runtime_python27_on_stackato_uwsgi() {
    if !need_python27() {
        return;
    }
    let p = fixture("py2-bottle-wsgi");
    let mut s = p.run(&["--runtime", "python27"]);
    let port = s.ready("web.0", STAGING);
    s.assert_err_has("framework python detected (found wsgi.py)");
    let (status, body) = http_get(port, "/");
    assert_eq!(status, 200, "{body}\n{}", s.dump());
    assert!(body.starts_with("bottle 0.12.25 on Python 2.7."), "{body}");
    // urllib2 and the print statement: Python 2 code, running as it did.
    assert_eq!(
        http_get(port, "/motd"),
        (200, "the message of the day, read by urllib2\n".to_string()),
        "{}",
        s.dump()
    );
    s.wait_for(Stream::Out, "GET / on Python 2.7", STAGING);
    s.interrupt(CTRL_C);
}

/// The same undeclared Bottle app without `--runtime python27` runs on Python 3 (this tool's
/// choice for undeclared apps): it cannot load, and the run ends with the cause and the fix.
/// Needs no Python 2, so CI runs it.
#[test]
fn bottle_on_python_2_run_on_python_3_stops_naming_runtime_python27() {
    if !require("python3") {
        return;
    }
    let p = fixture("py2-bottle-wsgi");
    let mut s = p.run(&["--no-watch"]);
    s.expect_exit(7, STAGING);
    s.assert_err_has("SyntaxError");
    s.assert_err_has(
        "help: this is Python 2 code: add `runtime: python27` to stackato.yml, or run with `--runtime python27`",
    );
}

#[test]
fn dancer_app_starts_from_app_psgi_with_its_makefile_pl() {
    if !(require_all(&["perl", "cpanm", "uwsgi_psgi|plackup"])
        && require_perl_module("Dancer", "libdancer-perl"))
    {
        return;
    }
    let p = fixture("perl-dancer");
    let mut s = p.run(&[]);
    let port = s.ready("web.0", STAGING);
    s.assert_out_has("-----> cpanm --installdeps . (Makefile.PL)");
    let (status, body) = http_get(port, "/");
    assert_eq!(status, 200, "{body}\n{}", s.dump());
    assert!(
        body.starts_with("Dancer 1.") && body.contains(" on Perl 5."),
        "{body}\n{}",
        s.dump()
    );
    assert_eq!(
        http_get(port, "/hello/bob"),
        (200, "Dancer says hi to bob\n".to_string()),
        "{}",
        s.dump()
    );
    // Dancer serves public/ itself.
    assert_eq!(
        http_get(port, "/hello.txt"),
        (200, "hello from public\n".to_string())
    );
    s.interrupt(CTRL_C);
}

/// The Dancer scaffold as generated, without an app.psgi: `framework: start-file: bin/app.pl`
/// makes `$STACKATO_UWSGI` serve the scaffold's own script, as the platform did.
#[test]
fn dancer_scaffold_without_app_psgi_starts_from_its_start_file() {
    if !(require_all(&["perl", "cpanm", "uwsgi_psgi|plackup"])
        && require_perl_module("Dancer", "libdancer-perl"))
    {
        return;
    }
    let p = fixture("perl-dancer");
    std::fs::remove_file(p.app.join("app.psgi")).expect("remove app.psgi");
    p.edit(
        "stackato.yml",
        "name: perl-dancer\nframework:\n  type: perl\n  start-file: bin/app.pl\nmem: 128M\n",
    );
    let mut s = p.run(&[]);
    let port = s.ready("web.0", STAGING);
    assert_eq!(
        http_get(port, "/hello/ann"),
        (200, "Dancer says hi to ann\n".to_string()),
        "{}",
        s.dump()
    );
    s.interrupt(CTRL_C);
}

#[test]
fn sinatra_app_gets_a_gem_that_only_its_vendor_cache_has() {
    if !(require_all(&["ruby", "bundle"]) && ruby_has_sinatra()) {
        return;
    }
    let p = fixture("sinatra-vendored");
    let mut s = p.run(&[]);
    let port = s.ready("web.0", STAGING);
    s.assert_out_has("-----> bundle install --local");
    // stackato-greeter exists nowhere but in vendor/cache (rubygems.org never had it).
    s.assert_out_has("Installing stackato-greeter 0.1.0");
    // ... into the project's state dir, not into the system's gems.
    assert!(
        p.state("gems/gems/stackato-greeter-0.1.0/lib/stackato/greeter.rb")
            .is_file(),
        "{}",
        s.dump()
    );
    assert_eq!(
        http_get(port, "/hi/bob"),
        (200, "greeter 0.1.0 says hi to bob\n".to_string()),
        "{}",
        s.dump()
    );
    // The gem's executable is on the app's PATH (the state dir's gems/bin), as for `exec`.
    let e = p.cmd(&["exec", "--", "stackato-greet", "ann"]);
    assert_eq!(e.code, Some(0), "{}", e.dump());
    assert_eq!(
        e.stdout.trim(),
        "greeter 0.1.0 says hi to ann",
        "{}",
        e.dump()
    );
    let (status, body) = http_get(port, "/");
    assert_eq!(status, 200, "{body}\n{}", s.dump());
    assert!(
        body.starts_with("sinatra ") && body.ends_with("says hello from sinatra-vendored\n"),
        "{body}"
    );
    // Bundler did not write the distribution's gems into the app's vendor/cache.
    let cached: Vec<String> = std::fs::read_dir(p.app.join("vendor/cache"))
        .expect("vendor/cache")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(cached, ["stackato-greeter-0.1.0.gem"]);
    s.interrupt(CTRL_C);
}

/// A Gemfile of the Heroku era pins `ruby '1.9.3'`: bundler refuses any other Ruby, so the
/// run stops at staging with that cause and both fixes, not a story about missing gems.
#[test]
fn a_gemfile_pinning_an_absent_ruby_stops_with_the_cause_and_the_fix() {
    if !(require_all(&["ruby", "bundle"]) && ruby_has_sinatra()) {
        return;
    }
    let p = fixture("sinatra-vendored");
    let gemfile = std::fs::read_to_string(p.app.join("Gemfile")).expect("Gemfile");
    p.edit("Gemfile", &gemfile.replacen("\n", "\nruby '1.9.3'\n", 1));
    let mut s = p.run(&[]);
    s.expect_exit(6, STAGING);
    s.assert_err_has("(`ruby '1.9.3'`) asks for a Ruby this machine does not have");
    s.assert_err_has("rbenv install 1.9.3");
    s.assert_err_has("remove or relax that line");
}

#[test]
fn express_3_app_without_a_procfile_starts_with_node_server_js() {
    if !require_all(&["node", "npm"]) {
        return;
    }
    let p = fixture("node-express");
    let mut s = p.run(&[]);
    let port = s.ready("web.0", STAGING);
    s.assert_out_has("-----> npm install");
    let (status, body) = http_get(port, "/");
    assert_eq!(status, 200, "{body}\n{}", s.dump());
    assert_eq!(
        body,
        "express 3.21.2 says hello from node-express\n",
        "{}",
        s.dump()
    );
    // node_modules is made in the staged copy, not in the checkout.
    assert!(!p.app.join("node_modules").exists());
    assert!(
        p.state("apps/node-express/g1/staging/app/node_modules/express")
            .is_dir()
    );
    s.interrupt(CTRL_C);
}

/// Whether Ruby has Sinatra (Debian's ruby-sinatra); like [`require`].
fn ruby_has_sinatra() -> bool {
    let ok = std::process::Command::new("ruby")
        .args(["-e", "require 'sinatra/base'"])
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        return true;
    }
    let test = std::thread::current().name().unwrap_or("?").to_string();
    if std::env::var("STACKATO_LOCAL_REQUIRE_SERVICES").as_deref() == Ok("1") {
        panic!("{test}: Ruby's sinatra is not installed (apt-get install ruby-sinatra)");
    }
    skip(&format!(
        "{test}: Ruby's sinatra is not installed (apt-get install ruby-sinatra)"
    ));
    false
}
