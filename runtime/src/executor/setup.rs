//! Setting a run up before any thread starts: the memory plan, what every node shares, and
//! each node with its ends of the channels and its live counters.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize};

use super::node::NodeRun;
use super::options::RunOptions;
use super::progress::{NodeProgress, StateCell};
use super::wiring::Wiring;
use crate::action::{Emitter, NodeContext, PortDrops};
use crate::dag::{Plan, PlanNode};
use crate::error::RunError;
use crate::memory::monitor::Knobs;
use crate::memory::{
    Gate, MemoryBudget, MemoryPlan, PlanInput, Reservation, SpillDir, default_memory_limit,
};
use crate::pool::new_pool;

/// Shares the memory limit out for `plan` (see [`MemoryPlan::from_limit`]): nodes,
/// features in flight on edges and the buffers of `captured` edges are reserved for the whole
/// run, accumulators get the rest; a limit too small for the workflow refuses the run here.
pub(super) fn plan_memory(
    plan: &Plan,
    opts: &RunOptions,
    captured: &[usize],
) -> Result<MemoryPlan, RunError> {
    let limit = opts.memory_limit.unwrap_or_else(default_memory_limit);
    let input = PlanInput {
        nodes: plan.nodes.len(),
        edges: plan.edges.len(),
        accumulators: plan.nodes.iter().filter(|n| n.spec.accumulates).count(),
        batch_size: opts.batch_size,
        channel_bound: opts.channel_bound,
        fixed: captured
            .iter()
            .map(|&i| {
                (
                    format!("capture of {}", plan.edge_name(i)),
                    crate::capture::edge_budget_bytes(opts.batch_size),
                )
            })
            .collect(),
    };
    Ok(MemoryPlan::from_limit(limit, &input)?)
}

/// What every node of a run shares.
pub(super) struct Shared {
    /// The memory limit, in bytes.
    pub limit: u64,
    pub budget: MemoryBudget,
    /// The plan's reservations (nodes, edges, fixed items), held until the run ends.
    pub planned: Vec<Reservation>,
    pub pool: Arc<rayon::ThreadPool>,
    pub spill: SpillDir,
    /// Batch size and read-ahead, which the monitor turns down under pressure.
    pub knobs: Knobs,
    pub gate: Gate,
}

impl Shared {
    /// The budget, pool, spill folder, knobs and gate of a run with `memory`'s plan.
    pub fn new(memory: &MemoryPlan, opts: &RunOptions) -> Shared {
        let budget = MemoryBudget::new(memory.budget);
        let planned = memory.reserve(&budget);
        let pool = Arc::new(new_pool(opts.threads));
        let spill = SpillDir::new(opts.spill_dir.clone().unwrap_or_else(std::env::temp_dir));
        // Spill folders of runs that were killed outright (their process is gone).
        spill.clean_stale();
        let knobs = Knobs {
            batch_size: Arc::new(AtomicUsize::new(memory.batch_size)),
            read_ahead: Arc::new(AtomicUsize::new(
                memory.read_ahead(pool.current_num_threads()),
            )),
        };
        let pool_busy = Arc::new(AtomicUsize::new(0));
        let gate = Gate::new(opts.gate, memory.limit, budget.clone(), pool_busy);
        Shared {
            limit: memory.limit,
            budget,
            planned,
            pool,
            spill,
            knobs,
            gate,
        }
    }
}

/// A node ready to start: its thread's work, and what the report needs of it.
pub(super) struct ReadyNode {
    pub id: String,
    /// The action's name.
    pub action: String,
    /// The output ports' names.
    pub outputs: Vec<String>,
    /// Per output port: features emitted where no edge leads.
    pub drops: Vec<Arc<PortDrops>>,
    pub run: NodeRun,
}

/// Sets up every node: its context, its emitter over its outgoing channels, its receivers
/// and its live counters.
pub(super) fn set_up_nodes(
    nodes: Vec<PlanNode>,
    wiring: &mut Wiring,
    shared: &Shared,
    opts: &RunOptions,
) -> (Vec<NodeProgress>, Vec<ReadyNode>) {
    nodes
        .into_iter()
        .enumerate()
        .map(|(i, n)| set_up_node(i, n, wiring, shared, opts))
        .unzip()
}

fn set_up_node(
    i: usize,
    n: PlanNode,
    wiring: &mut Wiring,
    shared: &Shared,
    opts: &RunOptions,
) -> (NodeProgress, ReadyNode) {
    let port_counters: Vec<Arc<AtomicU64>> = (0..n.outputs.len())
        .map(|_| Arc::new(AtomicU64::new(0)))
        .collect();
    let ports = port_counters
        .iter()
        .enumerate()
        .map(|(p, c)| (wiring.take_senders(i, p), c.clone()))
        .collect();
    let state = Arc::new(StateCell::default());
    let ctx = NodeContext {
        node_id: n.id.as_str().into(),
        cancel: opts.cancel.clone(),
        budget: shared.budget.clone(),
        pool: shared.pool.clone(),
        spill: shared.spill.clone(),
        events: opts.events.clone(),
        read_ahead: shared.knobs.read_ahead.clone(),
        gate: Some(shared.gate.clone()),
        state: Some(state.clone()),
        journal: opts.journal.clone().map(Arc::new),
        slice: opts.slice,
    };
    let features_in = Arc::new(AtomicU64::new(0));
    let progress = NodeProgress {
        id: n.id.clone(),
        ports: n.outputs.clone(),
        features_in: features_in.clone(),
        features_out: port_counters,
        state: state.clone(),
    };
    let out = Emitter::channels(
        &n.outputs,
        ports,
        shared.knobs.batch_size.clone(),
        opts.cancel.clone(),
    );
    let drops = out.drops();
    let run = NodeRun {
        ctx,
        node: n.node,
        inputs: wiring.take_receivers(i),
        out,
        features_in,
        heavy_finish: n.spec.heavy_finish,
        gate: shared.gate.clone(),
        gate_wait_ns: Arc::new(AtomicU64::new(0)),
        state,
    };
    let ready = ReadyNode {
        id: n.id,
        action: n.spec.name.to_string(),
        outputs: n.outputs,
        drops,
        run,
    };
    (progress, ready)
}
