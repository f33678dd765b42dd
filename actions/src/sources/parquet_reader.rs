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
//! - Columns become attributes in file order; see `arrow_values.rs` for the type mapping
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

use arrow_array::cast::AsArray;
use arrow_array::{Array, RecordBatch};
use arrow_schema::DataType;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::metadata::KeyValue;
use parquet::file::reader::ChunkReader;
use schemars::JsonSchema;
use serde::Deserialize;
use sluice_runtime::action::schema_of;
use sluice_runtime::feature::wkb;
use sluice_runtime::store;
use sluice_runtime::{
    ActionError, ActionKind, ActionSpec, BuildContext, BuiltAction, DEFAULT_PORT, Feature,
    Geometry, NodeContext, NodeImpl, REJECTED_PORT, REJECTION_REASON, Schema, Value,
};

use super::arrow_values::column_values;
use super::file_input::files_param;
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
.example("path: data/buildings/*.parquet\nbatch_rows: 8192\n");

fn build(ctx: &BuildContext) -> Result<BuiltAction, ActionError> {
    let p: ParquetReaderParams = ctx.params()?;
    let files = files_param(
        p.path,
        p.read_ahead,
        p.extensions,
        &["parquet", "geoparquet", "pq"],
        false,
    )?;
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
        let reader = builder
            .with_batch_size(self.batch_rows)
            .build()
            .map_err(|e| data_error(format!("reading: {e}")))?;
        let mut row: u64 = 0;
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
        let geometries = geo_index.map(|i| batch.column(i).as_ref());
        for r in 0..batch.num_rows() {
            let values: Vec<Value> = columns
                .iter_mut()
                .map(|c| c.get_mut(r).map(std::mem::take).unwrap_or_default())
                .collect();
            let geometry = match geometries.map(|g| wkb_at(g, r)) {
                None | Some(Ok(None)) => None,
                Some(Ok(Some(geom))) => Some(Geometry { geom, crs }),
                Some(Err(message)) => {
                    let mut values = values;
                    values.push(Value::String(
                        format!("{location}: row {row}: geometry: {message}").into(),
                    ));
                    *row += 1;
                    out.emit_to(1, Feature::new(0, rejected_schema.clone(), values))?;
                    continue;
                }
            };
            *row += 1;
            out.emit(Feature::new(0, schema.clone(), values).with_geometry(geometry))?;
        }
        Ok(())
    }
}

/// Decodes the WKB of row `r` (null: no geometry).
fn wkb_at(array: &dyn Array, r: usize) -> Result<Option<geo_types::Geometry<f64>>, String> {
    if array.is_null(r) {
        return Ok(None);
    }
    let bytes = match array.data_type() {
        DataType::Binary => array.as_binary_opt::<i32>().map(|a| a.value(r)),
        DataType::LargeBinary => array.as_binary_opt::<i64>().map(|a| a.value(r)),
        DataType::BinaryView => array.as_binary_view_opt().map(|a| a.value(r)),
        _ => None,
    }
    .ok_or_else(|| format!("expected binary WKB, found {}", array.data_type()))?;
    wkb::from_wkb(bytes)
        .map(Some)
        .map_err(|e| format!("bad WKB: {e}"))
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
mod tests {
    use super::*;
    use arrow_array::builder::BinaryBuilder;
    use arrow_array::{Float64Array, Int64Array, StringArray};
    use arrow_schema::{Field, Schema as ArrowSchema};
    use parquet::arrow::ArrowWriter;
    use sluice_runtime::Emitter;
    use std::io::Write;

    fn read(params: serde_json::Value) -> Result<(Vec<Feature>, Vec<Feature>), ActionError> {
        let built = (SPEC.build)(&BuildContext {
            node_id: "t",
            params: &params,
        })?;
        let NodeImpl::Source(mut src) = built.node else {
            panic!("not a source")
        };
        let mut out = Emitter::buffer(2);
        src.run(&NodeContext::standalone("t"), &mut out)?;
        let mut b = out.into_buffers();
        let rejected = b.pop().unwrap();
        Ok((b.pop().unwrap(), rejected))
    }

    /// A Parquet file with columns n (int), x (float), s (string) and a WKB column `geom`,
    /// with the given `geo` metadata.
    fn parquet(rows: usize, geo: Option<&str>, bad_wkb_at: Option<usize>) -> Vec<u8> {
        let schema = Arc::new(ArrowSchema::new(vec![
            Field::new("n", DataType::Int64, true),
            Field::new("geom", DataType::Binary, true),
            Field::new("x", DataType::Float64, true),
            Field::new("s", DataType::Utf8, true),
        ]));
        let mut geoms = BinaryBuilder::new();
        for i in 0..rows {
            if Some(i) == bad_wkb_at {
                geoms.append_value([1u8, 1, 0]);
            } else if i % 5 == 4 {
                geoms.append_null();
            } else {
                let mut b = Vec::new();
                wkb::to_wkb(&geo_types::Point::new(i as f64, -(i as f64)).into(), &mut b);
                geoms.append_value(&b);
            }
        }
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from_iter_values(0..rows as i64)),
                Arc::new(geoms.finish()),
                Arc::new(Float64Array::from_iter(
                    (0..rows).map(|i| (i % 3 != 0).then_some(i as f64 / 4.0)),
                )),
                Arc::new(StringArray::from_iter_values(
                    (0..rows).map(|i| format!("s{i}")),
                )),
            ],
        )
        .unwrap();
        let mut buf = Vec::new();
        let mut w = ArrowWriter::try_new(&mut buf, schema, None).unwrap();
        w.write(&batch).unwrap();
        if let Some(geo) = geo {
            w.append_key_value_metadata(KeyValue::new("geo".into(), geo.to_string()));
        }
        w.close().unwrap();
        buf
    }

    fn put(location: &str, bytes: &[u8]) {
        let mut w = store::AtomicWriter::create(location).unwrap();
        w.write_all(bytes).unwrap();
        w.commit().unwrap();
    }

    const GEO: &str = r#"{"version": "1.1.0", "primary_column": "geom", "columns": {"geom": {"encoding": "WKB", "geometry_types": ["Point"], "crs": {"id": {"authority": "EPSG", "code": 3857}}}}}"#;

    #[test]
    fn example_parses_and_builds() {
        let params = sluice_runtime::workflow::yaml::parse(SPEC.example)
            .unwrap()
            .to_json();
        assert_eq!(params["batch_rows"], 8192);
        assert!(
            (SPEC.build)(&BuildContext {
                node_id: "t",
                params: &params
            })
            .is_ok()
        );
    }

    #[test]
    fn reads_geoparquet_in_batches_from_memory_and_disk() {
        let bytes = parquet(20_000, Some(GEO), None);
        put("memory://parquet_reader/geo.parquet", &bytes);
        let dir = tempfile::tempdir().unwrap();
        let local = dir.path().join("geo.parquet");
        std::fs::write(&local, &bytes).unwrap();
        for path in [
            "memory://parquet_reader/geo.parquet".to_string(),
            local.to_string_lossy().into_owned(),
            format!("file://{}", local.to_string_lossy()),
        ] {
            let (ok, rejected) =
                read(serde_json::json!({"path": path, "batch_rows": 1000})).unwrap();
            assert!(rejected.is_empty());
            assert_eq!(ok.len(), 20_000);
            let names: Vec<&str> = ok[0].schema().names().iter().map(|n| &**n).collect();
            assert_eq!(
                names,
                vec!["n", "x", "s"],
                "the geometry is not an attribute"
            );
            assert!(Arc::ptr_eq(ok[0].schema(), ok[19_999].schema()));
            let f = &ok[13_001];
            assert_eq!(f.get("n"), Some(&Value::Int(13_001)));
            assert_eq!(f.get("x"), Some(&Value::Float(13_001.0 / 4.0)));
            assert_eq!(f.get("s"), Some(&Value::from("s13001")));
            assert_eq!(ok[3].get("x"), Some(&Value::Null));
            let g = f.geometry().unwrap();
            assert_eq!(g.crs, Some(3857));
            assert_eq!(g.geom, geo_types::Point::new(13_001.0, -13_001.0).into());
            assert!(ok[4].geometry().is_none());
            assert_eq!(f.id(), 13_001);
        }
    }

    #[test]
    fn plain_parquet_keeps_the_binary_column() {
        put(
            "memory://parquet_reader/plain.parquet",
            &parquet(3, None, None),
        );
        let (ok, _) =
            read(serde_json::json!({"path": "memory://parquet_reader/plain.parquet"})).unwrap();
        assert!(matches!(ok[0].get("geom"), Some(Value::Bytes(_))));
        assert!(ok[0].geometry().is_none());
    }

    #[test]
    fn bad_wkb_is_rejected_and_bad_files_are_located() {
        put(
            "memory://parquet_reader/badwkb.parquet",
            &parquet(10, Some(GEO), Some(7)),
        );
        let (ok, rejected) =
            read(serde_json::json!({"path": "memory://parquet_reader/badwkb.parquet"})).unwrap();
        assert_eq!(ok.len(), 9);
        assert_eq!(rejected.len(), 1);
        assert_eq!(rejected[0].get("n"), Some(&Value::Int(7)));
        let reason = rejected[0].get(REJECTION_REASON).unwrap().to_string();
        assert!(
            reason.starts_with("memory://parquet_reader/badwkb.parquet: row 7: geometry: bad WKB"),
            "{reason}"
        );

        put(
            "memory://parquet_reader/garbage.parquet",
            b"PAR1 not really",
        );
        match read(serde_json::json!({"path": "memory://parquet_reader/garbage.parquet"})) {
            Err(ActionError::Data { location, message }) => {
                assert_eq!(
                    location.as_deref(),
                    Some("memory://parquet_reader/garbage.parquet")
                );
                assert!(message.contains("Parquet"), "{message}");
            }
            other => panic!("unexpected {:?}", other.map(|_| ())),
        }
        for (geo, want) in [
            ("{not json", "not valid JSON"),
            (
                r#"{"primary_column": "nope", "columns": {"nope": {}}}"#,
                "\"nope\"",
            ),
            (
                r#"{"primary_column": "geom", "columns": {"geom": {"encoding": "point"}}}"#,
                "only WKB",
            ),
            (
                r#"{"primary_column": "n", "columns": {"n": {}}}"#,
                "expected binary WKB",
            ),
        ] {
            put(
                "memory://parquet_reader/badgeo.parquet",
                &parquet(2, Some(geo), None),
            );
            let err = read(serde_json::json!({"path": "memory://parquet_reader/badgeo.parquet"}))
                .unwrap_err();
            assert!(err.to_string().contains(want), "{err} (wanted {want})");
        }
    }

    #[test]
    fn crs_codes_from_geo_metadata() {
        let code = |json: serde_json::Value| epsg_code(&json);
        assert_eq!(
            code(serde_json::json!({"id": {"authority": "EPSG", "code": 2154}})),
            Some(2154)
        );
        assert_eq!(
            code(serde_json::json!({"ids": [{"authority": "OGC", "code": "CRS84"}]})),
            Some(4326)
        );
        assert_eq!(code(serde_json::json!("EPSG:32631")), Some(32631));
        assert_eq!(code(serde_json::json!({"name": "custom"})), None);
        assert_eq!(code(serde_json::Value::Null), None);
        let geo = geo_column(
            Some(&vec![KeyValue::new(
                "geo".into(),
                r#"{"primary_column": "g", "columns": {"g": {"encoding": "WKB"}}}"#.to_string(),
            )]),
            "x",
        )
        .unwrap();
        assert_eq!(
            geo,
            Some(GeoColumn {
                name: "g".into(),
                crs: Some(4326)
            }),
            "no crs means OGC:CRS84"
        );
        assert_eq!(local_path("memory://a/b"), None);
        assert_eq!(local_path("data/x.parquet"), Some("data/x.parquet"));
        assert_eq!(local_path("file:///tmp/x"), Some("/tmp/x"));
    }
}
