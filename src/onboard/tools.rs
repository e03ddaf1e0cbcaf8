//! Asking the machine about programs: finding one on `PATH`, and running one briefly (with a
//! time limit, stdin closed, in `/` so that no file of the project steers it) to read its
//! version.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// How long a `--version` may take.
const TIMEOUT: Duration = Duration::from_secs(15);

/// A program on `PATH` only (as a build tool such as pip finds a compiler).
pub(crate) use crate::programs::on_path;

/// What a finished program printed.
#[derive(Debug, Clone)]
pub(crate) struct Ran {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Run `program args…` to completion (killed after a time limit); `None` when it could not be
/// started or took too long.
pub(crate) fn run(program: &Path, args: &[&str]) -> Option<Ran> {
    let mut c = Command::new(program);
    c.args(args);
    // Not in the (perhaps untrusted) project: a version manager's shim reads its
    // `.python-version`/`.tool-versions`, npm its `.npmrc`, `python -c` imports its modules.
    c.current_dir("/");
    let out = crate::process::output_within(&mut c, crate::process::Tie::Probe, TIMEOUT).ok()??;
    Some(Ran {
        success: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// The first non-empty line a program prints for `args` (stdout, else stderr: some print
/// their version there).
pub(crate) fn first_line(program: &Path, args: &[&str]) -> Option<String> {
    let r = run(program, args)?;
    let pick = |s: &str| {
        s.lines()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .map(str::to_string)
    };
    pick(&r.stdout).or_else(|| pick(&r.stderr))
}

/// The first version number in a line: `postgres (PostgreSQL) 15.18 (Debian …)` → `15.18`,
/// `Redis server v=7.0.15 sha=…` → `7.0.15`, `… Ver 10.11.19-MariaDB …` → `10.11.19`.
pub(crate) fn version_number(line: &str) -> Option<String> {
    line.split(|c: char| c.is_whitespace() || matches!(c, '=' | '(' | ')' | ',' | '/'))
        .map(|w| w.trim_start_matches(['v', 'V']))
        .find_map(|w| {
            let v: String = w
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.')
                .collect();
            let v = v.trim_end_matches('.');
            (v.contains('.') && v.starts_with(|c: char| c.is_ascii_digit())).then(|| v.to_string())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions() {
        for (line, v) in [
            (
                "postgres (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)",
                "15.18",
            ),
            (
                "/usr/sbin/mariadbd  Ver 10.11.19-MariaDB-0+deb12u1 for debian-linux-gnu",
                "10.11.19",
            ),
            (
                "Redis server v=7.0.15 sha=00000000:0 malloc=jemalloc-5.3.0",
                "7.0.15",
            ),
            ("memcached 1.6.18", "1.6.18"),
            ("Python 3.11.7", "3.11.7"),
            ("v18.19.0", "18.19.0"),
            (
                "ruby 3.1.2p20 (2022-04-12 revision 4491bb740a) [x86_64-linux-gnu]",
                "3.1.2",
            ),
        ] {
            assert_eq!(version_number(line).as_deref(), Some(v), "{line}");
        }
        assert_eq!(version_number("no version here"), None);
    }

    #[test]
    fn runs_with_output() {
        let sh = on_path("sh").expect("sh on PATH");
        let r = run(&sh, &["-c", "echo out; echo err >&2; exit 3"]).unwrap();
        assert!(!r.success);
        assert_eq!(r.stdout, "out\n");
        assert_eq!(r.stderr, "err\n");
        assert_eq!(
            first_line(&sh, &["-c", "echo; echo 'x 1.2'"]).as_deref(),
            Some("x 1.2")
        );
    }
}
