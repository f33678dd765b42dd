//! The sources of the action library.

pub mod csv_reader;
pub mod feature_creator;

use sluice_runtime::ActionSpec;

/// The specs of every action in this module.
pub fn specs() -> Vec<ActionSpec> {
    vec![feature_creator::SPEC, csv_reader::SPEC]
}
