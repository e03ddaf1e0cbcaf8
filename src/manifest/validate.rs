//! Structural validation of the normalised manifest, as the client's `ValidateStructure`: wrong
//! shapes are errors, unknown keys are warnings, a few unknown sub-keys are errors. Messages use
//! the client's wording and key paths (without the `stackato:` prefix).

use crate::diag::{Diagnostic, suggest};
use crate::manifest::keys::{self, parse_bool};
use crate::manifest::model::{Manifest, Spanned, Web};
use crate::platform::profile::Profile;
use crate::yaml::{Node, Value};

const APP_KEYS: &[&str] = &[
    "name",
    "path",
    "command",
    "instances",
    "memory",
    "disk_quota",
    "framework",
    "runtime",
    "services",
    "urls",
    "depends-on",
    "buildpack",
    "stack",
    "docker_image",
    "timeout",
    "stackato",
];

const APP_SCALARS: &[&str] = &[
    "command",
    "instances",
    "memory",
    "disk_quota",
    "runtime",
    "buildpack",
    "stack",
    "docker_image",
    "timeout",
];

/// Validate every application of a normalised tree.
pub(crate) fn validate(tree: &Node, diags: &mut Vec<Diagnostic>) {
    nul_bytes(tree, diags);
    let Some(apps) = tree.get("applications").and_then(Node::as_map) else {
        return;
    };
    for app in apps {
        validate_app(&app.value, diags);
    }
}

/// A NUL character (YAML's `"\0"`) in any key or value: no environment variable, command
/// line or path can hold one, so it is refused here, where it was written.
fn nul_bytes(tree: &Node, diags: &mut Vec<Diagnostic>) {
    let mut stack = vec![tree];
    while let Some(n) = stack.pop() {
        match &n.value {
            Value::Scalar(_) => {
                if n.scalar_text().is_some_and(|t| t.contains('\0')) {
                    diags.push(
                        Diagnostic::error(
                            "a NUL character (\\0) here; no command, path or environment variable can contain one",
                        )
                        .at(n.span),
                    );
                }
            }
            Value::Seq(items) => stack.extend(items.iter()),
            Value::Map(entries) => {
                for e in entries {
                    stack.push(&e.key);
                    stack.push(&e.value);
                }
            }
        }
    }
}

fn symbolic(n: &Node) -> bool {
    n.scalar_text().is_some_and(|s| s.contains("${"))
}

fn unknown(path: &str, k: &Node, candidates: &[&str], diags: &mut Vec<Diagnostic>) {
    let name = k.scalar_text().unwrap_or_default();
    // Past a few hundred problems nobody reads hints; don't spend time computing them.
    let hint = (diags.len() < 300)
        .then(|| suggest(name, candidates.iter().copied()).map(|s| format!("did you mean `{s}`?")))
        .flatten();
    let full = if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}:{name}")
    };
    diags.push(
        Diagnostic::warning(format!("Unknown key \"{full}\""))
            .at(k.span)
            .label("ignored")
            .hint_opt(hint),
    );
}

fn expect_scalar(path: &str, n: &Node, diags: &mut Vec<Diagnostic>) -> bool {
    if n.is_scalar() {
        return true;
    }
    diags.push(
        Diagnostic::error(format!(
            "Expected a yaml scalar for key \"{path}\", got a {}",
            n.type_word()
        ))
        .at(n.span),
    );
    false
}

fn expect_map<'a>(path: &str, n: &'a Node, diags: &mut Vec<Diagnostic>) -> Option<&'a Node> {
    if n.as_map().is_some() {
        return Some(n);
    }
    if n.is_null() {
        return None;
    }
    diags.push(
        Diagnostic::error(format!(
            "Expected a yaml mapping for key \"{path}\", got a {}",
            n.type_word()
        ))
        .at(n.span),
    );
    None
}

/// Scalar or list of scalars (hooks, cron, requirement lists).
fn expect_scalar_or_list(path: &str, n: &Node, diags: &mut Vec<Diagnostic>, hint: Option<&str>) {
    match &n.value {
        Value::Scalar(_) => {}
        Value::Seq(items) => {
            for it in items {
                if !it.is_scalar() {
                    diags.push(
                        Diagnostic::error(format!(
                            "Expected a yaml scalar for element of sequence key \"{path}\", got a {}",
                            it.type_word()
                        ))
                        .at(it.span)
                        .hint_opt(hint.map(str::to_string)),
                    );
                }
            }
        }
        Value::Map(_) => diags.push(
            Diagnostic::error(format!(
                "Expected a yaml scalar or sequence for key \"{path}\", got a mapping"
            ))
            .at(n.span)
            .hint_opt(hint.map(str::to_string)),
        ),
    }
}

fn expect_list_of_scalars(path: &str, n: &Node, diags: &mut Vec<Diagnostic>) {
    match &n.value {
        Value::Seq(_) => expect_scalar_or_list(path, n, diags, None),
        _ if n.is_null() => {}
        _ => diags.push(
            Diagnostic::error(format!(
                "Expected a yaml sequence for key \"{path}\", got a {}",
                n.type_word()
            ))
            .at(n.span)
            .hint(format!("write it as a list: `{path}: [a, b]`")),
        ),
    }
}

fn expect_bool(path: &str, n: &Node, diags: &mut Vec<Diagnostic>) {
    if symbolic(n) {
        return;
    }
    let ok = n.scalar_text().and_then(parse_bool).is_some();
    if !ok {
        diags.push(
            Diagnostic::error(format!(
                "Expected boolean value for key \"{path}\", got \"{}\"",
                n.scalar_text().unwrap_or(n.type_word())
            ))
            .at(n.span)
            .hint("use yes/no (or true/false, on/off)"),
        );
    }
}

fn validate_app(app: &Node, diags: &mut Vec<Diagnostic>) {
    let Some(entries) = app.as_map() else { return };
    for e in entries {
        let k = e.key.scalar_text().unwrap_or_default();
        if !APP_KEYS.contains(&k) {
            let mut cands: Vec<&str> = APP_KEYS.to_vec();
            cands.extend(keys::stackato_keys());
            unknown("", &e.key, &cands, diags);
            continue;
        }
        let v = &e.value;
        match k {
            _ if APP_SCALARS.contains(&k) => {
                expect_scalar(k, v, diags);
            }
            "framework" => validate_framework(v, diags),
            "services" => validate_services(v, diags),
            "urls" | "depends-on" => expect_list_of_scalars(k, v, diags),
            "stackato" => validate_stackato(v, diags),
            _ => {}
        }
    }
}

fn validate_framework(v: &Node, diags: &mut Vec<Diagnostic>) {
    let Some(fw) = expect_map("framework", v, diags) else {
        return;
    };
    for e in fw.as_map().unwrap_or_default() {
        let k = e.key.scalar_text().unwrap_or_default();
        if !keys::FRAMEWORK_KEYS.contains(&k) {
            unknown("framework", &e.key, keys::FRAMEWORK_KEYS, diags);
        } else {
            expect_scalar(&format!("framework:{k}"), &e.value, diags);
        }
    }
    if let Some(n) = fw.get("name").and_then(Node::as_str)
        && !n.contains("${")
        && !keys::FRAMEWORKS.contains(&n)
    {
        let hint = suggest(n, keys::FRAMEWORKS.iter().copied())
            .map(|s| format!("did you mean `{s}`?"))
            .unwrap_or_else(|| format!("known frameworks: {}", keys::FRAMEWORKS.join(", ")));
        diags.push(
            Diagnostic::warning(format!("Unknown framework \"{n}\""))
                .at(fw.get("name").map_or(fw.span, |x| x.span))
                .hint(hint),
        );
    }
}

fn validate_services(v: &Node, diags: &mut Vec<Diagnostic>) {
    let Some(svcs) = v.as_map() else { return };
    for s in svcs {
        let name = s.key.scalar_text().unwrap_or_default();
        let Some(body) = s.value.as_map() else {
            continue;
        };
        for e in body {
            let k = e.key.scalar_text().unwrap_or_default();
            let path = format!("services:{name}:{k}");
            match k {
                "type" | "version" | "provider" | "plan" | "syslog" => {
                    expect_scalar(&path, &e.value, diags);
                }
                "tags" => expect_list_of_scalars(&path, &e.value, diags),
                "parameters" | "credentials" => {
                    expect_map(&path, &e.value, diags);
                }
                _ => unknown(
                    &format!("services:{name}"),
                    &e.key,
                    keys::SERVICE_KEYS,
                    diags,
                ),
            }
        }
        let ty = s.value.get("type").and_then(Node::as_str);
        if let Some(t) = ty {
            if !t.contains("${") && !keys::is_service_type(t) {
                let hint = suggest(t, keys::SERVICE_TYPES.iter().copied())
                    .map(|x| format!("did you mean `{x}`?"))
                    .unwrap_or_else(|| {
                        format!("supported types: {}", keys::SERVICE_TYPES.join(", "))
                    });
                diags.push(
                    Diagnostic::error(format!("Service \"{name}\" has unsupported type \"{t}\""))
                        .at(s.value.get("type").map_or(s.value.span, |n| n.span))
                        .hint(hint),
                );
            }
            if t == "user-provided" && s.value.get("credentials").is_none() {
                diags.push(
                    Diagnostic::error(format!(
                        "User-provided service \"{name}\" needs a \"credentials\" mapping"
                    ))
                    .at(s.value.span),
                );
            }
        }
    }
}

fn validate_stackato(v: &Node, diags: &mut Vec<Diagnostic>) {
    let Some(st) = expect_map("stackato", v, diags) else {
        return;
    };
    for e in st.as_map().unwrap_or_default() {
        let k = e.key.scalar_text().unwrap_or_default();
        let v = &e.value;
        match k {
            "env" => validate_env(v, diags),
            "hooks" => validate_hooks(v, diags),
            "processes" => validate_processes(v, diags),
            "min_version" => validate_min_version(v, diags),
            "requirements" => validate_requirements(v, diags),
            "cron" => expect_scalar_or_list(
                "cron",
                v,
                diags,
                Some("quote each cron line: - \"*/5 * * * * cmd\""),
            ),
            "ignores" => expect_list_of_scalars("ignores", v, diags),
            "drain" => validate_drain(v, diags),
            "placement-zone" | "description" => {
                expect_scalar(k, v, diags);
            }
            "sso-enabled" | "force-war-unpacking" => expect_bool(k, v, diags),
            "autoscale" => validate_autoscale(v, diags),
            _ => unknown("", &e.key, crate::manifest::keys::STACKATO_ONLY, diags),
        }
    }
}

fn validate_env(v: &Node, diags: &mut Vec<Diagnostic>) {
    let Some(env) = expect_map("env", v, diags) else {
        return;
    };
    for var in env.as_map().unwrap_or_default() {
        let name = var.key.scalar_text().unwrap_or_default();
        let Some(attrs) = var.value.as_map() else {
            diags.push(
                Diagnostic::error(format!(
                    "Expected a yaml scalar or mapping for key \"env:{name}\", got a {}",
                    var.value.type_word()
                ))
                .at(var.value.span),
            );
            continue;
        };
        if !is_env_name(name) && !name.contains("${") {
            diags.push(
                Diagnostic::error(format!("Bad environment variable name \"{name}\""))
                    .at(var.key.span)
                    .hint("use letters, digits and underscores, not starting with a digit"),
            );
        }
        for a in attrs {
            let ak = a.key.scalar_text().unwrap_or_default();
            let path = format!("env:{name}:{ak}");
            match ak {
                "default" | "prompt" => {
                    expect_scalar(&path, &a.value, diags);
                }
                "required" | "inherit" | "hidden" => expect_bool(&path, &a.value, diags),
                "choices" => expect_list_of_scalars(&path, &a.value, diags),
                "scope" => {
                    if expect_scalar(&path, &a.value, diags) {
                        let s = a.value.scalar_text().unwrap_or_default();
                        if !matches!(s, "staging" | "runtime" | "both") && !s.contains("${") {
                            diags.push(
                                Diagnostic::error(format!(
                                    "Expected one of staging, runtime, both for key \"{path}\", got \"{s}\""
                                ))
                                .at(a.value.span),
                            );
                        }
                    }
                }
                _ => {
                    let hint = suggest(ak, keys::ENV_ATTRS.iter().copied())
                        .map(|s| format!("did you mean `{s}`?"))
                        .unwrap_or_else(|| format!("allowed: {}", keys::ENV_ATTRS.join(", ")));
                    diags.push(
                        Diagnostic::error(format!("Found illegal key {path}"))
                            .at(a.key.span)
                            .hint(hint),
                    );
                }
            }
        }
        let required = var
            .value
            .get("required")
            .and_then(Node::scalar_text)
            .and_then(parse_bool)
            .unwrap_or(false);
        if var.value.get("default").is_none() && !required {
            diags.push(
                Diagnostic::error(format!(
                    "Bad description of variable \"{name}\": not required, default value missing"
                ))
                .at(var.key.span)
                .hint("add `default: …` or `required: yes`"),
            );
        }
        if var
            .value
            .get("hidden")
            .is_some_and(|h| h.scalar_text().and_then(parse_bool) == Some(true))
            && var.value.get("choices").is_some()
        {
            diags.push(
                Diagnostic::error(format!(
                    "Variable \"{name}\": hidden and choices cannot be used together"
                ))
                .at(var.key.span),
            );
        }
    }
}

/// A shell identifier (see [`crate::shell::is_name`]).
pub fn is_env_name(s: &str) -> bool {
    crate::shell::is_name(s)
}

/// Names are data: application and service names (after `${…}` substitution) end up in
/// host names, directory names and variable names, so what can never be safe is refused at
/// its position: `/`, a `.` or `..` name, control characters, and (as the platform did) `.`
/// in an application name. Names that are only unusual keep working; an application name
/// that is not a host name label gets a warning when the platform would have built its URL
/// from it.
pub(crate) fn names(m: &Manifest, diags: &mut Vec<Diagnostic>) {
    for app in &m.apps {
        app_name(
            &app.name,
            app.urls.is_none() && app.web != Web::Worker,
            diags,
        );
        for s in &app.services {
            service_name(&s.name, diags);
        }
        // `env:` names written with `${…}` are checked once resolved.
        for v in app.env.iter().filter(|v| !is_env_name(&v.name.value)) {
            diags.push(
                Diagnostic::error(format!(
                    "Bad environment variable name \"{}\"",
                    v.name.value.escape_default()
                ))
                .at(v.name.span)
                .hint("use letters, digits and underscores, not starting with a digit"),
            );
        }
    }
}

/// The health manager's longest `timeout:` in seconds: 180 under Stackato 2.x, 1800 from 3.4.2
/// on (spec §4.6).
pub(crate) fn max_timeout(profile: Profile) -> u32 {
    match profile {
        Profile::V2 => 180,
        Profile::V3 => 1800,
    }
}

/// Warn at each `timeout:` above the platform's maximum under `profile` (the manifest's
/// default profile, with `why` it was chosen): the platform would not wait that long.
pub(crate) fn timeouts(m: &Manifest, profile: Profile, why: &str, diags: &mut Vec<Diagnostic>) {
    let max = max_timeout(profile);
    for app in &m.apps {
        let Some(t) = &app.timeout else { continue };
        if t.value <= max {
            continue;
        }
        let hint = match profile {
            Profile::V2 => format!(
                "Stackato 2.x waits at most {max} s for an app to start (3.x: {} s); lower `timeout:`, or make the app start sooner",
                max_timeout(Profile::V3)
            ),
            Profile::V3 => format!(
                "Stackato 3.x waits at most {max} s for an app to start; lower `timeout:`, or make the app start sooner"
            ),
        };
        diags.push(
            Diagnostic::warning(format!(
                "timeout {} s is above the platform's maximum of {max} s under profile {}, this manifest's profile: {why}",
                t.value,
                profile.number()
            ))
            .at(t.span)
            .label("the health manager would give up before this")
            .hint(hint),
        );
    }
}

/// What makes a name unusable anywhere, if anything.
fn never_safe(name: &str) -> Option<&'static str> {
    if name.chars().any(char::is_control) {
        Some("control characters")
    } else if name.contains('/') {
        Some("`/`")
    } else if name == "." || name == ".." {
        Some("a `.` or `..` name")
    } else {
        None
    }
}

fn app_name(name: &Spanned<String>, url_from_name: bool, diags: &mut Vec<Diagnostic>) {
    let n = &name.value;
    let shown = n.escape_default();
    if let Some(what) = never_safe(n) {
        diags.push(
            Diagnostic::error(format!(
                "Bad Application Name \"{shown}\": names may not contain {what}"
            ))
            .at(name.span)
            .hint("application names become host and directory names; use letters, digits and `-`"),
        );
    } else if n.contains('.') {
        diags.push(
            Diagnostic::error(format!(
                "Bad Application Name \"{shown}\": names may not contain `.`"
            ))
            .at(name.span)
            .hint("application names become host names; use letters, digits and `-`"),
        );
    } else if url_from_name && !n.is_empty() && !is_host_label(n) {
        diags.push(
            Diagnostic::warning(format!(
                "Application name \"{shown}\" is not a host name label: the platform would serve it at \"{}.<domain>\"",
                n.to_lowercase()
            ))
            .at(name.span)
            .hint("add `urls:` for the app, or use only letters, digits and `-` in its name"),
        );
    }
}

fn service_name(name: &Spanned<String>, diags: &mut Vec<Diagnostic>) {
    let n = &name.value;
    let what = if n.is_empty() {
        Some("nothing")
    } else {
        never_safe(n)
    };
    if let Some(what) = what {
        diags.push(
            Diagnostic::error(format!(
                "Bad service name \"{}\": names may not contain {what}",
                n.escape_default()
            ))
            .at(name.span)
            .hint("service names become directory and variable names; use letters, digits, `-`, `_` and `.`"),
        );
    }
}

/// A DNS label: 1–63 letters, digits and `-`, not starting or ending with `-`.
pub(crate) fn is_host_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && !s.starts_with('-')
        && !s.ends_with('-')
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

fn validate_hooks(v: &Node, diags: &mut Vec<Diagnostic>) {
    let Some(hooks) = expect_map("hooks", v, diags) else {
        return;
    };
    for h in hooks.as_map().unwrap_or_default() {
        let k = h.key.scalar_text().unwrap_or_default();
        if !keys::HOOK_KEYS.contains(&k) {
            unknown("hooks", &h.key, keys::HOOK_KEYS, diags);
            continue;
        }
        expect_scalar_or_list(
            &format!("hooks:{k}"),
            &h.value,
            diags,
            Some("quote the command: a `: ` inside unquoted text makes YAML read a mapping"),
        );
    }
}

fn validate_processes(v: &Node, diags: &mut Vec<Diagnostic>) {
    let Some(p) = expect_map("processes", v, diags) else {
        return;
    };
    for e in p.as_map().unwrap_or_default() {
        let k = e.key.scalar_text().unwrap_or_default();
        if k == "web" {
            expect_scalar("processes:web", &e.value, diags);
        } else {
            diags.push(
                Diagnostic::warning(format!("Unknown key \"processes:{k}\""))
                    .at(e.key.span)
                    .label("ignored: only `web` exists")
                    .hint("run other processes as a second application with `processes: {web: ~}` and `command:`"),
            );
        }
    }
}

/// Dot-separated integers, as Tcl's `package vcompare` accepts.
pub(crate) fn is_version(s: &str) -> bool {
    !s.is_empty()
        && s.split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
}

fn validate_min_version(v: &Node, diags: &mut Vec<Diagnostic>) {
    let Some(m) = expect_map("min_version", v, diags) else {
        return;
    };
    for e in m.as_map().unwrap_or_default() {
        let k = e.key.scalar_text().unwrap_or_default();
        let path = format!("min_version:{k}");
        if !matches!(k, "client" | "server") {
            diags.push(
                Diagnostic::error(format!("Found illegal key {path}"))
                    .at(e.key.span)
                    .hint("only `client` and `server` are allowed"),
            );
            continue;
        }
        if expect_scalar(&path, &e.value, diags) {
            let s = e.value.scalar_text().unwrap_or_default();
            if !is_version(s) && !s.contains("${") {
                diags.push(
                    Diagnostic::error(format!(
                        "Expected version number for key \"{path}\", got \"{s}\""
                    ))
                    .at(e.value.span)
                    .hint("write dot-separated numbers, e.g. 1.5.1"),
                );
            }
        }
    }
}

fn validate_requirements(v: &Node, diags: &mut Vec<Diagnostic>) {
    let Some(r) = expect_map("requirements", v, diags) else {
        return;
    };
    for e in r.as_map().unwrap_or_default() {
        let k = e.key.scalar_text().unwrap_or_default();
        let path = format!("requirements:{k}");
        match k {
            "pip" | "pypm" | "ppm" | "cpan" => {
                expect_scalar_or_list(&path, &e.value, diags, None);
                no_options(&path, &e.value, diags);
            }
            "ubuntu" | "redhat" | "unix" => validate_os_list(&path, &e.value, diags),
            "staging" | "running" => {
                if let Some(m) = expect_map(&path, &e.value, diags) {
                    for os in m.as_map().unwrap_or_default() {
                        let ok = os.key.scalar_text().unwrap_or_default();
                        if keys::OS_REQUIREMENT_KEYS.contains(&ok) {
                            validate_os_list(&format!("{path}:{ok}"), &os.value, diags);
                        } else {
                            unknown(&path, &os.key, keys::OS_REQUIREMENT_KEYS, diags);
                        }
                    }
                }
            }
            _ => unknown("requirements", &e.key, keys::REQUIREMENT_KEYS, diags),
        }
    }
}

/// Requirement names reach an installer's command line (pip, cpanm, dpkg-query) as arguments:
/// one starting with `-` would be taken for an option there (`--target=/elsewhere`,
/// `--index-url`, `-r /some/file`), so it is refused here, where it was written.
fn no_options(path: &str, v: &Node, diags: &mut Vec<Diagnostic>) {
    let items: Vec<&Node> = match &v.value {
        Value::Seq(items) => items
            .iter()
            .flat_map(|it| match &it.value {
                Value::Seq(inner) => inner.iter().collect(),
                _ => vec![it],
            })
            .collect(),
        _ => vec![v],
    };
    for it in items {
        let Some(text) = it.scalar_text() else {
            continue;
        };
        if text.trim_start().starts_with('-') {
            diags.push(
                Diagnostic::error(format!(
                    "\"{path}\" lists `{}`, which an installer would take for an option, not a name",
                    text.escape_default()
                ))
                .at(it.span)
                .label("starts with `-`")
                .hint("list package names (with versions: `Foo==1.2`); options belong in the app's own requirements file, or in PIP_OPTS"),
            );
        }
    }
}

/// OS packages: names, or one-element lists naming a repository.
fn validate_os_list(path: &str, v: &Node, diags: &mut Vec<Diagnostic>) {
    no_options(path, v, diags);
    match &v.value {
        Value::Seq(items) => {
            for it in items {
                let ok = it.is_scalar()
                    || it
                        .as_seq()
                        .is_some_and(|s| s.len() == 1 && s[0].is_scalar());
                if !ok {
                    diags.push(
                        Diagnostic::error(format!(
                            "Expected a package name or a one-element repository list in \"{path}\", got a {}",
                            it.type_word()
                        ))
                        .at(it.span),
                    );
                }
            }
        }
        _ => expect_scalar_or_list(path, v, diags, None),
    }
}

fn validate_drain(v: &Node, diags: &mut Vec<Diagnostic>) {
    let Some(d) = expect_map("drain", v, diags) else {
        return;
    };
    for e in d.as_map().unwrap_or_default() {
        let name = e.key.scalar_text().unwrap_or_default();
        let Some(body) = expect_map(&format!("drain:{name}"), &e.value, diags) else {
            continue;
        };
        for a in body.as_map().unwrap_or_default() {
            let k = a.key.scalar_text().unwrap_or_default();
            match k {
                "url" => {
                    expect_scalar(&format!("drain:{name}:url"), &a.value, diags);
                }
                "json" => expect_bool(&format!("drain:{name}:json"), &a.value, diags),
                _ => unknown(&format!("drain:{name}"), &a.key, &["url", "json"], diags),
            }
        }
    }
}

fn validate_autoscale(v: &Node, diags: &mut Vec<Diagnostic>) {
    let Some(a) = expect_map("autoscale", v, diags) else {
        return;
    };
    for e in a.as_map().unwrap_or_default() {
        let k = e.key.scalar_text().unwrap_or_default();
        match k {
            "enabled" => expect_bool("autoscale:enabled", &e.value, diags),
            "instances" | "cpu" => {
                let path = format!("autoscale:{k}");
                let Some(m) = expect_map(&path, &e.value, diags) else {
                    continue;
                };
                for b in m.as_map().unwrap_or_default() {
                    let bk = b.key.scalar_text().unwrap_or_default();
                    let bpath = format!("{path}:{bk}");
                    if !matches!(bk, "min" | "max") {
                        unknown(&path, &b.key, &["min", "max"], diags);
                        continue;
                    }
                    if !expect_scalar(&bpath, &b.value, diags) || symbolic(&b.value) {
                        continue;
                    }
                    let s = b.value.scalar_text().unwrap_or_default();
                    if k == "instances" {
                        if !s.parse::<i64>().is_ok_and(|n| n >= 1) {
                            diags.push(
                                Diagnostic::error(format!(
                                    "Expected integer value >= 1 for key \"{bpath}\", got \"{s}\""
                                ))
                                .at(b.value.span),
                            );
                        }
                    } else if !s
                        .parse::<f64>()
                        .is_ok_and(|n| n.is_finite() && (0.0..=100.0).contains(&n))
                    {
                        diags.push(
                            Diagnostic::error(format!(
                                "Expected percentage for key \"{bpath}\", got \"{s}\""
                            ))
                            .at(b.value.span)
                            .hint("a number from 0 to 100"),
                        );
                    }
                }
            }
            _ => unknown("autoscale", &e.key, keys::AUTOSCALE_KEYS, diags),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_dotted_integers() {
        assert!(is_version("1.5.1"));
        assert!(is_version("100000"));
        assert!(!is_version("1.5a"));
        assert!(!is_version("1..2"));
        assert!(!is_version(""));
    }

    #[test]
    fn host_labels() {
        assert!(is_host_label("php-info"));
        assert!(is_host_label("CloudBank"));
        assert!(!is_host_label("Bulletin Board"));
        assert!(!is_host_label("stackato_stats"));
        assert!(!is_host_label("-x"));
        assert!(!is_host_label(&"a".repeat(64)));
        assert_eq!(never_safe("free.postgresql-c8ea"), None);
        assert_eq!(never_safe("${name}_uploads"), None);
        assert!(never_safe("..").is_some());
        assert!(never_safe("a/b").is_some());
        assert!(never_safe("a\rb").is_some());
        assert!(never_safe("a\u{9b}b").is_some());
    }

    #[test]
    fn env_names() {
        assert!(is_env_name("DJANGO_SETTINGS_MODULE"));
        assert!(is_env_name("_x1"));
        assert!(!is_env_name("1X"));
        assert!(!is_env_name("A-B"));
    }
}
