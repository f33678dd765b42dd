//! The README's action table is generated from the registry; this test fails when it is
//! stale (`SLUICE_BLESS=1 cargo test readme` rewrites it).

use crate::util::{bless, root};

const START: &str =
    "<!-- actions:start (generated from the registry; SLUICE_BLESS=1 cargo test readme) -->\n";
const END: &str = "<!-- actions:end -->";

fn table() -> String {
    let mut s = String::from(
        "| action | kind | inputs | outputs | what it does |\n|---|---|---|---|---|\n",
    );
    for spec in sluice::actions::registry().specs() {
        let kind = format!("{:?}", spec.kind).to_lowercase();
        let outputs = if spec.dynamic_outputs {
            format!("{} (+ named by parameters)", spec.outputs.join(", "))
        } else {
            spec.outputs.join(", ")
        };
        let mut flags = Vec::new();
        if spec.accumulates {
            flags.push("accumulates");
        }
        if spec.heavy_finish {
            flags.push("heavy finish");
        }
        let flags = if flags.is_empty() {
            String::new()
        } else {
            format!(" _({})_", flags.join(", "))
        };
        s.push_str(&format!(
            "| `{}` | {} | {} | {} | {}{} |\n",
            spec.name,
            kind,
            spec.inputs.join(", "),
            outputs,
            spec.description.replace('|', "\\|"),
            flags
        ));
    }
    s
}

#[test]
fn readme_action_table_is_current() {
    let path = root().join("README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let start = readme
        .find(START)
        .expect("README has the actions:start marker")
        + START.len();
    let end = readme.find(END).expect("README has the actions:end marker");
    let want = table();
    if bless() {
        let updated = format!("{}{}{}", &readme[..start], want, &readme[end..]);
        std::fs::write(&path, updated).unwrap();
        return;
    }
    crate::eqnice!(want, readme[start..end].to_string(), "README action table");
}
