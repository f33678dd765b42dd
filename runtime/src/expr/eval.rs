//! The compiled form and its evaluation.
//!
//! A compiled expression is a tree of [`Node`]s whose attribute references are slots (indices
//! into [`Expr::attributes`](super::Expr::attributes)); an evaluator maps slots to schema
//! positions once per schema. Evaluation produces a [`Val`], which borrows strings and other
//! heap values from the feature or from the expression's constants, so a comparison never
//! allocates. Predicates go through [`tri`], which yields a three-valued boolean without
//! building a `Val` at all, and the common shapes (`attribute <op> number`,
//! `attribute == "text"`) have their own nodes.

use std::cmp::Ordering;
use std::sync::Arc;

use super::catalog::Func;
use super::error::EvalError;
use super::parser::{ArithOp, CmpOp};
use super::val::Val;
use crate::feature::{Feature, Value};

/// Internal result: the error is boxed so that results stay two words wide.
pub(crate) type R<T> = Result<T, Box<EvalError>>;

/// An evaluation error with `message`.
#[cold]
#[inline(never)]
pub(crate) fn fail<T>(message: String) -> R<T> {
    Err(Box::new(EvalError { message }))
}

static NULL: Value = Value::Null;

/// Microseconds in a day.
pub(crate) const DAY_US: i64 = 86_400_000_000;

/// A compiled expression node.
#[derive(Debug, Clone)]
pub(crate) enum Node {
    Const(Value),
    /// An attribute, by slot.
    Attr(u32),
    /// The feature's geometry (null when it has none).
    Geometry,
    /// A list literal with at least one non-constant item.
    List(Box<[Node]>),
    Not(Box<Node>),
    Neg(Box<Node>),
    And(Box<[Node]>),
    Or(Box<[Node]>),
    Cmp(CmpOp, Box<Node>, Box<Node>),
    /// `attribute <op> float constant`; `rev` when the source had the constant on the left
    /// (`op` is already flipped; `rev` only restores the operand order in error messages).
    AttrCmpFloat {
        slot: u32,
        op: CmpOp,
        k: f64,
        rev: bool,
    },
    /// `attribute <op> integer constant`, as [`Node::AttrCmpFloat`].
    AttrCmpInt {
        slot: u32,
        op: CmpOp,
        k: i64,
        rev: bool,
    },
    /// `attribute == "text"` (or `!=` when `ne`).
    AttrEqStr {
        slot: u32,
        k: Box<str>,
        ne: bool,
    },
    Arith(ArithOp, Box<Node>, Box<Node>),
    /// `attribute <op> numeric constant`, for arithmetic.
    AttrArithConst {
        slot: u32,
        op: ArithOp,
        k: Value,
    },
    /// `x in [constants]`.
    InConst(Box<Node>, Arc<[Value]>),
    /// `x in [items]` with some non-constant item.
    InList(Box<Node>, Box<[Node]>),
    /// `x in <expression giving an array>`.
    InExpr(Box<Node>, Box<Node>),
    /// A built-in function on its (unevaluated) arguments.
    Call(Builtin, Box<[Node]>),
}

/// Evaluates a built-in function on its argument nodes, evaluating them as it needs them.
pub(crate) type CallFn = for<'a> fn(Func, &'a [Node], &Ctx<'a>) -> R<Val<'a>>;

/// A built-in function and the code that evaluates it. The compiler binds the code
/// (`functions.rs`, which evaluates arguments through [`eval`]), so this module does not depend
/// on the function bodies.
#[derive(Clone, Copy)]
pub(crate) struct Builtin {
    pub func: Func,
    pub call: CallFn,
}

impl std::fmt::Debug for Builtin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.func.fmt(f)
    }
}

/// What evaluation sees: the feature, its values, and where each slot lives in them.
pub(crate) struct Ctx<'a> {
    pub values: &'a [Value],
    /// Schema position per slot; `u32::MAX` when the schema lacks the attribute.
    pub slots: &'a [u32],
    pub feature: &'a Feature,
}

impl<'a> Ctx<'a> {
    /// The value of an attribute slot (null when missing).
    #[inline(always)]
    fn attr(&self, slot: u32) -> &'a Value {
        match self.slots.get(slot as usize) {
            Some(&i) => self.values.get(i as usize).unwrap_or(&NULL),
            None => &NULL,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Comparison
// ---------------------------------------------------------------------------------------------

/// How two values relate.
enum Rel {
    /// Ordered types (`None`: a NaN is involved).
    Ord(Option<Ordering>),
    /// Types with equality only (arrays, maps): whether equal.
    Eq(bool),
    /// At least one null: whether both are.
    Null(bool),
    /// Types that do not compare.
    Incompatible,
}

fn relate(a: &Val, b: &Val) -> Rel {
    use Val as V;
    match (a, b) {
        (V::Null, V::Null) => Rel::Null(true),
        (V::Null, _) | (_, V::Null) => Rel::Null(false),
        (V::Int(x), V::Int(y)) => Rel::Ord(Some(x.cmp(y))),
        (V::Int(x), V::Float(y)) => Rel::Ord((*x as f64).partial_cmp(y)),
        (V::Float(x), V::Int(y)) => Rel::Ord(x.partial_cmp(&(*y as f64))),
        (V::Float(x), V::Float(y)) => Rel::Ord(x.partial_cmp(y)),
        (V::Bool(x), V::Bool(y)) => Rel::Ord(Some(x.cmp(y))),
        (V::Date(x), V::Date(y)) => Rel::Ord(Some(x.cmp(y))),
        (V::DateTime(x), V::DateTime(y)) => Rel::Ord(Some(x.cmp(y))),
        (V::Date(d), V::DateTime(t)) => Rel::Ord(Some(date_us(*d).cmp(&i128::from(*t)))),
        (V::DateTime(t), V::Date(d)) => Rel::Ord(Some(i128::from(*t).cmp(&date_us(*d)))),
        (V::LocalDateTime(x), V::LocalDateTime(y)) => Rel::Ord(Some(x.cmp(y))),
        (V::Date(d), V::LocalDateTime(t)) => Rel::Ord(Some(date_us(*d).cmp(&i128::from(*t)))),
        (V::LocalDateTime(t), V::Date(d)) => Rel::Ord(Some(i128::from(*t).cmp(&date_us(*d)))),
        _ => {
            if let (Some(x), Some(y)) = (a.as_str(), b.as_str()) {
                return Rel::Ord(Some(x.cmp(y)));
            }
            match (a.heap(), b.heap()) {
                (Some(Value::Bytes(x)), Some(Value::Bytes(y))) => Rel::Ord(Some(x.cmp(y))),
                (Some(x), Some(y)) if x.type_name() == y.type_name() => Rel::Eq(x == y),
                _ => Rel::Incompatible,
            }
        }
    }
}

fn date_us(days: i32) -> i128 {
    i128::from(days) * i128::from(DAY_US)
}

#[inline(always)]
fn op_test(op: CmpOp, o: Option<Ordering>) -> bool {
    match op {
        CmpOp::Eq => o == Some(Ordering::Equal),
        CmpOp::Ne => o != Some(Ordering::Equal),
        CmpOp::Lt => o == Some(Ordering::Less),
        CmpOp::Le => matches!(o, Some(Ordering::Less | Ordering::Equal)),
        CmpOp::Gt => o == Some(Ordering::Greater),
        CmpOp::Ge => matches!(o, Some(Ordering::Greater | Ordering::Equal)),
    }
}

#[inline(always)]
fn float_test(op: CmpOp, x: f64, k: f64) -> bool {
    match op {
        CmpOp::Eq => x == k,
        CmpOp::Ne => x != k,
        CmpOp::Lt => x < k,
        CmpOp::Le => x <= k,
        CmpOp::Gt => x > k,
        CmpOp::Ge => x >= k,
    }
}

/// `a <op> b` in three-valued logic.
pub(crate) fn compare(op: CmpOp, a: &Val, b: &Val) -> R<Option<bool>> {
    match relate(a, b) {
        Rel::Ord(o) => Ok(Some(op_test(op, o))),
        Rel::Null(both) => Ok(match op {
            CmpOp::Eq => Some(both),
            CmpOp::Ne => Some(!both),
            _ => None,
        }),
        Rel::Eq(eq) if op == CmpOp::Eq => Ok(Some(eq)),
        Rel::Eq(eq) if op == CmpOp::Ne => Ok(Some(!eq)),
        Rel::Incompatible if op == CmpOp::Eq => Ok(Some(false)),
        Rel::Incompatible if op == CmpOp::Ne => Ok(Some(true)),
        Rel::Eq(_) | Rel::Incompatible => fail(format!(
            "cannot compare {} with {} using `{}`",
            a.type_name(),
            b.type_name(),
            op.symbol()
        )),
    }
}

/// The general path of the `attribute <op> constant` nodes, in the source's operand order.
#[cold]
#[inline(never)]
fn compare_attr(op: CmpOp, v: &Value, k: Val, rev: bool) -> R<Option<bool>> {
    if rev {
        compare(op.flip(), &k, &Val::of(v))
    } else {
        compare(op, &Val::of(v), &k)
    }
}

/// Whether `a == b` holds (null equals only null).
pub(crate) fn equal(a: &Val, b: &Val) -> bool {
    match relate(a, b) {
        Rel::Ord(o) => o == Some(Ordering::Equal),
        Rel::Eq(e) | Rel::Null(e) => e,
        Rel::Incompatible => false,
    }
}

/// The order of two non-null values for `min`/`max`: `None` when they do not order.
pub(crate) fn order(a: &Val, b: &Val) -> Option<Option<Ordering>> {
    match relate(a, b) {
        Rel::Ord(o) => Some(o),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Arithmetic
// ---------------------------------------------------------------------------------------------

fn int_arith<'a>(op: ArithOp, x: i64, y: i64) -> R<Val<'a>> {
    let r = match op {
        ArithOp::Add => x.checked_add(y),
        ArithOp::Sub => x.checked_sub(y),
        ArithOp::Mul => x.checked_mul(y),
        ArithOp::Div if y == 0 => return fail("division by zero".into()),
        ArithOp::Div => return Ok(Val::Float(x as f64 / y as f64)),
        ArithOp::Rem if y == 0 => return fail("division by zero".into()),
        // i64::MIN % -1 is 0 mathematically; wrapping_rem gives exactly that.
        ArithOp::Rem => Some(x.wrapping_rem(y)),
    };
    match r {
        Some(i) => Ok(Val::Int(i)),
        None => fail(format!("integer overflow in `{}`", op.symbol())),
    }
}

fn float_arith<'a>(op: ArithOp, x: f64, y: f64) -> R<Val<'a>> {
    Ok(Val::Float(match op {
        ArithOp::Add => x + y,
        ArithOp::Sub => x - y,
        ArithOp::Mul => x * y,
        ArithOp::Div | ArithOp::Rem if y == 0.0 => return fail("division by zero".into()),
        ArithOp::Div => x / y,
        ArithOp::Rem => x % y,
    }))
}

/// `a <op> b`.
#[inline]
pub(crate) fn arith<'a>(op: ArithOp, a: Val<'a>, b: Val<'a>) -> R<Val<'a>> {
    match (&a, &b) {
        (Val::Int(x), Val::Int(y)) => int_arith(op, *x, *y),
        (Val::Float(x), Val::Float(y)) => float_arith(op, *x, *y),
        (Val::Int(x), Val::Float(y)) => float_arith(op, *x as f64, *y),
        (Val::Float(x), Val::Int(y)) => float_arith(op, *x, *y as f64),
        (Val::Null, _) | (_, Val::Null) => Ok(Val::Null),
        _ => match (op, a.as_str(), b.as_str()) {
            (ArithOp::Add, Some(x), Some(y)) => {
                let mut s = String::with_capacity(x.len() + y.len());
                s.push_str(x);
                s.push_str(y);
                Ok(Val::String(s))
            }
            _ => fail(format!(
                "cannot apply `{}` to {} and {}",
                op.symbol(),
                a.type_name(),
                b.type_name()
            )),
        },
    }
}

fn neg(v: Val) -> R<Val> {
    match v {
        Val::Null => Ok(Val::Null),
        Val::Int(i) => match i.checked_neg() {
            Some(n) => Ok(Val::Int(n)),
            None => fail("integer overflow in `-`".into()),
        },
        Val::Float(f) => Ok(Val::Float(-f)),
        other => fail(format!("cannot negate {}", other.type_name())),
    }
}

/// A value used as a condition: bool or null.
#[inline]
pub(crate) fn bool_of(v: &Val) -> R<Option<bool>> {
    match v {
        Val::Bool(b) => Ok(Some(*b)),
        Val::Null => Ok(None),
        other => fail(format!("expected a bool, got {}", other.type_name())),
    }
}

// ---------------------------------------------------------------------------------------------
// Evaluation
// ---------------------------------------------------------------------------------------------

/// Evaluates the leaf predicates inline (no call), anything else through [`tri`].
#[inline(always)]
fn leaf<'a>(node: &'a Node, cx: &Ctx<'a>) -> R<Option<bool>> {
    match node {
        Node::AttrCmpFloat { slot, op, k, rev } => match cx.attr(*slot) {
            Value::Float(x) => Ok(Some(float_test(*op, *x, *k))),
            Value::Int(i) => Ok(Some(float_test(*op, *i as f64, *k))),
            v => compare_attr(*op, v, Val::Float(*k), *rev),
        },
        Node::AttrCmpInt { slot, op, k, rev } => match cx.attr(*slot) {
            Value::Int(i) => Ok(Some(op_test(*op, Some(i.cmp(k))))),
            Value::Float(x) => Ok(Some(float_test(*op, *x, *k as f64))),
            v => compare_attr(*op, v, Val::Int(*k), *rev),
        },
        Node::AttrEqStr { slot, k, ne } => Ok(Some(match cx.attr(*slot) {
            Value::String(s) => (**s == **k) != *ne,
            _ => *ne,
        })),
        _ => tri(node, cx),
    }
}

/// Evaluates a node as a three-valued boolean (`None` is null).
pub(crate) fn tri<'a>(node: &'a Node, cx: &Ctx<'a>) -> R<Option<bool>> {
    match node {
        Node::AttrCmpFloat { .. } | Node::AttrCmpInt { .. } | Node::AttrEqStr { .. } => {
            leaf(node, cx)
        }
        Node::And(items) => {
            let mut null = false;
            for item in items.iter() {
                match leaf(item, cx)? {
                    Some(false) => return Ok(Some(false)),
                    None => null = true,
                    Some(true) => {}
                }
            }
            Ok(if null { None } else { Some(true) })
        }
        Node::Or(items) => {
            let mut null = false;
            for item in items.iter() {
                match leaf(item, cx)? {
                    Some(true) => return Ok(Some(true)),
                    None => null = true,
                    Some(false) => {}
                }
            }
            Ok(if null { None } else { Some(false) })
        }
        Node::Not(inner) => Ok(tri(inner, cx)?.map(|b| !b)),
        Node::Cmp(op, l, r) => compare(*op, &eval(l, cx)?, &eval(r, cx)?),
        Node::InConst(x, list) => {
            let x = eval(x, cx)?;
            if matches!(x, Val::Null) {
                return Ok(None);
            }
            Ok(Some(list.iter().any(|v| equal(&x, &Val::of(v)))))
        }
        Node::InList(x, items) => {
            let x = eval(x, cx)?;
            if matches!(x, Val::Null) {
                return Ok(None);
            }
            for item in items.iter() {
                if equal(&x, &eval(item, cx)?) {
                    return Ok(Some(true));
                }
            }
            Ok(Some(false))
        }
        Node::InExpr(x, list) => {
            let x = eval(x, cx)?;
            let list = eval(list, cx)?;
            match list.heap() {
                _ if matches!(list, Val::Null) => Ok(None),
                Some(Value::Array(_)) if matches!(x, Val::Null) => Ok(None),
                Some(Value::Array(items)) => Ok(Some(items.iter().any(|v| equal(&x, &Val::of(v))))),
                _ => fail(format!("`in` expects a list, got {}", list.type_name())),
            }
        }
        Node::Const(v) => bool_of(&Val::of(v)),
        Node::Attr(slot) => bool_of(&Val::of(cx.attr(*slot))),
        Node::List(_)
        | Node::Geometry
        | Node::Neg(_)
        | Node::Arith(..)
        | Node::AttrArithConst { .. }
        | Node::Call(..) => bool_of(&eval(node, cx)?),
    }
}

/// `a <op> k` for numbers, when it cannot fail; `None` sends the caller to [`arith`].
#[inline(always)]
fn arith_fast(op: ArithOp, a: &Value, k: &Value) -> Option<Value> {
    let (x, y) = match (a, k) {
        (Value::Float(x), Value::Float(y)) => (*x, *y),
        (Value::Float(x), Value::Int(y)) => (*x, *y as f64),
        (Value::Int(x), Value::Float(y)) => (*x as f64, *y),
        (Value::Int(x), Value::Int(y)) => {
            return match op {
                ArithOp::Add => x.checked_add(*y),
                ArithOp::Sub => x.checked_sub(*y),
                ArithOp::Mul => x.checked_mul(*y),
                ArithOp::Div | ArithOp::Rem => None,
            }
            .map(Value::Int);
        }
        _ => return None,
    };
    Some(Value::Float(match op {
        ArithOp::Add => x + y,
        ArithOp::Sub => x - y,
        ArithOp::Mul => x * y,
        ArithOp::Div | ArithOp::Rem if y == 0.0 => return None,
        ArithOp::Div => x / y,
        ArithOp::Rem => x % y,
    }))
}

/// Evaluates a node to an owned value, building it in place for the common shapes (the
/// public error type is produced directly: converting results between layouts costs more
/// than the arithmetic).
#[inline]
pub(crate) fn eval_value<'a>(node: &'a Node, cx: &Ctx<'a>) -> Result<Value, EvalError> {
    let r = match node {
        Node::AttrArithConst { slot, op, k } => {
            let a = cx.attr(*slot);
            if let Some(v) = arith_fast(*op, a, k) {
                return Ok(v);
            }
            arith(*op, Val::of(a), Val::of(k))
        }
        Node::Attr(slot) => return Ok(cx.attr(*slot).clone()),
        Node::Const(v) => return Ok(v.clone()),
        _ => eval(node, cx),
    };
    match r.and_then(Val::into_value) {
        Ok(v) => Ok(v),
        Err(e) => Err(*e),
    }
}

/// Evaluates a node.
pub(crate) fn eval<'a>(node: &'a Node, cx: &Ctx<'a>) -> R<Val<'a>> {
    match node {
        Node::Const(v) => Ok(Val::of(v)),
        Node::Attr(slot) => Ok(Val::of(cx.attr(*slot))),
        Node::AttrArithConst { slot, op, k } => arith(*op, Val::of(cx.attr(*slot)), Val::of(k)),
        Node::Arith(op, a, b) => arith(*op, eval(a, cx)?, eval(b, cx)?),
        Node::Neg(a) => neg(eval(a, cx)?),
        Node::List(items) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items.iter() {
                out.push(eval(item, cx)?.into_value()?);
            }
            Ok(Val::Owned(Value::Array(out.into())))
        }
        Node::Call(b, args) => (b.call)(b.func, args, cx),
        Node::Geometry => Ok(match cx.feature.geometry() {
            Some(g) => Val::Geom(g),
            None => Val::Null,
        }),
        Node::Not(_)
        | Node::And(_)
        | Node::Or(_)
        | Node::Cmp(..)
        | Node::AttrCmpFloat { .. }
        | Node::AttrCmpInt { .. }
        | Node::AttrEqStr { .. }
        | Node::InConst(..)
        | Node::InList(..)
        | Node::InExpr(..) => Ok(match tri(node, cx)? {
            Some(b) => Val::Bool(b),
            None => Val::Null,
        }),
    }
}
