//! Static type checking: what an expression gives, and the problems that would make it fail
//! (or be always true or false) on every feature, found before anything runs.
//!
//! The checker walks the syntax tree with what validation knows about the attributes (a
//! [`TypeEnv`]). A type it cannot know is [`Type::Any`], which passes every check silently,
//! so a problem is reported only when it is certain: `'abc' * 2`, `value > 'abc'` with a
//! float `value`, `category in 'park'`, `upper(id)` with an integer `id`. Any value may
//! also be null at run time; a null operand is never a static error.
//!
//! The rules are the language's (see the [module docs](super)): numbers mix (an integer
//! meets a float as a float), `+` also joins two strings, dates and datetimes compare with
//! each other but a zoned datetime never meets a local one, arrays and maps compare only with
//! `==` and `!=`, and a geometry only goes into the geometry functions.

use std::fmt;

use super::Expr;
use super::catalog::{Func, FuncInfo, Ret};
use super::parser::{ArithOp, Ast, AstKind, CmpOp, GEOMETRY};
use crate::error::{did_you_mean, nearest};
use crate::feature::Value;

/// The static type of an expression value (every value may also be null at run time).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
pub enum Type {
    /// Not known before run time: passes every check.
    Any,
    /// Always null (the literal `null`).
    Null,
    /// `true` or `false`.
    Bool,
    /// A 64-bit signed integer.
    Int,
    /// A 64-bit float.
    Float,
    /// A UTF-8 string.
    String,
    /// A calendar date.
    Date,
    /// An instant (a datetime with a time zone, kept as UTC).
    DateTime,
    /// A wall-clock date and time without a time zone.
    LocalDateTime,
    /// Raw bytes.
    Bytes,
    /// An array of values.
    Array,
    /// A map from string keys to values.
    Map,
    /// A geometry (the feature's, named `geometry` in expressions).
    Geometry,
}

impl Type {
    /// The type as a phrase for messages: "a string", "an integer", "any value"...
    pub fn name(self) -> &'static str {
        match self {
            Type::Any => "any value",
            Type::Null => "null",
            Type::Bool => "a bool",
            Type::Int => "an integer",
            Type::Float => "a float",
            Type::String => "a string",
            Type::Date => "a date",
            Type::DateTime => "a datetime",
            Type::LocalDateTime => "a local datetime",
            Type::Bytes => "bytes",
            Type::Array => "an array",
            Type::Map => "a map",
            Type::Geometry => "a geometry",
        }
    }

    /// The type of a value (`Null` for null).
    pub fn of(value: &Value) -> Type {
        match value {
            Value::Null => Type::Null,
            Value::Bool(_) => Type::Bool,
            Value::Int(_) => Type::Int,
            Value::Float(_) => Type::Float,
            Value::String(_) => Type::String,
            Value::Date(_) => Type::Date,
            Value::DateTime(_) => Type::DateTime,
            Value::LocalDateTime(_) => Type::LocalDateTime,
            Value::Bytes(_) => Type::Bytes,
            Value::Array(_) => Type::Array,
            Value::Map(_) => Type::Map,
        }
    }

    /// The type named as [`Value::type_name`] names it (`"int"`, `"local_datetime"`...),
    /// or `"any"`; `None` for another name.
    pub fn from_type_name(name: &str) -> Option<Type> {
        Some(match name {
            "any" => Type::Any,
            "null" => Type::Null,
            "bool" => Type::Bool,
            "int" => Type::Int,
            "float" => Type::Float,
            "string" => Type::String,
            "date" => Type::Date,
            "datetime" => Type::DateTime,
            "local_datetime" => Type::LocalDateTime,
            "bytes" => Type::Bytes,
            "array" => Type::Array,
            "map" => Type::Map,
            "geometry" => Type::Geometry,
            _ => return None,
        })
    }

    /// The type's short name, as signatures and schemas print it (`int`,
    /// `local_datetime`, `any`); [`Type::from_type_name`] reads it back.
    pub fn short_name(self) -> &'static str {
        match self {
            Type::Any => "any",
            Type::Null => "null",
            Type::Bool => "bool",
            Type::Int => "int",
            Type::Float => "float",
            Type::String => "string",
            Type::Date => "date",
            Type::DateTime => "datetime",
            Type::LocalDateTime => "local_datetime",
            Type::Bytes => "bytes",
            Type::Array => "array",
            Type::Map => "map",
            Type::Geometry => "geometry",
        }
    }

    fn is_number(self) -> bool {
        matches!(self, Type::Int | Type::Float)
    }

    /// Whether a value of this type may be anything (unknown or null): never a static error.
    fn is_open(self) -> bool {
        matches!(self, Type::Any | Type::Null)
    }

    const ALL: [Type; 13] = [
        Type::Any,
        Type::Null,
        Type::Bool,
        Type::Int,
        Type::Float,
        Type::String,
        Type::Date,
        Type::DateTime,
        Type::LocalDateTime,
        Type::Bytes,
        Type::Array,
        Type::Map,
        Type::Geometry,
    ];
}

impl fmt::Display for Type {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of types a function parameter accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TypeSet(u16);

impl TypeSet {
    /// Every value, geometry included.
    pub(crate) const ANY: TypeSet = TypeSet(u16::MAX);
    /// Every attribute value (not a geometry).
    pub(crate) const VALUE: TypeSet = TypeSet(!(1 << Type::Geometry as u16));
    /// An integer or a float.
    pub(crate) const NUMBER: TypeSet = TypeSet::of(Type::Int).with(Type::Float);
    /// An integer (a float is accepted too: one without fraction counts when evaluating).
    /// Bit 15, which no type uses, tells it from [`TypeSet::NUMBER`] in messages.
    pub(crate) const INTEGER: TypeSet = TypeSet(TypeSet::NUMBER.0 | 1 << 15);
    /// A date, datetime or local datetime.
    pub(crate) const TEMPORAL: TypeSet = TypeSet::of(Type::Date)
        .with(Type::DateTime)
        .with(Type::LocalDateTime);

    pub(crate) const fn of(t: Type) -> TypeSet {
        TypeSet(1 << t as u16)
    }

    pub(crate) const fn with(self, t: Type) -> TypeSet {
        TypeSet(self.0 | 1 << t as u16)
    }

    /// Whether a value of type `t` may be passed (unknown and null always may).
    pub(crate) fn accepts(self, t: Type) -> bool {
        t.is_open() || self.0 & (1 << t as u16) != 0
    }

    /// The set as a phrase: "a number", "a string or an array"...
    pub(crate) fn describe(self) -> String {
        if self == TypeSet::ANY || self == TypeSet::VALUE {
            return "any value".into();
        }
        if self == TypeSet::INTEGER {
            return "an integer".into();
        }
        let mut names: Vec<&str> = Vec::new();
        let mut rest = self;
        if rest.0 & TypeSet::NUMBER.0 == TypeSet::NUMBER.0 {
            names.push("a number");
            rest.0 &= !TypeSet::NUMBER.0;
        }
        for t in Type::ALL {
            if t != Type::Any && t != Type::Null && rest.0 & (1 << t as u16) != 0 {
                names.push(t.name());
            }
        }
        match names.as_slice() {
            [] => "nothing".into(),
            [one] => (*one).into(),
            [init @ .., last] => format!("{} or {last}", init.join(", ")),
        }
    }

    /// A short name for signatures in help: `number`, `string|array`.
    pub(crate) fn short(self) -> String {
        if self == TypeSet::ANY || self == TypeSet::VALUE {
            return "any".into();
        }
        if self == TypeSet::INTEGER {
            return "int".into();
        }
        let mut names: Vec<&str> = Vec::new();
        let mut rest = self;
        if rest.0 & TypeSet::NUMBER.0 == TypeSet::NUMBER.0 {
            names.push("number");
            rest.0 &= !TypeSet::NUMBER.0;
        }
        for t in Type::ALL {
            if t != Type::Any && t != Type::Null && rest.0 & (1 << t as u16) != 0 {
                names.push(t.short_name());
            }
        }
        names.join("|")
    }
}

/// What validation knows about the attributes of the features reaching an expression.
#[derive(Debug, Clone, Copy)]
pub struct TypeEnv<'a> {
    /// Known attributes and their types.
    pub attributes: &'a [(String, Type)],
    /// More attributes may exist than those listed (the schema is not fully known before
    /// reading): an unlisted name is then of type Any, not an error.
    pub open: bool,
}

/// One static problem in an expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypeProblem {
    /// What is wrong, in the workflow author's words (lowercase, no trailing period).
    pub message: String,
    /// 0-based character (not byte) offset in the expression source: the operator or the
    /// offending operand.
    pub offset: usize,
    /// A suggestion (`did you mean "name"?`), when there is one.
    pub help: Option<String>,
}

impl fmt::Display for TypeProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at column {}", self.message, self.offset + 1)?;
        if let Some(help) = &self.help {
            write!(f, "; {help}")?;
        }
        Ok(())
    }
}

impl Expr {
    /// The expression's result type, or every problem found (not only the first).
    ///
    /// A problem is reported only where the expression would fail, or compare to a constant
    /// answer, on every feature whose attributes have the types in `env`; an attribute of
    /// type [`Type::Any`] passes every check.
    pub fn check(&self, env: &TypeEnv) -> Result<Type, Vec<TypeProblem>> {
        let mut c = Checker {
            src: &self.inner.source,
            env,
            problems: Vec::new(),
        };
        let t = c.ty(&self.inner.ast);
        if c.problems.is_empty() {
            Ok(t)
        } else {
            Err(c.problems)
        }
    }

    /// As [`Expr::check`], for an expression used as a condition (a filter): its result
    /// must be a bool (or unknown, or null).
    pub fn check_condition(&self, env: &TypeEnv) -> Result<(), Vec<TypeProblem>> {
        match self.check(env)? {
            Type::Bool | Type::Any | Type::Null => Ok(()),
            t => Err(vec![TypeProblem {
                message: format!("a condition must be true or false, but this gives {t}"),
                offset: char_offset(&self.inner.source, self.inner.ast.offset),
                help: Some("compare it, e.g. `value > 0`".into()),
            }]),
        }
    }
}

fn char_offset(src: &str, byte: usize) -> usize {
    src.get(..byte).map_or(byte, |s| s.chars().count())
}

struct Checker<'s, 'e> {
    src: &'s str,
    env: &'e TypeEnv<'e>,
    problems: Vec<TypeProblem>,
}

/// The common type of two values that may meet (the branches of `if`, `coalesce`).
fn common(a: Type, b: Type) -> Type {
    match (a, b) {
        _ if a == b => a,
        (Type::Null, t) | (t, Type::Null) => t,
        (Type::Int, Type::Float) | (Type::Float, Type::Int) => Type::Float,
        _ => Type::Any,
    }
}

/// How two known types relate under comparison.
enum Cmp {
    /// Ordered (`<` and `==` alike).
    Ordered,
    /// Equality only (arrays, maps).
    EqualityOnly,
    /// Never equal, never ordered.
    Never,
}

fn relate(a: Type, b: Type) -> Cmp {
    use Type as T;
    match (a, b) {
        _ if a.is_open() || b.is_open() => Cmp::Ordered,
        _ if a.is_number() && b.is_number() => Cmp::Ordered,
        (T::Date, T::DateTime | T::LocalDateTime) | (T::DateTime | T::LocalDateTime, T::Date) => {
            Cmp::Ordered
        }
        (T::Array, T::Array) | (T::Map, T::Map) => Cmp::EqualityOnly,
        (T::Geometry, _) | (_, T::Geometry) => Cmp::Never,
        _ if a == b => Cmp::Ordered,
        _ => Cmp::Never,
    }
}

impl Checker<'_, '_> {
    fn problem(&mut self, message: String, byte_offset: usize, help: Option<String>) {
        self.problems.push(TypeProblem {
            message,
            offset: char_offset(self.src, byte_offset),
            help,
        });
    }

    /// An operand as the author wrote it, for messages: `` `value` ``, `"abc"`, `2`.
    fn what(&self, ast: &Ast, fallback: &str) -> String {
        match &ast.kind {
            AstKind::Attr(name) => format!("`{name}`"),
            AstKind::Geometry => format!("`{GEOMETRY}`"),
            AstKind::Lit(Value::String(s)) => format!("{s:?}"),
            AstKind::Lit(v @ (Value::Int(_) | Value::Float(_) | Value::Bool(_))) => {
                format!("`{v}`")
            }
            AstKind::Call(f, _) => format!("`{}(…)`", f.name()),
            _ => fallback.to_owned(),
        }
    }

    fn attr(&mut self, name: &str, offset: usize) -> Type {
        if let Some((_, t)) = self.env.attributes.iter().find(|(n, _)| n == name) {
            return *t;
        }
        if !self.env.open {
            let near = nearest(name, self.env.attributes.iter().map(|(n, _)| n.as_str()));
            self.problem(
                format!("unknown attribute `{name}`"),
                offset,
                did_you_mean(&near),
            );
        }
        Type::Any
    }

    /// A bool operand of a logical operator.
    fn condition(&mut self, ast: &Ast, op: &str) {
        let t = self.ty(ast);
        if !matches!(t, Type::Bool) && !t.is_open() {
            let what = self.what(ast, "this operand");
            self.problem(
                format!("`{op}` needs true or false, but {what} is {t}"),
                ast.offset,
                Some("compare it, e.g. `x > 0` or `!is_null(x)`".into()),
            );
        }
    }

    fn ty(&mut self, ast: &Ast) -> Type {
        match &ast.kind {
            AstKind::Lit(v) => Type::of(v),
            AstKind::Attr(name) => self.attr(name, ast.offset),
            AstKind::Geometry => Type::Geometry,
            AstKind::List(items) => {
                for item in items {
                    self.ty(item);
                }
                Type::Array
            }
            AstKind::Neg(a) => {
                let t = self.ty(a);
                if t.is_number() || t.is_open() {
                    t
                } else {
                    self.problem(format!("cannot negate {t}"), ast.offset, None);
                    Type::Any
                }
            }
            AstKind::Not(a) => {
                self.condition(a, "not");
                Type::Bool
            }
            AstKind::And(items) | AstKind::Or(items) => {
                let op = if matches!(ast.kind, AstKind::And(_)) {
                    "&&"
                } else {
                    "||"
                };
                for item in items {
                    self.condition(item, op);
                }
                Type::Bool
            }
            AstKind::Cmp(op, a, b) => {
                let (ta, tb) = (self.ty(a), self.ty(b));
                self.comparison(*op, (a, ta), (b, tb), ast.offset);
                Type::Bool
            }
            AstKind::In(x, list) => {
                self.membership(x, list, ast.offset);
                Type::Bool
            }
            AstKind::Arith(op, a, b) => {
                let (ta, tb) = (self.ty(a), self.ty(b));
                self.arithmetic(*op, (a, ta), (b, tb), ast.offset)
            }
            AstKind::Call(func, args) => {
                let types: Vec<Type> = args.iter().map(|a| self.ty(a)).collect();
                let info = super::catalog::info(*func);
                self.call(info, args, &types)
            }
        }
    }

    fn comparison(&mut self, op: CmpOp, a: (&Ast, Type), b: (&Ast, Type), offset: usize) {
        let ((a, ta), (b, tb)) = (a, b);
        match relate(ta, tb) {
            Cmp::Ordered => {}
            Cmp::EqualityOnly if matches!(op, CmpOp::Eq | CmpOp::Ne) => {}
            Cmp::EqualityOnly => self.problem(
                format!(
                    "{} do not order: only `==` and `!=` compare them",
                    plural(ta)
                ),
                offset,
                None,
            ),
            Cmp::Never => {
                let (wa, wb) = (
                    self.what(a, "the left side"),
                    self.what(b, "the right side"),
                );
                let consequence = match op {
                    CmpOp::Eq => ", so `==` is always false",
                    CmpOp::Ne => ", so `!=` is always true",
                    _ => "",
                };
                let help = match (ta, tb) {
                    (Type::DateTime, Type::LocalDateTime)
                    | (Type::LocalDateTime, Type::DateTime) => Some(
                        "a local datetime has no time zone; convert explicitly with to_datetime(…)"
                            .into(),
                    ),
                    (t, Type::String) | (Type::String, t) if t.is_number() => {
                        Some("convert one side: to_float(…) or to_string(…)".into())
                    }
                    _ => None,
                };
                self.problem(
                    format!("{wa} is {ta} and {wb} is {tb}: they never compare{consequence}"),
                    offset,
                    help,
                );
            }
        }
    }

    fn membership(&mut self, x: &Ast, list: &Ast, offset: usize) {
        let tx = self.ty(x);
        if let AstKind::List(items) = &list.kind {
            let types: Vec<Type> = items.iter().map(|i| self.ty(i)).collect();
            let never =
                !types.is_empty() && types.iter().all(|t| matches!(relate(tx, *t), Cmp::Never));
            if never {
                let what = self.what(x, "the left side");
                let kinds = types.iter().map(|t| t.name()).collect::<Vec<_>>();
                let mut kinds_unique: Vec<&str> = Vec::new();
                for k in kinds {
                    if !kinds_unique.contains(&k) {
                        kinds_unique.push(k);
                    }
                }
                self.problem(
                    format!(
                        "{what} is {tx} and the list holds {}: `in` is always false",
                        kinds_unique.join(" and ")
                    ),
                    offset,
                    None,
                );
            }
            return;
        }
        let tl = self.ty(list);
        if !matches!(tl, Type::Array) && !tl.is_open() {
            let what = self.what(list, "the right side");
            let help = match tl {
                Type::String => Some(format!(
                    "to search in a string use contains(…, …); for a list write [{}]",
                    match &list.kind {
                        AstKind::Lit(Value::String(s)) => format!("{s:?}"),
                        _ => "…".into(),
                    }
                )),
                _ => None,
            };
            self.problem(
                format!("`in` needs a list on the right, but {what} is {tl}"),
                list.offset,
                help,
            );
        }
    }

    fn arithmetic(&mut self, op: ArithOp, a: (&Ast, Type), b: (&Ast, Type), offset: usize) -> Type {
        let ((a, ta), (b, tb)) = (a, b);
        use Type as T;
        match (ta, tb) {
            (T::Int, T::Int) if op == ArithOp::Div => return T::Float,
            (T::Int, T::Int) => return T::Int,
            (T::Float, T::Float) | (T::Int, T::Float) | (T::Float, T::Int) => return T::Float,
            (T::String, T::String) if op == ArithOp::Add => return T::String,
            (T::Null, _) | (_, T::Null) => return T::Null,
            _ => {}
        }
        // Which known operand can never take part (a string may, in `+`, with another one).
        let fits = |t: Type, other: Type| {
            t.is_number()
                || t.is_open()
                || (op == ArithOp::Add && t == T::String && (other == T::String || other.is_open()))
        };
        let (bad_a, bad_b) = (!fits(ta, tb), !fits(tb, ta));
        if !bad_a && !bad_b {
            // Any with a number or a string: the result is not known.
            return match (ta, tb) {
                (T::Any, t) | (t, T::Any) if t.is_number() && op != ArithOp::Add => {
                    if op == ArithOp::Div { T::Float } else { T::Any }
                }
                _ => T::Any,
            };
        }
        let help = if op == ArithOp::Add && (ta == T::String || tb == T::String) {
            Some("to join text with other values use concat(…)".into())
        } else if [ta, tb]
            .iter()
            .any(|t| matches!(t, T::Date | T::DateTime | T::LocalDateTime))
        {
            Some("use date_add(…) and date_diff(…) for date arithmetic".into())
        } else {
            None
        };
        if ta.is_open() || tb.is_open() {
            let (bad, t) = if bad_a { (a, ta) } else { (b, tb) };
            let what = self.what(bad, "an operand");
            self.problem(
                format!("`{}` needs numbers, but {what} is {t}", op.symbol()),
                bad.offset,
                help,
            );
            return T::Any;
        }
        let message = match op {
            ArithOp::Add => format!("cannot add {ta} and {tb}"),
            ArithOp::Sub => format!("cannot subtract {tb} from {ta}"),
            ArithOp::Mul => format!("cannot multiply {ta} by {tb}"),
            ArithOp::Div => format!("cannot divide {ta} by {tb}"),
            ArithOp::Rem => format!("cannot take the remainder of {ta} divided by {tb}"),
        };
        self.problem(message, offset, help);
        T::Any
    }

    fn call(&mut self, info: &FuncInfo, args: &[Ast], types: &[Type]) -> Type {
        let mut ok = true;
        for (i, (arg, t)) in args.iter().zip(types).enumerate() {
            let Some(param) = info.params.get(i).or(info.params.last()) else {
                continue;
            };
            if !param.accepts.accepts(*t) {
                ok = false;
                let what = self.what(arg, "the argument");
                let help = (param.accepts == TypeSet::of(Type::String) && *t != Type::Geometry)
                    .then(|| "convert it with to_string(…)".to_owned());
                self.problem(
                    format!(
                        "`{}` expects {} as `{}`, but {what} is {t}",
                        info.name,
                        param.accepts.describe(),
                        param.name
                    ),
                    arg.offset,
                    help,
                );
            }
        }
        if !ok {
            return Type::Any;
        }
        let result = match info.ret {
            Ret::Is(t) => t,
            Ret::Arg(n) => match types.get(n) {
                Some(t) => *t,
                None => Type::Any,
            },
            Ret::Common(n) => {
                let known = types.iter().skip(n).copied();
                known.reduce(common).unwrap_or(Type::Any)
            }
        };
        if info.func == Func::DateDiff
            && let [ta, tb, ..] = types
            && matches!(
                (ta, tb),
                (Type::DateTime, Type::LocalDateTime) | (Type::LocalDateTime, Type::DateTime)
            )
        {
            self.problem(
                format!("`date_diff` of {ta} and {tb}: the local one has no time zone"),
                args[1].offset,
                Some("convert it explicitly with to_datetime(…)".into()),
            );
            return Type::Any;
        }
        if matches!(info.func, Func::Min | Func::Max) {
            let known: Vec<(usize, Type)> = types
                .iter()
                .copied()
                .enumerate()
                .filter(|(_, t)| !t.is_open())
                .collect();
            if let Some((first, rest)) = known.split_first() {
                for (i, t) in rest {
                    if !matches!(relate(first.1, *t), Cmp::Ordered)
                        || matches!(t, Type::Array | Type::Map)
                    {
                        self.problem(
                            format!("`{}` cannot order {} with {t}", info.name, first.1),
                            args[*i].offset,
                            None,
                        );
                        return Type::Any;
                    }
                }
            }
        }
        result
    }
}

fn plural(t: Type) -> &'static str {
    match t {
        Type::Array => "arrays",
        Type::Map => "maps",
        _ => "these values",
    }
}
