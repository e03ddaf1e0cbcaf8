//! Runtimes: `run` stages and runs an app on the interpreter it declares (`runtime: python27`
//! gets a Python 2.7 virtualenv), warns at the `runtime` key and runs on the closest installed
//! one when the declared one is missing, stops with exit 9 under `--strict-runtime`, and
//! `--runtime` overrides. A command calling `uwsgi` gets the virtualenv's uWSGI, not one
//! elsewhere on PATH.
//!
//! The Python 2 tests need a Python 2.7 interpreter (pyenv's, `python2.7` on PATH, …); Debian 12
//! has none, so where none is found they print a loud SKIP (the issue allows that for
//! Python 2 only).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::http::http_get;
use crate::common::project::Project;
use crate::common::python27::{need_python27, python27};
use crate::common::*;

/// How long a first staging may take (virtualenv, pip from PyPI, uWSGI compiling).
const STAGING: Duration = Duration::from_secs(900);

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The `"runtime"` field of the `VCAP_APPLICATION` in a body.
fn vcap_runtime(body: &str) -> String {
    let line = body
        .lines()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no VCAP_APPLICATION in {body}"));
    let v: serde_json::Value = serde_json::from_str(line).expect("VCAP_APPLICATION is JSON");
    v["runtime"].as_str().unwrap_or("").to_string()
}

#[test]
fn python2_bottle_app_runs_on_python_27() {
    if !need_python27() {
        return;
    }
    let p = Project::new(&[]);
    copy_tree(&fixture("py2-bottle"), &p.app, &|_, n| n == "__pycache__");
    // The 2.x profile: its VCAP_APPLICATION has a `runtime` (3.x's has none).
    let mut s = p.run(&["--profile", "2"]);
    let port = s.ready("web.0", STAGING);
    s.assert_out_has("with Python 2.7");
    s.assert_out_has("pip install -r requirements.txt");
    // virtualenv keeps its seed cache out of the app's staged copy (`$HOME` at staging).
    let staged = p.state("apps/py2-bottle/g1/staging/app");
    assert!(staged.join("app.py").is_file(), "{}", staged.display());
    assert!(!staged.join(".local").exists(), "{}", s.dump());
    let (status, body) = http_get(port, "/");
    assert_eq!(status, 200, "{body}\n{}", s.dump());
    assert!(
        body.starts_with("bottle says hello from Python 2.7.") && body.contains("(six 1.16.0)"),
        "{body}"
    );
    assert_eq!(vcap_runtime(&body), "python27", "{body}");
    assert!(
        !s.stderr().contains("not installed here"),
        "no runtime warning expected:\n{}",
        s.dump()
    );
    s.interrupt(Duration::from_secs(30));

    // `doctor` names the interpreter `run` used.
    let d = p.cmd(&["doctor"]);
    assert!(
        d.stdout.contains("Python 2.7"),
        "doctor should name Python 2.7:\n{}",
        d.dump()
    );
}

/// A server that runs on Python 2 and 3 and answers with its version and VCAP_APPLICATION.
const ANY_PY_SERVER: &str = r#"import os, sys
try:
    from http.server import BaseHTTPRequestHandler, HTTPServer
except ImportError:
    from BaseHTTPServer import BaseHTTPRequestHandler, HTTPServer

class H(BaseHTTPRequestHandler):
    def do_GET(self):
        body = ("python%d%d\n%s\n" % (sys.version_info[0], sys.version_info[1],
                os.environ.get("VCAP_APPLICATION", ""))).encode("utf-8")
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a):
        pass

HTTPServer(("0.0.0.0", int(os.environ["PORT"])), H).serve_forever()
"#;

#[test]
fn a_missing_runtime_warns_at_its_key_and_runs_on_the_closest_one() {
    let yml = "name: oldpy\nframework:\n  type: python\n  runtime: python26\nprocesses:\n  web: python server.py\n";
    let p = Project::new(&[("stackato.yml", yml), ("server.py", ANY_PY_SERVER)]);

    // `check` warns at the key too (exit 1 with --strict).
    let c = p.cmd(&["check"]);
    c.code(0);
    c.stderr_has("stackato.yml:4");
    c.stderr_has("`runtime: python26` asks for Python 2.6");
    p.cmd(&["check", "--strict"]).code(1);

    // --strict-runtime: an error at the key, exit 9, nothing staged.
    let strict = p.cmd(&["run", "--strict-runtime", "--no-watch"]);
    strict.code(9);
    strict.stderr_has("stackato.yml:4");
    strict.stderr_has("python26");
    strict.stderr_has("not installed here");
    assert!(!p.state("venv").exists(), "{}", strict.dump());

    // Without it: a warning naming the key's line, what was found and how to install 2.6,
    // then the app runs on the closest Python (2.7 when installed, else a Python 3).
    let mut s = p.run(&["--profile", "2"]);
    let port = s.ready("web.0", STAGING);
    s.assert_err_has("warning: oldpy: `runtime: python26` asks for Python 2.6, which is not installed here; running on Python ");
    s.assert_err_has("stackato.yml:4");
    s.assert_err_has("pyenv install 2.6");
    let (status, body) = http_get(port, "/");
    assert_eq!(status, 200, "{body}\n{}", s.dump());
    let used = body.lines().next().unwrap_or("").to_string();
    // VCAP_APPLICATION names the interpreter actually used.
    assert_eq!(vcap_runtime(&body), used, "{body}");
    if python27().is_some() {
        assert_eq!(used, "python27", "the closest to 2.6 is 2.7: {body}");
    }
    s.interrupt(Duration::from_secs(30));

    // --runtime overrides: no warning, a new virtualenv with Python 3.
    let mut s = p.run(&["--profile", "2", "--runtime", "python3"]);
    let port = s.ready("web.0", STAGING);
    let (status, body) = http_get(port, "/");
    assert_eq!(status, 200, "{body}\n{}", s.dump());
    assert!(body.starts_with("python3"), "{body}");
    assert_eq!(vcap_runtime(&body), body.lines().next().unwrap_or(""));
    assert!(!s.stderr().contains("not installed here"), "{}", s.dump());
    if used == "python27" {
        s.assert_out_has("The runtime changed (now Python 3.");
    }
    s.interrupt(Duration::from_secs(30));

    // A bad --runtime is a usage error.
    p.cmd(&["run", "--runtime", "cobol85", "--no-watch"])
        .code(64);
}

const WSGI_PY: &str = r#"import sys

def application(environ, start_response):
    body = ("wsgi on python %d.%d\n" % sys.version_info[:2]).encode("utf-8")
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
"#;

#[test]
fn a_command_calling_uwsgi_gets_the_staged_uwsgi_for_python_27() {
    if !need_python27() {
        return;
    }
    let yml = "name: rawuwsgi\nframework:\n  type: python\n  runtime: python27\nprocesses:\n  web: uwsgi --http-socket :$PORT --wsgi-file wsgi.py --master --die-on-term\nhooks:\n  post-staging:\n    - command -v uwsgi > @ROOT@/post-staging-uwsgi\n  pre-running:\n    - command -v uwsgi > @ROOT@/pre-running-uwsgi\n";
    let p = Project::new(&[("stackato.yml", yml), ("wsgi.py", WSGI_PY)]);
    // A `uwsgi` earlier on the user's PATH (a system one without the Python plugin) must not
    // be the one that runs.
    let fake = p.root.join("fakebin");
    std::fs::create_dir_all(&fake).unwrap();
    write(
        &fake,
        "uwsgi",
        b"#!/bin/sh\necho 'the system uwsgi ran' >&2\nexit 1\n",
    );
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(fake.join("uwsgi"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        fake.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut s = p.run_env(&[], &[("PATH", &path)]);
    let port = s.ready("web.0", STAGING);
    s.assert_out_has("Installing uWSGI");
    let (status, body) = http_get(port, "/");
    assert_eq!(status, 200, "{body}\n{}", s.dump());
    assert_eq!(body, "wsgi on python 2.7\n", "{}", s.dump());
    // Built for 2.7 (gcc and pyenv's headers), or the stand-in, which runs on 2.7 too.
    if !s.stderr().contains("stand-in") {
        s.assert_out_has("Python version: 2.7");
    }
    // Hooks find the same one first on PATH.
    let venv_uwsgi = p.state("venv/bin/uwsgi");
    for hook in ["post-staging", "pre-running"] {
        assert_eq!(
            p.read(&format!("{hook}-uwsgi")).trim(),
            venv_uwsgi.display().to_string(),
            "{hook}"
        );
    }
    assert!(
        !s.stderr().contains("the system uwsgi ran")
            && !s.stdout().contains("the system uwsgi ran"),
        "{}",
        s.dump()
    );
    s.interrupt(Duration::from_secs(30));
}

#[test]
fn runtime_txt_and_python_version_are_read() {
    // runtime.txt (the buildpacks' file), named with its line when it is not installed here.
    let p = Project::new(&[
        (
            "stackato.yml",
            "name: rt\nframework:\n  type: python\nprocesses:\n  web: python server.py\n",
        ),
        ("runtime.txt", "# the buildpack's file\npython-2.6.9\n"),
        ("server.py", ANY_PY_SERVER),
    ]);
    let c = p.cmd(&["check"]);
    c.stderr_has(
        "runtime.txt:2 (`python-2.6.9`) asks for Python 2.6.9, which is not installed here",
    );
    c.stderr_has("pyenv install 2.6.9");

    // `runtime: python3` with a `.python-version` naming a Python 3 that is not installed:
    // the file says which Python 3.
    std::fs::remove_file(p.app.join("runtime.txt")).unwrap();
    p.write_all(&[
        ("stackato.yml", "name: rt\nframework:\n  type: python\n  runtime: python3\nprocesses:\n  web: python server.py\n"),
        (".python-version", "3.1.5\n"),
    ]);
    let c = p.cmd(&["check"]);
    c.stderr_has(".python-version:1 (`3.1.5`) asks for Python 3.1.5, which is not installed here");
    let d = p.cmd(&["doctor"]);
    assert!(d.stdout.contains("runtime of rt"), "{}", d.dump());
    assert!(d.stdout.contains("asks for Python 3.1.5"), "{}", d.dump());
}

#[test]
fn the_uwsgi_stand_in_serves_on_python_27() {
    let Some(py27) = python27() else {
        need_python27();
        return;
    };
    let dir = app(&[("wsgi.py", WSGI_PY)]);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let standin = Path::new(env!("CARGO_MANIFEST_DIR")).join("templates/uwsgi_standin.py");
    let mut child = std::process::Command::new(py27)
        .arg(&standin)
        .args(["--http-socket", &format!("127.0.0.1:{port}")])
        .args(["--wsgi-file", "wsgi.py", "--master", "--die-on-term"])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start the stand-in");
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let answer = loop {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break Some(http_get(port, "/"));
        }
        if std::time::Instant::now() > deadline || child.try_wait().ok().flatten().is_some() {
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(answer, Some((200, "wsgi on python 2.7\n".to_string())));
}

#[test]
fn node_and_ruby_declarations_are_checked_against_what_path_runs() {
    // Node and Ruby apps run on the node/ruby of PATH; a declaration that PATH's does not
    // match is said at its line, and --strict-runtime makes it an error (exit 9).
    if !require("node") {
        return;
    }
    let yml = "name: oldnode\nframework:\n  type: node\n  runtime: node04\n";
    let server = "require('http').createServer(function (q, r) { r.end('ok\\n'); }).listen(process.env.PORT, '127.0.0.1');\n";
    let p = Project::new(&[("stackato.yml", yml), ("server.js", server)]);
    let c = p.cmd(&["check"]);
    c.code(0);
    c.stderr_has("stackato.yml:4");
    c.stderr_has("`runtime: node04` asks for Node.js 0.4");
    c.stderr_has("nvm install 0.4");
    let strict = p.cmd(&["run", "--strict-runtime", "--no-watch"]);
    strict.code(9);
    strict.stderr_has("node04");
    // Without it the app runs on PATH's node, with the warning.
    let mut s = p.run(&["--no-watch"]);
    let port = s.ready("web.0", STAGING);
    assert_eq!(http_get(port, "/"), (200, "ok\n".to_string()));
    s.assert_err_has("running on Node.js ");
    s.interrupt(Duration::from_secs(30));

    if !require("ruby") {
        return;
    }
    // The Gemfile's `ruby` line is a declaration too.
    let q = Project::new(&[
        (
            "stackato.yml",
            "name: oldruby\nframework:\n  type: sinatra\n",
        ),
        (
            "Gemfile",
            "source 'https://rubygems.org'\nruby '1.9.3'\ngem 'sinatra'\n",
        ),
        ("app.rb", "require 'sinatra'\nget('/') { 'ok' }\n"),
    ]);
    let c = q.cmd(&["check"]);
    c.stderr_has("Gemfile:2");
    c.stderr_has("Ruby 1.9.3");
    c.stderr_has("rbenv install 1.9.3");
}
