//! Tests of `csv_reader`.

use super::cells::{fast_date, fast_datetime, parse_i64};
use super::*;
use crate::sources::test_support::{put, read_pair};
use sluice_runtime::feature::{
    parse_date, parse_datetime, parse_local_datetime, parse_zoned_datetime,
};
use sluice_runtime::store;
use sluice_runtime::{Feature, REJECTION_REASON, Value};
use std::io::Write;

#[test]
fn infers_types_shares_one_schema_and_builds_points() {
    put(
        "memory://csv_reader/typed.csv",
        b"id,name,x,y,ok,day,at,wall\n1,a,1.5,2,true,2024-02-29,2024-02-29T10:11:12Z,2024-01-13T08:35:00\n2,,3,4.25,false,,2024-03-01T00:00:00.500000Z,\n",
    );
    let (ok, rejected) = read_pair(
        &SPEC,
        serde_json::json!({
            "path": "memory://csv_reader/typed.csv",
            "geometry": {"x": "x", "y": "y"},
            "crs": 4326
        }),
    )
    .unwrap();
    assert!(rejected.is_empty());
    assert_eq!(ok.len(), 2);
    assert!(Arc::ptr_eq(ok[0].schema(), ok[1].schema()));
    let f = &ok[0];
    assert_eq!(f.get("id"), Some(&Value::Int(1)));
    assert_eq!(f.get("name"), Some(&Value::from("a")));
    assert_eq!(f.get("x"), Some(&Value::Float(1.5)));
    assert_eq!(
        ok[1].get("x"),
        Some(&Value::Int(3)),
        "a float column keeps an int spelled as an int"
    );
    assert_eq!(
        f.get("wall"),
        Some(&Value::LocalDateTime(
            parse_local_datetime("2024-01-13T08:35:00").unwrap()
        )),
        "a datetime without a zone stays without one"
    );
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
            parse_zoned_datetime("2024-03-01T00:00:00.5Z").unwrap()
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
    let (ok, rejected) = read_pair(
        &SPEC,
        serde_json::json!({
            "path": "memory://csv_reader/bad.csv",
            "columns": {"a": "int"},
            "geometry": {"wkt": "g", "keep_columns": false}
        }),
    )
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
fn inferred_int_takes_floats_and_keeps_other_cells_as_text() {
    let mut text = String::from("n\n");
    for i in 0..1000 {
        text.push_str(&format!("{i}\n"));
    }
    text.push_str("2.5\nabc\n007\n");
    put("memory://csv_reader/late.csv", text.as_bytes());
    let (ok, rejected) = read_pair(
        &SPEC,
        serde_json::json!({"path": "memory://csv_reader/late.csv"}),
    )
    .unwrap();
    assert!(rejected.is_empty());
    assert_eq!(ok.len(), 1003);
    assert_eq!(ok[1000].get("n"), Some(&Value::Float(2.5)));
    assert_eq!(ok[1001].get("n"), Some(&Value::from("abc")));
    assert_eq!(
        ok[1002].get("n"),
        Some(&Value::from("007")),
        "leading zeros are never dropped"
    );
}

#[test]
fn only_exact_spellings_are_inferred() {
    put(
        "memory://csv_reader/exact.csv",
        b"code,price,flag,stamp,plain,n\n007,12.50,TRUE,2024-01-13 08:35:00,1.5,1\n010,3.25,false,2024-01-13T08:35:00+02:00,2.0,2\n1e3,1.5,true,2024-01-13T08:35:00Z,-0.5,-3\n",
    );
    let (ok, rejected) = read_pair(
        &SPEC,
        serde_json::json!({"path": "memory://csv_reader/exact.csv"}),
    )
    .unwrap();
    assert!(rejected.is_empty());
    assert_eq!(ok[0].get("code"), Some(&Value::from("007")));
    assert_eq!(ok[2].get("code"), Some(&Value::from("1e3")));
    assert_eq!(ok[0].get("price"), Some(&Value::from("12.50")));
    assert_eq!(ok[0].get("flag"), Some(&Value::from("TRUE")));
    assert_eq!(
        ok[0].get("stamp"),
        Some(&Value::from("2024-01-13 08:35:00"))
    );
    assert_eq!(ok[0].get("plain"), Some(&Value::Float(1.5)));
    assert_eq!(ok[1].get("plain"), Some(&Value::Float(2.0)));
    assert_eq!(ok[2].get("n"), Some(&Value::Int(-3)));
    // Declared, the usual spellings convert.
    let (ok, rejected) = read_pair(
        &SPEC,
        serde_json::json!({
            "path": "memory://csv_reader/exact.csv",
            "columns": {"price": "float", "flag": "bool", "code": "float"}
        }),
    )
    .unwrap();
    assert!(rejected.is_empty());
    assert_eq!(ok[0].get("price"), Some(&Value::Float(12.5)));
    assert_eq!(ok[0].get("flag"), Some(&Value::Bool(true)));
    assert_eq!(ok[2].get("code"), Some(&Value::Float(1000.0)));
}

#[test]
fn quoted_empty_is_an_empty_string_and_unquoted_empty_is_null() {
    put("memory://csv_reader/empty.csv", b"a,b\n\"\",\n,\"\"\n");
    let (ok, _) = read_pair(
        &SPEC,
        serde_json::json!({"path": "memory://csv_reader/empty.csv"}),
    )
    .unwrap();
    assert_eq!(ok[0].get("a"), Some(&Value::from("")));
    assert_eq!(ok[0].get("b"), Some(&Value::Null));
    assert_eq!(ok[1].get("a"), Some(&Value::Null));
    assert_eq!(ok[1].get("b"), Some(&Value::from("")));
}

#[test]
fn an_unclosed_quote_is_a_located_error_not_a_swallowed_file() {
    put(
        "memory://csv_reader/unclosed.csv",
        b"a,b\n1,\"unclosed\n2,ok\n3,fine\n",
    );
    match read_pair(
        &SPEC,
        serde_json::json!({"path": "memory://csv_reader/unclosed.csv"}),
    ) {
        Err(ActionError::Data { location, message }) => {
            assert_eq!(
                location.as_deref(),
                Some("memory://csv_reader/unclosed.csv")
            );
            assert!(
                message.contains("line 2") && message.contains("never closed"),
                "{message}"
            );
        }
        other => panic!("unexpected {:?}", other.map(|(a, b)| (a.len(), b.len()))),
    }
    // A field past the limit stops too, at the line where it starts.
    let mut text = b"a,b\n1,\"".to_vec();
    text.extend(std::iter::repeat_n(b'x', 300));
    text.extend_from_slice(b"\"\n2,y\n");
    put("memory://csv_reader/long.csv", &text);
    match read_pair(
        &SPEC,
        serde_json::json!({"path": "memory://csv_reader/long.csv", "max_field_bytes": 100}),
    ) {
        Err(ActionError::Data { message, .. }) => {
            assert!(
                message.contains("line 2") && message.contains("100 bytes"),
                "{message}"
            );
        }
        other => panic!("unexpected {:?}", other.map(|(a, b)| (a.len(), b.len()))),
    }
    assert_eq!(
        read_pair(
            &SPEC,
            serde_json::json!({"path": "memory://csv_reader/long.csv", "max_field_bytes": 1000})
        )
        .unwrap()
        .0
        .len(),
        2
    );
}

#[test]
fn invalid_utf8_rejects_the_row_with_its_location_and_bytes() {
    put(
        "memory://csv_reader/latin.csv",
        b"id,name\n1,ok\n2,caf\xe9\n3,fine\n",
    );
    let (ok, rejected) = read_pair(
        &SPEC,
        serde_json::json!({"path": "memory://csv_reader/latin.csv"}),
    )
    .unwrap();
    assert_eq!(ok.len(), 2);
    assert_eq!(rejected.len(), 1);
    let reason = rejected[0].get(REJECTION_REASON).unwrap().to_string();
    assert_eq!(
        reason,
        "memory://csv_reader/latin.csv:3: column \"name\": invalid UTF-8 at byte 18 (set `encoding`)"
    );
    assert_eq!(
        rejected[0].get("name"),
        Some(&Value::Bytes(b"caf\xe9".to_vec().into())),
        "the bytes are kept as read"
    );
    let (ok, rejected) = read_pair(
        &SPEC,
        serde_json::json!({
            "path": "memory://csv_reader/latin.csv", "encoding": "latin-1"
        }),
    )
    .unwrap();
    assert!(rejected.is_empty());
    assert_eq!(ok[1].get("name"), Some(&Value::from("café")));
    let (ok, _) = read_pair(
        &SPEC,
        serde_json::json!({
            "path": "memory://csv_reader/latin.csv", "encoding": "utf-8-lossy"
        }),
    )
    .unwrap();
    assert_eq!(ok[1].get("name"), Some(&Value::from("caf\u{fffd}")));
    // Shift_JIS: "東京" is 93 8c 8b 9e.
    put("memory://csv_reader/sjis.csv", b"city\n\x93\x8c\x8b\x9e\n");
    let (ok, _) = read_pair(
        &SPEC,
        serde_json::json!({
            "path": "memory://csv_reader/sjis.csv", "encoding": "shift_jis"
        }),
    )
    .unwrap();
    assert_eq!(ok[0].get("city"), Some(&Value::from("東京")));
}

#[test]
fn a_folder_takes_only_csv_files_unless_told_otherwise() {
    put("memory://csv_reader/mixed/a.csv", b"v\n1\n");
    put("memory://csv_reader/mixed/b.parquet", b"PAR1garbage");
    put("memory://csv_reader/mixed/c.geojson", b"v\n2\n");
    let (ok, _) = read_pair(
        &SPEC,
        serde_json::json!({"path": "memory://csv_reader/mixed/"}),
    )
    .unwrap();
    assert_eq!(ok.len(), 1);
    let (ok, _) = read_pair(
        &SPEC,
        serde_json::json!({
            "path": "memory://csv_reader/mixed/", "extensions": ["csv", "geojson"]
        }),
    )
    .unwrap();
    assert_eq!(ok.len(), 2);
    put("memory://csv_reader/nocsv/b.parquet", b"PAR1");
    assert!(matches!(
        read_pair(
            &SPEC,
            serde_json::json!({"path": "memory://csv_reader/nocsv/"})
        ),
        Err(ActionError::Io { .. })
    ));
}

#[test]
fn wide_headers_are_linear() {
    // 100 k columns with repeated names: quadratic name checks would take minutes.
    let mut text = String::new();
    for i in 0..100_000 {
        text.push_str(if i % 2 == 0 { "c," } else { "d," });
    }
    text.push_str("e\n");
    let rec = record(text.as_bytes());
    let names = header_names(&rec, Encoding::Utf8).unwrap();
    assert_eq!(names.len(), 100_001);
    assert_eq!(names[2], "c_2");
    assert_eq!(names[99_999], "d_50000");
}

/// The first record of `text`.
fn record(text: &[u8]) -> records::Record {
    let mut r = records::Records::new(text, b',', b'"', 1 << 20);
    let mut rec = records::Record::default();
    assert!(r.read(&mut rec).unwrap());
    rec
}

#[test]
fn records_split_like_rfc_4180() {
    let text = b"a,\"b,1\",\"q\"\"x\"\r\n\r\n\n\"multi\nline\",\"\",\n\"ab\"c,d\re,\n";
    let mut r = records::Records::new(&text[..], b',', b'"', 1 << 20);
    let mut rec = records::Record::default();
    let mut got = Vec::new();
    while r.read(&mut rec).unwrap() {
        let fields: Vec<(String, bool)> = (0..rec.len())
            .map(|i| {
                (
                    String::from_utf8(rec.get(i).unwrap().to_vec()).unwrap(),
                    rec.quoted(i),
                )
            })
            .collect();
        got.push((rec.line(), fields));
    }
    let f = |s: &str, q: bool| (s.to_string(), q);
    assert_eq!(
        got,
        vec![
            (1, vec![f("a", false), f("b,1", true), f("q\"x", true)]),
            (4, vec![f("multi\nline", true), f("", true), f("", false)]),
            (6, vec![f("abc", true), f("d", false)]),
            (7, vec![f("e", false), f("", false)]),
        ]
    );
}

#[test]
fn gzip_glob_no_header_and_options() {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(b"1;'a;b'\n2;c\n").unwrap();
    put("memory://csv_reader/multi/p1.csv.gz", &gz.finish().unwrap());
    put("memory://csv_reader/multi/p2.csv", b"3;d\n");
    put("memory://csv_reader/multi/notes.txt", b"ignored");
    let (ok, rejected) = read_pair(
        &SPEC,
        serde_json::json!({
            "path": "memory://csv_reader/multi/*.csv*",
            "delimiter": ";",
            "quote": "'",
            "has_header": false,
            "infer_types": false
        }),
    )
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
    match read_pair(&SPEC, serde_json::json!({ "path": missing })) {
        Err(ActionError::Io { context, source }) => {
            assert!(context.contains("absent.csv"), "{context}");
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("unexpected {:?}", other.map(|_| ())),
    }
    let glob = format!("{}/*.csv", dir.path().to_string_lossy());
    assert!(matches!(
        read_pair(&SPEC, serde_json::json!({ "path": glob })),
        Err(ActionError::Io { .. })
    ));
    match read_pair(
        &SPEC,
        serde_json::json!({"path": "x.csv", "delimiter": "ab"}),
    ) {
        Err(ActionError::Param { path, .. }) => assert_eq!(path, "delimiter"),
        other => panic!("unexpected {:?}", other.map(|_| ())),
    }
    match read_pair(
        &SPEC,
        serde_json::json!({"path": "x.csv", "geometry": {"x": "a"}}),
    ) {
        Err(ActionError::Param { path, .. }) => assert_eq!(path, "geometry"),
        other => panic!("unexpected {:?}", other.map(|_| ())),
    }
    put("memory://csv_reader/cols.csv", b"a,b\n1,2\n");
    match read_pair(
        &SPEC,
        serde_json::json!({"path": "memory://csv_reader/cols.csv", "columns": {"c": "int"}}),
    ) {
        Err(ActionError::Param { path, message }) => {
            assert_eq!(path, "columns.c");
            assert!(message.contains("a, b"), "{message}");
        }
        other => panic!("unexpected {:?}", other.map(|_| ())),
    }
}

#[test]
fn header_names_are_cleaned() {
    let rec = record("\u{feff}id,,id,id\n".as_bytes());
    assert_eq!(
        header_names(&rec, Encoding::Utf8).unwrap(),
        vec!["id", "column_2", "id_2", "id_3"]
    );
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
        "1969-12-31T23:59:59.999999Z",
        "2024-02-29T10:11:12.123456789+02:00",
        "2024-02-29T10:11:12-05:30",
    ] {
        let zoned = parse_zoned_datetime(s).map(|t| (t, true));
        assert_eq!(fast_datetime(s.as_bytes()), zoned, "{s}");
        assert_eq!(parse_datetime(s), zoned.map(|z| z.0), "{s}");
    }
    for s in ["2024-02-29 10:11:12", "2024-02-29T10:11:12.5"] {
        let local = parse_local_datetime(s).map(|t| (t, false));
        assert_eq!(fast_datetime(s.as_bytes()), local, "{s}");
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
    let harness = sluice_runtime::testing::Harness {
        threads: 2,
        batch_size: 16,
        channel_bound: 32,
        ..Default::default()
    };
    harness.run_workflow_yaml(yaml, &crate::registry()).unwrap();
    let mut got = String::new();
    store::open_read("memory://csv_reader/pool/out.csv")
        .unwrap()
        .read_to_string(&mut got)
        .unwrap();
    assert_eq!(got, expected);
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

    /// On any mix of delimiters, quotes, line breaks and text, the record splitter gives the
    /// same fields as the csv crate (the reference), in records of the same lines; and it
    /// reads the same records whatever the size of the chunks the input comes in.
    #[test]
    fn records_agree_with_the_csv_crate(
        parts in proptest::collection::vec(
            proptest::prop_oneof![
                proptest::strategy::Just(",".to_string()),
                proptest::strategy::Just("\"".to_string()),
                proptest::strategy::Just("\"\"".to_string()),
                proptest::strategy::Just("\n".to_string()),
                proptest::strategy::Just("\r\n".to_string()),
                proptest::strategy::Just("\r".to_string()),
                "[a-c é]{1,3}",
            ],
            0..40,
        ),
        chunk in 1usize..8,
    ) {
        let text = parts.concat();
        // Only inputs whose quotes close: an unclosed quote is an error here, by design.
        let mut ours = Vec::new();
        let reader = std::io::BufReader::with_capacity(chunk, text.as_bytes());
        let mut r = records::Records::new(reader, b',', b'"', 1 << 20);
        let mut rec = records::Record::default();
        loop {
            match r.read(&mut rec) {
                Ok(true) => ours.push(rec.iter().map(<[u8]>::to_vec).collect::<Vec<_>>()),
                Ok(false) => break,
                Err(records::RecordError::UnclosedQuote { .. }) => return Ok(()),
                Err(e) => panic!("{e}"),
            }
        }
        let mut theirs = Vec::new();
        let mut rdr = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .from_reader(text.as_bytes());
        for r in rdr.byte_records() {
            let r = r.unwrap();
            theirs.push(r.iter().map(<[u8]>::to_vec).collect::<Vec<_>>());
        }
        proptest::prop_assert_eq!(ours, theirs, "{:?}", text);
    }
}

/// Rows converted on a pool of four threads are the rows one thread converts: the same
/// features in the same order with the same ids, the same rejected rows with their lines,
/// and the same notes about cells kept as text.
#[test]
fn rows_converted_on_the_pool_are_the_rows_converted_in_turn() {
    let mut text = String::from("id,value,name,day\n");
    for i in 0..20_000u32 {
        match i % 997 {
            500 => text.push_str(&format!("{i},oops\n")),
            700 => text.push_str(&format!(
                "{i},12.50,\"a, \"\"quoted\"\"\nname\",2024-01-01\n"
            )),
            _ => text.push_str(&format!(
                "{i},{}.{},n{i},2024-02-{:02}\n",
                i % 1000,
                i % 10,
                i % 28 + 1
            )),
        }
    }
    put("memory://csv_reader/pool.csv", text.as_bytes());
    let describe = |fs: &[Feature]| -> Vec<String> {
        fs.iter()
            .map(|f| format!("{} {:?} {:?}", f.id(), f.schema().names(), f.values()))
            .collect()
    };
    let mut seen = Vec::new();
    for threads in [1, 4] {
        let mut source = sluice_runtime::testing::build_source(
            &SPEC,
            serde_json::json!({ "path": "memory://csv_reader/pool.csv" }),
        )
        .unwrap();
        let mut ctx = NodeContext::standalone("t");
        ctx.pool = Arc::new(sluice_runtime::executor::new_pool(threads));
        let mut out = sluice_runtime::Emitter::for_outputs(SPEC.outputs);
        source.run(&ctx, &mut out).unwrap();
        let ports = out.into_buffers();
        let (ok, rejected) = (describe(&ports[0]), describe(&ports[1]));
        assert_eq!(ok.len() + rejected.len(), 20_000);
        assert_eq!(rejected.len(), 20, "every 997th row from 500 is short");
        seen.push((ok, rejected));
    }
    assert_eq!(seen[0], seen[1]);
}

/// Notes about cells kept as text, merged from chunks in row order, name the first cell.
#[test]
fn kept_as_text_notes_merge_in_row_order() {
    let mut first = plan::KeptAsText::new(2);
    first.note(1, 40, b"12.50");
    let mut second = plan::KeptAsText::new(2);
    second.note(0, 90, b"007");
    second.note(1, 95, b"1.0e3");
    first.merge(second);
    let mut one = plan::KeptAsText::new(2);
    one.note(1, 40, b"12.50");
    one.note(0, 90, b"007");
    one.note(1, 95, b"1.0e3");
    let plan_for = |t: &plan::KeptAsText| format!("{:?}", (t.counts(), t.firsts()));
    assert_eq!(plan_for(&first), plan_for(&one));
}

// ---------------------------------------------------------------------------------------------
// Slices of one file (partitioned runs)
// ---------------------------------------------------------------------------------------------

use crate::sources::test_support::{assert_slices_make_the_whole, read_slice};
use sluice_runtime::Slice;

/// A file of more rows than inference samples: a BOM, CRLF and LF line ends, quoted fields
/// holding line breaks (`\n`, `\r\n`, a lone `\r`), doubled quotes and delimiters, empty
/// lines, quotes inside unquoted fields, rows rejected for their field count or a declared
/// type, cells of inferred columns kept as text after the sample, and no final line break.
fn tricky_csv(rows: u32) -> Vec<u8> {
    let mut text = b"\xef\xbb\xbfid,n,note,kind,x,y\r\n".to_vec();
    for i in 0..rows {
        let line = match i % 13 {
            // `n` is an int in the sample; later rows hold text that stays text.
            0 if i > 1100 => format!("{i},x{i},plain,{},1.5,2\n", i % 7),
            1 => format!(
                "{i},{i},\"multi\nline, with \"\"quotes\"\"\",{},3,4\r\n",
                i % 7
            ),
            2 => format!("{i},{i},\"crlf\r\ninside\r\n\",{},5,6\n", i % 7),
            3 => format!("{i},{i},\"lone\rcr\",{},,\n", i % 7),
            4 => format!("{i},{i},5\" pipe,{},7,8\n\n", i % 7),
            5 => format!("{i},{i},too,many,fields,here,!\n"),
            6 => format!("{i},{i},bad kind,k{i},1,1\r\n"),
            7 => format!("{i},{i},\"ends\nwith a quote\"\"\"\n"),
            8 => format!("{i},{i},\"\",{},9,10\r\n\r\n", i % 7),
            _ => format!("{i},{i},note {i},{},{}.25,{}\n", i % 7, i, i % 90),
        };
        text.extend_from_slice(line.as_bytes());
    }
    // The last row has no line break.
    text.extend_from_slice(b"999999,1,\"last\nrow\",1,0,0");
    text
}

#[test]
fn slices_of_one_file_are_the_whole_read() {
    put("memory://csv_reader/slices/big.csv", &tricky_csv(3000));
    let params = serde_json::json!({
        "path": "memory://csv_reader/slices/big.csv",
        "columns": {"kind": "int"},
        "geometry": {"x": "x", "y": "y"},
    });
    let (ok, rejected) = assert_slices_make_the_whole(&SPEC, params, 1..=7);
    // The file is what the test means it to be.
    assert!(
        ok.len() > 2000 && rejected.len() > 400,
        "{} {}",
        ok.len(),
        rejected.len()
    );
    assert_eq!(
        ok[0].schema().names()[0].as_ref(),
        "id",
        "the BOM is dropped"
    );
    assert!(
        ok.iter().any(|f| f.get("n") == Some(&Value::from("x1105"))),
        "later text of an inferred int column stays text"
    );
    assert!(ok.iter().any(|f| f.get("n") == Some(&Value::Int(2000))));
    let reason = rejected[0].get(REJECTION_REASON).unwrap().to_string();
    assert!(
        reason.starts_with("memory://csv_reader/slices/big.csv:12: expected 6 fields, found 7"),
        "{reason}"
    );
}

#[test]
fn slices_keep_the_lines_of_the_file_in_rejections() {
    // Every row of the last slices lies past many quoted line breaks.
    put("memory://csv_reader/slices/lines.csv", &tricky_csv(400));
    let params = serde_json::json!({
        "path": "memory://csv_reader/slices/lines.csv",
        "columns": {"kind": "int"},
    });
    let (_, whole) = read_pair(&SPEC, params.clone()).unwrap();
    let last = Slice::new(4, 5).unwrap();
    let (_, rejected) = read_slice(&SPEC, params, last).unwrap();
    assert!(!rejected.is_empty());
    let reasons = |fs: &[Feature]| -> Vec<String> {
        fs.iter()
            .map(|f| f.get(REJECTION_REASON).unwrap().to_string())
            .collect()
    };
    let (whole, part) = (reasons(&whole), reasons(&rejected));
    assert_eq!(&whole[whole.len() - part.len()..], &part[..]);
}

#[test]
fn every_slice_of_small_files_is_exact() {
    let files: &[(&str, &[u8])] = &[
        (
            "crlf",
            b"a,b\r\n1,\"x\r\ny\"\r\n\r\n2,\"\"\"q\"\"\n\"\r\n3,z",
        ),
        (
            "literal-quotes",
            b"a,b\n5\" pipe,1\n\"ok\nstill\",2\nx\"y\"z,3\n\"ab\"c\"d,4\n",
        ),
        ("lone-cr", b"a,b\r1,\"p\rq\"\r2,3\r\r4,5\r"),
        ("bom", b"\xef\xbb\xbfa,b\n1,2\n"),
        ("header-only", b"a,b\n"),
        ("header-only-no-break", b"a,b"),
        ("empty", b""),
        ("blank", b"\n\n\r\n"),
        ("one-row", b"a,b\n1,2"),
        ("rejects", b"a,b\n1\n2,3\n4,5,6\n\n7,\"8\n9\"\n"),
    ];
    for (name, text) in files {
        let path = format!("memory://csv_reader/small/{name}.csv");
        put(&path, text);
        let counts = 1..=text.len() as u64 + 2;
        for has_header in [true, false] {
            let params = serde_json::json!({"path": path, "has_header": has_header});
            assert_slices_make_the_whole(&SPEC, params, counts.clone());
        }
        let typed = serde_json::json!({"path": path, "columns": {"a": "int"}});
        if *name != "empty" && *name != "blank" {
            assert_slices_make_the_whole(&SPEC, typed, counts);
        }
    }
}

#[test]
fn a_gzip_file_is_read_whole_by_the_first_slice() {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(b"a,b\n1,2\n3,4\n5,6\n").unwrap();
    put("memory://csv_reader/slices/z.csv.gz", &gz.finish().unwrap());
    let params = serde_json::json!({"path": "memory://csv_reader/slices/z.csv.gz"});
    for n in 1..=4 {
        for i in 0..n {
            let (ok, _) = read_slice(&SPEC, params.clone(), Slice::new(i, n).unwrap()).unwrap();
            assert_eq!(ok.len(), if i == 0 { 3 } else { 0 }, "slice {i}/{n}");
        }
    }
}

#[test]
fn several_files_are_shared_out_whole() {
    put("memory://csv_reader/shared/a.csv", b"v\n1\n2\n");
    put("memory://csv_reader/shared/b.csv", b"v\n\"x\ny\"\n");
    put("memory://csv_reader/shared/c.csv", b"v\n3\n4\n5\n");
    let params = serde_json::json!({"path": "memory://csv_reader/shared/*.csv"});
    assert_slices_make_the_whole(&SPEC, params.clone(), 1..=5);
    // Two slices of three files: the first file, then the other two.
    let (ok, _) = read_slice(&SPEC, params, Slice::new(1, 2).unwrap()).unwrap();
    let got: Vec<String> = ok.iter().map(|f| f.get("v").unwrap().to_string()).collect();
    assert_eq!(got, ["x\ny", "3", "4", "5"]);
}

#[test]
fn a_slice_that_reaches_an_unclosed_quote_fails_like_the_whole_read() {
    // After the rows inference reads, only the slice holding the quote fails; within them,
    // every slice does (each reads the head of the file).
    for (rows, failing) in [(1500, 1), (50, usize::MAX)] {
        let mut text = b"a,b\n".to_vec();
        for i in 0..rows {
            text.extend_from_slice(format!("{i},ok\n").as_bytes());
        }
        text.extend_from_slice(format!("{rows},\"never closed\n{},x\n", rows + 1).as_bytes());
        let path = format!("memory://csv_reader/slices/unclosed-{rows}.csv");
        put(&path, &text);
        let params = serde_json::json!({ "path": path });
        let whole = read_pair(&SPEC, params.clone()).unwrap_err().to_string();
        assert!(whole.contains(&format!("line {}", rows + 2)), "{whole}");
        for n in 1..=6 {
            let errors: Vec<String> = (0..n)
                .filter_map(|i| read_slice(&SPEC, params.clone(), Slice::new(i, n).unwrap()).err())
                .map(|e| e.to_string())
                .collect();
            assert!(errors.iter().all(|e| *e == whole), "{errors:?}");
            assert_eq!(
                errors.len(),
                failing.min(n as usize),
                "{n} slices of {rows} rows"
            );
        }
    }
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(512))]

    /// Splitting any text at any offsets with `skip_to` (in steps of any size) and
    /// `set_limit` gives the records of the whole text, with their lines and offsets,
    /// whatever the size of the chunks the input comes in; and the lines do not depend on
    /// the chunks either.
    #[test]
    fn ranges_of_records_are_the_records(
        parts in proptest::collection::vec(
            proptest::prop_oneof![
                proptest::strategy::Just(",".to_string()),
                proptest::strategy::Just("\"".to_string()),
                proptest::strategy::Just("\"\"".to_string()),
                proptest::strategy::Just("\n".to_string()),
                proptest::strategy::Just("\r\n".to_string()),
                proptest::strategy::Just("\r".to_string()),
                "[a-c]{1,3}",
            ],
            0..40,
        ),
        chunk in 1usize..8,
        cuts in proptest::collection::vec(0u64..200, 0..4),
        step in 1u64..30,
    ) {
        let text = parts.concat();
        let len = text.len() as u64;
        let all = |from: u64, to: u64, chunk: usize| {
            let reader = std::io::BufReader::with_capacity(chunk, text.as_bytes());
            let mut r = records::Records::new(reader, b',', b'"', 1 << 20);
            // In steps, as the reader skips (checking for cancellation between them).
            while r.offset() < from {
                let next = from.min(r.offset() + step);
                r.skip_to(next)?;
                if r.offset() < next {
                    break;
                }
            }
            r.set_limit(to);
            let mut got = Vec::new();
            let mut rec = records::Record::default();
            while r.read(&mut rec)? {
                got.push((rec.line(), rec.start(0), rec.iter().map(<[u8]>::to_vec).collect::<Vec<_>>()));
            }
            Ok::<_, records::RecordError>(got)
        };
        let whole = match all(0, u64::MAX, 1 << 16) {
            Ok(w) => w,
            Err(records::RecordError::UnclosedQuote { .. }) => return Ok(()),
            Err(e) => panic!("{e}"),
        };
        proptest::prop_assert_eq!(&all(0, u64::MAX, chunk).unwrap(), &whole, "{:?}", text);
        let mut bounds: Vec<u64> = cuts.iter().map(|c| c % (len + 1)).collect();
        bounds.push(0);
        bounds.push(len);
        bounds.sort();
        let mut joined = Vec::new();
        for w in bounds.windows(2) {
            joined.extend(all(w[0], w[1], chunk).unwrap());
        }
        proptest::prop_assert_eq!(&joined, &whole, "{:?} cut at {:?}", text, bounds);
    }
}
