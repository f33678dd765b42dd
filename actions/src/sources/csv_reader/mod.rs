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

use std::collections::BTreeMap;
use std::io::{BufReader, Read};
use std::sync::Arc;

use super::file_input::FileInput;
use sluice_runtime::input::{FileOut, FileSource, SharedCache};

use schemars::JsonSchema;
use serde::Deserialize;
use sluice_runtime::action::schema_of;
use sluice_runtime::store;
use sluice_runtime::{
    ActionError, ActionKind, ActionSpec, BuildContext, BuiltAction, DEFAULT_PORT, Emitter, Feature,
    Geometry, NodeContext, NodeImpl, REJECTED_PORT, REJECTION_REASON, Schema, Source, Value,
};

use cells::{
    decode, infer_column, infer_lenient, parse_declared, parse_exact, parse_f64, text_value, trim,
};
use records::{Record, RecordError, Records};

mod cells;
mod records;
#[cfg(test)]
mod tests;

/// The attribute of a rejected row that holds its cells beyond the header's count.
const EXTRA_CELLS: &str = "_extra_cells";

/// How many rows type inference looks at.
const INFER_ROWS: usize = 1000;

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
    /// EPSG code of the geometry's coordinates.
    #[serde(default)]
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
.example(
    "path: data/trips-*.csv.gz\ndelimiter: \",\"\ncolumns:\n  zip: string\ngeometry:\n  x: lon\n  y: lat\ncrs: 4326\n",
);

fn build(ctx: &BuildContext) -> Result<BuiltAction, ActionError> {
    let p: CsvReaderParams = ctx.params()?;
    let input = FileInput::new(
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
    Ok(BuiltAction::new(NodeImpl::Source(Box::new(CsvReader {
        input,
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
    }))))
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
    input: FileInput,
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

impl Source for CsvReader {
    fn run(&mut self, ctx: &NodeContext, out: &mut Emitter) -> Result<(), ActionError> {
        self.input.read(&*self, ctx, out)
    }
}

impl FileSource for CsvReader {
    fn extensions(&self) -> &[String] {
        &self.input.extensions
    }

    fn read_file(
        &self,
        location: &str,
        ctx: &NodeContext,
        out: &mut FileOut<'_>,
    ) -> Result<(), ActionError> {
        let raw = store::open_read(location)?;
        let input: Box<dyn Read + Send> = if location.ends_with(".gz") {
            Box::new(flate2::read::MultiGzDecoder::new(BufReader::with_capacity(
                256 * 1024,
                raw,
            )))
        } else {
            raw
        };
        let mut rdr = Records::new(
            BufReader::with_capacity(256 * 1024, input),
            self.delimiter,
            self.quote,
            self.max_field_bytes,
        );
        let mut next = |rec: &mut Record| -> Result<bool, ActionError> {
            rdr.read(rec).map_err(|e| match e {
                RecordError::Io(e) => ActionError::io(format!("reading {location}"), e),
                other => ActionError::data(Some(location.to_string()), other.to_string()),
            })
        };

        // 1. The header, and up to INFER_ROWS rows for type inference.
        let mut rec = Record::default();
        let header: Vec<String> = if self.has_header {
            if !next(&mut rec)? {
                return Ok(());
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
        let mut sample: Vec<Record> = Vec::new();
        let want = if self.infer { INFER_ROWS } else { 1 };
        while sample.len() < want {
            if !next(&mut rec)? {
                break;
            }
            sample.push(rec.clone());
        }
        let header = if self.has_header {
            header
        } else {
            match sample.first() {
                Some(first) => (1..=first.len()).map(|i| format!("column_{i}")).collect(),
                None => return Ok(()),
            }
        };

        // 2. The plan: a type and a target slot per column, the geometry, the schemas.
        let plan = self.plan(location, header, &sample)?;
        for message in inference_notes(&plan, &sample) {
            ctx.log(format!("{location}: {message}"));
        }

        // 3. Convert: the sample first, then stream the rest with one reused record.
        let mut values = Vec::new();
        let mut kept = KeptAsText::new(plan.columns.len());
        for r in &sample {
            self.emit_row(&plan, location, r, &mut values, &mut kept, out)?;
        }
        drop(sample);
        let mut rows: u64 = 0;
        while next(&mut rec)? {
            self.emit_row(&plan, location, &rec, &mut values, &mut kept, out)?;
            rows += 1;
            if rows.is_multiple_of(8192) {
                ctx.check_cancelled()?;
            }
        }
        for message in kept.messages(&plan) {
            ctx.log(format!("{location}: {message}"));
        }
        Ok(())
    }
}

/// Cells of inferred columns, after the sample, that were not in their type's exact form and
/// so were kept as text: a count and the first one per column.
struct KeptAsText {
    counts: Vec<u64>,
    first: Vec<Option<(u64, String)>>,
}

impl KeptAsText {
    fn new(columns: usize) -> KeptAsText {
        KeptAsText {
            counts: vec![0; columns],
            first: vec![None; columns],
        }
    }

    fn note(&mut self, column: usize, line: u64, cell: &[u8]) {
        self.counts[column] += 1;
        if self.first[column].is_none() {
            self.first[column] = Some((line, excerpt(cell)));
        }
    }

    fn messages(&self, plan: &Plan) -> Vec<String> {
        let mut out = Vec::new();
        for (i, n) in self.counts.iter().enumerate() {
            if let (true, Some((line, cell))) = (*n > 0, &self.first[i]) {
                out.push(format!(
                    "column \"{}\": {n} cell(s) after the first rows are not {} as the writers print it and were kept as text (first at line {line}: \"{cell}\"); declare the column in `columns` to convert them",
                    plan.header[i],
                    plan.columns[i].ty.name()
                ));
            }
        }
        out
    }
}

/// Log lines for columns read as text that would parse as another type in a looser
/// spelling (`12.50`, `007`, `TRUE`), with how to get the typed values.
fn inference_notes(plan: &Plan, sample: &[Record]) -> Vec<String> {
    let mut notes = Vec::new();
    for (i, col) in plan.columns.iter().enumerate() {
        if !col.inferred || col.ty != ColumnType::String {
            continue;
        }
        let loose = infer_lenient(sample, i);
        if loose == ColumnType::String {
            continue;
        }
        let example = sample
            .iter()
            .filter_map(|r| r.get(i).map(|c| (c, r.quoted(i))))
            .find(|(c, q)| parse_exact(c, *q, loose).is_none())
            .map(|(c, _)| excerpt(c))
            .unwrap_or_default();
        notes.push(format!(
            "column \"{}\" is read as text so that it is written back as read (\"{example}\" is not {} as the writers print it); declare `columns: {{{}: {}}}` to read {} values",
            plan.header[i],
            loose.name(),
            plan.header[i],
            loose.name(),
            loose.name()
        ));
    }
    notes
}

fn encoding_name(e: Encoding) -> &'static str {
    match e {
        Encoding::Utf8 | Encoding::Utf8Lossy => "UTF-8",
        Encoding::Latin1 => "Latin-1",
        Encoding::ShiftJis => "Shift_JIS",
    }
}

impl CsvReader {
    fn plan(
        &self,
        location: &str,
        header: Vec<String>,
        sample: &[Record],
    ) -> Result<Plan, ActionError> {
        let index = |name: &str, param: String| -> Result<usize, ActionError> {
            header.iter().position(|h| h == name).ok_or_else(|| {
                ActionError::param(
                    param,
                    format!(
                        "no column \"{name}\" in {location} (its columns: {})",
                        header.join(", ")
                    ),
                )
            })
        };
        for name in self.declared.keys() {
            index(name, format!("columns.{name}"))?;
        }
        let geom = match &self.geometry {
            None => None,
            Some(g) => Some(match &g.source {
                GeomSource::Xy(x, y) => GeomPlan::Xy(
                    index(x, "geometry.x".into())?,
                    index(y, "geometry.y".into())?,
                ),
                GeomSource::Wkt(w) => GeomPlan::Wkt(index(w, "geometry.wkt".into())?),
            }),
        };
        let dropped = |i: usize| -> bool {
            match (&geom, &self.geometry) {
                (Some(GeomPlan::Xy(x, y)), Some(g)) => !g.keep && (i == *x || i == *y),
                (Some(GeomPlan::Wkt(w)), Some(g)) => !g.keep && i == *w,
                _ => false,
            }
        };
        let mut columns = Vec::with_capacity(header.len());
        let mut slot = 0;
        for (i, name) in header.iter().enumerate() {
            let (ty, inferred) = match self.declared.get(name) {
                Some(t) => (*t, false),
                None if self.infer => (infer_column(sample, i), true),
                None => (ColumnType::String, false),
            };
            let target = (!dropped(i)).then(|| {
                slot += 1;
                slot - 1
            });
            columns.push(ColumnPlan {
                ty,
                inferred,
                target,
            });
        }
        let (schema, rejected_schema) = self.schemas.get_or_insert_with(header.clone(), || {
            let kept = header
                .iter()
                .enumerate()
                .filter(|(i, _)| !dropped(*i))
                .map(|(_, n)| n.as_str());
            let rejected = header.iter().map(String::as_str).chain([REJECTION_REASON]);
            (Schema::new(kept), Schema::new(rejected))
        });
        Ok(Plan {
            header,
            columns,
            slots: slot,
            geom,
            schema,
            rejected_schema,
        })
    }

    /// Converts one row and emits it, to `default` or, when it does not fit, to `rejected`.
    fn emit_row(
        &self,
        plan: &Plan,
        location: &str,
        rec: &Record,
        values: &mut Vec<Value>,
        kept: &mut KeptAsText,
        out: &mut FileOut<'_>,
    ) -> Result<(), ActionError> {
        // Ids are assigned by `FileOut`, in file order.
        let id = 0;
        match self.convert(plan, rec, values, kept) {
            Ok(geometry) => {
                let mut f = Feature::new(id, plan.schema.clone(), std::mem::take(values));
                if geometry.is_some() {
                    f.set_geometry(geometry);
                }
                out.emit(f)
            }
            Err(reason) => {
                let line = rec.line();
                // The raw cells travel with the reason: as text when they decode, else as
                // the bytes that were read.
                let mut raw: Vec<Value> = rec
                    .iter()
                    .take(plan.header.len())
                    .map(|b| {
                        text_value(b, self.encoding).unwrap_or_else(|_| Value::Bytes(b.into()))
                    })
                    .collect();
                raw.resize(plan.header.len(), Value::Null);
                raw.push(Value::String(format!("{location}:{line}: {reason}").into()));
                // Cells beyond the header's count travel too, as a list.
                let schema = if rec.len() > plan.header.len() {
                    let extra: Vec<Value> = rec
                        .iter()
                        .skip(plan.header.len())
                        .map(|b| {
                            text_value(b, self.encoding).unwrap_or_else(|_| Value::Bytes(b.into()))
                        })
                        .collect();
                    raw.push(Value::Array(extra.into()));
                    plan.rejected_schema.with(EXTRA_CELLS)
                } else {
                    plan.rejected_schema.clone()
                };
                out.emit_to(1, Feature::new(id, schema, raw))
            }
        }
    }

    /// Fills `values` from a row, or says why the row does not fit.
    fn convert(
        &self,
        plan: &Plan,
        rec: &Record,
        values: &mut Vec<Value>,
        kept: &mut KeptAsText,
    ) -> Result<Option<Geometry>, String> {
        if rec.len() != plan.columns.len() {
            return Err(format!(
                "expected {} fields, found {}",
                plan.columns.len(),
                rec.len()
            ));
        }
        values.clear();
        values.reserve_exact(plan.slots);
        for (i, (col, name)) in plan.columns.iter().zip(&plan.header).enumerate() {
            if col.target.is_none() {
                continue;
            }
            let field = rec.get(i).unwrap_or_default();
            let quoted = rec.quoted(i);
            let bad_bytes = |k: usize| {
                format!(
                    "column \"{name}\": invalid {} at byte {} (set `encoding`)",
                    encoding_name(self.encoding),
                    rec.start(i) + k as u64 + u64::from(quoted)
                )
            };
            let v = if col.ty == ColumnType::String {
                if field.is_empty() && !quoted {
                    Value::Null
                } else {
                    text_value(field, self.encoding).map_err(bad_bytes)?
                }
            } else if col.inferred {
                let exact = parse_exact(field, quoted, col.ty).or_else(|| {
                    // An inferred int column also takes floats.
                    (col.ty == ColumnType::Int)
                        .then(|| parse_exact(field, quoted, ColumnType::Float))
                        .flatten()
                });
                match exact {
                    Some(v) => v,
                    None => {
                        // Not in the type's exact form: kept as the text it is.
                        kept.note(i, rec.line(), field);
                        text_value(field, self.encoding).map_err(bad_bytes)?
                    }
                }
            } else {
                match parse_declared(field, quoted, col.ty) {
                    Some(v) => v,
                    None => {
                        decode(field, self.encoding).map_err(bad_bytes)?;
                        return Err(format!(
                            "column \"{name}\": expected {}, found \"{}\"",
                            col.ty.name(),
                            excerpt(field)
                        ));
                    }
                }
            };
            values.push(v);
        }
        let cell = |i: usize| rec.get(i).unwrap_or_default();
        let geom = match plan.geom {
            None => None,
            Some(GeomPlan::Xy(xi, yi)) => {
                let (xb, yb) = (cell(xi), cell(yi));
                if trim(xb).is_empty() && trim(yb).is_empty() {
                    None
                } else {
                    let coord = |b: &[u8], i: usize| {
                        parse_f64(b).ok_or_else(|| {
                            format!(
                                "column \"{}\": expected a coordinate, found \"{}\"",
                                plan.header[i],
                                excerpt(b)
                            )
                        })
                    };
                    let p = geo_types::Point::new(coord(xb, xi)?, coord(yb, yi)?);
                    Some(p.into())
                }
            }
            Some(GeomPlan::Wkt(wi)) => {
                let text = decode(cell(wi), self.encoding).map_err(|k| {
                    format!(
                        "column \"{}\": invalid {} at byte {}",
                        plan.header[wi],
                        encoding_name(self.encoding),
                        rec.start(wi) + k as u64
                    )
                })?;
                let text = text.trim();
                if text.is_empty() {
                    None
                } else {
                    use wkt::TryFromWkt;
                    let g = geo_types::Geometry::<f64>::try_from_wkt_str(text)
                        .map_err(|e| format!("column \"{}\": bad WKT: {e}", plan.header[wi]))?;
                    Some(g)
                }
            }
        };
        Ok(geom.map(|g| Geometry {
            geom: g,
            crs: self.crs,
        }))
    }
}

/// How one file's rows become features.
struct Plan {
    header: Vec<String>,
    columns: Vec<ColumnPlan>,
    slots: usize,
    geom: Option<GeomPlan>,
    schema: Arc<Schema>,
    rejected_schema: Arc<Schema>,
}

struct ColumnPlan {
    ty: ColumnType,
    inferred: bool,
    /// The position among the feature's values; `None` for a dropped geometry column.
    target: Option<usize>,
}

#[derive(Clone, Copy)]
enum GeomPlan {
    Xy(usize, usize),
    Wkt(usize),
}

/// Column names from a header row: a BOM is dropped, an empty name becomes `column_N`, and a
/// repeated name gets a `_2`, `_3`... suffix. `Err(byte)` when a name does not decode.
fn header_names(rec: &Record, encoding: Encoding) -> Result<Vec<String>, u64> {
    let mut names: Vec<String> = Vec::with_capacity(rec.len());
    // Linear in the column count, also for very wide files.
    let mut taken: std::collections::HashSet<String> =
        std::collections::HashSet::with_capacity(rec.len());
    let mut next_suffix: std::collections::HashMap<String, usize> =
        std::collections::HashMap::new();
    for (i, field) in rec.iter().enumerate() {
        let mut name = decode(field, encoding)
            .map_err(|k| rec.start(i) + k as u64)?
            .trim()
            .to_string();
        if i == 0
            && let Some(rest) = name.strip_prefix('\u{feff}')
        {
            name = rest.to_string();
        }
        if name.is_empty() {
            name = format!("column_{}", i + 1);
        }
        if taken.contains(&name) {
            // The next suffix to try for this name, so that many repeats stay linear.
            let k = next_suffix.entry(name.clone()).or_insert(2);
            while taken.contains(&format!("{name}_{k}")) {
                *k += 1;
            }
            name = format!("{name}_{k}");
            *k += 1;
        }
        taken.insert(name.clone());
        names.push(name);
    }
    Ok(names)
}

/// The first 40 characters of a cell, for messages.
fn excerpt(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(b);
    match s.char_indices().nth(40) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.into_owned(),
    }
}
