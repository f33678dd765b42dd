//! Fingerprints of a resolved workflow: SHA-256 over a canonical text of its nodes (id,
//! action, parameters with variables applied, object keys sorted) and edges.
//!
//! A job records the whole workflow's fingerprint and, per captured edge, the fingerprint
//! of what lies upstream of it, so a re-run from a node can tell whether the data it would
//! be fed still matches the workflow (parameters downstream may change freely).

use std::collections::BTreeSet;
use std::fmt::Write;

use sha2::{Digest, Sha256};

use crate::dag::Plan;

/// The fingerprint of the whole workflow.
pub fn workflow_hash(plan: &Plan) -> String {
    let all: BTreeSet<usize> = (0..plan.nodes.len()).collect();
    let mut text = format!("name {}\n", plan.name.as_deref().unwrap_or(""));
    describe(plan, &all, &mut text);
    hex(&text)
}

/// The fingerprint of what lies upstream of edge `edge`: its producing node, every node
/// before it, the edges between them, and the port the edge leaves from.
pub fn upstream_hash(plan: &Plan, edge: usize) -> String {
    let e = &plan.edges[edge];
    let ancestors = plan.reachable(e.from, petgraph::Direction::Incoming);
    let mut text = format!(
        "port {}.{}\n",
        plan.nodes[e.from].id, plan.nodes[e.from].outputs[e.from_port]
    );
    describe(plan, &ancestors, &mut text);
    hex(&text)
}

/// Appends the nodes of `set` (sorted by id) and the edges between them (sorted by name).
fn describe(plan: &Plan, set: &BTreeSet<usize>, text: &mut String) {
    let mut nodes: Vec<usize> = set.iter().copied().collect();
    nodes.sort_by(|a, b| plan.nodes[*a].id.cmp(&plan.nodes[*b].id));
    for n in nodes {
        let node = &plan.nodes[n];
        let _ = write!(text, "node {} {} ", node.id, node.spec.name);
        canonical(&node.params, text);
        text.push('\n');
    }
    let mut edges: Vec<String> = plan
        .edges
        .iter()
        .filter(|e| set.contains(&e.from) && set.contains(&e.to))
        .map(|e| {
            let (a, b) = (&plan.nodes[e.from], &plan.nodes[e.to]);
            format!(
                "edge {}.{}->{}.{}",
                a.id, a.outputs[e.from_port], b.id, b.inputs[e.to_port]
            )
        })
        .collect();
    edges.sort();
    for e in edges {
        text.push_str(&e);
        text.push('\n');
    }
}

/// JSON with object keys sorted, so the text does not depend on the order keys were written.
fn canonical(v: &serde_json::Value, out: &mut String) {
    use serde_json::Value;
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                canonical(&map[k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(item, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

fn hex(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    let mut s = String::with_capacity(64);
    for b in digest {
        let _ = write!(s, "{b:02x}");
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_text_sorts_keys_at_every_level() {
        let a: serde_json::Value =
            serde_json::from_str(r#"{"b":1,"a":{"y":[1,{"d":2,"c":3}],"x":null}}"#).unwrap();
        let b: serde_json::Value =
            serde_json::from_str(r#"{"a":{"x":null,"y":[1,{"c":3,"d":2}]},"b":1}"#).unwrap();
        let (mut ta, mut tb) = (String::new(), String::new());
        canonical(&a, &mut ta);
        canonical(&b, &mut tb);
        assert_eq!(ta, tb);
        assert_eq!(ta, r#"{"a":{"x":null,"y":[1,{"c":3,"d":2}]},"b":1}"#);
    }
}
