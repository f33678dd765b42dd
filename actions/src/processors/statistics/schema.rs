//! The static shape of `statistics`' output: the `group_by` attributes, then one attribute
//! per aggregate, typed by [`result_type`].

use sluice_runtime::ActionError;
use sluice_runtime::shape::{GeometryShape, Shape, ShapeContext, Type};

use super::{AggOp, StatisticsParams};

/// The type of an aggregate's value, given the type of the attribute it reads (`None` for
/// a row count). Every operation has an arm here: a new one must say what it gives.
pub(super) fn result_type(op: AggOp, input: Option<Type>) -> Type {
    let input = input.unwrap_or(Type::Any);
    match op {
        AggOp::Count | AggOp::CountDistinct => Type::Int,
        // An int while every value is an int (and the sum fits), else a float.
        AggOp::Sum => match input {
            Type::Int => Type::Int,
            Type::Float => Type::Float,
            _ => Type::Any,
        },
        AggOp::Mean
        | AggOp::Median
        | AggOp::Percentile
        | AggOp::Variance
        | AggOp::VariancePop
        | AggOp::Stddev
        | AggOp::StddevPop => Type::Float,
        // One of the values.
        AggOp::Min | AggOp::Max | AggOp::First | AggOp::Last => input,
    }
}

/// Whether `op` fails the run on a value that is not a number.
fn needs_numbers(op: AggOp) -> bool {
    use AggOp::*;
    matches!(
        op,
        Sum | Mean | Median | Percentile | Variance | VariancePop | Stddev | StddevPop
    )
}

/// The output shape; group and aggregated attributes are checked against the input.
pub(super) fn shape(ctx: &ShapeContext) -> Result<Vec<Shape>, ActionError> {
    let p: StatisticsParams = ctx.params()?;
    let input = ctx.input(0);
    let mut out = Shape::closed(Vec::<(String, Type)>::new());
    for (i, name) in p.group_by.iter().enumerate() {
        let t = ctx.attribute(&format!("group_by[{i}]"), name, &input);
        out.set(name, t.unwrap_or(Type::Any));
    }
    for (i, a) in p.aggregates.iter().enumerate() {
        // An unknown op was reported by the factory.
        let Some(op) = AggOp::from_name(&a.op) else {
            continue;
        };
        let path = format!("aggregates[{i}].attribute");
        let t = match &a.attribute {
            Some(name) => {
                let t = ctx.attribute(&path, name, &input);
                if let Some(t) = t
                    && needs_numbers(op)
                    && !matches!(t, Type::Int | Type::Float | Type::Any | Type::Null)
                {
                    ctx.problem(
                        &path,
                        format!(
                            "`{}` needs numbers, but \"{name}\" holds {}",
                            op.name(),
                            t.name()
                        ),
                        Some("convert it first (attribute_manager, op: convert)".into()),
                    );
                }
                Some(t.unwrap_or(Type::Any))
            }
            None => None,
        };
        let output = match (&a.output, &a.attribute) {
            (Some(o), _) => o.clone(),
            (None, Some(n)) => format!("{}_{n}", op.name()),
            (None, None) => "count".to_string(),
        };
        out.set(&output, result_type(op, t));
    }
    out.geometry = GeometryShape::Absent;
    Ok(ctx.pass(out))
}
