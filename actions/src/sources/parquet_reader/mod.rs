//! `parquet_reader`: reads Parquet and GeoParquet files into features.
//!
//! ```yaml
//! - id: buildings
//!   action: parquet_reader
//!   with:
//!     path: data/buildings/*.parquet
//!     batch_rows: 8192
//! ```
//!
//! - `path` is a file, a folder (its files) or a glob pattern; files are read in name order
//!   (several at once, up to `read_ahead`, emitted in file order).
//! - Rows are decoded in record batches of `batch_rows` (arrow-rs
//!   `ParquetRecordBatchReader`), row group by row group: a file is never decoded whole.
//! - Columns become attributes in file order; see `sluice_runtime::feature::arrow`
//!   (`column_values`) for the type mapping
//!   (integers int, floats and decimals float, strings, booleans, dates, timestamps as UTC
//!   datetimes, binary as bytes, lists arrays, structs and maps maps, nulls null). A column of
//!   a type with no mapping (a duration, an interval, a union) fails the run naming the file
//!   and the column.
//! - GeoParquet: when the file's key-value metadata has a `geo` entry, its primary column
//!   (WKB encoding) becomes the feature geometry and is not an attribute. Its EPSG code comes
//!   from the column's `crs`: PROJJSON `id` (`{"authority": "EPSG", "code": 3857}`; OGC CRS84
//!   is 4326), a missing `crs` is 4326 (the GeoParquet default, OGC:CRS84), `null` is unknown.
//!   A value that is not valid WKB sends the row to the `rejected` port with its attributes
//!   and `_rejection_reason` = `file: row N: ...`. Other encodings (GeoArrow native) fail
//!   the run with a clear message.
//! - In a partitioned run (`--partition I/N`), several files are shared out by index, each
//!   read whole. One file is split by row group: task I reads the row groups
//!   [`Slice::index_range`](sluice_runtime::Slice::index_range) gives over the file's row
//!   groups (a file of fewer row groups than tasks leaves some tasks nothing); `row N` in
//!   rejections counts in the whole file.
//!
//! # Why local files are opened directly
//!
//! Parquet is read from the end: the footer says where each column chunk is, so the reader
//! needs random access. `store::open_read` gives a forward stream only, and nothing here adds
//! a seekable reader to the runtime, so: a local path (or `file://` URL) is opened with
//! `std::fs::File`, which the Parquet reader seeks in directly (only what it decodes is
//! read); any other location (`memory://`, object stores) is read whole into memory through
//! `store::open_read` first, which costs the file's size in memory while it is decoded.

use std::io::Read;
use std::sync::Arc;

use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::metadata::KeyValue;
use parquet::file::reader::ChunkReader;
use schemars::JsonSchema;
use serde::Deserialize;
use sluice_runtime::action::schema_of;
use sluice_runtime::feature::arrow::{WkbColumn, column_values, value_type};
use sluice_runtime::shape::{GeometryShape, Shape as PortShape, ShapeContext, Type};
use sluice_runtime::store;
use sluice_runtime::{
    ActionError, ActionKind, ActionSpec, BuildContext, BuiltAction, DEFAULT_PORT, Feature,
    NodeContext, NodeImpl, REJECTED_PORT, REJECTION_REASON, Schema, Value,
};

use super::file_input::{files_param, peekable};
use sluice_runtime::input::{FileOut, FileReader, FileSource, SharedCache};

/// Parameters of `parquet_reader`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ParquetReaderParams {
    /// A file, a folder (every file in it) or a glob pattern such as `data/*.parquet`.
    pub path: String,
    /// Rows decoded at a time.
    #[serde(default = "default_batch_rows")]
    #[schemars(range(min = 1))]
    pub batch_rows: usize,
    /// Most files read at once when `path` names several (default: the run's read-ahead,
    /// which shrinks under memory pressure; it also caps this value). 1 reads them one
    /// after another.
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub read_ahead: Option<usize>,
    /// File name endings read from a folder or glob (without the dot, any case). Default:
    /// `parquet`, `geoparquet`, `pq`. An empty list reads every file.
    #[serde(default)]
    pub extensions: Option<Vec<String>>,
}

fn default_batch_rows() -> usize {
    8192
}

/// The `parquet_reader` action.
pub const SPEC: ActionSpec = ActionSpec::new(
    "parquet_reader",
    ActionKind::Source,
    "Reads Parquet files (GeoParquet WKB geometry included) in record batches.",
    schema_of::<ParquetReaderParams>,
    build,
)
.outputs(&[DEFAULT_PORT, REJECTED_PORT])
.reads_from("path")
.shape(shape)
.sliced("files by index; one Parquet file by ranges of its row groups")
.example("path: data/buildings/*.parquet\nbatch_rows: 8192\n");

/// The files a `path` names, read by the run and, for their footers, by validation.
fn parquet_files(
    path: String,
    read_ahead: Option<usize>,
    extensions: Option<Vec<String>>,
) -> Result<sluice_runtime::input::Files, ActionError> {
    files_param(
        path,
        read_ahead,
        extensions,
        &["parquet", "geoparquet", "pq"],
        false,
    )
}

fn build(ctx: &BuildContext) -> Result<BuiltAction, ActionError> {
    let p: ParquetReaderParams = ctx.params()?;
    let files = parquet_files(p.path, p.read_ahead, p.extensions)?;
    if p.batch_rows == 0 {
        return Err(ActionError::param("batch_rows", "must be at least 1"));
    }
    Ok(BuiltAction::new(NodeImpl::Source(Box::new(
        FileReader::new(
            files,
            ParquetReader {
                batch_rows: p.batch_rows,
                schemas: SharedCache::new(),
            },
        ),
    ))))
}

/// Files whose footers validation reads at most: a path naming more is open.
const SHAPE_FILES: usize = 8;

/// The columns of the files `path` names, from their footers (no row is decoded), typed as
/// [`column_values`] reads them; the GeoParquet primary column is the geometry. Unknown when
/// no file can be read yet.
fn shape(ctx: &ShapeContext) -> Result<Vec<PortShape>, ActionError> {
    let p: ParquetReaderParams = ctx.params()?;
    let files = parquet_files(p.path, p.read_ahead, p.extensions)?;
    let locations = files.locations();
    let mut merged: Option<PortShape> = None;
    for location in locations.iter().take(SHAPE_FILES) {
        let local = local_path(location).filter(|_| peekable(location));
        let Some(file) = local.and_then(|p| std::fs::File::open(p).ok()) else {
            return Ok(Vec::new());
        };
        let Ok(shape) = file_shape(file, location) else {
            return Ok(Vec::new());
        };
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

/// The shape of one Parquet file, from its footer.
fn file_shape<R: ChunkReader + 'static>(
    input: R,
    location: &str,
) -> Result<PortShape, ActionError> {
    let builder = ParquetRecordBatchReaderBuilder::try_new(input)
        .map_err(|e| ActionError::data(Some(location.to_string()), e.to_string()))?;
    let geo = geo_column(
        builder.metadata().file_metadata().key_value_metadata(),
        location,
    )?;
    let attributes = builder
        .schema()
        .fields()
        .iter()
        .filter(|f| geo.as_ref().is_none_or(|g| g.name != *f.name()))
        .map(|f| {
            (
                f.name().clone(),
                value_type(f.data_type()).unwrap_or(Type::Any),
            )
        });
    let geometry = match &geo {
        Some(g) => GeometryShape::Present { crs: g.crs },
        None => GeometryShape::Absent,
    };
    Ok(PortShape::closed(attributes).with_geometry(geometry))
}

struct ParquetReader {
    batch_rows: usize,
    /// Column names seen before (in any file) get the same schemas back.
    schemas: SharedCache<Vec<String>, (Arc<Schema>, Arc<Schema>)>,
}

impl FileSource for ParquetReader {
    fn read_file(
        &self,
        location: &str,
        ctx: &NodeContext,
        out: &mut FileOut<'_>,
    ) -> Result<(), ActionError> {
        match local_path(location) {
            Some(path) => {
                let file = std::fs::File::open(path)
                    .map_err(|e| ActionError::io(format!("reading {location}"), e))?;
                self.read(file, location, ctx, out)
            }
            None => {
                let mut data = Vec::new();
                store::open_read(location)?
                    .read_to_end(&mut data)
                    .map_err(|e| ActionError::io(format!("reading {location}"), e))?;
                self.read(bytes::Bytes::from(data), location, ctx, out)
            }
        }
    }

    fn splits_files(&self) -> bool {
        true
    }
}

/// The file path of a local location (a plain path or a `file://` URL); `None` for URLs of
/// other schemes.
fn local_path(location: &str) -> Option<&str> {
    if let Some(path) = location.strip_prefix("file://") {
        return Some(path);
    }
    match location.find("://") {
        Some(i) if i > 1 && location[..i].chars().all(|c| c.is_ascii_alphanumeric()) => None,
        _ => Some(location),
    }
}

/// The GeoParquet primary column: its name and EPSG code.
#[derive(Debug, PartialEq)]
struct GeoColumn {
    name: String,
    crs: Option<u32>,
}

impl ParquetReader {
    fn read<R: ChunkReader + 'static>(
        &self,
        input: R,
        location: &str,
        ctx: &NodeContext,
        out: &mut FileOut<'_>,
    ) -> Result<(), ActionError> {
        let data_error = |message: String| ActionError::data(Some(location.to_string()), message);
        let builder = ParquetRecordBatchReaderBuilder::try_new(input)
            .map_err(|e| data_error(format!("not a readable Parquet file: {e}")))?;
        let geo = geo_column(
            builder.metadata().file_metadata().key_value_metadata(),
            location,
        )?;
        let fields = builder.schema().fields().clone();
        let geo_index = match &geo {
            None => None,
            Some(g) => {
                let Some((i, f)) = fields.find(&g.name) else {
                    return Err(data_error(format!(
                        "the \"geo\" metadata names the primary column \"{}\", which the file does not have",
                        g.name
                    )));
                };
                if !matches!(
                    f.data_type(),
                    DataType::Binary | DataType::LargeBinary | DataType::BinaryView
                ) {
                    return Err(data_error(format!(
                        "geometry column \"{}\" is {}, expected binary WKB",
                        g.name,
                        f.data_type()
                    )));
                }
                Some(i)
            }
        };
        let names: Vec<String> = fields
            .iter()
            .enumerate()
            .filter(|(i, _)| Some(*i) != geo_index)
            .map(|(_, f)| f.name().clone())
            .collect();
        let (schema, rejected_schema) = self.schemas.get_or_insert_with(names.clone(), || {
            let schema = Schema::new(names.iter().map(String::as_str));
            let rejected = schema.with(REJECTION_REASON);
            (schema, rejected)
        });
        let crs = geo.as_ref().and_then(|g| g.crs);
        // A part of the file: its share of the row groups, its rows numbered in the file.
        let part = out.part();
        let (builder, first_row) = if part.is_whole() {
            (builder, 0)
        } else {
            let groups = builder.metadata().row_groups();
            let mine = part.index_range(groups.len());
            if mine.is_empty() {
                return Ok(());
            }
            let before: i64 = groups[..mine.start].iter().map(|g| g.num_rows()).sum();
            (builder.with_row_groups(mine.collect()), before as u64)
        };
        let reader = builder
            .with_batch_size(self.batch_rows)
            .build()
            .map_err(|e| data_error(format!("reading: {e}")))?;
        let mut row: u64 = first_row;
        for batch in reader {
            ctx.check_cancelled()?;
            let batch = batch.map_err(|e| data_error(format!("near row {row}: {e}")))?;
            self.emit_batch(
                &batch,
                geo_index,
                crs,
                (&schema, &rejected_schema),
                location,
                &mut row,
                out,
            )?;
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    fn emit_batch(
        &self,
        batch: &RecordBatch,
        geo_index: Option<usize>,
        crs: Option<u32>,
        (schema, rejected_schema): (&Arc<Schema>, &Arc<Schema>),
        location: &str,
        row: &mut u64,
        out: &mut FileOut<'_>,
    ) -> Result<(), ActionError> {
        let mut columns = Vec::with_capacity(schema.len());
        for (i, column) in batch.columns().iter().enumerate() {
            if Some(i) == geo_index {
                continue;
            }
            let name = batch.schema_ref().field(i).name().clone();
            columns.push(column_values(column.as_ref()).map_err(|m| {
                ActionError::data(
                    Some(location.to_string()),
                    format!("column \"{name}\": {m}"),
                )
            })?);
        }
        let geometries = match geo_index {
            None => None,
            Some(i) => Some(WkbColumn::new(batch.column(i)).ok_or_else(|| {
                ActionError::data(
                    Some(location.to_string()),
                    format!(
                        "geometry column: expected binary WKB, found {}",
                        batch.column(i).data_type()
                    ),
                )
            })?),
        };
        for r in 0..batch.num_rows() {
            let values: Vec<Value> = columns
                .iter_mut()
                .map(|c| c.get_mut(r).map(std::mem::take).unwrap_or_default())
                .collect();
            let wkb = geometries.as_ref().map(|g| g.geometry(r));
            let geometry = match wkb.map(|g| g.map_err(|e| format!("bad WKB: {e}"))) {
                None | Some(Ok(None)) => None,
                Some(Ok(Some(mut geom))) => {
                    geom.crs = crs;
                    Some(geom)
                }
                Some(Err(message)) => {
                    let mut values = values;
                    values.push(Value::String(
                        format!("{location}: row {row}: geometry: {message}").into(),
                    ));
                    *row += 1;
                    out.emit_rejected(Feature::new(0, rejected_schema.clone(), values))?;
                    continue;
                }
            };
            *row += 1;
            out.emit(Feature::new(0, schema.clone(), values).with_geometry(geometry))?;
        }
        Ok(())
    }
}

/// Reads the GeoParquet `geo` metadata, if the file has it.
fn geo_column(
    metadata: Option<&Vec<KeyValue>>,
    location: &str,
) -> Result<Option<GeoColumn>, ActionError> {
    let Some(text) = metadata
        .and_then(|kv| kv.iter().find(|kv| kv.key == "geo"))
        .and_then(|kv| kv.value.as_deref())
    else {
        return Ok(None);
    };
    let bad = |m: String| ActionError::data(Some(location.to_string()), m);
    let geo: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| bad(format!("the \"geo\" metadata is not valid JSON: {e}")))?;
    let Some(primary) = geo.get("primary_column").and_then(|p| p.as_str()) else {
        return Err(bad("the \"geo\" metadata has no primary_column".into()));
    };
    let Some(column) = geo.get("columns").and_then(|c| c.get(primary)) else {
        return Err(bad(format!(
            "the \"geo\" metadata does not describe its primary column \"{primary}\""
        )));
    };
    let encoding = column
        .get("encoding")
        .and_then(|e| e.as_str())
        .unwrap_or("WKB");
    if !encoding.eq_ignore_ascii_case("wkb") {
        return Err(bad(format!(
            "geometry column \"{primary}\" has encoding \"{encoding}\"; only WKB is supported"
        )));
    }
    let crs = match column.get("crs") {
        None => Some(4326),
        Some(crs) => epsg_code(crs),
    };
    Ok(Some(GeoColumn {
        name: primary.to_string(),
        crs,
    }))
}

/// The EPSG code of a GeoParquet `crs`: PROJJSON with an `id` (or `ids`), or an
/// `"EPSG:N"` / `"OGC:CRS84"` string. `None` when it is null or names no EPSG code.
fn epsg_code(crs: &serde_json::Value) -> Option<u32> {
    fn from_id(authority: &str, code: &serde_json::Value) -> Option<u32> {
        let code = match code {
            serde_json::Value::Number(n) => n.as_u64().and_then(|c| u32::try_from(c).ok()),
            serde_json::Value::String(s) => s.parse().ok().or((s == "CRS84").then_some(4326)),
            _ => None,
        };
        match authority.to_ascii_uppercase().as_str() {
            "EPSG" => code,
            "OGC" => code.filter(|c| *c == 4326),
            _ => None,
        }
    }
    match crs {
        serde_json::Value::String(s) => {
            let (authority, code) = s.split_once(':')?;
            from_id(authority, &serde_json::Value::String(code.to_string()))
        }
        serde_json::Value::Object(o) => {
            let ids = o.get("id").into_iter().chain(
                o.get("ids")
                    .and_then(|i| i.as_array())
                    .into_iter()
                    .flatten(),
            );
            ids.filter_map(|id| from_id(id.get("authority")?.as_str()?, id.get("code")?))
                .next()
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests;
