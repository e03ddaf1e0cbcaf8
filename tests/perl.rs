//! Perl apps as the platform ran them, started by `run` and answering HTTP: a PSGI app
//! (`framework: perl`, modules from a cpanfile out of a vendored Carton bundle, a relative
//! `require` that needs `.` in `@INC`) under uWSGI's PSGI plugin and, without it, under
//! plackup; a Mojolicious::Lite app; a CGI app (`framework: perlcgi`) under the CGI runner,
//! by default and with `$STACKATO_UWSGI --cgi-index`; and `doctor` agreeing with `run`.

use std::path::Path;
use std::time::Duration;

use crate::common::http::{http_exchange, http_get};
use crate::common::project::Project;
use crate::common::session::Stream;
use crate::common::*;

const CTRL_C: Duration = Duration::from_secs(30);
const STAGING: Duration = Duration::from_secs(300);

/// A project with the fixture `tests/fixtures/<name>` as its app.
fn fixture(name: &str) -> Project {
    let p = Project::new(&[]);
    copy_tree(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures")
            .join(name),
        &p.app,
        &|_, _| false,
    );
    p
}

/// A directory holding links to `programs` only: `STACKATO_LOCAL_SERVER_PATH` for a machine
/// where only those are installed.
fn only_programs(programs: &[&str]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for p in programs {
        let found = find_program(p).unwrap_or_else(|| panic!("{p} is required"));
        std::os::unix::fs::symlink(found, d.path().join(p)).unwrap();
    }
    d
}

/// POST `body` to `path`: (status, response body).
fn http_post(port: u16, path: &str, body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.0\r\nHost: localhost\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out.split_once("\r\n\r\n").map_or("", |b| b.1).to_string();
    (status, body)
}

#[test]
fn psgi_app_runs_under_uwsgi_with_its_psgi_plugin_and_a_carton_bundle() {
    if !require_all(&["perl", "cpanm", "make", "uwsgi_psgi"]) {
        return;
    }
    let p = fixture("perl-psgi");
    let mut s = p.run(&[]);
    let port = s.ready("web.0", STAGING);
    // The cpanfile's module came from the bundle (CPAN is not reachable) into perl5/.
    s.assert_out_has("staging | -----> cpanm uses the Carton bundle vendor/cache only");
    s.assert_out_has("staging | -----> cpanm --installdeps . (cpanfile)");
    s.assert_out_has("Successfully installed Local-Greeting-0.01");
    assert!(
        p.state("perl5/lib/perl5/Local/Greeting.pm").is_file(),
        "{}",
        s.dump()
    );
    // uWSGI's PSGI plugin loaded app.psgi.
    s.wait_for(Stream::Out, "PSGI app 0", CTRL_C);
    // Local::Greeting from PERL5LIB, config.pl from `.` in @INC.
    assert_eq!(
        http_get(port, "/hi"),
        (200, "Hello, PSGI from perl-psgi at /hi\n".to_string()),
        "{}",
        s.dump()
    );
    s.interrupt(CTRL_C);
}

#[test]
fn psgi_app_falls_back_to_plackup_with_a_note_when_uwsgi_has_no_psgi_plugin() {
    if !require_all(&["perl", "cpanm", "make", "plackup"]) {
        return;
    }
    let p = fixture("perl-psgi");
    // A machine with plackup and no uwsgi_psgi.
    let path = only_programs(&["perl", "cpanm", "plackup"]);
    let mut s = p.run_env(
        &[],
        &[("STACKATO_LOCAL_SERVER_PATH", path.path().to_str().unwrap())],
    );
    let port = s.ready("web.0", STAGING);
    s.assert_out_has(
        "staging | -----> uWSGI's PSGI plugin is not installed here (`apt-get install uwsgi-core uwsgi-plugin-psgi`): $STACKATO_UWSGI serves app.psgi with plackup instead",
    );
    assert_eq!(
        http_get(port, "/plack"),
        (200, "Hello, PSGI from perl-psgi at /plack\n".to_string()),
        "{}",
        s.dump()
    );
    s.interrupt(CTRL_C);
}

#[test]
fn without_any_psgi_server_staging_stops_naming_the_packages_and_doctor_agrees() {
    if !require("perl") {
        return;
    }
    let p = fixture("perl-psgi");
    std::fs::remove_file(p.app.join("cpanfile")).unwrap();
    let path = only_programs(&["perl"]);
    let env = [("STACKATO_LOCAL_SERVER_PATH", path.path().to_str().unwrap())];
    let r = run_with(&p.app, &["run"], &env);
    assert_ne!(r.code, Some(0), "{}", r.dump());
    r.stderr_has("neither uwsgi_psgi (uWSGI's PSGI plugin) nor plackup is installed")
        .stderr_has("apt-get install uwsgi-core uwsgi-plugin-psgi");
    let d = run_with(&p.app, &["doctor"], &env);
    d.code(1);
    let lines: Vec<&str> = d.stdout.lines().collect();
    let i = lines
        .iter()
        .position(|l| l.starts_with("✘ PSGI server for perl-psgi: "))
        .unwrap_or_else(|| panic!("no ✘ PSGI server line\n{}", d.dump()));
    assert!(
        lines[i + 1].contains("sudo apt-get install libplack-perl"),
        "{}",
        d.dump()
    );
    assert!(
        d.stdout.contains("✘ cpanm: cpanm not found"),
        "{}",
        d.dump()
    );
}

#[test]
fn mojolicious_lite_app_answers() {
    if !require_all(&["perl", "cpanm", "uwsgi_psgi"]) {
        return;
    }
    let has_mojo = std::process::Command::new("perl")
        .args(["-MMojolicious::Lite", "-e1"])
        .status()
        .is_ok_and(|s| s.success());
    if !has_mojo {
        if std::env::var("STACKATO_LOCAL_REQUIRE_SERVICES").as_deref() == Ok("1") {
            panic!("Mojolicious is not installed (apt-get install libmojolicious-perl)");
        }
        skip(
            "mojolicious_lite_app_answers: Mojolicious is not installed (apt-get install libmojolicious-perl)",
        );
        return;
    }
    let p = fixture("perl-mojo");
    let mut s = p.run(&[]);
    let port = s.ready("web.0", STAGING);
    s.assert_out_has("staging | -----> cpanm --installdeps . (cpanfile)");
    let (status, body) = http_get(port, "/");
    assert_eq!(status, 200, "{body}\n{}", s.dump());
    assert!(body.starts_with("Hello from Mojolicious::Lite "), "{body}");
    assert_eq!(
        http_get(port, "/hello/stackato"),
        (200, "{\"hello\":\"stackato\"}".to_string())
    );
    s.interrupt(CTRL_C);
}

#[test]
fn perlcgi_app_is_served_by_the_cgi_runner_by_default_and_with_cgi_index() {
    if !require("perl") {
        return;
    }
    let p = fixture("perl-cgi");
    let mut s = p.run(&[]);
    let port = s.ready("web.0", STAGING);
    s.wait_for(Stream::Out, "perlcgi runner: serving CGI scripts", CTRL_C);
    let (status, body) = http_get(port, "/?name=Ann");
    assert_eq!(status, 200, "{body}\n{}", s.dump());
    assert_eq!(
        body,
        "<html><body><h1>Hello, Ann, from a CGI script</h1><p>GET /index.cgi via CGI/1.1</p></body></html>\n"
    );
    assert_eq!(
        http_post(port, "/form.pl", "a=1"),
        (201, "posted: a=1\n".to_string())
    );
    let (head, _) = http_exchange(port, "/missing.cgi", Duration::from_secs(30));
    assert!(head.starts_with("HTTP/1.0 404"), "{head}");
    s.interrupt(CTRL_C);
    drop(s);

    // What the platform's perlcgi apps wrote (uWSGI's CGI options): not a shell error any more.
    p.write_all(&[
        (
            "stackato.yml",
            "name: perl-cgi\nframework:\n  type: perlcgi\nprocesses:\n  web: $STACKATO_UWSGI --cgi-index form.pl\n",
        ),
        ("sub/index.cgi", "print \"Content-Type: text/plain\\n\\nsub index\\n\";\n"),
    ]);
    let mut s = p.run(&[]);
    let port = s.ready("web.0", STAGING);
    assert_eq!(
        http_get(port, "/sub/"),
        (200, "sub index\n".to_string()),
        "{}",
        s.dump()
    );
    assert!(!s.stderr().contains("command not found"), "{}", s.dump());
    s.interrupt(CTRL_C);
}

#[test]
fn perl5lib_is_extended_and_dot_is_in_inc_for_the_platforms_perl() {
    let p = fixture("perl-cgi");
    let r = run_with(
        &p.app,
        &["env", "--format", "json"],
        &[("PERL5LIB", "/my/lib")],
    );
    r.code(0);
    let v = r.json();
    let text = v.to_string();
    let lib = p.state("perl5/lib/perl5").display().to_string();
    assert!(
        text.contains(&format!("{lib}:/my/lib")),
        "PERL5LIB not extended\n{}",
        r.dump()
    );
    assert!(text.contains("PERL_USE_UNSAFE_INC"), "{}", r.dump());
    // A Perl that never had `.` in @INC does not get it.
    p.write_all(&[(
        "stackato.yml",
        "name: perl-cgi\nframework:\n  type: perlcgi\nruntime: perl536\n",
    )]);
    let r = run(&p.app, &["env", "--format", "json"]);
    r.code(0);
    assert!(!r.stdout.contains("PERL_USE_UNSAFE_INC"), "{}", r.dump());
}

#[test]
fn allow_shows_what_cpanm_runs_and_a_changed_bundle_archive_asks_again() {
    let p = fixture("perl-psgi");
    let home = tempfile::tempdir().unwrap();
    let r = untrusting(&p.app, home.path(), &["run"]);
    r.code(8)
        .stderr_has("cpanm --installdeps . (runs cpanfile: Perl code from the repository)")
        .stderr_has("cpanm from the Carton bundle vendor/cache");
    untrusting(&p.app, home.path(), &["allow"]).code(0);
    // Each archive's Makefile.PL runs at staging: a changed archive is not covered.
    let tarball = p
        .app
        .join("vendor/cache/authors/id/L/LO/LOCAL/Local-Greeting-0.01.tar.gz");
    let mut bytes = std::fs::read(&tarball).unwrap();
    bytes.push(0);
    std::fs::write(&tarball, bytes).unwrap();
    let (code, _, err) = untrusting_bounded(&p.app, home.path(), &["run"]);
    assert_eq!(code, Some(8), "{err}");
    assert!(err.contains("Local-Greeting-0.01.tar.gz"), "{err}");
}
