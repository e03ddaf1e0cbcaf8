//! Reading files a repository controls: a regular file only (a FIFO, a device, a directory or
//! a socket is named and refused before it is opened, and again after, in case it was swapped
//! in meanwhile), opened without blocking and, unless asked, without following a final
//! symlink, and read with a byte cap. The manifest reader, the trust record and the state
//! directory all read through here.

use std::fs::{File, FileType, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Why a file was not read.
#[derive(Debug)]
pub enum ReadError {
    /// A FIFO, a device, a directory, a socket (or, when links are not followed, a link).
    NotRegular(&'static str),
    /// More bytes than the cap (the size found, or the cap + 1 when it grew while read).
    TooLarge(u64),
    Io(io::Error),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::NotRegular(kind) => write!(f, "it is {kind}, not a regular file"),
            ReadError::TooLarge(n) => write!(f, "it is too large ({n} bytes)"),
            ReadError::Io(e) => e.fmt(f),
        }
    }
}

impl From<ReadError> for io::Error {
    fn from(e: ReadError) -> io::Error {
        match e {
            ReadError::Io(e) => e,
            other => io::Error::new(io::ErrorKind::InvalidData, other.to_string()),
        }
    }
}

/// What kind of file `t` is, for messages ("a FIFO").
pub(crate) fn kind(t: FileType) -> &'static str {
    if t.is_file() {
        "a regular file"
    } else if t.is_dir() {
        "a directory"
    } else if t.is_symlink() {
        "a symbolic link"
    } else if t.is_fifo() {
        "a FIFO"
    } else if t.is_char_device() || t.is_block_device() {
        "a device"
    } else if t.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// Open `path` for reading if it is a regular file: checked before opening (opening some
/// devices has effects), opened non-blocking (a FIFO swapped in meanwhile opens at once) and,
/// unless `follow`, with `O_NOFOLLOW`, then checked again on the descriptor.
pub(crate) fn open_regular(path: &Path, follow: bool) -> Result<File, ReadError> {
    let md = if follow {
        std::fs::metadata(path)
    } else {
        std::fs::symlink_metadata(path)
    }
    .map_err(ReadError::Io)?;
    if !md.is_file() {
        return Err(ReadError::NotRegular(kind(md.file_type())));
    }
    let mut flags = libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC;
    if !follow {
        flags |= libc::O_NOFOLLOW;
    }
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(path)
        .map_err(ReadError::Io)?;
    let md = f.metadata().map_err(ReadError::Io)?;
    if !md.is_file() {
        return Err(ReadError::NotRegular(kind(md.file_type())));
    }
    Ok(f)
}

/// The whole of a regular file of at most `cap` bytes (see [`open_regular`]).
pub(crate) fn read_capped(path: &Path, follow: bool, cap: u64) -> Result<Vec<u8>, ReadError> {
    let f = open_regular(path, follow)?;
    let len = f.metadata().map_err(ReadError::Io)?.len();
    if len > cap {
        return Err(ReadError::TooLarge(len));
    }
    let mut bytes = Vec::with_capacity(len as usize);
    f.take(cap + 1)
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)?;
    if bytes.len() as u64 > cap {
        return Err(ReadError::TooLarge(bytes.len() as u64));
    }
    Ok(bytes)
}

/// The user's own home, from the tool's environment. Staging runs with `HOME` set to the app
/// directory (as on the platform), so an installer left to itself would put its cache
/// (`~/.cache/pip`, `~/.npm`) into the user's checkout: the installers the tool runs get the
/// user's own cache instead (where their pip and npm keep it; shared between projects).
pub(crate) fn user_home() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
}

/// `$XDG_CACHE_HOME`, else `~/.cache`, of the user (see [`user_home`]).
pub(crate) fn user_cache() -> Option<PathBuf> {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| user_home().map(|h| h.join(".cache")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_regular_files_are_read_and_only_up_to_the_cap() {
        let t = tempfile::tempdir().unwrap();
        let f = t.path().join("f");
        std::fs::write(&f, b"12345").unwrap();
        assert_eq!(read_capped(&f, false, 5).unwrap(), b"12345");
        assert!(matches!(
            read_capped(&f, false, 4),
            Err(ReadError::TooLarge(5))
        ));
        let link = t.path().join("l");
        std::os::unix::fs::symlink(&f, &link).unwrap();
        assert!(matches!(
            read_capped(&link, false, 5),
            Err(ReadError::NotRegular("a symbolic link"))
        ));
        assert_eq!(read_capped(&link, true, 5).unwrap(), b"12345");
        let fifo = t.path().join("p");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        assert!(matches!(
            read_capped(&fifo, true, 5),
            Err(ReadError::NotRegular("a FIFO"))
        ));
        assert!(matches!(
            read_capped(Path::new("/dev/zero"), true, 5),
            Err(ReadError::NotRegular("a device"))
        ));
        assert!(matches!(
            read_capped(t.path(), true, 5),
            Err(ReadError::NotRegular("a directory"))
        ));
    }
}
