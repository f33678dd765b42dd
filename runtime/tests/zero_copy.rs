//! Fan-out copies nothing. The deep-copy counter is process-wide, so this test has a test
//! binary to itself: no other test can copy features while it counts.

use sluice_runtime::capture::{CaptureEdges, CaptureOptions, Job};
use sluice_runtime::feature::{Feature, Value, deep_copies};
use sluice_runtime::testing::{Harness, run_workflow_yaml, test_registry};

#[test]
fn fan_out_to_eight_branches_makes_no_deep_copies() {
    let mut yaml = String::from("nodes:\n  - { id: src, action: gen, with: { count: 1000000 } }\n");
    let mut edges = String::from("edges:\n");
    for b in 0..8 {
        yaml.push_str(&format!(
            "  - {{ id: p{b}, action: pass }}\n  - {{ id: s{b}, action: count }}\n"
        ));
        edges.push_str(&format!("  - src -> p{b}\n  - p{b} -> s{b}\n"));
    }
    yaml.push_str(&edges);
    let before = deep_copies();
    let report = run_workflow_yaml(&yaml, &test_registry()).unwrap();
    assert_eq!(deep_copies() - before, 0);
    for b in 0..8 {
        assert_eq!(
            report.node(&format!("s{b}")).unwrap().features_in,
            1_000_000
        );
    }
    // Capturing every edge copies nothing either: the writers share the features and
    // serialise them from references.
    let job = tempfile::tempdir().unwrap();
    let harness = Harness {
        capture: Some(CaptureOptions::new(
            job.path().join("job").to_string_lossy(),
            CaptureEdges::All,
        )),
        ..Harness::default()
    };
    let before = deep_copies();
    harness.run_workflow_yaml(&yaml, &test_registry()).unwrap();
    assert_eq!(deep_copies() - before, 0);
    let job = Job::open(&job.path().join("job").to_string_lossy()).unwrap();
    assert_eq!(job.edges().len(), 16);
    assert!(
        job.edges()
            .iter()
            .all(|e| e.complete && e.features == 1_000_000)
    );

    // The counter counts: editing a shared feature is one deep copy.
    let a = Feature::from_pairs(1, [("x", Value::Int(1))]);
    let mut b = a.clone();
    let before = deep_copies();
    b.set("x", Value::Int(2));
    assert_eq!(deep_copies() - before, 1);
}
