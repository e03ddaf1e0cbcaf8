//! Default web commands: `$STACKATO_UWSGI` for the Python and Perl legacy frameworks, and
//! `$PROCESSES_WEB` (the framework's default) for each framework a laptop can run.

use std::path::Path;

use crate::manifest::App;
use crate::platform::layout::Layout;

/// Python frameworks served by uWSGI.
pub fn is_python(framework: Option<&str>) -> bool {
    matches!(framework, Some("python" | "wsgi" | "django"))
}

/// Perl frameworks served by uWSGI (PSGI).
pub fn is_perl(framework: Option<&str>) -> bool {
    matches!(framework, Some("perl"))
}

/// The framework's start file (`STACKATO_START_FILE`), when there is one.
pub fn start_file(app: &App) -> Option<String> {
    let fw = app.framework_name();
    if let Some(f) = app.framework.as_ref().and_then(|f| f.start_file.clone()) {
        return Some(f);
    }
    if is_python(fw) {
        return Some("wsgi.py".into());
    }
    if is_perl(fw) {
        return Some("app.psgi".into());
    }
    if fw == Some("node") {
        return ["server.js", "app.js", "index.js", "main.js"]
            .iter()
            .find(|f| app.path.join(f).is_file())
            .map(|f| f.to_string());
    }
    None
}

/// `$STACKATO_UWSGI`: a local uWSGI (installed into the project's virtualenv at staging)
/// serving the app over HTTP on `port`, stopping on SIGTERM. Apps append their own options
/// (`--check-static`, `--static-map`, `--wsgi-file`, `--module`, …).
pub fn uwsgi_command(app: &App, layout: &Layout, port: u16) -> Option<String> {
    let fw = app.framework_name();
    if !is_python(fw) && !is_perl(fw) {
        return None;
    }
    let home = layout.home.display();
    let uwsgi = layout.venv.join("bin").join("uwsgi");
    let start = start_file(app).unwrap_or_else(|| "wsgi.py".into());
    let loader = if is_perl(fw) {
        format!("--psgi {home}/{start}")
    } else {
        // Only point at the default file when it exists: apps without a wsgi.py add their
        // own --wsgi-file / --module, as on the platform.
        let file = layout.home.join(&start);
        if file.is_file()
            || app
                .framework
                .as_ref()
                .is_some_and(|f| f.start_file.is_some())
        {
            format!("--wsgi-file {home}/{start} --callable application")
        } else {
            "--callable application".to_string()
        }
    };
    Some(format!(
        "{} --http-socket 127.0.0.1:{port} --master --processes 1 --enable-threads \
         --chdir {home} --pythonpath {home} {loader} --die-on-term",
        uwsgi.display()
    ))
}

/// `$PROCESSES_WEB`: the default web command, or `None` when the platform had none
/// (generic, standalone, Java, no framework and no Procfile).
pub fn default_web(app: &App, layout: &Layout, port: u16, document_root: &Path) -> Option<String> {
    let fw = app.framework_name();
    if is_python(fw) || is_perl(fw) {
        return uwsgi_command(app, layout, port);
    }
    match fw {
        Some("node") => start_file(app).map(|f| format!("node {f}")),
        Some("php") => Some(format!(
            "php -S 127.0.0.1:{port} -t {}",
            document_root.display()
        )),
        Some("rack") => Some(format!("rackup --port {port}")),
        Some("sinatra") => ruby_main(&app.path).map(|f| format!("ruby {f} -p {port}")),
        Some("rails3") => Some(format!("bundle exec rails server -p {port}")),
        Some(_) => None,
        None => procfile_web(&app.path),
    }
}

/// The first top-level `*.rb` file (sinatra's main file).
pub fn ruby_main(dir: &Path) -> Option<String> {
    let mut rbs: Vec<String> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".rb"))
        .collect();
    rbs.sort();
    rbs.into_iter().next()
}

/// The text of the file `name` in the app directory `dir`: a regular file inside it (a link
/// out of it, a FIFO or a device is not read), at most the size trust checks.
pub fn app_file(dir: &Path, name: &str) -> Option<String> {
    let root = dir.canonicalize().ok()?;
    crate::trust::files::text(&dir.join(name), &root)
}

/// The `web:` line of a Procfile (buildpack apps); other process types are ignored, as on
/// the platform.
pub fn procfile_web(dir: &Path) -> Option<String> {
    let text = app_file(dir, "Procfile")?;
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == "web").then(|| v.trim().to_string())
    })
}
