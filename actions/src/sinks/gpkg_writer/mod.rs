//! `gpkg_writer`: writes features to one layer of an OGC GeoPackage 1.3 file, with an
//! R-tree spatial index.
//!
//! ```yaml
//! - id: save
//!   action: gpkg_writer
//!   with:
//!     path: out/city.gpkg
//!     layer: roads
//! ```
//!
//! - The file is a new GeoPackage (`application_id` `GPKG`, `user_version` 10300) holding
//!   `gpkg_spatial_ref_sys` (the required rows -1, 0 and 4326, plus the layer's EPSG code
//!   with its OGC WKT definition from `crs-definitions`, or `undefined`, which the spec
//!   allows and GDAL resolves through the code, for a code it does not know), `gpkg_contents` (with the layer's extent), `gpkg_geometry_columns`,
//!   `gpkg_extensions` and the layer table: `fid INTEGER PRIMARY KEY AUTOINCREMENT`, the
//!   geometry column (`geom`), then the attributes. One writer writes one layer; two writers
//!   into one file are not supported (each would replace the other's file).
//! - `layer` defaults to the file name without its extension. Without any geometry in the
//!   features the layer is an attribute table (`data_type` `attributes`, no geometry column).
//!   With no feature at all, the file holds an empty feature layer (`GEOMETRY`, undefined
//!   SRS).
//! - Geometries are GeoPackage binary: the `GP` header (little-endian, `srs_id`, the empty
//!   flag, an envelope: xy, xyz when the geometry has Z, xym when it has M only; points
//!   carry none, as GDAL writes them; a ZM geometry gets xyz, as GDAL's validator misreads
//!   the xyzm code) followed by ISO WKB with Z and M. `geometry_type_name` is the
//!   one type of every geometry (`POINT`, `LINESTRING`, `POLYGON`, `MULTIPOINT`,
//!   `MULTILINESTRING`, `MULTIPOLYGON`, `GEOMETRYCOLLECTION`), `GEOMETRY` when they mix;
//!   `z` / `m` are 1 when every geometry has them, 2 (optional) when some do, 0 when none.
//!   The CRS is the geometries' EPSG code (none: `srs_id` 0, undefined); two different
//!   codes fail the run.
//! - Attributes become columns, in first-seen order. Their types are decided from the first
//!   `sample_features` features (buffered): int -> `INTEGER`, float -> `REAL`, bool ->
//!   `BOOLEAN`, string -> `TEXT`, date -> `DATE` (`YYYY-MM-DD`), datetime -> `DATETIME`
//!   (`YYYY-MM-DDTHH:MM:SS.sssZ`, six fraction digits when the value has microseconds; a
//!   local datetime is written without the `Z`), bytes -> `BLOB`, arrays and maps ->
//!   `TEXT` holding their JSON. A column whose sampled values mix ints and floats is `REAL`
//!   (ints widened); any other mix is `TEXT` holding each value's text form (the run log
//!   says which columns). A column with only nulls in the sample, or an attribute first seen
//!   later, is added (`ALTER TABLE ADD COLUMN`) when its first value arrives, typed by it
//!   (`TEXT` if it never gets one), after the sampled columns. Later values must fit their
//!   column: an int goes into a `REAL` column (widened) and any value into a `TEXT` column
//!   made for mixed values (as text); anything else fails the run naming the feature and the
//!   attribute (raise `sample_features`, or convert upstream). Missing attributes are NULL.
//! - An attribute named like the fid column (`fid`, any case) with int values gives the
//!   row's fid (null: a new one), so a layer read with `gpkg_reader` keeps its fids; another
//!   type fails the run. An attribute named like the geometry column is left out (logged).
//!   Attribute names that differ only in case (SQLite names ignore case) fail the run.
//! - Spatial index: `rtree_<layer>_<geom>` (an SQLite R*Tree) is filled with each non-empty
//!   geometry's xy envelope as rows are inserted, registered in `gpkg_extensions`
//!   (`gpkg_rtree_index`), with the spec's six triggers, created last: they call `ST_*`
//!   functions that GDAL and other GeoPackage libraries provide, not plain SQLite, as in
//!   every GDAL-written file. `spatial_index: false` leaves it out.
//! - The file is built with the journal off, in one transaction, in the output's own
//!   temporary file (an `AtomicWriter`'s, beside the target, renamed into place when the
//!   run succeeds; for other stores a local temporary file copied through the writer):
//!   nothing appears at `path` until the run succeeds, and a failed, cancelled or killed
//!   run leaves neither the file nor the build file behind. Pages are 64 KiB when the
//!   first `sample_features` features hold a megabyte of geometry, else SQLite's 4 KiB.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Arc;

use rusqlite::Connection;
use rusqlite::types::{ToSqlOutput, ValueRef};
use schemars::JsonSchema;
use serde::Deserialize;
use sluice_runtime::action::schema_of;
use sluice_runtime::feature::wkb;
use sluice_runtime::store::AtomicWriter;
use sluice_runtime::{
    ActionError, ActionKind, ActionSpec, Batch, BuildContext, BuiltAction, Feature, Geometry,
    NodeContext, NodeImpl, Schema, Sink, Value,
};

use crate::sources::gpkg_reader::quote;

/// Parameters of `gpkg_writer`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GpkgWriterParams {
    /// Where to write the `.gpkg` file (a path, `file://` or `memory://` location).
    pub path: String,
    /// The layer (table) name. Default: the file name without its extension.
    #[serde(default)]
    pub layer: Option<String>,
    /// The geometry column.
    #[serde(default = "default_geometry_column")]
    pub geometry_column: String,
    /// The integer primary key column.
    #[serde(default = "default_fid_column")]
    pub fid_column: String,
    /// Features buffered to decide the column types before the table is made.
    #[serde(default = "default_sample")]
    #[schemars(range(min = 1))]
    pub sample_features: usize,
    /// Whether to build the R-tree spatial index (`gpkg_rtree_index`).
    #[serde(default = "default_true")]
    pub spatial_index: bool,
}

fn default_geometry_column() -> String {
    "geom".into()
}
fn default_fid_column() -> String {
    "fid".into()
}
fn default_sample() -> usize {
    1000
}
fn default_true() -> bool {
    true
}

/// The `gpkg_writer` action.
pub const SPEC: ActionSpec = ActionSpec::new(
    "gpkg_writer",
    ActionKind::Sink,
    "Writes features to a GeoPackage layer (with an R-tree index), committed only when the run succeeds.",
    schema_of::<GpkgWriterParams>,
    build,
)
.writes_to("path")
.example("path: out/city.gpkg\nlayer: roads\n");

fn build(ctx: &BuildContext) -> Result<BuiltAction, ActionError> {
    let p: GpkgWriterParams = ctx.params()?;
    if p.path.trim().is_empty() || p.path.ends_with('/') {
        return Err(ActionError::param("path", "must name a file"));
    }
    let layer = match p.layer {
        Some(l) => l,
        None => file_stem(&p.path),
    };
    check_name("layer", &layer)?;
    let lower = layer.to_ascii_lowercase();
    if ["gpkg_", "rtree_", "sqlite_"]
        .iter()
        .any(|prefix| lower.starts_with(prefix))
    {
        return Err(ActionError::param(
            "layer",
            format!(
                "\"{layer}\" starts with a prefix GeoPackage reserves (gpkg_, rtree_, sqlite_)"
            ),
        ));
    }
    check_name("geometry_column", &p.geometry_column)?;
    check_name("fid_column", &p.fid_column)?;
    if p.geometry_column.eq_ignore_ascii_case(&p.fid_column) {
        return Err(ActionError::param(
            "geometry_column",
            "must differ from fid_column",
        ));
    }
    if p.sample_features == 0 {
        return Err(ActionError::param("sample_features", "must be at least 1"));
    }
    Ok(BuiltAction::new(NodeImpl::Sink(Box::new(GpkgWriter {
        path: p.path,
        layer,
        geometry_column: p.geometry_column,
        fid_column: p.fid_column,
        sample: p.sample_features,
        spatial_index: p.spatial_index,
        buffer: Vec::new(),
        build: None,
        pending: None,
    }))))
}

fn check_name(param: &str, name: &str) -> Result<(), ActionError> {
    if name.trim().is_empty() {
        return Err(ActionError::param(param, "must not be empty"));
    }
    Ok(())
}

/// The file name of a location without its extension (`out/city.gpkg` -> `city`).
fn file_stem(path: &str) -> String {
    let name = path.rsplit(['/', '\\']).next().unwrap_or(path);
    match name.rfind('.') {
        Some(i) if i > 0 => name[..i].to_string(),
        _ => name.to_string(),
    }
}

// ---------------------------------------------------------------------------------------------
// Column types
// ---------------------------------------------------------------------------------------------

/// The declared type of an attribute column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ColType {
    Bool,
    Int,
    Real,
    Text,
    /// `TEXT` made for values of mixed types: each value as its text form.
    MixedText,
    Blob,
    Date,
    DateTime,
}

impl ColType {
    fn sql(self) -> &'static str {
        match self {
            ColType::Bool => "BOOLEAN",
            ColType::Int => "INTEGER",
            ColType::Real => "REAL",
            ColType::Text | ColType::MixedText => "TEXT",
            ColType::Blob => "BLOB",
            ColType::Date => "DATE",
            ColType::DateTime => "DATETIME",
        }
    }

    /// The type a value alone gives (`None` for null).
    fn of(v: &Value) -> Option<ColType> {
        Some(match v {
            Value::Null => return None,
            Value::Bool(_) => ColType::Bool,
            Value::Int(_) => ColType::Int,
            Value::Float(_) => ColType::Real,
            Value::String(_) | Value::Array(_) | Value::Map(_) => ColType::Text,
            Value::Date(_) => ColType::Date,
            Value::DateTime(_) | Value::LocalDateTime(_) => ColType::DateTime,
            Value::Bytes(_) => ColType::Blob,
        })
    }

    /// The type of a column that holds values of both types.
    fn merge(self, other: ColType) -> ColType {
        match (self, other) {
            (a, b) if a == b => a,
            (ColType::Int, ColType::Real) | (ColType::Real, ColType::Int) => ColType::Real,
            _ => ColType::MixedText,
        }
    }
}

/// Why a value cannot go into its column.
struct Misfit;

/// `v` as stored in a column of type `ty`.
fn sql_value(v: &Value, ty: ColType) -> Result<ToSqlOutput<'_>, Misfit> {
    use ToSqlOutput::{Borrowed, Owned};
    use rusqlite::types::Value as Sql;
    Ok(match (ty, v) {
        (_, Value::Null) => Borrowed(ValueRef::Null),
        (ColType::Bool, Value::Bool(b)) => Borrowed(ValueRef::Integer(i64::from(*b))),
        (ColType::Int, Value::Int(i)) => Borrowed(ValueRef::Integer(*i)),
        (ColType::Real, Value::Float(f)) => Borrowed(ValueRef::Real(*f)),
        (ColType::Real, Value::Int(i)) => Borrowed(ValueRef::Real(*i as f64)),
        (ColType::Text | ColType::MixedText, Value::String(s)) => {
            Borrowed(ValueRef::Text(s.as_bytes()))
        }
        (ColType::Text | ColType::MixedText, Value::Array(_) | Value::Map(_)) => {
            Owned(Sql::Text(v.to_json().to_string()))
        }
        (ColType::MixedText, v) => Owned(Sql::Text(text_form(v))),
        (ColType::Blob, Value::Bytes(b)) => Borrowed(ValueRef::Blob(b)),
        (ColType::Date, Value::Date(_)) => Owned(Sql::Text(v.to_string())),
        (ColType::DateTime, Value::DateTime(us)) => Owned(Sql::Text(datetime_text(*us, true))),
        (ColType::DateTime, Value::LocalDateTime(us)) => {
            Owned(Sql::Text(datetime_text(*us, false)))
        }
        _ => return Err(Misfit),
    })
}

/// A value's text in a `TEXT` column of mixed values.
fn text_form(v: &Value) -> String {
    match v {
        Value::DateTime(us) => datetime_text(*us, true),
        Value::LocalDateTime(us) => datetime_text(*us, false),
        Value::Array(_) | Value::Map(_) => v.to_json().to_string(),
        other => other.to_string(),
    }
}

/// A datetime as GeoPackage writes it: `YYYY-MM-DDTHH:MM:SS.sssZ` (six fraction digits when
/// the value has microseconds, so nothing is lost; no `Z` for a local datetime).
fn datetime_text(us: i64, utc: bool) -> String {
    let Some(dt) = chrono::DateTime::from_timestamp_micros(us) else {
        let v = if utc {
            Value::DateTime(us)
        } else {
            Value::LocalDateTime(us)
        };
        return v.to_string();
    };
    let fraction = if us.rem_euclid(1000) == 0 {
        "%.3f"
    } else {
        "%.6f"
    };
    let mut text = dt
        .format(&format!("%Y-%m-%dT%H:%M:%S{fraction}"))
        .to_string();
    if utc {
        text.push('Z');
    }
    text
}

// ---------------------------------------------------------------------------------------------
// Geometry blobs and layer statistics
// ---------------------------------------------------------------------------------------------

/// Whether a geometry has no coordinates (a NaN point is WKB's empty point).
fn is_empty(g: &geo_types::Geometry<f64>) -> bool {
    use geo::BoundingRect;
    match g {
        geo_types::Geometry::Point(p) => p.x().is_nan() && p.y().is_nan(),
        other => other.bounding_rect().is_none(),
    }
}

/// The smallest and largest of some values, NaN ignored (NaN, NaN when there is none).
fn range(values: &[f64]) -> (f64, f64) {
    let (lo, hi) = values
        .iter()
        .filter(|v| !v.is_nan())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(*v), hi.max(*v))
        });
    if lo > hi {
        (f64::NAN, f64::NAN)
    } else {
        (lo, hi)
    }
}

/// Appends a geometry as a GeoPackage geometry blob (little-endian header with `srs_id`,
/// an envelope except for points and empty geometries, then ISO WKB). Returns the xy
/// envelope of a non-empty geometry.
pub(crate) fn encode_geometry(g: &Geometry, srs_id: i32, out: &mut Vec<u8>) -> Option<[f64; 4]> {
    let empty = is_empty(&g.geom);
    let rect = if empty {
        None
    } else {
        sluice_runtime::feature::envelope(&g.geom)
            .map(|[a, b, c, d]| geo_types::Rect::new((a, b), (c, d)))
    };
    let point = matches!(g.geom, geo_types::Geometry::Point(_));
    let envelope: u8 = match (&rect, point, g.z().is_some(), g.m().is_some()) {
        (None, _, _, _) | (_, true, _, _) => 0,
        (Some(_), false, false, false) => 1,
        (Some(_), false, true, false) => 2,
        (Some(_), false, false, true) => 3,
        // xyz, not xyzm (4): GDAL's validate_gpkg.py (3.6) reads the empty flag from bit 3,
        // which code 4 sets, and would report every ZM geometry as an invalid empty one.
        (Some(_), false, true, true) => 2,
    };
    let flags = 1 | (envelope << 1) | if empty { 0x10 } else { 0 };
    out.extend_from_slice(&[b'G', b'P', 0, flags]);
    out.extend_from_slice(&srs_id.to_le_bytes());
    if let Some(r) = &rect
        && envelope > 0
    {
        for v in [r.min().x, r.max().x, r.min().y, r.max().y] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        let extra = match envelope {
            2 => g.z(),
            3 => g.m(),
            _ => None,
        };
        if let Some(extra) = extra {
            let (lo, hi) = range(extra);
            out.extend_from_slice(&lo.to_le_bytes());
            out.extend_from_slice(&hi.to_le_bytes());
        }
    }
    wkb::to_wkb(g, out);
    rect.map(|r| [r.min().x, r.min().y, r.max().x, r.max().y])
}

/// The GeoPackage name of a shape's type (a `Line` is a line string, a `Rect` and a
/// `Triangle` polygons, as WKB writes them).
fn type_name(g: &geo_types::Geometry<f64>) -> &'static str {
    use geo_types::Geometry as G;
    match g {
        G::Point(_) => "POINT",
        G::Line(_) | G::LineString(_) => "LINESTRING",
        G::Polygon(_) | G::Rect(_) | G::Triangle(_) => "POLYGON",
        G::MultiPoint(_) => "MULTIPOINT",
        G::MultiLineString(_) => "MULTILINESTRING",
        G::MultiPolygon(_) => "MULTIPOLYGON",
        G::GeometryCollection(_) => "GEOMETRYCOLLECTION",
    }
}

/// What the metadata tables need, gathered over every geometry written.
#[derive(Default)]
struct GeoStats {
    /// The one type name so far, or `GEOMETRY` once they mix.
    type_name: Option<&'static str>,
    geometries: u64,
    with_z: u64,
    with_m: u64,
    extent: Option<[f64; 4]>,
    crs: Option<u32>,
}

impl GeoStats {
    fn add(&mut self, id: u64, g: &Geometry) -> Result<(), ActionError> {
        if let Some(c) = g.crs {
            match self.crs {
                None => self.crs = Some(c),
                Some(first) if first != c => {
                    return Err(ActionError::data(
                        Some(format!("feature {id}")),
                        format!(
                            "geometry in EPSG:{c}, but this layer is in EPSG:{first} (reproject upstream)"
                        ),
                    ));
                }
                Some(_) => {}
            }
        }
        let name = type_name(&g.geom);
        self.type_name = Some(match self.type_name {
            None => name,
            Some(t) if t == name => t,
            Some(_) => "GEOMETRY",
        });
        self.geometries += 1;
        self.with_z += u64::from(g.z().is_some());
        self.with_m += u64::from(g.m().is_some());
        Ok(())
    }

    fn extend(&mut self, r: [f64; 4]) {
        let e = self.extent.get_or_insert(r);
        e[0] = e[0].min(r[0]);
        e[1] = e[1].min(r[1]);
        e[2] = e[2].max(r[2]);
        e[3] = e[3].max(r[3]);
    }

    /// `z` / `m` of `gpkg_geometry_columns`: 0 none, 1 all, 2 some.
    fn flag(&self, with: u64) -> i64 {
        match with {
            0 => 0,
            n if n == self.geometries => 1,
            _ => 2,
        }
    }

    fn srs_id(&self) -> i64 {
        self.crs.map_or(0, i64::from)
    }
}

// ---------------------------------------------------------------------------------------------
// The build: a local SQLite file
// ---------------------------------------------------------------------------------------------

/// An attribute column of the layer table.
struct Column {
    name: String,
    /// `None`: not in the table yet (no value so far).
    ty: Option<ColType>,
    /// Values written as text into a column of mixed values that were not strings.
    as_text: u64,
}

/// Where an attribute of a feature goes.
#[derive(Clone, Copy)]
enum Slot {
    Column(usize),
    Fid,
    Skip,
}

/// The file being built and the layer table's state.
struct Build {
    /// Declared before `out` and `temp`: the connection closes before the file is removed.
    conn: Connection,
    /// The output; for a local one, its temporary file is the database being built.
    out: AtomicWriter,
    /// For other stores: the local file the database is built in, copied to `out` at the end.
    temp: Option<tempfile::TempPath>,
    table: Table,
}

struct Table {
    columns: Vec<Column>,
    /// Lower-case column name -> index in `columns`.
    by_name: HashMap<String, usize>,
    /// The declared type of the geometry column, once the column exists.
    geometry: Option<&'static str>,
    /// The INSERT statement for the columns in the table now.
    insert: String,
    stats: GeoStats,
    /// The slots of the last feature schema seen (features of a reader share one).
    slots: Option<(Arc<Schema>, Vec<Slot>)>,
    skipped_geometry_attribute: bool,
    written: u64,
}

/// A pending change to the table.
enum Change {
    AddColumn(usize, ColType),
    AddGeometry,
}

struct GpkgWriter {
    path: String,
    layer: String,
    geometry_column: String,
    fid_column: String,
    sample: usize,
    spatial_index: bool,
    /// Features held until the column types are decided.
    buffer: Vec<Feature>,
    build: Option<Build>,
    /// The finished, not yet committed output.
    pending: Option<AtomicWriter>,
}

impl GpkgWriter {
    fn sql_error(&self, what: &str, e: rusqlite::Error) -> ActionError {
        ActionError::Other(format!("writing {}: {what}: {e}", self.path).into())
    }

    fn rtree(&self) -> String {
        format!("rtree_{}_{}", self.layer, self.geometry_column)
    }

    /// Creates the file, the GeoPackage tables and the layer table, with columns decided
    /// from the buffered features.
    fn start(&mut self, ctx: &NodeContext) -> Result<(), ActionError> {
        let io = |e| ActionError::io(format!("writing {}", self.path), e);
        // A local output's database is built in the output's own temporary file, so the
        // commit is a rename (no copy), and a killed run's file is cleaned up like any other.
        let mut out = AtomicWriter::create(&self.path)?;
        let (file, temp) = match out.local_temp_file() {
            Some(p) => (p.to_path_buf(), None),
            None => {
                let t = tempfile::Builder::new()
                    .prefix(".sluice-gpkg-")
                    .suffix(".tmp")
                    .tempfile()
                    .map_err(io)?
                    .into_temp_path();
                (t.to_path_buf(), Some(t))
            }
        };
        let conn = Connection::open(&file).map_err(|e| self.sql_error("creating", e))?;
        // Large pages when the sample already holds a megabyte of geometry: a quarter fewer
        // pages to write for big layers (each 200-vertex polygon then shares a page with
        // others); small files keep SQLite's 4 KiB pages, so an empty GeoPackage stays small.
        let sample_bytes: usize = self
            .buffer
            .iter()
            .filter_map(|f| f.geometry().map(|g| g.heap_size()))
            .sum();
        let page_size = if sample_bytes >= 1 << 20 { 65536 } else { 4096 };
        let mut table = self.decide(ctx)?;
        conn.execute_batch(&format!(
            "PRAGMA page_size = {page_size}; PRAGMA application_id = 1196444487; PRAGMA user_version = 10300;
             PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF; PRAGMA cache_size = -4096;
             BEGIN;
             {GPKG_TABLES}"
        ))
        .map_err(|e| self.sql_error("creating the GeoPackage tables", e))?;
        let mut defs = vec![format!(
            "{} INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL",
            quote(&self.fid_column)
        )];
        if let Some(g) = table.geometry {
            defs.push(format!("{} {g}", quote(&self.geometry_column)));
        }
        for c in &table.columns {
            if let Some(ty) = c.ty {
                defs.push(format!("{} {}", quote(&c.name), ty.sql()));
            }
        }
        conn.execute_batch(&format!(
            "CREATE TABLE {} ({})",
            quote(&self.layer),
            defs.join(", ")
        ))
        .map_err(|e| self.sql_error("creating the layer table", e))?;
        if table.geometry.is_some() && self.spatial_index {
            self.create_rtree(&conn)?;
        }
        table.insert = self.insert_sql(&table);
        self.build = Some(Build {
            conn,
            out,
            temp,
            table,
        });
        let buffered = std::mem::take(&mut self.buffer);
        self.insert(buffered, ctx)
    }

    fn create_rtree(&self, conn: &Connection) -> Result<(), ActionError> {
        conn.execute_batch(&format!(
            "CREATE VIRTUAL TABLE {} USING rtree(id, minx, maxx, miny, maxy)",
            quote(&self.rtree())
        ))
        .map_err(|e| self.sql_error("creating the spatial index", e))
    }

    /// The columns and the geometry column, from the buffered features.
    fn decide(&self, ctx: &NodeContext) -> Result<Table, ActionError> {
        let mut table = Table {
            columns: Vec::new(),
            by_name: HashMap::new(),
            geometry: None,
            insert: String::new(),
            stats: GeoStats::default(),
            slots: None,
            skipped_geometry_attribute: false,
            written: 0,
        };
        let mut sampled: Vec<Option<ColType>> = Vec::new();
        let mut geometry: Option<&'static str> = None;
        for f in &self.buffer {
            if let Some(g) = f.geometry() {
                let name = type_name(&g.geom);
                geometry = Some(match geometry {
                    None => name,
                    Some(t) if t == name => t,
                    Some(_) => "GEOMETRY",
                });
            }
            for (name, value) in f.attributes() {
                let Slot::Column(i) = self.slot(&mut table, name, f.id())? else {
                    continue;
                };
                if sampled.len() <= i {
                    sampled.resize(i + 1, None);
                }
                if let Some(ty) = ColType::of(value) {
                    sampled[i] = Some(sampled[i].map_or(ty, |t| t.merge(ty)));
                }
            }
        }
        for (column, ty) in table.columns.iter_mut().zip(sampled) {
            column.ty = ty;
            if ty == Some(ColType::MixedText) {
                ctx.log(format!(
                    "{}: column \"{}\" holds values of several types: written as TEXT",
                    self.path, column.name
                ));
            }
        }
        // An empty layer is a feature layer of any geometry.
        table.geometry = geometry.or(self.buffer.is_empty().then_some("GEOMETRY"));
        Ok(table)
    }

    /// Where attribute `name` goes, adding a column (not yet typed) when it is new.
    fn slot(&self, table: &mut Table, name: &str, id: u64) -> Result<Slot, ActionError> {
        if name.eq_ignore_ascii_case(&self.fid_column) {
            return Ok(Slot::Fid);
        }
        if name.eq_ignore_ascii_case(&self.geometry_column) {
            table.skipped_geometry_attribute = true;
            return Ok(Slot::Skip);
        }
        let key = name.to_lowercase();
        if let Some(&i) = table.by_name.get(&key) {
            if table.columns[i].name != name {
                return Err(ActionError::data(
                    Some(format!("feature {id}")),
                    format!(
                        "attributes \"{}\" and \"{name}\" differ only in case, which GeoPackage (SQLite) column names do not tell apart",
                        table.columns[i].name
                    ),
                ));
            }
            return Ok(Slot::Column(i));
        }
        table.by_name.insert(key, table.columns.len());
        table.columns.push(Column {
            name: name.to_string(),
            ty: None,
            as_text: 0,
        });
        Ok(Slot::Column(table.columns.len() - 1))
    }

    /// `INSERT` for the fid, the geometry and the typed columns.
    fn insert_sql(&self, table: &Table) -> String {
        let mut names = vec![quote(&self.fid_column)];
        if table.geometry.is_some() {
            names.push(quote(&self.geometry_column));
        }
        names.extend(
            table
                .columns
                .iter()
                .filter(|c| c.ty.is_some())
                .map(|c| quote(&c.name)),
        );
        let marks: Vec<String> = (1..=names.len()).map(|i| format!("?{i}")).collect();
        format!(
            "INSERT INTO {} ({}) VALUES ({})",
            quote(&self.layer),
            names.join(", "),
            marks.join(", ")
        )
    }

    /// Applies a change to the table (a new column, the geometry column).
    fn apply(&self, build: &mut Build, change: Change) -> Result<(), ActionError> {
        let table = &mut build.table;
        let sql = match change {
            Change::AddColumn(i, ty) => {
                table.columns[i].ty = Some(ty);
                format!(
                    "ALTER TABLE {} ADD COLUMN {} {}",
                    quote(&self.layer),
                    quote(&table.columns[i].name),
                    ty.sql()
                )
            }
            Change::AddGeometry => {
                table.geometry = Some("GEOMETRY");
                format!(
                    "ALTER TABLE {} ADD COLUMN {} GEOMETRY",
                    quote(&self.layer),
                    quote(&self.geometry_column)
                )
            }
        };
        build
            .conn
            .execute_batch(&sql)
            .map_err(|e| self.sql_error("adding a column", e))?;
        if matches!(change, Change::AddGeometry) && self.spatial_index {
            self.create_rtree(&build.conn)?;
        }
        table.insert = self.insert_sql(table);
        Ok(())
    }

    /// Inserts features (the table exists).
    fn insert(&mut self, features: Vec<Feature>, ctx: &NodeContext) -> Result<(), ActionError> {
        let Some(mut build) = self.build.take() else {
            return Err(ActionError::Other("gpkg_writer: no table".into()));
        };
        let result = self.insert_into(&mut build, features, ctx);
        self.build = Some(build);
        result
    }

    fn insert_into(
        &self,
        build: &mut Build,
        features: Vec<Feature>,
        ctx: &NodeContext,
    ) -> Result<(), ActionError> {
        let mut blob = Vec::new();
        let mut rest = features.into_iter().peekable();
        while rest.peek().is_some() {
            ctx.check_cancelled()?;
            // The statements are made again after a change to the table.
            let mut change = None;
            {
                let Build { conn, table, .. } = &mut *build;
                let mut insert = conn
                    .prepare(&table.insert)
                    .map_err(|e| self.sql_error("preparing the insert", e))?;
                let mut rtree = match (table.geometry, self.spatial_index) {
                    (Some(_), true) => Some(
                        conn.prepare(&format!(
                            "INSERT INTO {} VALUES (?1, ?2, ?3, ?4, ?5)",
                            quote(&self.rtree())
                        ))
                        .map_err(|e| self.sql_error("preparing the index insert", e))?,
                    ),
                    _ => None,
                };
                while let Some(f) = rest.peek() {
                    if let Some(c) = self.needs_change(table, f)? {
                        change = Some(c);
                        break;
                    }
                    let Some(f) = rest.next() else { break };
                    self.insert_one(conn, table, &mut insert, rtree.as_mut(), &f, &mut blob)?;
                }
            }
            if let Some(c) = change {
                self.apply(build, c)?;
            }
        }
        Ok(())
    }

    /// The change the table needs before `f` can be inserted, if any.
    fn needs_change(&self, table: &mut Table, f: &Feature) -> Result<Option<Change>, ActionError> {
        if f.geometry().is_some() && table.geometry.is_none() {
            return Ok(Some(Change::AddGeometry));
        }
        let slots = self.slots(table, f)?;
        for (slot, value) in slots.iter().zip(f.values()) {
            if let Slot::Column(i) = slot
                && table.columns[*i].ty.is_none()
                && let Some(ty) = ColType::of(value)
            {
                return Ok(Some(Change::AddColumn(*i, ty)));
            }
        }
        Ok(None)
    }

    /// The slots of a feature's attributes (cached per schema).
    fn slots(&self, table: &mut Table, f: &Feature) -> Result<Vec<Slot>, ActionError> {
        if let Some((schema, slots)) = &table.slots
            && Arc::ptr_eq(schema, f.schema())
        {
            return Ok(slots.clone());
        }
        let mut slots = Vec::with_capacity(f.values().len());
        for (name, _) in f.attributes() {
            slots.push(self.slot(table, name, f.id())?);
        }
        table.slots = Some((f.schema().clone(), slots.clone()));
        Ok(slots)
    }

    fn insert_one(
        &self,
        conn: &Connection,
        table: &mut Table,
        insert: &mut rusqlite::Statement<'_>,
        rtree: Option<&mut rusqlite::Statement<'_>>,
        f: &Feature,
        blob: &mut Vec<u8>,
    ) -> Result<(), ActionError> {
        let at = || Some(format!("feature {}", f.id()));
        let slots = self.slots(table, f)?;
        let bind_error = |e| self.sql_error("binding a value", e);
        // Parameter positions: fid, geometry, then the typed columns in order.
        let first = if table.geometry.is_some() { 3 } else { 2 };
        let mut position: Vec<Option<usize>> = Vec::with_capacity(table.columns.len());
        let mut next = first;
        for c in &table.columns {
            position.push(c.ty.map(|_| {
                next += 1;
                next - 1
            }));
        }
        insert.clear_bindings();
        let mut fid: Option<i64> = None;
        for (slot, value) in slots.iter().zip(f.values()) {
            match slot {
                Slot::Skip => {}
                Slot::Fid => match value {
                    Value::Int(i) => fid = Some(*i),
                    Value::Null => {}
                    other => {
                        return Err(ActionError::data(
                            at(),
                            format!(
                                "attribute \"{}\" is the layer's primary key and must be an int, found {}",
                                self.fid_column,
                                other.type_name()
                            ),
                        ));
                    }
                },
                Slot::Column(i) => {
                    let (Some(p), Some(ty)) = (position[*i], table.columns[*i].ty) else {
                        // Untyped: only nulls so far (needs_change added the others).
                        continue;
                    };
                    let column = &mut table.columns[*i];
                    let v = sql_value(value, ty).map_err(|Misfit| {
                        ActionError::data(
                            at(),
                            format!(
                                "attribute \"{}\": a {} value in a {} column (column types are decided from the first {} features; raise `sample_features` or convert upstream)",
                                column.name,
                                value.type_name(),
                                ty.sql(),
                                self.sample
                            ),
                        )
                    })?;
                    if ty == ColType::MixedText && !matches!(value, Value::String(_) | Value::Null)
                    {
                        column.as_text += 1;
                    }
                    insert.raw_bind_parameter(p, v).map_err(bind_error)?;
                }
            }
        }
        insert.raw_bind_parameter(1, fid).map_err(bind_error)?;
        let mut envelope = None;
        if table.geometry.is_some() {
            match f.geometry() {
                Some(g) => {
                    table.stats.add(f.id(), g)?;
                    blob.clear();
                    let srs = g.crs.or(table.stats.crs).unwrap_or(0);
                    let srs = i32::try_from(srs).unwrap_or(0);
                    envelope = encode_geometry(g, srs, blob);
                    insert
                        .raw_bind_parameter(2, &blob[..])
                        .map_err(bind_error)?;
                }
                None => insert
                    .raw_bind_parameter(2, rusqlite::types::Null)
                    .map_err(bind_error)?,
            }
        }
        insert
            .raw_execute()
            .map_err(|e| ActionError::data(at(), format!("inserting into {}: {e}", self.path)))?;
        if let Some(r) = envelope {
            table.stats.extend(r);
            if let Some(rtree) = rtree {
                let id = fid.unwrap_or_else(|| conn.last_insert_rowid());
                rtree
                    .execute(rusqlite::params![id, r[0], r[2], r[1], r[3]])
                    .map_err(|e| self.sql_error("filling the spatial index", e))?;
            }
        }
        table.written += 1;
        Ok(())
    }

    /// Writes the metadata rows and triggers, commits the build and copies the file into
    /// an `AtomicWriter` (not yet committed).
    fn complete(&mut self, ctx: &NodeContext) -> Result<(), ActionError> {
        let Some(mut build) = self.build.take() else {
            return Err(ActionError::Other("gpkg_writer: no table".into()));
        };
        // Columns that never had a value.
        let untyped: Vec<usize> = (0..build.table.columns.len())
            .filter(|&i| build.table.columns[i].ty.is_none())
            .collect();
        for i in untyped {
            self.apply(&mut build, Change::AddColumn(i, ColType::Text))?;
        }
        let table = &build.table;
        let conn = &build.conn;
        let sql = |what: &str, r: rusqlite::Result<usize>| {
            r.map(|_| ()).map_err(|e| self.sql_error(what, e))
        };
        let stats = &table.stats;
        let srs_id = stats.srs_id();
        if srs_id > 0 && srs_id != 4326 {
            sql(
                "recording the CRS",
                conn.execute(
                    "INSERT INTO gpkg_spatial_ref_sys (srs_name, srs_id, organization, organization_coordsys_id, definition, description) VALUES (?1, ?2, 'EPSG', ?2, ?3, NULL)",
                    rusqlite::params![
                        format!("EPSG:{srs_id}"),
                        srs_id,
                        u32::try_from(srs_id)
                            .ok()
                            .and_then(crate::crs::wkt)
                            .unwrap_or("undefined")
                    ],
                ),
            )?;
        }
        let extent = stats.extent.filter(|e| e.iter().all(|v| v.is_finite()));
        let (data_type, contents_srs) = match table.geometry {
            Some(_) => ("features", Some(srs_id)),
            None => ("attributes", None),
        };
        sql(
            "writing gpkg_contents",
            conn.execute(
                "INSERT INTO gpkg_contents (table_name, data_type, identifier, description, min_x, min_y, max_x, max_y, srs_id) VALUES (?1, ?2, ?1, '', ?3, ?4, ?5, ?6, ?7)",
                rusqlite::params![
                    self.layer,
                    data_type,
                    extent.map(|e| e[0]),
                    extent.map(|e| e[1]),
                    extent.map(|e| e[2]),
                    extent.map(|e| e[3]),
                    contents_srs
                ],
            ),
        )?;
        if let Some(declared) = table.geometry {
            let name = stats.type_name.unwrap_or("GEOMETRY");
            sql(
                "writing gpkg_geometry_columns",
                conn.execute(
                    "INSERT INTO gpkg_geometry_columns (table_name, column_name, geometry_type_name, srs_id, z, m) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    rusqlite::params![
                        self.layer,
                        self.geometry_column,
                        name,
                        srs_id,
                        stats.flag(stats.with_z),
                        stats.flag(stats.with_m)
                    ],
                ),
            )?;
            if declared != name {
                self.redeclare_geometry(conn, declared, name)?;
            }
            if self.spatial_index {
                sql(
                    "registering the spatial index",
                    conn.execute(
                        "INSERT INTO gpkg_extensions (table_name, column_name, extension_name, definition, scope) VALUES (?1, ?2, 'gpkg_rtree_index', 'http://www.geopackage.org/spec120/#extension_rtree', 'write-only')",
                        rusqlite::params![self.layer, self.geometry_column],
                    ),
                )?;
                conn.execute_batch(&rtree_triggers(
                    &self.layer,
                    &self.geometry_column,
                    &self.fid_column,
                ))
                .map_err(|e| self.sql_error("creating the spatial index triggers", e))?;
            }
        }
        conn.execute_batch("COMMIT")
            .map_err(|e| self.sql_error("committing", e))?;
        for c in table.columns.iter().filter(|c| c.as_text > 0) {
            ctx.log(format!(
                "{}: column \"{}\" (TEXT, mixed): {} values of other types written as text",
                self.path, c.name, c.as_text
            ));
        }
        if table.skipped_geometry_attribute {
            ctx.log(format!(
                "{}: the attribute \"{}\" has the geometry column's name and was left out",
                self.path, self.geometry_column
            ));
        }
        let written = table.written;
        let Build {
            conn,
            mut out,
            temp,
            ..
        } = build;
        conn.close()
            .map_err(|(_, e)| self.sql_error("closing", e))?;
        if let Some(temp) = temp {
            let io = |e| ActionError::io(format!("writing {}", self.path), e);
            let mut file = std::fs::File::open(&temp).map_err(io)?;
            std::io::copy(&mut file, &mut out).map_err(io)?;
            out.flush().map_err(io)?;
        }
        self.pending = Some(out);
        ctx.log(format!(
            "wrote {written} features to layer \"{}\" of {}",
            self.layer, self.path
        ));
        Ok(())
    }

    /// Gives the geometry column the declared type `gpkg_geometry_columns` names (the
    /// spec requires them to agree) when the geometries turned out other than the sample.
    ///
    /// SQLite cannot change a column's type; the table's `CREATE` text is edited instead
    /// (`writable_schema`), which is safe here: the column holds only blobs and NULLs, which
    /// no column affinity converts.
    fn redeclare_geometry(
        &self,
        conn: &Connection,
        declared: &str,
        name: &str,
    ) -> Result<(), ActionError> {
        let column = quote(&self.geometry_column);
        let create: String = conn
            .query_row(
                "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?1",
                [&self.layer],
                |r| r.get(0),
            )
            .map_err(|e| self.sql_error("reading the table definition", e))?;
        let old = format!("{column} {declared}");
        if !create.contains(&old) {
            return Err(ActionError::Other(
                format!(
                    "writing {}: the table definition has no {old} to retype",
                    self.path
                )
                .into(),
            ));
        }
        let new_sql = create.replacen(&old, &format!("{column} {name}"), 1);
        let version: i64 = conn
            .query_row("PRAGMA schema_version", [], |r| r.get(0))
            .map_err(|e| self.sql_error("reading the schema version", e))?;
        conn.execute_batch("PRAGMA writable_schema = ON")
            .map_err(|e| self.sql_error("retyping the geometry column", e))?;
        let updated = conn.execute(
            "UPDATE sqlite_master SET sql = ?1 WHERE type = 'table' AND name = ?2",
            rusqlite::params![new_sql, self.layer],
        );
        let restored = conn.execute_batch(&format!(
            "PRAGMA schema_version = {}; PRAGMA writable_schema = OFF",
            version + 1
        ));
        updated.map_err(|e| self.sql_error("retyping the geometry column", e))?;
        restored.map_err(|e| self.sql_error("retyping the geometry column", e))
    }
}

/// The GeoPackage tables every file has (GeoPackage 1.3, as GDAL creates them), and the
/// three required spatial reference systems.
const GPKG_TABLES: &str = r#"
CREATE TABLE gpkg_spatial_ref_sys (srs_name TEXT NOT NULL, srs_id INTEGER NOT NULL PRIMARY KEY, organization TEXT NOT NULL, organization_coordsys_id INTEGER NOT NULL, definition TEXT NOT NULL, description TEXT);
CREATE TABLE gpkg_contents (table_name TEXT NOT NULL PRIMARY KEY, data_type TEXT NOT NULL, identifier TEXT UNIQUE, description TEXT DEFAULT '', last_change DATETIME NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ','now')), min_x DOUBLE, min_y DOUBLE, max_x DOUBLE, max_y DOUBLE, srs_id INTEGER, CONSTRAINT fk_gc_r_srs_id FOREIGN KEY (srs_id) REFERENCES gpkg_spatial_ref_sys(srs_id));
CREATE TABLE gpkg_geometry_columns (table_name TEXT NOT NULL, column_name TEXT NOT NULL, geometry_type_name TEXT NOT NULL, srs_id INTEGER NOT NULL, z TINYINT NOT NULL, m TINYINT NOT NULL, CONSTRAINT pk_geom_cols PRIMARY KEY (table_name, column_name), CONSTRAINT uk_gc_table_name UNIQUE (table_name), CONSTRAINT fk_gc_tn FOREIGN KEY (table_name) REFERENCES gpkg_contents(table_name), CONSTRAINT fk_gc_srs FOREIGN KEY (srs_id) REFERENCES gpkg_spatial_ref_sys (srs_id));
CREATE TABLE gpkg_tile_matrix_set (table_name TEXT NOT NULL PRIMARY KEY, srs_id INTEGER NOT NULL, min_x DOUBLE NOT NULL, min_y DOUBLE NOT NULL, max_x DOUBLE NOT NULL, max_y DOUBLE NOT NULL, CONSTRAINT fk_gtms_table_name FOREIGN KEY (table_name) REFERENCES gpkg_contents(table_name), CONSTRAINT fk_gtms_srs FOREIGN KEY (srs_id) REFERENCES gpkg_spatial_ref_sys (srs_id));
CREATE TABLE gpkg_tile_matrix (table_name TEXT NOT NULL, zoom_level INTEGER NOT NULL, matrix_width INTEGER NOT NULL, matrix_height INTEGER NOT NULL, tile_width INTEGER NOT NULL, tile_height INTEGER NOT NULL, pixel_x_size DOUBLE NOT NULL, pixel_y_size DOUBLE NOT NULL, CONSTRAINT pk_ttm PRIMARY KEY (table_name, zoom_level), CONSTRAINT fk_tmm_table_name FOREIGN KEY (table_name) REFERENCES gpkg_contents(table_name));
CREATE TABLE gpkg_extensions (table_name TEXT, column_name TEXT, extension_name TEXT NOT NULL, definition TEXT NOT NULL, scope TEXT NOT NULL, CONSTRAINT ge_tce UNIQUE (table_name, column_name, extension_name));
INSERT INTO gpkg_spatial_ref_sys VALUES ('Undefined Cartesian SRS', -1, 'NONE', -1, 'undefined', 'undefined Cartesian coordinate reference system');
INSERT INTO gpkg_spatial_ref_sys VALUES ('Undefined geographic SRS', 0, 'NONE', 0, 'undefined', 'undefined geographic coordinate reference system');
INSERT INTO gpkg_spatial_ref_sys VALUES ('WGS 84 geodetic', 4326, 'EPSG', 4326, 'GEOGCS["WGS 84",DATUM["WGS_1984",SPHEROID["WGS 84",6378137,298.257223563,AUTHORITY["EPSG","7030"]],AUTHORITY["EPSG","6326"]],PRIMEM["Greenwich",0,AUTHORITY["EPSG","8901"]],UNIT["degree",0.0174532925199433,AUTHORITY["EPSG","9122"]],AXIS["Latitude",NORTH],AXIS["Longitude",EAST],AUTHORITY["EPSG","4326"]]', 'longitude/latitude coordinates in decimal degrees on the WGS 84 spheroid');
"#;

/// The six triggers of the R-tree extension (GeoPackage 1.3, F.3), which keep the index in
/// step with later edits made through a GeoPackage library.
fn rtree_triggers(layer: &str, geometry: &str, fid: &str) -> String {
    let t = quote(layer);
    let r = quote(&format!("rtree_{layer}_{geometry}"));
    let name = |suffix: &str| quote(&format!("rtree_{layer}_{geometry}_{suffix}"));
    let c = quote(geometry);
    let i = quote(fid);
    let values = format!(
        "VALUES (NEW.{i}, ST_MinX(NEW.{c}), ST_MaxX(NEW.{c}), ST_MinY(NEW.{c}), ST_MaxY(NEW.{c}))"
    );
    format!(
        "CREATE TRIGGER {insert} AFTER INSERT ON {t} WHEN (new.{c} NOT NULL AND NOT ST_IsEmpty(NEW.{c})) BEGIN INSERT OR REPLACE INTO {r} {values}; END;
CREATE TRIGGER {update1} AFTER UPDATE OF {c} ON {t} WHEN OLD.{i} = NEW.{i} AND (NEW.{c} NOTNULL AND NOT ST_IsEmpty(NEW.{c})) BEGIN INSERT OR REPLACE INTO {r} {values}; END;
CREATE TRIGGER {update2} AFTER UPDATE OF {c} ON {t} WHEN OLD.{i} = NEW.{i} AND (NEW.{c} ISNULL OR ST_IsEmpty(NEW.{c})) BEGIN DELETE FROM {r} WHERE id = OLD.{i}; END;
CREATE TRIGGER {update3} AFTER UPDATE ON {t} WHEN OLD.{i} != NEW.{i} AND (NEW.{c} NOTNULL AND NOT ST_IsEmpty(NEW.{c})) BEGIN DELETE FROM {r} WHERE id = OLD.{i}; INSERT OR REPLACE INTO {r} {values}; END;
CREATE TRIGGER {update4} AFTER UPDATE ON {t} WHEN OLD.{i} != NEW.{i} AND (NEW.{c} ISNULL OR ST_IsEmpty(NEW.{c})) BEGIN DELETE FROM {r} WHERE id IN (OLD.{i}, NEW.{i}); END;
CREATE TRIGGER {delete} AFTER DELETE ON {t} WHEN old.{c} NOT NULL BEGIN DELETE FROM {r} WHERE id = OLD.{i}; END;",
        insert = name("insert"),
        update1 = name("update1"),
        update2 = name("update2"),
        update3 = name("update3"),
        update4 = name("update4"),
        delete = name("delete"),
    )
}

impl Sink for GpkgWriter {
    fn write(&mut self, _input: usize, batch: Batch, ctx: &NodeContext) -> Result<(), ActionError> {
        if self.build.is_some() {
            return self.insert(batch, ctx);
        }
        self.buffer.extend(batch);
        if self.buffer.len() >= self.sample {
            self.start(ctx)?;
        }
        Ok(())
    }

    fn finish(&mut self, ctx: &NodeContext) -> Result<(), ActionError> {
        if self.build.is_none() {
            self.start(ctx)?;
        }
        self.complete(ctx)
    }

    fn commit(&mut self) -> Result<(), ActionError> {
        super::commit_pending(&mut self.pending)
    }

    fn abort(&mut self) {
        self.pending = None;
        // Dropping the build closes the connection and removes the build file.
        self.build = None;
        self.buffer.clear();
    }
}

#[cfg(test)]
mod tests;
