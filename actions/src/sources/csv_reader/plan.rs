//! The column plan of one CSV file (names, types, the geometry, the schemas), made from its
//! header and a sample of rows, and the conversion of each row by that plan; with the notes
//! the reader logs about inference and about cells kept as text.

use std::sync::Arc;

use sluice_runtime::input::FileOut;
use sluice_runtime::{ActionError, Feature, Geometry, REJECTION_REASON, Schema, Value};

use super::cells::{
    decode, infer_column, infer_lenient, parse_declared, parse_exact, parse_f64, text_value, trim,
};
use super::records::Record;
use super::{ColumnType, CsvReader, EXTRA_CELLS, Encoding, GeomSource};

/// Cells of inferred columns, after the sample, that were not in their type's exact form and
/// so were kept as text: a count and the first one per column.
pub(super) struct KeptAsText {
    counts: Vec<u64>,
    first: Vec<Option<(u64, String)>>,
}

impl KeptAsText {
    pub(super) fn new(columns: usize) -> KeptAsText {
        KeptAsText {
            counts: vec![0; columns],
            first: vec![None; columns],
        }
    }

    pub(super) fn note(&mut self, column: usize, line: u64, cell: &[u8]) {
        self.counts[column] += 1;
        if self.first[column].is_none() {
            self.first[column] = Some((line, excerpt(cell)));
        }
    }

    /// Cells kept as text, per column.
    #[cfg(test)]
    pub(super) fn counts(&self) -> &[u64] {
        &self.counts
    }

    /// The first cell kept as text per column, with its line.
    #[cfg(test)]
    pub(super) fn firsts(&self) -> &[Option<(u64, String)>] {
        &self.first
    }

    /// Adds what `other` noted about later rows than this one's.
    pub(super) fn merge(&mut self, other: KeptAsText) {
        for (i, (n, first)) in other.counts.into_iter().zip(other.first).enumerate() {
            self.counts[i] += n;
            if self.first[i].is_none() {
                self.first[i] = first;
            }
        }
    }

    pub(super) fn messages(&self, plan: &Plan) -> Vec<String> {
        let mut out = Vec::new();
        for (i, n) in self.counts.iter().enumerate() {
            if let (true, Some((line, cell))) = (*n > 0, &self.first[i]) {
                out.push(format!(
                    "column \"{}\": {n} cell(s) after the first rows are not {} as the writers print it and were kept as text (first at line {line}: \"{cell}\"); declare the column in `columns` to convert them",
                    plan.header[i],
                    plan.columns[i].ty.name()
                ));
            }
        }
        out
    }
}

/// One converted row.
pub(super) enum Row {
    /// The row's feature.
    Read(Feature),
    /// The row as cells, with the reason it does not fit.
    Rejected(Feature),
}

impl Row {
    /// Emits it to `default` or `rejected`.
    pub(super) fn emit(self, out: &mut FileOut<'_>) -> Result<(), ActionError> {
        match self {
            Row::Read(f) => out.emit(f),
            Row::Rejected(f) => out.emit_rejected(f),
        }
    }
}

/// Log lines for columns read as text that would parse as another type in a looser
/// spelling (`12.50`, `007`, `TRUE`), with how to get the typed values.
pub(super) fn inference_notes(plan: &Plan, sample: &[Record]) -> Vec<String> {
    let mut notes = Vec::new();
    for (i, col) in plan.columns.iter().enumerate() {
        if !col.inferred || col.ty != ColumnType::String {
            continue;
        }
        let loose = infer_lenient(sample, i);
        if loose == ColumnType::String {
            continue;
        }
        let example = sample
            .iter()
            .filter_map(|r| r.get(i).map(|c| (c, r.quoted(i))))
            .find(|(c, q)| parse_exact(c, *q, loose).is_none())
            .map(|(c, _)| excerpt(c))
            .unwrap_or_default();
        notes.push(format!(
            "column \"{}\" is read as text so that it is written back as read (\"{example}\" is not {} as the writers print it); declare `columns: {{{}: {}}}` to read {} values",
            plan.header[i],
            loose.name(),
            plan.header[i],
            loose.name(),
            loose.name()
        ));
    }
    notes
}

pub(super) fn encoding_name(e: Encoding) -> &'static str {
    match e {
        Encoding::Utf8 | Encoding::Utf8Lossy => "UTF-8",
        Encoding::Latin1 => "Latin-1",
        Encoding::ShiftJis => "Shift_JIS",
    }
}

impl CsvReader {
    pub(super) fn plan(
        &self,
        location: &str,
        header: Vec<String>,
        sample: &[Record],
    ) -> Result<Plan, ActionError> {
        let index = |name: &str, param: String| -> Result<usize, ActionError> {
            header.iter().position(|h| h == name).ok_or_else(|| {
                ActionError::param(
                    param,
                    format!(
                        "no column \"{name}\" in {location} (its columns: {})",
                        header.join(", ")
                    ),
                )
            })
        };
        for name in self.declared.keys() {
            index(name, format!("columns.{name}"))?;
        }
        let geom = match &self.geometry {
            None => None,
            Some(g) => Some(match &g.source {
                GeomSource::Xy(x, y) => GeomPlan::Xy(
                    index(x, "geometry.x".into())?,
                    index(y, "geometry.y".into())?,
                ),
                GeomSource::Wkt(w) => GeomPlan::Wkt(index(w, "geometry.wkt".into())?),
            }),
        };
        let dropped = |i: usize| -> bool {
            match (&geom, &self.geometry) {
                (Some(GeomPlan::Xy(x, y)), Some(g)) => !g.keep && (i == *x || i == *y),
                (Some(GeomPlan::Wkt(w)), Some(g)) => !g.keep && i == *w,
                _ => false,
            }
        };
        let mut columns = Vec::with_capacity(header.len());
        let mut slot = 0;
        for (i, name) in header.iter().enumerate() {
            let (ty, inferred) = match self.declared.get(name) {
                Some(t) => (*t, false),
                None if self.infer => (infer_column(sample, i), true),
                None => (ColumnType::String, false),
            };
            let target = (!dropped(i)).then(|| {
                slot += 1;
                slot - 1
            });
            columns.push(ColumnPlan {
                ty,
                inferred,
                target,
            });
        }
        let (schema, rejected_schema) = self.schemas.get_or_insert_with(header.clone(), || {
            let kept = header
                .iter()
                .enumerate()
                .filter(|(i, _)| !dropped(*i))
                .map(|(_, n)| n.as_str());
            let rejected = header.iter().map(String::as_str).chain([REJECTION_REASON]);
            (Schema::new(kept), Schema::new(rejected))
        });
        Ok(Plan {
            header,
            columns,
            slots: slot,
            geom,
            schema,
            rejected_schema,
        })
    }

    /// Converts one row and emits it, to `default` or, when it does not fit, to `rejected`.
    pub(super) fn emit_row(
        &self,
        plan: &Plan,
        location: &str,
        rec: &Record,
        values: &mut Vec<Value>,
        kept: &mut KeptAsText,
        out: &mut FileOut<'_>,
    ) -> Result<(), ActionError> {
        self.row(plan, location, rec, values, kept).emit(out)
    }

    /// Converts one row: the feature, or the rejected feature that says why it does not fit.
    pub(super) fn row(
        &self,
        plan: &Plan,
        location: &str,
        rec: &Record,
        values: &mut Vec<Value>,
        kept: &mut KeptAsText,
    ) -> Row {
        // Ids are assigned by `FileOut`, in file order.
        let id = 0;
        match self.convert(plan, rec, values, kept) {
            Ok(geometry) => {
                let mut f = Feature::new(id, plan.schema.clone(), std::mem::take(values));
                if geometry.is_some() {
                    f.set_geometry(geometry);
                }
                Row::Read(f)
            }
            Err(reason) => {
                let line = rec.line();
                // The raw cells travel with the reason: as text when they decode, else as
                // the bytes that were read.
                let mut raw: Vec<Value> = rec
                    .iter()
                    .take(plan.header.len())
                    .map(|b| {
                        text_value(b, self.encoding).unwrap_or_else(|_| Value::Bytes(b.into()))
                    })
                    .collect();
                raw.resize(plan.header.len(), Value::Null);
                raw.push(Value::String(format!("{location}:{line}: {reason}").into()));
                // Cells beyond the header's count travel too, as a list.
                let schema = if rec.len() > plan.header.len() {
                    let extra: Vec<Value> = rec
                        .iter()
                        .skip(plan.header.len())
                        .map(|b| {
                            text_value(b, self.encoding).unwrap_or_else(|_| Value::Bytes(b.into()))
                        })
                        .collect();
                    raw.push(Value::Array(extra.into()));
                    plan.rejected_schema.with(EXTRA_CELLS)
                } else {
                    plan.rejected_schema.clone()
                };
                Row::Rejected(Feature::new(id, schema, raw))
            }
        }
    }

    /// Fills `values` from a row, or says why the row does not fit.
    pub(super) fn convert(
        &self,
        plan: &Plan,
        rec: &Record,
        values: &mut Vec<Value>,
        kept: &mut KeptAsText,
    ) -> Result<Option<Geometry>, String> {
        if rec.len() != plan.columns.len() {
            return Err(format!(
                "expected {} fields, found {}",
                plan.columns.len(),
                rec.len()
            ));
        }
        values.clear();
        values.reserve_exact(plan.slots);
        for (i, (col, name)) in plan.columns.iter().zip(&plan.header).enumerate() {
            if col.target.is_none() {
                continue;
            }
            let field = rec.get(i).unwrap_or_default();
            let quoted = rec.quoted(i);
            let bad_bytes = |k: usize| {
                format!(
                    "column \"{name}\": invalid {} at byte {} (set `encoding`)",
                    encoding_name(self.encoding),
                    rec.start(i) + k as u64 + u64::from(quoted)
                )
            };
            let v = if col.ty == ColumnType::String {
                if field.is_empty() && !quoted {
                    Value::Null
                } else {
                    text_value(field, self.encoding).map_err(bad_bytes)?
                }
            } else if col.inferred {
                let exact = parse_exact(field, quoted, col.ty).or_else(|| {
                    // An inferred int column also takes floats.
                    (col.ty == ColumnType::Int)
                        .then(|| parse_exact(field, quoted, ColumnType::Float))
                        .flatten()
                });
                match exact {
                    Some(v) => v,
                    None => {
                        // Not in the type's exact form: kept as the text it is.
                        kept.note(i, rec.line(), field);
                        text_value(field, self.encoding).map_err(bad_bytes)?
                    }
                }
            } else {
                match parse_declared(field, quoted, col.ty) {
                    Some(v) => v,
                    None => {
                        decode(field, self.encoding).map_err(bad_bytes)?;
                        return Err(format!(
                            "column \"{name}\": expected {}, found \"{}\"",
                            col.ty.name(),
                            excerpt(field)
                        ));
                    }
                }
            };
            values.push(v);
        }
        let cell = |i: usize| rec.get(i).unwrap_or_default();
        let geom = match plan.geom {
            None => None,
            Some(GeomPlan::Xy(xi, yi)) => {
                let (xb, yb) = (cell(xi), cell(yi));
                if trim(xb).is_empty() && trim(yb).is_empty() {
                    None
                } else {
                    let coord = |b: &[u8], i: usize| {
                        parse_f64(b).ok_or_else(|| {
                            format!(
                                "column \"{}\": expected a coordinate, found \"{}\"",
                                plan.header[i],
                                excerpt(b)
                            )
                        })
                    };
                    let p = geo_types::Point::new(coord(xb, xi)?, coord(yb, yi)?);
                    Some(Geometry::new(p.into()))
                }
            }
            Some(GeomPlan::Wkt(wi)) => {
                let text = decode(cell(wi), self.encoding).map_err(|k| {
                    format!(
                        "column \"{}\": invalid {} at byte {}",
                        plan.header[wi],
                        encoding_name(self.encoding),
                        rec.start(wi) + k as u64
                    )
                })?;
                let text = text.trim();
                if text.is_empty() {
                    None
                } else {
                    let g = crate::wkt_geometry::read(text)
                        .map_err(|e| format!("column \"{}\": bad WKT: {e}", plan.header[wi]))?;
                    Some(g)
                }
            }
        };
        Ok(geom.map(|mut g| {
            g.crs = self.crs;
            g
        }))
    }
}

impl Plan {
    /// The attributes of the features, in order, with their column types (a geometry
    /// column dropped by `keep_columns: false` is not one).
    pub(super) fn attributes(&self) -> impl Iterator<Item = (&str, ColumnType)> {
        let mut kept: Vec<(usize, &str, ColumnType)> = self
            .columns
            .iter()
            .zip(&self.header)
            .filter_map(|(c, n)| Some((c.target?, n.as_str(), c.ty)))
            .collect();
        kept.sort_by_key(|(slot, _, _)| *slot);
        kept.into_iter().map(|(_, n, t)| (n, t))
    }

    /// Whether the features get a geometry from columns.
    pub(super) fn has_geometry(&self) -> bool {
        self.geom.is_some()
    }
}

/// How one file's rows become features.
pub(super) struct Plan {
    header: Vec<String>,
    pub(super) columns: Vec<ColumnPlan>,
    slots: usize,
    geom: Option<GeomPlan>,
    schema: Arc<Schema>,
    rejected_schema: Arc<Schema>,
}

pub(super) struct ColumnPlan {
    ty: ColumnType,
    inferred: bool,
    /// The position among the feature's values; `None` for a dropped geometry column.
    target: Option<usize>,
}

#[derive(Clone, Copy)]
pub(super) enum GeomPlan {
    Xy(usize, usize),
    Wkt(usize),
}

/// Column names from a header row: a BOM is dropped, an empty name becomes `column_N`, and a
/// repeated name gets a `_2`, `_3`... suffix. `Err(byte)` when a name does not decode.
pub(super) fn header_names(rec: &Record, encoding: Encoding) -> Result<Vec<String>, u64> {
    let mut names: Vec<String> = Vec::with_capacity(rec.len());
    // Linear in the column count, also for very wide files.
    let mut taken: std::collections::HashSet<String> =
        std::collections::HashSet::with_capacity(rec.len());
    let mut next_suffix: std::collections::HashMap<String, usize> =
        std::collections::HashMap::new();
    for (i, field) in rec.iter().enumerate() {
        let mut name = decode(field, encoding)
            .map_err(|k| rec.start(i) + k as u64)?
            .trim()
            .to_string();
        if i == 0
            && let Some(rest) = name.strip_prefix('\u{feff}')
        {
            name = rest.to_string();
        }
        if name.is_empty() {
            name = format!("column_{}", i + 1);
        }
        if taken.contains(&name) {
            // The next suffix to try for this name, so that many repeats stay linear.
            let k = next_suffix.entry(name.clone()).or_insert(2);
            while taken.contains(&format!("{name}_{k}")) {
                *k += 1;
            }
            name = format!("{name}_{k}");
            *k += 1;
        }
        taken.insert(name.clone());
        names.push(name);
    }
    Ok(names)
}

/// The first 40 characters of a cell, for messages.
pub(super) fn excerpt(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(b);
    match s.char_indices().nth(40) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s.into_owned(),
    }
}
