//! Reading the files a `path` names, several at once, emitting in file order.
//!
//! The file readers (`csv_reader`, `json_reader`, `geojson_reader`, `parquet_reader`)
//! implement [`FileSource::read_file`] for one file and call [`read_files`], which lists the
//! location and drives the reads:
//!
//! ```text
//!              work queue (file order)          one bounded channel per file
//!  node thread ──(i, tx_i)──► worker 1 ── chunks ──► rx_0 ┐
//!   (emits in  ──(i, tx_i)──► worker 2 ── chunks ──► rx_1 ├─ node thread drains rx_0 to its
//!  file order)                 ...                   rx_2 ┘  end, then rx_1, then rx_2...
//! ```
//!
//! - At most `read_ahead` files are in flight (queued, being read, or holding chunks not yet
//!   emitted); the limit is read again before each file is started, so it shrinks when the
//!   runtime lowers [`NodeContext::read_ahead`] under memory pressure.
//! - Each file's channel holds at most [`CHUNKS_PER_FILE`] chunks of [`CHUNK`] features: a
//!   huge or slow file holds only its own channel, never the data of the others.
//! - The node thread emits the front file's chunks until that file is done, then moves to
//!   the next one, so the output (and the feature ids, numbered by the node thread) is the
//!   same as reading the files one after another. A file that fails fails the run when its
//!   turn comes, after every earlier file was emitted.
//! - Every wait (a worker's send, a worker's wait for work, the node thread's receive)
//!   selects on the run's cancel token too.
//!
//! # Why dedicated threads, not the shared pool
//!
//! A reader blocks while its file's channel is full, and it may stay blocked for a long time
//! (the node thread is emitting an earlier file, or downstream is slow). Blocking on the
//! shared rayon pool would take its threads from the parallel transforms: with a 2-thread
//! pool and a read-ahead of 4, two readers blocked on full channels leave no thread for a
//! transform downstream, which waits for the pool while the node thread waits for the
//! transform — a deadlock. So the reads run on `min(read_ahead, files)` threads that this
//! node starts for the duration of its run (scoped: none outlives [`read_files`]); they
//! parse as well as read, which is the CPU work the concurrency is for.
//!
//! One file, or a read-ahead of 1, is read on the node thread itself with no channel at all.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::io::{BufRead, BufReader, Read};
use std::panic::{AssertUnwindSafe, catch_unwind};

use crossbeam_channel::{Receiver, Sender, bounded, select};
use parking_lot::Mutex;
use sluice_runtime::store;
use sluice_runtime::{ActionError, CancelToken, Emitter, Feature, NodeContext};

/// Features per chunk sent from a worker to the node thread.
pub(crate) const CHUNK: usize = 1024;
/// Chunks one file's channel holds before its worker waits.
pub(crate) const CHUNKS_PER_FILE: usize = 4;

/// A reader of one file at a time; shared by reference between the worker threads.
pub(crate) trait FileSource: Sync {
    /// Reads `location`, emitting its features through `out` (whose ids are replaced).
    fn read_file(
        &self,
        location: &str,
        ctx: &NodeContext,
        out: &mut FileOut<'_>,
    ) -> Result<(), ActionError>;

    /// The file name endings this reader takes from a folder or a glob pattern (lower case,
    /// without the dot, e.g. `csv`, `csv.gz`); empty takes every file. A file named on its
    /// own is always read.
    fn extensions(&self) -> &[String] {
        &[]
    }
}

/// The `extensions` parameter of a file reader: the given endings (a leading dot dropped,
/// lower case), or the reader's defaults, each also with `.gz` when `gzip` is true.
pub(crate) fn extensions_param(
    given: Option<Vec<String>>,
    defaults: &[&str],
    gzip: bool,
) -> Vec<String> {
    match given {
        Some(list) => list
            .into_iter()
            .map(|e| e.trim_start_matches('.').to_ascii_lowercase())
            .collect(),
        None => defaults
            .iter()
            .map(|e| e.to_string())
            .chain(defaults.iter().filter(|_| gzip).map(|e| format!("{e}.gz")))
            .collect(),
    }
}

/// Whether `location`'s file name ends in one of `extensions` (case-insensitive).
fn has_extension(location: &str, extensions: &[String]) -> bool {
    let name = location
        .rsplit('/')
        .next()
        .unwrap_or(location)
        .to_ascii_lowercase();
    extensions.iter().any(|e| {
        name.len() > e.len() + 1
            && name.ends_with(e.as_str())
            && name.as_bytes()[name.len() - e.len() - 1] == b'.'
    })
}

/// Where a [`FileSource`] emits: straight to the node's emitter, or to its file's channel.
///
/// Feature ids are assigned here (in file order), so readers need not number features.
pub(crate) struct FileOut<'a> {
    target: Target<'a>,
}

enum Target<'a> {
    Direct {
        out: &'a mut Emitter,
        next_id: &'a mut u64,
    },
    Channel {
        tx: &'a Sender<Msg>,
        cancel: &'a CancelToken,
        buf: Vec<(usize, Feature)>,
    },
}

/// What travels on a file's channel.
enum Msg {
    Chunk(Vec<(usize, Feature)>),
    Done,
    Failed(ActionError),
}

impl FileOut<'_> {
    /// Emits to the default port.
    pub(crate) fn emit(&mut self, feature: Feature) -> Result<(), ActionError> {
        self.emit_to(0, feature)
    }

    /// Emits to output port `port`.
    pub(crate) fn emit_to(&mut self, port: usize, mut feature: Feature) -> Result<(), ActionError> {
        match &mut self.target {
            Target::Direct { out, next_id } => {
                feature.set_id(**next_id);
                **next_id += 1;
                out.emit_to(port, feature)
            }
            Target::Channel { buf, .. } => {
                buf.push((port, feature));
                if buf.len() >= CHUNK {
                    self.flush()
                } else {
                    Ok(())
                }
            }
        }
    }

    fn flush(&mut self) -> Result<(), ActionError> {
        let Target::Channel { tx, cancel, buf } = &mut self.target else {
            return Ok(());
        };
        if buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(buf, Vec::with_capacity(CHUNK));
        send(tx, cancel, Msg::Chunk(chunk))
    }
}

/// Sends on a file's channel, waiting while it is full. A closed channel means the node
/// thread stopped (it failed or was cancelled): the file is abandoned.
fn send(tx: &Sender<Msg>, cancel: &CancelToken, msg: Msg) -> Result<(), ActionError> {
    select! {
        send(tx, msg) -> res => res.map_err(|_| ActionError::Cancelled),
        recv(cancel.receiver()) -> _ => Err(ActionError::Cancelled),
    }
}

/// Lists `path` and reads every file with `source`, up to `read_ahead` (capped by the run's
/// [`NodeContext::read_ahead`]) at once, emitting in file order. See the [module docs](self).
///
/// A location that matches no file is an [`ActionError::Io`] (not found).
pub(crate) fn read_files<S: FileSource>(
    source: &S,
    path: &str,
    read_ahead: Option<usize>,
    ctx: &NodeContext,
    out: &mut Emitter,
) -> Result<(), ActionError> {
    let files = store::list(path)?;
    if files.is_empty() {
        return Err(ActionError::io(
            format!("listing {path}"),
            std::io::Error::new(std::io::ErrorKind::NotFound, "no file matches"),
        ));
    }
    let single = files.len() == 1 && files[0].location == path;
    let extensions = source.extensions();
    let (locations, skipped): (Vec<String>, Vec<String>) = files
        .into_iter()
        .map(|f| f.location)
        .partition(|l| single || extensions.is_empty() || has_extension(l, extensions));
    if !skipped.is_empty() {
        let shown: Vec<&str> = skipped.iter().take(5).map(String::as_str).collect();
        let more = if skipped.len() > 5 { ", ..." } else { "" };
        let message = format!(
            "skipped {} file(s) in {path} whose names do not end in .{} ({}{more}); set `extensions` to read them",
            skipped.len(),
            extensions.join(", ."),
            shown.join(", ")
        );
        if locations.is_empty() {
            return Err(ActionError::io(
                format!("listing {path}"),
                std::io::Error::new(std::io::ErrorKind::NotFound, message),
            ));
        }
        ctx.log(message);
    }
    let limit = || {
        read_ahead
            .unwrap_or(usize::MAX)
            .min(ctx.read_ahead())
            .max(1)
    };
    if locations.len() == 1 || limit() == 1 {
        let mut next_id = 0u64;
        for location in &locations {
            ctx.check_cancelled()?;
            let mut fo = FileOut {
                target: Target::Direct {
                    out: &mut *out,
                    next_id: &mut next_id,
                },
            };
            source.read_file(location, ctx, &mut fo)?;
        }
        return Ok(());
    }
    read_concurrently(source, &locations, &limit, ctx, out)
}

fn read_concurrently<S: FileSource>(
    source: &S,
    locations: &[String],
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
                .spawn_scoped(scope, move || worker(source, locations, &work_rx, ctx))
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
                    out.emit_to(port, f)?;
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

/// A map shared by the worker threads of one reader, so that files with the same columns
/// get the same `Arc<Schema>` (looked up once per file or per change of columns).
pub(crate) struct SharedCache<K, V> {
    map: Mutex<HashMap<K, V>>,
}

impl<K: Hash + Eq, V: Clone> SharedCache<K, V> {
    /// An empty cache.
    pub(crate) fn new() -> Self {
        SharedCache {
            map: Mutex::new(HashMap::new()),
        }
    }

    /// The value for `key`, made by `make` the first time.
    pub(crate) fn get_or_insert_with(&self, key: K, make: impl FnOnce() -> V) -> V {
        self.map.lock().entry(key).or_insert_with(make).clone()
    }
}

/// Opens a text file for buffered reading, decompressing it when the name ends in `.gz`.
pub(crate) fn open_buffered(location: &str) -> Result<Box<dyn BufRead + Send>, ActionError> {
    let raw = store::open_read(location)?;
    let input: Box<dyn Read + Send> = if location.ends_with(".gz") {
        Box::new(flate2::read::MultiGzDecoder::new(BufReader::with_capacity(
            256 * 1024,
            raw,
        )))
    } else {
        raw
    };
    Ok(Box::new(BufReader::with_capacity(256 * 1024, input)))
}

/// The first byte of a text file that is not white space, and how many line breaks come
/// before it (to be added to line numbers counted from where reading resumes).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Start {
    /// The first byte other than white space; `None` for an empty or blank file.
    pub byte: Option<u8>,
    /// Line breaks consumed before it.
    pub lines: u64,
}

/// Drops a UTF-8 byte order mark and finds the first byte that is not white space, without
/// consuming it (white space is consumed only when a whole buffer of it must be skipped).
pub(crate) fn first_byte(r: &mut dyn BufRead, location: &str) -> Result<Start, ActionError> {
    let io = |e| ActionError::io(format!("reading {location}"), e);
    if r.fill_buf().map_err(io)?.starts_with(b"\xef\xbb\xbf") {
        r.consume(3);
    }
    let mut lines = 0;
    loop {
        let buf = r.fill_buf().map_err(io)?;
        if buf.is_empty() {
            return Ok(Start { byte: None, lines });
        }
        if let Some(i) = buf.iter().position(|b| !b.is_ascii_whitespace()) {
            return Ok(Start {
                byte: Some(buf[i]),
                lines,
            });
        }
        lines += buf.iter().filter(|b| **b == b'\n').count() as u64;
        let n = buf.len();
        r.consume(n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_runtime::{Schema, Value};
    use std::io::Write;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A fake reader: each file holds a row count; rows become features `file`, `row`. A file
    /// whose content is `fail` fails; `slow` files emit many chunks.
    struct Counting {
        schema: Arc<Schema>,
        active: AtomicUsize,
        max_active: AtomicUsize,
    }

    impl FileSource for Counting {
        fn read_file(
            &self,
            location: &str,
            _ctx: &NodeContext,
            out: &mut FileOut<'_>,
        ) -> Result<(), ActionError> {
            let now = self.active.fetch_add(1, Ordering::SeqCst) + 1;
            self.max_active.fetch_max(now, Ordering::SeqCst);
            let mut text = String::new();
            store::open_read(location)
                .unwrap()
                .read_to_string(&mut text)
                .unwrap();
            let result = (|| {
                if text == "fail" {
                    return Err(ActionError::data(Some(location.to_string()), "bad file"));
                }
                let n: i64 = text.parse().unwrap();
                for row in 0..n {
                    out.emit(Feature::new(
                        99,
                        self.schema.clone(),
                        vec![Value::from(location), Value::Int(row)],
                    ))?;
                }
                Ok(())
            })();
            self.active.fetch_sub(1, Ordering::SeqCst);
            result
        }
    }

    fn put(location: &str, text: &str) {
        let mut w = store::AtomicWriter::create(location).unwrap();
        w.write_all(text.as_bytes()).unwrap();
        w.commit().unwrap();
    }

    fn counting() -> Counting {
        Counting {
            schema: Schema::new(["file", "row"]),
            active: AtomicUsize::new(0),
            max_active: AtomicUsize::new(0),
        }
    }

    fn run(dir: &str, read_ahead: Option<usize>) -> (Result<(), ActionError>, Vec<Feature>, usize) {
        let src = counting();
        let mut out = Emitter::buffer(1);
        let r = read_files(
            &src,
            dir,
            read_ahead,
            &NodeContext::standalone("t"),
            &mut out,
        );
        (
            r,
            out.into_buffers().remove(0),
            src.max_active.load(Ordering::SeqCst),
        )
    }

    #[test]
    fn concurrent_reads_emit_in_file_order_with_sequential_ids() {
        // Sizes chosen so later files are much smaller than earlier ones (they finish first).
        let sizes = [5000, 3, 2500, 0, 1, 4000, 7, 2];
        for (i, n) in sizes.iter().enumerate() {
            put(
                &format!("memory://multi_file/order/f{i}.txt"),
                &n.to_string(),
            );
        }
        let (seq_r, seq, seq_active) = run("memory://multi_file/order/*.txt", Some(1));
        seq_r.unwrap();
        assert_eq!(seq_active, 1);
        let (par_r, par, par_active) = run("memory://multi_file/order/*.txt", None);
        par_r.unwrap();
        assert!(par_active <= 4, "read-ahead of the standalone context");
        assert_eq!(seq.len(), sizes.iter().sum::<usize>());
        let key = |f: &Feature| (f.id(), f.values().to_vec());
        assert_eq!(
            seq.iter().map(key).collect::<Vec<_>>(),
            par.iter().map(key).collect::<Vec<_>>()
        );
        assert_eq!(
            par.iter().map(Feature::id).collect::<Vec<_>>(),
            (0..par.len() as u64).collect::<Vec<_>>()
        );
        assert!(Arc::ptr_eq(par[0].schema(), par[par.len() - 1].schema()));
    }

    #[test]
    fn a_failing_file_fails_after_the_earlier_files_were_emitted() {
        put("memory://multi_file/fail/a.txt", "3000");
        put("memory://multi_file/fail/b.txt", "fail");
        put("memory://multi_file/fail/c.txt", "10");
        for read_ahead in [Some(1), None] {
            let (r, got, _) = run("memory://multi_file/fail/*.txt", read_ahead);
            match r {
                Err(ActionError::Data { location, .. }) => {
                    assert_eq!(location.as_deref(), Some("memory://multi_file/fail/b.txt"))
                }
                other => panic!("unexpected {other:?}"),
            }
            assert_eq!(got.len(), 3000, "all of a.txt, nothing of c.txt");
        }
    }

    #[test]
    fn cancel_stops_the_workers() {
        for i in 0..6 {
            put(&format!("memory://multi_file/cancel/f{i}.txt"), "100000");
        }
        let src = counting();
        let ctx = NodeContext::standalone("t");
        ctx.cancel.cancel();
        let mut out = Emitter::buffer(1);
        let r = read_files(
            &src,
            "memory://multi_file/cancel/*.txt",
            None,
            &ctx,
            &mut out,
        );
        assert!(matches!(r, Err(ActionError::Cancelled)), "{r:?}");
    }

    #[test]
    fn no_match_is_not_found() {
        let (r, _, _) = run("memory://multi_file/none/*.txt", None);
        match r {
            Err(ActionError::Io { source, .. }) => {
                assert_eq!(source.kind(), std::io::ErrorKind::NotFound)
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn first_byte_skips_bom_and_peeks_past_space() {
        let mut r: &[u8] = b"\xef\xbb\xbf \n\t[1]";
        let start = first_byte(&mut r, "x").unwrap();
        assert_eq!(
            start,
            Start {
                byte: Some(b'['),
                lines: 0
            }
        );
        assert_eq!(
            r, b" \n\t[1]",
            "white space within the buffer is not consumed"
        );
        let mut small = BufReader::with_capacity(2, &b"\n\n\n {}"[..]);
        let start = first_byte(&mut small, "x").unwrap();
        assert_eq!(
            start,
            Start {
                byte: Some(b'{'),
                lines: 3
            }
        );
        let mut empty: &[u8] = b"  \n";
        assert_eq!(first_byte(&mut empty, "x").unwrap().byte, None);
    }
}
