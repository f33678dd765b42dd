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
            agg(serde_json::json!({"op": "median", "attribute": "a"}))
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
