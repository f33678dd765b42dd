//! Tests of `shapefile_reader`: bad input (each a located error, never a panic), CRS from
//! `.prj` files, sidecar lookup, and files GDAL wrote (when `ogr2ogr` is installed).

use super::*;
use crate::sinks::shapefile_writer;
use sluice_runtime::{Geometry, Value};

fn write(path: &str, features: Vec<Feature>) {
    let ctx = NodeContext::standalone("t");
    let mut w = sluice_runtime::testing::build_sink(
        &shapefile_writer::SPEC,
        serde_json::json!({ "path": path }),
    )
    .unwrap();
    w.write(0, features, &ctx).unwrap();
    w.finish(&ctx).unwrap();
    w.commit().unwrap();
}

fn read(params: serde_json::Value) -> Result<Vec<Feature>, ActionError> {
    read_params(params)
}

fn polygons(n: u64) -> Vec<Feature> {
    (0..n)
        .map(|i| {
            let x = i as f64 * 20.0;
            let ring = geo_types::LineString::from(vec![
                (x, 0.0),
                (x, 10.0),
                (x + 10.0, 10.0),
                (x + 10.0, 0.0),
                (x, 0.0),
            ]);
            Feature::from_pairs(
                i,
                [
                    ("name", Value::from(format!("n{i}"))),
                    ("v", Value::Int(i as i64)),
                ],
            )
            .with_geometry(Some(Geometry::new(
                geo_types::Polygon::new(ring, vec![]).into(),
            )))
        })
        .collect()
}

/// A valid shapefile of `n` polygons: (.shp, .shx, .dbf) bytes.
fn valid(n: u64) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v.shp").to_string_lossy().into_owned();
    write(&path, polygons(n));
    let f = |ext: &str| std::fs::read(dir.path().join(format!("v.{ext}"))).unwrap();
    (f("shp"), f("shx"), f("dbf"))
}

fn err(r: Result<Vec<Feature>, ActionError>) -> String {
    match r {
        Ok(f) => panic!("expected an error, read {} features", f.len()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn reads_bytes_written_by_the_writer() {
    let (shp, shx, dbf) = valid(3);
    let features = read_bytes(&shp, &shx, &dbf).unwrap();
    assert_eq!(features.len(), 3);
    assert_eq!(features[2].get("name"), Some(&Value::from("n2")));
    assert_eq!(features[2].get("v"), Some(&Value::Int(2)));
}

#[test]
fn truncated_and_damaged_files_are_located_errors() {
    let (shp, shx, dbf) = valid(3);
    // Truncated in a record header, in a record's content.
    let e = err(read_bytes(&shp[..shp.len() - 136 + 4], &shx, &dbf));
    assert!(
        e.contains("t.shp: record 3") && e.contains("truncated"),
        "{e}"
    );
    let e = err(read_bytes(&shp[..shp.len() - 10], &shx, &dbf));
    assert!(
        e.contains("t.shp: record 3") && e.contains("truncated"),
        "{e}"
    );
    // Bad file code.
    let mut bad = shp.clone();
    bad[3] = 0;
    let e = err(read_bytes(&bad, &shx, &dbf));
    assert!(e.contains("t.shp") && e.contains("9994"), "{e}");
    // A record whose content length runs past the file (and the index agrees).
    let (mut big, mut big_x) = (shp.clone(), shx.clone());
    big[104..108].copy_from_slice(&0x0fff_ffffi32.to_be_bytes());
    big_x[104..108].copy_from_slice(&0x0fff_ffffi32.to_be_bytes());
    let e = err(read_bytes(&big, &big_x, &dbf));
    assert!(e.contains("record 1") && e.contains("past the end"), "{e}");
    // An absurd point count: refused before anything is allocated for it.
    let mut absurd = shp.clone();
    let at = 100 + 8 + 4 + 32 + 4;
    absurd[at..at + 4].copy_from_slice(&i32::MAX.to_le_bytes());
    let e = err(read_bytes(&absurd, &shx, &dbf));
    assert!(e.contains("record 1") && e.contains("does not fit"), "{e}");
    // A .dbf with fewer records than the .shp.
    let mut fewer = dbf.clone();
    fewer[4..8].copy_from_slice(&2u32.to_le_bytes());
    let e = err(read_bytes(&shp, &shx, &fewer));
    assert!(
        e.contains("t.dbf") && e.contains("2 records") && e.contains("3 shapes"),
        "{e}"
    );
    // A truncated .dbf and .shx.
    let e = err(read_bytes(&shp, &shx, &dbf[..dbf.len() - 3]));
    assert!(e.contains("t.dbf: record 3"), "{e}");
    let e = err(read_bytes(&shp, &shx[..shx.len() - 3], &dbf));
    assert!(e.contains("t.shx") && e.contains("entry 3"), "{e}");
    // A bad number in the table.
    let mut nan = dbf.clone();
    let last = nan.len() - 2;
    nan[last] = b'x';
    let e = err(read_bytes(&shp, &shx, &nan));
    assert!(e.contains("record 3") && e.contains("field \"v\""), "{e}");
}

#[test]
fn any_truncation_or_corruption_is_an_error_never_a_panic() {
    let (shp, shx, dbf) = valid(4);
    for cut in 0..shp.len() {
        assert!(
            read_bytes(&shp[..cut], &shx, &dbf).is_err(),
            "shp cut at {cut}"
        );
    }
    for cut in 0..shx.len() {
        assert!(
            read_bytes(&shp, &shx[..cut], &dbf).is_err(),
            "shx cut at {cut}"
        );
    }
    for cut in 0..dbf.len() - 1 {
        assert!(
            read_bytes(&shp, &shx, &dbf[..cut]).is_err(),
            "dbf cut at {cut}"
        );
    }
    // Random bytes written over the files: an error or features, never a panic.
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    for _ in 0..3000 {
        let (mut s, mut x, mut d) = (shp.clone(), shx.clone(), dbf.clone());
        for _ in 0..1 + next() % 4 {
            let target = match next() % 3 {
                0 => &mut s,
                1 => &mut x,
                _ => &mut d,
            };
            let at = (next() % target.len() as u64) as usize;
            target[at] = next() as u8;
        }
        let _ = read_bytes(&s, &x, &d);
    }
    // Pure noise.
    for len in [0usize, 7, 100, 180, 1000] {
        let noise: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        assert!(read_bytes(&noise, &noise, &noise).is_err());
    }
}

#[test]
fn missing_sidecars_are_errors_and_any_case_is_found() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.shp").to_string_lossy().into_owned();
    write(&path, polygons(2));
    // Upper-case sidecars are found.
    std::fs::rename(dir.path().join("a.dbf"), dir.path().join("a.DBF")).unwrap();
    std::fs::rename(dir.path().join("a.shx"), dir.path().join("a.Shx")).unwrap();
    assert_eq!(read(serde_json::json!({ "path": path })).unwrap().len(), 2);
    std::fs::remove_file(dir.path().join("a.Shx")).unwrap();
    let e = err(read(serde_json::json!({ "path": path })));
    assert!(e.contains("a.shp") && e.contains(".shx"), "{e}");
    write(&path, polygons(2));
    std::fs::remove_file(dir.path().join("a.dbf")).unwrap();
    std::fs::remove_file(dir.path().join("a.DBF")).unwrap();
    let e = err(read(serde_json::json!({ "path": path })));
    assert!(e.contains("a.shp") && e.contains(".dbf"), "{e}");
}

#[test]
fn crs_comes_from_the_prj_or_the_parameter() {
    for (prj, want) in [
        (
            r#"GEOGCS["GCS_WGS_1984",DATUM["D_WGS_1984",SPHEROID["WGS_1984",6378137.0,298.257223563]],PRIMEM["Greenwich",0.0],UNIT["Degree",0.0174532925199433]]"#,
            Some(4326),
        ),
        (
            r#"PROJCS["WGS_1984_Web_Mercator_Auxiliary_Sphere",GEOGCS["GCS_WGS_1984"]]"#,
            Some(3857),
        ),
        (
            r#"PROJCS["WGS_1984_UTM_Zone_33N",GEOGCS["GCS_WGS_1984"]]"#,
            Some(32633),
        ),
        (
            r#"PROJCS["WGS_1984_UTM_Zone_55S",GEOGCS["GCS_WGS_1984"]]"#,
            Some(32755),
        ),
        (
            r#"PROJCS["RGF_1993_Lambert_93",GEOGCS["GCS_RGF_1993"]]"#,
            Some(2154),
        ),
        (
            r#"GEOGCS["GCS_ETRS_1989",DATUM["D_ETRS_1989"]]"#,
            Some(4258),
        ),
        (
            r#"PROJCS["JGD_2011_Japan_Zone_9",GEOGCS["GCS_JGD_2011"]]"#,
            Some(6677),
        ),
        (
            r#"PROJCS["JGD2011 / Japan Plane Rectangular CS XIX",GEOGCS["JGD2011"]]"#,
            Some(6687),
        ),
        (
            r#"PROJCS["British_National_Grid",GEOGCS["GCS_OSGB_1936"]]"#,
            Some(27700),
        ),
        (
            r#"PROJCS["ETRS_1989_UTM_Zone_32N",GEOGCS["GCS_ETRS_1989"]]"#,
            Some(25832),
        ),
        (
            r#"PROJCS["RGF93 v1 / Lambert-93",GEOGCS["RGF93 v1"],AUTHORITY["EPSG","2154"]]"#,
            Some(2154),
        ),
        // A projection whose name sluice does not know: no CRS, never a guess from the
        // GEOGCS inside.
        (r#"PROJCS["My_Local_Grid",GEOGCS["GCS_WGS_1984"]]"#, None),
        (
            r#"PROJCS["WGS_1984_UTM_Zone_61N",GEOGCS["GCS_WGS_1984"]]"#,
            None,
        ),
    ] {
        assert_eq!(prj::epsg_of(prj), want, "{prj}");
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.shp").to_string_lossy().into_owned();
    write(&path, polygons(1));
    let crs_of = |params: serde_json::Value| read(params).unwrap()[0].geometry().unwrap().crs;
    assert_eq!(crs_of(serde_json::json!({ "path": path })), None);
    std::fs::write(
        dir.path().join("c.PRJ"),
        r#"PROJCS["JGD_2011_Japan_Zone_9",GEOGCS["GCS_JGD_2011"]]"#,
    )
    .unwrap();
    assert_eq!(crs_of(serde_json::json!({ "path": path })), Some(6677));
    assert_eq!(
        crs_of(serde_json::json!({ "path": path, "crs": 2154 })),
        Some(2154)
    );
    std::fs::write(dir.path().join("c.PRJ"), r#"PROJCS["Nowhere",GEOGCS["x"]]"#).unwrap();
    assert_eq!(crs_of(serde_json::json!({ "path": path })), None);
}

#[test]
fn deleted_records_are_skipped_and_encodings_decoded() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.shp").to_string_lossy().into_owned();
    write(&path, polygons(3));
    let dbf_path = dir.path().join("d.dbf");
    let mut dbf = std::fs::read(&dbf_path).unwrap();
    let header_len = u16::from_le_bytes([dbf[8], dbf[9]]) as usize;
    let record_len = u16::from_le_bytes([dbf[10], dbf[11]]) as usize;
    dbf[header_len + record_len] = b'*';
    std::fs::write(&dbf_path, &dbf).unwrap();
    let back = read(serde_json::json!({ "path": path })).unwrap();
    let names: Vec<_> = back.iter().map(|f| f.get("name").cloned()).collect();
    assert_eq!(names, [Some(Value::from("n0")), Some(Value::from("n2"))]);

    // No .cpg, language driver 0, and a Latin-1 byte: read as windows-1252.
    std::fs::remove_file(dir.path().join("d.cpg")).unwrap();
    dbf[header_len + 1] = 0xe9; // "é" in Latin-1, over "n" of record 1
    std::fs::write(&dbf_path, &dbf).unwrap();
    let back = read(serde_json::json!({ "path": path })).unwrap();
    assert_eq!(back[0].get("name"), Some(&Value::from("é0")));
    // The language driver says code page 437: 0x82 is "é" there.
    dbf[29] = 0x01;
    dbf[header_len + 1] = 0x82;
    std::fs::write(&dbf_path, &dbf).unwrap();
    let back = read(serde_json::json!({ "path": path })).unwrap();
    assert_eq!(back[0].get("name"), Some(&Value::from("é0")));
    // A .cpg naming an unknown encoding is an error naming it.
    std::fs::write(dir.path().join("d.cpg"), "klingon").unwrap();
    let e = err(read(serde_json::json!({ "path": path })));
    assert!(e.contains("d.cpg") && e.contains("klingon"), "{e}");
    // And so is an unknown encoding parameter.
    assert!(read(serde_json::json!({ "path": path, "encoding": "klingon" })).is_err());
}

// ---------------------------------------------------------------------------------------------
// Files GDAL wrote
// ---------------------------------------------------------------------------------------------

fn ogr2ogr(args: &[&str]) {
    let out = std::process::Command::new("ogr2ogr")
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "ogr2ogr {args:?}: {out:?}");
}

#[test]
fn reads_what_ogr2ogr_wrote_plain_shift_jis_and_zipped() {
    if !shapefile_writer::tests::gdal() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let d = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    let geojson = r#"{"type":"FeatureCollection","features":[
      {"type":"Feature","properties":{"name":"東京","n":1,"x":1.5,"day":"2024-01-02"},
       "geometry":{"type":"Polygon","coordinates":[[[0,0],[10,0],[10,10],[0,10],[0,0]],[[2,2],[2,4],[4,4],[4,2],[2,2]]]}},
      {"type":"Feature","properties":{"name":"大阪","n":2,"x":null,"day":null},
       "geometry":{"type":"MultiPolygon","coordinates":[[[[20,0],[30,0],[30,10],[20,10],[20,0]]],[[[40,0],[50,0],[50,10],[40,10],[40,0]]]]}},
      {"type":"Feature","properties":{"name":"札幌","n":3,"x":-2.25,"day":"1999-12-31"},"geometry":null}
    ]}"#;
    std::fs::write(d("in.geojson"), geojson).unwrap();
    ogr2ogr(&[
        "-f",
        "ESRI Shapefile",
        &d("plain.shp"),
        &d("in.geojson"),
        "-a_srs",
        "EPSG:6677",
        "-lco",
        "ENCODING=UTF-8",
    ]);
    ogr2ogr(&[
        "-f",
        "ESRI Shapefile",
        &d("sjis.shp"),
        &d("in.geojson"),
        "-lco",
        "ENCODING=CP932",
    ]);
    ogr2ogr(&[
        "-f",
        "ESRI Shapefile",
        &d("zipped.shp.zip"),
        &d("in.geojson"),
        "-lco",
        "ENCODING=UTF-8",
    ]);
    let check = |features: Vec<Feature>, crs: Option<u32>| {
        assert_eq!(features.len(), 3);
        let names: Vec<_> = features[0]
            .schema()
            .names()
            .iter()
            .map(|n| n.to_string())
            .collect();
        assert_eq!(names, ["name", "n", "x", "day"]);
        assert_eq!(features[0].get("name"), Some(&Value::from("東京")));
        assert_eq!(features[1].get("name"), Some(&Value::from("大阪")));
        assert_eq!(features[2].get("n"), Some(&Value::Int(3)));
        assert_eq!(features[2].get("x"), Some(&Value::Float(-2.25)));
        assert_eq!(features[1].get("x"), Some(&Value::Null));
        assert_eq!(features[0].get("day"), Some(&Value::Date(19_724)));
        let g = features[0].geometry().unwrap();
        assert_eq!(g.crs, crs);
        match &g.geom {
            geo_types::Geometry::Polygon(p) => assert_eq!(p.interiors().len(), 1),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            features[1].geometry().unwrap().geom,
            geo_types::Geometry::MultiPolygon(ref m) if m.0.len() == 2
        ));
        assert!(features[2].geometry().is_none());
    };
    check(
        read(serde_json::json!({ "path": d("plain.shp") })).unwrap(),
        Some(6677),
    );
    let cpg = std::fs::read_to_string(d("sjis.cpg")).unwrap_or_default();
    check(
        read(serde_json::json!({ "path": d("sjis.shp") })).unwrap(),
        Some(4326),
    );
    // Without the .cpg, through the language driver or the parameter.
    let _ = std::fs::remove_file(d("sjis.cpg"));
    check(
        read(serde_json::json!({ "path": d("sjis.shp"), "encoding": "Shift_JIS" })).unwrap(),
        Some(4326),
    );
    let _ = cpg;
    // A zip: the whole archive, a member, a member glob.
    for path in [
        d("zipped.shp.zip"),
        // GDAL names the members after the layer: the source's name.
        format!("{}!/in.shp", d("zipped.shp.zip")),
        format!("{}!/*.shp", d("zipped.shp.zip")),
    ] {
        check(
            read(serde_json::json!({ "path": path })).unwrap(),
            Some(4326),
        );
    }
    // No member matches: an error naming the archive.
    let e = err(read(
        serde_json::json!({ "path": format!("{}!/*.nope", d("zipped.shp.zip")) }),
    ));
    assert!(e.contains("zipped.shp.zip"), "{e}");
}

#[test]
fn validation_reads_the_fields_and_crs_from_the_sidecars() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shape.shp").to_string_lossy().into_owned();
    let f = Feature::from_pairs(
        0,
        [
            ("name", Value::from("Zoë")),
            ("n", Value::Int(1)),
            ("x", Value::Float(0.5)),
            ("ok", Value::Bool(true)),
            ("day", Value::Date(3)),
        ],
    )
    .with_geometry(Some(Geometry::in_crs(
        geo_types::Point::new(1.0, 2.0).into(),
        Some(2154),
    )));
    write(&path, vec![f]);
    let outputs = ["default".to_string()];
    let shapes = sluice_runtime::testing::predict(
        &SPEC,
        &serde_json::json!({ "path": path }),
        &[],
        &outputs,
    );
    let s = &shapes[0];
    assert!(!s.open);
    let got: Vec<(&str, Type)> = s.attributes.iter().map(|(n, t)| (n.as_str(), *t)).collect();
    assert_eq!(
        got,
        [
            ("name", Type::String),
            ("n", Type::Any),
            ("x", Type::Float),
            ("ok", Type::Bool),
            ("day", Type::Date)
        ]
    );
    assert_eq!(s.geometry, GeometryShape::Present { crs: Some(2154) });
    // The parameter wins; a path that cannot be peeked at stays open.
    let params = serde_json::json!({ "path": path, "crs": 4326 });
    let shapes = sluice_runtime::testing::predict(&SPEC, &params, &[], &outputs);
    assert_eq!(
        shapes[0].geometry,
        GeometryShape::Present { crs: Some(4326) }
    );
    let params = serde_json::json!({ "path": "memory://nowhere/x.shp" });
    assert!(sluice_runtime::testing::predict(&SPEC, &params, &[], &outputs)[0].open);
}

#[test]
fn slices_share_out_shapefiles_by_index_and_read_one_in_the_first() {
    use crate::sources::test_support::{assert_slices_make_the_whole, read_slice};
    use sluice_runtime::Slice;
    let dir = tempfile::tempdir().unwrap();
    for (name, n) in [("a", 3), ("b", 1), ("c", 5)] {
        let path = dir.path().join(format!("{name}.shp"));
        write(&path.to_string_lossy(), polygons(n));
    }
    let folder = dir.path().to_string_lossy().into_owned();
    let (all, _) =
        assert_slices_make_the_whole(&SPEC, serde_json::json!({ "path": folder }), 1..=5);
    assert_eq!(all.len(), 9);
    let one = dir.path().join("c.shp").to_string_lossy().into_owned();
    let params = serde_json::json!({ "path": one });
    assert_slices_make_the_whole(&SPEC, params.clone(), 1..=3);
    let (first, _) = read_slice(&SPEC, params.clone(), Slice::new(0, 2).unwrap()).unwrap();
    let (second, _) = read_slice(&SPEC, params, Slice::new(1, 2).unwrap()).unwrap();
    assert_eq!((first.len(), second.len()), (5, 0));
}
