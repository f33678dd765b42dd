//! Spilling: sorted runs of features written to Parquet files, streamed back, and merged.
//!
//! An accumulating processor (sort, dedup, group-by, join) whose [`Reservation::try_grow`]
//! fails sorts what it holds, hands it to [`write_run`], frees its reservation and carries
//! on. In `finish` it calls [`merge`] with the runs and its in-memory sorted tail, and emits
//! what the [`MergeIter`] yields. Memory stays bounded: a run is written and read back one
//! row group at a time, so the merge holds one decoded row group per run plus the tail.
//!
//! ```text
//!   input ──► buffer ──(try_grow fails)──► sort ──► write_run ──► run-0.parquet
//!                │                                               run-1.parquet
//!                │ finish: sort the tail                         ...
//!                ▼                                                  │
//!              tail ─────────────────► merge (k-way, by cmp) ◄──────┘ one row group each
//!                                          │ ties: run 0, run 1, …, then the tail
//!                                          ▼
//!                                        output
//! ```
//!
//! # File format
//!
//! One Parquet file per run (snappy, row groups of [`ROW_GROUP_ROWS`] rows, each flushed as
//! soon as it is full). Columns, in order:
//!
//! | column | type | holds |
//! |---|---|---|
//! | `__id` | UInt64 | the feature id |
//! | `__schema` | UInt32 | index into the run's list of distinct schemas |
//! | `__geometry` | Binary, nullable | the geometry as WKB ([`crate::feature::wkb`]) |
//! | `__crs` | UInt32, nullable | the geometry's EPSG code |
//! | one per attribute | see below | the attribute's values, null where absent |
//!
//! Attribute columns are the union of the attribute names over the run, in first-seen order.
//! Columns are typed by [`ColumnPolicy::LOSSLESS`](crate::feature::arrow::ColumnPolicy): a
//! column whose non-null values all have one type gets the matching Arrow type (Int64,
//! Float64, Utf8, Boolean, Date32, Timestamp(µs, UTC), Timestamp(µs), Binary); a column with
//! mixed types, or with arrays or maps, is a Binary column of self-describing value encodings
//! ([`crate::feature::arrow::encoded`]), marked `sluice.encoded = "true"` in its Arrow field
//! metadata; a column of nulls only is an all-null Boolean column marked `sluice.empty`. The Parquet key-value metadata entry
//! `sluice.spill` (JSON) lists the attribute names and the distinct schemas (each a list of
//! column indices), so each feature comes back with exactly its own attribute names, in its
//! own order, and every feature of one schema shares one `Arc<Schema>`.
//!
//! Files are deleted when their [`SpillRun`] is dropped (the merge drops each run as soon as it
//! is exhausted), and the whole [`SpillDir`] folder goes when the run ends.
//!
//! # Modules
//!
//! - `codec`: the file layout, and features to record batches and back;
//! - `writer`: [`write_run`] and the run writer the merge also uses;
//! - `reader`: [`SpillReader`], a run streamed back;
//! - `merge`: [`merge`] and [`merge_bounded`], the k-way and multi-level merges.

mod codec;
mod merge;
mod reader;
#[cfg(test)]
mod tests;
mod writer;

use std::path::{Path, PathBuf};

use parquet::errors::ParquetError;

use crate::error::ActionError;

pub use merge::{MergeIter, MergeSpace, merge, merge_bounded};
pub use reader::SpillReader;
pub use writer::write_run;

/// The run file layout serves capture files too (`crate::capture`): one lossless format.
pub(crate) use codec::scan as scan_columns;
pub(crate) use reader::Rows;
pub(crate) use writer::RunWriter;

/// Rows per Parquet row group.
pub const ROW_GROUP_ROWS: usize = 8192;
/// Rows per page of a run file, and per batch read back: what a merge holds per open run.
pub const READ_ROWS: usize = 1024;
/// Bytes an open run costs beyond its decoded batch: the reader's state, a buffered page
/// header read per column, the file handle.
const OPEN_FIXED_BYTES: usize = 32 << 10;
const OPEN_PER_COLUMN_BYTES: usize = 4 << 10;

/// A sorted run written to disk. The file is deleted when the run is dropped.
#[derive(Debug)]
pub struct SpillRun {
    /// The Parquet file.
    pub path: PathBuf,
    /// Features in the file.
    pub rows: u64,
    /// Size of the file in bytes.
    pub bytes: u64,
    /// Largest decoded (Arrow) bytes per row of a row group.
    row_bytes: usize,
    /// Attribute columns.
    columns: usize,
}

impl Drop for SpillRun {
    fn drop(&mut self) {
        // Best effort: the spill folder itself is removed when the run ends.
        let _ = std::fs::remove_file(&self.path);
    }
}

impl SpillRun {
    /// Streams the features back, in the order written, one page of [`READ_ROWS`] rows at a
    /// time.
    pub fn read(&self) -> Result<SpillReader, ActionError> {
        SpillReader::open(&self.path, &mut Vec::new())
    }

    /// Bytes a merge holds while this run is open: a decoded batch of [`READ_ROWS`] rows,
    /// the page it came from (decompressed and compressed), the features made from it, and
    /// the reader's fixed state.
    pub fn open_cost(&self) -> usize {
        READ_ROWS.saturating_mul(self.row_bytes).saturating_mul(4) + self.fixed_cost()
    }

    /// Bytes a writer holds while writing a run of rows like this one's: a row group of
    /// features, its Arrow batch and its encoded pages.
    pub fn write_cost(&self) -> usize {
        ROW_GROUP_ROWS
            .saturating_mul(self.row_bytes)
            .saturating_mul(4)
            + self.fixed_cost()
    }

    fn fixed_cost(&self) -> usize {
        OPEN_FIXED_BYTES + OPEN_PER_COLUMN_BYTES * (codec::FIXED.len() + self.columns)
    }
}

fn io_error(context: &str, path: &Path, e: std::io::Error) -> ActionError {
    ActionError::io(format!("{context} spill file {}", path.display()), e)
}

/// Parquet errors become [`ActionError::Io`] naming the file; a disk error inside is kept as
/// the source so its kind (e.g. no space left) survives.
fn parquet_error(context: &str, path: &Path, e: ParquetError) -> ActionError {
    let source = match e {
        ParquetError::External(b) => match b.downcast::<std::io::Error>() {
            Ok(io) => *io,
            Err(other) => std::io::Error::other(other),
        },
        other => std::io::Error::other(other),
    };
    io_error(context, path, source)
}

fn arrow_error(context: &str, path: &Path, e: arrow_schema::ArrowError) -> ActionError {
    match e {
        arrow_schema::ArrowError::IoError(_, io) => io_error(context, path, io),
        arrow_schema::ArrowError::ExternalError(b) => match b.downcast::<ParquetError>() {
            Ok(pq) => parquet_error(context, path, *pq),
            Err(other) => io_error(context, path, std::io::Error::other(other)),
        },
        other => io_error(context, path, std::io::Error::other(other)),
    }
}

/// Runs a Parquet read, turning a panic into a data error. parquet-rs still panics on some
/// damaged files instead of returning an error (e.g. apache/arrow-rs#10722); a damaged spill
/// file must fail the node with a located error like any other bad input. The reader is not
/// used again after a panic.
fn guarded<T>(path: &Path, f: impl FnOnce() -> Result<T, ActionError>) -> Result<T, ActionError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        let why = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        Err(corrupt(path, None, format!("damaged spill file ({why})")))
    })
}

fn corrupt(path: &Path, row: Option<u64>, message: impl Into<String>) -> ActionError {
    let location = match row {
        Some(r) => format!("spill file {}, row {r}", path.display()),
        None => format!("spill file {}", path.display()),
    };
    ActionError::data(Some(location), message)
}
