//! `init` without the terminal: the app's name, the refusal to replace an existing manifest,
//! writing the new `stackato.yml`, and keeping the state directory out of git.

use std::path::{Path, PathBuf};

use crate::onboard::detect::{self, DetectError, Detection, Kind};
use crate::onboard::render;
use crate::state::StateDir;

/// What `init` was asked to do.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    /// The app directory.
    pub dir: PathBuf,
    /// Where to write (`--manifest`); `dir/stackato.yml` when `None`.
    pub manifest: Option<PathBuf>,
    pub name: Option<String>,
    pub kind: Option<Kind>,
    pub force: bool,
    pub dry_run: bool,
}

/// What became of the project's `.gitignore`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Gitignore {
    /// It already ignored the state directory.
    AlreadyIgnored,
    /// The entry was appended to the existing file.
    Added,
    /// There was none: one was created with just the entry.
    Created,
    /// It could not be updated (the reason).
    Failed(String),
}

/// The result of a successful `init`.
#[derive(Debug, Clone)]
pub(crate) struct Outcome {
    pub detection: Detection,
    pub name: String,
    /// Why this name.
    pub name_why: String,
    /// The manifest text.
    pub text: String,
    /// Where it was (or, with `--dry-run`, would be) written.
    pub path: PathBuf,
    /// An existing manifest that was replaced (`--force`).
    pub replaced: Option<PathBuf>,
    /// A `manifest.yml` beside it, which the new stackato.yml now takes precedence over.
    pub shadowed: Option<PathBuf>,
    /// `None` with `--dry-run`.
    pub gitignore: Option<Gitignore>,
}

#[derive(Debug, thiserror::Error)]
pub(crate) enum InitError {
    #[error("{} already exists; pass --force to replace it (or --dry-run to see what init would write)", .0.display())]
    Exists(PathBuf),
    #[error("{}", .0)]
    BadName(String),
    #[error(transparent)]
    Detect(#[from] DetectError),
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The default app name: the directory's name, lower-cased, every character other than
/// `a-z`, `0-9` and `-` replaced by `-` (runs collapsed, none at either end).
pub(crate) fn default_name(dir: &Path) -> String {
    let canon = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    let raw = canon
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut name = String::new();
    for c in raw.to_lowercase().chars() {
        if c.is_ascii_lowercase() || c.is_ascii_digit() {
            name.push(c);
        } else if !name.ends_with('-') {
            name.push('-');
        }
    }
    let name = name.trim_matches('-');
    let name: String = name.chars().take(63).collect();
    let name = name.trim_end_matches('-');
    if name.is_empty() {
        "app".to_string()
    } else {
        name.to_string()
    }
}

/// A name the platform accepts: a hostname label (letters, digits, `-`; no `.`).
pub(crate) fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("the application name is empty".into());
    }
    if name.len() > 63 {
        return Err(format!(
            "the application name {name:?} is longer than 63 characters (it becomes a hostname label)"
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || *c == '-'))
    {
        return Err(format!(
            "the application name {name:?} contains {c:?}: use letters, digits and `-` (it becomes a hostname label)"
        ));
    }
    if name.starts_with('-') || name.ends_with('-') {
        return Err(format!(
            "the application name {name:?} starts or ends with `-` (it becomes a hostname label)"
        ));
    }
    Ok(())
}

/// Detect, render and (unless `dry_run`) write the manifest and update `.gitignore`.
pub(crate) fn init(req: &Request) -> Result<Outcome, InitError> {
    let path = match &req.manifest {
        Some(m) if m.is_absolute() => m.clone(),
        Some(m) => std::env::current_dir()
            .map(|c| c.join(m))
            .unwrap_or_else(|_| m.clone()),
        None => req.dir.join("stackato.yml"),
    };
    // Never replace a manifest without --force: the one named, or any the client would find
    // in the directory.
    let mut existing: Vec<PathBuf> = vec![path.clone()];
    if req.manifest.is_none() {
        existing.push(req.dir.join("manifest.yml"));
    }
    let found = existing.into_iter().find(|p| p.exists());
    if let Some(p) = &found
        && !req.force
        && !req.dry_run
    {
        return Err(InitError::Exists(p.clone()));
    }
    let (name, name_why) = match &req.name {
        Some(n) => {
            check_name(n).map_err(InitError::BadName)?;
            (n.clone(), "--name".to_string())
        }
        None => (
            default_name(&req.dir),
            "the directory's name, lower-cased, other characters replaced by `-`".to_string(),
        ),
    };
    let detection = detect::detect(&req.dir, req.kind)?;
    let text = render::render(&detection, &name);
    let replaced = found.clone().filter(|p| *p == path);
    let shadowed = found.filter(|p| *p != path);
    if req.dry_run {
        return Ok(Outcome {
            detection,
            name,
            name_why,
            text,
            path,
            replaced,
            shadowed,
            gitignore: None,
        });
    }
    write_manifest(&path, &text)?;
    let project = path.parent().unwrap_or(&req.dir).to_path_buf();
    let gitignore = Some(ignore_state_dir(&project));
    Ok(Outcome {
        detection,
        name,
        name_why,
        text,
        path,
        replaced,
        shadowed,
        gitignore,
    })
}

/// Write the manifest atomically, readable by all (0644), keeping an existing file's mode.
fn write_manifest(path: &Path, text: &str) -> Result<(), InitError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(path).map_or(0o644, |m| m.permissions().mode() & 0o7777);
    let err = |source: std::io::Error| InitError::Write {
        path: path.to_path_buf(),
        source,
    };
    crate::state::write_atomic(path, text.as_bytes()).map_err(|e| match e {
        crate::state::StateError::Write { source, .. } => err(source),
        other => err(std::io::Error::other(other.to_string())),
    })?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(err)
}

/// The project's `.gitignore`: a regular file, not through a symlink (the repository's: it
/// could lead to /dev/zero or a FIFO), at most 1 MiB.
fn read_gitignore(gi: &Path) -> std::io::Result<String> {
    crate::state::read_private(gi, 1 << 20).map(|b| String::from_utf8_lossy(&b).into_owned())
}

/// Keep `.stackato-local/` out of git: the state directory's own rule (`StateDir::open` adds
/// the entry to an existing `.gitignore`), after creating an empty `.gitignore` when there is
/// none. This also creates the state directory (0700), as the first `run` would.
fn ignore_state_dir(project: &Path) -> Gitignore {
    let gi = project.join(".gitignore");
    let before = match read_gitignore(&gi) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Gitignore::Failed(format!("cannot read {}: {e}", gi.display())),
    };
    if before
        .as_deref()
        .is_some_and(crate::state::gitignore_covers_state)
    {
        return Gitignore::AlreadyIgnored;
    }
    // Created new (`O_EXCL`): a dangling symlink in its place is not followed.
    if before.is_none()
        && let Err(e) = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&gi)
    {
        return Gitignore::Failed(format!("cannot create {}: {e}", gi.display()));
    }
    if let Err(e) = StateDir::open(project) {
        return Gitignore::Failed(e.to_string());
    }
    match read_gitignore(&gi) {
        Ok(t) if crate::state::gitignore_covers_state(&t) => {
            if before.is_none() {
                Gitignore::Created
            } else {
                Gitignore::Added
            }
        }
        Ok(_) => Gitignore::Failed(format!("{} could not be updated", gi.display())),
        Err(e) => Gitignore::Failed(format!("cannot read {}: {e}", gi.display())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("My_Cool.App 2");
        std::fs::create_dir(&d).unwrap();
        assert_eq!(default_name(&d), "my-cool-app-2");
        let d = t.path().join("__");
        std::fs::create_dir(&d).unwrap();
        assert_eq!(default_name(&d), "app");
        assert!(check_name("shop-api").is_ok());
        assert!(check_name("shop.api").is_err());
        assert!(check_name("-x").is_err());
        assert!(check_name("").is_err());
    }

    #[test]
    fn gitignore_rules() {
        assert!(crate::state::gitignore_covers_state(
            "target\n/.stackato-local/\n"
        ));
        assert!(crate::state::gitignore_covers_state(".stackato-local\n"));
        assert!(!crate::state::gitignore_covers_state(
            "# .stackato-local\n.stackato-local-x\n"
        ));
    }
}
