//! The catalog of built-in functions: their names and how many arguments each takes, checked
//! when compiling. What they do is in `functions.rs`, which the compiler binds to each call.

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
}

/// A function's name and how many arguments it takes.
pub(crate) struct FuncInfo {
    pub name: &'static str,
    pub func: Func,
    pub min: usize,
    pub max: usize,
}

const MANY: usize = usize::MAX;

const fn info(name: &'static str, func: Func, min: usize, max: usize) -> FuncInfo {
    FuncInfo {
        name,
        func,
        min,
        max,
    }
}

/// Every function, in the order of the module docs.
pub(crate) const FUNCTIONS: &[FuncInfo] = &[
    info("is_null", Func::IsNull, 1, 1),
    info("coalesce", Func::Coalesce, 1, MANY),
    info("if", Func::If, 3, 3),
    info("len", Func::Len, 1, 1),
    info("lower", Func::Lower, 1, 1),
    info("upper", Func::Upper, 1, 1),
    info("trim", Func::Trim, 1, 1),
    info("contains", Func::Contains, 2, 2),
    info("starts_with", Func::StartsWith, 2, 2),
    info("ends_with", Func::EndsWith, 2, 2),
    info("concat", Func::Concat, 1, MANY),
    info("substr", Func::Substr, 2, 3),
    info("abs", Func::Abs, 1, 1),
    info("round", Func::Round, 1, 2),
    info("floor", Func::Floor, 1, 1),
    info("ceil", Func::Ceil, 1, 1),
    info("sqrt", Func::Sqrt, 1, 1),
    info("min", Func::Min, 1, MANY),
    info("max", Func::Max, 1, MANY),
    info("to_int", Func::ToInt, 1, 1),
    info("to_float", Func::ToFloat, 1, 1),
    info("to_string", Func::ToString, 1, 1),
    info("to_date", Func::ToDate, 1, 1),
    info("to_datetime", Func::ToDatetime, 1, 1),
    info("year", Func::Year, 1, 1),
    info("month", Func::Month, 1, 1),
    info("day", Func::Day, 1, 1),
    info("has_geometry", Func::HasGeometry, 0, 0),
    info("geometry_type", Func::GeometryType, 0, 0),
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
