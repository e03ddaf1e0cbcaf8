//! Issue 13 red-team findings on trust and security, reproduced the way an attacker would write
//! the repository: requirement names that are installer options, programs run before `allow`
//! steered by the repository's files, repository text that reaches the terminal raw, version
//! declarations that are not versions, and `allow` listings that must read as what runs.

use crate::common::*;

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

/// A FIFO: whoever opens it for reading waits for a writer that never comes.
fn fifo(path: &std::path::Path) {
    let c = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0, "mkfifo");
}

/// Before `allow`, `doctor`, `check` and `env` run version probes (python3, node, npm, …):
/// not in the project, whose files would steer them. Here the project's `venv.py` would be
/// imported by `python3 -c "import venv"` (it writes a file outside), and its `.npmrc` is a
/// FIFO that npm would block on (so npm's version would be missing from doctor's line).
#[test]
fn probes_before_allow_do_not_read_the_project() {
    if !require("python3") || !require("npm") {
        return;
    }
    let outside = tempfile::tempdir().unwrap();
    let marker = outside.path().join("imported");
    let venv_py = format!(
        "open({:?}, 'w').write('the project ran code in doctor')\n",
        marker.display().to_string()
    );
    let py = app(&[
        ("stackato.yml", "name: probes\nframework:\n  type: python\n"),
        ("wsgi.py", "application = None\n"),
        ("venv.py", &venv_py),
        ("ensurepip.py", &venv_py),
    ]);
    let home = home();
    for args in [&["doctor"][..], &["check"], &["env"]] {
        let _ = untrusting(py.path(), home.path(), args);
        assert!(
            !marker.exists(),
            "`{}` imported the project's venv.py",
            args.join(" ")
        );
    }

    let node = app(&[
        ("stackato.yml", "name: probes\n"),
        (
            "package.json",
            r#"{"name":"a","version":"1.0.0","scripts":{"start":"node s.js"}}"#,
        ),
    ]);
    fifo(&node.path().join(".npmrc"));
    let (code, out, err) = untrusting_bounded(node.path(), home.path(), &["doctor"]);
    let npm = out
        .lines()
        .find(|l| l.contains(" npm: "))
        .unwrap_or_else(|| panic!("no npm line:\n{out}\n{err}"));
    assert!(
        npm.split_whitespace()
            .any(|w| w.split('.').count() == 3 && w.split('.').all(|p| p.parse::<u32>().is_ok())),
        "npm was asked its version in the project (it read the project's .npmrc): {npm}\n{out}\n{err} ({code:?})"
    );
}

/// With pyenv's shim as `python3`, a project's `.python-version` picks the interpreter when
/// the shim runs in the project. Run in `/`, doctor's probe sees the user's own python3.
/// (pyenv is not a Debian package: skipped, loudly, where it is absent, CI included.)
#[test]
fn a_python_version_file_does_not_steer_the_pyenv_shim_before_allow() {
    let name = "a_python_version_file_does_not_steer_the_pyenv_shim_before_allow";
    let Some(py) = find_program("python3") else {
        return skip(&format!("{name}: python3 not installed"));
    };
    if !py.to_string_lossy().contains("/shims/") {
        return skip(&format!(
            "{name}: python3 ({}) is not a pyenv shim (pyenv is not in Debian; CI has none)",
            py.display()
        ));
    }
    let users = std::process::Command::new(&py)
        .arg("--version")
        .current_dir("/")
        .output()
        .expect("python3 --version");
    let users = String::from_utf8_lossy(&users.stdout)
        .trim()
        .trim_start_matches("Python ")
        .to_string();
    let root = pyenv_root();
    let other = std::fs::read_dir(std::path::Path::new(&root).join("versions"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .find(|v| *v != users && v.starts_with(|c: char| c.is_ascii_digit()));
    let Some(other) = other else {
        return skip(&format!("{name}: pyenv has no Python other than {users}"));
    };
    let dir = app(&[
        ("stackato.yml", "name: shim\nframework:\n  type: python\n"),
        ("wsgi.py", "application = None\n"),
        (".python-version", &format!("{other}\n")),
    ]);
    let home_dir = home();
    let r = untrusting_with_pyenv(dir.path(), home_dir.path());
    let line = r
        .lines()
        .find(|l| l.contains(" python3: "))
        .unwrap_or_else(|| panic!("no python3 line:\n{r}"));
    assert!(
        line.starts_with('✔') && line.contains(&users),
        "the project's .python-version ({other}) chose doctor's python3, not the user's {users}: {line}\n{r}"
    );
}

fn pyenv_root() -> String {
    std::env::var("PYENV_ROOT").unwrap_or_else(|_| {
        format!(
            "{}/.pyenv",
            std::env::var("HOME").expect("HOME of the test run")
        )
    })
}

/// `doctor` as a user who trusted nothing, with `PYENV_ROOT` kept (the fresh `HOME` has no
/// pyenv of its own). Its stdout.
fn untrusting_with_pyenv(dir: &std::path::Path, home: &std::path::Path) -> String {
    let root = pyenv_root();
    let out = cmd(dir)
        .env_remove("STACKATO_LOCAL_TRUST")
        .env_remove("XDG_DATA_HOME")
        .env("HOME", home)
        .env("PYENV_ROOT", root)
        .arg("doctor")
        .output()
        .expect("run stackato-local");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Repository text that `doctor` and `check` print (package.json's engines, a Gemfile's
/// `ruby` line, `.python-version`) reaches the terminal escaped: no ESC, no carriage return
/// that would rewrite the line into "ALL GOOD".
#[test]
fn doctor_and_check_show_repository_text_escaped() {
    let node = app(&[
        ("stackato.yml", "name: esc\n"),
        (
            "package.json",
            "{\"name\":\"e\",\"version\":\"1.0.0\",\n\"engines\":{\"node\":\"0.8.x \\u001b[2J\\u001b[31mALL GOOD\\r\"},\"scripts\":{\"start\":\"node s.js\"}}\n",
        ),
    ]);
    let ruby = app(&[
        ("stackato.yml", "name: esc\nframework:\n  type: sinatra\n"),
        ("Gemfile", "source 'x'\nruby '1.9.3\x1b[2KOK'\n"),
        ("config.ru", "run proc { [200, {}, ['hi']] }\n"),
    ]);
    let home = home();
    for dir in [node.path(), ruby.path()] {
        for args in [&["doctor"][..], &["check"]] {
            let r = untrusting(dir, home.path(), args);
            let all = format!("{}{}", r.stdout, r.stderr);
            assert!(
                !all.contains('\x1b') && !all.contains('\r'),
                "`{}` printed the repository's control characters raw:\n{}",
                args.join(" "),
                all.escape_debug()
            );
            assert!(
                all.contains("\\x1b["),
                "`{}` does not show the text escaped:\n{all}",
                args.join(" ")
            );
        }
    }
}

/// An app's files: (path, text).
type Files<'a> = &'a [(&'a str, &'a str)];

/// A version declaration that is not a version is no declaration: no made-up "Node.js 2"
/// (digits from a path) or "Ruby 2"; a warning names the file and line, and shows the text.
#[test]
fn declarations_that_are_not_versions_are_warned_about_not_guessed() {
    let cases: [(&str, Files, &str); 3] = [
        (
            "node",
            &[
                ("stackato.yml", "name: ver\n"),
                (
                    "package.json",
                    "{\"name\":\"v\",\"version\":\"1.0.0\",\n\"scripts\":{\"start\":\"node s.js\"},\n\"engines\":{\"node\":\"$(touch /tmp/red13-x2) 2\"}}\n",
                ),
            ],
            "cannot read a version from package.json:3 (`engines.node $(touch /tmp/red13-x2) 2`)",
        ),
        (
            "ruby",
            &[
                ("stackato.yml", "name: ver\nframework:\n  type: sinatra\n"),
                ("Gemfile", "source 'x'\nruby File.read('/etc/ruby2.7')\n"),
                ("config.ru", "run proc { [200, {}, ['hi']] }\n"),
            ],
            "cannot read a version from Gemfile:2 (`ruby File.read('/etc/ruby2.7')`)",
        ),
        (
            "python",
            &[
                ("stackato.yml", "name: ver\nframework:\n  type: python\n"),
                ("wsgi.py", "application = None\n"),
                (".python-version", "/usr/bin/python2.7\n"),
            ],
            "cannot read a version from .python-version:1 (`/usr/bin/python2.7`)",
        ),
    ];
    let home = home();
    for (what, files, warning) in cases {
        let dir = app(files);
        let r = untrusting(dir.path(), home.path(), &["check"]);
        r.stderr_has(warning);
        let d = untrusting(dir.path(), home.path(), &["doctor"]);
        let all = format!("{}{}{}", r.stderr, d.stdout, d.stderr);
        for made_up in ["asks for", "declares ("] {
            assert!(
                !all.contains(made_up),
                "{what}: a version was made up ({made_up:?}):\n{all}"
            );
        }
        assert!(d.stdout.contains(warning), "{what}: doctor:\n{}", d.stdout);
    }
}

/// `allow` lists what runs as it runs: cpanm's and pip's arguments each quoted as the argv
/// they are (not a shell line `cpanm Foo; touch …` that reads as two commands), "1 line"
/// in the singular, and a framework app's `.profile.d/*.sh`, which nothing sources (the
/// platform sourced it for buildpack apps only), not listed as "sourced before each process".
#[test]
fn allow_lists_installer_arguments_as_argv_and_only_what_is_sourced() {
    let dir = app(&[
        (
            "stackato.yml",
            "applications:\n  pl:\n    name: pl\n    framework:\n      type: perl\n    requirements:\n      cpan:\n        - \"Foo; touch /tmp/red13-cpan\"\n        - \"$(touch /tmp/red13-cpan2)\"\n  py:\n    name: py\n    framework:\n      type: python\n    requirements:\n      pip:\n        - \"six; touch /tmp/red13-pip\"\n",
        ),
        ("pl/app.psgi", "sub { [200, [], ['hi']] }\n"),
        ("py/wsgi.py", "application = None\n"),
        ("py/requirements.txt", "six\n"),
        ("py/.profile.d/x.sh", "export FROM_PROFILE_D=1\n"),
    ]);
    let home = home();
    let r = untrusting(dir.path(), home.path(), &["allow"]);
    r.code(0);
    r.stdout_has("pl installer: cpanm -- 'Foo; touch /tmp/red13-cpan' '$(touch /tmp/red13-cpan2)'");
    r.stdout_has("py installer: pip install -- 'six; touch /tmp/red13-pip'");
    r.stdout_has("py installer: pip install -r requirements.txt (1 line;");
    assert!(
        !r.stdout.contains(".profile.d"),
        "a framework app's .profile.d is listed, but nothing sources it:\n{}",
        r.stdout
    );
}

/// `run`'s staging lines name the requirements as shell words with control characters
/// escaped: a name holding an escape sequence does not reach the terminal raw.
#[test]
fn staging_lines_show_requirement_names_escaped() {
    if !require("python3") {
        return;
    }
    let dir = app(&[
        (
            "stackato.yml",
            "name: esc\nframework:\n  type: python\nrequirements:\n  pip:\n    - \"six\\e[2J; touch x\"\n",
        ),
        ("wsgi.py", "application = None\n"),
    ]);
    let r = run(dir.path(), &["run", "--exit-on-crash"]);
    let all = format!("{}{}", r.stdout, r.stderr);
    let line = all
        .lines()
        .find(|l| l.contains("-----> pip install"))
        .unwrap_or_else(|| panic!("no pip line:\n{}", all.escape_debug()));
    assert!(
        line.contains("pip install 'six\\x1b[2J; touch x'"),
        "{}",
        line.escape_debug()
    );
}
