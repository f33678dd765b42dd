//! The malformed data corpus: each `tests/malformed/<case>.<ext>` is a broken (or awkward)
//! input file, and `<case>.expected` the outcome `sluice run` must give for it: the exit
//! code, the stderr lines, the rows written to the `default` port and those written to the
//! `rejected` port (with `_rejection_reason`), and the files left in the output folder.
//!
//! The reader comes from the extension (a trailing `.gz` is ignored): `csv`/`tsv`/`txt` →
//! `csv_reader`, `json`/`jsonl`/`ndjson` → `json_reader`, `geojson` → `geojson_reader`,
//! `parquet` → `parquet_reader`. Each reader has one generic workflow in
//! `tests/malformed/workflows/<reader>.yaml` with the variables `input` (the file) and
//! `output` (a folder), run with `--quiet` in a fresh temporary folder that holds a copy of
//! the case file.
//!
//! The Parquet files were written once with pyarrow (30 rows `id`/`name`/`value` in row
//! groups of 10, uncompressed, for the valid control and the files cut or corrupted from
//! it; one small table per type or codec for the others) and are committed as they are.
//!
//! Whatever the expected file says, a run must end within [`TIMEOUT`], must not panic, and
//! a failed run must leave no file behind; cases known to break one of these rules, or to
//! give a wrong outcome that is recorded as it is, are listed in [`KNOWN_ISSUES`].
//! `SLUICE_BLESS=1 cargo test --test tests malformed` rewrites the expected files.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use crate::util::{bless, files, root, sluice};

/// The longest a case may run.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Cases whose recorded outcome is a defect, with what is wrong. Their expected files hold
/// the current (wrong) outcome, so a fix shows up as a diff: bless it and remove the entry.
const KNOWN_ISSUES: &[(&str, &str)] = &[
    // Integers beyond u64 reach the JSON readers as floats (serde_json without arbitrary
    // precision), so they lose digits without a rejection. Those in (i64::MAX, u64::MAX]
    // are an error now; this case also holds one, which is what stops its run.
    (
        "geojson_huge_integer",
        "123456789012345678901234567890 would be read as 1.2345678901234568e+29; the run \
         fails only because 18446744073709551615 in the same file is an error",
    ),
    (
        "json_huge_number",
        "123456789012345678901234567890 is written as 1.2345678901234568e+29 without a \
         rejection or a warning",
    ),
];

/// Lines longer than this are shortened to a prefix, their length and a hash.
const LONG_LINE: usize = 400;

/// The reader of a case file, from its extension.
fn reader_for(file_name: &str) -> Option<&'static str> {
    let name = file_name.strip_suffix(".gz").unwrap_or(file_name);
    let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
    match ext.as_str() {
        "csv" | "tsv" | "txt" => Some("csv"),
        "json" | "jsonl" | "ndjson" => Some("json"),
        "geojson" => Some("geojson"),
        "parquet" => Some("parquet"),
        _ => None,
    }
}

/// The case name: the file name up to its first dot.
fn case_name(file_name: &str) -> &str {
    file_name.split_once('.').map_or(file_name, |(n, _)| n)
}

/// FNV-1a, 64 bits: a stable fingerprint for shortened lines.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// One line as recorded: control characters escaped, long lines shortened.
fn record_line(line: &str) -> String {
    let escaped: String = line
        .chars()
        .map(|c| {
            if c.is_control() && c != '\t' {
                format!("\\u{{{:x}}}", u32::from(c))
            } else {
                c.to_string()
            }
        })
        .collect();
    if escaped.len() <= LONG_LINE {
        return escaped;
    }
    let cut = escaped
        .char_indices()
        .map(|(i, _)| i)
        .take_while(|i| *i <= 160)
        .last()
        .unwrap_or(0);
    format!(
        "{}... [{} bytes, fnv1a {:016x}]",
        &escaped[..cut],
        line.len(),
        fnv1a(line.as_bytes())
    )
}

/// Whether a stderr line is about time or memory (varies from run to run).
fn is_volatile(line: &str) -> bool {
    line.starts_with("done in ") || line.contains("peak memory") || line.ends_with(" ms")
}

/// Runs one case in a fresh folder and renders its outcome. Also returns the problems that
/// break the corpus' hard rules (a panic, files left by a failed run).
fn run_case(case: &Path) -> (String, Vec<String>) {
    let file_name = case.file_name().unwrap().to_string_lossy().to_string();
    let reader = reader_for(&file_name).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path();
    let workflow = format!("{reader}.yaml");
    std::fs::copy(
        root().join("tests/malformed/workflows").join(&workflow),
        tmp.join(&workflow),
    )
    .unwrap();
    std::fs::copy(case, tmp.join(&file_name)).unwrap();
    let input = format!("input={file_name}");
    let args = [
        "run",
        &workflow,
        "--quiet",
        "--var",
        &input,
        "--var",
        "output=out",
    ];
    let out = sluice(tmp, &args, TIMEOUT);
    let code = out.status.code();

    let mut text = String::new();
    match code {
        Some(c) => writeln!(text, "exit: {c}").unwrap(),
        None => writeln!(
            text,
            "exit: killed by signal {}",
            std::os::unix::process::ExitStatusExt::signal(&out.status).unwrap_or(0)
        )
        .unwrap(),
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    // The longer form first: one may contain the other.
    let mut tmp_names = [
        tmp.canonicalize().unwrap().display().to_string(),
        tmp.display().to_string(),
    ];
    tmp_names.sort_by_key(|t| std::cmp::Reverse(t.len()));
    text.push_str("stderr:\n");
    for line in stderr.lines().filter(|l| !is_volatile(l)) {
        let mut line = line.to_string();
        for t in &tmp_names {
            line = line.replace(t.as_str(), "$TMP");
        }
        writeln!(text, "  {}", record_line(&line)).unwrap();
    }

    let left: Vec<String> = files(tmp)
        .into_iter()
        .map(|p| p.display().to_string())
        .filter(|p| *p != workflow && *p != file_name)
        .collect();
    for (port, file) in [
        ("accepted", "out/accepted.jsonl"),
        ("rejected", "out/rejected.jsonl"),
    ] {
        match std::fs::read(tmp.join(file)) {
            Ok(bytes) => {
                let rows = String::from_utf8_lossy(&bytes);
                let n = rows.lines().count();
                let s = if n == 1 { "" } else { "s" };
                writeln!(text, "{port} ({n} row{s}):").unwrap();
                for row in rows.lines() {
                    writeln!(text, "  {}", record_line(row)).unwrap();
                }
            }
            Err(_) => writeln!(text, "{port}: no file").unwrap(),
        }
    }
    let others: Vec<&String> = left
        .iter()
        .filter(|p| *p != "out/accepted.jsonl" && *p != "out/rejected.jsonl")
        .collect();
    if !others.is_empty() {
        writeln!(text, "other files: {others:?}").unwrap();
    }

    let mut broken = Vec::new();
    if code == Some(101) || stderr.contains("panicked") {
        broken.push(format!("{file_name}: sluice panicked:\n{stderr}"));
    }
    if code.is_none() {
        broken.push(format!(
            "{file_name}: sluice was killed by a signal:\n{stderr}"
        ));
    }
    if code != Some(0) && !left.is_empty() {
        broken.push(format!(
            "{file_name}: the run failed (exit {code:?}) but left files: {left:?}"
        ));
    }
    (text, broken)
}

/// A line diff of two small texts (longest common subsequence): `- ` lines only in `want`,
/// `+ ` lines only in `got`, `  ` lines in both.
fn diff(want: &str, got: &str) -> String {
    let (a, b): (Vec<&str>, Vec<&str>) = (want.lines().collect(), got.lines().collect());
    // lcs[i][j]: the longest common subsequence of a[i..] and b[j..].
    let mut lcs = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, String::new());
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            writeln!(out, "  {}", a[i]).unwrap();
            (i, j) = (i + 1, j + 1);
        } else if j < b.len() && (i == a.len() || lcs[i][j + 1] >= lcs[i + 1][j]) {
            writeln!(out, "+ {}", b[j]).unwrap();
            j += 1;
        } else {
            writeln!(out, "- {}", a[i]).unwrap();
            i += 1;
        }
    }
    out
}

#[test]
fn malformed_inputs_have_their_recorded_outcomes() {
    let dir = root().join("tests/malformed");
    let mut cases: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_none_or(|e| e != "expected"))
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 40,
        "need at least 40 cases, found {}",
        cases.len()
    );

    let mut names = std::collections::BTreeSet::new();
    for case in &cases {
        let file_name = case.file_name().unwrap().to_string_lossy().to_string();
        assert!(
            reader_for(&file_name).is_some(),
            "{file_name}: no reader for this extension"
        );
        assert!(
            names.insert(case_name(&file_name).to_string()),
            "two case files named {}",
            case_name(&file_name)
        );
    }
    for (known, _) in KNOWN_ISSUES {
        assert!(names.contains(*known), "KNOWN_ISSUES names no case {known}");
    }

    let mut failures = Vec::new();
    for case in &cases {
        let file_name = case.file_name().unwrap().to_string_lossy().to_string();
        let name = case_name(&file_name);
        let known = KNOWN_ISSUES.iter().find(|(k, _)| *k == name);
        // A hang kills the process and panics in `sluice`: recorded as this case's outcome.
        let (got, broken) = std::panic::catch_unwind(|| run_case(case)).unwrap_or_else(|e| {
            let why = e
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| (*s).to_string()))
                .unwrap_or_default();
            (format!("{why}\n"), vec![format!("{file_name}: {why}")])
        });
        if let Some((_, why)) = known {
            eprintln!("known issue, {file_name}: {why}");
        } else {
            failures.extend(broken);
        }
        let expected_path = dir.join(format!("{name}.expected"));
        if bless() {
            std::fs::write(&expected_path, &got).unwrap();
            continue;
        }
        let Ok(want) = std::fs::read_to_string(&expected_path) else {
            failures.push(format!(
                "{file_name}: no {}; SLUICE_BLESS=1 writes it:\n```\n{got}```\n",
                expected_path.display()
            ));
            continue;
        };
        if want != got {
            let hint = if known.is_some() {
                "\n(a known issue: if this is the fix, bless it and remove the case from KNOWN_ISSUES)"
            } else {
                ""
            };
            failures.push(format!(
                "{file_name}: the outcome differs from {}{hint}\n\
                 (- expected, + got)\n```\n{}```\n",
                expected_path
                    .strip_prefix(root())
                    .unwrap_or(&expected_path)
                    .display(),
                diff(&want, &got)
            ));
        }
    }
    for expected in std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.path()) {
        if expected.extension().is_some_and(|e| e == "expected") {
            let stem = expected.file_stem().unwrap().to_string_lossy().to_string();
            if !names.contains(&stem) {
                failures.push(format!("{}: no case file", expected.display()));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} malformed case(s) failed (SLUICE_BLESS=1 rewrites the expected files):\n\n{}",
        failures.len(),
        failures.join("\n")
    );
}
