//! `fgb_reader`: reads FlatGeobuf files into features, using the file's packed R-tree to
//! read only the features a bounding box selects.
//!
//! ```yaml
//! - id: roads
//!   action: fgb_reader
//!   with:
//!     path: data/roads.fgb
//!     bbox: [2.25, 48.81, 2.42, 48.90]
//! ```
//!
//! - `path` is a file, a folder (its `.fgb` files), a glob pattern, or a zip member
//!   (`data/x.zip!/roads.fgb`); files are read in name order (several at once, up to
//!   `read_ahead`, emitted in file order). Each is opened with `store::open_seekable`, so a
//!   remote file is fetched by ranges, never whole.
//! - `bbox: [minx, miny, maxx, maxy]` keeps the features whose **envelope** (bounding box)
//!   intersects the box, edges included; it is not an exact geometric test, just as GDAL's
//!   spatial filter pre-filters by envelope through the index. On a file with an index, only
//!   the index nodes the search visits and the selected features are read (the search
//!   follows the header's `index_node_size`); the envelope of each selected geometry is
//!   checked again, so the result is the same with or without an index. On a file without an
//!   index every feature is read and filtered by envelope, and the run log says so.
//! - Columns come from the header, in order, typed: Byte, UByte, Short, UShort, Int, UInt and
//!   Long are ints; ULong is an int, and a value above `i64::MAX` sends the feature to
//!   `rejected` (never wrapped, never rounded); Float and Double are floats; Bool is a bool;
//!   String a string; Json a map or an array when the text is a JSON object or array, else
//!   the text as a string; DateTime a datetime (UTC) when the text has a zone, a local
//!   datetime when it has none, a date when it is only `YYYY-MM-DD` (as `fgb_writer` writes
//!   dates), and a text that is none of these sends the feature to `rejected`; Binary is
//!   bytes. A property a feature does not carry is null.
//! - Geometry: points, lines, polygons (holes), their multi forms and collections, with Z
//!   and M into the geometry's ordinates (a missing Z or M list of a feature in a file that
//!   declares them reads as NaN). The CRS is the header's (`org` EPSG, or none, with a
//!   `code`) unless the `crs` parameter is given. Curves, surfaces and TINs go to `rejected`.
//!   A feature without geometry has none.
//! - Bad files fail the run with an error naming the file (and the feature number, counted
//!   from 0 in file order): wrong magic bytes, a header length beyond the file or above
//!   10 MiB, a header or feature that is not a valid FlatBuffer, an index that points outside
//!   itself, a feature size past the end of the file (nothing is allocated beyond the
//!   file's size), a file cut short. Rejected features carry `_rejection_reason` =
//!   `file: feature N: reason`.
//!
//! # Why the `flatgeobuf` crate for the schema only
//!
//! The crate (6.0, without its HTTP feature: it brings geozero, geo-traits and a pinned
//! flatbuffers) gives verified access to the FlatBuffers tables and the builders, which
//! are used here. Its file reader is not: `select_bbox` searches with the default node size
//! instead of the header's, a corrupt index or feature count reaches `assert!`s and
//! unchecked arithmetic (panics), a feature's size prefix is allocated before it is checked
//! against the file, and a file cut inside a size prefix reads as a clean end. So the file
//! layout (magic, header, index, features) and the index search are done here, every
//! offset and count checked against the file's length first.

use std::collections::VecDeque;
use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;

use flatgeobuf::{ColumnType, GeometryType};
use schemars::JsonSchema;
use serde::Deserialize;
use sluice_runtime::action::schema_of;
use sluice_runtime::feature::Ordinates;
use sluice_runtime::input::{FileOut, FileReader, FileSource, SharedCache};
use sluice_runtime::shape::{GeometryShape, Shape, ShapeContext, Type};
use sluice_runtime::store;
use sluice_runtime::{
    ActionError, ActionKind, ActionSpec, BuildContext, BuiltAction, DEFAULT_PORT, Feature,
    Geometry, NodeContext, NodeImpl, REJECTED_PORT, REJECTION_REASON, Schema, Value,
};

use super::file_input::{files_param, peekable};

/// Parameters of `fgb_reader`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FgbReaderParams {
    /// A file, a folder (every `.fgb` file in it), a glob pattern such as `data/*.fgb`, or a
    /// zip member (`data/x.zip!/a.fgb`).
    pub path: String,
    /// `[minx, miny, maxx, maxy]`: keep only the features whose envelope intersects this
    /// box (in the file's coordinates), read through the file's spatial index when it has
    /// one. Default: every feature.
    #[serde(default)]
    #[schemars(length(min = 4, max = 4))]
    pub bbox: Option<Vec<f64>>,
    /// The CRS of the coordinates: an EPSG code (`2154`, `"EPSG:2154"`, a URN) or a WKT
    /// naming one. Default: the CRS the file's header names.
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
    /// `fgb`. An empty list reads every file.
    #[serde(default)]
    pub extensions: Option<Vec<String>>,
}

/// The `fgb_reader` action.
pub const SPEC: ActionSpec = ActionSpec::new(
    "fgb_reader",
    ActionKind::Source,
    "Reads FlatGeobuf files; a bbox reads only the features the spatial index selects.",
    schema_of::<FgbReaderParams>,
    build,
)
.outputs(&[DEFAULT_PORT, REJECTED_PORT])
.reads_from("path")
.sliced("files by index; one FlatGeobuf file is read whole by the first task")
.shape(shape)
.example("path: data/roads.fgb\nbbox: [2.25, 48.81, 2.42, 48.9]\n");

/// A checked `bbox` parameter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Bbox {
    pub(crate) min_x: f64,
    pub(crate) min_y: f64,
    pub(crate) max_x: f64,
    pub(crate) max_y: f64,
}

impl Bbox {
    /// Whether the box `[min_x, min_y, max_x, max_y]` meets this one (edges included).
    pub(crate) fn intersects(&self, min_x: f64, min_y: f64, max_x: f64, max_y: f64) -> bool {
        min_x <= self.max_x && max_x >= self.min_x && min_y <= self.max_y && max_y >= self.min_y
    }
}

fn bbox_param(bbox: Option<Vec<f64>>) -> Result<Option<Bbox>, ActionError> {
    let Some(b) = bbox else {
        return Ok(None);
    };
    let [min_x, min_y, max_x, max_y] = b[..] else {
        return Err(ActionError::param(
            "bbox",
            format!(
                "must be 4 numbers [minx, miny, maxx, maxy], found {}",
                b.len()
            ),
        ));
    };
    if !b.iter().all(|v| v.is_finite()) {
        return Err(ActionError::param("bbox", "must be 4 finite numbers"));
    }
    if min_x > max_x || min_y > max_y {
        return Err(ActionError::param(
            "bbox",
            format!("minimum above maximum in [{min_x}, {min_y}, {max_x}, {max_y}]"),
        ));
    }
    Ok(Some(Bbox {
        min_x,
        min_y,
        max_x,
        max_y,
    }))
}

fn fgb_files(
    path: String,
    read_ahead: Option<usize>,
    extensions: Option<Vec<String>>,
) -> Result<sluice_runtime::input::Files, ActionError> {
    files_param(path, read_ahead, extensions, &["fgb"], false)
}

fn build(ctx: &BuildContext) -> Result<BuiltAction, ActionError> {
    let p: FgbReaderParams = ctx.params()?;
    let bbox = bbox_param(p.bbox)?;
    let files = fgb_files(p.path, p.read_ahead, p.extensions)?;
    Ok(BuiltAction::new(NodeImpl::Source(Box::new(
        FileReader::new(
            files,
            FgbReader {
                bbox,
                crs: p.crs,
                schemas: SharedCache::new(),
            },
        ),
    ))))
}

/// Files whose headers validation reads at most: a path naming more is open.
const SHAPE_FILES: usize = 8;

/// The columns of the files `path` names, from their headers (no feature is read). Unknown
/// when a file cannot be read yet.
fn shape(ctx: &ShapeContext) -> Result<Vec<Shape>, ActionError> {
    let p: FgbReaderParams = ctx.params()?;
    let files = fgb_files(p.path, p.read_ahead, p.extensions)?;
    let locations = files.locations();
    let mut merged: Option<Shape> = None;
    for location in locations.iter().take(SHAPE_FILES) {
        if !peekable(location) {
            return Ok(Vec::new());
        }
        let Ok(mut r) = store::open_seekable(location) else {
            return Ok(Vec::new());
        };
        let len = r.len();
        let Ok(header) = read_header(&mut r, len, location) else {
            return Ok(Vec::new());
        };
        let attributes = header
            .columns
            .iter()
            .map(|c| (c.name.clone(), column_value_type(c.ty)));
        let crs = p.crs.or(header.crs);
        let shape = Shape::closed(attributes).with_geometry(GeometryShape::Present { crs });
        merged = Some(match merged {
            None => shape,
            Some(before) => before.merge(&shape),
        });
    }
    let Some(mut shape) = merged else {
        return Ok(Vec::new());
    };
    shape.open |= locations.len() > SHAPE_FILES;
    let rejected = shape.rejected();
    Ok(vec![shape, rejected])
}

/// The value type a column reads as.
fn column_value_type(ty: ColumnType) -> Type {
    match ty {
        ColumnType::Bool => Type::Bool,
        ColumnType::Float | ColumnType::Double => Type::Float,
        ColumnType::String => Type::String,
        ColumnType::Binary => Type::Bytes,
        // Json: a map, an array or a string; DateTime: a datetime, a local one or a date.
        ColumnType::Json | ColumnType::DateTime => Type::Any,
        _ => Type::Int,
    }
}

struct FgbReader {
    bbox: Option<Bbox>,
    crs: Option<u32>,
    /// Column names seen before (in any file) get the same schemas back.
    schemas: SharedCache<Vec<String>, (Arc<Schema>, Arc<Schema>)>,
}

impl FileSource for FgbReader {
    fn read_file(
        &self,
        location: &str,
        ctx: &NodeContext,
        out: &mut FileOut<'_>,
    ) -> Result<(), ActionError> {
        let mut input = store::open_seekable(location)?;
        let len = input.len();
        self.read(&mut input, len, location, ctx, out)
    }
}

// ---------------------------------------------------------------------------------------------
// The file layout: magic bytes, header, index, features
// ---------------------------------------------------------------------------------------------

/// The first 8 bytes of a FlatGeobuf file: `fgb`, the major version (3), `fgb`, the patch
/// version.
pub(crate) const MAGIC: [u8; 8] = [b'f', b'g', b'b', 3, b'f', b'g', b'b', 0];

/// The largest header read (GDAL and the reference readers use the same limit).
const HEADER_MAX: u32 = 10 << 20;

/// Size of one index node: four f64 bounds and a u64 offset.
pub(crate) const NODE_SIZE_BYTES: u64 = 40;

/// A column of the header.
#[derive(Debug, Clone)]
pub(crate) struct Column {
    pub(crate) name: String,
    pub(crate) ty: ColumnType,
}

/// What the reader keeps of a header.
#[derive(Debug, Clone)]
pub(crate) struct Header {
    pub(crate) geometry_type: GeometryType,
    pub(crate) has_z: bool,
    pub(crate) has_m: bool,
    pub(crate) columns: Vec<Column>,
    /// 0: unknown (a streamed file; then there is no index).
    pub(crate) features_count: u64,
    /// 0: no index.
    pub(crate) index_node_size: u16,
    pub(crate) crs: Option<u32>,
    /// Where the index (or, without one, the features) starts.
    pub(crate) end: u64,
}

/// Reads and checks the magic bytes and the header.
pub(crate) fn read_header<R: Read>(
    r: &mut R,
    len: u64,
    location: &str,
) -> Result<Header, ActionError> {
    let bad = |m: String| ActionError::data(Some(location.to_string()), m);
    let io = |e: std::io::Error| ActionError::io(format!("reading {location}"), e);
    if len < 12 {
        let mut head = vec![0; len as usize];
        r.read_exact(&mut head).map_err(io)?;
        if !head.is_empty() && !MAGIC[..head.len().min(3)].starts_with(&head[..head.len().min(3)]) {
            return Err(bad(format!(
                "not a FlatGeobuf file (it starts with {:02x?}, not the magic bytes \"fgb\")",
                head
            )));
        }
        return Err(bad(format!(
            "not a FlatGeobuf file: {len} bytes, too short for the magic bytes and the header size (truncated?)"
        )));
    }
    let mut magic = [0u8; 8];
    r.read_exact(&mut magic).map_err(io)?;
    if magic[0..3] != MAGIC[0..3] || magic[4..7] != MAGIC[4..7] {
        return Err(bad(format!(
            "not a FlatGeobuf file: bad magic bytes {magic:02x?} (expected \"fgb\", version, \"fgb\", patch)"
        )));
    }
    if magic[3] != MAGIC[3] {
        return Err(bad(format!(
            "FlatGeobuf major version {} is not supported (only version 3)",
            magic[3]
        )));
    }
    let mut size = [0u8; 4];
    r.read_exact(&mut size).map_err(io)?;
    let header_size = u32::from_le_bytes(size);
    if !(8..=HEADER_MAX).contains(&header_size) {
        return Err(bad(format!(
            "header length {header_size} is not plausible (8 bytes to {} MiB)",
            HEADER_MAX >> 20
        )));
    }
    let end = 12 + u64::from(header_size);
    if end > len {
        return Err(bad(format!(
            "header length {header_size} runs past the end of the file ({len} bytes; truncated?)"
        )));
    }
    let mut buf = vec![0u8; 4 + header_size as usize];
    buf[..4].copy_from_slice(&size);
    r.read_exact(&mut buf[4..]).map_err(io)?;
    let h = flatgeobuf::size_prefixed_root_as_header(&buf)
        .map_err(|e| bad(format!("the header is not a valid FlatGeobuf header: {e}")))?;
    let mut columns = Vec::new();
    if let Some(cols) = h.columns() {
        for c in cols.iter() {
            let name = c.name().to_string();
            if columns.iter().any(|x: &Column| x.name == name) {
                return Err(bad(format!("the header has two columns named \"{name}\"")));
            }
            if c.type_().variant_name().is_none() {
                return Err(bad(format!(
                    "column \"{name}\" has unknown type code {}",
                    c.type_().0
                )));
            }
            columns.push(Column {
                name,
                ty: c.type_(),
            });
        }
    }
    let crs = h.crs().and_then(|c| {
        let org = c.org().unwrap_or("EPSG");
        if org.eq_ignore_ascii_case("EPSG") {
            u32::try_from(c.code())
                .ok()
                .filter(|code| *code > 0)
                .or_else(|| c.code_string().and_then(|s| s.parse().ok()))
        } else if org.eq_ignore_ascii_case("OGC")
            && c.code_string()
                .is_some_and(|s| s.eq_ignore_ascii_case("CRS84"))
        {
            Some(4326)
        } else {
            None
        }
    });
    Ok(Header {
        geometry_type: h.geometry_type(),
        has_z: h.has_z(),
        has_m: h.has_m(),
        columns,
        features_count: h.features_count(),
        index_node_size: h.index_node_size(),
        crs,
        end,
    })
}

/// The node ranges of each level of a packed R-tree of `num_items` leaves, leaves first
/// (level 0), in storage order (the root is node 0). `None` when the sizes overflow.
pub(crate) fn level_bounds(num_items: u64, node_size: u16) -> Option<Vec<(u64, u64)>> {
    let node_size = u64::from(node_size);
    if num_items == 0 || node_size < 2 {
        return None;
    }
    let mut counts = vec![num_items];
    let mut n = num_items;
    let mut total = n;
    loop {
        n = n.div_ceil(node_size);
        total = total.checked_add(n)?;
        counts.push(n);
        if n == 1 {
            break;
        }
    }
    let mut bounds = Vec::with_capacity(counts.len());
    let mut end = total;
    for c in counts {
        bounds.push((end - c, end));
        end -= c;
    }
    Some(bounds)
}

/// One feature the index selected: its number and its offset in the feature section.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Selected {
    offset: u64,
    index: u64,
}

/// Searches the packed R-tree that starts at `index_start` for leaves meeting `bbox`,
/// reading only the nodes the search visits. Every child pointer is checked against its
/// level before it is followed. The result is in file order, without repeats.
fn search_index<R: Read + Seek>(
    r: &mut R,
    index_start: u64,
    bounds: &[(u64, u64)],
    node_size: u16,
    bbox: &Bbox,
    location: &str,
) -> Result<Vec<Selected>, ActionError> {
    let bad = |m: String| ActionError::data(Some(location.to_string()), m);
    let io = |e: std::io::Error| ActionError::io(format!("reading {location}"), e);
    let leaves = bounds[0];
    let mut queue: VecDeque<(u64, usize)> = VecDeque::new();
    queue.push_back((0, bounds.len() - 1));
    let mut found = Vec::new();
    let mut buf = Vec::new();
    while let Some((node, level)) = queue.pop_front() {
        let (start, end_of_level) = bounds[level];
        if node < start || node >= end_of_level {
            return Err(bad(format!(
                "the spatial index is corrupt: node {node} is outside level {level} ({start}..{end_of_level})"
            )));
        }
        let end = (node + u64::from(node_size)).min(end_of_level);
        let count = (end - node) as usize;
        buf.resize(count * NODE_SIZE_BYTES as usize, 0);
        r.seek(SeekFrom::Start(index_start + node * NODE_SIZE_BYTES))
            .map_err(io)?;
        r.read_exact(&mut buf).map_err(io)?;
        for (i, item) in buf.chunks_exact(NODE_SIZE_BYTES as usize).enumerate() {
            let f = |k: usize| {
                f64::from_le_bytes(item[k * 8..k * 8 + 8].try_into().unwrap_or_default())
            };
            if !bbox.intersects(f(0), f(1), f(2), f(3)) {
                continue;
            }
            let offset = u64::from_le_bytes(item[32..40].try_into().unwrap_or_default());
            if level == 0 {
                found.push(Selected {
                    offset,
                    index: node + i as u64 - leaves.0,
                });
            } else {
                queue.push_back((offset, level - 1));
            }
        }
    }
    found.sort_unstable();
    found.dedup();
    Ok(found)
}

impl FgbReader {
    fn read<R: Read + Seek>(
        &self,
        r: &mut R,
        len: u64,
        location: &str,
        ctx: &NodeContext,
        out: &mut dyn Out,
    ) -> Result<(), ActionError> {
        let header = read_header(r, len, location)?;
        let bad = |m: String| ActionError::data(Some(location.to_string()), m);
        let names: Vec<String> = header.columns.iter().map(|c| c.name.clone()).collect();
        let (schema, rejected_schema) = self.schemas.get_or_insert_with(names.clone(), || {
            let schema = Schema::new(names.iter().map(String::as_str));
            let rejected = schema.with(REJECTION_REASON);
            (schema, rejected)
        });
        let decoder = Decoder {
            header: &header,
            crs: self.crs.or(header.crs),
            location,
            schema,
            rejected_schema,
        };
        // The index: present when both the node size and the count are.
        let indexed = header.index_node_size > 0 && header.features_count > 0;
        let mut features_start = header.end;
        let mut bounds = None;
        if indexed {
            if header.index_node_size < 2 {
                return Err(bad(format!(
                    "index node size {} is not valid (at least 2)",
                    header.index_node_size
                )));
            }
            // Every feature has a leaf of 40 bytes: a count the file cannot hold is corrupt,
            // found before anything is sized from it.
            let room = len - header.end;
            if header.features_count > room / NODE_SIZE_BYTES {
                return Err(bad(format!(
                    "the header counts {} features, more than the file's {len} bytes can hold (truncated or corrupt)",
                    header.features_count
                )));
            }
            let b = level_bounds(header.features_count, header.index_node_size)
                .ok_or_else(|| bad("the index size overflows".to_string()))?;
            let index_bytes = b[0].1 * NODE_SIZE_BYTES;
            if index_bytes > room {
                return Err(bad(format!(
                    "the spatial index ({index_bytes} bytes) runs past the end of the file ({len} bytes; truncated?)"
                )));
            }
            features_start = header.end + index_bytes;
            bounds = Some(b);
        }
        let mut feature = FeatureBuf {
            buf: Vec::new(),
            location,
            len,
            features_start,
        };
        match (self.bbox, bounds) {
            (Some(bbox), Some(b)) => {
                let selected =
                    search_index(r, header.end, &b, header.index_node_size, &bbox, location)?;
                for (n, s) in selected.iter().enumerate() {
                    if n.is_multiple_of(1024) {
                        ctx.check_cancelled()?;
                    }
                    feature.read_at(r, s.offset, s.index)?;
                    decoder.emit(&feature.buf, s.index, Some(&bbox), out)?;
                }
            }
            (bbox, _) => {
                if bbox.is_some() {
                    ctx.log(format!(
                        "{location} has no spatial index: every feature is read and filtered by envelope"
                    ));
                }
                let count = header.features_count;
                let mut offset = 0u64;
                let mut index = 0u64;
                r.seek(SeekFrom::Start(features_start))
                    .map_err(|e| ActionError::io(format!("reading {location}"), e))?;
                loop {
                    if count > 0 && index == count {
                        break;
                    }
                    if features_start + offset == len {
                        if count > 0 {
                            return Err(bad(format!(
                                "the file ends after {index} features, but its header counts {count} (truncated?)"
                            )));
                        }
                        break;
                    }
                    if index.is_multiple_of(1024) {
                        ctx.check_cancelled()?;
                    }
                    let size = feature.read_next(r, offset, index)?;
                    decoder.emit(&feature.buf, index, bbox.as_ref(), out)?;
                    offset += size;
                    index += 1;
                }
            }
        }
        Ok(())
    }
}

/// The bytes of one feature (its size prefix included), read with every size checked
/// against the file first.
struct FeatureBuf<'a> {
    buf: Vec<u8>,
    location: &'a str,
    len: u64,
    features_start: u64,
}

impl FeatureBuf<'_> {
    fn error(&self, index: u64, m: String) -> ActionError {
        ActionError::data(Some(format!("{}: feature {index}", self.location)), m)
    }

    /// Reads the feature at `offset` in the feature section (seeking there first).
    fn read_at<R: Read + Seek>(
        &mut self,
        r: &mut R,
        offset: u64,
        index: u64,
    ) -> Result<u64, ActionError> {
        let at = self
            .features_start
            .checked_add(offset)
            .filter(|a| *a < self.len);
        let Some(at) = at else {
            return Err(self.error(
                index,
                format!(
                    "the spatial index points at offset {offset}, past the end of the file (corrupt or truncated)"
                ),
            ));
        };
        r.seek(SeekFrom::Start(at))
            .map_err(|e| ActionError::io(format!("reading {}", self.location), e))?;
        self.read_next(r, offset, index)
    }

    /// Reads the feature the reader is at (`offset` in the feature section); returns its
    /// size with the prefix.
    fn read_next<R: Read>(
        &mut self,
        r: &mut R,
        offset: u64,
        index: u64,
    ) -> Result<u64, ActionError> {
        let at = self.features_start + offset;
        let left = self.len.saturating_sub(at);
        if left < 4 {
            return Err(self.error(
                index,
                format!("the file ends inside the feature's size ({left} of 4 bytes; truncated?)"),
            ));
        }
        let mut size = [0u8; 4];
        r.read_exact(&mut size)
            .map_err(|e| ActionError::io(format!("reading {}", self.location), e))?;
        let n = u64::from(u32::from_le_bytes(size));
        if n > left - 4 {
            return Err(self.error(
                index,
                format!(
                    "feature size {n} runs past the end of the file ({} bytes left; truncated or corrupt)",
                    left - 4
                ),
            ));
        }
        self.buf.clear();
        self.buf.extend_from_slice(&size);
        self.buf.resize(4 + n as usize, 0);
        r.read_exact(&mut self.buf[4..])
            .map_err(|e| ActionError::io(format!("reading {}", self.location), e))?;
        Ok(4 + n)
    }
}

// ---------------------------------------------------------------------------------------------
// Features
// ---------------------------------------------------------------------------------------------

/// Where decoded features go: a [`FileOut`] in a run (tests collect them).
trait Out {
    /// A feature for the `default` port.
    fn ok(&mut self, f: Feature) -> Result<(), ActionError>;
    /// A feature for the `rejected` port, with its reason.
    fn rejected(&mut self, f: Feature) -> Result<(), ActionError>;
}

impl Out for FileOut<'_> {
    fn ok(&mut self, f: Feature) -> Result<(), ActionError> {
        self.emit(f)
    }
    fn rejected(&mut self, f: Feature) -> Result<(), ActionError> {
        self.emit_rejected(f)
    }
}

/// Turns feature buffers into features.
struct Decoder<'a> {
    header: &'a Header,
    crs: Option<u32>,
    location: &'a str,
    schema: Arc<Schema>,
    rejected_schema: Arc<Schema>,
}

impl Decoder<'_> {
    /// Decodes one feature and emits it (to `rejected` when a value or its geometry cannot
    /// be read), unless `bbox` is given and its envelope misses it.
    fn emit(
        &self,
        buf: &[u8],
        index: u64,
        bbox: Option<&Bbox>,
        out: &mut dyn Out,
    ) -> Result<(), ActionError> {
        let located =
            |m: String| ActionError::data(Some(format!("{}: feature {index}", self.location)), m);
        let f = flatgeobuf::size_prefixed_root_as_feature(buf)
            .map_err(|e| located(format!("not a valid FlatGeobuf feature: {e}")))?;
        if f.columns().is_some_and(|c| !c.is_empty()) {
            return Err(located(
                "the feature has columns of its own; per-feature schemas are not supported".into(),
            ));
        }
        let geometry = match f.geometry() {
            None => Ok(None),
            Some(g) => read_geometry(&g, self.header).map(Some),
        };
        if let Some(bbox) = bbox {
            let hit = match &geometry {
                Ok(Some(g)) => {
                    envelope(&g.geom).is_some_and(|[a, b, c, d]| bbox.intersects(a, b, c, d))
                }
                Ok(None) => false,
                // A geometry that cannot be read is reported, not dropped.
                Err(_) => true,
            };
            if !hit {
                return Ok(());
            }
        }
        let mut values = vec![Value::Null; self.header.columns.len()];
        let mut problem = read_properties(
            f.properties().map(|p| p.bytes()).unwrap_or_default(),
            &self.header.columns,
            &mut values,
        )
        .map_err(located)?;
        let geometry = match geometry {
            Ok(g) => g.map(|g| g.with_crs(self.crs)),
            Err(m) => {
                problem.get_or_insert(format!("geometry: {m}"));
                None
            }
        };
        match problem {
            None => out.ok(Feature::new(0, self.schema.clone(), values).with_geometry(geometry)),
            Some(reason) => {
                values.push(Value::String(
                    format!("{}: feature {index}: {reason}", self.location).into(),
                ));
                out.rejected(Feature::new(0, self.rejected_schema.clone(), values))
            }
        }
    }
}

trait WithCrs {
    fn with_crs(self, crs: Option<u32>) -> Geometry;
}

impl WithCrs for Geometry {
    fn with_crs(mut self, crs: Option<u32>) -> Geometry {
        self.crs = crs;
        self
    }
}

/// The bounding box of a shape, `None` when it is empty (or NaN, an empty point).
pub(crate) fn envelope(g: &geo_types::Geometry<f64>) -> Option<[f64; 4]> {
    sluice_runtime::feature::envelope(g)
}

/// Reads the properties into `values` (one per column). A malformed encoding is an error;
/// a value that cannot be represented is the returned rejection reason.
fn read_properties(
    bytes: &[u8],
    columns: &[Column],
    values: &mut [Value],
) -> Result<Option<String>, String> {
    let mut pos = 0usize;
    let mut problem = None;
    let take = |pos: &mut usize, n: usize, what: &str| -> Result<&[u8], String> {
        let end = pos
            .checked_add(n)
            .filter(|e| *e <= bytes.len())
            .ok_or_else(|| {
                format!(
                    "properties end inside {what} ({} bytes left, {n} needed)",
                    bytes.len() - *pos
                )
            })?;
        let s = &bytes[*pos..end];
        *pos = end;
        Ok(s)
    };
    fn arr<const N: usize>(s: &[u8]) -> [u8; N] {
        let mut a = [0u8; N];
        a.copy_from_slice(&s[..N]);
        a
    }
    while pos < bytes.len() {
        let i = u16::from_le_bytes(arr(take(&mut pos, 2, "a column number")?)) as usize;
        let Some(column) = columns.get(i) else {
            return Err(format!(
                "property of column {i}, but the header has {} columns",
                columns.len()
            ));
        };
        let name = &column.name;
        let what = format!("column \"{name}\"");
        let v = match column.ty {
            ColumnType::Byte => {
                Value::Int(i64::from(i8::from_le_bytes(arr(take(&mut pos, 1, &what)?))))
            }
            ColumnType::UByte => Value::Int(i64::from(take(&mut pos, 1, &what)?[0])),
            ColumnType::Bool => Value::Bool(take(&mut pos, 1, &what)?[0] != 0),
            ColumnType::Short => Value::Int(i64::from(i16::from_le_bytes(arr(take(
                &mut pos, 2, &what,
            )?)))),
            ColumnType::UShort => Value::Int(i64::from(u16::from_le_bytes(arr(take(
                &mut pos, 2, &what,
            )?)))),
            ColumnType::Int => Value::Int(i64::from(i32::from_le_bytes(arr(take(
                &mut pos, 4, &what,
            )?)))),
            ColumnType::UInt => Value::Int(i64::from(u32::from_le_bytes(arr(take(
                &mut pos, 4, &what,
            )?)))),
            ColumnType::Long => Value::Int(i64::from_le_bytes(arr(take(&mut pos, 8, &what)?))),
            ColumnType::ULong => {
                let u = u64::from_le_bytes(arr(take(&mut pos, 8, &what)?));
                match i64::try_from(u) {
                    Ok(i) => Value::Int(i),
                    Err(_) => {
                        problem.get_or_insert(format!(
                            "{what}: unsigned value {u} is above the largest int ({})",
                            i64::MAX
                        ));
                        Value::Null
                    }
                }
            }
            ColumnType::Float => Value::Float(f64::from(f32::from_le_bytes(arr(take(
                &mut pos, 4, &what,
            )?)))),
            ColumnType::Double => Value::Float(f64::from_le_bytes(arr(take(&mut pos, 8, &what)?))),
            ColumnType::Binary => {
                let n = u32::from_le_bytes(arr(take(&mut pos, 4, &what)?)) as usize;
                Value::Bytes(take(&mut pos, n, &what)?.into())
            }
            ColumnType::String | ColumnType::Json | ColumnType::DateTime => {
                let n = u32::from_le_bytes(arr(take(&mut pos, 4, &what)?)) as usize;
                let raw = take(&mut pos, n, &what)?;
                match std::str::from_utf8(raw) {
                    Err(e) => {
                        problem.get_or_insert(format!("{what}: text is not valid UTF-8 ({e})"));
                        Value::Null
                    }
                    Ok(s) => match column.ty {
                        ColumnType::Json => json_value(s),
                        ColumnType::DateTime => match datetime_value(s) {
                            Some(v) => v,
                            None => {
                                problem.get_or_insert(format!(
                                    "{what}: \"{s}\" is not an ISO 8601 date or datetime"
                                ));
                                Value::String(s.into())
                            }
                        },
                        _ => Value::String(s.into()),
                    },
                }
            }
            other => return Err(format!("{what} has unknown type code {}", other.0)),
        };
        values[i] = v;
    }
    Ok(problem)
}

/// A Json column's text: a map or an array when it is a JSON object or array, else the text.
fn json_value(s: &str) -> Value {
    let t = s.trim_start();
    if (t.starts_with('{') || t.starts_with('['))
        && let Ok(j) = serde_json::from_str::<serde_json::Value>(s)
    {
        return Value::from_json(&j);
    }
    Value::String(s.into())
}

/// A DateTime column's text: zoned → datetime, no zone → local datetime, a date alone →
/// date. GDAL may write `/` for `-` in dates and a space for `T`.
fn datetime_value(s: &str) -> Option<Value> {
    let s = s.trim();
    if let Some(us) = sluice_runtime::feature::parse_zoned_datetime(s) {
        return Some(Value::DateTime(us));
    }
    if let Some(us) = sluice_runtime::feature::parse_local_datetime(s) {
        return Some(Value::LocalDateTime(us));
    }
    if s.len() == 10 {
        return sluice_runtime::feature::parse_date(s).map(Value::Date);
    }
    // A zoned datetime with a space for `T`.
    if s.len() > 10 && s.as_bytes()[10] == b' ' {
        let t = format!("{}T{}", &s[..10], &s[11..]);
        return sluice_runtime::feature::parse_zoned_datetime(&t).map(Value::DateTime);
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Geometry
// ---------------------------------------------------------------------------------------------

/// How deeply geometry collections may nest.
const MAX_DEPTH: usize = 32;

/// Z and M values gathered in WKB order while a geometry is read.
struct Dims {
    z: Option<Vec<f64>>,
    m: Option<Vec<f64>>,
}

/// Reads a feature's geometry with the header's dimensions.
fn read_geometry(g: &flatgeobuf::Geometry<'_>, header: &Header) -> Result<Geometry, String> {
    let mut dims = Dims {
        z: header.has_z.then(Vec::new),
        m: header.has_m.then(Vec::new),
    };
    let shape = read_shape(g, header.geometry_type, &mut dims, 0)?;
    Geometry::new(shape)
        .with_ordinates(Ordinates {
            z: dims.z,
            m: dims.m,
        })
        .map_err(|e| e.to_string())
}

fn type_name(t: GeometryType) -> String {
    t.variant_name()
        .map_or_else(|| format!("type {}", t.0), str::to_string)
}

fn read_shape(
    g: &flatgeobuf::Geometry<'_>,
    declared: GeometryType,
    dims: &mut Dims,
    depth: usize,
) -> Result<geo_types::Geometry<f64>, String> {
    use geo_types::{Geometry as G, MultiLineString, MultiPoint, MultiPolygon};
    if depth > MAX_DEPTH {
        return Err(format!("collections nest deeper than {MAX_DEPTH} levels"));
    }
    let ty = if declared == GeometryType::Unknown {
        g.type_()
    } else {
        declared
    };
    let parts = || -> Vec<flatgeobuf::Geometry<'_>> {
        g.parts().map(|p| p.iter().collect()).unwrap_or_default()
    };
    Ok(match ty {
        GeometryType::Point => {
            let c = Coords::of(g, dims)?;
            match c.n {
                0 => {
                    // An empty point: NaN coordinates, as WKB writes it.
                    c.push_missing(dims, 1);
                    G::Point(geo_types::Point::new(f64::NAN, f64::NAN))
                }
                1 => G::Point(geo_types::Point(c.line(0, 1, dims)?.0[0])),
                n => return Err(format!("a point with {n} coordinates")),
            }
        }
        GeometryType::MultiPoint => {
            let c = Coords::of(g, dims)?;
            G::MultiPoint(MultiPoint(
                c.line(0, c.n, dims)?
                    .0
                    .into_iter()
                    .map(geo_types::Point)
                    .collect(),
            ))
        }
        GeometryType::LineString => {
            let c = Coords::of(g, dims)?;
            G::LineString(c.line(0, c.n, dims)?)
        }
        GeometryType::MultiLineString => {
            let c = Coords::of(g, dims)?;
            let lines = c
                .ranges(g)?
                .into_iter()
                .map(|(a, b)| c.line(a, b, dims))
                .collect::<Result<Vec<_>, _>>()?;
            G::MultiLineString(MultiLineString(lines))
        }
        GeometryType::Polygon => G::Polygon(read_polygon(g, dims)?),
        GeometryType::MultiPolygon => {
            let polygons = parts()
                .iter()
                .map(|p| read_polygon(p, dims))
                .collect::<Result<Vec<_>, _>>()?;
            G::MultiPolygon(MultiPolygon(polygons))
        }
        GeometryType::GeometryCollection => {
            let members = parts()
                .iter()
                .map(|p| {
                    if p.type_() == GeometryType::Unknown {
                        return Err("a collection member has no type".to_string());
                    }
                    read_shape(p, p.type_(), dims, depth + 1)
                })
                .collect::<Result<Vec<_>, _>>()?;
            G::GeometryCollection(geo_types::GeometryCollection(members))
        }
        GeometryType::Unknown => {
            return Err("no geometry type (neither the header nor the feature gives one)".into());
        }
        other => {
            return Err(format!(
                "{} geometries are not supported (points, lines, polygons, their multi forms and collections are)",
                type_name(other)
            ));
        }
    })
}

fn read_polygon(
    g: &flatgeobuf::Geometry<'_>,
    dims: &mut Dims,
) -> Result<geo_types::Polygon<f64>, String> {
    let c = Coords::of(g, dims)?;
    if c.n == 0 {
        return Ok(geo_types::Polygon::new(
            geo_types::LineString(vec![]),
            vec![],
        ));
    }
    let mut rings = Vec::new();
    for (a, b) in c.ranges(g)? {
        let mut ring = c.line(a, b, dims)?;
        // geo-types closes an open ring; the ordinates must follow.
        if let (Some(first), Some(last)) = (ring.0.first().copied(), ring.0.last().copied())
            && first != last
        {
            ring.0.push(first);
            c.push_index(dims, a);
        }
        rings.push(ring);
    }
    let mut rings = rings.into_iter();
    let exterior = rings
        .next()
        .unwrap_or_else(|| geo_types::LineString(vec![]));
    Ok(geo_types::Polygon::new(exterior, rings.collect()))
}

/// The flat coordinate lists of one (non-collection) geometry, checked.
struct Coords<'a> {
    xy: flatbuffers::Vector<'a, f64>,
    z: Option<flatbuffers::Vector<'a, f64>>,
    m: Option<flatbuffers::Vector<'a, f64>>,
    n: usize,
}

impl<'a> Coords<'a> {
    fn of(g: &flatgeobuf::Geometry<'a>, dims: &Dims) -> Result<Coords<'a>, String> {
        let Some(xy) = g.xy() else {
            return Ok(Coords {
                xy: flatbuffers::Vector::default(),
                z: None,
                m: None,
                n: 0,
            });
        };
        if xy.len() % 2 != 0 {
            return Err(format!("{} xy values (not pairs)", xy.len()));
        }
        let n = xy.len() / 2;
        let check = |v: Option<flatbuffers::Vector<'a, f64>>, wanted: bool, which: &str| match v {
            Some(v) if wanted && v.len() != n => {
                Err(format!("{} {which} values for {n} coordinates", v.len()))
            }
            Some(v) if wanted => Ok(Some(v)),
            _ => Ok(None),
        };
        Ok(Coords {
            xy,
            z: check(g.z(), dims.z.is_some(), "z")?,
            m: check(g.m(), dims.m.is_some(), "m")?,
            n,
        })
    }

    /// Coordinates `a..b`, their Z and M appended to `dims` (NaN where the list is absent).
    fn line(
        &self,
        a: usize,
        b: usize,
        dims: &mut Dims,
    ) -> Result<geo_types::LineString<f64>, String> {
        if a > b || b > self.n {
            return Err(format!("part {a}..{b} outside the {} coordinates", self.n));
        }
        let coords = (a..b)
            .map(|i| geo_types::coord! { x: self.xy.get(2 * i), y: self.xy.get(2 * i + 1) })
            .collect();
        for i in a..b {
            self.push_index(dims, i);
        }
        Ok(geo_types::LineString(coords))
    }

    /// Appends the Z and M of coordinate `i`.
    fn push_index(&self, dims: &mut Dims, i: usize) {
        if let Some(z) = dims.z.as_mut() {
            z.push(self.z.map_or(f64::NAN, |v| v.get(i)));
        }
        if let Some(m) = dims.m.as_mut() {
            m.push(self.m.map_or(f64::NAN, |v| v.get(i)));
        }
    }

    /// Appends NaN Z and M for `n` coordinates that are not in the lists.
    fn push_missing(&self, dims: &mut Dims, n: usize) {
        for _ in 0..n {
            if let Some(z) = dims.z.as_mut() {
                z.push(f64::NAN);
            }
            if let Some(m) = dims.m.as_mut() {
                m.push(f64::NAN);
            }
        }
    }

    /// The coordinate ranges of the parts (`ends`), or one part of all coordinates.
    fn ranges(&self, g: &flatgeobuf::Geometry<'_>) -> Result<Vec<(usize, usize)>, String> {
        let Some(ends) = g.ends().filter(|e| !e.is_empty()) else {
            return Ok(if self.n == 0 {
                vec![]
            } else {
                vec![(0, self.n)]
            });
        };
        let mut out = Vec::with_capacity(ends.len());
        let mut start = 0usize;
        for e in ends.iter() {
            let e = e as usize;
            if e < start || e > self.n {
                return Err(format!(
                    "part end {e} is out of order or past the {} coordinates",
                    self.n
                ));
            }
            out.push((start, e));
            start = e;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests;
