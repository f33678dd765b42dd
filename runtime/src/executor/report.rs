//! The run report: counts per node and edge, timings, memory, spill and gate figures.
//!
//! Features sent on edges and features dropped on ports with no edge are counted apart
//! ([`NodeReport::features_out`], [`NodeReport::dropped`]): a feature that went nowhere is
//! reported, never hidden in an "out" count.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde::Serialize;

use super::join::NodeEnd;
use super::progress::NodeProgress;
use super::setup::Shared;
use super::wiring::EdgeTally;
use crate::action::{PortDrops, REJECTED_PORT};

/// Figures of one node.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct NodeReport {
    /// Node id.
    pub id: String,
    /// Action name.
    pub action: String,
    /// Features received.
    pub features_in: u64,
    /// Features sent on edges, over all ports.
    pub features_out: u64,
    /// Features sent on edges, per output port (0 for a port with no edge).
    pub ports: Vec<(String, u64)>,
    /// Features emitted to ports with no edge (and so dropped), over all ports.
    pub features_dropped: u64,
    /// The ports that dropped features (ports with no edge that were emitted to).
    pub dropped: Vec<DroppedReport>,
    /// Wall time from thread start to end, milliseconds.
    pub elapsed_ms: f64,
    /// The most bytes this node reserved from the memory budget.
    pub peak_reservation: u64,
    /// Time its heavy finish waited at the gate, milliseconds.
    pub gate_wait_ms: f64,
    /// CPU time spent on this node, milliseconds: `thread_cpu_ms + pool_cpu_ms`. Set beside
    /// `elapsed_ms` it shows the hot node: a node busy for most of the run's wall time (or
    /// more, with the pool) is where the time goes.
    pub busy_ms: f64,
    /// CPU time of the node's own thread, milliseconds (0 where the platform cannot say).
    pub thread_cpu_ms: f64,
    /// CPU time pool threads spent on pieces of this node's work, milliseconds: transforms
    /// split across the pool, text writers' encoding, the CSV reader's row conversion. A
    /// sort's parallel sort is not counted (its pieces are rayon's own).
    pub pool_cpu_ms: f64,
    /// The node's life: a span per state it was in (running, gated, spilling, finishing),
    /// in milliseconds since the run started.
    pub timeline: Vec<super::progress::StateSpan>,
}

/// Features an action emitted to a port with no edge.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DroppedReport {
    /// The output port.
    pub port: String,
    /// Features dropped.
    pub features: u64,
    /// The `_rejection_reason` of the first dropped feature that had one (a `rejected` port).
    pub first_reason: Option<String>,
}

impl DroppedReport {
    /// The ports of `outputs` that dropped features, in port order.
    pub(crate) fn collect(outputs: &[String], drops: &[Arc<PortDrops>]) -> Vec<DroppedReport> {
        outputs
            .iter()
            .zip(drops)
            .filter(|(_, d)| d.count() > 0)
            .map(|(port, d)| DroppedReport {
                port: port.clone(),
                features: d.count(),
                first_reason: d.first_reason().map(str::to_string),
            })
            .collect()
    }
}

/// Rejected features that went nowhere: a node emitted them to its `rejected` port, which has
/// no edge.
#[derive(Debug, Clone, PartialEq)]
pub struct UnhandledRejections<'a> {
    /// Node id.
    pub node: &'a str,
    /// Features rejected and dropped.
    pub features: u64,
    /// The reason of the first of them, when it carried one.
    pub first_reason: Option<&'a str>,
}

impl std::fmt::Display for UnhandledRejections<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = if self.features == 1 { "" } else { "s" };
        write!(
            f,
            "node \"{}\" rejected {} feature{s} and its \"{REJECTED_PORT}\" port has no edge: \
             they were dropped",
            self.node, self.features
        )?;
        if let Some(r) = self.first_reason {
            write!(f, "; first reason: {r}")?;
        }
        Ok(())
    }
}

/// A run whose resident memory went above its memory limit. The budget (what accumulators
/// and edges reserve) holds by construction; what overshoots is memory outside it: code,
/// thread stacks, readers' and writers' buffers, allocator slack. The command line warns,
/// so a limit the user set is never passed silently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryOvershoot {
    /// Peak resident set size of the process, bytes.
    pub peak_rss_bytes: u64,
    /// The memory limit, bytes.
    pub limit_bytes: u64,
    /// Spill files the run wrote to keep its accumulators inside the budget.
    pub spill_files: u64,
}

impl std::fmt::Display for MemoryOvershoot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mib = |b: u64| b as f64 / f64::from(1u32 << 20);
        write!(
            f,
            "peak memory {:.1} MiB was above the memory limit of {:.1} MiB: ",
            mib(self.peak_rss_bytes),
            mib(self.limit_bytes)
        )?;
        if self.spill_files > 0 {
            write!(
                f,
                "accumulators kept to their budget ({} spill files), but ",
                self.spill_files
            )?;
        }
        write!(
            f,
            "code, threads, buffers and the allocator took more than the rest of the limit; \
             give a higher --memory-limit or fewer --threads"
        )
    }
}

/// Figures of one edge.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct EdgeReport {
    /// `node.port` upstream.
    pub from: String,
    /// `node.port` downstream.
    pub to: String,
    /// Features that crossed it.
    pub features: u64,
}

/// Everything measured in one run.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RunReport {
    /// The workflow's name.
    pub workflow: Option<String>,
    /// Whether the run succeeded.
    pub ok: bool,
    /// Wall time, milliseconds.
    pub elapsed_ms: f64,
    /// Peak resident set size of the process, bytes.
    pub peak_rss_bytes: u64,
    /// The memory limit, bytes.
    pub memory_limit_bytes: u64,
    /// Peak bytes reserved by accumulators at once.
    pub peak_reserved_bytes: u64,
    /// Spill files written.
    pub spill_files: u64,
    /// Spill bytes written.
    pub spill_bytes: u64,
    /// Total time heavy finishes waited at the gate, milliseconds.
    pub gate_wait_ms: f64,
    /// Per node.
    pub nodes: Vec<NodeReport>,
    /// Per edge.
    pub edges: Vec<EdgeReport>,
    /// Memory over the run: samples about ten a second, thinned evenly to at most 2,000,
    /// and the pressure changes.
    pub memory: crate::memory::MemoryTrace,
}

impl RunReport {
    /// The figures of a node, by id.
    pub fn node(&self, id: &str) -> Option<&NodeReport> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// When the process's peak resident memory went above the limit, by how much (the
    /// command line warns).
    pub fn memory_overshoot(&self) -> Option<MemoryOvershoot> {
        (self.peak_rss_bytes > self.memory_limit_bytes).then_some(MemoryOvershoot {
            peak_rss_bytes: self.peak_rss_bytes,
            limit_bytes: self.memory_limit_bytes,
            spill_files: self.spill_files,
        })
    }

    /// Per node, the features rejected to a `rejected` port that has no edge (and so
    /// dropped). The command line warns about them, and `--strict` fails on them.
    pub fn unhandled_rejections(&self) -> Vec<UnhandledRejections<'_>> {
        self.nodes
            .iter()
            .flat_map(|n| {
                n.dropped
                    .iter()
                    .filter(|d| d.port == REJECTED_PORT && d.features > 0)
                    .map(|d| UnhandledRejections {
                        node: &n.id,
                        features: d.features,
                        first_reason: d.first_reason.as_deref(),
                    })
            })
            .collect()
    }
}

/// What a run measured, gathered once its threads have ended.
pub(super) struct Measured<'a> {
    pub workflow: Option<String>,
    pub started: std::time::Instant,
    pub memory: crate::memory::MemoryTrace,
    pub ok: bool,
    pub elapsed: Duration,
    pub peak_rss_bytes: u64,
    pub shared: &'a Shared,
    pub nodes: Vec<NodeEnd>,
    pub progress: &'a [NodeProgress],
    pub edges: Vec<EdgeTally>,
}

impl RunReport {
    /// The report of a run from what it measured.
    pub(super) fn assemble(m: Measured<'_>) -> RunReport {
        let (spill_files, spill_bytes) = m.shared.spill.totals();
        // A node may register several consumers; its peak is their sum.
        let peaks: HashMap<String, usize> = m.shared.budget.consumer_peaks().into_iter().fold(
            HashMap::new(),
            |mut peaks, (name, peak)| {
                *peaks.entry(name).or_default() += peak;
                peaks
            },
        );
        RunReport {
            workflow: m.workflow,
            ok: m.ok,
            elapsed_ms: m.elapsed.as_secs_f64() * 1e3,
            peak_rss_bytes: m.peak_rss_bytes,
            memory_limit_bytes: m.shared.limit,
            peak_reserved_bytes: m.shared.budget.peak() as u64,
            spill_files,
            spill_bytes,
            gate_wait_ms: m.shared.gate.total_wait().as_secs_f64() * 1e3,
            nodes: m
                .nodes
                .into_iter()
                .zip(m.progress)
                .map(|(end, p)| {
                    let timeline = p.state.timeline(m.started, std::time::Instant::now());
                    NodeReport::of(end, p, &peaks, timeline)
                })
                .collect(),
            edges: m
                .edges
                .into_iter()
                .map(|e| EdgeReport {
                    from: e.from,
                    to: e.to,
                    features: e.features.load(Ordering::Relaxed),
                })
                .collect(),
            memory: m.memory,
        }
    }
}

impl NodeReport {
    fn of(
        end: NodeEnd,
        p: &NodeProgress,
        peaks: &HashMap<String, usize>,
        timeline: Vec<super::progress::StateSpan>,
    ) -> NodeReport {
        let dropped = DroppedReport::collect(&end.outputs, &end.drops);
        NodeReport {
            peak_reservation: peaks.get(&end.id).copied().unwrap_or(0) as u64,
            action: end.action,
            features_in: p.features_in.load(Ordering::Relaxed),
            features_out: p.out(),
            ports: end
                .outputs
                .into_iter()
                .zip(p.features_out.iter().map(|c| c.load(Ordering::Relaxed)))
                .collect(),
            features_dropped: dropped.iter().map(|d| d.features).sum(),
            dropped,
            elapsed_ms: end.took.as_secs_f64() * 1e3,
            gate_wait_ms: end.gate_wait_ns.load(Ordering::Relaxed) as f64 / 1e6,
            busy_ms: p.state.busy_ms(),
            thread_cpu_ms: p.state.thread_cpu_ns() as f64 / 1e6,
            pool_cpu_ms: p.state.pool_cpu_ns() as f64 / 1e6,
            timeline,
            id: end.id,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::DroppedReport;
    use crate::action::{
        ActionKind, ActionSpec, BuiltAction, Emitter, NodeImpl, Registry, Transform, schema_of,
    };
    use crate::error::ActionError;
    use crate::events::{Event, EventSender};
    use crate::executor::RunOptions;
    use crate::feature::Feature;
    use crate::testing::{COUNT, GEN, NoParams, run_yaml, test_registry};

    /// Sends even ids on, odd ids to `rejected` with a reason.
    struct Odd;

    impl Transform for Odd {
        fn apply(&self, features: Vec<Feature>, out: &mut Emitter) -> Result<(), ActionError> {
            for f in features {
                if f.id() % 2 == 0 {
                    out.emit(f)?;
                } else {
                    let reason = format!("odd id {}", f.id());
                    out.reject(f, reason)?;
                }
            }
            Ok(())
        }
    }

    const ODD: ActionSpec = ActionSpec::new(
        "odd",
        ActionKind::Processor,
        "rejects odd ids",
        schema_of::<NoParams>,
        |_| {
            Ok(BuiltAction::new(NodeImpl::Transform(std::sync::Arc::new(
                Odd,
            ))))
        },
    )
    .outputs(&["default", "rejected"]);

    #[test]
    fn a_peak_above_the_limit_is_an_overshoot_that_says_so() {
        let yaml = "nodes:\n  - { id: g, action: gen, with: { count: 10 } }\n  - { id: c, action: count }\nedges: [ \"g -> c\" ]\n";
        let mut report = run_yaml(
            yaml,
            &test_registry(),
            Default::default(),
            Duration::from_secs(60),
        )
        .unwrap();
        // The default limit is half the machine's memory: ten features stay far below.
        assert_eq!(report.memory_overshoot(), None);
        report.memory_limit_bytes = 24 << 20;
        report.peak_rss_bytes = 30 << 20;
        report.spill_files = 4;
        assert_eq!(
            report.memory_overshoot().unwrap().to_string(),
            "peak memory 30.0 MiB was above the memory limit of 24.0 MiB: accumulators kept to \
             their budget (4 spill files), but code, threads, buffers and the allocator took more \
             than the rest of the limit; give a higher --memory-limit or fewer --threads"
        );
        report.peak_rss_bytes = 24 << 20;
        assert_eq!(
            report.memory_overshoot(),
            None,
            "at the limit is not above it"
        );
    }

    #[test]
    fn rejected_features_with_no_edge_are_counted_and_reported() {
        let yaml = r#"
nodes:
  - { id: src, action: gen, with: { count: 1000 } }
  - { id: odd, action: odd }
  - { id: sink, action: count }
edges: [ "src -> odd", "odd -> sink" ]
"#;
        let (events, mut rx) = EventSender::stream();
        let options = RunOptions {
            events,
            channel_bound: 64,
            batch_size: 16,
            ..RunOptions::default()
        };
        let registry = Registry::from_specs([GEN, ODD, COUNT]);
        let report = run_yaml(yaml, &registry, options, Duration::from_secs(60)).unwrap();
        let odd = report.node("odd").unwrap();
        assert_eq!((odd.features_in, odd.features_out), (1000, 500));
        assert_eq!(odd.ports, [("default".into(), 500), ("rejected".into(), 0)]);
        assert_eq!(odd.features_dropped, 500);
        let dropped = &odd.dropped[0];
        assert_eq!((dropped.port.as_str(), dropped.features), ("rejected", 500));
        assert_eq!(dropped.first_reason.as_deref(), Some("odd id 1"));
        let unhandled = report.unhandled_rejections();
        assert_eq!(unhandled.len(), 1);
        assert_eq!(
            unhandled[0].to_string(),
            "node \"odd\" rejected 500 features and its \"rejected\" port has no edge: they \
             were dropped; first reason: odd id 1"
        );
        let finished = std::iter::from_fn(|| rx.try_next()).find_map(|e| match e {
            Event::NodeFinished {
                node,
                features_out,
                features_dropped,
                dropped,
                ..
            } if node == "odd" => Some((features_out, features_dropped, dropped)),
            _ => None,
        });
        assert_eq!(finished, Some((500, 500, odd.dropped.clone())));
    }

    #[test]
    fn node_finished_names_each_port_that_dropped_and_its_count() {
        // Neither port of `odd` has an edge: both drop, and the event says which and how many.
        let yaml = r#"
nodes:
  - { id: src, action: gen, with: { count: 101 } }
  - { id: odd, action: odd }
  - { id: pass, action: count }
edges: [ "src -> odd", "src -> pass" ]
"#;
        let (events, mut rx) = EventSender::stream();
        let options = RunOptions {
            events,
            batch_size: 8,
            ..RunOptions::default()
        };
        let registry = Registry::from_specs([GEN, ODD, COUNT]);
        let report = run_yaml(yaml, &registry, options, Duration::from_secs(60)).unwrap();
        let finished: Vec<(String, u64, Vec<DroppedReport>)> = std::iter::from_fn(|| rx.try_next())
            .filter_map(|e| match e {
                Event::NodeFinished {
                    node,
                    features_dropped,
                    dropped,
                    ..
                } => Some((node, features_dropped, dropped)),
                _ => None,
            })
            .collect();
        let of = |id: &str| finished.iter().find(|(n, ..)| n == id).unwrap();
        // Ids 0..=100: 51 even on `default`, 50 odd on `rejected`.
        let (_, total, dropped) = of("odd");
        assert_eq!(*total, 101);
        assert_eq!(
            *dropped,
            [
                DroppedReport {
                    port: "default".into(),
                    features: 51,
                    first_reason: None,
                },
                DroppedReport {
                    port: "rejected".into(),
                    features: 50,
                    first_reason: Some("odd id 1".into()),
                },
            ]
        );
        assert_eq!(*dropped, report.node("odd").unwrap().dropped);
        // A node that dropped nothing names no port.
        let (_, total, dropped) = of("src");
        assert_eq!((*total, dropped.len()), (0, 0));
    }
}
