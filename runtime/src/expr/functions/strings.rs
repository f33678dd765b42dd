//! String functions that build text under the size limit, the regex functions, and `clamp`.

use super::{int_arg, str_arg, type_error};
use crate::expr::catalog::Func;
use crate::expr::eval::{Builtin, Ctx, Node, R, check_len, eval, fail};
use crate::expr::val::Val;

/// `pad(s, width[, side[, fill]])`: `s` padded to `width` characters.
pub(super) fn pad<'a>(s: Val<'a>, width: &Val, side: &Val, fill: &Val, n: usize) -> R<Val<'a>> {
    let name = "pad";
    let Some(text) = str_arg(name, &s)? else {
        return Ok(Val::Null);
    };
    let Some(width) = int_arg(name, width)? else {
        return Ok(Val::Null);
    };
    let left = match (n >= 3, str_arg(name, side)?) {
        (false, _) => true,
        (true, None) => return Ok(Val::Null),
        (true, Some(side)) => side_is_left(side)?,
    };
    let fill = match (n >= 4, str_arg(name, fill)?) {
        (false, _) => ' ',
        (true, None) => return Ok(Val::Null),
        (true, Some(f)) => one_char(f)?,
    };
    if width < 0 {
        return fail(format!("`pad` width is negative ({width})"));
    }
    let have = text.chars().count();
    let width = usize::try_from(width).unwrap_or(usize::MAX);
    if have >= width {
        return Ok(s);
    }
    let missing = width - have;
    check_len(
        missing
            .saturating_mul(fill.len_utf8())
            .saturating_add(text.len()),
    )?;
    let mut out = String::with_capacity(text.len() + missing * fill.len_utf8());
    if !left {
        out.push_str(text);
    }
    out.extend(std::iter::repeat_n(fill, missing));
    if left {
        out.push_str(text);
    }
    Ok(Val::String(out))
}

/// `"left"` or `"right"` (the side `pad` adds to).
pub(crate) fn side_is_left(side: &str) -> R<bool> {
    match side {
        "left" => Ok(true),
        "right" => Ok(false),
        other => fail(format!(
            "`pad` side must be \"left\" or \"right\", got {other:?}"
        )),
    }
}

fn one_char(fill: &str) -> R<char> {
    let mut chars = fill.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) => Ok(c),
        _ => fail(format!("`pad` fill must be one character, got {fill:?}")),
    }
}

/// A piece of a `format` template.
pub(crate) enum Piece<'t> {
    Text(&'t str),
    Brace(char),
    Hole,
}

/// Splits a `format` template into text, escaped braces (`{{`, `}}`) and holes (`{}`).
pub(crate) fn template(t: &str) -> Result<Vec<Piece<'_>>, String> {
    let mut pieces = Vec::new();
    let mut rest = t;
    while let Some(at) = rest.find(['{', '}']) {
        if at > 0 {
            pieces.push(Piece::Text(&rest[..at]));
        }
        let tail = &rest[at..];
        if tail.starts_with("{}") {
            pieces.push(Piece::Hole);
        } else if tail.starts_with("{{") {
            pieces.push(Piece::Brace('{'));
        } else if tail.starts_with("}}") {
            pieces.push(Piece::Brace('}'));
        } else {
            return Err(format!(
                "`format` template has a lone `{}`; write `{{}}` for a value, `{{{{` or `}}}}` for a brace",
                &tail[..1]
            ));
        }
        rest = &tail[2..];
    }
    if !rest.is_empty() {
        pieces.push(Piece::Text(rest));
    }
    Ok(pieces)
}

/// `format(template, values...)`.
pub(super) fn format<'a>(args: &'a [Node], cx: &Ctx<'a>) -> R<Val<'a>> {
    let Some((first, values)) = args.split_first() else {
        return Ok(Val::Null);
    };
    let t = eval(first, cx)?;
    let Some(t) = str_arg("format", &t)? else {
        return Ok(Val::Null);
    };
    let pieces = match template(t) {
        Ok(p) => p,
        Err(message) => return fail(message),
    };
    let holes = pieces.iter().filter(|p| matches!(p, Piece::Hole)).count();
    if holes != values.len() {
        return fail(holes_message(holes, values.len()));
    }
    let mut out = String::new();
    let mut values = values.iter();
    for piece in pieces {
        match piece {
            Piece::Text(s) => out.push_str(s),
            Piece::Brace(c) => out.push(c),
            Piece::Hole => {
                if let Some(n) = values.next() {
                    eval(n, cx)?.write_to(&mut out);
                }
            }
        }
        check_len(out.len())?;
    }
    Ok(Val::String(out))
}

/// The message for a template whose holes do not match the values.
pub(crate) fn holes_message(holes: usize, values: usize) -> String {
    format!("`format` template has {holes} `{{}}` but {values} values follow it")
}

/// `clamp(x, lo, hi)`: integers stay integers; a float anywhere gives a float.
pub(super) fn clamp<'a>(x: Val<'a>, lo: Val<'a>, hi: Val<'a>) -> R<Val<'a>> {
    for v in [&x, &lo, &hi] {
        if !matches!(v, Val::Null | Val::Int(_) | Val::Float(_)) {
            return type_error("clamp", "a number", v);
        }
    }
    let f = |v: &Val| match v {
        Val::Int(i) => *i as f64,
        Val::Float(f) => *f,
        _ => 0.0,
    };
    match (&x, &lo, &hi) {
        (Val::Null, _, _) | (_, Val::Null, _) | (_, _, Val::Null) => Ok(Val::Null),
        (Val::Int(x), Val::Int(lo), Val::Int(hi)) => {
            if lo > hi {
                return fail(format!("`clamp`: lo ({lo}) is above hi ({hi})"));
            }
            Ok(Val::Int((*x).clamp(*lo, *hi)))
        }
        _ => {
            let (x, lo, hi) = (f(&x), f(&lo), f(&hi));
            if lo > hi || lo.is_nan() || hi.is_nan() {
                return fail(format!("`clamp`: lo ({lo}) is not at most hi ({hi})"));
            }
            Ok(Val::Float(if x.is_nan() { x } else { x.clamp(lo, hi) }))
        }
    }
}

/// `regex_match`, `regex_replace`, `regex_extract`, with the pattern compiled by the compiler.
pub(super) fn regex_call<'a>(b: &'a Builtin, args: &'a [Node], cx: &Ctx<'a>) -> R<Val<'a>> {
    let name = b.func.name();
    let s = eval(&args[0], cx)?;
    let Some(s) = str_arg(name, &s)? else {
        return Ok(Val::Null);
    };
    // A null pattern (the only constant the compiler leaves without a regex) gives null.
    let Some(re) = &b.regex else {
        return Ok(Val::Null);
    };
    match b.func {
        Func::RegexMatch => Ok(Val::Bool(re.is_match(s))),
        Func::RegexReplace => {
            let to = eval(&args[2], cx)?;
            let Some(to) = str_arg(name, &to)? else {
                return Ok(Val::Null);
            };
            let mut out = String::new();
            let mut last = 0;
            for caps in re.captures_iter(s) {
                let Some(m) = caps.get(0) else { continue };
                out.push_str(&s[last..m.start()]);
                caps.expand(to, &mut out);
                check_len(out.len())?;
                last = m.end();
            }
            check_len(out.len() + s.len() - last)?;
            out.push_str(&s[last..]);
            Ok(Val::String(out))
        }
        _ => {
            let group = match args.get(2) {
                Some(n) => match int_arg(name, &eval(n, cx)?)? {
                    Some(g) => g,
                    None => return Ok(Val::Null),
                },
                None => 0,
            };
            let groups = re.captures_len();
            let Some(g) = usize::try_from(group).ok().filter(|g| *g < groups) else {
                return fail(format!(
                    "`regex_extract`: group {group} does not exist (the pattern has {} groups)",
                    groups - 1
                ));
            };
            Ok(match re.captures(s).and_then(|c| c.get(g)) {
                Some(m) => Val::String(m.as_str().to_owned()),
                None => Val::Null,
            })
        }
    }
}
