//! Each `tests/fixtures/<case>/` holds `workflow.yaml` (its first comment says what it
//! proves), `input/`, and `expected/`. The workflow reads `${input}` and writes under
//! `${output}`; the run goes through the binary under a timeout, and every file in
//! `expected/` must match the output byte for byte (and no other file may be written).
//! An optional `run.json` adds command-line arguments and can require that the run spills.
//! `SLUICE_BLESS=1 cargo test fixtures` rewrites `expected/`.

use std::path::Path;
use std::time::Duration;

use crate::util::{bless, files, root, sluice};

/// One test per fixture folder, so one failure does not hide the others. A folder that is
/// not listed here fails `every_fixture_folder_has_a_test`.
macro_rules! fixtures {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                run_fixture(stringify!($name));
            }
        )*
        const FIXTURES: &[&str] = &[$(stringify!($name)),*];
    };
}

fixtures!(
    attribute_operations,
    csv_round_trip,
    filter_and_sort,
    subgraph_reuse,
    geometry_measures,
    parquet_round_trip,
    spill_under_memory_limit,
    join_and_dedup,
);

#[test]
fn every_fixture_folder_has_a_test() {
    let dir = root().join("tests/fixtures");
    let mut folders: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .collect();
    folders.sort();
    let mut listed: Vec<String> = FIXTURES.iter().map(|s| s.to_string()).collect();
    listed.sort();
    assert_eq!(
        folders, listed,
        "list each folder of tests/fixtures in `fixtures!`"
    );
}

/// What `run.json` in a fixture folder may ask: extra command-line arguments, and whether
/// the run must spill (checked in its report).
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RunSettings {
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    spills: bool,
}

fn run_settings(case: &Path) -> RunSettings {
    match std::fs::read_to_string(case.join("run.json")) {
        Ok(text) => serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{}: {e}", case.join("run.json").display())),
        Err(_) => RunSettings::default(),
    }
}

fn run_fixture(name: &str) {
    let case = root().join("tests/fixtures").join(name);
    let settings = run_settings(&case);
    let out = tempfile::tempdir().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let report_path = scratch.path().join("report.json");
    let input = case.join("input");
    let mut args: Vec<String> = vec![
        "run".into(),
        "workflow.yaml".into(),
        "--quiet".into(),
        "--var".into(),
        format!("input={}", input.display()),
        "--var".into(),
        format!("output={}", out.path().display()),
        "--report".into(),
        report_path.display().to_string(),
    ];
    args.extend(settings.args.iter().cloned());
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = sluice(&case, &args, Duration::from_secs(120));
    assert!(
        output.status.success(),
        "fixture {name} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report_path).unwrap()).unwrap();
    if settings.spills {
        let spilled = report["spill_files"].as_u64().unwrap_or(0);
        assert!(
            spilled > 0,
            "fixture {name} was meant to spill, and did not: {report}"
        );
    }
    let expected = case.join("expected");
    if bless() {
        let _ = std::fs::remove_dir_all(&expected);
        for f in files(out.path()) {
            let to = expected.join(&f);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(out.path().join(&f), to).unwrap();
        }
        return;
    }
    let want = files(&expected);
    let got = files(out.path());
    assert_eq!(want, got, "fixture {name}: output files differ");
    for f in want {
        let a = std::fs::read(expected.join(&f)).unwrap();
        let b = std::fs::read(out.path().join(&f)).unwrap();
        if a != b {
            crate::eqnice!(
                String::from_utf8_lossy(&a).to_string(),
                String::from_utf8_lossy(&b).to_string(),
                format!("fixture {name}: {}", f.display())
            );
            panic!("fixture {name}: {} differs in its bytes", f.display());
        }
    }
}

/// A plain CSV -> CSV copy is byte for byte: the round-trip fixture's expected output is its
/// input, so blessing cannot quietly accept a changed value.
#[test]
fn csv_round_trip_expects_its_input_unchanged() {
    let case = root().join("tests/fixtures/csv_round_trip");
    let inputs = files(&case.join("input"));
    assert!(inputs.len() >= 2);
    assert_eq!(inputs, files(&case.join("expected")));
    for f in inputs {
        assert_eq!(
            std::fs::read(case.join("input").join(&f)).unwrap(),
            std::fs::read(case.join("expected").join(&f)).unwrap(),
            "{}",
            f.display()
        );
    }
}

/// The Parquet copy in `parquet_round_trip` is its input byte for byte, so blessing cannot
/// quietly accept a changed type, value or metadata.
#[test]
fn parquet_round_trip_copy_is_its_input() {
    let case = root().join("tests/fixtures/parquet_round_trip");
    assert_eq!(
        std::fs::read(case.join("input/typed.parquet")).unwrap(),
        std::fs::read(case.join("expected/typed.parquet")).unwrap()
    );
}
