//! The run report: counts per node and edge, timings, memory, spill and gate figures.
//!
//! Features sent on edges and features dropped on ports with no edge are counted apart
//! ([`NodeReport::features_out`], [`NodeReport::dropped`]): a feature that went nowhere is
//! reported, never hidden in an "out" count.

use std::sync::Arc;

use serde::Serialize;

use crate::action::{PortDrops, REJECTED_PORT};

/// Figures of one node.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct NodeReport {
    /// Node id.
    pub id: String,
    /// Action name.
    pub action: String,
    /// Features received.
    pub features_in: u64,
    /// Features sent on edges, over all ports.
    pub features_out: u64,
    /// Features sent on edges, per output port (0 for a port with no edge).
    pub ports: Vec<(String, u64)>,
    /// Features emitted to ports with no edge (and so dropped), over all ports.
    pub features_dropped: u64,
    /// The ports that dropped features (ports with no edge that were emitted to).
    pub dropped: Vec<DroppedReport>,
    /// Wall time from thread start to end, milliseconds.
    pub elapsed_ms: f64,
    /// The most bytes this node reserved from the memory budget.
    pub peak_reservation: u64,
    /// Time its heavy finish waited at the gate, milliseconds.
    pub gate_wait_ms: f64,
}

/// Features an action emitted to a port with no edge.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DroppedReport {
    /// The output port.
    pub port: String,
    /// Features dropped.
    pub features: u64,
    /// The `_rejection_reason` of the first dropped feature that had one (a `rejected` port).
    pub first_reason: Option<String>,
}

impl DroppedReport {
    /// The ports of `outputs` that dropped features, in port order.
    pub(crate) fn collect(outputs: &[String], drops: &[Arc<PortDrops>]) -> Vec<DroppedReport> {
        outputs
            .iter()
            .zip(drops)
            .filter(|(_, d)| d.count() > 0)
            .map(|(port, d)| DroppedReport {
                port: port.clone(),
                features: d.count(),
                first_reason: d.first_reason().map(str::to_string),
            })
            .collect()
    }
}

/// Rejected features that went nowhere: a node emitted them to its `rejected` port, which has
/// no edge.
#[derive(Debug, Clone, PartialEq)]
pub struct UnhandledRejections<'a> {
    /// Node id.
    pub node: &'a str,
    /// Features rejected and dropped.
    pub features: u64,
    /// The reason of the first of them, when it carried one.
    pub first_reason: Option<&'a str>,
}

impl std::fmt::Display for UnhandledRejections<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = if self.features == 1 { "" } else { "s" };
        write!(
            f,
            "node \"{}\" rejected {} feature{s} and its \"{REJECTED_PORT}\" port has no edge: \
             they were dropped",
            self.node, self.features
        )?;
        if let Some(r) = self.first_reason {
            write!(f, "; first reason: {r}")?;
        }
        Ok(())
    }
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

    /// Per node, the features rejected to a `rejected` port that has no edge (and so
    /// dropped). The command line warns about them, and `--strict` fails on them.
    pub fn unhandled_rejections(&self) -> Vec<UnhandledRejections<'_>> {
        self.nodes
            .iter()
            .flat_map(|n| {
                n.dropped
                    .iter()
                    .filter(|d| d.port == REJECTED_PORT && d.features > 0)
                    .map(|d| UnhandledRejections {
                        node: &n.id,
                        features: d.features,
                        first_reason: d.first_reason.as_deref(),
                    })
            })
            .collect()
    }
}
