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

use super::fuse::Fusion;
use super::join::{Failure, run_nodes, settle};
use super::options::RunOptions;
use super::progress::{EdgeProgress, Live, NodeProgress, Progress};
use super::report::{Measured, RunReport};
use super::setup::{ReadyNode, Shared, plan_memory, set_up_nodes};
use super::wiring::{Capturing, EdgeTally, Wiring};
use crate::cancel::CancelToken;
use crate::capture::{self, JobState};
use crate::dag::Plan;
use crate::error::RunError;
use crate::events::Event;
use crate::memory::Monitor;

/// A run in progress. Dropping the handle cancels the run and waits for it.
pub struct RunHandle {
    cancel: CancelToken,
    live: Arc<Live>,
    done: Option<JoinHandle<Result<RunReport, RunError>>>,
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

    /// A snapshot of the run now: each node's state and counts, each edge's count, memory
    /// and elapsed time. Cheap (a few atomic reads per node and one RSS sample): a UI may
    /// call it at any rate.
    pub fn progress(&self) -> Progress {
        self.live.snapshot()
    }

    /// The live per-node counters the snapshot reads.
    pub fn counters(&self) -> &[NodeProgress] {
        &self.live.nodes
    }

    /// Time since the run started.
    pub fn elapsed(&self) -> Duration {
        self.live.started.elapsed()
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
    let (live, launch) = prepare(plan, options)?;
    drop(live);
    launch()
}

/// Starts a plan in the background and returns a handle to watch, cancel or wait for it.
pub fn start(plan: Plan, options: RunOptions) -> Result<RunHandle, RunError> {
    let cancel = options.cancel.clone();
    let (live, launch) = prepare(plan, options)?;
    let done = std::thread::Builder::new()
        .name("sluice-run".into())
        .spawn(launch)
        .map_err(|e| RunError::Internal(format!("cannot start the run thread: {e}")))?;
    Ok(RunHandle {
        cancel,
        live,
        done: Some(done),
    })
}

type Launch = Box<dyn FnOnce() -> Result<RunReport, RunError> + Send>;

/// Sets the run up without starting a thread: the memory plan (which may refuse the run),
/// what the nodes share, the channels and every node. Gives the live counters and what
/// starts the run.
fn prepare(plan: Plan, opts: RunOptions) -> Result<(Arc<Live>, Launch), RunError> {
    let captured = match &opts.capture {
        Some(c) => capture::select_edges(&plan, &c.edges)?,
        None => Vec::new(),
    };
    let memory = plan_memory(&plan, &opts, &captured)?;
    let mut taps = std::collections::HashMap::new();
    let capturing = match &opts.capture {
        Some(c) => {
            let job = Arc::new(capture::JobWriter::create(&c.job, &plan, &captured)?);
            let mut writers = Vec::with_capacity(captured.len());
            for (entry, &i) in captured.iter().enumerate() {
                let (tap, writer) = capture::tap(entry, plan.edge_name(i), c.file_rows);
                taps.insert(i, tap);
                writers.push(writer);
            }
            Some(Capturing { job, writers })
        }
        None => None,
    };
    let shared = Shared::new(&memory, &opts);
    let edge_names: Vec<String> = (0..plan.edges.len()).map(|i| plan.edge_name(i)).collect();
    let Plan {
        name, nodes, edges, ..
    } = plan;
    let fusion = Fusion::plan(&nodes, &edges, opts.fuse_transforms);
    let mut wiring = Wiring::new(&nodes, &edges, memory.capacity, taps, &fusion.local);
    let (progress, ready) = set_up_nodes(nodes, &mut wiring, &shared, &opts);
    let live = Arc::new(Live {
        nodes: progress,
        edges: edges
            .iter()
            .zip(&wiring.tallies)
            .zip(edge_names)
            .map(|((e, tally), name)| EdgeProgress {
                name,
                from: e.from,
                to: e.to,
                features: tally.features.clone(),
            })
            .collect(),
        budget: shared.budget.clone(),
        limit: shared.limit,
        started: Instant::now(),
    });
    let setup = Prepared {
        workflow: name,
        opts,
        shared,
        nodes: ready,
        groups: fusion.groups,
        edges: wiring.tallies,
        live: live.clone(),
        capturing,
    };
    Ok((live, Box::new(move || setup.launch())))
}

/// Starts the capture writers; the job and their threads, to be joined after the nodes.
/// A writer that fails records its error in `failure` and cancels the run.
fn start_capture(
    c: Capturing,
    failure: &Failure,
    cancel: &CancelToken,
) -> Result<(Arc<capture::JobWriter>, Vec<JoinHandle<bool>>), RunError> {
    let mut threads = Vec::with_capacity(c.writers.len());
    for w in c.writers {
        let failure = failure.clone();
        let name = w.name.clone();
        let fail = move |e: RunError| {
            let mut f = failure.lock();
            if f.is_none() {
                *f = Some(e);
            }
        };
        let t = w.spawn(c.job.clone(), cancel.clone(), fail).map_err(|e| {
            cancel.cancel();
            RunError::Internal(format!("cannot start the capture of edge \"{name}\": {e}"))
        })?;
        threads.push(t);
    }
    Ok((c.job, threads))
}

/// A run set up and not started yet.
struct Prepared {
    workflow: Option<String>,
    opts: RunOptions,
    shared: Shared,
    nodes: Vec<ReadyNode>,
    /// The nodes each thread runs (see [`Fusion`]).
    groups: Vec<Vec<usize>>,
    edges: Vec<EdgeTally>,
    live: Arc<Live>,
    capturing: Option<Capturing>,
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
            groups,
            edges,
            live,
            capturing,
        } = self;
        let started = Instant::now();
        let events = opts.events.clone();
        events.send(Event::RunStarted { nodes: nodes.len() });
        let ticker = {
            let (live, events) = (live.clone(), events.clone());
            Box::new(move || events.send(Event::Progress(live.snapshot())))
        };
        let monitor = Monitor::start(
            opts.monitor_interval,
            shared.limit,
            shared.budget.clone(),
            shared.knobs.clone(),
            events.clone(),
            ticker,
        );
        let failure = Failure::default();
        let (job, writers) = match capturing
            .map(|c| start_capture(c, &failure, &opts.cancel))
            .transpose()
        {
            Ok(Some((job, writers))) => (Some(job), writers),
            Ok(None) => (None, Vec::new()),
            Err(e) => {
                *failure.lock() = Some(e);
                (None, Vec::new())
            }
        };
        let (ends, sinks) = if failure.lock().is_none() {
            run_nodes(nodes, &groups, &live.nodes, &failure, &opts.cancel, &events)
        } else {
            (Vec::new(), Vec::new())
        };
        // The nodes have ended, so every tap is closed and the writers end too.
        for w in writers {
            let _ = w.join();
        }
        let mut result = settle(&failure, &opts.cancel, sinks);
        if let Some(job) = job {
            let state = match &result {
                None => JobState::Finished,
                Some(RunError::Cancelled) => JobState::Cancelled,
                Some(_) => JobState::Failed,
            };
            if let Err(e) = job.end(state)
                && result.is_none()
            {
                result = Some(RunError::Job(capture::CaptureError::File(e)));
            }
        }
        // The plan's reservations go back; what is still reserved after this was leaked.
        shared.planned.clear();
        let (peak_rss_bytes, memory) = monitor.stop_with_trace();
        let report = RunReport::assemble(Measured {
            workflow,
            started,
            memory,
            ok: result.is_none(),
            elapsed: started.elapsed(),
            peak_rss_bytes,
            shared: &shared,
            nodes: ends,
            progress: &live.nodes,
            edges,
        });
        // The last snapshot, with the final counts, so a UI ends on what the report says.
        events.send(Event::Progress(live.snapshot()));
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
