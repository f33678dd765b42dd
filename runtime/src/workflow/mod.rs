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
mod paths;
mod schema;
mod shapes;
mod validate;
mod vars;
pub mod yaml;

/// The [`Diagnostic::code`] of the warning that a node's `rejected` port has no edge. `sluice
/// validate` prints it; `sluice run` leaves it out (on a large workflow it would be a line per
/// node at every run) and warns instead, at the end, about features actually rejected.
pub const UNCONNECTED_REJECTED: &str = "unconnected-rejected";

/// The [`Diagnostic::code`] of the warning that a source's attributes cannot be known before
/// it reads (a JSON file without declared columns) while something downstream names
/// attributes: those names and expressions are checked at run time. `sluice validate`
/// prints it; `sluice run` leaves it out.
pub const UNKNOWN_SCHEMA: &str = "unknown-schema";

pub use model::{EdgeDecl, Endpoint, Graph, NodeDecl, NodeRef, Subgraph, VarDecl, Workflow};
pub use paths::{LoadOptions, MISSING_INPUT};
pub use schema::{choice_tag, json_schema};
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
/// On success the plan holds the built nodes and any warnings. Relative paths stay relative
/// to the current folder: [`load_with`] resolves them against a workflow's folder.
pub fn load(
    file: &str,
    source: &str,
    registry: &Registry,
    vars: &VarSources,
) -> Result<Plan, ValidationError> {
    load_with(file, source, registry, vars, &LoadOptions::default())
}

/// [`load`] with options: relative paths resolved against the folders `options` names
/// (see [`LoadOptions`] for the rule). `file` only names the workflow in diagnostics.
///
/// ```
/// use sluice_runtime::{Registry, workflow::{self, LoadOptions, VarSources}};
/// let options = LoadOptions::relative_to("/srv/flows");
/// let plan = workflow::load_with("wf.yaml", "nodes: []\n", &Registry::default(), &VarSources::default(), &options)?;
/// assert!(plan.nodes.is_empty());
/// # Ok::<(), sluice_runtime::ValidationError>(())
/// ```
pub fn load_with(
    file: &str,
    source: &str,
    registry: &Registry,
    vars: &VarSources,
    options: &LoadOptions,
) -> Result<Plan, ValidationError> {
    let mut d = diag::Diags::new(file);
    d.source = source.to_string();
    let Some(wf) = parse_into(source, &mut d) else {
        return Err(ValidationError {
            diagnostics: d.sorted(),
        });
    };
    let plan = validate::build_plan(&wf, registry, vars, options, &mut d);
    let diagnostics = d.sorted();
    if diagnostics.iter().any(|x| x.severity == Severity::Error) {
        return Err(ValidationError { diagnostics });
    }
    let mut plan = plan;
    plan.warnings = diagnostics;
    Ok(plan)
}

/// The outcome of checking a workflow, as data: what `sluice validate --format json` prints,
/// for editors (squiggles at each diagnostic's line and column) and UIs.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Validation {
    /// The file name the diagnostics use.
    pub file: String,
    /// Whether the workflow would run (no errors; warnings allowed).
    pub valid: bool,
    /// How many diagnostics are errors.
    pub errors: usize,
    /// How many are warnings.
    pub warnings: usize,
    /// Action nodes after subgraph expansion (0 when invalid).
    pub nodes: usize,
    /// Edges after subgraph expansion (0 when invalid).
    pub edges: usize,
    /// Every problem, errors and warnings, in file order.
    pub diagnostics: Vec<Diagnostic>,
}

impl Validation {
    /// Summarises what [`load`] or [`load_file`] returned.
    pub fn of(file: &str, loaded: &Result<Plan, ValidationError>) -> Validation {
        let (diagnostics, nodes, edges) = match loaded {
            Ok(plan) => (plan.warnings.clone(), plan.nodes.len(), plan.edges.len()),
            Err(e) => (e.diagnostics.clone(), 0, 0),
        };
        let errors = diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
            .count();
        Validation {
            file: file.to_string(),
            valid: loaded.is_ok(),
            errors,
            warnings: diagnostics.len() - errors,
            nodes,
            edges,
            diagnostics,
        }
    }
}

/// Checks a workflow given as text and returns every diagnostic as data, without running
/// anything. `file` names it in the diagnostics.
///
/// ```
/// use sluice_runtime::{Registry, workflow::{self, VarSources}};
/// let v = workflow::validate("wf.yaml", "nodes: []\nedges: [ a -> b ]\n", &Registry::default(), &VarSources::default());
/// assert!(!v.valid);
/// assert_eq!((v.diagnostics[0].line, v.diagnostics[0].column), (2, 10));
/// ```
pub fn validate(file: &str, source: &str, registry: &Registry, vars: &VarSources) -> Validation {
    Validation::of(file, &load(file, source, registry, vars))
}

/// The [`Diagnostic::code`] of a workflow file that cannot be read at all (missing, a
/// folder, no permission): there is no line to point at.
pub const UNREADABLE: &str = "unreadable-workflow";

/// Reads a workflow file and [`load_with`]s it, relative paths resolved against the file's
/// folder ([`LoadOptions::for_file`]). The path as given names it in diagnostics. A file
/// that is not UTF-8 text (a binary file, another encoding) is located at its first bad byte.
pub fn load_file(
    path: &std::path::Path,
    registry: &Registry,
    vars: &VarSources,
) -> Result<Plan, ValidationError> {
    let file = path.display().to_string();
    let unreadable = |message: String, line: usize, column: usize, code| ValidationError {
        diagnostics: vec![Diagnostic {
            severity: Severity::Error,
            message,
            file: file.clone(),
            line,
            column,
            node: None,
            param: None,
            help: None,
            code,
        }],
    };
    let bytes = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) => {
            let why = match e.kind() {
                std::io::ErrorKind::NotFound => "no such file".to_string(),
                std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
                std::io::ErrorKind::IsADirectory => "it is a folder".to_string(),
                _ => e.to_string(),
            };
            return Err(unreadable(
                format!("cannot read workflow: {why}"),
                0,
                0,
                Some(UNREADABLE),
            ));
        }
    };
    match text_problem(&bytes) {
        Some((offset, what)) => {
            let (line, column) = line_column(&bytes[..offset]);
            Err(unreadable(
                format!("{what} at byte {offset}: a workflow is UTF-8 text (YAML or JSON)"),
                line,
                column,
                None,
            ))
        }
        None => {
            let src = String::from_utf8_lossy(&bytes);
            load_with(&file, &src, registry, vars, &LoadOptions::for_file(path))
        }
    }
}

/// The offset and nature of the first byte that keeps `bytes` from being workflow text.
fn text_problem(bytes: &[u8]) -> Option<(usize, String)> {
    if let Some(nul) = bytes.iter().position(|b| *b == 0) {
        return Some((nul, "a NUL byte (this looks like a binary file)".into()));
    }
    match std::str::from_utf8(bytes) {
        Ok(_) => None,
        Err(e) => {
            let at = e.valid_up_to();
            Some((at, format!("byte 0x{:02X} is not UTF-8", bytes[at])))
        }
    }
}

/// The 1-based line and column just after `prefix` (columns count characters).
fn line_column(prefix: &[u8]) -> (usize, usize) {
    let text = String::from_utf8_lossy(prefix);
    let line = text.matches('\n').count() + 1;
    let column = text.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(bytes: &[u8]) -> String {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("wf.yaml");
        std::fs::write(&path, bytes).unwrap();
        let Err(e) = load_file(&path, &Registry::default(), &VarSources::default()) else {
            panic!("{} should not load", path.display());
        };
        let d = &e.diagnostics[0];
        format!("{}:{} {}", d.line, d.column, d.message)
    }

    #[test]
    fn bad_bytes_are_located_at_the_byte() {
        assert_eq!(
            problem(b"nodes:\n  - { id: a, action: \"\xff\xfe\" }\n"),
            "2:23 byte 0xFF is not UTF-8 at byte 29: a workflow is UTF-8 text (YAML or JSON)"
        );
        assert_eq!(
            problem(b"\x7fELF\x02\x01\x00\x00"),
            "1:7 a NUL byte (this looks like a binary file) at byte 6: a workflow is UTF-8 text (YAML or JSON)"
        );
        // Latin-1 text: the é of "café" on line 3.
        assert_eq!(
            problem(b"nodes:\n  # caf\xe9\n"),
            "2:8 byte 0xE9 is not UTF-8 at byte 14: a workflow is UTF-8 text (YAML or JSON)"
        );
    }

    #[test]
    fn a_missing_file_says_so_without_a_position() {
        let path = std::path::Path::new("no/such/wf.yaml");
        let Err(e) = load_file(path, &Registry::default(), &VarSources::default()) else {
            panic!("a missing file should not load");
        };
        let d = &e.diagnostics[0];
        assert_eq!(d.code, Some(UNREADABLE));
        assert_eq!(
            d.to_string(),
            "no/such/wf.yaml: cannot read workflow: no such file"
        );
    }
}
