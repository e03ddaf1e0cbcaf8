//! Shell integration, autoenv-style: `hook bash|zsh|fish` prints a snippet for the rc file;
//! the snippet runs `__hook-env` at each prompt, which exports the app's runtime environment
//! when the shell enters an allowed project and restores the previous values when it leaves.
//! When nothing changed, `__hook-env` only compares a few file stamps (no manifest parsing).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::cli::Global;
use crate::env::risky;
use crate::exit;
use crate::shell::{self, Dialect};

pub(super) use crate::cli::completions::Shell;

#[derive(Debug, clap::Args)]
pub(crate) struct Args {
    /// The shell whose snippet to print.
    #[arg(value_enum)]
    pub shell: Shell,
}

/// Bookkeeping variables kept in the shell.
const DIR: &str = "STACKATO_LOCAL_DIR";
const STAMP: &str = "STACKATO_LOCAL_STAMP";
const BACKUP: &str = "STACKATO_LOCAL_BACKUP";
const DENIED: &str = "STACKATO_LOCAL_DENIED";

/// What the hook does with one variable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Export {
    /// Export it as built.
    Yes,
    /// Export only the value the tool itself set (see [`risky::TOOL_SEARCH_PATHS`]).
    ToolValue,
    /// Keep it out of the shell.
    Never,
}

/// THE RULE: the hook exports into the user's interactive shell only variables that cannot
/// change how that shell, unrelated programs started from it, or this tool behave. The app
/// itself still gets every variable (`run`, `exec` and `env` are unaffected), and the hook's
/// message names what it kept out.
///
/// The list is [`risky::changes_how_programs_run`] (the same one `allow` uses to show such
/// values): shell control (`PROMPT_COMMAND`, `PS0`–`PS4`, `BASH_ENV`, `ENV`, `IFS`,
/// `SHELLOPTS`, `BASHOPTS`, `CDPATH`, `HIST*`, `FPATH`, `ZDOTDIR`, `fish_*`, zsh's
/// `*_functions` hooks, …), loaders and interpreters' start-up hooks (`LD_*`, `DYLD_*`,
/// `NODE_OPTIONS`, `PYTHONSTARTUP`, `PERL5OPT`, `RUBYOPT`, `LESSOPEN`, `GIT_*`, editors, pagers,
/// proxies, …), installers' settings and identity (`HOME`, `XDG_*`, `STACKATO_LOCAL_*`, …).
/// `PATH`, `PYTHONPATH`, `PERL5LIB` and `GEM_HOME` are exported with the tool's own entries only
/// ([`risky::TOOL_SEARCH_PATHS`]). A name that is not a shell identifier is never exported.
pub(super) fn hook_export(name: &str) -> Export {
    if risky::TOOL_SEARCH_PATHS.contains(&name) {
        return Export::ToolValue;
    }
    if !shell::is_name(name) || risky::changes_how_programs_run(name) {
        return Export::Never;
    }
    Export::Yes
}

/// The value the hook exports for `v`, or `None` to keep it out of the shell.
fn hook_value(v: &crate::model::Var) -> Option<&str> {
    use crate::model::Layer;
    let own = |l: &Layer| matches!(l, Layer::Platform | Layer::Shell);
    match hook_export(&v.name) {
        Export::Yes => Some(&v.value),
        Export::Never => None,
        Export::ToolValue if own(&v.layer) => Some(&v.value),
        Export::ToolValue => v
            .hidden
            .iter()
            .rev()
            .find(|(l, _)| own(l))
            .map(|(_, val)| val.as_str()),
    }
}

pub(super) fn hook(args: &Args) -> i32 {
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "stackato-local".into());
    let exe = match args.shell {
        Shell::Fish => shell::fish_quote(&exe),
        _ => shell::quote(&exe),
    };
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

fn dialect(shell: Shell) -> Dialect {
    match shell {
        Shell::Bash => Dialect::Bash,
        Shell::Zsh => Dialect::Zsh,
        Shell::Fish => Dialect::Fish,
    }
}

/// `export K='V';` (or fish's `set -gx`); nothing for a name that is not a shell identifier
/// (the callers filter those out first and say so).
fn set(shell: Shell, k: &str, v: &str) -> String {
    shell::assign(dialect(shell), k, v)
        .map(|s| format!("{s};\n"))
        .unwrap_or_default()
}

fn unset(shell: Shell, k: &str) -> String {
    match shell::unset(dialect(shell), k) {
        Ok(Some(s)) => format!("{s};\n"),
        _ => String::new(),
    }
}

fn say(shell: Shell, msg: &str) -> String {
    shell::say(dialect(shell), msg)
        .map(|s| format!("{s};\n"))
        .unwrap_or_default()
}

/// The project the shell is in at `dir`: the nearest directory at or above `dir` holding a
/// stackato.yml or manifest.yml, unless that manifest is one an enclosing allowed project
/// inherits (`inherit: base/stackato.yml`, a shared base kept in a sub-directory): then the
/// sub-directory is part of that project.
fn project_root(dir: &Path) -> Option<PathBuf> {
    // The same search as every command's (owner and writable-directory rules included), with
    // stackato.yml looked for in parents too, so the hook works in a project's sub-directories.
    let file = crate::manifest::search(dir, true, None)?;
    let root = file.parent().map(Path::to_path_buf)?;
    let loaded = std::env::var_os(DIR).map(PathBuf::from);
    if loaded.as_deref() == Some(root.as_path()) {
        return Some(root);
    }
    // Cheap: the loaded project's own files include this manifest (no store read per prompt).
    if let Some(l) = loaded
        && root.starts_with(&l)
        && std::env::var(STAMP).is_ok_and(|s| {
            let canon = file.canonicalize().ok();
            stamp_files(&s)
                .iter()
                .any(|f| *f == file || Some(f) == canon.as_ref())
        })
    {
        return Some(l);
    }
    Some(crate::trust::inheriting_project(&file).unwrap_or(root))
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

/// The shell's values from before the loaded project (if any) was loaded.
fn current_backup() -> BTreeMap<String, Option<String>> {
    std::env::var(BACKUP)
        .ok()
        .and_then(|b| serde_json::from_str(&b).ok())
        .unwrap_or_default()
}

/// The shell's own value of `name`: what it was before the loaded project changed it.
fn before(name: &str) -> Option<String> {
    static PRIOR: std::sync::OnceLock<BTreeMap<String, Option<String>>> =
        std::sync::OnceLock::new();
    match PRIOR.get_or_init(current_backup).get(name) {
        Some(prev) => prev.clone(),
        None => std::env::var(name).ok(),
    }
}

/// Undo what was loaded: restore saved values, unset what we added.
fn unload(shell: Shell, out: &mut String) {
    for (k, prev) in &current_backup() {
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
pub(super) fn hook_env(g: &Global, shell: Shell) -> i32 {
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
    crate::cli::trust_prompt::old_store_notice();
    let outside = crate::trust::hook_gate(root).map_err(|e| e.to_string())?;
    let mut opts = g.load.clone();
    opts.dir = root.to_path_buf();
    opts.manifest = None;
    opts.outside = outside;
    let mut ask = |_: &str| None;
    let loaded = crate::manifest::load(&opts, &mut ask)
        .map_err(|e| format!("stackato-local: {} not loaded: {e}", root.display()))?;
    let state = crate::state::StateDir::open(&loaded.manifest.dir)
        .map_err(|e| format!("stackato-local: {e}"))?;
    let mut facts = crate::plan::facts(&opts.target_url);
    // The user's PATH, not one with the previous project's entries still in it.
    if let Some(path) = before("PATH") {
        facts.path = path;
    }
    let mut prompt = |_: &crate::manifest::model::EnvVar| None;
    // At every prompt: no interpreter is run (a Node or Ruby app gets what `run` chose).
    crate::platform::runtime_bin::set_files_only();
    // The paths point at the checkout.
    let req = crate::plan::EnvOptions {
        place: crate::platform::layout::Place::Checkout,
        ..crate::plan::EnvOptions::default()
    }
    .request(None, 0, false);
    let built = crate::plan::build_env(&loaded, &state, &facts, &req, &mut prompt)
        .map_err(|e| format!("stackato-local: {} not loaded: {e}", root.display()))?;
    let mut code = String::new();
    let mut backup: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut n = 0;
    let mut skipped: Vec<String> = Vec::new();
    for v in built.env.vars() {
        let Some(value) = hook_value(v) else {
            // Named only when the project set it: the platform's own `HOME` is kept out of
            // every project, and saying so at each load would be noise.
            if !matches!(
                v.layer,
                crate::model::Layer::Platform | crate::model::Layer::Shell
            ) {
                skipped.push(shell::shown_name(&v.name));
            }
            continue;
        };
        if value != v.value {
            skipped.push(format!("{} (the project's entries)", v.name));
        }
        backup.insert(v.name.clone(), before(&v.name));
        code.push_str(&set(shell, &v.name, value));
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
    // The trust store too: `deny` (or a new `allow`) is seen at the next prompt, as direnv does.
    if let Ok(store) = crate::trust::store::location() {
        files.push(store);
    }
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
            "stackato-local: loaded {} ({n} variables, profile {}){}{}",
            built.app,
            built.profile.profile.number(),
            built
                .url
                .as_ref()
                .map(|u| format!("; `run` serves it at {u}"))
                .unwrap_or_default(),
            if skipped.is_empty() {
                String::new()
            } else {
                format!("; not exported: {}", skipped.join(", "))
            }
        ),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Layer, Var};

    #[test]
    fn the_rule_keeps_shell_control_startup_hooks_and_identity_out() {
        for n in [
            "PROMPT_COMMAND",
            "PS1",
            "BASH_ENV",
            "ENV",
            "IFS",
            "HISTFILE",
            "ZDOTDIR",
            "fish_function_path",
            "precmd_functions",
            "path",
            "LD_PRELOAD",
            "DYLD_INSERT_LIBRARIES",
            "NODE_OPTIONS",
            "GIT_SSH_COMMAND",
            "https_proxy",
            "HOME",
            "XDG_DATA_HOME",
            "STACKATO_LOCAL_TRUST",
            "a.b",
            "X;Y",
        ] {
            assert_eq!(hook_export(n), Export::Never, "{n}");
        }
        for n in ["DATABASE_URL", "GREETING", "DJANGO_SETTINGS_MODULE", "PORT"] {
            assert_eq!(hook_export(n), Export::Yes, "{n}");
        }
        assert_eq!(hook_export("PATH"), Export::ToolValue);
    }

    #[test]
    fn path_keeps_only_the_tools_value() {
        let var = |layer: Layer, hidden: Vec<(Layer, String)>| Var {
            name: "PATH".into(),
            value: "./bin:/venv/bin:/usr/bin".into(),
            layer,
            why: String::new(),
            hidden,
        };
        let platform = var(Layer::Platform, Vec::new());
        assert_eq!(hook_value(&platform), Some("./bin:/venv/bin:/usr/bin"));
        let repo = var(
            Layer::Manifest,
            vec![(Layer::Platform, "/venv/bin:/usr/bin".into())],
        );
        assert_eq!(hook_value(&repo), Some("/venv/bin:/usr/bin"));
        let only_repo = var(Layer::DotEnv(".env".into()), Vec::new());
        assert_eq!(hook_value(&only_repo), None);
    }
}
