use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use arrow_schema::DataType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::basic::Compression;

use super::codec::{ENCODED_KEY, FIXED, NAME_KEY};
use super::writer::write_file;
use super::*;
use crate::feature::arrow::encoded::{MAX_DEPTH, decode_value, encode_value};
use crate::feature::{Feature, Geometry, Schema, Value};
use crate::memory::{MemoryBudget, SpillDir};
use geo_types::{line_string, point, polygon};
use proptest::prelude::*;

fn spill_dir() -> (tempfile::TempDir, SpillDir) {
    let base = tempfile::tempdir().unwrap();
    let dir = SpillDir::new(base.path());
    (base, dir)
}

/// Value equality that holds for NaN and tells -0.0 from 0.0.
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Float(x), Value::Float(y)) => {
            x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan())
        }
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y.iter()).all(|(a, b)| same(a, b))
        }
        (Value::Map(x), Value::Map(y)) => {
            x.len() == y.len()
                && x.iter()
                    .zip(y.iter())
                    .all(|((ka, a), (kb, b))| ka == kb && same(a, b))
        }
        _ => a == b,
    }
}

fn assert_same_features(got: &[Feature], want: &[Feature]) {
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert_eq!(g.id(), w.id());
        assert_eq!(g.schema().names(), w.schema().names(), "feature {}", w.id());
        for ((name, a), b) in w.attributes().zip(g.values()) {
            assert!(
                same(a, b),
                "feature {} {name}: wrote {a:?}, read {b:?}",
                w.id()
            );
        }
        assert_eq!(g.geometry(), w.geometry(), "feature {}", w.id());
    }
}

fn read_all(run: &SpillRun) -> Vec<Feature> {
    run.read().unwrap().map(Result::unwrap).collect()
}

fn map(pairs: &[(&str, Value)]) -> Value {
    Value::Map(Arc::new(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect(),
    ))
}

/// One value of every variant, with the awkward corners.
fn every_value() -> Vec<Value> {
    use Value::*;
    vec![
        Null,
        Bool(true),
        Bool(false),
        Int(i64::MIN),
        Int(-1),
        Int(i64::MAX),
        Float(-0.0),
        Float(f64::NAN),
        Float(f64::NEG_INFINITY),
        Float(1.5),
        String("".into()),
        String("héllo, wörld".into()),
        Date(-719_162),
        Date(i32::MAX),
        DateTime(i64::MIN),
        DateTime(1_700_000_000_123_456),
        LocalDateTime(-1),
        LocalDateTime(1_700_000_000_123_456),
        Bytes(Box::new([])),
        Bytes(Box::new([0, 255, 7])),
        Array(Arc::new([])),
        Array(Arc::new([
            Int(1),
            "a".into(),
            Array(Arc::new([Null, Float(-0.0)])),
        ])),
        map(&[]),
        map(&[("a", Int(1)), ("b", map(&[("c", Float(f64::NAN))]))]),
    ]
}

fn geometries() -> Vec<Option<Geometry>> {
    vec![
        None,
        Some(Geometry::in_crs(point!(x: 1.0, y: -2.0).into(), Some(4326))),
        Some(Geometry::new(
            line_string![(x: 0.0, y: 0.0), (x: 1.0, y: 1.0)].into(),
        )),
        Some(Geometry::in_crs(
            polygon![(x: 0.0, y: 0.0), (x: 4.0, y: 0.0), (x: 4.0, y: 4.0)].into(),
            Some(2154),
        )),
    ]
}

/// Several schemas (one typed, one reordered with mixed columns, one empty, and per-row
/// key lists), missing attributes, every value variant, with and without geometry.
fn mixed_features() -> Vec<Feature> {
    use Value::*;
    let typed = Schema::new(["i", "f", "s", "b", "d", "t", "bytes", "all_null"]);
    let other = Schema::new(["mixed", "s", "nested", "__id"]);
    let empty = Schema::empty();
    let geoms = geometries();
    let mut out = Vec::new();
    for (k, v) in every_value().into_iter().enumerate() {
        let id = 10 * k as u64;
        let typed_values = if k % 4 == 0 {
            vec![]
        } else {
            vec![
                Int(k as i64 - 5),
                Float([0.25 * k as f64, -0.0, f64::NAN][k % 3]),
                format!("s{k}").into(),
                Bool(k % 2 == 0),
                Date(k as i32 - 3),
                DateTime(k as i64 * 1_000_001),
                Bytes(vec![k as u8; k].into()),
            ]
        };
        let g = geoms[k % geoms.len()].clone();
        out.push(Feature::new(id, typed.clone(), typed_values).with_geometry(g));
        let nested = Array(Arc::new([v.clone()]));
        out.push(Feature::new(
            id + 1,
            other.clone(),
            vec![v, format!("o{k}").into(), nested, Null],
        ));
        out.push(Feature::new(id + 2, empty.clone(), vec![]).with_geometry(geoms[3].clone()));
        out.push(Feature::from_pairs(
            id + 3,
            [("s", Value::from("own")), ("extra", Float(0.5))],
        ));
    }
    out
}

#[test]
fn mixed_features_round_trip() {
    let (_base, dir) = spill_dir();
    let want = mixed_features();
    let run = write_run(&dir, "sort", want.clone()).unwrap();
    assert_eq!(run.rows, want.len() as u64);
    assert_eq!(std::fs::metadata(&run.path).unwrap().len(), run.bytes);
    assert_eq!(dir.totals(), (1, run.bytes));
    assert_same_features(&read_all(&run), &want);
}

#[test]
fn columns_are_typed_and_mixed_ones_encoded() {
    let (_base, dir) = spill_dir();
    let run = write_run(&dir, "sort", mixed_features()).unwrap();
    let file = File::open(&run.path).unwrap();
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
    let fields = builder.schema().fields();
    let find = |name: &str| {
        fields
            .iter()
            .find(|f| f.metadata().get(NAME_KEY).map(String::as_str) == Some(name))
            .unwrap()
    };
    assert_eq!(find("i").data_type(), &DataType::Int64);
    assert_eq!(find("f").data_type(), &DataType::Float64);
    assert_eq!(find("s").data_type(), &DataType::Utf8);
    assert_eq!(find("b").data_type(), &DataType::Boolean);
    assert_eq!(find("d").data_type(), &DataType::Date32);
    assert_eq!(
        find("t").data_type(),
        &crate::feature::arrow::ColumnKind::DateTime.data_type()
    );
    assert_eq!(find("bytes").data_type(), &DataType::Binary);
    assert!(find("bytes").metadata().get(ENCODED_KEY).is_none());
    assert_eq!(find("mixed").metadata().get(ENCODED_KEY).unwrap(), "true");
    assert_eq!(find("nested").metadata().get(ENCODED_KEY).unwrap(), "true");
    assert_eq!(find("extra").data_type(), &DataType::Float64);
    assert_eq!(find("all_null").data_type(), &DataType::Boolean);
    assert_eq!(find("__id").name(), "___id");
    let names: Vec<&str> = fields.iter().map(|f| f.name().as_str()).collect();
    assert_eq!(&names[..4], &FIXED);
    assert_eq!(
        builder.metadata().row_groups()[0].column(0).compression(),
        Compression::SNAPPY
    );
}

#[test]
fn features_of_one_schema_share_one_arc_when_read() {
    let (_base, dir) = spill_dir();
    let run = write_run(&dir, "sort", mixed_features()).unwrap();
    let got = read_all(&run);
    let with = |names: &[&str]| -> Vec<&Arc<Schema>> {
        got.iter()
            .map(Feature::schema)
            .filter(|s| s.names().iter().map(|n| &**n).eq(names.iter().copied()))
            .collect()
    };
    let own = with(&["s", "extra"]);
    assert_eq!(own.len(), every_value().len());
    assert!(own.iter().all(|s| Arc::ptr_eq(s, own[0])));
    let empty = with(&[]);
    assert!(empty.iter().all(|s| Arc::ptr_eq(s, empty[0])));
    assert!(!Arc::ptr_eq(own[0], empty[0]));
}

#[test]
fn row_groups_are_bounded_and_runs_merge_across_them() {
    let (_base, dir) = spill_dir();
    let schema = Schema::new(["k"]);
    let make = |ids: std::ops::Range<u64>| -> Vec<Feature> {
        ids.map(|i| Feature::new(i, schema.clone(), vec![Value::Int((i % 1000) as i64)]))
            .collect()
    };
    let by_key = |a: &Feature, b: &Feature| a.values()[0].total_cmp(&b.values()[0]);
    let mut parts = vec![make(0..20_000), make(20_000..30_000), make(30_000..30_500)];
    for p in &mut parts {
        p.sort_by(by_key);
    }
    let mut all: Vec<Feature> = parts.concat();
    all.sort_by(by_key);
    let tail = parts.pop().unwrap();
    let runs: Vec<SpillRun> = parts
        .into_iter()
        .map(|p| write_run(&dir, "big", p).unwrap())
        .collect();
    let file = File::open(&runs[0].path).unwrap();
    let meta = ParquetRecordBatchReaderBuilder::try_new(file)
        .unwrap()
        .metadata()
        .clone();
    let sizes: Vec<i64> = meta.row_groups().iter().map(|g| g.num_rows()).collect();
    assert_eq!(sizes, vec![8192, 8192, 20_000 - 2 * 8192]);
    let merged: Vec<u64> = merge(runs, tail, by_key)
        .unwrap()
        .map(|f| f.unwrap().id())
        .collect();
    assert_eq!(merged, all.iter().map(Feature::id).collect::<Vec<_>>());
}

#[test]
fn sparse_attributes_round_trip() {
    // Every feature has its own extra attribute: 300 schemas, 301 columns, mostly null.
    let (_base, dir) = spill_dir();
    let want: Vec<Feature> = (0..300u64)
        .map(|i| {
            let own = format!("a{i}");
            let pairs = [
                ("k", Value::Int(i as i64)),
                (own.as_str(), Value::from("x")),
            ];
            Feature::from_pairs(
                i,
                if i % 2 == 0 {
                    pairs
                } else {
                    [pairs[1].clone(), pairs[0].clone()]
                },
            )
        })
        .collect();
    let run = write_run(&dir, "sparse", want.clone()).unwrap();
    assert_same_features(&read_all(&run), &want);
}

#[test]
fn empty_run_round_trips() {
    let (_base, dir) = spill_dir();
    let run = write_run(&dir, "empty", Vec::new()).unwrap();
    assert_eq!(run.rows, 0);
    assert_eq!(read_all(&run).len(), 0);
}

fn key_of(f: &Feature) -> &Value {
    &f.values()[0]
}

#[test]
fn merge_keeps_ties_in_run_order_with_the_tail_last() {
    let (_base, dir) = spill_dir();
    let schema = Schema::new(["k"]);
    let f = |id, k| Feature::new(id, schema.clone(), vec![Value::Int(k)]);
    let runs = vec![
        write_run(&dir, "t", vec![f(0, 1), f(1, 2)]).unwrap(),
        write_run(&dir, "t", vec![f(2, 1), f(3, 2)]).unwrap(),
    ];
    let tail = vec![f(4, 1), f(5, 1), f(6, 2)];
    let ids: Vec<u64> = merge(runs, tail, |a, b| key_of(a).total_cmp(key_of(b)))
        .unwrap()
        .map(|f| f.unwrap().id())
        .collect();
    assert_eq!(ids, vec![0, 2, 4, 5, 1, 3, 6]);
}

/// `n` sorted runs of random keys (and the stable sort of all of them).
fn sorted_runs(dir: &SpillDir, n: usize, per_run: usize) -> (Vec<SpillRun>, Vec<u64>) {
    let schema = Schema::new(["k", "s"]);
    let by_key = |a: &Feature, b: &Feature| key_of(a).total_cmp(key_of(b));
    let mut all = Vec::new();
    let mut runs = Vec::new();
    let mut x = 7u64;
    for r in 0..n {
        let mut part: Vec<Feature> = (0..per_run)
            .map(|i| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let id = (r * per_run + i) as u64;
                let k = Value::Int((x >> 58) as i64);
                Feature::new(id, schema.clone(), vec![k, format!("v{id}").into()])
            })
            .collect();
        all.extend(part.iter().cloned());
        part.sort_by(by_key);
        runs.push(write_run(dir, "m", part).unwrap());
    }
    all.sort_by(by_key);
    (runs, all.iter().map(Feature::id).collect())
}

#[test]
fn bounded_merge_of_many_runs_with_a_tiny_fan_in_equals_a_stable_sort() {
    let (_base, dir) = spill_dir();
    let (runs, want) = sorted_runs(&dir, 23, 300);
    let per_run = runs[0].open_cost();
    let write = runs[0].write_cost();
    // Room for three open runs and a writer: fan-in 3, so several levels.
    let budget = MemoryBudget::new(3 * per_run + write + per_run / 2);
    let space = MergeSpace {
        budget: &budget,
        dir: &dir,
        name: "sort",
    };
    let by_key = |a: &Feature, b: &Feature| key_of(a).total_cmp(key_of(b));
    let merged = merge_bounded(space, runs, Vec::new(), by_key).unwrap();
    // Fewer runs are open than were written, within the budget.
    assert!(merged.open_sources() < 23, "{merged:?}");
    assert!(merged.reserved() > 0 && merged.reserved() <= budget.limit());
    assert!(budget.peak() <= budget.limit());
    let got: Vec<u64> = merged.map(|f| f.unwrap().id()).collect();
    assert_eq!(got, want);
    // Intermediate runs were written, and every byte and file went back.
    assert!(dir.totals().0 > 23, "{:?}", dir.totals());
    assert_eq!(budget.reserved(), 0);
    assert_eq!(std::fs::read_dir(dir.path().unwrap()).unwrap().count(), 0);
}

#[test]
fn bounded_merge_with_room_for_all_runs_is_one_pass_and_returns_its_bytes_when_dropped() {
    let (_base, dir) = spill_dir();
    let (runs, want) = sorted_runs(&dir, 5, 100);
    let budget = MemoryBudget::new(64 << 20);
    let space = MergeSpace {
        budget: &budget,
        dir: &dir,
        name: "sort",
    };
    let by_key = |a: &Feature, b: &Feature| key_of(a).total_cmp(key_of(b));
    let cost: usize = runs.iter().map(SpillRun::open_cost).sum();
    let mut merged = merge_bounded(space, runs, Vec::new(), by_key).unwrap();
    assert_eq!(dir.totals().0, 5, "no intermediate run");
    assert_eq!(budget.reserved_by("sort"), cost);
    assert_eq!(merged.next().unwrap().unwrap().id(), want[0]);
    drop(merged);
    assert_eq!(budget.reserved(), 0);
}

#[test]
fn intermediate_runs_keep_every_value_across_runs_of_different_columns() {
    // Runs whose columns differ in names, order and type (int in one, float in another,
    // only nulls in a third), merged through intermediate runs with a fan-in of 2.
    let (_base, dir) = spill_dir();
    let mixed = mixed_features();
    let by_id = |a: &Feature, b: &Feature| a.id().cmp(&b.id());
    let mut want = Vec::new();
    let mut runs = Vec::new();
    for (r, chunk) in mixed.chunks(7).enumerate() {
        let mut part: Vec<Feature> = chunk.to_vec();
        part.push(Feature::from_pairs(
            10_000 + r as u64,
            [(
                "x",
                match r % 3 {
                    0 => Value::Int(r as i64),
                    1 => Value::Float(r as f64 + 0.5),
                    _ => Value::Null,
                },
            )],
        ));
        part.sort_by(by_id);
        want.extend(part.iter().cloned());
        runs.push(write_run(&dir, "m", part).unwrap());
    }
    want.sort_by(by_id);
    let budget = MemoryBudget::new(1);
    let space = MergeSpace {
        budget: &budget,
        dir: &dir,
        name: "dedup",
    };
    let n = runs.len();
    let got: Vec<Feature> = merge_bounded(space, runs, Vec::new(), by_id)
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(dir.totals().0 as usize >= 2 * n - 2, "{:?}", dir.totals());
    assert_same_features(&got, &want);
    assert_eq!(budget.reserved(), 0);
}

#[test]
fn merged_features_share_schemas_with_the_tail() {
    let (_base, dir) = spill_dir();
    let schema = Schema::new(["k"]);
    let f = |id, k| Feature::new(id, schema.clone(), vec![Value::Int(k)]);
    let runs = vec![write_run(&dir, "t", vec![f(0, 1)]).unwrap()];
    let out: Vec<Feature> = merge(runs, vec![f(1, 2)], |a, b| key_of(a).total_cmp(key_of(b)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(out.iter().all(|g| Arc::ptr_eq(g.schema(), &schema)));
}

#[test]
fn run_file_goes_on_drop_and_folder_with_the_dir() {
    let (_base, dir) = spill_dir();
    let run = write_run(&dir, "sort", mixed_features()).unwrap();
    let path = run.path.clone();
    let folder = dir.path().unwrap();
    assert!(path.exists());
    drop(run);
    assert!(!path.exists());
    let runs = vec![write_run(&dir, "a", mixed_features()).unwrap()];
    let run_path = runs[0].path.clone();
    let mut merged = merge(runs, Vec::new(), |a, b| a.id().cmp(&b.id())).unwrap();
    assert!(run_path.exists());
    for f in merged.by_ref() {
        f.unwrap();
    }
    assert!(
        !run_path.exists(),
        "an exhausted run is deleted before the merge ends"
    );
    drop(dir);
    assert!(!folder.exists());
}

#[test]
fn unwritable_spill_folder_gives_an_io_error_naming_the_file() {
    let (_base, dir) = spill_dir();
    let folder = dir
        .new_path("probe")
        .unwrap()
        .parent()
        .unwrap()
        .to_path_buf();
    std::fs::remove_dir_all(&folder).unwrap();
    std::fs::write(&folder, b"not a folder").unwrap();
    let err = write_run(&dir, "sort", vec![Feature::empty(1)]).unwrap_err();
    let ActionError::Io { context, .. } = &err else {
        panic!("{err:?}")
    };
    assert!(
        context.contains(&*folder.join("sort-1.parquet").to_string_lossy()),
        "{context}"
    );
}

#[test]
fn spill_base_that_is_a_file_gives_an_io_error_naming_it() {
    let base = tempfile::tempdir().unwrap();
    let file = base.path().join("file");
    std::fs::write(&file, b"x").unwrap();
    let dir = SpillDir::new(file.join("spill"));
    let err = write_run(&dir, "sort", vec![Feature::empty(1)]).unwrap_err();
    let ActionError::Io { context, .. } = &err else {
        panic!("{err:?}")
    };
    assert!(context.contains(&*file.to_string_lossy()), "{context}");
}

#[cfg(target_os = "linux")]
#[test]
fn full_disk_gives_an_io_error_naming_the_file() {
    let full = Path::new("/dev/full");
    if !full.exists() {
        return;
    }
    // `write_file` (unlike `write_run`) never removes what it wrote to.
    let err = write_file(full, mixed_features()).unwrap_err();
    let ActionError::Io { context, source } = &err else {
        panic!("{err:?}")
    };
    assert!(context.contains("/dev/full"), "{context}");
    assert_eq!(source.kind(), std::io::ErrorKind::StorageFull, "{source}");
}

#[test]
fn damaged_files_give_errors_not_panics() {
    let (_base, dir) = spill_dir();
    let run = write_run(&dir, "sort", mixed_features()).unwrap();
    let bytes = std::fs::read(&run.path).unwrap();
    // A truncated file always fails (its footer is gone), with an error naming it.
    for cut in (0..bytes.len()).step_by(97) {
        std::fs::write(&run.path, &bytes[..cut]).unwrap();
        let err = match run.read() {
            Ok(reader) => reader.filter_map(Result::err).next().unwrap(),
            Err(e) => e,
        };
        assert!(err.to_string().contains("spill file"), "{err}");
    }
    std::fs::write(&run.path, b"definitely not parquet").unwrap();
    let err = run.read().unwrap_err();
    assert!(
        err.to_string().contains(&*run.path.to_string_lossy()),
        "{err}"
    );
    // Flipped bytes may go unnoticed (a changed value), but must never panic.
    for at in (4..bytes.len() - 8).step_by(13) {
        let mut b = bytes.clone();
        b[at] ^= 0x5a;
        std::fs::write(&run.path, &b).unwrap();
        if let Ok(reader) = run.read() {
            let _ = reader.count();
        }
    }
}

#[test]
fn too_deep_a_value_is_refused_when_spilled() {
    let (_base, dir) = spill_dir();
    let mut v = Value::Int(1);
    for _ in 0..MAX_DEPTH + 2 {
        v = Value::Array(Arc::new([v]));
    }
    let err = write_run(&dir, "deep", vec![Feature::from_pairs(1, [("a", v)])]).unwrap_err();
    assert!(err.to_string().contains("nested deeper"), "{err}");
    assert_eq!(std::fs::read_dir(dir.path().unwrap()).unwrap().count(), 0);
}

#[test]
fn encoded_values_round_trip_and_truncations_fail() {
    for v in every_value() {
        let mut buf = Vec::new();
        encode_value(&v, &mut buf).unwrap();
        assert!(same(&decode_value(&buf).unwrap(), &v), "{v:?}");
        for cut in 0..buf.len() {
            assert!(decode_value(&buf[..cut]).is_err(), "{v:?} cut at {cut}");
        }
    }
}

fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        any::<f64>().prop_map(Value::Float),
        ".{0,6}".prop_map(Value::from),
        any::<i32>().prop_map(Value::Date),
        any::<i64>().prop_map(Value::DateTime),
        any::<i64>().prop_map(Value::LocalDateTime),
        prop::collection::vec(any::<u8>(), 0..6).prop_map(|b| Value::Bytes(b.into())),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| Value::Array(v.into())),
            prop::collection::btree_map(".{0,4}", inner, 0..4)
                .prop_map(|m| Value::Map(Arc::new(m))),
        ]
    })
}

/// Features over a small pool of attribute names, in random orders and subsets.
fn feature() -> impl Strategy<Value = Feature> {
    let names = prop::sample::subsequence(vec!["a", "b", "c", "d"], 0..=4).prop_shuffle();
    (
        names,
        prop::collection::vec(value(), 4),
        any::<Option<(f64, f64, Option<u32>)>>(),
    )
        .prop_map(|(names, values, g)| {
            let f = Feature::from_pairs(0, names.into_iter().zip(values));
            f.with_geometry(g.map(|(x, y, crs)| Geometry::in_crs(point!(x: x, y: y).into(), crs)))
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    #[test]
    fn random_values_encode_and_decode(v in value()) {
        let mut buf = Vec::new();
        encode_value(&v, &mut buf).unwrap();
        prop_assert!(same(&decode_value(&buf).unwrap(), &v));
    }

    #[test]
    fn random_bytes_never_panic_the_decoder(bytes in prop::collection::vec(any::<u8>(), 0..48)) {
        let _ = decode_value(&bytes);
    }

    #[test]
    fn random_features_round_trip(mut fs in prop::collection::vec(feature(), 0..30)) {
        for (i, f) in fs.iter_mut().enumerate() {
            f.set_id(i as u64);
        }
        let (_base, dir) = spill_dir();
        let run = write_run(&dir, "p", fs.clone()).unwrap();
        assert_same_features(&read_all(&run), &fs);
    }

    #[test]
    fn merge_equals_a_stable_sort(parts in prop::collection::vec(prop::collection::vec(0i64..5, 0..30), 6)) {
        let (_base, dir) = spill_dir();
        let schema = Schema::new(["k"]);
        let by_key = |a: &Feature, b: &Feature| key_of(a).total_cmp(key_of(b));
        let mut next = 0;
        let mut all = Vec::new();
        let mut sorted_parts = Vec::new();
        for keys in parts {
            let mut part: Vec<Feature> = keys
                .into_iter()
                .map(|k| {
                    next += 1;
                    Feature::new(next, schema.clone(), vec![Value::Int(k)])
                })
                .collect();
            all.extend(part.iter().cloned());
            part.sort_by(by_key);
            sorted_parts.push(part);
        }
        all.sort_by(by_key);
        let tail = sorted_parts.pop().unwrap();
        let runs = sorted_parts.into_iter().map(|p| write_run(&dir, "m", p).unwrap()).collect();
        let merged: Vec<u64> = merge(runs, tail, by_key).unwrap().map(|f| f.unwrap().id()).collect();
        prop_assert_eq!(merged, all.iter().map(Feature::id).collect::<Vec<_>>());
    }
}
