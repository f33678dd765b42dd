use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::builder::{Int32Builder, ListBuilder, StringDictionaryBuilder};
use arrow_array::types::Int32Type;
use arrow_array::{
    Array, Decimal128Array, DurationSecondArray, Int64Array, StringArray, StructArray,
    Time32SecondArray, TimestampNanosecondArray, UInt64Array,
};
use arrow_schema::{DataType, Field, TimeUnit};

use super::*;
use crate::feature::{Feature, Geometry, Value};

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

#[test]
fn policies_type_columns() {
    use ColumnKind as K;
    let p = ColumnPolicy::PORTABLE;
    assert_eq!(p.join(K::Int, K::Float), K::Float);
    assert_eq!(p.join(K::Float, K::Int), K::Float);
    assert_eq!(p.join(K::String, K::Int), K::String);
    assert_eq!(p.join(K::Null, K::Date), K::Date);
    assert_eq!(p.resolve(K::Null), K::String);
    assert_eq!(p.kind_of(&Value::Array(vec![].into())), K::Json);
    let l = ColumnPolicy::LOSSLESS;
    assert_eq!(l.join(K::Int, K::Float), K::Encoded);
    assert_eq!(l.join(K::Bool, K::Null), K::Bool);
    assert_eq!(l.resolve(K::Null), K::Null);
    assert_eq!(
        l.kind_of(&Value::Map(Arc::new(BTreeMap::new()))),
        K::Encoded
    );
    assert_eq!(
        K::DateTime.data_type(),
        DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
    );
    assert_eq!(
        K::LocalDateTime.data_type(),
        DataType::Timestamp(TimeUnit::Microsecond, None)
    );
}

#[test]
fn every_kind_builds_and_reads_back() {
    let m = Value::Map(Arc::new(BTreeMap::from([("k".to_string(), Value::Int(1))])));
    let cases = [
        (ColumnKind::Bool, Value::Bool(true)),
        (ColumnKind::Int, Value::Int(-3)),
        (ColumnKind::Float, Value::Float(-0.0)),
        (ColumnKind::String, Value::from("é")),
        (ColumnKind::Date, Value::Date(-1)),
        (ColumnKind::DateTime, Value::DateTime(1_500_000)),
        (ColumnKind::LocalDateTime, Value::LocalDateTime(-7)),
        (ColumnKind::Bytes, Value::Bytes(vec![0, 1].into())),
        (ColumnKind::Encoded, m.clone()),
    ];
    for (kind, v) in cases {
        let mut b = ColumnBuilder::new(kind);
        b.append(&v).unwrap();
        b.append_nulls(1);
        b.append(&Value::Null).unwrap();
        let a = b.finish();
        assert_eq!(a.data_type(), &kind.data_type());
        let r = ColumnReader::new(kind, a.as_ref()).unwrap();
        assert_eq!(r.value(0).unwrap().to_string(), v.to_string(), "{kind:?}");
        assert!(r.value(1).unwrap().is_null() && r.value(2).unwrap().is_null());
        if kind != ColumnKind::Encoded {
            assert_eq!(column_values(a.as_ref()).unwrap()[0], v, "{kind:?}");
        }
    }
    let mut json = ColumnBuilder::new(ColumnKind::Json);
    json.append(&m).unwrap();
    assert_eq!(json.append(&Value::Int(1)), Err(AppendError::Mismatch));
    assert_eq!(
        column_values(json.finish().as_ref()).unwrap(),
        vec![Value::from("{\"k\":1}")]
    );
    let mut f = ColumnBuilder::new(ColumnKind::Float);
    f.append(&Value::Int(2)).unwrap();
    assert_eq!(f.append(&Value::from("x")), Err(AppendError::Mismatch));
    let mut t = ColumnBuilder::new(ColumnKind::DateTime);
    assert_eq!(
        t.append(&Value::LocalDateTime(1)),
        Err(AppendError::Mismatch)
    );
    let local = ColumnBuilder::new(ColumnKind::LocalDateTime).finish();
    assert!(ColumnReader::new(ColumnKind::DateTime, local.as_ref()).is_none());
}

#[test]
fn features_make_a_record_batch_and_come_back() {
    let point = |x: f64| Geometry::in_crs(geo_types::Point::new(x, 1.0).into(), Some(4326));
    let features = vec![
        Feature::from_pairs(1, [("n", Value::Int(1)), ("s", Value::from("a"))])
            .with_geometry(Some(point(1.0))),
        Feature::from_pairs(2, [("s", Value::Null), ("x", Value::Float(0.5))]),
        Feature::from_pairs(3, [("n", Value::Float(2.5)), ("geometry", Value::Int(9))])
            .with_geometry(Some(point(3.0))),
    ];
    let columns = FeatureColumns::decide(&features, &ColumnPolicy::PORTABLE, "geometry");
    assert_eq!(
        columns.kinds(),
        [ColumnKind::Float, ColumnKind::String, ColumnKind::Float]
    );
    assert_eq!(columns.geometry(), Some("geometry"));
    let batch = columns.record_batch(&features).unwrap();
    assert_eq!(batch.num_columns(), 4);
    let back = features_from_batch(&batch, Some("geometry"), Some(4326)).unwrap();
    assert_eq!(back.len(), 3);
    assert_eq!(back[0].get("n"), Some(&Value::Float(1.0)));
    assert_eq!(back[1].get("x"), Some(&Value::Float(0.5)));
    assert_eq!(back[2].geometry(), Some(&point(3.0)));
    assert!(back[1].geometry().is_none());

    let odd = [Feature::from_pairs(7, [("n", Value::from("x"))])];
    match columns.record_batch(&odd) {
        Err(BatchError::Mismatch {
            feature: 7,
            expected: ColumnKind::Float,
            found,
            ..
        }) => assert_eq!(found, "string"),
        other => panic!("{other:?}"),
    }
    let extra = [Feature::from_pairs(8, [("other", Value::Int(1))])];
    assert!(matches!(
        columns.record_batch(&extra),
        Err(BatchError::NotAColumn { feature: 8, .. })
    ));
    let plain = FeatureColumns::decide(&features[1..2], &ColumnPolicy::PORTABLE, "geometry");
    assert!(matches!(
        plain.record_batch(&features[..1]),
        Err(BatchError::NotAColumn { .. })
    ));
    assert!(matches!(
        plain.record_batch(&[Feature::empty(4).with_geometry(Some(point(0.0)))]),
        Err(BatchError::UnexpectedGeometry { feature: 4 })
    ));
}

#[test]
fn encoded_values_round_trip_and_refuse_depth() {
    let mut v = Value::Int(1);
    for _ in 0..encoded::MAX_DEPTH {
        v = Value::Array(vec![v].into());
    }
    let mut out = Vec::new();
    encoded::encode_value(&v, &mut out).unwrap();
    assert_eq!(encoded::decode_value(&out).unwrap(), v);
    let deeper = Value::Array(vec![v].into());
    assert_eq!(
        encoded::encode_value(&deeper, &mut Vec::new()),
        Err(EncodeError::TooDeep)
    );
    assert!(encoded::decode_value(&out[..out.len() - 1]).is_err());
}
