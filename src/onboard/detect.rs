//! Recognising an app from its files: which kind it is (Django, Flask, plain WSGI, Node, Perl
//! PSGI, Perl CGI, PHP, Rails, Rack, Sinatra, a Java WAR, a Go/buildpack app; the platform
//! detection `run` uses, refined) and what it needs (services from its dependencies, migration hooks,
//! a web command, environment), each guess with the file that suggested it. Reads only; never
//! runs anything from the app.

use std::collections::BTreeSet;
use std::path::Path;

use crate::platform::detect::{gemfile_gems, is_file, node_start_file, read};

/// The kinds of app `init` knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Django,
    Flask,
    Wsgi,
    Node,
    Perl,
    Php,
    Rails,
    Rack,
    Sinatra,
    PerlCgi,
    Java,
    Buildpack,
}

impl Kind {
    /// Every kind, in the order detection tries them.
    pub(crate) const ALL: [Kind; 12] = [
        Kind::Django,
        Kind::Rails,
        Kind::Rack,
        Kind::Sinatra,
        Kind::Perl,
        Kind::PerlCgi,
        Kind::Flask,
        Kind::Wsgi,
        Kind::Node,
        Kind::Php,
        Kind::Java,
        Kind::Buildpack,
    ];

    /// The ids accepted by `init --kind`.
    pub(crate) const IDS: [&'static str; 12] = [
        "django",
        "flask",
        "wsgi",
        "node",
        "perl",
        "perlcgi",
        "php",
        "rails",
        "rack",
        "sinatra",
        "java",
        "buildpack",
    ];

    pub(crate) fn id(self) -> &'static str {
        match self {
            Kind::Django => "django",
            Kind::Flask => "flask",
            Kind::Wsgi => "wsgi",
            Kind::Node => "node",
            Kind::Perl => "perl",
            Kind::Php => "php",
            Kind::Rails => "rails",
            Kind::Rack => "rack",
            Kind::Sinatra => "sinatra",
            Kind::PerlCgi => "perlcgi",
            Kind::Java => "java",
            Kind::Buildpack => "buildpack",
        }
    }

    pub(crate) fn from_id(id: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.id() == id)
    }

    /// Words for messages: "a Django project".
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Kind::Django => "a Django project",
            Kind::Flask => "a Flask app",
            Kind::Wsgi => "a Python WSGI app",
            Kind::Node => "a Node.js app",
            Kind::Perl => "a Perl PSGI app",
            Kind::Php => "a PHP app",
            Kind::Rails => "a Rails app",
            Kind::Rack => "a Rack app",
            Kind::Sinatra => "a Sinatra app",
            Kind::PerlCgi => "a Perl CGI app",
            Kind::Java => "a Java web app (WAR)",
            Kind::Buildpack => "a buildpack app",
        }
    }

    /// The Stackato framework type (`framework: type:`).
    pub(crate) fn framework(self) -> &'static str {
        match self {
            Kind::Django | Kind::Flask | Kind::Wsgi => "python",
            Kind::Node => "node",
            Kind::Perl => "perl",
            Kind::Php => "php",
            Kind::Rails => "rails3",
            Kind::Rack => "rack",
            Kind::Sinatra => "sinatra",
            Kind::PerlCgi => "perlcgi",
            Kind::Java => "java_web",
            Kind::Buildpack => "buildpack",
        }
    }

    /// The Stackato runtime id written into the manifest, and why.
    pub(crate) fn runtime(self) -> (&'static str, &'static str) {
        match self {
            Kind::Django | Kind::Flask | Kind::Wsgi => (
                "python3",
                "the python3 installed here (what today's apps need; python27 for a Python 2 app); on a Stackato 3.x target it names python33",
            ),
            Kind::Node => (
                "node",
                "any Node.js: the node on your PATH runs it here (a version such as node18 runs on that version when nvm, fnm, volta, asdf or mise has it); a Stackato target names node010 (3.x) or node08 (2.x)",
            ),
            Kind::Perl | Kind::PerlCgi => ("perl514", "Stackato's Perl 5.14"),
            Kind::Php => ("php", "Stackato's PHP"),
            Kind::Rails | Kind::Rack | Kind::Sinatra => (
                "ruby",
                "any Ruby: the ruby on your PATH runs it here (a version such as ruby3.1 runs on that version when rbenv, asdf or mise has it); a Stackato target names ruby20 (3.x) or ruby19 (2.x)",
            ),
            Kind::Java => (
                "java7",
                "Stackato's Java 7; run uses the java installed here",
            ),
            // A buildpack brings its own runtime.
            Kind::Buildpack => ("", ""),
        }
    }
}

/// A value `init` chose, and the reason shown to the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reasoned {
    pub value: String,
    pub why: String,
}

fn reasoned(value: impl Into<String>, why: impl Into<String>) -> Reasoned {
    Reasoned {
        value: value.into(),
        why: why.into(),
    }
}

/// Everything `init` found out about an app.
#[derive(Debug, Clone)]
pub(crate) struct Detection {
    pub kind: Kind,
    /// The runtime when the app's files say more than its kind (Python 2 code → python27).
    pub runtime: Option<Reasoned>,
    /// Why this kind ("found manage.py and mysite/settings.py").
    pub why: String,
    /// Service types (`mysql`, …), one per type, in the order found.
    pub services: Vec<Reasoned>,
    /// `env:` entries: value is `NAME=VALUE`.
    pub env: Vec<(String, Reasoned)>,
    /// `processes: web`, when the framework's default will not do.
    pub web: Option<Reasoned>,
    pub post_staging: Vec<Reasoned>,
    /// `framework: document-root:` (PHP apps with a public directory).
    pub document_root: Option<Reasoned>,
    /// `requirements: cpan:` entries.
    pub cpan: Vec<Reasoned>,
    /// How the app's dependencies get installed (one line each, for the manifest's comments
    /// and the summary): e.g. "requirements.txt: installed with pip at staging".
    pub dependencies: Vec<String>,
    /// Patterns this kind adds to the client's default `ignores:` list (empty: no `ignores:`).
    pub ignores: Vec<Reasoned>,
    /// Things the user should know or do.
    pub notes: Vec<String>,
}

impl Detection {
    fn new(kind: Kind, why: String) -> Detection {
        Detection {
            kind,
            runtime: None,
            why,
            services: Vec::new(),
            env: Vec::new(),
            web: None,
            post_staging: Vec::new(),
            document_root: None,
            cpan: Vec::new(),
            dependencies: Vec::new(),
            ignores: Vec::new(),
            notes: Vec::new(),
        }
    }

    /// The runtime id written into the manifest, and why (empty for a buildpack app).
    pub(crate) fn runtime(&self) -> (String, String) {
        match &self.runtime {
            Some(r) => (r.value.clone(), r.why.clone()),
            None => {
                let (rt, why) = self.kind.runtime();
                (rt.into(), why.into())
            }
        }
    }

    /// Add a service type unless one of that type is already there.
    fn service(&mut self, kind: &str, why: String) {
        if !self.services.iter().any(|s| s.value == kind) {
            self.services.push(reasoned(kind, why));
        }
    }

    /// One line per guess: "framework python (found manage.py and wsgi.py)".
    pub(crate) fn explain(&self) -> Vec<String> {
        let mut v = vec![format!(
            "framework {} ({}: {})",
            self.kind.framework(),
            self.why,
            self.kind.describe()
        )];
        let (rt, rt_why) = self.runtime();
        if !rt.is_empty() {
            v.push(format!("runtime {rt} ({rt_why})"));
        }
        for s in &self.services {
            v.push(format!("service {} ({})", s.value, s.why));
        }
        for (name, e) in &self.env {
            v.push(format!("env {name}={} ({})", e.value, e.why));
        }
        if let Some(w) = &self.web {
            v.push(format!("web {} ({})", w.value, w.why));
        }
        if let Some(d) = &self.document_root {
            v.push(format!("document-root {} ({})", d.value, d.why));
        }
        for h in &self.post_staging {
            v.push(format!("hook post-staging: {} ({})", h.value, h.why));
        }
        for c in &self.cpan {
            v.push(format!("requirements cpan: {} ({})", c.value, c.why));
        }
        for d in &self.dependencies {
            v.push(format!("requirements {d}"));
        }
        if !self.ignores.is_empty() {
            v.push(format!(
                "ignores the client's default list plus {} ({})",
                self.ignores
                    .iter()
                    .map(|i| i.value.as_str())
                    .collect::<Vec<_>>()
                    .join(" "),
                self.ignores
                    .iter()
                    .map(|i| i.why.as_str())
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
        }
        v
    }
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum DetectError {
    #[error("cannot read the directory {path}: {source}")]
    Unreadable {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error(
        "cannot tell what kind of app is in {path}: no manage.py, Gemfile/config.ru, *.rb requiring sinatra, app.psgi, *.cgi/*.pl, Python file importing flask, wsgi.py, package.json, server.js/app.js/index.js, *.php, *.war or *.go"
    )]
    Unrecognised { path: std::path::PathBuf },
}

/// Recognise the app in `dir` (or take `forced` as its kind) and work out what it needs.
pub(crate) fn detect(dir: &Path, forced: Option<Kind>) -> Result<Detection, DetectError> {
    std::fs::read_dir(dir).map_err(|source| DetectError::Unreadable {
        path: dir.to_path_buf(),
        source,
    })?;
    let (kind, why) = match forced {
        Some(k) => (k, format!("--kind {}", k.id())),
        None => recognise(dir).ok_or_else(|| DetectError::Unrecognised {
            path: dir.to_path_buf(),
        })?,
    };
    let mut d = Detection::new(kind, why);
    match kind {
        Kind::Django => django(dir, &mut d),
        Kind::Flask => flask(dir, &mut d),
        Kind::Wsgi => wsgi(dir, &mut d),
        Kind::Node => node(dir, &mut d),
        Kind::Perl => perl(dir, &mut d),
        Kind::Php => php(dir, &mut d),
        Kind::Rails => ruby(dir, &mut d, true),
        Kind::Rack => ruby(dir, &mut d, false),
        Kind::Sinatra => sinatra(dir, &mut d),
        Kind::PerlCgi => perlcgi(dir, &mut d),
        Kind::Java => java(dir, &mut d),
        Kind::Buildpack => buildpack(&mut d),
    }
    Ok(d)
}

/// Which kind of app `dir` holds, and why we think so.
fn recognise(dir: &Path) -> Option<(Kind, String)> {
    // Django: manage.py with a settings module.
    if is_file(dir, "manage.py") {
        let manage = read(dir, "manage.py").unwrap_or_default();
        let settings = django_settings(dir, &manage);
        if manage.contains("django") || settings.is_some() {
            let mut found = vec!["manage.py".to_string()];
            if let Some((_, file)) = &settings {
                found.push(file.clone());
            }
            if let Some((_, file)) = django_wsgi(dir, settings.as_ref().map(|s| s.0.as_str())) {
                found.push(file);
            }
            return Some((Kind::Django, format!("found {}", and_list(&found))));
        }
    }
    // The platform's detection (shared with run, check, doctor and export), refined for
    // Python; then what init knows besides (Flask or WSGI modules, a package.json).
    if let Some(d) = crate::platform::detect::framework(dir) {
        let kind = match d.framework {
            "rails3" => Kind::Rails,
            "rack" => Kind::Rack,
            "sinatra" => Kind::Sinatra,
            "java_web" => Kind::Java,
            "buildpack" => Kind::Buildpack,
            "perl" => Kind::Perl,
            "node" => Kind::Node,
            "php" => Kind::Php,
            _ => match python_kind(dir) {
                Some(k) => return Some(k),
                None => Kind::Wsgi,
            },
        };
        return Some((kind, d.why));
    }
    if let Some(k) = python_kind(dir) {
        return Some(k);
    }
    if is_file(dir, "package.json") {
        return Some((Kind::Node, "found package.json".into()));
    }
    cgi_script(dir).map(|f| (Kind::PerlCgi, format!("found the CGI script {f}")))
}

/// The first top-level `*.cgi`/`*.pl` file that is a Perl CGI script (a perl shebang, and
/// CGI.pm or CGI headers printed).
fn cgi_script(dir: &Path) -> Option<String> {
    entries(dir, "", false)
        .into_iter()
        .filter(|f| f.ends_with(".cgi") || f.ends_with(".pl"))
        .find(|f| {
            read(dir, f).is_some_and(|t| {
                let perl = t
                    .lines()
                    .next()
                    .is_some_and(|l| l.starts_with("#!") && l.contains("perl"));
                perl && (t.contains("use CGI")
                    || t.contains("Content-type")
                    || t.contains("Content-Type"))
            })
        })
}

/// A Python app: Flask (a module importing it, or a requirement), then any WSGI module.
fn python_kind(dir: &Path) -> Option<(Kind, String)> {
    if let Some(f) = flask_module(dir) {
        return Some((Kind::Flask, format!("{} imports flask", f.file)));
    }
    let reqs = python_requirements(dir);
    if let Some(r) = reqs.reqs.iter().find(|r| r.norm == "flask") {
        return Some((Kind::Flask, format!("{} lists {}", r.file, r.shown)));
    }
    wsgi_module(dir).map(|w| {
        let why = if w.defines_application {
            format!("found {} defining `application`", w.file)
        } else {
            format!("found {}", w.file)
        };
        (Kind::Wsgi, why)
    })
}

// ---------------------------------------------------------------------------------------------
// Files
// ---------------------------------------------------------------------------------------------

/// Directories never looked into for the app's own code.
fn skipped_dir(name: &str) -> bool {
    name.starts_with('.')
        || matches!(
            name,
            "node_modules"
                | "venv"
                | "env"
                | "__pycache__"
                | "site-packages"
                | "vendor"
                | "static"
                | "staticfiles"
                | "media"
                | "tests"
                | "test"
                | "docs"
        )
}

/// Names of the entries of `dir/rel` (files or directories), sorted.
fn entries(dir: &Path, rel: &str, dirs: bool) -> Vec<String> {
    let Ok(rd) = std::fs::read_dir(dir.join(rel)) else {
        return Vec::new();
    };
    let mut v: Vec<String> = rd
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_type()
                .is_ok_and(|t| t.is_dir() == dirs && !t.is_symlink())
        })
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| !dirs || !skipped_dir(n))
        .collect();
    v.sort();
    v
}

/// "a", "a and b", "a, b and c".
fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [a] => a.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// Words of a source text: runs of letters, digits, `_`, `:` and `-`.
fn tokens(text: &str) -> BTreeSet<&str> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '_' | ':' | '-')))
        .filter(|t| !t.is_empty())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Python
// ---------------------------------------------------------------------------------------------

/// One requirement: its normalised name (lower case, `_`/`.` → `-`), as written, and the file.
#[derive(Debug, Clone)]
struct Req {
    norm: String,
    shown: String,
    file: String,
    /// The line's version specifiers (`==1.4.22`), trimmed.
    spec: String,
    /// 1-based line number in `file`.
    line: usize,
}

#[derive(Debug, Default)]
struct PythonReqs {
    /// The file staging installs (`requirements.txt`, else `requirements.pip`).
    main: Option<String>,
    reqs: Vec<Req>,
}

fn normalise(name: &str) -> String {
    name.to_ascii_lowercase().replace(['_', '.'], "-")
}

/// The package name of one requirements line, if it names one.
fn requirement_name(line: &str) -> Option<String> {
    let l = line.trim();
    if let Some(pos) = l.find("#egg=") {
        let egg: String = l[pos + 5..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            .collect();
        return (!egg.is_empty()).then_some(egg);
    }
    let l = match l.find(" #") {
        Some(p) => &l[..p],
        None => l,
    };
    if l.is_empty() || l.starts_with('#') || l.starts_with('-') || l.contains("://") {
        return None;
    }
    let name: String = l
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect();
    (!name.is_empty()).then_some(name)
}

/// The requirements staging would install: `requirements.txt` (or `requirements.pip`) and the
/// files it includes with `-r`.
fn python_requirements(dir: &Path) -> PythonReqs {
    let main = ["requirements.txt", "requirements.pip"]
        .into_iter()
        .find(|f| is_file(dir, f))
        .map(str::to_string);
    let mut out = PythonReqs {
        main: main.clone(),
        reqs: Vec::new(),
    };
    let mut queue: Vec<String> = main.into_iter().collect();
    let mut seen = BTreeSet::new();
    while let Some(rel) = queue.pop() {
        if !seen.insert(rel.clone()) || seen.len() > 16 {
            continue;
        }
        let Some(text) = read(dir, &rel) else {
            continue;
        };
        let base = Path::new(&rel)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        for (n, line) in text.lines().enumerate() {
            let t = line.trim();
            let include = t
                .strip_prefix("-r ")
                .or_else(|| t.strip_prefix("--requirement "))
                .or_else(|| t.strip_prefix("--requirement="));
            if let Some(inc) = include {
                let p = base.join(inc.trim());
                if let Some(s) = p.to_str() {
                    queue.push(s.to_string());
                }
                continue;
            }
            if let Some(name) = requirement_name(t) {
                let spec = t.split(['#', ';']).next().unwrap_or("");
                let spec = spec
                    .find(['=', '<', '>', '~', '!'])
                    .map_or("", |at| spec[at..].trim());
                out.reqs.push(Req {
                    norm: normalise(&name),
                    shown: name,
                    file: rel.clone(),
                    spec: spec.replace(' ', ""),
                    line: n + 1,
                });
            }
        }
    }
    out
}

fn python_service(norm: &str) -> Option<&'static str> {
    match norm {
        "psycopg2" | "psycopg2-binary" | "psycopg" | "psycopg-binary" | "pg8000" | "asyncpg" => {
            Some("postgresql")
        }
        "mysqlclient"
        | "pymysql"
        | "mysql-python"
        | "mysql-connector-python"
        | "mysql-connector" => Some("mysql"),
        "redis" | "django-redis" | "flask-redis" => Some("redis"),
        "pymemcache" | "python-memcached" | "python3-memcached" | "pylibmc" => Some("memcached"),
        _ => None,
    }
}

/// Services, the dependency note and the ignores every Python app gets.
fn python_common(dir: &Path, d: &mut Detection, framework_package: Option<&str>) {
    let reqs = python_requirements(dir);
    for r in &reqs.reqs {
        if let Some(kind) = python_service(&r.norm) {
            d.service(kind, format!("{} lists {}", r.file, r.shown));
        }
    }
    match &reqs.main {
        Some(f) => d.dependencies.push(format!(
            "{f}: installed with pip at staging (into .stackato-local/venv here); no `requirements:` key needed"
        )),
        None => {
            if let Some(pkg) = framework_package {
                d.notes.push(format!(
                    "there is no requirements.txt: create one listing {pkg} and the app's other packages (`pip freeze > requirements.txt`); staging installs it with pip"
                ));
            }
        }
    }
    if let Some(why) = python2_evidence(dir).or_else(|| python2_pin(&reqs.reqs)) {
        d.runtime = Some(reasoned(
            "python27",
            format!(
                "{why}: Python 2 code, which Python 3 cannot run; run needs a Python 2.7 here (e.g. `pyenv install 2.7.18`)"
            ),
        ));
    }
    d.ignores.push(reasoned(
        "*.pyc",
        "Python writes bytecode into the app directory",
    ));
    d.ignores.push(reasoned(
        "*__pycache__/",
        "Python writes bytecode into the app directory",
    ));
}

/// Where the app's Python code is Python 2 only (`file:line` and what): a `print` statement,
/// `except X, e`, or a module Python 3 does not have (pins: [`python2_pin`]).
fn python2_evidence(dir: &Path) -> Option<String> {
    let mut files = python_candidates(dir);
    let mut all: Vec<String> = entries(dir, "", false);
    for pkg in entries(dir, "", true) {
        all.extend(
            entries(dir, &pkg, false)
                .into_iter()
                .map(|f| format!("{pkg}/{f}")),
        );
    }
    for f in all {
        if f.ends_with(".py") && !files.contains(&f) {
            files.push(f);
        }
    }
    const MODULES: [&str; 7] = [
        "urllib2",
        "urlparse",
        "BaseHTTPServer",
        "SimpleHTTPServer",
        "cPickle",
        "StringIO",
        "ConfigParser",
    ];
    for f in files.iter().take(200) {
        let Some(text) = read(dir, f) else {
            continue;
        };
        for (i, line) in text.lines().enumerate() {
            let l = line.trim();
            let what = if l.starts_with("print \"") || l.starts_with("print '") {
                Some("a print statement".to_string())
            } else if l.starts_with("print >>") {
                Some("`print >>`".to_string())
            } else if let Some(rest) = l.strip_prefix("except ")
                && let Some((caught, _)) = rest.split_once(':')
                && caught.contains(',')
                && !caught.trim_start().starts_with('(')
                && !caught.contains(" as ")
            {
                Some(format!("`except {caught}`"))
            } else {
                let module = l
                    .strip_prefix("import ")
                    .or_else(|| l.strip_prefix("from "))
                    .and_then(|r| r.split([' ', ',', '.']).next());
                module
                    .filter(|m| MODULES.contains(m))
                    .map(|m| format!("imports {m}"))
            };
            if let Some(w) = what {
                return Some(format!("{f}:{} {w}", i + 1));
            }
        }
    }
    None
}

/// A requirement that exists for Python 2 only: Django before 1.5 (1.5 was the first with
/// Python 3 support), MySQL-python (MySQLdb, never ported). Other pins are not proof.
fn python2_pin(reqs: &[Req]) -> Option<String> {
    reqs.iter().find_map(|r| {
        let py2 = match r.norm.as_str() {
            "mysql-python" => true,
            "django" => django_before_1_5(&r.spec),
            _ => false,
        };
        py2.then(|| {
            format!(
                "{}:{} {}{} (a release for Python 2 only)",
                r.file, r.line, r.shown, r.spec
            )
        })
    })
}

/// Whether a Django version spec allows only versions before 1.5 (`==1.4.22`, `<1.5`,
/// `<=1.4`, `~=1.4.0`).
fn django_before_1_5(spec: &str) -> bool {
    let upper = |v: &str, inclusive: bool| {
        let mut parts = v.split('.').map(|p| p.parse::<u32>().ok());
        match (parts.next().flatten(), parts.next().flatten()) {
            (Some(0), _) => true,
            (Some(1), Some(minor)) => minor < 5 || (!inclusive && minor == 5),
            (Some(1), None) => true,
            _ => false,
        }
    };
    spec.split(',').any(|c| {
        if let Some(v) = c.strip_prefix("==").or_else(|| c.strip_prefix("~=")) {
            upper(v.trim_end_matches(".*"), true)
        } else if let Some(v) = c.strip_prefix("<=") {
            upper(v, true)
        } else if let Some(v) = c.strip_prefix('<') {
            upper(v, false)
        } else {
            false
        }
    })
}

/// The module path of a Python file: `pkg/wsgi.py` → `pkg.wsgi`, `pkg/__init__.py` → `pkg`.
fn module_of(rel: &str) -> String {
    let m = rel.trim_end_matches(".py").trim_end_matches("/__init__");
    m.replace('/', ".")
}

/// Whether a Python source binds `name` at the top level (def, assignment or import).
fn defines(text: &str, name: &str) -> bool {
    text.lines().any(|l| {
        if l.starts_with([' ', '\t']) {
            return false;
        }
        if let Some(rest) = l.strip_prefix("def ") {
            return rest.trim_start().starts_with(&format!("{name}("));
        }
        if let Some(rest) = l.strip_prefix(name) {
            let rest = rest.trim_start();
            return (rest.starts_with('=') && !rest.starts_with("==")) || rest.starts_with(':');
        }
        if l.starts_with("from ") || l.starts_with("import ") {
            let after = l.split_once(" import ").map_or(l, |(_, a)| a);
            return after
                .split(|c: char| c == ',' || c.is_whitespace() || c == '(' || c == ')')
                .any(|t| t == name);
        }
        false
    })
}

fn imports_flask(text: &str) -> bool {
    text.lines().map(str::trim_start).any(|l| {
        l.starts_with("from flask import")
            || l.starts_with("import flask")
            || l.starts_with("from flask.")
    })
}

/// The variable a Flask app is bound to (`app = Flask(__name__)` → `app`).
fn flask_variable(text: &str) -> Option<String> {
    text.lines().find_map(|l| {
        if l.starts_with([' ', '\t']) {
            return None;
        }
        let (lhs, rhs) = l.split_once('=')?;
        let rhs = rhs.trim_start();
        let var = lhs.trim();
        (rhs.starts_with("Flask(") || rhs.starts_with("flask.Flask("))
            .then(|| var.to_string())
            .filter(|v| !v.is_empty() && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
    })
}

/// A Python file that imports flask.
struct FlaskModule {
    file: String,
    variable: Option<String>,
    defines_application: bool,
}

/// Python files where apps usually live: top-level ones first, then one package level down.
fn python_candidates(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = [
        "wsgi.py",
        "app.py",
        "application.py",
        "main.py",
        "server.py",
        "run.py",
    ]
    .iter()
    .filter(|f| is_file(dir, f))
    .map(|f| f.to_string())
    .collect();
    for pkg in entries(dir, "", true) {
        for f in [
            "__init__.py",
            "app.py",
            "wsgi.py",
            "application.py",
            "main.py",
        ] {
            let rel = format!("{pkg}/{f}");
            if is_file(dir, &rel) {
                v.push(rel);
            }
        }
    }
    v
}

fn flask_module(dir: &Path) -> Option<FlaskModule> {
    python_candidates(dir).into_iter().find_map(|file| {
        let text = read(dir, &file)?;
        imports_flask(&text).then(|| FlaskModule {
            variable: flask_variable(&text),
            defines_application: defines(&text, "application"),
            file,
        })
    })
}

struct WsgiModule {
    file: String,
    defines_application: bool,
}

/// The top-level `wsgi.py`, else a `pkg/wsgi.py` (preferring one defining `application`).
fn wsgi_module(dir: &Path) -> Option<WsgiModule> {
    if let Some(text) = read(dir, "wsgi.py") {
        return Some(WsgiModule {
            file: "wsgi.py".into(),
            defines_application: defines(&text, "application"),
        });
    }
    let mut found: Vec<WsgiModule> = entries(dir, "", true)
        .into_iter()
        .filter_map(|pkg| {
            let file = format!("{pkg}/wsgi.py");
            let text = read(dir, &file)?;
            Some(WsgiModule {
                defines_application: defines(&text, "application"),
                file,
            })
        })
        .collect();
    found.sort_by_key(|w| !w.defines_application);
    found.into_iter().next()
}

/// The web command serving `file`'s `callable` with `$STACKATO_UWSGI`: the plain variable for
/// a top-level wsgi.py defining `application` (what it loads), else with `--module`.
fn uwsgi_web(file: &str, callable: &str) -> String {
    if file == "wsgi.py" && callable == "application" {
        "$STACKATO_UWSGI".to_string()
    } else if file == "wsgi.py" {
        format!("$STACKATO_UWSGI --callable {callable}")
    } else {
        format!("$STACKATO_UWSGI --module={}:{callable}", module_of(file))
    }
}

/// The Django settings module and its file: from manage.py's `DJANGO_SETTINGS_MODULE`, else
/// `settings.py` at the top or one package down.
fn django_settings(dir: &Path, manage: &str) -> Option<(String, String)> {
    let from_manage = manage.lines().find_map(|l| {
        let at = l.find("DJANGO_SETTINGS_MODULE")?;
        let rest = &l[at + "DJANGO_SETTINGS_MODULE".len()..];
        let mut quoted = rest.split(['"', '\'']).skip(1).step_by(2);
        quoted
            .find(|s| {
                !s.is_empty()
                    && s.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
            })
            .map(str::to_string)
    });
    if let Some(m) = from_manage {
        let path = m.replace('.', "/");
        for f in [format!("{path}.py"), format!("{path}/__init__.py")] {
            if is_file(dir, &f) {
                return Some((m, f));
            }
        }
        return Some((m.clone(), format!("{path}.py")));
    }
    if is_file(dir, "settings.py") {
        return Some(("settings".into(), "settings.py".into()));
    }
    for pkg in entries(dir, "", true) {
        for f in [
            format!("{pkg}/settings.py"),
            format!("{pkg}/settings/__init__.py"),
        ] {
            if is_file(dir, &f) {
                return Some((format!("{pkg}.settings"), f));
            }
        }
    }
    None
}

/// A Django project's WSGI module: a top-level wsgi.py, else the one beside the settings, else
/// any `pkg/wsgi.py`. Returns (module, file).
fn django_wsgi(dir: &Path, settings_module: Option<&str>) -> Option<(String, String)> {
    if is_file(dir, "wsgi.py") {
        return Some(("wsgi".into(), "wsgi.py".into()));
    }
    if let Some((pkg, _)) = settings_module.and_then(|m| m.rsplit_once('.')) {
        let f = format!("{}/wsgi.py", pkg.replace('.', "/"));
        if is_file(dir, &f) {
            return Some((format!("{pkg}.wsgi"), f));
        }
    }
    wsgi_module(dir).map(|w| (module_of(&w.file), w.file))
}

/// The text of the settings: the settings file, and every module of a settings package.
fn settings_text(dir: &Path, file: &str) -> String {
    let mut text = read(dir, file).unwrap_or_default();
    if let Some(pkg) = file.strip_suffix("/__init__.py") {
        for f in entries(dir, pkg, false) {
            if f.ends_with(".py") && f != "__init__.py" {
                text.push('\n');
                text.push_str(&read(dir, &format!("{pkg}/{f}")).unwrap_or_default());
            }
        }
    }
    text
}

fn django(dir: &Path, d: &mut Detection) {
    let manage = read(dir, "manage.py").unwrap_or_default();
    let settings = django_settings(dir, &manage);
    python_common(dir, d, Some("Django"));
    if let Some((module, file)) = &settings {
        let text = settings_text(dir, file);
        let why = if manage.contains(module.as_str()) {
            "manage.py sets it".to_string()
        } else {
            format!("found {file}")
        };
        d.env.push((
            "DJANGO_SETTINGS_MODULE".into(),
            reasoned(module.clone(), why),
        ));
        let engines = [
            ("django.db.backends.postgresql", "postgresql"),
            ("django.db.backends.mysql", "mysql"),
            ("django.core.cache.backends.redis", "redis"),
            ("django_redis", "redis"),
            ("django.core.cache.backends.memcached", "memcached"),
        ];
        for (needle, kind) in engines {
            if text.contains(needle) {
                d.service(kind, format!("{file} uses {needle}"));
            }
        }
        d.post_staging.push(reasoned(
            "python manage.py migrate --noinput",
            "a Django project: apply its migrations at every staging",
        ));
        if text.contains("STATIC_ROOT") || text.contains("staticfiles") {
            let what = if text.contains("STATIC_ROOT") {
                "sets STATIC_ROOT"
            } else {
                "uses staticfiles"
            };
            d.post_staging.push(reasoned(
                "python manage.py collectstatic --noinput",
                format!("{file} {what}"),
            ));
        }
    } else {
        d.notes
            .push("no settings module found: set DJANGO_SETTINGS_MODULE under `env:`".to_string());
    }
    match django_wsgi(dir, settings.as_ref().map(|s| s.0.as_str())) {
        Some((_, file)) => {
            let why = if file == "wsgi.py" {
                "uWSGI serving the top-level wsgi.py's `application`".to_string()
            } else {
                format!("uWSGI serving {file}'s `application`, not a top-level wsgi.py")
            };
            d.web = Some(reasoned(uwsgi_web(&file, "application"), why));
        }
        None => {
            d.web = Some(reasoned(
                "$STACKATO_UWSGI",
                "uWSGI serving wsgi.py; none was found",
            ));
            d.notes.push(
                "no wsgi.py found: add one (`django-admin startproject` writes it), or append `--module=PKG.wsgi:application` to the web command".into(),
            );
        }
    }
}

fn flask(dir: &Path, d: &mut Detection) {
    python_common(dir, d, Some("Flask"));
    match flask_module(dir) {
        Some(f) => {
            let (callable, why) = if f.defines_application {
                (
                    "application".to_string(),
                    format!("uWSGI serving {}'s `application`", f.file),
                )
            } else if let Some(var) = &f.variable {
                (
                    var.clone(),
                    format!("uWSGI serving the Flask app `{var}` of {}", f.file),
                )
            } else {
                d.notes.push(format!(
                    "{} imports flask but binds no `app = Flask(...)`: check the callable in the web command",
                    f.file
                ));
                (
                    "app".to_string(),
                    format!("uWSGI serving {}; the callable `app` is a guess", f.file),
                )
            };
            d.web = Some(reasoned(uwsgi_web(&f.file, &callable), why));
        }
        None => {
            d.web = Some(reasoned(
                "$STACKATO_UWSGI --module=app:app",
                "uWSGI serving app.py's `app`; no Python file importing flask was found, so this is a guess",
            ));
            d.notes.push(
                "no Python file importing flask was found: check the module in the web command"
                    .into(),
            );
        }
    }
}

fn wsgi(dir: &Path, d: &mut Detection) {
    python_common(dir, d, None);
    match wsgi_module(dir) {
        Some(w) => {
            if !w.defines_application {
                d.notes.push(format!(
                    "{} binds no `application`: uWSGI looks for that callable",
                    w.file
                ));
            }
            let why = if w.file == "wsgi.py" {
                "uWSGI serving the top-level wsgi.py's `application`".to_string()
            } else {
                format!(
                    "uWSGI serving {}'s `application`, not a top-level wsgi.py",
                    w.file
                )
            };
            d.web = Some(reasoned(uwsgi_web(&w.file, "application"), why));
        }
        None => {
            d.web = Some(reasoned(
                "$STACKATO_UWSGI",
                "uWSGI serving wsgi.py's `application`",
            ));
            d.notes
                .push("no wsgi.py found: $STACKATO_UWSGI serves wsgi.py's `application`".into());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Node
// ---------------------------------------------------------------------------------------------

fn node_service(dep: &str) -> Option<&'static str> {
    match dep {
        "pg" | "pg-promise" | "postgres" => Some("postgresql"),
        "mysql" | "mysql2" => Some("mysql"),
        "redis" | "ioredis" => Some("redis"),
        "memcached" | "memjs" => Some("memcached"),
        _ => None,
    }
}

fn node(dir: &Path, d: &mut Detection) {
    let pkg: Option<serde_json::Value> =
        read(dir, "package.json").and_then(|t| serde_json::from_str(&t).ok());
    if is_file(dir, "package.json") && pkg.is_none() {
        d.notes
            .push("package.json is not valid JSON: npm install will fail at staging".into());
    }
    if let Some(deps) = pkg
        .as_ref()
        .and_then(|p| p.get("dependencies"))
        .and_then(|v| v.as_object())
    {
        for dep in deps.keys() {
            if let Some(kind) = node_service(dep) {
                d.service(kind, format!("package.json depends on {dep}"));
            }
        }
    }
    let start_script = pkg
        .as_ref()
        .and_then(|p| p.pointer("/scripts/start"))
        .and_then(|v| v.as_str())
        .map(str::to_string);
    let main = crate::platform::detect::node_main(dir);
    if let Some(script) = start_script {
        d.web = Some(reasoned(
            "npm start",
            format!("package.json's start script: {script}"),
        ));
    } else if let Some(f) = node_start_file(dir).or(main.clone()) {
        let why = if main.as_deref() == Some(f.as_str()) {
            format!("package.json's main is {f}")
        } else {
            format!("found {f}")
        };
        d.web = Some(reasoned(format!("node {f}"), why));
    } else {
        d.notes.push(
            "no start script, server.js, app.js, index.js or main.js: set the web command".into(),
        );
    }
    if pkg.is_some() {
        d.dependencies
            .push("package.json: npm install at staging".into());
        d.ignores.push(reasoned(
            "node_modules/",
            "staging installs the packages from package.json",
        ));
    } else {
        d.notes
            .push("there is no package.json: create one (`npm init`) to list the app's packages; staging runs npm install".into());
    }
    d.notes
        .push("the app must listen on the port in $PORT (process.env.PORT)".into());
}

// ---------------------------------------------------------------------------------------------
// Perl
// ---------------------------------------------------------------------------------------------

fn perl(dir: &Path, d: &mut Detection) {
    let mut mentions_plack = false;
    for file in [
        "cpanfile",
        "Makefile.PL",
        "Build.PL",
        "requirements.txt",
        "app.psgi",
    ] {
        let Some(text) = read(dir, file) else {
            continue;
        };
        let words = tokens(&text);
        mentions_plack |= file != "app.psgi" && words.iter().any(|w| w.starts_with("Plack"));
        for (module, kind) in [
            ("DBD::Pg", "postgresql"),
            ("DBD::mysql", "mysql"),
            ("DBD::MariaDB", "mysql"),
            ("dbi:Pg", "postgresql"),
            ("dbi:mysql", "mysql"),
            ("Redis", "redis"),
            ("Redis::Fast", "redis"),
            ("Cache::Memcached", "memcached"),
            ("Cache::Memcached::Fast", "memcached"),
        ] {
            if words.contains(module) {
                let verb = if file == "app.psgi" { "uses" } else { "lists" };
                d.service(kind, format!("{file} {verb} {module}"));
            }
        }
    }
    // The framework's default ($STACKATO_UWSGI) is what `run` starts when uWSGI's PSGI plugin
    // is installed, as on the platform; without it, plackup (Debian's Plack, or from CPAN).
    if matches!(
        crate::platform::perl::psgi_server(),
        crate::platform::perl::PsgiServer::Uwsgi(_)
    ) {
        return perl_dependencies(dir, d);
    }
    d.web = Some(reasoned(
        "plackup --port $PORT app.psgi",
        "Plack serving app.psgi: the platform's default $STACKATO_UWSGI needs uWSGI's PSGI plugin, not installed here (apt-get install uwsgi-plugin-psgi)",
    ));
    if !mentions_plack && !crate::platform::perl::debian_plack() {
        d.cpan.push(reasoned(
            "Plack",
            "plackup comes with Plack, and no dependency file lists it",
        ));
    }
    perl_dependencies(dir, d);
}

/// How a Perl app's dependency files are installed.
fn perl_dependencies(dir: &Path, d: &mut Detection) {
    if is_file(dir, "requirements.txt") {
        d.dependencies
            .push("requirements.txt: Perl modules installed with cpanm at staging".into());
    }
    if is_file(dir, "cpanfile") {
        d.dependencies.push(
            "cpanfile: installed by the platform at staging; locally, list them under `requirements: cpan:` or in requirements.txt, or run `cpanm --installdeps .`".into(),
        );
    }
}

// ---------------------------------------------------------------------------------------------
// PHP
// ---------------------------------------------------------------------------------------------

fn php(dir: &Path, d: &mut Detection) {
    if !is_file(dir, "index.php")
        && let Some(sub) = ["public", "web", "htdocs", "www"]
            .into_iter()
            .find(|s| is_file(dir, &format!("{s}/index.php")))
    {
        d.document_root = Some(reasoned(
            sub,
            format!(
                "{sub}/index.php is the entry point, and stackato.yml stays out of the web root"
            ),
        ));
    }
    if let Some(require) = read(dir, "composer.json")
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v.get("require").cloned())
        .and_then(|v| v.as_object().cloned())
    {
        for dep in require.keys() {
            let kind = match dep.as_str() {
                "predis/predis" | "ext-redis" => Some("redis"),
                "ext-pgsql" => Some("postgresql"),
                "ext-mysqli" | "ext-pdo_mysql" => Some("mysql"),
                "ext-memcached" => Some("memcached"),
                _ => None,
            };
            if let Some(k) = kind {
                d.service(k, format!("composer.json requires {dep}"));
            }
        }
        d.dependencies.push(
            "composer.json: `run` runs `composer install` at staging; the platform did not: for a push, commit vendor/".into(),
        );
    }
    let mut files: Vec<String> = entries(dir, "", false)
        .into_iter()
        .filter(|f| f.ends_with(".php"))
        .collect();
    if let Some(root) = &d.document_root {
        files.extend(
            entries(dir, &root.value, false)
                .into_iter()
                .filter(|f| f.ends_with(".php"))
                .map(|f| format!("{}/{f}", root.value)),
        );
    }
    for file in files.iter().take(200) {
        let Some(text) = read(dir, file) else {
            continue;
        };
        let words = tokens(&text);
        for (word, kind) in [
            ("mysqli_connect", "mysql"),
            ("mysqli", "mysql"),
            ("mysql:host", "mysql"),
            ("pg_connect", "postgresql"),
            ("pgsql:host", "postgresql"),
            ("Redis", "redis"),
            ("Predis", "redis"),
            ("Memcached", "memcached"),
        ] {
            if words.contains(word) {
                d.service(kind, format!("{file} uses {word}"));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Ruby
// ---------------------------------------------------------------------------------------------

fn ruby(dir: &Path, d: &mut Detection, rails: bool) {
    let gems = gemfile_gems(dir);
    for g in &gems {
        let kind = match g.as_str() {
            "pg" => Some("postgresql"),
            "mysql2" | "mysql" => Some("mysql"),
            "redis" | "redis-rails" => Some("redis"),
            "dalli" => Some("memcached"),
            _ => None,
        };
        if let Some(k) = kind {
            d.service(k, format!("Gemfile lists {g}"));
        }
    }
    if rails && let Some(text) = read(dir, "config/database.yml") {
        for (needle, kind) in [
            ("adapter: postgresql", "postgresql"),
            ("adapter: mysql2", "mysql"),
        ] {
            if text.contains(needle) {
                d.service(kind, format!("config/database.yml has {needle}"));
            }
        }
    }
    let bundle = if is_file(dir, "Gemfile") {
        "bundle exec "
    } else {
        ""
    };
    if rails {
        d.web = Some(reasoned(
            format!("{bundle}rails server -p $PORT -b 0.0.0.0"),
            "the Rails server on the platform's port, reachable from outside the container",
        ));
        d.post_staging.push(reasoned(
            format!("{bundle}rake db:migrate"),
            "a Rails app: apply its migrations at every staging",
        ));
        d.ignores
            .push(reasoned("log/", "Rails writes its logs into log/"));
        d.ignores
            .push(reasoned("tmp/", "Rails writes caches and pids into tmp/"));
    } else {
        d.web = Some(reasoned(
            format!("{bundle}rackup config.ru -p $PORT -o 0.0.0.0"),
            "rackup serving config.ru on the platform's port",
        ));
    }
    if is_file(dir, "Gemfile") {
        d.dependencies.push(
            "Gemfile: bundle install at staging (run installs the gems from vendor/cache and those installed here; it fetches none)".into(),
        );
    } else {
        d.notes
            .push("there is no Gemfile: list the app's gems in one (`bundle init`)".into());
    }
}

// ---------------------------------------------------------------------------------------------
// Sinatra, Perl CGI, Java, buildpack apps: the framework's default starts them (as `run`)
// ---------------------------------------------------------------------------------------------

/// A Sinatra app without config.ru: `ruby <main file>` is the framework's default, as `run`
/// starts it; services and the Gemfile as for Rack.
fn sinatra(dir: &Path, d: &mut Detection) {
    ruby(dir, d, false);
    d.web = None;
    let main = crate::platform::detect::sinatra_main(dir).unwrap_or_else(|| "app.rb".into());
    if !gemfile_gems(dir)
        .iter()
        .any(|g| matches!(g.as_str(), "webrick" | "puma" | "thin"))
    {
        d.notes.push(
            format!("Ruby 3 has no WEBrick built in: add `gem 'webrick'` (or puma/thin) to the Gemfile for `ruby {main}` to serve"),
        );
    }
}

/// A Perl CGI app: the CGI runner is the framework's default; CGI.pm is not in Perl's core.
fn perlcgi(dir: &Path, d: &mut Detection) {
    let uses_cgi = entries(dir, "", false)
        .into_iter()
        .filter(|f| f.ends_with(".cgi") || f.ends_with(".pl"))
        .any(|f| read(dir, &f).is_some_and(|t| t.contains("use CGI")));
    if uses_cgi {
        d.notes.push(
            "the scripts use CGI.pm, which Perl 5.22+ no longer ships: apt-get install libcgi-pm-perl".into(),
        );
    }
}

/// A Java web app: its WAR runs in Jetty 9 here.
fn java(_dir: &Path, d: &mut Detection) {
    d.notes.push(
        "a WAR runs in Jetty 9 here (the platform used Tomcat): apt-get install jetty9 default-jre-headless".into(),
    );
}

/// A buildpack app (Go): the buildpack builds and starts it.
fn buildpack(d: &mut Detection) {
    d.notes.push(
        "a buildpack app: give its buildpack with `stackato-local run --buildpack DIR`, `buildpack: <git URL or dir>` (2.x: `env: BUILDPACK_URL`), or install one into $XDG_DATA_HOME/stackato-local/buildpacks/".into(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requirement_names() {
        assert_eq!(requirement_name("Django>=4.2"), Some("Django".into()));
        assert_eq!(
            requirement_name("psycopg[binary]==3.1"),
            Some("psycopg".into())
        );
        assert_eq!(
            requirement_name("  mysqlclient ; python_version>'3'"),
            Some("mysqlclient".into())
        );
        assert_eq!(requirement_name("# redis"), None);
        assert_eq!(requirement_name("-r base.txt"), None);
        assert_eq!(
            requirement_name("-e git+https://x/y.git#egg=pylibmc"),
            Some("pylibmc".into())
        );
        assert_eq!(normalise("PyMySQL"), "pymysql");
        assert_eq!(normalise("python_memcached"), "python-memcached");
    }

    #[test]
    fn python_definitions() {
        let t = "import os\nfrom x import application as a\napplication = make()\n";
        assert!(defines(t, "application"));
        assert!(!defines("    application = 1\n", "application"));
        assert!(defines("def application(environ, start):\n", "application"));
        assert!(!defines("application == 1\n", "application"));
        assert_eq!(
            flask_variable("app = Flask(__name__)\n"),
            Some("app".into())
        );
        assert_eq!(module_of("pkg/wsgi.py"), "pkg.wsgi");
        assert_eq!(module_of("pkg/__init__.py"), "pkg");
        assert_eq!(uwsgi_web("wsgi.py", "application"), "$STACKATO_UWSGI");
        assert_eq!(
            uwsgi_web("site/wsgi.py", "application"),
            "$STACKATO_UWSGI --module=site.wsgi:application"
        );
    }

    #[test]
    fn python_2_only_pins() {
        for (spec, want) in [
            ("==1.4.22", true),
            ("==1.3", true),
            ("<1.5", true),
            ("<=1.4", true),
            (">=1.3,<1.5", true),
            ("~=1.4.0", true),
            ("==1.5", false),
            ("==1.11.29", false),
            ("<2", false),
            (">=1.3", false),
            ("", false),
            ("==4.2", false),
        ] {
            assert_eq!(django_before_1_5(spec), want, "{spec}");
        }
        let t = tempfile::tempdir().unwrap();
        std::fs::write(
            t.path().join("requirements.txt"),
            "# deps\nSouth==0.7\nDjango == 1.4.22  # LTS\n",
        )
        .unwrap();
        let reqs = python_requirements(t.path());
        assert_eq!(
            python2_pin(&reqs.reqs).as_deref(),
            Some("requirements.txt:3 Django==1.4.22 (a release for Python 2 only)")
        );
    }

    #[test]
    fn gems() {
        let t = tempfile::tempdir().unwrap();
        std::fs::write(
            t.path().join("Gemfile"),
            "source 'https://rubygems.org'\ngem \"rails\", \"~> 7.0\"\n  gem 'pg'\ngemspec\n",
        )
        .unwrap();
        assert_eq!(gemfile_gems(t.path()), vec!["rails", "pg"]);
    }
}
