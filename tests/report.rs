//! `run --report` keeps a timeline per node and memory over time; `sluice report --html`
//! draws them.

use std::time::Duration;

use crate::util::{sluice, sort_workflow, stderr};

const T: Duration = Duration::from_secs(120);

/// Runs `wf.yaml` in `dir` with `extra` options and `--report run.json`; the report, parsed.
fn run_with_report(dir: &std::path::Path, extra: &[&str]) -> serde_json::Value {
    let mut args = vec!["run", "wf.yaml", "--quiet", "--report", "run.json"];
    args.extend_from_slice(extra);
    let o = sluice(dir, &args, T);
    assert!(o.status.success(), "{}", stderr(&o));
    serde_json::from_str(&std::fs::read_to_string(dir.join("run.json")).unwrap()).unwrap()
}

#[test]
fn a_spilling_run_s_report_draws_its_timeline_memory_and_edges() {
    let dir = tempfile::tempdir().unwrap();
    sort_workflow(dir.path(), 150_000);
    let report = run_with_report(dir.path(), &["--memory-limit", "24MB"]);
    // The sort ran, spilled, then finished, in that order and within the run.
    let order = &report["nodes"][1];
    let states: Vec<&str> = order["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["state"].as_str().unwrap())
        .collect();
    assert_eq!(states.first(), Some(&"running"), "{states:?}");
    assert!(states.contains(&"spilling"), "{states:?}");
    assert_eq!(states.last(), Some(&"finishing"), "{states:?}");
    let elapsed = report["elapsed_ms"].as_f64().unwrap();
    for span in order["timeline"].as_array().unwrap() {
        let (a, b) = (
            span["start_ms"].as_f64().unwrap(),
            span["end_ms"].as_f64().unwrap(),
        );
        assert!(
            0.0 <= a && a <= b && b <= elapsed + 1.0,
            "{span} in {elapsed} ms"
        );
    }
    let points = report["memory"]["points"].as_array().unwrap();
    assert!(!points.is_empty() && points.len() <= 2000);
    assert!(points.iter().any(|p| p["reserved"].as_u64() > Some(0)));

    let o = sluice(dir.path(), &["report", "run.json", "--html", "run.html"], T);
    assert!(o.status.success(), "{}", stderr(&o));
    let page = std::fs::read_to_string(dir.path().join("run.html")).unwrap();
    assert!(page.contains("data-node=\"order\" data-state=\"spilling\""));
    assert!(page.contains("data-node=\"order\" data-state=\"finishing\""));
    assert!(page.contains("<polyline class=\"rss\" points=\""));
    assert!(
        page.contains("class=\"spill\""),
        "a spill is marked on the memory chart"
    );
    assert!(
        page.contains("<td class=\"n\">150,000</td>"),
        "the edges' counts"
    );
    assert!(!page.contains("<script"), "no script");
    assert!(
        !page.contains("http://") && !page.contains("https://"),
        "nothing fetched"
    );
}

#[test]
fn report_refuses_what_is_not_a_report_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.json"), "{\"ok\": true}").unwrap();
    std::fs::write(dir.path().join("text.json"), "not json").unwrap();
    for (file, says) in [
        (
            "bad.json",
            "not a sluice run report: no number \"elapsed_ms\"",
        ),
        ("text.json", "expected ident"),
        ("missing.json", "No such file"),
    ] {
        let o = sluice(dir.path(), &["report", file, "--html", "out.html"], T);
        assert_eq!(o.status.code(), Some(1), "{file}");
        let err = stderr(&o);
        assert!(err.contains(file) && err.contains(says), "{file}: {err}");
        assert!(!dir.path().join("out.html").exists());
    }
}

/// Each node's busy time is its own thread's CPU plus the pool work done for it: the CSV
/// reader's row conversion and the writer's encoding land on the pool and are counted there;
/// no thread can use more CPU than it had wall time.
#[test]
fn the_report_gives_each_node_its_thread_and_pool_cpu_time() {
    let dir = tempfile::tempdir().unwrap();
    let o = sluice(
        dir.path(),
        &["generate", "w1", "--rows", "300000", "--out", "w1.csv"],
        T,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::write(
        dir.path().join("wf.yaml"),
        r#"
nodes:
  - { id: read, action: csv_reader, with: { path: w1.csv } }
  - id: value2
    action: attribute_manager
    with: { operations: [ { op: set, attribute: value2, expression: "value * 2" } ] }
  - { id: write, action: csv_writer, with: { path: out.csv } }
edges: [ "read -> value2", "value2 -> write" ]
"#,
    )
    .unwrap();
    let report = run_with_report(dir.path(), &["--threads", "2"]);
    let elapsed = report["elapsed_ms"].as_f64().unwrap();
    let mut pool_total = 0.0;
    for node in report["nodes"].as_array().unwrap() {
        let f = |k: &str| node[k].as_f64().unwrap();
        let (busy, thread, pool) = (f("busy_ms"), f("thread_cpu_ms"), f("pool_cpu_ms"));
        assert!((busy - thread - pool).abs() < 0.01, "{node}");
        assert!(thread > 0.0, "{node}");
        assert!(thread <= f("elapsed_ms") + 20.0, "{node}");
        pool_total += pool;
    }
    // Two pool threads cannot do more than twice the run's wall time of work.
    assert!(
        pool_total <= 2.0 * elapsed + 20.0,
        "{pool_total} in {elapsed}"
    );
    let node = |id: &str| {
        report["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["id"] == id)
            .unwrap()
            .clone()
    };
    assert!(node("read")["pool_cpu_ms"].as_f64().unwrap() > 0.0);
    assert!(node("write")["pool_cpu_ms"].as_f64().unwrap() > 0.0);
}
