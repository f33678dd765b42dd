//! The ranked ops: `median`, `percentile` and `count_distinct`, computed from a group's
//! values in sorted order.
//!
//! A group's values are sorted by [`Value::total_cmp`] (in memory, or by the merge of the
//! spilled runs) and fed one at a time with their rank to a [`Pick`] per ranked aggregate,
//! which keeps only what its result needs: the one or two values at the wanted ranks, or the
//! last distinct value and a count. Both paths feed the same sorted sequence, so spilled and
//! in-memory results are the same bits.
//!
//! Percentiles interpolate linearly between the closest ranks (numpy's default, "linear";
//! R's type 7): with `n` values sorted ascending as `x[0] ≤ … ≤ x[n-1]`, the `p` percentile
//! is at rank `h = (n - 1)·p`, and its value is `x[⌊h⌋] + (h - ⌊h⌋)·(x[⌊h⌋+1] - x[⌊h⌋])`
//! (computed from the upper neighbour when `h - ⌊h⌋ ≥ 0.5`, so that both ends are exact).
//! Ints become floats first (exactly below 2^53).

use sluice_runtime::Value;

/// What one ranked aggregate keeps while its group's values stream past.
#[derive(Debug)]
pub(super) enum Pick {
    /// A percentile of `n` values at rank `lo + frac`.
    Percentile {
        lo: u64,
        frac: f64,
        /// `x[lo]` and `x[lo + 1]`, once seen.
        at_lo: Option<f64>,
        at_hi: Option<f64>,
    },
    /// Distinct values so far and the last one seen.
    Distinct { count: i64, last: Option<Value> },
}

impl Pick {
    /// A percentile `p` in [0, 1] of `n` values.
    pub(super) fn percentile(p: f64, n: i64) -> Pick {
        let h = (n.max(1) - 1) as f64 * p;
        let lo = h.floor();
        Pick::Percentile {
            lo: lo as u64,
            frac: if n > 0 { h - lo } else { f64::NAN },
            at_lo: None,
            at_hi: None,
        }
    }

    /// A distinct count.
    pub(super) fn distinct() -> Pick {
        Pick::Distinct {
            count: 0,
            last: None,
        }
    }

    /// Takes the value of rank `rank` (0-based) of the ascending sequence.
    #[inline]
    pub(super) fn feed(&mut self, rank: u64, value: &Value) {
        match self {
            Pick::Percentile {
                lo, at_lo, at_hi, ..
            } => {
                if rank == *lo {
                    *at_lo = as_float(value);
                } else if rank == *lo + 1 {
                    *at_hi = as_float(value);
                }
            }
            Pick::Distinct { count, last } => {
                if last
                    .as_ref()
                    .is_none_or(|l| l.total_cmp(value) != std::cmp::Ordering::Equal)
                {
                    *count += 1;
                    *last = Some(value.clone());
                }
            }
        }
    }

    /// The result: the percentile (null with no values) or the distinct count.
    pub(super) fn result(&self) -> Value {
        match self {
            Pick::Distinct { count, .. } => Value::Int(*count),
            Pick::Percentile {
                frac, at_lo, at_hi, ..
            } => match (*at_lo, *at_hi) {
                (Some(a), _) if *frac == 0.0 => Value::Float(a),
                (Some(a), Some(b)) => Value::Float(lerp(a, b, *frac)),
                _ => Value::Null,
            },
        }
    }
}

fn as_float(v: &Value) -> Option<f64> {
    match v {
        Value::Int(i) => Some(*i as f64),
        Value::Float(f) => Some(*f),
        _ => None,
    }
}

/// `a + t·(b - a)` for `t` in (0, 1), from the nearer end so that the ends are exact.
fn lerp(a: f64, b: f64, t: f64) -> f64 {
    if a == b {
        return a;
    }
    let d = b - a;
    if t < 0.5 {
        a + d * t
    } else {
        b - d * (1.0 - t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `xs` (sorted here) to a pick.
    fn pick(mut pick: Pick, xs: &[Value]) -> Value {
        let mut xs = xs.to_vec();
        xs.sort_unstable_by(Value::total_cmp);
        for (rank, x) in xs.iter().enumerate() {
            pick.feed(rank as u64, x);
        }
        pick.result()
    }

    fn percentile(p: f64, xs: &[f64]) -> Value {
        let xs: Vec<Value> = xs.iter().map(|&x| Value::Float(x)).collect();
        pick(Pick::percentile(p, xs.len() as i64), &xs)
    }

    #[test]
    fn percentiles_by_hand() {
        let f = Value::Float;
        // n = 4: h = 3p. p = 0.5: halfway between 2 and 3; 0.75: a quarter past 3.
        assert_eq!(percentile(0.5, &[4.0, 1.0, 3.0, 2.0]), f(2.5));
        assert_eq!(percentile(0.75, &[4.0, 1.0, 3.0, 2.0]), f(3.25));
        assert_eq!(percentile(0.0, &[4.0, 1.0, 3.0, 2.0]), f(1.0));
        assert_eq!(percentile(1.0, &[4.0, 1.0, 3.0, 2.0]), f(4.0));
        // n = 5: h = 4p; p = 0.25 lands on rank 1 exactly.
        assert_eq!(percentile(0.25, &[50.0, 10.0, 40.0, 20.0, 30.0]), f(20.0));
        // n = 2: h = p; a tenth of the way from 0 to 10.
        assert_eq!(percentile(0.1, &[10.0, 0.0]), f(1.0));
        assert_eq!(percentile(0.9, &[10.0, 0.0]), f(9.0));
        // Ties and a single value.
        assert_eq!(percentile(0.5, &[7.0, 7.0, 7.0, 1.0]), f(7.0));
        assert_eq!(percentile(0.3, &[-2.5]), f(-2.5));
        assert_eq!(percentile(0.5, &[]), Value::Null);
        // Ints rank with floats and come out as floats.
        let mixed = [Value::Int(3), Value::Float(1.5), Value::Int(2)];
        assert_eq!(pick(Pick::percentile(0.5, 3), &mixed), f(2.0));
    }

    #[test]
    fn distinct_counts_by_total_cmp() {
        let d = |xs: &[Value]| pick(Pick::distinct(), xs);
        assert_eq!(d(&[]), Value::Int(0));
        assert_eq!(
            d(&[
                Value::Int(1),
                Value::Float(1.0),
                Value::from("a"),
                Value::from("a"),
                Value::Int(2)
            ]),
            Value::Int(3)
        );
    }
}
