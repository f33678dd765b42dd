//! Workflows: parse (YAML/JSON with positions), resolve variables, expand subgraphs, and
//! validate into a [`Plan`], reporting every problem at once.
//!
//! ```
//! use sluice_runtime::{Registry, workflow::{self, VarSources}};
//! let src = "nodes:\n  - id: a\n    action: nothing_here\n";
//! let err = workflow::load("wf.yaml", src, &Registry::default(), &VarSources::default()).err().unwrap();
//! assert_eq!(err.diagnostics[0].to_string(), "wf.yaml:3:13: node \"a\", unknown action \"nothing_here\"; `sluice actions` lists the actions");
//! ```

mod diag;
mod expand;
mod model;
mod params;
mod schema;
mod validate;
mod vars;
pub mod yaml;

/// The [`Diagnostic::code`] of the warning that a node's `rejected` port has no edge. `sluice
/// validate` prints it; `sluice run` leaves it out (on a large workflow it would be a line per
/// node at every run) and warns instead, at the end, about features actually rejected.
pub const UNCONNECTED_REJECTED: &str = "unconnected-rejected";

pub use model::{EdgeDecl, Endpoint, Graph, NodeDecl, NodeRef, Subgraph, VarDecl, Workflow};
pub use schema::json_schema;
pub use vars::VarSources;

use crate::action::Registry;
use crate::dag::Plan;
use crate::error::{Diagnostic, Severity, ValidationError};

/// Parses a workflow into its model (no action checks). `file` names it in diagnostics.
pub fn parse(file: &str, source: &str) -> Result<Workflow, ValidationError> {
    let mut d = diag::Diags::new(file);
    let wf = parse_into(source, &mut d);
    match wf {
        Some(wf) if !d.has_errors() => Ok(wf),
        _ => Err(ValidationError {
            diagnostics: d.sorted(),
        }),
    }
}

fn parse_into(source: &str, d: &mut diag::Diags) -> Option<Workflow> {
    match yaml::parse(source) {
        Ok(root) => Some(model::read_workflow(&root, d)),
        Err(e) => {
            d.error(e.pos, e.message);
            None
        }
    }
}

/// Parses, resolves variables, expands subgraphs, builds every node and checks the graph.
/// On success the plan holds the built nodes and any warnings.
pub fn load(
    file: &str,
    source: &str,
    registry: &Registry,
    vars: &VarSources,
) -> Result<Plan, ValidationError> {
    let mut d = diag::Diags::new(file);
    let Some(wf) = parse_into(source, &mut d) else {
        return Err(ValidationError {
            diagnostics: d.sorted(),
        });
    };
    let plan = validate::build_plan(&wf, registry, vars, &mut d);
    let diagnostics = d.sorted();
    if diagnostics.iter().any(|x| x.severity == Severity::Error) {
        return Err(ValidationError { diagnostics });
    }
    let mut plan = plan;
    plan.warnings = diagnostics;
    Ok(plan)
}

/// Reads a workflow file and [`load`]s it. The path as given names it in diagnostics.
pub fn load_file(
    path: &std::path::Path,
    registry: &Registry,
    vars: &VarSources,
) -> Result<Plan, ValidationError> {
    let file = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(src) => load(&file, &src, registry, vars),
        Err(e) => Err(ValidationError {
            diagnostics: vec![Diagnostic {
                severity: Severity::Error,
                message: format!("cannot read workflow: {e}"),
                file,
                line: 0,
                column: 0,
                node: None,
                param: None,
                help: None,
                code: None,
            }],
        }),
    }
}
