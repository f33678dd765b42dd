//! Syntax tree to compiled [`Node`]s: attribute names become slots, constant subexpressions
//! are folded, and the common comparison shapes get their own nodes.

use super::catalog::Func;
use super::error::ExprError;
use super::eval::{self, Builtin, Ctx, Node};
use super::functions::{self, constant};
use super::parser::{ArithOp, Ast, AstKind, CmpOp};
use super::val::Val;
use crate::feature::{Feature, Value};

/// Compiles `ast`, appending the attribute names it references (deduplicated, in order of
/// appearance) to `attrs`. Fails on bad constant arguments (an invalid regex or date
/// format, an unknown unit, a non-constant pattern), each reported with its offset.
pub(crate) fn compile(ast: Ast, attrs: &mut Vec<Box<str>>) -> Result<Node, Vec<ExprError>> {
    let mut c = Compiler {
        attrs,
        scratch: Feature::empty(0),
        errors: Vec::new(),
    };
    let node = c.node(ast);
    if c.errors.is_empty() {
        Ok(node)
    } else {
        Err(c.errors)
    }
}

struct Compiler<'x> {
    errors: Vec<ExprError>,
    attrs: &'x mut Vec<Box<str>>,
    /// The feature constant folding evaluates against (folded nodes never look at it).
    scratch: Feature,
}

impl Compiler<'_> {
    fn slot(&mut self, name: &str) -> u32 {
        let i = match self.attrs.iter().position(|a| &**a == name) {
            Some(i) => i,
            None => {
                self.attrs.push(name.into());
                self.attrs.len() - 1
            }
        };
        // The source is at most 8 KiB, so there are far fewer than 2^32 names.
        u32::try_from(i).unwrap_or(u32::MAX)
    }

    fn boxed(&mut self, ast: Ast) -> Box<Node> {
        Box::new(self.node(ast))
    }

    fn all(&mut self, asts: Vec<Ast>) -> Vec<Node> {
        asts.into_iter().map(|a| self.node(a)).collect()
    }

    fn node(&mut self, ast: Ast) -> Node {
        let node = match ast.kind {
            AstKind::Lit(v) => return Node::Const(v),
            AstKind::Attr(name) => return Node::Attr(self.slot(&name)),
            AstKind::Geometry => return Node::Geometry,
            AstKind::List(items) => {
                let items = self.all(items);
                if items.iter().all(is_const) {
                    let values: Vec<Value> = items.into_iter().filter_map(into_const).collect();
                    return Node::Const(Value::Array(values.into()));
                }
                Node::List(items.into())
            }
            AstKind::Neg(a) => Node::Neg(self.boxed(*a)),
            AstKind::Not(a) => Node::Not(self.boxed(*a)),
            AstKind::And(items) => {
                let items = self.all(items);
                if matches!(items.first(), Some(Node::Const(Value::Bool(false)))) {
                    return Node::Const(Value::Bool(false));
                }
                Node::And(items.into())
            }
            AstKind::Or(items) => {
                let items = self.all(items);
                if matches!(items.first(), Some(Node::Const(Value::Bool(true)))) {
                    return Node::Const(Value::Bool(true));
                }
                Node::Or(items.into())
            }
            AstKind::Cmp(op, a, b) => {
                let (a, b) = (self.node(*a), self.node(*b));
                comparison(op, a, b)
            }
            AstKind::In(x, list) => {
                let x = self.boxed(*x);
                match self.node(*list) {
                    Node::Const(Value::Array(items)) => Node::InConst(x, items),
                    Node::List(items) => Node::InList(x, items),
                    other => Node::InExpr(x, Box::new(other)),
                }
            }
            AstKind::Arith(op, a, b) => {
                let (a, b) = (self.node(*a), self.node(*b));
                arithmetic(op, a, b)
            }
            AstKind::Call(func, args) => {
                let offsets: Vec<usize> = args.iter().map(|a| a.offset).collect();
                let mut args = self.all(args);
                if func == Func::If && args.len() == 3 {
                    match &args[0] {
                        Node::Const(Value::Bool(true)) => return args.swap_remove(1),
                        Node::Const(Value::Bool(false) | Value::Null) => {
                            return args.swap_remove(2);
                        }
                        _ => {}
                    }
                }
                let consts: Vec<Option<&Value>> = args
                    .iter()
                    .map(|a| match a {
                        Node::Const(v) => Some(v),
                        _ => None,
                    })
                    .collect();
                let regex = match constant::check(func, &consts) {
                    Ok(regex) => regex,
                    Err(p) => {
                        let offset = offsets.get(p.arg).copied().unwrap_or(ast.offset);
                        self.errors.push(ExprError::new(p.message, offset));
                        None
                    }
                };
                let call = functions::call;
                Node::Call(Builtin { func, call, regex }, args.into())
            }
        };
        self.fold(node)
    }

    /// Evaluates a node whose operands are all constant; keeps it when that fails, so the
    /// error happens at run time and only if the node is reached.
    fn fold(&self, node: Node) -> Node {
        let foldable = match &node {
            Node::Neg(a) | Node::Not(a) | Node::InConst(a, _) => is_const(a),
            Node::And(items) | Node::Or(items) => items.iter().all(is_const),
            Node::Cmp(_, a, b) | Node::Arith(_, a, b) | Node::InExpr(a, b) => {
                is_const(a) && is_const(b)
            }
            Node::Call(b, args) => b.func.is_pure() && args.iter().all(is_const),
            _ => false,
        };
        if !foldable {
            return node;
        }
        let cx = Ctx {
            values: &[],
            slots: &[],
            feature: &self.scratch,
        };
        match eval::eval(&node, &cx).and_then(Val::into_value) {
            Ok(v) => Node::Const(v),
            Err(_) => node,
        }
    }
}

fn is_const(n: &Node) -> bool {
    matches!(n, Node::Const(_))
}

fn into_const(n: Node) -> Option<Value> {
    match n {
        Node::Const(v) => Some(v),
        _ => None,
    }
}

/// `a <op> b`, with a dedicated node when one side is an attribute and the other a number or
/// (for `==` / `!=`) a string.
fn comparison(op: CmpOp, a: Node, b: Node) -> Node {
    match (a, b) {
        (Node::Attr(slot), Node::Const(k)) => match attr_vs_const(op, slot, k, false) {
            Ok(n) => n,
            Err(k) => Node::Cmp(op, Box::new(Node::Attr(slot)), Box::new(Node::Const(k))),
        },
        (Node::Const(k), Node::Attr(slot)) => match attr_vs_const(op.flip(), slot, k, true) {
            Ok(n) => n,
            Err(k) => Node::Cmp(op, Box::new(Node::Const(k)), Box::new(Node::Attr(slot))),
        },
        (a, b) => Node::Cmp(op, Box::new(a), Box::new(b)),
    }
}

fn attr_vs_const(op: CmpOp, slot: u32, k: Value, rev: bool) -> Result<Node, Value> {
    match k {
        Value::Float(k) => Ok(Node::AttrCmpFloat { slot, op, k, rev }),
        Value::Int(k) => Ok(Node::AttrCmpInt { slot, op, k, rev }),
        Value::String(k) if matches!(op, CmpOp::Eq | CmpOp::Ne) => Ok(Node::AttrEqStr {
            slot,
            k: k.as_str().into(),
            ne: op == CmpOp::Ne,
        }),
        k => Err(k),
    }
}

/// `a <op> b`, with a dedicated node for `attribute <op> number`.
fn arithmetic(op: ArithOp, a: Node, b: Node) -> Node {
    match (a, b) {
        (Node::Attr(slot), Node::Const(k @ (Value::Int(_) | Value::Float(_)))) => {
            Node::AttrArithConst { slot, op, k }
        }
        (a, b) => Node::Arith(op, Box::new(a), Box::new(b)),
    }
}
