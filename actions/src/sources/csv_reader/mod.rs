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
//! - Column types: a type declared in `columns` wins; otherwise, with `infer_types` (the
//!   default), each column gets the narrowest of int, float, bool, date, datetime that fits
//!   every non-empty cell of the first 1000 rows, else string. An empty cell is null.
//! - Every feature of a file with the same header shares one schema.
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

use super::multi_file::{FileOut, FileSource, SharedCache, read_files};

use csv::ByteRecord;
use schemars::JsonSchema;
use serde::Deserialize;
use sluice_runtime::action::schema_of;
use sluice_runtime::store;
use sluice_runtime::{
    ActionError, ActionKind, ActionSpec, BuildContext, BuiltAction, DEFAULT_PORT, Emitter, Feature,
    Geometry, NodeContext, NodeImpl, REJECTED_PORT, REJECTION_REASON, Schema, Source, Value,
};

use cells::{infer_column, parse_cell, parse_f64, trim};

mod cells;
#[cfg(test)]
mod tests;

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
    /// `datetime`); they win over inference. A cell that does not parse rejects its row.
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
    /// ISO 8601 / RFC 3339 (`2024-01-02T03:04:05Z`, offsets, fractions; no offset = UTC).
    Datetime,
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
    if p.path.trim().is_empty() {
        return Err(ActionError::param("path", "must not be empty"));
    }
    let delimiter = ascii_byte(p.delimiter, "delimiter")?;
    let quote = ascii_byte(p.quote, "quote")?;
    if delimiter == quote {
        return Err(ActionError::param(
            "quote",
            "must differ from the delimiter",
        ));
    }
    if p.read_ahead == Some(0) {
        return Err(ActionError::param("read_ahead", "must be at least 1"));
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
        path: p.path,
        delimiter,
        quote,
        has_header: p.has_header,
        declared: p.columns,
        infer: p.infer_types,
        geometry,
        crs: p.crs,
        read_ahead: p.read_ahead,
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
    path: String,
    delimiter: u8,
    quote: u8,
    has_header: bool,
    declared: BTreeMap<String, ColumnType>,
    infer: bool,
    geometry: Option<GeomSpec>,
    crs: Option<u32>,
    read_ahead: Option<usize>,
    /// A header seen before (in any file) gets the same schemas back.
    schemas: SharedCache<Vec<String>, (Arc<Schema>, Arc<Schema>)>,
}

impl Source for CsvReader {
    fn run(&mut self, ctx: &NodeContext, out: &mut Emitter) -> Result<(), ActionError> {
        read_files(&*self, &self.path, self.read_ahead, ctx, out)
    }
}

impl FileSource for CsvReader {
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
        let mut rdr = csv::ReaderBuilder::new()
            .delimiter(self.delimiter)
            .quote(self.quote)
            .has_headers(false)
            .flexible(true)
            .buffer_capacity(256 * 1024)
            .from_reader(input);
        let io_err = |e: csv::Error, line: u64| {
            ActionError::io(format!("reading {location} near line {line}"), e.into())
        };

        // 1. The header, and up to INFER_ROWS rows for type inference.
        let mut rec = ByteRecord::new();
        let header: Vec<String> = if self.has_header {
            if !rdr.read_byte_record(&mut rec).map_err(|e| io_err(e, 1))? {
                return Ok(());
            }
            header_names(&rec)
        } else {
            Vec::new()
        };
        let mut sample: Vec<ByteRecord> = Vec::new();
        let want = if self.infer { INFER_ROWS } else { 1 };
        while sample.len() < want {
            let line = rdr.position().line();
            if !rdr
                .read_byte_record(&mut rec)
                .map_err(|e| io_err(e, line))?
            {
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

        // 3. Convert: the sample first, then stream the rest with one reused record.
        let mut values = Vec::new();
        for r in &sample {
            self.emit_row(&plan, location, r, &mut values, out)?;
        }
        drop(sample);
        let mut rows: u64 = 0;
        loop {
            let line = rdr.position().line();
            if !rdr
                .read_byte_record(&mut rec)
                .map_err(|e| io_err(e, line))?
            {
                break;
            }
            self.emit_row(&plan, location, &rec, &mut values, out)?;
            rows += 1;
            if rows.is_multiple_of(8192) {
                ctx.check_cancelled()?;
            }
        }
        Ok(())
    }
}

impl CsvReader {
    fn plan(
        &self,
        location: &str,
        header: Vec<String>,
        sample: &[ByteRecord],
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
        rec: &ByteRecord,
        values: &mut Vec<Value>,
        out: &mut FileOut<'_>,
    ) -> Result<(), ActionError> {
        // Ids are assigned by `FileOut`, in file order.
        let id = 0;
        match self.convert(plan, rec, values) {
            Ok(geometry) => {
                let mut f = Feature::new(id, plan.schema.clone(), std::mem::take(values));
                if geometry.is_some() {
                    f.set_geometry(geometry);
                }
                out.emit(f)
            }
            Err(reason) => {
                let line = rec.position().map_or(0, |p| p.line());
                let mut raw: Vec<Value> = rec
                    .iter()
                    .take(plan.header.len())
                    .map(|b| Value::String(String::from_utf8_lossy(b).into()))
                    .collect();
                raw.resize(plan.header.len(), Value::Null);
                raw.push(Value::String(format!("{location}:{line}: {reason}").into()));
                out.emit_to(1, Feature::new(id, plan.rejected_schema.clone(), raw))
            }
        }
    }

    /// Fills `values` from a row, or says why the row does not fit.
    fn convert(
        &self,
        plan: &Plan,
        rec: &ByteRecord,
        values: &mut Vec<Value>,
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
        for ((col, field), name) in plan.columns.iter().zip(rec.iter()).zip(&plan.header) {
            if col.target.is_none() {
                continue;
            }
            let v = parse_cell(field, col.ty).or_else(|| {
                // An inferred int column also takes floats.
                (col.inferred && col.ty == ColumnType::Int)
                    .then(|| parse_cell(field, ColumnType::Float))
                    .flatten()
            });
            match v {
                Some(v) => values.push(v),
                None => {
                    return Err(format!(
                        "column \"{name}\": expected {}{}, found \"{}\"",
                        col.ty.name(),
                        if col.inferred {
                            " (inferred from the first rows; declare it in `columns`)"
                        } else {
                            ""
                        },
                        excerpt(field)
                    ));
                }
            }
        }
        let geom = match plan.geom {
            None => None,
            Some(GeomPlan::Xy(xi, yi)) => {
                let (xb, yb) = (&rec[xi], &rec[yi]);
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
                let text = String::from_utf8_lossy(&rec[wi]);
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
/// repeated name gets a `_2`, `_3`... suffix.
fn header_names(rec: &ByteRecord) -> Vec<String> {
    let mut names: Vec<String> = Vec::with_capacity(rec.len());
    for (i, field) in rec.iter().enumerate() {
        let mut name = String::from_utf8_lossy(field).trim().to_string();
        if i == 0
            && let Some(rest) = name.strip_prefix('\u{feff}')
        {
            name = rest.to_string();
        }
        if name.is_empty() {
            name = format!("column_{}", i + 1);
        }
        if names.contains(&name) {
            let mut k = 2;
            while names.contains(&format!("{name}_{k}")) {
                k += 1;
            }
            name = format!("{name}_{k}");
        }
        names.push(name);
    }
    names
}

/// The first 40 characters of a cell, for messages.
fn excerpt(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(b);
    match s.char_indices().nth(40) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.into_owned(),
    }
}
