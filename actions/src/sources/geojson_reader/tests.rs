//! Tests of `geojson_reader`.

use super::*;
use crate::sources::test_support::{put, read_pair};

fn reasons(rejected: &[Feature]) -> Vec<String> {
    rejected
        .iter()
        .map(|f| f.get(REJECTION_REASON).unwrap().to_string())
        .collect()
}

const COLLECTION: &str = r#"{
      "features": [
        {"type": "Feature", "id": "a1", "bbox": [0, 0, 1, 1],
         "properties": {"name": "one", "n": 1, "tags": {"k": [1, 2]}},
         "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}},
        {"type": "Feature", "id": 7, "properties": {"name": "two", "n": 2.5, "tags": null},
         "geometry": null},
        {"type": "Feature", "id": 8, "properties": {"id": "own", "name": "three"},
         "geometry": {"type": "MultiPoint", "coordinates": [[1.5, 2.25], [3, 4]]}}
      ],
      "type": "FeatureCollection",
      "crs": {"ignored": true}
    }"#;

#[test]
fn reads_a_feature_collection() {
    put("memory://geojson_reader/fc.geojson", COLLECTION.as_bytes());
    let (ok, rejected) = read_pair(
        &SPEC,
        serde_json::json!({"path": "memory://geojson_reader/fc.geojson", "crs": 3857}),
    )
    .unwrap();
    assert!(rejected.is_empty(), "{:?}", reasons(&rejected));
    assert_eq!(ok.len(), 3);
    assert_eq!(ok[0].get("id"), Some(&Value::from("a1")));
    assert_eq!(ok[0].get("name"), Some(&Value::from("one")));
    assert_eq!(ok[0].get("tags").unwrap().to_string(), "{\"k\":[1,2]}");
    assert!(Arc::ptr_eq(ok[0].schema(), ok[1].schema()));
    assert_eq!(ok[1].get("id"), Some(&Value::Int(7)));
    assert_eq!(ok[1].get("n"), Some(&Value::Float(2.5)));
    assert!(ok[1].geometry().is_none());
    assert_eq!(
        ok[2].get("id"),
        Some(&Value::from("own")),
        "a property id wins over the feature id"
    );
    let g = ok[0].geometry().unwrap();
    assert_eq!(g.crs, Some(3857));
    assert!(matches!(g.geom, geo_types::Geometry::Polygon(_)));
    assert_eq!(
        ok[2].geometry().unwrap().geom,
        geo_types::MultiPoint::from(vec![(1.5, 2.25), (3.0, 4.0)]).into()
    );
    assert_eq!(
        ok.iter().map(Feature::id).collect::<Vec<_>>(),
        vec![0, 1, 2]
    );
}

#[test]
fn reads_a_single_feature_and_sequences() {
    put(
        "memory://geojson_reader/one.json",
        br#"{"type": "Feature", "properties": {"a": 1}, "geometry": {"type": "Point", "coordinates": [1, 2]}}"#,
    );
    let (ok, _) = read_pair(
        &SPEC,
        serde_json::json!({"path": "memory://geojson_reader/one.json"}),
    )
    .unwrap();
    assert_eq!(ok.len(), 1);
    assert_eq!(ok[0].geometry().unwrap().crs, Some(4326));

    let seq = "\x1e{\"type\":\"Feature\",\"properties\":{\"a\":1},\"geometry\":null}\n\
               \x1e{\"type\":\"Feature\",\"properties\":{\"a\":2},\"geometry\":{\"type\":\"Point\",\"coordinates\":[5,6]}}\n\
               {\"type\":\"Feature\",\"properties\":null,\"geometry\":null}\n";
    put("memory://geojson_reader/seq.geojsons", seq.as_bytes());
    let (ok, rejected) = read_pair(
        &SPEC,
        serde_json::json!({"path": "memory://geojson_reader/seq.geojsons"}),
    )
    .unwrap();
    assert!(rejected.is_empty(), "{:?}", reasons(&rejected));
    assert_eq!(ok.len(), 3);
    assert_eq!(ok[1].get("a"), Some(&Value::Int(2)));
    assert_eq!(ok[2].schema().len(), 0);
}

#[test]
fn bad_features_are_rejected_and_bad_json_is_located() {
    let text = r#"{"type": "FeatureCollection", "features": [
            {"type": "Feature", "properties": {"a": 1}, "geometry": {"type": "Point", "coordinates": "x"}},
            {"type": "Feature", "properties": {"a": 2}, "geometry": {"type": "Circle", "coordinates": [0, 0]}},
            5,
            {"type": "Thing", "properties": {"a": 3}},
            {"type": "Feature", "properties": [1], "geometry": null},
            {"type": "Feature", "properties": {"a": 4}, "geometry": {"type": "LineString", "coordinates": [[0, 0], [1, 1]]}}
        ]}"#;
    put("memory://geojson_reader/bad.geojson", text.as_bytes());
    let (ok, rejected) = read_pair(
        &SPEC,
        serde_json::json!({"path": "memory://geojson_reader/bad.geojson"}),
    )
    .unwrap();
    assert_eq!(ok.len(), 1);
    assert_eq!(ok[0].get("a"), Some(&Value::Int(4)));
    assert_eq!(ok[0].id(), 5, "ids count rejected features too");
    let r = reasons(&rejected);
    assert_eq!(r.len(), 5, "{r:?}");
    assert!(
        r[0].starts_with("memory://geojson_reader/bad.geojson: feature 0: geometry: "),
        "{}",
        r[0]
    );
    assert_eq!(rejected[0].get("a"), Some(&Value::Int(1)));
    assert!(r[1].contains("feature 1: geometry: "), "{}", r[1]);
    assert!(
        r[2].ends_with("feature 2: expected a Feature, found a number"),
        "{}",
        r[2]
    );
    assert!(
        r[3].ends_with("feature 3: expected a Feature, found type \"Thing\""),
        "{}",
        r[3]
    );
    assert_eq!(rejected[3].get("a"), Some(&Value::Int(3)));
    assert!(
        r[4].ends_with("feature 4: properties: expected an object, found an array"),
        "{}",
        r[4]
    );

    put(
        "memory://geojson_reader/broken.geojson",
        b"{\"type\": \"FeatureCollection\", \"features\": [\n{\"type\": \"Feature\", \"properties\": {}, \"geometry\": null},\n{\"type\": }]}",
    );
    let err = read_pair(
        &SPEC,
        serde_json::json!({"path": "memory://geojson_reader/broken.geojson"}),
    )
    .unwrap_err();
    match err {
        ActionError::Data { location, .. } => {
            assert_eq!(
                location.as_deref(),
                Some("memory://geojson_reader/broken.geojson:3:10")
            )
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn many_files_in_order() {
    for i in 0..9 {
        let features: Vec<String> = (0..(i * 200))
            .map(|r| {
                format!(
                    "{{\"type\":\"Feature\",\"properties\":{{\"f\":{i},\"r\":{r}}},\"geometry\":{{\"type\":\"Point\",\"coordinates\":[{r},{i}]}}}}"
                )
            })
            .collect();
        let text = format!(
            "{{\"type\":\"FeatureCollection\",\"features\":[{}]}}",
            features.join(",")
        );
        put(
            &format!("memory://geojson_reader/many/{i}.geojson"),
            text.as_bytes(),
        );
    }
    let (seq, _) = read_pair(
        &SPEC,
        serde_json::json!({"path": "memory://geojson_reader/many", "read_ahead": 1}),
    )
    .unwrap();
    let (par, _) = read_pair(
        &SPEC,
        serde_json::json!({"path": "memory://geojson_reader/many"}),
    )
    .unwrap();
    assert_eq!(seq.len(), (0..9).map(|i| i * 200).sum::<usize>());
    let key = |f: &Feature| (f.id(), f.values().to_vec(), f.geometry().cloned());
    assert_eq!(
        seq.iter().map(key).collect::<Vec<_>>(),
        par.iter().map(key).collect::<Vec<_>>()
    );
}

#[test]
fn a_feature_collection_without_features_is_an_error() {
    put(
        "memory://geojson_reader/nofeatures.geojson",
        br#"{"type": "FeatureCollection", "feature": []}"#,
    );
    match read_pair(
        &SPEC,
        serde_json::json!({"path": "memory://geojson_reader/nofeatures.geojson"}),
    ) {
        Err(ActionError::Data { location, message }) => {
            assert_eq!(
                location.as_deref(),
                Some("memory://geojson_reader/nofeatures.geojson")
            );
            assert!(message.contains("without a `features` array"), "{message}");
        }
        other => panic!("unexpected {:?}", other.map(|(a, b)| (a.len(), b.len()))),
    }
    // An empty `features` array is a real, empty collection.
    put(
        "memory://geojson_reader/empty.geojson",
        br#"{"type": "FeatureCollection", "features": []}"#,
    );
    let (ok, rejected) = read_pair(
        &SPEC,
        serde_json::json!({"path": "memory://geojson_reader/empty.geojson"}),
    )
    .unwrap();
    assert!(ok.is_empty() && rejected.is_empty());
}

#[test]
fn a_collection_s_crs_member_tags_its_features_unless_the_parameter_says_otherwise() {
    let text = r#"{"type":"FeatureCollection","crs":{"type":"name","properties":{"name":"urn:ogc:def:crs:EPSG::2154"}},"features":[
{"type":"Feature","properties":{"a":1},"geometry":{"type":"Point","coordinates":[652301.5,6861302.7]}}]}"#;
    put("memory://geojson_reader/crs.geojson", text.as_bytes());
    let crs_of = |params: serde_json::Value| {
        let (ok, _) = read_pair(&SPEC, params).unwrap();
        ok[0].geometry().unwrap().crs
    };
    let path = "memory://geojson_reader/crs.geojson";
    assert_eq!(crs_of(serde_json::json!({ "path": path })), Some(2154));
    assert_eq!(
        crs_of(serde_json::json!({ "path": path, "crs": "EPSG:27700" })),
        Some(27700)
    );
    // No member: RFC 7946's WGS 84.
    put(
        "memory://geojson_reader/plain.geojson",
        br#"{"type":"FeatureCollection","features":[{"type":"Feature","properties":{},"geometry":{"type":"Point","coordinates":[1,2]}}]}"#,
    );
    assert_eq!(
        crs_of(serde_json::json!({ "path": "memory://geojson_reader/plain.geojson" })),
        Some(4326)
    );
    // A member naming nothing known fails, naming the file.
    put(
        "memory://geojson_reader/odd.geojson",
        br#"{"type":"FeatureCollection","crs":{"type":"name","properties":{"name":"my own"}},"features":[]}"#,
    );
    let e = read_pair(
        &SPEC,
        serde_json::json!({ "path": "memory://geojson_reader/odd.geojson" }),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("odd.geojson") && e.contains("not a CRS sluice knows"),
        "{e}"
    );
}

// ---------------------------------------------------------------------------------------------
// Slices of one file (partitioned runs)
// ---------------------------------------------------------------------------------------------

use crate::sources::test_support::{assert_slices_make_the_whole, read_slice};
use sluice_runtime::Slice;
use std::io::Write;

/// Features of every kind: good ones with ids and nested properties, null and bad
/// geometries, elements that are not Features, properties that are not objects.
fn geojson_features(n: u32) -> Vec<String> {
    (0..n)
        .map(|i| match i % 8 {
            0 => format!(r#"{{"type": "Feature", "id": {i}, "properties": {{"n": {i}, "s": "a\nb"}}, "geometry": {{"type": "Point", "coordinates": [{i}, 1.5]}}}}"#),
            1 => format!(r#"{{"type": "Feature", "properties": {{"n": {i}, "t": {{"k": [1, null]}}}}, "geometry": null}}"#),
            2 => format!(r#"{{"geometry": {{"type": "Point"}}, "type": "Feature", "properties": {{"n": {i}}}}}"#),
            3 => format!("{i}"),
            4 => format!(r#"{{"type": "Feature", "properties": [{i}], "geometry": null}}"#),
            5 => format!(r#"{{"type": "Polygon", "properties": {{"n": {i}}}}}"#),
            _ => format!(r#"{{"type": "Feature", "id": "f{i}", "bbox": [0, 0, 1, 1], "properties": {{"n": {i}, "f": {i}.25}}, "geometry": {{"type": "LineString", "coordinates": [[0, 0], [{i}, 1]]}}}}"#),
        })
        .collect()
}

#[test]
fn slices_of_a_feature_collection_are_the_whole_read() {
    let text = format!(
        "\u{feff}\n{{\"type\": \"FeatureCollection\", \"name\": \"x\", \"crs\": {{\"type\": \"name\", \"properties\": {{\"name\": \"urn:ogc:def:crs:EPSG::2154\"}}}},\n \"features\": [\n{}\n], \"bbox\": [0, 0, 1, 1]}}\n",
        geojson_features(400).join(",\n")
    );
    put("memory://geojson_reader/slices/fc.geojson", text.as_bytes());
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(text.as_bytes()).unwrap();
    put(
        "memory://geojson_reader/slices/fc.geojson.gz",
        &gz.finish().unwrap(),
    );
    for path in ["fc.geojson", "fc.geojson.gz"] {
        let params =
            serde_json::json!({ "path": format!("memory://geojson_reader/slices/{path}") });
        let (ok, rejected) = assert_slices_make_the_whole(&SPEC, params, 1..=7);
        assert_eq!(ok.len() + rejected.len(), 400);
        assert_eq!((ok.len(), rejected.len()), (200, 200));
        assert_eq!(
            ok[0].geometry().unwrap().crs,
            Some(2154),
            "the collection's crs"
        );
        let last = reasons(&rejected).pop().unwrap();
        assert!(
            last.ends_with(": feature 397: expected a Feature, found type \"Polygon\""),
            "{last}"
        );
    }
}

#[test]
fn slices_of_a_feature_sequence_are_the_whole_read() {
    // One text a line, some after a record separator, and collections among them: the
    // second collection's crs member tags only what follows it.
    let mut text = String::new();
    for (k, f) in geojson_features(120).iter().enumerate() {
        if k % 5 == 0 {
            text.push('\u{1e}');
        }
        text.push_str(f);
        text.push('\n');
        if k == 40 {
            text.push_str(&format!(
                "{{\"type\": \"FeatureCollection\", \"features\": [{}]}}\n",
                geojson_features(10).join(", ")
            ));
        }
        if k == 80 {
            text.push_str(&format!(
                "{{\"type\": \"FeatureCollection\", \"properties\": {{\"p\": 1}}, \"features\": [{}], \"crs\": {{\"type\": \"name\", \"properties\": {{\"name\": \"EPSG:3857\"}}}}}}\n",
                geojson_features(10).join(", ")
            ));
        }
    }
    put(
        "memory://geojson_reader/slices/seq.geojson",
        text.as_bytes(),
    );
    let params = serde_json::json!({ "path": "memory://geojson_reader/slices/seq.geojson" });
    let (ok, rejected) = assert_slices_make_the_whole(&SPEC, params, 1..=7);
    assert_eq!(ok.len() + rejected.len(), 140);
    assert!(
        ok.iter()
            .any(|f| f.geometry().is_some_and(|g| g.crs == Some(3857)))
    );
}

#[test]
fn every_slice_of_small_geojson_files_is_exact() {
    let files: &[(&str, &str)] = &[
        ("empty", ""),
        ("blank", " \n "),
        (
            "empty-fc",
            r#"{"type": "FeatureCollection", "features": []}"#,
        ),
        (
            "one",
            r#"{"type": "Feature", "properties": {"a": 1}, "geometry": null}"#,
        ),
        ("no-type", "{}"),
        (
            "scalars",
            "1 \"x\" [2] null {\"type\": \"Feature\", \"properties\": null}",
        ),
        (
            "fc",
            r#"{"features": [{"type": "Feature", "id": 1, "properties": {}}, 7, {"type": "Feature"}], "type": "FeatureCollection"}"#,
        ),
    ];
    for (name, text) in files {
        let path = format!("memory://geojson_reader/small/{name}.geojson");
        put(&path, text.as_bytes());
        let params = serde_json::json!({ "path": path });
        assert_slices_make_the_whole(&SPEC, params, 1..=text.len() as u64 + 2);
    }
}

#[test]
fn an_object_with_features_that_is_no_collection_is_read_by_the_first_slice() {
    // Its `properties` come before its `features`: which feature it is is known only after.
    let text = r#"{"type": "Feature", "properties": {"a": 1}, "features": [{"type": "Feature", "properties": {"b": 2}}], "geometry": null}
{"type": "Feature", "properties": {"c": 3}}"#;
    put(
        "memory://geojson_reader/slices/odd.geojson",
        text.as_bytes(),
    );
    let params = serde_json::json!({ "path": "memory://geojson_reader/slices/odd.geojson" });
    let (ok, _) = assert_slices_make_the_whole(&SPEC, params.clone(), 1..=4);
    assert_eq!(ok.len(), 3);
    let (first, _) = read_slice(&SPEC, params.clone(), Slice::new(0, 3).unwrap()).unwrap();
    assert_eq!(first.len(), 3);
    let (second, _) = read_slice(&SPEC, params, Slice::new(1, 3).unwrap()).unwrap();
    assert!(second.is_empty());
}

#[test]
fn every_slice_of_a_broken_file_fails_like_the_whole_read() {
    let features = geojson_features(30).join(",\n");
    for (name, text) in [
        // Invalid JSON in a feature.
        (
            "syntax",
            format!(
                r#"{{"type": "FeatureCollection", "features": [{features}, {{"type": oops}}]}}"#
            ),
        ),
        // A number no f64 holds, in the collection's own properties.
        (
            "range",
            format!(
                r#"{{"type": "FeatureCollection", "features": [{features}], "properties": {{"x": 1e400}}}}"#
            ),
        ),
        // A collection without features, after the first one.
        (
            "no-features",
            format!(
                r#"{{"type": "FeatureCollection", "features": [{features}]}} {{"type": "FeatureCollection"}}"#
            ),
        ),
    ] {
        let path = format!("memory://geojson_reader/slices/broken-{name}.geojson");
        put(&path, text.as_bytes());
        let params = serde_json::json!({ "path": path });
        let whole = read_pair(&SPEC, params.clone()).unwrap_err().to_string();
        for n in 1..=5 {
            for i in 0..n {
                let e = read_slice(&SPEC, params.clone(), Slice::new(i, n).unwrap()).unwrap_err();
                assert_eq!(e.to_string(), whole, "{name}: slice {i}/{n}");
            }
        }
    }
}

#[test]
fn several_geojson_files_are_shared_out_whole() {
    for (k, name) in ["a", "b", "c"].iter().enumerate() {
        put(
            &format!("memory://geojson_reader/shared/{name}.geojson"),
            format!(
                "{{\"type\": \"FeatureCollection\", \"features\": [{}]}}",
                geojson_features(k as u32 * 5 + 1).join(",")
            )
            .as_bytes(),
        );
    }
    let params = serde_json::json!({ "path": "memory://geojson_reader/shared" });
    assert_slices_make_the_whole(&SPEC, params.clone(), 1..=5);
    let (ok, rejected) = read_slice(&SPEC, params, Slice::new(2, 3).unwrap()).unwrap();
    assert_eq!(ok.len() + rejected.len(), 11, "all of c");
}
