//! `noop_sink`: counts features and drops them.
//!
//! ```yaml
//! - id: discard
//!   action: noop_sink
//! ```
//!
//! Useful to terminate a branch whose output is not needed, and to measure the throughput
//! of everything upstream. It logs the count when the run ends.

use schemars::JsonSchema;
use serde::Deserialize;
use sluice_runtime::action::schema_of;
use sluice_runtime::{
    ActionError, ActionKind, ActionSpec, Batch, BuildContext, BuiltAction, NodeContext, NodeImpl,
    Sink,
};

/// Parameters of `noop_sink`: none.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoopSinkParams {}

/// The `noop_sink` action.
pub const SPEC: ActionSpec = ActionSpec::new(
    "noop_sink",
    ActionKind::Sink,
    "Counts features and drops them.",
    schema_of::<NoopSinkParams>,
    build,
)
.example("{}\n");

fn build(ctx: &BuildContext) -> Result<BuiltAction, ActionError> {
    let _: NoopSinkParams = ctx.params()?;
    Ok(BuiltAction::new(NodeImpl::Sink(Box::new(
        NoopSink::default(),
    ))))
}

/// Counts what it receives.
#[derive(Debug, Default)]
struct NoopSink {
    count: u64,
}

impl Sink for NoopSink {
    fn write(
        &mut self,
        _input: usize,
        batch: Batch,
        _ctx: &NodeContext,
    ) -> Result<(), ActionError> {
        self.count += batch.len() as u64;
        Ok(())
    }

    fn finish(&mut self, ctx: &NodeContext) -> Result<(), ActionError> {
        ctx.log(format!("dropped {} features", self.count));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_runtime::Feature;

    #[test]
    fn counts_what_it_drops() {
        let mut s = NoopSink::default();
        let ctx = NodeContext::standalone("t");
        s.write(0, (0..3).map(Feature::empty).collect(), &ctx)
            .unwrap();
        s.write(0, Vec::new(), &ctx).unwrap();
        s.write(0, vec![Feature::empty(9)], &ctx).unwrap();
        assert_eq!(s.count, 4);
        s.finish(&ctx).unwrap();
    }

    #[test]
    fn unknown_params_are_rejected() {
        let err = (SPEC.build)(&BuildContext {
            node_id: "t",
            params: &serde_json::json!({"path": "x"}),
        })
        .err()
        .unwrap();
        assert!(matches!(err, ActionError::Param { .. }), "{err:?}");
    }
}
