//! Aggregate states: updated per feature, combined across spilled partials, finalized once.
//!
//! Every combination is exact, so a result never depends on how the input was split into
//! spilled partials:
//!
//! - ints are summed in an `i128`;
//! - floats are summed with Shewchuk's algorithm (as Python's `math.fsum`): the running sum
//!   is a short list of non-overlapping floats whose sum is exact, and the final value is the
//!   exact sum correctly rounded. The int part joins it, split into exactly representable
//!   pieces, only when the result is a float;
//! - min and max keep the first of equal values (partials combine in arrival order).

use std::cmp::Ordering;
use std::sync::Arc;

use sluice_runtime::Value;

/// An aggregate operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
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
}

impl AggOp {
    /// The name used in default output names.
    pub(super) fn name(self) -> &'static str {
        match self {
            AggOp::Count => "count",
            AggOp::Sum => "sum",
            AggOp::Min => "min",
            AggOp::Max => "max",
            AggOp::Mean => "mean",
        }
    }
}

/// The running state of one aggregate of one group.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum State {
    Count(i64),
    Sum(Sum),
    Min(Value),
    Max(Value),
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
        }
    }

    /// Adds one value (`None`: a row, for `count` without an attribute). Returns the bytes the
    /// state grew by.
    #[inline]
    pub(super) fn add(&mut self, value: Option<&Value>) -> Result<usize, NotANumber> {
        match self {
            State::Count(n) => {
                if value.is_none_or(|v| !v.is_null()) {
                    *n += 1;
                }
                Ok(0)
            }
            State::Sum(s) => match value {
                None | Some(Value::Null) => Ok(0),
                Some(Value::Int(i)) => {
                    s.ints += i128::from(*i);
                    s.count += 1;
                    Ok(0)
                }
                Some(Value::Float(f)) => {
                    s.count += 1;
                    s.any_float = true;
                    Ok(s.floats.add(*f))
                }
                Some(_) => Err(NotANumber),
            },
            State::Min(cur) => Ok(keep_if(cur, value, Ordering::Less)),
            State::Max(cur) => Ok(keep_if(cur, value, Ordering::Greater)),
        }
    }

    /// Combines a later partial of the same aggregate into this one.
    pub(super) fn combine(&mut self, later: State) {
        match (self, later) {
            (State::Count(a), State::Count(b)) => *a += b,
            (State::Sum(a), State::Sum(b)) => {
                a.ints += b.ints;
                a.count += b.count;
                a.any_float |= b.any_float;
                a.floats.combine(&b.floats);
            }
            (State::Min(a), State::Min(b)) => {
                keep_if(a, Some(&b), Ordering::Less);
            }
            (State::Max(a), State::Max(b)) => {
                keep_if(a, Some(&b), Ordering::Greater);
            }
            _ => {}
        }
    }

    /// The output value of `op` from this state.
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
            State::Min(v) | State::Max(v) => v.clone(),
        }
    }

    /// The state as one value, for a spilled partial.
    pub(super) fn to_value(&self) -> Value {
        match self {
            State::Count(n) => Value::Int(*n),
            State::Min(v) | State::Max(v) => v.clone(),
            State::Sum(s) => {
                let f = &s.floats;
                let flags = i64::from(f.nan)
                    | i64::from(f.pos_inf) << 1
                    | i64::from(f.neg_inf) << 2
                    | i64::from(s.any_float) << 3;
                let mut items = vec![
                    Value::Int(s.count),
                    Value::Int((s.ints >> 64) as i64),
                    Value::Int(s.ints as u64 as i64),
                    Value::Int(flags),
                ];
                items.extend(f.partials.iter().map(|&p| Value::Float(p)));
                Value::Array(Arc::from(items))
            }
        }
    }

    /// Reads a state written by [`State::to_value`]; `None` when it is not one.
    pub(super) fn from_value(op: AggOp, value: Value) -> Option<State> {
        Some(match op {
            AggOp::Count => match value {
                Value::Int(n) => State::Count(n),
                _ => return None,
            },
            AggOp::Min => State::Min(value),
            AggOp::Max => State::Max(value),
            AggOp::Sum | AggOp::Mean => {
                let Value::Array(items) = value else {
                    return None;
                };
                let int = |i: usize| match items.get(i) {
                    Some(Value::Int(n)) => Some(*n),
                    _ => None,
                };
                let (count, hi, lo, flags) = (int(0)?, int(1)?, int(2)?, int(3)?);
                let partials = items
                    .get(4..)?
                    .iter()
                    .map(|v| match v {
                        Value::Float(f) => Some(*f),
                        _ => None,
                    })
                    .collect::<Option<Vec<f64>>>()?;
                State::Sum(Sum {
                    ints: (i128::from(hi) << 64) | i128::from(lo as u64),
                    count,
                    any_float: flags & 8 != 0,
                    floats: Fsum {
                        partials,
                        nan: flags & 1 != 0,
                        pos_inf: flags & 2 != 0,
                        neg_inf: flags & 4 != 0,
                    },
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
        Some(v) if !v.is_null() && (cur.is_null() || v.total_cmp(cur) == want) => {
            let grew = v.heap_size().saturating_sub(cur.heap_size());
            *cur = v.clone();
            grew
        }
        _ => 0,
    }
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

/// An exact running sum of floats (see the module docs).
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Fsum {
    /// Non-overlapping, increasing in magnitude; their exact sum is the sum so far.
    partials: Vec<f64>,
    nan: bool,
    pos_inf: bool,
    neg_inf: bool,
}

impl Fsum {
    /// Adds `x`; returns the bytes the partials grew by.
    fn add(&mut self, mut x: f64) -> usize {
        if !x.is_finite() {
            if x.is_nan() {
                self.nan = true;
            } else if x > 0.0 {
                self.pos_inf = true;
            } else {
                self.neg_inf = true;
            }
            return 0;
        }
        let before = self.partials.capacity();
        let mut kept = 0;
        for j in 0..self.partials.len() {
            let mut y = self.partials[j];
            if x.abs() < y.abs() {
                std::mem::swap(&mut x, &mut y);
            }
            let hi = x + y;
            if !hi.is_finite() {
                // Beyond the float range: the sum is infinite (documented).
                if hi > 0.0 {
                    self.pos_inf = true;
                } else {
                    self.neg_inf = true;
                }
                self.partials.clear();
                return 0;
            }
            let lo = y - (hi - x);
            if lo != 0.0 {
                self.partials[kept] = lo;
                kept += 1;
            }
            x = hi;
        }
        self.partials.truncate(kept);
        self.partials.push(x);
        (self.partials.capacity() - before) * 8
    }

    fn combine(&mut self, other: &Fsum) {
        for &p in &other.partials {
            self.add(p);
        }
        self.nan |= other.nan;
        self.pos_inf |= other.pos_inf;
        self.neg_inf |= other.neg_inf;
    }

    /// The exact sum, correctly rounded.
    fn value(&self) -> f64 {
        if self.nan || (self.pos_inf && self.neg_inf) {
            return f64::NAN;
        }
        if self.pos_inf {
            return f64::INFINITY;
        }
        if self.neg_inf {
            return f64::NEG_INFINITY;
        }
        let p = &self.partials;
        let mut n = p.len();
        if n == 0 {
            return 0.0;
        }
        n -= 1;
        let mut hi = p[n];
        let mut lo = 0.0;
        while n > 0 {
            let x = hi;
            n -= 1;
            let y = p[n];
            hi = x + y;
            lo = y - (hi - x);
            if lo != 0.0 {
                break;
            }
        }
        // Round half-even across partials: a lower partial of the same sign as `lo` tips a
        // tie.
        if n > 0 && ((lo < 0.0 && p[n - 1] < 0.0) || (lo > 0.0 && p[n - 1] > 0.0)) {
            let y = lo * 2.0;
            let x = hi + y;
            if y == x - hi {
                hi = x;
            }
        }
        hi
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sum_of(values: &[Value]) -> State {
        let mut s = State::new(AggOp::Sum);
        for v in values {
            assert!(s.add(Some(v)).is_ok());
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
            let _ = min.add(Some(&v));
            let _ = max.add(Some(&v));
        }
        assert_eq!(min.finish(AggOp::Min), Value::Int(-1));
        assert_eq!(max.finish(AggOp::Max), Value::from("z"));
        let mut a = State::Min(Value::Int(2));
        a.combine(State::Min(Value::Float(2.0)));
        assert_eq!(a, State::Min(Value::Int(2)));
        assert!(State::new(AggOp::Sum).add(Some(&Value::from("x"))).is_err());
        assert!(State::from_value(AggOp::Sum, Value::Int(1)).is_none());
        assert!(State::from_value(AggOp::Count, Value::Null).is_none());
    }
}
