//! What the old PHP apps of the red team (items 11, 12, 13) needed of the web server `run`
//! picks: PHP's built-in server with its router (`templates/php-router.php`) applies the simple
//! `.htaccess` rules (DirectoryIndex, a RewriteRule with a capture, a 301 redirect) and names
//! the lines it does not apply; without a front-controller rule an unknown path is a 404 and
//! `.ht*` files are refused, as under Apache. Apache with mod_php (where installed) answers the
//! same. A post-staging hook writing `$STACKATO_APP_ROOT/apache/php/timezone.ini` takes effect
//! under both. Real php, real apache2: a missing one is a loud SKIP (a failure in CI).

use std::path::Path;
use std::time::Duration;

use crate::common::http::{http_exchange, http_get};
use crate::common::project::Project;
use crate::common::*;

const START: Duration = Duration::from_secs(180);
const CTRL_C: Duration = Duration::from_secs(30);
const BUILTIN: (&str, &str) = ("STACKATO_LOCAL_PHP_SERVER", "builtin");

/// A project holding a copy of `tests/fixtures/php-htaccess`.
fn htaccess_fixture() -> Project {
    let p = Project::new(&[]);
    let from = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/php-htaccess");
    for e in std::fs::read_dir(&from).expect("fixture") {
        let e = e.expect("entry");
        if e.file_type().expect("type").is_dir() {
            let d = p.app.join(e.file_name());
            std::fs::create_dir_all(&d).expect("mkdir");
            for f in std::fs::read_dir(e.path()).expect("sub") {
                let f = f.expect("entry");
                std::fs::copy(f.path(), d.join(f.file_name())).expect("copy");
            }
        } else {
            std::fs::copy(e.path(), p.app.join(e.file_name())).expect("copy");
        }
    }
    p
}

/// Apache and mod_php installed; else a loud SKIP.
fn apache_with_mod_php() -> bool {
    if !require_all(&["php", "apache2"]) {
        return false;
    }
    let has_module = std::fs::read_dir("/usr/lib/apache2/modules").is_ok_and(|rd| {
        rd.filter_map(Result::ok).any(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.starts_with("libphp") && n.ends_with(".so")
        })
    });
    has_module || require("libapache2-mod-php")
}

/// What both servers answer for the fixture's `.htaccess` and hook.
fn answers_like_apache(port: u16, dump: &dyn Fn() -> String) {
    // DirectoryIndex home.php; the hook's timezone.ini read by PHP.
    assert_eq!(
        http_get(port, "/"),
        (200, "home.php, timezone Asia/Tokyo\n".to_string()),
        "{}",
        dump()
    );
    // RewriteRule ^api/(.*)$ api.php?path=$1 [L,QSA]
    assert_eq!(
        http_get(port, "/api/x/y?q=1"),
        (200, "api path=x/y q=1\n".to_string()),
        "{}",
        dump()
    );
    // RewriteRule ^old$ /new [R=301,L]
    let (head, _) = http_exchange(port, "/old", Duration::from_secs(30));
    assert!(head.contains(" 301 "), "{head}\n{}", dump());
    assert!(
        head.lines()
            .any(|l| l.to_ascii_lowercase().starts_with("location:") && l.ends_with("/new")),
        "{head}"
    );
    // No front controller: an unknown path is a 404; .ht* files are refused.
    assert_eq!(http_get(port, "/nope").0, 404, "{}", dump());
    assert_eq!(http_get(port, "/.htaccess").0, 403, "{}", dump());
    assert_eq!(
        http_get(port, "/sub/page.txt"),
        (200, "static text\n".to_string())
    );
    // As on the platform (no document-root): stackato.yml is web-visible.
    assert_eq!(http_get(port, "/stackato.yml").0, 200);
}

#[test]
fn builtin_server_applies_simple_htaccess_rules_and_names_the_rest() {
    if !require("php") {
        return;
    }
    let p = htaccess_fixture();
    let mut s = p.run_env(&[], &[BUILTIN]);
    let port = s.ready("web.0", START);
    s.assert_err_has("served by PHP's built-in server (php -S)");
    s.assert_err_has("does not apply these .htaccess lines");
    s.assert_err_has(".htaccess:6: Header set X-Powered-By stackato");
    answers_like_apache(port, &|| s.dump());
    s.interrupt(CTRL_C);
}

#[test]
fn apache_answers_the_same_and_reads_the_hooks_ini() {
    if !apache_with_mod_php() {
        return;
    }
    let p = htaccess_fixture();
    let mut s = p.run(&[]);
    let port = s.ready("web.0", START);
    s.assert_err_has("served by Apache with mod_php");
    answers_like_apache(port, &|| s.dump());
    s.interrupt(CTRL_C);
}

#[test]
fn builtin_server_without_a_front_controller_404s_like_apache() {
    if !require("php") {
        return;
    }
    let p = Project::new(&[
        ("stackato.yml", "name: nofc\nframework:\n  type: php\n"),
        ("index.php", "<?php echo \"index\\n\";\n"),
        (".htpasswd", "user:secret\n"),
    ]);
    let mut s = p.run_env(&[], &[BUILTIN]);
    let port = s.ready("web.0", START);
    assert_eq!(
        http_get(port, "/"),
        (200, "index\n".to_string()),
        "{}",
        s.dump()
    );
    assert_eq!(http_get(port, "/nope").0, 404);
    assert_eq!(http_get(port, "/about").0, 404);
    assert_eq!(http_get(port, "/.htpasswd").0, 403);
    s.interrupt(CTRL_C);
}

#[test]
fn export_says_its_php_command_has_no_router() {
    let p = htaccess_fixture();
    let r = run(&p.app, &["export", "--format", "procfile"]);
    r.code(0);
    let all = format!("{}{}", r.stdout, r.stderr);
    assert!(
        all.contains("built-in server without stackato-local's router"),
        "{all}"
    );
}
