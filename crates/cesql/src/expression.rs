//! [`Expression`]: a parsed, checked and compiled CESQL expression.

use std::fmt;
use std::str::FromStr;

use crate::ast::Expr;
use crate::check;
use crate::error::{EvalError, ParseError};
use crate::eval::Node;
use crate::parser;
use crate::value::{EventAttributes, Type, Value};

/// A compiled CESQL expression, ready to be evaluated against many events.
///
/// Compile once (parsing, function resolution, LIKE patterns, constant
/// folding happen here), evaluate often: evaluation of attribute comparisons
/// does not allocate.
#[derive(Debug, Clone)]
pub struct Expression {
    source: String,
    ast: Expr,
    node: Node,
    diagnostics: Vec<EvalError>,
}

/// The result of evaluating an expression: a value, always, and the errors
/// raised on the way (spec §3.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation<'a> {
    /// The value of the expression (the zero value of its type where errors
    /// prevented computing it).
    pub value: Value<'a>,
    /// The errors raised, in evaluation order; empty on success.
    pub errors: Vec<EvalError>,
}

impl Evaluation<'_> {
    /// Whether no error was raised.
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }

    /// Whether an event passes when the expression is a filter: the value is
    /// the Boolean `true` and no error was raised (spec §1.2).
    pub fn passes(&self) -> bool {
        self.errors.is_empty() && self.value == Value::Boolean(true)
    }

    /// A copy that does not borrow from the expression or the event.
    pub fn into_owned(self) -> Evaluation<'static> {
        Evaluation {
            value: self.value.into_owned(),
            errors: self.errors,
        }
    }
}

impl Expression {
    /// Parses and compiles `source`.
    ///
    /// Fails with the position of the first syntax error, or if the text is
    /// longer than [`crate::MAX_EXPRESSION_LEN`] bytes or nested deeper than
    /// [`crate::MAX_DEPTH`]. Unknown functions are not parse errors (the spec
    /// makes them evaluation errors); see [`Expression::diagnostics`].
    pub fn parse(source: &str) -> Result<Expression, ParseError> {
        let ast = parser::parse(source)?;
        let mut diagnostics = Vec::new();
        let node = check::compile(&ast, &mut diagnostics);
        Ok(Expression {
            source: source.to_owned(),
            ast,
            node,
            diagnostics,
        })
    }

    /// The text the expression was parsed from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The syntax tree.
    pub fn ast(&self) -> &Expr {
        &self.ast
    }

    /// The static type of the result, or `None` when it depends on the event
    /// (the expression is a bare attribute).
    pub fn return_type(&self) -> Option<Type> {
        self.node.static_type()
    }

    /// Errors the type checker can already tell will be raised when the part
    /// of the expression holding them is evaluated: calls to unknown
    /// functions, constant sub-expressions that fail (`1 / 0`,
    /// `INT('abc')`). A subscription manager can reject such filters early.
    pub fn diagnostics(&self) -> &[EvalError] {
        &self.diagnostics
    }

    /// Evaluates the expression against `event`, collecting every error.
    pub fn evaluate<'a, E: EventAttributes + ?Sized>(&'a self, event: &'a E) -> Evaluation<'a> {
        let mut errors = Vec::new();
        let value = self.node.eval(event, &mut errors);
        Evaluation { value, errors }
    }

    /// Whether `event` passes the expression as a filter: the result is the
    /// Boolean `true` without errors (spec §1.2); the same as
    /// `self.evaluate(event).passes()`, but faster. A String such as `"true"`
    /// does not pass: write `BOOL(flag)` or `flag = TRUE` for attributes that
    /// carry booleans as text.
    #[inline]
    pub fn matches<E: EventAttributes + ?Sized>(&self, event: &E) -> bool {
        let mut errors = Vec::new();
        self.matches_collecting(event, &mut errors)
    }

    /// [`Expression::matches`] that also reports the errors that made the
    /// event fail.
    #[inline]
    pub fn matches_collecting<E: EventAttributes + ?Sized>(
        &self,
        event: &E,
        errors: &mut Vec<EvalError>,
    ) -> bool {
        let mark = errors.len();
        let pass = match self.node.static_type() {
            Some(Type::Boolean) => self.node.eval_bool(event, errors),
            None => self.node.eval(event, errors) == Value::Boolean(true),
            Some(_) => false,
        };
        pass && errors.len() == mark
    }
}

impl FromStr for Expression {
    type Err = ParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Expression::parse(s)
    }
}

impl fmt::Display for Expression {
    /// Writes the source text.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl PartialEq for Expression {
    /// Expressions are equal when their syntax trees are.
    fn eq(&self, other: &Self) -> bool {
        self.ast == other.ast
    }
}

impl Eq for Expression {}

impl serde::Serialize for Expression {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.source)
    }
}

impl<'de> serde::Deserialize<'de> for Expression {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        Expression::parse(&s).map_err(serde::de::Error::custom)
    }
}
