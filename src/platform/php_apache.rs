//! Which server runs a PHP app's default web process here: Apache with mod_php (what the
//! platform used) when Debian's `apache2` and `libapache2-mod-php` are installed, else PHP's
//! built-in server with the router of [`super::web::PHP_ROUTER`]; and, for Apache, the private
//! configuration written into the instance root (`$STACKATO_APP_ROOT/apache2.conf`) with the
//! access its worker processes need when the tool runs as root.
//!
//! Apache refuses to serve as root: started as root it drops its workers to `User`, here the
//! services' unprivileged user ([`crate::services::paths::RunAs`]). The project's state dir stays
//! 0700; that user alone gets search (`x`) permission on the directories between it and the
//! instance's copy, through a POSIX ACL entry. When the project itself is out of that user's
//! reach (a 0700 home above it), the built-in server is used, and `run` says why. The
//! instance's own copy of the app is handed over to that user, so that the app can write
//! into its directory (uploads, caches) as the platform's app user could.

use std::path::{Path, PathBuf};

use crate::manifest::App;
use crate::platform::layout::Layout;

/// The switch that forces PHP's built-in server (`builtin`).
pub(crate) const SWITCH: &str = "STACKATO_LOCAL_PHP_SERVER";

/// The command of the Apache default (`$STACKATO_APP_ROOT` filled in by `run`).
pub(crate) const APACHE_COMMAND: &str = "apache2 -DFOREGROUND -f $STACKATO_APP_ROOT/apache2.conf";

/// Where Debian keeps Apache's modules.
const MODULES: &str = "/usr/lib/apache2/modules";

/// Modules loaded when present: what `.htaccess` files of PHP apps commonly use.
const OPTIONAL_MODULES: &[(&str, &str)] = &[
    ("authz_host_module", "mod_authz_host.so"),
    ("access_compat_module", "mod_access_compat.so"),
    ("authn_core_module", "mod_authn_core.so"),
    ("authn_file_module", "mod_authn_file.so"),
    ("authz_user_module", "mod_authz_user.so"),
    ("auth_basic_module", "mod_auth_basic.so"),
    ("alias_module", "mod_alias.so"),
    ("env_module", "mod_env.so"),
    ("setenvif_module", "mod_setenvif.so"),
    ("headers_module", "mod_headers.so"),
    ("expires_module", "mod_expires.so"),
    ("filter_module", "mod_filter.so"),
    ("deflate_module", "mod_deflate.so"),
    ("negotiation_module", "mod_negotiation.so"),
];

/// The server chosen for one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PhpServer {
    /// Apache: its binary and mod_php's module file.
    Apache { apache2: PathBuf, php: PathBuf },
    /// PHP's built-in server, and why not Apache.
    Builtin(String),
}

/// Why Apache is not used, or could not be set up.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApacheError {
    #[error("Apache is not installed (`apt-get install apache2 libapache2-mod-php`)")]
    NoApache,
    #[error("mod_php is not installed (`apt-get install libapache2-mod-php`)")]
    NoModPhp,
    #[error("Apache's {0} is missing from {MODULES}")]
    NoModule(&'static str),
    #[error(transparent)]
    ServiceUser(crate::services::ServiceError),
    #[error("cannot give {user} access to {} for Apache: {source}", .dir.display())]
    Grant {
        user: String,
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot give {user} the instance's copy {} for Apache's workers to write in: {source}", .dir.display())]
    HandOver {
        user: String,
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Write(#[from] crate::state::StateError),
}

/// The Apache binary and mod_php, when both are installed (with mod_rewrite and prefork).
fn installed() -> Result<(PathBuf, PathBuf), ApacheError> {
    let apache2 = crate::programs::find("apache2")
        .or_else(|| Some(PathBuf::from("/usr/sbin/apache2")).filter(|p| p.is_file()))
        .ok_or(ApacheError::NoApache)?;
    let m = Path::new(MODULES);
    let mut php: Vec<PathBuf> = std::fs::read_dir(m)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("libphp") && n.ends_with(".so"))
                })
                .collect()
        })
        .unwrap_or_default();
    php.sort();
    let php = php.pop().ok_or(ApacheError::NoModPhp)?;
    for needed in ["mod_rewrite.so", "mod_mpm_prefork.so", "mod_authz_core.so"] {
        if !m.join(needed).is_file() {
            return Err(ApacheError::NoModule(needed));
        }
    }
    Ok((apache2, php))
}

/// Whether the services' user can reach `dir` from `/` (every directory above it searchable
/// by others), given that the state dir and below get an ACL entry.
fn reachable_by_others(dir: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    dir.ancestors()
        .skip(1)
        .all(|d| std::fs::metadata(d).is_ok_and(|m| m.permissions().mode() & 0o001 != 0))
}

/// The server for the instance `layout` of `app`: Apache when installed and usable, unless
/// forced to the built-in server with `STACKATO_LOCAL_PHP_SERVER=builtin`.
pub(crate) fn choose(app: &App, layout: &Layout) -> PhpServer {
    if std::env::var(SWITCH).is_ok_and(|v| v == "builtin") {
        return PhpServer::Builtin(format!("{SWITCH}=builtin"));
    }
    let (apache2, php) = match installed() {
        Ok(x) => x,
        Err(why) => return PhpServer::Builtin(why.to_string()),
    };
    let doc = layout.document_root(app);
    for p in [&doc, &layout.app_root] {
        let s = p.display().to_string();
        if s.contains(['"', '\n', '\r', '\\']) {
            return PhpServer::Builtin(format!(
                "the path {s} cannot be written into Apache's configuration"
            ));
        }
    }
    if nix::unistd::Uid::effective().is_root() {
        // The project's directory (the state dir's parent) must be reachable by the
        // services' user; below it, the ACL entries of [`grant`] give the way.
        let project = layout.state.parent().unwrap_or(&layout.state);
        if !reachable_by_others(&project.join("x")) {
            return PhpServer::Builtin(format!(
                "Apache's workers run as an unprivileged user (Apache refuses to serve as root), and a directory above {} is closed to other users",
                project.display()
            ));
        }
    }
    PhpServer::Apache { apache2, php }
}

/// Escape nothing: [`choose`] refused paths that would need it.
fn q(p: &Path) -> String {
    format!("\"{}\"", p.display())
}

/// The configuration of the private Apache of one instance.
pub(crate) fn config(
    php: &Path,
    layout: &Layout,
    doc: &Path,
    port: u16,
    user: Option<(&str, u32)>,
    env_names: &[String],
) -> String {
    let m = Path::new(MODULES);
    let root = &layout.app_root;
    let mut c = String::new();
    c.push_str(
        "# Written by stackato-local for this instance: Apache with mod_php, as on the platform.\n",
    );
    c.push_str("ServerRoot \"/etc/apache2\"\nServerName 127.0.0.1\n");
    c.push_str(&format!("Listen {}:{port}\n", super::web::LOCAL_HOST));
    c.push_str(&format!("PidFile {}\n", q(&root.join("apache2.pid"))));
    c.push_str(&format!("DefaultRuntimeDir {}\n", q(root)));
    c.push_str("ErrorLog /dev/stderr\nLogLevel warn\n");
    c.push_str(
        "LogFormat \"%h %l %u %t \\\"%r\\\" %>s %b\" common\nCustomLog /dev/stdout common\n",
    );
    c.push_str(&format!(
        "LoadModule mpm_prefork_module {}\n",
        q(&m.join("mod_mpm_prefork.so"))
    ));
    c.push_str(&format!(
        "LoadModule authz_core_module {}\n",
        q(&m.join("mod_authz_core.so"))
    ));
    for (name, file) in [
        ("dir_module", "mod_dir.so"),
        ("mime_module", "mod_mime.so"),
        ("rewrite_module", "mod_rewrite.so"),
    ]
    .iter()
    .chain(OPTIONAL_MODULES)
    {
        if m.join(file).is_file() {
            c.push_str(&format!("LoadModule {name} {}\n", q(&m.join(file))));
        }
    }
    c.push_str(&format!("LoadModule php_module {}\n", q(php)));
    if Path::new("/etc/mime.types").is_file() {
        c.push_str("TypesConfig /etc/mime.types\n");
    }
    if let Some((u, gid)) = user {
        c.push_str(&format!("User {u}\nGroup #{gid}\n"));
    }
    c.push_str("StartServers 2\nMinSpareServers 1\nMaxSpareServers 4\n");
    c.push_str(&format!("DocumentRoot {}\n", q(doc)));
    c.push_str("<Directory />\n    AllowOverride None\n    Require all denied\n</Directory>\n");
    c.push_str(&format!(
        "<Directory {}>\n    Options FollowSymLinks\n    AllowOverride All\n    Require all granted\n</Directory>\n",
        q(doc)
    ));
    c.push_str("<FilesMatch \"^\\.ht\">\n    Require all denied\n</FilesMatch>\n");
    c.push_str("DirectoryIndex index.php index.html index.htm\n");
    c.push_str(
        "<FilesMatch \"\\.(php|phtml)$\">\n    SetHandler application/x-httpd-php\n</FilesMatch>\n",
    );
    // The app's environment reaches PHP's $_SERVER, as the platform's Apache passed it.
    for n in env_names
        .iter()
        .filter(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
    {
        c.push_str(&format!("PassEnv {n}\n"));
    }
    c
}

/// Give the services' user search permission (an ACL entry, nothing else changes) on each
/// directory from the project's state dir down to `doc`, and read on those under the
/// instance copy that lack it for others.
fn grant(layout: &Layout, doc: &Path, uid: u32) -> std::io::Result<()> {
    let mut dirs: Vec<&Path> = doc
        .ancestors()
        .take_while(|d| d.starts_with(&layout.state))
        .collect();
    dirs.push(&layout.app_root);
    for d in dirs {
        add_search_acl(d, uid)?;
    }
    Ok(())
}

/// Add `user:<uid>:--x` to the access ACL of `dir` (kept as its mode says for the rest).
fn add_search_acl(dir: &Path, uid: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::symlink_metadata(dir)?.permissions().mode();
    if mode & 0o001 != 0 {
        return Ok(());
    }
    // The Linux xattr form of a POSIX ACL: version 2, then (tag, perm, id) entries sorted by
    // tag: USER_OBJ, USER, GROUP_OBJ, MASK, OTHER.
    const UNDEFINED: u32 = u32::MAX;
    let entry = |tag: u16, perm: u32, id: u32| {
        let mut b = Vec::with_capacity(8);
        b.extend_from_slice(&tag.to_le_bytes());
        b.extend_from_slice(&(perm as u16).to_le_bytes());
        b.extend_from_slice(&id.to_le_bytes());
        b
    };
    let group = (mode >> 3) & 7;
    let mut acl = 2u32.to_le_bytes().to_vec();
    acl.extend(entry(0x01, (mode >> 6) & 7, UNDEFINED));
    acl.extend(entry(0x02, 1, uid));
    acl.extend(entry(0x04, group, UNDEFINED));
    acl.extend(entry(0x10, group | 1, UNDEFINED));
    acl.extend(entry(0x20, mode & 7, UNDEFINED));
    let path = std::ffi::CString::new(dir.as_os_str().as_encoded_bytes())
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    let name = c"system.posix_acl_access";
    // SAFETY: both strings are NUL-terminated and `acl` outlives the call.
    let r = unsafe {
        libc::lsetxattr(
            path.as_ptr(),
            name.as_ptr(),
            acl.as_ptr().cast(),
            acl.len(),
            0,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Make `dir` and everything below it owned by `uid`:`gid` (links themselves, never what they
/// point at; entries already theirs are left as they are).
fn hand_over(dir: &Path, uid: u32, gid: u32) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        let m = std::fs::symlink_metadata(&p)?;
        if m.uid() != uid || m.gid() != gid {
            std::os::unix::fs::lchown(&p, Some(uid), Some(gid))?;
        }
        if m.is_dir() {
            for e in std::fs::read_dir(&p)? {
                stack.push(e?.path());
            }
        }
    }
    Ok(())
}

/// Write the instance's Apache configuration (and, as root, give the services' user its way
/// to the document root) when `server` is Apache; whether it is (its configuration holds the
/// port and a pid file: it cannot run twice at once).
pub(crate) fn install(
    app: &App,
    layout: &Layout,
    port: u16,
    env_names: &[String],
) -> Result<bool, ApacheError> {
    let uses = matches!(
        super::web::default_web_template(app),
        Some(super::web::DefaultWeb::Framework(t)) if t.contains(super::web::PHP_ROUTER)
    );
    if !uses {
        return Ok(false);
    }
    let PhpServer::Apache { php, .. } = choose(app, layout) else {
        return Ok(false);
    };
    let doc = layout.document_root(app);
    let user = if nix::unistd::Uid::effective().is_root() {
        let run_as =
            crate::services::paths::RunAs::for_services().map_err(ApacheError::ServiceUser)?;
        grant(layout, &doc, run_as.uid).map_err(|source| ApacheError::Grant {
            user: run_as.name.clone(),
            dir: doc.clone(),
            source,
        })?;
        // The app writes into its own directory (uploads, caches), as it did as the
        // platform's app user: the instance's own copy becomes the workers' user's. The
        // checkout itself (`--in-place`) is the user's and is left alone.
        if layout.home == layout.app_root.join("app") {
            hand_over(&layout.home, run_as.uid, run_as.gid).map_err(|source| {
                ApacheError::HandOver {
                    user: run_as.name.clone(),
                    dir: layout.home.clone(),
                    source,
                }
            })?;
        }
        Some((run_as.name, run_as.gid))
    } else {
        None
    };
    let text = config(
        &php,
        layout,
        &doc,
        port,
        user.as_ref().map(|(n, g)| (n.as_str(), *g)),
        env_names,
    );
    crate::state::write_atomic(&layout.app_root.join("apache2.conf"), text.as_bytes())?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::layout::Place;

    #[test]
    fn config_serves_the_document_root_with_htaccess_and_passes_the_environment() {
        let d = tempfile::tempdir().expect("tmp");
        std::fs::write(
            d.path().join("stackato.yml"),
            "name: p\nframework:\n  type: php\n",
        )
        .expect("write");
        let opts = crate::manifest::LoadOptions::new(d.path());
        let mut ask = |_: &str| None;
        let m = crate::manifest::load(&opts, &mut ask)
            .expect("loads")
            .manifest;
        let app = &m.apps[0];
        let layout = Layout::new(&m.dir, app, 0, false, Place::Checkout);
        let doc = layout.document_root(app);
        let c = config(
            Path::new("/usr/lib/apache2/modules/libphp8.2.so"),
            &layout,
            &doc,
            5123,
            Some(("stackato-local", 999)),
            &["DATABASE_URL".into(), "BAD NAME".into()],
        );
        assert!(c.contains("Listen 127.0.0.1:5123\n"), "{c}");
        assert!(
            c.contains(&format!("DocumentRoot \"{}\"", doc.display())),
            "{c}"
        );
        assert!(c.contains("AllowOverride All"), "{c}");
        assert!(c.contains("User stackato-local\nGroup #999\n"), "{c}");
        assert!(c.contains("PassEnv DATABASE_URL\n"), "{c}");
        assert!(!c.contains("BAD NAME"), "{c}");
        assert!(c.contains(&format!(
            "PidFile \"{}\"",
            layout.app_root.join("apache2.pid").display()
        )));
    }
}
