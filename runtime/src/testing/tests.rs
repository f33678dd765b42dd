//! The harness passes well-behaved nodes and catches the ones that break the contract.

use std::panic::{AssertUnwindSafe, catch_unwind};

use super::*;
use crate::action::{ActionKind, BuiltAction, Emitter, NodeContext, Processor, schema_of};
use crate::error::RunError;
use crate::feature::{Batch, Feature};
use crate::memory::Reservation;

fn features(n: u64) -> Vec<Feature> {
    (0..n)
        .map(|i| Feature::from_pairs(i, [("i", (i as i64).into())]))
        .collect()
}

fn ids(features: &[Feature]) -> Vec<u64> {
    features.iter().map(|f| f.id()).collect()
}

/// The panic message of `f`, which must panic.
fn panic_message(f: impl FnOnce()) -> String {
    let payload = catch_unwind(AssertUnwindSafe(f)).expect_err("the harness did not object");
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

#[test]
fn a_source_runs_through_the_executor_and_its_features_come_back_in_order() {
    let out = run_source(&GEN, serde_json::json!({"count": 3000})).unwrap();
    assert_eq!(ids(out.default_port()), (0..3000).collect::<Vec<_>>());
    assert_eq!(out.report.node("it").unwrap().features_out, 3000);
}

#[test]
fn a_processor_gets_each_input_port_and_returns_its_reservation() {
    let harness = Harness {
        batch_size: 7,
        ..Harness::default()
    };
    let out = harness
        .run_processor(
            &HOLD,
            serde_json::json!({}),
            vec![features(50), features(20)],
        )
        .unwrap();
    let mut got = ids(out.port("default"));
    got.sort_unstable();
    let mut want: Vec<u64> = (0..50).chain(0..20).collect();
    want.sort_unstable();
    assert_eq!(got, want);
    assert_eq!(
        out.report.node("it").unwrap().peak_reservation,
        70 * HOLD_BYTES_PER_FEATURE as u64
    );
}

#[test]
fn a_failing_node_is_an_error_not_a_broken_contract() {
    let err = run_processor(&FAIL, serde_json::json!({"at": 5}), vec![features(10)]).unwrap_err();
    assert!(
        matches!(&err, RunError::ActionFailed { node, .. } if node == "it"),
        "{err}"
    );
}

#[test]
fn a_workflow_runs_with_every_node_checked() {
    let yaml = "nodes:\n  - { id: g, action: gen, with: { count: 500 } }\n  - { id: h, action: hold }\n  - { id: c, action: count }\nedges: [ \"g -> h\", \"h -> c\" ]\n";
    let report = run_workflow_yaml(yaml, &test_registry()).unwrap();
    assert_eq!(report.node("c").unwrap().features_in, 500);
    assert_eq!(
        report.node("h").unwrap().peak_reservation,
        500 * HOLD_BYTES_PER_FEATURE as u64
    );
}

/// Holds its reservation after `finish` returns: a leak the harness must name.
struct Hoarder(Option<Reservation>);

impl Processor for Hoarder {
    fn process(
        &mut self,
        _: usize,
        batch: Batch,
        ctx: &NodeContext,
        out: &mut Emitter,
    ) -> Result<(), ActionError> {
        self.0
            .get_or_insert_with(|| ctx.budget.register(&ctx.node_id))
            .grow(batch.len())?;
        out.emit_batch(0, batch)
    }
}

const HOARDER: ActionSpec = ActionSpec::new(
    "hoarder",
    ActionKind::Processor,
    "keeps its reservation",
    schema_of::<NoParams>,
    |_| {
        Ok(BuiltAction::new(NodeImpl::Processor(Box::new(Hoarder(
            None,
        )))))
    },
);

#[test]
fn memory_still_reserved_after_finish_is_named() {
    let message = panic_message(|| {
        let _ = run_processor(&HOARDER, serde_json::json!({}), vec![features(10)]);
    });
    assert!(
        message.contains("node \"it\": 10 bytes still reserved after `finish` returned"),
        "{message}"
    );
}

/// Leaves a temporary file beside the output it names.
struct Litterer(std::path::PathBuf);

impl Sink for Litterer {
    fn write(&mut self, _: usize, _: Batch, _: &NodeContext) -> Result<(), ActionError> {
        Ok(())
    }
    fn finish(&mut self, _: &NodeContext) -> Result<(), ActionError> {
        let folder = self.0.parent().unwrap();
        std::fs::write(folder.join(".out.csv.1-2-3.sluice-tmp"), b"half")
            .map_err(|e| ActionError::io("writing", e))
    }
}

#[derive(serde::Deserialize, schemars::JsonSchema)]
struct PathParams {
    path: String,
}

const LITTERER: ActionSpec = ActionSpec::new(
    "litterer",
    ActionKind::Sink,
    "leaves a temporary file",
    schema_of::<PathParams>,
    |c| {
        let p: PathParams = c.params()?;
        Ok(BuiltAction::new(NodeImpl::Sink(Box::new(Litterer(
            p.path.into(),
        )))))
    },
)
.writes_to("path");

#[test]
fn a_temporary_output_left_behind_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("out.csv");
    let message = panic_message(|| {
        let _ = run_sink(
            &LITTERER,
            serde_json::json!({"path": path.to_str().unwrap()}),
            vec![features(3)],
        );
    });
    assert!(
        message.contains("a temporary output remains") && message.contains(".sluice-tmp"),
        "{message}"
    );
}

#[test]
fn event_counts_are_checked_per_node() {
    use crate::events::Event;
    let ids = ["a".to_string(), "b".to_string()];
    let started = |n: &str| Event::NodeStarted { node: n.into() };
    let failed = |n: &str| Event::NodeFailed {
        node: n.into(),
        error: "x".into(),
    };
    let events = [started("a"), started("a"), started("b"), failed("b")];
    let problems = super::harness::check_events(&ids, &events, true);
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems[0].contains("\"a\": started 2"), "{problems:?}");
    assert!(problems[1].contains("\"b\": started 1, finished 0, failed 1"));
    assert!(super::harness::check_events(&ids, &events[2..], false).is_empty());
}

#[test]
fn drops_in_node_finished_are_checked_against_the_report() {
    use crate::events::{Event, EventSender};
    use crate::executor::RunOptions;
    // `p` has no outgoing edge: its five features are dropped on `default`.
    let yaml = "nodes:\n  - { id: g, action: gen, with: { count: 5 } }\n  - { id: p, action: pass }\nedges: [ \"g -> p\" ]\n";
    let (events, mut rx) = EventSender::stream();
    let options = RunOptions {
        events,
        ..RunOptions::default()
    };
    let report = run_yaml(yaml, &test_registry(), options, DEFAULT_TIMEOUT).unwrap();
    let mut events: Vec<Event> = std::iter::from_fn(|| rx.try_next()).collect();
    assert!(super::harness::check_drops(&events, &report).is_empty());
    for e in &mut events {
        if let Event::NodeFinished { node, dropped, .. } = e
            && node == "p"
        {
            assert_eq!(
                (dropped[0].port.as_str(), dropped[0].features),
                ("default", 5)
            );
            dropped[0].features = 4;
        }
    }
    let problems = super::harness::check_drops(&events, &report);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].starts_with("node \"p\": NodeFinished dropped 5"),
        "{problems:?}"
    );
}
