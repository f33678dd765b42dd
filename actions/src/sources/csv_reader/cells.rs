//! Cell parsing for `csv_reader`: decoding with the file's encoding, and typed parsing on
//! byte slices (without allocating, strings aside) in two modes:
//!
//! - **exact** (inferred columns): a cell takes a type only if that type writes it back as
//!   the very same text (`007`, `1e3`, `12.50`, `TRUE` and `2024-01-13 08:35:00` stay text), so
//!   a value no action touched goes out as it came in;
//! - **declared** (types in `columns`): the user asked for the type, so the usual spellings
//!   are accepted (white space around, `+5`, `1e3`, any-case booleans, offsets).

use std::borrow::Cow;

use sluice_runtime::Value;
use sluice_runtime::feature::{
    format_float, parse_date, parse_local_datetime, parse_zoned_datetime,
};

use super::records::Record;
use super::{ColumnType, Encoding};

/// Decodes a cell; `Err(k)` when byte `k` of the cell is not valid in the encoding.
pub(super) fn decode(b: &[u8], encoding: Encoding) -> Result<Cow<'_, str>, usize> {
    match encoding {
        Encoding::Utf8 => std::str::from_utf8(b)
            .map(Cow::Borrowed)
            .map_err(|e| e.valid_up_to()),
        Encoding::Utf8Lossy => Ok(String::from_utf8_lossy(b)),
        Encoding::Latin1 => match std::str::from_utf8(b) {
            Ok(s) if b.is_ascii() => Ok(Cow::Borrowed(s)),
            _ => Ok(Cow::Owned(b.iter().map(|&c| c as char).collect())),
        },
        Encoding::ShiftJis => {
            if b.is_ascii() {
                // ASCII is the same in Shift_JIS (but for two rarely used code points).
                return Ok(Cow::Borrowed(std::str::from_utf8(b).unwrap_or_default()));
            }
            encoding_rs::SHIFT_JIS
                .decode_without_bom_handling_and_without_replacement(b)
                .ok_or_else(|| first_bad_shift_jis(b))
        }
    }
}

/// The offset of the first byte where Shift_JIS decoding fails.
fn first_bad_shift_jis(b: &[u8]) -> usize {
    let (mut lo, mut hi) = (0, b.len());
    // The longest decodable prefix, by bisection (decoding is all or nothing).
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        if encoding_rs::SHIFT_JIS
            .decode_without_bom_handling_and_without_replacement(&b[..mid])
            .is_some()
        {
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    lo
}

/// A string value, or `None` when the cell is not valid in the encoding.
pub(super) fn text_value(b: &[u8], encoding: Encoding) -> Result<Value, usize> {
    decode(b, encoding).map(|s| Value::String(s.into()))
}

/// Parses a cell of a declared column as `ty`. An empty unquoted cell is null; `None` means
/// it does not parse (string cells are decoded by the caller).
pub(super) fn parse_declared(b: &[u8], quoted: bool, ty: ColumnType) -> Option<Value> {
    if b.is_empty() && !quoted {
        return Some(Value::Null);
    }
    let t = trim(b);
    if t.is_empty() {
        return Some(Value::Null);
    }
    match ty {
        ColumnType::Int => parse_i64(t).map(Value::Int),
        ColumnType::Float => parse_f64(t).map(Value::Float),
        ColumnType::Bool => parse_bool(t).map(Value::Bool),
        ColumnType::Date => fast_date(t)
            .or_else(|| parse_date(std::str::from_utf8(t).ok()?))
            .map(Value::Date),
        ColumnType::Datetime => match fast_datetime(t) {
            Some((us, true)) => Some(Value::DateTime(us)),
            Some((_, false)) => None,
            None => parse_zoned_datetime(std::str::from_utf8(t).ok()?).map(Value::DateTime),
        },
        ColumnType::LocalDatetime => match fast_datetime(t) {
            Some((us, false)) => Some(Value::LocalDateTime(us)),
            Some((_, true)) => None,
            None => parse_local_datetime(std::str::from_utf8(t).ok()?).map(Value::LocalDateTime),
        },
        ColumnType::String => None,
    }
}

/// Parses a cell of an inferred column as `ty`, only if the value writes back as exactly
/// these bytes. An empty unquoted cell is null. A `float` column also takes canonical ints
/// (as ints), so `1` and `1.5` in one column both come back as written.
pub(super) fn parse_exact(b: &[u8], quoted: bool, ty: ColumnType) -> Option<Value> {
    if b.is_empty() {
        return (!quoted).then_some(Value::Null);
    }
    match ty {
        ColumnType::Int => exact_int(b).map(Value::Int),
        ColumnType::Float => match exact_int(b) {
            Some(i) => Some(Value::Int(i)),
            None => exact_float(b).map(Value::Float),
        },
        ColumnType::Bool => match b {
            b"true" => Some(Value::Bool(true)),
            b"false" => Some(Value::Bool(false)),
            _ => None,
        },
        ColumnType::Date => {
            let d = fast_date(b)?;
            // Four-digit years are exactly what the writer prints.
            Some(Value::Date(d))
        }
        ColumnType::Datetime => match fast_datetime(b)? {
            (us, true) if canonical_datetime(b, true) => Some(Value::DateTime(us)),
            _ => None,
        },
        ColumnType::LocalDatetime => match fast_datetime(b)? {
            (us, false) if canonical_datetime(b, false) => Some(Value::LocalDateTime(us)),
            _ => None,
        },
        ColumnType::String => None,
    }
}

/// `-?(0|[1-9][0-9]*)` within i64, and not `-0`.
fn exact_int(b: &[u8]) -> Option<i64> {
    let digits = b.strip_prefix(b"-").unwrap_or(b);
    match digits {
        [] => return None,
        [b'0'] if digits.len() != b.len() => return None,
        [b'0', _, ..] => return None,
        _ => {}
    }
    if digits.first() == Some(&b'+') {
        return None;
    }
    parse_i64(b)
}

/// A float whose shortest text (as the writers print it) is exactly `b`.
fn exact_float(b: &[u8]) -> Option<f64> {
    if !matches!(b.last(), Some(c) if c.is_ascii_digit()) || b[0] == b'+' {
        return None;
    }
    let f = parse_f64_untrimmed(b)?;
    if fast_canonical_decimal(b) {
        return Some(f);
    }
    let mut s = String::with_capacity(24);
    format_float(f, &mut s);
    (s.as_bytes() == b).then_some(f)
}

/// `-?(0|[1-9]\d*)\.\d*[1-9]` or `-?(0|[1-9]\d*)\.0`, with at most 15 significant digits:
/// such a decimal is its own shortest round-trip form, so the writer prints it unchanged.
fn fast_canonical_decimal(b: &[u8]) -> bool {
    let body = b.strip_prefix(b"-").unwrap_or(b);
    let Some(dot) = body.iter().position(|&c| c == b'.') else {
        return false;
    };
    let (int, frac) = (&body[..dot], &body[dot + 1..]);
    if int.is_empty()
        || frac.is_empty()
        || !int.iter().all(u8::is_ascii_digit)
        || !frac.iter().all(u8::is_ascii_digit)
        || (int.len() > 1 && int[0] == b'0')
    {
        return false;
    }
    let integral = frac.iter().all(|&c| c == b'0');
    if integral {
        // `5.0`: the writer's form of an integral float (below 1e16).
        return frac.len() == 1 && int.len() <= 15;
    }
    if frac.last() == Some(&b'0') {
        return false;
    }
    let significant = if int == b"0" {
        frac.iter().skip_while(|&&c| c == b'0').count()
    } else {
        int.len() + frac.len()
    };
    significant <= 15
}

/// Whether a parsed datetime is spelled the way the writer prints it:
/// `YYYY-MM-DDTHH:MM:SS[.ffffff](Z)`, six fraction digits only when not all zero.
fn canonical_datetime(b: &[u8], zoned: bool) -> bool {
    let body = if zoned {
        match b.strip_suffix(b"Z") {
            Some(x) => x,
            None => return false,
        }
    } else {
        b
    };
    if body.len() < 19 || body[10] != b'T' {
        return false;
    }
    match body.len() {
        19 => true,
        26 => body[19] == b'.' && body[20..].iter().any(|&c| c != b'0'),
        _ => false,
    }
}

/// For messages: whether a cell would parse as `ty` if the column were declared.
pub(super) fn parses_leniently(b: &[u8], ty: ColumnType) -> bool {
    !trim(b).is_empty() && parse_declared(b, false, ty).is_some_and(|v| !v.is_null())
}

/// The narrowest type that every sample cell of column `i` takes exactly, else string.
pub(super) fn infer_column(sample: &[Record], i: usize) -> ColumnType {
    infer_with(sample, i, |b, q, ty| parse_exact(b, q, ty).is_some())
}

/// The type the column would have if inference accepted any spelling (for messages).
pub(super) fn infer_lenient(sample: &[Record], i: usize) -> ColumnType {
    infer_with(sample, i, |b, q, ty| {
        (b.is_empty() && !q) || parses_leniently(b, ty)
    })
}

fn infer_with(
    sample: &[Record],
    i: usize,
    fits: impl Fn(&[u8], bool, ColumnType) -> bool,
) -> ColumnType {
    const ORDER: [ColumnType; 6] = [
        ColumnType::Int,
        ColumnType::Float,
        ColumnType::Bool,
        ColumnType::Date,
        ColumnType::Datetime,
        ColumnType::LocalDatetime,
    ];
    let mut possible = [true; 6];
    let mut seen = false;
    for r in sample {
        let Some(cell) = r.get(i) else { continue };
        let quoted = r.quoted(i);
        if cell.is_empty() && !quoted {
            continue;
        }
        seen = true;
        for (k, ty) in ORDER.iter().enumerate() {
            if possible[k] && !fits(cell, quoted, *ty) {
                possible[k] = false;
            }
        }
        if !possible.iter().any(|p| *p) {
            return ColumnType::String;
        }
    }
    if !seen {
        return ColumnType::String;
    }
    ORDER
        .iter()
        .zip(possible)
        .find(|(_, p)| *p)
        .map_or(ColumnType::String, |(t, _)| *t)
}

pub(super) fn trim(b: &[u8]) -> &[u8] {
    b.trim_ascii()
}

pub(super) fn parse_i64(b: &[u8]) -> Option<i64> {
    let (neg, digits) = match b.first()? {
        b'-' => (true, &b[1..]),
        b'+' => (false, &b[1..]),
        _ => (false, b),
    };
    if digits.is_empty() || digits.len() > 19 {
        return None;
    }
    // Accumulate negatively so that i64::MIN parses.
    let mut n: i64 = 0;
    for &c in digits {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        n = n.checked_mul(10)?.checked_sub(d as i64)?;
    }
    if neg { Some(n) } else { n.checked_neg() }
}

pub(super) fn parse_f64(b: &[u8]) -> Option<f64> {
    parse_f64_untrimmed(trim(b))
}

fn parse_f64_untrimmed(b: &[u8]) -> Option<f64> {
    let s = std::str::from_utf8(b).ok()?;
    // Rust also reads `inf`, `NaN` and `infinity`: those stay text.
    if !s.bytes().any(|c| c.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

fn parse_bool(b: &[u8]) -> Option<bool> {
    if b.eq_ignore_ascii_case(b"true") {
        Some(true)
    } else if b.eq_ignore_ascii_case(b"false") {
        Some(false)
    } else {
        None
    }
}

fn digits(b: &[u8]) -> Option<u32> {
    let mut n = 0u32;
    for &c in b {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        n = n * 10 + d as u32;
    }
    Some(n)
}

/// `YYYY-MM-DD` into days since 1970-01-01.
pub(super) fn fast_date(b: &[u8]) -> Option<i32> {
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (y, m, d) = (digits(&b[..4])?, digits(&b[5..7])?, digits(&b[8..10])?);
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let days_in_month = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if d == 0 || d > days_in_month {
        return None;
    }
    Some(days_from_civil(y as i64, m, d) as i32)
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = m as i64;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `YYYY-MM-DD[T ]HH:MM:SS[.fff][Z|±HH:MM]` into microseconds since 1970-01-01T00:00:00 on
/// the stated clock (UTC when zoned) and whether a zone was given.
pub(super) fn fast_datetime(b: &[u8]) -> Option<(i64, bool)> {
    if b.len() < 19 || !matches!(b[10], b'T' | b't' | b' ') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let days = fast_date(&b[..10])? as i64;
    let (h, mi, s) = (
        digits(&b[11..13])?,
        digits(&b[14..16])?,
        digits(&b[17..19])?,
    );
    if h > 23 || mi > 59 || s > 59 {
        return None;
    }
    let mut i = 19;
    let mut micros: i64 = 0;
    if b.get(i) == Some(&b'.') {
        i += 1;
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            if i - start < 6 {
                micros = micros * 10 + (b[i] - b'0') as i64;
            }
            i += 1;
        }
        let n = i - start;
        if n == 0 || n > 9 {
            return None;
        }
        for _ in n..6 {
            micros *= 10;
        }
    }
    let (offset, zoned): (i64, bool) = match &b[i..] {
        [] => (0, false),
        [b'Z'] | [b'z'] => (0, true),
        [sign @ (b'+' | b'-'), oh @ .., b':', om1, om2] if oh.len() == 2 => {
            let (oh, om) = (digits(oh)? as i64, digits(&[*om1, *om2])? as i64);
            if oh > 23 || om > 59 {
                return None;
            }
            let o = oh * 3600 + om * 60;
            (if *sign == b'-' { -o } else { o }, true)
        }
        _ => return None,
    };
    let secs = days * 86_400 + (h * 3600 + mi * 60 + s) as i64 - offset;
    Some((secs * 1_000_000 + micros, zoned))
}
