//! Test and bench helpers, compiled with the `testing` feature (and in this crate's tests).
//!
//! - [`run_source`], [`run_processor`], [`run_sink`] and [`run_workflow_yaml`] run an
//!   action, or a workflow, through the executor under a timeout and check the node
//!   contract: each node starts and ends once, reservations are back to zero when a node's
//!   last method returns, and no temporary file remains ([`Harness`] sets batch size,
//!   memory limit and timeout).
//! - [`test_registry`] holds small engine-test actions (`gen`, `pass`, `hold`, `fail`,
//!   `count`).

mod actions;
mod harness;

pub use actions::*;
pub use harness::{
    DEFAULT_TIMEOUT, Harness, Outputs, run_processor, run_sink, run_source, run_with_timeout,
    run_workflow_yaml, run_yaml,
};

use crate::action::{ActionSpec, BuildContext, BuiltAction, NodeImpl, Sink};
use crate::error::ActionError;

/// Builds a context for one node outside a run (used by action unit tests).
pub fn build(spec: &ActionSpec, params: serde_json::Value) -> Result<BuiltAction, ActionError> {
    (spec.build)(&BuildContext {
        node_id: "test",
        params: &params,
    })
}

/// Builds a sink from its spec (action unit tests).
pub fn build_sink(
    spec: &ActionSpec,
    params: serde_json::Value,
) -> Result<Box<dyn Sink>, ActionError> {
    match build(spec, params)?.node {
        NodeImpl::Sink(s) => Ok(s),
        _ => Err(ActionError::Other(
            format!("action \"{}\" does not build a sink", spec.name).into(),
        )),
    }
}

/// Reads a whole stored file (any location `store::open_read` takes) into memory.
pub fn read_bytes(location: &str) -> Result<Vec<u8>, ActionError> {
    let mut v = Vec::new();
    std::io::Read::read_to_end(&mut crate::store::open_read(location)?, &mut v)
        .map_err(|e| ActionError::io(format!("reading {location}"), e))?;
    Ok(v)
}

#[cfg(test)]
mod tests;
