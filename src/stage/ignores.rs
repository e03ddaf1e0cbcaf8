//! The files that would be pushed, by the client's `ignores:` rules (not git's): a trailing
//! `/` matches directories only; a pattern without `/` is a Tcl glob over the whole relative
//! path (`*` crosses `/`, so `*.log` matches at any depth but `tmp` only at the top); a pattern
//! with `/` matches as an unanchored substring where `*` stays inside one path segment, `?` is
//! an optional character and a leading `/` anchors at the start. An ignored directory is not
//! entered. `ignores:` replaces the default list. The globs themselves match in linear time
//! ([`crate::stage::glob`]).

use std::path::{Path, PathBuf};

use crate::stage::glob::Glob;

/// The client 3.2.4's default list, used when `ignores:` is absent.
pub(crate) const DEFAULT: &[&str] = &[
    ".carton/",
    "local/bin/",
    "local/lib/",
    ".git/",
    "*.svn/",
    ".hg/",
    "*CVS/",
    "_FOSSIL_",
    ".fos",
    ".fslckout",
    "*.bzr",
    "*.cdv",
    "*.pc",
    "*RCS",
    "*SCCS",
    "*_MTN",
    "*_build",
    "*_darcs",
    "*_sgbak",
    "*autom4te.cache",
    "*blib",
    "*cover_db",
    "*~",
    "#*#",
    "*.log",
    "*~.dep",
    "*~.dot",
    "*~.nib",
    "*~.plst",
    "~*/",
];

/// Our own directories, never part of the app.
pub(crate) const ALWAYS: &[&str] = &[crate::state::DIR_NAME];

#[derive(Debug, Clone)]
struct Pattern {
    /// As written in the list (trimmed), to say which pattern dropped a file.
    raw: String,
    dir_only: bool,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    /// A glob without wildcards: the whole path equals it.
    Exact(String),
    /// `*` followed by a literal: the path ends with it (`*` crosses `/`).
    Suffix(String),
    /// Tcl `string match` over the whole path, or the substring regex of a pattern with `/`.
    Glob(Glob),
}

/// A compiled ignore list.
#[derive(Debug, Clone)]
pub struct Ignores {
    patterns: Vec<Pattern>,
}

impl Ignores {
    /// `None`: the default list.
    pub fn new(list: Option<&[String]>) -> Ignores {
        let owned: Vec<String> = match list {
            Some(l) => l.to_vec(),
            None => DEFAULT.iter().map(|s| s.to_string()).collect(),
        };
        Ignores {
            patterns: owned.iter().filter_map(|p| compile(p)).collect(),
        }
    }

    /// Whether the relative path (with `/` separators) is ignored.
    pub fn is_ignored(&self, rel: &str, is_dir: bool) -> bool {
        self.why(rel, is_dir).is_some()
    }

    /// Why the relative path is left out of the upload, if it is.
    pub fn why(&self, rel: &str, is_dir: bool) -> Option<Why<'_>> {
        // Ours at any depth: a sub-project's state dir (its credentials) is never uploaded.
        if rel.split('/').any(|part| ALWAYS.contains(&part)) {
            return Some(Why::Ours);
        }
        let name = rel.rsplit('/').next().unwrap_or(rel);
        if name.starts_with("..") {
            return Some(Why::DotDot);
        }
        self.patterns
            .iter()
            .find(|p| {
                if p.dir_only && !is_dir {
                    return false;
                }
                match &p.kind {
                    Kind::Exact(l) => rel == l,
                    Kind::Suffix(l) => rel.ends_with(l.as_str()),
                    Kind::Glob(g) => g.matches(rel),
                }
            })
            .map(|p| Why::Pattern(&p.raw))
    }
}

/// Why a path is not part of the upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why<'a> {
    /// Our own state directory (`.stackato-local/`): never part of the app.
    Ours,
    /// A name starting with `..`, which the client skipped.
    DotDot,
    /// This pattern of `ignores:` (or of the default list), as written.
    Pattern(&'a str),
}

fn compile(raw: &str) -> Option<Pattern> {
    let raw = raw.trim();
    if raw.is_empty() {
        return None;
    }
    let (p, dir_only) = match raw.strip_suffix('/') {
        Some(p) => (p, true),
        None => (raw, false),
    };
    if p.is_empty() {
        return None;
    }
    let kind = if p.contains('/') {
        let (anchored, body) = match p.strip_prefix('/') {
            Some(b) => (true, b),
            None => (false, p),
        };
        Kind::Glob(Glob::substring(body, anchored))
    } else {
        let special = |c: char| matches!(c, '*' | '?' | '[' | '\\');
        match p.strip_prefix('*') {
            Some(rest) if !rest.contains(special) => Kind::Suffix(rest.to_string()),
            _ if !p.contains(special) => Kind::Exact(p.to_string()),
            _ => Kind::Glob(Glob::whole(p)),
        }
    };
    Some(Pattern {
        raw: raw.to_string(),
        dir_only,
        kind,
    })
}

/// One file that would be pushed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FileEntry {
    pub rel: String,
    pub size: u64,
    /// Modification time in nanoseconds since the epoch.
    pub mtime: i128,
}

/// What a push would upload from an app directory, and what it would leave out and why
/// (`config --upload-files`).
#[derive(Debug, Clone, Default)]
pub(crate) struct Listing {
    /// The files of the upload, sorted by path.
    pub files: Vec<FileEntry>,
    /// Its directories (entered, not ignored), sorted by path.
    pub dirs: Vec<String>,
    /// Links whose target is inside the app (files among them are in `files` too, as the
    /// client uploaded what they point to; links to directories are not entered).
    pub links: Vec<InsideLink>,
    /// What `ignores:` (or the default list) dropped: an ignored directory is one entry (the
    /// client did not enter it).
    pub dropped: Vec<Dropped>,
    /// Links whose target is outside the app directory: the client refused to push them
    /// unless given `--copy-unsafe-links`.
    pub unsafe_links: Vec<UnsafeLink>,
    /// Entries that are not uploaded for what they are (FIFOs, sockets, devices, broken or
    /// directory links, unreadable directories).
    pub skipped: Vec<Skipped>,
    /// The walk stopped at its limit of directories: the lists are incomplete.
    pub truncated: bool,
}

/// A path `ignores:` dropped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Dropped {
    pub rel: String,
    pub is_dir: bool,
    /// The pattern that dropped it, as written (`..*` for the names the client always skipped).
    pub pattern: String,
}

/// A symbolic link pointing inside the app directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InsideLink {
    pub rel: String,
    /// Where it points, relative to the app root (resolved: no links, no `..`).
    pub target: String,
    pub is_dir: bool,
}

/// A symbolic link pointing outside the app directory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsafeLink {
    pub rel: String,
    /// The link's text, as `readlink` prints it.
    pub target: String,
}

/// An entry left out for its type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Skipped {
    pub rel: String,
    pub why: &'static str,
}

/// How many directories a walk reads at most.
pub(crate) const MAX_DIRS: usize = 200_000;

/// Every file under `root` that is not ignored, sorted by path. Symlinks are followed when
/// they point inside the app; directories are not entered when ignored.
#[cfg(test)]
pub(crate) fn walk(root: &Path, ignores: &Ignores) -> Vec<FileEntry> {
    scan(root, ignores, false).files
}

/// The same walk as [`walk`], also recording what it left out and why.
pub(crate) fn listing(root: &Path, ignores: &Ignores) -> Listing {
    let mut l = scan(root, ignores, true);
    l.dropped.sort_by(|a, b| a.rel.cmp(&b.rel));
    l.unsafe_links.sort_by(|a, b| a.rel.cmp(&b.rel));
    l.skipped.sort_by(|a, b| a.rel.cmp(&b.rel));
    l
}

/// The walk: `report` also fills everything of the [`Listing`] but its files.
fn scan(root: &Path, ignores: &Ignores, report: bool) -> Listing {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let root_canon = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    // Directories still to read, and how many are being read: the walk is shared by a few
    // threads, since stat calls dominate on big trees.
    let queue: Mutex<Vec<(PathBuf, String)>> =
        Mutex::new(vec![(root.to_path_buf(), String::new())]);
    let busy = AtomicUsize::new(0);
    let seen_dirs = AtomicUsize::new(0);
    let truncated = AtomicBool::new(false);
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(1, 4);
    let walker = Walker {
        root_canon: &root_canon,
        ignores,
        report,
    };
    let parts: Vec<Listing> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Listing::default();
                    loop {
                        let next = {
                            let mut q = queue.lock().unwrap_or_else(|e| e.into_inner());
                            let n = q.pop();
                            if n.is_some() {
                                busy.fetch_add(1, Ordering::SeqCst);
                            }
                            n
                        };
                        let Some((dir, prefix)) = next else {
                            if busy.load(Ordering::SeqCst) == 0 {
                                break;
                            }
                            std::thread::yield_now();
                            continue;
                        };
                        if seen_dirs.fetch_add(1, Ordering::Relaxed) < MAX_DIRS {
                            let found = walker.read_one(&dir, &prefix, &mut mine);
                            if !found.is_empty() {
                                queue
                                    .lock()
                                    .unwrap_or_else(|e| e.into_inner())
                                    .extend(found);
                            }
                        } else {
                            truncated.store(true, Ordering::Relaxed);
                        }
                        busy.fetch_sub(1, Ordering::SeqCst);
                    }
                    mine
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let mut out = Listing {
        truncated: truncated.load(Ordering::Relaxed),
        ..Listing::default()
    };
    for p in parts {
        out.files.extend(p.files);
        out.dropped.extend(p.dropped);
        out.unsafe_links.extend(p.unsafe_links);
        out.skipped.extend(p.skipped);
        out.dirs.extend(p.dirs);
        out.links.extend(p.links);
    }
    out.links.sort_by(|a, b| a.rel.cmp(&b.rel));
    out.files.sort_by(|a, b| a.rel.cmp(&b.rel));
    out.dirs.sort();
    out
}

/// What every thread of a walk shares.
struct Walker<'a> {
    root_canon: &'a Path,
    ignores: &'a Ignores,
    report: bool,
}

impl Walker<'_> {
    /// Read one directory: its files (and with `report`, what it leaves out) go to `out`,
    /// its sub-directories are returned.
    fn read_one(&self, dir: &Path, prefix: &str, out: &mut Listing) -> Vec<(PathBuf, String)> {
        let mut dirs = Vec::new();
        let rd = match std::fs::read_dir(dir) {
            Ok(rd) => rd,
            Err(_) => {
                if self.report {
                    out.skipped.push(Skipped {
                        rel: prefix.to_string(),
                        why: "directory that cannot be read",
                    });
                }
                return dirs;
            }
        };
        for e in rd.filter_map(Result::ok) {
            let name = e.file_name().to_string_lossy().into_owned();
            let rel = if prefix.is_empty() {
                name
            } else {
                format!("{prefix}/{name}")
            };
            if e.file_name().to_str().is_none() {
                // Paths are handled as text from here on: such a name cannot be copied
                // faithfully, so it is left out and said so.
                if self.report {
                    out.skipped.push(Skipped {
                        rel,
                        why: "name that is not valid UTF-8",
                    });
                }
                continue;
            }
            let is_link = e.file_type().map(|t| t.is_symlink()).unwrap_or(false);
            // fstatat on the open directory is cheaper than a stat of the whole path.
            let md = if is_link {
                std::fs::metadata(e.path())
            } else {
                e.metadata()
            };
            let is_dir = md.as_ref().is_ok_and(|m| m.is_dir());
            if let Some(why) = self.ignores.why(&rel, is_dir) {
                if self.report {
                    let pattern = match why {
                        Why::Ours => continue,
                        Why::DotDot => "..*".to_string(),
                        Why::Pattern(p) => p.to_string(),
                    };
                    out.dropped.push(Dropped {
                        rel,
                        is_dir,
                        pattern,
                    });
                }
                continue;
            }
            let Ok(md) = md else {
                if self.report {
                    out.skipped.push(Skipped {
                        rel,
                        why: if is_link {
                            "broken symbolic link"
                        } else {
                            "entry that cannot be read"
                        },
                    });
                }
                continue;
            };
            if is_link {
                let canon = e.path().canonicalize().ok();
                let inside = canon
                    .as_ref()
                    .is_some_and(|c| c.starts_with(self.root_canon));
                if !inside {
                    // Outside links abort a real push.
                    if self.report {
                        let target = std::fs::read_link(e.path())
                            .map(|t| t.display().to_string())
                            .unwrap_or_default();
                        out.unsafe_links.push(UnsafeLink { rel, target });
                    }
                    continue;
                }
                if let Some(target) = canon
                    .as_ref()
                    .and_then(|c| c.strip_prefix(self.root_canon).ok())
                    .and_then(|t| t.to_str())
                {
                    out.links.push(InsideLink {
                        rel: rel.clone(),
                        target: target.to_string(),
                        is_dir: md.is_dir(),
                    });
                }
                if md.is_dir() {
                    // Directory links could loop: not entered.
                    if self.report {
                        out.skipped.push(Skipped {
                            rel,
                            why: "symbolic link to a directory: not entered",
                        });
                    }
                    continue;
                }
            }
            if md.is_dir() {
                out.dirs.push(rel.clone());
                dirs.push((e.path(), rel));
            } else if md.is_file() {
                let mtime = md
                    .modified()
                    .ok()
                    .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_nanos() as i128);
                out.files.push(FileEntry {
                    rel,
                    size: md.len(),
                    mtime,
                });
            } else if self.report {
                out.skipped.push(Skipped {
                    rel,
                    why: special_kind(&md.file_type()),
                });
            }
        }
        dirs
    }
}

/// What a special file is, for the listing.
fn special_kind(t: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if t.is_fifo() {
        "FIFO (named pipe)"
    } else if t.is_socket() {
        "socket"
    } else if t.is_block_device() || t.is_char_device() {
        "device"
    } else {
        "special file"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ig(list: &[&str]) -> Ignores {
        Ignores::new(Some(
            &list.iter().map(|s| s.to_string()).collect::<Vec<_>>(),
        ))
    }

    #[test]
    fn globs_without_slash_match_the_whole_path() {
        let i = ig(&["*.log", "tmp", "*CVS/"]);
        assert!(i.is_ignored("a.log", false));
        assert!(i.is_ignored("x/y/a.log", false), "* crosses /");
        assert!(i.is_ignored("tmp", true));
        assert!(!i.is_ignored("src/tmp", true), "only at the top");
        assert!(i.is_ignored("a/b/CVS", true));
        assert!(!i.is_ignored("a/b/CVS", false), "dir-only");
    }

    #[test]
    fn slash_patterns_are_unanchored_substrings() {
        let i = ig(&["doc/*.html", "/build/out"]);
        assert!(i.is_ignored("doc/a.html", false));
        assert!(i.is_ignored("x/doc/a.html.bak", false));
        assert!(
            !i.is_ignored("doc/sub/a.html", false),
            "* stays in a segment"
        );
        assert!(i.is_ignored("build/out", true));
        assert!(!i.is_ignored("x/build/out", true), "leading / anchors");
    }

    #[test]
    fn defaults() {
        let i = Ignores::new(None);
        assert!(i.is_ignored(".git", true));
        assert!(
            !i.is_ignored("vendor/x/.git", true),
            "nested .git is uploaded"
        );
        assert!(i.is_ignored("server.log", false));
        assert!(i.is_ignored("a/b~", false));
        assert!(
            i.is_ignored(".stackato-local", true),
            "our state dir, always"
        );
        assert!(!i.is_ignored("app.py", false));
        let none = ig(&[]);
        assert!(
            !none.is_ignored(".git", true),
            "ignores: [] ignores nothing"
        );
        assert!(none.is_ignored(".stackato-local", true));
    }

    #[test]
    fn why_names_the_pattern_as_written() {
        let i = ig(&["  *.log ", "tmp/"]);
        assert_eq!(i.why("a/x.log", false), Some(Why::Pattern("*.log")));
        assert_eq!(i.why("tmp", true), Some(Why::Pattern("tmp/")));
        assert_eq!(i.why("tmp", false), None);
        assert_eq!(i.why("..x", false), Some(Why::DotDot));
        assert_eq!(i.why(".stackato-local/db", false), Some(Why::Ours));
    }

    #[test]
    fn listing_has_the_files_of_walk_and_what_was_left_out() {
        let d = tempfile::tempdir().unwrap();
        for rel in ["a.py", "x.log", "tmp/t", ".stackato-local/s"] {
            let p = d.path().join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, "x").unwrap();
        }
        let i = ig(&["*.log", "tmp/"]);
        let l = listing(d.path(), &i);
        assert_eq!(l.files, walk(d.path(), &i));
        let rels: Vec<&str> = l.files.iter().map(|f| f.rel.as_str()).collect();
        assert_eq!(rels, ["a.py"]);
        let dropped: Vec<(&str, &str)> = l
            .dropped
            .iter()
            .map(|d| (d.rel.as_str(), d.pattern.as_str()))
            .collect();
        assert_eq!(dropped, [("tmp", "tmp/"), ("x.log", "*.log")]);
        assert!(l.unsafe_links.is_empty() && l.skipped.is_empty() && !l.truncated);
    }

    #[test]
    fn optional_char() {
        let i = ig(&["a?b/c"]);
        assert!(i.is_ignored("ab/c", false));
        assert!(i.is_ignored("axb/c", false));
    }

    #[test]
    fn tricky_patterns() {
        let i = ig(&[
            "log/*/",
            "/x?/y",
            "[ab]*.tmp",
            "\\[q\\]",
            "  spaced  ",
            "/",
            "?",
        ]);
        assert!(
            i.is_ignored("log/2020", true),
            "trailing / with a slash pattern"
        );
        assert!(!i.is_ignored("log/2020", false), "dir-only");
        assert!(i.is_ignored("app/log/", true), "* may match nothing");
        assert!(i.is_ignored("x/y", false), "leading / anchors, ? optional");
        assert!(i.is_ignored("xz/y", false));
        assert!(!i.is_ignored("a/xz/y", false));
        assert!(
            i.is_ignored("b/c.tmp", false),
            "* crosses / without a slash in the pattern"
        );
        assert!(!i.is_ignored("c.tmp", false));
        assert!(i.is_ignored("[q]", false), "escaped brackets are literal");
        assert!(!i.is_ignored("qq", false));
        assert!(i.is_ignored("spaced", false), "patterns are trimmed");
        assert!(
            !i.is_ignored("ab", false),
            "/ alone is ignored as a pattern"
        );
        assert!(
            i.is_ignored("z", false),
            "? is one character over the whole path"
        );
    }

    #[test]
    fn pathological_slash_pattern() {
        let i = ig(&["a*a*a*a*a*a*a*a*a*a*a*a*b/x"]);
        let name = "a".repeat(40);
        assert!(!i.is_ignored(&name, false));
        assert!(i.is_ignored(&format!("{name}b/x"), false));
        assert!(!i.is_ignored(&format!("{name}/b/x"), false));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(3000))]
        #[test]
        fn agrees_with_the_definition(
            p in "[ab/*?\\[\\]\\\\ -]{0,10}",
            rel in "[ab/.\\[\\]*?-]{0,10}",
            is_dir: bool,
        ) {
            let want = crate::stage::glob::oracle::ignored(&p, &rel, is_dir);
            proptest::prop_assert_eq!(ig(&[&p]).is_ignored(&rel, is_dir), want);
        }
    }
}
