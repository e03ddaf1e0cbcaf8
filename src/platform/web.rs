//! Default web commands: the one table of `$PROCESSES_WEB` per framework (templates `run`
//! fills with an instance's values and `export` keeps as variables), and `$STACKATO_UWSGI`
//! for the Python and Perl legacy frameworks.

use std::path::{Path, PathBuf};

use crate::manifest::App;
use crate::platform::detect;
use crate::platform::layout::Layout;
use crate::platform::perl;
use crate::platform::php_apache;

/// Python frameworks served by uWSGI.
pub(crate) fn is_python(framework: Option<&str>) -> bool {
    matches!(framework, Some("python" | "wsgi" | "django"))
}

/// A Python app: a Python framework, pip/pypm requirements, or a requirements.txt in an app
/// that is not Perl, Node or PHP.
pub(crate) fn is_python_app(app: &App) -> bool {
    let fw = app.framework_name();
    is_python(fw)
        || !app.requirements.pip.is_empty()
        || !app.requirements.pypm.is_empty()
        || (app.path.join("requirements.txt").is_file()
            && !matches!(fw, Some("perl" | "perlcgi" | "node" | "php")))
}

/// Perl frameworks served by uWSGI (PSGI).
pub(crate) fn is_perl(framework: Option<&str>) -> bool {
    matches!(framework, Some("perl"))
}

/// The framework's start file (`STACKATO_START_FILE`), when there is one.
pub(crate) fn start_file(app: &App) -> Option<String> {
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
        return crate::platform::detect::node_start_file(&app.path);
    }
    None
}

/// The arguments of the uWSGI command `$STACKATO_UWSGI` stands for, as a template (see
/// [`expand`]): serving the app over HTTP on `$VCAP_APP_HOST:$PORT`, from `$HOME`, stopping on
/// SIGTERM. Apps append their own options (`--check-static`, `--static-map`, `--wsgi-file`,
/// `--module`, …). `None` for frameworks not served by uWSGI.
pub(crate) fn uwsgi_args(app: &App) -> Option<String> {
    let fw = app.framework_name();
    (is_python(fw) || is_perl(fw) || perl::is_cgi(fw)).then(|| uwsgi_args_any(app))
}

/// [`uwsgi_args`] whatever the framework (a WSGI app unless it is Perl): for a command that
/// uses `$STACKATO_UWSGI` where the platform would not have set it.
pub(crate) fn uwsgi_args_any(app: &App) -> String {
    let fw = app.framework_name();
    let start = start_file(app).unwrap_or_else(|| "wsgi.py".into());
    let loader = if is_perl(fw) {
        format!("--psgi $HOME/{start}")
    } else if perl::is_cgi(fw) {
        // uWSGI's CGI plugin, as the platform ran perlcgi apps (apps append `--cgi-index`).
        "--plugin cgi --cgi $HOME --cgi-allowed-ext .cgi --cgi-allowed-ext .pl \
         --cgi-helper .cgi=perl --cgi-helper .pl=perl --cgi-index index.cgi --cgi-index index.pl"
            .to_string()
    } else {
        // Only point at the default file when it exists: apps without a wsgi.py add their
        // own --wsgi-file / --module, as on the platform.
        let explicit = app
            .framework
            .as_ref()
            .is_some_and(|f| f.start_file.is_some());
        if explicit || app.path.join(&start).is_file() {
            format!("--wsgi-file $HOME/{start} --callable application")
        } else {
            "--callable application".to_string()
        }
    };
    // --pythonpath is the Python plugin's: uWSGI without it refuses the option.
    let pythonpath = if is_perl(fw) || perl::is_cgi(fw) {
        ""
    } else {
        "--pythonpath $HOME "
    };
    // --need-app: an app that cannot be loaded (a syntax error, a missing module) ends uWSGI,
    // so its own message is shown and the health manager judges it, instead of a server that
    // answers every request with a 500 (the CGI runner has no app to load).
    let need_app = if perl::is_cgi(fw) { "" } else { " --need-app" };
    format!(
        "--http-socket $VCAP_APP_HOST:$PORT --master --processes 1 --enable-threads \
         --chdir $HOME {pythonpath}{loader} --die-on-term{need_app}"
    )
}

/// `$STACKATO_UWSGI` for `run`: the project's uWSGI (installed into its virtualenv at
/// staging) serving the app on 127.0.0.1:`port`.
pub(crate) fn uwsgi_command(app: &App, layout: &Layout, port: u16) -> Option<String> {
    let args = uwsgi_args(app)?;
    let args = expand(&args, &local_values(layout, port, &layout.home, None));
    if !is_python(app.framework_name()) {
        return Some(perl::uwsgi_command(app, layout, port, &args));
    }
    let uwsgi = layout.venv.join("bin").join("uwsgi");
    Some(format!("{} {args}", uwsgi.display()))
}

/// The address `run` binds web processes to (the laptop's own, never the network's).
pub(crate) const LOCAL_HOST: &str = "127.0.0.1";

/// The framework's default web command, as the table gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DefaultWeb {
    /// A framework's default: a template whose `$VCAP_APP_HOST` (the address to bind), `$PORT`,
    /// `$HOME`, `$STACKATO_DOCUMENT_ROOT` and `$STACKATO_UWSGI` the caller fills in or keeps.
    Framework(String),
    /// The `web:` line of the app's Procfile (no framework): the user's text, used as it is.
    Procfile(String),
}

impl DefaultWeb {
    /// The command with `values` put in for the template's variables (a Procfile line is
    /// left as it is: the shell expands it with the process's environment).
    pub(crate) fn render(&self, values: &[(&str, &str)]) -> String {
        match self {
            DefaultWeb::Framework(t) => expand(t, values),
            DefaultWeb::Procfile(l) => l.clone(),
        }
    }

    /// The text, variables kept (what `export` writes for the target to expand).
    pub(crate) fn template(&self) -> &str {
        match self {
            DefaultWeb::Framework(t) | DefaultWeb::Procfile(t) => t,
        }
    }
}

/// The one table of default web commands (`$PROCESSES_WEB`, spec §4.3), used by `run` (through
/// [`default_web`]) and by `export`. `None` when the platform had none (generic, standalone,
/// Java, node without a start file, no framework and no Procfile).
///
/// Python and Perl: `$STACKATO_UWSGI` (spec: `PROCESSES_WEB=<value of STACKATO_UWSGI>`; perlcgi: the CGI runner, see [`perl`]). PHP:
/// Apache with mod_php on the platform, PHP's built-in server here, same document root. Ruby
/// (CF v1 style): `rails server`, `rackup config.ru`, `ruby <main file>`, through bundler when
/// the app has a Gemfile, each bound to `$VCAP_APP_HOST:$PORT` (the platform's 0.0.0.0).
pub(crate) fn default_web_template(app: &App) -> Option<DefaultWeb> {
    // Without a declared framework a Procfile's `web:` line wins (3.x buildpack apps), and so
    // it does for 2.x `framework: buildpack` (over the release's default); the detected
    // framework (spec §2.3) gives the default otherwise.
    if (app.declared_framework().is_none() || app.framework_name() == Some("buildpack"))
        && let Some(line) = procfile_web(&app.path)
    {
        return Some(DefaultWeb::Procfile(line));
    }
    let fw = app.framework_name();
    if is_python(fw) || is_perl(fw) || perl::is_cgi(fw) {
        return Some(DefaultWeb::Framework("$STACKATO_UWSGI".into()));
    }
    let bundle = if detect::is_file(&app.path, "Gemfile") {
        "bundle exec "
    } else {
        ""
    };
    let rackup = format!("{bundle}rackup config.ru -p $PORT -o $VCAP_APP_HOST");
    let t = match fw {
        Some("node") => match start_file(app) {
            Some(f) => Some(format!("node {f}")),
            None => detect::npm_start(&app.path)
                .map(|_| "npm start".to_string())
                .or_else(|| detect::node_main(&app.path).map(|f| format!("node {f}"))),
        },
        Some("php") => Some(format!(
            "php -S $VCAP_APP_HOST:$PORT -t $STACKATO_DOCUMENT_ROOT {PHP_ROUTER}"
        )),
        Some("rack") => Some(rackup),
        Some("rails3") => Some("bundle exec rails server -p $PORT -b $VCAP_APP_HOST".into()),
        Some("sinatra") if detect::is_file(&app.path, "config.ru") => Some(rackup),
        Some("sinatra") => detect::sinatra_main(&app.path)
            .or_else(|| ruby_main(&app.path))
            .map(|f| format!("{bundle}ruby {f} -p $PORT -o $VCAP_APP_HOST")),
        Some("java_web" | "java_ee" | "java" | "spring" | "grails" | "lift") => java_web(&app.path),
        _ => None,
    };
    t.map(DefaultWeb::Framework)
}

/// A line for `run`'s output saying how the default web command serves the app, when that is
/// not what the platform did (PHP) or the framework was detected rather than declared.
pub(crate) fn how_it_starts(app: &App, layout: &Layout) -> Option<String> {
    let DefaultWeb::Framework(t) = default_web_template(app)? else {
        return None;
    };
    let detected = match (&app.declared_framework(), &app.detected) {
        (None, Some(d)) => format!("framework {} detected ({}); ", d.framework, d.why),
        _ => String::new(),
    };
    if t.contains(PHP_ROUTER) {
        return Some(match php_apache::choose(app, layout) {
            php_apache::PhpServer::Apache { apache2, .. } => format!(
                "{detected}served by Apache with mod_php ({}, as on the platform; .htaccess \
                 applies), its configuration in {}",
                apache2.display(),
                layout.app_root.join("apache2.conf").display()
            ),
            php_apache::PhpServer::Builtin(why) => {
                let mut s = format!(
                    "{detected}served by PHP's built-in server (php -S) with a router that applies \
                     the simple .htaccess rules (DirectoryIndex, front-controller and simple \
                     RewriteRules, redirects; unknown paths 404 without one, .ht* refused); the \
                     platform used Apache with mod_php, not used here: {why}"
                );
                if let Some(n) = super::php_htaccess::note(&layout.document_root(app)) {
                    s = format!("{s}\n  {n}");
                }
                s
            }
        });
    }
    (!detected.is_empty()).then(|| format!("{detected}started with `{t}`"))
}

/// The warning when package.json's `main` is what would start a Node app (no start file, no
/// `scripts.start`, no web command) but names no file Node would load (`x`, `x.js`,
/// `x/index.js`): `run` then has no web command.
pub(crate) fn node_main_missing(app: &App) -> Option<crate::diag::Diagnostic> {
    if !matches!(app.web, crate::manifest::model::Web::Default)
        || app.command.is_some()
        || !matches!(app.framework_name(), None | Some("node"))
        || detect::node_start_file(&app.path).is_some()
        || detect::npm_start(&app.path).is_some()
        || detect::node_main(&app.path).is_some()
    {
        return None;
    }
    let pkg: serde_json::Value =
        serde_json::from_str(&detect::read(&app.path, "package.json")?).ok()?;
    let main = pkg.get("main")?.as_str()?;
    Some(
        crate::diag::Diagnostic::warning(format!(
            "package.json: \"main\": {main:?} names no file of {} ({main}, {main}.js or {main}/index.js, as Node resolves it), so `run` has no web command for it",
            app.name.value
        ))
        .hint("fix `main`, add `\"scripts\": {\"start\": ...}` to package.json, or set `processes: web:` in stackato.yml"),
    )
}

/// Why `run` cannot start the app's default web process on this machine, with the command
/// that installs what is missing: no default for its framework, or the program the default
/// runs is not installed. `None` when it can (or when the app says its own web command).
/// Python and Perl (uWSGI, built at staging) are `doctor`'s uWSGI checks.
/// (A buildpack app with no buildpack is [`crate::plan::cannot_start`]'s, which asks first.)
pub(crate) fn cannot_start(app: &App) -> Option<CannotStart> {
    if !matches!(app.web, crate::manifest::model::Web::Default) || app.command.is_some() {
        return None;
    }
    // No framework at all: `run` says so itself; the manifest is not wrong for it.
    let fw = app.framework_name()?;
    // A buildpack app with a buildpack: its release (or its Procfile) gives the web command.
    if fw == "buildpack" {
        return None;
    }
    let Some(d) = default_web_template(app) else {
        return Some(CannotStart {
            what: format!("framework {fw} has no default web command here"),
            debian: None,
            hint: None,
        });
    };
    let DefaultWeb::Framework(t) = d else {
        return None;
    };
    if t.contains("jetty.base=") {
        let jetty = jetty_home();
        let java = crate::programs::find("java").is_some();
        if java && jetty.join("start.jar").is_file() {
            return None;
        }
        return Some(CannotStart {
            what: format!(
                "framework {fw} runs its WAR in Jetty 9 here, and {} is not installed",
                if java { "Jetty 9" } else { "java" }
            ),
            debian: Some(JETTY_PACKAGES),
            hint: None,
        });
    }
    let program = t.split_whitespace().next().unwrap_or("");
    let debian = match program {
        "php" => "php-cli",
        "node" => "nodejs",
        "npm" => "npm",
        "rackup" => "ruby-rack",
        "ruby" => "ruby",
        "bundle" => "ruby-bundler",
        _ => return None,
    };
    if crate::programs::find(program).is_some() {
        return None;
    }
    Some(CannotStart {
        what: format!("framework {fw} starts with `{t}`, and {program} is not installed"),
        debian: Some(debian),
        hint: None,
    })
}

/// The Debian packages a WAR needs here.
pub(crate) const JETTY_PACKAGES: &str = "jetty9 default-jre-headless";

/// Where Jetty 9 is (`$JETTY_HOME`, else Debian's `/usr/share/jetty9`).
pub(crate) fn jetty_home() -> PathBuf {
    std::env::var_os("JETTY_HOME").map_or_else(|| PathBuf::from("/usr/share/jetty9"), PathBuf::from)
}

/// Whether the app's default web process runs its WAR in Jetty.
pub(crate) fn runs_in_jetty(app: &App) -> bool {
    matches!(app.web, crate::manifest::model::Web::Default)
        && app.command.is_none()
        && matches!(default_web_template(app), Some(DefaultWeb::Framework(t)) if t.contains("jetty.base="))
}

/// What [`cannot_start`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CannotStart {
    pub what: String,
    /// The Debian package that provides the missing program (`None`: nothing to install, the
    /// app needs a `processes: web`).
    pub debian: Option<&'static str>,
    /// How to fix it when it is neither a package nor a web command (a buildpack to give).
    pub hint: Option<String>,
}

impl CannotStart {
    /// How to fix it, in one line.
    pub(crate) fn fix(&self) -> String {
        if let Some(h) = &self.hint {
            return h.clone();
        }
        match self.debian {
            Some(d) => format!("install it: sudo apt-get install {d}"),
            None => "add `processes: {web: <command listening on $PORT>}`, or `command:`".into(),
        }
    }
}

/// The router `php -S` runs every request through (in the instance's root, outside the app):
/// it emulates the front-controller rewrite of the `.htaccess` most PHP apps ship.
pub(crate) const PHP_ROUTER: &str = "$STACKATO_APP_ROOT/php-router.php";

/// The router's text.
const PHP_ROUTER_TEXT: &str = include_str!("../../templates/php-router.php");

/// Write the PHP router into the instance root `layout.app_root` when the app's default web
/// command uses it.
pub(crate) fn install_php_router(
    app: &App,
    layout: &Layout,
) -> Result<(), crate::state::StateError> {
    let uses = matches!(default_web_template(app), Some(DefaultWeb::Framework(t)) if t.contains(PHP_ROUTER));
    if !uses {
        return Ok(());
    }
    crate::state::write_atomic(
        &layout.app_root.join("php-router.php"),
        PHP_ROUTER_TEXT.as_bytes(),
    )
}

/// Java web apps: the WAR (a `*.war` at the app's top, else the app itself when it is an
/// exploded WAR with `WEB-INF/`) deployed at `/` by Jetty 9 (Debian's `jetty9`; Tomcat on the
/// platform, but Debian 12's Tomcat 10 cannot run `javax` WARs), from a private `jetty.base`
/// in the app's copy (under `WEB-INF/`, which Jetty never serves, for an exploded WAR).
fn java_web(dir: &Path) -> Option<String> {
    let mut wars: Vec<String> = std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file()))
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| {
            n.ends_with(".war")
                && n.chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        })
        .collect();
    wars.sort();
    let (war, base) = match wars.first() {
        Some(w) => (format!("$HOME/{w}"), "$HOME/.jetty-base"),
        None if dir.join("WEB-INF").is_dir() => ("$HOME".into(), "$HOME/WEB-INF/.jetty-base"),
        None => return None,
    };
    let jetty = "${JETTY_HOME:-/usr/share/jetty9}";
    let context = "<?xml version=\"1.0\"?><!DOCTYPE Configure PUBLIC \"-//Jetty//Configure//EN\" \"http://www.eclipse.org/jetty/configure_9_3.dtd\"><Configure class=\"org.eclipse.jetty.webapp.WebAppContext\"><Set name=\"contextPath\">/</Set><Set name=\"war\"><SystemProperty name=\"stackato.war\"/></Set></Configure>";
    Some(format!(
        "if [ ! -f {jetty}/start.jar ] || ! command -v java >/dev/null; then \
         echo 'Java web apps run in Jetty 9 here: apt-get install jetty9 default-jre-headless (or set JETTY_HOME)' >&2; exit 127; fi; \
         mkdir -p {base}/webapps && printf '%s\\n' '{context}' > {base}/webapps/ROOT.xml && \
         exec java -Dstackato.war={war} -jar {jetty}/start.jar jetty.home={jetty} jetty.base={base} \
         --module=http,deploy,jsp jetty.http.host=$VCAP_APP_HOST jetty.http.port=$PORT"
    ))
}

/// The values `run` puts into a template for one instance: bound to [`LOCAL_HOST`], on
/// `port`, in `home`; `uwsgi` is the instance's `$STACKATO_UWSGI`.
fn local_values(
    layout: &Layout,
    port: u16,
    document_root: &Path,
    uwsgi: Option<&str>,
) -> Vec<(&'static str, String)> {
    let mut v = vec![
        ("VCAP_APP_HOST", LOCAL_HOST.to_string()),
        ("PORT", port.to_string()),
        ("HOME", layout.home.display().to_string()),
        ("STACKATO_APP_ROOT", layout.app_root.display().to_string()),
        (
            "STACKATO_DOCUMENT_ROOT",
            document_root.display().to_string(),
        ),
    ];
    if let Some(u) = uwsgi {
        v.push(("STACKATO_UWSGI", u.to_string()));
    }
    v
}

/// `$PROCESSES_WEB` for `run`: the table's command with this instance's values (for PHP,
/// Apache with mod_php instead of the built-in server when [`php_apache::choose`] says so).
pub(crate) fn default_web(
    app: &App,
    layout: &Layout,
    port: u16,
    document_root: &Path,
) -> Option<String> {
    let d = match default_web_template(app)? {
        DefaultWeb::Framework(t)
            if t.contains(PHP_ROUTER)
                && matches!(
                    php_apache::choose(app, layout),
                    php_apache::PhpServer::Apache { .. }
                ) =>
        {
            DefaultWeb::Framework(php_apache::APACHE_COMMAND.to_string())
        }
        d => d,
    };
    let uwsgi = uwsgi_command(app, layout, port);
    let values = local_values(layout, port, document_root, uwsgi.as_deref());
    let pairs: Vec<(&str, &str)> = values.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Some(d.render(&pairs))
}

/// `template` with each variable of `values` (`$NAME` or `${NAME}`, a whole name, not after a
/// backslash) replaced by its value, in one pass (a value is never expanded again); other
/// variables are kept.
pub(crate) fn expand<V: AsRef<str>>(template: &str, values: &[(&str, V)]) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        let (name, len) = if let Some(b) = after.strip_prefix('{') {
            match b.find('}') {
                Some(e) => (&b[..e], e + 2),
                None => ("", 0),
            }
        } else {
            let e = after
                .find(|c: char| c != '_' && !c.is_ascii_alphanumeric())
                .unwrap_or(after.len());
            (&after[..e], e)
        };
        let escaped = rest[..i].ends_with('\\');
        match values.iter().find(|(k, _)| *k == name) {
            Some((_, v)) if !escaped && !name.is_empty() => {
                out.push_str(v.as_ref());
                rest = &after[len..];
            }
            _ => {
                out.push('$');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The first top-level `*.rb` file (sinatra's main file).
pub(crate) fn ruby_main(dir: &Path) -> Option<String> {
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
pub(crate) fn app_file(dir: &Path, name: &str) -> Option<String> {
    let root = dir.canonicalize().ok()?;
    crate::trust::files::text(&dir.join(name), &root)
}

/// The `web:` line of a Procfile (buildpack apps); other process types are ignored, as on
/// the platform.
pub(crate) fn procfile_web(dir: &Path) -> Option<String> {
    let text = app_file(dir, "Procfile")?;
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == "web").then(|| v.trim().to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::layout::Place;

    /// The frameworks of the table, and the files their apps have.
    const FRAMEWORKS: &[&str] = &[
        "python", "wsgi", "django", "perl", "perlcgi", "node", "php", "rack", "rails3", "sinatra",
    ];

    fn app_with(
        framework: Option<&str>,
        files: &[&str],
    ) -> (tempfile::TempDir, crate::manifest::Manifest) {
        let d = tempfile::tempdir().expect("tempdir");
        let fw = framework.map_or(String::new(), |f| format!("framework:\n  type: {f}\n"));
        std::fs::write(d.path().join("stackato.yml"), format!("name: a\n{fw}")).expect("write");
        for f in files {
            std::fs::write(d.path().join(f), "web: ./serve --port $PORT\n").expect("write");
        }
        let opts = crate::manifest::LoadOptions::new(d.path());
        let mut ask = |_: &str| None;
        let m = crate::manifest::load(&opts, &mut ask)
            .expect("loads")
            .manifest;
        (d, m)
    }

    /// What `run` executes and what `export` writes are the same command: export's, with the
    /// instance's values put in by the shell, is run's (but for where uWSGI is installed).
    #[test]
    fn run_and_export_agree_for_every_framework() {
        let files = [
            "server.js",
            "app.rb",
            "Gemfile",
            "config.ru",
            "wsgi.py",
            "app.psgi",
        ];
        for fw in FRAMEWORKS {
            let (_d, m) = app_with(Some(fw), &files);
            let app = &m.apps[0];
            let layout = Layout::new(&m.dir, app, 0, false, Place::Checkout);
            let doc = layout.document_root(app);
            let run = default_web(app, &layout, 5123, &doc)
                .unwrap_or_else(|| panic!("{fw}: run has no default web command"));
            let exported = crate::export::default_web(app)
                .unwrap_or_else(|| panic!("{fw}: export has no default web command"));
            let translated = crate::export::translate(app, &exported, LOCAL_HOST).text;
            let home = layout.home.display().to_string();
            let doc = doc.display().to_string();
            let by_shell = expand(
                &translated,
                &[
                    ("PORT", "5123"),
                    ("HOME", &home),
                    ("STACKATO_DOCUMENT_ROOT", &doc),
                ],
            );
            let uwsgi = if is_python(Some(fw)) {
                Some(layout.venv.join("bin").join("uwsgi").display().to_string())
            } else {
                // Perl: Debian's PSGI uWSGI or the CGI runner; plackup takes its own options.
                perl::uwsgi_program(Some(fw), &layout)
            };
            let router = format!(" {}", layout.app_root.join("php-router.php").display());
            let run = run.replace(&router, "");
            if *fw == "php"
                && let php_apache::PhpServer::Apache { .. } = php_apache::choose(app, &layout)
            {
                // Apache with mod_php when installed; export keeps the built-in server.
                let conf = layout.app_root.join("apache2.conf");
                assert_eq!(run, format!("apache2 -DFOREGROUND -f {}", conf.display()));
                continue;
            }
            match uwsgi {
                Some(u) => assert_eq!(run.replace(&format!("{u} "), "uwsgi "), by_shell, "{fw}"),
                None => assert!(
                    run.contains("plackup --host 127.0.0.1 --port 5123"),
                    "{run}"
                ),
            }
            assert!(
                !run.contains('$'),
                "{fw}: run's command keeps a variable: {run}"
            );
        }
    }

    #[test]
    fn ruby_goes_through_bundler_only_with_a_gemfile() {
        let (_d, m) = app_with(Some("rack"), &["config.ru"]);
        assert_eq!(
            crate::export::default_web(&m.apps[0]).as_deref(),
            Some("rackup config.ru -p $PORT -o $VCAP_APP_HOST")
        );
        let (_d, m) = app_with(Some("rack"), &["config.ru", "Gemfile"]);
        assert_eq!(
            crate::export::default_web(&m.apps[0]).as_deref(),
            Some("bundle exec rackup config.ru -p $PORT -o $VCAP_APP_HOST")
        );
    }

    #[test]
    fn node_starts_its_file_or_npm_start() {
        let (_d, m) = app_with(Some("node"), &["app.js"]);
        assert_eq!(
            crate::export::default_web(&m.apps[0]).as_deref(),
            Some("node app.js")
        );
        let (d, _) = app_with(None, &[]);
        std::fs::write(
            d.path().join("package.json"),
            r#"{"scripts": {"start": "node lib/boot.js"}}"#,
        )
        .expect("write");
        let opts = crate::manifest::LoadOptions::new(d.path());
        let mut ask = |_: &str| None;
        let m = crate::manifest::load(&opts, &mut ask)
            .expect("loads")
            .manifest;
        assert_eq!(m.apps[0].framework_name(), Some("node"), "detected");
        assert_eq!(
            crate::export::default_web(&m.apps[0]).as_deref(),
            Some("npm start")
        );
        // No start file or script: package.json's main.
        let (d, _) = app_with(Some("node"), &[]);
        std::fs::create_dir(d.path().join("lib")).expect("mkdir");
        std::fs::write(d.path().join("lib/web.js"), "").expect("write");
        std::fs::write(d.path().join("package.json"), r#"{"main": "lib/web.js"}"#).expect("write");
        let opts = crate::manifest::LoadOptions::new(d.path());
        let m = crate::manifest::load(&opts, &mut ask)
            .expect("loads")
            .manifest;
        assert_eq!(
            crate::export::default_web(&m.apps[0]).as_deref(),
            Some("node lib/web.js")
        );
    }

    #[test]
    fn a_detected_framework_gives_the_default_and_a_procfile_wins() {
        let (_d, m) = app_with(None, &["config.ru"]);
        assert_eq!(m.apps[0].framework_name(), Some("rack"));
        assert_eq!(
            crate::export::default_web(&m.apps[0]).as_deref(),
            Some("rackup config.ru -p $PORT -o $VCAP_APP_HOST")
        );
        let (_d, m) = app_with(None, &["config.ru", "Procfile"]);
        assert_eq!(
            default_web_template(&m.apps[0]),
            Some(DefaultWeb::Procfile("./serve --port $PORT".into()))
        );
    }

    #[test]
    fn php_runs_through_the_router() {
        let (_d, m) = app_with(Some("php"), &[]);
        let app = &m.apps[0];
        let layout = Layout::new(&m.dir, app, 0, false, Place::Checkout);
        let run = default_web(app, &layout, 5123, &layout.home).expect("php has a default");
        let expected = match php_apache::choose(app, &layout) {
            php_apache::PhpServer::Apache { .. } => format!(
                "apache2 -DFOREGROUND -f {}",
                layout.app_root.join("apache2.conf").display()
            ),
            php_apache::PhpServer::Builtin(_) => format!(
                "php -S 127.0.0.1:5123 -t {} {}",
                layout.home.display(),
                layout.app_root.join("php-router.php").display()
            ),
        };
        assert_eq!(run, expected);
        std::fs::create_dir_all(&layout.app_root).expect("mkdir");
        install_php_router(app, &layout).expect("writes");
        assert!(layout.app_root.join("php-router.php").is_file());
    }

    #[test]
    fn no_default_where_the_platform_had_none() {
        // node without a start file, generic, Java, and no framework without a Procfile.
        for fw in [Some("node"), Some("generic"), Some("java_web"), None] {
            let (_d, m) = app_with(fw, &[]);
            assert_eq!(default_web_template(&m.apps[0]), None, "{fw:?}");
        }
    }

    #[test]
    fn java_web_apps_run_their_war_in_jetty() {
        for fw in ["java_web", "spring", "grails", "lift", "java"] {
            let (_d, m) = app_with(Some(fw), &["zz.war", "shop.war", "bad name.war"]);
            let t = default_web_template(&m.apps[0]).expect(fw);
            let t = t.template();
            assert!(t.contains("-Dstackato.war=$HOME/shop.war "), "{t}");
            assert!(t.contains("jetty.base=$HOME/.jetty-base "), "{t}");
            assert!(t.contains("jetty.http.port=$PORT"), "{t}");
        }
        // An exploded WAR: the app itself, its jetty.base where Jetty serves nothing.
        let (d, m) = app_with(Some("java_web"), &[]);
        std::fs::create_dir(d.path().join("WEB-INF")).expect("mkdir");
        let t = default_web_template(&m.apps[0]).expect("exploded");
        assert!(t.template().contains("-Dstackato.war=$HOME -jar"), "{t:?}");
        assert!(
            t.template()
                .contains("jetty.base=$HOME/WEB-INF/.jetty-base "),
            "{t:?}"
        );
    }

    #[test]
    fn a_procfile_line_is_used_as_it_is() {
        let (_d, m) = app_with(None, &["Procfile"]);
        let app = &m.apps[0];
        let layout = Layout::new(&m.dir, app, 0, false, Place::Checkout);
        assert_eq!(
            default_web(app, &layout, 5123, &layout.home).as_deref(),
            Some("./serve --port $PORT")
        );
    }

    #[test]
    fn expand_replaces_whole_unescaped_names_once() {
        let v = [("PORT", "80"), ("HOME", "/h/$PORT")];
        assert_eq!(
            expand("a $PORT ${PORT} $PORTS \\$PORT $X $", &v),
            "a 80 80 $PORTS \\$PORT $X $"
        );
        assert_eq!(expand("$HOME/x ${HOME", &v), "/h/$PORT/x ${HOME");
    }
}
