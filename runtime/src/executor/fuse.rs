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
//! each thread holds batches in flight on its edge. On a fused chain the head receives a
//! batch, applies its transform, and each next member applies its own to what the one before
//! it emitted, all before the next batch is received.
//!
//! Each member keeps everything a node has: its emitter (so its counts per port, the
//! features it drops on ports without an edge and the captures of its edges are its own),
//! its `features_in`, its state, its CPU time, its events and its errors. The edges inside a
//! chain stay channels, unbounded since one thread sends and receives on them (see
//! `Wiring::new`); they hold at most what one batch produced. Expensive transforms still
//! split big batches across the pool (`apply_transform`), and order is kept.

use std::cell::Cell;
use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_channel::Receiver;

use super::node::{NodeRun, TransformCost, apply_transform, receive};
use super::progress::StateCell;
use crate::action::{Emitter, NodeContext, NodeImpl, Transform};
use crate::dag::{PlanEdge, PlanNode};
use crate::error::ActionError;
use crate::feature::Batch;

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
        let mut next: Vec<Option<usize>> = vec![None; n];
        let mut has_prev = vec![false; n];
        let mut local = HashSet::new();
        for (i, e) in edges.iter().enumerate() {
            if enabled
                && e.from != e.to
                && is_transform(e.from)
                && is_transform(e.to)
                && outgoing[e.from] == 1
                && incoming[e.to] == 1
            {
                next[e.from] = Some(e.to);
                has_prev[e.to] = true;
                local.insert(i);
            }
        }
        let mut groups = Vec::with_capacity(n);
        for head in (0..n).filter(|&i| !has_prev[i]) {
            let mut group = vec![head];
            let mut at = head;
            // A chain is a path (one next, one previous per node, the plan is acyclic); the
            // length bound only guards against a malformed plan.
            while let Some(to) = next[at].filter(|_| group.len() < n) {
                group.push(to);
                at = to;
            }
            groups.push(group);
        }
        Fusion { groups, local }
    }
}

/// One member of a running chain.
pub(super) struct Stage {
    ctx: NodeContext,
    transform: Arc<dyn Transform>,
    inputs: Vec<(usize, Receiver<Batch>)>,
    out: Emitter,
    features_in: Arc<AtomicU64>,
    state: Arc<StateCell>,
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
            state,
            ..
        } = run;
        match node {
            NodeImpl::Transform(transform) => Some(Stage {
                ctx,
                transform,
                inputs,
                out,
                features_in,
                state,
                cost: TransformCost::default(),
            }),
            _ => None,
        }
    }
}

/// Runs a chain to the end on the calling thread. `current` says which member was working
/// when it returned, so an error or a panic is put on the right node.
pub(super) fn run_chain(mut stages: Vec<Stage>, current: &Cell<usize>) -> Result<(), ActionError> {
    let Some((head, rest)) = stages.split_first_mut() else {
        return Ok(());
    };
    let inputs = std::mem::take(&mut head.inputs);
    receive(&head.ctx, inputs, &head.features_in, false, |_, batch| {
        current.set(0);
        on_thread(&head.state, || {
            apply_transform(
                &head.transform,
                batch,
                &head.ctx,
                &mut head.cost,
                &mut head.out,
            )
        })?;
        for (k, stage) in rest.iter_mut().enumerate() {
            current.set(k + 1);
            stage.drain()?;
        }
        Ok(())
    })?;
    current.set(0);
    on_thread(&head.state, || head.out.close())?;
    for (k, stage) in rest.iter_mut().enumerate() {
        current.set(k + 1);
        stage.drain()?;
        on_thread(&stage.state, || stage.out.close())?;
    }
    Ok(())
}

impl Stage {
    /// Applies the transform to every batch the member before it has sent so far.
    fn drain(&mut self) -> Result<(), ActionError> {
        let Some((_, rx)) = self.inputs.first() else {
            return Ok(());
        };
        while let Ok(batch) = rx.try_recv() {
            self.features_in
                .fetch_add(batch.len() as u64, Ordering::Relaxed);
            let (t, ctx, cost, out) = (&self.transform, &self.ctx, &mut self.cost, &mut self.out);
            on_thread(&self.state, || apply_transform(t, batch, ctx, cost, out))?;
        }
        Ok(())
    }
}

/// Runs `f` and adds the CPU time the calling thread spent on it to the member's count.
fn on_thread<R>(state: &StateCell, f: impl FnOnce() -> R) -> R {
    let start = crate::cpu::thread_cpu_ns();
    let r = f();
    state.add_thread_cpu(crate::cpu::thread_cpu_ns().saturating_sub(start));
    r
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
