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
use sluice_runtime::{Feature, Value};

const FEATURES: usize = 1024;

fn expr(c: &mut Criterion) {
    let features = sluice_runtime::testing::w1_like_features(FEATURES);
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
