//! Reading runs back: [`SpillReader`].

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::file::reader::ChunkReader;

use super::codec::{self, Decoded, FIXED, META_KEY, Meta};
use super::{READ_ROWS, arrow_error, corrupt, guarded, io_error, parquet_error};
use crate::error::ActionError;
use crate::feature::arrow::ColumnKind;
use crate::feature::{Feature, Schema};

/// Features read back from a [`SpillRun`](super::SpillRun), in order; yields nothing more after an error.
pub struct SpillReader {
    path: PathBuf,
    batches: ParquetRecordBatchReader,
    /// Per distinct schema: the shared key list and the batch column of each attribute.
    schemas: Vec<(Arc<Schema>, Vec<usize>)>,
    /// Attribute column names and kinds.
    pub(super) columns: Vec<Arc<str>>,
    pub(super) kinds: Vec<ColumnKind>,
    batch: Option<Decoded>,
    /// Next row in `batch`.
    row: usize,
    /// Rows yielded so far (for error locations).
    done: u64,
    failed: bool,
}

impl std::fmt::Debug for SpillReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpillReader")
            .field("path", &self.path)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl SpillReader {
    /// Opens a run; schemas equal (by names) to one in `known` reuse it, new ones are added.
    pub(super) fn open(
        path: &Path,
        known: &mut Vec<Arc<Schema>>,
    ) -> Result<SpillReader, ActionError> {
        guarded(path, || SpillReader::open_unguarded(path, known))
    }

    fn open_unguarded(
        path: &Path,
        known: &mut Vec<Arc<Schema>>,
    ) -> Result<SpillReader, ActionError> {
        let file = File::open(path).map_err(|e| io_error("opening", path, e))?;
        SpillReader::from_input(file, path, known, Rows::All)
    }

    /// Opens a file in the run layout from any Parquet input (a file, bytes read from a
    /// store), reading only `rows` of it; `path` names it in errors.
    pub(crate) fn open_input<R: ChunkReader + 'static>(
        input: R,
        path: &Path,
        rows: Rows,
    ) -> Result<SpillReader, ActionError> {
        guarded(path, || {
            SpillReader::from_input(input, path, &mut Vec::new(), rows)
        })
    }

    fn from_input<R: ChunkReader + 'static>(
        input: R,
        path: &Path,
        known: &mut Vec<Arc<Schema>>,
        rows: Rows,
    ) -> Result<SpillReader, ActionError> {
        let builder = ParquetRecordBatchReaderBuilder::try_new(input)
            .map_err(|e| parquet_error("reading", path, e))?;
        let meta: Meta = builder
            .metadata()
            .file_metadata()
            .key_value_metadata()
            .and_then(|kv| kv.iter().find(|kv| kv.key == META_KEY))
            .and_then(|kv| kv.value.as_deref())
            .ok_or_else(|| corrupt(path, None, "not a sluice spill file (no layout metadata)"))
            .and_then(|json| {
                serde_json::from_str(json)
                    .map_err(|e| corrupt(path, None, format!("bad layout metadata: {e}")))
            })?;
        let fields = builder.schema().fields();
        let fixed_ok = fields.len() == FIXED.len() + meta.columns.len()
            && fields.iter().zip(FIXED).all(|(f, name)| f.name() == name);
        if !fixed_ok {
            return Err(corrupt(
                path,
                None,
                "columns do not match the layout metadata",
            ));
        }
        let kinds = codec::kinds_of(fields, path)?;
        let names: Vec<Arc<str>> = meta.columns.iter().map(|c| Arc::from(c.as_str())).collect();
        let mut schemas = Vec::with_capacity(meta.schemas.len());
        for cols in meta.schemas {
            if cols.iter().any(|&c| c >= names.len()) {
                return Err(corrupt(path, None, "schema refers to a missing column"));
            }
            let wanted = || cols.iter().map(|&c| &names[c]);
            let schema = match known.iter().find(|k| k.names().iter().eq(wanted())) {
                Some(s) => s.clone(),
                None => {
                    let s = Schema::new(wanted().cloned());
                    known.push(s.clone());
                    s
                }
            };
            schemas.push((schema, cols));
        }
        let mut builder = builder.with_batch_size(READ_ROWS);
        let mut done = 0;
        if let Rows::Range { skip, limit } = rows {
            builder = builder.with_offset(skip).with_limit(limit);
            done = skip as u64;
        }
        let batches = builder
            .build()
            .map_err(|e| parquet_error("reading", path, e))?;
        Ok(SpillReader {
            path: path.to_path_buf(),
            batches,
            schemas,
            columns: names,
            kinds,
            batch: None,
            row: 0,
            done,
            failed: false,
        })
    }
}

/// Which rows of a file to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rows {
    /// Every row.
    All,
    /// `limit` rows after the first `skip`.
    Range {
        /// Rows skipped.
        skip: usize,
        /// Most rows read.
        limit: usize,
    },
}

impl Iterator for SpillReader {
    type Item = Result<Feature, ActionError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.failed {
                return None;
            }
            if let Some(b) = &self.batch
                && self.row < b.len
            {
                let out = b.feature(self.row, &self.schemas, &self.path, self.done);
                self.row += 1;
                self.done += 1;
                self.failed = out.is_err();
                return Some(out);
            }
            self.batch = None;
            let decoded = match guarded(&self.path, || Ok(self.batches.next())) {
                Ok(None) => return None,
                Ok(Some(Ok(rb))) => Decoded::new(&rb, &self.kinds, &self.path, self.done),
                Ok(Some(Err(e))) => Err(arrow_error("reading", &self.path, e)),
                Err(e) => Err(e),
            };
            match decoded {
                Ok(d) => {
                    self.batch = Some(d);
                    self.row = 0;
                }
                Err(e) => {
                    self.failed = true;
                    return Some(Err(e));
                }
            }
        }
    }
}
