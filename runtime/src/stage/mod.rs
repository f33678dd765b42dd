//! Partitioned runs: one workflow cut into stages whose tasks run as separate processes
//! (`sluice plan`, `sluice run --stage K --partition I/N --job URL`), so a driver on a
//! distributed engine (Ray, Kubernetes Indexed Jobs, cloud batch services) can run it on
//! many machines. sluice has no scheduler of its own: the binary is the worker.
//!
//! # Stages
//!
//! [`plan_stages`] reads what every node's spec declares ([`Partitioning`]):
//!
//! - sources are *parallel* (a [`Partitioning::Sliced`] one reads its slice, a
//!   [`Partitioning::Whole`] one is read by the first task);
//! - a [`Partitioning::PerFeature`] node is parallel when all of its inputs are;
//! - a [`Partitioning::Global`] node (sorts, joins, aggregates, every sink) is *single*,
//!   and so is everything downstream of it.
//!
//! A stage is a connected group of parallel nodes (it runs as `N` tasks, task `I` reading
//! slice `I/N` of every source) or of single nodes (it runs as one task). An edge from a
//! parallel node to a single node is a *cut*: each task of the parallel stage writes what
//! leaves on that port to the job folder, and the single stage reads the tasks' outputs in
//! task order. Slices are contiguous and in input order, so the single stage receives
//! exactly the features a one-process run would give it, in the same order, and its
//! outputs are byte-identical to that run's. Single stages write the workflow's outputs at
//! their paths.
//!
//! A sorting node ([`ActionSpec::sorted_by`](crate::action::ActionSpec::sorted_by)) fed by
//! one parallel stage is *presorted*: every task of that stage runs a copy of it on its part
//! and writes its part sorted, and the single stage merges the parts by the node's order
//! (ties to the lower task: a stable sort stays stable) and passes them through the node.
//! The heavy sort runs in parallel; the last stage only merges.
//!
//! When what follows such a sort is per-feature nodes and folders of parts (a writer whose
//! path ends in `/`), its stage runs as N tasks too: each sorted part carries a sample
//! (every [`SAMPLE_EVERY`]-th feature), task B takes from all
//! samples the boundaries of the B-th range of the order and reads from every part only the
//! rows in that range (found through the sample, so it decodes about 1/N of each part), and
//! writes part B. Equal keys fall in one range, so the parts in order are the one-process
//! sort, ties in input order.
//!
//! # The job folder
//!
//! ```text
//! JOB/job.json                                       workflow hash and partition count
//! JOB/stage-K/bucket-00000/cut-C/task-IIIII.json     what task I of stage K wrote on cut C
//! JOB/stage-K/bucket-00000/cut-C/task-IIIII-PPPPP.parquet   the features, spill's layout
//! JOB/stage-K/bucket-00000/cut-C/task-IIIII-sample-PPPPP.parquet   a sorted part's sample
//! ```
//!
//! A task's files are written under temporary names and renamed when the task succeeds;
//! its `task-IIIII.json` comes last, so a reader never sees half of a task. A task run
//! again writes the same files. A range-partitioned reader finds its range inside each
//! sorted part, so such a cut has one bucket. A *hashed* cut has one bucket per reading
//! task: a grouping node ([`ActionSpec::hashed_by`](crate::action::ActionSpec::hashed_by):
//! `dedup`, `join`, grouped `statistics`) fed only by parallel nodes and followed only by
//! per-feature nodes and folders of parts runs as N tasks; every producing task splits its
//! features by the key's hash (`hash % N`) into `bucket-B/`, and task B reads bucket B of
//! every task in task order, so each key's features reach one task in their input order.

mod error;
mod shuffle;
mod task;

use std::collections::BTreeSet;
use std::fmt::Write as _;

pub use error::StageError;
pub use shuffle::SAMPLE_EVERY;
pub use task::{JOB_FILE, StageTask, stage_task};

use crate::action::{ActionKind, Partitioning};
use crate::dag::Plan;

/// How a workflow runs in partitions: its stages and the cuts between them.
#[derive(Debug, Clone)]
pub struct StagePlan {
    /// The workflow's name.
    pub workflow: Option<String>,
    /// The fingerprint of the resolved workflow (nodes, parameters with variables, edges);
    /// a job folder holds the outputs of one fingerprint only.
    pub workflow_hash: String,
    /// How many tasks a parallel stage runs.
    pub partitions: u32,
    /// The stages, every stage after those it depends on.
    pub stages: Vec<Stage>,
    /// The cuts, numbered as in the job folder.
    pub cuts: Vec<Cut>,
}

/// A connected part of the workflow between cuts.
#[derive(Debug, Clone)]
pub struct Stage {
    /// Its number (`--stage K`).
    pub index: usize,
    /// Its nodes (indexes into [`Plan::nodes`]), in the workflow's order.
    pub nodes: Vec<usize>,
    /// How many tasks run it: the plan's partitions, or 1.
    pub tasks: u32,
    /// Why it runs as one task (the nodes that need all their input in one place), for a
    /// stage of one task.
    pub single_task_reason: Option<String>,
    /// The stages whose outputs it reads.
    pub depends_on: Vec<usize>,
    /// For a stage of N tasks that starts at a presorted sorting node (this node): task B
    /// reads the B-th range of the node's order from every part, the boundaries taken from
    /// the parts' samples, so its outputs in task order are sorted as a whole.
    pub range_of: Option<usize>,
    /// For a stage of N tasks that starts at a grouping node fed by hashed cuts (this
    /// node): task B handles the keys whose hash falls in bucket B.
    pub hash_of: Option<usize>,
}

/// The features leaving one output port of a parallel stage for single stages.
#[derive(Debug, Clone)]
pub struct Cut {
    /// Its number (`cut-C` in the job folder).
    pub index: usize,
    /// The producing node (index into [`Plan::nodes`]) and its output port.
    pub from: usize,
    /// The output port of `from`.
    pub from_port: usize,
    /// The stage that writes it.
    pub from_stage: usize,
    /// The plan's edges it carries (each into a single stage).
    pub edges: Vec<usize>,
    /// `from` is a sorting node ([`ActionSpec::sorted_by`]) fed only by `from_stage`: each
    /// task of that stage runs a copy of it on its part and writes its part sorted; the
    /// reading task merges the parts by the node's order and feeds the node, which passes
    /// them on. `edges` is then empty.
    ///
    /// [`ActionSpec::sorted_by`]: crate::action::ActionSpec::sorted_by
    pub presorted: bool,
    /// Split by the key hash of the grouping node it feeds ([`Stage::hash_of`]): bucket B
    /// (one per task of the reading stage) holds the keys task B handles.
    pub hashed: bool,
}

impl Cut {
    /// Where the tasks of the producing stage write it (its first bucket), relative to the
    /// job folder.
    pub fn folder(&self) -> String {
        self.bucket_folder(0)
    }

    /// Where the tasks of the producing stage write bucket `bucket` of it.
    pub fn bucket_folder(&self, bucket: u32) -> String {
        format!(
            "stage-{}/bucket-{bucket:05}/cut-{}",
            self.from_stage, self.index
        )
    }
}

/// Cuts `plan` into stages for `partitions` tasks per parallel stage (see the module
/// docs). `partitions` is at least 1.
pub fn plan_stages(plan: &Plan, partitions: u32) -> StagePlan {
    let partitions = partitions.max(1);
    let n = plan.nodes.len();
    let graph = plan.graph();
    let order: Vec<usize> = petgraph::algo::toposort(&graph, None)
        .map(|o| o.into_iter().map(|i| graph[i]).collect())
        .unwrap_or_else(|_| (0..n).collect());
    let mut parallel = vec![false; n];
    for &i in &order {
        let fed_by_parallel = |parallel: &[bool]| {
            plan.edges
                .iter()
                .filter(|e| e.to == i)
                .all(|e| parallel[e.from])
        };
        if writes_parts(&plan.nodes[i]) {
            // Each task writes its own part of the folder.
            parallel[i] = fed_by_parallel(&parallel);
            continue;
        }
        parallel[i] = match plan.nodes[i].spec.partitioning {
            Partitioning::Sliced(_) | Partitioning::Whole => true,
            Partitioning::PerFeature => fed_by_parallel(&parallel),
            Partitioning::Global => false,
        };
    }
    // Components of nodes of one kind joined by edges that are not cuts.
    let mut group: Vec<usize> = (0..n).collect();
    fn root(group: &mut [usize], mut i: usize) -> usize {
        while group[i] != i {
            group[i] = group[group[i]];
            i = group[i];
        }
        i
    }
    for e in &plan.edges {
        if parallel[e.from] == parallel[e.to] {
            let (a, b) = (root(&mut group, e.from), root(&mut group, e.to));
            group[a.max(b)] = a.min(b);
        }
    }
    let position: Vec<usize> = {
        let mut p = vec![0; n];
        for (k, &i) in order.iter().enumerate() {
            p[i] = k;
        }
        p
    };
    // Parallel stages first, each group ordered by its first node in topological order.
    let mut roots: Vec<usize> = (0..n).map(|i| root(&mut group, i)).collect();
    roots.sort_unstable();
    roots.dedup();
    roots.sort_by_key(|&r| {
        let first = (0..n)
            .filter(|&i| root(&mut group, i) == r)
            .map(|i| position[i])
            .min()
            .unwrap_or(0);
        (!parallel[r], first)
    });
    let mut stage_of = vec![0usize; n];
    let mut stages: Vec<Stage> = Vec::new();
    for (k, &r) in roots.iter().enumerate() {
        let nodes: Vec<usize> = (0..n).filter(|&i| root(&mut group, i) == r).collect();
        for &i in &nodes {
            stage_of[i] = k;
        }
        let single_task_reason = (!parallel[r]).then(|| single_reason(plan, &nodes));
        stages.push(Stage {
            index: k,
            nodes,
            tasks: if parallel[r] { partitions } else { 1 },
            single_task_reason,
            depends_on: Vec::new(),
            range_of: None,
            hash_of: None,
        });
    }
    let mut cuts: Vec<Cut> = Vec::new();
    // Sorting nodes fed by one parallel stage through their one input port: sorted there,
    // part by part, and merged where they stand.
    let presorted: Vec<usize> = (0..n)
        .filter(|&g| {
            let node = &plan.nodes[g];
            let feeds: BTreeSet<usize> = plan
                .edges
                .iter()
                .filter(|e| e.to == g)
                .map(|e| e.from)
                .collect();
            !parallel[g]
                && node.spec.sorted_by.is_some()
                && node.inputs.len() == 1
                && !feeds.is_empty()
                && feeds.iter().all(|&f| parallel[f])
                && feeds
                    .iter()
                    .map(|&f| stage_of[f])
                    .collect::<BTreeSet<_>>()
                    .len()
                    == 1
        })
        .collect();
    for &g in &presorted {
        let from_stage = plan
            .edges
            .iter()
            .find(|e| e.to == g)
            .map_or(0, |e| stage_of[e.from]);
        cuts.push(Cut {
            index: cuts.len(),
            from: g,
            from_port: 0,
            from_stage,
            edges: Vec::new(),
            presorted: true,
            hashed: false,
        });
        depend(&mut stages[stage_of[g]], from_stage);
    }
    // A stage that is one grouping node fed only by parallel nodes, and what follows it one
    // feature at a time down to folders of parts, runs as N tasks, one bucket of keys each.
    let hashed: Vec<usize> = (0..n)
        .filter(|&h| {
            let node = &plan.nodes[h];
            let into: Vec<_> = plan.edges.iter().filter(|e| e.to == h).collect();
            partitions > 1
                && !parallel[h]
                && !presorted.contains(&h)
                && !into.is_empty()
                && into.iter().all(|e| parallel[e.from])
                && node.spec.hashed_by.is_some_and(|hash| {
                    (0..node.inputs.len()).all(|p| matches!(hash(&node.params, p), Ok(Some(_))))
                })
                && stands_alone(plan, &stages[stage_of[h]].nodes, h)
                && !presorted.iter().any(|&p| stage_of[p] == stage_of[h])
        })
        .collect();
    for &h in &hashed {
        let st = stage_of[h];
        stages[st].tasks = partitions;
        stages[st].single_task_reason = None;
        stages[st].hash_of = Some(h);
        for (i, e) in plan.edges.iter().enumerate().filter(|(_, e)| e.to == h) {
            cuts.push(Cut {
                index: cuts.len(),
                from: e.from,
                from_port: e.from_port,
                from_stage: stage_of[e.from],
                edges: vec![i],
                presorted: false,
                hashed: true,
            });
            depend(&mut stages[st], stage_of[e.from]);
        }
    }
    for (i, e) in plan.edges.iter().enumerate() {
        let is_cut = parallel[e.from]
            && !parallel[e.to]
            && !presorted.contains(&e.to)
            && !hashed.contains(&e.to);
        if !is_cut {
            continue;
        }
        match cuts
            .iter_mut()
            .find(|c| !c.presorted && !c.hashed && c.from == e.from && c.from_port == e.from_port)
        {
            Some(c) => c.edges.push(i),
            None => cuts.push(Cut {
                index: cuts.len(),
                from: e.from,
                from_port: e.from_port,
                from_stage: stage_of[e.from],
                edges: vec![i],
                presorted: false,
                hashed: false,
            }),
        }
        depend(&mut stages[stage_of[e.to]], stage_of[e.from]);
    }
    // A stage that is a presorted sort and what follows it one feature at a time, down to
    // folders of parts, runs as N tasks, each on one range of the sort's order.
    for &g in &presorted {
        let st = stage_of[g];
        let fits = stands_alone(plan, &stages[st].nodes, g)
            && presorted.iter().filter(|&&p| stage_of[p] == st).count() == 1;
        if fits && partitions > 1 {
            stages[st].tasks = partitions;
            stages[st].single_task_reason = None;
            stages[st].range_of = Some(g);
        }
    }
    StagePlan {
        workflow: plan.name.clone(),
        workflow_hash: crate::capture::fingerprint::workflow_hash(plan),
        partitions,
        stages,
        cuts,
    }
}

/// Whether the stage of `nodes` can run as N tasks split at node `g`: every other node is
/// per-feature or writes a folder of parts, and only `g` is fed from outside the stage.
fn stands_alone(plan: &Plan, nodes: &[usize], g: usize) -> bool {
    nodes.iter().all(|&i| {
        let node = &plan.nodes[i];
        i == g
            || writes_parts(node)
            || (node.spec.kind != ActionKind::Sink
                && node.spec.partitioning == Partitioning::PerFeature)
    }) && plan
        .edges
        .iter()
        .filter(|e| nodes.contains(&e.to) && e.to != g)
        .all(|e| nodes.contains(&e.from))
}

/// Records that `stage` reads what stage `on` wrote.
fn depend(stage: &mut Stage, on: usize) {
    if !stage.depends_on.contains(&on) {
        stage.depends_on.push(on);
        stage.depends_on.sort_unstable();
    }
}

/// Whether `node` is a sink writing a folder of parts (its output path ends in `/`): one
/// file per task (`part-00000.csv`...), so it runs in every task of a parallel stage.
pub fn writes_parts(node: &crate::dag::PlanNode) -> bool {
    node.spec.kind == ActionKind::Sink
        && node
            .spec
            .output_path
            .and_then(|k| node.params.get(k))
            .and_then(|v| v.as_str())
            .is_some_and(|p| p.ends_with('/') || p.ends_with(std::path::MAIN_SEPARATOR))
}

/// Why a stage of single nodes runs as one task: the nodes that need all their input.
fn single_reason(plan: &Plan, nodes: &[usize]) -> String {
    let reasons: Vec<String> = nodes
        .iter()
        .map(|&i| &plan.nodes[i])
        .filter(|n| n.spec.partitioning == Partitioning::Global)
        .map(|n| {
            let why = if n.spec.kind == ActionKind::Sink {
                "writes one output"
            } else {
                "needs all of its input in one place, in order"
            };
            format!("{} ({}) {why}", n.id, n.spec.name)
        })
        .collect();
    if reasons.is_empty() {
        "fed by a stage of one task".to_string()
    } else {
        reasons.join("; ")
    }
}

impl StagePlan {
    /// The stage that holds node `node`.
    pub fn stage_of(&self, node: usize) -> Option<usize> {
        self.stages.iter().position(|s| s.nodes.contains(&node))
    }

    /// The cuts a stage writes.
    pub fn cuts_from(&self, stage: usize) -> impl Iterator<Item = &Cut> {
        self.cuts.iter().filter(move |c| c.from_stage == stage)
    }

    /// The cuts a stage reads.
    pub fn cuts_into<'a>(&'a self, plan: &'a Plan, stage: usize) -> impl Iterator<Item = &'a Cut> {
        let nodes = &self.stages[stage].nodes;
        self.cuts.iter().filter(move |c| {
            (c.presorted && nodes.contains(&c.from))
                || c.edges.iter().any(|&e| nodes.contains(&plan.edges[e].to))
        })
    }

    /// The stages that read cut `c`.
    pub fn cut_targets(&self, plan: &Plan, c: &Cut) -> BTreeSet<usize> {
        if c.presorted {
            return self.stage_of(c.from).into_iter().collect();
        }
        c.edges
            .iter()
            .filter_map(|&e| self.stage_of(plan.edges[e].to))
            .collect()
    }

    /// The plan as JSON for drivers (`sluice plan --json`).
    pub fn to_json(&self, plan: &Plan) -> serde_json::Value {
        let port = |c: &Cut| cut_name(plan, c);
        let stages: Vec<serde_json::Value> = self
            .stages
            .iter()
            .map(|s| {
                let mut reads: Vec<serde_json::Value> = Vec::new();
                let mut writes: Vec<serde_json::Value> = Vec::new();
                for &i in &s.nodes {
                    let n = &plan.nodes[i];
                    match (n.spec.kind, n.spec.partitioning) {
                        (ActionKind::Source, p) => reads.push(serde_json::json!({
                            "node": n.id,
                            "action": n.spec.name,
                            "path": n.spec.input_path.and_then(|k| n.params.get(k)),
                            "slicing": match p {
                                Partitioning::Sliced(how) => how.to_string(),
                                _ => "not split: the first task reads all of it".to_string(),
                            },
                        })),
                        (ActionKind::Sink, _) => writes.push(serde_json::json!({
                            "node": n.id,
                            "action": n.spec.name,
                            "path": n.spec.output_path.and_then(|k| n.params.get(k)),
                            "parts": writes_parts(n),
                        })),
                        _ => {}
                    }
                }
                for c in self.cuts_into(plan, s.index) {
                    reads.push(serde_json::json!({
                        "cut": c.index,
                        "port": port(c),
                        "from_stage": c.from_stage,
                        "location": c.folder(),
                        "order": if c.presorted { "merged by the sort's order" } else { "task order" },
                    }));
                }
                for c in self.cuts_from(s.index) {
                    writes.push(serde_json::json!({
                        "cut": c.index,
                        "port": port(c),
                        "to_stages": self.cut_targets(plan, c),
                        "buckets": if c.hashed { self.partitions } else { 1 },
                        "hashed": c.hashed,
                        "sorted": c.presorted,
                        "location": c.folder(),
                    }));
                }
                serde_json::json!({
                    "stage": s.index,
                    "tasks": s.tasks,
                    "single_task_reason": s.single_task_reason,
                    "range_of": s.range_of.map(|g| plan.nodes[g].id.as_str()),
                    "hash_of": s.hash_of.map(|g| plan.nodes[g].id.as_str()),
                    "depends_on": s.depends_on,
                    "nodes": s.nodes.iter().map(|&i| plan.nodes[i].id.as_str()).collect::<Vec<_>>(),
                    "reads": reads,
                    "writes": writes,
                })
            })
            .collect();
        serde_json::json!({
            "version": 1,
            "workflow": self.workflow,
            "workflow_hash": self.workflow_hash,
            "partitions": self.partitions,
            "stages": stages,
        })
    }

    /// The plan for people (`sluice plan`).
    pub fn describe(&self, plan: &Plan) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "workflow {} in {} partition(s): {} stage(s)",
            self.workflow.as_deref().unwrap_or("(unnamed)"),
            self.partitions,
            self.stages.len()
        );
        for st in &self.stages {
            let ids: Vec<&str> = st
                .nodes
                .iter()
                .map(|&i| plan.nodes[i].id.as_str())
                .collect();
            let _ = writeln!(
                s,
                "\nstage {}: {} task(s): {}",
                st.index,
                st.tasks,
                ids.join(", ")
            );
            if let Some(why) = &st.single_task_reason {
                let _ = writeln!(s, "  one task: {why}");
            }
            if let Some(h) = st.hash_of {
                let _ = writeln!(
                    s,
                    "  task B handles the keys of {} whose hash falls in bucket B",
                    plan.nodes[h].id
                );
            }
            if let Some(g) = st.range_of {
                let _ = writeln!(
                    s,
                    "  task B takes the B-th range of {}'s order from every sorted part \
                     (boundaries from the parts' samples)",
                    plan.nodes[g].id
                );
            }
            for &i in &st.nodes {
                let n = &plan.nodes[i];
                if n.spec.kind == ActionKind::Source {
                    let how = match n.spec.partitioning {
                        Partitioning::Sliced(how) => how,
                        _ => "not split: the first task reads all of it",
                    };
                    let _ = writeln!(s, "  reads {} ({}): {how}", n.id, n.spec.name);
                }
            }
            for c in self.cuts_into(plan, st.index) {
                let how = if c.presorted {
                    "the tasks' sorted parts merged by its order"
                } else {
                    "every task's output in task order"
                };
                let _ = writeln!(
                    s,
                    "  reads {} from stage {} ({}): {how}",
                    cut_name(plan, c),
                    c.from_stage,
                    c.folder()
                );
            }
            for c in self.cuts_from(st.index) {
                let what = if c.presorted {
                    format!(
                        "sorts its part as {} ({}) does and writes it",
                        plan.nodes[c.from].id, plan.nodes[c.from].spec.name
                    )
                } else {
                    format!("writes {}", cut_name(plan, c))
                };
                let _ = writeln!(s, "  {what} for the next stage ({})", c.folder());
            }
            for &i in &st.nodes {
                let n = &plan.nodes[i];
                if n.spec.kind == ActionKind::Sink {
                    let path = n
                        .spec
                        .output_path
                        .and_then(|k| n.params.get(k))
                        .and_then(|v| v.as_str())
                        .unwrap_or("its output");
                    let parts = if writes_parts(n) {
                        " as a folder of parts, one per task (part-00000...)"
                    } else {
                        ""
                    };
                    let _ = writeln!(s, "  writes {path}{parts} ({} {})", n.spec.name, n.id);
                }
            }
        }
        s
    }
}

/// What a cut carries, in words: `node.port`, or `node, sorted per task`.
fn cut_name(plan: &Plan, c: &Cut) -> String {
    if c.presorted {
        format!("{}'s input, sorted per task", plan.nodes[c.from].id)
    } else {
        port_name(plan, c.from, c.from_port)
    }
}

/// `node.port` (the port left out when it is the default one).
fn port_name(plan: &Plan, node: usize, port: usize) -> String {
    let n = &plan.nodes[node];
    if n.outputs[port] == crate::action::DEFAULT_PORT {
        n.id.clone()
    } else {
        format!("{}.{}", n.id, n.outputs[port])
    }
}
