//! CloudEvents SQL (CESQL 1.0) and the CloudEvents Subscriptions API filter
//! dialects: parse, type-check, compile and evaluate expressions and filters
//! against events.
//!
//! The crate is pure (no I/O) and knows no event type: events are read
//! through [`EventAttributes`].
//!
//! ```
//! use cesql::{Expression, MapEvent, Value};
//!
//! let expr = Expression::parse("type = 'com.example.order.created' AND source LIKE '/shop/%'")?;
//! let event = MapEvent::new()
//!     .with("type", "com.example.order.created".to_string())
//!     .with("source", "/shop/eu".to_string());
//! let result = expr.evaluate(&event);
//! assert_eq!(result.value, Value::Boolean(true));
//! assert!(result.errors.is_empty());
//! assert!(expr.matches(&event));
//! # Ok::<(), cesql::ParseError>(())
//! ```
//!
//! Semantics worth knowing (all per the spec and its conformance kit):
//! keywords and function names are case-insensitive, attribute names are
//! lower-cased; AND, OR and XOR share one precedence level and associate to
//! the right, and `NOT` binds tighter than comparisons (`NOT a = b` is
//! `(NOT a) = b`); evaluation always yields a value together with a list of
//! errors; a missing attribute makes the sub-expression using it yield its
//! zero value plus a MissingAttributeError.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod ast;
mod cast;
mod check;
mod cloudevent_attributes;
mod error;
mod eval;
mod expression;
pub mod filter;
mod functions;
mod lexer;
mod like;
mod parser;
mod value;

pub use error::{ErrorKind, EvalError, ParseError};
pub use expression::{Evaluation, Expression};
pub use filter::{Filter, FilterError, MatchKind};
pub use like::LikePattern;
pub use parser::{MAX_DEPTH, MAX_EXPRESSION_LEN};
pub use value::{EventAttributes, MapEvent, NoAttributes, Type, Value};
