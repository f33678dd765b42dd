//! Running the nodes and ending the run: one thread per node, all started before any is
//! joined; then the sinks are committed together if every node succeeded, or aborted.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::node::{Finished, NodeRun};
use super::progress::{NodeProgress, NodeState, StateCell};
use super::report::DroppedReport;
use super::setup::ReadyNode;
use crate::action::{PortDrops, Sink};
use crate::cancel::CancelToken;
use crate::error::{ActionError, RunError};
use crate::events::{Event, EventSender};

/// The first error of a run, recorded by whichever node thread fails first.
pub(super) type Failure = Arc<Mutex<Option<RunError>>>;

/// What the report needs of a node once its thread has ended.
pub(super) struct NodeEnd {
    pub id: String,
    /// The action's name.
    pub action: String,
    /// The output ports' names.
    pub outputs: Vec<String>,
    /// Per output port: features emitted where no edge leads.
    pub drops: Vec<Arc<PortDrops>>,
    /// Nanoseconds its heavy finish waited at the gate.
    pub gate_wait_ns: Arc<AtomicU64>,
    /// Its thread's wall time (zero when it did not start or panicked past the catch).
    pub took: Duration,
}

/// A finished sink waiting to be committed or aborted, with its node's id.
pub(super) type PendingSink = (String, Box<dyn Sink>);

/// Starts a thread for every node, then joins them all. A node that fails records its error
/// in `failure` and cancels the run.
pub(super) fn run_nodes(
    nodes: Vec<ReadyNode>,
    progress: &[NodeProgress],
    failure: &Failure,
    cancel: &CancelToken,
    events: &EventSender,
) -> (Vec<NodeEnd>, Vec<PendingSink>) {
    let mut threads = Vec::with_capacity(nodes.len());
    let mut ends = Vec::with_capacity(nodes.len());
    for (node, p) in nodes.into_iter().zip(progress) {
        let ReadyNode {
            id,
            action,
            outputs,
            drops,
            run,
        } = node;
        let gate_wait_ns = run.gate_wait_ns.clone();
        let spawned = spawn_node(
            id.clone(),
            outputs.clone(),
            run,
            failure,
            cancel,
            events,
            &p.state,
        );
        threads.push(spawned.map_err(|e| {
            *failure.lock() = Some(RunError::Internal(format!(
                "cannot start thread for node \"{id}\": {e}"
            )));
            cancel.cancel();
        }));
        ends.push(NodeEnd {
            id,
            action,
            outputs,
            drops,
            gate_wait_ns,
            took: Duration::ZERO,
        });
    }
    let mut sinks = Vec::new();
    for (end, thread) in ends.iter_mut().zip(threads) {
        if let Ok(Ok((sink, took))) = thread.map(|h| h.join()) {
            sinks.extend(sink.map(|s| (end.id.clone(), s)));
            end.took = took;
        }
    }
    (ends, sinks)
}

fn spawn_node(
    id: String,
    outputs: Vec<String>,
    run: NodeRun,
    failure: &Failure,
    cancel: &CancelToken,
    events: &EventSender,
    state: &Arc<StateCell>,
) -> std::io::Result<std::thread::JoinHandle<(Finished, Duration)>> {
    let (failure, cancel, events, state) = (
        failure.clone(),
        cancel.clone(),
        events.clone(),
        state.clone(),
    );
    std::thread::Builder::new()
        .name(format!("node:{id}"))
        .spawn(move || {
            crate::store::set_writer_name(format!("node \"{id}\""));
            run_node(id, &outputs, run, failure, cancel, events, state)
        })
}

/// Ends the outputs of a run whose threads have all been joined, and gives the run's error,
/// if any: the first node's failure, else cancellation, else a failed commit.
///
/// Two-phase output: every sink is committed only when the whole run succeeded, and all of
/// them as one (`store::Commit`): every target is checked before any is replaced, and a
/// failure puts back the outputs already moved into place. Otherwise every sink is aborted.
pub(super) fn settle(
    failure: &Failure,
    cancel: &CancelToken,
    mut sinks: Vec<PendingSink>,
) -> Option<RunError> {
    let mut result = failure.lock().take();
    if result.is_none() && cancel.is_cancelled() {
        result = Some(RunError::Cancelled);
    }
    if result.is_none() {
        result = commit_all(&mut sinks).err();
    }
    if result.is_some() {
        for (_, s) in sinks.iter_mut() {
            s.abort();
        }
    }
    result
}

/// Commits every sink's output together; the error names the node whose output failed.
fn commit_all(sinks: &mut [(String, Box<dyn Sink>)]) -> Result<(), RunError> {
    let commit = crate::store::Commit::begin();
    // The node whose outputs end at each index of the commit.
    let mut owners: Vec<(usize, &str)> = Vec::new();
    for (id, s) in sinks.iter_mut() {
        // Dropping `commit` on the way out removes the outputs made ready so far.
        s.commit().map_err(|source| RunError::ActionFailed {
            node: id.clone(),
            source,
        })?;
        owners.push((commit.staged(), id.as_str()));
    }
    commit.publish().map(|_| ()).map_err(|e| {
        let node = owners
            .iter()
            .find(|(end, _)| e.failed_output < *end)
            .map_or("(commit)", |(_, id)| id)
            .to_string();
        RunError::ActionFailed {
            node,
            source: ActionError::Other(Box::new(e)),
        }
    })
}

fn run_node(
    id: String,
    outputs: &[String],
    run: NodeRun,
    failure: Arc<Mutex<Option<RunError>>>,
    cancel: CancelToken,
    events: EventSender,
    state: Arc<StateCell>,
) -> (Finished, Duration) {
    let started = Instant::now();
    state.set(NodeState::Running);
    events.send(Event::NodeStarted { node: id.clone() });
    let features_in = run.features_in.clone();
    let out_total = run.out_total();
    let drops = run.out.drops();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run.run()));
    let took = started.elapsed();
    // This thread was started for this node: its CPU clock is the node's own time.
    state.set_thread_cpu(crate::cpu::thread_cpu_ns());
    let error = match outcome {
        Ok(Ok(sink)) => {
            state.set(NodeState::Done);
            let dropped = DroppedReport::collect(outputs, &drops);
            events.send(Event::NodeFinished {
                node: id,
                features_in: features_in.load(Ordering::Relaxed),
                features_out: out_total.iter().map(|c| c.load(Ordering::Relaxed)).sum(),
                features_dropped: dropped.iter().map(|d| d.features).sum(),
                dropped,
                elapsed: took,
            });
            return (sink, took);
        }
        Ok(Err(ActionError::Cancelled)) if cancel.is_cancelled() => None,
        Ok(Err(e)) => Some(RunError::ActionFailed {
            node: id.clone(),
            source: e,
        }),
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Some(RunError::Panicked {
                node: id.clone(),
                message,
            })
        }
    };
    state.set(NodeState::Failed);
    if let Some(e) = error {
        events.send(Event::NodeFailed {
            node: id,
            error: e.to_string(),
        });
        let mut f = failure.lock();
        if f.is_none() {
            *f = Some(e);
        }
        drop(f);
        cancel.cancel();
    }
    (None, took)
}
