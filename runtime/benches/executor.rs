//! Executor overheads, each beside its baseline in the same group:
//!
//! - `chain/10_nodes` (source → 8 pass-through transforms → sink; the transforms fused onto
//!   one thread, as runs do by default) and `chain/10_nodes_unfused` (one thread per node) vs
//!   `chain/single_thread_loop` (the same features made and handed through 10 stages in one
//!   loop);
//! - `fanout/1_branch` vs `fanout/8_branches` (time), and the bytes held by each (peak RSS
//!   above the starting RSS), printed once per size.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use sluice_runtime::executor::{RunOptions, run};
use sluice_runtime::feature::{Feature, Schema, Value};
use sluice_runtime::memory::current_rss;
use sluice_runtime::testing::test_registry;
use sluice_runtime::workflow::{self, VarSources};

/// The allocator the `sluice` binary runs with: features are made on one thread and freed
/// on another, which the system allocator serves far slower (its arenas are per thread).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const N: u64 = 200_000;

fn chain_yaml(stages: usize) -> String {
    let mut y = format!("nodes:\n  - {{ id: src, action: gen, with: {{ count: {N} }} }}\n");
    let mut e = String::from("edges:\n");
    let mut prev = "src".to_string();
    for i in 0..stages {
        y.push_str(&format!("  - {{ id: p{i}, action: pass }}\n"));
        e.push_str(&format!("  - {prev} -> p{i}\n"));
        prev = format!("p{i}");
    }
    y.push_str("  - { id: sink, action: count }\n");
    e.push_str(&format!("  - {prev} -> sink\n"));
    y + &e
}

fn fanout_yaml(branches: usize) -> String {
    let mut y = format!("nodes:\n  - {{ id: src, action: gen, with: {{ count: {N} }} }}\n");
    let mut e = String::from("edges:\n");
    for b in 0..branches {
        y.push_str(&format!(
            "  - {{ id: p{b}, action: pass }}\n  - {{ id: s{b}, action: count }}\n"
        ));
        e.push_str(&format!("  - src -> p{b}\n  - p{b} -> s{b}\n"));
    }
    y + &e
}

fn run_yaml(yaml: &str) -> u64 {
    run_yaml_with(yaml, RunOptions::default())
}

fn run_yaml_with(yaml: &str, options: RunOptions) -> u64 {
    let plan =
        workflow::load("bench.yaml", yaml, &test_registry(), &VarSources::default()).unwrap();
    let report = run(plan, options).unwrap();
    report.peak_rss_bytes
}

fn single_thread_loop() -> u64 {
    let schema = Schema::new(["i", "s"]);
    let mut count = 0u64;
    let mut stage: Vec<Feature> = Vec::with_capacity(1024);
    let mut next: Vec<Feature> = Vec::with_capacity(1024);
    for start in (0..N).step_by(1024) {
        for i in start..(start + 1024).min(N) {
            stage.push(Feature::new(
                i,
                schema.clone(),
                vec![Value::Int(i as i64), Value::from("x")],
            ));
        }
        for _ in 0..9 {
            next.append(&mut stage);
            std::mem::swap(&mut stage, &mut next);
        }
        count += stage.len() as u64;
        stage.clear();
    }
    count
}

fn chain(c: &mut Criterion) {
    let mut g = c.benchmark_group("chain");
    g.throughput(Throughput::Elements(N));
    g.sample_size(10).measurement_time(Duration::from_secs(8));
    let yaml = chain_yaml(8);
    g.bench_function("10_nodes", |b| b.iter(|| black_box(run_yaml(&yaml))));
    g.bench_function("10_nodes_unfused", |b| {
        b.iter(|| {
            black_box(run_yaml_with(
                &yaml,
                RunOptions {
                    fuse_transforms: false,
                    ..RunOptions::default()
                },
            ))
        })
    });
    let bare = chain_yaml(0);
    g.bench_function("2_nodes", |b| b.iter(|| black_box(run_yaml(&bare))));
    g.bench_function("single_thread_loop", |b| {
        b.iter(|| black_box(single_thread_loop()))
    });
    g.finish();
}

fn fanout(c: &mut Criterion) {
    let mut g = c.benchmark_group("fanout");
    g.throughput(Throughput::Elements(N));
    g.sample_size(10).measurement_time(Duration::from_secs(8));
    for branches in [1usize, 8] {
        let yaml = fanout_yaml(branches);
        let before = current_rss();
        let peak = run_yaml(&yaml);
        eprintln!(
            "fanout/{branches}: bytes held (peak RSS above start) = {} KiB",
            peak.saturating_sub(before) / 1024
        );
        let name = if branches == 1 {
            "1_branch"
        } else {
            "8_branches"
        };
        g.bench_function(name, |b| b.iter(|| black_box(run_yaml(&yaml))));
    }
    g.finish();
}

criterion_group!(benches, chain, fanout);
criterion_main!(benches);
