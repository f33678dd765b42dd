//! The options of a run.

use std::path::PathBuf;
use std::time::Duration;

use crate::cancel::CancelToken;
use crate::capture::CaptureOptions;
use crate::events::EventSender;
use crate::memory::GatePolicy;

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
    /// The memory limit in bytes (default: [`crate::memory::default_memory_limit`]). How it
    /// is shared out (the budget, what nodes and edges reserve, what accumulators get) is the
    /// memory policy of [`crate::memory::MemoryPlan::from_limit`]. A limit below the
    /// workflow's minimum fails [`start`](super::start) with
    /// [`RunError::MemoryLimitTooSmall`](crate::RunError::MemoryLimitTooSmall).
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
    /// Capture edges into a job folder (default: none, and capture costs nothing). See
    /// [`crate::capture`].
    pub capture: Option<CaptureOptions>,
    /// Keep journals of what readers fetched, to resume a killed run (default: none). See
    /// [`crate::journal`].
    pub journal: Option<crate::journal::JournalOptions>,
    /// Run each linear chain of stateless transforms on one thread (default true): a
    /// transform whose only input comes from a transform whose only output edge leads to
    /// it is applied on that transform's thread to each batch it sends, instead of waiting
    /// on a channel of its own. Every node keeps its counts, captures, events and errors;
    /// see the executor's `fuse` module. False gives every node its own thread.
    pub fuse_transforms: bool,
    /// The part of their input the sources read (default: the whole input). Set by a task
    /// of a partitioned stage; see [`crate::action::Slice`].
    pub slice: crate::action::Slice,
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
            capture: None,
            journal: None,
            slice: crate::action::Slice::WHOLE,
            fuse_transforms: true,
        }
    }
}
