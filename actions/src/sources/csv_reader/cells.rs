//! Cell parsing for `csv_reader`: on byte slices, without allocating (strings aside), with
//! fast paths for ISO dates and datetimes that fall back to the general parsers.

use csv::ByteRecord;
use sluice_runtime::Value;
use sluice_runtime::feature::{parse_date, parse_datetime};

use super::ColumnType;

/// Parses a cell as `ty`. An empty cell is null; `None` means it does not parse.
pub(super) fn parse_cell(b: &[u8], ty: ColumnType) -> Option<Value> {
    if b.is_empty() {
        return Some(Value::Null);
    }
    if ty == ColumnType::String {
        return Some(Value::String(match std::str::from_utf8(b) {
            Ok(s) => s.into(),
            Err(_) => String::from_utf8_lossy(b).into(),
        }));
    }
    let t = trim(b);
    if t.is_empty() {
        return Some(Value::Null);
    }
    match ty {
        ColumnType::Int => parse_i64(t).map(Value::Int),
        ColumnType::Float => parse_f64(t).map(Value::Float),
        ColumnType::Bool => parse_bool(t).map(Value::Bool),
        ColumnType::Date => parse_date_bytes(t).map(Value::Date),
        ColumnType::Datetime => parse_datetime_bytes(t).map(Value::DateTime),
        ColumnType::String => None,
    }
}

/// The narrowest type every non-empty sample cell of column `i` parses as.
pub(super) fn infer_column(sample: &[ByteRecord], i: usize) -> ColumnType {
    const ORDER: [ColumnType; 5] = [
        ColumnType::Int,
        ColumnType::Float,
        ColumnType::Bool,
        ColumnType::Date,
        ColumnType::Datetime,
    ];
    let mut possible = [true; 5];
    let mut seen = false;
    for r in sample {
        let Some(cell) = r.get(i) else { continue };
        let t = trim(cell);
        if t.is_empty() {
            continue;
        }
        seen = true;
        for (k, ty) in ORDER.iter().enumerate() {
            if possible[k] && parse_cell(t, *ty).is_none() {
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
    std::str::from_utf8(trim(b)).ok()?.parse().ok()
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

/// `YYYY-MM-DD` on bytes, else the general parser.
fn parse_date_bytes(b: &[u8]) -> Option<i32> {
    fast_date(b).or_else(|| parse_date(std::str::from_utf8(b).ok()?))
}

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

/// `YYYY-MM-DD[T ]HH:MM:SS[.fff][Z|±HH:MM]` on bytes, else the general parser.
fn parse_datetime_bytes(b: &[u8]) -> Option<i64> {
    fast_datetime(b).or_else(|| parse_datetime(std::str::from_utf8(b).ok()?))
}

pub(super) fn fast_datetime(b: &[u8]) -> Option<i64> {
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
    let offset: i64 = match &b[i..] {
        [] | [b'Z'] | [b'z'] => 0,
        [sign @ (b'+' | b'-'), oh @ .., b':', om1, om2] if oh.len() == 2 => {
            let (oh, om) = (digits(oh)? as i64, digits(&[*om1, *om2])? as i64);
            if oh > 23 || om > 59 {
                return None;
            }
            let o = oh * 3600 + om * 60;
            if *sign == b'-' { -o } else { o }
        }
        _ => return None,
    };
    let secs = days * 86_400 + (h * 3600 + mi * 60 + s) as i64 - offset;
    Some(secs * 1_000_000 + micros)
}
