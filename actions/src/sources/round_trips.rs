//! Round trips through readers and writers: what one writes, the other reads back the same.

use std::io::{Read, Write};

use sluice_runtime::store::{AtomicWriter, open_read};
use sluice_runtime::{ActionSpec, BuildContext, Emitter, Feature, NodeContext, NodeImpl, Value};

use crate::sinks::{csv_writer, geojson_writer, parquet_writer};
use crate::sources::{csv_reader, geojson_reader, parquet_reader};

fn put(location: &str, text: &str) {
    let mut w = AtomicWriter::create(location).unwrap();
    w.write_all(text.as_bytes()).unwrap();
    w.commit().unwrap();
}

fn get(location: &str) -> String {
    let mut s = String::new();
    open_read(location).unwrap().read_to_string(&mut s).unwrap();
    s
}

/// Runs a source; gives its default and rejected outputs.
fn read(spec: ActionSpec, params: serde_json::Value) -> (Vec<Feature>, Vec<Feature>) {
    let built = (spec.build)(&BuildContext {
        node_id: "r",
        params: &params,
    })
    .unwrap();
    let NodeImpl::Source(mut src) = built.node else {
        panic!("not a source")
    };
    let mut out = Emitter::for_outputs(spec.outputs);
    src.run(&NodeContext::standalone("r"), &mut out).unwrap();
    let mut b = out.into_buffers();
    let rejected = if b.len() > 1 {
        b.pop().unwrap()
    } else {
        Vec::new()
    };
    (b.pop().unwrap(), rejected)
}

/// Runs a sink over `features` in batches of 3, through finish and commit.
fn write(spec: ActionSpec, params: serde_json::Value, features: &[Feature]) {
    let built = (spec.build)(&BuildContext {
        node_id: "w",
        params: &params,
    })
    .unwrap();
    let NodeImpl::Sink(mut sink) = built.node else {
        panic!("not a sink")
    };
    let ctx = NodeContext::standalone("w");
    for chunk in features.chunks(3) {
        sink.write(0, chunk.to_vec(), &ctx).unwrap();
    }
    sink.finish(&ctx).unwrap();
    sink.commit().unwrap();
}

#[test]
fn csv_to_parquet_to_csv_is_byte_exact() {
    let input = "id,name,score,day,at,flag,blank\n\
1,\"Smith, Jane\",1.5,2024-02-29,2024-02-29T10:11:12Z,true,\n\
2,Zoë,,2024-03-01,2024-03-01T00:00:00.500000Z,false,\n\
3,\"multi\nline \"\"quoted\"\"\",-0.25,,,,\n\
4,plain,100.0,1999-12-31,1969-12-31T23:59:59Z,true,\n\
5,,12345.678,2000-01-01,2000-01-01T00:00:00.000001Z,,\n";
    put("memory://round_trips/in.csv", input);
    let (features, rejected) = read(
        csv_reader::SPEC,
        serde_json::json!({"path": "memory://round_trips/in.csv"}),
    );
    assert!(rejected.is_empty());
    write(
        parquet_writer::SPEC,
        serde_json::json!({"path": "memory://round_trips/mid.parquet", "row_group_rows": 2}),
        &features,
    );
    let (back, rejected) = read(
        parquet_reader::SPEC,
        serde_json::json!({"path": "memory://round_trips/mid.parquet"}),
    );
    assert!(rejected.is_empty());
    assert_eq!(back.len(), 5);
    for (a, b) in features.iter().zip(&back) {
        assert_eq!(a.values(), b.values());
    }
    write(
        csv_writer::SPEC,
        serde_json::json!({"path": "memory://round_trips/out.csv"}),
        &back,
    );
    assert_eq!(get("memory://round_trips/out.csv"), input);
}

const GEOJSON: &str = r#"{"type": "FeatureCollection", "features": [
  {"type": "Feature", "properties": {"name": "a", "n": 1, "x": 0.1},
   "geometry": {"type": "Polygon", "coordinates": [[[2.35, 48.85], [2.36, 48.85], [2.3600000000000003, 48.86], [2.35, 48.85]]]}},
  {"type": "Feature", "properties": {"name": "b", "n": null, "x": 123456789.12345679},
   "geometry": {"type": "MultiLineString", "coordinates": [[[0, 0], [1e-9, -1e9]], [[5, 5], [6, 6]]]}},
  {"type": "Feature", "properties": {"name": null, "n": -7, "x": null}, "geometry": null},
  {"type": "Feature", "properties": {"name": "d", "n": 9007199254740993, "x": -0.0},
   "geometry": {"type": "Point", "coordinates": [-179.99999999999997, 89.99999999999999]}}
]}"#;

#[test]
fn geojson_to_geoparquet_to_geojson_keeps_coordinates_and_properties() {
    put("memory://round_trips/in.geojson", GEOJSON);
    let (features, rejected) = read(
        geojson_reader::SPEC,
        serde_json::json!({"path": "memory://round_trips/in.geojson"}),
    );
    assert!(rejected.is_empty());
    assert_eq!(features.len(), 4);
    write(
        parquet_writer::SPEC,
        serde_json::json!({"path": "memory://round_trips/geo.parquet"}),
        &features,
    );
    let (mid, _) = read(
        parquet_reader::SPEC,
        serde_json::json!({"path": "memory://round_trips/geo.parquet"}),
    );
    write(
        geojson_writer::SPEC,
        serde_json::json!({"path": "memory://round_trips/out.geojson"}),
        &mid,
    );
    let (back, rejected) = read(
        geojson_reader::SPEC,
        serde_json::json!({"path": "memory://round_trips/out.geojson"}),
    );
    assert!(rejected.is_empty());
    assert_eq!(back.len(), 4);
    for (a, b) in features.iter().zip(&back) {
        assert_eq!(a.values(), b.values(), "properties of feature {}", a.id());
        assert_eq!(a.geometry(), b.geometry(), "geometry of feature {}", a.id());
    }
    assert_eq!(back[3].get("n"), Some(&Value::Int(9_007_199_254_740_993)));
    assert_eq!(back[0].geometry().unwrap().crs, Some(4326));
}

#[test]
fn csv_with_wkt_to_geojson() {
    put(
        "memory://round_trips/wkt.csv",
        "id,kind,wkt\n1,park,\"POLYGON((0 0,1 0,1 1,0 0))\"\n2,road,\"LINESTRING(0.5 0.25,3 4)\"\n3,none,\n",
    );
    let (features, rejected) = read(
        csv_reader::SPEC,
        serde_json::json!({
            "path": "memory://round_trips/wkt.csv",
            "geometry": {"wkt": "wkt", "keep_columns": false},
            "crs": 4326
        }),
    );
    assert!(
        rejected.is_empty(),
        "{:?}",
        rejected
            .iter()
            .map(|f| f.get(sluice_runtime::REJECTION_REASON).cloned())
            .collect::<Vec<_>>()
    );
    write(
        geojson_writer::SPEC,
        serde_json::json!({"path": "memory://round_trips/wkt.geojson"}),
        &features,
    );
    let json: serde_json::Value =
        serde_json::from_str(&get("memory://round_trips/wkt.geojson")).unwrap();
    let f = json["features"].as_array().unwrap();
    assert_eq!(f.len(), 3);
    assert_eq!(
        f[0]["properties"],
        serde_json::json!({"id": 1, "kind": "park"})
    );
    assert_eq!(
        f[0]["geometry"],
        serde_json::json!({"type": "Polygon", "coordinates": [[[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0]]]})
    );
    assert_eq!(
        f[1]["geometry"],
        serde_json::json!({"type": "LineString", "coordinates": [[0.5, 0.25], [3.0, 4.0]]})
    );
    assert!(f[2]["geometry"].is_null());
}
