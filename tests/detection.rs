//! 2.x detection and buildpack apps, end to end with the real binary and real runtimes: a
//! WAR at the top without `framework:` runs in Jetty (spec §2.3: `*.war` → java_web); a 2.x
//! `framework: buildpack` app's Procfile wins over the release's default (its arguments
//! reach the binary) and `export` writes that line; a buildpack app with no buildpack stops
//! with the ways to give one, at the framework key, and `check`/`doctor` say so first (and say
//! nothing when a buildpack is given); `doctor` has a java + Jetty line for a WAR; a node app
//! with only package.json's `main` runs it; the "no web command" error points where `check`
//! does; `init` writes manifests `run` starts (a Sinatra app without config.ru answers).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::common::http::http_get;
use crate::common::project::Project;
use crate::common::session::Session;
use crate::common::*;

const CTRL_C: Duration = Duration::from_secs(30);
/// A first `go build` or a Jetty start on a busy machine takes a while.
const SLOW: Duration = Duration::from_secs(300);

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

/// The files of a fixture directory (flat), as (name, text).
fn files_of(dir: &Path) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| {
            let name = p.file_name().unwrap().to_str().unwrap().to_string();
            (name, std::fs::read_to_string(&p).unwrap())
        })
        .collect();
    v.sort();
    v
}

fn project_of(rel: &str) -> Project {
    let files = files_of(&fixture(rel));
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    Project::new(&refs)
}

/// Both streams of a session. Look at them once the run ended: then both pipes were read to
/// their end (while it runs, a line written before the `ready at` the test waited for, on the
/// other stream, may still be on its way).
fn all(s: &Session) -> String {
    format!("{}\n{}", s.stdout(), s.stderr())
}

/// An empty `$XDG_DATA_HOME` (no installed buildpacks) and `$XDG_CACHE_HOME` in the project.
fn no_installed(p: &Project) -> Vec<(String, String)> {
    let data = p.root.join("xdg-data");
    let cache = p.root.join("xdg-cache");
    std::fs::create_dir_all(&data).unwrap();
    std::fs::create_dir_all(&cache).unwrap();
    vec![
        ("XDG_DATA_HOME".into(), data.display().to_string()),
        ("XDG_CACHE_HOME".into(), cache.display().to_string()),
    ]
}

fn refs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

#[test]
fn a_war_without_framework_runs_in_jetty() {
    if !require_all(&["java", "jar"]) {
        return;
    }
    if !Path::new("/usr/share/jetty9/start.jar").is_file() {
        skip("jetty9 is not installed (apt-get install jetty9)");
        if std::env::var("STACKATO_LOCAL_REQUIRE_SERVICES").as_deref() == Ok("1") {
            panic!("jetty9 is required in CI");
        }
        return;
    }
    let p = Project::new(&[("stackato.yml", "name: hello-war\nmem: 512M\n")]);
    let src = p.root.join("war-src");
    write(&src, "hello.txt", b"hello from the war\n");
    write(
        &src,
        "WEB-INF/web.xml",
        b"<?xml version=\"1.0\"?>\n<web-app xmlns=\"http://xmlns.jcp.org/xml/ns/javaee\" version=\"3.1\"/>\n",
    );
    let st = Command::new("jar")
        .arg("cf")
        .arg(p.app.join("hello.war"))
        .arg("-C")
        .arg(&src)
        .arg(".")
        .status()
        .unwrap();
    assert!(st.success());
    // check agrees with run: a Java app it can start.
    p.cmd(&["check"]).code(0).stderr_lacks("cannot start");
    let mut s = p.run(&["--no-watch"]);
    let port = s.ready("web.0", SLOW);
    let (code, body) = http_get(port, "/hello.txt");
    assert_eq!(code, 200, "{body}\n{}", s.dump());
    assert_eq!(body, "hello from the war\n");
    s.interrupt(CTRL_C);
    assert!(
        all(&s).contains("framework java_web detected (found hello.war)"),
        "{}",
        all(&s)
    );
}

#[test]
fn framework_buildpack_honours_the_procfile_and_export_writes_it() {
    if !require("go") {
        return;
    }
    let p = project_of("go-procfile");
    let env = no_installed(&p);
    let bp = fixture("buildpacks/go-local").display().to_string();
    let mut s = p.run_env(&["--no-watch", "--buildpack", &bp], &refs(&env));
    let port = s.ready("web.0", SLOW);
    let (code, body) = http_get(port, "/");
    assert_eq!(code, 200, "{body}\n{}", s.dump());
    assert!(body.contains("hello from go"), "{body}");
    assert!(body.contains("args: -greeting from-procfile"), "{body}");
    s.interrupt(CTRL_C);

    let procfile = p.export_procfile(&refs(&env));
    assert!(
        procfile.contains("web: ./bin/app -greeting from-procfile"),
        "{procfile}"
    );
    assert!(!procfile.contains("no command"), "{procfile}");
}

#[test]
fn export_of_a_buildpack_app_without_procfile_writes_the_releases_default() {
    if !require("go") {
        return;
    }
    let p = project_of("go-procfile");
    std::fs::remove_file(p.app.join("Procfile")).unwrap();
    let env = no_installed(&p);
    let bp = fixture("buildpacks/go-local").display().to_string();
    let mut s = p.run_env(&["--no-watch", "--buildpack", &bp], &refs(&env));
    let port = s.ready("web.0", SLOW);
    let (code, body) = http_get(port, "/");
    assert_eq!(code, 200, "{body}\n{}", s.dump());
    assert!(body.contains("args: \n"), "the release's ./bin/app: {body}");
    s.interrupt(CTRL_C);
    let procfile = p.export_procfile(&refs(&env));
    assert!(procfile.contains("web: ./bin/app\n"), "{procfile}");
}

#[test]
fn a_buildpack_app_without_a_buildpack_stops_with_the_ways_to_give_one() {
    for (what, manifest) in [
        (
            "framework: buildpack",
            "name: gogettable\nframework:\n  type: buildpack\nmem: 64M\n",
        ),
        ("a detected Go app", "name: gogettable\nmem: 64M\n"),
    ] {
        let p = project_of("go-procfile");
        p.edit("stackato.yml", manifest);
        let env = no_installed(&p);
        let data = &env[0].1;
        let r = run_with(&p.app, &["run", "--no-watch"], &refs(&env));
        r.code(2);
        let err = r.dump();
        for needle in [
            "is a buildpack app",
            "--buildpack DIR",
            "buildpack:",
            "BUILDPACK_URL",
            &format!("{data}/stackato-local/buildpacks/"),
        ] {
            assert!(err.contains(needle), "{what}: {needle}\n{err}");
        }
        assert!(!err.contains("has no default one here"), "{what}: {err}");
        if what == "framework: buildpack" {
            // At the framework key (line 3: `type: buildpack`), not at `name:`.
            assert!(err.contains("stackato.yml:3:"), "{err}");
        }
        // check and doctor say it before run.
        let c = run_with(&p.app, &["check"], &refs(&env));
        assert!(
            c.dump().contains("`run` cannot start gogettable")
                && c.dump().contains("--buildpack DIR"),
            "{what}: {}",
            c.dump()
        );
        let d = run_with(&p.app, &["doctor"], &refs(&env));
        assert!(
            d.dump().contains("✘") && d.dump().contains("is a buildpack app"),
            "{what}: {}",
            d.dump()
        );
    }
}

#[test]
fn check_and_doctor_accept_a_go_app_given_its_buildpack() {
    // run builds it with that buildpack (see above): check and doctor agree.
    // The buildpack is a directory of the project (one outside it is not read, see
    // tests/buildpacks.rs).
    let p = project_of("go-procfile");
    copy_tree(
        &fixture("buildpacks/go-local"),
        &p.app.join("buildpacks/go-local"),
        &|_, _| false,
    );
    p.edit(
        "stackato.yml",
        "name: gogettable\nbuildpack: buildpacks/go-local\n",
    );
    let env = no_installed(&p);
    let c = run_with(&p.app, &["check"], &refs(&env));
    c.code(0);
    assert!(!c.dump().contains("cannot start"), "{}", c.dump());
    let d = run_with(&p.app, &["doctor"], &refs(&env));
    assert!(!d.dump().contains("web command of"), "{}", d.dump());
}

#[test]
fn doctor_has_a_java_and_jetty_line_for_a_war() {
    // A WAR without framework: (detected java_web, as run does).
    let p = Project::new(&[("stackato.yml", "name: hello-war\n"), ("hello.war", "PK")]);
    // No Jetty where JETTY_HOME says: ✘ with the install command; check says run cannot start.
    let none = p.root.join("no-jetty").display().to_string();
    let d = run_with(&p.app, &["doctor"], &[("JETTY_HOME", none.as_str())]);
    d.code(1);
    let out = d.dump();
    assert!(
        out.contains("✘ java + Jetty 9 (hello-war): not installed:")
            && out.contains(&format!("{none}/start.jar"))
            && out.contains("sudo apt-get install jetty9 default-jre-headless"),
        "{out}"
    );
    assert_eq!(out.matches("✘").count(), 1, "one line for it\n{out}");
    let c = run_with(&p.app, &["check"], &[("JETTY_HOME", none.as_str())]);
    assert!(
        c.dump().contains("`run` cannot start hello-war"),
        "{}",
        c.dump()
    );
    // With java and Jetty 9 installed: ✔ naming both.
    if !require("java") {
        return;
    }
    if !Path::new("/usr/share/jetty9/start.jar").is_file() {
        skip("jetty9 is not installed (apt-get install jetty9)");
        assert_ne!(
            std::env::var("STACKATO_LOCAL_REQUIRE_SERVICES").as_deref(),
            Ok("1"),
            "jetty9 is required in CI"
        );
        return;
    }
    let d = p.cmd(&["doctor"]);
    let out = d.dump();
    assert!(
        out.contains("✔ java + Jetty 9 (hello-war): ")
            && out.contains("/usr/share/jetty9/start.jar"),
        "{out}"
    );
}

#[test]
fn a_node_app_with_only_package_json_main_runs_it() {
    if !require("node") {
        return;
    }
    let p = Project::new(&[
        (
            "stackato.yml",
            "name: node-main\nframework:\n  type: node\n",
        ),
        (
            "package.json",
            r#"{"name": "nm", "version": "0.0.1", "main": "lib/web.js"}"#,
        ),
        (
            "lib/web.js",
            "require('http').createServer((q, s) => s.end('main here\\n')).listen(process.env.PORT);\n",
        ),
    ]);
    p.cmd(&["check"]).code(0).stderr_lacks("cannot start");
    let mut s = p.run(&["--no-watch"]);
    let port = s.ready("web.0", SLOW);
    assert_eq!(
        http_get(port, "/"),
        (200, "main here\n".to_string()),
        "{}",
        s.dump()
    );
    s.interrupt(CTRL_C);
}

#[test]
fn no_web_command_points_where_check_points() {
    // A node app with nothing to start: run's error and check's warning both at `type: node`.
    let p = Project::new(&[
        (
            "stackato.yml",
            "name: node-none\nframework:\n  type: node\n",
        ),
        ("package.json", r#"{"name": "nn"}"#),
    ]);
    let c = p.cmd(&["check"]);
    c.code(0);
    assert!(c.dump().contains("stackato.yml:3:9"), "{}", c.dump());
    let r = p.cmd(&["run", "--no-watch"]);
    r.code(2);
    let err = r.dump();
    assert!(err.contains("has no web command"), "{err}");
    assert!(
        err.contains("stackato.yml:3:9"),
        "at type:, not name:\n{err}"
    );
    assert!(!err.contains("stackato.yml:1:"), "{err}");
}

/// `init` in `dir` (written, not a dry run); its stackato.yml.
fn init(dir: &Path) -> (Run, String) {
    let r = run(dir, &["init"]);
    r.code(0);
    let yml = std::fs::read_to_string(dir.join("stackato.yml")).unwrap();
    (r, yml)
}

#[test]
fn init_writes_a_sinatra_manifest_that_run_starts() {
    if !require_all(&["ruby", "bundle"]) {
        return;
    }
    let files: Vec<(String, String)> = files_of(&fixture("sinatra-app"))
        .into_iter()
        .filter(|(k, _)| k != "stackato.yml")
        .collect();
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let p = Project::new(&refs);
    std::fs::remove_file(p.app.join("stackato.yml")).ok();
    let (_, yml) = init(&p.app);
    assert!(yml.contains("type: sinatra"), "{yml}");
    assert!(!yml.contains("rackup"), "no config.ru to rack up: {yml}");
    let mut s = p.run(&["--no-watch"]);
    let port = s.ready("web.0", SLOW);
    assert_eq!(
        http_get(port, "/hi/bob"),
        (200, "sinatra-app says hi to bob\n".to_string()),
        "{}",
        s.dump()
    );
    s.interrupt(CTRL_C);
}

#[test]
fn init_recognises_what_run_recognises() {
    // A WAR, a Go app, a Perl CGI script: each a kind of its own, which `check` accepts.
    let war = app(&[("hello.war", "PK")]);
    let (_, yml) = init(war.path());
    assert!(yml.contains("type: java_web"), "{yml}");
    let go = app(&[("go.mod", "module x\n"), ("main.go", "package main\n")]);
    let (r, yml) = init(go.path());
    assert!(yml.contains("type: buildpack"), "{yml}");
    assert!(r.dump().contains("--buildpack DIR"), "{}", r.dump());
    let cgi = app(&[(
        "index.pl",
        "#!/usr/bin/perl\nuse CGI;\nprint CGI->new->header('text/plain'), \"hi\\n\";\n",
    )]);
    let (_, yml) = init(cgi.path());
    assert!(yml.contains("type: perlcgi"), "{yml}");
    for d in [&war, &go, &cgi] {
        run(d.path(), &["check"]).code(0);
    }
    // --kind knows them too.
    let t = app(&[("README", "x\n")]);
    for kind in ["perlcgi", "java", "buildpack", "sinatra"] {
        run(t.path(), &["init", "--kind", kind, "--force"]).code(0);
    }
}

#[test]
fn init_gives_python_2_apps_python27_and_not_any_pin() {
    for (file, code) in [
        ("app.py", "print \"hello\"\n"),
        ("app.py", "import sys\nprint >>sys.stderr, 'x'\n"),
        (
            "app.py",
            "try:\n    pass\nexcept ValueError, e:\n    pass\n",
        ),
        ("app.py", "import urllib2\n"),
        (
            "mysite/settings.py",
            "print >>__import__('sys').stderr, 1\n",
        ),
    ] {
        let t = app(&[
            ("wsgi.py", "def application(env, start):\n    return []\n"),
            (file, code),
        ]);
        let (_, yml) = init(t.path());
        assert!(yml.contains("runtime: python27"), "{code}: {yml}");
    }
    // A Django release for Python 2 only (before 1.5), with Python-3-clean code.
    let t = app(&[
        ("manage.py", "import django\n"),
        ("wsgi.py", "def application(env, start):\n    return []\n"),
        ("requirements.txt", "Django==1.4.22\n"),
    ]);
    let (r, yml) = init(t.path());
    assert!(yml.contains("runtime: python27"), "{yml}");
    r.stderr_has("requirements.txt:1 Django==1.4.22 (a release for Python 2 only)");
    // Python 3 code, and a Flask<1.0 pin: not proof of Python 2.
    let t = app(&[
        (
            "wsgi.py",
            "def application(env, start):\n    print(\"x\")\n    return []\n",
        ),
        (
            "util.py",
            "try:\n    pass\nexcept (ValueError, KeyError) as e:\n    pass\n",
        ),
        ("requirements.txt", "Flask==0.10.1\n"),
    ]);
    let (_, yml) = init(t.path());
    assert!(yml.contains("runtime: python3"), "{yml}");
}

#[test]
fn init_needs_no_cpan_plack_when_debian_has_it() {
    let t = app(&[("app.psgi", "my $app = sub { [200, [], ['hi']] };\n")]);
    let (_, yml) = init(t.path());
    if Path::new("/usr/share/perl5/Plack.pm").is_file() {
        assert!(!yml.contains("\n  cpan:"), "{yml}");
    } else {
        assert!(yml.contains("- Plack"), "{yml}");
    }
}
