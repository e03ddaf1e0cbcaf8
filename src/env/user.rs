//! The user's variables over the platform's, in one order (lowest to highest):
//! platform rules → services → stackato.yml `env:` defaults → your shell for `inherit: true`
//! → remembered prompt answers → `.env` files → `--env KEY=VALUE`.
//!
//! Values from stackato.yml and `--env` are expanded like the platform's shell did
//! (`$OTHER`, `${OTHER}`; `\$` for a literal dollar); command substitution is never run.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::diag::{Diagnostic, Sources, Span};
use crate::env::dotenv::{self, MAX_TOTAL, MAX_VALUE, TooLong, append, too_long};
use crate::manifest::App;
use crate::manifest::model::EnvVar;
use crate::model::{EnvSet, Layer};

/// What the user side adds, besides the manifest.
pub struct Input<'a> {
    pub app: &'a App,
    /// `.env` files to read, in order (missing ones are skipped by the caller).
    pub dotenv_files: &'a [PathBuf],
    /// `--env KEY=VALUE`, in order.
    pub cli: &'a [(String, String)],
    /// Your shell's environment.
    pub shell: &'a dyn Fn(&str) -> Option<String>,
    /// Answers given earlier for this app.
    pub answers: &'a BTreeMap<String, String>,
}

/// Asks for a required variable's value; `None` when nobody can answer.
pub(crate) type Prompter<'a> = dyn FnMut(&EnvVar) -> Option<String> + 'a;

/// A `--env` argument that is not `KEY=VALUE`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvArgError {
    #[error("`--env {0}` needs the form KEY=VALUE (e.g. --env DEBUG=1)")]
    NoEquals(String),
    #[error(
        "`--env {arg}`: `{name}` is not a variable name (letters, digits, _; not starting with a digit)"
    )]
    BadName { arg: String, name: String },
}

/// Parse one `--env` argument.
pub fn parse_cli_pair(s: &str) -> Result<(String, String), EnvArgError> {
    let Some((k, v)) = s.split_once('=') else {
        return Err(EnvArgError::NoEquals(s.to_string()));
    };
    if !crate::manifest::validate::is_env_name(k) {
        return Err(EnvArgError::BadName {
            arg: s.to_string(),
            name: k.to_string(),
        });
    }
    Ok((k.to_string(), v.to_string()))
}

/// Shell-style expansion of `$NAME` / `${NAME}` against `lookup`; unknown names expand to
/// nothing, as in the shell; `$(…)` and backticks are left as they are. Fails when the result
/// would pass [`MAX_VALUE`].
pub fn expand(value: &str, lookup: &dyn Fn(&str) -> Option<String>) -> Result<String, TooLong> {
    let chars: Vec<char> = value.chars().collect();
    let mut out = String::with_capacity(value.len().min(MAX_VALUE));
    // The first `}` at or after some earlier index (`None`: there is none after it). Lookups
    // only move forward, so one answer serves every `${` before it: one scan in all, not one
    // to the end of the text per unclosed `${`.
    let mut close: Option<(usize, Option<usize>)> = None;
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '\\' if i + 1 < chars.len() && chars[i + 1] == '$' => {
                out.push('$');
                i += 2;
            }
            '$' if i + 1 < chars.len() && chars[i + 1] == '{' => {
                let from = i + 2;
                let found = match close {
                    Some((at, found)) if at <= from && found.is_none_or(|k| k >= from) => found,
                    _ => chars[from..]
                        .iter()
                        .position(|&c| c == '}')
                        .map(|p| from + p),
                };
                close = Some((from, found));
                match found.map(|k| k - from) {
                    Some(len) => {
                        let name: String = chars[i + 2..i + 2 + len].iter().collect();
                        if name.chars().all(|c| c == '_' || c.is_ascii_alphanumeric())
                            && !name.is_empty()
                        {
                            append(&mut out, lookup(&name))?;
                        } else {
                            out.extend(&chars[i..i + 3 + len]);
                        }
                        i += 3 + len;
                    }
                    None => {
                        out.push('$');
                        i += 1;
                    }
                }
            }
            '$' if i + 1 < chars.len()
                && (chars[i + 1] == '_' || chars[i + 1].is_ascii_alphabetic()) =>
            {
                let s = i + 1;
                let mut j = s;
                while j < chars.len() && (chars[j] == '_' || chars[j].is_ascii_alphanumeric()) {
                    j += 1;
                }
                let name: String = chars[s..j].iter().collect();
                append(&mut out, lookup(&name))?;
                i = j;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(out)
}

/// What applying the user layers produced besides the variables.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Answers typed at a prompt now, to remember.
    pub(crate) new_answers: Vec<(String, String)>,
}

/// Layer the user's variables over `env`. Errors (a required variable with no value and
/// nobody to ask, a value not among `choices`, a malformed `.env`) are all collected.
///
/// Each variable's final raw value is decided first (highest layer wins); values from
/// stackato.yml and `--env` are then expanded in declaration order, so `Y: $X/y` sees the
/// final `X`, wherever it came from. `.env` files expand their own `$VAR`s while being read,
/// against the platform's variables, stackato.yml's defaults and earlier lines.
pub fn apply(
    env: &mut EnvSet,
    input: &Input<'_>,
    sources: &mut Sources,
    prompt: &mut Prompter<'_>,
) -> Result<Outcome, Vec<Diagnostic>> {
    let mut diags = Vec::new();
    let mut outcome = Outcome::default();

    // stackato.yml defaults, expanded against the platform only, for .env lookups (the last
    // one of a name wins).
    let mut yml_defaults: HashMap<String, String> = HashMap::new();
    let mut total = 0usize;
    for var in &input.app.env {
        if let Some(d) = &var.default {
            let v = expand(&d.value, &|n| {
                yml_defaults
                    .get(n)
                    .cloned()
                    .or_else(|| env.get(n).map(str::to_string))
            });
            total += v.as_ref().map_or(0, String::len);
            match v {
                Ok(v) if total <= MAX_TOTAL => {
                    yml_defaults.insert(var.name.value.clone(), v);
                }
                Ok(_) => {
                    diags.push(Diagnostic::error(too_long(&var.name.value, true)).at(d.span));
                    break;
                }
                Err(TooLong) => {
                    diags.push(Diagnostic::error(too_long(&var.name.value, false)).at(d.span));
                    break;
                }
            }
        }
    }

    let mut dotenv_entries: Vec<(String, String, String, Span)> = Vec::new();
    // Each name's last entry in `dotenv_entries`.
    let mut dotenv_last: HashMap<String, usize> = HashMap::new();
    for path in input.dotenv_files {
        let text = match read_dotenv(path) {
            Ok(t) => t,
            Err(e) => {
                diags.push(Diagnostic::error(format!(
                    "cannot read {}: {e}",
                    crate::diag::display_path(path)
                )));
                continue;
            }
        };
        let id = sources.add(path, text.clone());
        let shown = crate::diag::display_path(path);
        let lookup = |n: &str| {
            dotenv_last
                .get(n)
                .map(|&i| dotenv_entries[i].1.clone())
                .or_else(|| yml_defaults.get(n).cloned())
                .or_else(|| env.get(n).map(str::to_string))
                .or_else(|| (input.shell)(n))
        };
        let parsed = dotenv::parse(&text, &lookup);
        let lines = line_starts(&text);
        match parsed {
            Ok(entries) => {
                for e in entries {
                    let span = line_span(&text, &lines, id, e.line, 1);
                    dotenv_last.insert(e.key.clone(), dotenv_entries.len());
                    dotenv_entries.push((e.key, e.value, shown.clone(), span));
                }
            }
            Err(e) => diags.push(
                Diagnostic::error(format!("malformed .env file: {}", e.message))
                    .at(line_span(&text, &lines, id, e.line, e.col)),
            ),
        }
    }

    // Every layer's value per variable, lowest first; `expand` marks shell-expanded ones.
    struct Cand {
        value: String,
        layer: Layer,
        why: String,
        expand: bool,
    }
    // In the order names first appear; `place` finds a name's entry.
    let mut cands: Vec<(String, Vec<Cand>)> = Vec::new();
    let mut place: HashMap<String, usize> = HashMap::new();
    let mut push = |name: &str, c: Cand| {
        let i = *place.entry(name.to_string()).or_insert_with(|| {
            cands.push((name.to_string(), Vec::new()));
            cands.len() - 1
        });
        cands[i].1.push(c);
    };
    // Names a `.env` file or `--env` sets: a required variable they give is not asked for.
    let later_names: HashSet<&str> = dotenv_entries
        .iter()
        .map(|(k, ..)| k.as_str())
        .chain(input.cli.iter().map(|(k, _)| k.as_str()))
        .collect();
    for var in &input.app.env {
        let name = var.name.value.as_str();
        let mut have = false;
        if let Some(d) = &var.default {
            push(
                name,
                Cand {
                    value: d.value.clone(),
                    layer: Layer::Manifest,
                    why: "its default, shell-expanded".into(),
                    expand: true,
                },
            );
            have = true;
        }
        if var.inherit
            && let Some(v) = (input.shell)(name)
        {
            push(
                name,
                Cand {
                    value: v,
                    layer: Layer::Shell,
                    why: "inherit: true takes your shell's value".into(),
                    expand: false,
                },
            );
            have = true;
        }
        if let Some(v) = input.answers.get(name) {
            push(
                name,
                Cand {
                    value: v.clone(),
                    layer: Layer::Answer,
                    why: "answered at an earlier prompt".into(),
                    expand: false,
                },
            );
            have = true;
        }
        if !have && !later_names.contains(name) && var.required {
            match prompt(var) {
                Some(v) if !v.is_empty() => {
                    push(
                        name,
                        Cand {
                            value: v.clone(),
                            layer: Layer::Answer,
                            why: "answered at the prompt".into(),
                            expand: false,
                        },
                    );
                    outcome.new_answers.push((name.to_string(), v));
                }
                _ => diags.push(
                    Diagnostic::error(format!("Required variable \"{name}\" not set"))
                        .at(var.name.span)
                        .hint(format!(
                            "give it a value: `--env {name}=…`, a line `{name}=…` in .env, or run in a terminal to be asked"
                        )),
                ),
            }
        }
    }
    for (k, v, file, span) in &dotenv_entries {
        push(
            k,
            Cand {
                value: v.clone(),
                layer: Layer::DotEnv(file.clone()),
                why: format!("line {}", span.line),
                expand: false,
            },
        );
    }
    for (k, v) in input.cli {
        push(
            k,
            Cand {
                value: v.clone(),
                layer: Layer::Cli,
                why: "on the command line".into(),
                expand: true,
            },
        );
    }

    // Export in order: lower layers are kept as hidden history, the top one is expanded.
    let mut total = 0usize;
    'export: for (name, list) in cands {
        let n = list.len();
        for (i, c) in list.into_iter().enumerate() {
            let value = if i + 1 == n && c.expand {
                match expand(&c.value, &|x| env.get(x).map(str::to_string)) {
                    Ok(v) if total + v.len() <= MAX_TOTAL => {
                        total += v.len();
                        v
                    }
                    r => {
                        diags.push(Diagnostic::error(format!(
                            "{} (its value comes from {})",
                            too_long(&name, r.is_ok()),
                            c.layer
                        )));
                        break 'export;
                    }
                }
            } else {
                c.value
            };
            env.set(&name, value, c.layer, c.why);
        }
    }

    // stackato.yml's declaration of each name (the first one).
    let mut declared: HashMap<&str, &EnvVar> = HashMap::new();
    for e in &input.app.env {
        declared.entry(e.name.value.as_str()).or_insert(e);
    }
    // No program's environment can hold a NUL (a prompt's answer, a remembered one): say which
    // variable and where its value came from, instead of failing at the first spawn.
    for v in env.vars() {
        if v.value.contains('\0') || v.name.contains('\0') {
            let d = Diagnostic::error(format!(
                "Variable \"{}\" contains a NUL byte (its value comes from {}); environment variables cannot hold one",
                v.name.escape_debug(),
                v.layer
            ));
            diags.push(match declared.get(v.name.as_str()) {
                Some(e) => d.at(e.name.span),
                None => d,
            });
        }
    }

    // Choices are checked on the final value, wherever it came from.
    for var in &input.app.env {
        if var.choices.is_empty() {
            continue;
        }
        if let Some(v) = env.var(&var.name.value)
            && !var.choices.contains(&v.value)
        {
            let at = dotenv_last
                .get(&var.name.value)
                .map(|&i| dotenv_entries[i].3)
                .filter(|_| matches!(v.layer, Layer::DotEnv(_)))
                .unwrap_or(var.name.span);
            // Never print a secret in an error: hidden and secret-named variables are not
            // shown, and a password inside a URL is masked.
            let shown = if var.hidden || crate::env::mask::is_secret_name(&var.name.value) {
                crate::env::mask::MASK.to_string()
            } else {
                match crate::env::mask::url_password(&v.value) {
                    Some(pw) => v.value.replace(&pw, crate::env::mask::MASK),
                    None => v.value.clone(),
                }
            };
            diags.push(
                Diagnostic::error(format!(
                    "Variable \"{}\" is \"{}\" (from {}), which is not one of its choices: {}",
                    var.name.value,
                    shown,
                    v.layer,
                    var.choices.join(", ")
                ))
                .at(at),
            );
        }
    }
    if diags.is_empty() {
        Ok(outcome)
    } else {
        Err(diags)
    }
}

/// Where each line of `text` starts: 0, then just after every `\n`.
fn line_starts(text: &str) -> Vec<usize> {
    std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .collect()
}

/// A span covering one line from `col` (1-based) to its end; `lines` are the
/// [`line_starts`] of `text`.
fn line_span(
    text: &str,
    lines: &[usize],
    file: crate::diag::FileId,
    line: usize,
    col: usize,
) -> Span {
    let start_of_line = lines
        .get(line.saturating_sub(1))
        .copied()
        .unwrap_or(text.len());
    let line_text = text[start_of_line.min(text.len())..]
        .split('\n')
        .next()
        .unwrap_or("");
    let off: usize = line_text
        .chars()
        .take(col.saturating_sub(1))
        .map(char::len_utf8)
        .sum();
    let start = start_of_line + off;
    Span {
        file,
        start: start as u32,
        end: (start_of_line + line_text.len())
            .max(start + 1)
            .min(text.len().max(start)) as u32,
        line: line as u32,
        col: col as u32,
    }
}

/// The text of a `.env` file: a regular file (never a FIFO or a device), at most the manifest
/// size limit, read without blocking.
/// Why a `.env` file was not read.
#[derive(Debug, thiserror::Error)]
enum DotenvFileError {
    #[error("it is not UTF-8 text")]
    NotUtf8,
    #[error("it is {0}, not a regular file")]
    NotRegular(&'static str),
    #[error("it is {0} bytes, more than the {max} bytes read", max = crate::yaml::MAX_FILE_BYTES)]
    TooLarge(u64),
    #[error(transparent)]
    Io(std::io::Error),
}

fn read_dotenv(path: &Path) -> Result<String, DotenvFileError> {
    match crate::manifest::read_file(path, true) {
        Ok(bytes) => String::from_utf8(bytes).map_err(|_| DotenvFileError::NotUtf8),
        Err(crate::manifest::ReadError::NotRegular(what)) => Err(DotenvFileError::NotRegular(what)),
        Err(crate::manifest::ReadError::TooLarge(n)) => Err(DotenvFileError::TooLarge(n)),
        Err(crate::manifest::ReadError::Io(e)) => Err(DotenvFileError::Io(e)),
    }
}

/// The default `.env` files (of [`default_dotenv_files`]) that lead out of the project
/// directory `project_dir` through a symlink: they are not read (a repository must not make
/// the tool read, print or export a file outside it).
pub(crate) fn dotenv_links_out(project_dir: &Path, files: &[PathBuf]) -> Vec<Diagnostic> {
    let root = project_dir
        .canonicalize()
        .unwrap_or_else(|_| project_dir.to_path_buf());
    files
        .iter()
        .filter(|f| f.canonicalize().map_or(true, |c| !c.starts_with(&root)))
        .map(|f| {
            let to = std::fs::read_link(f)
                .map_or_else(|_| String::new(), |t| format!(" (to {})", t.display()));
            Diagnostic::error(format!(
                "{} is a link out of the project{to}: it is not read",
                crate::diag::display_path(f)
            ))
            .hint("make it a regular file inside the project, or pass it with --env-file")
        })
        .collect()
}

/// The `.env` files used by default: the app directory's `.env`, then the project's (when
/// the app lives in a sub-directory), the nearer one winning.
pub(crate) fn default_dotenv_files(project_dir: &Path, app_dir: &Path) -> Vec<PathBuf> {
    let mut v = Vec::new();
    let p = project_dir.join(".env");
    if p.is_file() {
        v.push(p);
    }
    let a = app_dir.join(".env");
    if a.is_file() && app_dir != project_dir {
        v.push(a);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expansion_is_shell_like_and_inert() {
        let look = |n: &str| match n {
            "A" => Some("1".to_string()),
            "LOGS" => Some("x=/a".to_string()),
            _ => None,
        };
        assert_eq!(expand("$A-${A}-$B-\\$A", &look).unwrap(), "1-1--$A");
        assert_eq!(expand("t=/p:$LOGS", &look).unwrap(), "t=/p:x=/a");
        assert_eq!(
            expand("$(rm -rf /) `id` $", &look).unwrap(),
            "$(rm -rf /) `id` $"
        );
    }

    #[test]
    fn braces_expand_up_to_the_next_closing_brace_anywhere() {
        let look = |n: &str| (n == "A").then(|| "1".to_string());
        // An invalid name inside braces is kept whole, references in it included.
        assert_eq!(expand("${x $A}$A", &look).unwrap(), "${x $A}1");
        assert_eq!(expand("${ ${A}", &look).unwrap(), "${ ${A}");
        assert_eq!(expand("${A${A}", &look).unwrap(), "${A${A}");
        assert_eq!(expand("${A}${\n}${A}", &look).unwrap(), "1${\n}1");
        // Without any closing brace, each `${` stays as it is.
        let open = "${A".repeat(1000);
        assert_eq!(expand(&open, &look).unwrap(), open);
        assert_eq!(expand("${A}${A", &look).unwrap(), "1${A");
    }

    #[test]
    fn line_spans_find_their_line() {
        let text = "A=1\nBB=2\n\nC=3";
        let lines = line_starts(text);
        let file = crate::diag::FileId::default();
        let at = |line: usize, col: usize| {
            let s = line_span(text, &lines, file, line, col);
            (s.start, s.end)
        };
        assert_eq!(at(1, 1), (0, 3));
        assert_eq!(at(2, 2), (5, 8));
        assert_eq!(at(4, 1), (10, 13));
        assert_eq!(at(9, 1), (13, 13));
    }

    #[test]
    fn cli_pairs() {
        assert_eq!(
            parse_cli_pair("A=b=c"),
            Ok(("A".to_string(), "b=c".to_string()))
        );
        assert!(parse_cli_pair("A").is_err());
        assert!(parse_cli_pair("1A=x").is_err());
    }
}
