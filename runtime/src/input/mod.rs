//! Reading many files at once: the way a source reads the files its `path` names.
//!
//! A file reader implements [`FileSource::read_file`] for one file; [`Files::read`] lists
//! the location (a file, a folder or a glob, through [`crate::store::list`]), keeps the
//! files whose names end in one of [`Files::extensions`] and drives the reads. A
//! [`FileReader`] is the [`Source`] made of the two:
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
//!   turn comes, after every earlier file was emitted. A panic while reading a file is
//!   caught and reported as that file's error.
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
//! transform — a deadlock. So the reads run on `min(read_ahead, files)` threads that
//! [`Files::read`] starts for the duration of the call (scoped: none outlives it); they
//! parse as well as read, which is the CPU work the concurrency is for. Actions start no
//! threads of their own.
//!
//! One file, or a read-ahead of 1, is read on the node thread itself with no channel at all.
//!
//! # Slices: one task of a partitioned run
//!
//! A run that is one task of a partitioned stage reads only its [`Slice`] of the input
//! ([`NodeContext::slice`]); the slices of one input, read one after the other, give the
//! whole read's features in the whole read's order. When the location lists two files or
//! more, slice `i` of `n` reads the files [`Slice::index_range`] gives over the listing
//! (contiguous, in listing order), each of them whole. When it lists one file, a
//! [`FileSource`] that can split a file ([`FileSource::splits_files`]) reads its part of it;
//! any other reads it whole in the first slice and not at all in the others. Either way the
//! reader learns the part of the file it reads from [`FileOut::part`] ([`Slice::WHOLE`] when
//! the files are split by index), never from the context. A slice may get no file at all
//! (more slices than files): it reads nothing, and that is no error. Listing errors (no file
//! matches) are the same in every slice.
//!
//! # Example
//!
//! A source of an embedder's own that emits one feature per line of every file of a glob:
//!
//! ```
//! use std::io::Read;
//! use sluice_runtime::input::{FileOut, FileReader, FileSource, Files};
//! use sluice_runtime::{ActionError, Emitter, Feature, NodeContext, Source, Value};
//!
//! struct Lines;
//!
//! impl FileSource for Lines {
//!     fn read_file(
//!         &self,
//!         location: &str,
//!         _ctx: &NodeContext,
//!         out: &mut FileOut<'_>,
//!     ) -> Result<(), ActionError> {
//!         let mut text = String::new();
//!         sluice_runtime::store::open_read(location)?
//!             .read_to_string(&mut text)
//!             .map_err(|e| ActionError::io(format!("reading {location}"), e))?;
//!         for line in text.lines() {
//!             // The id is replaced: features are numbered in file order.
//!             out.emit(Feature::from_pairs(0, [("line", Value::from(line))]))?;
//!         }
//!         Ok(())
//!     }
//! }
//!
//! # let mut w = sluice_runtime::store::AtomicWriter::create("memory://input-doc/a.txt").unwrap();
//! # std::io::Write::write_all(&mut w, b"one\ntwo\n").unwrap();
//! # w.commit().unwrap();
//! // Every `.txt` file of the glob, up to 4 at once; this is the source a
//! // `NodeImpl::Source` of a built action would box.
//! let files = Files::new("memory://input-doc/*.txt")
//!     .read_ahead(Some(4))
//!     .extensions(["txt"]);
//! let mut source = FileReader::new(files, Lines);
//! let ctx = NodeContext::standalone("lines");
//! let mut out = Emitter::buffer(1);
//! source.run(&ctx, &mut out)?;
//! assert_eq!(out.into_buffers()[0].len(), 2);
//! # Ok::<(), ActionError>(())
//! ```

mod cache;
mod concurrent;
#[cfg(test)]
mod tests;

pub use cache::SharedCache;

use crossbeam_channel::{Sender, select};

use crate::action::Slice;
use crate::executor::CancelToken;
use crate::store;
use crate::{ActionError, Emitter, Feature, NodeContext, Source};

/// Features per chunk sent from a reading thread to the node thread.
pub const CHUNK: usize = 1024;
/// Chunks one file's channel holds before its reading thread waits.
pub const CHUNKS_PER_FILE: usize = 4;

/// A reader of one file at a time; shared by reference between the reading threads.
pub trait FileSource: Sync {
    /// Reads `location`, emitting its features through `out` (whose ids are replaced).
    ///
    /// An error fails the run once every earlier file was emitted; features this file
    /// emitted before the error may or may not have been sent on.
    ///
    /// In a partitioned run, [`FileOut::part`] says which part of this file to read; it is
    /// [`Slice::WHOLE`] unless [`FileSource::splits_files`] is true.
    fn read_file(
        &self,
        location: &str,
        ctx: &NodeContext,
        out: &mut FileOut<'_>,
    ) -> Result<(), ActionError>;

    /// Whether this reader can read a part of one file ([`FileOut::part`]). When it can, a
    /// partitioned run that lists one file gives each task its part of that file, and the
    /// reader MUST read exactly that part: reading the parts `0..n` one after the other gives
    /// the whole file's features, in order, with the same rejections at the same locations.
    /// When it cannot (the default), the first task reads the file whole and the others read
    /// nothing.
    fn splits_files(&self) -> bool {
        false
    }
}

/// The files a source reads: a path, how many are read at once, and which names a folder
/// or a glob contributes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Files {
    /// A file, a folder (every file in it) or a glob pattern, as [`crate::store::list`]
    /// takes it.
    pub path: String,
    /// The most files read at once; `None`: the run's read-ahead. Either way capped by
    /// [`NodeContext::read_ahead`], read again before each file starts.
    pub read_ahead: Option<usize>,
    /// The file name endings taken from a folder or a glob (lower case, without the dot,
    /// e.g. `csv`, `csv.gz`); empty takes every file. A file named on its own is always read.
    pub extensions: Vec<String>,
}

impl Files {
    /// Every file `path` names, at the run's read-ahead.
    pub fn new(path: impl Into<String>) -> Files {
        Files {
            path: path.into(),
            read_ahead: None,
            extensions: Vec::new(),
        }
    }

    /// Sets the most files read at once (`None`: the run's read-ahead).
    pub fn read_ahead(mut self, read_ahead: Option<usize>) -> Files {
        self.read_ahead = read_ahead;
        self
    }

    /// Sets the file name endings taken from a folder or a glob.
    pub fn extensions<I>(mut self, extensions: I) -> Files
    where
        I: IntoIterator,
        I::Item: Into<String>,
    {
        self.extensions = extensions.into_iter().map(Into::into).collect();
        self
    }

    /// The files a run would read now, in order (empty when none matches or the path
    /// cannot be listed). Validation reads their heads to know their schemas.
    pub fn locations(&self) -> Vec<String> {
        match store::list(&self.path).and_then(|f| open_archives(f, &self.extensions)) {
            Ok(files) => by_extension(files, &self.path, &self.extensions).0,
            Err(_) => Vec::new(),
        }
    }

    /// Lists the files and reads every one with `source`, several at once, emitting in file
    /// order. See the [module docs](self).
    ///
    /// A path that matches no file, or only files whose names are not among the
    /// `extensions`, is an [`ActionError::Io`] (not found). Files skipped for their names
    /// are logged.
    pub fn read<S: FileSource>(
        &self,
        source: &S,
        ctx: &NodeContext,
        out: &mut Emitter,
    ) -> Result<(), ActionError> {
        read_files(source, self, ctx, out)
    }
}

/// The [`Source`] that reads [`Files`] with a [`FileSource`].
pub struct FileReader<S> {
    files: Files,
    source: S,
}

impl<S: FileSource> FileReader<S> {
    /// Reads `files` with `source`.
    pub fn new(files: Files, source: S) -> FileReader<S> {
        FileReader { files, source }
    }

    /// The files read.
    pub fn files(&self) -> &Files {
        &self.files
    }
}

impl<S: FileSource + Send> Source for FileReader<S> {
    fn run(&mut self, ctx: &NodeContext, out: &mut Emitter) -> Result<(), ActionError> {
        self.files.read(&self.source, ctx, out)
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
/// Feature ids are assigned by the node thread (in file order), so readers need not number
/// features.
pub struct FileOut<'a> {
    target: Target<'a>,
    /// The part of this file to read.
    part: Slice,
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

/// The port index that stands for "the `rejected` port" between a reading thread and the
/// node thread, which resolves it by name ([`Emitter::emit_rejected`]).
const REJECTED: usize = usize::MAX;

/// Emits to a port index, or to the `rejected` port for [`REJECTED`].
fn emit_at(out: &mut Emitter, port: usize, feature: Feature) -> Result<(), ActionError> {
    if port == REJECTED {
        out.emit_rejected(feature)
    } else {
        out.emit_to(port, feature)
    }
}

/// What travels on a file's channel.
enum Msg {
    Chunk(Vec<(usize, Feature)>),
    Done,
    Failed(ActionError),
}

impl FileOut<'_> {
    /// The part of this file to read: [`Slice::WHOLE`] unless the run is one task of a
    /// partitioned stage, the location lists this one file, and the reader
    /// [splits files](FileSource::splits_files). See the [module docs](self).
    pub fn part(&self) -> Slice {
        self.part
    }

    /// Emits to the default port.
    pub fn emit(&mut self, feature: Feature) -> Result<(), ActionError> {
        self.emit_to(0, feature)
    }

    /// Sends a would-be feature that already carries its `_rejection_reason` to the
    /// reader's `rejected` port (see [`Emitter::emit_rejected`]).
    pub fn emit_rejected(&mut self, feature: Feature) -> Result<(), ActionError> {
        self.emit_to(REJECTED, feature)
    }

    /// Emits to output port `port`.
    pub fn emit_to(&mut self, port: usize, mut feature: Feature) -> Result<(), ActionError> {
        match &mut self.target {
            Target::Direct { out, next_id } => {
                feature.set_id(**next_id);
                **next_id += 1;
                emit_at(out, port, feature)
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

/// Zip archives among `files` opened as folders, for a reader that does not read `.zip`
/// itself: `data/parcels.zip` gives its members (`data/parcels.zip!/parcels.shp`, ...),
/// which [`by_extension`] then filters like files in a folder.
fn open_archives(
    files: Vec<store::FileEntry>,
    extensions: &[String],
) -> Result<Vec<store::FileEntry>, store::StorageError> {
    let opens = |l: &str| {
        !extensions.is_empty()
            && has_extension(l, &["zip".to_string()])
            && !extensions.iter().any(|e| e == "zip")
            && store::archive::split(l).is_none()
    };
    if !files.iter().any(|f| opens(&f.location)) {
        return Ok(files);
    }
    let mut out = Vec::with_capacity(files.len());
    for f in files {
        if opens(&f.location) {
            out.extend(store::list(&format!(
                "{}{}",
                f.location,
                store::archive::MEMBER_SEPARATOR
            ))?);
        } else {
            out.push(f);
        }
    }
    Ok(out)
}

/// The listed files `path` reads, and those skipped for their names.
fn by_extension(
    files: Vec<store::FileEntry>,
    path: &str,
    extensions: &[String],
) -> (Vec<String>, Vec<String>) {
    let single = files.len() == 1 && files[0].location == *path;
    files
        .into_iter()
        .map(|f| f.location)
        .partition(|l| single || extensions.is_empty() || has_extension(l, extensions))
}

/// The files of `locations` that `slice` reads, and the part of each it reads: files by
/// index when there are several; the one file split when the reader splits files, else read
/// whole by the first slice. See the [module docs](self).
fn slice_files(locations: Vec<String>, slice: Slice, splits: bool) -> (Vec<String>, Slice) {
    if slice.is_whole() {
        return (locations, Slice::WHOLE);
    }
    if locations.len() == 1 {
        return if splits {
            (locations, slice)
        } else if slice.is_first() {
            (locations, Slice::WHOLE)
        } else {
            (Vec::new(), Slice::WHOLE)
        };
    }
    let mine = slice.index_range(locations.len());
    let locations = locations
        .into_iter()
        .enumerate()
        .filter(|(i, _)| mine.contains(i))
        .map(|(_, l)| l)
        .collect();
    (locations, Slice::WHOLE)
}

/// The body of [`Files::read`].
fn read_files<S: FileSource>(
    source: &S,
    files: &Files,
    ctx: &NodeContext,
    out: &mut Emitter,
) -> Result<(), ActionError> {
    let Files {
        path,
        read_ahead,
        extensions,
    } = files;
    let files = open_archives(store::list(path)?, extensions)?;
    if files.is_empty() {
        return Err(ActionError::io(
            format!("listing {path}"),
            std::io::Error::new(std::io::ErrorKind::NotFound, "no file matches"),
        ));
    }
    let (locations, skipped) = by_extension(files, path, extensions);
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
    let (locations, part) = slice_files(locations, ctx.slice(), source.splits_files());
    let limit = || {
        read_ahead
            .unwrap_or(usize::MAX)
            .min(ctx.read_ahead())
            .max(1)
    };
    if locations.len() <= 1 || limit() == 1 {
        let mut next_id = 0u64;
        for location in &locations {
            ctx.check_cancelled()?;
            let mut fo = FileOut {
                target: Target::Direct {
                    out: &mut *out,
                    next_id: &mut next_id,
                },
                part,
            };
            source.read_file(location, ctx, &mut fo)?;
        }
        return Ok(());
    }
    concurrent::read_concurrently(source, &locations, part, &limit, ctx, out)
}
