//! The workflow loader on arbitrary bytes, against the real action registry: it must not
//! panic, and every error must point at a line and column of the input (the check is
//! `sluice_runtime::testing::fuzz::check_workflow`, shared with the property tests).
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use sluice_runtime::Registry;
use sluice_runtime::testing::fuzz::check_workflow;

static REGISTRY: LazyLock<Registry> = LazyLock::new(sluice_actions::registry);

fuzz_target!(|data: &[u8]| {
    if let Err(problem) = check_workflow(&String::from_utf8_lossy(data), &REGISTRY) {
        panic!("{problem}");
    }
});
