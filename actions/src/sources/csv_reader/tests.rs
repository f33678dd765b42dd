//! Tests of `csv_reader`.

use super::cells::{fast_date, fast_datetime, parse_i64};
use super::*;
use sluice_runtime::feature::{parse_date, parse_datetime};
use sluice_runtime::store::AtomicWriter;
use std::io::Write;

fn put(location: &str, text: &[u8]) {
    let mut w = AtomicWriter::create(location).unwrap();
    w.write_all(text).unwrap();
    w.commit().unwrap();
}

fn read(params: serde_json::Value) -> Result<(Vec<Feature>, Vec<Feature>), ActionError> {
    let built = (SPEC.build)(&BuildContext {
        node_id: "t",
        params: &params,
    })?;
    let NodeImpl::Source(mut src) = built.node else {
        panic!("not a source")
    };
    let mut out = Emitter::buffer(2);
    src.run(&NodeContext::standalone("t"), &mut out)?;
    let mut b = out.into_buffers();
    let rejected = b.pop().unwrap();
    Ok((b.pop().unwrap(), rejected))
}

#[test]
fn example_parses_and_builds() {
    let params = sluice_runtime::workflow::yaml::parse(SPEC.example)
        .unwrap()
        .to_json();
    assert_eq!(params["geometry"]["x"], "lon");
    assert!(
        (SPEC.build)(&BuildContext {
            node_id: "t",
            params: &params
        })
        .is_ok()
    );
}

#[test]
fn infers_types_shares_one_schema_and_builds_points() {
    put(
        "memory://csv_reader/typed.csv",
        b"id,name,x,y,ok,day,at\n1,a,1.5,2,true,2024-02-29,2024-02-29T10:11:12Z\n2,,3,4.25,FALSE,,2024-03-01 00:00:00.5\n",
    );
    let (ok, rejected) = read(serde_json::json!({
        "path": "memory://csv_reader/typed.csv",
        "geometry": {"x": "x", "y": "y"},
        "crs": 4326
    }))
    .unwrap();
    assert!(rejected.is_empty());
    assert_eq!(ok.len(), 2);
    assert!(Arc::ptr_eq(ok[0].schema(), ok[1].schema()));
    let f = &ok[0];
    assert_eq!(f.get("id"), Some(&Value::Int(1)));
    assert_eq!(f.get("name"), Some(&Value::from("a")));
    assert_eq!(f.get("x"), Some(&Value::Float(1.5)));
    assert_eq!(f.get("ok"), Some(&Value::Bool(true)));
    assert_eq!(
        f.get("day"),
        Some(&Value::Date(parse_date("2024-02-29").unwrap()))
    );
    assert_eq!(
        f.get("at"),
        Some(&Value::DateTime(
            parse_datetime("2024-02-29T10:11:12Z").unwrap()
        ))
    );
    let g = f.geometry().unwrap();
    assert_eq!(g.crs, Some(4326));
    assert_eq!(g.geom, geo_types::Point::new(1.5, 2.0).into());
    assert_eq!(ok[1].get("name"), Some(&Value::Null));
    assert_eq!(ok[1].get("day"), Some(&Value::Null));
    assert_eq!(
        ok[1].get("at"),
        Some(&Value::DateTime(
            parse_datetime("2024-03-01T00:00:00.5Z").unwrap()
        ))
    );
    assert_eq!(ok[0].id() + 1, ok[1].id());
}

#[test]
fn malformed_rows_go_to_rejected_with_file_and_line() {
    put(
        "memory://csv_reader/bad.csv",
        b"a,b,g\n1,x,POINT(1 2)\n2,y\nzz,w,POINT(3 4)\n4,v,POINT(oops)\n5,u,\n",
    );
    let (ok, rejected) = read(serde_json::json!({
        "path": "memory://csv_reader/bad.csv",
        "columns": {"a": "int"},
        "geometry": {"wkt": "g", "keep_columns": false}
    }))
    .unwrap();
    assert_eq!(ok.len(), 2);
    assert_eq!(ok[0].schema().names().len(), 2, "the wkt column is dropped");
    assert!(ok[0].geometry().is_some());
    assert!(
        ok[1].geometry().is_none(),
        "an empty wkt cell is no geometry"
    );
    let reasons: Vec<String> = rejected
        .iter()
        .map(|f| f.get(REJECTION_REASON).unwrap().to_string())
        .collect();
    assert_eq!(reasons.len(), 3, "{reasons:?}");
    assert!(reasons[0].starts_with("memory://csv_reader/bad.csv:3: expected 3 fields, found 2"));
    assert!(reasons[1].starts_with("memory://csv_reader/bad.csv:4: column \"a\": expected int"));
    assert!(reasons[2].starts_with("memory://csv_reader/bad.csv:5: column \"g\": bad WKT"));
    // The raw cells travel with the reason.
    assert_eq!(rejected[1].get("a"), Some(&Value::from("zz")));
}

#[test]
fn inferred_int_takes_floats_but_rejects_text() {
    let mut text = String::from("n\n");
    for i in 0..1000 {
        text.push_str(&format!("{i}\n"));
    }
    text.push_str("2.5\nabc\n");
    put("memory://csv_reader/late.csv", text.as_bytes());
    let (ok, rejected) = read(serde_json::json!({"path": "memory://csv_reader/late.csv"})).unwrap();
    assert_eq!(ok.len(), 1001);
    assert_eq!(ok[1000].get("n"), Some(&Value::Float(2.5)));
    assert_eq!(rejected.len(), 1);
    let reason = rejected[0].get(REJECTION_REASON).unwrap().to_string();
    assert!(
        reason.contains(":1003: ") && reason.contains("inferred"),
        "{reason}"
    );
}

#[test]
fn gzip_glob_no_header_and_options() {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(b"1;'a;b'\n2;c\n").unwrap();
    put("memory://csv_reader/multi/p1.csv.gz", &gz.finish().unwrap());
    put("memory://csv_reader/multi/p2.csv", b"3;d\n");
    put("memory://csv_reader/multi/notes.txt", b"ignored");
    let (ok, rejected) = read(serde_json::json!({
        "path": "memory://csv_reader/multi/*.csv*",
        "delimiter": ";",
        "quote": "'",
        "has_header": false,
        "infer_types": false
    }))
    .unwrap();
    assert!(rejected.is_empty());
    let got: Vec<(String, String)> = ok
        .iter()
        .map(|f| {
            (
                f.get("column_1").unwrap().to_string(),
                f.get("column_2").unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            ("1".into(), "a;b".into()),
            ("2".into(), "c".into()),
            ("3".into(), "d".into())
        ]
    );
    assert_eq!(
        ok[0].get("column_1"),
        Some(&Value::from("1")),
        "strings when not inferring"
    );
    assert!(Arc::ptr_eq(ok[0].schema(), ok[2].schema()));
    let ids: Vec<u64> = ok.iter().map(Feature::id).collect();
    assert_eq!(ids, vec![0, 1, 2]);
}

#[test]
fn missing_file_and_bad_params_are_located_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("absent.csv").to_string_lossy().into_owned();
    match read(serde_json::json!({ "path": missing })) {
        Err(ActionError::Io { context, source }) => {
            assert!(context.contains("absent.csv"), "{context}");
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("unexpected {:?}", other.map(|_| ())),
    }
    let glob = format!("{}/*.csv", dir.path().to_string_lossy());
    assert!(matches!(
        read(serde_json::json!({ "path": glob })),
        Err(ActionError::Io { .. })
    ));
    match read(serde_json::json!({"path": "x.csv", "delimiter": "ab"})) {
        Err(ActionError::Param { path, .. }) => assert_eq!(path, "delimiter"),
        other => panic!("unexpected {:?}", other.map(|_| ())),
    }
    match read(serde_json::json!({"path": "x.csv", "geometry": {"x": "a"}})) {
        Err(ActionError::Param { path, .. }) => assert_eq!(path, "geometry"),
        other => panic!("unexpected {:?}", other.map(|_| ())),
    }
    put("memory://csv_reader/cols.csv", b"a,b\n1,2\n");
    match read(serde_json::json!({"path": "memory://csv_reader/cols.csv", "columns": {"c": "int"}}))
    {
        Err(ActionError::Param { path, message }) => {
            assert_eq!(path, "columns.c");
            assert!(message.contains("a, b"), "{message}");
        }
        other => panic!("unexpected {:?}", other.map(|_| ())),
    }
}

#[test]
fn header_names_are_cleaned() {
    let rec = ByteRecord::from(vec!["\u{feff}id", "", "id", "id"]);
    assert_eq!(header_names(&rec), vec!["id", "column_2", "id_2", "id_3"]);
}

#[test]
fn fast_parsers_agree_with_the_general_ones() {
    for s in [
        "2024-02-29",
        "1900-03-01",
        "1969-12-31",
        "0001-01-01",
        "9999-12-31",
    ] {
        assert_eq!(fast_date(s.as_bytes()), parse_date(s), "{s}");
    }
    for s in ["2023-02-29", "2024-13-01", "2024-00-10", "2024-1-01"] {
        assert_eq!(fast_date(s.as_bytes()), None, "{s}");
    }
    for s in [
        "2024-02-29T10:11:12Z",
        "2024-02-29 10:11:12",
        "1969-12-31T23:59:59.999999Z",
        "2024-02-29T10:11:12.123456789+02:00",
        "2024-02-29T10:11:12-05:30",
        "2024-02-29T10:11:12.5",
    ] {
        assert_eq!(fast_datetime(s.as_bytes()), parse_datetime(s), "{s}");
    }
    assert_eq!(fast_datetime(b"2024-02-29T24:00:00Z"), None);
    assert_eq!(parse_i64(b"-9223372036854775808"), Some(i64::MIN));
    assert_eq!(parse_i64(b"9223372036854775808"), None);
    assert_eq!(parse_i64(b"+12"), Some(12));
    assert_eq!(parse_i64(b"1e3"), None);
    assert_eq!(parse_i64(b"-"), None);
}

#[test]
fn many_files_through_a_parallel_transform_on_a_two_thread_pool() {
    // Readers block while their file's channel is full; they run on their own threads, so
    // the transform downstream always finds the pool free (no deadlock), and the output is
    // in file order.
    let mut expected = String::from("f,r\n");
    for f in 0..24 {
        let mut text = String::from("f,r\n");
        for r in 0..(f * 150) {
            text.push_str(&format!("{f},{r}\n"));
            if r % 2 == 0 {
                expected.push_str(&format!("{f},{r}\n"));
            }
        }
        put(
            &format!("memory://csv_reader/pool/in/{f:02}.csv"),
            text.as_bytes(),
        );
    }
    let yaml = "name: t\nnodes:\n  - id: read\n    action: csv_reader\n    with: { path: \"memory://csv_reader/pool/in/*.csv\" }\n  - id: even\n    action: filter\n    with:\n      conditions:\n        - { port: even, expression: \"r % 2 == 0\" }\n  - id: write\n    action: csv_writer\n    with: { path: \"memory://csv_reader/pool/out.csv\" }\nedges:\n  - read -> even\n  - even.even -> write\n";
    let options = sluice_runtime::executor::RunOptions {
        threads: 2,
        batch_size: 16,
        channel_bound: 32,
        ..Default::default()
    };
    let report = sluice_runtime::testing::run_yaml(
        yaml,
        &crate::registry(),
        options,
        std::time::Duration::from_secs(120),
    )
    .unwrap();
    assert!(report.ok);
    let mut got = String::new();
    store::open_read("memory://csv_reader/pool/out.csv")
        .unwrap()
        .read_to_string(&mut got)
        .unwrap();
    assert_eq!(got, expected);
}
