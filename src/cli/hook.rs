//! Shell integration, autoenv-style: `hook bash|zsh|fish` prints a snippet for the rc file;
//! the snippet runs `__hook-env` at each prompt, which exports the app's runtime environment
//! when the shell enters an allowed project and restores the previous values when it leaves.
//! When nothing changed, `__hook-env` only compares a few file stamps (no manifest parsing).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::cli::Global;
use crate::exit;

pub use crate::cli::completions::Shell;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The shell whose snippet to print.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// Bookkeeping variables kept in the shell.
const DIR: &str = "STACKATO_LOCAL_DIR";
const STAMP: &str = "STACKATO_LOCAL_STAMP";
const BACKUP: &str = "STACKATO_LOCAL_BACKUP";
const DENIED: &str = "STACKATO_LOCAL_DENIED";

/// Variables not exported into an interactive shell: moving `HOME` would move the user's
/// dotfiles, history and tools' settings.
const SKIPPED: &[&str] = &["HOME"];

pub fn hook(args: &Args) -> i32 {
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "stackato-local".into());
    let exe = sh_quote(&exe);
    let text = match args.shell {
        Shell::Bash => format!(
            r#"# stackato-local: load the app's environment when entering an allowed project
_stackato_local_hook() {{
  local status=$?
  eval "$({exe} __hook-env bash)"
  return $status
}}
if [[ ";${{PROMPT_COMMAND[*]:-}};" != *";_stackato_local_hook;"* ]]; then
  PROMPT_COMMAND="_stackato_local_hook${{PROMPT_COMMAND:+;$PROMPT_COMMAND}}"
fi
"#
        ),
        Shell::Zsh => format!(
            r#"# stackato-local: load the app's environment when entering an allowed project
_stackato_local_hook() {{
  eval "$({exe} __hook-env zsh)"
}}
autoload -Uz add-zsh-hook
add-zsh-hook precmd _stackato_local_hook
add-zsh-hook chpwd _stackato_local_hook
"#
        ),
        Shell::Fish => format!(
            r#"# stackato-local: load the app's environment when entering an allowed project
function __stackato_local_hook --on-event fish_prompt --on-variable PWD
    {exe} __hook-env fish | source
end
"#
        ),
    };
    print!("{text}");
    exit::OK
}

fn sh_quote(v: &str) -> String {
    format!("'{}'", v.replace('\'', "'\\''"))
}

fn fish_quote(v: &str) -> String {
    format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"))
}

fn set(shell: Shell, k: &str, v: &str) -> String {
    match shell {
        Shell::Fish => format!("set -gx {k} {};\n", fish_quote(v)),
        _ => format!("export {k}={};\n", sh_quote(v)),
    }
}

fn unset(shell: Shell, k: &str) -> String {
    match shell {
        Shell::Fish => format!("set -e {k};\n"),
        _ => format!("unset {k};\n"),
    }
}

fn say(shell: Shell, msg: &str) -> String {
    match shell {
        Shell::Fish => format!("echo {} >&2;\n", fish_quote(msg)),
        _ => format!("echo {} >&2;\n", sh_quote(msg)),
    }
}

/// The nearest directory at or above `dir` holding a stackato.yml or manifest.yml.
fn project_root(dir: &Path) -> Option<PathBuf> {
    let mut d = Some(dir);
    while let Some(cur) = d {
        if cur.join("stackato.yml").is_file() || cur.join("manifest.yml").is_file() {
            return Some(cur.to_path_buf());
        }
        d = cur.parent();
    }
    None
}

/// Size and mtime of the files whose change means reloading.
fn stamp(files: &[PathBuf]) -> String {
    files
        .iter()
        .map(|f| match std::fs::metadata(f) {
            Ok(m) => {
                let t = m
                    .modified()
                    .ok()
                    .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                    .map_or(0, |d| d.as_nanos());
                format!("{}:{t}:{}", m.len(), f.display())
            }
            Err(_) => format!("-:-:{}", f.display()),
        })
        .collect::<Vec<_>>()
        .join("|")
}

fn stamp_files(stamp: &str) -> Vec<PathBuf> {
    stamp
        .split('|')
        .filter_map(|e| e.splitn(3, ':').nth(2))
        .map(PathBuf::from)
        .collect()
}

/// Undo what was loaded: restore saved values, unset what we added.
fn unload(shell: Shell, out: &mut String) {
    let backup: BTreeMap<String, Option<String>> = std::env::var(BACKUP)
        .ok()
        .and_then(|b| serde_json::from_str(&b).ok())
        .unwrap_or_default();
    for (k, prev) in &backup {
        match prev {
            Some(v) => out.push_str(&set(shell, k, v)),
            None => out.push_str(&unset(shell, k)),
        }
    }
    for k in [DIR, STAMP, BACKUP] {
        out.push_str(&unset(shell, k));
    }
}

/// `__hook-env SHELL`: print shell code that brings the environment up to date.
pub fn hook_env(g: &Global, shell: Shell) -> i32 {
    let mut out = String::new();
    let cwd = std::env::current_dir().unwrap_or_default();
    let root = project_root(&cwd);
    let loaded_dir = std::env::var(DIR).ok().map(PathBuf::from);
    // Fast path: same project, same files.
    if let (Some(r), Some(l)) = (&root, &loaded_dir)
        && r == l
    {
        let old = std::env::var(STAMP).unwrap_or_default();
        if stamp(&stamp_files(&old)) == old {
            return exit::OK;
        }
    }
    if root.is_none() && loaded_dir.is_none() {
        if std::env::var_os(DENIED).is_some() {
            out.push_str(&unset(shell, DENIED));
        }
        print!("{out}");
        return exit::OK;
    }
    let was = loaded_dir.clone();
    if loaded_dir.is_some() {
        unload(shell, &mut out);
    }
    let Some(root) = root else {
        if let Some(w) = was {
            out.push_str(&say(
                shell,
                &format!("stackato-local: unloaded {}", w.display()),
            ));
        }
        print!("{out}");
        return exit::OK;
    };
    match load(g, &root, shell) {
        Ok((code, msg)) => {
            out.push_str(&code);
            out.push_str(&unset(shell, DENIED));
            out.push_str(&say(shell, &msg));
        }
        Err(msg) => {
            // Say it once per directory, not at every prompt.
            let denied = std::env::var(DENIED).ok();
            if denied.as_deref() != Some(&root.display().to_string()) {
                out.push_str(&say(shell, &msg));
                out.push_str(&set(shell, DENIED, &root.display().to_string()));
            }
        }
    }
    print!("{out}");
    exit::OK
}

/// Build the app's runtime environment for `root`; `Err` is a one-line reason not to.
fn load(g: &Global, root: &Path, shell: Shell) -> Result<(String, String), String> {
    // Nothing of an unallowed project is parsed: the record first, its digests, then load.
    let outside = crate::trust::hook_gate(root)?;
    let mut opts = g.load.clone();
    opts.dir = root.to_path_buf();
    opts.manifest = None;
    opts.outside = outside;
    let mut ask = |_: &str| None;
    let loaded = crate::manifest::load(&opts, &mut ask)
        .map_err(|e| format!("stackato-local: {} not loaded: {e}", root.display()))?;
    let state = crate::state::StateDir::open(&loaded.manifest.dir)
        .map_err(|e| format!("stackato-local: {e}"))?;
    let target = crate::manifest::Target {
        url: opts.target_url.clone(),
        random_word: String::new(),
    };
    let facts = crate::env::build::facts(&target.target_base());
    let mut prompt = |_: &crate::manifest::model::EnvVar| None;
    let built = crate::env::build::build(
        &loaded,
        &crate::env::build::Request::default(),
        &state,
        &facts,
        &mut crate::random::OsRng,
        &mut prompt,
    )
    .map_err(|e| format!("stackato-local: {} not loaded: {e}", root.display()))?;
    let mut code = String::new();
    let mut backup: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut n = 0;
    for v in built.env.vars() {
        if SKIPPED.contains(&v.name.as_str()) {
            continue;
        }
        backup.insert(v.name.clone(), std::env::var(&v.name).ok());
        code.push_str(&set(shell, &v.name, &v.value));
        n += 1;
    }
    let mut files: Vec<PathBuf> = loaded
        .sources
        .files()
        .iter()
        .map(|f| f.path.clone())
        .collect();
    files.extend(crate::trust::dotenv_files(&loaded));
    files.push(state.path(crate::services::registry::FILE));
    code.push_str(&set(shell, DIR, &root.display().to_string()));
    code.push_str(&set(shell, STAMP, &stamp(&files)));
    code.push_str(&set(
        shell,
        BACKUP,
        &serde_json::to_string(&backup).unwrap_or_default(),
    ));
    Ok((
        code,
        format!(
            "stackato-local: loaded {} ({n} variables, profile {})",
            built.app,
            built.profile.profile.number()
        ),
    ))
}
