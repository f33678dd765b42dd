//! Starting a run: channels, node threads, the monitor; joining them; committing sinks.
//!
//! # Termination
//!
//! Exact, with no sleep and no polling: a node finishes when all its inputs have
//! disconnected (every upstream node finished and dropped its senders) and its own work is
//! done; then it drops its senders, which disconnects the nodes downstream. Sources start
//! the cascade by returning. The run ends when every node thread has been joined.
//!
//! # Errors and cancellation
//!
//! The first node to fail records its error and cancels the run; every blocking wait in the
//! runtime selects on the cancel token, so all threads stop promptly. Sinks only write to
//! temporary names until the end: they are committed (renamed into place) after every node
//! succeeded, and aborted (temporary output removed) otherwise.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use parking_lot::Mutex;

use super::node::{Finished, NodeRun};
use super::report::{DroppedReport, EdgeReport, NodeReport, RunReport};
use crate::cancel::CancelToken;
use crate::pool::new_pool;
use crate::action::{EdgeOut, Emitter, NodeContext};
use crate::dag::Plan;
use crate::error::{ActionError, RunError};
use crate::events::{Event, EventSender};
use crate::feature::Batch;
use crate::memory::{
    Gate, GatePolicy, MemoryBudget, MemoryPlan, Monitor, PlanInput, SpillDir, monitor::Knobs,
};

/// How a run is set up. `RunOptions::default()` suits most runs.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Features per batch on edges (default 1024).
    pub batch_size: usize,
    /// Most features in flight per edge (default 8192). Edges are lowered until the features
    /// in flight on all of them (counted at [`crate::memory::FEATURE_BYTES`] each) fit in a
    /// quarter of the budget: see [`crate::memory::MemoryPlan`]. 1 makes every edge a
    /// rendezvous of single features (useful in tests).
    pub channel_bound: usize,
    /// Threads in the shared pool (0: one per core).
    pub threads: usize,
    /// The memory limit in bytes (default: half the machine's memory). 60 % of it is the
    /// budget: nodes and batches in flight are reserved from it first, accumulators get the
    /// rest (the other 40 % is for code, readers, writers and allocator slack). A limit below
    /// the workflow's minimum fails [`start`] with [`RunError::MemoryLimitTooSmall`].
    pub memory_limit: Option<u64>,
    /// Where accumulators spill (default: the system temporary folder).
    pub spill_dir: Option<PathBuf>,
    /// How heavy finishes are admitted.
    pub gate: GatePolicy,
    /// How often the memory monitor samples (default 20 ms).
    pub monitor_interval: Duration,
    /// Where events go.
    pub events: EventSender,
    /// The cancel token (keep a clone to cancel the run).
    pub cancel: CancelToken,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            batch_size: 1024,
            channel_bound: 8192,
            threads: 0,
            memory_limit: None,
            spill_dir: None,
            gate: GatePolicy::default(),
            monitor_interval: Duration::from_millis(20),
            events: EventSender::none(),
            cancel: CancelToken::new(),
        }
    }
}

/// Live counters of one node, readable while the run goes on.
#[derive(Debug)]
pub struct NodeProgress {
    /// Node id.
    pub id: String,
    /// Features received so far.
    pub features_in: Arc<AtomicU64>,
    /// Features emitted so far, per output port.
    pub features_out: Vec<Arc<AtomicU64>>,
    /// 0 running, 1 finished, 2 failed.
    pub state: Arc<AtomicUsize>,
}

impl NodeProgress {
    /// Features emitted over all ports.
    pub fn out(&self) -> u64 {
        self.features_out
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }
}

/// A run in progress. Dropping the handle cancels the run and waits for it.
pub struct RunHandle {
    cancel: CancelToken,
    progress: Arc<Vec<NodeProgress>>,
    done: Option<JoinHandle<Result<RunReport, RunError>>>,
    started: Instant,
}

impl RunHandle {
    /// Cancels the run. Threads stop promptly; sinks leave no output.
    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    /// A cancel token for this run (e.g. for a Ctrl-C handler).
    pub fn cancel_token(&self) -> CancelToken {
        self.cancel.clone()
    }

    /// Live per-node counters.
    pub fn progress(&self) -> &[NodeProgress] {
        &self.progress
    }

    /// Time since the run started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Whether the run has ended.
    pub fn is_finished(&self) -> bool {
        self.done.as_ref().is_none_or(|h| h.is_finished())
    }

    /// Waits for the run to end.
    pub fn wait(mut self) -> Result<RunReport, RunError> {
        match self.done.take() {
            Some(h) => h.join().unwrap_or_else(|_| {
                Err(RunError::Internal(
                    "the run's coordinator thread panicked".into(),
                ))
            }),
            None => Err(RunError::Internal("run already waited for".into())),
        }
    }
}

impl Drop for RunHandle {
    fn drop(&mut self) {
        if let Some(h) = self.done.take() {
            self.cancel.cancel();
            let _ = h.join();
        }
    }
}

/// Runs a plan to completion on the calling thread.
pub fn run(plan: Plan, options: RunOptions) -> Result<RunReport, RunError> {
    let (progress, launch) = prepare(plan, options)?;
    drop(progress);
    launch()
}

/// Starts a plan in the background and returns a handle to watch, cancel or wait for it.
pub fn start(plan: Plan, options: RunOptions) -> Result<RunHandle, RunError> {
    let cancel = options.cancel.clone();
    let (progress, launch) = prepare(plan, options)?;
    let done = std::thread::Builder::new()
        .name("sluice-run".into())
        .spawn(launch)
        .map_err(|e| RunError::Internal(format!("cannot start the run thread: {e}")))?;
    Ok(RunHandle {
        cancel,
        progress,
        done: Some(done),
        started: Instant::now(),
    })
}

type Launch = Box<dyn FnOnce() -> Result<RunReport, RunError> + Send>;

/// The default memory limit: half the machine's memory (4 GiB if it cannot be read).
pub fn default_memory_limit() -> u64 {
    match crate::memory::total_memory() {
        0 => 4 << 30,
        total => total / 2,
    }
}

fn prepare(plan: Plan, opts: RunOptions) -> Result<(Arc<Vec<NodeProgress>>, Launch), RunError> {
    let limit = opts.memory_limit.unwrap_or_else(default_memory_limit);
    // The memory plan: nodes and features in flight on edges are reserved from the budget
    // for the whole run (edges get shallower to fit), accumulators get the rest; a limit
    // too small for the workflow refuses the run here.
    let memory = MemoryPlan::new(
        limit,
        &PlanInput {
            nodes: plan.nodes.len(),
            edges: plan.edges.len(),
            accumulators: plan.nodes.iter().filter(|n| n.spec.accumulates).count(),
            batch_size: opts.batch_size,
            channel_bound: opts.channel_bound,
            fixed: Vec::new(),
        },
    )?;
    let (batch_size, capacity) = (memory.batch_size, memory.capacity);
    let budget = MemoryBudget::new(memory.budget);
    let planned = memory.reserve(&budget);
    let pool = Arc::new(new_pool(opts.threads));
    let spill = SpillDir::new(opts.spill_dir.clone().unwrap_or_else(std::env::temp_dir));
    // Spill folders of runs that were killed outright (their process is gone).
    spill.clean_stale();
    let batch_knob = Arc::new(AtomicUsize::new(batch_size));
    let read_ahead = Arc::new(AtomicUsize::new(pool.current_num_threads().max(2) * 2));
    let pool_busy = Arc::new(AtomicUsize::new(0));
    let gate = Gate::new(opts.gate, limit, budget.clone(), pool_busy.clone());

    let Plan {
        name, nodes, edges, ..
    } = plan;
    // Channels: one per edge.
    let mut senders: HashMap<(usize, usize), Vec<EdgeOut>> = HashMap::new();
    let mut receivers: HashMap<usize, Vec<(usize, Receiver<Batch>)>> = HashMap::new();
    let mut edge_counters = Vec::new();
    for e in &edges {
        let (tx, rx) = crossbeam_channel::bounded(capacity);
        let counter = Arc::new(AtomicU64::new(0));
        edge_counters.push(counter.clone());
        senders
            .entry((e.from, e.from_port))
            .or_default()
            .push((tx, counter));
        receivers.entry(e.to).or_default().push((e.to_port, rx));
    }
    let edge_names: Vec<(String, String)> = edges
        .iter()
        .map(|e| {
            (
                format!(
                    "{}.{}",
                    nodes[e.from].id, nodes[e.from].outputs[e.from_port]
                ),
                format!("{}.{}", nodes[e.to].id, nodes[e.to].inputs[e.to_port]),
            )
        })
        .collect();

    let mut progress = Vec::new();
    let mut runs = Vec::new();
    for (i, n) in nodes.into_iter().enumerate() {
        let port_counters: Vec<Arc<AtomicU64>> = (0..n.outputs.len())
            .map(|_| Arc::new(AtomicU64::new(0)))
            .collect();
        let ports = port_counters
            .iter()
            .enumerate()
            .map(|(p, c)| (senders.remove(&(i, p)).unwrap_or_default(), c.clone()))
            .collect();
        let cancel = opts.cancel.clone();
        let ctx = NodeContext {
            node_id: n.id.as_str().into(),
            cancel: cancel.clone(),
            budget: budget.clone(),
            pool: pool.clone(),
            spill: spill.clone(),
            events: opts.events.clone(),
            read_ahead: read_ahead.clone(),
            gate: Some(gate.clone()),
        };
        let features_in = Arc::new(AtomicU64::new(0));
        let state = Arc::new(AtomicUsize::new(0));
        progress.push(NodeProgress {
            id: n.id.clone(),
            features_in: features_in.clone(),
            features_out: port_counters.clone(),
            state: state.clone(),
        });
        let out = Emitter::channels(ports, batch_knob.clone(), cancel);
        let drops = out.drops();
        let run = NodeRun {
            ctx,
            node: n.node,
            inputs: receivers.remove(&i).unwrap_or_default(),
            out,
            features_in,
            heavy_finish: n.spec.heavy_finish,
            gate: gate.clone(),
            gate_wait_ns: Arc::new(AtomicU64::new(0)),
        };
        runs.push((n.id, n.spec.name.to_string(), n.outputs, drops, run));
    }
    let progress = Arc::new(progress);
    let progress2 = progress.clone();
    let launch: Launch = Box::new(move || {
        let started = Instant::now();
        let events = opts.events.clone();
        events.send(Event::RunStarted { nodes: runs.len() });
        let monitor = Monitor::start(
            opts.monitor_interval,
            limit,
            budget.clone(),
            Knobs {
                batch_size: batch_knob,
                read_ahead,
            },
            events.clone(),
        );
        let failure: Arc<Mutex<Option<RunError>>> = Arc::new(Mutex::new(None));
        let mut threads = Vec::new();
        let mut meta = Vec::new();
        for (i, (id, action, outputs, drops, run)) in runs.into_iter().enumerate() {
            let node_failure = failure.clone();
            let cancel = opts.cancel.clone();
            let events = events.clone();
            let state = progress2[i].state.clone();
            let gate_wait = run.gate_wait_ns.clone();
            let node_id = id.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("node:{id}"))
                .spawn(move || {
                    crate::store::set_writer_name(format!("node \"{node_id}\""));
                    run_node(node_id, run, node_failure, cancel, events, state)
                });
            match spawned {
                Ok(h) => threads.push(Some(h)),
                Err(e) => {
                    *failure.lock() = Some(RunError::Internal(format!(
                        "cannot start thread for node \"{id}\": {e}"
                    )));
                    opts.cancel.cancel();
                    threads.push(None);
                }
            }
            meta.push((id, action, outputs, drops, gate_wait));
        }
        let mut sinks = Vec::new();
        let mut elapsed = Vec::new();
        for (i, h) in threads.into_iter().enumerate() {
            match h.map(|h| h.join()) {
                Some(Ok((sink, took))) => {
                    sinks.extend(sink.map(|s| (meta[i].0.clone(), s)));
                    elapsed.push(took);
                }
                _ => elapsed.push(Duration::ZERO),
            }
        }
        let mut result = failure.lock().take();
        if result.is_none() && opts.cancel.is_cancelled() {
            result = Some(RunError::Cancelled);
        }
        // Two-phase output: commit every sink only when the whole run succeeded, and all
        // of them as one (`store::Commit`): every target is checked before any is replaced,
        // and a failure puts back the outputs already moved into place.
        if result.is_none() {
            result = commit_all(&mut sinks).err();
        }
        if result.is_some() {
            for (_, s) in sinks.iter_mut() {
                s.abort();
            }
        }
        drop(sinks);
        drop(planned);
        let peak_rss = monitor.stop();
        let (spill_files, spill_bytes) = spill.totals();
        let peaks: HashMap<String, usize> =
            budget
                .consumer_peaks()
                .into_iter()
                .fold(HashMap::new(), |mut m, (k, v)| {
                    *m.entry(k).or_default() += v;
                    m
                });
        let report = RunReport {
            workflow: name,
            ok: result.is_none(),
            elapsed_ms: started.elapsed().as_secs_f64() * 1e3,
            peak_rss_bytes: peak_rss,
            memory_limit_bytes: limit,
            peak_reserved_bytes: budget.peak() as u64,
            spill_files,
            spill_bytes,
            gate_wait_ms: gate.total_wait().as_secs_f64() * 1e3,
            nodes: meta
                .into_iter()
                .zip(elapsed)
                .enumerate()
                .map(|(i, ((id, action, outputs, drops, gate_wait), took))| {
                    let p = &progress2[i];
                    let dropped = DroppedReport::collect(&outputs, &drops);
                    NodeReport {
                        peak_reservation: peaks.get(&id).copied().unwrap_or(0) as u64,
                        id,
                        action,
                        features_in: p.features_in.load(Ordering::Relaxed),
                        features_out: p.out(),
                        ports: outputs
                            .into_iter()
                            .zip(p.features_out.iter().map(|c| c.load(Ordering::Relaxed)))
                            .collect(),
                        features_dropped: dropped.iter().map(|d| d.features).sum(),
                        dropped,
                        elapsed_ms: took.as_secs_f64() * 1e3,
                        gate_wait_ms: gate_wait.load(Ordering::Relaxed) as f64 / 1e6,
                    }
                })
                .collect(),
            edges: edge_names
                .into_iter()
                .zip(edge_counters)
                .map(|((from, to), c)| EdgeReport {
                    from,
                    to,
                    features: c.load(Ordering::Relaxed),
                })
                .collect(),
        };
        events.send(Event::RunFinished {
            ok: report.ok,
            elapsed: started.elapsed(),
        });
        if budget.reserved() != 0 && result.is_none() {
            result = Some(RunError::Internal(format!(
                "{} bytes still reserved after the run",
                budget.reserved()
            )));
        }
        match result {
            None => Ok(report),
            Some(e) => Err(e),
        }
    });
    Ok((progress, launch))
}

/// Commits every sink's output together; the error names the node whose output failed.
fn commit_all(sinks: &mut [(String, Box<dyn crate::action::Sink>)]) -> Result<(), RunError> {
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
    run: NodeRun,
    failure: Arc<Mutex<Option<RunError>>>,
    cancel: CancelToken,
    events: EventSender,
    state: Arc<AtomicUsize>,
) -> (Finished, Duration) {
    let started = Instant::now();
    events.send(Event::NodeStarted { node: id.clone() });
    let features_in = run.features_in.clone();
    let out_total = run.out_total();
    let drops = run.out.drops();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run.run()));
    let took = started.elapsed();
    let error = match outcome {
        Ok(Ok(sink)) => {
            state.store(1, Ordering::Relaxed);
            events.send(Event::NodeFinished {
                node: id,
                features_in: features_in.load(Ordering::Relaxed),
                features_out: out_total.iter().map(|c| c.load(Ordering::Relaxed)).sum(),
                features_dropped: drops.iter().map(|d| d.count()).sum(),
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
    state.store(2, Ordering::Relaxed);
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
