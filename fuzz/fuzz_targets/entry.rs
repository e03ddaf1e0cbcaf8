//! Fuzz the real entry points a cloned repository reaches before the user allowed it: `run`,
//! `exec` and the shell hook's evaluation (`__hook-env bash`), in this process, on a project
//! made of arbitrary files (manifest, `.env`, Procfile, requirements.txt, package.json,
//! crontab, cpanfile, Gemfile), some of them symlinks to hostile targets (`/dev/zero`, a FIFO,
//! a file outside the project).
//!
//! Every process the tool starts goes through `stackato_local::process` (clippy's
//! `disallowed-methods` keeps it so); its spawn hook panics here, so a case fails the moment
//! anything would be started before trust. Each case runs twice: first with an empty trust
//! store, then after `allow` and a change to one of the files trust covers. Input format: the
//! files' contents separated by the byte 0xFE, in the order of [`FILES`]; a content of the form
//! `@link:N` makes that file a symlink to the N-th entry of [`LINKS`]. The last part's first
//! byte (if any) picks which file the second round changes.

#![no_main]

use std::ffi::OsString;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::sync::Once;

use libfuzzer_sys::fuzz_target;

/// The files a case writes, in input order.
const FILES: &[&str] = &[
    "stackato.yml",
    ".env",
    "Procfile",
    "requirements.txt",
    "package.json",
    "crontab",
    "cpanfile",
    "Gemfile",
];

/// Symlink targets a case may use (relative to the project; `..` leaves it).
const LINKS: &[&str] = &[
    "/dev/zero",
    "fifo",
    "../outside.txt",
    "/etc/passwd",
    ".",
    "..",
    "stackato.yml",
    "/proc/self/mem",
];

/// Exit codes a refusal or an input error may give; anything else (0, 70 for a bug) fails.
const EXPECTED: &[i32] = &[2, 3, 4, 8, 64, 74];

fn setup() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        stackato_local::api::process::set_spawn_hook(|cmd| {
            panic!("spawned before trust: {cmd:?}");
        });
        // No terminal: a prompt must never wait for an answer.
        if let Ok(null) = std::fs::File::open("/dev/null") {
            // SAFETY: dup2 on valid descriptors; fd 0 is replaced atomically.
            unsafe {
                libc::dup2(null.as_raw_fd(), 0);
            }
        }
        // SAFETY: set once, before any thread of ours reads the environment.
        unsafe {
            std::env::remove_var("STACKATO_LOCAL_TRUST");
            std::env::set_var("NO_COLOR", "1");
        }
    });
}

fn write_case(root: &Path, data: &[u8]) -> Option<usize> {
    let app = root.join("app");
    std::fs::create_dir_all(&app).ok()?;
    std::fs::write(root.join("outside.txt"), b"outside").ok()?;
    let _ = nix_mkfifo(&app.join("fifo"));
    let parts: Vec<&[u8]> = data.split(|b| *b == 0xFE).collect();
    for (name, content) in FILES.iter().zip(parts.iter()) {
        let path = app.join(name);
        if let Some(n) = content.strip_prefix(b"@link:") {
            let i = n.first().map_or(0, |b| *b as usize % LINKS.len());
            let _ = std::os::unix::fs::symlink(LINKS[i], &path);
        } else {
            std::fs::write(&path, content).ok()?;
        }
    }
    let pick = parts
        .get(FILES.len())
        .and_then(|p| p.first())
        .map_or(0, |b| *b as usize % FILES.len());
    Some(pick)
}

fn nix_mkfifo(p: &Path) -> std::io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(p.as_os_str().as_bytes())?;
    // SAFETY: a valid NUL-terminated path.
    if unsafe { libc::mkfifo(c.as_ptr(), 0o600) } == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

fn tool(app: &Path, args: &[&str]) -> i32 {
    let mut v: Vec<OsString> = vec!["stackato-local".into(), "-C".into(), app.into()];
    v.extend(args.iter().map(OsString::from));
    stackato_local::api::run_with_args(v)
}

/// The three entry points; none may start anything, and each ends with a known code.
fn untrusted_round(app: &Path, round: &str) {
    for args in [
        &["run", "--no-watch", "--db", "sqlite"][..],
        &["exec", "--", "true"][..],
    ] {
        let code = tool(app, args);
        assert!(
            EXPECTED.contains(&code),
            "{round}: {args:?} ended with {code}"
        );
    }
    // The hook evaluates the directory it is in; it prints code and always exits 0. The
    // fuzzer's own paths are relative: go back where it was.
    let Ok(back) = std::env::current_dir() else {
        return;
    };
    if std::env::set_current_dir(app).is_ok() {
        let code = stackato_local::api::run_with_args(vec![
            "stackato-local".into(),
            "__hook-env".into(),
            "bash".into(),
        ]);
        assert_eq!(code, 0, "{round}: the hook ended with {code}");
        let _ = std::env::set_current_dir(&back);
    }
}

fuzz_target!(|data: &[u8]| {
    setup();
    let Ok(root) = tempfile::Builder::new().prefix("entry-fuzz-").tempdir() else {
        return;
    };
    let store = root.path().join("xdg");
    let _ = std::fs::create_dir_all(&store);
    // SAFETY: the fuzzer runs cases one after another on this thread.
    unsafe {
        std::env::set_var("XDG_DATA_HOME", &store);
        std::env::set_var("HOME", root.path());
    }
    let Some(pick) = write_case(root.path(), data) else {
        return;
    };
    let app = root.path().join("app");
    untrusted_round(&app, "before allow");

    // Allowed, then one covered file changes: nothing may run until it is allowed again.
    if tool(&app, &["allow"]) == 0 {
        let path = app.join(FILES[pick]);
        let is_file = std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file());
        let changed = if is_file {
            std::fs::OpenOptions::new()
                .append(true)
                .open(&path)
                .and_then(|mut f| std::io::Write::write_all(&mut f, b"\n# changed\n"))
                .is_ok()
        } else {
            let _ = std::fs::remove_file(&path);
            std::fs::write(&path, b"# new\n").is_ok()
        };
        if changed {
            untrusted_round(&app, "after a change");
        }
    }
});
