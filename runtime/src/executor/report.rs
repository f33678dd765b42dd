//! The run report: counts per node and edge, timings, memory, spill and gate figures.

use serde::Serialize;

/// Figures of one node.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct NodeReport {
    /// Node id.
    pub id: String,
    /// Action name.
    pub action: String,
    /// Features received.
    pub features_in: u64,
    /// Features emitted, over all ports.
    pub features_out: u64,
    /// Features emitted per output port.
    pub ports: Vec<(String, u64)>,
    /// Wall time from thread start to end, milliseconds.
    pub elapsed_ms: f64,
    /// The most bytes this node reserved from the memory budget.
    pub peak_reservation: u64,
    /// Time its heavy finish waited at the gate, milliseconds.
    pub gate_wait_ms: f64,
}

/// Figures of one edge.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct EdgeReport {
    /// `node.port` upstream.
    pub from: String,
    /// `node.port` downstream.
    pub to: String,
    /// Features that crossed it.
    pub features: u64,
}

/// Everything measured in one run.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RunReport {
    /// The workflow's name.
    pub workflow: Option<String>,
    /// Whether the run succeeded.
    pub ok: bool,
    /// Wall time, milliseconds.
    pub elapsed_ms: f64,
    /// Peak resident set size of the process, bytes.
    pub peak_rss_bytes: u64,
    /// The memory limit, bytes.
    pub memory_limit_bytes: u64,
    /// Peak bytes reserved by accumulators at once.
    pub peak_reserved_bytes: u64,
    /// Spill files written.
    pub spill_files: u64,
    /// Spill bytes written.
    pub spill_bytes: u64,
    /// Total time heavy finishes waited at the gate, milliseconds.
    pub gate_wait_ms: f64,
    /// Per node.
    pub nodes: Vec<NodeReport>,
    /// Per edge.
    pub edges: Vec<EdgeReport>,
}

impl RunReport {
    /// The figures of a node, by id.
    pub fn node(&self, id: &str) -> Option<&NodeReport> {
        self.nodes.iter().find(|n| n.id == id)
    }
}
