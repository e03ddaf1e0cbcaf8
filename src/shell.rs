//! All shell text the tool prints goes through here: names and values quoted for bash, zsh,
//! POSIX `sh`, fish and dotenv files, and variable names derived from manifest names.
//!
//! Values may hold anything a `String` can (newlines, quotes, `$`, backquotes, `\`, any
//! unicode) and always come back literally; a name is emitted only when it is a shell
//! identifier (`[A-Za-z_][A-Za-z0-9_]*`), otherwise the caller gets [`Unsafe`] and must skip it.

use std::fmt;

/// The syntax to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Bash,
    Zsh,
    /// POSIX `sh` (dash, busybox).
    Sh,
    Fish,
    /// `KEY=VALUE` files read by dotenv libraries, docker compose, honcho, systemd's
    /// `EnvironmentFile=` and this tool's own `.env` reader.
    Dotenv,
}

/// Why an assignment cannot be written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unsafe {
    /// The name is not a shell identifier.
    Name(String),
    /// The value holds a NUL byte, which no environment can carry.
    Nul(String),
}

impl fmt::Display for Unsafe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unsafe::Name(n) => write!(
                f,
                "{} is not a shell variable name (letters, digits and `_`, not starting with a digit)",
                shown_name(n)
            ),
            Unsafe::Nul(n) => write!(f, "the value of {n} holds a NUL byte"),
        }
    }
}

/// A shell identifier: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c == '_' || c.is_ascii_alphabetic())
        && chars.all(|c| c == '_' || c.is_ascii_alphanumeric())
}

/// A variable name part made from any name (`STACKATO_FILESYSTEM_<NAME>`): ASCII letters
/// upper-cased, digits and `_` kept, every other character `_`, a `_` before a leading digit
/// (`php-info` → `PHP_INFO`, `x;. ./evil;y` → `X_____EVIL_Y`, `9lives` → `_9LIVES`).
pub fn safe_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

/// A name for messages: as it is when it is a shell identifier, else Rust-escaped in quotes so
/// control characters and escape sequences cannot reach the terminal raw.
pub(crate) fn shown_name(s: &str) -> String {
    if is_name(s) {
        s.to_string()
    } else {
        format!("\"{}\"", s.escape_default())
    }
}

/// One word for bash, zsh and POSIX `sh`, always single-quoted (`'` becomes `'\''`).
pub(crate) fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// One word for bash, zsh and POSIX `sh`: bare when that reads back the same, else
/// [`quote`]d. For commands people read (`cd DIR`, `pip install PKG`).
pub(crate) fn word(s: &str) -> String {
    if !s.is_empty()
        && s.chars().all(|c| {
            c.is_ascii_alphanumeric()
                || matches!(c, '_' | '-' | '.' | '/' | ':' | '@' | '%' | '+' | ',' | '=')
        })
    {
        return s.to_string();
    }
    quote(s)
}

/// One word for fish: single quotes, where only `\` and `'` are escaped.
pub(crate) fn fish_quote(s: &str) -> String {
    format!("'{}'", s.replace('\\', r"\\").replace('\'', r"\'"))
}

/// A value for a `KEY=VALUE` file: bare when safe, else single-quoted (literal in every
/// reader), else double-quoted with `\`, `"` and `$` escaped (newlines kept as they are:
/// every reader takes a multi-line double-quoted value). Never sourced by a shell: a
/// backquote stays literal.
pub(crate) fn dotenv_value(s: &str) -> String {
    if s.chars().all(|c| {
        c.is_ascii_alphanumeric()
            || matches!(c, '_' | '-' | '.' | '/' | ':' | '@' | '%' | '+' | ',')
    }) {
        return s.to_string();
    }
    if !s.contains(['\'', '\n', '\r']) {
        return format!("'{s}'");
    }
    let mut out = String::from("\"");
    for c in s.chars() {
        if matches!(c, '\\' | '"' | '$') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

fn check(name: &str, value: &str) -> Result<(), Unsafe> {
    if !is_name(name) {
        return Err(Unsafe::Name(name.to_string()));
    }
    if value.contains('\0') {
        return Err(Unsafe::Nul(name.to_string()));
    }
    Ok(())
}

/// One statement (no newline) that sets and exports `name` to exactly `value`:
/// `export NAME='value'`, `set -gx NAME 'value'` for fish, `NAME=value` for dotenv.
pub fn assign(d: Dialect, name: &str, value: &str) -> Result<String, Unsafe> {
    check(name, value)?;
    Ok(match d {
        Dialect::Bash | Dialect::Zsh | Dialect::Sh => format!("export {name}={}", quote(value)),
        Dialect::Fish => format!("set -gx {name} {}", fish_quote(value)),
        Dialect::Dotenv => format!("{name}={}", dotenv_value(value)),
    })
}

/// One statement that removes `name` from the shell (`None` for dotenv, which cannot).
pub(crate) fn unset(d: Dialect, name: &str) -> Result<Option<String>, Unsafe> {
    check(name, "")?;
    Ok(match d {
        Dialect::Bash | Dialect::Zsh | Dialect::Sh => Some(format!("unset {name}")),
        Dialect::Fish => Some(format!("set -e {name}")),
        Dialect::Dotenv => None,
    })
}

/// One statement that prints `msg` and a newline on stderr (`None` for dotenv).
pub(crate) fn say(d: Dialect, msg: &str) -> Option<String> {
    match d {
        Dialect::Bash | Dialect::Zsh | Dialect::Sh => {
            Some(format!("printf '%s\\n' {} >&2", quote(msg)))
        }
        Dialect::Fish => Some(format!("printf '%s\\n' {} >&2", fish_quote(msg))),
        Dialect::Dotenv => None,
    }
}

/// `export NAME="value"` for POSIX shells where `$NAME` and `${NAME}` in the value expand when
/// the line runs, exactly as this tool expands them (`crate::env::user::expand`: `\$` is a
/// literal `$`); nothing else is special: `$(…)`, backquotes, `\` and `"` stay literal, so the
/// line never runs a command. For variables whose value uses others only known at start.
pub(crate) fn assign_expanding(name: &str, value: &str) -> Result<String, Unsafe> {
    check(name, value)?;
    let chars: Vec<char> = value.chars().collect();
    let ident_start = |c: char| c == '_' || c.is_ascii_alphabetic();
    let ident = |c: char| c == '_' || c.is_ascii_alphanumeric();
    let mut out = format!("export {name}=\"");
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' if chars.get(i + 1) == Some(&'$') => {
                out.push_str("\\$");
                i += 2;
            }
            '$' if chars.get(i + 1) == Some(&'{') => {
                match chars[i + 2..].iter().position(|&c| c == '}') {
                    Some(len) => {
                        let n: String = chars[i + 2..i + 2 + len].iter().collect();
                        if is_name(&n) {
                            out.push_str(&format!("${{{n}}}"));
                        } else if n.chars().all(ident) && !n.is_empty() {
                            // `${1x}`: the tool looks it up and finds nothing.
                        } else {
                            out.push_str("\\${");
                            literal(&mut out, &n);
                            out.push('}');
                        }
                        i += 3 + len;
                    }
                    None => {
                        out.push_str("\\$");
                        i += 1;
                    }
                }
            }
            '$' if chars.get(i + 1).is_some_and(|&c| ident_start(c)) => {
                let mut j = i + 1;
                while j < chars.len() && ident(chars[j]) {
                    j += 1;
                }
                out.push('$');
                out.extend(&chars[i + 1..j]);
                i = j;
            }
            c => {
                literal(&mut out, &c.to_string());
                i += 1;
            }
        }
    }
    out.push('"');
    Ok(out)
}

/// Text inside double quotes that stays literal.
fn literal(out: &mut String, s: &str) {
    for c in s.chars() {
        if matches!(c, '\\' | '"' | '$' | '`') {
            out.push('\\');
        }
        out.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(is_name("DJANGO_SETTINGS_MODULE"));
        assert!(is_name("_x1"));
        assert!(!is_name("1X"));
        assert!(!is_name("A-B"));
        assert!(!is_name(""));
        assert!(!is_name("É"));
        assert_eq!(safe_name("php-info"), "PHP_INFO");
        assert_eq!(safe_name("x;. ./evil;y"), "X_____EVIL_Y");
        assert_eq!(safe_name("9lives"), "_9LIVES");
        assert_eq!(safe_name(""), "_");
        assert_eq!(safe_name("café"), "CAF_");
        assert!(is_name(&safe_name("\n$(x)`y`")));
    }

    #[test]
    fn bad_names_and_nul_are_refused() {
        for d in [Dialect::Bash, Dialect::Fish, Dialect::Dotenv] {
            assert_eq!(
                assign(d, "a;b", "v"),
                Err(Unsafe::Name("a;b".into())),
                "{d:?}"
            );
            assert_eq!(assign(d, "A", "x\0y"), Err(Unsafe::Nul("A".into())));
            assert!(unset(d, "$(x)").is_err());
        }
        assert_eq!(shown_name("a\u{1b}[2J"), "\"a\\u{1b}[2J\"");
    }

    #[test]
    fn quoting() {
        assert_eq!(quote("it's"), r"'it'\''s'");
        assert_eq!(fish_quote(r"it's \"), r"'it\'s \\'");
        assert_eq!(word("a/b.c"), "a/b.c");
        assert_eq!(word("a b"), "'a b'");
        assert_eq!(word(""), "''");
        assert_eq!(
            assign(Dialect::Zsh, "K", "$(x)").as_deref(),
            Ok("export K='$(x)'")
        );
        assert_eq!(dotenv_value("abc123"), "abc123");
        assert_eq!(dotenv_value("a b $X"), "'a b $X'");
        assert_eq!(dotenv_value("it's $X"), "\"it's \\$X\"");
        let v = "it's \"$X\" `y` \\\nnext\r";
        let parsed = crate::env::dotenv::parse(&format!("A={}\n", dotenv_value(v)), &|_| None)
            .expect("parses");
        assert_eq!(parsed[0].value, v);
    }

    #[test]
    fn expanding_assignments_expand_only_variables() {
        assert_eq!(
            assign_expanding("S", "$HOME/static").as_deref(),
            Ok("export S=\"$HOME/static\"")
        );
        assert_eq!(
            assign_expanding("S", "${A}x\\$B $(rm) `r` \"q\" \\ ${a b} ${1x} $").as_deref(),
            Ok(r#"export S="${A}x\$B \$(rm) \`r\` \"q\" \\ \${a b}  \$""#)
        );
        assert!(assign_expanding("a-b", "x").is_err());
    }
}
