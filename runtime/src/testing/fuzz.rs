//! The checks the fuzz targets (`fuzz/`) and the property tests (`runtime/tests/fuzz.rs`)
//! share: one definition of "the loader and the expression compiler survive this input".

use std::sync::{Arc, LazyLock};

use crate::action::Registry;
use crate::error::Severity;
use crate::expr::Expr;
use crate::feature::{Feature, Geometry, Schema, Value};
use crate::workflow::{self, VarSources};

/// Features with awkward values (extremes, NaN, infinities, -0.0, odd text, nulls, a list,
/// bytes, a geometry) under the names the expression seeds use.
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
            "ÅØ\u{0}ß\u{10ffff}".into(),
            Value::Int(0),
            Value::String("12abc".into()),
            Value::Date(i32::MIN),
            Value::DateTime(i64::MAX),
            Value::Bytes(Box::from(&b"\xff\x00"[..])),
        ],
    ];
    rows.into_iter()
        .enumerate()
        .map(|(i, v)| {
            let f = Feature::new(i as u64, schema.clone(), v);
            if i == 1 {
                f.with_geometry(Some(Geometry::new(geo_types::Geometry::Point(
                    geo_types::Point::new(1.0, 2.0),
                ))))
            } else {
                f
            }
        })
        .collect()
});

/// The awkward features expressions are evaluated on.
pub fn awkward_features() -> &'static [Feature] {
    &FEATURES
}

/// Compiles `source`: a compiled expression must evaluate on every awkward feature without
/// panicking, and a compile error must point inside the source with a message.
pub fn check_expression(source: &str) -> Result<(), String> {
    match Expr::compile(source) {
        Ok(e) => {
            for f in FEATURES.iter() {
                let _ = e.evaluator().eval(f);
                let _ = e.evaluator().eval_bool(f);
            }
            Ok(())
        }
        Err(e) if e.offset <= source.len() && !e.message.is_empty() => Ok(()),
        Err(e) => Err(format!(
            "error outside the source ({} bytes): {e}\non {source:?}",
            source.len()
        )),
    }
}

/// Loads `source` as a workflow against `registry`: every diagnostic must have a message,
/// and every error must point at a line and column of the input.
pub fn check_workflow(source: &str, registry: &Registry) -> Result<(), String> {
    let diagnostics = match workflow::load("fuzz.yaml", source, registry, &VarSources::default()) {
        Ok(plan) => plan.warnings,
        Err(e) => e.diagnostics,
    };
    // YAML breaks lines at LF, CR and CR LF.
    let lines = source.replace("\r\n", "\n").split(['\n', '\r']).count();
    for d in &diagnostics {
        if d.message.is_empty() {
            return Err(format!("empty message on {source:?}"));
        }
        if d.severity == Severity::Error && !(d.line >= 1 && d.column >= 1 && d.line <= lines + 1) {
            return Err(format!(
                "diagnostic without a location in the file ({lines} lines): {d}\non {source:?}"
            ));
        }
    }
    Ok(())
}
