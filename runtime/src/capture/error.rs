//! What can go wrong with a job folder.

use crate::error::ActionError;
use crate::store::StorageError;

/// A capture or job-folder problem. Each names the job, edge, node or file at fault.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    /// The job folder has no manifest.
    #[error("no capture job at {job}: {job}/manifest.json does not exist")]
    NoJob {
        /// The job folder.
        job: String,
    },
    /// The manifest cannot be read or understood.
    #[error("capture job {job}: manifest.json is damaged: {message}")]
    CorruptManifest {
        /// The job folder.
        job: String,
        /// What is wrong with it.
        message: String,
    },
    /// An edge name that the workflow or job does not have.
    #[error("unknown edge \"{name}\"{}", suggest(.suggestions))]
    UnknownEdge {
        /// The name as given.
        name: String,
        /// The nearest edge names.
        suggestions: Vec<String>,
    },
    /// A node id that the workflow does not have.
    #[error("unknown node \"{node}\"{}", suggest(.suggestions))]
    UnknownNode {
        /// The id as given.
        node: String,
        /// The nearest node ids.
        suggestions: Vec<String>,
    },
    /// The job was captured from another workflow.
    #[error("capture job {job} holds a run of workflow \"{job_workflow}\", not of \"{workflow}\"")]
    OtherWorkflow {
        /// The job folder.
        job: String,
        /// The workflow the job was captured from.
        job_workflow: String,
        /// The workflow given now.
        workflow: String,
    },
    /// A re-run needs an edge that the job did not capture.
    #[error(
        "edge \"{edge}\" feeds the part to re-run, but capture job {job} did not capture it; \
         run the whole workflow once with --capture {edge} (or --capture all)"
    )]
    NotCaptured {
        /// The job folder.
        job: String,
        /// The edge.
        edge: String,
    },
    /// A re-run needs an edge whose capture did not complete.
    #[error(
        "edge \"{edge}\" feeds the part to re-run, but its capture in job {job} is incomplete \
         (the run {state} before every feature crossed it); run the whole workflow again"
    )]
    Incomplete {
        /// The job folder.
        job: String,
        /// The edge.
        edge: String,
        /// How the captured run ended.
        state: String,
    },
    /// A storage operation failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A capture file could not be read or written.
    #[error("{0}")]
    File(#[from] ActionError),
}

/// `; did you mean "a"?` (or one of several), or nothing.
fn suggest(s: &[String]) -> String {
    let options: Vec<&str> = s.iter().map(String::as_str).collect();
    crate::error::did_you_mean(&options).map_or_else(String::new, |h| format!("; {h}"))
}

/// The names of `candidates` nearest to `name`, nearest first ([`crate::error::nearest`]).
pub(crate) fn nearest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Vec<String> {
    crate::error::nearest(name, candidates)
        .into_iter()
        .map(str::to_string)
        .collect()
}
