//! Rules every registered action keeps, checked once for the whole registry rather than in a
//! copy per action: names, ports, examples that build and validate in a workflow, parameter
//! schemas that describe the examples, and no action file left out of the registry.

use std::collections::BTreeSet;
use std::path::Path;

use sluice_actions::{all, registry};
use sluice_runtime::workflow::{self, VarSources};
use sluice_runtime::{ActionKind, ActionSpec, BuildContext, REJECTED_PORT, Severity};

fn is_snake_case(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !s.contains("__")
        && !s.ends_with('_')
}

#[test]
fn names_are_unique_snake_case() {
    let specs = all();
    let mut seen = BTreeSet::new();
    for spec in &specs {
        assert!(
            is_snake_case(spec.name),
            "{:?} is not snake_case",
            spec.name
        );
        assert!(seen.insert(spec.name), "{} is registered twice", spec.name);
        assert!(
            !spec.description.trim().is_empty(),
            "{} has no description",
            spec.name
        );
    }
    assert_eq!(registry().specs().count(), specs.len());
}

#[test]
fn ports_follow_the_rules_of_their_kind() {
    for spec in all() {
        let name = spec.name;
        match spec.kind {
            ActionKind::Source => assert!(spec.inputs.is_empty(), "{name}: a source has inputs"),
            ActionKind::Sink => assert!(spec.outputs.is_empty(), "{name}: a sink has outputs"),
            ActionKind::Processor => assert!(
                !spec.inputs.is_empty() && (!spec.outputs.is_empty() || spec.dynamic_outputs),
                "{name}: a processor needs an input and an output"
            ),
        }
        for ports in [spec.inputs, spec.outputs] {
            let unique: BTreeSet<_> = ports.iter().collect();
            assert_eq!(unique.len(), ports.len(), "{name}: a port is listed twice");
            for p in ports {
                assert!(is_snake_case(p), "{name}: port {p:?} is not snake_case");
            }
        }
        // A rejection port is always spelled `rejected`, so `Emitter::reject` finds it.
        for p in spec.outputs {
            assert!(
                *p == REJECTED_PORT || !p.contains("reject"),
                "{name}: port {p:?} should be named {REJECTED_PORT:?}"
            );
        }
        assert!(
            !spec.dynamic_outputs || spec.kind == ActionKind::Processor,
            "{name}: only processors have parameter-dependent outputs"
        );
        assert!(
            !spec.heavy_finish || spec.accumulates,
            "{name}: a heavy finish drains an accumulator, so it must be marked accumulating"
        );
        assert_eq!(
            spec.output_path.is_some(),
            spec.kind == ActionKind::Sink && !matches!(name, "echo_sink" | "noop_sink"),
            "{name}: a sink that writes files names its output parameter (`writes_to`)"
        );
    }
}

/// The example's `with:` block as JSON parameters.
fn example_params(spec: &ActionSpec) -> serde_json::Value {
    assert!(
        !spec.example.trim().is_empty(),
        "{}: the spec has no example",
        spec.name
    );
    let params = workflow::yaml::parse(spec.example)
        .unwrap_or_else(|e| panic!("{}: the example does not parse: {e:?}", spec.name))
        .to_json();
    assert!(
        params.is_object(),
        "{}: the example is not a mapping",
        spec.name
    );
    params
}

#[test]
fn every_example_builds_the_declared_kind() {
    for spec in all() {
        let params = example_params(&spec);
        let built = (spec.build)(&BuildContext {
            node_id: "example",
            params: &params,
        })
        .unwrap_or_else(|e| panic!("{}: the example does not build: {e}", spec.name));
        spec.check_built(&built)
            .unwrap_or_else(|e| panic!("{}: {e}", spec.name));
    }
}

/// The names of the properties a parameter schema declares.
fn schema_properties(spec: &ActionSpec) -> BTreeSet<String> {
    let schema = serde_json::to_value((spec.schema)()).unwrap();
    let mut names = BTreeSet::new();
    let mut stack = vec![&schema];
    // Flattened and tagged parameter structs put their properties under allOf/oneOf/anyOf.
    while let Some(s) = stack.pop() {
        if let Some(props) = s.get("properties").and_then(|p| p.as_object()) {
            names.extend(props.keys().cloned());
        }
        for key in ["allOf", "oneOf", "anyOf"] {
            if let Some(list) = s.get(key).and_then(|l| l.as_array()) {
                stack.extend(list);
            }
        }
    }
    names
}

#[test]
fn every_schema_names_the_parameters_of_its_example() {
    for spec in all() {
        let declared = schema_properties(&spec);
        let params = example_params(&spec);
        for key in params.as_object().unwrap().keys() {
            assert!(
                declared.contains(key),
                "{}: the example sets {key:?}, which the parameter schema does not declare ({declared:?})",
                spec.name
            );
        }
    }
}

/// A workflow that wires `spec` with its example between a feature source and no-op sinks,
/// so every port is connected. The source is a JSON reader, whose attributes are unknown
/// before the run, so the example's attribute names are not checked against made-up data.
fn workflow_around(spec: &ActionSpec) -> String {
    let indent = |text: &str| -> String {
        text.lines()
            .map(|l| format!("      {l}\n"))
            .collect::<String>()
    };
    let mut nodes = format!(
        "  - id: it\n    action: {}\n    with:\n{}",
        spec.name,
        indent(spec.example)
    );
    let mut edges = String::new();
    for (i, input) in spec.inputs.iter().enumerate() {
        nodes.push_str(&format!(
            "  - id: in{i}\n    action: json_reader\n    with:\n      path: memory://registry-check/in.jsonl\n"
        ));
        edges.push_str(&format!("  - in{i} -> it.{input}\n"));
    }
    for (i, output) in spec.outputs.iter().enumerate() {
        nodes.push_str(&format!("  - id: out{i}\n    action: noop_sink\n"));
        edges.push_str(&format!("  - it.{output} -> out{i}\n"));
    }
    let edges = if edges.is_empty() {
        String::new()
    } else {
        format!("edges:\n{edges}")
    };
    format!("name: registry_check\nnodes:\n{nodes}{edges}")
}

#[test]
fn every_example_validates_in_a_workflow() {
    let registry = registry();
    for spec in all() {
        let yaml = workflow_around(&spec);
        // The files an example names are illustrations: that they do not exist here is no
        // fault of the example.
        let result = workflow::load("example.yaml", &yaml, &registry, &VarSources::default())
            .map_err(|mut e| {
                e.diagnostics
                    .retain(|d| d.code != Some(workflow::MISSING_INPUT));
                e
            });
        if let Err(e) = result
            && e.diagnostics.iter().any(|d| d.severity == Severity::Error)
        {
            panic!(
                "{}: the example fails validation:\n{e}\n---\n{yaml}",
                spec.name
            );
        }
    }
}

/// The action names that files under `actions/src` declare with `ActionSpec::new("name", ..)`.
fn declared_action_names(dir: &Path, names: &mut BTreeSet<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            declared_action_names(&path, names);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            for (at, _) in text.match_indices("ActionSpec::new(") {
                let rest = &text[at..];
                let Some(open) = rest.find('"') else { continue };
                let Some(len) = rest[open + 1..].find('"') else {
                    continue;
                };
                names.insert(rest[open + 1..open + 1 + len].to_string());
            }
        }
    }
}

#[test]
fn every_action_file_is_registered() {
    let mut declared = BTreeSet::new();
    declared_action_names(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut declared,
    );
    assert!(
        declared.len() >= 30,
        "found only {} declared actions",
        declared.len()
    );
    let registered: BTreeSet<String> = all().iter().map(|s| s.name.to_string()).collect();
    let missing: Vec<_> = declared.difference(&registered).collect();
    assert!(
        missing.is_empty(),
        "declared but not registered: {missing:?}"
    );
}
