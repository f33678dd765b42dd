//! Variables: values from `--var k=v`, then `SLUICE_VAR_k`, then the declared default; and
//! `${name}` substitution in parameters.
//!
//! Only a string that names a variable changes: a variable never leaks into a parameter that
//! did not ask for it. A string that is exactly `${name}` takes the variable's type (so
//! `limit: ${n}` with `n=5` gives the integer 5); inside a longer string the value is spliced
//! in as text. `$${` writes a literal `${`.

use std::collections::{BTreeMap, BTreeSet};

use super::diag::{DiagExt, Diags, did_you_mean, nearest};
use super::model::VarDecl;
use super::yaml::{Kind, Node};

/// Where variable values come from, strongest first.
#[derive(Debug, Clone, Default)]
pub struct VarSources {
    /// `--var k=v` values.
    pub cli: BTreeMap<String, String>,
    /// The environment (`SLUICE_VAR_k`): read by [`VarSources::with_env`].
    pub env: BTreeMap<String, String>,
}

impl VarSources {
    /// Command-line values only.
    pub fn new(cli: BTreeMap<String, String>) -> VarSources {
        VarSources {
            cli,
            env: BTreeMap::new(),
        }
    }

    /// Adds every `SLUICE_VAR_*` environment variable.
    pub fn with_env(mut self) -> VarSources {
        for (k, v) in std::env::vars() {
            if let Some(name) = k.strip_prefix("SLUICE_VAR_") {
                self.env.insert(name.to_string(), v);
            }
        }
        self
    }
}

/// Resolves every declared variable; reports undeclared `--var` names and missing values.
pub(crate) fn resolve(
    decls: &[VarDecl],
    src: &VarSources,
    d: &mut Diags,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for v in decls {
        let value = src
            .cli
            .get(&v.name)
            .or_else(|| src.env.get(&v.name))
            .or(v.default.as_ref());
        match value {
            Some(val) => {
                out.insert(v.name.clone(), val.clone());
            }
            None => {
                d.error(v.pos, format!("variable \"{}\" has no value", v.name))
                    .help(format!(
                        "pass --var {}=VALUE or set SLUICE_VAR_{}",
                        v.name, v.name
                    ));
            }
        }
    }
    for k in src.cli.keys() {
        if !decls.iter().any(|v| &v.name == k) {
            let names: Vec<&str> = decls.iter().map(|v| v.name.as_str()).collect();
            let diag = d.error(
                Default::default(),
                format!("--var {k}: the workflow declares no variable \"{k}\""),
            );
            if let Some(h) = did_you_mean(&nearest(k, names)) {
                diag.help(h);
            }
        }
    }
    out
}

/// Substitutes `${name}` in every string of `node`, in place; records used names.
pub(crate) fn substitute(
    node: &mut Node,
    values: &BTreeMap<String, String>,
    declared: &[VarDecl],
    used: &mut BTreeSet<String>,
    node_id: &str,
    d: &mut Diags,
) {
    match &mut node.kind {
        Kind::Str(s) => {
            if !s.contains('$') {
                return;
            }
            match splice(s, values, declared, used) {
                Ok(Spliced::Whole(v)) => node.kind = typed(&v),
                Ok(Spliced::Text(t)) => *s = t,
                Err(name) => {
                    let names: Vec<&str> = declared.iter().map(|v| v.name.as_str()).collect();
                    let declared_but_unset = declared.iter().any(|v| v.name == name);
                    if declared_but_unset {
                        return; // already reported by resolve()
                    }
                    let diag = d
                        .error(node.pos, format!("undeclared variable \"{name}\""))
                        .node(node_id);
                    match did_you_mean(&nearest(&name, names)) {
                        Some(h) => diag.help(h),
                        None => diag.help(format!(
                            "declare it under \"variables:\" (e.g. {name}: default)"
                        )),
                    };
                }
            }
        }
        Kind::Seq(items) => {
            for i in items {
                substitute(i, values, declared, used, node_id, d);
            }
        }
        Kind::Map(entries) => {
            for (_, _, v) in entries {
                substitute(v, values, declared, used, node_id, d);
            }
        }
        _ => {}
    }
}

enum Spliced {
    Whole(String),
    Text(String),
}

fn splice(
    s: &str,
    values: &BTreeMap<String, String>,
    declared: &[VarDecl],
    used: &mut BTreeSet<String>,
) -> Result<Spliced, String> {
    let trimmed = s.trim();
    if let Some(name) = trimmed.strip_prefix("${").and_then(|r| r.strip_suffix('}'))
        && !name.contains('}')
        && !name.contains('$')
    {
        {
            let name = name.trim();
            used.insert(name.to_string());
            return match values.get(name) {
                Some(v) => Ok(Spliced::Whole(v.clone())),
                None => Err(name.to_string()),
            };
        }
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i..];
        if let Some(r) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = r;
        } else if let Some(r) = after.strip_prefix("${") {
            let Some(end) = r.find('}') else {
                out.push_str(after);
                rest = "";
                break;
            };
            let name = r[..end].trim();
            used.insert(name.to_string());
            match values.get(name) {
                Some(v) => out.push_str(v),
                None => {
                    let _ = declared;
                    return Err(name.to_string());
                }
            }
            rest = &r[end + 1..];
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    Ok(Spliced::Text(out))
}

fn typed(v: &str) -> Kind {
    if let Ok(i) = v.parse::<i64>() {
        Kind::Int(i)
    } else if let Ok(f) = v.parse::<f64>() {
        Kind::Float(f)
    } else if v == "true" || v == "false" {
        Kind::Bool(v == "true")
    } else {
        Kind::Str(v.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vals() -> BTreeMap<String, String> {
        [
            ("n".to_string(), "5".to_string()),
            ("city".into(), "Oslo".into()),
        ]
        .into()
    }

    #[test]
    fn whole_reference_is_typed_and_partial_is_text() {
        let mut used = BTreeSet::new();
        match splice("${n}", &vals(), &[], &mut used).unwrap() {
            Spliced::Whole(v) => assert_eq!(typed(&v), Kind::Int(5)),
            Spliced::Text(_) => panic!("expected a whole reference"),
        }
        match splice("name == '${city}' && $${x} $5", &vals(), &[], &mut used).unwrap() {
            Spliced::Text(t) => assert_eq!(t, "name == 'Oslo' && ${x} $5"),
            Spliced::Whole(_) => panic!("expected text"),
        }
        assert_eq!(used.len(), 2);
        assert!(matches!(splice("${nope}", &vals(), &[], &mut used), Err(n) if n == "nope"));
    }
}
