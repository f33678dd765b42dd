//! `sample`: keeps the first N features, or every Nth one.
//!
//! ```yaml
//! - id: preview
//!   action: sample
//!   with:
//!     mode: first
//!     count: 100
//! ```
//!
//! - `mode: first` with `count: N` passes the first N features (in arrival order) and drops
//!   the rest. The input is still consumed to its end, so upstream nodes finish normally.
//! - `mode: every` with `n: N` passes the 1st, (N+1)th, (2N+1)th... feature.
//! - N must be at least 1. Features pass unchanged; nothing is held.

use schemars::JsonSchema;
use serde::Deserialize;
use sluice_runtime::action::schema_of;
use sluice_runtime::shape::{Shape, ShapeContext};
use sluice_runtime::{
    ActionError, ActionKind, ActionSpec, Batch, BuildContext, BuiltAction, Emitter, NodeContext,
    NodeImpl, Processor,
};

/// Parameters of `sample`, selected by `mode`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(tag = "mode", rename_all = "lowercase", deny_unknown_fields)]
pub enum SampleParams {
    /// Passes the first `count` features and drops the rest.
    First {
        /// How many features to pass (at least 1).
        #[schemars(range(min = 1))]
        count: u64,
    },
    /// Passes every `n`th feature, starting with the first.
    Every {
        /// The step (at least 1; 1 passes everything).
        #[schemars(range(min = 1))]
        n: u64,
    },
}

/// The `sample` action.
pub const SPEC: ActionSpec = ActionSpec::new(
    "sample",
    ActionKind::Processor,
    "Passes the first N features (mode: first) or every Nth one (mode: every).",
    schema_of::<SampleParams>,
    build,
)
.shape(shape)
.example("mode: first\ncount: 100\n");

/// Sampling keeps the features as they are.
fn shape(ctx: &ShapeContext) -> Result<Vec<Shape>, ActionError> {
    Ok(ctx.pass(ctx.input(0)))
}

fn build(ctx: &BuildContext) -> Result<BuiltAction, ActionError> {
    let params: SampleParams = ctx.params()?;
    let sample = match params {
        SampleParams::First { count: 0 } => {
            return Err(ActionError::param("count", "must be at least 1"));
        }
        SampleParams::Every { n: 0 } => {
            return Err(ActionError::param("n", "must be at least 1"));
        }
        SampleParams::First { count } => Sample::First { left: count },
        SampleParams::Every { n } => Sample::Every { n, until_next: 0 },
    };
    Ok(BuiltAction::new(NodeImpl::Processor(Box::new(sample))))
}

// ---------------------------------------------------------------------------------------------
// Runtime
// ---------------------------------------------------------------------------------------------

enum Sample {
    /// Features still to pass.
    First { left: u64 },
    /// Features to drop before the next one passes.
    Every { n: u64, until_next: u64 },
}

impl Processor for Sample {
    fn process(
        &mut self,
        _input: usize,
        batch: Batch,
        _ctx: &NodeContext,
        out: &mut Emitter,
    ) -> Result<(), ActionError> {
        match self {
            Sample::First { left } => {
                let take = usize::try_from(*left)
                    .unwrap_or(usize::MAX)
                    .min(batch.len());
                *left -= take as u64;
                for f in batch.into_iter().take(take) {
                    out.emit(f)?;
                }
            }
            Sample::Every { n, until_next } => {
                for f in batch {
                    if *until_next == 0 {
                        out.emit(f)?;
                        *until_next = *n - 1;
                    } else {
                        *until_next -= 1;
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_runtime::Feature;

    fn build_sample(params: serde_json::Value) -> Result<Box<dyn Processor>, ActionError> {
        let built = (SPEC.build)(&BuildContext {
            node_id: "t",
            params: &params,
        })?;
        match built.node {
            NodeImpl::Processor(p) => Ok(p),
            _ => panic!("sample must build a processor"),
        }
    }

    /// Runs over ids 0..total in batches of `batch`; returns the ids passed.
    fn run(params: serde_json::Value, total: u64, batch: u64) -> Vec<u64> {
        let mut sample = build_sample(params).unwrap();
        let ctx = NodeContext::standalone("t");
        let mut out = Emitter::buffer(1);
        let ids: Vec<u64> = (0..total).collect();
        for chunk in ids.chunks(batch as usize) {
            let b = chunk.iter().map(|&i| Feature::empty(i)).collect();
            sample.process(0, b, &ctx, &mut out).unwrap();
        }
        sample.finish(&ctx, &mut out).unwrap();
        out.into_buffers()[0].iter().map(Feature::id).collect()
    }

    #[test]
    fn first_passes_n_across_batches_and_drops_the_rest() {
        let params = serde_json::json!({"mode": "first", "count": 5});
        assert_eq!(run(params.clone(), 20, 3), vec![0, 1, 2, 3, 4]);
        assert_eq!(run(params, 2, 3), vec![0, 1]);
    }

    #[test]
    fn every_passes_the_first_then_each_nth_across_batches() {
        let params = serde_json::json!({"mode": "every", "n": 3});
        assert_eq!(run(params.clone(), 10, 4), vec![0, 3, 6, 9]);
        assert_eq!(run(params, 10, 1), vec![0, 3, 6, 9]);
        let all = serde_json::json!({"mode": "every", "n": 1});
        assert_eq!(run(all, 4, 3), vec![0, 1, 2, 3]);
    }

    #[test]
    fn zero_or_missing_or_mismatched_parameters_are_refused() {
        let path = |p: serde_json::Value| match build_sample(p) {
            Err(ActionError::Param { path, .. }) => path,
            Err(e) => panic!("{e:?}"),
            Ok(_) => panic!("expected an error"),
        };
        assert_eq!(
            path(serde_json::json!({"mode": "first", "count": 0})),
            "count"
        );
        assert_eq!(path(serde_json::json!({"mode": "every", "n": 0})), "n");
        assert!(build_sample(serde_json::json!({"mode": "every", "count": 2})).is_err());
        assert!(build_sample(serde_json::json!({"mode": "first", "count": -1})).is_err());
        assert!(build_sample(serde_json::json!({"mode": "some"})).is_err());
    }
}
