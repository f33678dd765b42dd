//! Features and Apache Arrow: one place that says how sluice values become Arrow columns and
//! come back.
//!
//! - [`ColumnKind`]: the Arrow type of a column of values, and [`ColumnPolicy`], the rules
//!   that choose it from the values (what arrays, maps, mixed types and all-null columns
//!   become). [`ColumnPolicy::PORTABLE`] writes files other tools read (`parquet_writer`);
//!   [`ColumnPolicy::LOSSLESS`] writes files only sluice reads back, value for value (spill).
//! - [`ColumnBuilder`] (values into an `ArrayRef`), [`ColumnReader`] (a row of an `ArrayRef`
//!   back into a value, for the columns a kind describes) and [`column_values`] (any Arrow
//!   column into values, for files written by others).
//! - [`WkbBuilder`] and [`WkbColumn`]: the geometry column, ISO WKB in a Binary column.
//! - [`encoded`]: the lossless binary encoding of [`ColumnKind::Encoded`] columns.
//! - [`FeatureColumns`]: the columns of a slice of features (attributes, then an optional
//!   geometry column), a `RecordBatch` from features, and [`features_from_batch`] for the way
//!   back.
//!
//! ```text
//!   &[Feature] ──FeatureColumns::decide──► columns + kinds ──record_batch──► RecordBatch
//!   RecordBatch ──features_from_batch (column_values + WkbColumn)──────────► Vec<Feature>
//! ```

mod build;
pub mod encoded;
mod kind;
mod read;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::Arc;

use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{ArrowError, DataType, Field, Schema as ArrowSchema, SchemaRef};

pub use build::{AppendError, ColumnBuilder, WkbBuilder};
pub use encoded::EncodeError;
pub use kind::{ColumnKind, ColumnPolicy, MixedAs, NestedAs};
pub use read::{ColumnReader, WkbColumn, column_values, value_type};

use crate::feature::{Feature, Schema, Value};

/// The columns of a record batch of features: one per attribute name (in order of first
/// appearance), typed by a [`ColumnPolicy`], then a WKB geometry column when any feature has
/// a geometry.
#[derive(Debug, Clone)]
pub struct FeatureColumns {
    names: Arc<Schema>,
    kinds: Vec<ColumnKind>,
    geometry: Option<Arc<str>>,
    arrow: SchemaRef,
}

/// Why a record batch could not be built from features.
#[derive(Debug)]
pub enum BatchError {
    /// A feature has an attribute that is not a column.
    NotAColumn {
        /// The feature's id.
        feature: u64,
        /// The attribute.
        attribute: Arc<str>,
    },
    /// A value does not fit its column's kind.
    Mismatch {
        /// The feature's id.
        feature: u64,
        /// The column.
        column: Arc<str>,
        /// The column's kind.
        expected: ColumnKind,
        /// The value's type name ([`Value::type_name`]).
        found: &'static str,
    },
    /// A value could not be encoded.
    Encode {
        /// The feature's id.
        feature: u64,
        /// The column.
        column: Arc<str>,
        /// Why.
        error: EncodeError,
    },
    /// A feature has a geometry, but the columns have no geometry column.
    UnexpectedGeometry {
        /// The feature's id.
        feature: u64,
    },
    /// Arrow refused the batch.
    Arrow(ArrowError),
}

impl std::fmt::Display for BatchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BatchError::NotAColumn { feature, attribute } => {
                write!(
                    f,
                    "feature {feature}: attribute \"{attribute}\" is not a column"
                )
            }
            BatchError::Mismatch {
                feature,
                column,
                expected,
                found,
            } => write!(
                f,
                "feature {feature}: attribute \"{column}\": expected {}, found {found}",
                expected.name()
            ),
            BatchError::Encode {
                feature,
                column,
                error,
            } => write!(f, "feature {feature}: attribute \"{column}\": {error}"),
            BatchError::UnexpectedGeometry { feature } => {
                write!(
                    f,
                    "feature {feature} has a geometry, but there is no geometry column"
                )
            }
            BatchError::Arrow(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for BatchError {}

impl FeatureColumns {
    /// Decides the columns from `features`: attribute names in order of first appearance,
    /// each typed by `policy` from its non-null values; a Binary geometry column named
    /// `geometry_column` when any feature has a geometry (an attribute of that name is then
    /// left out).
    pub fn decide(
        features: &[Feature],
        policy: &ColumnPolicy,
        geometry_column: &str,
    ) -> FeatureColumns {
        let geometry = features.iter().any(|f| f.geometry().is_some());
        let mut names: Vec<Arc<str>> = Vec::new();
        let mut index: HashMap<Arc<str>, usize> = HashMap::new();
        let mut kinds: Vec<ColumnKind> = Vec::new();
        let mut last: Option<&Arc<Schema>> = None;
        let mut slots: Vec<Option<usize>> = Vec::new();
        for f in features {
            if !last.is_some_and(|l| Arc::ptr_eq(l, f.schema())) {
                slots.clear();
                for name in f.schema().names() {
                    if geometry && &**name == geometry_column {
                        slots.push(None);
                        continue;
                    }
                    let i = *index.entry(name.clone()).or_insert_with(|| {
                        names.push(name.clone());
                        kinds.push(ColumnKind::Null);
                        names.len() - 1
                    });
                    slots.push(Some(i));
                }
                last = Some(f.schema());
            }
            for (slot, v) in slots.iter().zip(f.values()) {
                if let Some(i) = slot {
                    kinds[*i] = policy.join(kinds[*i], policy.kind_of(v));
                }
            }
        }
        let kinds = kinds.into_iter().map(|k| policy.resolve(k)).collect();
        FeatureColumns::new(
            Schema::new(names),
            kinds,
            geometry.then_some(geometry_column),
        )
    }

    /// Columns given outright: `kinds` has one kind per name of `names`.
    pub fn new(
        names: Arc<Schema>,
        kinds: Vec<ColumnKind>,
        geometry_column: Option<&str>,
    ) -> FeatureColumns {
        let mut fields: Vec<Field> = names
            .names()
            .iter()
            .zip(&kinds)
            .map(|(n, k)| Field::new(n.to_string(), k.data_type(), true))
            .collect();
        if let Some(g) = geometry_column {
            fields.push(Field::new(g, DataType::Binary, true));
        }
        FeatureColumns {
            names,
            kinds,
            geometry: geometry_column.map(Arc::from),
            arrow: Arc::new(ArrowSchema::new(fields)),
        }
    }

    /// The attribute columns' names.
    pub fn names(&self) -> &Arc<Schema> {
        &self.names
    }

    /// The attribute columns' kinds.
    pub fn kinds(&self) -> &[ColumnKind] {
        &self.kinds
    }

    /// The geometry column's name, when there is one.
    pub fn geometry(&self) -> Option<&str> {
        self.geometry.as_deref()
    }

    /// The Arrow schema of the batches.
    pub fn arrow_schema(&self) -> &SchemaRef {
        &self.arrow
    }

    /// Where each column sits in `f`'s schema; an attribute that is not a column (other than
    /// one named like the geometry column) is an error.
    pub fn slots(&self, f: &Feature) -> Result<Vec<Option<usize>>, BatchError> {
        let schema = f.schema();
        let geometry = self.geometry.as_deref();
        if let Some(extra) = schema
            .names()
            .iter()
            .find(|n| self.names.index_of(n).is_none() && Some(&***n) != geometry)
        {
            return Err(BatchError::NotAColumn {
                feature: f.id(),
                attribute: extra.clone(),
            });
        }
        Ok(self
            .names
            .names()
            .iter()
            .map(|n| schema.index_of(n))
            .collect())
    }

    /// The record batch of `features`: missing attributes are null. The first error found
    /// (an attribute that is not a column, in feature order; then a value that does not fit,
    /// column by column) stops it.
    pub fn record_batch(&self, features: &[Feature]) -> Result<RecordBatch, BatchError> {
        // Each feature's slots, computed once per distinct schema.
        let mut maps: Vec<(Arc<Schema>, Vec<Option<usize>>)> = Vec::new();
        let mut map_of: Vec<usize> = Vec::with_capacity(features.len());
        for f in features {
            let m = match maps.iter().rposition(|(s, _)| Arc::ptr_eq(s, f.schema())) {
                Some(m) => m,
                None => {
                    maps.push((f.schema().clone(), self.slots(f)?));
                    maps.len() - 1
                }
            };
            map_of.push(m);
        }
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(self.kinds.len() + 1);
        for (col, kind) in self.kinds.iter().enumerate() {
            let mut b = ColumnBuilder::with_capacity(*kind, features.len());
            for (f, m) in features.iter().zip(&map_of) {
                let v = maps[*m].1[col].map_or(&Value::Null, |i| &f.values()[i]);
                b.append(v).map_err(|e| {
                    let column = self.names.names()[col].clone();
                    match e {
                        AppendError::Mismatch => BatchError::Mismatch {
                            feature: f.id(),
                            column,
                            expected: *kind,
                            found: v.type_name(),
                        },
                        AppendError::Encode(error) => BatchError::Encode {
                            feature: f.id(),
                            column,
                            error,
                        },
                    }
                })?;
            }
            arrays.push(b.finish());
        }
        if self.geometry.is_some() {
            let mut b = WkbBuilder::with_capacity(features.len());
            for f in features {
                b.append(f.geometry());
            }
            arrays.push(b.finish());
        } else if let Some(f) = features.iter().find(|f| f.geometry().is_some()) {
            return Err(BatchError::UnexpectedGeometry { feature: f.id() });
        }
        RecordBatch::try_new(self.arrow.clone(), arrays).map_err(BatchError::Arrow)
    }
}

/// Features from a record batch: every column but `geometry` becomes an attribute (read with
/// [`column_values`]), all features sharing one schema; the `geometry` column (WKB) becomes
/// each feature's geometry, in EPSG `crs`. Ids are 0 (the caller numbers them). An error
/// names the column, or the row of a geometry that is not valid WKB.
pub fn features_from_batch(
    batch: &RecordBatch,
    geometry: Option<&str>,
    crs: Option<u32>,
) -> Result<Vec<Feature>, String> {
    let arrow = batch.schema();
    let mut names = Vec::new();
    let mut columns = Vec::new();
    let mut wkb = None;
    for (field, array) in arrow.fields().iter().zip(batch.columns()) {
        if Some(field.name().as_str()) == geometry {
            wkb = Some(WkbColumn::new(array).ok_or_else(|| {
                format!(
                    "geometry column \"{}\" is {}, expected binary WKB",
                    field.name(),
                    field.data_type()
                )
            })?);
            continue;
        }
        names.push(field.name().as_str());
        columns.push(
            column_values(array.as_ref())
                .map_err(|m| format!("column \"{}\": {m}", field.name()))?,
        );
    }
    let schema = Schema::new(names);
    (0..batch.num_rows())
        .map(|r| {
            let values = columns
                .iter_mut()
                .map(|c| std::mem::take(&mut c[r]))
                .collect();
            let geometry = match &wkb {
                None => None,
                Some(w) => w
                    .geometry(r)
                    .map_err(|e| format!("row {r}: geometry: bad WKB: {e}"))?
                    .map(|mut g| {
                        g.crs = crs;
                        g
                    }),
            };
            Ok(Feature::new(0, schema.clone(), values).with_geometry(geometry))
        })
        .collect()
}
