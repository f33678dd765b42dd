//! Collecting located diagnostics while checking a workflow.

use super::yaml::Pos;
use crate::error::{Diagnostic, Severity};

/// Collects every problem found; nothing stops at the first.
#[derive(Debug, Default)]
pub(crate) struct Diags {
    pub file: String,
    pub list: Vec<Diagnostic>,
    /// The workflow's text, when known: lets a problem inside an expression point at its
    /// character (see `shapes.rs`).
    pub source: String,
}

impl Diags {
    pub fn new(file: &str) -> Diags {
        Diags {
            file: file.to_string(),
            list: Vec::new(),
            source: String::new(),
        }
    }

    pub fn error(&mut self, pos: Pos, message: impl Into<String>) -> &mut Diagnostic {
        self.push(Severity::Error, pos, message)
    }

    pub fn warning(&mut self, pos: Pos, message: impl Into<String>) -> &mut Diagnostic {
        self.push(Severity::Warning, pos, message)
    }

    fn push(
        &mut self,
        severity: Severity,
        pos: Pos,
        message: impl Into<String>,
    ) -> &mut Diagnostic {
        self.list.push(Diagnostic {
            severity,
            message: message.into(),
            file: self.file.clone(),
            line: pos.line,
            column: pos.column,
            node: None,
            param: None,
            help: None,
            code: None,
        });
        let last = self.list.len() - 1;
        &mut self.list[last]
    }

    pub fn has_errors(&self) -> bool {
        self.list.iter().any(|d| d.severity == Severity::Error)
    }

    /// Sorted by position (stable), so output follows the file.
    pub fn sorted(mut self) -> Vec<Diagnostic> {
        self.list.sort_by_key(|d| (d.line, d.column));
        self.list
    }
}

/// Builder-style helpers on a freshly pushed diagnostic.
pub(crate) trait DiagExt {
    fn node(&mut self, node: &str) -> &mut Self;
    fn param(&mut self, param: &str) -> &mut Self;
    fn help(&mut self, help: impl Into<String>) -> &mut Self;
}

impl DiagExt for Diagnostic {
    fn node(&mut self, node: &str) -> &mut Self {
        self.node = Some(node.to_string());
        self
    }
    fn param(&mut self, param: &str) -> &mut Self {
        if !param.is_empty() {
            self.param = Some(param.to_string());
        }
        self
    }
    fn help(&mut self, help: impl Into<String>) -> &mut Self {
        self.help = Some(help.into());
        self
    }
}

pub(crate) use crate::error::{did_you_mean, nearest};
