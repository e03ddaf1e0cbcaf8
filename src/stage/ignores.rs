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
        self.patterns
            .iter()
            .any(|p| (!p.dir_only || is_dir) && p.matches(rel))
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
        Kind::Glob(p.chars().collect())
    };
    Some(Pattern { dir_only, kind })
}

impl Pattern {
    fn matches(&self, rel: &str) -> bool {
        let s: Vec<char> = rel.chars().collect();
        match &self.kind {
            Kind::Glob(g) => glob(g, &s),
            Kind::Segmented { anchored, toks } => {
                if *anchored {
                    seg_prefix(toks, &s)
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
    let mut out = Vec::new();
    let mut stack: Vec<(PathBuf, String)> = vec![(root.to_path_buf(), String::new())];
    let root_canon = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    let mut seen_dirs = 0usize;
    while let Some((dir, prefix)) = stack.pop() {
        seen_dirs += 1;
        if seen_dirs > 200_000 {
            break;
        }
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.filter_map(Result::ok) {
            let name = e.file_name().to_string_lossy().into_owned();
            let rel = if prefix.is_empty() {
                name.clone()
            } else {
                format!("{prefix}/{name}")
            };
            let path = e.path();
            let Ok(md) = std::fs::metadata(&path) else {
                continue;
            };
            let is_link = e.file_type().map(|t| t.is_symlink()).unwrap_or(false);
            if is_link {
                let inside = path
                    .canonicalize()
                    .map(|c| c.starts_with(&root_canon))
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
                stack.push((path, rel));
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
    }
    out.sort_by(|a, b| a.rel.cmp(&b.rel));
    out
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
