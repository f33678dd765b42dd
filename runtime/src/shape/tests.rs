use super::*;
use crate::{Feature, Geometry, Value};

fn shape(attrs: &[(&str, Type)]) -> Shape {
    Shape::closed(attrs.iter().map(|(n, t)| (n.to_string(), *t)))
}

#[test]
fn merging_two_edges_keeps_every_attribute_and_widens_types() {
    let a = shape(&[("id", Type::Int), ("name", Type::String)]);
    let b = shape(&[
        ("id", Type::Float),
        ("name", Type::Int),
        ("extra", Type::Date),
    ]);
    let m = a.merge(&b);
    assert_eq!(
        m.attributes,
        [
            ("id".to_string(), Type::Float),
            ("name".to_string(), Type::Any),
            ("extra".to_string(), Type::Date)
        ]
    );
    assert!(!m.open);
    assert!(a.merge(&Shape::unknown()).open);
    let unread = Shape::unread("src");
    assert_eq!(a.merge(&unread).unread.as_deref(), Some("src"));
}

#[test]
fn open_shapes_answer_any_closed_ones_nothing() {
    let s = shape(&[("id", Type::Int)]);
    assert_eq!(s.get("id"), Some(Type::Int));
    assert_eq!(s.get("nope"), None);
    let open = Shape { open: true, ..s };
    assert_eq!(open.get("nope"), Some(Type::Any));
}

#[test]
fn the_shape_of_features_types_by_non_null_values() {
    let f = |id, v: Value, g: bool| {
        let f = Feature::from_pairs(id, [("v", v), ("k", Value::from("x"))]);
        f.with_geometry(
            g.then(|| Geometry::in_crs(geo_types::Point::new(1.0, 2.0).into(), Some(4326))),
        )
    };
    let s = Shape::of_features(&[f(0, Value::Null, false), f(1, Value::Int(2), true)]);
    assert_eq!(
        s.to_string(),
        "{v: int, k: string} with geometry (EPSG:4326)"
    );
    let s = Shape::of_features(&[f(0, Value::Int(1), false), f(1, Value::Float(2.5), false)]);
    assert_eq!(s.to_string(), "{v: float, k: string} without geometry");
    assert_eq!(Shape::unknown().to_string(), "{...}");
}

#[test]
fn unknown_names_get_the_nearest_as_a_hint_only_when_closed() {
    let params = serde_json::json!({});
    let s = shape(&[("city", Type::String), ("value", Type::Float)]);
    let ctx = ShapeContext::new("n", &params, &[], &[]);
    assert_eq!(ctx.attribute("by", "citty", &s), None);
    assert_eq!(ctx.attribute("by", "value", &s), Some(Type::Float));
    let open = Shape {
        open: true,
        ..Shape::unread("src")
    };
    assert_eq!(ctx.attribute("by", "anything", &open), Some(Type::Any));
    let (problems, relied) = ctx.finish();
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].message, "unknown attribute \"citty\"");
    assert_eq!(problems[0].help.as_deref(), Some("did you mean \"city\"?"));
    assert!(relied.contains("src"));
}

#[test]
fn expressions_are_typed_and_conditions_must_be_bool() {
    let params = serde_json::json!({});
    let s = shape(&[("value", Type::Float), ("name", Type::String)]);
    let ctx = ShapeContext::new("n", &params, &[], &[]);
    assert_eq!(ctx.expression("e", "value * 2", &s), Type::Float);
    assert_eq!(ctx.expression("e", "upper(name)", &s), Type::String);
    ctx.condition("c", "value + 1", &s, "a filter condition");
    ctx.condition("c", "value > 1", &s, "a filter condition");
    assert_eq!(ctx.expression("e", "'abc' * 2", &s), Type::Any);
    let (problems, _) = ctx.finish();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert_eq!(
        problems[0].message,
        "a filter condition must be true or false; `value + 1` is a float"
    );
    assert_eq!(problems[1].offset, Some(6));
}

#[test]
fn pass_adds_the_reason_on_a_rejected_port() {
    let params = serde_json::json!({});
    let outputs = ["default".to_string(), "rejected".to_string()];
    let ctx = ShapeContext::new("n", &params, &[], &outputs);
    let out = ctx.pass(shape(&[("a", Type::Int)]));
    assert_eq!(out[0].names().collect::<Vec<_>>(), ["a"]);
    assert_eq!(out[1].get(crate::REJECTION_REASON), Some(Type::String));
}
