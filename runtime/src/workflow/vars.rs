//! Variables: values from `--var k=v`, then `SLUICE_VAR_k`, then the declared default; and
//! `${name}` substitution in parameters.
//!
//! Only a string that names a variable changes: a variable never leaks into a parameter that
//! did not ask for it. A string that is exactly `${name}` takes the variable's type (so
//! `limit: ${n}` with `n=5` gives the integer 5); inside a longer string the value is spliced
//! in as text. `$${` writes a literal `${`.
//!
//! # Variables in expressions
//!
//! A parameter named `expression` ([`EXPRESSION_KEY`], the name every action gives its
//! expression parameters) holds code, so a variable there is a **typed constant**, never
//! code: `${x}` becomes one literal token — an integer or float when the whole value parses
//! as a (finite) number, `true`/`false`, or else a string literal with every quote and
//! backslash escaped. So `value > ${threshold}` with `threshold=0 || true` compares `value`
//! with the string `"0 || true"` (a type error that rejects the feature), and cannot become
//! `value > 0 || true`. Inside a quoted string or a backtick attribute name of the
//! expression (`name == '${city}'`), the value is escaped for that quote and stays part of
//! the literal.

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

/// The parameter name that marks an expression: a string under this key is expression
/// source, and variables in it become typed constants (see the module documentation).
pub const EXPRESSION_KEY: &str = "expression";

/// Substitutes `${name}` in every string of `node`, in place; records used names.
pub(crate) fn substitute(
    node: &mut Node,
    values: &BTreeMap<String, String>,
    declared: &[VarDecl],
    used: &mut BTreeSet<String>,
    node_id: &str,
    d: &mut Diags,
) {
    substitute_in(node, false, values, declared, used, node_id, d);
}

fn substitute_in(
    node: &mut Node,
    expression: bool,
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
            let spliced = if expression {
                splice_expression(s, values, used).map(Spliced::Text)
            } else {
                splice(s, values, declared, used)
            };
            match spliced {
                Ok(Spliced::Whole(v)) => node.kind = typed(&v),
                Ok(Spliced::Text(t)) => *s = t,
                Err(Unresolved::Unclosed) => {
                    d.error(node.pos, "unclosed \"${\": a variable is written ${name}")
                        .node(node_id)
                        .help("write \"$${\" for a literal \"${\"");
                }
                Err(Unresolved::Undeclared(name)) => {
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
                substitute_in(i, expression, values, declared, used, node_id, d);
            }
        }
        Kind::Map(entries) => {
            for (k, _, v) in entries {
                let expression = k == EXPRESSION_KEY;
                substitute_in(v, expression, values, declared, used, node_id, d);
            }
        }
        _ => {}
    }
}

/// Records every variable a value mentions (`${name}`, not `$${`), whether or not its node
/// builds: a variable used only by a broken node is still used, and saying otherwise would
/// send the author after the wrong problem.
pub(crate) fn mentioned(node: &Node, used: &mut BTreeSet<String>) {
    match &node.kind {
        Kind::Str(s) => {
            let mut rest = s.as_str();
            while let Some(i) = rest.find('$') {
                let after = &rest[i..];
                if let Some(r) = after.strip_prefix("$${") {
                    rest = r;
                } else if let Some(r) = after.strip_prefix("${") {
                    match r.find('}') {
                        Some(end) => {
                            used.insert(r[..end].trim().to_string());
                            rest = &r[end + 1..];
                        }
                        None => {
                            // Unclosed (an error of its own): `${region.csv` meant `region`.
                            let name: String = r
                                .chars()
                                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '-')
                                .collect();
                            used.insert(name);
                            rest = "";
                        }
                    }
                } else {
                    rest = &after[1..];
                }
            }
        }
        Kind::Seq(items) => items.iter().for_each(|i| mentioned(i, used)),
        Kind::Map(entries) => entries.iter().for_each(|(_, _, v)| mentioned(v, used)),
        _ => {}
    }
}

enum Spliced {
    Whole(String),
    Text(String),
}

/// Why a string's variables could not be substituted.
#[derive(Debug)]
enum Unresolved {
    /// `${name}` names no variable with a value.
    Undeclared(String),
    /// `${` with no closing `}`.
    Unclosed,
}

fn splice(
    s: &str,
    values: &BTreeMap<String, String>,
    declared: &[VarDecl],
    used: &mut BTreeSet<String>,
) -> Result<Spliced, Unresolved> {
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
                None => Err(Unresolved::Undeclared(name.to_string())),
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
                return Err(Unresolved::Unclosed);
            };
            let name = r[..end].trim();
            used.insert(name.to_string());
            match values.get(name) {
                Some(v) => out.push_str(v),
                None => {
                    let _ = declared;
                    return Err(Unresolved::Undeclared(name.to_string()));
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

/// Substitutes the variables of an expression's source: a typed literal token in code, an
/// escaped piece of the literal inside a quoted string or attribute name. `Err` names an
/// unknown variable.
fn splice_expression(
    s: &str,
    values: &BTreeMap<String, String>,
    used: &mut BTreeSet<String>,
) -> Result<String, Unresolved> {
    let mut out = String::with_capacity(s.len());
    // The quote of the string (or backtick name) being read, if any.
    let mut quote: Option<char> = None;
    let mut rest = s;
    while let Some(c) = rest.chars().next() {
        if let Some(r) = rest.strip_prefix("$${") {
            out.push_str("${");
            rest = r;
            continue;
        }
        if let Some(r) = rest.strip_prefix("${") {
            let Some(end) = r.find('}') else {
                return Err(Unresolved::Unclosed);
            };
            let name = r[..end].trim();
            used.insert(name.to_string());
            let Some(v) = values.get(name) else {
                return Err(Unresolved::Undeclared(name.to_string()));
            };
            match quote {
                None => out.push_str(&literal_token(v)),
                Some(q) => escape_into(&mut out, v, q),
            }
            rest = &r[end + 1..];
            continue;
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
        match quote {
            None if matches!(c, '"' | '\'' | '`') => quote = Some(c),
            Some(_) if c == '\\' => {
                // An escape: the next character is part of the literal, whatever it is.
                if let Some(n) = rest.chars().next() {
                    out.push(n);
                    rest = &rest[n.len_utf8()..];
                }
            }
            Some(q) if c == q => quote = None,
            _ => {}
        }
    }
    Ok(out)
}

/// A variable's value as one expression token: a number, a bool, or a string literal.
fn literal_token(v: &str) -> String {
    let number = if let Ok(i) = v.parse::<i64>() {
        Some((i < 0, i.to_string()))
    } else if let Ok(f) = v.parse::<f64>()
        && f.is_finite()
    {
        // `{:?}` always has a `.` or an exponent (`5.0`, `1e20`), as the lexer wants.
        Some((f.is_sign_negative(), format!("{f:?}")))
    } else {
        None
    };
    match number {
        // Parenthesised so that `x - ${n}` with n = -5 stays `x - (-5)`.
        Some((true, n)) => format!("({n})"),
        Some((false, n)) => n,
        None if v == "true" || v == "false" => v.to_string(),
        None => {
            let mut s = String::with_capacity(v.len() + 2);
            s.push('"');
            escape_into(&mut s, v, '"');
            s.push('"');
            s
        }
    }
}

/// Appends `v` escaped for a literal quoted with `q` (`"`, `'` or a backtick).
fn escape_into(out: &mut String, v: &str, q: char) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c == q => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
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
        assert!(
            matches!(splice("${nope}", &vals(), &[], &mut used), Err(Unresolved::Undeclared(n)) if n == "nope")
        );
        assert!(matches!(
            splice("data/${region.csv", &vals(), &[], &mut used),
            Err(Unresolved::Unclosed)
        ));
    }

    fn expr_with(var: &str, src: &str) -> String {
        let values = [("x".to_string(), var.to_string())].into();
        splice_expression(src, &values, &mut BTreeSet::new()).unwrap()
    }

    #[test]
    fn in_an_expression_a_variable_is_one_literal_token() {
        assert_eq!(expr_with("500", "value > ${x}"), "value > 500");
        assert_eq!(expr_with("-5", "value - ${x}"), "value - (-5)");
        assert_eq!(expr_with("2.5", "value > ${x}"), "value > 2.5");
        assert_eq!(expr_with("1e20", "value > ${x}"), "value > 1e20");
        assert_eq!(expr_with("true", "${x} && a"), "true && a");
        assert_eq!(
            expr_with("0 || true", "value > ${x}"),
            r#"value > "0 || true""#
        );
        assert_eq!(expr_with("abc", "value > ${x}"), r#"value > "abc""#);
        assert_eq!(expr_with("NaN", "${x}"), r#""NaN""#);
        assert_eq!(expr_with(r#"a"b\c"#, "${x}"), r#""a\"b\\c""#);
        assert_eq!(expr_with("0 || true", "${x}"), r#""0 || true""#);
        // Inside a quoted string or attribute name the value is escaped, not a token.
        assert_eq!(expr_with("Oslo", "name == '${x}'"), "name == 'Oslo'");
        assert_eq!(expr_with("it's", "name == '${x}'"), r"name == 'it\'s'");
        assert_eq!(expr_with("a`b", "`${x}` > 1"), r"`a\`b` > 1");
        assert_eq!(
            expr_with("5", r#"n == "a\"${x}" && $${x}"#),
            r#"n == "a\"5" && ${x}"#
        );
        let values = BTreeMap::new();
        let unknown = splice_expression("a > ${nope}", &values, &mut BTreeSet::new());
        assert!(matches!(unknown, Err(Unresolved::Undeclared(n)) if n == "nope"));
        let unclosed = splice_expression("a > ${limit", &values, &mut BTreeSet::new());
        assert!(matches!(unclosed, Err(Unresolved::Unclosed)));
    }

    #[test]
    fn an_injected_variable_never_becomes_code() {
        use crate::expr::Expr;
        let f = crate::Feature::from_pairs(1, [("value", crate::Value::Int(-3))]);
        for hostile in [
            "0 || true",
            "0) || (true",
            "0 \" || true || \"",
            "' || true || '",
            "abc",
        ] {
            for src in ["value > ${x}", "value > '${x}'", "value > \"${x}\""] {
                let e = Expr::compile(&expr_with(hostile, src)).unwrap();
                assert_eq!(e.attributes(), ["value"], "{src} with {hostile}");
                // Never true: either a type error (string vs int) or a false comparison.
                assert!(
                    !e.evaluator().eval_bool(&f).unwrap_or(false),
                    "{src} with {hostile}"
                );
            }
        }
    }
}
