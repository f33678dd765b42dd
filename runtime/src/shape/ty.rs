//! The static type of an attribute value.
//!
//! The expression language's type checker owns this type; until it is in place this file
//! holds the same enum, so schemas can already be inferred and compared.

use crate::feature::Value;

/// The static type of a value (every value may also be null at run time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Type {
    /// Not known before run time: passes every check.
    Any,
    /// Always null.
    Null,
    /// `true` or `false`.
    Bool,
    /// A 64-bit signed integer.
    Int,
    /// A 64-bit float.
    Float,
    /// A UTF-8 string.
    String,
    /// A calendar date.
    Date,
    /// An instant (a datetime with a time zone, kept as UTC).
    DateTime,
    /// A wall-clock date and time without a time zone.
    LocalDateTime,
    /// Raw bytes.
    Bytes,
    /// An array of values.
    Array,
    /// A map from string keys to values.
    Map,
    /// A geometry.
    Geometry,
}

impl Type {
    /// The type as a phrase for messages: "a string", "an integer", "any value"...
    pub fn name(self) -> &'static str {
        match self {
            Type::Any => "any value",
            Type::Null => "null",
            Type::Bool => "a bool",
            Type::Int => "an integer",
            Type::Float => "a float",
            Type::String => "a string",
            Type::Date => "a date",
            Type::DateTime => "a datetime",
            Type::LocalDateTime => "a local datetime",
            Type::Bytes => "bytes",
            Type::Array => "an array",
            Type::Map => "a map",
            Type::Geometry => "a geometry",
        }
    }

    /// The type of a value (`Null` for null).
    pub fn of(value: &Value) -> Type {
        match value {
            Value::Null => Type::Null,
            Value::Bool(_) => Type::Bool,
            Value::Int(_) => Type::Int,
            Value::Float(_) => Type::Float,
            Value::String(_) => Type::String,
            Value::Date(_) => Type::Date,
            Value::DateTime(_) => Type::DateTime,
            Value::LocalDateTime(_) => Type::LocalDateTime,
            Value::Bytes(_) => Type::Bytes,
            Value::Array(_) => Type::Array,
            Value::Map(_) => Type::Map,
        }
    }
}
