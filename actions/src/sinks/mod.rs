//! The sinks of the action library.
//!
//! File sinks write through `Output`, an [`AtomicWriter`] with optional gzip: nothing is
//! visible at the target until the sink's `finish` commits, and `abort` (or a drop) removes
//! the temporary file.

pub mod csv_writer;
pub mod jsonl_writer;
pub mod noop_sink;

use std::io::Write;

use sluice_runtime::store::{AtomicWriter, StorageError};
use sluice_runtime::{ActionError, ActionSpec};

/// The specs of every action in this module.
pub fn specs() -> Vec<ActionSpec> {
    vec![csv_writer::SPEC, jsonl_writer::SPEC, noop_sink::SPEC]
}

/// The byte stream under a file sink: plain or gzip, over an [`AtomicWriter`].
pub(crate) enum Output {
    /// Uncompressed.
    Plain(AtomicWriter),
    /// Gzip-compressed.
    Gzip(flate2::write::GzEncoder<AtomicWriter>),
}

impl Output {
    /// Opens `path` for writing, compressed or not.
    pub(crate) fn create(path: &str, gzip: bool) -> Result<Output, StorageError> {
        let w = AtomicWriter::create(path)?;
        Ok(if gzip {
            // GzBuilder writes no modification time: identical input, identical bytes.
            Output::Gzip(flate2::GzBuilder::new().write(w, flate2::Compression::default()))
        } else {
            Output::Plain(w)
        })
    }

    /// Finishes the stream and commits the file.
    pub(crate) fn commit(self, path: &str) -> Result<(), ActionError> {
        let w = match self {
            Output::Plain(w) => w,
            Output::Gzip(gz) => gz
                .finish()
                .map_err(|e| ActionError::io(format!("writing {path}"), e))?,
        };
        Ok(w.commit()?)
    }
}

impl Write for Output {
    #[inline]
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Output::Plain(w) => w.write(buf),
            Output::Gzip(w) => w.write(buf),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Output::Plain(w) => w.flush(),
            Output::Gzip(w) => w.flush(),
        }
    }
}
