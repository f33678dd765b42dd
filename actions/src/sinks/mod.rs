//! The sinks of the action library.
//!
//! File sinks write through `Output`, an [`AtomicWriter`] with optional gzip: `finish`
//! flushes everything to the temporary file, nothing is visible at the target until the
//! executor calls the sink's `commit` (after every node of the run succeeded), and `abort`
//! (or a drop) removes the temporary file. The text writers (`csv_writer`, `jsonl_writer`,
//! `geojson_writer`) are one sink, `text_writer.rs`, over each format's record encoder
//! (header, one feature, footer); it writes through `partition.rs`, which lets their `path`
//! hold `{attribute}` placeholders (one file per value, a bounded number open at once);
//! `parquet_writer` writes through arrow-rs's `ArrowWriter` over an [`AtomicWriter`].

pub mod csv_writer;
pub mod echo_sink;
pub mod fgb_writer;
pub mod geojson_writer;
pub mod gpkg_writer;
pub mod jsonl_writer;
pub mod noop_sink;
pub mod parquet_writer;
mod partition;
pub mod shapefile_writer;
mod text_writer;

use std::io::Write;

use sluice_runtime::store::{AtomicWriter, StorageError};
use sluice_runtime::{ActionError, ActionSpec};

/// The specs of every action in this module.
pub fn specs() -> Vec<ActionSpec> {
    vec![
        csv_writer::SPEC,
        jsonl_writer::SPEC,
        geojson_writer::SPEC,
        parquet_writer::SPEC,
        shapefile_writer::SPEC,
        gpkg_writer::SPEC,
        fgb_writer::SPEC,
        noop_sink::SPEC,
        echo_sink::SPEC,
    ]
}

/// The byte stream under a file sink: plain or gzip, over an [`AtomicWriter`].
// One per output file: the size of the gzip state (zlib-rs keeps its window inline) costs
// nothing worth a box.
#[allow(clippy::large_enum_variant)]
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

    /// Finishes the stream (gzip trailer, buffers flushed to the temporary file) and returns
    /// the writer, still uncommitted: the sink commits it in `Sink::commit`, once the whole
    /// run has succeeded.
    pub(crate) fn finish(self, path: &str) -> Result<AtomicWriter, ActionError> {
        let mut w = match self {
            Output::Plain(w) => w,
            Output::Gzip(gz) => gz
                .finish()
                .map_err(|e| ActionError::io(format!("writing {path}"), e))?,
        };
        w.flush()
            .map_err(|e| ActionError::io(format!("writing {path}"), e))?;
        Ok(w)
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

/// Commits a finished output, if there is one (the shared body of file sinks' `commit`).
pub(crate) fn commit_pending(pending: &mut Option<AtomicWriter>) -> Result<(), ActionError> {
    match pending.take() {
        Some(w) => Ok(w.commit()?),
        None => Ok(()),
    }
}
