//! For every action, every parameter given a value of the wrong type is reported with the
//! parameter's path, at the value's own line and column, in the workflow's words.

use serde_json::{Value as J, json};
use sluice::runtime::workflow::{self, VarSources};

/// The JSON types a (sub)schema accepts, following `$ref`s and choices; `None` when any.
fn accepted_types(schema: &J, root: &J) -> Option<Vec<String>> {
    let s = resolve(schema, root);
    if let Some(t) = s.get("type") {
        return Some(match t {
            J::String(t) => vec![t.clone()],
            J::Array(ts) => ts
                .iter()
                .filter_map(|t| t.as_str().map(String::from))
                .collect(),
            _ => return None,
        });
    }
    if let Some(c) = s.get("const") {
        return Some(vec![json_type(c).to_string()]);
    }
    let alts = s.get("oneOf").or_else(|| s.get("anyOf"))?.as_array()?;
    let mut all = Vec::new();
    for a in alts {
        all.extend(accepted_types(a, root)?);
    }
    Some(all)
}

fn resolve<'a>(mut s: &'a J, root: &'a J) -> &'a J {
    while let Some(r) = s.get("$ref").and_then(J::as_str) {
        let name = r.trim_start_matches("#/$defs/");
        s = &root["$defs"][name];
    }
    s
}

fn json_type(v: &J) -> &'static str {
    match v {
        J::Null => "null",
        J::Bool(_) => "boolean",
        J::Number(n) if n.is_i64() || n.is_u64() => "integer",
        J::Number(_) => "number",
        J::String(_) => "string",
        J::Array(_) => "array",
        J::Object(_) => "object",
    }
}

/// A value none of `types` accepts.
fn wrong_value(types: &[String]) -> Option<J> {
    let accepts = |t: &str| {
        types.iter().any(|x| x == t) || (t == "integer" && types.iter().any(|x| x == "number"))
    };
    [
        json!("not_this"),
        json!([1]),
        json!(true),
        json!({ "z": 1 }),
        json!(-7.5),
    ]
    .into_iter()
    .find(|v| !accepts(json_type(v)))
}

/// The object schema of the `with:` block an example picks (a tagged choice resolves to
/// the variant whose tag the example gives).
fn block_schema<'a>(schema: &'a J, example: &J) -> &'a J {
    let Some(alts) = schema.get("oneOf").and_then(J::as_array) else {
        return schema;
    };
    alts.iter()
        .map(|a| resolve(a, schema))
        .find(|a| {
            a["properties"].as_object().is_some_and(|props| {
                props
                    .iter()
                    .any(|(k, p)| p.get("const").is_some_and(|c| example.get(k) == Some(c)))
            })
        })
        .unwrap_or(schema)
}

#[test]
fn every_parameter_error_names_its_path_at_the_value() {
    let registry = sluice::actions::registry();
    let mut checked = 0;
    let mut failures = Vec::new();
    for spec in registry.specs() {
        let schema = (spec.schema)().to_value();
        let example = match sluice::runtime::workflow::yaml::parse(spec.example) {
            Ok(node) => node.to_json(),
            Err(e) => panic!("{}: example does not parse: {}", spec.name, e.message),
        };
        let example = if example.is_null() {
            json!({})
        } else {
            example
        };
        let block = block_schema(&schema, &example);
        let Some(props) = block["properties"].as_object() else {
            continue;
        };
        for (key, prop) in props {
            if prop.get("const").is_some() {
                continue; // the tag itself: covered by the fixtures
            }
            let Some(bad) = accepted_types(prop, &schema).and_then(|t| wrong_value(&t)) else {
                continue;
            };
            let mut with = example.clone();
            with[key.as_str()] = bad.clone();
            let line = format!("    with: {with}");
            let needle = format!("\"{key}\":{bad}");
            let column = line.find(&needle).unwrap() + format!("\"{key}\":").len() + 1;
            let src = format!("nodes:\n  - id: n\n    action: {}\n{line}\n", spec.name);
            let err = match workflow::load("wf.yaml", &src, &registry, &VarSources::default()) {
                Ok(_) => {
                    failures.push(format!("{}.{key} = {bad}: accepted", spec.name));
                    continue;
                }
                Err(e) => e,
            };
            checked += 1;
            let found = err.diagnostics.iter().any(|d| {
                d.param.as_deref() == Some(key.as_str())
                    && (d.line, d.column) == (4, column)
                    && d.message.starts_with("must be ")
            });
            if !found {
                failures.push(format!(
                    "{}.{key} = {bad} (expected at 4:{column}):\n  {}",
                    spec.name,
                    err.to_string().replace('\n', "\n  ")
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(checked > 80, "only {checked} parameters checked");
}
