//! Apps of the frameworks the platform started without a `processes: web` (spec §2.3, §4.3),
//! modelled on what people pushed in 2012–2015: a PHP front controller with an `.htaccess`
//! rewrite (`tests/fixtures/php-front/`), a Node app with a `server.js` and neither a
//! `framework` key nor a Procfile (`tests/fixtures/node-server/`), a plain Rack app found by
//! its `config.ru` (`tests/fixtures/rack-app/`). `run` starts each with the framework's default
//! command and each answers HTTP; `check`, `doctor` and `config` agree with `run` on the
//! framework. The real binary, real interpreters (php, node, ruby + rackup): a missing one is
//! a loud SKIP, or a failure with `STACKATO_LOCAL_REQUIRE_SERVICES=1` (CI).

use std::path::Path;
use std::time::Duration;

use crate::common::http::http_get;
use crate::common::project::Project;
use crate::common::*;

const START: Duration = Duration::from_secs(120);
const CTRL_C: Duration = Duration::from_secs(30);

/// A project holding a copy of `tests/fixtures/<name>`.
fn fixture(name: &str) -> Project {
    let p = Project::new(&[]);
    let from = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    copy_tree(&from, &p.app, &|_, _| false);
    p
}

#[test]
fn php_front_controller_gets_its_clean_urls() {
    if !require("php") {
        return;
    }
    let p = fixture("php-front");
    let mut s = p.run_env(&[], &[("STACKATO_LOCAL_PHP_SERVER", "builtin")]);
    let port = s.ready("web.0", START);
    s.assert_err_has("served by PHP's built-in server (php -S) with a router");
    // A clean URL reaches index.php, as the .htaccess RewriteRule made it on the platform.
    assert_eq!(
        http_get(port, "/hello/world"),
        (
            200,
            "Hello, world! (via index.php, PATH_INFO /hello/world)\n".to_string()
        ),
        "{}",
        s.dump()
    );
    assert_eq!(http_get(port, "/"), (200, "php-front home\n".to_string()));
    // An existing file is served as it is, not through the front controller.
    assert_eq!(
        http_get(port, "/css/site.css"),
        (200, "body { color: #333; }\n".to_string())
    );
    assert_eq!(http_get(port, "/nope").0, 404);
    // The router lives outside the app: the app's copy and checkout are untouched.
    assert!(!p.app.join("php-router.php").exists());
    s.interrupt(CTRL_C);
}

#[test]
fn node_app_with_server_js_and_no_procfile_starts() {
    if !require("node") {
        return;
    }
    let p = fixture("node-server");
    let mut s = p.run(&[]);
    let port = s.ready("web.0", START);
    s.assert_err_has(
        "note: node-server: framework node detected (found server.js); started with `node server.js`",
    );
    assert_eq!(
        http_get(port, "/a/b"),
        (200, "node-server says hello at /a/b\n".to_string()),
        "{}",
        s.dump()
    );
    s.interrupt(CTRL_C);
}

#[test]
fn node_app_with_only_a_start_script_runs_npm_start() {
    if !require_all(&["node", "npm"]) {
        return;
    }
    let p = Project::new(&[
        ("stackato.yml", "name: npm-start\n"),
        (
            "package.json",
            r#"{"name": "npm-start", "version": "0.0.1", "scripts": {"start": "node lib/boot.js"}}"#,
        ),
        (
            "lib/boot.js",
            "require('http').createServer(function (q, r) { r.end('booted by npm start\\n'); })\n  .listen(process.env.PORT, process.env.VCAP_APP_HOST);\n",
        ),
    ]);
    let mut s = p.run(&[]);
    let port = s.ready("web.0", START);
    s.assert_err_has("started with `npm start`");
    assert_eq!(
        http_get(port, "/"),
        (200, "booted by npm start\n".to_string()),
        "{}",
        s.dump()
    );
    s.interrupt(CTRL_C);
}

#[test]
fn plain_rack_app_starts_with_rackup() {
    if !require_all(&["ruby", "rackup"]) {
        return;
    }
    let p = fixture("rack-app");
    let mut s = p.run(&[]);
    let port = s.ready("web.0", START);
    s.assert_err_has("framework rack detected (found config.ru)");
    assert_eq!(
        http_get(port, "/x/y"),
        (200, "rack-app says hello at /x/y\n".to_string()),
        "{}",
        s.dump()
    );
    s.interrupt(CTRL_C);
}

/// `check` and `doctor` know the framework `run` detects: a detected app with its
/// interpreter installed is clean for `check`, and `doctor` checks that interpreter.
#[test]
fn check_and_doctor_agree_with_run_on_the_detected_framework() {
    if !require_all(&["node", "rackup"]) {
        return;
    }
    for (name, program) in [("node-server", "node"), ("rack-app", "ruby")] {
        let p = fixture(name);
        let r = check(&p.app);
        r.code(0).stderr_lacks("cannot start");
        let d = p.cmd(&["doctor"]);
        let all = format!("{}{}", d.stdout, d.stderr);
        assert!(
            all.contains(program),
            "{name}: doctor does not check {program}:\n{}",
            d.dump()
        );
    }
}

/// When `run` cannot start an app here, `check` warns at the framework key and `doctor`
/// shows a failure with what to do.
#[test]
fn check_and_doctor_say_when_run_cannot_start() {
    let p = Project::new(&[("stackato.yml", "name: gen\nframework:\n  type: generic\n")]);
    let r = check(&p.app);
    let line = r.diag(
        "stackato.yml:3:9: warning:",
        &["`run` cannot start gen: framework generic has no default web command here"],
    );
    assert!(!line.is_empty());
    let d = p.cmd(&["doctor"]);
    let all = format!("{}{}", d.stdout, d.stderr);
    assert!(
        all.contains("web command of gen") && all.contains("processes: {web:"),
        "{}",
        d.dump()
    );
}

#[test]
fn sinatra_app_is_bundled_and_started_with_ruby() {
    if !require_all(&["ruby", "bundle"]) {
        return;
    }
    let p = fixture("sinatra-app");
    let mut s = p.run(&[]);
    let port = s.ready("web.0", START);
    s.assert_out_has("-----> bundle install --local");
    s.assert_err_has("framework sinatra detected (app.rb requires sinatra)");
    assert_eq!(
        http_get(port, "/hi/bob"),
        (200, "sinatra-app says hi to bob\n".to_string()),
        "{}",
        s.dump()
    );
    // Bundler wrote its lock into the staged copy, never into the checkout.
    assert!(!p.app.join("Gemfile.lock").exists());
    s.interrupt(CTRL_C);
}

/// What the defaults run from the repository is listed before anything runs: the npm start
/// script of a Node app without a start file, bundler on the Gemfile, the PHP server.
#[test]
fn allow_lists_what_the_defaults_run_from_the_repository() {
    let home = home();
    let p = Project::new(&[
        ("stackato.yml", "name: npm-start\n"),
        (
            "package.json",
            r#"{"name": "x", "scripts": {"start": "node lib/boot.js --flag"}}"#,
        ),
    ]);
    let r = untrusting(&p.app, home.path(), &["run"]);
    r.stderr_has("npm-start web (framework default): npm start")
        .stderr_has("npm-start npm start script (the web command): node lib/boot.js --flag");
    let p = fixture("sinatra-app");
    let r = untrusting(&p.app, home.path(), &["run"]);
    r.stderr_has(
        "sinatra-app Gemfile: bundle install --local (the Gemfile is Ruby code that bundler runs)",
    )
    .stderr_has("sinatra-app web (framework default): bundle exec ruby app.rb -p $PORT");
    let p = fixture("php-front");
    let r = untrusting(&p.app, home.path(), &["run"]);
    r.stderr_has("php-front web (framework default): php -S $VCAP_APP_HOST:$PORT");
}
