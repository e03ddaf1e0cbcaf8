//! Hardening tests: misc. The manifest search across shared and foreign directories (item 9),
//! `inherit:` of outside files, FIFOs and devices (13), `app-dir` escapes (14), NUL bytes (20),
//! a closed stderr (21), cron lines `check` and `run` judge alike (23), secret names (24).

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;

use crate::common::*;
use serde_json::Value;

const MASK: &str = "********";
/// `nobody`: another user than the one running the tests.
const OTHER_UID: u32 = 65534;

fn in_dir(dir: &Path, args: &[&str]) -> Run {
    let mut c = cmd(dir);
    c.args(args);
    run_deadline(c, &args.join(" "))
}

// ---------------------------------------------------------------------------------------------
// 9: the parent-directory manifest.yml search
// ---------------------------------------------------------------------------------------------

#[test]
fn a_parent_manifest_yml_owned_by_another_user_is_not_used() {
    if !is_root() {
        skip("creating a file owned by another user needs root");
        return;
    }
    let root = app(&[
        (
            "manifest.yml",
            "name: theirs\nhooks:\n  pre-running: [touch pwned]\n",
        ),
        ("proj/readme.txt", "mine\n"),
    ]);
    let theirs = root.path().join("manifest.yml");
    std::os::unix::fs::chown(&theirs, Some(OTHER_UID), None).expect("chown to nobody");
    let r = run(&root.path().join("proj"), &["check"]);
    r.code(3);
    r.stderr_has("ignoring").stderr_has("another user");
    assert!(!r.stdout.contains("theirs"), "{}", r.dump());

    // Nor in a world-writable directory the user is in (a stranger's manifest.yml in /tmp).
    std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o1777)).expect("chmod");
    let r = run(root.path(), &["check"]);
    r.code(3);
    r.stderr_has("another user");
    std::fs::set_permissions(root.path(), std::fs::Permissions::from_mode(0o700)).expect("chmod");

    // Our own manifest.yml in the same place is found, as the client found it.
    std::os::unix::fs::chown(&theirs, Some(0), None).expect("chown back");
    let doc = config_json(&root.path().join("proj"));
    assert!(apps(&doc).contains_key("theirs"), "{doc:#}");
}

#[test]
fn a_world_or_group_writable_parent_stops_the_search() {
    for mode in [0o777, 0o1777, 0o775] {
        let root = app(&[
            ("shared/manifest.yml", "name: planted\n"),
            ("shared/proj/readme.txt", "mine\n"),
        ]);
        let shared = root.path().join("shared");
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(mode)).expect("chmod");
        let r = run(&shared.join("proj"), &["check"]);
        r.code(3);
        assert!(!r.stdout.contains("planted"), "mode {mode:o}\n{}", r.dump());

        // A private parent is searched as before.
        std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        let doc = config_json(&shared.join("proj"));
        assert!(apps(&doc).contains_key("planted"), "{doc:#}");
    }
}

#[test]
fn the_hook_uses_the_same_search() {
    let root = app(&[
        (
            "shared/manifest.yml",
            "name: planted\nenv:\n  PLANTED: yes\n",
        ),
        ("shared/proj/readme.txt", "mine\n"),
    ]);
    let shared = root.path().join("shared");
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).expect("chmod");
    let r = run(&shared.join("proj"), &["__hook-env", "bash"]);
    r.code(0);
    let shown = canon(&shared).display().to_string();
    assert!(
        !r.stdout.contains(&shown) && !r.stdout.contains("PLANTED"),
        "the hook took a manifest from a world-writable parent for the project\n{}",
        r.dump()
    );
}

// ---------------------------------------------------------------------------------------------
// 13: inherit
// ---------------------------------------------------------------------------------------------

/// A file outside the project whose content must never be printed.
const LEAK: &str = "leaked-content-7f3a";

fn outside_file() -> tempfile::TempDir {
    // Not valid as a manifest, so a reader that parsed it would quote it in a snippet.
    app(&[("secret.yml", &format!("{LEAK}: [unclosed\n"))])
}

#[test]
fn inherit_of_a_file_outside_the_project_is_refused_and_never_shown() {
    let out = outside_file();
    let secret = canon(out.path()).join("secret.yml");
    let d = yml(&format!("name: a\ninherit: {}\n", secret.display()));
    for args in [
        &["check", "--format", "short"][..],
        &["check"][..],
        &["config"][..],
        &["config", "--json"][..],
    ] {
        let r = run(d.path(), args);
        r.code(2);
        r.stderr_has("is outside the project")
            .stderr_has("stackato-local allow");
        assert!(
            !r.stdout.contains(LEAK) && !r.stderr.contains(LEAK),
            "{args:?} printed the outside file\n{}",
            r.dump()
        );
    }
    check(d.path()).diag(
        "stackato.yml:2:10: error:",
        &["inherit:", "secret.yml", "outside the project"],
    );
}

#[test]
fn inherit_of_etc_passwd_is_refused() {
    let d = yml("name: a\ninherit: /etc/passwd\n");
    let r = run(d.path(), &["check"]);
    r.code(2);
    r.stderr_has("/etc/passwd is outside the project");
    assert!(!r.stderr.contains("root:"), "{}", r.dump());
}

#[test]
fn a_symlink_cannot_lead_inherit_out_of_the_project() {
    let out = outside_file();
    let d = yml("name: a\ninherit: base.yml\n");
    std::os::unix::fs::symlink(out.path().join("secret.yml"), d.path().join("base.yml"))
        .expect("symlink");
    std::os::unix::fs::symlink(out.path(), d.path().join("linkdir")).expect("symlink");
    for target in ["base.yml", "linkdir/secret.yml"] {
        write(
            d.path(),
            "stackato.yml",
            format!("name: a\ninherit: {target}\n").as_bytes(),
        );
        let r = run(d.path(), &["check"]);
        r.code(2);
        r.stderr_has("is outside the project");
        assert!(!r.stderr.contains(LEAK), "{}", r.dump());
    }
    // A link to a regular file inside the project is followed.
    write(d.path(), "real.yml", b"mem: 256M\n");
    std::fs::remove_file(d.path().join("base.yml")).expect("rm link");
    std::os::unix::fs::symlink("real.yml", d.path().join("base.yml")).expect("symlink");
    write(d.path(), "stackato.yml", b"name: a\ninherit: base.yml\n");
    assert_eq!(only_app(d.path())["memory"], "256M");
}

#[test]
fn inheriting_from_the_parent_of_a_sub_directory_manifest_names_allow() {
    let d = app(&[
        ("stackato.yml", "name: base\nmem: 256M\n"),
        ("web/stackato.yml", "name: web\ninherit: ../stackato.yml\n"),
    ]);
    let r = check(&d.path().join("web"));
    r.code(2);
    r.diag(
        "stackato.yml:2:10: error:",
        &[
            "outside the project",
            "review it with `stackato-local allow`",
        ],
    );
}

#[test]
fn inherit_of_a_fifo_is_refused_without_hanging() {
    let d = yml("name: a\ninherit: pipe.yml\n");
    nix::unistd::mkfifo(
        &d.path().join("pipe.yml"),
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .expect("mkfifo");
    for args in [&["check"][..], &["config", "--json"][..]] {
        let r = in_dir(d.path(), args);
        r.code(2);
        r.stderr_has("FIFO")
            .stderr_has("only regular files can be inherited");
    }
}

#[test]
fn inherit_of_a_device_is_refused_before_reading() {
    // /dev/zero itself is outside the project.
    let d = yml("name: a\ninherit: /dev/zero\n");
    let r = in_dir(d.path(), &["check"]);
    r.code(2);
    r.stderr_has("/dev/zero is outside the project");

    // The same device inside the project (a node a repository could ship) is not a file.
    if !is_root() {
        skip("mknod needs root");
        return;
    }
    let d = yml("name: a\ninherit: zero.yml\n");
    nix::sys::stat::mknod(
        &d.path().join("zero.yml"),
        nix::sys::stat::SFlag::S_IFCHR,
        nix::sys::stat::Mode::from_bits_truncate(0o666),
        nix::sys::stat::makedev(1, 5),
    )
    .expect("mknod a /dev/zero");
    let r = in_dir(d.path(), &["check"]);
    r.code(2);
    r.stderr_has("is a device").stderr_has("only regular files");
}

#[test]
fn inherit_reads_at_most_the_manifest_size_limit() {
    let d = yml("name: a\ninherit: big.yml\n");
    // Sparse: 8 GiB on paper, nothing on disk; read whole, it would exhaust memory.
    let f = std::fs::File::create(d.path().join("big.yml")).expect("create");
    f.set_len(8 << 30).expect("set_len");
    drop(f);
    let r = in_dir(d.path(), &["check", "--format", "short"]);
    r.code(2);
    r.diag(
        "stackato.yml:2:10: error:",
        &["big.yml", "8589934592 bytes", "larger than 4194304 bytes"],
    );
}

// ---------------------------------------------------------------------------------------------
// 14: app-dir
// ---------------------------------------------------------------------------------------------

#[test]
fn app_dir_outside_the_project_is_a_positioned_error() {
    for (text, at) in [
        (
            "name: a\napp-dir: ../../../..\n",
            "stackato.yml:2:10: error:",
        ),
        ("name: a\napp-dir: /etc\n", "stackato.yml:2:10: error:"),
        ("name: a\napp-dir: sub/../..\n", "stackato.yml:2:10: error:"),
    ] {
        let d = yml(text);
        let r = check(d.path());
        r.code(2);
        r.diag(at, &["application directory", "outside the project"]);
        run(d.path(), &["env"]).code(2);
    }
    // The CF forms: `path:` in a list entry, applications keyed by path.
    let d = app(&[("manifest.yml", "applications:\n- name: a\n  path: ../x\n")]);
    check(d.path()).code(2).diag(
        "manifest.yml:3:9: error:",
        &["application directory", "outside the project"],
    );
    let d = app(&[("manifest.yml", "applications:\n  ../..:\n    name: a\n")]);
    check(d.path()).code(2).diag(
        "manifest.yml:2:3: error:",
        &["application directory", "outside the project"],
    );
}

#[test]
fn app_dir_through_a_symlink_out_of_the_project_is_an_error() {
    let d = yml("name: a\napp-dir: sub\n");
    std::os::unix::fs::symlink("/", d.path().join("sub")).expect("symlink");
    check(d.path())
        .code(2)
        .diag("stackato.yml:2:10: error:", &["outside the project"]);
    // A real sub-directory is fine.
    std::fs::remove_file(d.path().join("sub")).expect("rm link");
    std::fs::create_dir(d.path().join("sub")).expect("mkdir");
    check(d.path()).code(0);
}

// ---------------------------------------------------------------------------------------------
// 20: NUL bytes
// ---------------------------------------------------------------------------------------------

#[test]
fn a_nul_byte_in_dotenv_is_an_error_naming_file_line_and_column() {
    let d = app_bytes(&[("stackato.yml", b"name: a\n"), (".env", b"A=1\nB=x\0y\n")]);
    let r = run(d.path(), &["env", "--db", "native"]);
    r.code(4);
    r.stderr_has(".env:2:4").stderr_has("NUL");
}

#[test]
fn a_nul_in_a_manifest_value_is_an_error_where_it_is_written() {
    let d = yml("name: a\nenv:\n  A: \"x\\0y\"\n");
    check(d.path())
        .code(2)
        .diag("stackato.yml:3:6: error:", &["NUL"]);
}

// ---------------------------------------------------------------------------------------------
// 21: a closed stderr
// ---------------------------------------------------------------------------------------------

#[test]
fn a_closed_stderr_keeps_the_exit_code() {
    let d = app_bytes(&[("stackato.yml", b"name: a\n"), (".env", b"not a line\n")]);
    for args in [
        &["env", "--db", "native"][..],
        &["check"][..],
        &["config", "--manifest", "missing.yml"][..],
    ] {
        let mut child = cmd(d.path())
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn");
        // Nobody reads stderr: every write to it fails with EPIPE.
        drop(child.stderr.take());
        let status = child.wait().expect("wait");
        let want = match args[0] {
            "env" => 4,
            "check" => 0,
            _ => 3,
        };
        assert_eq!(
            status.code(),
            Some(want),
            "{args:?} with a closed stderr: {status:?} (101 is a panic)"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 23: cron
// ---------------------------------------------------------------------------------------------

#[test]
fn check_refuses_the_cron_lines_run_would_ignore() {
    for (line, why) in [
        ("*/0 * * * * echo hi", "step"),
        ("61 * * * * echo hi", "outside"),
        ("* * * * echo", "command"),
        ("@reboot echo hi", "@reboot"),
        ("@often echo hi", "unknown schedule"),
    ] {
        let d = yml(&format!("name: a\ncron:\n  - \"{line}\"\n"));
        check(d.path())
            .code(2)
            .diag("stackato.yml:3:5: error:", &["cron", why]);
    }
    let d = yml(
        "name: a\ncron:\n  - \"*/5 * * * * echo hi\"\n  - \"MAILTO=x\"\n  - \"@daily echo hi\"\n",
    );
    check(d.path()).code(0);
}

// ---------------------------------------------------------------------------------------------
// 24: masking
// ---------------------------------------------------------------------------------------------

fn env_json(dir: &Path, extra: &[&str]) -> BTreeMap<String, String> {
    let mut args = vec!["env", "--format", "json", "--db", "native"];
    args.extend_from_slice(extra);
    let r = run(dir, &args);
    r.code(0);
    match r.json() {
        Value::Object(m) => m
            .into_iter()
            .filter_map(|(k, v)| v.as_str().map(|s| (k, s.to_string())))
            .collect(),
        other => panic!("not an object: {other}\n{}", r.dump()),
    }
}

#[test]
fn common_secret_names_are_masked_and_ordinary_ones_are_not() {
    let secret = [
        "DB_PASS",
        "SMTP_PWD",
        "CREDENTIALS",
        "AUTH",
        "SESSION_KEY",
        "GITHUB_PAT",
        "STRIPE_SK",
        "MYSQL_PASSWD",
        "GPG_PASSPHRASE",
        "SSH_PRIVATE_KEY",
        "SLACK_TOKEN",
        "APP_SECRET",
        "MAILGUN_APIKEY",
        "SENDGRID_API_KEY",
    ];
    let plain = ["AUTHOR", "PASSENGER_APP_ENV", "PATTERN", "KEYBOARD", "TASK"];
    let mut text = String::from("name: a\nenv:\n");
    for (i, n) in secret.iter().chain(plain.iter()).enumerate() {
        text.push_str(&format!("  {n}: \"value<{i}>\"\n"));
    }
    text.push_str("  SENTRY_DSN: https://f00dfacekey@sentry.example.com/42\n");
    let d = yml(&text);
    let m = env_json(d.path(), &[]);
    for n in secret {
        assert_eq!(m.get(n).map(String::as_str), Some(MASK), "{n}: {m:#?}");
    }
    for n in plain {
        assert!(
            m.get(n).is_some_and(|v| v.starts_with("value<")),
            "{n}: {m:#?}"
        );
    }
    assert_eq!(
        m.get("SENTRY_DSN").map(String::as_str),
        Some("https://********@sentry.example.com/42")
    );
    let shown = run(d.path(), &["env", "--db", "native"]);
    shown.code(0);
    assert!(!shown.stdout.contains("f00dfacekey"), "{}", shown.dump());

    let revealed = env_json(d.path(), &["--reveal"]);
    assert_eq!(revealed["DB_PASS"], "value<0>");
    assert_eq!(
        revealed["SENTRY_DSN"],
        "https://f00dfacekey@sentry.example.com/42"
    );
}
