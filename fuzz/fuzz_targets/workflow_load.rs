//! The workflow loader on arbitrary bytes, against the real action registry: it must not
//! panic, and every error must point at a line and column of the input.
#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use sluice_runtime::workflow::{self, VarSources};
use sluice_runtime::{Registry, Severity};

static REGISTRY: LazyLock<Registry> = LazyLock::new(sluice_actions::registry);

fuzz_target!(|data: &[u8]| {
    let source = String::from_utf8_lossy(data);
    let diagnostics = match workflow::load("fuzz.yaml", &source, &REGISTRY, &VarSources::default())
    {
        Ok(plan) => plan.warnings,
        Err(e) => e.diagnostics,
    };
    // YAML breaks lines at LF, CR and CR LF.
    let lines = source.replace("\r\n", "\n").split(['\n', '\r']).count();
    for d in diagnostics {
        assert!(!d.message.is_empty());
        if d.severity == Severity::Error {
            assert!(
                d.line >= 1 && d.column >= 1 && d.line <= lines + 1,
                "diagnostic without a location: {d}"
            );
        }
    }
});
