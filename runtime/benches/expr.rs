//! Cost of evaluating expressions, next to hand-written Rust doing the same work.
//!
//! Each iteration evaluates 1024 prebuilt features of a 7-column schema (id, name, category,
//! x, y, value, ts) with one evaluator, as a node does for one batch; figures are per
//! feature (`Throughput::Elements`).
//!
//! ```text
//! cargo bench -p sluice-runtime --bench expr -- --warm-up-time 1 --measurement-time 3
//! ```

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sluice_runtime::expr::{EvalError, Expr};
use sluice_runtime::{Feature, Schema, Value};

const FEATURES: usize = 1024;

/// 1024 features sharing one schema, from a fixed-seed xorshift generator.
fn features() -> Vec<Feature> {
    let schema = Schema::new(["id", "name", "category", "x", "y", "value", "ts"]);
    let categories = ["park", "road", "water", "building"];
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let unit = |r: u64| (r >> 11) as f64 / (1u64 << 53) as f64;
    (0..FEATURES)
        .map(|i| {
            let category = categories[(next() % 4) as usize];
            let values = vec![
                Value::Int(i as i64),
                Value::from(format!("feature {i}")),
                Value::from(category),
                Value::Float(unit(next()) * 360.0 - 180.0),
                Value::Float(unit(next()) * 180.0 - 90.0),
                Value::Float(unit(next()) * 1000.0),
                Value::DateTime(1_714_557_600_000_000 + i as i64 * 1_000_000),
            ];
            Feature::new(i as u64, schema.clone(), values)
        })
        .collect()
}

fn expr(c: &mut Criterion) {
    let features = features();
    let mut group = c.benchmark_group("expr");
    group.throughput(Throughput::Elements(FEATURES as u64));

    let filter = Expr::compile(r#"value > 500.0 && category == "park""#).expect("compiles");
    group.bench_function("filter_expression/sluice", |b| {
        b.iter(|| {
            let mut ev = filter.evaluator();
            let mut kept = 0usize;
            for f in &features {
                if ev.eval_bool(black_box(f)).unwrap_or(false) {
                    kept += 1;
                }
            }
            black_box(kept)
        })
    });

    let hand_written = |f: &Feature| {
        let v = f.values();
        matches!(v[5], Value::Float(x) if x > 500.0)
            && matches!(&v[2], Value::String(s) if &**s == "park")
    };
    group.bench_function("filter_expression/hand_written_rust", |b| {
        b.iter(|| {
            let mut kept = 0usize;
            for f in &features {
                if hand_written(black_box(f)) {
                    kept += 1;
                }
            }
            black_box(kept)
        })
    });

    let computed = Expr::compile("value * 2").expect("compiles");
    group.bench_function("computed_attribute/sluice", |b| {
        b.iter(|| {
            let mut ev = computed.evaluator();
            for f in &features {
                let _ = black_box(ev.eval(black_box(f)));
            }
        })
    });

    group.bench_function("computed_attribute/hand_written_rust", |b| {
        b.iter(|| {
            for f in &features {
                let v: Result<Value, EvalError> = match black_box(f).values()[5] {
                    Value::Float(x) => Ok(Value::Float(x * 2.0)),
                    _ => Ok(Value::Null),
                };
                let _ = black_box(v);
            }
        })
    });

    group.finish();
}

criterion_group!(benches, expr);
criterion_main!(benches);
