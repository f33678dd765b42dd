//! Live counters of a run, readable while it goes on.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

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
