//! `geojson_reader`: reads GeoJSON (a FeatureCollection, a Feature, or a GeoJSON text
//! sequence) into features.
//!
//! ```yaml
//! - id: parcels
//!   action: geojson_reader
//!   with:
//!     path: data/parcels.geojson
//!     crs: 4326
//! ```
//!
//! - `path` is a file, a folder (its files) or a glob pattern; files are read in name order
//!   (several at once, up to `read_ahead`, emitted in file order), streamed, and decompressed
//!   when the name ends in `.gz`.
//! - A file holds a FeatureCollection, whose `features` are parsed one at a time as the
//!   array streams by (the file is never held whole), a single Feature, or a sequence of
//!   either (one per line, with or without the RFC 8142 record separator).
//! - `properties` become attributes (nested objects maps, arrays arrays; features with the
//!   same keys in the same order share one schema); `geometry` becomes the feature's geometry
//!   (null: none) with the CRS `crs` when it is given; otherwise the CRS the collection's
//!   2008-style `crs` member names (`{"type":"name","properties":{"name":
//!   "urn:ogc:def:crs:EPSG::2154"}}`, as GDAL and sluice's own geojson_writer write it, before
//!   `features`); otherwise 4326 (RFC 7946 coordinates are WGS 84). A `crs` member that names
//!   no CRS sluice knows fails the run naming the file (give the `crs` parameter).
//!   A feature's `id` becomes the attribute `id` when its properties have no `id` of their own.
//!   Other members (`bbox`, foreign members) are ignored.
//! - Bad data goes to the `rejected` port with its properties and `_rejection_reason` =
//!   `file: feature N: reason` (N counts from 0 in the file): a geometry that is not valid
//!   GeoJSON, an element that is not a Feature, properties that are not an object. Invalid
//!   JSON cannot be skipped (the rest of the file cannot be found again): it fails the run
//!   with `file:line:column`.
//! - In a partitioned run (`--partition I/N`), several files are shared out by index, each
//!   read whole. One file is split by feature: each task counts the file's features (the
//!   elements of `features`, and the top-level texts that are not collections) in a first
//!   pass that builds nothing (invalid JSON fails it there, like the whole read), then reads
//!   the features whose index lies in its share `[count·I/N, count·(I+1)/N)`, skipping the
//!   others unbuilt and stopping after its share; `feature N` in rejections counts in the
//!   whole file. A file that cannot be read twice (standard input), or an object that is not
//!   a FeatureCollection but holds a `features` array, is read whole by the first task.

use std::io::{BufRead, BufReader, Read};
use std::ops::Range;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::Deserialize;
use serde::de::{
    DeserializeSeed, Deserializer, Error as _, IgnoredAny, MapAccess, SeqAccess, Visitor,
};
use sluice_runtime::action::schema_of;
use sluice_runtime::shape::{GeometryShape, Shape, ShapeContext};
use sluice_runtime::{
    ActionError, ActionKind, ActionSpec, BuildContext, BuiltAction, DEFAULT_PORT, Feature,
    NodeContext, NodeImpl, REJECTED_PORT, REJECTION_REASON, Schema, Value,
};

use super::file_input::{files_param, first_byte, open_buffered, rereadable};
use super::json_values::{
    Element, Extender, Row, RowSeed, SchemaCache, ValueSeed, geojson_geometry, json_error_message,
};
use sluice_runtime::input::{FileOut, FileReader, FileSource, SharedCache};

/// Parameters of `geojson_reader`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GeojsonReaderParams {
    /// A file, a folder (every file in it) or a glob pattern such as `data/*.geojson`.
    /// Files are read in name order; a name ending in `.gz` is decompressed.
    pub path: String,
    /// The CRS of the coordinates (RFC 7946 GeoJSON is always WGS 84, 4326): an EPSG code
    /// (`2154`, `"EPSG:2154"`, `"urn:ogc:def:crs:EPSG::2154"`) or a WKT naming one.
    /// Default: the file's `crs` member, else 4326.
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
    /// `geojson`, `json`, each also with `.gz`. An empty list reads every file.
    #[serde(default)]
    pub extensions: Option<Vec<String>>,
}

/// The `geojson_reader` action.
pub const SPEC: ActionSpec = ActionSpec::new(
    "geojson_reader",
    ActionKind::Source,
    "Reads GeoJSON FeatureCollections, Features or feature sequences (a file, folder or glob).",
    schema_of::<GeojsonReaderParams>,
    build,
)
.shape(shape)
.outputs(&[DEFAULT_PORT, REJECTED_PORT])
.reads_from("path")
.sliced("files by index; one GeoJSON file by ranges of its features (counted in a first pass)")
.example("path: data/parcels.geojson\ncrs: 4326\n");

/// The attributes are known only once the file is read: unread (open, naming this node).
fn shape(ctx: &ShapeContext) -> Result<Vec<Shape>, ActionError> {
    let p: GeojsonReaderParams = ctx.params()?;
    // Without the parameter the file may name its CRS: unknown until it is read.
    let geometry = GeometryShape::Present { crs: p.crs };
    let shape = Shape::unread(ctx.node_id).with_geometry(geometry);
    Ok(vec![shape.clone(), shape.rejected()])
}

fn build(ctx: &BuildContext) -> Result<BuiltAction, ActionError> {
    let p: GeojsonReaderParams = ctx.params()?;
    let files = files_param(
        p.path,
        p.read_ahead,
        p.extensions,
        &["geojson", "json"],
        true,
    )?;
    Ok(BuiltAction::new(NodeImpl::Source(Box::new(
        FileReader::new(
            files,
            GeojsonReader {
                crs: p.crs,
                schemas: SharedCache::new(),
            },
        ),
    ))))
}

struct GeojsonReader {
    crs: Option<u32>,
    schemas: SharedCache<Vec<Arc<str>>, Arc<Schema>>,
}

impl FileSource for GeojsonReader {
    fn read_file(
        &self,
        location: &str,
        ctx: &NodeContext,
        out: &mut FileOut<'_>,
    ) -> Result<(), ActionError> {
        let part = out.part();
        if part.is_whole() {
            return self.walk(location, Pass::Whole, ctx, out).map(drop);
        }
        // A file that cannot be split is the first part's, whole.
        let whole_in_first = |out: &mut FileOut<'_>| {
            if part.is_first() {
                self.walk(location, Pass::Whole, ctx, out).map(drop)
            } else {
                Ok(())
            }
        };
        if !rereadable(location) {
            return whole_in_first(out);
        }
        let counted = self.walk(location, Pass::Count, ctx, out)?;
        if counted.irregular {
            // An object's members were read before it was known to be a feature: its
            // features cannot be told apart without building them all.
            return whole_in_first(out);
        }
        let share = part.range(counted.features);
        if share.is_empty() {
            return Ok(());
        }
        self.walk(location, Pass::Share(share), ctx, out).map(drop)
    }

    fn splits_files(&self) -> bool {
        true
    }
}

/// What a walk of a file does with its features.
enum Pass {
    /// Builds and emits every feature.
    Whole,
    /// Counts the features, building and emitting none.
    Count,
    /// Builds and emits the features whose index lies in the range, and stops after them.
    Share(Range<u64>),
}

/// What a walk found.
struct Walked {
    /// The features (and would-be features) of the file: what the whole read numbers.
    features: u64,
    /// Whether an object that is not a FeatureCollection held a `features` array (so that
    /// some of its members were read before its index was known).
    irregular: bool,
}

impl GeojsonReader {
    /// Walks the file once, doing `pass`.
    fn walk(
        &self,
        location: &str,
        pass: Pass,
        ctx: &NodeContext,
        out: &mut FileOut<'_>,
    ) -> Result<Walked, ActionError> {
        let mut input = open_buffered(location)?;
        let start = first_byte(&mut input, location)?;
        let (share, stop_after) = match pass {
            Pass::Whole => (0..u64::MAX, false),
            Pass::Count => (0..0, false),
            Pass::Share(share) => (share, true),
        };
        let mut walk = Walk {
            reader: self,
            location,
            ctx,
            out,
            cache: SchemaCache::new(&self.schemas),
            with_id: Extender::new("id"),
            rejected: Extender::new(REJECTION_REASON),
            index: 0,
            stopped: None,
            file_crs: None,
            share,
            stop_after,
            irregular: false,
        };
        let walked = |walk: &Walk| Walked {
            features: walk.index,
            irregular: walk.irregular,
        };
        if start.byte.is_none() {
            return Ok(walked(&walk));
        }
        // A concrete BufReader on top: serde_json reads byte by byte, which std makes cheap
        // only for `BufReader`.
        let mut de = serde_json::Deserializer::from_reader(BufReader::new(RsToSpace(input)));
        loop {
            let result = TopSeed {
                walk: &mut walk,
                top: true,
            }
            .deserialize(&mut de);
            match walk.stopped.take() {
                Some(Stop::Failed(e)) => return Err(e),
                Some(Stop::ShareRead) => return Ok(walked(&walk)),
                None => {}
            }
            match result {
                Ok(top) => walk.finish_top(top)?,
                Err(e) => return Err(located(location, start.lines, &e)),
            }
            // More than white space left: another GeoJSON text of a sequence.
            if walk.share_read() || de.end().is_ok() {
                return Ok(walked(&walk));
            }
        }
    }
}

/// A serde_json error located in the file (`skipped_lines`: line breaks consumed before
/// the parser started).
fn located(location: &str, skipped_lines: u64, e: &serde_json::Error) -> ActionError {
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
        ActionError::io(
            format!("reading {at}"),
            std::io::Error::other(e.to_string()),
        )
    } else {
        ActionError::data(Some(at), json_error_message(e))
    }
}

/// RFC 8142 sequences put a record separator (0x1E) before each text; JSON never holds a raw
/// 0x1E (not even in strings), so it is read as white space.
struct RsToSpace(Box<dyn BufRead + Send>);

impl Read for RsToSpace {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.0.read(buf)?;
        for b in &mut buf[..n] {
            if *b == 0x1e {
                *b = b' ';
            }
        }
        Ok(n)
    }
}

/// One file's walk: where features go, and the state shared by every object in the file.
struct Walk<'r, 'o, 'p> {
    reader: &'r GeojsonReader,
    location: &'r str,
    ctx: &'r NodeContext,
    out: &'o mut FileOut<'p>,
    cache: SchemaCache<'r>,
    with_id: Extender,
    rejected: Extender,
    /// Features (and would-be features) seen in the file so far.
    index: u64,
    /// Why the walk stopped before the end of the file.
    stopped: Option<Stop>,
    /// The CRS the collection's `crs` member names, once read.
    file_crs: Option<u32>,
    /// The indices of the features built and emitted; the others are counted, not built.
    share: Range<u64>,
    /// Whether the walk ends after the share.
    stop_after: bool,
    /// Whether an object that is not a FeatureCollection held a `features` array.
    irregular: bool,
}

/// Why a walk stopped before the end of the file.
enum Stop {
    /// Emitting failed, or the run was cancelled.
    Failed(ActionError),
    /// The features of the share were read: the rest is another part's.
    ShareRead,
}

/// The members of a GeoJSON object that matter here.
#[derive(Default)]
struct Parts {
    type_name: Option<String>,
    properties: Option<Element>,
    geometry: Option<serde_json::Value>,
    id: Option<Value>,
    /// A `features` member was present (and streamed).
    has_features: bool,
}

/// A top-level text: an object's parts (its `features` already streamed), or not an object.
enum Top {
    Object(Box<Parts>),
    Other(&'static str),
}

impl Walk<'_, '_, '_> {
    /// Whether the feature read now is built (and emitted or rejected).
    fn building(&self) -> bool {
        self.share.contains(&self.index)
    }

    /// Whether the walk has read its share and ends.
    fn share_read(&self) -> bool {
        self.stop_after && self.index >= self.share.end
    }

    /// Counts a feature that is not built.
    fn pass_over(&mut self) -> Result<(), ActionError> {
        self.index += 1;
        if self.index.is_multiple_of(8192) {
            self.ctx.check_cancelled()?;
        }
        Ok(())
    }

    /// Handles a top-level text once it is read: a Feature is emitted; a FeatureCollection
    /// was emitted while it streamed.
    fn finish_top(&mut self, top: Top) -> Result<(), ActionError> {
        if let Top::Object(parts) = &top
            && parts.has_features
            && parts.type_name.as_deref() != Some("FeatureCollection")
        {
            self.irregular = true;
        }
        match top {
            Top::Object(parts) if parts.type_name.as_deref() == Some("FeatureCollection") => {
                if parts.has_features {
                    Ok(())
                } else {
                    // Zero features read silently would hide a broken or truncated file.
                    Err(ActionError::data(
                        Some(self.location.to_string()),
                        "a FeatureCollection without a `features` array",
                    ))
                }
            }
            Top::Object(parts) => self.feature(*parts),
            Top::Other(what) => {
                self.reject(None, format!("expected a GeoJSON object, found {what}"))
            }
        }
    }

    /// Emits one Feature, or rejects it.
    fn feature(&mut self, parts: Parts) -> Result<(), ActionError> {
        if !self.building() {
            return self.pass_over();
        }
        let Parts {
            type_name,
            properties,
            geometry,
            id,
            has_features: _,
        } = parts;
        let row = match properties {
            None | Some(Element::Other("null")) => None,
            Some(Element::Row(row)) => Some(row),
            Some(Element::Other(what)) => {
                return self.reject(
                    None,
                    format!("properties: expected an object, found {what}"),
                );
            }
        };
        if type_name.as_deref() != Some("Feature") {
            let found = match &type_name {
                Some(t) => format!("type \"{t}\""),
                None => "no type".to_string(),
            };
            return self.reject(row, format!("expected a Feature, found {found}"));
        }
        let (mut schema, mut values) = match row {
            Some(Row { schema, values, .. }) => (schema, values),
            None => (Schema::empty(), Vec::new()),
        };
        if let Some(id) = id
            && schema.index_of("id").is_none()
        {
            schema = self.with_id.extend(&schema);
            values.push(id);
        }
        let geometry = match geometry.as_ref().map(geojson_geometry) {
            None | Some(Ok(None)) => None,
            Some(Ok(Some(mut g))) => {
                g.crs = Some(self.reader.crs.or(self.file_crs).unwrap_or(4326));
                Some(g)
            }
            Some(Err(message)) => {
                let row = Row {
                    schema,
                    values,
                    geometry: None,
                };
                return self.reject(Some(row), format!("geometry: {message}"));
            }
        };
        self.index += 1;
        if self.index.is_multiple_of(8192) {
            self.ctx.check_cancelled()?;
        }
        self.out
            .emit(Feature::new(0, schema, values).with_geometry(geometry))
    }

    /// Sends a would-be feature to `rejected`, with its properties when it has them.
    fn reject(&mut self, row: Option<Row>, reason: String) -> Result<(), ActionError> {
        if !self.building() {
            return self.pass_over();
        }
        let (schema, mut values) = match row {
            Some(Row { schema, values, .. }) => (schema, values),
            None => (Schema::empty(), Vec::new()),
        };
        let reason = format!("{}: feature {}: {reason}", self.location, self.index);
        self.index += 1;
        values.push(Value::String(reason.into()));
        let schema = self.rejected.extend(&schema);
        self.out.emit_rejected(Feature::new(0, schema, values))
    }
}

/// Reads a GeoJSON value: a top-level text (`top`, whose FeatureCollection's features are
/// streamed to the walk) or one element of `features` (never streamed further).
struct TopSeed<'w, 'r, 'o, 'p> {
    walk: &'w mut Walk<'r, 'o, 'p>,
    top: bool,
}

impl<'de> DeserializeSeed<'de> for TopSeed<'_, '_, '_, '_> {
    type Value = Top;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Top, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for TopSeed<'_, '_, '_, '_> {
    type Value = Top;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(if self.top {
            "a GeoJSON object"
        } else {
            "a GeoJSON feature"
        })
    }
    fn visit_bool<E>(self, _: bool) -> Result<Top, E> {
        Ok(Top::Other("a boolean"))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Top, E> {
        Ok(Top::Other("a number"))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Top, E> {
        Ok(Top::Other("a number"))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Top, E> {
        Ok(Top::Other("a number"))
    }
    fn visit_str<E>(self, _: &str) -> Result<Top, E> {
        Ok(Top::Other("a string"))
    }
    fn visit_unit<E>(self) -> Result<Top, E> {
        Ok(Top::Other("null"))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Top, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Top::Other("an array"))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Top, A::Error> {
        read_parts(self.walk, map, self.top).map(|p| Top::Object(Box::new(p)))
    }
}

/// Reads an object's members; with `stream`, a `features` array is walked feature by
/// feature (a FeatureCollection).
fn read_parts<'de, A: MapAccess<'de>>(
    walk: &mut Walk<'_, '_, '_>,
    mut map: A,
    stream: bool,
) -> Result<Parts, A::Error> {
    let mut parts = Parts::default();
    while let Some(key) = map.next_key::<String>()? {
        match key.as_str() {
            "type" => parts.type_name = map.next_value::<Option<String>>()?,
            // A feature outside the walk's share is counted, not built. The members of a
            // top-level object are still parsed (and dropped): they may belong to a
            // collection, which no share owns, and must fail every pass where the whole read
            // fails on them.
            "properties" | "geometry" | "id" if !walk.building() && stream => {
                map.next_value::<Parsed>()?;
            }
            "properties" | "geometry" | "id" if !walk.building() => {
                map.next_value::<IgnoredAny>()?;
            }
            "properties" => {
                parts.properties = Some(map.next_value_seed(RowSeed {
                    cache: &mut walk.cache,
                    geometry_field: None,
                })?)
            }
            "geometry" => parts.geometry = Some(map.next_value::<serde_json::Value>()?),
            "id" => parts.id = Some(map.next_value_seed(ValueSeed)?),
            "crs" if stream && walk.reader.crs.is_none() => {
                let member = map.next_value::<serde_json::Value>()?;
                let name = member
                    .pointer("/properties/name")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or_default();
                match crate::crs::CrsParam::Text(name.to_string()).resolve() {
                    Ok(crate::crs::CrsDefinition {
                        code: Some(code), ..
                    }) => walk.file_crs = Some(code),
                    _ => {
                        return Err(serde::de::Error::custom(format!(
                            "the collection's crs member names {member}, which is not a CRS \
                             sluice knows; give the crs parameter"
                        )));
                    }
                }
            }
            "features" if stream => {
                parts.has_features = true;
                map.next_value_seed(FeaturesSeed { walk: &mut *walk })?
            }
            _ => {
                map.next_value::<IgnoredAny>()?;
            }
        }
    }
    Ok(parts)
}

/// A JSON value parsed as the whole read parses it (numbers, strings and their escapes
/// checked), and dropped: unlike [`IgnoredAny`], which only skips its syntax, it fails where
/// building the value would.
struct Parsed;

impl<'de> serde::Deserialize<'de> for Parsed {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Parsed, D::Error> {
        d.deserialize_any(ParsedVisitor)
    }
}

struct ParsedVisitor;

impl<'de> Visitor<'de> for ParsedVisitor {
    type Value = Parsed;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Parsed, E> {
        Ok(Parsed)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Parsed, E> {
        Ok(Parsed)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Parsed, E> {
        Ok(Parsed)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Parsed, E> {
        Ok(Parsed)
    }
    fn visit_str<E>(self, _: &str) -> Result<Parsed, E> {
        Ok(Parsed)
    }
    fn visit_unit<E>(self) -> Result<Parsed, E> {
        Ok(Parsed)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Parsed, A::Error> {
        while seq.next_element::<Parsed>()?.is_some() {}
        Ok(Parsed)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Parsed, A::Error> {
        while map.next_key::<Parsed>()?.is_some() {
            map.next_value::<Parsed>()?;
        }
        Ok(Parsed)
    }
}

/// Walks a `features` array, emitting each feature as soon as it is read.
struct FeaturesSeed<'w, 'r, 'o, 'p> {
    walk: &'w mut Walk<'r, 'o, 'p>,
}

impl<'de> DeserializeSeed<'de> for FeaturesSeed<'_, '_, '_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for FeaturesSeed<'_, '_, '_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array of features")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        loop {
            let Some(top) = seq.next_element_seed(TopSeed {
                walk: &mut *self.walk,
                top: false,
            })?
            else {
                return Ok(());
            };
            let result = match top {
                Top::Object(parts) => self.walk.feature(*parts),
                Top::Other(what) => self
                    .walk
                    .reject(None, format!("expected a Feature, found {what}")),
            };
            if let Err(e) = result {
                self.walk.stopped = Some(Stop::Failed(e));
                return Err(A::Error::custom("stopped"));
            }
            if self.walk.share_read() {
                self.walk.stopped = Some(Stop::ShareRead);
                return Err(A::Error::custom("the share is read"));
            }
        }
    }
}

#[cfg(test)]
mod tests;
