//! Whole workflows through the engine, each beside a baseline measured in the same run:
//!
//! - `csv_read/sluice` (csv_reader -> noop_sink, 200,000 W1 rows) vs `csv_read/csv_crate_loop`
//!   (the plain `csv` crate reading the same file and parsing the same fields);
//! - `csv_to_parquet/sluice` (csv_reader -> parquet_writer) vs `csv_to_parquet/arrow_direct`
//!   (the csv crate filling arrow builders, written with parquet's `ArrowWriter`, snappy, same
//!   row groups): the cost of going through features instead of columns;
//! - `w1_small/unlimited` vs `w1_small/memory_limit_16MB` (the W1 workflow on 200,000 rows,
//!   the second forced to spill).
//!
//! `cargo bench --bench e2e`

use std::hint::black_box;
use std::path::Path;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sluice::runtime::executor::{RunOptions, run};
use sluice::runtime::workflow::{self, VarSources};

const ROWS: u64 = 200_000;

fn data(dir: &Path) -> String {
    let path = dir.join("w1.csv");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    sluice::generate::w1(ROWS, 1, &mut f).unwrap();
    drop(f);
    path.display().to_string()
}

fn run_yaml(yaml: &str, vars: &[(&str, &str)], memory_limit: Option<u64>) {
    let vars = VarSources::new(
        vars.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    );
    let plan = workflow::load("bench.yaml", yaml, &sluice::actions::registry(), &vars).unwrap();
    let report = run(
        plan,
        RunOptions {
            memory_limit,
            ..RunOptions::default()
        },
    )
    .unwrap();
    black_box(report);
}

fn csv_crate_loop(path: &str) -> u64 {
    let mut r = csv::Reader::from_path(path).unwrap();
    let mut rec = csv::ByteRecord::new();
    let mut n = 0u64;
    while r.read_byte_record(&mut rec).unwrap() {
        let id: i64 = std::str::from_utf8(&rec[0]).unwrap().parse().unwrap();
        let name = std::str::from_utf8(&rec[1]).unwrap().to_string();
        let cat = std::str::from_utf8(&rec[2]).unwrap().to_string();
        let x: f64 = std::str::from_utf8(&rec[3]).unwrap().parse().unwrap();
        let y: f64 = std::str::from_utf8(&rec[4]).unwrap().parse().unwrap();
        let v: f64 = std::str::from_utf8(&rec[5]).unwrap().parse().unwrap();
        let ts = std::str::from_utf8(&rec[6]).unwrap().to_string();
        black_box((id, name, cat, x, y, v, ts));
        n += 1;
    }
    n
}

fn csv_read(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let path = data(dir.path());
    let yaml = "variables: { input: {} }\nnodes:\n  - { id: read, action: csv_reader, with: { path: \"${input}\" } }\n  - { id: drop, action: noop_sink }\nedges: [ read -> drop ]\n";
    let mut g = c.benchmark_group("csv_read");
    g.throughput(Throughput::Elements(ROWS));
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    g.bench_function("sluice", |b| {
        b.iter(|| run_yaml(yaml, &[("input", &path)], None))
    });
    g.bench_function("csv_crate_loop", |b| {
        b.iter(|| black_box(csv_crate_loop(&path)))
    });
    g.finish();
}

fn w1_small(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let path = data(dir.path());
    let out = dir.path().join("out.csv").display().to_string();
    let yaml =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("workflows/w1.yaml"))
            .unwrap();
    let mut g = c.benchmark_group("w1_small");
    g.throughput(Throughput::Elements(ROWS));
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    g.bench_function("unlimited", |b| {
        b.iter(|| run_yaml(&yaml, &[("input", &path), ("output", &out)], None))
    });
    g.bench_function("memory_limit_16MB", |b| {
        b.iter(|| run_yaml(&yaml, &[("input", &path), ("output", &out)], Some(16 << 20)))
    });
    g.finish();
}

fn arrow_direct(path: &str, out: &Path) {
    use arrow_array::builder::{Float64Builder, Int64Builder, StringBuilder};
    use arrow_array::{ArrayRef, RecordBatch};
    use std::sync::Arc;
    let schema = Arc::new(arrow_schema::Schema::new(vec![
        arrow_schema::Field::new("id", arrow_schema::DataType::Int64, true),
        arrow_schema::Field::new("name", arrow_schema::DataType::Utf8, true),
        arrow_schema::Field::new("category", arrow_schema::DataType::Utf8, true),
        arrow_schema::Field::new("x", arrow_schema::DataType::Float64, true),
        arrow_schema::Field::new("y", arrow_schema::DataType::Float64, true),
        arrow_schema::Field::new("value", arrow_schema::DataType::Float64, true),
        arrow_schema::Field::new("ts", arrow_schema::DataType::Utf8, true),
    ]));
    let props = parquet::file::properties::WriterProperties::builder()
        .set_compression(parquet::basic::Compression::SNAPPY)
        .build();
    let file = std::fs::File::create(out).unwrap();
    let mut w = parquet::arrow::ArrowWriter::try_new(file, schema.clone(), Some(props)).unwrap();
    let mut r = csv::Reader::from_path(path).unwrap();
    let mut rec = csv::ByteRecord::new();
    let field = |rec: &csv::ByteRecord, i: usize| std::str::from_utf8(&rec[i]).unwrap().to_string();
    loop {
        let (mut id, mut name, mut cat) = (
            Int64Builder::new(),
            StringBuilder::new(),
            StringBuilder::new(),
        );
        let (mut x, mut y, mut v, mut ts) = (
            Float64Builder::new(),
            Float64Builder::new(),
            Float64Builder::new(),
            StringBuilder::new(),
        );
        let mut n = 0;
        while n < 8192 && r.read_byte_record(&mut rec).unwrap() {
            id.append_value(field(&rec, 0).parse().unwrap());
            name.append_value(field(&rec, 1));
            cat.append_value(field(&rec, 2));
            x.append_value(field(&rec, 3).parse().unwrap());
            y.append_value(field(&rec, 4).parse().unwrap());
            v.append_value(field(&rec, 5).parse().unwrap());
            ts.append_value(field(&rec, 6));
            n += 1;
        }
        if n == 0 {
            break;
        }
        let cols: Vec<ArrayRef> = vec![
            Arc::new(id.finish()),
            Arc::new(name.finish()),
            Arc::new(cat.finish()),
            Arc::new(x.finish()),
            Arc::new(y.finish()),
            Arc::new(v.finish()),
            Arc::new(ts.finish()),
        ];
        w.write(&RecordBatch::try_new(schema.clone(), cols).unwrap())
            .unwrap();
    }
    w.close().unwrap();
}

fn csv_to_parquet(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let path = data(dir.path());
    let out = dir.path().join("out.parquet");
    let out_s = out.display().to_string();
    let yaml = "variables: { input: {}, output: {} }\nnodes:\n  - { id: read, action: csv_reader, with: { path: \"${input}\" } }\n  - { id: write, action: parquet_writer, with: { path: \"${output}\" } }\nedges: [ read -> write ]\n";
    let mut g = c.benchmark_group("csv_to_parquet");
    g.throughput(Throughput::Elements(ROWS));
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    g.bench_function("sluice", |b| {
        b.iter(|| run_yaml(yaml, &[("input", &path), ("output", &out_s)], None))
    });
    g.bench_function("arrow_direct", |b| b.iter(|| arrow_direct(&path, &out)));
    g.finish();
}

criterion_group!(benches, csv_read, csv_to_parquet, w1_small);
criterion_main!(benches);
