//! Wiring: one bounded channel per edge, waiting to be handed to the nodes at its ends.
//!
//! An edge's capacity is in batches (the memory plan's channel capacity), so the features in
//! flight on an edge stay within what the plan reserved for it. Every edge counts the
//! features sent on it, for the run report.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use crossbeam_channel::Receiver;

use crate::action::{EdgeOut, EdgeTap};
use crate::capture::EdgeWriter;
use crate::dag::{PlanEdge, PlanNode};
use crate::feature::Batch;

/// One edge as the report names it (`node.port`), and the count of features sent on it.
pub(super) struct EdgeTally {
    pub from: String,
    pub to: String,
    pub features: Arc<AtomicU64>,
}

/// The channels of a run, before the nodes take their ends.
pub(super) struct Wiring {
    /// Sending ends by (node, output port).
    senders: HashMap<(usize, usize), Vec<EdgeOut>>,
    /// Receiving ends by node, each with its input port.
    receivers: HashMap<usize, Vec<(usize, Receiver<Batch>)>>,
    /// Every edge, in the plan's order.
    pub tallies: Vec<EdgeTally>,
}

impl Wiring {
    /// Makes a channel of `capacity` batches for every edge between `nodes`; `taps` has a
    /// capture tap for each captured edge (by edge index). The `local` edges join two nodes
    /// of one fused chain: one thread both sends and receives on them, so they are
    /// unbounded (they hold at most what one batch of the upstream node produced).
    pub fn new(
        nodes: &[PlanNode],
        edges: &[PlanEdge],
        capacity: usize,
        mut taps: HashMap<usize, EdgeTap>,
        local: &HashSet<usize>,
    ) -> Wiring {
        let mut wiring = Wiring {
            senders: HashMap::new(),
            receivers: HashMap::new(),
            tallies: Vec::with_capacity(edges.len()),
        };
        for (i, e) in edges.iter().enumerate() {
            let (tx, rx) = if local.contains(&i) {
                crossbeam_channel::unbounded()
            } else {
                crossbeam_channel::bounded(capacity)
            };
            let features = Arc::new(AtomicU64::new(0));
            wiring
                .senders
                .entry((e.from, e.from_port))
                .or_default()
                .push(EdgeOut {
                    tx,
                    counter: features.clone(),
                    tap: taps.remove(&i),
                });
            wiring
                .receivers
                .entry(e.to)
                .or_default()
                .push((e.to_port, rx));
            wiring.tallies.push(EdgeTally {
                from: port_name(&nodes[e.from], &nodes[e.from].outputs[e.from_port]),
                to: port_name(&nodes[e.to], &nodes[e.to].inputs[e.to_port]),
                features,
            });
        }
        wiring
    }

    /// Takes the sending ends of output `port` of node `node` (none for a port with no edge).
    pub fn take_senders(&mut self, node: usize, port: usize) -> Vec<EdgeOut> {
        self.senders.remove(&(node, port)).unwrap_or_default()
    }

    /// Takes the receiving ends of node `node`, each with its input port.
    pub fn take_receivers(&mut self, node: usize) -> Vec<(usize, Receiver<Batch>)> {
        self.receivers.remove(&node).unwrap_or_default()
    }
}

/// The capture side of a run: the job being written and one writer per captured edge.
pub(super) struct Capturing {
    pub job: Arc<crate::capture::JobWriter>,
    pub writers: Vec<EdgeWriter>,
}

fn port_name(node: &PlanNode, port: &str) -> String {
    format!("{}.{port}", node.id)
}
