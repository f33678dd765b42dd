use super::*;
use crate::sources::test_support::{put, read_pair};
use arrow_array::builder::BinaryBuilder;
use arrow_array::{Float64Array, Int64Array, StringArray};
use arrow_schema::{Field, Schema as ArrowSchema};
use parquet::arrow::ArrowWriter;
use sluice_runtime::feature::wkb;

/// A Parquet file with columns n (int), x (float), s (string) and a WKB column `geom`,
/// with the given `geo` metadata.
fn parquet(rows: usize, geo: Option<&str>, bad_wkb_at: Option<usize>) -> Vec<u8> {
    let schema = Arc::new(ArrowSchema::new(vec![
        Field::new("n", DataType::Int64, true),
        Field::new("geom", DataType::Binary, true),
        Field::new("x", DataType::Float64, true),
        Field::new("s", DataType::Utf8, true),
    ]));
    let mut geoms = BinaryBuilder::new();
    for i in 0..rows {
        if Some(i) == bad_wkb_at {
            geoms.append_value([1u8, 1, 0]);
        } else if i % 5 == 4 {
            geoms.append_null();
        } else {
            let mut b = Vec::new();
            wkb::to_wkb_2d(&geo_types::Point::new(i as f64, -(i as f64)).into(), &mut b);
            geoms.append_value(&b);
        }
    }
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from_iter_values(0..rows as i64)),
            Arc::new(geoms.finish()),
            Arc::new(Float64Array::from_iter(
                (0..rows).map(|i| (i % 3 != 0).then_some(i as f64 / 4.0)),
            )),
            Arc::new(StringArray::from_iter_values(
                (0..rows).map(|i| format!("s{i}")),
            )),
        ],
    )
    .unwrap();
    let mut buf = Vec::new();
    let mut w = ArrowWriter::try_new(&mut buf, schema, None).unwrap();
    w.write(&batch).unwrap();
    if let Some(geo) = geo {
        w.append_key_value_metadata(KeyValue::new("geo".into(), geo.to_string()));
    }
    w.close().unwrap();
    buf
}

const GEO: &str = r#"{"version": "1.1.0", "primary_column": "geom", "columns": {"geom": {"encoding": "WKB", "geometry_types": ["Point"], "crs": {"id": {"authority": "EPSG", "code": 3857}}}}}"#;

#[test]
fn reads_geoparquet_in_batches_from_memory_and_disk() {
    let bytes = parquet(20_000, Some(GEO), None);
    put("memory://parquet_reader/geo.parquet", &bytes);
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("geo.parquet");
    std::fs::write(&local, &bytes).unwrap();
    for path in [
        "memory://parquet_reader/geo.parquet".to_string(),
        local.to_string_lossy().into_owned(),
        format!("file://{}", local.to_string_lossy()),
    ] {
        let (ok, rejected) =
            read_pair(&SPEC, serde_json::json!({"path": path, "batch_rows": 1000})).unwrap();
        assert!(rejected.is_empty());
        assert_eq!(ok.len(), 20_000);
        let names: Vec<&str> = ok[0].schema().names().iter().map(|n| &**n).collect();
        assert_eq!(
            names,
            vec!["n", "x", "s"],
            "the geometry is not an attribute"
        );
        assert!(Arc::ptr_eq(ok[0].schema(), ok[19_999].schema()));
        let f = &ok[13_001];
        assert_eq!(f.get("n"), Some(&Value::Int(13_001)));
        assert_eq!(f.get("x"), Some(&Value::Float(13_001.0 / 4.0)));
        assert_eq!(f.get("s"), Some(&Value::from("s13001")));
        assert_eq!(ok[3].get("x"), Some(&Value::Null));
        let g = f.geometry().unwrap();
        assert_eq!(g.crs, Some(3857));
        assert_eq!(g.geom, geo_types::Point::new(13_001.0, -13_001.0).into());
        assert!(ok[4].geometry().is_none());
        assert_eq!(f.id(), 13_001);
    }
}

#[test]
fn plain_parquet_keeps_the_binary_column() {
    put(
        "memory://parquet_reader/plain.parquet",
        &parquet(3, None, None),
    );
    let (ok, _) = read_pair(
        &SPEC,
        serde_json::json!({"path": "memory://parquet_reader/plain.parquet"}),
    )
    .unwrap();
    assert!(matches!(ok[0].get("geom"), Some(Value::Bytes(_))));
    assert!(ok[0].geometry().is_none());
}

#[test]
fn bad_wkb_is_rejected_and_bad_files_are_located() {
    put(
        "memory://parquet_reader/badwkb.parquet",
        &parquet(10, Some(GEO), Some(7)),
    );
    let (ok, rejected) = read_pair(
        &SPEC,
        serde_json::json!({"path": "memory://parquet_reader/badwkb.parquet"}),
    )
    .unwrap();
    assert_eq!(ok.len(), 9);
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].get("n"), Some(&Value::Int(7)));
    let reason = rejected[0].get(REJECTION_REASON).unwrap().to_string();
    assert!(
        reason.starts_with("memory://parquet_reader/badwkb.parquet: row 7: geometry: bad WKB"),
        "{reason}"
    );

    put(
        "memory://parquet_reader/garbage.parquet",
        b"PAR1 not really",
    );
    match read_pair(
        &SPEC,
        serde_json::json!({"path": "memory://parquet_reader/garbage.parquet"}),
    ) {
        Err(ActionError::Data { location, message }) => {
            assert_eq!(
                location.as_deref(),
                Some("memory://parquet_reader/garbage.parquet")
            );
            assert!(message.contains("Parquet"), "{message}");
        }
        other => panic!("unexpected {:?}", other.map(|_| ())),
    }
    for (geo, want) in [
        ("{not json", "not valid JSON"),
        (
            r#"{"primary_column": "nope", "columns": {"nope": {}}}"#,
            "\"nope\"",
        ),
        (
            r#"{"primary_column": "geom", "columns": {"geom": {"encoding": "point"}}}"#,
            "only WKB",
        ),
        (
            r#"{"primary_column": "n", "columns": {"n": {}}}"#,
            "expected binary WKB",
        ),
    ] {
        put(
            "memory://parquet_reader/badgeo.parquet",
            &parquet(2, Some(geo), None),
        );
        let err = read_pair(
            &SPEC,
            serde_json::json!({"path": "memory://parquet_reader/badgeo.parquet"}),
        )
        .unwrap_err();
        assert!(err.to_string().contains(want), "{err} (wanted {want})");
    }
}

#[test]
fn crs_codes_from_geo_metadata() {
    let code = |json: serde_json::Value| epsg_code(&json);
    assert_eq!(
        code(serde_json::json!({"id": {"authority": "EPSG", "code": 2154}})),
        Some(2154)
    );
    assert_eq!(
        code(serde_json::json!({"ids": [{"authority": "OGC", "code": "CRS84"}]})),
        Some(4326)
    );
    assert_eq!(code(serde_json::json!("EPSG:32631")), Some(32631));
    assert_eq!(code(serde_json::json!({"name": "custom"})), None);
    assert_eq!(code(serde_json::Value::Null), None);
    let geo = geo_column(
        Some(&vec![KeyValue::new(
            "geo".into(),
            r#"{"primary_column": "g", "columns": {"g": {"encoding": "WKB"}}}"#.to_string(),
        )]),
        "x",
    )
    .unwrap();
    assert_eq!(
        geo,
        Some(GeoColumn {
            name: "g".into(),
            crs: Some(4326)
        }),
        "no crs means OGC:CRS84"
    );
    assert_eq!(local_path("memory://a/b"), None);
    assert_eq!(local_path("data/x.parquet"), Some("data/x.parquet"));
    assert_eq!(local_path("file:///tmp/x"), Some("/tmp/x"));
}

// ---------------------------------------------------------------------------------------------
// Slices of one file (partitioned runs)
// ---------------------------------------------------------------------------------------------

use crate::sources::test_support::{assert_slices_make_the_whole, read_slice};
use sluice_runtime::Slice;

/// A GeoParquet file of `rows` rows in row groups of `group_rows`, with bad WKB every 97th
/// row.
fn grouped(rows: usize, group_rows: usize) -> Vec<u8> {
    let schema = Arc::new(ArrowSchema::new(vec![
        Field::new("n", DataType::Int64, true),
        Field::new("geom", DataType::Binary, true),
        Field::new("s", DataType::Utf8, true),
    ]));
    let mut geoms = BinaryBuilder::new();
    for i in 0..rows {
        if i % 97 == 5 {
            geoms.append_value([1u8, 1, 0]);
        } else if i % 5 == 4 {
            geoms.append_null();
        } else {
            let mut b = Vec::new();
            wkb::to_wkb_2d(&geo_types::Point::new(i as f64, 0.5).into(), &mut b);
            geoms.append_value(&b);
        }
    }
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from_iter_values(0..rows as i64)),
            Arc::new(geoms.finish()),
            Arc::new(StringArray::from_iter(
                (0..rows).map(|i| (i % 3 != 0).then(|| format!("s{i}"))),
            )),
        ],
    )
    .unwrap();
    let props = parquet::file::properties::WriterProperties::builder()
        .set_max_row_group_row_count(Some(group_rows))
        .build();
    let mut buf = Vec::new();
    let mut w = ArrowWriter::try_new(&mut buf, schema, Some(props)).unwrap();
    w.write(&batch).unwrap();
    w.append_key_value_metadata(KeyValue::new("geo".into(), GEO.to_string()));
    w.close().unwrap();
    buf
}

#[test]
fn slices_of_one_file_are_ranges_of_row_groups() {
    let bytes = grouped(2_000, 300);
    let groups = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(bytes.clone()))
        .unwrap()
        .metadata()
        .num_row_groups();
    assert_eq!(groups, 7);
    put("memory://parquet_reader/slices/grouped.parquet", &bytes);
    let dir = tempfile::tempdir().unwrap();
    let local = dir.path().join("grouped.parquet");
    std::fs::write(&local, &bytes).unwrap();
    for path in [
        "memory://parquet_reader/slices/grouped.parquet".to_string(),
        local.to_string_lossy().into_owned(),
    ] {
        let params = serde_json::json!({"path": path, "batch_rows": 128});
        let (ok, rejected) = assert_slices_make_the_whole(&SPEC, params.clone(), 1..=9);
        assert_eq!(ok.len() + rejected.len(), 2_000);
        let reason = rejected[3].get(REJECTION_REASON).unwrap().to_string();
        assert!(
            reason.starts_with(&format!("{path}: row 296: geometry: bad WKB")),
            "{reason}"
        );
        // Three slices of seven row groups: 2, 2 and 3 of them.
        let (ok, rejected) = read_slice(&SPEC, params, Slice::new(1, 3).unwrap()).unwrap();
        assert_eq!(ok.len() + rejected.len(), 600);
        assert_eq!(ok[0].get("n"), Some(&Value::Int(600)));
    }
}

#[test]
fn several_parquet_files_are_shared_out_whole() {
    for (k, rows) in [10usize, 0, 25].iter().enumerate() {
        put(
            &format!("memory://parquet_reader/shared/p{k}.parquet"),
            &grouped(*rows, 4),
        );
    }
    let params = serde_json::json!({"path": "memory://parquet_reader/shared"});
    assert_slices_make_the_whole(&SPEC, params.clone(), 1..=5);
    let (ok, rejected) = read_slice(&SPEC, params, Slice::new(2, 3).unwrap()).unwrap();
    assert_eq!(ok.len() + rejected.len(), 25, "all of p2");
}
