//! The runs a live view watches: the workflow, how to run it, the run going on now (its
//! cancel token, its latest snapshot, its failures) and the messages sent to every open page.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use parking_lot::{Condvar, Mutex};
use serde::Serialize;
use sluice::runtime::Event;
use sluice::runtime::RunError;
use sluice::runtime::action::Registry;
use sluice::runtime::events::EventSender;
use sluice::runtime::executor::{self, CancelToken, Progress, RunHandle, RunOptions, RunReport};
use sluice::runtime::memory::GatePolicy;
use sluice::runtime::workflow::{self, VarSources};
use tokio::sync::broadcast;

use sluice::runtime::capture::{CaptureEdges, select_edges};

use super::layout::{self, Graph};

/// How each run of the workflow is made: what `sluice serve` and `run --ui` were given.
#[derive(Clone)]
pub struct RunSettings {
    /// The workflow file, read again for every run (so an edited workflow runs as edited).
    pub file: PathBuf,
    /// Variables.
    pub vars: VarSources,
    /// Features per batch.
    pub batch_size: usize,
    /// Pool threads (0: one per core).
    pub threads: usize,
    /// Memory limit.
    pub memory_limit: Option<u64>,
    /// Heavy-finish admission.
    pub gate: GatePolicy,
    /// Spill folder.
    pub spill_dir: Option<PathBuf>,
    /// `--capture`.
    pub capture: Option<String>,
    /// `--job-dir`: the first run's job folder; later runs get `DIR-run2`, `DIR-run3`, ...
    pub job_dir: Option<String>,
    /// Where each run's report is written, if anywhere.
    pub report: Option<PathBuf>,
}

/// Where a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// No run yet.
    Idle,
    /// The workflow did not validate; the diagnostics say why.
    Invalid,
    /// Going on.
    Running,
    /// Ended well.
    Succeeded,
    /// Ended with an error.
    Failed,
    /// Cancelled.
    Cancelled,
}

/// What a page needs to draw the run now: sent whole when a page connects (or reconnects),
/// and returned by `GET /api/progress`.
#[derive(Debug, Clone, Serialize)]
pub struct State {
    /// The run's number, from 1; a page that sees a new number fetches the graph again.
    pub run: u64,
    /// Where the run is.
    pub status: RunStatus,
    /// The run's error, when it failed.
    pub error: Option<String>,
    /// The error of each node that failed, by node id.
    pub failures: BTreeMap<String, String>,
    /// The latest snapshot (`None` before the first one).
    pub progress: Option<Progress>,
    /// The report of a run that ended (succeeded or failed).
    pub report: Option<RunReport>,
    /// The diagnostics of a workflow that did not validate.
    pub validation: Option<workflow::Validation>,
    /// The capture job folder of this run, if it captures.
    pub job: Option<String>,
    /// Events the run dropped because this server fell behind (progress samples only).
    pub dropped_events: u64,
    /// Whether the server ends with this run (`run --ui`): the page then stops listening.
    pub server_ends_with_run: bool,
}

/// Why a run could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A run is going on.
    #[error("a run is going on; cancel it first")]
    Busy,
    /// The workflow did not validate (its diagnostics are in the state).
    #[error("the workflow is invalid")]
    Invalid(#[from] sluice::runtime::ValidationError),
    /// The capture options or the run could not start.
    #[error("{0}")]
    Other(String),
}

/// The workflow, its runs, and the pages that watch them.
pub struct Session {
    settings: RunSettings,
    registry: Registry,
    state: Mutex<Inner>,
    /// Notified when a run ends.
    ended: Condvar,
    /// Messages to every open event stream: (event name, JSON). Slow pages lag and are
    /// sent the whole state again; the run never waits for them.
    messages: broadcast::Sender<Message>,
}

/// One server-sent event: its name and its JSON data.
pub type Message = (&'static str, Arc<str>);

struct Inner {
    state: State,
    graph: Option<Arc<Graph>>,
    cancel: Option<CancelToken>,
    events: Option<EventSender>,
}

impl Session {
    /// A session with no run yet.
    pub fn new(settings: RunSettings, registry: Registry, ends_with_run: bool) -> Arc<Session> {
        let (messages, _) = broadcast::channel(256);
        Arc::new(Session {
            settings,
            registry,
            state: Mutex::new(Inner {
                state: State {
                    run: 0,
                    status: RunStatus::Idle,
                    error: None,
                    failures: BTreeMap::new(),
                    progress: None,
                    report: None,
                    validation: None,
                    job: None,
                    dropped_events: 0,
                    server_ends_with_run: ends_with_run,
                },
                graph: None,
                cancel: None,
                events: None,
            }),
            ended: Condvar::new(),
            messages,
        })
    }

    /// The state now.
    pub fn state(&self) -> State {
        self.state.lock().state.clone()
    }

    /// The graph of the current run's workflow (`None` before a run or when invalid).
    pub fn graph(&self) -> Option<Arc<Graph>> {
        self.state.lock().graph.clone()
    }

    /// A receiver of every message from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Message> {
        self.messages.subscribe()
    }

    /// Cancels the run going on; false when none is.
    pub fn cancel(&self) -> bool {
        let inner = self.state.lock();
        match (&inner.cancel, inner.state.status) {
            (Some(c), RunStatus::Running) => {
                c.cancel();
                true
            }
            _ => false,
        }
    }

    /// Validates the workflow and starts a run of it, giving back the run's number and its
    /// handle; the caller waits for it and calls [`Session::finished`]. `cancel` is the
    /// run's token (the command line's, which signals cancel, for the first run).
    pub fn start(self: &Arc<Self>, cancel: CancelToken) -> Result<(u64, RunHandle), StartError> {
        let mut inner = self.state.lock();
        if inner.state.status == RunStatus::Running {
            return Err(StartError::Busy);
        }
        let run = inner.state.run + 1;
        let s = &self.settings;
        let loaded = workflow::load_file(&s.file, &self.registry, &s.vars);
        inner.state = State {
            run,
            status: RunStatus::Invalid,
            error: None,
            failures: BTreeMap::new(),
            progress: None,
            report: None,
            validation: Some(workflow::Validation::of(
                &s.file.display().to_string(),
                &loaded,
            )),
            job: None,
            dropped_events: 0,
            server_ends_with_run: inner.state.server_ends_with_run,
        };
        inner.graph = None;
        let plan = match loaded {
            Ok(plan) => plan,
            Err(e) => {
                self.send_state(&inner.state, "run_started");
                return Err(StartError::Invalid(e));
            }
        };
        let job_dir = match (&s.job_dir, run) {
            (Some(d), 1) => Some(d.clone()),
            (Some(d), n) => Some(format!("{d}-run{n}")),
            (None, _) => None,
        };
        let failed = |inner: &mut Inner, message: String| {
            inner.state.status = RunStatus::Failed;
            inner.state.error = Some(message.clone());
            self.send_state(&inner.state, "run_started");
            StartError::Other(message)
        };
        let prepared =
            match crate::capture::prepare(plan, s.capture.as_deref(), job_dir.as_deref(), None) {
                Ok(p) => p,
                Err(message) => return Err(failed(&mut inner, message)),
            };
        let captured = match &prepared.options {
            Some(c) => match select_edges(&prepared.plan, &c.edges) {
                Ok(edges) => edges,
                Err(e) => return Err(failed(&mut inner, format!("--capture: {e}"))),
            },
            None => Vec::new(),
        };
        inner.graph = Some(Arc::new(layout::of(&prepared.plan, &captured)));
        inner.state.job = prepared.options.as_ref().map(|c| c.job.clone());
        let me = Arc::downgrade(self);
        let events = EventSender::callback(move |e| {
            if let Some(me) = me.upgrade() {
                me.on_event(run, e);
            }
        });
        let events = match events {
            Ok(e) => e,
            Err(e) => {
                return Err(failed(
                    &mut inner,
                    format!("starting the event thread: {e}"),
                ));
            }
        };
        let options = RunOptions {
            batch_size: s.batch_size,
            threads: s.threads,
            memory_limit: s.memory_limit,
            gate: s.gate,
            spill_dir: s.spill_dir.clone(),
            events: events.clone(),
            cancel: cancel.clone(),
            capture: prepared.options,
            ..RunOptions::default()
        };
        let handle = match executor::start(prepared.plan, options) {
            Ok(h) => h,
            Err(e) => return Err(failed(&mut inner, e.to_string())),
        };
        inner.state.status = RunStatus::Running;
        inner.state.progress = Some(handle.progress());
        inner.cancel = Some(cancel);
        inner.events = Some(events);
        self.send_state(&inner.state, "run_started");
        Ok((run, handle))
    }

    /// Reads and validates the workflow, to show its graph (or its diagnostics) before any
    /// run. Does nothing while a run goes on.
    pub fn show(&self) {
        let mut inner = self.state.lock();
        if inner.state.status == RunStatus::Running {
            return;
        }
        let s = &self.settings;
        let loaded = workflow::load_file(&s.file, &self.registry, &s.vars);
        inner.state.validation = Some(workflow::Validation::of(
            &s.file.display().to_string(),
            &loaded,
        ));
        match loaded {
            Ok(plan) => {
                let which = match &s.capture {
                    Some(list) => CaptureEdges::parse(list),
                    None => CaptureEdges::Marked,
                };
                let captured = select_edges(&plan, &which).unwrap_or_default();
                inner.graph = Some(Arc::new(layout::of(&plan, &captured)));
            }
            Err(_) => {
                inner.graph = None;
                inner.state.status = RunStatus::Invalid;
            }
        }
        self.send_state(&inner.state, "snapshot");
    }

    /// Starts a run on a thread of its own (`POST /api/run`).
    pub fn spawn_run(self: &Arc<Self>) -> Result<u64, StartError> {
        let (run, handle) = self.start(CancelToken::new())?;
        let me = self.clone();
        std::thread::Builder::new()
            .name("sluice-serve-run".into())
            .spawn(move || {
                let result = handle.wait();
                me.finished(run, &result);
            })
            .map_err(|e| StartError::Other(format!("starting the run's thread: {e}")))?;
        Ok(run)
    }

    /// Records how run `run` ended, writes its report where asked, and tells the pages.
    pub fn finished(&self, run: u64, result: &Result<RunReport, RunError>) {
        let mut inner = self.state.lock();
        if inner.state.run != run {
            return;
        }
        inner.state.dropped_events = inner.events.take().map_or(0, |e| e.dropped());
        inner.cancel = None;
        match result {
            Ok(report) => {
                inner.state.status = RunStatus::Succeeded;
                inner.state.report = Some(report.clone());
            }
            Err(RunError::Cancelled) => inner.state.status = RunStatus::Cancelled,
            Err(e) => {
                inner.state.status = RunStatus::Failed;
                inner.state.error = Some(e.to_string());
            }
        }
        if let (Ok(report), Some(path)) = (result, &self.settings.report)
            && let Err(e) = write_report(path, report)
        {
            inner.state.error = Some(format!("writing the report to {}: {e}", path.display()));
        }
        self.send_state(&inner.state, "run_finished");
        self.ended.notify_all();
    }

    /// Waits until no run is going on.
    pub fn wait_idle(&self) {
        let mut inner = self.state.lock();
        while inner.state.status == RunStatus::Running {
            self.ended.wait(&mut inner);
        }
    }

    fn on_event(&self, run: u64, event: Event) {
        let mut inner = self.state.lock();
        if inner.state.run != run {
            return;
        }
        match event {
            Event::Progress(p) => {
                self.send("progress", &p);
                inner.state.progress = Some(p);
            }
            Event::NodeFailed { node, error } => {
                self.send(
                    "node_failed",
                    &serde_json::json!({"node": node, "error": error}),
                );
                inner.state.failures.insert(node, error);
            }
            Event::Log { node, message } => {
                self.send(
                    "log",
                    &serde_json::json!({"node": node, "message": message}),
                );
            }
            Event::MemoryPressureChanged { level, rss, limit } => {
                self.send(
                    "log",
                    &serde_json::json!({
                        "node": "",
                        "message": format!("memory {level}: {} MiB of {} MiB", rss >> 20, limit >> 20)
                    }),
                );
            }
            _ => {}
        }
    }

    fn send_state(&self, state: &State, name: &'static str) {
        self.send(name, state);
    }

    fn send(&self, name: &'static str, value: &impl Serialize) {
        if let Ok(json) = serde_json::to_string(value) {
            // No page listening is not an error.
            let _ = self.messages.send((name, json.into()));
        }
    }
}

/// Writes a run report through a temporary file, so a reader never sees half of one.
fn write_report(path: &std::path::Path, report: &RunReport) -> std::io::Result<()> {
    let json = serde_json::to_string_pretty(report).map_err(std::io::Error::other)?;
    let tmp = path.with_extension("json.partial");
    std::fs::write(&tmp, json)?;
    std::fs::rename(&tmp, path)
}
