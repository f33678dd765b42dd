//! One task of a stage: [`stage_task`] checks the job folder and cuts the plan down to the
//! stage, with a [`CutWriter`] on every cut it writes and a [`CutReader`] on every cut it
//! reads.

use std::io::Read as _;

use serde::{Deserialize, Serialize};

use super::shuffle::{CutReader, CutWriter, read_record, record_name};
use super::{StageError, StagePlan, port_name};
use crate::action::{
    ActionKind, ActionSpec, BuildContext, BuiltAction, DEFAULT_PORT, Emitter, NodeContext,
    NodeImpl, Partitioning, Slice, Source, schema_of,
};
use crate::dag::{Plan, PlanEdge, PlanNode};
use crate::error::ActionError;
use crate::store::{AtomicWriter, open_read};

/// The file in a job folder that records which workflow and partition count it is for.
pub const JOB_FILE: &str = "job.json";

/// What `job.json` holds.
#[derive(Debug, Serialize, Deserialize)]
struct JobRecord {
    format: String,
    workflow: Option<String>,
    workflow_hash: String,
    partitions: u32,
}

const FORMAT: &str = "sluice-partitioned-job";

/// A task ready to run: the plan cut down to its stage, and the slice its sources read
/// (the whole input in a stage of one task).
pub struct StageTask {
    /// The nodes of the stage, plus the cut readers and writers.
    pub plan: Plan,
    /// What the run's sources read: set it as [`crate::executor::RunOptions::slice`].
    pub slice: Slice,
}

/// Task `slice.index` of stage `stage` of `stages` (made from `plan` for `slice.count`
/// partitions), with its outputs and inputs in job folder `job` (a local folder or a store
/// location such as `s3://bucket/prefix`).
///
/// Checks, before anything runs: the stage exists; a stage of one task is given index 0;
/// the job folder is this workflow's (its `job.json` is written by the first task that
/// finds none); every task of every stage this one reads has committed its output.
pub fn stage_task(
    plan: Plan,
    stages: &StagePlan,
    stage: usize,
    slice: Slice,
    job: &str,
) -> Result<StageTask, StageError> {
    let job = job.trim_end_matches('/');
    let Some(st) = stages.stages.get(stage) else {
        return Err(StageError::NoSuchStage {
            stage,
            stages: stages.stages.len(),
        });
    };
    if st.tasks == 1 && slice.index != 0 {
        return Err(StageError::SingleTask {
            stage,
            reason: st.single_task_reason.clone().unwrap_or_default(),
            index: slice.index,
            count: slice.count,
        });
    }
    let first = stages.cuts_into(&plan, stage).next().is_none();
    check_job(job, stages, first)?;
    for c in stages.cuts_into(&plan, stage) {
        let folder = format!("{job}/{}", c.folder());
        let producers = stages.stages[c.from_stage].tasks;
        for task in 0..producers {
            let location = format!("{folder}/{}", record_name(task));
            match open_read(&location) {
                Ok(_) => {}
                Err(e) if e.is_not_found() => {
                    return Err(StageError::MissingInput {
                        stage,
                        from_stage: c.from_stage,
                        task,
                        port: port_name(&plan, c.from, c.from_port),
                        location,
                    });
                }
                Err(e) => return Err(e.into()),
            }
            read_record(&folder, task, &stages.workflow_hash).map_err(|e| StageError::BadJob {
                job: location.clone(),
                message: e.to_string(),
            })?;
        }
    }
    let slice = if st.tasks == 1 { Slice::WHOLE } else { slice };
    Ok(StageTask {
        plan: cut_to_stage(plan, stages, stage, slice.index, job),
        slice,
    })
}

/// Reads `job.json`, or writes it when the folder has none and `create` (a task of a stage
/// that reads no other stage's output).
fn check_job(job: &str, stages: &StagePlan, create: bool) -> Result<(), StageError> {
    let at = format!("{job}/{JOB_FILE}");
    let bad = |message: String| StageError::BadJob {
        job: at.clone(),
        message,
    };
    match open_read(&at) {
        Ok(mut r) => {
            let mut text = Vec::new();
            r.read_to_end(&mut text)
                .map_err(|e| bad(format!("cannot be read: {e}")))?;
            let rec: JobRecord = serde_json::from_slice(&text)
                .map_err(|e| bad(format!("is not a job record of sluice: {e}")))?;
            if rec.format != FORMAT {
                return Err(bad(format!(
                    "is not a job record of sluice (format \"{}\")",
                    rec.format
                )));
            }
            if rec.workflow_hash != stages.workflow_hash {
                return Err(StageError::OtherWorkflow {
                    job: job.to_string(),
                    found: rec.workflow_hash,
                    found_name: rec.workflow.unwrap_or_else(|| "(unnamed)".into()),
                    expected: stages.workflow_hash.clone(),
                });
            }
            if rec.partitions != stages.partitions {
                return Err(StageError::OtherPartitions {
                    job: job.to_string(),
                    found: rec.partitions,
                    expected: stages.partitions,
                });
            }
            Ok(())
        }
        Err(e) if e.is_not_found() && !create => Err(bad(
            "does not exist: run the first stages (those that read the workflow's sources) \
             first; they start the job folder"
                .to_string(),
        )),
        Err(e) if e.is_not_found() => {
            let rec = JobRecord {
                format: FORMAT.to_string(),
                workflow: stages.workflow.clone(),
                workflow_hash: stages.workflow_hash.clone(),
                partitions: stages.partitions,
            };
            let text = serde_json::to_vec_pretty(&rec).map_err(|e| bad(e.to_string()))?;
            let mut out = AtomicWriter::create(&at)?;
            std::io::Write::write_all(&mut out, &text)
                .map_err(|e| bad(format!("cannot be written: {e}")))?;
            match out.commit() {
                Ok(()) => Ok(()),
                // Another task wrote it at the same moment: check what it wrote.
                Err(_) if open_read(&at).is_ok() => check_job(job, stages, false),
                Err(e) => Err(e.into()),
            }
        }
        Err(e) => Err(e.into()),
    }
}

/// The nodes of `stage` and the edges between them, a writer on every cut it writes and a
/// reader on every cut it reads.
fn cut_to_stage(plan: Plan, stages: &StagePlan, stage: usize, task: u32, job: &str) -> Plan {
    let members = &stages.stages[stage].nodes;
    let writes: Vec<(usize, usize, String, String)> = stages
        .cuts_from(stage)
        .map(|c| {
            (
                c.from,
                c.from_port,
                format!("{job}/{}", c.folder()),
                port_name(&plan, c.from, c.from_port),
            )
        })
        .collect();
    let reads: Vec<(String, String, u32, Vec<PlanEdge>)> = stages
        .cuts_into(&plan, stage)
        .map(|c| {
            (
                format!("{job}/{}", c.folder()),
                port_name(&plan, c.from, c.from_port),
                stages.stages[c.from_stage].tasks,
                c.edges
                    .iter()
                    .map(|&e| plan.edges[e])
                    .filter(|e| members.contains(&e.to))
                    .collect(),
            )
        })
        .collect();
    let Plan {
        name,
        nodes,
        edges,
        warnings,
        variables,
    } = plan;
    let mut index = vec![usize::MAX; nodes.len()];
    let mut kept = Vec::new();
    for (i, mut n) in nodes.into_iter().enumerate() {
        if members.contains(&i) {
            // A source that cannot split its input is read whole by the first task.
            if task != 0 && n.spec.partitioning == Partitioning::Whole {
                n.node = NodeImpl::Source(Box::new(ReadByTaskZero));
            }
            index[i] = kept.len();
            kept.push(n);
        }
    }
    let mut new_edges: Vec<PlanEdge> = edges
        .iter()
        .filter(|e| members.contains(&e.from) && members.contains(&e.to))
        .map(|e| PlanEdge {
            from: index[e.from],
            to: index[e.to],
            ..*e
        })
        .collect();
    for (from, from_port, folder, port) in writes {
        new_edges.push(PlanEdge {
            from: index[from],
            from_port,
            to: kept.len(),
            to_port: 0,
            capture: false,
        });
        kept.push(PlanNode {
            id: format!("write {port} for the next stage"),
            spec: CUT_WRITER,
            node: NodeImpl::Sink(Box::new(CutWriter::new(
                folder,
                task,
                port,
                stages.workflow_hash.clone(),
            ))),
            inputs: vec![DEFAULT_PORT.to_string()],
            outputs: Vec::new(),
            params: serde_json::Value::Null,
        });
    }
    for (folder, port, tasks, into) in reads {
        let reader = kept.len();
        for e in into {
            new_edges.push(PlanEdge {
                from: reader,
                from_port: 0,
                to: index[e.to],
                to_port: e.to_port,
                capture: false,
            });
        }
        kept.push(PlanNode {
            id: format!("read {port} from the stage before"),
            spec: CUT_READER,
            node: NodeImpl::Source(Box::new(CutReader {
                folder,
                tasks,
                workflow_hash: stages.workflow_hash.clone(),
            })),
            inputs: Vec::new(),
            outputs: vec![DEFAULT_PORT.to_string()],
            params: serde_json::Value::Null,
        });
    }
    Plan {
        name,
        nodes: kept,
        edges: new_edges,
        warnings,
        variables,
    }
}

/// The spec of the sinks that write a cut (never built from a workflow).
const CUT_WRITER: ActionSpec = ActionSpec::new(
    "stage_output",
    ActionKind::Sink,
    "what a task of a partitioned stage hands to the next stage, written to the job folder",
    schema_of::<()>,
    not_buildable,
);

/// The spec of the sources that read a cut (never built from a workflow).
const CUT_READER: ActionSpec = ActionSpec::new(
    "stage_input",
    ActionKind::Source,
    "what the tasks of the stage before handed on, read from the job folder in task order",
    schema_of::<()>,
    not_buildable,
);

fn not_buildable(_: &BuildContext) -> Result<BuiltAction, ActionError> {
    Err(ActionError::param(
        "",
        "stage inputs and outputs are made by `sluice run --stage`, not written in a workflow",
    ))
}

/// Stands in, in tasks other than the first, for a source that cannot split its input.
struct ReadByTaskZero;

impl Source for ReadByTaskZero {
    fn run(&mut self, _ctx: &NodeContext, _out: &mut Emitter) -> Result<(), ActionError> {
        Ok(())
    }
}
