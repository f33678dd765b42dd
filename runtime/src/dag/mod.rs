//! The plan: a validated workflow as a petgraph DAG of built nodes, ready to execute.
//!
//! Built nodes are moved into the executor when the plan runs, never cloned.

use std::collections::{BTreeMap, BTreeSet};

use petgraph::graph::{DiGraph, NodeIndex};

use crate::action::{ActionSpec, NodeImpl};
use crate::error::Diagnostic;

/// One node of a plan: its id, action, built runtime object and ports.
pub struct PlanNode {
    /// Node id (subgraph instances prefix it: `clean/filter`).
    pub id: String,
    /// The action's spec.
    pub spec: ActionSpec,
    /// The built runtime object.
    pub node: NodeImpl,
    /// Input port names.
    pub inputs: Vec<String>,
    /// Output port names.
    pub outputs: Vec<String>,
    /// The parameters it was built from (its `with` block as JSON, variables applied): what
    /// identifies its configuration in a capture's fingerprints.
    pub params: serde_json::Value,
}

/// One edge: output port `from_port` of node `from` feeds input port `to_port` of node `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlanEdge {
    /// Upstream node index.
    pub from: usize,
    /// Upstream output port index.
    pub from_port: usize,
    /// Downstream node index.
    pub to: usize,
    /// Downstream input port index.
    pub to_port: usize,
    /// Marked `capture: true` in the workflow: captured whenever the run captures.
    pub capture: bool,
}

/// A validated, built workflow.
pub struct Plan {
    /// The workflow's name.
    pub name: Option<String>,
    /// Nodes, in declaration order (after subgraph expansion).
    pub nodes: Vec<PlanNode>,
    /// Edges.
    pub edges: Vec<PlanEdge>,
    /// Warnings found during validation.
    pub warnings: Vec<Diagnostic>,
    /// The variables' values the workflow was resolved with.
    pub variables: BTreeMap<String, String>,
}

impl Plan {
    /// The DAG (node weights are indexes into [`Plan::nodes`]).
    pub fn graph(&self) -> DiGraph<usize, usize> {
        let mut g = DiGraph::new();
        let idx: Vec<NodeIndex> = (0..self.nodes.len()).map(|i| g.add_node(i)).collect();
        for (i, e) in self.edges.iter().enumerate() {
            g.add_edge(idx[e.from], idx[e.to], i);
        }
        g
    }

    /// The name of edge `i`, as `sluice graph --edges` prints it and `--capture` takes it:
    /// `from.port->to.port`, where a port named `default` is left out (`read->keep`,
    /// `keep.passed->order`).
    pub fn edge_name(&self, i: usize) -> String {
        let e = &self.edges[i];
        let (a, b) = (&self.nodes[e.from], &self.nodes[e.to]);
        let end = |id: &str, ports: &[String], port: usize| {
            if ports[port] == crate::action::DEFAULT_PORT {
                id.to_string()
            } else {
                format!("{id}.{}", ports[port])
            }
        };
        format!(
            "{}->{}",
            end(&a.id, &a.outputs, e.from_port),
            end(&b.id, &b.inputs, e.to_port)
        )
    }

    /// Every spelling that names edge `i`: its [name](Plan::edge_name), and the forms with
    /// each port written out or left out where that port is its node's default (first) one.
    /// Spaces around `->` are not part of a name.
    pub fn edge_spellings(&self, i: usize) -> Vec<String> {
        let e = &self.edges[i];
        let (a, b) = (&self.nodes[e.from], &self.nodes[e.to]);
        let ends = |id: &str, ports: &[String], port: usize| {
            let mut v = vec![format!("{id}.{}", ports[port])];
            if port == 0 {
                v.push(id.to_string());
            }
            v
        };
        let mut out = vec![self.edge_name(i)];
        for f in ends(&a.id, &a.outputs, e.from_port) {
            for t in ends(&b.id, &b.inputs, e.to_port) {
                let s = format!("{f}->{t}");
                if !out.contains(&s) {
                    out.push(s);
                }
            }
        }
        out
    }

    /// The plan cut down to the nodes `keep` holds for (in their order) and the edges
    /// between them, and for each node of `self` its index in the new plan (`usize::MAX`
    /// for one left out).
    pub fn retain(self, keep: impl Fn(usize) -> bool) -> (Plan, Vec<usize>) {
        let Plan {
            name,
            nodes,
            edges,
            warnings,
            variables,
        } = self;
        let mut index = vec![usize::MAX; nodes.len()];
        let mut kept = Vec::new();
        for (i, n) in nodes.into_iter().enumerate() {
            if keep(i) {
                index[i] = kept.len();
                kept.push(n);
            }
        }
        let edges = edges
            .into_iter()
            .filter(|e| index[e.from] != usize::MAX && index[e.to] != usize::MAX)
            .map(|e| PlanEdge {
                from: index[e.from],
                to: index[e.to],
                ..e
            })
            .collect();
        let plan = Plan {
            name,
            nodes: kept,
            edges,
            warnings,
            variables,
        };
        (plan, index)
    }

    /// Node `node` and every node reachable from it along the edges (`Outgoing`: what lies
    /// downstream of it) or against them (`Incoming`: what lies upstream).
    pub fn reachable(&self, node: usize, direction: petgraph::Direction) -> BTreeSet<usize> {
        let mut seen = BTreeSet::from([node]);
        let mut todo = vec![node];
        while let Some(n) = todo.pop() {
            for e in &self.edges {
                let next = match direction {
                    petgraph::Direction::Outgoing if e.from == n => e.to,
                    petgraph::Direction::Incoming if e.to == n => e.from,
                    _ => continue,
                };
                if seen.insert(next) {
                    todo.push(next);
                }
            }
        }
        seen
    }

    /// Node ids in a topological order.
    pub fn topological_order(&self) -> Vec<&str> {
        let g = self.graph();
        petgraph::algo::toposort(&g, None)
            .map(|order| {
                order
                    .into_iter()
                    .map(|n| self.nodes[g[n]].id.as_str())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The plan in Graphviz DOT.
    pub fn to_dot(&self) -> String {
        let mut s =
            String::from("digraph workflow {\n  rankdir=LR;\n  node [shape=box, style=rounded];\n");
        for n in &self.nodes {
            s.push_str(&format!(
                "  \"{}\" [label=\"{}\\n({})\"];\n",
                esc(&n.id),
                esc(&n.id),
                n.spec.name
            ));
        }
        for (i, e) in self.edges.iter().enumerate() {
            let (a, b) = (&self.nodes[e.from], &self.nodes[e.to]);
            s.push_str(&format!(
                "  \"{}\" -> \"{}\" [label=\"{} → {}\", tooltip=\"{}\"];\n",
                esc(&a.id),
                esc(&b.id),
                esc(&a.outputs[e.from_port]),
                esc(&b.inputs[e.to_port]),
                esc(&self.edge_name(i))
            ));
        }
        s.push_str("}\n");
        s
    }
}

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}
