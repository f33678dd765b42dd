//! `fgb_writer`: writes features to a FlatGeobuf file, with a packed Hilbert R-tree index.
//!
//! ```yaml
//! - id: save
//!   action: fgb_writer
//!   with:
//!     path: out/roads.fgb
//!     index_node_size: 16
//! ```
//!
//! - The header comes first in a FlatGeobuf file, then the index, then the features, and
//!   the header and index depend on every feature. So each feature is encoded as it arrives
//!   and appended to an unnamed temporary file in the run's spill folder (memory holds 56
//!   bytes per feature: its envelope and where it is in that file); `finish` writes the
//!   header, the index and the features, in index order, through an `AtomicWriter`, which
//!   the executor commits when the run succeeds: a failed or cancelled run leaves no file.
//! - Header: `name` is the file's stem; the geometry type is the type shared by every
//!   geometry (a `Line` counts as a line string, a `Rect` and a `Triangle` as polygons),
//!   `Unknown` when they differ (each feature's geometry then carries its type); `has_z` and
//!   `has_m` come from the first geometry's ordinates (a later geometry without them gets
//!   NaN; a later one with Z or M the first lacked fails the run naming the feature, since a
//!   file has one dimension); the CRS is the geometries' EPSG code (`org` EPSG), and two
//!   CRSs in one file fail the run naming both; the envelope is that of all geometries.
//! - Columns: every attribute in order of first appearance, typed by its first non-null
//!   value: int → Long, float → Double, bool → Bool, string → String, bytes → Binary,
//!   arrays and maps → Json (their JSON text), datetime → DateTime
//!   (`2024-01-02T03:04:05.000006Z`), local datetime → DateTime without a zone, and date →
//!   DateTime holding only `YYYY-MM-DD` (FlatGeobuf has no date type; GDAL reads it as a
//!   date-time at midnight, `fgb_reader` as a date again). Dates, datetimes and local
//!   datetimes may share a column (the text tells them apart); an int in a Double column
//!   is written as a double; any other value of another type fails the run naming the
//!   feature and the attribute. A column with only nulls is a String column. Nulls are
//!   not written (a missing property reads as null).
//! - `index: true` (the default) writes the packed Hilbert R-tree with `index_node_size`
//!   children per node (16, GDAL's default) and the features sorted along the Hilbert curve
//!   of their envelope centres, as GDAL and the reference writers do; a feature without
//!   geometry has an empty envelope that no search meets. `index: false` writes the
//!   features in arrival order and no index (`index_node_size` 0 in the header).
//! - A run with no features writes a valid empty file (no index).
//!
//! The encoding uses the `flatgeobuf` crate's FlatBuffers bindings and its packed R-tree
//! builder; see `fgb_reader` for why its file reader and writer are not used.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::sync::Arc;

use flatbuffers::{FlatBufferBuilder, WIPOffset};
use flatgeobuf::packed_r_tree::{NodeItem, PackedRTree};
use flatgeobuf::{ColumnType, GeometryType};
use schemars::JsonSchema;
use serde::Deserialize;
use sluice_runtime::action::schema_of;
use sluice_runtime::feature::coord_count;
use sluice_runtime::store::AtomicWriter;
use sluice_runtime::{
    ActionError, ActionKind, ActionSpec, Batch, BuildContext, BuiltAction, Feature, Geometry,
    NodeContext, NodeImpl, Schema, Sink, Value,
};

use crate::sources::fgb_reader::{MAGIC, envelope};

/// Parameters of `fgb_writer`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FgbWriterParams {
    /// Where to write (a path, `file://` or `memory://` location).
    pub path: String,
    /// Write the packed Hilbert R-tree spatial index (and sort the features along it).
    #[serde(default = "default_index")]
    pub index: bool,
    /// Children per index node (2 to 65535).
    #[serde(default = "default_node_size")]
    #[schemars(range(min = 2, max = 65535))]
    pub index_node_size: u32,
}

fn default_index() -> bool {
    true
}
fn default_node_size() -> u32 {
    16
}

/// The `fgb_writer` action.
pub const SPEC: ActionSpec = ActionSpec::new(
    "fgb_writer",
    ActionKind::Sink,
    "Writes features to a FlatGeobuf file with a packed Hilbert R-tree index, committed only when the run succeeds.",
    schema_of::<FgbWriterParams>,
    build,
)
.writes_to("path")
.example("path: out/roads.fgb\nindex_node_size: 16\n");

fn build(ctx: &BuildContext) -> Result<BuiltAction, ActionError> {
    let p: FgbWriterParams = ctx.params()?;
    if p.path.trim().is_empty() || p.path.ends_with('/') {
        return Err(ActionError::param("path", "must name a file"));
    }
    let node_size = u16::try_from(p.index_node_size)
        .ok()
        .filter(|n| *n >= 2)
        .ok_or_else(|| ActionError::param("index_node_size", "must be 2 to 65535"))?;
    Ok(BuiltAction::new(NodeImpl::Sink(Box::new(FgbWriter::new(
        p.path,
        p.index.then_some(node_size),
    )))))
}

// ---------------------------------------------------------------------------------------------
// Columns
// ---------------------------------------------------------------------------------------------

struct ColumnDef {
    name: String,
    /// `None` until a non-null value is seen.
    ty: Option<ColumnType>,
    /// The feature whose value typed the column.
    typed_by: u64,
}

/// The column type a value asks for.
fn value_column_type(v: &Value) -> Option<ColumnType> {
    Some(match v {
        Value::Null => return None,
        Value::Bool(_) => ColumnType::Bool,
        Value::Int(_) => ColumnType::Long,
        Value::Float(_) => ColumnType::Double,
        Value::String(_) => ColumnType::String,
        Value::Date(_) | Value::DateTime(_) | Value::LocalDateTime(_) => ColumnType::DateTime,
        Value::Bytes(_) => ColumnType::Binary,
        Value::Array(_) | Value::Map(_) => ColumnType::Json,
    })
}

fn column_type_name(t: ColumnType) -> &'static str {
    t.variant_name().unwrap_or("unknown")
}

/// Appends a value of a column of type `ty` to the properties buffer (the column number
/// first). `false` when the value does not fit the column.
fn encode_value(out: &mut Vec<u8>, column: u16, ty: ColumnType, v: &Value) -> bool {
    let mark = out.len();
    out.extend_from_slice(&column.to_le_bytes());
    let text = |out: &mut Vec<u8>, s: &[u8]| {
        out.extend_from_slice(&(s.len() as u32).to_le_bytes());
        out.extend_from_slice(s);
    };
    match (ty, v) {
        (ColumnType::Bool, Value::Bool(b)) => out.push(u8::from(*b)),
        (ColumnType::Long, Value::Int(i)) => out.extend_from_slice(&i.to_le_bytes()),
        (ColumnType::Double, Value::Float(f)) => out.extend_from_slice(&f.to_le_bytes()),
        (ColumnType::Double, Value::Int(i)) => out.extend_from_slice(&(*i as f64).to_le_bytes()),
        (ColumnType::String, Value::String(s)) => text(out, s.as_bytes()),
        (ColumnType::Binary, Value::Bytes(b)) => text(out, b),
        (ColumnType::DateTime, Value::Date(_) | Value::DateTime(_) | Value::LocalDateTime(_)) => {
            text(out, v.to_string().as_bytes())
        }
        (ColumnType::Json, Value::Array(_) | Value::Map(_)) => {
            text(out, v.to_json().to_string().as_bytes())
        }
        _ => {
            out.truncate(mark);
            return false;
        }
    }
    true
}

// ---------------------------------------------------------------------------------------------
// Geometry
// ---------------------------------------------------------------------------------------------

/// The FlatGeobuf type of a shape (as WKB writes it).
fn geometry_type(g: &geo_types::Geometry<f64>) -> GeometryType {
    use geo_types::Geometry as G;
    match g {
        G::Point(_) => GeometryType::Point,
        G::Line(_) | G::LineString(_) => GeometryType::LineString,
        G::Polygon(_) | G::Rect(_) | G::Triangle(_) => GeometryType::Polygon,
        G::MultiPoint(_) => GeometryType::MultiPoint,
        G::MultiLineString(_) => GeometryType::MultiLineString,
        G::MultiPolygon(_) => GeometryType::MultiPolygon,
        G::GeometryCollection(_) => GeometryType::GeometryCollection,
    }
}

/// Encodes shapes into FlatGeobuf geometry tables, taking Z and M values in WKB order.
struct GeomEncoder<'g> {
    z: Option<&'g [f64]>,
    m: Option<&'g [f64]>,
    /// Whether the file has Z / M (a geometry without them gets NaN).
    has_z: bool,
    has_m: bool,
    /// The next coordinate's place in `z` / `m`.
    next: usize,
}

/// The flat lists of one simple geometry.
#[derive(Default)]
struct Flat {
    xy: Vec<f64>,
    z: Vec<f64>,
    m: Vec<f64>,
    ends: Vec<u32>,
}

impl GeomEncoder<'_> {
    fn coord(&mut self, flat: &mut Flat, c: geo_types::Coord<f64>) {
        flat.xy.push(c.x);
        flat.xy.push(c.y);
        let i = self.next;
        self.next += 1;
        if self.has_z {
            flat.z
                .push(self.z.and_then(|z| z.get(i).copied()).unwrap_or(f64::NAN));
        }
        if self.has_m {
            flat.m
                .push(self.m.and_then(|m| m.get(i).copied()).unwrap_or(f64::NAN));
        }
    }

    fn line(&mut self, flat: &mut Flat, coords: &[geo_types::Coord<f64>]) {
        for c in coords {
            self.coord(flat, *c);
        }
    }

    fn polygon(&mut self, flat: &mut Flat, p: &geo_types::Polygon<f64>) {
        if p.exterior().0.is_empty() && p.interiors().is_empty() {
            return;
        }
        let rings = std::iter::once(p.exterior()).chain(p.interiors());
        for r in rings {
            self.line(flat, &r.0);
            flat.ends.push((flat.xy.len() / 2) as u32);
        }
        // One ring: no ends (as GDAL writes it).
        if flat.ends.len() == 1 {
            flat.ends.clear();
        }
    }

    fn encode<'b>(
        &mut self,
        fbb: &mut FlatBufferBuilder<'b>,
        g: &geo_types::Geometry<f64>,
    ) -> WIPOffset<flatgeobuf::Geometry<'b>> {
        use geo_types::Geometry as G;
        let ty = geometry_type(g);
        let mut flat = Flat::default();
        let mut parts = Vec::new();
        match g {
            G::Point(p) => self.coord(&mut flat, p.0),
            G::Line(l) => self.line(&mut flat, &[l.start, l.end]),
            G::LineString(l) => self.line(&mut flat, &l.0),
            G::Polygon(p) => self.polygon(&mut flat, p),
            G::Rect(r) => self.polygon(&mut flat, &r.to_polygon()),
            G::Triangle(t) => self.polygon(&mut flat, &t.to_polygon()),
            G::MultiPoint(mp) => {
                for p in &mp.0 {
                    self.coord(&mut flat, p.0);
                }
            }
            G::MultiLineString(ml) => {
                for l in &ml.0 {
                    self.line(&mut flat, &l.0);
                    flat.ends.push((flat.xy.len() / 2) as u32);
                }
                if flat.ends.len() == 1 {
                    flat.ends.clear();
                }
            }
            G::MultiPolygon(mp) => {
                for p in &mp.0 {
                    let mut f = Flat::default();
                    self.polygon(&mut f, p);
                    parts.push(self.table(fbb, f, GeometryType::Polygon, Vec::new()));
                }
            }
            G::GeometryCollection(c) => {
                for member in &c.0 {
                    parts.push(self.encode(fbb, member));
                }
            }
        }
        self.table(fbb, flat, ty, parts)
    }

    fn table<'b>(
        &self,
        fbb: &mut FlatBufferBuilder<'b>,
        flat: Flat,
        ty: GeometryType,
        parts: Vec<WIPOffset<flatgeobuf::Geometry<'b>>>,
    ) -> WIPOffset<flatgeobuf::Geometry<'b>> {
        let is_collection = matches!(
            ty,
            GeometryType::MultiPolygon | GeometryType::GeometryCollection
        );
        let ends = (!flat.ends.is_empty()).then(|| fbb.create_vector(&flat.ends));
        let xy = (!is_collection).then(|| fbb.create_vector(&flat.xy));
        let z = (!is_collection && self.has_z).then(|| fbb.create_vector(&flat.z));
        let m = (!is_collection && self.has_m).then(|| fbb.create_vector(&flat.m));
        let parts = is_collection.then(|| fbb.create_vector(&parts));
        flatgeobuf::Geometry::create(
            fbb,
            &flatgeobuf::GeometryArgs {
                ends,
                xy,
                z,
                m,
                t: None,
                tm: None,
                type_: ty,
                parts,
            },
        )
    }
}

// ---------------------------------------------------------------------------------------------
// The writer
// ---------------------------------------------------------------------------------------------

/// Where a spooled feature is: its place in the spool file and its size (prefix included).
#[derive(Clone, Copy)]
struct Spooled {
    at: u64,
    size: u32,
}

/// The geometry type of the file, as far as the features seen tell.
#[derive(Clone, Copy, PartialEq)]
enum TypeSeen {
    None,
    One(GeometryType),
    Mixed,
}

struct FgbWriter {
    path: String,
    /// `None`: no index.
    node_size: Option<u16>,
    spool: Option<BufWriter<File>>,
    spooled: Vec<Spooled>,
    envelopes: Vec<NodeItem>,
    spool_len: u64,
    columns: Vec<ColumnDef>,
    by_name: HashMap<String, usize>,
    /// The last schema seen, and its attributes' column numbers.
    last_schema: Option<(Arc<Schema>, Vec<usize>)>,
    types: TypeSeen,
    /// Z and M of the file, from the first geometry (and which feature it was).
    dims: Option<(bool, bool, u64)>,
    /// The CRS, and the feature whose geometry set it.
    crs: Option<(u32, u64)>,
    fbb: FlatBufferBuilder<'static>,
    props: Vec<u8>,
    pending: Option<AtomicWriter>,
}

impl FgbWriter {
    fn new(path: String, node_size: Option<u16>) -> FgbWriter {
        FgbWriter {
            path,
            node_size,
            spool: None,
            spooled: Vec::new(),
            envelopes: Vec::new(),
            spool_len: 0,
            columns: Vec::new(),
            by_name: HashMap::new(),
            last_schema: None,
            types: TypeSeen::None,
            dims: None,
            crs: None,
            fbb: FlatBufferBuilder::new(),
            props: Vec::new(),
            pending: None,
        }
    }

    fn spool_error(&self, e: std::io::Error) -> ActionError {
        ActionError::io(format!("spooling features for {}", self.path), e)
    }

    /// The column numbers of a schema's attributes (new columns appended).
    fn column_numbers(&mut self, schema: &Arc<Schema>) -> Result<Vec<usize>, ActionError> {
        if let Some((s, numbers)) = &self.last_schema
            && Arc::ptr_eq(s, schema)
        {
            return Ok(numbers.clone());
        }
        let mut numbers = Vec::with_capacity(schema.len());
        for name in schema.names() {
            let n = match self.by_name.get(&**name) {
                Some(n) => *n,
                None => {
                    let n = self.columns.len();
                    if n > usize::from(u16::MAX) {
                        return Err(ActionError::Other(
                            format!(
                                "{}: more than {} columns (FlatGeobuf's limit)",
                                self.path,
                                u32::from(u16::MAX) + 1
                            )
                            .into(),
                        ));
                    }
                    self.columns.push(ColumnDef {
                        name: name.to_string(),
                        ty: None,
                        typed_by: 0,
                    });
                    self.by_name.insert(name.to_string(), n);
                    n
                }
            };
            numbers.push(n);
        }
        self.last_schema = Some((schema.clone(), numbers.clone()));
        Ok(numbers)
    }

    /// Encodes the properties of `f` into `self.props`.
    fn properties(&mut self, f: &Feature) -> Result<(), ActionError> {
        let numbers = self.column_numbers(f.schema())?;
        self.props.clear();
        for (v, &n) in f.values().iter().zip(&numbers) {
            let Some(asked) = value_column_type(v) else {
                continue;
            };
            let column = &mut self.columns[n];
            let ty = match column.ty {
                Some(ty) => ty,
                None => {
                    column.ty = Some(asked);
                    column.typed_by = f.id();
                    asked
                }
            };
            if !encode_value(&mut self.props, n as u16, ty, v) {
                return Err(ActionError::data(
                    Some(format!("feature {}", f.id())),
                    format!(
                        "attribute \"{}\": expected a value for a {} column (typed by the first non-null value, of feature {}), found {}",
                        column.name,
                        column_type_name(ty),
                        column.typed_by,
                        v.type_name()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Checks a geometry against the file (CRS, dimensions) and records its type.
    fn check_geometry(&mut self, f: &Feature, g: &Geometry) -> Result<(bool, bool), ActionError> {
        let at = || Some(format!("feature {}", f.id()));
        if let Some(c) = g.crs {
            match self.crs {
                None => self.crs = Some((c, f.id())),
                Some((first, by)) if first != c => {
                    return Err(ActionError::data(
                        at(),
                        format!(
                            "geometry in EPSG:{c}, but this file is in EPSG:{first} (from feature {by}); a FlatGeobuf file has one CRS (reproject upstream)"
                        ),
                    ));
                }
                Some(_) => {}
            }
        }
        let (z, m) = (g.z().is_some(), g.m().is_some());
        let (has_z, has_m, by) = *self.dims.get_or_insert((z, m, f.id()));
        if (z && !has_z) || (m && !has_m) {
            let which = if z && !has_z { "Z" } else { "M" };
            return Err(ActionError::data(
                at(),
                format!(
                    "geometry has {which} values, but the file's first geometry (feature {by}) had none; a FlatGeobuf file has one dimension (drop {which} or give the first geometry {which})"
                ),
            ));
        }
        let ty = geometry_type(&g.geom);
        self.types = match self.types {
            TypeSeen::None => TypeSeen::One(ty),
            TypeSeen::One(t) if t == ty => TypeSeen::One(t),
            _ => TypeSeen::Mixed,
        };
        Ok((has_z, has_m))
    }

    /// Encodes one feature and appends it to the spool.
    fn add(&mut self, f: &Feature, ctx: &NodeContext) -> Result<(), ActionError> {
        self.properties(f)?;
        let geometry = match f.geometry() {
            Some(g) => {
                let (has_z, has_m) = self.check_geometry(f, g)?;
                Some((g, has_z, has_m))
            }
            None => None,
        };
        let mut item = NodeItem::create(0);
        self.fbb.reset();
        let geom = geometry.map(|(g, has_z, has_m)| {
            if let Some([a, b, c, d]) = envelope(&g.geom) {
                item = NodeItem::bounds(a, b, c, d);
            }
            let mut enc = GeomEncoder {
                z: g.z(),
                m: g.m(),
                has_z,
                has_m,
                next: 0,
            };
            let table = enc.encode(&mut self.fbb, &g.geom);
            debug_assert_eq!(enc.next, coord_count(&g.geom));
            table
        });
        let properties = (!self.props.is_empty()).then(|| self.fbb.create_vector(&self.props));
        let feature = flatgeobuf::Feature::create(
            &mut self.fbb,
            &flatgeobuf::FeatureArgs {
                geometry: geom,
                properties,
                columns: None,
            },
        );
        self.fbb.finish_size_prefixed(feature, None);
        let bytes = self.fbb.finished_data();
        let size = u32::try_from(bytes.len()).map_err(|_| {
            ActionError::data(
                Some(format!("feature {}", f.id())),
                "encodes to more than 4 GiB, FlatGeobuf's limit for one feature",
            )
        })?;
        if self.spool.is_none() {
            let dir = ctx.spill.new_path("fgb_writer")?;
            let dir = dir
                .parent()
                .map(ToOwned::to_owned)
                .unwrap_or_else(std::env::temp_dir);
            let file = tempfile::tempfile_in(&dir).map_err(|e| self.spool_error(e))?;
            self.spool = Some(BufWriter::with_capacity(256 * 1024, file));
        }
        let Some(spool) = self.spool.as_mut() else {
            return Ok(());
        };
        if let Err(e) = spool.write_all(bytes) {
            return Err(self.spool_error(e));
        }
        self.spooled.push(Spooled {
            at: self.spool_len,
            size,
        });
        self.envelopes.push(item);
        self.spool_len += u64::from(size);
        Ok(())
    }

    /// The header, size-prefixed.
    fn header(&mut self, index_node_size: u16, extent: Option<&NodeItem>) -> Vec<u8> {
        let mut fbb = FlatBufferBuilder::new();
        let stem = std::path::Path::new(self.path.rsplit("://").next().unwrap_or_default())
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let name = fbb.create_string(&stem);
        let columns: Vec<_> = self
            .columns
            .iter()
            .map(|c| {
                let name = fbb.create_string(&c.name);
                flatgeobuf::Column::create(
                    &mut fbb,
                    &flatgeobuf::ColumnArgs {
                        name: Some(name),
                        type_: c.ty.unwrap_or(ColumnType::String),
                        ..Default::default()
                    },
                )
            })
            .collect();
        let columns = (!columns.is_empty()).then(|| fbb.create_vector(&columns));
        let envelope = extent
            .filter(|e| {
                [e.min_x, e.min_y, e.max_x, e.max_y]
                    .iter()
                    .all(|v| v.is_finite())
            })
            .map(|e| fbb.create_vector(&[e.min_x, e.min_y, e.max_x, e.max_y]));
        let crs = self.crs.map(|(code, _)| {
            let org = fbb.create_string("EPSG");
            flatgeobuf::Crs::create(
                &mut fbb,
                &flatgeobuf::CrsArgs {
                    org: Some(org),
                    code: code as i32,
                    ..Default::default()
                },
            )
        });
        let (has_z, has_m) = self.dims.map_or((false, false), |(z, m, _)| (z, m));
        let geometry_type = match self.types {
            TypeSeen::One(t) => t,
            _ => GeometryType::Unknown,
        };
        let header = flatgeobuf::Header::create(
            &mut fbb,
            &flatgeobuf::HeaderArgs {
                name: Some(name),
                envelope,
                geometry_type,
                has_z,
                has_m,
                columns,
                features_count: self.spooled.len() as u64,
                index_node_size,
                crs,
                ..Default::default()
            },
        );
        fbb.finish_size_prefixed(header, None);
        fbb.finished_data().to_vec()
    }

    /// Writes the file from the spool.
    fn assemble(&mut self) -> Result<AtomicWriter, ActionError> {
        let path = self.path.clone();
        let io = |e: std::io::Error| ActionError::io(format!("writing {path}"), e);
        let count = self.spooled.len();
        let mut spool = match self.spool.take() {
            Some(s) => Some(
                s.into_inner()
                    .map_err(|e| self.spool_error(e.into_error()))?,
            ),
            None => None,
        };
        let extent = (count > 0).then(|| {
            self.envelopes.iter().fold(NodeItem::create(0), |mut a, b| {
                a.expand(b);
                a
            })
        });
        let node_size = self.node_size.filter(|_| count > 0);
        let header = self.header(node_size.unwrap_or(0), extent.as_ref());
        let mut out = BufWriter::with_capacity(256 * 1024, AtomicWriter::create(&self.path)?);
        out.write_all(&MAGIC).map_err(io)?;
        out.write_all(&header).map_err(io)?;
        // The order features are written in: along the Hilbert curve with an index.
        let order: Vec<usize> = match (node_size, extent.as_ref()) {
            (Some(_), Some(extent)) => hilbert_order(&self.envelopes, extent),
            _ => (0..count).collect(),
        };
        if let (Some(node_size), Some(extent)) = (node_size, extent.as_ref()) {
            let mut leaves = Vec::with_capacity(count);
            let mut offset = 0u64;
            for &i in &order {
                let mut leaf = self.envelopes[i].clone();
                leaf.offset = offset;
                offset += u64::from(self.spooled[i].size);
                leaves.push(leaf);
            }
            let tree = PackedRTree::build(&leaves, extent, node_size).map_err(|e| {
                ActionError::Other(format!("building the index of {}: {e}", self.path).into())
            })?;
            drop(leaves);
            tree.stream_write(&mut out).map_err(io)?;
        }
        if let Some(spool) = spool.as_mut() {
            let spool_io = |e: std::io::Error| {
                ActionError::io(format!("reading back the features spooled for {path}"), e)
            };
            if node_size.is_none() {
                spool.seek(SeekFrom::Start(0)).map_err(spool_io)?;
                std::io::copy(spool, &mut out).map_err(io)?;
            } else {
                let mut buf = Vec::new();
                for &i in &order {
                    let s = self.spooled[i];
                    spool.seek(SeekFrom::Start(s.at)).map_err(spool_io)?;
                    buf.resize(s.size as usize, 0);
                    spool.read_exact(&mut buf).map_err(spool_io)?;
                    out.write_all(&buf).map_err(io)?;
                }
            }
        }
        let mut w = out.into_inner().map_err(|e| io(e.into_error()))?;
        w.flush().map_err(io)?;
        Ok(w)
    }
}

/// The feature order along the Hilbert curve of the envelope centres, highest value first
/// (the order of the reference writers); empty envelopes sort as the origin.
fn hilbert_order(envelopes: &[NodeItem], extent: &NodeItem) -> Vec<usize> {
    const MAX: f64 = 65535.0;
    let (w, h) = (extent.max_x - extent.min_x, extent.max_y - extent.min_y);
    let scale = |v: f64, min: f64, size: f64| -> u32 {
        let s = (MAX * (v - min) / size).floor();
        // NaN (an empty envelope, a zero-sized extent) and out-of-range values clamp.
        if s.is_nan() {
            0
        } else {
            s.clamp(0.0, MAX) as u32
        }
    };
    let mut keyed: Vec<(u32, usize)> = envelopes
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let x = scale((e.min_x + e.max_x) / 2.0, extent.min_x, w);
            let y = scale((e.min_y + e.max_y) / 2.0, extent.min_y, h);
            (hilbert(x, y), i)
        })
        .collect();
    keyed.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    keyed.into_iter().map(|(_, i)| i).collect()
}

/// The position of `(x, y)` (16-bit each) on the Hilbert curve (public-domain algorithm of
/// rawrunprotected/hilbert_curves, as the FlatGeobuf reference writers use it).
fn hilbert(x: u32, y: u32) -> u32 {
    let mut a = x ^ y;
    let mut b = 0xFFFF ^ a;
    let mut c = 0xFFFF ^ (x | y);
    let mut d = x & (y ^ 0xFFFF);
    let mut aa = a | (b >> 1);
    let mut bb = (a >> 1) ^ a;
    let mut cc = ((c >> 1) ^ (b & (d >> 1))) ^ c;
    let mut dd = ((a & (c >> 1)) ^ (d >> 1)) ^ d;

    a = aa;
    b = bb;
    c = cc;
    d = dd;
    aa = (a & (a >> 2)) ^ (b & (b >> 2));
    bb = (a & (b >> 2)) ^ (b & ((a ^ b) >> 2));
    cc ^= (a & (c >> 2)) ^ (b & (d >> 2));
    dd ^= (b & (c >> 2)) ^ ((a ^ b) & (d >> 2));

    a = aa;
    b = bb;
    c = cc;
    d = dd;
    aa = (a & (a >> 4)) ^ (b & (b >> 4));
    bb = (a & (b >> 4)) ^ (b & ((a ^ b) >> 4));
    cc ^= (a & (c >> 4)) ^ (b & (d >> 4));
    dd ^= (b & (c >> 4)) ^ ((a ^ b) & (d >> 4));

    a = aa;
    b = bb;
    c = cc;
    d = dd;
    cc ^= (a & (c >> 8)) ^ (b & (d >> 8));
    dd ^= (b & (c >> 8)) ^ ((a ^ b) & (d >> 8));

    a = cc ^ (cc >> 1);
    b = dd ^ (dd >> 1);

    let mut i0 = x ^ y;
    let mut i1 = b | (0xFFFF ^ (i0 | a));

    i0 = (i0 | (i0 << 8)) & 0x00FF00FF;
    i0 = (i0 | (i0 << 4)) & 0x0F0F0F0F;
    i0 = (i0 | (i0 << 2)) & 0x33333333;
    i0 = (i0 | (i0 << 1)) & 0x55555555;

    i1 = (i1 | (i1 << 8)) & 0x00FF00FF;
    i1 = (i1 | (i1 << 4)) & 0x0F0F0F0F;
    i1 = (i1 | (i1 << 2)) & 0x33333333;
    i1 = (i1 | (i1 << 1)) & 0x55555555;

    (i1 << 1) | i0
}

impl Sink for FgbWriter {
    fn write(&mut self, _input: usize, batch: Batch, ctx: &NodeContext) -> Result<(), ActionError> {
        for f in &batch {
            self.add(f, ctx)?;
        }
        Ok(())
    }

    fn finish(&mut self, ctx: &NodeContext) -> Result<(), ActionError> {
        let w = self.assemble()?;
        ctx.log(format!(
            "wrote {} features to {}{}",
            self.spooled.len(),
            self.path,
            if self.node_size.is_some() && !self.spooled.is_empty() {
                " with a spatial index"
            } else {
                ""
            }
        ));
        self.pending = Some(w);
        self.spooled = Vec::new();
        self.envelopes = Vec::new();
        Ok(())
    }

    fn commit(&mut self) -> Result<(), ActionError> {
        super::commit_pending(&mut self.pending)
    }

    fn abort(&mut self) {
        // Dropping the writer removes its temporary file; the spool is an unnamed file.
        self.pending = None;
        self.spool = None;
        self.spooled = Vec::new();
        self.envelopes = Vec::new();
    }
}

#[cfg(test)]
mod tests;
