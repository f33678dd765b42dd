//! The `sluice` binary: exit codes (0 ok, 1 invalid or usage, 2 run failed, 130/143/129
//! cancelled by SIGINT/SIGTERM/SIGHUP), what it prints, and what it leaves on disk.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::util::{
    files, root, signal, sluice, sluice_with_stdin, sort_workflow, spawn_sluice, stderr, stdout,
    wait_with_timeout,
};

const T: Duration = Duration::from_secs(120);

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
            "bad.yaml:3:13: node \"a\", unknown action \"csv_raeder\"; did you mean one of \"csv_reader\", \"csv_writer\", \"stac_reader\"?"
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
        // A healthy branch (which may finish first) and a failing one: neither output may
        // exist. A glob is listed only when the run starts, so validation lets it through.
        "nodes:\n  - { id: read, action: csv_reader, with: { path: \"missing/*.csv\" } }\n  - { id: write, action: csv_writer, with: { path: out.csv } }\n  - { id: make, action: feature_creator, with: { features: [ { a: 1 } ] } }\n  - { id: ok_write, action: csv_writer, with: { path: ok.csv } }\nedges: [ read -> write, make -> ok_write ]\n",
    )
    .unwrap();
    let o = sluice(dir.path(), &["run", "wf.yaml"], T);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.contains("node \"read\" failed"), "{err}");
    assert!(err.contains("missing/*.csv"), "{err}");
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

fn write(dir: &Path, name: &str, text: &str) {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(p, text).unwrap();
}

fn names(v: &[&str]) -> Vec<PathBuf> {
    v.iter().map(PathBuf::from).collect()
}

#[test]
fn validate_warns_about_a_rejected_port_with_no_edge_and_still_passes() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "in.csv", "a\n1\n");
    let nodes = "nodes:\n  - { id: read, action: csv_reader, with: { path: in.csv } }\n  - { id: write, action: csv_writer, with: { path: out.csv } }\n";
    write(
        dir.path(),
        "wf.yaml",
        &format!("{nodes}edges: [ read -> write ]\n"),
    );
    let o = sluice(dir.path(), &["validate", "wf.yaml"], T);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("wf.yaml: ok"));
    assert_eq!(
        stderr(&o),
        "wf.yaml:2:5: warning: node \"read\", its \"rejected\" port has no edge: rows that \
         cannot be read will be counted and dropped; connect \"read.rejected\" to a sink to \
         keep them\n"
    );
    // Connected, it is no warning.
    write(
        dir.path(),
        "wf.yaml",
        &format!(
            "{nodes}  - {{ id: bad, action: jsonl_writer, with: {{ path: bad.jsonl }} }}\nedges: [ read -> write, read.rejected -> bad ]\n"
        ),
    );
    let o = sluice(dir.path(), &["validate", "wf.yaml"], T);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stderr(&o), "");
}

/// The 2,000 places through a filter whose `unfiltered` port has no edge.
fn unfiltered_dropped(dir: &Path, expression: &str, extra: &[&str]) -> String {
    let places = root().join("data/places.csv").display().to_string();
    write(
        dir,
        "wf.yaml",
        &format!(
            "nodes:\n  - {{ id: read, action: csv_reader, with: {{ path: {places:?} }} }}\n  - {{ id: keep, action: filter, with: {{ expression: {expression:?} }} }}\n  - {{ id: write, action: csv_writer, with: {{ path: out.csv }} }}\nedges: [ read -> keep, keep.passed -> write ]\n"
        ),
    );
    let mut args = vec!["run", "wf.yaml"];
    args.extend_from_slice(extra);
    let o = sluice(dir, &args, T);
    assert!(o.status.success(), "{}", stderr(&o));
    stderr(&o)
}

#[test]
fn the_summary_says_how_many_features_each_unconnected_port_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let left = |err: &str| -> Vec<String> {
        err.lines()
            .filter(|l| l.contains(" left on "))
            .map(str::to_string)
            .collect()
    };
    // No place has a negative id: all 2,000 go to `unfiltered`, which has no edge.
    let err = unfiltered_dropped(dir.path(), "id < 0", &[]);
    assert_eq!(
        left(&err),
        ["keep: 2,000 features left on unfiltered (not connected)"],
        "{err}"
    );
    // The table keeps its columns; the count is in the node's row too.
    assert!(
        err.lines()
            .any(|l| l.trim_start().starts_with("keep ") && l.ends_with(" 2000 dropped")),
        "{err}"
    );
    // One place is not kept: one feature, singular.
    let err = unfiltered_dropped(dir.path(), "id != 7", &[]);
    assert_eq!(
        left(&err),
        ["keep: 1 feature left on unfiltered (not connected)"],
        "{err}"
    );
    // --quiet stays quiet.
    let err = unfiltered_dropped(dir.path(), "id < 0", &["--quiet"]);
    assert!(left(&err).is_empty(), "{err}");
}

#[test]
fn two_sinks_on_one_path_are_a_validation_error_naming_both() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "wf.yaml",
        "nodes:\n  - { id: make, action: feature_creator, with: { features: [ { a: 1 } ] } }\n  - { id: first, action: csv_writer, with: { path: out/x.csv } }\n  - { id: second, action: jsonl_writer, with: { path: ./out/../out/x.csv } }\nedges: [ make -> first, make -> second ]\n",
    );
    for cmd in ["validate", "run"] {
        let o = sluice(dir.path(), &[cmd, "wf.yaml"], T);
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        let err = stderr(&o);
        assert!(
            err.contains(
                "wf.yaml:4:55: node \"second\", parameter \"path\": writes ./out/../out/x.csv, which node \"first\" (wf.yaml:3:52) writes too"
            ),
            "{err}"
        );
    }
    // Two sinks on standard output are the same output too.
    write(
        dir.path(),
        "stdout.yaml",
        "nodes:\n  - { id: make, action: feature_creator, with: { features: [ { a: 1 } ] } }\n  - { id: a, action: csv_writer, with: { path: \"-\" } }\n  - { id: b, action: jsonl_writer, with: { path: \"-\" } }\nedges: [ make -> a, make -> b ]\n",
    );
    let o = sluice(dir.path(), &["validate", "stdout.yaml"], T);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("node \"a\""), "{}", stderr(&o));
}

#[test]
fn partitions_claiming_another_sinks_file_fail_the_run_naming_both() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "wf.yaml",
        "nodes:\n  - { id: make, action: feature_creator, with: { features: [ { cat: a }, { cat: b } ] } }\n  - { id: parts, action: csv_writer, with: { path: \"out/{cat}.csv\" } }\n  - { id: fixed, action: csv_writer, with: { path: out/a.csv } }\nedges: [ make -> parts, make -> fixed ]\n",
    );
    let o = sluice(dir.path(), &["run", "wf.yaml"], T);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("node \"parts\"") && err.contains("node \"fixed\""),
        "{err}"
    );
    assert!(err.contains("is written by both"), "{err}");
    assert_eq!(files(dir.path()), names(&["wf.yaml"]));
}

#[test]
fn a_target_that_is_a_folder_fails_before_any_output_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "out/a.csv", "old\n");
    std::fs::create_dir_all(dir.path().join("out/b.csv")).unwrap();
    write(
        dir.path(),
        "wf.yaml",
        "nodes:\n  - { id: make, action: feature_creator, with: { features: [ { a: 1 } ] } }\n  - { id: wa, action: csv_writer, with: { path: out/a.csv } }\n  - { id: wb, action: csv_writer, with: { path: out/b.csv } }\nedges: [ make -> wa, make -> wb ]\n",
    );
    let o = sluice(dir.path(), &["run", "wf.yaml"], T);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("out/b.csv is a folder"), "{err}");
    assert!(err.contains("no output was written"), "{err}");
    assert!(!err.contains("wrote "), "{err}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("out/a.csv")).unwrap(),
        "old\n"
    );
    assert_eq!(files(dir.path()), names(&["out/a.csv", "wf.yaml"]));
}

#[test]
fn failures_are_printed_once_in_plain_words() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "wf.yaml",
        "nodes:\n  - { id: read, action: csv_reader, with: { path: \"missing/*.csv\" } }\n  - { id: write, action: csv_writer, with: { path: out.csv } }\nedges: [ read -> write ]\n",
    );
    let o = sluice(dir.path(), &["run", "wf.yaml"], T);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert_eq!(err.matches("missing/*.csv").count(), 1, "{err}");
    // A folder that cannot be created: the cause in plain words, once.
    write(dir.path(), "blocker", "a file, not a folder");
    write(
        dir.path(),
        "wf2.yaml",
        "nodes:\n  - { id: make, action: feature_creator, with: { features: [ { a: 1 } ] } }\n  - { id: write, action: csv_writer, with: { path: blocker/out.csv } }\nedges: [ make -> write ]\n",
    );
    let o = sluice(dir.path(), &["run", "wf2.yaml"], T);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert_eq!(err.matches("blocker/out.csv").count(), 1, "{err}");
    for internal in ["context", "service", "=>", "os error"] {
        assert!(!err.contains(internal), "{internal:?} in {err}");
    }
}

#[cfg(unix)]
#[test]
fn symlinked_outputs_are_written_through_and_permissions_kept() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "real/data.csv", "old\n");
    std::fs::set_permissions(
        dir.path().join("real/data.csv"),
        std::fs::Permissions::from_mode(0o640),
    )
    .unwrap();
    std::os::unix::fs::symlink("real/data.csv", dir.path().join("link.csv")).unwrap();
    // A link to a file that does not exist yet.
    std::os::unix::fs::symlink("real/new.csv", dir.path().join("dangling.csv")).unwrap();
    write(
        dir.path(),
        "wf.yaml",
        "nodes:\n  - { id: make, action: feature_creator, with: { features: [ { a: 1 } ] } }\n  - { id: w1, action: csv_writer, with: { path: link.csv } }\n  - { id: w2, action: csv_writer, with: { path: dangling.csv } }\nedges: [ make -> w1, make -> w2 ]\n",
    );
    let o = sluice(dir.path(), &["run", "wf.yaml", "--quiet"], T);
    assert!(o.status.success(), "{}", stderr(&o));
    for link in ["link.csv", "dangling.csv"] {
        let m = std::fs::symlink_metadata(dir.path().join(link)).unwrap();
        assert!(m.file_type().is_symlink(), "{link} lost its link");
    }
    assert_eq!(
        std::fs::read_to_string(dir.path().join("real/data.csv")).unwrap(),
        "a\n1\n"
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("real/new.csv")).unwrap(),
        "a\n1\n"
    );
    let mode = std::fs::metadata(dir.path().join("real/data.csv"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o640);
}

#[cfg(unix)]
#[test]
fn devices_and_fifos_are_refused_and_dash_is_stdout_and_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let wf = "variables: { out: {} , in: { default: in.csv } }\nnodes:\n  - { id: read, action: csv_reader, with: { path: \"${in}\" } }\n  - { id: write, action: csv_writer, with: { path: \"${out}\" } }\nedges: [ read -> write ]\n";
    write(dir.path(), "wf.yaml", wf);
    write(dir.path(), "in.csv", "a,b\n1,x\n2,y\n");
    // /dev/stdout is a link to this process's pipe: refused, and left as it was.
    for target in ["/dev/stdout", "/dev/null"] {
        let o = sluice(
            dir.path(),
            &["run", "wf.yaml", "--var", &format!("out={target}")],
            T,
        );
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        let err = stderr(&o);
        assert!(err.contains("sluice writes regular files only"), "{err}");
        assert!(err.contains("write to - for standard output"), "{err}");
    }
    assert!(
        std::fs::symlink_metadata("/dev/stdout")
            .unwrap()
            .file_type()
            .is_symlink()
    );
    // `-`: standard output, streamed; standard input for readers.
    let o = sluice_with_stdin(
        dir.path(),
        &[
            "run", "wf.yaml", "--quiet", "--var", "out=-", "--var", "in=-",
        ],
        b"a,b\n3,z\n",
        T,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(String::from_utf8_lossy(&o.stdout), "a,b\n3,z\n");
    assert_eq!(files(dir.path()), names(&["in.csv", "wf.yaml"]));
}

#[test]
fn usage_errors_exit_1_and_bad_limits_are_refused_before_the_run() {
    let o = sluice(&root(), &["run", "--no-such-flag", "x.yaml"], T);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let o = sluice(&root(), &["--help"], T);
    assert_eq!(o.status.code(), Some(0));
    let dir = tempfile::tempdir().unwrap();
    let quick = root().join("workflows/quickstart.yaml");
    let quick = quick.to_string_lossy();
    let out_dir = format!("out_dir={}", dir.path().join("out").display());
    let o = sluice(
        dir.path(),
        &["run", &quick, "--var", &out_dir, "--threads", "100000"],
        T,
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("--threads 100000: at most"),
        "{}",
        stderr(&o)
    );
    let o = sluice(
        dir.path(),
        &["run", &quick, "--var", &out_dir, "--memory-limit", "0"],
        T,
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("'0' for '--memory-limit <SIZE>': the limit must be above 0"),
        "{}",
        stderr(&o)
    );
    // Typed options are parsed by clap, with its own error and exit code 1.
    for (flag, value, says) in [
        ("--memory-limit", "12 parsecs", "unknown size unit"),
        ("--gate", "sometimes", "unknown gate policy"),
        ("--gate", "semaphore:0", "bad semaphore size"),
    ] {
        let o = sluice(dir.path(), &["run", &quick, flag, value], T);
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        assert!(stderr(&o).contains("invalid value"), "{}", stderr(&o));
        assert!(stderr(&o).contains(says), "{}", stderr(&o));
    }
    // A report that cannot be written is found before anything runs or is written.
    let o = sluice(
        dir.path(),
        &[
            "run",
            &quick,
            "--var",
            &out_dir,
            "--report",
            "no/such/folder/r.json",
        ],
        T,
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("--report no/such/folder/r.json"),
        "{}",
        stderr(&o)
    );
    assert!(files(dir.path()).is_empty(), "{:?}", files(dir.path()));
}

#[test]
fn a_closed_pipe_ends_quietly_with_0() {
    use std::io::Read;
    for args in [
        &["actions", "--json"][..],
        &["schema"][..],
        &["graph", "workflows/quickstart.yaml"][..],
    ] {
        let mut child = spawn_sluice(&root(), args);
        let mut first = [0u8; 10];
        let mut stdout = child.stdout.take().unwrap();
        stdout.read_exact(&mut first).unwrap();
        drop(stdout);
        let o = wait_with_timeout(child, T);
        assert_eq!(o.status.code(), Some(0), "{args:?}: {}", stderr(&o));
        assert!(!stderr(&o).contains("panicked"), "{}", stderr(&o));
    }
}

/// A workflow that spills: sort under a small memory limit, input from `sluice generate`.
fn spilling_run(dir: &Path, rows: u64) -> Vec<String> {
    sort_workflow(dir, rows);
    std::fs::create_dir_all(dir.join("spill")).unwrap();
    [
        "run",
        "wf.yaml",
        "--quiet",
        "--memory-limit",
        "24MB",
        "--spill-dir",
        "spill",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn waits_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + T;
    while !done() {
        assert!(Instant::now() < deadline, "{what} never happened");
        std::thread::yield_now();
    }
}

/// Waits until process `pid` has taken over its signals (Linux: its blocked-signal mask
/// is set), so that a signal sent now is the run's to handle, not the default action's.
fn signals_taken(pid: u32) {
    let status = format!("/proc/{pid}/status");
    if !Path::new("/proc/self/status").exists() {
        return;
    }
    waits_until("signals blocked", || {
        match std::fs::read_to_string(&status) {
            Ok(s) => s
                .lines()
                .find_map(|l| l.strip_prefix("SigBlk:"))
                .is_some_and(|m| !m.trim().trim_start_matches('0').is_empty()),
            Err(_) => true,
        }
    });
}

#[cfg(unix)]
#[test]
fn sigint_sigterm_and_sighup_at_random_points_leave_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let args = spilling_run(dir.path(), 150_000);
    let args: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    // How long an uninterrupted run takes (the faster of two, so a slow first run on a busy
    // machine does not push the signals past the end of every later run), and that it spills.
    let mut full = Duration::MAX;
    for _ in 0..2 {
        let t0 = Instant::now();
        let o = sluice(dir.path(), &args, T);
        full = full.min(t0.elapsed());
        assert!(o.status.success(), "{}", stderr(&o));
        std::fs::remove_dir_all(dir.path().join("out")).unwrap();
    }
    let mut seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos() as u64;
    // Each signal until it has interrupted three runs. A run that ends before its signal
    // (the machine got faster than when `full` was measured) shortens `full` for the next.
    let mut cancelled = [0usize; 3];
    let signals = [("INT", 130), ("TERM", 143), ("HUP", 129)];
    for attempt in 0..24 {
        if cancelled.iter().all(|&c| c >= 3) {
            break;
        }
        let which = attempt % 3;
        let (sig, code) = signals[which];
        seed = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        // From early (while reading) to late (while merging or committing), counted from
        // the spawn, as `full` is: the start-up is part of both.
        let at = full.mul_f64(0.05 + (seed >> 33) as f64 / (1u64 << 31) as f64 * 0.85);
        let spawned = Instant::now();
        let child = spawn_sluice(dir.path(), &args);
        let pid = child.id();
        // The process must be past its start-up for the signal to be its to handle; a
        // point that falls inside the start-up is taken just after it.
        signals_taken(pid);
        let (_never, wait) = crossbeam_channel::bounded::<()>(0);
        let _ = wait.recv_timeout(at.saturating_sub(spawned.elapsed()));
        signal(pid, sig);
        let o = wait_with_timeout(child, T);
        let left: Vec<PathBuf> = files(dir.path())
            .into_iter()
            .filter(|f| f != Path::new("in.csv") && f != Path::new("wf.yaml"))
            .collect();
        if o.status.code() == Some(0) {
            // Finished before the signal: the output is whole and alone.
            assert_eq!(
                left,
                names(&["out/sorted.csv"]),
                "attempt {attempt} SIG{sig}"
            );
            std::fs::remove_dir_all(dir.path().join("out")).unwrap();
            full = full.min(spawned.elapsed());
            continue;
        }
        cancelled[which] += 1;
        assert_eq!(
            o.status.code(),
            Some(code),
            "SIG{sig} at {at:?}: {}",
            stderr(&o)
        );
        assert!(left.is_empty(), "SIG{sig} at {at:?} left {left:?}");
        let spill: Vec<_> = std::fs::read_dir(dir.path().join("spill"))
            .unwrap()
            .collect();
        assert!(spill.is_empty(), "SIG{sig} at {at:?} left spill folders");
    }
    assert!(
        cancelled.iter().all(|&c| c >= 3),
        "runs interrupted by INT, TERM, HUP: {cancelled:?} of 24 attempts"
    );
}

#[cfg(unix)]
#[test]
fn after_sigkill_the_next_run_and_sluice_clean_remove_the_leftovers() {
    let dir = tempfile::tempdir().unwrap();
    let args = spilling_run(dir.path(), 150_000);
    let args: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    let spill_folders = |d: &Path| std::fs::read_dir(d.join("spill")).unwrap().count();
    let killed = |d: &Path| {
        let child = spawn_sluice(d, &args);
        // Killed while both a spill folder and the temporary output exist.
        waits_until("a spill folder and a temporary output", || {
            spill_folders(d) > 0
                && files(&d.join("out"))
                    .iter()
                    .any(|f| f.to_string_lossy().ends_with(".sluice-tmp"))
        });
        signal(child.id(), "KILL");
        let o = wait_with_timeout(child, T);
        assert_eq!(o.status.code(), None, "killed by a signal");
        assert!(spill_folders(d) > 0);
    };

    // 1. The next run removes them.
    killed(dir.path());
    let o = sluice(dir.path(), &args, T);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(spill_folders(dir.path()), 0);
    assert_eq!(files(&dir.path().join("out")), names(&["sorted.csv"]));

    // 2. `sluice clean` removes them and says so.
    killed(dir.path());
    let o = sluice(
        dir.path(),
        &["clean", "--spill-dir", "spill", "out/sorted.csv"],
        T,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("removed the spill folder of process"), "{err}");
    assert!(
        err.contains("removed the temporary output of process"),
        "{err}"
    );
    assert_eq!(spill_folders(dir.path()), 0);
    assert_eq!(files(&dir.path().join("out")), names(&["sorted.csv"]));
}

#[test]
fn functions_lists_the_expression_catalog_and_shows_one() {
    let o = sluice(&root(), &["functions"], T);
    assert!(o.status.success(), "{}", stderr(&o));
    let list = String::from_utf8_lossy(&o.stdout);
    for sig in [
        "round(x: number[, digits: int]) -> number",
        "regex_replace(s: string, pattern: string, to: string) -> string",
        "date_add(d: date|datetime|local_datetime, n: int, unit: string)",
        "area(g: geometry) -> float",
    ] {
        assert!(list.contains(sig), "{sig} missing from:\n{list}");
    }
    assert!(
        list.contains("    example: clamp(value, 0, 100)\n"),
        "{list}"
    );

    let o = sluice(&root(), &["functions", "format_date"], T);
    assert!(o.status.success(), "{}", stderr(&o));
    let one = String::from_utf8_lossy(&o.stdout);
    assert!(one.starts_with("format_date(d: "), "{one}");
    assert!(one.contains("example: format_date(ts, \"%Y-%m\")"), "{one}");

    let o = sluice(&root(), &["functions", "uper"], T);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("unknown function \"uper\"; did you mean \"upper\"?"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn validate_format_json_gives_every_diagnostic_as_data() {
    let o = sluice(
        &root().join("tests/invalid"),
        &["validate", "--format", "json", "filter_every_bad_port.yaml"],
        T,
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["valid"], false);
    assert_eq!(v["errors"], 3);
    let d = &v["diagnostics"].as_array().unwrap();
    let located: Vec<(u64, u64, &str, &str)> = d
        .iter()
        .map(|d| {
            (
                d["line"].as_u64().unwrap(),
                d["column"].as_u64().unwrap(),
                d["node"].as_str().unwrap(),
                d["param"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        located,
        [
            (8, 19, "keep", "conditions[0].port"),
            (10, 19, "keep", "conditions[2].port"),
            (11, 19, "keep", "conditions[3].port"),
        ]
    );
    assert!(
        d.iter()
            .all(|d| d["severity"] == "error" && d["file"] == "filter_every_bad_port.yaml")
    );

    // A valid workflow: valid, with its size, exit 0.
    let o = sluice(
        &root(),
        &["validate", "--format", "json", "workflows/quickstart.yaml"],
        T,
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["valid"], true);
    assert!(v["nodes"].as_u64().unwrap() > 1);
}

#[test]
fn an_unreadable_workflow_says_why_without_a_position() {
    let dir = tempfile::tempdir().unwrap();
    let o = sluice(dir.path(), &["validate", "nowhere.yaml"], T);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "nowhere.yaml: cannot read workflow: no such file\n"
    );
    std::fs::write(dir.path().join("bin.yaml"), b"nodes:\n  - \x00\x01\x02").unwrap();
    let o = sluice(dir.path(), &["validate", "bin.yaml"], T);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o)
            .starts_with("bin.yaml:2:5: a NUL byte (this looks like a binary file) at byte 11"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn actions_name_shows_parameters_and_an_example() {
    let o = sluice(&root(), &["actions", "sort"], T);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = stdout(&o);
    for part in [
        "sort (processor)\n",
        "\nports\n  in:  default\n  out: default\n",
        "\nparameters\n  by  (list of SortKey, required, not empty)\n      Attributes to sort by, most significant first.\n",
        "  by[].descending  (boolean, default false)\n",
        "\nexample\n  - id: sort\n    action: sort\n    with:\n      by:\n",
    ] {
        assert!(text.contains(part), "{part:?} missing from\n{text}");
    }
    // The list: one line per action on stdout, the way to the parameters on stderr.
    let o = sluice(&root(), &["actions"], T);
    assert_eq!(o.status.code(), Some(0));
    assert!(stdout(&o).lines().any(|l| l.starts_with("csv_reader ")));
    assert!(
        stdout(&o)
            .lines()
            .all(|l| !l.contains("sluice actions NAME"))
    );
    assert!(
        stderr(&o).contains("`sluice actions NAME` shows"),
        "{}",
        stderr(&o)
    );
    let o = sluice(&root(), &["actions", "--help"], T);
    assert!(stdout(&o).contains("sluice actions NAME"), "{}", stdout(&o));
    // One action as JSON is that action's object.
    let o = sluice(&root(), &["actions", "filter", "--json"], T);
    let one: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(one["name"], "filter");
    // An unknown name: exit 1 with the nearest names.
    let o = sluice(&root(), &["actions", "csv_raeder"], T);
    assert_eq!(o.status.code(), Some(1));
    assert!(stdout(&o).is_empty());
    assert!(
        stderr(&o).starts_with(
            "error: unknown action \"csv_raeder\"; did you mean one of \"csv_reader\""
        ),
        "{}",
        stderr(&o)
    );
    let o = sluice(&root(), &["actions", "zzzz"], T);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(
        stderr(&o),
        "error: unknown action \"zzzz\"; `sluice actions` lists them\n"
    );
}

#[test]
fn the_schema_offers_each_actions_example() {
    let o = sluice(&root(), &["schema"], T);
    let schema: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let csv = schema["$defs"]["Node"]["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["properties"]["action"]["const"] == "csv_reader")
        .unwrap();
    let example = &csv["properties"]["with"]["examples"][0];
    assert_eq!(example["path"], "data/trips-*.csv.gz", "{example}");
    assert_eq!(example["geometry"]["x"], "lon", "{example}");
}
