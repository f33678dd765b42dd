//! The concurrent path of [`read_files`](super::read_files): reading threads, one bounded
//! channel per file in flight, and the node thread emitting the front file.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};

use crossbeam_channel::{Receiver, Sender, bounded, select};

use super::{CHUNK, CHUNKS_PER_FILE, FileOut, FileSource, Msg, Target, emit_at, send};
use crate::action::Slice;
use crate::{ActionError, Emitter, NodeContext};

/// Starts `min(limit, files)` scoped reading threads and emits their files in order; each
/// file is read for its `part`.
pub(super) fn read_concurrently<S: FileSource>(
    source: &S,
    locations: &[String],
    part: Slice,
    limit: &dyn Fn() -> usize,
    ctx: &NodeContext,
    out: &mut Emitter,
) -> Result<(), ActionError> {
    let workers = limit().min(locations.len());
    std::thread::scope(|scope| {
        // Unbounded in effect (one slot per file): the node thread never waits to queue work;
        // the read-ahead limit is what bounds the files in flight.
        let (work_tx, work_rx) = bounded::<(usize, Sender<Msg>)>(locations.len());
        for w in 0..workers {
            let work_rx = work_rx.clone();
            std::thread::Builder::new()
                .name(format!("{}-read-{w}", ctx.node_id))
                .spawn_scoped(scope, move || {
                    worker(source, locations, part, &work_rx, ctx)
                })
                .map_err(|e| ActionError::io("starting a reader thread", e))?;
        }
        drop(work_rx);
        // `drive` owns the receivers: when it returns (even with an error), they are dropped,
        // so a worker waiting to send wakes and abandons its file; dropping `work_tx` then
        // ends the workers' loops, and the scope joins them.
        let result = drive(locations, &work_tx, limit, ctx, out);
        drop(work_tx);
        result
    })
}

/// The node thread's side: queue files in order within the limit, emit the front file.
fn drive(
    locations: &[String],
    work: &Sender<(usize, Sender<Msg>)>,
    limit: &dyn Fn() -> usize,
    ctx: &NodeContext,
    out: &mut Emitter,
) -> Result<(), ActionError> {
    let mut in_flight: VecDeque<(usize, Receiver<Msg>)> = VecDeque::new();
    let mut next = 0;
    let mut next_id = 0u64;
    loop {
        while next < locations.len() && in_flight.len() < limit() {
            let (tx, rx) = bounded(CHUNKS_PER_FILE);
            work.try_send((next, tx)).map_err(|_| {
                // Workers leave when the run is cancelled: that is the cause to report.
                ctx.check_cancelled().err().unwrap_or_else(|| {
                    ActionError::Other("the reader threads stopped early".into())
                })
            })?;
            in_flight.push_back((next, rx));
            next += 1;
        }
        let Some((index, front)) = in_flight.front() else {
            return Ok(());
        };
        let msg = select! {
            recv(front) -> msg => msg,
            recv(ctx.cancel.receiver()) -> _ => return Err(ActionError::Cancelled),
        };
        match msg {
            Ok(Msg::Chunk(chunk)) => {
                for (port, mut f) in chunk {
                    f.set_id(next_id);
                    next_id += 1;
                    emit_at(out, port, f)?;
                }
            }
            Ok(Msg::Done) => {
                in_flight.pop_front();
            }
            Ok(Msg::Failed(e)) => return Err(e),
            Err(_) => {
                return Err(ActionError::Other(
                    format!(
                        "reading {} stopped before the end of the file",
                        locations[*index]
                    )
                    .into(),
                ));
            }
        }
    }
}

/// A worker thread: reads the files it is given, one at a time, until the queue closes.
fn worker<S: FileSource>(
    source: &S,
    locations: &[String],
    part: Slice,
    work: &Receiver<(usize, Sender<Msg>)>,
    ctx: &NodeContext,
) {
    loop {
        let (index, tx) = select! {
            recv(work) -> job => match job {
                Ok(job) => job,
                Err(_) => return,
            },
            recv(ctx.cancel.receiver()) -> _ => return,
        };
        let location = &locations[index];
        let mut fo = FileOut {
            target: Target::Channel {
                tx: &tx,
                cancel: &ctx.cancel,
                buf: Vec::with_capacity(CHUNK),
            },
            part,
        };
        let result = catch_unwind(AssertUnwindSafe(|| {
            source.read_file(location, ctx, &mut fo)?;
            fo.flush()
        }));
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
                    format!("reading {location} panicked: {what}").into(),
                ))
            }
        };
        // A closed channel (the node thread stopped) needs no answer.
        let _ = send(&tx, &ctx.cancel, msg);
    }
}
