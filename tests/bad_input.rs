//! Broken, odd and hostile manifests: each must be refused with exit 2 and a `file:line:col`
//! the user can jump to, quickly, without a panic or a stack overflow.

use crate::common::*;
use std::io::Read;
use std::process::Stdio;

/// `check --format short` of a `stackato.yml` holding `text`; asserts it is refused (exit 2).
#[track_caller]
fn refused(text: &str) -> Run {
    let r = check(yml(text).path());
    r.code(2);
    r
}

/// [`refused`], with a hang guard: a `check` that does not end is killed and fails the test.
#[track_caller]
fn refused_quickly(text: &str) -> Run {
    let d = yml(text);
    let mut c = cmd(d.path());
    c.args(["check", "--format", "short"]);
    let r = run_deadline(c, "check --format short");
    r.code(2);
    r
}

#[test]
fn malformed_yaml_is_exit_2_with_a_position() {
    refused("name: a\nenv: [a, b\nmem: 1\n")
        .diag("stackato.yml:3:", &["error:", "YAML syntax error"]);

    refused("name: a\n  bad: indent\n").diag("stackato.yml:2:", &["error:", "YAML syntax error"]);
}

#[test]
fn unquoted_colon_in_a_value_hints_at_quoting() {
    let d = yml("name: a\ncommand: echo a: b\n");
    let r = run(d.path(), &["check"]);
    r.code(2);
    r.stderr_has("stackato.yml:2:").stderr_has("quote");
}

#[test]
fn tab_indentation_is_refused_with_a_hint_about_tabs() {
    let d = yml("name: a\nenv:\n\tFOO: bar\n");
    let r = run(d.path(), &["check"]);
    r.code(2);
    r.stderr_has("stackato.yml:3:").stderr_has("tabs");
    check(d.path()).diag("stackato.yml:3:", &["error:"]);
}

#[test]
fn duplicate_keys_show_both_lines() {
    let d = yml("name: a\nmem: 1\nname: b\n");
    let r = run(d.path(), &["check"]);
    r.code(2);
    r.stderr_has("duplicate key `name`");
    r.stderr_has("stackato.yml:3:1");
    // The snippet shows the first definition too.
    r.stderr_has("1 | name: a").stderr_has("3 | name: b");
    r.stderr_has("first defined here");
    check(d.path()).diag("stackato.yml:3:1: error:", &["duplicate key", "name"]);
}

#[test]
fn duplicate_keys_in_an_inherited_file_point_into_it() {
    let d = app(&[
        ("stackato.yml", "name: a\ninherit: base.yml\n"),
        ("base.yml", "env:\n  X: 1\n  X: 2\n"),
    ]);
    let r = check(d.path());
    r.code(2);
    r.diag("base.yml:3:3: error:", &["duplicate key", "X"]);
}

#[test]
fn instances_that_are_not_a_number() {
    refused("name: a\ninstances: many\n").diag(
        "stackato.yml:2:12: error:",
        &["Expected integer value for key \"instances\"", "many"],
    );
}

#[test]
fn memory_with_an_mb_suffix_suggests_m() {
    let d = yml("name: a\nmem: 256MB\n");
    let r = run(d.path(), &["check"]);
    r.code(2);
    r.stderr_has("stackato.yml:2:6").stderr_has("256MB");
    r.stderr_has("`256M`");
    check(d.path()).diag("stackato.yml:2:6: error:", &["memory", "256MB"]);

    let r = refused("name: a\nmem: 1.5\ndisk: 3.5GB\n");
    r.diag("stackato.yml:2:6: error:", &["memory", "1.5"]);
    r.diag("stackato.yml:3:7: error:", &["disk_quota", "3.5GB"]);
}

#[test]
fn hook_entry_parsed_as_a_mapping_is_an_error() {
    let d = yml("name: a\nhooks:\n  pre-running:\n    - echo \"a: b\"\n    - echo ok\n");
    let r = run(d.path(), &["check"]);
    r.code(2);
    r.stderr_has("hooks:pre-running").stderr_has("quote");
    check(d.path()).diag(
        "stackato.yml:4:7: error:",
        &["element of sequence key \"hooks:pre-running\"", "mapping"],
    );
}

#[test]
fn cron_as_a_mapping_is_an_error() {
    refused("name: a\ncron:\n  daily: backup.sh\n")
        .diag("stackato.yml:3:3: error:", &["cron", "mapping"]);
}

#[test]
fn unknown_symbol() {
    refused("name: a\nurl: ${nope}.example.com\n").diag(
        "stackato.yml:2:6: error:",
        &["Unknown symbol in manifest: nope"],
    );

    refused("name: a\nurl: x${}y\n").diag("stackato.yml:2:7: error:", &["Unknown symbol"]);
}

#[test]
fn missing_inherit_file() {
    let d = yml("name: a\nmem: 1G\ninherit:\n  - base.yml\n  - gone/missing.yml\n");
    std::fs::write(d.path().join("base.yml"), "instances: 2\n").expect("write base");
    let r = check(d.path());
    r.code(2);
    r.diag("stackato.yml:5:5: error:", &["gone/missing.yml"]);
    assert_eq!(r.short_lines("error").len(), 1, "{}", r.dump());
}

#[test]
fn cyclic_inherit_a_b_a() {
    let d = app(&[
        ("stackato.yml", "name: a\ninherit: a.yml\n"),
        ("a.yml", "inherit: b.yml\n"),
        ("b.yml", "inherit: a.yml\n"),
    ]);
    let r = check(d.path());
    r.code(2);
    r.diag("b.yml:1:10: error:", &["cycle"]);
}

#[test]
fn no_name() {
    refused("mem: 256M\nenv:\n  A: b\n").diag(
        "stackato.yml:1:1: error:",
        &["The stackato application has no name"],
    );

    refused("name: ~\n").diag("stackato.yml:1:7: error:", &["name"]);

    refused("name: [a, b]\n").diag("stackato.yml:1:7: error:", &["name"]);
}

#[test]
fn name_with_a_dot() {
    refused("name: my.app\n").diag("stackato.yml:1:7: error:", &["my.app"]);
}

#[test]
fn empty_file() {
    let d = yml("");
    let r = check(d.path());
    r.code(2);
    r.diag("stackato.yml:1:1: error:", &["empty"]);
    run(d.path(), &["config", "--json"]).code(2);
}

#[test]
fn file_with_only_comments() {
    refused("# name: a\n# mem: 1G\n\n").diag("stackato.yml:1:1: error:", &["empty"]);
}

#[test]
fn top_level_list() {
    refused("- name: a\n- name: b\n").diag("stackato.yml:1:1: error:", &["mapping", "sequence"]);

    refused("just some text\n").diag("stackato.yml:1:1: error:", &["mapping", "scalar"]);
}

#[test]
fn non_utf8_bytes() {
    let d = app_bytes(&[("stackato.yml", b"name: a\nenv:\n  X: caf\xe9\n")]);
    let r = check(d.path());
    r.code(2);
    let line = r.diag("stackato.yml:3:", &["error:", "UTF-8"]);
    assert!(line.contains("line 3"), "{line}");

    let r = run(d.path(), &["check"]);
    r.code(2).stderr_has("UTF-8");
}

#[test]
fn alias_bomb_is_refused_quickly() {
    let mut s = String::from("name: bomb\na0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..12 {
        let refs = vec![format!("*a{}", i - 1); 10].join(", ");
        s.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
    }
    s.push_str("env:\n  BOOM: ${a11}\n");
    refused_quickly(&s).diag("stackato.yml:", &["error:", "alias"]);
}

#[test]
fn alias_bomb_of_mappings_is_refused_quickly() {
    let mut s =
        String::from("name: bomb\nm0: &m0 {a: 1, b: 2, c: 3, d: 4, e: 5, f: 6, g: 7, h: 8}\n");
    for i in 1..12 {
        let refs = (0..8)
            .map(|k| format!("k{k}: *m{}", i - 1))
            .collect::<Vec<_>>()
            .join(", ");
        s.push_str(&format!("m{i}: &m{i} {{{refs}}}\n"));
    }
    refused_quickly(&s).diag("stackato.yml:", &["error:", "alias"]);
}

#[test]
fn nesting_5000_deep_is_refused_without_overflow() {
    let cases = [
        (
            "flow sequence",
            format!("name: deep\nx: {}{}\n", "[".repeat(5000), "]".repeat(5000)),
        ),
        (
            "flow mapping",
            format!(
                "name: deep\nx: {}1{}\n",
                "{a: ".repeat(5000),
                "}".repeat(5000)
            ),
        ),
        (
            "block sequence",
            format!("name: deep\nx:\n{}1\n", "- ".repeat(5000)),
        ),
        ("unclosed", format!("name: deep\nx: {}\n", "[".repeat(5000))),
    ];
    for (what, text) in cases {
        let d = yml(&text);
        let r = check(d.path());
        r.code(2);
        let line = r.diag("stackato.yml:", &["error:"]);
        assert!(
            line.contains("nesting") || line.contains("recursion"),
            "{what}: the message says why: {line}"
        );
        r.stderr_lacks("overflow");
    }
}

#[test]
fn oversized_file_is_refused() {
    let mut s = String::from("name: big\nenv:\n");
    let filler = "x".repeat(1000);
    for i in 0..5000 {
        s.push_str(&format!("  V{i}: {filler}\n"));
    }
    refused(&s).diag("stackato.yml:1:1: error:", &["bytes"]);
}

#[test]
fn check_prints_every_problem_of_a_file() {
    let d = yml(concat!(
        "name: a\n",
        "instances: many\n",
        "mem: 256MB\n",
        "env:\n  X:\n    default: 1\n    bogus: 2\n",
        "servces: {}\n",
    ));
    let r = check(d.path());
    r.code(2);
    let errors = r.short_lines("error");
    assert_eq!(errors.len(), 3, "three errors, all of them:\n{}", r.dump());
    r.diag("stackato.yml:2:12: error:", &["instances"]);
    r.diag("stackato.yml:3:6: error:", &["memory"]);
    r.diag("stackato.yml:7:5: error:", &["env:X:bogus"]);
    assert_eq!(r.short_lines("warning").len(), 1, "{}", r.dump());
    r.stderr_has("3 errors");

    // The human format shows all three too, each with its place.
    let r = run(d.path(), &["check"]);
    r.code(2);
    for at in ["stackato.yml:2:12", "stackato.yml:3:6", "stackato.yml:7:5"] {
        r.stderr_has(at);
    }
}

#[test]
fn problems_are_listed_in_file_order() {
    let d = yml("name: a\nurl: ${zzz}\ninstances: lots\nmem: huge\n");
    let r = check(d.path());
    r.code(2);
    let lines: Vec<u32> = r
        .short_lines("error")
        .iter()
        .filter_map(|l| l.split(':').nth(1)?.parse().ok())
        .collect();
    assert_eq!(lines, [2, 3, 4], "{}", r.dump());
}

#[test]
fn color_never_has_no_escapes_and_always_has_them() {
    let d = yml("name: a\ninstances: many\nservces: x\n");
    let never = run(d.path(), &["--color", "never", "check"]);
    never.code(2);
    assert!(
        !never.stderr.contains('\u{1b}') && !never.stdout.contains('\u{1b}'),
        "no ESC with --color never\n{}",
        never.dump()
    );
    let always = run(d.path(), &["--color", "always", "check"]);
    always.code(2);
    assert!(
        always.stderr.contains('\u{1b}'),
        "ESC sequences with --color always\n{}",
        always.dump()
    );
    // Not a terminal and no flag: plain.
    let auto = run(d.path(), &["check"]);
    assert!(!auto.stderr.contains('\u{1b}'), "{}", auto.dump());
    // NO_COLOR does not override an explicit --color always.
    let forced = run_with(
        d.path(),
        &["--color", "always", "check"],
        &[("NO_COLOR", "1")],
    );
    assert!(forced.stderr.contains('\u{1b}'), "{}", forced.dump());
}

#[test]
fn crlf_line_endings_keep_positions() {
    let d = yml("name: a\r\ninstances: x\r\ncommand: run it\r\n");
    let r = check(d.path());
    r.code(2);
    r.diag("stackato.yml:2:12: error:", &["instances"]);
    let d = yml("name: a\r\ncommand: run it\r\n");
    assert_eq!(only_app(d.path())["command"], "run it");
}

#[test]
fn utf8_bom_is_accepted() {
    let d = app_bytes(&[("stackato.yml", b"\xef\xbb\xbfname: a\ninstances: x\n")]);
    let r = check(d.path());
    r.code(2);
    r.diag("stackato.yml:2:12: error:", &["instances"]);
    let d = app_bytes(&[("stackato.yml", b"\xef\xbb\xbfname: a\n")]);
    assert_eq!(only_app(d.path())["name"], "a");
}

#[test]
fn columns_count_characters_not_bytes() {
    refused("name: a\nenv:\n  X: \"\u{e9}\u{e9} ${nope}\"\n")
        .diag("stackato.yml:3:10: error:", &["nope"]);
}

#[test]
fn config_json_into_a_closed_pipe_does_not_panic() {
    // Output larger than a pipe buffer, so the write must hit the closed pipe.
    let mut s = String::from("name: big\nenv:\n");
    for i in 0..3000 {
        s.push_str(&format!(
            "  VARIABLE_{i}: some fairly long value number {i}\n"
        ));
    }
    let d = yml(&s);
    let mut child = cmd(d.path())
        .args(["config", "--json"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    drop(child.stdout.take());
    let mut err = String::new();
    if let Some(mut e) = child.stderr.take() {
        let _ = e.read_to_string(&mut err);
    }
    let status = child.wait().expect("wait");
    assert!(
        !err.contains("panicked") && status.code() != Some(101),
        "a closed stdout must not make the tool panic: {status:?}\n{err}"
    );
}
