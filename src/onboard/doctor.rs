//! `doctor` without the terminal: what this machine lacks to run this manifest's apps. One
//! [`Check`] per need: the language runtimes its frameworks use, uWSGI's build prerequisites,
//! each service's server program (and its version), the remembered ports, the inotify limit
//! for watching, and a writable state directory; each failure with how to fix it.

use std::path::{Path, PathBuf};

use crate::manifest::model::Web;
use crate::manifest::{App, Loaded};
use crate::onboard::{ports, tools, watches};
use crate::services::backend::{self, Backend};
use crate::services::lifecycle;
use crate::services::paths::{RunAs, ServicePaths};
use crate::stage::requirements;
use crate::state::StateDir;

/// The outcome of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Check {
    pub ok: bool,
    /// What was checked: "python3", "service mydb (postgresql)".
    pub label: String,
    /// What was found, or what is wrong.
    pub detail: String,
    /// How to fix a failure.
    pub fix: Option<Fix>,
}

/// How to fix a failed check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Fix {
    /// Commands per system.
    Install {
        debian: String,
        fedora: String,
        macos: String,
    },
    /// Something to do, in words.
    Hint(String),
}

fn install(debian: &str, fedora: &str, macos: &str) -> Option<Fix> {
    Some(Fix::Install {
        debian: format!("sudo apt-get install {debian}"),
        fedora: format!("sudo dnf install {fedora}"),
        macos: macos.to_string(),
    })
}

fn pass(label: impl Into<String>, detail: impl Into<String>) -> Check {
    Check {
        ok: true,
        label: label.into(),
        detail: detail.into(),
        fix: None,
    }
}

fn fail(label: impl Into<String>, detail: impl Into<String>, fix: Option<Fix>) -> Check {
    Check {
        ok: false,
        label: label.into(),
        detail: detail.into(),
        fix,
    }
}

/// What runs the WARs of `apps` here: java and Jetty 9 (the platform used Tomcat).
fn java_check(apps: &[&&App]) -> Check {
    let names: Vec<&str> = apps.iter().map(|a| a.name.value.as_str()).collect();
    let label = format!("java + Jetty 9 ({})", names.join(", "));
    let fix = || {
        install(
            crate::platform::web::JETTY_PACKAGES,
            "jetty java-latest-openjdk-headless",
            "brew install jetty openjdk",
        )
    };
    let start = crate::platform::web::jetty_home().join("start.jar");
    let java = crate::programs::find("java");
    match (java, start.is_file()) {
        (Some(j), true) => pass(
            label,
            format!(
                "{} ({}), Jetty 9 ({}): the WAR is deployed at / (the platform used Tomcat)",
                tools::first_line(&j, &["-version"]).unwrap_or_else(|| "java".into()),
                j.display(),
                start.display()
            ),
        ),
        (j, jetty) => {
            let mut missing = Vec::new();
            if j.is_none() {
                missing.push("java".to_string());
            }
            if !jetty {
                missing.push(format!(
                    "Jetty 9 (no {}; JETTY_HOME names another place)",
                    start.display()
                ));
            }
            fail(
                label,
                format!(
                    "not installed: {}; run serves WARs with java and Jetty 9 here",
                    missing.join(", ")
                ),
                fix(),
            )
        }
    }
}

/// What serves a `perl` app's app.psgi here (see [`crate::platform::perl::psgi_server`]).
fn psgi_check(app: &str) -> Check {
    use crate::platform::perl::{PSGI_INSTALL, PsgiServer, psgi_server};
    let label = format!("PSGI server for {app}");
    match psgi_server() {
        PsgiServer::Uwsgi(p) => pass(
            label,
            format!(
                "$STACKATO_UWSGI: uWSGI with its PSGI plugin ({})",
                p.display()
            ),
        ),
        PsgiServer::Plackup(p) => pass(
            label,
            format!(
                "$STACKATO_UWSGI runs plackup ({}): uWSGI's PSGI plugin is not installed (`apt-get install uwsgi-core uwsgi-plugin-psgi`), and uWSGI options the app appends are not understood",
                p.display()
            ),
        ),
        PsgiServer::Missing => fail(
            label,
            format!(
                "$STACKATO_UWSGI serves app.psgi with uWSGI's PSGI plugin or plackup; neither is installed ({PSGI_INSTALL})"
            ),
            install("libplack-perl", "perl-Plack", "cpanm Plack"),
        ),
    }
}

/// Whether Perl source `text` loads CGI.pm (`use CGI;`, `use CGI qw(...)`, `require CGI`,
/// `use CGI::Carp`), which left Perl's core in 5.22.
fn uses_cgi(text: &str) -> bool {
    text.lines().any(|l| {
        let l = l.trim_start();
        let rest = l
            .strip_prefix("use CGI")
            .or_else(|| l.strip_prefix("require CGI"));
        // CGI::Carp, CGI::Cookie, … come in the same distribution (CGI::Simple does not).
        let rest = rest.map(|r| {
            ["::Carp", "::Cookie", "::Util", "::Pretty", "::Push"]
                .iter()
                .find_map(|m| r.strip_prefix(m))
                .unwrap_or(r)
        });
        rest.is_some_and(|r| r.is_empty() || r.starts_with([';', ' ', '\t', '(']))
    })
}

/// The first of the app's Perl scripts (in the checkout, a few levels deep) that loads CGI.pm.
fn script_using_cgi(dir: &Path, depth: u32, budget: &mut u32) -> Option<PathBuf> {
    let mut entries: Vec<_> = std::fs::read_dir(dir).ok()?.flatten().collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        if *budget == 0 {
            return None;
        }
        let path = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        let Ok(ft) = e.file_type() else { continue };
        if ft.is_dir() {
            let skip =
                depth == 0 || name.starts_with('.') || name == "local" || name == "node_modules";
            if !skip && let Some(p) = script_using_cgi(&path, depth - 1, budget) {
                return Some(p);
            }
            continue;
        }
        if !ft.is_file()
            || ![".cgi", ".pl", ".pm", ".psgi"]
                .iter()
                .any(|x| name.ends_with(x))
        {
            continue;
        }
        *budget -= 1;
        if std::fs::read(&path).is_ok_and(|b| uses_cgi(&String::from_utf8_lossy(&b))) {
            return Some(path);
        }
    }
    None
}

/// A Perl app whose scripts `use CGI`: CGI.pm is not in Perl's core since 5.22 (Debian ships
/// it as libcgi-pm-perl), so every request would fail with "Can't locate CGI.pm in @INC".
fn cgi_check(app: &App) -> Option<Check> {
    let mut budget = 500;
    let script = script_using_cgi(&app.path, 3, &mut budget)?;
    let shown = script
        .strip_prefix(&app.path)
        .unwrap_or(&script)
        .display()
        .to_string();
    let label = format!("CGI.pm for {}", app.name.value);
    let perl = crate::programs::find("perl")?;
    let ok = tools::run(&perl, &["-MCGI", "-e1"]).is_some_and(|r| r.success);
    Some(if ok {
        pass(label, format!("{shown} uses CGI, and perl has it"))
    } else {
        fail(
            label,
            format!(
                "{shown} uses CGI, which is not in Perl's core since 5.22: every request would fail with \"Can't locate CGI.pm in @INC\" (or add `requirements: cpan: [CGI]`)"
            ),
            install("libcgi-pm-perl", "perl-CGI", "cpanm CGI"),
        )
    })
}

/// The language an app is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Language {
    Python,
    Node,
    Perl,
    Php,
    Ruby,
}

/// The app's language: from `framework`, else the `runtime` id, else its files (as staging
/// decides: pip requirements or requirements.txt → Python, package.json → Node).
pub(crate) fn language(app: &App) -> Option<Language> {
    let by_framework = match app.framework_name() {
        Some("python" | "wsgi" | "django") => Some(Language::Python),
        Some("node") => Some(Language::Node),
        Some("perl" | "perlcgi") => Some(Language::Perl),
        Some("php") => Some(Language::Php),
        Some("rack" | "rails3" | "rails4" | "sinatra") => Some(Language::Ruby),
        _ => None,
    };
    if by_framework.is_some() {
        return by_framework;
    }
    let rt = app.runtime.as_deref().unwrap_or("").to_ascii_lowercase();
    for (prefix, lang) in [
        ("python", Language::Python),
        ("node", Language::Node),
        ("perl", Language::Perl),
        ("php", Language::Php),
        ("ruby", Language::Ruby),
    ] {
        if rt.starts_with(prefix) {
            return Some(lang);
        }
    }
    if requirements::is_python(app) {
        return Some(Language::Python);
    }
    if app.path.join("package.json").is_file() {
        return Some(Language::Node);
    }
    None
}

/// Every check for the manifest's apps (or only `only`).
pub(crate) fn checks(loaded: &Loaded, only: Option<&str>) -> Vec<Check> {
    let apps: Vec<&App> = loaded
        .manifest
        .start_order()
        .into_iter()
        .filter(|a| only.is_none_or(|n| a.name.value == n))
        .collect();
    let state = StateDir::at(&loaded.manifest.dir);
    let mut out = Vec::new();

    let mut langs: Vec<Language> = Vec::new();
    for a in &apps {
        if let Some(l) = language(a)
            && !langs.contains(&l)
        {
            langs.push(l);
        }
    }
    for l in &langs {
        out.extend(runtime_checks(*l, &apps, &state));
    }
    let jetty_apps: Vec<&&App> = apps
        .iter()
        .filter(|a| crate::platform::web::runs_in_jetty(a))
        .collect();
    if !jetty_apps.is_empty() {
        out.push(java_check(&jetty_apps));
    }
    for a in &apps {
        // The buildpack it stages with, and whether it is there (a missing one is the
        // failure below).
        if let Some(Ok(from)) = crate::stage::buildpack::availability(a, &loaded.manifest.dir) {
            out.push(pass(format!("buildpack of {}", a.name.value), from));
        }
        if let Some(c) = crate::plan::cannot_start(a, &loaded.manifest.dir) {
            if c.debian == Some(crate::platform::web::JETTY_PACKAGES) {
                continue; // the java + Jetty line says it
            }
            let fix = match c.debian {
                Some(d) => {
                    let (fedora, macos) = match d {
                        "php-cli" => ("php-cli", "brew install php"),
                        "nodejs" | "npm" => (d, "brew install node"),
                        "ruby-rack" => ("rubygem-rack", "gem install rack"),
                        "ruby-bundler" => ("rubygem-bundler", "gem install bundler"),
                        _ => ("ruby", "brew install ruby"),
                    };
                    install(d, fedora, macos)
                }
                None => Some(Fix::Hint(c.fix())),
            };
            out.push(fail(
                format!("web command of {}", a.name.value),
                c.what,
                fix,
            ));
        }
    }
    for (ok, label, detail, pkg) in apps
        .iter()
        .flat_map(|a| crate::platform::php_ext::doctor_lines(a))
    {
        out.push(Check {
            ok,
            label,
            detail,
            fix: pkg.and_then(|p| install(p, p, "brew install php")),
        });
    }
    let python_uwsgi = apps
        .iter()
        .any(|a| requirements::needs_uwsgi(a) && language(a) == Some(Language::Python));
    if python_uwsgi {
        out.extend(uwsgi_checks(&state));
    }
    for a in apps.iter().filter(|a| {
        requirements::needs_uwsgi(a) && crate::platform::web::is_perl(a.framework_name())
    }) {
        out.push(psgi_check(&a.name.value));
    }
    for a in apps.iter().filter(|a| language(a) == Some(Language::Perl)) {
        if let Some(c) = cgi_check(a) {
            out.push(c);
        }
    }
    out.extend(service_checks(&apps, &state));
    out.push(port_check(&state, &loaded.manifest.dir));
    out.push(inotify_check(loaded, &state));
    if let Some(c) = inotify_instances_check() {
        out.push(c);
    }
    out.push(state_dir_check(&state, &loaded.manifest.dir));
    out.into_iter().map(escaped).collect()
}

/// A check as it may be printed: its texts hold the repository's (names, engines ranges,
/// Gemfile lines, paths), whose control characters and escape sequences are shown escaped
/// as `allow` shows them ([`crate::trust::display::escape`]), never sent to the terminal.
fn escaped(c: Check) -> Check {
    use crate::trust::display::escape;
    Check {
        ok: c.ok,
        label: escape(&c.label),
        detail: escape(&c.detail),
        fix: c.fix.map(|f| match f {
            Fix::Install {
                debian,
                fedora,
                macos,
            } => Fix::Install {
                debian: escape(&debian),
                fedora: escape(&fedora),
                macos: escape(&macos),
            },
            Fix::Hint(h) => Fix::Hint(escape(&h)),
        }),
    }
}

// ---------------------------------------------------------------------------------------------
// Language runtimes
// ---------------------------------------------------------------------------------------------

/// A program found the way `run` finds it, and its version line.
fn program(
    label: &str,
    name: &str,
    version_args: &[&str],
    fix: Option<Fix>,
    why: &str,
) -> (Check, Option<PathBuf>) {
    match crate::programs::find(name) {
        Some(p) => {
            let v = tools::first_line(&p, version_args)
                .unwrap_or_else(|| "version unknown".to_string());
            (pass(label, format!("{v} ({})", p.display())), Some(p))
        }
        None => (fail(label, format!("{name} not found; {why}"), fix), None),
    }
}

/// Per app of `lang`: the interpreter `run` uses (see [`crate::platform::runtime`]), ✘ with
/// the install command when the declared one is not installed.
fn declared_runtime_checks(lang: Language, apps: &[&App]) -> Vec<Check> {
    use crate::platform::runtime::{self as rt, Lang};
    let want = match lang {
        Language::Python => Lang::Python,
        Language::Node => Lang::Node,
        Language::Ruby => Lang::Ruby,
        _ => return Vec::new(),
    };
    apps.iter()
        .filter(|a| language(a) == Some(lang))
        .filter_map(|a| {
            let c = rt::resolve(a, &a.path)?;
            if c.declared.as_ref().is_some_and(|d| d.lang != want) {
                return None;
            }
            let label = format!("runtime of {}", a.name.value);
            let used = c.chosen.as_ref().map(|i| {
                format!(
                    "{} {} ({}, from {})",
                    i.lang.name(),
                    i.version.shown(),
                    i.path.display(),
                    i.from
                )
            });
            Some(match (c.mismatch(), used) {
                (None, Some(u)) => pass(
                    label,
                    match &c.declared {
                        Some(d) => format!("{u}, as {} declares ({})", d.place(), d.text),
                        None => match rt::unreadable(a, &a.path) {
                            Some(x) => format!("{u} (nothing declared: {})", x.message()),
                            None => format!("{u} (nothing declared)"),
                        },
                    },
                ),
                (Some(m), _) => fail(label, m, Some(Fix::Hint(c.install_hint()))),
                (None, None) => fail(
                    label,
                    format!("no {} is installed here", want.name()),
                    Some(Fix::Hint(rt::install_hint(want, None))),
                ),
            })
        })
        .collect()
}

fn runtime_checks(lang: Language, apps: &[&App], state: &StateDir) -> Vec<Check> {
    let mut v = declared_runtime_checks(lang, apps);
    match lang {
        Language::Python => {
            let (c, py) = program(
                "python3",
                "python3",
                &["--version"],
                install("python3 python3-venv", "python3", "brew install python"),
                "Python apps are staged into a virtualenv made with it",
            );
            v.push(c);
            let venv = requirements::venv_python(state);
            if venv.is_file() {
                v.push(pass(
                    "python3 venv module",
                    format!(
                        "the virtualenv {} exists already",
                        crate::diag::display_path(&requirements::venv_dir(state))
                    ),
                ));
            } else if let Some(py) = py {
                let ok =
                    tools::run(&py, &["-c", "import venv, ensurepip"]).is_some_and(|r| r.success);
                v.push(if ok {
                    pass(
                        "python3 venv module",
                        "present (staging creates .stackato-local/venv with it)",
                    )
                } else {
                    fail(
                        "python3 venv module",
                        "`python3 -m venv` cannot work here (no venv/ensurepip module); staging needs it for .stackato-local/venv",
                        install("python3-venv", "python3", "brew install python"),
                    )
                });
            } else {
                v.push(fail(
                    "python3 venv module",
                    "needs python3",
                    install("python3-venv", "python3", "brew install python"),
                ));
            }
        }
        Language::Node => {
            v.push(
                program(
                    "node",
                    "node",
                    &["--version"],
                    install("nodejs", "nodejs", "brew install node"),
                    "Node.js apps run with it",
                )
                .0,
            );
            v.push(
                program(
                    "npm",
                    "npm",
                    &["--version"],
                    install("npm", "npm", "brew install node"),
                    "staging runs npm install for package.json",
                )
                .0,
            );
        }
        Language::Perl => {
            v.push(
                program(
                    "perl",
                    "perl",
                    &["-e", "print qq(perl $^V\\n)"],
                    install("perl", "perl", "brew install perl"),
                    "Perl apps run with it",
                )
                .0,
            );
            v.push(
                program(
                    "cpanm",
                    "cpanm",
                    &["--version"],
                    install("cpanminus", "perl-App-cpanminus", "brew install cpanminus"),
                    "staging installs Perl modules (requirements.txt, requirements: cpan:) with it",
                )
                .0,
            );
            let plack = apps.iter().any(|a| {
                language(a) == Some(Language::Perl)
                    && matches!(&a.web, Web::Command(c) if c.value.contains("plackup"))
            });
            if plack {
                // Modules staging installs with cpanm go to .stackato-local/perl5, whose bin is
                // not on the processes' PATH: the web command needs a plackup on PATH.
                v.push(
                    program(
                        "plackup",
                        "plackup",
                        &["--version"],
                        install("libplack-perl", "perl-Plack", "cpanm Plack"),
                        "the web command runs it",
                    )
                    .0,
                );
            }
        }
        Language::Php => {
            v.push(
                program(
                    "php",
                    "php",
                    &["--version"],
                    install("php-cli", "php-cli", "brew install php"),
                    "PHP apps are served with `php -S` locally",
                )
                .0,
            );
        }
        Language::Ruby => {
            v.push(
                program(
                    "ruby",
                    "ruby",
                    &["--version"],
                    install("ruby-full", "ruby", "brew install ruby"),
                    "Ruby apps run with it",
                )
                .0,
            );
            v.push(
                program(
                    "bundle",
                    "bundle",
                    &["--version"],
                    install("ruby-bundler", "rubygem-bundler", "brew install ruby"),
                    "Ruby apps install their Gemfile with it",
                )
                .0,
            );
        }
    }
    v
}

// ---------------------------------------------------------------------------------------------
// uWSGI
// ---------------------------------------------------------------------------------------------

const STANDIN_NOTE: &str = "without it `run` serves the app with a pure-Python stand-in for uWSGI";

fn uwsgi_checks(state: &StateDir) -> Vec<Check> {
    let built = requirements::venv_dir(state).join("bin").join("uwsgi");
    let standin = requirements::is_uwsgi_standin(&built);
    if built.is_file() && !standin {
        return vec![pass(
            "uWSGI",
            format!(
                "built already ({}); nothing to compile",
                crate::diag::display_path(&built)
            ),
        )];
    }
    let mut v = Vec::new();
    // pip compiles with $CC, else cc, found on PATH.
    let cc_env = std::env::var("CC")
        .ok()
        .and_then(|c| c.split_whitespace().next().map(str::to_string))
        .filter(|c| !c.is_empty());
    let candidates: Vec<String> = match &cc_env {
        Some(c) => vec![c.clone()],
        None => vec!["cc".into(), "gcc".into()],
    };
    match candidates
        .iter()
        .find_map(|c| tools::on_path(c).map(|p| (c.clone(), p)))
    {
        Some((name, p)) => {
            let version = tools::first_line(&p, &["--version"]).unwrap_or_else(|| name.clone());
            v.push(pass(
                "C compiler for uWSGI",
                format!("{version} ({})", p.display()),
            ));
        }
        None => v.push(fail(
            "C compiler for uWSGI",
            format!(
                "{} not found on PATH; staging compiles uWSGI for $STACKATO_UWSGI ({STANDIN_NOTE})",
                candidates.join(" or ")
            ),
            install("gcc", "gcc", "xcode-select --install"),
        )),
    }
    v.push(match python_header() {
        Ok(h) => pass("Python headers for uWSGI", h.display().to_string()),
        Err(why) => fail(
            "Python headers for uWSGI",
            format!("{why}; staging compiles uWSGI against them ({STANDIN_NOTE})"),
            install("python3-dev", "python3-devel", "brew install python"),
        ),
    });
    v
}

/// Why the Python headers were not found.
#[derive(Debug, thiserror::Error)]
enum NoPythonHeader {
    #[error("python3 not found")]
    NoPython,
    #[error("no Python.h in {}", .0.display())]
    NotIn(PathBuf),
    #[error("python3 does not say where its headers are")]
    NotSaid,
}

/// `Python.h` of the python3 staging uses: from `sysconfig`, else `python3-config --includes`.
fn python_header() -> Result<PathBuf, NoPythonHeader> {
    let Some(py) = crate::programs::find("python3") else {
        return Err(NoPythonHeader::NoPython);
    };
    let mut dirs: Vec<PathBuf> = Vec::new();
    if let Some(r) = tools::run(
        &py,
        &[
            "-c",
            "import sysconfig;print(sysconfig.get_paths()[\"include\"])",
        ],
    ) && r.success
    {
        dirs.push(PathBuf::from(r.stdout.trim()));
    }
    let config = py
        .parent()
        .map(|d| d.join("python3-config"))
        .filter(|p| p.is_file())
        .or_else(|| crate::programs::find("python3-config"));
    if let Some(cfg) = config
        && let Some(r) = tools::run(&cfg, &["--includes"])
        && r.success
    {
        dirs.extend(
            r.stdout
                .split_whitespace()
                .filter_map(|w| w.strip_prefix("-I"))
                .map(PathBuf::from),
        );
    }
    dirs.iter()
        .map(|d| d.join("Python.h"))
        .find(|h| h.is_file())
        .ok_or_else(|| match dirs.first() {
            Some(d) => NoPythonHeader::NotIn(d.clone()),
            None => NoPythonHeader::NotSaid,
        })
}

// ---------------------------------------------------------------------------------------------
// Services
// ---------------------------------------------------------------------------------------------

fn service_checks(apps: &[&App], state: &StateDir) -> Vec<Check> {
    let mut seen: Vec<String> = Vec::new();
    let mut v = Vec::new();
    for a in apps {
        for s in &a.services {
            let Some(kind) = &s.kind else { continue };
            let name = s.name.value.clone();
            if seen.contains(&name) {
                continue;
            }
            seen.push(name.clone());
            v.push(service_check(&name, &kind.value, state));
        }
    }
    v
}

fn service_check(name: &str, kind: &str, state: &StateDir) -> Check {
    let label = format!("service {name} ({kind})");
    let Some(b) = crate::services::for_kind(kind) else {
        return match kind {
            "filesystem" => pass(label, "a directory in .stackato-local; nothing to install"),
            "user-provided" | "harbor" => pass(label, "nothing runs locally; nothing to install"),
            _ => fail(
                label,
                format!(
                    "{}; `run` cannot start it",
                    crate::services::unavailable_message(name, kind)
                ),
                Some(Fix::Hint(format!(
                    "run without it: `stackato-local run --skip-service {name}`"
                ))),
            ),
        };
    };
    match backend::find(b) {
        Ok(bins) => {
            let first = b.programs().first().and_then(|p| p.first()).copied();
            let exe = first.map(|p| bins.get(p)).unwrap_or_default();
            let version = if b.has_version_flag() {
                tools::first_line(&exe, &["--version"])
                    .as_deref()
                    .and_then(tools::version_number)
            } else {
                b.installed_version()
            };
            let running = running_note(b, name, state);
            pass(
                label,
                format!(
                    "{} {} ({}){running}",
                    b.product(),
                    version.as_deref().unwrap_or("(version unknown)"),
                    exe.display()
                ),
            )
        }
        // Not packaged by Debian: the message says where to get it instead.
        Err(e @ crate::services::ServiceError::Missing { .. })
            if crate::services::NOT_PACKAGED
                .iter()
                .any(|(k, _, _)| *k == kind) =>
        {
            fail(
                label,
                format!("{e}; `run` cannot start it"),
                Some(Fix::Hint(format!(
                    "run without it: `stackato-local run --skip-service {name}`"
                ))),
            )
        }
        Err(crate::services::ServiceError::Missing { program, .. }) => {
            let fallback = if crate::platform::services::is_relational(kind) {
                "; `run` uses sqlite instead (or fails with --db native)"
            } else {
                "; `run` cannot start it"
            };
            let (deb, fedora, brew) = b.packages();
            fail(
                label,
                format!(
                    "{} is not installed ({program} not found){fallback}",
                    b.product()
                ),
                install(deb, fedora, &format!("brew install {brew}")),
            )
        }
        Err(e) => fail(label, e.to_string(), None),
    }
}

/// The pid file of a project's service, wherever its data lives (the pid file is always in the
/// project's state directory).
fn service_paths(state: &StateDir, name: &str) -> ServicePaths {
    let me = RunAs {
        name: String::new(),
        uid: nix::unistd::Uid::effective().as_raw(),
        gid: nix::unistd::Gid::effective().as_raw(),
        drop_privileges: false,
    };
    ServicePaths::new(state.root(), &lifecycle::project_id(state), name, &me)
}

fn running_note(b: &dyn Backend, name: &str, state: &StateDir) -> String {
    if !state.root().is_dir() {
        return String::new();
    }
    match lifecycle::status(b, &service_paths(state, name)) {
        lifecycle::Status::Running { pid, port } => {
            format!("; running for this project (pid {pid}, port {port})")
        }
        _ => String::new(),
    }
}

// ---------------------------------------------------------------------------------------------
// Ports
// ---------------------------------------------------------------------------------------------

fn port_check(state: &StateDir, project: &Path) -> Check {
    let label = "remembered ports";
    if !state.root().is_dir() {
        return pass(label, "none yet (the first `run` picks free ones)");
    }
    let list = match ports::remembered(state) {
        Ok(l) => l,
        Err(e) => {
            return fail(
                label,
                e.to_string(),
                Some(Fix::Hint(
                    "move the damaged file away; the next `run` starts afresh".into(),
                )),
            );
        }
    };
    if list.is_empty() {
        return pass(label, "none yet (the first `run` picks free ones)");
    }
    let mut free = Vec::new();
    let mut ours = Vec::new();
    let mut taken = Vec::new();
    for r in &list {
        if crate::services::ports::is_free(r.port) {
            free.push(r.port.to_string());
            continue;
        }
        let mine = match &r.user {
            ports::User::Service { name, kind } => crate::services::for_kind(kind).and_then(|b| {
                match lifecycle::status(b, &service_paths(state, name)) {
                    lifecycle::Status::Running { pid, port } if port == r.port => {
                        Some(format!("{} by our {kind} server (pid {pid})", r.port))
                    }
                    _ => None,
                }
            }),
            ports::User::Instance(_) => None,
        };
        let holder = ports::holder(r.port);
        let mine = mine.or_else(|| {
            holder
                .as_ref()
                .filter(|h| ports::is_inside(h, project))
                .map(|h| format!("{} by this project's {} (pid {})", r.port, r.user, h.pid))
        });
        match mine {
            Some(m) => ours.push(m),
            None => taken.push(match holder {
                Some(h) => format!(
                    "port {} ({}) is held by another program: pid {} ({})",
                    r.port, r.user, h.pid, h.command
                ),
                None => format!(
                    "port {} ({}) is held by another program (of another user, or not visible)",
                    r.port, r.user
                ),
            }),
        }
    }
    if taken.is_empty() {
        let mut parts = Vec::new();
        if !free.is_empty() {
            parts.push(format!("free: {}", free.join(", ")));
        }
        if !ours.is_empty() {
            parts.push(format!("in use {}", ours.join(", ")));
        }
        return pass(label, parts.join("; "));
    }
    fail(
        label,
        taken.join("; "),
        Some(Fix::Hint(format!(
            "stop that program; or let `run` pick new ports: a service's port moves by itself when taken, and an app instance's is forgotten when you delete its entry from {}",
            crate::diag::display_path(&state.path(ports::PORTS_FILE))
        ))),
    )
}

// ---------------------------------------------------------------------------------------------
// inotify
// ---------------------------------------------------------------------------------------------

fn inotify_check(loaded: &Loaded, state: &StateDir) -> Check {
    let label = "inotify watches";
    let dirs = watches::directories(loaded, state) as u64;
    let Some(limit) = watches::max_user_watches() else {
        return pass(
            label,
            format!(
                "{dirs} {} to watch; no {} here (not Linux), so no inotify limit applies",
                if dirs == 1 {
                    "directory"
                } else {
                    "directories"
                },
                watches::LIMIT_FILE
            ),
        );
    };
    let used = watches::watches_in_use();
    let used_text = used.map_or(String::new(), |u| format!(", {u} in use by your programs"));
    let detail = format!(
        "{dirs} {} to watch; limit {limit} (fs.inotify.max_user_watches){used_text}",
        if dirs == 1 {
            "directory"
        } else {
            "directories"
        }
    );
    if dirs + used.unwrap_or(0) <= limit {
        return pass(label, detail);
    }
    let want = (dirs + used.unwrap_or(0)).saturating_mul(2).max(524_288);
    fail(
        label,
        format!("{detail}: not enough to watch every directory"),
        Some(Fix::Hint(format!(
            "raise the limit: `echo fs.inotify.max_user_watches={want} | sudo tee /etc/sysctl.d/90-stackato-local.conf && sudo sysctl --system`; or ignore big directories (`.gitignore`, `ignores:`), or `run --poll`"
        ))),
    )
}

/// One inotify instance per `run`: is there one left? `None` without inotify (not Linux).
fn inotify_instances_check() -> Option<Check> {
    let label = "inotify instances";
    let limit = watches::max_user_instances()?;
    let used = watches::instances_in_use();
    let used_text = used.map_or(String::new(), |u| format!("{u} in use by your programs; "));
    let detail = format!("{used_text}limit {limit} (fs.inotify.max_user_instances); `run` needs 1");
    if used.unwrap_or(0) < limit {
        return Some(pass(label, detail));
    }
    let want = (used.unwrap_or(0) + 1).saturating_mul(2).max(1024);
    Some(fail(
        label,
        format!("{detail}: none left, so `run` would poll the files instead of watching them"),
        Some(Fix::Hint(format!(
            "raise the limit: `echo fs.inotify.max_user_instances={want} | sudo tee /etc/sysctl.d/90-stackato-local-instances.conf && sudo sysctl --system`; or close programs that watch files (editors, other `run`s)"
        ))),
    ))
}

// ---------------------------------------------------------------------------------------------
// The state directory
// ---------------------------------------------------------------------------------------------

/// Whether a file can be created (and removed) in `dir`.
fn writable(dir: &Path) -> Result<(), std::io::Error> {
    let probe = dir.join(format!(".doctor-probe-{}", std::process::id()));
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&probe)?;
    std::fs::remove_file(&probe)
}

fn state_dir_check(state: &StateDir, project: &Path) -> Check {
    let label = "state directory";
    let shown = format!("{}/", crate::diag::display_path(state.root()));
    match std::fs::symlink_metadata(state.root()) {
        Ok(md) if md.file_type().is_symlink() => fail(
            label,
            format!(
                "{shown} is a symbolic link; the tool refuses to use it (a repository could point it anywhere)"
            ),
            Some(Fix::Hint(format!(
                "remove the link {shown}; the next command creates the directory"
            ))),
        ),
        Ok(md)
            if md.is_dir() && {
                use std::os::unix::fs::MetadataExt;
                md.uid() != nix::unistd::Uid::effective().as_raw()
            } =>
        {
            fail(
                label,
                format!("{shown} belongs to another user; the tool refuses to use it"),
                Some(Fix::Hint(format!(
                    "move {shown} away, or make it yours: `sudo chown -R \"$(id -un)\" {shown}`"
                ))),
            )
        }
        Ok(md) if !md.is_dir() => fail(
            label,
            format!("{shown} is not a directory"),
            Some(Fix::Hint(format!("move {shown} away"))),
        ),
        Ok(_) => match writable(state.root()) {
            Ok(()) => pass(label, format!("{shown} is writable")),
            Err(e) => fail(
                label,
                format!("{shown} is not writable: {e}"),
                Some(Fix::Hint(format!(
                    "make it yours: `sudo chown -R \"$(id -un)\" {shown}`"
                ))),
            ),
        },
        Err(_) => match writable(project) {
            Ok(()) => pass(
                label,
                format!("{shown} does not exist yet; it can be created"),
            ),
            Err(e) => fail(
                label,
                format!(
                    "{shown} cannot be created: {} is not writable ({e})",
                    crate::diag::display_path(project)
                ),
                Some(Fix::Hint(format!(
                    "make {} writable for you",
                    crate::diag::display_path(project)
                ))),
            ),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::uses_cgi;

    #[test]
    fn cgi_use_lines() {
        assert!(uses_cgi("#!/usr/bin/perl\nuse strict;\nuse CGI;\n"));
        assert!(uses_cgi("use CGI qw(:standard);"));
        assert!(uses_cgi("  require CGI;"));
        assert!(uses_cgi("use CGI ':standard';"));
        assert!(uses_cgi("use CGI::Carp qw(fatalsToBrowser);"));
        assert!(!uses_cgi("use CGI::Simple;"));
        assert!(!uses_cgi("# use CGI;"));
    }
}
