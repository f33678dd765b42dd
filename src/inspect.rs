//! `sluice inspect`: a job folder's edges, and the features of one edge as a table, JSON
//! lines or CSV (geometry as WKT, shortened in a table).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

use sluice_runtime::Feature;
use sluice_runtime::capture::Job;
use wkt::ToWkt;

/// How features are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// Aligned columns, long values shortened.
    #[default]
    Table,
    /// One JSON object per line.
    Jsonl,
    /// CSV with a header.
    Csv,
}

impl std::str::FromStr for Format {
    type Err = String;

    fn from_str(s: &str) -> Result<Format, String> {
        match s {
            "table" => Ok(Format::Table),
            "jsonl" => Ok(Format::Jsonl),
            "csv" => Ok(Format::Csv),
            other => Err(format!(
                "unknown format \"{other}\"; expected table, jsonl or csv"
            )),
        }
    }
}

/// The widest a cell of a table gets before it is shortened with "…".
pub const TABLE_CELL_CHARS: usize = 40;

/// The job's workflow, state and edges (name, features, files, bytes, complete).
pub fn edges_table(job: &Job) -> String {
    let m = job.manifest();
    let mut s = format!(
        "job {}: workflow \"{}\", {}, started {}\n",
        job.location(),
        m.workflow.name.as_deref().unwrap_or("(unnamed)"),
        m.state,
        m.started
    );
    let rows: Vec<Vec<String>> = m
        .edges
        .iter()
        .map(|e| {
            vec![
                e.name.clone(),
                e.features.to_string(),
                e.files.len().to_string(),
                e.bytes.to_string(),
                if e.complete { "yes" } else { "no" }.to_string(),
            ]
        })
        .collect();
    if rows.is_empty() {
        s.push_str("no edges were captured\n");
        return s;
    }
    let header = ["edge", "features", "files", "bytes", "complete"].map(String::from);
    s.push_str(&table(&header, &rows, &[false, true, true, true, false]));
    s
}

/// `features` printed in `format`. Columns are the attribute names in order of first
/// appearance, then `geometry` (WKT) when any feature has one.
pub fn render(features: &[Feature], format: Format) -> String {
    let (names, geometry) = columns(features);
    match format {
        Format::Jsonl => {
            let mut s = String::new();
            for f in features {
                let mut obj = serde_json::Map::new();
                for (k, v) in f.attributes() {
                    obj.insert(k.to_string(), v.to_json());
                }
                if let Some(g) = f.geometry() {
                    obj.insert("geometry".into(), g.geom.wkt_string().into());
                }
                let _ = writeln!(s, "{}", serde_json::Value::Object(obj));
            }
            s
        }
        Format::Csv => {
            let mut w = csv::Writer::from_writer(Vec::new());
            let mut header: Vec<&str> = names.iter().map(|n| &**n).collect();
            if geometry {
                header.push("geometry");
            }
            let _ = w.write_record(&header);
            for f in features {
                let _ = w.write_record(cells(f, &names, geometry, None));
            }
            String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
        }
        Format::Table => {
            let mut header: Vec<String> = names.iter().map(|n| n.to_string()).collect();
            if geometry {
                header.push("geometry".into());
            }
            let rows: Vec<Vec<String>> = features
                .iter()
                .map(|f| cells(f, &names, geometry, Some(TABLE_CELL_CHARS)))
                .collect();
            let numeric: Vec<bool> = (0..header.len())
                .map(|c| {
                    c < names.len()
                        && features.iter().all(|f| {
                            f.get(&names[c]).is_none_or(|v| {
                                matches!(
                                    v,
                                    sluice_runtime::Value::Int(_)
                                        | sluice_runtime::Value::Float(_)
                                        | sluice_runtime::Value::Null
                                )
                            })
                        })
                })
                .collect();
            table(&header, &rows, &numeric)
        }
    }
}

/// `features` as a header and rows of cells, each cut to `width` characters (geometry as
/// WKT): what the live view's preview shows.
pub fn grid(features: &[Feature], width: usize) -> (Vec<String>, Vec<Vec<String>>) {
    let (names, geometry) = columns(features);
    let mut header: Vec<String> = names.iter().map(|n| n.to_string()).collect();
    if geometry {
        header.push("geometry".into());
    }
    let rows = features
        .iter()
        .map(|f| cells(f, &names, geometry, Some(width)))
        .collect();
    (header, rows)
}

fn columns(features: &[Feature]) -> (Vec<Arc<str>>, bool) {
    let mut names: Vec<Arc<str>> = Vec::new();
    let mut seen: HashMap<Arc<str>, ()> = HashMap::new();
    let mut last = None;
    for f in features {
        if last.is_some_and(|l| Arc::ptr_eq(l, f.schema())) {
            continue;
        }
        for n in f.schema().names() {
            if seen.insert(n.clone(), ()).is_none() {
                names.push(n.clone());
            }
        }
        last = Some(f.schema());
    }
    (names, features.iter().any(|f| f.geometry().is_some()))
}

fn cells(f: &Feature, names: &[Arc<str>], geometry: bool, width: Option<usize>) -> Vec<String> {
    let cut = |s: String| match width {
        Some(w) if s.chars().count() > w => {
            let mut t: String = s.chars().take(w - 1).collect();
            t.push('…');
            t
        }
        _ => s,
    };
    let mut row: Vec<String> = names
        .iter()
        .map(|n| cut(f.get(n).map(|v| v.to_string()).unwrap_or_default()))
        .collect();
    if geometry {
        row.push(cut(f
            .geometry()
            .map(|g| g.geom.wkt_string())
            .unwrap_or_default()));
    }
    row
}

/// Columns padded to their widest cell; `right` aligns a column to the right.
fn table(header: &[String], rows: &[Vec<String>], right: &[bool]) -> String {
    let mut width: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (w, c) in width.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(&width).enumerate() {
            if i > 0 {
                s.push_str("  ");
            }
            let pad = w - c.chars().count();
            if right.get(i).copied().unwrap_or(false) {
                s.push_str(&" ".repeat(pad));
                s.push_str(c);
            } else {
                s.push_str(c);
                if i + 1 < cells.len() {
                    s.push_str(&" ".repeat(pad));
                }
            }
        }
        s.push('\n');
        s
    };
    let mut s = line(header);
    for r in rows {
        s.push_str(&line(r));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_runtime::{Geometry, Value};

    fn sample() -> Vec<Feature> {
        let point = geo_types::Geometry::Point(geo_types::Point::new(1.5, -2.0));
        vec![
            Feature::from_pairs(1, [("id", Value::Int(1)), ("name", "a, \"b\"".into())])
                .with_geometry(Some(Geometry::in_crs(point, Some(4326)))),
            Feature::from_pairs(2, [("id", Value::Int(22)), ("extra", Value::Float(0.5))]),
        ]
    }

    #[test]
    fn csv_has_every_column_quoted_where_needed_and_wkt() {
        let s = render(&sample(), Format::Csv);
        assert_eq!(
            s,
            "id,name,extra,geometry\n1,\"a, \"\"b\"\"\",,POINT(1.5 -2)\n22,,0.5,\n"
        );
    }

    #[test]
    fn jsonl_keeps_each_feature_s_own_attributes() {
        let s = render(&sample(), Format::Jsonl);
        let lines: Vec<serde_json::Value> = s
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines[0]["name"], "a, \"b\"");
        assert_eq!(lines[0]["geometry"], "POINT(1.5 -2)");
        assert_eq!(lines[1]["extra"], 0.5);
        assert!(lines[1].get("name").is_none());
    }

    #[test]
    fn table_aligns_numbers_right_and_shortens_long_cells() {
        let long = "x".repeat(100);
        let f = vec![
            Feature::from_pairs(1, [("n", Value::Int(5)), ("s", long.as_str().into())]),
            Feature::from_pairs(2, [("n", Value::Int(12345)), ("s", "y".into())]),
        ];
        let s = render(&f, Format::Table);
        let lines: Vec<&str> = s.lines().collect();
        assert_eq!(lines[0], format!("    n  s"));
        assert!(lines[1].starts_with("    5  xxx"), "{s}");
        assert!(lines[1].ends_with('…'));
        assert_eq!(lines[1].chars().count(), 5 + 2 + TABLE_CELL_CHARS);
        assert_eq!(lines[2], "12345  y");
    }
}
