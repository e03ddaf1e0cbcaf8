//! Buildpacks (Stackato 3.x), end to end with the real binary and a real Go toolchain: a Go
//! app staged by a local buildpack directory that follows the whole protocol (detect, compile
//! with ENV_DIR and a cache reused by the next staging, release's default web process and
//! config vars, `.profile.d` sourced at start) answers HTTP; a `buildpack:` git URL is cloned
//! once into the user's cache; installed buildpacks are tried in order with detect; an
//! unreachable URL stops with the fix; `allow` shows a buildpack of the project and its
//! scripts' digests are covered by the trust record.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::common::http::http_get;
use crate::common::project::Project;
use crate::common::session::{Session, Stream};
use crate::common::*;

const CTRL_C: Duration = Duration::from_secs(30);
/// A first `go build` of net/http on a busy machine takes a while.
const BUILD: Duration = Duration::from_secs(300);

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(rel)
}

/// The files of a fixture directory, as (relative path, text).
fn files_of(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap().display().to_string();
                out.push((rel, std::fs::read_to_string(&p).unwrap()));
            }
        }
    }
    out
}

/// Copy the local Go buildpack to `to` (scripts kept executable).
fn copy_buildpack(to: &Path) {
    let src = fixture("buildpacks/go-local");
    for (rel, text) in files_of(&src) {
        write(to, &rel, text.as_bytes());
        let mode = std::fs::metadata(src.join(&rel)).unwrap().permissions();
        std::fs::set_permissions(to.join(&rel), mode).unwrap();
    }
}

/// The Go app, its manifest's `buildpack:` line replaced by `buildpack` (removed when `None`).
fn go_project(buildpack: Option<&str>) -> Project {
    let files = files_of(&fixture("go-buildpack"));
    let files: Vec<(String, String)> = files
        .into_iter()
        .map(|(k, v)| {
            if k == "stackato.yml" {
                let v: String = v
                    .lines()
                    .filter(|l| !l.starts_with("buildpack:"))
                    .map(|l| format!("{l}\n"))
                    .collect();
                let bp = buildpack.map_or(String::new(), |b| format!("buildpack: {b}\n"));
                (k, format!("{bp}{v}"))
            } else {
                (k, v)
            }
        })
        .collect();
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

/// The user's cache and data dirs, in the project's temp dir.
fn xdg(p: &Project) -> (String, String) {
    let cache = p.root.join("xdg-cache");
    let data = p.root.join("xdg-data");
    std::fs::create_dir_all(&cache).unwrap();
    std::fs::create_dir_all(&data).unwrap();
    (cache.display().to_string(), data.display().to_string())
}

/// Wait until web.0 answers, and check the page: the `.profile.d` value (made by compile
/// from ENV_DIR) and the release's config var.
fn assert_serves(s: &mut Session) -> u16 {
    let port = s.ready("web.0", BUILD);
    let (code, body) = http_get(port, "/");
    assert_eq!(code, 200, "{body}\n{}", s.dump());
    assert!(body.contains("hello from go"), "{body}");
    assert!(
        body.contains("profile.d: hello-from-env-dir (from .profile.d/go.sh)"),
        "{body}"
    );
    assert!(body.contains("release: set-by-release"), "{body}");
    port
}

#[test]
fn a_go_app_staged_by_a_local_buildpack_answers_and_the_next_staging_reuses_the_cache() {
    if !require("go") {
        return;
    }
    let p = go_project(Some("https://github.com/kr/heroku-buildpack-go.git"));
    let bp = p.root.join("go-local");
    copy_buildpack(&bp);
    let (cache, data) = xdg(&p);
    let env = [
        ("XDG_CACHE_HOME", cache.as_str()),
        ("XDG_DATA_HOME", data.as_str()),
    ];
    let bp_arg = bp.display().to_string();
    let mut s = p.run_env(&["--no-watch", "--buildpack", &bp_arg], &env);
    assert_serves(&mut s);
    s.interrupt(CTRL_C);
    let out = all(&s);
    assert!(out.contains("Buildpack Go"), "{out}");
    assert!(out.contains("go-local: empty cache"), "{out}");
    assert!(out.contains("Default web process: ./bin/app"), "{out}");
    assert!(
        !out.contains("Cloning buildpack"),
        "--buildpack replaces the URL: {out}"
    );
    // Compile wrote into the staged copy, never into the checkout.
    assert!(!p.app.join("bin").exists(), "compile reached the checkout");
    assert!(
        !p.app.join(".profile.d").exists(),
        "compile reached the checkout"
    );

    // Staged again: the cache the first compile wrote is there.
    let mut s = p.run_env(&["--no-watch", "--restage", "--buildpack", &bp_arg], &env);
    assert_serves(&mut s);
    s.interrupt(CTRL_C);
    let out = all(&s);
    assert!(
        out.contains("go-local: reusing the cache written by an earlier compile"),
        "{out}"
    );

    // Nothing changed: the staging (and its release) is reused as it is.
    let mut s = p.run_env(&["--no-watch", "--buildpack", &bp_arg], &env);
    assert_serves(&mut s);
    s.interrupt(CTRL_C);
    assert!(!all(&s).contains("go-local: reusing"), "{}", all(&s));
}

fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.com"])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git");
    assert!(out.status.success(), "git {args:?}: {out:?}");
}

#[test]
fn a_buildpack_url_is_cloned_once_into_the_users_cache() {
    if !require("go") || !require("git") {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let repo = canon(tmp.path()).join("go-local");
    copy_buildpack(&repo);
    git(&repo, &["init", "-q"]);
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-qm", "buildpack"]);
    let url = format!("file://{}", repo.display());
    let p = go_project(Some(&url));
    let (cache, data) = xdg(&p);
    let env = [
        ("XDG_CACHE_HOME", cache.as_str()),
        ("XDG_DATA_HOME", data.as_str()),
    ];
    let mut s = p.run_env(&["--no-watch"], &env);
    assert_serves(&mut s);
    s.interrupt(CTRL_C);
    assert!(all(&s).contains("Cloning buildpack file://"), "{}", all(&s));
    let clones: Vec<_> = std::fs::read_dir(Path::new(&cache).join("stackato-local/buildpacks"))
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.path().join("bin/compile").is_file())
        .collect();
    assert_eq!(clones.len(), 1, "one clone in the user's cache");

    // The original gone: the clone in the cache is used.
    std::fs::remove_dir_all(&repo).unwrap();
    let mut s = p.run_env(&["--no-watch", "--restage"], &env);
    assert_serves(&mut s);
    s.interrupt(CTRL_C);
    let out = all(&s);
    assert!(out.contains("cloned before"), "{out}");
    assert!(out.contains("go-local: reusing the cache"), "{out}");
}

#[test]
fn installed_buildpacks_are_tried_in_order_and_the_one_that_detects_the_app_builds_it() {
    if !require("go") {
        return;
    }
    let p = go_project(None);
    let (cache, data) = xdg(&p);
    let installed = Path::new(&data).join("stackato-local/buildpacks");
    // The first declines everything; the second is the Go one.
    write(
        &installed,
        "a-nothing/bin/detect",
        b"#!/bin/sh\necho declined >&2\nexit 1\n",
    );
    write(&installed, "a-nothing/bin/compile", b"#!/bin/sh\nexit 9\n");
    for f in ["detect", "compile"] {
        let path = installed.join("a-nothing/bin").join(f);
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
    }
    copy_buildpack(&installed.join("b-go"));
    let env = [
        ("XDG_CACHE_HOME", cache.as_str()),
        ("XDG_DATA_HOME", data.as_str()),
    ];
    let mut s = p.run_env(&["--no-watch"], &env);
    assert_serves(&mut s);
    s.interrupt(CTRL_C);
    let out = all(&s);
    assert!(out.contains("Go app detected by"), "{out}");
    assert!(out.contains("b-go"), "{out}");

    // An app no installed buildpack recognises: staged by the built-in installers, saying
    // which buildpacks were tried (its Procfile starts it).
    let q = Project::new(&[
        ("stackato.yml", "name: notgo\n"),
        (
            "Procfile",
            "web: python3 -m http.server $PORT --bind 127.0.0.1\n",
        ),
        ("index.txt", "not go\n"),
    ]);
    let mut s = q.run_env(&["--no-watch"], &env);
    let port = s.ready("web.0", BUILD);
    assert_eq!(http_get(port, "/index.txt"), (200, "not go\n".into()));
    s.interrupt(CTRL_C);
    let out = all(&s);
    assert!(
        out.contains("none of the installed buildpacks")
            && out.contains("(tried: a-nothing, b-go)")
            && out.contains("built-in installers"),
        "{out}"
    );
    assert!(!out.contains("Default web process"), "{out}");
}

#[test]
fn an_unreachable_buildpack_url_stops_the_run_and_names_the_offline_way() {
    if !require("git") {
        return;
    }
    let p = go_project(Some("http://127.0.0.1:9/nowhere/heroku-buildpack-go.git"));
    let (cache, data) = xdg(&p);
    let env = [
        ("XDG_CACHE_HOME", cache.as_str()),
        ("XDG_DATA_HOME", data.as_str()),
    ];
    let mut s = p.run_env(&["--no-watch"], &env);
    let code = s.wait_exit(CTRL_C);
    assert_ne!(code, 0, "{}", s.dump());
    let out = all(&s);
    assert!(
        out.contains("git clone of the buildpack http://127.0.0.1:9/nowhere"),
        "{out}"
    );
    assert!(out.contains("--buildpack DIR"), "{out}");
    assert!(s.count(Stream::Err, "web.0") == 0, "{out}");
}

#[test]
fn allow_shows_a_buildpack_of_the_project_and_a_changed_script_asks_again() {
    if !require("go") {
        return;
    }
    let p = go_project(Some("buildpacks/go-local"));
    copy_buildpack(&p.app.join("buildpacks/go-local"));
    let home = tempfile::tempdir().unwrap();
    let allow = untrusting(&p.app, home.path(), &["allow"]);
    allow.code(0);
    allow.stdout_has("go-hello buildpack");
    allow.stdout_has("buildpacks/go-local");
    // Trusted: it stages and answers.
    let home_s = home.path().display().to_string();
    let data = home.path().join(".local/share").display().to_string();
    let mut s = Session::start(
        &p.app,
        &["--no-watch"],
        &[
            ("STACKATO_LOCAL_TRUST", "0"),
            ("HOME", home_s.as_str()),
            ("XDG_DATA_HOME", data.as_str()),
        ],
    );
    assert_serves(&mut s);
    s.interrupt(CTRL_C);
    // A changed compile script is not covered by the trust given.
    let compile = p.app.join("buildpacks/go-local/bin/compile");
    let text = std::fs::read_to_string(&compile).unwrap();
    std::fs::write(
        &compile,
        text.replace("set -eu", "set -eu\ntouch \"$1/changed\""),
    )
    .unwrap();
    let out = untrusting(&p.app, home.path(), &["run", "--no-watch", "--restage"]);
    out.code(8);
    assert!(out.dump().contains("bin/compile"), "{}", out.dump());
}

#[test]
fn an_edit_of_the_source_while_watching_compiles_again_and_exec_and_cron_see_the_profile_d() {
    if !require("go") {
        return;
    }
    let p = go_project(None);
    let yml = p.read("app/stackato.yml");
    p.edit(
        "stackato.yml",
        &format!("{yml}cron:\n  - \"* * * * * echo cron-sees [$GO_PROFILE_GREETING] [$GO_RELEASE_VAR]\"\n"),
    );
    let bp = p.root.join("go-local");
    copy_buildpack(&bp);
    let (cache, data) = xdg(&p);
    let env = [
        ("XDG_CACHE_HOME", cache.as_str()),
        ("XDG_DATA_HOME", data.as_str()),
    ];
    let bp_arg = bp.display().to_string();
    let mut s = p.run_env(&["--buildpack", &bp_arg], &env);
    assert_serves(&mut s);
    // The cron job sources `.profile.d` (its environment is the platform's cron one, which
    // has no release vars).
    s.wait_for(
        Stream::Out,
        "cron-sees [hello-from-env-dir (from .profile.d/go.sh)]",
        Duration::from_secs(180),
    );
    // `exec --staged` and `ssh --staged CMD` too.
    let show = "echo \"[$GO_PROFILE_GREETING] [$GO_RELEASE_VAR]\"";
    for verb in ["exec", "ssh"] {
        let mut args = vec![verb, "--staged"];
        if verb == "exec" {
            args.push("--");
        }
        args.extend(["sh", "-c", show]);
        let r = p.cmd(&args);
        r.code(0);
        assert!(
            r.dump()
                .contains("[hello-from-env-dir (from .profile.d/go.sh)] [set-by-release]"),
            "{verb}: {}",
            r.dump()
        );
    }

    // An edit of main.go: compile runs again (with its cache) and the new binary answers.
    let main = p.read("app/main.go");
    p.edit(
        "main.go",
        &main.replace("hello from go", "hello again from go"),
    );
    let port = s.ready_nth("web.0", 2, BUILD);
    let (code, body) = http_get(port, "/");
    assert_eq!(code, 200, "{body}\n{}", s.dump());
    assert!(body.contains("hello again from go"), "{body}\n{}", s.dump());
    s.interrupt(CTRL_C);
    assert!(
        all(&s).contains("go-local: reusing the cache written by an earlier compile"),
        "{}",
        all(&s)
    );
}

#[test]
fn no_buildpack_available_stops_before_staging_at_the_key_that_asks_for_one() {
    let p = Project::new(&[
        (
            "stackato.yml",
            "name: bp\nframework:\n  type: buildpack\nmem: 64M\n",
        ),
        ("main.go", "package main\n"),
    ]);
    let (cache, data) = xdg(&p);
    let env = [
        ("XDG_CACHE_HOME", cache.as_str()),
        ("XDG_DATA_HOME", data.as_str()),
    ];
    // Nothing named, nothing installed: at `type: buildpack` (line 3), before any staging.
    let r = run_with(&p.app, &["run", "--no-watch"], &env);
    r.code(2);
    let out = r.dump();
    for needle in [
        "stackato.yml:3:",
        "framework: buildpack",
        "none is installed",
        "--buildpack DIR",
    ] {
        assert!(out.contains(needle), "{needle}\n{out}");
    }
    assert!(!out.contains("staging bp"), "staged first: {out}");
    assert!(!p.state("apps/bp/g1").exists(), "staged first: {out}");

    // Installed ones that all decline: they are named as tried, and compile never runs.
    let installed = Path::new(&data).join("stackato-local/buildpacks");
    for name in ["a-nothing", "b-nothing"] {
        write(
            &installed,
            &format!("{name}/bin/detect"),
            b"#!/bin/sh\nexit 1\n",
        );
        write(
            &installed,
            &format!("{name}/bin/compile"),
            b"#!/bin/sh\nexit 9\n",
        );
        for f in ["detect", "compile"] {
            let path = installed.join(name).join("bin").join(f);
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
                .unwrap();
        }
    }
    let r = run_with(&p.app, &["run", "--no-watch"], &env);
    r.code(6);
    let out = r.dump();
    assert!(out.contains("tried: a-nothing, b-nothing"), "{out}");
    assert!(out.contains("--buildpack DIR"), "{out}");

    // A `buildpack:` directory that is not there: at its line, before staging; check and
    // doctor say so too.
    let q = Project::new(&[
        (
            "stackato.yml",
            "name: named\nbuildpack: buildpacks/go\nmem: 64M\n",
        ),
        ("main.go", "package main\n"),
    ]);
    let r = run_with(&q.app, &["run", "--no-watch"], &env);
    r.code(2);
    let out = r.dump();
    for needle in [
        "stackato.yml:2:",
        "buildpack: buildpacks/go",
        "no such directory",
        "--buildpack DIR",
    ] {
        assert!(out.contains(needle), "{needle}\n{out}");
    }
    assert!(!q.state("apps/named/g1").exists(), "staged first: {out}");
    let c = run_with(&q.app, &["check"], &env);
    assert!(
        c.dump().contains("`run` cannot start named") && c.dump().contains("buildpacks/go"),
        "{}",
        c.dump()
    );
    let d = run_with(&q.app, &["doctor"], &env);
    assert!(
        d.dump().contains("✘") && d.dump().contains("no such directory"),
        "{}",
        d.dump()
    );
}

#[test]
fn a_procfile_web_line_wins_over_the_release_and_doctor_and_export_agree() {
    if !require("go") {
        return;
    }
    let files = files_of(&fixture("go-procfile"));
    let mut files: Vec<(String, String)> = files
        .into_iter()
        .filter(|(k, _)| k != "stackato.yml" && k != "Procfile")
        .collect();
    files.push((
        "stackato.yml".into(),
        "name: gogettable\nframework:\n  type: buildpack\nmem: 64M\nenv:\n  BUILDPACK_URL: buildpacks/go-local\n".into(),
    ));
    files.push(("Procfile".into(), "web: ./bin/app -extra\n".into()));
    let refs: Vec<(&str, &str)> = files
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let p = Project::new(&refs);
    copy_buildpack(&p.app.join("buildpacks/go-local"));
    let (cache, data) = xdg(&p);
    let env = [
        ("XDG_CACHE_HOME", cache.as_str()),
        ("XDG_DATA_HOME", data.as_str()),
    ];
    let d = run_with(&p.app, &["doctor"], &env);
    assert!(
        d.dump().contains("buildpack of gogettable")
            && d.dump()
                .contains("buildpacks/go-local (a directory of the project)"),
        "{}",
        d.dump()
    );
    run_with(&p.app, &["check"], &env).stderr_lacks("cannot start");
    let mut s = p.run_env(&["--no-watch"], &env);
    let port = s.ready("web.0", BUILD);
    let (code, body) = http_get(port, "/");
    assert_eq!(code, 200, "{body}\n{}", s.dump());
    assert!(body.contains("args: -extra"), "{body}\n{}", s.dump());
    s.interrupt(CTRL_C);
    let procfile = p.export_procfile(&env);
    assert!(procfile.contains("web: ./bin/app -extra"), "{procfile}");
}
