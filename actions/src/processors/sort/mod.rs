//! `sort`: orders every feature by one or more attributes.
//!
//! ```yaml
//! - id: by_city
//!   action: sort
//!   with:
//!     by:
//!       - attribute: city
//!       - attribute: population
//!         descending: true
//!         nulls: last
//! ```
//!
//! - The sort is stable: features with equal keys leave in the order they arrived.
//! - Values compare with [`Value::total_cmp`](sluice_runtime::Value::total_cmp): ints and floats numerically together (exactly,
//!   even beyond 2^53), NaN after every other float, values of different types by type rank.
//! - A missing attribute counts as null. By default nulls go last on an ascending key and first
//!   on a descending one (null behaves as the largest value); `nulls: first | last` overrides.
//!
//! # Memory
//!
//! Sort holds its input until every input has closed. It reserves each feature's
//! [`Feature::mem_size`](sluice_runtime::Feature::mem_size) (plus its sort bookkeeping) from
//! the run's budget before holding it. When the budget is full it sorts what it holds and
//! spills it to the run's spill folder as a Parquet run, then starts again; in `finish` the
//! runs (the last one is what was still held) are merged with bounded memory
//! (`runtime::memory::spill`), ties going to the older run, so the sort stays stable. Without
//! a spill, `finish` moves the features out in order and gives their bytes back as it goes.
//! Either way the reservation is zero when `finish` returns. Everything about holding,
//! spilling and ordering lives in `SortBuffer` (`sort/buffer.rs`).
//!
//! # Speed
//!
//! Each key value is encoded on arrival into a 16-byte order-preserving form (see "Normalized
//! keys" in `sort/buffer.rs`), so the parallel merge sort on the shared pool compares compact entries and
//! reads the features themselves only to break ties the encoding cannot decide.

use schemars::JsonSchema;
use serde::Deserialize;
use sluice_runtime::action::FeatureOrdering;
use sluice_runtime::action::schema_of;
use sluice_runtime::shape::{Shape, ShapeContext};
use sluice_runtime::{
    ActionError, ActionKind, ActionSpec, Batch, BuildContext, BuiltAction, Emitter, NodeContext,
    NodeImpl, Processor,
};

mod buffer;

use buffer::SortBuffer;

/// Parameters of `sort`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SortParams {
    /// Attributes to sort by, most significant first.
    #[schemars(length(min = 1))]
    pub by: Vec<SortKey>,
}

/// One sort key.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SortKey {
    /// The attribute to compare; a feature without it counts as null.
    pub attribute: String,
    /// Sort this key from largest to smallest.
    #[serde(default)]
    pub descending: bool,
    /// Where nulls go: `first` or `last`. Default: last when ascending, first when descending.
    #[serde(default)]
    pub nulls: Option<NullsOrder>,
}

/// Where null values of a key are placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum NullsOrder {
    /// Before every non-null value.
    First,
    /// After every non-null value.
    Last,
}

/// The `sort` action.
pub const SPEC: ActionSpec = ActionSpec::new(
    "sort",
    ActionKind::Processor,
    "Sorts features by one or more attributes (stable; nulls last ascending, first descending).",
    schema_of::<SortParams>,
    build,
)
.shape(shape)
.accumulates()
.heavy_finish()
.sorts_by(order)
.example(
    "by:\n  - attribute: city\n  - attribute: population\n    descending: true\n    nulls: last\n",
);

/// Sorting keeps the features as they are; the keys must name attributes.
fn shape(ctx: &ShapeContext) -> Result<Vec<Shape>, ActionError> {
    let p: SortParams = ctx.params()?;
    let input = ctx.input(0);
    for (i, key) in p.by.iter().enumerate() {
        ctx.attribute(&format!("by[{i}].attribute"), &key.attribute, &input);
    }
    Ok(ctx.pass(input))
}

/// The order the sort gives its output: what a partitioned run merges sorted parts by.
fn order(params: &serde_json::Value) -> Result<FeatureOrdering, ActionError> {
    let params: SortParams = BuildContext {
        node_id: "",
        params,
    }
    .params()?;
    let order = buffer::feature_order(params.by.into_iter().map(KeySpec::new).collect());
    Ok(Box::new(move |a, b| order.compare(a, b)))
}

fn build(ctx: &BuildContext) -> Result<BuiltAction, ActionError> {
    let params: SortParams = ctx.params()?;
    if params.by.is_empty() {
        return Err(ActionError::param(
            "by",
            "at least one sort key is required",
        ));
    }
    let mut keys = Vec::with_capacity(params.by.len());
    for (i, key) in params.by.into_iter().enumerate() {
        if key.attribute.is_empty() {
            return Err(ActionError::param(
                format!("by[{i}].attribute"),
                "the attribute name is empty",
            ));
        }
        keys.push(KeySpec::new(key));
    }
    Ok(BuiltAction::new(NodeImpl::Processor(Box::new(Sort {
        buffer: SortBuffer::new(keys),
    }))))
}

// ---------------------------------------------------------------------------------------------
// Runtime
// ---------------------------------------------------------------------------------------------

/// How often (in features) the drain checks for cancellation.
const CANCEL_CHECK_EVERY: usize = 4096;

struct Sort {
    buffer: SortBuffer,
}

impl Processor for Sort {
    fn process(
        &mut self,
        _input: usize,
        batch: Batch,
        ctx: &NodeContext,
        _out: &mut Emitter,
    ) -> Result<(), ActionError> {
        self.buffer.push(batch, ctx)
    }

    fn finish(&mut self, ctx: &NodeContext, out: &mut Emitter) -> Result<(), ActionError> {
        for (i, feature) in self.buffer.finish_sorted(ctx)?.enumerate() {
            if i % CANCEL_CHECK_EVERY == 0 {
                ctx.check_cancelled()?;
            }
            out.emit(feature?)?;
        }
        Ok(())
    }
}

/// A resolved sort key.
#[derive(Debug, Clone)]
struct KeySpec {
    attribute: String,
    descending: bool,
    nulls_first: bool,
}

impl KeySpec {
    fn new(key: SortKey) -> KeySpec {
        let nulls_first = match key.nulls {
            Some(n) => n == NullsOrder::First,
            None => key.descending,
        };
        KeySpec {
            attribute: key.attribute,
            descending: key.descending,
            nulls_first,
        }
    }
}

#[cfg(test)]
mod tests;
