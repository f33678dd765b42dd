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

/// Polygons (one with a hole, one multi-part) with attributes of every type a DBF holds,
/// with heights when `z` is set.
fn parcels(z: bool) -> Vec<Feature> {
    use geo_types::{LineString, MultiPolygon, Polygon};
    use sluice_runtime::feature::{Ordinates, coord_count, parse_date};
    // Outer rings clockwise, holes counter-clockwise: the shapefile convention, which the
    // other formats keep as written.
    let square = |x: f64, y: f64, s: f64, clockwise: bool| {
        let mut pts = vec![(x, y), (x + s, y), (x + s, y + s), (x, y + s), (x, y)];
        if clockwise {
            pts.reverse();
        }
        LineString::from(pts)
    };
    let with_hole = Polygon::new(
        square(651_000.125, 6_862_000.5, 100.0, true),
        vec![square(651_010.0, 6_862_010.0, 10.0, false)],
    );
    let two = MultiPolygon(vec![
        Polygon::new(square(652_000.0, 6_863_000.0, 50.0, true), vec![]),
        Polygon::new(square(652_100.0, 6_863_100.0, 0.1 + 0.2, true), vec![]),
    ]);
    let schema = sluice_runtime::Schema::new(["id", "name", "area", "flag", "day"]);
    [with_hole.into(), two.into()]
        .into_iter()
        .enumerate()
        .map(|(i, shape): (usize, geo_types::Geometry<f64>)| {
            let n = coord_count(&shape);
            let mut g = sluice_runtime::Geometry::in_crs(shape, Some(2154));
            if z {
                let heights = (0..n).map(|k| 35.5 + k as f64 * 0.25).collect();
                g = g
                    .with_ordinates(Ordinates {
                        z: Some(heights),
                        m: None,
                    })
                    .unwrap();
            }
            let values = vec![
                Value::Int(9_007_199_254_740_993 + i as i64),
                Value::from(["Zoë's parcel", "東京"][i]),
                Value::Float([12_345.678_9, 0.1 + 0.2][i]),
                Value::Bool(i == 0),
                Value::Date(parse_date(["2024-02-29", "1969-12-31"][i]).unwrap()),
            ];
            Feature::new(i as u64, schema.clone(), values).with_geometry(Some(g))
        })
        .collect()
}

/// Shapefile -> GeoPackage -> FlatGeobuf -> GeoParquet -> Shapefile gives back what the
/// first Shapefile held: coordinates (and heights) bit for bit, the CRS, and every
/// attribute with its type.
#[test]
fn shapefile_geopackage_flatgeobuf_geoparquet_and_back() {
    use crate::sinks::{fgb_writer, gpkg_writer, shapefile_writer};
    use crate::sources::{fgb_reader, gpkg_reader, shapefile_reader};
    for z in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let at = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
        let through =
            |writer: ActionSpec, reader: ActionSpec, path: String, features: &[Feature]| {
                write(writer, serde_json::json!({ "path": path }), features);
                let (back, rejected) = read(reader, serde_json::json!({ "path": path }));
                assert!(rejected.is_empty(), "{path}: {rejected:?}");
                back
            };
        let first = through(
            shapefile_writer::SPEC,
            shapefile_reader::SPEC,
            at("a.shp"),
            &parcels(z),
        );
        let gpkg = through(gpkg_writer::SPEC, gpkg_reader::SPEC, at("b.gpkg"), &first);
        let fgb = through(fgb_writer::SPEC, fgb_reader::SPEC, at("c.fgb"), &gpkg);
        let parquet = through(
            parquet_writer::SPEC,
            parquet_reader::SPEC,
            at("d.parquet"),
            &fgb,
        );
        let last = through(
            shapefile_writer::SPEC,
            shapefile_reader::SPEC,
            at("e.shp"),
            &parquet,
        );
        assert_eq!(first.len(), 2);
        assert_eq!(last.len(), first.len());
        // A FlatGeobuf with an index holds its features in the index's (Hilbert) order, as
        // GDAL writes it; the rest keep the order they are given. Match features by `id`.
        let by_id = |features: &[Feature]| {
            let mut v = features.to_vec();
            v.sort_by_key(|f| match f.get("id") {
                Some(Value::Int(n)) => *n,
                other => panic!("id {other:?}"),
            });
            v
        };
        let first = by_id(&first);
        let (gpkg, fgb, parquet, last) = (by_id(&gpkg), by_id(&fgb), by_id(&parquet), by_id(&last));
        for (stage, features) in [
            ("gpkg", &gpkg),
            ("fgb", &fgb),
            ("parquet", &parquet),
            ("shp", &last),
        ] {
            for (a, b) in first.iter().zip(features.iter()) {
                let g = b.geometry().unwrap();
                assert_eq!(
                    g,
                    a.geometry().unwrap(),
                    "{stage} (z: {z}): geometry of {}",
                    a.id()
                );
                assert_eq!(g.z().is_some(), z, "{stage}: heights");
                assert_eq!(g.crs, Some(2154), "{stage}: crs");
                for (name, value) in a.attributes() {
                    assert_eq!(
                        b.get(name),
                        Some(value),
                        "{stage} (z: {z}): attribute {name}"
                    );
                }
            }
        }
    }
}
