//! The body of one node thread: the receive loop and the four flavours.
//!
//! ```text
//!   inputs ──► Select { input 0, input 1, ..., cancel } ──► process / write
//!   (an input that disconnects leaves the select; when none is left the node finishes,
//!    then drops its senders, which disconnects the nodes downstream)
//! ```
//!
//! Selecting over all inputs at once means a node never blocks on one input while another
//! is full, so a fan-out that joins again cannot deadlock.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crossbeam_channel::{Receiver, Select};
use rayon::prelude::*;

use crate::action::{Emitter, NodeContext, NodeImpl, Processor, Sink, Transform};
use crate::error::ActionError;
use crate::feature::Batch;
use crate::memory::Gate;

use super::progress::{NodeState, StateCell};

/// Batches at least this long are split across the pool for transforms.
const PARALLEL_MIN: usize = 256;

/// Everything a node thread owns.
pub(crate) struct NodeRun {
    pub ctx: NodeContext,
    pub node: NodeImpl,
    pub inputs: Vec<(usize, Receiver<Batch>)>,
    pub out: Emitter,
    pub features_in: Arc<AtomicU64>,
    pub heavy_finish: bool,
    pub gate: Gate,
    pub gate_wait_ns: Arc<AtomicU64>,
    pub state: Arc<StateCell>,
}

/// What a node thread hands back: a sink to commit or abort once the whole run is known.
pub(crate) type Finished = Option<Box<dyn Sink>>;

impl NodeRun {
    /// The per-port emitted counters (for events).
    pub fn out_total(&self) -> Vec<Arc<AtomicU64>> {
        self.out.counters()
    }

    /// Runs the node to completion. A sink is returned (finished, not yet committed) so the
    /// executor can commit all sinks only when every node succeeded. On error a sink is
    /// aborted here.
    pub fn run(self) -> Result<Finished, ActionError> {
        let NodeRun {
            ctx,
            node,
            inputs,
            mut out,
            features_in,
            heavy_finish,
            gate,
            gate_wait_ns,
            state,
        } = self;
        match node {
            NodeImpl::Source(mut s) => {
                s.run(&ctx, &mut out)?;
                out.close()?;
                Ok(None)
            }
            NodeImpl::Transform(t) => {
                let mut cost = TransformCost::default();
                receive(&ctx, inputs, &features_in, true, |_, batch| {
                    apply_transform(&t, batch, &ctx, &mut cost, &mut out)
                })?;
                out.close()?;
                Ok(None)
            }
            NodeImpl::Processor(mut p) => {
                receive(&ctx, inputs, &features_in, true, |port, batch| {
                    p.process(port, batch, &ctx, &mut out)
                })?;
                finish_processor(
                    p.as_mut(),
                    &ctx,
                    heavy_finish,
                    (&gate, &gate_wait_ns),
                    &state,
                    &mut out,
                )?;
                out.close()?;
                Ok(None)
            }
            NodeImpl::Sink(mut s) => {
                let res = receive(&ctx, inputs, &features_in, true, |port, batch| {
                    s.write(port, batch, &ctx)
                })
                .and_then(|_| {
                    state.set(NodeState::Finishing);
                    s.finish(&ctx)
                });
                match res {
                    Ok(()) => Ok(Some(s)),
                    Err(e) => {
                        s.abort();
                        Err(e)
                    }
                }
            }
        }
    }
}

fn finish_processor(
    p: &mut dyn Processor,
    ctx: &NodeContext,
    heavy: bool,
    (gate, gate_wait_ns): (&Gate, &AtomicU64),
    state: &StateCell,
    out: &mut Emitter,
) -> Result<(), ActionError> {
    let _permit = if heavy {
        state.set(NodeState::Gated);
        let permit = gate.acquire(&ctx.node_id, &ctx.cancel, &ctx.events)?;
        gate_wait_ns.store(permit.waited.as_nanos() as u64, Ordering::Relaxed);
        Some(permit)
    } else {
        None
    };
    state.set(NodeState::Finishing);
    p.finish(ctx, out)
}

/// The receive loop: selects over every open input and the cancel token. With `own_thread`
/// the node's CPU time is read from its thread's clock after each batch (a fused chain
/// counts each of its nodes' time itself).
pub(super) fn receive(
    ctx: &NodeContext,
    mut inputs: Vec<(usize, Receiver<Batch>)>,
    features_in: &AtomicU64,
    own_thread: bool,
    mut handle: impl FnMut(usize, Batch) -> Result<(), ActionError>,
) -> Result<(), ActionError> {
    while !inputs.is_empty() {
        let mut sel = Select::new();
        for (_, r) in &inputs {
            sel.recv(r);
        }
        let cancel_arm = sel.recv(ctx.cancel.receiver());
        let op = sel.select();
        let i = op.index();
        if i == cancel_arm {
            let _ = op.recv(ctx.cancel.receiver());
            return Err(ActionError::Cancelled);
        }
        match op.recv(&inputs[i].1) {
            Ok(batch) => {
                features_in.fetch_add(batch.len() as u64, Ordering::Relaxed);
                handle(inputs[i].0, batch)?;
                if own_thread {
                    ctx.note_thread_cpu();
                }
            }
            Err(_) => {
                inputs.swap_remove(i);
            }
        }
    }
    if ctx.is_cancelled() {
        return Err(ActionError::Cancelled);
    }
    Ok(())
}

/// What a transform costs per feature when applied on its node thread, so cheap transforms
/// (a rename, a comparison) skip the pool: splitting a batch, dispatching it and re-joining
/// the outputs costs more than it saves for them.
#[derive(Default)]
pub(super) struct TransformCost {
    /// Moving average of nanoseconds per feature (0: not measured yet).
    ns_per_feature: f64,
    /// Batches since the cost was last measured.
    since_measured: u32,
}

/// Below this estimated cost per batch the transform runs on its node thread.
const PARALLEL_MIN_BATCH_NS: f64 = 100_000.0;
/// Re-measure the sequential cost every this many batches (costs drift with the data).
const REMEASURE_EVERY: u32 = 64;

/// Applies a stateless transform to one batch: split across the pool when it is big and
/// expensive enough, outputs concatenated in input order so a linear chain keeps its order.
pub(super) fn apply_transform(
    t: &Arc<dyn Transform>,
    batch: Batch,
    ctx: &NodeContext,
    cost: &mut TransformCost,
    out: &mut Emitter,
) -> Result<(), ActionError> {
    let threads = ctx.pool.current_num_threads();
    let n = batch.len();
    let measure = cost.ns_per_feature == 0.0 || cost.since_measured >= REMEASURE_EVERY;
    let expensive = cost.ns_per_feature * n as f64 >= PARALLEL_MIN_BATCH_NS;
    if n < PARALLEL_MIN || threads < 2 {
        return t.apply(batch, out);
    }
    if measure {
        // Time the transform alone (into a buffer), not the waits for a full downstream edge.
        let mut buffer = out.buffer_like();
        let started = std::time::Instant::now();
        t.apply(batch, &mut buffer)?;
        let ns = started.elapsed().as_nanos() as f64 / n as f64;
        cost.ns_per_feature = if cost.ns_per_feature == 0.0 {
            ns.max(f64::MIN_POSITIVE)
        } else {
            0.8 * cost.ns_per_feature + 0.2 * ns
        };
        cost.since_measured = 0;
        for (port, features) in buffer.into_buffers().into_iter().enumerate() {
            out.emit_batch(port, features)?;
        }
        return Ok(());
    }
    if !expensive {
        cost.since_measured += 1;
        return t.apply(batch, out);
    }
    cost.since_measured += 1;
    let chunk_emitter = out.buffer_like();
    let chunk = batch.len().div_ceil(threads * 2).max(PARALLEL_MIN / 4);
    let chunks = crate::feature::split_batch(batch, chunk);
    let results: Vec<Result<Vec<Batch>, ActionError>> = ctx.install(|| {
        chunks
            .into_par_iter()
            .map(|c| {
                ctx.pool_job(|| {
                    let mut e = chunk_emitter.buffer_like();
                    t.apply(c, &mut e).map(|_| e.into_buffers())
                })
            })
            .collect()
    });
    for r in results {
        for (port, features) in r?.into_iter().enumerate() {
            out.emit_batch(port, features)?;
        }
    }
    Ok(())
}
