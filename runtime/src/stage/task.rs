//! One task of a stage: [`stage_task`] checks the job folder and cuts the plan down to the
//! stage, with a [`CutWriter`] on every cut it writes and a [`CutReader`] on every cut it
//! reads.

use std::io::Read as _;

use serde::{Deserialize, Serialize};

use super::shuffle::{CutReader, CutWriter, read_record, record_name};
use super::{StageError, StagePlan, port_name};
use crate::action::{
    ActionKind, ActionSpec, BuildContext, BuiltAction, DEFAULT_PORT, Emitter, FeatureHasher,
    FeatureOrdering, NodeContext, NodeImpl, Partitioning, Processor, Slice, Source, schema_of,
};
use crate::dag::{Plan, PlanEdge, PlanNode};
use crate::error::ActionError;
use crate::feature::Batch;
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
        let folder = if c.hashed {
            format!("{job}/{}", c.bucket_folder(slice.index))
        } else {
            format!("{job}/{}", c.folder())
        };
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
        plan: cut_to_stage(plan, stages, stage, slice, job)?,
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

/// A cut this task writes from a node of its stage.
struct CutOut {
    /// The node and its output port.
    from: usize,
    from_port: usize,
    /// One folder per bucket.
    folders: Vec<String>,
    /// The port, in words.
    port: String,
    /// Splits features between the buckets (a hashed cut).
    hasher: Option<FeatureHasher>,
}

/// A sorting node's copy for one task's part, or its order for the merge.
struct Presort {
    /// The sorting node (index into the plan).
    node: usize,
    /// Where the cut goes.
    folder: String,
    /// The stage that writes it: its tasks.
    tasks: u32,
}

/// The nodes of `stage` and the edges between them, a writer on every cut it writes and a
/// reader on every cut it reads.
fn cut_to_stage(
    plan: Plan,
    stages: &StagePlan,
    stage: usize,
    slice: Slice,
    job: &str,
) -> Result<Plan, StageError> {
    let task = slice.index;
    let members = &stages.stages[stage].nodes;
    let build_error = |node: &PlanNode, e: ActionError| StageError::BadJob {
        job: job.to_string(),
        message: format!("node \"{}\" cannot be built again: {e}", node.id),
    };
    let mut writes: Vec<CutOut> = Vec::new();
    // Copies of sorting nodes that sort this task's part: (copy, its input edges, folder).
    let mut copies: Vec<(PlanNode, Vec<PlanEdge>, String)> = Vec::new();
    for c in stages.cuts_from(stage) {
        let folder = format!("{job}/{}", c.folder());
        if c.presorted {
            let g = &plan.nodes[c.from];
            let built = (g.spec.build)(&BuildContext {
                node_id: &g.id,
                params: &g.params,
            })
            .map_err(|e| build_error(g, e))?;
            let copy = PlanNode {
                id: format!("{} (this task's part)", g.id),
                spec: g.spec,
                node: built.node,
                inputs: g.inputs.clone(),
                outputs: g.outputs.clone(),
                params: g.params.clone(),
            };
            let into: Vec<PlanEdge> = plan
                .edges
                .iter()
                .filter(|e| e.to == c.from)
                .copied()
                .collect();
            copies.push((copy, into, folder));
        } else if c.hashed {
            let e = plan.edges[c.edges[0]];
            let h = &plan.nodes[e.to];
            let hasher = match h.spec.hashed_by.map(|f| f(&h.params, e.to_port)) {
                Some(Ok(Some(hasher))) => hasher,
                Some(Err(err)) => return Err(build_error(h, err)),
                _ => {
                    return Err(StageError::BadJob {
                        job: job.to_string(),
                        message: format!("node \"{}\" has no key to split by", h.id),
                    });
                }
            };
            let folders = (0..stages.partitions)
                .map(|b| format!("{job}/{}", c.bucket_folder(b)))
                .collect();
            let port = port_name(&plan, c.from, c.from_port);
            writes.push(CutOut {
                from: c.from,
                from_port: c.from_port,
                folders,
                port,
                hasher: Some(hasher),
            });
        } else {
            let port = port_name(&plan, c.from, c.from_port);
            writes.push(CutOut {
                from: c.from,
                from_port: c.from_port,
                folders: vec![folder],
                port,
                hasher: None,
            });
        }
    }
    let mut reads: Vec<(String, String, u32, Vec<PlanEdge>)> = Vec::new();
    let mut merges: Vec<(Presort, FeatureOrdering)> = Vec::new();
    for c in stages.cuts_into(&plan, stage) {
        let folder = if c.hashed {
            format!("{job}/{}", c.bucket_folder(task))
        } else {
            format!("{job}/{}", c.folder())
        };
        let tasks = stages.stages[c.from_stage].tasks;
        if c.presorted {
            let g = &plan.nodes[c.from];
            let order = g.spec.sorted_by.ok_or_else(|| StageError::BadJob {
                job: job.to_string(),
                message: format!("node \"{}\" has no order to merge by", g.id),
            })?;
            let order = order(&g.params).map_err(|e| build_error(g, e))?;
            merges.push((
                Presort {
                    node: c.from,
                    folder,
                    tasks,
                },
                order,
            ));
        } else {
            reads.push((
                folder,
                port_name(&plan, c.from, c.from_port),
                tasks,
                c.edges
                    .iter()
                    .map(|&e| plan.edges[e])
                    .filter(|e| members.contains(&e.to))
                    .collect(),
            ));
        }
    }
    let (plan, index) = plan.retain(|i| members.contains(&i));
    let Plan {
        name,
        nodes: mut kept,
        edges: mut new_edges,
        warnings,
        variables,
    } = plan;
    for &i in members {
        let n = &mut kept[index[i]];
        // A source that cannot split its input is read whole by the first task.
        if task != 0 && n.spec.partitioning == Partitioning::Whole {
            n.node = NodeImpl::Source(Box::new(ReadByTaskZero));
        }
        // A sorting node fed by a merge of sorted parts passes them on.
        if merges.iter().any(|(m, _)| m.node == i) {
            n.node = NodeImpl::Processor(Box::new(PassOn));
        }
    }
    let add_writer = |kept: &mut Vec<PlanNode>,
                      new_edges: &mut Vec<PlanEdge>,
                      from: usize,
                      from_port: usize,
                      folders: Vec<String>,
                      port: String,
                      sorted: bool,
                      hasher: Option<FeatureHasher>| {
        new_edges.push(PlanEdge {
            from,
            from_port,
            to: kept.len(),
            to_port: 0,
            capture: false,
        });
        kept.push(PlanNode {
            id: format!("write {port} for the next stage"),
            spec: CUT_WRITER,
            node: NodeImpl::Sink(Box::new(CutWriter::new(
                folders,
                task,
                port,
                stages.workflow_hash.clone(),
                sorted,
                hasher,
            ))),
            inputs: vec![DEFAULT_PORT.to_string()],
            outputs: Vec::new(),
            params: serde_json::Value::Null,
        });
    };
    for w in writes {
        add_writer(
            &mut kept,
            &mut new_edges,
            index[w.from],
            w.from_port,
            w.folders,
            w.port,
            false,
            w.hasher,
        );
    }
    for (copy, into, folder) in copies {
        let at = kept.len();
        let port = copy.id.clone();
        kept.push(copy);
        for e in into {
            new_edges.push(PlanEdge {
                from: index[e.from],
                to: at,
                ..e
            });
        }
        add_writer(
            &mut kept,
            &mut new_edges,
            at,
            0,
            vec![folder],
            port,
            true,
            None,
        );
    }
    let add_reader = |kept: &mut Vec<PlanNode>, reader: CutReader, id: String| {
        kept.push(PlanNode {
            id,
            spec: CUT_READER,
            node: NodeImpl::Source(Box::new(reader)),
            inputs: Vec::new(),
            outputs: vec![DEFAULT_PORT.to_string()],
            params: serde_json::Value::Null,
        });
        kept.len() - 1
    };
    for (folder, port, tasks, into) in reads {
        let reader = CutReader {
            folder,
            tasks,
            workflow_hash: stages.workflow_hash.clone(),
            merge: None,
            range: None,
        };
        let r = add_reader(
            &mut kept,
            reader,
            format!("read {port} from the stage before"),
        );
        for e in into {
            new_edges.push(PlanEdge {
                from: r,
                from_port: 0,
                to: index[e.to],
                to_port: e.to_port,
                capture: false,
            });
        }
    }
    for (m, order) in merges {
        let g = index[m.node];
        let reader = CutReader {
            folder: m.folder,
            tasks: m.tasks,
            workflow_hash: stages.workflow_hash.clone(),
            merge: Some(order),
            range: (stages.stages[stage].tasks > 1).then_some(slice),
        };
        let id = format!("merge the sorted parts of {}", kept[g].id);
        let r = add_reader(&mut kept, reader, id);
        new_edges.push(PlanEdge {
            from: r,
            from_port: 0,
            to: g,
            to_port: 0,
            capture: false,
        });
    }
    Ok(Plan {
        name,
        nodes: kept,
        edges: new_edges,
        warnings,
        variables,
    })
}

/// Stands in for a sorting node whose input is already merged in its order.
struct PassOn;

impl Processor for PassOn {
    fn process(
        &mut self,
        _input: usize,
        batch: Batch,
        _ctx: &NodeContext,
        out: &mut Emitter,
    ) -> Result<(), ActionError> {
        out.emit_batch(0, batch)
    }

    fn finish(&mut self, _ctx: &NodeContext, _out: &mut Emitter) -> Result<(), ActionError> {
        Ok(())
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
