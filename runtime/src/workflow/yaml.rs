//! The one YAML parse module: text → a tree of values that remember where they came from.
//!
//! The parser is `saphyr` (pure Rust, YAML 1.2, so JSON parses too); nothing else in sluice
//! names it. Every node carries its 1-based line and column, so any later check can point at
//! the exact place in the file.

use saphyr::{LoadableYamlNode, MarkedYaml, Scalar, YamlData};

/// A position in the workflow file (1-based line and column).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub column: usize,
}

/// A located YAML value.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// Where the value starts.
    pub pos: Pos,
    /// The value.
    pub kind: Kind,
}

/// The shape of a located YAML value.
#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    /// `null`, `~` or empty.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string (quoted or plain).
    Str(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in file order; keys are strings (other scalar keys are turned into text).
    Map(Vec<(String, Pos, Node)>),
}

/// A YAML syntax error.
#[derive(Debug, Clone, PartialEq)]
pub struct SyntaxError {
    /// Where.
    pub pos: Pos,
    /// What.
    pub message: String,
}

/// Hostile-input limits: a workflow is a small document.
const MAX_SOURCE_BYTES: usize = 16 * 1024 * 1024;
const MAX_DEPTH: usize = 128;

/// Parses one YAML (or JSON) document.
pub fn parse(source: &str) -> Result<Node, SyntaxError> {
    if source.len() > MAX_SOURCE_BYTES {
        return Err(SyntaxError {
            pos: Pos { line: 1, column: 1 },
            message: format!("workflow is larger than {MAX_SOURCE_BYTES} bytes"),
        });
    }
    let docs = MarkedYaml::load_from_str(source).map_err(|e| SyntaxError {
        pos: Pos {
            line: e.marker().line(),
            column: e.marker().col() + 1,
        },
        message: format!("invalid YAML: {}", e.info()),
    })?;
    match docs.len() {
        0 => Ok(Node {
            pos: Pos { line: 1, column: 1 },
            kind: Kind::Null,
        }),
        1 => convert(&docs[0], 0),
        _ => Err(SyntaxError {
            pos: pos_of(&docs[1]),
            message: "a workflow file holds one YAML document, found several".into(),
        }),
    }
}

fn pos_of(y: &MarkedYaml) -> Pos {
    Pos {
        line: y.span.start.line(),
        column: y.span.start.col() + 1,
    }
}

fn convert(y: &MarkedYaml, depth: usize) -> Result<Node, SyntaxError> {
    let pos = pos_of(y);
    if depth > MAX_DEPTH {
        return Err(SyntaxError {
            pos,
            message: format!("nesting deeper than {MAX_DEPTH} levels"),
        });
    }
    let kind = match &y.data {
        YamlData::Value(s) => scalar(s),
        YamlData::Representation(text, _, _) => Kind::Str(text.to_string()),
        YamlData::Sequence(items) => Kind::Seq(
            items
                .iter()
                .map(|i| convert(i, depth + 1))
                .collect::<Result<_, _>>()?,
        ),
        YamlData::Mapping(map) => {
            let mut out = Vec::with_capacity(map.len());
            for (k, v) in map.iter() {
                let key = match &k.data {
                    YamlData::Value(s) => match scalar(s) {
                        Kind::Str(s) => s,
                        Kind::Int(i) => i.to_string(),
                        Kind::Float(f) => f.to_string(),
                        Kind::Bool(b) => b.to_string(),
                        _ => "null".to_string(),
                    },
                    YamlData::Representation(text, _, _) => text.to_string(),
                    _ => {
                        return Err(SyntaxError {
                            pos: pos_of(k),
                            message: "mapping keys must be plain strings".into(),
                        });
                    }
                };
                out.push((key, pos_of(k), convert(v, depth + 1)?));
            }
            Kind::Map(out)
        }
        YamlData::Tagged(tag, _) if !tag.is_yaml_core_schema() => {
            return Err(SyntaxError {
                pos,
                message: format!(
                    "unknown YAML tag \"{}{}\": a workflow uses no tags (to reuse nodes, \
                     use a subgraph; to vary a value, a variable)",
                    tag.handle, tag.suffix
                ),
            });
        }
        YamlData::Tagged(_, inner) => {
            // The tagged value may come unmarked (line 0): it starts where its tag does.
            let mut node = convert(inner, depth + 1)?;
            if node.pos.line == 0 {
                node.pos = pos;
            }
            return Ok(node);
        }
        YamlData::Alias(_) => {
            return Err(SyntaxError {
                pos,
                message: "YAML aliases are not supported in workflows".into(),
            });
        }
        YamlData::BadValue => {
            return Err(SyntaxError {
                pos,
                message: "invalid YAML value".into(),
            });
        }
    };
    Ok(Node { pos, kind })
}

fn scalar(s: &Scalar) -> Kind {
    match s {
        Scalar::Null => Kind::Null,
        Scalar::Boolean(b) => Kind::Bool(*b),
        Scalar::Integer(i) => Kind::Int(*i),
        Scalar::FloatingPoint(f) => Kind::Float(f.into_inner()),
        Scalar::String(s) => Kind::Str(s.to_string()),
    }
}

impl Node {
    /// The value under `key`, for mappings.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.kind {
            Kind::Map(m) => m.iter().find(|(k, _, _)| k == key).map(|(_, _, v)| v),
            _ => None,
        }
    }

    /// The position of `key` itself, for mappings.
    pub fn key_pos(&self, key: &str) -> Option<Pos> {
        match &self.kind {
            Kind::Map(m) => m.iter().find(|(k, _, _)| k == key).map(|(_, p, _)| *p),
            _ => None,
        }
    }

    /// The string, for string scalars.
    pub fn as_str(&self) -> Option<&str> {
        match &self.kind {
            Kind::Str(s) => Some(s),
            _ => None,
        }
    }

    /// A short name of the value's type, for messages.
    pub fn type_name(&self) -> &'static str {
        match self.kind {
            Kind::Null => "null",
            Kind::Bool(_) => "a boolean",
            Kind::Int(_) => "an integer",
            Kind::Float(_) => "a number",
            Kind::Str(_) => "a string",
            Kind::Seq(_) => "a list",
            Kind::Map(_) => "a mapping",
        }
    }

    /// Converts to JSON (positions are dropped).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.kind {
            Kind::Null => J::Null,
            Kind::Bool(b) => J::Bool(*b),
            Kind::Int(i) => J::from(*i),
            Kind::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            Kind::Str(s) => J::String(s.clone()),
            Kind::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            Kind::Map(m) => J::Object(m.iter().map(|(k, _, v)| (k.clone(), v.to_json())).collect()),
        }
    }

    /// Finds the position of a parameter path such as `by[0].attribute` inside this value:
    /// the deepest node the path reaches (and, when `key` is given and found in that mapping,
    /// the key itself).
    pub fn locate(&self, path: &str, key: Option<&str>) -> Pos {
        let node = self.deepest(path).0;
        key.and_then(|k| node.key_pos(k)).unwrap_or(node.pos)
    }

    /// The value at a parameter path such as `by[0].attribute`, if the path reaches one.
    pub fn find(&self, path: &str) -> Option<&Node> {
        match self.deepest(path) {
            (node, true) => Some(node),
            _ => None,
        }
    }

    /// The deepest value a path reaches, and whether it reached the end.
    fn deepest(&self, path: &str) -> (&Node, bool) {
        let mut node = self;
        for seg in split_path(path) {
            let next = match (&node.kind, seg) {
                (Kind::Map(_), Segment::Key(k)) => node.get(k),
                (Kind::Seq(items), Segment::Index(i)) => items.get(i),
                _ => None,
            };
            match next {
                Some(n) => node = n,
                None => return (node, false),
            }
        }
        (node, true)
    }
}

enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

fn split_path(path: &str) -> Vec<Segment<'_>> {
    let mut out = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (name, rest) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !name.is_empty() {
            out.push(Segment::Key(name));
        }
        for idx in rest.split('[').filter(|s| !s.is_empty()) {
            if let Ok(i) = idx.trim_end_matches(']').parse() {
                out.push(Segment::Index(i));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based() {
        let n = parse("a: 1\nb:\n  - x: 'hi'\n").unwrap();
        assert_eq!(n.get("a").unwrap().pos, Pos { line: 1, column: 4 });
        assert_eq!(n.locate("b[0].x", None), Pos { line: 3, column: 8 });
        assert_eq!(n.locate("b[0]", Some("x")), Pos { line: 3, column: 5 });
    }

    #[test]
    fn json_parses_too() {
        let n = parse(r#"{"a": [1, 2.5, "s", true, null]}"#).unwrap();
        assert_eq!(
            n.to_json(),
            serde_json::json!({"a": [1, 2.5, "s", true, null]})
        );
    }

    #[test]
    fn syntax_error_is_located() {
        let e = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(e.pos.line >= 1);
        assert!(e.message.starts_with("invalid YAML"));
        assert!(
            parse("a: 1\na: 2\n").is_err(),
            "duplicate keys are an error"
        );
    }

    #[test]
    fn an_unknown_tag_is_an_error_a_core_tag_is_not() {
        let e = parse("a: 1\nb: !include other.yaml\n").unwrap_err();
        assert_eq!(e.pos, Pos { line: 2, column: 4 });
        assert!(
            e.message.starts_with("unknown YAML tag \"!include\""),
            "{}",
            e.message
        );
        let n = parse("a: !!str 500\n").unwrap();
        assert_eq!(n.get("a").unwrap().kind, Kind::Str("500".into()));
    }

    #[test]
    fn quoted_numbers_stay_strings() {
        let n = parse("a: '500'\nb: 500\n").unwrap();
        assert_eq!(n.get("a").unwrap().kind, Kind::Str("500".into()));
        assert_eq!(n.get("b").unwrap().kind, Kind::Int(500));
    }
}
