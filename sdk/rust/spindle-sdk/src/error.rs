//! The handler error: a message and whether retrying can help.

use crate::__bindings::spindle::cloudevents::types as wit;
use std::fmt;

/// Whether the runtime should retry the event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// A passing condition: the runtime retries the event later, with back-off.
    Transient,
    /// The event can never succeed: the runtime dead-letters it.
    Permanent,
}

/// A handler's refusal of an event.
///
/// Like `anyhow::Error` it deliberately does not implement `std::error::Error`, so that `?`
/// converts any standard error into it (as [`ErrorKind::Permanent`]: an unexpected error is
/// most often a bad payload that retrying cannot fix).
pub struct Error {
    kind: ErrorKind,
    message: String,
}

/// `Result` with [`Error`] as the error: the return type of a handler.
pub type Result<T, E = Error> = core::result::Result<T, E>;

impl Error {
    /// An error worth retrying later (a dependency is down, a rate limit was hit).
    pub fn transient(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::Transient,
            message: message.into(),
        }
    }

    /// An error that retrying cannot fix (invalid payload, business rule violated).
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::Permanent,
            message: message.into(),
        }
    }

    /// Retry or not.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message recorded by the runtime.
    pub fn message(&self) -> &str {
        &self.message
    }

    pub(crate) fn into_wit(self) -> wit::HandlerError {
        wit::HandlerError {
            kind: match self.kind {
                ErrorKind::Transient => wit::ErrorKind::Transient,
                ErrorKind::Permanent => wit::ErrorKind::Permanent,
            },
            message: self.message,
        }
    }
}

impl<E: std::error::Error> From<E> for Error {
    fn from(e: E) -> Self {
        let mut message = e.to_string();
        let mut source = e.source();
        while let Some(s) = source {
            message.push_str(": ");
            message.push_str(&s.to_string());
            source = s.source();
        }
        Self::permanent(message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.kind, self.message)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn question_mark_on_std_errors_is_permanent() {
        fn parse() -> Result<i32> {
            Ok("x".parse::<i32>()?)
        }
        let e = parse().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Permanent);
        assert!(e.message().contains("invalid digit"), "{e}");
    }

    #[test]
    fn kinds_are_kept() {
        assert_eq!(Error::transient("later").kind(), ErrorKind::Transient);
        let w = Error::permanent("never").into_wit();
        assert_eq!(w.kind, wit::ErrorKind::Permanent);
        assert_eq!(w.message, "never");
    }
}
