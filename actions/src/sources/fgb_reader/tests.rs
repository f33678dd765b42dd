//! Tests of `fgb_reader`: bbox selection through the index, bytes read, files GDAL wrote,
//! and bad files.

use super::*;
use crate::sources::test_support::read_pair;
use flatbuffers::FlatBufferBuilder;
use geo_types::{Geometry as G, LineString, Polygon, point};
use std::io::Cursor;
use std::sync::atomic::{AtomicU64, Ordering};

/// Writes features with `fgb_writer`.
fn write_fgb(path: &str, extra: serde_json::Value, features: Vec<Feature>) {
    let mut params = serde_json::json!({ "path": path });
    if let (Some(p), Some(e)) = (params.as_object_mut(), extra.as_object()) {
        p.extend(e.clone());
    }
    let ctx = NodeContext::standalone("t");
    let mut w =
        sluice_runtime::testing::build_sink(&crate::sinks::fgb_writer::SPEC, params).unwrap();
    for chunk in features.chunks(1000) {
        w.write(0, chunk.to_vec(), &ctx).unwrap();
    }
    w.finish(&ctx).unwrap();
    w.commit().unwrap();
}

fn read(params: serde_json::Value) -> Result<(Vec<Feature>, Vec<Feature>), ActionError> {
    read_pair(&SPEC, params)
}

/// The `n` attributes of features, sorted.
fn ns(features: &[Feature]) -> Vec<i64> {
    let mut v: Vec<i64> = features
        .iter()
        .map(|f| f.get("n").and_then(Value::as_i64).unwrap())
        .collect();
    v.sort_unstable();
    v
}

/// A deterministic pseudo-random sequence in [0, 1).
struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Points, short lines and small polygons over [0, 1000]², every 50th without geometry.
fn mixed_features(n: usize, seed: u64) -> Vec<Feature> {
    let mut rng = Lcg(seed);
    (0..n)
        .map(|i| {
            let (x, y) = (rng.next() * 1000.0, rng.next() * 1000.0);
            let (w, h) = (rng.next() * 20.0, rng.next() * 20.0);
            let shape: Option<G<f64>> = match i % 50 {
                0 => None,
                k if k % 3 == 0 => Some(point!(x: x, y: y).into()),
                k if k % 3 == 1 => {
                    Some(LineString::from(vec![(x, y), (x + w, y + h), (x + w, y)]).into())
                }
                _ => Some(
                    Polygon::new(
                        LineString::from(vec![(x, y), (x + w, y), (x + w, y + h), (x, y)]),
                        vec![],
                    )
                    .into(),
                ),
            };
            Feature::from_pairs(i as u64, [("n", Value::Int(i as i64))])
                .with_geometry(shape.map(|s| Geometry::in_crs(s, Some(3857))))
        })
        .collect()
}

/// The features whose envelope meets `b`, by brute force.
fn brute_force(features: &[Feature], b: [f64; 4]) -> Vec<i64> {
    let bbox = Bbox {
        min_x: b[0],
        min_y: b[1],
        max_x: b[2],
        max_y: b[3],
    };
    let hits: Vec<Feature> = features
        .iter()
        .filter(|f| {
            f.geometry()
                .and_then(|g| envelope(&g.geom))
                .is_some_and(|[a, b, c, d]| bbox.intersects(a, b, c, d))
        })
        .cloned()
        .collect();
    ns(&hits)
}

#[test]
fn bbox_is_checked() {
    for bad in [
        serde_json::json!([1, 2, 3]),
        serde_json::json!([1, 2, 3, 4, 5]),
        serde_json::json!([5, 0, 1, 1]),
        serde_json::json!([0, 5, 1, 1]),
    ] {
        let p = serde_json::json!({"path": "x.fgb", "bbox": bad});
        assert_eq!(sluice_runtime::testing::param_error_path(&SPEC, p), "bbox");
    }
    assert!(bbox_param(Some(vec![0.0, f64::NAN, 1.0, 1.0])).is_err());
    assert!(bbox_param(Some(vec![0.0, 0.0, f64::INFINITY, 1.0])).is_err());
    assert_eq!(
        bbox_param(Some(vec![1.0, 1.0, 1.0, 1.0])).unwrap(),
        Some(Bbox {
            min_x: 1.0,
            min_y: 1.0,
            max_x: 1.0,
            max_y: 1.0
        }),
        "a point box is allowed"
    );
}

#[test]
fn bbox_selects_exactly_the_features_whose_envelopes_intersect() {
    let features = mixed_features(3000, 7);
    let dir = tempfile::tempdir().unwrap();
    let boxes = [
        [100.0, 100.0, 200.0, 300.0],
        [0.0, 0.0, 1000.0, 1000.0],
        [-50.0, -50.0, -1.0, -1.0],
        [500.0, 500.0, 500.0, 500.0],
        [990.0, 0.0, 2000.0, 20.0],
        [333.3, 12.5, 341.0, 999.0],
    ];
    for (name, extra) in [
        ("idx16", serde_json::json!({})),
        ("idx2", serde_json::json!({"index_node_size": 2})),
        ("idx300", serde_json::json!({"index_node_size": 300})),
        ("noidx", serde_json::json!({"index": false})),
    ] {
        let path = dir.path().join(format!("{name}.fgb"));
        let path = path.to_string_lossy().into_owned();
        write_fgb(&path, extra, features.clone());
        let (all, rejected) = read(serde_json::json!({ "path": path })).unwrap();
        assert!(rejected.is_empty());
        assert_eq!(ns(&all), (0..3000).collect::<Vec<_>>(), "{name}");
        for b in boxes {
            let (got, _) = read(serde_json::json!({ "path": path, "bbox": b })).unwrap();
            assert_eq!(ns(&got), brute_force(&features, b), "{name} {b:?}");
            assert!(got.iter().all(|f| f.geometry().unwrap().crs == Some(3857)));
        }
    }
    // The `crs` parameter overrides the header's.
    let path = dir.path().join("idx16.fgb").to_string_lossy().into_owned();
    let (got, _) = read(serde_json::json!({ "path": path, "crs": "EPSG:2154" })).unwrap();
    assert!(
        got.iter()
            .filter_map(|f| f.geometry())
            .all(|g| g.crs == Some(2154))
    );
}

/// A `Read + Seek` that counts the bytes its caller reads.
struct Counting<R> {
    inner: R,
    read: Arc<AtomicU64>,
}
impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}
impl<R: Seek> Seek for Counting<R> {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        self.inner.seek(to)
    }
}

#[derive(Default)]
struct Collect {
    ok: Vec<Feature>,
    rejected: Vec<Feature>,
}
impl Out for Collect {
    fn ok(&mut self, f: Feature) -> Result<(), ActionError> {
        self.ok.push(f);
        Ok(())
    }
    fn rejected(&mut self, f: Feature) -> Result<(), ActionError> {
        self.rejected.push(f);
        Ok(())
    }
}

fn reader(bbox: Option<[f64; 4]>) -> FgbReader {
    FgbReader {
        bbox: bbox.map(|b| Bbox {
            min_x: b[0],
            min_y: b[1],
            max_x: b[2],
            max_y: b[3],
        }),
        crs: None,
        schemas: SharedCache::new(),
    }
}

#[test]
// The measurement is printed for whoever tunes the store's fetch size.
#[allow(clippy::print_stderr)]
fn a_one_percent_bbox_fetches_at_most_five_percent_of_the_file() {
    // 50,000 points with a few attributes each (about 140 bytes a feature), as a
    // points-of-interest layer has.
    let mut rng = Lcg(42);
    let features: Vec<Feature> = (0..50_000)
        .map(|i| {
            let (x, y) = (rng.next() * 1000.0, rng.next() * 1000.0);
            Feature::from_pairs(
                i as u64,
                [
                    ("n", Value::Int(i as i64)),
                    (
                        "name",
                        Value::String(format!("point of interest {i}").into()),
                    ),
                    (
                        "kind",
                        Value::String(["shop", "cafe", "school"][i % 3].into()),
                    ),
                    ("score", Value::Float(rng.next())),
                ],
            )
            .with_geometry(Some(Geometry::in_crs(
                point!(x: x, y: y).into(),
                Some(3857),
            )))
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("poi.fgb").to_string_lossy().into_owned();
    write_fgb(&path, serde_json::json!({}), features.clone());
    // 1% of the extent: a 100 × 100 square.
    let b = [450.0, 450.0, 550.0, 550.0];
    let want = brute_force(&features, b);
    assert!((400..600).contains(&want.len()), "{}", want.len());

    // What the reader itself reads.
    let bytes = std::fs::read(&path).unwrap();
    let len = bytes.len() as u64;
    let counted = Arc::new(AtomicU64::new(0));
    let mut input = Counting {
        inner: Cursor::new(bytes),
        read: counted.clone(),
    };
    let ctx = NodeContext::standalone("t");
    let mut out = Collect::default();
    reader(Some(b))
        .read(&mut input, len, &path, &ctx, &mut out)
        .unwrap();
    assert_eq!(ns(&out.ok), want);
    let read = counted.load(Ordering::Relaxed);

    // What the store fetches (in its range-sized chunks) for it.
    let mut seekable = store::open_seekable(&path).unwrap();
    let mut out = Collect::default();
    reader(Some(b))
        .read(&mut seekable, len, &path, &ctx, &mut out)
        .unwrap();
    assert_eq!(ns(&out.ok), want);
    let fetched = seekable.bytes_fetched();
    eprintln!(
        "file {len} bytes; 1% bbox: reader read {read} bytes ({:.2}%), store fetched {fetched} ({:.2}%)",
        read as f64 * 100.0 / len as f64,
        fetched as f64 * 100.0 / len as f64
    );
    assert!(read * 50 <= len, "read {read} of {len}");
    assert!(fetched * 20 <= len, "fetched {fetched} of {len}");

    // Without a bbox the whole file is read, once.
    let mut seekable = store::open_seekable(&path).unwrap();
    let mut out = Collect::default();
    reader(None)
        .read(&mut seekable, len, &path, &ctx, &mut out)
        .unwrap();
    assert_eq!(out.ok.len(), 50_000);
    assert!(seekable.bytes_fetched() <= len);
}

// ---------------------------------------------------------------------------------------------
// Files written by hand (types fgb_writer does not write) and bad files
// ---------------------------------------------------------------------------------------------

/// A file without index: point features with raw property bytes.
fn raw_file(columns: &[(&str, ColumnType)], features: &[(Option<[f64; 2]>, Vec<u8>)]) -> Vec<u8> {
    let mut fbb = FlatBufferBuilder::new();
    let cols: Vec<_> = columns
        .iter()
        .map(|(name, ty)| {
            let name = fbb.create_string(name);
            flatgeobuf::Column::create(
                &mut fbb,
                &flatgeobuf::ColumnArgs {
                    name: Some(name),
                    type_: *ty,
                    ..Default::default()
                },
            )
        })
        .collect();
    let cols = fbb.create_vector(&cols);
    let header = flatgeobuf::Header::create(
        &mut fbb,
        &flatgeobuf::HeaderArgs {
            geometry_type: GeometryType::Point,
            columns: Some(cols),
            features_count: features.len() as u64,
            index_node_size: 0,
            ..Default::default()
        },
    );
    fbb.finish_size_prefixed(header, None);
    let mut file = MAGIC.to_vec();
    file.extend_from_slice(fbb.finished_data());
    for (xy, props) in features {
        let mut fbb = FlatBufferBuilder::new();
        let geometry = xy.map(|xy| {
            let xy = fbb.create_vector(&xy);
            flatgeobuf::Geometry::create(
                &mut fbb,
                &flatgeobuf::GeometryArgs {
                    xy: Some(xy),
                    ..Default::default()
                },
            )
        });
        let properties = fbb.create_vector(props);
        let f = flatgeobuf::Feature::create(
            &mut fbb,
            &flatgeobuf::FeatureArgs {
                geometry,
                properties: Some(properties),
                columns: None,
            },
        );
        fbb.finish_size_prefixed(f, None);
        file.extend_from_slice(fbb.finished_data());
    }
    file
}

fn prop(column: u16, bytes: &[u8]) -> Vec<u8> {
    let mut v = column.to_le_bytes().to_vec();
    v.extend_from_slice(bytes);
    v
}

fn text(column: u16, s: &str) -> Vec<u8> {
    let mut v = column.to_le_bytes().to_vec();
    v.extend_from_slice(&(s.len() as u32).to_le_bytes());
    v.extend_from_slice(s.as_bytes());
    v
}

#[test]
fn every_column_type_reads_typed() {
    let columns = [
        ("byte", ColumnType::Byte),
        ("ubyte", ColumnType::UByte),
        ("short", ColumnType::Short),
        ("ushort", ColumnType::UShort),
        ("int", ColumnType::Int),
        ("uint", ColumnType::UInt),
        ("long", ColumnType::Long),
        ("ulong", ColumnType::ULong),
        ("float", ColumnType::Float),
        ("double", ColumnType::Double),
        ("bool", ColumnType::Bool),
        ("string", ColumnType::String),
        ("json", ColumnType::Json),
        ("dt", ColumnType::DateTime),
        ("bin", ColumnType::Binary),
    ];
    let mut props = Vec::new();
    props.extend(prop(0, &(-5i8).to_le_bytes()));
    props.extend(prop(1, &[250]));
    props.extend(prop(2, &(-300i16).to_le_bytes()));
    props.extend(prop(3, &60000u16.to_le_bytes()));
    props.extend(prop(4, &(-70000i32).to_le_bytes()));
    props.extend(prop(5, &4_000_000_000u32.to_le_bytes()));
    props.extend(prop(6, &i64::MIN.to_le_bytes()));
    props.extend(prop(7, &(i64::MAX as u64).to_le_bytes()));
    props.extend(prop(8, &1.5f32.to_le_bytes()));
    props.extend(prop(9, &(-0.1f64).to_le_bytes()));
    props.extend(prop(10, &[1]));
    props.extend(text(11, "héllo"));
    props.extend(text(12, r#"{"a": [1, 2.5, "x"]}"#));
    props.extend(text(13, "2024-02-29T10:11:12.5+01:00"));
    props.extend(prop(14, &[3, 0, 0, 0, 0xde, 0xad, 0xff]));
    // Feature 1: other forms of the text types, most columns missing.
    let mut second = text(12, "42");
    second.extend(text(13, "2024-02-29T10:11:12"));
    let third = text(13, "2024-02-29");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("types.fgb").to_string_lossy().into_owned();
    let file = raw_file(
        &columns,
        &[
            (Some([1.0, 2.0]), props),
            (None, second),
            (Some([3.0, 4.0]), third),
        ],
    );
    std::fs::write(&path, file).unwrap();
    let (ok, rejected) = read(serde_json::json!({ "path": path })).unwrap();
    assert!(rejected.is_empty(), "{rejected:?}");
    let f = &ok[0];
    let expect = [
        ("byte", Value::Int(-5)),
        ("ubyte", Value::Int(250)),
        ("short", Value::Int(-300)),
        ("ushort", Value::Int(60000)),
        ("int", Value::Int(-70000)),
        ("uint", Value::Int(4_000_000_000)),
        ("long", Value::Int(i64::MIN)),
        ("ulong", Value::Int(i64::MAX)),
        ("float", Value::Float(1.5)),
        ("double", Value::Float(-0.1)),
        ("bool", Value::Bool(true)),
        ("string", Value::String("héllo".into())),
        (
            "dt",
            Value::DateTime(
                sluice_runtime::feature::parse_zoned_datetime("2024-02-29T09:11:12.5Z").unwrap(),
            ),
        ),
        ("bin", Value::Bytes(vec![0xde, 0xad, 0xff].into())),
    ];
    for (name, value) in expect {
        assert_eq!(f.get(name), Some(&value), "{name}");
    }
    let json = f.get("json").unwrap().to_json();
    assert_eq!(json, serde_json::json!({"a": [1, 2.5, "x"]}));
    assert_eq!(f.geometry().unwrap().geom, point!(x: 1.0, y: 2.0).into());
    assert_eq!(f.geometry().unwrap().crs, None);
    assert_eq!(ok[1].get("json"), Some(&Value::String("42".into())));
    assert_eq!(
        ok[1].get("dt"),
        Some(&Value::LocalDateTime(
            sluice_runtime::feature::parse_local_datetime("2024-02-29T10:11:12").unwrap()
        ))
    );
    assert_eq!(ok[1].get("byte"), Some(&Value::Null), "missing is null");
    assert!(ok[1].geometry().is_none());
    assert_eq!(
        ok[2].get("dt"),
        Some(&Value::Date(
            sluice_runtime::feature::parse_date("2024-02-29").unwrap()
        ))
    );
}

#[test]
fn values_that_do_not_fit_are_rejected_with_the_feature_number() {
    let columns = [("ulong", ColumnType::ULong), ("dt", ColumnType::DateTime)];
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rej.fgb").to_string_lossy().into_owned();
    let file = raw_file(
        &columns,
        &[
            (Some([0.0, 0.0]), prop(0, &5u64.to_le_bytes())),
            (Some([0.0, 0.0]), prop(0, &u64::MAX.to_le_bytes())),
            (Some([0.0, 0.0]), text(1, "yesterday")),
        ],
    );
    std::fs::write(&path, file).unwrap();
    let (ok, rejected) = read(serde_json::json!({ "path": path })).unwrap();
    assert_eq!(ok.len(), 1);
    assert_eq!(ok[0].get("ulong"), Some(&Value::Int(5)));
    assert_eq!(rejected.len(), 2);
    let reason = |f: &Feature| {
        f.get(REJECTION_REASON)
            .unwrap()
            .as_str()
            .unwrap()
            .to_string()
    };
    let r0 = reason(&rejected[0]);
    assert!(
        r0.starts_with(&format!("{path}: feature 1: column \"ulong\""))
            && r0.contains("18446744073709551615"),
        "{r0}"
    );
    let r1 = reason(&rejected[1]);
    assert!(r1.contains("feature 2") && r1.contains("yesterday"), "{r1}");
    assert_eq!(
        rejected[1].get("dt"),
        Some(&Value::String("yesterday".into()))
    );
}

/// The message of a read that must fail.
fn failure(path: &str, bbox: bool) -> String {
    let mut p = serde_json::json!({ "path": path });
    if bbox {
        p["bbox"] = serde_json::json!([0, 0, 500, 500]);
    }
    match read(p) {
        Err(e) => e.to_string(),
        Ok((ok, rejected)) => panic!(
            "{path}: read {} features, {} rejected, expected an error",
            ok.len(),
            rejected.len()
        ),
    }
}

#[test]
fn bad_files_fail_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let at = |name: &str| dir.path().join(name).to_string_lossy().into_owned();
    let good = at("good.fgb");
    write_fgb(&good, serde_json::json!({}), mixed_features(200, 3));
    let bytes = std::fs::read(&good).unwrap();
    let header = read_header(&mut &bytes[..], bytes.len() as u64, &good).unwrap();

    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "magic.fgb",
            b"{\"type\": \"FeatureCollection\"}".to_vec(),
            "magic bytes",
        ),
        ("short.fgb", b"fgb".to_vec(), "too short"),
        ("empty.fgb", Vec::new(), "too short"),
        (
            "version.fgb",
            {
                let mut b = bytes.clone();
                b[3] = 9;
                b
            },
            "version 9",
        ),
        (
            "header-len.fgb",
            {
                let mut b = bytes.clone();
                b[8..12].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
                b
            },
            "header length",
        ),
        (
            "header-past-end.fgb",
            bytes[..(header.end as usize - 10)].to_vec(),
            "header length",
        ),
        (
            "header-garbage.fgb",
            {
                let mut b = bytes.clone();
                for x in &mut b[12..header.end as usize] {
                    *x = 0xff;
                }
                b
            },
            "header",
        ),
    ];
    for (name, data, expect) in cases {
        let path = at(name);
        std::fs::write(&path, data).unwrap();
        let m = failure(&path, false);
        assert!(m.contains(&path) && m.contains(expect), "{name}: {m}");
    }

    // A feature size far beyond the file (no index: the first feature follows the header).
    let no_index = at("noidx.fgb");
    write_fgb(
        &no_index,
        serde_json::json!({"index": false}),
        mixed_features(10, 3),
    );
    let mut b = std::fs::read(&no_index).unwrap();
    let h = read_header(&mut &b[..], b.len() as u64, &no_index).unwrap();
    let first = h.end as usize;
    let size = u32::from_le_bytes(b[first..first + 4].try_into().unwrap()) as usize;
    let second = first + 4 + size;
    b[second..second + 4].copy_from_slice(&0xFFFF_FFF0u32.to_le_bytes());
    let path = at("feature-size.fgb");
    std::fs::write(&path, &b).unwrap();
    let m = failure(&path, false);
    assert!(
        m.contains(&format!("{path}: feature 1")) && m.contains("runs past the end"),
        "{m}"
    );

    // An index whose root points outside its level.
    let mut b = bytes.clone();
    let root = header.end as usize;
    b[root + 32..root + 40].copy_from_slice(&u64::MAX.to_le_bytes());
    let path = at("index.fgb");
    std::fs::write(&path, &b).unwrap();
    let m = failure(&path, true);
    assert!(
        m.contains(&path) && m.contains("spatial index is corrupt"),
        "{m}"
    );

    // A feature count the file cannot hold.
    let mut fbb = FlatBufferBuilder::new();
    let h = flatgeobuf::Header::create(
        &mut fbb,
        &flatgeobuf::HeaderArgs {
            geometry_type: GeometryType::Point,
            features_count: u64::MAX,
            ..Default::default()
        },
    );
    fbb.finish_size_prefixed(h, None);
    let mut b = MAGIC.to_vec();
    b.extend_from_slice(fbb.finished_data());
    let path = at("count.fgb");
    std::fs::write(&path, &b).unwrap();
    let m = failure(&path, true);
    assert!(m.contains(&path) && m.contains("more than the file"), "{m}");
}

#[test]
fn truncation_at_any_offset_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.fgb").to_string_lossy().into_owned();
    for extra in [serde_json::json!({}), serde_json::json!({"index": false})] {
        write_fgb(&good, extra, mixed_features(60, 11));
        let bytes = std::fs::read(&good).unwrap();
        let path = dir.path().join("cut.fgb").to_string_lossy().into_owned();
        let step = (bytes.len() / 300).max(1);
        let b = serde_json::json!([0, 0, 500, 500]);
        let (whole, _) = read(serde_json::json!({ "path": good, "bbox": b })).unwrap();
        for cut in (0..bytes.len()).step_by(step).chain([bytes.len() - 1]) {
            std::fs::write(&path, &bytes[..cut]).unwrap();
            // A full read needs every byte.
            let m = failure(&path, false);
            assert!(m.contains(&path), "cut at {cut}: {m}");
            // A bbox read fails, or, when the cut spares all it reads, gives the same features.
            match read(serde_json::json!({ "path": path, "bbox": b })) {
                Err(e) => assert!(e.to_string().contains(&path), "cut at {cut}: {e}"),
                Ok((got, _)) => assert_eq!(ns(&got), ns(&whole), "cut at {cut}"),
            }
        }
    }
}

#[test]
fn random_byte_flips_never_panic() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.fgb").to_string_lossy().into_owned();
    let mut features = mixed_features(40, 5);
    // Z and M, collections and every writer column type, so flips reach every decoder.
    features.push(
        Feature::from_pairs(
            40,
            [
                ("n", Value::Int(40)),
                ("s", Value::String("text".into())),
                ("when", Value::Date(100)),
                ("list", Value::Array(vec![Value::Int(1)].into())),
                ("raw", Value::Bytes(vec![1, 2].into())),
            ],
        )
        .with_geometry(Some(Geometry::in_crs(
            G::GeometryCollection(geo_types::GeometryCollection(vec![
                point!(x: 1.0, y: 1.0).into(),
                geo_types::MultiPolygon(vec![Polygon::new(
                    LineString::from(vec![(0.0, 0.0), (1.0, 0.0), (1.0, 1.0), (0.0, 0.0)]),
                    vec![],
                )])
                .into(),
            ])),
            Some(3857),
        ))),
    );
    write_fgb(&good, serde_json::json!({"index_node_size": 3}), features);
    let bytes = std::fs::read(&good).unwrap();
    let path = dir
        .path()
        .join("flipped.fgb")
        .to_string_lossy()
        .into_owned();
    let mut rng = Lcg(99);
    let (mut errors, mut reads) = (0, 0);
    for _ in 0..1500 {
        let mut b = bytes.clone();
        for _ in 0..1 + (rng.next() * 4.0) as usize {
            let at = (rng.next() * b.len() as f64) as usize;
            b[at] ^= 1 << ((rng.next() * 8.0) as u32);
        }
        std::fs::write(&path, &b).unwrap();
        for bbox in [None, Some([0.0, 0.0, 500.0, 500.0])] {
            let mut p = serde_json::json!({ "path": path });
            if let Some(bbox) = bbox {
                p["bbox"] = serde_json::json!(bbox);
            }
            match read(p) {
                Ok(_) => reads += 1,
                Err(e) => {
                    errors += 1;
                    assert!(e.to_string().contains(&path), "{e}");
                }
            }
        }
    }
    assert!(errors > 0 && reads > 0, "{errors} errors, {reads} reads");
}

// ---------------------------------------------------------------------------------------------
// GDAL
// ---------------------------------------------------------------------------------------------

// The notice says why a test that checks nothing passed.
#[allow(clippy::print_stderr)]
fn gdal() -> bool {
    let ok = std::process::Command::new("ogr2ogr")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("NOTICE: ogr2ogr not found; skipping the GDAL cross-check");
    }
    ok
}

#[test]
fn reads_files_gdal_wrote_with_and_without_an_index() {
    if !gdal() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    // A GeoJSON source: 3D points and polygons with holes, in EPSG:4326, various fields.
    let mut rng = Lcg(5);
    let mut feats = Vec::new();
    let mut envelopes = Vec::new();
    for i in 0..800 {
        let (x, y) = (rng.next() * 40.0 - 20.0, rng.next() * 40.0 + 10.0);
        let geometry = if i % 2 == 0 {
            envelopes.push((i, [x, y, x, y]));
            serde_json::json!({"type": "Point", "coordinates": [x, y, i as f64 / 2.0]})
        } else {
            let (w, h) = (rng.next(), rng.next());
            envelopes.push((i, [x, y, x + w, y + h]));
            serde_json::json!({"type": "Polygon", "coordinates": [
                [[x, y, 1.0], [x + w, y, 2.0], [x + w, y + h, 3.0], [x, y + h, 4.0], [x, y, 1.0]],
                [[x + w / 4.0, y + h / 4.0, 0.0], [x + w / 2.0, y + h / 4.0, 0.0], [x + w / 2.0, y + h / 2.0, 0.0], [x + w / 4.0, y + h / 4.0, 0.0]]
            ]})
        };
        feats.push(serde_json::json!({
            "type": "Feature",
            "properties": {
                "n": i, "big": 10_000_000_000i64 + i, "x": i as f64 + 0.25,
                "name": format!("f{i}"), "flag": i % 3 == 0,
                "when": "2024-01-02T03:04:05Z", "day": "2024-01-02"
            },
            "geometry": geometry
        }));
    }
    let source = dir.path().join("src.geojson");
    std::fs::write(
        &source,
        serde_json::json!({"type": "FeatureCollection", "features": feats}).to_string(),
    )
    .unwrap();
    for (name, lco) in [
        ("gdal-idx.fgb", None),
        ("gdal-noidx.fgb", Some("SPATIAL_INDEX=NO")),
    ] {
        let path = dir.path().join(name).to_string_lossy().into_owned();
        let mut cmd = std::process::Command::new("ogr2ogr");
        // Mixed types make an "Unknown" layer, which GDAL writes 2D unless told XYZ.
        cmd.args([
            "-f",
            "FlatGeobuf",
            "-dim",
            "XYZ",
            &path,
            &source.to_string_lossy(),
        ]);
        if let Some(lco) = lco {
            cmd.args(["-lco", lco]);
        }
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let bytes = std::fs::read(&path).unwrap();
        let h = read_header(&mut &bytes[..], bytes.len() as u64, &path).unwrap();
        assert_eq!(h.index_node_size, if lco.is_some() { 0 } else { 16 });
        assert!(h.has_z);
        let (ok, rejected) = read(serde_json::json!({ "path": path })).unwrap();
        assert!(rejected.is_empty(), "{rejected:?}");
        assert_eq!(ok.len(), 800);
        let f = ok
            .iter()
            .find(|f| f.get("n") == Some(&Value::Int(3)))
            .unwrap();
        assert_eq!(f.get("big"), Some(&Value::Int(10_000_000_003)));
        assert_eq!(f.get("x"), Some(&Value::Float(3.25)));
        assert_eq!(f.get("name"), Some(&Value::String("f3".into())));
        assert_eq!(f.get("flag"), Some(&Value::Bool(true)));
        assert_eq!(
            f.get("when"),
            Some(&Value::DateTime(
                sluice_runtime::feature::parse_zoned_datetime("2024-01-02T03:04:05Z").unwrap()
            ))
        );
        assert!(
            matches!(f.get("day"), Some(Value::Date(_) | Value::LocalDateTime(_))),
            "{:?}",
            f.get("day")
        );
        let g = f.geometry().unwrap();
        assert_eq!(g.crs, Some(4326));
        let G::Polygon(p) = &g.geom else {
            panic!("{:?}", g.geom)
        };
        assert_eq!(p.interiors().len(), 1);
        assert_eq!(&g.z().unwrap()[..5], &[1.0, 2.0, 3.0, 4.0, 1.0]);
        let p4 = ok
            .iter()
            .find(|f| f.get("n") == Some(&Value::Int(4)))
            .unwrap();
        assert_eq!(p4.geometry().unwrap().z(), Some(&[2.0][..]));
        // A bbox read matches the envelopes of the source.
        let b = [-5.0, 20.0, 5.0, 30.0];
        let (sel, _) = read(serde_json::json!({ "path": path, "bbox": b })).unwrap();
        let bbox = Bbox {
            min_x: b[0],
            min_y: b[1],
            max_x: b[2],
            max_y: b[3],
        };
        let want: Vec<i64> = envelopes
            .iter()
            .filter(|(_, [a, b, c, d])| bbox.intersects(*a, *b, *c, *d))
            .map(|(i, _)| *i)
            .collect();
        assert!(!want.is_empty());
        assert_eq!(ns(&sel), want, "{name}");
    }
}

#[test]
fn validation_reads_the_columns_from_the_header() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("shape.fgb").to_string_lossy().into_owned();
    let f = Feature::from_pairs(
        0,
        [
            ("n", Value::Int(1)),
            ("x", Value::Float(0.5)),
            ("s", Value::String("a".into())),
            ("ok", Value::Bool(true)),
            ("raw", Value::Bytes(vec![1].into())),
            ("when", Value::Date(3)),
        ],
    )
    .with_geometry(Some(Geometry::in_crs(
        point!(x: 0.0, y: 0.0).into(),
        Some(2154),
    )));
    write_fgb(&path, serde_json::json!({}), vec![f]);
    let params = serde_json::json!({ "path": path });
    let outputs = ["default".to_string(), "rejected".to_string()];
    let shapes = sluice_runtime::testing::predict(&SPEC, &params, &[], &outputs);
    let s = &shapes[0];
    assert!(!s.open);
    let got: Vec<(&str, Type)> = s.attributes.iter().map(|(n, t)| (n.as_str(), *t)).collect();
    assert_eq!(
        got,
        [
            ("n", Type::Int),
            ("x", Type::Float),
            ("s", Type::String),
            ("ok", Type::Bool),
            ("raw", Type::Bytes),
            ("when", Type::Any),
        ]
    );
    assert_eq!(s.geometry, GeometryShape::Present { crs: Some(2154) });
    let params = serde_json::json!({ "path": path, "crs": 4326 });
    let shapes = sluice_runtime::testing::predict(&SPEC, &params, &[], &outputs);
    assert_eq!(
        shapes[0].geometry,
        GeometryShape::Present { crs: Some(4326) }
    );
    assert!(shapes[1].get(REJECTION_REASON).is_some());
}

#[test]
fn slices_share_out_flatgeobuf_files_by_index_and_read_one_in_the_first() {
    use crate::sources::test_support::{assert_slices_make_the_whole, read_slice};
    use sluice_runtime::Slice;
    for (name, n) in [("a", 30), ("b", 1), ("c", 120)] {
        write_fgb(
            &format!("memory://fgb_reader/slices/{name}.fgb"),
            serde_json::json!({}),
            mixed_features(n, n as u64),
        );
    }
    let params = serde_json::json!({ "path": "memory://fgb_reader/slices" });
    let (all, _) = assert_slices_make_the_whole(&SPEC, params, 1..=5);
    assert_eq!(all.len(), 151);
    let params = serde_json::json!({ "path": "memory://fgb_reader/slices/c.fgb" });
    assert_slices_make_the_whole(&SPEC, params.clone(), 1..=3);
    let (first, _) = read_slice(&SPEC, params.clone(), Slice::new(0, 2).unwrap()).unwrap();
    let (second, _) = read_slice(&SPEC, params, Slice::new(1, 2).unwrap()).unwrap();
    assert_eq!((first.len(), second.len()), (120, 0));
}
