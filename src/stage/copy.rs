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
    /// Links inside the app, made again as links in the copies: path → the link's text.
    #[serde(default)]
    links: BTreeMap<String, String>,
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
pub(crate) fn refusal(links: &[UnsafeLink], root: &Path) -> String {
    let names: Vec<&str> = links.iter().map(|l| l.rel.as_str()).collect();
    format!(
        "Can't deploy application containing links '{}' that reach outside its root '{}'",
        names.join(","),
        root.display()
    )
}

/// `check`'s warning for what `run` refuses to stage (as a push did): links in the upload of
/// `app` that reach outside its directory (a `runtime.txt`, `.nvmrc` or script linked to a file
/// elsewhere), unless `--copy-unsafe-links` is given.
pub(crate) fn unsafe_links_warning(app: &crate::manifest::App) -> Option<crate::diag::Diagnostic> {
    let listing = ignores::listing(&app.path, &Ignores::new(app.ignores.as_deref()));
    if listing.unsafe_links.is_empty() {
        return None;
    }
    Some(
        crate::diag::Diagnostic::warning(format!(
            "`run` cannot stage {}: {}",
            app.name.value,
            refusal(&listing.unsafe_links, &app.path)
        ))
        .at(app.name.span)
        .hint("remove the links, add them to `ignores:`, or run with --copy-unsafe-links to copy what they point to (as `stackato push --copy-unsafe-links` did)"),
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
pub(crate) enum How {
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

/// A temporary name beside `to`, short (a long name stays within the 255-byte limit) and
/// never one that exists (an app's own file is never taken or removed).
fn temp_beside(to: &Path) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    loop {
        let n = N.fetch_add(1, Ordering::Relaxed);
        let p = to.with_file_name(format!(".sl{}.{n}.tmp", std::process::id()));
        if std::fs::symlink_metadata(&p).is_err() {
            return p;
        }
    }
}

/// Put `tmp` (made beside `to`) in the place of whatever is at `to` (a file, a link, a
/// directory a hook made), atomically for readers of a file.
fn put_in_place(tmp: &Path, to: &Path) -> io::Result<()> {
    if std::fs::symlink_metadata(to).is_ok_and(|m| m.is_dir()) {
        std::fs::remove_dir_all(to)?;
    }
    std::fs::rename(tmp, to)
}

/// Replace whatever is at `to` with a copy of the open file `from`.
fn replace_with(from: &File, to: &Path) -> io::Result<(How, u64)> {
    let tmp = temp_beside(to);
    let r = copy_open(from, &tmp).and_then(|x| put_in_place(&tmp, to).map(|()| x));
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r
}

/// Replace whatever is at `to` with a link whose text is `target`.
fn replace_with_link(target: &str, to: &Path) -> io::Result<()> {
    let tmp = temp_beside(to);
    std::os::unix::fs::symlink(target, &tmp)?;
    let r = put_in_place(&tmp, to);
    if r.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    r
}

/// The text of a link at `rel` that points at `target` (both relative to the app root), as a
/// relative link that works wherever the tree is.
fn link_text(rel: &str, target: &str) -> String {
    let depth = rel.matches('/').count();
    if target.is_empty() {
        return if depth == 0 {
            ".".into()
        } else {
            vec![".."; depth].join("/")
        };
    }
    format!("{}{target}", "../".repeat(depth))
}

/// The upload: the files a push would send from `src`.
fn walk_upload(src: &Source) -> Result<ignores::Listing, CopyError> {
    let ig = Ignores::new(src.ignores.as_deref());
    let listing = ignores::listing(&src.root, &ig);
    if listing.truncated {
        return Err(CopyError::TooBig(ignores::MAX_DIRS));
    }
    Ok(listing)
}

/// The upload, checked for links reaching outside (refused unless allowed, as a push was).
fn upload(src: &Source) -> Result<ignores::Listing, CopyError> {
    let listing = walk_upload(src)?;
    if !listing.unsafe_links.is_empty() && !src.copy_unsafe_links {
        return Err(CopyError::UnsafeLinks {
            links: listing.unsafe_links,
            root: src.root.clone(),
        });
    }
    Ok(listing)
}

/// What the copies hold for a listing: files (links inside the app left out: they are made
/// again as links), and with `--copy-unsafe-links` what outside links to files point to.
fn files_of(src: &Source, listing: &ignores::Listing) -> BTreeMap<String, (u64, i64)> {
    let links: BTreeSet<&str> = listing.links.iter().map(|l| l.rel.as_str()).collect();
    let mut files: BTreeMap<String, (u64, i64)> = listing
        .files
        .iter()
        .filter(|f| !links.contains(f.rel.as_str()))
        .map(|f| (f.rel.clone(), (f.size, f.mtime as i64)))
        .collect();
    if src.copy_unsafe_links {
        for l in &listing.unsafe_links {
            if let Ok(md) = std::fs::metadata(src.root.join(&l.rel))
                && md.is_file()
            {
                files.insert(l.rel.clone(), (md.len(), mtime_of(&md)));
            }
        }
    }
    files
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
    populate_noting(src, dst).map(|(r, s, _)| (r, s))
}

/// [`populate`], also giving what the walk left out for its type or name (FIFOs, names that
/// are not UTF-8, unreadable directories, links to directories outside), for a note.
pub(crate) fn populate_noting(
    src: &Source,
    dst: &Path,
) -> Result<(Record, Stats, Vec<ignores::Skipped>), CopyError> {
    let listing = upload(src)?;
    let root_canon = src.root.canonicalize().map_err(io_err(&src.root))?;
    create_dir(dst)?;
    for d in &listing.dirs {
        let to = dst.join(d);
        create_dir(&to)?;
        // The directory's own permissions (owner access kept, so the copy stays usable).
        if let Ok(md) = std::fs::symlink_metadata(src.root.join(d)) {
            let _ = std::fs::set_permissions(
                &to,
                std::fs::Permissions::from_mode(md.mode_bits() | 0o700),
            );
        }
    }
    let mut rec = Record {
        dirs: listing.dirs.iter().cloned().collect(),
        files: files_of(src, &listing),
        ..Record::default()
    };
    // Links inside the app are links in the copy too (relative, so they stay inside it).
    for l in &listing.links {
        let text = link_text(&l.rel, &l.target);
        let to = dst.join(&l.rel);
        std::os::unix::fs::symlink(&text, &to).map_err(io_err(&to))?;
        rec.links.insert(l.rel.clone(), text);
    }
    let jobs: Vec<(String, u64, i64)> = rec
        .files
        .iter()
        .map(|(rel, (size, mtime))| (rel.clone(), *size, *mtime))
        .collect();
    let mut stats = copy_many(src, &root_canon, dst, &jobs)?;
    // With --copy-unsafe-links, an outside link to a directory brings its contents.
    if src.copy_unsafe_links {
        for l in &listing.unsafe_links {
            let from = src.root.join(&l.rel);
            if std::fs::metadata(&from).is_ok_and(|m| m.is_dir()) {
                let target = from.canonicalize().map_err(io_err(&from))?;
                stats.merge(clone_tree(&target, &dst.join(&l.rel))?);
                rec.dirs.insert(l.rel.clone());
            }
        }
    }
    let links: BTreeSet<&str> = listing.links.iter().map(|l| l.rel.as_str()).collect();
    let skipped = listing
        .skipped
        .into_iter()
        .filter(|k| !links.contains(k.rel.as_str()))
        .collect();
    Ok((rec, stats, skipped))
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
    copy_in_parallel(jobs, dst, |(rel, _, _)| {
        let from = src.root.join(rel);
        let f = open_source(root_canon, &from, src.copy_unsafe_links).map_err(io_err(&from))?;
        let to = dst.join(rel);
        copy_open(&f, &to).map_err(io_err(&to))
    })
}

/// Copy each of `jobs` with `one` on a few threads (the work is mostly system calls);
/// the counts of all, or the first error. `dst` names the copy in a thread's panic.
fn copy_in_parallel<T: Sync>(
    jobs: &[T],
    dst: &Path,
    one: impl Fn(&T) -> Result<(How, u64), CopyError> + Sync,
) -> Result<Stats, CopyError> {
    let chunk = jobs.len().div_ceil(threads()).max(1);
    let one = &one;
    std::thread::scope(|s| {
        let handles: Vec<_> = jobs
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || -> Result<Stats, CopyError> {
                    let mut st = Stats::default();
                    for job in part {
                        let (how, bytes) = one(job)?;
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
    copy_in_parallel(&files, to, |(s, d)| {
        let f = crate::fsx::open_regular(s, false).map_err(|e| io_err(s)(e.into()))?;
        copy_open(&f, d).map_err(io_err(d))
    })
}

/// What changed in the checkout since a [`Record`]: relative paths.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// New or modified files and links (and new directories).
    pub changed: Vec<String>,
    /// Files, links and directories gone from the upload (deleted, or now ignored).
    pub removed: Vec<String>,
    /// Links reaching outside the app (without `--copy-unsafe-links`): not synced; a push
    /// would stop here.
    pub unsafe_links: Vec<UnsafeLink>,
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
/// background, and when a watcher may have missed events).
pub fn diff(src: &Source, rec: &Record) -> Result<Changes, CopyError> {
    let listing = walk_upload(src)?;
    let now = files_of(src, &listing);
    let links: BTreeMap<&str, String> = listing
        .links
        .iter()
        .map(|l| (l.rel.as_str(), link_text(&l.rel, &l.target)))
        .collect();
    let dirs: BTreeSet<&str> = listing.dirs.iter().map(String::as_str).collect();
    let mut c = Changes::default();
    if !src.copy_unsafe_links {
        c.unsafe_links = listing.unsafe_links.clone();
    }
    for (rel, meta) in &now {
        if rec.files.get(rel) != Some(meta) {
            c.changed.push(rel.clone());
        }
    }
    for (rel, text) in &links {
        if rec.links.get(*rel) != Some(text) {
            c.changed.push((*rel).to_string());
        }
    }
    for d in &dirs {
        if !rec.dirs.contains(*d) {
            c.changed.push((*d).to_string());
        }
    }
    let present = |r: &str| now.contains_key(r) || links.contains_key(r) || dirs.contains(r);
    for rel in rec.files.keys().chain(rec.links.keys()).chain(&rec.dirs) {
        if !present(rel) && !c.removed.contains(rel) {
            c.removed.push(rel.clone());
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

/// Bring `targets` (the staged tree first, then each instance's copy) in step with the
/// checkout for the relative paths in `changes`: changed files are copied in (replacing
/// whatever a hook left there), links inside the app made again, removed paths deleted, and
/// `rec` updated. What cannot be done for one path or one copy (a link a hook put in the
/// copy, which is never written through; a link in the checkout reaching outside; an error)
/// is skipped and reported, and the rest goes on. An instance's own change to a file that an
/// edit replaces is reported too.
pub fn sync(
    src: &Source,
    targets: &[PathBuf],
    changes: &Changes,
    rec: &mut Record,
) -> Result<Vec<Skipped>, CopyError> {
    let root_canon = src.root.canonicalize().map_err(io_err(&src.root))?;
    let ig = Ignores::new(src.ignores.as_deref());
    let mut skipped = Vec::new();
    let mut skip = |rel: &str, why: String| {
        skipped.push(Skipped {
            rel: rel.to_string(),
            why,
        })
    };
    for rel in &changes.removed {
        rec.forget(rel);
        for t in targets {
            if let Some(why) = blocked(t, rel) {
                skip(rel, why);
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
        if let Some(why) = source_blocked(&src.root, rel) {
            skip(rel, why);
            continue;
        }
        let from = src.root.join(rel);
        let Ok(md) = std::fs::symlink_metadata(&from) else {
            continue;
        };
        if md.file_type().is_symlink() {
            match from.canonicalize() {
                Ok(c) if c.starts_with(&root_canon) => {
                    let target = c
                        .strip_prefix(&root_canon)
                        .ok()
                        .and_then(|t| t.to_str())
                        .unwrap_or_default();
                    let text = link_text(rel, target);
                    for t in targets {
                        if let Some(why) = blocked(t, rel) {
                            skip(rel, why);
                            continue;
                        }
                        let to = t.join(rel);
                        if let Err(e) =
                            ensure_parent(&to).and_then(|()| replace_with_link(&text, &to))
                        {
                            skip(rel, e.to_string());
                        }
                    }
                    rec.forget(rel);
                    rec.links.insert(rel.clone(), text);
                    rec.add_parents(rel);
                    continue;
                }
                Ok(c) if src.copy_unsafe_links && c.is_dir() => {
                    for t in targets {
                        if blocked(t, rel).is_none() {
                            let to = t.join(rel);
                            let _ = std::fs::remove_dir_all(&to);
                            let _ = std::fs::remove_file(&to);
                            if let Err(e) = clone_tree(&c, &to) {
                                skip(rel, e.to_string());
                            }
                        }
                    }
                    rec.forget(rel);
                    rec.dirs.insert(rel.clone());
                    continue;
                }
                Ok(_) if src.copy_unsafe_links => {}
                _ => {
                    skip(
                        rel,
                        "a link reaching outside the app (a push stops here; --copy-unsafe-links copies what it points to)".into(),
                    );
                    continue;
                }
            }
        } else if md.is_dir() {
            for t in targets {
                if blocked(t, rel).is_none() {
                    let p = t.join(rel);
                    if std::fs::symlink_metadata(&p).is_ok_and(|m| !m.is_dir()) {
                        let _ = std::fs::remove_file(&p);
                    }
                    let _ = std::fs::create_dir_all(&p);
                }
            }
            rec.files.remove(rel);
            rec.links.remove(rel);
            rec.dirs.insert(rel.clone());
            rec.add_parents(rel);
            continue;
        }
        let f = match open_source(&root_canon, &from, src.copy_unsafe_links) {
            Ok(f) => f,
            Err(e) => {
                skip(rel, e.to_string());
                continue;
            }
        };
        let Ok(fmd) = f.metadata() else { continue };
        // What the staged tree held before this edit: an instance whose file differs from
        // it had changed the file itself.
        let base = targets
            .first()
            .and_then(|t| std::fs::symlink_metadata(t.join(rel)).ok())
            .map(|m| (m.len(), mtime_of(&m)));
        let mut copied = false;
        for (i, t) in targets.iter().enumerate() {
            if let Some(why) = blocked(t, rel) {
                skip(rel, why);
                continue;
            }
            let to = t.join(rel);
            if i > 0
                && let Some(b) = base
                && let Ok(m) = std::fs::symlink_metadata(&to)
                && m.is_file()
                && (m.len(), mtime_of(&m)) != b
            {
                skip(
                    rel,
                    format!(
                        "the instance copy {} had changed it while running; your edit replaced that",
                        t.display()
                    ),
                );
            }
            match ensure_parent(&to).and_then(|()| replace_with(&f, &to)) {
                Ok(_) => copied = true,
                Err(e) => skip(rel, format!("could not copy it into {}: {e}", t.display())),
            }
        }
        if copied {
            rec.forget(rel);
            rec.files.insert(rel.clone(), (fmd.len(), mtime_of(&fmd)));
            rec.add_parents(rel);
        }
    }
    Ok(skipped)
}

/// Make the parent directories of `to` (inside a copy, checked by [`blocked`] first).
fn ensure_parent(to: &Path) -> io::Result<()> {
    match to.parent() {
        Some(p) => std::fs::create_dir_all(p),
        None => Ok(()),
    }
}

impl Record {
    /// Forget `rel` and everything below it.
    fn forget(&mut self, rel: &str) {
        self.files.remove(rel);
        self.links.remove(rel);
        let prefix = format!("{rel}/");
        if self.dirs.remove(rel) {
            self.files.retain(|k, _| !k.starts_with(&prefix));
            self.links.retain(|k, _| !k.starts_with(&prefix));
            self.dirs.retain(|k| !k.starts_with(&prefix));
        }
    }

    /// Record the directories above `rel`.
    fn add_parents(&mut self, rel: &str) {
        let mut acc = String::new();
        let parts: Vec<&str> = rel.split('/').collect();
        for p in &parts[..parts.len().saturating_sub(1)] {
            if !acc.is_empty() {
                acc.push('/');
            }
            acc.push_str(p);
            self.dirs.insert(acc.clone());
        }
    }
}

/// What stands in the way of reaching `rel` below `root` through plain directories only.
enum InTheWay {
    /// `rel` is not a plain relative path (`..`, `.`, an empty part).
    NotPlain,
    /// This parent (relative to `root`) is a link.
    Link(PathBuf),
    /// This parent is neither a link nor a directory.
    NotADir(PathBuf),
    /// This parent does not exist.
    Gone,
}

/// The first parent of `rel` below `root` that is not a real directory, if any (each parent
/// looked at without following links).
fn in_the_way(root: &Path, rel: &str) -> Option<InTheWay> {
    let mut p = root.to_path_buf();
    let parts: Vec<&str> = rel.split('/').collect();
    for part in &parts[..parts.len().saturating_sub(1)] {
        if part.is_empty() || *part == "." || *part == ".." {
            return Some(InTheWay::NotPlain);
        }
        p.push(part);
        let shown = || p.strip_prefix(root).unwrap_or(&p).to_path_buf();
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => return Some(InTheWay::Link(shown())),
            Ok(m) if !m.is_dir() => return Some(InTheWay::NotADir(shown())),
            Ok(_) => {}
            Err(_) => return Some(InTheWay::Gone),
        }
    }
    None
}

/// Why `rel` cannot be read from the checkout without going through a link: a parent of it
/// there is a link (or not a directory).
fn source_blocked(root: &Path, rel: &str) -> Option<String> {
    Some(match in_the_way(root, rel)? {
        InTheWay::NotPlain => "not a plain relative path".into(),
        InTheWay::Link(p) => format!(
            "{} is a link in your checkout; what is below it is not synced through it",
            p.display()
        ),
        InTheWay::NotADir(_) => "a parent is not a directory".into(),
        InTheWay::Gone => "a parent is gone".into(),
    })
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
/// is a link or not a directory (a hook replaced it). A missing parent is made later.
fn blocked(root: &Path, rel: &str) -> Option<String> {
    Some(match in_the_way(root, rel)? {
        InTheWay::NotPlain => "not a plain relative path".into(),
        InTheWay::Link(p) => format!(
            "{} is a link in the staged copy (a hook made it); nothing is written through it",
            p.display()
        ),
        InTheWay::NotADir(p) => format!("{} is not a directory in the staged copy", p.display()),
        InTheWay::Gone => return None,
    })
}

/// What the tools an app's commands run write under `$HOME` (the app's directory) for
/// themselves, never the app's files: npm's logs, cache and update check (`.npm/_logs`,
/// `.npm/_update-notifier-last-checked`), node-gyp's headers (`.node-gyp`), the XDG cache
/// (pip, node-gyp, …: `.cache`), and the update notifier's store (`.config/configstore`).
pub(crate) const TOOL_DIRS: &[&str] = &[".npm", ".node-gyp", ".cache", ".config/configstore"];

/// Files an instance wrote into its own copy: what differs from the tree it was cloned from
/// (new or changed files; compiled Python caches and [`TOOL_DIRS`] left out).
pub(crate) fn written(base: &Path, copy: &Path) -> Vec<String> {
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
            // Compiled Python caches, and the private Jetty base the tool's own Java command
            // writes: not the app's doing.
            if name == "__pycache__"
                || name.ends_with(".pyc")
                || (rel.is_empty() && name == ".jetty-base")
            {
                continue;
            }
            let r = if rel.is_empty() {
                name
            } else {
                format!("{rel}/{name}")
            };
            let Ok(t) = e.file_type() else { continue };
            if t.is_dir() && TOOL_DIRS.contains(&r.as_str()) {
                continue;
            }
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
            let differs = if a.file_type().is_symlink() || b.file_type().is_symlink() {
                // A link cloned for the instance is new but the same: compare where it points.
                std::fs::read_link(e.path()).ok() != std::fs::read_link(base.join(&r)).ok()
            } else {
                a.len() != b.len() || mtime_of(&a) != mtime_of(&b)
            };
            if differs {
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
        // The outside link brought what it points to; the inside one is a link in the copy,
        // to the copy's own file.
        assert!(std::fs::symlink_metadata(d2.join("out")).unwrap().is_file());
        assert_eq!(read(&d2.join("out")), "outside\n");
        assert_eq!(
            std::fs::read_link(d2.join("alias")).unwrap(),
            Path::new("in.txt")
        );
        assert_eq!(read(&d2.join("alias")), "in\n");
    }

    #[test]
    fn links_inside_the_app_stay_links_into_the_copy_and_follow_edits() {
        let t = tempfile::tempdir().unwrap();
        let (app, a) = (t.path().join("app"), t.path().join("a"));
        put(&app, "public/static/s.css", "body{}\n");
        put(&app, "conf/dev.py", "DEBUG=1\n");
        std::os::unix::fs::symlink("public/static", app.join("static")).unwrap();
        std::os::unix::fs::symlink("dev.py", app.join("conf/config.py")).unwrap();
        put(&app, "sub/.stackato-local/services.json", "secret");
        let s = src(&app, &[]);
        let (mut rec, _) = populate(&s, &a).unwrap();
        assert_eq!(read(&a.join("static/s.css")), "body{}\n");
        assert_eq!(
            std::fs::read_link(a.join("static")).unwrap(),
            Path::new("public/static")
        );
        assert!(
            !a.join("sub/.stackato-local").exists(),
            "a nested state dir was copied"
        );
        put(&app, "conf/dev.py", "DEBUG=0, edited\n");
        let c = diff(&s, &rec).unwrap();
        sync(&s, std::slice::from_ref(&a), &c, &mut rec).unwrap();
        assert_eq!(read(&a.join("conf/config.py")), "DEBUG=0, edited\n");
        assert!(diff(&s, &rec).unwrap().is_empty());
    }

    #[test]
    fn one_path_that_cannot_be_synced_does_not_stop_the_others_and_nothing_is_read_through_a_link()
    {
        let t = tempfile::tempdir().unwrap();
        let (app, a) = (t.path().join("app"), t.path().join("a"));
        let long = "x".repeat(250);
        put(&app, &long, "1\n");
        put(&app, "msg", "m1\n");
        put(&app, "sub/key", "public\n");
        let s = src(&app, &[]);
        let (mut rec, _) = populate(&s, &a).unwrap();
        put(&app, &long, "2, longer\n");
        put(&app, "msg", "m2, longer\n");
        // A directory of the checkout becomes a link to a secret elsewhere.
        put(t.path(), "secret/key", "TOPSECRET\n");
        std::fs::remove_dir_all(app.join("sub")).unwrap();
        std::os::unix::fs::symlink(t.path().join("secret"), app.join("sub")).unwrap();
        let c = Changes {
            changed: vec![long.clone(), "msg".into(), "sub/key".into()],
            ..Changes::default()
        };
        let skipped = sync(&s, std::slice::from_ref(&a), &c, &mut rec).unwrap();
        assert_eq!(read(&a.join(&long)), "2, longer\n");
        assert_eq!(read(&a.join("msg")), "m2, longer\n");
        assert_eq!(read(&a.join("sub/key")), "public\n", "read through a link");
        assert!(skipped.iter().any(|k| k.rel == "sub/key"), "{skipped:?}");
        // The full comparison reports the outside link instead of failing.
        let c = diff(&s, &rec).unwrap();
        assert_eq!(c.unsafe_links.len(), 1, "{c:?}");
    }

    #[test]
    fn a_directory_replaced_by_a_file_stays_a_file_after_the_next_comparison() {
        let t = tempfile::tempdir().unwrap();
        let (app, a) = (t.path().join("app"), t.path().join("a"));
        put(&app, "sub/x", "x\n");
        let s = src(&app, &[]);
        let (mut rec, _) = populate(&s, &a).unwrap();
        std::fs::remove_dir_all(app.join("sub")).unwrap();
        put(&app, "sub", "iamfile\n");
        let c = Changes {
            changed: vec!["sub".into()],
            removed: vec!["sub/x".into()],
            ..Changes::default()
        };
        sync(&s, std::slice::from_ref(&a), &c, &mut rec).unwrap();
        assert_eq!(read(&a.join("sub")), "iamfile\n");
        let c = diff(&s, &rec).unwrap();
        assert!(c.is_empty(), "{c:?}");
        // New directories made while watching are recorded with the file.
        put(&app, "new/deep/f", "f\n");
        let c = Changes {
            changed: vec!["new/deep/f".into()],
            ..Changes::default()
        };
        sync(&s, std::slice::from_ref(&a), &c, &mut rec).unwrap();
        assert!(diff(&s, &rec).unwrap().is_empty());
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
