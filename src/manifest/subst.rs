//! `${...}` symbol substitution, as the client's `ResolveSymbols`: built-ins (`target-url`,
//! `target-base`, `space-base`, `random-word`, `ask TEXT`) and lookups of other keys
//! (`properties:NAME`, then the current application's `NAME`, then the top-level `NAME`),
//! in values and in mapping keys. Nothing is ever executed: a symbol is only looked up.

use std::collections::HashMap;

use crate::diag::{Diagnostic, Sources, Span, suggest};
use crate::yaml::{Node, Value};

/// Where built-in symbols get their values.
pub(crate) struct Target {
    /// e.g. `https://api.stackato.local`.
    pub url: String,
    /// The value of `${random-word}`: stable per project so `run` stays idempotent.
    pub random_word: String,
}

impl Target {
    /// `${target-url}`: the URL without `:port`.
    pub(crate) fn target_url(&self) -> String {
        let (scheme, rest) = match self.url.split_once("://") {
            Some((s, r)) => (Some(s), r),
            None => (None, self.url.as_str()),
        };
        let (host, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        let host = match host.rfind(':') {
            Some(i) if host[i + 1..].bytes().all(|b| b.is_ascii_digit()) => &host[..i],
            _ => host,
        };
        let path = path.trim_end_matches('/');
        match scheme {
            Some(s) => format!("{s}://{host}{path}"),
            None => format!("{host}{path}"),
        }
    }

    /// `${target-base}`: the target host minus its first label (`api.example.org` → `example.org`).
    pub(crate) fn target_base(&self) -> String {
        let u = self.target_url();
        let host = u.split_once("://").map_or(u.as_str(), |(_, r)| r);
        let host = host.split('/').next().unwrap_or(host);
        match host.split_once('.') {
            Some((_, rest)) => rest.to_string(),
            None => host.to_string(),
        }
    }
}

/// Asks the user for `${ask TEXT}` answers; `None` when nobody can answer.
pub(crate) type Asker<'a> = dyn FnMut(&str) -> Option<String> + 'a;

struct Ctx<'a, 'b> {
    target: &'a Target,
    sources: &'a Sources,
    root: &'a Node,
    app: Option<&'a Node>,
    asker: &'a mut Asker<'b>,
    answers: &'a mut HashMap<String, String>,
    diags: &'a mut Vec<Diagnostic>,
    /// Symbols already resolved in this context (`None`: resolving failed, already reported).
    memo: HashMap<String, Option<String>>,
    /// Bytes all expansions may still produce.
    budget: &'a mut usize,
}

/// Longest chain of symbols defined by other symbols.
const MAX_CHAIN: usize = 64;
/// Largest value one scalar may expand to.
const MAX_VALUE: usize = 1 << 20;
/// Largest total output of all expansions of one manifest.
const MAX_TOTAL: usize = 16 << 20;

/// Resolve every `${...}` in the tree (applications get their own app as context).
pub(crate) fn resolve(
    tree: &mut Node,
    target: &Target,
    sources: &Sources,
    asker: &mut Asker<'_>,
    diags: &mut Vec<Diagnostic>,
) {
    let snapshot = tree.clone();
    let mut answers = HashMap::new();
    let mut budget = MAX_TOTAL;
    // A `target` key in the manifest overrides the target, as in the client.
    let own_target;
    let target = match snapshot
        .get("properties")
        .and_then(|p| p.get("target"))
        .or_else(|| snapshot.get("target"))
        .and_then(Node::as_str)
    {
        Some(t) if !t.contains("${") => {
            own_target = Target {
                url: t.to_string(),
                random_word: target.random_word.clone(),
            };
            &own_target
        }
        _ => target,
    };
    let Some(entries) = tree.as_map_mut() else {
        return;
    };
    for e in entries.iter_mut() {
        let is_apps = e.key.scalar_text() == Some("applications");
        if is_apps {
            let Some(apps) = e.value.as_map_mut() else {
                continue;
            };
            let snap_apps: HashMap<&str, &Node> = snapshot
                .get("applications")
                .and_then(Node::as_map)
                .unwrap_or_default()
                .iter()
                .map(|e| (e.key.scalar_text().unwrap_or_default(), &e.value))
                .collect();
            for app in apps.iter_mut() {
                let name = app.key.scalar_text().unwrap_or_default().to_string();
                let snap_app = snap_apps.get(name.as_str()).copied();
                let mut ctx = Ctx {
                    target,
                    sources,
                    root: &snapshot,
                    app: snap_app,
                    asker,
                    answers: &mut answers,
                    diags,
                    memo: HashMap::new(),
                    budget: &mut budget,
                };
                resolve_node(&mut app.value, &mut ctx);
            }
        } else {
            let mut ctx = Ctx {
                target,
                sources,
                root: &snapshot,
                app: None,
                asker,
                answers: &mut answers,
                diags,
                memo: HashMap::new(),
                budget: &mut budget,
            };
            resolve_node(&mut e.value, &mut ctx);
        }
    }
    // Keys named after apps follow their (possibly substituted) `name`.
    if let Some(apps) = tree.get_mut("applications").and_then(Node::as_map_mut) {
        for app in apps.iter_mut() {
            if let Some(n) = app.value.get("name").and_then(Node::as_str) {
                let n = n.to_string();
                app.key = Node::scalar(n, app.key.span);
            }
        }
    }
}

fn resolve_node(n: &mut Node, ctx: &mut Ctx<'_, '_>) {
    let span = n.span;
    match &mut n.value {
        Value::Scalar(s) => {
            if s.text.contains("${")
                && let Some(t) = expand(&s.text, span, ctx, &mut Vec::new())
            {
                s.text = t;
            }
        }
        Value::Seq(items) => items.iter_mut().for_each(|i| resolve_node(i, ctx)),
        Value::Map(entries) => {
            for e in entries.iter_mut() {
                resolve_node(&mut e.key, ctx);
                resolve_node(&mut e.value, ctx);
            }
        }
    }
}

/// Narrow a scalar's span to the `${...}` reference when the source text shows it verbatim.
fn ref_span(span: Span, sources: &Sources, reference: &str) -> Span {
    let Some(f) = sources.get(span.file) else {
        return span;
    };
    let (s, e) = (span.start as usize, span.end as usize);
    if e.saturating_sub(s) > 4096 {
        return span;
    }
    let Some(src) = f.text.get(s..e.min(f.text.len())) else {
        return span;
    };
    match src.find(reference) {
        Some(i) if !src[..i].contains('\n') => Span {
            start: (s + i) as u32,
            end: (s + i + reference.len()) as u32,
            col: span.col + src[..i].chars().count() as u32,
            ..span
        },
        _ => span,
    }
}

/// Expand the symbols in one string. `None` after reporting an error.
fn expand(
    text: &str,
    span: Span,
    ctx: &mut Ctx<'_, '_>,
    stack: &mut Vec<String>,
) -> Option<String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut seen: HashMap<String, String> = HashMap::new();
    let mut ok = true;
    while let Some(i) = rest.find("${") {
        let Some(j) = rest[i + 2..].find('}') else {
            break;
        };
        out.push_str(&rest[..i]);
        let reference = &rest[i..i + 2 + j + 1];
        let name = rest[i + 2..i + 2 + j].trim().to_string();
        rest = &rest[i + 2 + j + 1..];
        if let Some(v) = seen.get(&name) {
            out.push_str(v);
            continue;
        }
        match value_of(&name, reference, span, ctx, stack) {
            Some(v) => {
                if out.len() + v.len() > MAX_VALUE || v.len() > *ctx.budget {
                    let at = ref_span(span, ctx.sources, reference);
                    ctx.diags.push(
                        Diagnostic::error(format!(
                            "`{reference}` makes this value larger than {} KiB (symbols that repeat other symbols?)",
                            MAX_VALUE >> 10
                        ))
                        .at(at),
                    );
                    return None;
                }
                *ctx.budget -= v.len();
                out.push_str(&v);
                seen.insert(name, v);
            }
            None => ok = false,
        }
    }
    out.push_str(rest);
    ok.then_some(out)
}

fn value_of(
    name: &str,
    reference: &str,
    span: Span,
    ctx: &mut Ctx<'_, '_>,
    stack: &mut Vec<String>,
) -> Option<String> {
    match name {
        "target-url" => return Some(ctx.target.target_url()),
        "target-base" | "space-base" => return Some(ctx.target.target_base()),
        "random-word" => return Some(ctx.target.random_word.clone()),
        _ => {}
    }
    if let Some(question) = name.strip_prefix("ask ").or((name == "ask").then_some("")) {
        let question = question.trim().to_string();
        if let Some(a) = ctx.answers.get(&question) {
            return Some(a.clone());
        }
        return match (ctx.asker)(&question) {
            Some(a) => {
                ctx.answers.insert(question, a.clone());
                Some(a)
            }
            None => {
                let at = ref_span(span, ctx.sources, reference);
                ctx.diags.push(
                    Diagnostic::error(format!(
                        "`{reference}` asks a question, but there is no terminal to answer it"
                    ))
                    .at(at)
                    .hint("run the command in a terminal, or replace the `${ask …}` with a value"),
                );
                None
            }
        };
    }
    if stack.iter().any(|s| s == name) {
        let at = ref_span(span, ctx.sources, reference);
        ctx.diags.push(
            Diagnostic::error(format!("Circular symbol definition: {name}"))
                .at(at)
                .hint(format!("`{}` refers back to itself", stack.join("` → `"))),
        );
        return None;
    }
    if let Some(done) = ctx.memo.get(name) {
        return done.clone();
    }
    if stack.len() >= MAX_CHAIN {
        let at = ref_span(span, ctx.sources, reference);
        ctx.diags.push(
            Diagnostic::error(format!(
                "symbols defined by other symbols more than {MAX_CHAIN} deep, at {name}"
            ))
            .at(at),
        );
        return None;
    }
    match lookup(name, ctx) {
        Some(found) => {
            let text = found.scalar_text().unwrap_or_default().to_string();
            let fspan = found.span;
            let r = if text.contains("${") {
                stack.push(name.to_string());
                let r = expand(&text, fspan, ctx, stack);
                stack.pop();
                r
            } else {
                Some(text)
            };
            ctx.memo.insert(name.to_string(), r.clone());
            r
        }
        None => {
            let at = ref_span(span, ctx.sources, reference);
            let mut cands: Vec<String> = vec![
                "name".into(),
                "target-url".into(),
                "target-base".into(),
                "space-base".into(),
                "random-word".into(),
            ];
            if let Some(app) = ctx.app.and_then(Node::as_map) {
                cands.extend(
                    app.iter()
                        .filter(|e| e.value.is_scalar())
                        .map(|e| e.key.scalar_text().unwrap_or_default().to_string()),
                );
            }
            let hint = if ctx.diags.len() > 300 {
                None
            } else {
                match name {
                    "mem" => {
                        Some("`mem` is renamed to `memory` by normalisation; use ${memory}".into())
                    }
                    _ if name
                        .chars()
                        .all(|c| c.is_ascii_uppercase() || c == '_' || c.is_ascii_digit()) =>
                    {
                        Some(format!(
                            "`{reference}` is read as a manifest symbol, not a shell variable: write `${name}` without braces, or move the command into a script"
                        ))
                    }
                    _ => suggest(name, cands.iter().map(String::as_str))
                        .map(|s| format!("did you mean `${{{s}}}`?")),
                }
            };
            ctx.diags.push(
                Diagnostic::error(format!("Unknown symbol in manifest: {name}"))
                    .at(at)
                    .hint_opt(hint),
            );
            None
        }
    }
}

/// `properties:NAME`, then `applications:<app>:NAME`, then top-level `NAME`; scalars only.
fn lookup<'a>(name: &str, ctx: &Ctx<'a, '_>) -> Option<&'a Node> {
    let scalar = |n: Option<&'a Node>| n.filter(|n| n.is_scalar() && !n.is_null());
    scalar(ctx.root.get("properties").and_then(|p| p.get(name)))
        .or_else(|| scalar(ctx.app.and_then(|a| a.get(name))))
        .or_else(|| scalar(ctx.root.get(name)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(url: &str) -> Target {
        Target {
            url: url.into(),
            random_word: "ab12".into(),
        }
    }

    #[test]
    fn target_symbols() {
        assert_eq!(t("https://api.example.org").target_base(), "example.org");
        assert_eq!(
            t("https://api.example.org:8443/").target_url(),
            "https://api.example.org"
        );
        assert_eq!(t("api.x.y.z").target_base(), "x.y.z");
    }
}
