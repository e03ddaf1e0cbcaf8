//! Fuzz the user's side of the environment on UTF-8 input: the `.env` parser
//! (`env::dotenv::parse`), shell-style expansion of stackato.yml / `--env` values
//! (`env::user::expand`), `--env KEY=VALUE` parsing (`env::user::parse_cli_pair`), and the
//! whole `env::user::apply` layering with the input as a `.env` file (so error positions go
//! through `line_span` and the diagnostic renderer). Any input must give `Ok` or `Err`, never a
//! panic, a hang or runaway memory.
//!
//! The lookup knows a few names, one of them with a long value, so expansion paths run; the
//! assertions are properties that hold for every input.

#![no_main]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use stackato_local::api::diag::Sources;
use stackato_local::api::env::dotenv;
use stackato_local::api::model::{EnvSet, Layer};
use stackato_local::api::env::user::{self, Input};
use stackato_local::api::manifest::model::EnvVar;
use stackato_local::api::manifest::{self, App, LoadOptions};

/// A long value, so repeated references grow the output quickly.
fn long() -> &'static str {
    static LONG: OnceLock<String> = OnceLock::new();
    LONG.get_or_init(|| "L".repeat(1000))
}

fn lookup(name: &str) -> Option<String> {
    match name {
        "HOME" => Some("/home/me".into()),
        "A" => Some("1".into()),
        "B" => Some("two words".into()),
        "EMPTY" => Some(String::new()),
        "DOLLAR" => Some("$A ${B} \\$".into()),
        "DATABASE_URL" => Some("postgres://u:p@127.0.0.1:5432/db".into()),
        "LONG" => Some(long().to_string()),
        _ => None,
    }
}

/// One app whose `env:` has a shell-expanded default, choices, a required hidden variable and
/// an inherited one, so `apply` runs every layer.
fn app() -> &'static App {
    static APP: OnceLock<App> = OnceLock::new();
    APP.get_or_init(|| {
        let yml = "name: fuzz\n\
                   framework:\n  type: python\n\
                   env:\n\
                   \x20 GREETING:\n    default: hi $HOME $LONG\n\
                   \x20 MODE:\n    default: dev\n    choices: [dev, prod]\n\
                   \x20 TOKEN:\n    required: true\n    hidden: true\n\
                   \x20 SHELLY:\n    default: none\n    inherit: true\n";
        let loaded = manifest::load_bytes(
            yml.as_bytes(),
            Path::new("/nonexistent-fuzz-dir/stackato.yml"),
            &LoadOptions::new("/nonexistent-fuzz-dir"),
            &mut |_q: &str| None,
        )
        .unwrap_or_else(|_| panic!("the fuzz target's own manifest does not load"));
        loaded.manifest.apps.into_iter().next().expect("one app")
    })
}

/// A `.env` file of this process's own, rewritten for every input.
fn dotenv_path() -> &'static PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("stackato-fuzz-dotenv-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the fuzz temp dir");
        dir.join(".env")
    })
}

fn check_dotenv(text: &str) {
    match dotenv::parse(text, &lookup) {
        Ok(entries) => {
            let lines = text.split('\n').count();
            for e in &entries {
                assert!(!e.key.is_empty(), "empty key from {text:?}");
                assert!(
                    !e.key.starts_with(|c: char| c.is_ascii_digit()),
                    "key {:?} starts with a digit",
                    e.key
                );
                assert!(
                    e.line >= 1 && e.line <= lines,
                    "entry line {} outside 1..={lines}",
                    e.line
                );
            }
        }
        Err(e) => {
            assert!(e.line >= 1 && e.col >= 1, "error at {}:{}", e.line, e.col);
            let _ = e.to_string();
        }
    }
}

fn check_expand(text: &str) {
    // Past the size limit an expansion fails (TooLong): that is the bound working.
    let out = user::expand(text, &lookup);
    if !text.contains('$') {
        assert_eq!(
            out.as_deref(),
            Ok(text),
            "expansion changed text without `$`"
        );
    }
    // Nothing is known: references vanish, so the output is never longer than the input,
    // and so never fails.
    let none = user::expand(text, &|_| None).expect("expansion against nothing failed");
    assert!(none.len() <= text.len(), "expansion against nothing grew");
}

fn check_cli(text: &str) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    if let Ok((k, v)) = user::parse_cli_pair(text) {
        assert_eq!(format!("{k}={v}"), text);
    }
    for line in text.lines().take(8) {
        match user::parse_cli_pair(line) {
            Ok((k, v)) => {
                assert_eq!(format!("{k}={v}"), line);
                pairs.push((k, v));
            }
            Err(m) => assert!(!m.to_string().is_empty()),
        }
    }
    pairs
}

fn check_apply(text: &str, cli: &[(String, String)]) {
    let path = dotenv_path();
    if std::fs::write(path, text).is_err() {
        return;
    }
    let mut env = EnvSet::new();
    for name in ["HOME", "A", "DATABASE_URL", "LONG"] {
        if let Some(v) = lookup(name) {
            env.set(name, v, Layer::Platform, "fuzz");
        }
    }
    let files = [path.clone()];
    let answers = BTreeMap::new();
    let input = Input {
        app: app(),
        dotenv_files: &files,
        cli,
        shell: &lookup,
        answers: &answers,
    };
    let mut sources = Sources::default();
    // Every other input answers the prompt, so both the answered and the unanswered paths run.
    let answer = text.len().is_multiple_of(2);
    let mut prompt = |_v: &EnvVar| answer.then(|| "answered".to_string());
    if let Err(diags) = user::apply(&mut env, &input, &mut sources, &mut prompt) {
        for d in diags {
            let _ = d.render(&sources, false);
            let _ = d.short(&sources);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    check_dotenv(text);
    check_expand(text);
    let cli = check_cli(text);
    check_apply(text, &cli);
});
