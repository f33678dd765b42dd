//! Capture from the command line: `run --capture/--job-dir`, `inspect`, `run --from`, and
//! what each does with bad input.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::util::{files, root, signal, sluice, spawn_sluice, stderr, stdout, wait_with_timeout};

const T: Duration = Duration::from_secs(120);

/// Runs `sluice` from the repository root, asserting success.
fn ok<S: AsRef<str>>(args: &[S]) -> std::process::Output {
    let args: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
    let o = sluice(&root(), &args, T);
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    o
}

/// A scratch folder holding a job folder (`job`) and the quickstart's outputs (`out/`).
struct Scratch {
    dir: tempfile::TempDir,
    job: String,
}

impl Scratch {
    fn new() -> Scratch {
        let dir = tempfile::tempdir().unwrap();
        let job = dir.path().join("job").to_string_lossy().into_owned();
        Scratch { dir, job }
    }

    /// `out_dir=` this folder's `out/`.
    fn out_var(&self) -> String {
        format!("out_dir={}", self.dir.path().join("out").display())
    }

    /// The arguments of `run workflows/quickstart.yaml -q` writing here, with this job
    /// folder, then `args`.
    fn quickstart(&self, args: &[&str]) -> Vec<String> {
        let mut all: Vec<String> = ["run", "workflows/quickstart.yaml", "-q", "--var"]
            .map(String::from)
            .into();
        all.push(self.out_var());
        all.extend(["--job-dir".to_string(), self.job.clone()]);
        all.extend(args.iter().map(|a| a.to_string()));
        all
    }
}

fn manifest(job: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(job.join("manifest.json")).unwrap()).unwrap()
}

/// Every file under `dir`, relative, with its bytes.
fn contents(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    files(dir)
        .into_iter()
        .map(|f| {
            let bytes = std::fs::read(dir.join(&f)).unwrap();
            (f, bytes)
        })
        .collect()
}

/// For each workflow: outputs with and without capture are byte-identical, and a re-run
/// from a node writes byte-identical outputs for the sinks downstream of it.
#[test]
fn capture_changes_no_output_and_a_rerun_from_a_node_writes_the_same_bytes() {
    // (workflow, node to re-run from, outputs downstream of it)
    let cases: [(&str, &str, &[&str]); 3] = [
        ("quickstart", "by_value", &["parks.csv"]),
        (
            "tabular",
            "with_customer",
            &["revenue.csv", "orphan_orders.csv"],
        ),
        ("districts", "join", &["poi_in_large_districts.parquet"]),
    ];
    for (name, from, downstream) in cases {
        let wf = format!("workflows/{name}.yaml");
        let plain = tempfile::tempdir().unwrap();
        let captured = tempfile::tempdir().unwrap();
        let rerun = tempfile::tempdir().unwrap();
        let job = captured.path().join("job");
        let var = |d: &Path| format!("out_dir={}", d.join("out").display());
        ok(&["run", &wf, "-q", "--var", &var(plain.path())]);
        ok(&[
            "run",
            &wf,
            "-q",
            "--var",
            &var(captured.path()),
            "--capture",
            "all",
            "--job-dir",
            job.to_str().unwrap(),
        ]);
        let a = contents(&plain.path().join("out"));
        assert!(!a.is_empty());
        assert_eq!(
            a,
            contents(&captured.path().join("out")),
            "{name}: capture changed the output"
        );
        let m = manifest(&job);
        assert_eq!(m["state"], "finished", "{name}");
        assert!(
            m["edges"]
                .as_array()
                .unwrap()
                .iter()
                .all(|e| e["complete"] == true)
        );

        ok(&[
            "run",
            &wf,
            "-q",
            "--var",
            &var(rerun.path()),
            "--from",
            from,
            "--job-dir",
            job.to_str().unwrap(),
        ]);
        let again = contents(&rerun.path().join("out"));
        let names: Vec<PathBuf> = again.iter().map(|(p, _)| p.clone()).collect();
        let mut want: Vec<PathBuf> = downstream.iter().map(PathBuf::from).collect();
        want.sort();
        assert_eq!(names, want, "{name}: the re-run wrote other outputs");
        for (path, bytes) in &again {
            let full = a.iter().find(|(p, _)| p == path).unwrap();
            assert!(
                full.1 == *bytes,
                "{name}: {} differs from the full run",
                path.display()
            );
        }
    }
}

#[test]
fn inspect_lists_edges_and_prints_features_as_they_were_read() {
    let s = Scratch::new();
    let job_s = s.job.as_str();
    ok(&s.quickstart(&["--capture", "read->enrich, big_parks.parks -> by_value"]));
    let list = stdout(&ok(&["inspect", job_s]));
    let lines: Vec<&str> = list.lines().collect();
    assert!(
        lines[0].contains("workflow \"quickstart\", finished"),
        "{list}"
    );
    assert!(lines[1].starts_with("edge"), "{list}");
    assert!(
        lines[2].starts_with("read->enrich") && lines[2].contains(" 2000 "),
        "{list}"
    );
    assert!(
        lines[3].starts_with("big_parks.parks->by_value") && lines[3].ends_with("yes"),
        "{list}"
    );
    assert_eq!(lines.len(), 4, "{list}");

    // CSV of the first rows read is the input file's first lines, byte for byte.
    let csv = stdout(&ok(&[
        "inspect",
        job_s,
        "read->enrich",
        "--format",
        "csv",
        "--limit",
        "5",
    ]));
    let input = std::fs::read_to_string(root().join("data/places.csv")).unwrap();
    let head: String = input.lines().take(6).map(|l| format!("{l}\n")).collect();
    assert_eq!(csv, head);
    // An offset skips features; JSON lines keep types.
    let jsonl = stdout(&ok(&[
        "inspect",
        job_s,
        "read->enrich",
        "--format",
        "jsonl",
        "--offset",
        "1999",
        "--limit",
        "10",
    ]));
    let rows: Vec<serde_json::Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["id"], 1999);
    let table = stdout(&ok(&[
        "inspect",
        job_s,
        "big_parks.parks->by_value",
        "--limit",
        "3",
    ]));
    assert_eq!(table.lines().count(), 4, "{table}");
    assert!(table.lines().next().unwrap().contains("value2"), "{table}");
}

#[test]
fn bad_jobs_edges_and_nodes_are_named_with_the_nearest_names() {
    let s = Scratch::new();
    let job_s = s.job.as_str();
    fn fails<S: AsRef<str>>(args: &[S], want: &str) {
        let args: Vec<&str> = args.iter().map(AsRef::as_ref).collect();
        let o = sluice(&root(), &args, T);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(want), "{args:?}: {}", stderr(&o));
    }
    // An unknown edge stops the run before anything is written.
    fails(
        &s.quickstart(&["--capture", "read->enrch"]),
        "--capture: unknown edge \"read->enrch\"; did you mean \"read->enrich\"?",
    );
    assert!(!Path::new(job_s).exists() && !s.dir.path().join("out").exists());
    fails(&["inspect", job_s], &format!("no capture job at {job_s}"));

    ok(&s.quickstart(&["--capture", "read->enrich"]));
    fails(
        &["inspect", job_s, "read->enrch"],
        "unknown edge \"read->enrch\"; did you mean \"read->enrich\"?",
    );
    fails(
        &s.quickstart(&["--capture", "all"]),
        "already holds a capture job",
    );
    fails(
        &s.quickstart(&["--from", "by_valu"]),
        "unknown node \"by_valu\"; did you mean \"by_value\"?",
    );
    // The part downstream of by_value is fed by an edge this job did not capture.
    fails(
        &s.quickstart(&["--from", "by_value"]),
        "edge \"big_parks.parks->by_value\" feeds the part to re-run, but capture job",
    );
    fails(
        &[
            "run",
            "workflows/tabular.yaml",
            "--var",
            &s.out_var(),
            "--from",
            "revenue",
            "--job-dir",
            job_s,
        ],
        "holds a run of workflow \"quickstart\", not of \"tabular\"",
    );
    std::fs::write(
        Path::new(job_s).join("manifest.json"),
        "{\"format\": \"sluice-capture\"",
    )
    .unwrap();
    fails(&["inspect", job_s], "manifest.json is damaged");
}

#[test]
fn a_changed_upstream_warns_and_a_changed_downstream_does_not() {
    let s = Scratch::new();
    ok(&s.quickstart(&["--capture", "all"]));
    let same = ok(&s.quickstart(&["--from", "by_value"]));
    assert!(
        !stderr(&same).contains("changed since"),
        "{}",
        stderr(&same)
    );
    // The threshold is used upstream of by_value (in big_parks).
    let changed = ok(&s.quickstart(&["--var", "threshold=100", "--from", "by_value"]));
    assert!(
        stderr(&changed).contains(
            "warning: the workflow upstream of edge \"big_parks.parks->by_value\" changed since job"
        ),
        "{}",
        stderr(&changed)
    );
}

/// A write that fails during capture (here: a file size limit, as a full disk would)
/// fails the run, naming the edge and the file; no output is written and the job says
/// which edges completed.
#[test]
fn a_failing_capture_write_fails_the_run_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("wf.yaml"),
        format!(
            "name: small\nnodes:\n  - {{ id: read, action: csv_reader, with: {{ path: {} }} }}\n  \
             - {{ id: keep, action: filter, with: {{ expression: \"value > 990\" }} }}\n  \
             - {{ id: write, action: csv_writer, with: {{ path: out.csv }} }}\n\
             edges: [ read -> keep, keep.passed -> write ]\n",
            root().join("data/places.csv").display()
        ),
    )
    .unwrap();
    let bin = env!("CARGO_BIN_EXE_sluice");
    // 40 KiB per file: the captured rows (about 75 KB) do not fit; the output does.
    let child = std::process::Command::new("bash")
        .args([
            "-c",
            &format!("ulimit -f 40; trap '' XFSZ; exec {bin} run wf.yaml -q --capture 'read->keep' --job-dir job"),
        ])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let o = wait_with_timeout(child, T);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains("capture of edge \"read->keep\" failed"),
        "{err}"
    );
    assert!(err.contains("job/edges/000/part-00001.parquet"), "{err}");
    assert!(!dir.path().join("out.csv").exists());
    let m = manifest(&dir.path().join("job"));
    assert_eq!(m["state"], "failed");
    assert_eq!(m["edges"][0]["complete"], false);
    assert_eq!(
        files(&dir.path().join("job")),
        vec![PathBuf::from("manifest.json")],
        "a partial capture file was left behind"
    );
}

/// Interrupted mid-run, the job folder is consistent: the manifest lists the files that
/// landed, each readable, says the run was cancelled and that no edge completed.
#[test]
fn an_interrupted_capture_leaves_a_consistent_job() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("wf.yaml"),
        "name: endless\nnodes:\n  - { id: gen, action: feature_creator, with: { features: [ { a: 1, b: x } ], repeat: 1000000000000 } }\n  - { id: write, action: csv_writer, with: { path: out.csv } }\nedges: [ gen -> write ]\n",
    )
    .unwrap();
    let child = spawn_sluice(
        dir.path(),
        &[
            "run",
            "wf.yaml",
            "-q",
            "--capture",
            "all",
            "--job-dir",
            "job",
        ],
    );
    let deadline = Instant::now() + T;
    let job = dir.path().join("job");
    while !job.join("manifest.json").exists()
        || manifest(&job)["edges"][0]["files"]
            .as_array()
            .unwrap()
            .is_empty()
    {
        assert!(Instant::now() < deadline, "no capture file landed");
        std::thread::yield_now();
    }
    signal(child.id(), "INT");
    let o = wait_with_timeout(child, T);
    assert_eq!(o.status.code(), Some(130), "{}", stderr(&o));
    let m = manifest(&job);
    assert_eq!(m["state"], "cancelled");
    let edge = &m["edges"][0];
    assert_eq!(edge["complete"], false);
    let mut listed: Vec<PathBuf> = edge["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| PathBuf::from(f["path"].as_str().unwrap()))
        .collect();
    listed.push(PathBuf::from("manifest.json"));
    listed.sort();
    assert_eq!(
        files(&job),
        listed,
        "files not in the manifest were left behind"
    );
    let job_s = job.to_str().unwrap();
    let last = edge["features"].as_u64().unwrap() - 1;
    let tail = stdout(&ok(&[
        "inspect",
        job_s,
        "gen->write",
        "--format",
        "jsonl",
        "--offset",
        &last.to_string(),
    ]));
    assert_eq!(tail.lines().count(), 1, "{tail}");
}
