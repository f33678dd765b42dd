//! Jobs run on scoped worker threads, their results handed to the node thread in job order.
//!
//! The same shape as the file readers' concurrent path (`crate::input`): a work queue in
//! job order, one bounded channel per job in flight, and the node thread draining the front
//! job's channel to its end before it moves to the next. So the results (and the features
//! made from them) come out as a one-by-one run would give them, whatever order the
//! requests finish in.
//!
//! - At most [`Ordered::lookahead`] jobs are in flight (queued, running, or holding results
//!   not yet taken), and each job's channel holds at most [`Ordered::buffer`] results, after
//!   which its worker waits. Results are meant to be small (a page's file, not its
//!   features), so what waits costs little memory.
//! - [`Ordered::workers`] threads run jobs (started for the duration of the call, none
//!   outlives it). A job that fails fails the run when its turn comes, after every earlier
//!   job's results were taken; a panic in a job is caught and reported as its error.
//! - Every wait (a worker's send, a worker's wait for work, the node thread's receive)
//!   selects on the run's cancel token too.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};

use crossbeam_channel::{Receiver, Sender, bounded, select};

use crate::cancel::CancelToken;
use crate::{ActionError, NodeContext};

/// How [`run_ordered`] runs its jobs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ordered {
    /// Worker threads (at least 1; no more than there are jobs are started).
    pub workers: usize,
    /// Jobs in flight at most (at least `workers`).
    pub lookahead: usize,
    /// Results one job's channel holds before its worker waits (at least 1).
    pub buffer: usize,
}

impl Ordered {
    /// `workers` threads, twice as many jobs in flight, `buffer` results per job.
    pub fn new(workers: usize, buffer: usize) -> Ordered {
        let workers = workers.max(1);
        Ordered {
            workers,
            lookahead: workers * 2,
            buffer: buffer.max(1),
        }
    }
}

/// What travels on a job's channel.
enum Msg<T> {
    Item(T),
    Done,
    Failed(ActionError),
}

/// Where a job sends its results, in order.
pub struct JobOut<'a, T> {
    tx: &'a Sender<Msg<T>>,
    cancel: &'a CancelToken,
}

impl<T> JobOut<'_, T> {
    /// Sends one result, waiting while the job's channel is full. A closed channel (the
    /// node thread stopped) or a cancelled run is [`ActionError::Cancelled`]: the job
    /// should stop.
    pub fn send(&mut self, item: T) -> Result<(), ActionError> {
        send(self.tx, self.cancel, Msg::Item(item))
    }
}

fn send<T>(tx: &Sender<Msg<T>>, cancel: &CancelToken, msg: Msg<T>) -> Result<(), ActionError> {
    select! {
        send(tx, msg) -> res => res.map_err(|_| ActionError::Cancelled),
        recv(cancel.receiver()) -> _ => Err(ActionError::Cancelled),
    }
}

/// The work of one job: `(index, job, out)`.
pub type Work<'a, J, T> =
    dyn Fn(usize, &J, &mut JobOut<'_, T>) -> Result<(), ActionError> + Sync + 'a;

/// Runs `jobs` with `work` on worker threads and calls `consume` on the node thread with
/// each result, in job order and, within a job, in the order it sent them. See the
/// [module docs](self).
pub fn run_ordered<J: Sync, T: Send>(
    ctx: &NodeContext,
    jobs: &[J],
    shape: Ordered,
    work: &Work<'_, J, T>,
    consume: &mut dyn FnMut(usize, T) -> Result<(), ActionError>,
) -> Result<(), ActionError> {
    if jobs.is_empty() {
        return Ok(());
    }
    let workers = shape.workers.max(1).min(jobs.len());
    let lookahead = shape.lookahead.max(workers);
    let buffer = shape.buffer.max(1);
    std::thread::scope(|scope| {
        let (work_tx, work_rx) = bounded::<(usize, Sender<Msg<T>>)>(jobs.len());
        for w in 0..workers {
            let work_rx = work_rx.clone();
            std::thread::Builder::new()
                .name(format!("{}-fetch-{w}", ctx.node_id))
                .spawn_scoped(scope, move || worker(jobs, work, &work_rx, ctx))
                .map_err(|e| ActionError::io("starting a fetching thread", e))?;
        }
        drop(work_rx);
        // `drive` owns the receivers: when it returns (even with an error) they are dropped,
        // so a worker waiting to send wakes and abandons its job; dropping `work_tx` ends
        // the workers' loops, and the scope joins them.
        let result = drive(jobs.len(), lookahead, buffer, &work_tx, ctx, consume);
        drop(work_tx);
        result
    })
}

/// The node thread's side: queue jobs in order within the lookahead, take the front job's
/// results.
fn drive<T>(
    count: usize,
    lookahead: usize,
    buffer: usize,
    work: &Sender<(usize, Sender<Msg<T>>)>,
    ctx: &NodeContext,
    consume: &mut dyn FnMut(usize, T) -> Result<(), ActionError>,
) -> Result<(), ActionError> {
    let mut in_flight: VecDeque<(usize, Receiver<Msg<T>>)> = VecDeque::new();
    let mut next = 0;
    loop {
        while next < count && in_flight.len() < lookahead {
            let (tx, rx) = bounded(buffer);
            work.try_send((next, tx)).map_err(|_| {
                ctx.check_cancelled().err().unwrap_or_else(|| {
                    ActionError::Other("the fetching threads stopped early".into())
                })
            })?;
            in_flight.push_back((next, rx));
            next += 1;
        }
        let Some((index, front)) = in_flight.front() else {
            return Ok(());
        };
        let index = *index;
        let msg = select! {
            recv(front) -> msg => msg,
            recv(ctx.cancel.receiver()) -> _ => return Err(ActionError::Cancelled),
        };
        match msg {
            Ok(Msg::Item(item)) => consume(index, item)?,
            Ok(Msg::Done) => {
                in_flight.pop_front();
            }
            Ok(Msg::Failed(e)) => return Err(e),
            Err(_) => {
                return Err(ctx.check_cancelled().err().unwrap_or_else(|| {
                    ActionError::Other(format!("job {index} stopped before its end").into())
                }));
            }
        }
    }
}

/// A worker thread: runs the jobs it is given, one at a time, until the queue closes.
fn worker<J: Sync, T: Send>(
    jobs: &[J],
    work: &Work<'_, J, T>,
    queue: &Receiver<(usize, Sender<Msg<T>>)>,
    ctx: &NodeContext,
) {
    loop {
        let (index, tx) = select! {
            recv(queue) -> job => match job {
                Ok(job) => job,
                Err(_) => return,
            },
            recv(ctx.cancel.receiver()) -> _ => return,
        };
        let mut out = JobOut {
            tx: &tx,
            cancel: &ctx.cancel,
        };
        let result = catch_unwind(AssertUnwindSafe(|| work(index, &jobs[index], &mut out)));
        let msg = match result {
            Ok(Ok(())) => Msg::Done,
            Ok(Err(e)) => Msg::Failed(e),
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".to_string());
                Msg::Failed(ActionError::Other(
                    format!("job {index} panicked: {what}").into(),
                ))
            }
        };
        // A closed channel (the node thread stopped) needs no answer.
        let _ = send(&tx, &ctx.cancel, msg);
    }
}
