//! The typed event stream an embedder (a UI, the CLI) consumes while a run goes on.

use std::time::Duration;

use crossbeam_channel::Sender;

use crate::executor::DroppedReport;

/// Something that happened during a run. Past-tense names; fields are plain data.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// The run started with this many nodes.
    RunStarted {
        /// Node count.
        nodes: usize,
    },
    /// A node's thread started.
    NodeStarted {
        /// Node id.
        node: String,
    },
    /// A node finished successfully.
    NodeFinished {
        /// Node id.
        node: String,
        /// Features received.
        features_in: u64,
        /// Features sent on edges.
        features_out: u64,
        /// Features emitted to ports with no edge, and so dropped, over all ports.
        features_dropped: u64,
        /// The ports that dropped features, in port order, each with its count and the first
        /// rejection reason (empty when nothing was dropped); the same as the run report's
        /// [`NodeReport::dropped`](crate::executor::NodeReport::dropped).
        dropped: Vec<DroppedReport>,
        /// Wall time of the node.
        elapsed: Duration,
    },
    /// A node failed (error or caught panic).
    NodeFailed {
        /// Node id.
        node: String,
        /// The rendered error.
        error: String,
    },
    /// A memory sample from the monitor.
    MemorySampled {
        /// Resident set size of the process, bytes.
        rss: u64,
        /// Bytes reserved by accumulators.
        reserved: u64,
    },
    /// Resident memory crossed a threshold (warning 80 %, critical 90 % of the limit).
    MemoryPressureChanged {
        /// `normal`, `warning` or `critical`.
        level: String,
        /// Resident set size, bytes.
        rss: u64,
        /// The memory limit, bytes.
        limit: u64,
    },
    /// A heavy finish is waiting at the gate.
    GateWaiting {
        /// Node id.
        node: String,
    },
    /// A heavy finish was admitted by the gate.
    GateAdmitted {
        /// Node id.
        node: String,
        /// Time spent waiting.
        waited: Duration,
    },
    /// An accumulator spilled a run to disk.
    Spilled {
        /// Node id.
        node: String,
        /// Bytes written.
        bytes: u64,
        /// Rows written.
        rows: u64,
    },
    /// A log line from an action.
    Log {
        /// Node id.
        node: String,
        /// The message.
        message: String,
    },
    /// The run ended.
    RunFinished {
        /// Whether it succeeded.
        ok: bool,
        /// Wall time.
        elapsed: Duration,
    },
}

/// Where events go: a channel, or nowhere.
#[derive(Clone, Debug, Default)]
pub struct EventSender {
    tx: Option<Sender<Event>>,
}

impl EventSender {
    /// Drops every event.
    pub fn none() -> EventSender {
        EventSender { tx: None }
    }

    /// Sends events into a channel (use an unbounded one: senders never block).
    pub fn channel(tx: Sender<Event>) -> EventSender {
        EventSender { tx: Some(tx) }
    }

    /// Sends one event; a closed receiver is ignored.
    pub fn send(&self, event: Event) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(event);
        }
    }
}
