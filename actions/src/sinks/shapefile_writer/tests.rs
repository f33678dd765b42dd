//! Tests of `shapefile_writer`: round trips through `shapefile_reader` (every geometry
//! type, Z and M, holes, multi-parts, attribute types, encodings), the errors, and GDAL as
//! an oracle when `ogrinfo` is installed.

use super::*;
use crate::sources::shapefile_reader;
use geo_types::{Coord, LineString, MultiLineString, MultiPoint, MultiPolygon, Point, Polygon};
use sluice_runtime::feature::Ordinates;
use sluice_runtime::{Geometry, Schema, Value};

fn write_all(params: serde_json::Value, features: Vec<Feature>) -> Result<(), ActionError> {
    let ctx = NodeContext::standalone("t");
    let mut w = sluice_runtime::testing::build_sink(&SPEC, params)?;
    w.write(0, features, &ctx)?;
    w.finish(&ctx)?;
    w.commit()
}

fn read(params: serde_json::Value) -> Result<Vec<Feature>, ActionError> {
    shapefile_reader::read_params(params)
}

fn read_path(path: &str) -> Vec<Feature> {
    read(serde_json::json!({ "path": path })).unwrap()
}

fn coords(pts: &[(f64, f64)]) -> LineString<f64> {
    LineString(pts.iter().map(|&(x, y)| Coord { x, y }).collect())
}

fn geom(
    g: impl Into<geo_types::Geometry<f64>>,
    z: Option<Vec<f64>>,
    m: Option<Vec<f64>>,
) -> Geometry {
    Geometry::in_crs(g.into(), Some(2154))
        .with_ordinates(Ordinates { z, m })
        .unwrap()
}

fn feature(id: u64, g: Option<Geometry>) -> Feature {
    Feature::from_pairs(id, [("id", Value::Int(id as i64))]).with_geometry(g)
}

/// Asserts every geometry read back is the one written, bit for bit (NaN M as NaN).
fn assert_same(written: &[Feature], back: &[Feature]) {
    assert_eq!(written.len(), back.len());
    for (w, b) in written.iter().zip(back) {
        let (w, b) = (w.geometry(), b.geometry());
        match (w, b) {
            (None, None) => {}
            (Some(w), Some(b)) => {
                assert_eq!(w.geom, b.geom);
                assert_eq!(w.crs, b.crs);
                assert_eq!(w.z(), b.z());
                let bits = |m: Option<&[f64]>| {
                    m.map(|m| m.iter().map(|v| v.to_bits()).collect::<Vec<_>>())
                };
                let nan_as =
                    |m: Option<&[f64]>| m.map(|m| m.iter().map(|v| v.is_nan()).collect::<Vec<_>>());
                assert_eq!(nan_as(w.m()), nan_as(b.m()));
                let finite = |m: Option<&[f64]>| {
                    bits(
                        m.map(|m| {
                            m.iter()
                                .copied()
                                .filter(|v| !v.is_nan())
                                .collect::<Vec<_>>()
                        })
                        .as_deref(),
                    )
                };
                assert_eq!(finite(w.m()), finite(b.m()));
            }
            other => panic!("geometry mismatch: {other:?}"),
        }
    }
}

fn round_trip(name: &str, features: Vec<Feature>) -> Vec<Feature> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(format!("{name}.shp"));
    let path = path.to_string_lossy().into_owned();
    write_all(serde_json::json!({ "path": path }), features.clone()).unwrap();
    let back = read_path(&path);
    assert_same(&features, &back);
    back
}

// Shapefile orientation: outer rings clockwise, holes counter-clockwise.
fn outer(x: f64) -> LineString<f64> {
    coords(&[
        (x, 0.0),
        (x, 10.0),
        (x + 10.0, 10.0),
        (x + 10.0, 0.0),
        (x, 0.0),
    ])
}
fn hole(x: f64) -> LineString<f64> {
    coords(&[
        (x + 2.0, 2.0),
        (x + 4.0, 2.0),
        (x + 4.0, 4.0),
        (x + 2.0, 4.0),
        (x + 2.0, 2.0),
    ])
}

#[test]
fn every_geometry_type_round_trips_bit_exact_with_z_and_m() {
    let odd = [
        0.1,
        -0.0,
        1e-300,
        123_456_789.123_456_78,
        f64::MIN_POSITIVE,
        5e-324,
    ];
    // Points: plain, M (with a no-data M), Z, Z with M.
    round_trip(
        "points",
        odd.iter()
            .enumerate()
            .map(|(i, &v)| feature(i as u64, Some(geom(Point::new(v, -v), None, None))))
            .collect(),
    );
    round_trip(
        "points_m",
        vec![
            feature(0, Some(geom(Point::new(1.0, 2.0), None, Some(vec![3.5])))),
            feature(
                1,
                Some(geom(Point::new(1.0, 2.0), None, Some(vec![f64::NAN]))),
            ),
            feature(2, None),
        ],
    );
    round_trip(
        "points_z",
        vec![feature(
            0,
            Some(geom(Point::new(0.1, 0.2), Some(vec![0.3]), None)),
        )],
    );
    round_trip(
        "points_zm",
        vec![feature(
            0,
            Some(geom(Point::new(0.1, 0.2), Some(vec![0.3]), Some(vec![9.0]))),
        )],
    );
    // Multipoints.
    let mp = MultiPoint(vec![Point::new(0.1, 1.0), Point::new(2.0, 3.3)]);
    round_trip("mp", vec![feature(0, Some(geom(mp.clone(), None, None)))]);
    round_trip(
        "mp_z",
        vec![feature(
            0,
            Some(geom(mp.clone(), Some(vec![1.0, 2.0]), Some(vec![5.0, 6.0]))),
        )],
    );
    round_trip(
        "mp_m",
        vec![feature(0, Some(geom(mp, None, Some(vec![1.0, f64::NAN]))))],
    );
    // Lines: one part and several.
    let l1 = coords(&[(0.0, 0.0), (1.5, 2.5), (3.0, 0.1)]);
    let l2 = coords(&[(10.0, 10.0), (11.0, 12.0)]);
    round_trip(
        "lines",
        vec![
            feature(0, Some(geom(l1.clone(), None, None))),
            feature(
                1,
                Some(geom(
                    MultiLineString(vec![l1.clone(), l2.clone()]),
                    None,
                    None,
                )),
            ),
        ],
    );
    round_trip(
        "lines_z",
        vec![
            feature(0, Some(geom(l1.clone(), Some(vec![1.0, 2.0, 3.0]), None))),
            feature(
                1,
                Some(geom(
                    MultiLineString(vec![l1.clone(), l2.clone()]),
                    Some(vec![1.0, 2.0, 3.0, 4.0, 5.0]),
                    Some(vec![0.0, 0.1, 0.2, 0.3, 0.4]),
                )),
            ),
        ],
    );
    round_trip(
        "lines_m",
        vec![feature(
            0,
            Some(geom(l1, None, Some(vec![7.0, f64::NAN, 9.0]))),
        )],
    );
    // Polygons: with a hole, multi-polygons with holes, Z and M.
    let with_hole = Polygon::new(outer(0.0), vec![hole(0.0)]);
    let multi = MultiPolygon(vec![with_hole.clone(), Polygon::new(outer(20.0), vec![])]);
    round_trip(
        "polygons",
        vec![
            feature(0, Some(geom(with_hole.clone(), None, None))),
            feature(1, Some(geom(multi.clone(), None, None))),
        ],
    );
    let z: Vec<f64> = (0..15).map(|i| i as f64 * 0.5).collect();
    let m: Vec<f64> = (0..15).map(|i| 100.0 + i as f64).collect();
    round_trip(
        "polygons_zm",
        vec![feature(
            0,
            Some(geom(multi.clone(), Some(z.clone()), Some(m))),
        )],
    );
    round_trip(
        "polygons_m",
        vec![feature(0, Some(geom(multi, None, Some(z))))],
    );
}

#[test]
fn polygon_rings_are_written_clockwise_with_their_ordinates() {
    // A counter-clockwise exterior (the GeoJSON way) and a clockwise hole.
    let mut ext = outer(0.0);
    ext.0.reverse();
    let mut h = hole(0.0);
    h.0.reverse();
    let z: Vec<f64> = (0..10).map(f64::from).collect();
    let f = feature(
        0,
        Some(geom(Polygon::new(ext, vec![h]), Some(z.clone()), None)),
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ccw.shp").to_string_lossy().into_owned();
    write_all(serde_json::json!({ "path": path }), vec![f]).unwrap();
    let back = read_path(&path);
    let g = back[0].geometry().unwrap();
    let want = Polygon::new(outer(0.0), vec![hole(0.0)]);
    assert_eq!(g.geom, want.into());
    // Each ring reversed, its heights with it.
    let mut want_z: Vec<f64> = z[..5].iter().rev().copied().collect();
    want_z.extend(z[5..].iter().rev());
    assert_eq!(g.z(), Some(&want_z[..]));
}

#[test]
fn attributes_keep_their_types_and_values() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("attrs.shp").to_string_lossy().into_owned();
    let schema = Schema::new([
        "int",
        "float",
        "text",
        "flag",
        "day",
        "when",
        "mixed",
        "a_very_long_name",
        "a_very_long_name_too",
    ]);
    let when = sluice_runtime::feature::parse_datetime("2024-02-29T10:11:12Z").unwrap();
    let floats = [
        0.1,
        -0.0,
        1e300,
        123_456_789.123_456_78,
        5e-324,
        2.0,
        -1.5e-7,
    ];
    let features: Vec<Feature> = floats
        .iter()
        .enumerate()
        .map(|(i, &x)| {
            Feature::new(
                i as u64,
                schema.clone(),
                vec![
                    if i == 1 {
                        Value::Null
                    } else {
                        Value::Int(i64::MAX - i as i64)
                    },
                    Value::Float(x),
                    if i == 2 {
                        Value::Null
                    } else {
                        Value::from(format!("é{i} ü"))
                    },
                    if i == 3 {
                        Value::Null
                    } else {
                        Value::Bool(i % 2 == 0)
                    },
                    if i == 4 {
                        Value::Null
                    } else {
                        Value::Date(19_000 + i as i32)
                    },
                    Value::DateTime(when),
                    if i == 0 {
                        Value::Int(3)
                    } else {
                        Value::Float(0.25)
                    },
                    Value::Int(1),
                    Value::Int(2),
                ],
            )
            .with_geometry(Some(Geometry::in_crs(
                Point::new(1.0, 2.0).into(),
                Some(4326),
            )))
        })
        .collect();
    write_all(serde_json::json!({ "path": path }), features.clone()).unwrap();
    let back = read_path(&path);
    assert_eq!(back.len(), features.len());
    let names: Vec<&str> = back[0].schema().names().iter().map(|n| &**n).collect();
    assert_eq!(
        names,
        [
            "int",
            "float",
            "text",
            "flag",
            "day",
            "when",
            "mixed",
            "a_very_lon",
            "a_very_l_1"
        ]
    );
    for (w, b) in features.iter().zip(&back) {
        let v = |f: &Feature, i: usize| f.values()[i].clone();
        assert_eq!(v(b, 0), v(w, 0));
        match (v(w, 1), v(b, 1)) {
            (Value::Float(a), Value::Float(b)) => assert_eq!(a.to_bits(), b.to_bits()),
            other => panic!("{other:?}"),
        }
        for i in [2, 3, 4] {
            assert_eq!(v(b, i), v(w, i), "attribute {i}");
        }
        assert_eq!(v(b, 5), Value::from("2024-02-29T10:11:12Z"));
        // An int field that met floats is a float field: the int is widened.
        assert_eq!(v(b, 6).as_f64(), v(w, 6).as_f64());
        assert!(matches!(v(b, 6), Value::Float(_)));
        assert_eq!(b.geometry().unwrap().crs, Some(4326));
    }
    // The .prj and .cpg are there.
    let prj = std::fs::read_to_string(dir.path().join("attrs.prj")).unwrap();
    assert!(prj.contains("AUTHORITY[\"EPSG\",\"4326\"]]"), "{prj}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("attrs.cpg")).unwrap(),
        "UTF-8"
    );
}

#[test]
fn encodings_round_trip_through_cpg_and_parameter() {
    let dir = tempfile::tempdir().unwrap();
    for (enc, text, cpg, name) in [
        ("Shift_JIS", "東京都千代田区", "932", "名前"),
        ("latin1", "Zürich Ærø café", "1252", "prénom"),
    ] {
        let schema = Schema::new([name, "note"]);
        let path = dir
            .path()
            .join(format!("{enc}.shp"))
            .to_string_lossy()
            .into_owned();
        let f = Feature::new(
            0,
            schema.clone(),
            vec![Value::from(text), Value::from("plain")],
        );
        write_all(
            serde_json::json!({ "path": path, "encoding": enc }),
            vec![f],
        )
        .unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.path().join(format!("{enc}.cpg"))).unwrap(),
            cpg
        );
        // Not UTF-8 on disk.
        let dbf = std::fs::read(dir.path().join(format!("{enc}.dbf"))).unwrap();
        assert!(std::str::from_utf8(&dbf).is_err());
        // Through the .cpg.
        let back = read_path(&path);
        assert_eq!(back[0].values()[0], Value::from(text), "{enc}");
        // Through the parameter, without a .cpg.
        std::fs::remove_file(dir.path().join(format!("{enc}.cpg"))).unwrap();
        let back = read(serde_json::json!({ "path": path, "encoding": enc })).unwrap();
        assert_eq!(back[0].values()[0], Value::from(text), "{enc}");
    }
    // The language driver byte alone (Shift_JIS: 0x13) is enough too.
    let back = read_path(&dir.path().join("Shift_JIS.shp").to_string_lossy());
    assert_eq!(back[0].values()[0], Value::from("東京都千代田区"));
    // A character the encoding cannot hold fails the run naming the feature and field.
    let path = dir.path().join("bad.shp").to_string_lossy().into_owned();
    let f = Feature::new(
        7,
        Schema::new(["name", "note"]),
        vec![Value::from("ok"), Value::from("€ 東")],
    );
    let e = write_all(
        serde_json::json!({ "path": path, "encoding": "latin1" }),
        vec![f],
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("feature 7") && e.contains("\"note\"") && e.contains('東'),
        "{e}"
    );
    assert!(!dir.path().join("bad.shp").exists());
}

#[test]
fn bad_features_fail_naming_them_and_leave_no_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.shp").to_string_lossy().into_owned();
    let p = serde_json::json!({ "path": path });
    let pt = |id| feature(id, Some(geom(Point::new(1.0, 2.0), None, None)));
    let cases: Vec<(Vec<Feature>, &str)> = vec![
        (
            vec![
                pt(0),
                feature(5, Some(geom(coords(&[(0.0, 0.0), (1.0, 1.0)]), None, None))),
            ],
            "feature 5",
        ),
        (
            vec![
                pt(0),
                feature(6, Some(geom(Point::new(1.0, 2.0), Some(vec![1.0]), None))),
            ],
            "PointZ",
        ),
        (
            vec![Feature::from_pairs(
                3,
                [("s", Value::from("x".repeat(255)))],
            )],
            "255 bytes",
        ),
        (
            vec![Feature::from_pairs(4, [("f", Value::Float(f64::NAN))])],
            "feature 4",
        ),
        (
            vec![
                Feature::from_pairs(1, [("v", Value::Int(1))]),
                Feature::from_pairs(2, [("v", Value::from("one"))]),
            ],
            "feature 2",
        ),
    ];
    for (features, want) in cases {
        let e = write_all(p.clone(), features).unwrap_err().to_string();
        assert!(e.contains(want), "{want}: {e}");
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
        assert!(left.is_empty(), "{left:?}");
    }
    // The path must name a .shp.
    let e =
        sluice_runtime::testing::build_sink(&SPEC, serde_json::json!({"path": "out/x.geojson"}));
    assert!(e.is_err());
}

#[test]
fn the_2gb_limit_is_an_error_not_a_corrupt_file() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = NodeContext::standalone("t");
    for (limit, what) in [(300u64, ".shp"), (5_000, ".dbf")] {
        let path = dir.path().join("big.shp").to_string_lossy().into_owned();
        let mut w = ShapefileWriter::new(ShapefileWriterParams {
            path: path.clone(),
            encoding: None,
        })
        .unwrap();
        w.limit = limit;
        let features: Vec<Feature> = (0..50)
            .map(|i| {
                Feature::from_pairs(i, [("s", Value::from("y".repeat(100)))])
                    .with_geometry(Some(Geometry::new(Point::new(1.0, 2.0).into())))
            })
            .collect();
        let result = w.write(0, features[..5].to_vec(), &ctx).and_then(|()| {
            w.write(0, features[5..].to_vec(), &ctx)?;
            w.finish(&ctx)
        });
        let e = result.unwrap_err().to_string();
        assert!(e.contains(&limit.to_string()), "{what}: {e}");
        w.abort();
        assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
    }
}

#[test]
fn an_empty_input_writes_an_empty_shapefile() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.shp").to_string_lossy().into_owned();
    write_all(serde_json::json!({ "path": path }), Vec::new()).unwrap();
    assert!(read_path(&path).is_empty());
}

// ---------------------------------------------------------------------------------------------
// GDAL as the oracle
// ---------------------------------------------------------------------------------------------

/// Whether GDAL's command line tools are installed; prints why a test is skipped if not.
#[allow(clippy::print_stderr)]
pub(crate) fn gdal() -> bool {
    let ok = std::process::Command::new("ogrinfo")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("skipped: ogrinfo (GDAL) is not installed");
    }
    ok
}

#[test]
fn gdal_reads_what_the_writer_wrote() {
    if !gdal() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir
        .path()
        .join("parcels.shp")
        .to_string_lossy()
        .into_owned();
    let schema = Schema::new(["name", "area", "count", "ok", "day"]);
    let features: Vec<Feature> = (0..3)
        .map(|i| {
            let x = i as f64 * 20.0;
            Feature::new(
                i,
                schema.clone(),
                vec![
                    Value::from(format!("lot {i}")),
                    Value::Float(1.25 * i as f64),
                    Value::Int(i as i64),
                    Value::Bool(i == 1),
                    Value::Date(19_000),
                ],
            )
            .with_geometry(Some(Geometry::in_crs(
                Polygon::new(outer(x + 700_000.0), vec![hole(x + 700_000.0)]).into(),
                Some(2154),
            )))
        })
        .collect();
    write_all(serde_json::json!({ "path": path }), features).unwrap();
    let out = std::process::Command::new("ogrinfo")
        .args(["-al", "-so", &path])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    for want in [
        "Geometry: Polygon",
        "Feature Count: 3",
        "Extent: (700000.000000, 0.000000) - (700050.000000, 10.000000)",
        "name: String (5.0)",
        "area: Real (4.2)",
        "count: Integer (1.0)",
        "ok: ",
        "day: Date",
        "Lambert-93",
    ] {
        assert!(text.contains(want), "{want:?} not in\n{text}");
    }
}
