//! The staged copy's files: the upload (the app minus `ignores:`, as the client built it)
//! copied from the checkout into the state dir, with reflinks where the filesystem has them
//! and plain copies otherwise — never hard links, so a hook appending to a file cannot change
//! the checkout — never following a link out of the app; a faithful clone of a staged tree
//! for each instance; and keeping copies in step with the checkout by copying only what
//! changed.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::stage::ignores::{self, Ignores, UnsafeLink};

/// What was copied from the checkout: each file's size and modification time there (to tell
/// later what changed), and the directories.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    files: BTreeMap<String, (u64, i64)>,
    dirs: BTreeSet<String>,
}

impl Record {
    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    pub fn contains(&self, rel: &str) -> bool {
        self.files.contains_key(rel)
    }
}

/// Why a copy failed.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// Links reaching outside the app: a push stopped here (the client's message).
    #[error("{}", refusal(.links, .root))]
    UnsafeLinks {
        links: Vec<UnsafeLink>,
        root: PathBuf,
    },
    #[error("the app has more directories than a copy walks ({0}); add the big ones to `ignores:`")]
    TooBig(usize),
    #[error("could not copy {}: {source}", .path.display())]
    Io { path: PathBuf, source: io::Error },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> CopyError + '_ {
    move |source| CopyError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The client's message for links pointing outside the app (its `check_unreachable_links`).
pub fn refusal(links: &[UnsafeLink], root: &Path) -> String {
    let names: Vec<&str> = links.iter().map(|l| l.rel.as_str()).collect();
    format!(
        "Can't deploy application containing links '{}' that reach outside its root '{}'",
        names.join(","),
        root.display()
    )
}

/// The checkout side of a copy.
#[derive(Debug, Clone)]
pub struct Source {
    /// The app directory.
    pub root: PathBuf,
    /// Its `ignores:` (or the default list).
    pub ignores: Option<Vec<String>>,
    /// `--copy-unsafe-links`: copy what links reaching outside the app point to, as the
    /// client's option did, instead of refusing.
    pub copy_unsafe_links: bool,
}

/// How a file was copied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum How {
    /// The filesystem shares the blocks (btrfs, XFS, …): instant, no space used.
    Reflink,
    /// The bytes were copied (ext4, tmpfs, …).
    Copied,
}

/// Counts of one copy, for messages and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    pub files: usize,
    pub reflinked: usize,
    pub bytes: u64,
}

impl Stats {
    fn add(&mut self, how: How, bytes: u64) {
        self.files += 1;
        self.bytes += bytes;
        if how == How::Reflink {
            self.reflinked += 1;
        }
    }

    fn merge(&mut self, o: Stats) {
        self.files += o.files;
        self.reflinked += o.reflinked;
        self.bytes += o.bytes;
    }
}

/// `FICLONE` (`_IOW(0x94, 9, int)`): share the source's blocks.
const FICLONE: libc::c_ulong = 0x4004_9409;

/// Copy one regular file's bytes, mode and modification time from `from` (open) to a new file
/// `to` (which must not exist; it is never a link afterwards).
fn copy_open(from: &File, to: &Path) -> io::Result<(How, u64)> {
    let md = from.metadata()?;
    let mut out = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(to)?;
    // SAFETY: both descriptors are open for the duration of the call; FICLONE only reads
    // the source descriptor number.
    let cloned = unsafe { libc::ioctl(out.as_raw_fd(), FICLONE as _, from.as_raw_fd()) } == 0;
    let how = if cloned {
        How::Reflink
    } else {
        // copy_file_range underneath (in-kernel copy; some filesystems share blocks here too).
        let mut src = from;
        // The same open file may be copied to several places: from its start each time.
        io::Seek::seek(&mut src, io::SeekFrom::Start(0))?;
        io::copy(&mut src, &mut out)?;
        How::Copied
    };
    out.set_permissions(std::fs::Permissions::from_mode(md.mode_bits()))?;
    if let Ok(m) = md.modified() {
        out.set_modified(m)?;
    }
    Ok((how, md.len()))
}

/// The permission bits worth keeping (no set-id bits).
trait ModeBits {
    fn mode_bits(&self) -> u32;
}

impl ModeBits for std::fs::Metadata {
    fn mode_bits(&self) -> u32 {
        self.permissions().mode() & 0o1777
    }
}

/// Open a file of the checkout for copying: a regular file, not through a link, unless the
/// link resolves inside `root` (or anywhere, with `unsafe_ok`).
fn open_source(root_canon: &Path, path: &Path, unsafe_ok: bool) -> io::Result<File> {
    match crate::fsx::open_regular(path, false) {
        Ok(f) => Ok(f),
        Err(crate::fsx::ReadError::NotRegular(_))
            if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) =>
        {
            let target = path.canonicalize()?;
            if !unsafe_ok && !target.starts_with(root_canon) {
                return Err(io::Error::new(
                    io::ErrorKind::PermissionDenied,
                    "a link reaching outside the app",
                ));
            }
            // The canonical path has no links left.
            crate::fsx::open_regular(&target, false).map_err(io::Error::from)
        }
        Err(e) => Err(e.into()),
    }
}

/// Replace whatever is at `to` (a file, a link, a directory a hook made) with a copy of the
/// open file `from`, atomically for readers (a temporary name, then a rename).
fn replace_with(from: &File, to: &Path) -> io::Result<(How, u64)> {
    let name = to
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = to.with_file_name(format!(".{name}.stackato-local-tmp"));
    let _ = std::fs::remove_file(&tmp);
    let r = copy_open(from, &tmp);
    let r = r.and_then(|x| {
        if std::fs::symlink_metadata(to).is_ok_and(|m| m.is_dir()) {
            std::fs::remove_dir_all(to)?;
        }
        std::fs::rename(&tmp, to).map(|()| x)
    });
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r
}

/// The upload: the files a push would send from `src`, checked for links reaching outside.
fn upload(src: &Source) -> Result<ignores::Listing, CopyError> {
    let ig = Ignores::new(src.ignores.as_deref());
    let listing = ignores::listing(&src.root, &ig);
    if listing.truncated {
        return Err(CopyError::TooBig(ignores::MAX_DIRS));
    }
    if !listing.unsafe_links.is_empty() && !src.copy_unsafe_links {
        return Err(CopyError::UnsafeLinks {
            links: listing.unsafe_links,
            root: src.root.clone(),
        });
    }
    Ok(listing)
}

/// How many threads copy: the work is mostly system calls.
fn threads() -> usize {
    std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .clamp(1, 4)
}

/// Copy the upload of `src` into `dst` (created; it must not exist yet). Returns what was
/// copied, for [`sync`] later.
pub fn populate(src: &Source, dst: &Path) -> Result<(Record, Stats), CopyError> {
    let listing = upload(src)?;
    let root_canon = src.root.canonicalize().map_err(io_err(&src.root))?;
    create_dir(dst)?;
    for d in &listing.dirs {
        create_dir(&dst.join(d))?;
    }
    let mut rec = Record {
        dirs: listing.dirs.iter().cloned().collect(),
        ..Record::default()
    };
    // With --copy-unsafe-links, what the outside links point to is copied (files only).
    let mut jobs: Vec<(String, u64, i64)> = listing
        .files
        .iter()
        .map(|f| (f.rel.clone(), f.size, f.mtime as i64))
        .collect();
    if src.copy_unsafe_links {
        for l in &listing.unsafe_links {
            if let Ok(md) = std::fs::metadata(src.root.join(&l.rel))
                && md.is_file()
            {
                jobs.push((l.rel.clone(), md.len(), mtime_of(&md)));
            }
        }
    }
    let stats = copy_many(src, &root_canon, dst, &jobs)?;
    for (rel, size, mtime) in jobs {
        rec.files.insert(rel, (size, mtime));
    }
    Ok((rec, stats))
}

fn mtime_of(md: &std::fs::Metadata) -> i64 {
    md.modified()
        .ok()
        .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as i64)
}

/// Copy `jobs` (relative paths) from the checkout into `dst`, on a few threads.
fn copy_many(
    src: &Source,
    root_canon: &Path,
    dst: &Path,
    jobs: &[(String, u64, i64)],
) -> Result<Stats, CopyError> {
    let n = threads();
    let chunk = jobs.len().div_ceil(n).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = jobs
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || -> Result<Stats, CopyError> {
                    let mut st = Stats::default();
                    for (rel, _, _) in part {
                        let from = src.root.join(rel);
                        let f = open_source(root_canon, &from, src.copy_unsafe_links)
                            .map_err(io_err(&from))?;
                        let to = dst.join(rel);
                        let (how, bytes) = copy_open(&f, &to).map_err(io_err(&to))?;
                        st.add(how, bytes);
                    }
                    Ok(st)
                })
            })
            .collect();
        let mut total = Stats::default();
        for h in handles {
            match h.join() {
                Ok(r) => total.merge(r?),
                Err(_) => {
                    return Err(CopyError::Io {
                        path: dst.to_path_buf(),
                        source: io::Error::other("a copying thread panicked"),
                    });
                }
            }
        }
        Ok(total)
    })
}

fn create_dir(p: &Path) -> Result<(), CopyError> {
    match std::fs::create_dir(p) {
        Ok(()) => Ok(()),
        Err(e)
            if e.kind() == io::ErrorKind::AlreadyExists
                && std::fs::symlink_metadata(p).is_ok_and(|m| m.is_dir()) =>
        {
            Ok(())
        }
        Err(e) => Err(CopyError::Io {
            path: p.to_path_buf(),
            source: e,
        }),
    }
}

/// Clone the tree `from` (a staged copy, which hooks may have filled with links, FIFOs and
/// anything else) into `to` (must not exist) as it is: links stay links (never followed),
/// files are copied (reflinks where possible), special files are left out.
pub fn clone_tree(from: &Path, to: &Path) -> Result<Stats, CopyError> {
    let mut dirs = vec![(from.to_path_buf(), to.to_path_buf())];
    let mut files: Vec<(PathBuf, PathBuf)> = Vec::new();
    create_dir(to)?;
    while let Some((src, dst)) = dirs.pop() {
        let rd = std::fs::read_dir(&src).map_err(io_err(&src))?;
        for e in rd {
            let e = e.map_err(io_err(&src))?;
            let (s, d) = (e.path(), dst.join(e.file_name()));
            let t = e.file_type().map_err(io_err(&s))?;
            if t.is_dir() {
                create_dir(&d)?;
                if let Ok(md) = std::fs::symlink_metadata(&s) {
                    let _ = std::fs::set_permissions(
                        &d,
                        std::fs::Permissions::from_mode(md.mode_bits() | 0o700),
                    );
                }
                dirs.push((s, d));
            } else if t.is_symlink() {
                let target = std::fs::read_link(&s).map_err(io_err(&s))?;
                std::os::unix::fs::symlink(&target, &d).map_err(io_err(&d))?;
            } else if t.is_file() {
                files.push((s, d));
            }
        }
    }
    let n = threads();
    let chunk = files.len().div_ceil(n).max(1);
    std::thread::scope(|sc| {
        let handles: Vec<_> = files
            .chunks(chunk)
            .map(|part| {
                sc.spawn(move || -> Result<Stats, CopyError> {
                    let mut st = Stats::default();
                    for (s, d) in part {
                        let f =
                            crate::fsx::open_regular(s, false).map_err(|e| io_err(s)(e.into()))?;
                        let (how, bytes) = copy_open(&f, d).map_err(io_err(d))?;
                        st.add(how, bytes);
                    }
                    Ok(st)
                })
            })
            .collect();
        let mut total = Stats::default();
        for h in handles {
            match h.join() {
                Ok(r) => total.merge(r?),
                Err(_) => {
                    return Err(CopyError::Io {
                        path: to.to_path_buf(),
                        source: io::Error::other("a copying thread panicked"),
                    });
                }
            }
        }
        Ok(total)
    })
}

/// What changed in the checkout since a [`Record`]: relative paths.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// New or modified files (and new directories).
    pub changed: Vec<String>,
    /// Files and directories gone from the upload (deleted, or now ignored).
    pub removed: Vec<String>,
}

impl Changes {
    pub fn is_empty(&self) -> bool {
        self.changed.is_empty() && self.removed.is_empty()
    }

    /// All the paths, for messages.
    pub fn paths(&self) -> impl Iterator<Item = &String> {
        self.changed.iter().chain(&self.removed)
    }
}

/// Compare the checkout's upload now with what was copied (a full walk: on start-up, in the
/// background, and when a watcher missed events).
pub fn diff(src: &Source, rec: &Record) -> Result<Changes, CopyError> {
    let listing = upload(src)?;
    let mut now: BTreeMap<&str, (u64, i64)> = listing
        .files
        .iter()
        .map(|f| (f.rel.as_str(), (f.size, f.mtime as i64)))
        .collect();
    let mut extra = Vec::new();
    if src.copy_unsafe_links {
        for l in &listing.unsafe_links {
            if let Ok(md) = std::fs::metadata(src.root.join(&l.rel))
                && md.is_file()
            {
                extra.push((l.rel.as_str(), (md.len(), mtime_of(&md))));
            }
        }
    }
    now.extend(extra);
    let mut c = Changes::default();
    for (rel, meta) in &now {
        if rec.files.get(*rel) != Some(meta) {
            c.changed.push((*rel).to_string());
        }
    }
    for d in &listing.dirs {
        if !rec.dirs.contains(d) {
            c.changed.push(d.clone());
        }
    }
    for rel in rec.files.keys() {
        if !now.contains_key(rel.as_str()) {
            c.removed.push(rel.clone());
        }
    }
    let dirs: BTreeSet<&String> = listing.dirs.iter().collect();
    for d in &rec.dirs {
        if !dirs.contains(d) {
            c.removed.push(d.clone());
        }
    }
    Ok(c)
}

/// What a sync did not do, for the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    pub rel: String,
    pub why: String,
}

/// Bring `targets` (the staged copy and each instance's copy) in step with the checkout for
/// the relative paths in `changes`: changed files are copied in (replacing whatever a hook
/// left there), removed ones deleted, and `rec` updated. Nothing is written through a link a
/// hook put in a copy (a file under it is skipped and reported).
pub fn sync(
    src: &Source,
    targets: &[PathBuf],
    changes: &Changes,
    rec: &mut Record,
) -> Result<Vec<Skipped>, CopyError> {
    let root_canon = src.root.canonicalize().map_err(io_err(&src.root))?;
    let ig = Ignores::new(src.ignores.as_deref());
    let mut skipped = Vec::new();
    for rel in &changes.removed {
        rec.files.remove(rel);
        if rec.dirs.remove(rel) {
            let prefix = format!("{rel}/");
            rec.files.retain(|k, _| !k.starts_with(&prefix));
            rec.dirs.retain(|k| !k.starts_with(&prefix));
        }
        for t in targets {
            if let Some(why) = blocked(t, rel) {
                skipped.push(Skipped {
                    rel: rel.clone(),
                    why,
                });
                continue;
            }
            let p = t.join(rel);
            match std::fs::symlink_metadata(&p) {
                Ok(m) if m.is_dir() => {
                    let _ = std::fs::remove_dir_all(&p);
                }
                Ok(_) => {
                    let _ = std::fs::remove_file(&p);
                }
                Err(_) => {}
            }
        }
    }
    for rel in &changes.changed {
        if is_ignored(&ig, &src.root, rel) {
            continue;
        }
        let from = src.root.join(rel);
        let Ok(md) = std::fs::symlink_metadata(&from) else {
            continue;
        };
        if md.is_dir() {
            rec.dirs.insert(rel.clone());
            for t in targets {
                if blocked(t, rel).is_none() {
                    let p = t.join(rel);
                    if std::fs::symlink_metadata(&p).is_ok_and(|m| !m.is_dir()) {
                        let _ = std::fs::remove_file(&p);
                    }
                    let _ = std::fs::create_dir_all(&p);
                }
            }
            continue;
        }
        let f = match open_source(&root_canon, &from, src.copy_unsafe_links) {
            Ok(f) => f,
            Err(e) => {
                skipped.push(Skipped {
                    rel: rel.clone(),
                    why: e.to_string(),
                });
                continue;
            }
        };
        let Ok(fmd) = f.metadata() else { continue };
        let mut copied = false;
        for t in targets {
            if let Some(why) = blocked(t, rel) {
                skipped.push(Skipped {
                    rel: rel.clone(),
                    why,
                });
                continue;
            }
            let to = t.join(rel);
            if let Some(parent) = to.parent() {
                std::fs::create_dir_all(parent).map_err(io_err(parent))?;
            }
            replace_with(&f, &to).map_err(io_err(&to))?;
            copied = true;
        }
        if copied {
            rec.files.insert(rel.clone(), (fmd.len(), mtime_of(&fmd)));
        }
    }
    Ok(skipped)
}

/// Whether `rel` (below `root`) or one of its parents is ignored.
fn is_ignored(ig: &Ignores, root: &Path, rel: &str) -> bool {
    let parts: Vec<&str> = rel.split('/').collect();
    let mut acc = String::new();
    for p in &parts[..parts.len().saturating_sub(1)] {
        if !acc.is_empty() {
            acc.push('/');
        }
        acc.push_str(p);
        if ig.is_ignored(&acc, true) {
            return true;
        }
    }
    let is_dir = std::fs::symlink_metadata(root.join(rel)).is_ok_and(|m| m.is_dir());
    ig.is_ignored(rel, is_dir)
}

/// Why `rel` cannot be written below `root` without following a link: a parent in the copy
/// is a link or not a directory (a hook replaced it).
fn blocked(root: &Path, rel: &str) -> Option<String> {
    let mut p = root.to_path_buf();
    let parts: Vec<&str> = rel.split('/').collect();
    for part in &parts[..parts.len().saturating_sub(1)] {
        if part.is_empty() || *part == "." || *part == ".." {
            return Some("not a plain relative path".into());
        }
        p.push(part);
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                return Some(format!(
                    "{} is a link in the staged copy (a hook made it); nothing is written through it",
                    p.strip_prefix(root).unwrap_or(&p).display()
                ));
            }
            Ok(m) if !m.is_dir() => {
                return Some(format!(
                    "{} is not a directory in the staged copy",
                    p.strip_prefix(root).unwrap_or(&p).display()
                ));
            }
            Ok(_) => {}
            Err(_) => return None,
        }
    }
    None
}

/// Files an instance wrote into its own copy: what differs from the tree it was cloned from
/// (new or changed files; compiled Python caches left out).
pub fn written(base: &Path, copy: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![String::new()];
    while let Some(rel) = stack.pop() {
        let dir = if rel.is_empty() {
            copy.to_path_buf()
        } else {
            copy.join(&rel)
        };
        let Ok(rd) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in rd.filter_map(Result::ok) {
            let name = e.file_name().to_string_lossy().into_owned();
            if name == "__pycache__" || name.ends_with(".pyc") {
                continue;
            }
            let r = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let Ok(t) = e.file_type() else { continue };
            if t.is_dir() {
                stack.push(r);
                continue;
            }
            let (Ok(a), Ok(b)) = (
                std::fs::symlink_metadata(e.path()),
                std::fs::symlink_metadata(base.join(&r)),
            ) else {
                out.push(r);
                continue;
            };
            if a.len() != b.len() || mtime_of(&a) != mtime_of(&b) {
                out.push(r);
            }
        }
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    fn src(root: &Path, ignores: &[&str]) -> Source {
        Source {
            root: root.to_path_buf(),
            ignores: Some(ignores.iter().map(|s| s.to_string()).collect()),
            copy_unsafe_links: false,
        }
    }

    fn read(p: &Path) -> String {
        std::fs::read_to_string(p).unwrap()
    }

    #[test]
    fn populate_copies_the_upload_with_modes_and_times_and_no_hard_links() {
        let t = tempfile::tempdir().unwrap();
        let (app, dst) = (t.path().join("app"), t.path().join("dst"));
        put(&app, "a.txt", "a\n");
        put(&app, "sub/b.sh", "echo b\n");
        put(&app, "skip.log", "ignored\n");
        std::fs::create_dir_all(app.join("empty")).unwrap();
        std::fs::set_permissions(app.join("sub/b.sh"), std::fs::Permissions::from_mode(0o755))
            .unwrap();
        let (rec, stats) = populate(&src(&app, &["*.log"]), &dst).unwrap();
        assert_eq!(stats.files, 2);
        assert_eq!(rec.len(), 2);
        assert_eq!(read(&dst.join("sub/b.sh")), "echo b\n");
        assert!(!dst.join("skip.log").exists());
        assert!(dst.join("empty").is_dir());
        let (s, d) = (
            std::fs::metadata(app.join("sub/b.sh")).unwrap(),
            std::fs::metadata(dst.join("sub/b.sh")).unwrap(),
        );
        assert_eq!(d.permissions().mode() & 0o777, 0o755);
        assert_eq!(s.modified().unwrap(), d.modified().unwrap());
        use std::os::unix::fs::MetadataExt;
        assert_ne!(s.ino(), d.ino());
        // Appending to the copy leaves the original alone.
        std::fs::OpenOptions::new()
            .append(true)
            .open(dst.join("a.txt"))
            .unwrap();
        std::fs::write(dst.join("a.txt"), "changed\n").unwrap();
        assert_eq!(read(&app.join("a.txt")), "a\n");
    }

    #[test]
    fn a_link_out_of_the_app_is_refused_unless_allowed_and_then_copied_as_a_file() {
        let t = tempfile::tempdir().unwrap();
        let app = t.path().join("app");
        put(&app, "in.txt", "in\n");
        put(t.path(), "secret", "outside\n");
        std::os::unix::fs::symlink(t.path().join("secret"), app.join("out")).unwrap();
        std::os::unix::fs::symlink("in.txt", app.join("alias")).unwrap();
        let e = populate(&src(&app, &[]), &t.path().join("d1")).unwrap_err();
        assert!(
            e.to_string().contains("links 'out' that reach outside"),
            "{e}"
        );
        let mut s = src(&app, &[]);
        s.copy_unsafe_links = true;
        let d2 = t.path().join("d2");
        populate(&s, &d2).unwrap();
        for (f, text) in [("out", "outside\n"), ("alias", "in\n")] {
            let md = std::fs::symlink_metadata(d2.join(f)).unwrap();
            assert!(md.is_file(), "{f} is not a plain file");
            assert_eq!(read(&d2.join(f)), text);
        }
    }

    #[test]
    fn diff_and_sync_bring_every_copy_in_step_without_writing_through_links() {
        let t = tempfile::tempdir().unwrap();
        let (app, a, b) = (t.path().join("app"), t.path().join("a"), t.path().join("b"));
        put(&app, "keep.txt", "k\n");
        put(&app, "edit.txt", "1\n");
        put(&app, "gone.txt", "g\n");
        put(&app, "linked/x.txt", "x\n");
        let s = src(&app, &["*.tmp"]);
        let (mut rec, _) = populate(&s, &a).unwrap();
        clone_tree(&a, &b).unwrap();
        // A hook replaced a directory with a link out of the copy.
        let outside = t.path().join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::remove_dir_all(b.join("linked")).unwrap();
        std::os::unix::fs::symlink(&outside, b.join("linked")).unwrap();

        assert!(diff(&s, &rec).unwrap().is_empty());
        put(&app, "edit.txt", "2, longer\n");
        put(&app, "new/n.txt", "n\n");
        put(&app, "scratch.tmp", "ignored\n");
        put(&app, "linked/x.txt", "x2, longer\n");
        std::fs::remove_file(app.join("gone.txt")).unwrap();
        let c = diff(&s, &rec).unwrap();
        assert_eq!(c.removed, vec!["gone.txt".to_string()]);
        let mut changed = c.changed.clone();
        changed.sort();
        assert_eq!(changed, ["edit.txt", "linked/x.txt", "new", "new/n.txt"]);
        let skipped = sync(&s, &[a.clone(), b.clone()], &c, &mut rec).unwrap();
        for d in [&a, &b] {
            assert_eq!(read(&d.join("edit.txt")), "2, longer\n");
            assert_eq!(read(&d.join("new/n.txt")), "n\n");
            assert!(!d.join("gone.txt").exists());
            assert!(!d.join("scratch.tmp").exists());
        }
        assert_eq!(read(&a.join("linked/x.txt")), "x2, longer\n");
        // Nothing went through the link: skipped, and said so.
        assert!(!outside.join("x.txt").exists());
        assert_eq!(skipped.len(), 1, "{skipped:?}");
        assert!(skipped[0].why.contains("is a link in the staged copy"));
        assert!(diff(&s, &rec).unwrap().is_empty());
    }

    #[test]
    fn clone_tree_keeps_links_as_links_and_written_names_what_an_instance_added() {
        let t = tempfile::tempdir().unwrap();
        let (a, b) = (t.path().join("a"), t.path().join("b"));
        put(&a, "f.txt", "f\n");
        std::os::unix::fs::symlink("/etc", a.join("etc")).unwrap();
        clone_tree(&a, &b).unwrap();
        assert_eq!(
            std::fs::read_link(b.join("etc")).unwrap(),
            Path::new("/etc")
        );
        assert!(written(&a, &b).is_empty());
        put(&b, "uploads/u.png", "png");
        put(&b, "__pycache__/m.pyc", "cache");
        put(&b, "f.txt", "changed, longer\n");
        assert_eq!(written(&a, &b), ["f.txt", "uploads/u.png"]);
    }
}
