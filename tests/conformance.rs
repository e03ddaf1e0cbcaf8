//! The language-neutral stackato-cli conformance suite (../shared/conformance/stackato-cli),
//! run against the real binary. All 49 cases of the manifest group pass today; keep it so.
//! The upload group (65 cases: `config --json --upload-manifest API APP`, the client's
//! `debug-upload-manifest`) must pass at least 95%; the failing cases are printed with why.

use std::path::{Path, PathBuf};
use std::process::Command;

fn suite_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance/stackato-cli")
}

/// The suite's runner and a python3 to run it, or `None` after printing why not.
fn runner() -> Option<PathBuf> {
    let dir = suite_dir();
    let script = dir.join("run.py");
    if !script.is_file() {
        eprintln!(
            "\n!!!!!!!! SKIPPED conformance test: {} is missing !!!!!!!!\n",
            script.display()
        );
        return None;
    }
    let python = Command::new("python3").arg("--version").output();
    if !python.is_ok_and(|o| o.status.success()) {
        eprintln!("\n!!!!!!!! SKIPPED conformance test: python3 is not available !!!!!!!!\n");
        return None;
    }
    Some(script)
}

fn run_suite(extra: &[&str]) -> Option<(Option<i32>, String)> {
    let script = runner()?;
    let out = Command::new("python3")
        .arg(&script)
        .args(extra)
        .current_dir(suite_dir())
        .env("STACKATO_LOCAL_BIN", env!("CARGO_BIN_EXE_stackato-local"))
        .env_remove("STACKATO_TARGET")
        .output()
        .expect("run python3 run.py");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some((out.status.code(), text))
}

fn assert_all_pass(extra: &[&str]) {
    let Some((code, text)) = run_suite(extra) else {
        return;
    };
    let last = text
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("");
    assert_eq!(
        last.trim(),
        "49 passed, 0 failed",
        "conformance run {extra:?} did not pass every case:\n{text}"
    );
    assert_eq!(code, Some(0), "run.py exit status\n{text}");
}

#[test]
fn manifest_group_passes_in_the_app_directory() {
    assert_all_pass(&[]);
}

#[test]
fn manifest_group_passes_from_outside_with_path_and_manifest() {
    assert_all_pass(&[
        "--cwd",
        "outside",
        "--cmd",
        "{bin} config --json --path {path} --manifest {manifest}",
    ]);
}

#[test]
fn manifest_group_passes_with_another_target() {
    // The target-dependent cases (urls, hostdomain) follow STACKATO_TARGET.
    assert_all_pass(&["--target", "https://api.stackato-test.example.net"]);
}

/// The `N passed, M failed` summary line of a run.
fn summary(text: &str) -> Option<(u32, u32)> {
    let last = text.lines().rev().find(|l| !l.trim().is_empty())?;
    let (p, rest) = last.trim().split_once(" passed, ")?;
    let f = rest.strip_suffix(" failed")?;
    Some((p.parse().ok()?, f.parse().ok()?))
}

/// Run the upload group and require at least 95% of its 65 cases, printing every failing case
/// (`FAIL <case>: <why>`) in any event.
fn assert_upload_group(extra: &[&str], expected_total: u32) {
    let mut args = vec!["--group", "upload"];
    args.extend_from_slice(extra);
    let Some((_, text)) = run_suite(&args) else {
        return;
    };
    let failing: Vec<&str> = text.lines().filter(|l| l.starts_with("FAIL ")).collect();
    if !failing.is_empty() {
        eprintln!(
            "upload group {extra:?}: {} failing case(s):\n{}",
            failing.len(),
            failing.join("\n")
        );
    }
    let Some((passed, failed)) = summary(&text) else {
        panic!("run.py printed no summary line:\n{text}");
    };
    assert_eq!(
        passed + failed,
        expected_total,
        "the upload group should have {expected_total} cases here:\n{text}"
    );
    assert!(
        passed * 100 >= expected_total * 95,
        "upload group {extra:?}: {passed}/{expected_total} passed, below 95%:\n{}",
        failing.join("\n")
    );
}

#[test]
fn upload_group_passes_in_the_app_directory() {
    assert_upload_group(&[], 65);
}

#[test]
fn upload_group_passes_with_another_target() {
    assert_upload_group(&["--target", "https://api.stackato-test.example.net"], 65);
}

#[test]
fn upload_group_passes_from_outside_with_path_and_manifest() {
    // The error case has no manifest to name, so only the 64 ok cases run this way.
    assert_upload_group(
        &[
            "--only",
            "upload-v*",
            "--cwd",
            "outside",
            "--upload-cmd",
            "{bin} config --json --path {path} --manifest {manifest} --upload-manifest {api} {app}",
        ],
        64,
    );
}
