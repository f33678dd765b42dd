//! The run file's layout: its fixed columns and metadata keys, how attribute columns are typed
//! and stored, and features to record batches and back.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use arrow_array::builder::UInt32Builder;
use arrow_array::{Array, ArrayRef, RecordBatch, UInt32Array, UInt64Array};
use arrow_schema::{Field, Fields, Schema as ArrowSchema, SchemaRef};

use super::{arrow_error, corrupt};
use crate::error::ActionError;
use crate::feature::arrow::{
    AppendError, ColumnBuilder, ColumnKind, ColumnPolicy, ColumnReader, WkbBuilder, WkbColumn,
};
use crate::feature::{Feature, Schema};

/// Key of the run layout in the Parquet key-value metadata.
pub(super) const META_KEY: &str = "sluice.spill";
/// Arrow field metadata: `"true"` on attribute columns of encoded values.
pub(super) const ENCODED_KEY: &str = "sluice.encoded";
/// Arrow field metadata: `"true"` on attribute columns that held only nulls.
pub(super) const EMPTY_KEY: &str = "sluice.empty";
/// Arrow field metadata: the attribute name of a column.
pub(super) const NAME_KEY: &str = "sluice.name";
/// The columns before the attributes.
pub(super) const FIXED: [&str; 4] = ["__id", "__schema", "__geometry", "__crs"];

/// How spill files type their columns.
pub(crate) const POLICY: ColumnPolicy = ColumnPolicy::LOSSLESS;

/// The kind a column of `kind` is stored as: a column of nulls only is an all-null Boolean
/// column (marked [`EMPTY_KEY`]).
fn stored(kind: ColumnKind) -> ColumnKind {
    match kind {
        ColumnKind::Null => ColumnKind::Bool,
        k => k,
    }
}

/// The kinds of the attribute columns of a file's `fields` (the fixed columns left out).
pub(super) fn kinds_of(fields: &Fields, path: &Path) -> Result<Vec<ColumnKind>, ActionError> {
    use arrow_schema::{DataType, TimeUnit};
    fields[FIXED.len()..]
        .iter()
        .map(|f| match f.data_type() {
            _ if f.metadata().get(ENCODED_KEY).is_some_and(|v| v == "true") => {
                Ok(ColumnKind::Encoded)
            }
            DataType::Boolean if f.metadata().get(EMPTY_KEY).is_some_and(|v| v == "true") => {
                Ok(ColumnKind::Null)
            }
            DataType::Boolean => Ok(ColumnKind::Bool),
            DataType::Int64 => Ok(ColumnKind::Int),
            DataType::Float64 => Ok(ColumnKind::Float),
            DataType::Utf8 => Ok(ColumnKind::String),
            DataType::Date32 => Ok(ColumnKind::Date),
            DataType::Timestamp(TimeUnit::Microsecond, None) => Ok(ColumnKind::LocalDateTime),
            DataType::Timestamp(TimeUnit::Microsecond, Some(_)) => Ok(ColumnKind::DateTime),
            DataType::Binary => Ok(ColumnKind::Bytes),
            other => Err(corrupt(
                path,
                None,
                format!("unexpected column type {other}"),
            )),
        })
        .collect()
}

/// The JSON stored under [`META_KEY`].
#[derive(serde::Serialize, serde::Deserialize)]
pub(super) struct Meta {
    pub(super) version: u32,
    pub(super) columns: Vec<String>,
    pub(super) schemas: Vec<Vec<usize>>,
}

pub(super) fn arrow_schema(columns: &[Arc<str>], kinds: &[ColumnKind]) -> SchemaRef {
    let mut fields = vec![
        Field::new(FIXED[0], arrow_schema::DataType::UInt64, false),
        Field::new(FIXED[1], arrow_schema::DataType::UInt32, false),
        Field::new(FIXED[2], arrow_schema::DataType::Binary, true),
        Field::new(FIXED[3], arrow_schema::DataType::UInt32, true),
    ];
    for (name, kind) in columns.iter().zip(kinds) {
        // Names starting with "__" get one more "_", so no attribute clashes with the
        // fixed columns (only for people looking at the file; reading goes by position).
        let field_name = if name.starts_with("__") {
            format!("_{name}")
        } else {
            name.to_string()
        };
        let mut meta = HashMap::from([(NAME_KEY.to_string(), name.to_string())]);
        match kind {
            ColumnKind::Encoded => {
                meta.insert(ENCODED_KEY.to_string(), "true".to_string());
            }
            ColumnKind::Null => {
                meta.insert(EMPTY_KEY.to_string(), "true".to_string());
            }
            _ => {}
        }
        fields.push(Field::new(field_name, stored(*kind).data_type(), true).with_metadata(meta));
    }
    Arc::new(ArrowSchema::new(fields))
}

/// The attribute columns of `features` (names in first-seen order) and their kinds.
pub(crate) fn scan(features: &[Feature]) -> (Vec<Arc<str>>, Vec<ColumnKind>) {
    let mut columns: Vec<Arc<str>> = Vec::new();
    let mut column_of: HashMap<Arc<str>, usize> = HashMap::new();
    let mut kinds = Vec::new();
    let mut last: Option<(&Arc<Schema>, Vec<usize>)> = None;
    for (i, f) in features.iter().enumerate() {
        crate::feature::prefetch_ahead(features, i);
        if !last
            .as_ref()
            .is_some_and(|(s, _)| Arc::ptr_eq(s, f.schema()))
        {
            let cols = f
                .schema()
                .names()
                .iter()
                .map(|n| {
                    *column_of.entry(n.clone()).or_insert_with(|| {
                        columns.push(n.clone());
                        kinds.push(ColumnKind::Null);
                        columns.len() - 1
                    })
                })
                .collect();
            last = Some((f.schema(), cols));
        }
        if let Some((_, cols)) = &last {
            for (v, &c) in f.values().iter().zip(cols) {
                kinds[c] = POLICY.join(kinds[c], POLICY.kind_of(v));
            }
        }
    }
    (columns, kinds)
}

/// Why a record batch was not built.
pub(super) enum BuildFail {
    /// A value does not fit its column's kind (the builders are then partly filled, and
    /// must not be used again).
    Mismatch(ActionError),
    /// Anything else.
    Other(ActionError),
}

impl From<BuildFail> for ActionError {
    fn from(f: BuildFail) -> ActionError {
        match f {
            BuildFail::Mismatch(e) | BuildFail::Other(e) => e,
        }
    }
}

/// Builds the record batch of one chunk; `rows` are the chunk's schema indices.
///
/// Row by row: each value goes to its column's builder, after nulls for the rows since that
/// column was last filled, so the cost is the number of values (plus one pass over the
/// columns), however many distinct schemas the run has.
pub(super) fn build_batch(
    chunk: &[Feature],
    rows: &[u32],
    schemas: &[Vec<usize>],
    out: &mut Builders,
    path: &Path,
) -> Result<RecordBatch, BuildFail> {
    let n = chunk.len();
    let Builders {
        schema,
        geometry,
        crs,
        columns,
        filled,
    } = out;
    for (r, (f, &s)) in chunk.iter().zip(rows).enumerate() {
        crate::feature::prefetch_ahead(chunk, r);
        let g = f.geometry();
        geometry.append(g);
        crs.append_option(g.and_then(|g| g.crs));
        for (v, &c) in f.values().iter().zip(&schemas[s as usize]) {
            columns[c].append_nulls(r - filled[c]);
            columns[c].append(v).map_err(|e| match e {
                AppendError::Encode(e) => BuildFail::Other(corrupt(
                    path,
                    None,
                    format!("feature {}: {e} cannot be spilled", f.id()),
                )),
                // Never in spill, given the scan (or the runs a merge reads); in capture,
                // the file ends and the next one gets columns that fit.
                AppendError::Mismatch => BuildFail::Mismatch(corrupt(
                    path,
                    None,
                    format!(
                        "feature {}: a {} value in a column of another type",
                        f.id(),
                        v.type_name()
                    ),
                )),
            })?;
            filled[c] = r + 1;
        }
    }
    let mut arrays: Vec<ArrayRef> = Vec::with_capacity(4 + columns.len());
    arrays.push(Arc::new(UInt64Array::from_iter_values(
        chunk.iter().map(Feature::id),
    )));
    arrays.push(Arc::new(UInt32Array::from(rows.to_vec())));
    arrays.push(geometry.finish());
    arrays.push(Arc::new(crs.finish()));
    for (b, filled) in columns.iter_mut().zip(filled.iter_mut()) {
        b.append_nulls(n - *filled);
        *filled = 0;
        arrays.push(b.finish());
    }
    RecordBatch::try_new(schema.clone(), arrays)
        .map_err(|e| BuildFail::Other(arrow_error("writing", path, e)))
}

/// The builders of a run's columns, reused from one row group to the next.
pub(super) struct Builders {
    schema: SchemaRef,
    geometry: WkbBuilder,
    crs: UInt32Builder,
    columns: Vec<ColumnBuilder>,
    /// Rows of the current chunk each column holds so far.
    filled: Vec<usize>,
}

impl Builders {
    pub(super) fn new(schema: SchemaRef, kinds: &[ColumnKind]) -> Builders {
        Builders {
            schema,
            geometry: WkbBuilder::default(),
            crs: UInt32Builder::new(),
            columns: kinds
                .iter()
                .map(|k| ColumnBuilder::new(stored(*k)))
                .collect(),
            filled: vec![0; kinds.len()],
        }
    }

    /// The Arrow schema of the batches.
    pub(super) fn schema(&self) -> &SchemaRef {
        &self.schema
    }
}

/// One record batch, downcast.
pub(super) struct Decoded {
    pub(super) len: usize,
    ids: UInt64Array,
    schema: UInt32Array,
    geometry: WkbColumn,
    crs: UInt32Array,
    columns: Vec<ColumnReader>,
}

impl Decoded {
    /// Downcasts a batch of a file whose attribute columns are of `kinds`; `path` and `row`
    /// (rows read before this batch) locate errors.
    pub(super) fn new(
        rb: &RecordBatch,
        kinds: &[ColumnKind],
        path: &Path,
        row: u64,
    ) -> Result<Decoded, ActionError> {
        let bad = || corrupt(path, Some(row), "column has an unexpected type");
        let cols = rb.columns();
        let columns = cols[FIXED.len()..]
            .iter()
            .zip(kinds)
            .map(|(a, k)| ColumnReader::new(stored(*k), a.as_ref()).ok_or_else(bad))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Decoded {
            len: rb.num_rows(),
            ids: downcast(&cols[0]).ok_or_else(bad)?,
            schema: downcast(&cols[1]).ok_or_else(bad)?,
            geometry: WkbColumn::new(&cols[2]).ok_or_else(bad)?,
            crs: downcast(&cols[3]).ok_or_else(bad)?,
            columns,
        })
    }

    /// The feature of row `r`, given the file's distinct schemas (each with the column of
    /// each attribute); `row` is its row in the file.
    pub(super) fn feature(
        &self,
        r: usize,
        schemas: &[(Arc<Schema>, Vec<usize>)],
        path: &Path,
        row: u64,
    ) -> Result<Feature, ActionError> {
        let b = self;
        let bad = |m: String| corrupt(path, Some(row), m);
        let s = b.schema.value(r) as usize;
        let (schema, cols) = schemas
            .get(s)
            .ok_or_else(|| bad(format!("schema index {s} is out of range")))?;
        // A plain loop: collecting `Result`s gives no size hint, and the regrowth showed up
        // in the `spill` bench.
        let mut values = Vec::with_capacity(cols.len());
        for &c in cols {
            values.push(b.columns[c].value(r).map_err(bad)?);
        }
        let geometry = b
            .geometry
            .geometry(r)
            .map_err(|e| bad(e.to_string()))?
            .map(|mut g| {
                g.crs = (!b.crs.is_null(r)).then(|| b.crs.value(r));
                g
            });
        Ok(Feature::new(b.ids.value(r), schema.clone(), values).with_geometry(geometry))
    }
}

fn downcast<T: Clone + 'static>(a: &ArrayRef) -> Option<T> {
    a.as_any().downcast_ref::<T>().cloned()
}
