//! Linear-time matching of `ignores:` globs. A pattern compiles to a row of positions (one per
//! token), and a name is read once, left to right, while a bit set holds every position the
//! name so far can have reached (a bit-parallel NFA simulation): O(name × pattern / 64) with no
//! backtracking, so no pattern can make a walk slower than reading its names.
//!
//! Two syntaxes, as the client has them (spec §5.1):
//! - [`Glob::whole`]: Tcl `string match` over the whole path: `*` any run (`/` included), `?`
//!   one character, `[a-z…]` a set (a reversed range matches nothing; an unterminated `[` is a
//!   literal), `\x` the literal `x`.
//! - [`Glob::substring`]: the client's regex for patterns with `/`: `*` any run without `/`, `?`
//!   one optional character (any), everything else literal; a match may end anywhere, and starts
//!   anywhere unless anchored.

/// What one pattern position consumes.
#[derive(Debug, Clone)]
enum Tok {
    Lit(char),
    /// Exactly one character, any.
    Any,
    /// Zero or one character, any.
    Opt,
    /// One character within one of the inclusive ranges.
    Class(Vec<(char, char)>),
    /// Any run of characters; `cross`: `/` included.
    Star {
        cross: bool,
    },
}

/// A compiled glob.
#[derive(Debug, Clone)]
pub struct Glob {
    /// Number of tokens; states are `0..=len`, state `len` accepts.
    len: usize,
    /// 64-bit words per state set.
    words: usize,
    /// Whether a match must start at the first character.
    anchored: bool,
    /// Whether a match must end at the last character.
    whole: bool,
    /// For each ASCII character: the advance mask, then the stay mask (`words` each).
    ascii: Vec<u64>,
    /// Positions that advance on any character (`?` of either syntax).
    any: Vec<u64>,
    /// Positions that stay on any character other than `/` (every star).
    stars: Vec<u64>,
    /// Advance masks of non-ASCII literal characters, sorted by character.
    wide: Vec<(char, Vec<u64>)>,
    /// Class positions and their ranges, for non-ASCII characters.
    classes: Vec<(usize, Vec<(char, char)>)>,
    /// Nullable positions (stars, optional characters), the first and the last of each run of
    /// them: the ε-closure of a state set in a few word operations (see [`Glob::close`]).
    eps: Vec<u64>,
    eps_first: Vec<u64>,
    eps_last: Vec<u64>,
}

impl Glob {
    /// Tcl `string match` of `pattern` against a whole path.
    pub fn whole(pattern: &str) -> Glob {
        Glob::build(tcl_tokens(pattern), true, true)
    }

    /// The client's regex for a pattern with `/`: a substring match, starting at the first
    /// character when `anchored`.
    pub fn substring(pattern: &str, anchored: bool) -> Glob {
        let toks = pattern
            .chars()
            .map(|c| match c {
                '*' => Tok::Star { cross: false },
                '?' => Tok::Opt,
                c => Tok::Lit(c),
            })
            .collect();
        Glob::build(toks, anchored, false)
    }

    fn build(toks: Vec<Tok>, anchored: bool, whole: bool) -> Glob {
        let len = toks.len();
        let words = len / 64 + 1;
        let zero = || vec![0u64; words];
        let set = |m: &mut [u64], j: usize| m[j / 64] |= 1 << (j % 64);
        let (mut ascii, mut any, mut stars, mut eps) =
            (vec![0u64; 128 * 2 * words], zero(), zero(), zero());
        let mut wide: Vec<(char, Vec<u64>)> = Vec::new();
        let mut classes = Vec::new();
        for (j, t) in toks.iter().enumerate() {
            let advance = |ascii: &mut [u64], b: usize| set(&mut ascii[b * 2 * words..], j);
            let stay = |ascii: &mut [u64], b: usize| set(&mut ascii[(b * 2 + 1) * words..], j);
            match t {
                Tok::Lit(c) if c.is_ascii() => advance(&mut ascii, *c as usize),
                Tok::Lit(c) => match wide.iter_mut().find(|(w, _)| w == c) {
                    Some((_, m)) => set(m, j),
                    None => {
                        let mut m = zero();
                        set(&mut m, j);
                        wide.push((*c, m));
                    }
                },
                Tok::Any | Tok::Opt => {
                    set(&mut any, j);
                    (0..128).for_each(|b| advance(&mut ascii, b));
                    if matches!(t, Tok::Opt) {
                        set(&mut eps, j);
                    }
                }
                Tok::Class(ranges) => {
                    for b in 0..128u8 {
                        if in_class(ranges, b as char) {
                            advance(&mut ascii, b as usize);
                        }
                    }
                    if ranges.iter().any(|&(_, hi)| !hi.is_ascii()) {
                        classes.push((j, ranges.clone()));
                    }
                }
                Tok::Star { cross } => {
                    set(&mut stars, j);
                    set(&mut eps, j);
                    for b in 0..128 {
                        if *cross || b != b'/' as usize {
                            stay(&mut ascii, b);
                        }
                    }
                }
            }
        }
        wide.sort_by_key(|(c, _)| *c);
        let bit = |m: &[u64], j: usize| m[j / 64] >> (j % 64) & 1 == 1;
        let (mut eps_first, mut eps_last) = (zero(), zero());
        for j in 0..len {
            if bit(&eps, j) && (j == 0 || !bit(&eps, j - 1)) {
                set(&mut eps_first, j);
            }
            if bit(&eps, j) && (j + 1 == len || !bit(&eps, j + 1)) {
                set(&mut eps_last, j);
            }
        }
        Glob {
            len,
            words,
            anchored,
            whole,
            ascii,
            any,
            stars,
            wide,
            classes,
            eps,
            eps_first,
            eps_last,
        }
    }

    /// Whether `name` matches.
    pub fn matches(&self, name: &str) -> bool {
        let w = self.words;
        let mut d = vec![0u64; w];
        // Masks of the current non-ASCII character (allocated at the first one).
        let mut scratch = Vec::new();
        d[0] = 1;
        self.close(&mut d);
        if !self.whole && self.accepts(&d) {
            return true;
        }
        for c in name.chars() {
            let (advance, stay) = if c.is_ascii() {
                let at = c as usize * 2 * w;
                self.ascii[at..at + 2 * w].split_at(w)
            } else {
                self.wide_masks(c, &mut scratch);
                scratch.split_at(w)
            };
            // Every state moves at once: an advancing position passes its bit one up (the carry
            // crosses words), a star keeps its bit.
            let mut carry = 0;
            for (di, (&adv, &st)) in d.iter_mut().zip(advance.iter().zip(stay)) {
                let a = *di & adv;
                *di = a << 1 | carry | (*di & st);
                carry = a >> 63;
            }
            if !self.anchored {
                d[0] |= 1;
            }
            self.close(&mut d);
            if !self.whole && self.accepts(&d) {
                return true;
            }
            if self.anchored && d.iter().all(|&x| x == 0) {
                return false;
            }
        }
        self.whole && self.accepts(&d)
    }

    fn accepts(&self, d: &[u64]) -> bool {
        d[self.len / 64] >> (self.len % 64) & 1 == 1
    }

    /// The advance and stay masks of a non-ASCII character (never `/`), into `out`.
    fn wide_masks(&self, c: char, out: &mut Vec<u64>) {
        let w = self.words;
        out.resize(2 * w, 0);
        let (advance, stay) = out.split_at_mut(w);
        advance.copy_from_slice(&self.any);
        stay.copy_from_slice(&self.stars);
        if let Ok(k) = self.wide.binary_search_by_key(&c, |(w, _)| *w) {
            advance
                .iter_mut()
                .zip(&self.wide[k].1)
                .for_each(|(a, m)| *a |= m);
        }
        for (j, ranges) in &self.classes {
            if in_class(ranges, c) {
                advance[j / 64] |= 1 << (j % 64);
            }
        }
    }

    /// Adds to `d` every state reachable through nullable positions (a star or an optional
    /// character may match nothing). Within each run `a..=b` of nullable positions, the lowest
    /// state `j` of `d` in it reaches `j+1..=b+1`. With `X = d ∩ run` and `T = X ∪ {b}`,
    /// `T − {a}` borrows from `a` up to `j` and stops there (`b` is set), so `(T − {a}) ⊕ T` is
    /// `a..=j`; its complement within the run is `j+1..=b`, and `X` adds `j`. Shifting that set
    /// up by one gives `j+1..=b+1`. Runs are separated by a non-nullable position, so the
    /// borrows of different runs never meet.
    fn close(&self, d: &mut [u64]) {
        let mut borrow = false;
        let mut carry = 0;
        let runs = self.eps.iter().zip(&self.eps_first).zip(&self.eps_last);
        for (di, ((&eps, &first), &last)) in d.iter_mut().zip(runs) {
            let x = *di & eps;
            let t = x | last;
            let (s1, b1) = t.overflowing_sub(first);
            let (s, b2) = s1.overflowing_sub(borrow as u64);
            borrow = b1 || b2;
            let g = x | (eps & !(s ^ t));
            *di |= g << 1 | carry;
            carry = g >> 63;
        }
    }
}

/// Tcl `string match` tokens: `*`, `?`, a terminated `[…]`, `\x`; anything else is literal.
fn tcl_tokens(p: &str) -> Vec<Tok> {
    let p: Vec<char> = p.chars().collect();
    let mut toks = Vec::new();
    let mut i = 0;
    while i < p.len() {
        match p[i] {
            '*' => toks.push(Tok::Star { cross: true }),
            '?' => toks.push(Tok::Any),
            '[' => match class(&p, i) {
                Some((ranges, next)) => {
                    toks.push(Tok::Class(ranges));
                    i = next;
                    continue;
                }
                None => toks.push(Tok::Lit('[')),
            },
            '\\' if i + 1 < p.len() => {
                toks.push(Tok::Lit(p[i + 1]));
                i += 2;
                continue;
            }
            c => toks.push(Tok::Lit(c)),
        }
        i += 1;
    }
    toks
}

/// The `[…]` set at `p[at]` and where the pattern continues; `None` when no `]` ends it.
/// `a-z` is a range when `z` is not the closing `]`; a lone character is a range of one.
fn class(p: &[char], at: usize) -> Option<(Vec<(char, char)>, usize)> {
    let mut i = at + 1;
    let mut ranges = Vec::new();
    while i < p.len() && p[i] != ']' {
        if i + 2 < p.len() && p[i + 1] == '-' && p[i + 2] != ']' {
            ranges.push((p[i], p[i + 2]));
            i += 3;
        } else {
            ranges.push((p[i], p[i]));
            i += 1;
        }
    }
    (i < p.len()).then_some((ranges, i + 1))
}

fn in_class(ranges: &[(char, char)], c: char) -> bool {
    ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi)
}

#[cfg(test)]
#[path = "glob_oracle.rs"]
pub(crate) mod oracle;

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn whole_path_tcl() {
        let g = Glob::whole;
        assert!(g("*.log").matches("x/y/a.log"), "* crosses /");
        assert!(g("a?c").matches("abc"));
        assert!(!g("a?c").matches("ac"), "? is exactly one");
        assert!(g("a?c").matches("a/c"), "? matches /");
        assert!(g("[a-c]x").matches("bx"));
        assert!(!g("[a-c]x").matches("dx"));
        assert!(
            !g("[c-a]x").matches("bx"),
            "a reversed range matches nothing"
        );
        assert!(g("[ab-]x").matches("-x"), "a trailing - is literal");
        assert!(g("[!a]").matches("!"), "no negation: ! is a member");
        assert!(
            !g("[]]").matches("]"),
            "[] is an empty set, then a literal ]"
        );
        assert!(!g("[]]").matches("x]"));
        assert!(!g("[]").matches(""));
        assert!(g("a[b").matches("a[b"), "an unterminated [ is literal");
        assert!(g("\\*").matches("*"));
        assert!(!g("\\*").matches("x"));
        assert!(g("a\\").matches("a\\"), "a trailing backslash is literal");
        assert!(g("**").matches("a/b"));
        assert!(g("*").matches(""));
        assert!(!g("tmp").matches("src/tmp"), "anchored at both ends");
        assert!(g("é*ü").matches("éaü"));
        assert!(g("[à-ÿ]").matches("é"));
        assert!(!g("[à-ÿ]").matches("e"));
    }

    #[test]
    fn substring_regex() {
        let s = |p: &str| Glob::substring(p, false);
        assert!(s("doc/*.html").matches("x/doc/a.html.bak"));
        assert!(
            !s("doc/*.html").matches("doc/sub/a.html"),
            "* stays in a segment"
        );
        assert!(!s("a/**/b").matches("a/x/y/b"), "no ** either");
        assert!(s("a/**/b").matches("a/x/b"));
        assert!(s("a?b/c").matches("ab/c"));
        assert!(s("a?b/c").matches("a/b/c"), "? is any optional character");
        assert!(!s("a?b/c").matches("axyb/c"));
        assert!(s("a[b]/c").matches("a[b]/c"), "brackets are literal");
        assert!(!s("a[b]/c").matches("ab/c"));
        assert!(s("a\\b/").matches("xa\\b/"), "backslash is literal");
        assert!(Glob::substring("build/out", true).matches("build/out/x"));
        assert!(!Glob::substring("build/out", true).matches("x/build/out"));
        assert!(
            Glob::substring("", true).matches(""),
            "an empty pattern matches"
        );
    }

    #[test]
    fn long_patterns_cross_words() {
        let name = "a".repeat(200) + "/x";
        let p = "a*".repeat(100) + "/x";
        assert!(Glob::substring(&p, false).matches(&name));
        assert!(!Glob::substring(&(p.clone() + "y"), false).matches(&name));
        assert!(Glob::whole(&p).matches(&name));
        assert!(!Glob::whole(&("?".repeat(203))).matches(&name));
        assert!(Glob::whole(&("?".repeat(202))).matches(&name));
        let opt = "?".repeat(150) + "/x";
        assert!(
            !Glob::substring(&opt, true).matches(&name),
            "150 optional, 200 there"
        );
        assert!(Glob::substring(&opt, true).matches(&name[60..]));
        assert!(Glob::substring(&opt, true).matches("/x"));
    }

    #[test]
    fn word_boundaries() {
        for k in 60..70 {
            // Position k-1 is the last of a run of nullable positions.
            assert!(Glob::whole(&("*".repeat(k) + "x")).matches("x"), "{k}");
            let p = "?".repeat(k - 1) + "*x";
            assert!(Glob::substring(&p, true).matches("x"), "{k}");
            assert!(!Glob::whole(&p).matches(&"b".repeat(k - 2)), "{k}");
            assert!(Glob::whole(&p).matches(&("b".repeat(k + 3) + "x")), "{k}");
            let lits = "a".repeat(k) + "*b";
            assert!(Glob::whole(&lits).matches(&("a".repeat(k) + "b")), "{k}");
            assert!(
                !Glob::whole(&lits).matches(&("a".repeat(k - 1) + "b")),
                "{k}"
            );
            assert!(Glob::substring(&lits, false).matches(&("xa".to_string() + &lits[..k] + "b")));
        }
    }

    #[test]
    fn pathological_patterns_are_quick() {
        let name = "a".repeat(10_000);
        let p = "a*".repeat(100) + "b/x";
        assert!(!Glob::substring(&p, false).matches(&name));
        assert!(!Glob::whole(&p).matches(&name));
    }

    fn alphabet() -> impl Strategy<Value = String> {
        proptest::collection::vec(
            prop_oneof![
                Just('a'),
                Just('b'),
                Just('/'),
                Just('*'),
                Just('?'),
                Just('['),
                Just(']'),
                Just('-'),
                Just('\\'),
                Just('é'),
            ],
            0..12,
        )
        .prop_map(|v| v.into_iter().collect())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]
        /// Patterns longer than a word, with runs of stars and optional characters across
        /// word boundaries.
        #[test]
        fn agrees_beyond_one_word(p in "[ab/*?]{60,150}", s in "[ab/]{0,90}", anchored: bool) {
            prop_assert_eq!(Glob::whole(&p).matches(&s), oracle::whole(&p, &s));
            prop_assert_eq!(
                Glob::substring(&p, anchored).matches(&s),
                oracle::substring(&p, anchored, &s)
            );
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4000))]
        #[test]
        fn agrees_with_the_backtracking_definition(p in alphabet(), s in alphabet(), anchored: bool) {
            prop_assert_eq!(Glob::whole(&p).matches(&s), oracle::whole(&p, &s));
            prop_assert_eq!(
                Glob::substring(&p, anchored).matches(&s),
                oracle::substring(&p, anchored, &s)
            );
        }
    }
}
