//! The `sluice` binary: exit codes (0 ok, 1 invalid, 2 run failed, 130 cancelled) and what it
//! prints.

use std::time::{Duration, Instant};

use crate::util::{files, root, sluice, wait_with_timeout};

const T: Duration = Duration::from_secs(120);

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

#[test]
fn quickstart_runs_and_says_where_the_output_went() {
    let out = tempfile::tempdir().unwrap();
    let o = sluice(
        &root(),
        &[
            "run",
            "workflows/quickstart.yaml",
            "--var",
            &format!("out_dir={}", out.path().display()),
            "--report",
            &out.path().join("report.json").display().to_string(),
        ],
        T,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("wrote"), "{err}");
    assert!(
        err.contains(&out.path().join("parks.csv").display().to_string()),
        "{err}"
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.path().join("report.json")).unwrap())
            .unwrap();
    assert_eq!(report["ok"], true);
    assert!(report["peak_rss_bytes"].as_u64().unwrap() > 0);
    assert!(!report["edges"].as_array().unwrap().is_empty());
}

#[test]
fn two_runs_give_byte_identical_output() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    for d in [&a, &b] {
        let o = sluice(
            &root(),
            &[
                "run",
                "workflows/quickstart.yaml",
                "--quiet",
                "--var",
                &format!("out_dir={}", d.path().display()),
            ],
            T,
        );
        assert!(o.status.success(), "{}", stderr(&o));
    }
    let fa = files(a.path());
    assert!(!fa.is_empty());
    assert_eq!(fa, files(b.path()));
    for f in fa {
        assert_eq!(
            std::fs::read(a.path().join(&f)).unwrap(),
            std::fs::read(b.path().join(&f)).unwrap()
        );
    }
}

#[test]
fn validate_ok_and_invalid_exit_codes() {
    let o = sluice(&root(), &["validate", "workflows/quickstart.yaml"], T);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("ok"));

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("bad.yaml"),
        "nodes:\n  - id: a\n    action: csv_raeder\n",
    )
    .unwrap();
    let o = sluice(dir.path(), &["validate", "bad.yaml"], T);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(
        err.contains(
            "bad.yaml:3:13: node \"a\", unknown action \"csv_raeder\"; did you mean one of \"csv_reader\", \"csv_writer\", \"json_reader\"?"
        ),
        "{err}"
    );
    let o = sluice(dir.path(), &["run", "bad.yaml"], T);
    assert_eq!(o.status.code(), Some(1));
}

#[test]
fn failed_run_exits_2_names_the_node_and_leaves_no_output() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("wf.yaml"),
        // A healthy branch (which may finish first) and a failing one: neither output may exist.
        "nodes:\n  - { id: read, action: csv_reader, with: { path: missing.csv } }\n  - { id: write, action: csv_writer, with: { path: out.csv } }\n  - { id: make, action: feature_creator, with: { features: [ { a: 1 } ] } }\n  - { id: ok_write, action: csv_writer, with: { path: ok.csv } }\nedges: [ read -> write, make -> ok_write ]\n",
    )
    .unwrap();
    let o = sluice(dir.path(), &["run", "wf.yaml"], T);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("node \"read\" failed"), "{err}");
    assert!(err.contains("missing.csv"), "{err}");
    assert_eq!(files(dir.path()), vec![std::path::PathBuf::from("wf.yaml")]);
}

#[test]
fn sigint_cancels_within_a_second_exits_130_and_leaves_no_output() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("wf.yaml"),
        "nodes:\n  - { id: gen, action: feature_creator, with: { features: [ { a: 1, b: x } ], repeat: 1000000000000 } }\n  - { id: write, action: csv_writer, with: { path: out.csv } }\nedges: [ gen -> write ]\n",
    )
    .unwrap();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(["run", "wf.yaml", "--quiet"])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the writer has started its temporary file, then interrupt.
    let deadline = Instant::now() + T;
    while files(dir.path()).len() < 2 {
        assert!(Instant::now() < deadline, "the writer never started");
        std::thread::yield_now();
    }
    let t0 = Instant::now();
    let pid = child.id().to_string();
    std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap();
    let o = wait_with_timeout(child, T);
    assert!(
        t0.elapsed() < Duration::from_secs(1),
        "took {:?}",
        t0.elapsed()
    );
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    assert_eq!(files(dir.path()), vec![std::path::PathBuf::from("wf.yaml")]);
}

#[test]
fn actions_schema_and_graph() {
    let o = sluice(&root(), &["actions", "--json"], T);
    assert!(o.status.success());
    let list: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let names: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    for n in ["csv_reader", "filter", "sort", "csv_writer"] {
        assert!(names.contains(&n), "{n} missing from {names:?}");
    }
    assert!(list[0]["parameters"].is_object());

    let o = sluice(&root(), &["schema"], T);
    let schema: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(schema["title"], "sluice workflow");
    assert!(schema["$defs"]["Node"]["oneOf"].as_array().unwrap().len() >= names.len());

    let o = sluice(&root(), &["graph", "workflows/quickstart.yaml"], T);
    let dot = String::from_utf8_lossy(&o.stdout);
    assert!(dot.starts_with("digraph workflow {"), "{dot}");
    assert!(dot.contains("->"));
}

#[test]
fn bad_var_and_undeclared_var_are_usage_errors() {
    let o = sluice(
        &root(),
        &["run", "workflows/quickstart.yaml", "--var", "nope"],
        T,
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("expected NAME=VALUE"));
    let o = sluice(
        &root(),
        &["validate", "workflows/quickstart.yaml", "--var", "tresh=1"],
        T,
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("declares no variable \"tresh\""),
        "{}",
        stderr(&o)
    );
}
