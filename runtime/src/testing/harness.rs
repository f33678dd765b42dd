//! Runs one action, or a whole workflow, through the executor and checks the contract every
//! node keeps (see [`crate::action::traits`]):
//!
//! - each node starts once and ends once (one `NodeStarted`, then one `NodeFinished` or
//!   `NodeFailed`; a successful run has no `NodeFailed`);
//! - a `NodeFinished` names the same dropped ports and counts as the run report;
//! - a node's memory reservations are back to zero when its last method returns (a
//!   processor drains in `finish`, it does not keep what it drained);
//! - no temporary file remains: the spill folder is gone, and a sink leaves no `.sluice-tmp`
//!   or `.sluice-old` file beside its output;
//! - the run ends within a timeout (a hang fails the test and names the node states).
//!
//! A broken rule panics with the node and what it did, since these are test helpers.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::action::{
    ActionKind, ActionSpec, BuildContext, Emitter, NodeContext, NodeImpl, Processor, Registry,
    Sink, Source, schema_of,
};
use crate::dag::{Plan, PlanEdge, PlanNode};
use crate::error::{ActionError, RunError};
use crate::events::{Event, EventSender};
use crate::executor::{RunOptions, RunReport, start};
use crate::feature::{Batch, Feature};
use crate::memory::GatePolicy;
use crate::workflow::{self, VarSources};

/// How long a harness run may take before the test fails as a hang.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(120);

/// What a node emitted, by output port, and the run's report.
#[derive(Debug)]
pub struct Outputs {
    ports: Vec<(String, Vec<Feature>)>,
    /// The run report (the harness's feeding and collecting nodes included).
    pub report: RunReport,
}

impl Outputs {
    /// The features emitted on port `name`, in order. Panics on a port the node lacks.
    pub fn port(&self, name: &str) -> &[Feature] {
        match self.ports.iter().find(|(p, _)| p == name) {
            Some((_, features)) => features,
            None => panic!(
                "the node has no output port {name:?} (it has {:?})",
                self.ports.iter().map(|(p, _)| p).collect::<Vec<_>>()
            ),
        }
    }

    /// The features of the first (default) output port.
    pub fn default_port(&self) -> &[Feature] {
        &self.ports[0].1
    }

    /// Every port's features, in port order.
    pub fn into_ports(self) -> Vec<(String, Vec<Feature>)> {
        self.ports
    }
}

/// Settings of a harness run: the run options and the timeout. Events and the spill folder
/// are the harness's own (it watches both).
#[derive(Debug, Clone)]
pub struct Harness {
    /// Features per batch, in-flight bound, threads and memory limit of the run.
    pub batch_size: usize,
    /// Most features in flight per edge.
    pub channel_bound: usize,
    /// Threads of the shared pool (0: one per core).
    pub threads: usize,
    /// The memory limit in bytes (`None`: the default).
    pub memory_limit: Option<u64>,
    /// How heavy finishes are admitted.
    pub gate: GatePolicy,
    /// How long the run may take.
    pub timeout: Duration,
    /// Capture edges into a job folder (`None`: no capture).
    pub capture: Option<crate::capture::CaptureOptions>,
}

impl Default for Harness {
    fn default() -> Self {
        let d = RunOptions::default();
        Harness {
            batch_size: d.batch_size,
            channel_bound: d.channel_bound,
            threads: d.threads,
            memory_limit: None,
            gate: d.gate,
            timeout: DEFAULT_TIMEOUT,
            capture: None,
        }
    }
}

/// Runs a source with `params` and returns what it emitted.
pub fn run_source(spec: &ActionSpec, params: serde_json::Value) -> Result<Outputs, RunError> {
    Harness::default().run_source(spec, params)
}

/// Runs a processor with `params`, feeding `inputs[i]` to its input port `i`.
pub fn run_processor(
    spec: &ActionSpec,
    params: serde_json::Value,
    inputs: Vec<Vec<Feature>>,
) -> Result<Outputs, RunError> {
    Harness::default().run_processor(spec, params, inputs)
}

/// Runs a sink with `params`, feeding `inputs[i]` to its input port `i`; the output is
/// committed when the run succeeds.
pub fn run_sink(
    spec: &ActionSpec,
    params: serde_json::Value,
    inputs: Vec<Vec<Feature>>,
) -> Result<RunReport, RunError> {
    Harness::default()
        .run_processor(spec, params, inputs)
        .map(|o| o.report)
}

/// Loads a workflow against `registry` and runs it with every node checked.
pub fn run_workflow_yaml(yaml: &str, registry: &Registry) -> Result<RunReport, RunError> {
    Harness::default().run_workflow_yaml(yaml, registry)
}

impl Harness {
    /// Runs a source (see [`run_source`]).
    pub fn run_source(
        &self,
        spec: &ActionSpec,
        params: serde_json::Value,
    ) -> Result<Outputs, RunError> {
        assert_eq!(
            spec.kind,
            ActionKind::Source,
            "{} is not a source",
            spec.name
        );
        self.run_processor(spec, params, Vec::new())
    }

    /// Runs any action between feeding sources and collecting sinks (see
    /// [`run_processor`]; [`run_sink`] and [`run_source`] are this with no outputs or no
    /// inputs).
    pub fn run_processor(
        &self,
        spec: &ActionSpec,
        params: serde_json::Value,
        inputs: Vec<Vec<Feature>>,
    ) -> Result<Outputs, RunError> {
        assert_eq!(
            inputs.len(),
            spec.inputs.len(),
            "{} has {} input ports; give one feature list per port",
            spec.name,
            spec.inputs.len()
        );
        let built = (spec.build)(&BuildContext {
            node_id: "it",
            params: &params,
        })
        .map_err(|source| RunError::ActionFailed {
            node: "it".into(),
            source,
        })?;
        if let Err(message) = spec.check_built(&built) {
            panic!("{} {message}", spec.name);
        }
        let outputs = built
            .outputs
            .unwrap_or_else(|| spec.outputs.iter().map(|p| p.to_string()).collect());
        let mut nodes = vec![PlanNode {
            id: "it".into(),
            spec: *spec,
            node: built.node,
            inputs: spec.inputs.iter().map(|p| p.to_string()).collect(),
            outputs: outputs.clone(),
            params: serde_json::Value::Null,
        }];
        let mut edges = Vec::new();
        for (port, features) in inputs.into_iter().enumerate() {
            edges.push(PlanEdge {
                from: nodes.len(),
                from_port: 0,
                to: 0,
                to_port: port,
                capture: false,
            });
            nodes.push(plan_node(
                format!("feed{port}"),
                FEED,
                NodeImpl::Source(Box::new(Feed(Some(features)))),
            ));
        }
        let collected: Vec<Arc<Mutex<Vec<Feature>>>> =
            outputs.iter().map(|_| Arc::default()).collect();
        for (port, bucket) in collected.iter().enumerate() {
            edges.push(PlanEdge {
                from: 0,
                from_port: port,
                to: nodes.len(),
                to_port: 0,
                capture: false,
            });
            nodes.push(plan_node(
                format!("collect{port}"),
                COLLECT,
                NodeImpl::Sink(Box::new(Collect(bucket.clone()))),
            ));
        }
        let plan = Plan {
            name: Some(format!("harness for {}", spec.name)),
            nodes,
            edges,
            warnings: Vec::new(),
            variables: Default::default(),
        };
        let output_folder = spec
            .output_path
            .and_then(|param| params.get(param)?.as_str())
            .and_then(local_folder);
        let report = self.run_plan(plan, output_folder.as_deref())?;
        let ports = outputs
            .into_iter()
            .zip(collected)
            .map(|(port, bucket)| (port, std::mem::take(&mut *bucket.lock())))
            .collect();
        Ok(Outputs { ports, report })
    }

    /// Loads a workflow and runs it with every node checked (see [`run_workflow_yaml`]).
    pub fn run_workflow_yaml(
        &self,
        yaml: &str,
        registry: &Registry,
    ) -> Result<RunReport, RunError> {
        let plan = workflow::load("test.yaml", yaml, registry, &VarSources::default())?;
        self.run_plan(plan, None)
    }

    /// Runs a plan under the harness's checks. `output_folder`, when given, must hold no
    /// temporary or set-aside file afterwards.
    pub fn run_plan(
        &self,
        mut plan: Plan,
        output_folder: Option<&Path>,
    ) -> Result<RunReport, RunError> {
        let violations: Arc<Mutex<Vec<String>>> = Arc::default();
        for node in &mut plan.nodes {
            let inner = std::mem::replace(&mut node.node, placeholder());
            node.node = checked(inner, violations.clone());
        }
        let ids: Vec<String> = plan.nodes.iter().map(|n| n.id.clone()).collect();
        let spill = tempfile::tempdir().expect("a temporary folder for the spill");
        // Every event is kept: the checks below read them all.
        let (events, mut stream) = EventSender::stream_with_backlog(usize::MAX);
        let options = RunOptions {
            batch_size: self.batch_size,
            channel_bound: self.channel_bound,
            threads: self.threads,
            memory_limit: self.memory_limit,
            gate: self.gate,
            spill_dir: Some(spill.path().to_path_buf()),
            events,
            capture: self.capture.clone(),
            ..RunOptions::default()
        };
        let result = run_with_timeout(plan, options, self.timeout);
        let events: Vec<Event> = std::iter::from_fn(|| stream.try_next()).collect();
        let mut problems = std::mem::take(&mut *violations.lock());
        problems.extend(check_events(&ids, &events, result.is_ok()));
        if let Ok(report) = &result {
            problems.extend(check_drops(&events, report));
        }
        problems.extend(
            leftovers(spill.path())
                .into_iter()
                .map(|p| format!("the spill folder still holds {}", p.display())),
        );
        if let Some(folder) = output_folder {
            problems.extend(
                leftovers(folder)
                    .into_iter()
                    .filter(|p| {
                        let name = p.file_name().unwrap_or_default().to_string_lossy();
                        name.ends_with(".sluice-tmp") || name.ends_with(".sluice-old")
                    })
                    .map(|p| format!("a temporary output remains: {}", p.display())),
            );
        }
        assert!(
            problems.is_empty(),
            "the run broke the node contract:\n  {}",
            problems.join("\n  ")
        );
        result
    }
}

/// Runs a plan, failing the test (with every node's state) if it takes longer than `timeout`.
pub fn run_with_timeout(
    plan: Plan,
    options: RunOptions,
    timeout: Duration,
) -> Result<RunReport, RunError> {
    let handle = start(plan, options)?;
    let progress: Vec<(String, Arc<crate::executor::StateCell>)> = handle
        .counters()
        .iter()
        .map(|p| (p.id.clone(), p.state.clone()))
        .collect();
    let (tx, rx) = crossbeam_channel::bounded(1);
    let waiter = std::thread::spawn(move || {
        let _ = tx.send(handle.wait());
    });
    match rx.recv_timeout(timeout) {
        Ok(r) => {
            let _ = waiter.join();
            r
        }
        Err(_) => {
            let states: Vec<String> = progress
                .iter()
                .map(|(id, s)| {
                    let state = s.get().name();
                    format!("{id}: {state}")
                })
                .collect();
            panic!(
                "workflow did not finish within {timeout:?} (possible deadlock); nodes: {}",
                states.join(", ")
            )
        }
    }
}

/// Waits until some node of the run has taken in `features`, cancels it and waits for it to
/// end; gives its error and how long it took to end after the cancel.
pub fn cancel_once_flowing(
    handle: crate::executor::RunHandle,
    features: u64,
) -> (RunError, Duration) {
    while handle
        .progress()
        .nodes
        .iter()
        .all(|n| n.features_in < features)
    {
        std::thread::yield_now();
    }
    let cancelled = std::time::Instant::now();
    handle.cancel();
    let err = match handle.wait() {
        Ok(_) => RunError::Internal("the run ended without an error after the cancel".into()),
        Err(e) => e,
    };
    (err, cancelled.elapsed())
}

/// Loads a workflow string against `registry` and runs it under a timeout, with the caller's
/// options (its events, spill folder...). Prefer [`run_workflow_yaml`], which also checks
/// the node contract.
pub fn run_yaml(
    yaml: &str,
    registry: &Registry,
    options: RunOptions,
    timeout: Duration,
) -> Result<RunReport, RunError> {
    let plan = workflow::load("test.yaml", yaml, registry, &VarSources::default())?;
    run_with_timeout(plan, options, timeout)
}

/// The folder of a local output path (`None` for stdout and remote locations).
fn local_folder(location: &str) -> Option<PathBuf> {
    if location == "-" || location.contains("://") || location.contains('{') {
        return None;
    }
    let parent = Path::new(location).parent()?;
    Some(if parent.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        parent.to_path_buf()
    })
}

/// Every file or folder left under `folder` (none when it does not exist).
fn leftovers(folder: &Path) -> Vec<PathBuf> {
    match std::fs::read_dir(folder) {
        Ok(entries) => entries.filter_map(|e| e.ok().map(|e| e.path())).collect(),
        Err(_) => Vec::new(),
    }
}

/// Each node starts once and ends once; a successful run has no failed node.
pub(super) fn check_events(ids: &[String], events: &[Event], ok: bool) -> Vec<String> {
    let mut counts: BTreeMap<&str, [usize; 3]> = BTreeMap::new();
    for e in events {
        let (node, i) = match e {
            Event::NodeStarted { node } => (node, 0),
            Event::NodeFinished { node, .. } => (node, 1),
            Event::NodeFailed { node, .. } => (node, 2),
            _ => continue,
        };
        counts.entry(node.as_str()).or_default()[i] += 1;
    }
    let mut problems = Vec::new();
    for id in ids {
        let [started, finished, failed] = counts.get(id.as_str()).copied().unwrap_or_default();
        let ended = finished + failed;
        let wrong = if ok {
            started != 1 || finished != 1 || failed != 0
        } else {
            started > 1 || ended > 1 || ended > started
        };
        if wrong {
            problems.push(format!(
                "node {id:?}: started {started}, finished {finished}, failed {failed} times"
            ));
        }
    }
    problems
}

/// Each `NodeFinished` names the same dropped ports and counts as the run report.
pub(super) fn check_drops(events: &[Event], report: &RunReport) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::NodeFinished {
                node,
                features_dropped,
                dropped,
                ..
            } => {
                let n = report.node(node)?;
                let same = *features_dropped == n.features_dropped && *dropped == n.dropped;
                (!same).then(|| {
                    format!(
                        "node {node:?}: NodeFinished dropped {features_dropped} {dropped:?}, \
                         the report {} {:?}",
                        n.features_dropped, n.dropped
                    )
                })
            }
            _ => None,
        })
        .collect()
}

fn plan_node(id: String, spec: ActionSpec, node: NodeImpl) -> PlanNode {
    PlanNode {
        id,
        inputs: spec.inputs.iter().map(|p| p.to_string()).collect(),
        outputs: spec.outputs.iter().map(|p| p.to_string()).collect(),
        spec,
        node,
        params: serde_json::Value::Null,
    }
}

fn not_buildable(_: &BuildContext) -> Result<crate::action::BuiltAction, ActionError> {
    Err(ActionError::Other(
        "a harness node is made by the harness, not built from parameters".into(),
    ))
}

/// The feeding source's spec.
const FEED: ActionSpec = ActionSpec::new(
    "harness_feed",
    ActionKind::Source,
    "emits the features a test gives",
    schema_of::<super::NoParams>,
    not_buildable,
);

/// The collecting sink's spec.
const COLLECT: ActionSpec = ActionSpec::new(
    "harness_collect",
    ActionKind::Sink,
    "keeps what it receives for the test",
    schema_of::<super::NoParams>,
    not_buildable,
);

struct Feed(Option<Vec<Feature>>);

impl Source for Feed {
    fn run(&mut self, _: &NodeContext, out: &mut Emitter) -> Result<(), ActionError> {
        for f in self.0.take().unwrap_or_default() {
            out.emit(f)?;
        }
        Ok(())
    }
}

struct Collect(Arc<Mutex<Vec<Feature>>>);

impl Sink for Collect {
    fn write(&mut self, _: usize, batch: Batch, _: &NodeContext) -> Result<(), ActionError> {
        self.0.lock().extend(batch);
        Ok(())
    }
    fn finish(&mut self, _: &NodeContext) -> Result<(), ActionError> {
        Ok(())
    }
}

/// A stand-in while a node is moved into its checking wrapper.
fn placeholder() -> NodeImpl {
    NodeImpl::Source(Box::new(Feed(None)))
}

/// Wraps a node so that breaking the contract is recorded in `violations`.
fn checked(node: NodeImpl, violations: Arc<Mutex<Vec<String>>>) -> NodeImpl {
    match node {
        NodeImpl::Source(inner) => NodeImpl::Source(Box::new(Checked {
            inner,
            violations,
            finishes: 0,
        })),
        NodeImpl::Processor(inner) => NodeImpl::Processor(Box::new(Checked {
            inner,
            violations,
            finishes: 0,
        })),
        NodeImpl::Sink(inner) => NodeImpl::Sink(Box::new(Checked {
            inner,
            violations,
            finishes: 0,
        })),
        // Stateless: nothing held between calls, nothing to check.
        t @ NodeImpl::Transform(_) => t,
    }
}

struct Checked<T: ?Sized> {
    inner: Box<T>,
    violations: Arc<Mutex<Vec<String>>>,
    finishes: usize,
}

impl<T: ?Sized> Checked<T> {
    /// Records a second call of the last method, or memory still reserved after it.
    fn after_last_call(&mut self, ctx: &NodeContext, method: &str) {
        self.finishes += 1;
        if self.finishes > 1 {
            self.violations.lock().push(format!(
                "node {:?}: `{method}` was called {} times",
                ctx.node_id, self.finishes
            ));
        }
        let held = ctx.budget.reserved_by(&ctx.node_id);
        if held > 0 {
            self.violations.lock().push(format!(
                "node {:?}: {held} bytes still reserved after `{method}` returned",
                ctx.node_id
            ));
        }
    }
}

impl Source for Checked<dyn Source> {
    fn run(&mut self, ctx: &NodeContext, out: &mut Emitter) -> Result<(), ActionError> {
        let r = self.inner.run(ctx, out);
        if r.is_ok() {
            self.after_last_call(ctx, "run");
        }
        r
    }
}

impl Processor for Checked<dyn Processor> {
    fn process(
        &mut self,
        input: usize,
        batch: Batch,
        ctx: &NodeContext,
        out: &mut Emitter,
    ) -> Result<(), ActionError> {
        if self.finishes > 0 {
            self.violations.lock().push(format!(
                "node {:?}: `process` was called after `finish`",
                ctx.node_id
            ));
        }
        self.inner.process(input, batch, ctx, out)
    }

    fn finish(&mut self, ctx: &NodeContext, out: &mut Emitter) -> Result<(), ActionError> {
        let r = self.inner.finish(ctx, out);
        if r.is_ok() {
            self.after_last_call(ctx, "finish");
        }
        r
    }
}

impl Sink for Checked<dyn Sink> {
    fn write(&mut self, input: usize, batch: Batch, ctx: &NodeContext) -> Result<(), ActionError> {
        if self.finishes > 0 {
            self.violations.lock().push(format!(
                "node {:?}: `write` was called after `finish`",
                ctx.node_id
            ));
        }
        self.inner.write(input, batch, ctx)
    }

    fn finish(&mut self, ctx: &NodeContext) -> Result<(), ActionError> {
        let r = self.inner.finish(ctx);
        if r.is_ok() {
            self.after_last_call(ctx, "finish");
        }
        r
    }

    fn commit(&mut self) -> Result<(), ActionError> {
        self.inner.commit()
    }

    fn abort(&mut self) {
        self.inner.abort()
    }
}
