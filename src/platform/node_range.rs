//! npm's version ranges as written in package.json `engines.node` (`0.10.x`, `>=0.8`,
//! `^4.2.0`, `~0.10.0`, `4.x || 6.x`, `>= 0.8.0 < 0.11`, `0.8 - 0.10`), enough to tell whether
//! an installed Node satisfies what the app declares. Pre-release tags are ignored (an installed
//! interpreter has none).

/// A full version as a comparable triple.
type Triple = (u64, u64, u64);

/// One alternative of a range: every bound must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Set {
    /// Inclusive lower bound.
    low: Option<Triple>,
    /// Exclusive upper bound.
    high: Option<Triple>,
}

impl Set {
    fn at_least(&mut self, t: Triple) {
        self.low = Some(self.low.map_or(t, |l| l.max(t)));
    }
    fn below(&mut self, t: Triple) {
        self.high = Some(self.high.map_or(t, |h| h.min(t)));
    }
    fn holds(&self, v: Triple) -> bool {
        self.low.is_none_or(|l| v >= l) && self.high.is_none_or(|h| v < h)
    }
}

/// A parsed range: alternatives separated by `||`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Range(Vec<Set>);

/// A partial version: `1`, `1.2`, `1.2.3`, with `x`/`X`/`*` for a missing part.
#[derive(Debug, Clone, Copy)]
struct Partial {
    parts: [Option<u64>; 3],
}

impl Partial {
    fn parse(s: &str) -> Option<Partial> {
        let s = s.trim().trim_start_matches(['v', '=']);
        // A pre-release or build tag does not change which releases fit.
        let s = s.split(['-', '+']).next().unwrap_or("");
        let mut parts = [None; 3];
        if s.is_empty() || s == "*" || s.eq_ignore_ascii_case("x") {
            return Some(Partial { parts });
        }
        for (i, p) in s.split('.').enumerate() {
            if i >= 3 {
                return None;
            }
            if p == "*" || p.eq_ignore_ascii_case("x") {
                break;
            }
            parts[i] = Some(p.parse().ok()?);
        }
        // `1.x.3` is `1.x`: nothing after a wildcard counts.
        for i in 0..3 {
            if parts[i].is_none() {
                parts[i + 1..].iter_mut().for_each(|p| *p = None);
                break;
            }
        }
        Some(Partial { parts })
    }

    /// How many leading parts are given.
    fn given(&self) -> usize {
        self.parts.iter().take_while(|p| p.is_some()).count()
    }

    fn low(&self) -> Triple {
        let [a, b, c] = self.parts;
        (a.unwrap_or(0), b.unwrap_or(0), c.unwrap_or(0))
    }

    /// The first version past every version this partial names (`1.2` → 1.3.0).
    fn past(&self) -> Option<Triple> {
        let [a, b, c] = self.parts;
        match self.given() {
            0 => None,
            1 => Some((a? + 1, 0, 0)),
            2 => Some((a?, b? + 1, 0)),
            _ => Some((a?, b?, c? + 1)),
        }
    }
}

impl Range {
    /// `None` when the text is not a range npm would accept (then the caller falls back to
    /// the first version in the text).
    pub(crate) fn parse(text: &str) -> Option<Range> {
        let mut sets = Vec::new();
        for alt in text.split("||") {
            sets.push(parse_set(alt)?);
        }
        Some(Range(sets))
    }

    /// Whether the version `major.minor.patch` is in the range.
    pub(crate) fn satisfies(&self, major: u32, minor: u32, patch: u32) -> bool {
        let v = (major.into(), minor.into(), patch.into());
        self.0.iter().any(|s| s.holds(v))
    }
}

fn parse_set(text: &str) -> Option<Set> {
    let mut set = Set::default();
    // Hyphen range: `1.2 - 2.3`.
    let words: Vec<&str> = glue_operators(text);
    if let [from, "-", to] = words.as_slice() {
        let (from, to) = (Partial::parse(from)?, Partial::parse(to)?);
        set.at_least(from.low());
        if let Some(p) = to.past() {
            set.below(p);
        }
        return Some(set);
    }
    for w in words {
        comparator(&mut set, w)?;
    }
    Some(set)
}

/// Words of a comparator set, with an operator separated from its version (`>= 0.8`) joined.
fn glue_operators(text: &str) -> Vec<&str> {
    let mut out: Vec<&str> = Vec::new();
    let mut pending: Option<usize> = None;
    for w in text.split_whitespace() {
        if let Some(start) = pending.take() {
            // `w` follows an operator alone: take the slice from the operator to `w`'s end.
            let end = w.as_ptr() as usize - text.as_ptr() as usize + w.len();
            out.push(&text[start..end]);
            continue;
        }
        if matches!(w, ">" | ">=" | "<" | "<=" | "=" | "^" | "~" | "~>") {
            pending = Some(w.as_ptr() as usize - text.as_ptr() as usize);
            continue;
        }
        out.push(w);
    }
    out
}

fn comparator(set: &mut Set, w: &str) -> Option<()> {
    let w = w.trim();
    let (op, rest) = ["~>", ">=", "<=", ">", "<", "^", "~", "="]
        .iter()
        .find_map(|op| w.strip_prefix(op).map(|r| (*op, r)))
        .unwrap_or(("", w));
    let v = Partial::parse(rest.trim())?;
    let given = v.given();
    let low = v.low();
    match op {
        "" | "=" => {
            if given > 0 {
                set.at_least(low);
                set.below(v.past()?);
            }
        }
        ">=" => set.at_least(low),
        ">" => match v.past() {
            Some(p) => set.at_least(p),
            // `>*`: nothing.
            None => set.below((0, 0, 0)),
        },
        "<" => set.below(low),
        "<=" => {
            if let Some(p) = v.past() {
                set.below(p);
            }
        }
        "~" | "~>" => {
            set.at_least(low);
            match given {
                0 => {}
                1 => set.below((low.0 + 1, 0, 0)),
                _ => set.below((low.0, low.1 + 1, 0)),
            }
        }
        "^" => {
            set.at_least(low);
            let (a, b, c) = low;
            let high = if a > 0 || given <= 1 {
                (a + 1, 0, 0)
            } else if b > 0 || given == 2 {
                (a, b + 1, 0)
            } else {
                (a, b, c + 1)
            };
            if given > 0 {
                set.below(high);
            }
        }
        _ => return None,
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(range: &str, v: &str) -> bool {
        let r = Range::parse(range).unwrap_or_else(|| panic!("{range} should parse"));
        let p: Vec<u32> = v.split('.').map(|x| x.parse().unwrap()).collect();
        r.satisfies(p[0], p[1], p[2])
    }

    #[test]
    fn ranges_of_2013_package_json_files() {
        assert!(ok("0.10.x", "0.10.48"));
        assert!(!ok("0.10.x", "0.12.0"));
        assert!(ok(">=0.8", "22.12.0"));
        assert!(!ok(">=0.8", "0.6.21"));
        assert!(ok(">= 0.8.0 < 0.11", "0.10.3"));
        assert!(!ok(">= 0.8.0 < 0.11", "0.11.0"));
        assert!(ok("~0.10.0", "0.10.9"));
        assert!(!ok("~0.10.0", "0.11.0"));
        assert!(ok("^4.2.0", "4.9.1"));
        assert!(!ok("^4.2.0", "5.0.0"));
        assert!(ok("^0.10.1", "0.10.5"));
        assert!(!ok("^0.10.1", "0.11.0"));
        assert!(ok("4.x || 6.x", "6.17.1"));
        assert!(!ok("4.x || 6.x", "5.0.0"));
        assert!(ok("0.8 - 0.10", "0.10.40"));
        assert!(!ok("0.8 - 0.10", "0.11.0"));
        assert!(ok("*", "0.1.0"));
        assert!(ok("", "18.0.0"));
        assert!(ok("v0.10.26", "0.10.26"));
        assert!(!ok("0.10.26", "0.10.27"));
        assert!(ok(">0.8", "0.9.0"));
        assert!(!ok(">0.8", "0.8.28"));
        assert!(ok("<=0.10", "0.10.48"));
        assert!(!ok("<=0.10", "0.11.0"));
    }

    #[test]
    fn nonsense_is_not_a_range() {
        assert!(Range::parse("node please").is_none());
        assert!(Range::parse(">=a.b").is_none());
        assert!(Range::parse("1.2.3.4").is_none());
    }
}
