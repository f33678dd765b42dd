//! Attribute values.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

pub use compact_str::CompactString;

/// One attribute value.
///
/// Kept to 24 bytes: strings of up to 24 bytes are held inline and longer ones on the heap,
/// byte strings are boxed slices, arrays are shared slices and maps are shared trees, so a
/// row of seven values costs 168 bytes plus the bytes of its long strings.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    /// No value.
    #[default]
    Null,
    /// A boolean.
    Bool(bool),
    /// A 64-bit signed integer.
    Int(i64),
    /// A 64-bit float.
    Float(f64),
    /// A UTF-8 string. Strings of up to 24 bytes are held inline (most cells: names, codes,
    /// categories), longer ones on the heap.
    String(CompactString),
    /// A calendar date, as days since 1970-01-01.
    Date(i32),
    /// An instant, as microseconds since 1970-01-01T00:00:00Z.
    DateTime(i64),
    /// A wall-clock date and time with no time zone (a "naive" timestamp), as microseconds
    /// since 1970-01-01T00:00:00 on the same clock. It never compares with or converts to a
    /// [`Value::DateTime`] implicitly: that would assert a zone the data never had.
    LocalDateTime(i64),
    /// Raw bytes.
    Bytes(Box<[u8]>),
    /// An ordered list of values.
    Array(Arc<[Value]>),
    /// A map from string keys to values, ordered by key.
    Map(Arc<BTreeMap<String, Value>>),
}

impl Value {
    /// The name of this value's type, as used in messages and schemas.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::String(_) => "string",
            Value::Date(_) => "date",
            Value::DateTime(_) => "datetime",
            Value::LocalDateTime(_) => "local_datetime",
            Value::Bytes(_) => "bytes",
            Value::Array(_) => "array",
            Value::Map(_) => "map",
        }
    }

    /// Whether this is [`Value::Null`].
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The string slice, if this is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The value as a float, if it is a number.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Value::Int(i) => Some(*i as f64),
            Value::Float(f) => Some(*f),
            _ => None,
        }
    }

    /// The value as an integer, if it is an integer (or a float with no fraction).
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            Value::Float(f) if f.fract() == 0.0 && f.is_finite() => Some(*f as i64),
            _ => None,
        }
    }

    /// A total order over all values, used by sort, dedup and group-by.
    ///
    /// Values of different types order by type rank (null < bool < numbers < string < date <
    /// datetime < bytes < array < map); ints and floats compare numerically; NaN sorts after
    /// every other float.
    pub fn total_cmp(&self, other: &Value) -> Ordering {
        use Value::*;
        match (self, other) {
            (Int(a), Int(b)) => a.cmp(b),
            (Float(a), Float(b)) => a.total_cmp(b),
            (Int(a), Float(b)) => int_float_cmp(*a, *b),
            (Float(a), Int(b)) => int_float_cmp(*b, *a).reverse(),
            (String(a), String(b)) => a.cmp(b),
            (Bool(a), Bool(b)) => a.cmp(b),
            (Date(a), Date(b)) => a.cmp(b),
            (DateTime(a), DateTime(b)) => a.cmp(b),
            (LocalDateTime(a), LocalDateTime(b)) => a.cmp(b),
            (Bytes(a), Bytes(b)) => a.cmp(b),
            (Array(a), Array(b)) => {
                for (x, y) in a.iter().zip(b.iter()) {
                    let o = x.total_cmp(y);
                    if o != Ordering::Equal {
                        return o;
                    }
                }
                a.len().cmp(&b.len())
            }
            (Map(a), Map(b)) => {
                for ((ka, va), (kb, vb)) in a.iter().zip(b.iter()) {
                    let o = ka.cmp(kb).then_with(|| va.total_cmp(vb));
                    if o != Ordering::Equal {
                        return o;
                    }
                }
                a.len().cmp(&b.len())
            }
            (Null, Null) => Ordering::Equal,
            _ => self.rank().cmp(&other.rank()),
        }
    }

    fn rank(&self) -> u8 {
        match self {
            Value::Null => 0,
            Value::Bool(_) => 1,
            Value::Int(_) | Value::Float(_) => 2,
            Value::String(_) => 3,
            Value::Date(_) => 4,
            Value::DateTime(_) => 5,
            Value::LocalDateTime(_) => 6,
            Value::Bytes(_) => 7,
            Value::Array(_) => 8,
            Value::Map(_) => 9,
        }
    }

    /// Heap bytes this value owns beyond its own 24 bytes (an estimate for memory accounting).
    pub fn heap_size(&self) -> usize {
        match self {
            Value::String(s) if s.is_heap_allocated() => s.capacity(),
            Value::Bytes(b) => b.len(),
            Value::Array(a) => 16 + a.iter().map(|v| 24 + v.heap_size()).sum::<usize>(),
            Value::Map(m) => m.iter().map(|(k, v)| 48 + k.len() + v.heap_size()).sum(),
            _ => 0,
        }
    }

    /// Converts to JSON (dates as ISO strings, bytes as hex).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            Value::String(s) => J::String(s.to_string()),
            Value::Date(_) | Value::DateTime(_) | Value::LocalDateTime(_) | Value::Bytes(_) => {
                J::String(self.to_string())
            }
            Value::Array(a) => J::Array(a.iter().map(Value::to_json).collect()),
            Value::Map(m) => J::Object(m.iter().map(|(k, v)| (k.clone(), v.to_json())).collect()),
        }
    }

    /// Converts from JSON (numbers become int when integral, objects become maps).
    pub fn from_json(json: &serde_json::Value) -> Value {
        use serde_json::Value as J;
        match json {
            J::Null => Value::Null,
            J::Bool(b) => Value::Bool(*b),
            J::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            J::String(s) => Value::String(s.as_str().into()),
            J::Array(a) => Value::Array(a.iter().map(Value::from_json).collect()),
            J::Object(o) => Value::Map(Arc::new(
                o.iter()
                    .map(|(k, v)| (k.clone(), Value::from_json(v)))
                    .collect(),
            )),
        }
    }
}

/// Compares an int with a float exactly (no rounding of large ints), consistently with
/// `f64::total_cmp`: a negative NaN is below every int, a positive NaN above.
fn int_float_cmp(i: i64, f: f64) -> Ordering {
    if f.is_nan() {
        return if f.is_sign_negative() {
            Ordering::Greater
        } else {
            Ordering::Less
        };
    }
    // Rounding is monotonic, so a difference after rounding `i` is a real one.
    match (i as f64).total_cmp(&f) {
        // Here `f` is integral and within [-2^63, 2^63].
        Ordering::Equal if f >= 9_223_372_036_854_775_808.0 => Ordering::Less,
        Ordering::Equal => i.cmp(&(f as i64)),
        o => o,
    }
}

/// Formats a float the way readers expect to read it back: shortest round-trip form, with
/// `.0` kept off integral values only when they came from integers (they never do here).
pub fn format_float(f: f64, out: &mut String) {
    let _ = write_float(f, out);
}

/// [`format_float`]'s text, written to any formatter: Rust's `{}` (shortest round trip), or
/// `{:.1}` for an integral value below 1e16, written here through an integer writer. (ryu's
/// digits differ from Rust's where two shortest forms are equally close, so it is not used.)
fn write_float(f: f64, out: &mut impl fmt::Write) -> fmt::Result {
    if !f.is_finite() {
        return out.write_str(if f.is_nan() {
            "NaN"
        } else if f > 0.0 {
            "inf"
        } else {
            "-inf"
        });
    }
    if f.fract() == 0.0 && f.abs() < 1e16 {
        if f == 0.0 && f.is_sign_negative() {
            return out.write_str("-0.0");
        }
        // Exact: |f| < 1e16 < 2^63.
        out.write_str(itoa::Buffer::new().format(f as i64))?;
        return out.write_str(".0");
    }
    write!(out, "{f}")
}

/// `fmt::Write` into a byte buffer.
struct ByteText<'a>(&'a mut Vec<u8>);

impl fmt::Write for ByteText<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

impl Value {
    /// Appends the value's text (exactly its `Display`) to `out`: what text writers call per
    /// cell, so numbers and dates skip the formatting machinery.
    pub fn write_text(&self, out: &mut Vec<u8>) {
        match self {
            Value::Null => {}
            Value::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
            Value::Int(i) => out.extend_from_slice(itoa::Buffer::new().format(*i).as_bytes()),
            Value::Float(f) => {
                let _ = write_float(*f, &mut ByteText(out));
            }
            Value::String(s) => out.extend_from_slice(s.as_bytes()),
            Value::Date(d) => match iso_date(i64::from(*d)) {
                Some(text) => out.extend_from_slice(text.as_str().as_bytes()),
                None => {
                    let _ = fmt::Write::write_fmt(&mut ByteText(out), format_args!("{self}"));
                }
            },
            Value::DateTime(us) | Value::LocalDateTime(us) => {
                match iso_datetime(*us, matches!(self, Value::DateTime(_))) {
                    Some(text) => out.extend_from_slice(text.as_str().as_bytes()),
                    None => {
                        let _ = fmt::Write::write_fmt(&mut ByteText(out), format_args!("{self}"));
                    }
                }
            }
            Value::Bytes(_) | Value::Array(_) | Value::Map(_) => {
                let _ = fmt::Write::write_fmt(&mut ByteText(out), format_args!("{self}"));
            }
        }
    }
}

impl fmt::Display for Value {
    /// The text form used by CSV writers and string conversion: null is empty, dates are ISO 8601.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => Ok(()),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Float(x) => write_float(*x, f),
            Value::String(s) => f.write_str(s),
            Value::Date(d) => match iso_date(i64::from(*d)) {
                Some(text) => f.write_str(text.as_str()),
                None => match d
                    .checked_add(719_163)
                    .and_then(chrono::NaiveDate::from_num_days_from_ce_opt)
                {
                    Some(date) => write!(f, "{}", date.format("%Y-%m-%d")),
                    None => write!(f, "{d}"),
                },
            },
            Value::DateTime(us) => match iso_datetime(*us, true) {
                Some(text) => f.write_str(text.as_str()),
                None => match chrono::DateTime::from_timestamp_micros(*us) {
                    Some(dt) if us % 1_000_000 == 0 => {
                        write!(f, "{}", dt.format("%Y-%m-%dT%H:%M:%SZ"))
                    }
                    Some(dt) => write!(f, "{}", dt.format("%Y-%m-%dT%H:%M:%S%.6fZ")),
                    None => write!(f, "{us}"),
                },
            },
            Value::LocalDateTime(us) => match iso_datetime(*us, false) {
                Some(text) => f.write_str(text.as_str()),
                None => match chrono::DateTime::from_timestamp_micros(*us) {
                    Some(dt) if us % 1_000_000 == 0 => {
                        write!(f, "{}", dt.format("%Y-%m-%dT%H:%M:%S"))
                    }
                    Some(dt) => write!(f, "{}", dt.format("%Y-%m-%dT%H:%M:%S%.6f")),
                    None => write!(f, "{us}"),
                },
            },
            Value::Bytes(b) => {
                for byte in b.iter() {
                    write!(f, "{byte:02x}")?;
                }
                Ok(())
            }
            Value::Array(_) | Value::Map(_) => write!(f, "{}", self.to_json()),
        }
    }
}

/// ISO 8601 text of at most 27 bytes, built on the stack.
struct IsoText {
    buf: [u8; 27],
    len: usize,
}

impl IsoText {
    fn push(&mut self, b: u8) {
        self.buf[self.len] = b;
        self.len += 1;
    }

    /// `v` as exactly `width` digits (`v` must fit).
    fn digits(&mut self, v: u32, width: u32) {
        for i in (0..width).rev() {
            self.push(b'0' + ((v / 10u32.pow(i)) % 10) as u8);
        }
    }

    fn as_str(&self) -> &str {
        // Only ASCII digits and separators were pushed.
        std::str::from_utf8(&self.buf[..self.len]).unwrap_or_default()
    }
}

/// The civil date of `days` since 1970-01-01 (proleptic Gregorian), for years 0 to 9999;
/// `None` outside them (chrono then writes the signed or longer year).
fn civil(days: i64) -> Option<(u32, u32, u32)> {
    // Days since 0000-03-01, in 400-year eras of 146,097 days.
    let z = days.checked_add(719_468)?;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (0..=9999)
        .contains(&y)
        .then_some((y as u32, m as u32, d as u32))
}

/// `YYYY-MM-DD` for `days` since the epoch, written directly (no format string).
fn iso_date(days: i64) -> Option<IsoText> {
    let (y, m, d) = civil(days)?;
    let mut t = IsoText {
        buf: [0; 27],
        len: 0,
    };
    t.digits(y, 4);
    t.push(b'-');
    t.digits(m, 2);
    t.push(b'-');
    t.digits(d, 2);
    Some(t)
}

/// `YYYY-MM-DDTHH:MM:SS[.ffffff][Z]` for `us` microseconds since the epoch, the same text
/// chrono's `%Y-%m-%dT%H:%M:%S%.6f` gives, written directly.
fn iso_datetime(us: i64, utc: bool) -> Option<IsoText> {
    let secs = us.div_euclid(1_000_000);
    let micros = us.rem_euclid(1_000_000) as u32;
    let mut t = iso_date(secs.div_euclid(86_400))?;
    let sod = secs.rem_euclid(86_400) as u32;
    t.push(b'T');
    t.digits(sod / 3600, 2);
    t.push(b':');
    t.digits(sod / 60 % 60, 2);
    t.push(b':');
    t.digits(sod % 60, 2);
    if micros != 0 {
        t.push(b'.');
        t.digits(micros, 6);
    }
    if utc {
        t.push(b'Z');
    }
    Some(t)
}

/// Parses an ISO 8601 date (`YYYY-MM-DD`) into days since the epoch.
pub fn parse_date(s: &str) -> Option<i32> {
    let d = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").ok()?;
    Some(d.num_days_from_ce() - 719_163)
}

/// Parses an ISO 8601 / RFC 3339 datetime with a zone (`Z` or an offset) into microseconds
/// since the epoch (UTC). A datetime without a zone is not taken.
pub fn parse_zoned_datetime(s: &str) -> Option<i64> {
    if s.len() < 20 {
        return None;
    }
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|dt| dt.timestamp_micros())
}

/// Parses a datetime without a zone (`2024-01-02T03:04:05[.ffffff]`, or with a space for
/// `T`) into microseconds since 1970-01-01T00:00:00 on the same wall clock.
pub fn parse_local_datetime(s: &str) -> Option<i64> {
    if s.len() < 19 {
        return None;
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(dt) = chrono::NaiveDateTime::parse_from_str(s, fmt) {
            return Some(dt.and_utc().timestamp_micros());
        }
    }
    None
}

/// Parses an ISO 8601 / RFC 3339 datetime into microseconds since the epoch (UTC), for an
/// explicit conversion to a zoned datetime.
///
/// Accepts `2024-01-02T03:04:05Z`, offsets, fractional seconds, and a naive
/// `2024-01-02T03:04:05` or `2024-01-02 03:04:05` (taken as UTC: the caller asked for a
/// zoned value). Readers use [`parse_zoned_datetime`] and [`parse_local_datetime`], which
/// keep the two apart.
pub fn parse_datetime(s: &str) -> Option<i64> {
    if s.len() < 19 {
        return None;
    }
    if let Ok(dt) = chrono::DateTime::parse_from_rfc3339(s) {
        return Some(dt.timestamp_micros());
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(dt) = chrono::NaiveDateTime::parse_from_str(s, fmt) {
            return Some(dt.and_utc().timestamp_micros());
        }
    }
    None
}

use chrono::Datelike;

macro_rules! from_impl {
    ($t:ty, $v:ident, $e:expr) => {
        impl From<$t> for Value {
            fn from($v: $t) -> Value {
                $e
            }
        }
    };
}
from_impl!(bool, v, Value::Bool(v));
from_impl!(i64, v, Value::Int(v));
from_impl!(i32, v, Value::Int(v as i64));
from_impl!(f64, v, Value::Float(v));
from_impl!(&str, v, Value::String(v.into()));
from_impl!(String, v, Value::String(v.into()));
from_impl!(CompactString, v, Value::String(v));

#[cfg(test)]
mod tests {

    /// The direct ISO writers give chrono's text, byte for byte, across the calendar:
    /// leap days, century years, before the epoch, the years 0 and 9999 and beyond them.
    #[test]
    fn dates_and_datetimes_are_written_as_chrono_writes_them() {
        let chrono_dt = |us: i64, utc: bool| {
            let dt = chrono::DateTime::from_timestamp_micros(us).unwrap();
            let z = if utc { "Z" } else { "" };
            if us % 1_000_000 == 0 {
                format!("{}{z}", dt.format("%Y-%m-%dT%H:%M:%S"))
            } else {
                format!("{}{z}", dt.format("%Y-%m-%dT%H:%M:%S%.6f"))
            }
        };
        let day = 86_400_000_000i64;
        let mut samples: Vec<i64> = vec![
            0,
            -1,
            1,
            999_999,
            -1_000_000,
            951_782_400_000_000,     // 2000-02-29
            -2_208_988_800_000_000,  // 1900-01-01
            -62_167_219_200_000_000, // 0000-01-01
            -62_167_219_200_000_001, // before year 0
            253_402_300_799_999_999, // 9999-12-31T23:59:59.999999
            253_402_300_800_000_000, // 10000-01-01
        ];
        let mut x: u64 = 0x243F_6A88_85A3_08D3;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            // Years about -300 to 10300, any microsecond.
            samples.push((x % (2 * 264_000_000_000_000_000)) as i64 - 72_000_000_000_000_000);
        }
        for us in samples {
            assert_eq!(Value::DateTime(us).to_string(), chrono_dt(us, true), "{us}");
            assert_eq!(
                Value::LocalDateTime(us).to_string(),
                chrono_dt(us, false),
                "{us}"
            );
            let days = us.div_euclid(day) as i32;
            let date = chrono::NaiveDate::from_num_days_from_ce_opt(days + 719_163).unwrap();
            assert_eq!(
                Value::Date(days).to_string(),
                date.format("%Y-%m-%d").to_string(),
                "{days}"
            );
        }
    }

    use super::*;

    #[test]
    fn value_is_24_bytes() {
        assert_eq!(std::mem::size_of::<Value>(), 24);
    }

    /// Strings of up to 24 bytes (any UTF-8) live in the value itself and cost no heap; a
    /// longer one is counted at its heap size. Either way the text is what was given.
    #[test]
    fn short_strings_are_inline_and_long_ones_counted() {
        for text in [
            "",
            "river",
            "name_1999999",
            "äöü-éè-çñ-€uro",
            "exactly twenty-four byte",
        ] {
            assert!(text.len() <= 24);
            let v = Value::from(text);
            assert_eq!(v.heap_size(), 0, "{text:?}");
            assert_eq!(v.as_str(), Some(text));
        }
        let long = "a string that is longer than twenty-four bytes";
        let v = Value::from(long.to_string());
        assert!(v.heap_size() >= long.len());
        assert_eq!(v.as_str(), Some(long));
        assert_eq!(v, Value::from(long));
    }

    #[test]
    fn total_order_mixes_numbers_and_ranks_types() {
        assert_eq!(Value::Int(2).total_cmp(&Value::Float(2.5)), Ordering::Less);
        assert_eq!(Value::Null.total_cmp(&Value::Int(0)), Ordering::Less);
        assert_eq!(
            Value::from("a").total_cmp(&Value::Int(9)),
            Ordering::Greater
        );
        assert_eq!(
            Value::Float(f64::NAN).total_cmp(&Value::Float(1e300)),
            Ordering::Greater
        );
    }

    #[test]
    fn ints_and_floats_compare_exactly_beyond_2_pow_53() {
        let big = (1i64 << 53) + 1;
        assert_eq!(
            Value::Int(big).total_cmp(&Value::Float((1u64 << 53) as f64)),
            Ordering::Greater
        );
        assert_eq!(
            Value::Float((1u64 << 53) as f64).total_cmp(&Value::Int(big)),
            Ordering::Less
        );
        assert_eq!(
            Value::Int(i64::MAX).total_cmp(&Value::Float(9.3e18)),
            Ordering::Less
        );
        assert_eq!(Value::Int(3).total_cmp(&Value::Float(3.0)), Ordering::Equal);
        let mut v = [
            Value::Float(f64::NAN),
            Value::Int(big),
            Value::Float(9e15),
            Value::Int(1),
            Value::Float(-f64::NAN),
        ];
        v.sort_by(Value::total_cmp);
        assert!(matches!(v[0], Value::Float(f) if f.is_nan()));
        assert_eq!(v[1], Value::Int(1));
        assert_eq!(v[2], Value::Float(9e15));
        assert_eq!(v[3], Value::Int(big));
        assert!(matches!(v[4], Value::Float(f) if f.is_nan()));
    }

    #[test]
    fn extreme_dates_do_not_panic() {
        assert_eq!(Value::Date(i32::MAX).to_string(), i32::MAX.to_string());
    }

    #[test]
    fn dates_round_trip_through_text() {
        let d = parse_date("2024-02-29").unwrap();
        assert_eq!(Value::Date(d).to_string(), "2024-02-29");
        let t = parse_datetime("2024-02-29T10:11:12Z").unwrap();
        assert_eq!(Value::DateTime(t).to_string(), "2024-02-29T10:11:12Z");
        let t2 = parse_datetime("2024-02-29 10:11:12.5").unwrap();
        assert_eq!(
            Value::DateTime(t2).to_string(),
            "2024-02-29T10:11:12.500000Z"
        );
        assert_eq!(parse_date("2024-02-30"), None);
    }

    #[test]
    fn floats_print_to_round_trip() {
        assert_eq!(Value::Float(1.0).to_string(), "1.0");
        assert_eq!(Value::Float(0.1).to_string(), "0.1");
        assert_eq!(Value::Float(1e20).to_string(), "100000000000000000000");
    }

    /// Rust's own float formatting, which the ryu-based writer must match byte for byte.
    fn std_float(f: f64) -> String {
        if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e16 {
            format!("{f:.1}")
        } else {
            format!("{f}")
        }
    }

    /// The float writer gives the text of Rust's formatting for every kind of float: random
    /// bit patterns (subnormals, huge and tiny exponents), short decimals as data holds them,
    /// integers around 1e16 and 2^53, and the special values.
    #[test]
    fn the_float_writer_matches_rusts_formatting() {
        let mut samples = vec![
            0.0,
            -0.0,
            1.0,
            -1.0,
            0.1,
            0.5,
            1e15,
            9_999_999_999_999_998.0,
            1e16,
            1e16 + 2.0,
            -1e16,
            9_007_199_254_740_993.0,
            1e21,
            1e22,
            1e-7,
            1.5e-7,
            123.456,
            f64::MAX,
            f64::MIN,
            f64::MIN_POSITIVE,
            5e-324,
            -5e-324,
            f64::EPSILON,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ];
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..200_000 {
            samples.push(f64::from_bits(rng.u64(..)));
            let decimal = rng.i64(-10_000_000..10_000_000) as f64 / 10f64.powi(rng.i32(0..9));
            samples.push(decimal);
            samples.push(rng.f64() * 10f64.powi(rng.i32(-30..30)));
            samples.push((rng.i64(-(1 << 55)..(1 << 55))) as f64);
        }
        for f in samples {
            let expected = std_float(f);
            let mut text = String::new();
            format_float(f, &mut text);
            assert_eq!(text, expected, "bits {:#x}", f.to_bits());
            let mut bytes = Vec::new();
            Value::Float(f).write_text(&mut bytes);
            assert_eq!(bytes, expected.as_bytes(), "bits {:#x}", f.to_bits());
        }
    }

    /// `write_text` is the `Display` text of every kind of value.
    #[test]
    fn write_text_is_the_display_text() {
        let values = vec![
            Value::Null,
            Value::Bool(true),
            Value::Bool(false),
            Value::Int(0),
            Value::Int(i64::MIN),
            Value::Int(i64::MAX),
            Value::Int(-42),
            Value::Float(2.5),
            Value::String("a,b \"c\"".into()),
            Value::String(String::new().into()),
            Value::Date(0),
            Value::Date(-800_000),
            Value::Date(i32::MAX),
            Value::DateTime(1_700_000_000_123_456),
            Value::DateTime(i64::MIN),
            Value::LocalDateTime(-1),
            Value::LocalDateTime(1_700_000_000_000_000),
            Value::Bytes(vec![0, 15, 255].into()),
            Value::Array(vec![Value::Int(1), Value::String("x".into())].into()),
        ];
        for v in values {
            let mut bytes = Vec::new();
            v.write_text(&mut bytes);
            assert_eq!(String::from_utf8(bytes).unwrap(), v.to_string(), "{v:?}");
        }
    }
}
