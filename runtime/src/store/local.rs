//! [`local_file`]: a path on this machine for readers that need one (SQLite opens files by
//! name), whatever the location.

use std::path::{Path, PathBuf};

use super::archive;
use super::error::StorageError;

/// A file on the local file system holding a location's bytes: the file itself for a
/// local path, or a temporary copy (a hidden `.sluice-in-*` file in the system's temporary
/// folder, removed when this is dropped) for `memory://`, object stores and zip members.
#[derive(Debug)]
pub struct LocalFile {
    path: PathBuf,
    _copy: Option<tempfile::TempPath>,
}

impl LocalFile {
    /// Where the bytes are.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether this is a temporary copy rather than the file itself.
    pub fn is_copy(&self) -> bool {
        self._copy.is_some()
    }
}

/// A local path with `location`'s bytes: see [`LocalFile`]. A local location that does not
/// name a regular file is [`StorageError::NotFound`] (or a folder error).
pub fn local_file(location: &str) -> Result<LocalFile, StorageError> {
    if archive::split(location).is_none()
        && let Some(path) = super::local_path(location)
    {
        let path = path?;
        return match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => Ok(LocalFile { path, _copy: None }),
            Ok(_) => Err(StorageError::bad_location(
                location,
                "expected a file, found a folder",
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(StorageError::NotFound {
                op: "reading",
                location: location.to_string(),
            }),
            Err(e) => Err(StorageError::io("reading", location, e)),
        };
    }
    let mut copy = tempfile::Builder::new()
        .prefix(".sluice-in-")
        .tempfile()
        .map_err(|e| StorageError::io("copying", location, e))?;
    let mut from = super::open_read(location)?;
    std::io::copy(&mut from, copy.as_file_mut())
        .map_err(|e| StorageError::io("copying", location, e))?;
    let copy = copy.into_temp_path();
    Ok(LocalFile {
        path: copy.to_path_buf(),
        _copy: Some(copy),
    })
}
