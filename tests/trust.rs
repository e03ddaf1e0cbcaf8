//! The trust check before `run` executes a project's commands.

use crate::common::{app, cmd};

// The runs are `--in-place`, so what the hooks touch lands in the checkout, where these tests look.
const MANIFEST: &str = "name: t\nhooks:\n  post-staging:\n    - touch ran-hook\nprocesses:\n  web: ~\ncommand: sleep 0\n";

fn untrusted(dir: &std::path::Path, home: &std::path::Path, args: &[&str]) -> std::process::Output {
    cmd(dir)
        .env_remove("STACKATO_LOCAL_TRUST")
        .env("HOME", home)
        .env_remove("XDG_DATA_HOME")
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn untrusted_commands_are_shown_and_not_run() {
    let d = app(&[("stackato.yml", MANIFEST)]);
    let home = tempfile::tempdir().unwrap();
    let out = untrusted(
        d.path(),
        home.path(),
        &["run", "--in-place", "--exit-on-crash", "--no-watch"],
    );
    assert_eq!(out.status.code(), Some(8), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("touch ran-hook"), "{err}");
    assert!(err.contains("stackato-local allow"), "{err}");
    assert!(
        !d.path().join("ran-hook").exists(),
        "a hook ran before trust"
    );
}

#[test]
fn allow_records_trust_and_a_changed_command_asks_again() {
    let d = app(&[("stackato.yml", MANIFEST)]);
    let home = tempfile::tempdir().unwrap();
    let out = untrusted(d.path(), home.path(), &["allow"]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("touch ran-hook"));
    // Trusted now: the worker exits at once and --exit-on-crash ends the run (exit 7).
    let out = untrusted(
        d.path(),
        home.path(),
        &["run", "--in-place", "--exit-on-crash", "--no-watch"],
    );
    assert_eq!(
        out.status.code(),
        Some(7),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(d.path().join("ran-hook").exists());
    // A new command is not covered by the old trust.
    std::fs::write(
        d.path().join("stackato.yml"),
        MANIFEST.replace("touch ran-hook", "touch other-hook"),
    )
    .unwrap();
    let out = untrusted(
        d.path(),
        home.path(),
        &["run", "--in-place", "--exit-on-crash", "--no-watch"],
    );
    assert_eq!(out.status.code(), Some(8), "{out:?}");
    assert!(!d.path().join("other-hook").exists());
    // --trust runs it without recording anything.
    let out = untrusted(
        d.path(),
        home.path(),
        &[
            "run",
            "--in-place",
            "--trust",
            "--exit-on-crash",
            "--no-watch",
        ],
    );
    assert_eq!(out.status.code(), Some(7));
    assert!(d.path().join("other-hook").exists());
    let out = untrusted(
        d.path(),
        home.path(),
        &["run", "--in-place", "--exit-on-crash", "--no-watch"],
    );
    assert_eq!(out.status.code(), Some(8), "--trust must not record trust");
}
