//! A hand-written Pratt parser for CESQLParser.g4.
//!
//! Precedence, highest first (the order of the grammar's alternatives):
//! function call, `NOT`, unary `-`, `LIKE`, `EXISTS`, `IN`, `* / %`, `+ -`,
//! comparisons, then `AND`/`OR`/`XOR` (one level, right associative).
//!
//! Both the parser's recursion and the depth of the tree it builds are
//! bounded by [`MAX_DEPTH`], and the text by [`MAX_EXPRESSION_LEN`], so no
//! input can overflow the stack here or in the later passes.

use crate::ast::{BinaryOp, Expr, LogicOp, UnaryOp};
use crate::error::ParseError;
use crate::lexer::{Tok, Token, tokenize};
use crate::value::Value;

/// The deepest nesting of operators, parentheses and calls accepted.
pub const MAX_DEPTH: usize = 200;

/// The longest expression text accepted, in bytes.
pub const MAX_EXPRESSION_LEN: usize = 64 * 1024;

/// Binding power of the operands of prefix operators: above every infix or
/// postfix operator.
const PREFIX_BP: u8 = 7;
const LIKE_BP: u8 = 6;
const IN_BP: u8 = 5;
const MUL_BP: u8 = 4;
const ADD_BP: u8 = 3;
const CMP_BP: u8 = 2;
const LOGIC_BP: u8 = 1;

/// Parses `src` into a syntax tree.
pub(crate) fn parse(src: &str) -> Result<Expr, ParseError> {
    if src.len() > MAX_EXPRESSION_LEN {
        return Err(ParseError::at(
            src,
            0,
            format!(
                "expression is {} bytes long, the limit is {MAX_EXPRESSION_LEN}",
                src.len()
            ),
        ));
    }
    let tokens = tokenize(src)?;
    let mut parser = Parser {
        src,
        tokens,
        pos: 0,
        depth: 0,
    };
    let (expr, _) = parser.expr(0)?;
    let next = parser.peek();
    if next.tok != Tok::Eof {
        return Err(parser.error_here(format!(
            "unexpected {} after the end of the expression",
            next.tok.describe()
        )));
    }
    Ok(expr)
}

/// A parsed node and the depth of the tree under it (a leaf is 1).
type Parsed = (Expr, usize);

/// What an infix/postfix step did with the left operand.
enum Step {
    /// Built a larger node; look for more operators.
    Continue(Parsed),
    /// The operator binds too loosely here; return the operand as is.
    Stop(Parsed),
}

struct Parser<'s> {
    src: &'s str,
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
}

impl Parser<'_> {
    fn peek(&self) -> &Token {
        // The token list always ends with Eof, and `bump` never moves past it.
        &self.tokens[self.pos.min(self.tokens.len() - 1)]
    }

    fn peek_at(&self, n: usize) -> &Tok {
        &self.tokens[(self.pos + n).min(self.tokens.len() - 1)].tok
    }

    fn bump(&mut self) -> Token {
        let t = self.peek().clone();
        if t.tok != Tok::Eof {
            self.pos += 1;
        }
        t
    }

    fn error_here(&self, message: impl Into<String>) -> ParseError {
        ParseError::at(self.src, self.peek().start, message)
    }

    fn expect(&mut self, tok: Tok, what: &str) -> Result<Token, ParseError> {
        if self.peek().tok == tok {
            Ok(self.bump())
        } else {
            Err(self.error_here(format!(
                "expected {what}, found {}",
                self.peek().tok.describe()
            )))
        }
    }

    /// Checks the depth of a node being built.
    fn node(&self, expr: Expr, depth: usize, at: usize) -> Result<Parsed, ParseError> {
        if depth > MAX_DEPTH {
            return Err(ParseError::at(
                self.src,
                at,
                format!("expression is nested too deeply (limit {MAX_DEPTH})"),
            ));
        }
        Ok((expr, depth))
    }

    /// Parses an expression whose operators all bind at least `min_bp`.
    fn expr(&mut self, min_bp: u8) -> Result<Parsed, ParseError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error_here(format!(
                "expression is nested too deeply (limit {MAX_DEPTH})"
            )));
        }
        let result = self.expr_inner(min_bp);
        self.depth -= 1;
        result
    }

    // The functions on the recursive path (`expr`, `expr_inner`, `prefix`
    // and the one arm taken) are kept small, each arm in its own function,
    // so that even unoptimized builds use little stack per nesting level.

    fn expr_inner(&mut self, min_bp: u8) -> Result<Parsed, ParseError> {
        let mut lhs = self.prefix()?;
        loop {
            let step = match self.peek().tok {
                Tok::Like | Tok::In | Tok::Not => self.postfix(lhs, min_bp)?,
                Tok::Star
                | Tok::Slash
                | Tok::Percent
                | Tok::Plus
                | Tok::Minus
                | Tok::Eq
                | Tok::NotEq
                | Tok::LtGt
                | Tok::Lt
                | Tok::Le
                | Tok::Gt
                | Tok::Ge => self.binary(lhs, min_bp)?,
                Tok::And | Tok::Or | Tok::Xor => self.logic(lhs, min_bp)?,
                _ => return Ok(lhs),
            };
            match step {
                Step::Continue(p) => lhs = p,
                Step::Stop(p) => return Ok(p),
            }
        }
    }

    /// `[NOT] LIKE 'pattern'` or `[NOT] IN (set)` after `lhs`.
    fn postfix(&mut self, (lhs, depth): Parsed, min_bp: u8) -> Result<Step, ParseError> {
        let at = self.peek().start;
        let negated = self.peek().tok == Tok::Not;
        let op = if negated {
            self.peek_at(1).clone()
        } else {
            self.peek().tok.clone()
        };
        let bp = match op {
            Tok::Like => LIKE_BP,
            Tok::In => IN_BP,
            _ => {
                // `x NOT y`: NOT only continues as NOT LIKE / NOT IN.
                if min_bp > IN_BP {
                    return Ok(Step::Stop((lhs, depth)));
                }
                self.bump();
                return Err(self.not_without_like_or_in());
            }
        };
        if bp < min_bp {
            return Ok(Step::Stop((lhs, depth)));
        }
        if negated {
            self.bump();
        }
        self.bump();
        let parsed = if op == Tok::Like {
            let pattern = self.like_pattern()?;
            let operand = Box::new(lhs);
            self.node(
                Expr::Like {
                    operand,
                    pattern,
                    negated,
                },
                depth + 1,
                at,
            )?
        } else {
            let (set, set_depth) = self.list(false, "IN")?;
            let operand = Box::new(lhs);
            self.node(
                Expr::In {
                    operand,
                    set,
                    negated,
                },
                depth.max(set_depth) + 1,
                at,
            )?
        };
        Ok(Step::Continue(parsed))
    }

    #[cold]
    #[inline(never)]
    fn not_without_like_or_in(&self) -> ParseError {
        self.error_here(format!(
            "expected LIKE or IN after NOT, found {}",
            self.peek().tok.describe()
        ))
    }

    fn like_pattern(&mut self) -> Result<String, ParseError> {
        match self.bump() {
            Token {
                tok: Tok::Str(s), ..
            } => Ok(s),
            t => Err(ParseError::at(
                self.src,
                t.start,
                format!(
                    "the pattern of LIKE must be a string literal, found {}",
                    t.tok.describe()
                ),
            )),
        }
    }

    /// An arithmetic or comparison operator after `lhs`.
    fn binary(&mut self, (lhs, depth): Parsed, min_bp: u8) -> Result<Step, ParseError> {
        let at = self.peek().start;
        let (op, bp) = match self.peek().tok {
            Tok::Star => (BinaryOp::Mul, MUL_BP),
            Tok::Slash => (BinaryOp::Div, MUL_BP),
            Tok::Percent => (BinaryOp::Mod, MUL_BP),
            Tok::Plus => (BinaryOp::Add, ADD_BP),
            Tok::Minus => (BinaryOp::Sub, ADD_BP),
            Tok::Eq => (BinaryOp::Eq, CMP_BP),
            Tok::NotEq | Tok::LtGt => (BinaryOp::NotEq, CMP_BP),
            Tok::Lt => (BinaryOp::Lt, CMP_BP),
            Tok::Le => (BinaryOp::Le, CMP_BP),
            Tok::Gt => (BinaryOp::Gt, CMP_BP),
            _ => (BinaryOp::Ge, CMP_BP),
        };
        if bp < min_bp {
            return Ok(Step::Stop((lhs, depth)));
        }
        self.bump();
        // Left associative: the right side binds tighter.
        let (rhs, rhs_depth) = self.expr(bp + 1)?;
        let (left, right) = (Box::new(lhs), Box::new(rhs));
        let parsed = self.node(
            Expr::Binary { op, left, right },
            depth.max(rhs_depth) + 1,
            at,
        )?;
        Ok(Step::Continue(parsed))
    }

    /// A chain of AND/OR/XOR after `lhs`, collected flat; it means
    /// `a op (b op (c ...))`.
    fn logic(&mut self, (lhs, depth): Parsed, min_bp: u8) -> Result<Step, ParseError> {
        if LOGIC_BP < min_bp {
            return Ok(Step::Stop((lhs, depth)));
        }
        let at = self.peek().start;
        let mut rest = Vec::new();
        let mut chain_depth = depth;
        while let Some(op) = logic_op(&self.peek().tok) {
            self.bump();
            let (rhs, rhs_depth) = self.expr(LOGIC_BP + 1)?;
            chain_depth = chain_depth.max(rhs_depth);
            rest.push((op, rhs));
        }
        let first = Box::new(lhs);
        let parsed = self.node(Expr::Logic { first, rest }, chain_depth + 1, at)?;
        Ok(Step::Continue(parsed))
    }

    /// Parses a prefix operator application or a primary expression.
    fn prefix(&mut self) -> Result<Parsed, ParseError> {
        let token = self.bump();
        let at = token.start;
        match token.tok {
            Tok::Not => self.unary(UnaryOp::Not, at),
            Tok::Minus => match *self.peek_at(0) {
                Tok::Int(value) => self.negative_literal(value, at),
                _ => self.unary(UnaryOp::Neg, at),
            },
            Tok::Plus => self.plus(at),
            Tok::Int(value) => self.int_literal(value, at, token.end),
            Tok::Str(s) => Ok((Expr::Literal(Value::from(s)), 1)),
            Tok::True => Ok((Expr::Literal(Value::Boolean(true)), 1)),
            Tok::False => Ok((Expr::Literal(Value::Boolean(false)), 1)),
            Tok::Exists => self.exists(),
            Tok::Word(word) => self.word(word, at),
            Tok::LParen => self.parenthesized(),
            other => Err(self.expected_expression(&other, at)),
        }
    }

    #[cold]
    #[inline(never)]
    fn expected_expression(&self, found: &Tok, at: usize) -> ParseError {
        ParseError::at(
            self.src,
            at,
            format!("expected an expression, found {}", found.describe()),
        )
    }

    fn unary(&mut self, op: UnaryOp, at: usize) -> Result<Parsed, ParseError> {
        let (operand, d) = self.expr(PREFIX_BP)?;
        let operand = Box::new(operand);
        self.node(Expr::Unary { op, operand }, d + 1, at)
    }

    /// `-` directly followed by digits: a signed literal, so that
    /// `-2147483648` is in range.
    fn negative_literal(&mut self, value: Option<u32>, at: usize) -> Result<Parsed, ParseError> {
        let t = self.bump();
        let v = value
            .map(|v| -i64::from(v))
            .filter(|v| *v >= i64::from(i32::MIN));
        match v {
            Some(v) => Ok((Expr::Literal(Value::Integer(v as i32)), 1)),
            None => Err(out_of_range(self.src, at, t.end)),
        }
    }

    fn plus(&mut self, at: usize) -> Result<Parsed, ParseError> {
        match *self.peek_at(0) {
            Tok::Int(value) => {
                let t = self.bump();
                self.int_literal(value, at, t.end)
            }
            ref other => Err(ParseError::at(
                self.src,
                self.peek().start,
                format!(
                    "expected an integer after the sign '+', found {}",
                    other.describe()
                ),
            )),
        }
    }

    fn exists(&mut self) -> Result<Parsed, ParseError> {
        let t = self.bump();
        match t.tok {
            Tok::Word(name) => {
                let name = self.attribute_name(&name, t.start)?;
                Ok((Expr::Exists(name), 1))
            }
            other => Err(ParseError::at(
                self.src,
                t.start,
                format!(
                    "expected an attribute name after EXISTS, found {}",
                    other.describe()
                ),
            )),
        }
    }

    /// An attribute, or a function call when `(` follows.
    fn word(&mut self, word: String, at: usize) -> Result<Parsed, ParseError> {
        if self.peek().tok == Tok::LParen {
            let name = self.function_name(&word, at)?;
            let (args, d) = self.list(true, &name)?;
            self.node(Expr::Call { name, args }, d + 1, at)
        } else {
            let name = self.attribute_name(&word, at)?;
            Ok((Expr::Attribute(name), 1))
        }
    }

    fn parenthesized(&mut self) -> Result<Parsed, ParseError> {
        let inner = self.expr(0)?;
        self.expect(Tok::RParen, "')'")?;
        Ok(inner)
    }

    fn int_literal(&self, value: Option<u32>, at: usize, end: usize) -> Result<Parsed, ParseError> {
        match value.and_then(|v| i32::try_from(v).ok()) {
            Some(v) => Ok((Expr::Literal(Value::Integer(v)), 1)),
            None => Err(out_of_range(self.src, at, end)),
        }
    }

    /// Parses `( e, e, ... )`; `allow_empty` for function arguments (a set
    /// needs at least one element). Returns the elements and their maximum
    /// depth.
    fn list(&mut self, allow_empty: bool, what: &str) -> Result<(Vec<Expr>, usize), ParseError> {
        self.expect(Tok::LParen, &format!("'(' after {what}"))?;
        let mut items = Vec::new();
        let mut depth = 0;
        if self.peek().tok == Tok::RParen {
            if allow_empty {
                self.bump();
                return Ok((items, depth));
            }
            return Err(self.error_here("the set of IN needs at least one element"));
        }
        loop {
            let (e, d) = self.expr(0)?;
            depth = depth.max(d);
            items.push(e);
            match self.peek().tok {
                Tok::Comma => {
                    self.bump();
                }
                Tok::RParen => {
                    self.bump();
                    return Ok((items, depth));
                }
                ref other => {
                    return Err(self.error_here(format!(
                        "expected ',' or ')' in the list of {what}, found {}",
                        other.describe()
                    )));
                }
            }
        }
    }

    /// Validates and lower-cases an attribute name (`[a-zA-Z0-9]+`).
    fn attribute_name(&self, word: &str, at: usize) -> Result<String, ParseError> {
        if word.bytes().all(|b| b.is_ascii_alphanumeric()) {
            Ok(word.to_ascii_lowercase())
        } else {
            Err(ParseError::at(
                self.src,
                at,
                format!("invalid attribute name '{word}': only letters and digits are allowed"),
            ))
        }
    }

    /// Validates and upper-cases a function name (`[a-zA-Z][a-zA-Z_]*`).
    fn function_name(&self, word: &str, at: usize) -> Result<String, ParseError> {
        let mut bytes = word.bytes();
        let first_ok = bytes.next().is_some_and(|b| b.is_ascii_alphabetic());
        if first_ok && bytes.all(|b| b.is_ascii_alphabetic() || b == b'_') {
            Ok(word.to_ascii_uppercase())
        } else {
            Err(ParseError::at(
                self.src,
                at,
                format!("invalid function name '{word}': a letter, then letters and underscores"),
            ))
        }
    }
}

fn logic_op(tok: &Tok) -> Option<LogicOp> {
    match tok {
        Tok::And => Some(LogicOp::And),
        Tok::Or => Some(LogicOp::Or),
        Tok::Xor => Some(LogicOp::Xor),
        _ => None,
    }
}

fn out_of_range(src: &str, at: usize, end: usize) -> ParseError {
    let text = src.get(at..end).unwrap_or("");
    ParseError::at(
        src,
        at,
        format!("integer literal {text} is outside the 32-bit range"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> String {
        parse(s).unwrap().to_string()
    }

    fn err(s: &str) -> ParseError {
        parse(s).unwrap_err()
    }

    #[test]
    fn arithmetic_precedence_and_associativity() {
        assert_eq!(p("4 * 2 + 4 / 2"), "((4 * 2) + (4 / 2))");
        assert_eq!(p("1 - 2 - 3"), "((1 - 2) - 3)");
        assert_eq!(p("1 + 2 * 3 = 7"), "((1 + (2 * 3)) = 7)");
        assert_eq!(p("a < b = TRUE"), "((a < b) = TRUE)");
    }

    #[test]
    fn logic_is_one_right_associative_level() {
        assert_eq!(p("a AND b OR c"), "(a AND b OR c)");
        let e = parse("a AND b OR c").unwrap();
        match e {
            Expr::Logic { rest, .. } => {
                assert_eq!(
                    rest.iter().map(|r| r.0).collect::<Vec<_>>(),
                    [LogicOp::And, LogicOp::Or]
                )
            }
            _ => panic!("not a chain"),
        }
        assert_eq!(p("a = 1 and b = 2"), "((a = 1) AND (b = 2))");
        assert_eq!(p("(a and b) or c"), "((a AND b) OR c)");
    }

    #[test]
    fn prefix_operators_bind_tightest() {
        assert_eq!(p("NOT a = b"), "((NOT a) = b)");
        assert_eq!(p("NOT a AND b"), "((NOT a) AND b)");
        assert_eq!(p("-a * b"), "((- a) * b)");
        assert_eq!(p("NOT EXISTS time"), "(NOT (EXISTS time))");
        assert_eq!(p("NOT NOT TRUE"), "(NOT (NOT TRUE))");
    }

    #[test]
    fn like_and_in_bind_tighter_than_arithmetic() {
        assert_eq!(p("a + b LIKE 'x'"), "(a + (b LIKE 'x'))");
        assert_eq!(p("a * b IN (1)"), "(a * (b IN (1)))");
        assert_eq!(p("a LIKE 'x' IN (TRUE)"), "((a LIKE 'x') IN (TRUE))");
        assert_eq!(p("a NOT LIKE 'x'"), "(a NOT LIKE 'x')");
        assert_eq!(p("a NOT IN (1, 'b', c)"), "(a NOT IN (1, 'b', c))");
        assert_eq!(p("a not like 'x' and b"), "((a NOT LIKE 'x') AND b)");
    }

    #[test]
    fn signed_integer_literals() {
        assert_eq!(
            parse("-2147483648").unwrap(),
            Expr::Literal(Value::Integer(i32::MIN))
        );
        assert_eq!(parse("+5").unwrap(), Expr::Literal(Value::Integer(5)));
        assert_eq!(p("--10"), "(- -10)");
        assert_eq!(p("5-3"), "(5 - 3)");
        assert_eq!(p("4 + -1"), "(4 + -1)");
        assert!(err("2147483648").message().contains("32-bit"));
        assert!(err("-2147483649").message().contains("32-bit"));
        assert!(err("99999999999999999999").message().contains("32-bit"));
        assert!(err("+a").message().contains("integer after the sign"));
    }

    #[test]
    fn names_are_case_folded() {
        assert_eq!(parse("SOURCE").unwrap(), Expr::Attribute("source".into()));
        assert_eq!(parse("EXISTS Id").unwrap(), Expr::Exists("id".into()));
        assert_eq!(p("concat_ws(',', a)"), "CONCAT_WS(',', a)");
        assert_eq!(p("Int(hop)"), "INT(hop)");
    }

    #[test]
    fn calls_and_sets() {
        assert_eq!(p("CONCAT()"), "CONCAT()");
        assert_eq!(p("f(g(1), 2)"), "F(G(1), 2)");
        assert!(err("a IN ()").message().contains("at least one"));
        assert!(err("ABC(").message().contains("expected an expression"));
        assert!(err("ABC(1 2)").message().contains("expected ',' or ')'"));
        assert!(err("ab1(2)").message().contains("invalid function name"));
        assert!(err("a_b").message().contains("invalid attribute name"));
        assert!(
            err("EXISTS 1")
                .message()
                .contains("attribute name after EXISTS")
        );
    }

    #[test]
    fn like_needs_a_string_literal() {
        let e = err("x LIKE 123");
        assert!(e.message().contains("string literal"));
        assert_eq!(e.column(), 8);
        assert!(err("x LIKE y").message().contains("string literal"));
    }

    #[test]
    fn error_positions() {
        let e = err("a = = b");
        assert_eq!((e.line(), e.column()), (1, 5));
        let e = err("a = 1\n  AND (b");
        assert_eq!((e.line(), e.column()), (2, 9));
        assert!(e.message().contains("')'"));
        let e = err("a b");
        assert_eq!(e.column(), 3);
        assert!(e.message().contains("after the end"));
        assert!(err("").message().contains("end of input"));
        assert!(err("a NOT b").message().contains("LIKE or IN after NOT"));
        assert!(err("()").message().contains("expected an expression"));
    }

    #[test]
    fn depth_limits() {
        let ok = format!("{}1{}", "(".repeat(150), ")".repeat(150));
        assert!(parse(&ok).is_ok());
        let deep = format!(
            "{}1{}",
            "(".repeat(MAX_DEPTH + 1),
            ")".repeat(MAX_DEPTH + 1)
        );
        assert!(err(&deep).message().contains("nested too deeply"));
        let nots = format!("{}TRUE", "NOT ".repeat(10_000));
        assert!(err(&nots).message().contains("nested too deeply"));
        let sum = format!("1{}", " + 1".repeat(MAX_DEPTH + 1));
        assert!(err(&sum).message().contains("nested too deeply"));
        let calls = format!("{}1{}", "ABS(".repeat(5000), ")".repeat(5000));
        assert!(err(&calls).message().contains("nested too deeply"));
        // A flat logic chain is not deep.
        let chain = format!("a = 1{}", " OR a = 1".repeat(2000));
        assert!(parse(&chain).is_ok());
    }

    #[test]
    fn length_limit() {
        let long = format!("a = '{}'", "x".repeat(MAX_EXPRESSION_LEN));
        assert!(err(&long).message().contains("limit"));
    }

    #[test]
    fn display_round_trips() {
        for s in [
            "a AND (b OR c) XOR NOT d",
            r"x LIKE 'a\%b\\c''d'",
            "-(-5) + -2147483648",
            "CONCAT_WS(',', 'a', b) IN ('x', 1, TRUE)",
            "EXISTS a AND a NOT IN (1)",
            // A negated non-negative number stays a negation (found by the cesql fuzz target).
            "-(5)",
            "INT('12') + - -0 = 16",
        ] {
            let once = parse(s).unwrap();
            let twice = parse(&once.to_string()).unwrap();
            assert_eq!(once, twice, "{s}");
        }
    }
}
