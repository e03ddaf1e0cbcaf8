//! Reading an environment captured elsewhere (production), for `env diff`: `KEY=VALUE` lines
//! (the output of `env`, `printenv`, `stackato run env`, or a .env file), the flat JSON of
//! `env --format json`, or a JSON dump like Stackato 2.x apps printed (`vcap_application`,
//! `vcap_services`, `stackato_services` as objects).

use serde_json::Value;

/// Records in a dump that are not environment variables.
const NOT_VARIABLES: &[&str] = &["vmc_app_instance"];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dump {
    pub vars: Vec<(String, String)>,
    /// Notes about what was skipped and why.
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DumpError {
    pub line: usize,
    pub col: usize,
    pub message: String,
}

fn is_name(s: &str) -> bool {
    crate::manifest::validate::is_env_name(s)
}

/// Parse a dump; the format is recognised from its content.
pub fn parse(text: &str) -> Result<Dump, DumpError> {
    let text = text.trim_start_matches('\u{feff}');
    if text.trim_start().starts_with('{') {
        // Parse the text as it is, so error positions count every line.
        return parse_json(text);
    }
    parse_lines(text)
}

fn parse_json(text: &str) -> Result<Dump, DumpError> {
    let v: Value = serde_json::from_str(text).map_err(|e| DumpError {
        line: e.line(),
        col: e.column(),
        message: format!("not valid JSON: {e}"),
    })?;
    let Value::Object(map) = v else {
        return Err(DumpError {
            line: 1,
            col: 1,
            message: "expected a JSON object of variables".into(),
        });
    };
    let mut vars = Vec::new();
    let mut notes = Vec::new();
    for (k, v) in map {
        if NOT_VARIABLES.contains(&k.as_str()) {
            notes.push(format!(
                "`{k}` is the platform's own record, not a variable: skipped"
            ));
            continue;
        }
        let name = if k.chars().any(|c| c.is_ascii_uppercase()) {
            k.clone()
        } else {
            k.to_ascii_uppercase()
        };
        if !is_name(&name) {
            notes.push(format!("`{k}` is not a variable name: skipped"));
            continue;
        }
        let value = match v {
            Value::String(s) => s,
            Value::Null => String::new(),
            other @ (Value::Object(_) | Value::Array(_)) => other.to_string(),
            other => other.to_string(),
        };
        vars.push((name, value));
    }
    Ok(Dump { vars, notes })
}

fn unquote(v: &str) -> String {
    let b = v.as_bytes();
    if v.len() >= 2 && b[0] == b'\'' && b[v.len() - 1] == b'\'' {
        return v[1..v.len() - 1].to_string();
    }
    if v.len() >= 2 && b[0] == b'"' && b[v.len() - 1] == b'"' {
        let inner = &v[1..v.len() - 1];
        let mut out = String::new();
        let mut it = inner.chars();
        while let Some(c) = it.next() {
            if c == '\\' {
                match it.next() {
                    Some('n') => out.push('\n'),
                    Some('t') => out.push('\t'),
                    Some(o) => out.push(o),
                    None => out.push('\\'),
                }
            } else {
                out.push(c);
            }
        }
        return out;
    }
    v.to_string()
}

fn parse_lines(text: &str) -> Result<Dump, DumpError> {
    let mut vars: Vec<(String, String)> = Vec::new();
    let mut notes = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        let t = line.trim_start();
        if t.is_empty() || t.starts_with('#') {
            continue;
        }
        let t = t.strip_prefix("export ").unwrap_or(t);
        match t.split_once('=') {
            Some((k, v)) if is_name(k.trim_end()) => {
                vars.push((k.trim_end().to_string(), unquote(v)));
            }
            _ => match vars.last_mut() {
                // `env` prints a value with newlines over several lines.
                Some((_, v)) => {
                    v.push('\n');
                    v.push_str(line);
                }
                None => {
                    return Err(DumpError {
                        line: i + 1,
                        col: 1,
                        message: "expected KEY=VALUE lines, a JSON object, or a Stackato JSON dump"
                            .into(),
                    });
                }
            },
        }
    }
    if vars.is_empty() {
        notes.push("the file holds no variables".into());
    }
    Ok(Dump { vars, notes })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_with_continuations() {
        let d = parse("A=1\nexport B=\"x y\"\nC={\n \"k\": 1}\n# c\n").unwrap();
        assert_eq!(
            d.vars,
            vec![
                ("A".into(), "1".into()),
                ("B".into(), "x y".into()),
                ("C".into(), "{\n \"k\": 1}".into())
            ]
        );
    }

    #[test]
    fn stackato_json_dump() {
        let d =
            parse(r#"{"vcap_application": {"name": "a"}, "vmc_app_instance": {}, "PORT": "1"}"#)
                .unwrap();
        assert_eq!(
            d.vars,
            vec![
                ("VCAP_APPLICATION".into(), r#"{"name":"a"}"#.into()),
                ("PORT".into(), "1".into())
            ]
        );
        assert_eq!(d.notes.len(), 1);
    }

    #[test]
    fn garbage_is_an_error_at_its_line() {
        let e = parse("this is not a dump\n").unwrap_err();
        assert_eq!(e.line, 1);
        let e = parse("{\"a\": }").unwrap_err();
        assert!(e.message.contains("JSON"));
    }
}
