//! `dedup`: passes the first feature of each key; later ones go to `duplicates`.
//!
//! ```yaml
//! - id: unique_customers
//!   action: dedup
//!   with:
//!     by: [email, country]
//!     keep: first
//! ```
//!
//! - The key is the `by` attributes (a missing attribute counts as null), or, with `by` empty
//!   (the default), every attribute: then two features are duplicates when they have the same
//!   attribute names (in any order) with equal values. Geometries are not compared.
//! - Values compare with [`Value::total_cmp`](sluice_runtime::Value::total_cmp): the int `1`
//!   and the float `1.0` are equal; null equals null.
//! - `keep: first` (the only mode): the first feature of a key in arrival order goes to
//!   `default`, every later one to `duplicates`. Both ports keep arrival order.
//! - Features pass unchanged. Attributes named `__sluice_dedup_seq` or
//!   `__sluice_dedup_state` are reserved (used while spilling): a feature with one fails the
//!   run.
//!
//! # Memory and spilling
//!
//! While the keys seen fit the budget, dedup streams: each feature leaves at once, and only a
//! copy of each distinct key is held (each reserved from the run's budget). When a key cannot
//! be reserved, dedup switches to spilling:
//!
//! 1. the keys seen so far are written to a sorted spill run as "markers" (each with the
//!    arrival number of its first feature) and freed;
//! 2. every later feature is held, tagged with its arrival number; when the budget is full
//!    the held features are sorted by (key, arrival) and written to a spill run;
//! 3. in `finish`, the runs are merged by (key, arrival): in each key, the first feature wins
//!    unless a marker precedes it (its key was already passed), the others are duplicates;
//!    the decided features are written to a second set of runs sorted by arrival, and those
//!    are merged and emitted, so each port keeps arrival order.
//!
//! The output is therefore the same as without spilling (only when features leave changes).

use std::collections::HashMap;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::Deserialize;
use sluice_runtime::action::schema_of;
use sluice_runtime::memory::Reservation;
use sluice_runtime::shape::{Shape, ShapeContext};
use sluice_runtime::{
    ActionError, ActionKind, ActionSpec, Batch, BuildContext, BuiltAction, DEFAULT_PORT, Emitter,
    NodeContext, NodeImpl, Processor, Schema, Value,
};

use super::keys::{Hidden, KeyPlan, KeyTable, SchemaCache, TABLE_ENTRY_BYTES};

mod spill;

/// The port of later features of a key.
pub const DUPLICATES_PORT: &str = "duplicates";
/// The index of [`DUPLICATES_PORT`] in the output list.
const DUPLICATES: usize = 1;

/// Hidden column: the arrival number.
const SEQ: &str = "__sluice_dedup_seq";
/// Hidden column: what is known of a held feature (see `spill.rs`).
const STATE: &str = "__sluice_dedup_state";

/// Parameters of `dedup`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DedupParams {
    /// The attributes forming the key. Empty (the default): every attribute.
    #[serde(default)]
    pub by: Vec<String>,
    /// Which feature of a key passes: `first` (in arrival order).
    #[serde(default)]
    pub keep: Keep,
}

/// Which feature of a key passes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Keep {
    /// The first in arrival order.
    #[default]
    First,
}

/// The `dedup` action.
pub const SPEC: ActionSpec = ActionSpec::new(
    "dedup",
    ActionKind::Processor,
    "Passes the first feature of each key (some attributes, or all); later ones go to `duplicates`.",
    schema_of::<DedupParams>,
    build,
)
.shape(shape)
.outputs(&[DEFAULT_PORT, DUPLICATES_PORT])
.accumulates()
.heavy_finish()
.groups_by(key_hash)
.example("by: [email, country]\nkeep: first\n");

/// The hash of a feature's key, for a partitioned run that splits the input by key.
fn key_hash(
    params: &serde_json::Value,
    _port: usize,
) -> Result<Option<sluice_runtime::action::FeatureHasher>, ActionError> {
    let p: DedupParams = BuildContext {
        node_id: "",
        params,
    }
    .params()?;
    Ok(Some(super::keys::feature_hasher(p.by)))
}

/// Both ports carry the features as they are; the key must name attributes.
fn shape(ctx: &ShapeContext) -> Result<Vec<Shape>, ActionError> {
    let p: DedupParams = ctx.params()?;
    let input = ctx.input(0);
    for (i, name) in p.by.iter().enumerate() {
        ctx.attribute(&format!("by[{i}]"), name, &input);
    }
    Ok(ctx.pass(input))
}

fn build(ctx: &BuildContext) -> Result<BuiltAction, ActionError> {
    let params: DedupParams = ctx.params()?;
    for (i, name) in params.by.iter().enumerate() {
        let path = format!("by[{i}]");
        if name.is_empty() {
            return Err(ActionError::param(path, "the attribute name is empty"));
        }
        if params.by[..i].contains(name) {
            return Err(ActionError::param(
                path,
                format!("\"{name}\" is listed twice"),
            ));
        }
        if name == SEQ || name == STATE {
            return Err(ActionError::param(
                path,
                format!("the attribute name \"{name}\" is reserved"),
            ));
        }
    }
    let Keep::First = params.keep;
    Ok(BuiltAction::new(NodeImpl::Processor(Box::new(Dedup {
        keys: Keys {
            by: params.by,
            lists: HashMap::new(),
            list_names: Vec::new(),
        },
        plans: SchemaCache::default(),
        seen: KeyTable::default(),
        next_seq: 0,
        spill: None,
        hidden: Hidden::new([SEQ, STATE]),
        reservation: None,
    }))))
}

// ---------------------------------------------------------------------------------------------
// Keys
// ---------------------------------------------------------------------------------------------

/// How keys are read from features.
struct Keys {
    by: Vec<String>,
    /// Without `by`: each distinct (sorted) attribute name list and its tag, the key's first
    /// value.
    lists: HashMap<Vec<Arc<str>>, i64>,
    /// The name lists by tag.
    list_names: Vec<Vec<Arc<str>>>,
}

impl Keys {
    /// Without `by`: gives `schema`'s attribute name list a tag if it has none yet.
    fn register(&mut self, schema: &Schema) {
        if !self.by.is_empty() {
            return;
        }
        let mut sorted: Vec<Arc<str>> = schema.names().to_vec();
        sorted.sort();
        if !self.lists.contains_key(&sorted) {
            let t = self.list_names.len() as i64;
            self.list_names.push(sorted.clone());
            self.lists.insert(sorted, t);
        }
    }

    /// The key plan of `schema`, ignoring its last `hidden` attributes. Without `by`, the
    /// first key value is the tag of the sorted attribute names (null if never registered).
    fn plan(&self, schema: &Schema, hidden: usize) -> KeyPlan {
        if !self.by.is_empty() {
            return KeyPlan::new(&self.by, schema);
        }
        let names = &schema.names()[..schema.len().saturating_sub(hidden)];
        let mut order: Vec<usize> = (0..names.len()).collect();
        order.sort_by(|&a, &b| names[a].cmp(&names[b]));
        let sorted: Vec<Arc<str>> = order.iter().map(|&i| names[i].clone()).collect();
        let tag = self
            .lists
            .get(&sorted)
            .map_or(Value::Null, |&t| Value::Int(t));
        KeyPlan::with_columns(Some(tag), order)
    }

    /// The attribute names of a marker for `key` (see the module docs).
    fn marker_names(&self, key: &[Value]) -> Vec<Arc<str>> {
        match key.first() {
            Some(Value::Int(t)) if self.by.is_empty() => self
                .list_names
                .get(*t as usize)
                .cloned()
                .unwrap_or_default(),
            _ => self.by.iter().map(|n| Arc::from(n.as_str())).collect(),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Runtime
// ---------------------------------------------------------------------------------------------

/// A key passed while streaming, and the arrival number of its first feature.
struct Seen {
    key: Box<[Value]>,
    seq: u64,
}

struct Dedup {
    keys: Keys,
    /// Per input schema: its key plan (after checking it has no reserved name).
    plans: SchemaCache<Result<KeyPlan, &'static str>>,
    seen: KeyTable<Seen>,
    next_seq: u64,
    /// Set once the keys no longer fit: what is held and spilled.
    spill: Option<spill::Spilling>,
    hidden: Hidden<2>,
    reservation: Option<Reservation>,
}

impl Processor for Dedup {
    fn process(
        &mut self,
        _input: usize,
        batch: Batch,
        ctx: &NodeContext,
        out: &mut Emitter,
    ) -> Result<(), ActionError> {
        for feature in batch {
            let seq = self.next_seq;
            self.next_seq += 1;
            let (keys, hidden) = (&mut self.keys, &self.hidden);
            let p = self
                .plans
                .index(feature.schema(), |s| match hidden.clash(s) {
                    Some(name) => Err(name),
                    None => {
                        keys.register(s);
                        Ok(keys.plan(s, 0))
                    }
                });
            let plan = match self.plans.at(p) {
                Ok(plan) => plan,
                Err(name) => {
                    return Err(ActionError::data(
                        None,
                        format!(
                            "feature {}: the attribute name \"{name}\" is reserved by dedup",
                            feature.id()
                        ),
                    ));
                }
            };
            if let Some(spilling) = &mut self.spill {
                spilling.hold(feature, seq, &self.keys, &mut self.hidden, ctx)?;
                continue;
            }
            let values = feature.values();
            let hash = plan.hash(values);
            if self
                .seen
                .find(hash, |s| plan.matches(&s.key, values))
                .is_some()
            {
                out.emit_to(DUPLICATES, feature)?;
                continue;
            }
            let key = plan.to_key(values);
            let bytes = TABLE_ENTRY_BYTES
                + std::mem::size_of::<Seen>()
                + key.iter().map(|v| 24 + v.heap_size()).sum::<usize>();
            let reservation = self
                .reservation
                .get_or_insert_with(|| ctx.budget.register(&ctx.node_id));
            if reservation.try_grow(bytes) {
                self.seen.insert(hash, Seen { key, seq })?;
                out.emit(feature)?;
                continue;
            }
            // The keys no longer fit: spill them as markers and hold from here on.
            let mut spilling = spill::Spilling::default();
            spilling.write_markers(self.seen.take_entries(), &self.keys, ctx)?;
            reservation.free();
            spilling.hold(feature, seq, &self.keys, &mut self.hidden, ctx)?;
            self.spill = Some(spilling);
        }
        Ok(())
    }

    fn finish(&mut self, ctx: &NodeContext, out: &mut Emitter) -> Result<(), ActionError> {
        self.seen.take_entries();
        if let Some(mut r) = self.reservation.take() {
            r.free();
        }
        match self.spill.take() {
            Some(spilling) => spilling.finish(&self.keys, &mut self.hidden, ctx, out),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests;
