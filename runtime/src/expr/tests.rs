//! Tests of the expression language: tables of cases (source -> value or error) over one
//! sample feature, then errors with offsets, limits, schema rebinding and properties.

use std::sync::Arc;

use proptest::prelude::*;

use super::{EvalError, Expr, ExprError};
use crate::feature::{Feature, Geometry, Schema, Value, parse_date, parse_datetime};

fn schema7() -> Arc<Schema> {
    Schema::new(["id", "name", "category", "x", "y", "value", "ts"])
}

/// The sample feature every table case runs on.
fn park() -> Feature {
    Feature::new(
        7,
        schema7(),
        vec![
            Value::Int(7),
            "Central Park".into(),
            "park".into(),
            Value::Float(1.5),
            Value::Float(-2.0),
            Value::Float(612.5),
            Value::DateTime(parse_datetime("2024-05-01T10:30:00Z").unwrap()),
        ],
    )
}

fn compile(src: &str) -> Expr {
    Expr::compile(src).unwrap_or_else(|e| panic!("`{src}` does not compile: {e}"))
}

fn run_on(src: &str, f: &Feature) -> Result<Value, EvalError> {
    compile(src).evaluator().eval(f)
}

fn run(src: &str) -> Result<Value, EvalError> {
    run_on(src, &park())
}

fn compile_err(src: &str) -> ExprError {
    match Expr::compile(src) {
        Ok(e) => panic!("`{src}` compiled: {e:?}"),
        Err(e) => e,
    }
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
const N: Value = Value::Null;

/// Runs every case and reports all mismatches at once.
fn check(cases: &[(&str, Value)]) {
    let mut bad = Vec::new();
    for (src, want) in cases {
        match run(src) {
            Ok(got) if &got == want => {}
            other => bad.push(format!("`{src}`: want {want:?}, got {other:?}")),
        }
    }
    assert!(
        bad.is_empty(),
        "{} failing cases:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

/// Runs every case and checks that evaluation fails with a message containing the text.
fn check_err(cases: &[(&str, &str)]) {
    let mut bad = Vec::new();
    for (src, want) in cases {
        match run(src) {
            Err(e) if e.message.contains(want) => {}
            other => bad.push(format!("`{src}`: want error `{want}`, got {other:?}")),
        }
    }
    assert!(
        bad.is_empty(),
        "{} failing cases:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

#[test]
fn precedence_and_associativity() {
    check(&[
        ("1 + 2 * 3", i(7)),
        ("(1 + 2) * 3", i(9)),
        ("2 - 3 - 4", i(-5)),
        ("8 / 2 / 2", fl(2.0)),
        ("-2 * 3", i(-6)),
        ("- -2", i(2)),
        ("2 * -3", i(-6)),
        ("10 - 2 * 3 % 4", i(8)),
        ("1 + 2 == 3", b(true)),
        ("!false && false", b(false)),
        ("not 1 == 2", b(true)),
        ("!(1 == 2) == true", b(true)),
        ("true || false && false", b(true)),
        ("false && true || true", b(true)),
        ("false and true or true", b(true)),
        ("not not true", b(true)),
        ("1 in [1, 2] && 2 > 1", b(true)),
        ("  1\n+\t2  ", i(3)),
    ]);
}

#[test]
fn literals() {
    check(&[
        ("42", i(42)),
        ("1.5", fl(1.5)),
        ("1e3", fl(1000.0)),
        ("2.5E-1", fl(0.25)),
        ("\"double\"", s("double")),
        ("'single'", s("single")),
        (r#"'it\'s'"#, s("it's")),
        (r#""say \"hi\"""#, s("say \"hi\"")),
        (r#""a\tb\nc\\d\re""#, s("a\tb\nc\\d\re")),
        ("'héllo ✓'", s("héllo ✓")),
        ("true", b(true)),
        ("false", b(false)),
        ("null", N),
        ("-9223372036854775808", i(i64::MIN)),
        ("9223372036854775807", i(i64::MAX)),
        ("[]", Value::Array(Arc::from(Vec::new()))),
        ("[1, 'a', null]", Value::Array(vec![i(1), s("a"), N].into())),
        ("[id, 2]", Value::Array(vec![i(7), i(2)].into())),
    ]);
}

#[test]
fn attribute_references() {
    let f = Feature::from_pairs(
        1,
        [
            ("road name", s("Main St")),
            ("a.b", i(3)),
            ("we`ird", i(4)),
            ("in", i(5)),
            ("_x1", i(6)),
        ],
    );
    assert_eq!(run_on("`road name`", &f).unwrap(), s("Main St"));
    assert_eq!(run_on("`a.b` * 2", &f).unwrap(), i(6));
    assert_eq!(run_on(r"`we\`ird`", &f).unwrap(), i(4));
    assert_eq!(run_on("`in` + _x1", &f).unwrap(), i(11));
    assert_eq!(run_on("missing", &f).unwrap(), N);
    assert_eq!(run_on("is_null(missing)", &f).unwrap(), b(true));
    check(&[
        ("name", s("Central Park")),
        ("value", fl(612.5)),
        ("id", i(7)),
        ("ts", park().get("ts").cloned().unwrap()),
    ]);
}

#[test]
fn arithmetic() {
    check(&[
        ("7 / 2", fl(3.5)),
        ("6 / 3", fl(2.0)),
        ("7 % 3", i(1)),
        ("7 % -3", i(1)),
        ("-7 % 3", i(-1)),
        ("7.5 % 2", fl(1.5)),
        ("1 + 2.5", fl(3.5)),
        ("2.5 - 1", fl(1.5)),
        ("id * 2", i(14)),
        ("id * 2.0", fl(14.0)),
        ("value * 2", fl(1225.0)),
        ("value - x - y", fl(613.0)),
        ("-value", fl(-612.5)),
        ("'ab' + \"cd\"", s("abcd")),
        ("name + '!'", s("Central Park!")),
        ("9223372036854775807 - 1", i(i64::MAX - 1)),
        ("-9223372036854775808 % -1", i(0)),
    ]);
    check_err(&[
        ("9223372036854775807 + 1", "integer overflow in `+`"),
        ("-9223372036854775808 - 1", "integer overflow in `-`"),
        ("4611686018427387904 * 2", "integer overflow in `*`"),
        ("-(-9223372036854775808)", "integer overflow in `-`"),
        ("1 / 0", "division by zero"),
        ("1 % 0", "division by zero"),
        ("1.5 / 0.0", "division by zero"),
        ("value % 0", "division by zero"),
        ("id / (id - 7)", "division by zero"),
        ("'a' + 1", "cannot apply `+` to string and int"),
        ("name - 1", "cannot apply `-` to string and int"),
        ("true * 2", "cannot apply `*` to bool and int"),
        ("-name", "cannot negate string"),
    ]);
}

#[test]
fn comparisons() {
    check(&[
        ("1 == 1.0", b(true)),
        ("2 < 2.5", b(true)),
        ("2.5 >= 3", b(false)),
        ("id == 7", b(true)),
        ("id != 7.0", b(false)),
        ("7 <= id", b(true)),
        ("500 < value", b(true)),
        ("value > 612.5", b(false)),
        ("value >= 612.5", b(true)),
        ("'abc' < 'abd'", b(true)),
        ("'b' > 'abc'", b(true)),
        ("name == 'Central Park'", b(true)),
        ("'park' == category", b(true)),
        ("category != 'road'", b(true)),
        ("category < 'z'", b(true)),
        ("true > false", b(true)),
        ("true == true", b(true)),
        ("to_date('2024-01-01') < to_date('2024-02-01')", b(true)),
        ("to_date('2024-05-01') < ts", b(true)),
        (
            "to_date('2024-01-01') == to_datetime('2024-01-01T00:00:00Z')",
            b(true),
        ),
        ("ts > to_datetime('2024-05-01 10:29:59')", b(true)),
        ("[1, 'a'] == [1, 'a']", b(true)),
        ("[1] != [2]", b(true)),
        ("'1' == 1", b(false)),
        ("'1' != 1", b(true)),
        ("category == 1", b(false)),
        ("category != 1.5", b(true)),
        ("ts == 'x'", b(false)),
        ("id == 'seven'", b(false)),
        ("[1] == 1", b(false)),
    ]);
    check_err(&[
        ("'a' < 1", "cannot compare string with int using `<`"),
        (
            "category > 1.5",
            "cannot compare string with float using `>`",
        ),
        ("1 <= category", "cannot compare int with string using `<=`"),
        ("ts >= 5", "cannot compare datetime with int using `>=`"),
        ("[1] < [2]", "cannot compare array with array using `<`"),
        ("true < 1", "cannot compare bool with int using `<`"),
    ]);
}

#[test]
fn nan_compares_like_ieee() {
    let f = Feature::from_pairs(1, [("v", fl(f64::NAN))]);
    for (src, want) in [
        ("v == v", false),
        ("v != 1.0", true),
        ("v < 1.0", false),
        ("v >= 1", false),
        ("v == 1", false),
    ] {
        assert_eq!(run_on(src, &f).unwrap(), b(want), "{src}");
    }
}

#[test]
fn null_semantics() {
    check(&[
        ("null + 1", N),
        ("1 - null", N),
        ("null * 'a'", N),
        ("-null", N),
        ("!null", N),
        ("null == null", b(true)),
        ("null != null", b(false)),
        ("null == 1", b(false)),
        ("null != 1", b(true)),
        ("nope == 'park'", b(false)),
        ("nope != 'park'", b(true)),
        ("nope == null", b(true)),
        ("null < 1", N),
        ("nope > 1", N),
        ("nope <= 1.5", N),
        ("nope > 'a'", N),
        ("null && false", b(false)),
        ("false && null", b(false)),
        ("null && true", N),
        ("true && null", N),
        ("null || true", b(true)),
        ("null || false", N),
        ("null || null", N),
        ("null in [1, null]", N),
        ("1 in null", N),
        ("nope in [1]", N),
    ]);
    // eval_bool: null is false.
    let f = park();
    for src in ["null", "nope > 1", "null && true", "!null"] {
        assert!(!compile(src).evaluator().eval_bool(&f).unwrap(), "{src}");
    }
}

#[test]
fn logic_short_circuits_and_checks_types() {
    check(&[
        ("false && 1 / 0 > 0", b(false)),
        ("true || 1 / 0 > 0", b(true)),
        ("false && 1", b(false)),
        ("true || 'x'", b(true)),
        ("id > 5 && value < 1000.0 && category == 'park'", b(true)),
        ("id > 50 || name == 'x' || value == 612.5", b(true)),
    ]);
    check_err(&[
        ("1 && true", "expected a bool, got int"),
        ("true && 1", "expected a bool, got int"),
        ("false || name", "expected a bool, got string"),
        ("!1", "expected a bool, got int"),
        ("null && 1 / 0 > 0", "division by zero"),
    ]);
    let f = park();
    let err = compile("value").evaluator().eval_bool(&f).unwrap_err();
    assert_eq!(err.message, "expected a bool, got float");
    assert!(
        compile("value > 500.0 && category == \"park\"")
            .evaluator()
            .eval_bool(&f)
            .unwrap()
    );
}

#[test]
fn membership() {
    let f = Feature::from_pairs(
        1,
        [
            ("tags", Value::Array(vec![i(1), s("a")].into())),
            ("k", s("a")),
            ("n", i(2)),
        ],
    );
    for (src, want) in [
        ("k in tags", b(true)),
        ("1 in tags", b(true)),
        ("1.0 in tags", b(true)),
        ("n in tags", b(false)),
        ("k in ['b', k]", b(true)),
        ("n in [1, n + 1]", b(false)),
        ("n in [2.0]", b(true)),
        ("nope in tags", N),
        ("1 in nope", N),
    ] {
        assert_eq!(run_on(src, &f).unwrap(), want, "{src}");
    }
    check(&[
        ("category in ['park', 'road']", b(true)),
        ("category in ['road']", b(false)),
        ("id in [1, 2, 7]", b(true)),
        ("id in [x, 7]", b(true)),
        ("not (id in [1, 2])", b(true)),
        ("id in []", b(false)),
    ]);
    check_err(&[("1 in 'abc'", "`in` expects a list, got string")]);
}

#[test]
fn functions() {
    let ts = park().get("ts").cloned().unwrap();
    let d = |t: &str| Value::Date(parse_date(t).unwrap());
    check(&[
        ("is_null(null)", b(true)),
        ("is_null(1)", b(false)),
        ("is_null(nope)", b(true)),
        ("coalesce(nope, null, 3, 4)", i(3)),
        ("coalesce(null)", N),
        ("coalesce(1, 1 / 0)", i(1)),
        ("if(value > 0, 'pos', 'neg')", s("pos")),
        ("if(null, 1, 2)", i(2)),
        ("if(false, 1, 2)", i(2)),
        ("if(true, 1, 1 / 0)", i(1)),
        ("if(id == 7, name, 1 / 0)", s("Central Park")),
        ("len('héllo')", i(5)),
        ("len([1, 2, 3])", i(3)),
        ("len(null)", N),
        ("len(name)", i(12)),
        ("lower('AbC')", s("abc")),
        ("upper(category)", s("PARK")),
        ("trim('  a b \t')", s("a b")),
        ("trim(' x' + ' ')", s("x")),
        ("lower(null)", N),
        ("contains(name, 'Park')", b(true)),
        ("contains(name, 'park')", b(false)),
        ("starts_with(name, 'Cen')", b(true)),
        ("ends_with(name, 'x')", b(false)),
        ("contains(null, 'a')", N),
        ("concat('a', 1, null, 2.5, true)", s("a12.5true")),
        ("concat(ts)", s("2024-05-01T10:30:00Z")),
        ("concat(name, '/', category)", s("Central Park/park")),
        ("substr('hello', 1, 3)", s("ell")),
        ("substr('hello', -3)", s("llo")),
        ("substr('hello', -10, 2)", s("he")),
        ("substr('hello', 10)", s("")),
        ("substr('héllo', 1, 2)", s("él")),
        ("substr('hello', 4 / 2)", s("llo")),
        ("substr(name, 8, 100)", s("Park")),
        ("substr(null, 1)", N),
        ("substr('abc', null)", N),
        ("substr('abc', 0, null)", N),
        ("abs(-3)", i(3)),
        ("abs(-2.5)", fl(2.5)),
        ("abs(y)", fl(2.0)),
        ("round(2.5)", fl(3.0)),
        ("round(-2.5)", fl(-3.0)),
        ("round(2.4)", fl(2.0)),
        ("round(1.23456, 2)", fl(1.23)),
        ("round(1234.5, -2)", fl(1200.0)),
        ("round(7)", i(7)),
        ("round(1250, -2)", i(1300)),
        ("round(-1250, -2)", i(-1300)),
        ("round(1249, -2)", i(1200)),
        ("round(5, -30)", i(0)),
        ("round(null)", N),
        ("floor(2.7)", fl(2.0)),
        ("floor(-2.5)", fl(-3.0)),
        ("ceil(2.1)", fl(3.0)),
        ("floor(3)", i(3)),
        ("ceil(-3)", i(-3)),
        ("sqrt(16)", fl(4.0)),
        ("sqrt(2.25)", fl(1.5)),
        ("min(3, 1.5, null, 2)", fl(1.5)),
        ("max(3, 1.5, null, 2)", i(3)),
        ("max('a', 'c', 'b')", s("c")),
        ("min(null, nope)", N),
        ("max(id)", i(7)),
        ("to_int('42')", i(42)),
        ("to_int(' -42 ')", i(-42)),
        ("to_int('4.9')", i(4)),
        ("to_int('abc')", N),
        ("to_int(3.9)", i(3)),
        ("to_int(-3.9)", i(-3)),
        ("to_int(true)", i(1)),
        ("to_int(null)", N),
        ("to_float('2.5')", fl(2.5)),
        ("to_float(2)", fl(2.0)),
        ("to_float(false)", fl(0.0)),
        ("to_float('x')", N),
        ("to_string(2.0)", s("2.0")),
        ("to_string(5)", s("5")),
        ("to_string(true)", s("true")),
        ("to_string(null)", N),
        ("to_string(name)", s("Central Park")),
        ("to_string(to_date('2024-05-01'))", s("2024-05-01")),
        ("to_date('2024-05-01')", d("2024-05-01")),
        ("to_date(' 2024-05-01T23:00:00Z ')", d("2024-05-01")),
        ("to_date('1969-12-31T23:59:59Z')", d("1969-12-31")),
        ("to_date('nope')", N),
        ("to_date(ts)", d("2024-05-01")),
        ("to_date(to_date('2024-05-01'))", d("2024-05-01")),
        ("to_datetime('2024-05-01T10:30:00Z')", ts.clone()),
        ("to_datetime('2024-05-01T12:30:00+02:00') == ts", b(true)),
        (
            "to_datetime('2024-05-01')",
            Value::DateTime(parse_datetime("2024-05-01T00:00:00Z").unwrap()),
        ),
        ("to_datetime(to_date('2024-05-01')) < ts", b(true)),
        ("to_datetime(ts) == ts", b(true)),
        ("to_datetime('garbage')", N),
        ("year(ts)", i(2024)),
        ("month(ts)", i(5)),
        ("day(ts)", i(1)),
        ("year(to_date('1969-12-31'))", i(1969)),
        ("month(to_date('1969-12-31'))", i(12)),
        ("day(to_date('1969-12-31'))", i(31)),
        ("year(null)", N),
        ("has_geometry()", b(false)),
        ("geometry_type()", N),
    ]);
    check_err(&[
        ("if(1, 2, 3)", "expected a bool, got int"),
        ("len(1)", "`len` expects a string or an array, got int"),
        ("lower(1)", "`lower` expects a string, got int"),
        ("contains(1, 'a')", "`contains` expects a string, got int"),
        (
            "starts_with('a', 1)",
            "`starts_with` expects a string, got int",
        ),
        ("substr('hello', 1, -1)", "`substr` length is negative"),
        (
            "substr('hello', 1.5)",
            "`substr` expects an integer, got float",
        ),
        ("abs(-9223372036854775808)", "integer overflow in `abs`"),
        ("abs('a')", "`abs` expects a number, got string"),
        ("round(1.5, 'a')", "`round` expects an integer, got string"),
        (
            "round(9223372036854775807, -1)",
            "integer overflow in `round`",
        ),
        ("floor('a')", "`floor` expects a number, got string"),
        ("sqrt(-1)", "`sqrt` of a negative number"),
        ("sqrt(name)", "`sqrt` expects a number, got string"),
        ("min(1, 'a')", "`min` cannot compare string with int"),
        ("to_int(1e300)", "cannot convert"),
        ("to_int(ts)", "cannot convert datetime to int"),
        ("to_float(ts)", "cannot convert datetime to float"),
        ("to_date(1)", "cannot convert int to date"),
        ("to_datetime(1.5)", "cannot convert float to datetime"),
        (
            "day('2024-01-01')",
            "`day` expects a date, a datetime or a local datetime, got string",
        ),
    ]);
}

#[test]
fn geometry_functions() {
    let point = Geometry::new(geo_types::Point::new(1.0, 2.0).into());
    let f = park().with_geometry(Some(point));
    assert_eq!(run_on("has_geometry()", &f).unwrap(), b(true));
    assert_eq!(run_on("geometry_type()", &f).unwrap(), s("Point"));
    let ring = geo_types::LineString::from(vec![(0.0, 0.0), (1.0, 0.0), (0.0, 1.0), (0.0, 0.0)]);
    let poly = geo_types::Polygon::new(ring, Vec::new());
    let f = park().with_geometry(Some(Geometry::new(poly.into())));
    assert_eq!(run_on("geometry_type() == 'Polygon'", &f).unwrap(), b(true));
    assert!(!compile("has_geometry()").is_constant());
}

#[test]
fn compile_errors_point_at_the_problem() {
    let cases: &[(&str, usize, &str)] = &[
        (
            "value > ",
            8,
            "expected an operand, found end of expression",
        ),
        ("", 0, "expected an operand, found end of expression"),
        ("foo(1)", 0, "unknown function `foo`; did you mean `floor`?"),
        (
            "x + uper(name)",
            4,
            "unknown function `uper`; did you mean `upper`?",
        ),
        ("frobnicate(1)", 0, "unknown function `frobnicate`"),
        (
            "(value > 1",
            10,
            "expected `)` to close the `(` at column 1, found end of expression",
        ),
        ("len(name", 8, "expected `)` to close the `(` at column 4"),
        ("[1, 2", 5, "expected `]` to close the `[` at column 1"),
        ("value > 1)", 9, "unexpected `)` with no matching `(`"),
        ("a b", 2, "expected an operator, found `b`"),
        ("a = 1", 2, "unexpected `=`; use `==` to compare"),
        ("a & b", 2, "use `&&`"),
        ("a | b", 2, "use `||`"),
        ("len(1, 2)", 0, "function `len` takes 1 argument, got 2"),
        ("if(1, 2)", 0, "function `if` takes 3 arguments, got 2"),
        (
            "round()",
            0,
            "function `round` takes 1 or 2 arguments, got 0",
        ),
        (
            "coalesce()",
            0,
            "function `coalesce` takes at least 1 argument, got 0",
        ),
        (
            "has_geometry(1)",
            0,
            "function `has_geometry` takes no arguments, got 1",
        ),
        ("x + 'abc", 4, "unterminated string"),
        ("`abc", 0, "unterminated attribute name"),
        ("``", 0, "empty attribute name"),
        (r#""a\q""#, 2, "unknown escape `\\q`"),
        ("1 < 2 < 3", 6, "comparisons cannot be chained"),
        ("a in [1] == true", 9, "comparisons cannot be chained"),
        ("99999999999999999999", 0, "integer literal out of range"),
        ("9223372036854775808", 0, "integer literal out of range"),
        ("1e999", 0, "float literal out of range"),
        ("1.", 2, "expected digits after `.`"),
        ("1e+", 3, "expected digits in the exponent"),
        ("12abc", 0, "invalid number"),
        ("a @ b", 2, "unexpected character `@`"),
        ("a == é", 5, "unexpected character `é`"),
        ("a == !b", 5, "must be in parentheses"),
        ("a == not b", 5, "must be in parentheses"),
        ("1 +", 3, "expected an operand"),
        ("(,)", 1, "expected an operand, found `,`"),
        ("f(1,)", 0, "unknown function `f`"),
        ("len(1,)", 6, "expected an operand, found `)`"),
        ("`a`(1)", 3, "expected an operator, found `(`"),
    ];
    let mut bad = Vec::new();
    for (src, offset, msg) in cases {
        match Expr::compile(src) {
            Err(e) if e.offset == *offset && e.message.contains(msg) => {}
            other => bad.push(format!("`{src}`: want `{msg}` at {offset}, got {other:?}")),
        }
    }
    assert!(
        bad.is_empty(),
        "{} failing cases:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

#[test]
fn error_display_uses_one_based_columns() {
    let e = compile_err("value > ");
    assert_eq!(
        e.to_string(),
        "expected an operand, found end of expression at column 9"
    );
    let e = EvalError {
        message: "division by zero".into(),
    };
    assert_eq!(e.to_string(), "division by zero");
}

#[test]
fn source_length_is_limited() {
    let ok = format!("1{}", " ".repeat(8191));
    assert_eq!(ok.len(), 8192);
    assert!(Expr::compile(&ok).is_ok());
    let long = format!("1{}", " ".repeat(8192));
    let e = compile_err(&long);
    assert_eq!(e.offset, 8192);
    assert!(e.message.contains("longer than 8192 bytes"), "{e}");
}

#[test]
fn nesting_depth_is_limited() {
    let parens = |n: usize| format!("{}1{}", "(".repeat(n), ")".repeat(n));
    assert_eq!(run(&parens(64)).unwrap(), i(1));
    let e = compile_err(&parens(65));
    assert_eq!(e.offset, 64);
    assert!(e.message.contains("deeper than 64"), "{e}");

    // A sum of n terms is n levels deep.
    let sum = |n: usize| vec!["id"; n].join(" + ");
    assert_eq!(run(&sum(64)).unwrap(), i(7 * 64));
    let e = compile_err(&sum(65));
    assert!(e.message.contains("deeper than 64"), "{e}");

    let calls = |n: usize| format!("{}1{}", "abs(".repeat(n), ")".repeat(n));
    assert!(Expr::compile(&calls(63)).is_ok());
    assert!(compile_err(&calls(65)).message.contains("deeper than 64"));

    let negs = |n: usize| format!("{}id", "-".repeat(n));
    assert_eq!(run(&negs(62)).unwrap(), i(7));
    assert!(compile_err(&negs(70)).message.contains("deeper than 64"));
    assert!(
        compile_err(&"!".repeat(5000))
            .message
            .contains("deeper than 64")
    );
    assert!(
        compile_err(&"[".repeat(5000))
            .message
            .contains("deeper than 64")
    );

    // A chain of `||` counts once, so long lists of alternatives work.
    let alternatives: Vec<String> = (0..300).map(|k| format!("id == {k}")).collect();
    assert_eq!(run(&alternatives.join(" || ")).unwrap(), b(true));
}

#[test]
fn attributes_are_deduplicated_in_order() {
    let e = compile("b + a * b > `c d` && is_null(a) || false && zz");
    assert_eq!(e.attributes(), ["b", "a", "c d", "zz"]);
    assert_eq!(e.source(), "b + a * b > `c d` && is_null(a) || false && zz");
    assert!(compile("1 + 2").attributes().is_empty());
}

#[test]
fn constants_fold_at_compile_time() {
    let e = compile("500 * 2");
    assert!(e.is_constant());
    assert_eq!(e.evaluator().eval(&park()).unwrap(), i(1000));
    for src in [
        "'a' + 'b'",
        "upper('x') == 'X'",
        "[1, 2 + 3]",
        "false && zz",
        "true || zz > 1",
        "if(true, 1, zz)",
        "to_date('2024-01-01') < to_date('2024-01-02')",
    ] {
        assert!(compile(src).is_constant(), "{src}");
    }
    for src in ["1 / 0", "value", "zz && false", "geometry_type()"] {
        assert!(!compile(src).is_constant(), "{src}");
    }
    // The folded constant feeds a specialised comparison node.
    let e = compile("value > 500 * 2");
    let debug = format!("{e:?}");
    assert!(
        debug.contains("AttrCmpInt { slot: 0, op: Gt, k: 1000, rev: false }"),
        "{debug}"
    );
    let e = compile("'park' == category");
    assert!(format!("{e:?}").contains("AttrEqStr"), "{e:?}");
}

#[test]
fn evaluator_rebinds_when_the_schema_changes() {
    let expr = compile("value > 500.0 && category == 'park'");
    let a = Schema::new(["value", "category"]);
    let b_ = Schema::new(["category", "extra", "value"]);
    let c = Schema::new(["other"]);
    let fa = |v: f64, cat: &str| Feature::new(1, a.clone(), vec![fl(v), s(cat)]);
    let fb = |v: f64, cat: &str| Feature::new(2, b_.clone(), vec![s(cat), i(0), fl(v)]);
    let mut ev = expr.evaluator();
    assert!(ev.eval_bool(&fa(600.0, "park")).unwrap());
    assert!(!ev.eval_bool(&fa(400.0, "park")).unwrap());
    assert!(ev.eval_bool(&fb(600.0, "park")).unwrap());
    assert!(!ev.eval_bool(&fb(600.0, "road")).unwrap());
    assert!(ev.eval_bool(&fa(700.0, "park")).unwrap());
    // A schema without the attributes gives nulls, hence false.
    assert!(!ev.eval_bool(&Feature::new(3, c, vec![i(1)])).unwrap());
    assert_eq!(ev.eval(&fb(1.0, "park")).unwrap(), b(false));
    // Two schemas with the same names but separate allocations also work.
    let a2 = Schema::new(["category", "value"]);
    assert!(
        ev.eval_bool(&Feature::new(4, a2, vec![s("park"), i(501)]))
            .unwrap()
    );
}

#[test]
fn expr_is_clone_send_sync_debug() {
    fn is<T: Clone + Send + Sync + std::fmt::Debug>() {}
    is::<Expr>();
    is::<ExprError>();
    is::<EvalError>();
    let e = compile("id + 1");
    let e2 = e.clone();
    let f = park();
    let handle = std::thread::spawn(move || e2.evaluator().eval(&f));
    assert_eq!(handle.join().unwrap().unwrap(), i(8));
    assert_eq!(e.evaluator().eval(&park()).unwrap(), i(8));
}

/// The dedicated comparison nodes must agree with the general comparison for every kind of
/// attribute value. `(v + 0)`-style wrappers cannot be used for strings, so the general form
/// is reached through `coalesce(v)`, which the compiler does not specialise.
#[test]
fn specialised_nodes_agree_with_the_general_path() {
    let values = [
        N,
        i(3),
        i(-1),
        fl(3.0),
        fl(2.5),
        fl(f64::NAN),
        s("3"),
        s("park"),
        b(true),
        Value::Date(3),
        Value::Array(vec![i(3)].into()),
    ];
    let constants = ["3", "2.5", "-1", "'park'", "'3'"];
    let ops = ["==", "!=", "<", "<=", ">", ">="];
    let mut checked = 0;
    for v in &values {
        let f = Feature::from_pairs(1, [("v", v.clone())]);
        for k in constants {
            for op in ops {
                for (fast, slow) in [
                    (format!("v {op} {k}"), format!("coalesce(v) {op} {k}")),
                    (format!("{k} {op} v"), format!("{k} {op} coalesce(v)")),
                ] {
                    let got = run_on(&fast, &f);
                    let want = run_on(&slow, &f);
                    assert_eq!(got, want, "`{fast}` vs `{slow}` with v = {v:?}");
                    assert_eq!(
                        compile(&fast)
                            .evaluator()
                            .eval_bool(&f)
                            .map_err(|e| e.message),
                        compile(&slow)
                            .evaluator()
                            .eval_bool(&f)
                            .map_err(|e| e.message),
                        "eval_bool `{fast}` with v = {v:?}"
                    );
                    checked += 1;
                }
            }
        }
        for k in ["2", "2.5", "0", "0.0"] {
            for op in ["+", "-", "*", "/", "%"] {
                let fast = format!("v {op} {k}");
                let slow = format!("coalesce(v) {op} {k}");
                // Compared through Debug, where NaN equals NaN.
                assert_eq!(
                    format!("{:?}", run_on(&fast, &f)),
                    format!("{:?}", run_on(&slow, &f)),
                    "`{fast}` with v = {v:?}"
                );
            }
        }
    }
    assert_eq!(checked, values.len() * constants.len() * ops.len() * 2);
}

fn int_pair(a: i64, b: i64) -> Feature {
    Feature::from_pairs(0, [("a", i(a)), ("b", i(b))])
}

proptest! {
    #[test]
    fn integer_arithmetic_matches_checked_rust(a in any::<i64>(), b_ in any::<i64>()) {
        let f = int_pair(a, b_);
        let cases: [(&str, Option<i64>); 4] = [
            ("a + b", a.checked_add(b_)),
            ("a - b", a.checked_sub(b_)),
            ("a * b", a.checked_mul(b_)),
            ("a % b", if b_ == 0 { None } else { Some(a.wrapping_rem(b_)) }),
        ];
        for (src, want) in cases {
            let got = run_on(src, &f);
            match want {
                Some(v) => prop_assert_eq!(got, Ok(i(v)), "{}", src),
                None => prop_assert!(got.is_err(), "{} gave {:?}", src, got),
            }
        }
        let div = run_on("a / b", &f);
        if b_ == 0 {
            prop_assert!(div.is_err());
        } else {
            prop_assert_eq!(div, Ok(fl(a as f64 / b_ as f64)));
        }
        prop_assert_eq!(run_on("a < b", &f), Ok(b(a < b_)));
        prop_assert_eq!(run_on("a == b", &f), Ok(b(a == b_)));
    }

    #[test]
    fn integer_literals_round_trip(n in any::<i64>()) {
        let e = compile(&n.to_string());
        prop_assert!(e.is_constant());
        prop_assert_eq!(e.evaluator().eval(&park()), Ok(i(n)));
    }
}

#[test]
fn round_with_extreme_digits_does_not_overflow() {
    let f = Feature::from_pairs(1, [("n", Value::Int(i64::MIN))]);
    let v = Expr::compile("round(12345, n)")
        .unwrap()
        .evaluator()
        .eval(&f);
    assert_eq!(v, Ok(Value::Int(0)));
}

#[test]
fn local_datetimes_compare_among_themselves_never_with_zoned_ones() {
    use crate::feature::parse_local_datetime;
    let schema = Schema::new(["wall", "ts"]);
    let wall = parse_local_datetime("2024-05-01T10:30:00").unwrap();
    let f = Feature::new(
        1,
        schema,
        vec![
            Value::LocalDateTime(wall),
            Value::DateTime(parse_datetime("2024-05-01T10:30:00Z").unwrap()),
        ],
    );
    assert_eq!(run_on("wall == wall", &f).unwrap(), b(true));
    assert_eq!(run_on("year(wall)", &f).unwrap(), i(2024));
    assert_eq!(
        run_on("to_date(wall) == to_date('2024-05-01')", &f).unwrap(),
        b(true)
    );
    assert_eq!(run_on("wall > to_date('2024-04-30')", &f).unwrap(), b(true));
    assert_eq!(
        run_on("to_string(wall)", &f).unwrap(),
        s("2024-05-01T10:30:00")
    );
    // A wall-clock time and an instant are different types: never equal (as with any two
    // types), and ordering them would assume a zone, so it is an error.
    assert_eq!(run_on("wall == ts", &f).unwrap(), b(false));
    assert!(run_on("wall < ts", &f).is_err());
    // An explicit conversion takes the wall clock as UTC.
    assert_eq!(run_on("to_datetime(wall) == ts", &f).unwrap(), b(true));
}
