//! What the compiler checks on constant arguments, so a bad pattern, format or unit is a
//! compile error (with its offset) rather than a failure on every feature; and the regex
//! compiled once per node.

use std::sync::Arc;

use super::dates::{NO_OFFSET, check_format, has_offset, unit};
use super::strings::{Piece, holes_message, side_is_left, template};
use crate::expr::catalog::Func;
use crate::feature::Value;

/// Most memory a compiled pattern may take (regex's `size_limit`), in bytes.
pub(crate) const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// A problem with argument `arg` of a call.
pub(crate) struct ArgProblem {
    pub arg: usize,
    pub message: String,
}

fn problem(arg: usize, message: impl Into<String>) -> ArgProblem {
    ArgProblem {
        arg,
        message: message.into(),
    }
}

/// Checks the constant arguments of a call (`consts[i]` is `Some` when argument `i` is a
/// constant) and compiles its regex; a regex function's pattern must be a constant.
pub(crate) fn check(
    func: Func,
    consts: &[Option<&Value>],
) -> Result<Option<Arc<regex::Regex>>, ArgProblem> {
    let string = |i: usize| match consts.get(i) {
        Some(Some(Value::String(s))) => Some(&**s),
        _ => None,
    };
    let name = func.name();
    match func {
        Func::RegexMatch | Func::RegexReplace | Func::RegexExtract => match consts.get(1) {
            Some(Some(Value::String(p))) => regex::RegexBuilder::new(p)
                .size_limit(REGEX_SIZE_LIMIT)
                .build()
                .map(|re| Some(Arc::new(re)))
                .map_err(|e| problem(1, format!("invalid regular expression: {e}"))),
            Some(Some(Value::Null)) => Ok(None),
            Some(Some(other)) => Err(problem(
                1,
                format!(
                    "`{name}` expects a string pattern, got {}",
                    other.type_name()
                ),
            )),
            _ => Err(problem(
                1,
                format!("`{name}` needs a constant pattern (a string written in the expression)"),
            )),
        },
        Func::FormatDate | Func::ParseDate | Func::ParseDatetime | Func::ParseLocalDatetime => {
            if let Some(fmt) = string(1) {
                let items = check_format(fmt).map_err(|m| problem(1, m))?;
                if func == Func::ParseDatetime && !has_offset(&items) {
                    return Err(problem(1, NO_OFFSET));
                }
            }
            Ok(None)
        }
        Func::DateAdd | Func::DateDiff => {
            if let Some(u) = string(2) {
                let u = unit(u).map_err(|e| problem(2, e.message))?;
                if func == Func::DateDiff && !matches!(u, super::dates::Unit::Fixed(_)) {
                    return Err(problem(
                        2,
                        "`date_diff` counts seconds, minutes, hours, days or weeks",
                    ));
                }
            }
            Ok(None)
        }
        Func::Pad => {
            if let Some(side) = string(2) {
                side_is_left(side).map_err(|e| problem(2, e.message))?;
            }
            Ok(None)
        }
        Func::Format => {
            if let Some(t) = string(0) {
                let pieces = template(t).map_err(|m| problem(0, m))?;
                let holes = pieces.iter().filter(|p| matches!(p, Piece::Hole)).count();
                if holes != consts.len() - 1 {
                    return Err(problem(0, holes_message(holes, consts.len() - 1)));
                }
            }
            Ok(None)
        }
        _ => Ok(None),
    }
}
