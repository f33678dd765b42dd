//! Small built-in actions for engine tests and benches: `gen`, `pass`, `hold`, `fail`,
//! `count`.

use schemars::JsonSchema;
use serde::Deserialize;

use crate::action::{
    ActionKind, ActionSpec, BuiltAction, Emitter, NodeContext, NodeImpl, Processor, Registry, Sink,
    Source, Transform, schema_of,
};
use crate::error::ActionError;
use crate::feature::{Batch, Feature, Schema, Value};

/// A registry of engine-test actions: `gen`, `pass`, `hold`, `merge_count`, `fail`, `count`.
pub fn test_registry() -> Registry {
    Registry::from_specs([GEN, PASS, HOLD, FAIL, COUNT])
}

/// Parameters of `gen`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GenParams {
    /// Features to emit.
    pub count: u64,
}

/// `gen`: emits `count` features with attributes `i` (int) and `s` (string).
pub const GEN: ActionSpec = ActionSpec::new(
    "gen",
    ActionKind::Source,
    "test source",
    schema_of::<GenParams>,
    |c| {
        let p: GenParams = c.params()?;
        Ok(BuiltAction::new(NodeImpl::Source(Box::new(Gen {
            count: p.count,
        }))))
    },
);

struct Gen {
    count: u64,
}

impl Source for Gen {
    fn run(&mut self, ctx: &NodeContext, out: &mut Emitter) -> Result<(), ActionError> {
        let schema = Schema::new(["i", "s"]);
        for i in 0..self.count {
            if i % 4096 == 0 {
                ctx.check_cancelled()?;
            }
            out.emit(Feature::new(
                i,
                schema.clone(),
                vec![Value::Int(i as i64), Value::from("x")],
            ))?;
        }
        Ok(())
    }
}

/// Parameters with no fields.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoParams {}

/// `pass`: a transform that forwards every feature unchanged.
pub const PASS: ActionSpec = ActionSpec::new(
    "pass",
    ActionKind::Processor,
    "test pass-through",
    schema_of::<NoParams>,
    |c| {
        let _: NoParams = c.params()?;
        Ok(BuiltAction::new(NodeImpl::Transform(std::sync::Arc::new(
            Pass,
        ))))
    },
);

struct Pass;

impl Transform for Pass {
    fn apply(&self, features: Vec<Feature>, out: &mut Emitter) -> Result<(), ActionError> {
        for f in features {
            out.emit(f)?;
        }
        Ok(())
    }
}

/// `hold`: a processor with two inputs (`default`, `other`) that holds everything and emits it
/// in `finish` (an accumulator with a heavy finish).
pub const HOLD: ActionSpec = ActionSpec::new(
    "hold",
    ActionKind::Processor,
    "test accumulator",
    schema_of::<NoParams>,
    |c| {
        let _: NoParams = c.params()?;
        Ok(BuiltAction::new(NodeImpl::Processor(Box::new(Hold {
            held: Vec::new(),
            reservation: None,
        }))))
    },
)
.inputs(&["default", "other"])
.accumulates()
.heavy_finish();

/// Holds every feature, reserving [`HOLD_BYTES_PER_FEATURE`] bytes for each, and returns the
/// reservation once `finish` has drained them.
struct Hold {
    held: Vec<Feature>,
    reservation: Option<crate::memory::Reservation>,
}

/// The bytes `hold` reserves per held feature.
pub const HOLD_BYTES_PER_FEATURE: usize = 64;

impl Processor for Hold {
    fn process(
        &mut self,
        _: usize,
        batch: Batch,
        ctx: &NodeContext,
        _: &mut Emitter,
    ) -> Result<(), ActionError> {
        self.reservation
            .get_or_insert_with(|| ctx.budget.register(&ctx.node_id))
            .grow(batch.len() * HOLD_BYTES_PER_FEATURE)?;
        self.held.extend(batch);
        Ok(())
    }
    fn finish(&mut self, _: &NodeContext, out: &mut Emitter) -> Result<(), ActionError> {
        for f in self.held.drain(..) {
            out.emit(f)?;
        }
        if let Some(r) = &mut self.reservation {
            r.free();
        }
        Ok(())
    }
}

/// Parameters of `fail`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FailParams {
    /// Fail (or panic) on the feature with this id.
    pub at: u64,
    /// Panic instead of returning an error.
    #[serde(default)]
    pub panic: bool,
    /// Build it as a stateless transform (which the executor may fuse into a chain)
    /// instead of a processor.
    #[serde(default)]
    pub transform: bool,
}

/// `fail`: passes features through and fails at a given feature id.
pub const FAIL: ActionSpec = ActionSpec::new(
    "fail",
    ActionKind::Processor,
    "test failure",
    schema_of::<FailParams>,
    |c| {
        let p: FailParams = c.params()?;
        Ok(BuiltAction::new(if p.transform {
            NodeImpl::Transform(std::sync::Arc::new(Fail(p)))
        } else {
            NodeImpl::Processor(Box::new(Fail(p)))
        }))
    },
);

struct Fail(FailParams);

impl Processor for Fail {
    fn process(
        &mut self,
        _: usize,
        batch: Batch,
        _: &NodeContext,
        out: &mut Emitter,
    ) -> Result<(), ActionError> {
        self.apply(batch, out)
    }
}

impl Transform for Fail {
    fn apply(&self, batch: Vec<Feature>, out: &mut Emitter) -> Result<(), ActionError> {
        for f in batch {
            if f.id() == self.0.at {
                if self.0.panic {
                    panic!("boom at {}", f.id());
                }
                return Err(ActionError::data(None, format!("bad feature {}", f.id())));
            }
            out.emit(f)?;
        }
        Ok(())
    }
}

/// `count`: a sink with two inputs that drops features (the report counts them).
pub const COUNT: ActionSpec = ActionSpec::new(
    "count",
    ActionKind::Sink,
    "test sink",
    schema_of::<NoParams>,
    |c| {
        let _: NoParams = c.params()?;
        Ok(BuiltAction::new(NodeImpl::Sink(Box::new(Count))))
    },
)
.inputs(&["default", "other"]);

struct Count;

impl Sink for Count {
    fn write(&mut self, _: usize, _: Batch, _: &NodeContext) -> Result<(), ActionError> {
        Ok(())
    }
    fn finish(&mut self, _: &NodeContext) -> Result<(), ActionError> {
        Ok(())
    }
}

/// `n` W1-like features sharing one schema (`id`, `name`, `category`, `x`, `y`, `value`,
/// `ts`), from a fixed-seed xorshift generator, so every bench and test sees the same data.
pub fn w1_like_features(n: usize) -> Vec<Feature> {
    let schema = Schema::new(["id", "name", "category", "x", "y", "value", "ts"]);
    let categories = ["park", "road", "water", "building"];
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let unit = |r: u64| (r >> 11) as f64 / (1u64 << 53) as f64;
    (0..n)
        .map(|i| {
            let category = categories[(next() % 4) as usize];
            let values = vec![
                Value::Int(i as i64),
                Value::from(format!("feature {i}")),
                Value::from(category),
                Value::Float(unit(next()) * 360.0 - 180.0),
                Value::Float(unit(next()) * 180.0 - 90.0),
                Value::Float(unit(next()) * 1000.0),
                Value::DateTime(1_714_557_600_000_000 + i as i64 * 1_000_000),
            ];
            Feature::new(i as u64, schema.clone(), values)
        })
        .collect()
}
