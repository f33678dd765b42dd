//! The JSON Schema of the workflow format, with every registered action's parameters, so an
//! editor can autocomplete and check a workflow as it is written.

use serde_json::{Value, json};

use crate::action::Registry;

/// A `with:` block written as YAML, as JSON; `None` when there is none or it does not parse
/// (a registry test makes every example parse).
fn example_json(example: &str) -> Option<Value> {
    if example.trim().is_empty() {
        return None;
    }
    super::yaml::parse(example).ok().map(|n| n.to_json())
}

/// The JSON Schema (draft 2020-12) of a workflow file for the actions in `registry`. Each
/// action's parameters carry its example under `examples`.
pub fn json_schema(registry: &Registry) -> Value {
    let mut node_variants = Vec::new();
    let mut defs = serde_json::Map::new();
    for spec in registry.specs() {
        let mut params = serde_json::to_value((spec.schema)()).unwrap_or(Value::Null);
        // Hoist nested definitions so references resolve from the root.
        if let Some(obj) = params.as_object_mut() {
            obj.remove("$schema");
            for key in ["$defs", "definitions"] {
                if let Some(Value::Object(d)) = obj.remove(key) {
                    for (k, v) in d {
                        defs.insert(k, v);
                    }
                }
            }
        }
        // The spec's example, for editors to show and offer (JSON Schema `examples`).
        if let Some(obj) = params.as_object_mut()
            && let Some(example) = example_json(spec.example)
        {
            obj.insert("examples".into(), json!([example]));
        }
        node_variants.push(json!({
            "type": "object",
            "description": spec.description,
            "properties": {
                "id": { "$ref": "#/$defs/NodeId" },
                "action": { "const": spec.name },
                "description": { "type": "string" },
                "with": params,
            },
            "required": ["id", "action"],
            "additionalProperties": false,
        }));
    }
    node_variants.push(json!({
        "type": "object",
        "description": "An instance of a subgraph.",
        "properties": {
            "id": { "$ref": "#/$defs/NodeId" },
            "subgraph": { "type": "string" },
            "description": { "type": "string" },
        },
        "required": ["id", "subgraph"],
        "additionalProperties": false,
    }));
    defs.insert(
        "NodeId".into(),
        json!({ "type": "string", "pattern": "^[\\p{L}\\p{N}_-]+$" }),
    );
    defs.insert("Node".into(), json!({ "oneOf": node_variants }));
    defs.insert(
        "Edge".into(),
        json!({
            "oneOf": [
                { "type": "string", "pattern": "^\\s*[^.\\s]+(\\.[^\\s]+)?\\s*->\\s*[^.\\s]+(\\.[^\\s]+)?\\s*$",
                  "description": "\"node.port -> node.port\"; the port may be omitted" },
                { "type": "object", "properties": { "from": { "type": "string" }, "to": { "type": "string" },
                    "capture": { "type": "boolean", "description": "capture this edge whenever the run captures" } },
                  "required": ["from", "to"], "additionalProperties": false }
            ]
        }),
    );
    defs.insert(
        "Graph".into(),
        json!({
            "nodes": { "type": "array", "items": { "$ref": "#/$defs/Node" } },
            "edges": { "type": ["array", "null"], "items": { "$ref": "#/$defs/Edge" } },
        }),
    );
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "sluice workflow",
        "type": "object",
        "properties": {
            "name": { "type": "string" },
            "description": { "type": "string" },
            "variables": {
                "type": "object",
                "additionalProperties": {
                    "oneOf": [
                        { "type": ["string", "number", "boolean", "null"] },
                        { "type": "object", "properties": { "default": {}, "description": { "type": "string" } },
                          "additionalProperties": false }
                    ]
                }
            },
            "nodes": { "type": "array", "items": { "$ref": "#/$defs/Node" } },
            "edges": { "type": ["array", "null"], "items": { "$ref": "#/$defs/Edge" } },
            "subgraphs": {
                "type": "object",
                "additionalProperties": {
                    "type": "object",
                    "properties": {
                        "description": { "type": "string" },
                        "inputs": { "type": "object", "additionalProperties": {
                            "oneOf": [ { "type": "string" }, { "type": "array", "items": { "type": "string" } } ] } },
                        "outputs": { "type": "object", "additionalProperties": { "type": "string" } },
                        "nodes": { "type": "array", "items": { "$ref": "#/$defs/Node" } },
                        "edges": { "type": ["array", "null"], "items": { "$ref": "#/$defs/Edge" } },
                    },
                    "required": ["nodes"],
                    "additionalProperties": false,
                }
            }
        },
        "required": ["nodes"],
        "additionalProperties": false,
        "$defs": defs,
    })
}

/// The key whose `const` tells every alternative of a choice apart (`op`, `mode`), if any:
/// the tag of a tagged enum's schema. The alternatives are given with their `$ref`s
/// followed. Validation checks a value against the variant its tag selects; `sluice actions`
/// lists each variant's parameters under its tag value.
pub fn choice_tag<'a>(alternatives: &[&'a serde_json::Value]) -> Option<&'a str> {
    let first = alternatives.first()?.get("properties")?.as_object()?;
    first
        .iter()
        .filter(|(_, v)| v.get("const").is_some())
        .map(|(k, _)| k.as_str())
        .find(|k| {
            alternatives.iter().all(|a| {
                a.get("properties")
                    .and_then(|p| p.get(*k))
                    .and_then(|t| t.get("const"))
                    .is_some()
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::test_registry;

    #[test]
    fn each_action_carries_its_example() {
        let registry = test_registry();
        let schema = json_schema(&registry);
        let variants = schema["$defs"]["Node"]["oneOf"].as_array().unwrap();
        for spec in registry.specs() {
            let node = variants
                .iter()
                .find(|v| v["properties"]["action"]["const"] == spec.name)
                .unwrap();
            let examples = &node["properties"]["with"]["examples"];
            match example_json(spec.example) {
                Some(want) => assert_eq!(examples, &json!([want]), "{}", spec.name),
                None => assert!(examples.is_null(), "{}", spec.name),
            }
        }
        assert_eq!(
            example_json("path: out/a.csv\nlimit: 5\n"),
            Some(json!({ "path": "out/a.csv", "limit": 5 }))
        );
    }
}
