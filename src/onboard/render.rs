//! Writing a commented `stackato.yml` from what detection found: one template per kind of app
//! (`templates/init/*.yml`, compiled in), its `{{placeholders}}` filled with the detected
//! values, each with its reason as a comment. Values are quoted when YAML needs it.

use crate::onboard::detect::{Detection, Kind, Reasoned};

/// The template of a kind.
pub(crate) fn template(kind: Kind) -> &'static str {
    match kind {
        Kind::Django => include_str!("../../templates/init/django.yml"),
        Kind::Flask => include_str!("../../templates/init/flask.yml"),
        Kind::Wsgi => include_str!("../../templates/init/wsgi.yml"),
        Kind::Node => include_str!("../../templates/init/node.yml"),
        Kind::Perl => include_str!("../../templates/init/perl.yml"),
        Kind::Php => include_str!("../../templates/init/php.yml"),
        Kind::Rails => include_str!("../../templates/init/rails.yml"),
        Kind::Rack => include_str!("../../templates/init/rack.yml"),
        Kind::Sinatra => include_str!("../../templates/init/sinatra.yml"),
        Kind::PerlCgi => include_str!("../../templates/init/perlcgi.yml"),
        Kind::Java => include_str!("../../templates/init/java.yml"),
        Kind::Buildpack => include_str!("../../templates/init/buildpack.yml"),
    }
}

/// Width comments are wrapped to.
const WIDTH: usize = 92;

/// The manifest for app `name`.
pub(crate) fn render(d: &Detection, name: &str) -> String {
    let (runtime, runtime_why) = d.runtime();
    let inline = |key: &str| -> Option<String> {
        Some(match key {
            "name" => scalar(name),
            "runtime" => scalar(&runtime),
            "runtime_why" => comment_text(&runtime_why),
            "why" => comment_text(&d.why),
            _ => return None,
        })
    };
    let mut out: Vec<String> = Vec::new();
    for line in template(d.kind).lines() {
        let t = line.trim();
        if let Some(key) = t.strip_prefix("{{").and_then(|r| r.strip_suffix("}}"))
            && let Some(block) = block(d, key)
        {
            out.extend(block);
            continue;
        }
        let mut l = line.to_string();
        for key in ["name", "runtime", "runtime_why", "why"] {
            let ph = format!("{{{{{key}}}}}");
            if l.contains(&ph)
                && let Some(v) = inline(key)
            {
                l = l.replace(&ph, &v);
            }
        }
        out.push(l);
    }
    // One blank line between sections, none at the end.
    let mut text = String::new();
    let mut blank = false;
    for l in out {
        let l = l.trim_end();
        if l.is_empty() {
            if !blank && !text.is_empty() {
                text.push('\n');
            }
            blank = true;
            continue;
        }
        blank = false;
        text.push_str(l);
        text.push('\n');
    }
    while text.ends_with("\n\n") {
        text.pop();
    }
    text
}

/// The lines of a block placeholder; `None` for an unknown one.
fn block(d: &Detection, key: &str) -> Option<Vec<String>> {
    Some(match key {
        "framework_extra" => d
            .document_root
            .iter()
            .flat_map(|r| {
                let mut v = comment_lines("  ", &r.why);
                v.push(format!("  document-root: {}", scalar(&r.value)));
                v
            })
            .collect(),
        "services" => services(d),
        "env" => env(d),
        "requirements" => requirements(d),
        "web" => match &d.web {
            Some(w) => {
                let mut v = vec!["processes:".to_string()];
                v.extend(comment_lines("  ", &w.why));
                v.push(format!("  web: {}", scalar(&w.value)));
                v
            }
            None => Vec::new(),
        },
        "hooks" => {
            if d.post_staging.is_empty() {
                Vec::new()
            } else {
                let mut v = vec!["hooks:".to_string(), "  post-staging:".to_string()];
                for h in &d.post_staging {
                    v.extend(comment_lines("    ", &h.why));
                    v.push(format!("    - {}", scalar(&h.value)));
                }
                v
            }
        }
        "ignores" => ignores(d),
        _ => return None,
    })
}

/// The manifest's name for a service of type `kind`: `${name}-db` for the only relational one.
pub(crate) fn service_name(d: &Detection, kind: &str) -> String {
    let relational = |k: &str| matches!(k, "mysql" | "postgresql");
    let n = d.services.iter().filter(|s| relational(&s.value)).count();
    if relational(kind) && n == 1 {
        "${name}-db".to_string()
    } else {
        format!("${{name}}-{kind}")
    }
}

fn services(d: &Detection) -> Vec<String> {
    if d.services.is_empty() {
        return vec![
            "# Services: none found in the dependencies. A database would be:".into(),
            "# services:".into(),
            "#   ${name}-db: postgresql".into(),
        ];
    }
    let mut v = comment_lines(
        "",
        "Services, created and bound at push. Locally each is a private server (sqlite for mysql/postgresql when the server is not installed) with the same variables: DATABASE_URL, MYSQL_URL, POSTGRESQL_URL, REDIS_URL, MEMCACHE_URL and VCAP_SERVICES.",
    );
    v.push("services:".into());
    for s in &d.services {
        v.push(format!(
            "  {}: {}  # {}",
            service_name(d, &s.value),
            scalar(&s.value),
            comment_text(&s.why)
        ));
    }
    v
}

fn env(d: &Detection) -> Vec<String> {
    if d.env.is_empty() {
        return vec![
            "# Environment variables for staging and the processes, e.g.:".into(),
            "# env:".into(),
            "#   DEBUG: \"false\"".into(),
        ];
    }
    let mut v = vec!["env:".to_string()];
    for (name, e) in &d.env {
        v.push(format!(
            "  {}: {}  # {}",
            scalar(name),
            scalar(&e.value),
            comment_text(&e.why)
        ));
    }
    v
}

fn requirements(d: &Detection) -> Vec<String> {
    let mut v = Vec::new();
    for dep in &d.dependencies {
        v.extend(comment_lines("", dep));
    }
    if !d.cpan.is_empty() {
        v.push("requirements:".into());
        v.push("  cpan:".into());
        for c in &d.cpan {
            v.extend(comment_lines("    ", &c.why));
            v.push(format!("    - {}", scalar(&c.value)));
        }
    }
    v
}

fn ignores(d: &Detection) -> Vec<String> {
    if d.ignores.is_empty() {
        return Vec::new();
    }
    let extra: Vec<&Reasoned> = d.ignores.iter().collect();
    let mut whys: Vec<&str> = Vec::new();
    for r in &extra {
        if !whys.contains(&r.why.as_str()) {
            whys.push(&r.why);
        }
    }
    let mut v = comment_lines(
        "",
        &format!(
            "Not pushed (nor watched): {} ({}). `ignores:` replaces the client's default list, which follows them.",
            extra
                .iter()
                .map(|r| r.value.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            whys.join("; ")
        ),
    );
    let items: Vec<String> = extra
        .iter()
        .map(|r| r.value.as_str())
        .chain(crate::stage::ignores::DEFAULT.iter().copied())
        .map(quoted)
        .collect();
    let mut line = "ignores: [".to_string();
    let mut fresh = true;
    for (i, item) in items.iter().enumerate() {
        let end = if i + 1 == items.len() { "]" } else { "," };
        let piece = format!("{item}{end}");
        if !fresh && line.len() + 1 + piece.len() > WIDTH {
            v.push(std::mem::replace(&mut line, "  ".to_string()));
            fresh = true;
        }
        if !fresh {
            line.push(' ');
        }
        line.push_str(&piece);
        fresh = false;
    }
    v.push(line);
    v
}

/// Text safe inside a comment: one line.
fn comment_text(s: &str) -> String {
    s.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// `text` as comment lines indented by `indent`, wrapped.
fn comment_lines(indent: &str, text: &str) -> Vec<String> {
    let text = comment_text(text);
    let mut v = Vec::new();
    let mut line = format!("{indent}#");
    for word in text.split_whitespace() {
        if line.len() + 1 + word.len() > WIDTH && line.len() > indent.len() + 1 {
            v.push(line);
            line = format!("{indent}#");
        }
        line.push(' ');
        line.push_str(word);
    }
    if line.len() > indent.len() + 1 {
        v.push(line);
    }
    v
}

/// A YAML scalar for `s`: plain when that reads back as the same text, else double-quoted.
pub(crate) fn scalar(s: &str) -> String {
    let plain = !s.is_empty()
        && !s.starts_with(|c: char| "-?:,[]{}#&*!|>'\"%@`".contains(c) || c.is_whitespace())
        && !s.ends_with(|c: char| c.is_whitespace() || c == ':')
        && !s.contains(": ")
        && !s.contains(" #")
        && !s.chars().any(char::is_control)
        && !matches!(s, "~" | "null" | "Null" | "NULL");
    if plain { s.to_string() } else { quoted(s) }
}

/// A double-quoted YAML scalar.
fn quoted(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        match c {
            '"' => q.push_str("\\\""),
            '\\' => q.push_str("\\\\"),
            '\n' => q.push_str("\\n"),
            '\t' => q.push_str("\\t"),
            c if c.is_control() => q.push_str(&format!("\\u{:04x}", c as u32)),
            c => q.push(c),
        }
    }
    q.push('"');
    q
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_placeholder_is_known() {
        for kind in Kind::ALL {
            for line in template(kind).lines() {
                let mut rest = line;
                while let Some(at) = rest.find("{{") {
                    let after = &rest[at + 2..];
                    let end = after.find("}}").unwrap_or(after.len());
                    let key = &after[..end];
                    let known = matches!(key, "name" | "runtime" | "runtime_why" | "why")
                        || (line.trim() == format!("{{{{{key}}}}}")
                            && matches!(
                                key,
                                "framework_extra"
                                    | "services"
                                    | "env"
                                    | "requirements"
                                    | "web"
                                    | "hooks"
                                    | "ignores"
                            ));
                    assert!(known, "{:?}: unknown placeholder {key:?}", kind);
                    rest = &after[end.min(after.len())..];
                }
            }
        }
    }

    #[test]
    fn scalars() {
        assert_eq!(
            scalar("$STACKATO_UWSGI --module=a.wsgi:application"),
            "$STACKATO_UWSGI --module=a.wsgi:application"
        );
        assert_eq!(scalar("*.pyc"), "\"*.pyc\"");
        assert_eq!(scalar("a: b"), "\"a: b\"");
        assert_eq!(scalar("x # y"), "\"x # y\"");
        assert_eq!(scalar("say \"hi\""), "say \"hi\"");
        assert_eq!(scalar("\"q\""), "\"\\\"q\\\"\"");
        assert_eq!(scalar("~"), "\"~\"");
    }

    #[test]
    fn comments_wrap() {
        let long = "word ".repeat(40);
        for l in comment_lines("  ", &long) {
            assert!(l.len() <= WIDTH, "{l}");
            assert!(l.starts_with("  # "));
        }
        assert_eq!(comment_lines("", "a\nb"), vec!["# a b"]);
    }
}
