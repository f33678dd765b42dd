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
//! - In a partitioned run (`--partition I/N`), several files are shared out by index, each
//!   read whole. One JSON Lines file is split in byte ranges: task I reads the lines that
//!   start in its share `[len·I/N, len·(I+1)/N)` of the file (a JSON text holds no raw line
//!   break, so lines are found with a plain scan, which also counts the lines before the
//!   share: rejections keep the file's line numbers). One JSON array is split by element:
//!   each task counts the elements in a first pass that builds nothing (a syntax error fails
//!   it there, like the whole read), then reads the elements whose index lies in its share
//!   `[count·I/N, count·(I+1)/N)`, skipping the others unbuilt. Every task decides between
//!   lines and an array from the head of the file. A gzip file of JSON Lines (it cannot be
//!   entered in the middle), and standard input, are read whole by the first task.

use std::io::{BufRead, BufReader};
use std::ops::Range;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::Deserialize;
use serde::de::{DeserializeSeed, Error as _, IgnoredAny, SeqAccess, Visitor};
use sluice_runtime::action::schema_of;
use sluice_runtime::shape::{GeometryShape, Shape, ShapeContext};
use sluice_runtime::{
    ActionError, ActionKind, ActionSpec, BuildContext, BuiltAction, DEFAULT_PORT, Feature,
    NodeContext, NodeImpl, REJECTED_PORT, REJECTION_REASON, Schema, Value,
};

use super::file_input::{
    files_param, first_byte, open_buffered, open_text_with_len, rereadable, text_at_offsets,
};
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
.sliced("files by index; one JSON Lines file by newline-aligned byte ranges, one JSON array by element ranges; a gzip JSON Lines file is read whole by the first task")
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
        let part = out.part();
        let whole = part.is_whole()
            || if array {
                !rereadable(location)
            } else {
                !text_at_offsets(location)
            };
        if whole {
            // The whole file; a part of a file that cannot be split is the first part's.
            if !part.is_first() {
                return Ok(());
            }
            return if array {
                let all = 0..u64::MAX;
                self.read_array(location, input, start.lines, all, &mut file, ctx, out)
            } else {
                let from = LinesFrom {
                    lines_before: start.lines,
                    limit: u64::MAX,
                    at_file_start: false,
                };
                self.read_lines(location, input, from, &mut file, ctx, out)
            };
        }
        if array {
            // Count the elements, then read this part's share of them.
            let count = self.count_elements(location, input, start.lines, ctx)?;
            let share = part.range(count);
            if share.is_empty() {
                return Ok(());
            }
            let mut input = open_buffered(location)?;
            let start = first_byte(&mut input, location)?;
            self.read_array(location, input, start.lines, share, &mut file, ctx, out)
        } else {
            drop(input);
            let (mut input, len) = open_text_with_len(location)?;
            let share = part.range(len);
            let Some((at, lines)) = line_start(&mut input, share.start, location, ctx)? else {
                return Ok(());
            };
            if at >= share.end {
                return Ok(());
            }
            let from = LinesFrom {
                lines_before: lines,
                limit: share.end - at,
                at_file_start: at == 0,
            };
            self.read_lines(location, input, from, &mut file, ctx, out)
        }
    }

    fn splits_files(&self) -> bool {
        true
    }
}

/// Moves `input`, read from the start of the file, to the first line that starts at or after
/// byte `target`: that line's offset, and the line breaks before it (the number of the line
/// before it). `None` when no line starts there (the end of the file).
fn line_start(
    input: &mut dyn BufRead,
    target: u64,
    location: &str,
    ctx: &NodeContext,
) -> Result<Option<(u64, u64)>, ActionError> {
    if target == 0 {
        return Ok(Some((0, 0)));
    }
    let io = |e| ActionError::io(format!("reading {location}"), e);
    // Lines start at 0 and after each `\n`: the first at or after `target` follows the first
    // `\n` at or after `target - 1`.
    let (mut offset, mut lines, mut buffers) = (0u64, 0u64, 0u32);
    loop {
        let buf = input.fill_buf().map_err(io)?;
        if buf.is_empty() {
            return Ok(None);
        }
        let before = (target - 1).saturating_sub(offset).min(buf.len() as u64) as usize;
        lines += memchr::memchr_iter(b'\n', &buf[..before]).count() as u64;
        if let Some(k) = memchr::memchr(b'\n', &buf[before..]) {
            let used = before + k + 1;
            input.consume(used);
            return Ok(Some((offset + used as u64, lines + 1)));
        }
        let n = buf.len();
        input.consume(n);
        offset += n as u64;
        buffers += 1;
        if buffers.is_multiple_of(64) {
            ctx.check_cancelled()?;
        }
    }
}

/// Where a read of JSON Lines starts in its file, and where it ends.
struct LinesFrom {
    /// The line breaks before the input's first byte.
    lines_before: u64,
    /// Lines are read while they start within this many bytes of the input.
    limit: u64,
    /// Whether the input is the file from its first byte, whose byte order mark (if any) the
    /// first line drops.
    at_file_start: bool,
}

/// A UTF-8 byte order mark.
const BOM: &[u8] = b"\xef\xbb\xbf";

/// What one file's read keeps between objects.
struct FileState<'a> {
    cache: SchemaCache<'a>,
    rejected: Extender,
}

impl JsonReader {
    /// Reads the lines of `input` that start within `from.limit` bytes.
    fn read_lines(
        &self,
        location: &str,
        mut input: Box<dyn BufRead + Send>,
        from: LinesFrom,
        file: &mut FileState<'_>,
        ctx: &NodeContext,
        out: &mut FileOut<'_>,
    ) -> Result<(), ActionError> {
        let mut buf = Vec::new();
        let mut line: u64 = from.lines_before;
        let mut read: u64 = 0;
        loop {
            if read >= from.limit {
                return Ok(());
            }
            let first = read == 0;
            buf.clear();
            let n = input
                .read_until(b'\n', &mut buf)
                .map_err(|e| ActionError::io(format!("reading {location} near line {line}"), e))?;
            if n == 0 {
                return Ok(());
            }
            read += n as u64;
            line += 1;
            if line.is_multiple_of(8192) {
                ctx.check_cancelled()?;
            }
            let text = match buf.strip_prefix(BOM) {
                Some(rest) if first && from.at_file_start => rest,
                _ => &buf[..],
            }
            .trim_ascii();
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

    /// Reads the elements of the array whose index lies in `share` (all of them:
    /// `0..u64::MAX`); the others are skipped unbuilt, and the walk ends after the share.
    #[allow(clippy::too_many_arguments)]
    fn read_array(
        &self,
        location: &str,
        input: Box<dyn BufRead + Send>,
        skipped_lines: u64,
        share: Range<u64>,
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
            share,
            stopped: &mut stopped,
        };
        let result = serde::Deserializer::deserialize_seq(&mut de, visitor).and_then(|()| de.end());
        match stopped {
            Some(Stop::Failed(e)) => return Err(e),
            Some(Stop::ShareRead) => return Ok(()),
            None => {}
        }
        result.map_err(|e| array_error(location, skipped_lines, e))
    }

    /// The number of elements of the array, without building them: a first pass for a part
    /// of the file. It fails where the whole read would fail on the array's syntax.
    fn count_elements(
        &self,
        location: &str,
        input: Box<dyn BufRead + Send>,
        skipped_lines: u64,
        ctx: &NodeContext,
    ) -> Result<u64, ActionError> {
        let mut de = serde_json::Deserializer::from_reader(BufReader::new(input));
        let mut stopped = None;
        let visitor = CountVisitor {
            ctx,
            stopped: &mut stopped,
        };
        let result = serde::Deserializer::deserialize_seq(&mut de, visitor)
            .and_then(|count| de.end().map(|()| count));
        if let Some(e) = stopped {
            return Err(e);
        }
        result.map_err(|e| array_error(location, skipped_lines, e))
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

/// A serde_json error of an array, located in the file (`skipped_lines`: line breaks
/// consumed before the parser started).
fn array_error(location: &str, skipped_lines: u64, e: serde_json::Error) -> ActionError {
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
}

/// What the top-level array expects, in its errors.
const ARRAY_EXPECTED: &str = "a JSON array of objects";

/// Why a walk of the array stopped before its end.
enum Stop {
    /// Emitting failed, or the run was cancelled.
    Failed(ActionError),
    /// The elements of the share were read: the rest is another part's.
    ShareRead,
}

/// Counts the elements of the top-level array, skipping each unbuilt.
struct CountVisitor<'r, 'x> {
    ctx: &'r NodeContext,
    /// Set when the run was cancelled.
    stopped: &'x mut Option<ActionError>,
}

impl<'de> Visitor<'de> for CountVisitor<'_, '_> {
    type Value = u64;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(ARRAY_EXPECTED)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<u64, A::Error> {
        let mut count: u64 = 0;
        while seq.next_element::<IgnoredAny>()?.is_some() {
            count += 1;
            if count.is_multiple_of(8192)
                && let Err(e) = self.ctx.check_cancelled()
            {
                *self.stopped = Some(e);
                return Err(A::Error::custom("stopped"));
            }
        }
        Ok(count)
    }
}

/// Walks the top-level array, emitting each element of the share as soon as it is parsed.
struct ArrayVisitor<'r, 'f, 'a, 'o, 'x> {
    reader: &'r JsonReader,
    location: &'r str,
    file: &'f mut FileState<'a>,
    ctx: &'r NodeContext,
    out: &'f mut FileOut<'o>,
    /// The indices of the elements read; the others are skipped unbuilt.
    share: Range<u64>,
    /// Why the walk stopped before the end of the array.
    stopped: &'x mut Option<Stop>,
}

impl<'de> Visitor<'de> for ArrayVisitor<'_, '_, '_, '_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(ARRAY_EXPECTED)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let location = self.location;
        let mut index: u64 = 0;
        loop {
            if index >= self.share.end {
                *self.stopped = Some(Stop::ShareRead);
                return Err(A::Error::custom("the share is read"));
            }
            if index < self.share.start {
                if seq.next_element::<IgnoredAny>()?.is_none() {
                    return Ok(());
                }
                index += 1;
                if index.is_multiple_of(8192)
                    && let Err(e) = self.ctx.check_cancelled()
                {
                    *self.stopped = Some(Stop::Failed(e));
                    return Err(A::Error::custom("stopped"));
                }
                continue;
            }
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
                *self.stopped = Some(Stop::Failed(e));
                return Err(A::Error::custom("stopped"));
            }
        }
    }
}

#[cfg(test)]
mod tests;
