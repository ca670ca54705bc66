//! Parse errors and evaluation errors (spec §3.3).

use crate::value::Type;

/// Why an expression could not be parsed, and where.
///
/// The position lets a CLI or API point at the offending character.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} (line {line}, column {column})")]
pub struct ParseError {
    offset: usize,
    line: usize,
    column: usize,
    message: String,
}

impl ParseError {
    /// Builds an error at byte `offset` of `source`, computing line and column.
    pub(crate) fn at(source: &str, offset: usize, message: impl Into<String>) -> Self {
        let offset = offset.min(source.len());
        let before = source.get(..offset).unwrap_or(source);
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        ParseError {
            offset,
            line,
            column,
            message: message.into(),
        }
    }

    /// Byte offset of the problem in the expression text.
    pub fn offset(&self) -> usize {
        self.offset
    }

    /// 1-based line of the problem.
    pub fn line(&self) -> usize {
        self.line
    }

    /// 1-based column (in characters) of the problem.
    pub fn column(&self) -> usize {
        self.column
    }

    /// What is wrong, without the position.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// The kinds of evaluation error the spec names (§3.3), without details.
///
/// Why: callers (and the TCK) classify errors without matching on messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// A mathematical operation failed (division by zero, overflow).
    Math,
    /// An implicit or explicit type cast failed.
    Cast,
    /// The expression addressed an attribute the event does not have.
    MissingAttribute,
    /// The expression called a function that does not exist with that arity.
    MissingFunction,
    /// A function was called with arguments outside its domain.
    FunctionEvaluation,
}

impl ErrorKind {
    /// The spelling used by the conformance kit (`math`, `cast`,
    /// `missingAttribute`, `missingFunction`, `functionEvaluation`).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Math => "math",
            ErrorKind::Cast => "cast",
            ErrorKind::MissingAttribute => "missingAttribute",
            ErrorKind::MissingFunction => "missingFunction",
            ErrorKind::FunctionEvaluation => "functionEvaluation",
        }
    }
}

/// An error raised while evaluating an expression.
///
/// CESQL is total: evaluation always yields a value, and errors come along
/// with it (see [`crate::Evaluation`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    /// Division or modulo by zero, or a result outside the 32-bit range.
    #[error("math error: {message}")]
    Math {
        /// What went wrong.
        message: &'static str,
    },
    /// A value could not be converted to the type an operator or function
    /// needs.
    #[error("cannot cast {from} {value:?} to {to}")]
    Cast {
        /// The type of the value.
        from: Type,
        /// The type that was needed.
        to: Type,
        /// The value, in canonical string form.
        value: String,
    },
    /// The event has no attribute with this name.
    #[error("missing attribute `{name}`")]
    MissingAttribute {
        /// The attribute name.
        name: String,
    },
    /// No function with this name takes this many arguments.
    #[error("no function {name} with {arity} argument(s)")]
    MissingFunction {
        /// The function name, upper case.
        name: String,
        /// The number of arguments of the call.
        arity: usize,
    },
    /// A function got arguments outside its domain.
    #[error("{function}: {message}")]
    FunctionEvaluation {
        /// The function name.
        function: &'static str,
        /// What went wrong.
        message: &'static str,
    },
}

impl EvalError {
    /// The spec's kind of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            EvalError::Math { .. } => ErrorKind::Math,
            EvalError::Cast { .. } => ErrorKind::Cast,
            EvalError::MissingAttribute { .. } => ErrorKind::MissingAttribute,
            EvalError::MissingFunction { .. } => ErrorKind::MissingFunction,
            EvalError::FunctionEvaluation { .. } => ErrorKind::FunctionEvaluation,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_line_and_character_based() {
        let e = ParseError::at("ab\ncé d", 7, "boom");
        assert_eq!((e.line(), e.column(), e.offset()), (2, 4, 7));
        assert_eq!(e.to_string(), "boom (line 2, column 4)");
        let e = ParseError::at("abc", 99, "end");
        assert_eq!((e.line(), e.column(), e.offset()), (1, 4, 3));
    }
}
