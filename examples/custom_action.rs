//! Writing a custom action and adding it to the registry beside the built-in ones.
//! Run with `cargo run --example custom_action`.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::Deserialize;
use sluice::runtime::action::schema_of;
use sluice::runtime::executor::{self, RunOptions};
use sluice::runtime::workflow::{self, VarSources};
use sluice::runtime::{
    ActionError, ActionKind, ActionSpec, BuildContext, BuiltAction, Emitter, Feature, NodeImpl,
    Transform, Value,
};

/// Parameters of `shout`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct ShoutParams {
    /// The string attribute to upper-case.
    attribute: String,
}

/// `shout`: upper-cases one string attribute. A stateless transform, so the executor may run
/// its batches in parallel on the shared pool.
struct Shout {
    attribute: String,
}

impl Transform for Shout {
    fn apply(&self, features: Vec<Feature>, out: &mut Emitter) -> Result<(), ActionError> {
        for mut f in features {
            if let Some(Value::String(s)) = f.get(&self.attribute) {
                let loud = s.to_uppercase();
                f.set(&self.attribute, Value::from(loud));
            }
            out.emit(f)?;
        }
        Ok(())
    }
}

fn build(ctx: &BuildContext) -> Result<BuiltAction, ActionError> {
    let p: ShoutParams = ctx.params()?;
    Ok(BuiltAction::new(NodeImpl::Transform(Arc::new(Shout {
        attribute: p.attribute,
    }))))
}

const SHOUT: ActionSpec = ActionSpec::new(
    "shout",
    ActionKind::Processor,
    "Upper-cases a string attribute.",
    schema_of::<ShoutParams>,
    build,
)
.example("attribute: name");

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut registry = sluice::actions::registry();
    registry.register(SHOUT);
    let yaml = r#"
nodes:
  - { id: make, action: feature_creator, with: { features: [ { name: quiet } ] } }
  - { id: loud, action: shout, with: { attribute: name } }
  - { id: show, action: noop_sink }
edges: [ make -> loud, loud -> show ]
"#;
    let plan = workflow::load("custom.yaml", yaml, &registry, &VarSources::default())?;
    let report = executor::run(plan, RunOptions::default())?;
    println!(
        "shout saw {} feature(s)",
        report.node("loud").map_or(0, |n| n.features_in)
    );
    Ok(())
}
