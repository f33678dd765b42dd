//! Capture: what flows on an edge, kept in a job folder, previewed, and fed back to re-run
//! part of a workflow.
//!
//! Off by default, and then free: no tap exists and nothing is checked per batch. With
//! [`RunOptions::capture`](crate::executor::RunOptions::capture) set, each captured edge
//! gets a tap on its producing node and a writer thread:
//!
//! ```text
//!   node thread ──batch──► edge ──► downstream node
//!        └──same batch (shared, no copy)──► tap (bounded) ──► writer thread
//!                                                               │ Parquet, a file per 256 k rows
//!   job folder/                                                 ▼
//!     manifest.json          ◄── rewritten (temp + rename) each time a file lands
//!     edges/000/part-00001.parquet
//!     edges/001/part-00001.parquet ...
//! ```
//!
//! - Files use spill's lossless layout (`crate::memory` spill files: the feature id, its own
//!   attribute names and order, typed columns, encoded mixed values, WKB geometry with its
//!   CRS), so a feature read back is the feature that crossed the edge. They are zstd
//!   compressed with dictionaries.
//! - Each captured edge reserves [`edge_budget_bytes`] from the run's memory budget for its
//!   tap and writer. A writer that falls behind blocks the producing node: nothing is
//!   dropped. A writer that fails (a full disk) fails the run with
//!   [`RunError::Capture`](crate::RunError::Capture), naming the edge and file.
//! - The [`Manifest`] names the workflow (with a fingerprint of it, resolved), the
//!   variables, and per edge its schemas, files, counts, bytes and whether it completed. A
//!   cancelled or failed run leaves it consistent: landed files are listed, the file in
//!   progress is removed, incomplete edges say so.
//!
//! Reading: [`Job::open`], [`Job::edges`], [`Job::read`] (a finished or a running job;
//! landed files only). Re-running: [`rerun_from`] turns a plan into the part downstream
//! of a node, fed from the job's captured edges.

mod error;
pub mod fingerprint;
mod job;
mod manifest;
mod replay;
mod select;
mod writer;

pub use error::CaptureError;
pub use job::Job;
pub use manifest::{
    EdgeEntry, FORMAT, FileEntry, FileSchema, JobState, MANIFEST, Manifest, VERSION, WorkflowInfo,
};
pub use replay::{Rerun, rerun_from};
pub use select::{CaptureEdges, find_edge, select_edges};
pub use writer::{FILE_ROWS, ROW_GROUP_ROWS, TAP_BATCHES, edge_budget_bytes};

pub(crate) use writer::{EdgeWriter, JobWriter, properties as file_properties, tap};

/// Where and what a run captures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureOptions {
    /// The job folder: a path, `file://`, `memory://` or (with the feature) `s3://`
    /// location. It must not hold a job yet.
    pub job: String,
    /// Which edges (edges the workflow marks `capture: true` are captured too).
    pub edges: CaptureEdges,
    /// Features per file (default [`FILE_ROWS`]): a file lands, and readers of a running
    /// job see it, every this many features.
    pub file_rows: u64,
}

impl CaptureOptions {
    /// Captures `edges` into job folder `job`, with files of [`FILE_ROWS`] features.
    pub fn new(job: impl Into<String>, edges: CaptureEdges) -> CaptureOptions {
        CaptureOptions {
            job: job.into(),
            edges,
            file_rows: FILE_ROWS,
        }
    }
}

#[cfg(test)]
mod tests;
