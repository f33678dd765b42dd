//! Column readers: Arrow arrays back into sluice values.
//!
//! Two ways in, for two kinds of file:
//! - [`ColumnReader`]: a row at a time, for the columns a [`ColumnKind`] describes (files
//!   sluice wrote itself, such as spill runs); a column of another Arrow type is refused.
//! - [`column_values`]: a whole column at once, for any Arrow type a file may hold:
//!
//! | Arrow | Value |
//! |---|---|
//! | Null | null |
//! | Boolean | bool |
//! | Int8..Int64, UInt8..UInt64 | int (a UInt64 above `i64::MAX` is an error: no exact form) |
//! | Float16, Float32, Float64 | float |
//! | Decimal32/64/128/256 | float (the nearest one) |
//! | Utf8, LargeUtf8, Utf8View | string |
//! | Binary, LargeBinary, BinaryView, FixedSizeBinary | bytes |
//! | Date32, Date64 | date |
//! | Timestamp with a time zone (any unit) | datetime (microseconds, UTC; nanoseconds are floored) |
//! | Timestamp without a time zone (any unit) | local datetime (wall-clock time, microseconds) |
//! | Time32, Time64 | string `HH:MM:SS[.ffffff]` |
//! | List, LargeList, FixedSizeList | array |
//! | Struct | map (field name to value) |
//! | Map | map (keys as text) |
//! | Dictionary | the type of its values |
//!
//! Anything else (durations, intervals, unions, list views, run-end encoded arrays) is an
//! error naming the type. Conversion never panics: every downcast and slice is checked.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    ArrowPrimitiveType, Date64Type, Decimal32Type, Decimal64Type, Decimal128Type, Decimal256Type,
    Float16Type, Float32Type, Int8Type, Int16Type, Int32Type, Time32MillisecondType,
    Time32SecondType, Time64MicrosecondType, Time64NanosecondType, TimestampMicrosecondType,
    TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType, UInt8Type, UInt16Type,
    UInt32Type, UInt64Type,
};
use arrow_array::{
    Array, ArrayRef, BinaryArray, BooleanArray, Date32Array, Float64Array, Int64Array,
    OffsetSizeTrait, StringArray, TimestampMicrosecondArray,
};
use arrow_schema::{DataType, TimeUnit};

use super::encoded;
use super::kind::ColumnKind;
use crate::feature::Value;
use crate::feature::wkb::{self, WkbError};

/// Reads the values of one column of a [`ColumnKind`], a row at a time.
#[derive(Debug, Clone)]
pub enum ColumnReader {
    /// A Null column.
    Null,
    /// Booleans.
    Bool(BooleanArray),
    /// Int64.
    Int(Int64Array),
    /// Float64.
    Float(Float64Array),
    /// Utf8 (a [`ColumnKind::String`] or [`ColumnKind::Json`] column: JSON comes back as text).
    Str(StringArray),
    /// Date32.
    Date(Date32Array),
    /// Timestamp(µs) with a zone.
    DateTime(TimestampMicrosecondArray),
    /// Timestamp(µs) without a zone.
    LocalDateTime(TimestampMicrosecondArray),
    /// Binary.
    Bytes(BinaryArray),
    /// Binary holding [`encoded`] values.
    Encoded(BinaryArray),
}

fn downcast<T: Clone + 'static>(a: &dyn Array) -> Option<T> {
    a.as_any().downcast_ref::<T>().cloned()
}

impl ColumnReader {
    /// A reader of `array` as a column of `kind`; `None` when the array is not of the kind's
    /// Arrow type (a timestamp's zone must be there for `DateTime`, absent for
    /// `LocalDateTime`).
    pub fn new(kind: ColumnKind, array: &dyn Array) -> Option<ColumnReader> {
        let a = array;
        Some(match kind {
            ColumnKind::Null => {
                (a.data_type() == &DataType::Null).then_some(())?;
                ColumnReader::Null
            }
            ColumnKind::Bool => ColumnReader::Bool(downcast(a)?),
            ColumnKind::Int => ColumnReader::Int(downcast(a)?),
            ColumnKind::Float => ColumnReader::Float(downcast(a)?),
            ColumnKind::String | ColumnKind::Json => ColumnReader::Str(downcast(a)?),
            ColumnKind::Date => ColumnReader::Date(downcast(a)?),
            ColumnKind::DateTime | ColumnKind::LocalDateTime => {
                let t: TimestampMicrosecondArray = downcast(a)?;
                let zoned = t.timezone().is_some();
                if zoned != (kind == ColumnKind::DateTime) {
                    return None;
                }
                if zoned {
                    ColumnReader::DateTime(t)
                } else {
                    ColumnReader::LocalDateTime(t)
                }
            }
            ColumnKind::Bytes => ColumnReader::Bytes(downcast(a)?),
            ColumnKind::Encoded => ColumnReader::Encoded(downcast(a)?),
        })
    }

    /// The value of row `r` (which must be in the array); an encoded value that does not
    /// decode is an error message.
    #[inline]
    pub fn value(&self, r: usize) -> Result<Value, String> {
        macro_rules! get {
            ($a:expr, $v:expr) => {
                if $a.is_null(r) {
                    Value::Null
                } else {
                    $v($a.value(r))
                }
            };
        }
        Ok(match self {
            ColumnReader::Null => Value::Null,
            ColumnReader::Bool(a) => get!(a, Value::Bool),
            ColumnReader::Int(a) => get!(a, Value::Int),
            ColumnReader::Float(a) => get!(a, Value::Float),
            ColumnReader::Str(a) => get!(a, |s: &str| Value::String(s.into())),
            ColumnReader::Date(a) => get!(a, Value::Date),
            ColumnReader::DateTime(a) => get!(a, Value::DateTime),
            ColumnReader::LocalDateTime(a) => get!(a, Value::LocalDateTime),
            ColumnReader::Bytes(a) => get!(a, |b: &[u8]| Value::Bytes(b.into())),
            ColumnReader::Encoded(a) => {
                if a.is_null(r) {
                    Value::Null
                } else {
                    encoded::decode_value(a.value(r))?
                }
            }
        })
    }
}

/// Reads a WKB geometry column (Binary, LargeBinary or BinaryView).
#[derive(Debug, Clone)]
pub struct WkbColumn(ArrayRef);

impl WkbColumn {
    /// `None` when `array` is not binary.
    pub fn new(array: &ArrayRef) -> Option<WkbColumn> {
        matches!(
            array.data_type(),
            DataType::Binary | DataType::LargeBinary | DataType::BinaryView
        )
        .then(|| WkbColumn(array.clone()))
    }

    /// The geometry of row `r` (`None` for a null), with no CRS.
    #[inline]
    pub fn geometry(&self, r: usize) -> Result<Option<crate::feature::Geometry>, WkbError> {
        let a = &self.0;
        if a.is_null(r) {
            return Ok(None);
        }
        let bytes = match a.data_type() {
            DataType::Binary => a.as_binary::<i32>().value(r),
            DataType::LargeBinary => a.as_binary::<i64>().value(r),
            _ => a.as_binary_view().value(r),
        };
        wkb::from_wkb(bytes).map(Some)
    }
}

/// The type of the values [`column_values`] gives for a column of type `dt` (`None` for a
/// type it refuses). Kept next to it, arm for arm, so the two say the same.
pub fn value_type(dt: &DataType) -> Option<crate::expr::Type> {
    use crate::expr::Type as T;
    use DataType as D;
    Some(match dt {
        D::Null => T::Null,
        D::Boolean => T::Bool,
        D::Int8 | D::Int16 | D::Int32 | D::Int64 | D::UInt8 | D::UInt16 | D::UInt32 | D::UInt64 => {
            T::Int
        }
        D::Float16
        | D::Float32
        | D::Float64
        | D::Decimal32(..)
        | D::Decimal64(..)
        | D::Decimal128(..)
        | D::Decimal256(..) => T::Float,
        D::Utf8 | D::LargeUtf8 | D::Utf8View => T::String,
        D::Binary | D::LargeBinary | D::BinaryView | D::FixedSizeBinary(_) => T::Bytes,
        D::Date32 | D::Date64 => T::Date,
        D::Timestamp(_, Some(_)) => T::DateTime,
        D::Timestamp(_, None) => T::LocalDateTime,
        D::Time32(TimeUnit::Second | TimeUnit::Millisecond)
        | D::Time64(TimeUnit::Microsecond | TimeUnit::Nanosecond) => T::String,
        D::List(_) | D::LargeList(_) | D::FixedSizeList(..) => T::Array,
        D::Struct(_) | D::Map(..) => T::Map,
        D::Dictionary(_, values) => value_type(values)?,
        _ => return None,
    })
}

/// Converts every row of `array` into a value (see the module docs for the mapping).
pub fn column_values(array: &dyn Array) -> Result<Vec<Value>, String> {
    use DataType as D;
    let dt = array.data_type();
    // The types a ColumnKind describes are read as a ColumnReader reads them.
    let typed = match dt {
        D::Boolean => Some(ColumnKind::Bool),
        D::Int64 => Some(ColumnKind::Int),
        D::Float64 => Some(ColumnKind::Float),
        D::Utf8 => Some(ColumnKind::String),
        D::Date32 => Some(ColumnKind::Date),
        D::Timestamp(TimeUnit::Microsecond, Some(_)) => Some(ColumnKind::DateTime),
        D::Timestamp(TimeUnit::Microsecond, None) => Some(ColumnKind::LocalDateTime),
        D::Binary => Some(ColumnKind::Bytes),
        _ => None,
    };
    if let Some(kind) = typed {
        let reader = ColumnReader::new(kind, array).ok_or_else(|| mismatch(dt))?;
        return (0..array.len()).map(|r| reader.value(r)).collect();
    }
    match dt {
        D::Null => Ok(vec![Value::Null; array.len()]),
        D::Int8 => prim::<Int8Type>(array, |v| Value::Int(v.into())),
        D::Int16 => prim::<Int16Type>(array, |v| Value::Int(v.into())),
        D::Int32 => prim::<Int32Type>(array, |v| Value::Int(v.into())),
        D::UInt8 => prim::<UInt8Type>(array, |v| Value::Int(v.into())),
        D::UInt16 => prim::<UInt16Type>(array, |v| Value::Int(v.into())),
        D::UInt32 => prim::<UInt32Type>(array, |v| Value::Int(v.into())),
        D::UInt64 => {
            // Above i64::MAX a value has no exact form here: stop rather than round it.
            let a = array
                .as_primitive_opt::<UInt64Type>()
                .ok_or_else(|| mismatch(dt))?;
            a.iter()
                .map(|v| match v {
                    None => Ok(Value::Null),
                    Some(v) => i64::try_from(v)
                        .map(Value::Int)
                        .map_err(|_| format!("uint64 value {v} does not fit a 64-bit signed int")),
                })
                .collect()
        }
        D::Float16 => prim::<Float16Type>(array, |v| Value::Float(v.to_f64())),
        D::Float32 => prim::<Float32Type>(array, |v| Value::Float(v.into())),
        D::Decimal32(_, s) => {
            let s = *s;
            prim::<Decimal32Type>(array, move |v| Value::Float(scaled(v.into(), s)))
        }
        D::Decimal64(_, s) => {
            let s = *s;
            prim::<Decimal64Type>(array, move |v| Value::Float(scaled(v as f64, s)))
        }
        D::Decimal128(_, s) => {
            let s = *s;
            prim::<Decimal128Type>(array, move |v| Value::Float(scaled(v as f64, s)))
        }
        D::Decimal256(_, s) => {
            let s = *s;
            prim::<Decimal256Type>(array, move |v| {
                let (low, high) = v.to_parts();
                Value::Float(scaled(high as f64 * 2f64.powi(128) + low as f64, s))
            })
        }
        D::LargeUtf8 => strings::<i64>(array),
        D::Utf8View => {
            let a = array.as_string_view_opt().ok_or_else(|| mismatch(dt))?;
            Ok(a.iter()
                .map(|v| v.map_or(Value::Null, Value::from))
                .collect())
        }
        D::LargeBinary => binaries::<i64>(array),
        D::BinaryView => {
            let a = array.as_binary_view_opt().ok_or_else(|| mismatch(dt))?;
            Ok(a.iter().map(|v| v.map_or(Value::Null, bytes)).collect())
        }
        D::FixedSizeBinary(_) => {
            let a = array
                .as_fixed_size_binary_opt()
                .ok_or_else(|| mismatch(dt))?;
            Ok(a.iter().map(|v| v.map_or(Value::Null, bytes)).collect())
        }
        D::Date64 => prim::<Date64Type>(array, |ms| {
            i32::try_from(ms.div_euclid(86_400_000)).map_or(Value::Null, Value::Date)
        }),
        D::Timestamp(unit, tz) => {
            // A timestamp without a time zone is wall-clock time: it stays a local datetime
            // rather than being read as UTC. (Microseconds are read above.)
            let make: fn(i64) -> Value = if tz.is_some() {
                Value::DateTime
            } else {
                Value::LocalDateTime
            };
            match unit {
                TimeUnit::Second => {
                    prim::<TimestampSecondType>(array, |v| make(v.saturating_mul(1_000_000)))
                }
                TimeUnit::Millisecond => {
                    prim::<TimestampMillisecondType>(array, |v| make(v.saturating_mul(1_000)))
                }
                TimeUnit::Microsecond => prim::<TimestampMicrosecondType>(array, make),
                TimeUnit::Nanosecond => {
                    prim::<TimestampNanosecondType>(array, |v| make(v.div_euclid(1_000)))
                }
            }
        }
        D::Time32(TimeUnit::Second) => {
            prim::<Time32SecondType>(array, |v| time_of_day(i64::from(v) * 1_000_000))
        }
        D::Time32(TimeUnit::Millisecond) => {
            prim::<Time32MillisecondType>(array, |v| time_of_day(i64::from(v) * 1_000))
        }
        D::Time64(TimeUnit::Microsecond) => prim::<Time64MicrosecondType>(array, time_of_day),
        D::Time64(TimeUnit::Nanosecond) => {
            prim::<Time64NanosecondType>(array, |v| time_of_day(v.div_euclid(1_000)))
        }
        D::List(_) => lists::<i32>(array),
        D::LargeList(_) => lists::<i64>(array),
        D::FixedSizeList(_, _) => {
            let a = array.as_fixed_size_list_opt().ok_or_else(|| mismatch(dt))?;
            let mut child = column_values(a.values().as_ref())?;
            let n = usize::try_from(a.value_length()).map_err(|_| mismatch(dt))?;
            (0..a.len())
                .map(|i| {
                    if a.is_null(i) {
                        return Ok(Value::Null);
                    }
                    let start = i * n;
                    take_range(&mut child, start, start + n).map(Value::Array)
                })
                .collect()
        }
        D::Struct(fields) => {
            let a = array.as_struct_opt().ok_or_else(|| mismatch(dt))?;
            let mut children = a
                .columns()
                .iter()
                .map(|c| column_values(c.as_ref()))
                .collect::<Result<Vec<_>, _>>()?;
            (0..a.len())
                .map(|i| {
                    if a.is_null(i) {
                        return Ok(Value::Null);
                    }
                    let mut m = BTreeMap::new();
                    for (f, child) in fields.iter().zip(children.iter_mut()) {
                        let v = child.get_mut(i).ok_or_else(|| mismatch(dt))?;
                        m.insert(f.name().clone(), std::mem::take(v));
                    }
                    Ok(Value::Map(Arc::new(m)))
                })
                .collect()
        }
        D::Map(_, _) => {
            let a = array.as_map_opt().ok_or_else(|| mismatch(dt))?;
            let keys = column_values(a.keys().as_ref())?;
            let mut values = column_values(a.values().as_ref())?;
            let offsets = a.value_offsets();
            (0..a.len())
                .map(|i| {
                    if a.is_null(i) {
                        return Ok(Value::Null);
                    }
                    let (start, end) = bounds(offsets, i).ok_or_else(|| mismatch(dt))?;
                    let mut m = BTreeMap::new();
                    for j in start..end {
                        let k = keys.get(j).ok_or_else(|| mismatch(dt))?.to_string();
                        let v = values.get_mut(j).ok_or_else(|| mismatch(dt))?;
                        m.insert(k, std::mem::take(v));
                    }
                    Ok(Value::Map(Arc::new(m)))
                })
                .collect()
        }
        D::Dictionary(_, _) => {
            let a = array.as_any_dictionary_opt().ok_or_else(|| mismatch(dt))?;
            let values = column_values(a.values().as_ref())?;
            if values.is_empty() {
                return Ok(vec![Value::Null; array.len()]);
            }
            let keys = a.normalized_keys();
            Ok(keys
                .iter()
                .enumerate()
                .map(|(i, k)| {
                    if array.is_null(i) {
                        Value::Null
                    } else {
                        values.get(*k).cloned().unwrap_or(Value::Null)
                    }
                })
                .collect())
        }
        other => Err(format!("type {other} is not supported")),
    }
}

fn mismatch(dt: &DataType) -> String {
    format!("malformed {dt} column")
}

fn prim<T: ArrowPrimitiveType>(
    array: &dyn Array,
    f: impl Fn(T::Native) -> Value,
) -> Result<Vec<Value>, String> {
    let a = array
        .as_primitive_opt::<T>()
        .ok_or_else(|| mismatch(array.data_type()))?;
    Ok(a.iter().map(|v| v.map_or(Value::Null, &f)).collect())
}

fn strings<O: OffsetSizeTrait>(array: &dyn Array) -> Result<Vec<Value>, String> {
    let a = array
        .as_string_opt::<O>()
        .ok_or_else(|| mismatch(array.data_type()))?;
    Ok(a.iter()
        .map(|v| v.map_or(Value::Null, Value::from))
        .collect())
}

fn binaries<O: OffsetSizeTrait>(array: &dyn Array) -> Result<Vec<Value>, String> {
    let a = array
        .as_binary_opt::<O>()
        .ok_or_else(|| mismatch(array.data_type()))?;
    Ok(a.iter().map(|v| v.map_or(Value::Null, bytes)).collect())
}

fn bytes(b: &[u8]) -> Value {
    Value::Bytes(b.into())
}

fn lists<O: OffsetSizeTrait>(array: &dyn Array) -> Result<Vec<Value>, String> {
    let dt = array.data_type();
    let a = array.as_list_opt::<O>().ok_or_else(|| mismatch(dt))?;
    let mut child = column_values(a.values().as_ref())?;
    let offsets = a.value_offsets();
    (0..a.len())
        .map(|i| {
            if a.is_null(i) {
                return Ok(Value::Null);
            }
            let (start, end) = bounds(offsets, i).ok_or_else(|| mismatch(dt))?;
            take_range(&mut child, start, end).map(Value::Array)
        })
        .collect()
}

/// The start and end of entry `i` in an offsets buffer.
fn bounds<O: OffsetSizeTrait>(offsets: &[O], i: usize) -> Option<(usize, usize)> {
    let start = offsets.get(i)?.as_usize();
    let end = offsets.get(i + 1)?.as_usize();
    (start <= end).then_some((start, end))
}

/// Moves `child[start..end]` out (each child value belongs to one list entry).
fn take_range(child: &mut [Value], start: usize, end: usize) -> Result<Arc<[Value]>, String> {
    let slice = child
        .get_mut(start..end)
        .ok_or_else(|| format!("list entry {start}..{end} is out of bounds"))?;
    Ok(slice.iter_mut().map(std::mem::take).collect())
}

fn scaled(unscaled: f64, scale: i8) -> f64 {
    unscaled / 10f64.powi(scale.into())
}

fn time_of_day(micros: i64) -> Value {
    let secs = micros.div_euclid(1_000_000);
    let frac = micros.rem_euclid(1_000_000);
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if frac == 0 {
        Value::String(format!("{h:02}:{m:02}:{s:02}").into())
    } else {
        Value::String(format!("{h:02}:{m:02}:{s:02}.{frac:06}").into())
    }
}
