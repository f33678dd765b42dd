//! The sources of the action library.
//!
//! File readers (`csv_reader`, `json_reader`, `geojson_reader`, `parquet_reader`) take a
//! file, a folder or a glob as `path`, validated by `file_input.rs`, and read through the
//! runtime's [`sluice_runtime::input`]: several files are read at once on reading threads
//! the runtime starts, up to the run's read-ahead, each through its own bounded channel,
//! and emitted in file order with the same ids as a one-by-one read.
//! `json_values.rs` turns JSON into values without an intermediate `serde_json::Value`;
//! Arrow arrays become values through `sluice_runtime::feature::arrow`.

pub mod csv_reader;
pub mod feature_creator;
mod file_input;
pub mod file_lister;
pub mod geojson_reader;
pub mod json_reader;
mod json_values;
pub mod parquet_reader;
#[cfg(test)]
mod round_trips;

use sluice_runtime::ActionSpec;

/// The specs of every action in this module.
pub fn specs() -> Vec<ActionSpec> {
    vec![
        feature_creator::SPEC,
        csv_reader::SPEC,
        json_reader::SPEC,
        geojson_reader::SPEC,
        parquet_reader::SPEC,
        file_lister::SPEC,
    ]
}

/// Reads `path` back with a reader (tests of the writers): its `default` and `rejected`
/// features, through the executor with the node contract checked.
#[cfg(test)]
pub(crate) fn read_back(
    reader: &sluice_runtime::ActionSpec,
    path: &str,
) -> (Vec<sluice_runtime::Feature>, Vec<sluice_runtime::Feature>) {
    let out = sluice_runtime::testing::run_source(reader, serde_json::json!({ "path": path }))
        .unwrap_or_else(|e| panic!("reading {path} back with {}: {e}", reader.name));
    (out.port("default").to_vec(), out.port("rejected").to_vec())
}
