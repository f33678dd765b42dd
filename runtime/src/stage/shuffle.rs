//! The two ends of a cut: [`CutWriter`], the sink a parallel stage's task writes a cut
//! with, and [`CutReader`], the source a single stage reads it back with, every task's
//! output in task order.

use std::io::Read as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::action::{Emitter, FeatureHasher, FeatureOrdering, NodeContext, Sink, Source};
use crate::capture::file_properties;
use crate::error::ActionError;
use crate::feature::{Batch, Feature};
use crate::memory::spill::{Rows, RunWriter, SpillReader, scan_columns};
use crate::store::{AtomicWriter, local_path, open_read, to_action_error};

/// What a task wrote on one cut: `task-IIIII.json`, written after its files.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct TaskRecord {
    /// The workflow's fingerprint.
    pub workflow_hash: String,
    /// The task's index.
    pub task: u32,
    /// The port the cut leaves from.
    pub port: String,
    /// Features written, in all files.
    pub features: u64,
    /// The files, in order.
    pub files: Vec<TaskFile>,
    /// For a sorted part: every `sample_every`-th feature (rows 0, K, 2K...), in files of
    /// their own, from which the reading stage takes its range boundaries.
    #[serde(default)]
    pub sample_every: u64,
    /// The sample's files, in order.
    #[serde(default)]
    pub samples: Vec<TaskFile>,
}

/// One file of a task's output on a cut.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct TaskFile {
    /// Its name in the cut's folder.
    pub name: String,
    /// Features in it.
    pub features: u64,
    /// Its size.
    pub bytes: u64,
}

/// The name of task `task`'s record in a cut's folder.
pub(super) fn record_name(task: u32) -> String {
    format!("task-{task:05}.json")
}

/// Rows between two sampled rows of a sorted part.
pub const SAMPLE_EVERY: u64 = 256;

/// A sequence of files `PREFIX-00000.parquet`, `PREFIX-00001.parquet`... in a cut's folder: a
/// new file when a batch does not fit the open one's columns.
struct FileSeq {
    folder: String,
    prefix: String,
    open: Option<(String, RunWriter<AtomicWriter>)>,
    landed: Vec<(TaskFile, AtomicWriter)>,
}

impl FileSeq {
    fn new(folder: &str, prefix: String) -> FileSeq {
        FileSeq {
            folder: folder.to_string(),
            prefix,
            open: None,
            landed: Vec::new(),
        }
    }

    fn land(&mut self) -> Result<(), ActionError> {
        if let Some((name, writer)) = self.open.take() {
            let (features, out) = writer.finish_into()?;
            let bytes = out.bytes_written();
            self.landed.push((
                TaskFile {
                    name,
                    features,
                    bytes,
                },
                out,
            ));
        }
        Ok(())
    }

    fn start(&mut self, batch: &[Feature]) -> Result<(), ActionError> {
        let (columns, kinds) = scan_columns(batch);
        let name = format!("{}-{:05}.parquet", self.prefix, self.landed.len());
        let at = format!("{}/{name}", self.folder);
        let out = AtomicWriter::create(&at).map_err(to_action_error)?;
        let writer =
            RunWriter::with_writer(out, Path::new(&at), columns, kinds, file_properties())?;
        self.open = Some((name, writer));
        Ok(())
    }

    fn write(&mut self, batch: &[Feature]) -> Result<(), ActionError> {
        if batch.is_empty() {
            return Ok(());
        }
        if let Some((_, w)) = &mut self.open {
            if w.write_features(batch)? {
                return Ok(());
            }
            // The batch does not fit the file's columns: it starts the next file.
            self.land()?;
        }
        self.start(batch)?;
        let Some((_, w)) = &mut self.open else {
            unreachable!("a file was just opened")
        };
        if w.write_features(batch)? {
            Ok(())
        } else {
            Err(ActionError::data(
                None,
                "a batch does not fit the columns decided from it (a bug in sluice)",
            ))
        }
    }

    /// Moves the files into place; what they were.
    fn commit(&mut self) -> Result<Vec<TaskFile>, ActionError> {
        let mut files = Vec::new();
        for (file, out) in self.landed.drain(..) {
            out.commit().map_err(to_action_error)?;
            files.push(file);
        }
        Ok(files)
    }

    fn abort(&mut self) {
        // Dropping the writers removes their temporary files.
        self.open = None;
        self.landed.clear();
    }
}

/// Writes what reaches it to `folder` as task `task`'s files, committed with the run; for
/// a sorted part, also every [`SAMPLE_EVERY`]-th feature as its sample.
pub(super) struct CutWriter {
    task: u32,
    port: String,
    workflow_hash: String,
    /// One sequence of files per bucket (one bucket unless hashed).
    buckets: Vec<FileSeq>,
    /// Splits features between the buckets by their key's hash.
    hasher: Option<FeatureHasher>,
    /// The sample of a sorted part, and the rows written so far.
    sample: Option<(FileSeq, u64)>,
}

impl CutWriter {
    /// Task `task`'s writer of a cut into `folders` (one per bucket: features go to bucket
    /// `hash % buckets` with a `hasher`, else all to the one folder); `sorted` parts also
    /// write their sample.
    pub(super) fn new(
        folders: Vec<String>,
        task: u32,
        port: String,
        workflow_hash: String,
        sorted: bool,
        hasher: Option<FeatureHasher>,
    ) -> Self {
        let prefix = format!("task-{task:05}");
        CutWriter {
            sample: sorted.then(|| (FileSeq::new(&folders[0], format!("{prefix}-sample")), 0)),
            buckets: folders
                .iter()
                .map(|f| FileSeq::new(f, prefix.clone()))
                .collect(),
            hasher,
            task,
            port,
            workflow_hash,
        }
    }
}

impl Sink for CutWriter {
    fn write(&mut self, _input: usize, batch: Batch, ctx: &NodeContext) -> Result<(), ActionError> {
        ctx.check_cancelled()?;
        if let Some((sample, rows)) = &mut self.sample {
            let first = (SAMPLE_EVERY - *rows % SAMPLE_EVERY) % SAMPLE_EVERY;
            let picked: Vec<Feature> = batch
                .iter()
                .skip(first as usize)
                .step_by(SAMPLE_EVERY as usize)
                .cloned()
                .collect();
            *rows += batch.len() as u64;
            sample.write(&picked)?;
        }
        match &mut self.hasher {
            Some(hash) if self.buckets.len() > 1 => {
                let n = self.buckets.len() as u64;
                let mut split: Vec<Vec<Feature>> = vec![Vec::new(); self.buckets.len()];
                for f in batch {
                    let b = (hash(&f) % n) as usize;
                    split[b].push(f);
                }
                for (seq, part) in self.buckets.iter_mut().zip(split) {
                    seq.write(&part)?;
                }
                Ok(())
            }
            _ => self.buckets[0].write(&batch),
        }
    }

    fn finish(&mut self, _ctx: &NodeContext) -> Result<(), ActionError> {
        if let Some((sample, _)) = &mut self.sample {
            sample.land()?;
        }
        for seq in &mut self.buckets {
            seq.land()?;
        }
        Ok(())
    }

    fn commit(&mut self) -> Result<(), ActionError> {
        let (sample_every, samples) = match &mut self.sample {
            Some((sample, _)) => (SAMPLE_EVERY, sample.commit()?),
            None => (0, Vec::new()),
        };
        let mut samples = Some(samples);
        for seq in &mut self.buckets {
            let files = seq.commit()?;
            let record = TaskRecord {
                workflow_hash: self.workflow_hash.clone(),
                task: self.task,
                port: self.port.clone(),
                features: files.iter().map(|f| f.features).sum(),
                files,
                sample_every,
                samples: samples.take().unwrap_or_default(),
            };
            let at = format!("{}/{}", seq.folder, record_name(self.task));
            let mut out = AtomicWriter::create(&at).map_err(to_action_error)?;
            let text =
                serde_json::to_vec_pretty(&record).map_err(|e| ActionError::Other(e.into()))?;
            std::io::Write::write_all(&mut out, &text)
                .map_err(|e| ActionError::io(format!("writing {at}"), e))?;
            out.commit().map_err(to_action_error)?;
        }
        Ok(())
    }

    fn abort(&mut self) {
        for seq in &mut self.buckets {
            seq.abort();
        }
        if let Some((sample, _)) = &mut self.sample {
            sample.abort();
        }
    }
}

/// Emits what every task of the producing stage wrote on one cut: task by task, or, when
/// each task's part is sorted, merged by `merge` (ties to the lower task, so a stable sort
/// stays stable across tasks).
pub(super) struct CutReader {
    pub(super) folder: String,
    pub(super) tasks: u32,
    pub(super) workflow_hash: String,
    pub(super) merge: Option<FeatureOrdering>,
    /// With `merge`, in a stage of several tasks: this task's range of the order (bucket
    /// `index` of `count`), its boundaries taken from the parts' samples.
    pub(super) range: Option<crate::action::Slice>,
}

type Features = Box<dyn Iterator<Item = Result<Feature, ActionError>>>;

/// Reads and checks task `task`'s record in `folder`.
pub(super) fn read_record(
    folder: &str,
    task: u32,
    workflow_hash: &str,
) -> Result<TaskRecord, ActionError> {
    let at = format!("{folder}/{}", record_name(task));
    let mut text = Vec::new();
    open_read(&at)
        .map_err(to_action_error)?
        .read_to_end(&mut text)
        .map_err(|e| ActionError::io(format!("reading {at}"), e))?;
    let record: TaskRecord = serde_json::from_slice(&text).map_err(|e| {
        ActionError::data(
            Some(at.clone()),
            format!("not a task record of sluice: {e}"),
        )
    })?;
    if record.workflow_hash != workflow_hash {
        return Err(ActionError::data(
            Some(at),
            format!(
                "written by another workflow (hash {}, this one {workflow_hash})",
                record.workflow_hash
            ),
        ));
    }
    Ok(record)
}

/// Opens one file of a cut.
fn open_file(at: &str) -> Result<SpillReader, ActionError> {
    open_file_rows(at, Rows::All)
}

/// Opens `rows` of one file of a cut.
fn open_file_rows(at: &str, rows: Rows) -> Result<SpillReader, ActionError> {
    let label = Path::new(at);
    match local_path(at) {
        Some(path) => {
            let path = path.map_err(to_action_error)?;
            let f = std::fs::File::open(&path)
                .map_err(|e| ActionError::io(format!("opening {at}"), e))?;
            SpillReader::open_input(f, label, rows)
        }
        None => {
            let mut bytes = Vec::new();
            open_read(at)
                .map_err(to_action_error)?
                .read_to_end(&mut bytes)
                .map_err(|e| ActionError::io(format!("reading {at}"), e))?;
            SpillReader::open_input(bytes::Bytes::from(bytes), label, rows)
        }
    }
}

/// The features of one file, then an error if there were not as many as its record says.
fn file_features(at: String, expected: u64) -> Result<Features, ActionError> {
    let mut reader = open_file(&at)?;
    let mut n = 0u64;
    let mut ended = false;
    Ok(Box::new(std::iter::from_fn(move || {
        if ended {
            return None;
        }
        match reader.next() {
            Some(f) => {
                n += 1;
                Some(f)
            }
            None => {
                ended = true;
                (n != expected).then(|| {
                    Err(ActionError::data(
                        Some(at.clone()),
                        format!("holds {n} features, its task record says {expected}"),
                    ))
                })
            }
        }
    })))
}

/// Rows `start..end` of the sequence of `files` in `folder` (only the files holding them are
/// opened, and only those rows decoded).
fn rows_of(
    folder: &str,
    files: &[TaskFile],
    start: u64,
    end: u64,
) -> Result<Features, ActionError> {
    let mut parts: Vec<(String, usize, usize)> = Vec::new();
    let mut offset = 0u64;
    for f in files {
        let (from, to) = (start.max(offset), end.min(offset + f.features));
        if from < to {
            parts.push((
                format!("{folder}/{}", f.name),
                (from - offset) as usize,
                (to - from) as usize,
            ));
        }
        offset += f.features;
    }
    let mut parts = parts.into_iter();
    let mut current: Option<SpillReader> = None;
    Ok(Box::new(std::iter::from_fn(move || {
        loop {
            if let Some(r) = current.as_mut()
                && let Some(item) = r.next()
            {
                return Some(item);
            }
            let (at, skip, limit) = parts.next()?;
            match open_file_rows(&at, Rows::Range { skip, limit }) {
                Ok(r) => current = Some(r),
                Err(e) => return Some(Err(e)),
            }
        }
    })))
}

impl CutReader {
    /// Every feature task `task` wrote on the cut, in order (files opened one at a time).
    fn task_features(&self, task: u32) -> Result<Features, ActionError> {
        let record = read_record(&self.folder, task, &self.workflow_hash)?;
        let folder = self.folder.clone();
        let mut files = record.files.into_iter();
        let mut current: Option<Features> = None;
        Ok(Box::new(std::iter::from_fn(move || {
            loop {
                if let Some(f) = current.as_mut()
                    && let Some(item) = f.next()
                {
                    return Some(item);
                }
                let file = files.next()?;
                match file_features(format!("{folder}/{}", file.name), file.features) {
                    Ok(f) => current = Some(f),
                    Err(e) => return Some(Err(e)),
                }
            }
        })))
    }
}

impl Source for CutReader {
    fn run(&mut self, ctx: &NodeContext, out: &mut Emitter) -> Result<(), ActionError> {
        let mut n = 0u64;
        let mut emit = |feature: Feature, out: &mut Emitter| {
            if n.is_multiple_of(4096) {
                ctx.check_cancelled()?;
            }
            n += 1;
            out.emit(feature)
        };
        let Some(order) = self.merge.as_mut() else {
            for task in 0..self.tasks {
                for feature in self.task_features(task)? {
                    emit(feature?, out)?;
                }
            }
            return Ok(());
        };
        let mut records = Vec::with_capacity(self.tasks as usize);
        for task in 0..self.tasks {
            records.push(read_record(&self.folder, task, &self.workflow_hash)?);
        }
        // This task's range of the order: [lo, hi), from the parts' samples.
        let (lo, hi, samples) = match self.range.filter(|r| r.count > 1) {
            None => (None, None, Vec::new()),
            Some(range) => {
                let mut samples: Vec<Vec<Feature>> = Vec::with_capacity(records.len());
                for r in &records {
                    let mut part = Vec::new();
                    for f in &r.samples {
                        let at = format!("{}/{}", self.folder, f.name);
                        for feature in file_features(at, f.features)? {
                            part.push(feature?);
                        }
                    }
                    samples.push(part);
                }
                let mut all: Vec<&Feature> = samples.iter().flatten().collect();
                // Stable: equal keys keep task order.
                all.sort_by(|a, b| order(a, b));
                let n = all.len() as u64;
                let at = |i: u32| -> Option<Feature> {
                    let k = (n * u64::from(i) / u64::from(range.count)) as usize;
                    (i > 0 && i < range.count && k < all.len()).then(|| all[k].clone())
                };
                let (lo, hi) = (at(range.index), at(range.index + 1));
                (lo, hi, samples)
            }
        };
        let mut streams: Vec<Features> = Vec::with_capacity(records.len());
        let mut heads: Vec<Option<Feature>> = Vec::with_capacity(records.len());
        let mut ended = vec![false; records.len()];
        for (t, r) in records.iter().enumerate() {
            let total: u64 = r.files.iter().map(|f| f.features).sum();
            let (mut start, mut end) = (0u64, total);
            if let Some(part) = samples.get(t) {
                let every = r.sample_every.max(1);
                if let Some(lo) = &lo {
                    // Rows before the last sample below `lo` are all below it.
                    let below = part.partition_point(|s| order(s, lo).is_lt());
                    start = (below.saturating_sub(1) as u64) * every;
                }
                if let Some(hi) = &hi {
                    // From the first sample at or past `hi` on, every row is.
                    let below = part.partition_point(|s| order(s, hi).is_lt());
                    if below < part.len() {
                        end = below as u64 * every;
                    }
                }
            }
            let mut stream = rows_of(&self.folder, &r.files, start, end.max(start))?;
            let mut head = None;
            // Skip what lies below `lo`; stop at `hi`.
            for f in stream.by_ref() {
                let f = f?;
                if lo.as_ref().is_some_and(|lo| order(&f, lo).is_lt()) {
                    continue;
                }
                if hi.as_ref().is_some_and(|hi| !order(&f, hi).is_lt()) {
                    ended[t] = true;
                } else {
                    head = Some(f);
                }
                break;
            }
            heads.push(head);
            streams.push(stream);
        }
        loop {
            // The smallest head; on a tie the lower task, which came first in the input.
            let mut best: Option<usize> = None;
            for (i, h) in heads.iter().enumerate() {
                let Some(f) = h else { continue };
                best = match best {
                    Some(b) if order(f, heads[b].as_ref().expect("a head")).is_lt() => Some(i),
                    Some(b) => Some(b),
                    None => Some(i),
                };
            }
            let Some(i) = best else { break };
            let mut next = if ended[i] {
                None
            } else {
                streams[i].next().transpose()?
            };
            if let (Some(f), Some(hi)) = (&next, &hi)
                && !order(f, hi).is_lt()
            {
                ended[i] = true;
                next = None;
            }
            let feature = std::mem::replace(&mut heads[i], next).expect("a head");
            emit(feature, out)?;
        }
        Ok(())
    }
}
