//! `counter`: numbers features in arrival order, overall or per group.
//!
//! ```yaml
//! - id: number
//!   action: counter
//!   with:
//!     attribute: rank_in_city
//!     group_by: [city]
//!     start: 1
//! ```
//!
//! - Each feature gets `attribute` (an int; an existing attribute of that name is
//!   overwritten) = `start` for the first feature of its group, `start + 1` for the next...
//!   Without `group_by`, all features form one group.
//! - Groups compare their values with [`Value::total_cmp`]: the int `1` and the float `1.0` are
//!   one group, and null (or a missing attribute) is a group value like any other.
//! - Features leave at once, in arrival order; only the counters are held.
//!
//! # Memory
//!
//! One counter per group, each with a copy of its group values. Each new group reserves its
//! bytes from the run's budget first; when the budget is full the node fails with
//! [`ActionError::MemoryExhausted`] (a running count cannot be spilled).

use std::sync::Arc;

use schemars::JsonSchema;
use serde::Deserialize;
use sluice_runtime::action::schema_of;
use sluice_runtime::memory::Reservation;
use sluice_runtime::shape::{Shape, ShapeContext, Type};
use sluice_runtime::{
    ActionError, ActionKind, ActionSpec, Batch, BuildContext, BuiltAction, Emitter, NodeContext,
    NodeImpl, Processor, Schema, Value,
};

use super::keys::{KeyPlan, KeyTable, SchemaCache, TABLE_ENTRY_BYTES};

/// Parameters of `counter`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CounterParams {
    /// The attribute that receives the count.
    #[serde(default = "default_attribute")]
    pub attribute: String,
    /// Attributes whose values form the groups counted separately (none: one group).
    #[serde(default)]
    pub group_by: Vec<String>,
    /// The count of the first feature of a group.
    #[serde(default = "one")]
    pub start: i64,
}

fn default_attribute() -> String {
    "count".to_string()
}

fn one() -> i64 {
    1
}

/// The `counter` action.
pub const SPEC: ActionSpec = ActionSpec::new(
    "counter",
    ActionKind::Processor,
    "Writes a running count (per group with group_by) onto each feature, in arrival order.",
    schema_of::<CounterParams>,
    build,
)
.shape(shape)
.example("attribute: rank_in_city\ngroup_by: [city]\nstart: 1\n");

/// The input's attributes and the count (an int, in place when it exists already).
fn shape(ctx: &ShapeContext) -> Result<Vec<Shape>, ActionError> {
    let p: CounterParams = ctx.params()?;
    let mut s = ctx.input(0);
    for (i, name) in p.group_by.iter().enumerate() {
        ctx.attribute(&format!("group_by[{i}]"), name, &s);
    }
    s.set(&p.attribute, Type::Int);
    Ok(ctx.pass(s))
}

fn build(ctx: &BuildContext) -> Result<BuiltAction, ActionError> {
    let params: CounterParams = ctx.params()?;
    if params.attribute.is_empty() {
        return Err(ActionError::param(
            "attribute",
            "the attribute name is empty",
        ));
    }
    for (i, g) in params.group_by.iter().enumerate() {
        if g.is_empty() {
            return Err(ActionError::param(
                format!("group_by[{i}]"),
                "the attribute name is empty",
            ));
        }
    }
    Ok(BuiltAction::new(NodeImpl::Processor(Box::new(Counter {
        attribute: params.attribute,
        group_by: params.group_by,
        start: params.start,
        single: 0,
        groups: KeyTable::default(),
        plans: SchemaCache::default(),
        reservation: None,
    }))))
}

// ---------------------------------------------------------------------------------------------
// Runtime
// ---------------------------------------------------------------------------------------------

/// What the counter resolves once per input schema.
struct Plan {
    key: KeyPlan,
    /// The output schema and where the count goes in it.
    output: Arc<Schema>,
    slot: usize,
}

struct Counter {
    attribute: String,
    group_by: Vec<String>,
    start: i64,
    /// Features counted so far when there is no `group_by`.
    single: i64,
    /// Per group: its values and the features counted so far.
    groups: KeyTable<(Box<[Value]>, i64)>,
    plans: SchemaCache<Plan>,
    reservation: Option<Reservation>,
}

impl Processor for Counter {
    fn process(
        &mut self,
        _input: usize,
        batch: Batch,
        ctx: &NodeContext,
        out: &mut Emitter,
    ) -> Result<(), ActionError> {
        for mut feature in batch {
            let (attribute, group_by) = (&self.attribute, &self.group_by);
            let p = self.plans.index(feature.schema(), |s| {
                let output = match s.index_of(attribute) {
                    Some(_) => s.clone(),
                    None => s.with(attribute),
                };
                Plan {
                    key: KeyPlan::new(group_by, s),
                    slot: output.index_of(attribute).unwrap_or(0),
                    output,
                }
            });
            let plan = self.plans.at(p);
            let seen = if self.group_by.is_empty() {
                let n = self.single;
                self.single += 1;
                n
            } else {
                let values = feature.values();
                let hash = plan.key.hash(values);
                match self
                    .groups
                    .find(hash, |(key, _)| plan.key.matches(key, values))
                {
                    Some(at) => {
                        let entry = self.groups.get_mut(at);
                        entry.1 += 1;
                        entry.1 - 1
                    }
                    None => {
                        let key = plan.key.to_key(values);
                        let bytes = TABLE_ENTRY_BYTES
                            + 24
                            + key.iter().map(|v| 24 + v.heap_size()).sum::<usize>();
                        self.reservation
                            .get_or_insert_with(|| ctx.budget.register(&ctx.node_id))
                            .grow(bytes)?;
                        self.groups.insert(hash, (key, 1))?;
                        0
                    }
                }
            };
            let count = self.start.checked_add(seen).ok_or_else(|| {
                ActionError::data(
                    None,
                    format!("feature {}: the count overflows a 64-bit int", feature.id()),
                )
            })?;
            if Arc::ptr_eq(&plan.output, feature.schema()) {
                feature.values_mut()[plan.slot] = Value::Int(count);
            } else {
                let mut values = Vec::with_capacity(plan.output.len());
                values.extend(feature.values_mut().iter_mut().map(std::mem::take));
                values.resize(plan.output.len(), Value::Null);
                values[plan.slot] = Value::Int(count);
                feature.reshape(plan.output.clone(), values);
            }
            out.emit(feature)?;
        }
        Ok(())
    }

    fn finish(&mut self, _ctx: &NodeContext, _out: &mut Emitter) -> Result<(), ActionError> {
        self.groups.take_entries();
        if let Some(mut r) = self.reservation.take() {
            r.free();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_runtime::memory::MemoryBudget;
    use sluice_runtime::testing::{build_processor, drive};
    use sluice_runtime::{Feature, Schema};

    fn run(
        params: serde_json::Value,
        batches: Vec<Batch>,
        ctx: &NodeContext,
    ) -> Result<Vec<Feature>, ActionError> {
        let mut counter = build_processor(&SPEC, params)?;
        let batches = batches.into_iter().map(|b| (0, b));
        Ok(drive(&mut *counter, batches, ctx, SPEC.outputs)?.remove(0))
    }

    fn cities() -> Vec<Feature> {
        let schema = Schema::new(["city"]);
        [
            Value::from("oslo"),
            Value::Int(1),
            Value::from("rome"),
            Value::Float(1.0),
            Value::from("oslo"),
            Value::Null,
        ]
        .into_iter()
        .enumerate()
        .map(|(i, c)| Feature::new(i as u64, schema.clone(), vec![c]))
        .chain([Feature::from_pairs(6, [("other", Value::Int(0))])])
        .collect()
    }

    fn counts(fs: &[Feature], attribute: &str) -> Vec<i64> {
        fs.iter()
            .map(|f| match f.get(attribute) {
                Some(Value::Int(i)) => *i,
                other => panic!("{other:?}"),
            })
            .collect()
    }

    #[test]
    fn counts_overall_from_start_across_batches() {
        let ctx = NodeContext::standalone("t");
        let mut input = cities();
        let second = input.split_off(4);
        let out = run(serde_json::json!({"start": 0}), vec![input, second], &ctx).unwrap();
        assert_eq!(counts(&out, "count"), [0, 1, 2, 3, 4, 5, 6]);
        assert_eq!(
            out.iter().map(|f| f.id()).collect::<Vec<_>>(),
            [0, 1, 2, 3, 4, 5, 6]
        );
        assert!(Arc::ptr_eq(out[0].schema(), out[5].schema()));
        assert_eq!(out[0].schema().names().len(), 2);
    }

    #[test]
    fn counts_per_group_with_equal_numbers_and_nulls_grouped() {
        let ctx = NodeContext::standalone("t");
        let out = run(
            serde_json::json!({"attribute": "n", "group_by": ["city"]}),
            vec![cities()],
            &ctx,
        )
        .unwrap();
        // oslo 1, int 1 -> 1, rome 1, float 1.0 joins int 1 -> 2, oslo 2, null 1, missing
        // (null) 2.
        assert_eq!(counts(&out, "n"), [1, 1, 1, 2, 2, 1, 2]);
        assert!(ctx.budget.reserved_by("t") == 0);
    }

    #[test]
    fn an_existing_attribute_is_overwritten_in_place() {
        let ctx = NodeContext::standalone("t");
        let schema = Schema::new(["count", "x"]);
        let input = vec![Feature::new(
            0,
            schema.clone(),
            vec!["old".into(), Value::Int(5)],
        )];
        let out = run(serde_json::json!({}), vec![input], &ctx).unwrap();
        assert!(Arc::ptr_eq(out[0].schema(), &schema));
        assert_eq!(out[0].values(), [Value::Int(1), Value::Int(5)]);
    }

    #[test]
    fn a_full_budget_fails_with_memory_exhausted_and_frees_on_drop() {
        let mut ctx = NodeContext::standalone("t");
        ctx.budget = MemoryBudget::new(200);
        let schema = Schema::new(["g"]);
        let input = (0..100)
            .map(|i| Feature::new(i, schema.clone(), vec![Value::Int(i as i64)]))
            .collect();
        let err = run(serde_json::json!({"group_by": ["g"]}), vec![input], &ctx).unwrap_err();
        assert!(
            matches!(err, ActionError::MemoryExhausted { .. }),
            "{err:?}"
        );
        assert_eq!(ctx.budget.reserved(), 0);
    }

    #[test]
    fn bad_parameters_are_located() {
        let path = |p: serde_json::Value| match build_processor(&SPEC, p) {
            Err(ActionError::Param { path, .. }) => path,
            Err(e) => panic!("{e:?}"),
            Ok(_) => panic!("expected an error"),
        };
        assert_eq!(path(serde_json::json!({"attribute": ""})), "attribute");
        assert_eq!(
            path(serde_json::json!({"group_by": ["a", ""]})),
            "group_by[1]"
        );
        assert_eq!(path(serde_json::json!({"start": "one"})), "start");
    }
}
