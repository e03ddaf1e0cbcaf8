//! How many inotify watches `run` would need, counted the way the watcher adds them (one per
//! directory that its filter does not ignore: no `.git`, no state directory, nothing
//! `.gitignore`d or in `ignores:`), against the per-user limit and the watches in use; and the
//! inotify instances (one per `run`) against theirs.

use std::path::Path;

use crate::manifest::Loaded;
use crate::state::StateDir;

/// Stop counting here: the answer is "far too many" already.
const MAX_DIRS: usize = 2_000_000;

/// `fs.inotify.max_user_watches`, when the kernel has inotify.
pub(crate) const LIMIT_FILE: &str = "/proc/sys/fs/inotify/max_user_watches";

/// `fs.inotify.max_user_instances`.
pub(crate) const INSTANCES_FILE: &str = "/proc/sys/fs/inotify/max_user_instances";

fn read_u64(path: &str) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// The limit in force: the system's, or this user namespace's when that is lower (a container).
fn limit(system: &str, namespace: &str) -> Option<u64> {
    let sys = read_u64(system)?;
    Some(read_u64(namespace).map_or(sys, |ns| ns.min(sys)))
}

pub(crate) fn max_user_watches() -> Option<u64> {
    limit(LIMIT_FILE, "/proc/sys/user/max_inotify_watches")
}

/// `fs.inotify.max_user_instances` (or this user namespace's lower limit).
pub(crate) fn max_user_instances() -> Option<u64> {
    limit(INSTANCES_FILE, "/proc/sys/user/max_inotify_instances")
}

/// The directories `run` would watch for this manifest (its roots as `run` computes them).
pub(crate) fn directories(loaded: &Loaded, state: &StateDir) -> usize {
    let (roots, filter) = crate::watch::for_project(loaded, state.root(), &[], &[]);
    let mut count = 0;
    for root in &roots {
        count += walk(root, &filter);
    }
    count
}

/// Count `root` and the directories below it that `filter` keeps (as the watcher adds them).
fn walk(root: &Path, filter: &crate::watch::Filter) -> usize {
    use crate::watch::Visit;
    let mut count = 0;
    crate::watch::walk_dirs(root, filter, |_| {
        count += 1;
        if count >= MAX_DIRS {
            Visit::Stop
        } else {
            Visit::Descend
        }
    });
    count
}

/// Inotify watches this user's processes hold now (from `/proc/*/fdinfo`); `None` when that
/// cannot be read.
pub(crate) fn watches_in_use() -> Option<u64> {
    in_use().map(|(_, watches)| watches)
}

/// Inotify instances this user's processes hold now (`anon_inode:inotify` links in
/// `/proc/*/fd`); `None` when that cannot be read.
pub(crate) fn instances_in_use() -> Option<u64> {
    in_use().map(|(instances, _)| instances)
}

/// (instances, watches) of this user's processes.
fn in_use() -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let me = nix::unistd::Uid::effective().as_raw();
    let rd = std::fs::read_dir("/proc").ok()?;
    let mut total = 0u64;
    let mut instances = 0u64;
    for e in rd.filter_map(Result::ok) {
        if e.file_name()
            .to_str()
            .is_none_or(|n| n.parse::<u32>().is_err())
        {
            continue;
        }
        if std::fs::metadata(e.path()).map_or(true, |m| m.uid() != me) {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(e.path().join("fd")) else {
            continue;
        };
        for fd in fds.filter_map(Result::ok) {
            let is_inotify =
                std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == "anon_inode:inotify");
            if !is_inotify {
                continue;
            }
            instances += 1;
            let info = e.path().join("fdinfo").join(fd.file_name());
            if let Ok(text) = std::fs::read_to_string(info) {
                total += text
                    .lines()
                    .filter(|l| l.starts_with("inotify wd:"))
                    .count() as u64;
            }
        }
    }
    Some((instances, total))
}
