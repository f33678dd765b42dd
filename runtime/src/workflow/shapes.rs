//! Static schemas at validate time: infers every port's [`Shape`](crate::shape::Shape) from
//! the sources down and reports, located in the file, the attribute names and expressions
//! that cannot work on them (see [`crate::shape`]).

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use super::diag::{DiagExt, Diags};
use super::expand::FlatNode;
use super::yaml::{Kind, Node, Pos};
use crate::dag::{PlanEdge, PlanNode};
use crate::error::ActionError;
use crate::shape::{ShapeProblem, infer_nodes};

/// Infers the shapes of a plan's nodes and reports their problems. `flat` holds the nodes
/// as written (for positions). Runs after edges and cycles are checked; a node whose
/// inputs come from a broken node sees unknown inputs, so nothing cascades.
pub(crate) fn check(flat: &[FlatNode], nodes: &[PlanNode], edges: &[PlanEdge], d: &mut Diags) {
    let written: HashMap<&str, &FlatNode> = flat.iter().map(|n| (n.id.as_str(), n)).collect();
    let inferred = infer_nodes(nodes, edges);
    let mut relied: BTreeSet<Arc<str>> = BTreeSet::new();
    for (node, shapes) in nodes.iter().zip(&inferred) {
        let Some(decl) = written.get(node.id.as_str()) else {
            continue;
        };
        let empty = Node {
            pos: decl.pos,
            kind: Kind::Map(Vec::new()),
        };
        let with = decl.with.as_ref().unwrap_or(&empty);
        for p in &shapes.problems {
            report_problem(p, with, &node.id, d);
        }
        if let Some(e) = &shapes.error {
            report_error(e, with, decl.pos, &node.id, d);
        }
        if shapes.panicked {
            d.error(
                decl.pos,
                format!(
                    "action \"{}\" panicked while working out its output schema (a bug in the action)",
                    node.spec.name
                ),
            )
            .node(&node.id);
        }
        relied.extend(shapes.relied.iter().cloned());
    }
    for source in relied {
        let Some(decl) = written.get(&*source) else {
            continue;
        };
        let diag = d
            .warning(
                decl.pos,
                "the attributes of what it reads cannot be known before reading, so the \
                 attribute names and expressions downstream are checked when the workflow runs",
            )
            .node(&source);
        diag.code = Some(super::UNKNOWN_SCHEMA);
    }
}

fn report_problem(p: &ShapeProblem, with: &Node, node: &str, d: &mut Diags) {
    let at = with.find(&p.path);
    let mut pos = with.locate(&p.path, None);
    let mut message = p.message.clone();
    if let Some(offset) = p.offset {
        match at.and_then(|n| expression_column(n, offset, &d.source)) {
            Some(column) => pos.column = column,
            None => message = format!("{message} (at character {} of the expression)", offset + 1),
        }
    }
    let diag = d.error(pos, message).node(node).param(&p.path);
    if let Some(h) = &p.help {
        diag.help(h.clone());
    }
}

/// The file column of character `offset` of the expression in `node`, when the expression
/// is written on one line exactly as it reads (plain, or quoted without escapes); `None`
/// for a multi-line scalar, escapes, or a value that came from a variable.
fn expression_column(node: &Node, offset: usize, source: &str) -> Option<usize> {
    let text = node.as_str()?;
    if text.contains('\n') {
        return None;
    }
    let line = source.lines().nth(node.pos.line.checked_sub(1)?)?;
    let rest: String = line.chars().skip(node.pos.column.checked_sub(1)?).collect();
    let skip = match rest.chars().next()? {
        q @ ('"' | '\'') => {
            let inner = rest[1..].strip_prefix(text)?;
            inner.starts_with(q).then_some(1)?
        }
        _ => rest.starts_with(text).then_some(0)?,
    };
    Some(node.pos.column + skip + offset)
}

fn report_error(e: &ActionError, with: &Node, pos: Pos, node: &str, d: &mut Diags) {
    match e {
        ActionError::Param { path, message } => {
            let at = if path.is_empty() {
                pos
            } else {
                with.locate(path, None)
            };
            d.error(at, message.clone()).node(node).param(path);
        }
        ActionError::Many(list) => {
            for e in list {
                report_error(e, with, pos, node, d);
            }
        }
        other => {
            d.error(pos, other.to_string()).node(node);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn column(source: &str, offset: usize) -> Option<usize> {
        let root = super::super::yaml::parse(source).unwrap();
        expression_column(root.get("e").unwrap(), offset, source)
    }

    #[test]
    fn a_one_line_expression_is_pointed_at_its_character() {
        // `b` is character 4 of `a + b`.
        assert_eq!(column("e: a + b\n", 4), Some(8));
        assert_eq!(column("e: \"a + b\"\n", 4), Some(9));
        assert_eq!(column("e: 'a + b'\n", 4), Some(9));
        assert_eq!(column("x: 1\ne: >-\n  a + b\n", 4), Some(7));
    }

    #[test]
    fn escapes_and_several_lines_are_not_guessed() {
        assert_eq!(column("e: \"a +\\tb\"\n", 4), None);
        assert_eq!(column("e: 'it''s + b'\n", 4), None);
        assert_eq!(column("e: |\n  a +\n  b\n", 4), None);
    }
}
