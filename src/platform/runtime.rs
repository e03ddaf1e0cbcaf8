//! Runtimes: the language version an app declares (`runtime:`, `runtime.txt`,
//! `.python-version`, `engines.node` in package.json, `ruby` in a Gemfile, or `--runtime`),
//! the interpreters installed on this machine (PATH, pyenv, asdf, mise, rbenv, nvm, fnm, volta,
//! uv, the distribution's), and the one an app runs on: the declared one when installed,
//! otherwise the closest of the same language, with what to install.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use crate::diag::Span;
use crate::manifest::App;

/// A language whose interpreter is looked up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Lang {
    Python,
    Node,
    Ruby,
}

impl Lang {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Lang::Python => "Python",
            Lang::Node => "Node.js",
            Lang::Ruby => "Ruby",
        }
    }

    /// The Stackato runtime id prefix (`python27`, `node010`, `ruby19`).
    fn id(self) -> &'static str {
        match self {
            Lang::Python => "python",
            Lang::Node => "node",
            Lang::Ruby => "ruby",
        }
    }
}

/// A version as far as it was given (`2.7` has no patch).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub(crate) struct Version {
    pub major: u32,
    pub minor: Option<u32>,
    pub patch: Option<u32>,
}

impl Version {
    /// `2.7.18`, `3.11`, `v18.19.0`, `>=0.10` (the first version in the text).
    pub(crate) fn parse(text: &str) -> Option<Version> {
        let start = text.find(|c: char| c.is_ascii_digit())?;
        let rest = &text[start..];
        let end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let mut parts = rest[..end].split('.').filter(|p| !p.is_empty());
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next().and_then(|p| p.parse().ok());
        let patch = parts.next().and_then(|p| p.parse().ok());
        Some(Version {
            major,
            minor,
            patch,
        })
    }

    /// Whether `full` (an installed interpreter's version) is this one, as far as given.
    pub(crate) fn matches(self, full: Version) -> bool {
        self.major == full.major
            && self.minor.is_none_or(|m| Some(m) == full.minor)
            && self.patch.is_none_or(|p| Some(p) == full.patch)
    }

    /// `2.7`, `3`, `2.7.18`.
    pub(crate) fn shown(self) -> String {
        let mut s = self.major.to_string();
        if let Some(m) = self.minor {
            s.push_str(&format!(".{m}"));
            if let Some(p) = self.patch {
                s.push_str(&format!(".{p}"));
            }
        }
        s
    }
}

/// Where the declared runtime comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Source {
    /// The manifest's `runtime:` (or `framework: runtime:`), at its value.
    Key(Span),
    /// A file of the app (`runtime.txt`), its name and 1-based line.
    File(String, u32),
    /// `--runtime`.
    Flag,
}

/// A runtime an app asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Declared {
    pub lang: Lang,
    /// `None`: any version of the language (`runtime: python`).
    pub version: Option<Version>,
    /// As written (`python27`, `python-2.7.18`).
    pub text: String,
    pub source: Source,
}

impl Declared {
    /// Where it was declared, for messages (`runtime.txt:1`, `--runtime`, `the runtime key`).
    pub(crate) fn place(&self) -> String {
        match &self.source {
            Source::Key(_) => "`runtime:`".into(),
            Source::File(f, l) => format!("{f}:{l}"),
            Source::Flag => "--runtime".into(),
        }
    }

    /// `` `runtime: python27` ``, `` runtime.txt:1 (`python-2.7.18`) ``.
    /// The text is the repository's: escaped (see [`crate::trust::display::escape`]).
    pub(crate) fn shown(&self) -> String {
        let text = crate::trust::display::escape(&self.text);
        match &self.source {
            Source::Key(_) => format!("`runtime: {text}`"),
            Source::File(f, l) => format!("{f}:{l} (`{text}`)"),
            Source::Flag => format!("`--runtime {text}`"),
        }
    }
}

/// Parse a runtime as written: a Stackato id (`python27`, `python3`, `node010`, `ruby19`), a
/// buildpack-style `python-2.7.18` / `node-18`, or a language and version (`python 3.11`).
pub(crate) fn parse_runtime(text: &str) -> Option<(Lang, Option<Version>)> {
    let t = text.trim().to_ascii_lowercase();
    let (lang, rest) = [
        (Lang::Python, "python"),
        (Lang::Python, "cpython"),
        (Lang::Node, "nodejs"),
        (Lang::Node, "node"),
        (Lang::Ruby, "ruby"),
    ]
    .into_iter()
    .find_map(|(l, p)| t.strip_prefix(p).map(|r| (l, r)))?;
    let rest = rest.trim_start_matches(['-', ' ', '@', 'v']);
    if rest.is_empty() {
        return Some((lang, None));
    }
    if rest.contains('.') {
        return Some((lang, Some(Version::parse(rest)?)));
    }
    if !rest.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // A Stackato id: the first digit is the major version, the rest the minor (`27`, `010`,
    // `19`, `311`); a lone number is a major version (`python3`, `node18` would be `node18`
    // only when the first digit is not 0 and there is more than one: read as major.minor
    // for Python and Ruby, as a major for Node from 4 on).
    let major: u32 = rest[..1].parse().ok()?;
    let tail = &rest[1..];
    let v = if tail.is_empty() {
        Version {
            major,
            ..Version::default()
        }
    } else if lang == Lang::Node && major != 0 {
        Version {
            major: rest.parse().ok()?,
            ..Version::default()
        }
    } else {
        Version {
            major,
            minor: tail.parse().ok(),
            patch: None,
        }
    };
    Some((lang, Some(v)))
}

/// The Stackato runtime id of an installed version (`python27`, `python311`, `node010`).
pub(crate) fn runtime_id(lang: Lang, v: Version) -> String {
    match (lang, v.minor) {
        (Lang::Node, _) if v.major > 0 => format!("node{}", v.major),
        (_, Some(m)) => format!("{}{}{}", lang.id(), v.major, m),
        (_, None) => format!("{}{}", lang.id(), v.major),
    }
}

/// The language of an app, for runtime look-up: its framework, else its declared runtime,
/// else its files (`requirements.txt`, `package.json`, `Gemfile`).
pub(crate) fn app_lang(app: &App, dir: &Path) -> Option<Lang> {
    match app.framework_name() {
        Some("python" | "wsgi" | "django") => return Some(Lang::Python),
        Some("node") => return Some(Lang::Node),
        Some("rack" | "rails3" | "sinatra") => return Some(Lang::Ruby),
        Some("perl" | "perlcgi" | "php" | "java_web" | "java_ee" | "spring" | "grails") => {
            return None;
        }
        _ => {}
    }
    if let Some((l, _)) = app.runtime.as_deref().and_then(parse_runtime) {
        return Some(l);
    }
    if super::web::is_python_app(app) {
        return Some(Lang::Python);
    }
    if dir.join("package.json").is_file() {
        return Some(Lang::Node);
    }
    if dir.join("Gemfile").is_file() {
        return Some(Lang::Ruby);
    }
    None
}

/// A small regular file's text (declaration files are a line or a few).
fn small_text(path: &Path) -> Option<String> {
    let md = std::fs::symlink_metadata(path).ok()?;
    if !md.is_file() || md.len() > 256 * 1024 {
        return None;
    }
    std::fs::read_to_string(path).ok()
}

/// The runtime `app` declares (files are read from `dir`, the app's files), `flag` being
/// `--runtime`: the flag, else the manifest's key, else the app's own files.
pub(crate) fn declared(app: &App, dir: &Path, flag: Option<&str>) -> Option<Declared> {
    if let Some(f) = flag
        && let Some((lang, version)) = parse_runtime(f)
        && app_lang(app, dir).is_none_or(|l| l == lang)
    {
        return Some(Declared {
            lang,
            version,
            text: f.to_string(),
            source: Source::Flag,
        });
    }
    let key = app.runtime.as_ref().and_then(|rt| {
        parse_runtime(rt).map(|(lang, version)| Declared {
            lang,
            version,
            text: rt.clone(),
            source: Source::Key(app.runtime_span.unwrap_or_default()),
        })
    });
    // `runtime: python3` (as `init` writes) with a `.python-version` of 3.12: the file says
    // which Python 3.
    match &key {
        Some(k) if k.version.is_some_and(|v| v.minor.is_some()) => return key,
        Some(k) => {
            let file = declared_in_files(k.lang, dir).filter(|f| {
                f.version
                    .is_some_and(|fv| k.version.is_none_or(|kv| kv.major == fv.major))
            });
            return file.or(key);
        }
        None => {}
    }
    declared_in_files(app_lang(app, dir)?, dir)
}

/// A line of a declaration file that should name a version and does not (`ruby
/// File.read(".ruby-version")`, `engines.node "$(…)"`, a path in `.python-version`): the app
/// is taken to declare no version, with a warning that shows the line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Unreadable {
    pub file: String,
    /// 1-based.
    pub line: u32,
    /// As written (escape it to print it: see [`Unreadable::message`]).
    pub text: String,
}

impl Unreadable {
    /// `cannot read a version from package.json:3 (`…`)`, the text escaped.
    pub(crate) fn message(&self) -> String {
        format!(
            "cannot read a version from {}:{} (`{}`); taken as declaring no version",
            self.file,
            self.line,
            crate::trust::display::escape(&self.text)
        )
    }
}

/// A version as a declaration file writes one, and nothing else: a digit first, then
/// digits, letters, `.` and `-` (`2.7.18`, `3.12-dev`, `3.13.0rc1`, `2.0.0-p247`).
fn is_version_word(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_digit())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
}

/// A Gemfile `ruby` requirement: `'1.9.3'`, `"~> 2.7"`, `'>= 2.6.0'` (a string literal
/// holding an optional operator and a version). `None` for anything else
/// (`File.read(".ruby-version")`, `RUBY_VERSION`).
fn gemfile_ruby(rest: &str) -> Option<Version> {
    let rest = rest.trim_start_matches([' ', '(', '\t']);
    let quote = rest.chars().next().filter(|c| matches!(c, '\'' | '"'))?;
    let inner = &rest[1..];
    let inner = &inner[..inner.find(quote)?];
    let v = inner
        .trim_start_matches(['~', '>', '<', '=', '!'])
        .trim_start();
    is_version_word(v).then(|| Version::parse(v)).flatten()
}

/// What a declaration file says: a declaration, or a line that should be one and is not.
type Scanned = Result<Declared, Unreadable>;

/// The runtime the app's own files declare (`runtime.txt`, `.python-version`, package.json
/// `engines.node`, the Gemfile's `ruby`).
pub(crate) fn declared_in_files(lang: Lang, dir: &Path) -> Option<Declared> {
    scan_files(lang, dir).and_then(Result::ok)
}

/// The declaration line of the app's files (for its language) that names no version, if
/// that is what its files say.
pub(crate) fn unreadable(app: &App, dir: &Path) -> Option<Unreadable> {
    scan_files(app_lang(app, dir)?, dir).and_then(Result::err)
}

fn scan_files(lang: Lang, dir: &Path) -> Option<Scanned> {
    // `pick`: `None` for a line that is no declaration; `Some(None)` for one that should
    // name a version and does not.
    let from_file = |name: &str, pick: &dyn Fn(&str) -> Option<Option<Option<Version>>>| {
        let text = small_text(&dir.join(name))?;
        text.lines().enumerate().find_map(|(i, l)| {
            let l = l.trim();
            if l.is_empty() || l.starts_with('#') {
                return None;
            }
            let line = i as u32 + 1;
            Some(match pick(l)? {
                Some(version) => Ok(Declared {
                    lang,
                    version,
                    text: l.to_string(),
                    source: Source::File(name.to_string(), line),
                }),
                None => Err(Unreadable {
                    file: name.to_string(),
                    line,
                    text: l.to_string(),
                }),
            })
        })
    };
    match lang {
        Lang::Python => from_file("runtime.txt", &|l| {
            parse_runtime(l)
                .filter(|(x, _)| *x == Lang::Python)
                .map(|(_, v)| Some(v))
        })
        .or_else(|| {
            from_file(".python-version", &|l| {
                Some(
                    is_version_word(l)
                        .then(|| Version::parse(l))
                        .flatten()
                        .map(Some),
                )
            })
        }),
        Lang::Node => {
            let text = small_text(&dir.join("package.json"))?;
            let v: serde_json::Value = serde_json::from_str(&text).ok()?;
            let want = v.get("engines")?.get("node")?.as_str()?;
            let line = text
                .lines()
                .position(|l| l.contains("\"engines\""))
                .map_or(1, |i| i as u32 + 1);
            // Only an npm range is a declaration (`>=0.8`, `0.10.x`, `^4.2`, `*`).
            let range_chars = want
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b" .-+<>=~^|*".contains(&b));
            if !range_chars || super::node_range::Range::parse(want).is_none() {
                return Some(Err(Unreadable {
                    file: "package.json".into(),
                    line,
                    text: format!("engines.node {want}"),
                }));
            }
            Some(Ok(Declared {
                lang,
                version: Version::parse(want),
                text: format!("engines.node {want}"),
                source: Source::File("package.json".into(), line),
            }))
        }
        Lang::Ruby => from_file("Gemfile", &|l| {
            let rest = l.strip_prefix("ruby")?;
            if !rest.starts_with([' ', '(', '\t']) {
                return None;
            }
            Some(gemfile_ruby(rest).map(Some))
        }),
    }
}

/// An interpreter found on this machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Interpreter {
    pub lang: Lang,
    pub path: PathBuf,
    /// Its full version (`2.7.18`).
    pub version: Version,
    /// Where it was found (`pyenv`, `PATH`, `uv`, …).
    pub from: &'static str,
}

impl Interpreter {
    pub(crate) fn id(&self) -> String {
        runtime_id(self.lang, self.version)
    }
}

fn home() -> Option<PathBuf> {
    crate::fsx::user_home()
}

fn data_home() -> Option<PathBuf> {
    std::env::var_os("XDG_DATA_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| home().map(|h| h.join(".local/share")))
}

fn env_dir(var: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
}

/// Version-manager directories holding one directory per installed version, with the
/// interpreter's path inside each.
fn manager_roots(lang: Lang) -> Vec<(&'static str, PathBuf, &'static str)> {
    let h = home();
    let d = data_home();
    let join = |b: &Option<PathBuf>, rel: &str| b.as_ref().map(|b| b.join(rel));
    let mut v: Vec<(&'static str, Option<PathBuf>, &'static str)> = Vec::new();
    let asdf = env_dir("ASDF_DATA_DIR").or_else(|| join(&h, ".asdf"));
    let mise = env_dir("MISE_DATA_DIR").or_else(|| join(&d, "mise"));
    match lang {
        Lang::Python => {
            let pyenv = env_dir("PYENV_ROOT").or_else(|| join(&h, ".pyenv"));
            v.push(("pyenv", join(&pyenv, "versions"), "bin/python"));
            v.push(("asdf", join(&asdf, "installs/python"), "bin/python"));
            v.push(("mise", join(&mise, "installs/python"), "bin/python"));
            let uv = env_dir("UV_PYTHON_INSTALL_DIR").or_else(|| join(&d, "uv/python"));
            v.push(("uv", uv, "bin/python3"));
        }
        Lang::Node => {
            let nvm = env_dir("NVM_DIR").or_else(|| join(&h, ".nvm"));
            v.push(("nvm", join(&nvm, "versions/node"), "bin/node"));
            let fnm = env_dir("FNM_DIR").or_else(|| join(&d, "fnm"));
            v.push(("fnm", join(&fnm, "node-versions"), "installation/bin/node"));
            let volta = env_dir("VOLTA_HOME").or_else(|| join(&h, ".volta"));
            v.push(("volta", join(&volta, "tools/image/node"), "bin/node"));
            v.push(("asdf", join(&asdf, "installs/nodejs"), "bin/node"));
            v.push(("mise", join(&mise, "installs/node"), "bin/node"));
        }
        Lang::Ruby => {
            let rbenv = env_dir("RBENV_ROOT").or_else(|| join(&h, ".rbenv"));
            v.push(("rbenv", join(&rbenv, "versions"), "bin/ruby"));
            v.push(("asdf", join(&asdf, "installs/ruby"), "bin/ruby"));
            v.push(("mise", join(&mise, "installs/ruby"), "bin/ruby"));
        }
    }
    v.into_iter()
        .filter_map(|(n, p, b)| p.map(|p| (n, p, b)))
        .collect()
}

/// Names of the interpreter on PATH, most specific first.
fn path_names(lang: Lang) -> Vec<String> {
    match lang {
        Lang::Python => {
            let mut v = vec!["python2.7".to_string()];
            v.extend((0..=20).rev().map(|m| format!("python3.{m}")));
            v.extend(["python3", "python2", "python"].map(String::from));
            v
        }
        Lang::Node => vec!["node".into(), "nodejs".into()],
        Lang::Ruby => vec!["ruby".into()],
    }
}

/// The version of the interpreter at `path` (it is run).
pub(crate) fn version_of(lang: Lang, path: &Path) -> Option<Version> {
    ask_version(lang, path)
}

/// Ask an interpreter its version.
fn ask_version(lang: Lang, path: &Path) -> Option<Version> {
    ask(lang, path).map(|(v, _)| v)
}

/// What an interpreter said: its version and (Python) its real executable.
type Answer = Option<(Version, Option<PathBuf>)>;

/// Ask an interpreter its version and (Python) its real executable, behind a shim; once per
/// path and process (the environment is built several times per run).
fn ask(lang: Lang, path: &Path) -> Answer {
    type Asked = Vec<(Lang, PathBuf, Answer)>;
    static ASKED: OnceLock<Mutex<Asked>> = OnceLock::new();
    let asked = ASKED.get_or_init(|| Mutex::new(Vec::new()));
    if let Ok(a) = asked.lock()
        && let Some((_, _, answer)) = a.iter().find(|(l, p, _)| *l == lang && p == path)
    {
        return answer.clone();
    }
    let answer = ask_now(lang, path);
    if let Ok(mut a) = asked.lock() {
        a.push((lang, path.to_path_buf(), answer.clone()));
    }
    answer
}

fn ask_now(lang: Lang, path: &Path) -> Answer {
    let mut c = Command::new(path);
    // In `/`, not in the (perhaps untrusted) project, whose `.python-version`, `.nvmrc` or
    // `.tool-versions` would steer a version manager's shim, and whose modules `python -c`
    // would import.
    c.current_dir("/");
    match lang {
        Lang::Python => c.args([
            "-c",
            "import sys; print('%d.%d.%d' % tuple(sys.version_info[:3])); print(sys.executable)",
        ]),
        Lang::Node | Lang::Ruby => c.arg("--version"),
    };
    let o = crate::process::output(&mut c, crate::process::Tie::Probe).ok()?;
    if !o.status.success() {
        return None;
    }
    let all = String::from_utf8_lossy(&o.stdout);
    let mut lines = all.lines();
    let first = lines.next().unwrap_or("");
    let text = match lang {
        // `ruby 3.1.2p20 (…)`
        Lang::Ruby => first.split_whitespace().nth(1).unwrap_or(""),
        _ => first.trim(),
    };
    let exe = lines
        .next()
        .map(|l| PathBuf::from(l.trim()))
        .filter(|p| p.is_absolute() && executable(p));
    Version::parse(text)
        .filter(|v| v.minor.is_some())
        .map(|v| (v, exe))
}

fn executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Every interpreter of `lang` on this machine (one per real file), newest first. With
/// `STACKATO_LOCAL_SERVER_PATH` set (as for the service servers), only the directories it
/// names are searched. Looked up once per process.
pub(crate) fn installed(lang: Lang) -> Vec<Interpreter> {
    type Found = Vec<(Lang, Vec<Interpreter>)>;
    static CACHE: OnceLock<Mutex<Found>> = OnceLock::new();
    let cache = CACHE.get_or_init(|| Mutex::new(Vec::new()));
    if let Ok(c) = cache.lock()
        && let Some((_, v)) = c.iter().find(|(l, _)| *l == lang)
    {
        return v.clone();
    }
    let found = search(lang);
    if let Ok(mut c) = cache.lock() {
        c.push((lang, found.clone()));
    }
    found
}

fn search(lang: Lang) -> Vec<Interpreter> {
    let mut out: Vec<Interpreter> = Vec::new();
    let mut seen: Vec<PathBuf> = Vec::new();
    let mut add = |path: PathBuf, version: Option<Version>, from: &'static str| {
        if !executable(&path) {
            return;
        }
        let real = path.canonicalize().unwrap_or_else(|_| path.clone());
        if seen.contains(&real) {
            return;
        }
        let Some(version) = version.or_else(|| ask_version(lang, &path)) else {
            return;
        };
        seen.push(real);
        out.push(Interpreter {
            lang,
            path,
            version,
            from,
        });
    };
    let restricted = std::env::var_os("STACKATO_LOCAL_SERVER_PATH");
    let dirs: Vec<PathBuf> = match &restricted {
        Some(p) => std::env::split_paths(p)
            .filter(|d| !d.as_os_str().is_empty())
            .collect(),
        None => {
            let path = std::env::var_os("PATH").unwrap_or_default();
            std::env::split_paths(&path)
                .chain(["/usr/local/bin", "/usr/bin"].map(PathBuf::from))
                .collect()
        }
    };
    if restricted.is_none() {
        for (from, root, bin) in manager_roots(lang) {
            let Ok(rd) = std::fs::read_dir(&root) else {
                continue;
            };
            let mut entries: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
            entries.sort();
            for dir in entries {
                let name = dir
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                // `2.7.18`, `v18.19.0`, `cpython-3.12.1-linux-x86_64-gnu`: CPython only.
                let name = name.strip_prefix("cpython-").unwrap_or(&name);
                if !name
                    .trim_start_matches('v')
                    .starts_with(|c: char| c.is_ascii_digit())
                {
                    continue;
                }
                let v = Version::parse(name).filter(|v| v.patch.is_some());
                add(dir.join(bin), v, from);
            }
        }
    }
    for d in dirs {
        // Shims pick a version by the working directory: the versions behind them are
        // looked up in the manager's own directory instead.
        if d.ends_with("shims") {
            continue;
        }
        let from = if d.starts_with("/usr") {
            "the system"
        } else {
            "PATH"
        };
        for n in path_names(lang) {
            add(d.join(&n), None, from);
        }
    }
    out.sort_by_key(|i| std::cmp::Reverse(i.version));
    out
}

/// The first interpreter of `lang` on the search path (`python3`, `node`, `ruby`), when it
/// is of the `want`ed major version.
fn on_path(lang: Lang, want: Option<Version>) -> Option<Interpreter> {
    let name = match (lang, want) {
        (Lang::Python, Some(w)) if w.major == 2 => "python2",
        (Lang::Python, _) => "python3",
        (Lang::Node, _) => "node",
        (Lang::Ruby, _) => "ruby",
    };
    let found = crate::programs::find(name)?;
    let (version, exe) = ask(lang, &found)?;
    let path = exe.unwrap_or(found);
    want.is_none_or(|w| w.matches(version))
        .then_some(Interpreter {
            lang,
            path,
            version,
            from: "PATH",
        })
}

/// What an app runs on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Choice {
    pub declared: Option<Declared>,
    /// The interpreter used (`None`: none of the language is installed).
    pub chosen: Option<Interpreter>,
    /// Whether `chosen` is what was declared (true when nothing was declared).
    pub exact: bool,
}

impl Choice {
    /// `pyenv install 2.7.18`-style commands that install what was declared.
    pub(crate) fn install_hint(&self) -> String {
        let Some(d) = &self.declared else {
            return String::new();
        };
        install_hint(d.lang, d.version)
    }

    /// The warning when the declared runtime is not installed (`None`: nothing to say).
    pub(crate) fn mismatch(&self) -> Option<String> {
        let d = self.declared.as_ref()?;
        if self.exact {
            return None;
        }
        let want = d
            .version
            .map_or(String::new(), |v| format!(" {}", v.shown()));
        // Bundler runs nothing on another Ruby than the Gemfile's `ruby` line names.
        let refused = matches!(&d.source, Source::File(f, _) if f == "Gemfile");
        let msg = match &self.chosen {
            Some(i) => format!(
                "{} asks for {}{want}, which is not installed here; running on {} {} ({}, from {})",
                d.shown(),
                d.lang.name(),
                d.lang.name(),
                i.version.shown(),
                i.path.display(),
                i.from
            ),
            None => format!(
                "{} asks for {}{want}, and no {} is installed here",
                d.shown(),
                d.lang.name(),
                d.lang.name()
            ),
        };
        Some(if refused && self.chosen.is_some() {
            format!(
                "{msg}; bundler refuses any other Ruby than that line names, so staging will stop at `bundle install` unless the line is removed or relaxed"
            )
        } else {
            msg
        })
    }
}

/// The last release of Python series that have ended (pyenv's `install` takes a full
/// version for them: `pyenv install 2.6` is an error).
const PYTHON_LAST: [(u32, u32, u32); 17] = [
    (2, 0, 1),
    (2, 1, 3),
    (2, 2, 3),
    (2, 3, 7),
    (2, 4, 6),
    (2, 5, 6),
    (2, 6, 9),
    (2, 7, 18),
    (3, 0, 1),
    (3, 1, 5),
    (3, 2, 6),
    (3, 3, 7),
    (3, 4, 10),
    (3, 5, 10),
    (3, 6, 15),
    (3, 7, 17),
    (3, 8, 20),
];

/// The last release of old Ruby series, as ruby-build names them (`rbenv install` takes a
/// full version).
const RUBY_LAST: [(u32, u32, &str); 11] = [
    (1, 8, "1.8.7-p375"),
    (1, 9, "1.9.3-p551"),
    (2, 0, "2.0.0-p648"),
    (2, 1, "2.1.10"),
    (2, 2, "2.2.10"),
    (2, 3, "2.3.8"),
    (2, 4, "2.4.10"),
    (2, 5, "2.5.9"),
    (2, 6, "2.6.10"),
    (2, 7, "2.7.8"),
    (3, 0, "3.0.7"),
];

/// A full version for an installer that needs one: the version as given when it has a
/// patch, else the last release of its series from `table`; `None` when not known.
fn full_version(v: Version, table: &[(u32, u32, String)]) -> Option<String> {
    let last = v.minor.and_then(|minor| {
        table
            .iter()
            .find(|(ma, mi, _)| *ma == v.major && *mi == minor)
            .map(|(_, _, f)| f.clone())
    });
    if v.patch.is_none() {
        return last;
    }
    // `1.9.3` is `1.9.3-p551` to ruby-build.
    let shown = v.shown();
    Some(
        last.filter(|l| l.strip_prefix(&shown).is_some_and(|r| r.starts_with("-p")))
            .unwrap_or(shown),
    )
}

/// The commands that install `lang` `version` here: versions the installers named can
/// install (a full version where they need one, or where to list them).
pub(crate) fn install_hint(lang: Lang, version: Option<Version>) -> String {
    let v = version.map_or(String::from("latest"), |v| v.shown());
    match lang {
        Lang::Python => {
            let table: Vec<(u32, u32, String)> = PYTHON_LAST
                .iter()
                .map(|(a, b, c)| (*a, *b, format!("{a}.{b}.{c}")))
                .collect();
            let pyenv = match version {
                None => "`pyenv install 3` (its latest 3.x)".to_string(),
                Some(w) => match full_version(w, &table) {
                    Some(f) => format!("`pyenv install {f}`"),
                    None => format!(
                        "`pyenv install {v}` (pyenv 2.3+ takes the newest {v}.x; `pyenv install --list` shows them)"
                    ),
                },
            };
            // uv has CPython 3.8 and later only.
            let uv_ok = version
                .is_none_or(|w| w.major > 3 || (w.major == 3 && w.minor.is_none_or(|m| m >= 8)));
            let mise = format!("`mise use python@{v}`");
            if uv_ok {
                format!("install it with `uv python install {v}`, {pyenv} or {mise}")
            } else if version.is_some_and(|w| w.major == 2) {
                format!(
                    "install it with {pyenv} or {mise} (Debian 12 has no python2 package; uv has no Python 2)"
                )
            } else {
                format!("install it with {pyenv} or {mise} (uv has no Python before 3.8)")
            }
        }
        Lang::Node => {
            format!("install it with `nvm install {v}`, `fnm install {v}` or `mise use node@{v}`")
        }
        Lang::Ruby => {
            let table: Vec<(u32, u32, String)> = RUBY_LAST
                .iter()
                .map(|(a, b, c)| (*a, *b, c.to_string()))
                .collect();
            let rbenv = match version.and_then(|w| full_version(w, &table)) {
                Some(f) => format!("`rbenv install {f}`"),
                None => format!("`rbenv install {v}` (full versions: `rbenv install --list`)"),
            };
            format!("install it with {rbenv} or `mise use ruby@{v}`")
        }
    }
}

/// The interpreter for `want` among `found` (newest first): the newest that matches, else
/// the closest of the same major version, else the newest.
pub(crate) fn choose(found: &[Interpreter], want: Option<Version>) -> (Option<Interpreter>, bool) {
    let Some(w) = want else {
        return (found.first().cloned(), true);
    };
    if let Some(i) = found.iter().find(|i| w.matches(i.version)) {
        return (Some(i.clone()), true);
    }
    // The closest minor version of the same major (the newer of two as close), else the
    // newest of another.
    let distance = |i: &Interpreter| {
        let (a, b) = (i.version.minor.unwrap_or(0), w.minor.unwrap_or(0));
        (a.abs_diff(b), std::cmp::Reverse(i.version))
    };
    let near = found
        .iter()
        .filter(|i| i.version.major == w.major)
        .min_by_key(|i| distance(i))
        .or_else(|| found.first());
    (near.cloned(), false)
}

/// `--runtime` and `--strict-runtime`, for the whole process (set once by the command).
#[derive(Debug, Clone, Default)]
pub(crate) struct Flags {
    pub runtime: Option<String>,
    pub strict: bool,
}

static FLAGS: OnceLock<Flags> = OnceLock::new();

/// Set `--runtime`/`--strict-runtime` (the first call wins).
pub(crate) fn set_flags(f: Flags) {
    let _ = FLAGS.set(f);
}

/// Check `--runtime` and set it with `--strict-runtime` for this process (`run`, `exec`,
/// `ssh`, `env`); `Err` is the message of a `--runtime` that names no runtime.
pub(crate) fn set_from_cli(runtime: Option<&str>, strict: bool) -> Result<(), String> {
    if let Some(r) = runtime
        && parse_runtime(r).is_none()
    {
        return Err(format!(
            "error: --runtime {r}: not a runtime (examples: python27, python3.12, python-2.7.18, node18, ruby3.1)"
        ));
    }
    set_flags(Flags {
        runtime: runtime.map(str::to_string),
        strict,
    });
    Ok(())
}

pub(crate) fn flags() -> Flags {
    FLAGS.get().cloned().unwrap_or_default()
}

/// The runtime `app` runs on, its files read from `dir`. A Python app that declares nothing
/// runs on the `python3` of PATH (the platform defaulted to 2.7: `--runtime python27`).
/// A Node or Ruby app runs on the `node`/`ruby` of PATH when it declares nothing or PATH's
/// is the declared version, else on the installed one that is (nvm, rbenv, …: see
/// [`crate::platform::runtime_bin`], which puts its `bin/` first on PATH), else on the
/// closest installed one.
pub(crate) fn resolve(app: &App, dir: &Path) -> Option<Choice> {
    let flag = flags().runtime;
    let declared = declared(app, dir, flag.as_deref());
    let lang = declared
        .as_ref()
        .map(|d| d.lang)
        .or_else(|| app_lang(app, dir))?;
    if lang != Lang::Python {
        let path_one = on_path(lang, None);
        let Some(d) = declared else {
            return Some(Choice {
                declared: None,
                exact: true,
                chosen: path_one,
            });
        };
        // package.json's `engines.node` is an npm range (`>=0.8`, `0.10.x`, `^4.2`): PATH's
        // node when it is in the range, else the newest installed one that is.
        if let Some(range) = d
            .text
            .strip_prefix("engines.node ")
            .and_then(super::node_range::Range::parse)
        {
            let fits = |i: &Interpreter| {
                let v = i.version;
                range.satisfies(v.major, v.minor.unwrap_or(0), v.patch.unwrap_or(0))
            };
            let fitting = path_one
                .clone()
                .filter(|p| fits(p))
                .or_else(|| installed(lang).into_iter().find(|i| fits(i)));
            if fitting.is_some() {
                return Some(Choice {
                    exact: true,
                    declared: Some(d),
                    chosen: fitting,
                });
            }
        }
        let (chosen, exact) = match (&path_one, d.version) {
            (Some(_), None) => (path_one, true),
            (Some(p), Some(w)) if w.matches(p.version) => (path_one, true),
            (_, want) => {
                let (c, e) = choose(&installed(lang), want);
                (c.or(path_one), e)
            }
        };
        return Some(Choice {
            exact,
            declared: Some(d),
            chosen,
        });
    }
    let found = installed(lang);
    let want = match &declared {
        Some(d) => d.version,
        // Nothing declared: Python 3 (see the README, "Frameworks and runtimes").
        None if lang == Lang::Python => Some(Version {
            major: 3,
            ..Version::default()
        }),
        None => None,
    };
    // No minor version asked: what the user's PATH gives first, when it fits (as before
    // runtimes were looked up: `python3` through a pyenv shim keeps its global version).
    let first = want
        .is_none_or(|w| w.minor.is_none())
        .then(|| on_path(lang, want))
        .flatten();
    let (chosen, exact) = match first {
        Some(i) => (Some(i), true),
        None => choose(&found, want),
    };
    Some(Choice {
        exact: exact || declared.is_none(),
        declared,
        chosen,
    })
}

/// The Python interpreter staging makes `app`'s virtualenv with.
pub(crate) fn python_for(app: &App, dir: &Path) -> Option<Choice> {
    resolve(app, dir).filter(|c| c.chosen.as_ref().is_some_and(|i| i.lang == Lang::Python))
}

/// The warning (or with `--strict-runtime`, the error) when `app` declares a runtime that
/// is not installed here, positioned at the `runtime` key when the manifest declares it;
/// and a warning when a declaration file's line names no version (see [`Unreadable`]).
pub(crate) fn diagnostics(app: &App, dir: &Path) -> Vec<crate::diag::Diagnostic> {
    let unreadable = unreadable(app, dir).map(|u| {
        crate::diag::Diagnostic::warning(format!("{}: {}", app.name.value, u.message())).hint(
            "write a version there (`2.7.18`, `>=0.10`, `'1.9.3'`), or remove the line; `--runtime` chooses one for this run",
        )
    });
    unreadable.into_iter().chain(diagnostic(app, dir)).collect()
}

/// The mismatch part of [`diagnostics`].
fn diagnostic(app: &App, dir: &Path) -> Option<crate::diag::Diagnostic> {
    // Nothing declared, nothing to warn about: no interpreter is run (this is on every
    // `run`'s start-up path).
    declared(app, dir, flags().runtime.as_deref())?;
    let choice = resolve(app, dir)?;
    let msg = choice.mismatch()?;
    let strict = flags().strict;
    let d = if strict {
        crate::diag::Diagnostic::error(format!("{}: {msg} (--strict-runtime)", app.name.value))
    } else {
        crate::diag::Diagnostic::warning(format!("{}: {msg}", app.name.value))
    };
    let d = match choice.declared.as_ref().map(|x| &x.source) {
        Some(Source::Key(span)) if *span != Span::default() => d.at(*span).label(format!(
            "not installed here{}",
            if strict {
                ""
            } else {
                "; the closest one is used"
            }
        )),
        _ => d,
    };
    let pass = if strict {
        "; or pass `--runtime` to choose another, or drop --strict-runtime to run on the closest one"
    } else {
        "; `--strict-runtime` makes this an error"
    };
    Some(d.hint(format!("{}{pass}", choice.install_hint())))
}

/// `VCAP_APPLICATION.runtime` (2.x) names the interpreter actually used (`python27`, or
/// `python311` when 2.7 is not installed here), so the app, `doctor` and `run` agree.
pub(crate) fn stamp_vcap(env: &mut crate::model::EnvSet, used: &Interpreter) {
    let Some(mut v) = env
        .get("VCAP_APPLICATION")
        .and_then(|t| serde_json::from_str::<serde_json::Value>(t).ok())
    else {
        return;
    };
    let Some(o) = v.as_object_mut() else { return };
    if !o.contains_key("runtime") {
        return;
    }
    o.insert("runtime".into(), used.id().into());
    env.amend("VCAP_APPLICATION", v.to_string());
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &str) -> Version {
        Version::parse(s).unwrap_or_default()
    }

    #[test]
    fn only_versions_are_declarations() {
        use super::{gemfile_ruby, is_version_word};
        for ok in ["2.7.18", "3.12-dev", "3.13.0rc1", "3"] {
            assert!(is_version_word(ok), "{ok}");
        }
        for bad in ["/usr/bin/python2.7", "system", "2.7 $(x)", "pypy3.9", ""] {
            assert!(!is_version_word(bad), "{bad}");
        }
        assert_eq!(gemfile_ruby(" '1.9.3'"), Some(v("1.9.3")));
        assert_eq!(gemfile_ruby(" \"~> 2.7\", engine: 'jruby'"), Some(v("2.7")));
        assert_eq!(gemfile_ruby("('>= 2.6.0')"), Some(v("2.6.0")));
        assert_eq!(gemfile_ruby(" File.read('.ruby-version')"), None);
        assert_eq!(gemfile_ruby(" RUBY_VERSION"), None);
        assert_eq!(gemfile_ruby(" '1.9.3\x1b[2KOK'"), None);
    }

    #[test]
    fn stackato_ids() {
        assert_eq!(
            parse_runtime("python27"),
            Some((Lang::Python, Some(v("2.7"))))
        );
        assert_eq!(
            parse_runtime("python32"),
            Some((Lang::Python, Some(v("3.2"))))
        );
        assert_eq!(
            parse_runtime("Python3"),
            Some((
                Lang::Python,
                Some(Version {
                    major: 3,
                    ..Version::default()
                })
            ))
        );
        assert_eq!(parse_runtime("node08"), Some((Lang::Node, Some(v("0.8")))));
        assert_eq!(
            parse_runtime("node010"),
            Some((Lang::Node, Some(v("0.10"))))
        );
        assert_eq!(parse_runtime("ruby19"), Some((Lang::Ruby, Some(v("1.9")))));
        assert_eq!(
            parse_runtime("python-2.7.18"),
            Some((Lang::Python, Some(v("2.7.18"))))
        );
        assert_eq!(parse_runtime("python"), Some((Lang::Python, None)));
        assert_eq!(parse_runtime("perl514"), None);
        assert_eq!(parse_runtime("pythonic"), None);
    }

    #[test]
    fn ids_round_trip() {
        assert_eq!(runtime_id(Lang::Python, v("2.7.18")), "python27");
        assert_eq!(runtime_id(Lang::Python, v("3.11.7")), "python311");
        assert_eq!(runtime_id(Lang::Node, v("0.10.48")), "node010");
        assert_eq!(runtime_id(Lang::Node, v("18.19.0")), "node18");
    }

    fn interp(s: &str) -> Interpreter {
        Interpreter {
            lang: Lang::Python,
            path: PathBuf::from(format!("/x/{s}")),
            version: v(s),
            from: "test",
        }
    }

    #[test]
    fn choose_exact_then_same_major_then_newest() {
        let found = vec![interp("3.12.1"), interp("3.11.7"), interp("2.7.18")];
        let (c, exact) = choose(&found, Some(v("2.7")));
        assert_eq!(c.map(|i| i.version), Some(v("2.7.18")));
        assert!(exact);
        let (c, exact) = choose(&found, Some(v("3.2")));
        assert_eq!(c.map(|i| i.version), Some(v("3.11.7")), "the closest minor");
        assert!(!exact);
        let (c, exact) = choose(&found[..2], Some(v("2.7")));
        assert_eq!(c.map(|i| i.version), Some(v("3.12.1")));
        assert!(!exact);
        let (c, exact) = choose(&[], Some(v("2.7")));
        assert!(c.is_none() && !exact);
    }

    #[test]
    fn python2_hint_names_pyenv() {
        let h = install_hint(Lang::Python, Some(v("2.7")));
        assert!(h.contains("pyenv install 2.7.18"), "{h}");
        assert!(h.contains("mise use python@2.7"), "{h}");
        assert!(!h.contains("uv python install"), "{h}");
    }

    #[test]
    fn hints_name_versions_the_installers_can_install() {
        let h = install_hint(Lang::Python, Some(v("2.6")));
        assert!(h.contains("`pyenv install 2.6.9`"), "{h}");
        let h = install_hint(Lang::Python, Some(v("3.2")));
        assert!(h.contains("`pyenv install 3.2.6`"), "{h}");
        assert!(!h.contains("uv python install"), "uv has no 3.2: {h}");
        let h = install_hint(Lang::Python, Some(v("3.12")));
        assert!(h.contains("`uv python install 3.12`"), "{h}");
        assert!(h.contains("pyenv install --list"), "{h}");
        let h = install_hint(Lang::Python, Some(v("3.6.1")));
        assert!(h.contains("`pyenv install 3.6.1`"), "{h}");
        let h = install_hint(Lang::Ruby, Some(v("1.9.3")));
        assert!(h.contains("`rbenv install 1.9.3-p551`"), "{h}");
        let h = install_hint(Lang::Ruby, Some(v("2.7.2")));
        assert!(h.contains("`rbenv install 2.7.2`"), "{h}");
        let h = install_hint(Lang::Ruby, Some(v("1.9")));
        assert!(h.contains("`rbenv install 1.9.3-p551`"), "{h}");
        let h = install_hint(Lang::Ruby, Some(v("3.3")));
        assert!(h.contains("rbenv install --list"), "{h}");
    }
}
