//! Tests of `gpkg_writer`.

use super::*;
use crate::sources::gpkg_reader::tests::have_gdal;
use sluice_runtime::feature::{Ordinates, parse_date};
use std::path::Path;

fn sink(params: serde_json::Value) -> Box<dyn Sink> {
    sluice_runtime::testing::build_sink(&SPEC, params).unwrap()
}

fn write_all(params: serde_json::Value, batches: Vec<Vec<Feature>>) -> Result<(), ActionError> {
    let ctx = NodeContext::standalone("t");
    let mut w = sink(params);
    for b in batches {
        w.write(0, b, &ctx)?;
    }
    w.finish(&ctx)?;
    w.commit()
}

fn read_back(location: &str, layer: &str) -> Vec<Feature> {
    let (ok, rejected) = crate::sources::test_support::read_pair(
        &crate::sources::gpkg_reader::SPEC,
        serde_json::json!({"path": location, "layer": layer}),
    )
    .unwrap();
    assert!(rejected.is_empty(), "{rejected:?}");
    ok
}

fn path_str(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

fn with_zm(g: geo_types::Geometry<f64>, z: bool, m: bool, crs: Option<u32>) -> Geometry {
    let n = sluice_runtime::feature::coord_count(&g);
    let ordinates = Ordinates {
        z: z.then(|| (0..n).map(|i| 100.0 + i as f64 + 0.1).collect()),
        m: m.then(|| (0..n).map(|i| -(i as f64) - 0.7).collect()),
    };
    Geometry::in_crs(g, crs).with_ordinates(ordinates).unwrap()
}

/// Every geometry type, 2D and with Z, M and ZM, plus empty ones.
fn all_geometries(crs: Option<u32>) -> Vec<Option<Geometry>> {
    use geo_types::{
        GeometryCollection, LineString, MultiLineString, MultiPoint, MultiPolygon, Point, Polygon,
    };
    let line = LineString::from(vec![
        (0.1, 0.2),
        (1.0000000000000002, -3.3),
        (1e-300, 7e300),
    ]);
    let poly = Polygon::new(
        LineString::from(vec![(0.0, 0.0), (10.0, 0.0), (10.0, 10.0), (0.0, 0.0)]),
        vec![LineString::from(vec![
            (1.0, 1.0),
            (2.0, 1.0),
            (2.0, 2.0),
            (1.0, 1.0),
        ])],
    );
    let shapes: Vec<geo_types::Geometry<f64>> = vec![
        Point::new(-0.1, 0.30000000000000004).into(),
        line.clone().into(),
        poly.clone().into(),
        MultiPoint::from(vec![(1.0, 2.0), (3.0, 4.0)]).into(),
        MultiLineString::new(vec![line.clone(), line.clone()]).into(),
        MultiPolygon::new(vec![poly.clone(), poly]).into(),
        geo_types::Geometry::GeometryCollection(GeometryCollection::from(vec![
            geo_types::Geometry::from(Point::new(5.0, 6.0)),
            line.into(),
        ])),
    ];
    let mut out = Vec::new();
    for (z, m) in [(false, false), (true, false), (false, true), (true, true)] {
        for s in &shapes {
            out.push(Some(with_zm(s.clone(), z, m, crs)));
        }
    }
    out.push(Some(Geometry::in_crs(
        LineString::<f64>::new(vec![]).into(),
        crs,
    )));
    out.push(Some(Geometry::in_crs(
        MultiPolygon::<f64>::new(vec![]).into(),
        crs,
    )));
    out.push(Some(Geometry::in_crs(
        Point::new(f64::NAN, f64::NAN).into(),
        crs,
    )));
    out.push(None);
    out
}

fn attribute_features(geoms: Vec<Option<Geometry>>) -> Vec<Feature> {
    let schema = Schema::new([
        "name", "n", "x", "flag", "day", "at", "at_us", "local", "raw", "tags", "props", "nothing",
    ]);
    geoms
        .into_iter()
        .enumerate()
        .map(|(i, g)| {
            let i64_ = i as i64;
            Feature::new(
                i as u64,
                schema.clone(),
                vec![
                    Value::from(format!("f{i} é\"'")),
                    if i == 3 {
                        Value::Null
                    } else {
                        Value::Int(i64::MAX - i64_)
                    },
                    Value::Float(0.1 + i as f64 * 1e-17),
                    Value::Bool(i % 2 == 0),
                    Value::Date(19_000 + i as i32),
                    Value::DateTime(1_709_201_472_345_000 + i64_ * 1000),
                    Value::DateTime(1_709_201_472_345_678 + i64_),
                    Value::LocalDateTime(1_709_201_472_000_000),
                    Value::Bytes(vec![0, i as u8, 255].into()),
                    Value::Array(vec![Value::Int(1), Value::from("x")].into()),
                    Value::Map(Arc::new(
                        [("k".to_string(), Value::Float(1.5))].into_iter().collect(),
                    )),
                    Value::Null,
                ],
            )
            .with_geometry(g)
        })
        .collect()
}

#[test]
fn round_trips_every_geometry_and_attribute_type() {
    let dir = tempfile::tempdir().unwrap();
    let path = path_str(&dir.path().join("all.gpkg"));
    let features = attribute_features(all_geometries(Some(2154)));
    write_all(
        serde_json::json!({"path": path, "sample_features": 5}),
        vec![features[..3].to_vec(), features[3..].to_vec()],
    )
    .unwrap();
    let back = read_back(&path, "all");
    assert_eq!(back.len(), features.len());
    for (i, (a, b)) in features.iter().zip(&back).enumerate() {
        assert_eq!(b.get("fid"), Some(&Value::Int(i as i64 + 1)));
        match (a.geometry(), b.geometry()) {
            (None, None) => {}
            (Some(x), Some(y)) => {
                // Bit-exact: compare the WKB (NaN of the empty point included).
                let (mut wx, mut wy) = (Vec::new(), Vec::new());
                wkb::to_wkb(x, &mut wx);
                wkb::to_wkb(y, &mut wy);
                assert_eq!(wx, wy, "feature {i}: {:?} vs {:?}", x.geom, y.geom);
                assert_eq!(y.crs, Some(2154));
            }
            other => panic!("feature {i}: {other:?}"),
        }
        for name in [
            "name", "n", "x", "flag", "day", "at", "at_us", "local", "raw",
        ] {
            assert_eq!(a.get(name), b.get(name), "feature {i}, {name}");
        }
        assert_eq!(b.get("tags"), Some(&Value::from("[1,\"x\"]")), "JSON text");
        assert_eq!(b.get("props"), Some(&Value::from("{\"k\":1.5}")));
        assert_eq!(b.get("nothing"), Some(&Value::Null));
    }
    assert_eq!(
        back[0].get("day"),
        Some(&Value::Date(parse_date("2022-01-08").unwrap()))
    );
    let conn = Connection::open(dir.path().join("all.gpkg")).unwrap();
    let one = |sql: &str| -> String {
        conn.query_row(sql, [], |r| r.get::<_, rusqlite::types::Value>(0))
            .map(|v| format!("{v:?}"))
            .unwrap()
    };
    assert_eq!(one("PRAGMA application_id"), "Integer(1196444487)");
    assert_eq!(one("PRAGMA user_version"), "Integer(10300)");
    assert_eq!(
        one("SELECT at FROM \"all\" WHERE fid = 1"),
        "Text(\"2024-02-29T10:11:12.345Z\")"
    );
    assert_eq!(
        one("SELECT at_us FROM \"all\" WHERE fid = 1"),
        "Text(\"2024-02-29T10:11:12.345678Z\")"
    );
    assert_eq!(
        one("SELECT local FROM \"all\" WHERE fid = 1"),
        "Text(\"2024-02-29T10:11:12.000\")"
    );
    assert_eq!(
        one(
            "SELECT geometry_type_name || ' ' || srs_id || ' ' || z || ' ' || m FROM gpkg_geometry_columns"
        ),
        "Text(\"GEOMETRY 2154 2 2\")"
    );
    let decl = |c: &str| {
        one(&format!(
            "SELECT type FROM pragma_table_info('all') WHERE name = '{c}'"
        ))
    };
    assert_eq!(
        decl("geom"),
        "Text(\"GEOMETRY\")",
        "retyped after the sample"
    );
    assert_eq!(decl("n"), "Text(\"INTEGER\")");
    assert_eq!(decl("x"), "Text(\"REAL\")");
    assert_eq!(decl("flag"), "Text(\"BOOLEAN\")");
    assert_eq!(decl("day"), "Text(\"DATE\")");
    assert_eq!(decl("at"), "Text(\"DATETIME\")");
    assert_eq!(decl("raw"), "Text(\"BLOB\")");
    assert_eq!(decl("tags"), "Text(\"TEXT\")");
    assert_eq!(decl("nothing"), "Text(\"TEXT\")", "never a value: TEXT");
    assert_eq!(
        one("SELECT min_x || ' ' || min_y || ' ' || max_x || ' ' || max_y FROM gpkg_contents"),
        "Text(\"-0.1 -3.3 10.0 7.0e+300\")"
    );
    // The R-tree holds the non-empty geometries' envelopes (rounded outwards to f32).
    let non_empty = features
        .iter()
        .filter(|f| f.geometry().is_some_and(|g| !is_empty(&g.geom)))
        .count();
    assert_eq!(
        one("SELECT count(*) FROM rtree_all_geom"),
        format!("Integer({non_empty})")
    );
    assert_eq!(
        one("SELECT count(*) FROM rtree_all_geom WHERE minx <= -0.1 AND maxx >= -0.1 AND id = 1"),
        "Integer(1)"
    );
    assert_eq!(
        one("SELECT extension_name FROM gpkg_extensions WHERE table_name = 'all'"),
        "Text(\"gpkg_rtree_index\")"
    );
    assert_eq!(
        one(
            "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'rtree_all_geom_%'"
        ),
        "Integer(6)"
    );
    assert_eq!(
        one("SELECT srs_id FROM gpkg_spatial_ref_sys WHERE srs_id = 2154"),
        "Integer(2154)"
    );
    drop(conn);
    // GDAL 3.6's validator reads the empty flag from the wrong bit (it rejects GDAL's own
    // empty geometries, whose blobs are the same as these), so it checks the others.
    let path = path_str(&dir.path().join("non_empty.gpkg"));
    let non_empty: Vec<Feature> = features
        .into_iter()
        .filter(|f| f.geometry().is_none_or(|g| !is_empty(&g.geom)))
        .collect();
    write_all(serde_json::json!({"path": path}), vec![non_empty]).unwrap();
    validate_gpkg(&path);
}

#[test]
fn bundled_sqlite_has_rtree() {
    let conn = Connection::open_in_memory().unwrap();
    let has: bool = conn
        .query_row(
            "SELECT sqlite_compileoption_used('ENABLE_RTREE')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert!(has);
    conn.execute_batch("CREATE VIRTUAL TABLE r USING rtree(id, minx, maxx, miny, maxy)")
        .unwrap();
}

#[test]
fn mixed_columns_new_attributes_and_fids() {
    let dir = tempfile::tempdir().unwrap();
    let path = path_str(&dir.path().join("mixed.gpkg"));
    let s1 = Schema::new(["fid", "num", "mix", "late"]);
    let s2 = Schema::new(["fid", "num", "mix", "late", "extra"]);
    let features = vec![
        Feature::new(
            0,
            s1.clone(),
            vec![Value::Int(10), Value::Int(1), Value::Int(1), Value::Null],
        ),
        Feature::new(
            1,
            s1.clone(),
            vec![
                Value::Null,
                Value::Float(1.5),
                Value::from("a"),
                Value::Null,
            ],
        ),
        // After the sample: a float widened into REAL, a bool as text, the first values of
        // "late" and "extra".
        Feature::new(
            2,
            s2.clone(),
            vec![
                Value::Int(20),
                Value::Int(3),
                Value::Bool(true),
                Value::Date(1),
                Value::from("e"),
            ],
        ),
    ];
    write_all(
        serde_json::json!({"path": path, "layer": "t", "sample_features": 2}),
        vec![features],
    )
    .unwrap();
    let back = read_back(&path, "t");
    let fids: Vec<&Value> = back.iter().map(|f| f.get("fid").unwrap()).collect();
    assert_eq!(
        fids,
        [&Value::Int(10), &Value::Int(11), &Value::Int(20)],
        "fids kept"
    );
    assert_eq!(
        back[0].get("num"),
        Some(&Value::Float(1.0)),
        "int + float: REAL"
    );
    assert_eq!(back[2].get("num"), Some(&Value::Float(3.0)));
    assert_eq!(
        back[0].get("mix"),
        Some(&Value::from("1")),
        "int + string: TEXT"
    );
    assert_eq!(back[2].get("mix"), Some(&Value::from("true")));
    assert_eq!(back[2].get("late"), Some(&Value::Date(1)));
    assert_eq!(back[0].get("late"), Some(&Value::Null));
    assert_eq!(back[2].get("extra"), Some(&Value::from("e")));
    assert!(back[0].geometry().is_none());
    let conn = Connection::open(dir.path().join("mixed.gpkg")).unwrap();
    let data_type: String = conn
        .query_row("SELECT data_type FROM gpkg_contents", [], |r| r.get(0))
        .unwrap();
    assert_eq!(data_type, "attributes", "no geometry: an attribute table");
    drop(conn);
    validate_gpkg(&path);

    // A later value that fits no column fails, naming the feature and the attribute.
    let path = path_str(&dir.path().join("misfit.gpkg"));
    let s = Schema::new(["n"]);
    let e = write_all(
        serde_json::json!({"path": path, "sample_features": 1}),
        vec![
            vec![Feature::new(0, s.clone(), vec![Value::Int(1)])],
            vec![Feature::new(1, s.clone(), vec![Value::from("x")])],
        ],
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("feature 1") && e.contains("\"n\"") && e.contains("sample_features"),
        "{e}"
    );
    assert!(!Path::new(&path).exists());

    let s = Schema::new(["fid"]);
    let e = write_all(
        serde_json::json!({"path": path}),
        vec![vec![Feature::new(4, s, vec![Value::from("x")])]],
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("feature 4") && e.contains("primary key"), "{e}");
    let s = Schema::new(["Name", "name"]);
    let e = write_all(
        serde_json::json!({"path": path}),
        vec![vec![Feature::new(
            0,
            s,
            vec![Value::from("a"), Value::from("b")],
        )]],
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("differ only in case"), "{e}");
}

#[test]
fn failed_runs_leave_nothing_and_geometry_crs_must_agree() {
    let dir = tempfile::tempdir().unwrap();
    let path = path_str(&dir.path().join("x.gpkg"));
    let point = |crs| {
        Feature::from_pairs(0, [("a", Value::Int(1))]).with_geometry(Some(Geometry::in_crs(
            geo_types::Point::new(1.0, 2.0).into(),
            crs,
        )))
    };
    let e = write_all(
        serde_json::json!({"path": path, "sample_features": 1}),
        vec![vec![point(Some(4326))], vec![point(Some(3857))]],
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("EPSG:3857") && e.contains("EPSG:4326"), "{e}");
    // Aborted after finish: nothing at the target, no build file left.
    let ctx = NodeContext::standalone("t");
    let mut w = sink(serde_json::json!({"path": path}));
    w.write(0, vec![point(None)], &ctx).unwrap();
    w.finish(&ctx).unwrap();
    w.abort();
    drop(w);
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn empty_input_writes_an_empty_layer_and_memory_targets_work() {
    write_all(
        serde_json::json!({"path": "memory://gpkg_writer/empty.gpkg"}),
        vec![],
    )
    .unwrap();
    let back = read_back("memory://gpkg_writer/empty.gpkg", "empty");
    assert!(back.is_empty());
    let (all, _) = crate::sources::test_support::read_pair(
        &crate::sources::gpkg_reader::SPEC,
        serde_json::json!({"path": "memory://gpkg_writer/empty.gpkg"}),
    )
    .unwrap();
    assert!(all.is_empty());
}

#[test]
fn params_are_checked() {
    let path = |p: serde_json::Value| sluice_runtime::testing::param_error_path(&SPEC, p);
    assert_eq!(
        path(serde_json::json!({"path": "x.gpkg", "layer": "gpkg_x"})),
        "layer"
    );
    assert_eq!(
        path(serde_json::json!({"path": "x.gpkg", "fid_column": "GEOM"})),
        "geometry_column"
    );
    assert_eq!(
        path(serde_json::json!({"path": "x.gpkg", "sample_features": 0})),
        "sample_features"
    );
    assert_eq!(path(serde_json::json!({"path": "out/"})), "path");
    assert_eq!(file_stem("a/b/city.v2.gpkg"), "city.v2");
}

/// Runs a GDAL tool; its stdout, and whether stderr was free of errors and warnings.
fn gdal(tool: &str, args: &[&str]) -> (String, String) {
    let out = std::process::Command::new(tool)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs GDAL's GeoPackage validator (`validate_gpkg.py`) on a file, when GDAL's Python
/// utilities are installed (a notice otherwise); it must report nothing.
#[allow(clippy::print_stderr)]
fn validate_gpkg(path: &str) {
    // The first Python that has GDAL's bindings (a virtual environment's may not).
    for python in ["python3", "/usr/bin/python3"] {
        let Ok(out) = std::process::Command::new(python)
            .args(["-m", "osgeo_utils.samples.validate_gpkg", path])
            .output()
        else {
            continue;
        };
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        if text.contains("No module named") {
            continue;
        }
        assert!(
            out.status.success() && text.trim().is_empty(),
            "validate_gpkg: {text}"
        );
        return;
    }
    eprintln!("NOTICE: GDAL's Python utilities (osgeo_utils) not found; skipping validate_gpkg");
}

#[test]
fn gdal_reads_what_the_writer_wrote() {
    if !have_gdal() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("roads.gpkg");
    let path = path_str(&file);
    let schema = Schema::new(["name", "lanes", "width", "open", "built", "checked"]);
    let features: Vec<Feature> = (0..50)
        .map(|i| {
            let g = if i == 7 {
                None
            } else {
                Some(with_zm(
                    geo_types::LineString::from(vec![(i as f64, 0.5), (i as f64 + 1.0, 2.0)])
                        .into(),
                    true,
                    false,
                    Some(2154),
                ))
            };
            Feature::new(
                i,
                schema.clone(),
                vec![
                    Value::from(format!("r{i}")),
                    Value::Int(i as i64 % 4),
                    Value::Float(3.5),
                    Value::Bool(i % 2 == 0),
                    Value::Date(19_000),
                    Value::DateTime(1_709_201_472_345_000),
                ],
            )
            .with_geometry(g)
        })
        .collect();
    write_all(
        serde_json::json!({"path": path, "sample_features": 10}),
        vec![features],
    )
    .unwrap();
    let (info, err) = gdal("ogrinfo", &["-al", "-so", &path]);
    assert!(!err.contains("ERROR") && !err.contains("Warning"), "{err}");
    assert!(info.contains("Layer name: roads"), "{info}");
    assert!(info.contains("Geometry: 3D Line String"), "{info}");
    assert!(info.contains("Feature Count: 50"), "{info}");
    assert!(
        info.contains("Extent: (0.000000, 0.500000) - (50.000000, 2.000000)"),
        "{info}"
    );
    assert!(info.contains("ID[\"EPSG\",2154]"), "{info}");
    assert!(info.contains("FID Column = fid"), "{info}");
    assert!(info.contains("Geometry Column = geom"), "{info}");
    for field in [
        "name: String (0.0)",
        "lanes: Integer64 (0.0)",
        "width: Real (0.0)",
        "open: Integer(Boolean) (0.0)",
        "built: Date (0.0)",
        "checked: DateTime (0.0)",
    ] {
        assert!(info.contains(field), "{field} in {info}");
    }
    let (index, err) = gdal(
        "ogrinfo",
        &[&path, "-sql", "SELECT HasSpatialIndex('roads', 'geom')"],
    );
    assert!(!err.contains("ERROR"), "{err}");
    assert!(index.contains("= 1"), "{index}");
    // GDAL's own reading of a value: the datetime and the 3D coordinates.
    let (all, _) = gdal("ogrinfo", &["-al", "-where", "fid = 2", &path]);
    assert!(
        all.contains("checked (DateTime) = 2024/02/29 10:11:12.345+00"),
        "{all}"
    );
    // (GDAL 3.6 prints the first ordinate as `1.0`, others as `1`.)
    assert!(all.contains("LINESTRING Z (1"), "{all}");
    assert!(all.contains(" 0.5 100.1,2 2 101.1)"), "{all}");
    validate_gpkg(&path);
}

#[test]
fn runs_through_the_executor() {
    let dir = tempfile::tempdir().unwrap();
    let path = path_str(&dir.path().join("w.gpkg"));
    let features = attribute_features(vec![
        Some(Geometry::in_crs(
            geo_types::Point::new(1.0, 2.0).into(),
            Some(4326),
        )),
        None,
    ]);
    sluice_runtime::testing::run_sink(&SPEC, serde_json::json!({"path": path}), vec![features])
        .unwrap();
    let back = read_back(&path, "w");
    assert_eq!(back.len(), 2);
    assert_eq!(back[0].geometry().unwrap().crs, Some(4326));
}
