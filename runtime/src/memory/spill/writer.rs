//! Writing runs: [`write_run`], and the run writer the merge also writes through.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};

use super::codec::{self, BuildFail, Builders, META_KEY, Meta};
use super::{READ_ROWS, ROW_GROUP_ROWS, SpillRun, corrupt, io_error, parquet_error};
use crate::error::ActionError;
use crate::feature::arrow::ColumnKind;
use crate::feature::{Feature, Schema};
use crate::memory::SpillDir;

/// Whether columns are dictionary-encoded (measured with the `spill` bench).
const DICTIONARY: bool = false;

/// Writes `features`, already in the order they should be read back, to a new Parquet file in
/// `dir`, and records it with [`SpillDir::record`].
///
/// The features are taken by value and dropped a row group at a time as they are written, so
/// a caller that hands over its only copy gets the memory back as the file grows. Pass the
/// `Vec` itself (`std::mem::take(&mut buffer)`), not a `drain(..)`: a `Vec` is written from
/// its own allocation, while any other iterator is first collected into a new one. A failed
/// write removes the partial file and returns [`ActionError::Io`] naming it.
pub fn write_run(
    dir: &SpillDir,
    prefix: &str,
    features: impl IntoIterator<Item = Feature>,
) -> Result<SpillRun, ActionError> {
    let path = dir.new_path(prefix)?;
    match write_file(&path, features.into_iter().collect()) {
        Ok(written) => {
            dir.record(written.bytes);
            Ok(written.into_run(path))
        }
        Err(e) => {
            let _ = std::fs::remove_file(&path);
            Err(e)
        }
    }
}

/// What writing a file gave.
#[derive(Debug)]
pub(super) struct Written {
    rows: u64,
    pub(super) bytes: u64,
    row_bytes: usize,
    columns: usize,
}

impl Written {
    pub(super) fn into_run(self, path: PathBuf) -> SpillRun {
        SpillRun {
            path,
            rows: self.rows,
            bytes: self.bytes,
            row_bytes: self.row_bytes,
            columns: self.columns,
        }
    }
}

/// Writes the file. Leaves a partial file behind on error.
pub(super) fn write_file(path: &Path, features: Vec<Feature>) -> Result<Written, ActionError> {
    let (columns, kinds) = codec::scan(&features);
    let mut writer = RunWriter::create(path, columns, kinds)?;
    for f in features {
        writer.push(f)?;
    }
    writer.finish()
}

/// Streams features into one run file whose columns are fixed up front; the distinct schemas
/// are collected as features arrive and stored in the footer.
///
/// Features go in one at a time ([`RunWriter::push`], which holds one row group of features,
/// plus its Arrow batch and the encoded row group: see [`SpillRun::write_cost`]) or a slice at
/// a time ([`RunWriter::write_features`], which holds nothing of the features).
///
/// The output is a local file for spill, or any writer (capture files go through
/// [`crate::store::AtomicWriter`]); `path` only names it in errors.
pub(crate) struct RunWriter<W: Write + Send = File> {
    path: PathBuf,
    writer: ArrowWriter<W>,
    builders: Builders,
    columns: Vec<Arc<str>>,
    column_of: HashMap<Arc<str>, usize>,
    /// For each distinct schema, the column of each of its attributes.
    schemas: Vec<Vec<usize>>,
    by_names: HashMap<Box<[Arc<str>]>, u32>,
    last: Option<(Arc<Schema>, u32)>,
    chunk: Vec<Feature>,
    chunk_schemas: Vec<u32>,
    rows: u64,
    /// Largest Arrow bytes per row of a written row group.
    row_bytes: usize,
}

impl RunWriter<File> {
    pub(super) fn create(
        path: &Path,
        columns: Vec<Arc<str>>,
        kinds: Vec<ColumnKind>,
    ) -> Result<RunWriter<File>, ActionError> {
        let props = WriterProperties::builder()
            .set_compression(Compression::SNAPPY)
            .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
            // Pages of at most READ_ROWS rows, so a reader decodes a page per batch.
            .set_write_batch_size(READ_ROWS)
            .set_data_page_row_count_limit(READ_ROWS)
            .set_statistics_enabled(EnabledStatistics::None)
            .set_dictionary_enabled(DICTIONARY)
            .build();
        let file = File::create(path).map_err(|e| io_error("creating", path, e))?;
        RunWriter::with_writer(file, path, columns, kinds, props)
    }
}

impl<W: Write + Send> RunWriter<W> {
    /// A run writer over `out` with the given Parquet properties; `path` names it in errors.
    pub(crate) fn with_writer(
        out: W,
        path: &Path,
        columns: Vec<Arc<str>>,
        kinds: Vec<ColumnKind>,
        props: WriterProperties,
    ) -> Result<RunWriter<W>, ActionError> {
        let builders = Builders::new(codec::arrow_schema(&columns, &kinds), &kinds);
        let writer = ArrowWriter::try_new(out, builders.schema().clone(), Some(props))
            .map_err(|e| parquet_error("writing", path, e))?;
        let column_of = columns
            .iter()
            .enumerate()
            .map(|(i, c)| (c.clone(), i))
            .collect();
        Ok(RunWriter {
            path: path.to_path_buf(),
            writer,
            builders,
            columns,
            column_of,
            schemas: Vec::new(),
            by_names: HashMap::new(),
            last: None,
            chunk: Vec::with_capacity(ROW_GROUP_ROWS),
            chunk_schemas: Vec::with_capacity(ROW_GROUP_ROWS),
            rows: 0,
            row_bytes: 0,
        })
    }

    /// The index of `f`'s schema among the run's distinct schemas.
    fn schema_index(&mut self, f: &Feature) -> Result<u32, ActionError> {
        self.find_schema(f).ok_or_else(|| {
            let missing = f
                .schema()
                .names()
                .iter()
                .find(|n| !self.column_of.contains_key(*n))
                .map_or_else(String::new, |n| n.to_string());
            corrupt(
                &self.path,
                None,
                format!("feature {}: attribute \"{missing}\" has no column", f.id()),
            )
        })
    }

    /// The index of `f`'s schema, added when new; `None` when an attribute has no column.
    fn find_schema(&mut self, f: &Feature) -> Option<u32> {
        if let Some((s, i)) = &self.last
            && Arc::ptr_eq(s, f.schema())
        {
            return Some(*i);
        }
        let names = f.schema().names();
        let i = match self.by_names.get(names) {
            Some(&i) => i,
            None => {
                let cols = names
                    .iter()
                    .map(|n| self.column_of.get(n).copied())
                    .collect::<Option<Vec<_>>>()?;
                let i = self.schemas.len() as u32;
                self.schemas.push(cols);
                self.by_names.insert(names.into(), i);
                i
            }
        };
        self.last = Some((f.schema().clone(), i));
        Some(i)
    }

    /// Writes `features` as one record batch, serialised from the references: nothing of
    /// the features is kept. Any features [pushed](Self::push) before are written first.
    ///
    /// Gives `false`, writing nothing, when they do not fit this file's columns (an
    /// attribute has no column, or a value does not fit its column's kind): the file must
    /// then be [finished](Self::finish_into), and they go to a new one.
    pub(crate) fn write_features(&mut self, features: &[Feature]) -> Result<bool, ActionError> {
        self.flush_chunk()?;
        if features.is_empty() {
            return Ok(true);
        }
        let mut rows = Vec::with_capacity(features.len());
        for f in features {
            match self.find_schema(f) {
                Some(i) => rows.push(i),
                None => return Ok(false),
            }
        }
        let batch = match codec::build_batch(
            features,
            &rows,
            &self.schemas,
            &mut self.builders,
            &self.path,
        ) {
            Ok(b) => b,
            Err(BuildFail::Mismatch(_)) => return Ok(false),
            Err(BuildFail::Other(e)) => return Err(e),
        };
        let n = features.len();
        self.rows += n as u64;
        self.row_bytes = self
            .row_bytes
            .max(batch.get_array_memory_size().div_ceil(n));
        self.writer
            .write(&batch)
            .map_err(|e| parquet_error("writing", &self.path, e))?;
        Ok(true)
    }

    /// Rows written (or pushed) so far.
    pub(crate) fn rows(&self) -> u64 {
        self.rows + self.chunk.len() as u64
    }

    pub(super) fn push(&mut self, f: Feature) -> Result<(), ActionError> {
        let s = self.schema_index(&f)?;
        self.chunk.push(f);
        self.chunk_schemas.push(s);
        if self.chunk.len() >= ROW_GROUP_ROWS {
            self.flush_chunk()?;
        }
        Ok(())
    }

    fn flush_chunk(&mut self) -> Result<(), ActionError> {
        if self.chunk.is_empty() {
            return Ok(());
        }
        let batch = codec::build_batch(
            &self.chunk,
            &self.chunk_schemas,
            &self.schemas,
            &mut self.builders,
            &self.path,
        )?;
        let n = self.chunk.len();
        self.rows += n as u64;
        self.row_bytes = self
            .row_bytes
            .max(batch.get_array_memory_size().div_ceil(n));
        self.chunk.clear();
        self.chunk_schemas.clear();
        self.writer
            .write(&batch)
            .map_err(|e| parquet_error("writing", &self.path, e))?;
        self.writer
            .flush()
            .map_err(|e| parquet_error("writing", &self.path, e))
    }

    pub(super) fn finish(mut self) -> Result<Written, ActionError> {
        self.end()?;
        self.writer
            .finish()
            .map_err(|e| parquet_error("writing", &self.path, e))?;
        Ok(Written {
            rows: self.rows,
            bytes: self.writer.bytes_written() as u64,
            row_bytes: self.row_bytes,
            columns: self.columns.len(),
        })
    }

    /// Writes what is left and the footer, and gives the rows written and the output back
    /// (to commit it).
    pub(crate) fn finish_into(mut self) -> Result<(u64, W), ActionError> {
        self.end()?;
        let out = self
            .writer
            .into_inner()
            .map_err(|e| parquet_error("writing", &self.path, e))?;
        Ok((self.rows, out))
    }

    /// Writes what is left and adds the layout to the footer's metadata.
    fn end(&mut self) -> Result<(), ActionError> {
        self.flush_chunk()?;
        let meta = Meta {
            version: 1,
            columns: self.columns.iter().map(|c| c.to_string()).collect(),
            schemas: std::mem::take(&mut self.schemas),
        };
        self.writer.append_key_value_metadata(KeyValue::new(
            META_KEY.to_string(),
            serde_json::to_string(&meta).unwrap_or_default(),
        ));
        Ok(())
    }
}
