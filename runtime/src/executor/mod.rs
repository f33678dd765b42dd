//! The executor: one thread per node, bounded channels, one shared pool, exact termination.
//!
//! See [`run`] for termination, errors and cancellation, and `node.rs` for the receive loop.

mod node;
mod report;
mod run;

pub use crate::cancel::CancelToken;
pub use crate::pool::{default_pool, new_pool};
pub use report::{DroppedReport, EdgeReport, NodeReport, RunReport, UnhandledRejections};
pub use run::{NodeProgress, RunHandle, RunOptions, default_memory_limit, run, start};

#[cfg(test)]
mod tests;
