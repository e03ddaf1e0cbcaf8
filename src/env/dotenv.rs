//! `.env` files: `KEY=VALUE` lines, `export` prefixes, comments, single quotes (literal),
//! double quotes (escapes, `$VAR` expansion, several lines) and unquoted values (trimmed,
//! ` #` starts a comment). Errors name the line and column. Nothing is ever executed.

use std::collections::HashMap;
use std::fmt;

/// The longest value a `$VAR` expansion may produce: a guard against chains such as
/// `A=$A$A` on 60 lines, which would otherwise double until memory runs out.
pub(crate) const MAX_VALUE: usize = 1 << 20;
/// The most bytes the expanded values of one `.env` file, or of one app's variables, may
/// add up to.
pub(crate) const MAX_TOTAL: usize = 16 << 20;

/// An expansion went past [`MAX_VALUE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLong;

/// What to say when an expansion went past a limit.
pub(crate) fn too_long(name: &str, total: bool) -> String {
    if total {
        format!(
            "the variables expand to more than {} MiB in all (at \"{name}\"): does a chain of references double a value?",
            MAX_TOTAL >> 20
        )
    } else {
        format!(
            "\"{name}\" is longer than {} MiB once its $VARs are expanded: does a chain of references double a value?",
            MAX_VALUE >> 20
        )
    }
}

/// Append an expanded variable (unset: nothing) to `out`, unless that takes it past
/// [`MAX_VALUE`].
pub(crate) fn append(out: &mut String, add: Option<String>) -> Result<(), TooLong> {
    let add = add.unwrap_or_default();
    if out.len() + add.len() > MAX_VALUE {
        return Err(TooLong);
    }
    out.push_str(&add);
    Ok(())
}

/// One assignment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: String,
    /// 1-based line of the key.
    pub line: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.col, self.message)
    }
}

fn is_key_char(c: char) -> bool {
    c == '_' || c.is_ascii_alphanumeric() || c == '.'
}

/// Parse `.env` text. `lookup` resolves `$VAR` for names not assigned earlier in the file.
pub fn parse(text: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<Vec<Entry>, Error> {
    // No program's environment can hold a NUL: refuse it where it is, not when starting.
    if let Some(at) = text.find('\0') {
        let before = &text[..at];
        let line = before.matches('\n').count() + 1;
        let col = before[before.rfind('\n').map_or(0, |i| i + 1)..]
            .chars()
            .count()
            + 1;
        return Err(Error {
            line,
            col,
            message: "a NUL byte; environment variables cannot contain one".into(),
        });
    }
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    let mut line = 1;
    let mut line_start = 0;
    let mut out: Vec<Entry> = Vec::new();
    // Each key's last entry in `out`: a `$NAME` is resolved by lookup, not by a scan.
    let mut last: HashMap<String, usize> = HashMap::new();
    let err = |line: usize, col: usize, m: &str| Error {
        line,
        col,
        message: m.to_string(),
    };
    let mut total = 0usize;
    // Appends an expanded `$VAR`, within the limits on a value and on the whole file.
    let grow = |v: &mut String, add: Option<String>, key: &str, line: usize, col: usize| {
        append(v, add).map_err(|_| Error {
            line,
            col,
            message: too_long(key, false),
        })
    };
    while i < chars.len() {
        // Skip blank space at the start of a line.
        while i < chars.len() && (chars[i] == ' ' || chars[i] == '\t') {
            i += 1;
        }
        if i >= chars.len() {
            break;
        }
        if chars[i] == '\n' || chars[i] == '\r' {
            if chars[i] == '\n' {
                line += 1;
                line_start = i + 1;
            }
            i += 1;
            continue;
        }
        if chars[i] == '#' {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            continue;
        }
        let rest: String = chars[i..chars.len().min(i + 7)].iter().collect();
        if rest == "export " || rest == "export\t" {
            i += 7;
            while i < chars.len() && (chars[i] == ' ' || chars[i] == '\t') {
                i += 1;
            }
        }
        let key_line = line;
        let key_start = i;
        while i < chars.len() && is_key_char(chars[i]) {
            i += 1;
        }
        let key: String = chars[key_start..i].iter().collect();
        let col = key_start - line_start + 1;
        if key.is_empty() || key.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(err(
                line,
                col,
                "expected a variable name (letters, digits, _) at the start of the line",
            ));
        }
        while i < chars.len() && (chars[i] == ' ' || chars[i] == '\t') {
            i += 1;
        }
        if i >= chars.len() || chars[i] != '=' {
            return Err(err(
                line,
                i - line_start + 1,
                &format!("expected `=` after `{key}` (lines look like KEY=value)"),
            ));
        }
        i += 1;
        while i < chars.len() && (chars[i] == ' ' || chars[i] == '\t') {
            i += 1;
        }
        let defined = |name: &str, out: &[Entry]| {
            last.get(name)
                .map(|&i| out[i].value.clone())
                .or_else(|| lookup(name))
        };
        let value = if i < chars.len() && chars[i] == '\'' {
            let (qline, qcol) = (line, i - line_start + 1);
            i += 1;
            let s = i;
            while i < chars.len() && chars[i] != '\'' {
                if chars[i] == '\n' {
                    line += 1;
                    line_start = i + 1;
                }
                i += 1;
            }
            if i >= chars.len() {
                return Err(err(qline, qcol, "unterminated single quote"));
            }
            let v: String = chars[s..i].iter().collect();
            i += 1;
            v
        } else if i < chars.len() && chars[i] == '"' {
            let (qline, qcol) = (line, i - line_start + 1);
            i += 1;
            let mut v = String::new();
            loop {
                if i >= chars.len() {
                    return Err(err(qline, qcol, "unterminated double quote"));
                }
                match chars[i] {
                    '"' => {
                        i += 1;
                        break;
                    }
                    '\\' if i + 1 < chars.len() => {
                        let c = chars[i + 1];
                        v.push(match c {
                            'n' => '\n',
                            'r' => '\r',
                            't' => '\t',
                            other => other,
                        });
                        if !matches!(c, 'n' | 'r' | 't' | '"' | '\\' | '$') {
                            v.insert(v.len() - c.len_utf8(), '\\');
                        }
                        if c == '\n' {
                            line += 1;
                            line_start = i + 2;
                        }
                        i += 2;
                    }
                    '$' => {
                        let (name, next) = var_ref(&chars, i);
                        match name {
                            Some(n) => {
                                grow(&mut v, defined(&n, &out), &key, line, i - line_start + 1)?;
                                i = next;
                            }
                            None => {
                                v.push('$');
                                i += 1;
                            }
                        }
                    }
                    c => {
                        if c == '\n' {
                            line += 1;
                            line_start = i + 1;
                        }
                        v.push(c);
                        i += 1;
                    }
                }
            }
            v
        } else {
            let mut v = String::new();
            while i < chars.len() && chars[i] != '\n' {
                if chars[i] == '#' && v.ends_with([' ', '\t']) {
                    while i < chars.len() && chars[i] != '\n' {
                        i += 1;
                    }
                    break;
                }
                if chars[i] == '$' {
                    let (name, next) = var_ref(&chars, i);
                    if let Some(n) = name {
                        grow(&mut v, defined(&n, &out), &key, line, i - line_start + 1)?;
                        i = next;
                        continue;
                    }
                }
                v.push(chars[i]);
                i += 1;
            }
            v.trim_end_matches(['\r', ' ', '\t']).to_string()
        };
        // Only a comment may follow a quoted value.
        while i < chars.len() && (chars[i] == ' ' || chars[i] == '\t' || chars[i] == '\r') {
            i += 1;
        }
        if i < chars.len() && chars[i] != '\n' && chars[i] != '#' {
            return Err(err(
                line,
                i - line_start + 1,
                "unexpected text after the closing quote",
            ));
        }
        total += value.len();
        if total > MAX_TOTAL {
            return Err(err(key_line, col, &too_long(&key, true)));
        }
        last.insert(key.clone(), out.len());
        out.push(Entry {
            key,
            value,
            line: key_line,
        });
    }
    Ok(out)
}

/// `$NAME` or `${NAME}` at `i`: the name and the index after the reference.
fn var_ref(chars: &[char], i: usize) -> (Option<String>, usize) {
    let mut j = i + 1;
    if j < chars.len() && chars[j] == '{' {
        // Only name characters may come before the `}`: stopping at the first other one
        // (rather than at the line's end) gives the same answer, and keeps a line of unclosed
        // `${` linear.
        let s = j + 1;
        let mut k = s;
        while k < chars.len() && (chars[k] == '_' || chars[k].is_ascii_alphanumeric()) {
            k += 1;
        }
        if k > s && k < chars.len() && chars[k] == '}' {
            return (Some(chars[s..k].iter().collect()), k + 1);
        }
        return (None, i + 1);
    }
    let s = j;
    while j < chars.len() && (chars[j] == '_' || chars[j].is_ascii_alphanumeric()) {
        j += 1;
    }
    if j == s || chars[s].is_ascii_digit() {
        return (None, i + 1);
    }
    (Some(chars[s..j].iter().collect()), j)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Vec<(String, String)> {
        parse(s, &|n| (n == "HOME").then(|| "/home/me".to_string()))
            .unwrap()
            .into_iter()
            .map(|e| (e.key, e.value))
            .collect()
    }

    fn kv(k: &str, v: &str) -> (String, String) {
        (k.to_string(), v.to_string())
    }

    #[test]
    fn forms() {
        assert_eq!(
            p(
                "# c\nA=1\nexport B = two words # note\nC='lit $A'\nD=\"x\\n$A ${B}\"\nE=\nF=$HOME/x\n"
            ),
            vec![
                kv("A", "1"),
                kv("B", "two words"),
                kv("C", "lit $A"),
                kv("D", "x\n1 two words"),
                kv("E", ""),
                kv("F", "/home/me/x"),
            ]
        );
    }

    #[test]
    fn multiline_double_quotes() {
        assert_eq!(p("K=\"a\nb\"\nL=2"), vec![kv("K", "a\nb"), kv("L", "2")]);
    }

    #[test]
    fn errors_have_positions() {
        let e = parse("A=1\nnot a line\n", &|_| None).unwrap_err();
        assert_eq!((e.line, e.col), (2, 5));
        let e = parse("A=1\nB='open\n", &|_| None).unwrap_err();
        assert_eq!((e.line, e.col), (2, 3));
        assert!(e.message.contains("unterminated"));
        let e = parse("A=\"x\" y\n", &|_| None).unwrap_err();
        assert_eq!(e.line, 1);
        let e = parse("=x\n", &|_| None).unwrap_err();
        assert_eq!((e.line, e.col), (1, 1));
        // A backslash-newline inside double quotes still counts as a line.
        let e = parse("A=\"x\\\ny\"\nB=\"2\" x\n", &|_| None).unwrap_err();
        assert_eq!((e.line, e.col), (3, 7));
    }

    #[test]
    fn doubling_chains_stop_at_the_size_limit_with_a_position() {
        let mut text = String::from("A=xxxxxxxxxxxxxxxx\n");
        text.push_str(&"A=$A$A\n".repeat(64));
        let e = parse(&text, &|_| None).unwrap_err();
        // 16 bytes doubled 16 times is 1 MiB: the 17th doubling line (line 18) is refused.
        assert_eq!(e.line, 18, "{e}");
        assert!(e.message.contains("\"A\" is longer than 1 MiB"), "{e}");
        // Many values under the limit each, too much in all.
        let mut text = String::from("A=$BIG\n");
        text.push_str(&"B=$BIG\n".repeat(20));
        let big = "x".repeat(1 << 20);
        let e = parse(&text, &|n| (n == "BIG").then(|| big.clone())).unwrap_err();
        assert!(e.message.contains("more than 16 MiB in all"), "{e}");
    }

    #[test]
    fn a_nul_byte_is_refused_where_it_is() {
        let e = parse("A=1\nB=x\0y\n", &|_| None).unwrap_err();
        assert_eq!((e.line, e.col), (2, 4), "{e}");
        assert!(e.message.contains("NUL"), "{e}");
    }

    #[test]
    fn braces_need_a_name_and_a_closing_brace_on_the_line() {
        assert_eq!(
            p("A=${HOME}${ HOME}${}${HOME\nB=\"${HOME x}${H-1}${${HOME}}\"\n"),
            vec![
                kv("A", "/home/me${ HOME}${}${HOME"),
                kv("B", "${HOME x}${H-1}${/home/me}"),
            ]
        );
        // A line of unclosed braces stays as it is.
        let open = "${".repeat(1000);
        assert_eq!(p(&format!("A={open}\n")), vec![kv("A", &open)]);
    }

    #[test]
    fn a_reference_sees_the_last_assignment_before_it() {
        assert_eq!(
            p("A=1\nB=$A\nA=2\nC=${A}$HOME$NOPE\n"),
            vec![
                kv("A", "1"),
                kv("B", "1"),
                kv("A", "2"),
                kv("C", "2/home/me")
            ]
        );
    }

    #[test]
    fn never_executes() {
        assert_eq!(p("A=$(rm -rf /)\n"), vec![kv("A", "$(rm -rf /)")]);
    }
}
