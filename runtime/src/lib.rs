//! # sluice-runtime
//!
//! The engine of sluice: a workflow (YAML) becomes a DAG of nodes; each node runs on its own
//! OS thread, joined to its neighbours by bounded channels carrying batches of
//! [`Feature`]s; CPU work runs on one shared rayon pool.
//!
//! ```text
//!  workflow.yaml ──parse──► Workflow ──validate/build──► Plan (petgraph DAG of built nodes)
//!                                                        │
//!                                         Executor::run  ▼
//!   source thread ──batch──► processor thread ──batch──► sink thread
//!        (bounded crossbeam channels; receivers select over all inputs + cancel)
//! ```
//!
//! This crate knows no concrete action: actions come from a [`Registry`] of
//! [`ActionSpec`]s that the `sluice-actions` crate (or an embedder) supplies.
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod action;
mod cancel;
pub mod capture;
pub mod cpu;
pub mod dag;
pub mod error;
pub mod events;
pub mod executor;
pub mod expr;
pub mod feature;
pub mod http;
pub mod input;
pub mod journal;
pub mod memory;
mod pool;
pub mod shape;
pub mod stage;
pub mod store;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod workflow;

pub use action::{
    ActionKind, ActionSpec, BuildContext, BuiltAction, DEFAULT_PORT, Emitter, NodeContext,
    NodeImpl, Processor, REJECTED_PORT, REJECTION_REASON, Registry, Sink, Slice, Source, Transform,
};
pub use cancel::CancelToken;
pub use error::{ActionError, Diagnostic, RunError, Severity, ValidationError};
pub use events::Event;
pub use feature::{Batch, Feature, Geometry, Schema, Value};
