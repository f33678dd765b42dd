//! Each `tests/invalid/<case>.yaml` is a broken workflow; `<case>.expected` holds the exact
//! diagnostics `sluice validate` must print (one per line, with file:line:column, node and
//! parameter). `SLUICE_BLESS=1 cargo test invalid` rewrites the expected files.
//!
//! Paths resolve against this folder, as `sluice validate tests/invalid/<case>.yaml` would:
//! `in.csv` (a header and five rows with the attributes the cases use) exists, so a case
//! reading it is about its own problem. The diagnostics name the case by its bare file
//! name, and a resolved path under this folder is shown as `$DIR/...`, so the expected
//! files do not depend on where the repository is.

use sluice::runtime::workflow::{self, LoadOptions, VarSources};

use crate::util::{bless, root};

#[test]
fn invalid_workflows_report_exact_diagnostics() {
    let dir = root().join("tests/invalid");
    let registry = sluice::actions::registry();
    let options = LoadOptions::relative_to(&dir);
    let shown_dir = format!("{}/", options.base_dir.as_ref().unwrap().display());
    let mut cases: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml" || e == "json"))
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 60,
        "need at least 60 broken workflows, found {}",
        cases.len()
    );
    for case in cases {
        let name = case.file_name().unwrap().to_string_lossy().to_string();
        let src = std::fs::read_to_string(&case).unwrap();
        // `# --var name=value` lines set command-line variables, as `sluice validate` would.
        let mut cli: std::collections::BTreeMap<String, String> = src
            .lines()
            .filter_map(|l| l.strip_prefix("# --var ")?.split_once('='))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        if src.contains("# cli-var") {
            cli.insert("declared_but_unused_cli".to_string(), "x".to_string());
        }
        let vars = VarSources::new(cli);
        let got = match workflow::load_with(&name, &src, &registry, &vars, &options) {
            Ok(_) => panic!("{name} should be invalid"),
            Err(e) => e
                .diagnostics
                .iter()
                .map(|d| format!("{d}\n"))
                .collect::<String>()
                .replace(&shown_dir, "$DIR/"),
        };
        let expected_path = case.with_extension("expected");
        if bless() {
            std::fs::write(&expected_path, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&expected_path)
            .unwrap_or_else(|_| panic!("missing {}", expected_path.display()));
        crate::eqnice!(want, got, name);
    }
}
