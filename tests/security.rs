//! Security properties, end to end with the real binary and real servers:
//!
//! 1. services listen on 127.0.0.1 only (all four server types at once, from /proc/net/tcp{,6});
//! 2. credentials are random, long and differ between projects;
//! 3. `.stackato-local` is 0700 and every file in it 0600, the control socket too;
//! 4. passwords are masked in everything the tool prints (`env` in each format, `env explain`,
//!    `env diff`, `services`, `services logs`, `run`'s own messages, error messages);
//! 5. `${...}`, `.env` and `-e` values never execute anything;
//! 6. trust: an untrusted project runs nothing (and starts no service), `allow` records trust
//!    under `$HOME/.local/share` (or `$XDG_DATA_HOME`), a repository cannot ship its own trust,
//!    a manifest changed during `run` is not run without trust (tests/trust.rs has the basics).
//!
//! Tests that need a server print a loud SKIP when it is not installed (they fail instead under
//! `STACKATO_LOCAL_REQUIRE_SERVICES=1`). Guards stop and reset the services, and kill whatever a
//! test left running in its directory, even when it panics. Tests marked `#[ignore = "BUG: …"]`
//! show a product bug; run them with `cargo test --test security -- --ignored`.

use std::collections::BTreeMap;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use crate::common::procs::listeners;
use crate::common::project::{Project, mariadb_serial};
use crate::common::session::Session;
use crate::common::*;
use serde_json::Value;

const MASK: &str = "********";
/// How long a Ctrl-C may take to end a run.
const CTRL_C: Duration = Duration::from_secs(40);

// ---------------------------------------------------------------------------------------------
// Services
// ---------------------------------------------------------------------------------------------

/// The programs each service type needs (servers, and the clients the tests use).
fn need(kinds: &[&str]) -> bool {
    kinds.iter().all(|k| {
        require_all(match *k {
            "postgresql" => &["postgres", "initdb", "pg_isready"][..],
            "mysql" => &["mariadbd|mysqld", "mariadb-install-db|mysql_install_db"][..],
            "redis" => &["redis-server"][..],
            "memcached" => &["memcached"][..],
            _ => &[][..],
        })
    })
}

// ---------------------------------------------------------------------------------------------
// A project's environment and credentials
// ---------------------------------------------------------------------------------------------

impl Project {
    /// `env --reveal --format json`, as a map.
    #[track_caller]
    fn revealed(&self) -> BTreeMap<String, String> {
        let r = self.cmd(&["env", "--reveal", "--format", "json"]);
        r.code(0);
        r.json()
            .as_object()
            .expect("env JSON is an object")
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
            .collect()
    }

    /// Every service's credentials, by service name, from `VCAP_SERVICES` (revealed).
    #[track_caller]
    fn credentials(&self) -> BTreeMap<String, serde_json::Map<String, Value>> {
        let env = self.revealed();
        let vcap: Value = serde_json::from_str(&env["VCAP_SERVICES"]).expect("VCAP_SERVICES");
        vcap.as_object()
            .expect("VCAP_SERVICES is an object")
            .values()
            .filter_map(Value::as_array)
            .flatten()
            .map(|e| {
                (
                    e["name"].as_str().unwrap_or_default().to_string(),
                    e["credentials"].as_object().cloned().unwrap_or_default(),
                )
            })
            .collect()
    }
}

// ---------------------------------------------------------------------------------------------
// Secrets
// ---------------------------------------------------------------------------------------------

/// Every password of every service (revealed).
#[track_caller]
fn passwords(p: &Project) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = p
        .credentials()
        .into_iter()
        .filter_map(|(name, c)| {
            c.get("password")
                .and_then(Value::as_str)
                .map(|pw| (name, pw.to_string()))
        })
        .collect();
    v.sort();
    assert!(!v.is_empty(), "no passwords found");
    v
}

/// Assert none of `secrets` occurs in `text` (what `what` printed).
#[track_caller]
fn assert_no_secret(what: &str, text: &str, secrets: &[(String, String)]) {
    for (name, s) in secrets {
        assert!(
            !text.contains(s.as_str()),
            "{what} shows the secret of {name} ({s})\n{text}"
        );
    }
}

/// Stderr without the block the tool re-prints from a failed command's own output (`last
/// lines of its output:` and the indented lines after it): that is the app's output, which may
/// print its own `DATABASE_URL`. Everything else is the tool's.
fn tool_lines(stderr: &str) -> String {
    let mut out = String::new();
    let mut in_tail = false;
    for l in stderr.lines() {
        if l.starts_with("last lines of its output:") || l.contains(". Last lines:") {
            in_tail = true;
            out.push_str(l);
            out.push('\n');
            continue;
        }
        if in_tail && l.starts_with("    ") {
            continue;
        }
        in_tail = false;
        out.push_str(l);
        out.push('\n');
    }
    out
}

// ---------------------------------------------------------------------------------------------
// 1 + 3. All four servers: loopback only; a private state directory; nothing printed leaks
// ---------------------------------------------------------------------------------------------

/// Every entry below `dir`, not following symlinks: (path, file type).
fn walk(dir: &Path) -> Vec<(PathBuf, std::fs::FileType)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let Ok(ft) = e.file_type() else { continue };
        out.push((e.path(), ft));
        if ft.is_dir() {
            out.extend(walk(&e.path()));
        }
    }
    out
}

const ALL_FOUR: &str = "name: fortress
services:
  pg: postgresql
  my: mysql
  rd: redis
  mc: memcached
env:
  ANSWERED:
    required: true
    prompt: say something
processes:
  web: ~
command: echo up; exec sleep 1000
";

#[test]
fn all_four_servers_listen_on_loopback_only_and_the_state_dir_is_private() {
    if !need(&["postgresql", "mysql", "redis", "memcached"]) {
        return;
    }
    let _serial = mariadb_serial();
    let p = Project::new(&[("stackato.yml", ALL_FOUR)]).with_services(&["pg", "my", "rd", "mc"]);

    // A required variable answered on a terminal is kept in answers.json (`script` gives the
    // command a pseudo-terminal); without `script`, it is given with -e instead.
    let script = find_program("script");
    let mut run_args = vec!["--no-watch", "--db", "native"];
    match &script {
        Some(script) => {
            let mut c = std::process::Command::new(script);
            c.current_dir(&p.app)
                .env("STACKATO_LOCAL_TRUST", "1")
                .args(["-qec", &format!("{} env --format json", bin()), "/dev/null"])
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            let mut child = c.spawn().expect("run script");
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(b"forty-two\n")
                .unwrap();
            let out = child.wait_with_output().unwrap();
            assert!(
                out.status.success(),
                "env on a terminal: {}\n{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(p.state("answers.json").exists(), "no answers.json");
        }
        None => {
            skip("all_four_servers…: `script` not installed: answers.json is not checked");
            run_args.extend(["-e", "ANSWERED=forty-two"]);
        }
    }

    let mut s = Session::start(&p.app, &run_args, &[]);
    s.wait_err("==> running", SERVICES);
    let secrets = passwords(&p);
    assert_eq!(secrets.len(), 4, "{secrets:?}");

    // 1. Loopback only, for every server (127.0.0.1 is 0100007F in /proc).
    for (name, c) in p.credentials() {
        let port = c["port"].as_u64().expect("port") as u16;
        assert_eq!(c["host"], "127.0.0.1", "{name} advertises {c:?}");
        let l = listeners(port);
        assert_eq!(
            l,
            vec!["tcp:0100007F".to_string()],
            "{name} (port {port}): expected only 127.0.0.1 listening; 00000000 is 0.0.0.0, tcp6 :: is all zeros"
        );
    }

    // 3. The control socket, and every file of the state dir.
    let sock = p.state("run.sock");
    let md = std::fs::symlink_metadata(&sock).expect("run.sock exists while run is up");
    assert!(md.file_type().is_socket(), "run.sock is not a socket");
    assert_eq!(mode(&sock), 0o600, "run.sock");
    let state = p.app.join(".stackato-local");
    assert_eq!(mode(&state), 0o700, ".stackato-local");
    let entries = walk(&state);
    let rel = |f: &Path| f.strip_prefix(&state).unwrap().display().to_string();
    let names: Vec<String> = entries.iter().map(|(f, _)| rel(f)).collect();
    let mut expected = vec![
        "services.json",
        "ports.json",
        "run.sock",
        "locks/services.lock",
        "locks/run.lock",
    ];
    if script.is_some() {
        expected.push("answers.json");
    }
    for svc in ["pg", "my", "rd", "mc"] {
        for f in ["server.log", "server.pid"] {
            assert!(
                names.contains(&format!("services/{svc}/{f}")),
                "no services/{svc}/{f} in {names:?}"
            );
        }
    }
    for e in expected {
        assert!(names.iter().any(|n| n == e), "no {e} in {names:?}");
    }
    // The staged copies hold the app's own files with the app's own modes (a script keeps its
    // execute bit), behind the private directories above them.
    let app_copy = |r: &str| {
        let parts: Vec<&str> = r.split('/').collect();
        parts.len() >= 5 && parts[0] == "apps" && parts[2].starts_with('g') && parts[4] == "app"
    };
    for (f, ft) in &entries {
        if ft.is_symlink() || app_copy(&rel(f)) {
            continue;
        }
        let want = if ft.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode(f), want, "{} is {:o}, not {want:o}", rel(f), mode(f));
    }

    // 4. Nothing the tool printed shows a password: `services`, the servers' logs, the run.
    let list = p.cmd(&["services"]);
    list.code(0);
    assert!(list.stdout.contains("running"), "{}", list.dump());
    assert_no_secret(
        "`services`",
        &(list.stdout.clone() + &list.stderr),
        &secrets,
    );
    for svc in ["pg", "my", "rd", "mc"] {
        let logs = p.cmd(&["services", "logs", svc]);
        logs.code(0);
        assert_no_secret(
            &format!("`services logs {svc}`"),
            &(logs.stdout.clone() + &logs.stderr),
            &secrets,
        );
    }
    s.interrupt(CTRL_C);
    let err = s.stderr();
    assert!(
        err.contains("services: pg (postgresql) ready on 127.0.0.1:"),
        "{}",
        s.dump()
    );
    assert_no_secret("run's stderr", &err, &secrets);
    assert_no_secret("run's stdout", &s.stdout(), &secrets);
}

// ---------------------------------------------------------------------------------------------
// 2. Random credentials
// ---------------------------------------------------------------------------------------------

/// Bits of entropy of a random string drawn from the smallest usual alphabet that holds it
/// (hex, alphanumeric, printable ASCII), after dropping UUID dashes and one-letter prefixes.
fn entropy_bits(s: &str) -> f64 {
    let s: String = s.chars().filter(|c| *c != '-').collect();
    let alphabet = if s.chars().all(|c| c.is_ascii_hexdigit()) {
        16.0
    } else if s.chars().all(|c| c.is_ascii_alphanumeric()) {
        62.0
    } else {
        94.0
    };
    // A constant first letter (`p…`, `u…`) carries nothing.
    (s.len().saturating_sub(1) as f64) * f64::log2(alphabet)
}

const SIX: &str = "name: twin
services:
  pg: postgresql
  my: mysql
  rd: redis
  mc: memcached
  mg: mongodb
  mq: rabbitmq
";

#[test]
fn credentials_are_random_long_and_differ_between_projects() {
    // `env` generates the credentials (no server needs to run).
    let a = Project::new(&[("stackato.yml", SIX)]);
    let b = Project::new(&[("stackato.yml", SIX)]);
    let (ca, cb) = (a.credentials(), b.credentials());
    assert_eq!(ca.len(), 6, "{ca:#?}");
    let mut seen: Vec<String> = Vec::new();
    for (name, c) in &ca {
        let pa = c["password"].as_str().expect("password").to_string();
        let pb = cb[name]["password"].as_str().expect("password").to_string();
        assert_ne!(pa, pb, "{name}: the same password in two projects");
        for pw in [&pa, &pb] {
            assert!(pw.len() >= 16, "{name}: password {pw:?} is shorter than 16");
            assert!(
                entropy_bits(pw) >= 60.0,
                "{name}: password {pw:?} has about {:.0} bits",
                entropy_bits(pw)
            );
            let distinct: std::collections::BTreeSet<char> = pw.chars().collect();
            assert!(distinct.len() >= 6, "{name}: {pw:?} repeats itself");
            // Not derived from the names (the two-letter service names would turn up in
            // about 1 random password in 150 by chance, so the app name and the types are
            // what is checked).
            assert!(
                ![
                    "twin", "postgres", "mysql", "redis", "memcache", "mongo", "rabbit"
                ]
                .iter()
                .any(|n| pw.to_lowercase().contains(n)),
                "{pw:?}"
            );
            assert!(!seen.contains(pw), "{name}: a password used twice: {pw}");
            seen.push(pw.clone());
        }
        for field in ["user", "username", "name"] {
            if let (Some(x), Some(y)) = (c.get(field), cb[name].get(field)) {
                assert_ne!(x, y, "{name}: the same {field} in two projects");
            }
        }
    }
    // Generated once: the same project keeps them.
    assert_eq!(a.credentials(), ca);
    // …and a reset gives new ones.
    a.cmd(&["services", "reset", "rd", "--yes"]).code(0);
    assert_ne!(a.credentials()["rd"]["password"], ca["rd"]["password"]);
}

// ---------------------------------------------------------------------------------------------
// 4. Masking
// ---------------------------------------------------------------------------------------------

const MASKED: &str = "name: masked
services:
  db: postgresql
  cache: redis
env:
  API_TOKEN: tok-0123456789abcdef
  SHOWN_LATER:
    default: hidden-value-fedcba9876543210
    hidden: true
";

/// The raw secrets of the [`MASKED`] project: passwords, the secret-named and hidden values.
fn masked_secrets(p: &Project) -> Vec<(String, String)> {
    let mut s = passwords(p);
    s.push(("API_TOKEN".into(), "tok-0123456789abcdef".into()));
    s.push(("SHOWN_LATER".into(), "hidden-value-fedcba9876543210".into()));
    s
}

#[test]
fn env_explain_diff_and_services_mask_every_secret() {
    let p = Project::new(&[("stackato.yml", MASKED)]);
    let secrets = masked_secrets(&p);
    let revealed = p.revealed();
    for (_, s) in &secrets {
        assert!(
            revealed.values().any(|v| v.contains(s.as_str())),
            "--reveal does not show {s}: the test is broken"
        );
    }

    let mut outputs: Vec<(String, Run)> = Vec::new();
    for args in [
        &["env"][..],
        &["env", "--format", "shell"][..],
        &["env", "--format", "json"][..],
        &["env", "--format", "dotenv"][..],
        &["env", "--staging"][..],
        &["env", "--staging", "--format", "json"][..],
    ] {
        let r = p.cmd(args);
        r.code(0);
        assert!(r.stdout.contains(MASK), "nothing masked in\n{}", r.dump());
        outputs.push((format!("{args:?}"), r));
    }
    for var in [
        "DATABASE_URL",
        "POSTGRESQL_URL",
        "JDBC_DATABASE_URL",
        "REDIS_URL",
        "VCAP_SERVICES",
        "STACKATO_SERVICES",
        "API_TOKEN",
        "SHOWN_LATER",
    ] {
        let r = p.cmd(&["env", "explain", var]);
        r.code(0);
        assert!(r.stdout.contains(MASK), "nothing masked in\n{}", r.dump());
        outputs.push((format!("env explain {var}"), r));
    }
    // A production environment that differs in every secret (and hides its own).
    let theirs_secret = "Pr0dPassw0rdThatMustNotShow";
    let mut theirs: BTreeMap<String, String> = revealed.clone();
    theirs.insert(
        "DATABASE_URL".into(),
        format!("postgres://produser:{theirs_secret}@db.example.com:5432/prod"),
    );
    theirs.insert(
        "REDIS_URL".into(),
        format!("redis://:{theirs_secret}@cache.example.com:6379"),
    );
    theirs.insert("API_TOKEN".into(), format!("{theirs_secret}-token"));
    theirs.insert("SHOWN_LATER".into(), format!("{theirs_secret}-hidden"));
    let vcap = theirs["VCAP_SERVICES"].replace(&secrets[0].1, theirs_secret);
    theirs.insert("VCAP_SERVICES".into(), vcap);
    let json_file = p.root.join("prod.json");
    std::fs::write(&json_file, serde_json::to_string(&theirs).unwrap()).unwrap();
    let text_file = p.root.join("prod.env");
    let text: String = theirs.iter().map(|(k, v)| format!("{k}={v}\n")).collect();
    std::fs::write(&text_file, text).unwrap();
    for file in [&json_file, &text_file] {
        let f = file.display().to_string();
        let r = p.cmd(&["env", "diff", &f]);
        r.code(1);
        assert!(r.stdout.contains("API_TOKEN"), "{}", r.dump());
        let all = r.stdout.clone() + &r.stderr;
        assert!(
            !all.contains(theirs_secret),
            "env diff shows their secret\n{}",
            r.dump()
        );
        outputs.push((format!("env diff {f}"), r));
    }
    let r = p.cmd(&["services"]);
    r.code(0);
    outputs.push(("services".into(), r));

    for (what, r) in &outputs {
        assert_no_secret(what, &(r.stdout.clone() + &r.stderr), &secrets);
    }
}

#[test]
fn runs_own_messages_never_show_a_password() {
    if !need(&["postgresql", "redis"]) {
        return;
    }
    // A post-staging hook that prints the URLs and fails: the hook's own output is the app's,
    // but the tool's lines (phases, services, the error and its hint) must stay masked.
    let manifest = format!(
        "{MASKED}hooks:\n  post-staging:\n    - echo \"$DATABASE_URL $REDIS_URL $API_TOKEN $SHOWN_LATER\"; sh -c \"exit 3\"\nprocesses:\n  web: python3 -m http.server $PORT\n"
    );
    let p = Project::new(&[("stackato.yml", &manifest)]).with_services(&["db", "cache"]);
    let secrets = masked_secrets(&p);
    let mut s = Session::start(&p.app, &["--no-watch", "--db", "native"], &[]);
    s.expect_exit(6, SERVICES);
    let err = s.stderr();
    assert!(
        err.contains("error: post-staging hook #1 `echo \"$DATABASE_URL $REDIS_URL $API_TOKEN $SHOWN_LATER\"; sh -c \"exit 3\"` failed with exit status 3"),
        "{}",
        s.dump()
    );
    assert!(
        err.contains("services: db (postgresql) ready on"),
        "{}",
        s.dump()
    );
    // The hook really saw the secrets (else this test proves nothing).
    assert!(s.stdout().contains(&secrets[0].1), "{}", s.dump());
    assert_no_secret("run's own stderr lines", &tool_lines(&err), &secrets);

    // A pre-running hook failing the same way, once staged (`sh -c "exit 3"`, not `exit 3`:
    // pre-running hooks share the process's shell, so `exit` would end it like a crash).
    let manifest = manifest.replace("post-staging", "pre-running");
    std::fs::write(p.app.join("stackato.yml"), manifest).unwrap();
    let mut s = Session::start(&p.app, &["--no-watch", "--db", "native"], &[]);
    s.expect_exit(6, SERVICES);
    let err = s.stderr();
    assert!(
        err.contains("pre-running hook #1") && err.contains("failed with exit status 3"),
        "{}",
        s.dump()
    );
    assert_no_secret("run's own stderr lines", &tool_lines(&err), &secrets);
}

#[test]
fn a_choices_error_does_not_print_a_secret() {
    let p = Project::new(&[(
        "stackato.yml",
        "name: choosy\nservices:\n  db: postgresql\n",
    )]);
    let secrets = passwords(&p);
    std::fs::write(
        p.app.join("stackato.yml"),
        "name: choosy\nservices:\n  db: postgresql\nenv:\n  MODE:\n    default: $DATABASE_URL\n    choices: [a, b]\n  DEPLOY_SECRET:\n    default: s3cr3t-l3v3l-0123456789\n    choices: [low, high]\n",
    )
    .unwrap();
    let mut secrets = secrets;
    secrets.push(("DEPLOY_SECRET".into(), "s3cr3t-l3v3l-0123456789".into()));
    for args in [&["env"][..], &["env", "explain", "MODE"][..]] {
        let r = p.cmd(args);
        r.code(4);
        r.stderr_has("which is not one of its choices");
        assert_no_secret(&format!("{args:?}"), &r.stderr, &secrets);
    }
}

// ---------------------------------------------------------------------------------------------
// 5. Substitution never executes anything
// ---------------------------------------------------------------------------------------------

#[test]
fn substitution_and_dotenv_never_execute_anything() {
    let pwned = "touch @ROOT@/pwned";
    // ${...} with a command inside: an unknown symbol, or an `ask` without a terminal.
    for (value, message) in [
        ("${$(@CMD@)}", "Unknown symbol in manifest: $(@CMD@)"),
        ("${`@CMD@`}", "Unknown symbol in manifest: `@CMD@`"),
        (
            "${name$(@CMD@)}",
            "Unknown symbol in manifest: name$(@CMD@)",
        ),
        (
            "${ask $(@CMD@)}",
            "`${ask $(@CMD@)}` asks a question, but there is no terminal to answer it",
        ),
        (
            "${ask `@CMD@`}",
            "`${ask `@CMD@`}` asks a question, but there is no terminal to answer it",
        ),
    ] {
        let value = value.replace("@CMD@", pwned);
        let p = Project::new(&[(
            "stackato.yml",
            &format!(
                "name: subst\nenv:\n  X: \"{value}\"\nprocesses:\n  web: ~\ncommand: sleep 0\n"
            ),
        )]);
        let message = message.replace(
            "@CMD@",
            &pwned.replace("@ROOT@", &p.root.display().to_string()),
        );
        for args in [&["config"][..], &["env"][..], &["check"][..]] {
            let r = p.cmd(args);
            r.code(2);
            r.stderr_has(&format!("error: {message}"));
        }
        // The same as a key.
        std::fs::write(
            p.app.join("stackato.yml"),
            format!(
                "name: subst\nenv:\n  \"{value}\": x\nprocesses:\n  web: ~\ncommand: sleep 0\n"
            )
            .replace("@ROOT@", &p.root.display().to_string()),
        )
        .unwrap();
        p.cmd(&["config"]).code(2);
        assert!(!p.root.join("pwned").exists(), "{value} ran a command");
    }

    // $(…) and backticks in env: values, .env files and -e stay literal text, also in `run`.
    let p = Project::new(&[
        (
            "stackato.yml",
            "name: literal\nenv:\n  A: $(touch @ROOT@/pwned)\n  B: \"`touch @ROOT@/pwned`\"\nhooks:\n  post-staging:\n    - printenv A B C D E F G > @ROOT@/staging.env\nprocesses:\n  web: ~\ncommand: printenv A B C D E F G > @ROOT@/run.env; exit 1\n",
        ),
        (
            ".env",
            "C=$(touch @ROOT@/pwned)\nD=\"`touch @ROOT@/pwned`\"\nexport E=${NOPE:-$(touch @ROOT@/pwned)}\nF='$(touch @ROOT@/pwned)'\n",
        ),
    ]);
    let root = p.root.display().to_string();
    let g = format!("G=$(touch {root}/pwned)");
    let r = p.cmd(&["env", "--format", "json", "-e", &g]);
    r.code(0);
    let env = r.json();
    let want = [
        ("A", format!("$(touch {root}/pwned)")),
        ("B", format!("`touch {root}/pwned`")),
        ("C", format!("$(touch {root}/pwned)")),
        ("D", format!("`touch {root}/pwned`")),
        ("E", format!("${{NOPE:-$(touch {root}/pwned)}}")),
        ("F", format!("$(touch {root}/pwned)")),
        ("G", format!("$(touch {root}/pwned)")),
    ];
    for (k, v) in &want {
        assert_eq!(env[k], *v, "{k}\n{}", r.dump());
    }
    let mut s = Session::start(&p.app, &["--no-watch", "--exit-on-crash", "-e", &g], &[]);
    s.expect_exit(7, SHORT);
    let expected: String = want.iter().map(|(_, v)| format!("{v}\n")).collect();
    for f in ["staging.env", "run.env"] {
        assert_eq!(
            std::fs::read_to_string(p.root.join(f)).unwrap_or_default(),
            expected,
            "{f}\n{}",
            s.dump()
        );
    }
    assert!(!p.root.join("pwned").exists(), "a value ran a command");
}

// ---------------------------------------------------------------------------------------------
// 6. Trust
// ---------------------------------------------------------------------------------------------

/// `run` without watching, ended by the app's first exit (`--exit-on-crash`: exit 7).
const RUN_ONCE: &[&str] = &["run", "--no-watch", "--exit-on-crash"];

/// Run the binary as a user who never trusted anything: no STACKATO_LOCAL_TRUST, `HOME` at
/// `home`, no XDG_DATA_HOME, stdin not a terminal.
fn untrusted(p: &Project, home: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut c = cmd(&p.app);
    c.env_remove("STACKATO_LOCAL_TRUST")
        .env("HOME", home)
        .env_remove("XDG_DATA_HOME")
        .args(args)
        .envs(env.iter().copied());
    let out = c.output().expect("run stackato-local");
    Run::from_output(args.iter().map(|s| s.to_string()).collect(), out)
}

const EVERY_KIND: &str = "name: every
services:
  cache: redis
hooks:
  pre-staging:
    - touch @ROOT@/pre-staging
  post-staging:
    - touch @ROOT@/post-staging
  pre-running:
    - touch @ROOT@/pre-running
processes:
  web: touch @ROOT@/web; exec sleep 100
cron:
  - \"* * * * * touch @ROOT@/cron\"
";

/// What a run of [`EVERY_KIND`] would have left behind.
fn ran_anything(p: &Project) -> Vec<String> {
    ["pre-staging", "post-staging", "pre-running", "web", "cron"]
        .iter()
        .filter(|f| p.root.join(f).exists())
        .map(|f| f.to_string())
        .chain(
            p.state("services/cache/server.pid")
                .exists()
                .then(|| "the redis service".to_string()),
        )
        .collect()
}

#[test]
fn an_untrusted_project_lists_every_command_and_runs_nothing() {
    let p = Project::new(&[("stackato.yml", EVERY_KIND)]).with_services(&["cache"]);
    let home = tempfile::tempdir().unwrap();
    let root = p.root.display().to_string();
    // Only "1" trusts, as documented.
    for env in [
        &[][..],
        &[("STACKATO_LOCAL_TRUST", "0")][..],
        &[("STACKATO_LOCAL_TRUST", "")][..],
    ] {
        let r = untrusted(&p, home.path(), &["run", "--no-watch"], env);
        r.code(8);
        r.stderr_has(
            "error: stackato.yml runs these commands, and they have not been trusted on this machine yet:\n",
        );
        for line in [
            format!("  every pre-staging hook: touch {root}/pre-staging\n"),
            format!("  every post-staging hook: touch {root}/post-staging\n"),
            format!("  every pre-running hook: touch {root}/pre-running\n"),
            format!("  every web: touch {root}/web; exec sleep 100\n"),
            format!("  every cron: * * * * * touch {root}/cron\n"),
        ] {
            r.stderr_has(&line);
        }
        r.stderr_has("review them, then run `stackato-local allow` (or pass --trust)");
        r.stderr_lacks("==> services");
        assert_eq!(
            ran_anything(&p),
            Vec::<String>::new(),
            "{env:?}\n{}",
            r.dump()
        );
    }
    // Nothing was recorded anywhere.
    assert!(!home.path().join(".local").exists());
}

#[test]
fn allow_records_trust_under_home_or_xdg_data_home_not_in_the_project() {
    let p = Project::new(&[(
        "stackato.yml",
        "name: allowed\nhooks:\n  post-staging:\n    - touch @ROOT@/hook\nprocesses:\n  web: ~\ncommand: exit 0\n",
    )]);
    let before: Vec<PathBuf> = walk(&p.app).into_iter().map(|(f, _)| f).collect();
    let home = tempfile::tempdir().unwrap();
    let r = untrusted(&p, home.path(), &["allow"], &[]);
    r.code(0);
    let store = canon(home.path()).join(".local/share/stackato-local/trust.json");
    let store = if store.exists() {
        store
    } else {
        home.path().join(".local/share/stackato-local/trust.json")
    };
    assert!(
        r.stdout
            .contains(&format!("trusted (recorded in {})", store.display())),
        "{}",
        r.dump()
    );
    let text = std::fs::read_to_string(&store).expect("the trust store");
    let manifest = p.app.join("stackato.yml").display().to_string();
    // One JSON record, keyed by this manifest, with SHA-256 digests.
    let json: Value = serde_json::from_str(&text).expect("the trust store is JSON");
    let projects = json["projects"].as_object().expect("projects");
    assert_eq!(
        projects.keys().collect::<Vec<_>>(),
        vec![&manifest],
        "{text}"
    );
    assert!(
        projects[&manifest]["files"]
            .as_array()
            .expect("files")
            .iter()
            .any(|f| f["path"] == manifest.as_str()
                && f["state"]["sha256"].as_str().is_some_and(|h| h.len() == 64)),
        "{text}"
    );
    assert_eq!(
        mode(&store) & 0o077,
        0,
        "the trust store is readable by others"
    );
    // Nothing about trust in the project (allow may create the state dir, not trust in it).
    for (f, _) in walk(&p.app) {
        if !before.contains(&f) {
            assert!(
                f.starts_with(p.app.join(".stackato-local")),
                "allow wrote {} into the project",
                f.display()
            );
            if f.is_file() {
                let t = std::fs::read_to_string(&f).unwrap_or_default();
                assert!(
                    !t.contains("\"sha256\""),
                    "{} holds a trust record",
                    f.display()
                );
            }
        }
    }
    // Trusted now, for this HOME only.
    untrusted(&p, home.path(), RUN_ONCE, &[]).code(7);
    assert!(p.root.join("hook").exists());
    let other = tempfile::tempdir().unwrap();
    untrusted(&p, other.path(), RUN_ONCE, &[]).code(8);

    // With XDG_DATA_HOME, trust goes there.
    let xdg = tempfile::tempdir().unwrap();
    let xdg_s = xdg.path().display().to_string();
    untrusted(&p, other.path(), &["allow"], &[("XDG_DATA_HOME", &xdg_s)]).code(0);
    assert!(xdg.path().join("stackato-local/trust.json").exists());
    assert!(!other.path().join(".local").exists());
    untrusted(&p, other.path(), RUN_ONCE, &[("XDG_DATA_HOME", &xdg_s)]).code(7);
}

#[test]
fn a_repository_cannot_ship_its_own_trust() {
    let manifest = "name: shipped\nhooks:\n  post-staging:\n    - touch @ROOT@/hook\nprocesses:\n  web: ~\ncommand: exit 0\n";
    let p = Project::new(&[("stackato.yml", manifest)]);
    // A valid trust line for exactly this manifest, made elsewhere.
    let elsewhere = tempfile::tempdir().unwrap();
    untrusted(&p, elsewhere.path(), &["allow"], &[]).code(0);
    let line = std::fs::read_to_string(
        elsewhere
            .path()
            .join(".local/share/stackato-local/trust.json"),
    )
    .expect("the trust store");
    // The repository ships it in every place it could hope to be read from, and a .env that
    // points HOME and XDG_DATA_HOME into itself.
    let app = p.app.display().to_string();
    p.write_all(&[
        (".stackato-local/trust.json", &line),
        (".stackato-local/stackato-local/trust.json", &line),
        (".local/share/stackato-local/trust.json", &line),
        ("share/stackato-local/trust.json", &line),
        (".env", &format!("HOME={app}\nXDG_DATA_HOME={app}/share\n")),
    ]);
    let home = tempfile::tempdir().unwrap();
    let r = untrusted(&p, home.path(), RUN_ONCE, &[]);
    r.code(8);
    // The shipped state directory is refused before trust is even looked up.
    r.stderr_has("was not created by stackato-local on this machine");
    assert!(!p.root.join("hook").exists(), "a hook ran on shipped trust");
    // Without it, the shipped trust files are still not the user's.
    std::fs::remove_dir_all(p.app.join(".stackato-local")).unwrap();
    let r = untrusted(&p, home.path(), RUN_ONCE, &[]);
    r.code(8);
    r.stderr_has("have not been trusted on this machine yet");
    assert!(!p.root.join("hook").exists(), "a hook ran on shipped trust");
    // The user's own `allow` still works.
    untrusted(&p, home.path(), &["allow"], &[]).code(0);
    untrusted(&p, home.path(), RUN_ONCE, &[]).code(7);
    assert!(p.root.join("hook").exists());
}

#[test]
fn a_manifest_changed_during_run_is_not_run_without_trust() {
    let manifest = "name: edited\nhooks:\n  post-staging:\n    - touch @ROOT@/first\nprocesses:\n  web: ~\ncommand: echo up; exec sleep 1000\n";
    let p = Project::new(&[("stackato.yml", manifest)]);
    let home = tempfile::tempdir().unwrap();
    untrusted(&p, home.path(), &["allow"], &[]).code(0);
    let home_s = home.path().display().to_string();
    // Trusted through `allow` only ("0" trusts nothing), with file watching on.
    let mut s = Session::start(
        &p.app,
        &[],
        &[("HOME", &home_s), ("STACKATO_LOCAL_TRUST", "0")],
    );
    s.wait_err("==> running and watching for changes", SHORT);
    assert!(p.root.join("first").exists());
    s.wait_for(crate::common::session::Stream::Out, "worker.0 | up", SHORT);
    // The watcher sets itself up in the background after that line: wait for it.
    crate::common::procs::wait_watching(s.pid, SHORT);
    p.write_all(&[("stackato.yml", &manifest.replace("first", "second"))]);
    s.expect_exit(8, SHORT);
    let err = s.stderr();
    assert!(
        err.contains(&format!(
            "  edited post-staging hook: touch {}/second\n",
            p.root.display()
        )),
        "{}",
        s.dump()
    );
    assert!(
        !p.root.join("second").exists(),
        "the new hook ran without trust"
    );
}

#[test]
fn the_crontab_file_is_part_of_what_is_trusted() {
    let p = Project::new(&[
        (
            "stackato.yml",
            "name: crontab\nprocesses:\n  web: ~\ncommand: exit 0\n",
        ),
        ("crontab", "* * * * * touch @ROOT@/cron\n"),
    ]);
    let home = tempfile::tempdir().unwrap();
    let r = untrusted(&p, home.path(), RUN_ONCE, &[]);
    r.code(8);
    r.stderr_has(&format!("* * * * * touch {}/cron", p.root.display()));
    // Trusted without the crontab, then one appears: ask again.
    std::fs::remove_file(p.app.join("crontab")).unwrap();
    untrusted(&p, home.path(), &["allow"], &[]).code(0);
    p.write_all(&[("crontab", "* * * * * touch @ROOT@/cron\n")]);
    untrusted(&p, home.path(), RUN_ONCE, &[]).code(8);
}
