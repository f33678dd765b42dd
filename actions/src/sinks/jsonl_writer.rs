//! `jsonl_writer`: writes one JSON object per feature per line (JSON Lines).
//!
//! ```yaml
//! - id: save
//!   action: jsonl_writer
//!   with:
//!     path: out/places.jsonl
//! ```
//!
//! Each line is an object of the feature's attributes in schema order; when the feature has
//! a geometry it is added under `"geometry"` as a GeoJSON geometry object (an attribute
//! named `geometry` is then left out). Null is `null`, dates and datetimes are ISO 8601
//! strings, bytes are hex, non-finite floats are `null`. The file is written under a
//! temporary name and renamed into place when the run succeeds; a failed or cancelled run
//! leaves no file. `gzip` defaults to whether the name ends in `.gz`.
//!
//! `path` may hold `{attribute}` placeholders (`out/{region}.jsonl`): one file per distinct
//! value, at most `max_open_files` open at once; a partition reopened after its file was
//! closed continues in `{region}.part2.jsonl`. See `sinks/partition.rs`.

use std::io::Write;

use schemars::JsonSchema;
use serde::Deserialize;
use sluice_runtime::action::schema_of;
use sluice_runtime::{
    ActionError, ActionKind, ActionSpec, BuildContext, BuiltAction, Feature, Value,
};

use super::text_writer::{RecordEncoder, TextOutput};

/// Parameters of `jsonl_writer`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JsonlWriterParams {
    /// Where to write (a path, `file://` or `memory://` location).
    pub path: String,
    /// Compress with gzip. Default: when the path ends in `.gz`.
    #[serde(default)]
    pub gzip: Option<bool>,
    /// With `{attribute}` placeholders in `path`: the most files open at once (the least
    /// recently used is finished when another is needed).
    #[serde(default = "default_max_open_files")]
    #[schemars(range(min = 1))]
    pub max_open_files: usize,
}

fn default_max_open_files() -> usize {
    64
}

/// The `jsonl_writer` action.
pub const SPEC: ActionSpec = ActionSpec::new(
    "jsonl_writer",
    ActionKind::Sink,
    "Writes features as JSON Lines (GeoJSON geometry), committed only when the run succeeds.",
    schema_of::<JsonlWriterParams>,
    build,
)
.writes_partitions_to("path")
.example("path: out/places.jsonl\n");

fn build(ctx: &BuildContext) -> Result<BuiltAction, ActionError> {
    let p: JsonlWriterParams = ctx.params()?;
    Ok(TextOutput::new(p.path, p.gzip, p.max_open_files)?.build(JsonlEncoder))
}

/// One JSON object per line.
#[derive(Clone)]
struct JsonlEncoder;

impl RecordEncoder for JsonlEncoder {
    const EXTENSION: &'static str = "jsonl";

    type State = ();
    /// No state at all.
    const PARALLEL: bool = true;

    fn header(&mut self, _first: &Feature, _buf: &mut Vec<u8>) -> Result<(), ActionError> {
        Ok(())
    }

    fn encode(&mut self, _: &mut (), f: &Feature, buf: &mut Vec<u8>) -> Result<(), ActionError> {
        // Writing to a Vec fails only on a serialisation error, which these values cannot
        // produce; the error is still reported rather than dropped.
        write_feature(buf, f).map_err(|e| ActionError::io("encoding a feature as JSON", e))?;
        buf.push(b'\n');
        Ok(())
    }
}

/// Writes one feature as a JSON object (no newline).
pub(crate) fn write_feature(w: &mut impl Write, f: &Feature) -> std::io::Result<()> {
    let geometry = f.geometry();
    w.write_all(b"{")?;
    let mut first = true;
    for (name, value) in f.attributes() {
        if geometry.is_some() && name == "geometry" {
            continue;
        }
        if !first {
            w.write_all(b",")?;
        }
        first = false;
        serde_json::to_writer(&mut *w, name)?;
        w.write_all(b":")?;
        write_value(w, value)?;
    }
    if let Some(g) = geometry {
        if !first {
            w.write_all(b",")?;
        }
        w.write_all(b"\"geometry\":")?;
        let value = crate::geojson_geometry::write(g);
        serde_json::to_writer(&mut *w, &serde_json::Value::from(&value))?;
    }
    w.write_all(b"}")
}

/// Writes one value as JSON (non-finite floats as null; dates as ISO strings).
pub(crate) fn write_value(w: &mut impl Write, v: &Value) -> std::io::Result<()> {
    match v {
        Value::Null => w.write_all(b"null"),
        Value::Bool(b) => w.write_all(if *b { b"true" } else { b"false" }),
        Value::Int(i) => write!(w, "{i}"),
        Value::String(s) => Ok(serde_json::to_writer(&mut *w, s.as_str())?),
        Value::Float(x) if !x.is_finite() => w.write_all(b"null"),
        Value::Float(x) => Ok(serde_json::to_writer(&mut *w, x)?),
        other => Ok(serde_json::to_writer(&mut *w, &other.to_json())?),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_runtime::{Geometry, NodeContext, Sink};

    fn sink(params: serde_json::Value) -> Box<dyn Sink> {
        sluice_runtime::testing::build_sink(&SPEC, params).unwrap()
    }

    fn read_back(location: &str) -> String {
        String::from_utf8(sluice_runtime::testing::read_bytes(location).unwrap()).unwrap()
    }

    #[test]
    fn writes_attributes_in_order_and_geojson_geometry() {
        let ctx = NodeContext::standalone("t");
        let day = sluice_runtime::feature::parse_date("2024-02-29").unwrap();
        let a = Feature::from_pairs(
            1,
            [
                ("name", Value::from("Zoë \"q\"")),
                ("n", Value::Int(3)),
                ("x", Value::Float(0.1)),
                ("nan", Value::Float(f64::NAN)),
                ("none", Value::Null),
                ("day", Value::Date(day)),
                ("geometry", Value::from("shadowed")),
            ],
        )
        .with_geometry(Some(Geometry::new(geo_types::Point::new(1.0, 2.5).into())));
        let b = Feature::from_pairs(2, [("ok", Value::Bool(true))]);
        let mut w = sink(serde_json::json!({"path": "memory://jsonl_writer/a.jsonl"}));
        w.write(0, vec![a, b], &ctx).unwrap();
        w.finish(&ctx).unwrap();
        w.commit().unwrap();
        assert_eq!(
            read_back("memory://jsonl_writer/a.jsonl"),
            "{\"name\":\"Zoë \\\"q\\\"\",\"n\":3,\"x\":0.1,\"nan\":null,\"none\":null,\"day\":\"2024-02-29\",\"geometry\":{\"type\":\"Point\",\"coordinates\":[1.0,2.5]}}\n{\"ok\":true}\n"
        );
        // Every line is valid JSON.
        for line in read_back("memory://jsonl_writer/a.jsonl").lines() {
            serde_json::from_str::<serde_json::Value>(line).unwrap();
        }
    }

    #[test]
    fn abort_leaves_no_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.jsonl");
        let ctx = NodeContext::standalone("t");
        let rows: Vec<Feature> = (0..20_000)
            .map(|i| Feature::from_pairs(i, [("i", Value::Int(i as i64))]))
            .collect();
        let mut w = sink(serde_json::json!({"path": path.to_string_lossy()}));
        w.write(0, rows, &ctx).unwrap();
        w.abort();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn bad_params_are_located() {
        let err = (SPEC.build)(&BuildContext {
            node_id: "t",
            params: &serde_json::json!({"path": "x.jsonl", "pretty": true}),
        })
        .err()
        .unwrap();
        assert!(matches!(err, ActionError::Param { .. }), "{err:?}");
        let err = (SPEC.build)(&BuildContext {
            node_id: "t",
            params: &serde_json::json!({"path": "/"}),
        })
        .err()
        .unwrap();
        assert!(
            matches!(err, ActionError::Param { ref path, .. } if path == "path"),
            "{err:?}"
        );
    }
}
