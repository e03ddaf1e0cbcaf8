//! `stackato-local init` end to end: small fixture apps of each kind (Django in two layouts,
//! Flask, plain WSGI, a WSGI package, Node, Perl PSGI, PHP, Rack, Rails) written into temp dirs;
//! `init` must print its guesses with their reasons and write a manifest that `check --strict`
//! accepts, whose `config --json` has the expected framework, services, hooks and web command.
//! The two stdlib-only Python apps are really started with `run` (no PyPI: `PIP_NO_INDEX=1`
//! makes the uWSGI install fail at once, so the pure-Python stand-in serves them). Also: never
//! replacing a manifest without `--force` (exit 64), `.gitignore`, `--dry-run`, `--name`,
//! `--kind` and an unrecognised directory.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::Value;

/// `init` (plus `extra` arguments) in `dir`; asserts exit 0.
#[track_caller]
fn init(dir: &Path, extra: &[&str]) -> Run {
    let mut args = vec!["init"];
    args.extend_from_slice(extra);
    let r = run(dir, &args);
    r.code(0);
    r
}

/// `init`, then `check --strict` must accept what it wrote; returns init's run and the app.
#[track_caller]
fn init_checked(dir: &Path) -> (Run, Value) {
    let r = init(dir, &[]);
    let c = run(dir, &["check", "--strict"]);
    assert_eq!(
        c.code,
        Some(0),
        "check --strict rejects what init wrote\n{}\n--- stackato.yml ---\n{}",
        c.dump(),
        std::fs::read_to_string(dir.join("stackato.yml")).unwrap_or_default()
    );
    (r, only_app(dir))
}

fn framework(app: &Value) -> (String, String) {
    (
        app.pointer("/framework/name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        app.get("runtime")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
    )
}

/// Service name → type.
fn services(app: &Value) -> BTreeMap<String, String> {
    app.get("services")
        .and_then(Value::as_object)
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    (
                        k.clone(),
                        v.get("type")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn web(app: &Value) -> Option<String> {
    app.pointer("/stackato/processes/web")
        .and_then(Value::as_str)
        .map(str::to_string)
}

fn post_staging(app: &Value) -> Vec<String> {
    app.pointer("/stackato/hooks/post-staging")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

fn env_default(app: &Value, name: &str) -> Option<String> {
    app.pointer(&format!("/stackato/env/{name}/default"))
        .and_then(Value::as_str)
        .map(str::to_string)
}

fn name_of(app: &Value) -> String {
    app.get("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

/// The expected service map: `(suffix, type)` → `{"<name>-<suffix>": type}`.
fn expect_services(app: &Value, want: &[(&str, &str)]) {
    let name = name_of(app);
    let expected: BTreeMap<String, String> = want
        .iter()
        .map(|(suffix, kind)| (format!("{name}-{suffix}"), kind.to_string()))
        .collect();
    assert_eq!(services(app), expected, "services of {app:#}");
}

// ---------------------------------------------------------------------------------------------
// Python
// ---------------------------------------------------------------------------------------------

const DJANGO_SETTINGS: &str = r#"import os
from urllib.parse import urlparse

SECRET_KEY = os.environ.get("SECRET_KEY", "dev")
DEBUG = os.environ.get("DEBUG") == "1"
_db = urlparse(os.environ.get("DATABASE_URL", "mysql://root@127.0.0.1:3306/app"))
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.mysql",
        "NAME": _db.path.lstrip("/"),
        "USER": _db.username,
        "PASSWORD": _db.password or "",
        "HOST": _db.hostname,
        "PORT": _db.port,
    }
}
ROOT_URLCONF = "urls"
STATIC_URL = "/static/"
"#;

const MANAGE_PY: &str = r#"#!/usr/bin/env python
import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "@SETTINGS@")
    from django.core.management import execute_from_command_line
    execute_from_command_line(sys.argv)
"#;

const DJANGO_WSGI: &str = "import os\nfrom django.core.wsgi import get_wsgi_application\n\napplication = get_wsgi_application()\n";

#[test]
fn django_project_with_top_level_settings_and_wsgi() {
    let manage = MANAGE_PY.replace("@SETTINGS@", "settings");
    let t = app(&[
        ("manage.py", &manage),
        ("settings.py", DJANGO_SETTINGS),
        ("wsgi.py", DJANGO_WSGI),
        ("urls.py", "urlpatterns = []\n"),
        ("requirements.txt", "Django>=4.2,<5\nmysqlclient==2.2.4\n"),
    ]);
    let (r, a) = init_checked(t.path());
    r.stderr_has("framework python (found manage.py, settings.py and wsgi.py: a Django project)")
        .stderr_has("service mysql (requirements.txt lists mysqlclient)")
        .stderr_has("env DJANGO_SETTINGS_MODULE=settings (manage.py sets it)")
        .stderr_has("hook post-staging: python manage.py migrate --noinput")
        .stderr_has("requirements requirements.txt: installed with pip at staging")
        .stderr_has("wrote stackato.yml");
    assert_eq!(framework(&a), ("python".into(), "python3".into()));
    expect_services(&a, &[("db", "mysql")]);
    assert_eq!(
        env_default(&a, "DJANGO_SETTINGS_MODULE").as_deref(),
        Some("settings")
    );
    // No STATIC_ROOT: no collectstatic.
    assert_eq!(post_staging(&a), vec!["python manage.py migrate --noinput"]);
    assert_eq!(web(&a).as_deref(), Some("$STACKATO_UWSGI"));
    // Bytecode is not pushed: the client's default list plus the Python additions.
    let ignores = a.pointer("/stackato/ignores").cloned().unwrap_or_default();
    let ignores: Vec<&str> = ignores
        .as_array()
        .map(|v| v.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    assert!(ignores.contains(&"*.pyc"), "{ignores:?}");
    assert!(ignores.contains(&"*__pycache__/"), "{ignores:?}");
    assert!(ignores.contains(&".git/"), "{ignores:?}");
    assert!(ignores.contains(&"#*#"), "{ignores:?}");
}

#[test]
fn django_startproject_layout_gets_module_and_collectstatic() {
    let manage = MANAGE_PY.replace("@SETTINGS@", "mysite.settings");
    let settings = DJANGO_SETTINGS
        .replace("django.db.backends.mysql", "django.db.backends.postgresql")
        + "STATIC_ROOT = os.path.join(os.path.dirname(os.path.dirname(__file__)), 'static')\n";
    let t = app(&[
        ("manage.py", &manage),
        ("mysite/__init__.py", ""),
        ("mysite/settings.py", &settings),
        ("mysite/wsgi.py", DJANGO_WSGI),
        (
            "requirements.txt",
            "# the app\n-r requirements/base.txt\ndjango-redis==5.4\n",
        ),
        ("requirements/base.txt", "Django\npsycopg2-binary>=2.9\n"),
    ]);
    let (r, a) = init_checked(t.path());
    r.stderr_has("found manage.py, mysite/settings.py and mysite/wsgi.py")
        .stderr_has("service postgresql (requirements/base.txt lists psycopg2-binary)")
        .stderr_has("service redis (requirements.txt lists django-redis)")
        .stderr_has("(mysite/settings.py sets STATIC_ROOT)");
    expect_services(&a, &[("db", "postgresql"), ("redis", "redis")]);
    assert_eq!(
        env_default(&a, "DJANGO_SETTINGS_MODULE").as_deref(),
        Some("mysite.settings")
    );
    assert_eq!(
        post_staging(&a),
        vec![
            "python manage.py migrate --noinput",
            "python manage.py collectstatic --noinput"
        ]
    );
    assert_eq!(
        web(&a).as_deref(),
        Some("$STACKATO_UWSGI --module=mysite.wsgi:application")
    );
}

#[test]
fn flask_app() {
    let t = app(&[
        (
            "app.py",
            "from flask import Flask\n\napp = Flask(__name__)\n\n@app.route('/')\ndef index():\n    return 'hi'\n",
        ),
        ("requirements.txt", "Flask==3.0.0\nredis>=5\npymemcache\n"),
    ]);
    let (r, a) = init_checked(t.path());
    r.stderr_has("framework python (app.py imports flask: a Flask app)")
        .stderr_has("service redis (requirements.txt lists redis)")
        .stderr_has("service memcached (requirements.txt lists pymemcache)")
        .stderr_has(
            "web $STACKATO_UWSGI --module=app:app (uWSGI serving the Flask app `app` of app.py)",
        );
    assert_eq!(framework(&a).0, "python");
    expect_services(&a, &[("redis", "redis"), ("memcached", "memcached")]);
    assert_eq!(web(&a).as_deref(), Some("$STACKATO_UWSGI --module=app:app"));
    assert!(post_staging(&a).is_empty());
}

#[test]
fn flask_app_without_requirements_gets_a_note() {
    let t = app(&[(
        "wsgi.py",
        "import flask\napplication = flask.Flask(__name__)\n",
    )]);
    let (r, a) = init_checked(t.path());
    r.stderr_has("framework python (wsgi.py imports flask")
        .stderr_has("note: there is no requirements.txt: create one listing Flask");
    // A top-level wsgi.py binding `application` is what $STACKATO_UWSGI loads.
    assert_eq!(web(&a).as_deref(), Some("$STACKATO_UWSGI"));
    assert!(services(&a).is_empty());
}

const HELLO_WSGI: &str = "def application(environ, start_response):\n    start_response('200 OK', [('Content-Type', 'text/plain')])\n    return [b'@BODY@\\n']\n";

/// A `run` of the app in `dir`, stopped (SIGINT, then SIGKILL) when dropped.
struct Running {
    child: Child,
    stderr: Arc<Mutex<String>>,
}

impl Running {
    fn start(dir: &Path) -> Running {
        let mut c = cmd(dir);
        c.args(["run", "--exit-on-crash", "--no-watch", "--db", "sqlite"])
            // No PyPI: installing uWSGI fails at once and the stand-in serves the app.
            .env("PIP_NO_INDEX", "1")
            .env("PIP_DISABLE_PIP_VERSION_CHECK", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = c.spawn().expect("start stackato-local run");
        let stderr = Arc::new(Mutex::new(String::new()));
        let pipe = child.stderr.take().expect("stderr pipe");
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if let Ok(mut s) = sink.lock() {
                    s.push_str(&line);
                    s.push('\n');
                }
            }
        });
        Running { child, stderr }
    }

    fn stderr(&self) -> String {
        self.stderr.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Wait for `web.0 ready at http://127.0.0.1:PORT`; the port.
    fn ready(&mut self, within: Duration) -> u16 {
        let needle = "==> web.0 ready at http://127.0.0.1:";
        let t0 = Instant::now();
        loop {
            let err = self.stderr();
            if let Some(at) = err.find(needle) {
                let digits: String = err[at + needle.len()..]
                    .chars()
                    .take_while(char::is_ascii_digit)
                    .collect();
                return digits
                    .parse()
                    .unwrap_or_else(|_| panic!("no port after {needle:?}\n{err}"));
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("run ended ({status}) before the app was ready\n{err}");
            }
            assert!(
                t0.elapsed() < within,
                "the app was not ready within {within:?}\n{err}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Ctrl-C; the exit code.
    fn interrupt(&mut self) -> Option<i32> {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGINT,
        );
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(30) {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.code();
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) && self.interrupt().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn http_get(port: u16, path: &str) -> (u16, String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect to the app");
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read the answer");
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, body.to_string())
}

/// Start the app with `run`, GET / and expect `body`, then Ctrl-C (exit 130).
fn starts_and_serves(dir: &Path, body: &str) {
    if find_program("python3").is_none() {
        skip("python3 is not installed: the generated manifest cannot be run");
        return;
    }
    let mut r = Running::start(dir);
    let port = r.ready(Duration::from_secs(240));
    let (status, got) = http_get(port, "/");
    assert_eq!(
        (status, got.as_str()),
        (200, format!("{body}\n").as_str()),
        "{}",
        r.stderr()
    );
    assert_eq!(r.interrupt(), Some(130), "{}", r.stderr());
}

#[test]
fn plain_wsgi_app_is_detected_and_starts() {
    let t = app(&[("wsgi.py", &HELLO_WSGI.replace("@BODY@", "plain wsgi"))]);
    let (r, a) = init_checked(t.path());
    r.stderr_has("framework python (found wsgi.py defining `application`: a Python WSGI app)")
        .stderr_has("web $STACKATO_UWSGI (uWSGI serving the top-level wsgi.py's `application`)");
    assert_eq!(framework(&a), ("python".into(), "python3".into()));
    assert_eq!(web(&a).as_deref(), Some("$STACKATO_UWSGI"));
    assert!(services(&a).is_empty());
    assert!(post_staging(&a).is_empty());
    starts_and_serves(t.path(), "plain wsgi");
}

#[test]
fn wsgi_package_app_gets_module_and_starts() {
    let t = app(&[
        ("hello/__init__.py", ""),
        (
            "hello/wsgi.py",
            &HELLO_WSGI.replace("@BODY@", "from a package"),
        ),
    ]);
    let (r, a) = init_checked(t.path());
    r.stderr_has("found hello/wsgi.py defining `application`");
    assert_eq!(
        web(&a).as_deref(),
        Some("$STACKATO_UWSGI --module=hello.wsgi:application")
    );
    starts_and_serves(t.path(), "from a package");
}

// ---------------------------------------------------------------------------------------------
// Node, Perl, PHP, Ruby
// ---------------------------------------------------------------------------------------------

#[test]
fn node_app_with_start_script() {
    let t = app(&[
        (
            "package.json",
            r#"{"name": "shop", "scripts": {"start": "node server.js"},
               "dependencies": {"express": "^4.18.0", "pg": "^8.11.0", "ioredis": "^5.3.0"},
               "devDependencies": {"mysql2": "^3"}}"#,
        ),
        (
            "server.js",
            "require('http').createServer((q, s) => s.end('hi')).listen(process.env.PORT);\n",
        ),
    ]);
    let (r, a) = init_checked(t.path());
    r.stderr_has("framework node (found server.js: a Node.js app)")
        .stderr_has("service postgresql (package.json depends on pg)")
        .stderr_has("service redis (package.json depends on ioredis)")
        .stderr_has("web npm start (package.json's start script: node server.js)");
    assert_eq!(framework(&a), ("node".into(), "node".into()));
    // devDependencies are not the app's services.
    expect_services(&a, &[("db", "postgresql"), ("redis", "redis")]);
    assert_eq!(web(&a).as_deref(), Some("npm start"));
}

#[test]
fn node_app_without_start_script_runs_its_start_file() {
    let t = app(&[
        (
            "package.json",
            r#"{"name": "api", "dependencies": {"mysql2": "^3", "memcached": "^2"}}"#,
        ),
        ("app.js", "console.log('hi');\n"),
    ]);
    let (_, a) = init_checked(t.path());
    expect_services(&a, &[("db", "mysql"), ("memcached", "memcached")]);
    assert_eq!(web(&a).as_deref(), Some("node app.js"));
}

#[test]
fn perl_psgi_app() {
    let t = app(&[
        (
            "app.psgi",
            "use strict;\nuse Cache::Memcached;\nmy $app = sub { [200, ['Content-Type' => 'text/plain'], ['hi']] };\n",
        ),
        (
            "cpanfile",
            "requires 'Plack';\nrequires 'DBD::Pg', '>= 3.0';\n",
        ),
    ]);
    let (r, a) = init_checked(t.path());
    r.stderr_has("framework perl (found app.psgi: a Perl PSGI app)")
        .stderr_has("service postgresql (cpanfile lists DBD::Pg)")
        .stderr_has("service memcached (app.psgi uses Cache::Memcached)");
    assert_eq!(framework(&a), ("perl".into(), "perl514".into()));
    expect_services(&a, &[("db", "postgresql"), ("memcached", "memcached")]);
    // uWSGI's PSGI plugin serves it as on the platform (the framework's default); without
    // it, plackup.
    let want = (find_program("uwsgi_psgi").is_none()).then_some("plackup --port $PORT app.psgi");
    assert_eq!(web(&a).as_deref(), want);
    // The cpanfile lists Plack: no `requirements: cpan:` needed.
    assert!(a.pointer("/stackato/requirements").is_none(), "{a:#}");
}

#[test]
fn perl_psgi_app_starts_with_what_init_wrote() {
    if !require_all(&["perl", "uwsgi_psgi"]) {
        return;
    }
    let t = app(&[(
        "app.psgi",
        "my $app = sub { [200, ['Content-Type' => 'text/plain'], [\"psgi here\\n\"]] };\n",
    )]);
    let (r, a) = init_checked(t.path());
    r.stderr_lacks("plackup");
    assert_eq!(web(&a), None, "the framework's default: $STACKATO_UWSGI");
    assert!(a.pointer("/stackato/requirements").is_none(), "{a:#}");
    let mut run = Running::start(t.path());
    let port = run.ready(Duration::from_secs(240));
    assert_eq!(
        http_get(port, "/"),
        (200, "psgi here\n".to_string()),
        "{}",
        run.stderr()
    );
    assert_eq!(run.interrupt(), Some(130), "{}", run.stderr());
}

#[test]
fn perl_psgi_app_without_plack_listed_requires_it() {
    let t = app(&[("app.psgi", "my $app = sub { [200, [], ['hi']] };\n")]);
    let (_, a) = init_checked(t.path());
    // uWSGI's PSGI plugin needs no Plack; with Debian's Plack installed, plackup needs nothing
    // from CPAN (often unreachable).
    let want = if find_program("uwsgi_psgi").is_some()
        || Path::new("/usr/share/perl5/Plack.pm").is_file()
    {
        None
    } else {
        Some(serde_json::json!(["Plack"]))
    };
    assert_eq!(a.pointer("/stackato/requirements/cpan"), want.as_ref());
}

#[test]
fn php_app() {
    let t = app(&[(
        "index.php",
        "<?php\n$db = mysqli_connect(getenv('MYSQL_HOST'), 'u', 'p');\necho 'hi';\n",
    )]);
    let (r, a) = init_checked(t.path());
    r.stderr_has("framework php (found index.php: a PHP app)")
        .stderr_has("service mysql (index.php uses mysqli_connect)");
    assert_eq!(framework(&a), ("php".into(), "php".into()));
    expect_services(&a, &[("db", "mysql")]);
    // Apache (php -S locally) serves it: no web command.
    assert_eq!(web(&a), None);
    assert!(a.pointer("/framework/document-root").is_none());
}

#[test]
fn php_app_with_a_public_directory_gets_a_document_root() {
    let t = app(&[
        (
            "public/index.php",
            "<?php\n$r = new Redis();\n$pdo = new PDO('pgsql:host=localhost;dbname=x');\n",
        ),
        ("src/Kernel.php", "<?php\n"),
    ]);
    let (r, a) = init_checked(t.path());
    r.stderr_has("document-root public (public/index.php is the entry point");
    assert_eq!(
        a.pointer("/framework/document-root")
            .and_then(Value::as_str),
        Some("public")
    );
    expect_services(&a, &[("db", "postgresql"), ("redis", "redis")]);
}

#[test]
fn rack_app() {
    let t = app(&[
        ("config.ru", "require './app'\nrun Sinatra::Application\n"),
        (
            "Gemfile",
            "source 'https://rubygems.org'\ngem 'sinatra'\ngem \"dalli\", \"~> 3.2\"\n",
        ),
        ("app.rb", "require 'sinatra'\nget('/') { 'hi' }\n"),
    ]);
    let (r, a) = init_checked(t.path());
    r.stderr_has("framework rack (found config.ru: a Rack app)")
        .stderr_has("service memcached (Gemfile lists dalli)")
        .stderr_has("requirements Gemfile: bundle install at staging (run installs the gems")
        .stderr_lacks("run `bundle install`");
    assert_eq!(framework(&a), ("rack".into(), "ruby".into()));
    expect_services(&a, &[("memcached", "memcached")]);
    assert_eq!(
        web(&a).as_deref(),
        Some("bundle exec rackup config.ru -p $PORT -o 0.0.0.0")
    );
    assert!(post_staging(&a).is_empty());
}

#[test]
fn rails_app() {
    let t = app(&[
        (
            "config.ru",
            "require_relative 'config/environment'\nrun Rails.application\n",
        ),
        ("config/application.rb", "require 'rails/all'\n"),
        (
            "Gemfile",
            "source 'https://rubygems.org'\ngem 'rails', '~> 7.1'\ngem 'pg'\ngem 'redis'\n",
        ),
    ]);
    let (r, a) = init_checked(t.path());
    r.stderr_has("framework rails3 (Gemfile lists rails: a Rails app)")
        .stderr_has("service postgresql (Gemfile lists pg)")
        .stderr_has("hook post-staging: bundle exec rake db:migrate");
    assert_eq!(framework(&a), ("rails3".into(), "ruby".into()));
    expect_services(&a, &[("db", "postgresql"), ("redis", "redis")]);
    assert_eq!(post_staging(&a), vec!["bundle exec rake db:migrate"]);
    assert_eq!(
        web(&a).as_deref(),
        Some("bundle exec rails server -p $PORT -b 0.0.0.0")
    );
}

// ---------------------------------------------------------------------------------------------
// Writing: overwriting, .gitignore, --dry-run, names, kinds
// ---------------------------------------------------------------------------------------------

const WSGI_ONLY: &[(&str, &str)] = &[(
    "wsgi.py",
    "def application(e, s):\n    s('200 OK', [])\n    return [b'']\n",
)];

#[test]
fn never_replaces_a_stackato_yml_without_force() {
    let t = app(WSGI_ONLY);
    let old = "name: mine\n# hand-written\n";
    write(t.path(), "stackato.yml", old.as_bytes());
    let r = run(t.path(), &["init"]);
    r.code(64)
        .stderr_has("stackato.yml already exists")
        .stderr_has("--force");
    assert_eq!(
        std::fs::read_to_string(t.path().join("stackato.yml")).unwrap(),
        old
    );
    assert!(
        !t.path().join(".gitignore").exists(),
        "a refused init changed .gitignore"
    );

    let r = init(t.path(), &["--force"]);
    r.stderr_has("replaced stackato.yml (--force)");
    let new = std::fs::read_to_string(t.path().join("stackato.yml")).unwrap();
    assert_ne!(new, old);
    assert!(new.contains("web: $STACKATO_UWSGI"), "{new}");
    run(t.path(), &["check", "--strict"]).code(0);
}

#[test]
fn never_writes_beside_a_manifest_yml_without_force() {
    let t = app(WSGI_ONLY);
    write(t.path(), "manifest.yml", b"applications:\n- name: cf\n");
    run(t.path(), &["init"])
        .code(64)
        .stderr_has("manifest.yml already exists");
    assert!(!t.path().join("stackato.yml").exists());
    let r = init(t.path(), &["--force"]);
    r.stderr_has("manifest.yml is left as it was; stackato.yml takes precedence over it");
    assert!(t.path().join("stackato.yml").is_file());
    assert_eq!(
        std::fs::read_to_string(t.path().join("manifest.yml")).unwrap(),
        "applications:\n- name: cf\n"
    );
}

#[test]
fn gitignore_gets_the_state_directory() {
    // An existing .gitignore: the entry is appended, the rest kept.
    let t = app(&[WSGI_ONLY[0], (".gitignore", "target/\n*.pyc")]);
    init(t.path(), &[]).stderr_has("added /.stackato-local/ to .gitignore");
    let gi = std::fs::read_to_string(t.path().join(".gitignore")).unwrap();
    assert!(gi.starts_with("target/\n*.pyc\n"), "{gi}");
    assert!(gi.lines().any(|l| l == "/.stackato-local/"), "{gi}");

    // None: one is created with just the entry.
    let t = app(WSGI_ONLY);
    init(t.path(), &[]).stderr_has("created .gitignore with /.stackato-local/");
    let gi = std::fs::read_to_string(t.path().join(".gitignore")).unwrap();
    let rules: Vec<&str> = gi.lines().filter(|l| !l.starts_with('#')).collect();
    assert_eq!(rules, vec!["/.stackato-local/"], "{gi}");

    // Already ignored: left alone.
    let t = app(&[WSGI_ONLY[0], (".gitignore", ".stackato-local/\n")]);
    init(t.path(), &[]).stderr_lacks(".gitignore");
    assert_eq!(
        std::fs::read_to_string(t.path().join(".gitignore")).unwrap(),
        ".stackato-local/\n"
    );
}

fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

#[test]
fn dry_run_prints_the_manifest_and_writes_nothing() {
    let t = app(&[
        ("app.py", "from flask import Flask\napp = Flask(__name__)\n"),
        ("requirements.txt", "flask\npsycopg[binary]\n"),
    ]);
    let before = listing(t.path());
    let r = init(t.path(), &["--dry-run"]);
    r.stderr_has("--dry-run: stackato.yml not written")
        .stderr_has("service postgresql (requirements.txt lists psycopg)");
    assert_eq!(listing(t.path()), before, "--dry-run changed the directory");
    assert!(r.stdout.starts_with("# stackato.yml for "), "{}", r.stdout);
    // What it printed is the manifest init would write: valid, with the guesses.
    let copy = app(&[("stackato.yml", &r.stdout)]);
    run(copy.path(), &["check", "--strict"]).code(0);
    let a = only_app(copy.path());
    assert_eq!(web(&a).as_deref(), Some("$STACKATO_UWSGI --module=app:app"));
    assert_eq!(
        services(&a).values().collect::<Vec<_>>(),
        vec!["postgresql"]
    );

    // Even beside an existing manifest, which stays as it is.
    write(t.path(), "stackato.yml", b"name: keep\n");
    init(t.path(), &["--dry-run"]);
    assert_eq!(
        std::fs::read_to_string(t.path().join("stackato.yml")).unwrap(),
        "name: keep\n"
    );
}

#[test]
fn names_come_from_the_directory_or_name() {
    let t = app(&[]);
    let dir = t.path().join("My_Shop.App 2");
    write(&dir, "wsgi.py", WSGI_ONLY[0].1.as_bytes());
    init(&dir, &[]).stderr_has("name my-shop-app-2 (the directory's name");
    assert_eq!(name_of(&only_app(&dir)), "my-shop-app-2");

    init(&dir, &["--force", "--name", "shop-api"]).stderr_has("name shop-api (--name)");
    let a = only_app(&dir);
    assert_eq!(name_of(&a), "shop-api");

    let r = run(&dir, &["init", "--force", "--name", "shop.api"]);
    r.code(64).stderr_has("contains '.'");
    assert_eq!(
        name_of(&only_app(&dir)),
        "shop-api",
        "a refused name changed the file"
    );
}

#[test]
fn unrecognised_directory_asks_for_kind() {
    let t = app(&[("README.md", "nothing to run\n")]);
    let r = run(t.path(), &["init"]);
    r.code(64)
        .stderr_has("cannot tell what kind of app is in")
        .stderr_has("--kind (django, flask, wsgi, node, perl, perlcgi, php, rails, rack, sinatra, java, buildpack)");
    assert!(!t.path().join("stackato.yml").exists());

    let r = init(t.path(), &["--kind", "node"]);
    r.stderr_has("framework node (--kind node: a Node.js app)");
    // Valid, but nothing to start yet: no server.js/app.js/index.js/main.js or start script.
    run(t.path(), &["check"])
        .code(0)
        .stderr_has("framework node has no default web command here");
    assert_eq!(framework(&only_app(t.path())).0, "node");

    run(t.path(), &["init", "--kind", "cobol"]).code(64);
}

#[test]
fn path_option_and_missing_directory() {
    let t = app(&[("sub/index.php", "<?php echo 1;\n")]);
    let r = run(t.path(), &["-C", "sub", "init"]);
    r.code(0);
    assert!(t.path().join("sub/stackato.yml").is_file());
    assert!(!t.path().join("stackato.yml").exists());
    run(t.path(), &["-C", "nowhere", "init"])
        .code(74)
        .stderr_has("cannot read the directory");
}
