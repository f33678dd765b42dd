//! The JSON Schema of the workflow format, with every registered action's parameters, so an
//! editor can autocomplete and check a workflow as it is written.

use serde_json::{Value, json};

use crate::action::Registry;

/// The JSON Schema (draft 2020-12) of a workflow file for the actions in `registry`.
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
