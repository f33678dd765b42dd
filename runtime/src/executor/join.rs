//! Running the nodes and ending the run: one thread per node (or per fused chain of
//! transforms), all started before any is joined; then the sinks are committed together if every node succeeded, or aborted.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::fuse::{self, ChainClock, Stage};
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

/// Starts a thread for every group of `groups` (a node alone, or a fused chain of
/// transforms: see `fuse.rs`), then joins them all. A node that fails records its error in
/// `failure` and cancels the run.
pub(super) fn run_nodes(
    nodes: Vec<ReadyNode>,
    groups: &[Vec<usize>],
    progress: &[NodeProgress],
    failure: &Failure,
    cancel: &CancelToken,
    events: &EventSender,
) -> (Vec<NodeEnd>, Vec<PendingSink>) {
    let mut ends = Vec::with_capacity(nodes.len());
    let mut runs: Vec<Option<(NodeWatch, NodeRun)>> = Vec::with_capacity(nodes.len());
    for (node, p) in nodes.into_iter().zip(progress) {
        let ReadyNode {
            id,
            action,
            outputs,
            drops,
            run,
        } = node;
        let watch = NodeWatch::new(&id, &outputs, &run, &p.state);
        ends.push(NodeEnd {
            id,
            action,
            outputs,
            drops,
            gate_wait_ns: run.gate_wait_ns.clone(),
            took: Duration::ZERO,
        });
        runs.push(Some((watch, run)));
    }
    // Every node is in one group; one left out of them (never, by construction) runs alone.
    let mut members: Vec<Vec<(usize, NodeWatch, NodeRun)>> = groups
        .iter()
        .map(|g| {
            g.iter()
                .filter_map(|&i| runs.get_mut(i)?.take().map(|(w, r)| (i, w, r)))
                .collect()
        })
        .collect();
    members.extend(
        runs.iter_mut()
            .enumerate()
            .filter_map(|(i, r)| r.take().map(|(w, r)| vec![(i, w, r)])),
    );
    let mut threads = Vec::with_capacity(members.len());
    for group in members {
        let indices: Vec<usize> = group.iter().map(|(i, _, _)| *i).collect();
        let Some(&first) = indices.first() else {
            continue;
        };
        let first = &ends[first].id;
        let spawned = spawn_group(group, failure, cancel, events);
        if let Err(e) = &spawned {
            *failure.lock() = Some(RunError::Internal(format!(
                "cannot start thread for node \"{first}\": {e}"
            )));
            cancel.cancel();
        }
        threads.push((indices, spawned));
    }
    let mut sinks = Vec::new();
    for (indices, thread) in threads {
        if let Ok(Ok(results)) = thread.map(|h| h.join()) {
            for (i, (sink, took)) in indices.into_iter().zip(results) {
                let end = &mut ends[i];
                sinks.extend(sink.map(|s| (end.id.clone(), s)));
                end.took = took;
            }
        }
    }
    (ends, sinks)
}

/// What one thread hands back: per node it ran, its finished sink and its wall time.
type GroupResult = Vec<(Finished, Duration)>;

/// Starts the thread of one group: a node alone, or a fused chain of transforms (a member
/// that is not a transform, which `Fusion::plan` never groups, fails the run with an
/// internal error).
fn spawn_group(
    group: Vec<(usize, NodeWatch, NodeRun)>,
    failure: &Failure,
    cancel: &CancelToken,
    events: &EventSender,
) -> std::io::Result<std::thread::JoinHandle<GroupResult>> {
    let (failure, cancel, events) = (failure.clone(), cancel.clone(), events.clone());
    let name = match group.as_slice() {
        [(_, w, _)] => format!("node:{}", w.id),
        [(_, w, _), ..] => format!("chain:{}+{}", w.id, group.len() - 1),
        [] => "node:(none)".into(),
    };
    std::thread::Builder::new().name(name).spawn(move || {
        let (watches, runs): (Vec<NodeWatch>, Vec<NodeRun>) =
            group.into_iter().map(|(_, w, r)| (w, r)).unzip();
        crate::store::set_writer_name(format!("node \"{}\"", watches[0].id));
        if runs.len() == 1 {
            let (watch, run) = (&watches[0], runs.into_iter().next());
            return vec![run.map_or((None, Duration::ZERO), |run| {
                run_node(watch, run, &failure, &cancel, &events)
            })];
        }
        match runs
            .into_iter()
            .map(Stage::new)
            .collect::<Option<Vec<Stage>>>()
        {
            Some(stages) => run_chain(&watches, stages, &failure, &cancel, &events),
            None => {
                // Not reachable: chains are made of transforms only (see `Fusion::plan`).
                *failure.lock() = Some(RunError::Internal(
                    "a fused chain holds a node that is not a transform".into(),
                ));
                cancel.cancel();
                watches.iter().map(|_| (None, Duration::ZERO)).collect()
            }
        }
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

/// What a node's thread reports about it: events, its state, its error.
pub(super) struct NodeWatch {
    id: String,
    outputs: Vec<String>,
    features_in: Arc<AtomicU64>,
    out_total: Vec<Arc<AtomicU64>>,
    drops: Vec<Arc<PortDrops>>,
    state: Arc<StateCell>,
}

impl NodeWatch {
    fn new(id: &str, outputs: &[String], run: &NodeRun, state: &Arc<StateCell>) -> NodeWatch {
        NodeWatch {
            id: id.to_string(),
            outputs: outputs.to_vec(),
            features_in: run.features_in.clone(),
            out_total: run.out_total(),
            drops: run.out.drops(),
            state: state.clone(),
        }
    }

    /// The node starts running.
    fn start(&self, events: &EventSender) {
        self.state.set(NodeState::Running);
        events.send(Event::NodeStarted {
            node: self.id.clone(),
        });
    }

    /// The node ended with `outcome` after `took`: its event, its state, and on failure its
    /// error recorded (the first of the run) and the run cancelled.
    fn end(
        &self,
        outcome: std::thread::Result<Result<Finished, ActionError>>,
        took: Duration,
        failure: &Failure,
        cancel: &CancelToken,
        events: &EventSender,
    ) -> Finished {
        let id = self.id.clone();
        let error = match outcome {
            Ok(Ok(sink)) => {
                self.state.set(NodeState::Done);
                let dropped = DroppedReport::collect(&self.outputs, &self.drops);
                events.send(Event::NodeFinished {
                    node: id,
                    features_in: self.features_in.load(Ordering::Relaxed),
                    features_out: self
                        .out_total
                        .iter()
                        .map(|c| c.load(Ordering::Relaxed))
                        .sum(),
                    features_dropped: dropped.iter().map(|d| d.features).sum(),
                    dropped,
                    elapsed: took,
                });
                return sink;
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
        self.state.set(NodeState::Failed);
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
        None
    }
}

/// Runs one node on its own thread.
fn run_node(
    watch: &NodeWatch,
    run: NodeRun,
    failure: &Failure,
    cancel: &CancelToken,
    events: &EventSender,
) -> (Finished, Duration) {
    let started = Instant::now();
    watch.start(events);
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run.run()));
    let took = started.elapsed();
    // This thread was started for this node: its CPU clock is the node's own time.
    watch.state.set_thread_cpu(crate::cpu::thread_cpu_ns());
    (watch.end(outcome, took, failure, cancel, events), took)
}

/// Runs a fused chain on this thread. The member that was working when the chain failed
/// gets the error (or the panic); the others end as cancelled, after it, so the run's
/// error is that member's.
fn run_chain(
    watches: &[NodeWatch],
    stages: Vec<Stage>,
    failure: &Failure,
    cancel: &CancelToken,
    events: &EventSender,
) -> GroupResult {
    let started = Instant::now();
    for w in watches {
        w.start(events);
    }
    let states = watches.iter().map(|w| w.state.clone()).collect();
    let clock = Arc::new(ChainClock::new(states));
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        fuse::run_chain(stages, &clock)
    }));
    let took = started.elapsed();
    clock.settle();
    match outcome {
        Ok(Ok(())) => {
            for w in watches {
                w.end(Ok(Ok(None)), took, failure, cancel, events);
            }
        }
        failed => {
            let at = clock.current().min(watches.len().saturating_sub(1));
            watches[at].end(
                failed.map(|r| r.map(|()| None)),
                took,
                failure,
                cancel,
                events,
            );
            for (_, w) in watches.iter().enumerate().filter(|(k, _)| *k != at) {
                w.end(
                    Ok(Err(ActionError::Cancelled)),
                    took,
                    failure,
                    cancel,
                    events,
                );
            }
        }
    }
    // A chain holds transforms only: none has a sink to commit.
    watches.iter().map(|_| (None, took)).collect()
}
