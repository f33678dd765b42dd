//! Tokens to a syntax tree, by recursive descent (one function per precedence level).
//!
//! Function names and arities are checked here, so their errors point at the call.

use super::catalog::{self, Func};
use super::error::ExprError;
use super::lexer::{Tok, Token, lex};
use crate::feature::Value;

/// The reserved name of the feature's geometry (an attribute of that name is written
/// `` `geometry` ``).
pub(crate) const GEOMETRY: &str = "geometry";

/// Deepest accepted nesting (operators, parentheses, calls, lists).
pub(crate) const MAX_DEPTH: usize = 64;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    /// The operator with its operands swapped (`k < a` is `a > k`).
    pub(crate) fn flip(self) -> CmpOp {
        match self {
            CmpOp::Lt => CmpOp::Gt,
            CmpOp::Le => CmpOp::Ge,
            CmpOp::Gt => CmpOp::Lt,
            CmpOp::Ge => CmpOp::Le,
            same => same,
        }
    }

    pub(crate) fn symbol(self) -> &'static str {
        match self {
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }
}

/// An arithmetic operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ArithOp {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
}

impl ArithOp {
    pub(crate) fn symbol(self) -> &'static str {
        match self {
            ArithOp::Add => "+",
            ArithOp::Sub => "-",
            ArithOp::Mul => "*",
            ArithOp::Div => "/",
            ArithOp::Rem => "%",
        }
    }
}

/// A syntax tree node: what it is, where it is, and how deep it nests.
#[derive(Debug, Clone)]
pub(crate) struct Ast {
    pub kind: AstKind,
    /// Byte offset of the node in the source: its operator for an operation, its name for a
    /// call, its first character for a literal or an attribute.
    pub offset: usize,
    pub depth: usize,
}

#[derive(Debug, Clone)]
pub(crate) enum AstKind {
    Lit(Value),
    Attr(String),
    /// The feature's geometry (the reserved name `geometry`).
    Geometry,
    List(Vec<Ast>),
    Neg(Box<Ast>),
    Not(Box<Ast>),
    /// Two or more operands joined by `&&` (a chain counts as one level of nesting).
    And(Vec<Ast>),
    /// Two or more operands joined by `||`.
    Or(Vec<Ast>),
    Cmp(CmpOp, Box<Ast>, Box<Ast>),
    In(Box<Ast>, Box<Ast>),
    Arith(ArithOp, Box<Ast>, Box<Ast>),
    Call(Func, Vec<Ast>),
}

impl AstKind {
    fn children_depth(&self) -> usize {
        let max = |v: &[Ast]| v.iter().map(|a| a.depth).max().unwrap_or(0);
        match self {
            AstKind::Lit(_) | AstKind::Attr(_) | AstKind::Geometry => 0,
            AstKind::List(v) | AstKind::And(v) | AstKind::Or(v) | AstKind::Call(_, v) => max(v),
            AstKind::Neg(a) | AstKind::Not(a) => a.depth,
            AstKind::Cmp(_, a, b) | AstKind::In(a, b) | AstKind::Arith(_, a, b) => {
                a.depth.max(b.depth)
            }
        }
    }
}

/// Parses a whole expression.
///
/// Unknown functions and wrong argument counts do not stop parsing: every one is reported,
/// in source order, followed by the syntax error that stopped parsing, if any. The list is
/// never empty on `Err`.
pub(crate) fn parse(src: &str) -> Result<Ast, Vec<ExprError>> {
    let toks = lex(src).map_err(|e| vec![e])?;
    let mut p = Parser {
        toks,
        pos: 0,
        nesting: 0,
        errors: Vec::new(),
    };
    let result = p.expr().and_then(|ast| {
        let t = p.peek();
        if t.tok == Tok::Eof {
            return Ok(ast);
        }
        let message = match t.tok {
            Tok::RParen => "unexpected `)` with no matching `(`".to_owned(),
            _ => format!("expected an operator, found {}", t.tok.describe()),
        };
        Err(ExprError::new(message, t.offset))
    });
    let mut errors = p.errors;
    match result {
        Ok(ast) if errors.is_empty() => Ok(ast),
        Ok(_) => Err(errors),
        Err(e) => {
            errors.push(e);
            Err(errors)
        }
    }
}

struct Parser {
    toks: Vec<Token>,
    pos: usize,
    /// Open parentheses, brackets, calls and prefix operators around the current position.
    nesting: usize,
    /// Call errors (unknown function, wrong argument count), which do not stop parsing.
    errors: Vec<ExprError>,
}

fn too_deep(offset: usize) -> ExprError {
    ExprError::new(
        format!("expression nests deeper than {MAX_DEPTH} levels"),
        offset,
    )
}

impl Parser {
    fn peek(&self) -> &Token {
        // `lex` always ends with Eof and `bump` never moves past it.
        &self.toks[self.pos.min(self.toks.len() - 1)]
    }

    fn bump(&mut self) -> Token {
        let t = self.peek().clone();
        if self.pos < self.toks.len() - 1 {
            self.pos += 1;
        }
        t
    }

    fn eat(&mut self, tok: &Tok) -> bool {
        if &self.peek().tok == tok {
            self.bump();
            true
        } else {
            false
        }
    }

    fn node(&self, kind: AstKind, offset: usize) -> Result<Ast, ExprError> {
        let depth = kind.children_depth() + 1;
        if depth > MAX_DEPTH {
            return Err(too_deep(offset));
        }
        Ok(Ast {
            kind,
            offset,
            depth,
        })
    }

    fn enter(&mut self, offset: usize) -> Result<(), ExprError> {
        self.nesting += 1;
        if self.nesting > MAX_DEPTH {
            return Err(too_deep(offset));
        }
        Ok(())
    }

    fn expr(&mut self) -> Result<Ast, ExprError> {
        self.or()
    }

    fn or(&mut self) -> Result<Ast, ExprError> {
        let first = self.and()?;
        let offset = self.peek().offset;
        if self.peek().tok != Tok::Or {
            return Ok(first);
        }
        let mut items = vec![first];
        while self.eat(&Tok::Or) {
            items.push(self.and()?);
        }
        self.node(AstKind::Or(items), offset)
    }

    fn and(&mut self) -> Result<Ast, ExprError> {
        let first = self.not()?;
        let offset = self.peek().offset;
        if self.peek().tok != Tok::And {
            return Ok(first);
        }
        let mut items = vec![first];
        while self.eat(&Tok::And) {
            items.push(self.not()?);
        }
        self.node(AstKind::And(items), offset)
    }

    fn not(&mut self) -> Result<Ast, ExprError> {
        let offset = self.peek().offset;
        if !self.eat(&Tok::Not) {
            return self.comparison();
        }
        self.enter(offset)?;
        let inner = self.not()?;
        self.nesting -= 1;
        self.node(AstKind::Not(Box::new(inner)), offset)
    }

    fn comparison(&mut self) -> Result<Ast, ExprError> {
        let left = self.sum()?;
        let t = self.peek();
        let offset = t.offset;
        let op = match t.tok {
            Tok::EqEq => Some(CmpOp::Eq),
            Tok::NotEq => Some(CmpOp::Ne),
            Tok::Lt => Some(CmpOp::Lt),
            Tok::Le => Some(CmpOp::Le),
            Tok::Gt => Some(CmpOp::Gt),
            Tok::Ge => Some(CmpOp::Ge),
            Tok::In => None,
            _ => return Ok(left),
        };
        self.bump();
        let right = self.sum()?;
        if is_comparison(&self.peek().tok) {
            return Err(ExprError::new(
                "comparisons cannot be chained; add parentheses",
                self.peek().offset,
            ));
        }
        let kind = match op {
            Some(op) => AstKind::Cmp(op, Box::new(left), Box::new(right)),
            None => AstKind::In(Box::new(left), Box::new(right)),
        };
        self.node(kind, offset)
    }

    fn sum(&mut self) -> Result<Ast, ExprError> {
        let mut left = self.product()?;
        loop {
            let offset = self.peek().offset;
            let op = match self.peek().tok {
                Tok::Plus => ArithOp::Add,
                Tok::Minus => ArithOp::Sub,
                _ => return Ok(left),
            };
            self.bump();
            let right = self.product()?;
            left = self.node(AstKind::Arith(op, Box::new(left), Box::new(right)), offset)?;
        }
    }

    fn product(&mut self) -> Result<Ast, ExprError> {
        let mut left = self.unary()?;
        loop {
            let offset = self.peek().offset;
            let op = match self.peek().tok {
                Tok::Star => ArithOp::Mul,
                Tok::Slash => ArithOp::Div,
                Tok::Percent => ArithOp::Rem,
                _ => return Ok(left),
            };
            self.bump();
            let right = self.unary()?;
            left = self.node(AstKind::Arith(op, Box::new(left), Box::new(right)), offset)?;
        }
    }

    fn unary(&mut self) -> Result<Ast, ExprError> {
        let offset = self.peek().offset;
        if !self.eat(&Tok::Minus) {
            return self.primary();
        }
        // `-9223372036854775808` is i64::MIN, whose magnitude alone is out of range.
        if self.peek().tok == Tok::Int(1 << 63) {
            self.bump();
            return self.node(AstKind::Lit(Value::Int(i64::MIN)), offset);
        }
        self.enter(offset)?;
        let inner = self.unary()?;
        self.nesting -= 1;
        self.node(AstKind::Neg(Box::new(inner)), offset)
    }

    fn primary(&mut self) -> Result<Ast, ExprError> {
        let t = self.bump();
        let offset = t.offset;
        let kind = match t.tok {
            Tok::Int(i) => match i64::try_from(i) {
                Ok(i) => AstKind::Lit(Value::Int(i)),
                Err(_) => return Err(ExprError::new("integer literal out of range", offset)),
            },
            Tok::Float(f) => AstKind::Lit(Value::Float(f)),
            Tok::Str(s) => AstKind::Lit(Value::String(s.into())),
            Tok::True => AstKind::Lit(Value::Bool(true)),
            Tok::False => AstKind::Lit(Value::Bool(false)),
            Tok::Null => AstKind::Lit(Value::Null),
            Tok::Quoted(name) => AstKind::Attr(name),
            Tok::Ident(name) if self.peek().tok == Tok::LParen => {
                return self.call(&name, offset);
            }
            Tok::Ident(name) if name == GEOMETRY => AstKind::Geometry,
            Tok::Ident(name) => AstKind::Attr(name),
            Tok::LParen => {
                self.enter(offset)?;
                let inner = self.expr()?;
                self.close(&Tok::RParen, ")", offset)?;
                self.nesting -= 1;
                return Ok(inner);
            }
            Tok::LBracket => {
                self.enter(offset)?;
                let items = self.list(&Tok::RBracket, "]", offset)?;
                self.nesting -= 1;
                AstKind::List(items)
            }
            Tok::Not => {
                return Err(ExprError::new(
                    "a negation (`!` or `not`) must be in parentheses here",
                    offset,
                ));
            }
            Tok::Eof => {
                return Err(ExprError::new(
                    "expected an operand, found end of expression",
                    offset,
                ));
            }
            other => {
                return Err(ExprError::new(
                    format!("expected an operand, found {}", other.describe()),
                    offset,
                ));
            }
        };
        self.node(kind, offset)
    }

    /// A call; an unknown function or a wrong argument count is recorded in `errors` and
    /// the call parsed on (it becomes a null placeholder, never compiled).
    fn call(&mut self, name: &str, offset: usize) -> Result<Ast, ExprError> {
        let info = catalog::lookup(name);
        if info.is_none() {
            let message = match catalog::suggest(name) {
                Some(near) => format!("unknown function `{name}`; did you mean `{near}`?"),
                None => format!("unknown function `{name}`"),
            };
            self.errors.push(ExprError::new(message, offset));
        }
        let open = self.bump().offset;
        self.enter(open)?;
        let args = self.list(&Tok::RParen, ")", open)?;
        self.nesting -= 1;
        let Some(info) = info else {
            return self.node(AstKind::Lit(Value::Null), offset);
        };
        if args.len() < info.min || args.len() > info.max {
            self.errors.push(ExprError::new(
                format!(
                    "function `{name}` takes {}, got {}",
                    info.arity_text(),
                    args.len()
                ),
                offset,
            ));
            return self.node(AstKind::Lit(Value::Null), offset);
        }
        self.node(AstKind::Call(info.func, args), offset)
    }

    /// Comma-separated expressions up to `close` (the opener is already consumed).
    fn list(&mut self, close: &Tok, symbol: &str, open: usize) -> Result<Vec<Ast>, ExprError> {
        let mut items = Vec::new();
        if self.eat(close) {
            return Ok(items);
        }
        loop {
            items.push(self.expr()?);
            if !self.eat(&Tok::Comma) {
                self.close(close, symbol, open)?;
                return Ok(items);
            }
        }
    }

    fn close(&mut self, close: &Tok, symbol: &str, open: usize) -> Result<(), ExprError> {
        if self.eat(close) {
            return Ok(());
        }
        let t = self.peek();
        let opener = if symbol == ")" { "(" } else { "[" };
        Err(ExprError::new(
            format!(
                "expected `{symbol}` to close the `{opener}` at column {}, found {}",
                open + 1,
                t.tok.describe()
            ),
            t.offset,
        ))
    }
}

fn is_comparison(tok: &Tok) -> bool {
    matches!(
        tok,
        Tok::EqEq | Tok::NotEq | Tok::Lt | Tok::Le | Tok::Gt | Tok::Ge | Tok::In
    )
}
