//! The one integration test binary.

/// Helpers: temp dirs, running the binary, comparing with expected files, bless mode.
mod util;

/// `sluice` command: exit codes and messages.
mod cli;

/// Workflow fixtures: `fixtures/<case>/{workflow.yaml,input/,expected/}`.
mod fixtures;

/// Broken workflows beside the exact diagnostics they must produce.
mod invalid;

/// Malformed input files beside the exact outcome reading each must give.
mod malformed;

/// Rejected features are reported; variables in expressions are constants.
mod fidelity;

/// Capture: `run --capture`, `inspect`, `run --from`.
mod capture;

/// The README's generated parts.
mod readme;

/// Every action's parameter errors are located at the value with the parameter's path.
mod param_errors;

/// Relative paths resolve against the workflow's folder, `--var` paths against the current
/// folder; a missing input is a located error.
mod paths;

/// The live view's HTTP surface: `sluice serve`, `run --ui`.
mod serve;

/// `run --report` timelines and memory; `sluice report --html`.
mod report;

/// API readers: `--resume` after a kill, tokens never shown, the STAC example workflow.
mod stac;

/// Partitioned runs: `sluice plan`, stages and tasks, byte-identical outputs.
mod partitioned;
