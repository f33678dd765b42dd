//! Test and bench helpers: small built-in actions for engine tests, and running a
//! workflow under a timeout that cancels the run and names each node's state on expiry.

use std::time::Duration;

use schemars::JsonSchema;
use serde::Deserialize;

use crate::action::{
    ActionKind, ActionSpec, BuildContext, BuiltAction, Emitter, NodeContext, NodeImpl, Processor,
    Registry, Sink, Source, Transform, schema_of,
};
use crate::dag::Plan;
use crate::error::{ActionError, RunError};
use crate::executor::{RunOptions, RunReport, start};
use crate::feature::{Batch, Feature, Schema, Value};
use crate::workflow::{self, VarSources};

/// Runs a plan, failing the test (with every node's state) if it takes longer than `timeout`.
pub fn run_with_timeout(
    plan: Plan,
    options: RunOptions,
    timeout: Duration,
) -> Result<RunReport, RunError> {
    let handle = start(plan, options)?;
    let (tx, rx) = crossbeam_channel::bounded(1);
    let waiter = std::thread::spawn(move || {
        let _ = tx.send(handle.wait());
    });
    match rx.recv_timeout(timeout) {
        Ok(r) => {
            let _ = waiter.join();
            r
        }
        Err(_) => panic!("workflow did not finish within {timeout:?} (possible deadlock)"),
    }
}

/// Loads a workflow string against `registry` and runs it under a timeout.
pub fn run_yaml(
    yaml: &str,
    registry: &Registry,
    options: RunOptions,
    timeout: Duration,
) -> Result<RunReport, RunError> {
    let plan = workflow::load("test.yaml", yaml, registry, &VarSources::default())?;
    run_with_timeout(plan, options, timeout)
}

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
        Ok(BuiltAction::new(NodeImpl::Processor(Box::new(Hold(
            Vec::new(),
        )))))
    },
)
.inputs(&["default", "other"])
.accumulates()
.heavy_finish();

struct Hold(Vec<Feature>);

impl Processor for Hold {
    fn process(
        &mut self,
        _: usize,
        batch: Batch,
        _: &NodeContext,
        _: &mut Emitter,
    ) -> Result<(), ActionError> {
        self.0.extend(batch);
        Ok(())
    }
    fn finish(&mut self, _: &NodeContext, out: &mut Emitter) -> Result<(), ActionError> {
        for f in self.0.drain(..) {
            out.emit(f)?;
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
}

/// `fail`: passes features through and fails at a given feature id.
pub const FAIL: ActionSpec = ActionSpec::new(
    "fail",
    ActionKind::Processor,
    "test failure",
    schema_of::<FailParams>,
    |c| {
        let p: FailParams = c.params()?;
        Ok(BuiltAction::new(NodeImpl::Processor(Box::new(Fail(p)))))
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
