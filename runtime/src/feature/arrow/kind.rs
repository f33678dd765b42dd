//! Column kinds: which Arrow type a column of sluice values gets, and how a column whose
//! values differ in type is typed ([`ColumnPolicy`]).

use arrow_schema::{DataType, TimeUnit};

use crate::feature::Value;

/// The type of a column of attribute values, and the Arrow type it is stored as.
///
/// | kind | Arrow type | values |
/// |---|---|---|
/// | `Null` | Null | only nulls seen so far |
/// | `Bool` | Boolean | bool |
/// | `Int` | Int64 | int |
/// | `Float` | Float64 | float (and int, widened) |
/// | `String` | Utf8 | string |
/// | `Date` | Date32 | date (days since 1970-01-01) |
/// | `DateTime` | Timestamp(µs, "UTC") | datetime |
/// | `LocalDateTime` | Timestamp(µs, no zone) | local datetime (wall-clock time) |
/// | `Bytes` | Binary | bytes |
/// | `Json` | Utf8 | arrays and maps, as their JSON text |
/// | `Encoded` | Binary | any value, in the self-describing [`encoded`](super::encoded) form |
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ColumnKind {
    /// No value but nulls.
    Null,
    /// Booleans.
    Bool,
    /// 64-bit signed integers.
    Int,
    /// 64-bit floats.
    Float,
    /// UTF-8 text.
    String,
    /// Calendar dates.
    Date,
    /// Instants (microseconds since the epoch, UTC).
    DateTime,
    /// Wall-clock date-times without a zone (microseconds).
    LocalDateTime,
    /// Byte strings.
    Bytes,
    /// Arrays and maps written as JSON text (readable anywhere; read back as text).
    Json,
    /// Any value, written losslessly in sluice's own binary encoding.
    Encoded,
}

impl ColumnKind {
    /// The Arrow type of a column of this kind.
    pub fn data_type(self) -> DataType {
        match self {
            ColumnKind::Null => DataType::Null,
            ColumnKind::Bool => DataType::Boolean,
            ColumnKind::Int => DataType::Int64,
            ColumnKind::Float => DataType::Float64,
            ColumnKind::String | ColumnKind::Json => DataType::Utf8,
            ColumnKind::Date => DataType::Date32,
            ColumnKind::DateTime => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            ColumnKind::LocalDateTime => DataType::Timestamp(TimeUnit::Microsecond, None),
            ColumnKind::Bytes | ColumnKind::Encoded => DataType::Binary,
        }
    }

    /// The kind's name in messages (`expected float, found string`).
    pub fn name(self) -> &'static str {
        match self {
            ColumnKind::Null => "null",
            ColumnKind::Bool => "bool",
            ColumnKind::Int => "int",
            ColumnKind::Float => "float",
            ColumnKind::String => "string",
            ColumnKind::Date => "date",
            ColumnKind::DateTime => "datetime",
            ColumnKind::LocalDateTime => "local_datetime",
            ColumnKind::Bytes => "bytes",
            ColumnKind::Json => "array or map",
            ColumnKind::Encoded => "encoded value",
        }
    }
}

/// How arrays and maps are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NestedAs {
    /// As JSON text ([`ColumnKind::Json`]): portable, read back as strings.
    Json,
    /// In the lossless encoding ([`ColumnKind::Encoded`]).
    Encoded,
}

/// What a column whose non-null values have different types becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MixedAs {
    /// The type of its first value, except that an int column that meets a float becomes a
    /// float column (ints are widened). Values of any other type do not fit, and building
    /// the column fails on them.
    FirstWideningInts,
    /// An [`ColumnKind::Encoded`] column, which holds any value.
    Encoded,
}

/// The rules that type a column from the values it holds.
///
/// Two are in use: [`ColumnPolicy::PORTABLE`] (files other tools read: `parquet_writer`) and
/// [`ColumnPolicy::LOSSLESS`] (files only sluice reads back: spill runs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ColumnPolicy {
    /// What arrays and maps become.
    pub nested: NestedAs,
    /// What a column of mixed types becomes.
    pub mixed: MixedAs,
    /// The kind of a column that held only nulls.
    pub all_null: ColumnKind,
}

impl ColumnPolicy {
    /// Plain Arrow types other tools understand: arrays and maps as JSON text, ints widened
    /// to floats in a float column, other mixtures refused, an all-null column Utf8.
    pub const PORTABLE: ColumnPolicy = ColumnPolicy {
        nested: NestedAs::Json,
        mixed: MixedAs::FirstWideningInts,
        all_null: ColumnKind::String,
    };

    /// Every value comes back exactly: arrays, maps and mixed columns in the lossless
    /// encoding; an all-null column stays [`ColumnKind::Null`].
    pub const LOSSLESS: ColumnPolicy = ColumnPolicy {
        nested: NestedAs::Encoded,
        mixed: MixedAs::Encoded,
        all_null: ColumnKind::Null,
    };

    /// The kind of one value ([`ColumnKind::Null`] for null).
    #[inline]
    pub fn kind_of(&self, v: &Value) -> ColumnKind {
        match v {
            Value::Null => ColumnKind::Null,
            Value::Bool(_) => ColumnKind::Bool,
            Value::Int(_) => ColumnKind::Int,
            Value::Float(_) => ColumnKind::Float,
            Value::String(_) => ColumnKind::String,
            Value::Date(_) => ColumnKind::Date,
            Value::DateTime(_) => ColumnKind::DateTime,
            Value::LocalDateTime(_) => ColumnKind::LocalDateTime,
            Value::Bytes(_) => ColumnKind::Bytes,
            Value::Array(_) | Value::Map(_) => match self.nested {
                NestedAs::Json => ColumnKind::Json,
                NestedAs::Encoded => ColumnKind::Encoded,
            },
        }
    }

    /// The kind of a column of kind `column` that also holds a value (or column) of kind
    /// `other`.
    #[inline]
    pub fn join(&self, column: ColumnKind, other: ColumnKind) -> ColumnKind {
        match (column, other) {
            (a, ColumnKind::Null) => a,
            (ColumnKind::Null, b) => b,
            (a, b) if a == b => a,
            (a, b) => match self.mixed {
                MixedAs::Encoded => ColumnKind::Encoded,
                MixedAs::FirstWideningInts if a == ColumnKind::Int && b == ColumnKind::Float => {
                    ColumnKind::Float
                }
                MixedAs::FirstWideningInts => a,
            },
        }
    }

    /// The kind a column is written as once all its values are seen.
    pub fn resolve(&self, kind: ColumnKind) -> ColumnKind {
        match kind {
            ColumnKind::Null => self.all_null,
            k => k,
        }
    }
}
