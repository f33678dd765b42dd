//! Wiring: one bounded channel per edge (but those inside fused chains), waiting to be handed
//! to the nodes at its ends.
//!
//! An edge's capacity is in batches (the memory plan's channel capacity), so the features in
//! flight on an edge stay within what the plan reserved for it. Every edge counts the
//! features sent on it, for the run report.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use crossbeam_channel::Receiver;

use crate::action::{EdgeOut, EdgeTap, EdgeTarget};
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
    /// of one fused chain: they get no channel, and the executor connects the upstream
    /// node's emitter straight to the downstream node (see `fuse.rs`).
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
            let features = Arc::new(AtomicU64::new(0));
            let target = if local.contains(&i) {
                EdgeTarget::Local(None)
            } else {
                let (tx, rx) = crossbeam_channel::bounded(capacity);
                wiring
                    .receivers
                    .entry(e.to)
                    .or_default()
                    .push((e.to_port, rx));
                EdgeTarget::Channel(tx)
            };
            wiring
                .senders
                .entry((e.from, e.from_port))
                .or_default()
                .push(EdgeOut {
                    target,
                    counter: features.clone(),
                    tap: taps.remove(&i),
                });
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
