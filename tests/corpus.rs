//! Every real-world stackato.yml of the shared corpus through `check` and `config --json`: the
//! tool may accept or reject a file, but it must never crash, and a rejection must say where.
//!
//! `cargo test --test corpus -- --nocapture` prints the counts.

use std::path::Path;

use crate::common::corpus::{corpus_app, corpus_files, examine_all, failures};
use crate::common::*;
use serde_json::Value;

/// What happened to one corpus file.
struct Outcome {
    file: String,
    /// Exit code of `check --format short`.
    code: Option<i32>,
    warnings: usize,
    /// Problems found with this file (empty when all is well).
    problems: Vec<String>,
}

fn examine(src: &Path) -> Outcome {
    let (file, d) = corpus_app(src);
    let r = check(d.path());
    let mut problems = Vec::new();
    let is_error_line = |l: &str| {
        let Some(rest) = l.strip_prefix("stackato.yml:") else {
            return false;
        };
        let mut parts = rest.splitn(3, ':');
        let num = |p: Option<&str>| {
            p.is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        };
        num(parts.next())
            && num(parts.next())
            && parts.next().is_some_and(|t| t.starts_with(" error: "))
    };
    match r.code {
        Some(0) => {
            let c = run(d.path(), &["config", "--json"]);
            if c.code != Some(0) {
                problems.push(format!(
                    "`check` accepted it but `config --json` exited {:?}\n{}",
                    c.code,
                    c.dump()
                ));
            } else {
                match serde_json::from_str::<Value>(&c.stdout) {
                    Err(e) => {
                        problems.push(format!("`config --json` is not JSON: {e}\n{}", c.dump()))
                    }
                    Ok(doc) => problems.extend(json_problems(&doc)),
                }
            }
        }
        Some(2) => {
            if !r.stderr.lines().any(is_error_line) {
                problems.push(format!(
                    "rejected without a `stackato.yml:LINE:COL: error:` line\n{}",
                    r.dump()
                ));
            }
        }
        other => problems.push(format!(
            "`check` must exit 0 or 2, got {other:?} (101 = panic, None = killed by a signal)\n{}",
            r.dump()
        )),
    }
    if r.stderr.contains("panicked") {
        problems.push(format!("panic message on stderr\n{}", r.dump()));
    }
    Outcome {
        file,
        code: r.code,
        warnings: r.short_lines("warning").len(),
        problems,
    }
}

/// The shape every `config --json` document must have.
fn json_problems(doc: &Value) -> Vec<String> {
    let mut p = Vec::new();
    if !doc["manifest_file"]
        .as_str()
        .is_some_and(|f| f.ends_with("stackato.yml"))
    {
        p.push(format!(
            "manifest_file is not the stackato.yml: {}",
            doc["manifest_file"]
        ));
    }
    let Some(apps) = doc
        .pointer("/manifest/applications")
        .and_then(Value::as_object)
    else {
        p.push(format!("no manifest.applications object: {doc}"));
        return p;
    };
    if apps.is_empty() {
        p.push("accepted, but describes no application".into());
    }
    for (name, a) in apps {
        if a["name"].as_str() != Some(name.as_str()) {
            p.push(format!("application {name:?} has name {}", a["name"]));
        }
        if !a["path"]
            .as_str()
            .is_some_and(|s| Path::new(s).is_absolute())
        {
            p.push(format!(
                "application {name:?} has no absolute path: {}",
                a["path"]
            ));
        }
        if let Some(s) = a["path"].as_str().filter(|s| s.contains("${")) {
            p.push(format!("unresolved symbol in path of {name:?}: {s}"));
        }
    }
    p
}

#[test]
fn corpus_is_read_without_crashes() {
    let Some(files) = corpus_files("corpus test") else {
        return;
    };
    let outcomes = examine_all(&files, examine);

    let accepted = outcomes.iter().filter(|o| o.code == Some(0)).count();
    let rejected = outcomes.iter().filter(|o| o.code == Some(2)).count();
    let with_warnings = outcomes
        .iter()
        .filter(|o| o.code == Some(0) && o.warnings > 0)
        .count();
    eprintln!(
        "corpus: {} files: {accepted} accepted ({with_warnings} with warnings), {rejected} rejected",
        outcomes.len()
    );
    for o in outcomes.iter().filter(|o| o.code == Some(2)) {
        eprintln!("  rejected: {}", o.file);
    }

    let failures = failures(outcomes.iter().map(|o| (o.file.as_str(), &o.problems[..])));
    assert!(
        failures.is_empty(),
        "{} problem(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
    // These are real apps that were pushed to Stackato: the reader must take most of them.
    assert!(
        accepted * 10 >= outcomes.len() * 8,
        "only {accepted} of {} real-world files accepted",
        outcomes.len()
    );
}
