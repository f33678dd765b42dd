//! Column builders: sluice values into Arrow arrays, one value at a time.

use std::sync::Arc;

use arrow_array::ArrayRef;
use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Date32Builder, Float64Builder, Int64Builder, NullBuilder,
    StringBuilder, TimestampMicrosecondBuilder,
};

use super::encoded::{self, EncodeError};
use super::kind::ColumnKind;
use crate::feature::{Geometry, Value, wkb};

/// Why a value could not be appended to a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendError {
    /// The value's type is not the column's (the value is left out).
    Mismatch,
    /// An [`ColumnKind::Encoded`] value could not be encoded.
    Encode(EncodeError),
}

/// Builds one Arrow column of a [`ColumnKind`].
///
/// Only values of the column's kind (or null) fit, with one widening: a
/// [`ColumnKind::Float`] column takes ints as floats. A builder can be reused: [`finish`]
/// leaves it empty.
///
/// [`finish`]: ColumnBuilder::finish
#[derive(Debug)]
pub struct ColumnBuilder {
    kind: ColumnKind,
    inner: Inner,
}

#[derive(Debug)]
enum Inner {
    Null(NullBuilder),
    Bool(BooleanBuilder),
    Int(Int64Builder),
    Float(Float64Builder),
    Str(StringBuilder),
    Date(Date32Builder),
    DateTime(TimestampMicrosecondBuilder),
    LocalDateTime(TimestampMicrosecondBuilder),
    Bytes(BinaryBuilder),
    Json(StringBuilder),
    /// The builder and scratch space for one encoding.
    Encoded(BinaryBuilder, Vec<u8>),
}

impl ColumnBuilder {
    /// An empty builder.
    pub fn new(kind: ColumnKind) -> ColumnBuilder {
        ColumnBuilder::with_capacity(kind, 0)
    }

    /// A builder with room for `rows` values.
    pub fn with_capacity(kind: ColumnKind, rows: usize) -> ColumnBuilder {
        let inner = match kind {
            ColumnKind::Null => Inner::Null(NullBuilder::new()),
            ColumnKind::Bool => Inner::Bool(BooleanBuilder::with_capacity(rows)),
            ColumnKind::Int => Inner::Int(Int64Builder::with_capacity(rows)),
            ColumnKind::Float => Inner::Float(Float64Builder::with_capacity(rows)),
            ColumnKind::String => Inner::Str(StringBuilder::with_capacity(rows, rows * 8)),
            ColumnKind::Date => Inner::Date(Date32Builder::with_capacity(rows)),
            ColumnKind::DateTime => Inner::DateTime(
                TimestampMicrosecondBuilder::with_capacity(rows).with_timezone("UTC"),
            ),
            ColumnKind::LocalDateTime => {
                Inner::LocalDateTime(TimestampMicrosecondBuilder::with_capacity(rows))
            }
            ColumnKind::Bytes => Inner::Bytes(BinaryBuilder::with_capacity(rows, rows * 8)),
            ColumnKind::Json => Inner::Json(StringBuilder::with_capacity(rows, rows * 16)),
            ColumnKind::Encoded => {
                Inner::Encoded(BinaryBuilder::with_capacity(rows, rows * 8), Vec::new())
            }
        };
        ColumnBuilder { kind, inner }
    }

    /// The kind of column built.
    pub fn kind(&self) -> ColumnKind {
        self.kind
    }

    /// Appends `n` nulls.
    #[inline(always)]
    pub fn append_nulls(&mut self, n: usize) {
        if n == 0 {
            return;
        }
        match &mut self.inner {
            Inner::Null(b) => b.append_nulls(n),
            Inner::Bool(b) => b.append_nulls(n),
            Inner::Int(b) => b.append_nulls(n),
            Inner::Float(b) => b.append_nulls(n),
            Inner::Str(b) | Inner::Json(b) => b.append_nulls(n),
            Inner::Date(b) => b.append_nulls(n),
            Inner::DateTime(b) | Inner::LocalDateTime(b) => b.append_nulls(n),
            Inner::Bytes(b) | Inner::Encoded(b, _) => b.append_nulls(n),
        }
    }

    /// Appends one value; on error nothing is appended.
    #[inline(always)]
    pub fn append(&mut self, v: &Value) -> Result<(), AppendError> {
        if v.is_null() {
            // Null is the column's null in every kind (an encoded column too).
            self.append_nulls(1);
            return Ok(());
        }
        match (&mut self.inner, v) {
            (Inner::Bool(b), Value::Bool(x)) => b.append_value(*x),
            (Inner::Int(b), Value::Int(x)) => b.append_value(*x),
            (Inner::Float(b), Value::Float(x)) => b.append_value(*x),
            (Inner::Float(b), Value::Int(x)) => b.append_value(*x as f64),
            (Inner::Str(b), Value::String(x)) => b.append_value(x),
            (Inner::Date(b), Value::Date(x)) => b.append_value(*x),
            (Inner::DateTime(b), Value::DateTime(x)) => b.append_value(*x),
            (Inner::LocalDateTime(b), Value::LocalDateTime(x)) => b.append_value(*x),
            (Inner::Bytes(b), Value::Bytes(x)) => b.append_value(x),
            (Inner::Json(b), v @ (Value::Array(_) | Value::Map(_))) => append_json(b, v),
            (Inner::Encoded(b, scratch), v) => return append_encoded(b, scratch, v),
            _ => return Err(AppendError::Mismatch),
        }
        Ok(())
    }

    /// The column built so far; the builder is left empty.
    pub fn finish(&mut self) -> ArrayRef {
        match &mut self.inner {
            Inner::Null(b) => Arc::new(b.finish()),
            Inner::Bool(b) => Arc::new(b.finish()),
            Inner::Int(b) => Arc::new(b.finish()),
            Inner::Float(b) => Arc::new(b.finish()),
            Inner::Str(b) | Inner::Json(b) => Arc::new(b.finish()),
            Inner::Date(b) => Arc::new(b.finish()),
            Inner::DateTime(b) | Inner::LocalDateTime(b) => Arc::new(b.finish()),
            Inner::Bytes(b) | Inner::Encoded(b, _) => Arc::new(b.finish()),
        }
    }
}

// Out of line, so that `append` stays small enough to inline into a caller's row loop.
#[inline(never)]
fn append_json(b: &mut StringBuilder, v: &Value) {
    b.append_value(v.to_json().to_string());
}

#[inline(never)]
fn append_encoded(
    b: &mut BinaryBuilder,
    scratch: &mut Vec<u8>,
    v: &Value,
) -> Result<(), AppendError> {
    scratch.clear();
    encoded::encode_value(v, scratch).map_err(AppendError::Encode)?;
    b.append_value(&scratch[..]);
    Ok(())
}

/// Builds a geometry column: Binary, ISO WKB ([`crate::feature::wkb`]), null where a feature
/// has no geometry. The CRS is not part of it.
#[derive(Debug)]
pub struct WkbBuilder {
    builder: BinaryBuilder,
    scratch: Vec<u8>,
}

impl Default for WkbBuilder {
    fn default() -> WkbBuilder {
        WkbBuilder::with_capacity(0)
    }
}

impl WkbBuilder {
    /// A builder with room for `rows` geometries (32 bytes each).
    pub fn with_capacity(rows: usize) -> WkbBuilder {
        WkbBuilder {
            builder: BinaryBuilder::with_capacity(rows, rows * 32),
            scratch: Vec::new(),
        }
    }

    /// Appends a geometry, or a null for `None`.
    #[inline]
    pub fn append(&mut self, g: Option<&Geometry>) {
        match g {
            None => self.builder.append_null(),
            Some(g) => {
                self.scratch.clear();
                wkb::to_wkb(g, &mut self.scratch);
                self.builder.append_value(&self.scratch[..]);
            }
        }
    }

    /// The column built so far; the builder is left empty.
    pub fn finish(&mut self) -> ArrayRef {
        Arc::new(self.builder.finish())
    }
}
