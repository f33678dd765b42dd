//! `csv_reader`: reads delimited text files (plain or gzip) into features.
//!
//! ```yaml
//! - id: trips
//!   action: csv_reader
//!   with:
//!     path: data/trips-*.csv.gz
//!     delimiter: ","
//!     columns:
//!       zip: string
//!     geometry:
//!       x: lon
//!       y: lat
//!     crs: 4326
//! ```
//!
//! - `path` is a file, a folder (its files) or a glob pattern; files are read in name order,
//!   streamed (a file is never held whole) and decompressed when the name ends in `.gz`.
//!   Several files are read at once (up to `read_ahead` on reader threads of this node,
//!   each file through its own small bounded channel); the output is in file order all
//!   the same, with the same ids as a one-by-one read.
//! - Values come back as they were read. An inferred column takes a type only when that type
//!   writes every cell of the first 1000 rows back as the same text: `007`, `1e3`, `12.50`,
//!   `TRUE` or `2024-01-13 08:35:00` keep a column as text (a log line says which columns
//!   would have parsed, and how to declare them). Types: int, float (which keeps canonical
//!   ints as ints), bool, date, datetime (with `Z`: zoned) and local_datetime (no zone; never
//!   turned into UTC). Later cells of an inferred column that are not in the type's exact
//!   form are kept as text, counted in a log line. A type declared in `columns` wins and
//!   accepts the usual spellings.
//! - An empty cell is null; a quoted empty cell (`""`) is an empty string.
//! - Cells are decoded with `encoding`: strict `utf-8` by default (a row with invalid bytes
//!   goes to `rejected` with its file, line and byte, its cells kept as bytes), or
//!   `utf-8-lossy`, `latin-1`, `shift_jis`.
//! - A quoted field that never closes, or a field longer than `max_field_bytes` (1 MiB by
//!   default), stops the run with the file, line and byte where it starts: rows are never
//!   silently swallowed.
//! - A folder or glob takes the files named `.csv`, `.tsv`, `.txt` (each also `.gz`) unless
//!   `extensions` says otherwise; skipped files are listed in a log line.
//! - Every feature of a file with the same header shares one schema.
//! - A row with more cells than the header keeps the extra ones in `_extra_cells` (a list)
//!   on `rejected`.
//! - A row that does not fit (a wrong field count, a cell that is not of its column's type, a
//!   bad coordinate or WKT) goes to the `rejected` port with its raw cells as strings and
//!   `_rejection_reason` = `file:line: reason`. An inferred int column also takes floats (they
//!   stay floats); any other cell that does not match an inferred type rejects the row, so
//!   declare the type in `columns` when the first rows are not representative.
//! - `geometry: {x, y}` makes points from two numeric columns (both empty: no geometry);
//!   `geometry: {wkt}` parses a WKT column. The source columns stay attributes unless
//!   `keep_columns: false`.
//! - In a partitioned run (`--partition I/N`), several files are shared out by index, each
//!   read whole. One plain file is split in byte ranges: task I reads the rows whose first
//!   byte lies in its share `[len·I/N, len·(I+1)/N)` of the bytes after the header, so the
//!   tasks' rows, one after the other, are the whole read's rows. Each task reads the header
//!   and the first 1000 rows (the columns and types of the whole file), then scans the bytes
//!   before its share for quotes and line breaks (a line break inside a quoted field ends no
//!   row), so its row lines in `_rejection_reason` and errors are the lines of the file. A
//!   gzip file (or standard input) cannot be entered in the middle: the first task reads it
//!   whole.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::Arc;

use super::file_input::{
    files_param, open_buffered, open_text_with_len, peekable, text_at_offsets,
};
use sluice_runtime::input::{FileOut, FileReader, FileSource, Files, SharedCache};
use sluice_runtime::shape::{GeometryShape, Shape, ShapeContext, Type};

use schemars::JsonSchema;
use serde::Deserialize;
use sluice_runtime::action::schema_of;
use sluice_runtime::{
    ActionError, ActionKind, ActionSpec, BuildContext, BuiltAction, DEFAULT_PORT, NodeContext,
    NodeImpl, REJECTED_PORT, REJECTION_REASON, Schema,
};

use plan::{KeptAsText, Row, encoding_name, header_names, inference_notes};
use rayon::prelude::*;
use records::{Record, RecordError, Records};

mod cells;
mod plan;
mod records;
#[cfg(test)]
mod tests;

/// The attribute of a rejected row that holds its cells beyond the header's count.
const EXTRA_CELLS: &str = "_extra_cells";

/// How many rows type inference looks at.
const INFER_ROWS: usize = 1000;
/// Records read before their rows are converted (on the pool, when it has threads).
const BLOCK_ROWS: usize = 4096;
/// Blocks shorter than this are converted on the reader's thread.
const PARALLEL_MIN_ROWS: usize = 512;

/// Parameters of `csv_reader`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CsvReaderParams {
    /// A file, a folder (every file in it) or a glob pattern such as `data/*.csv`. Files are
    /// read in name order; a name ending in `.gz` is decompressed.
    pub path: String,
    /// The field delimiter, one ASCII character.
    #[serde(default = "comma")]
    pub delimiter: char,
    /// Whether the first row holds the column names. Without a header, columns are named
    /// `column_1`, `column_2`...
    #[serde(default = "yes")]
    pub has_header: bool,
    /// The quote character, one ASCII character.
    #[serde(default = "double_quote")]
    pub quote: char,
    /// Declared column types by column name (`string`, `int`, `float`, `bool`, `date`,
    /// `datetime`, `local_datetime`); they win over inference. A cell that does not parse
    /// rejects its row.
    #[serde(default)]
    pub columns: BTreeMap<String, ColumnType>,
    /// Infer the types of undeclared columns from the first 1000 rows; when false they are
    /// strings.
    #[serde(default = "yes")]
    pub infer_types: bool,
    /// Build a geometry from columns: `{x: lon, y: lat}` for points, or `{wkt: geom}`.
    #[serde(default)]
    pub geometry: Option<GeometryColumns>,
    /// The CRS of the geometry's coordinates: an EPSG code (`2154`, `"EPSG:2154"`,
    /// `"urn:ogc:def:crs:EPSG::2154"`) or a WKT naming one.
    #[serde(default, deserialize_with = "crate::crs::code")]
    #[schemars(with = "Option<crate::crs::CrsParam>")]
    pub crs: Option<u32>,
    /// Most files read at once when `path` names several (default: the run's read-ahead,
    /// which shrinks under memory pressure; it also caps this value). 1 reads them one
    /// after another.
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub read_ahead: Option<usize>,
    /// How cells are decoded: `utf-8` (strict: a row with invalid bytes is rejected with its
    /// location), `utf-8-lossy` (invalid bytes become U+FFFD), `latin-1` or `shift_jis`.
    #[serde(default)]
    pub encoding: Encoding,
    /// The longest field in bytes. A longer field, or a quoted field that runs to the end of
    /// the file, stops the run with its location.
    #[serde(default = "default_max_field_bytes")]
    #[schemars(range(min = 1))]
    pub max_field_bytes: usize,
    /// File name endings read from a folder or glob (without the dot, any case). Default:
    /// `csv`, `tsv`, `txt`, each also with `.gz`. An empty list reads every file.
    #[serde(default)]
    pub extensions: Option<Vec<String>>,
}

/// How the bytes of cells are decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema)]
pub enum Encoding {
    /// Strict UTF-8: a row with invalid bytes goes to `rejected`.
    #[default]
    #[serde(rename = "utf-8")]
    Utf8,
    /// UTF-8, with invalid bytes replaced by U+FFFD.
    #[serde(rename = "utf-8-lossy")]
    Utf8Lossy,
    /// ISO-8859-1: every byte is one character.
    #[serde(rename = "latin-1")]
    Latin1,
    /// Shift_JIS (Japanese).
    #[serde(rename = "shift_jis")]
    ShiftJis,
}

fn default_max_field_bytes() -> usize {
    1 << 20
}

/// Which columns hold the geometry.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GeometryColumns {
    /// The column of x (longitude) coordinates; give `y` with it.
    #[serde(default)]
    pub x: Option<String>,
    /// The column of y (latitude) coordinates; give `x` with it.
    #[serde(default)]
    pub y: Option<String>,
    /// The column of WKT geometries (instead of `x` and `y`).
    #[serde(default)]
    pub wkt: Option<String>,
    /// Keep the geometry's source columns as attributes too.
    #[serde(default = "yes")]
    pub keep_columns: bool,
}

/// A column type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ColumnType {
    /// Text, kept as is.
    String,
    /// A 64-bit integer.
    Int,
    /// A 64-bit float.
    Float,
    /// `true` or `false` (any case).
    Bool,
    /// `YYYY-MM-DD`.
    Date,
    /// A zoned instant: ISO 8601 / RFC 3339 with `Z` or an offset (`2024-01-02T03:04:05Z`).
    Datetime,
    /// A wall-clock date and time without a zone (`2024-01-02T03:04:05`, `T` or a space).
    #[serde(rename = "local_datetime")]
    LocalDatetime,
}

impl ColumnType {
    /// The static type of the column's values.
    fn static_type(self) -> Type {
        match self {
            ColumnType::String => Type::String,
            ColumnType::Int => Type::Int,
            ColumnType::Float => Type::Float,
            ColumnType::Bool => Type::Bool,
            ColumnType::Date => Type::Date,
            ColumnType::Datetime => Type::DateTime,
            ColumnType::LocalDatetime => Type::LocalDateTime,
        }
    }

    fn name(self) -> &'static str {
        match self {
            ColumnType::String => "string",
            ColumnType::Int => "int",
            ColumnType::Float => "float",
            ColumnType::Bool => "bool",
            ColumnType::Date => "date",
            ColumnType::Datetime => "datetime",
            ColumnType::LocalDatetime => "local_datetime",
        }
    }
}

fn comma() -> char {
    ','
}
fn double_quote() -> char {
    '"'
}
fn yes() -> bool {
    true
}

/// The `csv_reader` action.
pub const SPEC: ActionSpec = ActionSpec::new(
    "csv_reader",
    ActionKind::Source,
    "Reads CSV files (a file, folder or glob; gzip by extension) into features.",
    schema_of::<CsvReaderParams>,
    build,
)
.outputs(&[DEFAULT_PORT, REJECTED_PORT])
.reads_from("path")
.shape(shape)
.sliced("files by index; one CSV file by newline-aligned byte ranges (quote-aware); a gzip file is read whole by the first task")
.example(
    "path: data/trips-*.csv.gz\ndelimiter: \",\"\ncolumns:\n  zip: string\ngeometry:\n  x: lon\n  y: lat\ncrs: 4326\n",
);

fn build(ctx: &BuildContext) -> Result<BuiltAction, ActionError> {
    let (files, reader) = reader(ctx.params()?)?;
    Ok(BuiltAction::new(NodeImpl::Source(Box::new(
        FileReader::new(files, reader),
    ))))
}

/// Files a run lists at most to know the schema before it: a path naming more is open.
const SHAPE_FILES: usize = 8;

/// The header and the types inferred from the first rows of the files `path` names (the
/// first [`SHAPE_FILES`]), through the same [`CsvReader::head`] and plan the run uses.
/// Unknown when no file can be read yet.
fn shape(ctx: &ShapeContext) -> Result<Vec<Shape>, ActionError> {
    let (files, reader) = reader(ctx.params()?)?;
    let locations = files.locations();
    let mut merged: Option<(Shape, Shape)> = None;
    for location in locations.iter().take(SHAPE_FILES) {
        if !peekable(location) {
            return Ok(Vec::new());
        }
        let head = match reader.head(location) {
            Ok(Some(head)) => head,
            Ok(None) => continue,
            Err(_) => return Ok(Vec::new()),
        };
        let rejected = Shape {
            open: true,
            ..Shape::closed(
                head.header
                    .iter()
                    .map(|n| (n.clone(), Type::String))
                    .chain([(REJECTION_REASON.to_string(), Type::String)]),
            )
        };
        let plan = reader.plan(location, head.header, &head.sample)?;
        let geometry = if plan.has_geometry() {
            GeometryShape::Present { crs: reader.crs }
        } else {
            GeometryShape::Absent
        };
        let attributes = plan
            .attributes()
            .map(|(n, t)| (n.to_string(), t.static_type()));
        let shape = Shape::closed(attributes).with_geometry(geometry);
        merged = Some(match merged {
            None => (shape, rejected),
            Some((a, r)) => (a.merge(&shape), r.merge(&rejected)),
        });
    }
    let Some((mut shape, rejected)) = merged else {
        return Ok(Vec::new());
    };
    shape.open |= locations.len() > SHAPE_FILES;
    Ok(vec![shape, rejected])
}

/// The files and the reader the parameters describe.
fn reader(p: CsvReaderParams) -> Result<(Files, CsvReader), ActionError> {
    let files = files_param(
        p.path,
        p.read_ahead,
        p.extensions,
        &["csv", "tsv", "txt"],
        true,
    )?;
    let delimiter = ascii_byte(p.delimiter, "delimiter")?;
    let quote = ascii_byte(p.quote, "quote")?;
    if delimiter == quote {
        return Err(ActionError::param(
            "quote",
            "must differ from the delimiter",
        ));
    }
    if p.max_field_bytes == 0 {
        return Err(ActionError::param("max_field_bytes", "must be at least 1"));
    }
    let geometry = match p.geometry {
        None => None,
        Some(g) => Some(GeomSpec {
            source: match (g.x, g.y, g.wkt) {
                (Some(x), Some(y), None) => GeomSource::Xy(x, y),
                (None, None, Some(wkt)) => GeomSource::Wkt(wkt),
                _ => {
                    return Err(ActionError::param(
                        "geometry",
                        "give either `x` and `y`, or `wkt`",
                    ));
                }
            },
            keep: g.keep_columns,
        }),
    };
    let reader = CsvReader {
        delimiter,
        quote,
        has_header: p.has_header,
        declared: p.columns,
        infer: p.infer_types,
        geometry,
        crs: p.crs,
        encoding: p.encoding,
        max_field_bytes: p.max_field_bytes,
        schemas: SharedCache::new(),
    };
    Ok((files, reader))
}

fn ascii_byte(c: char, param: &str) -> Result<u8, ActionError> {
    if c.is_ascii() && c != '\n' && c != '\r' {
        Ok(c as u8)
    } else {
        Err(ActionError::param(
            param,
            format!("must be one ASCII character other than a line break, found {c:?}"),
        ))
    }
}

// ---------------------------------------------------------------------------------------------
// The reader
// ---------------------------------------------------------------------------------------------

#[derive(Debug)]
enum GeomSource {
    Xy(String, String),
    Wkt(String),
}

#[derive(Debug)]
struct GeomSpec {
    source: GeomSource,
    keep: bool,
}

struct CsvReader {
    delimiter: u8,
    quote: u8,
    has_header: bool,
    declared: BTreeMap<String, ColumnType>,
    infer: bool,
    geometry: Option<GeomSpec>,
    crs: Option<u32>,
    encoding: Encoding,
    max_field_bytes: usize,
    /// A header seen before (in any file) gets the same schemas back.
    schemas: SharedCache<Vec<String>, (Arc<Schema>, Arc<Schema>)>,
}

/// A file opened, with its column names and the rows type inference looks at read.
struct Head {
    rdr: Records<Box<dyn std::io::BufRead + Send>>,
    header: Vec<String>,
    sample: Vec<Record>,
    /// The offset right after the header row (0 without a header): where the rows' bytes
    /// that slices share start.
    body_start: u64,
}

/// The part of a file a task reads: the file's head, and the byte range of its rows (`None`:
/// every row).
struct Part {
    head: Head,
    rows: Option<Range<u64>>,
}

/// The most bytes [`Records::skip_to`] scans between two checks for cancellation.
const SKIP_STEP: u64 = 64 << 20;

/// Reads the next record of `location`.
fn read(
    rdr: &mut Records<Box<dyn std::io::BufRead + Send>>,
    location: &str,
    rec: &mut Record,
) -> Result<bool, ActionError> {
    rdr.read(rec).map_err(|e| record_error(e, location))
}

/// A splitting error of `location` as the run reports it.
fn record_error(e: RecordError, location: &str) -> ActionError {
    match e {
        RecordError::Io(e) => ActionError::io(format!("reading {location}"), e),
        other => ActionError::data(Some(location.to_string()), other.to_string()),
    }
}

impl CsvReader {
    /// Opens `location` and reads its header and up to [`INFER_ROWS`] rows (one when types
    /// are not inferred); `None` for a file without rows. Validation reads the same head to
    /// know the schema before the run.
    fn head(&self, location: &str) -> Result<Option<Head>, ActionError> {
        self.head_of(open_buffered(location)?, location)
    }

    /// [`CsvReader::head`] of the bytes `input` gives from the file's start.
    fn head_of(
        &self,
        input: Box<dyn std::io::BufRead + Send>,
        location: &str,
    ) -> Result<Option<Head>, ActionError> {
        let mut rdr = Records::new(input, self.delimiter, self.quote, self.max_field_bytes);
        let mut rec = Record::default();
        let header: Vec<String> = if self.has_header {
            if !read(&mut rdr, location, &mut rec)? {
                return Ok(None);
            }
            header_names(&rec, self.encoding).map_err(|byte| {
                ActionError::data(
                    Some(format!("{location}:{}", rec.line())),
                    format!(
                        "the header is not valid {} at byte {byte}; set `encoding`",
                        encoding_name(self.encoding)
                    ),
                )
            })?
        } else {
            Vec::new()
        };
        let body_start = rdr.offset();
        let mut sample: Vec<Record> = Vec::new();
        let want = if self.infer { INFER_ROWS } else { 1 };
        while sample.len() < want {
            if !read(&mut rdr, location, &mut rec)? {
                break;
            }
            sample.push(rec.clone());
        }
        let header = if self.has_header {
            header
        } else {
            match sample.first() {
                Some(first) => (1..=first.len()).map(|i| format!("column_{i}")).collect(),
                None => return Ok(None),
            }
        };
        Ok(Some(Head {
            rdr,
            header,
            sample,
            body_start,
        }))
    }

    /// The head of the file and the byte range of the rows this task reads: `None` for the
    /// whole file. A part of a plain file reads the rows whose first byte lies in its share
    /// ([`Slice::range`](sluice_runtime::Slice::range)) of the bytes after the header; a
    /// file that cannot be read at offsets (gzip, standard input) is read whole by the first
    /// part and not at all by the others. `Ok(None)`: nothing to read.
    fn open_part(
        &self,
        location: &str,
        part: sluice_runtime::Slice,
    ) -> Result<Option<Part>, ActionError> {
        if part.is_whole() || !text_at_offsets(location) {
            if !part.is_first() {
                return Ok(None);
            }
            return Ok(self.head(location)?.map(|head| Part { head, rows: None }));
        }
        let (input, len) = open_text_with_len(location)?;
        let Some(head) = self.head_of(input, location)? else {
            return Ok(None);
        };
        let share = part.range(len.saturating_sub(head.body_start));
        let range = head.body_start + share.start..head.body_start + share.end;
        Ok(Some(Part {
            head,
            rows: Some(range),
        }))
    }
}

impl FileSource for CsvReader {
    fn read_file(
        &self,
        location: &str,
        ctx: &NodeContext,
        out: &mut FileOut<'_>,
    ) -> Result<(), ActionError> {
        // 1. The header, and up to INFER_ROWS rows for type inference: from the file's
        //    start, whichever part of it this task reads, so that every part has the
        //    columns and types of the whole file.
        let Some(Part {
            head:
                Head {
                    mut rdr,
                    header,
                    sample,
                    body_start: _,
                },
            rows: range,
        }) = self.open_part(location, out.part())?
        else {
            return Ok(());
        };

        // 2. The plan: a type and a target slot per column, the geometry, the schemas.
        let plan = self.plan(location, header, &sample)?;
        for message in inference_notes(&plan, &sample) {
            ctx.log(format!("{location}: {message}"));
        }

        // 3. Convert: the sample first, then the rest a block of records at a time. Records
        //    are split in order on this thread (quotes decide where a row ends); a block's
        //    rows are converted on the pool, in chunks, and emitted in order. A part of the
        //    file takes the rows of the sample that start in its range, then moves on to
        //    its range (scanning, not reading, the rows before it) and ends there.
        let mut values = Vec::new();
        let mut kept = KeptAsText::new(plan.columns.len());
        let mine = |r: &Record| {
            range
                .as_ref()
                .is_none_or(|range| range.contains(&r.start(0)))
        };
        for r in sample.iter().filter(|r| mine(r)) {
            self.emit_row(&plan, location, r, &mut values, &mut kept, out)?;
        }
        drop(sample);
        if let Some(range) = &range {
            // Rows after the sample start at or after the reader's offset.
            if range.is_empty() || range.end <= rdr.offset() {
                // None of them is this part's.
                rdr.set_limit(0);
            } else {
                while rdr.offset() < range.start {
                    ctx.check_cancelled()?;
                    let step = range.start.min(rdr.offset().saturating_add(SKIP_STEP));
                    rdr.skip_to(step).map_err(|e| record_error(e, location))?;
                    if rdr.offset() < step {
                        // The end of the file.
                        break;
                    }
                }
                rdr.set_limit(range.end);
            }
        }
        let mut next =
            |rec: &mut Record| -> Result<bool, ActionError> { read(&mut rdr, location, rec) };
        let threads = ctx.pool.current_num_threads();
        let mut block: Vec<Record> = Vec::new();
        loop {
            ctx.check_cancelled()?;
            let mut n = 0;
            while n < BLOCK_ROWS {
                if n == block.len() {
                    block.push(Record::default());
                }
                if !next(&mut block[n])? {
                    break;
                }
                n += 1;
            }
            if threads < 2 || n < PARALLEL_MIN_ROWS {
                for r in &block[..n] {
                    self.emit_row(&plan, location, r, &mut values, &mut kept, out)?;
                }
            } else {
                let chunk = n.div_ceil(threads * 2);
                let plan = &plan;
                let converted: Vec<(Vec<Row>, KeptAsText)> = ctx.install(|| {
                    block[..n]
                        .par_chunks(chunk)
                        .map(|recs| {
                            ctx.pool_job(|| {
                                let mut kept = KeptAsText::new(plan.columns.len());
                                let mut values = Vec::new();
                                let rows = recs
                                    .iter()
                                    .map(|r| self.row(plan, location, r, &mut values, &mut kept))
                                    .collect();
                                (rows, kept)
                            })
                        })
                        .collect()
                });
                for (rows, k) in converted {
                    kept.merge(k);
                    for row in rows {
                        row.emit(out)?;
                    }
                }
            }
            if n < BLOCK_ROWS {
                break;
            }
        }
        for message in kept.messages(&plan) {
            ctx.log(format!("{location}: {message}"));
        }
        Ok(())
    }

    fn splits_files(&self) -> bool {
        true
    }
}
