//! The run's memory policy: every number that shares out a memory limit, and the plan made
//! from them before anything runs. This is the one place to read (and change) the policy;
//! the budget, the monitor and the executor take their numbers from here.
//!
//! ```text
//!   limit ─┬─ 60 % budget ─┬─ nodes: NODE_BYTES each (thread, stack, allocator caches)
//!          │               ├─ edges: features in flight × FEATURE_BYTES, at most 1/4 of it
//!          │               ├─ fixed items added by the embedder (e.g. capture buffers)
//!          │               └─ the rest: accumulators (sort, dedup, join, ...) and merges
//!          └─ 40 % ──────── what is not counted: code, readers' and writers' buffers,
//!                           allocator slack
//! ```
//!
//! Nodes, edges and fixed items are reserved from the budget for the whole run, so
//! accumulators grow only into what is left. Edges get shallower (fewer, smaller batches in
//! flight) until they fit in their quarter. When even the smallest setup does not fit (every
//! node, the shallowest edges, and [`ACCUMULATOR_MIN_BYTES`] per accumulator), the run
//! refuses to start with [`LimitTooSmall`], which names the minimum for this workflow.
//!
//! While the run goes on, the monitor compares resident memory with the limit: from
//! [`WARNING_PERCENT`] of it batches shrink to a quarter and read-ahead to a half, from
//! [`CRITICAL_PERCENT`] batches shrink to a sixteenth and read-ahead to one (batches never
//! below [`PRESSURE_MIN_BATCH`] features); below the warning level both are restored.
//!
//! The 40 % outside the budget is where buffers sized elsewhere live: a reader's chunk
//! ([`crate::store::READ_CHUNK`]), a writer's buffer (256 KiB, `store/write.rs`) and the
//! pages of a spill run being read or written (`spill.rs`).

use crate::memory::{MemoryBudget, Reservation, total_memory};

/// The share of the limit that is the budget.
pub const BUDGET_SHARE: f64 = 0.6;
/// What one feature in flight is assumed to take (a few attributes, short strings).
pub const FEATURE_BYTES: usize = 512;
/// What a node costs beyond the data it holds: its thread's stack pages and allocator caches.
pub const NODE_BYTES: usize = 128 << 10;
/// The least an accumulator works in: a batch held, two runs open and a run being written.
pub const ACCUMULATOR_MIN_BYTES: usize = 2 << 20;
/// The shallowest edge: one batch of this many features.
pub const MIN_EDGE_FEATURES: usize = 16;
/// Edges get at most a quarter of the budget (one part in this many).
const EDGE_SHARE: usize = 4;
/// Resident memory at or above this percentage of the limit is a warning.
pub const WARNING_PERCENT: u64 = 80;
/// Resident memory at or above this percentage of the limit is critical.
pub const CRITICAL_PERCENT: u64 = 90;
/// Under warning pressure batches shrink by this factor.
pub const WARNING_BATCH_DIVISOR: usize = 4;
/// Under warning pressure read-ahead shrinks by this factor (to at least 1).
pub const WARNING_READ_AHEAD_DIVISOR: usize = 2;
/// Under critical pressure batches shrink by this factor (read-ahead drops to 1).
pub const CRITICAL_BATCH_DIVISOR: usize = 16;
/// Pressure never shrinks a batch below this many features.
pub const PRESSURE_MIN_BATCH: usize = 16;
/// Files or pages a reader may hold read ahead, per pool thread (at least two threads
/// counted).
pub const READ_AHEAD_PER_THREAD: usize = 2;
/// The limit when the machine's memory cannot be read.
const FALLBACK_LIMIT: u64 = 4 << 30;

/// The default memory limit: half the machine's memory (4 GiB if it cannot be read).
pub fn default_memory_limit() -> u64 {
    match total_memory() {
        0 => FALLBACK_LIMIT,
        total => total / 2,
    }
}

/// What the plan is made from: the shape of the workflow and the options asked for.
#[derive(Clone, Debug)]
pub struct PlanInput {
    /// Nodes (threads).
    pub nodes: usize,
    /// Edges (channels).
    pub edges: usize,
    /// Nodes whose action accumulates (holds its input).
    pub accumulators: usize,
    /// Features per batch asked for.
    pub batch_size: usize,
    /// Most features in flight per edge asked for.
    pub channel_bound: usize,
    /// Other bytes to reserve for the whole run, by name (e.g. capture buffers).
    pub fixed: Vec<(String, usize)>,
}

/// The limit cannot hold the workflow: the run refuses to start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "--memory-limit {} is below the {} this workflow needs ({nodes} nodes, {edges} edges, \
     {accumulators} accumulating); use --memory-limit {} or more",
    mib(*limit),
    mib(*minimum),
    mib(*minimum)
)]
pub struct LimitTooSmall {
    /// The limit asked for, in bytes.
    pub limit: u64,
    /// The smallest limit this workflow runs in, in bytes (a whole number of MiB).
    pub minimum: u64,
    /// Nodes of the workflow.
    pub nodes: usize,
    /// Edges of the workflow.
    pub edges: usize,
    /// Accumulating nodes of the workflow.
    pub accumulators: usize,
}

fn mib(bytes: u64) -> String {
    format!("{}MB", bytes.div_ceil(1 << 20))
}

/// How the limit is shared out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemoryPlan {
    /// The limit in bytes.
    pub limit: u64,
    /// The budget (accumulators, edges, nodes, fixed items), in bytes.
    pub budget: usize,
    /// Features per batch.
    pub batch_size: usize,
    /// Batches in flight per edge (the channel capacity).
    pub capacity: usize,
    /// Bytes reserved for all edges.
    pub edge_bytes: usize,
    /// Bytes reserved for all nodes.
    pub node_bytes: usize,
    /// Other fixed reservations, by name.
    pub fixed: Vec<(String, usize)>,
}

impl MemoryPlan {
    /// Shares `limit` out for a workflow of `input`'s shape, by the policy in the
    /// docs of `memory/plan.rs`: [`BUDGET_SHARE`] of the limit is the budget; each node reserves
    /// [`NODE_BYTES`]; edges carry as many features as asked (counted at [`FEATURE_BYTES`]
    /// each) within a quarter of the budget, but never fewer than [`MIN_EDGE_FEATURES`]; each
    /// accumulator needs at least [`ACCUMULATOR_MIN_BYTES`] of what is left. Fails with
    /// [`LimitTooSmall`] (naming the minimum) when the limit cannot hold that.
    pub fn from_limit(limit: u64, input: &PlanInput) -> Result<MemoryPlan, LimitTooSmall> {
        let budget = (limit as f64 * BUDGET_SHARE) as usize;
        let node_bytes = input.nodes * NODE_BYTES;
        let fixed: usize = input.fixed.iter().map(|(_, b)| b).sum();
        let min_edge = input.edges * MIN_EDGE_FEATURES * FEATURE_BYTES;
        let minimum_budget =
            node_bytes + fixed + min_edge + input.accumulators * ACCUMULATOR_MIN_BYTES;
        if budget < minimum_budget {
            let minimum = ((minimum_budget as f64 / BUDGET_SHARE).ceil() as u64).div_ceil(1 << 20);
            return Err(LimitTooSmall {
                limit,
                minimum: minimum << 20,
                nodes: input.nodes,
                edges: input.edges,
                accumulators: input.accumulators,
            });
        }
        // Edges: as deep as asked, within their share and what the minimums leave.
        let edge_room = (budget / EDGE_SHARE)
            .min(budget - (minimum_budget - min_edge))
            .max(min_edge);
        let per_edge = edge_room
            .checked_div(input.edges)
            .map_or(input.channel_bound, |b| b / FEATURE_BYTES);
        let bound = input
            .channel_bound
            .min(per_edge)
            .max(MIN_EDGE_FEATURES.min(input.channel_bound))
            .max(1);
        let batch_size = input.batch_size.clamp(1, bound);
        let capacity = (bound / batch_size).max(1);
        Ok(MemoryPlan {
            limit,
            budget,
            batch_size,
            capacity,
            edge_bytes: input.edges * capacity * batch_size * FEATURE_BYTES,
            node_bytes,
            fixed: input.fixed.clone(),
        })
    }

    /// Files or pages a reader may hold read ahead with `pool_threads` threads in the pool,
    /// before any pressure.
    pub fn read_ahead(&self, pool_threads: usize) -> usize {
        pool_threads.max(2) * READ_AHEAD_PER_THREAD
    }

    /// Reserves the nodes, edges and fixed items from `budget` (which must have
    /// [`MemoryPlan::budget`] bytes); they go back when the returned reservations are dropped
    /// at the end of the run.
    pub fn reserve(&self, budget: &MemoryBudget) -> Vec<Reservation> {
        let mut out = Vec::new();
        let items = [
            ("(nodes)".to_string(), self.node_bytes),
            ("(edges)".to_string(), self.edge_bytes),
        ];
        for (name, bytes) in items.iter().chain(&self.fixed) {
            let mut r = budget.register(name);
            // The plan fits the budget by construction; nothing else has reserved yet.
            let _ = r.try_grow(*bytes);
            out.push(r);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(nodes: usize, edges: usize, accumulators: usize) -> PlanInput {
        PlanInput {
            nodes,
            edges,
            accumulators,
            batch_size: 1024,
            channel_bound: 8192,
            fixed: Vec::new(),
        }
    }

    #[test]
    fn small_workflows_keep_deep_edges_in_a_large_limit() {
        let p = MemoryPlan::from_limit(4 << 30, &shape(5, 4, 1)).unwrap();
        assert_eq!((p.batch_size, p.capacity), (1024, 8));
        assert_eq!(p.edge_bytes, 4 * 8192 * FEATURE_BYTES);
    }

    #[test]
    fn edges_shrink_to_a_quarter_of_the_budget() {
        let limit = 64u64 << 20;
        let p = MemoryPlan::from_limit(limit, &shape(201, 200, 0)).unwrap();
        assert!(p.edge_bytes <= p.budget / 4, "{p:?}");
        assert!(p.batch_size * p.capacity >= MIN_EDGE_FEATURES, "{p:?}");
        assert!(p.edge_bytes + p.node_bytes <= p.budget);
    }

    #[test]
    fn edge_and_node_reservations_come_from_the_budget_and_go_back() {
        let mut input = shape(10, 9, 1);
        input.fixed.push(("capture".into(), 1 << 20));
        let p = MemoryPlan::from_limit(64 << 20, &input).unwrap();
        let budget = MemoryBudget::new(p.budget);
        let held = p.reserve(&budget);
        assert_eq!(
            budget.reserved(),
            p.edge_bytes + p.node_bytes + (1 << 20),
            "{p:?}"
        );
        assert_eq!(budget.reserved_by("(edges)"), p.edge_bytes);
        assert_eq!(budget.reserved_by("capture"), 1 << 20);
        // Accumulators get what is left, not more.
        let mut acc = budget.register("sort");
        assert!(!acc.try_grow(p.budget - p.edge_bytes - p.node_bytes));
        assert!(acc.try_grow(budget.available()));
        drop(acc);
        drop(held);
        assert_eq!(budget.reserved(), 0);
    }

    #[test]
    fn below_the_minimum_the_plan_refuses_and_names_the_minimum() {
        let input = shape(201, 200, 3);
        let err = MemoryPlan::from_limit(4 << 20, &input).unwrap_err();
        let need =
            201 * NODE_BYTES + 200 * MIN_EDGE_FEATURES * FEATURE_BYTES + 3 * ACCUMULATOR_MIN_BYTES;
        assert!(err.minimum as f64 * BUDGET_SHARE >= need as f64, "{err:?}");
        assert_eq!(err.minimum % (1 << 20), 0);
        // The minimum itself is accepted, one MiB less is not.
        assert!(MemoryPlan::from_limit(err.minimum, &input).is_ok());
        assert!(MemoryPlan::from_limit(err.minimum - (1 << 20), &input).is_err());
        let text = err.to_string();
        assert!(text.contains("4MB"), "{text}");
        assert!(
            text.contains(&format!("--memory-limit {}MB or more", err.minimum >> 20)),
            "{text}"
        );
        assert!(
            text.contains("201 nodes, 200 edges, 3 accumulating"),
            "{text}"
        );
    }

    #[test]
    fn read_ahead_counts_at_least_two_threads() {
        let p = MemoryPlan::from_limit(64 << 20, &shape(3, 2, 0)).unwrap();
        assert_eq!(p.read_ahead(1), 2 * READ_AHEAD_PER_THREAD);
        assert_eq!(p.read_ahead(8), 8 * READ_AHEAD_PER_THREAD);
    }

    #[test]
    fn a_channel_bound_of_one_stays_one() {
        let mut input = shape(3, 2, 0);
        input.channel_bound = 1;
        let p = MemoryPlan::from_limit(64 << 20, &input).unwrap();
        assert_eq!((p.batch_size, p.capacity), (1, 1));
    }
}
