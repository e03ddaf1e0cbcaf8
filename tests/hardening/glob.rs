//! Hardening tests: glob. An `ignores:` pattern with a dozen `*` and a `/` against a tree of long
//! file names (item 15): the backtracking matcher took minutes per name, and `run` hung while
//! hashing what would be pushed. Now `run` stages, starts and serves as usual. The deadline is
//! a liveness bound (an old build never gets there), not a speed assertion.

use std::time::Duration;

use crate::common::http::http_get;
use crate::common::project::Project;
use crate::common::session::Stream;

/// Generous: staging this app takes well under a second when matching is linear.
const LIVENESS: Duration = Duration::from_secs(60);

#[test]
fn a_pathological_ignores_pattern_does_not_hang_run() {
    let a40 = "a".repeat(40);
    let a120 = "a".repeat(120);
    let deep = format!("{a40}/{a120}/{a40}");
    let manifest = r#"name: globbed
hooks:
  post-staging:
    - echo staged > @ROOT@/staged
processes:
  web: python3 -m http.server $PORT --bind 127.0.0.1
ignores:
  - "a*a*a*a*a*a*a*a*a*a*a*a*b/x"
  - "a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*c/"
"#;
    let top_file = format!("{a40}a");
    let long_file = format!("{a120}.txt");
    let deep_file = format!("{deep}/{a120}");
    let p = Project::new(&[
        ("stackato.yml", manifest),
        ("index.html", "served\n"),
        (top_file.as_str(), "x\n"),
        (long_file.as_str(), "x\n"),
        (deep_file.as_str(), "x\n"),
    ]);
    let mut s = p.run(&["--no-watch"]);
    s.wait_for(Stream::Err, "==> staged globbed", LIVENESS);
    let port = s.ready("web.0", LIVENESS);
    assert_eq!(
        std::fs::read_to_string(p.root.join("staged")).unwrap_or_default(),
        "staged\n"
    );
    let (status, body) = http_get(port, "/index.html");
    assert_eq!((status, body.as_str()), (200, "served\n"), "{}", s.dump());
    s.interrupt(LIVENESS);
}
