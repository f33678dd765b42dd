//! Expressions: the small, sandboxed language of filter conditions and computed attributes.
//!
//! An [`Expr`] is compiled once per node; an [`Evaluator`] (one per batch) evaluates it per
//! feature. Evaluation reads the feature's attributes in place: attribute names are resolved to
//! schema positions once per schema, and comparisons borrow strings instead of copying them,
//! so a typical filter costs a few nanoseconds and allocates nothing. The language has no
//! loops, no I/O and no variables; sources are limited to 8 KiB and 64 levels of nesting, so
//! the work per feature is bounded by the size of the expression.
//!
//! ```
//! use sluice_runtime::expr::Expr;
//! use sluice_runtime::{Feature, Value};
//!
//! let expr = Expr::compile(r#"value > 500.0 && category == "park""#).unwrap();
//! assert_eq!(expr.attributes(), ["value", "category"]);
//! let f = Feature::from_pairs(1, [("value", Value::Float(612.5)), ("category", "park".into())]);
//! let mut ev = expr.evaluator();
//! assert!(ev.eval_bool(&f).unwrap());
//! ```
//!
//! # Grammar
//!
//! In EBNF; whitespace (space, tab, newline) may appear between tokens. Keywords are lowercase
//! and cannot be used as bare attribute names (quote them: `` `in` ``).
//!
//! ```text
//! expression = or ;
//! or         = and , { ( "||" | "or" ) , and } ;
//! and        = not , { ( "&&" | "and" ) , not } ;
//! not        = ( "!" | "not" ) , not
//!            | comparison ;
//! comparison = sum , [ ( "==" | "!=" | "<" | "<=" | ">" | ">=" | "in" ) , sum ] ;
//! sum        = product , { ( "+" | "-" ) , product } ;
//! product    = unary , { ( "*" | "/" | "%" ) , unary } ;
//! unary      = "-" , unary
//!            | primary ;
//! primary    = literal | attribute | call | list | "(" , expression , ")" ;
//! call       = identifier , "(" , [ expression , { "," , expression } ] , ")" ;
//! list       = "[" , [ expression , { "," , expression } ] , "]" ;
//! attribute  = identifier
//!            | "`" , { character - "`" | escape } , "`" ;
//! literal    = integer | float | string | "true" | "false" | "null" ;
//! identifier = ( letter | "_" ) , { letter | digit | "_" } ;   (* ASCII, not a keyword *)
//! keyword    = "true" | "false" | "null" | "and" | "or" | "not" | "in" ;
//! integer    = digit , { digit } ;                              (* fits an i64 *)
//! float      = digit , { digit } , ( "." , digit , { digit } , [ exponent ] | exponent ) ;
//! exponent   = ( "e" | "E" ) , [ "+" | "-" ] , digit , { digit } ;
//! string     = '"' , { character - '"' | escape } , '"'
//!            | "'" , { character - "'" | escape } , "'" ;
//! escape     = "\" , ( '"' | "'" | "`" | "\" | "n" | "t" | "r" ) ;
//! ```
//!
//! # Operators
//!
//! From lowest to highest precedence:
//!
//! | Operators | Kind | Operands → result |
//! |---|---|---|
//! | `\|\|`, `or` | left-assoc., short-circuit | bool/null → bool/null |
//! | `&&`, `and` | left-assoc., short-circuit | bool/null → bool/null |
//! | `!`, `not` | prefix | bool/null → bool/null |
//! | `==` `!=` `<` `<=` `>` `>=` `in` | non-associative (`a < b < c` is an error) | any → bool/null |
//! | `+` `-` | left-assoc. | numbers → number; `+` also joins two strings |
//! | `*` `/` `%` | left-assoc. | numbers → number |
//! | `-` | prefix | number → number |
//!
//! A negation inside a comparison needs parentheses: `a == (not b)`.
//!
//! # Semantics
//!
//! - **Numbers.** `int op int` gives an int for `+ - * %` (overflow is an error); `/` always
//!   gives a float. An int with a float gives a float. Division or remainder by zero (int or
//!   float) is an error. `%` takes the sign of the dividend.
//! - **Strings.** `+` joins two strings; a string plus anything else is an error (use
//!   `concat`, which converts).
//! - **Comparisons.** Numbers compare numerically (an int is converted to a float to meet a
//!   float, exact up to 2^53); strings by code point; bools with `false < true`; dates and
//!   datetimes among themselves (a date is its midnight UTC); byte strings bytewise. Arrays
//!   and maps support only `==` and `!=` (structural). A NaN equals nothing and orders with
//!   nothing. Values of types that do not compare are unequal (`==` false, `!=` true), and
//!   ordering them is an error naming both types.
//! - **Null.** Arithmetic, ordering comparisons and most functions give null when an operand
//!   is null. `==` and `!=` do not: `null == null` is true, `null == 1` is false.
//! - **Logic** is three-valued and short-circuit: `false && x` is false and `true || x` true
//!   without evaluating `x`; otherwise `&&` gives false if an operand is false, else null if
//!   one is null, else true (and `||` dually); `!null` is null. Operands must be bool or null
//!   (anything else is an error when reached).
//! - **`x in list`**: true when `x == item` for some item. The list is a list literal or an
//!   expression giving an array. A null `x` or a null list gives null.
//! - **Attributes** that the feature lacks are null (not an error).
//! - [`Evaluator::eval_bool`] treats a null result as false; any other non-bool result is an
//!   error.
//! - Constant subexpressions (`500 * 2`) are computed once when compiling. A constant
//!   subexpression that fails (`1 / 0`) is kept, and fails only if evaluation reaches it.
//!
//! # Functions
//!
//! Arity is checked when compiling. Unless stated, a null argument gives null, and an
//! argument of the wrong type is an error.
//!
//! | Function | Result |
//! |---|---|
//! | `is_null(x)` | whether `x` is null (never null) |
//! | `coalesce(a, b, ...)` | the first non-null argument, or null; later arguments are not evaluated |
//! | `if(cond, a, b)` | `a` when `cond` is true, else `b` (null counts as false); only one branch is evaluated |
//! | `len(x)` | characters of a string, items of an array or map, bytes of a byte string |
//! | `lower(s)`, `upper(s)`, `trim(s)` | the string in lower / upper case, without surrounding whitespace |
//! | `contains(s, sub)`, `starts_with(s, p)`, `ends_with(s, p)` | bool |
//! | `concat(a, ...)` | the arguments' text forms joined; nulls are skipped (never null) |
//! | `substr(s, start)`, `substr(s, start, len)` | characters from `start` (0-based; negative counts from the end), at most `len` of them; out of range gives a shorter or empty string; a negative `len` is an error |
//! | `abs(x)` | absolute value (int stays int) |
//! | `round(x)`, `round(x, digits)` | rounded half away from zero to `digits` decimals (negative: tens, hundreds, ...); an int stays an int, a float a float |
//! | `floor(x)`, `ceil(x)` | rounded down / up; an int stays an int, a float a float |
//! | `sqrt(x)` | float; negative `x` is an error |
//! | `min(a, ...)`, `max(a, ...)` | the smallest / largest argument under the comparison rules (arguments that do not order, such as a string and an int, are an error); nulls are skipped; null if all are null |
//! | `to_int(x)` | int from a number (truncated toward zero; out of range is an error), bool (0/1) or string (trimmed; null if it is not a number) |
//! | `to_float(x)` | float from a number, bool or string (trimmed; null if it is not a number) |
//! | `to_string(x)` | the text form: floats as `1.0`, dates as `2024-05-01`, datetimes as `2024-05-01T10:00:00Z` |
//! | `to_date(x)` | date from a string (`YYYY-MM-DD`, or a datetime whose UTC date is taken; null if unparsable), a date or a datetime |
//! | `to_datetime(x)` | datetime from a string (RFC 3339, `YYYY-MM-DD HH:MM:SS[.f]` as UTC, or a date at midnight; null if unparsable), a date or a datetime |
//! | `year(d)`, `month(d)`, `day(d)` | int parts of a date or datetime (UTC) |
//! | `has_geometry()` | whether the feature has a geometry |
//! | `geometry_type()` | `"Point"`, `"LineString"`, `"Polygon"`, `"MultiPoint"`, `"MultiLineString"`, `"MultiPolygon"`, `"GeometryCollection"`, `"Line"`, `"Rect"` or `"Triangle"`; null without a geometry |
//!
//! # Static types
//!
//! [`Expr::check`] finds, before anything runs, what would fail (or be always true or false)
//! on every feature, given the attribute types validation knows ([`TypeEnv`]): `'abc' * 2`,
//! `value > 'abc'` with a float `value`, `category in 'park'`, `upper(id)` with an integer
//! `id`, an unknown attribute (with a "did you mean"). Unknown types ([`Type::Any`]) pass
//! silently. [`Expr::check_condition`] also requires a bool result (a filter).
//! [`Expr::compile_all`] reports every unknown function and wrong argument count at once.
//!
//! # Modules
//!
//! The modules depend in one direction; each uses only those before it:
//!
//! 1. `error`: [`ExprError`] and [`EvalError`];
//! 2. `lexer`: source text to tokens;
//! 3. `types` and `catalog`: static types, and the built-in functions' names, signatures
//!    and help;
//! 4. `parser`: tokens to a syntax tree (with byte offsets), calls checked against the catalog;
//! 5. `val`: a value during evaluation, borrowing where it can;
//! 6. `eval`: the compiled tree (`Node`s) and its evaluation; a call node carries the code
//!    of its function, so evaluation does not depend on the bodies;
//! 7. `functions`: the built-in functions' bodies, which evaluate their arguments through
//!    `eval`;
//! 8. `compile`: syntax tree to compiled tree (slots, constant folding, specialised nodes),
//!    binding each call to its body in `functions`;
//! 9. this module: [`Expr`] and [`Evaluator`], the public face; `types` adds
//!    [`Expr::check`].
//!
//! # Errors
//!
//! [`ExprError`] (compile time) carries the byte offset of the problem and renders as
//! `{message} at column {offset + 1}`. [`EvalError`] (per feature) carries a message only;
//! the caller adds the node and feature.

mod catalog;
mod compile;
mod error;
mod eval;
mod functions;
mod lexer;
mod parser;
mod types;
mod val;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod type_tests;

use std::fmt;
use std::sync::Arc;

use crate::feature::{Feature, Schema, Value};
pub use catalog::{FunctionDoc, function, functions, nearest_functions};
pub use error::{EvalError, ExprError};
use eval::{Ctx, Node};
pub use types::{Type, TypeEnv, TypeProblem};

/// Longest accepted source, in bytes.
pub(crate) const MAX_SOURCE_LEN: usize = 8 * 1024;

/// A compiled expression. Cheap to clone (shared); see the [module docs](self) for the
/// language.
#[derive(Clone)]
pub struct Expr {
    inner: Arc<Inner>,
}

struct Inner {
    source: String,
    attrs: Vec<Box<str>>,
    /// The syntax tree, kept for [`Expr::check`].
    ast: parser::Ast,
    root: Node,
}

impl fmt::Debug for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Expr")
            .field("source", &self.inner.source)
            .field("compiled", &self.inner.root)
            .finish()
    }
}

impl Expr {
    /// Parses and compiles `src`.
    ///
    /// Fails on a syntax error, an unknown function (with the nearest name as a suggestion),
    /// a wrong number of arguments, a source longer than 8 KiB or nesting deeper than 64.
    pub fn compile(src: &str) -> Result<Expr, ExprError> {
        Expr::compile_all(src).map_err(|mut errors| errors.swap_remove(0))
    }

    /// As [`Expr::compile`], but reports every unknown function and wrong argument count in
    /// the expression, in source order, not only the first. A syntax error still stops
    /// parsing: it comes last. The list is never empty.
    pub fn compile_all(src: &str) -> Result<Expr, Vec<ExprError>> {
        if src.len() > MAX_SOURCE_LEN {
            return Err(vec![ExprError::new(
                format!("expression is longer than {MAX_SOURCE_LEN} bytes"),
                MAX_SOURCE_LEN,
            )]);
        }
        let ast = parser::parse(src)?;
        let mut attrs = Vec::new();
        let root = compile::compile(ast.clone(), &mut attrs);
        Ok(Expr {
            inner: Arc::new(Inner {
                source: src.to_owned(),
                attrs,
                ast,
                root,
            }),
        })
    }

    /// The source text.
    pub fn source(&self) -> &str {
        &self.inner.source
    }

    /// The attribute names the source references, deduplicated, in order of appearance.
    pub fn attributes(&self) -> Vec<&str> {
        self.inner.attrs.iter().map(|a| &**a).collect()
    }

    /// An evaluator; make one per batch (it is cheap) and reuse it for the batch's features.
    pub fn evaluator(&self) -> Evaluator<'_> {
        Evaluator {
            expr: self,
            schema: None,
            slots: Vec::new(),
        }
    }

    /// Whether the expression folded to a constant (it reads no attribute and no geometry).
    pub fn is_constant(&self) -> bool {
        matches!(self.inner.root, Node::Const(_))
    }
}

/// Evaluates an [`Expr`] on features.
///
/// It maps the expression's attributes to positions in the feature's schema and keeps that
/// mapping while features share the same `Arc<Schema>` (checked by pointer); a feature with
/// another schema triggers a new mapping.
#[derive(Debug)]
pub struct Evaluator<'e> {
    expr: &'e Expr,
    /// The schema `slots` were computed for (held, so its address cannot be reused).
    schema: Option<Arc<Schema>>,
    /// Schema position of each attribute; `u32::MAX` when the schema lacks it.
    slots: Vec<u32>,
}

impl Evaluator<'_> {
    /// Evaluates the expression on `f`.
    #[inline]
    pub fn eval(&mut self, f: &Feature) -> Result<Value, EvalError> {
        self.bind(f.schema());
        let cx = Ctx {
            values: f.values(),
            slots: &self.slots,
            feature: f,
        };
        eval::eval_value(&self.expr.inner.root, &cx)
    }

    /// Evaluates the expression on `f` as a condition: null is false, and a result that is
    /// not a bool is an error.
    #[inline]
    pub fn eval_bool(&mut self, f: &Feature) -> Result<bool, EvalError> {
        self.bind(f.schema());
        let cx = Ctx {
            values: f.values(),
            slots: &self.slots,
            feature: f,
        };
        match eval::tri(&self.expr.inner.root, &cx) {
            Ok(b) => Ok(b == Some(true)),
            Err(e) => Err(*e),
        }
    }

    #[inline(always)]
    fn bind(&mut self, schema: &Arc<Schema>) {
        match &self.schema {
            Some(s) if Arc::ptr_eq(s, schema) => {}
            _ => self.rebind(schema),
        }
    }

    #[cold]
    #[inline(never)]
    fn rebind(&mut self, schema: &Arc<Schema>) {
        self.slots.clear();
        self.slots.extend(self.expr.inner.attrs.iter().map(|name| {
            schema
                .index_of(name)
                .and_then(|i| u32::try_from(i).ok())
                .unwrap_or(u32::MAX)
        }));
        self.schema = Some(schema.clone());
    }
}
