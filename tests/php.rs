//! PHP apps: Composer at staging (`tests/fixtures/php-composer/`: a dependency from a `path`
//! repository, a `post-install-cmd` script; `allow` shows both and the record covers
//! composer.json, composer.lock and the local package's composer.json), and the web server
//! `run` picks: Apache with mod_php when installed (the `.htaccess` of
//! `tests/fixtures/php-front/` applied by real mod_rewrite), PHP's built-in server when forced
//! with `STACKATO_LOCAL_PHP_SERVER=builtin`; an app writing into its own directory under Apache
//! as root; `--in-place` instances beyond the first loading the `.ini` files staging wrote. The real binary, real php, composer and apache2: a
//! missing one is a loud SKIP, or a failure with `STACKATO_LOCAL_REQUIRE_SERVICES=1` (CI).

use std::path::Path;
use std::time::Duration;

use crate::common::http::http_get;
use crate::common::project::Project;
use crate::common::*;

const START: Duration = Duration::from_secs(180);
const CTRL_C: Duration = Duration::from_secs(30);

/// A project holding a copy of `tests/fixtures/<name>`.
fn fixture(name: &str) -> Project {
    let p = Project::new(&[]);
    let from = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    copy_tree(&from, &p.app, &|_, n| n == "vendor");
    p
}

/// Apache and mod_php installed (Debian's apache2, libapache2-mod-php); else a loud SKIP.
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
    // Not a program: `require` reports it missing, loudly, in the test's name.
    has_module || require("libapache2-mod-php")
}

/// Built-in server forced: what this test checks does not depend on Apache being installed.
const BUILTIN: (&str, &str) = ("STACKATO_LOCAL_PHP_SERVER", "builtin");

#[test]
fn composer_installs_a_path_repository_package_and_runs_the_install_script() {
    if !require_all(&["php", "composer"]) {
        return;
    }
    let p = fixture("php-composer");
    let mut s = p.run_env(&[], &[BUILTIN]);
    let port = s.ready("web.0", START);
    s.assert_out_has("composer install --no-interaction --no-dev --prefer-dist");
    assert_eq!(
        http_get(port, "/"),
        (
            200,
            "Hello, composer, from acme/greeter\npost-install-cmd ran\n".to_string()
        ),
        "{}",
        s.dump()
    );
    // Composer worked in the staged copy: the checkout has no vendor/ and no script output.
    assert!(!p.app.join("vendor").exists());
    assert!(!p.app.join("installed-by-composer.txt").exists());
    s.interrupt(CTRL_C);
}

#[test]
fn allow_shows_composer_and_its_scripts_and_covers_the_lock_and_local_packages() {
    let p = fixture("php-composer");
    let home = tempfile::tempdir().unwrap();
    let r = untrusting(&p.app, home.path(), &["run"]);
    r.code(8)
        .stderr_has("composer install --no-interaction --no-dev --prefer-dist")
        .stderr_has("composer script post-install-cmd")
        .stderr_has("installed-by-composer.txt")
        .stderr_has("packages/greeter (copied into vendor/");
    untrusting(&p.app, home.path(), &["allow"]).code(0);
    // Each of these decides what Composer installs or runs: a change asks again.
    for (rel, name) in [
        ("composer.lock", "composer.lock"),
        (
            "packages/greeter/composer.json",
            "packages/greeter/composer.json",
        ),
        ("composer.json", "composer.json"),
    ] {
        let f = p.app.join(rel);
        let before = std::fs::read_to_string(&f).unwrap();
        std::fs::write(&f, format!("{before}\n")).unwrap();
        let (code, _, err) = untrusting_bounded(&p.app, home.path(), &["run"]);
        assert_eq!(code, Some(8), "{rel}: {err}");
        assert!(err.contains(name), "{rel}: {err}");
        std::fs::write(&f, before).unwrap();
    }
}

#[test]
fn apache_with_mod_php_applies_the_htaccess_rewrite() {
    if !apache_with_mod_php() {
        return;
    }
    let p = fixture("php-front");
    let mut s = p.run(&[]);
    let port = s.ready("web.0", START);
    s.assert_err_has("served by Apache with mod_php");
    // A clean URL reaches index.php through real mod_rewrite (the fixture's .htaccess rule
    // sets no PATH_INFO, unlike the built-in server's router).
    assert_eq!(
        http_get(port, "/hello/world"),
        (
            200,
            "Hello, world! (via index.php, PATH_INFO )\n".to_string()
        ),
        "{}",
        s.dump()
    );
    assert_eq!(http_get(port, "/"), (200, "php-front home\n".to_string()));
    assert_eq!(
        http_get(port, "/css/site.css"),
        (200, "body { color: #333; }\n".to_string())
    );
    assert_eq!(http_get(port, "/nope").0, 404);
    // Apache keeps .htaccess to itself.
    assert_eq!(http_get(port, "/.htaccess").0, 403);
    // Its configuration and router live outside the app.
    assert!(!p.app.join("apache2.conf").exists());
    s.interrupt(CTRL_C);
}

#[test]
fn forced_builtin_server_still_serves_the_front_controller() {
    if !require("php") {
        return;
    }
    let p = fixture("php-front");
    let mut s = p.run_env(&[], &[BUILTIN]);
    let port = s.ready("web.0", START);
    s.assert_err_has("served by PHP's built-in server (php -S)");
    s.assert_err_has("STACKATO_LOCAL_PHP_SERVER=builtin");
    assert_eq!(
        http_get(port, "/hello/world"),
        (
            200,
            "Hello, world! (via index.php, PATH_INFO /hello/world)\n".to_string()
        ),
        "{}",
        s.dump()
    );
    s.interrupt(CTRL_C);
}

#[test]
fn composer_app_under_apache_reads_the_environment() {
    if !(require("composer") && apache_with_mod_php()) {
        return;
    }
    let p = fixture("php-composer");
    let mut s = p.run(&[]);
    let port = s.ready("web.0", START);
    s.assert_err_has("served by Apache with mod_php");
    assert_eq!(
        http_get(port, "/"),
        (
            200,
            "Hello, composer, from acme/greeter\npost-install-cmd ran\n".to_string()
        ),
        "{}",
        s.dump()
    );
    // The app's environment reaches $_SERVER (PassEnv), as on the platform.
    assert_eq!(
        http_get(port, "/env.php?name=VCAP_APP_PORT"),
        (200, format!("{port}\n")),
        "{}",
        s.dump()
    );
    s.interrupt(CTRL_C);
}

/// An app writing into its own directory: a file beside index.php and one in a new subdir.
const WRITER: &str = r#"<?php
$a = @file_put_contents(__DIR__ . "/upload.txt", "uploaded");
@mkdir(__DIR__ . "/cache");
$b = @file_put_contents(__DIR__ . "/cache/page.html", "cached");
echo ($a === false ? "upload refused" : "upload written"), ", ", ($b === false ? "cache refused" : "cache written"), "\n";
"#;

#[test]
fn apache_lets_the_app_write_into_its_own_directory() {
    if !apache_with_mod_php() {
        return;
    }
    let p = Project::new(&[
        ("stackato.yml", "name: writer\nframework:\n  type: php\n"),
        ("index.php", WRITER),
    ]);
    let mut s = p.run(&["--no-watch"]);
    let port = s.ready("web.0", START);
    s.assert_err_has("served by Apache with mod_php");
    assert_eq!(
        http_get(port, "/"),
        (200, "upload written, cache written\n".to_string()),
        "{}",
        s.dump()
    );
    // In the instance's copy, not in the checkout.
    let copy = p.app.join(".stackato-local/apps/writer/g1/0/app");
    assert_eq!(
        std::fs::read_to_string(copy.join("upload.txt"))
            .ok()
            .as_deref(),
        Some("uploaded")
    );
    assert_eq!(
        std::fs::read_to_string(copy.join("cache/page.html"))
            .ok()
            .as_deref(),
        Some("cached")
    );
    assert!(!p.app.join("upload.txt").exists());
    s.interrupt(CTRL_C);
}

#[test]
fn in_place_instances_all_load_the_ini_files_staging_wrote() {
    if !require("php") {
        return;
    }
    let yml = "name: inis\ninstances: 2\nframework:\n  type: php\nhooks:\n  post-staging:\n    - echo 'date.timezone = \"Pacific/Auckland\"' > $STACKATO_APP_ROOT/apache/php/timezone.ini\n";
    let php = "<?php echo ini_get('date.timezone'), \"\\n\";\n";
    let mut servers = vec![Some(BUILTIN)];
    if apache_with_mod_php() {
        servers.push(None);
    }
    for server in servers {
        let p = Project::new(&[("stackato.yml", yml), ("index.php", php)]);
        let env: Vec<(&str, &str)> = server.into_iter().collect();
        let mut s = p.run_env(&["--in-place", "--no-watch"], &env);
        for (n, web) in [(1, "web.0"), (1, "web.1")] {
            let port = s.ready_nth(web, n, START);
            assert_eq!(
                http_get(port, "/"),
                (200, "Pacific/Auckland\n".to_string()),
                "{web} ({server:?})\n{}",
                s.dump()
            );
        }
        s.interrupt(CTRL_C);
    }
}

#[test]
fn apache_still_serves_after_a_change_restarts_it() {
    if !apache_with_mod_php() {
        return;
    }
    let p = Project::new(&[
        ("stackato.yml", "name: changes\nframework:\n  type: php\n"),
        ("index.php", "<?php echo \"v1\\n\";\n"),
    ]);
    let mut s = p.run(&[]);
    let port = s.ready("web.0", START);
    assert_eq!(
        http_get(port, "/"),
        (200, "v1\n".to_string()),
        "{}",
        s.dump()
    );
    // Syncing the change into the instance's copy must keep the workers' way to it.
    p.write_all(&[("added.php", "<?php echo \"added\\n\";\n")]);
    let port = s.ready_nth("web.0", 2, START);
    assert_eq!(
        http_get(port, "/added.php"),
        (200, "added\n".to_string()),
        "{}",
        s.dump()
    );
    assert_eq!(
        http_get(port, "/"),
        (200, "v1\n".to_string()),
        "{}",
        s.dump()
    );
    s.interrupt(CTRL_C);
}
