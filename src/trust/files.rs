//! The files that decide what a project runs (manifest and inherited files, `.env`, Procfile,
//! dependency manifests the installers execute, local packages, crontab), and reading one of
//! them safely for its digest: regular files only, without following a symlink out of the
//! project, never blocking on a FIFO, with a size cap.

use crate::manifest::normalize::lexical;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::manifest::{App, Loaded};

/// Largest file we hash; a bigger one cannot be trusted.
pub(crate) const MAX_FILE: u64 = 16 * 1024 * 1024;

/// Most files that may decide what a project runs; a project naming more (thousands of local
/// packages in a requirements file) cannot be trusted: listing and hashing them would take
/// hours and the listing could not be reviewed.
pub(crate) const MAX_DECISIVE: usize = 4096;

/// Files looked for in every app directory; absent ones are recorded as missing, so one that
/// appears later asks again.
const PER_APP: &[&str] = &[
    ".env",
    "Procfile",
    "crontab",
    "requirements.txt",
    "requirements.pip",
    "package.json",
    ".npmrc",
    "cpanfile",
    "Makefile.PL",
    "Build.PL",
    "Gemfile",
    "Gemfile.lock",
    "composer.json",
    "composer.lock",
    "setup.py",
    "setup.cfg",
    "pyproject.toml",
    // Which interpreter runs the app (see `platform::runtime`).
    "runtime.txt",
    ".python-version",
];

/// What a local package (`-e .`, `./pkg`, `file:`) runs when pip or npm installs it.
const PACKAGE_FILES: &[&str] = &["setup.py", "setup.cfg", "pyproject.toml", "package.json"];

/// The state of one file, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum FileState {
    Missing,
    File {
        sha256: String,
        size: u64,
    },
    /// A symlink pointing outside the project: recorded, never followed.
    LinkOutside {
        target: String,
    },
    /// Not a regular file (directory, FIFO, device, socket).
    Special {
        what: String,
    },
    TooLarge {
        size: u64,
    },
    Unreadable {
        error: String,
    },
}

impl FileState {
    /// Whether this state can be trusted at all (a file we could not read cannot).
    pub(crate) fn checkable(&self) -> bool {
        !matches!(
            self,
            FileState::TooLarge { .. } | FileState::Unreadable { .. }
        )
    }
}

/// The path does not exist: not found, or a component of it is a file (`./pkg.whl/setup.py`).
fn absent(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::NotFound || e.raw_os_error() == Some(libc::ENOTDIR)
}

/// The state of `path`, reading it only if it is a regular file inside `root` (symlinks are
/// resolved, in the name and in its directories, and must stay inside `root`).
pub(crate) fn state(path: &Path, root: &Path) -> FileState {
    match std::fs::symlink_metadata(path) {
        Ok(_) => {}
        Err(e) if absent(&e) => return FileState::Missing,
        Err(e) => {
            return FileState::Unreadable {
                error: e.to_string(),
            };
        }
    }
    let target = || {
        std::fs::read_link(path)
            .map(|t| t.to_string_lossy().into_owned())
            .unwrap_or_else(|_| path.to_string_lossy().into_owned())
    };
    // A file the project itself holds (Procfile, .env, requirements.txt, ...) that leads out
    // of it cannot be trusted: what it says would come from outside, unrecorded, and change
    // without asking again. A dangling one could be made to lead out later.
    let held = lexical(path).starts_with(root);
    match path.canonicalize() {
        Ok(r) if r.starts_with(root) => read(&r),
        Ok(_) if held => FileState::Unreadable {
            error: format!("a link out of the project (to {}), not followed", target()),
        },
        Err(_) if held => FileState::Unreadable {
            error: format!("a link to nothing (to {}), not followed", target()),
        },
        // Named outside the project (an absolute local package): recorded by its path or
        // target, never read.
        _ => FileState::LinkOutside { target: target() },
    }
}

/// Hash a regular file: opened without following a link and without blocking, checked again
/// after opening, read up to the cap (see [`crate::fsx`]).
pub(crate) fn read(path: &Path) -> FileState {
    use crate::fsx::ReadError;
    let unreadable = |e: std::io::Error| FileState::Unreadable {
        error: e.to_string(),
    };
    let f = match crate::fsx::open_regular(path, false) {
        Ok(f) => f,
        Err(ReadError::NotRegular(what)) => {
            return FileState::Special { what: what.into() };
        }
        Err(ReadError::Io(e)) if absent(&e) => return FileState::Missing,
        Err(ReadError::Io(e)) => return unreadable(e),
        Err(ReadError::TooLarge(size)) => return FileState::TooLarge { size },
    };
    match f.metadata() {
        Ok(md) if md.len() > MAX_FILE => return FileState::TooLarge { size: md.len() },
        Ok(_) => {}
        Err(e) => return unreadable(e),
    }
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut size = 0u64;
    let mut r = f.take(MAX_FILE + 1);
    loop {
        match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                size += n as u64;
                h.update(&buf[..n]);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return unreadable(e),
        }
    }
    if size > MAX_FILE {
        return FileState::TooLarge { size };
    }
    FileState::File {
        sha256: format!("{:x}", h.finalize()),
        size,
    }
}

/// The text of a regular file inside `root` (same rules as [`state`]), for what `allow` shows.
pub(crate) fn text(path: &Path, root: &Path) -> Option<String> {
    let real = path.canonicalize().ok()?;
    if !real.starts_with(root) {
        return None;
    }
    let bytes = crate::fsx::read_capped(&real, false, MAX_FILE).ok()?;
    Some(String::from_utf8_lossy(&bytes).into_owned())
}

/// One decisive file: its path, and whether the shell hook evaluates it (manifest, inherited
/// files, `.env`), so the hook re-checks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Decisive {
    pub path: PathBuf,
    pub hook: bool,
    /// A manifest file (the root or an inherited one): the loader has read it, wherever it is.
    pub source: bool,
    /// The file names more files than [`MAX_DECISIVE`] allows: the project cannot be trusted.
    pub too_many: bool,
}

/// A reference to a local package or another requirements file in a requirements file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ReqRef {
    /// `-r FILE`, `-c FILE`: read by pip too.
    File(String),
    /// `-e .`, `./pkg`, `file:../x`, `/abs/pkg`, `name @ file:…`: built from source.
    Local(String),
    /// `-f DIR`, `--find-links DIR`: pip installs packages from the archives in it (and runs
    /// their build code).
    Links(String),
}

/// `file:` URLs and paths in a requirement, as a path.
fn local_path(spec: &str) -> Option<String> {
    let spec = spec.trim();
    let spec = spec.split_once('#').map_or(spec, |(a, _)| a).trim();
    let spec = spec
        .strip_suffix(']')
        .map_or(spec, |s| s.rsplit_once('[').map_or(spec, |(a, _)| a));
    if let Some(rest) = spec.strip_prefix("file://") {
        return Some(rest.to_string());
    }
    if let Some(rest) = spec.strip_prefix("file:") {
        return Some(rest.to_string());
    }
    if spec.starts_with('.') || spec.starts_with('/') || spec.starts_with('~') {
        return Some(spec.to_string());
    }
    None
}

/// Local packages and nested files referenced by a pip requirements file.
pub(crate) fn requirement_refs(text: &str) -> Vec<ReqRef> {
    let mut out = Vec::new();
    for raw in text.lines() {
        let line = match raw.find(" #") {
            Some(i) => &raw[..i],
            None => raw,
        }
        .trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (opt, rest) = match line.split_once([' ', '=', '\t']) {
            Some((o, r)) if o.starts_with('-') => (o, r.trim()),
            _ if line.starts_with("-r") || line.starts_with("-c") || line.starts_with("-e") => {
                (&line[..2], line[2..].trim())
            }
            _ => ("", line),
        };
        match opt {
            "-r" | "--requirement" | "-c" | "--constraint" => {
                out.push(ReqRef::File(rest.to_string()));
            }
            "-f" | "--find-links" => {
                if let Some(p) = local_path(rest) {
                    out.push(ReqRef::Links(p));
                } else if !rest.contains("://") {
                    out.push(ReqRef::Links(rest.to_string()));
                }
            }
            "-e" | "--editable" => {
                if let Some(p) = local_path(rest) {
                    out.push(ReqRef::Local(p));
                } else if !rest.contains("://") && !rest.contains('+') {
                    out.push(ReqRef::Local(rest.to_string()));
                }
            }
            "" => {
                if let Some((_, url)) = rest.split_once(" @ ")
                    && let Some(p) = local_path(url)
                {
                    out.push(ReqRef::Local(p));
                } else if let Some(p) = local_path(rest) {
                    out.push(ReqRef::Local(p));
                }
            }
            _ => {}
        }
    }
    out
}

/// Resolve a path written in a project file against `base`.
pub(crate) fn resolve(base: &Path, p: &str) -> PathBuf {
    if let Some(rest) = p.strip_prefix("~/") {
        // Another user's home is outside the project in any case.
        return PathBuf::from("/~").join(rest);
    }
    lexical(&base.join(p))
}

/// Local packages (`file:`, paths) among a package.json's dependencies.
pub(crate) fn npm_local_deps(json: &serde_json::Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for section in [
        "dependencies",
        "devDependencies",
        "optionalDependencies",
        "peerDependencies",
    ] {
        if let Some(m) = json.get(section).and_then(|v| v.as_object()) {
            for (name, v) in m {
                if let Some(s) = v.as_str()
                    && let Some(p) = s
                        .strip_prefix("file:")
                        .or_else(|| s.strip_prefix("link:"))
                        .map(str::to_string)
                        .or_else(|| {
                            (s.starts_with("./") || s.starts_with("../") || s.starts_with('/'))
                                .then(|| s.to_string())
                        })
                {
                    out.push((name.clone(), p));
                }
            }
        }
    }
    out
}

/// `PIP_OPTS` (split on whitespace and passed to every `pip install`, as staging does) as the
/// lines of a requirements file, so the files it names (`-r`, `-c`, `-e`, `-f`, local
/// packages) are found by [`requirement_refs`] like those of `requirements.txt`.
pub(crate) fn pip_opts_as_requirements(opts: &str) -> String {
    const TAKES_ARG: &[&str] = &[
        "-r",
        "--requirement",
        "-c",
        "--constraint",
        "-e",
        "--editable",
        "-f",
        "--find-links",
    ];
    let mut lines: Vec<String> = Vec::new();
    let mut want_arg = false;
    for t in opts.split_whitespace() {
        if want_arg && let Some(last) = lines.last_mut() {
            last.push(' ');
            last.push_str(t);
            want_arg = false;
            continue;
        }
        want_arg = TAKES_ARG.contains(&t);
        lines.push(t.to_string());
    }
    lines.join("\n")
}

/// The requirements files pip reads for `app`, per the staging rules: `PIP_REQUIREMENTS_FILE`
/// when set (in the manifest or a `.env` file), else requirements.txt / requirements.pip.
pub(crate) fn pip_files(app: &App, pip_requirements_file: Option<&str>) -> Vec<PathBuf> {
    let mut v = Vec::new();
    if let Some(f) = pip_requirements_file {
        v.push(resolve(&app.path, f));
    }
    v.push(app.path.join("requirements.txt"));
    v.push(app.path.join("requirements.pip"));
    v
}

/// Every file that decides what the project runs, in a stable order without repeats.
pub(crate) fn decisive(loaded: &Loaded, root: &Path) -> Vec<Decisive> {
    let mut out: Vec<Decisive> = Vec::new();
    // Where each path is in `out` (a project can name many files: no quadratic search).
    let mut index: std::collections::HashMap<PathBuf, usize> = std::collections::HashMap::new();
    let mut push = |path: PathBuf, hook: bool, out: &mut Vec<Decisive>| {
        let path = lexical(&path);
        if let Some(&i) = index.get(&path) {
            out[i].hook |= hook;
        } else {
            index.insert(path.clone(), out.len());
            out.push(Decisive {
                path,
                hook,
                source: false,
                too_many: false,
            });
        }
    };
    for f in loaded.sources.files() {
        let path = f.path.canonicalize().unwrap_or_else(|_| lexical(&f.path));
        if !out.iter().any(|d| d.path == path) {
            out.push(Decisive {
                path,
                hook: true,
                source: true,
                too_many: false,
            });
        }
    }
    push(loaded.manifest.dir.join(".env"), true, &mut out);
    for app in &loaded.manifest.apps {
        push(app.path.join(".env"), true, &mut out);
        for f in PER_APP {
            push(app.path.join(f), false, &mut out);
        }
        let prf = crate::trust::shown::staging_value(loaded, app, root, "PIP_REQUIREMENTS_FILE");
        // Requirements files and what they pull in, breadth first, bounded; first the files
        // `PIP_OPTS` names (read as a requirements file in the app directory).
        let mut queue: Vec<PathBuf> = pip_files(app, prf.as_deref());
        let mut pip_opts = crate::trust::shown::staging_value(loaded, app, root, "PIP_OPTS")
            .map(|o| pip_opts_as_requirements(&o));
        let mut seen: Vec<PathBuf> = Vec::new();
        loop {
            let (f, t) = if let Some(t) = pip_opts.take() {
                (app.path.join("PIP_OPTS"), t)
            } else {
                let Some(f) = queue.pop() else { break };
                if seen.contains(&f) || seen.len() >= 64 {
                    continue;
                }
                seen.push(f.clone());
                push(f.clone(), false, &mut out);
                let Some(t) = text(&f, root) else { continue };
                (f, t)
            };
            let dir = f.parent().map(Path::to_path_buf).unwrap_or_default();
            for r in requirement_refs(&t) {
                if out.len() > MAX_DECISIVE {
                    let p = lexical(&f);
                    if let Some(d) = out.iter_mut().find(|d| d.path == p) {
                        d.too_many = true;
                    }
                    return out;
                }
                match r {
                    ReqRef::File(n) => queue.push(resolve(&dir, &n)),
                    ReqRef::Links(p) => {
                        // The directory and every archive in it (a new one asks again).
                        let d = resolve(&app.path, &p);
                        push(d.clone(), false, &mut out);
                        let inside = d.canonicalize().is_ok_and(|c| c.starts_with(root));
                        if let (true, Ok(rd)) = (inside, std::fs::read_dir(&d)) {
                            let mut names: Vec<PathBuf> =
                                rd.filter_map(Result::ok).map(|e| e.path()).collect();
                            names.sort();
                            for n in names {
                                if out.len() > MAX_DECISIVE {
                                    let p = lexical(&f);
                                    if let Some(d) = out.iter_mut().find(|d| d.path == p) {
                                        d.too_many = true;
                                    }
                                    return out;
                                }
                                push(n, false, &mut out);
                            }
                        }
                    }
                    ReqRef::Local(p) => {
                        let d = resolve(&app.path, &p);
                        // The package itself (an archive runs its setup.py too), then the
                        // files a source directory runs.
                        push(d.clone(), false, &mut out);
                        for pf in PACKAGE_FILES {
                            push(d.join(pf), false, &mut out);
                        }
                    }
                }
            }
        }
        // A buildpack in the project runs its bin scripts at staging; `.profile.d/*.sh` run
        // before each process of a buildpack app. They are recorded for every app (`run
        // --buildpack DIR` makes any app one), though `allow` lists them only for an app a
        // buildpack stages without that flag (see shown.rs).
        if let Some(v) = crate::stage::buildpack::manifest_value(app)
            && !crate::stage::buildpack::is_url(&v)
        {
            let d = crate::stage::buildpack::manifest_dir(app, &v);
            for b in crate::stage::buildpack::BIN_SCRIPTS {
                push(d.join("bin").join(b), false, &mut out);
            }
        }
        let profile_d = app.path.join(".profile.d");
        if profile_d.canonicalize().is_ok_and(|c| c.starts_with(root))
            && let Ok(rd) = std::fs::read_dir(&profile_d)
        {
            let mut names: Vec<PathBuf> = rd
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "sh"))
                .take(64)
                .collect();
            names.sort();
            for n in names {
                push(n, false, &mut out);
            }
        }
        if let Some(t) = text(&app.path.join("package.json"), root)
            && let Ok(json) = serde_json::from_str::<serde_json::Value>(&t)
        {
            for (_, p) in npm_local_deps(&json) {
                let d = resolve(&app.path, &p);
                push(d.join("package.json"), false, &mut out);
            }
        }
        // Composer's `path` repositories: local packages whose composer.json decides what
        // Composer installs (and a plugin among them runs).
        if let Some(t) = text(&app.path.join("composer.json"), root)
            && let Ok(json) = serde_json::from_str::<serde_json::Value>(&t)
        {
            for p in crate::stage::requirements::php::path_repositories(&json) {
                let d = resolve(&app.path, &p);
                push(d.join("composer.json"), false, &mut out);
            }
        }
        // A Carton bundle cpanm installs from: its index and every archive (each runs its
        // Makefile.PL), bounded like the rest.
        let bundle = app.path.join(crate::stage::requirements::perl::BUNDLE);
        let index = bundle.join("modules").join("02packages.details.txt.gz");
        if crate::platform::perl::is_perl_app(app) && index.is_file() {
            push(index, false, &mut out);
            for f in files_under(&bundle.join("authors"), root, MAX_DECISIVE) {
                if out.len() > MAX_DECISIVE {
                    break;
                }
                push(f, false, &mut out);
            }
        }
    }
    out
}

/// The files under `dir` (inside `root`, links not followed), sorted, at most `max`.
fn files_under(dir: &Path, root: &Path, max: usize) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        if !d.canonicalize().is_ok_and(|c| c.starts_with(root)) {
            continue;
        }
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        let mut names: Vec<PathBuf> = rd.filter_map(Result::ok).map(|e| e.path()).collect();
        names.sort();
        for n in names {
            if out.len() >= max {
                return out;
            }
            match std::fs::symlink_metadata(&n) {
                Ok(m) if m.is_dir() => dirs.push(n),
                _ => out.push(n),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {

    #[test]
    fn pip_opts_read_as_requirement_lines() {
        let t = super::pip_opts_as_requirements("-r extra.txt --no-deps -e ./pkg -f dist --pre x");
        assert_eq!(t, "-r extra.txt\n--no-deps\n-e ./pkg\n-f dist\n--pre\nx");
    }

    use super::*;

    #[test]
    fn local_packages_and_nested_files_are_found() {
        let refs = requirement_refs(
            "flask==2.0\n-e .\n./pkg\n-r dev.txt\n--requirement=more.txt\n-e git+https://x/y#egg=z\nfoo @ file:///opt/foo\n# -e ./commented\nfile:../sib[extra]\n-c constraints.txt\nbar # ./not-this\n",
        );
        assert_eq!(
            refs,
            vec![
                ReqRef::Local(".".into()),
                ReqRef::Local("./pkg".into()),
                ReqRef::File("dev.txt".into()),
                ReqRef::File("more.txt".into()),
                ReqRef::Local("/opt/foo".into()),
                ReqRef::Local("../sib".into()),
                ReqRef::File("constraints.txt".into()),
            ]
        );
    }

    #[test]
    fn a_fifo_is_not_read_and_a_link_outside_is_not_followed() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().canonicalize().unwrap();
        let fifo = root.join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        assert_eq!(
            state(&fifo, &root),
            FileState::Special {
                what: "a FIFO".into()
            }
        );
        std::os::unix::fs::symlink("/etc/passwd", root.join("out")).unwrap();
        assert!(!state(&root.join("out"), &root).checkable());
        std::os::unix::fs::symlink("nothing", root.join("dangling")).unwrap();
        assert!(!state(&root.join("dangling"), &root).checkable());
        assert_eq!(
            state(Path::new("/etc/passwd"), &root),
            FileState::LinkOutside {
                target: "/etc/passwd".into()
            }
        );
        std::fs::write(root.join("f"), "x").unwrap();
        std::os::unix::fs::symlink("f", root.join("in")).unwrap();
        assert_eq!(
            state(&root.join("in"), &root),
            state(&root.join("f"), &root)
        );
        assert!(matches!(
            state(&root.join("f"), &root),
            FileState::File { size: 1, .. }
        ));
        assert_eq!(state(&root.join("nope"), &root), FileState::Missing);
        // Below a file (a local wheel's "setup.py"): absent, not unreadable.
        assert_eq!(state(&root.join("f/setup.py"), &root), FileState::Missing);
    }
}
