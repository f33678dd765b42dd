//! The processors of the action library.
//!
//! Features an action cannot handle go to its `rejected` port with the reason attached
//! ([`REJECTION_REASON`]); the crate-internal `reject` does that in one place.

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

use sluice_runtime::{ActionSpec, Feature, REJECTION_REASON, Value};

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

/// Attaches `reason` to a feature bound for a `rejected` port.
pub(crate) fn reject(mut feature: Feature, reason: String) -> Feature {
    feature.set(REJECTION_REASON, Value::from(reason));
    feature
}
