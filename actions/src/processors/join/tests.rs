use super::*;
use sluice_runtime::memory::{MemoryBudget, SpillDir};
use sluice_runtime::testing::param_error_path;
use sluice_runtime::testing::{build_processor, drive};
use sluice_runtime::{Geometry, Schema};
use std::sync::Arc;

/// Runs a join over (input, batch) pairs; returns the three output ports.
fn run(
    params: serde_json::Value,
    batches: Vec<(usize, Batch)>,
    ctx: &NodeContext,
) -> Result<Vec<Vec<Feature>>, ActionError> {
    let mut join = build_processor(&SPEC, params)?;
    drive(&mut *join, batches, ctx, SPEC.outputs)
}

fn point(x: f64) -> Option<Geometry> {
    Some(Geometry::new(geo_types::Point::new(x, 0.0).into()))
}

/// Orders 0..=5: customer 1 (twice), 2.0 (a float), 9 (no customer), null, 3.
fn orders() -> Batch {
    let schema = Schema::new(["id", "customer_id", "amount"]);
    let row = |i: u64, c: Value, a: i64| {
        Feature::new(
            i,
            schema.clone(),
            vec![Value::Int(i as i64), c, Value::Int(a)],
        )
        .with_geometry(point(i as f64))
    };
    vec![
        row(0, Value::Int(1), 10),
        row(1, Value::Float(2.0), 20),
        row(2, Value::Int(9), 30),
        row(3, Value::Int(1), 40),
        row(4, Value::Null, 50),
        row(5, Value::Int(3), 60),
    ]
}

/// Customers 10..=14: ids 1, 2, 2 (two matches for order 1), 5 (no order), null.
fn customers() -> Batch {
    let schema = Schema::new(["id", "name", "customer_id"]);
    let row = |i: u64, id: Value, name: &str| {
        Feature::new(i, schema.clone(), vec![id, name.into(), Value::Int(-1)])
    };
    vec![
        row(10, Value::Int(1), "ann"),
        row(11, Value::Int(2), "bob"),
        row(12, Value::Int(2), "bea"),
        row(13, Value::Int(5), "cid"),
        row(14, Value::Null, "nul"),
    ]
}

fn params(mode: &str) -> serde_json::Value {
    serde_json::json!({"requestor_key": ["customer_id"], "supplier_key": ["id"], "mode": mode})
}

fn ids(fs: &[Feature]) -> Vec<u64> {
    fs.iter().map(Feature::id).collect()
}

fn col(fs: &[Feature], name: &str) -> Vec<Value> {
    fs.iter().map(|f| f.get(name).cloned().unwrap()).collect()
}

#[test]
fn inner_join_is_one_to_many_in_requestor_then_supplier_order() {
    let ctx = NodeContext::standalone("t");
    let mut a = orders();
    let late = a.split_off(3);
    let out = run(
        params("inner"),
        vec![(0, a), (1, customers()), (0, late)],
        &ctx,
    )
    .unwrap();
    let joined = &out[JOINED];
    assert_eq!(ids(joined), [0, 1, 1, 3]);
    let names: Vec<&str> = joined[0].schema().names().iter().map(|n| &**n).collect();
    assert_eq!(
        names,
        [
            "id",
            "customer_id",
            "amount",
            "supplier_id",
            "name",
            "supplier_customer_id"
        ]
    );
    assert!(
        joined
            .iter()
            .all(|f| Arc::ptr_eq(f.schema(), joined[0].schema()))
    );
    assert_eq!(
        col(joined, "name"),
        ["ann".into(), "bob".into(), "bea".into(), "ann".into()]
    );
    // The float key 2.0 matched the int 2 and keeps its own value.
    assert_eq!(joined[1].get("customer_id"), Some(&Value::Float(2.0)));
    assert_eq!(joined[1].get("supplier_id"), Some(&Value::Int(2)));
    assert_eq!(joined[0].geometry(), point(0.0).as_ref());
    assert_eq!(ids(&out[UNJOINED_REQUESTOR]), [2, 4, 5]);
    assert_eq!(ids(&out[UNJOINED_SUPPLIER]), [13, 14]);
    // Unmatched features leave unchanged.
    assert_eq!(out[UNJOINED_SUPPLIER][0].values(), customers()[3].values());
    assert_eq!(ctx.budget.reserved(), 0);
}

#[test]
fn left_and_full_pad_unmatched_features_with_nulls() {
    let ctx = NodeContext::standalone("t");
    let left = run(params("left"), vec![(1, customers()), (0, orders())], &ctx).unwrap();
    assert_eq!(ids(&left[JOINED]), [0, 1, 1, 2, 3, 4, 5]);
    assert_eq!(left[JOINED][3].get("name"), Some(&Value::Null));
    assert_eq!(left[JOINED][3].get("amount"), Some(&Value::Int(30)));
    assert!(left[UNJOINED_REQUESTOR].is_empty());
    assert_eq!(ids(&left[UNJOINED_SUPPLIER]), [13, 14]);

    let full = run(params("full"), vec![(1, customers()), (0, orders())], &ctx).unwrap();
    assert_eq!(ids(&full[JOINED]), [0, 1, 1, 2, 3, 4, 5, 13, 14]);
    let cid = &full[JOINED][7];
    assert_eq!(cid.get("name"), Some(&Value::from("cid")));
    assert_eq!(cid.get("amount"), Some(&Value::Null));
    assert_eq!(cid.get("supplier_id"), Some(&Value::Int(5)));
    assert!(full[UNJOINED_REQUESTOR].is_empty() && full[UNJOINED_SUPPLIER].is_empty());
}

#[test]
fn keys_with_the_same_name_merge_and_fill_in_full_mode() {
    let ctx = NodeContext::standalone("t");
    let r = vec![Feature::from_pairs(
        1,
        [("k", Value::Int(1)), ("v", Value::Int(0))],
    )];
    let s = vec![
        Feature::from_pairs(2, [("k", Value::Int(1)), ("w", "a".into())]).with_geometry(point(7.0)),
        Feature::from_pairs(3, [("k", Value::Int(2)), ("w", "b".into())]),
    ];
    let p = serde_json::json!({"requestor_key": ["k"], "supplier_key": ["k"], "mode": "full"});
    let out = run(p, vec![(0, r), (1, s)], &ctx).unwrap();
    let joined = &out[JOINED];
    let names: Vec<&str> = joined[0].schema().names().iter().map(|n| &**n).collect();
    assert_eq!(names, ["k", "v", "w"]);
    assert_eq!(
        joined[0].values(),
        [Value::Int(1), Value::Int(0), "a".into()]
    );
    // The requestor has no geometry: the supplier's is used.
    assert_eq!(joined[0].geometry(), point(7.0).as_ref());
    assert_eq!(joined[1].values(), [Value::Int(2), Value::Null, "b".into()]);
    assert_eq!(joined[1].id(), 3);
}

#[test]
fn reserved_attribute_names_fail_the_run_with_the_feature_id() {
    let ctx = NodeContext::standalone("t");
    let bad = vec![Feature::from_pairs(8, [("__sluice_join_b", Value::Int(1))])];
    let err = run(params("inner"), vec![(1, bad)], &ctx).unwrap_err();
    let ActionError::Data { message, .. } = &err else {
        panic!("{err:?}")
    };
    assert!(message.starts_with("feature 8: "), "{message}");
}

#[test]
fn bad_parameters_are_located() {
    let p = |r: serde_json::Value, s: serde_json::Value| serde_json::json!({"requestor_key": r, "supplier_key": s});
    assert_eq!(
        param_error_path(
            &SPEC,
            p(serde_json::json!(["a", "b"]), serde_json::json!(["a"]))
        ),
        "supplier_key"
    );
    assert_eq!(
        param_error_path(&SPEC, p(serde_json::json!([]), serde_json::json!([]))),
        "requestor_key"
    );
    assert_eq!(
        param_error_path(&SPEC, p(serde_json::json!(["a"]), serde_json::json!([""]))),
        "supplier_key[0]"
    );
    let mut bad_mode = p(serde_json::json!(["a"]), serde_json::json!(["a"]));
    bad_mode["mode"] = "outer".into();
    assert_eq!(param_error_path(&SPEC, bad_mode), "mode");
    let mut no_prefix = p(serde_json::json!(["a"]), serde_json::json!(["a"]));
    no_prefix["prefix"] = "".into();
    assert_eq!(param_error_path(&SPEC, no_prefix), "prefix");
}

/// Interleaved batches: requestors with repeated, missing and null keys; suppliers with
/// one-to-many keys, two schemas and mixed key types.
fn many() -> Vec<(usize, Batch)> {
    let rs = Schema::new(["k", "j", "r"]);
    let sa = Schema::new(["key", "j", "s"]);
    let sb = Schema::new(["s", "key"]);
    let requestors: Vec<Feature> = (0..6_000u64)
        .map(|i| {
            let k = match i % 11 {
                0 => Value::Null,
                1 => Value::Float((i % 700) as f64),
                _ => Value::Int((i * 13 % 900) as i64),
            };
            Feature::new(
                i,
                rs.clone(),
                vec![k, Value::Int((i % 3) as i64), Value::from(format!("r{i}"))],
            )
        })
        .collect();
    let suppliers: Vec<Feature> = (0..2_500u64)
        .map(|i| {
            let key = Value::Int((i * 7 % 1000) as i64);
            if i % 3 == 0 {
                Feature::new(
                    100_000 + i,
                    sb.clone(),
                    vec![Value::Float(i as f64 / 4.0), key],
                )
            } else {
                Feature::new(
                    100_000 + i,
                    sa.clone(),
                    vec![key, Value::Int(1), Value::Float(i as f64)],
                )
                .with_geometry(point(i as f64))
            }
        })
        .collect();
    let mut batches = Vec::new();
    let (mut r, mut s) = (requestors.chunks(300), suppliers.chunks(170));
    loop {
        let (a, b) = (r.next(), s.next());
        if a.is_none() && b.is_none() {
            return batches;
        }
        if let Some(a) = a {
            batches.push((0, a.to_vec()));
        }
        if let Some(b) = b {
            batches.push((1, b.to_vec()));
        }
    }
}

type Signature = Vec<Vec<(u64, Vec<String>, String, bool)>>;

fn signature(ports: &[Vec<Feature>]) -> Signature {
    ports
        .iter()
        .map(|fs| {
            fs.iter()
                .map(|f| {
                    let names = f.schema().names().iter().map(|n| n.to_string()).collect();
                    (
                        f.id(),
                        names,
                        format!("{:?}", f.values()),
                        f.geometry().is_some(),
                    )
                })
                .collect()
        })
        .collect()
}

/// Runs with a budget of `budget` bytes; returns the output signature, the spill files
/// written and the bytes still reserved.
fn run_with_budget(params: serde_json::Value, budget: usize) -> (Signature, u64, usize) {
    let base = tempfile::tempdir().unwrap();
    let mut ctx = NodeContext::standalone("t");
    ctx.budget = MemoryBudget::new(budget);
    ctx.spill = SpillDir::new(base.path());
    let out = run(params, many(), &ctx).unwrap();
    (signature(&out), ctx.spill.totals().0, ctx.budget.reserved())
}

#[test]
fn spilling_gives_the_same_output_as_memory() {
    for mode in ["inner", "left", "full"] {
        let p = serde_json::json!({"requestor_key": ["k"], "supplier_key": ["key"], "mode": mode});
        let (memory, spills, _) = run_with_budget(p.clone(), usize::MAX / 4);
        assert_eq!(spills, 0);
        let (spilled, spills, reserved) = run_with_budget(p, 120_000);
        assert!(
            spills > 3,
            "{mode}: expected several spill runs, got {spills}"
        );
        assert_eq!(reserved, 0);
        assert!(memory[JOINED].len() > 1000, "{mode}");
        assert_eq!(memory, spilled, "{mode}");
    }
}

#[test]
fn both_inputs_arrive_through_a_run() {
    let yaml = r#"
nodes:
  - id: orders
    action: feature_creator
    with:
      features: [{ c: 1 }, { c: 2 }, { c: 7 }]
      repeat: 50
  - id: customers
    action: feature_creator
    with:
      features: [{ id: 1, name: a }, { id: 2, name: b }, { id: 2, name: c }, { id: 3, name: d }]
  - id: j
    action: join
    with: { requestor_key: [c], supplier_key: [id] }
  - { id: a, action: noop_sink }
  - { id: b, action: noop_sink }
  - { id: c, action: noop_sink }
edges:
  - orders -> j.requestor
  - customers -> j.supplier
  - j.joined -> a
  - j.unjoined_requestor -> b
  - j.unjoined_supplier -> c
"#;
    let report = sluice_runtime::testing::run_workflow_yaml(yaml, &crate::registry()).unwrap();
    let ports = &report.node("j").unwrap().ports;
    let expected = [
        ("joined", 150),
        ("unjoined_requestor", 50),
        ("unjoined_supplier", 1),
    ];
    assert_eq!(ports, &expected.map(|(p, n)| (p.to_string(), n)));
}
