//! The definition of `ignores:` matching, written the slow obvious way (memoised recursion over
//! pattern and name positions) as the oracle the fast matcher in `glob.rs` is checked against.
//! Compiled only into the unit tests and the `glob` fuzz target (fuzz/fuzz_targets/glob.rs),
//! never into the tool.

use std::collections::HashMap;

/// Tcl `string match` over the whole of `s`.
pub(crate) fn whole(p: &str, s: &str) -> bool {
    let p: Vec<char> = p.chars().collect();
    let s: Vec<char> = s.chars().collect();
    let mut memo = HashMap::new();
    tcl(&p, &s, 0, 0, &mut memo)
}

fn tcl(
    p: &[char],
    s: &[char],
    pi: usize,
    si: usize,
    memo: &mut HashMap<(usize, usize), bool>,
) -> bool {
    if let Some(&r) = memo.get(&(pi, si)) {
        return r;
    }
    let one = si < s.len();
    let r = if pi == p.len() {
        si == s.len()
    } else {
        // `[` opens a set only when a `]` follows somewhere.
        let close = p[pi..].iter().position(|&c| c == ']').map(|k| pi + k);
        match p[pi] {
            '*' => tcl(p, s, pi + 1, si, memo) || (one && tcl(p, s, pi, si + 1, memo)),
            '?' => one && tcl(p, s, pi + 1, si + 1, memo),
            '[' if close.is_some() => {
                let end = close.unwrap_or(pi);
                one && in_set(&p[pi + 1..end], s[si]) && tcl(p, s, end + 1, si + 1, memo)
            }
            '\\' if pi + 1 < p.len() => {
                one && s[si] == p[pi + 1] && tcl(p, s, pi + 2, si + 1, memo)
            }
            c => one && s[si] == c && tcl(p, s, pi + 1, si + 1, memo),
        }
    };
    memo.insert((pi, si), r);
    r
}

/// The members of a set: `x-y` is a range (none when `x > y`), other characters stand alone.
fn in_set(m: &[char], c: char) -> bool {
    let mut i = 0;
    while i < m.len() {
        if i + 2 < m.len() && m[i + 1] == '-' {
            if m[i] <= c && c <= m[i + 2] {
                return true;
            }
            i += 3;
        } else {
            if m[i] == c {
                return true;
            }
            i += 1;
        }
    }
    false
}

/// The client's regex for patterns with `/` (`*` → `[^/]*`, `?` → one optional character, the
/// rest literal), searched in `s`: from its start when `anchored`, else from anywhere; the match
/// may end anywhere.
pub(crate) fn substring(p: &str, anchored: bool, s: &str) -> bool {
    let p: Vec<char> = p.chars().collect();
    let s: Vec<char> = s.chars().collect();
    let mut memo = HashMap::new();
    let starts = if anchored { 0 } else { s.len() };
    (0..=starts).any(|i| prefix(&p, &s, 0, i, &mut memo))
}

fn prefix(
    p: &[char],
    s: &[char],
    pi: usize,
    si: usize,
    memo: &mut HashMap<(usize, usize), bool>,
) -> bool {
    if let Some(&r) = memo.get(&(pi, si)) {
        return r;
    }
    let one = si < s.len();
    let r = pi == p.len()
        || match p[pi] {
            '*' => {
                prefix(p, s, pi + 1, si, memo)
                    || (one && s[si] != '/' && prefix(p, s, pi, si + 1, memo))
            }
            '?' => prefix(p, s, pi + 1, si, memo) || (one && prefix(p, s, pi + 1, si + 1, memo)),
            c => one && s[si] == c && prefix(p, s, pi + 1, si + 1, memo),
        };
    memo.insert((pi, si), r);
    r
}

/// Whether the relative path `rel` is ignored by the single pattern `pattern` (spec §5.1): the
/// state directory always, names starting with `..` always; a trailing `/` for directories only;
/// a pattern with `/` is a substring regex (anchored by a leading `/`), else a whole-path glob.
pub(crate) fn ignored(pattern: &str, rel: &str, is_dir: bool) -> bool {
    let first = rel.split('/').next().unwrap_or(rel);
    let last = rel.rsplit('/').next().unwrap_or(rel);
    if first == ".stackato-local" || last.starts_with("..") {
        return true;
    }
    let p = pattern.trim();
    let (p, dir_only) = match p.strip_suffix('/') {
        Some(p) => (p, true),
        None => (p, false),
    };
    if p.is_empty() || (dir_only && !is_dir) {
        return false;
    }
    match (p.contains('/'), p.strip_prefix('/')) {
        (true, Some(body)) => substring(body, true, rel),
        (true, None) => substring(p, false, rel),
        (false, _) => whole(p, rel),
    }
}
