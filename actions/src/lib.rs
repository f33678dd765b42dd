//! # sluice-actions
//!
//! The action library: one file per action under [`sources`], [`processors`], [`geometry`] and [`sinks`],
//! listed in [`all`] and served by [`registry`]. The runtime knows none of them by name.
#![deny(clippy::print_stdout, clippy::print_stderr)]

pub mod crs;
mod geojson_geometry;
pub mod geometry;
pub mod processors;
pub mod sinks;
pub mod sources;

#[cfg(test)]
mod shape_checks;
mod wkt_geometry;

use sluice_runtime::{ActionSpec, Registry};

/// Every action of this crate: sources, processors, geometry processors, sinks.
pub fn all() -> Vec<ActionSpec> {
    let mut specs = sources::specs();
    specs.extend(processors::specs());
    specs.extend(geometry::specs());
    specs.extend(sinks::specs());
    specs
}

/// A registry holding every action of this crate.
pub fn registry() -> Registry {
    Registry::from_specs(all())
}
