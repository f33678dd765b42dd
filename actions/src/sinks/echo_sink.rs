//! `echo_sink`: logs the first features as JSON lines, and how many came.
//!
//! ```yaml
//! - id: peek
//!   action: echo_sink
//!   with:
//!     limit: 5
//! ```
//!
//! Each of the first `limit` features becomes one log line (the run's event stream; the CLI
//! prints it): the feature id, then the feature as `jsonl_writer` writes it (attributes, and
//! a GeoJSON `geometry` when it has one). When the input ends, one more line gives the count
//! of features received. Nothing is written anywhere else; the features are dropped.

use schemars::JsonSchema;
use serde::Deserialize;
use sluice_runtime::action::schema_of;
use sluice_runtime::{
    ActionError, ActionKind, ActionSpec, Batch, BuildContext, BuiltAction, NodeContext, NodeImpl,
    Sink,
};

/// Parameters of `echo_sink`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EchoSinkParams {
    /// How many features to log (the rest are only counted).
    #[serde(default = "ten")]
    pub limit: u64,
}

fn ten() -> u64 {
    10
}

/// The `echo_sink` action.
pub const SPEC: ActionSpec = ActionSpec::new(
    "echo_sink",
    ActionKind::Sink,
    "Logs the first features as JSON lines and the count at the end.",
    schema_of::<EchoSinkParams>,
    build,
)
.example("limit: 5\n");

fn build(ctx: &BuildContext) -> Result<BuiltAction, ActionError> {
    let p: EchoSinkParams = ctx.params()?;
    Ok(BuiltAction::new(NodeImpl::Sink(Box::new(EchoSink {
        limit: p.limit,
        count: 0,
        logged: 0,
        line: Vec::new(),
    }))))
}

struct EchoSink {
    limit: u64,
    /// Features received.
    count: u64,
    /// Features logged.
    logged: u64,
    /// Reused buffer for one line.
    line: Vec<u8>,
}

impl Sink for EchoSink {
    fn write(&mut self, _input: usize, batch: Batch, ctx: &NodeContext) -> Result<(), ActionError> {
        self.count += batch.len() as u64;
        for f in &batch {
            if self.logged >= self.limit {
                break;
            }
            self.logged += 1;
            self.line.clear();
            super::jsonl_writer::write_feature(&mut self.line, f)
                .map_err(|e| ActionError::io("formatting a feature", e))?;
            ctx.log(format!(
                "feature {}: {}",
                f.id(),
                String::from_utf8_lossy(&self.line)
            ));
        }
        Ok(())
    }

    fn finish(&mut self, ctx: &NodeContext) -> Result<(), ActionError> {
        ctx.log(format!("{} features", self.count));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_runtime::Event;
    use sluice_runtime::events::EventSender;
    use sluice_runtime::executor::RunOptions;
    use std::time::Duration;

    fn logs(yaml: &str) -> Vec<String> {
        let (events, mut rx) = EventSender::stream();
        let options = RunOptions {
            events,
            ..RunOptions::default()
        };
        sluice_runtime::testing::run_yaml(
            yaml,
            &crate::registry(),
            options,
            Duration::from_secs(60),
        )
        .unwrap();
        std::iter::from_fn(|| rx.try_next())
            .filter_map(|e| match e {
                Event::Log { node, message } if node == "echo" => Some(message),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn logs_the_first_features_and_the_count() {
        let got = logs(
            "name: t\nnodes:\n  - id: gen\n    action: feature_creator\n    with:\n      features:\n        - { n: 1, s: \"a\" }\n        - { n: 2, geometry: { type: Point, coordinates: [1, 2] } }\n      repeat: 3\n  - id: echo\n    action: echo_sink\n    with: { limit: 2 }\nedges:\n  - gen -> echo\n",
        );
        assert_eq!(
            got,
            vec![
                "feature 0: {\"n\":1,\"s\":\"a\"}".to_string(),
                "feature 1: {\"n\":2,\"geometry\":{\"type\":\"Point\",\"coordinates\":[1.0,2.0]}}"
                    .to_string(),
                "6 features".to_string(),
            ]
        );
    }

    #[test]
    fn bad_params_are_located() {
        for params in [
            serde_json::json!({"limit": -1}),
            serde_json::json!({"limit": 1, "format": "x"}),
        ] {
            let err = (SPEC.build)(&BuildContext {
                node_id: "t",
                params: &params,
            })
            .err()
            .unwrap();
            assert!(matches!(err, ActionError::Param { .. }), "{err:?}");
        }
    }
}
