//! [`Val`]: a value during evaluation, which borrows from the feature or the expression's
//! constants where it can, so comparing a string attribute allocates nothing.

use super::eval::{R, fail};
use crate::feature::{Geometry, Value, format_float};

/// A value during evaluation: scalars inline, strings and heap values borrowed when possible.
#[derive(Debug, Clone)]
pub(crate) enum Val<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(&'a str),
    String(String),
    Date(i32),
    DateTime(i64),
    LocalDateTime(i64),
    /// A borrowed bytes, array or map value.
    Ref(&'a Value),
    /// A computed bytes, array or map value.
    Owned(Value),
    /// The feature's geometry (only geometry functions take it).
    Geom(&'a Geometry),
}

impl<'a> Val<'a> {
    /// Borrows a value.
    #[inline(always)]
    pub(crate) fn of(v: &'a Value) -> Val<'a> {
        match v {
            Value::Null => Val::Null,
            Value::Bool(b) => Val::Bool(*b),
            Value::Int(i) => Val::Int(*i),
            Value::Float(f) => Val::Float(*f),
            Value::String(s) => Val::Str(s),
            Value::Date(d) => Val::Date(*d),
            Value::DateTime(t) => Val::DateTime(*t),
            Value::LocalDateTime(t) => Val::LocalDateTime(*t),
            other => Val::Ref(other),
        }
    }

    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Val::Null => "null",
            Val::Bool(_) => "bool",
            Val::Int(_) => "int",
            Val::Float(_) => "float",
            Val::Str(_) | Val::String(_) => "string",
            Val::Date(_) => "date",
            Val::DateTime(_) => "datetime",
            Val::LocalDateTime(_) => "local_datetime",
            Val::Ref(v) => v.type_name(),
            Val::Owned(v) => v.type_name(),
            Val::Geom(_) => "geometry",
        }
    }

    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Val::Str(s) => Some(s),
            Val::String(s) => Some(s),
            _ => None,
        }
    }

    /// The bytes, array or map value, if this is one.
    pub(crate) fn heap(&self) -> Option<&Value> {
        match self {
            Val::Ref(v) => Some(v),
            Val::Owned(v) => Some(v),
            _ => None,
        }
    }

    /// The owned value; a geometry is not an attribute value, so it is an error.
    pub(crate) fn into_value(self) -> R<Value> {
        Ok(match self {
            Val::Null => Value::Null,
            Val::Bool(b) => Value::Bool(b),
            Val::Int(i) => Value::Int(i),
            Val::Float(f) => Value::Float(f),
            Val::Str(s) => Value::String(s.into()),
            Val::String(s) => Value::String(s.into()),
            Val::Date(d) => Value::Date(d),
            Val::DateTime(t) => Value::DateTime(t),
            Val::LocalDateTime(t) => Value::LocalDateTime(t),
            Val::Ref(v) => v.clone(),
            Val::Owned(v) => v,
            Val::Geom(_) => return geometry_is_not_a_value(),
        })
    }

    /// Appends the text form (as [`Value`]'s `Display`; null appends nothing).
    pub(crate) fn write_to(&self, out: &mut String) {
        use std::fmt::Write;
        match self {
            Val::Null => {}
            Val::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Val::Int(i) => {
                let _ = write!(out, "{i}");
            }
            Val::Float(f) => format_float(*f, out),
            Val::Str(s) => out.push_str(s),
            Val::String(s) => out.push_str(s),
            Val::Date(d) => {
                let _ = write!(out, "{}", Value::Date(*d));
            }
            Val::DateTime(t) => {
                let _ = write!(out, "{}", Value::DateTime(*t));
            }
            Val::LocalDateTime(t) => {
                let _ = write!(out, "{}", Value::LocalDateTime(*t));
            }
            Val::Ref(v) => {
                let _ = write!(out, "{v}");
            }
            Val::Owned(v) => {
                let _ = write!(out, "{v}");
            }
            Val::Geom(_) => out.push_str("<geometry>"),
        }
    }
}

#[cold]
#[inline(never)]
fn geometry_is_not_a_value<T>() -> R<T> {
    fail(
        "a geometry is not an attribute value; pass `geometry` to a geometry function such as \
         area(geometry)"
            .into(),
    )
}
