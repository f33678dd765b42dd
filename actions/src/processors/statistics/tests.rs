use super::*;
use sluice_runtime::memory::{MemoryBudget, SpillDir};
use sluice_runtime::testing::param_error_path;
use sluice_runtime::testing::{build_processor, drive};

fn run(
    params: serde_json::Value,
    batches: Vec<Batch>,
    ctx: &NodeContext,
) -> Result<Vec<Feature>, ActionError> {
    let mut stats = build_processor(&SPEC, params)?;
    let batches = batches.into_iter().map(|b| (0, b));
    Ok(drive(&mut *stats, batches, ctx, SPEC.outputs)?.remove(0))
}

fn rows(fs: &[Feature]) -> Vec<Vec<Value>> {
    fs.iter().map(|f| f.values().to_vec()).collect()
}

fn orders() -> Vec<Feature> {
    let schema = Schema::new(["city", "amount", "note"]);
    let row = |i: u64, city: Value, amount: Value| {
        Feature::new(i, schema.clone(), vec![city, amount, Value::Null])
    };
    vec![
        row(0, "rome".into(), Value::Int(10)),
        row(1, "oslo".into(), Value::Float(2.5)),
        row(2, "rome".into(), Value::Int(5)),
        row(3, Value::Null, Value::Int(1)),
        row(4, "oslo".into(), Value::Null),
        row(5, "oslo".into(), Value::Int(4)),
    ]
}

fn all_ops() -> serde_json::Value {
    serde_json::json!({
        "group_by": ["city"],
        "aggregates": [
            {"op": "count"},
            {"op": "count", "attribute": "amount"},
            {"op": "sum", "attribute": "amount", "as": "total"},
            {"op": "min", "attribute": "amount"},
            {"op": "max", "attribute": "amount"},
            {"op": "mean", "attribute": "amount"}
        ]
    })
}

#[test]
fn groups_leave_sorted_with_every_aggregate() {
    let ctx = NodeContext::standalone("t");
    let out = run(all_ops(), vec![orders()], &ctx).unwrap();
    let names: Vec<&str> = out[0].schema().names().iter().map(|n| &**n).collect();
    assert_eq!(
        names,
        [
            "city",
            "count",
            "count_amount",
            "total",
            "min_amount",
            "max_amount",
            "mean_amount"
        ]
    );
    assert!(out.iter().all(|f| Arc::ptr_eq(f.schema(), out[0].schema())));
    assert_eq!(out.iter().map(Feature::id).collect::<Vec<_>>(), [0, 1, 2]);
    let i = Value::Int;
    let f = Value::Float;
    assert_eq!(
        rows(&out),
        vec![
            vec![Value::Null, i(1), i(1), i(1), i(1), i(1), f(1.0)],
            vec!["oslo".into(), i(3), i(2), f(6.5), f(2.5), i(4), f(3.25)],
            vec!["rome".into(), i(2), i(2), i(15), i(5), i(10), f(7.5)],
        ]
    );
    assert_eq!(ctx.budget.reserved(), 0);
}

#[test]
fn no_group_by_is_one_group_even_with_no_input() {
    let ctx = NodeContext::standalone("t");
    let params = serde_json::json!({"aggregates": [
        {"op": "count"}, {"op": "sum", "attribute": "amount"}
    ]});
    let out = run(params.clone(), vec![orders()], &ctx).unwrap();
    assert_eq!(rows(&out), vec![vec![Value::Int(6), Value::Float(22.5)]]);
    let empty = run(params, vec![], &ctx).unwrap();
    assert_eq!(rows(&empty), vec![vec![Value::Int(0), Value::Null]]);
}

#[test]
fn equal_numbers_form_one_group_named_by_the_first() {
    let ctx = NodeContext::standalone("t");
    let schema = Schema::new(["g"]);
    let input = [Value::Float(1.0), Value::Int(1), Value::Int(2)]
        .into_iter()
        .enumerate()
        .map(|(i, v)| Feature::new(i as u64, schema.clone(), vec![v]))
        .collect();
    let params = serde_json::json!({"group_by": ["g"], "aggregates": [{"op": "count"}]});
    let out = run(params, vec![input], &ctx).unwrap();
    assert_eq!(
        rows(&out),
        vec![
            vec![Value::Float(1.0), Value::Int(2)],
            vec![Value::Int(2), Value::Int(1)]
        ]
    );
}

#[test]
fn a_non_numeric_sum_fails_naming_feature_attribute_and_value() {
    let ctx = NodeContext::standalone("t");
    let mut input = orders();
    input.push(Feature::new(
        9,
        input[0].schema().clone(),
        vec!["rome".into(), "ten".into(), Value::Null],
    ));
    let err = run(all_ops(), vec![input], &ctx).unwrap_err();
    let ActionError::Data { message, .. } = &err else {
        panic!("{err:?}")
    };
    assert_eq!(
        message,
        "feature 9: sum of \"amount\": string value \"ten\" is not a number"
    );
}

#[test]
fn bad_parameters_are_located() {
    let agg = |a: serde_json::Value| serde_json::json!({"group_by": ["city"], "aggregates": [a]});
    assert_eq!(
        param_error_path(&SPEC, serde_json::json!({"aggregates": []})),
        "aggregates"
    );
    assert_eq!(
        param_error_path(&SPEC, agg(serde_json::json!({"op": "sum"}))),
        "aggregates[0].attribute"
    );
    assert_eq!(
        param_error_path(
            &SPEC,
            agg(serde_json::json!({"op": "mode", "attribute": "a"}))
        ),
        "aggregates[0].op"
    );
    assert_eq!(
        param_error_path(
            &SPEC,
            agg(serde_json::json!({"op": "max", "attribute": "a", "as": "city"}))
        ),
        "aggregates[0].as"
    );
    assert_eq!(
        param_error_path(
            &SPEC,
            serde_json::json!({"aggregates": [{"op": "count"}, {"op": "count"}]})
        ),
        "aggregates[1]"
    );
    assert_eq!(
        param_error_path(
            &SPEC,
            serde_json::json!({"group_by": ["a", "a"], "aggregates": [{"op": "count"}]})
        ),
        "group_by[1]"
    );
}

/// Many groups with mixed ints and floats (sums that a different grouping of float additions
/// would round differently), strings and nulls.
fn many_groups(n: u64) -> Vec<Batch> {
    let schema = Schema::new(["g", "h", "x"]);
    let features: Vec<Feature> = (0..n)
        .map(|i| {
            let g = Value::Int((i * 7919 % 997) as i64);
            let h = if i % 5 == 0 {
                Value::Null
            } else {
                Value::from(format!("h{}", i % 3))
            };
            let x = match i % 4 {
                0 => Value::Float(0.1 * (i % 13) as f64),
                1 => Value::Int(i as i64 * 1_000_003),
                2 => Value::Float(1e17 / (i + 1) as f64),
                _ => Value::Null,
            };
            Feature::new(i, schema.clone(), vec![g, h, x])
        })
        .collect();
    features.chunks(256).map(<[Feature]>::to_vec).collect()
}

/// Runs with a budget of `budget` bytes; returns the output, the spill files written and the
/// bytes still reserved.
fn run_with_budget(params: serde_json::Value, budget: usize) -> (Vec<Feature>, u64, usize) {
    let base = tempfile::tempdir().unwrap();
    let mut ctx = NodeContext::standalone("t");
    ctx.budget = MemoryBudget::new(budget);
    ctx.spill = SpillDir::new(base.path());
    let out = run(params, many_groups(20_000), &ctx).unwrap();
    (out, ctx.spill.totals().0, ctx.budget.reserved())
}

#[test]
fn spilling_gives_the_same_output_as_memory() {
    let params = serde_json::json!({
        "group_by": ["g", "h"],
        "aggregates": [
            {"op": "count"},
            {"op": "count", "attribute": "x"},
            {"op": "sum", "attribute": "x"},
            {"op": "mean", "attribute": "x"},
            {"op": "min", "attribute": "x"},
            {"op": "max", "attribute": "h"}
        ]
    });
    let (memory, memory_spills, _) = run_with_budget(params.clone(), usize::MAX / 4);
    let (spilled, spills, reserved) = run_with_budget(params, 60_000);
    assert_eq!(memory_spills, 0);
    assert!(spills > 3, "expected several spill runs, got {spills}");
    assert_eq!(reserved, 0);
    assert_eq!(memory.len(), 997 * 4);
    assert_eq!(memory.len(), spilled.len());
    for (a, b) in memory.iter().zip(&spilled) {
        assert_eq!(a.id(), b.id());
        assert_eq!(a.schema().names(), b.schema().names());
        // Bitwise float equality: the sums must not depend on the grouping of additions.
        let bits = |v: &Value| match v {
            Value::Float(f) => format!("f{:x}", f.to_bits()),
            other => format!("{other:?}"),
        };
        let (x, y): (Vec<String>, Vec<String>) = (
            a.values().iter().map(bits).collect(),
            b.values().iter().map(bits).collect(),
        );
        assert_eq!(x, y);
    }
}

#[test]
fn a_budget_too_small_for_one_group_fails_with_memory_exhausted() {
    let mut ctx = NodeContext::standalone("t");
    ctx.budget = MemoryBudget::new(16);
    let err = run(all_ops(), vec![orders()], &ctx).unwrap_err();
    assert!(
        matches!(err, ActionError::MemoryExhausted { .. }),
        "{err:?}"
    );
    assert_eq!(ctx.budget.reserved(), 0);
}

// ---------------------------------------------------------------------------------------------
// The ranked, spread, distinct and first/last ops
// ---------------------------------------------------------------------------------------------

/// Four groups: `a` with nulls and ties, `b` with one value, `c` with nulls only, `d` with
/// ties of an int and a float.
fn mixed() -> Vec<Feature> {
    let schema = Schema::new(["g", "x", "s", "d"]);
    let rows: Vec<(&str, Value, Value, Value)> = vec![
        ("a", Value::Int(3), "pear".into(), Value::Date(19_000)),
        ("c", Value::Null, Value::Null, Value::Null),
        ("a", Value::Null, Value::Null, Value::Date(18_500)),
        ("d", Value::Int(7), "x".into(), Value::Null),
        ("a", Value::Int(1), "apple".into(), Value::Null),
        ("b", Value::Int(-2), "kiwi".into(), Value::Date(1)),
        ("a", Value::Float(4.0), "fig".into(), Value::Date(19_500)),
        ("d", Value::Float(7.0), "x".into(), Value::Null),
        ("a", Value::Int(1), "apple".into(), Value::Date(18_000)),
        ("c", Value::Null, Value::Null, Value::Null),
        ("a", Value::Int(5), Value::Null, Value::Null),
        ("d", Value::Int(7), "x".into(), Value::Null),
    ];
    rows.into_iter()
        .enumerate()
        .map(|(i, (g, x, s, d))| Feature::new(i as u64, schema.clone(), vec![g.into(), x, s, d]))
        .collect()
}

fn new_ops() -> serde_json::Value {
    serde_json::json!({
        "group_by": ["g"],
        "aggregates": [
            {"op": "median", "attribute": "x"},
            {"op": "percentile", "attribute": "x", "p": 0.625, "as": "p625"},
            {"op": "percentile", "attribute": "x", "p": 0.25, "as": "p25"},
            {"op": "variance", "attribute": "x"},
            {"op": "variance_pop", "attribute": "x"},
            {"op": "stddev", "attribute": "x"},
            {"op": "stddev_pop", "attribute": "x"},
            {"op": "count_distinct", "attribute": "x"},
            {"op": "count_distinct", "attribute": "s"},
            {"op": "first", "attribute": "x"},
            {"op": "last", "attribute": "x"},
            {"op": "first", "attribute": "s"},
            {"op": "last", "attribute": "s"},
            {"op": "min", "attribute": "s"},
            {"op": "max", "attribute": "s"},
            {"op": "min", "attribute": "d"},
            {"op": "max", "attribute": "d"}
        ]
    })
}

#[test]
fn new_ops_by_hand_with_nulls_single_values_and_ties() {
    let ctx = NodeContext::standalone("t");
    let out = run(new_ops(), vec![mixed()], &ctx).unwrap();
    let (i, f, n) = (Value::Int, Value::Float, Value::Null);
    let s = |x: &str| Value::from(x);
    // a: x = 3, 1, 4.0, 1, 5 (sorted 1 1 3 4 5; mean 2.8, squared deviations sum 12.8);
    //    s = pear, apple, fig, apple; d = 19000, 18500, 19500, 18000.
    //    p 0.625: rank 2.5, halfway from 3 to 4; p 0.25: rank 1, the second 1.
    let a = vec![
        s("a"),
        f(3.0),
        f(3.5),
        f(1.0),
        f(3.2),
        f(2.56),
        f(3.2f64.sqrt()),
        f(1.6),
        i(4),
        i(3),
        i(3),
        i(5),
        s("pear"),
        s("apple"),
        s("apple"),
        s("pear"),
        Value::Date(18_000),
        Value::Date(19_500),
    ];
    // b: one value. The sample spread of one value is null; the population one is 0.
    let b = vec![
        s("b"),
        f(-2.0),
        f(-2.0),
        f(-2.0),
        n.clone(),
        f(0.0),
        n.clone(),
        f(0.0),
        i(1),
        i(1),
        i(-2),
        i(-2),
        s("kiwi"),
        s("kiwi"),
        s("kiwi"),
        s("kiwi"),
        Value::Date(1),
        Value::Date(1),
    ];
    // c: nulls only: every result null, distinct counts 0.
    let mut c = vec![n.clone(); 18];
    c[0] = s("c");
    c[8] = i(0);
    c[9] = i(0);
    // d: 7, 7.0, 7 are one distinct value; first and last are the ints that came first and
    // last.
    let d = vec![
        s("d"),
        f(7.0),
        f(7.0),
        f(7.0),
        f(0.0),
        f(0.0),
        f(0.0),
        f(0.0),
        i(1),
        i(1),
        i(7),
        i(7),
        s("x"),
        s("x"),
        s("x"),
        s("x"),
        n.clone(),
        n,
    ];
    assert_eq!(rows(&out), vec![a, b, c, d]);
    assert_eq!(ctx.budget.reserved(), 0);
}

#[test]
fn float_ties_keep_the_first_for_min_max_first_and_last_keeps_the_last() {
    let ctx = NodeContext::standalone("t");
    let schema = Schema::new(["x"]);
    let input: Vec<Feature> = [
        Value::Float(2.0),
        Value::Int(2),
        Value::Null,
        Value::Float(2.0),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, v)| Feature::new(i as u64, schema.clone(), vec![v]))
    .collect();
    let params = serde_json::json!({"aggregates": [
        {"op": "min", "attribute": "x"}, {"op": "max", "attribute": "x"},
        {"op": "first", "attribute": "x"}, {"op": "last", "attribute": "x"},
        {"op": "median", "attribute": "x"}, {"op": "count_distinct", "attribute": "x"}
    ]});
    let out = run(params, vec![input], &ctx).unwrap();
    let f = Value::Float;
    assert_eq!(
        rows(&out),
        vec![vec![f(2.0), f(2.0), f(2.0), f(2.0), f(2.0), Value::Int(1)]]
    );
}

#[test]
fn empty_input_gives_each_op_its_empty_result() {
    let ctx = NodeContext::standalone("t");
    let mut params = new_ops();
    params["group_by"] = serde_json::json!([]);
    let out = run(params, vec![], &ctx).unwrap();
    let mut want = vec![Value::Null; 17];
    want[7] = Value::Int(0);
    want[8] = Value::Int(0);
    assert_eq!(rows(&out), vec![want]);
    // With group_by, no input is no group.
    assert!(run(new_ops(), vec![], &ctx).unwrap().is_empty());
}

#[test]
fn non_numeric_values_fail_the_numeric_ops_only() {
    let ctx = NodeContext::standalone("t");
    for (op, ok) in [
        ("median", false),
        ("variance", false),
        ("stddev_pop", false),
        ("count_distinct", true),
        ("first", true),
        ("last", true),
    ] {
        let params = serde_json::json!({"group_by": ["g"], "aggregates": [
            {"op": op, "attribute": "s"}
        ]});
        let result = run(params, vec![mixed()], &ctx);
        if ok {
            assert!(result.is_ok(), "{op}: {result:?}");
            continue;
        }
        let err = result.unwrap_err();
        let ActionError::Data { message, .. } = &err else {
            panic!("{err:?}")
        };
        assert_eq!(
            message,
            &format!("feature 0: {op} of \"s\": string value \"pear\" is not a number")
        );
    }
}

/// The paths of every parameter error of `params`, in order.
fn param_paths(params: serde_json::Value) -> Vec<String> {
    let err = build_processor(&SPEC, params)
        .err()
        .expect("a parameter error");
    let list = match err {
        ActionError::Many(list) => list,
        one => vec![one],
    };
    list.into_iter()
        .map(|e| match e {
            ActionError::Param { path, .. } => path,
            other => panic!("expected a parameter error, got {other:?}"),
        })
        .collect()
}

#[test]
fn every_parameter_error_is_reported_at_once() {
    let params = serde_json::json!({
        "group_by": ["g", ""],
        "aggregates": [
            {"op": "count"},
            {"op": "mode", "attribute": "x"},
            {"op": "percentile", "attribute": "x", "p": 1.5},
            {"op": "percentile", "attribute": "x", "as": "p"},
            {"op": "median", "attribute": "x", "p": 0.5},
            {"op": "stddev"},
            {"op": "first", "attribute": "x", "as": "g"}
        ]
    });
    assert_eq!(
        param_paths(params),
        [
            "group_by[1]",
            "aggregates[1].op",
            "aggregates[2].p",
            "aggregates[3].p",
            "aggregates[4].p",
            "aggregates[5].attribute",
            "aggregates[6].as",
        ]
    );
    // Two percentiles of one attribute need `as`.
    let twice = serde_json::json!({"aggregates": [
        {"op": "percentile", "attribute": "x", "p": 0.1},
        {"op": "percentile", "attribute": "x", "p": 0.9}
    ]});
    assert_eq!(param_paths(twice), ["aggregates[1]"]);
    let err = build_processor(
        &SPEC,
        serde_json::json!({"aggregates": [{"op": "percentile", "attribute": "x", "p": -0.1}]}),
    )
    .err()
    .unwrap();
    assert_eq!(
        err.to_string(),
        ActionError::param(
            "",
            "p must be in [0, 1] (0.9 for the 90th percentile), not -0.1"
        )
        .to_string()
    );
}

#[test]
fn the_example_parses_and_runs() {
    let params = sluice_runtime::workflow::yaml::parse(SPEC.example)
        .unwrap()
        .to_json();
    let schema = Schema::new(["city", "amount", "customer", "date"]);
    let input: Vec<Feature> = [(10, "ann", 3), (30, "bob", 1), (20, "ann", 2)]
        .into_iter()
        .enumerate()
        .map(|(i, (amount, who, day))| {
            let values = vec![
                "rome".into(),
                Value::Int(amount),
                who.into(),
                Value::Date(day),
            ];
            Feature::new(i as u64, schema.clone(), values)
        })
        .collect();
    let ctx = NodeContext::standalone("t");
    let out = run(params, vec![input], &ctx).unwrap();
    let names: Vec<&str> = out[0].schema().names().iter().map(|n| &**n).collect();
    assert_eq!(
        names,
        [
            "city",
            "count",
            "total",
            "median_amount",
            "p90_amount",
            "stddev_amount",
            "customers",
            "last_order"
        ]
    );
    // Sorted 10 20 30: median 20; p90 at rank 1.8, 0.8 of the way from 20 to 30; sample
    // standard deviation 10; the last date in arrival order, not the latest.
    assert_eq!(
        rows(&out),
        vec![vec![
            "rome".into(),
            Value::Int(3),
            Value::Int(60),
            Value::Float(20.0),
            Value::Float(28.0),
            Value::Float(10.0),
            Value::Int(2),
            Value::Date(2),
        ]]
    );
}

/// A few groups whose value lists are far bigger than the spill test's budget: many ties,
/// nulls, ints, floats past 2^53, strings for the distinct count, dates, and values in an
/// order where first and last differ from min and max.
fn big_groups(n: u64) -> Vec<Batch> {
    let schema = Schema::new(["g", "x", "s", "d"]);
    let features: Vec<Feature> = (0..n)
        .map(|i| {
            let g = match i % 7 {
                0 => Value::Null,
                r => Value::Int((r % 3) as i64),
            };
            let r = i * 7919 % 1000;
            let x = match i % 5 {
                0 => Value::Null,
                1 => Value::Int(r as i64 - 300),
                2 => Value::Float(r as f64 * 0.37 + 1e9),
                3 => Value::Int((1 << 54) + r as i64),
                _ => Value::Float(-(r as f64) / 3.0),
            };
            let s = if i % 11 == 0 {
                Value::Null
            } else {
                Value::from(format!("s{}", r % 257))
            };
            let d = if i % 13 == 0 {
                Value::Null
            } else {
                Value::Date(r as i32 - 500)
            };
            Feature::new(i, schema.clone(), vec![g, x, s, d])
        })
        .collect();
    features.chunks(256).map(<[Feature]>::to_vec).collect()
}

fn every_new_op(group_by: &[&str]) -> serde_json::Value {
    serde_json::json!({
        "group_by": group_by,
        "aggregates": [
            {"op": "count"},
            {"op": "median", "attribute": "x"},
            {"op": "percentile", "attribute": "x", "p": 0.9, "as": "p90"},
            {"op": "percentile", "attribute": "x", "p": 0.013, "as": "p1"},
            {"op": "variance", "attribute": "x"},
            {"op": "variance_pop", "attribute": "x"},
            {"op": "stddev", "attribute": "x"},
            {"op": "stddev_pop", "attribute": "x"},
            {"op": "count_distinct", "attribute": "x"},
            {"op": "count_distinct", "attribute": "s"},
            {"op": "first", "attribute": "x"},
            {"op": "last", "attribute": "x"},
            {"op": "first", "attribute": "s"},
            {"op": "last", "attribute": "s"},
            {"op": "min", "attribute": "s"},
            {"op": "max", "attribute": "s"},
            {"op": "min", "attribute": "d"},
            {"op": "max", "attribute": "d"},
            {"op": "first", "attribute": "d"},
            {"op": "last", "attribute": "d"},
            {"op": "sum", "attribute": "x"},
            {"op": "mean", "attribute": "x"}
        ]
    })
}

/// Output values with floats as bits, so `-0.0`, NaN and the last bit count.
fn bits(fs: &[Feature]) -> Vec<Vec<String>> {
    fs.iter()
        .map(|f| {
            f.values()
                .iter()
                .map(|v| match v {
                    Value::Float(x) => format!("f{:x}", x.to_bits()),
                    other => format!("{other:?}"),
                })
                .collect()
        })
        .collect()
}

#[test]
fn groups_bigger_than_the_budget_spill_and_give_the_same_output() {
    const ROWS: u64 = 20_000;
    const BUDGET: usize = 45_000;
    for group_by in [&["g"][..], &[]] {
        let params = every_new_op(group_by);
        let run_with = |budget: usize| {
            let base = tempfile::tempdir().unwrap();
            let mut ctx = NodeContext::standalone("t");
            ctx.budget = MemoryBudget::new(budget);
            ctx.spill = SpillDir::new(base.path());
            let out = run(params.clone(), big_groups(ROWS), &ctx).unwrap();
            (out, ctx.spill.totals().0, ctx.budget.reserved())
        };
        let (memory, memory_spills, _) = run_with(usize::MAX / 4);
        let (spilled, spills, reserved) = run_with(BUDGET);
        assert_eq!(memory_spills, 0);
        assert!(spills > 10, "expected many spill runs, got {spills}");
        assert_eq!(reserved, 0);
        assert_eq!(memory.len(), if group_by.is_empty() { 1 } else { 4 });
        // Each group has at least 2 500 rows, 4 in 5 with a value of `x` held for the
        // median: 24 bytes each at the very least, more than the budget.
        for f in &memory {
            let Value::Int(rows) = f.values()[group_by.len()] else {
                panic!("{f:?}")
            };
            assert!(
                rows >= 2_500 && rows as usize * 4 / 5 * 24 > BUDGET,
                "{rows}"
            );
        }
        assert_eq!(bits(&memory), bits(&spilled));
        // The output is not trivially empty: every group has a median and a spread.
        for f in &memory {
            assert!(matches!(f.values()[group_by.len() + 1], Value::Float(_)));
            assert!(matches!(f.values()[group_by.len() + 5], Value::Float(_)));
        }
    }
}

#[test]
fn many_small_groups_spill_the_new_ops_too() {
    let mut params = every_new_op(&["g", "h"]);
    params["aggregates"] = serde_json::json!([
        {"op": "median", "attribute": "x"},
        {"op": "variance", "attribute": "x"},
        {"op": "count_distinct", "attribute": "h"},
        {"op": "first", "attribute": "x"},
        {"op": "last", "attribute": "x"}
    ]);
    let (memory, memory_spills, _) = run_with_budget(params.clone(), usize::MAX / 4);
    let (spilled, spills, reserved) = run_with_budget(params, 60_000);
    assert_eq!(memory_spills, 0);
    assert!(spills > 3, "expected several spill runs, got {spills}");
    assert_eq!(reserved, 0);
    assert_eq!(memory.len(), 997 * 4);
    assert_eq!(bits(&memory), bits(&spilled));
}
