//! `join`: joins requestor features to the supplier features with equal keys.
//!
//! ```yaml
//! - id: with_customer
//!   action: join
//!   with:
//!     requestor_key: [customer_id]
//!     supplier_key: [id]
//!     mode: left
//!     prefix: customer_
//! ```
//!
//! Edges: `orders -> with_customer.requestor` (the default input) and
//! `customers -> with_customer.supplier`.
//!
//! - Keys: `requestor_key[i]` of a requestor is compared with `supplier_key[i]` of a supplier
//!   (same length) using [`Value::total_cmp`](sluice_runtime::Value::total_cmp) equality: the
//!   int `1` and the float `1.0` match. A key with a null (or missing) value never matches.
//! - One to many: a requestor joins EVERY supplier with its key, giving one joined feature per
//!   pair (a cross product per key).
//! - Joined features: the requestor's id and geometry (the supplier's geometry when the
//!   requestor has none); the requestors' attributes, then the suppliers' (see `join/shape.rs`):
//!   every feature on `joined` has the same attributes. A supplier attribute whose name is
//!   taken is renamed `<prefix><name>` (default prefix `supplier_`); a supplier key attribute
//!   with the same name as its requestor key is left out (the values are equal).
//! - Unmatched features, by `mode`:
//!
//! | mode | unmatched requestor | unmatched supplier |
//! |---|---|---|
//! | `inner` (default) | `unjoined_requestor`, unchanged | `unjoined_supplier`, unchanged |
//! | `left` | `joined`, supplier attributes null | `unjoined_supplier`, unchanged |
//! | `full` | `joined`, supplier attributes null | `joined`, requestor attributes null (merged keys filled) |
//!
//! - Order (deterministic): requestors in arrival order, each followed by its matches in
//!   supplier arrival order (or its unmatched output); then unmatched suppliers in arrival
//!   order.
//! - Attributes named `__sluice_join_a`, `__sluice_join_b` or `__sluice_join_c` are reserved
//!   (used while spilling): a feature with one fails the run.
//!
//! # Memory and spilling
//!
//! The executor gives no signal when one input closes, so both inputs are held until `finish`
//! (each feature's bytes reserved from the run's budget first), which then runs a hash join:
//! build on the suppliers, probe with the requestors in arrival order. Each requestor's bytes
//! go back to the budget as it leaves, so nodes downstream can use them.
//!
//! When the budget is full, everything held is sorted by (key, side, arrival) and written to
//! a spill run. `finish` then merges the runs and joins them key by key (holding the
//! suppliers of one key at a time); the results are written to a second set of runs sorted
//! by output position (requestor arrival, supplier arrival), merged, and emitted: the output
//! is the same as without spilling.

mod shape;
mod spill;

use schemars::JsonSchema;
use serde::Deserialize;
use sluice_runtime::action::schema_of;
use sluice_runtime::memory::{Reservation, SpillRun};
use sluice_runtime::shape::{Shape as PortShape, ShapeContext};
use sluice_runtime::{
    ActionError, ActionKind, ActionSpec, Batch, BuildContext, BuiltAction, Emitter, Feature,
    NodeContext, NodeImpl, Processor, Value,
};

use super::keys::{Hidden, KeyPlan, KeyTable, SchemaCache, TABLE_ENTRY_BYTES};
use shape::{NameUnion, Shape};

/// The input of the features that look for matches (the default input).
pub const REQUESTOR_PORT: &str = "requestor";
/// The input of the features that are looked up.
pub const SUPPLIER_PORT: &str = "supplier";
/// The output of joined (and, in left and full modes, padded) features.
pub const JOINED_PORT: &str = "joined";
/// The output of requestors that matched nothing (inner mode).
pub const UNJOINED_REQUESTOR_PORT: &str = "unjoined_requestor";
/// The output of suppliers that matched nothing (inner and left modes).
pub const UNJOINED_SUPPLIER_PORT: &str = "unjoined_supplier";

/// Hidden columns used while spilling.
const HIDDEN: [&str; 3] = ["__sluice_join_a", "__sluice_join_b", "__sluice_join_c"];

/// Parameters of `join`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JoinParams {
    /// The requestor attributes forming the key.
    #[schemars(length(min = 1))]
    pub requestor_key: Vec<String>,
    /// The supplier attributes compared with them, in the same order.
    #[schemars(length(min = 1))]
    pub supplier_key: Vec<String>,
    /// `inner`, `left` or `full`: where unmatched features go (see the action docs).
    #[serde(default)]
    pub mode: JoinMode,
    /// Put before a supplier attribute name that is already taken.
    #[serde(default = "default_prefix")]
    pub prefix: String,
}

fn default_prefix() -> String {
    "supplier_".to_string()
}

/// Where unmatched features go.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum JoinMode {
    /// Unmatched requestors and suppliers go to their `unjoined_*` ports.
    #[default]
    Inner,
    /// Unmatched requestors go to `joined` with null supplier attributes.
    Left,
    /// Unmatched requestors and suppliers both go to `joined`, padded with nulls.
    Full,
}

/// The `join` action.
pub const SPEC: ActionSpec = ActionSpec::new(
    "join",
    ActionKind::Processor,
    "Joins each requestor to every supplier with an equal key (inner, left or full).",
    schema_of::<JoinParams>,
    build,
)
.inputs(&[REQUESTOR_PORT, SUPPLIER_PORT])
.outputs(&[JOINED_PORT, UNJOINED_REQUESTOR_PORT, UNJOINED_SUPPLIER_PORT])
.accumulates()
.heavy_finish()
.groups_by(key_hash)
.shape(static_shape)
.example("requestor_key: [customer_id]\nsupplier_key: [id]\nmode: left\nprefix: customer_\n");

/// The hash of a feature's key on input `port` (the requestor's or the supplier's key
/// attributes), for a partitioned run that splits both inputs by key.
fn key_hash(
    params: &serde_json::Value,
    port: usize,
) -> Result<Option<sluice_runtime::action::FeatureHasher>, ActionError> {
    let p: JoinParams = BuildContext {
        node_id: "",
        params,
    }
    .params()?;
    let key = if port == 0 {
        p.requestor_key
    } else {
        p.supplier_key
    };
    Ok(Some(super::keys::feature_hasher(key)))
}

/// `joined` as `join/shape.rs` builds it; the unjoined ports carry their input as it is.
fn static_shape(ctx: &ShapeContext) -> Result<Vec<PortShape>, ActionError> {
    let p: JoinParams = ctx.params()?;
    let (requestor, supplier) = (ctx.input(0), ctx.input(1));
    for (i, name) in p.requestor_key.iter().enumerate() {
        ctx.attribute(&format!("requestor_key[{i}]"), name, &requestor);
    }
    for (i, name) in p.supplier_key.iter().enumerate() {
        ctx.attribute(&format!("supplier_key[{i}]"), name, &supplier);
    }
    let joined = shape::joined(
        &requestor,
        &supplier,
        &p.requestor_key,
        &p.supplier_key,
        &p.prefix,
        p.mode,
    );
    Ok(vec![joined, requestor, supplier])
}

fn build(ctx: &BuildContext) -> Result<BuiltAction, ActionError> {
    let params: JoinParams = ctx.params()?;
    for (field, key) in [
        ("requestor_key", &params.requestor_key),
        ("supplier_key", &params.supplier_key),
    ] {
        if key.is_empty() {
            return Err(ActionError::param(
                field,
                "at least one attribute is required",
            ));
        }
        for (i, name) in key.iter().enumerate() {
            if name.is_empty() {
                return Err(ActionError::param(
                    format!("{field}[{i}]"),
                    "the attribute name is empty",
                ));
            }
            if HIDDEN.contains(&name.as_str()) {
                return Err(ActionError::param(
                    format!("{field}[{i}]"),
                    format!("the attribute name \"{name}\" is reserved"),
                ));
            }
        }
    }
    if params.requestor_key.len() != params.supplier_key.len() {
        return Err(ActionError::param(
            "supplier_key",
            format!(
                "has {} attributes but requestor_key has {}; they are compared pairwise",
                params.supplier_key.len(),
                params.requestor_key.len()
            ),
        ));
    }
    if params.prefix.is_empty() {
        return Err(ActionError::param("prefix", "the prefix is empty"));
    }
    Ok(BuiltAction::new(NodeImpl::Processor(Box::new(Join {
        requestor_key: params.requestor_key,
        supplier_key: params.supplier_key,
        mode: params.mode,
        prefix: params.prefix,
        held: [Vec::new(), Vec::new()],
        arrived: [0, 0],
        unions: [NameUnion::default(), NameUnion::default()],
        plans: SchemaCache::default(),
        hidden: Hidden::new(HIDDEN),
        runs: Vec::new(),
        reservation: None,
    }))))
}

// ---------------------------------------------------------------------------------------------
// Runtime
// ---------------------------------------------------------------------------------------------

/// Input (and side) numbers.
const REQUESTOR: usize = 0;
const SUPPLIER: usize = 1;
/// Output port numbers.
const JOINED: usize = 0;
const UNJOINED_REQUESTOR: usize = 1;
const UNJOINED_SUPPLIER: usize = 2;

/// Bytes of bookkeeping per held feature beyond its own size.
const HELD_OVERHEAD: usize = 48;
/// How often (in features) long loops check for cancellation.
const CANCEL_CHECK_EVERY: usize = 4096;

/// Per schema: the key plan of each side, or the reserved name it has.
struct Plans {
    sides: [KeyPlan; 2],
    clash: Option<&'static str>,
}

struct Join {
    requestor_key: Vec<String>,
    supplier_key: Vec<String>,
    mode: JoinMode,
    prefix: String,
    /// Held features per side, in arrival order (since the last spill).
    held: [Vec<Feature>; 2],
    /// Features arrived per side.
    arrived: [u64; 2],
    /// Attribute names seen per side.
    unions: [NameUnion; 2],
    plans: SchemaCache<Plans>,
    hidden: Hidden<3>,
    runs: Vec<SpillRun>,
    reservation: Option<Reservation>,
}

impl Join {
    /// The plans of `f`'s schema.
    fn plans_of<'a>(
        plans: &'a mut SchemaCache<Plans>,
        keys: [&[String]; 2],
        hidden: &Hidden<3>,
        f: &Feature,
    ) -> &'a Plans {
        plans.get(f.schema(), |s| Plans {
            sides: [KeyPlan::new(keys[0], s), KeyPlan::new(keys[1], s)],
            clash: hidden.clash(s),
        })
    }

    /// Where an unmatched feature of `side` goes: the joined port (padded) or its own.
    fn unmatched_port(&self, side: usize) -> usize {
        match (self.mode, side) {
            (JoinMode::Full, _) | (JoinMode::Left, REQUESTOR) => JOINED,
            (_, REQUESTOR) => UNJOINED_REQUESTOR,
            _ => UNJOINED_SUPPLIER,
        }
    }

    fn shape(&mut self) -> Shape {
        let unions = std::mem::take(&mut self.unions);
        let [requestors, suppliers] = unions;
        Shape::new(
            requestors,
            suppliers,
            &self.requestor_key,
            &self.supplier_key,
            &self.prefix,
        )
    }

    /// The in-memory hash join of everything held (nothing was spilled).
    fn hash_join(&mut self, ctx: &NodeContext, out: &mut Emitter) -> Result<(), ActionError> {
        let mut shape = self.shape();
        let [requestors, suppliers] = std::mem::take(&mut self.held);
        let keys = [self.requestor_key.as_slice(), self.supplier_key.as_slice()];
        // Build: per key, its suppliers chained in arrival order.
        const END: u32 = u32::MAX;
        let mut table: KeyTable<(Box<[Value]>, u32, u32)> = KeyTable::default();
        let mut next = vec![END; suppliers.len()];
        for (i, s) in suppliers.iter().enumerate() {
            if i % CANCEL_CHECK_EVERY == 0 {
                ctx.check_cancelled()?;
            }
            let plan = &Self::plans_of(&mut self.plans, keys, &self.hidden, s).sides[SUPPLIER];
            let values = s.values();
            if plan.has_null(values) {
                continue;
            }
            let i = i as u32;
            let hash = plan.hash(values);
            match table.find(hash, |(k, _, _)| plan.matches(k, values)) {
                Some(at) => {
                    let entry = table.get_mut(at);
                    next[entry.2 as usize] = i;
                    entry.2 = i;
                }
                None => {
                    table.insert(hash, (plan.to_key(values), i, i))?;
                }
            }
        }
        // Probe, in requestor arrival order.
        let mut matched = vec![false; suppliers.len()];
        let unmatched = self.unmatched_port(REQUESTOR);
        for (i, r) in requestors.into_iter().enumerate() {
            if i % CANCEL_CHECK_EVERY == 0 {
                ctx.check_cancelled()?;
            }
            // Its bytes go back as it leaves, so nodes downstream can use them.
            if let Some(reservation) = &mut self.reservation {
                reservation.shrink(r.mem_size() + HELD_OVERHEAD);
            }
            let plan = &Self::plans_of(&mut self.plans, keys, &self.hidden, &r).sides[REQUESTOR];
            let values = r.values();
            let first = if plan.has_null(values) {
                None
            } else {
                table
                    .find(plan.hash(values), |(k, _, _)| plan.matches(k, values))
                    .map(|at| table.get_mut(at).1)
            };
            match first {
                Some(mut s) => {
                    while s != END {
                        matched[s as usize] = true;
                        out.emit_to(JOINED, shape.join(Some(&r), Some(&suppliers[s as usize])))?;
                        s = next[s as usize];
                    }
                }
                None if unmatched == JOINED => out.emit_to(JOINED, shape.join(Some(&r), None))?,
                None => out.emit_to(unmatched, r)?,
            }
        }
        drop(table);
        let unmatched = self.unmatched_port(SUPPLIER);
        for (s, matched) in suppliers.into_iter().zip(matched) {
            if matched {
                continue;
            }
            if unmatched == JOINED {
                out.emit_to(JOINED, shape.join(None, Some(&s)))?;
            } else {
                out.emit_to(unmatched, s)?;
            }
        }
        Ok(())
    }
}

impl Processor for Join {
    fn process(
        &mut self,
        input: usize,
        batch: Batch,
        ctx: &NodeContext,
        _out: &mut Emitter,
    ) -> Result<(), ActionError> {
        let side = if input == REQUESTOR {
            REQUESTOR
        } else {
            SUPPLIER
        };
        for feature in batch {
            let keys = [self.requestor_key.as_slice(), self.supplier_key.as_slice()];
            let plans = Self::plans_of(&mut self.plans, keys, &self.hidden, &feature);
            if let Some(name) = plans.clash {
                return Err(ActionError::data(
                    None,
                    format!(
                        "feature {}: the attribute name \"{name}\" is reserved by join",
                        feature.id()
                    ),
                ));
            }
            let mut bytes = feature.mem_size() + HELD_OVERHEAD;
            if side == SUPPLIER {
                // Its key is copied into the hash table in `finish`.
                bytes += TABLE_ENTRY_BYTES
                    + plans.sides[SUPPLIER]
                        .values(feature.values())
                        .map(|v| 24 + v.heap_size())
                        .sum::<usize>();
            }
            self.unions[side].add(feature.schema());
            let reservation = self
                .reservation
                .get_or_insert_with(|| ctx.budget.register(&ctx.node_id));
            if !reservation.try_grow(bytes) {
                spill::spill_held(self, ctx)?;
                let reservation = self
                    .reservation
                    .get_or_insert_with(|| ctx.budget.register(&ctx.node_id));
                reservation.grow(bytes)?;
            }
            self.held[side].push(feature);
            self.arrived[side] += 1;
        }
        Ok(())
    }

    fn finish(&mut self, ctx: &NodeContext, out: &mut Emitter) -> Result<(), ActionError> {
        let result = if self.runs.is_empty() {
            self.hash_join(ctx, out)
        } else {
            spill::sort_merge_join(self, ctx, out)
        };
        if let Some(mut r) = self.reservation.take() {
            r.free();
        }
        result
    }
}

#[cfg(test)]
mod tests;
