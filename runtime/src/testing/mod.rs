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
pub mod fuzz;
mod harness;
mod shapes;
pub mod stac_server;

pub use actions::*;
pub use harness::{
    DEFAULT_TIMEOUT, Harness, Outputs, cancel_once_flowing, run_processor, run_sink, run_source,
    run_with_timeout, run_workflow_yaml, run_yaml,
};
pub use shapes::{assert_shapes_match, predict};

use std::sync::Arc;

use crate::action::{
    ActionSpec, BuildContext, BuiltAction, Emitter, NodeContext, NodeImpl, Processor, Sink, Source,
    Transform,
};
use crate::error::ActionError;
use crate::feature::{Batch, Feature};

/// Builds a context for one node outside a run (used by action unit tests).
pub fn build(spec: &ActionSpec, params: serde_json::Value) -> Result<BuiltAction, ActionError> {
    (spec.build)(&BuildContext {
        node_id: "test",
        params: &params,
    })
}

/// Builds an action and takes the runtime object of one flavour (`what` names it).
fn build_as<T>(
    spec: &ActionSpec,
    params: serde_json::Value,
    what: &str,
    take: impl FnOnce(NodeImpl) -> Option<T>,
) -> Result<T, ActionError> {
    take(build(spec, params)?.node).ok_or_else(|| {
        ActionError::Other(format!("action \"{}\" does not build a {what}", spec.name).into())
    })
}

/// The parameter path a build error names. Panics unless building fails with a parameter
/// error (action unit tests of parameter checks).
pub fn param_error_path(spec: &ActionSpec, params: serde_json::Value) -> String {
    match build(spec, params) {
        Err(ActionError::Param { path, .. }) => path,
        Err(e) => panic!("expected a parameter error, got {e:?}"),
        Ok(_) => panic!("expected a parameter error"),
    }
}

/// Builds a sink from its spec (action unit tests).
pub fn build_sink(
    spec: &ActionSpec,
    params: serde_json::Value,
) -> Result<Box<dyn Sink>, ActionError> {
    build_as(spec, params, "sink", |n| match n {
        NodeImpl::Sink(s) => Some(s),
        _ => None,
    })
}

/// Builds a source from its spec (action unit tests).
pub fn build_source(
    spec: &ActionSpec,
    params: serde_json::Value,
) -> Result<Box<dyn Source>, ActionError> {
    build_as(spec, params, "source", |n| match n {
        NodeImpl::Source(s) => Some(s),
        _ => None,
    })
}

/// Builds a (stateful) processor from its spec (action unit tests).
pub fn build_processor(
    spec: &ActionSpec,
    params: serde_json::Value,
) -> Result<Box<dyn Processor>, ActionError> {
    build_as(spec, params, "processor", |n| match n {
        NodeImpl::Processor(p) => Some(p),
        _ => None,
    })
}

/// Builds a (stateless) transform from its spec (action unit tests).
pub fn build_transform(
    spec: &ActionSpec,
    params: serde_json::Value,
) -> Result<Arc<dyn Transform>, ActionError> {
    build_as(spec, params, "transform", |n| match n {
        NodeImpl::Transform(t) => Some(t),
        _ => None,
    })
}

/// Drives a processor by hand, outside the executor: each `(input port, batch)` goes to
/// `process` as given (so a test controls batch boundaries and the context's budget), then
/// `finish` runs once. Returns the features of each port of `outputs`, in order, and checks
/// that the node's reservations are back to zero when `finish` returns. Prefer
/// [`run_processor`], which goes through the executor, unless the test needs this control.
pub fn drive(
    processor: &mut dyn Processor,
    inputs: impl IntoIterator<Item = (usize, Batch)>,
    ctx: &NodeContext,
    outputs: &[&str],
) -> Result<Vec<Vec<Feature>>, ActionError> {
    let mut out = Emitter::for_outputs(outputs);
    for (port, batch) in inputs {
        processor.process(port, batch, ctx, &mut out)?;
    }
    processor.finish(ctx, &mut out)?;
    let held = ctx.budget.reserved_by(&ctx.node_id);
    assert_eq!(
        held, 0,
        "{held} bytes still reserved after `finish` returned"
    );
    Ok(out.into_buffers())
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
