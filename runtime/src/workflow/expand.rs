//! Subgraph expansion: instances are replaced by their (prefixed) inner nodes, and edges to an
//! instance's ports are rewired to the inner endpoints they stand for.
//!
//! An instance `clean` of subgraph `cleaner` contributes nodes `clean/<inner id>`; nested
//! instances nest the prefix (`a/b/node`). A subgraph that includes itself is an error.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::diag::{DiagExt, Diags, did_you_mean, nearest};
use super::model::{Endpoint, Graph, NodeRef, Subgraph};
use super::yaml::{Node, Pos};

/// A node after expansion: always an action.
#[derive(Debug, Clone)]
pub(crate) struct FlatNode {
    pub id: String,
    pub action: String,
    pub action_pos: Pos,
    pub with: Option<Node>,
    pub pos: Pos,
}

/// An edge after expansion, between action nodes.
#[derive(Debug, Clone)]
pub(crate) struct FlatEdge {
    pub from: (String, Option<String>),
    pub to: (String, Option<String>),
    pub pos: Pos,
    /// Marked `capture: true`.
    pub capture: bool,
}

type Port = (String, Option<String>);

enum Local {
    Action(String),
    /// A node that could not be expanded (already reported): edges to it are skipped.
    Broken,
    Instance {
        subgraph: String,
        inputs: BTreeMap<String, Vec<Port>>,
        outputs: BTreeMap<String, Port>,
    },
}

pub(crate) struct Scope {
    pub nodes: Vec<FlatNode>,
    pub edges: Vec<FlatEdge>,
    /// Nodes some edge in the file leads into, even an edge whose other end is broken: such
    /// a node is not "unconnected" (its edge's problem is reported already).
    pub fed: HashSet<String>,
    local: HashMap<String, Local>,
}

/// Expands the entry graph.
pub(crate) fn expand(
    graph: &Graph,
    subgraphs: &BTreeMap<String, Subgraph>,
    d: &mut Diags,
) -> Scope {
    expand_graph(graph, "", subgraphs, &mut Vec::new(), d)
}

fn expand_graph(
    graph: &Graph,
    prefix: &str,
    subgraphs: &BTreeMap<String, Subgraph>,
    stack: &mut Vec<String>,
    d: &mut Diags,
) -> Scope {
    let mut scope = Scope {
        nodes: Vec::new(),
        edges: Vec::new(),
        fed: HashSet::new(),
        local: graph
            .refused
            .iter()
            .map(|id| (id.clone(), Local::Broken))
            .collect(),
    };
    for n in &graph.nodes {
        let id = format!("{prefix}{}", n.id);
        match &n.runs {
            NodeRef::Action(action) => {
                scope.nodes.push(FlatNode {
                    id: id.clone(),
                    action: action.clone(),
                    action_pos: n.runs_pos,
                    with: n.with.clone(),
                    pos: n.pos,
                });
                scope.local.insert(n.id.clone(), Local::Action(id));
            }
            NodeRef::Subgraph(name) => {
                let Some(sg) = subgraphs.get(name) else {
                    let diag = d
                        .error(n.runs_pos, format!("unknown subgraph \"{name}\""))
                        .node(&id);
                    if let Some(h) =
                        did_you_mean(&nearest(name, subgraphs.keys().map(|k| k.as_str())))
                    {
                        diag.help(h);
                    }
                    scope.local.insert(n.id.clone(), Local::Broken);
                    continue;
                };
                if stack.contains(name) {
                    let mut cycle = stack.clone();
                    cycle.push(name.clone());
                    let start = cycle.iter().position(|s| s == name).unwrap_or(0);
                    d.error(
                        n.runs_pos,
                        format!(
                            "subgraph \"{name}\" includes itself: {}",
                            cycle[start..].join(" -> ")
                        ),
                    )
                    .node(&id);
                    // Edges to the instance follow from this error: say nothing more.
                    scope.local.insert(n.id.clone(), Local::Broken);
                    continue;
                }
                if n.with.is_some() {
                    d.error(n.pos, "a subgraph instance takes no \"with\" parameters")
                        .node(&id);
                }
                stack.push(name.clone());
                let inner = expand_graph(&sg.graph, &format!("{id}/"), subgraphs, stack, d);
                stack.pop();
                // An instance whose inside is broken (a recursion, an unknown subgraph) was
                // reported there; its ports would only repeat that, so it goes quiet.
                let broken_inside = sg
                    .inputs
                    .iter()
                    .flat_map(|(_, targets)| targets)
                    .chain(sg.outputs.iter().map(|(_, source)| source))
                    .any(|ep| matches!(inner.local.get(&ep.node), Some(Local::Broken)));
                if broken_inside {
                    scope.nodes.extend(inner.nodes);
                    scope.edges.extend(inner.edges);
                    scope.fed.extend(inner.fed);
                    scope.local.insert(n.id.clone(), Local::Broken);
                    continue;
                }
                let mut inputs = BTreeMap::new();
                for (port, targets) in &sg.inputs {
                    let mut resolved = Vec::new();
                    for t in targets {
                        resolved.extend(resolve_to(&inner, t, &format!("{id}/"), d));
                    }
                    inputs.insert(port.clone(), resolved);
                }
                let mut outputs = BTreeMap::new();
                for (port, source) in &sg.outputs {
                    if let Some(p) = resolve_from(&inner, source, &format!("{id}/"), d) {
                        outputs.insert(port.clone(), p);
                    }
                }
                scope.nodes.extend(inner.nodes);
                scope.edges.extend(inner.edges);
                scope.fed.extend(inner.fed);
                scope.local.insert(
                    n.id.clone(),
                    Local::Instance {
                        subgraph: name.clone(),
                        inputs,
                        outputs,
                    },
                );
            }
        }
    }
    for e in &graph.edges {
        let from = resolve_from(&scope, &e.from, prefix, d);
        let to = resolve_to(&scope, &e.to, prefix, d);
        scope.fed.extend(to.iter().map(|(node, _)| node.clone()));
        if let Some(from) = from {
            for t in to {
                scope.edges.push(FlatEdge {
                    from: from.clone(),
                    to: t,
                    pos: e.from.pos,
                    capture: e.capture,
                });
            }
        }
    }
    scope
}

fn unknown_node(scope: &Scope, ep: &Endpoint, prefix: &str, d: &mut Diags) {
    let diag = d.error(
        ep.pos,
        format!("edge refers to unknown node \"{prefix}{}\"", ep.node),
    );
    if let Some(h) = did_you_mean(&nearest(&ep.node, scope.local.keys().map(|k| k.as_str()))) {
        diag.help(h);
    }
}

fn pick<'a, T>(
    ports: &'a BTreeMap<String, T>,
    ep: &Endpoint,
    side: &str,
    subgraph: &str,
    prefix: &str,
    d: &mut Diags,
) -> Option<&'a T> {
    let id = format!("{prefix}{}", ep.node);
    match &ep.port {
        Some(p) => match ports.get(p) {
            Some(t) => Some(t),
            None => {
                let names: Vec<&str> = ports.keys().map(|k| k.as_str()).collect();
                d.error(
                    ep.pos,
                    format!("subgraph \"{subgraph}\" has no {side} port \"{p}\""),
                )
                .node(&id)
                .help(format!("its {side} ports: {}", names.join(", ")));
                None
            }
        },
        None if ports.len() == 1 => ports.values().next(),
        None => {
            let names: Vec<&str> = ports.keys().map(|k| k.as_str()).collect();
            d.error(
                ep.pos,
                format!("name the {side} port of subgraph instance \"{id}\""),
            )
            .node(&id)
            .help(format!("its {side} ports: {}", names.join(", ")));
            None
        }
    }
}

fn resolve_from(scope: &Scope, ep: &Endpoint, prefix: &str, d: &mut Diags) -> Option<Port> {
    match scope.local.get(&ep.node) {
        Some(Local::Action(id)) => Some((id.clone(), ep.port.clone())),
        Some(Local::Instance {
            subgraph, outputs, ..
        }) => pick(outputs, ep, "output", subgraph, prefix, d).cloned(),
        Some(Local::Broken) => None,
        None => {
            unknown_node(scope, ep, prefix, d);
            None
        }
    }
}

fn resolve_to(scope: &Scope, ep: &Endpoint, prefix: &str, d: &mut Diags) -> Vec<Port> {
    match scope.local.get(&ep.node) {
        Some(Local::Action(id)) => vec![(id.clone(), ep.port.clone())],
        Some(Local::Instance {
            subgraph, inputs, ..
        }) => pick(inputs, ep, "input", subgraph, prefix, d)
            .cloned()
            .unwrap_or_default(),
        Some(Local::Broken) => Vec::new(),
        None => {
            unknown_node(scope, ep, prefix, d);
            Vec::new()
        }
    }
}
