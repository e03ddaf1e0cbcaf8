//! `stackato-local env`, `env explain` and `env diff` end to end: the real binary on small
//! projects in temp dirs, stdin not a terminal (so nothing is ever prompted for unless a test
//! gives it a pseudo-terminal on purpose).
//!
//! Covered: the three output formats and masking, the precedence of the layers (platform rules
//! → services → stackato.yml env: → shell for `inherit: true` → remembered answers → .env files
//! → --env), every `env:` attribute, `.env` syntax and errors, shell-style expansion that never
//! runs commands, the platform's URL/filesystem/profile/staging/instance rules, credentials and
//! ports kept in `.stackato-local/`, concurrent runs, and `env diff` against our own output and
//! a real Stackato 2.x dump.

use crate::common;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::Value;

const MASK: &str = "********";

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// `env` plans how each service would run locally; with the default `--db auto` a mysql or
/// postgresql service whose server is not installed falls back to sqlite and its variables are
/// left out. The platform rules must not depend on what this machine has installed, so every
/// `env` run of this file says `--db native` (servers that are missing only cause a note).
/// These shadow `common::run`/`common::run_with`; the sqlite tests below set `--db` themselves.
fn run(dir: &Path, args: &[&str]) -> Run {
    run_with(dir, args, &[])
}

fn run_with(dir: &Path, args: &[&str], vars: &[(&str, &str)]) -> Run {
    let mut a: Vec<&str> = args.to_vec();
    if a.first() == Some(&"env") && !a.contains(&"--db") {
        a.extend(["--db", "native"]);
    }
    common::run_with(dir, &a, vars)
}

/// `env --format json` plus `extra`; asserts exit 0 and a flat object of strings.
#[track_caller]
fn env_json(dir: &Path, extra: &[&str]) -> BTreeMap<String, String> {
    env_json_with(dir, extra, &[])
}

/// Like [`env_json`], with extra environment variables for the process.
#[track_caller]
fn env_json_with(dir: &Path, extra: &[&str], vars: &[(&str, &str)]) -> BTreeMap<String, String> {
    let mut args = vec!["env", "--format", "json"];
    args.extend_from_slice(extra);
    let r = run_with(dir, &args, vars);
    r.code(0);
    flat_strings(&r)
}

/// Stdout as one flat JSON object whose values are all strings.
#[track_caller]
fn flat_strings(r: &Run) -> BTreeMap<String, String> {
    let v = r.json();
    let obj = v
        .as_object()
        .unwrap_or_else(|| panic!("not a JSON object\n{}", r.dump()));
    obj.iter()
        .map(|(k, v)| match v {
            Value::String(s) => (k.clone(), s.clone()),
            other => panic!("{k} is not a string but {other}\n{}", r.dump()),
        })
        .collect()
}

/// A variable that must be there.
#[track_caller]
fn var<'a>(env: &'a BTreeMap<String, String>, name: &str) -> &'a str {
    env.get(name)
        .map(String::as_str)
        .unwrap_or_else(|| panic!("{name} is not set; have: {:?}", env.keys()))
}

/// A variable holding JSON, parsed.
#[track_caller]
fn json_var(env: &BTreeMap<String, String>, name: &str) -> Value {
    let s = var(env, name);
    serde_json::from_str(s).unwrap_or_else(|e| panic!("{name} is not JSON ({e}): {s}"))
}

/// The credentials of the service `name` in `VCAP_SERVICES` (searched under every type).
#[track_caller]
fn creds(env: &BTreeMap<String, String>, name: &str) -> Value {
    let vs = json_var(env, "VCAP_SERVICES");
    for list in vs.as_object().expect("VCAP_SERVICES is an object").values() {
        for s in list.as_array().expect("a list of bindings") {
            if s["name"] == name {
                return s["credentials"].clone();
            }
        }
    }
    panic!("no service {name:?} in VCAP_SERVICES: {vs:#}")
}

/// A credential field as text (numbers without quotes).
fn field(c: &Value, k: &str) -> String {
    match &c[k] {
        Value::String(s) => s.clone(),
        Value::Null => panic!("credential field {k} missing in {c}"),
        v => v.to_string(),
    }
}

/// What `env explain VAR` printed when the variable is set.
#[derive(Debug)]
struct Explained {
    value: String,
    set_by: String,
    /// `(layer, value)`, most recently hidden first (as printed).
    hides: Vec<(String, String)>,
}

/// `env explain VAR` plus `extra`, asserting exit 0, parsed.
#[track_caller]
fn explain(dir: &Path, name: &str, extra: &[&str], vars: &[(&str, &str)]) -> Explained {
    let mut args = vec!["env", "explain", name];
    args.extend_from_slice(extra);
    let r = run_with(dir, &args, vars);
    r.code(0);
    let mut lines = r.stdout.lines();
    let first = lines.next().unwrap_or_default();
    let value = first
        .strip_prefix(&format!("{name}="))
        .unwrap_or_else(|| panic!("first line is not {name}=…\n{}", r.dump()))
        .to_string();
    let mut set_by = None;
    let mut hides = Vec::new();
    for l in lines {
        let l = l.trim_start();
        if let Some(rest) = l.strip_prefix("set by:") {
            set_by = Some(rest.trim().to_string());
        } else if let Some(rest) = l.strip_prefix("hides:") {
            let (layer, v) = rest
                .trim_start()
                .split_once(": ")
                .unwrap_or_else(|| panic!("hides line without `layer: value`: {l}\n{}", r.dump()));
            hides.push((layer.to_string(), v.to_string()));
        }
    }
    Explained {
        value,
        set_by: set_by.unwrap_or_else(|| panic!("no `set by:` line\n{}", r.dump())),
        hides,
    }
}

/// `hides` entries must be, in order, a layer containing `layer` with exactly `value`.
#[track_caller]
fn assert_hides(e: &Explained, expected: &[(&str, &str)]) {
    assert_eq!(
        e.hides.len(),
        expected.len(),
        "hidden values: {:?}, expected {:?}",
        e.hides,
        expected
    );
    for ((layer, value), (el, ev)) in e.hides.iter().zip(expected) {
        assert!(
            layer.contains(el) && value == ev,
            "hidden values {:?}, expected {:?}",
            e.hides,
            expected
        );
    }
}

/// The numbers of `env diff`'s summary line: different, missing, only here, expected, same.
#[track_caller]
fn diff_summary(r: &Run) -> [usize; 5] {
    let line = r
        .stdout
        .lines()
        .rev()
        .find(|l| l.contains(" different, "))
        .unwrap_or_else(|| panic!("no summary line\n{}", r.dump()));
    let nums: Vec<usize> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().unwrap())
        .collect();
    assert_eq!(nums.len(), 5, "summary line: {line}");
    [nums[0], nums[1], nums[2], nums[3], nums[4]]
}

/// The indented lines under the `env diff` heading starting with `heading`.
fn diff_block<'a>(r: &'a Run, heading: &str) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut inside = false;
    for l in r.stdout.lines() {
        if inside {
            if l.starts_with("    ") {
                out.push(l.trim());
                continue;
            }
            break;
        }
        if l.starts_with(heading) {
            inside = true;
        }
    }
    out
}

/// The real Stackato 2.x dump of the shared spec; `None` (said loudly) when it is absent.
fn spec_dump() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/spec/dumps/stackato-2x-env.json");
    if p.is_file() {
        Some(p)
    } else {
        eprintln!("\n!!!!!!!! SKIPPED: {} is missing !!!!!!!!\n", p.display());
        None
    }
}

/// The manifest that matches the app of the 2.x dump (stackato-assist).
const ASSIST: &str = "\
name: stackato-assist
framework:
  type: node
min_version:
  client: 1.5.1
services:
  x5h: harbor
  x4m: mysql
  x3p: postgresql
  x2: redis
  x1: mongodb
";

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

// ---------------------------------------------------------------------------------------------
// Formats and masking
// ---------------------------------------------------------------------------------------------

#[test]
fn json_is_one_flat_object_with_the_service_json_as_strings() {
    let d = yml("name: shop\nservices:\n  db: mysql\n  cache: memcached\n");
    let r = run(d.path(), &["env", "--format", "json", "--reveal"]);
    r.code(0);
    // Every value a string, nothing nested.
    let env = flat_strings(&r);
    assert_eq!(var(&env, "STACKATO_APP_NAME"), "shop");
    assert_eq!(var(&env, "STACKATO_APP_NAME_UPCASE"), "SHOP");
    assert_eq!(var(&env, "HOME"), canon_str(d.path(), ""));
    assert!(var(&env, "PORT").parse::<u16>().is_ok_and(|p| p > 0));
    assert_eq!(var(&env, "VCAP_APP_PORT"), var(&env, "PORT"));

    // VCAP_SERVICES: type → list of bindings; STACKATO_SERVICES: name → the same credentials.
    let vs = json_var(&env, "VCAP_SERVICES");
    let types: Vec<&String> = vs.as_object().unwrap().keys().collect();
    assert_eq!(types, ["mysql", "memcached"]);
    let db = &vs["mysql"][0];
    assert_eq!(db["name"], "db");
    assert_eq!(db["label"], "mysql-5.5");
    assert_eq!(db["plan"], "free");
    assert_eq!(
        db["tags"],
        serde_json::json!(["mysql", "mysql-5.5", "relational"])
    );
    let keys: Vec<&String> = db["credentials"].as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "name", "hostname", "host", "port", "user", "username", "password"
        ]
    );
    let ss = json_var(&env, "STACKATO_SERVICES");
    assert_eq!(ss["db"], db["credentials"]);
    assert_eq!(ss["cache"], vs["memcached"][0]["credentials"]);
    assert!(
        !r.stdout.contains(MASK),
        "--reveal masks nothing\n{}",
        r.dump()
    );
}

#[test]
fn shell_format_evaluates_to_the_exact_values() {
    let d = yml("name: q\n");
    // Quotes of both kinds, a backslash, a newline, a tab, a literal dollar, non-ASCII.
    let tricky = "it's \"q\" \\ back\nnl \\$lit `x` é\ttab";
    let pair = format!("V={tricky}");
    let env = env_json(d.path(), &["--env", &pair]);
    let expected = "it's \"q\" \\ back\nnl $lit `x` é\ttab";
    assert_eq!(var(&env, "V"), expected);

    let r = run(d.path(), &["env", "--env", &pair]);
    r.code(0);
    let exports = r
        .stdout
        .lines()
        .filter(|l| l.starts_with("export "))
        .count();
    assert!(r.stdout.starts_with("export "), "{}", r.dump());
    assert_eq!(
        exports,
        env.len(),
        "one `export K='v'` per variable\n{}",
        r.dump()
    );
    write(d.path(), "out.sh", r.stdout.as_bytes());
    let out = std::process::Command::new("sh")
        .current_dir(d.path())
        .args([
            "-c",
            ". ./out.sh && printf '%s' \"$V\" && printf '|%s' \"$STACKATO_APP_NAME\"",
        ])
        .output()
        .expect("run sh");
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("{expected}|q")
    );
}

#[test]
fn dotenv_format_reads_back_identically() {
    let d = yml("name: q\nservices:\n  db: postgresql\n");
    let pair = "V=it's \"q\" \\ back\nnl \\$lit é";
    let first = run(
        d.path(),
        &["env", "--format", "dotenv", "--reveal", "--env", pair],
    );
    first.code(0);
    assert!(
        first.stdout.lines().any(|l| l.starts_with("V=\"")),
        "dotenv lines are KEY=\"value\"\n{}",
        first.dump()
    );
    write(d.path(), "saved.env", first.stdout.as_bytes());
    let direct = env_json(d.path(), &["--reveal", "--env", pair]);
    // Reading every saved variable back as the highest .env layer changes nothing.
    let again = env_json(
        d.path(),
        &["--reveal", "--no-dotenv", "--env-file", "saved.env"],
    );
    for (k, v) in &direct {
        if k == "VCAP_APPLICATION" {
            continue; // holds the current time
        }
        assert_eq!(again.get(k), Some(v), "{k} changed after a round trip");
    }
    assert_eq!(var(&again, "V"), "it's \"q\" \\ back\nnl $lit é");
}

#[test]
fn passwords_are_masked_unless_reveal() {
    let d = yml("name: m\nservices:\n  db: mysql\n  kv: redis\n");
    let masked = run(d.path(), &["env", "--format", "json"]);
    masked.code(0);
    masked.stderr_has("--reveal");
    let m = flat_strings(&masked);
    let revealed = env_json(d.path(), &["--reveal"]);

    let real = creds(&revealed, "db");
    let pw = field(&real, "password");
    assert!(pw.len() >= 8, "a real password: {pw}");
    assert_eq!(field(&creds(&m, "db"), "password"), MASK);
    assert_eq!(field(&creds(&m, "kv"), "password"), MASK);
    assert_eq!(json_var(&m, "STACKATO_SERVICES")["db"]["password"], MASK);
    // The user name is not a secret.
    assert_eq!(field(&creds(&m, "db"), "user"), field(&real, "user"));
    assert_eq!(
        var(&m, "MYSQL_URL"),
        var(&revealed, "MYSQL_URL").replace(&pw, MASK)
    );
    assert!(var(&m, "MYSQL_URL").contains(&format!(":{MASK}@")));
    assert_eq!(
        var(&m, "REDIS_URL"),
        format!(
            "redis://:{MASK}@127.0.0.1:{}",
            field(&creds(&m, "kv"), "port")
        )
    );
    for (k, v) in &m {
        assert!(!v.contains(&pw), "{k} shows the password: {v}");
    }
    // The shell format masks as well.
    let sh = run(d.path(), &["env"]);
    sh.code(0);
    assert!(!sh.stdout.contains(&pw), "{}", sh.dump());
    assert!(sh.stdout.contains(MASK), "{}", sh.dump());
}

#[test]
fn hidden_and_secret_named_variables_are_masked() {
    let d = yml(
        "name: h\nenv:\n  PW:\n    default: longsecretvalue\n    hidden: true\n  API_TOKEN: tok-1234567\n  PLAIN: visible-value\n",
    );
    let m = env_json(d.path(), &[]);
    assert_eq!(var(&m, "PW"), MASK);
    assert_eq!(var(&m, "API_TOKEN"), MASK);
    assert_eq!(var(&m, "PLAIN"), "visible-value");
    let e = explain(d.path(), "PW", &[], &[]);
    assert_eq!(e.value, MASK);
    let r = env_json(d.path(), &["--reveal"]);
    assert_eq!(var(&r, "PW"), "longsecretvalue");
    assert_eq!(var(&r, "API_TOKEN"), "tok-1234567");
    assert_eq!(
        explain(d.path(), "PW", &["--reveal"], &[]).value,
        "longsecretvalue"
    );
}

#[test]
fn short_hidden_values_are_masked_too() {
    let d =
        yml("name: h\nenv:\n  PIN:\n    default: \"abc\"\n    hidden: true\n  DB_PASSWORD: s3\n");
    let m = env_json(d.path(), &[]);
    assert_eq!(var(&m, "PIN"), MASK);
    assert_eq!(var(&m, "DB_PASSWORD"), MASK);
}

#[test]
fn explain_masks_the_hidden_values_of_secret_variables() {
    let d = yml(
        "name: h\nenv:\n  PW:\n    default: defaultpw1\n    hidden: true\n  API_TOKEN: tokfromyml\n",
    );
    let e = explain(d.path(), "PW", &["--env", "PW=clipw12345"], &[]);
    assert_eq!(e.value, MASK);
    assert_hides(&e, &[("stackato.yml", MASK)]);
    let e = explain(
        d.path(),
        "API_TOKEN",
        &["--env", "API_TOKEN=clitok9999"],
        &[],
    );
    assert_eq!(e.value, MASK);
    assert_hides(&e, &[("stackato.yml", MASK)]);
}

#[test]
fn passwords_inside_user_urls_are_masked() {
    let d = yml("name: u\nenv:\n  DATABASE_URL: mysql://me:ymlpassword@db.example.com/prod\n");
    let m = env_json(d.path(), &[]);
    assert_eq!(
        var(&m, "DATABASE_URL"),
        format!("mysql://me:{MASK}@db.example.com/prod")
    );
}

// ---------------------------------------------------------------------------------------------
// env explain
// ---------------------------------------------------------------------------------------------

#[test]
fn explain_shows_value_layer_and_every_hidden_value() {
    let d = yml(
        "name: ex\nservices:\n  db: postgresql\nenv:\n  HOME: $HOME/override\n  DATABASE_URL: from-yml\n",
    );
    let home = canon_str(d.path(), "");
    let e = explain(d.path(), "HOME", &[], &[]);
    assert_eq!(e.value, format!("{home}/override"));
    assert!(e.set_by.contains("stackato.yml"), "{e:?}");
    assert_hides(&e, &[("platform", &home)]);

    let url = var(&env_json(d.path(), &["--reveal"]), "POSTGRESQL_URL").to_string();
    let e = explain(
        d.path(),
        "DATABASE_URL",
        &["--reveal", "--env", "DATABASE_URL=cli"],
        &[],
    );
    assert_eq!(e.value, "cli");
    assert!(e.set_by.contains("--env"), "{e:?}");
    assert_hides(&e, &[("stackato.yml", "from-yml"), ("service", &url)]);

    let e = explain(d.path(), "STACKATO_APP_NAME", &[], &[]);
    assert_eq!(e.value, "ex");
    assert!(e.set_by.contains("platform"), "{e:?}");
    assert!(e.hides.is_empty());
}

#[test]
fn explain_database_url_with_two_relational_services_exits_1_and_says_why() {
    let d = yml("name: two\nservices:\n  main: mysql\n  reports: postgresql\n");
    let r = run(d.path(), &["env", "explain", "DATABASE_URL"]);
    r.code(1);
    r.stdout_has("DATABASE_URL is not set");
    r.stdout_has("exactly one relational service");
    r.stdout_has("main (mysql)");
    r.stdout_has("reports (postgresql)");

    let d = yml("name: two\nservices:\n  a: mysql\n  b: mysql\n");
    let r = run(d.path(), &["env", "explain", "MYSQL_URL"]);
    r.code(1);
    r.stdout_has("MYSQL_URL is not set");
    r.stdout_has("exactly one service of that type");
}

#[test]
fn explain_database_url_on_the_sqlite_fallback_names_the_fallback() {
    // Exactly one relational service, running as sqlite: the reason is the fallback, not the
    // number of services.
    let d = yml("name: lite\nservices:\n  db: mysql\n");
    let r = common::run_with(
        d.path(),
        &["env", "explain", "DATABASE_URL", "--db", "sqlite"],
        &[],
    );
    r.code(1);
    r.stdout_has("DATABASE_URL is not set");
    r.stdout_has("db (mysql) runs on the sqlite fallback");
    r.stdout_has("--sqlite-env url");
    assert!(
        !r.stdout.contains("exactly one relational service"),
        "{}",
        r.stdout
    );
    let r = common::run_with(
        d.path(),
        &["env", "explain", "MYSQL_URL", "--db", "sqlite"],
        &[],
    );
    r.code(1);
    r.stdout_has("sqlite fallback");
}

#[test]
fn explain_of_an_unknown_or_staging_less_variable_exits_1() {
    let d = yml("name: nothing\n");
    let r = run(d.path(), &["env", "explain", "NOT_A_THING"]);
    r.code(1);
    r.stdout_has("NOT_A_THING is not set for \"nothing\"");
    let r = run(d.path(), &["env", "explain", "DATABASE_URL"]);
    r.code(1);
    r.stdout_has("no relational");
    let r = run(d.path(), &["env", "explain", "PORT", "--staging"]);
    r.code(1);
    r.stdout_has("PORT is not set");
    r.stdout_has("staging");
}

#[test]
fn explain_says_when_a_host_variable_is_left_out_and_when_it_passes() {
    let d = yml("name: hostvars\n");
    let host = [("FOO_FROM_HOST", "x"), ("TZ", "Europe/Berlin")];
    let r = run_with(d.path(), &["env", "explain", "FOO_FROM_HOST"], &host);
    r.code(1);
    r.stdout_has("FOO_FROM_HOST is not set for \"hostvars\"");
    r.stdout_has("left out: the platform's environment does not include the host's FOO_FROM_HOST");
    r.stdout_has("--inherit-env");
    // TZ is in the allowlist: processes get it.
    let e = explain(d.path(), "TZ", &[], &host);
    assert_eq!(e.value, "Europe/Berlin");
    assert!(e.set_by.contains("your environment"), "{e:?}");
    // With `inherit: true` the variable is the app's own.
    let d = yml("name: hostvars\nenv:\n  FOO_FROM_HOST:\n    default: d\n    inherit: true\n");
    let e = explain(d.path(), "FOO_FROM_HOST", &[], &host);
    assert_eq!(e.value, "x");
    assert!(e.set_by.contains("inherit: true"), "{e:?}");
}

#[test]
fn exec_and_ssh_get_the_clean_environment_unless_inherit_env() {
    let d = yml("name: hostexec\n");
    let host = [("FOO_FROM_HOST", "x"), ("TERM", "xterm-host")];
    let show = "echo foo=${FOO_FROM_HOST-unset} term=${TERM-unset}";
    for cmd in ["exec", "ssh"] {
        let r = run_with(d.path(), &[cmd, "--", "sh", "-c", show], &host);
        r.code(0).stdout_has("foo=unset term=xterm-host");
        let r = run_with(
            d.path(),
            &[cmd, "--inherit-env", "--", "sh", "-c", show],
            &host,
        );
        r.code(0).stdout_has("foo=x term=xterm-host");
    }
}

// ---------------------------------------------------------------------------------------------
// Precedence
// ---------------------------------------------------------------------------------------------

const LAYERED: &str = "\
name: layered
env:
  SLT_X:
    default: yml
    inherit: true
";

/// Pre-seed a remembered answer (what a prompt on a terminal would have stored).
fn remember(dir: &Path, app: &str, name: &str, value: &str) {
    let v = serde_json::json!({ app: { name: value } });
    write(
        dir,
        ".stackato-local/answers.json",
        serde_json::to_string(&v).unwrap().as_bytes(),
    );
}

#[test]
fn layers_apply_in_one_documented_order() {
    let d = yml(LAYERED);
    remember(d.path(), "layered", "SLT_X", "ans");
    write(d.path(), ".env", b"SLT_X=dot\n");
    write(d.path(), "extra.env", b"SLT_X=file2\n");
    let shell = [("SLT_X", "shell")];

    // Everything at once: --env wins and every lower value is shown, highest first.
    let e = explain(
        d.path(),
        "SLT_X",
        &["--env-file", "extra.env", "--env", "SLT_X=cli"],
        &shell,
    );
    assert_eq!(e.value, "cli");
    assert!(e.set_by.contains("--env"), "{e:?}");
    assert_hides(
        &e,
        &[
            ("extra.env", "file2"),
            (".env", "dot"),
            ("answer", "ans"),
            ("shell", "shell"),
            ("stackato.yml", "yml"),
        ],
    );

    // Peel the layers off one by one.
    let e = explain(d.path(), "SLT_X", &["--env-file", "extra.env"], &shell);
    assert_eq!(e.value, "file2");
    assert!(e.set_by.contains("extra.env"), "{e:?}");
    let e = explain(d.path(), "SLT_X", &[], &shell);
    assert_eq!(e.value, "dot");
    assert!(e.set_by.contains(".env"), "{e:?}");
    let e = explain(d.path(), "SLT_X", &["--no-dotenv"], &shell);
    assert_eq!(e.value, "ans");
    assert!(e.set_by.contains("answer"), "{e:?}");
    assert_hides(&e, &[("shell", "shell"), ("stackato.yml", "yml")]);
    std::fs::remove_file(d.path().join(".stackato-local/answers.json")).unwrap();
    let e = explain(d.path(), "SLT_X", &["--no-dotenv"], &shell);
    assert_eq!(e.value, "shell");
    assert!(e.set_by.contains("shell"), "{e:?}");
    assert_hides(&e, &[("stackato.yml", "yml")]);
    let e = explain(d.path(), "SLT_X", &["--no-dotenv"], &[]);
    assert_eq!(e.value, "yml");
    assert!(e.set_by.contains("stackato.yml"), "{e:?}");
    assert!(e.hides.is_empty(), "{e:?}");

    // --env-file is read even with --no-dotenv; several --env: the last wins.
    let env = env_json_with(
        d.path(),
        &[
            "--no-dotenv",
            "--env-file",
            "extra.env",
            "-e",
            "SLT_X=one",
            "-e",
            "SLT_X=two",
        ],
        &shell,
    );
    assert_eq!(var(&env, "SLT_X"), "two");
}

#[test]
fn the_app_directory_env_file_beats_the_projects() {
    let d = app(&[
        ("stackato.yml", "name: a\napp-dir: sub\nenv:\n  A: yml\n"),
        (".env", "A=proj\nB=proj\n"),
        ("sub/.env", "A=appdir\n"),
    ]);
    let env = env_json(d.path(), &[]);
    assert_eq!(var(&env, "A"), "appdir");
    assert_eq!(var(&env, "B"), "proj");
    assert_eq!(var(&env, "HOME"), canon_str(d.path(), "sub"));
    let e = explain(d.path(), "A", &[], &[]);
    assert!(e.set_by.contains("sub/.env"), "{e:?}");
    assert_hides(&e, &[(".env", "proj"), ("stackato.yml", "yml")]);
}

#[test]
fn the_shell_counts_only_for_inherit_true() {
    let d = yml("name: s\nenv:\n  PLAIN: yml\n  SLT_INH:\n    default: dflt\n    inherit: true\n");
    let env = env_json_with(
        d.path(),
        &[],
        &[("PLAIN", "from-shell"), ("LEAKY_SHELL_VAR", "1")],
    );
    assert_eq!(var(&env, "PLAIN"), "yml");
    assert_eq!(
        var(&env, "SLT_INH"),
        "dflt",
        "SLT_INH unset in the shell keeps its default"
    );
    assert!(
        !env.contains_key("LEAKY_SHELL_VAR"),
        "the shell leaks: {env:?}"
    );
    let env = env_json_with(d.path(), &[], &[("SLT_INH", "from-shell")]);
    assert_eq!(var(&env, "SLT_INH"), "from-shell");
}

#[test]
fn a_prompt_answer_on_a_terminal_is_remembered() {
    let has_script = std::process::Command::new("script")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !has_script {
        eprintln!("\n!!!!!!!! SKIPPED: `script` (util-linux) is not installed: no pty !!!!!!!!\n");
        return;
    }
    let d = yml("name: p\nenv:\n  TOKEN:\n    required: true\n    prompt: Your token please\n");
    let command = format!("'{}' env explain TOKEN --reveal --db native", bin());
    let mut child = std::process::Command::new("script")
        .current_dir(d.path())
        .args(["-qec", &command, "/dev/null"])
        .env_remove("NO_COLOR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start script");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"abc123\n").unwrap();
    }
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("the prompt under a pty did not finish in 20 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("Your token please"),
        "the prompt text: {text}"
    );
    assert!(text.contains("TOKEN=abc123"), "{text}");

    // Remembered, privately, and used without a terminal.
    let answers = d.path().join(".stackato-local/answers.json");
    assert_eq!(mode(&answers), 0o600);
    let e = explain(d.path(), "TOKEN", &["--reveal"], &[]);
    assert_eq!(e.value, "abc123");
    assert!(e.set_by.contains("answer"), "{e:?}");
}

// ---------------------------------------------------------------------------------------------
// env: attributes
// ---------------------------------------------------------------------------------------------

const REQUIRED: &str = "\
name: req
env:
  PLAIN: x
  SLT_TOKEN:
    required: true
    prompt: Your secret token
";

#[test]
fn a_required_variable_without_a_value_fails_with_exit_4_at_its_line() {
    let d = yml(REQUIRED);
    let r = run(d.path(), &["env"]);
    r.code(4);
    r.stderr_has("Required variable \"SLT_TOKEN\" not set");
    r.stderr_has(" --> stackato.yml:4:3");
    r.stderr_has("--env SLT_TOKEN=");
    // Nobody was asked.
    r.stderr_lacks("Your secret token");
    assert!(
        r.stdout.is_empty(),
        "nothing printed on failure\n{}",
        r.dump()
    );
    for args in [
        &["env", "explain", "PLAIN"][..],
        &["env", "--format", "json"][..],
        &["env", "--staging"][..],
    ] {
        run(d.path(), args).code(4).stderr_has("\"SLT_TOKEN\"");
    }
}

#[test]
fn a_required_variable_can_come_from_env_dotenv_or_the_shell() {
    let d = yml(&format!("{REQUIRED}    inherit: true\n"));
    assert_eq!(
        var(
            &env_json(d.path(), &["-e", "SLT_TOKEN=cli-token"]),
            "SLT_TOKEN"
        ),
        MASK
    );
    assert_eq!(
        var(
            &env_json(d.path(), &["--reveal", "-e", "SLT_TOKEN=cli-token"]),
            "SLT_TOKEN"
        ),
        "cli-token"
    );
    assert_eq!(
        var(
            &env_json_with(d.path(), &["--reveal"], &[("SLT_TOKEN", "sh")]),
            "SLT_TOKEN"
        ),
        "sh"
    );
    write(d.path(), ".env", b"SLT_TOKEN=dot\n");
    assert_eq!(var(&env_json(d.path(), &["--reveal"]), "SLT_TOKEN"), "dot");
    run(d.path(), &["env", "--no-dotenv"])
        .code(4)
        .stderr_has("Required variable \"SLT_TOKEN\" not set");
}

const CHOICES: &str = "\
name: ch
env:
  MODE:
    default: dev
    choices: [dev, prod]
";

#[test]
fn choices_are_checked_on_the_final_value() {
    let d = yml(CHOICES);
    assert_eq!(var(&env_json(d.path(), &[]), "MODE"), "dev");
    assert_eq!(
        var(&env_json(d.path(), &["-e", "MODE=prod"]), "MODE"),
        "prod"
    );

    let r = run(d.path(), &["env", "-e", "MODE=staging"]);
    r.code(4);
    r.stderr_has("Variable \"MODE\" is \"staging\"");
    r.stderr_has("dev, prod");
    r.stderr_has(" --> stackato.yml:3:3");

    write(d.path(), ".env", b"# mode\nMODE=wrong\n");
    let r = run(d.path(), &["env", "--format", "json"]);
    r.code(4);
    r.stderr_has("Variable \"MODE\" is \"wrong\"");
    r.stderr_has(" --> .env:2:1");
    // --env fixes what .env broke.
    assert_eq!(
        var(&env_json(d.path(), &["-e", "MODE=prod"]), "MODE"),
        "prod"
    );
}

#[test]
fn scope_is_accepted_and_like_the_platform_not_acted_on() {
    let d = yml(
        "name: sc\nenv:\n  R:\n    default: r\n    scope: runtime\n  S:\n    default: s\n    scope: staging\n  B:\n    default: b\n    scope: both\n",
    );
    check(d.path()).code(0);
    for extra in [&[][..], &["--staging"][..]] {
        let env = env_json(d.path(), extra);
        assert_eq!(
            (var(&env, "R"), var(&env, "S"), var(&env, "B")),
            ("r", "s", "b"),
            "{extra:?}"
        );
    }
}

#[test]
fn prompt_and_hidden_do_not_change_a_given_value() {
    let d = yml(
        "name: ph\nenv:\n  P:\n    default: given\n    prompt: Ask me\n    required: true\n  H:\n    default: h-value-long\n    hidden: true\n",
    );
    let r = run(d.path(), &["env", "--format", "json", "--reveal"]);
    r.code(0);
    r.stderr_lacks("Ask me");
    let env = flat_strings(&r);
    assert_eq!(var(&env, "P"), "given");
    assert_eq!(var(&env, "H"), "h-value-long");
}

// ---------------------------------------------------------------------------------------------
// --env and .env syntax
// ---------------------------------------------------------------------------------------------

#[test]
fn bad_env_flag_syntax_is_exit_64_with_a_clear_message() {
    let d = yml("name: b\n");
    let r = run(d.path(), &["env", "--env", "FOO"]);
    r.code(64);
    r.stderr_has("`--env FOO` needs the form KEY=VALUE");
    let r = run(d.path(), &["env", "--env", "1A=x"]);
    r.code(64);
    r.stderr_has("`1A` is not a variable name");
    let r = run(d.path(), &["env", "-e", "A-B=x"]);
    r.code(64);
    r.stderr_has("`A-B` is not a variable name");
    let r = run(d.path(), &["env", "explain", "X", "--env", "=x"]);
    r.code(64);
    r.stderr_has("is not a variable name");
    // A value may hold `=`.
    assert_eq!(var(&env_json(d.path(), &["-e", "A=b=c"]), "A"), "b=c");
}

#[test]
fn other_bad_flags_are_exit_64() {
    let d = yml("name: b\n");
    run(d.path(), &["env", "--profile", "4"])
        .code(64)
        .stderr_has("use 2 or 3");
    run(d.path(), &["env", "--format", "yaml"]).code(64);
    run(d.path(), &["env", "--instance", "-1"]).code(64);
    run(d.path(), &["env", "--database-url", "some"]).code(64);
}

#[test]
fn dotenv_syntax() {
    let d = app(&[
        ("stackato.yml", "name: dv\n"),
        (
            ".env",
            "# comment\n\nA=1\nexport B = two words # note\nC='lit $A'\nD=\"x\\n$A ${B}\"\nE=\nF=$STACKATO_APP_NAME/f\nG=\"multi\nline\"\n",
        ),
    ]);
    let env = env_json(d.path(), &[]);
    assert_eq!(var(&env, "A"), "1");
    assert_eq!(var(&env, "B"), "two words");
    assert_eq!(var(&env, "C"), "lit $A");
    assert_eq!(var(&env, "D"), "x\n1 two words");
    assert_eq!(var(&env, "E"), "");
    assert_eq!(var(&env, "F"), "dv/f");
    assert_eq!(var(&env, "G"), "multi\nline");
    let e = explain(d.path(), "G", &[], &[]);
    assert!(e.set_by.contains(".env"), "{e:?}");
}

#[test]
fn a_malformed_dotenv_is_exit_4_with_file_line_col() {
    let cases: &[(&str, &str, &str)] = &[
        ("NOT A LINE\n", ".env:1:5", "expected `=` after `NOT`"),
        ("A=1\nB=\"open\n", ".env:2:3", "unterminated double quote"),
        ("A=1\n\nC='open\n", ".env:3:3", "unterminated single quote"),
        ("1A=x\n", ".env:1:1", "expected a variable name"),
        ("A=\"x\" y\n", ".env:1:7", "after the closing quote"),
    ];
    for (text, at, msg) in cases {
        let d = app(&[("stackato.yml", "name: m\n"), (".env", text)]);
        let r = run(d.path(), &["env"]);
        r.code(4);
        r.stderr_has(&format!(" --> {at}"));
        r.stderr_has(msg);
        assert!(r.stdout.is_empty(), "{}", r.dump());
        // --no-dotenv skips the broken file.
        run(d.path(), &["env", "--no-dotenv"]).code(0);
    }
    // An --env-file is named as given.
    let d = app(&[
        ("stackato.yml", "name: m\n"),
        ("conf/x.env", "OK=1\nBAD LINE\n"),
    ]);
    let r = run(d.path(), &["env", "--env-file", "conf/x.env"]);
    r.code(4);
    r.stderr_has(" --> conf/x.env:2:5");
}

#[test]
fn a_missing_env_file_is_exit_3() {
    let d = yml("name: m\n");
    let r = run(d.path(), &["env", "--env-file", "nope.env"]);
    r.code(3);
    r.stderr_has("nope.env");
}

#[test]
fn a_missing_env_file_fails_and_names_it() {
    let d = yml("name: m\n");
    let r = run(d.path(), &["env", "--env-file", "nope.env"]);
    assert!(
        matches!(r.code, Some(3 | 4)),
        "a missing --env-file must fail\n{}",
        r.dump()
    );
    r.stderr_has("cannot read nope.env");
}

// ---------------------------------------------------------------------------------------------
// Expansion
// ---------------------------------------------------------------------------------------------

#[test]
fn manifest_values_are_expanded_like_the_platform_shell() {
    let d = yml(
        "name: exp\nenv:\n  A: $HOME/x\n  B: '\\$HOME'\n  C: a${name}b\n  D: $NOT_SET_ANYWHERE-z\n  E: $STACKATO_APP_NAME_UPCASE/$PORT\n  F: $A/f\n",
    );
    // $HOME is the platform's HOME (the app directory), not the developer's.
    let env = env_json_with(d.path(), &[], &[("HOME", "/somewhere/else")]);
    let home = canon_str(d.path(), "");
    assert_eq!(var(&env, "A"), format!("{home}/x"));
    assert_eq!(var(&env, "B"), "$HOME");
    assert_eq!(var(&env, "C"), "aexpb", "${{name}} is a manifest symbol");
    assert_eq!(var(&env, "D"), "-z");
    assert_eq!(var(&env, "E"), format!("EXP/{}", var(&env, "PORT")));
    assert_eq!(
        var(&env, "F"),
        format!("{home}/x/f"),
        "an earlier user variable"
    );
    // --env values are expanded too, including ${NAME}.
    let env = env_json(d.path(), &["-e", "G=${STACKATO_APP_NAME}:$A"]);
    assert_eq!(var(&env, "G"), format!("exp:{home}/x"));
}

#[test]
fn braced_platform_variables_in_stackato_yml_are_manifest_symbols() {
    // The client resolves every ${...} before upload (spec §2.15): ${STACKATO_APP_NAME} is an
    // unknown symbol there, so the push failed. The tool says so and shows the fix.
    let d = yml("name: sym\nenv:\n  APPN: ${STACKATO_APP_NAME}-x\n");
    let r = run(d.path(), &["env"]);
    r.code(2);
    r.stderr_has("Unknown symbol in manifest: STACKATO_APP_NAME");
    r.stderr_has(" --> stackato.yml:3:9");
    r.stderr_has("$STACKATO_APP_NAME");
    let d = yml("name: sym\nenv:\n  APPN: $STACKATO_APP_NAME-x\n");
    assert_eq!(var(&env_json(d.path(), &[]), "APPN"), "sym-x");
}

#[test]
fn command_substitution_is_never_run() {
    let d = app(&[
        (
            "stackato.yml",
            "name: inert\nenv:\n  CMD: $(touch marker-yml)\n  TICK: \"`touch marker-tick`\"\n",
        ),
        (
            ".env",
            "DOT=$(touch marker-dot)\nDQ=\"$(touch marker-dq)\"\n",
        ),
    ]);
    let env = env_json(d.path(), &["-e", "CLI=$(touch marker-cli)"]);
    assert_eq!(var(&env, "CMD"), "$(touch marker-yml)");
    assert_eq!(var(&env, "TICK"), "`touch marker-tick`");
    assert_eq!(var(&env, "DOT"), "$(touch marker-dot)");
    assert_eq!(var(&env, "DQ"), "$(touch marker-dq)");
    assert_eq!(var(&env, "CLI"), "$(touch marker-cli)");
    run(d.path(), &["env", "explain", "CMD"]).code(0);
    run(d.path(), &["env", "--staging"]).code(0);
    for m in [
        "marker-yml",
        "marker-tick",
        "marker-dot",
        "marker-dq",
        "marker-cli",
    ] {
        assert!(!d.path().join(m).exists(), "{m} was created: a command ran");
    }
}

#[test]
fn manifest_values_see_the_final_value_of_earlier_variables() {
    let d = yml("name: late\nenv:\n  X: yml\n  Y: $X/y\n");
    let env = env_json(d.path(), &["-e", "X=cli"]);
    assert_eq!(var(&env, "Y"), "cli/y");
    write(d.path(), ".env", b"X=dot\n");
    let env = env_json(d.path(), &[]);
    assert_eq!(var(&env, "Y"), "dot/y");
}

#[test]
fn dotenv_values_can_use_stackato_yml_variables() {
    let d = app(&[
        ("stackato.yml", "name: d\nenv:\n  A: from-yml\n"),
        (".env", "Z=$A/z\n"),
    ]);
    let env = env_json(d.path(), &[]);
    assert_eq!(var(&env, "Z"), "from-yml/z");
}

// ---------------------------------------------------------------------------------------------
// Platform rules
// ---------------------------------------------------------------------------------------------

#[test]
fn one_relational_service_gives_database_url_and_memcache_is_host_port() {
    let d = yml("name: one\nservices:\n  db: mysql\n  cache: memcached\n");
    let env = env_json(d.path(), &["--reveal"]);
    let c = creds(&env, "db");
    let url = format!(
        "mysql://{}:{}@{}:{}/{}",
        field(&c, "user"),
        field(&c, "password"),
        field(&c, "host"),
        field(&c, "port"),
        field(&c, "name")
    );
    assert_eq!(var(&env, "MYSQL_URL"), url);
    assert_eq!(var(&env, "DATABASE_URL"), url);
    let m = creds(&env, "cache");
    assert_eq!(
        var(&env, "MEMCACHE_URL"),
        format!("{}:{}", field(&m, "host"), field(&m, "port"))
    );
    assert!(!var(&env, "MEMCACHE_URL").contains("://"));
    assert!(!env.contains_key("MEMCACHED_URL"));
    let e = explain(d.path(), "DATABASE_URL", &[], &[]);
    assert!(e.set_by.contains("service"), "{e:?}");
}

#[test]
fn two_services_of_one_type_give_no_url_for_that_type() {
    let d = yml(
        "name: two\nservices:\n  a: mysql\n  b: mysql\n  r1: redis\n  r2: redis\n  m: mongodb\n",
    );
    let env = env_json(d.path(), &[]);
    for absent in ["MYSQL_URL", "DATABASE_URL", "REDIS_URL"] {
        assert!(!env.contains_key(absent), "{absent} is set: {env:?}");
    }
    assert!(var(&env, "MONGODB_URL").starts_with("mongodb://"));
    let vs = json_var(&env, "VCAP_SERVICES");
    assert_eq!(vs["mysql"].as_array().unwrap().len(), 2);
    assert_eq!(vs["redis"].as_array().unwrap().len(), 2);
    // Even with --database-url any: two databases of any kind are not one.
    let env = env_json(d.path(), &["--database-url", "any"]);
    assert!(!env.contains_key("DATABASE_URL"));
}

#[test]
fn mysql_and_postgresql_give_both_urls_but_no_database_url() {
    let d = yml("name: both\nservices:\n  my: mysql\n  pg: postgresql\n");
    let env = env_json(d.path(), &["--reveal"]);
    assert!(!env.contains_key("DATABASE_URL"), "{env:?}");
    assert!(var(&env, "MYSQL_URL").starts_with("mysql://"));
    let c = creds(&env, "pg");
    assert_eq!(
        var(&env, "POSTGRESQL_URL"),
        format!(
            "postgres://{}:{}@{}:{}/{}",
            field(&c, "user"),
            field(&c, "password"),
            field(&c, "host"),
            field(&c, "port"),
            field(&c, "name")
        )
    );
    assert_eq!(
        var(&env, "JDBC_DATABASE_URL"),
        format!(
            "jdbc:postgresql://{}:{}/{}?user={}&password={}",
            field(&c, "host"),
            field(&c, "port"),
            field(&c, "name"),
            field(&c, "user"),
            field(&c, "password")
        )
    );
    // JDBC_DATABASE_URL is 3.0.1+.
    assert!(!env_json(d.path(), &["--profile", "2"]).contains_key("JDBC_DATABASE_URL"));
    // A single postgresql is the DATABASE_URL, with the postgres:// scheme.
    let d = yml("name: pg\nservices:\n  pg: postgresql\n");
    let env = env_json(d.path(), &[]);
    assert!(var(&env, "DATABASE_URL").starts_with("postgres://"));
    assert_eq!(var(&env, "DATABASE_URL"), var(&env, "POSTGRESQL_URL"));
}

#[test]
fn database_url_any_counts_redis_and_mongodb() {
    let d = yml("name: r\nservices:\n  kv: redis\n");
    let env = env_json(d.path(), &[]);
    assert!(!env.contains_key("DATABASE_URL"), "redis is not relational");
    assert!(var(&env, "REDIS_URL").starts_with("redis://"));
    let env = env_json(d.path(), &["--database-url", "any"]);
    assert_eq!(var(&env, "DATABASE_URL"), var(&env, "REDIS_URL"));

    let d = yml("name: mo\nservices:\n  docs: mongodb\n");
    let env = env_json(d.path(), &["--database-url", "any"]);
    assert_eq!(var(&env, "DATABASE_URL"), var(&env, "MONGODB_URL"));
    assert!(var(&env, "DATABASE_URL").starts_with("mongodb://"));

    let d = yml("name: mix\nservices:\n  db: mysql\n  kv: redis\n");
    assert_eq!(
        var(&env_json(d.path(), &[]), "DATABASE_URL"),
        var(&env_json(d.path(), &[]), "MYSQL_URL")
    );
    assert!(!env_json(d.path(), &["--database-url", "any"]).contains_key("DATABASE_URL"));
}

#[test]
fn filesystem_variables_for_one_and_for_several() {
    let d = yml("name: fs\nservices:\n  data: filesystem\n");
    let env = env_json(d.path(), &[]);
    let dir = var(&env, "STACKATO_FILESYSTEM");
    assert_eq!(json_var(&env, "STACKATO_SERVICES")["data"]["dir"], dir);
    assert!(!env.contains_key("STACKATO_FILESYSTEM_DATA"));
    assert!(Path::new(dir).is_absolute());

    let d = yml("name: fs\nservices:\n  data-one: filesystem\n  data-two: filesystem\n");
    let env = env_json(d.path(), &[]);
    assert!(!env.contains_key("STACKATO_FILESYSTEM"), "{env:?}");
    let one = var(&env, "STACKATO_FILESYSTEM_DATA_ONE");
    let two = var(&env, "STACKATO_FILESYSTEM_DATA_TWO");
    assert_ne!(one, two);
    let ss = json_var(&env, "STACKATO_SERVICES");
    assert_eq!(ss["data-one"]["dir"], one);
    assert_eq!(ss["data-two"]["dir"], two);
    // Filesystems are mounted during staging too.
    let st = env_json(d.path(), &["--staging"]);
    assert_eq!(var(&st, "STACKATO_FILESYSTEM_DATA_ONE"), one);
}

#[test]
fn profile_2_lacks_the_3x_variables() {
    let d = yml("name: pr\nmem: 256M\n");
    let v3 = env_json(d.path(), &["--profile", "3"]);
    assert_eq!(var(&v3, "MEMORY_LIMIT"), "256m");
    assert!(var(&v3, "STACKATO_LOG_FILES").starts_with("stdout="));
    assert!(var(&v3, "STACKATO_LOG_FILES").contains(":stderr="));
    assert_eq!(var(&v3, "STACKATO_DOCKER"), "True");
    assert!(var(&v3, "LANG").ends_with("UTF-8"));
    assert_eq!(var(&v3, "LC_ALL"), var(&v3, "LANG"));
    assert_eq!(var(&v3, "VCAP_APP_HOST"), "0.0.0.0");
    let va3 = json_var(&v3, "VCAP_APPLICATION");
    assert_eq!(va3["limits"]["mem"], 256);
    assert_eq!(va3["space_name"], "local");

    let v2 = env_json(d.path(), &["--profile", "2"]);
    for absent in [
        "MEMORY_LIMIT",
        "STACKATO_LOG_FILES",
        "STACKATO_DOCKER",
        "LANG",
        "LANGUAGE",
        "LC_ALL",
    ] {
        assert!(!v2.contains_key(absent), "{absent} under profile 2: {v2:?}");
    }
    assert_eq!(var(&v2, "VCAP_APP_HOST"), "127.0.0.1");
    let va2 = json_var(&v2, "VCAP_APPLICATION");
    assert_eq!(va2["limits"]["mem"], 256 * 1024 * 1024);
    assert_eq!(va2["lxcport"].to_string(), var(&v2, "PORT"));
    assert!(va2.get("space_name").is_none());
}

#[test]
fn the_default_profile_follows_min_version() {
    let d = yml("name: old\nmin_version:\n  client: 1.5.1\n");
    let r = run(d.path(), &["env", "--format", "json"]);
    r.code(0);
    r.stderr_has("profile 2");
    r.stderr_has("1.5.1");
    let env = flat_strings(&r);
    assert!(!env.contains_key("MEMORY_LIMIT"));
    assert_eq!(var(&env, "VCAP_APP_HOST"), "127.0.0.1");
    // --profile overrides it.
    assert!(env_json(d.path(), &["--profile", "3"]).contains_key("MEMORY_LIMIT"));

    let d = yml("name: new\n");
    let r = run(d.path(), &["env", "--format", "json"]);
    r.code(0);
    r.stderr_has("profile 3");
    assert!(flat_strings(&r).contains_key("MEMORY_LIMIT"));

    let d = yml("name: new\nmin_version:\n  client: 3.0.0\n");
    assert!(env_json(d.path(), &[]).contains_key("MEMORY_LIMIT"));
}

#[test]
fn a_3x_format_manifest_gets_profile_3_whatever_its_min_version_says() {
    // A Stackato 3.x-style app that kept its old `min_version: client: 1.4.3`.
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("manifest.yml"),
        "applications:\n- name: three\n  mem: 128M\n  stackato:\n    min_version:\n      client: 1.4.3\n",
    )
    .unwrap();
    std::fs::write(d.path().join("Procfile"), "web: python3 app.py\n").unwrap();
    let r = run(d.path(), &["env", "--format", "json"]);
    r.code(0);
    r.stderr_has("profile 3");
    r.stderr_has("`applications:` is a list");
    let env = flat_strings(&r);
    assert_eq!(var(&env, "MEMORY_LIMIT"), "128m");
    assert_eq!(var(&env, "VCAP_APP_HOST"), "0.0.0.0");
    // --profile still overrides it.
    let v2 = env_json(d.path(), &["--profile", "2"]);
    assert!(!v2.contains_key("MEMORY_LIMIT"), "{v2:?}");

    // The path-keyed mapping is the 2.x form: its old min_version still gives profile 2.
    let d = tempfile::tempdir().unwrap();
    std::fs::write(
        d.path().join("manifest.yml"),
        "applications:\n  .:\n    name: two\n    min_version:\n      client: 1.4.3\n",
    )
    .unwrap();
    let r = run(d.path(), &["env", "--format", "json"]);
    r.code(0);
    r.stderr_has("profile 2");
    assert!(!flat_strings(&r).contains_key("MEMORY_LIMIT"));
}

#[test]
fn staging_has_no_port_and_no_instance() {
    let d = yml("name: st\ninstances: 2\nservices:\n  db: mysql\n  hb: harbor\n");
    let run_env = env_json(d.path(), &[]);
    let st = env_json(d.path(), &["--staging"]);
    for absent in ["PORT", "VCAP_APP_PORT", "VCAP_APP_HOST", "STACKATO_HARBOR"] {
        assert!(!st.contains_key(absent), "{absent} at staging: {st:?}");
    }
    assert_eq!(var(&st, "STAGING_TIMEOUT"), "900.0");
    assert!(st.contains_key("BUILDPACK_CACHE"));
    let va = json_var(&st, "VCAP_APPLICATION");
    for k in ["port", "instance_index", "instance_id"] {
        assert!(va.get(k).is_none(), "VCAP_APPLICATION.{k} at staging: {va}");
    }
    // Services are there, the same as at run time.
    assert_eq!(var(&st, "VCAP_SERVICES"), var(&run_env, "VCAP_SERVICES"));
    assert_eq!(var(&st, "DATABASE_URL"), var(&run_env, "DATABASE_URL"));
    // Harbor's port is for the running instance only.
    assert_eq!(
        var(&run_env, "STACKATO_HARBOR"),
        field(&creds(&run_env, "hb"), "int_port")
    );
}

#[test]
fn instance_selects_port_and_index() {
    let d = yml("name: inst\ninstances: 2\n");
    let i0 = env_json(d.path(), &[]);
    let i1 = env_json(d.path(), &["--instance", "1"]);
    assert_ne!(var(&i0, "PORT"), var(&i1, "PORT"));
    assert_eq!(var(&i1, "VCAP_APP_PORT"), var(&i1, "PORT"));
    let va0 = json_var(&i0, "VCAP_APPLICATION");
    let va1 = json_var(&i1, "VCAP_APPLICATION");
    assert_eq!(va0["instance_index"], 0);
    assert_eq!(va1["instance_index"], 1);
    assert_eq!(va1["port"].to_string(), var(&i1, "PORT"));
    assert_ne!(va0["instance_id"], va1["instance_id"]);
    assert_ne!(var(&i0, "STACKATO_APP_ROOT"), var(&i1, "STACKATO_APP_ROOT"));
    // Remembered: the same ports on the next run.
    assert_eq!(var(&env_json(d.path(), &[]), "PORT"), var(&i0, "PORT"));
    assert_eq!(
        var(&env_json(d.path(), &["--instance", "1"]), "PORT"),
        var(&i1, "PORT")
    );

    let r = run(d.path(), &["env", "--instance", "5"]);
    r.code(64);
    r.stderr_has("instance 5 does not exist");
    r.stderr_has("2 instance(s)");
    run(d.path(), &["env", "--instance", "2"]).code(64);
    run(d.path(), &["env", "explain", "PORT", "--instance", "2"]).code(64);
}

const MULTI: &str = "\
applications:
  web:
    name: front
    services:
      shared: mysql
    env:
      ROLE: web
  worker:
    name: back
    instances: 3
    services:
      shared: mysql
      cache: redis
    env:
      ROLE: worker
";

#[test]
fn app_picks_one_application_of_a_multi_app_manifest() {
    let d = app(&[
        ("stackato.yml", MULTI),
        ("web/.keep", ""),
        ("worker/.keep", ""),
    ]);
    let front = env_json(d.path(), &["--reveal"]);
    assert_eq!(var(&front, "STACKATO_APP_NAME"), "front");
    assert_eq!(var(&front, "ROLE"), "web");
    assert_eq!(var(&front, "HOME"), canon_str(d.path(), "web"));
    assert!(!front.contains_key("REDIS_URL"));

    let back = env_json(d.path(), &["--reveal", "--app", "back"]);
    assert_eq!(var(&back, "STACKATO_APP_NAME"), "back");
    assert_eq!(var(&back, "ROLE"), "worker");
    assert_eq!(var(&back, "HOME"), canon_str(d.path(), "worker"));
    assert!(back.contains_key("REDIS_URL"));
    // One instance of a shared service: the same credentials in both apps.
    assert_eq!(creds(&front, "shared"), creds(&back, "shared"));
    assert_eq!(var(&front, "DATABASE_URL"), var(&back, "DATABASE_URL"));
    assert_ne!(var(&front, "PORT"), var(&back, "PORT"));

    // Instances are counted per app.
    env_json(d.path(), &["--app", "back", "--instance", "2"]);
    run(d.path(), &["env", "--instance", "2"]).code(64);

    let r = run(d.path(), &["env", "--app", "nope"]);
    r.code(64);
    r.stderr_has("no application named \"nope\"");
    r.stderr_has("front, back");
}

/// A PATH on which no database server (or anything else) can be found.
fn bare_path() -> tempfile::TempDir {
    tempfile::tempdir().expect("empty dir for PATH")
}

#[test]
fn without_a_database_server_auto_falls_back_to_sqlite_and_says_so() {
    let empty = bare_path();
    let path = empty.path().to_str().unwrap();
    let d = yml("name: lite\nservices:\n  db: mysql\n");
    let r = common::run_with(d.path(), &["env", "--format", "json"], &[("PATH", path)]);
    r.code(0);
    r.stderr_has("db (mysql)");
    r.stderr_has("using sqlite");
    let env = flat_strings(&r);
    assert_eq!(var(&env, "VCAP_SERVICES"), "{}");
    assert!(!env.contains_key("DATABASE_URL"), "{env:?}");
    assert!(!env.contains_key("MYSQL_URL"), "{env:?}");
    // --db sqlite chooses it anywhere; --sqlite-env url exports the file.
    let r = common::run_with(
        d.path(),
        &[
            "env",
            "--format",
            "json",
            "--db",
            "sqlite",
            "--sqlite-env",
            "url",
        ],
        &[],
    );
    r.code(0);
    r.stderr_has("using sqlite (--db sqlite)");
    let env = flat_strings(&r);
    let url = var(&env, "DATABASE_URL");
    assert!(url.starts_with("sqlite:"), "{url}");
    assert!(
        url.ends_with("/.stackato-local/services/db/sqlite.db"),
        "{url}"
    );
    assert!(!env.contains_key("MYSQL_URL"));
}

#[test]
fn sqlite_database_url_names_the_absolute_path() {
    let d = yml("name: lite\nservices:\n  db: postgresql\n");
    let env = env_json(d.path(), &["--db", "sqlite", "--sqlite-env", "url"]);
    let file = format!(
        "{}/.stackato-local/services/db/sqlite.db",
        canon_str(d.path(), "")
    );
    assert_eq!(var(&env, "DATABASE_URL"), format!("sqlite:///{file}"));
}

#[test]
fn the_sqlite_fallback_does_not_depend_on_other_services() {
    let empty = bare_path();
    let path = empty.path().to_str().unwrap();
    let d = yml("name: lite\nservices:\n  db: mysql\n  kv: redis\n");
    let r = common::run_with(d.path(), &["env", "--format", "json"], &[("PATH", path)]);
    r.code(0);
    r.stderr_has("using sqlite");
    let env = flat_strings(&r);
    assert!(
        json_var(&env, "VCAP_SERVICES").get("mysql").is_none(),
        "{env:?}"
    );
    assert!(!env.contains_key("DATABASE_URL"), "{env:?}");
}

#[test]
fn skip_service_leaves_its_variables_out() {
    let d = yml("name: sk\nservices:\n  db: mysql\n  kv: redis\n");
    let r = run(
        d.path(),
        &["env", "--format", "json", "--skip-service", "kv"],
    );
    r.code(0);
    r.stderr_has("kv (redis): skipped");
    let env = flat_strings(&r);
    assert!(!env.contains_key("REDIS_URL"));
    let vs = json_var(&env, "VCAP_SERVICES");
    assert!(
        vs.get("redis").is_none() && vs.get("mysql").is_some(),
        "{vs}"
    );
    assert!(json_var(&env, "STACKATO_SERVICES").get("kv").is_none());
}

// ---------------------------------------------------------------------------------------------
// Credentials and the state directory
// ---------------------------------------------------------------------------------------------

#[test]
fn credentials_are_generated_once_and_kept_privately() {
    let d = yml("name: keep\nservices:\n  db: mysql\n  pg: postgresql\n  kv: redis\n");
    let a = run(d.path(), &["env", "--reveal", "--format", "json"]);
    let b = run(d.path(), &["env", "--reveal", "--format", "json"]);
    a.code(0);
    b.code(0);
    let (a, b) = (flat_strings(&a), flat_strings(&b));
    for k in [
        "VCAP_SERVICES",
        "STACKATO_SERVICES",
        "MYSQL_URL",
        "POSTGRESQL_URL",
        "REDIS_URL",
        "PORT",
    ] {
        assert_eq!(var(&a, k), var(&b, k), "{k} changed between runs");
    }
    let state = d.path().join(".stackato-local");
    assert_eq!(mode(&state), 0o700);
    let reg = state.join("services.json");
    assert_eq!(mode(&reg), 0o600);
    assert_eq!(mode(&state.join("ports.json")), 0o600);
    // The registry holds exactly what the environment advertises.
    let saved: Value = serde_json::from_slice(&std::fs::read(&reg).unwrap()).unwrap();
    for name in ["db", "pg", "kv"] {
        assert_eq!(
            saved["services"][name]["credentials"],
            creds(&a, name),
            "{name}"
        );
        assert_eq!(
            saved["services"][name]["port"],
            creds(&a, name)["port"],
            "{name}: remembered port"
        );
    }
}

#[test]
fn passwords_look_random() {
    let yml_text =
        "name: rnd\nservices:\n  a: mysql\n  b: mysql\n  c: postgresql\n  d: redis\n  e: mongodb\n";
    let p1 = yml(yml_text);
    let p2 = yml(yml_text);
    let e1 = env_json(p1.path(), &["--reveal"]);
    let e2 = env_json(p2.path(), &["--reveal"]);
    let pw = |e: &BTreeMap<String, String>, s: &str| field(&creds(e, s), "password");
    let mut seen = std::collections::BTreeSet::new();
    for s in ["a", "b", "c", "d", "e"] {
        let x = pw(&e1, s);
        let y = pw(&e2, s);
        assert!(x.len() >= 12, "{s}: short password {x}");
        assert!(
            seen.insert(x.clone()),
            "{s}: password {x} reused in one project"
        );
        assert!(
            seen.insert(y.clone()),
            "{s}: password {y} reused across projects"
        );
    }
    assert_ne!(
        field(&creds(&e1, "a"), "user"),
        field(&creds(&e1, "b"), "user")
    );
    assert_ne!(
        field(&creds(&e1, "a"), "name"),
        field(&creds(&e1, "b"), "name")
    );
    assert_ne!(
        field(&creds(&e1, "a"), "name"),
        field(&creds(&e2, "a"), "name")
    );
}

#[test]
fn an_existing_gitignore_gets_the_state_dir_once_and_none_is_created() {
    let d = app(&[
        ("stackato.yml", "name: g\n"),
        (".gitignore", "node_modules"),
    ]);
    run(d.path(), &["env"]).code(0);
    run(d.path(), &["env", "--staging"]).code(0);
    let gi = std::fs::read_to_string(d.path().join(".gitignore")).unwrap();
    assert!(gi.starts_with("node_modules\n"), "{gi}");
    assert_eq!(
        gi.lines()
            .filter(|l| l.trim() == "/.stackato-local/")
            .count(),
        1,
        "{gi}"
    );

    let d = yml("name: g\n");
    run(d.path(), &["env"]).code(0);
    assert!(d.path().join(".stackato-local").is_dir());
    assert!(!d.path().join(".gitignore").exists());
}

#[test]
fn changing_a_services_type_is_exit_2_with_a_reset_hint() {
    let d = yml("name: t\nservices:\n  db: mysql\n  db2: mysql\n");
    let before = env_json(d.path(), &["--reveal"]);
    write(
        d.path(),
        "stackato.yml",
        b"name: t\nservices:\n  db: mysql\n  db2: postgresql\n",
    );
    let r = run(d.path(), &["env"]);
    r.code(2);
    r.stderr_has(
        "Service \"db2\" was created here as mysql, but stackato.yml now asks for postgresql",
    );
    r.stderr_has(" --> stackato.yml:4:3");
    r.stderr_has("reset db2");
    run(d.path(), &["env", "explain", "HOME"]).code(2);
    // Nothing was lost: back to mysql, the same credentials.
    write(
        d.path(),
        "stackato.yml",
        b"name: t\nservices:\n  db: mysql\n  db2: mysql\n",
    );
    let after = env_json(d.path(), &["--reveal"]);
    assert_eq!(var(&before, "VCAP_SERVICES"), var(&after, "VCAP_SERVICES"));
}

#[test]
fn the_suggested_reset_command_works() {
    let d = yml("name: t\nservices:\n  db2: mysql\n");
    run(d.path(), &["env"]).code(0);
    write(
        d.path(),
        "stackato.yml",
        b"name: t\nservices:\n  db2: postgresql\n",
    );
    run(d.path(), &["env"]).code(2);
    run(d.path(), &["services", "reset", "db2", "--yes"]).code(0);
    let env = env_json(d.path(), &[]);
    assert!(json_var(&env, "VCAP_SERVICES").get("postgresql").is_some());
}

#[test]
fn concurrent_runs_on_a_fresh_project_agree() {
    let d = app(&[
        (
            "stackato.yml",
            "name: race\nservices:\n  db: mysql\n  kv: redis\n  files: filesystem\n",
        ),
        (".gitignore", "target/\n"),
    ]);
    let children: Vec<_> = (0..8)
        .map(|_| {
            cmd(d.path())
                .args(["env", "--reveal", "--format", "json", "--db", "native"])
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("spawn")
        })
        .collect();
    let runs: Vec<Run> = children
        .into_iter()
        .map(|c| Run::from_output(vec!["env".into()], c.wait_with_output().unwrap()))
        .collect();
    let envs: Vec<BTreeMap<String, String>> = runs
        .iter()
        .map(|r| {
            r.code(0);
            flat_strings(r)
        })
        .collect();
    for e in &envs[1..] {
        for k in ["VCAP_SERVICES", "STACKATO_SERVICES", "DATABASE_URL", "PORT"] {
            assert_eq!(
                var(e, k),
                var(&envs[0], k),
                "{k} differs between concurrent runs"
            );
        }
    }
    // The registry is whole and matches what they printed.
    let reg: Value = serde_json::from_slice(
        &std::fs::read(d.path().join(".stackato-local/services.json")).unwrap(),
    )
    .expect("services.json is valid JSON");
    assert_eq!(reg["services"]["db"]["credentials"], creds(&envs[0], "db"));
    let gi = std::fs::read_to_string(d.path().join(".gitignore")).unwrap();
    assert_eq!(
        gi.lines()
            .filter(|l| l.trim() == "/.stackato-local/")
            .count(),
        1,
        "{gi}"
    );
    // No temp files left behind.
    let leftovers: Vec<String> = std::fs::read_dir(d.path().join(".stackato-local"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

// ---------------------------------------------------------------------------------------------
// env diff
// ---------------------------------------------------------------------------------------------

#[test]
fn diff_against_our_own_output_in_every_format_is_clean() {
    let d = yml("name: self\nservices:\n  db: mysql\n  kv: redis\nenv:\n  PLAIN: some value\n");
    for (file, args) in [
        ("masked.json", &["env", "--format", "json"][..]),
        (
            "revealed.json",
            &["env", "--format", "json", "--reveal"][..],
        ),
        ("out.env", &["env", "--format", "dotenv", "--reveal"][..]),
        ("out.sh", &["env", "--reveal"][..]),
    ] {
        let r = run(d.path(), args);
        r.code(0);
        write(d.path(), file, r.stdout.as_bytes());
        let r = run(d.path(), &["env", "diff", file]);
        r.code(0);
        let [different, missing, extra, _, same] = diff_summary(&r);
        assert_eq!(
            (different, missing, extra),
            (0, 0, 0),
            "{file}\n{}",
            r.dump()
        );
        assert!(same > 10, "{file}\n{}", r.dump());
    }
}

#[test]
fn diff_against_our_masked_output_accepts_masked_user_secrets() {
    let d = yml("name: self\nenv:\n  PW:\n    default: longsecretvalue\n    hidden: true\n");
    let r = run(d.path(), &["env", "--format", "json"]);
    r.code(0);
    write(d.path(), "masked.json", r.stdout.as_bytes());
    let r = run(d.path(), &["env", "diff", "masked.json"]);
    r.code(0);
    assert!(!r.stdout.contains("longsecretvalue"), "{}", r.dump());
}

#[test]
fn diff_against_a_stackato_2x_dump_compares_services_by_structure() {
    let Some(dump) = spec_dump() else { return };
    let d = yml(ASSIST);
    let r = run(d.path(), &["env", "diff", dump.to_str().unwrap()]);
    // Only-here variables (HOME, PORT, …: the dump holds just the JSON records) are significant.
    r.code(1);
    r.stdout_has("vmc_app_instance");
    let [different, missing, extra, _, _] = diff_summary(&r);
    assert_eq!((different, missing), (0, 0), "{}", r.dump());
    assert!(extra > 0);
    let expected = diff_block(&r, "~ ");
    for k in ["VCAP_SERVICES", "STACKATO_SERVICES", "VCAP_APPLICATION"] {
        assert!(
            expected.contains(&k),
            "{k} should match by structure\n{}",
            r.dump()
        );
    }
    // The dump's passwords are not printed.
    for pw in ["pyn3Rv6wpdbEh", "pab0a5a006d7a4f2cb9ebcd21eb18be1d"] {
        assert!(!r.stdout.contains(pw), "{}", r.dump());
    }

    // A service of another type is a real difference.
    let d = yml(&ASSIST.replace("x4m: mysql", "x4m: postgresql"));
    let r = run(d.path(), &["env", "diff", dump.to_str().unwrap()]);
    r.code(1);
    let details = diff_block(&r, "≠ VCAP_SERVICES");
    assert_eq!(
        details,
        ["service \"x4m\": ours is postgresql, theirs mysql"],
        "{}",
        r.dump()
    );
    // And a missing one.
    let d = yml(&ASSIST.replace("  x1: mongodb\n", ""));
    let r = run(d.path(), &["env", "diff", dump.to_str().unwrap()]);
    r.code(1);
    let details = diff_block(&r, "≠ VCAP_SERVICES");
    assert!(
        details.contains(&"service \"x1\" (mongodb): only theirs has it"),
        "{}",
        r.dump()
    );
    let details = diff_block(&r, "≠ STACKATO_SERVICES");
    assert!(
        details.contains(&"service \"x1\": only theirs has it"),
        "{}",
        r.dump()
    );
}

/// Our revealed JSON with a few things changed, written as `theirs.json`.
fn theirs_from_ours(dir: &Path, change: impl FnOnce(&mut serde_json::Map<String, Value>)) {
    let r = run(dir, &["env", "--format", "json", "--reveal"]);
    r.code(0);
    let mut doc = r.json();
    change(doc.as_object_mut().unwrap());
    write(
        dir,
        "theirs.json",
        serde_json::to_string_pretty(&doc).unwrap().as_bytes(),
    );
}

/// Edit a JSON-valued string variable.
fn edit_json(m: &mut serde_json::Map<String, Value>, k: &str, f: impl FnOnce(&mut Value)) {
    let mut v: Value = serde_json::from_str(m[k].as_str().unwrap()).unwrap();
    f(&mut v);
    m.insert(
        k.into(),
        Value::String(serde_json::to_string_pretty(&v).unwrap()),
    );
}

#[test]
fn diff_ignores_credential_values_and_formatting() {
    let d = yml("name: fmt\nservices:\n  db: mysql\n");
    theirs_from_ours(d.path(), |m| {
        // Different hosts, ports, passwords and layout: the same structure.
        edit_json(m, "VCAP_SERVICES", |v| {
            let c = &mut v["mysql"][0]["credentials"];
            c["host"] = "10.0.0.9".into();
            c["port"] = 3306.into();
            c["password"] = "prodPassword123".into();
        });
        edit_json(m, "STACKATO_SERVICES", |v| {
            v["db"]["password"] = "prodPassword123".into();
        });
        m.insert(
            "DATABASE_URL".into(),
            "mysql://u:prodPassword123@10.0.0.9:3306/d".into(),
        );
    });
    let r = run(d.path(), &["env", "diff", "theirs.json"]);
    r.code(0);
    let expected = diff_block(&r, "~ ");
    for k in ["VCAP_SERVICES", "STACKATO_SERVICES", "DATABASE_URL"] {
        assert!(expected.contains(&k), "{k}\n{}", r.dump());
    }
    assert!(!r.stdout.contains("prodPassword123"), "{}", r.dump());
}

#[test]
fn diff_reports_missing_extra_and_different_with_secrets_masked() {
    let d = yml("name: dd\nservices:\n  db: mysql\n  kv: redis\n  docs: mongodb\n");
    theirs_from_ours(d.path(), |m| {
        edit_json(m, "VCAP_SERVICES", |v| {
            v["mysql"][0]["name"] = "renamed".into();
            v["redis"][0]["credentials"]["extra_field"] = "x".into();
            v["mongodb"][0]["credentials"]
                .as_object_mut()
                .unwrap()
                .remove("db");
            v["redis"][0]["credentials"]["password"] = "theirRedisPw99".into();
        });
        m.insert("SECRET_KEY".into(), "supersecretvalue".into());
        m.insert("OTHER".into(), "contains theirRedisPw99 here".into());
        m.insert(
            "THEIR_URL".into(),
            "mysql://bob:bobpass1234@db.example.com:3306/x".into(),
        );
        m.insert("STACKATO_APP_NAME".into(), "other-name".into());
        m.insert("DB_PASSWORD".into(), "theirpass456".into());
        m.remove("PORT");
    });
    let r = run(
        d.path(),
        &[
            "env",
            "diff",
            "theirs.json",
            "-e",
            "DB_PASSWORD=ourpass1234",
        ],
    );
    r.code(1);
    assert_eq!(diff_summary(&r)[..3], [3, 3, 1], "{}", r.dump());

    let vs = diff_block(&r, "≠ VCAP_SERVICES");
    for want in [
        "service \"db\" (mysql): only ours has it",
        "service \"renamed\" (mysql): only theirs has it",
        "service \"kv\": credential fields only theirs has: extra_field",
        "service \"docs\": credential fields only ours has: db",
    ] {
        assert!(vs.contains(&want), "{want}\n{}", r.dump());
    }
    assert_eq!(
        diff_block(&r, "≠ STACKATO_APP_NAME"),
        ["values differ", "ours:   dd", "theirs: other-name"]
    );
    assert_eq!(
        diff_block(&r, "≠ DB_PASSWORD"),
        [
            "values differ",
            &format!("ours:   {MASK}"),
            &format!("theirs: {MASK}")
        ]
    );
    let missing = diff_block(&r, "- missing here");
    assert!(
        missing.contains(&format!("SECRET_KEY={MASK}").as_str()),
        "{}",
        r.dump()
    );
    assert!(
        missing.contains(&format!("OTHER=contains {MASK} here").as_str()),
        "{}",
        r.dump()
    );
    assert!(
        missing.contains(&format!("THEIR_URL=mysql://bob:{MASK}@db.example.com:3306/x").as_str()),
        "{}",
        r.dump()
    );
    assert!(diff_block(&r, "+ only here")[0].starts_with("PORT="));
    for secret in [
        "supersecretvalue",
        "theirRedisPw99",
        "bobpass1234",
        "theirpass456",
        "ourpass1234",
    ] {
        assert!(!r.stdout.contains(secret), "{secret} shown\n{}", r.dump());
    }
    let r = run(
        d.path(),
        &[
            "env",
            "diff",
            "theirs.json",
            "--reveal",
            "-e",
            "DB_PASSWORD=ourpass1234",
        ],
    );
    r.code(1);
    for secret in [
        "supersecretvalue",
        "bobpass1234",
        "theirpass456",
        "ourpass1234",
    ] {
        assert!(
            r.stdout.contains(secret),
            "--reveal hides {secret}\n{}",
            r.dump()
        );
    }
}

#[test]
fn diff_of_key_value_lines_with_noise_and_multiline_values() {
    let d = yml("name: kv\n");
    let ours = env_json(d.path(), &[]);
    let mut text = String::from("# captured with `stackato run env`\nSHLVL=1\nPWD=/app/app\n");
    for (k, v) in &ours {
        if k == "VCAP_APPLICATION" {
            // printed over several lines
            let pretty = serde_json::to_string_pretty(&json_var(&ours, k)).unwrap();
            text.push_str(&format!("{k}={pretty}\n"));
        } else {
            text.push_str(&format!("{k}={v}\n"));
        }
    }
    text.push_str("EXTRA_THEIRS=1\n");
    write(d.path(), "prod.txt", text.as_bytes());
    let r = run(d.path(), &["env", "diff", "prod.txt"]);
    r.code(1);
    assert_eq!(diff_summary(&r)[..3], [0, 1, 0], "{}", r.dump());
    assert_eq!(diff_block(&r, "- missing here"), ["EXTRA_THEIRS=1"]);
    let noise = diff_block(&r, "· ");
    assert_eq!(noise, ["PWD", "SHLVL"], "{}", r.dump());
}

#[test]
fn diff_of_a_malformed_file_is_exit_2_with_file_line_col() {
    let d = app(&[
        ("stackato.yml", "name: bad\n"),
        ("bad.json", "{\"a\": }"),
        ("bad.txt", "garbage here\nA=1\n"),
        ("multi.json", "{\n  \"A\": \"1\",\n  B\n}\n"),
        ("list.json", "[1, 2]"),
    ]);
    for (file, at) in [
        ("bad.json", "bad.json:1:7:"),
        ("bad.txt", "bad.txt:1:1:"),
        ("multi.json", "multi.json:3:3:"),
        ("list.json", "list.json:"),
    ] {
        let r = run(d.path(), &["env", "diff", file]);
        r.code(2);
        r.diag(&format!("error: {at}"), &[]);
    }
    let r = run(d.path(), &["env", "diff", "absent.txt"]);
    r.code(3);
    r.stderr_has("absent.txt");
}

#[test]
fn diff_json_error_positions_count_leading_blank_lines() {
    let d = app(&[
        ("stackato.yml", "name: bad\n"),
        ("lead.json", "\n\n{\n  \"A\": \"1\",\n  x\n}\n"),
    ]);
    let r = run(d.path(), &["env", "diff", "lead.json"]);
    r.code(2);
    r.diag("error: lead.json:5:3:", &[]);
}
