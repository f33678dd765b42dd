//! Nothing vanishes silently: a `rejected` port with no edge is a warning when the workflow
//! loads, features rejected to it are reported (a warning, exit code 3 with `--strict`), and
//! a variable in an expression is a typed constant, never code.
//!
//! The condition is `value / threshold > 1` (`value > threshold` for a positive threshold):
//! `threshold=0` divides by zero on every row, an error only the run can see, since
//! `validate` refuses what fails on every feature by its types alone.

use std::path::Path;
use std::time::Duration;

use crate::util::{root, sluice};

const T: Duration = Duration::from_secs(120);

/// 2,000 places through a filter whose `rejected` port has no edge.
const WORKFLOW: &str = r#"
name: vanish
variables:
  threshold: 500
  out_dir: out
nodes:
  - { id: read, action: csv_reader, with: { path: PLACES } }
  - id: keep
    action: filter
    with: { expression: "value / ${threshold} > 1" }
  - { id: write, action: csv_writer, with: { path: "${out_dir}/kept.csv" } }
edges:
  - read -> keep
  - keep.passed -> write
"#;

fn setup() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let places = root().join("data/places.csv");
    let yaml = WORKFLOW.replace("PLACES", &format!("{:?}", places.display().to_string()));
    std::fs::write(dir.path().join("wf.yaml"), yaml).unwrap();
    dir
}

fn run(dir: &Path, extra: &[&str]) -> (i32, String, serde_json::Value) {
    let out = dir.join("out").display().to_string();
    let report = dir.join("report.json").display().to_string();
    let out_var = format!("out_dir={out}");
    let mut args = vec![
        "run", "wf.yaml", "--quiet", "--var", &out_var, "--report", &report,
    ];
    args.extend_from_slice(extra);
    let o = sluice(dir, &args, T);
    let stderr = String::from_utf8_lossy(&o.stderr).to_string();
    let report = std::fs::read_to_string(&report)
        .map(|r| serde_json::from_str(&r).unwrap())
        .unwrap_or(serde_json::Value::Null);
    (o.status.code().unwrap_or(-1), stderr, report)
}

fn kept(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("out/kept.csv"))
        .unwrap()
        .lines()
        .count()
        .saturating_sub(1)
}

#[test]
fn rejected_features_with_no_edge_are_a_warning_and_strict_fails() {
    let dir = setup();
    // `value / 0` fails on every row: all 2,000 are rejected, and dropped.
    let (code, stderr, report) = run(dir.path(), &["--var", "threshold=0"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stderr.contains(
            "warning: node \"keep\" rejected 2000 features and its \"rejected\" port has no edge"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("first reason: "), "{stderr}");
    let keep = report["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == "keep")
        .unwrap();
    assert_eq!(keep["features_in"], 2000);
    assert_eq!(keep["features_out"], 0);
    assert_eq!(keep["features_dropped"], 2000);
    assert_eq!(keep["dropped"][0]["port"], "rejected");
    assert_eq!(keep["dropped"][0]["features"], 2000);
    let reason = keep["dropped"][0]["first_reason"].as_str().unwrap();
    assert!(reason.contains("zero"), "{reason}");
    assert_eq!(kept(dir.path()), 0);

    let (code, stderr, _) = run(dir.path(), &["--var", "threshold=0", "--strict"]);
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains("--strict"), "{stderr}");

    // A run that rejects nothing is clean, strict or not: no warning at all (the ports with
    // no edge are `validate`'s to mention, and it does).
    let (code, stderr, report) = run(dir.path(), &["--strict"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(!stderr.contains("warning"), "{stderr}");
    let validate = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["validate", "wf.yaml"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&validate.stderr).to_string();
    let warnings: Vec<&str> = said.lines().filter(|l| l.contains("warning")).collect();
    assert_eq!(warnings.len(), 2, "{said}");
    for (line, node) in warnings.iter().zip(["read", "keep"]) {
        assert!(
            line.starts_with("wf.yaml:")
                && line.contains(&format!(
                    "warning: node \"{node}\", its \"rejected\" port has no edge"
                )),
            "{said}"
        );
    }
    let keep = &report["nodes"][1];
    assert_eq!(
        keep["features_dropped"],
        2000 - keep["features_out"].as_u64().unwrap()
    );
    assert_eq!(keep["dropped"][0]["port"], "unfiltered");
}

#[test]
fn a_variable_in_an_expression_is_a_constant_not_code() {
    let dir = setup();
    // Spliced as text this was `value / 0 || true > 1`; as a constant it is the string
    // "0 || true", and dividing a float by a string is refused before the run.
    let (code, stderr, _) = run(dir.path(), &["--var", "threshold=0 || true"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("cannot divide a float by a string"),
        "{stderr}"
    );
    assert!(!dir.path().join("out/kept.csv").exists(), "{stderr}");
    // A number stays a number.
    let (code, stderr, _) = run(dir.path(), &["--var", "threshold=900"]);
    assert_eq!(code, 0, "{stderr}");
    let n = kept(dir.path());
    assert!(n > 0 && n < 2000, "{n}");
    let (code, stderr, _) = run(dir.path(), &["--var", "threshold=900.0"]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(kept(dir.path()), n);
}
