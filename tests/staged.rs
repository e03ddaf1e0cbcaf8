//! The staged copy, end to end with the real binary: `run` stages and runs in a copy of the
//! upload and never writes into the checkout (a git-initialised app stays clean through hooks
//! that delete, move, append to and symlink files, a restage and a second run); files
//! `ignores:` drops are absent from `$HOME`; each instance has its own copy; an edit while
//! watching reaches the copy and the app; links reaching outside the app stop the run as a
//! push stopped, unless `--copy-unsafe-links`; `exec` runs in the checkout unless `--staged`;
//! `--in-place` runs in the checkout.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::common::http::http_get;
use crate::common::project::Project;
use crate::common::session::Stream;
use crate::common::*;

const CTRL_C: Duration = Duration::from_secs(30);

/// Serves `version.txt` (read at each request) on `$PORT`; writes `started` marks outside the
/// app so a test can count starts.
const SERVE_PY: &str = r#"
import os
from http.server import BaseHTTPRequestHandler, HTTPServer

class H(BaseHTTPRequestHandler):
    def do_GET(self):
        try:
            body = open(self.path.lstrip("/") or "version.txt", "rb").read()
            self.send_response(200)
        except OSError as e:
            body = str(e).encode()
            self.send_response(404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass

HTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
"#;

fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .expect("git runs");
    assert!(out.status.success(), "git {args:?}: {out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A git-initialised project with everything committed.
fn git_project(files: &[(&str, &str)]) -> Project {
    let p = Project::new(files);
    git(&p.app, &["init", "-q"]);
    git(&p.app, &["add", "-A"]);
    git(&p.app, &["commit", "-q", "-m", "init"]);
    p
}

fn assert_clean(p: &Project, when: &str) {
    let status = git(
        &p.app,
        &[
            "status",
            "--porcelain",
            "--ignored",
            "--untracked-files=all",
        ],
    );
    // Our state dir is the only thing allowed (ignored by its own .gitignore).
    let left: Vec<&str> = status
        .lines()
        .filter(|l| {
            !l[3..]
                .trim_start_matches('"')
                .starts_with(".stackato-local/")
        })
        .collect();
    assert!(
        left.is_empty(),
        "{when}: the checkout changed:\n{}",
        left.join("\n")
    );
}

/// The home of instance `i` of `app`, generation `g`.
fn instance_home(p: &Project, app: &str, g: u64, i: u32) -> std::path::PathBuf {
    p.app
        .join(format!(".stackato-local/apps/{app}/g{g}/{i}/app"))
}

#[test]
fn hooks_that_delete_move_append_and_link_leave_a_git_checkout_clean_run_after_run() {
    let p = git_project(&[
        (
            "stackato.yml",
            r#"name: clean
hooks:
  pre-staging:
    - echo appended >> data.txt
  post-staging:
    - rm -fr public/files
    - ln -s /tmp public/files
    - mkdir -p src && mv node_modules src/node_modules
    - cp data.txt copy.txt
    - echo staged >> @ROOT@/staged
processes:
  web: python3 serve.py
"#,
        ),
        ("serve.py", SERVE_PY),
        ("version.txt", "v1\n"),
        ("data.txt", "original\n"),
        ("public/files/keep.txt", "tracked\n"),
        ("node_modules/x.js", "module.exports = 1\n"),
        // A Python app: a virtualenv and pip run at staging (their caches must not land here).
        ("requirements.txt", "# nothing to install\n"),
    ]);
    let once = |args: &[&str], when: &str| {
        let mut s = p.run(args);
        let port = s.ready("web.0", Duration::from_secs(120));
        assert_eq!(
            http_get(port, "/data.txt"),
            (200, "original\nappended\n".into())
        );
        assert_eq!(http_get(port, "/src/node_modules/x.js").0, 200, "{when}");
        s.interrupt(CTRL_C);
        assert_clean(&p, when);
    };
    once(&[], "after the first run");
    once(&["--restage"], "after a restage");
    once(&[], "after a second run");
    // Each staging started from a fresh copy: the hooks succeeded every time and appended once.
    assert_eq!(p.read("staged"), "staged\nstaged\n");
    let home = instance_home(&p, "clean", 2, 0);
    assert_eq!(
        std::fs::read_to_string(home.join("data.txt")).unwrap(),
        "original\nappended\n"
    );
    assert!(
        std::fs::symlink_metadata(home.join("public/files"))
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert_eq!(
        std::fs::read_to_string(p.app.join("public/files/keep.txt")).unwrap(),
        "tracked\n"
    );
}

#[test]
fn a_file_listed_in_ignores_is_absent_from_the_apps_home() {
    let p = Project::new(&[
        (
            "stackato.yml",
            "name: ign\nignores: [secret.txt, 'local/']\nprocesses:\n  web: python3 serve.py\n",
        ),
        ("serve.py", SERVE_PY),
        ("version.txt", "v1\n"),
        ("secret.txt", "only on my laptop\n"),
        ("local/notes.txt", "mine\n"),
    ]);
    let mut s = p.run(&["--no-watch"]);
    let port = s.ready("web.0", SHORT);
    assert_eq!(http_get(port, "/version.txt"), (200, "v1\n".into()));
    assert_eq!(http_get(port, "/secret.txt").0, 404);
    assert_eq!(http_get(port, "/local/notes.txt").0, 404);
    s.interrupt(CTRL_C);
    assert!(p.app.join("secret.txt").is_file());
}

#[test]
fn each_instance_has_its_own_copy_and_what_it_writes_is_told_once() {
    let p = Project::new(&[
        (
            "stackato.yml",
            "name: inst\ninstances: 2\nprocesses:\n  web: touch \"upload-$PORT\" && exec python3 serve.py\n",
        ),
        ("serve.py", SERVE_PY),
        ("version.txt", "v1\n"),
    ]);
    let mut s = p.run(&["--no-watch"]);
    let a = s.ready("web.0", SHORT);
    let b = s.ready("web.1", SHORT);
    // Each instance sees its own upload and not the other's: the "uploads saved on local
    // disk" bug of a platform with several containers.
    assert_eq!(http_get(a, &format!("/upload-{a}")).0, 200);
    assert_eq!(http_get(a, &format!("/upload-{b}")).0, 404);
    assert_eq!(http_get(b, &format!("/upload-{b}")).0, 200);
    assert_eq!(http_get(b, &format!("/upload-{a}")).0, 404);
    let err = s.interrupt(CTRL_C);
    assert!(!p.app.join(format!("upload-{a}")).exists());
    assert_eq!(
        err.matches("wrote into its directory").count(),
        2,
        "one note per instance:\n{err}"
    );
    assert!(err.contains("the next restage, which drops them"), "{err}");
}

#[test]
fn an_edit_while_watching_reaches_the_staged_copy_then_the_app() {
    let p = Project::new(&[
        (
            "stackato.yml",
            "name: edit\nprocesses:\n  web: python3 serve.py\n",
        ),
        ("serve.py", SERVE_PY),
        ("version.txt", "v1\n"),
        ("gone.txt", "here\n"),
    ]);
    let mut s = p.run(&[]);
    let port = s.ready("web.0", SHORT);
    assert_eq!(http_get(port, "/version.txt"), (200, "v1\n".into()));
    p.edit("version.txt", "v2\n");
    let port = s.ready_nth("web.0", 2, SHORT);
    assert_eq!(http_get(port, "/version.txt"), (200, "v2\n".into()));
    std::fs::remove_file(p.app.join("gone.txt")).unwrap();
    let port = s.ready_nth("web.0", 3, SHORT);
    assert_eq!(http_get(port, "/gone.txt").0, 404);
    s.interrupt(CTRL_C);
    assert!(!instance_home(&p, "edit", 1, 0).join("gone.txt").exists());
    assert!(
        !instance_home(&p, "edit", 1, 0)
            .join("version.txt")
            .is_symlink()
    );
}

/// An edit made after the upload was copied and before the watcher is up (here: during a slow
/// staging hook) is not lost: once watching, the checkout is compared with the copy, and the
/// edit is synced in and the app restarted.
#[test]
fn an_edit_during_staging_reaches_the_app_once_it_runs() {
    let p = Project::new(&[
        (
            "stackato.yml",
            "name: early\nhooks:\n  post-staging:\n  - sleep 2\nprocesses:\n  web: python3 serve.py\n",
        ),
        ("serve.py", SERVE_PY),
        ("version.txt", "v1\n"),
    ]);
    let mut s = p.run(&[]);
    s.wait_for(Stream::Out, "copied the upload", SHORT);
    p.edit("version.txt", "v2\n");
    s.wait_for(Stream::Err, "restarting web.0", SHORT);
    // The restart may come before or after the first start was ready: the next ready line.
    let err = s.stderr();
    let at = err.find("restarting web.0").unwrap_or(0);
    let before = err[..at].matches("==> web.0 ready at").count();
    let port = s.ready_nth("web.0", before + 1, SHORT);
    assert_eq!(
        http_get(port, "/version.txt"),
        (200, "v2\n".into()),
        "{}",
        s.dump()
    );
    s.interrupt(CTRL_C);
}

#[test]
fn a_link_reaching_outside_the_app_stops_the_run_like_a_push_unless_copy_unsafe_links() {
    let p = Project::new(&[
        (
            "stackato.yml",
            "name: links\nprocesses:\n  web: python3 serve.py\n",
        ),
        ("serve.py", SERVE_PY),
        ("version.txt", "v1\n"),
    ]);
    std::fs::write(p.root.join("outside.txt"), "from outside\n").unwrap();
    std::os::unix::fs::symlink(p.root.join("outside.txt"), p.app.join("out.txt")).unwrap();
    std::os::unix::fs::symlink("version.txt", p.app.join("inside.txt")).unwrap();
    let mut s = p.run(&["--no-watch"]);
    s.expect_exit(6, SHORT);
    s.assert_err_has(
        "Can't deploy application containing links 'out.txt' that reach outside its root",
    );
    s.assert_err_has("--copy-unsafe-links");
    assert!(!s.stderr().contains("inside.txt"), "{}", s.dump());

    let mut s = p.run(&["--no-watch", "--copy-unsafe-links"]);
    let port = s.ready("web.0", SHORT);
    assert_eq!(http_get(port, "/out.txt"), (200, "from outside\n".into()));
    assert_eq!(http_get(port, "/inside.txt"), (200, "v1\n".into()));
    s.interrupt(CTRL_C);
    // The outside link brought a copy of what it points to (writing to it cannot reach the
    // original); the inside one is a link to the copy's own file.
    let home = instance_home(&p, "links", 2, 0);
    assert!(
        std::fs::symlink_metadata(home.join("out.txt"))
            .unwrap()
            .is_file()
    );
    assert_eq!(
        std::fs::read_link(home.join("inside.txt")).unwrap(),
        Path::new("version.txt")
    );
}

#[test]
fn exec_runs_in_the_checkout_and_with_staged_in_the_instance_copy() {
    let p = Project::new(&[
        (
            "stackato.yml",
            "name: ex\nhooks:\n  post-staging:\n    - echo made > made-by-staging.txt\nprocesses:\n  web: python3 serve.py\n",
        ),
        ("serve.py", SERVE_PY),
        ("version.txt", "v1\n"),
    ]);
    // Nothing staged yet.
    let r = p.cmd(&["exec", "--staged", "--", "pwd"]);
    r.code(64).stderr_has("has no staged copy yet");
    let r = p.cmd(&["exec", "--", "pwd"]);
    r.code(0);
    assert_eq!(r.stdout.trim(), p.app.display().to_string());

    let mut s = p.run(&["--no-watch"]);
    s.ready("web.0", SHORT);
    s.interrupt(CTRL_C);
    let r = p.cmd(&[
        "exec",
        "--staged",
        "--",
        "sh",
        "-c",
        "pwd; cat made-by-staging.txt",
    ]);
    r.code(0);
    assert_eq!(
        r.stdout,
        format!("{}\nmade\n", instance_home(&p, "ex", 1, 0).display())
    );
    assert!(!p.app.join("made-by-staging.txt").exists());
}

#[test]
fn in_place_stages_and_runs_in_the_checkout() {
    let p = Project::new(&[
        (
            "stackato.yml",
            "name: inplace\nhooks:\n  post-staging:\n    - echo made > made-by-staging.txt\nprocesses:\n  web: python3 serve.py\n",
        ),
        ("serve.py", SERVE_PY),
        ("version.txt", "v1\n"),
    ]);
    let mut s = p.run(&["--no-watch", "--in-place"]);
    let port = s.ready("web.0", SHORT);
    assert_eq!(
        http_get(port, "/made-by-staging.txt"),
        (200, "made\n".into())
    );
    s.interrupt(CTRL_C);
    assert!(p.app.join("made-by-staging.txt").is_file());
    assert!(!p.app.join(".stackato-local/apps/inplace/g1").exists());
}
