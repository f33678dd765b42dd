//! `csv_writer`: writes features to a CSV file, whole or not at all.
//!
//! ```yaml
//! - id: save
//!   action: csv_writer
//!   with:
//!     path: out/trips.csv.gz
//!     delimiter: ","
//!     header: true
//!     geometry: wkt
//! ```
//!
//! - Columns: the attributes of the first feature, in its schema order. Later features are
//!   written by looking those names up (a missing attribute is an empty cell); a feature
//!   with an attribute the first one lacked fails the run ([`ActionError::Data`] naming the
//!   attribute and the feature), because a streaming writer cannot add a column to rows it
//!   already wrote. Normalise the schemas upstream when inputs differ.
//! - `geometry: wkt` appends a `geometry` column holding WKT; `geometry: xy` appends `x` and
//!   `y` columns (points only; another shape fails the run). An attribute with the same
//!   name as a geometry column is left out: the geometry wins. No geometry: empty cells.
//! - Values print as their text form (null is empty, floats round-trip, dates ISO 8601). A
//!   field is quoted only when it must be (a delimiter, quote or line break inside), and an
//!   empty string is written `""` so that it reads back as an empty string, not as null:
//!   a CSV read by `csv_reader` and written here comes back byte for byte.
//! - The file is written under a temporary name and renamed into place when the run
//!   succeeds; a failed or cancelled run leaves no file. With no feature at all the file is
//!   empty (no header: the columns are unknown).
//! - `gzip` defaults to whether the name ends in `.gz`; the gzip header carries no time, so
//!   the same features always give the same bytes.
//! - `path` may hold `{attribute}` placeholders (`out/by_cat/{category}.csv`): one file per
//!   distinct value, each with its own columns and header, at most `max_open_files` open at
//!   once; a partition reopened after its file was closed continues in
//!   `{category}.part2.csv`. See `sinks/partition.rs` for the naming and the rule.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::Deserialize;
use sluice_runtime::action::schema_of;
use sluice_runtime::{
    ActionError, ActionKind, ActionSpec, BuildContext, BuiltAction, Feature, Schema, Value,
};

use super::text_writer::{RecordEncoder, TextOutput};

/// Parameters of `csv_writer`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CsvWriterParams {
    /// Where to write (a path, `file://` or `memory://` location).
    pub path: String,
    /// The field delimiter, one ASCII character.
    #[serde(default = "comma")]
    pub delimiter: char,
    /// Whether to write a header row of column names.
    #[serde(default = "yes")]
    pub header: bool,
    /// How to write the geometry: `wkt` (a `geometry` column) or `xy` (`x`, `y` columns, for
    /// points). Left out: the geometry is not written.
    #[serde(default)]
    pub geometry: Option<GeometryFormat>,
    /// Compress with gzip. Default: when the path ends in `.gz`.
    #[serde(default)]
    pub gzip: Option<bool>,
    /// With `{attribute}` placeholders in `path`: the most files open at once (the least
    /// recently used is finished when another is needed; see the module docs).
    #[serde(default = "default_max_open_files")]
    #[schemars(range(min = 1))]
    pub max_open_files: usize,
}

fn default_max_open_files() -> usize {
    64
}

/// How `csv_writer` writes geometries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum GeometryFormat {
    /// A `geometry` column of WKT.
    Wkt,
    /// `x` and `y` columns (points only).
    Xy,
}

fn comma() -> char {
    ','
}
fn yes() -> bool {
    true
}

/// The `csv_writer` action.
pub const SPEC: ActionSpec = ActionSpec::new(
    "csv_writer",
    ActionKind::Sink,
    "Writes features to a CSV file (gzip by extension), committed only when the run succeeds.",
    schema_of::<CsvWriterParams>,
    build,
)
.writes_partitions_to("path")
.example("path: out/trips.csv.gz\ndelimiter: \",\"\nheader: true\ngeometry: wkt\n");

fn build(ctx: &BuildContext) -> Result<BuiltAction, ActionError> {
    let p: CsvWriterParams = ctx.params()?;
    let output = TextOutput::new(p.path, p.gzip, p.max_open_files)?;
    if !p.delimiter.is_ascii() || matches!(p.delimiter, '\n' | '\r' | '"') {
        return Err(ActionError::param(
            "delimiter",
            format!(
                "must be one ASCII character other than a line break or '\"', found {:?}",
                p.delimiter
            ),
        ));
    }
    Ok(output.build(CsvEncoder::new(p.delimiter as u8, p.header, p.geometry)))
}

// ---------------------------------------------------------------------------------------------
// The encoder
// ---------------------------------------------------------------------------------------------

/// How features become CSV rows (shared by every file of the sink).
#[derive(Clone)]
struct CsvEncoder {
    delimiter: u8,
    header: bool,
    geometry: Option<GeometryFormat>,
    /// The bytes that make a field need quotes: the delimiter, `"`, `\n` and `\r`.
    special: Special,
    /// Reused buffer for one cell's text.
    cell: String,
}

/// A lookup table of the bytes that make a field need quotes.
type Special = [bool; 256];

/// The columns of one file, fixed by its first feature, and where the last schema seen
/// keeps them.
#[derive(Clone)]
struct Layout {
    columns: Arc<Schema>,
    /// The schema the `lookup` was made for.
    last: Arc<Schema>,
    /// For each column, the index of that attribute in `last` (`None`: empty cell).
    lookup: Vec<Option<usize>>,
}

/// Appends one delimited row: quotes a field only when it must, doubles quotes inside, and
/// writes an empty string as `""` (an empty field is null).
struct Row<'a> {
    buf: &'a mut Vec<u8>,
    delimiter: u8,
    special: &'a Special,
    /// Fields written so far.
    fields: usize,
    /// The row ends in an empty unquoted field (null).
    last_empty: bool,
}

impl Row<'_> {
    fn new<'a>(buf: &'a mut Vec<u8>, delimiter: u8, special: &'a Special) -> Row<'a> {
        Row {
            buf,
            delimiter,
            special,
            fields: 0,
            last_empty: false,
        }
    }

    fn start_field(&mut self) {
        if self.fields > 0 {
            self.buf.push(self.delimiter);
        }
        self.fields += 1;
    }

    fn is_special(&self, text: &[u8]) -> bool {
        text.iter().any(|&c| self.special[usize::from(c)])
    }

    /// Appends a field; `string` says that an empty `text` is an empty string, not null.
    fn field(&mut self, text: &[u8], string: bool) {
        self.start_field();
        let needs_quotes = (text.is_empty() && string) || self.is_special(text);
        self.last_empty = text.is_empty() && !needs_quotes;
        if !needs_quotes {
            self.buf.extend_from_slice(text);
            return;
        }
        self.quoted(text);
    }

    /// Appends a value's text: written in place, and moved into quotes in the rare case that
    /// it needs them (a delimiter inside a number or a JSON array).
    fn value(&mut self, value: &Value) {
        if let Value::String(s) = value {
            return self.field(s.as_bytes(), true);
        }
        self.start_field();
        let start = self.buf.len();
        value.write_text(self.buf);
        self.last_empty = self.buf.len() == start;
        if self.is_special(&self.buf[start..]) {
            let text = self.buf.split_off(start);
            self.quoted(&text);
        }
    }

    /// Appends `text` in quotes, doubling the quotes inside.
    fn quoted(&mut self, text: &[u8]) {
        self.buf.push(b'"');
        for &c in text {
            if c == b'"' {
                self.buf.push(b'"');
            }
            self.buf.push(c);
        }
        self.buf.push(b'"');
    }

    /// Ends the row. A row of one empty field is written `""`: an empty line would be
    /// skipped by readers.
    fn end(self) {
        if self.fields == 1 && self.last_empty {
            self.buf.extend_from_slice(b"\"\"");
        }
        self.buf.push(b'\n');
    }
}

impl CsvEncoder {
    fn new(delimiter: u8, header: bool, geometry: Option<GeometryFormat>) -> CsvEncoder {
        let mut special = [false; 256];
        for b in [delimiter, b'"', b'\n', b'\r'] {
            special[usize::from(b)] = true;
        }
        CsvEncoder {
            delimiter,
            header,
            geometry,
            special,
            cell: String::new(),
        }
    }

    fn geometry_columns(&self) -> &'static [&'static str] {
        match self.geometry {
            None => &[],
            Some(GeometryFormat::Wkt) => &["geometry"],
            Some(GeometryFormat::Xy) => &["x", "y"],
        }
    }
}

impl RecordEncoder for CsvEncoder {
    const EXTENSION: &'static str = "csv";

    type State = Layout;
    /// The layout's lookup is a cache of where the columns sit in the last schema seen.
    const PARALLEL: bool = true;

    /// The header, with the columns of `first`.
    fn header(&mut self, first: &Feature, buf: &mut Vec<u8>) -> Result<Layout, ActionError> {
        let geom_cols = self.geometry_columns();
        let columns = Schema::new(
            first
                .schema()
                .names()
                .iter()
                .filter(|n| !geom_cols.contains(&n.as_ref()))
                .cloned(),
        );
        if self.header {
            let mut row = Row::new(buf, self.delimiter, &self.special);
            let names = columns.names().iter().map(|n| n.as_bytes());
            let geom = geom_cols.iter().map(|n| n.as_bytes());
            for name in names.chain(geom) {
                row.field(name, true);
            }
            row.end();
        }
        Ok(Layout {
            lookup: lookup(&columns, first, geom_cols)?,
            last: first.schema().clone(),
            columns,
        })
    }

    fn encode(
        &mut self,
        layout: &mut Layout,
        f: &Feature,
        buf: &mut Vec<u8>,
    ) -> Result<(), ActionError> {
        let geom_cols = self.geometry_columns();
        if !Arc::ptr_eq(&layout.last, f.schema()) {
            layout.lookup = lookup(&layout.columns, f, geom_cols)?;
            layout.last = f.schema().clone();
        }
        let mut row = Row::new(buf, self.delimiter, &self.special);
        let values = f.values();
        for slot in &layout.lookup {
            match slot.and_then(|i| values.get(i)) {
                Some(v) => row.value(v),
                None => row.field(b"", false),
            }
        }
        match self.geometry {
            None => {}
            Some(GeometryFormat::Wkt) => {
                self.cell.clear();
                if let Some(g) = f.geometry() {
                    self.cell.push_str(&crate::wkt_geometry::write(g));
                }
                row.field(self.cell.as_bytes(), false);
            }
            Some(GeometryFormat::Xy) => match f.geometry().map(|g| &g.geom) {
                None => {
                    row.field(b"", false);
                    row.field(b"", false);
                }
                Some(geo_types::Geometry::Point(p)) => {
                    for c in [p.x(), p.y()] {
                        self.cell.clear();
                        sluice_runtime::feature::format_float(c, &mut self.cell);
                        row.field(self.cell.as_bytes(), false);
                    }
                }
                Some(other) => {
                    return Err(ActionError::data(
                        Some(format!("feature {}", f.id())),
                        format!(
                            "geometry: xy writes points only, found a {}",
                            shape_name(other)
                        ),
                    ));
                }
            },
        }
        row.end();
        Ok(())
    }
}

/// Where each column sits in `f`'s schema; an attribute of `f` that is not a column is an
/// error.
fn lookup(
    columns: &Schema,
    f: &Feature,
    geom_cols: &[&str],
) -> Result<Vec<Option<usize>>, ActionError> {
    let schema = f.schema();
    if let Some(extra) = schema
        .names()
        .iter()
        .find(|n| columns.index_of(n).is_none() && !geom_cols.contains(&n.as_ref()))
    {
        return Err(ActionError::data(
            Some(format!("feature {}", f.id())),
            format!(
                "attribute \"{extra}\" is not a column of this file (the columns come from the first feature: {})",
                columns
                    .names()
                    .iter()
                    .map(|n| n.as_ref())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    Ok(columns.names().iter().map(|n| schema.index_of(n)).collect())
}

pub(crate) fn shape_name(g: &geo_types::Geometry<f64>) -> &'static str {
    use geo_types::Geometry as G;
    match g {
        G::Point(_) => "point",
        G::Line(_) => "line",
        G::LineString(_) => "line string",
        G::Polygon(_) => "polygon",
        G::MultiPoint(_) => "multi point",
        G::MultiLineString(_) => "multi line string",
        G::MultiPolygon(_) => "multi polygon",
        G::GeometryCollection(_) => "geometry collection",
        G::Rect(_) => "rectangle",
        G::Triangle(_) => "triangle",
    }
}

#[cfg(test)]
mod tests;
