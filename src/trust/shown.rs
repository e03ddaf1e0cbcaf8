//! What `allow` and the trust prompt show: every command the project runs (hooks, web and
//! worker commands, `command:`, cron and crontab lines, Procfile lines, the framework's default
//! web command), the installers that run repository code (pip with local packages, npm with
//! lifecycle scripts, cpanm, bundler), and the `env:` / `.env` values that change how programs
//! run (`crate::env::risky`).

use std::path::Path;

use crate::env::risky::changes_how_programs_run;
use crate::manifest::model::Web;
use crate::manifest::{App, Loaded};
use crate::trust::files::{self, ReqRef};
use crate::trust::record::Shown;

/// The `.env` entries of the files the environment reads for `app` (project's, then app's),
/// with the file each came from; unreadable or malformed files give nothing.
fn dotenv_entries(loaded: &Loaded, app: &App, root: &Path) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    let mut paths = vec![loaded.manifest.dir.join(".env")];
    if app.path != loaded.manifest.dir {
        paths.push(app.path.join(".env"));
    }
    for p in paths {
        let Some(t) = files::text(&p, root) else {
            continue;
        };
        let Ok(entries) = crate::env::dotenv::parse(&t, &|_| None) else {
            continue;
        };
        let shown = p
            .strip_prefix(&loaded.manifest.dir)
            .map_or_else(|_| p.display().to_string(), |r| r.display().to_string());
        for e in entries {
            out.push((shown.clone(), e.key, e.value));
        }
    }
    out
}

/// A variable as staging sees it (`PIP_REQUIREMENTS_FILE`, `PIP_OPTS`): the manifest's value,
/// overridden by `.env`.
pub(crate) fn staging_value(loaded: &Loaded, app: &App, root: &Path, name: &str) -> Option<String> {
    let mut v = app
        .env
        .iter()
        .find(|e| e.name.value == name)
        .and_then(|e| e.default.as_ref().map(|d| d.value.clone()));
    for (_, k, val) in dotenv_entries(loaded, app, root) {
        if k == name {
            v = Some(val);
        }
    }
    v.filter(|s| !s.is_empty())
}

/// npm's lifecycle scripts that `npm install` runs.
const NPM_LIFECYCLE: &[&str] = &[
    "preinstall",
    "install",
    "postinstall",
    "prepublish",
    "preprepare",
    "prepare",
    "postprepare",
];

fn push(out: &mut Vec<Shown>, what: String, text: impl Into<String>) {
    let s = Shown {
        what,
        text: text.into(),
    };
    if !out.contains(&s) {
        out.push(s);
    }
}

/// Everything shown for the project, in a stable order.
pub(crate) fn shown(loaded: &Loaded, root: &Path) -> Vec<Shown> {
    let mut out = Vec::new();
    for app in &loaded.manifest.apps {
        app_shown(loaded, app, root, &mut out);
    }
    out
}

fn app_shown(loaded: &Loaded, app: &App, root: &Path, out: &mut Vec<Shown>) {
    let n = &app.name.value;
    for (stage, hooks) in [
        ("pre-staging", &app.hooks.pre_staging),
        ("post-staging", &app.hooks.post_staging),
        ("pre-running", &app.hooks.pre_running),
    ] {
        for h in hooks {
            push(out, format!("{n} {stage} hook"), h.command.clone());
        }
    }
    let default_web = || {
        crate::export::default_web(app).map(|d| {
            if d == "$STACKATO_UWSGI" {
                format!(
                    "$STACKATO_UWSGI (uWSGI serving {})",
                    crate::platform::web::start_file(app).unwrap_or_default()
                )
            } else {
                d
            }
        })
    };
    match &app.web {
        Web::Command(c) => {
            push(out, format!("{n} web"), c.value.clone());
            // A web command that runs the default one.
            if c.value.contains("PROCESSES_WEB")
                && let Some(d) = default_web()
            {
                push(
                    out,
                    format!("{n} web (framework default, $PROCESSES_WEB)"),
                    d,
                );
            }
        }
        Web::Worker => {}
        Web::Default if app.command.is_none() && app.framework_name().is_some() => {
            if let Some(d) = default_web() {
                push(out, format!("{n} web (framework default)"), d);
            }
        }
        Web::Default => {}
    }
    if let Some(c) = &app.command {
        push(out, format!("{n} command"), c.value.clone());
    }
    // Procfile lines (the web line is the default web command of an app without framework).
    if let Some(t) = files::text(&app.path.join("Procfile"), root) {
        for l in t.lines() {
            let l = l.trim();
            if l.is_empty() || l.starts_with('#') {
                continue;
            }
            match l.split_once(':') {
                Some((k, v)) => push(out, format!("{n} Procfile {}", k.trim()), v.trim()),
                None => push(out, format!("{n} Procfile"), l),
            }
        }
    }
    for c in &app.cron {
        push(out, format!("{n} cron"), c.value.clone());
    }
    if let Some(t) = files::text(&app.path.join("crontab"), root) {
        for l in t
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
        {
            push(out, format!("{n} crontab"), l);
        }
    }
    installers(loaded, app, root, out);
    if let Some(v) = crate::stage::buildpack::manifest_value(app) {
        let what = if crate::stage::buildpack::is_url(&v) {
            "git clone of this buildpack; its bin/detect, bin/compile and bin/release run at staging"
        } else {
            "its bin/detect, bin/compile and bin/release run at staging (their digests are recorded)"
        };
        push(out, format!("{n} buildpack"), format!("{v} — {what}"));
    }
    // Sourced only for an app a buildpack stages (as the platform did: spec §4.5 step 3,
    // "3.x buildpacks"); a framework app's `.profile.d` is a file like any other.
    if crate::stage::buildpack::applies(app, None)
        && let Ok(rd) = std::fs::read_dir(app.path.join(".profile.d"))
        && app
            .path
            .join(".profile.d")
            .canonicalize()
            .is_ok_and(|c| c.starts_with(root))
    {
        let mut names: Vec<String> = rd
            .filter_map(Result::ok)
            .filter_map(|e| e.file_name().to_str().map(str::to_string))
            .filter(|n| n.ends_with(".sh"))
            .take(64)
            .collect();
        names.sort();
        for name in names {
            let f = app.path.join(".profile.d").join(&name);
            push(
                out,
                format!("{n} .profile.d/{name} (sourced before each process)"),
                files::text(&f, root).unwrap_or_default(),
            );
        }
    }
    for e in &app.env {
        if changes_how_programs_run(&e.name.value)
            && let Some(d) = &e.default
        {
            push(
                out,
                format!("{n} env (manifest)"),
                format!("{}={}", e.name.value, d.value),
            );
        }
    }
    for (file, k, v) in dotenv_entries(loaded, app, root) {
        if changes_how_programs_run(&k) {
            push(out, format!("{n} env ({file})"), format!("{k}={v}"));
        }
    }
}

fn rel(app: &App, p: &Path) -> String {
    p.strip_prefix(&app.path)
        .map_or_else(|_| p.display().to_string(), |r| r.display().to_string())
}

/// The installers staging runs for `app`, and the repository code they execute.
fn installers(loaded: &Loaded, app: &App, root: &Path, out: &mut Vec<Shown>) {
    let n = &app.name.value;
    let fw = app.framework_name();
    let python = crate::stage::requirements::is_python(app);
    if python {
        let prf = staging_value(loaded, app, root, "PIP_REQUIREMENTS_FILE");
        let file = files::pip_files(app, prf.as_deref())
            .into_iter()
            .find(|p| p.is_file());
        if let Some(f) = file {
            let text = files::text(&f, root).unwrap_or_default();
            let count = text
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .count();
            push(
                out,
                format!("{n} installer"),
                format!(
                    "pip install -r {} ({count} line{}; pip runs each package's build code)",
                    rel(app, &f),
                    if count == 1 { "" } else { "s" }
                ),
            );
            let mut queue = vec![f];
            let mut seen = Vec::new();
            'files: while let Some(f) = queue.pop() {
                if seen.contains(&f) || seen.len() >= 64 {
                    continue;
                }
                seen.push(f.clone());
                let Some(t) = files::text(&f, root) else {
                    continue;
                };
                let dir = f.parent().map(Path::to_path_buf).unwrap_or_default();
                for r in files::requirement_refs(&t) {
                    if out.len() > files::MAX_DECISIVE {
                        push(
                            out,
                            format!("{n} installer"),
                            format!(
                                "{} names more local packages and requirement files than can be checked",
                                rel(app, &f)
                            ),
                        );
                        break 'files;
                    }
                    match r {
                        ReqRef::File(x) => {
                            let p = files::resolve(&dir, &x);
                            push(
                                out,
                                format!("{n} installer"),
                                format!("pip reads {} too", rel(app, &p)),
                            );
                            queue.push(p);
                        }
                        ReqRef::Links(x) => {
                            push(
                                out,
                                format!("{n} local package"),
                                format!(
                                    "packages from {x} (pip builds the archives in it: their build code runs)"
                                ),
                            );
                        }
                        ReqRef::Local(x) => {
                            let p = files::resolve(&app.path, &x);
                            let outside = if p.starts_with(root) {
                                ""
                            } else {
                                ", OUTSIDE the project"
                            };
                            push(
                                out,
                                format!("{n} local package"),
                                format!(
                                    "{x} (pip builds it from source: its setup.py / pyproject.toml run{outside})"
                                ),
                            );
                        }
                    }
                }
            }
        }
        let list: Vec<&str> = app.requirements.python_packages();
        if !list.is_empty() {
            push(
                out,
                format!("{n} installer"),
                format!("pip install -- {}", argv(list.iter().copied())),
            );
        }
    }
    let package_json = app.path.join("package.json");
    if package_json.is_file() && matches!(fw, Some("node") | None) && !python {
        push(out, format!("{n} installer"), "npm install");
        if let Some(t) = files::text(&package_json, root) {
            match serde_json::from_str::<serde_json::Value>(&t) {
                Ok(json) => {
                    if let Some(scripts) = json.get("scripts").and_then(|s| s.as_object()) {
                        for s in NPM_LIFECYCLE {
                            if let Some(c) = scripts.get(*s) {
                                let c = c.as_str().map_or_else(|| c.to_string(), str::to_string);
                                push(out, format!("{n} npm {s} script"), c);
                            }
                        }
                    }
                    // `npm start`: the web command of a Node app without a start file.
                    if let Some(start) = crate::platform::detect::npm_start(&app.path)
                        && app.command.is_none()
                        && matches!(app.web, Web::Default)
                        && crate::export::default_web(app).as_deref() == Some("npm start")
                    {
                        push(
                            out,
                            format!("{n} npm start script (the web command)"),
                            start,
                        );
                    }
                    for (name, p) in files::npm_local_deps(&json) {
                        push(
                            out,
                            format!("{n} npm local package"),
                            format!("{name}: {p} (its install scripts run)"),
                        );
                    }
                }
                Err(e) => push(
                    out,
                    format!("{n} installer"),
                    format!("package.json is not valid JSON ({e}); npm decides what it runs"),
                ),
            }
        }
        if let Some(t) = files::text(&app.path.join(".npmrc"), root) {
            for l in t
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with(';'))
            {
                push(out, format!("{n} npm setting (.npmrc)"), l);
            }
        }
    }
    let r = &app.requirements;
    let (_, perl_deps) = crate::stage::requirements::perl::modules(app, &app.path);
    if let Some(d) = perl_deps {
        push(
            out,
            format!("{n} installer"),
            format!("cpanm --installdeps . (runs {d}: Perl code from the repository)"),
        );
    }
    if crate::platform::perl::is_perl_app(app)
        && app
            .path
            .join(crate::stage::requirements::perl::BUNDLE)
            .join("modules")
            .is_dir()
    {
        push(
            out,
            format!("{n} installer"),
            "cpanm from the Carton bundle vendor/cache (each archive's Makefile.PL runs)",
        );
    }
    let perl_txt = (crate::platform::web::is_perl(fw) || crate::platform::perl::is_cgi(fw))
        && app.path.join("requirements.txt").is_file();
    if !r.cpan.is_empty() || !r.ppm.is_empty() || perl_txt {
        let mods = argv(r.cpan.iter().chain(&r.ppm).map(String::as_str));
        let txt = if perl_txt {
            " (and the modules in requirements.txt)"
        } else {
            ""
        };
        push(
            out,
            format!("{n} installer"),
            format!("cpanm -- {mods}{txt}"),
        );
    }
    let bundler = matches!(fw, Some("rack" | "rails3" | "sinatra") | None)
        || matches!(&app.web, Web::Command(c) if c.value.contains("bundle"))
        || app
            .command
            .as_ref()
            .is_some_and(|c| c.value.contains("bundle"));
    if bundler && app.path.join("Gemfile").is_file() {
        push(
            out,
            format!("{n} Gemfile"),
            "bundle install --local (the Gemfile is Ruby code that bundler runs)",
        );
    }
    if crate::stage::requirements::php::wanted(app, &app.path) {
        use crate::stage::requirements::php;
        push(out, format!("{n} installer"), php::COMPOSER_INSTALL);
        match files::text(&app.path.join("composer.json"), root)
            .map(|t| serde_json::from_str::<serde_json::Value>(&t))
        {
            Some(Ok(json)) => {
                for (name, c) in php::scripts(&json) {
                    push(out, format!("{n} composer script {name}"), c);
                }
                for p in php::path_repositories(&json) {
                    let outside = if files::resolve(&app.path, &p).starts_with(root) {
                        ""
                    } else {
                        ", OUTSIDE the project"
                    };
                    push(
                        out,
                        format!("{n} composer path repository"),
                        format!("{p} (copied into vendor/; a composer-plugin in it runs{outside})"),
                    );
                }
            }
            Some(Err(e)) => push(
                out,
                format!("{n} installer"),
                format!("composer.json is not valid JSON ({e}); Composer decides what it runs"),
            ),
            None => {}
        }
    }
}

/// Arguments as the argv they are: each one a shell word, quoted when it is not plain
/// (`'Foo; touch x'`), so a listing cannot read as a shell line that does something else.
fn argv<'a>(args: impl Iterator<Item = &'a str>) -> String {
    args.map(crate::shell::word).collect::<Vec<_>>().join(" ")
}
