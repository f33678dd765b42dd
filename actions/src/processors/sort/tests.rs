use super::buffer::compare_values;
use super::*;
use sluice_runtime::memory::MemoryBudget;
use sluice_runtime::testing::{build_processor, drive};
use sluice_runtime::{Feature, Schema, Value};
use std::cmp::Ordering;

fn run(
    params: serde_json::Value,
    batches: Vec<Batch>,
    ctx: &NodeContext,
) -> Result<Vec<Feature>, ActionError> {
    let mut sort = build_processor(&SPEC, params)?;
    let batches = batches.into_iter().map(|b| (0, b));
    Ok(drive(&mut *sort, batches, ctx, SPEC.outputs)?.remove(0))
}

fn ids(fs: &[Feature]) -> Vec<u64> {
    fs.iter().map(Feature::id).collect()
}

fn rows(rows: &[(Value, Value)]) -> Batch {
    let schema = Schema::new(["a", "b"]);
    rows.iter()
        .enumerate()
        .map(|(i, (a, b))| Feature::new(i as u64, schema.clone(), vec![a.clone(), b.clone()]))
        .collect()
}

#[test]
fn bad_params_are_located() {
    let err = build_processor(&SPEC, serde_json::json!({"by": []}))
        .err()
        .unwrap();
    assert!(
        matches!(err, ActionError::Param { ref path, .. } if path == "by"),
        "{err:?}"
    );
    let err = build_processor(
        &SPEC,
        serde_json::json!({"by": [{"attribute": "a", "nulls": "middle"}]}),
    )
    .err()
    .unwrap();
    assert!(
        matches!(err, ActionError::Param { ref path, .. } if path == "by[0].nulls"),
        "{err:?}"
    );
    let err = build_processor(&SPEC, serde_json::json!({"by": [{"attr": "a"}]}))
        .err()
        .unwrap();
    assert!(matches!(err, ActionError::Param { .. }), "{err:?}");
}

#[test]
fn multi_key_with_default_null_placement() {
    use Value::Null;
    let input = rows(&[
        (Value::from("x"), Value::Int(1)), // 0
        (Null, Value::Int(5)),             // 1
        (Value::from("a"), Null),          // 2
        (Value::from("a"), Value::Int(3)), // 3
        (Value::from("x"), Value::Int(9)), // 4
        (Value::from("a"), Value::Int(7)), // 5
    ]);
    let params = serde_json::json!({"by": [
        {"attribute": "a"},
        {"attribute": "b", "descending": true}
    ]});
    let out = run(params, vec![input], &NodeContext::standalone("t")).unwrap();
    // a ascending, nulls last; b descending, nulls first.
    assert_eq!(ids(&out), vec![2, 5, 3, 4, 0, 1]);
}

#[test]
fn explicit_null_placement_and_missing_attribute() {
    let schema = Schema::new(["a"]);
    let other = Schema::new(["z"]);
    let input = vec![
        Feature::new(0, schema.clone(), vec![Value::Int(2)]),
        Feature::new(1, other, vec![Value::Int(0)]), // no `a`: null
        Feature::new(2, schema.clone(), vec![Value::Null]),
        Feature::new(3, schema, vec![Value::Float(1.5)]),
    ];
    let ctx = NodeContext::standalone("t");
    let asc_first = serde_json::json!({"by": [{"attribute": "a", "nulls": "first"}]});
    assert_eq!(
        ids(&run(asc_first, vec![input.clone()], &ctx).unwrap()),
        vec![1, 2, 3, 0]
    );
    let desc_last =
        serde_json::json!({"by": [{"attribute": "a", "descending": true, "nulls": "last"}]});
    assert_eq!(
        ids(&run(desc_last, vec![input], &ctx).unwrap()),
        vec![0, 3, 1, 2]
    );
}

#[test]
fn ties_keep_arrival_order_across_batches() {
    let input = rows(
        &(0..50)
            .map(|i| (Value::Int(i % 3), Value::Null))
            .collect::<Vec<_>>(),
    );
    let batches: Vec<Batch> = input.chunks(7).map(<[Feature]>::to_vec).collect();
    let params = serde_json::json!({"by": [{"attribute": "a", "descending": true}]});
    let out = run(params, batches, &NodeContext::standalone("t")).unwrap();
    let mut expected: Vec<u64> = (0..50).filter(|i| i % 3 == 2).collect();
    expected.extend((0..50).filter(|i| i % 3 == 1));
    expected.extend((0..50).filter(|i| i % 3 == 0));
    assert_eq!(ids(&out), expected);
}

/// A small deterministic generator (no extra dependency).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn value(&mut self) -> Value {
        match self.next() % 6 {
            0 => Value::Null,
            1 => Value::Float((self.next() % 200) as f64 / 4.0),
            2 => Value::from(format!("s{}", self.next() % 50)),
            _ => Value::Int((self.next() % 100) as i64),
        }
    }
}

#[test]
fn hundred_thousand_random_features_match_a_std_sort_oracle() {
    let mut rng = Lcg(42);
    let schema = Schema::new(["k1", "k2", "payload"]);
    let input: Vec<Feature> = (0..100_000)
        .map(|i| {
            Feature::new(
                i,
                schema.clone(),
                vec![rng.value(), rng.value(), Value::Int(i as i64)],
            )
        })
        .collect();
    // The oracle, written independently: nulls as the largest value, then reversed for
    // the descending key.
    let cmp_nulls_last = |a: &Value, b: &Value| match (a.is_null(), b.is_null()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        _ => a.total_cmp(b),
    };
    let mut expected = input.clone();
    expected.sort_by(|x, y| {
        let (xa, ya) = (x.get("k1").unwrap(), y.get("k1").unwrap());
        let (xb, yb) = (x.get("k2").unwrap(), y.get("k2").unwrap());
        cmp_nulls_last(xa, ya).then_with(|| cmp_nulls_last(xb, yb).reverse())
    });
    let batches: Vec<Batch> = input.chunks(1000).map(<[Feature]>::to_vec).collect();
    let params = serde_json::json!({"by": [
        {"attribute": "k1"},
        {"attribute": "k2", "descending": true}
    ]});
    let ctx = NodeContext::standalone("t");
    let out = run(params, batches, &ctx).unwrap();
    assert_eq!(ids(&out), ids(&expected));
}

/// An independent oracle: `Vec::sort_by` over the values themselves.
fn oracle(input: &[Feature], keys: &[(&str, bool, bool)]) -> Vec<u64> {
    let mut expected = input.to_vec();
    expected.sort_by(|x, y| {
        for &(name, descending, nulls_first) in keys {
            let (a, b) = (
                x.get(name).unwrap_or(&Value::Null),
                y.get(name).unwrap_or(&Value::Null),
            );
            let o = match (a.is_null(), b.is_null()) {
                (true, true) => Ordering::Equal,
                (true, false) => {
                    if nulls_first {
                        Ordering::Less
                    } else {
                        Ordering::Greater
                    }
                }
                (false, true) => {
                    if nulls_first {
                        Ordering::Greater
                    } else {
                        Ordering::Less
                    }
                }
                _ if descending => b.total_cmp(a),
                _ => a.total_cmp(b),
            };
            if o != Ordering::Equal {
                return o;
            }
        }
        Ordering::Equal
    });
    ids(&expected)
}

#[test]
fn values_the_normalized_keys_cannot_decide_still_sort_exactly() {
    let big = i64::MAX;
    let pool = vec![
        Value::from("prefix_shared_b"),
        Value::from("a_common_prefix_longer_than_16_b"),
        Value::from("a_common_prefix_longer_than_16_a"),
        Value::from("a_common_prefix_"),
        Value::from("prefix_shared_a"),
        Value::from("prefix_s"),
        Value::from("a"),
        Value::from("a\0"),
        Value::from("a\0b"),
        Value::from(""),
        Value::Int(big),
        Value::Int(big - 1),
        Value::Int(-big),
        Value::Int(1 << 53),
        Value::Float(9007199254740992.0),
        Value::Int(0),
        Value::Float(-0.0),
        Value::Float(0.0),
        Value::Float(f64::NAN),
        Value::Float(f64::NEG_INFINITY),
        Value::Bytes(vec![0, 0, 0, 0, 0, 0, 0, 0, 1].into()),
        Value::Bytes(vec![0, 0, 0, 0, 0, 0, 0, 0].into()),
        Value::Bytes(vec![].into()),
        Value::Array(vec![Value::Int(1), Value::Int(2)].into()),
        Value::Array(vec![Value::Int(1)].into()),
        Value::Date(-5),
        Value::DateTime(-5),
        Value::DateTime(i64::MAX),
        Value::Bool(false),
        Value::Null,
    ];
    let mut rng = Lcg(7);
    let schema = Schema::new(["k1", "k2", "k3", "k4"]);
    let input: Vec<Feature> = (0..20_000)
        .map(|i| {
            let mut pick = || pool[(rng.next() % pool.len() as u64) as usize].clone();
            Feature::new(i, schema.clone(), vec![pick(), pick(), pick(), pick()])
        })
        .collect();
    let ctx = NodeContext::standalone("t");
    // Four keys: three inside the sort entries, the fourth read from the flat arrays.
    let params = serde_json::json!({"by": [
        {"attribute": "k1"},
        {"attribute": "k2", "descending": true},
        {"attribute": "k3", "nulls": "first"},
        {"attribute": "k4", "descending": true, "nulls": "last"}
    ]});
    let keys = [
        ("k1", false, false),
        ("k2", true, true),
        ("k3", false, true),
        ("k4", true, false),
    ];
    let out = run(params, vec![input.clone()], &ctx).unwrap();
    assert_eq!(ids(&out), oracle(&input, &keys));
    for key in keys {
        let (name, descending, _) = key;
        let params = serde_json::json!({"by": [{"attribute": name, "descending": descending}]});
        let out = run(params, vec![input.clone()], &ctx).unwrap();
        assert_eq!(
            ids(&out),
            oracle(&input, &[(name, descending, descending)]),
            "{name}"
        );
    }
}

/// Features whose key sits in another column (schemas alternating feature by feature) and
/// whose keys only the values themselves can order (long strings with a common prefix): the
/// in-place comparison finds each feature's own column.
#[test]
fn keys_in_other_columns_are_compared_in_place_correctly() {
    let first = Schema::new(["k", "x"]);
    let second = Schema::new(["x", "y", "k"]);
    let third = Schema::new(["x"]);
    let mut rng = Lcg(11);
    let input: Vec<Feature> = (0..5_000)
        .map(|i| {
            let key = Value::from(format!(
                "a_common_prefix_longer_than_16_{}",
                rng.next() % 50
            ));
            match (rng.next() % 7, i % 3) {
                (0, _) => Feature::new(i, third.clone(), vec![Value::Int(1)]),
                (_, 0) => Feature::new(i, first.clone(), vec![key, Value::Int(2)]),
                _ => Feature::new(i, second.clone(), vec![Value::Int(3), Value::Null, key]),
            }
        })
        .collect();
    let ctx = NodeContext::standalone("t");
    let batches: Vec<Batch> = input.chunks(300).map(<[Feature]>::to_vec).collect();
    let out = run(
        serde_json::json!({"by": [{"attribute": "k"}]}),
        batches,
        &ctx,
    )
    .unwrap();
    assert_eq!(ids(&out), oracle(&input, &[("k", false, false)]));
}

#[test]
fn huge_ints_next_to_floats_sort_exactly_without_panicking() {
    let two53 = 1i64 << 53;
    let values = [
        Value::Int(i64::MAX),             // 0
        Value::Int(two53 + 1),            // 1
        Value::Float(two53 as f64),       // 2
        Value::Int(two53),                // 3
        Value::Float(9.3e18),             // 4
        Value::Float(0.0),                // 5
        Value::Int(0),                    // 6
        Value::Float(-0.0),               // 7
        Value::Float((two53 + 2) as f64), // 8
        Value::Int(i64::MIN),             // 9
        Value::Float(-f64::NAN),          // 10
    ];
    let input = rows(&values.map(|v| (v, Value::Null)));
    let ctx = NodeContext::standalone("t");
    let out = run(
        serde_json::json!({"by": [{"attribute": "a"}]}),
        vec![input],
        &ctx,
    )
    .unwrap();
    // Equal numbers (0 and 0.0, 2^53 and 2^53 as a float) keep their arrival order.
    assert_eq!(ids(&out), vec![10, 9, 7, 5, 6, 2, 3, 1, 8, 0, 4]);
    assert_eq!(
        compare_values(&Value::Int(two53 + 1), &Value::Float(two53 as f64)),
        Ordering::Greater
    );
    assert_eq!(
        compare_values(&Value::Float(f64::NAN), &Value::Int(i64::MAX)),
        Ordering::Greater
    );
}

#[test]
fn reservation_is_held_while_accumulating_and_zero_after_finish() {
    let ctx = NodeContext::standalone("t");
    let mut sort = build_processor(&SPEC, serde_json::json!({"by": [{"attribute": "a"}]})).unwrap();
    let mut out = Emitter::buffer(1);
    let input = rows(
        &(0..20_000)
            .map(|i| (Value::Int(20_000 - i), Value::from("some text")))
            .collect::<Vec<_>>(),
    );
    let held: usize = input.iter().map(Feature::mem_size).sum();
    sort.process(0, input, &ctx, &mut out).unwrap();
    assert!(ctx.budget.reserved() >= held);
    sort.finish(&ctx, &mut out).unwrap();
    assert_eq!(ctx.budget.reserved(), 0);
    let out = out.into_buffers().remove(0);
    assert_eq!(out.len(), 20_000);
    assert_eq!(out[0].get("a"), Some(&Value::Int(1)));
    drop(sort);
    assert_eq!(ctx.budget.reserved(), 0);
}

/// Runs a sort with a budget of `budget` bytes and returns (output, spill files written).
fn run_with_budget(
    params: serde_json::Value,
    batches: Vec<Batch>,
    budget: usize,
) -> (Vec<Feature>, u64) {
    let mut ctx = NodeContext::standalone("t");
    ctx.budget = MemoryBudget::new(budget);
    ctx.spill = sluice_runtime::memory::SpillDir::system();
    let out = run(params, batches, &ctx).unwrap();
    assert_eq!(ctx.budget.reserved(), 0, "every reserved byte is returned");
    (out, ctx.spill.totals().0)
}

fn signature(fs: &[Feature]) -> Vec<(u64, Vec<String>)> {
    fs.iter()
        .map(|f| {
            (
                f.id(),
                f.values().iter().map(|v| format!("{v:?}")).collect(),
            )
        })
        .collect()
}

#[test]
fn a_full_budget_spills_and_the_output_is_identical() {
    // 100 batches of 100 features with many ties: a 40 KB budget holds about 150 of them, so
    // the sort must write dozens of runs and merge them.
    let params =
        serde_json::json!({"by": [{"attribute": "a", "descending": true}, {"attribute": "b"}]});
    let batches = || -> Vec<Batch> {
        (0..100)
            .map(|c| {
                rows(
                    &(0..100)
                        .map(|i| {
                            let n = (c * 37 + i * 11) % 23;
                            let a = if n == 0 { Value::Null } else { Value::Int(n) };
                            (a, Value::from(format!("s{}", (c + i) % 7)))
                        })
                        .collect::<Vec<_>>(),
                )
            })
            .collect()
    };
    let (memory, spills_memory) = run_with_budget(params.clone(), batches(), usize::MAX / 4);
    let (spilled, spills) = run_with_budget(params, batches(), 40_000);
    assert_eq!(spills_memory, 0);
    assert!(spills > 10, "expected many spill runs, got {spills}");
    assert_eq!(spilled.len(), 10_000);
    assert_eq!(signature(&memory), signature(&spilled));
}

use proptest::prelude::Strategy as _;

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 24, .. Default::default() })]
    /// DataFusion-style sort fuzz: random values (ties, nulls, mixed types), random batch
    /// sizes and small budgets; spilled output equals the in-memory output.
    #[test]
    fn spilled_sort_equals_in_memory_sort(
        values in proptest::collection::vec(
            proptest::prop_oneof![
                proptest::prelude::Just(Value::Null),
                (-5i64..5).prop_map(Value::Int),
                (-5.0f64..5.0).prop_map(|f| Value::Float((f * 2.0).round() / 2.0)),
                "[a-c]{0,2}".prop_map(|s: String| Value::from(s)),
            ],
            1..600,
        ),
        batch in 1usize..64,
        budget in 2_000usize..30_000,
        descending in proptest::bool::ANY,
    ) {
        let params = serde_json::json!({"by": [{"attribute": "a", "descending": descending}]});
        let input: Vec<(Value, Value)> = values.iter().map(|v| (v.clone(), Value::Null)).collect();
        let make = || rows(&input).chunks(batch).map(|c| c.to_vec()).collect::<Vec<Batch>>();
        let (memory, _) = run_with_budget(params.clone(), make(), usize::MAX / 4);
        let (spilled, _) = run_with_budget(params, make(), budget);
        proptest::prop_assert_eq!(signature(&memory), signature(&spilled));
    }
}

#[test]
fn mixed_types_and_nan_do_not_panic() {
    let input = rows(&[
        (Value::Float(f64::NAN), Value::Null),
        (Value::from("b"), Value::Null),
        (Value::Bool(true), Value::Null),
        (Value::Int(3), Value::Null),
        (Value::Bytes(vec![1, 2].into()), Value::Null),
        (Value::Float(-0.5), Value::Null),
    ]);
    let params = serde_json::json!({"by": [{"attribute": "a"}]});
    let out = run(params, vec![input], &NodeContext::standalone("t")).unwrap();
    assert_eq!(ids(&out), vec![2, 5, 3, 0, 1, 4]);
}

#[test]
fn empty_input_emits_nothing() {
    let ctx = NodeContext::standalone("t");
    let out = run(
        serde_json::json!({"by": [{"attribute": "a"}]}),
        vec![],
        &ctx,
    )
    .unwrap();
    assert!(out.is_empty());
    assert_eq!(ctx.budget.reserved(), 0);
}

#[test]
fn sorts_inside_a_run_and_reports_its_reservation() {
    let yaml = r#"
nodes:
  - id: seed
    action: feature_creator
    with:
      features: [{ a: 3 }, { a: 1 }, { a: null }, { a: 2 }]
      repeat: 2500
  - { id: order, action: sort, with: { by: [{ attribute: a }] } }
  - { id: out, action: noop_sink }
edges: [seed -> order, order -> out]
"#;
    // The harness also checks that the reservation is back to zero once `finish` returns.
    let report = sluice_runtime::testing::run_workflow_yaml(yaml, &crate::registry()).unwrap();
    let node = report.node("order").unwrap();
    assert_eq!((node.features_in, node.features_out), (10_000, 10_000));
    assert!(node.peak_reservation > 0);
}

/// Entries start one word per key and widen when a key needs both (a string longer than 8
/// bytes): numbers first, then strings that share their first 8 bytes arrive mid-buffer;
/// with one to four keys the order is the oracle's.
#[test]
fn entries_widen_mid_buffer_and_still_sort_exactly() {
    let mut rng = Lcg(7);
    let names = ["k1", "k2", "k3", "k4"];
    let schema = Schema::new(names);
    let input: Vec<Feature> = (0..20_000u64)
        .map(|i| {
            let values = (0..4)
                .map(|_| match (i < 12_000, rng.next() % 4) {
                    (true, 0) => Value::Float((rng.next() % 300) as f64 / 8.0),
                    (true, _) => Value::Int((rng.next() % 50) as i64),
                    (false, 0) => Value::from(format!("category_{:03}", rng.next() % 40)),
                    (false, 1) => Value::from(format!("cat_{}", rng.next() % 9)),
                    (false, _) => Value::Int((rng.next() % 50) as i64),
                })
                .collect();
            Feature::new(i, schema.clone(), values)
        })
        .collect();
    for k in 1..=4 {
        let keys: Vec<(&str, bool, bool)> = names
            .iter()
            .take(k)
            .map(|&n| (n, k % 2 == 0, false))
            .collect();
        let by: Vec<serde_json::Value> = keys
            .iter()
            .map(|(n, d, _)| serde_json::json!({"attribute": n, "descending": d}))
            .collect();
        let batches: Vec<Batch> = input.chunks(700).map(<[Feature]>::to_vec).collect();
        let ctx = NodeContext::standalone("t");
        let out = run(serde_json::json!({ "by": by }), batches, &ctx).unwrap();
        assert_eq!(ids(&out), oracle(&input, &keys), "{k} keys");
    }
}
