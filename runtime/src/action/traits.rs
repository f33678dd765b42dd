//! The four runtime flavours of an action.
//!
//! # Lifecycle
//!
//! - [`Source::run`] is called once on the node's thread; it emits until its input is
//!   exhausted, then returns. Its outputs close when it returns.
//! - [`Transform::apply`] is called for each chunk of each incoming batch, possibly on many
//!   pool threads at once; the executor concatenates the chunks' outputs in input order.
//! - [`Processor::process`] is called for each incoming batch, on the node's thread, in the
//!   order batches arrive on each input. When every input has closed, [`Processor::finish`] is
//!   called exactly once; it MUST move accumulated data out (drain its buffers), not copy it.
//! - [`Sink::write`] is called for each batch; [`Sink::finish`] once when all inputs closed:
//!   it flushes everything to its temporary output. When EVERY node of the run has finished
//!   without error, the executor calls [`Sink::commit`] (rename the temporary output into
//!   place). If the run fails or is cancelled, [`Sink::abort`] is called instead, and must
//!   remove any temporary output; so a failed run leaves no output of any sink.
//!
//! After any method returns `Err`, no other method is called except [`Sink::abort`].
//!
//! # Cancellation
//!
//! Emitting blocks when the downstream edge is full; that wait also listens to the run's
//! cancel token and returns [`ActionError::Cancelled`], which an
//! action should propagate with `?`. An action that waits on anything else must select on
//! [`NodeContext::cancel`]'s receiver too. Long loops without emits should check
//! [`NodeContext::is_cancelled`].
//!
//! # Memory
//!
//! An action that holds features beyond one call registers a reservation with
//! [`NodeContext::budget`] and grows it before it holds more; when growth fails it spills or
//! fails with `ActionError::MemoryExhausted`.

use std::sync::Arc;

use super::emit::Emitter;
use super::slice::Slice;
use crate::cancel::CancelToken;
use crate::error::ActionError;
use crate::events::{Event, EventSender};
use crate::feature::{Batch, Feature};
use crate::memory::{MemoryBudget, SpillDir};

/// What a running node can reach: its id, the cancel token, the memory budget, the shared
/// pool and the event stream.
#[derive(Clone)]
pub struct NodeContext {
    /// The node id (with subgraph prefixes).
    pub node_id: Arc<str>,
    /// The run's cancel token.
    pub cancel: CancelToken,
    /// The run's memory budget.
    pub budget: MemoryBudget,
    /// The run's one CPU pool.
    pub pool: Arc<rayon::ThreadPool>,
    /// Where accumulators spill.
    pub spill: SpillDir,
    pub(crate) events: EventSender,
    pub(crate) read_ahead: Arc<std::sync::atomic::AtomicUsize>,
    pub(crate) gate: Option<crate::memory::Gate>,
    /// The node's live state, for progress snapshots (none outside a run).
    pub(crate) state: Option<Arc<crate::executor::StateCell>>,
    /// Where journals go (`--job-dir`), when the run keeps them.
    pub(crate) journal: Option<Arc<crate::journal::JournalOptions>>,
    /// The part of its input a source reads ([`Slice::WHOLE`] unless the run is one task of
    /// a partitioned stage).
    pub(crate) slice: Slice,
}

impl NodeContext {
    /// Whether the run was cancelled.
    #[inline]
    pub fn is_cancelled(&self) -> bool {
        self.cancel.is_cancelled()
    }

    /// Fails with [`ActionError::Cancelled`] if the run was cancelled.
    #[inline]
    pub fn check_cancelled(&self) -> Result<(), ActionError> {
        if self.is_cancelled() {
            Err(ActionError::Cancelled)
        } else {
            Ok(())
        }
    }

    /// Sends a log line to the event stream.
    pub fn log(&self, message: impl Into<String>) {
        self.events.send(Event::Log {
            node: self.node_id.to_string(),
            message: message.into(),
        });
    }

    /// Runs parallel work on the run's shared pool. Use this rather than `pool.install`: the
    /// heavy-finish gate watches how much parallel work is in flight.
    pub fn install<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        match &self.gate {
            Some(g) => g.install(&self.pool, f),
            None => self.pool.install(f),
        }
    }

    /// Runs one sequential piece of this node's parallel work (inside [`NodeContext::install`],
    /// on a pool thread) and counts the CPU time it takes as the node's: the pool part of
    /// its busy time in run reports. Wrap leaf work only (no nested parallelism), so the
    /// time is the piece's own.
    pub fn pool_job<R>(&self, f: impl FnOnce() -> R) -> R {
        let Some(state) = &self.state else {
            return f();
        };
        let start = crate::cpu::thread_cpu_ns();
        let r = f();
        state.add_pool_cpu(crate::cpu::thread_cpu_ns().saturating_sub(start));
        r
    }

    /// Records the CPU time this node's own thread has used so far (called by the node
    /// thread as it works; a node thread is started for its node alone).
    pub(crate) fn note_thread_cpu(&self) {
        if let Some(state) = &self.state {
            state.set_thread_cpu(crate::cpu::thread_cpu_ns());
        }
    }

    /// Records that this node spilled `rows` rows in `bytes` bytes to disk (an event for
    /// observers; the spill folder keeps the totals for the run report).
    pub fn spilled(&self, bytes: u64, rows: u64) {
        if let Some(state) = &self.state {
            state.spilled(bytes);
        }
        self.events.send(Event::Spilled {
            node: self.node_id.to_string(),
            bytes,
            rows,
        });
    }

    /// How many files (or pages) a reader may hold read ahead now; lowered under memory
    /// pressure.
    pub fn read_ahead(&self) -> usize {
        self.read_ahead
            .load(std::sync::atomic::Ordering::Relaxed)
            .max(1)
    }

    /// This node's journal (see [`crate::journal`]) for parameters whose fingerprint is
    /// `fingerprint`, when the run keeps journals (`--job-dir`); `None` otherwise. Emptied
    /// unless the run resumes; a resumed journal written for another fingerprint is an error.
    pub fn journal(
        &self,
        fingerprint: &str,
    ) -> Result<Option<crate::journal::Journal>, ActionError> {
        match &self.journal {
            None => Ok(None),
            Some(options) => options.open(&self.node_id, fingerprint).map(Some),
        }
    }

    /// This context with journals kept under `options` (tests and tools that run an
    /// action outside a workflow).
    pub fn with_journal(mut self, options: crate::journal::JournalOptions) -> NodeContext {
        self.journal = Some(Arc::new(options));
        self
    }

    /// The part of its input this node reads: [`Slice::WHOLE`] unless the run is one task
    /// of a partitioned stage (`sluice run --stage K --partition I/N`). A source declared
    /// [`ActionSpec::sliced`](super::ActionSpec::sliced) reads only that part; slices of one
    /// input are contiguous and in order, so reading them one after the other gives the
    /// whole input's features in the whole read's order.
    pub fn slice(&self) -> Slice {
        self.slice
    }

    /// This context reading only `slice` (tests and tools).
    pub fn with_slice(mut self, slice: Slice) -> NodeContext {
        self.slice = slice;
        self
    }

    /// A context for tests and tools that run an action outside a workflow.
    pub fn standalone(node_id: &str) -> NodeContext {
        NodeContext {
            node_id: node_id.into(),
            cancel: CancelToken::new(),
            budget: MemoryBudget::unlimited(),
            pool: crate::pool::default_pool(),
            spill: SpillDir::system(),
            events: EventSender::none(),
            read_ahead: Arc::new(std::sync::atomic::AtomicUsize::new(4)),
            gate: None,
            state: None,
            journal: None,
            slice: Slice::WHOLE,
        }
    }
}

/// Produces features: a reader, a generator, a client of an API.
///
/// # Ports
///
/// A source has no input. Its outputs are the spec's `outputs` in order: index 0 is the
/// default port; a reader that rejects rows also declares `rejected` and sends them with
/// [`Emitter::reject`] or [`Emitter::emit_rejected`], never by a literal index.
///
/// # Contract
///
/// - [`run`](Source::run) is called once, on the node's own thread. It emits every feature
///   and returns; the node's outputs close when it returns.
/// - It propagates the `Err` of an emit with `?` (that is how a cancelled run or a failed
///   downstream node stops it), and checks [`NodeContext::check_cancelled`] in any long
///   stretch without emits.
/// - It holds no memory reservation when it returns.
///
/// # Example
///
/// ```
/// use sluice_runtime::{ActionError, Emitter, Feature, NodeContext, Source, Value};
/// use sluice_runtime::feature::Schema;
///
/// /// Emits the integers `0..n` as features with one attribute `i`.
/// struct Count(u64);
///
/// impl Source for Count {
///     fn run(&mut self, ctx: &NodeContext, out: &mut Emitter) -> Result<(), ActionError> {
///         let schema = Schema::new(["i"]); // one schema shared by every feature
///         for i in 0..self.0 {
///             if i % 4096 == 0 {
///                 ctx.check_cancelled()?;
///             }
///             out.emit(Feature::new(i, schema.clone(), vec![Value::Int(i as i64)]))?;
///         }
///         Ok(())
///     }
/// }
///
/// let mut out = Emitter::buffer(1);
/// Count(3).run(&NodeContext::standalone("count"), &mut out).unwrap();
/// let emitted = out.into_buffers().remove(0);
/// assert_eq!(emitted[2].get("i"), Some(&Value::Int(2)));
/// ```
pub trait Source: Send {
    /// Emits every feature, then returns.
    fn run(&mut self, ctx: &NodeContext, out: &mut Emitter) -> Result<(), ActionError>;
}

/// A stateless, per-feature transformation that may run on many threads at once.
///
/// # Ports
///
/// A transform has the spec's inputs (usually one, `default`) and outputs: index 0 is the
/// default port; features it cannot handle go to `rejected` through [`Emitter::reject`],
/// which attaches the reason.
///
/// # Contract
///
/// - [`apply`](Transform::apply) gets a chunk of features (in input order) and may be called
///   on several pool threads at once, so it keeps no state between calls (`&self`). The
///   executor concatenates the chunks' outputs in input order, per port.
/// - It emits each result in the order of its input; a feature it passes on unchanged is
///   moved, not copied, and a changed one is edited in place (`Feature::set`, copy on write).
/// - It holds no memory reservation.
///
/// # Example
///
/// ```
/// use sluice_runtime::{ActionError, Emitter, Feature, Transform, Value};
///
/// /// Doubles the integer attribute `n`; a feature without one is rejected.
/// struct Double;
///
/// impl Transform for Double {
///     fn apply(&self, features: Vec<Feature>, out: &mut Emitter) -> Result<(), ActionError> {
///         for mut f in features {
///             match f.get("n").and_then(Value::as_i64) {
///                 Some(n) => {
///                     f.set("n", Value::Int(n * 2));
///                     out.emit(f)?;
///                 }
///                 None => out.reject(f, "n is not an integer")?,
///             }
///         }
///         Ok(())
///     }
/// }
///
/// let mut out = Emitter::for_outputs(&["default", "rejected"]);
/// let input = vec![
///     Feature::from_pairs(0, [("n", Value::Int(21))]),
///     Feature::from_pairs(1, [("n", Value::from("x"))]),
/// ];
/// Double.apply(input, &mut out).unwrap();
/// let [passed, rejected] = <[_; 2]>::try_from(out.into_buffers()).unwrap();
/// assert_eq!(passed[0].get("n"), Some(&Value::Int(42)));
/// assert_eq!(
///     rejected[0].get("_rejection_reason").and_then(Value::as_str),
///     Some("n is not an integer")
/// );
/// ```
pub trait Transform: Send + Sync {
    /// Transforms a chunk of features, emitting results in order.
    fn apply(&self, features: Vec<Feature>, out: &mut Emitter) -> Result<(), ActionError>;
}

/// A stateful processor, run on its node's thread: sort, join, dedup, statistics, counters.
///
/// # Ports
///
/// `input: usize` in [`process`](Processor::process) is the index of the input port the batch
/// came in on, in the order of the spec's `inputs` (a join's `requestor` is 0, its
/// `supplier` 1). Outputs are the spec's `outputs` (or the built action's own list when the
/// spec marks them dynamic), index 0 first; rejected features go through
/// [`Emitter::reject`].
///
/// # Contract
///
/// - `process` is called for each batch, on the node's thread, in arrival order per input
///   (batches of different inputs interleave in any order).
/// - [`finish`](Processor::finish) is called exactly once, after every input closed. An
///   accumulating processor MUST move its data out there (drain its buffers, emit, free),
///   not copy it, and return its memory reservation to zero before it returns.
/// - An accumulator reserves memory from [`NodeContext::budget`] before it holds more; when
///   the budget refuses, it spills to [`NodeContext::spill`] (or fails with
///   [`ActionError::MemoryExhausted`] if it cannot spill).
/// - After an `Err`, no other method is called.
///
/// # Example
///
/// ```
/// use sluice_runtime::{ActionError, Batch, Emitter, Feature, NodeContext, Processor};
/// use sluice_runtime::memory::Reservation;
///
/// /// Holds every feature and emits them newest first.
/// #[derive(Default)]
/// struct Reverse {
///     held: Vec<Feature>,
///     reservation: Option<Reservation>,
/// }
///
/// impl Processor for Reverse {
///     fn process(
///         &mut self,
///         _input: usize,
///         batch: Batch,
///         ctx: &NodeContext,
///         _out: &mut Emitter,
///     ) -> Result<(), ActionError> {
///         let bytes: usize = batch.iter().map(Feature::mem_size).sum();
///         self.reservation
///             .get_or_insert_with(|| ctx.budget.register(&ctx.node_id))
///             .grow(bytes)?;
///         self.held.extend(batch);
///         Ok(())
///     }
///
///     fn finish(&mut self, _ctx: &NodeContext, out: &mut Emitter) -> Result<(), ActionError> {
///         while let Some(f) = self.held.pop() {
///             out.emit(f)?; // moved out, not copied
///         }
///         if let Some(r) = &mut self.reservation {
///             r.free();
///         }
///         Ok(())
///     }
/// }
///
/// let ctx = NodeContext::standalone("reverse");
/// let batch: Batch = (0..3).map(Feature::empty).collect();
/// let out = sluice_runtime::testing::drive(
///     &mut Reverse::default(), [(0, batch)], &ctx, &["default"],
/// ).unwrap();
/// assert_eq!(out[0].iter().map(Feature::id).collect::<Vec<_>>(), [2, 1, 0]);
/// ```
pub trait Processor: Send {
    /// Handles one batch from input port `input`.
    fn process(
        &mut self,
        input: usize,
        batch: Batch,
        ctx: &NodeContext,
        out: &mut Emitter,
    ) -> Result<(), ActionError>;

    /// Called once after every input closed: drain (move out) what was accumulated.
    fn finish(&mut self, _ctx: &NodeContext, _out: &mut Emitter) -> Result<(), ActionError> {
        Ok(())
    }
}

/// Consumes features and writes them somewhere.
///
/// # Ports
///
/// `input: usize` in [`write`](Sink::write) is the index of the input port, in the order of
/// the spec's `inputs` (usually one, `default`). A sink has no outputs.
///
/// # Contract
///
/// - `write` is called for each batch; [`finish`](Sink::finish) once, after every input
///   closed: it flushes everything to a *temporary* output (the store's writers make one
///   beside the target) and does not publish it.
/// - [`commit`](Sink::commit) is called once, only when every node of the run succeeded:
///   it moves the temporary output into place. [`abort`](Sink::abort) is called instead when
///   the run failed or was cancelled, and removes every temporary file, so a failed run
///   leaves no output and no debris.
/// - It holds no memory reservation after `finish`.
///
/// # Example
///
/// ```
/// use sluice_runtime::{ActionError, Batch, NodeContext, Sink};
///
/// /// Counts features, and publishes the count only on commit.
/// #[derive(Default)]
/// struct Tally {
///     pending: u64,
///     published: Option<u64>,
/// }
///
/// impl Sink for Tally {
///     fn write(&mut self, _input: usize, batch: Batch, _: &NodeContext) -> Result<(), ActionError> {
///         self.pending += batch.len() as u64;
///         Ok(())
///     }
///     fn finish(&mut self, _: &NodeContext) -> Result<(), ActionError> {
///         Ok(())
///     }
///     fn commit(&mut self) -> Result<(), ActionError> {
///         self.published = Some(self.pending);
///         Ok(())
///     }
///     fn abort(&mut self) {
///         self.pending = 0;
///     }
/// }
///
/// let ctx = NodeContext::standalone("tally");
/// let mut sink = Tally::default();
/// sink.write(0, (0..5).map(sluice_runtime::Feature::empty).collect(), &ctx).unwrap();
/// sink.finish(&ctx).unwrap();
/// assert_eq!(sink.published, None, "nothing is published before the run commits");
/// sink.commit().unwrap();
/// assert_eq!(sink.published, Some(5));
/// ```
pub trait Sink: Send {
    /// Writes one batch from input port `input`.
    fn write(&mut self, input: usize, batch: Batch, ctx: &NodeContext) -> Result<(), ActionError>;

    /// Flushes everything written to the temporary output (do not rename yet).
    fn finish(&mut self, ctx: &NodeContext) -> Result<(), ActionError>;

    /// Moves the temporary output into place. Called once, after every node of the run
    /// finished successfully.
    fn commit(&mut self) -> Result<(), ActionError> {
        Ok(())
    }

    /// Removes temporary output after a failure or cancellation. Must not fail.
    fn abort(&mut self) {}
}
