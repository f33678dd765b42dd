//! Does a slow event consumer slow the run? W1 (2,000,000 generated rows; `SLUICE_ROWS`
//! changes it) run with no consumer and with a callback that takes 1 s per event, in turns
//! (A B A B ..., `SLUICE_ROUNDS` pairs, 3 by default), on the same machine in the same
//! process. Prints each time, the medians and their ratio (the bar: at most 1.05).
//!
//! `cargo bench --bench slow_consumer`

use std::time::{Duration, Instant};

use sluice::runtime::events::EventSender;
use sluice::runtime::executor::{RunOptions, run};
use sluice::runtime::workflow::{self, VarSources};

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn w1(input: &str, output: &str, events: EventSender) -> Duration {
    let vars = VarSources::new(
        [("input", input), ("output", output)]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    );
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let plan = workflow::load_file(
        &root.join("workflows/w1.yaml"),
        &sluice::actions::registry(),
        &vars,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let t0 = Instant::now();
    let report = run(
        plan,
        RunOptions {
            events,
            ..RunOptions::default()
        },
    )
    .unwrap();
    assert!(report.ok);
    t0.elapsed()
}

/// A consumer that takes a second over every event.
fn slow() -> EventSender {
    EventSender::callback(|_event| {
        let (_never, wait) = crossbeam_channel::bounded::<()>(0);
        let _ = wait.recv_timeout(Duration::from_secs(1));
    })
    .unwrap()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` runs this with no such flag
    // and needs only to know that it builds and starts.
    if !std::env::args().any(|a| a == "--bench") {
        return;
    }
    let rows = env("SLUICE_ROWS", 2_000_000);
    let rounds = env("SLUICE_ROUNDS", 3);
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("w1.csv");
    sluice::generate::w1_file(&input, rows, 1).unwrap();
    let (input, output) = (
        input.display().to_string(),
        dir.path().join("out.csv").display().to_string(),
    );
    // One run to warm the page cache and the allocator.
    w1(&input, &output, EventSender::none());
    let (mut none, mut slowed) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let a = w1(&input, &output, EventSender::none());
        let b = w1(&input, &output, slow());
        println!(
            "round {round}: no consumer {:.2} s, 1 s per event {:.2} s",
            a.as_secs_f64(),
            b.as_secs_f64()
        );
        none.push(a);
        slowed.push(b);
    }
    let (a, b) = (median(none), median(slowed));
    println!(
        "W1 {rows} rows, medians of {rounds}: no consumer {:.2} s, slow consumer {:.2} s, ratio {:.3} (bar: at most 1.05)",
        a.as_secs_f64(),
        b.as_secs_f64(),
        b.as_secs_f64() / a.as_secs_f64()
    );
}
