//! The per-project state directory `.stackato-local/`: created 0700 beside the manifest, kept
//! out of git, written atomically (temp file + fsync + rename, files 0600) and locked with
//! `flock` where two commands must not act at once (`run` in one terminal, `env` in another).
//!
//! The directory may come with a cloned repository, so it is untrusted input: it must be a
//! real directory owned by the effective user (a symlink or someone else's directory is
//! refused, never chmod-ed through), and everything the tool creates inside it is created
//! without following links (sub-directories component by component, files with
//! `O_EXCL|O_NOFOLLOW`, reads with `O_NOFOLLOW` of regular files only, with a size cap).

use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

/// Name of the state directory inside a project.
pub(crate) const DIR_NAME: &str = ".stackato-local";

/// The most the tool reads of one of its own state files (they are a few kB).
pub(crate) const READ_CAP: u64 = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("cannot create the state directory {path}: {source}")]
    Create { path: PathBuf, source: io::Error },
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("cannot read {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{path} is damaged ({reason}); move it away and the tool will start afresh")]
    Corrupt { path: PathBuf, reason: String },
    #[error("cannot lock {path}: {source}")]
    Lock { path: PathBuf, source: io::Error },
    /// A path in the state directory that the tool will not use: a symbolic link, something
    /// that is not a directory, a directory of another user.
    #[error("refusing to use {path}: {reason}")]
    Unsafe { path: PathBuf, reason: String },
    /// A state directory this machine's stackato-local did not create (a repository can ship
    /// one to plant a virtualenv, a server configuration or a pid file the tool would use).
    #[error(
        "{path} was not created by stackato-local on this machine (it holds: {contents}); a repository can ship one to plant programs the tool would run, so it is not used: move it away (a fresh one is made), or, if an earlier version of stackato-local made it here, run `stackato-local allow --adopt-state`"
    )]
    Foreign { path: PathBuf, contents: String },
}

impl StateError {
    /// The exit code: a foreign state directory is a matter of trust (8), the rest I/O (74).
    pub(crate) fn exit_code(&self) -> i32 {
        match self {
            StateError::Foreign { .. } => crate::exit::UNTRUSTED,
            _ => crate::exit::IO,
        }
    }
}

/// The state directory of one project.
#[derive(Debug, Clone)]
pub struct StateDir {
    root: PathBuf,
}

/// An exclusive lock, released on drop.
#[derive(Debug)]
pub struct Lock {
    _file: File,
}

impl StateDir {
    /// The state directory of the project whose manifest lives in `project_dir`, without
    /// touching the disk.
    pub fn at(project_dir: &Path) -> StateDir {
        StateDir {
            root: project_dir.join(DIR_NAME),
        }
    }

    /// Create it (0700) if needed, and add it to the project's .gitignore if there is one.
    /// Refuses a state directory that is a symlink, not a directory, owned by another user,
    /// or holding a symlink at its top (the tool never makes one there).
    pub fn open(project_dir: &Path) -> Result<StateDir, StateError> {
        Self::open_with(project_dir, false).map(|(s, _)| s)
    }

    /// [`StateDir::open`], adopting a state directory this machine did not create when `adopt`
    /// (the user allowed the project, or passed `--trust`); `true` when it adopted one.
    pub(crate) fn open_with(
        project_dir: &Path,
        adopt: bool,
    ) -> Result<(StateDir, bool), StateError> {
        let s = StateDir::at(project_dir);
        let adopted = open_own_root(&s.root, adopt)?;
        ignore_in_git(project_dir);
        ignore_inside(&s.root);
        Ok((s, adopted))
    }

    /// When the project has a state directory this machine did not create: what it holds
    /// (its top-level entries), for `allow` to show before adopting it.
    pub fn foreign(project_dir: &Path) -> Option<String> {
        let root = project_dir.join(DIR_NAME);
        let f = open_dir_nofollow(&root).ok()?;
        if owner_marker_matches(&root, &f) {
            None
        } else {
            Some(contents(&root))
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn path(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.root.join(rel)
    }

    /// A private (0700) sub-directory, created if needed, none of whose components is a link.
    pub fn dir(&self, rel: impl AsRef<Path>) -> Result<PathBuf, StateError> {
        let p = self.root.join(rel);
        create_private_dir_in(&self.root, &p)?;
        Ok(p)
    }

    /// The lock file `locks/<name>.lock`, opened (0600) without following a link.
    fn lock_file(&self, name: &str) -> Result<(File, PathBuf), StateError> {
        let dir = self.dir("locks")?;
        let path = dir.join(format!("{name}.lock"));
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .custom_flags(NOFOLLOW)
            .open(&path)
            .and_then(|f| regular(f, &path))
            .map_err(|source| {
                unsafe_or(&path, source, |source| StateError::Lock {
                    path: path.clone(),
                    source,
                })
            })?;
        Ok((file, path))
    }

    /// Take the lock `name` (a file under `locks/`), waiting for other holders.
    pub fn lock(&self, name: &str) -> Result<Lock, StateError> {
        let (file, path) = self.lock_file(name)?;
        file.lock()
            .map_err(|source| StateError::Lock { path, source })?;
        Ok(Lock { _file: file })
    }

    /// Take the lock `name` if nobody holds it; `None` when another process does.
    pub(crate) fn try_lock(&self, name: &str) -> Result<Option<Lock>, StateError> {
        let (file, path) = self.lock_file(name)?;
        match file.try_lock() {
            Ok(()) => Ok(Some(Lock { _file: file })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(source)) => Err(StateError::Lock { path, source }),
        }
    }

    /// Read a JSON file of the state dir; `None` when it does not exist yet.
    pub(crate) fn read_json<T: serde::de::DeserializeOwned>(
        &self,
        rel: &str,
    ) -> Result<Option<T>, StateError> {
        let path = self.root.join(rel);
        match read_private(&path, READ_CAP) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|e| StateError::Corrupt {
                        path,
                        reason: e.to_string(),
                    })
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(unsafe_or(&path, source, |source| StateError::Read {
                path: path.clone(),
                source,
            })),
        }
    }

    /// Write a JSON file of the state dir atomically, mode 0600, its directory created
    /// without following links.
    pub(crate) fn write_json<T: serde::Serialize>(
        &self,
        rel: &str,
        value: &T,
    ) -> Result<(), StateError> {
        let path = self.root.join(rel);
        let mut bytes = serde_json::to_vec_pretty(value).map_err(|e| StateError::Write {
            path: path.clone(),
            source: io::Error::other(e),
        })?;
        bytes.push(b'\n');
        if let Some(parent) = path.parent()
            && parent != self.root
        {
            create_private_dir_in(&self.root, parent)?;
        }
        write_atomic(&path, &bytes)
    }
}

/// Flags for opening a file of the state dir: never through a symlink, never blocking on a
/// FIFO someone put in its place, never inherited by children.
const NOFOLLOW: i32 = libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC;

/// `f` when it is a regular file, else an error naming what it is.
fn regular(f: File, path: &Path) -> io::Result<File> {
    let md = f.metadata()?;
    if md.is_file() {
        Ok(f)
    } else {
        Err(io::Error::other(format!(
            "{} is not a regular file",
            path.display()
        )))
    }
}

/// An [`StateError::Unsafe`] when `e` says `path` is a symlink (`ELOOP` from `O_NOFOLLOW`),
/// else `other(e)`.
fn unsafe_or(path: &Path, e: io::Error, other: impl FnOnce(io::Error) -> StateError) -> StateError {
    if e.raw_os_error() == Some(libc::ELOOP) {
        StateError::Unsafe {
            path: path.to_path_buf(),
            reason: "it is a symbolic link (the tool never creates one there); remove it".into(),
        }
    } else {
        other(e)
    }
}

/// Open a file of the state dir for reading (see [`crate::fsx::open_regular`]: not through a
/// symlink, a regular file only); a symlink is `ELOOP`, as `O_NOFOLLOW` reports it, so
/// [`unsafe_or`] names it.
fn open_read(path: &Path) -> io::Result<File> {
    crate::fsx::open_regular(path, false).map_err(not_a_link)
}

fn not_a_link(e: crate::fsx::ReadError) -> io::Error {
    match e {
        crate::fsx::ReadError::NotRegular("a symbolic link") => {
            io::Error::from_raw_os_error(libc::ELOOP)
        }
        other => other.into(),
    }
}

/// Read a file of the state dir: not through a symlink, a regular file only, at most `cap`
/// bytes (more is an `InvalidData` error).
pub(crate) fn read_private(path: &Path, cap: u64) -> io::Result<Vec<u8>> {
    crate::fsx::read_capped(path, false, cap).map_err(not_a_link)
}

/// The last `max` bytes of a file of the state dir (a log), not through a symlink, a regular
/// file only.
pub(crate) fn read_tail(path: &Path, max: u64) -> io::Result<Vec<u8>> {
    use std::io::{Seek, SeekFrom};
    let mut f = open_read(path)?;
    let len = f.metadata()?.len();
    f.seek(SeekFrom::Start(len.saturating_sub(max)))?;
    let mut bytes = Vec::new();
    f.take(max).read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// Open a log file of the state dir for appending (created 0600), never through a symlink.
pub(crate) fn open_append(path: &Path) -> io::Result<File> {
    let f = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .custom_flags(NOFOLLOW)
        .open(path)?;
    let f = regular(f, path)?;
    // Servers write their log through this descriptor: make it blocking again.
    nix::fcntl::fcntl(
        &f,
        nix::fcntl::FcntlArg::F_SETFL(nix::fcntl::OFlag::O_APPEND),
    )
    .map_err(io::Error::from)?;
    Ok(f)
}

/// Open `dir` itself (not a link to it) as a directory.
fn open_dir_nofollow(dir: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(dir)
}

/// What is wrong with `dir` as one of our directories, from its `lstat`.
fn not_a_real_dir(dir: &Path) -> Option<String> {
    match fs::symlink_metadata(dir) {
        Ok(md) if md.file_type().is_symlink() => Some(match fs::read_link(dir) {
            Ok(t) => format!(
                "it is a symbolic link (to {}), not a directory; remove the link",
                t.display()
            ),
            Err(_) => "it is a symbolic link, not a directory; remove the link".into(),
        }),
        Ok(md) if !md.is_dir() => Some("it is not a directory; move it away".into()),
        _ => None,
    }
}

/// Make `dir` (a real directory, opened without following links) mode 0700 through its fd.
/// A 0710 directory with an access ACL is left as it is: its group bits are the ACL's mask
/// (the search entry PHP's Apache workers get, see `platform::php_apache`), which a chmod
/// would reset.
fn fix_mode(f: &File) -> io::Result<()> {
    let mode = f.metadata()?.permissions().mode();
    if mode & 0o077 == 0 || (mode & 0o077 == 0o010 && has_access_acl(f)) {
        return Ok(());
    }
    f.set_permissions(fs::Permissions::from_mode(0o700))
}

/// Whether the open file has a POSIX access ACL.
fn has_access_acl(f: &File) -> bool {
    use std::os::fd::AsRawFd;
    // SAFETY: the name is NUL-terminated; a zero-size query writes nothing.
    let n = unsafe {
        libc::fgetxattr(
            f.as_raw_fd(),
            c"system.posix_acl_access".as_ptr(),
            std::ptr::null_mut(),
            0,
        )
    };
    n > 0
}

/// The project's state directory itself: created (0700) when missing; when present, a real
/// directory owned by the effective user, made 0700 through a descriptor, with no symlink at
/// its top level.
/// The file in the state directory that marks it as created (or adopted) here.
const OWNER_FILE: &str = "owner";

/// What identifies the state directory itself and cannot be chosen by whoever shipped it: its
/// device, inode and birth time (statx), which a clone, a copy or an unpacked archive never
/// keeps.
fn identity(dir: &File) -> io::Result<String> {
    use std::os::fd::AsRawFd;
    // SAFETY: statx on a valid descriptor with an empty path (AT_EMPTY_PATH) fills `stx`.
    let mut stx: libc::statx = unsafe { std::mem::zeroed() };
    let rc = unsafe {
        libc::statx(
            dir.as_raw_fd(),
            c"".as_ptr(),
            libc::AT_EMPTY_PATH,
            libc::STATX_INO | libc::STATX_BTIME,
            &mut stx,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    let (sec, nsec) = if stx.stx_mask & libc::STATX_BTIME != 0 {
        (stx.stx_btime.tv_sec, stx.stx_btime.tv_nsec)
    } else {
        (0, 0)
    };
    Ok(format!(
        "stackato-local state directory {}:{}:{}:{sec}.{nsec:09}\n",
        stx.stx_dev_major, stx.stx_dev_minor, stx.stx_ino
    ))
}

fn owner_marker_matches(root: &Path, dir: &File) -> bool {
    let Ok(want) = identity(dir) else {
        return false;
    };
    read_private(&root.join(OWNER_FILE), 4096).is_ok_and(|b| b == want.as_bytes())
}

fn write_owner_marker(root: &Path, dir: &File) -> Result<(), StateError> {
    let id = identity(dir).map_err(|source| StateError::Write {
        path: root.join(OWNER_FILE),
        source,
    })?;
    write_atomic(&root.join(OWNER_FILE), id.as_bytes())
}

/// The top-level entries of a directory, for a message (at most ten).
fn contents(root: &Path) -> String {
    let mut names: Vec<String> = fs::read_dir(root)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| crate::shell::shown_name(&e.file_name().to_string_lossy()))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    let more = names.len().saturating_sub(10);
    names.truncate(10);
    let mut s = if names.is_empty() {
        "nothing".to_string()
    } else {
        names.join(", ")
    };
    if more > 0 {
        s.push_str(&format!(" and {more} more"));
    }
    s
}

/// Create the state directory or check the existing one: a real directory of ours (see
/// [`StateError::Unsafe`]) that this machine created or adopted (see [`StateError::Foreign`]);
/// `adopt` accepts a foreign one and marks it. `true` when it adopted one.
fn open_own_root(root: &Path, adopt: bool) -> Result<bool, StateError> {
    let err = |source| StateError::Create {
        path: root.to_path_buf(),
        source,
    };
    let refuse = |reason: String| StateError::Unsafe {
        path: root.to_path_buf(),
        reason,
    };
    let created = match fs::DirBuilder::new().mode(0o700).create(root) {
        Ok(()) => true,
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => false,
        Err(e) => return Err(err(e)),
    };
    match fs::symlink_metadata(root) {
        // Something else is in the way: the directory cannot be created.
        Ok(md) if !md.is_dir() && !md.file_type().is_symlink() => {
            return Err(err(io::Error::from_raw_os_error(libc::EEXIST)));
        }
        _ => {}
    }
    if let Some(why) = not_a_real_dir(root) {
        return Err(refuse(why));
    }
    let f = open_dir_nofollow(root).map_err(|e| unsafe_or(root, e, err))?;
    let md = f.metadata().map_err(err)?;
    let me = nix::unistd::Uid::effective().as_raw();
    if md.uid() != me {
        let owner = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(md.uid()))
            .ok()
            .flatten()
            .map_or_else(|| format!("uid {}", md.uid()), |u| u.name);
        return Err(refuse(format!(
            "it belongs to {owner}, not to you (uid {me}); the state directory must be your own: move it away"
        )));
    }
    fix_mode(&f).map_err(err)?;
    for entry in fs::read_dir(root).map_err(err)? {
        let entry = entry.map_err(err)?;
        if entry.file_type().is_ok_and(|t| t.is_symlink()) {
            return Err(StateError::Unsafe {
                path: entry.path(),
                reason: "it is a symbolic link (the tool never creates one there); remove it"
                    .into(),
            });
        }
    }
    if created {
        write_owner_marker(root, &f)?;
        return Ok(false);
    }
    if owner_marker_matches(root, &f) {
        return Ok(false);
    }
    if !adopt {
        return Err(StateError::Foreign {
            path: root.to_path_buf(),
            contents: contents(root),
        });
    }
    write_owner_marker(root, &f)?;
    Ok(true)
}

/// `mkdir -p` with mode 0700 on the directories it creates, and 0700 enforced on `dir`
/// (through a descriptor: a symlink at `dir` is refused, never chmod-ed through). For
/// directories outside a project (the trust store, `/var/lib/stackato-local`); inside one
/// use [`create_private_dir_in`] or [`StateDir::dir`].
pub(crate) fn create_private_dir(dir: &Path) -> Result<(), StateError> {
    let err = |source| StateError::Create {
        path: dir.to_path_buf(),
        source,
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(err)?;
    if let Some(reason) = not_a_real_dir(dir) {
        return Err(StateError::Unsafe {
            path: dir.to_path_buf(),
            reason,
        });
    }
    let f = open_dir_nofollow(dir).map_err(|e| unsafe_or(dir, e, err))?;
    fix_mode(&f).map_err(err)
}

/// Create `dir` (0700), which must lie below `base`, one component at a time: every
/// component below `base` must be a plain name (no `..`) and, when it exists, a real
/// directory (not a symlink to one). `base` itself is the caller's to check.
pub(crate) fn create_private_dir_in(base: &Path, dir: &Path) -> Result<(), StateError> {
    let rel = inside(base, dir)?;
    let mut cur = base.to_path_buf();
    let n = rel.components().count();
    for (i, c) in rel.components().enumerate() {
        cur.push(c);
        let err = |source| StateError::Create {
            path: cur.clone(),
            source,
        };
        match fs::DirBuilder::new().mode(0o700).create(&cur) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(err(e)),
        }
        if let Some(reason) = not_a_real_dir(&cur) {
            return Err(StateError::Unsafe { path: cur, reason });
        }
        let f = open_dir_nofollow(&cur).map_err(|e| unsafe_or(&cur, e, err))?;
        if i + 1 == n {
            fix_mode(&f).map_err(err)?;
        }
    }
    Ok(())
}

/// `path` relative to `base`, when it lies below it through plain names only.
fn inside<'a>(base: &Path, path: &'a Path) -> Result<&'a Path, StateError> {
    let refuse = |reason: &str| StateError::Unsafe {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    };
    let rel = path
        .strip_prefix(base)
        .map_err(|_| refuse(&format!("it is not inside {}", base.display())))?;
    if rel.components().any(|c| !matches!(c, Component::Normal(_))) {
        return Err(refuse(&format!(
            "it does not name a directory inside {} (`..` or `/` in a name?)",
            base.display()
        )));
    }
    Ok(rel)
}

/// Check that no existing component of `path` below `base` (`path` itself included) is a
/// symlink or a non-directory, before deleting `path` or writing below it.
pub(crate) fn check_inside(base: &Path, path: &Path) -> Result<(), StateError> {
    let rel = inside(base, path)?;
    let mut cur = base.to_path_buf();
    for c in rel.components() {
        cur.push(c);
        if fs::symlink_metadata(&cur).is_err() {
            return Ok(());
        }
        if let Some(reason) = not_a_real_dir(&cur) {
            return Err(StateError::Unsafe { path: cur, reason });
        }
    }
    Ok(())
}

/// Write `bytes` to `path` so that readers see the old or the new content, never a part:
/// a temp file in the same directory (0600, created with `O_EXCL|O_NOFOLLOW`), fsync,
/// rename (which replaces a symlink at `path`, never writes through it), fsync the directory.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), StateError> {
    let err = |source| StateError::Write {
        path: path.to_path_buf(),
        source,
    };
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let create = || {
        OpenOptions::new()
            .create_new(true)
            .write(true)
            .mode(0o600)
            .custom_flags(NOFOLLOW)
            .open(&tmp)
    };
    let mut created = false;
    let result = (|| {
        let mut f = match create() {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                // Left by an earlier process with our pid; whatever it is, it is not ours now.
                fs::remove_file(&tmp)?;
                create()?
            }
            Err(e) => return Err(e),
        };
        created = true;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        if let Ok(d) = open_dir_nofollow(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() && created {
        let _ = fs::remove_file(&tmp);
    }
    result.map_err(err)
}

/// A name from the manifest (a service's) as one safe path component: `[A-Za-z0-9_.-]` are
/// kept, every other byte and `%` become `%XX`, and a leading `.` becomes `%2E`, so the result
/// is never empty, `.`, `..`, hidden, or more than one component. Injective (it is a valid
/// percent-encoding of the name), and a name that is already safe encodes to itself, so data
/// kept under a plain name by earlier versions is still found.
///
/// An encoding longer than [`COMPONENT_MAX`] (file names stop at 255 bytes) is cut and ends
/// with `%~` and the name's SHA-256 (a plain encoding never contains `%~`).
pub(crate) fn component(name: &str) -> String {
    if name.is_empty() {
        return "%".into();
    }
    let mut out = String::with_capacity(name.len());
    let mut cut = None;
    for (i, b) in name.bytes().enumerate() {
        if cut.is_none() && out.len() > COMPONENT_MAX - 70 {
            cut = Some(out.len());
        }
        let keep = b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || (b == b'.' && i > 0);
        if keep {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    match cut {
        Some(at) if out.len() > COMPONENT_MAX => {
            use sha2::Digest;
            let digest = sha2::Sha256::digest(name.as_bytes());
            let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
            out.truncate(at);
            format!("{out}%~{hex}")
        }
        _ => out,
    }
}

/// The longest [`component`]: room for a prefix (`<project-id>-`) within a 255-byte name.
pub(crate) const COMPONENT_MAX: usize = 200;

/// Add `/.stackato-local/` to the project's .gitignore when the project has one and it does
/// not ignore the directory yet. Failure to do so is not an error.
fn ignore_in_git(project_dir: &Path) {
    let gi = project_dir.join(".gitignore");
    // Not through a symlink, not a FIFO, not a huge file: it is the repository's.
    let Ok(text) = read_private(&gi, 1 << 20).map(|b| String::from_utf8_lossy(&b).into_owned())
    else {
        return;
    };
    if gitignore_covers_state(&text) {
        return;
    }
    let mut new = text;
    if !new.is_empty() && !new.ends_with('\n') {
        new.push('\n');
    }
    new.push_str("# stackato-local state: service data, credentials, logs\n/.stackato-local/\n");
    let _ = write_atomic_keep_mode(&gi, new.as_bytes());
}

/// A `.gitignore` of `*` inside the state directory, so git never shows or adds it (service
/// credentials) even in a project without a `.gitignore`. Created only when absent
/// (`O_EXCL`: a planted link is not followed); failure to do so is not an error.
fn ignore_inside(root: &Path) {
    let _ = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(root.join(".gitignore"))
        .and_then(|mut f| {
            f.write_all(b"# stackato-local state: service data, credentials, logs\n*\n")
        });
}

/// Whether a `.gitignore` text ignores the state directory at the top of the project.
pub(crate) fn gitignore_covers_state(text: &str) -> bool {
    text.lines().any(|l| {
        let l = l.trim().trim_start_matches('/').trim_end_matches('/');
        l == DIR_NAME
    })
}

/// Atomic write that keeps the file's existing permissions (for user files like .gitignore).
fn write_atomic_keep_mode(path: &Path, bytes: &[u8]) -> Result<(), StateError> {
    let mode = fs::metadata(path)
        .map(|m| m.permissions().mode())
        .unwrap_or(0o644);
    write_atomic(path, bytes)?;
    let _ = fs::set_permissions(path, fs::Permissions::from_mode(mode));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_dir_is_private_and_ignored() {
        let t = tempfile::tempdir().unwrap();
        fs::write(t.path().join(".gitignore"), "target").unwrap();
        let s = StateDir::open(t.path()).unwrap();
        let mode = fs::metadata(s.root()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        let gi = fs::read_to_string(t.path().join(".gitignore")).unwrap();
        assert!(gi.starts_with("target\n"));
        assert!(gi.contains("/.stackato-local/"));
        // Idempotent.
        StateDir::open(t.path()).unwrap();
        let gi2 = fs::read_to_string(t.path().join(".gitignore")).unwrap();
        assert_eq!(gi, gi2);
    }

    #[test]
    fn json_files_are_0600_and_atomic() {
        let t = tempfile::tempdir().unwrap();
        let s = StateDir::open(t.path()).unwrap();
        s.write_json("x.json", &serde_json::json!({"a": 1}))
            .unwrap();
        let mode = fs::metadata(s.path("x.json")).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let v: serde_json::Value = s.read_json("x.json").unwrap().unwrap();
        assert_eq!(v["a"], 1);
        assert!(
            s.read_json::<serde_json::Value>("nope.json")
                .unwrap()
                .is_none()
        );
        fs::write(s.path("bad.json"), "{").unwrap();
        assert!(matches!(
            s.read_json::<serde_json::Value>("bad.json"),
            Err(StateError::Corrupt { .. })
        ));
    }

    #[test]
    fn component_keeps_safe_names_and_encodes_the_rest() {
        for safe in [
            "db",
            "my-db",
            "stackato_stats",
            "free.postgresql-c8ea",
            "a.b.c",
            "X1",
        ] {
            assert_eq!(component(safe), safe);
        }
        assert_eq!(component(".."), "%2E.");
        assert_eq!(component("."), "%2E");
        assert_eq!(component(""), "%");
        assert_eq!(component("../../victim"), "%2E.%2F..%2Fvictim");
        assert_eq!(component("/etc"), "%2Fetc");
        assert_eq!(component("Bulletin Board"), "Bulletin%20Board");
        assert_eq!(component("50%"), "50%25");
        assert_eq!(component("é"), "%C3%A9");
        let long = "x".repeat(300);
        let c = component(&long);
        assert!(c.len() <= COMPONENT_MAX && c.contains("%~"), "{c}");
        assert_ne!(c, component(&"x".repeat(301)));
        let c = component(&"/".repeat(100));
        assert!(c.len() <= COMPONENT_MAX && c.contains("%~"), "{c}");
        assert_eq!(
            component(&"y".repeat(COMPONENT_MAX)),
            "y".repeat(COMPONENT_MAX)
        );
    }

    /// Percent-decoding, to check that the encoding loses nothing.
    fn decode(s: &str) -> Vec<u8> {
        if s == "%" {
            return Vec::new();
        }
        let b = s.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            if b[i] == b'%' {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 3;
            } else {
                out.push(b[i]);
                i += 1;
            }
        }
        out
    }

    proptest::proptest! {
        #[test]
        fn component_is_one_safe_injective_component(name in ".{0,40}") {
            let c = component(&name);
            proptest::prop_assert!(c.len() <= COMPONENT_MAX);
            proptest::prop_assert!(!c.is_empty() && c != "." && c != "..");
            proptest::prop_assert!(!c.starts_with('.'));
            proptest::prop_assert!(c.bytes().all(|b| b.is_ascii_alphanumeric() || b"_.-%~".contains(&b)));
            let p = Path::new(&c);
            proptest::prop_assert_eq!(p.components().count(), 1);
            proptest::prop_assert!(matches!(p.components().next(), Some(Component::Normal(_))));
            if !c.contains("%~") {
                proptest::prop_assert_eq!(decode(&c), name.as_bytes().to_vec());
            }
        }

        #[test]
        fn component_tells_names_apart(a in ".{0,80}", b in ".{0,80}") {
            proptest::prop_assume!(a != b);
            proptest::prop_assert_ne!(component(&a), component(&b));
        }
    }

    #[test]
    fn a_symlinked_state_dir_is_refused_and_its_target_untouched() {
        let t = tempfile::tempdir().unwrap();
        let victim = t.path().join("victim");
        fs::create_dir(&victim).unwrap();
        fs::set_permissions(&victim, fs::Permissions::from_mode(0o755)).unwrap();
        let project = t.path().join("p");
        fs::create_dir(&project).unwrap();
        std::os::unix::fs::symlink(&victim, project.join(DIR_NAME)).unwrap();
        let e = StateDir::open(&project).unwrap_err();
        assert!(matches!(e, StateError::Unsafe { .. }), "{e}");
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert_eq!(
            fs::metadata(&victim).unwrap().permissions().mode() & 0o777,
            0o755
        );
        assert_eq!(fs::read_dir(&victim).unwrap().count(), 0);
    }

    #[test]
    fn links_inside_the_state_dir_are_never_followed() {
        let t = tempfile::tempdir().unwrap();
        let victim = t.path().join("victim");
        fs::create_dir(&victim).unwrap();
        fs::set_permissions(&victim, fs::Permissions::from_mode(0o755)).unwrap();
        let s = StateDir::open(t.path()).unwrap();
        // A link at the top is refused by open.
        std::os::unix::fs::symlink(&victim, s.path("services")).unwrap();
        assert!(matches!(
            StateDir::open(t.path()),
            Err(StateError::Unsafe { .. })
        ));
        // And by everything that creates below it.
        assert!(matches!(
            s.dir("services/x"),
            Err(StateError::Unsafe { .. })
        ));
        assert!(matches!(
            s.write_json("services/x.json", &1),
            Err(StateError::Unsafe { .. })
        ));
        assert!(matches!(s.dir("../victim"), Err(StateError::Unsafe { .. })));
        fs::remove_file(s.path("services")).unwrap();
        // Links to files: a lock, a JSON file read, a log.
        let target = victim.join("f");
        fs::write(&target, "secret").unwrap();
        s.dir("locks").unwrap();
        std::os::unix::fs::symlink(&target, s.path("locks/run.lock")).unwrap();
        assert!(matches!(s.try_lock("run"), Err(StateError::Unsafe { .. })));
        std::os::unix::fs::symlink(&target, s.path("r.json")).unwrap();
        assert!(s.read_json::<serde_json::Value>("r.json").is_err());
        std::os::unix::fs::symlink(&target, s.path("log")).unwrap();
        assert!(open_append(&s.path("log")).is_err());
        // Writing replaces the link, never the target.
        s.write_json("r.json", &2).unwrap();
        assert!(fs::symlink_metadata(s.path("r.json")).unwrap().is_file());
        assert_eq!(fs::read_to_string(&target).unwrap(), "secret");
        assert_eq!(
            fs::metadata(&victim).unwrap().permissions().mode() & 0o777,
            0o755
        );
        assert!(matches!(
            check_inside(s.root(), &s.path("locks/run.lock/x")),
            Err(StateError::Unsafe { .. })
        ));
    }

    #[test]
    fn a_fifo_is_not_read() {
        let t = tempfile::tempdir().unwrap();
        let s = StateDir::open(t.path()).unwrap();
        nix::unistd::mkfifo(
            &s.path("f.json"),
            nix::sys::stat::Mode::from_bits_truncate(0o600),
        )
        .unwrap();
        assert!(s.read_json::<serde_json::Value>("f.json").is_err());
    }

    #[test]
    fn no_gitignore_means_none_is_created() {
        let t = tempfile::tempdir().unwrap();
        StateDir::open(t.path()).unwrap();
        assert!(!t.path().join(".gitignore").exists());
    }
}
