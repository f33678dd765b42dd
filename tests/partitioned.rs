//! Partitioned runs (`sluice plan`, `sluice run --stage K --partition I/N --job DIR`): the
//! stages run one task at a time here, as a driver would run them, and every output is
//! byte-identical to a one-process run's.

use std::path::Path;
use std::time::Duration;

use crate::util::{files, root, sluice};

const TIMEOUT: Duration = Duration::from_secs(120);

fn ok(out: &std::process::Output, what: &str) {
    assert!(
        out.status.success(),
        "{what}: exit {:?}\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The plan of `workflow` for `n` partitions, as JSON.
fn plan(workflow: &Path, vars: &[String], n: u32) -> serde_json::Value {
    let mut args = vec![
        "plan".to_string(),
        workflow.display().to_string(),
        "--partitions".into(),
        n.to_string(),
        "--json".into(),
    ];
    args.extend(vars.iter().flat_map(|v| ["--var".to_string(), v.clone()]));
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = sluice(&root(), &a, TIMEOUT);
    ok(&out, "sluice plan");
    serde_json::from_slice(&out.stdout).expect("plan --json prints JSON")
}

/// Runs every task of every stage in plan order; returns the plan.
fn run_partitioned(workflow: &Path, vars: &[String], n: u32, job: &Path) -> serde_json::Value {
    let plan = plan(workflow, vars, n);
    for stage in plan["stages"].as_array().unwrap() {
        let k = stage["stage"].as_u64().unwrap();
        for i in 0..stage["tasks"].as_u64().unwrap() {
            let mut args = vec![
                "run".to_string(),
                workflow.display().to_string(),
                "--quiet".into(),
                "--stage".into(),
                k.to_string(),
                "--partition".into(),
                format!("{i}/{n}"),
                "--job".into(),
                job.display().to_string(),
            ];
            args.extend(vars.iter().flat_map(|v| ["--var".to_string(), v.clone()]));
            let a: Vec<&str> = args.iter().map(String::as_str).collect();
            ok(
                &sluice(&root(), &a, TIMEOUT),
                &format!("stage {k} task {i}/{n}"),
            );
        }
    }
    plan
}

fn run_whole(workflow: &Path, vars: &[String]) {
    let mut args = vec![
        "run".to_string(),
        workflow.display().to_string(),
        "--quiet".into(),
    ];
    args.extend(vars.iter().flat_map(|v| ["--var".to_string(), v.clone()]));
    let a: Vec<&str> = args.iter().map(String::as_str).collect();
    ok(&sluice(&root(), &a, TIMEOUT), "one-process run");
}

/// Every file under `a` has a byte-identical twin under `b`, and the other way round.
fn same_files(a: &Path, b: &Path) {
    let rel = |d: &Path| -> Vec<std::path::PathBuf> {
        let mut v = files(d);
        v.sort();
        v
    };
    let (fa, fb) = (rel(a), rel(b));
    assert!(!fa.is_empty(), "no output in {}", a.display());
    assert_eq!(fa, fb, "the two runs wrote different files");
    for f in fa {
        let (x, y) = (
            std::fs::read(a.join(&f)).unwrap(),
            std::fs::read(b.join(&f)).unwrap(),
        );
        assert!(
            x == y,
            "{} differs from the one-process run's ({} vs {} bytes)",
            f.display(),
            x.len(),
            y.len()
        );
    }
}

/// No temporary file anywhere under `dir`.
fn no_temporary_files(dir: &Path) {
    for f in files(dir) {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        assert!(!name.contains("sluice-tmp"), "left behind: {}", f.display());
    }
}

/// Runs `workflow` whole and in 1, 2 and 4 partitions; `vars(out_dir)` gives its variables.
fn identical_for(workflow: &str, vars: impl Fn(&Path) -> Vec<String>) {
    let dir = tempfile::tempdir().unwrap();
    let workflow = root().join(workflow);
    let whole = dir.path().join("whole");
    run_whole(&workflow, &vars(&whole));
    for n in [1, 2, 4] {
        let out = dir.path().join(format!("n{n}"));
        let job = dir.path().join(format!("job{n}"));
        let plan = run_partitioned(&workflow, &vars(&out), n, &job);
        assert!(plan["stages"].as_array().unwrap().len() >= 2, "{plan}");
        same_files(&whole, &out);
        no_temporary_files(&job);
        no_temporary_files(&out);
    }
}

#[test]
fn w1_sorted_output_is_byte_identical_in_1_2_and_4_partitions() {
    let data = tempfile::tempdir().unwrap();
    let input = data.path().join("w1.csv");
    let out = sluice(
        &root(),
        &[
            "generate",
            "w1",
            "--rows",
            "30000",
            "--out",
            input.to_str().unwrap(),
        ],
        TIMEOUT,
    );
    ok(&out, "generate");
    identical_for("workflows/w1.yaml", |dir| {
        vec![
            format!("input={}", input.display()),
            format!("output={}", dir.join("w1_sorted.csv").display()),
        ]
    });
}

#[test]
fn tabular_join_and_statistics_are_byte_identical_in_1_2_and_4_partitions() {
    identical_for("workflows/tabular.yaml", |dir| {
        vec![format!("out_dir={}", dir.display())]
    });
}

#[test]
fn geometry_workflow_is_byte_identical_in_1_2_and_4_partitions() {
    identical_for("workflows/districts.yaml", |dir| {
        vec![format!("out_dir={}", dir.display())]
    });
}

#[test]
fn w1_plan_sorts_each_part_and_merges_them_in_one_task() {
    let vars = vec![
        "input=data/places.csv".to_string(),
        "output=/dev/null".to_string(),
    ];
    let p = plan(&root().join("workflows/w1.yaml"), &vars, 4);
    let stages = p["stages"].as_array().unwrap();
    assert_eq!(stages.len(), 2, "{p}");
    assert_eq!(stages[0]["tasks"], 4);
    assert_eq!(
        stages[0]["nodes"],
        serde_json::json!(["read", "value2", "keep"])
    );
    assert_eq!(stages[1]["tasks"], 1);
    assert_eq!(stages[1]["depends_on"], serde_json::json!([0]));
    assert_eq!(stages[1]["nodes"], serde_json::json!(["order", "write"]));
    let why = stages[1]["single_task_reason"].as_str().unwrap();
    assert!(
        why.contains("order (sort)") && why.contains("write (csv_writer)"),
        "{why}"
    );
    // Each task sorts its part as `order` does; the last stage merges the parts.
    assert_eq!(
        stages[0]["writes"][0]["port"],
        "order's input, sorted per task"
    );
    assert_eq!(stages[0]["writes"][0]["sorted"], true);
    assert_eq!(stages[1]["reads"][0]["order"], "merged by the sort's order");
    assert_eq!(
        stages[1]["reads"][0]["location"],
        "stage-0/bucket-00000/cut-0"
    );
}

#[test]
fn bad_partitions_and_job_folders_get_clear_errors_and_write_nothing_in_the_wrong_place() {
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("job");
    let out = dir.path().join("out");
    let wf = root().join("workflows/w1.yaml");
    let input = format!("input={}", root().join("data/places.csv").display());
    let output = format!("output={}", out.join("sorted.csv").display());
    let run = |extra: &[&str], output: &str| {
        let mut args = vec![
            "run",
            wf.to_str().unwrap(),
            "-q",
            "--var",
            &input,
            "--var",
            output,
        ];
        args.extend_from_slice(extra);
        sluice(&root(), &args, TIMEOUT)
    };
    let jobs = job.to_str().unwrap();
    let stderr = |o: &std::process::Output| String::from_utf8_lossy(&o.stderr).into_owned();

    // An index past the count.
    let o = run(
        &["--stage", "0", "--partition", "5/4", "--job", jobs],
        &output,
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stderr(&o).contains("partition 5/4 does not exist"),
        "{}",
        stderr(&o)
    );

    // The second stage before the first: its input is missing.
    let o = run(
        &["--stage", "1", "--partition", "0/2", "--job", jobs],
        &output,
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("run the first stages"),
        "{}",
        stderr(&o)
    );
    assert!(
        !job.exists() && !out.exists(),
        "a refused task wrote something"
    );

    // Stage 0 of 2 done by one task only: the missing task is named.
    ok(
        &run(
            &["--stage", "0", "--partition", "0/2", "--job", jobs],
            &output,
        ),
        "stage 0 task 0",
    );
    let o = run(
        &["--stage", "1", "--partition", "0/2", "--job", jobs],
        &output,
    );
    assert_eq!(o.status.code(), Some(2));
    let e = stderr(&o);
    assert!(
        e.contains("stage 0 task 1") && e.contains("task-00001.json"),
        "{e}"
    );
    assert!(
        !out.exists(),
        "the sink wrote although an input was missing"
    );

    // A stage of one task given another index.
    let o = run(
        &["--stage", "1", "--partition", "1/2", "--job", jobs],
        &output,
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("runs as one task"), "{}", stderr(&o));

    // The same job folder with other variables: another workflow.
    let other = format!("output={}", out.join("other.csv").display());
    let o = run(
        &["--stage", "0", "--partition", "1/2", "--job", jobs],
        &other,
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("belongs to another workflow"),
        "{}",
        stderr(&o)
    );
    let o = run(
        &["--stage", "0", "--partition", "1/3", "--job", jobs],
        &output,
    );
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("started with 2 partitions"),
        "{}",
        stderr(&o)
    );

    // The index from a scheduler's variable.
    let mut args = vec![
        "run",
        wf.to_str().unwrap(),
        "-q",
        "--var",
        &input,
        "--var",
        &output,
    ];
    args.extend_from_slice(&["--stage", "0", "--partitions", "2", "--job", jobs]);
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(&args)
        .current_dir(root())
        .env("JOB_COMPLETION_INDEX", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    ok(
        &crate::util::wait_with_timeout(child, TIMEOUT),
        "JOB_COMPLETION_INDEX=1",
    );
    let record = job.join("stage-0/bucket-00000/cut-0/task-00001.json");
    assert!(record.exists(), "task 1 did not commit");

    // Now the last stage runs; running a task again leaves the same files.
    ok(
        &run(
            &["--stage", "1", "--partition", "0/2", "--job", jobs],
            &output,
        ),
        "stage 1",
    );
    let first = std::fs::read(out.join("sorted.csv")).unwrap();
    let listing = |d: &Path| {
        let mut v = files(d);
        v.sort();
        v
    };
    let before = listing(&job);
    ok(
        &run(
            &["--stage", "0", "--partition", "0/2", "--job", jobs],
            &output,
        ),
        "again",
    );
    assert_eq!(listing(&job), before, "a task run again left other files");
    ok(
        &run(
            &["--stage", "1", "--partition", "0/2", "--job", jobs],
            &output,
        ),
        "stage 1 again",
    );
    assert_eq!(std::fs::read(out.join("sorted.csv")).unwrap(), first);
}

/// A sort with many ties, nulls, mixed ints and floats, one key descending: each task sorts
/// its part, the last stage merges the parts, and ties keep their input order across tasks.
#[test]
fn a_sort_with_ties_and_nulls_merged_from_sorted_parts_is_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("k,g,i,note\n");
    for i in 0..5000u32 {
        let k = match i % 7 {
            0 => String::new(),          // null
            1 => format!("{}.5", i % 3), // floats between the ints
            _ => (i % 4).to_string(),
        };
        let g = if i % 11 == 0 {
            String::new()
        } else {
            ["a", "b", "c"][(i % 3) as usize].to_string()
        };
        csv.push_str(&format!("{k},{g},{i},\"row {i}\nwith a line break\"\n"));
    }
    std::fs::write(dir.path().join("in.csv"), csv).unwrap();
    let wf = dir.path().join("wf.yaml");
    std::fs::write(
        &wf,
        "name: ties\nvariables:\n  out:\n    default: out\nnodes:\n  - { id: read, action: csv_reader, with: { path: in.csv } }\n  - id: order\n    action: sort\n    with:\n      by:\n        - { attribute: g, descending: true }\n        - { attribute: k, nulls: first }\n  - { id: write, action: csv_writer, with: { path: \"${out}/sorted.csv\" } }\nedges:\n  - read -> order\n  - order -> write\n",
    )
    .unwrap();
    let vars = |d: &Path| vec![format!("out={}", d.display())];
    let whole = dir.path().join("whole");
    run_whole(&wf, &vars(&whole));
    for n in [1, 2, 3, 4] {
        let out = dir.path().join(format!("n{n}"));
        let plan = run_partitioned(&wf, &vars(&out), n, &dir.path().join(format!("job{n}")));
        assert_eq!(plan["stages"][0]["writes"][0]["sorted"], true, "{plan}");
        same_files(&whole, &out);
    }
}

/// A sink whose path ends in `/` writes a folder of parts: every task of a parallel stage
/// writes its own part, and the parts read in order hold the one-process run's rows; a
/// folder holding a part of an earlier run with more tasks is refused.
#[test]
fn a_folder_of_parts_is_written_by_every_task_and_stale_parts_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.csv");
    ok(
        &sluice(
            &root(),
            &[
                "generate",
                "w1",
                "--rows",
                "7000",
                "--out",
                input.to_str().unwrap(),
            ],
            TIMEOUT,
        ),
        "generate",
    );
    let wf = dir.path().join("wf.yaml");
    std::fs::write(
        &wf,
        "name: parts\nvariables:\n  out:\n    default: out/\nnodes:\n  - { id: read, action: csv_reader, with: { path: in.csv } }\n  - { id: keep, action: filter, with: { expression: \"value > 500\" } }\n  - { id: csv, action: csv_writer, with: { path: \"${out}csv/\" } }\n  - { id: jsonl, action: jsonl_writer, with: { path: \"${out}jsonl/\" } }\nedges:\n  - read -> keep\n  - keep.passed -> csv\n  - keep.passed -> jsonl\n",
    )
    .unwrap();
    let whole = dir.path().join("whole");
    run_whole(&wf, &[format!("out={}/", whole.display())]);
    let whole_csv = std::fs::read_to_string(whole.join("csv/part-00000.csv")).unwrap();
    let whole_jsonl = std::fs::read_to_string(whole.join("jsonl/part-00000.jsonl")).unwrap();
    assert!(whole_csv.lines().count() > 1000, "{}", whole_csv.len());
    let out = dir.path().join("parts");
    let vars = [format!("out={}/", out.display())];
    let plan = run_partitioned(&wf, &vars, 3, &dir.path().join("job"));
    assert_eq!(plan["stages"].as_array().unwrap().len(), 1, "{plan}");
    assert_eq!(plan["stages"][0]["writes"][0]["parts"], true);
    let (mut csv, mut jsonl) = (String::new(), String::new());
    for i in 0..3 {
        let part = std::fs::read_to_string(out.join(format!("csv/part-{i:05}.csv"))).unwrap();
        let mut lines = part.split_inclusive('\n');
        let header = lines.next().unwrap();
        if i == 0 {
            csv.push_str(header);
        } else {
            assert_eq!(header, whole_csv.split_inclusive('\n').next().unwrap());
        }
        csv.extend(lines);
        jsonl += &std::fs::read_to_string(out.join(format!("jsonl/part-{i:05}.jsonl"))).unwrap();
    }
    assert!(
        csv == whole_csv,
        "the CSV parts do not add up to the one-process output"
    );
    assert!(
        jsonl == whole_jsonl,
        "the JSON Lines parts do not add up to the one-process output"
    );

    // Two tasks into the folder of three parts: part-00002 would be read as part of it.
    let job2 = dir.path().join("job2");
    let args = [
        "run",
        wf.to_str().unwrap(),
        "-q",
        "--var",
        &vars[0],
        "--stage",
        "0",
        "--partition",
        "0/2",
        "--job",
        job2.to_str().unwrap(),
    ];
    let o = sluice(&root(), &args, TIMEOUT);
    assert_eq!(o.status.code(), Some(2));
    let e = String::from_utf8_lossy(&o.stderr);
    assert!(
        e.contains("holds part-00002.csv") || e.contains("holds part-00002.jsonl"),
        "{e}"
    );
}

/// A sort into a folder of parts runs as N tasks, task B taking the B-th range of the
/// sort's order from every sorted part: the parts in order are the one-process sort, with
/// ties (kept in input order across tasks) and nulls, and every part gets a share.
#[test]
fn a_range_partitioned_sort_writes_parts_that_are_sorted_as_a_whole() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("k,g,i\n");
    for i in 0..20_000u32 {
        let k = match i % 7 {
            0 => String::new(),
            1 => format!("{}.5", i % 50),
            _ => (i % 50).to_string(),
        };
        let g = if i % 11 == 0 {
            ""
        } else {
            ["a", "b", "c"][(i % 3) as usize]
        };
        csv.push_str(&format!("{k},{g},{i}\n"));
    }
    std::fs::write(dir.path().join("in.csv"), csv).unwrap();
    let wf = dir.path().join("wf.yaml");
    std::fs::write(
        &wf,
        "name: ranges\nvariables:\n  out:\n    default: out/\nnodes:\n  - { id: read, action: csv_reader, with: { path: in.csv } }\n  - id: order\n    action: sort\n    with:\n      by:\n        - { attribute: k, nulls: first }\n        - { attribute: g, descending: true }\n  - { id: keep, action: filter, with: { expression: \"i % 5 != 0\" } }\n  - { id: write, action: csv_writer, with: { path: \"${out}\" } }\nedges:\n  - read -> order\n  - order -> keep\n  - keep.passed -> write\n",
    )
    .unwrap();
    let whole = dir.path().join("whole");
    run_whole(&wf, &[format!("out={}/", whole.display())]);
    let expected = std::fs::read_to_string(whole.join("part-00000.csv")).unwrap();
    for n in [2u32, 3, 4] {
        let out = dir.path().join(format!("n{n}"));
        let plan = run_partitioned(
            &wf,
            &[format!("out={}/", out.display())],
            n,
            &dir.path().join(format!("job{n}")),
        );
        let stages = plan["stages"].as_array().unwrap();
        assert_eq!(stages.len(), 2, "{plan}");
        assert_eq!(stages[1]["tasks"], n, "{plan}");
        assert_eq!(stages[1]["range_of"], "order", "{plan}");
        let mut joined = String::new();
        for i in 0..n {
            let part = std::fs::read_to_string(out.join(format!("part-{i:05}.csv"))).unwrap();
            let mut lines = part.split_inclusive('\n');
            let header = lines.next().unwrap_or_default();
            let rows: Vec<&str> = lines.collect();
            assert!(
                rows.len() > 16_000 / (4 * n as usize),
                "part {i} of {n} holds only {} rows",
                rows.len()
            );
            if i == 0 {
                joined.push_str(header);
            }
            joined.extend(rows);
        }
        assert!(
            joined == expected,
            "the {n} sorted parts are not the one-process sort"
        );
    }
}

/// `dedup` and grouped `statistics` feeding folders of parts run as N tasks, each on the
/// keys whose hash falls in its bucket: the parts hold exactly the one-process output
/// (every key in one part), and each part keeps the one-process order.
#[test]
fn hash_partitioned_dedup_and_statistics_write_parts_that_add_up_to_the_whole() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from("k,g,i\n");
    for i in 0..12_000u32 {
        let k = if i % 13 == 0 {
            String::new()
        } else {
            (i % 997).to_string()
        };
        let g = ["a", "b", "c", "d", "e"][(i % 5) as usize];
        csv.push_str(&format!("{k},{g}{},{i}\n", i % 37));
    }
    std::fs::write(dir.path().join("in.csv"), csv).unwrap();
    let wf = dir.path().join("wf.yaml");
    std::fs::write(
        &wf,
        "name: groups\nvariables:\n  out:\n    default: out/\nnodes:\n  - { id: read, action: csv_reader, with: { path: in.csv } }\n  - { id: once, action: dedup, with: { by: [k] } }\n  - { id: first, action: csv_writer, with: { path: \"${out}first/\" } }\n  - { id: dups, action: jsonl_writer, with: { path: \"${out}dups/\" } }\n  - id: stats\n    action: statistics\n    with:\n      group_by: [g]\n      aggregates:\n        - { op: count }\n        - { op: sum, attribute: i, as: total }\n        - { op: first, attribute: i, as: first_i }\n  - { id: by_g, action: csv_writer, with: { path: \"${out}stats/\" } }\nedges:\n  - read -> once\n  - once -> first\n  - once.duplicates -> dups\n  - read -> stats\n  - stats -> by_g\n",
    )
    .unwrap();
    let whole = dir.path().join("whole");
    run_whole(&wf, &[format!("out={}/", whole.display())]);
    for n in [2u32, 3] {
        let out = dir.path().join(format!("n{n}"));
        let plan = run_partitioned(
            &wf,
            &[format!("out={}/", out.display())],
            n,
            &dir.path().join(format!("job{n}")),
        );
        let hashed: Vec<&serde_json::Value> = plan["stages"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| !s["hash_of"].is_null())
            .collect();
        assert_eq!(hashed.len(), 2, "{plan}");
        assert!(hashed.iter().all(|s| s["tasks"] == n), "{plan}");
        for (folder, ext, header) in [
            ("first", "csv", true),
            ("dups", "jsonl", false),
            ("stats", "csv", true),
        ] {
            let (expected, parts) = rows_of_parts(&whole, &out, folder, ext, header, n);
            let position: std::collections::HashMap<&str, usize> = expected
                .iter()
                .enumerate()
                .map(|(i, l)| (l.as_str(), i))
                .collect();
            for (i, rows) in parts.iter().enumerate() {
                assert!(!rows.is_empty(), "{folder} part {i} of {n} is empty");
                let at: Vec<usize> = rows.iter().map(|l| position[l.as_str()]).collect();
                assert!(
                    at.windows(2).all(|w| w[0] < w[1]),
                    "{folder} part {i} is out of order"
                );
            }
            assert!(
                add_up(&expected, &parts),
                "{folder}: the {n} parts do not add up to the one-process output"
            );
        }
    }
}

/// A `join` feeding folders of parts runs as N tasks, both inputs split by their key's
/// hash: every output port's parts add up to the one-process output, each part in order.
#[test]
fn a_hash_partitioned_join_writes_parts_that_add_up_to_the_whole() {
    let dir = tempfile::tempdir().unwrap();
    let mut orders = String::from("order,customer,amount\n");
    for i in 0..6000u32 {
        let c = if i % 17 == 0 {
            String::new()
        } else {
            (i % 450).to_string()
        };
        orders.push_str(&format!("{i},{c},{}.25\n", i % 97));
    }
    let mut customers = String::from("id,name\n");
    for c in (0..500u32).step_by(2) {
        customers.push_str(&format!("{c},name {c}\n"));
        if c % 50 == 0 {
            customers.push_str(&format!("{c},second {c}\n"));
        }
    }
    std::fs::write(dir.path().join("orders.csv"), orders).unwrap();
    std::fs::write(dir.path().join("customers.csv"), customers).unwrap();
    let wf = dir.path().join("wf.yaml");
    std::fs::write(
        &wf,
        "name: joins\nvariables:\n  out:\n    default: out/\nnodes:\n  - { id: orders, action: csv_reader, with: { path: orders.csv } }\n  - { id: customers, action: csv_reader, with: { path: customers.csv } }\n  - { id: j, action: join, with: { requestor_key: [customer], supplier_key: [id], mode: left } }\n  - { id: joined, action: csv_writer, with: { path: \"${out}joined/\" } }\n  - { id: lonely, action: jsonl_writer, with: { path: \"${out}lonely/\" } }\nedges:\n  - orders -> j.requestor\n  - customers -> j.supplier\n  - j.joined -> joined\n  - j.unjoined_supplier -> lonely\n",
    )
    .unwrap();
    let whole = dir.path().join("whole");
    run_whole(&wf, &[format!("out={}/", whole.display())]);
    for n in [2u32, 4] {
        let out = dir.path().join(format!("n{n}"));
        let plan = run_partitioned(
            &wf,
            &[format!("out={}/", out.display())],
            n,
            &dir.path().join(format!("job{n}")),
        );
        let last = plan["stages"].as_array().unwrap().last().unwrap().clone();
        assert_eq!(last["hash_of"], "j", "{plan}");
        assert_eq!(last["tasks"], n, "{plan}");
        for (folder, ext, header) in [("joined", "csv", true), ("lonely", "jsonl", false)] {
            let (expected, parts) = rows_of_parts(&whole, &out, folder, ext, header, n);
            assert!(
                expected.len() > 100 || folder == "lonely",
                "{folder}: {}",
                expected.len()
            );
            if folder == "joined" {
                // The keys are spread: every task joined some.
                for (i, rows) in parts.iter().enumerate() {
                    assert!(!rows.is_empty(), "joined part {i} of {n} is empty");
                }
            }
            assert!(
                add_up(&expected, &parts),
                "{folder}: the {n} parts do not add up to the whole"
            );
        }
    }
}

/// The rows of the one-process output `whole/FOLDER/part-00000.EXT` and of each of the `n`
/// parts under `out/FOLDER`; with `header`, each non-empty part's first line is checked to
/// be the whole's header and taken off.
fn rows_of_parts(
    whole: &Path,
    out: &Path,
    folder: &str,
    ext: &str,
    header: bool,
    n: u32,
) -> (Vec<String>, Vec<Vec<String>>) {
    let lines = |p: std::path::PathBuf| -> Vec<String> {
        let text = std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        text.lines().map(String::from).collect()
    };
    let mut expected = lines(whole.join(format!("{folder}/part-00000.{ext}")));
    let head = header.then(|| expected.remove(0));
    let parts = (0..n)
        .map(|i| {
            let mut rows = lines(out.join(format!("{folder}/part-{i:05}.{ext}")));
            if let (Some(h), false) = (&head, rows.is_empty()) {
                assert_eq!(&rows.remove(0), h, "{folder} part {i}");
            }
            rows
        })
        .collect();
    (expected, parts)
}

/// Whether `parts` hold exactly the rows of `whole`, in any order.
fn add_up(whole: &[String], parts: &[Vec<String>]) -> bool {
    let (mut want, mut got) = (whole.to_vec(), parts.concat());
    want.sort();
    got.sort();
    want == got
}
