//! The built-in functions' bodies (their names and arities are in `catalog.rs`). Arguments
//! are evaluated lazily, so `if` and `coalesce` skip what they do not need.

use std::cmp::Ordering;

use chrono::Datelike;

use super::catalog::Func;
use super::eval::{Ctx, DAY_US, Node, R, bool_of, eval, fail, order};
use super::val::Val;
use crate::feature::{Geometry, Value, parse_date, parse_datetime};

fn type_error<T>(name: &str, expected: &str, got: &Val) -> R<T> {
    fail(format!(
        "`{name}` expects {expected}, got {}",
        got.type_name()
    ))
}

/// A string argument; `None` for null.
fn str_arg<'v>(name: &str, v: &'v Val) -> R<Option<&'v str>> {
    match v {
        Val::Null => Ok(None),
        _ => match v.as_str() {
            Some(s) => Ok(Some(s)),
            None => type_error(name, "a string", v),
        },
    }
}

/// An integer argument (a float without fraction counts); `None` for null.
fn int_arg(name: &str, v: &Val) -> R<Option<i64>> {
    match v {
        Val::Null => Ok(None),
        Val::Int(i) => Ok(Some(*i)),
        Val::Float(f) if f.fract() == 0.0 && f.abs() < 9.2e18 => Ok(Some(*f as i64)),
        _ => type_error(name, "an integer", v),
    }
}

/// Applies `f` to a string argument, giving a new string.
fn map_str<'a>(name: &str, v: Val<'a>, f: impl FnOnce(&str) -> String) -> R<Val<'a>> {
    Ok(match str_arg(name, &v)? {
        Some(s) => Val::String(f(s)),
        None => Val::Null,
    })
}

/// Calls `func` on the argument nodes (whose count the compiler checked).
pub(crate) fn call<'a>(func: Func, args: &'a [Node], cx: &Ctx<'a>) -> R<Val<'a>> {
    let arg = |i: usize| match args.get(i) {
        Some(n) => eval(n, cx),
        None => Ok(Val::Null),
    };
    let name = func.name();
    match func {
        Func::IsNull => Ok(Val::Bool(matches!(arg(0)?, Val::Null))),
        Func::Coalesce => {
            for n in args {
                let v = eval(n, cx)?;
                if !matches!(v, Val::Null) {
                    return Ok(v);
                }
            }
            Ok(Val::Null)
        }
        Func::If => match bool_of(&arg(0)?)? {
            Some(true) => arg(1),
            _ => arg(2),
        },
        Func::Len => {
            let v = arg(0)?;
            let n = match (&v, v.as_str(), v.heap()) {
                (Val::Null, _, _) => return Ok(Val::Null),
                (_, Some(s), _) => s.chars().count(),
                (_, _, Some(Value::Array(a))) => a.len(),
                (_, _, Some(Value::Bytes(b))) => b.len(),
                (_, _, Some(Value::Map(m))) => m.len(),
                _ => return type_error(name, "a string or an array", &v),
            };
            Ok(Val::Int(i64::try_from(n).unwrap_or(i64::MAX)))
        }
        Func::Lower => map_str(name, arg(0)?, str::to_lowercase),
        Func::Upper => map_str(name, arg(0)?, str::to_uppercase),
        Func::Trim => match arg(0)? {
            Val::Str(s) => Ok(Val::Str(s.trim())),
            v => map_str(name, v, |s| s.trim().to_owned()),
        },
        Func::Contains | Func::StartsWith | Func::EndsWith => {
            let (s, sub) = (arg(0)?, arg(1)?);
            let (Some(s), Some(sub)) = (str_arg(name, &s)?, str_arg(name, &sub)?) else {
                return Ok(Val::Null);
            };
            Ok(Val::Bool(match func {
                Func::Contains => s.contains(sub),
                Func::StartsWith => s.starts_with(sub),
                _ => s.ends_with(sub),
            }))
        }
        Func::Concat => {
            let mut out = String::new();
            for n in args {
                eval(n, cx)?.write_to(&mut out);
            }
            Ok(Val::String(out))
        }
        Func::Substr => substr(
            arg(0)?,
            &arg(1)?,
            args.get(2).map(|n| eval(n, cx)).transpose()?,
        ),
        Func::Abs => match arg(0)? {
            Val::Int(i) => match i.checked_abs() {
                Some(a) => Ok(Val::Int(a)),
                None => fail("integer overflow in `abs`".into()),
            },
            Val::Float(f) => Ok(Val::Float(f.abs())),
            Val::Null => Ok(Val::Null),
            v => type_error(name, "a number", &v),
        },
        Func::Round => {
            let digits = match args.get(1) {
                Some(n) => eval(n, cx)?,
                None => Val::Int(0),
            };
            round(arg(0)?, &digits)
        }
        Func::Floor | Func::Ceil => match arg(0)? {
            Val::Int(i) => Ok(Val::Int(i)),
            Val::Float(f) if func == Func::Floor => Ok(Val::Float(f.floor())),
            Val::Float(f) => Ok(Val::Float(f.ceil())),
            Val::Null => Ok(Val::Null),
            v => type_error(name, "a number", &v),
        },
        Func::Sqrt => match arg(0)? {
            Val::Null => Ok(Val::Null),
            v @ (Val::Int(_) | Val::Float(_)) => {
                let x = match v {
                    Val::Int(i) => i as f64,
                    Val::Float(f) => f,
                    _ => 0.0,
                };
                if x < 0.0 {
                    fail(format!("`sqrt` of a negative number ({x})"))
                } else {
                    Ok(Val::Float(x.sqrt()))
                }
            }
            v => type_error(name, "a number", &v),
        },
        Func::Min => extreme(name, args, cx, Ordering::Less),
        Func::Max => extreme(name, args, cx, Ordering::Greater),
        Func::ToInt => to_int(arg(0)?),
        Func::ToFloat => match arg(0)? {
            Val::Null => Ok(Val::Null),
            Val::Int(i) => Ok(Val::Float(i as f64)),
            v @ Val::Float(_) => Ok(v),
            Val::Bool(b) => Ok(Val::Float(if b { 1.0 } else { 0.0 })),
            v => match v.as_str() {
                Some(s) => Ok(s.trim().parse::<f64>().map_or(Val::Null, Val::Float)),
                None => fail(format!("cannot convert {} to float", v.type_name())),
            },
        },
        Func::ToString => match arg(0)? {
            v @ (Val::Null | Val::Str(_) | Val::String(_)) => Ok(v),
            v => {
                let mut out = String::new();
                v.write_to(&mut out);
                Ok(Val::String(out))
            }
        },
        Func::ToDate => match arg(0)? {
            Val::Null => Ok(Val::Null),
            v @ Val::Date(_) => Ok(v),
            Val::DateTime(t) | Val::LocalDateTime(t) => date_of_datetime(t),
            v => match v.as_str().map(str::trim) {
                Some(s) => match (parse_date(s), parse_datetime(s)) {
                    (Some(d), _) => Ok(Val::Date(d)),
                    (None, Some(t)) => date_of_datetime(t),
                    (None, None) => Ok(Val::Null),
                },
                None => fail(format!("cannot convert {} to date", v.type_name())),
            },
        },
        Func::ToDatetime => match arg(0)? {
            Val::Null => Ok(Val::Null),
            v @ Val::DateTime(_) => Ok(v),
            // An explicit conversion: the wall-clock time is taken as UTC.
            Val::LocalDateTime(t) => Ok(Val::DateTime(t)),
            Val::Date(d) => datetime_of_date(d),
            v => match v.as_str().map(str::trim) {
                Some(s) => match (parse_datetime(s), parse_date(s)) {
                    (Some(t), _) => Ok(Val::DateTime(t)),
                    (None, Some(d)) => datetime_of_date(d),
                    (None, None) => Ok(Val::Null),
                },
                None => fail(format!("cannot convert {} to datetime", v.type_name())),
            },
        },
        Func::Year | Func::Month | Func::Day => {
            let v = arg(0)?;
            let date = match v {
                Val::Null => return Ok(Val::Null),
                Val::Date(d) => d
                    .checked_add(719_163)
                    .and_then(chrono::NaiveDate::from_num_days_from_ce_opt),
                Val::DateTime(t) | Val::LocalDateTime(t) => {
                    chrono::DateTime::from_timestamp_micros(t).map(|t| t.date_naive())
                }
                _ => return type_error(name, "a date, a datetime or a local datetime", &v),
            };
            let Some(date) = date else {
                return fail(format!("`{name}`: date out of range"));
            };
            Ok(Val::Int(i64::from(match func {
                Func::Year => date.year(),
                Func::Month => date.month() as i32,
                _ => date.day() as i32,
            })))
        }
        Func::HasGeometry => Ok(Val::Bool(cx.feature.geometry().is_some())),
        Func::GeometryType => {
            let g = match args.first() {
                None => cx.feature.geometry(),
                Some(n) => geometry_arg(name, &eval(n, cx)?)?,
            };
            Ok(g.map_or(Val::Null, |g| Val::Str(geometry_type(&g.geom))))
        }
    }
}

/// A geometry argument; `None` for null.
fn geometry_arg<'a>(name: &str, v: &Val<'a>) -> R<Option<&'a Geometry>> {
    match v {
        Val::Null => Ok(None),
        Val::Geom(g) => Ok(Some(g)),
        _ => type_error(name, "a geometry", v),
    }
}

fn geometry_type(g: &geo_types::Geometry<f64>) -> &'static str {
    use geo_types::Geometry as G;
    match g {
        G::Point(_) => "Point",
        G::Line(_) => "Line",
        G::LineString(_) => "LineString",
        G::Polygon(_) => "Polygon",
        G::MultiPoint(_) => "MultiPoint",
        G::MultiLineString(_) => "MultiLineString",
        G::MultiPolygon(_) => "MultiPolygon",
        G::GeometryCollection(_) => "GeometryCollection",
        G::Rect(_) => "Rect",
        G::Triangle(_) => "Triangle",
    }
}

fn date_of_datetime<'a>(t: i64) -> R<Val<'a>> {
    match i32::try_from(t.div_euclid(DAY_US)) {
        Ok(d) => Ok(Val::Date(d)),
        Err(_) => fail("date out of range".into()),
    }
}

fn datetime_of_date<'a>(d: i32) -> R<Val<'a>> {
    match i64::from(d).checked_mul(DAY_US) {
        Some(t) => Ok(Val::DateTime(t)),
        None => fail("datetime out of range".into()),
    }
}

/// Characters `start..start + len` of a string (`start` < 0 counts from the end).
fn substr<'a>(s: Val<'a>, start: &Val, len: Option<Val>) -> R<Val<'a>> {
    let name = "substr";
    let Some(text) = str_arg(name, &s)? else {
        return Ok(Val::Null);
    };
    let Some(start) = int_arg(name, start)? else {
        return Ok(Val::Null);
    };
    let len = match len.as_ref().map(|l| int_arg(name, l)).transpose()? {
        None => None,
        Some(None) => return Ok(Val::Null),
        Some(Some(l)) if l < 0 => return fail(format!("`substr` length is negative ({l})")),
        Some(Some(l)) => Some(l),
    };
    let start = if start < 0 {
        let n = i64::try_from(text.chars().count()).unwrap_or(i64::MAX);
        (n + start).max(0)
    } else {
        start
    };
    let nth_byte = |t: &str, n: i64| {
        let n = usize::try_from(n).unwrap_or(usize::MAX);
        t.char_indices().nth(n).map_or(t.len(), |(b, _)| b)
    };
    let from = nth_byte(text, start);
    let to = match len {
        Some(l) => from + nth_byte(&text[from..], l),
        None => text.len(),
    };
    Ok(match s {
        Val::Str(t) => Val::Str(&t[from..to]),
        _ => Val::String(text[from..to].to_owned()),
    })
}

/// `round(x, digits)`: half away from zero; negative digits round to tens, hundreds, ...
fn round<'a>(x: Val<'a>, digits: &Val) -> R<Val<'a>> {
    let Some(d) = int_arg("round", digits)? else {
        return Ok(Val::Null);
    };
    match x {
        Val::Null => Ok(Val::Null),
        Val::Int(i) if d >= 0 => Ok(Val::Int(i)),
        Val::Int(i) => {
            let Some(p) = u32::try_from(d.unsigned_abs())
                .ok()
                .and_then(|e| 10i64.checked_pow(e))
            else {
                return Ok(Val::Int(0));
            };
            let rem = i % p;
            let base = i - rem;
            let r = if rem.abs() >= p - rem.abs() {
                base.checked_add(p * i.signum())
            } else {
                Some(base)
            };
            match r {
                Some(r) => Ok(Val::Int(r)),
                None => fail("integer overflow in `round`".into()),
            }
        }
        Val::Float(f) => {
            let d = d.clamp(-308, 308) as i32;
            let r = if d == 0 {
                f.round()
            } else if d > 0 {
                let p = 10f64.powi(d);
                (f * p).round() / p
            } else {
                let p = 10f64.powi(-d);
                (f / p).round() * p
            };
            Ok(Val::Float(if r.is_finite() { r } else { f }))
        }
        v => type_error("round", "a number", &v),
    }
}

fn to_int<'a>(v: Val<'a>) -> R<Val<'a>> {
    fn of_float<'a>(f: f64) -> Option<Val<'a>> {
        let t = f.trunc();
        // 2^63 is exactly representable; every float in [-2^63, 2^63) fits an i64.
        (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0)
            .contains(&t)
            .then_some(Val::Int(t as i64))
    }
    match v {
        Val::Null => Ok(Val::Null),
        v @ Val::Int(_) => Ok(v),
        Val::Float(f) => match of_float(f) {
            Some(i) => Ok(i),
            None => fail(format!("cannot convert {f} to int: out of range")),
        },
        Val::Bool(b) => Ok(Val::Int(i64::from(b))),
        v => match v.as_str().map(str::trim) {
            Some(s) => Ok(match s.parse::<i64>() {
                Ok(i) => Val::Int(i),
                Err(_) => s
                    .parse::<f64>()
                    .ok()
                    .and_then(of_float)
                    .unwrap_or(Val::Null),
            }),
            None => fail(format!("cannot convert {} to int", v.type_name())),
        },
    }
}

/// `min`/`max`: nulls are skipped; `want` is the ordering that replaces the current best.
fn extreme<'a>(name: &str, args: &'a [Node], cx: &Ctx<'a>, want: Ordering) -> R<Val<'a>> {
    let mut best = Val::Null;
    for n in args {
        let v = eval(n, cx)?;
        if matches!(v, Val::Null) {
            continue;
        }
        if matches!(best, Val::Null) {
            best = v;
            continue;
        }
        match order(&v, &best) {
            Some(Some(o)) if o == want => best = v,
            Some(Some(_)) => {}
            // A NaN never wins over a number.
            Some(None) if matches!(best, Val::Float(f) if f.is_nan()) => best = v,
            Some(None) => {}
            None => {
                return fail(format!(
                    "`{name}` cannot compare {} with {}",
                    v.type_name(),
                    best.type_name()
                ));
            }
        }
    }
    Ok(best)
}
