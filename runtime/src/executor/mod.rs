//! The executor: one thread per node (a chain of stateless transforms shares one), bounded channels, one shared pool, exact termination.
//!
//! See [`run`] for termination, errors and cancellation, and `node.rs` for the receive loop.
//!
//! A run goes through its modules in this order, and each uses only those before it:
//!
//! 1. `options.rs`, `progress.rs`: what a run is asked for, and its live counters;
//! 2. `wiring.rs`: one bounded channel per edge;
//! 3. `node.rs`: the body of one node thread; `fuse.rs`: linear chains of transforms
//!    that share one thread;
//! 4. `setup.rs`: the memory plan, what every node shares, each node with its channels;
//! 5. `join.rs`: one thread per node (or fused chain), joined; sinks committed together or aborted;
//! 6. `report.rs`: the run report from what the run measured;
//! 7. `run.rs`: [`run`], [`start`] and [`RunHandle`], which put the steps together.

mod fuse;
mod join;
mod node;
mod options;
mod progress;
mod report;
mod run;
mod setup;
mod wiring;

pub use crate::cancel::CancelToken;
pub use crate::memory::default_memory_limit;
pub use crate::pool::{default_pool, new_pool};
pub use options::RunOptions;
pub use progress::{
    EdgeSnapshot, MemorySnapshot, NodeProgress, NodeSnapshot, NodeState, PortCount, Progress,
    StateCell,
};
pub use report::{
    DroppedReport, EdgeReport, MemoryOvershoot, NodeReport, RunReport, UnhandledRejections,
};
pub use run::{RunHandle, run, start};

#[cfg(test)]
mod tests;
