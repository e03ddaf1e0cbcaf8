//! Hardening tests: trust (issue 11, items 1–4, 7, 8 and the shell hook's gate). Each test is
//! a repository crafted to run something before the user allowed it, or to hide or forge what
//! is trusted; the user never trusted anything (no STACKATO_LOCAL_TRUST, a fresh `HOME`, stdin
//! not a terminal), so the gate must refuse with exit 8 and nothing of the project may run.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::project::Project;
use crate::common::session::Session;
use crate::common::{Run, SHORT, cmd, home, untrusting, untrusting_bounded};

/// `run` without watching, ended by the app's first exit.
const RUN_ONCE: &[&str] = &["run", "--no-watch", "--exit-on-crash"];

/// The binary in the app dir as a user who trusted nothing yet: `HOME` at `home`, no
/// XDG_DATA_HOME, no STACKATO_LOCAL_TRUST.
fn untrusted(p: &Project, home: &Path, args: &[&str]) -> Run {
    untrusting(&p.app, home, args)
}

/// The store the user's `allow` wrote.
fn store(home: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(home.join(".local/share/stackato-local/trust.json"))
        .expect("the trust store");
    serde_json::from_str(&text).expect("the trust store is JSON")
}

// ---------------------------------------------------------------------------------------------
// 1. A manifest without commands still runs repository code: installers, default web command.
// ---------------------------------------------------------------------------------------------

#[test]
fn npm_lifecycle_scripts_of_a_command_less_manifest_are_not_run_without_allow() {
    let p = Project::new(&[
        ("stackato.yml", "name: quiet\nframework:\n  type: node\n"),
        (
            "package.json",
            r#"{"name": "quiet", "scripts": {"postinstall": "touch @ROOT@/postinstall"}}"#,
        ),
        (
            "server.js",
            "require('http').createServer().listen(process.env.PORT);\n",
        ),
    ]);
    let h = home();
    let r = untrusted(&p, h.path(), RUN_ONCE);
    r.code(8);
    r.stderr_has(&format!(
        "  quiet npm postinstall script: touch {}/postinstall\n",
        p.root.display()
    ));
    r.stderr_has("  quiet installer: npm install\n");
    r.stderr_has("  quiet web (framework default): node server.js\n");
    r.stderr_lacks("==> services");
    assert!(!p.file("postinstall").exists(), "{}", r.dump());
    // Allowed, then the script changes: asked again before anything runs.
    untrusted(&p, h.path(), &["allow"])
        .code(0)
        .stdout_has("npm postinstall script");
    p.write_all(&[(
        "package.json",
        r#"{"name": "quiet", "scripts": {"postinstall": "touch @ROOT@/changed"}}"#,
    )]);
    let r = untrusted(&p, h.path(), RUN_ONCE);
    r.code(8);
    r.stderr_has("changed since it was allowed:\n");
    r.stderr_has("  file changed: ");
    r.stderr_has(&format!(
        "  added: quiet npm postinstall script: touch {}/changed\n",
        p.root.display()
    ));
    r.stderr_has(&format!(
        "  removed: quiet npm postinstall script: touch {}/postinstall\n",
        p.root.display()
    ));
    assert!(!p.file("changed").exists());
}

#[test]
fn a_local_package_in_requirements_is_shown_and_its_setup_py_is_covered() {
    let p = Project::new(&[
        (
            "stackato.yml",
            "name: py\nprocesses:\n  web: ~\ncommand: exit 0\n",
        ),
        ("requirements.txt", "-e ./pkg\n"),
        (
            "pkg/setup.py",
            "open('@ROOT@/setup-ran', 'w')\nfrom setuptools import setup\nsetup(name='pkg')\n",
        ),
    ]);
    let h = home();
    let r = untrusted(&p, h.path(), RUN_ONCE);
    r.code(8);
    r.stderr_has("  py installer: pip install -r requirements.txt");
    r.stderr_has("  py local package: ./pkg (pip builds it from source");
    assert!(!p.file("setup-ran").exists());
    untrusted(&p, h.path(), &["allow"]).code(0);
    // The package's setup.py is what runs: changing only it asks again.
    p.write_all(&[(
        "pkg/setup.py",
        "open('@ROOT@/other', 'w')\nfrom setuptools import setup\nsetup(name='pkg')\n",
    )]);
    let r = untrusted(&p, h.path(), RUN_ONCE);
    r.code(8);
    r.stderr_has("  file changed: pkg/setup.py\n");
    assert!(!p.file("other").exists() && !p.file("setup-ran").exists());
}

#[test]
fn files_named_by_pip_opts_are_covered_like_requirements_files() {
    // Staging passes PIP_OPTS to every `pip install`: `-r extra.txt -e ./pkg` makes pip read
    // extra.txt and build pkg (red-team finding: neither was recorded).
    let p = Project::new(&[
        (
            "stackato.yml",
            "name: py\nprocesses:\n  web: ~\ncommand: exit 0\nenv:\n  PIP_OPTS: -r extra.txt --no-deps -e ./pkg\n",
        ),
        ("extra.txt", "six\n"),
        (
            "pkg/setup.py",
            "from setuptools import setup\nsetup(name='pkg')\n",
        ),
    ]);
    let h = home();
    untrusted(&p, h.path(), &["allow"]).code(0);
    for (file, text) in [
        ("extra.txt", "six\n-e ./evil\n"),
        ("pkg/setup.py", "open('@ROOT@/ran', 'w')\n"),
    ] {
        p.write_all(&[(file, text)]);
        let r = untrusted(&p, h.path(), RUN_ONCE);
        r.code(8);
        r.stderr_has(&format!("  file changed: {file}\n"));
        untrusted(&p, h.path(), &["allow"]).code(0);
    }
    assert!(!p.file("ran").exists());
}

#[test]
fn a_manifest_with_no_commands_at_all_is_never_trusted_automatically() {
    let p = Project::new(&[("stackato.yml", "name: bare\n")]);
    let h = home();
    let r = untrusted(&p, h.path(), &["exec", "--", "true"]);
    r.code(8);
    r.stderr_has("have not been trusted on this machine yet");
    untrusted(&p, h.path(), &["allow"])
        .code(0)
        .stdout_has("runs no commands of its own");
    untrusted(&p, h.path(), &["exec", "--", "true"]).code(0);
}

// ---------------------------------------------------------------------------------------------
// 2. Variables that change how programs run are shown and covered.
// ---------------------------------------------------------------------------------------------

#[test]
fn bash_env_in_dotenv_or_env_is_shown_and_a_change_asks_again() {
    let p = Project::new(&[
        (
            "stackato.yml",
            "name: envy\nenv:\n  ENV: ./rc.sh\n  DEBUG: 'yes'\nprocesses:\n  web: ~\ncommand: exit 0\n",
        ),
        (".env", "BASH_ENV=./evil.sh\nGREETING=hi\n"),
        ("evil.sh", "touch @ROOT@/evil\n"),
    ]);
    let h = home();
    let r = untrusted(&p, h.path(), RUN_ONCE);
    r.code(8);
    r.stderr_has("  envy env (.env): BASH_ENV=./evil.sh\n");
    r.stderr_has("  envy env (manifest): ENV=./rc.sh\n");
    // Data is not listed as a command.
    r.stderr_lacks("GREETING");
    r.stderr_lacks("DEBUG=");
    assert!(!p.file("evil").exists());
    untrusted(&p, h.path(), &["allow"]).code(0);
    // Only .env changes: asked again (the manifest is the same).
    p.write_all(&[(".env", "BASH_ENV=./other.sh\nGREETING=hi\n")]);
    let r = untrusted(&p, h.path(), &["exec", "--", "true"]);
    r.code(8);
    r.stderr_has("  added: envy env (.env): BASH_ENV=./other.sh\n");
    assert!(!p.file("evil").exists());
}

#[test]
fn a_project_cannot_set_stackato_local_trust_for_the_tool() {
    let p = Project::new(&[
        (
            "stackato.yml",
            "name: self\nenv:\n  STACKATO_LOCAL_TRUST: '1'\nprocesses:\n  web: ~\ncommand: touch @ROOT@/ran\n",
        ),
        (".env", "STACKATO_LOCAL_TRUST=1\n"),
    ]);
    let h = home();
    let r = untrusted(&p, h.path(), RUN_ONCE);
    r.code(8);
    r.stderr_has("  self env (.env): STACKATO_LOCAL_TRUST=1\n");
    assert!(!p.file("ran").exists());
}

// ---------------------------------------------------------------------------------------------
// 3. Procfile lines are shown and covered.
// ---------------------------------------------------------------------------------------------

#[test]
fn a_procfile_web_command_is_shown_and_a_change_asks_again() {
    let p = Project::new(&[
        ("stackato.yml", "name: pf\n"),
        (
            "Procfile",
            "web: touch @ROOT@/web-ran; exec sleep 100\nworker: touch @ROOT@/w\n",
        ),
    ]);
    let h = home();
    let r = untrusted(&p, h.path(), RUN_ONCE);
    r.code(8);
    r.stderr_has(&format!(
        "  pf Procfile web: touch {}/web-ran; exec sleep 100\n",
        p.root.display()
    ));
    r.stderr_has(&format!(
        "  pf Procfile worker: touch {}/w\n",
        p.root.display()
    ));
    untrusted(&p, h.path(), &["allow"]).code(0);
    p.write_all(&[("Procfile", "web: touch @ROOT@/new-web; exec sleep 100\n")]);
    let r = untrusted(&p, h.path(), RUN_ONCE);
    r.code(8);
    r.stderr_has(&format!(
        "  added: pf Procfile web: touch {}/new-web; exec sleep 100\n",
        p.root.display()
    ));
    assert!(!p.file("web-ran").exists() && !p.file("new-web").exists());
}

// ---------------------------------------------------------------------------------------------
// 4. exec, ssh, dbshell and services start go through the same gate.
// ---------------------------------------------------------------------------------------------

#[test]
fn exec_and_ssh_in_an_unallowed_project_run_nothing_not_even_a_planted_path() {
    let p = Project::new(&[
        ("stackato.yml", "name: planted\n"),
        (".env", "PATH=./bin:/usr/local/bin:/usr/bin:/bin\n"),
        ("bin/true", "#!/bin/sh\ntouch @ROOT@/planted\n"),
        ("bin/sh", "#!/bin/sh\ntouch @ROOT@/planted-sh\n"),
    ]);
    for f in ["bin/true", "bin/sh"] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(p.app.join(f), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
    }
    let h = home();
    for args in [&["exec", "--", "true"][..], &["ssh", "--", "true"][..]] {
        let r = untrusted(&p, h.path(), args);
        r.code(8);
        r.stderr_has("  planted env (.env): PATH=./bin:/usr/local/bin:/usr/bin:/bin\n");
    }
    assert!(!p.file("planted").exists() && !p.file("planted-sh").exists());
    // --trust is for one invocation and records nothing.
    let r = untrusted(&p, h.path(), &["--trust", "exec", "--", "/bin/true"]);
    r.code(0);
    assert!(
        !h.path()
            .join(".local/share/stackato-local/trust.json")
            .exists()
    );
}

#[test]
fn dbshell_and_services_start_in_an_unallowed_project_start_nothing() {
    let p = Project::new(&[(
        "stackato.yml",
        "name: db\nservices:\n  cache: redis\nhooks:\n  pre-running:\n    - touch @ROOT@/hook\n",
    )])
    .with_services(&["cache"]);
    let h = home();
    for args in [
        &["services", "start"][..],
        &["dbshell"][..],
        &["services", "shell", "cache"][..],
    ] {
        let r = untrusted(&p, h.path(), args);
        r.code(8);
        r.stderr_has("have not been trusted on this machine yet");
    }
    assert!(!p.state("services/cache/server.pid").exists());
    // Listing the services needs no trust.
    untrusted(&p, h.path(), &["services"]).code(0);
}

// ---------------------------------------------------------------------------------------------
// 7. Control characters cannot hide a command.
// ---------------------------------------------------------------------------------------------

fn has_raw_control(s: &str) -> Option<char> {
    s.chars()
        .find(|&c| (c.is_control() && c != '\n') || ('\u{202a}'..='\u{202e}').contains(&c))
}

#[test]
fn carriage_returns_and_escape_sequences_are_shown_visibly() {
    // The hook shows as `echo harmless` on a terminal when printed raw.
    let p = Project::new(&[(
        "stackato.yml",
        "name: hidden\nhooks:\n  post-staging:\n    - \"touch @ROOT@/evil\\r\\e[2Kecho harmless\"\n    - \"echo \\u202Eabc\"\nprocesses:\n  web: ~\ncommand: exit 0\n",
    )]);
    let h = home();
    let refused = untrusted(&p, h.path(), RUN_ONCE);
    refused.code(8);
    let allowed = untrusted(&p, h.path(), &["allow"]);
    allowed.code(0);
    for (what, text) in [("refusal", &refused.stderr), ("allow", &allowed.stdout)] {
        assert_eq!(has_raw_control(text), None, "{what}: {text:?}");
        assert!(
            text.contains(&format!(
                "hidden post-staging hook: touch {}/evil\\r\\x1b[2Kecho harmless\n",
                p.root.display()
            )),
            "{what}: {text}"
        );
        assert!(text.contains("echo \\u{202e}abc"), "{what}: {text}");
    }
}

// ---------------------------------------------------------------------------------------------
// 8. The store is structured: a path cannot inject a record; digests are SHA-256.
// ---------------------------------------------------------------------------------------------

#[test]
fn a_newline_in_a_project_path_cannot_trust_another_project() {
    let tmp = tempfile::tempdir().expect("temp dir");
    let top = crate::common::canon(tmp.path());
    let victim = Project::at(
        &top.join("victim"),
        &[(
            "stackato.yml",
            "name: victim\nprocesses:\n  web: ~\ncommand: touch @ROOT@/ran\n",
        )],
    );
    let victim_manifest = victim.app.join("stackato.yml").display().to_string();
    // A directory whose name carries what would be a record for the victim in a line-based
    // or naively built store.
    let name = format!(
        "x\nrun 0000000000000000 {victim_manifest}\n\",\"projects\":{{\"{victim_manifest}\":{{}}}}"
    );
    let evil = Project::at(
        &top.join(&name),
        &[(
            "stackato.yml",
            "name: evil\nprocesses:\n  web: ~\ncommand: exit 0\n",
        )],
    );
    let h = home();
    untrusted(&evil, h.path(), &["allow"]).code(0);
    let s = store(h.path());
    let keys: Vec<&String> = s["projects"]
        .as_object()
        .expect("projects")
        .keys()
        .collect();
    assert_eq!(
        keys,
        vec![&evil.app.join("stackato.yml").display().to_string()]
    );
    untrusted(&victim, h.path(), RUN_ONCE).code(8);
    assert!(!victim.file("ran").exists());
    // The listing shows the path on one line, escaped.
    let list = untrusted(&evil, h.path(), &["allow", "--list"]);
    list.code(0);
    assert_eq!(list.stdout.lines().count(), 1, "{}", list.dump());
    assert!(
        list.stdout.contains("x\\nrun 0000000000000000"),
        "{}",
        list.dump()
    );
}

#[test]
fn the_record_holds_sha256_digests_of_the_files() {
    use sha2::Digest;
    let manifest = "name: sha\nprocesses:\n  web: ~\ncommand: exit 0\n";
    let p = Project::new(&[("stackato.yml", manifest), (".env", "A=1\n")]);
    let h = home();
    untrusted(&p, h.path(), &["allow"]).code(0);
    let s = store(h.path());
    let key = p.app.join("stackato.yml").display().to_string();
    let files = s["projects"][&key]["files"]
        .as_array()
        .expect("files")
        .clone();
    for (rel, text) in [("stackato.yml", manifest), (".env", "A=1\n")] {
        let path = p.app.join(rel).display().to_string();
        let want = format!("{:x}", sha2::Sha256::digest(text.as_bytes()));
        let f = files
            .iter()
            .find(|f| f["path"] == path.as_str())
            .unwrap_or_else(|| panic!("{rel} is not recorded: {s:#}"));
        assert_eq!(f["state"]["sha256"], want.as_str(), "{s:#}");
    }
}

#[test]
fn the_old_store_is_not_honoured_and_says_so_once() {
    let p = Project::new(&[(
        "stackato.yml",
        "name: old\nprocesses:\n  web: ~\ncommand: touch @ROOT@/ran\n",
    )]);
    let h = home();
    let dir = h.path().join(".local/share/stackato-local");
    std::fs::create_dir_all(&dir).expect("mkdir");
    let manifest = p.app.join("stackato.yml").display().to_string();
    std::fs::write(
        dir.join("trusted"),
        format!("run 0123456789abcdef {manifest}\nenv 0123456789abcdef {manifest}\n"),
    )
    .expect("old store");
    let r = untrusted(&p, h.path(), RUN_ONCE);
    r.code(8);
    r.stderr_has(&format!(
        "stackato-local: the trust store changed format; projects must be allowed again (old file: {})",
        dir.join("trusted").display()
    ));
    assert!(!p.file("ran").exists());
    let r = untrusted(&p, h.path(), RUN_ONCE);
    r.code(8);
    r.stderr_lacks("changed format");
}

#[test]
fn allow_list_shows_what_is_trusted_and_deny_revokes_it() {
    let a = Project::new(&[(
        "stackato.yml",
        "name: a\nprocesses:\n  web: ~\ncommand: exit 0\n",
    )]);
    let b = Project::new(&[(
        "stackato.yml",
        "name: b\nprocesses:\n  web: ~\ncommand: exit 0\n",
    )]);
    let h = home();
    let list = untrusted(&a, h.path(), &["allow", "--list"]);
    list.code(0).stdout_has("no project is trusted");
    untrusted(&a, h.path(), &["allow"]).code(0);
    untrusted(&b, h.path(), &["allow"]).code(0);
    let (ma, mb) = (
        a.app.join("stackato.yml").display().to_string(),
        b.app.join("stackato.yml").display().to_string(),
    );
    let list = untrusted(&a, h.path(), &["allow", "--list"]);
    list.code(0);
    for m in [&ma, &mb] {
        let line = list
            .stdout
            .lines()
            .find(|l| l.starts_with(m.as_str()))
            .unwrap_or_else(|| panic!("{m} not listed\n{}", list.dump()));
        assert!(
            line.contains("files unchanged") && line.contains(" UTC"),
            "{line}"
        );
    }
    a.write_all(&[(".env", "X=1\n")]);
    let list = untrusted(&a, h.path(), &["allow", "--list"]);
    list.stdout_has(&format!(
        "changed since allowed: {}",
        a.app.join(".env").display()
    ));
    // deny DIR, from elsewhere.
    let r = untrusting(&a.root, h.path(), &["deny", &b.app.display().to_string()]);
    r.code(0).stdout_has(&format!("no longer trusted: {mb}"));
    untrusted(&b, h.path(), RUN_ONCE).code(8);
    let list = untrusted(&a, h.path(), &["allow", "--list"]);
    assert!(!list.stdout.contains(&mb), "{}", list.dump());
    assert!(list.stdout.contains(&ma), "{}", list.dump());
    // deny in the project itself.
    untrusted(&a, h.path(), &["deny"]).code(0);
    untrusted(&a, h.path(), &["allow", "--list"]).stdout_has("no project is trusted");
}

// ---------------------------------------------------------------------------------------------
// A watching run: a trusted file other than the manifest changes.
// ---------------------------------------------------------------------------------------------

#[test]
fn a_dotenv_change_during_a_watching_run_stops_it_without_a_terminal() {
    let p = Project::new(&[
        (
            "stackato.yml",
            "name: watched\nprocesses:\n  web: ~\ncommand: echo up; exec sleep 1000\n",
        ),
        (".env", "A=1\n"),
    ]);
    let h = home();
    untrusted(&p, h.path(), &["allow"]).code(0);
    let home_s = h.path().display().to_string();
    let mut s = Session::start(
        &p.app,
        &[],
        &[("HOME", &home_s), ("STACKATO_LOCAL_TRUST", "0")],
    );
    s.wait_err("==> running and watching for changes", SHORT);
    s.wait_for(crate::common::session::Stream::Out, "worker.0 | up", SHORT);
    // The watcher sets itself up in the background after that line: wait for it.
    crate::common::procs::wait_watching(s.pid, SHORT);
    p.write_all(&[(".env", "A=1\nBASH_ENV=@ROOT@/evil.sh\n")]);
    s.expect_exit(8, SHORT);
    assert!(
        s.stderr().contains(&format!(
            "  added: watched env (.env): BASH_ENV={}/evil.sh\n",
            p.root.display()
        )),
        "{}",
        s.dump()
    );
}

// ---------------------------------------------------------------------------------------------
// The shell hook's gate: nothing heavier than a stat for an unallowed directory.
// ---------------------------------------------------------------------------------------------

#[test]
fn the_hook_reads_nothing_of_an_unallowed_project() {
    for inherit in ["/dev/zero", "fifo"] {
        let p = Project::new(&[(
            "stackato.yml",
            &format!("name: lure\ninherit: {inherit}\nenv:\n  LURE: 'yes'\n"),
        )]);
        nix::unistd::mkfifo(
            &p.app.join("fifo"),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .expect("mkfifo");
        let h = home();
        let (code, out, err) = untrusting_bounded(&p.app, h.path(), &["__hook-env", "bash"]);
        assert_eq!(code, Some(0), "{err}");
        // The message is shell code the hook's snippet evaluates (`echo … >&2`).
        assert!(out.contains("is not allowed"), "{inherit}: {out}\n{err}");
        assert!(!out.contains("LURE"), "{inherit}: {out}");
        // Nothing was created in the project either.
        assert!(!p.app.join(".stackato-local").exists(), "{inherit}");
    }
}

#[test]
fn the_hook_does_not_parse_an_allowed_manifest_that_changed() {
    let p = Project::new(&[("stackato.yml", "name: hooked\nenv:\n  LURE: 'yes'\n")]);
    nix::unistd::mkfifo(
        &p.app.join("fifo"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .expect("mkfifo");
    let h = home();
    untrusted(&p, h.path(), &["allow"]).code(0);
    let (_, out, err) = untrusting_bounded(&p.app, h.path(), &["__hook-env", "bash"]);
    assert!(out.contains("LURE="), "{out}\n{err}");
    // Changed to inherit a FIFO: the digest differs, so it is not parsed (which would hang).
    p.write_all(&[(
        "stackato.yml",
        "name: hooked\ninherit: fifo\nenv:\n  LURE: 'yes'\n",
    )]);
    let (code, out, err) = untrusting_bounded(&p.app, h.path(), &["__hook-env", "bash"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("is not allowed"), "{out}\n{err}");
    assert!(
        out.contains("stackato.yml changed since `allow`"),
        "{out}\n{err}"
    );
    assert!(!out.contains("LURE"), "{out}");
}

// ---------------------------------------------------------------------------------------------
// On a terminal the gate asks; a yes is recorded, a no runs nothing.
// ---------------------------------------------------------------------------------------------

/// `exec -- CMD` with stdin and stderr on a pseudo-terminal, typing `answer`; the exit code and
/// what the terminal showed.
fn exec_on_a_terminal(p: &Project, home: &Path, cmd_args: &[&str], answer: &str) -> (i32, String) {
    use std::io::{Read, Write};
    let pty = nix::pty::openpty(None, None).expect("openpty");
    let mut c = cmd(&p.app);
    c.env_remove("STACKATO_LOCAL_TRUST")
        .env_remove("XDG_DATA_HOME")
        .env("HOME", home)
        .args(cmd_args)
        .stdin(Stdio::from(pty.slave.try_clone().expect("dup")))
        .stderr(Stdio::from(pty.slave))
        .stdout(Stdio::null());
    let mut child = c.spawn().expect("start stackato-local");
    drop(c);
    let mut master = std::fs::File::from(pty.master);
    let mut reader = master.try_clone().expect("dup master");
    let shown = std::thread::spawn(move || {
        let mut all = Vec::new();
        let mut buf = [0u8; 4096];
        // Ends with EIO once the child (the last holder of the terminal) has exited.
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            all.extend_from_slice(&buf[..n]);
        }
        String::from_utf8_lossy(&all).into_owned()
    });
    master
        .write_all(format!("{answer}\n").as_bytes())
        .expect("type the answer");
    let t0 = Instant::now();
    let status = loop {
        if let Ok(Some(st)) = child.try_wait() {
            break st;
        }
        assert!(t0.elapsed() < SHORT, "the prompt never ended");
        std::thread::sleep(Duration::from_millis(20));
    };
    drop(master);
    (status.code().unwrap_or(-1), shown.join().expect("reader"))
}

#[test]
fn on_a_terminal_the_gate_asks_and_records_a_yes() {
    let p = Project::new(&[
        ("stackato.yml", "name: asked\n"),
        (".env", "BASH_ENV=@ROOT@/rc\n"),
    ]);
    let h = home();
    let marker = p.file("ran").display().to_string();
    let touch = ["exec", "--", "touch", marker.as_str()];
    let (code, shown) = exec_on_a_terminal(&p, h.path(), &touch, "n");
    assert_eq!(code, 8, "{shown}");
    assert!(shown.contains("Trust them and run? [y/N]"), "{shown}");
    assert!(
        shown.contains(&format!(
            "asked env (.env): BASH_ENV={}/rc",
            p.root.display()
        )),
        "{shown}"
    );
    assert!(!p.file("ran").exists());
    assert!(
        !h.path()
            .join(".local/share/stackato-local/trust.json")
            .exists()
    );
    let (code, shown) = exec_on_a_terminal(&p, h.path(), &touch, "y");
    assert_eq!(code, 0, "{shown}");
    assert!(p.file("ran").exists());
    // Recorded: no question, and no terminal needed, the next time.
    untrusted(&p, h.path(), &["exec", "--", "true"]).code(0);
}

#[test]
fn a_watching_run_on_a_terminal_asks_before_restaging_a_changed_manifest() {
    use std::io::{Read, Write};
    use std::sync::{Arc, Mutex};
    let manifest = "name: live\nhooks:\n  post-staging:\n    - touch @ROOT@/first\nprocesses:\n  web: ~\ncommand: echo up; exec sleep 1000\n";
    let p = Project::new(&[("stackato.yml", manifest)]);
    let h = home();
    untrusted(&p, h.path(), &["allow"]).code(0);
    let pty = nix::pty::openpty(None, None).expect("openpty");
    let mut c = cmd(&p.app);
    c.env_remove("STACKATO_LOCAL_TRUST")
        .env_remove("XDG_DATA_HOME")
        .env("HOME", h.path())
        .args(["--color", "never", "run"])
        .stdin(Stdio::from(pty.slave.try_clone().expect("dup")))
        .stderr(Stdio::from(pty.slave))
        .stdout(Stdio::null());
    let mut child = c.spawn().expect("start stackato-local run");
    drop(c);
    let mut master = std::fs::File::from(pty.master);
    let mut reader = master.try_clone().expect("dup master");
    let screen = Arc::new(Mutex::new(String::new()));
    let sink = Arc::clone(&screen);
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock()
                .expect("screen")
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    let wait = |what: &str, child: &mut std::process::Child| {
        let t0 = Instant::now();
        while !screen.lock().expect("screen").contains(what) {
            if t0.elapsed() > SHORT || matches!(child.try_wait(), Ok(Some(_))) {
                let _ = child.kill();
                panic!("no {what:?}\n{}", screen.lock().expect("screen"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait("==> running and watching for changes", &mut child);
    assert!(p.file("first").exists());
    crate::common::procs::wait_watching(child.id() as i32, SHORT);
    p.write_all(&[("stackato.yml", &manifest.replace("first", "second"))]);
    wait("Trust them and run? [y/N]", &mut child);
    // The restage waits for the answer.
    assert!(!p.file("second").exists());
    assert!(
        screen.lock().expect("screen").contains(&format!(
            "  added: live post-staging hook: touch {}/second",
            p.root.display()
        )),
        "{}",
        screen.lock().expect("screen")
    );
    master.write_all(b"y\n").expect("answer");
    crate::common::wait_until(
        SHORT,
        || p.file("second").exists(),
        || format!("the yes was not taken\n{}", screen.lock().expect("screen")),
    );
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    );
    let t0 = Instant::now();
    while !matches!(child.try_wait(), Ok(Some(_))) {
        if t0.elapsed() > SHORT {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // Recorded: the changed manifest runs without a question now.
    untrusted(&p, h.path(), &["exec", "--", "true"]).code(0);
}

#[test]
fn allow_lists_inherited_files_outside_the_project_and_covers_them() {
    let p = Project::new(&[(
        "stackato.yml",
        "name: inherits\ninherit: ../base.yml\nprocesses:\n  web: ~\ncommand: exit 0\n",
    )]);
    std::fs::write(p.file("base.yml"), "env:\n  FROM_BASE: 'yes'\n").expect("base.yml");
    let h = home();
    let base = p.file("base.yml").display().to_string();
    let r = untrusted(&p, h.path(), &["allow"]);
    r.code(0);
    r.stdout_has("INHERITS FILES FROM OUTSIDE ITS DIRECTORY");
    r.stdout_has(&format!("  {base}\n"));
    let s = store(h.path());
    let key = p.app.join("stackato.yml").display().to_string();
    assert_eq!(s["projects"][&key]["outside"][0], base.as_str(), "{s:#}");
    // Accepted: it runs. Changed: asked again.
    untrusted(&p, h.path(), RUN_ONCE).code(7);
    std::fs::write(p.file("base.yml"), "env:\n  FROM_BASE: 'no'\n").expect("base.yml");
    let r = untrusted(&p, h.path(), RUN_ONCE);
    r.code(8);
    r.stderr_has(&format!("  file changed: {base}\n"));
    r.stderr_has(&format!("  INHERITED FROM OUTSIDE THE PROJECT: {base}\n"));
}
