//! `env` on every real-world stackato.yml of the shared corpus that `check` accepts: it must
//! give the environment (exit 0, a flat JSON object of strings with HOME, PORT,
//! VCAP_APPLICATION and VCAP_SERVICES, the JSON ones parseable), or, when the manifest declares
//! a `required` variable without a default, refuse with exit 4 naming that variable at its line
//! (stdin is not a terminal, so nobody can be asked). Staging must agree, without a PORT.
//!
//! `cargo test --test env_corpus -- --nocapture` prints the counts.

use std::collections::BTreeSet;
use std::path::Path;

use crate::common::corpus::{corpus_app, corpus_files, examine_all, failures};
use crate::common::*;
use serde_json::Value;

#[derive(Debug, PartialEq, Eq)]
enum Verdict {
    /// `check` rejected it: not ours to run.
    Rejected,
    /// `env` gave the environment.
    Env,
    /// `env` refused for a required variable without a value.
    Required,
}

struct Outcome {
    file: String,
    verdict: Verdict,
    problems: Vec<String>,
}

/// Names of `env:` variables that are `required` and have no `default`, in any application.
fn required_without_default(doc: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let apps = doc
        .pointer("/manifest/applications")
        .and_then(Value::as_object);
    for a in apps.into_iter().flat_map(|m| m.values()) {
        let Some(env) = a.pointer("/stackato/env").and_then(Value::as_object) else {
            continue;
        };
        for (name, attrs) in env {
            let required = match &attrs["required"] {
                Value::Bool(b) => *b,
                Value::String(s) => matches!(
                    s.to_ascii_lowercase().as_str(),
                    "y" | "yes" | "true" | "on" | "1"
                ),
                _ => false,
            };
            if required && attrs.get("default").is_none() {
                out.insert(name.clone());
            }
        }
    }
    out
}

/// The problems with one `env --format json` (or `--staging`) run.
fn env_problems(r: &Run, staging: bool, required: &BTreeSet<String>) -> (Verdict, Vec<String>) {
    let mut p = Vec::new();
    if r.stderr.contains("panicked") {
        p.push(format!("panic\n{}", r.dump()));
    }
    match r.code {
        Some(0) => {
            match serde_json::from_str::<Value>(&r.stdout) {
                Err(e) => p.push(format!("stdout is not JSON ({e})\n{}", r.dump())),
                Ok(Value::Object(m)) => {
                    if let Some((k, _)) = m.iter().find(|(_, v)| !v.is_string()) {
                        p.push(format!("{k} is not a string\n{}", r.dump()));
                    }
                    let want: &[&str] = if staging {
                        &["HOME", "VCAP_APPLICATION", "VCAP_SERVICES"]
                    } else {
                        &["HOME", "PORT", "VCAP_APPLICATION", "VCAP_SERVICES"]
                    };
                    for k in want {
                        if !m.contains_key(*k) {
                            p.push(format!("{k} is missing\n{}", r.dump()));
                        }
                    }
                    if staging && m.contains_key("PORT") {
                        p.push(format!("PORT at staging\n{}", r.dump()));
                    }
                    if !staging
                        && !m["PORT"]
                            .as_str()
                            .is_some_and(|s| s.parse::<u16>().is_ok_and(|n| n > 0))
                    {
                        p.push(format!("PORT is not a port\n{}", r.dump()));
                    }
                    for k in ["VCAP_APPLICATION", "VCAP_SERVICES", "STACKATO_SERVICES"] {
                        if let Some(s) = m.get(k).and_then(Value::as_str)
                            && !serde_json::from_str::<Value>(s).is_ok_and(|v| v.is_object())
                        {
                            p.push(format!("{k} is not a JSON object: {s}"));
                        }
                    }
                }
                Ok(_) => p.push(format!("stdout is not a JSON object\n{}", r.dump())),
            }
            (Verdict::Env, p)
        }
        Some(4) if !required.is_empty() => {
            let named: Vec<&String> = required
                .iter()
                .filter(|n| {
                    r.stderr
                        .contains(&format!("Required variable \"{n}\" not set"))
                })
                .collect();
            if named.is_empty() {
                p.push(format!(
                    "exit 4 without naming a required variable ({required:?})\n{}",
                    r.dump()
                ));
            }
            if !r.stderr.contains(" --> stackato.yml:") {
                p.push(format!(
                    "exit 4 without a stackato.yml position\n{}",
                    r.dump()
                ));
            }
            if !r.stdout.is_empty() {
                p.push(format!("exit 4 but printed an environment\n{}", r.dump()));
            }
            (Verdict::Required, p)
        }
        other => {
            p.push(format!(
                "`check` accepted it, but `env` exited {other:?} (required without default: {required:?})\n{}",
                r.dump()
            ));
            (Verdict::Env, p)
        }
    }
}

fn examine(src: &Path) -> Outcome {
    let (file, d) = corpus_app(src);
    let c = check(d.path());
    if c.code != Some(0) {
        return Outcome {
            file,
            verdict: Verdict::Rejected,
            problems: Vec::new(),
        };
    }
    let required = required_without_default(&config_json(d.path()));
    let r = run(d.path(), &["env", "--format", "json"]);
    let (verdict, mut problems) = env_problems(&r, false, &required);
    let s = run(d.path(), &["env", "--format", "json", "--staging"]);
    let (sv, sp) = env_problems(&s, true, &required);
    problems.extend(sp);
    if sv != verdict {
        problems.push(format!(
            "runtime said {verdict:?}, staging {sv:?}\n{}\n{}",
            r.dump(),
            s.dump()
        ));
    }
    Outcome {
        file,
        verdict,
        problems,
    }
}

#[test]
fn env_works_on_every_corpus_file_that_check_accepts() {
    let Some(files) = corpus_files("env corpus test") else {
        return;
    };
    let outcomes = examine_all(&files, examine);

    let count = |v: Verdict| outcomes.iter().filter(|o| o.verdict == v).count();
    let (env_ok, required, rejected) = (
        count(Verdict::Env),
        count(Verdict::Required),
        count(Verdict::Rejected),
    );
    eprintln!(
        "env corpus: {} files: {rejected} rejected by check; of the {} accepted, {env_ok} gave an environment, {required} stopped at a required variable (exit 4)",
        outcomes.len(),
        outcomes.len() - rejected
    );
    for o in outcomes.iter().filter(|o| o.verdict == Verdict::Required) {
        eprintln!("  required variable: {}", o.file);
    }
    let failures = failures(outcomes.iter().map(|o| (o.file.as_str(), &o.problems[..])));
    eprintln!("  {} problem(s)", failures.len());
    assert!(
        failures.is_empty(),
        "{} problem(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(env_ok > 0, "no corpus file gave an environment");
}
