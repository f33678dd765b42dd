//! `sluice run --stage K --partition I/N --job URL`: one task of a partitioned run.

use std::process::ExitCode;

use sluice::runtime::Slice;
use sluice::runtime::dag::Plan;
use sluice::runtime::stage::{StageError, StageTask, plan_stages, stage_task};

/// Where schedulers put a task's index, in the order they are looked at.
const INDEX_VARIABLES: [&str; 3] = [
    "JOB_COMPLETION_INDEX",
    "BATCH_TASK_INDEX",
    "AWS_BATCH_JOB_ARRAY_INDEX",
];

/// The task of `plan` that `stage`, `--partition` or `--partitions` and the environment,
/// and `job` name; an error has been printed when it gives an exit code (1: bad
/// arguments, 2: the job folder does not allow the task).
pub fn task(
    plan: Plan,
    stage: usize,
    partition: Option<Slice>,
    partitions: Option<u64>,
    job: &str,
) -> Result<StageTask, ExitCode> {
    let slice = match (partition, partitions) {
        (Some(s), _) => s,
        (None, Some(count)) => match from_environment(count) {
            Ok(s) => s,
            Err(message) => {
                eprintln!("error: {message}");
                return Err(ExitCode::from(1));
            }
        },
        (None, None) => {
            eprintln!(
                "error: --stage needs the task: --partition I/N, or --partitions N with the \
                 index in {}",
                INDEX_VARIABLES.join(", ")
            );
            return Err(ExitCode::from(1));
        }
    };
    let stages = plan_stages(&plan, slice.count);
    stage_task(plan, &stages, stage, slice, job).map_err(|e| {
        eprintln!("error: {e}");
        match e {
            StageError::NoSuchStage { .. } | StageError::SingleTask { .. } => ExitCode::from(1),
            _ => ExitCode::from(2),
        }
    })
}

/// Task `index/count` with the index from the first of [`INDEX_VARIABLES`] that is set.
fn from_environment(count: u64) -> Result<Slice, String> {
    let Some((name, value)) = INDEX_VARIABLES
        .iter()
        .find_map(|n| std::env::var(n).ok().map(|v| (*n, v)))
    else {
        return Err(format!(
            "--partitions {count} takes the task's index from {}, and none is set; give \
             --partition I/{count} instead",
            INDEX_VARIABLES.join(", ")
        ));
    };
    let index: u64 = value
        .trim()
        .parse()
        .map_err(|_| format!("{name}={value:?} is not a task index (a whole number from 0)"))?;
    Slice::new(index, count).map_err(|e| format!("{name}={index} with --partitions {count}: {e}"))
}
