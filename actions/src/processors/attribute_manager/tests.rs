use super::*;
use sluice_runtime::testing::build_transform;
use sluice_runtime::testing::param_error_path;
use sluice_runtime::{Geometry, REJECTION_REASON, Schema};

/// Runs the operations over `input`; returns (default, rejected).
fn run(ops: serde_json::Value, input: Vec<Feature>) -> (Vec<Feature>, Vec<Feature>) {
    let manager = build_transform(&SPEC, serde_json::json!({ "operations": ops })).unwrap();
    let mut out = Emitter::for_outputs(SPEC.outputs);
    manager.apply(input, &mut out).unwrap();
    let mut buffers = out.into_buffers();
    let rejected = buffers.pop().unwrap();
    (buffers.pop().unwrap(), rejected)
}

fn people() -> Vec<Feature> {
    let schema = Schema::new(["name", "age", "city"]);
    vec![
        Feature::new(
            0,
            schema.clone(),
            vec!["ann".into(), "31".into(), "Oslo".into()],
        ),
        Feature::new(1, schema, vec!["bob".into(), "7".into(), Value::Null]),
    ]
}

fn names(f: &Feature) -> Vec<&str> {
    f.schema().names().iter().map(|n| &**n).collect()
}

#[test]
fn set_rename_remove_convert_keep_in_order() {
    let ops = serde_json::json!([
        {"op": "convert", "attribute": "age", "to": "int"},
        {"op": "set", "attribute": "next_age", "expression": "age + 1"},
        {"op": "rename", "from": "name", "to": "who"},
        {"op": "remove", "attribute": "city"},
        {"op": "set", "attribute": "label", "expression": "who"}
    ]);
    let (out, rejected) = run(ops, people());
    assert!(rejected.is_empty());
    assert_eq!(names(&out[0]), ["who", "age", "next_age", "label"]);
    assert_eq!(out[0].get("age"), Some(&Value::Int(31)));
    assert_eq!(out[0].get("next_age"), Some(&Value::Int(32)));
    assert_eq!(out[1].get("next_age"), Some(&Value::Int(8)));
    assert_eq!(out[1].get("label").and_then(Value::as_str), Some("bob"));

    let keep = serde_json::json!([{"op": "keep", "attributes": ["city", "name", "absent"]}]);
    let (out, _) = run(keep, people());
    assert_eq!(names(&out[0]), ["name", "city"]);
    assert_eq!(out[0].values(), [Value::from("ann"), Value::from("Oslo")]);
}

#[test]
fn set_overwrites_in_place_and_sees_earlier_operations() {
    let ops = serde_json::json!([
        {"op": "set", "attribute": "age", "expression": "name"},
        {"op": "set", "attribute": "copy", "expression": "age"}
    ]);
    let (out, _) = run(ops, people());
    assert_eq!(names(&out[0]), ["name", "age", "city", "copy"]);
    assert_eq!(out[0].get("age").and_then(Value::as_str), Some("ann"));
    assert_eq!(out[0].get("copy").and_then(Value::as_str), Some("ann"));
}

#[test]
fn rename_onto_an_existing_attribute_replaces_it() {
    let ops = serde_json::json!([{"op": "rename", "from": "city", "to": "name"}]);
    let (out, _) = run(ops, people());
    assert_eq!(names(&out[0]), ["age", "name"]);
    assert_eq!(out[0].get("name").and_then(Value::as_str), Some("Oslo"));
    // Nothing to do for this schema: the feature passes through untouched, storage shared.
    let ops = serde_json::json!([{"op": "rename", "from": "absent", "to": "x"}]);
    let input = people();
    let (out, _) = run(ops, input.clone());
    assert!(Arc::ptr_eq(out[0].schema(), input[0].schema()));
    assert!(out[0].shares_values_with(&input[0]));
}

#[test]
fn output_schema_is_shared_and_geometry_kept() {
    let g = Geometry::new(geo_types::Point::new(1.0, 2.0).into());
    let mut input = people();
    input[0].set_geometry(Some(g.clone()));
    // A second reader's schema with the same names still yields the shared output schema.
    let other = Schema::new(["name", "age", "city"]);
    input.push(Feature::new(
        2,
        other,
        vec!["cy".into(), "40".into(), "Rome".into()],
    ));
    let ops =
        serde_json::json!([{"op": "set", "attribute": "adult", "expression": "name != \"bob\""}]);
    let (out, _) = run(ops, input);
    assert_eq!(out.len(), 3);
    assert!(Arc::ptr_eq(out[0].schema(), out[1].schema()));
    assert!(Arc::ptr_eq(out[0].schema(), out[2].schema()));
    assert_eq!(out[0].geometry(), Some(&g));
    assert_eq!(out[0].get("adult"), Some(&Value::Bool(true)));
    assert_eq!(out[1].get("adult"), Some(&Value::Bool(false)));
}

#[test]
fn bad_conversion_rejects_the_feature_unchanged() {
    let mut input = people();
    let schema = input[0].schema().clone();
    input.push(Feature::new(
        2,
        schema,
        vec!["cy".into(), "old".into(), Value::Null],
    ));
    let ops = serde_json::json!([
        {"op": "rename", "from": "name", "to": "who"},
        {"op": "convert", "attribute": "age", "to": "int"}
    ]);
    let (out, rejected) = run(ops, input);
    assert_eq!(out.iter().map(Feature::id).collect::<Vec<_>>(), [0, 1]);
    assert_eq!(rejected.len(), 1);
    let r = &rejected[0];
    assert_eq!(r.get("name").and_then(Value::as_str), Some("cy"));
    assert_eq!(r.get("age").and_then(Value::as_str), Some("old"));
    assert_eq!(
        r.get(REJECTION_REASON).and_then(Value::as_str),
        Some(
            "attribute_manager: operations[1] (convert age): cannot convert string \"old\" to int"
        )
    );
}

#[test]
fn evaluation_error_rejects_with_the_operation_named() {
    let ops = serde_json::json!([
        {"op": "set", "attribute": "x", "expression": "1"},
        {"op": "set", "attribute": "value2", "expression": "name * 2"}
    ]);
    let (out, rejected) = run(ops, people());
    assert!(out.is_empty());
    assert_eq!(rejected.len(), 2);
    let reason = rejected[0]
        .get(REJECTION_REASON)
        .and_then(Value::as_str)
        .unwrap();
    assert!(
        reason.starts_with("attribute_manager: operations[1] (set value2): "),
        "{reason}"
    );
    assert_eq!(rejected[0].get("x"), None);
}

#[test]
fn bad_parameters_are_located() {
    let ops = |v: serde_json::Value| serde_json::json!({ "operations": v });
    assert_eq!(
        param_error_path(
            &SPEC,
            ops(serde_json::json!([
                {"op": "set", "attribute": "a", "expression": "1"},
                {"op": "set", "attribute": "b", "expression": "(1 +"}
            ]))
        ),
        "operations[1].expression"
    );
    assert_eq!(
        param_error_path(&SPEC, ops(serde_json::json!([{"op": "remove"}]))),
        "operations[0]"
    );
    assert_eq!(
        param_error_path(
            &SPEC,
            ops(serde_json::json!([{"op": "rename", "from": "", "to": "b"}]))
        ),
        "operations[0].from"
    );
    assert_eq!(
        param_error_path(&SPEC, ops(serde_json::json!([]))),
        "operations"
    );
    assert!(
        param_error_path(&SPEC, ops(serde_json::json!([{"op": "explode"}])))
            .starts_with("operations")
    );
    assert!(
        param_error_path(
            &SPEC,
            ops(serde_json::json!([{"op": "convert", "attribute": "a", "to": "uuid"}]))
        )
        .starts_with("operations")
    );
}

#[test]
fn routes_to_default_and_rejected_in_a_run() {
    let yaml = r#"
nodes:
  - id: seed
    action: feature_creator
    with:
      features: [{ n: "1" }, { n: "x" }, { n: "3" }]
      repeat: 100
  - id: tidy
    action: attribute_manager
    with: { operations: [{ op: convert, attribute: n, to: int }] }
  - { id: ok, action: noop_sink }
  - { id: bad, action: noop_sink }
edges: [seed -> tidy, tidy -> ok, tidy.rejected -> bad]
"#;
    let report = sluice_runtime::testing::run_workflow_yaml(yaml, &crate::registry()).unwrap();
    let ports = &report.node("tidy").unwrap().ports;
    assert_eq!(
        ports,
        &[("default".to_string(), 200), ("rejected".to_string(), 100)]
    );
}
