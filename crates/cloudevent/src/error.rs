//! Errors of the event model and its codecs.
//!
//! Decoding collects *every* problem it finds rather than stopping at the first, because the
//! people reading these errors (users of `spindle event validate`, producers getting a 400) fix
//! all of them in one go when they see all of them.

use std::fmt;

/// One thing wrong with an event: where (batch index, attribute) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Position of the event in a batch, when it came from one.
    pub index: Option<usize>,
    /// The attribute (or `data` / `data_base64`) at fault, when there is one.
    pub attribute: Option<String>,
    /// What is wrong, for a human.
    pub message: String,
}

impl Problem {
    /// A problem with a named attribute.
    pub fn attribute(name: impl Into<String>, message: impl Into<String>) -> Self {
        Problem {
            index: None,
            attribute: Some(name.into()),
            message: message.into(),
        }
    }

    /// A problem with the event as a whole.
    pub fn event(message: impl Into<String>) -> Self {
        Problem {
            index: None,
            attribute: None,
            message: message.into(),
        }
    }

    /// The same problem, located at a batch index.
    pub fn at_index(mut self, index: usize) -> Self {
        self.index = Some(index);
        self
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(index) = self.index {
            write!(f, "event [{index}]: ")?;
        }
        if let Some(attribute) = &self.attribute {
            write!(f, "{attribute}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// Why bytes could not become events, or events could not be written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The input is not well-formed JSON (or not the JSON shape the format requires).
    #[error("{}malformed JSON at line {line}, column {column}: {message}", index_prefix(*.index))]
    MalformedJson {
        /// Position in a batch, when the fault is inside one member.
        index: Option<usize>,
        /// 1-based line of the fault.
        line: usize,
        /// 1-based column of the fault.
        column: usize,
        /// The parser's explanation.
        message: String,
    },
    /// The input is not a well-formed message of a binary event format (Protobuf, Avro).
    #[error("{}malformed {format} event: {message}", index_prefix(*.index))]
    Malformed {
        /// The format, `protobuf` or `avro`.
        format: &'static str,
        /// Position in a batch, when the fault is inside one member.
        index: Option<usize>,
        /// What is wrong with the bytes.
        message: String,
    },
    /// The input is well-formed but breaks CloudEvents rules; every problem found is listed.
    #[error("{}", ProblemList(.0))]
    Invalid(Vec<Problem>),
    /// A structured-mode media type naming an event format Spindle does not speak, or (HTTP) a
    /// declared media type that is no CloudEvents format, with no binary-mode `ce-specversion`.
    #[error(
        "unsupported event format `{0}`: Spindle reads binary mode and the formats application/cloudevents+json, application/cloudevents+protobuf, application/cloudevents+avro and the JSON and Protobuf batch formats"
    )]
    UnsupportedFormat(String),
    /// The message carries no CloudEvent at all (for example no `ce-specversion` header).
    #[error("not a CloudEvent: {0}")]
    NotCloudEvent(String),
    /// The input is larger than the configured cap.
    #[error("input of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Size seen (or at least seen so far).
        size: usize,
        /// The cap in force.
        limit: usize,
    },
}

impl Error {
    /// Every problem, in a list, whatever the kind of error: what a CLI or an HTTP problem
    /// body shows.
    pub fn problems(&self) -> Vec<Problem> {
        match self {
            Error::Invalid(problems) => problems.clone(),
            other => vec![Problem::event(other.to_string())],
        }
    }

    /// A single-problem [`Error::Invalid`].
    pub fn invalid(problem: Problem) -> Self {
        Error::Invalid(vec![problem])
    }

    /// The same error, located at a batch index.
    pub(crate) fn at_index(self, at: usize) -> Self {
        match self {
            Error::Invalid(problems) => {
                Error::Invalid(problems.into_iter().map(|p| p.at_index(at)).collect())
            }
            Error::MalformedJson {
                line,
                column,
                message,
                ..
            } => Error::MalformedJson {
                index: Some(at),
                line,
                column,
                message,
            },
            Error::Malformed {
                format, message, ..
            } => Error::Malformed {
                format,
                index: Some(at),
                message,
            },
            other => other,
        }
    }

    pub(crate) fn from_json(error: &serde_json::Error) -> Self {
        // serde_json appends " at line L column C" to its message; we carry them as fields.
        let message = error.to_string();
        let message = match message.rfind(" at line ") {
            Some(at) => message[..at].to_owned(),
            None => message,
        };
        Error::MalformedJson {
            index: None,
            line: error.line(),
            column: error.column(),
            message,
        }
    }
}

fn index_prefix(index: Option<usize>) -> String {
    index.map(|i| format!("event [{i}]: ")).unwrap_or_default()
}

struct ProblemList<'a>(&'a [Problem]);

impl fmt::Display for ProblemList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            [] => f.write_str("invalid event"),
            [one] => write!(f, "invalid event: {one}"),
            many => {
                write!(f, "invalid event ({} problems)", many.len())?;
                for p in many {
                    write!(f, "\n  - {p}")?;
                }
                Ok(())
            }
        }
    }
}
