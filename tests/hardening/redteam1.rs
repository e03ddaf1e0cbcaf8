//! Red-team round 1 (issue 11): holes found by attacking the trust model with crafted
//! repositories after it was built. Each test is the attack; the user trusted nothing unless
//! the test says so (fresh `HOME`, no STACKATO_LOCAL_TRUST, stdin not a terminal).

use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;

use crate::common::project::Project;
use crate::common::{home, untrusting, untrusting_bounded};

fn mkfifo(p: &Path) {
    nix::unistd::mkfifo(p, nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("mkfifo");
}

/// A Procfile that is a symlink out of the project: `allow` listed nothing (it did not read
/// the file) and recorded only the link, yet `run` read it through the link and ran its `web:`
/// line; a later edit of the outside file was never asked about.
#[test]
fn a_procfile_linked_out_of_the_project_cannot_be_allowed_and_does_not_run() {
    let p = Project::new(&[("stackato.yml", "name: linked\nmem: 64\n")]);
    let outside = p.root.join("outside");
    std::fs::create_dir(&outside).expect("mkdir");
    let mark = p.root.join("procfile-ran");
    std::fs::write(
        outside.join("Procfile"),
        format!("web: touch {}; sleep 1\n", mark.display()),
    )
    .expect("write");
    symlink("../outside/Procfile", p.app.join("Procfile")).expect("symlink");
    let h = home();
    let r = untrusting(&p.app, h.path(), &["allow"]);
    r.code(8);
    r.stderr_has("Procfile")
        .stderr_has("link out of the project");
    let r = untrusting(&p.app, h.path(), &["run", "--no-watch", "--exit-on-crash"]);
    r.code(8);
    assert!(!mark.exists(), "the Procfile's web line ran:\n{}", r.dump());
    // Even with --trust (the user's choice for this run), the link is not followed.
    let r = untrusting(
        &p.app,
        h.path(),
        &["--trust", "run", "--no-watch", "--exit-on-crash"],
    );
    assert!(!mark.exists(), "the Procfile's web line ran:\n{}", r.dump());
}

/// A local package reached through a directory symlinked out of the project (`-e ./pkg`,
/// `pkg -> /elsewhere`): its setup.py was recorded as a link and never hashed, so pip would
/// build whatever the outside directory holds, changed at will after `allow`.
#[test]
fn a_local_package_behind_a_directory_link_out_of_the_project_cannot_be_allowed() {
    let p = Project::new(&[
        (
            "stackato.yml",
            "name: pkglink\nmem: 64\nframework:\n  type: python\n",
        ),
        ("requirements.txt", "-e ./pkg\n"),
        ("wsgi.py", "def application(e, s):\n    return []\n"),
    ]);
    let outside = p.root.join("elsewhere");
    std::fs::create_dir(&outside).expect("mkdir");
    std::fs::write(outside.join("setup.py"), "import os\n").expect("write");
    symlink(&outside, p.app.join("pkg")).expect("symlink");
    let h = home();
    let r = untrusting(&p.app, h.path(), &["allow"]);
    r.code(8);
    r.stderr_has("pkg/setup.py");
}

/// A `.env` that is a symlink out of the project: `env` (no trust needed) read the outside
/// file and printed its values, and the hook exported them.
#[test]
fn env_does_not_read_a_dotenv_linked_out_of_the_project() {
    let p = Project::new(&[("stackato.yml", "name: dotlink\nmem: 64\n")]);
    std::fs::write(
        p.root.join("outside.env"),
        "OUTSIDE_VALUE=read-from-outside\n",
    )
    .expect("write");
    symlink("../outside.env", p.app.join(".env")).expect("symlink");
    let h = home();
    let r = untrusting(&p.app, h.path(), &["env"]);
    assert!(
        !r.stdout.contains("read-from-outside"),
        "env read a file outside the project:\n{}",
        r.dump()
    );
    r.code(4);
    r.stderr_has(".env").stderr_has("link out of the project");
}

/// A Procfile that is a FIFO: `env` (no trust needed) looked for its `web:` line for
/// `$PROCESSES_WEB` and blocked forever (a symlink to /dev/zero instead ate gigabytes).
#[test]
fn env_does_not_block_on_a_procfile_fifo() {
    let p = Project::new(&[("stackato.yml", "name: fifo\nmem: 64\n")]);
    mkfifo(&p.app.join("Procfile"));
    let h = home();
    let (code, out, err) = untrusting_bounded(&p.app, h.path(), &["env"]);
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("STACKATO_APP_NAME"), "{out}");
}

/// After `allow`, the Procfile replaced by a FIFO (the hook does not re-check the Procfile):
/// the shell hook blocked at every prompt of the user's shell.
#[test]
fn the_hook_does_not_block_on_a_procfile_replaced_by_a_fifo_after_allow() {
    let p = Project::new(&[
        (
            "stackato.yml",
            "name: fifo2\nmem: 64\nenv:\n  LURE: 'yes'\n",
        ),
        ("Procfile", "web: sleep 1\n"),
    ]);
    let h = home();
    untrusting(&p.app, h.path(), &["allow"]).code(0);
    std::fs::remove_file(p.app.join("Procfile")).expect("rm");
    mkfifo(&p.app.join("Procfile"));
    let (code, out, err) = untrusting_bounded(&p.app, h.path(), &["__hook-env", "bash"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("LURE="), "{out}\n{err}");
}

/// A `.env` far larger than any real one (a sparse file): `env` read all of it into memory.
#[test]
fn env_refuses_a_huge_dotenv_without_reading_it() {
    let p = Project::new(&[("stackato.yml", "name: huge\nmem: 64\n")]);
    let f = std::fs::File::create(p.app.join(".env")).expect("create");
    f.set_len(256 << 20).expect("sparse file");
    let h = home();
    let r = untrusting(&p.app, h.path(), &["env"]);
    r.code(4);
    r.stderr_has(".env").stderr_has("more than the");
}

/// A repository that ships `.stackato-local/venv/bin/ls`: the state directory is the tool's,
/// so the hook puts its `venv/bin` first on the user's PATH, and `allow` neither shows nor
/// records what is in it. After allowing a manifest with no commands at all, `ls` in the
/// user's interactive shell runs the repository's script.
#[test]
fn a_shipped_virtualenv_does_not_reach_the_users_path() {
    let p = Project::new(&[("stackato.yml", "name: planted\nmem: 64\n")]);
    let mark = p.root.join("planted-ls-ran");
    let bin = p.app.join(".stackato-local/venv/bin");
    std::fs::create_dir_all(&bin).expect("mkdir");
    std::fs::write(
        bin.join("ls"),
        format!("#!/bin/sh\ntouch {}\n", mark.display()),
    )
    .expect("write");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(bin.join("ls"), std::fs::Permissions::from_mode(0o755))
        .expect("chmod");
    let h = home();
    // `allow` records trust but says the shipped state directory is not used.
    untrusting(&p.app, h.path(), &["allow"])
        .code(8)
        .stderr_has("was not created by stackato-local on this machine")
        .stderr_has("venv");
    let script = format!(
        "eval \"$('{}' hook bash)\"\n_stackato_local_hook\nls >/dev/null\n",
        crate::common::bin()
    );
    let out = Command::new("bash")
        .args(["--norc", "--noprofile", "-c", &script])
        .current_dir(&p.app)
        .env("HOME", h.path())
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env_remove("XDG_DATA_HOME")
        .env_remove("STACKATO_LOCAL_TRUST")
        .env_remove("STACKATO_LOCAL_DIR")
        .env_remove("STACKATO_LOCAL_STAMP")
        .output()
        .expect("bash");
    assert!(
        !mark.exists(),
        "the repository's ls ran in the user's shell: {out:?}"
    );
}

/// A requirements file naming tens of thousands of local packages (a few hundred KB): `allow`
/// and the gate of `run` searched the list of recorded files linearly for each, and spent
/// hours (quadratic); such a project now cannot be trusted, said at once.
#[test]
fn allow_refuses_a_requirements_file_with_too_many_local_packages_at_once() {
    let lines: String = (0..20_000).map(|i| format!("-e ./p{i}\n")).collect();
    let p = Project::new(&[
        (
            "stackato.yml",
            "name: many\nmem: 64\nframework:\n  type: python\n",
        ),
        ("requirements.txt", &lines),
    ]);
    let h = home();
    let (code, out, err) = untrusting_bounded(&p.app, h.path(), &["allow"]);
    assert_eq!(code, Some(8), "{out}\n{err}");
    assert!(err.contains("requirements.txt"), "{err}");
    assert!(err.contains("too many to check"), "{err}");
}

/// `export` (no trust needed) wrote through a `stackato-export/cf` the repository shipped as a
/// link to the user's home: `~/.profile` appeared with the repository's pre-running hook in
/// it, run by the next login shell.
#[test]
fn export_does_not_write_through_a_shipped_link_out_of_the_project() {
    let p = Project::new(&[(
        "stackato.yml",
        "name: exported\nmem: 64\nhooks:\n  pre-running:\n    - touch /tmp/pwned-by-profile\n",
    )]);
    let h = home();
    std::fs::create_dir(p.app.join("stackato-export")).expect("mkdir");
    symlink(h.path(), p.app.join("stackato-export/cf")).expect("symlink");
    for format in ["cf", "procfile"] {
        if format == "procfile" {
            std::fs::remove_file(p.app.join("stackato-export/cf")).expect("rm");
            std::fs::remove_dir(p.app.join("stackato-export")).expect("rmdir");
            symlink(h.path(), p.app.join("stackato-export")).expect("symlink");
        }
        let r = untrusting(&p.app, h.path(), &["export", "--format", format]);
        r.code(64);
        r.stderr_has("symbolic link");
        let written: Vec<_> = std::fs::read_dir(h.path())
            .expect("home")
            .filter_map(Result::ok)
            .map(|e| e.file_name())
            .collect();
        assert!(
            written.is_empty(),
            "{format}: export wrote into the home directory: {written:?}\n{}",
            r.dump()
        );
    }
    // Where the user asks (--out), it writes.
    let out = tempfile::tempdir().expect("out");
    untrusting(
        &p.app,
        h.path(),
        &[
            "export",
            "--format",
            "cf",
            "--out",
            &out.path().display().to_string(),
        ],
    )
    .code(0);
    assert!(out.path().join(".profile").is_file());
}

/// `init` on a cloned repository without a manifest: a `.gitignore` or `package.json` that is
/// a FIFO blocked it forever, and a `.gitignore` linked to /dev/zero ate memory until the
/// kernel stopped it.
#[test]
fn init_does_not_block_or_exhaust_memory_on_special_files() {
    // (A link to /dev/zero is read by the same code; it is not tried here, where a regression
    // would eat the test machine's memory.)
    for (name, kind) in [(".gitignore", "fifo"), ("package.json", "fifo")] {
        let p = Project::new(&[
            ("server.js", "require('http');\n"),
            ("app.py", "print('x')\n"),
        ]);
        let f = p.app.join(name);
        if kind == "fifo" {
            mkfifo(&f);
        } else {
            symlink("/dev/zero", &f).expect("symlink");
        }
        let h = home();
        let (code, out, err) = untrusting_bounded(&p.app, h.path(), &["init"]);
        assert!(code.is_some(), "{name} {kind}: {out}\n{err}");
        assert!(
            p.app.join("stackato.yml").is_file(),
            "{name} {kind}: {out}\n{err}"
        );
    }
}

/// A repository whose `stackato.yml` is a link to the manifest of a project the user allowed
/// (a sibling clone, `../team-app/stackato.yml`): the hook found that project's record, checked
/// that project's files, then loaded this directory's `.env` (never allowed) into the user's
/// shell, and would have put this directory's `.stackato-local/venv/bin` on PATH.
#[test]
fn the_hook_does_not_load_a_project_whose_manifest_links_to_an_allowed_one() {
    let p = Project::new(&[("stackato.yml", "name: team\nmem: 64\nenv:\n  TEAM: 'yes'\n")]);
    let h = home();
    untrusting(&p.app, h.path(), &["allow"]).code(0);
    let lure = p.root.join("lure");
    std::fs::create_dir(&lure).expect("mkdir");
    symlink("../app/stackato.yml", lure.join("stackato.yml")).expect("symlink");
    std::fs::write(lure.join(".env"), "LURED=from-the-unallowed-dotenv\n").expect("write");
    let (code, out, err) = untrusting_bounded(&lure, h.path(), &["__hook-env", "bash"]);
    assert_eq!(code, Some(0), "{err}");
    assert!(!out.contains("LURED"), "{out}\n{err}");
    assert!(out.contains("is not allowed"), "{out}\n{err}");
    // The allowed project itself still loads.
    let (_, out, err) = untrusting_bounded(&p.app, h.path(), &["__hook-env", "bash"]);
    assert!(out.contains("TEAM="), "{out}\n{err}");
}

/// The same link, with `run`: the directory had no file of its own that the record lists, so
/// the gate found nothing changed and ran the allowed project's web command in this
/// directory, that is this repository's `app.py`.
#[test]
fn run_does_not_take_another_projects_record_for_a_manifest_linked_to_it() {
    let p = Project::new(&[(
        "stackato.yml",
        "name: team\nmem: 64\nprocesses:\n  web: python3 app.py\n",
    )]);
    let h = home();
    untrusting(&p.app, h.path(), &["allow"]).code(0);
    let lure = p.root.join("lure");
    std::fs::create_dir(&lure).expect("mkdir");
    symlink("../app/stackato.yml", lure.join("stackato.yml")).expect("symlink");
    let mark = p.root.join("lure-ran");
    std::fs::write(
        lure.join("app.py"),
        format!("open({:?}, 'w')\n", mark.display().to_string()),
    )
    .expect("write");
    let r = untrusting(&lure, h.path(), &["run", "--no-watch", "--exit-on-crash"]);
    r.code(8);
    assert!(!mark.exists(), "the lure's app.py ran:\n{}", r.dump());
}

/// `--find-links ./dist` in requirements.txt: pip builds the archives in `dist/` (their
/// setup.py runs), but they were neither listed nor recorded, so an archive swapped after
/// `allow` ran without asking again.
#[test]
fn archives_in_a_find_links_directory_are_covered_by_trust() {
    let p = Project::new(&[
        (
            "stackato.yml",
            "name: links\nmem: 64\nframework:\n  type: python\n",
        ),
        ("requirements.txt", "--find-links ./dist\nmypkg\n"),
        ("dist/mypkg-1.0.tar.gz", "first archive"),
    ]);
    let h = home();
    let r = untrusting(&p.app, h.path(), &["allow"]);
    r.code(0);
    r.stdout_has("./dist");
    untrusting(&p.app, h.path(), &["allow", "--list"]).code(0);
    // The archive swapped (or one added): the gate asks again.
    std::fs::write(p.app.join("dist/mypkg-1.0.tar.gz"), "swapped archive").expect("write");
    let r = untrusting(&p.app, h.path(), &["exec", "true"]);
    r.code(8);
    r.stderr_has("mypkg-1.0.tar.gz");
}
