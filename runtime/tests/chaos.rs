//! Chaos: random DAGs (sources, transforms, accumulators, sinks; fan-in and fan-out; channel
//! bounds 1–64) whose actions fail or panic at a random feature, runs cancelled at a random
//! moment, and memory limits small enough to make the accumulators spill.
//!
//! Every run must end within its timeout, report a node that was set to fail (by name), leave
//! no output (unless it succeeded) and no temporary or spill file, and give every reservation
//! back to the memory budget. A successful run must deliver exact counts, to its sinks and to
//! the report, including the features dropped on ports that have no edge.
//!
//! `SLUICE_CHAOS_CASES` sets the number of cases (default 1000).

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock, Mutex};
use std::time::Duration;

use proptest::prelude::*;
use schemars::JsonSchema;
use serde::Deserialize;
use sluice_runtime::action::schema_of;
use sluice_runtime::executor::{RunOptions, RunReport, start};
use sluice_runtime::memory::{MemoryBudget, Reservation, SpillRun, merge, write_run};
use sluice_runtime::store::AtomicWriter;
use sluice_runtime::workflow::{self, VarSources};
use sluice_runtime::{
    ActionError, ActionKind, ActionSpec, Batch, BuiltAction, Emitter, Feature, NodeContext,
    NodeImpl, Processor, Registry, RunError, Schema, Sink, Source, Transform, Value,
};

/// A run that takes longer than this is a hang.
const TIMEOUT: Duration = Duration::from_secs(30);
const PANIC_MESSAGE: &str = "chaos panic at";

/// The budget of each case's run, captured by the accumulators (keyed by case number).
static BUDGETS: LazyLock<Mutex<HashMap<u64, MemoryBudget>>> = LazyLock::new(Default::default);
static NEXT_CASE: AtomicU64 = AtomicU64::new(0);

/// Where a test action fails, and how.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct Params {
    case: u64,
    /// `src`: features to emit.
    #[serde(default)]
    count: u64,
    /// Fail (or panic) on the feature with this id.
    #[serde(default)]
    fail_at: Option<u64>,
    #[serde(default)]
    panic: bool,
    /// `acc`: bytes reserved per held feature.
    #[serde(default)]
    bytes: usize,
    /// `out`: the output file.
    #[serde(default)]
    path: String,
}

impl Params {
    fn check(&self, f: &Feature) -> Result<(), ActionError> {
        if self.fail_at == Some(f.id()) {
            if self.panic {
                panic!("{PANIC_MESSAGE} {}", f.id());
            }
            return Err(ActionError::data(
                None,
                format!("chaos failure at {}", f.id()),
            ));
        }
        Ok(())
    }
}

fn params(c: &sluice_runtime::BuildContext) -> Result<Params, ActionError> {
    c.params()
}

const SRC: ActionSpec = ActionSpec::new(
    "src",
    ActionKind::Source,
    "chaos source",
    schema_of::<Params>,
    |c| {
        Ok(BuiltAction::new(NodeImpl::Source(Box::new(Src(params(
            c,
        )?)))))
    },
);

struct Src(Params);

impl Source for Src {
    fn run(&mut self, ctx: &NodeContext, out: &mut Emitter) -> Result<(), ActionError> {
        let schema = Schema::new(["i", "s"]);
        for i in 0..self.0.count {
            ctx.check_cancelled()?;
            let f = Feature::new(i, schema.clone(), vec![Value::Int(i as i64), "x".into()]);
            self.0.check(&f)?;
            out.emit(f)?;
        }
        Ok(())
    }
}

const STEP: ActionSpec = ActionSpec::new(
    "step",
    ActionKind::Processor,
    "chaos transform",
    schema_of::<Params>,
    |c| {
        Ok(BuiltAction::new(NodeImpl::Transform(Arc::new(Step(
            params(c)?,
        )))))
    },
);

struct Step(Params);

impl Transform for Step {
    fn apply(&self, features: Vec<Feature>, out: &mut Emitter) -> Result<(), ActionError> {
        for f in features {
            self.0.check(&f)?;
            out.emit(f)?;
        }
        Ok(())
    }
}

const ACC: ActionSpec = ActionSpec::new(
    "acc",
    ActionKind::Processor,
    "chaos accumulator",
    schema_of::<Params>,
    |c| {
        Ok(BuiltAction::new(NodeImpl::Processor(Box::new(Acc {
            p: params(c)?,
            held: Vec::new(),
            runs: Vec::new(),
            reservation: None,
        }))))
    },
)
.inputs(&["default", "other"])
.accumulates()
.heavy_finish();

/// Holds its input within a reservation, spilling sorted runs when the reservation cannot
/// grow; emits everything sorted by id in `finish` (failing there if told to).
struct Acc {
    p: Params,
    held: Vec<Feature>,
    runs: Vec<SpillRun>,
    reservation: Option<Reservation>,
}

impl Acc {
    fn spill(&mut self, ctx: &NodeContext) -> Result<(), ActionError> {
        if self.held.is_empty() {
            return Ok(());
        }
        let mut held = std::mem::take(&mut self.held);
        held.sort_by_key(|f| f.id());
        self.runs.push(write_run(&ctx.spill, "chaos", held)?);
        if let Some(r) = &mut self.reservation {
            r.free();
        }
        Ok(())
    }
}

impl Processor for Acc {
    fn process(
        &mut self,
        _: usize,
        batch: Batch,
        ctx: &NodeContext,
        _: &mut Emitter,
    ) -> Result<(), ActionError> {
        if self.reservation.is_none() {
            let budgets = BUDGETS.lock();
            budgets.unwrap().insert(self.p.case, ctx.budget.clone());
            self.reservation = Some(ctx.budget.register(&ctx.node_id));
        }
        for f in batch {
            // Held only when reserved: spill what is held, and if even one feature does not
            // fit (other accumulators hold the budget), spill it alone.
            let bytes = self.p.bytes;
            let grown = |s: &mut Self| s.reservation.as_mut().is_some_and(|r| r.try_grow(bytes));
            if !grown(self) {
                self.spill(ctx)?;
                if !grown(self) {
                    self.runs.push(write_run(&ctx.spill, "chaos", vec![f])?);
                    continue;
                }
            }
            self.held.push(f);
        }
        Ok(())
    }

    fn finish(&mut self, _: &NodeContext, out: &mut Emitter) -> Result<(), ActionError> {
        let mut tail = std::mem::take(&mut self.held);
        tail.sort_by_key(|f| f.id());
        let runs = std::mem::take(&mut self.runs);
        for f in merge(runs, tail, |a, b| a.id().cmp(&b.id()))? {
            let f = f?;
            self.p.check(&f)?;
            out.emit(f)?;
        }
        if let Some(r) = &mut self.reservation {
            r.free();
        }
        Ok(())
    }
}

const OUT: ActionSpec = ActionSpec::new(
    "out",
    ActionKind::Sink,
    "chaos sink",
    schema_of::<Params>,
    |c| {
        Ok(BuiltAction::new(NodeImpl::Sink(Box::new(Out {
            p: params(c)?,
            writer: None,
        }))))
    },
)
.inputs(&["default", "other"]);

/// Writes one line per feature through an [`AtomicWriter`].
struct Out {
    p: Params,
    writer: Option<AtomicWriter>,
}

impl Out {
    fn writer(&mut self) -> Result<&mut AtomicWriter, ActionError> {
        if self.writer.is_none() {
            let w = AtomicWriter::create(&self.p.path)
                .map_err(|e| ActionError::Other(e.to_string().into()))?;
            self.writer = Some(w);
        }
        Ok(self.writer.as_mut().expect("just created"))
    }
}

impl Sink for Out {
    fn write(&mut self, _: usize, batch: Batch, _: &NodeContext) -> Result<(), ActionError> {
        for f in batch {
            self.p.check(&f)?;
            writeln!(self.writer()?, "{}", f.id())
                .map_err(|e| ActionError::io("writing chaos output", e))?;
        }
        Ok(())
    }

    fn finish(&mut self, _: &NodeContext) -> Result<(), ActionError> {
        self.writer()?;
        Ok(())
    }

    fn commit(&mut self) -> Result<(), ActionError> {
        match self.writer.take() {
            Some(w) => w
                .commit()
                .map_err(|e| ActionError::Other(e.to_string().into())),
            None => Ok(()),
        }
    }

    fn abort(&mut self) {
        if let Some(w) = self.writer.take() {
            w.abort();
        }
    }
}

fn registry() -> Registry {
    Registry::from_specs([SRC, STEP, ACC, OUT])
}

/// One node of a random DAG.
#[derive(Debug, Clone)]
struct NodeShape {
    /// 0 src, 1 step, 2 acc, 3 out.
    kind: u8,
    count: u64,
    inputs: Vec<usize>,
    /// (feature id, panic instead of an error).
    fail: Option<(u64, bool)>,
}

#[derive(Debug, Clone)]
struct Case {
    nodes: Vec<NodeShape>,
    bound: usize,
    batch: usize,
    threads: usize,
    /// The memory limit, and how many features of it an accumulator's reservation holds.
    limit: u64,
    per_budget: usize,
    /// Cancel this many microseconds after the start.
    cancel_after_us: Option<u64>,
}

fn case() -> impl Strategy<Value = Case> {
    let node = |i: usize| {
        (
            if i == 0 {
                Just(0u8).boxed()
            } else {
                (0u8..4).boxed()
            },
            0u64..40,
            prop::collection::vec(0..i.max(1), 1..4),
            prop::option::weighted(0.12, (0u64..48, any::<bool>())),
        )
            .prop_map(|(kind, count, inputs, fail)| NodeShape {
                kind,
                count,
                inputs,
                fail,
            })
    };
    (2usize..10)
        .prop_flat_map(move |n| (0..n).map(node).collect::<Vec<_>>())
        .prop_flat_map(|nodes| {
            (
                Just(nodes),
                1usize..=64,
                1usize..=64,
                1usize..=2,
                prop::sample::select(vec![32u64 << 20, 48 << 20, 64 << 20, 1 << 30]),
                3usize..64,
                prop::option::weighted(0.2, 0u64..3000),
            )
        })
        .prop_map(
            |(nodes, bound, batch, threads, limit, per_budget, cancel_after_us)| Case {
                nodes,
                bound,
                batch,
                threads,
                limit,
                per_budget,
                cancel_after_us,
            },
        )
}

/// What a case should do if nothing is cancelled.
struct Expected {
    yaml: String,
    /// Nodes that will meet the feature they fail at.
    failing: Vec<String>,
    /// Sink id -> features it receives.
    sinks: Vec<(String, u64)>,
    /// Non-sink nodes with no outgoing edge -> features they drop.
    dropping: Vec<(String, u64)>,
}

fn build(c: &Case, case: u64, out_dir: &Path) -> Expected {
    // Budget = 60 % of the limit; an accumulator reserves `per_budget` features of it.
    let bytes = ((c.limit as f64 * 0.6) as usize / c.per_budget).max(1);
    let mut y = String::from("nodes:\n");
    let mut edges = String::from("edges:\n");
    let mut out_count: Vec<u64> = Vec::new();
    let mut max_id: Vec<u64> = Vec::new();
    let mut kinds: Vec<u8> = Vec::new();
    let mut has_edge_out: Vec<bool> = Vec::new();
    let mut failing = Vec::new();
    for (i, n) in c.nodes.iter().enumerate() {
        let mut feeders: Vec<usize> = Vec::new();
        for &j in &n.inputs {
            if j < i && kinds[j] != 3 && !feeders.contains(&j) {
                feeders.push(j);
            }
        }
        let kind = if n.kind != 0 && feeders.is_empty() {
            0
        } else {
            n.kind
        };
        // A transform has one input port; fan-in to it comes through the same port.
        let action = ["src", "step", "acc", "out"][kind as usize];
        let mut p = format!("case: {case}");
        if kind == 0 {
            p.push_str(&format!(", count: {}", n.count));
        }
        if let Some((at, panic)) = n.fail {
            p.push_str(&format!(", fail_at: {at}, panic: {panic}"));
        }
        if kind == 2 {
            p.push_str(&format!(", bytes: {bytes}"));
        }
        if kind == 3 {
            let path = out_dir.join(format!("n{i}.txt"));
            p.push_str(&format!(", path: {:?}", path.display().to_string()));
        }
        y.push_str(&format!(
            "  - {{ id: n{i}, action: {action}, with: {{ {p} }} }}\n"
        ));
        let (total, seen) = if kind == 0 {
            (n.count, n.count)
        } else {
            let mut total = 0;
            let mut seen = 0;
            for (k, &j) in feeders.iter().enumerate() {
                let port = if k % 2 == 1 && kind != 1 {
                    ".other"
                } else {
                    ""
                };
                edges.push_str(&format!("  - n{j} -> n{i}{port}\n"));
                has_edge_out[j] = true;
                total += out_count[j];
                seen = seen.max(max_id[j]);
            }
            (total, seen)
        };
        if let Some((at, _)) = n.fail
            && at < seen
        {
            failing.push(format!("n{i}"));
        }
        out_count.push(total);
        max_id.push(seen);
        kinds.push(kind);
        has_edge_out.push(false);
    }
    y.push_str(&edges);
    let mut sinks = Vec::new();
    let mut dropping = Vec::new();
    for i in 0..kinds.len() {
        if kinds[i] == 3 {
            sinks.push((format!("n{i}"), out_count[i]));
        } else if !has_edge_out[i] {
            dropping.push((format!("n{i}"), out_count[i]));
        }
    }
    Expected {
        yaml: y,
        failing,
        sinks,
        dropping,
    }
}

/// Runs the plan on a thread; `None` when it did not end within the timeout.
fn run_case(
    yaml: &str,
    options: RunOptions,
    cancel_after: Option<Duration>,
) -> Result<Option<Result<RunReport, RunError>>, String> {
    let plan = workflow::load("chaos.yaml", yaml, &registry(), &VarSources::default())
        .map_err(|e| format!("invalid chaos workflow: {e}\n{yaml}"))?;
    let handle = start(plan, options).map_err(|e| format!("start failed: {e}"))?;
    let cancel = handle.cancel_token();
    let (tx, rx) = crossbeam_channel::bounded(1);
    let waiter = std::thread::spawn(move || {
        let _ = tx.send(handle.wait());
    });
    let result = match cancel_after {
        Some(after) => match rx.recv_timeout(after) {
            Ok(r) => Some(r),
            Err(_) => {
                cancel.cancel();
                rx.recv_timeout(TIMEOUT).ok()
            }
        },
        None => rx.recv_timeout(TIMEOUT).ok(),
    };
    if result.is_some() {
        let _ = waiter.join();
    }
    Ok(result)
}

fn entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

fn check(c: Case) -> Result<(), TestCaseError> {
    let case = NEXT_CASE.fetch_add(1, Ordering::Relaxed);
    let tmp = tempfile::tempdir().map_err(|e| TestCaseError::fail(e.to_string()))?;
    let out_dir = tmp.path().join("out");
    let spill_dir = tmp.path().join("spill");
    std::fs::create_dir_all(&out_dir).map_err(|e| TestCaseError::fail(e.to_string()))?;
    let exp = build(&c, case, &out_dir);
    let yaml = &exp.yaml;
    let options = RunOptions {
        channel_bound: c.bound,
        batch_size: c.batch,
        threads: c.threads,
        memory_limit: Some(c.limit),
        spill_dir: Some(spill_dir.clone()),
        monitor_interval: Duration::from_millis(5),
        ..RunOptions::default()
    };
    let cancel_after = c.cancel_after_us.map(Duration::from_micros);
    let result = run_case(yaml, options, cancel_after).map_err(TestCaseError::fail)?;
    let Some(result) = result else {
        return Err(TestCaseError::fail(format!(
            "the run did not end within {TIMEOUT:?}\n{yaml}"
        )));
    };
    let budget = BUDGETS.lock().unwrap().remove(&case);
    if let Some(b) = budget {
        prop_assert_eq!(b.reserved(), 0, "reservations left after the run\n{}", yaml);
    }
    let spills = entries(&spill_dir);
    prop_assert!(
        spills.is_empty(),
        "spill files left: {:?}\n{}",
        spills,
        yaml
    );
    let outputs = entries(&out_dir);
    match result {
        Ok(report) => {
            prop_assert!(
                exp.failing.is_empty(),
                "the run succeeded, but {:?} should have failed\n{}",
                exp.failing,
                yaml
            );
            let mut want: Vec<String> = exp.sinks.iter().map(|(s, _)| format!("{s}.txt")).collect();
            want.sort();
            prop_assert_eq!(&outputs, &want, "outputs\n{}", yaml);
            for (sink, n) in &exp.sinks {
                prop_assert_eq!(
                    report.node(sink).unwrap().features_in,
                    *n,
                    "{}\n{}",
                    sink,
                    yaml
                );
                let text = std::fs::read_to_string(out_dir.join(format!("{sink}.txt")))
                    .map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert_eq!(text.lines().count() as u64, *n, "{}\n{}", sink, yaml);
            }
            for (node, n) in &exp.dropping {
                let r = report.node(node).unwrap();
                prop_assert_eq!(r.features_dropped, *n, "{} dropped\n{}", node, yaml);
                prop_assert_eq!(r.features_out, 0, "{} out\n{}", node, yaml);
            }
        }
        Err(e) => {
            prop_assert!(
                outputs.is_empty(),
                "a failed run left {:?}\n{}",
                outputs,
                yaml
            );
            match &e {
                RunError::Cancelled => prop_assert!(
                    cancel_after.is_some(),
                    "cancelled, but nobody cancelled\n{}",
                    yaml
                ),
                RunError::ActionFailed { node, .. } | RunError::Panicked { node, .. } => {
                    prop_assert!(
                        exp.failing.contains(node),
                        "{} failed, but only {:?} should\n{}",
                        e,
                        exp.failing,
                        yaml
                    );
                    let text = e.to_string();
                    prop_assert!(text.contains(&format!("\"{node}\"")), "{}", text);
                    prop_assert!(
                        text.contains("chaos failure at") || text.contains(PANIC_MESSAGE),
                        "{}",
                        text
                    );
                }
                other => {
                    return Err(TestCaseError::fail(format!(
                        "unexpected error {other}\n{yaml}"
                    )));
                }
            }
        }
    }
    Ok(())
}

fn cases() -> u32 {
    std::env::var("SLUICE_CHAOS_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
}

/// Keeps the expected panics of the test actions out of the test output.
fn quiet_expected_panics() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let msg = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or("");
        if !msg.starts_with(PANIC_MESSAGE) {
            default(info);
        }
    }));
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        max_shrink_iters: 200,
        failure_persistence: None,
        .. ProptestConfig::default()
    })]
    #[test]
    fn random_dags_fail_cancel_and_spill_cleanly(c in case()) {
        static HOOK: std::sync::Once = std::sync::Once::new();
        HOOK.call_once(quiet_expected_panics);
        check(c)?;
    }
}

/// The memory limits above do make the accumulators spill (and still count exactly).
#[test]
fn a_small_budget_makes_accumulators_spill() {
    let node = |kind, count, inputs: Vec<usize>| NodeShape {
        kind,
        count,
        inputs,
        fail: None,
    };
    let c = Case {
        nodes: vec![
            node(0, 39, vec![0]),
            node(0, 20, vec![0]),
            node(2, 0, vec![0, 1]),
            node(2, 0, vec![2]),
            node(3, 0, vec![3, 0]),
        ],
        bound: 4,
        batch: 3,
        threads: 2,
        limit: 32 << 20,
        per_budget: 5,
        cancel_after_us: None,
    };
    let tmp = tempfile::tempdir().unwrap();
    let exp = build(&c, 1 << 40, tmp.path());
    let options = RunOptions {
        channel_bound: c.bound,
        batch_size: c.batch,
        threads: c.threads,
        memory_limit: Some(c.limit),
        spill_dir: Some(tmp.path().join("spill")),
        ..RunOptions::default()
    };
    let report = run_case(&exp.yaml, options, None)
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(
        report.spill_files >= 4,
        "{} spill files",
        report.spill_files
    );
    assert_eq!(exp.sinks, [("n4".to_string(), 59 + 39)]);
    assert_eq!(report.node("n4").unwrap().features_in, 59 + 39);
    assert!(entries(&tmp.path().join("spill")).is_empty());
}
