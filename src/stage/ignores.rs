//! The files that would be pushed, by the client's `ignores:` rules (not git's): a trailing
//! `/` matches directories only; a pattern without `/` is a Tcl glob over the whole relative
//! path (`*` crosses `/`, so `*.log` matches at any depth but `tmp` only at the top); a pattern
//! with `/` matches as an unanchored substring where `*` stays inside one path segment, `?` is
//! an optional character and a leading `/` anchors at the start. An ignored directory is not
//! entered. `ignores:` replaces the default list.

use std::path::{Path, PathBuf};

/// The client 3.2.4's default list, used when `ignores:` is absent.
pub const DEFAULT: &[&str] = &[
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
pub const ALWAYS: &[&str] = &[crate::state::DIR_NAME];

#[derive(Debug, Clone)]
struct Pattern {
    dir_only: bool,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    /// A glob without wildcards: the whole path equals it.
    Exact(String),
    /// `*` followed by a literal: the path ends with it (`*` crosses `/`).
    Suffix(String),
    /// Tcl `string match` over the whole path.
    Glob(Vec<char>),
    /// Substring match (anchored at the start when the pattern began with `/`).
    Segmented { anchored: bool, toks: Vec<Tok> },
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Lit(char),
    /// `*`: any run of characters other than `/`.
    Star,
    /// `?`: one optional character.
    Opt,
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
        let first = rel.split('/').next().unwrap_or(rel);
        if ALWAYS.contains(&first) {
            return true;
        }
        let name = rel.rsplit('/').next().unwrap_or(rel);
        if name.starts_with("..") {
            return true;
        }
        let mut chars: Option<Vec<char>> = None;
        self.patterns.iter().any(|p| {
            if p.dir_only && !is_dir {
                return false;
            }
            match &p.kind {
                Kind::Exact(l) => rel == l,
                Kind::Suffix(l) => rel.ends_with(l.as_str()),
                _ => p.matches(chars.get_or_insert_with(|| rel.chars().collect())),
            }
        })
    }
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
        Kind::Segmented {
            anchored,
            toks: body
                .chars()
                .map(|c| match c {
                    '*' => Tok::Star,
                    '?' => Tok::Opt,
                    c => Tok::Lit(c),
                })
                .collect(),
        }
    } else {
        let special = |c: char| matches!(c, '*' | '?' | '[' | '\\');
        match p.strip_prefix('*') {
            Some(rest) if !rest.contains(special) => Kind::Suffix(rest.to_string()),
            _ if !p.contains(special) => Kind::Exact(p.to_string()),
            _ => Kind::Glob(p.chars().collect()),
        }
    };
    Some(Pattern { dir_only, kind })
}

impl Pattern {
    fn matches(&self, s: &[char]) -> bool {
        match &self.kind {
            Kind::Exact(l) => s.iter().copied().eq(l.chars()),
            Kind::Suffix(l) => {
                let l: Vec<char> = l.chars().collect();
                s.ends_with(&l)
            }
            Kind::Glob(g) => glob(g, s),
            Kind::Segmented { anchored, toks } => {
                if *anchored {
                    seg_prefix(toks, s)
                } else {
                    (0..=s.len()).any(|i| seg_prefix(toks, &s[i..]))
                }
            }
        }
    }
}

/// Tcl `string match`: `*` any run (including `/`), `?` one char, `[a-z]` a set, `\x` literal.
fn glob(p: &[char], s: &[char]) -> bool {
    let (mut pi, mut si) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while si < s.len() {
        if pi < p.len() {
            match p[pi] {
                '*' => {
                    star = Some((pi, si));
                    pi += 1;
                    continue;
                }
                '?' => {
                    pi += 1;
                    si += 1;
                    continue;
                }
                '[' => {
                    if let Some((ok, next)) = class(p, pi, s[si]) {
                        if ok {
                            pi = next;
                            si += 1;
                            continue;
                        }
                    } else if s[si] == '[' {
                        pi += 1;
                        si += 1;
                        continue;
                    }
                }
                '\\' if pi + 1 < p.len() => {
                    if p[pi + 1] == s[si] {
                        pi += 2;
                        si += 1;
                        continue;
                    }
                }
                c => {
                    if c == s[si] {
                        pi += 1;
                        si += 1;
                        continue;
                    }
                }
            }
        }
        match star {
            Some((sp, ss)) => {
                pi = sp + 1;
                si = ss + 1;
                star = Some((sp, ss + 1));
            }
            None => return false,
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// A `[…]` set at `p[pi]`: whether `c` is in it and where the pattern continues.
fn class(p: &[char], pi: usize, c: char) -> Option<(bool, usize)> {
    let mut i = pi + 1;
    let mut ok = false;
    while i < p.len() && p[i] != ']' {
        if i + 2 < p.len() && p[i + 1] == '-' && p[i + 2] != ']' {
            if p[i] <= c && c <= p[i + 2] {
                ok = true;
            }
            i += 3;
        } else {
            if p[i] == c {
                ok = true;
            }
            i += 1;
        }
    }
    (i < p.len()).then_some((ok, i + 1))
}

/// Whether `toks` match a prefix of `s` (`*` within a segment, `?` optional).
fn seg_prefix(toks: &[Tok], s: &[char]) -> bool {
    match toks.first() {
        None => true,
        Some(Tok::Lit(c)) => s.first() == Some(c) && seg_prefix(&toks[1..], &s[1..]),
        Some(Tok::Opt) => {
            seg_prefix(&toks[1..], s) || (!s.is_empty() && seg_prefix(&toks[1..], &s[1..]))
        }
        Some(Tok::Star) => {
            let mut i = 0;
            loop {
                if seg_prefix(&toks[1..], &s[i..]) {
                    return true;
                }
                if i >= s.len() || s[i] == '/' {
                    return false;
                }
                i += 1;
            }
        }
    }
}

/// One file that would be pushed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEntry {
    pub rel: String,
    pub size: u64,
    /// Modification time in nanoseconds since the epoch.
    pub mtime: i128,
}

/// Every file under `root` that is not ignored, sorted by path. Symlinks are followed when
/// they point inside the app; directories are not entered when ignored.
pub fn walk(root: &Path, ignores: &Ignores) -> Vec<FileEntry> {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let root_canon = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    // Directories still to read, and how many are being read: the walk is shared by a few
    // threads, since stat calls dominate on big trees.
    let queue: Mutex<Vec<(PathBuf, String)>> =
        Mutex::new(vec![(root.to_path_buf(), String::new())]);
    let busy = AtomicUsize::new(0);
    let seen_dirs = AtomicUsize::new(0);
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(1, 4);
    let mut out: Vec<FileEntry> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
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
                        if seen_dirs.fetch_add(1, Ordering::Relaxed) < 200_000 {
                            let found = read_one(&dir, &prefix, &root_canon, ignores, &mut mine);
                            if !found.is_empty() {
                                queue
                                    .lock()
                                    .unwrap_or_else(|e| e.into_inner())
                                    .extend(found);
                            }
                        }
                        busy.fetch_sub(1, Ordering::SeqCst);
                    }
                    mine
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    out.sort_by(|a, b| a.rel.cmp(&b.rel));
    out
}

/// Read one directory: its files go to `out`, its sub-directories are returned.
fn read_one(
    dir: &Path,
    prefix: &str,
    root_canon: &Path,
    ignores: &Ignores,
    out: &mut Vec<FileEntry>,
) -> Vec<(PathBuf, String)> {
    let mut dirs = Vec::new();
    let Ok(rd) = std::fs::read_dir(dir) else {
        return dirs;
    };
    for e in rd.filter_map(Result::ok) {
        let name = e.file_name().to_string_lossy().into_owned();
        let rel = if prefix.is_empty() {
            name
        } else {
            format!("{prefix}/{name}")
        };
        let is_link = e.file_type().map(|t| t.is_symlink()).unwrap_or(false);
        // fstatat on the open directory is cheaper than a stat of the whole path.
        let md = if is_link {
            std::fs::metadata(e.path())
        } else {
            e.metadata()
        };
        let Ok(md) = md else {
            continue;
        };
        if is_link {
            let inside = e
                .path()
                .canonicalize()
                .map(|c| c.starts_with(root_canon))
                .unwrap_or(false);
            if !inside || md.is_dir() {
                // Outside links abort a real push; directory links could loop.
                continue;
            }
        }
        if ignores.is_ignored(&rel, md.is_dir()) {
            continue;
        }
        if md.is_dir() {
            dirs.push((e.path(), rel));
        } else if md.is_file() {
            let mtime = md
                .modified()
                .ok()
                .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos() as i128);
            out.push(FileEntry {
                rel,
                size: md.len(),
                mtime,
            });
        }
    }
    dirs
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
    fn optional_char() {
        let i = ig(&["a?b/c"]);
        assert!(i.is_ignored("ab/c", false));
        assert!(i.is_ignored("axb/c", false));
    }
}
