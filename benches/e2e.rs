//! Whole workflows through the engine, each beside a baseline measured in the same run:
//!
//! - `csv_read/sluice` (csv_reader -> noop_sink, 200,000 W1 rows) vs `csv_read/csv_crate_loop`
//!   (the plain `csv` crate reading the same file and parsing the same fields);
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

criterion_group!(benches, csv_read, w1_small);
criterion_main!(benches);
