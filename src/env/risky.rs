//! Which environment variables change how programs run rather than being data for the app:
//! shell start-up and control, loaders and interpreters' start-up hooks and search paths,
//! installers' settings, the commands other programs run, and identity. One list, two users:
//! `allow` shows such `env:` / `.env` values prominently (src/trust/shown.rs), and the shell
//! hook never exports them into the user's shell (src/cli/hook.rs).

/// Shell control: what bash, zsh and fish read to decide what to run, where to look, how to
/// split words, where history goes; and their own state.
const SHELL_CONTROL: &[&str] = &[
    "PROMPT_COMMAND",
    "PS0",
    "PS1",
    "PS2",
    "PS3",
    "PS4",
    "PROMPT",
    "PROMPT2",
    "PROMPT3",
    "PROMPT4",
    "RPROMPT",
    "RPROMPT2",
    "RPS1",
    "RPS2",
    "BASH_ENV",
    "ENV",
    "IFS",
    "SHELLOPTS",
    "BASHOPTS",
    "CDPATH",
    "FPATH",
    "ZDOTDIR",
    "TMOUT",
    "INPUTRC",
    "GLOBIGNORE",
    "FIGNORE",
    "POSIXLY_CORRECT",
    "MAIL",
    "MAILPATH",
    "MAILCHECK",
    "SAVEHIST",
    "NULLCMD",
    "READNULLCMD",
    "WORDCHARS",
    "KEYTIMEOUT",
    "PWD",
    "OLDPWD",
    "SHLVL",
    "UID",
    "EUID",
    "PPID",
    "RANDOM",
    "SECONDS",
    "LINENO",
    "TERM",
    "TERMINFO",
    "TERMINFO_DIRS",
    // zsh's special lower-case parameters (tied to the ones above, or run functions).
    "path",
    "cdpath",
    "fpath",
    "fignore",
    "manpath",
    "mailpath",
    "module_path",
    "histchars",
    "prompt",
    "psvar",
    "watch",
    "status",
    "pipestatus",
    "argv",
    "options",
    "parameters",
    "functions",
    "aliases",
    "commands",
    "signals",
    // fish's own.
    "history",
    "version",
    "umask",
    "hostname",
];
const SHELL_CONTROL_PREFIXES: &[&str] = &["HIST", "BASH_", "ZSH_", "fish_", "__fish"];
const SHELL_CONTROL_SUFFIXES: &[&str] = &["_functions"];

/// Loaders, interpreters' start-up hooks and module paths, and the programs or servers that
/// other tools pick from the environment (editor, pager, askpass, proxies, CA bundles).
const STARTUP_HOOKS: &[&str] = &[
    "NODE_OPTIONS",
    "NODE_PATH",
    "NODE_REPL_EXTERNAL_MODULE",
    "PYTHONSTARTUP",
    "PYTHONHOME",
    "PYTHONUSERBASE",
    "PYTHONBREAKPOINT",
    "PERL5OPT",
    "PERLLIB",
    "PERL5DB",
    "RUBYOPT",
    "RUBYLIB",
    "JAVA_TOOL_OPTIONS",
    "_JAVA_OPTIONS",
    "JDK_JAVA_OPTIONS",
    "CLASSPATH",
    "LESSOPEN",
    "LESSCLOSE",
    "LESSKEY",
    "LESSKEYIN",
    "GCONV_PATH",
    "GLIBC_TUNABLES",
    "LOCPATH",
    "NLSPATH",
    "HOSTALIASES",
    "EDITOR",
    "VISUAL",
    "PAGER",
    "MANPAGER",
    "BROWSER",
    "SUDO_ASKPASS",
    "SSH_ASKPASS",
    "SSH_AUTH_SOCK",
    "GNUPGHOME",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "CURL_CA_BUNDLE",
    "http_proxy",
    "https_proxy",
    "ftp_proxy",
    "all_proxy",
    "no_proxy",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "FTP_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "PERL_MB_OPT",
    "PERL_MM_OPT",
    "BUNDLE_GEMFILE",
    "PHPRC",
    "PHP_INI_SCAN_DIR",
];
const STARTUP_PREFIXES: &[&str] = &["LD_", "DYLD_", "GIT_"];

/// Installers' settings and the platform's command variables (what staging runs).
const INSTALLERS: &[&str] = &["PROCESSES_WEB", "STACKATO_UWSGI", "PIP_REQUIREMENTS_FILE"];
const INSTALLER_PREFIXES: &[&str] = &["NPM_CONFIG_", "PIP_", "UWSGI_"];

/// Identity: who the user is and where this and other tools keep their files and trust.
const IDENTITY: &[&str] = &["HOME", "USER", "LOGNAME", "SHELL", "TMPDIR"];
const IDENTITY_PREFIXES: &[&str] = &["XDG_", "STACKATO_LOCAL_"];

/// Search paths the tool itself sets for the app (the virtualenv's `bin`, the app directory,
/// staged Perl modules, staged gems): the hook exports them with the tool's value only.
pub(crate) const TOOL_SEARCH_PATHS: &[&str] = &["PATH", "PYTHONPATH", "PERL5LIB", "GEM_HOME"];

/// Whether `name` changes how programs (shells, loaders, interpreters, installers, this tool)
/// behave. Exact names match as written; prefixes also match the name upper-cased (npm reads
/// `npm_config_*` as well as `NPM_CONFIG_*`).
pub(crate) fn changes_how_programs_run(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    let prefixed = |ps: &[&str]| {
        ps.iter()
            .any(|p| name.starts_with(p) || upper.starts_with(p))
    };
    TOOL_SEARCH_PATHS.contains(&name)
        || SHELL_CONTROL.contains(&name)
        || STARTUP_HOOKS.contains(&name)
        || INSTALLERS.contains(&name)
        || IDENTITY.contains(&name)
        || prefixed(SHELL_CONTROL_PREFIXES)
        || prefixed(STARTUP_PREFIXES)
        || prefixed(INSTALLER_PREFIXES)
        || prefixed(IDENTITY_PREFIXES)
        || SHELL_CONTROL_SUFFIXES.iter().any(|s| name.ends_with(s))
}

#[cfg(test)]
mod tests {
    use super::changes_how_programs_run as r;

    #[test]
    fn program_controls_are_risky_and_app_data_is_not() {
        for n in [
            "BASH_ENV",
            "ENV",
            "PROMPT_COMMAND",
            "PS1",
            "IFS",
            "PATH",
            "PYTHONPATH",
            "LD_PRELOAD",
            "DYLD_INSERT_LIBRARIES",
            "NODE_OPTIONS",
            "PYTHONSTARTUP",
            "PERL5OPT",
            "RUBYOPT",
            "LESSOPEN",
            "GIT_SSH_COMMAND",
            "HOME",
            "XDG_DATA_HOME",
            "STACKATO_LOCAL_TRUST",
            "npm_config_script_shell",
            "PIP_INDEX_URL",
            "HISTFILE",
            "fish_greeting",
            "precmd_functions",
            "http_proxy",
        ] {
            assert!(r(n), "{n}");
        }
        for n in [
            "DATABASE_URL",
            "DJANGO_SETTINGS_MODULE",
            "SECRET_KEY",
            "PORT",
            "DEBUG",
            "ENVIRONMENT",
            "LANG",
        ] {
            assert!(!r(n), "{n}");
        }
    }
}
