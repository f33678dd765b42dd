//! Date functions: parts, arithmetic with units, formatting and parsing with strftime
//! formats. A date is days since 1970-01-01, a datetime (UTC) and a local datetime (no zone)
//! microseconds since 1970-01-01T00:00:00 on their clock; the two datetimes never convert
//! into each other here.

use std::fmt::Write;

use chrono::format::{Fixed, Item, StrftimeItems};
use chrono::{Datelike, Months, NaiveDate, NaiveDateTime};

use super::{int_arg, str_arg, type_error};
use crate::expr::catalog::Func;
use crate::expr::eval::{DAY_US, R, check_len, fail};
use crate::expr::val::Val;

/// Days from 0001-01-01 (chrono's day 1) to 1970-01-01.
const EPOCH_DAYS_FROM_CE: i32 = 719_163;

fn date_of_days(d: i32) -> Option<NaiveDate> {
    d.checked_add(EPOCH_DAYS_FROM_CE)
        .and_then(NaiveDate::from_num_days_from_ce_opt)
}

fn days_of_date(d: NaiveDate) -> i32 {
    d.num_days_from_ce() - EPOCH_DAYS_FROM_CE
}

fn naive_of_micros(t: i64) -> Option<NaiveDateTime> {
    chrono::DateTime::from_timestamp_micros(t).map(|t| t.naive_utc())
}

fn micros_of_naive(t: NaiveDateTime) -> i64 {
    t.and_utc().timestamp_micros()
}

/// The wall-clock date and time of a temporal argument (UTC for a datetime, midnight for a
/// date); `None` for null.
pub(crate) fn naive(name: &str, v: &Val) -> R<Option<NaiveDateTime>> {
    let t = match v {
        Val::Null => return Ok(None),
        Val::Date(d) => date_of_days(*d).and_then(|d| d.and_hms_opt(0, 0, 0)),
        Val::DateTime(t) | Val::LocalDateTime(t) => naive_of_micros(*t),
        _ => return type_error(name, "a date, a datetime or a local datetime", v),
    };
    match t {
        Some(t) => Ok(Some(t)),
        None => fail(format!("`{name}`: date out of range")),
    }
}

/// A unit of `date_add` / `date_diff`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unit {
    /// A fixed length, in microseconds.
    Fixed(i64),
    Month,
    Year,
}

/// The unit called `name`.
pub(crate) fn unit(name: &str) -> R<Unit> {
    Ok(match name {
        "second" => Unit::Fixed(1_000_000),
        "minute" => Unit::Fixed(60_000_000),
        "hour" => Unit::Fixed(3_600_000_000),
        "day" => Unit::Fixed(DAY_US),
        "week" => Unit::Fixed(7 * DAY_US),
        "month" => Unit::Month,
        "year" => Unit::Year,
        other => {
            return fail(format!(
                "unknown unit {other:?}: use second, minute, hour, day, week, month or year"
            ));
        }
    })
}

fn out_of_range<'a>() -> R<Val<'a>> {
    fail("`date_add`: result out of range".into())
}

/// `date_add(d, n, unit)`: the same kind of value, moved.
pub(super) fn add<'a>(d: Val<'a>, n: &Val, u: &Val) -> R<Val<'a>> {
    let name = "date_add";
    let (Some(n), Some(u)) = (int_arg(name, n)?, str_arg(name, u)?) else {
        return Ok(Val::Null);
    };
    let u = unit(u)?;
    let months = |n: i64, t: NaiveDateTime| -> Option<NaiveDateTime> {
        let m = Months::new(u32::try_from(n.unsigned_abs()).ok()?);
        if n >= 0 {
            t.checked_add_months(m)
        } else {
            t.checked_sub_months(m)
        }
    };
    let moved = |t: NaiveDateTime| -> Option<NaiveDateTime> {
        match u {
            Unit::Month => months(n, t),
            Unit::Year => months(n.checked_mul(12)?, t),
            Unit::Fixed(us) => {
                let delta = chrono::TimeDelta::microseconds(n.checked_mul(us)?);
                t.checked_add_signed(delta)
            }
        }
    };
    match d {
        Val::Null => Ok(Val::Null),
        Val::Date(days) => {
            if matches!(u, Unit::Fixed(us) if us % DAY_US != 0) {
                return fail(
                    "`date_add`: a date moves by days, weeks, months or years (convert it \
                     with to_datetime for hours)"
                        .into(),
                );
            }
            let t = date_of_days(days).and_then(|d| d.and_hms_opt(0, 0, 0));
            match t.and_then(moved) {
                Some(t) => Ok(Val::Date(days_of_date(t.date()))),
                None => out_of_range(),
            }
        }
        Val::DateTime(t) | Val::LocalDateTime(t) => {
            let zoned = matches!(d, Val::DateTime(_));
            match naive_of_micros(t).and_then(moved) {
                Some(t) if zoned => Ok(Val::DateTime(micros_of_naive(t))),
                Some(t) => Ok(Val::LocalDateTime(micros_of_naive(t))),
                None => out_of_range(),
            }
        }
        v => type_error(name, "a date, a datetime or a local datetime", &v),
    }
}

/// `date_diff(a, b, unit)`: `a - b` in whole units, truncated toward zero.
pub(super) fn diff<'a>(a: &Val, b: &Val, u: &Val) -> R<Val<'a>> {
    let name = "date_diff";
    let Some(u) = str_arg(name, u)? else {
        return Ok(Val::Null);
    };
    let Unit::Fixed(us) = unit(u)? else {
        return fail(
            "`date_diff` counts seconds, minutes, hours, days or weeks (months and years \
             have no fixed length)"
                .into(),
        );
    };
    let micros = |v: &Val| -> R<Option<(i128, bool)>> {
        Ok(match v {
            Val::Null => None,
            Val::Date(d) => Some((i128::from(*d) * i128::from(DAY_US), false)),
            Val::DateTime(t) => Some((i128::from(*t), true)),
            Val::LocalDateTime(t) => Some((i128::from(*t), false)),
            _ => return type_error(name, "a date, a datetime or a local datetime", v),
        })
    };
    let (Some((x, xz)), Some((y, yz))) = (micros(a)?, micros(b)?) else {
        return Ok(Val::Null);
    };
    let mixed =
        (xz && matches!(b, Val::LocalDateTime(_))) || (yz && matches!(a, Val::LocalDateTime(_)));
    if mixed {
        return fail(
            "`date_diff` of a datetime and a local datetime: the local one has no time \
             zone; convert it with to_datetime first"
                .into(),
        );
    }
    // |x - y| < 2^65 and us >= 10^6, so the quotient fits an i64.
    let q = (x - y) / i128::from(us);
    Ok(Val::Int(i64::try_from(q).unwrap_or(i64::MAX)))
}

/// A strftime format checked: `Err` with the message when chrono cannot read it.
pub(crate) fn check_format(fmt: &str) -> Result<Vec<Item<'_>>, String> {
    let items: Vec<Item> = StrftimeItems::new(fmt).collect();
    if items.iter().any(|i| matches!(i, Item::Error)) {
        return Err(format!(
            "invalid date format {fmt:?} (use strftime specifiers such as %Y, %m, %d, %H, %M, %S)"
        ));
    }
    Ok(items)
}

/// Whether a format reads a time-zone offset (so it can give an instant).
pub(crate) fn has_offset(items: &[Item]) -> bool {
    items.iter().any(|i| {
        matches!(
            i,
            Item::Fixed(
                Fixed::TimezoneOffset
                    | Fixed::TimezoneOffsetColon
                    | Fixed::TimezoneOffsetDoubleColon
                    | Fixed::TimezoneOffsetTripleColon
                    | Fixed::TimezoneOffsetColonZ
                    | Fixed::TimezoneOffsetZ
                    | Fixed::RFC2822
                    | Fixed::RFC3339
            )
        )
    })
}

/// The message when `parse_datetime`'s format has no offset.
pub(crate) const NO_OFFSET: &str = "`parse_datetime` needs a format that reads the time-zone \
    offset (%z); for a wall-clock time without zone use parse_local_datetime";

/// `format_date(d, fmt)`.
pub(super) fn format<'a>(d: &Val, fmt: &Val) -> R<Val<'a>> {
    let name = "format_date";
    let Some(fmt) = str_arg(name, fmt)? else {
        return Ok(Val::Null);
    };
    let items = match check_format(fmt) {
        Ok(items) => items,
        Err(message) => return fail(message),
    };
    let mut out = String::new();
    let written = match d {
        Val::Null => return Ok(Val::Null),
        Val::Date(days) => match date_of_days(*days) {
            Some(date) => write!(out, "{}", date.format_with_items(items.iter())),
            None => return fail("`format_date`: date out of range".into()),
        },
        Val::DateTime(t) => match chrono::DateTime::from_timestamp_micros(*t) {
            Some(t) => write!(out, "{}", t.format_with_items(items.iter())),
            None => return fail("`format_date`: datetime out of range".into()),
        },
        Val::LocalDateTime(t) => match naive_of_micros(*t) {
            Some(t) => write!(out, "{}", t.format_with_items(items.iter())),
            None => return fail("`format_date`: datetime out of range".into()),
        },
        v => return type_error(name, "a date, a datetime or a local datetime", v),
    };
    if written.is_err() {
        return fail(format!(
            "`format_date`: {fmt:?} asks for a field that {} does not have (a time of a \
             date, or the time zone of a local datetime)",
            d.type_name()
        ));
    }
    check_len(out.len())?;
    Ok(Val::String(out))
}

/// `parse_date`, `parse_datetime`, `parse_local_datetime`: null when `s` does not match.
pub(super) fn parse<'a>(func: Func, s: &str, fmt: &str) -> R<Val<'a>> {
    let items = match check_format(fmt) {
        Ok(items) => items,
        Err(message) => return fail(message),
    };
    let s = s.trim();
    Ok(match func {
        Func::ParseDate => NaiveDate::parse_from_str(s, fmt)
            .ok()
            .map_or(Val::Null, |d| Val::Date(days_of_date(d))),
        Func::ParseDatetime => {
            if !has_offset(&items) {
                return fail(NO_OFFSET.into());
            }
            chrono::DateTime::parse_from_str(s, fmt)
                .ok()
                .map_or(Val::Null, |t| Val::DateTime(t.timestamp_micros()))
        }
        _ => NaiveDateTime::parse_from_str(s, fmt)
            .ok()
            .map_or(Val::Null, |t| Val::LocalDateTime(micros_of_naive(t))),
    })
}
