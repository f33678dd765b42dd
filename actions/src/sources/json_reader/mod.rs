//! `json_reader`: reads JSON Lines or a JSON array of objects into features.
//!
//! ```yaml
//! - id: events
//!   action: json_reader
//!   with:
//!     path: data/events-*.jsonl.gz
//!     format: auto
//!     geometry_field: location
//!     crs: 4326
//! ```
//!
//! - `path` is a file, a folder (its files) or a glob pattern; files are read in name order
//!   (several at once, up to `read_ahead`, emitted in file order), streamed, and decompressed
//!   when the name ends in `.gz`.
//! - `format: auto` (the default) reads a file whose first non-space character is `[` as one
//!   JSON array of objects, and anything else as JSON Lines (one object per line; blank lines
//!   are skipped). `array` and `lines` force one or the other. An array is parsed element by
//!   element (serde_json streaming): the file is never held whole.
//! - Each object's keys become attributes in the object's order: whole numbers become ints,
//!   other numbers floats, nested objects maps and arrays arrays. Objects with the same keys
//!   in the same order share one schema; a missing key is simply absent.
//! - `geometry_field` names a key holding a GeoJSON geometry object (or null): it becomes the
//!   feature's geometry (with `crs`), not an attribute.
//! - Bad data goes to the `rejected` port with `_rejection_reason` = `file:line: reason`: a
//!   line that is not valid JSON or not an object (with its text in `_raw`), an array element
//!   that is not an object (`file: element N: ...`), a bad geometry (with the object's
//!   attributes). A syntax error inside an array cannot be skipped (the rest of the array
//!   cannot be found again): it fails the run with `file:line:column`.

use std::io::{BufRead, BufReader};
use std::sync::Arc;

use schemars::JsonSchema;
use serde::Deserialize;
use serde::de::{DeserializeSeed, Error as _, SeqAccess, Visitor};
use sluice_runtime::action::schema_of;
use sluice_runtime::shape::{GeometryShape, Shape, ShapeContext};
use sluice_runtime::{
    ActionError, ActionKind, ActionSpec, BuildContext, BuiltAction, DEFAULT_PORT, Feature,
    NodeContext, NodeImpl, REJECTED_PORT, REJECTION_REASON, Schema, Value,
};

use super::file_input::{files_param, first_byte, open_buffered};
use super::json_values::{
    Element, Extender, Row, RowSeed, SchemaCache, geojson_geometry, json_error_message,
};
use sluice_runtime::input::{FileOut, FileReader, FileSource, SharedCache};

/// Parameters of `json_reader`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JsonReaderParams {
    /// A file, a folder (every file in it) or a glob pattern such as `data/*.jsonl`. Files
    /// are read in name order; a name ending in `.gz` is decompressed.
    pub path: String,
    /// `auto` (a file starting with `[` is an array, anything else JSON Lines), `array` or
    /// `lines`.
    #[serde(default)]
    pub format: JsonFormat,
    /// A key holding a GeoJSON geometry object, which becomes the feature's geometry.
    #[serde(default)]
    pub geometry_field: Option<String>,
    /// The CRS of the geometries' coordinates: an EPSG code (`2154`, `"EPSG:2154"`,
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
    /// File name endings read from a folder or glob (without the dot, any case). Default:
    /// `json`, `jsonl`, `ndjson`, `geojson`, each also with `.gz`. An empty list reads every file.
    #[serde(default)]
    pub extensions: Option<Vec<String>>,
}

/// How a JSON file is laid out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum JsonFormat {
    /// An array when the first non-space character is `[`, JSON Lines otherwise.
    #[default]
    Auto,
    /// One JSON array of objects.
    Array,
    /// One object per line (JSON Lines, NDJSON).
    Lines,
}

/// The `json_reader` action.
pub const SPEC: ActionSpec = ActionSpec::new(
    "json_reader",
    ActionKind::Source,
    "Reads JSON Lines or JSON arrays of objects (a file, folder or glob; gzip by extension).",
    schema_of::<JsonReaderParams>,
    build,
)
.shape(shape)
.outputs(&[DEFAULT_PORT, REJECTED_PORT])
.reads_from("path")
.example("path: data/events-*.jsonl.gz\nformat: auto\ngeometry_field: location\ncrs: 4326\n");

/// The attributes are known only once the file is read: unread (open, naming this node).
fn shape(ctx: &ShapeContext) -> Result<Vec<Shape>, ActionError> {
    let p: JsonReaderParams = ctx.params()?;
    let geometry = match p.geometry_field {
        Some(_) => GeometryShape::Present { crs: p.crs },
        None => GeometryShape::Absent,
    };
    let shape = Shape::unread(ctx.node_id).with_geometry(geometry);
    Ok(vec![shape.clone(), shape.rejected()])
}

fn build(ctx: &BuildContext) -> Result<BuiltAction, ActionError> {
    let p: JsonReaderParams = ctx.params()?;
    let files = files_param(
        p.path,
        p.read_ahead,
        p.extensions,
        &["json", "jsonl", "ndjson", "geojson"],
        true,
    )?;
    Ok(BuiltAction::new(NodeImpl::Source(Box::new(
        FileReader::new(
            files,
            JsonReader {
                format: p.format,
                geometry_field: p.geometry_field,
                crs: p.crs,
                schemas: SharedCache::new(),
                raw_schema: Schema::new(["_raw", REJECTION_REASON]),
            },
        ),
    ))))
}

struct JsonReader {
    format: JsonFormat,
    geometry_field: Option<String>,
    crs: Option<u32>,
    schemas: SharedCache<Vec<Arc<str>>, Arc<Schema>>,
    /// The schema of rejected lines: the raw text and the reason.
    raw_schema: Arc<Schema>,
}

impl FileSource for JsonReader {
    fn read_file(
        &self,
        location: &str,
        ctx: &NodeContext,
        out: &mut FileOut<'_>,
    ) -> Result<(), ActionError> {
        let mut input = open_buffered(location)?;
        let start = first_byte(&mut input, location)?;
        let Some(first) = start.byte else {
            return Ok(());
        };
        let mut file = FileState {
            cache: SchemaCache::new(&self.schemas),
            rejected: Extender::new(REJECTION_REASON),
        };
        let array = match self.format {
            JsonFormat::Auto => first == b'[',
            JsonFormat::Array => true,
            JsonFormat::Lines => false,
        };
        if array {
            self.read_array(location, input, start.lines, &mut file, ctx, out)
        } else {
            self.read_lines(location, input, start.lines, &mut file, ctx, out)
        }
    }
}

/// What one file's read keeps between objects.
struct FileState<'a> {
    cache: SchemaCache<'a>,
    rejected: Extender,
}

impl JsonReader {
    fn read_lines(
        &self,
        location: &str,
        mut input: Box<dyn BufRead + Send>,
        skipped_lines: u64,
        file: &mut FileState<'_>,
        ctx: &NodeContext,
        out: &mut FileOut<'_>,
    ) -> Result<(), ActionError> {
        let mut buf = Vec::new();
        let mut line: u64 = skipped_lines;
        loop {
            buf.clear();
            let n = input
                .read_until(b'\n', &mut buf)
                .map_err(|e| ActionError::io(format!("reading {location} near line {line}"), e))?;
            if n == 0 {
                return Ok(());
            }
            line += 1;
            if line.is_multiple_of(8192) {
                ctx.check_cancelled()?;
            }
            let text = buf.trim_ascii();
            if text.is_empty() {
                continue;
            }
            let mut de = serde_json::Deserializer::from_slice(text);
            let parsed = RowSeed {
                cache: &mut file.cache,
                geometry_field: self.geometry_field.as_deref(),
            }
            .deserialize(&mut de)
            .and_then(|el| de.end().map(|()| el));
            let reason = match parsed {
                Ok(Element::Row(row)) => {
                    self.emit_row(row, || format!("{location}:{line}"), file, out)?;
                    continue;
                }
                Ok(Element::Other(what)) => format!("expected an object, found {what}"),
                Err(e) => match std::str::from_utf8(text) {
                    // JSON text is UTF-8: say so, rather than what the parser made of it.
                    Err(bad) => format!(
                        "column {}: invalid UTF-8 (byte {} of the line)",
                        bad.valid_up_to() + 1,
                        bad.valid_up_to() + 1
                    ),
                    Ok(_) => format!("column {}: {}", e.column(), json_error_message(&e)),
                },
            };
            // The whole line travels with the reason, as text or (invalid UTF-8) as the bytes
            // that were read: a rejected row loses nothing.
            let raw = match std::str::from_utf8(text) {
                Ok(t) => Value::String(t.into()),
                Err(_) => Value::Bytes(text.into()),
            };
            let reason = Value::String(format!("{location}:{line}: {reason}").into());
            out.emit_to(
                1,
                Feature::new(0, self.raw_schema.clone(), vec![raw, reason]),
            )?;
        }
    }

    fn read_array(
        &self,
        location: &str,
        input: Box<dyn BufRead + Send>,
        skipped_lines: u64,
        file: &mut FileState<'_>,
        ctx: &NodeContext,
        out: &mut FileOut<'_>,
    ) -> Result<(), ActionError> {
        // A concrete BufReader on top: serde_json reads byte by byte, which std makes cheap
        // only for `BufReader`.
        let mut de = serde_json::Deserializer::from_reader(BufReader::new(input));
        let mut stopped = None;
        let visitor = ArrayVisitor {
            reader: self,
            location,
            file,
            ctx,
            out,
            stopped: &mut stopped,
        };
        let result = serde::Deserializer::deserialize_seq(&mut de, visitor).and_then(|()| de.end());
        if let Some(e) = stopped {
            return Err(e);
        }
        result.map_err(|e| {
            let at = if e.line() == 0 {
                location.to_string()
            } else {
                format!(
                    "{location}:{}:{}",
                    e.line() as u64 + skipped_lines,
                    e.column()
                )
            };
            if e.is_io() {
                ActionError::io(format!("reading {at}"), e.into())
            } else {
                ActionError::data(Some(at), json_error_message(&e))
            }
        })
    }

    /// Emits a parsed object: to `default`, or to `rejected` when its geometry is bad.
    fn emit_row(
        &self,
        row: Row,
        at: impl Fn() -> String,
        file: &mut FileState<'_>,
        out: &mut FileOut<'_>,
    ) -> Result<(), ActionError> {
        let Row {
            schema,
            mut values,
            geometry,
        } = row;
        let geometry = match geometry.as_ref().map(geojson_geometry) {
            None | Some(Ok(None)) => None,
            Some(Ok(Some(mut g))) => {
                g.crs = self.crs;
                Some(g)
            }
            Some(Err(message)) => {
                let field = self.geometry_field.as_deref().unwrap_or_default();
                values.push(Value::String(
                    format!("{}: field \"{field}\": {message}", at()).into(),
                ));
                let rejected = file.rejected.extend(&schema);
                return out.emit_rejected(Feature::new(0, rejected, values));
            }
        };
        out.emit(Feature::new(0, schema, values).with_geometry(geometry))
    }
}

/// Walks the top-level array, emitting each element as soon as it is parsed.
struct ArrayVisitor<'r, 'f, 'a, 'o, 'x> {
    reader: &'r JsonReader,
    location: &'r str,
    file: &'f mut FileState<'a>,
    ctx: &'r NodeContext,
    out: &'f mut FileOut<'o>,
    /// The error that stopped the walk (emitting failed, or the run was cancelled).
    stopped: &'x mut Option<ActionError>,
}

impl<'de> Visitor<'de> for ArrayVisitor<'_, '_, '_, '_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON array of objects")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let location = self.location;
        let mut index: u64 = 0;
        loop {
            let seed = RowSeed {
                cache: &mut self.file.cache,
                geometry_field: self.reader.geometry_field.as_deref(),
            };
            let Some(element) = seq.next_element_seed(seed)? else {
                return Ok(());
            };
            let at = || format!("{location}: element {index}");
            let result = match element {
                Element::Row(row) => self.reader.emit_row(row, at, self.file, self.out),
                Element::Other(what) => {
                    let reason = format!("{}: expected an object, found {what}", at());
                    self.out.emit_to(
                        1,
                        Feature::new(
                            0,
                            self.reader.raw_schema.clone(),
                            vec![Value::Null, Value::String(reason.into())],
                        ),
                    )
                }
            };
            index += 1;
            let result = result.and_then(|()| {
                if index.is_multiple_of(8192) {
                    self.ctx.check_cancelled()
                } else {
                    Ok(())
                }
            });
            if let Err(e) = result {
                *self.stopped = Some(e);
                return Err(A::Error::custom("stopped"));
            }
        }
    }
}

#[cfg(test)]
mod tests;
