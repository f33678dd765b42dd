//! Cost of spilling: writing a million features to a Parquet run and streaming them back,
//! next to the cheapest thing an in-memory accumulator does with them (cloning the Vec).
//!
//! - `spill/write_read/1M_rows`: `write_run` + `SpillRun::read` to the end, and the two
//!   halves alone (`write/1M_rows`, `read/1M_rows`);
//! - `spill/in_memory_clone/1M_rows`: `Vec<Feature>::clone` (and its drop).
//!
//! Features have the 7-column W1 schema (id int, name string, category string, x, y, value
//! float, ts datetime), from a fixed-seed xorshift generator. Figures are rows per second
//! (`Throughput::Elements`); the file size per row is printed once.
//!
//! ```text
//! cargo bench -p sluice-runtime --bench spill -- --warm-up-time 1 --measurement-time 5 --sample-size 10
//! ```

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use sluice_runtime::Feature;
use sluice_runtime::memory::{SpillDir, write_run};

const ROWS: usize = 1_000_000;

fn write_read(dir: &SpillDir, features: Vec<Feature>) -> (usize, u64) {
    let run = write_run(dir, "bench", features).expect("spill write");
    let mut rows = 0;
    for f in run.read().expect("spill open") {
        black_box(f.expect("spill read"));
        rows += 1;
    }
    (rows, run.bytes)
}

fn spill(c: &mut Criterion) {
    let features = sluice_runtime::testing::w1_like_features(ROWS);
    let dir = SpillDir::system();
    let (rows, bytes) = write_read(&dir, features.clone());
    assert_eq!(rows, ROWS);
    eprintln!(
        "spill/write_read: {} bytes on disk ({:.1} bytes per row)",
        bytes,
        bytes as f64 / ROWS as f64
    );

    let mut group = c.benchmark_group("spill");
    group.throughput(Throughput::Elements(ROWS as u64));
    group.bench_function("write_read/1M_rows", |b| {
        b.iter_batched(
            || features.clone(),
            |fs| black_box(write_read(&dir, fs)),
            BatchSize::PerIteration,
        )
    });
    group.bench_function("write/1M_rows", |b| {
        b.iter_batched(
            || features.clone(),
            |fs| black_box(write_run(&dir, "bench", fs).expect("spill write")),
            BatchSize::PerIteration,
        )
    });
    let run = write_run(&dir, "bench", features.clone()).expect("spill write");
    group.bench_function("read/1M_rows", |b| {
        b.iter(|| {
            for f in run.read().expect("spill open") {
                black_box(f.expect("spill read"));
            }
        })
    });
    group.bench_function("in_memory_clone/1M_rows", |b| {
        b.iter(|| black_box(features.clone()))
    });
    group.finish();
}

criterion_group!(benches, spill);
criterion_main!(benches);
