//! Fuzzing with proptest: the workflow loader and the expression compiler and evaluator get
//! random bytes, and random mutations of valid workflows and expressions (the seeds in
//! `fuzz/corpus/`, the sample workflows and the test fixtures). None may panic or hang, and
//! every error must say where: a workflow diagnostic has a line and a column inside the file,
//! an expression error an offset inside the source.
//!
//! `SLUICE_FUZZ_CASES` sets the cases per property (default 256); for a long run:
//! `SLUICE_FUZZ_CASES=200000 cargo test --release -p sluice-runtime --test fuzz`.
//! The `fuzz/` crate runs the same targets under cargo-fuzz (libFuzzer).

use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use proptest::prelude::*;
use sluice_runtime::action::schema_of;
use sluice_runtime::expr::Expr;
use sluice_runtime::testing::fuzz;
use sluice_runtime::workflow::{self, VarSources};
use sluice_runtime::{
    ActionError, ActionKind, ActionSpec, BuildContext, BuiltAction, Emitter, Feature, NodeContext,
    NodeImpl, Registry, Sink, Source, Transform,
};

/// One input taking longer than this is a hang.
const HANG: Duration = Duration::from_secs(20);

fn cases() -> u32 {
    std::env::var("SLUICE_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

/// Runs `f` on a thread; fails the case if it panics or does not return within [`HANG`].
fn within<T: Send + 'static>(
    what: String,
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, TestCaseError> {
    let (tx, rx) = crossbeam_channel::bounded(1);
    let worker = std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(HANG) {
        Ok(v) => {
            let _ = worker.join();
            Ok(v)
        }
        Err(crossbeam_channel::RecvTimeoutError::Timeout) => Err(TestCaseError::fail(format!(
            "no answer within {HANG:?} (a hang) on {what}"
        ))),
        Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
            Err(TestCaseError::fail(format!("panicked on {what}")))
        }
    }
}

// ─── seeds ──────────────────────────────────────────────────────────────────────────────────

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Every file directly in `dir` whose name ends with one of `exts` (or any, for `[]`).
fn files_in(dir: &Path, exts: &[&str]) -> Vec<String> {
    let mut out: Vec<(PathBuf, String)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .filter(|p| exts.is_empty() || exts.iter().any(|x| p.to_string_lossy().ends_with(x)))
        .filter_map(|p| {
            Some((
                p.clone(),
                String::from_utf8_lossy(&std::fs::read(&p).ok()?).into(),
            ))
        })
        .collect();
    out.sort();
    out.into_iter().map(|(_, s)| s).collect()
}

static WORKFLOW_SEEDS: LazyLock<Vec<String>> = LazyLock::new(|| {
    let root = repo();
    let mut seeds = files_in(&root.join("fuzz/corpus/workflow_load"), &[]);
    seeds.extend(files_in(&root.join("workflows"), &[".yaml"]));
    seeds.extend(files_in(&root.join("tests/invalid"), &[".yaml", ".json"]));
    if let Ok(dirs) = std::fs::read_dir(root.join("tests/fixtures")) {
        let mut dirs: Vec<PathBuf> = dirs.flatten().map(|e| e.path()).collect();
        dirs.sort();
        for d in dirs {
            seeds.extend(files_in(&d, &["workflow.yaml"]));
        }
    }
    assert!(seeds.len() > 5, "workflow seeds not found");
    seeds
});

static EXPR_SEEDS: LazyLock<Vec<String>> = LazyLock::new(|| {
    let seeds = files_in(&repo().join("fuzz/corpus/expr"), &[]);
    assert!(seeds.len() > 5, "expression seeds not found");
    seeds
});

/// Pieces a mutation inserts: the syntax of YAML, of workflows and of expressions.
const TOKENS: &[&str] = &[
    ":",
    ": ",
    "-",
    "- ",
    "{",
    "}",
    "[",
    "]",
    ",",
    "\"",
    "'",
    "`",
    "\\",
    "&a ",
    "*a",
    "!!str ",
    "!!int ",
    "|",
    ">",
    "#",
    "\n",
    "\n  ",
    "  ",
    "\t",
    "~",
    "null",
    "true",
    "0",
    "-1",
    "1e309",
    "9223372036854775808",
    "0.5",
    "${",
    "}",
    "$${",
    "${x}",
    "->",
    ".",
    "nodes:",
    "edges:",
    "subgraphs:",
    "variables:",
    "inputs:",
    "outputs:",
    "subgraph: ",
    "action: ",
    "with: ",
    "id: ",
    "expression: ",
    "\u{0}",
    "é",
    "\u{feff}",
    "\u{10ffff}",
    "&&",
    "||",
    "!",
    "not ",
    " in ",
    "==",
    "!=",
    "<=",
    ">=",
    "<",
    "+",
    "*",
    "/",
    "%",
    "(",
    ")",
    "if(",
    "coalesce(",
    "substr(",
    "round(",
    "to_date(",
    "to_datetime(",
    "concat(",
    "len(",
    "min(",
    "max(",
    "\"abc\"",
    "'x'",
    "9999999999999999999999",
    "---\n",
    "...\n",
    "? ",
    "%YAML 1.2\n",
];

/// A mutation of a seed.
#[derive(Debug, Clone)]
enum Edit {
    Insert(usize, usize),
    Delete(usize, usize),
    Byte(usize, u8),
    Duplicate(usize, usize),
    Truncate(usize),
}

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    let edit = prop_oneof![
        4 => (any::<usize>(), 0..TOKENS.len()).prop_map(|(a, t)| Edit::Insert(a, t)),
        3 => (any::<usize>(), 1usize..8).prop_map(|(a, n)| Edit::Delete(a, n)),
        2 => (any::<usize>(), any::<u8>()).prop_map(|(a, b)| Edit::Byte(a, b)),
        1 => (any::<usize>(), 1usize..40).prop_map(|(a, n)| Edit::Duplicate(a, n)),
        1 => any::<usize>().prop_map(Edit::Truncate),
    ];
    prop::collection::vec(edit, 1..6)
}

/// Applies edits to the bytes of `seed` (so they may cut a character in two: the result is
/// read back lossily, as a loader reading a damaged file would).
fn mutate(seed: &str, edits: &[Edit]) -> String {
    let mut b = seed.as_bytes().to_vec();
    for e in edits {
        let at = |a: usize, len: usize| if len == 0 { 0 } else { a % (len + 1) };
        match *e {
            Edit::Insert(a, t) => {
                let i = at(a, b.len());
                b.splice(i..i, TOKENS[t].bytes());
            }
            Edit::Delete(a, n) => {
                let i = at(a, b.len());
                b.drain(i..(i + n).min(b.len()));
            }
            Edit::Byte(a, v) if !b.is_empty() => {
                let i = a % b.len();
                b[i] = v;
            }
            Edit::Byte(..) => b.push(e_byte(e)),
            Edit::Duplicate(a, n) => {
                let i = at(a, b.len());
                let piece: Vec<u8> = b[i..(i + n).min(b.len())].to_vec();
                b.splice(i..i, piece);
            }
            Edit::Truncate(a) => {
                let i = at(a, b.len());
                b.truncate(i);
            }
        }
    }
    String::from_utf8_lossy(&b).into_owned()
}

fn e_byte(e: &Edit) -> u8 {
    match e {
        Edit::Byte(_, v) => *v,
        _ => b' ',
    }
}

// ─── the workflow loader ────────────────────────────────────────────────────────────────────

/// Stand-ins for the real actions (this crate cannot depend on them): any parameters are
/// accepted, every string under an `expression` key is compiled, the ports are a superset of
/// the real ones (plus the `port` of each condition).
fn any_params(c: &BuildContext) -> Result<serde_json::Value, ActionError> {
    fn walk(v: &serde_json::Value, path: String) -> Result<(), ActionError> {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    let p = if path.is_empty() {
                        k.clone()
                    } else {
                        format!("{path}.{k}")
                    };
                    if let (true, Some(src)) = (k == "expression", v.as_str()) {
                        Expr::compile(src).map_err(|e| ActionError::param(&p, e.to_string()))?;
                    }
                    walk(v, p)?;
                }
            }
            serde_json::Value::Array(a) => {
                for (i, v) in a.iter().enumerate() {
                    walk(v, format!("{path}[{i}]"))?;
                }
            }
            _ => {}
        }
        Ok(())
    }
    walk(c.params, String::new())?;
    Ok(c.params.clone())
}

const OUTPUTS: &[&str] = &[
    "default",
    "passed",
    "unfiltered",
    "rejected",
    "joined",
    "unjoined_requestor",
    "unjoined_supplier",
    "duplicates",
    "failed",
];
const INPUTS: &[&str] = &[
    "default",
    "requestor",
    "supplier",
    "candidate",
    "filter",
    "other",
];

struct Nothing;

impl Source for Nothing {
    fn run(&mut self, _: &NodeContext, _: &mut Emitter) -> Result<(), ActionError> {
        Ok(())
    }
}

impl Transform for Nothing {
    fn apply(&self, _: Vec<Feature>, _: &mut Emitter) -> Result<(), ActionError> {
        Ok(())
    }
}

impl Sink for Nothing {
    fn write(&mut self, _: usize, _: Vec<Feature>, _: &NodeContext) -> Result<(), ActionError> {
        Ok(())
    }
    fn finish(&mut self, _: &NodeContext) -> Result<(), ActionError> {
        Ok(())
    }
}

fn build_source(c: &BuildContext) -> Result<BuiltAction, ActionError> {
    any_params(c)?;
    Ok(BuiltAction::new(NodeImpl::Source(Box::new(Nothing))))
}

fn build_processor(c: &BuildContext) -> Result<BuiltAction, ActionError> {
    let params = any_params(c)?;
    let mut outputs: Vec<String> = OUTPUTS.iter().map(|s| s.to_string()).collect();
    for cond in params["conditions"].as_array().into_iter().flatten() {
        if let Some(p) = cond["port"].as_str()
            && !outputs.iter().any(|o| o == p)
        {
            outputs.push(p.to_string());
        }
    }
    Ok(BuiltAction::new(NodeImpl::Transform(Arc::new(Nothing))).with_outputs(outputs))
}

fn build_sink(c: &BuildContext) -> Result<BuiltAction, ActionError> {
    any_params(c)?;
    Ok(BuiltAction::new(NodeImpl::Sink(Box::new(Nothing))))
}

fn registry() -> Registry {
    let schema = schema_of::<serde_json::Value>;
    let source = |name| ActionSpec::new(name, ActionKind::Source, "fuzz", schema, build_source);
    let processor = |name| {
        ActionSpec::new(name, ActionKind::Processor, "fuzz", schema, build_processor)
            .inputs(INPUTS)
            .outputs(OUTPUTS)
            .dynamic_outputs()
    };
    let sink =
        |name| ActionSpec::new(name, ActionKind::Sink, "fuzz", schema, build_sink).inputs(INPUTS);
    let mut specs = vec![];
    for n in [
        "feature_creator",
        "csv_reader",
        "json_reader",
        "geojson_reader",
        "parquet_reader",
        "file_lister",
        "gen",
    ] {
        specs.push(source(n));
    }
    for n in [
        "sort",
        "filter",
        "attribute_manager",
        "attribute_mapper",
        "counter",
        "dedup",
        "join",
        "statistics",
        "area",
        "spatial_filter",
        "reproject",
        "pass",
        "hold",
    ] {
        specs.push(processor(n));
    }
    for n in [
        "csv_writer",
        "jsonl_writer",
        "geojson_writer",
        "parquet_writer",
        "noop_sink",
        "echo_sink",
        "count",
    ] {
        specs.push(sink(n));
    }
    Registry::from_specs(specs)
}

static REGISTRY: LazyLock<Registry> = LazyLock::new(registry);

/// Loads `source` (see [`fuzz::check_workflow`]) under the hang timeout.
fn check_workflow(source: String) -> Result<(), TestCaseError> {
    let shown = format!("{source:?}");
    let outcome = within(shown, move || fuzz::check_workflow(&source, &REGISTRY))?;
    outcome.map_err(TestCaseError::fail)
}

// ─── expressions ────────────────────────────────────────────────────────────────────────────

/// Compiles `source` (see [`fuzz::check_expression`]) under the hang timeout.
fn check_expr(source: String) -> Result<(), TestCaseError> {
    let shown = format!("{source:?}");
    let outcome = within(shown, move || fuzz::check_expression(&source))?;
    outcome.map_err(TestCaseError::fail)
}

/// Expressions from the grammar (well-formed, of any depth the strategy reaches).
fn expression() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(|i| i.to_string()),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| format!("{f:?}")),
        "[a-z\"'\\\\ ]{0,6}".prop_map(|s| format!("{s:?}")),
        prop::sample::select(vec![
            "value", "a", "b", "name", "x", "missing", "true", "false", "null", "`t`", "list",
        ])
        .prop_map(str::to_string),
    ];
    leaf.prop_recursive(6, 48, 4, |inner| {
        prop_oneof![
            (
                inner.clone(),
                prop::sample::select(vec![
                    "||", "&&", "==", "!=", "<", "<=", ">", ">=", "in", "+", "-", "*", "/", "%",
                ]),
                inner.clone()
            )
                .prop_map(|(a, op, b)| format!("({a} {op} {b})")),
            inner.clone().prop_map(|a| format!("!({a})")),
            inner.clone().prop_map(|a| format!("-({a})")),
            (
                prop::sample::select(vec![
                    "is_null",
                    "coalesce",
                    "if",
                    "len",
                    "lower",
                    "upper",
                    "trim",
                    "contains",
                    "starts_with",
                    "ends_with",
                    "concat",
                    "substr",
                    "abs",
                    "round",
                    "floor",
                    "ceil",
                    "sqrt",
                    "min",
                    "max",
                    "to_int",
                    "to_float",
                    "to_string",
                    "to_date",
                    "to_datetime",
                    "year",
                    "month",
                    "day",
                    "has_geometry",
                    "geometry_type",
                ]),
                prop::collection::vec(inner.clone(), 0..4)
            )
                .prop_map(|(f, args)| format!("{f}({})", args.join(", "))),
            prop::collection::vec(inner, 0..4).prop_map(|v| format!("[{}]", v.join(", "))),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        .. ProptestConfig::default()
    })]

    #[test]
    fn workflow_loader_survives_random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        check_workflow(String::from_utf8_lossy(&bytes).into_owned())?;
    }

    #[test]
    fn workflow_loader_survives_mutated_workflows(
        seed in any::<prop::sample::Index>(),
        edits in edits(),
    ) {
        let seed = seed.get(&WORKFLOW_SEEDS);
        check_workflow(mutate(seed, &edits))?;
    }

    #[test]
    fn expressions_survive_random_text(source in "(?s).{0,80}") {
        check_expr(source)?;
    }

    #[test]
    fn expressions_survive_mutated_expressions(
        seed in any::<prop::sample::Index>(),
        edits in edits(),
    ) {
        let seed = seed.get(&EXPR_SEEDS);
        check_expr(mutate(seed, &edits))?;
    }

    #[test]
    fn generated_expressions_compile_and_evaluate(source in expression()) {
        check_expr(source)?;
    }
}

/// Deep nesting is refused with a location, not a stack overflow.
#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    for open in ["(", "-", "!", "[", "f(", "not "] {
        let src = format!("{}1", open.repeat(5000));
        let err = Expr::compile(&src).unwrap_err();
        assert!(err.offset <= src.len(), "{err}");
    }
    let yaml = format!("name: {}1", "[".repeat(100_000));
    let Err(err) = workflow::load("deep.yaml", &yaml, &REGISTRY, &VarSources::default()) else {
        panic!("a 100,000-deep sequence loaded");
    };
    assert!(err.diagnostics.iter().all(|d| d.line >= 1), "{err:?}");
}

/// Every seed (with the inputs fuzzing once failed on, kept in the corpus) passes the checks.
#[test]
fn corpus_inputs_pass_the_checks() {
    for seed in WORKFLOW_SEEDS.iter() {
        check_workflow(seed.clone()).unwrap();
    }
    for seed in EXPR_SEEDS.iter() {
        check_expr(seed.clone()).unwrap();
    }
}
