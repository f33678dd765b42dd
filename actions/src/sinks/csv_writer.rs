//! `csv_writer`: writes features to a CSV file, whole or not at all.
//!
//! ```yaml
//! - id: save
//!   action: csv_writer
//!   with:
//!     path: out/trips.csv.gz
//!     delimiter: ","
//!     header: true
//!     geometry: wkt
//! ```
//!
//! - Columns: the attributes of the first feature, in its schema order. Later features are
//!   written by looking those names up (a missing attribute is an empty cell); a feature
//!   with an attribute the first one lacked fails the run ([`ActionError::Data`] naming the
//!   attribute and the feature), because a streaming writer cannot add a column to rows it
//!   already wrote. Normalise the schemas upstream when inputs differ.
//! - `geometry: wkt` appends a `geometry` column holding WKT; `geometry: xy` appends `x` and
//!   `y` columns (points only; another shape fails the run). An attribute with the same
//!   name as a geometry column is left out: the geometry wins. No geometry: empty cells.
//! - Values print as their text form (null is empty, floats round-trip, dates ISO 8601). A
//!   field is quoted only when it must be (a delimiter, quote or line break inside), and an
//!   empty string is written `""` so that it reads back as an empty string, not as null:
//!   a CSV read by `csv_reader` and written here comes back byte for byte.
//! - The file is written under a temporary name and renamed into place when the run
//!   succeeds; a failed or cancelled run leaves no file. With no feature at all the file is
//!   empty (no header: the columns are unknown).
//! - `gzip` defaults to whether the name ends in `.gz`; the gzip header carries no time, so
//!   the same features always give the same bytes.
//! - `path` may hold `{attribute}` placeholders (`out/by_cat/{category}.csv`): one file per
//!   distinct value, each with its own columns and header, at most `max_open_files` open at
//!   once; a partition reopened after its file was closed continues in
//!   `{category}.part2.csv`. See `sinks/partition.rs` for the naming and the rule.

use std::sync::Arc;

use schemars::JsonSchema;
use serde::Deserialize;
use sluice_runtime::action::schema_of;
use sluice_runtime::{
    ActionError, ActionKind, ActionSpec, Batch, BuildContext, BuiltAction, Feature, NodeContext,
    NodeImpl, Schema, Sink, Value,
};

use super::Output;
use super::partition::{FileFormat, Partitioned, PathTemplate};
use sluice_runtime::store::AtomicWriter;

/// Parameters of `csv_writer`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CsvWriterParams {
    /// Where to write (a path, `file://` or `memory://` location).
    pub path: String,
    /// The field delimiter, one ASCII character.
    #[serde(default = "comma")]
    pub delimiter: char,
    /// Whether to write a header row of column names.
    #[serde(default = "yes")]
    pub header: bool,
    /// How to write the geometry: `wkt` (a `geometry` column) or `xy` (`x`, `y` columns, for
    /// points). Left out: the geometry is not written.
    #[serde(default)]
    pub geometry: Option<GeometryFormat>,
    /// Compress with gzip. Default: when the path ends in `.gz`.
    #[serde(default)]
    pub gzip: Option<bool>,
    /// With `{attribute}` placeholders in `path`: the most files open at once (the least
    /// recently used is finished when another is needed; see the module docs).
    #[serde(default = "default_max_open_files")]
    #[schemars(range(min = 1))]
    pub max_open_files: usize,
}

fn default_max_open_files() -> usize {
    64
}

/// How `csv_writer` writes geometries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum GeometryFormat {
    /// A `geometry` column of WKT.
    Wkt,
    /// `x` and `y` columns (points only).
    Xy,
}

fn comma() -> char {
    ','
}
fn yes() -> bool {
    true
}

/// The `csv_writer` action.
pub const SPEC: ActionSpec = ActionSpec::new(
    "csv_writer",
    ActionKind::Sink,
    "Writes features to a CSV file (gzip by extension), committed only when the run succeeds.",
    schema_of::<CsvWriterParams>,
    build,
)
.writes_to("path")
.example("path: out/trips.csv.gz\ndelimiter: \",\"\nheader: true\ngeometry: wkt\n");

fn build(ctx: &BuildContext) -> Result<BuiltAction, ActionError> {
    let p: CsvWriterParams = ctx.params()?;
    if p.path.trim().is_empty() || p.path.ends_with('/') {
        return Err(ActionError::param("path", "must name a file"));
    }
    let template = PathTemplate::parse(&p.path).map_err(|m| ActionError::param("path", m))?;
    if !p.delimiter.is_ascii() || matches!(p.delimiter, '\n' | '\r' | '"') {
        return Err(ActionError::param(
            "delimiter",
            format!(
                "must be one ASCII character other than a line break or '\"', found {:?}",
                p.delimiter
            ),
        ));
    }
    if p.max_open_files == 0 {
        return Err(ActionError::param("max_open_files", "must be at least 1"));
    }
    let gzip = p.gzip.unwrap_or_else(|| p.path.ends_with(".gz"));
    let format = CsvFormat {
        delimiter: p.delimiter as u8,
        header: p.header,
        geometry: p.geometry,
        gzip,
        cell: String::new(),
    };
    Ok(BuiltAction::new(NodeImpl::Sink(Box::new(CsvWriter {
        files: Partitioned::new(template, format, p.max_open_files),
        path: p.path,
    }))))
}

// ---------------------------------------------------------------------------------------------
// The writer
// ---------------------------------------------------------------------------------------------

/// The columns, fixed by the first feature, and where the last schema seen keeps them.
struct Layout {
    columns: Arc<Schema>,
    /// The schema the `lookup` was made for.
    last: Arc<Schema>,
    /// For each column, the index of that attribute in `last` (`None`: empty cell).
    lookup: Vec<Option<usize>>,
}

/// How features become CSV rows (shared by every file of the sink).
struct CsvFormat {
    delimiter: u8,
    header: bool,
    geometry: Option<GeometryFormat>,
    gzip: bool,
    /// Reused buffer for one cell's text.
    cell: String,
}

/// One open CSV file.
struct CsvFile {
    path: String,
    w: RowWriter,
    layout: Layout,
}

/// Writes delimited rows: quotes a field only when it must, doubles quotes inside, and
/// writes an empty string as `""` (an empty field is null).
struct RowWriter {
    out: std::io::BufWriter<Output>,
    delimiter: u8,
    /// Fields written in the current row.
    fields: usize,
    /// The current row's bytes (written out whole, so a row is one buffered write).
    row: Vec<u8>,
    /// The current row ends in an empty unquoted field (null).
    last_empty: bool,
}

impl RowWriter {
    fn new(out: Output, delimiter: u8) -> RowWriter {
        RowWriter {
            out: std::io::BufWriter::with_capacity(64 * 1024, out),
            delimiter,
            fields: 0,
            row: Vec::with_capacity(256),
            last_empty: false,
        }
    }

    /// Appends a field; `string` says that an empty `text` is an empty string, not null.
    fn field(&mut self, text: &[u8], string: bool) {
        if self.fields > 0 {
            self.row.push(self.delimiter);
        }
        self.fields += 1;
        let d = self.delimiter;
        let needs_quotes = (text.is_empty() && string)
            || text
                .iter()
                .any(|&c| c == d || c == b'"' || c == b'\n' || c == b'\r');
        self.last_empty = text.is_empty() && !needs_quotes;
        if !needs_quotes {
            self.row.extend_from_slice(text);
            return;
        }
        self.row.push(b'"');
        for &c in text {
            if c == b'"' {
                self.row.push(b'"');
            }
            self.row.push(c);
        }
        self.row.push(b'"');
    }

    /// Ends the row. A row of one empty field is written `""`: an empty line would be
    /// skipped by readers.
    fn end_row(&mut self) -> std::io::Result<()> {
        use std::io::Write as _;
        if self.fields == 1 && self.last_empty {
            self.row.extend_from_slice(b"\"\"");
        }
        self.row.push(b'\n');
        self.out.write_all(&self.row)?;
        self.row.clear();
        self.fields = 0;
        self.last_empty = false;
        Ok(())
    }

    fn into_inner(self) -> std::io::Result<Output> {
        self.out.into_inner().map_err(|e| e.into_error())
    }
}

struct CsvWriter {
    files: Partitioned<CsvFormat>,
    path: String,
}

impl CsvFormat {
    fn geometry_columns(&self) -> &'static [&'static str] {
        match self.geometry {
            None => &[],
            Some(GeometryFormat::Wkt) => &["geometry"],
            Some(GeometryFormat::Xy) => &["x", "y"],
        }
    }
}

impl FileFormat for CsvFormat {
    type File = CsvFile;

    /// Opens the file and writes the header, with the columns of `first`.
    fn open(&mut self, path: &str, first: &Feature) -> Result<CsvFile, ActionError> {
        let geom_cols = self.geometry_columns();
        let columns = Schema::new(
            first
                .schema()
                .names()
                .iter()
                .filter(|n| !geom_cols.contains(&n.as_ref()))
                .cloned(),
        );
        let output = Output::create(path, self.gzip)?;
        let mut w = RowWriter::new(output, self.delimiter);
        if self.header {
            let names = columns.names().iter().map(|n| n.as_bytes());
            let geom = geom_cols.iter().map(|n| n.as_bytes());
            for name in names.chain(geom) {
                w.field(name, true);
            }
            w.end_row()
                .map_err(|e| ActionError::io(format!("writing {path}"), e))?;
        }
        Ok(CsvFile {
            path: path.to_string(),
            w,
            layout: Layout {
                lookup: lookup(&columns, first, geom_cols)?,
                last: first.schema().clone(),
                columns,
            },
        })
    }

    fn write(&mut self, file: &mut CsvFile, f: &Feature) -> Result<(), ActionError> {
        let geom_cols = self.geometry_columns();
        let CsvFile { path, w, layout } = file;
        if !Arc::ptr_eq(&layout.last, f.schema()) {
            layout.lookup = lookup(&layout.columns, f, geom_cols)?;
            layout.last = f.schema().clone();
        }
        let io = |e: std::io::Error| ActionError::io(format!("writing {path}"), e);
        let values = f.values();
        for slot in &layout.lookup {
            match slot.map(|i| &values[i]) {
                Some(Value::String(s)) => w.field(s.as_bytes(), true),
                Some(v) => {
                    self.cell.clear();
                    use std::fmt::Write as _;
                    let _ = write!(self.cell, "{v}");
                    w.field(self.cell.as_bytes(), false);
                }
                None => w.field(b"", false),
            }
        }
        match self.geometry {
            None => {}
            Some(GeometryFormat::Wkt) => {
                self.cell.clear();
                if let Some(g) = f.geometry() {
                    use std::fmt::Write as _;
                    use wkt::ToWkt;
                    let _ = write!(self.cell, "{}", g.geom.to_wkt());
                }
                w.field(self.cell.as_bytes(), false);
            }
            Some(GeometryFormat::Xy) => match f.geometry().map(|g| &g.geom) {
                None => {
                    w.field(b"", false);
                    w.field(b"", false);
                }
                Some(geo_types::Geometry::Point(p)) => {
                    for c in [p.x(), p.y()] {
                        self.cell.clear();
                        sluice_runtime::feature::format_float(c, &mut self.cell);
                        w.field(self.cell.as_bytes(), false);
                    }
                }
                Some(other) => {
                    return Err(ActionError::data(
                        Some(format!("feature {}", f.id())),
                        format!(
                            "geometry: xy writes points only, found a {}",
                            shape_name(other)
                        ),
                    ));
                }
            },
        }
        w.end_row().map_err(io)
    }

    fn finish(&mut self, file: CsvFile) -> Result<AtomicWriter, ActionError> {
        let CsvFile { path, w, .. } = file;
        let output = w
            .into_inner()
            .map_err(|e| ActionError::io(format!("writing {path}"), e))?;
        output.finish(&path)
    }

    fn empty(&mut self, path: &str) -> Result<AtomicWriter, ActionError> {
        Output::create(path, self.gzip)?.finish(path)
    }
}

/// Where each column sits in `f`'s schema; an attribute of `f` that is not a column is an
/// error.
fn lookup(
    columns: &Schema,
    f: &Feature,
    geom_cols: &[&str],
) -> Result<Vec<Option<usize>>, ActionError> {
    let schema = f.schema();
    if let Some(extra) = schema
        .names()
        .iter()
        .find(|n| columns.index_of(n).is_none() && !geom_cols.contains(&n.as_ref()))
    {
        return Err(ActionError::data(
            Some(format!("feature {}", f.id())),
            format!(
                "attribute \"{extra}\" is not a column of this file (the columns come from the first feature: {})",
                columns
                    .names()
                    .iter()
                    .map(|n| n.as_ref())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    Ok(columns.names().iter().map(|n| schema.index_of(n)).collect())
}

pub(crate) fn shape_name(g: &geo_types::Geometry<f64>) -> &'static str {
    use geo_types::Geometry as G;
    match g {
        G::Point(_) => "point",
        G::Line(_) => "line",
        G::LineString(_) => "line string",
        G::Polygon(_) => "polygon",
        G::MultiPoint(_) => "multi point",
        G::MultiLineString(_) => "multi line string",
        G::MultiPolygon(_) => "multi polygon",
        G::GeometryCollection(_) => "geometry collection",
        G::Rect(_) => "rectangle",
        G::Triangle(_) => "triangle",
    }
}

impl Sink for CsvWriter {
    fn write(
        &mut self,
        _input: usize,
        batch: Batch,
        _ctx: &NodeContext,
    ) -> Result<(), ActionError> {
        for f in &batch {
            self.files.write(f)?;
        }
        Ok(())
    }

    fn finish(&mut self, ctx: &NodeContext) -> Result<(), ActionError> {
        self.files.finish()?;
        ctx.log(format!(
            "wrote {} features to {} ({} files)",
            self.files.written,
            self.path,
            self.files.files()
        ));
        Ok(())
    }

    fn commit(&mut self) -> Result<(), ActionError> {
        self.files.commit()
    }

    fn abort(&mut self) {
        // Dropping the writers removes their temporary files.
        self.files.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_runtime::store::AtomicWriter;
    use sluice_runtime::{Emitter, Geometry, Value};
    use std::io::{Read, Write};

    fn sink(params: serde_json::Value) -> Box<dyn Sink> {
        sluice_runtime::testing::build_sink(&SPEC, params).unwrap()
    }

    fn read_back(location: &str) -> Vec<u8> {
        sluice_runtime::testing::read_bytes(location).unwrap()
    }

    fn put(location: &str, bytes: &[u8]) {
        let mut w = AtomicWriter::create(location).unwrap();
        w.write_all(bytes).unwrap();
        w.commit().unwrap();
    }

    fn read_csv(path: &str) -> (Vec<Feature>, Vec<Feature>) {
        let params = serde_json::json!({ "path": path });
        let built = (crate::sources::csv_reader::SPEC.build)(&BuildContext {
            node_id: "r",
            params: &params,
        })
        .unwrap();
        let NodeImpl::Source(mut src) = built.node else {
            panic!()
        };
        let mut out = Emitter::buffer(2);
        src.run(&NodeContext::standalone("r"), &mut out).unwrap();
        let mut b = out.into_buffers();
        let rejected = b.pop().unwrap();
        (b.pop().unwrap(), rejected)
    }

    #[test]
    fn example_parses_and_builds() {
        let params = sluice_runtime::workflow::yaml::parse(SPEC.example)
            .unwrap()
            .to_json();
        assert_eq!(params["geometry"], "wkt");
        assert!(
            (SPEC.build)(&BuildContext {
                node_id: "t",
                params: &params
            })
            .is_ok()
        );
    }

    #[test]
    fn round_trip_through_csv_reader_is_byte_exact() {
        let input = "id,name,score,when,flag,note\n\
1,\"Smith, Jane\",1.5,2024-02-29,true,\"she said \"\"hi\"\"\"\n\
2,Zoë,,2024-03-01,false,\n\
3,\"multi\nline\",-0.25,,,naïve ✓\n\
4,plain,100.0,1999-12-31,true,x\n";
        put("memory://csv_writer/rt-in.csv", input.as_bytes());
        let (features, rejected) = read_csv("memory://csv_writer/rt-in.csv");
        assert!(rejected.is_empty());
        assert_eq!(features[0].get("score"), Some(&Value::Float(1.5)));
        let ctx = NodeContext::standalone("t");
        for run in 0..2 {
            let out = format!("memory://csv_writer/rt-out-{run}.csv");
            let mut w = sink(serde_json::json!({ "path": out }));
            w.write(0, features[..2].to_vec(), &ctx).unwrap();
            w.write(0, features[2..].to_vec(), &ctx).unwrap();
            w.finish(&ctx).unwrap();
            w.commit().unwrap();
            assert_eq!(String::from_utf8(read_back(&out)).unwrap(), input);
        }
    }

    #[test]
    fn gzip_output_is_deterministic_and_readable() {
        let ctx = NodeContext::standalone("t");
        let f = Feature::from_pairs(1, [("a", Value::Int(1)), ("b", Value::from("x"))]);
        let mut outputs = Vec::new();
        for run in 0..2 {
            let out = format!("memory://csv_writer/gz-{run}.csv.gz");
            let mut w = sink(serde_json::json!({ "path": out }));
            w.write(0, vec![f.clone()], &ctx).unwrap();
            w.finish(&ctx).unwrap();
            w.commit().unwrap();
            outputs.push(read_back(&out));
        }
        assert_eq!(outputs[0], outputs[1]);
        let mut text = String::new();
        flate2::read::GzDecoder::new(&outputs[0][..])
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "a,b\n1,x\n");
    }

    #[test]
    fn geometry_as_wkt_or_xy() {
        let ctx = NodeContext::standalone("t");
        let pt = Geometry::new(geo_types::Point::new(1.5, -2.0).into());
        let f = Feature::from_pairs(7, [("x", Value::Int(9)), ("n", Value::from("a"))])
            .with_geometry(Some(pt));
        let none = Feature::from_pairs(8, [("x", Value::Int(1)), ("n", Value::from("b"))]);

        let mut w = sink(
            serde_json::json!({"path": "memory://csv_writer/g.csv", "geometry": "wkt", "delimiter": ";"}),
        );
        w.write(0, vec![f.clone(), none.clone()], &ctx).unwrap();
        w.finish(&ctx).unwrap();
        w.commit().unwrap();
        assert_eq!(
            String::from_utf8(read_back("memory://csv_writer/g.csv")).unwrap(),
            "x;n;geometry\n9;a;POINT(1.5 -2)\n1;b;\n"
        );

        let mut w = sink(
            serde_json::json!({"path": "memory://csv_writer/xy.csv", "geometry": "xy", "header": false}),
        );
        w.write(0, vec![f, none], &ctx).unwrap();
        w.finish(&ctx).unwrap();
        w.commit().unwrap();
        assert_eq!(
            String::from_utf8(read_back("memory://csv_writer/xy.csv")).unwrap(),
            "a,1.5,-2.0\nb,,\n"
        );

        let line = Geometry::new(geo_types::LineString::from(vec![(0.0, 0.0), (1.0, 1.0)]).into());
        let mut w =
            sink(serde_json::json!({"path": "memory://csv_writer/bad-xy.csv", "geometry": "xy"}));
        let err = w
            .write(0, vec![Feature::empty(3).with_geometry(Some(line))], &ctx)
            .unwrap_err();
        assert!(
            err.to_string().contains("feature 3") && err.to_string().contains("line string"),
            "{err}"
        );
        w.abort();
    }

    #[test]
    fn missing_attributes_are_empty_extra_ones_fail() {
        let ctx = NodeContext::standalone("t");
        let mut w = sink(serde_json::json!({"path": "memory://csv_writer/shapes.csv"}));
        let a = Feature::from_pairs(1, [("a", Value::Int(1)), ("b", Value::Int(2))]);
        let b = Feature::from_pairs(2, [("b", Value::Int(3))]);
        let c = Feature::from_pairs(3, [("a", Value::Int(4)), ("zzz", Value::Int(5))]);
        w.write(0, vec![a, b], &ctx).unwrap();
        let err = w.write(0, vec![c], &ctx).unwrap_err();
        match &err {
            ActionError::Data { location, message } => {
                assert_eq!(location.as_deref(), Some("feature 3"));
                assert!(message.contains("\"zzz\""), "{message}");
            }
            other => panic!("unexpected {other:?}"),
        }
        w.abort();
        assert!(sluice_runtime::store::open_read("memory://csv_writer/shapes.csv").is_err());
    }

    #[test]
    fn abort_leaves_no_file_and_finish_commits() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out/result.csv");
        let loc = path.to_string_lossy().into_owned();
        let ctx = NodeContext::standalone("t");
        let rows: Vec<Feature> = (0..50_000)
            .map(|i| Feature::from_pairs(i, [("i", Value::Int(i as i64))]))
            .collect();

        let mut w = sink(serde_json::json!({ "path": loc }));
        w.write(0, rows.clone(), &ctx).unwrap();
        w.abort();
        assert!(!path.exists());
        let leftovers: Vec<_> = std::fs::read_dir(dir.path().join("out"))
            .map(|d| d.collect())
            .unwrap_or_default();
        assert!(leftovers.is_empty(), "{leftovers:?}");

        let mut w = sink(serde_json::json!({ "path": loc }));
        w.write(0, rows, &ctx).unwrap();
        assert!(!path.exists(), "nothing is visible before finish");
        w.finish(&ctx).unwrap();
        w.commit().unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text.lines().count(), 50_001);
        assert_eq!(
            std::fs::read_dir(dir.path().join("out")).unwrap().count(),
            1
        );
    }

    #[test]
    fn no_features_give_an_empty_file() {
        let ctx = NodeContext::standalone("t");
        let mut w = sink(serde_json::json!({"path": "memory://csv_writer/empty.csv"}));
        w.write(0, Vec::new(), &ctx).unwrap();
        w.finish(&ctx).unwrap();
        w.commit().unwrap();
        assert!(read_back("memory://csv_writer/empty.csv").is_empty());
    }

    #[test]
    fn partitions_by_attribute_with_at_most_max_open_files() {
        let ctx = NodeContext::standalone("t");
        let BuiltAction {
            node: NodeImpl::Sink(_),
            ..
        } = (SPEC.build)(&BuildContext {
            node_id: "t",
            params: &serde_json::json!({"path": "memory://csv_writer/by/{cat}/{y}.csv", "max_open_files": 2}),
        })
        .unwrap()
        else {
            panic!("not a sink")
        };
        let mut w = CsvWriter {
            files: Partitioned::new(
                PathTemplate::parse("memory://csv_writer/by/{cat}.csv").unwrap(),
                CsvFormat {
                    delimiter: b',',
                    header: true,
                    geometry: None,
                    gzip: false,
                    cell: String::new(),
                },
                2,
            ),
            path: "memory://csv_writer/by/{cat}.csv".into(),
        };
        let schema = Schema::new(["cat", "n"]);
        let cats = ["a", "b", "a/../x", "a", "c", "c", "b"];
        let rows: Vec<Feature> = cats
            .iter()
            .enumerate()
            .map(|(i, c)| {
                Feature::new(
                    i as u64,
                    schema.clone(),
                    vec![Value::from(*c), Value::Int(i as i64)],
                )
            })
            .collect();
        w.write(0, rows, &ctx).unwrap();
        assert_eq!(w.files.max_open_seen, 2);
        w.finish(&ctx).unwrap();
        w.commit().unwrap();
        let text = |name: &str| {
            String::from_utf8(read_back(&format!("memory://csv_writer/by/{name}"))).unwrap()
        };
        // a b x a c c b with two open files: x closes a, the second a closes b (a.part2),
        // c closes x, the second b closes a.part2 (b.part2). Each part has its header.
        assert_eq!(text("a.csv"), "cat,n\na,0\n");
        assert_eq!(text("a.part2.csv"), "cat,n\na,3\n");
        assert_eq!(text("b.csv"), "cat,n\nb,1\n");
        assert_eq!(text("b.part2.csv"), "cat,n\nb,6\n");
        assert_eq!(text("a_.._x.csv"), "cat,n\na/../x,2\n");
        assert_eq!(text("c.csv"), "cat,n\nc,4\nc,5\n");
        assert_eq!(
            sluice_runtime::store::list("memory://csv_writer/by/*.csv")
                .unwrap()
                .len(),
            6
        );
    }

    #[test]
    fn bad_params_are_located() {
        let err = (SPEC.build)(&BuildContext {
            node_id: "t",
            params: &serde_json::json!({"path": "x.csv", "geometry": "geojson"}),
        })
        .err()
        .unwrap();
        assert!(
            matches!(err, ActionError::Param { ref path, .. } if path == "geometry"),
            "{err:?}"
        );
        for (params, want) in [
            (serde_json::json!({"path": "out/{cat.csv"}), "path"),
            (
                serde_json::json!({"path": "x.csv", "max_open_files": 0}),
                "max_open_files",
            ),
        ] {
            let err = (SPEC.build)(&BuildContext {
                node_id: "t",
                params: &params,
            })
            .err()
            .unwrap();
            assert!(
                matches!(err, ActionError::Param { ref path, .. } if path == want),
                "{err:?}"
            );
        }
    }
}
