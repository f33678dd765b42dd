//! Live counters of a run, readable while it goes on, and the snapshot a UI draws from them.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::memory::{MemoryBudget, current_rss};

/// Where a node is in its life. A UI colours nodes by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
#[repr(u8)]
pub enum NodeState {
    /// Its thread has not started yet.
    Waiting = 0,
    /// Reading, receiving or writing features.
    Running = 1,
    /// Its heavy finish waits at the memory gate for its turn.
    Gated = 2,
    /// In `finish`: draining what it accumulated (a sort's merge, a sink's last flush).
    Finishing = 3,
    /// Running, and it has spilled to disk to stay inside the memory limit.
    Spilling = 4,
    /// Finished successfully.
    Done = 5,
    /// Failed, panicked or was cancelled.
    Failed = 6,
}

impl NodeState {
    /// The state's name, as in JSON (`running`).
    pub fn name(self) -> &'static str {
        match self {
            NodeState::Waiting => "waiting",
            NodeState::Running => "running",
            NodeState::Gated => "gated",
            NodeState::Finishing => "finishing",
            NodeState::Spilling => "spilling",
            NodeState::Done => "done",
            NodeState::Failed => "failed",
        }
    }

    fn from_u8(v: u8) -> NodeState {
        match v {
            0 => NodeState::Waiting,
            1 => NodeState::Running,
            2 => NodeState::Gated,
            3 => NodeState::Finishing,
            4 => NodeState::Spilling,
            5 => NodeState::Done,
            _ => NodeState::Failed,
        }
    }
}

/// A node's state, shared between its thread (which sets it) and observers, with the bytes
/// it spilled so far.
#[derive(Debug)]
pub struct StateCell {
    state: AtomicU8,
    spilled_bytes: AtomicU64,
    /// CPU time of the node's own thread, nanoseconds (updated as it works).
    thread_cpu_ns: AtomicU64,
    /// CPU time of pool work done for the node, nanoseconds.
    pool_cpu_ns: AtomicU64,
    /// Each change of state and when it happened (a few per node; at most
    /// [`MAX_CHANGES`]): the run report's timeline.
    changes: parking_lot::Mutex<Vec<(NodeState, Instant)>>,
}

/// The most state changes a node's timeline keeps (a node changes state a handful of times).
const MAX_CHANGES: usize = 64;

impl Default for StateCell {
    fn default() -> StateCell {
        StateCell {
            state: AtomicU8::new(NodeState::Waiting as u8),
            spilled_bytes: AtomicU64::new(0),
            thread_cpu_ns: AtomicU64::new(0),
            pool_cpu_ns: AtomicU64::new(0),
            changes: parking_lot::Mutex::new(Vec::new()),
        }
    }
}

/// One span of a node's timeline in the run report: a state, from when to when
/// (milliseconds since the run started).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StateSpan {
    /// The state (`running`, `gated`, `spilling`, `finishing`).
    pub state: NodeState,
    /// When it began.
    pub start_ms: f64,
    /// When it ended.
    pub end_ms: f64,
}

impl StateCell {
    /// The current state.
    pub fn get(&self) -> NodeState {
        NodeState::from_u8(self.state.load(Ordering::Relaxed))
    }

    /// Sets the state.
    pub fn set(&self, state: NodeState) {
        self.state.store(state as u8, Ordering::Relaxed);
        self.changed(state);
    }

    fn changed(&self, state: NodeState) {
        let mut changes = self.changes.lock();
        if changes.len() < MAX_CHANGES && changes.last().is_none_or(|(s, _)| *s != state) {
            changes.push((state, Instant::now()));
        }
    }

    /// The node's life from `start` (the run's start) to `end`: a span per state it was in
    /// (waiting, done and failed leave none).
    pub fn timeline(&self, start: Instant, end: Instant) -> Vec<StateSpan> {
        let changes = self.changes.lock();
        let ms = |t: Instant| t.saturating_duration_since(start).as_secs_f64() * 1e3;
        changes
            .iter()
            .enumerate()
            .filter(|(_, (s, _))| {
                !matches!(s, NodeState::Waiting | NodeState::Done | NodeState::Failed)
            })
            .map(|(i, &(state, from))| StateSpan {
                state,
                start_ms: ms(from),
                end_ms: ms(changes.get(i + 1).map_or(end, |&(_, t)| t)),
            })
            .collect()
    }

    /// Records the CPU time the node's own thread has used so far.
    pub(crate) fn set_thread_cpu(&self, ns: u64) {
        self.thread_cpu_ns.fetch_max(ns, Ordering::Relaxed);
    }

    /// Adds CPU time the node's thread spent on it (a node fused into a chain shares its
    /// thread with the chain's other nodes, so each adds what its own steps took).
    pub(crate) fn add_thread_cpu(&self, ns: u64) {
        self.thread_cpu_ns.fetch_add(ns, Ordering::Relaxed);
    }

    /// Adds CPU time pool threads spent on the node's work.
    pub(crate) fn add_pool_cpu(&self, ns: u64) {
        self.pool_cpu_ns.fetch_add(ns, Ordering::Relaxed);
    }

    /// CPU time of the node's own thread so far, nanoseconds.
    pub fn thread_cpu_ns(&self) -> u64 {
        self.thread_cpu_ns.load(Ordering::Relaxed)
    }

    /// CPU time pool threads spent on the node's work so far, nanoseconds.
    pub fn pool_cpu_ns(&self) -> u64 {
        self.pool_cpu_ns.load(Ordering::Relaxed)
    }

    /// CPU time spent on the node so far, milliseconds: its own thread's and its pool work.
    pub fn busy_ms(&self) -> f64 {
        (self.thread_cpu_ns() + self.pool_cpu_ns()) as f64 / 1e6
    }

    /// Bytes the node spilled to disk so far.
    pub fn spilled_bytes(&self) -> u64 {
        self.spilled_bytes.load(Ordering::Relaxed)
    }

    /// Counts a spill, and marks a running node as spilling (a node already finishing stays
    /// so).
    pub(crate) fn spilled(&self, bytes: u64) {
        self.spilled_bytes.fetch_add(bytes, Ordering::Relaxed);
        if self
            .state
            .compare_exchange(
                NodeState::Running as u8,
                NodeState::Spilling as u8,
                Ordering::Relaxed,
                Ordering::Relaxed,
            )
            .is_ok()
        {
            self.changed(NodeState::Spilling);
        }
    }
}

/// Live counters of one node, readable while the run goes on.
#[derive(Debug)]
pub struct NodeProgress {
    /// Node id.
    pub id: String,
    /// Output port names, in port order.
    pub ports: Vec<String>,
    /// Features received so far.
    pub features_in: Arc<AtomicU64>,
    /// Features emitted so far, per output port.
    pub features_out: Vec<Arc<AtomicU64>>,
    /// Where the node is.
    pub state: Arc<StateCell>,
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

/// Live count of one edge.
#[derive(Debug)]
pub(crate) struct EdgeProgress {
    pub name: String,
    pub from: usize,
    pub to: usize,
    pub features: Arc<AtomicU64>,
}

/// Everything a snapshot reads, shared by the run and its handle.
#[derive(Debug)]
pub(crate) struct Live {
    pub nodes: Vec<NodeProgress>,
    pub edges: Vec<EdgeProgress>,
    pub budget: MemoryBudget,
    pub limit: u64,
    pub started: Instant,
}

impl Live {
    /// A consistent-enough picture of the run now (each counter is read once; counters keep
    /// moving while they are read, so a snapshot is not atomic across nodes).
    pub fn snapshot(&self) -> Progress {
        Progress {
            elapsed: self.started.elapsed(),
            nodes: self
                .nodes
                .iter()
                .map(|n| NodeSnapshot {
                    id: n.id.clone(),
                    state: n.state.get(),
                    spilled_bytes: n.state.spilled_bytes(),
                    busy_ms: n.state.busy_ms(),
                    features_in: n.features_in.load(Ordering::Relaxed),
                    features_out: n
                        .ports
                        .iter()
                        .zip(&n.features_out)
                        .map(|(port, c)| PortCount {
                            port: port.clone(),
                            features: c.load(Ordering::Relaxed),
                        })
                        .collect(),
                })
                .collect(),
            edges: self
                .edges
                .iter()
                .map(|e| EdgeSnapshot {
                    name: e.name.clone(),
                    from: self.nodes[e.from].id.clone(),
                    to: self.nodes[e.to].id.clone(),
                    features: e.features.load(Ordering::Relaxed),
                })
                .collect(),
            memory: MemorySnapshot {
                rss: current_rss(),
                reserved: self.budget.reserved() as u64,
                limit: self.limit,
            },
        }
    }
}

/// A snapshot of a running (or finished) workflow: what [`crate::executor::RunHandle::progress`]
/// returns and [`crate::Event::Progress`] carries.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Progress {
    /// Time since the run started (in JSON: `elapsed_ms`, a number of milliseconds).
    #[serde(rename = "elapsed_ms", serialize_with = "as_millis")]
    pub elapsed: Duration,
    /// Every node, in plan order.
    pub nodes: Vec<NodeSnapshot>,
    /// Every edge, in plan order.
    pub edges: Vec<EdgeSnapshot>,
    /// Memory now.
    pub memory: MemorySnapshot,
}

fn as_millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64() * 1e3)
}

/// One node in a [`Progress`] snapshot.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct NodeSnapshot {
    /// Node id.
    pub id: String,
    /// Where it is.
    pub state: NodeState,
    /// Bytes it spilled to disk so far.
    pub spilled_bytes: u64,
    /// CPU time spent on it so far, milliseconds: its own thread's and the pool work done
    /// for it (see [`NodeReport::busy_ms`](super::NodeReport::busy_ms)).
    pub busy_ms: f64,
    /// Features received.
    pub features_in: u64,
    /// Features emitted, per output port.
    pub features_out: Vec<PortCount>,
}

/// Features emitted on one port.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PortCount {
    /// The port.
    pub port: String,
    /// Features emitted on it.
    pub features: u64,
}

/// One edge in a [`Progress`] snapshot.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EdgeSnapshot {
    /// Its name (`read->keep`, `keep.passed->write`), as `--capture` takes it.
    pub name: String,
    /// The upstream node.
    pub from: String,
    /// The downstream node.
    pub to: String,
    /// Features that crossed it.
    pub features: u64,
}

/// Memory in a [`Progress`] snapshot.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct MemorySnapshot {
    /// Resident set size of the process, bytes.
    pub rss: u64,
    /// Bytes reserved from the run's budget (accumulators, in-flight data).
    pub reserved: u64,
    /// The run's memory limit, bytes.
    pub limit: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timeline_has_a_span_per_state_in_order() {
        let start = Instant::now();
        let cell = StateCell::default();
        cell.set(NodeState::Running);
        cell.spilled(10);
        cell.set(NodeState::Gated);
        cell.set(NodeState::Finishing);
        cell.set(NodeState::Done);
        let spans = cell.timeline(start, Instant::now());
        let states: Vec<NodeState> = spans.iter().map(|s| s.state).collect();
        assert_eq!(
            states,
            [
                NodeState::Running,
                NodeState::Spilling,
                NodeState::Gated,
                NodeState::Finishing
            ]
        );
        for w in spans.windows(2) {
            assert!(
                w[0].start_ms <= w[0].end_ms && w[0].end_ms == w[1].start_ms,
                "{w:?}"
            );
        }
    }

    #[test]
    fn a_spill_counts_bytes_and_marks_only_a_running_node() {
        let cell = StateCell::default();
        assert_eq!(cell.get(), NodeState::Waiting);
        cell.set(NodeState::Running);
        cell.spilled(1000);
        assert_eq!(
            (cell.get(), cell.spilled_bytes()),
            (NodeState::Spilling, 1000)
        );
        cell.set(NodeState::Finishing);
        cell.spilled(24);
        // A finishing node (a sort's merge writing its last run) stays finishing.
        assert_eq!(
            (cell.get(), cell.spilled_bytes()),
            (NodeState::Finishing, 1024)
        );
        for s in [
            NodeState::Waiting,
            NodeState::Running,
            NodeState::Gated,
            NodeState::Finishing,
            NodeState::Spilling,
            NodeState::Done,
            NodeState::Failed,
        ] {
            cell.set(s);
            assert_eq!(cell.get(), s);
            assert_eq!(serde_json::to_value(s).unwrap(), s.name());
        }
    }
}
