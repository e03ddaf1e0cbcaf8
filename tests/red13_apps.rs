//! Issue 13, second red-team round: old apps whose declared runtime, services or package
//! files `run`, `exec`, `check` and `doctor` must treat alike. Each test runs the real binary
//! on real interpreters. The Python 2 tests need a Python 2.7 (pyenv's, `python2.7` on PATH);
//! Debian 12 has none, so without one they print a loud SKIP and pass, in CI too (as in
//! tests/legacy_apps.rs). The others skip loudly without their programs, and fail instead under
//! `STACKATO_LOCAL_REQUIRE_SERVICES=1` (CI).

use std::time::Duration;

use crate::common::project::{self, Project};
use crate::common::python27::need_python27;
use crate::common::session::Stream;
use crate::common::*;

/// How long a first staging may take (virtualenv, pip and npm from their registries).
const STAGING: Duration = Duration::from_secs(900);
const CTRL_C: Duration = Duration::from_secs(30);

const STANDALONE_PY2: &str = "name: worker27\ninstances: 1\nframework:\n  type: standalone\n  runtime: python27\ncommand: python main.py\nmem: 256\n";
const MAIN_PY2: &str = "import sys, time\nprint \"py2 standalone\", \"%d.%d\" % sys.version_info[:2]\nsys.stdout.flush()\nwhile True:\n    time.sleep(60)\n";

#[test]
fn standalone_with_runtime_python27_runs_its_python_on_27_in_run_and_exec() {
    if !need_python27() {
        return;
    }
    let p = Project::new(&[("stackato.yml", STANDALONE_PY2), ("main.py", MAIN_PY2)]);
    // `exec` before any `run` resolves the declared runtime as `run` would.
    let r = p.cmd(&[
        "exec",
        "--",
        "python",
        "-c",
        "import sys; print('exec on %d.%d' % sys.version_info[:2])",
    ]);
    r.code(0).stdout_has("exec on 2.7");
    let mut s = p.run(&[]);
    s.wait_for(Stream::Out, "py2 standalone 2.7", STAGING);
    s.assert_err_has("runs on Python 2.7");
    assert!(
        !s.text(Stream::Out).contains("add `runtime: python27`"),
        "{}",
        s.dump()
    );
    s.interrupt(CTRL_C);
    // After the run too (its remembered choice).
    let r = p.cmd(&[
        "exec",
        "--",
        "python",
        "-c",
        "import sys; print('exec on %d.%d' % sys.version_info[:2])",
    ]);
    r.code(0).stdout_has("exec on 2.7");
}

const PHP_MYSQL_YML: &str = "name: phpdb\nframework:\n  type: php\nservices:\n  db: mysql\nrequirements:\n  ubuntu: [php5-mysql, php5-gd]\n";
const PHP_MYSQLI: &str = "<?php\n$u = parse_url(getenv('DATABASE_URL'));\n$m = new mysqli($u['host'], $u['user'], $u['pass'], substr($u['path'], 1), $u['port']);\n$r = $m->query('SELECT 6*7');\necho 'mysqli says ' . $r->fetch_row()[0];\n";

/// A PHP app that binds mysql on a `php` without mysqli: `doctor` fails naming php-mysql,
/// `check` warns at the service, `run` says it at its start, and the old `php5-*` names of
/// `requirements: ubuntu:` are given with Debian 12's. PHP_INI_SCAN_DIR pointing at an empty
/// directory is a real PHP without its conf.d extensions (mysqli, pgsql).
#[test]
fn php_app_binding_mysql_without_mysqli_is_told_to_install_php_mysql() {
    if !require("php") {
        return;
    }
    let p = Project::new(&[("stackato.yml", PHP_MYSQL_YML), ("index.php", PHP_MYSQLI)]);
    let bare = p.root.join("no-ini");
    std::fs::create_dir_all(&bare).expect("mkdir");
    let bare = bare.display().to_string();
    let env = [("PHP_INI_SCAN_DIR", bare.as_str())];
    let r = run_with(&p.app, &["doctor"], &env);
    r.code(1)
        .stdout_has("PHP has no mysqli/pdo_mysql (apt-get install php-mysql)");
    let r = run_with(&p.app, &["check"], &env);
    r.code(0).stderr_has("PHP has no mysqli/pdo_mysql");
    r.stderr_has("stackato.yml:5:3");
    let mut s = p.run_env(&["--skip-service", "db"], &env);
    s.wait_err("PHP has no mysqli/pdo_mysql", STAGING);
    s.wait_err("sudo apt-get install php-mysql php-gd", STAGING);
    s.assert_err_has("php5-mysql is php-mysql");
    s.interrupt(CTRL_C);
}

/// The same app on a PHP with php-mysql answers through mysqli from the mysql service.
#[test]
fn php_app_answers_through_mysqli_from_its_mysql_service() {
    if !(require("php") && require("mariadbd|mysqld")) {
        return;
    }
    let loaded = std::process::Command::new("php")
        .arg("-m")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("mysqli"));
    if !loaded && !require("php-mysql (mysqli in `php -m`)") {
        return;
    }
    let _serial = project::mariadb_serial();
    let p = Project::new(&[
        (
            "stackato.yml",
            "name: phpdb\nframework:\n  type: php\nservices:\n  db: mysql\n",
        ),
        ("index.php", PHP_MYSQLI),
    ])
    .with_services(&["db"]);
    let r = p.cmd(&["doctor"]);
    r.stdout_has("PHP mysqli/pdo_mysql for phpdb (db): loaded");
    let mut s = p.run(&[]);
    let port = s.ready("web.0", STAGING);
    let (status, body) = crate::common::http::http_get(port, "/");
    assert_eq!(status, 200, "{body}\n{}", s.dump());
    assert_eq!(body.trim(), "mysqli says 42", "{}", s.dump());
    assert!(!s.stderr().contains("PHP has no"), "{}", s.dump());
    s.interrupt(CTRL_C);
}

/// A Python app that declares no runtime, pins Django 1.4 (Python 2 only) and whose pip
/// install fails is told to declare Python 2.7. `--no-index` (PIP_OPTS, as on the platform)
/// makes pip fail here without asking PyPI.
#[test]
fn python2_app_whose_pip_install_fails_on_python3_is_told_to_declare_python27() {
    if !require("python3") {
        return;
    }
    let p = Project::new(&[
        (
            "stackato.yml",
            "name: dj14\nframework:\n  type: python\nenv:\n  PIP_OPTS: --no-index\nprocesses:\n  web: python manage.py runserver 0.0.0.0:$PORT --noreload\n",
        ),
        ("requirements.txt", "Django==1.4.22\n"),
        ("manage.py", "import os, sys\n"),
    ]);
    let mut s = p.run(&[]);
    s.expect_exit(6, STAGING);
    s.assert_err_has("pip install -r requirements.txt failed");
    s.assert_err_has("requirements.txt pins Django==1.4.22");
    s.assert_err_has("add `runtime: python27` to stackato.yml (or run --runtime python27)");

    // No pin, but Python 2 statements in the code.
    let p = Project::new(&[
        (
            "stackato.yml",
            "name: py2code\nframework:\n  type: python\nenv:\n  PIP_OPTS: --no-index\nprocesses:\n  web: python app.py\n",
        ),
        ("requirements.txt", "bottle==0.12.25\n"),
        ("app.py", "import os\nprint \"starting\"\n"),
    ]);
    let mut s = p.run(&[]);
    s.expect_exit(6, STAGING);
    s.assert_err_has("app.py:2: `print \"starting\"`");
    s.assert_err_has("add `runtime: python27`");
}

/// A Node app declaring a Node that is not installed (node010) runs its installer on another
/// one; when npm install fails, its help repeats that and how to install the declared one.
#[test]
fn installer_failure_after_a_runtime_fallback_repeats_the_runtime_warning() {
    if !require("npm") {
        return;
    }
    let p = Project::new(&[
        (
            "stackato.yml",
            "name: node-sso\nframework:\n  type: node\n  runtime: node010\n",
        ),
        (
            "package.json",
            "{\"name\":\"node-sso\",\"version\":\"0.0.1\",\"scripts\":{\"preinstall\":\"exit 3\",\"start\":\"node app.js\"}}\n",
        ),
        (
            "app.js",
            "require('http').createServer((q, r) => r.end('ok')).listen(process.env.PORT);\n",
        ),
    ]);
    let mut s = p.run(&[]);
    s.expect_exit(6, STAGING);
    s.assert_err_has("npm install failed");
    let help = s.err_lines("help: npm's own message is above");
    assert!(
        help.iter().any(
            |l| l.contains("asks for Node.js 0.10, which is not installed here")
                && l.contains("nvm install 0.10")
        ),
        "{}",
        s.dump()
    );
}

/// The app runs on another Node than it declares and then crashes: the flapping error repeats
/// that it ran on another runtime, and what to install (issue 13: "repeat the hint when the
/// app then crashes").
#[test]
fn a_crash_after_a_runtime_fallback_repeats_the_runtime_warning() {
    if !require("node") {
        return;
    }
    let p = Project::new(&[
        (
            "stackato.yml",
            "name: node-old\nframework:\n  type: node\n  runtime: node010\nprocesses:\n  web: node app.js\n",
        ),
        (
            "app.js",
            "// Node 0.10 code: `new Buffer` long gone is not the point; it just dies.\nprocess.exit(3);\n",
        ),
    ]);
    let mut s = p.run(&["--no-watch"]);
    s.expect_exit(7, STAGING);
    let err = s.stderr();
    let at_start = err
        .find("asks for Node.js 0.10")
        .expect("the warning at start");
    let again = err.rfind("help: it runs on another runtime than declared");
    assert!(
        again.is_some_and(|a| a > at_start),
        "the crash repeats the fallback\n{}",
        s.dump()
    );
    let tail = &err[again.unwrap_or(0)..];
    assert!(tail.contains("nvm install 0.10"), "{}", s.dump());
}

/// `npm start` writes its own logs under `$HOME/.npm` (the app's copy): that is not the app
/// writing into its directory, so the note at the end names only what the app wrote.
#[test]
fn npms_own_writes_under_home_are_not_reported_as_the_app_writing_into_its_directory() {
    if !require("npm") {
        return;
    }
    let p = Project::new(&[
        (
            "stackato.yml",
            "name: npmw\nframework:\n  type: node\nprocesses:\n  web: npm start\n",
        ),
        (
            "package.json",
            "{\"name\":\"npmw\",\"version\":\"1.0.0\",\"scripts\":{\"start\":\"node app.js\"}}\n",
        ),
        (
            "app.js",
            "require('fs').writeFileSync('upload.txt', 'u');\nrequire('http').createServer((q, r) => r.end('ok')).listen(process.env.PORT);\n",
        ),
    ]);
    let mut s = p.run(&["--no-watch"]);
    s.ready("web.0", STAGING);
    let err = s.interrupt(CTRL_C);
    // npm did write there (its debug log of `npm start`).
    let copy = p.state("apps/npmw/g1/0/app");
    assert!(
        copy.join(".npm").is_dir(),
        "no .npm in {}: {err}",
        copy.display()
    );
    let note: Vec<&str> = err
        .lines()
        .filter(|l| l.contains("wrote into its directory"))
        .collect();
    assert_eq!(note.len(), 1, "{err}");
    assert!(note[0].contains("upload.txt"), "{err}");
    assert!(!note[0].contains(".npm"), "{err}");
}

/// package.json's `"main": "web"` is what Node loads as web.js: `run` detects a Node app and
/// starts it; a `main` naming no file makes `check` warn, as `run` would have nothing to start.
#[test]
fn package_json_main_resolves_like_node_and_a_missing_one_is_a_check_warning() {
    if !require("node") {
        return;
    }
    let p = Project::new(&[
        ("stackato.yml", "name: nodemain\n"),
        (
            "package.json",
            "{\"name\":\"nm\",\"version\":\"1.0.0\",\"main\":\"web\"}\n",
        ),
        (
            "web.js",
            "require('http').createServer((q, r) => r.end('main ok')).listen(process.env.PORT);\n",
        ),
    ]);
    p.cmd(&["check"]).code(0).stderr_lacks("package.json");
    let mut s = p.run(&["--no-watch"]);
    let port = s.ready("web.0", STAGING);
    assert_eq!(
        crate::common::http::http_get(port, "/"),
        (200, "main ok".into())
    );
    s.assert_err_has("started with `node web.js`");
    s.interrupt(CTRL_C);

    p.edit(
        "package.json",
        "{\"name\":\"nm\",\"version\":\"1.0.0\",\"main\":\"server/start\"}\n",
    );
    p.cmd(&["check"])
        .code(0)
        .stderr_has("package.json: \"main\": \"server/start\" names no file of nodemain");
}

/// A runtime.txt linked to a file outside the project: `run` refuses to stage it (as a push
/// did), and `check` says so instead of passing.
#[test]
fn a_runtime_txt_linked_outside_the_app_is_a_check_warning_as_run_refuses_it() {
    let p = Project::new(&[
        ("stackato.yml", "name: rtlink\nframework:\n  type: python\n"),
        (
            "wsgi.py",
            "def application(e, r):\n    r('200 OK', [])\n    return [b'x']\n",
        ),
    ]);
    std::fs::write(p.root.join("runtime.txt"), "python-2.7.18\n").expect("write");
    std::os::unix::fs::symlink(p.root.join("runtime.txt"), p.app.join("runtime.txt"))
        .expect("symlink");
    let r = p.cmd(&["check"]);
    r.code(0)
        .stderr_has("`run` cannot stage rtlink: Can't deploy application containing links 'runtime.txt' that reach outside");
    let mut s = p.run(&["--no-watch"]);
    let code = s.wait_exit(STAGING);
    assert_ne!(code, 0, "{}", s.dump());
    s.assert_err_has("links 'runtime.txt' that reach outside");
}

/// An app that declares `runtime: python27` but whose command runs `python3` crashes on its
/// Python 2 code: the hint never asks to add the key it has.
#[test]
fn the_python2_crash_hint_never_asks_for_the_runtime_key_the_app_has() {
    if !need_python27() {
        return;
    }
    let yml = STANDALONE_PY2.replace("command: python main.py", "command: python3 main.py");
    let p = Project::new(&[("stackato.yml", yml.as_str()), ("main.py", MAIN_PY2)]);
    let mut s = p.run(&["--no-watch"]);
    s.expect_exit(7, STAGING);
    s.assert_err_has("SyntaxError");
    s.assert_err_has("the app declares `python27` and its `python` is Python 2.7, but its command ran a Python 3");
    assert!(
        !s.stderr().contains("add `runtime: python27`"),
        "{}",
        s.dump()
    );
}
