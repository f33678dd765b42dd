//! `statistics`: one feature per group with counts, sums, means, percentiles, spreads,
//! distinct counts, extremes and first/last values.
//!
//! ```yaml
//! - id: per_city
//!   action: statistics
//!   with:
//!     group_by: [city]
//!     aggregates:
//!       - { op: count }
//!       - { op: sum, attribute: amount, as: total }
//!       - { op: median, attribute: amount }
//!       - { op: percentile, attribute: amount, p: 0.9, as: p90_amount }
//!       - { op: stddev, attribute: amount }
//!       - { op: count_distinct, attribute: customer, as: customers }
//!       - { op: last, attribute: date, as: last_order }
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
//!   feature (every aggregate at its empty-group result below).
//!
//! # Operations
//!
//! Every op but a row `count` needs an `attribute`. Every op skips nulls (and missing
//! attributes). The numeric ops (`sum`, `mean`, `median`, `percentile`, `variance*`,
//! `stddev*`) fail the run ([`ActionError::Data`] naming the feature, the attribute and the
//! value) on a non-null value that is not an int or a float.
//!
//! | op | result | no values |
//! |---|---|---|
//! | `count` | non-null values of `attribute`, or rows without one (int) | `0` |
//! | `sum` | int when every value was an int and the sum fits 64 bits, else float | null |
//! | `mean` | float | null |
//! | `min`, `max` | smallest, largest value by `total_cmp`, any type; the first of equals | null |
//! | `median` | `percentile` with `p: 0.5` | null |
//! | `percentile` | the `p` percentile (`p` in \[0, 1\]), float | null |
//! | `variance`, `stddev` | sample variance (÷ `n − 1`) and its square root, float | null (also for one value) |
//! | `variance_pop`, `stddev_pop` | population variance (÷ `n`) and its square root, float | null |
//! | `count_distinct` | distinct values (equal under `total_cmp`: `1` and `1.0` are one), int | `0` |
//! | `first`, `last` | the first, last value in arrival order, any type | null |
//!
//! - `min`/`max` compare strings bytewise (UTF-8), dates and times chronologically, numbers
//!   by value; across types they follow `total_cmp`'s type order.
//! - `percentile` interpolates linearly between the closest ranks, as numpy's default: for
//!   `n` values sorted ascending `x[0] … x[n−1]`, the rank is `h = (n − 1)·p` and the result
//!   `x[⌊h⌋] + (h − ⌊h⌋)·(x[⌊h⌋+1] − x[⌊h⌋])`. Values are ordered by `total_cmp` (NaN
//!   above infinity); ints become floats (exactly below 2^53). Its default output name is
//!   `percentile_<attribute>`: two percentiles of one attribute need `as`.
//! - `sum`, `mean`, `variance` and `stddev` are computed from exact sums (`Σx`, and `Σx²` for
//!   the spreads) rounded once, so they do not depend on arrival order or on spilling; see
//!   `statistics/exact.rs`. A float sum beyond the float range is infinite; an infinite or
//!   NaN input makes a variance NaN, and squares beyond the float range (|x| > 1e154) make
//!   it infinite.
//! - `first` and `last` follow the order features reach the node (batch by batch, as the
//!   upstream node emitted them).
//!
//! # Memory
//!
//! The node holds one state per group and reserves each new group's bytes (and any growth of
//! its states) from the run's budget. The ranked ops (`median`, `percentile`,
//! `count_distinct`) hold the group's non-null values of their attribute (one list per
//! attribute, shared by every ranked op on it), and reserve each value with what its spilled
//! row will cost. When the budget is full, the node writes every group, sorted by group, to a
//! spill run (partial states, then each group's held values ascending: `statistics/rows.rs`),
//! frees its reservation and goes on. A group's values may thus exceed memory: they are spread
//! over runs. In `finish` it merges the runs with the groups still in memory, combines the
//! partial states of each group in arrival order, and streams each group's values, ascending,
//! past the ranked ops, which keep only the ranks they need: the output is the same as
//! without spilling, bit for bit.

mod exact;
mod ranked;
mod rows;
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

use ranked::Pick;
use rows::{Layout, Row};
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
    /// The operation: `count`, `sum`, `min`, `max`, `mean`, `median`, `percentile`,
    /// `variance`, `variance_pop`, `stddev`, `stddev_pop`, `count_distinct`, `first` or
    /// `last`.
    #[schemars(with = "AggOp")]
    pub op: String,
    /// The attribute aggregated; `count` may leave it out to count rows.
    #[serde(default)]
    pub attribute: Option<String>,
    /// For `percentile` (and only it): the fraction in \[0, 1\] below which the result lies
    /// (`0.9` for the 90th percentile).
    #[serde(default)]
    #[schemars(range(min = 0.0, max = 1.0))]
    pub p: Option<f64>,
    /// The output attribute name. Default: `<op>_<attribute>` (`count` for a row count).
    #[serde(default, rename = "as")]
    pub output: Option<String>,
}

/// The `statistics` action.
pub const SPEC: ActionSpec = ActionSpec::new(
    "statistics",
    ActionKind::Processor,
    "Emits one feature per group with count, sum, mean, median/percentile, variance/stddev, count_distinct, min/max and first/last aggregates (sorted by group).",
    schema_of::<StatisticsParams>,
    build,
)
.accumulates()
.heavy_finish()
.shape(schema::shape)
.groups_by(group_hash)
.example(
    "group_by: [city]\naggregates:\n  - { op: count }\n  - { op: sum, attribute: amount, as: total }\n  - { op: median, attribute: amount }\n  - { op: percentile, attribute: amount, p: 0.9, as: p90_amount }\n  - { op: stddev, attribute: amount }\n  - { op: count_distinct, attribute: customer, as: customers }\n  - { op: last, attribute: date, as: last_order }\n",
);

/// The hash of a feature's group, for a partitioned run that splits the input by group;
/// none without `group_by` (everything is one group).
fn group_hash(
    params: &serde_json::Value,
    _port: usize,
) -> Result<Option<sluice_runtime::action::FeatureHasher>, ActionError> {
    let p: StatisticsParams = BuildContext {
        node_id: "",
        params,
    }
    .params()?;
    Ok((!p.group_by.is_empty()).then(|| super::keys::feature_hasher(p.group_by)))
}

fn build(ctx: &BuildContext) -> Result<BuiltAction, ActionError> {
    let params: StatisticsParams = ctx.params()?;
    let mut errors = Vec::new();
    if params.aggregates.is_empty() {
        errors.push(ActionError::param(
            "aggregates",
            "at least one aggregate is required",
        ));
    }
    let mut names: Vec<String> = Vec::new();
    for (i, g) in params.group_by.iter().enumerate() {
        let path = format!("group_by[{i}]");
        if g.is_empty() {
            errors.push(ActionError::param(path, "the attribute name is empty"));
        } else if names.contains(g) {
            errors.push(ActionError::param(path, format!("\"{g}\" is listed twice")));
        } else {
            names.push(g.clone());
        }
    }
    let mut aggregates = Vec::with_capacity(params.aggregates.len());
    let mut slots: Vec<String> = Vec::new();
    for (i, a) in params.aggregates.into_iter().enumerate() {
        let at = |field: &str| format!("aggregates[{i}].{field}");
        let op = AggOp::from_name(&a.op);
        if op.is_none() {
            let known: Vec<&str> = AggOp::ALL.iter().map(|o| o.name()).collect();
            errors.push(ActionError::param(
                at("op"),
                format!(
                    "unknown op \"{}\"; expected one of {}",
                    a.op,
                    known.join(", ")
                ),
            ));
        }
        let attribute = match (a.attribute, op) {
            (Some(n), _) if n.is_empty() => {
                errors.push(ActionError::param(
                    at("attribute"),
                    "the attribute name is empty",
                ));
                None
            }
            (None, Some(op)) if op != AggOp::Count => {
                errors.push(ActionError::param(
                    at("attribute"),
                    format!("`{}` needs an attribute", op.name()),
                ));
                None
            }
            (n, _) => n,
        };
        let p = match (op, a.p) {
            (Some(AggOp::Percentile), None) => {
                errors.push(ActionError::param(
                    at("p"),
                    "`percentile` needs `p`, a fraction in [0, 1] (0.9 for the 90th percentile)",
                ));
                0.5
            }
            (Some(AggOp::Percentile), Some(p)) if !(0.0..=1.0).contains(&p) => {
                errors.push(ActionError::param(
                    at("p"),
                    format!("p must be in [0, 1] (0.9 for the 90th percentile), not {p}"),
                ));
                0.5
            }
            (Some(op), Some(_)) if op != AggOp::Percentile => {
                errors.push(ActionError::param(
                    at("p"),
                    format!("only `percentile` takes `p`, not `{}`", op.name()),
                ));
                0.5
            }
            (_, p) => p.unwrap_or(0.5),
        };
        let output = match (&a.output, &attribute, op) {
            (Some(o), _, _) => Some(o.clone()),
            (None, Some(n), Some(op)) => Some(format!("{}_{n}", op.name())),
            (None, None, Some(AggOp::Count)) => Some("count".to_string()),
            _ => None,
        };
        if let Some(output) = output {
            if output.is_empty() || names.contains(&output) {
                let path = if a.output.is_some() {
                    at("as")
                } else {
                    format!("aggregates[{i}]")
                };
                let message = if output.is_empty() {
                    "the output name is empty".to_string()
                } else {
                    format!("the output name \"{output}\" is already used; set another with `as`")
                };
                errors.push(ActionError::param(path, message));
            }
            names.push(output);
        }
        let (Some(op), true) = (op, attribute.is_some() || op == Some(AggOp::Count)) else {
            continue;
        };
        let slot = match &attribute {
            Some(n) if op.is_ranked() => {
                Some(slots.iter().position(|s| s == n).unwrap_or_else(|| {
                    slots.push(n.clone());
                    slots.len() - 1
                }))
            }
            _ => None,
        };
        aggregates.push(Agg {
            op,
            attribute,
            p,
            slot,
        });
    }
    ActionError::collect(errors)?;
    let ops: Vec<AggOp> = aggregates.iter().map(|a| a.op).collect();
    let stats = Statistics {
        layout: Layout::new(params.group_by.len(), aggregates.len()),
        group_by: params.group_by,
        aggregates,
        ops,
        slots,
        output: Schema::new(names),
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
    /// The percentile (0.5 for `median`).
    p: f64,
    /// For a ranked op: the held-value list it ranks.
    slot: Option<usize>,
}

/// What is resolved once per input schema: the group key, each aggregate's column and each
/// slot's column.
struct Plan {
    key: KeyPlan,
    /// Per aggregate: its column (`None`: a row count, `Some(None)`: a missing attribute).
    columns: Vec<Option<Option<usize>>>,
    /// Per slot: its column (`None`: a missing attribute).
    slots: Vec<Option<usize>>,
}

/// One group: its values (the first seen), a state per aggregate and, per slot, the values
/// held for the ranked ops.
struct Group {
    key: Box<[Value]>,
    states: Vec<State>,
    values: Vec<Vec<Value>>,
    /// Bytes a spilled value row of this group costs beyond the value
    /// ([`Layout::value_row_bytes`]).
    row_bytes: usize,
}

/// How often (in groups or rows) long loops check for cancellation.
const CANCEL_CHECK_EVERY: usize = 4096;

struct Statistics {
    group_by: Vec<String>,
    aggregates: Vec<Agg>,
    /// Each aggregate's op (to read spilled states with).
    ops: Vec<AggOp>,
    /// The attributes whose values the ranked ops hold, one list per attribute.
    slots: Vec<String>,
    /// The output schema: group attributes, then aggregates.
    output: Arc<Schema>,
    /// The spill format.
    layout: Layout,
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
                let group = self.new_group(Box::new([]));
                self.emit_held(group, &mut next_id, out)?;
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
                self.emit_held(group, &mut next_id, out)?;
            }
        } else {
            self.finish_spilled(runs, tail, &mut next_id, ctx, out)?;
        }
        if let Some(mut r) = self.reservation.take() {
            r.free();
        }
        Ok(())
    }
}

/// The group being assembled from a merged spill: its combined states, then its ranked
/// values as they stream past.
struct Merging {
    group: Group,
    /// Built when the first value arrives (the states are complete then).
    picks: Option<Vec<Option<Pick>>>,
    /// The slot of the last value, and the next rank in it.
    slot: usize,
    rank: u64,
}

impl Statistics {
    /// An empty group with key `key`.
    fn new_group(&self, key: Box<[Value]>) -> Group {
        Group {
            row_bytes: if self.slots.is_empty() {
                0
            } else {
                self.layout.value_row_bytes(&key)
            },
            key,
            states: self.aggregates.iter().map(|a| State::new(a.op)).collect(),
            values: vec![Vec::new(); self.slots.len()],
        }
    }

    /// Adds one feature to its group, spilling first when the group cannot be held.
    fn add(&mut self, feature: &Feature, ctx: &NodeContext) -> Result<(), ActionError> {
        let (group_by, aggregates, slots) = (&self.group_by, &self.aggregates, &self.slots);
        let p = self.plans.index(feature.schema(), |s| Plan {
            key: KeyPlan::new(group_by, s),
            columns: aggregates
                .iter()
                .map(|a| a.attribute.as_ref().map(|n| s.index_of(n)))
                .collect(),
            slots: slots.iter().map(|n| s.index_of(n)).collect(),
        });
        let plan = self.plans.at(p);
        let values = feature.values();
        let hash = plan.key.hash(values);
        let at = match self.groups.find(hash, |g| plan.key.matches(&g.key, values)) {
            Some(at) => at,
            None => {
                let group = self.new_group(plan.key.to_key(values));
                let bytes = TABLE_ENTRY_BYTES
                    + std::mem::size_of::<Group>()
                    + group.key.iter().map(|v| 24 + v.heap_size()).sum::<usize>()
                    + group.states.len() * std::mem::size_of::<State>()
                    + group.values.len() * std::mem::size_of::<Vec<Value>>();
                let reservation = self
                    .reservation
                    .get_or_insert_with(|| ctx.budget.register(&ctx.node_id));
                if !reservation.try_grow(bytes) {
                    spill(
                        &mut self.groups,
                        &self.layout,
                        &mut self.runs,
                        reservation,
                        ctx,
                    )?;
                    reservation.grow(bytes)?;
                }
                self.groups.insert(hash, group)?
            }
        };
        let group = self.groups.get_mut(at);
        let mut grew = 0;
        for (i, (state, column)) in group.states.iter_mut().zip(&plan.columns).enumerate() {
            let value = column.map(|c| c.map_or(&NULL, |c| &values[c]));
            let agg = &self.aggregates[i];
            grew += state.add(agg.op, value).map_err(|NotANumber| {
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
        for (held, column) in group.values.iter_mut().zip(&plan.slots) {
            let value = column.map_or(&NULL, |c| &values[c]);
            if !value.is_null() {
                let capacity = held.capacity();
                held.push(value.clone());
                grew += (held.capacity() - capacity) * std::mem::size_of::<Value>()
                    + value.heap_size()
                    + group.row_bytes;
            }
        }
        if grew > 0 {
            let reservation = self
                .reservation
                .get_or_insert_with(|| ctx.budget.register(&ctx.node_id));
            if !reservation.try_grow(grew) {
                spill(
                    &mut self.groups,
                    &self.layout,
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

    /// The ranked ops' picks for a group whose states are complete.
    fn picks(&self, states: &[State]) -> Vec<Option<Pick>> {
        self.aggregates
            .iter()
            .zip(states)
            .map(|(a, s)| match a.op {
                AggOp::Median | AggOp::Percentile => Some(Pick::percentile(a.p, s.held())),
                AggOp::CountDistinct => Some(Pick::distinct()),
                _ => None,
            })
            .collect()
    }

    /// Feeds the value of rank `rank` in slot `slot` to the ranked ops on that slot.
    fn feed(&self, picks: &mut [Option<Pick>], slot: usize, rank: u64, value: &Value) {
        for (agg, pick) in self.aggregates.iter().zip(picks) {
            if let (Some(s), Some(pick)) = (agg.slot, pick)
                && s == slot
            {
                pick.feed(rank, value);
            }
        }
    }

    /// Emits a group held in memory: ranks its held values, then emits it.
    fn emit_held(
        &self,
        mut group: Group,
        next_id: &mut u64,
        out: &mut Emitter,
    ) -> Result<(), ActionError> {
        let mut picks = self.picks(&group.states);
        for (slot, held) in group.values.iter_mut().enumerate() {
            held.sort_unstable_by(Value::total_cmp);
            for (rank, v) in held.iter().enumerate() {
                self.feed(&mut picks, slot, rank as u64, v);
            }
        }
        self.emit(group, &picks, next_id, out)
    }

    /// Emits a finished group.
    fn emit(
        &self,
        group: Group,
        picks: &[Option<Pick>],
        next_id: &mut u64,
        out: &mut Emitter,
    ) -> Result<(), ActionError> {
        let mut values: Vec<Value> = Vec::with_capacity(self.output.len());
        values.extend(group.key.into_vec());
        for ((s, a), pick) in group.states.iter().zip(&self.aggregates).zip(picks) {
            values.push(match pick {
                Some(pick) => pick.result(),
                None => s.finish(a.op),
            });
        }
        let id = *next_id;
        *next_id += 1;
        out.emit(Feature::new(id, self.output.clone(), values))
    }

    /// Emits a group assembled from the merged spill.
    fn emit_merged(
        &self,
        done: Merging,
        next_id: &mut u64,
        out: &mut Emitter,
    ) -> Result<(), ActionError> {
        let picks = done.picks.unwrap_or_else(|| self.picks(&done.group.states));
        self.emit(done.group, &picks, next_id, out)
    }

    /// `finish` after a spill: merges the runs (and the groups still held, written as the
    /// last run) and emits each group as its rows go past.
    fn finish_spilled(
        &mut self,
        mut runs: Vec<SpillRun>,
        tail: Vec<Group>,
        next_id: &mut u64,
        ctx: &NodeContext,
        out: &mut Emitter,
    ) -> Result<(), ActionError> {
        // The groups still held become the last run, so the merge has the budget for its
        // buffers.
        if !tail.is_empty() {
            let mut rows = Vec::new();
            for group in tail {
                self.layout.push_rows(group, &mut rows);
            }
            runs.push(write_run(&ctx.spill, &ctx.node_id, rows)?);
        }
        if let Some(r) = &mut self.reservation {
            r.free();
        }
        let space = MergeSpace {
            budget: &ctx.budget,
            dir: &ctx.spill,
            name: &ctx.node_id,
        };
        let layout = &self.layout;
        let merged = merge_bounded(space, runs, Vec::new(), |a, b| layout.cmp(a, b))?;
        let damaged = || {
            ActionError::data(
                None,
                "a spilled partial of statistics is damaged".to_string(),
            )
        };
        let k = self.layout.k;
        let mut current: Option<Merging> = None;
        for (i, row) in merged.enumerate() {
            if i % CANCEL_CHECK_EVERY == 0 {
                ctx.check_cancelled()?;
            }
            match self
                .layout
                .read(row?, &self.ops, self.slots.len())
                .ok_or_else(damaged)?
            {
                Row::Partial(group) => match &mut current {
                    Some(c)
                        if c.picks.is_none()
                            && cmp_keys(c.group.key.iter(), group.key.iter())
                                == Ordering::Equal =>
                    {
                        for (s, later) in c.group.states.iter_mut().zip(group.states) {
                            s.combine(later);
                        }
                    }
                    _ => {
                        let next = Merging {
                            group,
                            picks: None,
                            slot: 0,
                            rank: 0,
                        };
                        if let Some(done) = current.replace(next) {
                            self.emit_merged(done, next_id, out)?;
                        }
                    }
                },
                Row::Value { slot, row } => {
                    let c = current
                        .as_mut()
                        .filter(|c| {
                            cmp_keys(c.group.key.iter(), row.values()[..k].iter())
                                == Ordering::Equal
                        })
                        .ok_or_else(damaged)?;
                    let picks = c.picks.get_or_insert_with(|| self.picks(&c.group.states));
                    if slot != c.slot {
                        c.slot = slot;
                        c.rank = 0;
                    }
                    self.feed(picks, slot, c.rank, &row.values()[k + 1]);
                    c.rank += 1;
                }
            }
        }
        if let Some(done) = current {
            self.emit_merged(done, next_id, out)?;
        }
        Ok(())
    }
}

/// Writes every held group, sorted by key, to a spill run and frees the reservation.
fn spill(
    groups: &mut KeyTable<Group>,
    layout: &Layout,
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
    let mut rows = Vec::with_capacity(held.len());
    for group in held {
        layout.push_rows(group, &mut rows);
    }
    runs.push(write_run(&ctx.spill, &ctx.node_id, rows)?);
    reservation.free();
    Ok(())
}

#[cfg(test)]
mod tests;
