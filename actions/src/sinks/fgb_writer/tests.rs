//! Tests of `fgb_writer` (read back with `fgb_reader`, and checked with GDAL when present).

use super::*;
use crate::sources::fgb_reader::{self, read_header};
use geo_types::{
    Geometry as G, GeometryCollection, LineString, MultiLineString, MultiPoint, MultiPolygon,
    Polygon, coord, line_string, point, polygon,
};
use sluice_runtime::feature::Ordinates;
use std::collections::BTreeMap;

pub(crate) fn write_all(
    params: serde_json::Value,
    features: Vec<Feature>,
) -> Result<(), ActionError> {
    let ctx = NodeContext::standalone("t");
    let mut w = sluice_runtime::testing::build_sink(&SPEC, params)?;
    // Several batches, as a run sends them.
    for chunk in features.chunks(7) {
        w.write(0, chunk.to_vec(), &ctx)?;
    }
    w.finish(&ctx)?;
    w.commit()
}

fn read_back(path: &str) -> (Vec<Feature>, Vec<Feature>) {
    crate::sources::test_support::read_back(&fgb_reader::SPEC, path)
}

fn header_of(path: &str) -> fgb_reader::Header {
    let bytes = std::fs::read(path).unwrap();
    read_header(&mut &bytes[..], bytes.len() as u64, path).unwrap()
}

fn geom(g: impl Into<G<f64>>, crs: Option<u32>) -> Option<Geometry> {
    Some(Geometry::in_crs(g.into(), crs))
}

fn with_z(g: impl Into<G<f64>>, crs: Option<u32>, z_from: f64) -> Option<Geometry> {
    let g: G<f64> = g.into();
    let n = coord_count(&g);
    let z: Vec<f64> = (0..n).map(|i| z_from + i as f64).collect();
    let m: Vec<f64> = (0..n).map(|i| -(i as f64)).collect();
    Some(
        Geometry::in_crs(g, crs)
            .with_ordinates(Ordinates {
                z: Some(z),
                m: Some(m),
            })
            .unwrap(),
    )
}

/// Shapes of every kind: holes, several parts, empties.
fn shapes() -> Vec<G<f64>> {
    let square = polygon![(x: 0., y: 0.), (x: 10., y: 0.), (x: 10., y: 10.), (x: 0., y: 10.), (x: 0., y: 0.)];
    let holed = Polygon::new(
        square.exterior().clone(),
        vec![
            line_string![(x: 2., y: 2.), (x: 4., y: 2.), (x: 4., y: 4.), (x: 2., y: 2.)],
            line_string![(x: 6., y: 6.), (x: 8., y: 6.), (x: 8., y: 8.), (x: 6., y: 6.)],
        ],
    );
    vec![
        point!(x: 1.5, y: -2.25).into(),
        line_string![(x: 0., y: 0.), (x: 1., y: 1.), (x: 2., y: 0.)].into(),
        square.clone().into(),
        holed.clone().into(),
        MultiPoint(vec![point!(x: 1., y: 2.), point!(x: 3., y: 4.)]).into(),
        MultiLineString(vec![
            line_string![(x: 0., y: 0.), (x: 1., y: 1.)],
            line_string![(x: 5., y: 5.), (x: 6., y: 5.), (x: 7., y: 7.)],
        ])
        .into(),
        MultiLineString(vec![line_string![(x: 0., y: 0.), (x: 1., y: 1.)]]).into(),
        MultiPolygon(vec![holed, square.clone()]).into(),
        MultiPolygon(vec![square.clone()]).into(),
        G::GeometryCollection(GeometryCollection(vec![
            point!(x: 9., y: 9.).into(),
            line_string![(x: 0., y: 0.), (x: 1., y: 1.)].into(),
            MultiPolygon(vec![square]).into(),
            G::GeometryCollection(GeometryCollection(vec![point!(x: -1., y: -1.).into()])),
        ])),
        // Empties.
        LineString::<f64>(vec![]).into(),
        Polygon::new(LineString(vec![]), vec![]).into(),
        MultiPoint::<f64>(vec![]).into(),
        MultiPolygon::<f64>(vec![]).into(),
        G::GeometryCollection(GeometryCollection::<f64>(vec![])),
    ]
}

/// NaN-aware equality of coordinates lists.
fn same_f64(a: &[f64], b: &[f64]) -> bool {
    a.len() == b.len()
        && a.iter()
            .zip(b)
            .all(|(x, y)| x == y || (x.is_nan() && y.is_nan()))
}

#[test]
fn every_geometry_kind_round_trips_2d_and_with_z_and_m() {
    let dir = tempfile::tempdir().unwrap();
    for (zm, index) in [(false, true), (true, true), (false, false), (true, false)] {
        let path = dir.path().join(format!("shapes-{zm}-{index}.fgb"));
        let path = path.to_string_lossy().into_owned();
        let mut features: Vec<Feature> = shapes()
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                let g = if zm {
                    with_z(s, Some(2154), i as f64 * 100.0)
                } else {
                    geom(s, Some(2154))
                };
                Feature::from_pairs(i as u64, [("n", Value::Int(i as i64))]).with_geometry(g)
            })
            .collect();
        let n = features.len() as i64;
        features.push(Feature::from_pairs(n as u64, [("n", Value::Int(n))]));
        write_all(
            serde_json::json!({"path": path, "index": index}),
            features.clone(),
        )
        .unwrap();
        let h = header_of(&path);
        assert_eq!(h.geometry_type, GeometryType::Unknown, "mixed types");
        assert_eq!((h.has_z, h.has_m), (zm, zm));
        assert_eq!(h.crs, Some(2154));
        assert_eq!(h.features_count, features.len() as u64);
        assert_eq!(h.index_node_size, if index { 16 } else { 0 });
        let (mut back, rejected) = read_back(&path);
        assert!(rejected.is_empty(), "{rejected:?}");
        assert_eq!(back.len(), features.len());
        // With an index the file is in Hilbert order: compare by `n`.
        back.sort_by_key(|f| f.get("n").and_then(Value::as_i64));
        for (want, got) in features.iter().zip(&back) {
            assert_eq!(want.get("n"), got.get("n"));
            match (want.geometry(), got.geometry()) {
                (None, None) => {}
                (Some(w), Some(g)) => {
                    assert_eq!(w.geom, g.geom, "feature {:?}", want.get("n"));
                    assert_eq!(g.crs, Some(2154));
                    assert!(same_f64(w.z().unwrap_or(&[]), g.z().unwrap_or(&[])));
                    assert!(same_f64(w.m().unwrap_or(&[]), g.m().unwrap_or(&[])));
                    assert_eq!(w.z().is_some(), g.z().is_some());
                }
                other => panic!("geometry mismatch: {other:?}"),
            }
        }
    }
}

#[test]
fn line_rect_and_triangle_are_written_as_their_wkb_equivalents() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("eq.fgb").to_string_lossy().into_owned();
    let shapes: Vec<G<f64>> = vec![
        geo_types::Line::new(coord! {x: 0., y: 0.}, coord! {x: 1., y: 2.}).into(),
        geo_types::Rect::new(coord! {x: 0., y: 0.}, coord! {x: 1., y: 2.}).into(),
        geo_types::Triangle::new(
            coord! {x: 0., y: 0.},
            coord! {x: 1., y: 0.},
            coord! {x: 0., y: 1.},
        )
        .into(),
    ];
    let features: Vec<Feature> = shapes
        .iter()
        .enumerate()
        .map(|(i, s)| {
            Feature::from_pairs(i as u64, [("n", Value::Int(i as i64))])
                .with_geometry(geom(s.clone(), None))
        })
        .collect();
    write_all(serde_json::json!({"path": path, "index": false}), features).unwrap();
    let (back, _) = read_back(&path);
    let expected: Vec<G<f64>> = vec![
        line_string![(x: 0., y: 0.), (x: 1., y: 2.)].into(),
        geo_types::Rect::new(coord! {x: 0., y: 0.}, coord! {x: 1., y: 2.})
            .to_polygon()
            .into(),
        geo_types::Triangle::new(
            coord! {x: 0., y: 0.},
            coord! {x: 1., y: 0.},
            coord! {x: 0., y: 1.},
        )
        .to_polygon()
        .into(),
    ];
    let got: Vec<G<f64>> = back
        .iter()
        .map(|f| f.geometry().unwrap().geom.clone())
        .collect();
    assert_eq!(got, expected);
    assert_eq!(back[0].geometry().unwrap().crs, None, "no CRS written");
    assert_eq!(header_of(&path).crs, None);
}

fn all_values(i: i64) -> Vec<(&'static str, Value)> {
    let mut map = BTreeMap::new();
    map.insert("k".to_string(), Value::Int(i));
    map.insert(
        "nested".to_string(),
        Value::Array(vec![Value::Bool(true), Value::String("x".into())].into()),
    );
    vec![
        ("b", Value::Bool(i % 2 == 0)),
        ("i", Value::Int(i64::MAX - i)),
        ("f", Value::Float(0.1 + i as f64)),
        ("s", Value::String(format!("é{i}\"q").into())),
        ("d", Value::Date(19_000 + i as i32)),
        ("dt", Value::DateTime(1_700_000_000_123_456 + i * 1_000_000)),
        ("ldt", Value::LocalDateTime(1_700_000_000_000_000 + i)),
        ("bytes", Value::Bytes(vec![0, 1, 2, 255, i as u8].into())),
        (
            "list",
            Value::Array(vec![Value::Int(i), Value::Float(1.5)].into()),
        ),
        ("map", Value::Map(Arc::new(map))),
    ]
}

#[test]
fn every_property_type_round_trips_and_missing_values_are_null() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("props.fgb").to_string_lossy().into_owned();
    let mut features: Vec<Feature> = (0..20)
        .map(|i| {
            Feature::from_pairs(i as u64, all_values(i))
                .with_geometry(geom(point!(x: i as f64, y: 0.), Some(4326)))
        })
        .collect();
    // A feature with other attributes, nulls among them: new columns are appended.
    features.push(
        Feature::from_pairs(
            20,
            [
                ("extra", Value::String("e".into())),
                ("i", Value::Null),
                ("only_null", Value::Null),
            ],
        )
        .with_geometry(geom(point!(x: 50., y: 0.), Some(4326))),
    );
    // An int in a float column is written as a float.
    features.push(Feature::from_pairs(21, [("f", Value::Int(3))]));
    write_all(serde_json::json!({"path": path}), features.clone()).unwrap();
    let h = header_of(&path);
    let columns: Vec<(String, &str)> = h
        .columns
        .iter()
        .map(|c| (c.name.clone(), c.ty.variant_name().unwrap()))
        .collect();
    let expect = [
        ("b", "Bool"),
        ("i", "Long"),
        ("f", "Double"),
        ("s", "String"),
        ("d", "DateTime"),
        ("dt", "DateTime"),
        ("ldt", "DateTime"),
        ("bytes", "Binary"),
        ("list", "Json"),
        ("map", "Json"),
        ("extra", "String"),
        ("only_null", "String"),
    ];
    assert_eq!(
        columns,
        expect
            .iter()
            .map(|(n, t)| (n.to_string(), *t))
            .collect::<Vec<_>>()
    );
    assert_eq!(h.geometry_type, GeometryType::Point);
    assert_eq!(h.crs, Some(4326));
    let (mut back, rejected) = read_back(&path);
    assert!(rejected.is_empty(), "{rejected:?}");
    back.sort_by(|a, b| {
        let key = |f: &Feature| {
            f.geometry().map_or(f64::INFINITY, |g| match &g.geom {
                G::Point(p) => p.x(),
                _ => 0.0,
            })
        };
        key(a).total_cmp(&key(b))
    });
    for (i, f) in back.iter().take(20).enumerate() {
        for (name, value) in all_values(i as i64) {
            assert_eq!(f.get(name), Some(&value), "feature {i}, {name}");
        }
        assert_eq!(f.get("extra"), Some(&Value::Null));
    }
    assert_eq!(back[20].get("extra"), Some(&Value::String("e".into())));
    assert_eq!(back[20].get("i"), Some(&Value::Null));
    assert_eq!(back[20].get("only_null"), Some(&Value::Null));
    assert_eq!(back[21].get("f"), Some(&Value::Float(3.0)));
    assert!(back[21].geometry().is_none());
}

fn data_error(r: Result<(), ActionError>) -> (String, String) {
    match r {
        Err(ActionError::Data { location, message }) => (location.unwrap_or_default(), message),
        other => panic!("expected a data error, got {other:?}"),
    }
}

#[test]
fn mixed_crs_z_after_2d_and_type_clashes_fail_naming_the_feature() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.fgb").to_string_lossy().into_owned();
    let p = serde_json::json!({ "path": path });
    let a = Feature::from_pairs(0, [("x", Value::Int(1))])
        .with_geometry(geom(point!(x: 0., y: 0.), Some(4326)));
    let b = Feature::from_pairs(1, [("x", Value::Int(2))])
        .with_geometry(geom(point!(x: 0., y: 0.), Some(2154)));
    let (at, message) = data_error(write_all(p.clone(), vec![a.clone(), b]));
    assert_eq!(at, "feature 1");
    assert!(
        message.contains("EPSG:2154") && message.contains("EPSG:4326"),
        "{message}"
    );
    let z = Feature::from_pairs(1, [("x", Value::Int(2))]).with_geometry(with_z(
        point!(x: 0., y: 0.),
        Some(4326),
        1.0,
    ));
    let (at, message) = data_error(write_all(p.clone(), vec![a.clone(), z]));
    assert_eq!(at, "feature 1");
    assert!(message.contains("Z values"), "{message}");
    let s = Feature::from_pairs(5, [("x", Value::String("two".into()))]);
    let (at, message) = data_error(write_all(p.clone(), vec![a.clone(), s]));
    assert_eq!(at, "feature 5");
    assert!(
        message.contains("\"x\"") && message.contains("Long") && message.contains("string"),
        "{message}"
    );
    let f = Feature::from_pairs(6, [("x", Value::Float(2.5))]);
    assert!(
        write_all(p, vec![a, f]).is_err(),
        "a float in a Long column"
    );
    assert!(
        !std::path::Path::new(&path).exists(),
        "a failed run leaves no file"
    );
}

#[test]
fn an_aborted_run_leaves_nothing_and_parameters_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.fgb").to_string_lossy().into_owned();
    let ctx = NodeContext::standalone("t");
    let mut w =
        sluice_runtime::testing::build_sink(&SPEC, serde_json::json!({ "path": path })).unwrap();
    let f = Feature::from_pairs(0, [("x", Value::Int(1))])
        .with_geometry(geom(point!(x: 0., y: 0.), None));
    w.write(0, vec![f], &ctx).unwrap();
    w.finish(&ctx).unwrap();
    w.abort();
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    for (params, at) in [
        (serde_json::json!({"path": ""}), "path"),
        (
            serde_json::json!({"path": "x.fgb", "index_node_size": 1}),
            "index_node_size",
        ),
        (
            serde_json::json!({"path": "x.fgb", "index_node_size": 70000}),
            "index_node_size",
        ),
    ] {
        assert_eq!(sluice_runtime::testing::param_error_path(&SPEC, params), at);
    }
}

#[test]
fn no_features_make_a_valid_empty_file_and_node_size_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.fgb").to_string_lossy().into_owned();
    write_all(serde_json::json!({"path": path}), vec![]).unwrap();
    let h = header_of(&path);
    assert_eq!((h.features_count, h.index_node_size), (0, 0));
    assert_eq!(read_back(&path).0.len(), 0);
    let path = dir.path().join("n4.fgb").to_string_lossy().into_owned();
    let features: Vec<Feature> = (0..100)
        .map(|i| {
            Feature::from_pairs(i, [("n", Value::Int(i as i64))])
                .with_geometry(geom(point!(x: i as f64, y: (i * 7 % 13) as f64), None))
        })
        .collect();
    write_all(
        serde_json::json!({"path": path, "index_node_size": 4}),
        features,
    )
    .unwrap();
    let h = header_of(&path);
    assert_eq!((h.features_count, h.index_node_size), (100, 4));
    let (sel, _) = crate::sources::test_support::read_pair(
        &fgb_reader::SPEC,
        serde_json::json!({"path": path, "bbox": [10, 0, 20, 13]}),
    )
    .unwrap();
    let mut n: Vec<i64> = sel.iter().filter_map(|f| f.get("n")?.as_i64()).collect();
    n.sort();
    assert_eq!(n, (10..=20).collect::<Vec<_>>());
}

// The notice says why a test that checks nothing passed.
#[allow(clippy::print_stderr)]
fn gdal() -> bool {
    let ok = std::process::Command::new("ogrinfo")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("NOTICE: ogrinfo not found; skipping the GDAL cross-check");
    }
    ok
}

#[test]
fn gdal_agrees_on_count_fields_extent_and_crs() {
    if !gdal() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for index in [true, false] {
        let path = dir
            .path()
            .join(format!("gdal-{index}.fgb"))
            .to_string_lossy()
            .into_owned();
        let features: Vec<Feature> = (0..250)
            .map(|i| {
                let mut values = all_values(i);
                values.truncate(8);
                Feature::from_pairs(i as u64, values).with_geometry(geom(
                    polygon![(x: i as f64, y: 1.), (x: i as f64 + 2., y: 1.), (x: i as f64, y: 3.5), (x: i as f64, y: 1.)],
                    Some(3857),
                ))
            })
            .collect();
        write_all(serde_json::json!({"path": path, "index": index}), features).unwrap();
        let out = std::process::Command::new("ogrinfo")
            .args(["-al", "-so", &path])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            text.contains(&format!("Layer name: gdal-{index}")),
            "{text}"
        );
        assert!(text.contains("Geometry: Polygon"), "{text}");
        assert!(text.contains("Feature Count: 250"), "{text}");
        assert!(
            text.contains("Extent: (0.000000, 1.000000) - (251.000000, 3.500000)"),
            "{text}"
        );
        assert!(
            text.contains("EPSG\",3857") || text.contains("ID[\"EPSG\",3857]"),
            "{text}"
        );
        for field in [
            "b: Integer(Boolean)",
            "i: Integer64",
            "f: Real",
            "s: String",
            "d: DateTime",
            "dt: DateTime",
            "ldt: DateTime",
            "bytes: Binary",
        ] {
            assert!(text.contains(field), "{field} in {text}");
        }
        // GDAL reads the values too (a full read, with its spatial filter through our index).
        let out = std::process::Command::new("ogrinfo")
            .args(["-al", "-q", "-spat", "10", "0", "20", "5", &path])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success());
        // Polygons 8..=20 have envelopes meeting x 10..20.
        assert_eq!(text.matches("OGRFeature(").count(), 13, "{text}");
        assert!(text.contains("s (String) = é9\"q"), "{text}");
    }
}
