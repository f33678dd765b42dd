//! [`StageError`]: why a task of a partitioned run cannot start.

use crate::store::StorageError;

/// Why a task of a partitioned run cannot start; each message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    /// `--stage K` past the plan's stages.
    #[error("stage {stage} does not exist: this workflow has {stages} stage(s), 0 to {last} (see `sluice plan`)", last = stages.saturating_sub(1))]
    NoSuchStage {
        /// The stage asked for.
        stage: usize,
        /// How many the plan has.
        stages: usize,
    },
    /// A stage of one task given another index.
    #[error(
        "stage {stage} runs as one task ({reason}); only partition 0/{count} exists, not {index}/{count}"
    )]
    SingleTask {
        /// The stage.
        stage: usize,
        /// Why it runs as one task.
        reason: String,
        /// The index given.
        index: u32,
        /// The count given.
        count: u32,
    },
    /// The job folder was made for another workflow or other variables.
    #[error(
        "job folder {job} belongs to another workflow: its job.json records workflow \"{found_name}\" with hash {found}, but this workflow (with these variables) hashes to {expected}; use a new job folder for it"
    )]
    OtherWorkflow {
        /// The job folder.
        job: String,
        /// The hash recorded there.
        found: String,
        /// The name recorded there.
        found_name: String,
        /// This workflow's hash.
        expected: String,
    },
    /// The job folder was made for another partition count.
    #[error(
        "job folder {job} was started with {found} partitions, not {expected}; run every task with --partition I/{found}, or use a new job folder"
    )]
    OtherPartitions {
        /// The job folder.
        job: String,
        /// The count recorded there.
        found: u32,
        /// The count given.
        expected: u32,
    },
    /// An earlier stage's task has not committed what this stage reads.
    #[error(
        "stage {stage} reads what stage {from_stage} task {task} wrote on {port}, but {location} does not exist: run every task of stage {from_stage} first (it is not committed until the task succeeds)"
    )]
    MissingInput {
        /// The stage that reads.
        stage: usize,
        /// The stage that writes.
        from_stage: usize,
        /// The task whose output is missing.
        task: u32,
        /// The port the cut leaves from.
        port: String,
        /// The missing file.
        location: String,
    },
    /// The job folder's `job.json` or a task's record cannot be read or makes no sense.
    #[error("job folder {job}: {message}")]
    BadJob {
        /// The job folder or file.
        job: String,
        /// What is wrong.
        message: String,
    },
    /// Reading or writing the job folder failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
}
