//! Reading `stackato.yml` / `manifest.yml` exactly as the Stackato client did: locate the file,
//! parse with positions, resolve `inherit:`, normalise, validate, substitute `${...}`, and build
//! the typed [`Manifest`]. Every problem found is kept as a positioned [`Diagnostic`].

pub(crate) mod cron;
pub(crate) mod keys;
pub(crate) mod model;
pub(crate) mod normalize;
pub(crate) mod subst;
pub(crate) mod upload;
pub(crate) mod validate;

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::diag::{Diagnostic, Severity, Sources, Span};
use crate::yaml::{self, Node, Value};

pub(crate) use model::{App, Manifest};
pub(crate) use subst::{Asker, Target};

/// Longest chain of `inherit:` files we follow.
const MAX_INHERIT_DEPTH: usize = 32;
/// Most distinct files one manifest may inherit.
const MAX_INHERIT_FILES: usize = 256;

/// The default target when neither `--target` nor `STACKATO_TARGET` names one.
pub(crate) const DEFAULT_TARGET: &str = "https://api.stackato.local";

/// Where to look and how to resolve built-in symbols.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// The application directory (`--path`, or the working directory).
    pub dir: PathBuf,
    /// `--manifest FILE`: use this file instead of searching.
    pub manifest: Option<PathBuf>,
    /// The target URL behind `${target-url}` and `${target-base}`.
    pub(crate) target_url: String,
    /// `${random-word}`; derived from the manifest's directory when `None`, so it is stable.
    pub(crate) random_word: Option<String>,
    /// Files outside the manifest's directory that `inherit:` may read: canonical paths the
    /// user accepted (from the trust record). Any other outside file is refused.
    pub outside: Vec<PathBuf>,
    /// Read every inherited file wherever it is (`allow`, to show them for review).
    pub(crate) outside_all: bool,
}

impl LoadOptions {
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        LoadOptions {
            dir: dir.into(),
            manifest: None,
            target_url: DEFAULT_TARGET.into(),
            random_word: None,
            outside: Vec::new(),
            outside_all: false,
        }
    }
}

/// A manifest that loaded: warnings may remain, errors do not.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub sources: Sources,
    /// The root manifest file.
    pub file: PathBuf,
    /// The normalised, resolved tree (what `debug-manifest` printed).
    pub tree: Node,
    pub manifest: Manifest,
    pub warnings: Vec<Diagnostic>,
    /// Every inherited file outside the manifest's directory that was read (canonical).
    pub(crate) outside_files: Vec<PathBuf>,
}

#[derive(Debug)]
pub enum LoadError {
    /// No stackato.yml in `dir`, no manifest.yml in it or its parents (`skipped`: the ones
    /// another user owns, passed over).
    NotFound { dir: PathBuf, skipped: Vec<Skipped> },
    /// `--manifest` names a file that cannot be read, or the file vanished.
    Unreadable {
        path: PathBuf,
        error: std::io::Error,
    },
    /// The manifest has errors (all of them are here, with the warnings).
    Invalid {
        sources: Sources,
        file: PathBuf,
        diagnostics: Vec<Diagnostic>,
    },
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadError::NotFound { dir, .. } => write!(
                f,
                "no manifest found: no stackato.yml in {}, and no manifest.yml there or in any parent directory",
                dir.display()
            ),
            LoadError::Unreadable { path, error } => {
                write!(f, "cannot read {}: {error}", path.display())
            }
            LoadError::Invalid {
                diagnostics, file, ..
            } => {
                let n = diagnostics.iter().filter(|d| d.is_error()).count();
                write!(
                    f,
                    "{} has {n} error{}",
                    crate::diag::display_path(file),
                    if n == 1 { "" } else { "s" }
                )
            }
        }
    }
}

impl std::error::Error for LoadError {}

/// Find the manifest as the client did: `stackato.yml` in `dir` only, else `manifest.yml` in
/// `dir` or any parent. `--manifest` wins. The parent search is [`search`]'s: it ignores a
/// `manifest.yml` owned by another user and stops at a group- or world-writable directory.
pub(crate) fn locate(dir: &Path, manifest: Option<&Path>) -> Result<PathBuf, LoadError> {
    locate_noting(dir, manifest, &mut Vec::new())
}

/// [`locate`], noting the manifests passed over because another user owns them.
fn locate_noting(
    dir: &Path,
    manifest: Option<&Path>,
    skipped: &mut Vec<Skipped>,
) -> Result<PathBuf, LoadError> {
    if let Some(m) = manifest {
        let p = if m.is_absolute() {
            m.to_path_buf()
        } else {
            std::env::current_dir()
                .map(|c| c.join(m))
                .unwrap_or_else(|_| m.to_path_buf())
        };
        return match std::fs::metadata(&p) {
            Ok(md) if md.is_file() => Ok(p),
            Ok(md) => Err(LoadError::Unreadable {
                path: p,
                error: std::io::Error::other(format!(
                    "is {}, not a regular file",
                    crate::fsx::kind(md.file_type())
                )),
            }),
            Err(error) => Err(LoadError::Unreadable { path: p, error }),
        };
    }
    let dir = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    search(&dir, false, Some(&mut *skipped)).ok_or_else(|| LoadError::NotFound {
        dir,
        skipped: skipped.clone(),
    })
}

/// The upward manifest search shared by [`locate`] and the shell hook: `stackato.yml` in `dir`
/// (in every searched directory when `stackato_in_parents`), else `manifest.yml` in `dir` or a
/// parent. In a parent (or a shared `dir`), a manifest file another user owns is skipped (and
/// noted in `skipped`), and the search does not enter a group- or world-writable
/// parent (`/tmp`, sticky or not): anyone could have put a manifest there, and its commands
/// would run as us.
pub(crate) fn search(
    dir: &Path,
    stackato_in_parents: bool,
    mut skipped: Option<&mut Vec<Skipped>>,
) -> Option<PathBuf> {
    let me = nix::unistd::geteuid().as_raw();
    let mut d: Option<&Path> = Some(dir);
    while let Some(cur) = d {
        if cur != dir && shared_dir(cur) {
            return None;
        }
        let names: &[&str] = if cur == dir || stackato_in_parents {
            &["stackato.yml", "manifest.yml"]
        } else {
            &["manifest.yml"]
        };
        for name in names {
            let m = cur.join(name);
            let Ok(md) = std::fs::metadata(&m) else {
                continue;
            };
            if !md.is_file() {
                continue;
            }
            // The directory the user chose (`cd`, `--path`) is theirs to use, whoever owns the
            // file, unless anyone may write there (a stranger's manifest.yml in /tmp).
            if md.uid() != me && (cur != dir || shared_dir(cur)) {
                if let Some(s) = skipped.as_deref_mut() {
                    s.push(Skipped {
                        path: m.clone(),
                        uid: md.uid(),
                    });
                }
                continue;
            }
            return Some(m);
        }
        d = cur.parent();
    }
    None
}

/// A directory others may write into: group- or world-writable.
fn shared_dir(dir: &Path) -> bool {
    std::fs::metadata(dir).is_ok_and(|m| m.mode() & 0o022 != 0)
}

/// A manifest the search passed over: another user owns it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "ignoring {}: it belongs to another user (uid {uid}), and its commands would run as you",
    .path.display()
)]
pub struct Skipped {
    pub path: PathBuf,
    pub uid: u32,
}

/// A stable `${random-word}` for a project: 4–5 hex digits from its directory.
pub(crate) fn stable_random_word(dir: &Path) -> String {
    let mut h = crate::fnv::Fnv::new();
    h.write(dir.as_os_str().as_encoded_bytes());
    format!("{:04x}", h.value() % 0x10_0000)
}

/// Locate and load the manifest.
pub fn load(opts: &LoadOptions, asker: &mut Asker<'_>) -> Result<Loaded, LoadError> {
    let mut skipped = Vec::new();
    let file = locate_noting(&opts.dir, opts.manifest.as_deref(), &mut skipped)?;
    let bytes = match read_file(&file, true) {
        Ok(b) => b,
        Err(ReadError::Io(error)) => {
            return Err(LoadError::Unreadable { path: file, error });
        }
        Err(ReadError::NotRegular(kind)) => {
            return Err(LoadError::Unreadable {
                path: file,
                error: std::io::Error::other(format!("is {kind}, not a regular file")),
            });
        }
        Err(ReadError::TooLarge(n)) => {
            let mut sources = Sources::default();
            let id = sources.add(&file, String::new());
            let d = Diagnostic::error(too_large(n)).at(Span {
                file: id,
                start: 0,
                end: 0,
                line: 1,
                col: 1,
            });
            return Err(LoadError::Invalid {
                sources,
                file,
                diagnostics: vec![d],
            });
        }
    };
    let mut loaded = load_bytes(&bytes, &file, opts, asker)?;
    loaded.warnings.splice(
        0..0,
        skipped.iter().map(|s| Diagnostic::warning(s.to_string())),
    );
    Ok(loaded)
}

pub(crate) use crate::fsx::ReadError;

fn too_large(n: u64) -> String {
    format!(
        "file is {n} bytes; manifests larger than {} bytes are refused",
        yaml::MAX_FILE_BYTES
    )
}

/// Read a manifest file without blocking or reading without bound: refuse anything but a
/// regular file before opening it (opening some devices has effects), open it non-blocking
/// (a FIFO swapped in meanwhile opens at once and is refused by the second check) and, unless
/// `follow`, without following a final symlink; read at most the YAML size limit.
pub(crate) fn read_file(path: &Path, follow: bool) -> Result<Vec<u8>, ReadError> {
    crate::fsx::read_capped(path, follow, yaml::MAX_FILE_BYTES as u64)
}

/// Where `inherit:` may read: inside `dir` (the root manifest's directory, canonical), and
/// outside it only the files the user accepted.
struct Area<'a> {
    dir: PathBuf,
    outside: &'a [PathBuf],
    outside_all: bool,
    /// Outside files read so far.
    read: Vec<PathBuf>,
}

/// Load a manifest whose root file content is `bytes`, as if read from `file` (inherited files
/// are read from disk relative to it).
pub fn load_bytes(
    bytes: &[u8],
    file: &Path,
    opts: &LoadOptions,
    asker: &mut Asker<'_>,
) -> Result<Loaded, LoadError> {
    let mut sources = Sources::default();
    let mut diags: Vec<Diagnostic> = Vec::new();
    let base = manifest_dir(file);

    let mut area = Area {
        dir: base.clone(),
        outside: &opts.outside,
        outside_all: opts.outside_all,
        read: Vec::new(),
    };
    let root = load_tree(
        bytes,
        file,
        &mut sources,
        &mut Vec::new(),
        &mut HashMap::new(),
        &mut area,
        &mut diags,
    );
    let outside_files = area.read;
    let fail = |sources: Sources, diags: Vec<Diagnostic>| LoadError::Invalid {
        sources,
        file: file.to_path_buf(),
        diagnostics: finish(diags),
    };
    let Some(root) = root else {
        return Err(fail(sources, diags));
    };

    let v3_signs = normalize::v3_signs(&root);
    let mut tree = normalize::normalize(root, &base, &mut diags).tree;
    validate::validate(&tree, &mut diags);
    let target = Target {
        url: opts.target_url.clone(),
        random_word: opts
            .random_word
            .clone()
            .unwrap_or_else(|| stable_random_word(&base)),
    };
    subst::resolve(&mut tree, &target, &sources, asker, &mut diags);
    let mut manifest = model::build(&tree, file.to_path_buf(), &mut diags);
    manifest.v3_signs = v3_signs;
    validate::names(&manifest, &mut diags);
    let choice = crate::platform::profile::default_for(&manifest);
    validate::timeouts(&manifest, choice.profile, &choice.reason, &mut diags);
    if manifest.apps.is_empty() && !diags.iter().any(Diagnostic::is_error) {
        let empty = sources.get(crate::diag::FileId(0)).is_some_and(|f| {
            f.text
                .lines()
                .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
        });
        diags.push(
            Diagnostic::error(if empty {
                "the manifest is empty: it describes no application"
            } else {
                "the manifest describes no application"
            })
            .at(Span {
                file: crate::diag::FileId(0),
                start: 0,
                end: 0,
                line: 1,
                col: 1,
            })
            .hint("a stackato.yml needs at least `name: myapp`; several apps go under `applications:`"),
        );
    }

    let diags = finish(diags);
    if diags.iter().any(Diagnostic::is_error) {
        return Err(fail(sources, diags));
    }
    Ok(Loaded {
        sources,
        file: file.to_path_buf(),
        tree,
        manifest,
        warnings: diags,
        outside_files,
    })
}

/// The directory of the root manifest `file`, symlinks resolved: the base of relative app paths.
pub(crate) fn manifest_dir(file: &Path) -> PathBuf {
    let base = file.parent().map(Path::to_path_buf).unwrap_or_default();
    base.canonicalize().unwrap_or(base)
}

/// Most diagnostics reported for one manifest; the rest are counted.
const MAX_DIAGNOSTICS: usize = 200;

/// Drop repeats (same place, same severity), keep file order, cap the count.
fn finish(mut diags: Vec<Diagnostic>) -> Vec<Diagnostic> {
    use std::collections::HashSet;
    let mut places: HashSet<(u32, u32, u32, Severity)> = HashSet::new();
    let mut messages: HashSet<(Severity, String)> = HashSet::new();
    diags.retain(|d| match d.span {
        Some(s) => places.insert((s.file.0, s.start, s.end, d.severity)),
        None => messages.insert((d.severity, d.message.clone())),
    });
    diags.sort_by_key(|d| d.span.map(|s| (s.file.0, s.start)));
    if diags.len() > MAX_DIAGNOSTICS {
        let errors = diags.iter().any(Diagnostic::is_error);
        let rest = diags.len() - MAX_DIAGNOSTICS;
        // Keep errors first so a capped list still explains why the file is refused.
        diags.sort_by_key(|d| (!d.is_error(), d.span.map(|s| (s.file.0, s.start))));
        diags.truncate(MAX_DIAGNOSTICS);
        let mut more = if errors {
            Diagnostic::error(format!("… and {rest} more problems not shown"))
        } else {
            Diagnostic::warning(format!("… and {rest} more warnings not shown"))
        };
        more.span = None;
        diags.push(more);
    }
    diags
}

/// Parse one file and everything it inherits, deep-merged (the including file wins; earlier
/// entries of an `inherit:` list win over later ones).
fn load_tree(
    bytes: &[u8],
    file: &Path,
    sources: &mut Sources,
    stack: &mut Vec<PathBuf>,
    cache: &mut HashMap<PathBuf, Option<Node>>,
    area: &mut Area<'_>,
    diags: &mut Vec<Diagnostic>,
) -> Option<Node> {
    let text = match yaml::decode(bytes, crate::diag::FileId(sources.files().len() as u32)) {
        Ok(t) => t.to_string(),
        Err(e) => {
            let id = sources.add(file, String::from_utf8_lossy(bytes).into_owned());
            diags.push(yaml_diag(e, id));
            return None;
        }
    };
    let id = sources.add(file, text);
    let text = sources.get(id).map(|f| f.text.clone()).unwrap_or_default();
    let parsed = match yaml::parse(&text, id) {
        Ok(p) => p,
        Err(e) => {
            diags.push(yaml_diag(e, id));
            return None;
        }
    };
    let file_span = Span {
        file: id,
        start: 0,
        end: 0,
        line: 1,
        col: 1,
    };
    if let Some(at) = parsed.next_document {
        diags.push(
            Diagnostic::warning("a second YAML document starts here; only the first is read")
                .at(at)
                .hint(
                    "remove the `---` line and what follows, or merge it into the first document",
                ),
        );
    }
    let mut root = match parsed.root {
        None => Node::map(Vec::new(), file_span),
        Some(n) if n.is_null() => Node::map(Vec::new(), file_span),
        Some(n) if n.as_map().is_some() => n,
        Some(n) => {
            diags.push(
                Diagnostic::error(format!(
                    "the top level of the manifest must be a mapping of keys (name:, services:, …), but it is {}",
                    n.kind_name()
                ))
                .at(n.span)
                .hint("a stackato.yml starts with lines like `name: myapp`"),
            );
            return None;
        }
    };

    let canonical = file.canonicalize().unwrap_or_else(|_| file.to_path_buf());
    stack.push(canonical);
    let inherit = root.remove("inherit");
    if let Some(inh) = inherit {
        let entries: Vec<Node> = match inh.value.value {
            Value::Scalar(_) if inh.value.is_null() => Vec::new(),
            Value::Scalar(_) => vec![inh.value],
            Value::Seq(items) => items,
            Value::Map(_) => {
                diags.push(
                    Diagnostic::error(
                        "Expected a yaml scalar or sequence for key \"inherit\", got a mapping",
                    )
                    .at(inh.value.span)
                    .hint("list the files to inherit: `inherit: [base/stackato.yml]`"),
                );
                Vec::new()
            }
        };
        let dir = file.parent().map(Path::to_path_buf).unwrap_or_default();
        for entry in entries {
            let Some(rel) = entry.as_str() else {
                diags.push(
                    Diagnostic::error(format!(
                        "Expected a file name in \"inherit\", got {}",
                        entry.kind_name()
                    ))
                    .at(entry.span),
                );
                continue;
            };
            let path = dir.join(rel);
            let canon = match path.canonicalize() {
                Ok(c) => c,
                Err(e) => {
                    diags.push(
                        Diagnostic::error(format!(
                            "cannot read inherited file {}: {e}",
                            crate::diag::display_path(&path)
                        ))
                        .at(entry.span)
                        .hint("inherit paths are relative to the file that names them"),
                    );
                    continue;
                }
            };
            if let Some(pos) = stack.iter().position(|p| *p == canon) {
                let chain: Vec<String> = stack[pos..]
                    .iter()
                    .chain(std::iter::once(&canon))
                    .map(|p| crate::diag::display_path(p))
                    .collect();
                diags.push(
                    Diagnostic::error(format!("inherit cycle: {}", chain.join(" -> ")))
                        .at(entry.span)
                        .hint("a file may not inherit itself, directly or through others"),
                );
                continue;
            }
            if stack.len() >= MAX_INHERIT_DEPTH {
                diags.push(
                    Diagnostic::error(format!(
                        "inherit chain deeper than {MAX_INHERIT_DEPTH} files"
                    ))
                    .at(entry.span),
                );
                continue;
            }
            // Outside the project only what the user accepted (symlinks are resolved first,
            // so a link cannot lead out either). Nothing of a refused file is read.
            let inside = canon.starts_with(&area.dir);
            if !inside && !area.outside_all && !area.outside.contains(&canon) {
                diags.push(
                    Diagnostic::error(format!(
                        "inherit: {} is outside the project ({}); review it with `stackato-local allow`",
                        canon.display(),
                        area.dir.display()
                    ))
                    .at(entry.span)
                    .hint("a cloned repository may only pull in files outside its directory after you have seen and accepted them"),
                );
                continue;
            }
            // A file inherited several times is read and merged once.
            if let Some(done) = cache.get(&canon) {
                if let Some(child) = done.clone() {
                    root = yaml::deep_merge(root, child);
                }
                continue;
            }
            if cache.len() >= MAX_INHERIT_FILES {
                diags.push(
                    Diagnostic::error(format!(
                        "more than {MAX_INHERIT_FILES} inherited files; refusing to read more"
                    ))
                    .at(entry.span),
                );
                continue;
            }
            let bytes = match read_file(&canon, false) {
                Ok(b) => b,
                Err(e) => {
                    let shown = crate::diag::display_path(&path);
                    let message = match e {
                        ReadError::Io(e) => format!("cannot read inherited file {shown}: {e}"),
                        ReadError::NotRegular(kind) => format!(
                            "inherit: {shown} is {kind}; only regular files can be inherited"
                        ),
                        ReadError::TooLarge(n) => {
                            format!("inherited file {shown}: {}", too_large(n))
                        }
                    };
                    diags.push(Diagnostic::error(message).at(entry.span));
                    continue;
                }
            };
            if !inside && !area.read.contains(&canon) {
                area.read.push(canon.clone());
            }
            let child = load_tree(&bytes, &path, sources, stack, cache, area, diags);
            cache.insert(canon, child.clone());
            if let Some(child) = child {
                root = yaml::deep_merge(root, child);
            }
        }
    }
    stack.pop();
    Some(root)
}

fn yaml_diag(e: yaml::YamlError, _id: crate::diag::FileId) -> Diagnostic {
    let mut d = Diagnostic::error(e.message).at(e.span).hint_opt(e.hint);
    if let Some((label, span)) = e.other {
        d = d.related(label, span);
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_parent_manifest_of_another_user_is_passed_over_and_noted() {
        let t = tempfile::tempdir().unwrap();
        let app = t.path().join("app");
        std::fs::create_dir(&app).unwrap();
        let theirs = t.path().join("manifest.yml");
        std::fs::write(&theirs, "name: x\n").unwrap();
        let me = nix::unistd::geteuid().as_raw();
        if !nix::unistd::geteuid().is_root() {
            eprintln!("SKIP: giving a file to another user needs root");
            return;
        }
        let other = me + 4242;
        std::os::unix::fs::lchown(&theirs, Some(other), None).unwrap();
        let mut skipped = Vec::new();
        assert_eq!(search(&app, false, Some(&mut skipped)), None);
        assert_eq!(
            skipped,
            vec![Skipped {
                path: theirs.clone(),
                uid: other
            }]
        );
        match locate(&app, None) {
            Err(LoadError::NotFound { .. }) => {}
            other => panic!("{other:?}"),
        }
        let mut asker = |_: &str| None;
        match load(&LoadOptions::new(&app), &mut asker) {
            Err(LoadError::NotFound { skipped, .. }) => {
                assert_eq!(skipped.len(), 1);
                assert!(skipped[0].to_string().contains("belongs to another user"));
            }
            other => panic!("{:?}", other.map(|l| l.file)),
        }
    }
}
