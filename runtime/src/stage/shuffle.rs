//! The two ends of a cut: [`CutWriter`], the sink a parallel stage's task writes a cut
//! with, and [`CutReader`], the source a single stage reads it back with, every task's
//! output in task order.

use std::io::Read as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::action::{Emitter, FeatureOrdering, NodeContext, Sink, Source};
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

/// Writes what reaches it to `folder` as task `task`'s files, committed with the run.
pub(super) struct CutWriter {
    pub(super) folder: String,
    pub(super) task: u32,
    pub(super) port: String,
    pub(super) workflow_hash: String,
    pub(super) open: Option<(String, RunWriter<AtomicWriter>)>,
    pub(super) landed: Vec<(TaskFile, AtomicWriter)>,
}

impl CutWriter {
    pub(super) fn new(folder: String, task: u32, port: String, workflow_hash: String) -> Self {
        CutWriter {
            folder,
            task,
            port,
            workflow_hash,
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

    fn start(&mut self, batch: &Batch) -> Result<(), ActionError> {
        let (columns, kinds) = scan_columns(batch);
        let name = format!("task-{:05}-{:05}.parquet", self.task, self.landed.len());
        let at = format!("{}/{name}", self.folder);
        let out = AtomicWriter::create(&at).map_err(to_action_error)?;
        let writer =
            RunWriter::with_writer(out, Path::new(&at), columns, kinds, file_properties())?;
        self.open = Some((name, writer));
        Ok(())
    }
}

impl Sink for CutWriter {
    fn write(&mut self, _input: usize, batch: Batch, ctx: &NodeContext) -> Result<(), ActionError> {
        ctx.check_cancelled()?;
        if batch.is_empty() {
            return Ok(());
        }
        if let Some((_, w)) = &mut self.open {
            if w.write_features(&batch)? {
                return Ok(());
            }
            // The batch does not fit the file's columns: it starts the next file.
            self.land()?;
        }
        self.start(&batch)?;
        let Some((_, w)) = &mut self.open else {
            unreachable!("a file was just opened")
        };
        if w.write_features(&batch)? {
            Ok(())
        } else {
            Err(ActionError::data(
                None,
                "a batch does not fit the columns decided from it (a bug in sluice)",
            ))
        }
    }

    fn finish(&mut self, _ctx: &NodeContext) -> Result<(), ActionError> {
        self.land()
    }

    fn commit(&mut self) -> Result<(), ActionError> {
        let mut files = Vec::new();
        for (file, out) in self.landed.drain(..) {
            out.commit().map_err(to_action_error)?;
            files.push(file);
        }
        let record = TaskRecord {
            workflow_hash: self.workflow_hash.clone(),
            task: self.task,
            port: self.port.clone(),
            features: files.iter().map(|f| f.features).sum(),
            files,
        };
        let at = format!("{}/{}", self.folder, record_name(self.task));
        let mut out = AtomicWriter::create(&at).map_err(to_action_error)?;
        let text = serde_json::to_vec_pretty(&record).map_err(|e| ActionError::Other(e.into()))?;
        std::io::Write::write_all(&mut out, &text)
            .map_err(|e| ActionError::io(format!("writing {at}"), e))?;
        out.commit().map_err(to_action_error)
    }

    fn abort(&mut self) {
        // Dropping the writers removes their temporary files.
        self.open = None;
        self.landed.clear();
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
    let label = Path::new(at);
    match local_path(at) {
        Some(path) => {
            let path = path.map_err(to_action_error)?;
            let f = std::fs::File::open(&path)
                .map_err(|e| ActionError::io(format!("opening {at}"), e))?;
            SpillReader::open_input(f, label, Rows::All)
        }
        None => {
            let mut bytes = Vec::new();
            open_read(at)
                .map_err(to_action_error)?
                .read_to_end(&mut bytes)
                .map_err(|e| ActionError::io(format!("reading {at}"), e))?;
            SpillReader::open_input(bytes::Bytes::from(bytes), label, Rows::All)
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
        let mut streams = Vec::with_capacity(self.tasks as usize);
        let mut heads: Vec<Option<Feature>> = Vec::with_capacity(self.tasks as usize);
        for task in 0..self.tasks {
            let record = read_record(&self.folder, task, &self.workflow_hash)?;
            let folder = self.folder.clone();
            let files: Vec<(String, u64)> = record
                .files
                .into_iter()
                .map(|f| (format!("{folder}/{}", f.name), f.features))
                .collect();
            let mut stream = files
                .into_iter()
                .map(|(at, expected)| file_features(at, expected))
                .flat_map(|r| match r {
                    Ok(f) => f,
                    Err(e) => Box::new(std::iter::once(Err(e))) as Features,
                });
            heads.push(stream.next().transpose()?);
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
            let next = streams[i].next().transpose()?;
            let feature = std::mem::replace(&mut heads[i], next).expect("a head");
            emit(feature, out)?;
        }
        Ok(())
    }
}
