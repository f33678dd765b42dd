//! Tests of `csv_writer`.

use super::*;
use crate::sinks::text_writer::TextOutput;
use sluice_runtime::store::AtomicWriter;
use sluice_runtime::{Geometry, NodeContext, NodeImpl, Sink, Value};
use std::io::{Read, Write};

fn sink(params: serde_json::Value) -> Box<dyn Sink> {
    sluice_runtime::testing::build_sink(&SPEC, params).unwrap()
}

fn read_back(location: &str) -> Vec<u8> {
    sluice_runtime::testing::read_bytes(location).unwrap()
}

fn put(location: &str, bytes: &[u8]) {
    let mut w = AtomicWriter::create(location).unwrap();
    w.write_all(bytes).unwrap();
    w.commit().unwrap();
}

fn read_csv(path: &str) -> (Vec<Feature>, Vec<Feature>) {
    crate::sources::test_support::read_back(&crate::sources::csv_reader::SPEC, path)
}

#[test]
fn round_trip_through_csv_reader_is_byte_exact() {
    let input = "id,name,score,when,flag,note\n\
1,\"Smith, Jane\",1.5,2024-02-29,true,\"she said \"\"hi\"\"\"\n\
2,Zoë,,2024-03-01,false,\n\
3,\"multi\nline\",-0.25,,,naïve ✓\n\
4,plain,100.0,1999-12-31,true,x\n";
    put("memory://csv_writer/rt-in.csv", input.as_bytes());
    let (features, rejected) = read_csv("memory://csv_writer/rt-in.csv");
    assert!(rejected.is_empty());
    assert_eq!(features[0].get("score"), Some(&Value::Float(1.5)));
    let ctx = NodeContext::standalone("t");
    for run in 0..2 {
        let out = format!("memory://csv_writer/rt-out-{run}.csv");
        let mut w = sink(serde_json::json!({ "path": out }));
        w.write(0, features[..2].to_vec(), &ctx).unwrap();
        w.write(0, features[2..].to_vec(), &ctx).unwrap();
        w.finish(&ctx).unwrap();
        w.commit().unwrap();
        assert_eq!(String::from_utf8(read_back(&out)).unwrap(), input);
    }
}

#[test]
fn gzip_output_is_deterministic_and_readable() {
    let ctx = NodeContext::standalone("t");
    let f = Feature::from_pairs(1, [("a", Value::Int(1)), ("b", Value::from("x"))]);
    let mut outputs = Vec::new();
    for run in 0..2 {
        let out = format!("memory://csv_writer/gz-{run}.csv.gz");
        let mut w = sink(serde_json::json!({ "path": out }));
        w.write(0, vec![f.clone()], &ctx).unwrap();
        w.finish(&ctx).unwrap();
        w.commit().unwrap();
        outputs.push(read_back(&out));
    }
    assert_eq!(outputs[0], outputs[1]);
    let mut text = String::new();
    flate2::read::GzDecoder::new(&outputs[0][..])
        .read_to_string(&mut text)
        .unwrap();
    assert_eq!(text, "a,b\n1,x\n");
}

#[test]
fn geometry_as_wkt_or_xy() {
    let ctx = NodeContext::standalone("t");
    let pt = Geometry::new(geo_types::Point::new(1.5, -2.0).into());
    let f = Feature::from_pairs(7, [("x", Value::Int(9)), ("n", Value::from("a"))])
        .with_geometry(Some(pt));
    let none = Feature::from_pairs(8, [("x", Value::Int(1)), ("n", Value::from("b"))]);

    let mut w = sink(
        serde_json::json!({"path": "memory://csv_writer/g.csv", "geometry": "wkt", "delimiter": ";"}),
    );
    w.write(0, vec![f.clone(), none.clone()], &ctx).unwrap();
    w.finish(&ctx).unwrap();
    w.commit().unwrap();
    assert_eq!(
        String::from_utf8(read_back("memory://csv_writer/g.csv")).unwrap(),
        "x;n;geometry\n9;a;POINT(1.5 -2)\n1;b;\n"
    );

    let mut w = sink(
        serde_json::json!({"path": "memory://csv_writer/xy.csv", "geometry": "xy", "header": false}),
    );
    w.write(0, vec![f, none], &ctx).unwrap();
    w.finish(&ctx).unwrap();
    w.commit().unwrap();
    assert_eq!(
        String::from_utf8(read_back("memory://csv_writer/xy.csv")).unwrap(),
        "a,1.5,-2.0\nb,,\n"
    );

    let line = Geometry::new(geo_types::LineString::from(vec![(0.0, 0.0), (1.0, 1.0)]).into());
    let mut w =
        sink(serde_json::json!({"path": "memory://csv_writer/bad-xy.csv", "geometry": "xy"}));
    let err = w
        .write(0, vec![Feature::empty(3).with_geometry(Some(line))], &ctx)
        .unwrap_err();
    assert!(
        err.to_string().contains("feature 3") && err.to_string().contains("line string"),
        "{err}"
    );
    w.abort();
}

#[test]
fn missing_attributes_are_empty_extra_ones_fail() {
    let ctx = NodeContext::standalone("t");
    let mut w = sink(serde_json::json!({"path": "memory://csv_writer/shapes.csv"}));
    let a = Feature::from_pairs(1, [("a", Value::Int(1)), ("b", Value::Int(2))]);
    let b = Feature::from_pairs(2, [("b", Value::Int(3))]);
    let c = Feature::from_pairs(3, [("a", Value::Int(4)), ("zzz", Value::Int(5))]);
    w.write(0, vec![a, b], &ctx).unwrap();
    let err = w.write(0, vec![c], &ctx).unwrap_err();
    match &err {
        ActionError::Data { location, message } => {
            assert_eq!(location.as_deref(), Some("feature 3"));
            assert!(message.contains("\"zzz\""), "{message}");
        }
        other => panic!("unexpected {other:?}"),
    }
    w.abort();
    assert!(sluice_runtime::store::open_read("memory://csv_writer/shapes.csv").is_err());
}

#[test]
fn abort_leaves_no_file_and_finish_commits() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out/result.csv");
    let loc = path.to_string_lossy().into_owned();
    let ctx = NodeContext::standalone("t");
    let rows: Vec<Feature> = (0..50_000)
        .map(|i| Feature::from_pairs(i, [("i", Value::Int(i as i64))]))
        .collect();

    let mut w = sink(serde_json::json!({ "path": loc }));
    w.write(0, rows.clone(), &ctx).unwrap();
    w.abort();
    assert!(!path.exists());
    let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("out"))
        .map(|d| d.collect())
        .unwrap_or_default();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    let mut w = sink(serde_json::json!({ "path": loc }));
    w.write(0, rows, &ctx).unwrap();
    assert!(!path.exists(), "nothing is visible before finish");
    w.finish(&ctx).unwrap();
    w.commit().unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    assert_eq!(text.lines().count(), 50_001);
    assert_eq!(
        std::fs::read_dir(dir.path().join("out")).unwrap().count(),
        1
    );
}

#[test]
fn no_features_give_an_empty_file() {
    let ctx = NodeContext::standalone("t");
    let mut w = sink(serde_json::json!({"path": "memory://csv_writer/empty.csv"}));
    w.write(0, Vec::new(), &ctx).unwrap();
    w.finish(&ctx).unwrap();
    w.commit().unwrap();
    assert!(read_back("memory://csv_writer/empty.csv").is_empty());
}

#[test]
fn partitions_by_attribute_with_at_most_max_open_files() {
    let ctx = NodeContext::standalone("t");
    let BuiltAction {
        node: NodeImpl::Sink(_),
        ..
    } = (SPEC.build)(&BuildContext {
        node_id: "t",
        params: &serde_json::json!({"path": "memory://csv_writer/by/{cat}/{y}.csv", "max_open_files": 2}),
    })
    .unwrap()
    else {
        panic!("not a sink")
    };
    let mut w = TextOutput::new("memory://csv_writer/by/{cat}.csv".into(), Some(false), 2)
        .unwrap()
        .writer(CsvEncoder::new(b',', true, None));
    let schema = Schema::new(["cat", "n"]);
    let cats = ["a", "b", "a/../x", "a", "c", "c", "b"];
    let rows: Vec<Feature> = cats
        .iter()
        .enumerate()
        .map(|(i, c)| {
            Feature::new(
                i as u64,
                schema.clone(),
                vec![Value::from(*c), Value::Int(i as i64)],
            )
        })
        .collect();
    w.write(0, rows, &ctx).unwrap();
    assert_eq!(w.files.max_open_seen, 2);
    w.finish(&ctx).unwrap();
    w.commit().unwrap();
    let text = |name: &str| {
        String::from_utf8(read_back(&format!("memory://csv_writer/by/{name}"))).unwrap()
    };
    // a b x a c c b with two open files: x closes a, the second a closes b (a.part2),
    // c closes x, the second b closes a.part2 (b.part2). Each part has its header.
    assert_eq!(text("a.csv"), "cat,n\na,0\n");
    assert_eq!(text("a.part2.csv"), "cat,n\na,3\n");
    assert_eq!(text("b.csv"), "cat,n\nb,1\n");
    assert_eq!(text("b.part2.csv"), "cat,n\nb,6\n");
    assert_eq!(text("a_.._x.csv"), "cat,n\na/../x,2\n");
    assert_eq!(text("c.csv"), "cat,n\nc,4\nc,5\n");
    assert_eq!(
        sluice_runtime::store::list("memory://csv_writer/by/*.csv")
            .unwrap()
            .len(),
        6
    );
}

#[test]
fn bad_params_are_located() {
    let err = (SPEC.build)(&BuildContext {
        node_id: "t",
        params: &serde_json::json!({"path": "x.csv", "geometry": "geojson"}),
    })
    .err()
    .unwrap();
    assert!(
        matches!(err, ActionError::Param { ref path, .. } if path == "geometry"),
        "{err:?}"
    );
    for (params, want) in [
        (serde_json::json!({"path": "out/{cat.csv"}), "path"),
        (
            serde_json::json!({"path": "x.csv", "max_open_files": 0}),
            "max_open_files",
        ),
    ] {
        let err = (SPEC.build)(&BuildContext {
            node_id: "t",
            params: &params,
        })
        .err()
        .unwrap();
        assert!(
            matches!(err, ActionError::Param { ref path, .. } if path == want),
            "{err:?}"
        );
    }
}
