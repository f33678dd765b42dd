//! Where the live view draws each node: layers left to right (a node one layer right of its
//! furthest input), nodes in a layer ordered by their subgraph instance and then by where
//! their inputs are, so edges cross little and an instance's nodes stay together.

use std::collections::BTreeMap;

use serde::Serialize;
use sluice::runtime::ActionKind;
use sluice::runtime::dag::Plan;

/// Width of a node's box, in page units.
const NODE_W: f64 = 150.0;
/// Height of a node's box.
const NODE_H: f64 = 44.0;
/// Horizontal room per layer (the box and the edge's label).
const LAYER_W: f64 = 290.0;
/// Layers per band: a longer workflow wraps onto bands below one another, left to right in
/// each, so a 200-node chain is a block to read rather than a line 60,000 units long.
const BAND_LAYERS: usize = 10;
/// Room between bands.
const BAND_GAP: f64 = 46.0;
/// Vertical room per node.
const ROW_H: f64 = 78.0;
/// Margin around the drawing.
const MARGIN: f64 = 24.0;

/// The workflow as the page draws it (`GET /api/graph`).
#[derive(Debug, Clone, Serialize)]
pub struct Graph {
    /// The workflow's name.
    pub name: Option<String>,
    /// Nodes, in plan order (the same order as a progress snapshot's).
    pub nodes: Vec<GraphNode>,
    /// Edges, in plan order (the same order as a progress snapshot's).
    pub edges: Vec<GraphEdge>,
    /// Subgraph instances, each a box around its nodes.
    pub groups: Vec<Group>,
    /// The drawing's size.
    pub width: f64,
    /// The drawing's size.
    pub height: f64,
}

/// One node, placed.
#[derive(Debug, Clone, Serialize)]
pub struct GraphNode {
    /// Node id (`clean/filter` inside a subgraph instance).
    pub id: String,
    /// Its action.
    pub action: &'static str,
    /// `source`, `processor` or `sink`.
    pub kind: &'static str,
    /// The subgraph instance it belongs to, if any (`clean`).
    pub group: Option<String>,
    /// Its layer, from 0 at the left.
    pub layer: usize,
    /// Top-left corner.
    pub x: f64,
    /// Top-left corner.
    pub y: f64,
    /// Box size.
    pub width: f64,
    /// Box size.
    pub height: f64,
}

/// One edge.
#[derive(Debug, Clone, Serialize)]
pub struct GraphEdge {
    /// Its name (`read->keep`), as `--capture` and `sluice inspect` take it.
    pub name: String,
    /// Upstream node index.
    pub from: usize,
    /// Downstream node index.
    pub to: usize,
    /// The upstream port.
    pub from_port: String,
    /// The downstream port.
    pub to_port: String,
    /// Whether this run captures it (so it can be previewed).
    pub captured: bool,
}

/// A subgraph instance's box.
#[derive(Debug, Clone, Serialize)]
pub struct Group {
    /// The instance's id.
    pub id: String,
    /// Top-left corner.
    pub x: f64,
    /// Top-left corner.
    pub y: f64,
    /// Size.
    pub width: f64,
    /// Size.
    pub height: f64,
}

/// Lays out `plan`; `captured` are the indexes of the edges the run captures.
pub fn of(plan: &Plan, captured: &[usize]) -> Graph {
    let n = plan.nodes.len();
    let group_of = |i: usize| {
        plan.nodes[i]
            .id
            .rsplit_once('/')
            .map(|(g, _)| g.to_string())
    };
    // The outermost instance a node is in, for keeping instances together.
    let top_of = |i: usize| plan.nodes[i].id.split_once('/').map(|(g, _)| g.to_string());
    let mut preds: Vec<Vec<usize>> = vec![Vec::new(); n];
    for e in &plan.edges {
        preds[e.to].push(e.from);
    }
    // Layers by longest path from a source, in topological order (a validated plan is
    // acyclic; `layers` falls back to plan order should it not be).
    let order = topological(
        n,
        &plan
            .edges
            .iter()
            .map(|e| (e.from, e.to))
            .collect::<Vec<_>>(),
    );
    let mut layer = vec![0usize; n];
    for &v in &order {
        layer[v] = preds[v].iter().map(|&p| layer[p] + 1).max().unwrap_or(0);
    }
    let layers = layer.iter().copied().max().map_or(0, |m| m + 1);
    let mut rows = vec![0f64; n];
    let mut tallest = 0usize;
    for l in 0..layers {
        let mut members: Vec<usize> = (0..n).filter(|&v| layer[v] == l).collect();
        // Where its inputs are (their mean row), or its plan position for a source.
        let key = |v: usize| -> f64 {
            if preds[v].is_empty() {
                v as f64
            } else {
                preds[v].iter().map(|&p| rows[p]).sum::<f64>() / preds[v].len() as f64
            }
        };
        // An instance's nodes side by side (nested ones inside their outer instance), the
        // instances in the order of their inputs.
        let mut group_key: BTreeMap<Option<String>, f64> = BTreeMap::new();
        for &v in &members {
            let k = key(v);
            group_key
                .entry(top_of(v))
                .and_modify(|g| *g = g.min(k))
                .or_insert(k);
        }
        members.sort_by(|&a, &b| {
            let (ga, gb) = (top_of(a), top_of(b));
            group_key[&ga]
                .total_cmp(&group_key[&gb])
                .then_with(|| ga.cmp(&gb))
                .then_with(|| group_of(a).cmp(&group_of(b)))
                .then_with(|| key(a).total_cmp(&key(b)))
                .then_with(|| a.cmp(&b))
        });
        for (row, &v) in members.iter().enumerate() {
            rows[v] = row as f64;
        }
        tallest = tallest.max(members.len());
    }
    // Wrapped only when it is long; each band is as tall as the tallest layer.
    let per_band = if layers > BAND_LAYERS + BAND_LAYERS / 2 {
        BAND_LAYERS
    } else {
        layers.max(1)
    };
    let bands = layers.div_ceil(per_band).max(1);
    let band_h = tallest.max(1) as f64 * ROW_H + BAND_GAP;
    let nodes: Vec<GraphNode> = (0..n)
        .map(|v| {
            let node = &plan.nodes[v];
            GraphNode {
                id: node.id.clone(),
                action: node.spec.name,
                kind: match node.spec.kind {
                    ActionKind::Source => "source",
                    ActionKind::Processor => "processor",
                    ActionKind::Sink => "sink",
                },
                group: group_of(v),
                layer: layer[v],
                x: MARGIN + (layer[v] % per_band) as f64 * LAYER_W,
                y: MARGIN + 14.0 + (layer[v] / per_band) as f64 * band_h + rows[v] * ROW_H,
                width: NODE_W,
                height: NODE_H,
            }
        })
        .collect();
    // A box per instance, nested instances included (`clean/tag` inside `clean`), each
    // around every node whose id it prefixes; inner boxes pad less, so they sit inside.
    let mut boxes: BTreeMap<String, (f64, f64, f64, f64)> = BTreeMap::new();
    for node in &nodes {
        let mut prefix = String::new();
        let parts: Vec<&str> = node.id.split('/').collect();
        for part in &parts[..parts.len() - 1] {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(part);
            let b = boxes
                .entry(prefix.clone())
                .or_insert((f64::MAX, f64::MAX, f64::MIN, f64::MIN));
            b.0 = b.0.min(node.x);
            b.1 = b.1.min(node.y);
            b.2 = b.2.max(node.x + node.width);
            b.3 = b.3.max(node.y + node.height);
        }
    }
    let groups = boxes
        .into_iter()
        .map(|(id, (x0, y0, x1, y1))| {
            let depth = id.matches('/').count() as f64;
            let pad = (14.0 - 5.0 * depth).max(4.0);
            let top = (22.0 - 5.0 * depth).max(12.0);
            Group {
                id,
                x: x0 - pad,
                y: y0 - top,
                width: x1 - x0 + 2.0 * pad,
                height: y1 - y0 + top + pad,
            }
        })
        .collect();
    let edges = plan
        .edges
        .iter()
        .enumerate()
        .map(|(i, e)| GraphEdge {
            name: plan.edge_name(i),
            from: e.from,
            to: e.to,
            from_port: plan.nodes[e.from].outputs[e.from_port].clone(),
            to_port: plan.nodes[e.to].inputs[e.to_port].clone(),
            captured: captured.contains(&i),
        })
        .collect();
    Graph {
        name: plan.name.clone(),
        nodes,
        edges,
        groups,
        width: 2.0 * MARGIN + per_band as f64 * LAYER_W - (LAYER_W - NODE_W),
        height: 2.0 * MARGIN + 14.0 + bands as f64 * band_h - BAND_GAP,
    }
}

/// Nodes `0..n` in an order where every edge goes forward (Kahn's algorithm); nodes on a
/// cycle, which a validated plan has none of, come last in plan order.
fn topological(n: usize, edges: &[(usize, usize)]) -> Vec<usize> {
    let mut indegree = vec![0usize; n];
    let mut next: Vec<Vec<usize>> = vec![Vec::new(); n];
    for &(a, b) in edges {
        indegree[b] += 1;
        next[a].push(b);
    }
    let mut ready: Vec<usize> = (0..n).rev().filter(|&v| indegree[v] == 0).collect();
    let mut order = Vec::with_capacity(n);
    while let Some(v) = ready.pop() {
        order.push(v);
        for &w in next[v].iter().rev() {
            indegree[w] -= 1;
            if indegree[w] == 0 {
                ready.push(w);
            }
        }
    }
    let placed: std::collections::HashSet<usize> = order.iter().copied().collect();
    order.extend((0..n).filter(|v| !placed.contains(v)));
    order
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice::runtime::workflow::{self, VarSources};

    fn plan(yaml: &str) -> Plan {
        workflow::load(
            "wf.yaml",
            yaml,
            &sluice::actions::registry(),
            &VarSources::default(),
        )
        .unwrap_or_else(|e| panic!("{e}"))
    }

    fn chain(n: usize) -> Plan {
        let mut y = String::from(
            "nodes:\n  - { id: read, action: csv_reader, with: { path: data/places.csv } }\n",
        );
        let mut edges = String::from("edges:\n");
        let mut prev = "read".to_string();
        for i in 1..n - 1 {
            y.push_str(&format!(
                "  - {{ id: f{i}, action: filter, with: {{ conditions: [ {{ port: kept, expression: \"true\" }} ] }} }}\n"
            ));
            let from = if i == 1 {
                prev.clone()
            } else {
                format!("{prev}.kept")
            };
            edges.push_str(&format!("  - {from} -> f{i}\n"));
            prev = format!("f{i}");
        }
        y.push_str("  - { id: write, action: csv_writer, with: { path: out.csv } }\n");
        edges.push_str(&format!("  - {prev}.kept -> write\n"));
        plan(&(y + &edges))
    }

    fn overlap(a: &GraphNode, b: &GraphNode) -> bool {
        a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height
    }

    #[test]
    fn a_short_chain_runs_left_to_right_on_one_line() {
        let g = of(&chain(5), &[]);
        for w in g.nodes.windows(2) {
            assert!(w[0].x < w[1].x && w[0].y == w[1].y, "{w:?}");
        }
        assert!(g.nodes.iter().all(|n| n.x + n.width <= g.width));
    }

    #[test]
    fn a_200_node_chain_wraps_into_bands_with_nothing_overlapping() {
        let g = of(&chain(200), &[]);
        assert_eq!(g.nodes.len(), 200);
        let bands: std::collections::BTreeSet<i64> = g.nodes.iter().map(|n| n.y as i64).collect();
        assert_eq!(bands.len(), 20, "ten layers a band");
        for (i, a) in g.nodes.iter().enumerate() {
            assert!(a.x >= 0.0 && a.x + a.width <= g.width && a.y + a.height <= g.height);
            for b in &g.nodes[i + 1..] {
                assert!(!overlap(a, b), "{} and {} overlap", a.id, b.id);
            }
        }
        // Within a band, left to right.
        assert!(g.nodes[0].x < g.nodes[1].x && g.nodes[9].x > g.nodes[8].x);
        assert!(g.nodes[10].y > g.nodes[9].y);
    }

    #[test]
    fn subgraph_instances_get_boxes_around_their_nodes_nested_ones_inside() {
        let dir = "tests/fixtures/subgraph_reuse";
        let yaml = std::fs::read_to_string(format!("{dir}/workflow.yaml")).unwrap();
        let vars = VarSources::new(
            [
                ("input", format!("{dir}/input")),
                ("output", "out".to_string()),
            ]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        );
        let plan = workflow::load("wf.yaml", &yaml, &sluice::actions::registry(), &vars)
            .unwrap_or_else(|e| panic!("{e}"));
        let g = of(&plan, &[]);
        let ids: Vec<&str> = g.groups.iter().map(|b| b.id.as_str()).collect();
        assert_eq!(ids, ["clean_a", "clean_a/tag", "clean_b", "clean_b/tag"]);
        let inside = |n: &GraphNode, b: &Group| {
            n.x >= b.x
                && n.y >= b.y
                && n.x + n.width <= b.x + b.width
                && n.y + n.height <= b.y + b.height
        };
        for b in &g.groups {
            let prefix = format!("{}/", b.id);
            for n in &g.nodes {
                assert_eq!(
                    n.id.starts_with(&prefix),
                    inside(n, b),
                    "{} and box {}",
                    n.id,
                    b.id
                );
            }
        }
        assert_eq!(
            g.nodes
                .iter()
                .find(|n| n.id == "clean_a/tag/calc")
                .unwrap()
                .group
                .as_deref(),
            Some("clean_a/tag")
        );
    }

    #[test]
    fn branches_share_a_layer_and_subgraph_nodes_are_grouped() {
        let g = of(
            &plan(
                "nodes:\n  - { id: read, action: csv_reader, with: { path: data/places.csv } }\n  - { id: keep, action: filter, with: { conditions: [ { port: big, expression: \"true\" } ] } }\n  - { id: a, action: csv_writer, with: { path: a.csv } }\n  - { id: b, action: csv_writer, with: { path: b.csv } }\nedges: [ read -> keep, keep.big -> a, keep.unfiltered -> b ]\n",
            ),
            &[1],
        );
        let (a, b) = (&g.nodes[2], &g.nodes[3]);
        assert_eq!((a.layer, b.layer), (2, 2));
        assert_eq!(a.x, b.x);
        assert!(!overlap(a, b));
        assert!(g.edges[1].captured && !g.edges[0].captured);
        assert!(g.groups.is_empty());
    }

    #[test]
    fn a_topological_order_puts_every_edge_forward() {
        let edges = [(2, 0), (0, 1), (2, 1), (3, 2)];
        let order = topological(4, &edges);
        let pos = |v: usize| order.iter().position(|&x| x == v).unwrap();
        for (a, b) in edges {
            assert!(pos(a) < pos(b), "{a}->{b} in {order:?}");
        }
        assert_eq!(order.len(), 4);
    }

    #[test]
    fn a_cycle_still_places_every_node_once() {
        let order = topological(3, &[(0, 1), (1, 0)]);
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(sorted, vec![0, 1, 2]);
    }
}
