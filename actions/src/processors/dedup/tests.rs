use super::*;
use sluice_runtime::memory::{MemoryBudget, SpillDir};
use sluice_runtime::testing::{build_processor, drive};
use sluice_runtime::{Feature, Geometry};

/// Runs dedup; returns (default, duplicates).
fn run(
    params: serde_json::Value,
    batches: Vec<Batch>,
    ctx: &NodeContext,
) -> Result<(Vec<Feature>, Vec<Feature>), ActionError> {
    let mut dedup = build_processor(&SPEC, params)?;
    let batches = batches.into_iter().map(|b| (0, b));
    let mut b = drive(&mut *dedup, batches, ctx, SPEC.outputs)?;
    let dups = b.pop().unwrap();
    Ok((b.pop().unwrap(), dups))
}

fn ids(fs: &[Feature]) -> Vec<u64> {
    fs.iter().map(Feature::id).collect()
}

fn people() -> Vec<Feature> {
    let schema = Schema::new(["name", "age"]);
    let row =
        |i: u64, name: &str, age: Value| Feature::new(i, schema.clone(), vec![name.into(), age]);
    vec![
        row(0, "ann", Value::Int(30)),
        row(1, "bob", Value::Int(30)),
        row(2, "ann", Value::Float(30.0)),
        row(3, "ann", Value::Int(31)),
        row(4, "bob", Value::Null),
        row(5, "bob", Value::Null),
        // The same attributes in another order (and a geometry, which is not compared).
        Feature::from_pairs(6, [("age", Value::Int(30)), ("name", "bob".into())])
            .with_geometry(Some(Geometry::new(geo_types::Point::new(0.0, 0.0).into()))),
        Feature::from_pairs(7, [("name", Value::from("bob"))]),
    ]
}

#[test]
fn by_attributes_passes_the_first_of_each_key() {
    let ctx = NodeContext::standalone("t");
    let (first, dups) = run(serde_json::json!({"by": ["name"]}), vec![people()], &ctx).unwrap();
    assert_eq!(ids(&first), [0, 1]);
    assert_eq!(ids(&dups), [2, 3, 4, 5, 6, 7]);
    assert_eq!(ctx.budget.reserved(), 0);
}

#[test]
fn all_attributes_compare_names_in_any_order_and_equal_numbers() {
    let ctx = NodeContext::standalone("t");
    let mut input = people();
    let second = input.split_off(3);
    let (first, dups) = run(serde_json::json!({}), vec![input, second], &ctx).unwrap();
    // 2 equals 0 (30 == 30.0); 5 equals 4 (null == null); 6 equals 1 (same names and values);
    // 7 has fewer attributes than 1.
    assert_eq!(ids(&first), [0, 1, 3, 4, 7]);
    assert_eq!(ids(&dups), [2, 5, 6]);
    assert_eq!(first[0].values(), people()[0].values());
}

#[test]
fn reserved_attribute_names_fail_the_run_with_the_feature_id() {
    let ctx = NodeContext::standalone("t");
    let bad = Feature::from_pairs(42, [("__sluice_dedup_seq", Value::Int(1))]);
    let err = run(serde_json::json!({}), vec![vec![bad]], &ctx).unwrap_err();
    let ActionError::Data { message, .. } = &err else {
        panic!("{err:?}")
    };
    assert!(message.starts_with("feature 42: "), "{message}");
}

#[test]
fn bad_parameters_are_located() {
    let path = |p: serde_json::Value| match build_processor(&SPEC, p) {
        Err(ActionError::Param { path, .. }) => path,
        Err(e) => panic!("{e:?}"),
        Ok(_) => panic!("expected an error"),
    };
    assert_eq!(path(serde_json::json!({"by": ["a", "a"]})), "by[1]");
    assert_eq!(path(serde_json::json!({"by": [""]})), "by[0]");
    assert_eq!(
        path(serde_json::json!({"by": ["__sluice_dedup_state"]})),
        "by[0]"
    );
    assert_eq!(path(serde_json::json!({"keep": "last"})), "keep");
}

/// Features with many repeated keys, several schemas and values of mixed types.
fn many(n: u64) -> Vec<Batch> {
    let a = Schema::new(["k", "s", "x"]);
    let b = Schema::new(["x", "k", "s"]);
    let features: Vec<Feature> = (0..n)
        .map(|i| {
            let k = match i % 3 {
                0 => Value::Int((i * 31 % 1500) as i64),
                1 => Value::Float((i * 31 % 1500) as f64),
                _ => Value::Null,
            };
            let s = Value::from(format!("s{}", i % 7));
            let x = Value::Int((i % 2) as i64);
            if i % 4 == 0 {
                Feature::new(i, b.clone(), vec![x, k, s])
            } else {
                Feature::new(i, a.clone(), vec![k, s, x])
            }
        })
        .collect();
    features.chunks(200).map(<[Feature]>::to_vec).collect()
}

/// Per feature: id, attribute names, values.
type Signature = Vec<(u64, Vec<String>, String)>;

fn signature(fs: &[Feature]) -> Signature {
    fs.iter()
        .map(|f| {
            let names = f.schema().names().iter().map(|n| n.to_string()).collect();
            (f.id(), names, format!("{:?}", f.values()))
        })
        .collect()
}

/// Runs with a budget of `budget` bytes; returns the signatures of both ports, the spill
/// files written and the bytes still reserved.
fn run_with_budget(params: serde_json::Value, budget: usize) -> (Signature, Signature, u64, usize) {
    let base = tempfile::tempdir().unwrap();
    let mut ctx = NodeContext::standalone("t");
    ctx.budget = MemoryBudget::new(budget);
    ctx.spill = SpillDir::new(base.path());
    let (first, dups) = run(params, many(12_000), &ctx).unwrap();
    (
        signature(&first),
        signature(&dups),
        ctx.spill.totals().0,
        ctx.budget.reserved(),
    )
}

#[test]
fn spilling_gives_the_same_output_as_memory() {
    for params in [serde_json::json!({"by": ["k", "s"]}), serde_json::json!({})] {
        let (first, dups, spills, _) = run_with_budget(params.clone(), usize::MAX / 4);
        assert_eq!(spills, 0);
        let (first2, dups2, spills2, reserved) = run_with_budget(params.clone(), 50_000);
        assert!(
            spills2 > 3,
            "{params}: expected several spill runs, got {spills2}"
        );
        assert_eq!(reserved, 0);
        assert!(!first.is_empty() && !dups.is_empty());
        assert_eq!(first, first2, "{params}");
        assert_eq!(dups, dups2, "{params}");
    }
}
