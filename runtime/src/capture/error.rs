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

fn suggest(s: &[String]) -> String {
    match s {
        [] => String::new(),
        [one] => format!("; did you mean \"{one}\"?"),
        many => format!(
            "; did you mean one of {}?",
            many.iter()
                .map(|m| format!("\"{m}\""))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The names of `candidates` nearest to `name` (at most three, nearest first).
pub(crate) fn nearest<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut scored: Vec<(f64, &str)> = candidates
        .map(|c| (strsim::normalized_damerau_levenshtein(name, c), c))
        .filter(|(score, _)| *score >= 0.5)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
    scored.dedup_by(|a, b| a.1 == b.1);
    scored
        .into_iter()
        .take(3)
        .map(|(_, c)| c.to_string())
        .collect()
}
