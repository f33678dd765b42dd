//! Arrow arrays into sluice values, a column at a time (for `parquet_reader`).
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
//! | Timestamp (any unit, any time zone) | datetime (microseconds, UTC; nanoseconds are floored) |
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
    ArrowPrimitiveType, Date32Type, Date64Type, Decimal32Type, Decimal64Type, Decimal128Type,
    Decimal256Type, Float16Type, Float32Type, Float64Type, Int8Type, Int16Type, Int32Type,
    Int64Type, Time32MillisecondType, Time32SecondType, Time64MicrosecondType,
    Time64NanosecondType, TimestampMicrosecondType, TimestampMillisecondType,
    TimestampNanosecondType, TimestampSecondType, UInt8Type, UInt16Type, UInt32Type, UInt64Type,
};
use arrow_array::{Array, OffsetSizeTrait};
use arrow_schema::{DataType, TimeUnit};
use sluice_runtime::Value;

/// Converts every row of `array` into a value.
pub(crate) fn column_values(array: &dyn Array) -> Result<Vec<Value>, String> {
    use DataType as D;
    let dt = array.data_type();
    match dt {
        D::Null => Ok(vec![Value::Null; array.len()]),
        D::Boolean => {
            let a = array.as_boolean_opt().ok_or_else(|| mismatch(dt))?;
            Ok(a.iter()
                .map(|v| v.map_or(Value::Null, Value::Bool))
                .collect())
        }
        D::Int8 => prim::<Int8Type>(array, |v| Value::Int(v.into())),
        D::Int16 => prim::<Int16Type>(array, |v| Value::Int(v.into())),
        D::Int32 => prim::<Int32Type>(array, |v| Value::Int(v.into())),
        D::Int64 => prim::<Int64Type>(array, Value::Int),
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
        D::Float64 => prim::<Float64Type>(array, Value::Float),
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
        D::Utf8 => strings::<i32>(array),
        D::LargeUtf8 => strings::<i64>(array),
        D::Utf8View => {
            let a = array.as_string_view_opt().ok_or_else(|| mismatch(dt))?;
            Ok(a.iter()
                .map(|v| v.map_or(Value::Null, Value::from))
                .collect())
        }
        D::Binary => binaries::<i32>(array),
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
        D::Date32 => prim::<Date32Type>(array, Value::Date),
        D::Date64 => prim::<Date64Type>(array, |ms| {
            i32::try_from(ms.div_euclid(86_400_000)).map_or(Value::Null, Value::Date)
        }),
        D::Timestamp(unit, tz) => {
            // A timestamp without a time zone is wall-clock time: it stays a local datetime
            // rather than being read as UTC.
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

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::builder::{Int32Builder, ListBuilder, StringDictionaryBuilder};
    use arrow_array::{
        Decimal128Array, DurationSecondArray, Int64Array, StringArray, StructArray,
        Time32SecondArray, TimestampNanosecondArray, UInt64Array,
    };
    use arrow_schema::Field;

    #[test]
    fn scalars_convert() {
        let v = column_values(&UInt64Array::from(vec![
            Some(5),
            None,
            Some(i64::MAX as u64),
        ]))
        .unwrap();
        assert_eq!(v, vec![Value::Int(5), Value::Null, Value::Int(i64::MAX)]);
        let e = column_values(&UInt64Array::from(vec![Some(5), Some(u64::MAX)])).unwrap_err();
        assert!(e.contains("18446744073709551615"), "{e}");
        let d = Decimal128Array::from(vec![12345, -5])
            .with_precision_and_scale(10, 2)
            .unwrap();
        assert_eq!(
            column_values(&d).unwrap(),
            vec![Value::Float(123.45), Value::Float(-0.05)]
        );
        let ts = TimestampNanosecondArray::from(vec![-1, 1_500_000_000]).with_timezone("+02:00");
        assert_eq!(
            column_values(&ts).unwrap(),
            vec![Value::DateTime(-1), Value::DateTime(1_500_000)]
        );
        let t = Time32SecondArray::from(vec![3661]);
        assert_eq!(column_values(&t).unwrap(), vec![Value::from("01:01:01")]);
        let err = column_values(&DurationSecondArray::from(vec![1])).unwrap_err();
        assert!(err.contains("Duration"), "{err}");
    }

    #[test]
    fn nested_and_dictionary_convert() {
        let mut lb = ListBuilder::new(Int32Builder::new());
        lb.values().append_value(1);
        lb.values().append_value(2);
        lb.append(true);
        lb.append(false);
        lb.append(true);
        let lists = lb.finish();
        assert_eq!(
            column_values(&lists).unwrap(),
            vec![
                Value::Array(vec![Value::Int(1), Value::Int(2)].into()),
                Value::Null,
                Value::Array(Vec::new().into())
            ]
        );
        let s = StructArray::from(vec![
            (
                Arc::new(Field::new("a", DataType::Int64, true)),
                Arc::new(Int64Array::from(vec![1, 2])) as _,
            ),
            (
                Arc::new(Field::new("b", DataType::Utf8, true)),
                Arc::new(StringArray::from(vec![Some("x"), None])) as _,
            ),
        ]);
        let got = column_values(&s).unwrap();
        assert_eq!(got[1].to_string(), "{\"a\":2,\"b\":null}");
        let mut db = StringDictionaryBuilder::<Int32Type>::new();
        db.append_value("p");
        db.append_null();
        db.append_value("q");
        db.append_value("p");
        assert_eq!(
            column_values(&db.finish()).unwrap(),
            vec![
                Value::from("p"),
                Value::Null,
                Value::from("q"),
                Value::from("p")
            ]
        );
    }
}
