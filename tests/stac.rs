//! API readers from the command line, against the test STAC server
//! (`tests/http/stac_server.py`; skipped with a notice where `python3` is missing):
//! `--resume` after a SIGKILL, tokens that never show, the example workflow.

use std::path::Path;
use std::time::{Duration, Instant};

use sluice_runtime::testing::stac_server::StacServer;

use crate::util::{root, signal, sluice, spawn_sluice, stderr, wait_with_timeout};

const T: Duration = Duration::from_secs(120);

/// A workflow reading the server's search into `out.geojson`.
fn workflow(dir: &Path, server: &StacServer, extra: &str) {
    std::fs::write(
        dir.join("wf.yaml"),
        format!(
            "nodes:\n  - id: scenes\n    action: stac_reader\n    with:\n      url: \"{}\"\n      datetime: 2024-01-01T00:00:00Z/2025-01-01T00:00:00Z\n      chunks: 4\n      limit: 25\n{extra}\n  - {{ id: write, action: geojson_writer, with: {{ path: out.geojson }} }}\nedges: [ scenes -> write ]\n",
            server.url()
        ),
    )
    .unwrap();
}

/// Completed pages in a job folder's journals (not their `.meta` files, not temporaries).
fn journal_pages(job: &Path) -> usize {
    let Ok(nodes) = std::fs::read_dir(job.join("journal")) else {
        return 0;
    };
    nodes
        .flatten()
        .filter_map(|n| std::fs::read_dir(n.path()).ok())
        .flat_map(|entries| entries.flatten())
        .filter(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            name.starts_with('j') && !name.ends_with(".meta")
        })
        .count()
}

fn search_requests(server: &StacServer) -> usize {
    server
        .requests()
        .iter()
        .filter(|r| r["path"] == "/search")
        .count()
}

#[test]
fn stac_resume_after_sigkill_gives_the_same_output_without_fetching_completed_pages_again() {
    interrupt_and_resume("KILL");
}

#[test]
fn stac_resume_after_sigterm_gives_the_same_output_without_fetching_completed_pages_again() {
    interrupt_and_resume("TERM");
}

/// Runs a search to the end; runs it again with a job folder, interrupts it with `sig`
/// halfway, resumes it, and compares.
fn interrupt_and_resume(sig: &str) {
    let Some(server) = StacServer::start(&["--items", "2000", "--latency-ms", "60"]) else {
        return;
    };
    let extra = "      concurrency: 2";
    let plain = tempfile::tempdir().unwrap();
    workflow(plain.path(), &server, extra);
    let o = sluice(plain.path(), &["run", "wf.yaml", "-q"], T);
    assert!(o.status.success(), "{}", stderr(&o));
    let uninterrupted = std::fs::read(plain.path().join("out.geojson")).unwrap();
    // 4 slices of 500 or 501 items (an item on each inner edge is in two), 25 a page.
    let total = search_requests(&server);
    assert_eq!(total, 83);

    let dir = tempfile::tempdir().unwrap();
    workflow(dir.path(), &server, extra);
    let job = dir.path().join("job");
    let job_arg = job.to_string_lossy().to_string();
    let child = spawn_sluice(dir.path(), &["run", "wf.yaml", "-q", "--job-dir", &job_arg]);
    let deadline = Instant::now() + T;
    while journal_pages(&job) < 30 {
        assert!(Instant::now() < deadline, "the run never got going");
        let _ = crossbeam_channel::after(Duration::from_millis(20)).recv();
    }
    // KILL: no clean-up at all; TERM: the run is cancelled and cleans up.
    signal(child.id(), sig);
    let o = wait_with_timeout(child, T);
    if sig == "TERM" {
        assert_eq!(o.status.code(), Some(143), "{}", stderr(&o));
    }
    assert!(!dir.path().join("out.geojson").exists());
    let completed = journal_pages(&job);
    let before = search_requests(&server);
    assert!(
        completed < total,
        "killed halfway, not at the end ({completed} pages)"
    );

    let o = sluice(
        dir.path(),
        &["run", "wf.yaml", "-q", "--job-dir", &job_arg, "--resume"],
        T,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(
        std::fs::read(dir.path().join("out.geojson")).unwrap(),
        uninterrupted,
        "the resumed output is the uninterrupted one"
    );
    let resumed = search_requests(&server) - before;
    assert_eq!(
        resumed,
        total - completed,
        "the resumed run fetched exactly the pages the journal did not hold"
    );
    // Each page of the resumed run was asked once, and none the killed run completed.
    let requests = server.requests();
    let asked: Vec<String> = requests[before..]
        .iter()
        .filter(|r| r["path"] == "/search")
        .map(|r| r["query"].as_str().unwrap_or("").to_string())
        .collect();
    let mut unique = asked.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), asked.len());
    if sig == "TERM" {
        return;
    }

    // --resume needs the job folder of a run.
    let o = sluice(
        dir.path(),
        &["run", "wf.yaml", "-q", "--job-dir", "nowhere", "--resume"],
        T,
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("--resume"), "{}", stderr(&o));
}

#[test]
fn stac_tokens_never_reach_logs_events_reports_or_the_job_folder() {
    let Some(server) = StacServer::start(&[
        "--items",
        "60",
        "--page-size",
        "20",
        "--fault",
        "fail-token:40",
        "--fault",
        "429:1:0",
    ]) else {
        return;
    };
    let token = "tok-SECRET-4242";
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("wf.yaml"),
        format!(
            "nodes:\n  - id: scenes\n    action: stac_reader\n    with:\n      url: \"{}\"\n      retries: 1\n      headers:\n        Authorization: {{ env: STAC_TOKEN, prefix: \"Bearer \" }}\n  - {{ id: write, action: geojson_writer, with: {{ path: out.geojson }} }}\n  - {{ id: bad, action: geojson_writer, with: {{ path: rejected.geojson }} }}\nedges: [ scenes -> write, scenes.rejected -> bad ]\n",
            server.url()
        ),
    )
    .unwrap();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args([
            "run",
            "wf.yaml",
            "--report",
            "report.json",
            "--job-dir",
            "job",
            "--capture",
            "all",
        ])
        .current_dir(dir.path())
        .env("STAC_TOKEN", token)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let o = wait_with_timeout(child, T);
    assert!(o.status.success(), "{}", stderr(&o));
    // The token was sent...
    assert!(
        server
            .requests()
            .iter()
            .all(|r| r["auth"].as_str() == Some(&format!("Bearer {token}")))
    );
    // ...and the failed page was reported, but the token shows nowhere.
    let rejected = std::fs::read_to_string(dir.path().join("rejected.geojson")).unwrap();
    assert!(rejected.contains("HTTP 500"), "{rejected}");
    let mut texts = vec![
        String::from_utf8_lossy(&o.stdout).to_string(),
        stderr(&o),
        std::fs::read_to_string(dir.path().join("report.json")).unwrap(),
    ];
    for f in crate::util::files(dir.path()) {
        texts.push(
            String::from_utf8_lossy(&std::fs::read(dir.path().join(&f)).unwrap()).to_string(),
        );
    }
    for t in &texts {
        assert!(!t.contains(token), "the token leaked: {t}");
        assert!(!t.contains("SECRET"), "the token leaked: {t}");
    }
}

#[test]
fn stac_scenes_workflow_runs_against_the_test_server() {
    let Some(server) = StacServer::start(&["--items", "1000"]) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("clear.parquet");
    let o = sluice(
        &root(),
        &[
            "run",
            "workflows/stac_scenes.yaml",
            "-q",
            "--var",
            &format!("api={}", server.url()),
            "--var",
            &format!("output={}", out.display()),
        ],
        T,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let bytes = std::fs::read(&out).unwrap();
    assert_eq!(&bytes[..4], b"PAR1");
    // Items with eo:cloud_cover <= 20 out of 1000: cloud cover is (37 i mod 1000) / 10.
    let expected = (0..1000).filter(|i| (i * 37) % 1000 <= 200).count();
    let reader =
        parquet::file::reader::SerializedFileReader::new(std::fs::File::open(&out).unwrap())
            .unwrap();
    use parquet::file::reader::FileReader;
    assert_eq!(
        reader.metadata().file_metadata().num_rows() as usize,
        expected
    );
    let geo = reader
        .metadata()
        .file_metadata()
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|k| k.key == "geo").cloned());
    assert!(geo.is_some(), "GeoParquet metadata");
}
