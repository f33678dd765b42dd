//! Aggregate states: updated per feature, combined across spilled partials, finalized once.
//!
//! Every combination is exact or order-preserving, so a result never depends on how the
//! input was split into spilled partials:
//!
//! - ints are summed in an `i128`, floats with [`Fsum`] (exact; see `exact.rs`). The int
//!   part joins the float sum, split into exactly representable pieces, only when the result
//!   is a float;
//! - `variance` and `stddev` keep exact `n`, `Σx`, `Σx²` ([`Moments`]);
//! - min and max keep the first of equal values, `first` the first value and `last` the last
//!   one: partials combine in arrival order;
//! - the ops that need every value in order (`median`, `percentile`, `count_distinct`) only
//!   count here ([`State::Held`]); their values are held per group beside the states and
//!   ranked in `finish` (see `ranked.rs`).

use std::cmp::Ordering;
use std::sync::Arc;

use sluice_runtime::Value;

use super::exact::{Fsum, Moments};

/// An aggregate operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AggOp {
    /// Non-null values of the attribute, or rows when no attribute is given.
    Count,
    /// Sum of the numeric values (int when every value is an int and the sum fits).
    Sum,
    /// Smallest non-null value (`Value::total_cmp`).
    Min,
    /// Largest non-null value (`Value::total_cmp`).
    Max,
    /// Mean of the numeric values, as a float.
    Mean,
    /// The 0.5 percentile of the numeric values (see `Percentile`).
    Median,
    /// The `p` percentile of the numeric values, linear between the closest ranks.
    Percentile,
    /// Sample variance of the numeric values (divided by `n - 1`).
    Variance,
    /// Population variance of the numeric values (divided by `n`).
    VariancePop,
    /// Sample standard deviation: the square root of `variance`.
    Stddev,
    /// Population standard deviation: the square root of `variance_pop`.
    StddevPop,
    /// Number of distinct non-null values (equal under `Value::total_cmp`).
    CountDistinct,
    /// First non-null value, in arrival order.
    First,
    /// Last non-null value, in arrival order.
    Last,
}

impl AggOp {
    /// Every operation, in documentation order.
    pub const ALL: [AggOp; 14] = [
        AggOp::Count,
        AggOp::Sum,
        AggOp::Min,
        AggOp::Max,
        AggOp::Mean,
        AggOp::Median,
        AggOp::Percentile,
        AggOp::Variance,
        AggOp::VariancePop,
        AggOp::Stddev,
        AggOp::StddevPop,
        AggOp::CountDistinct,
        AggOp::First,
        AggOp::Last,
    ];

    /// The name used in workflows and in default output names.
    pub fn name(self) -> &'static str {
        match self {
            AggOp::Count => "count",
            AggOp::Sum => "sum",
            AggOp::Min => "min",
            AggOp::Max => "max",
            AggOp::Mean => "mean",
            AggOp::Median => "median",
            AggOp::Percentile => "percentile",
            AggOp::Variance => "variance",
            AggOp::VariancePop => "variance_pop",
            AggOp::Stddev => "stddev",
            AggOp::StddevPop => "stddev_pop",
            AggOp::CountDistinct => "count_distinct",
            AggOp::First => "first",
            AggOp::Last => "last",
        }
    }

    /// The operation named `name`.
    pub fn from_name(name: &str) -> Option<AggOp> {
        AggOp::ALL.into_iter().find(|op| op.name() == name)
    }

    /// Whether the operation ranks the group's values in `finish` (they are held or spilled).
    pub(super) fn is_ranked(self) -> bool {
        matches!(
            self,
            AggOp::Median | AggOp::Percentile | AggOp::CountDistinct
        )
    }

    /// Whether the operation takes numbers only.
    fn is_numeric(self) -> bool {
        matches!(
            self,
            AggOp::Sum
                | AggOp::Mean
                | AggOp::Median
                | AggOp::Percentile
                | AggOp::Variance
                | AggOp::VariancePop
                | AggOp::Stddev
                | AggOp::StddevPop
        )
    }
}

/// The running state of one aggregate of one group.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum State {
    Count(i64),
    Sum(Sum),
    Min(Value),
    Max(Value),
    /// `first`: null until a value arrives.
    First(Value),
    /// `last`: the latest non-null value.
    Last(Value),
    Moments(Moments),
    /// A ranked op: the non-null values added (the values themselves are held per group).
    Held(i64),
}

/// Why a value cannot be added.
pub(super) struct NotANumber;

impl State {
    /// The empty state of `op`.
    pub(super) fn new(op: AggOp) -> State {
        match op {
            AggOp::Count => State::Count(0),
            AggOp::Sum | AggOp::Mean => State::Sum(Sum::default()),
            AggOp::Min => State::Min(Value::Null),
            AggOp::Max => State::Max(Value::Null),
            AggOp::First => State::First(Value::Null),
            AggOp::Last => State::Last(Value::Null),
            AggOp::Variance | AggOp::VariancePop | AggOp::Stddev | AggOp::StddevPop => {
                State::Moments(Moments::default())
            }
            AggOp::Median | AggOp::Percentile | AggOp::CountDistinct => State::Held(0),
        }
    }

    /// Adds one value (`None`: a row, for `count` without an attribute) to the state of `op`.
    /// Returns the bytes the state grew by.
    #[inline]
    pub(super) fn add(&mut self, op: AggOp, value: Option<&Value>) -> Result<usize, NotANumber> {
        if let Some(v) = value
            && op.is_numeric()
            && !matches!(v, Value::Null | Value::Int(_) | Value::Float(_))
        {
            return Err(NotANumber);
        }
        Ok(match self {
            State::Count(n) => {
                if value.is_none_or(|v| !v.is_null()) {
                    *n += 1;
                }
                0
            }
            State::Sum(s) => match value {
                Some(Value::Int(i)) => {
                    s.ints += i128::from(*i);
                    s.count += 1;
                    0
                }
                Some(Value::Float(f)) => {
                    s.count += 1;
                    s.any_float = true;
                    s.floats.add(*f)
                }
                _ => 0,
            },
            State::Moments(m) => match value {
                Some(Value::Int(i)) => m.add_int(*i),
                Some(Value::Float(f)) => m.add_float(*f),
                _ => 0,
            },
            State::Min(cur) => keep_if(cur, value, Ordering::Less),
            State::Max(cur) => keep_if(cur, value, Ordering::Greater),
            State::First(cur) => match value {
                Some(v) if cur.is_null() => replace(cur, v),
                _ => 0,
            },
            State::Last(cur) => match value {
                Some(v) if !v.is_null() => replace(cur, v),
                _ => 0,
            },
            State::Held(n) => {
                if value.is_some_and(|v| !v.is_null()) {
                    *n += 1;
                }
                0
            }
        })
    }

    /// Combines a later partial of the same aggregate into this one.
    pub(super) fn combine(&mut self, later: State) {
        match (self, later) {
            (State::Count(a), State::Count(b)) | (State::Held(a), State::Held(b)) => *a += b,
            (State::Sum(a), State::Sum(b)) => {
                a.ints += b.ints;
                a.count += b.count;
                a.any_float |= b.any_float;
                a.floats.combine(&b.floats);
            }
            (State::Moments(a), State::Moments(b)) => {
                a.combine(&b);
            }
            (State::Min(a), State::Min(b)) => {
                keep_if(a, Some(&b), Ordering::Less);
            }
            (State::Max(a), State::Max(b)) => {
                keep_if(a, Some(&b), Ordering::Greater);
            }
            (State::First(a), State::First(b)) if a.is_null() => *a = b,
            (State::Last(a), State::Last(b)) if !b.is_null() => *a = b,
            _ => {}
        }
    }

    /// The non-null values a ranked op saw (0 for other states).
    pub(super) fn held(&self) -> i64 {
        match self {
            State::Held(n) => *n,
            _ => 0,
        }
    }

    /// The output value of `op` from this state (null for a ranked op: see `ranked.rs`).
    pub(super) fn finish(&self, op: AggOp) -> Value {
        match self {
            State::Count(n) => Value::Int(*n),
            State::Sum(s) if s.count == 0 => Value::Null,
            State::Sum(s) => match op {
                AggOp::Mean => Value::Float(s.total() / s.count as f64),
                _ => match i64::try_from(s.ints) {
                    Ok(i) if !s.any_float => Value::Int(i),
                    _ => Value::Float(s.total()),
                },
            },
            State::Moments(m) => {
                let ddof = i64::from(matches!(op, AggOp::Variance | AggOp::Stddev));
                match m.variance(ddof) {
                    None => Value::Null,
                    Some(v) if matches!(op, AggOp::Stddev | AggOp::StddevPop) => {
                        Value::Float(v.sqrt())
                    }
                    Some(v) => Value::Float(v),
                }
            }
            State::Min(v) | State::Max(v) | State::First(v) | State::Last(v) => v.clone(),
            State::Held(_) => Value::Null,
        }
    }

    /// The state as one value, for a spilled partial.
    pub(super) fn to_value(&self) -> Value {
        match self {
            State::Count(n) | State::Held(n) => Value::Int(*n),
            State::Min(v) | State::Max(v) | State::First(v) | State::Last(v) => v.clone(),
            State::Moments(m) => m.to_value(),
            State::Sum(s) => {
                let mut items = vec![
                    Value::Int(s.count),
                    Value::Int((s.ints >> 64) as i64),
                    Value::Int(s.ints as u64 as i64),
                    Value::Bool(s.any_float),
                ];
                s.floats.encode(&mut items);
                Value::Array(Arc::from(items))
            }
        }
    }

    /// Reads a state of `op` written by [`State::to_value`]; `None` when it is not one.
    pub(super) fn from_value(op: AggOp, value: Value) -> Option<State> {
        Some(match State::new(op) {
            State::Count(_) | State::Held(_) => match value {
                Value::Int(n) if op.is_ranked() => State::Held(n),
                Value::Int(n) => State::Count(n),
                _ => return None,
            },
            State::Min(_) => State::Min(value),
            State::Max(_) => State::Max(value),
            State::First(_) => State::First(value),
            State::Last(_) => State::Last(value),
            State::Moments(_) => State::Moments(Moments::from_value(&value)?),
            State::Sum(_) => {
                let Value::Array(items) = value else {
                    return None;
                };
                let int = |i: usize| match items.get(i) {
                    Some(Value::Int(n)) => Some(*n),
                    _ => None,
                };
                let (count, hi, lo) = (int(0)?, int(1)?, int(2)?);
                let Some(Value::Bool(any_float)) = items.get(3) else {
                    return None;
                };
                let mut at = 4;
                let floats = Fsum::decode(&items, &mut at)?;
                if at != items.len() {
                    return None;
                }
                State::Sum(Sum {
                    ints: (i128::from(hi) << 64) | i128::from(lo as u64),
                    count,
                    any_float: *any_float,
                    floats,
                })
            }
        })
    }
}

/// Replaces `cur` by `new` when `new` is non-null and orders `want` against it (or `cur` is
/// null); returns the bytes the state grew by.
#[inline]
fn keep_if(cur: &mut Value, new: Option<&Value>, want: Ordering) -> usize {
    match new {
        Some(v) if !v.is_null() && (cur.is_null() || v.total_cmp(cur) == want) => replace(cur, v),
        _ => 0,
    }
}

/// Sets `cur` to `new`; returns the bytes the state grew by.
#[inline]
fn replace(cur: &mut Value, new: &Value) -> usize {
    let grew = new.heap_size().saturating_sub(cur.heap_size());
    *cur = new.clone();
    grew
}

/// The state of `sum` and `mean`.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Sum {
    ints: i128,
    floats: Fsum,
    /// Non-null values added.
    count: i64,
    any_float: bool,
}

impl Sum {
    /// The exact sum of everything added, rounded once to a float.
    fn total(&self) -> f64 {
        let mut all = self.floats.clone();
        let sign = if self.ints < 0 { -1.0 } else { 1.0 };
        let m = self.ints.unsigned_abs();
        const LOW: u128 = (1 << 53) - 1;
        // Each piece has at most 53 significant bits, so it converts exactly.
        for (shift, scale) in [(0, 1.0), (53, 2f64.powi(53)), (106, 2f64.powi(106))] {
            let piece = (m >> shift) & if shift == 106 { u128::MAX } else { LOW };
            if piece != 0 {
                all.add(sign * piece as f64 * scale);
            }
        }
        all.value()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum_of(values: &[Value]) -> State {
        let mut s = State::new(AggOp::Sum);
        for v in values {
            assert!(s.add(AggOp::Sum, Some(v)).is_ok());
        }
        s
    }

    #[test]
    fn float_sums_are_exact_and_order_independent() {
        let xs = [1e16, 1.0, -1e16, 1e-16, 0.1, 0.2, 0.3];
        let values: Vec<Value> = xs.iter().map(|&x| Value::Float(x)).collect();
        let forward = sum_of(&values).finish(AggOp::Sum);
        let mut rev = values.clone();
        rev.reverse();
        assert_eq!(forward, sum_of(&rev).finish(AggOp::Sum));
        // Split in two partials, combined through their spilled form.
        let mut a = sum_of(&values[..3]);
        let b = State::from_value(AggOp::Sum, sum_of(&values[3..]).to_value()).unwrap();
        a.combine(b);
        assert_eq!(a.finish(AggOp::Sum), forward);
        // 1 + 0.1 + 0.2 + 0.3 + 1e-16 exactly, rounded once.
        assert_eq!(forward, Value::Float(1.6));
        assert_eq!(
            sum_of(&vec![Value::Float(0.1); 10]).finish(AggOp::Sum),
            Value::Float(1.0)
        );
    }

    #[test]
    fn int_sums_stay_ints_until_they_overflow_or_meet_a_float() {
        let big = Value::Int(i64::MAX);
        assert_eq!(
            sum_of(&[Value::Int(2), Value::Int(3)]).finish(AggOp::Sum),
            Value::Int(5)
        );
        assert_eq!(
            sum_of(&[big.clone(), Value::Int(1), Value::Int(-1)]).finish(AggOp::Sum),
            big
        );
        assert_eq!(
            sum_of(&[big.clone(), big.clone()]).finish(AggOp::Sum),
            Value::Float(2.0 * i64::MAX as f64)
        );
        // 2^53 + 1 + 0.5 is not representable: the exact sum rounds to 2^53 + 2.
        let s = sum_of(&[Value::Int((1 << 53) + 1), Value::Float(0.5)]);
        assert_eq!(s.finish(AggOp::Sum), Value::Float(9007199254740994.0));
        assert_eq!(
            s.finish(AggOp::Mean),
            Value::Float(9007199254740994.0 / 2.0)
        );
        let neg = sum_of(&[Value::Int(-(1 << 60) - 3), Value::Float(0.0)]);
        assert_eq!(
            neg.finish(AggOp::Sum),
            Value::Float(-(((1i64 << 60) + 3) as f64))
        );
        assert_eq!(sum_of(&[]).finish(AggOp::Sum), Value::Null);
        assert_eq!(sum_of(&[Value::Null]).finish(AggOp::Mean), Value::Null);
    }

    #[test]
    fn specials_and_overflow() {
        let inf = sum_of(&[Value::Float(f64::MAX), Value::Float(f64::MAX)]);
        assert_eq!(inf.finish(AggOp::Sum), Value::Float(f64::INFINITY));
        let nan = sum_of(&[Value::Float(f64::INFINITY), Value::Float(f64::NEG_INFINITY)]);
        assert!(matches!(nan.finish(AggOp::Sum), Value::Float(f) if f.is_nan()));
        let back = State::from_value(AggOp::Sum, nan.to_value()).unwrap();
        assert_eq!(back, nan);
    }

    #[test]
    fn min_max_skip_nulls_and_keep_the_first_of_equals() {
        let mut min = State::new(AggOp::Min);
        let mut max = State::new(AggOp::Max);
        for v in [
            Value::Null,
            Value::Int(2),
            Value::Float(2.0),
            Value::from("z"),
            Value::Int(-1),
        ] {
            let _ = min.add(AggOp::Min, Some(&v));
            let _ = max.add(AggOp::Max, Some(&v));
        }
        assert_eq!(min.finish(AggOp::Min), Value::Int(-1));
        assert_eq!(max.finish(AggOp::Max), Value::from("z"));
        let mut a = State::Min(Value::Int(2));
        a.combine(State::Min(Value::Float(2.0)));
        assert_eq!(a, State::Min(Value::Int(2)));
        assert!(
            State::new(AggOp::Sum)
                .add(AggOp::Sum, Some(&Value::from("x")))
                .is_err()
        );
        assert!(State::from_value(AggOp::Sum, Value::Int(1)).is_none());
        assert!(State::from_value(AggOp::Count, Value::Null).is_none());
    }
}
