//! Exact float arithmetic: running sums that lose nothing ([`Fsum`]) and the moments behind
//! `variance` and `stddev` ([`Moments`]).
//!
//! Exactness is what makes spilling invisible: a sum of exact partial sums is the same
//! number however the input was split, so a spilled run and an in-memory run round the same
//! exact value, bit for bit.
//!
//! - [`Fsum`] is Shewchuk's algorithm (as Python's `math.fsum`): the running sum is a short
//!   list of non-overlapping floats whose sum is exact, and [`Fsum::value`] rounds it once.
//! - A product of two floats is exactly the sum of two floats (`two_product`, with a fused
//!   multiply-add), so sums of squares stay exact too, as long as the squares stay in the
//!   normal float range (magnitudes between about 1e-146 and 1e154).
//! - [`Moments`] keeps `n`, `Σx` and `Σx²` exactly; the variance numerator `n·Σx² − (Σx)²` is
//!   then formed exactly from their expansions and rounded once. No cancellation can creep
//!   in, whatever the mean; the only other rounding is the division by `n·(n−1)` (or `n²`).

use std::sync::Arc;

use sluice_runtime::Value;

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
    pub(super) fn add(&mut self, mut x: f64) -> usize {
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

    /// Adds everything `other` holds; returns the bytes the partials grew by.
    pub(super) fn combine(&mut self, other: &Fsum) -> usize {
        let mut grew = 0;
        for &p in &other.partials {
            grew += self.add(p);
        }
        self.nan |= other.nan;
        self.pos_inf |= other.pos_inf;
        self.neg_inf |= other.neg_inf;
        grew
    }

    /// Whether an infinite or NaN value (or an overflow) went in.
    pub(super) fn is_finite(&self) -> bool {
        !(self.nan || self.pos_inf || self.neg_inf)
    }

    /// The partials (exact sum: their sum).
    pub(super) fn partials(&self) -> &[f64] {
        &self.partials
    }

    /// The exact sum, correctly rounded.
    pub(super) fn value(&self) -> f64 {
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

    /// Appends the sum to a spilled value list: flags, the partial count, the partials.
    pub(super) fn encode(&self, items: &mut Vec<Value>) {
        let flags =
            i64::from(self.nan) | i64::from(self.pos_inf) << 1 | i64::from(self.neg_inf) << 2;
        items.push(Value::Int(flags));
        items.push(Value::Int(self.partials.len() as i64));
        items.extend(self.partials.iter().map(|&p| Value::Float(p)));
    }

    /// Reads what [`Fsum::encode`] wrote at `items[*at..]`, moving `at` past it.
    pub(super) fn decode(items: &[Value], at: &mut usize) -> Option<Fsum> {
        let flags = int_at(items, *at)?;
        let len = usize::try_from(int_at(items, *at + 1)?).ok()?;
        let start = *at + 2;
        let partials = items
            .get(start..start.checked_add(len)?)?
            .iter()
            .map(|v| match v {
                Value::Float(f) => Some(*f),
                _ => None,
            })
            .collect::<Option<Vec<f64>>>()?;
        *at = start + len;
        Some(Fsum {
            partials,
            nan: flags & 1 != 0,
            pos_inf: flags & 2 != 0,
            neg_inf: flags & 4 != 0,
        })
    }
}

fn int_at(items: &[Value], i: usize) -> Option<i64> {
    match items.get(i) {
        Some(Value::Int(n)) => Some(*n),
        _ => None,
    }
}

/// `a·b` as `(p, e)` with `p + e == a·b` exactly (when nothing overflows or underflows).
#[inline]
fn two_product(a: f64, b: f64) -> (f64, f64) {
    let p = a * b;
    (p, a.mul_add(b, -p))
}

/// An int as two floats whose exact sum it is (each has at most 32 significant bits).
#[inline]
fn split_int(i: i64) -> [f64; 2] {
    [((i >> 32) << 32) as f64, (i & 0xffff_ffff) as f64]
}

/// `n`, `Σx` and `Σx²` of the numbers added, exactly: the state of `variance` and `stddev`.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Moments {
    /// Values added.
    n: i64,
    sum: Fsum,
    squares: Fsum,
    /// An infinite or NaN value was added: the variance is NaN.
    not_finite: bool,
}

impl Moments {
    /// Adds an int exactly; returns the bytes the state grew by.
    pub(super) fn add_int(&mut self, i: i64) -> usize {
        self.n += 1;
        let [hi, lo] = split_int(i);
        let mut grew = self.sum.add(hi) + self.sum.add(lo);
        // (hi + lo)² = hi² + 2·hi·lo + lo², each term exact as two floats.
        for (a, b) in [(hi, hi), (2.0 * hi, lo), (lo, lo)] {
            let (p, e) = two_product(a, b);
            grew += self.squares.add(p) + self.squares.add(e);
        }
        grew
    }

    /// Adds a float exactly; returns the bytes the state grew by.
    pub(super) fn add_float(&mut self, x: f64) -> usize {
        self.n += 1;
        if !x.is_finite() {
            self.not_finite = true;
            return 0;
        }
        let (p, e) = two_product(x, x);
        // An infinite square is an overflow: `squares` records it, the error term is moot.
        let e = if p.is_finite() { e } else { 0.0 };
        self.sum.add(x) + self.squares.add(p) + self.squares.add(e)
    }

    /// Adds a later partial; returns the bytes the state grew by.
    pub(super) fn combine(&mut self, other: &Moments) -> usize {
        self.n += other.n;
        self.not_finite |= other.not_finite;
        self.sum.combine(&other.sum) + self.squares.combine(&other.squares)
    }

    /// The variance with `ddof` degrees of freedom removed (1: sample, 0: population); `None`
    /// when there are `ddof` values or fewer.
    pub(super) fn variance(&self, ddof: i64) -> Option<f64> {
        if self.n <= ddof {
            return None;
        }
        if self.not_finite {
            return Some(f64::NAN);
        }
        if !self.sum.is_finite() || !self.squares.is_finite() {
            // Only an overflow gets here: the spread is beyond the float range.
            return Some(f64::INFINITY);
        }
        // n·Σx² − (Σx)², exactly, as an expansion.
        let mut numerator = Fsum::default();
        for &q in self.squares.partials() {
            for c in split_int(self.n) {
                let (p, e) = two_product(c, q);
                numerator.add(p);
                numerator.add(e);
            }
        }
        let s = self.sum.partials();
        for &a in s {
            for &b in s {
                let (p, e) = two_product(a, b);
                numerator.add(-p);
                numerator.add(-e);
            }
        }
        let m = numerator.value();
        if !m.is_finite() {
            return Some(f64::INFINITY);
        }
        // Exact arithmetic makes m ≥ 0; `max` only guards a damaged state.
        Some(m.max(0.0) / (self.n as f64 * (self.n - ddof) as f64))
    }

    /// The state as one value, for a spilled partial.
    pub(super) fn to_value(&self) -> Value {
        let mut items = vec![Value::Int(self.n), Value::Bool(self.not_finite)];
        self.sum.encode(&mut items);
        self.squares.encode(&mut items);
        Value::Array(Arc::from(items))
    }

    /// Reads what [`Moments::to_value`] wrote.
    pub(super) fn from_value(value: &Value) -> Option<Moments> {
        let Value::Array(items) = value else {
            return None;
        };
        let n = int_at(items, 0)?;
        let Some(Value::Bool(not_finite)) = items.get(1) else {
            return None;
        };
        let mut at = 2;
        let sum = Fsum::decode(items, &mut at)?;
        let squares = Fsum::decode(items, &mut at)?;
        (at == items.len()).then_some(Moments {
            n,
            sum,
            squares,
            not_finite: *not_finite,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moments(xs: &[f64]) -> Moments {
        let mut m = Moments::default();
        for &x in xs {
            m.add_float(x);
        }
        m
    }

    #[test]
    fn variance_by_hand() {
        // Mean 5, squared deviations 9 1 1 1 0 0 4 16 = 32; 32 / 7 and 32 / 8.
        let m = moments(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]);
        assert_eq!(m.variance(1), Some(32.0 / 7.0));
        assert_eq!(m.variance(0), Some(4.0));
        assert_eq!(moments(&[3.5]).variance(1), None);
        assert_eq!(moments(&[3.5]).variance(0), Some(0.0));
        assert_eq!(moments(&[]).variance(0), None);
    }

    #[test]
    fn a_large_mean_does_not_cancel_the_spread() {
        // Naive Σx² − (Σx)²/n loses everything here; the exact numerator does not.
        let base = 1e9;
        let m = moments(&[base + 4.0, base + 7.0, base + 13.0, base + 16.0]);
        assert_eq!(m.variance(1), Some(30.0));
        // Ints past 2^53 are split, not rounded.
        let mut ints = Moments::default();
        for i in [i64::MAX, i64::MAX - 2] {
            ints.add_int(i);
        }
        assert_eq!(ints.variance(1), Some(2.0));
    }

    #[test]
    fn partials_combine_to_the_same_bits_in_any_split() {
        let xs: Vec<f64> = (0..200)
            .map(|i| (i as f64 * 0.37).sin() * 1e3 + 0.1)
            .collect();
        let whole = moments(&xs).variance(1).unwrap();
        for cut in [1, 17, 100, 199] {
            let mut a = moments(&xs[..cut]);
            let b = Moments::from_value(&moments(&xs[cut..]).to_value()).unwrap();
            a.combine(&b);
            assert_eq!(a.variance(1).unwrap().to_bits(), whole.to_bits());
        }
        let mut rev = xs.clone();
        rev.reverse();
        assert_eq!(
            moments(&rev).variance(1).unwrap().to_bits(),
            whole.to_bits()
        );
    }

    #[test]
    fn specials() {
        assert!(moments(&[1.0, f64::INFINITY]).variance(1).unwrap().is_nan());
        assert!(moments(&[1.0, f64::NAN]).variance(0).unwrap().is_nan());
        assert_eq!(moments(&[1e200, -1e200]).variance(1), Some(f64::INFINITY));
        assert!(Moments::from_value(&Value::Int(1)).is_none());
    }
}
