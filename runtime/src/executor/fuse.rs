//! Fused chains: a linear run of stateless transforms on one thread.
//!
//! ```text
//!   unfused:  read ──ch──► t1 ──ch──► t2 ──ch──► t3 ──ch──► sort      (a thread each)
//!   fused:    read ──ch──► [ t1 ─► t2 ─► t3 ] ──ch──► sort            (t1..t3: one thread)
//! ```
//!
//! A transform is fused onto the transform before it when that one's only output edge leads
//! to it and it has no other input. Handing a batch from thread to thread costs a wake-up on
//! each hop, which for cheap transforms (a rename, a comparison) costs more than the work, and
//! each thread holds batches in flight on its edge.
//!
//! The edges inside a chain are not channels: each member's emitter is connected to the next
//! member ([`crate::action::LocalEdge`]), so a batch a member sends is applied by the next one
//! at once, on the same thread. What a chain holds is so one batch per member, however many
//! features a member emits per input (a list exploder), and order is kept. Each member keeps
//! everything a node has: its emitter (its counts per port, the features it drops on ports
//! without an edge, the captures of its edges), its `features_in`, its state, its events, its
//! errors, and its CPU time ([`ChainClock`]). Expensive transforms still split big batches
//! across the pool (`apply_transform`). Chains are cut every [`MAX_CHAIN`] members, so the
//! calls nested down a chain stay shallow.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crossbeam_channel::Receiver;

use super::node::{NodeRun, TransformCost, apply_transform, receive};
use super::progress::StateCell;
use crate::action::{Emitter, LocalEdge, NodeContext, NodeImpl, Transform};
use crate::dag::{PlanEdge, PlanNode};
use crate::error::ActionError;
use crate::feature::Batch;

/// The most transforms fused onto one thread (each member's call nests in the one before).
pub(super) const MAX_CHAIN: usize = 32;

/// Which nodes share a thread: `groups` partitions the node indices, each group a chain in
/// order (most groups are one node); `local` holds the edges inside chains.
#[derive(Debug, Default)]
pub(super) struct Fusion {
    pub groups: Vec<Vec<usize>>,
    pub local: HashSet<usize>,
}

impl Fusion {
    /// Finds the chains of transforms in a plan (with `enabled` false every node is its own
    /// group).
    pub fn plan(nodes: &[PlanNode], edges: &[PlanEdge], enabled: bool) -> Fusion {
        let n = nodes.len();
        let mut outgoing = vec![0usize; n];
        let mut incoming = vec![0usize; n];
        for e in edges {
            outgoing[e.from] += 1;
            incoming[e.to] += 1;
        }
        let is_transform = |i: usize| matches!(nodes[i].node, NodeImpl::Transform(_));
        // The edge (and node) each node may be fused onto.
        let mut next: Vec<Option<(usize, usize)>> = vec![None; n];
        let mut has_prev = vec![false; n];
        for (i, e) in edges.iter().enumerate() {
            if enabled
                && e.from != e.to
                && is_transform(e.from)
                && is_transform(e.to)
                && outgoing[e.from] == 1
                && incoming[e.to] == 1
            {
                next[e.from] = Some((i, e.to));
                has_prev[e.to] = true;
            }
        }
        let mut fusion = Fusion::default();
        let mut heads: Vec<usize> = (0..n).filter(|&i| !has_prev[i]).rev().collect();
        while let Some(head) = heads.pop() {
            let mut group = vec![head];
            let mut at = head;
            // A chain is a path (one next and one previous per node, the plan is acyclic);
            // a long one is cut, its rest a chain of its own.
            while let Some((edge, to)) = next[at] {
                if group.len() == MAX_CHAIN {
                    heads.push(to);
                    break;
                }
                fusion.local.insert(edge);
                group.push(to);
                at = to;
            }
            fusion.groups.push(group);
        }
        fusion
    }
}

/// Which member of a chain is working, and each member's CPU time: the chain's thread moves
/// from member to member as batches pass down, and each switch charges the CPU time since
/// the last one to the member that was working. An error or a panic belongs to the member
/// working when it happened.
pub(super) struct ChainClock {
    current: AtomicUsize,
    since: AtomicU64,
    states: Vec<Arc<StateCell>>,
}

impl ChainClock {
    /// A clock over the members' states, the head working.
    pub fn new(states: Vec<Arc<StateCell>>) -> ChainClock {
        ChainClock {
            current: AtomicUsize::new(0),
            since: AtomicU64::new(crate::cpu::thread_cpu_ns()),
            states,
        }
    }

    /// Member `k` works from now on; gives the member that was working.
    fn switch(&self, k: usize) -> usize {
        let now = crate::cpu::thread_cpu_ns();
        let was = self.current.swap(k, Ordering::Relaxed);
        let since = self.since.swap(now, Ordering::Relaxed);
        if let Some(state) = self.states.get(was) {
            state.add_thread_cpu(now.saturating_sub(since));
        }
        was
    }

    /// The member working now (after a failure: the one that failed).
    pub fn current(&self) -> usize {
        self.current.load(Ordering::Relaxed)
    }

    /// Charges the time since the last switch (when the chain has ended).
    pub fn settle(&self) {
        self.switch(self.current());
    }
}

/// One member of a running chain.
pub(super) struct Stage {
    ctx: NodeContext,
    transform: Arc<dyn Transform>,
    inputs: Vec<(usize, Receiver<Batch>)>,
    out: Emitter,
    features_in: Arc<AtomicU64>,
    cost: TransformCost,
}

impl Stage {
    /// The stage of a transform node (`None` for any other node).
    pub fn new(run: NodeRun) -> Option<Stage> {
        let NodeRun {
            ctx,
            node,
            inputs,
            out,
            features_in,
            ..
        } = run;
        match node {
            NodeImpl::Transform(transform) => Some(Stage {
                ctx,
                transform,
                inputs,
                out,
                features_in,
                cost: TransformCost::default(),
            }),
            _ => None,
        }
    }

    fn apply(&mut self, batch: Batch) -> Result<(), ActionError> {
        apply_transform(
            &self.transform,
            batch,
            &self.ctx,
            &mut self.cost,
            &mut self.out,
        )
    }
}

/// A member after the head, as the local edge of the member before it.
struct StageEdge {
    stage: Stage,
    index: usize,
    clock: Arc<ChainClock>,
}

impl LocalEdge for StageEdge {
    fn send(&mut self, batch: Batch) -> Result<(), ActionError> {
        let was = self.clock.switch(self.index);
        self.stage
            .features_in
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        self.stage.apply(batch)?;
        self.clock.switch(was);
        Ok(())
    }

    fn close(&mut self) -> Result<(), ActionError> {
        let was = self.clock.switch(self.index);
        self.stage.out.close()?;
        self.clock.switch(was);
        Ok(())
    }
}

/// Runs a chain to the end on the calling thread: connects each member's emitter to the next
/// member, then receives the head's input. On an error, `clock` says which member failed.
pub(super) fn run_chain(stages: Vec<Stage>, clock: &Arc<ChainClock>) -> Result<(), ActionError> {
    let mut next: Option<Box<dyn LocalEdge>> = None;
    let mut head = None;
    for (index, mut stage) in stages.into_iter().enumerate().rev() {
        if let Some(edge) = next.take()
            && stage.out.connect_local(edge).is_err()
        {
            return Err(ActionError::Other(
                format!(
                    "node \"{}\" has no edge for the next node of its chain",
                    stage.ctx.node_id
                )
                .into(),
            ));
        }
        if index == 0 {
            head = Some(stage);
        } else {
            next = Some(Box::new(StageEdge {
                stage,
                index,
                clock: clock.clone(),
            }));
        }
    }
    let Some(mut head) = head else {
        return Ok(());
    };
    let inputs = std::mem::take(&mut head.inputs);
    let (ctx, features_in) = (head.ctx.clone(), head.features_in.clone());
    receive(&ctx, inputs, &features_in, false, |_, batch| {
        head.apply(batch)
    })?;
    head.out.close()?;
    clock.settle();
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::Fusion;
    use crate::error::RunError;
    use crate::executor::{RunOptions, start};
    use crate::testing::{cancel_once_flowing, run_yaml, test_registry};
    use crate::workflow::{self, VarSources};

    const T: Duration = Duration::from_secs(60);

    fn groups(yaml: &str, enabled: bool) -> Vec<Vec<String>> {
        let plan = workflow::load("t.yaml", yaml, &test_registry(), &VarSources::default())
            .expect("the workflow loads");
        let fusion = Fusion::plan(&plan.nodes, &plan.edges, enabled);
        let mut named: Vec<Vec<String>> = fusion
            .groups
            .iter()
            .map(|g| g.iter().map(|&i| plan.nodes[i].id.clone()).collect())
            .collect();
        named.sort();
        named
    }

    fn opts(fuse: bool) -> RunOptions {
        RunOptions {
            channel_bound: 256,
            batch_size: 64,
            threads: 2,
            fuse_transforms: fuse,
            ..RunOptions::default()
        }
    }

    /// A chain: gen -> a -> b -> c, then c fans out to d and e, which meet at a sink; f takes
    /// two inputs. Only a -> b -> c is a chain: c has two output edges, f two inputs, the
    /// source and the sink are not transforms.
    const SHAPES: &str = r#"
nodes:
  - { id: src, action: gen, with: { count: 20000 } }
  - { id: a, action: pass }
  - { id: b, action: pass }
  - { id: c, action: pass }
  - { id: d, action: pass }
  - { id: e, action: pass }
  - { id: f, action: pass }
  - { id: g, action: pass }
  - { id: sink, action: count }
edges:
  - src -> a
  - a -> b
  - b -> c
  - c -> d
  - c -> e
  - d -> f
  - e -> f
  - f -> g
  - g -> sink
"#;

    #[test]
    fn only_linear_runs_of_transforms_are_fused() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(
            groups(SHAPES, true),
            vec![
                s(&["a", "b", "c"]),
                s(&["d"]),
                s(&["e"]),
                s(&["f", "g"]),
                s(&["sink"]),
                s(&["src"]),
            ]
        );
        assert!(groups(SHAPES, false).iter().all(|g| g.len() == 1));
    }

    /// A chain longer than `MAX_CHAIN` is cut into chains of at most that many, and runs
    /// as the unfused one does.
    #[test]
    fn long_chains_are_cut_and_still_count_every_feature() {
        let n = 2 * super::MAX_CHAIN + 6;
        let mut yaml =
            String::from("nodes:\n  - { id: src, action: gen, with: { count: 5000 } }\n");
        let mut edges = String::from("edges:\n");
        let mut prev = "src".to_string();
        for i in 0..n {
            yaml.push_str(&format!("  - {{ id: p{i}, action: pass }}\n"));
            edges.push_str(&format!("  - {prev} -> p{i}\n"));
            prev = format!("p{i}");
        }
        yaml.push_str("  - { id: sink, action: count }\n");
        edges.push_str(&format!("  - {prev} -> sink\n"));
        let yaml = yaml + &edges;
        let mut sizes: Vec<usize> = groups(&yaml, true).iter().map(Vec::len).collect();
        sizes.sort_unstable();
        assert_eq!(sizes, vec![1, 1, 6, super::MAX_CHAIN, super::MAX_CHAIN]);
        let report = run_yaml(&yaml, &test_registry(), opts(true), T).expect("the run succeeds");
        assert_eq!(report.node("sink").unwrap().features_in, 5000);
        assert!(report.edges.iter().all(|e| e.features == 5000));
    }

    /// Fused or not, every node and edge counts the same features.
    #[test]
    fn a_fused_chain_reports_every_node_as_separate_threads_do() {
        let fused = run_yaml(SHAPES, &test_registry(), opts(true), T).expect("fused run");
        let apart = run_yaml(SHAPES, &test_registry(), opts(false), T).expect("unfused run");
        for id in ["a", "b", "c", "d", "e", "f", "g", "sink"] {
            let (x, y) = (fused.node(id).unwrap(), apart.node(id).unwrap());
            assert_eq!(
                (x.features_in, x.features_out, &x.ports),
                (y.features_in, y.features_out, &y.ports),
                "node {id}"
            );
        }
        assert_eq!(fused.node("f").unwrap().features_in, 40_000);
        assert_eq!(fused.node("sink").unwrap().features_in, 40_000);
        let edges = |r: &crate::executor::RunReport| {
            r.edges
                .iter()
                .map(|e| (e.from.clone(), e.to.clone(), e.features))
                .collect::<Vec<_>>()
        };
        assert_eq!(edges(&fused), edges(&apart));
    }

    /// gen (`count` features) -> a -> b -> c -> sink: a, b and c are one chain.
    fn linear_chain(count: u64) -> String {
        let yaml = format!(
            "nodes:\n  - {{ id: src, action: gen, with: {{ count: {count} }} }}\n  \
             - {{ id: a, action: pass }}\n  - {{ id: b, action: pass }}\n  \
             - {{ id: c, action: pass }}\n  - {{ id: sink, action: count }}\n\
             edges: [ \"src -> a\", \"a -> b\", \"b -> c\", \"c -> sink\" ]\n"
        );
        assert!(groups(&yaml, true).contains(&vec!["a".into(), "b".into(), "c".into()]));
        yaml
    }

    const FAILING: &str = r#"
nodes:
  - { id: src, action: gen, with: { count: 100000 } }
  - { id: a, action: pass }
  - { id: boom, action: fail, with: { at: 5000, transform: true, panic: PANIC } }
  - { id: c, action: pass }
  - { id: sink, action: count }
edges: [ "src -> a", "a -> boom", "boom -> c", "c -> sink" ]
"#;

    /// An error or a panic inside a chain is put on the member that raised it, not on the
    /// chain's head or its thread.
    #[test]
    fn an_error_or_panic_inside_a_chain_names_its_node() {
        let errors = FAILING.replace("PANIC", "false");
        assert!(groups(&errors, true).contains(&vec!["a".into(), "boom".into(), "c".into()]));
        let err = run_yaml(&errors, &test_registry(), opts(true), T).unwrap_err();
        assert_eq!(err.to_string(), "node \"boom\" failed: bad feature 5000");
        let panics = FAILING.replace("PANIC", "true");
        match run_yaml(&panics, &test_registry(), opts(true), T).unwrap_err() {
            RunError::Panicked { node, message } => {
                assert_eq!((node.as_str(), message.as_str()), ("boom", "boom at 5000"));
            }
            other => panic!("expected a panic report, got {other}"),
        }
    }

    /// The edges inside a chain are captured like any other: complete, every feature, in
    /// order.
    #[test]
    fn edges_inside_a_chain_are_captured_in_order() {
        use crate::capture::{CaptureEdges, CaptureOptions, Job};
        let yaml = &linear_chain(30_000);
        let dir = tempfile::tempdir().expect("a temporary folder");
        let job_dir = dir.path().join("job").to_string_lossy().into_owned();
        let options = RunOptions {
            capture: Some(CaptureOptions::new(job_dir.clone(), CaptureEdges::All)),
            ..opts(true)
        };
        run_yaml(yaml, &test_registry(), options, T).expect("the run succeeds");
        let job = Job::open(&job_dir).expect("the job opens");
        for edge in ["a->b", "b->c", "c->sink"] {
            let e = job.edge(edge).expect("the edge is in the job");
            assert!(e.complete, "{edge}");
            assert_eq!(e.features, 30_000, "{edge}");
            let ids: Vec<u64> = job
                .read(edge, 0, usize::MAX)
                .expect("the capture reads back")
                .iter()
                .map(|f| f.id())
                .collect();
            assert_eq!(ids, (0..30_000).collect::<Vec<u64>>(), "{edge}");
        }
    }

    #[test]
    fn a_fused_chain_stops_within_a_second_of_cancel() {
        let yaml = &linear_chain(10_000_000_000);
        let plan = workflow::load("t.yaml", yaml, &test_registry(), &VarSources::default())
            .expect("the workflow loads");
        let handle = start(plan, opts(true)).expect("the run starts");
        let (err, took) = cancel_once_flowing(handle, 10_000);
        assert!(matches!(err, RunError::Cancelled), "{err}");
        assert!(took < Duration::from_secs(1), "took {took:?}");
    }
}
