//! The workflow model: what a workflow file says, with positions, before expansion.
//!
//! ```yaml
//! name: example
//! variables:
//!   threshold: 500                 # a default
//!   region: { description: "region code" }   # no default: must be given
//! nodes:                           # the entry graph
//!   - id: read
//!     action: csv_reader
//!     with: { path: "data/in.csv" }
//!   - id: clean
//!     subgraph: cleaner            # an instance of a subgraph
//! edges:
//!   - read -> clean.in             # node.port -> node.port; the port may be omitted
//!   - { from: clean, to: write, capture: true }   # captured whenever the run captures
//! subgraphs:
//!   cleaner:
//!     inputs: { in: [keep] }       # input port -> inner nodes (node or node.port)
//!     outputs: { out: keep.passed }
//!     nodes: [ ... ]
//!     edges: [ ... ]
//! ```

use std::collections::BTreeMap;

use super::diag::{DiagExt, Diags};
use super::yaml::{Kind, Node, Pos};

/// A parsed workflow file.
#[derive(Debug, Clone, PartialEq)]
pub struct Workflow {
    /// The file name used in diagnostics.
    pub file: String,
    /// The workflow's name.
    pub name: Option<String>,
    /// Declared variables.
    pub variables: Vec<VarDecl>,
    /// The entry graph.
    pub graph: Graph,
    /// Named reusable subgraphs.
    pub subgraphs: BTreeMap<String, Subgraph>,
}

/// A declared variable.
#[derive(Debug, Clone, PartialEq)]
pub struct VarDecl {
    /// Its name.
    pub name: String,
    /// The default, as text; `None` means the variable must be given.
    pub default: Option<String>,
    /// A description for users.
    pub description: Option<String>,
    /// Where it is declared.
    pub pos: Pos,
}

/// Nodes and edges.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Graph {
    /// The nodes, in file order.
    pub nodes: Vec<NodeDecl>,
    /// The edges, in file order.
    pub edges: Vec<EdgeDecl>,
    /// Ids of nodes refused while reading (a bad id, no action, a `with` that is not a
    /// mapping). Their problem is reported once; edges to them say nothing more.
    pub refused: Vec<String>,
}

/// A subgraph: a graph with named input and output ports.
#[derive(Debug, Clone, PartialEq)]
pub struct Subgraph {
    /// Its name.
    pub name: String,
    /// Input port → the inner endpoints it feeds.
    pub inputs: Vec<(String, Vec<Endpoint>)>,
    /// Output port → the inner endpoint it comes from.
    pub outputs: Vec<(String, Endpoint)>,
    /// The inner graph.
    pub graph: Graph,
    /// Where it is declared.
    pub pos: Pos,
}

/// What a node runs.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeRef {
    /// A registered action.
    Action(String),
    /// An instance of a subgraph.
    Subgraph(String),
}

/// A node declaration.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeDecl {
    /// The node id.
    pub id: String,
    /// Action or subgraph.
    pub runs: NodeRef,
    /// Where the action/subgraph name is.
    pub runs_pos: Pos,
    /// The `with` block.
    pub with: Option<Node>,
    /// Where the node starts.
    pub pos: Pos,
}

/// One end of an edge: a node and maybe a port.
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    /// Node id.
    pub node: String,
    /// Port name; `None` means the default port.
    pub port: Option<String>,
    /// Where it is written.
    pub pos: Pos,
}

/// An edge declaration.
#[derive(Debug, Clone, PartialEq)]
pub struct EdgeDecl {
    /// Upstream end.
    pub from: Endpoint,
    /// Downstream end.
    pub to: Endpoint,
    /// `capture: true` (map form only): the run captures this edge whenever it captures.
    pub capture: bool,
}

const TOP_KEYS: &[&str] = &[
    "name",
    "description",
    "variables",
    "nodes",
    "edges",
    "subgraphs",
];
const NODE_KEYS: &[&str] = &["id", "action", "subgraph", "with", "description"];
const SUBGRAPH_KEYS: &[&str] = &["inputs", "outputs", "nodes", "edges", "description"];

/// Reads the model out of a located YAML tree, adding a diagnostic for each problem.
pub(crate) fn read_workflow(root: &Node, d: &mut Diags) -> Workflow {
    let mut wf = Workflow {
        file: d.file.clone(),
        name: None,
        variables: Vec::new(),
        graph: Graph::default(),
        subgraphs: BTreeMap::new(),
    };
    let Kind::Map(entries) = &root.kind else {
        d.error(
            root.pos,
            format!("a workflow is a mapping, found {}", root.type_name()),
        );
        return wf;
    };
    unknown_keys(entries, TOP_KEYS, "workflow", None, d);
    wf.name = root.get("name").and_then(|n| string(n, "name", None, d));
    if let Some(vars) = root.get("variables") {
        wf.variables = read_variables(vars, d);
    }
    match root.get("nodes") {
        Some(nodes) => read_nodes(nodes, &mut wf.graph, d),
        None => {
            d.error(root.pos, "missing key \"nodes\"");
        }
    }
    if let Some(edges) = root.get("edges") {
        wf.graph.edges = read_edges(edges, d);
    }
    if let Some(subs) = root.get("subgraphs") {
        match &subs.kind {
            Kind::Map(m) => {
                for (name, pos, body) in m {
                    if let Some(sg) = read_subgraph(name, *pos, body, d) {
                        wf.subgraphs.insert(name.clone(), sg);
                    }
                }
            }
            _ => {
                d.error(
                    subs.pos,
                    format!(
                        "\"subgraphs\" must be a mapping, found {}",
                        subs.type_name()
                    ),
                );
            }
        }
    }
    wf
}

fn unknown_keys(
    entries: &[(String, Pos, Node)],
    allowed: &[&str],
    what: &str,
    node: Option<&str>,
    d: &mut Diags,
) {
    for (k, pos, _) in entries {
        if !allowed.contains(&k.as_str()) {
            let near = super::diag::nearest(k, allowed.iter().copied());
            let diag = d.error(*pos, format!("unknown key \"{k}\" in {what}"));
            if let Some(n) = node {
                diag.node(n);
            }
            if let Some(h) = super::diag::did_you_mean(&near) {
                diag.help(h);
            } else {
                diag.help(format!("expected one of {}", allowed.join(", ")));
            }
        }
    }
}

fn string(n: &Node, what: &str, node: Option<&str>, d: &mut Diags) -> Option<String> {
    match &n.kind {
        Kind::Str(s) => Some(s.clone()),
        Kind::Int(i) => Some(i.to_string()),
        Kind::Float(f) => Some(f.to_string()),
        Kind::Bool(b) => Some(b.to_string()),
        _ => {
            let diag = d.error(
                n.pos,
                format!("\"{what}\" must be a string, found {}", n.type_name()),
            );
            if let Some(node) = node {
                diag.node(node);
            }
            None
        }
    }
}

fn read_variables(vars: &Node, d: &mut Diags) -> Vec<VarDecl> {
    let Kind::Map(m) = &vars.kind else {
        d.error(
            vars.pos,
            format!(
                "\"variables\" must be a mapping, found {}",
                vars.type_name()
            ),
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    for (name, pos, v) in m {
        if !is_identifier(name) {
            d.error(
                *pos,
                format!("variable name \"{name}\" is not an identifier (letters, digits, _)"),
            );
            continue;
        }
        let (default, description) = match &v.kind {
            Kind::Map(entries) => {
                unknown_keys(entries, &["default", "description"], "variable", None, d);
                (
                    v.get("default").and_then(|x| string(x, "default", None, d)),
                    v.get("description")
                        .and_then(|x| string(x, "description", None, d)),
                )
            }
            Kind::Null => (None, None),
            Kind::Seq(_) => {
                d.error(
                    v.pos,
                    format!("variable \"{name}\" must be a scalar default or a mapping"),
                );
                (None, None)
            }
            _ => (string(v, name, None, d), None),
        };
        out.push(VarDecl {
            name: name.clone(),
            default,
            description,
            pos: *pos,
        });
    }
    out
}

/// Letters, digits and `_`, not starting with a digit.
pub(crate) fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// What is wrong with a node id, if anything. Ids may use letters of any script and digits
/// (`läsa`, `123`), `_` and `-`; a `.` would read as a port in edges (`a.port -> b`), a `/`
/// as a subgraph path, and spaces or `->` would break the edge syntax.
pub(crate) fn node_id_problem(id: &str) -> Option<String> {
    if id.is_empty() {
        return Some("is empty".into());
    }
    let bad = id
        .chars()
        .find(|c| !(c.is_alphanumeric() || *c == '_' || *c == '-'))?;
    Some(match bad {
        '.' => "cannot hold '.': in edges it separates a node from its port (node.port)".into(),
        '/' => "cannot hold '/': it separates subgraph instances in node paths".into(),
        c if c.is_whitespace() => "cannot hold spaces".into(),
        c => format!("cannot hold {c:?}"),
    })
}

fn read_nodes(nodes: &Node, graph: &mut Graph, d: &mut Diags) {
    let Kind::Seq(items) = &nodes.kind else {
        d.error(
            nodes.pos,
            format!("\"nodes\" must be a list, found {}", nodes.type_name()),
        );
        return;
    };
    let out = &mut graph.nodes;
    let refused = &mut graph.refused;
    for item in items {
        let Kind::Map(entries) = &item.kind else {
            d.error(
                item.pos,
                format!("a node must be a mapping, found {}", item.type_name()),
            );
            continue;
        };
        let Some(id_node) = item.get("id") else {
            d.error(item.pos, "node is missing \"id\"");
            continue;
        };
        let Some(id) = string(id_node, "id", None, d) else {
            continue;
        };
        if let Some(problem) = node_id_problem(&id) {
            d.error(id_node.pos, format!("node id \"{id}\" {problem}"))
                .node(&id)
                .help("a node id holds letters (any script), digits, '_' and '-'");
            refused.push(id);
            continue;
        }
        unknown_keys(entries, NODE_KEYS, "node", Some(&id), d);
        if let Some(prev) = out.iter().find(|n| n.id == id) {
            d.error(id_node.pos, format!("duplicate node id \"{id}\""))
                .node(&id)
                .help(format!("first declared at line {}", prev.pos.line));
            continue;
        }
        let runs = match (item.get("action"), item.get("subgraph")) {
            (Some(a), None) => {
                string(a, "action", Some(&id), d).map(|s| (NodeRef::Action(s), a.pos))
            }
            (None, Some(s)) => {
                string(s, "subgraph", Some(&id), d).map(|x| (NodeRef::Subgraph(x), s.pos))
            }
            (Some(a), Some(_)) => {
                d.error(
                    a.pos,
                    "a node has either \"action\" or \"subgraph\", not both",
                )
                .node(&id);
                None
            }
            (None, None) => {
                d.error(item.pos, "node is missing \"action\"").node(&id);
                None
            }
        };
        let Some((runs, runs_pos)) = runs else {
            refused.push(id);
            continue;
        };
        let with = item.get("with").cloned();
        if let Some(w) = &with
            && !matches!(w.kind, Kind::Map(_) | Kind::Null)
        {
            d.error(
                w.pos,
                format!("\"with\" must be a mapping, found {}", w.type_name()),
            )
            .node(&id);
            refused.push(id);
            continue;
        }
        out.push(NodeDecl {
            id,
            runs,
            runs_pos,
            with,
            pos: item.pos,
        });
    }
}

fn read_edges(edges: &Node, d: &mut Diags) -> Vec<EdgeDecl> {
    if edges.kind == Kind::Null {
        return Vec::new();
    }
    let Kind::Seq(items) = &edges.kind else {
        d.error(
            edges.pos,
            format!("\"edges\" must be a list, found {}", edges.type_name()),
        );
        return Vec::new();
    };
    let mut out = Vec::new();
    for item in items {
        let mut capture = false;
        let edge = match &item.kind {
            Kind::Str(s) => match s.split_once("->") {
                Some((a, b)) => {
                    let from = parse_endpoint(a.trim(), item.pos, d);
                    let to = parse_endpoint(b.trim(), item.pos, d);
                    from.zip(to)
                }
                None => {
                    d.error(
                        item.pos,
                        format!("edge \"{s}\" must look like \"node.port -> node.port\""),
                    );
                    None
                }
            },
            Kind::Map(entries) => {
                unknown_keys(entries, &["from", "to", "capture"], "edge", None, d);
                if let Some(c) = item.get("capture") {
                    match c.kind {
                        Kind::Bool(b) => capture = b,
                        _ => {
                            d.error(
                                c.pos,
                                format!(
                                    "an edge's \"capture\" must be true or false, found {}",
                                    c.type_name()
                                ),
                            );
                        }
                    }
                }
                let from = item.get("from").and_then(|n| {
                    string(n, "from", None, d).and_then(|s| parse_endpoint(&s, n.pos, d))
                });
                let to = item.get("to").and_then(|n| {
                    string(n, "to", None, d).and_then(|s| parse_endpoint(&s, n.pos, d))
                });
                if item.get("from").is_none() || item.get("to").is_none() {
                    d.error(item.pos, "an edge needs both \"from\" and \"to\"");
                }
                from.zip(to)
            }
            _ => {
                d.error(
                    item.pos,
                    format!(
                        "an edge is \"a.port -> b.port\" or {{from, to}}, found {}",
                        item.type_name()
                    ),
                );
                None
            }
        };
        if let Some((from, to)) = edge {
            out.push(EdgeDecl { from, to, capture });
        }
    }
    out
}

/// Parses `node` or `node.port`.
pub(crate) fn parse_endpoint(s: &str, pos: Pos, d: &mut Diags) -> Option<Endpoint> {
    let (node, port) = match s.split_once('.') {
        Some((n, p)) => (n.trim(), Some(p.trim().to_string())),
        None => (s.trim(), None),
    };
    if node.is_empty() || port.as_deref() == Some("") {
        d.error(
            pos,
            format!("\"{s}\" is not a valid endpoint (expected node or node.port)"),
        );
        return None;
    }
    Some(Endpoint {
        node: node.to_string(),
        port,
        pos,
    })
}

fn read_subgraph(name: &str, pos: Pos, body: &Node, d: &mut Diags) -> Option<Subgraph> {
    let Kind::Map(entries) = &body.kind else {
        d.error(
            body.pos,
            format!(
                "subgraph \"{name}\" must be a mapping, found {}",
                body.type_name()
            ),
        );
        return None;
    };
    unknown_keys(entries, SUBGRAPH_KEYS, "subgraph", None, d);
    let mut sg = Subgraph {
        name: name.to_string(),
        inputs: Vec::new(),
        outputs: Vec::new(),
        graph: Graph::default(),
        pos,
    };
    if let Some(inputs) = body.get("inputs") {
        for (port, ppos, targets) in map_entries(inputs, "inputs", d) {
            let list: Vec<&Node> = match &targets.kind {
                Kind::Seq(items) => items.iter().collect(),
                _ => vec![targets],
            };
            let eps = list
                .into_iter()
                .filter_map(|t| {
                    string(t, "inputs", None, d).and_then(|s| parse_endpoint(&s, t.pos, d))
                })
                .collect();
            let _ = ppos;
            sg.inputs.push((port.clone(), eps));
        }
    }
    if let Some(outputs) = body.get("outputs") {
        for (port, _, source) in map_entries(outputs, "outputs", d) {
            if let Some(ep) =
                string(source, "outputs", None, d).and_then(|s| parse_endpoint(&s, source.pos, d))
            {
                sg.outputs.push((port.clone(), ep));
            }
        }
    }
    match body.get("nodes") {
        Some(nodes) => read_nodes(nodes, &mut sg.graph, d),
        None => {
            d.error(
                body.pos,
                format!("subgraph \"{name}\" is missing \"nodes\""),
            );
        }
    }
    if let Some(edges) = body.get("edges") {
        sg.graph.edges = read_edges(edges, d);
    }
    Some(sg)
}

fn map_entries<'a>(n: &'a Node, what: &str, d: &mut Diags) -> Vec<&'a (String, Pos, Node)> {
    match &n.kind {
        Kind::Map(m) => m.iter().collect(),
        _ => {
            d.error(
                n.pos,
                format!("\"{what}\" must be a mapping, found {}", n.type_name()),
            );
            Vec::new()
        }
    }
}
