//! Engine tests: termination on awkward shapes, failures, panics, cancellation, fan-out.
//! Every run goes through `run_with_timeout`, so a deadlock fails instead of hanging.

use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::error::RunError;
use crate::testing::{
    HOLD_BYTES_PER_FEATURE, Harness, cancel_once_flowing, run_with_timeout, run_yaml, test_registry,
};
use crate::workflow::{self, VarSources};

const T: Duration = Duration::from_secs(60);

fn opts(bound: usize, batch: usize) -> RunOptions {
    RunOptions {
        channel_bound: bound,
        batch_size: batch,
        threads: 2,
        ..RunOptions::default()
    }
}

#[test]
fn diamond_with_bound_one_terminates() {
    let yaml = r#"
nodes:
  - { id: src, action: gen, with: { count: 100000 } }
  - { id: left, action: pass }
  - { id: right, action: hold }
  - { id: join, action: count }
edges:
  - src -> left
  - src -> right
  - left -> join
  - right -> join.other
"#;
    let report = run_yaml(yaml, &test_registry(), opts(1, 1), T).unwrap();
    assert_eq!(report.node("join").unwrap().features_in, 200_000);
    assert_eq!(report.edges.len(), 4);
    assert!(report.edges.iter().all(|e| e.features == 100_000));
}

#[test]
fn failure_names_the_node_and_stops_everything() {
    let yaml = r#"
nodes:
  - { id: src, action: gen, with: { count: 1000000 } }
  - { id: boom, action: fail, with: { at: 5000 } }
  - { id: sink, action: count }
edges: [ "src -> boom", "boom -> sink" ]
"#;
    let err = run_yaml(yaml, &test_registry(), opts(64, 16), T).unwrap_err();
    assert_eq!(err.to_string(), "node \"boom\" failed: bad feature 5000");
}

#[test]
fn panic_is_caught_and_reported() {
    let yaml = r#"
nodes:
  - { id: src, action: gen, with: { count: 100 } }
  - { id: boom, action: fail, with: { at: 7, panic: true } }
  - { id: sink, action: count }
edges: [ "src -> boom", "boom -> sink" ]
"#;
    match run_yaml(yaml, &test_registry(), opts(8, 4), T).unwrap_err() {
        RunError::Panicked { node, message } => {
            assert_eq!(node, "boom");
            assert_eq!(message, "boom at 7");
        }
        other => panic!("expected a panic report, got {other}"),
    }
}

#[test]
fn cancel_stops_a_long_run_within_a_second() {
    let yaml = r#"
nodes:
  - { id: src, action: gen, with: { count: 10000000000 } }
  - { id: hold, action: hold }
  - { id: mid, action: pass }
  - { id: sink, action: count }
edges: [ "src -> mid", "mid -> sink", "src -> hold", "hold -> sink.other" ]
"#;
    let plan = workflow::load("t.yaml", yaml, &test_registry(), &VarSources::default()).unwrap();
    let handle = start(plan, opts(1024, 256)).unwrap();
    let (err, took) = cancel_once_flowing(handle, 10_000);
    assert!(matches!(err, RunError::Cancelled), "{err}");
    assert!(took < Duration::from_secs(1), "took {took:?}");
}

#[test]
fn reservations_are_returned_and_gate_admits_all() {
    let yaml = r#"
nodes:
  - { id: src, action: gen, with: { count: 5000 } }
  - { id: h1, action: hold }
  - { id: h2, action: hold }
  - { id: sink, action: count }
edges: [ "src -> h1", "src -> h2", "h1 -> sink", "h2 -> sink.other" ]
"#;
    for gate in [
        GatePolicyT::Adaptive,
        GatePolicyT::Semaphore(1),
        GatePolicyT::Ungated,
    ] {
        // The harness fails the test if a node still holds a reservation after `finish`.
        let harness = Harness {
            gate,
            channel_bound: 64,
            batch_size: 32,
            threads: 2,
            ..Harness::default()
        };
        let r = harness.run_workflow_yaml(yaml, &test_registry()).unwrap();
        assert_eq!(r.node("sink").unwrap().features_in, 10_000);
        for h in ["h1", "h2"] {
            assert_eq!(
                r.node(h).unwrap().peak_reservation,
                5000 * HOLD_BYTES_PER_FEATURE as u64
            );
        }
    }
}

use crate::memory::GatePolicy as GatePolicyT;

/// A random DAG: sources, pass/hold processors reading from earlier nodes, count sinks.
#[derive(Debug, Clone)]
struct Shape {
    nodes: Vec<(u8, u64, Vec<usize>)>, // (kind 0 gen 1 pass 2 hold 3 count, count, inputs)
    bound: usize,
    batch: usize,
}

fn shape() -> impl Strategy<Value = Shape> {
    (
        2usize..10,
        prop::sample::select(vec![1usize, 2, 7, 64, 4096]),
        prop::sample::select(vec![1usize, 3, 64, 1024]),
    )
        .prop_flat_map(|(n, bound, batch)| {
            let nodes = (0..n)
                .map(|i| {
                    (
                        if i == 0 {
                            Just(0u8).boxed()
                        } else {
                            (0u8..4).boxed()
                        },
                        prop::sample::select(vec![0u64, 1, 17, 300]),
                        prop::collection::vec(0..i.max(1), 1..3),
                    )
                })
                .collect::<Vec<_>>();
            (nodes, Just(bound), Just(batch))
        })
        .prop_map(|(nodes, bound, batch)| Shape {
            nodes,
            bound,
            batch,
        })
}

fn to_yaml(s: &Shape) -> (String, Vec<Option<u64>>) {
    let mut y = String::from("nodes:\n");
    let mut edges = String::from("edges:\n");
    let mut out_counts: Vec<u64> = Vec::new();
    let mut sink_in: Vec<Option<u64>> = Vec::new();
    let mut is_sink: Vec<bool> = Vec::new();
    for (i, (kind, count, inputs)) in s.nodes.iter().enumerate() {
        // Only nodes with outputs can feed others.
        let feeders: Vec<usize> = inputs
            .iter()
            .copied()
            .filter(|j| *j < i && !is_sink[*j])
            .collect();
        let kind = if *kind != 0 && feeders.is_empty() {
            0
        } else {
            *kind
        };
        let action = ["gen", "pass", "hold", "count"][kind as usize];
        match kind {
            0 => y.push_str(&format!(
                "  - {{ id: n{i}, action: gen, with: {{ count: {count} }} }}\n"
            )),
            _ => y.push_str(&format!("  - {{ id: n{i}, action: {action} }}\n")),
        }
        let mut total = if kind == 0 { *count } else { 0 };
        if kind != 0 {
            let mut seen = Vec::new();
            for (k, j) in feeders.iter().enumerate() {
                if seen.contains(j) {
                    continue;
                }
                seen.push(*j);
                // Two-input nodes take their second feeder on the `other` port.
                let port = if k == 1 && kind != 1 { ".other" } else { "" };
                edges.push_str(&format!("  - n{j} -> n{i}{port}\n"));
                total += out_counts[*j];
            }
        }
        out_counts.push(total);
        is_sink.push(kind == 3);
        sink_in.push((kind == 3).then_some(total));
    }
    y.push_str(&edges);
    (y, sink_in)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]
    #[test]
    fn random_dags_terminate_with_exact_counts(s in shape()) {
        let (yaml, expected) = to_yaml(&s);
        let plan = workflow::load("p.yaml", &yaml, &test_registry(), &VarSources::default())
            .map_err(|e| TestCaseError::fail(format!("{e}\n{yaml}")))?;
        let report = run_with_timeout(plan, opts(s.bound, s.batch), T).map_err(|e| TestCaseError::fail(e.to_string()))?;
        for (i, exp) in expected.iter().enumerate() {
            if let Some(n) = exp {
                prop_assert_eq!(report.node(&format!("n{i}")).unwrap().features_in, *n, "{}", yaml);
            }
        }
    }
}

#[test]
fn progress_snapshots_and_coalesced_events_follow_the_run() {
    use crate::events::{Event, EventSender};
    let yaml = r#"
nodes:
  - { id: src, action: gen, with: { count: 1500000 } }
  - { id: keep, action: pass }
  - { id: boom, action: pass }
  - { id: sink, action: count }
edges: [ "src -> keep", "keep -> sink", "src -> boom", "boom -> sink.other" ]
"#;
    let plan = workflow::load("t.yaml", yaml, &test_registry(), &VarSources::default()).unwrap();
    let (events, stream) = EventSender::stream();
    let handle = start(
        plan,
        RunOptions {
            events,
            ..opts(64, 256)
        },
    )
    .unwrap();
    let first = handle.progress();
    let names: Vec<&str> = first.edges.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        ["src->keep", "keep->sink", "src->boom", "boom->sink.other"]
    );
    assert_eq!(first.nodes.len(), 4);
    let mut ticks: Vec<super::Progress> = Vec::new();
    let mut last_event = None;
    for e in stream {
        if let Event::Progress(p) = &e {
            ticks.push(p.clone());
        }
        last_event = Some(e);
    }
    assert!(matches!(
        last_event,
        Some(Event::RunFinished { ok: true, .. })
    ));
    // The stream ended with the run: every node is done and the snapshot's counts are final.
    let end = handle.progress();
    assert!(
        end.nodes.iter().all(|n| n.state == NodeState::Done),
        "{end:?}"
    );
    let report = handle.wait().unwrap();
    for (snap, rep) in end.edges.iter().zip(&report.edges) {
        assert_eq!(snap.features, rep.features, "{}", snap.name);
    }
    assert_eq!(end.edges[0].features, 1_500_000);
    // Coalesced: about ten a second whatever the feature rate, and counts only grow.
    let secs = report.elapsed_ms / 1e3;
    assert!(
        (ticks.len() as f64) <= secs * 10.0 + 2.0,
        "{} progress events in {secs:.2}s",
        ticks.len()
    );
    assert!(!ticks.is_empty());
    for pair in ticks.windows(2) {
        for (a, b) in pair[0].edges.iter().zip(&pair[1].edges) {
            assert!(a.features <= b.features);
        }
        assert!(pair[0].elapsed <= pair[1].elapsed);
    }
}

#[test]
fn a_failed_node_shows_failed_in_the_snapshot() {
    let yaml = r#"
nodes:
  - { id: src, action: gen, with: { count: 100000 } }
  - { id: boom, action: fail, with: { at: 500 } }
  - { id: sink, action: count }
edges: [ "src -> boom", "boom -> sink" ]
"#;
    let plan = workflow::load("t.yaml", yaml, &test_registry(), &VarSources::default()).unwrap();
    let (events, stream) = crate::events::EventSender::stream();
    let handle = start(
        plan,
        RunOptions {
            events,
            ..opts(64, 16)
        },
    )
    .unwrap();
    assert!(stream.count() > 0);
    let end = handle.progress();
    let state = |id: &str| end.nodes.iter().find(|n| n.id == id).unwrap().state;
    assert_eq!(state("boom"), NodeState::Failed);
    assert!(handle.wait().is_err());
}
