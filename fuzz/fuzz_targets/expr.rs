//! The expression compiler and evaluator on arbitrary text: no panic, a compile error points
//! inside the source, and a compiled expression evaluates on awkward features without panic
//! (the check is `sluice_runtime::testing::fuzz::check_expression`, shared with the property
//! tests).
#![no_main]

use libfuzzer_sys::fuzz_target;
use sluice_runtime::testing::fuzz::check_expression;

fuzz_target!(|data: &[u8]| {
    if let Err(problem) = check_expression(&String::from_utf8_lossy(data)) {
        panic!("{problem}");
    }
});
