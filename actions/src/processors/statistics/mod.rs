//! `statistics`: one feature per group with counts, sums, minima, maxima and means.
//!
//! ```yaml
//! - id: per_city
//!   action: statistics
//!   with:
//!     group_by: [city]
//!     aggregates:
//!       - { op: count }
//!       - { op: sum, attribute: amount, as: total }
//!       - { op: mean, attribute: amount }
//!       - { op: max, attribute: date, as: last_order }
//! ```
//!
//! - Output: one feature per group, in `finish`: the `group_by` attributes, then one
//!   attribute per aggregate (named by `as`, default `<op>_<attribute>`, or `count` for a
//!   row count). Groups leave in ascending order of their values ([`Value::total_cmp`],
//!   attribute by attribute), so the output is deterministic; ids count from 0 in that
//!   order. Geometries are not carried over.
//! - Groups: values equal under `total_cmp` form one group (the int `1` and the float `1.0`
//!   included; the first value seen names the group); null and missing are one group value.
//!   With no `group_by`, everything is one group, and an empty input still gives one
//!   feature (counts 0, other aggregates null).
//! - `count` counts non-null values of `attribute`, or rows without it. `sum` and `mean` skip
//!   nulls and fail the run ([`ActionError::Data`] naming the feature, the attribute and the
//!   value) on a value that is not a number. `sum` is an int when every value was an int and
//!   the sum fits 64 bits, else a float; `mean` is a float. Both are exact sums rounded once
//!   (see `statistics/state.rs`), so the result does not depend on arrival order or on
//!   spilling; a float sum beyond the float range is infinite. With no value, `sum`, `mean`,
//!   `min` and `max` are null.
//! - `min` and `max` compare with `total_cmp`, skip nulls, and keep the first of equal values.
//!
//! # Memory
//!
//! The node holds one state per group and reserves each new group's bytes (and any growth of
//! its min/max values) from the run's budget. When the budget is full, it writes every
//! group's partial state, sorted by group, to a spill run, frees its reservation and goes on.
//! In `finish` it merges the runs with the sorted groups still in memory and combines the
//! partials of each group, in arrival order: the output is the same as without spilling.

mod schema;
mod state;

use std::cmp::Ordering;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::Deserialize;
use sluice_runtime::action::schema_of;
use sluice_runtime::memory::{MergeSpace, Reservation, SpillRun, merge_bounded, write_run};
use sluice_runtime::{
    ActionError, ActionKind, ActionSpec, Batch, BuildContext, BuiltAction, Emitter, Feature,
    NodeContext, NodeImpl, Processor, Schema, Value,
};

pub use state::AggOp;
use state::{NotANumber, State};

use super::keys::{KeyPlan, KeyTable, NULL, SchemaCache, TABLE_ENTRY_BYTES, cmp_keys};

/// Parameters of `statistics`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StatisticsParams {
    /// Attributes whose values form the groups (none: one group over everything).
    #[serde(default)]
    pub group_by: Vec<String>,
    /// The aggregates computed per group, in output order.
    #[schemars(length(min = 1))]
    pub aggregates: Vec<Aggregate>,
}

/// One aggregate.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Aggregate {
    /// The operation: `count`, `sum`, `min`, `max` or `mean`.
    pub op: AggOp,
    /// The attribute aggregated; `count` may leave it out to count rows.
    #[serde(default)]
    pub attribute: Option<String>,
    /// The output attribute name. Default: `<op>_<attribute>` (`count` for a row count).
    #[serde(default, rename = "as")]
    pub output: Option<String>,
}

/// The `statistics` action.
pub const SPEC: ActionSpec = ActionSpec::new(
    "statistics",
    ActionKind::Processor,
    "Emits one feature per group with count, sum, min, max and mean aggregates (sorted by group).",
    schema_of::<StatisticsParams>,
    build,
)
.accumulates()
.heavy_finish()
.shape(schema::shape)
.example(
    "group_by: [city]\naggregates:\n  - { op: count }\n  - { op: sum, attribute: amount, as: total }\n  - { op: mean, attribute: amount }\n  - { op: max, attribute: date, as: last_order }\n",
);

fn build(ctx: &BuildContext) -> Result<BuiltAction, ActionError> {
    let params: StatisticsParams = ctx.params()?;
    if params.aggregates.is_empty() {
        return Err(ActionError::param(
            "aggregates",
            "at least one aggregate is required",
        ));
    }
    let mut names: Vec<String> = Vec::new();
    for (i, g) in params.group_by.iter().enumerate() {
        let path = format!("group_by[{i}]");
        if g.is_empty() {
            return Err(ActionError::param(path, "the attribute name is empty"));
        }
        if names.contains(g) {
            return Err(ActionError::param(path, format!("\"{g}\" is listed twice")));
        }
        names.push(g.clone());
    }
    let mut aggregates = Vec::with_capacity(params.aggregates.len());
    for (i, a) in params.aggregates.into_iter().enumerate() {
        let attribute = match (a.attribute, a.op) {
            (Some(n), _) if n.is_empty() => {
                return Err(ActionError::param(
                    format!("aggregates[{i}].attribute"),
                    "the attribute name is empty",
                ));
            }
            (None, AggOp::Count) => None,
            (None, op) => {
                return Err(ActionError::param(
                    format!("aggregates[{i}].attribute"),
                    format!("`{}` needs an attribute", op.name()),
                ));
            }
            (Some(n), _) => Some(n),
        };
        let output = match (&a.output, &attribute) {
            (Some(o), _) => o.clone(),
            (None, Some(n)) => format!("{}_{n}", a.op.name()),
            (None, None) => "count".to_string(),
        };
        if output.is_empty() || names.contains(&output) {
            let path = if a.output.is_some() {
                format!("aggregates[{i}].as")
            } else {
                format!("aggregates[{i}]")
            };
            let message = if output.is_empty() {
                "the output name is empty".to_string()
            } else {
                format!("the output name \"{output}\" is already used; set another with `as`")
            };
            return Err(ActionError::param(path, message));
        }
        names.push(output);
        aggregates.push(Agg {
            op: a.op,
            attribute,
        });
    }
    let k = params.group_by.len();
    let partial_names = (0..k)
        .map(|i| format!("k{i}"))
        .chain((0..aggregates.len()).map(|i| format!("s{i}")));
    let stats = Statistics {
        group_by: params.group_by,
        aggregates,
        output: Schema::new(names),
        partial: Schema::new(partial_names),
        groups: KeyTable::default(),
        plans: SchemaCache::default(),
        runs: Vec::new(),
        reservation: None,
    };
    Ok(BuiltAction::new(NodeImpl::Processor(Box::new(stats))))
}

// ---------------------------------------------------------------------------------------------
// Runtime
// ---------------------------------------------------------------------------------------------

/// A resolved aggregate.
struct Agg {
    op: AggOp,
    attribute: Option<String>,
}

/// What is resolved once per input schema: the group key and each aggregate's column.
struct Plan {
    key: KeyPlan,
    /// Per aggregate: its column (`None`: a row count, `Some(None)`: a missing attribute).
    columns: Vec<Option<Option<usize>>>,
}

/// One group: its values (the first seen) and a state per aggregate.
struct Group {
    key: Box<[Value]>,
    states: Vec<State>,
}

/// How often (in groups) long loops check for cancellation.
const CANCEL_CHECK_EVERY: usize = 4096;

struct Statistics {
    group_by: Vec<String>,
    aggregates: Vec<Agg>,
    /// The output schema: group attributes, then aggregates.
    output: Arc<Schema>,
    /// The schema of spilled partials: `k0..`, then `s0..`.
    partial: Arc<Schema>,
    groups: KeyTable<Group>,
    plans: SchemaCache<Plan>,
    runs: Vec<SpillRun>,
    reservation: Option<Reservation>,
}

impl Processor for Statistics {
    fn process(
        &mut self,
        _input: usize,
        batch: Batch,
        ctx: &NodeContext,
        _out: &mut Emitter,
    ) -> Result<(), ActionError> {
        for feature in batch {
            self.add(&feature, ctx)?;
        }
        Ok(())
    }

    fn finish(&mut self, ctx: &NodeContext, out: &mut Emitter) -> Result<(), ActionError> {
        let tail = self.sorted_groups();
        let runs = std::mem::take(&mut self.runs);
        let mut next_id = 0u64;
        if runs.is_empty() {
            if tail.is_empty() && self.group_by.is_empty() {
                let states = self.aggregates.iter().map(|a| State::new(a.op)).collect();
                self.emit(
                    Group {
                        key: Box::new([]),
                        states,
                    },
                    &mut next_id,
                    out,
                )?;
            }
            // Bytes go back as groups leave, so nodes downstream can use them.
            let per_group = self
                .reservation
                .as_ref()
                .map_or(0, |r| r.size() / tail.len().max(1));
            for (i, group) in tail.into_iter().enumerate() {
                if i % CANCEL_CHECK_EVERY == 0 {
                    ctx.check_cancelled()?;
                }
                if let Some(r) = &mut self.reservation {
                    r.shrink(per_group);
                }
                self.emit(group, &mut next_id, out)?;
            }
        } else {
            // The groups still held become the last run, so the merge has the budget for its
            // buffers.
            let mut runs = runs;
            let tail: Vec<Feature> = tail.into_iter().map(|g| self.to_partial(g)).collect();
            if !tail.is_empty() {
                runs.push(write_run(&ctx.spill, &ctx.node_id, tail)?);
            }
            if let Some(r) = &mut self.reservation {
                r.free();
            }
            let k = self.group_by.len();
            let space = MergeSpace {
                budget: &ctx.budget,
                dir: &ctx.spill,
                name: &ctx.node_id,
            };
            let merged = merge_bounded(space, runs, Vec::new(), |a, b| {
                cmp_keys(
                    &a.values()[..k.min(a.values().len())],
                    &b.values()[..k.min(b.values().len())],
                )
            })?;
            let mut current: Option<Group> = None;
            for (i, partial) in merged.enumerate() {
                if i % CANCEL_CHECK_EVERY == 0 {
                    ctx.check_cancelled()?;
                }
                let group = self.read_partial(partial?)?;
                match &mut current {
                    Some(c) if cmp_keys(c.key.iter(), group.key.iter()) == Ordering::Equal => {
                        for (s, later) in c.states.iter_mut().zip(group.states) {
                            s.combine(later);
                        }
                    }
                    _ => {
                        if let Some(done) = current.replace(group) {
                            self.emit(done, &mut next_id, out)?;
                        }
                    }
                }
            }
            if let Some(done) = current {
                self.emit(done, &mut next_id, out)?;
            }
        }
        if let Some(mut r) = self.reservation.take() {
            r.free();
        }
        Ok(())
    }
}

impl Statistics {
    /// Adds one feature to its group, spilling first when the group cannot be held.
    fn add(&mut self, feature: &Feature, ctx: &NodeContext) -> Result<(), ActionError> {
        let (group_by, aggregates) = (&self.group_by, &self.aggregates);
        let p = self.plans.index(feature.schema(), |s| Plan {
            key: KeyPlan::new(group_by, s),
            columns: aggregates
                .iter()
                .map(|a| a.attribute.as_ref().map(|n| s.index_of(n)))
                .collect(),
        });
        let plan = self.plans.at(p);
        let values = feature.values();
        let hash = plan.key.hash(values);
        let at = match self.groups.find(hash, |g| plan.key.matches(&g.key, values)) {
            Some(at) => at,
            None => {
                let key = plan.key.to_key(values);
                let states: Vec<State> = self.aggregates.iter().map(|a| State::new(a.op)).collect();
                let bytes = TABLE_ENTRY_BYTES
                    + std::mem::size_of::<Group>()
                    + key.iter().map(|v| 24 + v.heap_size()).sum::<usize>()
                    + states.len() * std::mem::size_of::<State>();
                let reservation = self
                    .reservation
                    .get_or_insert_with(|| ctx.budget.register(&ctx.node_id));
                if !reservation.try_grow(bytes) {
                    spill(
                        &mut self.groups,
                        &self.partial,
                        &mut self.runs,
                        reservation,
                        ctx,
                    )?;
                    reservation.grow(bytes)?;
                }
                self.groups.insert(hash, Group { key, states })?
            }
        };
        let group = self.groups.get_mut(at);
        let mut grew = 0;
        for (i, (state, column)) in group.states.iter_mut().zip(&plan.columns).enumerate() {
            let value = column.map(|c| c.map_or(&NULL, |c| &values[c]));
            grew += state.add(value).map_err(|NotANumber| {
                let agg = &self.aggregates[i];
                let value = value.unwrap_or(&NULL);
                ActionError::data(
                    None,
                    format!(
                        "feature {}: {} of \"{}\": {} value \"{value}\" is not a number",
                        feature.id(),
                        agg.op.name(),
                        agg.attribute.as_deref().unwrap_or_default(),
                        value.type_name(),
                    ),
                )
            })?;
        }
        if grew > 0 {
            let reservation = self
                .reservation
                .get_or_insert_with(|| ctx.budget.register(&ctx.node_id));
            if !reservation.try_grow(grew) {
                spill(
                    &mut self.groups,
                    &self.partial,
                    &mut self.runs,
                    reservation,
                    ctx,
                )?;
            }
        }
        Ok(())
    }

    /// The groups held in memory, in key order (emptying the table).
    fn sorted_groups(&mut self) -> Vec<Group> {
        let mut groups = self.groups.take_entries();
        groups.sort_by(|a, b| cmp_keys(a.key.iter(), b.key.iter()));
        groups
    }

    /// A group as a spilled partial feature: key values, then one value per state.
    fn to_partial(&self, group: Group) -> Feature {
        partial_feature(&self.partial, group)
    }

    /// Reads a spilled partial back.
    fn read_partial(&self, f: Feature) -> Result<Group, ActionError> {
        let k = self.group_by.len();
        let damaged = || {
            ActionError::data(
                None,
                format!(
                    "a spilled partial of statistics (feature {}) is damaged",
                    f.id()
                ),
            )
        };
        if f.values().len() != k + self.aggregates.len() {
            return Err(damaged());
        }
        let key: Box<[Value]> = f.values()[..k].into();
        let mut states = Vec::with_capacity(self.aggregates.len());
        for (agg, v) in self.aggregates.iter().zip(&f.values()[k..]) {
            states.push(State::from_value(agg.op, v.clone()).ok_or_else(damaged)?);
        }
        Ok(Group { key, states })
    }

    /// Emits a finished group.
    fn emit(&self, group: Group, next_id: &mut u64, out: &mut Emitter) -> Result<(), ActionError> {
        let mut values: Vec<Value> = Vec::with_capacity(self.output.len());
        values.extend(group.key.into_vec());
        values.extend(
            group
                .states
                .iter()
                .zip(&self.aggregates)
                .map(|(s, a)| s.finish(a.op)),
        );
        let id = *next_id;
        *next_id += 1;
        out.emit(Feature::new(id, self.output.clone(), values))
    }
}

fn partial_feature(schema: &Arc<Schema>, group: Group) -> Feature {
    let mut values: Vec<Value> = Vec::with_capacity(schema.len());
    values.extend(group.key.into_vec());
    values.extend(group.states.iter().map(State::to_value));
    Feature::new(0, schema.clone(), values)
}

/// Writes every held group, sorted by key, to a spill run and frees the reservation.
fn spill(
    groups: &mut KeyTable<Group>,
    partial: &Arc<Schema>,
    runs: &mut Vec<SpillRun>,
    reservation: &mut Reservation,
    ctx: &NodeContext,
) -> Result<(), ActionError> {
    if groups.is_empty() {
        return Ok(());
    }
    ctx.check_cancelled()?;
    let mut held = groups.take_entries();
    held.sort_by(|a, b| cmp_keys(a.key.iter(), b.key.iter()));
    let features: Vec<Feature> = held
        .into_iter()
        .map(|g| partial_feature(partial, g))
        .collect();
    runs.push(write_run(&ctx.spill, &ctx.node_id, features)?);
    reservation.free();
    Ok(())
}

#[cfg(test)]
mod tests;
