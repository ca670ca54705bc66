//! The filter dialects of the CloudEvents Subscriptions API (§3.2.4):
//! `exact`, `prefix`, `suffix`, `all`, `any`, `not` and `sql`, compiled from
//! their JSON form into one [`Filter`] tree.
//!
//! In `exact`/`prefix`/`suffix`, values are compared with the attribute's
//! canonical string form, case-sensitively, and a missing attribute does not
//! match. A `sql` filter passes only if its CESQL expression yields `true`
//! without errors.
//!
//! ```
//! use cesql::{Filter, MapEvent};
//! use serde_json::json;
//!
//! // A subscription's `filters` array: all entries must match.
//! let filters = [
//!     json!({"prefix": {"type": "com.example."}}),
//!     json!({"any": [{"exact": {"source": "/shop/eu"}}, {"sql": "source LIKE '/store/%'"}]}),
//! ];
//! let filter = Filter::from_json_list(&filters)?;
//! let event = MapEvent::new()
//!     .with("type", "com.example.order.created".to_string())
//!     .with("source", "/shop/eu".to_string());
//! assert!(filter.matches(&event));
//! assert_eq!(filter.to_json_list(), filters); // echo back as received
//!
//! let err = Filter::from_json(&json!({"sql": "type = 'x' AND"})).unwrap_err();
//! assert_eq!(
//!     err.to_string(),
//!     "/sql: invalid CESQL expression: expected an expression, found end of input (line 1, column 15)"
//! );
//! # Ok::<(), cesql::FilterError>(())
//! ```

use std::fmt;

use serde_json::{Map, Value as Json};

use crate::error::{EvalError, ParseError};
use crate::expression::Expression;
use crate::value::{EventAttributes, Type};

/// How deeply `all`/`any`/`not` filters may nest.
pub const MAX_FILTER_DEPTH: usize = 64;

/// Which attribute comparison an attribute-map dialect performs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchKind {
    /// `exact`: equal.
    Exact,
    /// `prefix`: starts with.
    Prefix,
    /// `suffix`: ends with.
    Suffix,
}

impl MatchKind {
    /// The dialect name.
    pub fn dialect(self) -> &'static str {
        match self {
            MatchKind::Exact => "exact",
            MatchKind::Prefix => "prefix",
            MatchKind::Suffix => "suffix",
        }
    }

    #[inline]
    fn test(self, attribute: &str, value: &str) -> bool {
        match self {
            MatchKind::Exact => attribute == value,
            MatchKind::Prefix => attribute.starts_with(value),
            MatchKind::Suffix => attribute.ends_with(value),
        }
    }
}

/// A compiled subscription filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Filter {
    /// `exact`/`prefix`/`suffix`: every (attribute, value) pair must match.
    Attributes {
        /// The comparison.
        kind: MatchKind,
        /// Attribute names and values, in document order; never empty.
        entries: Vec<(String, String)>,
    },
    /// `all`: every filter matches (an empty list, from an empty `filters`
    /// array, matches everything).
    All(Vec<Filter>),
    /// `any`: at least one filter matches.
    Any(Vec<Filter>),
    /// `not`: the filter does not match.
    Not(Box<Filter>),
    /// `sql`: a CESQL expression.
    Sql(Box<Expression>),
}

/// Why a filter was rejected; `path` is a JSON pointer to the culprit within
/// what was parsed (e.g. `/0/all/1`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    /// A filter is not a JSON object.
    #[error("{path}: a filter must be a JSON object with one dialect key, found {found}")]
    NotAnObject {
        /// Where.
        path: String,
        /// The JSON type found.
        found: &'static str,
    },
    /// A filter object has no key.
    #[error("{path}: the filter object is empty; it needs one dialect key")]
    NoDialect {
        /// Where.
        path: String,
    },
    /// A filter object has several keys.
    #[error("{path}: a filter object must have exactly one dialect key, found {}", keys.join(", "))]
    SeveralDialects {
        /// Where.
        path: String,
        /// The keys found.
        keys: Vec<String>,
    },
    /// The dialect is not supported.
    #[error(
        "{path}: unknown filter dialect {dialect:?} (supported: exact, prefix, suffix, all, any, not, sql)"
    )]
    UnknownDialect {
        /// Where.
        path: String,
        /// The dialect name.
        dialect: String,
    },
    /// The dialect's value has the wrong JSON type.
    #[error("{path}: the value of {dialect:?} must be {expected}, found {found}")]
    WrongType {
        /// Where.
        path: String,
        /// The dialect.
        dialect: &'static str,
        /// What was expected.
        expected: &'static str,
        /// The JSON type found.
        found: &'static str,
    },
    /// An `exact`/`prefix`/`suffix` object or an `all`/`any` array is empty.
    #[error("{path}: {dialect:?} needs at least one entry")]
    Empty {
        /// Where.
        path: String,
        /// The dialect.
        dialect: &'static str,
    },
    /// An attribute name is the empty string.
    #[error("{path}: {dialect:?} has an empty attribute name")]
    EmptyAttributeName {
        /// Where.
        path: String,
        /// The dialect.
        dialect: &'static str,
    },
    /// An attribute value is not a string.
    #[error("{path}: {dialect:?} value of attribute {attribute:?} must be a string, found {found}")]
    NonStringValue {
        /// Where.
        path: String,
        /// The dialect.
        dialect: &'static str,
        /// The attribute.
        attribute: String,
        /// The JSON type found.
        found: &'static str,
    },
    /// An attribute value is the empty string.
    #[error("{path}: {dialect:?} value of attribute {attribute:?} must not be empty")]
    EmptyValue {
        /// Where.
        path: String,
        /// The dialect.
        dialect: &'static str,
        /// The attribute.
        attribute: String,
    },
    /// The CESQL expression does not parse.
    #[error("{path}: invalid CESQL expression: {error}")]
    InvalidSql {
        /// Where.
        path: String,
        /// The parse error, with its position in the expression.
        error: ParseError,
    },
    /// The CESQL expression parses but cannot work as a filter: it calls an
    /// unknown function, contains a constant that fails, or does not yield a
    /// Boolean.
    #[error("{path}: unusable CESQL expression: {problem}")]
    UnusableSql {
        /// Where.
        path: String,
        /// What is wrong.
        problem: String,
    },
    /// Filters nest deeper than [`MAX_FILTER_DEPTH`].
    #[error("{path}: filters are nested too deeply (limit {MAX_FILTER_DEPTH})")]
    TooDeep {
        /// Where.
        path: String,
    },
}

fn json_type(v: &Json) -> &'static str {
    match v {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

/// Escapes a key for a JSON pointer (RFC 6901).
fn pointer_token(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

impl Filter {
    /// Compiles one filter from its JSON form, e.g.
    /// `{"prefix": {"type": "com.example."}}`.
    pub fn from_json(json: &Json) -> Result<Filter, FilterError> {
        Self::parse(json, "", 0)
    }

    /// Compiles a subscription's `filters` array: all of them must match
    /// (an empty array matches every event).
    pub fn from_json_list(list: &[Json]) -> Result<Filter, FilterError> {
        list.iter()
            .enumerate()
            .map(|(i, f)| Self::parse(f, &format!("/{i}"), 1))
            .collect::<Result<Vec<_>, _>>()
            .map(Filter::All)
    }

    /// Compiles a CESQL expression as a `sql` filter, with the same checks
    /// as [`Filter::from_json`].
    pub fn sql(expression: &str) -> Result<Filter, FilterError> {
        Self::parse_sql(expression, "/sql")
    }

    fn parse(json: &Json, path: &str, depth: usize) -> Result<Filter, FilterError> {
        if depth > MAX_FILTER_DEPTH {
            return Err(FilterError::TooDeep { path: path.into() });
        }
        let object = json.as_object().ok_or_else(|| FilterError::NotAnObject {
            path: path_or_root(path),
            found: json_type(json),
        })?;
        let mut keys = object.iter();
        let (dialect, body) = match (keys.next(), keys.next()) {
            (None, _) => {
                return Err(FilterError::NoDialect {
                    path: path_or_root(path),
                });
            }
            (Some(entry), None) => entry,
            (Some(_), Some(_)) => {
                return Err(FilterError::SeveralDialects {
                    path: path_or_root(path),
                    keys: object.keys().cloned().collect(),
                });
            }
        };
        let here = format!("{path}/{}", pointer_token(dialect));
        match dialect.as_str() {
            "exact" => Self::parse_attributes(MatchKind::Exact, body, &here),
            "prefix" => Self::parse_attributes(MatchKind::Prefix, body, &here),
            "suffix" => Self::parse_attributes(MatchKind::Suffix, body, &here),
            "all" | "any" => {
                let name = if dialect == "all" { "all" } else { "any" };
                let items = body.as_array().ok_or_else(|| FilterError::WrongType {
                    path: here.clone(),
                    dialect: name,
                    expected: "an array of filters",
                    found: json_type(body),
                })?;
                if items.is_empty() {
                    return Err(FilterError::Empty {
                        path: here,
                        dialect: name,
                    });
                }
                let filters = items
                    .iter()
                    .enumerate()
                    .map(|(i, f)| Self::parse(f, &format!("{here}/{i}"), depth + 1))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(if name == "all" {
                    Filter::All(filters)
                } else {
                    Filter::Any(filters)
                })
            }
            "not" => {
                if !body.is_object() {
                    return Err(FilterError::WrongType {
                        path: here,
                        dialect: "not",
                        expected: "a filter object",
                        found: json_type(body),
                    });
                }
                Ok(Filter::Not(Box::new(Self::parse(body, &here, depth + 1)?)))
            }
            "sql" => match body.as_str() {
                Some(s) => Self::parse_sql(s, &here),
                None => Err(FilterError::WrongType {
                    path: here,
                    dialect: "sql",
                    expected: "a string (a CESQL expression)",
                    found: json_type(body),
                }),
            },
            other => Err(FilterError::UnknownDialect {
                path: path_or_root(path),
                dialect: other.to_owned(),
            }),
        }
    }

    fn parse_attributes(kind: MatchKind, body: &Json, path: &str) -> Result<Filter, FilterError> {
        let dialect = kind.dialect();
        let object = body.as_object().ok_or_else(|| FilterError::WrongType {
            path: path.into(),
            dialect,
            expected: "an object of attribute names to string values",
            found: json_type(body),
        })?;
        if object.is_empty() {
            return Err(FilterError::Empty {
                path: path.into(),
                dialect,
            });
        }
        let mut entries = Vec::with_capacity(object.len());
        for (name, value) in object {
            let at = format!("{path}/{}", pointer_token(name));
            if name.is_empty() {
                return Err(FilterError::EmptyAttributeName { path: at, dialect });
            }
            let value = value.as_str().ok_or_else(|| FilterError::NonStringValue {
                path: at.clone(),
                dialect,
                attribute: name.clone(),
                found: json_type(value),
            })?;
            if value.is_empty() {
                return Err(FilterError::EmptyValue {
                    path: at,
                    dialect,
                    attribute: name.clone(),
                });
            }
            entries.push((name.clone(), value.to_owned()));
        }
        Ok(Filter::Attributes { kind, entries })
    }

    fn parse_sql(source: &str, path: &str) -> Result<Filter, FilterError> {
        let expression = Expression::parse(source).map_err(|error| FilterError::InvalidSql {
            path: path.into(),
            error,
        })?;
        if let Some(problem) = expression.diagnostics().first() {
            return Err(FilterError::UnusableSql {
                path: path.into(),
                problem: problem.to_string(),
            });
        }
        match expression.return_type() {
            Some(Type::Boolean) | None => Ok(Filter::Sql(Box::new(expression))),
            Some(t) => Err(FilterError::UnusableSql {
                path: path.into(),
                problem: format!("it yields {t}, a filter needs Boolean"),
            }),
        }
    }

    /// Whether `event` passes the filter.
    #[inline]
    pub fn matches<E: EventAttributes + ?Sized>(&self, event: &E) -> bool {
        let mut errors = Vec::new();
        self.eval(event, &mut errors)
    }

    /// Whether `event` passes the filter, plus the CESQL evaluation errors
    /// met on the way (a `sql` filter with errors does not pass). Useful to
    /// explain a decision, e.g. in `spindle filter eval`.
    pub fn matches_with_errors<E: EventAttributes + ?Sized>(
        &self,
        event: &E,
    ) -> (bool, Vec<EvalError>) {
        let mut errors = Vec::new();
        let pass = self.eval(event, &mut errors);
        (pass, errors)
    }

    fn eval<E: EventAttributes + ?Sized>(&self, event: &E, errors: &mut Vec<EvalError>) -> bool {
        match self {
            Filter::Attributes { kind, entries } => attributes_match(*kind, entries, event),
            Filter::All(filters) => filters.iter().all(|f| f.eval_child(event, errors)),
            Filter::Any(filters) => filters.iter().any(|f| f.eval_child(event, errors)),
            Filter::Not(filter) => !filter.eval(event, errors),
            Filter::Sql(expression) => expression.matches_collecting(event, errors),
        }
    }

    /// Evaluates a member of `all`/`any`, checking attribute leaves in place
    /// rather than through a recursive call.
    #[inline(always)]
    fn eval_child<E: EventAttributes + ?Sized>(
        &self,
        event: &E,
        errors: &mut Vec<EvalError>,
    ) -> bool {
        match self {
            Filter::Attributes { kind, entries } => attributes_match(*kind, entries, event),
            other => other.eval(event, errors),
        }
    }

    /// The JSON form of the filter, as accepted by [`Filter::from_json`].
    pub fn to_json(&self) -> Json {
        let (dialect, body) = match self {
            Filter::Attributes { kind, entries } => {
                let mut m = Map::new();
                for (n, v) in entries {
                    m.insert(n.clone(), Json::String(v.clone()));
                }
                (kind.dialect(), Json::Object(m))
            }
            Filter::All(fs) => ("all", Json::Array(fs.iter().map(Filter::to_json).collect())),
            Filter::Any(fs) => ("any", Json::Array(fs.iter().map(Filter::to_json).collect())),
            Filter::Not(f) => ("not", f.to_json()),
            Filter::Sql(e) => ("sql", Json::String(e.source().to_owned())),
        };
        let mut m = Map::new();
        m.insert(dialect.to_owned(), body);
        Json::Object(m)
    }

    /// The JSON form as a subscription's `filters` array: the members of the
    /// top-level `all` (as built by [`Filter::from_json_list`]), or a
    /// one-element array otherwise.
    pub fn to_json_list(&self) -> Vec<Json> {
        match self {
            Filter::All(fs) => fs.iter().map(Filter::to_json).collect(),
            other => vec![other.to_json()],
        }
    }
}

/// Whether every (attribute, value) pair matches; a missing attribute does
/// not.
#[inline(always)]
fn attributes_match<E: EventAttributes + ?Sized>(
    kind: MatchKind,
    entries: &[(String, String)],
    event: &E,
) -> bool {
    entries.iter().all(|(name, value)| {
        event
            .attribute(name)
            .is_some_and(|v| v.with_canonical_str(|s| kind.test(s, value)))
    })
}

fn path_or_root(path: &str) -> String {
    if path.is_empty() {
        "/".to_owned()
    } else {
        path.to_owned()
    }
}

impl fmt::Display for Filter {
    /// Writes the JSON form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.to_json())
    }
}

impl serde::Serialize for Filter {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

impl<'de> serde::Deserialize<'de> for Filter {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let json = Json::deserialize(deserializer)?;
        Filter::from_json(&json).map_err(serde::de::Error::custom)
    }
}
