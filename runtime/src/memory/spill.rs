//! Spilling: sorted runs of features written to Parquet files, streamed back, and merged.
//!
//! An accumulating processor (sort, dedup, group-by, join) whose [`Reservation::try_grow`]
//! fails sorts what it holds, hands it to [`write_run`], frees its reservation and carries
//! on. In `finish` it calls [`merge`] with the runs and its in-memory sorted tail, and emits
//! what the [`MergeIter`] yields. Memory stays bounded: a run is written and read back one
//! row group at a time, so the merge holds one decoded row group per run plus the tail.
//!
//! ```text
//!   input ──► buffer ──(try_grow fails)──► sort ──► write_run ──► run-0.parquet
//!                │                                               run-1.parquet
//!                │ finish: sort the tail                         ...
//!                ▼                                                  │
//!              tail ─────────────────► merge (k-way, by cmp) ◄──────┘ one row group each
//!                                          │ ties: run 0, run 1, …, then the tail
//!                                          ▼
//!                                        output
//! ```
//!
//! # File format
//!
//! One Parquet file per run (snappy, row groups of [`ROW_GROUP_ROWS`] rows, each flushed as
//! soon as it is full). Columns, in order:
//!
//! | column | type | holds |
//! |---|---|---|
//! | `__id` | UInt64 | the feature id |
//! | `__schema` | UInt32 | index into the run's list of distinct schemas |
//! | `__geometry` | Binary, nullable | the geometry as WKB ([`crate::feature::wkb`]) |
//! | `__crs` | UInt32, nullable | the geometry's EPSG code |
//! | one per attribute | see below | the attribute's values, null where absent |
//!
//! Attribute columns are the union of the attribute names over the run, in first-seen order.
//! A column whose non-null values all have one type gets the matching Arrow type (Int64,
//! Float64, Utf8, Boolean, Date32, Timestamp(µs, UTC), Binary); a column with mixed types, or
//! with arrays or maps, is a Binary column of self-describing value encodings, marked
//! `sluice.encoded = "true"` in its Arrow field metadata. The Parquet key-value metadata entry
//! `sluice.spill` (JSON) lists the attribute names and the distinct schemas (each a list of
//! column indices), so each feature comes back with exactly its own attribute names, in its
//! own order, and every feature of one schema shares one `Arc<Schema>`.
//!
//! Files are deleted when their [`SpillRun`] is dropped (the merge drops each run as soon as it
//! is exhausted), and the whole [`SpillDir`] folder goes when the run ends.

use std::cmp::Ordering;
use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{
    BinaryBuilder, BooleanBuilder, Date32Builder, Float64Builder, Int64Builder, StringBuilder,
    TimestampMicrosecondBuilder, UInt32Builder,
};
use arrow_array::{
    Array, ArrayRef, BinaryArray, BooleanArray, Date32Array, Float64Array, Int64Array, RecordBatch,
    StringArray, TimestampMicrosecondArray, UInt32Array, UInt64Array,
};
use arrow_schema::{DataType, Field, Schema as ArrowSchema, SchemaRef, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::basic::Compression;
use parquet::errors::ParquetError;
use parquet::file::metadata::KeyValue;
use parquet::file::properties::{EnabledStatistics, WriterProperties};

use crate::error::ActionError;
use crate::feature::{Feature, Geometry, Schema, Value, wkb};
use crate::memory::{MemoryBudget, Reservation, SpillDir};

/// Rows per Parquet row group.
pub const ROW_GROUP_ROWS: usize = 8192;
/// Rows per page of a run file, and per batch read back: what a merge holds per open run.
pub const READ_ROWS: usize = 1024;
/// Bytes an open run costs beyond its decoded batch: the reader's state, a buffered page
/// header read per column, the file handle.
const OPEN_FIXED_BYTES: usize = 32 << 10;
const OPEN_PER_COLUMN_BYTES: usize = 4 << 10;

/// Key of the run layout in the Parquet key-value metadata.
const META_KEY: &str = "sluice.spill";
/// Arrow field metadata: `"true"` on attribute columns of encoded values.
const ENCODED_KEY: &str = "sluice.encoded";
/// Arrow field metadata: `"true"` on attribute columns that held only nulls.
const EMPTY_KEY: &str = "sluice.empty";
/// Arrow field metadata: the attribute name of a column.
const NAME_KEY: &str = "sluice.name";
/// The columns before the attributes.
const FIXED: [&str; 4] = ["__id", "__schema", "__geometry", "__crs"];
/// Whether columns are dictionary-encoded (measured with the `spill` bench).
const DICTIONARY: bool = false;
/// Nesting limit of arrays and maps in encoded values (both ways).
const MAX_VALUE_DEPTH: usize = 256;

/// A sorted run written to disk. The file is deleted when the run is dropped.
#[derive(Debug)]
pub struct SpillRun {
    /// The Parquet file.
    pub path: PathBuf,
    /// Features in the file.
    pub rows: u64,
    /// Size of the file in bytes.
    pub bytes: u64,
    /// Largest decoded (Arrow) bytes per row of a row group.
    row_bytes: usize,
    /// Attribute columns.
    columns: usize,
}

impl Drop for SpillRun {
    fn drop(&mut self) {
        // Best effort: the spill folder itself is removed when the run ends.
        let _ = std::fs::remove_file(&self.path);
    }
}

impl SpillRun {
    /// Streams the features back, in the order written, one page of [`READ_ROWS`] rows at a
    /// time.
    pub fn read(&self) -> Result<SpillReader, ActionError> {
        SpillReader::open(&self.path, &mut Vec::new())
    }

    /// Bytes a merge holds while this run is open: a decoded batch of [`READ_ROWS`] rows,
    /// the page it came from (decompressed and compressed), the features made from it, and
    /// the reader's fixed state.
    pub fn open_cost(&self) -> usize {
        READ_ROWS.saturating_mul(self.row_bytes).saturating_mul(4) + self.fixed_cost()
    }

    /// Bytes a writer holds while writing a run of rows like this one's: a row group of
    /// features, its Arrow batch and its encoded pages.
    pub fn write_cost(&self) -> usize {
        ROW_GROUP_ROWS
            .saturating_mul(self.row_bytes)
            .saturating_mul(4)
            + self.fixed_cost()
    }

    fn fixed_cost(&self) -> usize {
        OPEN_FIXED_BYTES + OPEN_PER_COLUMN_BYTES * (FIXED.len() + self.columns)
    }
}

// ─── errors ─────────────────────────────────────────────────────────────────────────────────

fn io_error(context: &str, path: &Path, e: std::io::Error) -> ActionError {
    ActionError::io(format!("{context} spill file {}", path.display()), e)
}

/// Parquet errors become [`ActionError::Io`] naming the file; a disk error inside is kept as
/// the source so its kind (e.g. no space left) survives.
fn parquet_error(context: &str, path: &Path, e: ParquetError) -> ActionError {
    let source = match e {
        ParquetError::External(b) => match b.downcast::<std::io::Error>() {
            Ok(io) => *io,
            Err(other) => std::io::Error::other(other),
        },
        other => std::io::Error::other(other),
    };
    io_error(context, path, source)
}

fn arrow_error(context: &str, path: &Path, e: arrow_schema::ArrowError) -> ActionError {
    match e {
        arrow_schema::ArrowError::IoError(_, io) => io_error(context, path, io),
        arrow_schema::ArrowError::ExternalError(b) => match b.downcast::<ParquetError>() {
            Ok(pq) => parquet_error(context, path, *pq),
            Err(other) => io_error(context, path, std::io::Error::other(other)),
        },
        other => io_error(context, path, std::io::Error::other(other)),
    }
}

/// Runs a Parquet read, turning a panic into a data error. parquet-rs still panics on some
/// damaged files instead of returning an error (e.g. apache/arrow-rs#10722); a damaged spill
/// file must fail the node with a located error like any other bad input. The reader is not
/// used again after a panic.
fn guarded<T>(path: &Path, f: impl FnOnce() -> Result<T, ActionError>) -> Result<T, ActionError> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        let why = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_default();
        Err(corrupt(path, None, format!("damaged spill file ({why})")))
    })
}

fn corrupt(path: &Path, row: Option<u64>, message: impl Into<String>) -> ActionError {
    let location = match row {
        Some(r) => format!("spill file {}, row {r}", path.display()),
        None => format!("spill file {}", path.display()),
    };
    ActionError::data(Some(location), message)
}

// ─── writing ────────────────────────────────────────────────────────────────────────────────

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
struct Written {
    rows: u64,
    bytes: u64,
    row_bytes: usize,
    columns: usize,
}

impl Written {
    fn into_run(self, path: PathBuf) -> SpillRun {
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
fn write_file(path: &Path, features: Vec<Feature>) -> Result<Written, ActionError> {
    let (columns, kinds) = scan(&features);
    let mut writer = RunWriter::create(path, columns, kinds)?;
    for f in features {
        writer.push(f)?;
    }
    writer.finish()
}

/// The attribute columns of `features` (names in first-seen order) and their kinds.
fn scan(features: &[Feature]) -> (Vec<Arc<str>>, Vec<Kind>) {
    let mut columns: Vec<Arc<str>> = Vec::new();
    let mut column_of: HashMap<Arc<str>, usize> = HashMap::new();
    let mut kinds = Vec::new();
    let mut last: Option<(&Arc<Schema>, Vec<usize>)> = None;
    for f in features {
        if !last
            .as_ref()
            .is_some_and(|(s, _)| Arc::ptr_eq(s, f.schema()))
        {
            let cols = f
                .schema()
                .names()
                .iter()
                .map(|n| {
                    *column_of.entry(n.clone()).or_insert_with(|| {
                        columns.push(n.clone());
                        kinds.push(Kind::Empty);
                        columns.len() - 1
                    })
                })
                .collect();
            last = Some((f.schema(), cols));
        }
        if let Some((_, cols)) = &last {
            for (v, &c) in f.values().iter().zip(cols) {
                kinds[c] = kinds[c].join(Kind::of(v));
            }
        }
    }
    (columns, kinds)
}

/// The type of an attribute column, from the values it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Only nulls so far (written as an all-null Boolean column).
    Empty,
    Bool,
    Int,
    Float,
    Str,
    Date,
    DateTime,
    LocalDateTime,
    Bytes,
    /// Mixed types, arrays or maps: self-describing encodings in a Binary column.
    Encoded,
}

impl Kind {
    fn of(v: &Value) -> Kind {
        match v {
            Value::Null => Kind::Empty,
            Value::Bool(_) => Kind::Bool,
            Value::Int(_) => Kind::Int,
            Value::Float(_) => Kind::Float,
            Value::String(_) => Kind::Str,
            Value::Date(_) => Kind::Date,
            Value::DateTime(_) => Kind::DateTime,
            Value::LocalDateTime(_) => Kind::LocalDateTime,
            Value::Bytes(_) => Kind::Bytes,
            Value::Array(_) | Value::Map(_) => Kind::Encoded,
        }
    }

    fn join(self, other: Kind) -> Kind {
        match (self, other) {
            (a, Kind::Empty) => a,
            (Kind::Empty, b) => b,
            (a, b) if a == b => a,
            _ => Kind::Encoded,
        }
    }

    fn data_type(self) -> DataType {
        match self {
            Kind::Empty | Kind::Bool => DataType::Boolean,
            Kind::Int => DataType::Int64,
            Kind::Float => DataType::Float64,
            Kind::Str => DataType::Utf8,
            Kind::Date => DataType::Date32,
            Kind::DateTime => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
            Kind::LocalDateTime => DataType::Timestamp(TimeUnit::Microsecond, None),
            Kind::Bytes | Kind::Encoded => DataType::Binary,
        }
    }
}

/// Streams features into one run file whose columns are fixed up front; the distinct schemas
/// are collected as features arrive and stored in the footer.
///
/// It holds one row group of features at a time (plus its Arrow batch and the encoded row
/// group): see [`SpillRun::write_cost`].
struct RunWriter {
    path: PathBuf,
    writer: ArrowWriter<File>,
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

impl RunWriter {
    fn create(
        path: &Path,
        columns: Vec<Arc<str>>,
        kinds: Vec<Kind>,
    ) -> Result<RunWriter, ActionError> {
        let builders = Builders::new(arrow_schema(&columns, &kinds), &kinds);
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
        let writer = ArrowWriter::try_new(file, builders.schema.clone(), Some(props))
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
        if let Some((s, i)) = &self.last
            && Arc::ptr_eq(s, f.schema())
        {
            return Ok(*i);
        }
        let names = f.schema().names();
        let i = match self.by_names.get(names) {
            Some(&i) => i,
            None => {
                let cols = names
                    .iter()
                    .map(|n| {
                        self.column_of.get(n).copied().ok_or_else(|| {
                            corrupt(
                                &self.path,
                                None,
                                format!("feature {}: attribute \"{n}\" has no column", f.id()),
                            )
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let i = self.schemas.len() as u32;
                self.schemas.push(cols);
                self.by_names.insert(names.into(), i);
                i
            }
        };
        self.last = Some((f.schema().clone(), i));
        Ok(i)
    }

    fn push(&mut self, f: Feature) -> Result<(), ActionError> {
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
        let batch = build_batch(
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

    fn finish(mut self) -> Result<Written, ActionError> {
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
}

/// The JSON stored under [`META_KEY`].
#[derive(serde::Serialize, serde::Deserialize)]
struct Meta {
    version: u32,
    columns: Vec<String>,
    schemas: Vec<Vec<usize>>,
}

fn arrow_schema(columns: &[Arc<str>], kinds: &[Kind]) -> SchemaRef {
    let mut fields = vec![
        Field::new(FIXED[0], DataType::UInt64, false),
        Field::new(FIXED[1], DataType::UInt32, false),
        Field::new(FIXED[2], DataType::Binary, true),
        Field::new(FIXED[3], DataType::UInt32, true),
    ];
    for (name, kind) in columns.iter().zip(kinds) {
        // Names starting with "__" get one more "_", so no attribute clashes with the
        // fixed columns (only for people looking at the file; reading goes by position).
        let field_name = if name.starts_with("__") {
            format!("_{name}")
        } else {
            name.to_string()
        };
        let mut meta = HashMap::from([(NAME_KEY.to_string(), name.to_string())]);
        match kind {
            Kind::Encoded => {
                meta.insert(ENCODED_KEY.to_string(), "true".to_string());
            }
            Kind::Empty => {
                meta.insert(EMPTY_KEY.to_string(), "true".to_string());
            }
            _ => {}
        }
        fields.push(Field::new(field_name, kind.data_type(), true).with_metadata(meta));
    }
    Arc::new(ArrowSchema::new(fields))
}

/// Builds the record batch of one chunk; `rows` are the chunk's schema indices.
///
/// Row by row: each value goes to its column's builder, after nulls for the rows since that
/// column was last filled, so the cost is the number of values (plus one pass over the
/// columns), however many distinct schemas the run has.
fn build_batch(
    chunk: &[Feature],
    rows: &[u32],
    schemas: &[Vec<usize>],
    out: &mut Builders,
    path: &Path,
) -> Result<RecordBatch, ActionError> {
    let n = chunk.len();
    let Builders {
        schema,
        geometry,
        crs,
        columns,
        filled,
        scratch,
    } = out;
    for (r, (f, &s)) in chunk.iter().zip(rows).enumerate() {
        match f.geometry() {
            Some(g) => {
                scratch.clear();
                wkb::to_wkb(&g.geom, scratch);
                geometry.append_value(&scratch[..]);
                crs.append_option(g.crs);
            }
            None => {
                geometry.append_null();
                crs.append_null();
            }
        }
        for (v, &c) in f.values().iter().zip(&schemas[s as usize]) {
            columns[c].append_nulls(r - filled[c]);
            columns[c]
                .append(v, scratch)
                .map_err(|m| corrupt(path, None, format!("feature {}: {m}", f.id())))?;
            filled[c] = r + 1;
        }
    }
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(4 + columns.len());
    arrays.push(Arc::new(UInt64Array::from_iter_values(
        chunk.iter().map(Feature::id),
    )));
    arrays.push(Arc::new(UInt32Array::from(rows.to_vec())));
    arrays.push(Arc::new(geometry.finish()));
    arrays.push(Arc::new(crs.finish()));
    for (b, filled) in columns.iter_mut().zip(filled.iter_mut()) {
        b.append_nulls(n - *filled);
        *filled = 0;
        arrays.push(b.finish());
    }
    RecordBatch::try_new(schema.clone(), arrays).map_err(|e| arrow_error("writing", path, e))
}

/// The builders of a run's columns, reused from one row group to the next.
struct Builders {
    schema: SchemaRef,
    geometry: BinaryBuilder,
    crs: UInt32Builder,
    columns: Vec<ColumnBuilder>,
    /// Rows of the current chunk each column holds so far.
    filled: Vec<usize>,
    /// Scratch space for WKB and encoded values.
    scratch: Vec<u8>,
}

impl Builders {
    fn new(schema: SchemaRef, kinds: &[Kind]) -> Builders {
        Builders {
            schema,
            geometry: BinaryBuilder::new(),
            crs: UInt32Builder::new(),
            columns: kinds.iter().map(|k| ColumnBuilder::new(*k)).collect(),
            filled: vec![0; kinds.len()],
            scratch: Vec::new(),
        }
    }
}

/// An attribute column's builder. Only values of its kind (or null) reach a typed builder.
enum ColumnBuilder {
    Bool(BooleanBuilder),
    Int(Int64Builder),
    Float(Float64Builder),
    Str(StringBuilder),
    Date(Date32Builder),
    DateTime(TimestampMicrosecondBuilder),
    LocalDateTime(TimestampMicrosecondBuilder),
    Bytes(BinaryBuilder),
    Encoded(BinaryBuilder),
}

impl ColumnBuilder {
    fn new(kind: Kind) -> ColumnBuilder {
        match kind {
            Kind::Empty | Kind::Bool => ColumnBuilder::Bool(BooleanBuilder::new()),
            Kind::Int => ColumnBuilder::Int(Int64Builder::new()),
            Kind::Float => ColumnBuilder::Float(Float64Builder::new()),
            Kind::Str => ColumnBuilder::Str(StringBuilder::new()),
            Kind::Date => ColumnBuilder::Date(Date32Builder::new()),
            Kind::DateTime => {
                ColumnBuilder::DateTime(TimestampMicrosecondBuilder::new().with_timezone("UTC"))
            }
            Kind::LocalDateTime => ColumnBuilder::LocalDateTime(TimestampMicrosecondBuilder::new()),
            Kind::Bytes => ColumnBuilder::Bytes(BinaryBuilder::new()),
            Kind::Encoded => ColumnBuilder::Encoded(BinaryBuilder::new()),
        }
    }

    fn append_nulls(&mut self, n: usize) {
        if n == 0 {
            return;
        }
        match self {
            ColumnBuilder::Bool(b) => b.append_nulls(n),
            ColumnBuilder::Int(b) => b.append_nulls(n),
            ColumnBuilder::Float(b) => b.append_nulls(n),
            ColumnBuilder::Str(b) => b.append_nulls(n),
            ColumnBuilder::Date(b) => b.append_nulls(n),
            ColumnBuilder::DateTime(b) | ColumnBuilder::LocalDateTime(b) => b.append_nulls(n),
            ColumnBuilder::Bytes(b) | ColumnBuilder::Encoded(b) => b.append_nulls(n),
        }
    }

    fn append(&mut self, v: &Value, scratch: &mut Vec<u8>) -> Result<(), String> {
        match (self, v) {
            (ColumnBuilder::Bool(b), Value::Bool(x)) => b.append_value(*x),
            (ColumnBuilder::Int(b), Value::Int(x)) => b.append_value(*x),
            (ColumnBuilder::Float(b), Value::Float(x)) => b.append_value(*x),
            (ColumnBuilder::Str(b), Value::String(x)) => b.append_value(x),
            (ColumnBuilder::Date(b), Value::Date(x)) => b.append_value(*x),
            (ColumnBuilder::DateTime(b), Value::DateTime(x)) => b.append_value(*x),
            (ColumnBuilder::LocalDateTime(b), Value::LocalDateTime(x)) => b.append_value(*x),
            (ColumnBuilder::Bytes(b), Value::Bytes(x)) => b.append_value(x),
            (ColumnBuilder::Encoded(b), v) if !v.is_null() => {
                scratch.clear();
                encode_value(v, scratch, 0)?;
                b.append_value(&scratch[..]);
            }
            (b, Value::Null) => b.append_nulls(1),
            // Never, given the scan (or the runs a merge reads).
            (_, v) => {
                return Err(format!(
                    "a {} value in a column of another type",
                    v.type_name()
                ));
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> ArrayRef {
        match self {
            ColumnBuilder::Bool(b) => Arc::new(b.finish()),
            ColumnBuilder::Int(b) => Arc::new(b.finish()),
            ColumnBuilder::Float(b) => Arc::new(b.finish()),
            ColumnBuilder::Str(b) => Arc::new(b.finish()),
            ColumnBuilder::Date(b) => Arc::new(b.finish()),
            ColumnBuilder::DateTime(b) | ColumnBuilder::LocalDateTime(b) => Arc::new(b.finish()),
            ColumnBuilder::Bytes(b) | ColumnBuilder::Encoded(b) => Arc::new(b.finish()),
        }
    }
}

// ─── value encoding ─────────────────────────────────────────────────────────────────────────
//
// One tag byte, then: nothing (null, false, true); a zigzag varint (int, date, datetime); the
// 8 little-endian bytes of the float's bits (so -0.0 and every NaN come back bit for bit); a
// varint length and the bytes (string, bytes); a varint count and the items (array), or the
// entries as (varint key length, key, value) (map).

const T_NULL: u8 = 0;
const T_FALSE: u8 = 1;
const T_TRUE: u8 = 2;
const T_INT: u8 = 3;
const T_FLOAT: u8 = 4;
const T_STRING: u8 = 5;
const T_DATE: u8 = 6;
const T_DATETIME: u8 = 7;
const T_BYTES: u8 = 8;
const T_ARRAY: u8 = 9;
const T_MAP: u8 = 10;
const T_LOCAL_DATETIME: u8 = 11;

fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

fn put_zigzag(out: &mut Vec<u8>, n: i64) {
    put_varint(out, ((n << 1) ^ (n >> 63)) as u64);
}

fn encode_value(v: &Value, out: &mut Vec<u8>, depth: usize) -> Result<(), String> {
    if depth > MAX_VALUE_DEPTH {
        return Err(format!(
            "value nested deeper than {MAX_VALUE_DEPTH} levels cannot be spilled"
        ));
    }
    match v {
        Value::Null => out.push(T_NULL),
        Value::Bool(false) => out.push(T_FALSE),
        Value::Bool(true) => out.push(T_TRUE),
        Value::Int(i) => {
            out.push(T_INT);
            put_zigzag(out, *i);
        }
        Value::Float(f) => {
            out.push(T_FLOAT);
            out.extend_from_slice(&f.to_bits().to_le_bytes());
        }
        Value::String(s) => {
            out.push(T_STRING);
            put_varint(out, s.len() as u64);
            out.extend_from_slice(s.as_bytes());
        }
        Value::Date(d) => {
            out.push(T_DATE);
            put_zigzag(out, i64::from(*d));
        }
        Value::DateTime(t) => {
            out.push(T_DATETIME);
            put_zigzag(out, *t);
        }
        Value::LocalDateTime(t) => {
            out.push(T_LOCAL_DATETIME);
            put_zigzag(out, *t);
        }
        Value::Bytes(b) => {
            out.push(T_BYTES);
            put_varint(out, b.len() as u64);
            out.extend_from_slice(b);
        }
        Value::Array(items) => {
            out.push(T_ARRAY);
            put_varint(out, items.len() as u64);
            for item in items.iter() {
                encode_value(item, out, depth + 1)?;
            }
        }
        Value::Map(m) => {
            out.push(T_MAP);
            put_varint(out, m.len() as u64);
            for (k, item) in m.iter() {
                put_varint(out, k.len() as u64);
                out.extend_from_slice(k.as_bytes());
                encode_value(item, out, depth + 1)?;
            }
        }
    }
    Ok(())
}

/// Reads encoded values back; errors are messages (the caller adds the location).
struct Decoder<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Decoder<'a> {
    fn byte(&mut self) -> Result<u8, String> {
        let b = *self
            .bytes
            .get(self.pos)
            .ok_or("encoded value is truncated")?;
        self.pos += 1;
        Ok(b)
    }

    fn varint(&mut self) -> Result<u64, String> {
        let mut n = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            n |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(n);
            }
        }
        Err("encoded value has an overlong varint".to_string())
    }

    fn zigzag(&mut self) -> Result<i64, String> {
        let n = self.varint()?;
        Ok(((n >> 1) as i64) ^ -((n & 1) as i64))
    }

    /// A length or count, each item at least `min` bytes, checked against the bytes left.
    fn len(&mut self, min: usize) -> Result<usize, String> {
        let n = self.varint()?;
        let left = (self.bytes.len() - self.pos) as u64;
        if n.saturating_mul(min as u64) > left {
            return Err("encoded value is truncated".to_string());
        }
        Ok(n as usize)
    }

    fn slice(&mut self) -> Result<&'a [u8], String> {
        let n = self.len(1)?;
        let s = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn string(&mut self) -> Result<String, String> {
        std::str::from_utf8(self.slice()?)
            .map(str::to_string)
            .map_err(|_| "encoded string is not valid utf-8".to_string())
    }

    fn value(&mut self, depth: usize) -> Result<Value, String> {
        if depth > MAX_VALUE_DEPTH {
            return Err(format!(
                "encoded value nests deeper than {MAX_VALUE_DEPTH} levels"
            ));
        }
        Ok(match self.byte()? {
            T_NULL => Value::Null,
            T_FALSE => Value::Bool(false),
            T_TRUE => Value::Bool(true),
            T_INT => Value::Int(self.zigzag()?),
            T_FLOAT => {
                let end = self.pos + 8;
                let b = self
                    .bytes
                    .get(self.pos..end)
                    .ok_or("encoded value is truncated")?;
                self.pos = end;
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                Value::Float(f64::from_bits(u64::from_le_bytes(a)))
            }
            T_STRING => Value::String(self.string()?.into_boxed_str()),
            T_DATE => Value::Date(
                i32::try_from(self.zigzag()?).map_err(|_| "encoded date is out of range")?,
            ),
            T_DATETIME => Value::DateTime(self.zigzag()?),
            T_LOCAL_DATETIME => Value::LocalDateTime(self.zigzag()?),
            T_BYTES => Value::Bytes(self.slice()?.into()),
            T_ARRAY => {
                let n = self.len(1)?;
                let mut items = Vec::with_capacity(n);
                for _ in 0..n {
                    items.push(self.value(depth + 1)?);
                }
                Value::Array(items.into())
            }
            T_MAP => {
                let n = self.len(2)?;
                let mut m = BTreeMap::new();
                for _ in 0..n {
                    let k = self.string()?;
                    m.insert(k, self.value(depth + 1)?);
                }
                Value::Map(Arc::new(m))
            }
            tag => return Err(format!("unknown encoded value tag {tag}")),
        })
    }
}

fn decode_value(bytes: &[u8]) -> Result<Value, String> {
    let mut d = Decoder { bytes, pos: 0 };
    let v = d.value(0)?;
    if d.pos != bytes.len() {
        return Err("encoded value has trailing bytes".to_string());
    }
    Ok(v)
}

// ─── reading ────────────────────────────────────────────────────────────────────────────────

/// Features read back from a [`SpillRun`], in order; yields nothing more after an error.
pub struct SpillReader {
    path: PathBuf,
    batches: ParquetRecordBatchReader,
    /// Per distinct schema: the shared key list and the batch column of each attribute.
    schemas: Vec<(Arc<Schema>, Vec<usize>)>,
    /// Attribute column names and kinds.
    columns: Vec<Arc<str>>,
    kinds: Vec<Kind>,
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

/// One record batch, downcast.
struct Decoded {
    len: usize,
    ids: UInt64Array,
    schema: UInt32Array,
    geometry: BinaryArray,
    crs: UInt32Array,
    columns: Vec<Column>,
}

enum Column {
    Bool(BooleanArray),
    Int(Int64Array),
    Float(Float64Array),
    Str(StringArray),
    Date(Date32Array),
    DateTime(TimestampMicrosecondArray),
    LocalDateTime(TimestampMicrosecondArray),
    Bytes(BinaryArray),
    Encoded(BinaryArray),
}

fn downcast<T: Clone + 'static>(a: &ArrayRef) -> Option<T> {
    a.as_any().downcast_ref::<T>().cloned()
}

impl Column {
    fn new(kind: Kind, a: &ArrayRef) -> Option<Column> {
        Some(match kind {
            Kind::Empty | Kind::Bool => Column::Bool(downcast(a)?),
            Kind::Int => Column::Int(downcast(a)?),
            Kind::Float => Column::Float(downcast(a)?),
            Kind::Str => Column::Str(downcast(a)?),
            Kind::Date => Column::Date(downcast(a)?),
            Kind::DateTime => Column::DateTime(downcast(a)?),
            Kind::LocalDateTime => Column::LocalDateTime(downcast(a)?),
            Kind::Bytes => Column::Bytes(downcast(a)?),
            Kind::Encoded => Column::Encoded(downcast(a)?),
        })
    }

    fn value(&self, r: usize) -> Result<Value, String> {
        macro_rules! get {
            ($a:expr, $v:expr) => {
                if $a.is_null(r) {
                    Value::Null
                } else {
                    $v($a.value(r))
                }
            };
        }
        Ok(match self {
            Column::Bool(a) => get!(a, Value::Bool),
            Column::Int(a) => get!(a, Value::Int),
            Column::Float(a) => get!(a, Value::Float),
            Column::Str(a) => get!(a, |s: &str| Value::String(s.into())),
            Column::Date(a) => get!(a, Value::Date),
            Column::DateTime(a) => get!(a, Value::DateTime),
            Column::LocalDateTime(a) => get!(a, Value::LocalDateTime),
            Column::Bytes(a) => get!(a, |b: &[u8]| Value::Bytes(b.into())),
            Column::Encoded(a) => {
                if a.is_null(r) {
                    Value::Null
                } else {
                    decode_value(a.value(r))?
                }
            }
        })
    }
}

impl SpillReader {
    /// Opens a run; schemas equal (by names) to one in `known` reuse it, new ones are added.
    fn open(path: &Path, known: &mut Vec<Arc<Schema>>) -> Result<SpillReader, ActionError> {
        guarded(path, || SpillReader::open_unguarded(path, known))
    }

    fn open_unguarded(
        path: &Path,
        known: &mut Vec<Arc<Schema>>,
    ) -> Result<SpillReader, ActionError> {
        let file = File::open(path).map_err(|e| io_error("opening", path, e))?;
        let builder = ParquetRecordBatchReaderBuilder::try_new(file)
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
        let kinds = fields[FIXED.len()..]
            .iter()
            .map(|f| match f.data_type() {
                _ if f.metadata().get(ENCODED_KEY).is_some_and(|v| v == "true") => {
                    Ok(Kind::Encoded)
                }
                DataType::Boolean if f.metadata().get(EMPTY_KEY).is_some_and(|v| v == "true") => {
                    Ok(Kind::Empty)
                }
                DataType::Boolean => Ok(Kind::Bool),
                DataType::Int64 => Ok(Kind::Int),
                DataType::Float64 => Ok(Kind::Float),
                DataType::Utf8 => Ok(Kind::Str),
                DataType::Date32 => Ok(Kind::Date),
                DataType::Timestamp(TimeUnit::Microsecond, None) => Ok(Kind::LocalDateTime),
                DataType::Timestamp(TimeUnit::Microsecond, Some(_)) => Ok(Kind::DateTime),
                DataType::Binary => Ok(Kind::Bytes),
                other => Err(corrupt(
                    path,
                    None,
                    format!("unexpected column type {other}"),
                )),
            })
            .collect::<Result<Vec<_>, _>>()?;
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
        let batches = builder
            .with_batch_size(READ_ROWS)
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
            done: 0,
            failed: false,
        })
    }

    fn decode(&self, rb: &RecordBatch) -> Result<Decoded, ActionError> {
        let bad = || corrupt(&self.path, Some(self.done), "column has an unexpected type");
        let cols = rb.columns();
        let columns = cols[FIXED.len()..]
            .iter()
            .zip(&self.kinds)
            .map(|(a, k)| Column::new(*k, a).ok_or_else(bad))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Decoded {
            len: rb.num_rows(),
            ids: downcast(&cols[0]).ok_or_else(bad)?,
            schema: downcast(&cols[1]).ok_or_else(bad)?,
            geometry: downcast(&cols[2]).ok_or_else(bad)?,
            crs: downcast(&cols[3]).ok_or_else(bad)?,
            columns,
        })
    }

    fn feature(&self, b: &Decoded, r: usize) -> Result<Feature, ActionError> {
        let bad = |m: String| corrupt(&self.path, Some(self.done), m);
        let s = b.schema.value(r) as usize;
        let (schema, cols) = self
            .schemas
            .get(s)
            .ok_or_else(|| bad(format!("schema index {s} is out of range")))?;
        // A plain loop: collecting `Result`s gives no size hint, and the regrowth showed up
        // in the `spill` bench.
        let mut values = Vec::with_capacity(cols.len());
        for &c in cols {
            values.push(b.columns[c].value(r).map_err(bad)?);
        }
        let geometry = if b.geometry.is_null(r) {
            None
        } else {
            let geom = wkb::from_wkb(b.geometry.value(r)).map_err(|e| bad(e.to_string()))?;
            let crs = (!b.crs.is_null(r)).then(|| b.crs.value(r));
            Some(Geometry { geom, crs })
        };
        Ok(Feature::new(b.ids.value(r), schema.clone(), values).with_geometry(geometry))
    }
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
                let out = self.feature(b, self.row);
                self.row += 1;
                self.done += 1;
                self.failed = out.is_err();
                return Some(out);
            }
            self.batch = None;
            let decoded = match guarded(&self.path, || Ok(self.batches.next())) {
                Ok(None) => return None,
                Ok(Some(Ok(rb))) => self.decode(&rb),
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

// ─── merging ────────────────────────────────────────────────────────────────────────────────

/// K-way merge of sorted runs and one in-memory sorted tail, by `cmp`, in one pass.
///
/// Ties go to the earlier source: run 0, then run 1, …, then the tail. So when the runs are
/// consecutive slices of the input, each stably sorted, and the tail is the last slice, the
/// output is the stable sort of the whole input. Each run is read one page at a time and
/// deleted as soon as it is exhausted. Opening a run or reading its first feature can fail
/// here; later failures come out of the iterator (which then stops).
///
/// Every run is open at once, and nothing is reserved: accumulators use [`merge_bounded`],
/// which merges within the budget.
pub fn merge<F>(
    runs: Vec<SpillRun>,
    tail: Vec<Feature>,
    cmp: F,
) -> Result<MergeIter<F>, ActionError>
where
    F: FnMut(&Feature, &Feature) -> Ordering,
{
    // Readers share schemas with each other and with the tail, so equal key lists come out
    // as one Arc (processors downstream cache by pointer).
    let mut known: Vec<Arc<Schema>> = Vec::new();
    for f in &tail {
        if !known.iter().any(|k| Arc::ptr_eq(k, f.schema()))
            && !known.iter().any(|k| k == f.schema())
        {
            known.push(f.schema().clone());
        }
    }
    let mut sources = Vec::with_capacity(runs.len() + 1);
    for run in runs {
        let reader = SpillReader::open(&run.path, &mut known)?;
        sources.push(MergeSource::Run(Some(Box::new((reader, run)))));
    }
    sources.push(MergeSource::Tail(tail.into_iter()));
    let mut it = MergeIter {
        heads: Vec::with_capacity(sources.len()),
        sources,
        heap: Vec::new(),
        cmp,
        failed: false,
        reservation: None,
    };
    for i in 0..it.sources.len() {
        let head = it.sources[i].next()?;
        if head.is_some() {
            it.heap.push(i);
        }
        it.heads.push(head);
    }
    for i in (0..it.heap.len() / 2).rev() {
        sift_down(&mut it.heap, &it.heads, &mut it.cmp, i);
    }
    Ok(it)
}

/// Where a bounded merge gets its memory and writes its intermediate runs.
#[derive(Clone, Copy, Debug)]
pub struct MergeSpace<'a> {
    /// The run's budget; the merge reserves its read and write buffers from it.
    pub budget: &'a MemoryBudget,
    /// Where intermediate runs go.
    pub dir: &'a SpillDir,
    /// The consumer (node id) the reservation and the files are named after.
    pub name: &'a str,
}

/// [`merge`] within the budget: a multi-level merge whose fan-in is what the budget allows.
///
/// Each open run costs [`SpillRun::open_cost`]; writing a merged run costs
/// [`SpillRun::write_cost`]. When the budget cannot hold every run open at once, groups of
/// consecutive runs are first merged into bigger runs (as few as it takes to bring the count
/// down to the fan-in; each pass reads every run at most once), so ties still go to the
/// earlier run and a stable sort stays stable. The final merge takes at most half of what
/// is free (the consumer keeps the rest for what it holds while merging) and holds its
/// reservation until the iterator is exhausted or dropped; the intermediate ones give theirs
/// back when done.
///
/// The tail is the caller's: it is held (and reserved, or not) by the caller, and joins only
/// the final merge. The fan-in is never below 2, so a budget too small even for that is
/// exceeded by at most two open runs and one writer (the run's minimum limit covers that).
pub fn merge_bounded<F>(
    space: MergeSpace<'_>,
    mut runs: Vec<SpillRun>,
    tail: Vec<Feature>,
    mut cmp: F,
) -> Result<MergeIter<F>, ActionError>
where
    F: FnMut(&Feature, &Feature) -> Ordering,
{
    let mut reservation = space.budget.register(space.name);
    loop {
        let available = space.budget.available();
        let all: usize = runs.iter().map(SpillRun::open_cost).sum();
        // The final merge leaves half of what is free to the consumer, which goes on holding
        // (and spilling) what it makes of the merged features.
        let final_fan_in = fan_in(&runs, available / 2, false);
        if final_fan_in >= runs.len() {
            // Best effort below a fan-in of 2: the minimum limit makes room for that.
            let _ = reservation.try_grow(all.min(available / 2));
            break;
        }
        // An intermediate pass has the consumer's half too, less a writer.
        let group = fan_in(&runs, available, true);
        let per_run = runs.iter().map(SpillRun::open_cost).max().unwrap_or(0);
        let write = runs.iter().map(SpillRun::write_cost).max().unwrap_or(0);
        let _ = reservation.try_grow((per_run * group + write).min(available));
        runs = merge_pass(space, runs, group, final_fan_in, &mut cmp)?;
        reservation.free();
    }
    let mut it = merge(runs, tail, cmp)?;
    it.reservation = Some(reservation);
    Ok(it)
}

/// How many runs `bytes` can hold open at once (at least 2), leaving room for the writer of
/// the merged run when `writing`.
fn fan_in(runs: &[SpillRun], bytes: usize, writing: bool) -> usize {
    let per_run = runs
        .iter()
        .map(SpillRun::open_cost)
        .max()
        .unwrap_or(1)
        .max(1);
    let write = if writing {
        runs.iter().map(SpillRun::write_cost).max().unwrap_or(0)
    } else {
        0
    };
    (bytes.saturating_sub(write) / per_run).max(2)
}

/// One pass: merges the first groups of `fan_in` consecutive runs, as many as it takes to
/// leave at most `target` runs (or, when that is more than one pass can do, every group).
fn merge_pass<F>(
    space: MergeSpace<'_>,
    runs: Vec<SpillRun>,
    fan_in: usize,
    target: usize,
    cmp: &mut F,
) -> Result<Vec<SpillRun>, ActionError>
where
    F: FnMut(&Feature, &Feature) -> Ordering,
{
    let merges = runs
        .len()
        .saturating_sub(target)
        .div_ceil(fan_in - 1)
        .max(1);
    let mut out = Vec::with_capacity(runs.len());
    let mut rest = runs.into_iter();
    for _ in 0..merges {
        let group: Vec<SpillRun> = rest.by_ref().take(fan_in).collect();
        if group.len() < 2 {
            out.extend(group);
            break;
        }
        out.push(merge_into_run(space, group, cmp)?);
    }
    out.extend(rest);
    Ok(out)
}

/// Merges `group` into one new run (its columns the union of theirs), deleting each as it is
/// exhausted.
fn merge_into_run<F>(
    space: MergeSpace<'_>,
    group: Vec<SpillRun>,
    cmp: &mut F,
) -> Result<SpillRun, ActionError>
where
    F: FnMut(&Feature, &Feature) -> Ordering,
{
    let path = space.dir.new_path(&format!("{}-merged", space.name))?;
    let written = (|| {
        let merged = merge(group, Vec::new(), &mut *cmp)?;
        let (columns, kinds) = merged.columns();
        let mut writer = RunWriter::create(&path, columns, kinds)?;
        for f in merged {
            writer.push(f?)?;
        }
        writer.finish()
    })();
    match written {
        Ok(w) => {
            space.dir.record(w.bytes);
            Ok(w.into_run(path))
        }
        Err(e) => {
            let _ = std::fs::remove_file(&path);
            Err(e)
        }
    }
}

/// The iterator [`merge`] and [`merge_bounded`] return.
pub struct MergeIter<F> {
    sources: Vec<MergeSource>,
    /// The next feature of each source.
    heads: Vec<Option<Feature>>,
    /// Min-heap of the sources that still have a head.
    heap: Vec<usize>,
    cmp: F,
    failed: bool,
    /// The bytes of the open runs ([`merge_bounded`]); freed when the merge ends.
    reservation: Option<Reservation>,
}

impl<F> MergeIter<F> {
    /// The union of the open runs' attribute columns (first-seen order) and their kinds.
    fn columns(&self) -> (Vec<Arc<str>>, Vec<Kind>) {
        let mut columns: Vec<Arc<str>> = Vec::new();
        let mut kinds: Vec<Kind> = Vec::new();
        let mut column_of: HashMap<Arc<str>, usize> = HashMap::new();
        for s in &self.sources {
            let MergeSource::Run(Some(open)) = s else {
                continue;
            };
            for (name, kind) in open.0.columns.iter().zip(&open.0.kinds) {
                match column_of.get(name) {
                    Some(&c) => kinds[c] = kinds[c].join(*kind),
                    None => {
                        column_of.insert(name.clone(), columns.len());
                        columns.push(name.clone());
                        kinds.push(*kind);
                    }
                }
            }
        }
        (columns, kinds)
    }

    /// Bytes reserved for the merge now (0 for [`merge`]).
    pub fn reserved(&self) -> usize {
        self.reservation.as_ref().map_or(0, Reservation::size)
    }
}

impl<F> std::fmt::Debug for MergeIter<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MergeIter")
            .field("sources", &self.sources.len())
            .field("live", &self.heap.len())
            .finish_non_exhaustive()
    }
}

enum MergeSource {
    /// A run and its reader; `None` once exhausted (the file is deleted then).
    Run(Option<Box<(SpillReader, SpillRun)>>),
    Tail(std::vec::IntoIter<Feature>),
}

impl MergeSource {
    fn next(&mut self) -> Result<Option<Feature>, ActionError> {
        match self {
            MergeSource::Tail(t) => Ok(t.next()),
            MergeSource::Run(slot) => {
                let Some(open) = slot else {
                    return Ok(None);
                };
                match open.0.next() {
                    Some(r) => r.map(Some),
                    None => {
                        *slot = None;
                        Ok(None)
                    }
                }
            }
        }
    }
}

/// Whether source `a`'s head comes before source `b`'s: by `cmp`, then by source order.
fn before<F>(heads: &[Option<Feature>], cmp: &mut F, a: usize, b: usize) -> bool
where
    F: FnMut(&Feature, &Feature) -> Ordering,
{
    let o = match (&heads[a], &heads[b]) {
        (Some(x), Some(y)) => cmp(x, y),
        _ => Ordering::Equal,
    };
    o.then(a.cmp(&b)) == Ordering::Less
}

fn sift_down<F>(heap: &mut [usize], heads: &[Option<Feature>], cmp: &mut F, mut i: usize)
where
    F: FnMut(&Feature, &Feature) -> Ordering,
{
    loop {
        let (l, r) = (2 * i + 1, 2 * i + 2);
        let mut best = i;
        if l < heap.len() && before(heads, cmp, heap[l], heap[best]) {
            best = l;
        }
        if r < heap.len() && before(heads, cmp, heap[r], heap[best]) {
            best = r;
        }
        if best == i {
            return;
        }
        heap.swap(i, best);
        i = best;
    }
}

impl<F> Iterator for MergeIter<F>
where
    F: FnMut(&Feature, &Feature) -> Ordering,
{
    type Item = Result<Feature, ActionError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        let Some(&top) = self.heap.first() else {
            // Exhausted: the runs are closed, their bytes go back.
            self.reservation = None;
            return None;
        };
        let out = self.heads[top].take()?;
        match self.sources[top].next() {
            Ok(Some(f)) => self.heads[top] = Some(f),
            Ok(None) => {
                self.heap.swap_remove(0);
            }
            Err(e) => {
                self.failed = true;
                return Some(Err(e));
            }
        }
        sift_down(&mut self.heap, &self.heads, &mut self.cmp, 0);
        Some(Ok(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo_types::{line_string, point, polygon};
    use proptest::prelude::*;

    fn spill_dir() -> (tempfile::TempDir, SpillDir) {
        let base = tempfile::tempdir().unwrap();
        let dir = SpillDir::new(base.path());
        (base, dir)
    }

    /// Value equality that holds for NaN and tells -0.0 from 0.0.
    fn same(a: &Value, b: &Value) -> bool {
        match (a, b) {
            (Value::Float(x), Value::Float(y)) => {
                x.to_bits() == y.to_bits() || (x.is_nan() && y.is_nan())
            }
            (Value::Array(x), Value::Array(y)) => {
                x.len() == y.len() && x.iter().zip(y.iter()).all(|(a, b)| same(a, b))
            }
            (Value::Map(x), Value::Map(y)) => {
                x.len() == y.len()
                    && x.iter()
                        .zip(y.iter())
                        .all(|((ka, a), (kb, b))| ka == kb && same(a, b))
            }
            _ => a == b,
        }
    }

    fn assert_same_features(got: &[Feature], want: &[Feature]) {
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            assert_eq!(g.id(), w.id());
            assert_eq!(g.schema().names(), w.schema().names(), "feature {}", w.id());
            for ((name, a), b) in w.attributes().zip(g.values()) {
                assert!(
                    same(a, b),
                    "feature {} {name}: wrote {a:?}, read {b:?}",
                    w.id()
                );
            }
            assert_eq!(g.geometry(), w.geometry(), "feature {}", w.id());
        }
    }

    fn read_all(run: &SpillRun) -> Vec<Feature> {
        run.read().unwrap().map(Result::unwrap).collect()
    }

    fn map(pairs: &[(&str, Value)]) -> Value {
        Value::Map(Arc::new(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        ))
    }

    /// One value of every variant, with the awkward corners.
    fn every_value() -> Vec<Value> {
        use Value::*;
        vec![
            Null,
            Bool(true),
            Bool(false),
            Int(i64::MIN),
            Int(-1),
            Int(i64::MAX),
            Float(-0.0),
            Float(f64::NAN),
            Float(f64::NEG_INFINITY),
            Float(1.5),
            String("".into()),
            String("héllo, wörld".into()),
            Date(-719_162),
            Date(i32::MAX),
            DateTime(i64::MIN),
            DateTime(1_700_000_000_123_456),
            LocalDateTime(-1),
            LocalDateTime(1_700_000_000_123_456),
            Bytes(Box::new([])),
            Bytes(Box::new([0, 255, 7])),
            Array(Arc::new([])),
            Array(Arc::new([
                Int(1),
                "a".into(),
                Array(Arc::new([Null, Float(-0.0)])),
            ])),
            map(&[]),
            map(&[("a", Int(1)), ("b", map(&[("c", Float(f64::NAN))]))]),
        ]
    }

    fn geometries() -> Vec<Option<Geometry>> {
        vec![
            None,
            Some(Geometry {
                geom: point!(x: 1.0, y: -2.0).into(),
                crs: Some(4326),
            }),
            Some(Geometry::new(
                line_string![(x: 0.0, y: 0.0), (x: 1.0, y: 1.0)].into(),
            )),
            Some(Geometry {
                geom: polygon![(x: 0.0, y: 0.0), (x: 4.0, y: 0.0), (x: 4.0, y: 4.0)].into(),
                crs: Some(2154),
            }),
        ]
    }

    /// Several schemas (one typed, one reordered with mixed columns, one empty, and per-row
    /// key lists), missing attributes, every value variant, with and without geometry.
    fn mixed_features() -> Vec<Feature> {
        use Value::*;
        let typed = Schema::new(["i", "f", "s", "b", "d", "t", "bytes", "all_null"]);
        let other = Schema::new(["mixed", "s", "nested", "__id"]);
        let empty = Schema::empty();
        let geoms = geometries();
        let mut out = Vec::new();
        for (k, v) in every_value().into_iter().enumerate() {
            let id = 10 * k as u64;
            let typed_values = if k % 4 == 0 {
                vec![]
            } else {
                vec![
                    Int(k as i64 - 5),
                    Float([0.25 * k as f64, -0.0, f64::NAN][k % 3]),
                    format!("s{k}").into(),
                    Bool(k % 2 == 0),
                    Date(k as i32 - 3),
                    DateTime(k as i64 * 1_000_001),
                    Bytes(vec![k as u8; k].into()),
                ]
            };
            let g = geoms[k % geoms.len()].clone();
            out.push(Feature::new(id, typed.clone(), typed_values).with_geometry(g));
            let nested = Array(Arc::new([v.clone()]));
            out.push(Feature::new(
                id + 1,
                other.clone(),
                vec![v, format!("o{k}").into(), nested, Null],
            ));
            out.push(Feature::new(id + 2, empty.clone(), vec![]).with_geometry(geoms[3].clone()));
            out.push(Feature::from_pairs(
                id + 3,
                [("s", Value::from("own")), ("extra", Float(0.5))],
            ));
        }
        out
    }

    #[test]
    fn mixed_features_round_trip() {
        let (_base, dir) = spill_dir();
        let want = mixed_features();
        let run = write_run(&dir, "sort", want.clone()).unwrap();
        assert_eq!(run.rows, want.len() as u64);
        assert_eq!(std::fs::metadata(&run.path).unwrap().len(), run.bytes);
        assert_eq!(dir.totals(), (1, run.bytes));
        assert_same_features(&read_all(&run), &want);
    }

    #[test]
    fn columns_are_typed_and_mixed_ones_encoded() {
        let (_base, dir) = spill_dir();
        let run = write_run(&dir, "sort", mixed_features()).unwrap();
        let file = File::open(&run.path).unwrap();
        let builder = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
        let fields = builder.schema().fields();
        let find = |name: &str| {
            fields
                .iter()
                .find(|f| f.metadata().get(NAME_KEY).map(String::as_str) == Some(name))
                .unwrap()
        };
        assert_eq!(find("i").data_type(), &DataType::Int64);
        assert_eq!(find("f").data_type(), &DataType::Float64);
        assert_eq!(find("s").data_type(), &DataType::Utf8);
        assert_eq!(find("b").data_type(), &DataType::Boolean);
        assert_eq!(find("d").data_type(), &DataType::Date32);
        assert_eq!(find("t").data_type(), &Kind::DateTime.data_type());
        assert_eq!(find("bytes").data_type(), &DataType::Binary);
        assert!(find("bytes").metadata().get(ENCODED_KEY).is_none());
        assert_eq!(find("mixed").metadata().get(ENCODED_KEY).unwrap(), "true");
        assert_eq!(find("nested").metadata().get(ENCODED_KEY).unwrap(), "true");
        assert_eq!(find("extra").data_type(), &DataType::Float64);
        assert_eq!(find("all_null").data_type(), &DataType::Boolean);
        assert_eq!(find("__id").name(), "___id");
        let names: Vec<&str> = fields.iter().map(|f| f.name().as_str()).collect();
        assert_eq!(&names[..4], &FIXED);
        assert_eq!(
            builder.metadata().row_groups()[0].column(0).compression(),
            Compression::SNAPPY
        );
    }

    #[test]
    fn features_of_one_schema_share_one_arc_when_read() {
        let (_base, dir) = spill_dir();
        let run = write_run(&dir, "sort", mixed_features()).unwrap();
        let got = read_all(&run);
        let with = |names: &[&str]| -> Vec<&Arc<Schema>> {
            got.iter()
                .map(Feature::schema)
                .filter(|s| s.names().iter().map(|n| &**n).eq(names.iter().copied()))
                .collect()
        };
        let own = with(&["s", "extra"]);
        assert_eq!(own.len(), every_value().len());
        assert!(own.iter().all(|s| Arc::ptr_eq(s, own[0])));
        let empty = with(&[]);
        assert!(empty.iter().all(|s| Arc::ptr_eq(s, empty[0])));
        assert!(!Arc::ptr_eq(own[0], empty[0]));
    }

    #[test]
    fn row_groups_are_bounded_and_runs_merge_across_them() {
        let (_base, dir) = spill_dir();
        let schema = Schema::new(["k"]);
        let make = |ids: std::ops::Range<u64>| -> Vec<Feature> {
            ids.map(|i| Feature::new(i, schema.clone(), vec![Value::Int((i % 1000) as i64)]))
                .collect()
        };
        let by_key = |a: &Feature, b: &Feature| a.values()[0].total_cmp(&b.values()[0]);
        let mut parts = vec![make(0..20_000), make(20_000..30_000), make(30_000..30_500)];
        for p in &mut parts {
            p.sort_by(by_key);
        }
        let mut all: Vec<Feature> = parts.concat();
        all.sort_by(by_key);
        let tail = parts.pop().unwrap();
        let runs: Vec<SpillRun> = parts
            .into_iter()
            .map(|p| write_run(&dir, "big", p).unwrap())
            .collect();
        let file = File::open(&runs[0].path).unwrap();
        let meta = ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .metadata()
            .clone();
        let sizes: Vec<i64> = meta.row_groups().iter().map(|g| g.num_rows()).collect();
        assert_eq!(sizes, vec![8192, 8192, 20_000 - 2 * 8192]);
        let merged: Vec<u64> = merge(runs, tail, by_key)
            .unwrap()
            .map(|f| f.unwrap().id())
            .collect();
        assert_eq!(merged, all.iter().map(Feature::id).collect::<Vec<_>>());
    }

    #[test]
    fn sparse_attributes_round_trip() {
        // Every feature has its own extra attribute: 300 schemas, 301 columns, mostly null.
        let (_base, dir) = spill_dir();
        let want: Vec<Feature> = (0..300u64)
            .map(|i| {
                let own = format!("a{i}");
                let pairs = [
                    ("k", Value::Int(i as i64)),
                    (own.as_str(), Value::from("x")),
                ];
                Feature::from_pairs(
                    i,
                    if i % 2 == 0 {
                        pairs
                    } else {
                        [pairs[1].clone(), pairs[0].clone()]
                    },
                )
            })
            .collect();
        let run = write_run(&dir, "sparse", want.clone()).unwrap();
        assert_same_features(&read_all(&run), &want);
    }

    #[test]
    fn empty_run_round_trips() {
        let (_base, dir) = spill_dir();
        let run = write_run(&dir, "empty", Vec::new()).unwrap();
        assert_eq!(run.rows, 0);
        assert_eq!(read_all(&run).len(), 0);
    }

    fn key_of(f: &Feature) -> &Value {
        &f.values()[0]
    }

    #[test]
    fn merge_keeps_ties_in_run_order_with_the_tail_last() {
        let (_base, dir) = spill_dir();
        let schema = Schema::new(["k"]);
        let f = |id, k| Feature::new(id, schema.clone(), vec![Value::Int(k)]);
        let runs = vec![
            write_run(&dir, "t", vec![f(0, 1), f(1, 2)]).unwrap(),
            write_run(&dir, "t", vec![f(2, 1), f(3, 2)]).unwrap(),
        ];
        let tail = vec![f(4, 1), f(5, 1), f(6, 2)];
        let ids: Vec<u64> = merge(runs, tail, |a, b| key_of(a).total_cmp(key_of(b)))
            .unwrap()
            .map(|f| f.unwrap().id())
            .collect();
        assert_eq!(ids, vec![0, 2, 4, 5, 1, 3, 6]);
    }

    /// `n` sorted runs of random keys (and the stable sort of all of them).
    fn sorted_runs(dir: &SpillDir, n: usize, per_run: usize) -> (Vec<SpillRun>, Vec<u64>) {
        let schema = Schema::new(["k", "s"]);
        let by_key = |a: &Feature, b: &Feature| key_of(a).total_cmp(key_of(b));
        let mut all = Vec::new();
        let mut runs = Vec::new();
        let mut x = 7u64;
        for r in 0..n {
            let mut part: Vec<Feature> = (0..per_run)
                .map(|i| {
                    x = x
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    let id = (r * per_run + i) as u64;
                    let k = Value::Int((x >> 58) as i64);
                    Feature::new(id, schema.clone(), vec![k, format!("v{id}").into()])
                })
                .collect();
            all.extend(part.iter().cloned());
            part.sort_by(by_key);
            runs.push(write_run(dir, "m", part).unwrap());
        }
        all.sort_by(by_key);
        (runs, all.iter().map(Feature::id).collect())
    }

    #[test]
    fn bounded_merge_of_many_runs_with_a_tiny_fan_in_equals_a_stable_sort() {
        let (_base, dir) = spill_dir();
        let (runs, want) = sorted_runs(&dir, 23, 300);
        let per_run = runs[0].open_cost();
        let write = runs[0].write_cost();
        // Room for three open runs and a writer: fan-in 3, so several levels.
        let budget = MemoryBudget::new(3 * per_run + write + per_run / 2);
        let space = MergeSpace {
            budget: &budget,
            dir: &dir,
            name: "sort",
        };
        let by_key = |a: &Feature, b: &Feature| key_of(a).total_cmp(key_of(b));
        let merged = merge_bounded(space, runs, Vec::new(), by_key).unwrap();
        // Fewer runs are open than were written, within the budget.
        assert!(merged.sources.len() < 23, "{merged:?}");
        assert!(merged.reserved() > 0 && merged.reserved() <= budget.limit());
        assert!(budget.peak() <= budget.limit());
        let got: Vec<u64> = merged.map(|f| f.unwrap().id()).collect();
        assert_eq!(got, want);
        // Intermediate runs were written, and every byte and file went back.
        assert!(dir.totals().0 > 23, "{:?}", dir.totals());
        assert_eq!(budget.reserved(), 0);
        assert_eq!(std::fs::read_dir(dir.path().unwrap()).unwrap().count(), 0);
    }

    #[test]
    fn bounded_merge_with_room_for_all_runs_is_one_pass_and_returns_its_bytes_when_dropped() {
        let (_base, dir) = spill_dir();
        let (runs, want) = sorted_runs(&dir, 5, 100);
        let budget = MemoryBudget::new(64 << 20);
        let space = MergeSpace {
            budget: &budget,
            dir: &dir,
            name: "sort",
        };
        let by_key = |a: &Feature, b: &Feature| key_of(a).total_cmp(key_of(b));
        let cost: usize = runs.iter().map(SpillRun::open_cost).sum();
        let mut merged = merge_bounded(space, runs, Vec::new(), by_key).unwrap();
        assert_eq!(dir.totals().0, 5, "no intermediate run");
        assert_eq!(budget.reserved_by("sort"), cost);
        assert_eq!(merged.next().unwrap().unwrap().id(), want[0]);
        drop(merged);
        assert_eq!(budget.reserved(), 0);
    }

    #[test]
    fn intermediate_runs_keep_every_value_across_runs_of_different_columns() {
        // Runs whose columns differ in names, order and type (int in one, float in another,
        // only nulls in a third), merged through intermediate runs with a fan-in of 2.
        let (_base, dir) = spill_dir();
        let mixed = mixed_features();
        let by_id = |a: &Feature, b: &Feature| a.id().cmp(&b.id());
        let mut want = Vec::new();
        let mut runs = Vec::new();
        for (r, chunk) in mixed.chunks(7).enumerate() {
            let mut part: Vec<Feature> = chunk.to_vec();
            part.push(Feature::from_pairs(
                10_000 + r as u64,
                [(
                    "x",
                    match r % 3 {
                        0 => Value::Int(r as i64),
                        1 => Value::Float(r as f64 + 0.5),
                        _ => Value::Null,
                    },
                )],
            ));
            part.sort_by(by_id);
            want.extend(part.iter().cloned());
            runs.push(write_run(&dir, "m", part).unwrap());
        }
        want.sort_by(by_id);
        let budget = MemoryBudget::new(1);
        let space = MergeSpace {
            budget: &budget,
            dir: &dir,
            name: "dedup",
        };
        let n = runs.len();
        let got: Vec<Feature> = merge_bounded(space, runs, Vec::new(), by_id)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert!(dir.totals().0 as usize >= 2 * n - 2, "{:?}", dir.totals());
        assert_same_features(&got, &want);
        assert_eq!(budget.reserved(), 0);
    }

    #[test]
    fn merged_features_share_schemas_with_the_tail() {
        let (_base, dir) = spill_dir();
        let schema = Schema::new(["k"]);
        let f = |id, k| Feature::new(id, schema.clone(), vec![Value::Int(k)]);
        let runs = vec![write_run(&dir, "t", vec![f(0, 1)]).unwrap()];
        let out: Vec<Feature> = merge(runs, vec![f(1, 2)], |a, b| key_of(a).total_cmp(key_of(b)))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert!(out.iter().all(|g| Arc::ptr_eq(g.schema(), &schema)));
    }

    #[test]
    fn run_file_goes_on_drop_and_folder_with_the_dir() {
        let (_base, dir) = spill_dir();
        let run = write_run(&dir, "sort", mixed_features()).unwrap();
        let path = run.path.clone();
        let folder = dir.path().unwrap();
        assert!(path.exists());
        drop(run);
        assert!(!path.exists());
        let runs = vec![write_run(&dir, "a", mixed_features()).unwrap()];
        let run_path = runs[0].path.clone();
        let mut merged = merge(runs, Vec::new(), |a, b| a.id().cmp(&b.id())).unwrap();
        assert!(run_path.exists());
        for f in merged.by_ref() {
            f.unwrap();
        }
        assert!(
            !run_path.exists(),
            "an exhausted run is deleted before the merge ends"
        );
        drop(dir);
        assert!(!folder.exists());
    }

    #[test]
    fn unwritable_spill_folder_gives_an_io_error_naming_the_file() {
        let (_base, dir) = spill_dir();
        let folder = dir
            .new_path("probe")
            .unwrap()
            .parent()
            .unwrap()
            .to_path_buf();
        std::fs::remove_dir_all(&folder).unwrap();
        std::fs::write(&folder, b"not a folder").unwrap();
        let err = write_run(&dir, "sort", vec![Feature::empty(1)]).unwrap_err();
        let ActionError::Io { context, .. } = &err else {
            panic!("{err:?}")
        };
        assert!(
            context.contains(&*folder.join("sort-1.parquet").to_string_lossy()),
            "{context}"
        );
    }

    #[test]
    fn spill_base_that_is_a_file_gives_an_io_error_naming_it() {
        let base = tempfile::tempdir().unwrap();
        let file = base.path().join("file");
        std::fs::write(&file, b"x").unwrap();
        let dir = SpillDir::new(file.join("spill"));
        let err = write_run(&dir, "sort", vec![Feature::empty(1)]).unwrap_err();
        let ActionError::Io { context, .. } = &err else {
            panic!("{err:?}")
        };
        assert!(context.contains(&*file.to_string_lossy()), "{context}");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn full_disk_gives_an_io_error_naming_the_file() {
        let full = Path::new("/dev/full");
        if !full.exists() {
            return;
        }
        // `write_file` (unlike `write_run`) never removes what it wrote to.
        let err = write_file(full, mixed_features()).unwrap_err();
        let ActionError::Io { context, source } = &err else {
            panic!("{err:?}")
        };
        assert!(context.contains("/dev/full"), "{context}");
        assert_eq!(source.kind(), std::io::ErrorKind::StorageFull, "{source}");
    }

    #[test]
    fn damaged_files_give_errors_not_panics() {
        let (_base, dir) = spill_dir();
        let run = write_run(&dir, "sort", mixed_features()).unwrap();
        let bytes = std::fs::read(&run.path).unwrap();
        // A truncated file always fails (its footer is gone), with an error naming it.
        for cut in (0..bytes.len()).step_by(97) {
            std::fs::write(&run.path, &bytes[..cut]).unwrap();
            let err = match run.read() {
                Ok(reader) => reader.filter_map(Result::err).next().unwrap(),
                Err(e) => e,
            };
            assert!(err.to_string().contains("spill file"), "{err}");
        }
        std::fs::write(&run.path, b"definitely not parquet").unwrap();
        let err = run.read().unwrap_err();
        assert!(
            err.to_string().contains(&*run.path.to_string_lossy()),
            "{err}"
        );
        // Flipped bytes may go unnoticed (a changed value), but must never panic.
        for at in (4..bytes.len() - 8).step_by(13) {
            let mut b = bytes.clone();
            b[at] ^= 0x5a;
            std::fs::write(&run.path, &b).unwrap();
            if let Ok(reader) = run.read() {
                let _ = reader.count();
            }
        }
    }

    #[test]
    fn too_deep_a_value_is_refused_when_spilled() {
        let (_base, dir) = spill_dir();
        let mut v = Value::Int(1);
        for _ in 0..MAX_VALUE_DEPTH + 2 {
            v = Value::Array(Arc::new([v]));
        }
        let err = write_run(&dir, "deep", vec![Feature::from_pairs(1, [("a", v)])]).unwrap_err();
        assert!(err.to_string().contains("nested deeper"), "{err}");
        assert_eq!(std::fs::read_dir(dir.path().unwrap()).unwrap().count(), 0);
    }

    #[test]
    fn encoded_values_round_trip_and_truncations_fail() {
        for v in every_value() {
            let mut buf = Vec::new();
            encode_value(&v, &mut buf, 0).unwrap();
            assert!(same(&decode_value(&buf).unwrap(), &v), "{v:?}");
            for cut in 0..buf.len() {
                assert!(decode_value(&buf[..cut]).is_err(), "{v:?} cut at {cut}");
            }
        }
    }

    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::Int),
            any::<f64>().prop_map(Value::Float),
            ".{0,6}".prop_map(Value::from),
            any::<i32>().prop_map(Value::Date),
            any::<i64>().prop_map(Value::DateTime),
            any::<i64>().prop_map(Value::LocalDateTime),
            prop::collection::vec(any::<u8>(), 0..6).prop_map(|b| Value::Bytes(b.into())),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(|v| Value::Array(v.into())),
                prop::collection::btree_map(".{0,4}", inner, 0..4)
                    .prop_map(|m| Value::Map(Arc::new(m))),
            ]
        })
    }

    /// Features over a small pool of attribute names, in random orders and subsets.
    fn feature() -> impl Strategy<Value = Feature> {
        let names = prop::sample::subsequence(vec!["a", "b", "c", "d"], 0..=4).prop_shuffle();
        (
            names,
            prop::collection::vec(value(), 4),
            any::<Option<(f64, f64, Option<u32>)>>(),
        )
            .prop_map(|(names, values, g)| {
                let f = Feature::from_pairs(0, names.into_iter().zip(values));
                f.with_geometry(g.map(|(x, y, crs)| Geometry {
                    geom: point!(x: x, y: y).into(),
                    crs,
                }))
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

        #[test]
        fn random_values_encode_and_decode(v in value()) {
            let mut buf = Vec::new();
            encode_value(&v, &mut buf, 0).unwrap();
            prop_assert!(same(&decode_value(&buf).unwrap(), &v));
        }

        #[test]
        fn random_bytes_never_panic_the_decoder(bytes in prop::collection::vec(any::<u8>(), 0..48)) {
            let _ = decode_value(&bytes);
        }

        #[test]
        fn random_features_round_trip(mut fs in prop::collection::vec(feature(), 0..30)) {
            for (i, f) in fs.iter_mut().enumerate() {
                f.set_id(i as u64);
            }
            let (_base, dir) = spill_dir();
            let run = write_run(&dir, "p", fs.clone()).unwrap();
            assert_same_features(&read_all(&run), &fs);
        }

        #[test]
        fn merge_equals_a_stable_sort(parts in prop::collection::vec(prop::collection::vec(0i64..5, 0..30), 6)) {
            let (_base, dir) = spill_dir();
            let schema = Schema::new(["k"]);
            let by_key = |a: &Feature, b: &Feature| key_of(a).total_cmp(key_of(b));
            let mut next = 0;
            let mut all = Vec::new();
            let mut sorted_parts = Vec::new();
            for keys in parts {
                let mut part: Vec<Feature> = keys
                    .into_iter()
                    .map(|k| {
                        next += 1;
                        Feature::new(next, schema.clone(), vec![Value::Int(k)])
                    })
                    .collect();
                all.extend(part.iter().cloned());
                part.sort_by(by_key);
                sorted_parts.push(part);
            }
            all.sort_by(by_key);
            let tail = sorted_parts.pop().unwrap();
            let runs = sorted_parts.into_iter().map(|p| write_run(&dir, "m", p).unwrap()).collect();
            let merged: Vec<u64> = merge(runs, tail, by_key).unwrap().map(|f| f.unwrap().id()).collect();
            prop_assert_eq!(merged, all.iter().map(Feature::id).collect::<Vec<_>>());
        }
    }
}
