//! Text writers shared by the exporters: a small YAML writer for JSON-shaped data (block style,
//! quoting only where a YAML 1.1 or 1.2 reader could take the text for something else), shell
//! quoting, env-file values and systemd command lines.

use serde_json::{Map, Value};

/// `v` as a YAML document (block style; no `---`).
pub(crate) fn to_yaml(v: &Value) -> String {
    let mut out = String::new();
    match v {
        Value::Object(m) if !m.is_empty() => write_map(&mut out, m, 0),
        Value::Array(a) if !a.is_empty() => write_seq(&mut out, a, 0),
        other => {
            out.push_str(&scalar(other));
            out.push('\n');
        }
    }
    out
}

fn pad(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

fn write_map(out: &mut String, m: &Map<String, Value>, indent: usize) {
    for (k, v) in m {
        pad(out, indent);
        out.push_str(&text(k));
        out.push(':');
        write_child(out, v, indent);
    }
}

fn write_seq(out: &mut String, a: &[Value], indent: usize) {
    for item in a {
        pad(out, indent);
        out.push('-');
        match item {
            Value::Object(m) if !m.is_empty() => {
                for (i, (k, v)) in m.iter().enumerate() {
                    if i == 0 {
                        out.push(' ');
                    } else {
                        pad(out, indent + 2);
                    }
                    out.push_str(&text(k));
                    out.push(':');
                    write_child(out, v, indent + 2);
                }
            }
            Value::Array(inner) if !inner.is_empty() => {
                out.push('\n');
                write_seq(out, inner, indent + 2);
            }
            _ => write_child(out, item, indent),
        }
    }
}

/// The value after `key:` or `-`, at `indent` (the indentation of the key or dash).
fn write_child(out: &mut String, v: &Value, indent: usize) {
    match v {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            write_map(out, m, indent + 2);
        }
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            write_seq(out, a, indent + 2);
        }
        Value::String(s) if block_literal_ok(s) => {
            let body = s.strip_suffix('\n');
            out.push_str(if body.is_some() { " |\n" } else { " |-\n" });
            for line in body.unwrap_or(s).split('\n') {
                if !line.is_empty() {
                    pad(out, indent + 2);
                    out.push_str(line);
                }
                out.push('\n');
            }
        }
        _ => {
            out.push(' ');
            out.push_str(&scalar(v));
            out.push('\n');
        }
    }
}

/// Multi-line text that reads back unchanged as a `|`/`|-` block.
fn block_literal_ok(s: &str) -> bool {
    let body = s.strip_suffix('\n').unwrap_or(s);
    body.contains('\n')
        && !body.ends_with('\n')
        && !body.starts_with([' ', '\t'])
        && !body.starts_with('\n')
        && body
            .chars()
            .all(|c| c == '\n' || c == '\t' || !c.is_control())
        && !body.contains('\u{feff}')
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) => text(s),
        Value::Null => "null".into(),
        other => other.to_string(),
    }
}

/// A string as a YAML scalar: plain when no reader could take it for anything but this
/// text, else double-quoted (JSON's escapes are YAML's).
pub(crate) fn text(s: &str) -> String {
    if plain_ok(s) {
        s.to_string()
    } else {
        serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
    }
}

fn plain_ok(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    if !(first.is_ascii_alphanumeric() || matches!(first, '/' | '_' | '$' | '.')) {
        return false;
    }
    if s.ends_with([' ', ':']) || s.contains(": ") || s.contains(" #") {
        return false;
    }
    let allowed = |c: char| {
        c.is_ascii_alphanumeric()
            || matches!(
                c,
                ' ' | '_'
                    | '-'
                    | '.'
                    | '/'
                    | '@'
                    | '+'
                    | '='
                    | ','
                    | ':'
                    | '$'
                    | '{'
                    | '}'
                    | '('
                    | ')'
                    | '%'
                    | '*'
                    | '?'
                    | '\''
                    | '"'
                    | '['
                    | ']'
                    | '<'
                    | '>'
                    | '&'
                    | ';'
                    | '|'
                    | '!'
                    | '~'
                    | '^'
                    | '#'
            )
    };
    if !s.chars().all(allowed) {
        return false;
    }
    let lower = s.to_ascii_lowercase();
    if matches!(
        lower.as_str(),
        "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n" | "null" | "~" | "nan" | "inf"
    ) || lower.starts_with(".inf")
        || lower.starts_with(".nan")
    {
        return false;
    }
    // Anything a YAML 1.1 reader could take for a number (ints, floats, 0x.., 1:30 base 60).
    let numberish =
        |c: char| c.is_ascii_hexdigit() || matches!(c, '.' | '_' | ':' | '+' | '-' | 'x' | 'o');
    if (first.is_ascii_digit() || first == '.') && s.chars().all(numberish) {
        return false;
    }
    true
}

/// `bash -c SCRIPT` as one systemd command line: the script single-quoted with C escapes,
/// `$` doubled (systemd would substitute its own variables) and `%` doubled (specifiers).
pub(crate) fn systemd_bash(script: &str) -> String {
    let mut q = String::new();
    for c in script.chars() {
        match c {
            '\\' => q.push_str(r"\\"),
            '\'' => q.push_str(r"\'"),
            '\n' => q.push_str(r"\n"),
            '\t' => q.push_str(r"\t"),
            '$' => q.push_str("$$"),
            '%' => q.push_str("%%"),
            c => q.push(c),
        }
    }
    format!("/bin/bash -c '{q}'")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reparse(y: &str) -> crate::yaml::Node {
        crate::yaml::parse(y, crate::diag::FileId(0))
            .expect("valid YAML")
            .root
            .expect("a document")
    }

    #[test]
    fn scalars_that_would_change_meaning_are_quoted() {
        for s in [
            "yes",
            "No",
            "on",
            "null",
            "~",
            "",
            "1.10",
            "010",
            "8080:8080",
            "0x1f",
            "1e3",
            "-c",
            "a: b",
            "x #y",
            "*a",
            "&a",
            "!t",
            " lead",
            "trail ",
            "key:",
            "{x}",
            "[x]",
            "@a",
            "%a",
            "'q'",
            "\"q\"",
            ".5",
            ".inf",
        ] {
            let y = to_yaml(&json!({ "k": s }));
            let n = reparse(&y);
            let got = n.get("k").and_then(|v| v.scalar_text()).unwrap_or("<none>");
            assert_eq!(got, s, "{s:?} wrote {y:?}");
            assert!(
                n.get("k").is_some_and(|v| !v.is_null()),
                "{s:?} read back as null: {y}"
            );
        }
        assert_eq!(text("256M"), "256M");
        assert_eq!(text("python_buildpack"), "python_buildpack");
        assert_eq!(text("8080:8080"), "\"8080:8080\"");
    }

    #[test]
    fn nested_structures_round_trip() {
        let v = json!({
            "applications": [{"name": "a", "routes": [{"route": "a.example.com"}], "env": {"X": "1"}}],
            "empty": {}, "none": [], "script": "set -e\necho $HOME\n\n  indented\nexec x",
        });
        let y = to_yaml(&v);
        let n = reparse(&y);
        assert_eq!(
            n.to_json(),
            json!({
                "applications": [{"name": "a", "routes": [{"route": "a.example.com"}], "env": {"X": "1"}}],
                "empty": {}, "none": [], "script": "set -e\necho $HOME\n\n  indented\nexec x",
            }),
            "{y}"
        );
    }

    #[test]
    fn systemd_lines() {
        assert_eq!(
            systemd_bash("echo 'a' $HOME 100%\nexit"),
            r"/bin/bash -c 'echo \'a\' $$HOME 100%%\nexit'"
        );
    }
}
