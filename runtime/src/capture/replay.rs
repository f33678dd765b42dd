//! Re-running part of a workflow from a job: [`rerun_from`].

use std::collections::BTreeSet;

use super::error::{CaptureError, nearest};
use super::job::Job;
use super::manifest::{EdgeEntry, JobState};
use crate::action::{
    ActionKind, ActionSpec, BuildContext, BuiltAction, Emitter, NodeContext, NodeImpl, Source,
    schema_of,
};
use crate::dag::{Plan, PlanEdge, PlanNode};
use crate::error::ActionError;

/// A plan cut down to a node and what lies downstream of it, its inputs fed from a job.
pub struct Rerun {
    /// The plan to run.
    pub plan: Plan,
    /// The captured edges that feed it (their names).
    pub fed: Vec<String>,
    /// Why the result may differ from a full run now (the workflow upstream of a fed edge
    /// changed since it was captured).
    pub warnings: Vec<String>,
}

/// Cuts `plan` down to node `node` and every node downstream of it. Each edge that enters
/// that part from outside is fed by a source that reads the job's capture of that edge (or
/// of another edge from the same output port, which carried the same features).
///
/// Refuses a node the plan does not have, a job of another workflow (by name), and an edge
/// that the job did not capture or whose capture did not complete. Warns when the part of
/// the workflow upstream of a fed edge changed since the capture; the node itself and what
/// lies downstream may change freely.
pub fn rerun_from(plan: Plan, job: &Job, node: &str) -> Result<Rerun, CaptureError> {
    let Some(start) = plan.nodes.iter().position(|n| n.id == node) else {
        return Err(CaptureError::UnknownNode {
            node: node.to_string(),
            suggestions: nearest(node, plan.nodes.iter().map(|n| n.id.as_str())),
        });
    };
    let manifest = job.manifest();
    if manifest.workflow.name != plan.name {
        let name = |n: &Option<String>| n.clone().unwrap_or_else(|| "(unnamed)".into());
        return Err(CaptureError::OtherWorkflow {
            job: job.location().to_string(),
            job_workflow: name(&manifest.workflow.name),
            workflow: name(&plan.name),
        });
    }
    let part = plan.reachable(start, petgraph::Direction::Outgoing);
    let mut feeds: Vec<(usize, EdgeEntry)> = Vec::new();
    let mut warnings = Vec::new();
    for (i, e) in plan.edges.iter().enumerate() {
        if part.contains(&e.from) || !part.contains(&e.to) {
            continue;
        }
        let name = plan.edge_name(i);
        let from = format!(
            "{}.{}",
            plan.nodes[e.from].id, plan.nodes[e.from].outputs[e.from_port]
        );
        let same_port: Vec<&EdgeEntry> = job.edges().iter().filter(|c| c.from == from).collect();
        let entry = match same_port.iter().find(|c| c.complete) {
            Some(c) => *c,
            None if same_port.is_empty() => {
                return Err(CaptureError::NotCaptured {
                    job: job.location().to_string(),
                    edge: name,
                });
            }
            None => {
                let state = match manifest.state {
                    JobState::Running => "was still running or was killed".to_string(),
                    s => s.to_string(),
                };
                return Err(CaptureError::Incomplete {
                    job: job.location().to_string(),
                    edge: name,
                    state,
                });
            }
        };
        if entry.upstream_hash != super::fingerprint::upstream_hash(&plan, i) {
            warnings.push(format!(
                "the workflow upstream of edge \"{name}\" changed since job {} captured it; \
                 the re-run is fed the features captured then",
                job.location()
            ));
        }
        feeds.push((i, entry.clone()));
    }
    let fed = feeds.iter().map(|(i, _)| plan.edge_name(*i)).collect();
    Ok(Rerun {
        plan: cut(plan, &part, feeds, job),
        fed,
        warnings,
    })
}

/// The nodes of `part` and the edges between them, plus a replay source per fed edge.
fn cut(plan: Plan, part: &BTreeSet<usize>, feeds: Vec<(usize, EdgeEntry)>, job: &Job) -> Plan {
    let feeds: Vec<(PlanEdge, EdgeEntry)> = feeds
        .into_iter()
        .map(|(i, entry)| (plan.edges[i], entry))
        .collect();
    let (mut plan, index) = plan.retain(|i| part.contains(&i));
    for (e, entry) in feeds {
        plan.edges.push(PlanEdge {
            from: plan.nodes.len(),
            from_port: 0,
            to: index[e.to],
            to_port: e.to_port,
            capture: false,
        });
        plan.nodes.push(PlanNode {
            id: format!("captured {}", entry.name),
            spec: REPLAY,
            node: NodeImpl::Source(Box::new(Replay {
                job: job.clone(),
                entry,
            })),
            inputs: Vec::new(),
            outputs: vec![crate::action::DEFAULT_PORT.to_string()],
            params: serde_json::Value::Null,
        });
    }
    plan
}

/// The spec of the sources that feed a re-run (never built from a workflow).
const REPLAY: ActionSpec = ActionSpec::new(
    "captured_edge",
    ActionKind::Source,
    "features captured on an edge, read back from a job folder",
    schema_of::<()>,
    not_buildable,
);

fn not_buildable(_: &BuildContext) -> Result<BuiltAction, ActionError> {
    Err(ActionError::param(
        "",
        "captured_edge is made by `sluice run --from`, not written in a workflow",
    ))
}

/// Emits the features of one captured edge, file by file, in the order they crossed it.
struct Replay {
    job: Job,
    entry: EdgeEntry,
}

impl Source for Replay {
    fn run(&mut self, ctx: &NodeContext, out: &mut Emitter) -> Result<(), ActionError> {
        let to_action = |e: CaptureError| match e {
            CaptureError::File(a) => a,
            other => ActionError::Other(Box::new(other)),
        };
        for f in &self.entry.files {
            for feature in self.job.file_features(f).map_err(to_action)? {
                if ctx.is_cancelled() {
                    return Err(ActionError::Cancelled);
                }
                out.emit(feature.map_err(to_action)?)?;
            }
        }
        Ok(())
    }
}
