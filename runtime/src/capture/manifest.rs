//! `manifest.json`: what a job folder holds, rewritten (atomically) each time a file lands.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The value of [`Manifest::format`].
pub const FORMAT: &str = "sluice-capture";
/// The manifest version this build writes and reads.
pub const VERSION: u32 = 1;
/// The manifest's name in a job folder.
pub const MANIFEST: &str = "manifest.json";

/// The manifest of a job folder.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// Always [`VERSION`] for this build.
    pub version: u32,
    /// The workflow that was run.
    pub workflow: WorkflowInfo,
    /// Whether the run is going on, and how it ended.
    pub state: JobState,
    /// When the run started (RFC 3339).
    pub started: String,
    /// When the manifest was last written (RFC 3339).
    pub updated: String,
    /// The captured edges, in the workflow's edge order.
    pub edges: Vec<EdgeEntry>,
}

/// What identifies the workflow of a job.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WorkflowInfo {
    /// The workflow's name.
    pub name: Option<String>,
    /// SHA-256 of the resolved workflow (variables applied): every node's action and
    /// parameters, and every edge.
    pub hash: String,
    /// The variables' values.
    pub variables: BTreeMap<String, String>,
}

/// How far a job's run got.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum JobState {
    /// The run is going on (or its process was killed: see each edge's `complete`).
    Running,
    /// The run succeeded.
    Finished,
    /// The run failed.
    Failed,
    /// The run was cancelled.
    Cancelled,
}

impl std::fmt::Display for JobState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            JobState::Running => "running",
            JobState::Finished => "finished",
            JobState::Failed => "failed",
            JobState::Cancelled => "cancelled",
        })
    }
}

/// One captured edge.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct EdgeEntry {
    /// The edge's name (`keep.passed->order`).
    pub name: String,
    /// The upstream end, `node.port`.
    pub from: String,
    /// The downstream end, `node.port`.
    pub to: String,
    /// SHA-256 of the part of the workflow upstream of this edge (its producing node and
    /// everything before it): when it changes, what this edge carries may change.
    pub upstream_hash: String,
    /// Every feature that crossed the edge is in its files: the producing node finished and
    /// the last file landed.
    pub complete: bool,
    /// Features in the files.
    pub features: u64,
    /// Bytes of the files.
    pub bytes: u64,
    /// The distinct column sets of the files.
    pub schemas: Vec<FileSchema>,
    /// The files, in the order the features crossed the edge.
    pub files: Vec<FileEntry>,
}

/// The columns of a capture file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FileSchema {
    /// Attribute columns: name and type (`int`, `float`, `string`, ...; `encoded value` for
    /// a column of mixed types).
    pub columns: Vec<(String, String)>,
}

/// One landed capture file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FileEntry {
    /// Its path, relative to the job folder.
    pub path: String,
    /// Features in it.
    pub features: u64,
    /// Its size in bytes.
    pub bytes: u64,
    /// Index into the edge's `schemas`.
    pub schema: usize,
}
