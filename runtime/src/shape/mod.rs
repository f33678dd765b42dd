//! Static schemas: which attributes, of which types, the features on each port carry, known
//! at validate time, before anything runs.
//!
//! A [`Shape`] describes one port: its attributes in order with their [`Type`]s, whether
//! more attributes may appear (`open`), and what is known of the geometry. Every value may
//! also be null; nullability is not tracked.
//!
//! An [`ActionSpec`](crate::ActionSpec) may carry a [`ShapeFn`] (`.shape(fn)`): given the
//! node's parameters and the shapes reaching its input ports, it gives the shape of each
//! output port, and checks the attribute names and expressions in its parameters against its
//! inputs through the [`ShapeContext`]. Validation walks the plan in topological order:
//!
//! ```text
//!  csv_reader ──{id: int, name: string, value: float}──► filter ──(same)──► sort ──► ...
//!    header + first rows           `value > 500` checked: bool      `by: [name]` checked
//! ```
//!
//! The rules:
//!
//! - A source gives what it can know before reading: a CSV header and the types the reader
//!   infers from the first rows, a Parquet file's schema, declared columns. When nothing can
//!   be known (a JSON file without declared columns), the shape is *unread*: open, with no
//!   attribute, and naming the source, so validation can say where the unknown comes from.
//! - An action without a shape function gives [`Shape::unknown`] on every output: open and
//!   untyped. Nothing downstream of it is reported, so a missing function never causes a
//!   false error; it only stops checking.
//! - Several edges into one port merge ([`Shape::merge`]): the attributes of both sides (an
//!   attribute only one side has is null on the other), a type the sides disagree on
//!   becomes a float (int with float) or [`Type::Any`], open if either side is.
//! - An unknown attribute name is an error only when the shape is closed: then the nearest
//!   known names are suggested.

mod infer;

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use serde::de::DeserializeOwned;

use crate::error::{ActionError, did_you_mean, nearest};
pub use crate::expr::Type;
use crate::expr::{Expr, TypeEnv};
use crate::feature::Feature;
pub(crate) use infer::infer_nodes;
pub use infer::{NodeShapes, infer};

/// What is known about the geometry of the features on a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GeometryShape {
    /// Not known before run time.
    #[default]
    Unknown,
    /// The features carry no geometry.
    Absent,
    /// The features may carry a geometry, in this CRS when known.
    Present {
        /// The EPSG code, when known.
        crs: Option<u32>,
    },
}

impl GeometryShape {
    /// The common knowledge of two ports merged into one.
    pub fn merge(self, other: GeometryShape) -> GeometryShape {
        use GeometryShape::*;
        match (self, other) {
            (a, b) if a == b => a,
            (Absent, p @ Present { .. }) | (p @ Present { .. }, Absent) => match p {
                Present { crs } => Present { crs },
                _ => Unknown,
            },
            (Present { .. }, Present { .. }) => Present { crs: None },
            _ => Unknown,
        }
    }
}

/// The static schema of one port: attributes in order, with types.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Shape {
    /// Known attributes and their types, in the order features carry them.
    pub attributes: Vec<(String, Type)>,
    /// More attributes than those listed may appear; an unlisted name is then of type
    /// [`Type::Any`], not an error.
    pub open: bool,
    /// What is known about the geometry.
    pub geometry: GeometryShape,
    /// The source node whose schema cannot be known before it reads its input, when that
    /// is why this shape is open. Validation warns at that node when something downstream
    /// relies on attribute names it cannot check.
    pub unread: Option<Arc<str>>,
}

impl Shape {
    /// Nothing known: open, no attribute listed, geometry unknown.
    pub fn unknown() -> Shape {
        Shape {
            attributes: Vec::new(),
            open: true,
            geometry: GeometryShape::Unknown,
            unread: None,
        }
    }

    /// The shape of a source that cannot know its attributes before reading (`node`).
    pub fn unread(node: &str) -> Shape {
        Shape {
            unread: Some(node.into()),
            ..Shape::unknown()
        }
    }

    /// Exactly these attributes, no geometry.
    pub fn closed<S: Into<String>>(attributes: impl IntoIterator<Item = (S, Type)>) -> Shape {
        Shape {
            attributes: attributes.into_iter().map(|(n, t)| (n.into(), t)).collect(),
            open: false,
            geometry: GeometryShape::Absent,
            unread: None,
        }
    }

    /// The same shape with `geometry`.
    pub fn with_geometry(mut self, geometry: GeometryShape) -> Shape {
        self.geometry = geometry;
        self
    }

    /// Whether nothing is known of the attributes (open, none listed).
    pub fn is_unknown(&self) -> bool {
        self.open && self.attributes.is_empty()
    }

    /// The type of an attribute: its listed type, [`Type::Any`] for an unlisted name on an
    /// open shape, `None` for an unlisted name on a closed one.
    pub fn get(&self, name: &str) -> Option<Type> {
        match self.attributes.iter().find(|(n, _)| n == name) {
            Some((_, t)) => Some(*t),
            None if self.open => Some(Type::Any),
            None => None,
        }
    }

    /// Whether `name` is listed.
    pub fn has(&self, name: &str) -> bool {
        self.attributes.iter().any(|(n, _)| n == name)
    }

    /// The listed attribute names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.attributes.iter().map(|(n, _)| n.as_str())
    }

    /// Sets an attribute's type, in place when it is listed, else appended (as setting an
    /// attribute on a feature does).
    pub fn set(&mut self, name: &str, ty: Type) {
        match self.attributes.iter_mut().find(|(n, _)| n == name) {
            Some((_, t)) => *t = ty,
            None => self.attributes.push((name.to_string(), ty)),
        }
    }

    /// Removes an attribute; returns its type when it was listed.
    pub fn remove(&mut self, name: &str) -> Option<Type> {
        let i = self.attributes.iter().position(|(n, _)| n == name)?;
        Some(self.attributes.remove(i).1)
    }

    /// The shape of the `rejected` port of an action that passes this shape's features on
    /// with the reason attached.
    pub fn rejected(&self) -> Shape {
        let mut s = self.clone();
        s.set(crate::REJECTION_REASON, Type::String);
        s
    }

    /// One port fed by two: attributes of both (the first side's order, then the second's
    /// new ones), types that differ widen (int with float: float; otherwise
    /// [`Type::Any`]), open when either is.
    pub fn merge(&self, other: &Shape) -> Shape {
        let mut out = self.clone();
        for (name, t) in &other.attributes {
            match out.attributes.iter_mut().find(|(n, _)| n == name) {
                Some((_, mine)) => *mine = widen(*mine, *t),
                None => out.attributes.push((name.clone(), *t)),
            }
        }
        out.open |= other.open;
        out.geometry = self.geometry.merge(other.geometry);
        if out.unread.is_none() {
            out.unread = other.unread.clone();
        }
        out
    }
}

impl Shape {
    /// The closed shape of some features as they are: every attribute any of them carries
    /// (in order of first appearance), typed by its non-null values ([`Type::Null`] when all
    /// are null), and their geometry. Tests compare it with the inferred shape.
    pub fn of_features(features: &[Feature]) -> Shape {
        let mut shape = Shape::closed(Vec::<(String, Type)>::new());
        let mut geometry: Option<GeometryShape> = None;
        for f in features {
            for (name, v) in f.attributes() {
                let t = Type::of(v);
                match shape.attributes.iter_mut().find(|(n, _)| n == name) {
                    Some((_, mine)) => *mine = widen(*mine, t),
                    None => shape.attributes.push((name.to_string(), t)),
                }
            }
            let g = match f.geometry() {
                Some(g) => GeometryShape::Present { crs: g.crs },
                None => GeometryShape::Absent,
            };
            geometry = Some(geometry.map_or(g, |before| before.merge(g)));
        }
        shape.geometry = geometry.unwrap_or(GeometryShape::Absent);
        shape
    }
}

/// The common type of two values that meet in one attribute.
pub fn widen(a: Type, b: Type) -> Type {
    match (a, b) {
        _ if a == b => a,
        (Type::Null, t) | (t, Type::Null) => t,
        (Type::Int, Type::Float) | (Type::Float, Type::Int) => Type::Float,
        _ => Type::Any,
    }
}

/// `{id: int, name: string, ...}` (with `...` when open), then the geometry when known.
impl fmt::Display for Shape {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{{")?;
        for (i, (n, t)) in self.attributes.iter().enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            write!(f, "{n}: {}", t.short_name())?;
        }
        if self.open {
            let sep = if self.attributes.is_empty() { "" } else { ", " };
            write!(f, "{sep}...")?;
        }
        write!(f, "}}")?;
        match self.geometry {
            GeometryShape::Unknown => Ok(()),
            GeometryShape::Absent => write!(f, " without geometry"),
            GeometryShape::Present { crs: None } => write!(f, " with geometry"),
            GeometryShape::Present { crs: Some(c) } => write!(f, " with geometry (EPSG:{c})"),
        }
    }
}

/// The schema function of an action: the shape of each output port (in the order of the
/// node's output ports; missing ones are [`Shape::unknown`]), or the parameter problems
/// found (several as [`ActionError::Many`]).
pub type ShapeFn = fn(&ShapeContext) -> Result<Vec<Shape>, ActionError>;

/// A problem a schema function found in a parameter, located inside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShapeProblem {
    /// The parameter path (`conditions[0].expression`).
    pub path: String,
    /// What is wrong, lowercase, no trailing period.
    pub message: String,
    /// For a problem inside an expression: the 0-based character offset in its source.
    pub offset: Option<usize>,
    /// A hint (`did you mean "name"?`).
    pub help: Option<String>,
}

/// What a [`ShapeFn`] gets: the node, its parameters, the shapes reaching its inputs, and
/// helpers that check attribute names and expressions against them, collecting problems.
pub struct ShapeContext<'a> {
    /// The node id.
    pub node_id: &'a str,
    /// The `with` block as JSON (variables substituted, paths resolved).
    pub params: &'a serde_json::Value,
    /// One shape per input port, in the spec's order.
    pub inputs: &'a [Shape],
    /// The node's output ports (the spec's, or the ones its factory returned).
    pub outputs: &'a [String],
    problems: RefCell<Vec<ShapeProblem>>,
    relied: RefCell<BTreeSet<Arc<str>>>,
}

impl<'a> ShapeContext<'a> {
    /// A context for one node.
    pub fn new(
        node_id: &'a str,
        params: &'a serde_json::Value,
        inputs: &'a [Shape],
        outputs: &'a [String],
    ) -> ShapeContext<'a> {
        ShapeContext {
            node_id,
            params,
            inputs,
            outputs,
            problems: RefCell::new(Vec::new()),
            relied: RefCell::new(BTreeSet::new()),
        }
    }

    /// Deserializes the parameters (the factory accepted them already).
    pub fn params<P: DeserializeOwned>(&self) -> Result<P, ActionError> {
        crate::action::BuildContext {
            node_id: self.node_id,
            params: self.params,
        }
        .params()
    }

    /// The shape on input port `i` ([`Shape::unknown`] when there is none).
    pub fn input(&self, i: usize) -> Shape {
        self.inputs.get(i).cloned().unwrap_or_else(Shape::unknown)
    }

    /// The same shape on every output port, with [`Shape::rejected`] on a `rejected` port.
    pub fn pass(&self, shape: Shape) -> Vec<Shape> {
        self.outputs
            .iter()
            .map(|p| {
                if p == crate::REJECTED_PORT {
                    shape.rejected()
                } else {
                    shape.clone()
                }
            })
            .collect()
    }

    /// Records a problem in parameter `path`.
    pub fn problem(&self, path: &str, message: impl Into<String>, help: Option<String>) {
        self.problems.borrow_mut().push(ShapeProblem {
            path: path.to_string(),
            message: message.into(),
            offset: None,
            help,
        });
    }

    /// The type of attribute `name`, read by parameter `path`, in `shape`. An unlisted
    /// name in a closed shape is a problem (with the nearest names as a hint) and gives
    /// `None`; in an open one it gives [`Type::Any`].
    pub fn attribute(&self, path: &str, name: &str, shape: &Shape) -> Option<Type> {
        if !shape.has(name) {
            self.rely_on(shape);
        }
        let t = shape.get(name);
        if t.is_none() {
            self.problem(
                path,
                format!("unknown attribute \"{name}\""),
                Some(attribute_hint(name, shape)),
            );
        }
        t
    }

    /// Checks an expression written in parameter `path` against `shape` and gives its type
    /// ([`Type::Any`] when unknown, or when the source does not compile: the factory
    /// reports that). Each problem is located at its character in the expression.
    pub fn expression(&self, path: &str, source: &str, shape: &Shape) -> Type {
        let Ok(expr) = Expr::compile(source) else {
            return Type::Any;
        };
        if expr.attributes().iter().any(|a| !shape.has(a)) {
            self.rely_on(shape);
        }
        let env = TypeEnv {
            attributes: &shape.attributes,
            open: shape.open,
        };
        match expr.check(&env) {
            Ok(t) => t,
            Err(problems) => {
                self.problems
                    .borrow_mut()
                    .extend(problems.into_iter().map(|p| ShapeProblem {
                        path: path.to_string(),
                        message: p.message,
                        offset: Some(p.offset),
                        help: p.help,
                    }));
                Type::Any
            }
        }
    }

    /// As [`ShapeContext::expression`], for a condition (`what` names it in messages, as
    /// `a filter condition`): it must give a bool.
    pub fn condition(&self, path: &str, source: &str, shape: &Shape, what: &str) {
        let t = self.expression(path, source, shape);
        if !matches!(t, Type::Bool | Type::Any | Type::Null) {
            self.problems.borrow_mut().push(ShapeProblem {
                path: path.to_string(),
                message: format!(
                    "{what} must be true or false; `{}` is {}",
                    source.trim(),
                    t.name()
                ),
                offset: None,
                help: Some("compare it, as in `value > 0`".into()),
            });
        }
    }

    fn rely_on(&self, shape: &Shape) {
        if let Some(node) = &shape.unread {
            self.relied.borrow_mut().insert(node.clone());
        }
    }

    /// The problems recorded, and the unread sources whose attribute names were relied on.
    pub fn finish(self) -> (Vec<ShapeProblem>, BTreeSet<Arc<str>>) {
        (self.problems.into_inner(), self.relied.into_inner())
    }
}

/// `did you mean "name"?`, or the attributes there are.
fn attribute_hint(name: &str, shape: &Shape) -> String {
    match did_you_mean(&nearest(name, shape.names())) {
        Some(h) => h,
        None if shape.attributes.is_empty() => "the features here have no attributes".into(),
        None => {
            let names: Vec<&str> = shape.names().collect();
            format!("the attributes here: {}", names.join(", "))
        }
    }
}

#[cfg(test)]
mod tests;
