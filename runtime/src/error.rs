//! Errors: whose fault, and where.
//!
//! - [`ValidationError`]: the workflow author's fault, collected in full before anything runs.
//! - [`RunError`]: what stopped a run, with the node it happened in.
//! - [`ActionError`]: what an action returns; the executor adds the node id on the way out.

use std::fmt;

/// How serious a [`Diagnostic`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// The workflow cannot run.
    Error,
    /// The workflow can run, but something looks wrong.
    Warning,
}

/// One located problem in a workflow.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// What is wrong, lowercase, no trailing period.
    pub message: String,
    /// The workflow file (or `<string>`).
    pub file: String,
    /// 1-based line, 0 when unknown.
    pub line: usize,
    /// 1-based column, 0 when unknown.
    pub column: usize,
    /// The node the problem is in.
    pub node: Option<String>,
    /// The parameter path inside the node (`by[0].attr`).
    pub param: Option<String>,
    /// A hint (`did you mean "sort"?`).
    pub help: Option<String>,
    /// What kind of problem it is, for programs that treat some apart (e.g.
    /// [`crate::workflow::UNCONNECTED_REJECTED`]); most have none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<&'static str>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: ", self.file)?;
        } else {
            write!(f, "{}:{}:{}: ", self.file, self.line, self.column)?;
        }
        if self.severity == Severity::Warning {
            write!(f, "warning: ")?;
        }
        if let Some(node) = &self.node {
            write!(f, "node \"{node}\", ")?;
        }
        if let Some(param) = &self.param {
            write!(f, "parameter \"{param}\": ")?;
        }
        write!(f, "{}", self.message)?;
        if let Some(help) = &self.help {
            write!(f, "; {help}")?;
        }
        Ok(())
    }
}

/// A workflow that cannot run, with every problem found.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{}", render(.diagnostics))]
pub struct ValidationError {
    /// All problems (errors and warnings), in file order.
    pub diagnostics: Vec<Diagnostic>,
}

fn render(ds: &[Diagnostic]) -> String {
    ds.iter()
        .map(|d| d.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// An error an action reports. The executor wraps it with the node id.
#[derive(Debug, thiserror::Error)]
pub enum ActionError {
    /// Reading or writing failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done (`reading data/in.csv`).
        context: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A parameter is wrong.
    #[error("{message}")]
    Param {
        /// Path of the parameter (`by[0].attr`), empty for the whole `with` block.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// The data is wrong (a malformed row, a bad geometry).
    #[error("{}{message}", .location.as_ref().map(|l| format!("{l}: ")).unwrap_or_default())]
    Data {
        /// Where in the input (`data/in.csv:17`), when known.
        location: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// Several problems found at once (every bad parameter of a node, say), in the order
    /// found. Validation reports each one; elsewhere the message joins them.
    #[error("{}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
    Many(Vec<ActionError>),
    /// The run was cancelled while the action waited.
    #[error("cancelled")]
    Cancelled,
    /// The memory budget cannot hold what the action needs.
    #[error("memory budget exhausted: needed {requested} more bytes, budget {budget} bytes")]
    MemoryExhausted {
        /// Bytes asked for.
        requested: usize,
        /// The whole budget.
        budget: usize,
    },
    /// Anything else.
    #[error(transparent)]
    Other(Box<dyn std::error::Error + Send + Sync>),
}

impl ActionError {
    /// A parameter error.
    pub fn param(path: impl Into<String>, message: impl Into<String>) -> ActionError {
        ActionError::Param {
            path: path.into(),
            message: message.into(),
        }
    }

    /// `Ok(())` for no errors, the error itself for one, [`ActionError::Many`] for several
    /// (nested lists are flattened).
    pub fn collect(errors: impl IntoIterator<Item = ActionError>) -> Result<(), ActionError> {
        let mut all: Vec<ActionError> = Vec::new();
        for e in errors {
            match e {
                ActionError::Many(inner) => all.extend(inner),
                other => all.push(other),
            }
        }
        match all.len() {
            0 => Ok(()),
            1 => Err(all.remove(0)),
            _ => Err(ActionError::Many(all)),
        }
    }

    /// A data error with an optional location.
    pub fn data(location: Option<String>, message: impl Into<String>) -> ActionError {
        ActionError::Data {
            location,
            message: message.into(),
        }
    }

    /// An I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> ActionError {
        ActionError::Io {
            context: context.into(),
            source,
        }
    }
}

/// Why a run did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The workflow is invalid.
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    /// An action failed.
    #[error("node \"{node}\" failed: {source}")]
    ActionFailed {
        /// The node id.
        node: String,
        /// The cause.
        #[source]
        source: ActionError,
    },
    /// An action panicked; the panic was caught.
    #[error("node \"{node}\" panicked: {message}")]
    Panicked {
        /// The node id.
        node: String,
        /// The panic message.
        message: String,
    },
    /// Capturing an edge failed (e.g. the disk is full): the run was stopped, and the job
    /// folder's manifest says which edges completed.
    #[error("capture of edge \"{edge}\" failed: {source}")]
    Capture {
        /// The edge's name.
        edge: String,
        /// The cause.
        #[source]
        source: ActionError,
    },
    /// A capture job could not be started or read (before any node ran).
    #[error(transparent)]
    Job(#[from] crate::capture::CaptureError),
    /// The memory limit is below the smallest this workflow runs in; nothing was started.
    #[error(transparent)]
    MemoryLimitTooSmall(#[from] crate::memory::LimitTooSmall),
    /// The run was cancelled.
    #[error("run cancelled")]
    Cancelled,
    /// A broken invariant in sluice itself.
    #[error("internal error (a bug in sluice, please report it): {0}")]
    Internal(String),
}

/// `did you mean "a"?` or `did you mean one of "a", "b"?`, or nothing.
pub fn did_you_mean(options: &[&str]) -> Option<String> {
    match options {
        [] => None,
        [one] => Some(format!("did you mean \"{one}\"?")),
        many => Some(format!(
            "did you mean one of {}?",
            many.iter()
                .map(|o| format!("\"{o}\""))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// The names in `candidates` closest to `name` (Jaro-Winkler above 0.7), best first.
pub(crate) fn nearest<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Vec<&'a str> {
    let mut scored: Vec<(f64, &str)> = candidates
        .into_iter()
        // A name less than half as long as the other is no likely typo of it (`a` for
        // `value`), however the letters line up, unless it is an abbreviation (`pop` for
        // `population`).
        .filter(|c| {
            let (a, b) = (name.chars().count(), c.chars().count());
            a.min(b) * 2 >= a.max(b) || (a >= 3 && c.starts_with(name))
        })
        .map(|c| (strsim::jaro_winkler(name, c), c))
        .filter(|(s, _)| *s > 0.7)
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    scored.into_iter().take(3).map(|(_, c)| c).collect()
}

#[cfg(test)]
mod collect_tests {
    use super::ActionError;

    #[test]
    fn collect_gives_none_one_or_many_flattened() {
        assert!(ActionError::collect([]).is_ok());
        let one = ActionError::collect([ActionError::param("a", "bad")]).unwrap_err();
        assert!(matches!(one, ActionError::Param { ref path, .. } if path == "a"));
        let nested = ActionError::Many(vec![
            ActionError::param("b", "worse"),
            ActionError::param("c", "worst"),
        ]);
        let many = ActionError::collect([ActionError::param("a", "bad"), nested]).unwrap_err();
        match &many {
            ActionError::Many(list) => assert_eq!(list.len(), 3),
            other => panic!("{other:?}"),
        }
        assert_eq!(many.to_string(), "bad; worse; worst");
    }
}
