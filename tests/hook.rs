//! The shell hook in a real bash: entering an allowed project loads its environment, leaving
//! restores the shell's values, an untrusted project loads nothing, a changed manifest needs
//! allowing again, and the no-change path is quick.

use std::path::Path;
use std::process::Command;

fn bash(script: &str, cwd: &Path, home: &Path) -> String {
    let bin = env!("CARGO_BIN_EXE_stackato-local");
    let full = format!("eval \"$('{bin}' hook bash)\"\n{script}");
    let out = Command::new("bash")
        .args(["--norc", "--noprofile", "-c", &full])
        .current_dir(cwd)
        .env("HOME", home)
        .env_remove("XDG_DATA_HOME")
        .env_remove("STACKATO_LOCAL_DIR")
        .env_remove("STACKATO_LOCAL_BACKUP")
        .env_remove("STACKATO_LOCAL_STAMP")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    format!(
        "{}\n--stderr--\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn project() -> (tempfile::TempDir, tempfile::TempDir) {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("proj")).unwrap();
    std::fs::write(
        root.path().join("proj/stackato.yml"),
        "name: hooked\nenv:\n  GREETING: hello\nservices:\n  hooked-cache: memcached\n",
    )
    .unwrap();
    std::fs::write(root.path().join("proj/.env"), "FROM_DOTENV=yes\n").unwrap();
    let home = tempfile::tempdir().unwrap();
    (root, home)
}

/// `stackato-local allow` in `root/proj` with `home` as `$HOME`; asserts it succeeds.
#[track_caller]
fn allow(root: &Path, home: &Path) {
    let bin = env!("CARGO_BIN_EXE_stackato-local");
    let allowed = Command::new(bin)
        .arg("allow")
        .current_dir(root.join("proj"))
        .env("HOME", home)
        .env_remove("XDG_DATA_HOME")
        .output()
        .unwrap();
    assert!(allowed.status.success(), "{allowed:?}");
}

#[test]
fn enter_and_leave_an_allowed_project() {
    let (root, home) = project();
    let out = bash(
        r#"export GREETING=mine
cd proj; _stackato_local_hook
echo "A GREETING=$GREETING MEMCACHE=${MEMCACHE_URL:-none} APP=${STACKATO_APP_NAME:-none}"
"#,
        root.path(),
        home.path(),
    );
    // Not allowed yet: nothing loaded, one message.
    assert!(
        out.contains("A GREETING=mine MEMCACHE=none APP=none"),
        "{out}"
    );
    assert!(out.contains("is not allowed"), "{out}");
    allow(root.path(), home.path());
    let out = bash(
        r#"export GREETING=mine
unset FROM_DOTENV
cd proj; _stackato_local_hook
echo "B GREETING=$GREETING MEMCACHE=$MEMCACHE_URL APP=$STACKATO_APP_NAME DOTENV=$FROM_DOTENV HOME=$HOME"
cd ..; _stackato_local_hook
echo "C GREETING=$GREETING MEMCACHE=${MEMCACHE_URL:-none} APP=${STACKATO_APP_NAME:-none} DOTENV=${FROM_DOTENV:-none}"
"#,
        root.path(),
        home.path(),
    );
    assert!(
        out.contains("B GREETING=hello MEMCACHE=127.0.0.1:"),
        "{out}"
    );
    assert!(out.contains("APP=hooked DOTENV=yes"), "{out}");
    assert!(
        out.contains(&format!("HOME={}", home.path().display())),
        "HOME must stay the user's: {out}"
    );
    assert!(out.contains("stackato-local: loaded hooked"), "{out}");
    assert!(
        out.contains("C GREETING=mine MEMCACHE=none APP=none DOTENV=none"),
        "leaving restores the shell's values: {out}"
    );
    assert!(out.contains("stackato-local: unloaded"), "{out}");
}

#[test]
fn a_changed_manifest_or_env_file_needs_allowing_again() {
    let (root, home) = project();
    allow(root.path(), home.path());
    let out = bash(
        r#"cd proj; _stackato_local_hook
echo "D GREETING=$GREETING"
echo "FROM_DOTENV=changed" > .env; _stackato_local_hook
echo "E GREETING=${GREETING:-none} DOTENV=${FROM_DOTENV:-none}"
"#,
        root.path(),
        home.path(),
    );
    assert!(out.contains("D GREETING=hello"), "{out}");
    assert!(out.contains("E GREETING=none DOTENV=none"), "{out}");
    assert!(out.contains("is not allowed"), "{out}");
}

#[test]
fn the_no_change_path_is_quick() {
    let (root, home) = project();
    allow(root.path(), home.path());
    // 20 prompts with nothing changed: the environment stays loaded and nothing is printed
    // after the first load. (The time is measured by the benchmark, not asserted here.)
    let out = bash(
        r#"cd proj; _stackato_local_hook
for i in $(seq 20); do _stackato_local_hook; done
echo "F APP=$STACKATO_APP_NAME"
"#,
        root.path(),
        home.path(),
    );
    assert!(out.contains("F APP=hooked"), "{out}");
    assert_eq!(out.matches("stackato-local: loaded").count(), 1, "{out}");
}
