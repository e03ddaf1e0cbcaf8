//! Red-team round 2: the hardening as a user with old, real Stackato apps meets it. Each test
//! is a workflow from a real manifest's shape (corpus and spec examples) that the hardening
//! must not break, or a fault as the user sees it.

use std::process::Command;

use crate::common::project::Project;
use crate::common::{SERVICES, SHORT, cmd, home, untrusting};

/// Mossop/hgchangefeed: `inherit: base/stackato.yml`, where `base/` is the shared Django base
/// (a git submodule holding a nameless stackato.yml). After `allow` in the project, `cd base`
/// (to edit the settings) must keep the project loaded: the hook used to take `base/` for a
/// project of its own, unload everything and ask to `allow` a file that `allow` refuses
/// ("The stackato application has no name").
#[test]
fn the_hook_keeps_the_project_loaded_in_the_directory_of_an_inherited_manifest() {
    let p = Project::new(&[
        (
            "stackato.yml",
            "name: hgchangefeed\ninherit: base/stackato.yml\ncron:\n  - \"*/10 * * * * python website/hg.py updateall --visible\"\n",
        ),
        (
            "base/stackato.yml",
            "framework:\n  type: python\nenv:\n  DJANGO_SETTINGS_MODULE: base.settings\nprocesses:\n  web: python3 -m http.server $PORT\n",
        ),
        ("website/hg.py", "print('hg')\n"),
    ]);
    let h = home();
    untrusting(&p.app, h.path(), &["allow"]).code(0);
    let out = crate::common::hooked_bash(
        r#"cd website; _stackato_local_hook
echo "A SETTINGS=${DJANGO_SETTINGS_MODULE:-none} APP=${STACKATO_APP_NAME:-none}"
cd ../base; _stackato_local_hook
echo "B SETTINGS=${DJANGO_SETTINGS_MODULE:-none} APP=${STACKATO_APP_NAME:-none}"
cd ..; _stackato_local_hook
echo "C SETTINGS=${DJANGO_SETTINGS_MODULE:-none} APP=${STACKATO_APP_NAME:-none}"
"#,
        &p.app,
        h.path(),
        &[],
    );
    assert!(
        out.contains("A SETTINGS=base.settings APP=hgchangefeed"),
        "{out}"
    );
    assert!(
        out.contains("B SETTINGS=base.settings APP=hgchangefeed"),
        "base/ is part of the allowed project: {out}"
    );
    assert!(!out.contains("is not allowed"), "{out}");
    assert!(
        out.contains("C SETTINGS=base.settings APP=hgchangefeed"),
        "{out}"
    );
    // Loaded once: moving between the project's directories reloads nothing.
    assert_eq!(out.matches("loaded hgchangefeed").count(), 1, "{out}");
}

/// A directory with a stackato.yml that the enclosing allowed project does not inherit is a
/// project of its own: the hook still refuses it until it is allowed.
#[test]
fn the_hook_still_refuses_a_nested_project_that_is_not_inherited() {
    let p = Project::new(&[
        ("stackato.yml", "name: outer\nenv:\n  OUTER: 'yes'\n"),
        ("inner/stackato.yml", "name: inner\nenv:\n  INNER: 'yes'\n"),
    ]);
    let h = home();
    untrusting(&p.app, h.path(), &["allow"]).code(0);
    let out = crate::common::hooked_bash(
        r#"_stackato_local_hook
cd inner; _stackato_local_hook
echo "I OUTER=${OUTER:-none} INNER=${INNER:-none}"
"#,
        &p.app,
        h.path(),
        &[],
    );
    assert!(out.contains("I OUTER=none INNER=none"), "{out}");
    assert!(out.contains("is not allowed"), "{out}");
}

/// A fresh clone without a `.gitignore` (most corpus apps have none): the first `env` creates
/// `.stackato-local/` with the services' credentials; `git add -A` must not pick it up.
#[test]
fn the_state_dir_stays_out_of_git_without_a_gitignore() {
    let p = Project::new(&[(
        "stackato.yml",
        "name: oneanddone-dev\nservices:\n  ${name}-db: mysql\n  media: filesystem\n",
    )]);
    let git = |args: &[&str]| {
        let out = Command::new("git")
            .args(args)
            .current_dir(&p.app)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", &p.root)
            .output()
            .expect("git (needed for this test)");
        assert!(out.status.success(), "git {args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    git(&["init", "-q"]);
    p.cmd(&["env"]).code(0);
    assert!(p.state("services.json").is_file());
    let status = git(&["status", "--porcelain", "--untracked-files=all"]);
    assert!(
        !status.contains(".stackato-local"),
        "the state dir (credentials) shows in git: {status}"
    );
    assert!(status.contains("stackato.yml"), "{status}");
    // The user's files were left alone: no .gitignore was created for it.
    assert!(!p.app.join(".gitignore").exists());
}

/// Every project gets `HOME` from the platform's rules, and the hook never exports it: naming
/// it at every load ("not exported: HOME") is noise that teaches users to skip the line that
/// matters. The line names only what the project itself set and was kept out.
#[test]
fn the_hook_names_only_what_the_project_set_among_the_variables_it_kept_out() {
    let p = Project::new(&[
        ("stackato.yml", "name: plain\nenv:\n  GREETING: hello\n"),
        (
            "other/stackato.yml",
            "name: other\nenv:\n  PROMPT_COMMAND: date\n",
        ),
    ]);
    let h = home();
    untrusting(&p.app, h.path(), &["allow"]).code(0);
    untrusting(&p.app.join("other"), h.path(), &["allow"]).code(0);
    let out = crate::common::hooked_bash(
        r#"_stackato_local_hook
echo "G=$GREETING"
cd other; _stackato_local_hook
"#,
        &p.app,
        h.path(),
        &[],
    );
    assert!(out.contains("G=hello"), "{out}");
    let plain = out
        .lines()
        .find(|l| l.contains("loaded plain"))
        .unwrap_or_else(|| panic!("no load line: {out}"));
    assert!(!plain.contains("not exported"), "{plain}");
    let other = out
        .lines()
        .find(|l| l.contains("loaded other"))
        .unwrap_or_else(|| panic!("no load line: {out}"));
    assert!(other.contains("not exported: PROMPT_COMMAND"), "{other}");
    assert!(!other.contains("HOME"), "{other}");
}

/// Staging runs with `HOME` at the app directory (as on the platform), so the installers the
/// tool runs wrote their caches into the user's checkout: `npm install` left `.npm/` (its cache
/// and logs) and pip `.cache/pip/` (hundreds of MB after a uWSGI build) in the app, showing in
/// `git status`. They belong in the user's own cache.
#[test]
fn installers_keep_their_caches_out_of_the_app_directory() {
    if !crate::common::require("npm") {
        return;
    }
    let p = Project::new(&[
        (
            "stackato.yml",
            "name: nodeapp\nprocesses:\n  web: node -e \"require('http').createServer((q,s)=>s.end('ok')).listen(process.env.PORT,'127.0.0.1')\"\n",
        ),
        (
            "package.json",
            "{\"name\": \"nodeapp\", \"version\": \"1.0.0\"}\n",
        ),
    ]);
    let h = home();
    let home_s = h.path().display().to_string();
    let mut s = p.run_env(
        &["--no-watch"],
        &[("HOME", home_s.as_str()), ("XDG_CACHE_HOME", "")],
    );
    s.wait_for(
        crate::common::session::Stream::Out,
        "-----> npm install",
        SERVICES,
    );
    s.ready("web.0", SERVICES);
    s.interrupt(SHORT);
    assert!(
        !p.app.join(".npm").exists(),
        "npm's cache was written into the app\n{}",
        s.dump()
    );
    assert!(!p.app.join(".cache").exists(), "{}", s.dump());
    assert!(
        h.path().join(".npm").is_dir(),
        "npm's cache belongs in the user's home\n{}",
        s.dump()
    );
}

/// `deny` in a shell where the project is loaded: as with direnv, the next prompt unloads it.
/// The hook compared only the project's files at each prompt, so a denied project stayed
/// loaded until the user left its directory.
#[test]
fn deny_unloads_the_project_at_the_next_prompt() {
    let p = Project::new(&[("stackato.yml", "name: denied\nenv:\n  GREETING: hello\n")]);
    let h = home();
    untrusting(&p.app, h.path(), &["allow"]).code(0);
    let bin = crate::common::bin();
    let out = crate::common::hooked_bash(
        &format!(
            r#"_stackato_local_hook
echo "A GREETING=${{GREETING:-none}}"
'{bin}' deny
_stackato_local_hook
echo "B GREETING=${{GREETING:-none}}"
'{bin}' allow >/dev/null 2>&1
_stackato_local_hook
echo "C GREETING=${{GREETING:-none}}"
"#
        ),
        &p.app,
        h.path(),
        &[],
    );
    assert!(out.contains("A GREETING=hello"), "{out}");
    assert!(
        out.contains("B GREETING=none"),
        "a denied project stays loaded: {out}"
    );
    assert!(out.contains("is not allowed"), "{out}");
    assert!(out.contains("C GREETING=hello"), "{out}");
}

/// Ctrl-C at the trust question of `run` ("Trust them and run? [y/N]"): the run caught the
/// signal for its own clean-up, so the question kept waiting for a line, and the next thing
/// the user typed (a shell command) was taken as the answer (exit 8). Ctrl-C must end it at
/// once, with 130, having run nothing.
#[test]
fn ctrl_c_at_the_trust_question_of_run_ends_it_with_130() {
    use std::io::Read;
    use std::process::Stdio;
    use std::time::Instant;
    let p = Project::new(&[(
        "stackato.yml",
        "name: asked\nhooks:\n  pre-staging:\n    - touch @ROOT@/ran\nprocesses:\n  web: python3 -m http.server $PORT\n",
    )]);
    let h = home();
    let pty = nix::pty::openpty(None, None).expect("openpty");
    let mut c = cmd(&p.app);
    c.env_remove("STACKATO_LOCAL_TRUST")
        .env_remove("XDG_DATA_HOME")
        .env("HOME", h.path())
        .args(["run", "--db", "sqlite"])
        .stdin(Stdio::from(pty.slave.try_clone().expect("dup")))
        .stderr(Stdio::from(pty.slave))
        .stdout(Stdio::null());
    let mut child = c.spawn().expect("start stackato-local");
    drop(c);
    let master = std::fs::File::from(pty.master);
    let mut reader = master.try_clone().expect("dup master");
    let shown = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let seen = std::sync::Arc::clone(&shown);
    let t = std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = reader.read(&mut buf) {
            if n == 0 {
                break;
            }
            seen.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    crate::common::wait_until(
        SHORT,
        || shown.lock().unwrap().contains("[y/N]"),
        || format!("no question: {}", shown.lock().unwrap()),
    );
    // What the terminal does on Ctrl-C for the foreground process.
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    );
    let t0 = Instant::now();
    let status = loop {
        if let Ok(Some(st)) = child.try_wait() {
            break st;
        }
        if t0.elapsed() > SHORT {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "Ctrl-C did not end the trust question\n{}",
                shown.lock().unwrap()
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    drop(master);
    let _ = t.join();
    assert_eq!(status.code(), Some(130), "{}", shown.lock().unwrap());
    assert!(!p.file("ran").exists());
}
