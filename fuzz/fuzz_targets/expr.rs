//! The expression compiler and evaluator on arbitrary text: no panic, a compile error points
//! inside the source, and a compiled expression evaluates on awkward features without panic.
#![no_main]

use std::sync::{Arc, LazyLock};

use libfuzzer_sys::fuzz_target;
use sluice_runtime::expr::Expr;
use sluice_runtime::{Feature, Schema, Value};

static FEATURES: LazyLock<Vec<Feature>> = LazyLock::new(|| {
    let names = [
        "value", "a", "b", "name", "category", "x", "n", "d", "t", "list",
    ];
    let schema = Schema::new(names);
    let rows: Vec<Vec<Value>> = vec![
        vec![Value::Null; names.len()],
        vec![
            Value::Float(612.5),
            Value::Int(i64::MAX),
            Value::Int(i64::MIN),
            "Oslo".into(),
            "park".into(),
            Value::Float(f64::NAN),
            Value::Int(-1),
            Value::Date(i32::MAX),
            Value::DateTime(i64::MIN),
            Value::Array(Arc::from(vec![Value::Int(1), "x".into(), Value::Null])),
        ],
        vec![
            Value::Float(f64::INFINITY),
            Value::Float(-0.0),
            Value::Bool(true),
            "".into(),
            "ÅØ\u{0}ß".into(),
            Value::Int(0),
            "12abc".into(),
            Value::Date(i32::MIN),
            Value::DateTime(i64::MAX),
            Value::Bytes(Box::from(&b"\xff\x00"[..])),
        ],
    ];
    rows.into_iter()
        .enumerate()
        .map(|(i, v)| Feature::new(i as u64, schema.clone(), v))
        .collect()
});

fuzz_target!(|data: &[u8]| {
    let source = String::from_utf8_lossy(data);
    match Expr::compile(&source) {
        Ok(e) => {
            for f in FEATURES.iter() {
                let _ = e.evaluator().eval(f);
                let _ = e.evaluator().eval_bool(f);
            }
        }
        Err(e) => assert!(e.offset <= source.len() && !e.message.is_empty(), "{e}"),
    }
});
