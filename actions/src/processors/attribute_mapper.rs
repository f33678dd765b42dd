//! `attribute_mapper`: builds a new attribute set from expressions over the input.
//!
//! ```yaml
//! - id: shape
//!   action: attribute_mapper
//!   with:
//!     attributes:
//!       - { name: name, expression: upper(nom) }
//!       - { name: density, expression: population / area }
//!       - { name: source, expression: '"census"' }
//!     keep_geometry: true
//! ```
//!
//! - Every output feature has exactly the listed attributes, in the listed order, and nothing
//!   else; all outputs share one schema. Each expression sees the INPUT feature's attributes
//!   (not the ones computed before it), so the order of the list does not matter to the values.
//! - The feature id is kept. The geometry is kept unless `keep_geometry: false`.
//! - An expression that fails on a feature (a type error, a division by zero) sends that
//!   feature, unchanged, to `rejected` with the reason in `_rejection_reason`.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::Deserialize;
use sluice_runtime::action::schema_of;
use sluice_runtime::expr::{Evaluator, Expr};
use sluice_runtime::shape::{GeometryShape, Shape, ShapeContext, Type};
use sluice_runtime::{
    ActionError, ActionKind, ActionSpec, BuildContext, BuiltAction, DEFAULT_PORT, Emitter, Feature,
    NodeImpl, REJECTED_PORT, Schema, Transform, Value,
};

/// Parameters of `attribute_mapper`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AttributeMapperParams {
    /// The output attributes, in order; each computed from the input feature.
    #[schemars(length(min = 1))]
    pub attributes: Vec<MappedAttribute>,
    /// Keep the input geometry (`false` drops it).
    #[serde(default = "yes")]
    pub keep_geometry: bool,
}

/// One output attribute.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MappedAttribute {
    /// The output attribute name (unique in the list).
    pub name: String,
    /// The expression computing it over the input feature's attributes.
    pub expression: String,
}

fn yes() -> bool {
    true
}

/// The `attribute_mapper` action.
pub const SPEC: ActionSpec = ActionSpec::new(
    "attribute_mapper",
    ActionKind::Processor,
    "Builds a new set of attributes (only those, in order) from expressions over the input.",
    schema_of::<AttributeMapperParams>,
    build,
)
.per_feature()
.shape(shape)
.outputs(&[DEFAULT_PORT, REJECTED_PORT])
.example(
    "attributes:\n  - { name: name, expression: upper(nom) }\n  - { name: density, expression: population / area }\n  - { name: source, expression: '\"census\"' }\nkeep_geometry: true\n",
);

/// Exactly the listed attributes, typed by their expressions over the input.
fn shape(ctx: &ShapeContext) -> Result<Vec<Shape>, ActionError> {
    let p: AttributeMapperParams = ctx.params()?;
    let input = ctx.input(0);
    let mut out = Shape::closed(Vec::<(String, Type)>::new());
    for (i, a) in p.attributes.iter().enumerate() {
        let t = ctx.expression(
            &format!("attributes[{i}].expression"),
            &a.expression,
            &input,
        );
        if !out.has(&a.name) {
            out.set(&a.name, t);
        }
    }
    out.geometry = if p.keep_geometry {
        input.geometry
    } else {
        GeometryShape::Absent
    };
    Ok(vec![out, input.rejected()])
}

fn build(ctx: &BuildContext) -> Result<BuiltAction, ActionError> {
    let params: AttributeMapperParams = ctx.params()?;
    if params.attributes.is_empty() {
        return Err(ActionError::param(
            "attributes",
            "at least one attribute is required",
        ));
    }
    let mut names: Vec<&str> = Vec::with_capacity(params.attributes.len());
    let mut exprs = Vec::with_capacity(params.attributes.len());
    // Every attribute is checked, so one validation run names every problem.
    let mut errors = Vec::new();
    for (i, a) in params.attributes.iter().enumerate() {
        if a.name.is_empty() {
            errors.push(ActionError::param(
                format!("attributes[{i}].name"),
                "the attribute name is empty",
            ));
        } else if names.contains(&a.name.as_str()) {
            errors.push(ActionError::param(
                format!("attributes[{i}].name"),
                format!("the attribute \"{}\" is listed twice", a.name),
            ));
        }
        names.push(&a.name);
        match Expr::compile_all(&a.expression) {
            Ok(expr) => exprs.push(expr),
            Err(list) => {
                errors.extend(list.into_iter().map(|e| {
                    ActionError::param(format!("attributes[{i}].expression"), e.to_string())
                }))
            }
        }
    }
    ActionError::collect(errors)?;
    let mapper = AttributeMapper {
        schema: Schema::new(names.iter().copied()),
        labels: names
            .iter()
            .enumerate()
            .map(|(i, n)| format!("attribute_mapper: attributes[{i}] ({n})"))
            .collect(),
        exprs,
        keep_geometry: params.keep_geometry,
    };
    Ok(BuiltAction::new(NodeImpl::Transform(Arc::new(mapper))))
}

// ---------------------------------------------------------------------------------------------
// Runtime
// ---------------------------------------------------------------------------------------------

struct AttributeMapper {
    /// The one output schema.
    schema: Arc<Schema>,
    exprs: Vec<Expr>,
    /// Per attribute, how rejection reasons name it.
    labels: Vec<String>,
    keep_geometry: bool,
}

impl Transform for AttributeMapper {
    fn apply(&self, features: Vec<Feature>, out: &mut Emitter) -> Result<(), ActionError> {
        let mut evaluators: Vec<Evaluator<'_>> = self.exprs.iter().map(Expr::evaluator).collect();
        'features: for mut feature in features {
            let mut values: Vec<Value> = Vec::with_capacity(self.exprs.len());
            for (i, evaluator) in evaluators.iter_mut().enumerate() {
                match evaluator.eval(&feature) {
                    Ok(v) => values.push(v),
                    Err(e) => {
                        let reason = format!("{}: {}", self.labels[i], e.message);
                        out.reject(feature, reason)?;
                        continue 'features;
                    }
                }
            }
            feature.reshape(self.schema.clone(), values);
            if !self.keep_geometry {
                feature.set_geometry(None);
            }
            out.emit(feature)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_runtime::testing::build_transform;
    use sluice_runtime::testing::param_error_path;
    use sluice_runtime::{Geometry, REJECTION_REASON};

    fn run(params: serde_json::Value, input: Vec<Feature>) -> (Vec<Feature>, Vec<Feature>) {
        let mapper = build_transform(&SPEC, params).unwrap();
        let mut out = Emitter::for_outputs(SPEC.outputs);
        mapper.apply(input, &mut out).unwrap();
        let mut b = out.into_buffers();
        let rejected = b.pop().unwrap();
        (b.pop().unwrap(), rejected)
    }

    fn towns() -> Vec<Feature> {
        let schema = Schema::new(["nom", "population", "area"]);
        let point = Geometry::new(geo_types::Point::new(1.0, 2.0).into());
        vec![
            Feature::new(
                10,
                schema.clone(),
                vec!["lyon".into(), Value::Int(500), Value::Int(50)],
            )
            .with_geometry(Some(point)),
            Feature::new(
                11,
                schema,
                vec!["nice".into(), Value::Int(300), Value::Float(0.0)],
            ),
        ]
    }

    #[test]
    fn builds_only_the_listed_attributes_in_order_sharing_one_schema() {
        let params = serde_json::json!({"attributes": [
            {"name": "pop2", "expression": "population * 2"},
            {"name": "name", "expression": "upper(nom)"},
            {"name": "nom", "expression": "population"}
        ]});
        let mut input = towns();
        input[1] = Feature::new(
            11,
            input[1].schema().clone(),
            vec!["nice".into(), Value::Int(300), Value::Int(3)],
        );
        let (out, rejected) = run(params, input);
        assert!(rejected.is_empty());
        assert_eq!(out.len(), 2);
        let names: Vec<&str> = out[0].schema().names().iter().map(|n| &**n).collect();
        assert_eq!(names, ["pop2", "name", "nom"]);
        assert!(Arc::ptr_eq(out[0].schema(), out[1].schema()));
        assert_eq!(
            out[0].values(),
            [Value::Int(1000), "LYON".into(), Value::Int(500)]
        );
        assert_eq!(out[0].id(), 10);
        assert!(out[0].geometry().is_some());
    }

    #[test]
    fn keep_geometry_false_drops_it() {
        let params = serde_json::json!({
            "attributes": [{"name": "n", "expression": "nom"}],
            "keep_geometry": false
        });
        let (out, _) = run(params, towns());
        assert!(out.iter().all(|f| f.geometry().is_none()));
    }

    #[test]
    fn failed_expression_rejects_the_feature_unchanged() {
        let params = serde_json::json!({"attributes": [
            {"name": "name", "expression": "nom"},
            {"name": "density", "expression": "population / area"}
        ]});
        let (out, rejected) = run(params, towns());
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].values(), ["lyon".into(), Value::Float(10.0)]);
        assert_eq!(rejected.len(), 1);
        let bad = &rejected[0];
        assert_eq!(bad.id(), 11);
        assert_eq!(bad.get("nom"), Some(&Value::from("nice")));
        let reason = bad.get(REJECTION_REASON).and_then(Value::as_str).unwrap();
        assert!(
            reason.starts_with("attribute_mapper: attributes[1] (density): "),
            "{reason}"
        );
    }

    #[test]
    fn bad_parameters_are_located() {
        let attr = |n: &str, e: &str| serde_json::json!({"name": n, "expression": e});
        assert_eq!(
            param_error_path(&SPEC, serde_json::json!({"attributes": []})),
            "attributes"
        );
        assert_eq!(
            param_error_path(
                &SPEC,
                serde_json::json!({"attributes": [attr("a", "1"), attr("a", "2")]})
            ),
            "attributes[1].name"
        );
        assert_eq!(
            param_error_path(&SPEC, serde_json::json!({"attributes": [attr("", "1")]})),
            "attributes[0].name"
        );
        assert_eq!(
            param_error_path(&SPEC, serde_json::json!({"attributes": [attr("a", "1 +")]})),
            "attributes[0].expression"
        );
        assert_eq!(
            param_error_path(
                &SPEC,
                serde_json::json!({"attributes": [attr("a", "1")], "keep": true})
            ),
            "keep"
        );
    }
}
