//! Tests of `parquet_writer`.

use super::*;
use arrow_schema::{DataType, SchemaRef, TimeUnit};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use sluice_runtime::{Geometry, REJECTION_REASON, Schema, Value};
use std::io::Read;

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

fn bytes_of(location: &str) -> bytes::Bytes {
    let mut v = Vec::new();
    sluice_runtime::store::open_read(location)
        .unwrap()
        .read_to_end(&mut v)
        .unwrap();
    v.into()
}

/// The file's `geo` metadata (parsed), row group sizes and arrow schema.
fn inspect(location: &str) -> (Option<serde_json::Value>, Vec<i64>, SchemaRef) {
    let builder = ParquetRecordBatchReaderBuilder::try_new(bytes_of(location)).unwrap();
    let meta = builder.metadata();
    let geo = meta
        .file_metadata()
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|kv| kv.key == "geo"))
        .map(|kv| serde_json::from_str(kv.value.as_deref().unwrap()).unwrap());
    let groups = meta.row_groups().iter().map(|g| g.num_rows()).collect();
    (geo, groups, builder.schema().clone())
}

fn read_back(location: &str) -> (Vec<Feature>, Vec<Feature>) {
    crate::sources::test_support::read_back(&crate::sources::parquet_reader::SPEC, location)
}

fn point(x: f64, y: f64, crs: Option<u32>) -> Option<Geometry> {
    Some(Geometry::in_crs(geo_types::Point::new(x, y).into(), crs))
}

#[test]
fn writes_geoparquet_with_metadata_and_row_groups() {
    let schema = Schema::new(["name", "n", "when", "tags", "geometry"]);
    let day = sluice_runtime::feature::parse_datetime("2024-02-29T10:11:12Z").unwrap();
    let features: Vec<Feature> = (0..10)
        .map(|i| {
            let geom = if i == 7 {
                Some(Geometry::in_crs(
                    geo_types::Rect::new((-5.0, 1.0), (0.0, 2.0)).into(),
                    Some(3857),
                ))
            } else if i == 8 {
                None
            } else {
                point(i as f64, 10.0 + i as f64, Some(3857))
            };
            Feature::new(
                i,
                schema.clone(),
                vec![
                    Value::from(format!("f{i}")),
                    if i == 2 {
                        Value::Null
                    } else {
                        Value::Int(i as i64)
                    },
                    Value::DateTime(day + i as i64),
                    Value::Array(vec![Value::Int(1), Value::from("x")].into()),
                    Value::from("shadowed by the geometry"),
                ],
            )
            .with_geometry(geom)
        })
        .collect();
    write_all(
        serde_json::json!({"path": "memory://parquet_writer/geo.parquet", "row_group_rows": 3}),
        vec![features[..4].to_vec(), features[4..].to_vec()],
    )
    .unwrap();
    let (geo, groups, arrow) = inspect("memory://parquet_writer/geo.parquet");
    assert_eq!(groups, vec![3, 3, 3, 1]);
    let names: Vec<&str> = arrow.fields().iter().map(|f| f.name().as_str()).collect();
    assert_eq!(names, vec!["name", "n", "when", "tags", "geometry"]);
    assert_eq!(
        arrow.field(2).data_type(),
        &DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
    );
    let geo = geo.unwrap();
    assert_eq!(geo["version"], "1.1.0");
    assert_eq!(geo["primary_column"], "geometry");
    let col = &geo["columns"]["geometry"];
    assert_eq!(col["encoding"], "WKB");
    assert_eq!(
        col["geometry_types"],
        serde_json::json!(["Point", "Polygon"])
    );
    assert_eq!(col["bbox"], serde_json::json!([-5.0, 1.0, 9.0, 19.0]));
    assert_eq!(
        col["crs"],
        serde_json::json!({"id": {"authority": "EPSG", "code": 3857}})
    );

    let (back, rejected) = read_back("memory://parquet_writer/geo.parquet");
    assert!(rejected.is_empty());
    assert_eq!(back.len(), 10);
    assert_eq!(back[2].get("n"), Some(&Value::Null));
    assert_eq!(back[5].get("when"), Some(&Value::DateTime(day + 5)));
    assert_eq!(back[5].get("tags"), Some(&Value::from("[1,\"x\"]")));
    assert_eq!(
        back[5].get("geometry"),
        None,
        "the geometry is not an attribute"
    );
    assert_eq!(back[5].geometry(), point(5.0, 15.0, Some(3857)).as_ref());
    assert!(back[8].geometry().is_none());
}

#[test]
fn heights_and_measures_round_trip_and_are_named_in_the_metadata() {
    use sluice_runtime::feature::Ordinates;
    let line = geo_types::LineString::from(vec![(0.0, 0.0), (1.0, 1.0), (2.0, 0.5)]);
    let with_z = Geometry::in_crs(line.clone().into(), Some(2154))
        .with_ordinates(Ordinates {
            z: Some(vec![10.0, -0.5, 1e300]),
            m: Some(vec![0.0, 1.5, 3.0]),
        })
        .unwrap();
    let flat = Geometry::in_crs(geo_types::Point::new(5.0, 6.0).into(), Some(2154));
    let features = vec![
        Feature::from_pairs(0, [("n", Value::Int(0))]).with_geometry(Some(with_z.clone())),
        Feature::from_pairs(1, [("n", Value::Int(1))]).with_geometry(Some(flat.clone())),
    ];
    let path = "memory://pw/z.parquet";
    write_all(serde_json::json!({ "path": path }), vec![features]).unwrap();
    let (geo, _, _) = inspect(path);
    assert_eq!(
        geo.unwrap()["columns"]["geometry"]["geometry_types"],
        serde_json::json!(["LineString Z", "Point"])
    );
    let (back, rejected) = read_back(path);
    assert!(rejected.is_empty());
    assert_eq!(back[0].geometry(), Some(&with_z));
    assert_eq!(back[1].geometry(), Some(&flat));
}

#[test]
fn ints_widen_to_floats_in_the_first_row_group_and_4326_has_no_crs() {
    let f = |id: u64, v: Value| {
        Feature::from_pairs(id, [("v", v), ("empty", Value::Null)]).with_geometry(point(
            1.0,
            2.0,
            Some(4326),
        ))
    };
    write_all(
        serde_json::json!({"path": "memory://parquet_writer/widen.parquet", "row_group_rows": 3}),
        vec![vec![
            f(0, Value::Int(1)),
            f(1, Value::Float(2.5)),
            f(2, Value::Null),
            f(3, Value::Int(4)),
        ]],
    )
    .unwrap();
    let (geo, _, arrow) = inspect("memory://parquet_writer/widen.parquet");
    assert_eq!(arrow.field(0).data_type(), &DataType::Float64);
    assert_eq!(
        arrow.field(1).data_type(),
        &DataType::Utf8,
        "all-null columns are strings"
    );
    assert!(geo.unwrap()["columns"]["geometry"].get("crs").is_none());
    let (back, _) = read_back("memory://parquet_writer/widen.parquet");
    let vs: Vec<Value> = back.iter().map(|f| f.get("v").unwrap().clone()).collect();
    assert_eq!(
        vs,
        vec![
            Value::Float(1.0),
            Value::Float(2.5),
            Value::Null,
            Value::Float(4.0)
        ]
    );
}

#[test]
fn type_changes_extra_attributes_and_mixed_crs_fail_naming_the_feature() {
    let ctx = NodeContext::standalone("t");
    let int = |id: u64, v: Value| Feature::from_pairs(id, [("n", v)]);
    let cases: Vec<(Vec<Feature>, &str)> = vec![
        (
            vec![int(0, Value::Int(1)), int(1, Value::from("two"))],
            "attribute \"n\": expected int",
        ),
        (
            vec![
                int(0, Value::Int(1)),
                Feature::from_pairs(5, [("n", Value::Int(1)), ("zzz", Value::Null)]),
            ],
            "attribute \"zzz\" is not a column",
        ),
        (
            vec![
                int(0, Value::Int(1)).with_geometry(point(0.0, 0.0, Some(4326))),
                int(1, Value::Int(1)).with_geometry(point(0.0, 0.0, Some(2154))),
            ],
            "EPSG:2154",
        ),
        (
            vec![
                int(0, Value::Int(1)),
                int(1, Value::Int(2)).with_geometry(point(0.0, 0.0, None)),
            ],
            "no geometry column",
        ),
    ];
    for (i, (features, want)) in cases.into_iter().enumerate() {
        let path = format!("memory://parquet_writer/bad-{i}.parquet");
        let mut w = sink(serde_json::json!({"path": path, "row_group_rows": 1}));
        let last = features.last().unwrap().id();
        let err = w
            .write(0, features, &ctx)
            .and_then(|()| w.finish(&ctx))
            .unwrap_err();
        match &err {
            ActionError::Data { location, message } => {
                assert_eq!(
                    location.as_deref(),
                    Some(format!("feature {last}").as_str())
                );
                assert!(message.contains(want), "{message} (wanted {want})");
            }
            other => panic!("unexpected {other:?}"),
        }
        w.abort();
        assert!(sluice_runtime::store::open_read(&path).is_err());
    }
}

#[test]
fn plain_parquet_empty_input_and_abort() {
    write_all(
        serde_json::json!({"path": "memory://parquet_writer/plain.parquet"}),
        vec![vec![Feature::from_pairs(
            0,
            [
                ("b", Value::Bool(true)),
                ("x", Value::Bytes(vec![1, 2].into())),
            ],
        )]],
    )
    .unwrap();
    let (geo, groups, arrow) = inspect("memory://parquet_writer/plain.parquet");
    assert!(geo.is_none());
    assert_eq!(groups, vec![1]);
    assert_eq!(arrow.field(1).data_type(), &DataType::Binary);

    write_all(
        serde_json::json!({"path": "memory://parquet_writer/empty.parquet"}),
        vec![],
    )
    .unwrap();
    let (geo, groups, arrow) = inspect("memory://parquet_writer/empty.parquet");
    assert!(geo.is_none() && groups.is_empty() && arrow.fields().is_empty());

    let dir = tempfile::tempdir().unwrap();
    let ctx = NodeContext::standalone("t");
    let path = dir.path().join("x.parquet");
    let mut w = sink(serde_json::json!({"path": path.to_string_lossy(), "row_group_rows": 100}));
    let rows: Vec<Feature> = (0..5000)
        .map(|i| Feature::from_pairs(i, [(REJECTION_REASON, Value::Int(i as i64))]))
        .collect();
    w.write(0, rows, &ctx).unwrap();
    w.abort();
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn row_groups_are_cut_by_bytes_and_by_the_memory_budget() {
    let rows: Vec<Feature> = (0..1000)
        .map(|i| Feature::from_pairs(i, [("s", Value::from("x".repeat(100)))]))
        .collect();
    let size = rows[0].mem_size();
    write_all(
        serde_json::json!({
            "path": "memory://parquet_writer/bytes.parquet",
            "row_group_bytes": size * 100
        }),
        vec![rows.clone()],
    )
    .unwrap();
    let (_, groups, _) = inspect("memory://parquet_writer/bytes.parquet");
    assert_eq!(groups, vec![100; 10]);

    // A budget that holds 250 features: the writer never reserves more.
    let budget = sluice_runtime::memory::MemoryBudget::new(size * 250);
    let mut ctx = NodeContext::standalone("t");
    ctx.budget = budget.clone();
    let mut w = sink(serde_json::json!({"path": "memory://parquet_writer/budget.parquet"}));
    w.write(0, rows, &ctx).unwrap();
    assert!(budget.peak() <= size * 250);
    w.finish(&ctx).unwrap();
    w.commit().unwrap();
    assert_eq!(budget.reserved(), 0);
    let (_, groups, _) = inspect("memory://parquet_writer/budget.parquet");
    assert_eq!(groups.iter().sum::<i64>(), 1000);
    assert!(groups.iter().all(|g| *g <= 250), "{groups:?}");
    let (back, _) = read_back("memory://parquet_writer/budget.parquet");
    assert_eq!(back[999].get("s").unwrap().as_str().unwrap().len(), 100);
}

#[test]
fn bad_params_are_located() {
    for (params, path) in [
        (serde_json::json!({"path": "/"}), "path"),
        (
            serde_json::json!({"path": "x", "row_group_rows": 0}),
            "row_group_rows",
        ),
        (
            serde_json::json!({"path": "x", "compression": "zstd"}),
            "compression",
        ),
    ] {
        let err = (SPEC.build)(&BuildContext {
            node_id: "t",
            params: &params,
        })
        .err()
        .unwrap();
        assert!(
            matches!(err, ActionError::Param { path: ref p, .. } if p == path),
            "{err:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Memory of wide rows: a counting allocator (this test binary's allocator) keeps, per thread,
// the bytes allocated now and the most at once, so a test measures only its own thread.
// ---------------------------------------------------------------------------------------------

mod counting {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    pub struct Counting;

    thread_local! {
        static NOW: Cell<isize> = const { Cell::new(0) };
        static PEAK: Cell<isize> = const { Cell::new(0) };
    }

    fn add(bytes: isize) {
        let _ = NOW.try_with(|n| {
            let v = n.get() + bytes;
            n.set(v);
            let _ = PEAK.try_with(|p| p.set(p.get().max(v)));
        });
    }

    // SAFETY: every call goes to `System` unchanged; only thread-local counters are added.
    #[allow(unsafe_code)]
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            add(layout.size() as isize);
            unsafe { System.alloc(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            add(-(layout.size() as isize));
            unsafe { System.dealloc(ptr, layout) }
        }
        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            add(layout.size() as isize);
            unsafe { System.alloc_zeroed(layout) }
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new: usize) -> *mut u8 {
            add(new as isize - layout.size() as isize);
            unsafe { System.realloc(ptr, layout, new) }
        }
    }

    /// Runs `f` and returns the most bytes it held at once on this thread beyond what was
    /// held when it started.
    pub fn peak_of<T>(f: impl FnOnce() -> T) -> (T, usize) {
        let start = NOW.with(Cell::get);
        PEAK.with(|p| p.set(start));
        let out = f();
        let peak = PEAK.with(Cell::get);
        (out, (peak - start).max(0) as usize)
    }
}

#[global_allocator]
static COUNTING: counting::Counting = counting::Counting;

/// One feature with `n` attributes of three types.
fn wide_feature(n: usize) -> Feature {
    let schema = sluice_runtime::Schema::new((0..n).map(|i| format!("c{i}")));
    let values = (0..n)
        .map(|i| match i % 3 {
            0 => Value::Int(i as i64),
            1 => Value::from(format!("v{i}").as_str()),
            _ => Value::Float(i as f64 + 0.5),
        })
        .collect();
    Feature::new(1, schema, values)
}

#[test]
fn a_wide_single_row_writes_in_bounded_memory() {
    let f = wide_feature(25_000);
    let path = "memory://parquet_writer/wide.parquet";
    let (written, peak) =
        counting::peak_of(|| write_all(serde_json::json!({ "path": path }), vec![vec![f]]));
    written.unwrap();
    // With a dictionary per column (about 50 KiB each) this took about 1.3 GB; without,
    // about 5 KiB per column.
    assert!(peak < 256 << 20, "{} MiB", peak >> 20);
    let (_, groups, arrow) = inspect(path);
    assert_eq!((groups, arrow.fields().len()), (vec![1], 25_000));
}

#[test]
fn dictionaries_only_for_files_of_few_columns() {
    let col = parquet::schema::types::ColumnPath::from("c0");
    assert!(writer_properties(DICTIONARY_MAX_COLUMNS, 10).dictionary_enabled(&col));
    assert!(!writer_properties(DICTIONARY_MAX_COLUMNS + 1, 10).dictionary_enabled(&col));
    assert_eq!(writer_properties(3, 10).max_row_group_row_count(), Some(10));
}
