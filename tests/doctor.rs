//! `stackato-local doctor` end to end, on this machine: its ✔/✘ lines must agree with what is
//! installed here (found the way the product finds programs) and with what it is told to
//! find nothing (`STACKATO_LOCAL_SERVER_PATH=` set but empty: no server program, no runtime),
//! with install commands for Debian/Ubuntu, Fedora and macOS under each ✘; versions match the
//! programs' own `--version`; the inotify line counts directories like the watcher; remembered
//! ports held by a stranger fail, ports held by the project's own server pass; exit codes 0, 1,
//! 2 and 3.
//!
//! Tests needing a server print a loud SKIP when it is not installed, or fail when
//! `STACKATO_LOCAL_REQUIRE_SERVICES=1` (see `common::require`).

use std::path::Path;

use crate::common::*;

/// Whether check `label` passed, its detail (after `label: `) and the fix lines under it.
#[track_caller]
fn check<'a>(r: &'a Run, label: &str) -> (bool, &'a str, Vec<&'a str>) {
    let lines: Vec<&str> = r.stdout.lines().collect();
    for (i, l) in lines.iter().enumerate() {
        let (ok, rest) = if let Some(rest) = l.strip_prefix("✔ ") {
            (true, rest)
        } else if let Some(rest) = l.strip_prefix("✘ ") {
            (false, rest)
        } else {
            continue;
        };
        if let Some(detail) = rest.strip_prefix(&format!("{label}: ")) {
            let fix: Vec<&str> = lines[i + 1..]
                .iter()
                .take_while(|f| f.starts_with("    "))
                .map(|f| f.trim())
                .collect();
            return (ok, detail, fix);
        }
    }
    panic!("no ✔/✘ line for {label:?}\n{}", r.dump());
}

#[track_caller]
fn assert_install(r: &Run, label: &str, debian: &str, fedora: &str, macos: &str) {
    let (ok, line, fix) = check(r, label);
    assert!(!ok, "{label} should fail: {line}\n{}", r.dump());
    assert_eq!(
        fix,
        vec![
            format!("Debian/Ubuntu: sudo {debian}"),
            format!("Fedora:        sudo {fedora}"),
            format!("macOS:         {macos}"),
        ],
        "fix lines of {label}\n{}",
        r.dump()
    );
}

/// The first version number in `text` (`15.18`, `7.0.15`, …).
fn version_in(text: &str) -> Option<String> {
    text.split(|c: char| c.is_whitespace() || "=(),/".contains(c))
        .map(|w| w.trim_start_matches('v'))
        .find_map(|w| {
            let v: String = w
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.')
                .collect();
            let v = v.trim_end_matches('.').to_string();
            (v.contains('.') && v.starts_with(|c: char| c.is_ascii_digit())).then_some(v)
        })
}

/// The version a program reports for `--version`.
fn reported_version(program: &Path) -> String {
    let out = std::process::Command::new(program)
        .arg("--version")
        .output()
        .expect("run --version");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    version_in(&text).unwrap_or_else(|| panic!("no version in {text:?}"))
}

const FOUR_SERVICES: &str = "name: shop\nservices:\n  shop-pg: postgresql\n  shop-my: mysql\n  shop-cache: redis\n  shop-mc: memcached\n";

#[test]
fn absent_servers_fail_with_install_commands() {
    let t = yml(FOUR_SERVICES);
    let r = run_with(t.path(), &["doctor"], &[("STACKATO_LOCAL_SERVER_PATH", "")]);
    r.code(1);
    assert_install(
        &r,
        "service shop-pg (postgresql)",
        "apt-get install postgresql",
        "dnf install postgresql-server",
        "brew install postgresql",
    );
    assert_install(
        &r,
        "service shop-my (mysql)",
        "apt-get install mariadb-server",
        "dnf install mariadb-server",
        "brew install mariadb",
    );
    assert_install(
        &r,
        "service shop-cache (redis)",
        "apt-get install redis-server",
        "dnf install redis",
        "brew install redis",
    );
    assert_install(
        &r,
        "service shop-mc (memcached)",
        "apt-get install memcached",
        "dnf install memcached",
        "brew install memcached",
    );
    let (_, line, _) = check(&r, "service shop-pg (postgresql)");
    assert!(
        line.contains(
            "PostgreSQL is not installed (postgres not found); `run` uses sqlite instead"
        ),
        "{line}"
    );
    let (_, line, _) = check(&r, "service shop-cache (redis)");
    assert!(line.contains("`run` cannot start it"), "{line}");
    r.stdout_has("4 of 8 checks failed");
}

#[test]
fn present_servers_pass_with_their_versions() {
    if !require_all(&[
        "postgres",
        "initdb",
        "mariadbd|mysqld",
        "redis-server",
        "memcached",
    ]) {
        return;
    }
    let t = yml(FOUR_SERVICES);
    let r = run(t.path(), &["doctor"]);
    r.code(0);
    for (label, product, program) in [
        ("service shop-pg (postgresql)", "PostgreSQL", "postgres"),
        (
            "service shop-my (mysql)",
            "MariaDB (for mysql)",
            "mariadbd|mysqld",
        ),
        ("service shop-cache (redis)", "Redis", "redis-server"),
        ("service shop-mc (memcached)", "memcached", "memcached"),
    ] {
        let (ok, line, fix) = check(&r, label);
        assert!(ok && fix.is_empty(), "{line}\n{}", r.dump());
        let path = find_program(program).expect("installed");
        let version = reported_version(&path);
        assert!(
            line.contains(&format!("{product} {version} (")),
            "{label}: expected {product} {version} in {line:?}"
        );
        assert!(line.contains(&path.display().to_string()), "{line}");
    }
    r.stdout_has("All 8 checks passed.");
}

#[test]
fn python_app_needs_python_venv_and_uwsgi_prerequisites() {
    let t = app(&[
        (
            "stackato.yml",
            "name: py\nframework: {type: python}\nprocesses:\n  web: $STACKATO_UWSGI\n",
        ),
        ("wsgi.py", "application = None\n"),
    ]);
    // Nothing found: python3 and its headers fail with install commands.
    let r = run_with(t.path(), &["doctor"], &[("STACKATO_LOCAL_SERVER_PATH", "")]);
    r.code(1);
    assert_install(
        &r,
        "python3",
        "apt-get install python3 python3-venv",
        "dnf install python3",
        "brew install python",
    );
    assert_install(
        &r,
        "Python headers for uWSGI",
        "apt-get install python3-dev",
        "dnf install python3-devel",
        "brew install python",
    );
    // A compiler that is not there.
    let r = run_with(t.path(), &["doctor"], &[("CC", "/nonexistent/bin/cc")]);
    r.code(1);
    assert_install(
        &r,
        "C compiler for uWSGI",
        "apt-get install gcc",
        "dnf install gcc",
        "xcode-select --install",
    );
    // This machine as it is.
    let Some(py) = find_program("python3") else {
        skip("python3 is not installed");
        return;
    };
    let r = run_with(t.path(), &["doctor"], &[("CC", "cc")]);
    let (ok, line, _) = check(&r, "python3");
    assert!(ok, "{line}");
    assert!(
        line.contains(&format!("Python {}", reported_version(&py))),
        "{line}"
    );
    let venv_ok = std::process::Command::new(&py)
        .args(["-c", "import venv, ensurepip"])
        .status()
        .is_ok_and(|s| s.success());
    assert_eq!(check(&r, "python3 venv module").0, venv_ok, "{}", r.dump());
    let cc = find_program("cc");
    assert_eq!(
        check(&r, "C compiler for uWSGI").0,
        cc.is_some(),
        "{}",
        r.dump()
    );
    let include = std::process::Command::new(&py)
        .args([
            "-c",
            "import sysconfig;print(sysconfig.get_paths()['include'])",
        ])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let header = Path::new(&include).join("Python.h");
    if header.is_file() {
        let (ok, line, _) = check(&r, "Python headers for uWSGI");
        assert!(ok && line.contains(&header.display().to_string()), "{line}");
    }
    let all = venv_ok && cc.is_some() && header.is_file();
    assert_eq!(r.code, Some(if all { 0 } else { 1 }), "{}", r.dump());
}

#[test]
fn other_runtimes_match_what_is_installed() {
    for (framework, programs, extra_files) in [
        ("node", &["node", "npm"][..], &[("server.js", "")][..]),
        ("perl", &["perl", "cpanm"][..], &[("app.psgi", "")][..]),
        ("php", &["php"][..], &[("index.php", "<?php\n")][..]),
        ("rack", &["ruby", "bundle"][..], &[("config.ru", "")][..]),
    ] {
        let manifest = format!("name: rt\nframework: {{type: {framework}}}\n");
        let mut files: Vec<(&str, &str)> = vec![("stackato.yml", &manifest)];
        files.extend_from_slice(extra_files);
        let t = app(&files);
        let r = run(t.path(), &["doctor"]);
        let mut all = true;
        for p in programs {
            let installed = find_program(p);
            let (ok, line, fix) = check(&r, p);
            assert_eq!(ok, installed.is_some(), "{framework}: {line}\n{}", r.dump());
            if ok {
                assert!(fix.is_empty());
            } else {
                all = false;
                assert!(line.contains(&format!("{p} not found")), "{line}");
                assert_eq!(
                    fix.len(),
                    3,
                    "{framework}: install lines for {p}\n{}",
                    r.dump()
                );
                assert!(fix[0].starts_with("Debian/Ubuntu: sudo apt-get install "));
                assert!(fix[1].starts_with("Fedora:        sudo dnf install "));
                assert!(fix[2].starts_with("macOS:         "));
            }
        }
        // Perl's default web command is $STACKATO_UWSGI: uWSGI's PSGI plugin, else plackup.
        if framework == "perl" {
            let server = find_program("uwsgi_psgi").or_else(|| find_program("plackup"));
            let (ok, line, fix) = check(&r, "PSGI server for rt");
            assert_eq!(ok, server.is_some(), "{line}\n{}", r.dump());
            if !ok {
                assert!(fix[0].contains("libplack-perl"), "{}", r.dump());
                all = false;
            }
        }
        r.code(if all { 0 } else { 1 });
        // Told to find nothing, every runtime fails.
        let r = run_with(t.path(), &["doctor"], &[("STACKATO_LOCAL_SERVER_PATH", "")]);
        r.code(1);
        for p in programs {
            assert!(
                !check(&r, p).0,
                "{framework}: {p} found with an empty search path"
            );
        }
    }
}

#[test]
fn inotify_line_counts_directories_like_the_watcher() {
    let Ok(limit) = std::fs::read_to_string("/proc/sys/fs/inotify/max_user_watches") else {
        skip("no inotify on this machine");
        return;
    };
    let limit = limit.trim().to_string();
    let t = app(&[
        ("stackato.yml", "name: w\nignores: [.git/, build/]\n"),
        ("a/b/c.txt", "x"),
        ("node_modules/x/index.js", "x"),
        ("build/out.o", "x"),
        (".git/objects/ab", "x"),
        (".stackato-local/services/db/x", "x"),
        (".gitignore", "node_modules/\n"),
    ]);
    // The app dir, a and a/b: not .git, build (ignores:), node_modules (.gitignore) or the
    // state directory.
    let r = run(t.path(), &["doctor"]);
    r.code(0);
    let (ok, line, _) = check(&r, "inotify watches");
    assert!(ok, "{line}");
    assert!(
        line.starts_with(&format!(
            "3 directories to watch; limit {limit} (fs.inotify.max_user_watches)"
        )),
        "{line}"
    );
    // Without the .gitignore, node_modules and node_modules/x are watched too.
    std::fs::remove_file(t.path().join(".gitignore")).unwrap();
    let r = run(t.path(), &["doctor"]);
    let (_, line, _) = check(&r, "inotify watches");
    assert!(line.starts_with("5 directories to watch"), "{line}");
}

#[test]
fn remembered_ports_held_by_a_stranger_fail() {
    let t = app(&[("stackato.yml", "name: p\n")]);
    let held = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let held_port = held.local_addr().unwrap().port();
    let free_port = {
        let l = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
        l.local_addr().unwrap().port()
    };
    write(
        t.path(),
        ".stackato-local/ports.json",
        format!("{{\"p/0\": {held_port}, \"p/1\": {free_port}}}").as_bytes(),
    );
    let r = run(t.path(), &["doctor"]);
    r.code(1);
    let (ok, line, fix) = check(&r, "remembered ports");
    assert!(!ok, "{line}");
    assert!(
        line.contains(&format!(
            "port {held_port} (app instance p/0) is held by another program: pid {}",
            std::process::id()
        )),
        "{line}"
    );
    assert!(!line.contains(&format!("port {free_port} ")), "{line}");
    assert!(fix[0].contains("ports.json"), "{fix:?}");
    drop(held);
    let r = run(t.path(), &["doctor"]);
    r.code(0);
    let (ok, line, _) = check(&r, "remembered ports");
    assert!(ok, "{line}");
    assert!(line.contains(&held_port.to_string()), "{line}");
}

/// Stops the project's services when the test ends, whatever happened.
struct StopServices<'a>(&'a Path);

impl Drop for StopServices<'_> {
    fn drop(&mut self) {
        let _ = cmd(self.0).args(["services", "stop"]).output();
    }
}

#[test]
fn ports_held_by_our_own_server_pass() {
    if !require("redis-server") {
        return;
    }
    let t = yml("name: own\nservices:\n  own-cache: redis\n");
    let _stop = StopServices(t.path());
    run(t.path(), &["services", "start"]).code(0);
    let r = run(t.path(), &["doctor"]);
    r.code(0);
    let (ok, line, _) = check(&r, "remembered ports");
    assert!(ok, "{line}");
    assert!(line.contains("by our redis server (pid "), "{line}");
    let (ok, line, _) = check(&r, "service own-cache (redis)");
    assert!(
        ok && line.contains("running for this project (pid "),
        "{line}"
    );
}

#[test]
fn state_directory_and_exit_codes() {
    let t = yml("name: s\n");
    let r = run(t.path(), &["doctor"]);
    r.code(0);
    let (ok, line, _) = check(&r, "state directory");
    assert!(
        ok && line.contains("does not exist yet; it can be created"),
        "{line}"
    );
    assert!(
        !t.path().join(".stackato-local").exists(),
        "doctor created the state directory"
    );
    // A file where the state directory should be.
    write(t.path(), ".stackato-local", b"oops");
    let r = run(t.path(), &["doctor"]);
    r.code(1);
    assert!(!check(&r, "state directory").0);

    // No manifest: 3, pointing at init; an invalid one: 2.
    let empty = app(&[]);
    run(empty.path(), &["doctor"])
        .code(3)
        .stderr_has("stackato-local init");
    let bad = yml("name: [\n");
    run(bad.path(), &["doctor"]).code(2);
    run(t.path(), &["doctor", "--app", "nope"]).code(64);
}
