//! Normalisation, as the client's `Decompose`, `TransformASStackato`, `TransformCFManifest` and
//! `TransformGlobal` did it: split the file into the stackato.yml app and the manifest.yml part,
//! canonicalise every legacy spelling, key apps by name, make paths absolute, turn `depends-on`
//! paths into names, and apply the legacy-framework rules.
//!
//! The output is the client's in-memory manifest (`debug-manifest`): raw text values, nothing
//! converted to numbers yet.

use std::path::{Component, Path, PathBuf};

use crate::diag::{Diagnostic, Span, suggest};
use crate::manifest::keys::{self, STACKATO_ONLY};
use crate::yaml::{Entry, Node, Value};

/// Where an application entry came from; decides the "no name" message.
enum Origin<'a> {
    Stackato,
    ByPath(&'a str),
    ByIndex(usize),
}

/// The normalised manifest: the whole tree plus where each app lives on disk.
pub(crate) struct Normalized {
    pub tree: Node,
}

/// What in a manifest's raw shape (before normalisation erases it) marks the 3.x format: an
/// `applications:` sequence (CF v2), or an application entry with a `stackato:` sub-mapping.
/// A path-keyed `applications:` mapping is the 2.x (CF v1) form and is not a sign. `buildpack:`
/// and a Procfile are the other signs; the profile rule reads those from the typed apps.
pub(crate) fn v3_signs(root: &Node) -> Vec<String> {
    let mut signs = Vec::new();
    let Some(apps) = root.get("applications") else {
        return signs;
    };
    let entries: Vec<&Node> = match &apps.value {
        Value::Seq(items) => {
            signs.push("`applications:` is a list (the 3.x manifest.yml form)".to_string());
            items.iter().collect()
        }
        Value::Map(items) => items.iter().map(|e| &e.value).collect(),
        _ => Vec::new(),
    };
    if entries
        .iter()
        .any(|a| a.get("stackato").is_some_and(|s| s.as_map().is_some()))
    {
        signs.push("an application has a `stackato:` sub-mapping (3.x manifest.yml)".to_string());
    }
    signs
}

fn key(text: &str, span: Span) -> Node {
    Node::scalar(text, span)
}

/// Normalise a merged root mapping read from a file in `base_dir`.
pub(crate) fn normalize(root: Node, base_dir: &Path, diags: &mut Vec<Diagnostic>) -> Normalized {
    let root_span = root.span;
    let entries = match root.value {
        Value::Map(e) => e,
        _ => Vec::new(),
    };

    // Decompose.
    let mut stackato_part: Vec<Entry> = Vec::new();
    let mut applications: Option<Entry> = None;
    let mut properties: Vec<Entry> = Vec::new();
    let mut extra_top: Vec<Entry> = Vec::new();
    for e in entries {
        let k = e.key.scalar_text().unwrap_or_default().to_string();
        if keys::is_stackato_key(&k) {
            stackato_part.push(e);
        } else if k == "applications" {
            applications = Some(e);
        } else if k == "properties" {
            match e.value.as_map() {
                Some(m) => properties.extend(m.iter().cloned()),
                None if e.value.is_null() => {}
                None => diags.push(
                    Diagnostic::error(format!(
                        "Expected a yaml mapping for key \"properties\", got a {}",
                        e.value.type_word()
                    ))
                    .at(e.value.span),
                ),
            }
        } else if k == "inherit" {
            // Consumed by the loader.
        } else {
            let hint = if diags.len() < 300 {
                unknown_top_hint(&k)
            } else {
                None
            };
            diags.push(
                Diagnostic::warning(format!("Unknown key \"{k}\""))
                    .at(e.key.span)
                    .label("not a stackato.yml key; kept only as a ${…} symbol")
                    .hint_opt(hint),
            );
            properties.push(e.clone());
            extra_top.push(e);
        }
    }

    let mut apps: Vec<Node> = Vec::new();
    let mut has_applications = false;
    let mut defaults: Option<Node> = None;

    if let Some(app_entry) = applications {
        match app_entry.value.value {
            Value::Map(items) => {
                has_applications = true;
                for item in items {
                    let path = item.key.scalar_text().unwrap_or(".").to_string();
                    if item.value.as_map().is_none() {
                        diags.push(
                            Diagnostic::error(format!(
                                "Expected a yaml mapping for application @ path \"{path}\", got a {}",
                                item.value.type_word()
                            ))
                            .at(item.value.span),
                        );
                        continue;
                    }
                    if let Some(app) = transform_app(
                        item.value,
                        Some((&path, item.key.span)),
                        Origin::ByPath(&path),
                        diags,
                    ) {
                        apps.push(app);
                    }
                }
            }
            Value::Seq(items) => {
                has_applications = true;
                for (i, item) in items.into_iter().enumerate() {
                    if item.as_map().is_none() {
                        diags.push(
                            Diagnostic::error(format!(
                                "Expected a yaml mapping for application <{i}>, got a {}",
                                item.type_word()
                            ))
                            .at(item.span),
                        );
                        continue;
                    }
                    if let Some(app) = transform_app(item, None, Origin::ByIndex(i), diags) {
                        apps.push(app);
                    }
                }
            }
            _ if app_entry.value.is_null() => {}
            _ => diags.push(
                Diagnostic::error(format!(
                    "Expected a yaml mapping or sequence for key \"applications\", got a {}",
                    app_entry.value.type_word()
                ))
                .at(app_entry.value.span),
            ),
        }
    }

    if !stackato_part.is_empty() {
        let has_name = stackato_part
            .iter()
            .any(|e| e.key.scalar_text() == Some("name"));
        let span = stackato_part[0].key.span;
        let part = Node::map(stackato_part, span);
        if !has_name && has_applications {
            // Cloud Foundry style: top-level keys are defaults for every listed app.
            let mut part = part;
            part.insert(key("name", span), Node::scalar("-defaults-", span));
            defaults = transform_app(part, None, Origin::Stackato, diags);
        } else if let Some(app) = transform_app(part, None, Origin::Stackato, diags) {
            // The stackato part is merged over a manifest app of the same name.
            let name = app_name(&app).to_string();
            match apps.iter().position(|a| app_name(a) == name) {
                Some(i) => {
                    let low = apps.remove(i);
                    apps.insert(i, crate::yaml::deep_merge(app, low));
                }
                None => apps.insert(0, app),
            }
        }
    }

    // Unknown top-level keys are defaults of every application (the entry's own value wins).
    if !extra_top.is_empty() {
        let d = Node::map(extra_top.clone(), root_span);
        apps = apps
            .into_iter()
            .map(|a| crate::yaml::deep_merge(a, d.clone()))
            .collect();
    }
    if let Some(d) = defaults {
        apps = apps
            .into_iter()
            .map(|a| {
                let mut d = d.clone();
                d.remove("path");
                d.remove("name");
                crate::yaml::deep_merge(a, d)
            })
            .collect();
    }

    // TransformGlobal: absolute paths, dependencies by name, legacy rules.
    for app in &mut apps {
        let rel = app
            .get("path")
            .and_then(Node::as_str)
            .unwrap_or(".")
            .to_string();
        let span = app.get("path").map_or(app.span, |n| n.span);
        let abs = absolutize(base_dir, &rel);
        app.insert(
            key("path", span),
            Node::scalar(abs.display().to_string(), span),
        );
    }
    fix_dependencies(&mut apps, diags);
    for app in &mut apps {
        legacy_rules(app, diags);
    }

    // Assemble the output tree.
    let mut out: Vec<Entry> = Vec::new();
    let mut app_map: Vec<Entry> = Vec::new();
    let mut names: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for app in apps {
        let name = app_name(&app).to_string();
        let span = app.get("name").map_or(app.span, |n| n.span);
        if let Some(prev) = names.get(&name).map(|&i| &app_map[i]) {
            diags.push(
                Diagnostic::error(format!(
                    "Two applications are named \"{name}\"; names must be unique"
                ))
                .at(span)
                .related("first defined here", prev.key.span),
            );
            continue;
        }
        names.insert(name.clone(), app_map.len());
        app_map.push(Entry {
            key: key(&name, span),
            value: app,
        });
    }
    out.push(Entry {
        key: key("applications", root_span),
        value: Node::map(app_map, root_span),
    });
    if !properties.is_empty() {
        out.push(Entry {
            key: key("properties", root_span),
            value: Node::map(properties, root_span),
        });
    }
    out.extend(extra_top);
    Normalized {
        tree: Node::map(out, root_span),
    }
}

pub(crate) fn app_name(app: &Node) -> &str {
    app.get("name").and_then(Node::scalar_text).unwrap_or("")
}

fn unknown_top_hint(k: &str) -> Option<String> {
    if keys::HOOK_KEYS.contains(&k) {
        return Some(format!(
            "hooks go under `hooks:`, e.g.\nhooks:\n  {k}:\n    - …"
        ));
    }
    if k == "web" {
        return Some("the web command goes under `processes:`, as `processes: {web: …}`".into());
    }
    suggest(k, keys::stackato_keys().chain(["applications", "inherit"]))
        .map(|s| format!("did you mean `{s}`?"))
}

/// `TransformASStackato` / `TransformCFManifestApp` for one application mapping.
fn transform_app(
    input: Node,
    path_key: Option<(&str, Span)>,
    origin: Origin<'_>,
    diags: &mut Vec<Diagnostic>,
) -> Option<Node> {
    let span = input.span;
    let entries = match input.value {
        Value::Map(e) => e,
        _ => return None,
    };
    let mut top: Vec<Entry> = Vec::new();
    let mut st: Vec<Entry> = Vec::new();
    let mut st_nested: Option<Node> = None;
    let mut cf_env: Option<Node> = None;
    let mut mem: Option<Entry> = None;
    let mut memory: Option<Entry> = None;
    let mut disk: Option<Entry> = None;
    let mut disk_quota: Option<Entry> = None;
    let mut runtime_from_framework: Option<Node> = None;
    let mut urls: Vec<Node> = Vec::new();
    let mut url_span: Option<Span> = None;
    let mut hosts: Vec<Node> = Vec::new();
    let mut domain: Option<Node> = None;
    let mut no_route: Option<Node> = None;
    let mut path: Option<Entry> = None;

    for e in entries {
        let k = e.key.scalar_text().unwrap_or_default().to_string();
        match k.as_str() {
            "mem" => mem = Some(e),
            "memory" => memory = Some(e),
            "disk" => disk = Some(e),
            "disk_quota" => disk_quota = Some(e),
            "app-dir" | "path" => {
                if path.is_none() || k == "app-dir" {
                    path = Some(e);
                }
            }
            "framework" => {
                let (fw, rt) = transform_framework(e.value, diags);
                runtime_from_framework = rt;
                top.push(Entry {
                    key: e.key,
                    value: fw,
                });
            }
            "services" => {
                let s = transform_services(e.value, diags);
                top.push(Entry {
                    key: e.key,
                    value: s,
                });
            }
            "url" | "urls" => {
                url_span.get_or_insert(e.key.span);
                match e.value.value {
                    Value::Seq(items) => urls.extend(items),
                    Value::Scalar(_) if e.value.is_null() => {}
                    Value::Scalar(_) => urls.push(e.value),
                    Value::Map(_) => diags.push(
                        Diagnostic::error(format!(
                            "Expected a yaml scalar or sequence for key \"{k}\", got a mapping"
                        ))
                        .at(e.value.span),
                    ),
                }
            }
            "host" | "subdomain" => match e.value.value {
                Value::Seq(items) => hosts.extend(items),
                _ => hosts.push(e.value),
            },
            "domain" => domain = Some(e.value),
            "no-route" => no_route = Some(e.value),
            "depends-on" => {
                let v = match e.value.value {
                    Value::Scalar(_) if !e.value.is_null() => {
                        Node::seq(vec![e.value.clone()], e.value.span)
                    }
                    _ => e.value,
                };
                top.push(Entry {
                    key: e.key,
                    value: v,
                });
            }
            "env" => cf_env = Some(transform_env(e.value)),
            "drain" => st.push(Entry {
                key: e.key,
                value: transform_drain(e.value),
            }),
            "placementzone" => st.push(Entry {
                key: key("placement-zone", e.key.span),
                value: e.value,
            }),
            "stackato" => match e.value.value {
                Value::Map(_) => st_nested = Some(e.value),
                _ if e.value.is_null() => {}
                _ => diags.push(
                    Diagnostic::error(format!(
                        "Expected a yaml mapping for key \"stackato\", got a {}",
                        e.value.type_word()
                    ))
                    .at(e.value.span),
                ),
            },
            _ if STACKATO_ONLY.contains(&k.as_str()) => st.push(e),
            _ => top.push(e),
        }
    }

    // mem wins over memory; disk_quota wins over disk.
    if let Some(m) = mem.or(memory) {
        top.push(Entry {
            key: key("memory", m.key.span),
            value: m.value,
        });
    }
    if let Some(d) = disk_quota.or(disk) {
        top.push(Entry {
            key: key("disk_quota", d.key.span),
            value: d.value,
        });
    }
    if let Some(rt) = runtime_from_framework
        && !top.iter().any(|e| e.key.scalar_text() == Some("runtime"))
    {
        top.push(Entry {
            key: key("runtime", rt.span),
            value: rt,
        });
    }

    // URLs: url/urls, then host/subdomain with domain; no-route empties the list.
    let name_text = top
        .iter()
        .find(|e| e.key.scalar_text() == Some("name"))
        .and_then(|e| e.value.as_str())
        .map(str::to_string);
    let domain_text = domain.as_ref().and_then(Node::as_str).map(str::to_string);
    let dom = domain_text
        .clone()
        .unwrap_or_else(|| "${space-base}".into());
    let mut any_url_key = url_span.is_some();
    for h in hosts {
        any_url_key = true;
        if let Some(text) = h.as_str() {
            urls.push(Node::scalar(format!("{text}.{dom}"), h.span));
        }
    }
    if let (Some(d), true) = (&domain, !any_url_key)
        && let Some(dt) = &domain_text
    {
        any_url_key = true;
        let n = name_text.clone().unwrap_or_else(|| "${name}".into());
        urls.push(Node::scalar(format!("{n}.{dt}"), d.span));
    }
    if let Some(nr) = &no_route {
        match nr.as_str().map(keys::parse_bool) {
            Some(Some(true)) => {
                any_url_key = true;
                urls.clear();
            }
            Some(Some(false)) | None => {}
            Some(None) => diags.push(
                Diagnostic::error(format!(
                    "Expected boolean value for key \"no-route\", got \"{}\"",
                    nr.scalar_text().unwrap_or_default()
                ))
                .at(nr.span),
            ),
        }
    }
    if any_url_key {
        let s = url_span.unwrap_or(span);
        top.push(Entry {
            key: key("urls", s),
            value: Node::seq(urls, s),
        });
    }

    // Path.
    let path_node = match (&path, path_key) {
        (Some(p), _) => p.value.clone(),
        (None, Some((p, s))) => Node::scalar(p, s),
        (None, None) => Node::scalar(".", span),
    };

    // stackato: nested mapping, explicit top-level stackato keys and CF env win over it.
    let mut stackato = st_nested.unwrap_or_else(|| Node::map(Vec::new(), span));
    if let Some(env) = stackato.remove("env") {
        let normalised = transform_env(env.value);
        stackato.insert(env.key, normalised);
    }
    if let Some(drain) = stackato.remove("drain") {
        let normalised = transform_drain(drain.value);
        stackato.insert(drain.key, normalised);
    }
    let explicit = Node::map(st, span);
    let mut stackato = crate::yaml::deep_merge(explicit, stackato);
    if let Some(env) = cf_env {
        let merged = match stackato.remove("env") {
            Some(old) => crate::yaml::deep_merge(env, old.value),
            None => env,
        };
        stackato.insert(key("env", merged.span), merged);
    }
    for e in stackato.as_map_mut().into_iter().flatten() {
        if e.key.scalar_text() == Some("env") {
            e.value = transform_env(std::mem::replace(&mut e.value, Node::null(span)));
        }
    }

    // Assemble: name, path first, then the rest, then stackato.
    let mut out: Vec<Entry> = Vec::new();
    match top.iter().position(|e| e.key.scalar_text() == Some("name")) {
        Some(i) => {
            let e = top.remove(i);
            if e.value.as_str().is_none() {
                diags.push(
                    Diagnostic::error(format!(
                        "Expected a yaml scalar for key \"name\", got {}",
                        e.value.kind_name()
                    ))
                    .at(e.value.span),
                );
                return None;
            }
            out.push(e);
        }
        None => {
            let msg = match origin {
                Origin::Stackato => "The stackato application has no name".to_string(),
                Origin::ByPath(p) => format!("Application @ path \"{p}\" has no name"),
                Origin::ByIndex(i) => format!("Application <{i}> has no name"),
            };
            diags.push(
                Diagnostic::error(msg)
                    .at(span)
                    .hint("add a `name:` key, e.g. `name: myapp`"),
            );
            return None;
        }
    }
    out.push(Entry {
        key: key("path", path_node.span),
        value: path_node,
    });
    out.extend(top);
    if stackato.as_map().is_some_and(|m| !m.is_empty()) {
        out.push(Entry {
            key: key("stackato", span),
            value: stackato,
        });
    }
    Some(Node::map(out, span))
}

/// `framework: X` → `{name: X}`; `type` → `name`; `runtime` moves to the app.
fn transform_framework(fw: Node, diags: &mut Vec<Diagnostic>) -> (Node, Option<Node>) {
    let span = fw.span;
    match fw.value {
        Value::Scalar(_) => {
            let n = Node::map(
                vec![Entry {
                    key: key("name", span),
                    value: fw,
                }],
                span,
            );
            (n, None)
        }
        Value::Map(entries) => {
            let mut out = Vec::new();
            let mut runtime = None;
            let mut name: Option<Entry> = None;
            for e in entries {
                match e.key.scalar_text().unwrap_or_default() {
                    "type" => {
                        name = Some(Entry {
                            key: key("name", e.key.span),
                            value: e.value,
                        })
                    }
                    "name" => {
                        if name.is_none() {
                            name = Some(e)
                        }
                    }
                    "runtime" => runtime = Some(e.value),
                    _ => out.push(e),
                }
            }
            if let Some(n) = name {
                out.insert(0, n);
            }
            (Node::map(out, span), runtime)
        }
        Value::Seq(_) => {
            diags.push(
                Diagnostic::error(
                    "Expected a yaml scalar or mapping for key \"framework\", got a sequence",
                )
                .at(span),
            );
            (fw, None)
        }
    }
}

/// Services in all forms → `{name: {type: T, …}}`.
fn transform_services(svc: Node, diags: &mut Vec<Diagnostic>) -> Node {
    let span = svc.span;
    match svc.value {
        Value::Map(entries) => {
            let mut out: Vec<Entry> = Vec::new();
            for e in entries {
                let k = e.key.scalar_text().unwrap_or_default().to_string();
                let (name_node, body) = match &e.value.value {
                    Value::Scalar(_) if e.value.is_null() => {
                        diags.push(
                            Diagnostic::error(format!("Service \"{k}\" has no type"))
                                .at(e.key.span)
                                .hint(format!(
                                    "write `{k}: mysql` (or postgresql, redis, memcached, …)"
                                )),
                        );
                        continue;
                    }
                    Value::Scalar(s) => {
                        let v = s.text.clone();
                        let key_is = keys::is_service_type(&k);
                        let val_is = keys::is_service_type(&v);
                        if val_is {
                            // name: type (preferred). Both types → 3.x reads it this way too.
                            (
                                e.key.clone(),
                                Node::map(
                                    vec![Entry {
                                        key: key("type", e.value.span),
                                        value: e.value.clone(),
                                    }],
                                    e.value.span,
                                ),
                            )
                        } else if key_is {
                            diags.push(
                                Diagnostic::warning(format!(
                                    "Deprecated syntax (vendor: name) for service \"{v}\""
                                ))
                                .at(e.key.span)
                                .hint(format!("write it as `{v}: {k}`")),
                            );
                            (
                                Node::scalar(v.clone(), e.value.span),
                                Node::map(
                                    vec![Entry {
                                        key: key("type", e.key.span),
                                        value: Node::scalar(k.clone(), e.key.span),
                                    }],
                                    e.value.span,
                                ),
                            )
                        } else {
                            let hint = suggest(&v, keys::SERVICE_TYPES.iter().copied())
                                .map(|s| format!("did you mean `{s}`?"));
                            diags.push(
                                Diagnostic::error(format!(
                                    "Neither [{k}] nor [{v}] are supported system services"
                                ))
                                .at(e.value.span)
                                .label("unknown service type")
                                .hint(hint.unwrap_or_else(|| {
                                    format!("supported types: {}", keys::SERVICE_TYPES.join(", "))
                                })),
                            );
                            continue;
                        }
                    }
                    Value::Map(_) => {
                        let mut body = e.value.clone();
                        // label > type > vendor.
                        let label = body.remove("label");
                        let ty = body.remove("type");
                        let vendor = body.remove("vendor");
                        let chosen = label.or(ty).or(vendor);
                        let mut m = Vec::new();
                        if let Some(c) = chosen {
                            m.push(Entry {
                                key: key("type", c.key.span),
                                value: c.value,
                            });
                        }
                        m.extend(body.as_map().unwrap_or_default().iter().cloned());
                        (e.key.clone(), Node::map(m, e.value.span))
                    }
                    Value::Seq(_) => {
                        diags.push(
                            Diagnostic::error(format!(
                                "Expected a yaml scalar or mapping for service \"{k}\", got a sequence"
                            ))
                            .at(e.value.span),
                        );
                        continue;
                    }
                };
                out.push(Entry {
                    key: name_node,
                    value: body,
                });
            }
            Node::map(out, span)
        }
        // CF v2: a list of names of existing services to bind.
        Value::Seq(items) => {
            let mut out = Vec::new();
            for it in items {
                match it.as_str() {
                    Some(name) => out.push(Entry {
                        key: Node::scalar(name, it.span),
                        value: Node::map(Vec::new(), it.span),
                    }),
                    None => diags.push(
                        Diagnostic::error(format!(
                            "Expected a yaml scalar for element of sequence key \"services\", got a {}",
                            it.type_word()
                        ))
                        .at(it.span),
                    ),
                }
            }
            Node::map(out, span)
        }
        Value::Scalar(_) if svc.is_null() => Node::map(Vec::new(), span),
        Value::Scalar(_) => {
            diags.push(
                Diagnostic::error("Expected a yaml mapping for key \"services\", got a scalar")
                    .at(span)
                    .hint("write one service per line: `services:\\n  mydb: mysql`"),
            );
            Node::map(Vec::new(), span)
        }
    }
}

/// `VAR: value` → `VAR: {default: value}`.
pub(crate) fn transform_env(env: Node) -> Node {
    wrap_scalars(env, "default")
}

/// `name: url` → `name: {url: url}`.
fn transform_drain(d: Node) -> Node {
    wrap_scalars(d, "url")
}

/// In a mapping, each scalar value `v` becomes `{field: v}`; mappings stay as they are.
fn wrap_scalars(node: Node, field: &str) -> Node {
    let span = node.span;
    match node.value {
        Value::Map(entries) => Node::map(
            entries
                .into_iter()
                .map(|e| {
                    let value = if e.value.is_scalar() {
                        let vs = e.value.span;
                        Node::map(
                            vec![Entry {
                                key: key(field, vs),
                                value: e.value,
                            }],
                            vs,
                        )
                    } else {
                        e.value
                    };
                    Entry { key: e.key, value }
                })
                .collect(),
            span,
        ),
        v => Node { value: v, span },
    }
}

/// `base/rel` made absolute and clean; symlinks resolved when the directory exists.
pub(crate) fn absolutize(base: &Path, rel: &str) -> PathBuf {
    let joined = base.join(rel);
    joined.canonicalize().unwrap_or_else(|_| lexical(&joined))
}

/// `p` with `.` and `..` resolved without looking at the disk (so without following links).
pub(crate) fn lexical(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

/// `depends-on` entries given as paths (CF v1 form) become app names; unknown ones are errors.
fn fix_dependencies(apps: &mut [Node], diags: &mut Vec<Diagnostic>) {
    let index: Vec<(String, String)> = apps
        .iter()
        .map(|a| {
            (
                app_name(a).to_string(),
                a.get("path")
                    .and_then(Node::as_str)
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect();
    let names: std::collections::HashSet<String> = index.iter().map(|(n, _)| n.clone()).collect();
    let by_path: std::collections::HashMap<&str, &str> = index
        .iter()
        .map(|(n, p)| (p.as_str(), n.as_str()))
        .collect();
    for app in apps.iter_mut() {
        let this_path = app
            .get("path")
            .and_then(Node::as_str)
            .map(PathBuf::from)
            .unwrap_or_default();
        let base = this_path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let Some(dep) = app.get_mut("depends-on") else {
            continue;
        };
        let Value::Seq(items) = &mut dep.value else {
            continue;
        };
        for it in items.iter_mut() {
            let Some(r) = it.as_str().map(str::to_string) else {
                continue;
            };
            if r.contains("${") || names.contains(r.as_str()) {
                continue;
            }
            // A path: relative to the manifest's directory (the parent of the app dirs).
            let candidates = [absolutize(&base, &r), absolutize(&this_path, &r)];
            let found = candidates
                .iter()
                .find_map(|c| by_path.get(c.display().to_string().as_str()).copied());
            match found {
                Some(n) => *it = Node::scalar(n.to_string(), it.span),
                None => diags.push(
                    Diagnostic::error(format!(
                        "Application depends on unknown application \"{r}\""
                    ))
                    .at(it.span)
                    .hint_opt(
                        (index.len() < 1000)
                            .then(|| suggest(&r, index.iter().map(|(n, _)| n.as_str())))
                            .flatten()
                            .map(|s| format!("did you mean `{s}`?")),
                    ),
                ),
            }
        }
    }
}

/// Legacy buildpack rules: `force-war-unpacking: yes` forced; workers get `urls: []`.
fn legacy_rules(app: &mut Node, diags: &mut Vec<Diagnostic>) {
    let Some(fw) = app.get("framework") else {
        return;
    };
    let fw_span = fw.span;
    let fw_name = fw.get("name").and_then(Node::as_str).map(str::to_string);
    let web_null = app
        .get("stackato")
        .and_then(|s| s.get("processes"))
        .and_then(|p| p.get("web"))
        .is_some_and(Node::is_null);

    let mut stackato = app
        .remove("stackato")
        .map(|e| e.value)
        .unwrap_or_else(|| Node::map(Vec::new(), app.span));
    match stackato.get("force-war-unpacking") {
        Some(v) => match v.scalar_text().map(keys::parse_bool) {
            Some(Some(true)) => {}
            Some(Some(false)) => diags.push(
                Diagnostic::error(
                    "Legacy-based application needs force-war-unpacking, user-set value is in conflict.",
                )
                .at(v.span)
                .hint("remove `force-war-unpacking`, or remove `framework:` to use a buildpack"),
            ),
            _ => diags.push(
                Diagnostic::error(format!(
                    "Expected boolean value for key \"stackato:force-war-unpacking\", got \"{}\"",
                    v.scalar_text().unwrap_or_default()
                ))
                .at(v.span)
                .hint("use yes or no"),
            ),
        },
        None => stackato.insert(
            key("force-war-unpacking", fw_span),
            Node::scalar("yes", fw_span),
        ),
    }
    app.insert(key("stackato", stackato.span), stackato);

    if fw_name.as_deref() == Some("standalone") || web_null {
        if let Some(u) = app.get("urls")
            && u.as_seq().is_some_and(|s| !s.is_empty())
        {
            diags.push(
                    Diagnostic::error("Legacy-based worker application requesting an url mapping")
                        .at(u.span)
                        .hint("a worker (framework standalone or `processes: web: ~`) gets no URL; remove `url:`"),
                );
        }
        let span = app.span;
        app.insert(key("urls", span), Node::seq(Vec::new(), span));
    }
}
