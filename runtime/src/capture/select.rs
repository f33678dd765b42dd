//! Which edges a run captures: `all`, or edges by name, plus those the workflow marks.

use super::error::{CaptureError, nearest};
use crate::dag::Plan;

/// The edges a run is asked to capture (edges marked `capture: true` in the workflow are
/// captured too).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaptureEdges {
    /// Every edge.
    All,
    /// Only the marked edges.
    Marked,
    /// These edges, by name (see [`Plan::edge_name`]; either port may be written out or,
    /// where it is its node's default, left out).
    Named(Vec<String>),
}

impl CaptureEdges {
    /// Parses the command line's form: `all`, or names separated by commas.
    pub fn parse(s: &str) -> CaptureEdges {
        match s.trim() {
            "all" => CaptureEdges::All,
            list => CaptureEdges::Named(
                list.split(',')
                    .map(|n| n.trim().to_string())
                    .filter(|n| !n.is_empty())
                    .collect(),
            ),
        }
    }
}

/// `name` without spaces, the form names are compared in.
pub(super) fn compact(name: &str) -> String {
    name.chars().filter(|c| !c.is_whitespace()).collect()
}

/// The index of the edge of `plan` called `name`; an unknown name gets the nearest names.
pub fn find_edge(plan: &Plan, name: &str) -> Result<usize, CaptureError> {
    let wanted = compact(name);
    (0..plan.edges.len())
        .find(|&i| plan.edge_spellings(i).contains(&wanted))
        .ok_or_else(|| {
            let names: Vec<String> = (0..plan.edges.len()).map(|i| plan.edge_name(i)).collect();
            CaptureError::UnknownEdge {
                name: name.to_string(),
                suggestions: nearest(&wanted, names.iter().map(String::as_str)),
            }
        })
}

/// The indexes of the edges to capture, in the plan's edge order: those `which` names and
/// those the workflow marks.
pub fn select_edges(plan: &Plan, which: &CaptureEdges) -> Result<Vec<usize>, CaptureError> {
    let mut chosen: Vec<bool> = plan.edges.iter().map(|e| e.capture).collect();
    match which {
        CaptureEdges::All => chosen.iter_mut().for_each(|c| *c = true),
        CaptureEdges::Marked => {}
        CaptureEdges::Named(names) => {
            for n in names {
                chosen[find_edge(plan, n)?] = true;
            }
        }
    }
    Ok(chosen
        .iter()
        .enumerate()
        .filter(|(_, c)| **c)
        .map(|(i, _)| i)
        .collect())
}
