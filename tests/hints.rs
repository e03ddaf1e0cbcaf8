//! Old apps on today's runtimes (issue 13, red team items 1, 14, 15, 16): a crash's `help:`
//! line naming the cause, uWSGI without `--die-on-term` stopped promptly on Ctrl-C,
//! `PYTHONUNBUFFERED` for Python apps, and `doctor` on a Perl app that needs CGI.pm. Real
//! interpreters and servers, no mocks.

use std::time::Duration;

use crate::common::http::http_get;
use crate::common::procs::{assert_all_dead, cmdline, procs_under};
use crate::common::project::Project;
use crate::common::session::Stream;
use crate::common::*;

/// Staging a Python app (a virtualenv) on a busy machine.
const STAGING: Duration = Duration::from_secs(300);

#[test]
fn python2_app_without_runtime_crashes_with_a_help_line_naming_python27() {
    if !require("python3") {
        return;
    }
    let p = Project::new(&[
        (
            "stackato.yml",
            "name: py2hint\nframework:\n  type: python\nprocesses:\n  web: python app.py\n",
        ),
        (
            "app.py",
            "import os\nprint \"hello from Python 2 on port %s\" % os.environ['PORT']\n",
        ),
    ]);
    let mut s = p.run(&["--no-watch"]);
    s.expect_exit(7, STAGING);
    let err = s.stderr();
    assert!(
        err.contains("SyntaxError: Missing parentheses in call to 'print'"),
        "{}",
        s.dump()
    );
    assert!(
        err.contains(
            "help: this is Python 2 code: add `runtime: python27` to stackato.yml, or run with `--runtime python27`"
        ),
        "{}",
        s.dump()
    );
    // One help line per message, not one per tail line.
    assert!(
        err.matches("help: this is Python 2 code").count() <= 3,
        "{}",
        s.dump()
    );
}

#[test]
fn uwsgi_without_die_on_term_stops_on_ctrl_c_well_before_the_grace() {
    if !require_all(&["uwsgi", "uwsgi_psgi", "perl"]) {
        return;
    }
    let p = Project::new(&[
        (
            "stackato.yml",
            "name: uwsgistop\nframework:\n  type: perl\nprocesses:\n  web: uwsgi --plugin psgi --master --processes 2 --http-socket 127.0.0.1:$PORT --psgi app.psgi\n",
        ),
        (
            "app.psgi",
            "my $app = sub { return [200, ['Content-Type' => 'text/plain'], [\"hello from uWSGI\\n\"]]; };\n",
        ),
    ]);
    let mut s = p.run(&["--no-watch", "--grace", "30"]);
    let port = s.ready("web.0", STAGING);
    assert_eq!(
        http_get(port, "/"),
        (200, "hello from uWSGI\n".to_string()),
        "{}",
        s.dump()
    );
    let uwsgi: Vec<(String, i32)> = procs_under(&p.root)
        .into_iter()
        .map(|pid| (cmdline(pid), pid))
        .filter(|(c, _)| c.contains("uwsgi"))
        .collect();
    assert!(
        uwsgi.len() >= 2,
        "master and workers: {uwsgi:?}\n{}",
        s.dump()
    );
    s.interrupt(Duration::from_secs(60));
    // SIGTERM would have made uWSGI reload and wait for the SIGKILL at the grace period.
    assert!(
        !s.stderr().contains("did not stop within the grace period"),
        "{}",
        s.dump()
    );
    assert_all_dead(&uwsgi, SHORT, &s.dump());
}

#[test]
fn python_app_prints_appear_live_with_pythonunbuffered() {
    if !require("python3") {
        return;
    }
    let app_py = r#"import os, http.server

class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        print("request for", self.path)
        body = b"live\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass

print("starting, PYTHONUNBUFFERED=%s" % os.environ.get("PYTHONUNBUFFERED"))
http.server.HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"#;
    let p = Project::new(&[
        (
            "stackato.yml",
            "name: pylive\nframework:\n  type: python\nprocesses:\n  web: python app.py\n",
        ),
        ("app.py", app_py),
    ]);
    let mut s = p.run(&["--no-watch"]);
    let port = s.ready("web.0", STAGING);
    // The prints reach the log while the app runs, not at its exit.
    s.wait_for(Stream::Out, "starting, PYTHONUNBUFFERED=1", SHORT);
    assert_eq!(http_get(port, "/x"), (200, "live\n".to_string()));
    s.wait_for(Stream::Out, "request for /x", SHORT);
    s.interrupt(Duration::from_secs(30));

    let r = p.cmd(&["env", "explain", "PYTHONUNBUFFERED"]);
    r.code(0).stdout_has("local addition");
    // The user's value wins.
    let r = p.cmd(&[
        "env",
        "-e",
        "PYTHONUNBUFFERED=",
        "explain",
        "PYTHONUNBUFFERED",
    ]);
    assert!(r.dump().contains("--env"), "{}", r.dump());
}

#[test]
fn doctor_checks_cgi_pm_for_a_perl_app_that_uses_cgi() {
    if !require("perl") {
        return;
    }
    let p = Project::new(&[
        (
            "stackato.yml",
            "name: cgiapp\nframework:\n  type: perlcgi\n",
        ),
        (
            "index.cgi",
            "#!/usr/bin/perl\nuse strict;\nuse CGI qw(:standard);\nprint header, \"hello\\n\";\n",
        ),
    ]);
    let r = p.cmd(&["doctor"]);
    let all = r.dump();
    assert!(all.contains("CGI.pm for cgiapp"), "{all}");
    let has_cgi = std::process::Command::new("perl")
        .args(["-MCGI", "-e1"])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if has_cgi {
        assert!(all.contains("index.cgi uses CGI, and perl has it"), "{all}");
    } else {
        assert!(all.contains("apt-get install libcgi-pm-perl"), "{all}");
        assert!(all.contains("not in Perl's core since 5.22"), "{all}");
    }
}
