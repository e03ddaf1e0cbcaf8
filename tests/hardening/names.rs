//! Hardening tests: names are data (issue 11, items 5 and 6). Every piece of shell the tool
//! prints, eval'd by the real bash, zsh, fish and sh, sets exactly the variables it names and
//! runs nothing; names from a manifest never reach a shell unquoted; the validator refuses
//! names that can never be safe; the shell hook keeps what changes the user's shell out.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use proptest::prelude::*;
use stackato_local::api::shell::{self, Dialect, Unsafe};

use crate::common::{self, app, write};

// ---------------------------------------------------------------------------------------------
// (a) Quoting: eval'd by the real shells

/// Fragments that would run `touch` (leaving a `pwned*` file) if any shell interpreted them.
const ATTACKS: &[&str] = &[
    "$(touch pwned1)",
    "`touch pwned2`",
    "'; touch pwned3; '",
    "\"; touch pwned4; \"",
    "\\'; touch pwned5; #",
    "(touch pwned6)",
    "\n touch pwned7\n",
    "${IFS}$(touch${IFS}pwned8)",
    "\\",
    "'",
    "\"",
    "$",
    "$HOME",
    "${HOME}",
    "\\$HOME",
    "%s",
    "é 日本 \u{202e} \u{1f600}",
    "\r\t\u{1b}[2J",
    "-n",
    "",
];

fn value() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            3 => prop::sample::select(ATTACKS).prop_map(str::to_string),
            2 => any::<String>(),
            1 => "[ -~\n]{0,20}",
        ],
        0..6,
    )
    .prop_map(|parts| parts.concat().replace('\0', ""))
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z_][A-Za-z0-9_]{0,12}",
        "[a-z0-9;$`'() .\\-]{0,10}",
        any::<String>(),
    ]
}

/// The statements for `pairs` in `d`, and the variables they must set: each raw name is
/// used behind a `SLT<i>_` prefix (so no special variable of any shell is hit) when it is an
/// identifier; otherwise `assign` must refuse it, and the safe form of the name is used.
fn script(d: Dialect, pairs: &[(String, String)]) -> (String, BTreeMap<String, String>) {
    let mut text = String::new();
    let mut expected = BTreeMap::new();
    for (i, (raw, v)) in pairs.iter().enumerate() {
        let prefixed = format!("SLT{i}_{raw}");
        let name = if shell::is_name(&prefixed) {
            prefixed
        } else {
            assert_eq!(
                shell::assign(d, &prefixed, v),
                Err(Unsafe::Name(prefixed.clone())),
                "a bad name must be refused"
            );
            format!("SLT{i}_{}", shell::safe_name(raw))
        };
        let line = shell::assign(d, &name, v).expect("an identifier and a value without NUL");
        text.push_str(&line);
        text.push('\n');
        expected.insert(name, v.clone());
    }
    (text, expected)
}

/// `env -0` output → the `SLT*` variables.
fn slt_vars(dump: &[u8]) -> BTreeMap<String, String> {
    dump.split(|b| *b == 0)
        .filter_map(|e| {
            let e = String::from_utf8_lossy(e);
            let (k, v) = e.split_once('=')?;
            k.starts_with("SLT").then(|| (k.to_string(), v.to_string()))
        })
        .collect()
}

/// Run `program args…` in `dir` where `$SCRIPT` names the file with our output; the shell
/// evals it the documented way and dumps its environment with `env -0`.
fn eval_in(dir: &Path, program: &str, args: &[&str], text: &str) -> BTreeMap<String, String> {
    write(dir, "script.txt", text.as_bytes());
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .env("SCRIPT", dir.join("script.txt"))
        .env("HOME", dir)
        .output()
        .expect("run the shell");
    assert!(
        out.status.success(),
        "{program} failed on\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "{program} complained about\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    slt_vars(&out.stdout)
}

fn no_marker(dir: &Path, text: &str) {
    let found: Vec<String> = std::fs::read_dir(dir)
        .expect("read temp dir")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("pwned"))
        .collect();
    assert!(found.is_empty(), "{found:?} created by\n{text}");
}

/// A shell, how it evals our output, and the dialect we write for it.
struct Sh {
    program: &'static str,
    args: &'static [&'static str],
    dialect: Dialect,
}

const SHELLS: &[Sh] = &[
    Sh {
        program: "bash",
        args: &[
            "--norc",
            "--noprofile",
            "-c",
            "eval \"$(cat \"$SCRIPT\")\"; env -0",
        ],
        dialect: Dialect::Bash,
    },
    Sh {
        program: "zsh",
        args: &["-f", "-c", "eval \"$(cat \"$SCRIPT\")\"; env -0"],
        dialect: Dialect::Zsh,
    },
    Sh {
        program: "fish",
        args: &["--no-config", "-c", "cat $SCRIPT | source; env -0"],
        dialect: Dialect::Fish,
    },
    Sh {
        program: "sh",
        args: &["-c", "eval \"$(cat \"$SCRIPT\")\"; env -0"],
        dialect: Dialect::Sh,
    },
];

fn property(sh: &Sh) {
    if !common::require(sh.program) {
        return;
    }
    let dir = app(&[]);
    let config = ProptestConfig {
        cases: 64,
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    proptest!(config, |(pairs in prop::collection::vec((name(), value()), 1..16))| {
        let (text, expected) = script(sh.dialect, &pairs);
        let got = eval_in(dir.path(), sh.program, sh.args, &text);
        no_marker(dir.path(), &text);
        prop_assert_eq!(got, expected, "{} evaluating\n{}", sh.program, text);
    });
}

#[test]
fn bash_evaluates_exactly_the_assignments() {
    property(&SHELLS[0]);
}

#[test]
fn zsh_evaluates_exactly_the_assignments() {
    property(&SHELLS[1]);
}

#[test]
fn fish_evaluates_exactly_the_assignments() {
    property(&SHELLS[2]);
}

#[test]
fn posix_sh_evaluates_exactly_the_assignments() {
    property(&SHELLS[3]);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// The dotenv form reads back identically with the tool's own `.env` reader.
    #[test]
    fn dotenv_reads_back_identically(pairs in prop::collection::vec((name(), value()), 1..16)) {
        let (text, expected) = script(Dialect::Dotenv, &pairs);
        let parsed = stackato_local::api::env::dotenv::parse(&text, &|_| None)
            .map_err(|e| TestCaseError::fail(format!("{e} in\n{text}")))?;
        let got: BTreeMap<String, String> =
            parsed.into_iter().map(|e| (e.key, e.value)).collect();
        prop_assert_eq!(got, expected, "{}", text);
    }
}

/// `env --format shell` and `--format dotenv` with nasty values given on the command line:
/// the shell output eval'd by bash sets them literally; a bad `.env` name is skipped with a
/// note, never printed.
#[test]
fn env_output_round_trips_through_bash_and_skips_bad_names() {
    let d = app(&[
        ("stackato.yml", "name: q\n"),
        (".env", "odd.name=1\nFROM_FILE=ok\n"),
    ]);
    let nasty = "a'b\"c $(touch pwned1) `touch pwned2` \\ \n; touch pwned3";
    let pair = format!("NASTY={nasty}");
    let r = common::run(d.path(), &["env", "--reveal", "--env", &pair]);
    r.code(0);
    assert!(!r.stdout.contains("odd.name"), "{}", r.dump());
    assert!(
        r.stderr
            .contains("note: not printed: \"odd.name\" is not a shell variable name"),
        "{}",
        r.dump()
    );
    write(d.path(), "out.sh", r.stdout.as_bytes());
    let out = Command::new("bash")
        .args([
            "--norc",
            "--noprofile",
            "-c",
            "eval \"$(cat out.sh)\"; printf '%s|%s' \"$NASTY\" \"$FROM_FILE\"",
        ])
        .current_dir(d.path())
        .output()
        .expect("bash");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{nasty}|ok"));
    no_marker(d.path(), &r.stdout);

    let r = common::run(d.path(), &["env", "--reveal", "--format", "dotenv"]);
    r.code(0);
    assert!(!r.stdout.contains("odd.name"), "{}", r.dump());
    assert!(r.stdout.contains("FROM_FILE=ok\n"), "{}", r.dump());
}

// ---------------------------------------------------------------------------------------------
// (b) Item 5: service names in variable names

const EVIL: &str = "#!/bin/sh\ntouch pwned-by-evil\n";

fn evil_project(service: &str) -> tempfile::TempDir {
    let d = app(&[
        (
            "stackato.yml",
            &format!("name: fsapp\nservices:\n  {service:?}: filesystem\n  other-fs: filesystem\n"),
        ),
        ("evil", EVIL),
        ("bin/evil", EVIL),
    ]);
    for f in ["evil", "bin/evil"] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(d.path().join(f), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
    }
    d
}

#[test]
fn a_service_name_with_a_slash_is_refused_at_its_position() {
    let d = evil_project("x;. ./evil;y");
    let r = common::run(d.path(), &["check", "--format", "short"]);
    r.code(2);
    assert!(
        r.stderr.contains(
            "stackato.yml:3:3: error: Bad service name \"x;. ./evil;y\": names may not contain `/`"
        ),
        "{}",
        r.dump()
    );
    let r = common::run(d.path(), &["env"]);
    assert_ne!(r.code, Some(0), "{}", r.dump());
    assert!(!r.stdout.contains("export"), "{}", r.dump());
}

#[test]
fn eval_of_env_with_an_odd_service_name_runs_nothing() {
    // Accepted (no `/`), but `;` and ` ` would run `. evil` if spliced raw.
    let d = evil_project("x;. evil;y");
    let r = common::run(d.path(), &["env"]);
    r.code(0);
    assert!(
        r.stdout.contains("export STACKATO_FILESYSTEM_X___EVIL_Y='"),
        "{}",
        r.dump()
    );
    let out = Command::new("bash")
        .args([
            "--norc",
            "--noprofile",
            "-c",
            "eval \"$(\"$BIN\" env)\" && printf '%s' \"$STACKATO_FILESYSTEM_X___EVIL_Y\"",
        ])
        .current_dir(d.path())
        .env("BIN", common::bin())
        .env(
            "PATH",
            format!("{}:/usr/bin:/bin", d.path().join("bin").display()),
        )
        .env("STACKATO_LOCAL_TRUST", "1")
        .output()
        .expect("bash");
    assert!(out.status.success(), "{out:?}");
    assert!(
        !String::from_utf8_lossy(&out.stdout).is_empty(),
        "the variable is set: {out:?}"
    );
    assert!(
        !d.path().join("pwned-by-evil").exists(),
        "eval ran ./evil: {out:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// (c) Item 6: the hook never exports what changes the shell

/// `stackato-local allow` in `dir` with `home` as `$HOME` (the trust store lives there).
fn allow(dir: &Path, home: &Path) {
    let out = Command::new(common::bin())
        .arg("allow")
        .current_dir(dir)
        .env("HOME", home)
        .env_remove("XDG_DATA_HOME")
        .env_remove("STACKATO_LOCAL_TRUST")
        .stdin(std::process::Stdio::null())
        .output()
        .expect("run allow");
    assert!(out.status.success(), "allow failed: {out:?}");
}

const HOSTILE_ENV: &str = "name: hostile\nenv:\n  GREETING: hello\n  PROMPT_COMMAND: touch pwned-prompt\n  BASH_ENV: ./evil\n  STACKATO_LOCAL_TRUST: \"1\"\n  XDG_DATA_HOME: ./x\n  LD_PRELOAD: ./evil.so\n  PATH: ./bin:$PATH\n";

#[test]
fn the_hook_keeps_shell_control_loaders_and_identity_out() {
    let root = app(&[("proj/stackato.yml", HOSTILE_ENV), ("proj/evil", EVIL)]);
    let home = app(&[]);
    let proj = root.path().join("proj");
    allow(&proj, home.path());
    let out = crate::common::hooked_bash(
        r#"before="$PATH"
cd proj; _stackato_local_hook
echo "G=$GREETING PC=$PROMPT_COMMAND BE=${BASH_ENV-unset} T=${STACKATO_LOCAL_TRUST-unset} X=${XDG_DATA_HOME-unset} LD=${LD_PRELOAD-unset}"
echo "P=$PATH"
cd ..; _stackato_local_hook
[ "$PATH" = "$before" ] && echo "PATH restored"
echo "after G=${GREETING-unset}"
"#,
        root.path(),
        home.path(),
        &[("PATH", "/usr/local/bin:/usr/bin:/bin")],
    );
    assert!(
        out.contains("G=hello PC=_stackato_local_hook BE=unset T=unset X=unset LD=unset"),
        "{out}"
    );
    let path = out
        .lines()
        .find_map(|l| l.strip_prefix("P="))
        .unwrap_or_default();
    let entries: Vec<&str> = path.split(':').collect();
    assert!(
        !entries
            .iter()
            .any(|e| *e == "./bin" || e.ends_with("proj/bin")),
        "a repository PATH entry was exported: {out}"
    );
    assert!(
        entries.len() >= 2
            && entries[0].ends_with("/bin")
            && entries[1..] == ["/usr/local/bin", "/usr/bin", "/bin"],
        "PATH is the tool's entry, then the user's: {out}"
    );
    let msg = out
        .lines()
        .find(|l| l.starts_with("stackato-local: loaded hostile"))
        .unwrap_or_else(|| panic!("no load message: {out}"));
    for name in [
        "PROMPT_COMMAND",
        "BASH_ENV",
        "STACKATO_LOCAL_TRUST",
        "XDG_DATA_HOME",
        "LD_PRELOAD",
        "PATH (the project's entries)",
    ] {
        assert!(msg.contains(name), "the message names {name}: {msg}");
    }
    assert!(out.contains("PATH restored"), "{out}");
    assert!(out.contains("after G=unset"), "{out}");
    assert!(!proj.join("pwned-prompt").exists(), "{out}");
    assert!(!proj.join("pwned-by-evil").exists(), "{out}");

    // The app still gets them.
    let r = common::run(&proj, &["env", "--format", "json", "--reveal"]);
    r.code(0);
    let env: serde_json::Value = serde_json::from_str(&r.stdout).expect("json");
    assert_eq!(env["PROMPT_COMMAND"], "touch pwned-prompt", "{}", r.dump());
    assert_eq!(env["LD_PRELOAD"], "./evil.so", "{}", r.dump());
}

#[test]
fn the_hook_quotes_service_variable_names_and_skips_bad_env_names() {
    let root = app(&[
        (
            "proj/stackato.yml",
            "name: fsapp\nservices:\n  \"x;. evil;y\": filesystem\n  other-fs: filesystem\n",
        ),
        ("proj/.env", "odd.name=1\n"),
        ("proj/evil", EVIL),
    ]);
    let home = app(&[]);
    let proj = root.path().join("proj");
    allow(&proj, home.path());
    let out = crate::common::hooked_bash(
        r#"cd proj; _stackato_local_hook
echo "FS=${STACKATO_FILESYSTEM_X___EVIL_Y:+set}"
"#,
        root.path(),
        home.path(),
        &[("PATH", "/usr/local/bin:/usr/bin:/bin")],
    );
    assert!(out.contains("FS=set"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.contains("not exported: ") && l.contains("\"odd.name\"")),
        "the message names the skipped variable, escaped: {out}"
    );
    assert!(!proj.join("pwned-by-evil").exists(), "{out}");
}

// ---------------------------------------------------------------------------------------------
// (d) Name validation

fn check(yml: &str) -> common::Run {
    let d = common::yml(yml);
    common::run(d.path(), &["check", "--format", "short"])
}

#[test]
fn names_that_can_never_be_safe_are_positioned_errors() {
    for (yml, at, what) in [
        ("name: a/b\n", "1:7", "Bad Application Name \"a/b\""),
        ("name: \"a\\rb\"\n", "1:7", "Bad Application Name \"a\\rb\""),
        ("name: a.b\n", "1:7", "names may not contain `.`"),
        (
            "name: a\nservices:\n  ../../etc: filesystem\n",
            "3:3",
            "Bad service name \"../../etc\": names may not contain `/`",
        ),
        (
            "name: a\nservices:\n  \"..\": filesystem\n",
            "3:3",
            "Bad service name \"..\": names may not contain a `.` or `..` name",
        ),
        (
            "name: a\nservices:\n  \"db\\u001b[2J\": redis\n",
            "3:3",
            "Bad service name \"db\\u{1b}[2J\": names may not contain control characters",
        ),
        (
            "name: a\nservices:\n  \"db\\0\": redis\n",
            "3:3",
            // The reader refuses a NUL anywhere in the manifest before names are checked.
            "a NUL character",
        ),
        (
            "name: a\nenv:\n  \"${name};x\": 1\n",
            "3:3",
            "Bad environment variable name \"a;x\"",
        ),
    ] {
        let r = check(yml);
        r.code(2);
        assert!(
            r.stderr
                .lines()
                .any(|l| l.starts_with(&format!("stackato.yml:{at}: error: ")) && l.contains(what)),
            "{yml:?}: expected {what:?} at {at}\n{}",
            r.dump()
        );
        assert!(
            !r.stderr.contains('\u{1b}'),
            "escape sequences are shown escaped\n{}",
            r.dump()
        );
    }
}

#[test]
fn unusual_real_world_names_keep_working() {
    // Names from the corpus of real stackato.yml files.
    let r = check("name: Bulletin Board\n");
    r.code(0);
    assert!(
        r.stderr.contains(
            "stackato.yml:1:7: warning: Application name \"Bulletin Board\" is not a host name label"
        ),
        "{}",
        r.dump()
    );
    for yml in [
        "name: stackato_stats\nurls: [stats.example.com]\n",
        "name: CloudBank\nservices:\n  free.postgresql-c8ea: postgresql\n",
        "name: wp\nservices:\n  ${name}_uploads: filesystem\n  ${name}_mysql: mysql\n",
        "name: worker\nprocesses: {web: ~}\ncommand: sleep 1000\n",
    ] {
        let r = check(yml);
        r.code(0);
        assert!(!r.stderr.contains("warning"), "{yml:?}\n{}", r.dump());
    }
    // Without urls the platform builds `stackato_stats.<domain>`: a warning, still accepted.
    let r = check("name: stackato_stats\n");
    r.code(0);
    assert!(
        r.stderr.contains("is not a host name label"),
        "{}",
        r.dump()
    );
}

#[test]
fn moving_from_one_project_to_another_restores_exactly() {
    let root = app(&[
        (
            "a/stackato.yml",
            "name: first\nenv:\n  ONLY_A: a\n  SHARED: a\n",
        ),
        ("b/stackato.yml", "name: second\nenv:\n  SHARED: b\n"),
    ]);
    let home = app(&[]);
    allow(&root.path().join("a"), home.path());
    allow(&root.path().join("b"), home.path());
    let out = crate::common::hooked_bash(
        r#"before="$PATH"; export SHARED=mine
cd a; _stackato_local_hook
cd ../b; _stackato_local_hook
echo "in b: SHARED=$SHARED ONLY_A=${ONLY_A-unset} PATH=$PATH"
cd ..; _stackato_local_hook
[ "$PATH" = "$before" ] && echo "PATH restored"
echo "out: SHARED=$SHARED ONLY_A=${ONLY_A-unset} APP=${STACKATO_APP_NAME-unset}"
"#,
        root.path(),
        home.path(),
        &[("PATH", "/usr/local/bin:/usr/bin:/bin")],
    );
    assert!(out.contains("in b: SHARED=b ONLY_A=unset"), "{out}");
    let in_b = out
        .lines()
        .find(|l| l.starts_with("in b:"))
        .unwrap_or_default();
    assert!(
        !in_b.contains("/a/.stackato-local/"),
        "the first project's PATH entries are gone: {out}"
    );
    assert!(out.contains("PATH restored"), "{out}");
    assert!(
        out.contains("out: SHARED=mine ONLY_A=unset APP=unset"),
        "{out}"
    );
}

/// An app's directories in the state dir come from a safe encoding of its name, like a
/// service's: the name is data, never a path of its own.
#[test]
fn an_apps_state_directory_is_a_safe_encoding_of_its_name() {
    let dir = app(&[("stackato.yml", "name: Bulletin Board\n")]);
    let r = crate::common::run(dir.path(), &["env", "--format", "json"]);
    r.code(0);
    let root = r.json()["STACKATO_APP_ROOT"]
        .as_str()
        .expect("STACKATO_APP_ROOT")
        .to_string();
    assert!(
        root.ends_with("/.stackato-local/apps/Bulletin%20Board/0"),
        "{root}"
    );
}
