//! `gpkg_reader`: reads the feature layers (and attribute tables) of OGC GeoPackage files.
//!
//! ```yaml
//! - id: roads
//!   action: gpkg_reader
//!   with:
//!     path: data/city.gpkg
//!     layer: roads
//! ```
//!
//! - `path` is a file, a folder (its `.gpkg` files) or a glob pattern; files are read in name
//!   order (several at once, up to `read_ahead`, emitted in file order). A GeoPackage is an
//!   SQLite database, which SQLite opens by path: a location that is not a local file (a
//!   `memory://` key, an object store, a zip member) is first copied to a temporary local
//!   file, removed when the file has been read.
//! - `layer` names one layer (a table of `gpkg_contents`) or a list of them. Without it,
//!   every feature layer (`data_type = 'features'`) is read, in `table_name` order.
//!   Attribute tables (`data_type = 'attributes'`, no geometry) are read only when named.
//!   An unknown name fails the run listing the layers the file has.
//! - When `layer` is omitted or a list, each feature gets the attribute `layer` (its layer's
//!   name; rename it with `layer_attribute`, or leave it out with `layer_attribute: null`)
//!   first, so layers stay apart downstream. With a single `layer` name it is added only
//!   when `layer_attribute` is given.
//! - Rows are streamed in primary key (`fid`) order: a layer is never held in memory.
//!   The primary key is an attribute named by its column (`fid`, as GDAL writes it); the
//!   other columns follow in table order; the geometry column (from
//!   `gpkg_geometry_columns`) is the feature's geometry and not an attribute.
//! - Values follow the declared column types (GeoPackage 1.3, table 1): `BOOLEAN` -> bool,
//!   `TINYINT`/`SMALLINT`/`MEDIUMINT`/`INT`/`INTEGER` -> int, `FLOAT`/`DOUBLE`/`REAL` ->
//!   float (an integer stored there, exactly representable, too), `TEXT` -> string, `BLOB`
//!   -> bytes, `DATE` (`YYYY-MM-DD`) -> date, `DATETIME` -> datetime when it carries a zone
//!   (`...Z`, as the spec writes it; offsets are converted to UTC) and local datetime when it
//!   has none (GDAL writes those for times of unknown zone). Other declared types take the
//!   value's SQLite storage class (integer, real, text, blob).
//! - SQLite is dynamically typed, so a stored value can contradict its column's declared
//!   type (text in an `INTEGER` column, `2` in a `BOOLEAN` one, a `DATE` that is not a
//!   date). Such a value is **kept as read** (a string stays a string; nothing is coerced or
//!   dropped), and the run log says, per column, how many values did so and the first `fid`.
//! - CRS: the `crs` parameter when given; otherwise the layer's `srs_id` in
//!   `gpkg_spatial_ref_sys`: its `organization` / `organization_coordsys_id` when the
//!   organization is EPSG, else an EPSG authority in its WKT `definition`. `srs_id` -1 and 0
//!   (the undefined systems) give no CRS. A system that names no EPSG code fails the run
//!   naming the file (give the `crs` parameter).
//! - Geometries are GeoPackage binary (the `GP` header: version, flags, `srs_id`, an
//!   optional envelope) followed by WKB, read with Z and M. A value that is not such a blob
//!   sends the row to the `rejected` port with its attributes and `_rejection_reason` =
//!   `file: layer L: fid N: geometry: reason`. A NULL geometry is a feature without one.
//!   The extended geometry types of the `GeoPackageBinary` extension are rejected the same
//!   way.
//! - A file that is not an SQLite database fails the run with `not a GeoPackage: ...`, and
//!   so does an SQLite database without `gpkg_contents`; errors name the file (and the layer
//!   and fid when there is one).

use std::path::Path;
use std::sync::Arc;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags};
use schemars::JsonSchema;
use serde::Deserialize;
use sluice_runtime::action::schema_of;
use sluice_runtime::expr::Type;
use sluice_runtime::feature::{parse_date, parse_local_datetime, parse_zoned_datetime, wkb};
use sluice_runtime::input::{FileOut, FileReader, FileSource, Files, SharedCache};
use sluice_runtime::shape::{GeometryShape, Shape, ShapeContext};
use sluice_runtime::store;
use sluice_runtime::{
    ActionError, ActionKind, ActionSpec, BuildContext, BuiltAction, DEFAULT_PORT, Feature,
    Geometry, NodeContext, NodeImpl, REJECTED_PORT, REJECTION_REASON, Schema, Value,
};

use super::file_input::{files_param, peekable};

/// Parameters of `gpkg_reader`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GpkgReaderParams {
    /// A file, a folder (every `.gpkg` file in it) or a glob pattern such as `data/*.gpkg`.
    pub path: String,
    /// The layer (table) to read, or a list of layers. Default: every feature layer, in
    /// name order. Attribute tables (no geometry) are read only when named here.
    #[serde(default)]
    pub layer: Option<LayerParam>,
    /// The attribute that receives each feature's layer name; `null`: none. Default:
    /// `layer` when `layer` is omitted or a list; none when `layer` names a single layer.
    #[serde(default, deserialize_with = "given")]
    #[schemars(with = "Option<String>")]
    pub layer_attribute: Option<Option<String>>,
    /// The CRS of the coordinates, overriding the file's own (an EPSG code, `"EPSG:2154"`, a
    /// URN or a WKT naming one). Default: the layer's `srs_id` in `gpkg_spatial_ref_sys`.
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
    /// `gpkg`. An empty list reads every file.
    #[serde(default)]
    pub extensions: Option<Vec<String>>,
}

/// A parameter that may be given as `null`: `Some(None)`, told apart from an absent one
/// (`None`, through `#[serde(default)]`).
fn given<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

/// One layer name or several.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum LayerParam {
    /// One layer.
    One(String),
    /// Several layers, read in this order.
    Many(Vec<String>),
}

/// The `gpkg_reader` action.
pub const SPEC: ActionSpec = ActionSpec::new(
    "gpkg_reader",
    ActionKind::Source,
    "Reads GeoPackage feature layers and attribute tables (a file, folder or glob), streamed in fid order.",
    schema_of::<GpkgReaderParams>,
    build,
)
.shape(shape)
.outputs(&[DEFAULT_PORT, REJECTED_PORT])
.reads_from("path")
.sliced("files by index; one GeoPackage is read whole by the first task")
.example("path: data/city.gpkg\nlayer: roads\n");

/// How many files validation reads the layer definitions of.
const SHAPE_FILES: usize = 8;

/// The attributes of the layers read, from the first local files' table definitions (each
/// column typed by its declared type; a value stored against it is kept as stored at run
/// time), with the layer attribute; unread (open) when a file cannot be peeked at (another
/// store) or does not open (the run reports why).
fn shape(ctx: &ShapeContext) -> Result<Vec<Shape>, ActionError> {
    let p: GpkgReaderParams = ctx.params()?;
    let crs = p.crs;
    let unread = || {
        let shape = Shape::unread(ctx.node_id).with_geometry(GeometryShape::Present { crs });
        Ok(vec![shape.clone(), shape.rejected()])
    };
    let (files, reader) = reader_of(p)?;
    let locations = files.locations();
    let mut merged: Option<Shape> = None;
    for location in locations.iter().take(SHAPE_FILES) {
        if !peekable(location) {
            return unread();
        }
        let Ok(layers) = reader.layers_of(location) else {
            return unread();
        };
        for layer in layers {
            let mut attributes: Vec<(String, Type)> = Vec::new();
            if let Some(pk) = layer
                .pk
                .as_ref()
                .filter(|pk| !layer.columns.iter().any(|c| c.name == **pk))
            {
                attributes.push((pk.clone(), Type::Int));
            }
            attributes.extend(layer.columns.iter().map(|c| {
                let ty = match c.kind {
                    Kind::Bool => Type::Bool,
                    Kind::Int => Type::Int,
                    Kind::Float => Type::Float,
                    Kind::Text => Type::String,
                    Kind::Blob => Type::Bytes,
                    Kind::Date => Type::Date,
                    // With a zone a datetime, without one a local one.
                    Kind::DateTime | Kind::AsStored => Type::Any,
                };
                (c.name.clone(), ty)
            }));
            if let Some(a) = &reader.layer_attribute {
                attributes.push((a.clone(), Type::String));
            }
            let geometry = match &layer.geometry {
                Some(_) => GeometryShape::Present { crs: layer.crs },
                None => GeometryShape::Absent,
            };
            let shape = Shape::closed(attributes).with_geometry(geometry);
            merged = Some(match merged {
                None => shape,
                Some(before) => before.merge(&shape),
            });
        }
    }
    let Some(mut shape) = merged else {
        return unread();
    };
    shape.open |= locations.len() > SHAPE_FILES;
    let rejected = shape.rejected();
    Ok(vec![shape, rejected])
}

fn build(ctx: &BuildContext) -> Result<BuiltAction, ActionError> {
    let (files, reader) = reader_of(ctx.params()?)?;
    Ok(BuiltAction::new(NodeImpl::Source(Box::new(
        FileReader::new(files, reader),
    ))))
}

/// The files and the reader the parameters ask for.
fn reader_of(p: GpkgReaderParams) -> Result<(Files, GpkgReader), ActionError> {
    let files = files_param(p.path, p.read_ahead, p.extensions, &["gpkg"], false)?;
    let (layers, several) = match p.layer {
        None => (None, true),
        Some(LayerParam::One(name)) => (Some(vec![name]), false),
        Some(LayerParam::Many(names)) => {
            if names.is_empty() {
                return Err(ActionError::param(
                    "layer",
                    "an empty list names no layer; omit `layer` to read every feature layer",
                ));
            }
            (Some(names), true)
        }
    };
    if let Some(names) = &layers
        && let Some(i) = names.iter().position(|n| n.trim().is_empty())
    {
        let path = if several {
            format!("layer[{i}]")
        } else {
            "layer".into()
        };
        return Err(ActionError::param(path, "must not be empty"));
    }
    let layer_attribute = match p.layer_attribute {
        Some(Some(name)) if name.trim().is_empty() => {
            return Err(ActionError::param("layer_attribute", "must not be empty"));
        }
        Some(given) => given,
        None => several.then(|| "layer".to_string()),
    };
    let reader = GpkgReader {
        layers,
        layer_attribute,
        crs: p.crs,
        schemas: SharedCache::new(),
    };
    Ok((files, reader))
}

struct GpkgReader {
    /// The layers asked for; `None`: every feature layer.
    layers: Option<Vec<String>>,
    layer_attribute: Option<String>,
    crs: Option<u32>,
    /// Attribute names seen before (in any layer of any file) get the same schemas back.
    schemas: SharedCache<Vec<String>, (Arc<Schema>, Arc<Schema>)>,
}

impl FileSource for GpkgReader {
    fn read_file(
        &self,
        location: &str,
        ctx: &NodeContext,
        out: &mut FileOut<'_>,
    ) -> Result<(), ActionError> {
        // SQLite opens files by name: a location that is not a local file is copied.
        let local = store::local_file(location)?;
        let conn = open(local.path(), location)?;
        for layer in self.chosen(&conn, location)? {
            self.read_layer(&conn, &layer, location, ctx, out)?;
        }
        Ok(())
    }
}

impl GpkgReader {
    /// The layers of an open file this reader reads, in order.
    fn chosen(&self, conn: &Connection, location: &str) -> Result<Vec<Layer>, ActionError> {
        let contents = contents(conn, location)?;
        let chosen: Vec<&Content> = match &self.layers {
            None => contents
                .iter()
                .filter(|c| c.data_type.eq_ignore_ascii_case("features"))
                .collect(),
            Some(names) => names
                .iter()
                .map(|n| find_layer(&contents, n, location))
                .collect::<Result<_, _>>()?,
        };
        chosen
            .into_iter()
            .map(|content| self.layer(conn, content, location))
            .collect()
    }

    /// The layers this reader would read from a local file (validation).
    fn layers_of(&self, location: &str) -> Result<Vec<Layer>, ActionError> {
        let local = store::local_file(location)?;
        let conn = open(local.path(), location)?;
        self.chosen(&conn, location)
    }
}

// ---------------------------------------------------------------------------------------------
// The file and its layers
// ---------------------------------------------------------------------------------------------

/// Opens a GeoPackage read-only.
fn open(path: &Path, location: &str) -> Result<Connection, ActionError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    Connection::open_with_flags(path, flags).map_err(|e| {
        ActionError::data(
            Some(location.to_string()),
            format!("not a GeoPackage: cannot open it as an SQLite database: {e}"),
        )
    })
}

/// A row of `gpkg_contents`.
#[derive(Debug, Clone)]
struct Content {
    table_name: String,
    data_type: String,
}

/// The rows of `gpkg_contents`, in `table_name` order.
fn contents(conn: &Connection, location: &str) -> Result<Vec<Content>, ActionError> {
    let bad = |m: String| ActionError::data(Some(location.to_string()), m);
    let has: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type IN ('table', 'view') AND name = 'gpkg_contents'",
            [],
            |r| r.get(0),
        )
        .map_err(|e| bad(format!("not a GeoPackage: not a readable SQLite database ({e})")))?;
    if has == 0 {
        return Err(bad(
            "not a GeoPackage: an SQLite database without a gpkg_contents table".into(),
        ));
    }
    let sql = "SELECT table_name, data_type FROM gpkg_contents ORDER BY table_name";
    let read = || -> rusqlite::Result<Vec<Content>> {
        let mut stmt = conn.prepare(sql)?;
        let rows = stmt.query_map([], |r| {
            Ok(Content {
                table_name: r.get(0)?,
                data_type: r.get(1)?,
            })
        })?;
        rows.collect()
    };
    read().map_err(|e| bad(format!("reading gpkg_contents: {e}")))
}

/// The `gpkg_contents` row of a layer asked for by name (exact, else ignoring case, as
/// SQLite compares table names).
fn find_layer<'a>(
    contents: &'a [Content],
    name: &str,
    location: &str,
) -> Result<&'a Content, ActionError> {
    let found = contents.iter().find(|c| c.table_name == name).or_else(|| {
        contents
            .iter()
            .find(|c| c.table_name.eq_ignore_ascii_case(name))
    });
    match found {
        Some(c)
            if c.data_type.eq_ignore_ascii_case("features")
                || c.data_type.eq_ignore_ascii_case("attributes") =>
        {
            Ok(c)
        }
        Some(c) => Err(ActionError::data(
            Some(location.to_string()),
            format!(
                "layer \"{}\" holds {} (only features and attributes are read)",
                c.table_name, c.data_type
            ),
        )),
        None => {
            let list = |kind: &str| {
                contents
                    .iter()
                    .filter(|c| c.data_type.eq_ignore_ascii_case(kind))
                    .map(|c| format!("\"{}\"", c.table_name))
                    .collect::<Vec<_>>()
            };
            let features = list("features");
            let attributes = list("attributes");
            let mut known = if features.is_empty() {
                "it has no feature layer".to_string()
            } else {
                format!("its feature layers are {}", features.join(", "))
            };
            if !attributes.is_empty() {
                known.push_str(&format!(
                    "; its attribute tables are {}",
                    attributes.join(", ")
                ));
            }
            Err(ActionError::data(
                Some(location.to_string()),
                format!("no layer \"{name}\": {known}"),
            ))
        }
    }
}

/// What reading a layer needs to know.
struct Layer {
    name: String,
    /// Attribute columns, in table order (the geometry column left out).
    columns: Vec<Column>,
    /// The geometry column, for feature layers.
    geometry: Option<String>,
    /// The primary key column (order and fid in messages); `None`: ordered by rowid.
    pk: Option<String>,
    crs: Option<u32>,
}

/// An attribute column: its name and the kind its declared type gives.
struct Column {
    name: String,
    declared: String,
    kind: Kind,
}

/// How values of a column are read (from its declared type).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Bool,
    Int,
    Float,
    Text,
    Blob,
    Date,
    DateTime,
    /// Any other declared type: the storage class decides.
    AsStored,
}

impl Kind {
    /// The kind of a declared type (`TEXT(20)` and `BLOB(1024)` carry a size).
    fn of(declared: &str) -> Kind {
        let base = declared.split('(').next().unwrap_or("").trim();
        match base.to_ascii_uppercase().as_str() {
            "BOOLEAN" => Kind::Bool,
            "TINYINT" | "SMALLINT" | "MEDIUMINT" | "INT" | "INTEGER" => Kind::Int,
            "FLOAT" | "DOUBLE" | "REAL" => Kind::Float,
            "TEXT" => Kind::Text,
            "BLOB" => Kind::Blob,
            "DATE" => Kind::Date,
            "DATETIME" => Kind::DateTime,
            _ => Kind::AsStored,
        }
    }
}

/// `name` as an SQL identifier.
pub(crate) fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

impl GpkgReader {
    /// Columns, geometry column and CRS of a layer.
    fn layer(
        &self,
        conn: &Connection,
        content: &Content,
        location: &str,
    ) -> Result<Layer, ActionError> {
        let name = content.table_name.clone();
        let bad = |m: String| {
            ActionError::data(Some(location.to_string()), format!("layer \"{name}\": {m}"))
        };
        let sql_error = |what: &str, e: rusqlite::Error| bad(format!("{what}: {e}"));
        let features = content.data_type.eq_ignore_ascii_case("features");
        let geometry: Option<(String, i64)> = if features {
            let row = conn
                .query_row(
                    "SELECT column_name, srs_id FROM gpkg_geometry_columns WHERE lower(table_name) = lower(?1)",
                    [&name],
                    |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)),
                )
                .map_err(|e| match e {
                    rusqlite::Error::QueryReturnedNoRows => {
                        bad("a feature layer without a gpkg_geometry_columns row".into())
                    }
                    e => sql_error("reading gpkg_geometry_columns", e),
                })?;
            Some(row)
        } else {
            None
        };
        let mut columns = Vec::new();
        let mut pks = Vec::new();
        let mut has_geometry = false;
        {
            let mut stmt = conn
                .prepare("SELECT name, type, pk FROM pragma_table_info(?1) ORDER BY cid")
                .map_err(|e| sql_error("reading its columns", e))?;
            let rows = stmt
                .query_map([&name], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, Option<String>>(1)?.unwrap_or_default(),
                        r.get::<_, i64>(2)?,
                    ))
                })
                .map_err(|e| sql_error("reading its columns", e))?;
            for row in rows {
                let (column, declared, pk) =
                    row.map_err(|e| sql_error("reading its columns", e))?;
                if pk > 0 {
                    pks.push(column.clone());
                }
                if geometry
                    .as_ref()
                    .is_some_and(|(g, _)| g.eq_ignore_ascii_case(&column))
                {
                    has_geometry = true;
                    continue;
                }
                columns.push(Column {
                    kind: Kind::of(&declared),
                    name: column,
                    declared,
                });
            }
        }
        if columns.is_empty() && pks.is_empty() && !has_geometry {
            return Err(bad("the table does not exist or has no columns".into()));
        }
        if let Some((g, _)) = &geometry
            && !has_geometry
        {
            return Err(bad(format!(
                "gpkg_geometry_columns names the geometry column \"{g}\", which the table does not have"
            )));
        }
        if let Some(attr) = &self.layer_attribute
            && let Some(c) = columns.iter().find(|c| c.name == *attr)
        {
            return Err(bad(format!(
                "the column \"{}\" has the name of the layer attribute; give `layer_attribute` another name",
                c.name
            )));
        }
        let crs = match (&geometry, self.crs) {
            (None, _) => None,
            (Some(_), Some(c)) => Some(c),
            (Some((_, srs_id)), None) => srs_code(conn, *srs_id).map_err(bad)?,
        };
        let pk = (pks.len() == 1).then(|| pks.remove(0));
        Ok(Layer {
            name: name.clone(),
            columns,
            geometry: geometry.map(|(g, _)| g),
            pk,
            crs,
        })
    }

    /// Streams one layer's rows, in primary key order.
    fn read_layer(
        &self,
        conn: &Connection,
        layer: &Layer,
        location: &str,
        ctx: &NodeContext,
        out: &mut FileOut<'_>,
    ) -> Result<(), ActionError> {
        let bad = |m: String| {
            ActionError::data(
                Some(location.to_string()),
                format!("layer \"{}\": {m}", layer.name),
            )
        };
        let names: Vec<String> = self
            .layer_attribute
            .iter()
            .cloned()
            .chain(layer.columns.iter().map(|c| c.name.clone()))
            .collect();
        let (schema, rejected_schema) = self.schemas.get_or_insert_with(names.clone(), || {
            let schema = Schema::new(names.iter().map(String::as_str));
            let rejected = schema.with(REJECTION_REASON);
            (schema, rejected)
        });
        let mut select: Vec<String> = layer.columns.iter().map(|c| quote(&c.name)).collect();
        if let Some(g) = &layer.geometry {
            select.push(quote(g));
        }
        let pk_index = layer
            .pk
            .as_ref()
            .and_then(|pk| layer.columns.iter().position(|c| c.name == *pk));
        if pk_index.is_none() {
            select.push("rowid".into());
        }
        let order = match &layer.pk {
            Some(pk) => quote(pk),
            None => "rowid".into(),
        };
        let sql = format!(
            "SELECT {} FROM {} ORDER BY {order}",
            select.join(", "),
            quote(&layer.name)
        );
        let mut stmt = conn
            .prepare(&sql)
            .map_err(|e| bad(format!("reading the table: {e}")))?;
        let mut rows = stmt
            .query([])
            .map_err(|e| bad(format!("reading the table: {e}")))?;
        let n = layer.columns.len();
        let mut mismatches: Vec<(u64, Option<i64>)> = vec![(0, None); n];
        let layer_value = Value::String(layer.name.as_str().into());
        let mut count: u64 = 0;
        let mut last_fid: Option<i64> = None;
        loop {
            let row = match rows.next() {
                Ok(Some(row)) => row,
                Ok(None) => break,
                Err(e) => {
                    let after = last_fid
                        .map_or("at the first row".to_string(), |f| format!("after fid {f}"));
                    return Err(bad(format!("reading {after}: {e}")));
                }
            };
            if count.is_multiple_of(1024) {
                ctx.check_cancelled()?;
            }
            count += 1;
            let cell = |i: usize| {
                row.get_ref(i)
                    .map_err(|e| bad(format!("reading a row: {e}")))
            };
            let fid = match pk_index {
                Some(i) => match cell(i)? {
                    ValueRef::Integer(f) => Some(f),
                    _ => None,
                },
                None => match cell(select.len() - 1)? {
                    ValueRef::Integer(f) => Some(f),
                    _ => None,
                },
            };
            last_fid = fid.or(last_fid);
            let mut values = Vec::with_capacity(names.len() + 1);
            if self.layer_attribute.is_some() {
                values.push(layer_value.clone());
            }
            for (i, column) in layer.columns.iter().enumerate() {
                let (value, fits) = typed(column.kind, cell(i)?);
                if !fits {
                    let m = &mut mismatches[i];
                    m.0 += 1;
                    if m.1.is_none() {
                        m.1 = fid;
                    }
                }
                values.push(value);
            }
            let geometry = match &layer.geometry {
                None => Ok(None),
                Some(_) => geometry_cell(cell(n)?).map(|g| {
                    g.map(|mut g| {
                        g.crs = layer.crs;
                        g
                    })
                }),
            };
            match geometry {
                Ok(g) => out.emit(Feature::new(0, schema.clone(), values).with_geometry(g))?,
                Err(message) => {
                    let at = fid.map_or_else(|| format!("row {count}"), |f| format!("fid {f}"));
                    values.push(Value::String(
                        format!(
                            "{location}: layer \"{}\": {at}: geometry: {message}",
                            layer.name
                        )
                        .into(),
                    ));
                    out.emit_rejected(Feature::new(0, rejected_schema.clone(), values))?;
                }
            }
        }
        for (column, (count, first)) in layer.columns.iter().zip(&mismatches) {
            if *count > 0 {
                let first = first.map_or(String::new(), |f| format!(", the first at fid {f}"));
                ctx.log(format!(
                    "{location}: layer \"{}\": column \"{}\" ({}): {count} values do not match the declared type and were kept as stored{first}",
                    layer.name, column.name, column.declared
                ));
            }
        }
        Ok(())
    }
}

/// The EPSG code of a `gpkg_spatial_ref_sys` row (`None` for the undefined systems -1, 0),
/// or a message saying why there is none.
fn srs_code(conn: &Connection, srs_id: i64) -> Result<Option<u32>, String> {
    if srs_id == -1 || srs_id == 0 {
        return Ok(None);
    }
    let row: (String, i64, String) = conn
        .query_row(
            "SELECT organization, organization_coordsys_id, definition FROM gpkg_spatial_ref_sys WHERE srs_id = ?1",
            [srs_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .map_err(|e| match e {
            rusqlite::Error::QueryReturnedNoRows => {
                format!("srs_id {srs_id} has no row in gpkg_spatial_ref_sys")
            }
            e => format!("reading gpkg_spatial_ref_sys: {e}"),
        })?;
    let (organization, code, definition) = row;
    if organization.eq_ignore_ascii_case("EPSG")
        && let Ok(code) = u32::try_from(code)
    {
        return Ok(Some(code));
    }
    crate::crs::CrsParam::Text(definition)
        .resolve()
        .ok()
        .and_then(|d| d.code)
        .map(Some)
        .ok_or_else(|| {
            format!(
                "its spatial reference system (srs_id {srs_id}, organization \"{organization}\" {code}) names no EPSG code sluice knows; give the `crs` parameter"
            )
        })
}

/// A stored value as its storage class gives it (text that is not UTF-8 stays bytes).
fn as_stored(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Int(i),
        ValueRef::Real(f) => Value::Float(f),
        ValueRef::Text(t) => match std::str::from_utf8(t) {
            Ok(s) => Value::String(s.into()),
            Err(_) => Value::Bytes(t.into()),
        },
        ValueRef::Blob(b) => Value::Bytes(b.into()),
    }
}

/// A stored value read as its column's kind, and whether it fitted that kind (one that
/// does not is kept as stored).
fn typed(kind: Kind, v: ValueRef<'_>) -> (Value, bool) {
    fn text(v: ValueRef<'_>) -> Option<&str> {
        match v {
            ValueRef::Text(t) => std::str::from_utf8(t).ok(),
            _ => None,
        }
    }
    let converted = match (kind, v) {
        (_, ValueRef::Null) => Some(Value::Null),
        (Kind::AsStored, v) => return (as_stored(v), true),
        (Kind::Bool, ValueRef::Integer(0)) => Some(Value::Bool(false)),
        (Kind::Bool, ValueRef::Integer(1)) => Some(Value::Bool(true)),
        (Kind::Int, ValueRef::Integer(i)) => Some(Value::Int(i)),
        (Kind::Float, ValueRef::Real(f)) => Some(Value::Float(f)),
        // Exactly representable: the declared type is a float.
        (Kind::Float, ValueRef::Integer(i)) if i.unsigned_abs() <= 1 << 53 => {
            Some(Value::Float(i as f64))
        }
        (Kind::Text, v) => text(v).map(|s| Value::String(s.into())),
        (Kind::Blob, ValueRef::Blob(b)) => Some(Value::Bytes(b.into())),
        (Kind::Date, v) => text(v).and_then(parse_date).map(Value::Date),
        (Kind::DateTime, v) => text(v).and_then(|s| {
            parse_zoned_datetime(s)
                .map(Value::DateTime)
                .or_else(|| parse_local_datetime(s).map(Value::LocalDateTime))
        }),
        _ => None,
    };
    match converted {
        Some(value) => (value, true),
        None => (as_stored(v), false),
    }
}

/// The geometry of a geometry column's cell: none for NULL, a message for anything that is
/// not a valid GeoPackage geometry blob.
fn geometry_cell(v: ValueRef<'_>) -> Result<Option<Geometry>, String> {
    match v {
        ValueRef::Null => Ok(None),
        ValueRef::Blob(b) => decode_geometry(b).map(Some),
        other => Err(format!(
            "a {} value, not a GeoPackage geometry blob",
            match other {
                ValueRef::Integer(_) => "integer",
                ValueRef::Real(_) => "real",
                _ => "text",
            }
        )),
    }
}

/// The envelope sizes (bytes) of envelope codes 0 to 4: none, xy, xyz, xym, xyzm.
const ENVELOPE_BYTES: [usize; 5] = [0, 32, 48, 48, 64];

/// The header of a GeoPackage geometry blob (`GP`, version, flags, `srs_id`, envelope).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BlobHeader {
    /// The `srs_id` the blob names.
    pub srs_id: i32,
    /// The envelope code (0 to 4).
    pub envelope: u8,
    /// Whether the empty flag is set.
    pub empty: bool,
    /// Header length: where the WKB starts.
    pub len: usize,
}

/// Reads the header of a GeoPackage geometry blob, checking every field it can.
pub(crate) fn blob_header(blob: &[u8]) -> Result<BlobHeader, String> {
    if blob.len() < 8 {
        return Err(format!(
            "a blob of {} bytes, shorter than the 8-byte GeoPackage geometry header",
            blob.len()
        ));
    }
    if &blob[..2] != b"GP" {
        return Err(format!(
            "the blob starts with {:02x} {:02x}, not the GeoPackage magic \"GP\"",
            blob[0], blob[1]
        ));
    }
    if blob[2] != 0 {
        return Err(format!(
            "GeoPackage binary version {} (only version 1, written 0, is known)",
            blob[2]
        ));
    }
    let flags = blob[3];
    if flags & 0xC0 != 0 {
        return Err(format!("reserved flag bits set (flags 0x{flags:02x})"));
    }
    if flags & 0x20 != 0 {
        return Err(
            "an extended geometry type (GeoPackageBinary extension), which is not supported".into(),
        );
    }
    let envelope = (flags >> 1) & 0x07;
    let Some(&size) = ENVELOPE_BYTES.get(usize::from(envelope)) else {
        return Err(format!(
            "invalid envelope code {envelope} (flags 0x{flags:02x})"
        ));
    };
    let id = [blob[4], blob[5], blob[6], blob[7]];
    let srs_id = if flags & 1 == 1 {
        i32::from_le_bytes(id)
    } else {
        i32::from_be_bytes(id)
    };
    let len = 8 + size;
    if blob.len() < len {
        return Err(format!(
            "a blob of {} bytes, too short for its header with a {size}-byte envelope",
            blob.len()
        ));
    }
    Ok(BlobHeader {
        srs_id,
        envelope,
        empty: flags & 0x10 != 0,
        len,
    })
}

/// Reads a GeoPackage geometry blob (header, then WKB with Z/M) into a geometry without
/// CRS (the caller sets the layer's).
pub(crate) fn decode_geometry(blob: &[u8]) -> Result<Geometry, String> {
    let header = blob_header(blob)?;
    wkb::from_wkb(&blob[header.len..]).map_err(|e| e.to_string())
}

#[cfg(test)]
pub(crate) mod tests;
