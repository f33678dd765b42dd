//! The processors of the action library.
//!
//! Features an action cannot handle go to its `rejected` port with the reason attached
//! (`_rejection_reason`), through [`sluice_runtime::Emitter::reject`].

pub mod attribute_manager;
pub mod attribute_mapper;
pub mod counter;
pub mod dedup;
pub mod filter;
pub mod join;
mod keys;
pub mod list_exploder;
pub mod sample;
pub mod sort;
pub mod statistics;

use sluice_runtime::ActionSpec;

/// The specs of every action in this module.
pub fn specs() -> Vec<ActionSpec> {
    vec![
        sort::SPEC,
        filter::SPEC,
        attribute_manager::SPEC,
        attribute_mapper::SPEC,
        counter::SPEC,
        dedup::SPEC,
        join::SPEC,
        list_exploder::SPEC,
        sample::SPEC,
        statistics::SPEC,
    ]
}
