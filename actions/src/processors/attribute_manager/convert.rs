//! Value conversions of the `convert` operation. The rules are listed in the
//! [action's docs](super).

use schemars::JsonSchema;
use serde::Deserialize;
use sluice_runtime::Value;
use sluice_runtime::feature::{parse_date, parse_datetime, parse_local_datetime};

/// The type a `convert` operation produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum TargetType {
    /// Text (dates in ISO 8601, bytes in hex).
    String,
    /// A 64-bit integer.
    Int,
    /// A 64-bit float.
    Float,
    /// A boolean.
    Bool,
    /// A calendar date.
    Date,
    /// An instant (UTC). A local datetime or text without a zone is taken as UTC.
    Datetime,
    /// A wall-clock date and time without a time zone.
    #[serde(rename = "local_datetime")]
    LocalDatetime,
}

impl TargetType {
    /// The type of a converted value.
    pub(super) fn static_type(self) -> sluice_runtime::shape::Type {
        use sluice_runtime::shape::Type;
        match self {
            TargetType::String => Type::String,
            TargetType::Int => Type::Int,
            TargetType::Float => Type::Float,
            TargetType::Bool => Type::Bool,
            TargetType::Date => Type::Date,
            TargetType::Datetime => Type::DateTime,
            TargetType::LocalDatetime => Type::LocalDateTime,
        }
    }

    fn name(self) -> &'static str {
        match self {
            TargetType::String => "string",
            TargetType::Int => "int",
            TargetType::Float => "float",
            TargetType::Bool => "bool",
            TargetType::Date => "date",
            TargetType::Datetime => "datetime",
            TargetType::LocalDatetime => "local_datetime",
        }
    }
}

const MICROS_PER_DAY: i64 = 86_400_000_000;

/// Converts `value` to `to`, or says why it cannot.
pub(super) fn convert(value: &Value, to: TargetType) -> Result<Value, String> {
    if value.is_null() {
        return Ok(Value::Null);
    }
    if to == TargetType::String {
        return Ok(match value {
            Value::String(_) => value.clone(),
            other => Value::String(other.to_string().into()),
        });
    }
    if let Value::String(s) = value {
        let s = s.trim();
        if s.is_empty() {
            return Ok(Value::Null);
        }
        return from_str(s, to).ok_or_else(|| cannot(value, to));
    }
    let converted = match (value, to) {
        (Value::Int(_), TargetType::Int)
        | (Value::Float(_), TargetType::Float)
        | (Value::Bool(_), TargetType::Bool)
        | (Value::Date(_), TargetType::Date)
        | (Value::DateTime(_), TargetType::Datetime)
        | (Value::LocalDateTime(_), TargetType::LocalDatetime) => Some(value.clone()),
        (Value::LocalDateTime(us), TargetType::Datetime) => Some(Value::DateTime(*us)),
        (Value::LocalDateTime(us), TargetType::Date) => {
            i32::try_from(us.div_euclid(MICROS_PER_DAY))
                .ok()
                .map(Value::Date)
        }
        (Value::Date(d), TargetType::LocalDatetime) => i64::from(*d)
            .checked_mul(MICROS_PER_DAY)
            .map(Value::LocalDateTime),
        (Value::Float(f), TargetType::Int) => float_to_int(*f),
        (Value::Bool(b), TargetType::Int) => Some(Value::Int(i64::from(*b))),
        (Value::Int(i), TargetType::Float) => Some(Value::Float(*i as f64)),
        (Value::Bool(b), TargetType::Float) => Some(Value::Float(f64::from(u8::from(*b)))),
        (Value::Int(0), TargetType::Bool) => Some(Value::Bool(false)),
        (Value::Int(1), TargetType::Bool) => Some(Value::Bool(true)),
        (Value::DateTime(us), TargetType::Date) => i32::try_from(us.div_euclid(MICROS_PER_DAY))
            .ok()
            .map(Value::Date),
        (Value::Date(d), TargetType::Datetime) => i64::from(*d)
            .checked_mul(MICROS_PER_DAY)
            .map(Value::DateTime),
        _ => None,
    };
    converted.ok_or_else(|| cannot(value, to))
}

/// Parses trimmed, non-empty text.
fn from_str(s: &str, to: TargetType) -> Option<Value> {
    match to {
        TargetType::String => Some(Value::from(s)),
        TargetType::Int => match s.parse::<i64>() {
            Ok(i) => Some(Value::Int(i)),
            Err(_) => float_to_int(s.parse::<f64>().ok()?),
        },
        TargetType::Float => s.parse::<f64>().ok().map(Value::Float),
        TargetType::Bool => match s.to_ascii_lowercase().as_str() {
            "true" | "yes" | "1" => Some(Value::Bool(true)),
            "false" | "no" | "0" => Some(Value::Bool(false)),
            _ => None,
        },
        TargetType::Date => match parse_date(s) {
            Some(d) => Some(Value::Date(d)),
            None => {
                let us = parse_datetime(s)?;
                i32::try_from(us.div_euclid(MICROS_PER_DAY))
                    .ok()
                    .map(Value::Date)
            }
        },
        TargetType::LocalDatetime => match parse_local_datetime(s) {
            Some(us) => Some(Value::LocalDateTime(us)),
            None => i64::from(parse_date(s)?)
                .checked_mul(MICROS_PER_DAY)
                .map(Value::LocalDateTime),
        },
        TargetType::Datetime => match parse_datetime(s) {
            Some(us) => Some(Value::DateTime(us)),
            None => i64::from(parse_date(s)?)
                .checked_mul(MICROS_PER_DAY)
                .map(Value::DateTime),
        },
    }
}

/// An integral, in-range float as an int.
fn float_to_int(f: f64) -> Option<Value> {
    // i64::MAX as f64 is 2^63, itself out of range.
    let in_range = f >= i64::MIN as f64 && f < i64::MAX as f64;
    (f.fract() == 0.0 && in_range).then_some(Value::Int(f as i64))
}

/// The message of a failed conversion, quoting (a prefix of) the value.
fn cannot(value: &Value, to: TargetType) -> String {
    let mut text = value.to_string();
    if text.chars().count() > 40 {
        text = text.chars().take(40).collect::<String>() + "…";
    }
    format!(
        "cannot convert {} \"{text}\" to {}",
        value.type_name(),
        to.name()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use TargetType as T;

    fn ok(v: Value, to: T) -> Value {
        convert(&v, to).unwrap()
    }

    #[test]
    fn text_parses_into_every_type() {
        assert_eq!(ok(" 42 ".into(), T::Int), Value::Int(42));
        assert_eq!(ok("3.0".into(), T::Int), Value::Int(3));
        assert_eq!(ok("2.5".into(), T::Float), Value::Float(2.5));
        assert_eq!(ok("Yes".into(), T::Bool), Value::Bool(true));
        assert_eq!(ok("0".into(), T::Bool), Value::Bool(false));
        assert_eq!(ok("1970-01-02".into(), T::Date), Value::Date(1));
        assert_eq!(ok("1970-01-02T12:00:00Z".into(), T::Date), Value::Date(1));
        assert_eq!(
            ok("1970-01-02".into(), T::Datetime),
            Value::DateTime(MICROS_PER_DAY)
        );
        assert_eq!(ok("  ".into(), T::Int), Value::Null);
        assert_eq!(ok(Value::Null, T::Date), Value::Null);
    }

    #[test]
    fn values_convert_between_types() {
        assert_eq!(ok(Value::Int(7), T::String), Value::from("7"));
        assert_eq!(ok(Value::Date(1), T::String), Value::from("1970-01-02"));
        assert_eq!(ok(Value::Float(-4.0), T::Int), Value::Int(-4));
        assert_eq!(ok(Value::Bool(true), T::Float), Value::Float(1.0));
        assert_eq!(ok(Value::Int(1), T::Bool), Value::Bool(true));
        assert_eq!(ok(Value::DateTime(-1), T::Date), Value::Date(-1));
        assert_eq!(
            ok(Value::Date(2), T::Datetime),
            Value::DateTime(2 * MICROS_PER_DAY)
        );
    }

    #[test]
    fn lossy_or_unparsable_conversions_fail_with_a_message() {
        assert_eq!(
            convert(&Value::from("abc"), T::Int).unwrap_err(),
            "cannot convert string \"abc\" to int"
        );
        assert!(convert(&Value::Float(2.5), T::Int).is_err());
        assert!(convert(&Value::Float(f64::NAN), T::Int).is_err());
        assert!(convert(&Value::Float(1e19), T::Int).is_err());
        assert!(convert(&Value::Int(2), T::Bool).is_err());
        assert!(convert(&Value::Date(200_000_000), T::Datetime).is_err());
        assert!(convert(&Value::from("2024-02-30"), T::Date).is_err());
        let long = convert(&Value::from("x".repeat(100)), T::Float).unwrap_err();
        assert!(long.len() < 100, "{long}");
    }
}
