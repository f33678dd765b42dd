//! Each `tests/fixtures/<case>/` holds `workflow.yaml` (its first comment says what it
//! proves), `input/`, and `expected/`. The workflow reads `${input}` and writes under
//! `${output}`; the run goes through the binary under a timeout, and every file in
//! `expected/` must match the output byte for byte (and no other file may be written).
//! `SLUICE_BLESS=1 cargo test fixtures` rewrites `expected/`.

use std::time::Duration;

use crate::util::{bless, files, root, sluice};

#[test]
fn workflow_fixtures() {
    let dir = root().join("tests/fixtures");
    let mut cases: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 3,
        "expected fixtures under {}",
        dir.display()
    );
    for case in cases {
        let name = case.file_name().unwrap().to_string_lossy().to_string();
        let out = tempfile::tempdir().unwrap();
        let input = case.join("input");
        let output = sluice(
            &case,
            &[
                "run",
                "workflow.yaml",
                "--quiet",
                "--var",
                &format!("input={}", input.display()),
                "--var",
                &format!("output={}", out.path().display()),
            ],
            Duration::from_secs(120),
        );
        assert!(
            output.status.success(),
            "fixture {name} failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        let expected = case.join("expected");
        if bless() {
            let _ = std::fs::remove_dir_all(&expected);
            for f in files(out.path()) {
                let to = expected.join(&f);
                std::fs::create_dir_all(to.parent().unwrap()).unwrap();
                std::fs::copy(out.path().join(&f), to).unwrap();
            }
            continue;
        }
        let want = files(&expected);
        let got = files(out.path());
        assert_eq!(want, got, "fixture {name}: output files differ");
        for f in want {
            let a = std::fs::read(expected.join(&f)).unwrap();
            let b = std::fs::read(out.path().join(&f)).unwrap();
            crate::eqnice!(
                String::from_utf8_lossy(&a).to_string(),
                String::from_utf8_lossy(&b).to_string(),
                format!("fixture {name}: {}", f.display())
            );
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
