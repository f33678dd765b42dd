//! What an output is: symbolic links followed, special files refused; and the numbers that
//! keep this process's temporary names apart.

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::error::StorageError;

/// A number no other temporary name of this process uses.
pub(super) fn next() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// The file an output location really writes: symbolic links followed (to a file that may
/// not exist yet). Folders, devices, FIFOs and sockets are refused.
pub(super) fn output_target(location: &str, abs: &Path) -> Result<PathBuf, StorageError> {
    match std::fs::metadata(abs) {
        Ok(m) if m.is_file() => {
            return std::fs::canonicalize(abs)
                .map_err(|e| StorageError::io("resolving", location, e));
        }
        Ok(m) => return Err(not_a_file(location, &m)),
        Err(e) if e.kind() != io::ErrorKind::NotFound => {
            return Err(StorageError::io("checking", location, e));
        }
        Err(_) => {}
    }
    // Missing, or a link to something missing: follow the links by hand.
    let mut p = abs.to_path_buf();
    for _ in 0..40 {
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let link = std::fs::read_link(&p)
                    .map_err(|e| StorageError::io("resolving", location, e))?;
                p = match p.parent() {
                    Some(parent) if link.is_relative() => parent.join(link),
                    _ => link,
                };
            }
            _ => return Ok(p),
        }
    }
    Err(StorageError::bad_location(
        location,
        "too many levels of symbolic links",
    ))
}

pub(super) fn not_a_file(location: &str, m: &std::fs::Metadata) -> StorageError {
    let what = if m.is_dir() {
        "a folder"
    } else {
        special_kind(m)
    };
    StorageError::NotAFile {
        location: location.to_string(),
        what,
        folder: m.is_dir(),
    }
}

#[cfg(unix)]
fn special_kind(m: &std::fs::Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let t = m.file_type();
    if t.is_block_device() || t.is_char_device() {
        "a device"
    } else if t.is_fifo() {
        "a FIFO (named pipe)"
    } else if t.is_socket() {
        "a socket"
    } else {
        "a special file"
    }
}

#[cfg(not(unix))]
fn special_kind(_: &std::fs::Metadata) -> &'static str {
    "a special file"
}
