//! `sluice actions`: one line per action, or one action's kind, ports, parameters and
//! example, read from its spec and its parameters' JSON Schema.

use std::fmt::Write as _;

use serde_json::{Map, Value};
use sluice_runtime::ActionSpec;

/// Widest line of the descriptions (they are wrapped at words).
const WIDTH: usize = 92;
/// How deep nested parameters (`by[].attribute`) are listed.
const MAX_DEPTH: usize = 3;

/// One line per action: name, kind, ports and what it does.
pub fn list<'a>(specs: impl IntoIterator<Item = &'a ActionSpec>) -> String {
    let mut s = String::new();
    for spec in specs {
        let _ = writeln!(
            s,
            "{:<18} {:<9} in: {:<22} out: {:<28} {}",
            spec.name,
            kind(spec),
            spec.inputs.join(","),
            outputs(spec),
            spec.description
        );
    }
    s
}

/// One action: its kind and description, ports, every parameter (type, required or its
/// default, description; those of nested objects as `parent.child` or `list[].child`) and
/// its example as a node of a workflow.
pub fn action(spec: &ActionSpec) -> String {
    let mut s = format!("{} ({})\n", spec.name, kind(spec));
    wrap(&mut s, spec.description, 2);
    let mut flags = Vec::new();
    if spec.accumulates {
        flags.push("holds its whole input");
    }
    if spec.heavy_finish {
        flags.push("heavy finish (admitted through the gate)");
    }
    if !flags.is_empty() {
        let _ = writeln!(s, "  {}.", flags.join("; "));
    }
    let none = |p: &[&str]| {
        if p.is_empty() {
            "none".to_string()
        } else {
            p.join(", ")
        }
    };
    let _ = writeln!(s, "\nports\n  in:  {}", none(spec.inputs));
    let more = if spec.dynamic_outputs {
        " (and ports named by the parameters)"
    } else {
        ""
    };
    let _ = writeln!(s, "  out: {}{more}", none(spec.outputs));
    s.push_str("\nparameters\n");
    let schema = (spec.schema)().to_value();
    let defs = schema
        .get("$defs")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let before = s.len();
    parameters(&schema, &defs, "", 0, &mut s);
    if s.len() == before {
        s.push_str("  (none)\n");
    }
    s.push_str("\nexample\n");
    let _ = writeln!(s, "  - id: {}\n    action: {}", spec.name, spec.name);
    let example = spec.example.trim_end();
    if !example.is_empty() && example != "{}" {
        s.push_str("    with:\n");
        for line in example.lines() {
            let _ = writeln!(s, "      {line}");
        }
    }
    s
}

fn kind(spec: &ActionSpec) -> String {
    format!("{:?}", spec.kind).to_lowercase()
}

fn outputs(spec: &ActionSpec) -> String {
    if spec.dynamic_outputs {
        format!("{} (+ from parameters)", spec.outputs.join(","))
    } else {
        spec.outputs.join(",")
    }
}

/// The properties of an object schema, each with its nested ones after it.
fn parameters(
    schema: &Value,
    defs: &Map<String, Value>,
    prefix: &str,
    depth: usize,
    s: &mut String,
) {
    let schema = resolve(schema, defs);
    if let Some(variants) = tagged_variants(schema, defs) {
        // A choice selected by a tag (`mode: first`, `op: set`): each variant's own
        // parameters, under the tag value that selects it.
        for (tag, value, variant) in variants {
            let value = value.as_str().map_or(value.to_string(), str::to_string);
            let _ = writeln!(s, "  {prefix}{tag}: {value}");
            if let Some(text) = variant.get("description").and_then(Value::as_str) {
                wrap(s, text, 6);
            }
            parameters(variant, defs, prefix, depth + 1, s);
        }
        return;
    }
    let Some(props) = schema.get("properties").and_then(Value::as_object) else {
        return;
    };
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    // A `const` property is a choice's tag, said in the heading above its parameters.
    for (name, p) in props.iter().filter(|(_, p)| p.get("const").is_none()) {
        let path = format!("{prefix}{name}");
        let mut facts = vec![type_name(p, defs)];
        if required.contains(&name.as_str()) {
            facts.push("required".into());
        } else if let Some(d) = p.get("default").filter(|d| !d.is_null()) {
            facts.push(format!("default {d}"));
        }
        facts.extend(bounds(p));
        let _ = writeln!(s, "  {path}  ({})", facts.join(", "));
        if let Some(text) = p.get("description").and_then(Value::as_str) {
            wrap(s, text, 6);
        }
        if depth + 1 < MAX_DEPTH
            && let Some((child, suffix)) = nested(p, defs)
        {
            parameters(child, defs, &format!("{path}{suffix}."), depth + 1, s);
        }
    }
}

/// The alternatives of a tagged choice: for each, the tag key, its value and the variant.
fn tagged_variants<'a>(
    schema: &'a Value,
    defs: &'a Map<String, Value>,
) -> Option<Vec<(&'a str, &'a Value, &'a Value)>> {
    let alts = schema
        .get("oneOf")
        .or_else(|| schema.get("anyOf"))?
        .as_array()?;
    let alts: Vec<&Value> = alts.iter().map(|a| resolve(a, defs)).collect();
    let tag = sluice_runtime::workflow::choice_tag(&alts)?;
    Some(
        alts.into_iter()
            .map(|a| (tag, &a["properties"][tag]["const"], a))
            .collect(),
    )
}

/// The object schema a property holds (itself, a list's items, a map's values, one of its
/// alternatives), with what goes between the parent's name and the child's.
fn nested<'a>(p: &'a Value, defs: &'a Map<String, Value>) -> Option<(&'a Value, &'static str)> {
    let p = resolve(p, defs);
    if p.get("properties").is_some() {
        return Some((p, ""));
    }
    if let Some(items) = p.get("items") {
        return nested(items, defs).map(|(c, _)| (c, "[]"));
    }
    if let Some(values) = p.get("additionalProperties").filter(|v| v.is_object()) {
        return nested(values, defs).map(|(c, _)| (c, ".<name>"));
    }
    if tagged_variants(p, defs).is_some() {
        return Some((p, ""));
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(list) = p.get(key).and_then(Value::as_array) {
            let objects: Vec<_> = list.iter().filter_map(|a| nested(a, defs)).collect();
            if let [one] = objects.as_slice() {
                return Some(*one);
            }
        }
    }
    None
}

/// A schema with its `$ref` followed (to `$defs`).
fn resolve<'a>(schema: &'a Value, defs: &'a Map<String, Value>) -> &'a Value {
    match schema
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("#/$defs/"))
        .and_then(|name| defs.get(name))
    {
        Some(def) => def,
        None => schema,
    }
}

/// A type in words: `string`, `integer or null`, `list of string`, `one of "first", "last"`.
fn type_name(schema: &Value, defs: &Map<String, Value>) -> String {
    let named = schema
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.strip_prefix("#/$defs/"));
    let schema = resolve(schema, defs);
    if let Some(c) = schema.get("const") {
        return c.to_string();
    }
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        return one_of(values.iter().map(Value::to_string).collect());
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(list) = schema.get(key).and_then(Value::as_array) {
            let consts: Vec<String> = list
                .iter()
                .filter_map(|a| a.get("const").map(Value::to_string))
                .collect();
            if consts.len() == list.len() {
                return one_of(consts);
            }
            let mut names: Vec<String> = Vec::new();
            for a in list {
                let n = type_name(a, defs);
                if !names.contains(&n) {
                    names.push(n);
                }
            }
            return names.join(" or ");
        }
    }
    let types: Vec<&str> = match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if types.is_empty() {
        return "any".into();
    }
    types
        .iter()
        .map(|t| match *t {
            "array" => match schema.get("items") {
                Some(items) => format!("list of {}", type_name(items, defs)),
                None => "list".into(),
            },
            "object" => match (named, schema.get("additionalProperties")) {
                (Some(name), _) => name.to_string(),
                (None, Some(v)) if v.is_object() => format!("map of {}", type_name(v, defs)),
                _ => "object".into(),
            },
            other => other.to_string(),
        })
        .collect::<Vec<_>>()
        .join(" or ")
}

fn one_of(values: Vec<String>) -> String {
    match values.as_slice() {
        [one] => one.clone(),
        _ => format!("one of {}", values.join(", ")),
    }
}

/// Limits worth saying: `≥ 1`, `1 to 1 characters`, `at least 1 item`.
fn bounds(p: &Value) -> Vec<String> {
    let num = |k: &str| p.get(k).filter(|v| v.is_number()).map(Value::to_string);
    let mut out = Vec::new();
    match (num("minimum"), num("maximum")) {
        (Some(lo), Some(hi)) => out.push(format!("{lo} to {hi}")),
        // `minimum: 0` on an unsigned type says nothing a reader needs.
        (Some(lo), None) if lo != "0" => out.push(format!("≥ {lo}")),
        (None, Some(hi)) => out.push(format!("≤ {hi}")),
        _ => {}
    }
    if let Some(n) = num("exclusiveMinimum") {
        out.push(format!("> {n}"));
    }
    match (num("minLength"), num("maxLength")) {
        (Some(lo), Some(hi)) if lo == "1" && hi == "1" => out.push("one character".into()),
        (Some(lo), Some(hi)) if lo == hi => out.push(format!("{lo} characters")),
        (Some(lo), _) if lo != "0" => out.push(format!("at least {lo} characters")),
        _ => {}
    }
    match num("minItems").as_deref() {
        None | Some("0") => {}
        Some("1") => out.push("not empty".into()),
        Some(n) => out.push(format!("at least {n} items")),
    }
    out
}

/// Appends `text` (its line breaks joined) wrapped at words, each line indented.
fn wrap(s: &mut String, text: &str, indent: usize) {
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && indent + line.len() + 1 + word.len() > WIDTH {
            let _ = writeln!(s, "{:indent$}{line}", "");
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        let _ = writeln!(s, "{:indent$}{line}", "");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str) -> ActionSpec {
        sluice_actions::all()
            .into_iter()
            .find(|s| s.name == name)
            .unwrap()
    }

    #[test]
    fn types_defaults_and_nested_parameters_are_said() {
        let text = action(&spec("sort"));
        assert!(text.starts_with("sort (processor)\n"), "{text}");
        assert!(
            text.contains("  by  (list of SortKey, required, not empty)\n"),
            "{text}"
        );
        assert!(
            text.contains("  by[].attribute  (string, required)\n"),
            "{text}"
        );
        assert!(
            text.contains("  by[].descending  (boolean, default false)\n"),
            "{text}"
        );
        assert!(
            text.contains("  by[].nulls  (one of \"first\", \"last\" or null)\n"),
            "{text}"
        );
        let csv = action(&spec("csv_reader"));
        assert!(
            csv.contains("  delimiter  (string, default \",\", one character)\n"),
            "{csv}"
        );
        assert!(
            csv.contains("  columns  (map of one of \"string\""),
            "{csv}"
        );
        assert!(
            csv.contains(
                "\nexample\n  - id: csv_reader\n    action: csv_reader\n    with:\n      path: "
            ),
            "{csv}"
        );
    }

    #[test]
    fn every_action_has_its_parameters_listed() {
        for spec in sluice_actions::all() {
            let text = action(&spec);
            let schema = (spec.schema)().to_value();
            let defs = Map::new();
            // The block's own parameters, or those of each variant of a tagged choice.
            let blocks: Vec<&Value> = match tagged_variants(&schema, &defs) {
                Some(variants) => variants.into_iter().map(|(_, _, v)| v).collect(),
                None => vec![&schema],
            };
            let names = blocks
                .into_iter()
                .filter_map(|b| b.get("properties").and_then(Value::as_object))
                .flat_map(|p| p.iter().filter(|(_, v)| v.get("const").is_none()))
                .map(|(k, _)| k);
            for name in names {
                assert!(
                    text.contains(&format!("\n  {name}  (")),
                    "{}: {name}\n{text}",
                    spec.name
                );
            }
        }
    }
}
