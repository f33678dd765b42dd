//! Tests of static type checking ([`Expr::check`]) and of [`Expr::compile_all`]: tables of
//! sources with the type they give or the problems (message, offset) they have.

use super::{Expr, Type, TypeEnv, TypeProblem};

/// The attributes of the sample data: `id,name,category,x,y,value,ts` plus a few more.
fn attrs() -> Vec<(String, Type)> {
    [
        ("id", Type::Int),
        ("name", Type::String),
        ("category", Type::String),
        ("value", Type::Float),
        ("flag", Type::Bool),
        ("ts", Type::DateTime),
        ("local", Type::LocalDateTime),
        ("day1", Type::Date),
        ("tags", Type::Array),
        ("props", Type::Map),
        ("blob", Type::Bytes),
        ("unknown", Type::Any),
    ]
    .into_iter()
    .map(|(n, t)| (n.to_owned(), t))
    .collect()
}

fn check_in(src: &str, open: bool) -> Result<Type, Vec<TypeProblem>> {
    let attrs = attrs();
    let env = TypeEnv {
        attributes: &attrs,
        open,
    };
    Expr::compile(src)
        .unwrap_or_else(|e| panic!("`{src}` does not compile: {e}"))
        .check(&env)
}

fn check(src: &str) -> Result<Type, Vec<TypeProblem>> {
    check_in(src, false)
}

#[test]
fn well_typed_expressions_give_their_type() {
    let cases: &[(&str, Type)] = &[
        ("1 + 2", Type::Int),
        ("1 / 2", Type::Float),
        ("id * 2", Type::Int),
        ("id + value", Type::Float),
        ("value % 3", Type::Float),
        ("-id", Type::Int),
        ("name + '!'", Type::String),
        ("value > 500.0 && category == 'park'", Type::Bool),
        ("id > 2.5", Type::Bool),
        ("ts > day1", Type::Bool),
        ("local < day1", Type::Bool),
        ("tags == [1, 2]", Type::Bool),
        ("category in ['park', 'garden']", Type::Bool),
        ("id in tags", Type::Bool),
        ("unknown * 2", Type::Any),
        ("unknown / 2", Type::Float),
        ("unknown + 'x'", Type::Any),
        ("unknown > 'abc'", Type::Bool),
        ("null + 1", Type::Null),
        ("name == null", Type::Bool),
        ("upper(name)", Type::String),
        ("len(tags)", Type::Int),
        ("abs(id)", Type::Int),
        ("round(value, 2)", Type::Float),
        ("floor(id)", Type::Int),
        ("coalesce(null, id)", Type::Int),
        ("coalesce(id, value)", Type::Float),
        ("if(flag, 'a', 'b')", Type::String),
        ("if(flag, 'a', 1)", Type::Any),
        ("min(id, 2.5)", Type::Float),
        ("max(name, 'm')", Type::String),
        ("to_string(value)", Type::String),
        ("to_date(name)", Type::Date),
        ("year(ts)", Type::Int),
        ("concat(name, id, tags)", Type::String),
        ("is_null(geometry)", Type::Bool),
        ("geometry_type(geometry)", Type::String),
        ("geometry_type()", Type::String),
        ("substr(name, 1.0)", Type::String),
        ("`name` + name", Type::String),
    ];
    let mut bad = Vec::new();
    for (src, want) in cases {
        match check(src) {
            Ok(t) if t == *want => {}
            other => bad.push(format!("`{src}`: want {want:?}, got {other:?}")),
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

/// `(source, problem offset in characters, part of the message, part of the help)`.
type Case = (&'static str, usize, &'static str, Option<&'static str>);

fn expect_problems(cases: &[Case], open: bool) {
    let mut bad = Vec::new();
    for (src, offset, msg, help) in cases {
        match check_in(src, open) {
            Err(problems)
                if problems.len() == 1
                    && problems[0].offset == *offset
                    && problems[0].message.contains(msg)
                    && match help {
                        Some(h) => problems[0].help.as_deref().is_some_and(|x| x.contains(h)),
                        None => true,
                    } => {}
            other => bad.push(format!(
                "`{src}`: want `{msg}` at {offset} (help {help:?}), got {other:?}"
            )),
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn arithmetic_on_non_numbers_is_an_error() {
    expect_problems(
        &[
            (
                "'abc' * 2",
                6,
                "cannot multiply a string by an integer",
                None,
            ),
            (
                "name - 1",
                5,
                "cannot subtract an integer from a string",
                None,
            ),
            (
                "name + 1",
                5,
                "cannot add a string and an integer",
                Some("concat"),
            ),
            ("flag / 2", 5, "cannot divide a bool by an integer", None),
            (
                "id % name",
                3,
                "cannot take the remainder of an integer divided by a string",
                None,
            ),
            (
                "ts + 1",
                3,
                "cannot add a datetime and an integer",
                Some("date_add"),
            ),
            (
                "unknown * 'abc'",
                10,
                "`*` needs numbers, but \"abc\" is a string",
                None,
            ),
            (
                "tags * unknown",
                0,
                "`*` needs numbers, but `tags` is an array",
                None,
            ),
            ("-name", 0, "cannot negate a string", None),
            ("1 + (name * 2)", 10, "cannot multiply a string", None),
        ],
        false,
    );
}

#[test]
fn comparisons_between_types_that_never_meet_are_errors() {
    expect_problems(
        &[
            (
                "value > 'abc'",
                6,
                "`value` is a float and \"abc\" is a string: they never compare",
                Some("to_float"),
            ),
            (
                "value == 'abc'",
                6,
                "they never compare, so `==` is always false",
                None,
            ),
            ("id != name", 3, "so `!=` is always true", None),
            (
                "ts < local",
                3,
                "`ts` is a datetime and `local` is a local datetime",
                Some("time zone"),
            ),
            ("tags < [1]", 5, "arrays do not order", None),
            (
                "props == tags",
                6,
                "`props` is a map and `tags` is an array",
                None,
            ),
            (
                "flag == 1",
                5,
                "`flag` is a bool and `1` is an integer",
                None,
            ),
            ("geometry == 1", 9, "`geometry` is a geometry", None),
            ("upper(name) == 3", 12, "`upper(…)` is a string", None),
            ("(id + 1) == 'a'", 9, "the left side is an integer", None),
        ],
        false,
    );
}

#[test]
fn membership_needs_a_list_that_can_hold_the_value() {
    expect_problems(
        &[
            (
                "category in 'park'",
                12,
                "`in` needs a list on the right, but \"park\" is a string",
                Some("[\"park\"]"),
            ),
            ("id in value", 6, "but `value` is a float", None),
            (
                "id in ['a', 'b']",
                3,
                "the list holds a string: `in` is always false",
                None,
            ),
        ],
        false,
    );
    assert_eq!(check("id in [1, 'a']"), Ok(Type::Bool));
    assert_eq!(check("id in []"), Ok(Type::Bool));
}

#[test]
fn logic_needs_bools() {
    expect_problems(
        &[
            (
                "value && flag",
                0,
                "`&&` needs true or false, but `value` is a float",
                None,
            ),
            (
                "flag || name",
                8,
                "`||` needs true or false, but `name` is a string",
                None,
            ),
            (
                "!id",
                1,
                "`not` needs true or false, but `id` is an integer",
                None,
            ),
        ],
        false,
    );
    assert_eq!(check("flag && unknown || null"), Ok(Type::Bool));
}

#[test]
fn function_arguments_are_checked_against_signatures() {
    expect_problems(
        &[
            (
                "upper(id)",
                6,
                "`upper` expects a string as `s`, but `id` is an integer",
                Some("to_string"),
            ),
            (
                "len(value)",
                4,
                "`len` expects a string, bytes, an array or a map as `x`",
                None,
            ),
            (
                "abs(name)",
                4,
                "`abs` expects a number as `x`, but `name` is a string",
                None,
            ),
            (
                "round(value, 'a')",
                13,
                "`round` expects an integer as `digits`",
                None,
            ),
            (
                "year(name)",
                5,
                "`year` expects a date, a datetime or a local datetime",
                None,
            ),
            ("if(value, 1, 2)", 3, "`if` expects a bool as `cond`", None),
            (
                "concat(name, geometry)",
                13,
                "`concat` expects any value as `x`, but `geometry` is a geometry",
                None,
            ),
            (
                "geometry_type(name)",
                14,
                "`geometry_type` expects a geometry as `g`",
                None,
            ),
            (
                "min(id, name)",
                8,
                "`min` cannot order an integer with a string",
                None,
            ),
            (
                "max(tags, tags)",
                10,
                "`max` cannot order an array with an array",
                None,
            ),
        ],
        false,
    );
}

#[test]
fn every_problem_is_reported_not_only_the_first() {
    let problems = check("'abc' * 2 > 1 && value > 'x' && upper(id) == 'A'").unwrap_err();
    let messages: Vec<&str> = problems.iter().map(|p| p.message.as_str()).collect();
    assert_eq!(problems.len(), 3, "{messages:?}");
    assert!(messages[0].contains("cannot multiply"));
    assert!(messages[1].contains("never compare"));
    assert!(messages[2].contains("`upper` expects a string"));
}

#[test]
fn unknown_attributes_depend_on_whether_the_schema_is_open() {
    expect_problems(
        &[
            (
                "nme == 'x'",
                0,
                "unknown attribute `nme`",
                Some("did you mean \"name\"?"),
            ),
            ("id > 1 && zzzz", 10, "unknown attribute `zzzz`", None),
        ],
        false,
    );
    assert_eq!(check("zzzz").unwrap_err()[0].help, None);
    assert_eq!(check_in("nme == 'x'", true), Ok(Type::Bool));
    assert_eq!(check_in("nme * 2", true), Ok(Type::Any));
}

#[test]
fn offsets_count_characters_not_bytes() {
    let problems = check("'héllo' * 2").unwrap_err();
    assert_eq!(problems[0].offset, 8);
    assert_eq!(
        problems[0].to_string(),
        "cannot multiply a string by an integer at column 9"
    );
}

#[test]
fn conditions_must_be_boolean() {
    let attrs = attrs();
    let env = TypeEnv {
        attributes: &attrs,
        open: false,
    };
    let p = Expr::compile("value + 1")
        .unwrap()
        .check_condition(&env)
        .unwrap_err();
    assert_eq!(p[0].offset, 6);
    assert!(
        p[0].message
            .contains("must be true or false, but this gives a float")
    );
    for ok in ["value > 1", "unknown", "null", "flag && id > 2"] {
        assert_eq!(
            Expr::compile(ok).unwrap().check_condition(&env),
            Ok(()),
            "{ok}"
        );
    }
}

#[test]
fn type_names_round_trip_with_value_type_names() {
    use crate::feature::Value;
    for v in [
        Value::Null,
        Value::Bool(true),
        Value::Int(1),
        Value::Float(1.0),
        Value::from("a"),
        Value::Date(0),
        Value::DateTime(0),
        Value::LocalDateTime(0),
    ] {
        assert_eq!(Type::from_type_name(v.type_name()), Some(Type::of(&v)));
    }
    assert_eq!(Type::from_type_name("nope"), None);
    assert_eq!(Type::Int.name(), "an integer");
}

#[test]
fn compile_all_reports_every_unknown_function_and_arity_error() {
    let errors = Expr::compile_all("uper(name) + lenn(x) + len(1, 2) + substr('a')").unwrap_err();
    let got: Vec<(usize, &str)> = errors
        .iter()
        .map(|e| (e.offset, e.message.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (0, "unknown function `uper`; did you mean `upper`?"),
            (13, "unknown function `lenn`; did you mean `len`?"),
            (23, "function `len` takes 1 argument, got 2"),
            (35, "function `substr` takes 2 or 3 arguments, got 1"),
        ]
    );
    // A syntax error stops parsing and comes after what was found before it.
    let errors = Expr::compile_all("foo(1) + (2").unwrap_err();
    assert_eq!(errors.len(), 2);
    assert!(errors[0].message.contains("unknown function `foo`"));
    assert!(errors[1].message.contains("expected `)`"));
    // `compile` keeps reporting the first.
    assert_eq!(Expr::compile("foo(1) + bar(2)").unwrap_err().offset, 0);
    assert!(Expr::compile_all("len(name)").is_ok());
}
