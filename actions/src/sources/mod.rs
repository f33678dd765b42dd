//! The sources of the action library.

use sluice_runtime::ActionSpec;

/// The specs of every action in this module.
pub fn specs() -> Vec<ActionSpec> {
    vec![]
}
