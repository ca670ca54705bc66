//! Turns expression text into tokens (CESQLLexer.g4, case-insensitive
//! keywords).

use crate::error::ParseError;

/// One lexical token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Tok {
    LParen,
    RParen,
    Comma,
    Star,
    Slash,
    Percent,
    Plus,
    Minus,
    Eq,
    NotEq,
    LtGt,
    Lt,
    Le,
    Gt,
    Ge,
    /// Unsigned digits; `None` when the value exceeds `u32` (always out of
    /// range for a 32-bit literal).
    Int(Option<u32>),
    /// A string literal, unescaped.
    Str(String),
    /// A word that is not a keyword: an attribute or function name, as
    /// written.
    Word(String),
    And,
    Or,
    Xor,
    Not,
    Like,
    Exists,
    In,
    True,
    False,
    Eof,
}

impl Tok {
    /// How the token is named in error messages.
    pub(crate) fn describe(&self) -> String {
        match self {
            Tok::LParen => "'('".into(),
            Tok::RParen => "')'".into(),
            Tok::Comma => "','".into(),
            Tok::Star => "'*'".into(),
            Tok::Slash => "'/'".into(),
            Tok::Percent => "'%'".into(),
            Tok::Plus => "'+'".into(),
            Tok::Minus => "'-'".into(),
            Tok::Eq => "'='".into(),
            Tok::NotEq => "'!='".into(),
            Tok::LtGt => "'<>'".into(),
            Tok::Lt => "'<'".into(),
            Tok::Le => "'<='".into(),
            Tok::Gt => "'>'".into(),
            Tok::Ge => "'>='".into(),
            Tok::Int(_) => "an integer".into(),
            Tok::Str(_) => "a string".into(),
            Tok::Word(w) => format!("'{w}'"),
            Tok::And => "AND".into(),
            Tok::Or => "OR".into(),
            Tok::Xor => "XOR".into(),
            Tok::Not => "NOT".into(),
            Tok::Like => "LIKE".into(),
            Tok::Exists => "EXISTS".into(),
            Tok::In => "IN".into(),
            Tok::True => "TRUE".into(),
            Tok::False => "FALSE".into(),
            Tok::Eof => "end of input".into(),
        }
    }
}

/// A token and the byte range it covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Token {
    pub(crate) tok: Tok,
    pub(crate) start: usize,
    pub(crate) end: usize,
}

/// Splits `src` into tokens, ending with [`Tok::Eof`].
pub(crate) fn tokenize(src: &str) -> Result<Vec<Token>, ParseError> {
    let bytes = src.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let start = i;
        let single = |tok| (tok, 1);
        let (tok, len) = match c {
            b' ' | b'\t' | b'\r' | b'\n' => {
                i += 1;
                continue;
            }
            b'(' => single(Tok::LParen),
            b')' => single(Tok::RParen),
            b',' => single(Tok::Comma),
            b'*' => single(Tok::Star),
            b'/' => single(Tok::Slash),
            b'%' => single(Tok::Percent),
            b'+' => single(Tok::Plus),
            b'-' => single(Tok::Minus),
            b'=' => single(Tok::Eq),
            b'!' if bytes.get(i + 1) == Some(&b'=') => (Tok::NotEq, 2),
            b'<' => match bytes.get(i + 1) {
                Some(b'=') => (Tok::Le, 2),
                Some(b'>') => (Tok::LtGt, 2),
                _ => single(Tok::Lt),
            },
            b'>' => match bytes.get(i + 1) {
                Some(b'=') => (Tok::Ge, 2),
                _ => single(Tok::Gt),
            },
            b'\'' | b'"' => {
                let (text, len) = string_literal(src, i)?;
                (Tok::Str(text), len)
            }
            c if c.is_ascii_alphanumeric() || c == b'_' => {
                let len = bytes[i..]
                    .iter()
                    .take_while(|b| b.is_ascii_alphanumeric() || **b == b'_')
                    .count();
                (word(&src[i..i + len]), len)
            }
            _ => {
                let ch = src[i..].chars().next().unwrap_or('?');
                return Err(ParseError::at(
                    src,
                    i,
                    format!("unexpected character {ch:?}"),
                ));
            }
        };
        i += len;
        tokens.push(Token { tok, start, end: i });
    }
    tokens.push(Token {
        tok: Tok::Eof,
        start: src.len(),
        end: src.len(),
    });
    Ok(tokens)
}

/// Classifies a run of `[A-Za-z0-9_]`: an integer, a keyword, or a name.
fn word(text: &str) -> Tok {
    if text.bytes().all(|b| b.is_ascii_digit()) {
        let value = text.bytes().try_fold(0u32, |acc, d| {
            acc.checked_mul(10)?.checked_add(u32::from(d - b'0'))
        });
        return Tok::Int(value);
    }
    const KEYWORDS: [(&str, Tok); 9] = [
        ("AND", Tok::And),
        ("OR", Tok::Or),
        ("XOR", Tok::Xor),
        ("NOT", Tok::Not),
        ("LIKE", Tok::Like),
        ("EXISTS", Tok::Exists),
        ("IN", Tok::In),
        ("TRUE", Tok::True),
        ("FALSE", Tok::False),
    ];
    for (kw, tok) in KEYWORDS {
        if text.eq_ignore_ascii_case(kw) {
            return tok;
        }
    }
    Tok::Word(text.to_owned())
}

/// Reads the string literal starting at byte `start` (a quote); returns its
/// unescaped text and its length in bytes.
///
/// Escapes: `\q` and `qq` (where `q` is the delimiting quote) stand for `q`,
/// and `\\` for one backslash. Any other backslash is kept as written, so a
/// LIKE pattern such as `'a\%'` still carries its escape to the LIKE matcher.
fn string_literal(src: &str, start: usize) -> Result<(String, usize), ParseError> {
    let quote = src.as_bytes()[start] as char;
    let mut out = String::new();
    let mut chars = src[start + 1..].char_indices().peekable();
    while let Some((off, c)) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some((_, n)) if n == quote || n == '\\' => out.push(n),
                Some((_, n)) => {
                    out.push('\\');
                    out.push(n);
                }
                None => break,
            }
        } else if c == quote {
            if chars.peek().map(|&(_, n)| n) == Some(quote) {
                chars.next();
                out.push(quote);
            } else {
                return Ok((out, off + 2));
            }
        } else {
            out.push(c);
        }
    }
    Err(ParseError::at(src, start, "unterminated string literal"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        tokenize(s).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn keywords_are_case_insensitive() {
        assert_eq!(
            toks("and Or xOR not LIKE exists In tRuE false"),
            vec![
                Tok::And,
                Tok::Or,
                Tok::Xor,
                Tok::Not,
                Tok::Like,
                Tok::Exists,
                Tok::In,
                Tok::True,
                Tok::False,
                Tok::Eof
            ]
        );
    }

    #[test]
    fn words_and_numbers() {
        assert_eq!(
            toks("andy 12 1a concat_ws 99999999999"),
            vec![
                Tok::Word("andy".into()),
                Tok::Int(Some(12)),
                Tok::Word("1a".into()),
                Tok::Word("concat_ws".into()),
                Tok::Int(None),
                Tok::Eof
            ]
        );
    }

    #[test]
    fn operators() {
        assert_eq!(
            toks("<=<>>=!=<>=(),*/%+-"),
            vec![
                Tok::Le,
                Tok::LtGt,
                Tok::Ge,
                Tok::NotEq,
                Tok::LtGt,
                Tok::Eq,
                Tok::LParen,
                Tok::RParen,
                Tok::Comma,
                Tok::Star,
                Tok::Slash,
                Tok::Percent,
                Tok::Plus,
                Tok::Minus,
                Tok::Eof
            ]
        );
    }

    #[test]
    fn string_escapes() {
        assert_eq!(toks(r#"'a"b\'c'"#)[0], Tok::Str("a\"b'c".into()));
        assert_eq!(toks(r#""a'b\"c""#)[0], Tok::Str("a'b\"c".into()));
        assert_eq!(toks("'it''s'")[0], Tok::Str("it's".into()));
        assert_eq!(toks(r"'a\\b'")[0], Tok::Str(r"a\b".into()));
        assert_eq!(toks(r"'a\%b\_c\d'")[0], Tok::Str(r"a\%b\_c\d".into()));
        assert_eq!(toks("'é'")[0], Tok::Str("é".into()));
        assert_eq!(toks("''")[0], Tok::Str(String::new()));
    }

    #[test]
    fn errors_have_positions() {
        let e = tokenize("a = 'abc").unwrap_err();
        assert_eq!(e.column(), 5);
        assert!(e.message().contains("unterminated"));
        let e = tokenize(r"'abc\'").unwrap_err();
        assert!(e.message().contains("unterminated"));
        let e = tokenize("a ! b").unwrap_err();
        assert_eq!(e.column(), 3);
        let e = tokenize("a = é").unwrap_err();
        assert!(e.message().contains('é'));
    }
}
