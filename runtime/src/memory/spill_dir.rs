//! The run's spill folder: made on first use, removed with everything in it when the run
//! ends (success, failure or cancellation), because the last handle's drop deletes it.
//!
//! Its name, `sluice-spill-<pid>-<start>-<random>`, names the process that made it, so the
//! folder of a process killed outright is recognised and removed by a later run
//! ([`SpillDir::clean_stale`], see `store/stale.rs`).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;

use crate::error::ActionError;
use crate::store::stale::{self, Cleaned};

/// A lazily created temporary folder shared by a run's accumulators.
#[derive(Clone, Debug)]
pub struct SpillDir {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    base: PathBuf,
    dir: Mutex<Option<tempfile::TempDir>>,
    next: AtomicU64,
    files: AtomicU64,
    bytes: AtomicU64,
}

impl SpillDir {
    /// A spill folder under `base` (created when first needed).
    pub fn new(base: impl Into<PathBuf>) -> SpillDir {
        SpillDir {
            inner: Arc::new(Inner {
                base: base.into(),
                dir: Mutex::new(None),
                next: AtomicU64::new(0),
                files: AtomicU64::new(0),
                bytes: AtomicU64::new(0),
            }),
        }
    }

    /// A spill folder under the system temporary directory.
    pub fn system() -> SpillDir {
        SpillDir::new(std::env::temp_dir())
    }

    /// A fresh file path in the folder, named after `prefix`.
    pub fn new_path(&self, prefix: &str) -> Result<PathBuf, ActionError> {
        let mut guard = self.inner.dir.lock();
        if guard.is_none() {
            std::fs::create_dir_all(&self.inner.base).map_err(|e| {
                ActionError::io(
                    format!("creating spill folder {}", self.inner.base.display()),
                    e,
                )
            })?;
            let prefix = format!("{}{}-", stale::SPILL_PREFIX, stale::owner_token());
            let dir = tempfile::Builder::new()
                .prefix(&prefix)
                .tempdir_in(&self.inner.base)
                .map_err(|e| {
                    ActionError::io(
                        format!("creating spill folder in {}", self.inner.base.display()),
                        e,
                    )
                })?;
            *guard = Some(dir);
        }
        let n = self.inner.next.fetch_add(1, Ordering::Relaxed);
        let safe: String = prefix
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let dir = guard
            .as_ref()
            .map(|d| d.path().to_path_buf())
            .unwrap_or_default();
        Ok(dir.join(format!("{safe}-{n}.parquet")))
    }

    /// Records a finished spill file of `bytes` bytes (for the run report).
    pub fn record(&self, bytes: u64) {
        self.inner.files.fetch_add(1, Ordering::Relaxed);
        self.inner.bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Spill files and bytes written so far.
    pub fn totals(&self) -> (u64, u64) {
        (
            self.inner.files.load(Ordering::Relaxed),
            self.inner.bytes.load(Ordering::Relaxed),
        )
    }

    /// The folder, if it was created.
    pub fn path(&self) -> Option<PathBuf> {
        self.inner
            .dir
            .lock()
            .as_ref()
            .map(|d| d.path().to_path_buf())
    }

    /// Removes the spill folders that processes which no longer run left in the base
    /// folder (a run killed outright cannot remove its own).
    pub fn clean_stale(&self) -> Vec<Cleaned> {
        stale::clean_spill_base(&self.inner.base)
    }

    /// The base folder under which the spill folder is made.
    pub fn base(&self) -> &Path {
        &self.inner.base
    }
}
