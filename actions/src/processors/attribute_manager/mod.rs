//! `attribute_manager`: sets, renames, removes, converts and keeps attributes.
//!
//! ```yaml
//! - id: tidy
//!   action: attribute_manager
//!   with:
//!     operations:
//!       - { op: convert, attribute: population, to: int }
//!       - { op: set, attribute: density, expression: population / area }
//!       - { op: rename, from: nom, to: name }
//!       - { op: remove, attributes: [tmp, debug] }
//!       - { op: keep, attributes: [name, population, density] }
//! ```
//!
//! Operations apply in order; each sees the attributes as the earlier ones left them.
//!
//! | op        | fields                          | effect                                            |
//! |-----------|---------------------------------|---------------------------------------------------|
//! | `set`     | `attribute`, `expression`       | creates or overwrites the attribute               |
//! | `rename`  | `from`, `to`                    | renames in place; replaces an existing `to`       |
//! | `remove`  | `attribute` or `attributes`     | drops them                                        |
//! | `convert` | `attribute`, `to`               | `string`, `int`, `float`, `bool`, `date`, `datetime` |
//! | `keep`    | `attributes`                    | drops every other attribute                       |
//!
//! Naming an attribute the feature does not have is not an error: `rename`, `remove`, `convert`
//! and `keep` skip it. Conversions keep null as null and read an empty (or blank) string as
//! null for every target but `string`. Numbers convert to `int` only when they have no
//! fraction; `bool` reads `true/false/yes/no/1/0` (any case) and the ints 0 and 1; dates read
//! ISO 8601 (`2024-02-29`, and a datetime's date part), datetimes RFC 3339 or a date (midnight
//! UTC). A failed conversion or expression sends the feature, unchanged, to `rejected` with
//! the reason in `_rejection_reason`.
//!
//! # Speed
//!
//! The operations are planned once per distinct input schema: the plan lists, for every output
//! column, the input column it moves or the step that computes it, and holds the output schema,
//! so every feature of a reader leaves with one shared schema and no per-feature key lists.

mod convert;
mod plan;

use std::sync::Arc;

use parking_lot::RwLock;
use schemars::JsonSchema;
use serde::Deserialize;
use sluice_runtime::action::schema_of;
use sluice_runtime::expr::{Evaluator, Expr};
use sluice_runtime::shape::{Shape, ShapeContext, Type};
use sluice_runtime::{
    ActionError, ActionKind, ActionSpec, BuildContext, BuiltAction, DEFAULT_PORT, Emitter, Feature,
    NodeImpl, REJECTED_PORT, Transform, Value,
};

pub use convert::TargetType;
use plan::{EvalOn, Plan, Src, Step};

/// Parameters of `attribute_manager`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AttributeManagerParams {
    /// Operations, applied in order to every feature.
    #[schemars(length(min = 1))]
    pub operations: Vec<Operation>,
}

/// One operation on the attributes, selected by `op`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
pub enum Operation {
    /// Creates or overwrites an attribute with the value of an expression.
    Set {
        /// The attribute to set.
        attribute: String,
        /// The expression; it sees the attributes as the earlier operations left them.
        expression: String,
    },
    /// Renames an attribute in place (an existing attribute named `to` is replaced).
    Rename {
        /// The current name.
        from: String,
        /// The new name.
        to: String,
    },
    /// Drops attributes. Give `attribute` or `attributes`.
    Remove {
        /// One attribute to drop.
        #[serde(default)]
        attribute: Option<String>,
        /// Attributes to drop.
        #[serde(default)]
        attributes: Option<Vec<String>>,
    },
    /// Converts an attribute's value to another type.
    Convert {
        /// The attribute to convert.
        attribute: String,
        /// The target type.
        to: TargetType,
    },
    /// Keeps only the listed attributes, in their current order.
    Keep {
        /// The attributes to keep.
        attributes: Vec<String>,
    },
}

/// The `attribute_manager` action.
pub const SPEC: ActionSpec = ActionSpec::new(
    "attribute_manager",
    ActionKind::Processor,
    "Sets (from expressions), renames, removes, converts and keeps attributes, in order.",
    schema_of::<AttributeManagerParams>,
    build,
)
.per_feature()
.outputs(&[DEFAULT_PORT, REJECTED_PORT])
.shape(shape)
.example(
    "operations:\n  - { op: convert, attribute: population, to: int }\n  - { op: set, attribute: density, expression: population / area }\n  - { op: rename, from: nom, to: name }\n  - { op: remove, attributes: [tmp, debug] }\n  - { op: keep, attributes: [name, population, density] }\n",
);

/// The operations applied in order to the input's shape, as [`plan`] applies them to a
/// feature's schema; names are checked against the attributes as earlier operations left
/// them. A feature that fails goes to `rejected` unchanged.
fn shape(ctx: &ShapeContext) -> Result<Vec<Shape>, ActionError> {
    let p: AttributeManagerParams = ctx.params()?;
    let input = ctx.input(0);
    let mut s = input.clone();
    for (i, op) in p.operations.iter().enumerate() {
        let path = |field: &str| format!("operations[{i}].{field}");
        match op {
            Operation::Set {
                attribute,
                expression,
            } => {
                let t = ctx.expression(&path("expression"), expression, &s);
                s.set(attribute, t);
            }
            Operation::Rename { from, to } => {
                if let Some(t) = ctx.attribute(&path("from"), from, &s) {
                    match s.attributes.iter().position(|(n, _)| n == from) {
                        Some(at) => {
                            s.attributes[at].0 = to.clone();
                            if let Some(q) = (0..s.attributes.len())
                                .find(|&j| j != at && s.attributes[j].0 == *to)
                            {
                                s.attributes.remove(q);
                            }
                        }
                        // An open shape may hold it: it becomes `to`, of unknown type.
                        None => s.set(to, t),
                    }
                }
            }
            Operation::Remove {
                attribute,
                attributes,
            } => {
                let one = attribute.iter().map(|a| (path("attribute"), a));
                let many = attributes.iter().flatten().enumerate();
                let many = many.map(|(k, a)| (path(&format!("attributes[{k}]")), a));
                for (at, name) in one.chain(many) {
                    if ctx.attribute(&at, name, &s).is_some() {
                        s.remove(name);
                    }
                }
            }
            Operation::Convert { attribute, to } => {
                if ctx.attribute(&path("attribute"), attribute, &s).is_some() {
                    s.set(attribute, to.static_type());
                }
            }
            Operation::Keep { attributes } => {
                for (k, name) in attributes.iter().enumerate() {
                    ctx.attribute(&path(&format!("attributes[{k}]")), name, &s);
                }
                s.attributes.retain(|(n, _)| attributes.contains(n));
                // What an open shape held beyond its listed names is gone, except the kept.
                if s.open {
                    for name in attributes {
                        if !s.has(name) {
                            s.set(name, Type::Any);
                        }
                    }
                    s.open = false;
                    s.unread = None;
                }
            }
        }
    }
    Ok(vec![s, input.rejected()])
}

fn build(ctx: &BuildContext) -> Result<BuiltAction, ActionError> {
    let params: AttributeManagerParams = ctx.params()?;
    if params.operations.is_empty() {
        return Err(ActionError::param(
            "operations",
            "at least one operation is required",
        ));
    }
    let mut ops = Vec::with_capacity(params.operations.len());
    let mut exprs = Vec::new();
    let mut labels = Vec::with_capacity(params.operations.len());
    // Every operation is checked, so one validation run names every bad one.
    let mut errors = Vec::new();
    for (i, op) in params.operations.into_iter().enumerate() {
        match resolve(i, op, &mut exprs) {
            Ok((op, label)) => {
                ops.push(op);
                labels.push(format!("attribute_manager: operations[{i}] ({label})"));
            }
            Err(e) => errors.push(e),
        }
    }
    ActionError::collect(errors)?;
    let manager = AttributeManager {
        ops,
        exprs,
        labels,
        plans: RwLock::new(Vec::new()),
    };
    Ok(BuiltAction::new(NodeImpl::Transform(Arc::new(manager))))
}

/// Checks operation `i` and resolves it (compiling its expression into `exprs`), or gives
/// every problem it has.
fn resolve(i: usize, op: Operation, exprs: &mut Vec<Expr>) -> Result<(Op, String), ActionError> {
    let path = |field: &str| format!("operations[{i}].{field}");
    let nonempty = |field: &str, value: &str| {
        if value.is_empty() {
            Err(ActionError::param(
                path(field),
                "the attribute name is empty",
            ))
        } else {
            Ok(())
        }
    };
    Ok(match op {
        Operation::Set {
            attribute,
            expression,
        } => {
            let named = nonempty("attribute", &attribute);
            let compiled = Expr::compile_all(&expression).map_err(|list| {
                ActionError::Many(
                    list.into_iter()
                        .map(|e| ActionError::param(path("expression"), e.to_string()))
                        .collect(),
                )
            });
            let expr = match (named, compiled) {
                (Ok(()), Ok(expr)) => expr,
                (Err(a), Err(b)) => return Err(ActionError::Many(vec![a, b])),
                (Err(e), _) | (_, Err(e)) => return Err(e),
            };
            exprs.push(expr);
            let label = format!("set {attribute}");
            let op = Op::Set {
                attribute: attribute.into(),
                expr: exprs.len() - 1,
            };
            (op, label)
        }
        Operation::Rename { from, to } => {
            ActionError::collect(
                [nonempty("from", &from), nonempty("to", &to)]
                    .into_iter()
                    .filter_map(Result::err),
            )?;
            let label = format!("rename {from}");
            let op = Op::Rename {
                from,
                to: to.into(),
            };
            (op, label)
        }
        Operation::Remove {
            attribute,
            attributes,
        } => {
            let names = match (attribute, attributes) {
                (Some(a), None) => vec![a],
                (None, Some(list)) => list,
                _ => {
                    return Err(ActionError::param(
                        format!("operations[{i}]"),
                        "remove takes either `attribute` or `attributes`",
                    ));
                }
            };
            (Op::Remove(names), "remove".to_string())
        }
        Operation::Convert { attribute, to } => {
            nonempty("attribute", &attribute)?;
            let label = format!("convert {attribute}");
            (Op::Convert { attribute, to }, label)
        }
        Operation::Keep { attributes } => (Op::Keep(attributes), "keep".to_string()),
    })
}

/// An operation, resolved.
enum Op {
    Set { attribute: Arc<str>, expr: usize },
    Rename { from: String, to: Arc<str> },
    Remove(Vec<String>),
    Convert { attribute: String, to: TargetType },
    Keep(Vec<String>),
}

// ---------------------------------------------------------------------------------------------
// Runtime
// ---------------------------------------------------------------------------------------------

struct AttributeManager {
    ops: Vec<Op>,
    exprs: Vec<Expr>,
    /// Per operation, how rejection reasons name it.
    labels: Vec<String>,
    plans: RwLock<Vec<Arc<Plan>>>,
}

impl Transform for AttributeManager {
    fn apply(&self, features: Vec<Feature>, out: &mut Emitter) -> Result<(), ActionError> {
        let mut evaluators: Vec<Evaluator<'_>> = self.exprs.iter().map(Expr::evaluator).collect();
        let mut current: Option<Arc<Plan>> = None;
        let mut computed: Vec<Value> = Vec::new();
        for feature in features {
            let plan: &Plan = match current.take() {
                Some(p) if Arc::ptr_eq(&p.input, feature.schema()) => current.insert(p),
                _ => current.insert(self.plan_for(feature.schema())),
            };
            if plan.identity {
                out.emit(feature)?;
                continue;
            }
            match self.transform(plan, &mut evaluators, &mut computed, feature) {
                Ok(feature) => out.emit(feature)?,
                Err((feature, reason)) => out.reject(feature, reason)?,
            }
        }
        Ok(())
    }
}

impl AttributeManager {
    /// Applies `plan` to one feature; on failure returns the feature unchanged with the reason.
    fn transform(
        &self,
        plan: &Plan,
        evaluators: &mut [Evaluator<'_>],
        computed: &mut Vec<Value>,
        mut feature: Feature,
    ) -> Result<Feature, (Feature, String)> {
        // 1. Compute every step, only reading the feature, so a failure leaves it unchanged.
        computed.clear();
        for step in &plan.steps {
            let (op, value) = match step {
                Step::Eval { op, expr, on } => {
                    let evaluator = &mut evaluators[*expr];
                    let result = match on {
                        EvalOn::Input => evaluator.eval(&feature),
                        EvalOn::Staged { schema, columns } => {
                            let values = columns
                                .iter()
                                .map(|s| read(*s, &feature, computed).clone())
                                .collect();
                            // Same id and geometry; only the attributes the expression reads.
                            let mut staged = feature.clone();
                            staged.reshape(schema.clone(), values);
                            evaluator.eval(&staged)
                        }
                    };
                    (*op, result.map_err(|e| e.message))
                }
                Step::Convert { op, src, to } => {
                    (*op, convert::convert(read(*src, &feature, computed), *to))
                }
            };
            match value {
                Ok(v) => computed.push(v),
                Err(message) => {
                    let reason = format!("{}: {message}", self.labels[op]);
                    return Err((feature, reason));
                }
            }
        }
        // 2. Assemble: move the input values (copied first only if another branch shares
        //    them) and the computed ones into place.
        let values: Arc<[Value]> = {
            let input = feature.values_mut();
            plan.output
                .iter()
                .map(|src| match *src {
                    Src::Input(j) => input.get_mut(j).map(std::mem::take).unwrap_or_default(),
                    Src::Step(k) => computed.get_mut(k).map(std::mem::take).unwrap_or_default(),
                })
                .collect()
        };
        feature.reshape_shared(plan.schema.clone(), values);
        Ok(feature)
    }
}

/// The current value of a column.
fn read<'a>(src: Src, feature: &'a Feature, computed: &'a [Value]) -> &'a Value {
    static NULL: Value = Value::Null;
    match src {
        Src::Input(j) => feature.values().get(j),
        Src::Step(k) => computed.get(k),
    }
    .unwrap_or(&NULL)
}

#[cfg(test)]
mod tests;
