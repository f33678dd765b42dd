//! Geometry processors: measures, constructions, spatial filters and reprojection.

use sluice_runtime::ActionSpec;

/// The specs of every action in this module.
pub fn specs() -> Vec<ActionSpec> {
    vec![]
}
