//! Tables of cases for the string, date, number and geometry functions (nulls, wrong types,
//! edge values), the sandbox limits, and the catalog itself.

use super::catalog::FUNCTIONS;
use super::{EvalError, Expr, Type, TypeEnv};
use crate::feature::{Feature, Geometry, Schema, Value, parse_date, parse_datetime};

/// A feature with a string, numbers, a datetime, a local datetime, a date and a long string.
fn sample() -> Feature {
    let schema = Schema::new(["name", "n", "f", "ts", "local", "d", "long", "nan"]);
    Feature::new(
        1,
        schema,
        vec![
            "Central Park".into(),
            Value::Int(-7),
            Value::Float(2.5),
            Value::DateTime(parse_datetime("2024-02-29T23:30:15Z").unwrap()),
            Value::LocalDateTime(parse_datetime("2024-03-01T08:05:00Z").unwrap()),
            Value::Date(parse_date("2024-02-29").unwrap()),
            "a".repeat(600_000).into(),
            Value::Float(f64::NAN),
        ],
    )
}

fn run_on(src: &str, f: &Feature) -> Result<Value, EvalError> {
    Expr::compile(src)
        .unwrap_or_else(|e| panic!("`{src}` does not compile: {e}"))
        .evaluator()
        .eval(f)
}

fn s(v: &str) -> Value {
    Value::from(v)
}
fn i(v: i64) -> Value {
    Value::Int(v)
}
fn fl(v: f64) -> Value {
    Value::Float(v)
}
fn b(v: bool) -> Value {
    Value::Bool(v)
}
fn date(t: &str) -> Value {
    Value::Date(parse_date(t).unwrap())
}
fn dt(t: &str) -> Value {
    Value::DateTime(parse_datetime(t).unwrap())
}
fn local(t: &str) -> Value {
    Value::LocalDateTime(parse_datetime(t).unwrap())
}
const N: Value = Value::Null;

fn table(f: &Feature, cases: &[(&str, Value)]) {
    let mut bad = Vec::new();
    for (src, want) in cases {
        match run_on(src, f) {
            Ok(got) if &got == want || (got.is_nan() && want.is_nan()) => {}
            other => bad.push(format!("`{src}`: want {want:?}, got {other:?}")),
        }
    }
    assert!(bad.is_empty(), "{} failing:\n{}", bad.len(), bad.join("\n"));
}

fn errors(f: &Feature, cases: &[(&str, &str)]) {
    let mut bad = Vec::new();
    for (src, want) in cases {
        match run_on(src, f) {
            Err(e) if e.message.contains(want) => {}
            other => bad.push(format!("`{src}`: want error `{want}`, got {other:?}")),
        }
    }
    assert!(bad.is_empty(), "{} failing:\n{}", bad.len(), bad.join("\n"));
}

fn compile_errors(cases: &[(&str, usize, &str)]) {
    let mut bad = Vec::new();
    for (src, offset, want) in cases {
        match Expr::compile(src) {
            Err(e) if e.offset == *offset && e.message.contains(want) => {}
            other => bad.push(format!("`{src}`: want `{want}` at {offset}, got {other:?}")),
        }
    }
    assert!(bad.is_empty(), "{} failing:\n{}", bad.len(), bad.join("\n"));
}

trait IsNan {
    fn is_nan(&self) -> bool;
}
impl IsNan for Value {
    fn is_nan(&self) -> bool {
        matches!(self, Value::Float(f) if f.is_nan())
    }
}

#[test]
fn string_functions() {
    let f = sample();
    let arr = |items: &[&str]| Value::Array(items.iter().map(|x| s(x)).collect());
    table(
        &f,
        &[
            ("replace(name, 'Park', 'Garden')", s("Central Garden")),
            ("replace('aaa', 'a', 'bb')", s("bbbbbb")),
            ("replace('abc', '', 'x')", s("abc")),
            ("replace('', 'a', 'b')", s("")),
            ("replace(null, 'a', 'b')", N),
            ("replace('a', null, 'b')", N),
            ("regex_match(name, '^C.*k$')", b(true)),
            ("regex_match('', '^$')", b(true)),
            ("regex_match('abc', '[0-9]')", b(false)),
            ("regex_match(null, 'a')", N),
            ("regex_match('a', null)", N),
            ("regex_replace('a1b22c333', '[0-9]+', '#')", s("a#b#c#")),
            (
                r"regex_replace('2024-05-01', '(\\d+)-(\\d+)-(\\d+)', '$3/$2/$1')",
                s("01/05/2024"),
            ),
            ("regex_replace('abc', 'x*', '-')", s("-a-b-c-")),
            ("regex_extract('id: 42, 7', '[0-9]+')", s("42")),
            (r"regex_extract('k=v', '(\\w)=(\\w)', 2)", s("v")),
            ("regex_extract('abc', '[0-9]')", N),
            ("regex_extract('abc', '(x)?abc', 1)", N),
            ("split('a;b;;c', ';')", arr(&["a", "b", "", "c"])),
            ("split('', ',')", arr(&[""])),
            ("split(name, ' ')", arr(&["Central", "Park"])),
            ("len(split('a,b,c', ','))", i(3)),
            ("split(null, ',')", N),
            ("pad('7', 3)", s("  7")),
            ("pad('7', 3, 'left', '0')", s("007")),
            ("pad('7', 3, 'right', '.')", s("7..")),
            ("pad('héllo', 3)", s("héllo")),
            ("pad('é', 3, 'right', 'ü')", s("éüü")),
            ("pad('', 0)", s("")),
            ("pad(null, 3)", N),
            ("pad('a', null)", N),
            ("format('{}-{}', 'a', 1)", s("a-1")),
            ("format('{{}} {}', 2.5)", s("{} 2.5")),
            ("format('none')", s("none")),
            ("format('[{}]', null)", s("[]")),
            ("format(null, 1)", N),
            ("format('{}', d)", s("2024-02-29")),
            ("trim('')", s("")),
            ("starts_with('', '')", b(true)),
        ],
    );
    errors(
        &f,
        &[
            (
                "replace(1, 'a', 'b')",
                "`replace` expects a string, got int",
            ),
            (
                "split('a', '')",
                "`split` needs a separator that is not empty",
            ),
            ("pad('a', -1)", "`pad` width is negative (-1)"),
            (
                "pad('a', 3, 'right', 'ab')",
                "`pad` fill must be one character",
            ),
            (
                "pad('a', 3, 'left', '')",
                "`pad` fill must be one character",
            ),
            (
                "pad('a', 3, name)",
                "`pad` side must be \"left\" or \"right\"",
            ),
            (
                "regex_extract('abc', 'b', 3)",
                "group 3 does not exist (the pattern has 0 groups)",
            ),
            ("regex_extract('abc', 'b', -1)", "group -1 does not exist"),
            ("format(name, 1)", "template has 0 `{}` but 1 values"),
            ("format(name + '{', 1)", "lone `{`"),
            (
                "regex_match(n, 'a')",
                "`regex_match` expects a string, got int",
            ),
        ],
    );
}

#[test]
fn constant_arguments_are_checked_when_compiling() {
    compile_errors(&[
        ("regex_match(name, '(')", 18, "invalid regular expression"),
        ("regex_match(name, pattern)", 18, "needs a constant pattern"),
        (
            "regex_replace(name, 1, 'x')",
            20,
            "expects a string pattern, got int",
        ),
        ("format('{}-{}', 1)", 7, "template has 2 `{}` but 1 values"),
        ("format('{', 1)", 7, "lone `{`"),
        ("format_date(ts, '%Q')", 16, "invalid date format \"%Q\""),
        ("parse_date(s, '%Y-%')", 14, "invalid date format"),
        (
            "parse_datetime(s, '%Y-%m-%d %H:%M')",
            18,
            "needs a format that reads the time-zone offset",
        ),
        (
            "date_add(ts, 1, 'fortnight')",
            16,
            "unknown unit \"fortnight\"",
        ),
        ("date_diff(a, b, 'month')", 16, "`date_diff` counts seconds"),
        (
            "pad('a', 3, 'middle')",
            12,
            "side must be \"left\" or \"right\"",
        ),
    ]);
    // Every problem, not only the first.
    let all = Expr::compile_all("regex_match(a, '(') || format_date(ts, '%Q') == ''").unwrap_err();
    assert_eq!(all.len(), 2, "{all:?}");
    // Folded constants count as constants.
    assert!(Expr::compile("regex_match(name, '^' + 'a')").is_ok());
    assert!(Expr::compile("parse_datetime(s, '%Y-%m-%dT%H:%M:%S%:z')").is_ok());
}

#[test]
fn number_functions() {
    let f = sample();
    table(
        &f,
        &[
            ("clamp(5, 0, 3)", i(3)),
            ("clamp(n, 0, 3)", i(0)),
            ("clamp(-9223372036854775808, 0, 1)", i(0)),
            ("clamp(9223372036854775807, 0, 1)", i(1)),
            ("clamp(f, 0, 10)", fl(2.5)),
            ("clamp(5, 0, 2.5)", fl(2.5)),
            ("clamp(nan, 0, 1)", fl(f64::NAN)),
            ("clamp(null, 0, 1)", N),
            ("clamp(1, null, 2)", N),
            ("round(f)", fl(3.0)),
            ("round(n, -1)", i(-10)),
            ("round(nan, 2)", fl(f64::NAN)),
            ("floor(-2.5)", fl(-3.0)),
            ("ceil(n)", i(-7)),
            ("abs(n)", i(7)),
            ("coalesce(null, n)", i(-7)),
            ("if(n < 0, 'neg', 'pos')", s("neg")),
        ],
    );
    errors(
        &f,
        &[
            ("clamp(1, 3, 2)", "`clamp`: lo (3) is above hi (2)"),
            ("clamp(1.0, 3, 2)", "lo (3) is not at most hi (2)"),
            ("clamp('a', 0, 1)", "`clamp` expects a number, got string"),
            ("abs(-9223372036854775808)", "integer overflow"),
        ],
    );
}

#[test]
fn date_functions() {
    let f = sample();
    table(
        &f,
        &[
            ("hour(ts)", i(23)),
            ("minute(ts)", i(30)),
            ("second(ts)", i(15)),
            ("hour(local)", i(8)),
            ("hour(d)", i(0)),
            ("weekday(d)", i(4)),
            ("weekday(to_date('2024-03-03'))", i(7)),
            ("hour(null)", N),
            // Leap days and month ends.
            ("date_add(d, 1, 'day')", date("2024-03-01")),
            ("date_add(d, 1, 'year')", date("2025-02-28")),
            ("date_add(d, 4, 'year')", date("2028-02-29")),
            (
                "date_add(to_date('2024-01-31'), 1, 'month')",
                date("2024-02-29"),
            ),
            ("date_add(d, -2, 'week')", date("2024-02-15")),
            ("date_add(ts, 30, 'minute')", dt("2024-03-01T00:00:15Z")),
            ("date_add(ts, -1, 'month')", dt("2024-01-29T23:30:15Z")),
            ("date_add(local, 3, 'hour')", local("2024-03-01T11:05:00Z")),
            ("date_add(null, 1, 'day')", N),
            ("date_add(d, null, 'day')", N),
            ("date_diff(to_date('2024-03-01'), d, 'day')", i(1)),
            ("date_diff(d, to_date('2024-03-01'), 'hour')", i(-24)),
            ("date_diff(ts, d, 'hour')", i(23)),
            ("date_diff(ts, d, 'week')", i(0)),
            ("date_diff(local, d, 'minute')", i(1925)),
            ("date_diff(null, d, 'day')", N),
            ("format_date(ts, '%Y-%m')", s("2024-02")),
            (
                "format_date(ts, '%d/%m/%Y %H:%M %z')",
                s("29/02/2024 23:30 +0000"),
            ),
            ("format_date(d, '%A %e %B')", s("Thursday 29 February")),
            ("format_date(local, '%H:%M')", s("08:05")),
            ("format_date(null, '%Y')", N),
            ("parse_date('29/02/2024', '%d/%m/%Y')", date("2024-02-29")),
            ("parse_date('29/02/2023', '%d/%m/%Y')", N),
            ("parse_date('', '%Y')", N),
            (
                "parse_datetime('2024-05-01 12:00 +0200', '%Y-%m-%d %H:%M %z')",
                dt("2024-05-01T10:00:00Z"),
            ),
            (
                "parse_local_datetime('01/05/2024 12:00', '%d/%m/%Y %H:%M')",
                local("2024-05-01T12:00:00Z"),
            ),
            ("parse_local_datetime('garbage', '%d/%m/%Y %H:%M')", N),
            ("parse_date(null, '%Y')", N),
        ],
    );
    errors(
        &f,
        &[
            (
                "date_add(d, 1, 'hour')",
                "a date moves by days, weeks, months or years",
            ),
            ("date_add(d, 9223372036854775807, 'day')", "out of range"),
            (
                "date_add(ts, 9223372036854775807, 'second')",
                "out of range",
            ),
            ("date_add(ts, -9223372036854775808, 'year')", "out of range"),
            (
                "date_add('2024-01-01', 1, 'day')",
                "`date_add` expects a date",
            ),
            (
                "date_diff(ts, local, 'day')",
                "the local one has no time zone",
            ),
            (
                "format_date(local, '%z')",
                "asks for a field that local_datetime does not have",
            ),
            (
                "format_date(d, '%H')",
                "asks for a field that date does not have",
            ),
            ("hour('10:00')", "`hour` expects a date"),
            ("weekday(n)", "`weekday` expects a date"),
        ],
    );
}

fn with_geometry(g: geo_types::Geometry<f64>) -> Feature {
    sample().with_geometry(Some(Geometry::new(g)))
}

#[test]
fn geometry_functions() {
    use geo_types::{LineString, Point, Polygon, line_string, polygon};
    let square: Polygon<f64> =
        polygon![(x: 0.0, y: 0.0), (x: 4.0, y: 0.0), (x: 4.0, y: 3.0), (x: 0.0, y: 3.0)];
    let f = with_geometry(square.into());
    table(
        &f,
        &[
            ("area(geometry)", fl(12.0)),
            ("length(geometry)", fl(14.0)),
            ("geometry_type(geometry)", s("Polygon")),
            ("geometry_type()", s("Polygon")),
            ("is_valid(geometry)", b(true)),
            ("has_geometry()", b(true)),
            ("is_null(geometry)", b(false)),
            ("`geometry`", N),
        ],
    );
    errors(&f, &[("x(geometry)", "`x` needs a point, got a Polygon")]);
    let f = with_geometry(Point::new(1.5, -2.0).into());
    table(
        &f,
        &[
            ("x(geometry)", fl(1.5)),
            ("y(geometry)", fl(-2.0)),
            ("area(geometry)", fl(0.0)),
            ("length(geometry)", fl(0.0)),
        ],
    );
    let line: LineString<f64> = line_string![(x: 0.0, y: 0.0), (x: 3.0, y: 4.0), (x: 3.0, y: 5.0)];
    let f = with_geometry(line.into());
    table(
        &f,
        &[("length(geometry)", fl(6.0)), ("area(geometry)", fl(0.0))],
    );
    // A bow tie crosses itself.
    let bow: Polygon<f64> =
        polygon![(x: 0.0, y: 0.0), (x: 2.0, y: 2.0), (x: 2.0, y: 0.0), (x: 0.0, y: 2.0)];
    table(
        &with_geometry(bow.into()),
        &[("is_valid(geometry)", b(false))],
    );
    // No geometry: null, as for a missing attribute.
    table(
        &sample(),
        &[
            ("area(geometry)", N),
            ("x(geometry)", N),
            ("is_null(geometry)", b(true)),
            ("geometry_type(geometry)", N),
        ],
    );
    errors(
        &sample(),
        &[("area(name)", "`area` expects a geometry, got string")],
    );
    errors(
        &with_geometry(Point::new(0.0, 0.0).into()),
        &[
            ("geometry", "a geometry is not an attribute value"),
            ("[geometry]", "a geometry is not an attribute value"),
            (
                "if(true, geometry, 1)",
                "a geometry is not an attribute value",
            ),
        ],
    );
}

#[test]
fn catastrophic_backtracking_patterns_run_in_linear_time() {
    // `(a+)+$` on "aaa…ab" takes exponential time in a backtracking engine; the regex crate
    // runs in time linear in the input, so this completes (it is not timed).
    let mut input = "a".repeat(100_000);
    input.push('b');
    let schema = Schema::new(["s"]);
    let f = Feature::new(1, schema, vec![input.into()]);
    assert_eq!(run_on("regex_match(s, '(a+)+$')", &f).unwrap(), b(false));
    assert_eq!(run_on("regex_match(s, '(a|aa)+b')", &f).unwrap(), b(true));
    // Patterns whose compiled form would be huge are refused when compiling.
    let e = Expr::compile("regex_match(s, '\\\\w{1000}{1000}')").unwrap_err();
    assert!(e.message.contains("invalid regular expression"), "{e}");
}

#[test]
fn string_results_are_bounded() {
    let f = sample();
    // `long` is 600,000 bytes: twice that passes the 1 MiB limit.
    errors(
        &f,
        &[
            ("pad('a', 2000000)", "string result too long"),
            (
                "pad('a', 9223372036854775807, 'left', 'é')",
                "string result too long",
            ),
            ("long + long", "string result too long"),
            ("concat(long, long)", "string result too long"),
            ("format('{}{}', long, long)", "string result too long"),
            ("replace(long, 'a', 'aa')", "string result too long"),
            ("regex_replace(long, 'a', 'aa')", "string result too long"),
            ("regex_replace(long, '', 'x')", "string result too long"),
        ],
    );
    assert_eq!(run_on("len(long + 'b')", &f).unwrap(), i(600_001));
    assert_eq!(run_on("len(pad('a', 1048576))", &f).unwrap(), i(1_048_576));
}

#[test]
fn the_catalog_is_consistent_and_its_examples_type_check() {
    let mut names: Vec<&str> = FUNCTIONS.iter().map(|i| i.name).collect();
    let n = names.len();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), n, "duplicate function names");
    let env = TypeEnv {
        attributes: &[],
        open: true,
    };
    for info in FUNCTIONS {
        assert!(
            info.name
                .bytes()
                .all(|c| c.is_ascii_lowercase() || c == b'_'),
            "{}",
            info.name
        );
        assert!(info.params.len() >= info.min, "{}", info.name);
        assert!(!info.description.is_empty() && !info.description.ends_with('.'));
        assert_eq!(super::catalog::info(info.func).name, info.name);
        let expr = Expr::compile(info.example)
            .unwrap_or_else(|e| panic!("example of `{}` does not compile: {e}", info.name));
        assert!(
            info.example.contains(&format!("{}(", info.name)),
            "the example of `{}` does not call it",
            info.name
        );
        expr.check(&env)
            .unwrap_or_else(|p| panic!("example of `{}`: {p:?}", info.name));
        // No function reaches outside the feature: none reads files, the environment,
        // the clock or the network.
        for word in [
            "file", "read", "write", "env", "now", "http", "exec", "open",
        ] {
            assert!(!info.name.contains(word), "{}", info.name);
        }
    }
    let doc = super::function("round").unwrap();
    assert_eq!(doc.signature, "round(x: number[, digits: int]) -> number");
    assert_eq!(
        super::function("pad").unwrap().signature,
        "pad(s: string, width: int[, side: string[, fill: string]]) -> string"
    );
    assert_eq!(
        super::function("concat").unwrap().signature,
        "concat(x: any, ...) -> string"
    );
    assert_eq!(super::nearest_functions("uper")[0], "upper");
}

#[test]
fn new_functions_are_type_checked() {
    let attrs: Vec<(String, Type)> = vec![
        ("name".into(), Type::String),
        ("ts".into(), Type::DateTime),
        ("local".into(), Type::LocalDateTime),
        ("n".into(), Type::Int),
    ];
    let env = TypeEnv {
        attributes: &attrs,
        open: false,
    };
    let check = |src: &str| Expr::compile(src).unwrap().check(&env);
    assert_eq!(check("date_add(ts, 1, 'day')"), Ok(Type::DateTime));
    assert_eq!(check("date_add(local, 1, 'day')"), Ok(Type::LocalDateTime));
    assert_eq!(check("split(name, ',')"), Ok(Type::Array));
    assert_eq!(check("clamp(n, 0, 10)"), Ok(Type::Int));
    assert_eq!(check("area(geometry)"), Ok(Type::Float));
    assert_eq!(
        check("parse_local_datetime(name, '%Y')"),
        Ok(Type::LocalDateTime)
    );
    let p = check("date_diff(ts, local, 'day')").unwrap_err();
    assert!(p[0].message.contains("no time zone"), "{p:?}");
    assert_eq!(p[0].offset, 14);
    let p = check("area(name)").unwrap_err();
    assert!(
        p[0].message.contains("`area` expects a geometry as `g`"),
        "{p:?}"
    );
    let p = check("format_date(name, '%Y')").unwrap_err();
    assert!(
        p[0].message.contains("`format_date` expects a date"),
        "{p:?}"
    );
}
