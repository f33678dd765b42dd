//! # sluice
//!
//! A dataflow runtime for features (records with attributes and an optional geometry):
//! workflows written in YAML become a DAG of nodes, one OS thread per node, joined by bounded
//! channels, with CPU work on one shared pool and accumulators that stay inside a memory
//! budget.
//!
//! This crate is the facade: it re-exports the engine ([`runtime`]) and the action library
//! ([`actions`]), and adds [`generate`] (sample data for benchmarks and demos), [`help`]
//! (what `sluice actions` prints), [`inspect`] (how `sluice inspect` prints a capture
//! job) and [`report`] (a run report drawn as a page).
//!
//! ```no_run
//! use sluice::runtime::{executor::{self, RunOptions}, workflow::{self, VarSources}};
//! let registry = sluice::actions::registry();
//! let plan = workflow::load_file("workflows/quickstart.yaml".as_ref(), &registry, &VarSources::default())?;
//! let report = executor::run(plan, RunOptions::default())?;
//! println!("{} ms", report.elapsed_ms);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod generate;
pub mod help;
pub mod inspect;
pub mod report;

pub use sluice_actions as actions;
pub use sluice_runtime as runtime;
