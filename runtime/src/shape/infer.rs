//! The walk: every node's output shapes, from the sources down, in topological order.

use std::collections::BTreeSet;
use std::sync::Arc;

use super::{Shape, ShapeContext, ShapeProblem};
use crate::dag::{Plan, PlanEdge, PlanNode};
use crate::error::ActionError;

/// What the walk found at one node.
#[derive(Debug, Default)]
pub struct NodeShapes {
    /// The shape reaching each input port (several edges merged).
    pub inputs: Vec<Shape>,
    /// The shape of each output port, in the node's port order.
    pub outputs: Vec<Shape>,
    /// Problems located inside parameters (attribute names, expressions).
    pub problems: Vec<ShapeProblem>,
    /// The error the schema function returned, if any (its outputs are then unknown).
    pub error: Option<ActionError>,
    /// The function panicked (a bug in the action); its outputs are unknown.
    pub panicked: bool,
    /// Unread sources (see [`Shape::unread`]) whose attribute names this node relied on.
    pub relied: BTreeSet<Arc<str>>,
}

/// The shapes of every node of a plan, in [`Plan::nodes`] order. A plan with a cycle (which
/// validation refuses) gets unknown shapes.
pub fn infer(plan: &Plan) -> Vec<NodeShapes> {
    infer_nodes(&plan.nodes, &plan.edges)
}

/// [`infer`] on a plan's parts, before the plan is assembled.
pub(crate) fn infer_nodes(nodes: &[PlanNode], edges: &[PlanEdge]) -> Vec<NodeShapes> {
    let mut out: Vec<NodeShapes> = nodes
        .iter()
        .map(|n| NodeShapes {
            inputs: vec![Shape::unknown(); n.inputs.len()],
            outputs: vec![Shape::unknown(); n.outputs.len()],
            ..NodeShapes::default()
        })
        .collect();
    let mut g = petgraph::graph::DiGraph::<usize, ()>::new();
    let idx: Vec<_> = (0..nodes.len()).map(|i| g.add_node(i)).collect();
    for e in edges {
        g.add_edge(idx[e.from], idx[e.to], ());
    }
    let Ok(order) = petgraph::algo::toposort(&g, None) else {
        return out;
    };
    for ni in order {
        let i = g[ni];
        let node = &nodes[i];
        let inputs: Vec<Shape> = (0..node.inputs.len())
            .map(|port| {
                let mut feeding = edges
                    .iter()
                    .filter(|e| e.to == i && e.to_port == port)
                    .map(|e| &out[e.from].outputs[e.from_port]);
                match feeding.next() {
                    None => Shape::unknown(),
                    Some(first) => feeding.fold(first.clone(), |acc, s| acc.merge(s)),
                }
            })
            .collect();
        let result = &mut out[i];
        result.inputs = inputs;
        let Some(f) = node.spec.shape else {
            continue;
        };
        let ctx = ShapeContext::new(&node.id, &node.params, &result.inputs, &node.outputs);
        let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&ctx)));
        let (problems, relied) = ctx.finish();
        result.problems = problems;
        result.relied = relied;
        match ran {
            Ok(Ok(mut shapes)) => {
                shapes.resize(node.outputs.len(), Shape::unknown());
                result.outputs = shapes;
            }
            Ok(Err(e)) => result.error = Some(e),
            Err(_) => result.panicked = true,
        }
        // A node whose function failed gives unknown outputs: no cascade downstream. (A
        // problem in a parameter does not: the function still said what comes out.)
        if result.error.is_some() || result.panicked {
            result.outputs = vec![Shape::unknown(); node.outputs.len()];
        }
    }
    out
}
