//! Checking a node's `with:` block against its action's JSON Schema, in the workflow's words.
//!
//! An action reads its parameters with serde, which stops at the first problem and speaks
//! Rust ("invalid type: string \"ten\", expected u64"). When that happens, validation walks the
//! located YAML value against the schema the action publishes ([`crate::ActionSpec::schema`]
//! — the same one `sluice schema` gives editors) and reports **every** problem, each at the
//! value itself, with its parameter path, as `must be a whole number ≥ 1, got the string
//! "ten"`. A tagged choice (`op: set`, `mode: first`) is checked against the variant its tag
//! picks, so a wrong key inside it is named rather than "no variant matched".
//!
//! The walker covers the keywords the actions' schemas use: `$ref` into `$defs`, `type`,
//! `const`, `enum`, `oneOf`/`anyOf`, `properties`, `required`, `additionalProperties`,
//! `items`, `minItems`/`maxItems`, `minLength`/`maxLength`, `minimum`/`maximum` and the
//! integer `format`s. It only ever explains a failure the action itself found: when it finds
//! nothing, the action's own message is reported instead.

use serde_json::Value as J;

use super::diag::{did_you_mean, nearest};
use super::yaml::{Kind, Node, Pos};

/// One problem in a parameter block.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Problem {
    /// The parameter path (`operations[2].attribute`), empty for the block itself.
    pub path: String,
    /// Where: the value, or the unknown key, or the mapping missing a key.
    pub pos: Pos,
    /// What is wrong.
    pub message: String,
    /// A hint.
    pub help: Option<String>,
}

/// Every problem of `with` against `schema` (a JSON Schema with its `$defs` at the root).
pub(crate) fn check(schema: &J, with: &Node) -> Vec<Problem> {
    let mut w = Walker {
        root: schema,
        out: Vec::new(),
    };
    w.walk(schema, with, "", 0);
    w.out
}

/// `$ref` chains and nesting are bounded so a hostile schema cannot loop.
const MAX_DEPTH: usize = 64;

struct Walker<'s> {
    root: &'s J,
    out: Vec<Problem>,
}

impl<'s> Walker<'s> {
    fn problem(&mut self, path: &str, pos: Pos, message: String, help: Option<String>) {
        self.out.push(Problem {
            path: path.to_string(),
            pos,
            message,
            help,
        });
    }

    /// Follows `$ref`s into the root's `$defs`.
    fn resolve(&self, mut s: &'s J) -> &'s J {
        for _ in 0..MAX_DEPTH {
            let Some(r) = s.get("$ref").and_then(J::as_str) else {
                return s;
            };
            let Some(target) = r
                .strip_prefix("#/$defs/")
                .and_then(|name| self.root.get("$defs")?.get(name))
            else {
                return s;
            };
            s = target;
        }
        s
    }

    fn walk(&mut self, s: &'s J, node: &Node, path: &str, depth: usize) {
        if depth > MAX_DEPTH {
            return;
        }
        let s = self.resolve(s);
        match s {
            J::Bool(true) => return,
            J::Bool(false) => {
                self.problem(path, node.pos, "is not allowed here".into(), None);
                return;
            }
            _ => {}
        }
        let alternatives = s
            .get("oneOf")
            .or_else(|| s.get("anyOf"))
            .and_then(J::as_array);
        if let Some(alts) = alternatives {
            self.walk_choice(alts, node, path, depth);
            return;
        }
        if !self.type_matches(s, node) {
            let expected = self.expectation(s);
            self.problem(
                path,
                node.pos,
                format!("must be {expected}, got {}", describe(node)),
                None,
            );
            return;
        }
        if let Some(c) = s.get("const")
            && !same(c, node)
        {
            self.problem(
                path,
                node.pos,
                format!("must be {}, got {}", show_json(c), describe(node)),
                None,
            );
            return;
        }
        if let Some(values) = s.get("enum").and_then(J::as_array)
            && !values.iter().any(|v| same(v, node))
        {
            self.not_one_of(values.iter().collect(), node, path);
            return;
        }
        match &node.kind {
            Kind::Int(i) => self.check_number(s, *i as f64, node, path),
            Kind::Float(f) => self.check_number(s, *f, node, path),
            Kind::Str(text) => self.check_string(s, text, node, path),
            Kind::Seq(items) => self.check_list(s, items, node, path, depth),
            Kind::Map(entries) => self.check_map(s, entries, node, path, depth),
            Kind::Null | Kind::Bool(_) => {}
        }
    }

    /// `oneOf`/`anyOf`: a tagged choice follows its tag; otherwise the value must fit one.
    fn walk_choice(&mut self, alts: &'s [J], node: &Node, path: &str, depth: usize) {
        let alts: Vec<&'s J> = alts.iter().map(|a| self.resolve(a)).collect();
        // `Option<T>` is `anyOf: [T, null]`: a non-null value is checked against T alone.
        let non_null: Vec<&'s J> = alts
            .iter()
            .copied()
            .filter(|a| a.get("type").and_then(J::as_str) != Some("null"))
            .collect();
        if matches!(node.kind, Kind::Null) && non_null.len() < alts.len() {
            return;
        }
        if non_null.len() == 1 {
            self.walk(non_null[0], node, path, depth + 1);
            return;
        }
        // A choice of constants is an enumeration.
        if non_null.iter().all(|a| a.get("const").is_some()) {
            let values: Vec<&J> = non_null.iter().filter_map(|a| a.get("const")).collect();
            if !values.iter().any(|v| same(v, node)) {
                self.not_one_of(values, node, path);
            }
            return;
        }
        if let Some(tag) = super::schema::choice_tag(&non_null)
            && let Kind::Map(_) = node.kind
        {
            self.walk_tagged(&non_null, tag, node, path, depth);
            return;
        }
        // Untagged: the value must fit one alternative; explain the one of its shape.
        let mut fitting_shape = Vec::new();
        for alt in &non_null {
            let mut sub = Walker {
                root: self.root,
                out: Vec::new(),
            };
            sub.walk(alt, node, path, depth + 1);
            if sub.out.is_empty() {
                return;
            }
            if self.type_matches(alt, node) {
                fitting_shape.push(sub.out);
            }
        }
        if fitting_shape.len() == 1 {
            self.out.extend(fitting_shape.remove(0));
            return;
        }
        let expected: Vec<String> = non_null.iter().map(|a| self.expectation(a)).collect();
        self.problem(
            path,
            node.pos,
            format!("must be {}, got {}", join_or(&expected), describe(node)),
            None,
        );
    }

    fn walk_tagged(&mut self, alts: &[&'s J], tag: &str, node: &Node, path: &str, depth: usize) {
        let tags: Vec<&J> = alts
            .iter()
            .filter_map(|a| a.get("properties")?.get(tag)?.get("const"))
            .collect();
        let tag_path = join_path(path, tag);
        match node.get(tag) {
            None => {
                let list = tags.iter().map(|t| show_json(t)).collect::<Vec<_>>();
                self.problem(
                    &tag_path,
                    node.pos,
                    format!("missing parameter \"{tag}\""),
                    Some(format!("it is one of {}", list.join(", "))),
                );
            }
            Some(value) => match alts.iter().find(|a| {
                a.get("properties")
                    .and_then(|p| p.get(tag))
                    .and_then(|t| t.get("const"))
                    .is_some_and(|c| same(c, value))
            }) {
                Some(alt) => self.walk(alt, node, path, depth + 1),
                None => self.not_one_of(tags, value, &tag_path),
            },
        }
    }

    fn not_one_of(&mut self, values: Vec<&J>, node: &Node, path: &str) {
        let shown: Vec<String> = values.iter().map(|v| show_json(v)).collect();
        let help = match node.as_str() {
            Some(s) => did_you_mean(&nearest(s, values.iter().filter_map(|v| v.as_str()))),
            None => None,
        };
        self.problem(
            path,
            node.pos,
            format!(
                "must be one of {}, got {}",
                shown.join(", "),
                describe(node)
            ),
            help,
        );
    }

    fn type_matches(&self, s: &J, node: &Node) -> bool {
        let s = self.resolve(s);
        let types: Vec<&str> = match s.get("type") {
            Some(J::String(t)) => vec![t.as_str()],
            Some(J::Array(ts)) => ts.iter().filter_map(J::as_str).collect(),
            _ => return true,
        };
        types.iter().any(|t| match (*t, &node.kind) {
            ("null", Kind::Null) => true,
            ("boolean", Kind::Bool(_)) => true,
            ("integer", Kind::Int(_)) => true,
            ("number", Kind::Int(_)) => true,
            ("number", Kind::Float(f)) => f.is_finite(),
            ("string", Kind::Str(_)) => true,
            ("array", Kind::Seq(_)) => true,
            ("object", Kind::Map(_)) => true,
            _ => false,
        })
    }

    /// What a schema accepts, in words: "a whole number ≥ 1", "a list of strings".
    fn expectation(&self, s: &J) -> String {
        let s = self.resolve(s);
        if let Some(c) = s.get("const") {
            return show_json(c);
        }
        if let Some(values) = s.get("enum").and_then(J::as_array) {
            let shown: Vec<String> = values.iter().map(show_json).collect();
            return format!("one of {}", shown.join(", "));
        }
        if let Some(alts) = s
            .get("oneOf")
            .or_else(|| s.get("anyOf"))
            .and_then(J::as_array)
        {
            let words: Vec<String> = alts.iter().map(|a| self.expectation(a)).collect();
            return join_or(&words);
        }
        let types: Vec<&str> = match s.get("type") {
            Some(J::String(t)) => vec![t.as_str()],
            Some(J::Array(ts)) => ts.iter().filter_map(J::as_str).collect(),
            _ => return "a value".into(),
        };
        let words: Vec<String> = types
            .iter()
            .filter(|t| **t != "null" || types.len() == 1)
            .map(|t| match *t {
                "integer" => format!("a whole number{}", bounds(s, true)),
                "number" => format!("a number{}", bounds(s, false)),
                "string" => match (
                    s.get("minLength").and_then(J::as_u64),
                    s.get("maxLength").and_then(J::as_u64),
                ) {
                    (Some(1), Some(1)) => "a single character".into(),
                    (Some(n), _) if n > 0 => "a non-empty string".into(),
                    _ => "a string".into(),
                },
                "boolean" => "true or false".into(),
                "array" => match s.get("items").map(|i| self.expectation(i)) {
                    Some(item) if item != "a value" => format!("a list of {}", plural(&item)),
                    _ => "a list".into(),
                },
                "object" => "a mapping".into(),
                "null" => "null".into(),
                other => other.to_string(),
            })
            .collect();
        join_or(&words)
    }

    fn check_number(&mut self, s: &J, x: f64, node: &Node, path: &str) {
        let (min, max) = limits(s);
        let out_of_range = min.is_some_and(|m| x < m) || max.is_some_and(|m| x > m);
        if out_of_range {
            let expected = self.expectation(s);
            self.problem(
                path,
                node.pos,
                format!("must be {expected}, got {}", describe(node)),
                None,
            );
        }
    }

    fn check_string(&mut self, s: &J, text: &str, node: &Node, path: &str) {
        let chars = text.chars().count() as u64;
        let min = s.get("minLength").and_then(J::as_u64);
        let max = s.get("maxLength").and_then(J::as_u64);
        if min.is_some_and(|m| chars < m) || max.is_some_and(|m| chars > m) {
            let expected = self.expectation(s);
            self.problem(
                path,
                node.pos,
                format!("must be {expected}, got {}", describe(node)),
                None,
            );
        }
    }

    fn check_list(&mut self, s: &'s J, items: &[Node], node: &Node, path: &str, depth: usize) {
        let min = s.get("minItems").and_then(J::as_u64);
        let max = s.get("maxItems").and_then(J::as_u64);
        let n = items.len() as u64;
        if let Some(m) = min
            && n < m
        {
            let what = if m == 1 {
                "at least one item".to_string()
            } else {
                format!("at least {m} items")
            };
            self.problem(path, node.pos, format!("must have {what}"), None);
        }
        if let Some(m) = max
            && n > m
        {
            self.problem(
                path,
                node.pos,
                format!("must have at most {m} items, got {n}"),
                None,
            );
        }
        if let Some(item) = s.get("items") {
            for (i, it) in items.iter().enumerate() {
                self.walk(item, it, &format!("{path}[{i}]"), depth + 1);
            }
        }
    }

    fn check_map(
        &mut self,
        s: &'s J,
        entries: &[(String, Pos, Node)],
        node: &Node,
        path: &str,
        depth: usize,
    ) {
        let props = s.get("properties").and_then(J::as_object);
        let known: Vec<&str> = props
            .map(|p| p.keys().map(String::as_str).collect())
            .unwrap_or_default();
        // A misspelt required key (`atribute`) is one problem, reported as the unknown key
        // with its hint, not again as a missing one.
        let misspelt: Vec<&str> = entries
            .iter()
            .filter(|(k, _, _)| !known.contains(&k.as_str()))
            .filter_map(|(k, _, _)| nearest(k, known.iter().copied()).first().copied())
            .collect();
        if let Some(required) = s.get("required").and_then(J::as_array) {
            for key in required.iter().filter_map(J::as_str) {
                if !entries.iter().any(|(k, _, _)| k == key) && !misspelt.contains(&key) {
                    self.problem(
                        &join_path(path, key),
                        node.pos,
                        format!("missing parameter \"{key}\""),
                        None,
                    );
                }
            }
        }
        let extra = s.get("additionalProperties");
        for (key, key_pos, value) in entries {
            let child = join_path(path, key);
            if let Some(p) = props.and_then(|p| p.get(key)) {
                self.walk(p, value, &child, depth + 1);
                continue;
            }
            match extra {
                Some(J::Bool(false)) => {
                    let help = did_you_mean(&nearest(key, known.iter().copied())).or_else(|| {
                        (!known.is_empty()).then(|| format!("its parameters: {}", known.join(", ")))
                    });
                    self.problem(
                        &child,
                        *key_pos,
                        format!("unknown parameter \"{key}\""),
                        help,
                    );
                }
                Some(extra @ J::Object(_)) => self.walk(extra, value, &child, depth + 1),
                _ => {}
            }
        }
    }
}

/// The numeric bounds a schema sets, with the integer `format`s' ranges.
fn limits(s: &J) -> (Option<f64>, Option<f64>) {
    let mut min = s.get("minimum").and_then(J::as_f64);
    let mut max = s.get("maximum").and_then(J::as_f64);
    let range = match s.get("format").and_then(J::as_str) {
        Some("uint8") => Some((0.0, u8::MAX as f64)),
        Some("uint16") => Some((0.0, u16::MAX as f64)),
        Some("uint32") => Some((0.0, u32::MAX as f64)),
        Some("uint64" | "uint") => Some((0.0, u64::MAX as f64)),
        Some("int8") => Some((i8::MIN as f64, i8::MAX as f64)),
        Some("int16") => Some((i16::MIN as f64, i16::MAX as f64)),
        Some("int32") => Some((i32::MIN as f64, i32::MAX as f64)),
        _ => None,
    };
    if let Some((lo, hi)) = range {
        min = Some(min.map_or(lo, |m| m.max(lo)));
        if hi < i64::MAX as f64 {
            max = Some(max.map_or(hi, |m| m.min(hi)));
        }
    }
    (min, max)
}

/// " ≥ 1", " from 0 to 255", or "" for an integer or number schema.
fn bounds(s: &J, integer: bool) -> String {
    let show = |x: f64| {
        if integer || x.fract() == 0.0 {
            format!("{}", x as i64)
        } else {
            format!("{x}")
        }
    };
    match limits(s) {
        (Some(lo), Some(hi)) => format!(" from {} to {}", show(lo), show(hi)),
        (Some(lo), None) => format!(" ≥ {}", show(lo)),
        (None, Some(hi)) => format!(" ≤ {}", show(hi)),
        (None, None) => String::new(),
    }
}

/// "a string" → "strings", for "a list of strings".
fn plural(item: &str) -> String {
    let bare = item
        .strip_prefix("a ")
        .or_else(|| item.strip_prefix("an "))
        .unwrap_or(item);
    if bare.contains(' ') || bare.ends_with('s') || bare.starts_with('"') {
        format!("items that are {item}")
    } else {
        format!("{bare}s")
    }
}

fn join_or(words: &[String]) -> String {
    let mut words: Vec<&String> = words.iter().collect();
    words.dedup();
    match words.as_slice() {
        [] => "a value".into(),
        [one] => (*one).clone(),
        [rest @ .., last] => format!(
            "{} or {last}",
            rest.iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

fn join_path(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_string()
    } else {
        format!("{path}.{key}")
    }
}

/// Whether a located value equals a JSON constant.
fn same(c: &J, node: &Node) -> bool {
    match (c, &node.kind) {
        (J::String(a), Kind::Str(b)) => a == b,
        (J::Bool(a), Kind::Bool(b)) => a == b,
        (J::Number(a), Kind::Int(b)) => a.as_i64() == Some(*b),
        (J::Number(a), Kind::Float(b)) => a.as_f64() == Some(*b),
        (J::Null, Kind::Null) => true,
        _ => false,
    }
}

fn show_json(v: &J) -> String {
    match v {
        J::String(s) => format!("\"{s}\""),
        other => other.to_string(),
    }
}

/// The value as the author wrote it: `the string "ten"`, `-3`, `1.5`, `.nan`, `a list`.
pub(crate) fn describe(node: &Node) -> String {
    match &node.kind {
        Kind::Null => "null".into(),
        Kind::Bool(b) => b.to_string(),
        Kind::Int(i) => i.to_string(),
        Kind::Float(f) if f.is_nan() => ".nan (not a number)".into(),
        Kind::Float(f) if f.is_infinite() => if *f > 0.0 { ".inf" } else { "-.inf" }.into(),
        Kind::Float(f) => format!("{f:?}"),
        Kind::Str(s) => {
            const MAX: usize = 40;
            if s.chars().count() > MAX {
                let cut: String = s.chars().take(MAX).collect();
                format!("the string \"{cut}…\"")
            } else {
                format!("the string \"{s}\"")
            }
        }
        Kind::Seq(_) => "a list".into(),
        Kind::Map(_) => "a mapping".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workflow::yaml::parse;
    use serde_json::json;

    fn problems(schema: J, yaml: &str) -> Vec<String> {
        let node = parse(yaml).unwrap();
        check(&schema, &node)
            .into_iter()
            .map(|p| {
                let help = p.help.map(|h| format!("; {h}")).unwrap_or_default();
                format!(
                    "{}:{} {}: {}{help}",
                    p.pos.line, p.pos.column, p.path, p.message
                )
            })
            .collect()
    }

    fn count_schema() -> J {
        json!({
            "type": "object",
            "properties": {
                "count": { "type": "integer", "format": "uint64", "minimum": 1 },
                "ratio": { "type": ["number", "null"] },
                "delimiter": { "type": "string", "minLength": 1, "maxLength": 1 },
                "by": { "type": "array", "items": { "type": "string" }, "minItems": 1 }
            },
            "required": ["count"],
            "additionalProperties": false
        })
    }

    #[test]
    fn a_wrong_type_is_named_at_the_value_in_plain_words() {
        assert_eq!(
            problems(count_schema(), "count: \"ten\"\n"),
            ["1:8 count: must be a whole number ≥ 1, got the string \"ten\""]
        );
        assert_eq!(
            problems(count_schema(), "count: -3\n"),
            ["1:8 count: must be a whole number ≥ 1, got -3"]
        );
        assert_eq!(
            problems(count_schema(), "count: 1.5\n"),
            ["1:8 count: must be a whole number ≥ 1, got 1.5"]
        );
        assert_eq!(
            problems(count_schema(), "count: 1e23\n"),
            ["1:8 count: must be a whole number ≥ 1, got 1e23"]
        );
        assert_eq!(
            problems(count_schema(), "count: 2\nratio: .nan\n"),
            ["2:8 ratio: must be a number, got .nan (not a number)"]
        );
    }

    #[test]
    fn every_problem_is_reported_not_only_the_first() {
        let got = problems(
            count_schema(),
            "count: x\ndelimiter: ';;'\nby: []\nordr: 1\n",
        );
        assert_eq!(
            got,
            [
                "1:8 count: must be a whole number ≥ 1, got the string \"x\"",
                "2:12 delimiter: must be a single character, got the string \";;\"",
                "3:5 by: must have at least one item",
                "4:1 ordr: unknown parameter \"ordr\"; its parameters: count, ratio, delimiter, by",
            ]
        );
        assert_eq!(
            problems(count_schema(), "ratio: 1\n"),
            ["1:1 count: missing parameter \"count\""]
        );
        assert_eq!(
            problems(count_schema(), "count: 1\ncout: 2\n"),
            ["2:1 cout: unknown parameter \"cout\"; did you mean \"count\"?"]
        );
    }

    #[test]
    fn a_tagged_choice_is_checked_against_the_variant_its_tag_picks() {
        let schema = json!({
            "type": "object",
            "properties": { "operations": { "type": "array", "items": { "$ref": "#/$defs/Op" } } },
            "$defs": { "Op": { "oneOf": [
                { "type": "object", "properties": {
                    "op": { "type": "string", "const": "set" },
                    "attribute": { "type": "string" },
                    "expression": { "type": "string" } },
                  "required": ["op", "attribute", "expression"], "additionalProperties": false },
                { "type": "object", "properties": {
                    "op": { "type": "string", "const": "rename" },
                    "from": { "type": "string" }, "to": { "type": "string" } },
                  "required": ["op", "from", "to"], "additionalProperties": false }
            ] } }
        });
        let yaml = "operations:\n  - { op: set, attribute: a }\n  - { op: renam, from: a, to: b }\n  - { op: rename, from: a, too: b }\n  - { attribute: a }\n";
        assert_eq!(
            problems(schema, yaml),
            [
                "2:5 operations[0].expression: missing parameter \"expression\"",
                "3:11 operations[1].op: must be one of \"set\", \"rename\", got the string \"renam\"; did you mean \"rename\"?",
                "4:28 operations[2].too: unknown parameter \"too\"; did you mean \"to\"?",
                "5:5 operations[3].op: missing parameter \"op\"; it is one of \"set\", \"rename\"",
            ]
        );
    }

    #[test]
    fn options_constants_and_untagged_choices() {
        let schema = json!({
            "type": "object",
            "properties": {
                "kind": { "oneOf": [ { "const": "int" }, { "const": "float" } ] },
                "crs": { "anyOf": [ { "type": "integer", "format": "uint32", "minimum": 0 }, { "type": "null" } ] },
                "inputs": { "oneOf": [ { "type": "string" }, { "type": "array", "items": { "type": "string" } } ] }
            }
        });
        assert!(problems(schema.clone(), "kind: int\ncrs: ~\ninputs: [a]\n").is_empty());
        assert_eq!(
            problems(schema.clone(), "kind: flot\n"),
            [
                "1:7 kind: must be one of \"int\", \"float\", got the string \"flot\"; did you mean \"float\"?"
            ]
        );
        assert_eq!(
            problems(schema.clone(), "crs: 5000000000\n"),
            ["1:6 crs: must be a whole number from 0 to 4294967295, got 5000000000"]
        );
        assert_eq!(
            problems(schema.clone(), "inputs: [a, 3]\n"),
            ["1:13 inputs[1]: must be a string, got 3"]
        );
        assert_eq!(
            problems(schema, "inputs: true\n"),
            ["1:9 inputs: must be a string or a list of strings, got true"]
        );
    }
}
