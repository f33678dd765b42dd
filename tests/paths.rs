//! Where relative paths resolve: a path written in a workflow (or a variable's default)
//! against the workflow file's folder, a path given with `--var` against the current
//! folder; locations with a scheme and absolute paths as written. A missing input is an
//! error before the run, at its value.

use std::path::{Path, PathBuf};
use std::time::Duration;

use sluice::runtime::workflow::{self, LoadOptions, VarSources};

use crate::util::{sluice, stderr, stdout};

const T: Duration = Duration::from_secs(60);

/// `project/flows/copy.yaml` reading `project/data/in.csv` by default, and a sibling folder
/// `elsewhere/` to run it from.
struct Layout {
    _tmp: tempfile::TempDir,
    project: PathBuf,
    elsewhere: PathBuf,
}

const COPY: &str = "\
variables:
  input: { default: ../data/in.csv }
  output: { default: out/copy.csv }
nodes:
  - { id: read, action: csv_reader, with: { path: \"${input}\" } }
  - { id: write, action: csv_writer, with: { path: \"${output}\" } }
edges: [ read -> write, read.rejected -> write ]
";

fn layout() -> Layout {
    let tmp = tempfile::tempdir().unwrap();
    let project = tmp.path().join("project");
    let elsewhere = tmp.path().join("elsewhere");
    for d in [
        project.join("flows"),
        project.join("data"),
        elsewhere.clone(),
    ] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::write(project.join("flows/copy.yaml"), COPY).unwrap();
    std::fs::write(
        project.join("data/in.csv"),
        "name,value\nharbour,1\nmill,2\n",
    )
    .unwrap();
    Layout {
        _tmp: tmp,
        project,
        elsewhere,
    }
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn a_workflow_runs_from_any_folder_with_its_paths_beside_it() {
    let l = layout();
    let wf = l.project.join("flows/copy.yaml").display().to_string();
    let o = sluice(&l.elsewhere, &["run", &wf, "-q"], T);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    // Both defaults resolve against flows/: the input is found, the output lands there.
    assert_eq!(
        read(&l.project.join("flows/out/copy.csv")),
        "name,value\nharbour,1\nmill,2\n"
    );
    assert!(!l.elsewhere.join("out").exists());
    // The same from the project folder, naming the workflow by a relative path.
    std::fs::remove_dir_all(l.project.join("flows/out")).unwrap();
    let o = sluice(&l.project, &["run", "flows/copy.yaml", "-q"], T);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(l.project.join("flows/out/copy.csv").is_file());
    // validate and graph agree with run.
    let o = sluice(&l.elsewhere, &["validate", &wf], T);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let o = sluice(&l.elsewhere, &["graph", &wf], T);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(stdout(&o).contains("digraph"), "{}", stdout(&o));
}

#[test]
fn a_var_path_resolves_against_the_current_folder() {
    let l = layout();
    let wf = l.project.join("flows/copy.yaml").display().to_string();
    std::fs::write(l.elsewhere.join("mine.csv"), "name,value\nkiosk,3\n").unwrap();
    let o = sluice(
        &l.elsewhere,
        &[
            "run",
            &wf,
            "-q",
            "--var",
            "input=mine.csv",
            "--var",
            "output=result/copy.csv",
        ],
        T,
    );
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(
        read(&l.elsewhere.join("result/copy.csv")),
        "name,value\nkiosk,3\n"
    );
    assert!(!l.project.join("flows/result").exists());
}

#[test]
fn a_missing_input_is_a_located_error_before_the_run() {
    let l = layout();
    std::fs::remove_file(l.project.join("data/in.csv")).unwrap();
    let wf = l.project.join("flows/copy.yaml");
    let resolved = l.project.join("data/in.csv");
    for cmd in ["validate", "run"] {
        let o = sluice(&l.elsewhere, &[cmd, &wf.display().to_string()], T);
        assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
        let want = format!(
            "{}:5:51: node \"read\", parameter \"path\": input not found: {}; a relative path \
             in a workflow is resolved against the workflow's folder\n",
            wf.display(),
            resolved.display()
        );
        assert!(stderr(&o).starts_with(&want), "{cmd}: {}", stderr(&o));
    }
    assert!(!l.project.join("flows/out").exists());
    // A value given with --var says where it was looked for.
    let o = sluice(
        &l.elsewhere,
        &[
            "validate",
            &wf.display().to_string(),
            "--var",
            "input=nope.csv",
        ],
        T,
    );
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(
        err.contains(&format!(
            "input not found: {}; a relative path given with --var or SLUICE_VAR_ is resolved \
             against the current folder",
            l.elsewhere.join("nope.csv").display()
        )),
        "{err}"
    );
}

#[test]
fn a_zip_member_is_checked_in_its_archive_before_the_run() {
    let l = layout();
    let csv = std::fs::read(l.project.join("data/in.csv")).unwrap();
    let mut zip = zip::ZipWriter::new(std::fs::File::create(l.elsewhere.join("in.zip")).unwrap());
    zip.start_file("in.csv", zip::write::SimpleFileOptions::default())
        .unwrap();
    std::io::Write::write_all(&mut zip, &csv).unwrap();
    zip.finish().unwrap();
    let wf = l.project.join("flows/copy.yaml").display().to_string();
    let run = |input: &str| {
        sluice(
            &l.elsewhere,
            &[
                "run",
                &wf,
                "-q",
                "--var",
                &format!("input={input}"),
                "--var",
                "output=z.csv",
            ],
            T,
        )
    };
    let o = run("in.zip!/in.csv");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(std::fs::read(l.elsewhere.join("z.csv")).unwrap(), csv);
    // A reader given the archive reads its members (with the reader's extensions).
    std::fs::remove_file(l.elsewhere.join("z.csv")).unwrap();
    let o = run("in.zip");
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(std::fs::read(l.elsewhere.join("z.csv")).unwrap(), csv);
    std::fs::remove_file(l.elsewhere.join("z.csv")).unwrap();
    let o = run("in.zip!/other.csv");
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let want = format!(
        "input not found: {} has no member other.csv",
        l.elsewhere.join("in.zip").display()
    );
    assert!(stderr(&o).contains(&want), "{}", stderr(&o));
    let o = run("none.zip!/in.csv");
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    let want = format!(
        "input not found: {}",
        l.elsewhere.join("none.zip").display()
    );
    assert!(stderr(&o).contains(&want), "{}", stderr(&o));
    assert!(!l.elsewhere.join("z.csv").exists());
}

/// The parameters a node is built with, after loading `yaml` from `dir`.
fn params(yaml: &str, dir: &Path, cli: &[(&str, &str)]) -> Vec<serde_json::Value> {
    let vars = VarSources::new(
        cli.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    );
    let options = LoadOptions::relative_to(dir);
    match workflow::load_with(
        "wf.yaml",
        yaml,
        &sluice::actions::registry(),
        &vars,
        &options,
    ) {
        Ok(plan) => plan
            .nodes
            .iter()
            .map(|n| n.params["path"].clone())
            .collect(),
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn urls_absolute_paths_and_placeholders_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.csv"), "a\n1\n").unwrap();
    let base = dir.path().display().to_string();
    let yaml = "\
variables:
  sub: { default: parts }
nodes:
  - { id: read, action: csv_reader, with: { path: ./in.csv } }
  - { id: mem, action: csv_reader, with: { path: \"memory://paths/a.csv\" } }
  - { id: by_city, action: csv_writer, with: { path: \"${sub}/{a}.csv\" } }
  - { id: stdout, action: jsonl_writer, with: { path: \"-\" } }
  - { id: url, action: jsonl_writer, with: { path: \"file:///tmp/x.jsonl\" } }
  - { id: abs, action: parquet_writer, with: { path: /tmp/a.parquet } }
edges: [ read -> by_city, mem -> stdout, read -> url, read -> abs ]
";
    let got = params(yaml, dir.path(), &[]);
    let want = [
        format!("{base}/in.csv"),
        "memory://paths/a.csv".into(),
        format!("{base}/parts/{{a}}.csv"),
        "-".into(),
        "file:///tmp/x.jsonl".into(),
        "/tmp/a.parquet".into(),
    ];
    assert_eq!(got, want.map(serde_json::Value::from));
    // A --var value that starts a path stays as typed (relative to the current folder);
    // one inside a path written in the workflow does not change where it resolves.
    let got = params(yaml, dir.path(), &[("sub", "mine")]);
    assert_eq!(got[2], serde_json::Value::from("mine/{a}.csv"));
    let inner = yaml.replace("${sub}/{a}.csv", "out/${sub}/{a}.csv");
    let got = params(&inner, dir.path(), &[("sub", "mine")]);
    assert_eq!(
        got[2],
        serde_json::Value::from(format!("{base}/out/mine/{{a}}.csv"))
    );
}
