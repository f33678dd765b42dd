//! Reading many small files: one after another (read-ahead 1, the baseline) against the
//! default concurrent read-ahead.
//!
//! 1,000 CSV files of 100 rows each (five columns: int, float, string, date, bool) are
//! written to a temporary folder once; each iteration reads the whole folder with
//! `csv_reader` into a buffering emitter. `cargo bench -p sluice-actions --bench many_files`.
#![allow(missing_docs)]

use std::fmt::Write as _;
use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sluice_runtime::{BuildContext, Emitter, NodeContext, NodeImpl};

const FILES: usize = 1000;
const ROWS: usize = 100;

fn write_files(dir: &std::path::Path) {
    let mut text = String::new();
    for f in 0..FILES {
        text.clear();
        text.push_str("id,value,name,day,ok\n");
        for r in 0..ROWS {
            let id = f * ROWS + r;
            let _ = writeln!(
                text,
                "{id},{:.3},name-{},2024-{:02}-{:02},{}",
                id as f64 * 0.731,
                id % 97,
                id % 12 + 1,
                id % 28 + 1,
                id.is_multiple_of(2)
            );
        }
        std::fs::write(dir.join(format!("part-{f:04}.csv")), &text).unwrap();
    }
}

fn read_all(path: &str, read_ahead: Option<usize>) -> usize {
    let mut params = serde_json::json!({ "path": path });
    if let Some(n) = read_ahead {
        params["read_ahead"] = n.into();
    }
    let built = (sluice_actions::sources::csv_reader::SPEC.build)(&BuildContext {
        node_id: "bench",
        params: &params,
    })
    .unwrap();
    let NodeImpl::Source(mut source) = built.node else {
        panic!("csv_reader is a source")
    };
    let mut out = Emitter::for_outputs(sluice_actions::sources::csv_reader::SPEC.outputs);
    source
        .run(&NodeContext::standalone("bench"), &mut out)
        .unwrap();
    out.into_buffers()[0].len()
}

fn many_files(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    write_files(dir.path());
    let path = format!("{}/*.csv", dir.path().to_string_lossy());
    assert_eq!(read_all(&path, Some(1)), FILES * ROWS);
    assert_eq!(read_all(&path, None), FILES * ROWS);

    let mut group = c.benchmark_group("sources::many_files");
    group.sample_size(10);
    group.throughput(Throughput::Elements((FILES * ROWS) as u64));
    group.bench_function("read_ahead_1", |b| {
        b.iter(|| black_box(read_all(&path, Some(1))))
    });
    let default = NodeContext::standalone("bench").read_ahead();
    group.bench_function(format!("read_ahead_default_{default}"), |b| {
        b.iter(|| black_box(read_all(&path, None)))
    });
    group.finish();
}

criterion_group!(benches, many_files);
criterion_main!(benches);
