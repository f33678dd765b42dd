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
pub mod fgb_reader;
mod file_input;
pub mod file_lister;
pub mod geojson_reader;
pub mod gpkg_reader;
mod http_input;
pub mod http_reader;
pub mod json_reader;
mod json_values;
pub mod parquet_reader;
#[cfg(test)]
mod round_trips;
pub mod shapefile_reader;
pub mod stac_reader;

use sluice_runtime::ActionSpec;

/// The specs of every action in this module.
pub fn specs() -> Vec<ActionSpec> {
    vec![
        feature_creator::SPEC,
        csv_reader::SPEC,
        json_reader::SPEC,
        geojson_reader::SPEC,
        parquet_reader::SPEC,
        gpkg_reader::SPEC,
        shapefile_reader::SPEC,
        fgb_reader::SPEC,
        file_lister::SPEC,
        http_reader::SPEC,
        stac_reader::SPEC,
    ]
}

/// Helpers the reader and writer tests share.
#[cfg(test)]
pub(crate) mod test_support {
    use std::io::Write;

    use sluice_runtime::store::AtomicWriter;
    use sluice_runtime::{ActionError, ActionSpec, Emitter, Feature, NodeContext};

    /// Writes `text` to a location (a file, or `memory://...`).
    pub(crate) fn put(location: &str, text: &[u8]) {
        let mut w = AtomicWriter::create(location).unwrap();
        w.write_all(text).unwrap();
        w.commit().unwrap();
    }

    /// Runs a reader outside the executor and returns its `default` and `rejected`
    /// features, or the error it failed with.
    pub(crate) fn read_pair(
        reader: &ActionSpec,
        params: serde_json::Value,
    ) -> Result<(Vec<Feature>, Vec<Feature>), ActionError> {
        let mut source = sluice_runtime::testing::build_source(reader, params)?;
        let mut out = Emitter::for_outputs(reader.outputs);
        source.run(&NodeContext::standalone("t"), &mut out)?;
        let mut ports = out.into_buffers();
        let rejected = ports.pop().unwrap();
        Ok((ports.pop().unwrap(), rejected))
    }

    /// Runs a reader as task `slice` of a partitioned run: its `default` and `rejected`
    /// features, or the error it failed with.
    pub(crate) fn read_slice(
        reader: &ActionSpec,
        params: serde_json::Value,
        slice: sluice_runtime::Slice,
    ) -> Result<(Vec<Feature>, Vec<Feature>), ActionError> {
        let mut source = sluice_runtime::testing::build_source(reader, params)?;
        let mut out = Emitter::for_outputs(reader.outputs);
        source.run(&NodeContext::standalone("t").with_slice(slice), &mut out)?;
        let mut ports = out.into_buffers();
        // A reader without a `rejected` port rejects nothing.
        let rejected = match ports.len() {
            1 => Vec::new(),
            _ => ports.pop().unwrap(),
        };
        Ok((ports.pop().unwrap(), rejected))
    }

    /// What slices must keep of a feature: its attribute names, values and geometry, with
    /// their types (not its id, which each task numbers from 0).
    pub(crate) fn content(f: &Feature) -> String {
        format!(
            "{:?} {:?} {:?}",
            f.schema().names(),
            f.values(),
            f.geometry()
        )
    }

    /// Checks the contract of a sliced reader on `params`: for every count in `counts`,
    /// reading slices `0..count` one after the other gives exactly the whole read's
    /// `default` and `rejected` features, in order. Returns the whole read.
    pub(crate) fn assert_slices_make_the_whole(
        reader: &ActionSpec,
        params: serde_json::Value,
        counts: std::ops::RangeInclusive<u64>,
    ) -> (Vec<Feature>, Vec<Feature>) {
        let (ok, rejected) = read_slice(reader, params.clone(), sluice_runtime::Slice::WHOLE)
            .unwrap_or_else(|e| panic!("whole read of {params}: {e}"));
        let whole: (Vec<String>, Vec<String>) = (
            ok.iter().map(content).collect(),
            rejected.iter().map(content).collect(),
        );
        for n in counts {
            let mut joined = (Vec::new(), Vec::new());
            for i in 0..n {
                let slice = sluice_runtime::Slice::new(i, n).unwrap();
                let (ok, rejected) = read_slice(reader, params.clone(), slice)
                    .unwrap_or_else(|e| panic!("slice {slice} of {params}: {e}"));
                joined.0.extend(ok.iter().map(content));
                joined.1.extend(rejected.iter().map(content));
            }
            assert_eq!(joined.0, whole.0, "features of {n} slices of {params}");
            assert_eq!(joined.1, whole.1, "rejected of {n} slices of {params}");
        }
        (ok, rejected)
    }

    /// Reads `path` back with a reader (tests of the writers): its `default` and
    /// `rejected` features, through the executor with the node contract checked.
    pub(crate) fn read_back(reader: &ActionSpec, path: &str) -> (Vec<Feature>, Vec<Feature>) {
        let out = sluice_runtime::testing::run_source(reader, serde_json::json!({ "path": path }))
            .unwrap_or_else(|e| panic!("reading {path} back with {}: {e}", reader.name));
        (out.port("default").to_vec(), out.port("rejected").to_vec())
    }
}
