//! Whole-workflow checks: actions exist, parameters build, ports exist, no cycles.

use std::collections::{BTreeSet, HashMap};

use super::diag::{DiagExt, Diags, did_you_mean, nearest};
use super::expand::{FlatEdge, expand};
use super::model::Workflow;
use super::paths::{LoadOptions, Paths};
use super::vars::{VarSources, mentioned, resolve, substitute};
use super::yaml::{Kind, Node, Pos};
use crate::action::{ActionKind, ActionSpec, BuildContext, REJECTED_PORT, Registry};
use crate::dag::{Plan, PlanEdge, PlanNode};
use crate::error::ActionError;

pub(crate) fn build_plan(
    wf: &Workflow,
    registry: &Registry,
    vars: &VarSources,
    options: &LoadOptions,
    d: &mut Diags,
) -> Plan {
    let values = resolve(&wf.variables, vars, d);
    let paths = Paths::new(options, vars, &values);
    let scope = expand(&wf.graph, &wf.subgraphs, d);
    let mut used = BTreeSet::new();
    let mut nodes: Vec<PlanNode> = Vec::new();
    let mut positions: Vec<Pos> = Vec::new();
    let mut index: HashMap<String, Option<usize>> = HashMap::new();
    // Output key -> (node, position of its path parameter), for the first writer of each.
    let mut written: HashMap<String, (String, Pos)> = HashMap::new();
    for with in scope.nodes.iter().filter_map(|n| n.with.as_ref()) {
        mentioned(with, &mut used);
    }
    for n in &scope.nodes {
        let Some(spec) = registry.get(&n.action) else {
            let diag = d
                .error(n.action_pos, format!("unknown action \"{}\"", n.action))
                .node(&n.id);
            if let Some(h) = did_you_mean(&registry.suggest(&n.action)) {
                diag.help(h);
            } else {
                diag.help("`sluice actions` lists the actions");
            }
            index.insert(n.id.clone(), None);
            continue;
        };
        let mut with = n.with.clone().unwrap_or(Node {
            pos: n.pos,
            kind: Kind::Map(Vec::new()),
        });
        if matches!(with.kind, Kind::Null) {
            with.kind = Kind::Map(Vec::new());
        }
        let errors_before = d.list.len();
        substitute(&mut with, &values, &wf.variables, &mut used, &n.id, d);
        if d.list.len() > errors_before {
            index.insert(n.id.clone(), None);
            continue;
        }
        let mut json = with.to_json();
        paths.resolve(spec, &mut json, n.with.as_ref());
        let ctx = BuildContext {
            node_id: &n.id,
            params: &json,
        };
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (spec.build)(&ctx))) {
            Ok(Ok(built)) if let Err(message) = spec.check_built(&built) => {
                d.error(
                    n.pos,
                    format!("action \"{}\" {message} (a bug in the action)", n.action),
                )
                .node(&n.id);
                index.insert(n.id.clone(), None);
            }
            Ok(Ok(built)) => {
                let outputs = built
                    .outputs
                    .unwrap_or_else(|| spec.outputs.iter().map(|s| s.to_string()).collect());
                if let Some(param) = spec.output_path {
                    check_output(&json, &with, param, &n.id, &mut written, d);
                }
                paths.check_input(spec, &json, &with, n.with.as_ref(), &n.id, d);
                index.insert(n.id.clone(), Some(nodes.len()));
                positions.push(n.pos);
                nodes.push(PlanNode {
                    id: n.id.clone(),
                    spec: *spec,
                    node: built.node,
                    inputs: spec.inputs.iter().map(|s| s.to_string()).collect(),
                    outputs,
                    params: json,
                });
            }
            Ok(Err(e)) => {
                let origin = |var: &str| variable_origin(var, vars, wf);
                let explained = matches!(e, ActionError::Param { .. } | ActionError::Many(_))
                    && explain_params(spec, &with, n.with.as_ref(), &origin, &n.id, d);
                if !explained {
                    report_build_error(e, &with, n.pos, &n.id, d);
                }
                index.insert(n.id.clone(), None);
            }
            Err(_) => {
                d.error(
                    n.pos,
                    format!(
                        "action \"{}\" panicked while reading its parameters (a bug in the action)",
                        n.action
                    ),
                )
                .node(&n.id);
                index.insert(n.id.clone(), None);
            }
        }
    }
    for v in &wf.variables {
        if !used.contains(&v.name) {
            d.warning(v.pos, format!("variable \"{}\" is never used", v.name));
        }
    }
    let edges = check_edges(&scope.edges, &nodes, &index, d);
    check_cycles(&nodes, &edges, &positions, d);
    super::shapes::check(&scope.nodes, &nodes, &edges, d);
    check_unconnected(&nodes, &edges, &positions, &scope.fed, d);
    check_rejected_unconnected(&nodes, &edges, &positions, d);
    Plan {
        name: wf.name.clone(),
        nodes,
        edges,
        warnings: Vec::new(),
        variables: values,
    }
}

/// Two sinks must not write one output: after variables are applied, their paths are
/// compared as the outputs they name (`out/a.csv` and `./out/a.csv` are one file). Paths
/// with `{attribute}` placeholders are compared as written; the writers check the files
/// they make at run time.
fn check_output(
    params: &serde_json::Value,
    with: &Node,
    param: &str,
    node: &str,
    seen: &mut HashMap<String, (String, Pos)>,
    d: &mut Diags,
) {
    let Some(location) = params.get(param).and_then(|v| v.as_str()) else {
        return;
    };
    let key = crate::store::output_key(location);
    let pos = with.locate(param, None);
    // Said as the file has it (variables applied); compared resolved.
    let location = with.get(param).and_then(|v| v.as_str()).unwrap_or(location);
    match seen.get(&key) {
        Some((first, first_pos)) => {
            let file = d.file.clone();
            d.error(
                pos,
                format!(
                    "writes {location}, which node \"{first}\" ({file}:{}:{}) writes too",
                    first_pos.line, first_pos.column
                ),
            )
            .node(node)
            .param(param)
            .help("two writers of one output would mix their rows; give each its own path");
        }
        None => {
            seen.insert(key, (node.to_string(), pos));
        }
    }
}

/// When an action refuses its parameters, walks them against its schema to report every
/// problem in the workflow's words (see `params.rs`). Returns false when the walk finds
/// nothing, so the action's own message is reported. A value that came from a variable
/// says so, since the file shows `${name}`, not the value.
fn explain_params(
    spec: &ActionSpec,
    with: &Node,
    written: Option<&Node>,
    origin: &dyn Fn(&str) -> String,
    node: &str,
    d: &mut Diags,
) -> bool {
    let schema = (spec.schema)().to_value();
    let problems = super::params::check(&schema, with);
    for p in &problems {
        let from_var = written
            .and_then(|w| w.find(&p.path))
            .and_then(|w| w.as_str())
            .and_then(variable_named);
        let help = match (&p.help, from_var) {
            (Some(h), _) => Some(h.clone()),
            (None, Some(var)) => Some(format!("the value comes from {}", origin(var))),
            (None, None) => None,
        };
        let diag = d.error(p.pos, p.message.clone()).node(node).param(&p.path);
        if let Some(h) = help {
            diag.help(h);
        }
    }
    !problems.is_empty()
}

/// Where a variable's value came from, as the author would set it again.
fn variable_origin(name: &str, vars: &VarSources, wf: &Workflow) -> String {
    if let Some(v) = vars.cli.get(name) {
        format!("--var {name}={v}")
    } else if let Some(v) = vars.env.get(name) {
        format!("SLUICE_VAR_{name}={v}")
    } else {
        match wf.variables.iter().find(|v| v.name == name) {
            Some(decl) => format!(
                "the default of variable \"{name}\" (line {})",
                decl.pos.line
            ),
            None => format!("variable \"{name}\""),
        }
    }
}

/// `name` for a parameter written exactly `${name}`.
fn variable_named(text: &str) -> Option<&str> {
    let name = text.trim().strip_prefix("${")?.strip_suffix('}')?.trim();
    (!name.is_empty() && !name.contains(['$', '{', '}'])).then_some(name)
}

fn report_build_error(e: ActionError, with: &Node, pos: Pos, node: &str, d: &mut Diags) {
    match e {
        ActionError::Param { path, message } => {
            let message = message.replace('`', "\"");
            let key = quoted_field(&message);
            // Point at the unknown key itself, or at the deepest value the path reaches.
            let parent = match &key {
                Some(k) if path == *k => "",
                Some(k) => path.strip_suffix(&format!(".{k}")).unwrap_or(&path),
                None => &path,
            };
            let at = if with.pos == pos && path.is_empty() && key.is_none() {
                pos
            } else {
                with.locate(parent, key.as_deref())
            };
            // serde_path_to_error includes an unknown field in the path but not a missing one.
            let param = match &key {
                Some(k) if path == *k || path.ends_with(&format!(".{k}")) => path.clone(),
                Some(k) if path.is_empty() => k.clone(),
                Some(k) => format!("{path}.{k}"),
                None => path.clone(),
            };
            d.error(at, message).node(node).param(&param);
        }
        ActionError::Many(list) => {
            for e in list {
                report_build_error(e, with, pos, node, d);
            }
        }
        other => {
            d.error(pos, other.to_string()).node(node);
        }
    }
}

/// The first `"name"` in a serde message (`unknown field "x", expected ...`).
fn quoted_field(message: &str) -> Option<String> {
    if !(message.starts_with("unknown field") || message.starts_with("missing field")) {
        return None;
    }
    let start = message.find('"')? + 1;
    let len = message[start..].find('"')?;
    Some(message[start..start + len].to_string())
}

fn check_edges(
    flat: &[FlatEdge],
    nodes: &[PlanNode],
    index: &HashMap<String, Option<usize>>,
    d: &mut Diags,
) -> Vec<PlanEdge> {
    let mut out: Vec<PlanEdge> = Vec::new();
    for e in flat {
        let (Some(Some(from)), Some(Some(to))) = (index.get(&e.from.0), index.get(&e.to.0)) else {
            continue; // unknown or broken nodes were reported already
        };
        let from_port = port_index(&nodes[*from], e.from.1.as_deref(), true, e.pos, d);
        let to_port = port_index(&nodes[*to], e.to.1.as_deref(), false, e.pos, d);
        if let (Some(from_port), Some(to_port)) = (from_port, to_port) {
            let edge = PlanEdge {
                from: *from,
                from_port,
                to: *to,
                to_port,
                capture: e.capture,
            };
            if out.iter().any(|o: &PlanEdge| {
                (o.from, o.from_port, o.to, o.to_port) == (*from, from_port, *to, to_port)
            }) {
                d.warning(
                    e.pos,
                    format!("duplicate edge {} -> {}", nodes[*from].id, nodes[*to].id),
                );
                continue;
            }
            out.push(edge);
        }
    }
    out
}

fn port_index(
    node: &PlanNode,
    port: Option<&str>,
    output: bool,
    pos: Pos,
    d: &mut Diags,
) -> Option<usize> {
    let (ports, side) = if output {
        (&node.outputs, "output")
    } else {
        (&node.inputs, "input")
    };
    if ports.is_empty() {
        let what = if output { "a sink" } else { "a source" };
        d.error(
            pos,
            format!("\"{}\" is {what} and has no {side} ports", node.id),
        )
        .node(&node.id);
        return None;
    }
    match port {
        None => Some(0),
        Some(p) => match ports.iter().position(|x| x == p) {
            Some(i) => Some(i),
            None => {
                let diag = d
                    .error(
                        pos,
                        format!(
                            "unknown {side} port \"{p}\" on \"{}\" ({})",
                            node.id, node.spec.name
                        ),
                    )
                    .node(&node.id);
                match did_you_mean(&nearest(p, ports.iter().map(|s| s.as_str()))) {
                    Some(h) => diag.help(h),
                    None => diag.help(format!("its {side} ports: {}", ports.join(", "))),
                };
                None
            }
        },
    }
}

fn check_cycles(nodes: &[PlanNode], edges: &[PlanEdge], positions: &[Pos], d: &mut Diags) {
    let mut g = petgraph::graph::DiGraph::<usize, ()>::new();
    let idx: Vec<_> = (0..nodes.len()).map(|i| g.add_node(i)).collect();
    for e in edges {
        g.add_edge(idx[e.from], idx[e.to], ());
    }
    for scc in petgraph::algo::tarjan_scc(&g) {
        let self_loop = scc.len() == 1 && g.contains_edge(scc[0], scc[0]);
        if scc.len() < 2 && !self_loop {
            continue;
        }
        // Walk the cycle from its first-declared node, following edges inside the component.
        let members: BTreeSet<usize> = scc.iter().map(|n| g[*n]).collect();
        let start = *members.iter().next().unwrap_or(&0);
        let mut path = vec![start];
        let mut cur = start;
        loop {
            let next = edges
                .iter()
                .filter(|e| e.from == cur && members.contains(&e.to))
                .map(|e| e.to)
                .find(|t| *t == start || !path.contains(t));
            match next {
                Some(n) if n == start => break,
                Some(n) => {
                    path.push(n);
                    cur = n;
                }
                None => break,
            }
        }
        path.push(start);
        let names: Vec<&str> = path.iter().map(|i| nodes[*i].id.as_str()).collect();
        d.error(positions[start], format!("cycle: {}", names.join(" -> ")))
            .node(&nodes[start].id)
            .help("a workflow must be acyclic; remove one of these edges");
    }
}

/// A node no edge leads into. A node the file does connect, by an edge whose other end is
/// broken (an unknown or failed node, a bad port), is not warned about: that edge's problem
/// is the one to fix, and was reported.
fn check_unconnected(
    nodes: &[PlanNode],
    edges: &[PlanEdge],
    positions: &[Pos],
    fed: &std::collections::HashSet<String>,
    d: &mut Diags,
) {
    for (i, n) in nodes.iter().enumerate() {
        if n.spec.kind != ActionKind::Source
            && !n.inputs.is_empty()
            && !edges.iter().any(|e| e.to == i)
            && !fed.contains(&n.id)
        {
            d.warning(
                positions[i],
                "no incoming edge: this node will receive no features",
            )
            .node(&n.id);
        }
    }
}

/// A node whose `rejected` port has no edge: what it rejects is counted and dropped (the run
/// warns again with the count when it happens, and `--strict` fails the run), so say it
/// before the run, where the port can still be connected.
fn check_rejected_unconnected(
    nodes: &[PlanNode],
    edges: &[PlanEdge],
    positions: &[Pos],
    d: &mut Diags,
) {
    for (i, n) in nodes.iter().enumerate() {
        let Some(port) = n.outputs.iter().position(|p| p == REJECTED_PORT) else {
            continue;
        };
        if edges.iter().any(|e| e.from == i && e.from_port == port) {
            continue;
        }
        let what = if n.spec.kind == ActionKind::Source {
            "rows that cannot be read"
        } else {
            "features it rejects"
        };
        // A node of a subgraph instance (`clean/keep`) is connected inside the subgraph.
        let help = match n.id.rsplit_once('/') {
            Some((_, inner)) => format!(
                "connect \"{inner}.{REJECTED_PORT}\" to a sink inside its subgraph, or to one \
                 of the subgraph's outputs, to keep them"
            ),
            None => format!(
                "connect \"{}.{REJECTED_PORT}\" to a sink to keep them",
                n.id
            ),
        };
        d.warning(
            positions[i],
            format!("its \"{REJECTED_PORT}\" port has no edge: {what} will be counted and dropped"),
        )
        .node(&n.id)
        .help(help)
        .code = Some(super::UNCONNECTED_REJECTED);
    }
}

#[cfg(test)]
mod tests {
    use crate::action::{ActionSpec, Registry};
    use crate::testing::{COUNT, GEN, PASS};
    use crate::workflow::{VarSources, load};

    const READ: ActionSpec = ActionSpec {
        name: "read",
        ..GEN.outputs(&["default", "rejected"])
    };
    const CHECK: ActionSpec = ActionSpec {
        name: "check",
        ..PASS.outputs(&["default", "rejected"])
    };

    /// The warnings of a workflow that loads.
    fn warnings(yaml: &str) -> Vec<String> {
        let registry = Registry::from_specs([GEN, PASS, COUNT, READ, CHECK]);
        match load("wf.yaml", yaml, &registry, &VarSources::default()) {
            Ok(plan) => plan.warnings.iter().map(|w| w.to_string()).collect(),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn a_rejected_port_with_no_edge_is_a_warning() {
        let yaml = "nodes:\n  - { id: src, action: read, with: { count: 1 } }\n  - { id: chk, action: check }\n  - { id: sink, action: count }\nedges: [ src -> chk, chk -> sink ]\n";
        assert_eq!(
            warnings(yaml),
            [
                "wf.yaml:2:5: warning: node \"src\", its \"rejected\" port has no edge: rows \
                 that cannot be read will be counted and dropped; connect \"src.rejected\" to \
                 a sink to keep them",
                "wf.yaml:3:5: warning: node \"chk\", its \"rejected\" port has no edge: \
                 features it rejects will be counted and dropped; connect \"chk.rejected\" to \
                 a sink to keep them",
            ]
        );
    }

    #[test]
    fn in_a_subgraph_the_help_names_the_inner_node() {
        let yaml = "nodes:\n  - { id: src, action: gen, with: { count: 1 } }\n  - { id: sg, subgraph: checked }\n  - { id: sink, action: count }\nedges: [ src -> sg, sg.out -> sink ]\nsubgraphs:\n  checked:\n    inputs: { in: chk }\n    outputs: { out: chk }\n    nodes:\n      - { id: chk, action: check }\n";
        assert_eq!(
            warnings(yaml),
            [
                "wf.yaml:11:9: warning: node \"sg/chk\", its \"rejected\" port has no edge: \
              features it rejects will be counted and dropped; connect \"chk.rejected\" to a \
              sink inside its subgraph, or to one of the subgraph's outputs, to keep them"
            ]
        );
    }

    #[test]
    fn a_connected_rejected_port_or_none_at_all_is_no_warning() {
        let yaml = "nodes:\n  - { id: src, action: read, with: { count: 1 } }\n  - { id: chk, action: check }\n  - { id: sink, action: count }\n  - { id: bad, action: count }\nedges: [ src -> chk, chk -> sink, src.rejected -> bad, chk.rejected -> bad ]\n";
        assert_eq!(warnings(yaml), Vec::<String>::new());
        // `gen` and `pass` have no `rejected` port: nothing to say about one.
        let yaml = "nodes:\n  - { id: g, action: gen, with: { count: 1 } }\n  - { id: p, action: pass }\n  - { id: sink, action: count }\nedges: [ g -> p, p -> sink ]\n";
        assert_eq!(warnings(yaml), Vec::<String>::new());
    }
}
