//! `list_exploder`: one feature per element of an array attribute.
//!
//! ```yaml
//! - id: one_per_tag
//!   action: list_exploder
//!   with:
//!     attribute: tags
//!     non_list: reject
//! ```
//!
//! - A feature whose `attribute` holds an array of N elements leaves as N features, in
//!   element order, each with `attribute` replaced by one element. The other attributes and
//!   the geometry are shared with the input (copy-on-write), and every copy KEEPS THE INPUT'S
//!   ID, so ids are no longer unique after this action.
//! - An empty array gives no feature.
//! - A feature whose attribute is not an array (null and missing included) goes to
//!   `rejected` with the reason in `_rejection_reason` (`non_list: reject`, the default), or
//!   passes unchanged (`non_list: pass`).

use std::sync::Arc;

use schemars::JsonSchema;
use serde::Deserialize;
use sluice_runtime::action::schema_of;
use sluice_runtime::shape::{Shape, ShapeContext, Type};
use sluice_runtime::{
    ActionError, ActionKind, ActionSpec, BuildContext, BuiltAction, DEFAULT_PORT, Emitter, Feature,
    NodeImpl, REJECTED_PORT, Transform, Value,
};

/// Parameters of `list_exploder`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListExploderParams {
    /// The attribute holding the array to explode.
    pub attribute: String,
    /// What happens to a feature whose attribute is not an array: `reject` or `pass`.
    #[serde(default)]
    pub non_list: NonList,
}

/// Handling of features whose attribute is not an array.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum NonList {
    /// Send it to `rejected` with the reason.
    #[default]
    Reject,
    /// Pass it unchanged on the default port.
    Pass,
}

/// The `list_exploder` action.
pub const SPEC: ActionSpec = ActionSpec::new(
    "list_exploder",
    ActionKind::Processor,
    "Emits one feature per element of an array attribute (the id is kept).",
    schema_of::<ListExploderParams>,
    build,
)
.per_feature()
.shape(shape)
.outputs(&[DEFAULT_PORT, REJECTED_PORT])
.example("attribute: tags\nnon_list: reject\n");

/// The exploded attribute holds one element (of any type); `rejected` and passed non-lists
/// carry the input as it is.
fn shape(ctx: &ShapeContext) -> Result<Vec<Shape>, ActionError> {
    let p: ListExploderParams = ctx.params()?;
    let input = ctx.input(0);
    let mut s = input.clone();
    if let Some(t) = ctx.attribute("attribute", &p.attribute, &input) {
        // An array's elements may be of any type; a value that is not an array is passed
        // (or rejected) as it is.
        let element = match t {
            Type::Array | Type::Any => Type::Any,
            other => other,
        };
        s.set(&p.attribute, element);
    }
    Ok(vec![s, input.rejected()])
}

fn build(ctx: &BuildContext) -> Result<BuiltAction, ActionError> {
    let params: ListExploderParams = ctx.params()?;
    if params.attribute.is_empty() {
        return Err(ActionError::param(
            "attribute",
            "the attribute name is empty",
        ));
    }
    Ok(BuiltAction::new(NodeImpl::Transform(Arc::new(
        ListExploder {
            attribute: params.attribute,
            non_list: params.non_list,
        },
    ))))
}

// ---------------------------------------------------------------------------------------------
// Runtime
// ---------------------------------------------------------------------------------------------

struct ListExploder {
    attribute: String,
    non_list: NonList,
}

impl Transform for ListExploder {
    fn apply(&self, features: Vec<Feature>, out: &mut Emitter) -> Result<(), ActionError> {
        // The attribute's position, looked up once per schema.
        let mut cached: Option<(Arc<sluice_runtime::Schema>, Option<usize>)> = None;
        for feature in features {
            let index = match &cached {
                Some((s, i)) if Arc::ptr_eq(s, feature.schema()) => *i,
                _ => {
                    let i = feature.schema().index_of(&self.attribute);
                    cached = Some((feature.schema().clone(), i));
                    i
                }
            };
            let list = match index.map(|i| &feature.values()[i]) {
                Some(Value::Array(items)) => items.clone(),
                other => {
                    match self.non_list {
                        NonList::Pass => out.emit(feature)?,
                        NonList::Reject => {
                            let what = other.map_or("missing", Value::type_name);
                            let reason = format!(
                                "list_exploder: attribute \"{}\" is {what}, not an array",
                                self.attribute
                            );
                            out.reject(feature, reason)?;
                        }
                    }
                    continue;
                }
            };
            let Some(i) = index else { continue };
            let Some((last, rest)) = list.split_last() else {
                continue;
            };
            for item in rest {
                let mut copy = feature.clone();
                copy.values_mut()[i] = item.clone();
                out.emit(copy)?;
            }
            let mut feature = feature;
            feature.values_mut()[i] = last.clone();
            out.emit(feature)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_runtime::{Geometry, REJECTION_REASON, Schema};

    fn run(params: serde_json::Value, input: Vec<Feature>) -> (Vec<Feature>, Vec<Feature>) {
        let built = (SPEC.build)(&BuildContext {
            node_id: "t",
            params: &params,
        })
        .unwrap();
        let NodeImpl::Transform(t) = built.node else {
            panic!("list_exploder must build a transform")
        };
        let mut out = Emitter::for_outputs(SPEC.outputs);
        t.apply(input, &mut out).unwrap();
        let mut b = out.into_buffers();
        let rejected = b.pop().unwrap();
        (b.pop().unwrap(), rejected)
    }

    fn input() -> Vec<Feature> {
        let schema = Schema::new(["name", "tags"]);
        let list = |v: Vec<Value>| Value::Array(v.into());
        let g = Geometry::new(geo_types::Point::new(3.0, 4.0).into());
        vec![
            Feature::new(
                1,
                schema.clone(),
                vec![
                    "a".into(),
                    list(vec!["x".into(), Value::Int(2), Value::Null]),
                ],
            )
            .with_geometry(Some(g)),
            Feature::new(2, schema.clone(), vec!["b".into(), list(vec![])]),
            Feature::new(3, schema.clone(), vec!["c".into(), "not a list".into()]),
            Feature::new(4, schema, vec!["d".into(), list(vec![Value::Int(7)])]),
            Feature::from_pairs(5, [("name", Value::from("e"))]),
        ]
    }

    #[test]
    fn one_feature_per_element_keeping_id_and_geometry() {
        let (out, rejected) = run(serde_json::json!({"attribute": "tags"}), input());
        let got: Vec<(u64, Value)> = out
            .iter()
            .map(|f| (f.id(), f.get("tags").unwrap().clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                (1, "x".into()),
                (1, Value::Int(2)),
                (1, Value::Null),
                (4, Value::Int(7))
            ]
        );
        assert!(out[..3].iter().all(|f| f.geometry().is_some()));
        assert!(out.iter().all(|f| f.get("name").is_some()));
        assert_eq!(rejected.len(), 2);
    }

    #[test]
    fn non_arrays_are_rejected_with_a_reason_or_passed() {
        let (_, rejected) = run(serde_json::json!({"attribute": "tags"}), input());
        let reasons: Vec<&str> = rejected
            .iter()
            .map(|f| f.get(REJECTION_REASON).and_then(Value::as_str).unwrap())
            .collect();
        assert_eq!(
            reasons,
            [
                "list_exploder: attribute \"tags\" is string, not an array",
                "list_exploder: attribute \"tags\" is missing, not an array"
            ]
        );
        let (out, rejected) = run(
            serde_json::json!({"attribute": "tags", "non_list": "pass"}),
            input(),
        );
        assert!(rejected.is_empty());
        let ids: Vec<u64> = out.iter().map(Feature::id).collect();
        assert_eq!(ids, [1, 1, 1, 3, 4, 5]);
        assert_eq!(out[3].get("tags"), Some(&Value::from("not a list")));
    }

    #[test]
    fn bad_parameters_are_refused() {
        for p in [
            serde_json::json!({"attribute": ""}),
            serde_json::json!({}),
            serde_json::json!({"attribute": "a", "non_list": "keep"}),
        ] {
            assert!(matches!(
                (SPEC.build)(&BuildContext {
                    node_id: "t",
                    params: &p
                }),
                Err(ActionError::Param { .. })
            ));
        }
    }
}
