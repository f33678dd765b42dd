//! `geojson_writer`: writes features as a GeoJSON FeatureCollection, streamed.
//!
//! ```yaml
//! - id: save
//!   action: geojson_writer
//!   with:
//!     path: out/parcels.geojson
//! ```
//!
//! - The collection is written as it comes: the header, then each feature as soon as it
//!   arrives, then the closing brackets in `finish`; no feature is held.
//! - Each feature is `{"type":"Feature","properties":{...},"geometry":...}`: the properties
//!   are the attributes in schema order (null is `null`, dates and datetimes ISO 8601
//!   strings, bytes hex, maps objects, arrays arrays, non-finite floats `null`), the geometry
//!   a GeoJSON geometry object or `null`. Numbers are written in their shortest form that
//!   reads back to the same value (ints as ints, floats with `ryu`), so coordinates and
//!   attributes round-trip exactly.
//! - Coordinates are written as they are: RFC 7946 GeoJSON is WGS 84 (EPSG 4326), so
//!   reproject upstream for strict RFC 7946 readers. When the first feature of a file is in
//!   another known CRS, the collection records it in the 2008 GeoJSON `crs` member
//!   (`{"type":"name","properties":{"name":"urn:ogc:def:crs:EPSG::2154"}}`, which GDAL and
//!   QGIS read), so the coordinates are never mistaken for degrees. One file holds one CRS:
//!   a later feature in another known CRS fails the run, naming both (reproject first).
//! - The file is written under a temporary name and renamed into place when the run
//!   succeeds; a failed or cancelled run leaves no file. `gzip` defaults to whether the name
//!   ends in `.gz`.
//! - `path` may hold `{attribute}` placeholders (`out/{region}.geojson`): one collection per
//!   distinct value, at most `max_open_files` open at once; a partition reopened after its
//!   file was closed continues in `{region}.part2.geojson` (a whole collection of its own).
//!   See `sinks/partition.rs`.

use std::io::Write;

use schemars::JsonSchema;
use serde::Deserialize;
use sluice_runtime::action::schema_of;
use sluice_runtime::{ActionError, ActionKind, ActionSpec, BuildContext, BuiltAction, Feature};

use super::jsonl_writer::write_value;
use super::text_writer::{RecordEncoder, TextOutput};

/// Parameters of `geojson_writer`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GeojsonWriterParams {
    /// Where to write (a path, `file://` or `memory://` location); may hold `{attribute}`
    /// placeholders.
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

/// The `geojson_writer` action.
pub const SPEC: ActionSpec = ActionSpec::new(
    "geojson_writer",
    ActionKind::Sink,
    "Writes features as a GeoJSON FeatureCollection, committed only when the run succeeds.",
    schema_of::<GeojsonWriterParams>,
    build,
)
.writes_partitions_to("path")
.example("path: out/parcels.geojson\n");

fn build(ctx: &BuildContext) -> Result<BuiltAction, ActionError> {
    let p: GeojsonWriterParams = ctx.params()?;
    Ok(TextOutput::new(p.path, p.gzip, p.max_open_files)?.build(GeojsonEncoder))
}

const HEADER: &[u8] = b"{\"type\":\"FeatureCollection\",\"features\":[";
const FOOTER: &[u8] = b"\n]}\n";

/// One FeatureCollection per file, a feature per line.
#[derive(Clone)]
struct GeojsonEncoder;

impl RecordEncoder for GeojsonEncoder {
    const EXTENSION: &'static str = "geojson";

    /// Whether a feature was written (the next one is preceded by a comma).
    /// Whether a feature was written, and the collection's CRS (from its first feature).
    type State = (bool, Option<u32>);
    /// After the first feature the flag stays true; the CRS never changes.
    const PARALLEL: bool = true;

    fn header(
        &mut self,
        first: &Feature,
        buf: &mut Vec<u8>,
    ) -> Result<(bool, Option<u32>), ActionError> {
        let crs = first.geometry().and_then(|g| g.crs);
        match crs {
            Some(code) if code != 4326 => {
                buf.extend_from_slice(
                    format!(
                        "{{\"type\":\"FeatureCollection\",\"crs\":{{\"type\":\"name\",\"properties\":{{\"name\":\"urn:ogc:def:crs:EPSG::{code}\"}}}},\"features\":["
                    )
                    .as_bytes(),
                );
            }
            _ => buf.extend_from_slice(HEADER),
        }
        Ok((false, crs))
    }

    fn encode(
        &mut self,
        (any, crs): &mut (bool, Option<u32>),
        f: &Feature,
        buf: &mut Vec<u8>,
    ) -> Result<(), ActionError> {
        if let (Some(file), Some(own)) = (*crs, f.geometry().and_then(|g| g.crs))
            && own != file
        {
            return Err(ActionError::data(
                None,
                format!(
                    "feature {} is in EPSG:{own} but its GeoJSON file is in EPSG:{file} (the CRS of \
                     its first feature); one file holds one CRS: reproject upstream",
                    f.id()
                ),
            ));
        }
        buf.extend_from_slice(if *any { b",\n" } else { b"\n" });
        *any = true;
        write_feature(buf, f).map_err(|e| ActionError::io("encoding a feature as GeoJSON", e))
    }

    fn footer(&mut self, _state: (bool, Option<u32>), buf: &mut Vec<u8>) {
        buf.extend_from_slice(FOOTER);
    }

    fn empty(&mut self, buf: &mut Vec<u8>) {
        buf.extend_from_slice(HEADER);
        buf.extend_from_slice(FOOTER);
    }
}

/// Writes one feature object (no separator).
fn write_feature(w: &mut impl Write, f: &Feature) -> std::io::Result<()> {
    w.write_all(b"{\"type\":\"Feature\",\"properties\":{")?;
    for (i, (name, value)) in f.attributes().enumerate() {
        if i > 0 {
            w.write_all(b",")?;
        }
        serde_json::to_writer(&mut *w, name)?;
        w.write_all(b":")?;
        write_value(w, value)?;
    }
    w.write_all(b"},\"geometry\":")?;
    match f.geometry() {
        None => w.write_all(b"null")?,
        Some(g) => {
            let value = crate::geojson_geometry::write(g);
            serde_json::to_writer(&mut *w, &geojson::Geometry::new(value))?;
        }
    }
    w.write_all(b"}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_runtime::{Geometry, NodeContext, REJECTION_REASON, Sink, Value};

    fn sink(params: serde_json::Value) -> Box<dyn Sink> {
        sluice_runtime::testing::build_sink(&SPEC, params).unwrap()
    }

    fn read_back(location: &str) -> String {
        String::from_utf8(sluice_runtime::testing::read_bytes(location).unwrap()).unwrap()
    }

    fn write_all(path: &str, features: Vec<Feature>) {
        let ctx = NodeContext::standalone("t");
        let mut w = sink(serde_json::json!({ "path": path }));
        w.write(0, features, &ctx).unwrap();
        w.finish(&ctx).unwrap();
        w.commit().unwrap();
    }

    fn read_geojson(path: &str) -> (Vec<Feature>, Vec<Feature>) {
        crate::sources::test_support::read_back(&crate::sources::geojson_reader::SPEC, path)
    }

    #[test]
    fn writes_a_collection_that_reads_back_exactly() {
        let poly = geo_types::Polygon::new(
            geo_types::LineString::from(vec![
                (0.1, 0.2),
                (1.0 / 3.0, 0.2),
                (1e-300, 123_456_789.123_456_79),
                (0.1, 0.2),
            ]),
            vec![],
        );
        let a = Feature::from_pairs(
            1,
            [
                ("name", Value::from("Zoë \"q\"")),
                ("n", Value::Int(i64::MAX)),
                ("x", Value::Float(0.1 + 0.2)),
                ("none", Value::Null),
            ],
        )
        .with_geometry(Some(Geometry::new(poly.into())));
        let b = Feature::from_pairs(2, [("name", Value::from("b")), ("n", Value::Int(-1))]);
        write_all(
            "memory://geojson_writer/rt.geojson",
            vec![a.clone(), b.clone()],
        );
        let text = read_back("memory://geojson_writer/rt.geojson");
        assert!(
            text.starts_with("{\"type\":\"FeatureCollection\",\"features\":[\n{\"type\":\"Feature\",\"properties\":{\"name\":\"Zoë \\\"q\\\"\",\"n\":9223372036854775807,\"x\":0.30000000000000004,\"none\":null},\"geometry\":{\"type\":\"Polygon\""),
            "{text}"
        );
        assert!(text.ends_with("},\"geometry\":null}\n]}\n"), "{text}");
        serde_json::from_str::<serde_json::Value>(&text).unwrap();
        let (back, rejected) = read_geojson("memory://geojson_writer/rt.geojson");
        assert!(rejected.is_empty());
        assert_eq!(back.len(), 2);
        assert_eq!(back[0].values(), a.values());
        assert_eq!(back[1].values(), b.values());
        assert_eq!(back[0].geometry().unwrap().geom, a.geometry().unwrap().geom);
        assert!(back[1].geometry().is_none());
    }

    fn at(id: u64, x: f64, crs: Option<u32>) -> Feature {
        Feature::from_pairs(id, [("id", Value::Int(id as i64))]).with_geometry(Some(
            Geometry::in_crs(geo_types::Point::new(x, 1.0).into(), crs),
        ))
    }

    #[test]
    fn a_collection_in_another_crs_says_so_and_one_file_holds_one_crs() {
        write_all(
            "memory://geojson_writer/lambert.geojson",
            vec![at(1, 652_301.5, Some(2154)), at(2, 652_400.0, Some(2154))],
        );
        let text = read_back("memory://geojson_writer/lambert.geojson");
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(
            v["crs"],
            serde_json::json!({"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::2154"}})
        );
        assert_eq!(v["features"].as_array().unwrap().len(), 2);
        // Read back, the features know their CRS again.
        let (back, rejected) = read_geojson("memory://geojson_writer/lambert.geojson");
        assert!(rejected.is_empty());
        assert!(back.iter().all(|f| f.geometry().unwrap().crs == Some(2154)));

        // WGS 84 (RFC 7946) and unknown CRS: no member.
        write_all(
            "memory://geojson_writer/wgs84.geojson",
            vec![at(1, 2.0, Some(4326)), at(2, 3.0, None)],
        );
        let v: serde_json::Value =
            serde_json::from_str(&read_back("memory://geojson_writer/wgs84.geojson")).unwrap();
        assert!(v.get("crs").is_none());

        // Mixed: the run fails naming the feature and both codes, and nothing is written.
        let ctx = NodeContext::standalone("t");
        let mut w = sink(serde_json::json!({ "path": "memory://geojson_writer/mixed.geojson" }));
        let r = w
            .write(
                0,
                vec![at(1, 2.0, Some(4326)), at(7, 652_301.5, Some(2154))],
                &ctx,
            )
            .and_then(|()| w.finish(&ctx));
        let e = r.expect_err("mixed CRS must fail").to_string();
        assert!(
            e.contains("feature 7 is in EPSG:2154") && e.contains("EPSG:4326"),
            "{e}"
        );
        drop(w);
        assert!(
            sluice_runtime::testing::read_bytes("memory://geojson_writer/mixed.geojson").is_err()
        );
    }

    #[test]
    fn no_features_give_an_empty_collection_and_partitions_are_collections() {
        write_all("memory://geojson_writer/empty.geojson", Vec::new());
        assert_eq!(
            read_back("memory://geojson_writer/empty.geojson"),
            "{\"type\":\"FeatureCollection\",\"features\":[\n]}\n"
        );
        let ctx = NodeContext::standalone("t");
        let mut w = sink(serde_json::json!({
            "path": "memory://geojson_writer/by/{k}.geojson",
            "max_open_files": 1
        }));
        let f = |id: u64, k: &str| Feature::from_pairs(id, [("k", Value::from(k))]);
        w.write(0, vec![f(0, "a"), f(1, "b/../c"), f(2, "a")], &ctx)
            .unwrap();
        w.finish(&ctx).unwrap();
        w.commit().unwrap();
        let mut names: Vec<String> = sluice_runtime::store::list("memory://geojson_writer/by")
            .unwrap()
            .into_iter()
            .map(|e| e.location)
            .collect();
        names.sort();
        assert_eq!(
            names,
            vec![
                "memory://geojson_writer/by/a.geojson",
                "memory://geojson_writer/by/a.part2.geojson",
                "memory://geojson_writer/by/b_.._c.geojson",
            ]
        );
        for n in &names {
            let (back, _) = read_geojson(n);
            assert_eq!(back.len(), 1, "{n}");
        }
    }

    #[test]
    fn bad_params_are_located_and_abort_leaves_nothing() {
        for (params, path) in [
            (serde_json::json!({"path": "out/{id}/"}), "path"),
            (serde_json::json!({"path": "out/{a.geojson"}), "path"),
            (
                serde_json::json!({"path": "x", "max_open_files": 0}),
                "max_open_files",
            ),
            (serde_json::json!({"path": "x", "pretty": true}), "pretty"),
        ] {
            let err = (SPEC.build)(&BuildContext {
                node_id: "t",
                params: &params,
            })
            .err()
            .unwrap();
            assert!(
                matches!(err, ActionError::Param { path: ref p, .. } if p == path),
                "{err:?}"
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let ctx = NodeContext::standalone("t");
        let mut w =
            sink(serde_json::json!({"path": dir.path().join("x.geojson").to_string_lossy()}));
        let rows: Vec<Feature> = (0..20_000)
            .map(|i| Feature::from_pairs(i, [(REJECTION_REASON, Value::Int(i as i64))]))
            .collect();
        w.write(0, rows, &ctx).unwrap();
        w.abort();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }
}
