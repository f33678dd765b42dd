use std::path::Path;
use std::sync::Arc;

use super::*;
use crate::error::RunError;
use crate::feature::{Feature, Geometry, Schema, Value};
use crate::testing::fuzz::awkward_features;
use crate::testing::{Harness, run_with_timeout};
use crate::testing::{PASS, test_registry};

/// Everything that makes a feature what it is, NaN and -0.0 included.
fn describe(f: &Feature) -> String {
    format!(
        "{} {:?} {:?} {:?}",
        f.id(),
        f.schema().names(),
        f.values(),
        f.geometry().map(|g| (format!("{:?}", g.geom), g.crs))
    )
}

/// Awkward values, several schemas in one stream (a new attribute, another order, a column
/// whose type changes), geometries with and without a CRS.
fn mixed_stream() -> Vec<Feature> {
    let mut out: Vec<Feature> = awkward_features().to_vec();
    let a = Schema::new(["k", "v"]);
    let b = Schema::new(["v", "k", "extra"]);
    for i in 0..3000u64 {
        let f = match i % 3 {
            0 => Feature::new(100 + i, a.clone(), vec![Value::Int(i as i64), "x".into()]),
            1 => Feature::new(
                100 + i,
                b.clone(),
                vec![
                    Value::Float(i as f64 / 7.0),
                    Value::Null,
                    Value::Bool(i % 2 == 0),
                ],
            ),
            _ => Feature::new(
                100 + i,
                a.clone(),
                vec!["text".into(), Value::Int(-(i as i64))],
            )
            .with_geometry(Some(Geometry::in_crs(
                geo_types::Geometry::Point(geo_types::Point::new(i as f64, -1.5)),
                if i % 2 == 0 { Some(3857) } else { None },
            ))),
        };
        out.push(f);
    }
    out
}

fn harness(job: &Path, file_rows: u64) -> Harness {
    let mut options = CaptureOptions::new(job.to_string_lossy(), CaptureEdges::All);
    options.file_rows = file_rows;
    Harness {
        batch_size: 100,
        capture: Some(options),
        ..Harness::default()
    }
}

#[test]
fn features_read_back_from_a_job_are_the_features_that_crossed_the_edge() {
    let dir = tempfile::tempdir().unwrap();
    let job_dir = dir.path().join("job");
    let input = mixed_stream();
    let out = harness(&job_dir, 1000)
        .run_processor(&PASS, serde_json::json!({}), vec![input.clone()])
        .unwrap();
    let job = Job::open(&job_dir.to_string_lossy()).unwrap();
    assert_eq!(job.manifest().state, JobState::Finished);
    let names: Vec<&str> = job.edges().iter().map(|e| e.name.as_str()).collect();
    assert_eq!(names, ["feed0->it", "it->collect0"]);
    for e in job.edges() {
        assert!(e.complete, "{}", e.name);
        assert_eq!(e.features, input.len() as u64);
        assert!(
            e.files.len() >= 4,
            "files of 1000 rows, and more where the columns change"
        );
        assert!(e.schemas.len() >= 2, "{:?}", e.schemas);
        let on_disk: u64 = e
            .files
            .iter()
            .map(|f| std::fs::metadata(job_dir.join(&f.path)).unwrap().len())
            .sum();
        assert_eq!(on_disk, e.bytes);
    }
    let back = job.read("feed0->it", 0, usize::MAX).unwrap();
    let want: Vec<String> = input.iter().map(describe).collect();
    let got: Vec<String> = back.iter().map(describe).collect();
    assert_eq!(got, want);
    // What the node emitted is what its outgoing capture holds.
    let emitted: Vec<String> = out.default_port().iter().map(describe).collect();
    let captured: Vec<String> = job
        .read("it->collect0", 0, usize::MAX)
        .unwrap()
        .iter()
        .map(describe)
        .collect();
    assert_eq!(captured, emitted);
    // Features of one schema share one key list when read back.
    assert!(Arc::ptr_eq(back[5].schema(), back[8].schema()));
}

#[test]
fn read_takes_an_offset_and_a_limit_across_files() {
    let dir = tempfile::tempdir().unwrap();
    let job_dir = dir.path().join("job");
    let input = mixed_stream();
    harness(&job_dir, 700)
        .run_processor(&PASS, serde_json::json!({}), vec![input.clone()])
        .unwrap();
    let job = Job::open(&job_dir.to_string_lossy()).unwrap();
    for (offset, limit) in [
        (0, 10),
        (695, 10),
        (1399, 702),
        (2990, 100),
        (5000, 5),
        (3, 0),
    ] {
        let got: Vec<String> = job
            .read(" feed0 -> it ", offset, limit)
            .unwrap()
            .iter()
            .map(describe)
            .collect();
        let want: Vec<String> = input
            .iter()
            .skip(offset as usize)
            .take(limit)
            .map(describe)
            .collect();
        assert_eq!(got, want, "offset {offset}, limit {limit}");
    }
    let err = job.read("feed0->itt", 0, 1).unwrap_err().to_string();
    assert_eq!(
        err,
        "unknown edge \"feed0->itt\"; did you mean \"feed0->it\"?"
    );
}

#[test]
fn a_failed_run_leaves_a_consistent_job_that_says_what_completed() {
    let dir = tempfile::tempdir().unwrap();
    let job_dir = dir.path().join("job");
    let yaml = "name: t\nnodes:\n  - { id: src, action: gen, with: { count: 50000 } }\n  \
                - { id: bad, action: fail, with: { at: 30000 } }\n  \
                - { id: sink, action: count }\nedges:\n  - src -> bad\n  - bad -> sink\n";
    let plan =
        crate::workflow::load("t.yaml", yaml, &test_registry(), &Default::default()).unwrap();
    let mut options = crate::executor::RunOptions {
        batch_size: 256,
        capture: Some(CaptureOptions::new(
            job_dir.to_string_lossy(),
            CaptureEdges::All,
        )),
        ..Default::default()
    };
    if let Some(c) = &mut options.capture {
        c.file_rows = 4096;
    }
    let err = run_with_timeout(plan, options, std::time::Duration::from_secs(60)).unwrap_err();
    assert!(
        matches!(err, RunError::ActionFailed { ref node, .. } if node == "bad"),
        "{err}"
    );
    let job = Job::open(&job_dir.to_string_lossy()).unwrap();
    assert_eq!(job.manifest().state, JobState::Failed);
    let bad_out = job.edge("bad->sink").unwrap();
    assert!(!bad_out.complete);
    assert!(bad_out.features < 30000, "{}", bad_out.features);
    // Every listed file is there and reads back; nothing else is in the folder.
    let mut listed: Vec<String> = Vec::new();
    for e in job.edges() {
        let n = job.read(&e.name, 0, usize::MAX).unwrap().len() as u64;
        assert_eq!(n, e.features, "{}", e.name);
        listed.extend(e.files.iter().map(|f| f.path.clone()));
    }
    let mut on_disk: Vec<String> = Vec::new();
    for e in std::fs::read_dir(job_dir.join("edges")).unwrap() {
        for f in std::fs::read_dir(e.unwrap().path()).unwrap() {
            let p = f.unwrap().path();
            on_disk.push(
                p.strip_prefix(&job_dir)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
            );
        }
    }
    listed.sort();
    on_disk.sort();
    assert_eq!(on_disk, listed, "a file in progress was left behind");
}

#[test]
fn capture_reserves_its_buffers_from_the_budget() {
    let dir = tempfile::tempdir().unwrap();
    let without = Harness {
        batch_size: 100,
        ..Harness::default()
    }
    .run_processor(&PASS, serde_json::json!({}), vec![mixed_stream()])
    .unwrap()
    .report;
    let with = harness(&dir.path().join("job"), 1000)
        .run_processor(&PASS, serde_json::json!({}), vec![mixed_stream()])
        .unwrap()
        .report;
    // Two captured edges; the harness checks the budget is back to zero afterwards.
    assert_eq!(
        with.peak_reserved_bytes - without.peak_reserved_bytes,
        2 * edge_budget_bytes(100) as u64
    );
}

#[test]
fn a_job_folder_is_not_reused_and_bad_folders_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let job_dir = dir.path().join("job");
    harness(&job_dir, 1000)
        .run_processor(&PASS, serde_json::json!({}), vec![mixed_stream()])
        .unwrap();
    let again = harness(&job_dir, 1000)
        .run_processor(&PASS, serde_json::json!({}), vec![mixed_stream()])
        .unwrap_err()
        .to_string();
    assert!(again.contains("already holds a capture job"), "{again}");

    let missing = dir.path().join("nothing");
    let err = Job::open(&missing.to_string_lossy()).unwrap_err();
    assert!(matches!(err, CaptureError::NoJob { .. }), "{err}");

    std::fs::write(job_dir.join(MANIFEST), "{ not json").unwrap();
    let err = Job::open(&job_dir.to_string_lossy())
        .unwrap_err()
        .to_string();
    assert!(err.contains("manifest.json is damaged"), "{err}");

    // A damaged capture file is an error naming it, not a panic.
    let dir2 = tempfile::tempdir().unwrap();
    let job2 = dir2.path().join("job");
    harness(&job2, 1000)
        .run_processor(&PASS, serde_json::json!({}), vec![mixed_stream()])
        .unwrap();
    let job = Job::open(&job2.to_string_lossy()).unwrap();
    let file = job2.join(&job.edges()[0].files[0].path);
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&file, &bytes[..bytes.len() / 2]).unwrap();
    let err = job.read("feed0->it", 0, 10).unwrap_err().to_string();
    assert!(err.contains("part-00001.parquet"), "{err}");
}

#[test]
fn edges_can_be_chosen_by_name_or_marked_in_the_workflow() {
    let yaml = "name: t\nnodes:\n  - { id: src, action: gen, with: { count: 10 } }\n  \
                - { id: p, action: pass }\n  - { id: sink, action: count }\nedges:\n  \
                - src -> p\n  - { from: p, to: sink.other, capture: true }\n";
    let plan =
        crate::workflow::load("t.yaml", yaml, &test_registry(), &Default::default()).unwrap();
    let names = |which: &CaptureEdges| -> Vec<String> {
        select_edges(&plan, which)
            .unwrap()
            .into_iter()
            .map(|i| plan.edge_name(i))
            .collect()
    };
    assert_eq!(names(&CaptureEdges::Marked), ["p->sink.other"]);
    assert_eq!(names(&CaptureEdges::All), ["src->p", "p->sink.other"]);
    assert_eq!(
        names(&CaptureEdges::parse("src.default -> p.default")),
        ["src->p", "p->sink.other"]
    );
    let err = select_edges(&plan, &CaptureEdges::parse("src->q")).unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown edge \"src->q\"; did you mean \"src->p\"?"
    );
}
