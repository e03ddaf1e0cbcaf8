//! Issue 13 red-team findings on trust and security, reproduced the way an attacker would write
//! the repository: requirement names that are installer options, programs run before `allow`
//! steered by the repository's files, repository text that reaches the terminal raw, version
//! declarations that are not versions, and `allow` listings that must read as what runs.
#![allow(clippy::disallowed_methods)] // tests drive the real binary from outside

mod common;

use common::*;

// --- trust and security

/// A requirement name starting with `-` would be an option of pip, cpanm or dpkg-query
/// (`--target=/elsewhere` writes outside the project after `allow`): `check` refuses each one
/// at its file:line:col with the manifest-error exit code, and `run` stops before staging.
#[test]
fn requirement_names_that_are_options_are_refused_where_written() {
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().join("pwned-target");
    let yml = format!(
        "name: opts\nframework:\n  type: python\nrequirements:\n  pip:\n    - six\n    - \"--target={}\"\n  pypm: \"-r /etc/passwd\"\n  cpan:\n    - \"--mirror=http://evil.example/\"\n  ppm:\n    - \" -l/tmp/x\"\n  ubuntu:\n    - \"--admindir=/tmp\"\n",
        target.display()
    );
    let dir = app(&[("stackato.yml", &yml), ("wsgi.py", "application = None\n")]);
    let r = check(dir.path());
    r.code(2);
    let errors = r.short_lines("error");
    for (line, col, name) in [
        (7, 7, "requirements:pip"),
        (8, 9, "requirements:pypm"),
        (10, 7, "requirements:cpan"),
        (12, 7, "requirements:ppm"),
        (14, 7, "requirements:ubuntu"),
    ] {
        let at = format!("stackato.yml:{line}:{col}: error: \"{name}\" lists");
        assert!(
            errors.iter().any(|l| l.contains(&at)),
            "no error at {at}:\n{}",
            r.dump()
        );
    }
    assert_eq!(errors.len(), 5, "{}", r.dump());
    // `six` alone is a name: no error for it.
    assert!(!r.dump().contains("`six`"), "{}", r.dump());

    let run = run(dir.path(), &["run", "--exit-on-crash"]);
    run.code(2);
    assert!(!target.exists(), "pip wrote outside the project");
}
