//! Tests of `gpkg_reader`.

use super::*;
use crate::sources::test_support::{put, read_pair};
use sluice_runtime::feature::Ordinates;

fn read(params: serde_json::Value) -> Result<(Vec<Feature>, Vec<Feature>), ActionError> {
    read_pair(&SPEC, params)
}

/// A GeoPackage built by hand with SQL (not by `gpkg_writer`), so the reader is checked
/// against the format and not against the writer.
fn handmade(path: &Path, extra_sql: &str) {
    let conn = Connection::open(path).unwrap();
    conn.execute_batch(&format!(
        "PRAGMA application_id = 1196444487;
         CREATE TABLE gpkg_spatial_ref_sys (srs_name TEXT NOT NULL, srs_id INTEGER NOT NULL PRIMARY KEY, organization TEXT NOT NULL, organization_coordsys_id INTEGER NOT NULL, definition TEXT NOT NULL, description TEXT);
         INSERT INTO gpkg_spatial_ref_sys VALUES ('u', -1, 'NONE', -1, 'undefined', NULL), ('u', 0, 'NONE', 0, 'undefined', NULL),
           ('Lambert', 2154, 'EPSG', 2154, 'undefined', NULL),
           ('custom', 100000, 'NONE', 100000, 'PROJCS[\"x\",GEOGCS[\"y\"],AUTHORITY[\"EPSG\",\"3857\"]]', NULL),
           ('nothing', 100001, 'ACME', 7, 'LOCAL_CS[\"nowhere\"]', NULL);
         CREATE TABLE gpkg_contents (table_name TEXT NOT NULL PRIMARY KEY, data_type TEXT NOT NULL, identifier TEXT, srs_id INTEGER);
         CREATE TABLE gpkg_geometry_columns (table_name TEXT NOT NULL, column_name TEXT NOT NULL, geometry_type_name TEXT NOT NULL, srs_id INTEGER NOT NULL, z TINYINT NOT NULL, m TINYINT NOT NULL);
         CREATE TABLE typed (fid INTEGER PRIMARY KEY, b BOOLEAN, t TINYINT, s SMALLINT, mi MEDIUMINT, i INT, n INTEGER,
            f FLOAT, d DOUBLE, r REAL, txt TEXT(20), bl BLOB, day DATE, at DATETIME, other BLOBBY, shape POINT);
         INSERT INTO gpkg_contents VALUES ('typed', 'features', 'typed', 2154);
         INSERT INTO gpkg_geometry_columns VALUES ('typed', 'shape', 'POINT', 2154, 0, 0);
         {extra_sql}"
    ))
    .unwrap();
}

/// A GeoPackage blob of a geometry (header without envelope, big-endian srs_id to check
/// the byte-order flag is honoured), made here rather than by the writer.
fn blob(g: &Geometry) -> Vec<u8> {
    let mut b = vec![b'G', b'P', 0, 0];
    b.extend_from_slice(&2154i32.to_be_bytes());
    wkb::to_wkb(g, &mut b);
    b
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02X}")).collect()
}

fn path_str(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

#[test]
fn declared_types_map_to_values_and_misfits_are_kept_as_stored() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("t.gpkg");
    let p = Geometry::new(geo_types::Point::new(1.5, -2.25).into());
    handmade(
        &file,
        &format!(
            "INSERT INTO typed VALUES (2, 1, 7, -8, 9, 10, 9007199254740993, 1.5, 2.5, 3, 'héllo', X'0001FF', '2024-02-29',
               '2024-02-29T10:11:12.345Z', 'v', X'{g}');
             INSERT INTO typed VALUES (1, 0, NULL, NULL, NULL, NULL, 'not a number', 4, NULL, NULL, 12, NULL, 'someday',
               '2024-02-29T10:11:12', 3.5, NULL);
             INSERT INTO typed VALUES (3, 2, NULL, NULL, NULL, NULL, 1.5, NULL, NULL, NULL, NULL, 'text', NULL, '2024-01-01T00:00:00+02:00', X'01', NULL);",
            g = hex(&blob(&p))
        ),
    );
    let (ok, rejected) =
        read(serde_json::json!({"path": path_str(&file), "layer": "typed"})).unwrap();
    assert!(rejected.is_empty());
    assert_eq!(ok.len(), 3);
    let names: Vec<&str> = ok[0].schema().names().iter().map(|n| &**n).collect();
    assert_eq!(
        names,
        [
            "fid", "b", "t", "s", "mi", "i", "n", "f", "d", "r", "txt", "bl", "day", "at", "other"
        ],
        "fid kept, geometry column left out, no layer attribute for a single layer"
    );
    // Emitted in fid order, whatever the insertion order.
    let fids: Vec<&Value> = ok.iter().map(|f| f.get("fid").unwrap()).collect();
    assert_eq!(fids, [&Value::Int(1), &Value::Int(2), &Value::Int(3)]);
    let f = &ok[1];
    assert_eq!(f.get("b"), Some(&Value::Bool(true)));
    assert_eq!(f.get("t"), Some(&Value::Int(7)));
    assert_eq!(f.get("s"), Some(&Value::Int(-8)));
    assert_eq!(f.get("mi"), Some(&Value::Int(9)));
    assert_eq!(f.get("i"), Some(&Value::Int(10)));
    assert_eq!(f.get("n"), Some(&Value::Int(9_007_199_254_740_993)));
    assert_eq!(f.get("f"), Some(&Value::Float(1.5)));
    assert_eq!(f.get("d"), Some(&Value::Float(2.5)));
    assert_eq!(
        f.get("r"),
        Some(&Value::Float(3.0)),
        "an int in a REAL column"
    );
    assert_eq!(f.get("txt"), Some(&Value::from("héllo")));
    assert_eq!(f.get("bl"), Some(&Value::Bytes(vec![0, 1, 255].into())));
    assert_eq!(
        f.get("day"),
        Some(&Value::Date(parse_date("2024-02-29").unwrap()))
    );
    assert_eq!(
        f.get("at"),
        Some(&Value::DateTime(
            parse_zoned_datetime("2024-02-29T10:11:12.345Z").unwrap()
        ))
    );
    assert_eq!(f.get("other"), Some(&Value::from("v")));
    let g = f.geometry().unwrap();
    assert_eq!(g.geom, p.geom);
    assert_eq!(g.crs, Some(2154));

    let f = &ok[0];
    assert_eq!(f.get("b"), Some(&Value::Bool(false)));
    assert_eq!(f.get("t"), Some(&Value::Null));
    // Values that contradict the declared type are kept as stored.
    assert_eq!(f.get("n"), Some(&Value::from("not a number")));
    assert_eq!(
        f.get("f"),
        Some(&Value::Float(4.0)),
        "FLOAT affinity stored 4.0"
    );
    assert_eq!(
        f.get("txt"),
        Some(&Value::from("12")),
        "TEXT affinity stored '12'"
    );
    assert_eq!(f.get("day"), Some(&Value::from("someday")));
    assert_eq!(
        f.get("at"),
        Some(&Value::LocalDateTime(
            parse_local_datetime("2024-02-29T10:11:12").unwrap()
        )),
        "a DATETIME without a zone is a local datetime"
    );
    assert_eq!(f.get("other"), Some(&Value::Float(3.5)));
    assert!(f.geometry().is_none(), "NULL geometry");

    let f = &ok[2];
    assert_eq!(f.get("b"), Some(&Value::Int(2)), "2 is no boolean: kept");
    assert_eq!(
        f.get("n"),
        Some(&Value::Float(1.5)),
        "a real in an INTEGER column: kept"
    );
    assert_eq!(f.get("bl"), Some(&Value::from("text")));
    assert_eq!(
        f.get("at"),
        Some(&Value::DateTime(
            parse_zoned_datetime("2023-12-31T22:00:00Z").unwrap()
        ))
    );
    assert_eq!(f.get("other"), Some(&Value::Bytes(vec![1].into())));
}

#[test]
fn srs_comes_from_the_file_unless_the_crs_parameter_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let p = Geometry::new(geo_types::Point::new(1.0, 2.0).into());
    let cases: [(i64, Option<u32>); 4] = [
        (2154, Some(2154)),
        (0, None),
        (-1, None),
        (100000, Some(3857)),
    ];
    for (srs, expected) in cases {
        let file = dir.path().join(format!("srs{srs}.gpkg"));
        handmade(
            &file,
            &format!(
                "UPDATE gpkg_geometry_columns SET srs_id = {srs};
                 INSERT INTO typed (fid, shape) VALUES (1, X'{}');",
                hex(&blob(&p))
            ),
        );
        let (ok, _) = read(serde_json::json!({"path": path_str(&file)})).unwrap();
        assert_eq!(ok[0].geometry().unwrap().crs, expected, "srs_id {srs}");
        assert_eq!(ok[0].get("layer"), Some(&Value::from("typed")));
        let (ok, _) =
            read(serde_json::json!({"path": path_str(&file), "layer_attribute": null})).unwrap();
        assert_eq!(ok[0].get("layer"), None, "layer_attribute: null adds none");
        let (ok, _) =
            read(serde_json::json!({"path": path_str(&file), "crs": "EPSG:32631"})).unwrap();
        assert_eq!(ok[0].geometry().unwrap().crs, Some(32631));
    }
    let file = dir.path().join("unknown.gpkg");
    handmade(
        &file,
        "UPDATE gpkg_geometry_columns SET srs_id = 100001; INSERT INTO typed (fid) VALUES (1);",
    );
    let e = read(serde_json::json!({"path": path_str(&file)}))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("unknown.gpkg") && e.contains("typed") && e.contains("`crs`"),
        "{e}"
    );
    let (ok, _) = read(serde_json::json!({"path": path_str(&file), "crs": 4326})).unwrap();
    assert_eq!(ok.len(), 1);
}

#[test]
fn corrupt_blobs_are_rejected_with_their_location() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.gpkg");
    let good = blob(&Geometry::new(geo_types::Point::new(1.0, 2.0).into()));
    let mut truncated = good.clone();
    truncated.truncate(good.len() - 3);
    handmade(
        &file,
        &format!(
            "INSERT INTO typed (fid, i, shape) VALUES (1, 1, X'{}'), (2, 2, X'{}'), (3, 3, 'text'), (4, 4, X'4750'), (5, 5, X'{}');",
            hex(&good),
            hex(&truncated),
            hex(b"XX\0\x01\0\0\0\0\x01\x01\0\0\0")
        ),
    );
    let (ok, rejected) = read(serde_json::json!({"path": path_str(&file)})).unwrap();
    assert_eq!(ok.len(), 1);
    assert_eq!(rejected.len(), 4);
    let reasons: Vec<String> = rejected
        .iter()
        .map(|f| f.get(REJECTION_REASON).unwrap().to_string())
        .collect();
    for (r, fid) in reasons.iter().zip([2, 3, 4, 5]) {
        assert!(
            r.contains("bad.gpkg")
                && r.contains("layer \"typed\"")
                && r.contains(&format!("fid {fid}: geometry")),
            "{r}"
        );
    }
    assert!(reasons[0].contains("wkb truncated"), "{}", reasons[0]);
    assert!(reasons[1].contains("text"), "{}", reasons[1]);
    assert!(reasons[2].contains("shorter than"), "{}", reasons[2]);
    assert!(reasons[3].contains("magic"), "{}", reasons[3]);
    assert_eq!(
        rejected[0].get("i"),
        Some(&Value::Int(2)),
        "attributes kept"
    );
    assert_eq!(rejected[0].get("layer"), Some(&Value::from("typed")));
}

#[test]
fn blob_headers_are_checked_and_fuzzed_bytes_never_panic() {
    let z =
        Geometry::new(geo_types::LineString::from(vec![(0.0, 0.0), (1.0, 1.0), (2.0, 0.5)]).into())
            .with_ordinates(Ordinates {
                z: Some(vec![1.0, 2.0, 3.0]),
                m: Some(vec![4.0, 5.0, 6.0]),
            })
            .unwrap();
    let mut good = Vec::new();
    crate::sinks::gpkg_writer::encode_geometry(&z, 4326, &mut good);
    let header = blob_header(&good).unwrap();
    assert_eq!(header.envelope, 2, "xyz envelope (see encode_geometry)");
    assert_eq!(header.len, 8 + 48);
    assert_eq!(header.srs_id, 4326);
    assert!(!header.empty);
    assert_eq!(decode_geometry(&good).unwrap(), z);
    // An xyzm envelope (64 bytes), big-endian header, empty flag.
    let mut zm = vec![b'G', b'P', 0, (4 << 1) | 0x10];
    zm.extend_from_slice(&(-1i32).to_be_bytes());
    zm.extend_from_slice(&[0; 64]);
    wkb::to_wkb(&z, &mut zm);
    let header = blob_header(&zm).unwrap();
    assert_eq!(
        (header.envelope, header.len, header.srs_id, header.empty),
        (4, 72, -1, true)
    );
    assert_eq!(decode_geometry(&zm).unwrap(), z);

    let mut bad = good.clone();
    bad[2] = 1;
    assert!(decode_geometry(&bad).unwrap_err().contains("version"));
    let mut bad = good.clone();
    bad[3] |= 0x20;
    assert!(decode_geometry(&bad).unwrap_err().contains("extended"));
    let mut bad = good.clone();
    bad[3] = (bad[3] & !0x0E) | (5 << 1);
    assert!(
        decode_geometry(&bad)
            .unwrap_err()
            .contains("envelope code 5")
    );

    // Every truncation, and many one-byte and random corruptions: errors or geometries,
    // never a panic.
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for n in 0..good.len() {
        assert!(decode_geometry(&good[..n]).is_err(), "truncated to {n}");
    }
    for _ in 0..20_000 {
        let mut b = good.clone();
        for _ in 0..(next() % 4 + 1) {
            let i = (next() as usize) % b.len();
            b[i] = next() as u8;
        }
        let _ = decode_geometry(&b);
        let len = (next() as usize) % 100;
        let random: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        let _ = decode_geometry(&random);
        let mut gp = b"GP\0".to_vec();
        gp.extend_from_slice(&random);
        let _ = decode_geometry(&gp);
    }
}

#[test]
fn bad_files_fail_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("text.gpkg");
    std::fs::write(&text, b"this is not a database, not even close ................................................................................................").unwrap();
    let e = read(serde_json::json!({"path": path_str(&text)}))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("text.gpkg") && e.contains("not a GeoPackage"),
        "{e}"
    );

    let plain = dir.path().join("plain.gpkg");
    Connection::open(&plain)
        .unwrap()
        .execute_batch("CREATE TABLE t (a INTEGER)")
        .unwrap();
    let e = read(serde_json::json!({"path": path_str(&plain)}))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("plain.gpkg") && e.contains("without a gpkg_contents"),
        "{e}"
    );

    let missing = dir.path().join("missing.gpkg");
    let e = read(serde_json::json!({"path": path_str(&missing)}))
        .unwrap_err()
        .to_string();
    assert!(e.contains("missing.gpkg"), "{e}");
    assert!(!missing.exists(), "SQLite did not create it");

    let file = dir.path().join("layers.gpkg");
    handmade(
        &file,
        "CREATE TABLE notes (fid INTEGER PRIMARY KEY, note TEXT);
         INSERT INTO gpkg_contents VALUES ('notes', 'attributes', 'notes', NULL);
         INSERT INTO notes VALUES (1, 'hi');",
    );
    let e = read(serde_json::json!({"path": path_str(&file), "layer": "roads"}))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("layers.gpkg")
            && e.contains("no layer \"roads\"")
            && e.contains("\"typed\"")
            && e.contains("\"notes\""),
        "{e}"
    );
    // An attribute table is read when named (no geometry), not by default.
    let (ok, _) = read(serde_json::json!({"path": path_str(&file), "layer": ["notes"]})).unwrap();
    assert_eq!(ok.len(), 1);
    assert_eq!(ok[0].get("note"), Some(&Value::from("hi")));
    assert_eq!(
        ok[0].get("layer"),
        Some(&Value::from("notes")),
        "a list adds the layer"
    );
    assert!(ok[0].geometry().is_none());
    let (ok, _) = read(serde_json::json!({"path": path_str(&file)})).unwrap();
    assert!(
        ok.is_empty(),
        "only feature layers by default; typed is empty"
    );
    // The layer attribute cannot hide a column.
    let e = read(
        serde_json::json!({"path": path_str(&file), "layer": "notes", "layer_attribute": "note"}),
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("layer_attribute"), "{e}");
}

#[test]
fn reads_from_memory_through_a_local_copy() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("m.gpkg");
    let p = Geometry::new(geo_types::Point::new(3.0, 4.0).into());
    handmade(
        &file,
        &format!(
            "INSERT INTO typed (fid, shape) VALUES (7, X'{}');",
            hex(&blob(&p))
        ),
    );
    put(
        "memory://gpkg_reader/m.gpkg",
        &std::fs::read(&file).unwrap(),
    );
    let (ok, _) = read(serde_json::json!({"path": "memory://gpkg_reader/m.gpkg", "layer": "typed", "layer_attribute": "from"})).unwrap();
    assert_eq!(ok.len(), 1);
    assert_eq!(ok[0].get("fid"), Some(&Value::Int(7)));
    assert_eq!(ok[0].get("from"), Some(&Value::from("typed")));
    assert_eq!(ok[0].geometry().unwrap().geom, p.geom);
}

/// Whether GDAL's command line tools are here; prints a notice when not.
#[allow(clippy::print_stderr)]
pub(crate) fn have_gdal() -> bool {
    let ok = std::process::Command::new("ogrinfo")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("NOTICE: ogrinfo/ogr2ogr not found; skipping the GDAL cross-check");
    }
    ok
}

#[test]
fn reads_every_layer_of_a_gdal_file_or_one() {
    if !have_gdal() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.geojson");
    let b = dir.path().join("b.geojson");
    std::fs::write(&a, r#"{"type":"FeatureCollection","features":[
        {"type":"Feature","properties":{"name":"one","n":1,"x":0.1,"ok":true,"day":"2024-02-29","at":"2024-02-29T10:11:12Z"},"geometry":{"type":"Point","coordinates":[0.1,0.2]}},
        {"type":"Feature","properties":{"name":"two","n":2,"x":null,"ok":false,"day":null,"at":null},"geometry":{"type":"Point","coordinates":[1.0000000000000002,3.3]}}]}"#).unwrap();
    std::fs::write(&b, r#"{"type":"FeatureCollection","features":[
        {"type":"Feature","properties":{"kind":"road"},"geometry":{"type":"LineString","coordinates":[[0,0,1],[1,1,2]]}}]}"#).unwrap();
    let m = dir.path().join("m.gpkg");
    let run = |args: &[&str]| {
        let out = std::process::Command::new("ogr2ogr")
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(&["-f", "GPKG", &path_str(&m), &path_str(&a), "-nln", "a"]);
    run(&[
        "-update",
        "-f",
        "GPKG",
        &path_str(&m),
        &path_str(&b),
        "-nln",
        "b",
    ]);

    let (ok, rejected) = read(serde_json::json!({"path": path_str(&m)})).unwrap();
    assert!(rejected.is_empty());
    assert_eq!(ok.len(), 3);
    let layers: Vec<&Value> = ok.iter().map(|f| f.get("layer").unwrap()).collect();
    assert_eq!(
        layers,
        [&Value::from("a"), &Value::from("a"), &Value::from("b")]
    );
    let f = &ok[0];
    assert_eq!(f.get("fid"), Some(&Value::Int(1)));
    assert_eq!(f.get("name"), Some(&Value::from("one")));
    assert_eq!(f.get("n"), Some(&Value::Int(1)));
    assert_eq!(f.get("x"), Some(&Value::Float(0.1)));
    assert_eq!(f.get("ok"), Some(&Value::Bool(true)));
    assert_eq!(
        f.get("day"),
        Some(&Value::Date(parse_date("2024-02-29").unwrap()))
    );
    assert_eq!(
        f.get("at"),
        Some(&Value::DateTime(
            parse_zoned_datetime("2024-02-29T10:11:12Z").unwrap()
        ))
    );
    let g = f.geometry().unwrap();
    assert_eq!(g.crs, Some(4326));
    assert_eq!(g.geom, geo_types::Point::new(0.1, 0.2).into());
    assert_eq!(
        ok[1].geometry().unwrap().geom,
        geo_types::Point::new(1.0000000000000002, 3.3).into(),
        "coordinates bit-exact"
    );
    let line = ok[2].geometry().unwrap();
    assert_eq!(line.z(), Some(&[1.0, 2.0][..]));
    assert_eq!(ok[2].get("kind"), Some(&Value::from("road")));

    let (only_b, _) = read(serde_json::json!({"path": path_str(&m), "layer": "b"})).unwrap();
    assert_eq!(only_b.len(), 1);
    assert_eq!(
        only_b[0].get("layer"),
        None,
        "one named layer: no layer attribute"
    );
    let (both, _) = read(serde_json::json!({"path": path_str(&m), "layer": ["b", "a"]})).unwrap();
    let layers: Vec<&Value> = both.iter().map(|f| f.get("layer").unwrap()).collect();
    assert_eq!(
        layers,
        [&Value::from("b"), &Value::from("a"), &Value::from("a")],
        "in the order asked"
    );
}

#[test]
fn runs_through_the_executor() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("x.gpkg");
    handmade(&file, "INSERT INTO typed (fid, i) VALUES (1, 5), (2, 6);");
    let out = sluice_runtime::testing::run_source(
        &SPEC,
        serde_json::json!({"path": path_str(dir.path())}),
    )
    .unwrap();
    assert_eq!(out.port("default").len(), 2);
    assert_eq!(out.port("default")[1].get("i"), Some(&Value::Int(6)));
}

#[test]
fn validation_types_the_columns_from_the_table_definition() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("t.gpkg");
    handmade(&file, "");
    let outputs = ["default".to_string(), "rejected".to_string()];
    let predict =
        |params: serde_json::Value| sluice_runtime::testing::predict(&SPEC, &params, &[], &outputs);
    let shapes = predict(serde_json::json!({ "path": path_str(&file) }));
    let s = &shapes[0];
    assert!(!s.open);
    let got: Vec<(&str, Type)> = s.attributes.iter().map(|(n, t)| (n.as_str(), *t)).collect();
    use Type as T;
    assert_eq!(
        got,
        [
            ("fid", T::Int),
            ("b", T::Bool),
            ("t", T::Int),
            ("s", T::Int),
            ("mi", T::Int),
            ("i", T::Int),
            ("n", T::Int),
            ("f", T::Float),
            ("d", T::Float),
            ("r", T::Float),
            ("txt", T::String),
            ("bl", T::Bytes),
            ("day", T::Date),
            ("at", T::Any),
            ("other", T::Any),
            ("layer", T::String),
        ]
    );
    assert_eq!(s.geometry, GeometryShape::Present { crs: Some(2154) });
    assert!(shapes[1].get(REJECTION_REASON).is_some());
    // One layer named: no layer attribute; a file that is not there stays open (the run
    // says why).
    let shapes = predict(serde_json::json!({ "path": path_str(&file), "layer": "typed" }));
    assert!(shapes[0].get("layer").is_none());
    let shapes = predict(serde_json::json!({ "path": path_str(&dir.path().join("none.gpkg")) }));
    assert!(shapes[0].open);
}

#[test]
fn slices_share_out_geopackages_by_index_and_read_one_in_the_first() {
    use crate::sources::test_support::{assert_slices_make_the_whole, read_slice};
    use sluice_runtime::Slice;
    let dir = tempfile::tempdir().unwrap();
    for (name, n) in [("a", 2), ("b", 0), ("c", 4)] {
        let inserts: String = (0..n)
            .map(|i| {
                let p = Geometry::new(geo_types::Point::new(i as f64, 1.0).into());
                format!(
                    "INSERT INTO typed (fid, i, shape) VALUES ({}, {i}, X'{}');",
                    i + 1,
                    hex(&blob(&p))
                )
            })
            .collect();
        handmade(&dir.path().join(format!("{name}.gpkg")), &inserts);
    }
    let params = serde_json::json!({ "path": path_str(dir.path()), "layer": "typed" });
    let (all, _) = assert_slices_make_the_whole(&SPEC, params, 1..=5);
    assert_eq!(all.len(), 6);
    let one = path_str(&dir.path().join("c.gpkg"));
    let params = serde_json::json!({ "path": one, "layer": "typed" });
    assert_slices_make_the_whole(&SPEC, params.clone(), 1..=3);
    let (first, _) = read_slice(&SPEC, params.clone(), Slice::new(0, 2).unwrap()).unwrap();
    let (second, _) = read_slice(&SPEC, params, Slice::new(1, 2).unwrap()).unwrap();
    assert_eq!((first.len(), second.len()), (4, 0));
}
