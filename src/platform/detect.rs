//! The one framework detection (spec §2.3, the 2.x client's `detect_from_dir` order) used when
//! `framework` is absent: by `init` (which refines it), `check`, `doctor`, `run` (through the
//! web table) and `export`. It only reads the app's files (regular files inside the app
//! directory, never through a link); it runs before `allow`, so nothing of the app runs.

use std::path::Path;

/// Files larger than this are read only up to it (dependency lists and settings are small).
const MAX_READ: u64 = 1024 * 1024;

/// The Node start files, in the order the platform tried them.
pub(crate) const NODE_START_FILES: [&str; 4] = ["server.js", "app.js", "index.js", "main.js"];

/// A framework found from the app's files, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Detected {
    /// A Stackato framework id (`rails3`, `rack`, `sinatra`, `perl`, `node`, `php`, `python`).
    pub framework: &'static str,
    /// What suggested it ("found config.ru").
    pub why: String,
}

fn detected(framework: &'static str, why: impl Into<String>) -> Option<Detected> {
    Some(Detected {
        framework,
        why: why.into(),
    })
}

/// The framework of the app in `dir`, in the platform client's order (§2.3): Go (a buildpack
/// app), Rails, Rack, a WAR (java_web), Sinatra, PSGI, Node, PHP, then Python's `wsgi.py`.
/// `None`: no framework this tool knows (the platform offered `standalone` there). Play,
/// Clojure, EARs, Erlang and .NET are not detected here.
pub(crate) fn framework(dir: &Path) -> Option<Detected> {
    if let Some(why) = go_app(dir) {
        return detected("buildpack", why);
    }
    if is_file(dir, "config/environment.rb") {
        return detected("rails3", "found config/environment.rb");
    }
    if gemfile_gems(dir).iter().any(|g| g == "rails") {
        return detected("rails3", "Gemfile lists rails");
    }
    if is_file(dir, "config/application.rb") && is_file(dir, "config.ru") {
        return detected("rails3", "found config/application.rb and config.ru");
    }
    if is_file(dir, "config.ru") {
        return detected("rack", "found config.ru");
    }
    if let Some(w) = top_files(dir).into_iter().find(|f| f.ends_with(".war")) {
        return detected("java_web", format!("found {w}"));
    }
    if let Some(f) = sinatra_main(dir) {
        return detected("sinatra", format!("{f} requires sinatra"));
    }
    if is_file(dir, "app.psgi") {
        return detected("perl", "found app.psgi");
    }
    if let Some(f) = node_start_file(dir) {
        return detected("node", format!("found {f}"));
    }
    if npm_start(dir).is_some() {
        return detected("node", "package.json has scripts.start");
    }
    if let Some(f) = node_main(dir) {
        return detected("node", format!("package.json's main is {f}"));
    }
    let php = php_files(dir);
    if let Some(first) = php.first() {
        let f = php.iter().find(|f| *f == "index.php").unwrap_or(first);
        return detected("php", format!("found {f}"));
    }
    if is_file(dir, "wsgi.py") {
        return detected("python", "found wsgi.py");
    }
    None
}

/// Why the app in `dir` is a Go app (a buildpack app on the platform): its `go.mod` or its
/// first top-level `*.go` file.
pub(crate) fn go_app(dir: &Path) -> Option<String> {
    if is_file(dir, "go.mod") {
        return Some("found go.mod".into());
    }
    top_files(dir)
        .into_iter()
        .find(|f| f.ends_with(".go"))
        .map(|f| format!("found {f}"))
}

/// Whether `dir/rel` is a regular file (a link is not followed: it may point out of the app).
pub(crate) fn is_file(dir: &Path, rel: &str) -> bool {
    std::fs::symlink_metadata(dir.join(rel)).is_ok_and(|m| m.file_type().is_file())
}

/// A text file of the app (lossy UTF-8, at most 1 MiB; a regular file, read without blocking,
/// see [`crate::fsx`]); `None` when it cannot be read.
pub(crate) fn read(dir: &Path, rel: &str) -> Option<String> {
    if !is_file(dir, rel) {
        return None;
    }
    let bytes = crate::fsx::read_capped(&dir.join(rel), true, MAX_READ).ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// Names of the regular files directly in `dir`, sorted.
fn top_files(dir: &Path) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<String> = rd
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .collect();
    v.sort();
    v
}

/// The first Node start file the app has (server.js, app.js, index.js, main.js).
pub(crate) fn node_start_file(dir: &Path) -> Option<String> {
    NODE_START_FILES
        .into_iter()
        .find(|f| is_file(dir, f))
        .map(str::to_string)
}

/// `scripts.start` of the app's package.json, when it has one.
pub(crate) fn npm_start(dir: &Path) -> Option<String> {
    let pkg: serde_json::Value = serde_json::from_str(&read(dir, "package.json")?).ok()?;
    let s = pkg.get("scripts")?.get("start")?.as_str()?.trim();
    (!s.is_empty()).then(|| s.to_string())
}

/// The file package.json's `main` names (as Node resolves it: the file, with `.js`, or the
/// directory's `index.js`), when it exists in the app and its path is plain (letters, digits,
/// `/._-`, relative, no `..`): it goes into a shell command.
pub(crate) fn node_main(dir: &Path) -> Option<String> {
    let pkg: serde_json::Value = serde_json::from_str(&read(dir, "package.json")?).ok()?;
    let main = pkg.get("main")?.as_str()?.trim();
    let main = main
        .strip_prefix("./")
        .unwrap_or(main)
        .trim_end_matches('/');
    let plain = !main.is_empty()
        && !main.starts_with(['/', '-'])
        && main
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-".contains(c))
        && main
            .split('/')
            .all(|p| !p.is_empty() && p != ".." && p != ".");
    if !plain {
        return None;
    }
    [
        main.to_string(),
        format!("{main}.js"),
        format!("{main}/index.js"),
    ]
    .into_iter()
    .find(|f| is_file(dir, f))
}

/// The app's PHP files: the top-level `*.php`, then `index.php` of a public directory.
pub(crate) fn php_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = top_files(dir)
        .into_iter()
        .filter(|f| f.ends_with(".php"))
        .collect();
    for sub in ["public", "web", "htdocs", "www"] {
        if is_file(dir, &format!("{sub}/index.php")) {
            v.push(format!("{sub}/index.php"));
        }
    }
    v
}

/// The gems a Gemfile lists (`gem 'name'`).
pub(crate) fn gemfile_gems(dir: &Path) -> Vec<String> {
    let Some(text) = read(dir, "Gemfile") else {
        return Vec::new();
    };
    text.lines()
        .filter_map(|l| {
            let rest = l.trim_start().strip_prefix("gem")?;
            if !rest.starts_with([' ', '(']) {
                return None;
            }
            let rest = rest.trim_start_matches([' ', '(']);
            let q = rest.chars().next().filter(|c| *c == '"' || *c == '\'')?;
            let name: String = rest[1..].chars().take_while(|c| *c != q).collect();
            (!name.is_empty()).then_some(name)
        })
        .collect()
}

/// The first top-level `*.rb` file that requires sinatra (a Sinatra app's main file).
pub(crate) fn sinatra_main(dir: &Path) -> Option<String> {
    top_files(dir)
        .into_iter()
        .filter(|f| f.ends_with(".rb"))
        .find(|f| {
            read(dir, f).is_some_and(|t| {
                t.lines().any(|l| {
                    let l = l.trim_start();
                    l.starts_with("require") && l.contains("sinatra")
                })
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app(files: &[(&str, &str)]) -> tempfile::TempDir {
        let d = tempfile::tempdir().expect("tempdir");
        for (f, text) in files {
            let p = d.path().join(f);
            std::fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
            std::fs::write(p, text).expect("write");
        }
        d
    }

    fn fw(files: &[(&str, &str)]) -> Option<&'static str> {
        framework(app(files).path()).map(|d| d.framework)
    }

    #[test]
    fn the_clients_order() {
        assert_eq!(fw(&[("config/environment.rb", "")]), Some("rails3"));
        assert_eq!(fw(&[("config.ru", ""), ("server.js", "")]), Some("rack"));
        assert_eq!(
            fw(&[("app.rb", "require 'sinatra'\n"), ("index.php", "")]),
            Some("sinatra")
        );
        assert_eq!(fw(&[("app.rb", "puts 1\n")]), None);
        assert_eq!(fw(&[("app.psgi", ""), ("app.js", "")]), Some("perl"));
        assert_eq!(fw(&[("server.js", ""), ("index.php", "")]), Some("node"));
        assert_eq!(
            fw(&[("package.json", r#"{"scripts":{"start":"node lib/x.js"}}"#)]),
            Some("node")
        );
        assert_eq!(fw(&[("package.json", "{}")]), None);
        assert_eq!(fw(&[("index.php", ""), ("wsgi.py", "")]), Some("php"));
        assert_eq!(fw(&[("public/index.php", "")]), Some("php"));
        assert_eq!(fw(&[("wsgi.py", "")]), Some("python"));
        assert_eq!(fw(&[("README", "")]), None);
        assert_eq!(
            fw(&[("hello.war", ""), ("app.rb", "require 'sinatra'")]),
            Some("java_web")
        );
        assert_eq!(fw(&[("config.ru", ""), ("hello.war", "")]), Some("rack"));
        assert_eq!(fw(&[("main.go", ""), ("server.js", "")]), Some("buildpack"));
        assert_eq!(fw(&[("go.mod", "module x\n")]), Some("buildpack"));
        assert_eq!(fw(&[("cmd/main.go", "")]), None);
    }

    #[test]
    fn node_main_is_a_plain_path_to_a_file() {
        let pkg = |main: &str| format!(r#"{{"main": "{main}"}}"#);
        let d = app(&[
            ("package.json", &pkg("lib/web.js")),
            ("lib/web.js", ""),
            ("lib/boot/index.js", ""),
        ]);
        assert_eq!(node_main(d.path()).as_deref(), Some("lib/web.js"));
        for (main, want) in [
            ("./lib/web.js", Some("lib/web.js")),
            ("lib/web", Some("lib/web.js")),
            ("lib/boot", Some("lib/boot/index.js")),
            ("lib/none.js", None),
            ("../x/lib/web.js", None),
            ("lib/web.js; rm -rf /", None),
            ("/abs/web.js", None),
            ("$(id).js", None),
        ] {
            std::fs::write(d.path().join("package.json"), pkg(main)).expect("write");
            assert_eq!(node_main(d.path()).as_deref(), want, "{main}");
        }
    }

    #[test]
    fn links_are_not_followed() {
        let outside = app(&[("server.js", "")]);
        let d = app(&[]);
        std::os::unix::fs::symlink(outside.path().join("server.js"), d.path().join("server.js"))
            .expect("link");
        assert_eq!(framework(d.path()), None);
    }
}
