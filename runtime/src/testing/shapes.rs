//! Cross-checks between an action's schema function and what it emits when it runs.

use crate::action::ActionSpec;
use crate::feature::Feature;
use crate::shape::{GeometryShape, Shape, ShapeContext, Type};

use super::Harness;

/// Runs `spec` on `inputs` (one feature list per input port) under the default harness and
/// checks that its schema function, given the shapes of those inputs, predicts every output
/// port: the attribute names in order and, for each attribute with a non-null value, its
/// type. Returns the static shapes, one per output port.
///
/// # Panics
///
/// When the action has no schema function, reports a problem, fails to run, or emits
/// features whose attributes or types differ from the prediction (the message shows both).
pub fn assert_shapes_match(
    spec: &ActionSpec,
    params: serde_json::Value,
    inputs: Vec<Vec<Feature>>,
) -> Vec<Shape> {
    let in_shapes: Vec<Shape> = inputs.iter().map(|f| Shape::of_features(f)).collect();
    let out = Harness::default()
        .run_processor(spec, params.clone(), inputs)
        .unwrap_or_else(|e| panic!("{} failed: {e}", spec.name));
    let ports = out.into_ports();
    let names: Vec<String> = ports.iter().map(|(p, _)| p.clone()).collect();
    let predicted = predict(spec, &params, &in_shapes, &names);
    for ((port, features), want) in ports.iter().zip(&predicted) {
        let got = Shape::of_features(features);
        if let Err(why) = agrees(want, &got) {
            panic!(
                "{} port \"{port}\": {why}\n  predicted {want}\n  emitted   {got}",
                spec.name
            );
        }
    }
    predicted
}

/// The schema function's output shapes for `inputs`; panics when it reports a problem.
pub fn predict(
    spec: &ActionSpec,
    params: &serde_json::Value,
    inputs: &[Shape],
    outputs: &[String],
) -> Vec<Shape> {
    let f = spec
        .shape
        .unwrap_or_else(|| panic!("{} has no schema function", spec.name));
    let ctx = ShapeContext::new("it", params, inputs, outputs);
    let result = f(&ctx);
    let (problems, _) = ctx.finish();
    assert!(problems.is_empty(), "{}: {problems:?}", spec.name);
    let mut shapes = result.unwrap_or_else(|e| panic!("{}: {e}", spec.name));
    shapes.resize(outputs.len(), Shape::unknown());
    shapes
}

/// Whether the emitted shape `got` is one the prediction allows.
fn agrees(want: &Shape, got: &Shape) -> Result<(), String> {
    let got_names: Vec<&str> = got.names().collect();
    if !want.open {
        let want_names: Vec<&str> = want.names().collect();
        if want_names != got_names && !got.attributes.is_empty() {
            return Err(format!(
                "attributes {want_names:?} predicted, {got_names:?} emitted"
            ));
        }
    }
    for (name, t) in &got.attributes {
        let Some(w) = want.get(name) else {
            return Err(format!("\"{name}\" was not predicted"));
        };
        if !(w == *t || w == Type::Any || *t == Type::Null) {
            return Err(format!(
                "\"{name}\" predicted {}, emitted {}",
                w.short_name(),
                t.short_name()
            ));
        }
    }
    match (want.geometry, got.geometry) {
        (GeometryShape::Absent, GeometryShape::Present { .. }) => {
            Err("a geometry was emitted where none was predicted".into())
        }
        (GeometryShape::Present { crs: Some(a) }, GeometryShape::Present { crs: Some(b) })
            if a != b =>
        {
            Err(format!("EPSG:{a} predicted, EPSG:{b} emitted"))
        }
        _ => Ok(()),
    }
}
