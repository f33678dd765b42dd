//! Key hashes consistent with `Value::total_cmp` equality.

use sluice_runtime::Value;

/// An odd multiplier (2^64 / golden ratio).
const SEED: u64 = 0x9e37_79b9_7f4a_7c15;

/// A small multiply-rotate hasher (keys are hashed field by field, then finalized).
#[derive(Clone, Copy)]
struct KeyHasher(u64);

impl KeyHasher {
    #[inline]
    fn add(&mut self, x: u64) {
        self.0 = (self.0 ^ x).wrapping_mul(SEED).rotate_left(23);
    }

    fn add_bytes(&mut self, bytes: &[u8]) {
        self.add(bytes.len() as u64);
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.add(u64::from_le_bytes(w));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut w = [0u8; 8];
            w[..rest.len()].copy_from_slice(rest);
            self.add(u64::from_le_bytes(w));
        }
    }

    /// Mixes every bit into every other (murmur3's finalizer), so a table may use any bits.
    #[inline]
    fn finish(self) -> u64 {
        let mut h = self.0;
        h ^= h >> 33;
        h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
        h ^= h >> 33;
        h = h.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
        h ^ (h >> 33)
    }

    fn value(&mut self, v: &Value) {
        match v {
            Value::Null => self.add(0),
            Value::Bool(b) => {
                self.add(1);
                self.add(u64::from(*b));
            }
            Value::Int(i) => {
                self.add(2);
                self.add(*i as u64);
            }
            Value::Float(f) => {
                self.add(2);
                match float_as_int(*f) {
                    Some(i) => self.add(i as u64),
                    None => self.add(f.to_bits().rotate_left(17)),
                }
            }
            Value::String(s) => {
                self.add(3);
                self.add_bytes(s.as_bytes());
            }
            Value::Date(d) => {
                self.add(4);
                self.add(*d as u64);
            }
            Value::DateTime(t) => {
                self.add(5);
                self.add(*t as u64);
            }
            Value::LocalDateTime(t) => {
                self.add(11);
                self.add(*t as u64);
            }
            Value::Bytes(b) => {
                self.add(6);
                self.add_bytes(b);
            }
            Value::Array(a) => {
                self.add(7);
                self.add(a.len() as u64);
                for x in a.iter() {
                    self.value(x);
                }
            }
            Value::Map(m) => {
                self.add(8);
                self.add(m.len() as u64);
                for (k, x) in m.iter() {
                    self.add_bytes(k.as_bytes());
                    self.value(x);
                }
            }
        }
    }
}

/// The int a float equals under `total_cmp`, if any (`-0.0` equals no int).
#[inline]
fn float_as_int(f: f64) -> Option<i64> {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    let integral = f.fract() == 0.0 && (-TWO_63..TWO_63).contains(&f);
    (integral && !(f == 0.0 && f.is_sign_negative())).then_some(f as i64)
}

/// Hashes a key; keys equal under `total_cmp` hash alike.
#[inline]
pub(crate) fn hash_key<'a>(values: impl IntoIterator<Item = &'a Value>) -> u64 {
    let mut h = KeyHasher(0);
    for v in values {
        h.value(v);
    }
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_values_hash_alike_across_int_and_float() {
        let h = |v: Value| hash_key([&v]);
        assert_eq!(h(Value::Int(3)), h(Value::Float(3.0)));
        assert_eq!(h(Value::Int(0)), h(Value::Float(0.0)));
        assert_ne!(h(Value::Int(0)), h(Value::Float(-0.0)));
        assert_ne!(h(Value::Int(3)), h(Value::from("3")));
        assert_eq!(
            h(Value::Array(vec![Value::Int(1)].into())),
            h(Value::Array(vec![Value::Float(1.0)].into()))
        );
        assert_ne!(
            hash_key([&Value::from("ab"), &Value::from("c")]),
            hash_key([&Value::from("a"), &Value::from("bc")])
        );
    }
}
