//! The catalog of built-in functions: names, signatures (checked when compiling and by the
//! type checker) and help texts. What they do is in `functions.rs`, which the compiler binds
//! to each call.

use super::types::{Type, TypeSet};

/// A built-in function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Func {
    IsNull,
    Coalesce,
    If,
    Len,
    Lower,
    Upper,
    Trim,
    Contains,
    StartsWith,
    EndsWith,
    Concat,
    Substr,
    Abs,
    Round,
    Floor,
    Ceil,
    Sqrt,
    Min,
    Max,
    ToInt,
    ToFloat,
    ToString,
    ToDate,
    ToDatetime,
    Year,
    Month,
    Day,
    HasGeometry,
    GeometryType,
    Replace,
    RegexMatch,
    RegexReplace,
    RegexExtract,
    Split,
    Pad,
    Format,
    Clamp,
    Hour,
    Minute,
    Second,
    Weekday,
    DateAdd,
    DateDiff,
    FormatDate,
    ParseDate,
    ParseDatetime,
    ParseLocalDatetime,
    Area,
    Length,
    X,
    Y,
    IsValid,
}

/// One parameter of a function: its name (for messages and help) and the types it accepts.
pub(crate) struct Param {
    pub name: &'static str,
    pub accepts: TypeSet,
}

/// The static type of a function's result.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Ret {
    /// Always this type (or null).
    Is(Type),
    /// The type of argument `n` (`abs(int)` is an int, `abs(float)` a float).
    Arg(usize),
    /// The common type of the arguments from `n` on (`coalesce`, `if`, `min`).
    Common(usize),
}

/// Everything about a built-in function: name, signature, and its help (a one-line
/// description and an example). The type checker, the parser's arity check and
/// `sluice functions` all read this one table.
pub(crate) struct FuncInfo {
    pub name: &'static str,
    pub func: Func,
    /// The parameters; when `variadic`, the last one repeats.
    pub params: &'static [Param],
    /// Arguments required (the others are optional).
    pub min: usize,
    /// Most arguments accepted (`MANY` when variadic).
    pub max: usize,
    pub ret: Ret,
    pub description: &'static str,
    pub example: &'static str,
}

pub(crate) const MANY: usize = usize::MAX;

const fn p(name: &'static str, accepts: TypeSet) -> Param {
    Param { name, accepts }
}

/// A function with a fixed parameter list, of which the first `min` are required.
const fn fixed(
    name: &'static str,
    func: Func,
    params: &'static [Param],
    min: usize,
    ret: Ret,
    description: &'static str,
    example: &'static str,
) -> FuncInfo {
    FuncInfo {
        name,
        func,
        params,
        min,
        max: params.len(),
        ret,
        description,
        example,
    }
}

/// A function whose last parameter repeats (at least `min` arguments in all).
const fn variadic(
    name: &'static str,
    func: Func,
    params: &'static [Param],
    min: usize,
    ret: Ret,
    description: &'static str,
    example: &'static str,
) -> FuncInfo {
    FuncInfo {
        name,
        func,
        params,
        min,
        max: MANY,
        ret,
        description,
        example,
    }
}

use Ret::{Arg, Common, Is};
const ANY: TypeSet = TypeSet::ANY;
const VALUE: TypeSet = TypeSet::VALUE;
const STR: TypeSet = TypeSet::of(Type::String);
const BOOL: TypeSet = TypeSet::of(Type::Bool);
const NUM: TypeSet = TypeSet::NUMBER;
/// An integer argument (a float without fraction is accepted when evaluating).
const INT: TypeSet = TypeSet::INTEGER;
const TEMPORAL: TypeSet = TypeSet::TEMPORAL;
const GEOM: TypeSet = TypeSet::of(Type::Geometry);
const LENGTHY: TypeSet = TypeSet::of(Type::String)
    .with(Type::Array)
    .with(Type::Map)
    .with(Type::Bytes);
const SCALAR: TypeSet = NUM.with(Type::Bool).with(Type::String);

/// Every function, grouped as in the module docs (one entry a line or two, so the table
/// reads as a table).
#[rustfmt::skip]
pub(crate) const FUNCTIONS: &[FuncInfo] = &[
    // Nulls and conditions
    fixed("is_null", Func::IsNull, &[p("x", ANY)], 1, Is(Type::Bool),
        "whether `x` is null (never null itself)", "is_null(country)"),
    variadic("coalesce", Func::Coalesce, &[p("x", VALUE)], 1, Common(0),
        "the first argument that is not null, or null; later arguments are not evaluated",
        "coalesce(name, \"unnamed\")"),
    fixed("if", Func::If, &[p("cond", BOOL), p("then", VALUE), p("else", VALUE)], 3, Common(1),
        "`then` when `cond` is true, else `else` (null counts as false); only one branch is evaluated",
        "if(value > 500, \"high\", \"low\")"),
    // Strings
    fixed("len", Func::Len, &[p("x", LENGTHY)], 1, Is(Type::Int),
        "characters of a string, items of an array or map, bytes of a byte string", "len(name)"),
    fixed("lower", Func::Lower, &[p("s", STR)], 1, Is(Type::String),
        "the string in lower case", "lower(name)"),
    fixed("upper", Func::Upper, &[p("s", STR)], 1, Is(Type::String),
        "the string in upper case", "upper(name)"),
    fixed("trim", Func::Trim, &[p("s", STR)], 1, Is(Type::String),
        "the string without surrounding whitespace", "trim(name)"),
    fixed("contains", Func::Contains, &[p("s", STR), p("sub", STR)], 2, Is(Type::Bool),
        "whether `s` contains `sub`", "contains(name, \"Park\")"),
    fixed("starts_with", Func::StartsWith, &[p("s", STR), p("prefix", STR)], 2, Is(Type::Bool),
        "whether `s` starts with `prefix`", "starts_with(name, \"St \")"),
    fixed("ends_with", Func::EndsWith, &[p("s", STR), p("suffix", STR)], 2, Is(Type::Bool),
        "whether `s` ends with `suffix`", "ends_with(file, \".csv\")"),
    variadic("concat", Func::Concat, &[p("x", VALUE)], 1, Is(Type::String),
        "the arguments' text forms joined; nulls are skipped (never null)",
        "concat(name, \" (\", category, \")\")"),
    fixed("substr", Func::Substr, &[p("s", STR), p("start", INT), p("len", INT)], 2, Is(Type::String),
        "characters from `start` (0-based, negative counts from the end), at most `len` of them",
        "substr(code, 0, 3)"),
    fixed("replace", Func::Replace, &[p("s", STR), p("from", STR), p("to", STR)], 3, Is(Type::String),
        "`s` with every `from` replaced by `to`", "replace(name, \"St.\", \"Street\")"),
    fixed("regex_match", Func::RegexMatch, &[p("s", STR), p("pattern", STR)], 2, Is(Type::Bool),
        "whether the regular expression `pattern` (a constant) matches somewhere in `s`",
        "regex_match(code, \"^[A-Z]{2}[0-9]+$\")"),
    fixed("regex_replace", Func::RegexReplace, &[p("s", STR), p("pattern", STR), p("to", STR)], 3, Is(Type::String),
        "`s` with every match of `pattern` replaced by `to` ($1, ${name}: groups)",
        "regex_replace(phone, \"[^0-9]\", \"\")"),
    fixed("regex_extract", Func::RegexExtract, &[p("s", STR), p("pattern", STR), p("group", INT)], 2, Is(Type::String),
        "the first match of `pattern` in `s` (or its group number `group`); null if none",
        "regex_extract(name, \"[0-9]+\")"),
    fixed("split", Func::Split, &[p("s", STR), p("sep", STR)], 2, Is(Type::Array),
        "the pieces of `s` between the separators `sep`, an array of strings",
        "split(tags, \";\")"),
    fixed("pad", Func::Pad, &[p("s", STR), p("width", INT), p("side", STR), p("fill", STR)], 2, Is(Type::String),
        "`s` padded to `width` characters with `fill` (default a space) on `side`: \"left\" (default) or \"right\"",
        "pad(to_string(id), 5, \"left\", \"0\")"),
    variadic("format", Func::Format, &[p("template", STR), p("x", VALUE)], 1, Is(Type::String),
        "`template` with each `{}` replaced by the next argument's text (`{{` and `}}` are braces)",
        "format(\"{}-{}\", category, id)"),
    // Numbers
    fixed("abs", Func::Abs, &[p("x", NUM)], 1, Arg(0),
        "the absolute value (an integer stays an integer)", "abs(delta)"),
    fixed("round", Func::Round, &[p("x", NUM), p("digits", INT)], 1, Arg(0),
        "rounded half away from zero to `digits` decimals (default 0; negative: tens, hundreds...)",
        "round(value * 1.1, 2)"),
    fixed("floor", Func::Floor, &[p("x", NUM)], 1, Arg(0),
        "rounded down (an integer stays an integer)", "floor(value)"),
    fixed("ceil", Func::Ceil, &[p("x", NUM)], 1, Arg(0),
        "rounded up (an integer stays an integer)", "ceil(value)"),
    fixed("sqrt", Func::Sqrt, &[p("x", NUM)], 1, Is(Type::Float),
        "the square root, a float; a negative `x` is an error", "sqrt(area)"),
    fixed("clamp", Func::Clamp, &[p("x", NUM), p("lo", NUM), p("hi", NUM)], 3, Common(0),
        "`x` limited to `lo`..`hi` (an error if `lo` > `hi`)", "clamp(value, 0, 100)"),
    variadic("min", Func::Min, &[p("x", VALUE)], 1, Common(0),
        "the smallest argument; nulls are skipped, null if all are null", "min(value, 1000)"),
    variadic("max", Func::Max, &[p("x", VALUE)], 1, Common(0),
        "the largest argument; nulls are skipped, null if all are null", "max(value, 0)"),
    // Conversions
    fixed("to_int", Func::ToInt, &[p("x", SCALAR)], 1, Is(Type::Int),
        "an integer from a number (truncated toward zero), a bool or a string (null if not a number)",
        "to_int(\"42\")"),
    fixed("to_float", Func::ToFloat, &[p("x", SCALAR)], 1, Is(Type::Float),
        "a float from a number, a bool or a string (null if not a number)", "to_float(text)"),
    fixed("to_string", Func::ToString, &[p("x", VALUE)], 1, Is(Type::String),
        "the text form: floats as 1.0, dates as 2024-05-01, datetimes as 2024-05-01T10:00:00Z",
        "to_string(id)"),
    fixed("to_date", Func::ToDate, &[p("x", TEMPORAL.with(Type::String))], 1, Is(Type::Date),
        "a date from a string (YYYY-MM-DD or a datetime; null if unparsable) or a date/datetime",
        "to_date(\"2024-05-01\")"),
    fixed("to_datetime", Func::ToDatetime, &[p("x", TEMPORAL.with(Type::String))], 1, Is(Type::DateTime),
        "a datetime from a string (RFC 3339, or YYYY-MM-DD HH:MM:SS as UTC), a date or a datetime",
        "to_datetime(\"2024-05-01T10:00:00Z\")"),
    // Dates
    fixed("year", Func::Year, &[p("d", TEMPORAL)], 1, Is(Type::Int),
        "the year of a date or datetime (UTC for a datetime)", "year(ts)"),
    fixed("month", Func::Month, &[p("d", TEMPORAL)], 1, Is(Type::Int),
        "the month (1-12) of a date or datetime", "month(ts)"),
    fixed("day", Func::Day, &[p("d", TEMPORAL)], 1, Is(Type::Int),
        "the day of the month (1-31) of a date or datetime", "day(ts)"),
    fixed("hour", Func::Hour, &[p("d", TEMPORAL)], 1, Is(Type::Int),
        "the hour (0-23) of a datetime (UTC) or local datetime; 0 for a date", "hour(ts)"),
    fixed("minute", Func::Minute, &[p("d", TEMPORAL)], 1, Is(Type::Int),
        "the minute (0-59) of a datetime or local datetime", "minute(ts)"),
    fixed("second", Func::Second, &[p("d", TEMPORAL)], 1, Is(Type::Int),
        "the second (0-59) of a datetime or local datetime", "second(ts)"),
    fixed("weekday", Func::Weekday, &[p("d", TEMPORAL)], 1, Is(Type::Int),
        "the ISO day of the week: 1 for Monday to 7 for Sunday", "weekday(ts) >= 6"),
    fixed("date_add", Func::DateAdd, &[p("d", TEMPORAL), p("n", INT), p("unit", STR)], 3, Arg(0),
        "`d` moved by `n` units: second, minute, hour, day, week, month or year (a date: day and up)",
        "date_add(ts, 3, \"day\")"),
    fixed("date_diff", Func::DateDiff, &[p("a", TEMPORAL), p("b", TEMPORAL), p("unit", STR)], 3, Is(Type::Int),
        "`a` - `b` in whole units (toward zero): second, minute, hour, day or week",
        "date_diff(closed, opened, \"day\")"),
    fixed("format_date", Func::FormatDate, &[p("d", TEMPORAL), p("format", STR)], 2, Is(Type::String),
        "the date or datetime written with a strftime `format` (%Y year, %m month, %d day, %H hour...)",
        "format_date(ts, \"%Y-%m\")"),
    fixed("parse_date", Func::ParseDate, &[p("s", STR), p("format", STR)], 2, Is(Type::Date),
        "the date `s` written in strftime `format`; null if it does not match",
        "parse_date(day, \"%d/%m/%Y\")"),
    fixed("parse_datetime", Func::ParseDatetime, &[p("s", STR), p("format", STR)], 2, Is(Type::DateTime),
        "the datetime `s` in strftime `format`, which must give the offset (%z); null if it does not match",
        "parse_datetime(t, \"%Y-%m-%d %H:%M %z\")"),
    fixed("parse_local_datetime", Func::ParseLocalDatetime, &[p("s", STR), p("format", STR)], 2, Is(Type::LocalDateTime),
        "the wall-clock datetime `s` (no time zone) in strftime `format`; null if it does not match",
        "parse_local_datetime(t, \"%d/%m/%Y %H:%M\")"),
    // Geometry
    fixed("has_geometry", Func::HasGeometry, &[], 0, Is(Type::Bool),
        "whether the feature has a geometry", "has_geometry()"),
    fixed("geometry_type", Func::GeometryType, &[p("g", GEOM)], 0, Is(Type::String),
        "the geometry's type (\"Point\", \"Polygon\"...); without argument, the feature's geometry",
        "geometry_type(geometry) == \"Polygon\""),
    fixed("area", Func::Area, &[p("g", GEOM)], 1, Is(Type::Float),
        "the planar area, in the square units of the coordinates (0 for points and lines)",
        "area(geometry) > 1000"),
    fixed("length", Func::Length, &[p("g", GEOM)], 1, Is(Type::Float),
        "the planar length of lines, or perimeter of polygons, in the units of the coordinates",
        "length(geometry)"),
    fixed("x", Func::X, &[p("g", GEOM)], 1, Is(Type::Float),
        "the x coordinate of a point (an error for another geometry)", "x(geometry)"),
    fixed("y", Func::Y, &[p("g", GEOM)], 1, Is(Type::Float),
        "the y coordinate of a point (an error for another geometry)", "y(geometry)"),
    fixed("is_valid", Func::IsValid, &[p("g", GEOM)], 1, Is(Type::Bool),
        "whether the geometry is valid (closed rings, no self-intersection...)", "is_valid(geometry)"),
];

impl FuncInfo {
    /// "1 argument", "2 or 3 arguments", "at least 1 argument".
    pub(crate) fn arity_text(&self) -> String {
        let plural = |n: usize| if n == 1 { "argument" } else { "arguments" };
        match (self.min, self.max) {
            (0, 0) => "no arguments".into(),
            (a, MANY) => format!("at least {a} {}", plural(a)),
            (a, b) if a == b => format!("{a} {}", plural(a)),
            (a, b) if b == a + 1 => format!("{a} or {b} arguments"),
            (a, b) => format!("{a} to {b} arguments"),
        }
    }
}

impl Func {
    /// The function's name in the language.
    pub(crate) fn name(self) -> &'static str {
        FUNCTIONS
            .iter()
            .find(|i| i.func == self)
            .map_or("?", |i| i.name)
    }

    /// Whether the result depends only on the arguments (so constant arguments fold).
    pub(crate) fn is_pure(self) -> bool {
        !matches!(self, Func::HasGeometry | Func::GeometryType)
    }
}

/// The catalog entry of `func`.
///
/// # Panics
///
/// Never: every `Func` has an entry (a test checks).
pub(crate) fn info(func: Func) -> &'static FuncInfo {
    FUNCTIONS
        .iter()
        .find(|i| i.func == func)
        .expect("every function is in the catalog")
}

/// The function called `name`.
pub(crate) fn lookup(name: &str) -> Option<&'static FuncInfo> {
    FUNCTIONS.iter().find(|i| i.name == name)
}

/// The known function name nearest to `name`, if it is near enough to be a likely typo.
pub(crate) fn suggest(name: &str) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    FUNCTIONS
        .iter()
        .map(|i| (strsim::levenshtein(&lower, i.name), i.name))
        .filter(|(d, n)| *d <= 2.max(n.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| n)
}

/// The help of a built-in function, from the catalog the evaluator uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionDoc {
    /// The function's name.
    pub name: &'static str,
    /// Its signature: `round(x: number[, digits: int]) -> number`.
    pub signature: String,
    /// One line on what it gives.
    pub description: &'static str,
    /// An example call.
    pub example: &'static str,
}

impl FuncInfo {
    fn doc(&self) -> FunctionDoc {
        let mut sig = format!("{}(", self.name);
        for (i, p) in self.params.iter().enumerate() {
            let optional = i >= self.min;
            if i > 0 {
                sig.push_str(if optional { "[, " } else { ", " });
            } else if optional {
                sig.push('[');
            }
            sig.push_str(p.name);
            sig.push_str(": ");
            sig.push_str(&p.accepts.short());
        }
        if self.max == MANY {
            sig.push_str(", ...");
        } else {
            let optional = self.params.len().saturating_sub(self.min);
            sig.push_str(&"]".repeat(optional));
        }
        let ret = match self.ret {
            Ret::Is(t) => t.short_name().to_owned(),
            Ret::Arg(n) => self
                .params
                .get(n)
                .map_or("any".into(), |p| p.accepts.short()),
            Ret::Common(_) => "any".into(),
        };
        sig.push_str(") -> ");
        sig.push_str(&ret);
        FunctionDoc {
            name: self.name,
            signature: sig,
            description: self.description,
            example: self.example,
        }
    }
}

/// The help of every built-in function, in the catalog's order.
pub fn functions() -> Vec<FunctionDoc> {
    FUNCTIONS.iter().map(FuncInfo::doc).collect()
}

/// The help of the function called `name`.
pub fn function(name: &str) -> Option<FunctionDoc> {
    lookup(name).map(FuncInfo::doc)
}

/// The function names nearest to `name` (at most three, best first), for "did you mean".
pub fn nearest_functions(name: &str) -> Vec<&'static str> {
    crate::error::nearest(name, FUNCTIONS.iter().map(|i| i.name))
}
