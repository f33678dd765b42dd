//! Bytes per held feature and time to build them: sluice's shared-schema `Feature` against
//! the naive per-row map (`HashMap<Arc<str>, Value>`, one per row), measured in the same run
//! with a counting allocator. Rows are W1-shaped: id int, name string, category string, x, y,
//! value float, ts datetime.
//!
//! `cargo bench -p sluice-runtime --bench feature_size`

use std::alloc::{GlobalAlloc, Layout, System};
use std::collections::HashMap;
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use sluice_runtime::feature::{Feature, Schema, Value};

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards to the system allocator unchanged and only counts bytes.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const ROWS: usize = 2_000_000;
const NAMES: [&str; 7] = ["id", "name", "category", "x", "y", "value", "ts"];
const CATS: [&str; 6] = ["park", "lake", "road", "building", "forest", "river"];

fn row(i: usize) -> [Value; 7] {
    [
        Value::Int(i as i64),
        Value::from(format!("name_{i}")),
        Value::from(CATS[i % 6]),
        Value::Float(i as f64 * 0.001),
        Value::Float(i as f64 * 0.002),
        Value::Float((i % 1000) as f64),
        Value::DateTime(1_704_067_200_000_000 + i as i64),
    ]
}

fn measure<T>(label: &str, build: impl FnOnce() -> Vec<T>) -> (f64, f64) {
    let before = LIVE.load(Ordering::Relaxed);
    let t0 = Instant::now();
    let held = build();
    let secs = t0.elapsed().as_secs_f64();
    let bytes = (LIVE.load(Ordering::Relaxed) - before) as f64 / ROWS as f64;
    println!("{label:<40} {bytes:>8.1} bytes/row   {secs:>6.2} s to build {ROWS} rows");
    black_box(&held);
    drop(held);
    (bytes, secs)
}

fn main() {
    let schema = Schema::new(NAMES);
    let (sluice_bytes, sluice_secs) = measure("sluice Feature (shared schema)", || {
        (0..ROWS)
            .map(|i| Feature::new(i as u64, schema.clone(), row(i).into()))
            .collect::<Vec<_>>()
    });
    let keys: Vec<Arc<str>> = NAMES.iter().map(|n| Arc::from(*n)).collect();
    let (naive_bytes, naive_secs) = measure("naive HashMap<Arc<str>, Value> per row", || {
        (0..ROWS)
            .map(|i| {
                let mut m = HashMap::with_capacity(7);
                for (k, v) in keys.iter().zip(row(i)) {
                    m.insert(k.clone(), v);
                }
                m
            })
            .collect::<Vec<_>>()
    });
    println!(
        "ratio sluice / naive: {:.2} of the bytes, {:.2} of the build time",
        sluice_bytes / naive_bytes,
        sluice_secs / naive_secs
    );
}
