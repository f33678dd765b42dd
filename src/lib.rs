//! sluice facade.
pub use sluice_runtime as runtime;
