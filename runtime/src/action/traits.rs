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

    /// Records that this node spilled `rows` rows in `bytes` bytes to disk (an event for
    /// observers; the spill folder keeps the totals for the run report).
    pub fn spilled(&self, bytes: u64, rows: u64) {
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
        }
    }
}

/// Produces features. See the [module docs](crate::action::traits) for the lifecycle.
pub trait Source: Send {
    /// Emits every feature, then returns.
    fn run(&mut self, ctx: &NodeContext, out: &mut Emitter) -> Result<(), ActionError>;
}

/// A stateless, per-feature transformation that may run on many threads at once.
pub trait Transform: Send + Sync {
    /// Transforms a chunk of features, emitting results in order.
    fn apply(&self, features: Vec<Feature>, out: &mut Emitter) -> Result<(), ActionError>;
}

/// A stateful processor, run on its node's thread.
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
