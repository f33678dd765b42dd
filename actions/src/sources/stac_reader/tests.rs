//! `stac_reader` against the test STAC API (`tests/http/stac_server.py`): skipped with a
//! notice where `python3` is missing. Runs go through the harness, under its timeout.

use std::time::Duration;

use serde_json::json;
use sluice_runtime::journal::JournalOptions;
use sluice_runtime::testing::stac_server::StacServer;
use sluice_runtime::testing::{build_source, param_error_path, run_source};
use sluice_runtime::{Emitter, Feature, NodeContext, Value};

use super::SPEC;

fn ids(features: &[Feature]) -> Vec<String> {
    features
        .iter()
        .map(|f| {
            f.get("id")
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_string()
        })
        .collect()
}

fn expected(range: std::ops::Range<usize>, collection: &str) -> Vec<String> {
    range.map(|i| format!("{collection}-{i:06}")).collect()
}

fn reason(f: &Feature) -> String {
    f.get("_rejection_reason")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn search(server: &StacServer, extra: serde_json::Value) -> serde_json::Value {
    let mut p = json!({ "url": server.url(), "concurrency": 4, "retries": 1 });
    for (k, v) in extra.as_object().unwrap() {
        p[k] = v.clone();
    }
    p
}

#[test]
fn items_become_features_with_typed_datetimes_assets_and_geometry() {
    let Some(server) = StacServer::start(&["--items", "45", "--page-size", "10"]) else {
        return;
    };
    let out = run_source(
        &SPEC,
        search(&server, json!({ "include": ["bbox", "links"] })),
    )
    .unwrap();
    let features = out.port("default");
    assert_eq!(ids(features), expected(0..45, "sentinel-2-l2a"));
    let f = &features[7];
    assert_eq!(
        f.get("collection").and_then(Value::as_str),
        Some("sentinel-2-l2a")
    );
    assert!(
        matches!(f.get("datetime"), Some(Value::DateTime(_))),
        "{f:?}"
    );
    assert!(matches!(f.get("created"), Some(Value::DateTime(_))));
    assert_eq!(f.get("eo:cloud_cover"), Some(&Value::Float(25.9)));
    assert_eq!(f.get("gsd"), Some(&Value::Int(10)));
    let Some(Value::Map(assets)) = f.get("assets") else {
        panic!("assets: {:?}", f.get("assets"));
    };
    assert!(assets.contains_key("visual"));
    assert!(matches!(f.get("bbox"), Some(Value::Array(b)) if b.len() == 4));
    assert!(matches!(f.get("links"), Some(Value::Array(_))));
    let g = f.geometry().expect("a geometry");
    assert_eq!(g.crs, Some(4326));
    let names: Vec<&str> = f.schema().names().iter().map(|n| &**n).collect();
    assert_eq!(&names[..3], &["id", "collection", "datetime"]);
    // 5 pages of 10, 10, 10, 10, 5.
    assert_eq!(server.requests().len(), 5);
}

#[test]
fn slices_and_collections_run_in_parallel_with_the_same_output_and_no_duplicates() {
    let Some(server) = StacServer::start(&[
        "--items",
        "400",
        "--page-size",
        "25",
        "--latency-ms",
        "20",
        "--collections",
        "a,b",
    ]) else {
        return;
    };
    // 400 items one every 79,056 s: the interval's five slices cut exactly at items 80,
    // 160, 240 and 320, which each belong to two slices.
    let params = |concurrency: usize, method: &str| {
        search(
            &server,
            json!({
                "collections": ["a", "b"],
                "datetime": "2024-01-01T00:00:00Z/2025-01-01T00:00:00Z",
                "chunks": 5,
                "method": method,
                "limit": 25,
                "concurrency": concurrency,
            }),
        )
    };
    let one = run_source(&SPEC, params(1, "get")).unwrap();
    let peak_one = server
        .requests()
        .iter()
        .filter_map(|r| r["in_flight"].as_u64())
        .max()
        .unwrap();
    let eight = run_source(&SPEC, params(8, "post")).unwrap();
    let features = eight.port("default");
    assert_eq!(ids(features), ids(one.port("default")));
    assert_eq!(features.len(), 400, "each item once");
    let mut unique = ids(features);
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 400);
    // Collection a's items first (slices in time order), then b's.
    assert_eq!(ids(&features[..3]), ["a-000000", "a-000002", "a-000004"]);
    assert_eq!(ids(&features[200..202]), ["b-000001", "b-000003"]);
    let peak = server
        .requests()
        .iter()
        .filter_map(|r| r["in_flight"].as_u64())
        .max()
        .unwrap();
    assert_eq!(peak_one, 1);
    assert!(peak >= 3, "requests overlapped: at most {peak}");
    // POST searches carried their bodies.
    assert!(
        server
            .requests()
            .iter()
            .any(|r| r["method"] == "POST" && r["body"].as_str().unwrap_or("").contains("\"a\""))
    );
}

#[test]
fn post_next_links_with_merge_are_followed() {
    let Some(server) = StacServer::start(&["--items", "30", "--page-size", "10", "--post-merge"])
    else {
        return;
    };
    let out = run_source(
        &SPEC,
        search(&server, json!({ "method": "post", "limit": 10 })),
    )
    .unwrap();
    assert_eq!(ids(out.port("default")), expected(0..30, "sentinel-2-l2a"));
    let bodies: Vec<String> = server
        .requests()
        .iter()
        .map(|r| r["body"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(bodies.len(), 3);
    assert!(
        bodies[2].contains("\"token\":20") && bodies[2].contains("\"limit\":10"),
        "{bodies:?}"
    );
}

#[test]
fn a_429_waits_for_retry_after_and_a_503_backs_off() {
    let Some(server) = StacServer::start(&[
        "--items",
        "30",
        "--page-size",
        "10",
        "--fault",
        "429:1:1",
        "--fault",
        "503:2",
    ]) else {
        return;
    };
    let out = run_source(&SPEC, search(&server, json!({ "retries": 3 }))).unwrap();
    assert_eq!(ids(out.port("default")), expected(0..30, "sentinel-2-l2a"));
    assert!(out.port("rejected").is_empty());
    let requests = server.requests();
    let statuses: Vec<u64> = requests
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses[..3], [429, 503, 200]);
    let waited = requests[1]["t"].as_f64().unwrap() - requests[0]["end"].as_f64().unwrap();
    assert!(waited >= 0.95, "Retry-After: 1 was honoured: {waited:.3} s");
}

#[test]
fn an_http_date_retry_after_is_honoured() {
    let Some(server) =
        StacServer::start(&["--items", "5", "--page-size", "10", "--fault", "429date:1"])
    else {
        return;
    };
    let out = run_source(&SPEC, search(&server, json!({}))).unwrap();
    assert_eq!(out.port("default").len(), 5);
    let requests = server.requests();
    let waited = requests[1]["t"].as_f64().unwrap() - requests[0]["end"].as_f64().unwrap();
    // The date has a one-second resolution: up to a second less than asked.
    assert!(waited >= 0.1, "{waited:.3} s");
}

#[test]
fn concurrency_drops_after_429s_and_the_run_still_completes() {
    let Some(server) = StacServer::start(&[
        "--items",
        "480",
        "--page-size",
        "20",
        "--latency-ms",
        "40",
        "--fault",
        "429-above:3:0",
    ]) else {
        return;
    };
    let out = run_source(
        &SPEC,
        search(
            &server,
            json!({
                "datetime": "2024-01-01T00:00:00Z/2025-01-01T00:00:00Z",
                "chunks": 8,
                "limit": 20,
                "concurrency": 8,
                "retries": 10,
            }),
        ),
    )
    .unwrap();
    assert_eq!(out.port("default").len(), 480);
    assert!(out.port("rejected").is_empty());
    let requests = server.requests();
    let first_429 = requests
        .iter()
        .filter(|r| r["status"] == 429)
        .map(|r| r["end"].as_f64().unwrap())
        .fold(f64::INFINITY, f64::min);
    assert!(first_429.is_finite(), "the server never said 429");
    let before = requests
        .iter()
        .filter(|r| r["t"].as_f64().unwrap() < first_429)
        .filter_map(|r| r["in_flight"].as_u64())
        .max()
        .unwrap_or(0);
    // Once what was in flight at the first 429 has drained, the limit is at most 4.
    let after = requests
        .iter()
        .filter(|r| r["t"].as_f64().unwrap() > first_429 + 0.5)
        .filter_map(|r| r["in_flight"].as_u64())
        .max()
        .unwrap_or(0);
    assert!(before > 3, "it started above the server's limit: {before}");
    assert!(after <= 4, "requests in flight after the 429s: {after}");
}

#[test]
fn a_page_that_keeps_failing_is_rejected_or_fails_the_run() {
    let Some(server) = StacServer::start(&[
        "--items",
        "60",
        "--page-size",
        "20",
        "--fault",
        "fail-token:20",
    ]) else {
        return;
    };
    let out = run_source(&SPEC, search(&server, json!({ "retries": 1 }))).unwrap();
    assert_eq!(ids(out.port("default")), expected(0..20, "sentinel-2-l2a"));
    let rejected = out.port("rejected");
    assert_eq!(rejected.len(), 1);
    let url = rejected[0].get("url").and_then(Value::as_str).unwrap();
    assert!(url.contains("token=20"), "{url}");
    assert_eq!(rejected[0].get("status"), Some(&Value::Int(500)));
    let err = run_source(
        &SPEC,
        search(&server, json!({ "retries": 0, "on_error": "fail" })),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("token=20") && err.contains("HTTP 500"),
        "{err}"
    );
}

#[test]
fn a_malformed_page_is_rejected_and_stops_its_chain() {
    let Some(server) = StacServer::start(&[
        "--items",
        "60",
        "--page-size",
        "20",
        "--fault",
        "malformed-token:20",
    ]) else {
        return;
    };
    let out = run_source(&SPEC, search(&server, json!({}))).unwrap();
    assert_eq!(ids(out.port("default")), expected(0..20, "sentinel-2-l2a"));
    let rejected = out.port("rejected");
    assert_eq!(rejected.len(), 1);
    let text = reason(&rejected[0]);
    assert!(
        text.contains("token=20") && text.contains("invalid JSON at line 1"),
        "{text}"
    );
}

#[test]
fn an_item_without_geometry_is_a_feature_without_geometry() {
    let Some(server) = StacServer::start(&["--items", "5", "--fault", "nogeom:3"]) else {
        return;
    };
    let out = run_source(&SPEC, search(&server, json!({}))).unwrap();
    let features = out.port("default");
    assert_eq!(features.len(), 5);
    assert!(features[3].geometry().is_none());
    assert!(features[2].geometry().is_some());
    assert!(out.port("rejected").is_empty());
}

#[test]
fn a_next_link_loop_is_detected_and_each_page_fetched_once() {
    let Some(server) = StacServer::start(&[
        "--items",
        "100",
        "--page-size",
        "20",
        "--fault",
        "loop-token:20",
    ]) else {
        return;
    };
    let out = run_source(&SPEC, search(&server, json!({}))).unwrap();
    assert_eq!(ids(out.port("default")), expected(0..40, "sentinel-2-l2a"));
    let rejected = out.port("rejected");
    assert_eq!(rejected.len(), 1);
    assert!(
        reason(&rejected[0]).contains("next-link loop"),
        "{}",
        reason(&rejected[0])
    );
    let tokens: Vec<u64> = server
        .requests()
        .iter()
        .filter_map(|r| r["token"].as_u64())
        .collect();
    assert_eq!(tokens, vec![0, 20]);
}

#[test]
fn a_static_catalogue_is_walked_over_files_and_http() {
    let Some(server) = StacServer::start(&["--items", "30", "--collections", "a,b"]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("python3")
        .arg(sluice_runtime::testing::stac_server::script())
        .args(["--items", "30", "--collections", "a,b", "--write-static"])
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    let catalog = dir.path().join("catalog.json");
    let files = run_source(
        &SPEC,
        json!({ "url": catalog.to_string_lossy(), "concurrency": 4 }),
    )
    .unwrap();
    let from_files = ids(files.port("default"));
    let mut want: Vec<String> = (0..30).step_by(2).map(|i| format!("a-{i:06}")).collect();
    want.extend((1..30).step_by(2).map(|i| format!("b-{i:06}")));
    assert_eq!(from_files, want);
    let http = run_source(
        &SPEC,
        json!({ "url": format!("{}/catalog/catalog.json", server.url()), "concurrency": 8 }),
    )
    .unwrap();
    assert_eq!(ids(http.port("default")), want);
    assert!(http.port("default")[0].geometry().is_some());
    // A missing item file is a rejected document, not a failed run.
    std::fs::remove_file(dir.path().join("a/items/a-000004.json")).unwrap();
    let files = run_source(&SPEC, json!({ "url": catalog.to_string_lossy() })).unwrap();
    assert_eq!(files.port("default").len(), 29);
    assert_eq!(files.port("rejected").len(), 1);
}

#[test]
fn a_journal_replays_completed_pages_on_resume() {
    let Some(server) = StacServer::start(&["--items", "50", "--page-size", "10"]) else {
        return;
    };
    let job = tempfile::tempdir().unwrap();
    let read = |resume: bool| {
        let mut source = build_source(&SPEC, search(&server, json!({}))).unwrap();
        let ctx =
            NodeContext::standalone("scenes").with_journal(JournalOptions::new(job.path(), resume));
        let mut out = Emitter::for_outputs(SPEC.outputs);
        source.run(&ctx, &mut out).unwrap();
        out.into_buffers().remove(0)
    };
    let first = read(false);
    assert_eq!(server.requests().len(), 5);
    let again = read(true);
    assert_eq!(ids(&again), ids(&first));
    assert_eq!(
        again.iter().map(Feature::id).collect::<Vec<_>>(),
        first.iter().map(Feature::id).collect::<Vec<_>>()
    );
    assert_eq!(server.requests().len(), 5, "nothing fetched again");
    // Without --resume the journal starts over.
    read(false);
    assert_eq!(server.requests().len(), 10);
    // A resume with other parameters is refused.
    let mut source = build_source(&SPEC, search(&server, json!({ "limit": 3 }))).unwrap();
    let ctx = NodeContext::standalone("scenes").with_journal(JournalOptions::new(job.path(), true));
    let err = source
        .run(&ctx, &mut Emitter::for_outputs(SPEC.outputs))
        .unwrap_err()
        .to_string();
    assert!(err.contains("other parameters"), "{err}");
    let _ = Duration::ZERO;
}

#[test]
fn parameters_are_checked_where_they_are_written() {
    let path = |p| param_error_path(&SPEC, p);
    assert_eq!(path(json!({ "url": "http://x", "chunks": 4 })), "chunks");
    assert_eq!(
        path(json!({ "url": "http://x", "chunks": 4, "datetime": "2024-01-01T00:00:00Z/.." })),
        "chunks"
    );
    assert_eq!(
        path(json!({ "url": "http://x", "datetime": "yesterday" })),
        "datetime"
    );
    assert_eq!(
        path(json!({ "url": "http://x", "bbox": [1, 2, 3] })),
        "bbox"
    );
    assert_eq!(path(json!({ "url": "data/api" })), "url");
    assert_eq!(
        path(json!({ "url": "http://x", "concurrency": 100 })),
        "concurrency"
    );
    assert_eq!(
        path(json!({ "url": "cat/catalog.json", "collections": ["a"] })),
        "url"
    );
}
