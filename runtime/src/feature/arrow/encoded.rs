//! The lossless value encoding of [`ColumnKind::Encoded`](super::ColumnKind::Encoded)
//! columns: any [`Value`] as bytes, and back, bit for bit.
//!
//! One tag byte, then: nothing (null, false, true); a zigzag varint (int, date, datetime); the
//! 8 little-endian bytes of the float's bits (so -0.0 and every NaN come back bit for bit); a
//! varint length and the bytes (string, bytes); a varint count and the items (array), or the
//! entries as (varint key length, key, value) (map).

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::feature::Value;

/// Nesting limit of arrays and maps (both ways).
pub const MAX_DEPTH: usize = 256;

/// Why a value could not be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EncodeError {
    /// Arrays and maps nest deeper than [`MAX_DEPTH`].
    TooDeep,
}

impl std::fmt::Display for EncodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EncodeError::TooDeep => write!(f, "value nested deeper than {MAX_DEPTH} levels"),
        }
    }
}

impl std::error::Error for EncodeError {}

const T_NULL: u8 = 0;
const T_FALSE: u8 = 1;
const T_TRUE: u8 = 2;
const T_INT: u8 = 3;
const T_FLOAT: u8 = 4;
const T_STRING: u8 = 5;
const T_DATE: u8 = 6;
const T_DATETIME: u8 = 7;
const T_BYTES: u8 = 8;
const T_ARRAY: u8 = 9;
const T_MAP: u8 = 10;
const T_LOCAL_DATETIME: u8 = 11;

fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn put_zigzag(out: &mut Vec<u8>, n: i64) {
    put_varint(out, ((n << 1) ^ (n >> 63)) as u64);
}

fn encode(v: &Value, out: &mut Vec<u8>, depth: usize) -> Result<(), EncodeError> {
    if depth > MAX_DEPTH {
        return Err(EncodeError::TooDeep);
    }
    match v {
        Value::Null => out.push(T_NULL),
        Value::Bool(false) => out.push(T_FALSE),
        Value::Bool(true) => out.push(T_TRUE),
        Value::Int(i) => {
            out.push(T_INT);
            put_zigzag(out, *i);
        }
        Value::Float(f) => {
            out.push(T_FLOAT);
            out.extend_from_slice(&f.to_bits().to_le_bytes());
        }
        Value::String(s) => {
            out.push(T_STRING);
            put_varint(out, s.len() as u64);
            out.extend_from_slice(s.as_bytes());
        }
        Value::Date(d) => {
            out.push(T_DATE);
            put_zigzag(out, i64::from(*d));
        }
        Value::DateTime(t) => {
            out.push(T_DATETIME);
            put_zigzag(out, *t);
        }
        Value::LocalDateTime(t) => {
            out.push(T_LOCAL_DATETIME);
            put_zigzag(out, *t);
        }
        Value::Bytes(b) => {
            out.push(T_BYTES);
            put_varint(out, b.len() as u64);
            out.extend_from_slice(b);
        }
        Value::Array(items) => {
            out.push(T_ARRAY);
            put_varint(out, items.len() as u64);
            for item in items.iter() {
                encode(item, out, depth + 1)?;
            }
        }
        Value::Map(m) => {
            out.push(T_MAP);
            put_varint(out, m.len() as u64);
            for (k, item) in m.iter() {
                put_varint(out, k.len() as u64);
                out.extend_from_slice(k.as_bytes());
                encode(item, out, depth + 1)?;
            }
        }
    }
    Ok(())
}

/// Appends the encoding of `v` to `out`.
pub fn encode_value(v: &Value, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    encode(v, out, 0)
}

/// Decodes one value that fills `bytes` exactly; errors are messages.
pub fn decode_value(bytes: &[u8]) -> Result<Value, String> {
    let mut d = Decoder { bytes, pos: 0 };
    let v = d.value(0)?;
    if d.pos != bytes.len() {
        return Err("encoded value has trailing bytes".to_string());
    }
    Ok(v)
}

/// Reads encoded values back; errors are messages (the caller adds the location).
struct Decoder<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Decoder<'a> {
    fn byte(&mut self) -> Result<u8, String> {
        let b = *self
            .bytes
            .get(self.pos)
            .ok_or("encoded value is truncated")?;
        self.pos += 1;
        Ok(b)
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            n |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err("encoded value has an overlong varint".to_string())
    }

    fn zigzag(&mut self) -> Result<i64, String> {
        let n = self.varint()?;
        Ok(((n >> 1) as i64) ^ -((n & 1) as i64))
    }

    /// A length or count, each item at least `min` bytes, checked against the bytes left.
    fn len(&mut self, min: usize) -> Result<usize, String> {
        let n = self.varint()?;
        let left = (self.bytes.len() - self.pos) as u64;
        if n.saturating_mul(min as u64) > left {
            return Err("encoded value is truncated".to_string());
        }
        Ok(n as usize)
    }

    fn slice(&mut self) -> Result<&'a [u8], String> {
        let n = self.len(1)?;
        let s = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn string(&mut self) -> Result<String, String> {
        std::str::from_utf8(self.slice()?)
            .map(str::to_string)
            .map_err(|_| "encoded string is not valid utf-8".to_string())
    }

    fn value(&mut self, depth: usize) -> Result<Value, String> {
        if depth > MAX_DEPTH {
            return Err(format!(
                "encoded value nests deeper than {MAX_DEPTH} levels"
            ));
        }
        Ok(match self.byte()? {
            T_NULL => Value::Null,
            T_FALSE => Value::Bool(false),
            T_TRUE => Value::Bool(true),
            T_INT => Value::Int(self.zigzag()?),
            T_FLOAT => {
                let end = self.pos + 8;
                let b = self
                    .bytes
                    .get(self.pos..end)
                    .ok_or("encoded value is truncated")?;
                self.pos = end;
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                Value::Float(f64::from_bits(u64::from_le_bytes(a)))
            }
            T_STRING => Value::String(self.string()?.into()),
            T_DATE => Value::Date(
                i32::try_from(self.zigzag()?).map_err(|_| "encoded date is out of range")?,
            ),
            T_DATETIME => Value::DateTime(self.zigzag()?),
            T_LOCAL_DATETIME => Value::LocalDateTime(self.zigzag()?),
            T_BYTES => Value::Bytes(self.slice()?.into()),
            T_ARRAY => {
                let n = self.len(1)?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.value(depth + 1)?);
                }
                Value::Array(items.into())
            }
            T_MAP => {
                let n = self.len(2)?;
                let mut m = BTreeMap::new();
                for _ in 0..n {
                    let k = self.string()?;
                    m.insert(k, self.value(depth + 1)?);
                }
                Value::Map(Arc::new(m))
            }
            tag => return Err(format!("unknown encoded value tag {tag}")),
        })
    }
}
