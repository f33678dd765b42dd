//! Source text to tokens, each with the byte offset where it starts.

use super::error::ExprError;

/// A token of the expression language.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    /// An integer literal, not yet range-checked (`-9223372036854775808` needs 2^63).
    Int(u64),
    Float(f64),
    Str(String),
    /// A bare identifier: an attribute, or a function name when `(` follows.
    Ident(String),
    /// A backtick-quoted attribute name.
    Quoted(String),
    True,
    False,
    Null,
    /// `&&` or `and`.
    And,
    /// `||` or `or`.
    Or,
    /// `!` or `not`.
    Not,
    In,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
    EqEq,
    NotEq,
    Lt,
    Le,
    Gt,
    Ge,
    Eof,
}

impl Tok {
    /// How the token is named in error messages.
    pub(crate) fn describe(&self) -> String {
        match self {
            Tok::Int(_) | Tok::Float(_) => "a number".into(),
            Tok::Str(_) => "a string".into(),
            Tok::Ident(name) => format!("`{name}`"),
            Tok::Quoted(name) => format!("`{name}`"),
            Tok::Eof => "end of expression".into(),
            other => format!("`{}`", other.symbol()),
        }
    }

    fn symbol(&self) -> &'static str {
        match self {
            Tok::True => "true",
            Tok::False => "false",
            Tok::Null => "null",
            Tok::And => "&&",
            Tok::Or => "||",
            Tok::Not => "!",
            Tok::In => "in",
            Tok::LParen => "(",
            Tok::RParen => ")",
            Tok::LBracket => "[",
            Tok::RBracket => "]",
            Tok::Comma => ",",
            Tok::Plus => "+",
            Tok::Minus => "-",
            Tok::Star => "*",
            Tok::Slash => "/",
            Tok::Percent => "%",
            Tok::EqEq => "==",
            Tok::NotEq => "!=",
            Tok::Lt => "<",
            Tok::Le => "<=",
            Tok::Gt => ">",
            Tok::Ge => ">=",
            _ => "",
        }
    }
}

/// A token and the byte offset of its first character.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub tok: Tok,
    pub offset: usize,
}

fn err<T>(message: impl Into<String>, offset: usize) -> Result<T, ExprError> {
    Err(ExprError {
        message: message.into(),
        offset,
    })
}

/// Splits `src` into tokens; the last one is always [`Tok::Eof`] at `src.len()`.
pub(crate) fn lex(src: &str) -> Result<Vec<Token>, ExprError> {
    let bytes = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        let b = bytes[i];
        let two = |next: u8| bytes.get(i + 1) == Some(&next);
        let (tok, len) = match b {
            b' ' | b'\t' | b'\n' | b'\r' => {
                i += 1;
                continue;
            }
            b'(' => (Tok::LParen, 1),
            b')' => (Tok::RParen, 1),
            b'[' => (Tok::LBracket, 1),
            b']' => (Tok::RBracket, 1),
            b',' => (Tok::Comma, 1),
            b'+' => (Tok::Plus, 1),
            b'-' => (Tok::Minus, 1),
            b'*' => (Tok::Star, 1),
            b'/' => (Tok::Slash, 1),
            b'%' => (Tok::Percent, 1),
            b'=' if two(b'=') => (Tok::EqEq, 2),
            b'=' => return err("unexpected `=`; use `==` to compare", start),
            b'!' if two(b'=') => (Tok::NotEq, 2),
            b'!' => (Tok::Not, 1),
            b'<' if two(b'=') => (Tok::Le, 2),
            b'<' => (Tok::Lt, 1),
            b'>' if two(b'=') => (Tok::Ge, 2),
            b'>' => (Tok::Gt, 1),
            b'&' if two(b'&') => (Tok::And, 2),
            b'&' => return err("unexpected `&`; use `&&` for logical and", start),
            b'|' if two(b'|') => (Tok::Or, 2),
            b'|' => return err("unexpected `|`; use `||` for logical or", start),
            b'"' | b'\'' => {
                let (s, end) = string(src, start, b)?;
                (Tok::Str(s), end - start)
            }
            b'`' => {
                let (s, end) = string(src, start, b'`')?;
                if s.is_empty() {
                    return err("empty attribute name", start);
                }
                (Tok::Quoted(s), end - start)
            }
            b'0'..=b'9' => number(src, start)?,
            b'A'..=b'Z' | b'a'..=b'z' | b'_' => {
                let end = bytes[start..]
                    .iter()
                    .position(|c| !(c.is_ascii_alphanumeric() || *c == b'_'))
                    .map_or(bytes.len(), |p| start + p);
                let word = &src[start..end];
                let tok = match word {
                    "true" => Tok::True,
                    "false" => Tok::False,
                    "null" => Tok::Null,
                    "and" => Tok::And,
                    "or" => Tok::Or,
                    "not" => Tok::Not,
                    "in" => Tok::In,
                    _ => Tok::Ident(word.to_owned()),
                };
                (tok, end - start)
            }
            _ => {
                let c = src[start..].chars().next().unwrap_or('?');
                return err(format!("unexpected character `{c}`"), start);
            }
        };
        out.push(Token { tok, offset: start });
        i = start + len;
    }
    out.push(Token {
        tok: Tok::Eof,
        offset: src.len(),
    });
    Ok(out)
}

/// A quoted string or name starting at `start` (the quote); returns its text and the offset
/// just past the closing quote.
fn string(src: &str, start: usize, quote: u8) -> Result<(String, usize), ExprError> {
    let mut out = String::new();
    let mut chars = src[start + 1..].char_indices();
    while let Some((i, c)) = chars.next() {
        let at = start + 1 + i;
        match c {
            '\\' => {
                let escaped = match chars.next() {
                    Some((_, '"')) => '"',
                    Some((_, '\'')) => '\'',
                    Some((_, '`')) => '`',
                    Some((_, '\\')) => '\\',
                    Some((_, 'n')) => '\n',
                    Some((_, 't')) => '\t',
                    Some((_, 'r')) => '\r',
                    Some((_, other)) => return err(format!("unknown escape `\\{other}`"), at),
                    None => break,
                };
                out.push(escaped);
            }
            c if c as u32 == quote as u32 => return Ok((out, at + 1)),
            c => out.push(c),
        }
    }
    let what = if quote == b'`' {
        "attribute name"
    } else {
        "string"
    };
    err(format!("unterminated {what}"), start)
}

/// A number starting at `start`: `digits ('.' digits)? (('e'|'E') ('+'|'-')? digits)?`.
fn number(src: &str, start: usize) -> Result<(Tok, usize), ExprError> {
    let bytes = src.as_bytes();
    let digits = |from: usize| {
        bytes[from..]
            .iter()
            .position(|c| !c.is_ascii_digit())
            .map_or(bytes.len(), |p| from + p)
    };
    let mut end = digits(start);
    let mut is_float = false;
    if bytes.get(end) == Some(&b'.') {
        let frac_end = digits(end + 1);
        if frac_end == end + 1 {
            return err("expected digits after `.`", end + 1);
        }
        end = frac_end;
        is_float = true;
    }
    if matches!(bytes.get(end), Some(b'e' | b'E')) {
        let mut exp = end + 1;
        if matches!(bytes.get(exp), Some(b'+' | b'-')) {
            exp += 1;
        }
        let exp_end = digits(exp);
        if exp_end == exp {
            return err("expected digits in the exponent", exp);
        }
        end = exp_end;
        is_float = true;
    }
    if matches!(bytes.get(end), Some(c) if c.is_ascii_alphabetic() || *c == b'_') {
        return err("invalid number", start);
    }
    let text = &src[start..end];
    let tok = if is_float {
        match text.parse::<f64>() {
            Ok(f) if f.is_finite() => Tok::Float(f),
            _ => return err("float literal out of range", start),
        }
    } else {
        match text.parse::<u64>() {
            Ok(i) if i <= 1 << 63 => Tok::Int(i),
            _ => return err("integer literal out of range", start),
        }
    };
    Ok((tok, end - start))
}
