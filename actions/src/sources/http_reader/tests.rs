//! `http_reader` against the test server (`tests/http/stac_server.py`): skipped with a
//! notice where `python3` is missing. Every run goes through the harness, under its timeout.

use serde_json::json;
use sluice_runtime::testing::stac_server::StacServer;
use sluice_runtime::testing::{param_error_path, run_source};
use sluice_runtime::{Feature, Value};

use super::SPEC;

fn ints(features: &[Feature], name: &str) -> Vec<i64> {
    features
        .iter()
        .map(|f| f.get(name).and_then(Value::as_i64).unwrap_or(-1))
        .collect()
}

fn reason(f: &Feature) -> String {
    f.get("_rejection_reason")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

#[test]
fn answers_come_out_in_request_order_while_requests_overlap() {
    let Some(server) = StacServer::start(&["--page-size", "10", "--latency-ms", "40"]) else {
        return;
    };
    let out = run_source(
        &SPEC,
        json!({
            "url": format!("{}/pages/{{page}}.json", server.url()),
            "range": { "page": [0, 23] },
            "concurrency": 8,
        }),
    )
    .unwrap();
    let features = out.port("default");
    assert_eq!(ints(features, "id"), (0..240).collect::<Vec<_>>());
    assert_eq!(
        features.iter().map(Feature::id).collect::<Vec<_>>(),
        (0..240).collect::<Vec<u64>>()
    );
    assert!(out.port("rejected").is_empty());
    let requests = server.requests();
    assert_eq!(requests.len(), 24);
    let peak = requests
        .iter()
        .filter_map(|r| r["in_flight"].as_u64())
        .max()
        .unwrap();
    assert!((2..=8).contains(&peak), "requests in flight at most {peak}");
}

#[test]
fn each_format_is_read_by_its_reader() {
    let Some(server) = StacServer::start(&["--page-size", "3"]) else {
        return;
    };
    let base = server.url();
    for ext in ["json", "jsonl", "geojson", "csv"] {
        let out = run_source(&SPEC, json!({ "url": format!("{base}/pages/1.{ext}") })).unwrap();
        let features = out.port("default");
        assert_eq!(ints(features, "id"), vec![3, 4, 5], "{ext}");
        assert_eq!(
            features[1].get("name").and_then(Value::as_str),
            Some("r4"),
            "{ext}"
        );
        let geometry = features[0].geometry();
        assert_eq!(geometry.is_some(), ext == "geojson", "{ext}");
        if let Some(g) = geometry {
            assert_eq!(g.crs, Some(4326));
        }
    }
    // reader_options reach the reader: a JSON geometry field.
    let out = run_source(
        &SPEC,
        json!({
            "url": format!("{base}/pages/0.csv"),
            "format": "csv",
            "reader_options": { "geometry": { "x": "x", "y": "y" }, "crs": 4326 },
        }),
    )
    .unwrap();
    assert!(out.port("default")[2].geometry().is_some());
}

#[test]
fn failed_pages_are_rejected_with_url_and_status_or_fail_the_run() {
    let Some(server) = StacServer::start(&["--page-size", "2"]) else {
        return;
    };
    let base = server.url();
    let urls = json!([
        format!("{base}/pages/0.json"),
        format!("{base}/status/404"),
        format!("{base}/pages/1.json"),
    ]);
    let out = run_source(&SPEC, json!({ "url": urls.clone(), "retries": 0 })).unwrap();
    assert_eq!(ints(out.port("default"), "id"), vec![0, 1, 2, 3]);
    let rejected = out.port("rejected");
    assert_eq!(rejected.len(), 1);
    assert_eq!(
        rejected[0].get("url").and_then(Value::as_str),
        Some(format!("{base}/status/404").as_str())
    );
    assert_eq!(rejected[0].get("status"), Some(&Value::Int(404)));
    assert!(
        reason(&rejected[0]).contains("HTTP 404"),
        "{}",
        reason(&rejected[0])
    );
    // The rejected page keeps its place: after page 0's features, before page 1's.
    assert_eq!(rejected[0].id(), 2);

    let err = run_source(
        &SPEC,
        json!({ "url": urls, "retries": 0, "on_error": "fail" }),
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains(&format!("{base}/status/404")), "{err}");
    assert!(err.contains("HTTP 404"), "{err}");
}

#[test]
fn a_503_is_retried_and_then_succeeds() {
    let Some(server) = StacServer::start(&["--page-size", "2"]) else {
        return;
    };
    // /status/503 never recovers: the retries run out and the page is rejected, after
    // 1 + 2 tries.
    let out = run_source(
        &SPEC,
        json!({ "url": format!("{}/status/503", server.url()), "retries": 2 }),
    )
    .unwrap();
    assert_eq!(out.port("rejected").len(), 1);
    let tries = server
        .requests()
        .iter()
        .filter(|r| r["path"] == "/status/503")
        .count();
    assert_eq!(tries, 3);
}

#[test]
fn bad_answers_are_rejected_pages_never_a_hang() {
    let Some(server) = StacServer::start(&["--page-size", "2"]) else {
        return;
    };
    let base = server.url();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let t0 = std::time::Instant::now();
    let out = run_source(
        &SPEC,
        json!({
            "url": [
                format!("{base}/redirect-file"),
                format!("{base}/huge"),
                format!("{base}/huge-chunked"),
                format!("{base}/slow"),
                format!("{}/pages/0.json", base.replace("http://", "https://")),
                format!("https://127.0.0.1:{closed}/x"),
                // A TLS URL whose host no DNS knows (`.invalid` is reserved).
                "https://stac.invalid/x".to_string(),
                format!("{base}/redirect-ok"),
            ],
            "retries": 0,
            "timeout": 2,
            "max_response_bytes": 1_000_000,
            "concurrency": 4,
        }),
    )
    .unwrap();
    assert!(t0.elapsed() < std::time::Duration::from_secs(30));
    // The last URL redirects to a page that reads.
    assert_eq!(ints(out.port("default"), "id"), vec![0, 1]);
    let reasons: Vec<String> = out.port("rejected").iter().map(reason).collect();
    assert_eq!(reasons.len(), 7, "{reasons:#?}");
    assert!(
        reasons[0].contains("redirect to file:///etc/passwd"),
        "{}",
        reasons[0]
    );
    assert!(
        reasons[1].contains("larger than the limit of 1000000 bytes"),
        "{}",
        reasons[1]
    );
    assert!(
        reasons[2].contains("larger than the limit"),
        "{}",
        reasons[2]
    );
    assert!(reasons[3].contains("timeout"), "{}", reasons[3]);
    assert!(
        reasons[4].starts_with("https://127.0.0.1:"),
        "{}",
        reasons[4]
    );
    assert!(
        reasons[4].contains("TLS handshake failed"),
        "{}",
        reasons[4]
    );
    assert!(
        reasons[5].to_lowercase().contains("connection refused"),
        "{}",
        reasons[5]
    );
    // No network, no DNS: a clear error or the timeout, never a hang.
    assert!(
        reasons[6].starts_with("https://stac.invalid/x: ")
            && (reasons[6].contains("host not found") || reasons[6].contains("timeout")),
        "{}",
        reasons[6]
    );
}

#[test]
fn a_malformed_answer_is_a_rejected_page_named_by_its_url() {
    let Some(server) = StacServer::start(&["--fault", "malformed-token:0"]) else {
        return;
    };
    // The search page at token 0 is truncated JSON.
    let url = format!("{}/search", server.url());
    let out = run_source(&SPEC, json!({ "url": url.clone(), "format": "geojson" })).unwrap();
    let rejected = out.port("rejected");
    assert_eq!(rejected.len(), 1);
    let text = reason(&rejected[0]);
    assert!(text.starts_with(&url), "{text}");
    assert!(!text.contains("sluice-spill"), "{text}");
}

#[test]
fn parameters_are_checked_where_they_are_written() {
    let path = |p| param_error_path(&SPEC, p);
    assert_eq!(
        path(json!({ "url": "http://x/", "concurrency": 65 })),
        "concurrency"
    );
    assert_eq!(
        path(json!({ "url": "http://x/", "concurrency": 0 })),
        "concurrency"
    );
    assert_eq!(path(json!({ "url": "file:///etc/passwd" })), "url");
    assert_eq!(path(json!({ "url": ["http://x/", "ftp://y/"] })), "url[1]");
    assert_eq!(path(json!({ "url": "http://x/{page}" })), "url");
    assert_eq!(
        path(json!({ "url": "http://x/", "range": { "page": [1, 3] } })),
        "range.page"
    );
    assert_eq!(
        path(json!({ "url": "http://x/{p}", "range": { "p": [3, 1] } })),
        "range.p"
    );
    assert_eq!(path(json!({ "url": "http://x/", "timeout": 0 })), "timeout");
    assert_eq!(
        path(json!({ "url": "http://x/", "headers": { "Bad Name": "v" } })),
        "headers.Bad Name"
    );
    assert_eq!(
        path(json!({ "url": "http://x/", "reader_options": { "path": "y" } })),
        "reader_options.path"
    );
    assert!(
        path(json!({ "url": "http://x/", "format": "csv", "reader_options": { "nope": 1 } }))
            .starts_with("reader_options")
    );
}

#[test]
fn a_missing_token_variable_fails_naming_the_variable_only() {
    let Some(server) = StacServer::start(&[]) else {
        return;
    };
    let err = run_source(
        &SPEC,
        json!({
            "url": format!("{}/echo", server.url()),
            "headers": { "Authorization": { "env": "SLUICE_TEST_UNSET_TOKEN_VAR", "prefix": "Bearer " } },
        }),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains(
            "header Authorization: environment variable SLUICE_TEST_UNSET_TOKEN_VAR is not set"
        ),
        "{err}"
    );
}
