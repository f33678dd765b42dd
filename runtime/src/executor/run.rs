//! Starting a run: channels, node threads, the monitor; joining them; committing sinks.
//!
//! # Termination
//!
//! Exact, with no sleep and no polling: a node finishes when all its inputs have
//! disconnected (every upstream node finished and dropped its senders) and its own work is
//! done; then it drops its senders, which disconnects the nodes downstream. Sources start
//! the cascade by returning. The run ends when every node thread has been joined.
//!
//! # Errors and cancellation
//!
//! The first node to fail records its error and cancels the run; every blocking wait in the
//! runtime selects on the cancel token, so all threads stop promptly. Sinks only write to
//! temporary names until the end: they are committed (renamed into place) after every node
//! succeeded, and aborted (temporary output removed) otherwise.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::join::{Failure, run_nodes, settle};
use super::options::RunOptions;
use super::progress::NodeProgress;
use super::report::{Measured, RunReport};
use super::setup::{ReadyNode, Shared, plan_memory, set_up_nodes};
use super::wiring::{EdgeTally, Wiring};
use crate::cancel::CancelToken;
use crate::dag::Plan;
use crate::error::RunError;
use crate::events::Event;
use crate::memory::Monitor;

/// A run in progress. Dropping the handle cancels the run and waits for it.
pub struct RunHandle {
    cancel: CancelToken,
    progress: Arc<Vec<NodeProgress>>,
    done: Option<JoinHandle<Result<RunReport, RunError>>>,
    started: Instant,
}

impl RunHandle {
    /// Cancels the run. Threads stop promptly; sinks leave no output.
    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    /// A cancel token for this run (e.g. for a Ctrl-C handler).
    pub fn cancel_token(&self) -> CancelToken {
        self.cancel.clone()
    }

    /// Live per-node counters.
    pub fn progress(&self) -> &[NodeProgress] {
        &self.progress
    }

    /// Time since the run started.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Whether the run has ended.
    pub fn is_finished(&self) -> bool {
        self.done.as_ref().is_none_or(|h| h.is_finished())
    }

    /// Waits for the run to end.
    pub fn wait(mut self) -> Result<RunReport, RunError> {
        match self.done.take() {
            Some(h) => h.join().unwrap_or_else(|_| {
                Err(RunError::Internal(
                    "the run's coordinator thread panicked".into(),
                ))
            }),
            None => Err(RunError::Internal("run already waited for".into())),
        }
    }
}

impl Drop for RunHandle {
    fn drop(&mut self) {
        if let Some(h) = self.done.take() {
            self.cancel.cancel();
            let _ = h.join();
        }
    }
}

/// Runs a plan to completion on the calling thread.
pub fn run(plan: Plan, options: RunOptions) -> Result<RunReport, RunError> {
    let (progress, launch) = prepare(plan, options)?;
    drop(progress);
    launch()
}

/// Starts a plan in the background and returns a handle to watch, cancel or wait for it.
pub fn start(plan: Plan, options: RunOptions) -> Result<RunHandle, RunError> {
    let cancel = options.cancel.clone();
    let (progress, launch) = prepare(plan, options)?;
    let done = std::thread::Builder::new()
        .name("sluice-run".into())
        .spawn(launch)
        .map_err(|e| RunError::Internal(format!("cannot start the run thread: {e}")))?;
    Ok(RunHandle {
        cancel,
        progress,
        done: Some(done),
        started: Instant::now(),
    })
}

type Launch = Box<dyn FnOnce() -> Result<RunReport, RunError> + Send>;

/// Sets the run up without starting a thread: the memory plan (which may refuse the run),
/// what the nodes share, the channels and every node. Gives the live counters and what
/// starts the run.
fn prepare(plan: Plan, opts: RunOptions) -> Result<(Arc<Vec<NodeProgress>>, Launch), RunError> {
    let memory = plan_memory(&plan, &opts)?;
    let shared = Shared::new(&memory, &opts);
    let Plan {
        name, nodes, edges, ..
    } = plan;
    let mut wiring = Wiring::new(&nodes, &edges, memory.capacity);
    let (progress, ready) = set_up_nodes(nodes, &mut wiring, &shared, &opts);
    let progress = Arc::new(progress);
    let setup = Prepared {
        workflow: name,
        opts,
        shared,
        nodes: ready,
        edges: wiring.tallies,
        progress: progress.clone(),
    };
    Ok((progress, Box::new(move || setup.launch())))
}

/// A run set up and not started yet.
struct Prepared {
    workflow: Option<String>,
    opts: RunOptions,
    shared: Shared,
    nodes: Vec<ReadyNode>,
    edges: Vec<EdgeTally>,
    progress: Arc<Vec<NodeProgress>>,
}

impl Prepared {
    /// Runs to the end: starts the monitor and the node threads, joins them, commits or
    /// aborts the sinks, and reports.
    fn launch(self) -> Result<RunReport, RunError> {
        let Prepared {
            workflow,
            opts,
            mut shared,
            nodes,
            edges,
            progress,
        } = self;
        let started = Instant::now();
        let events = opts.events.clone();
        events.send(Event::RunStarted { nodes: nodes.len() });
        let monitor = Monitor::start(
            opts.monitor_interval,
            shared.limit,
            shared.budget.clone(),
            shared.knobs.clone(),
            events.clone(),
        );
        let failure = Failure::default();
        let (ends, sinks) = run_nodes(nodes, &progress, &failure, &opts.cancel, &events);
        let mut result = settle(&failure, &opts.cancel, sinks);
        // The plan's reservations go back; what is still reserved after this was leaked.
        shared.planned.clear();
        let peak_rss_bytes = monitor.stop();
        let report = RunReport::assemble(Measured {
            workflow,
            ok: result.is_none(),
            elapsed: started.elapsed(),
            peak_rss_bytes,
            shared: &shared,
            nodes: ends,
            progress: &progress,
            edges,
        });
        events.send(Event::RunFinished {
            ok: report.ok,
            elapsed: started.elapsed(),
        });
        let leaked = shared.budget.reserved();
        if leaked != 0 && result.is_none() {
            result = Some(RunError::Internal(format!(
                "{leaked} bytes still reserved after the run"
            )));
        }
        match result {
            None => Ok(report),
            Some(e) => Err(e),
        }
    }
}
