//! The plan: a validated workflow as a petgraph DAG of built nodes, ready to execute.
//!
//! Built nodes are moved into the executor when the plan runs, never cloned.

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
        for e in &self.edges {
            let (a, b) = (&self.nodes[e.from], &self.nodes[e.to]);
            s.push_str(&format!(
                "  \"{}\" -> \"{}\" [label=\"{} → {}\"];\n",
                esc(&a.id),
                esc(&b.id),
                esc(&a.outputs[e.from_port]),
                esc(&b.inputs[e.to_port])
            ));
        }
        s.push_str("}\n");
        s
    }
}

fn esc(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}
