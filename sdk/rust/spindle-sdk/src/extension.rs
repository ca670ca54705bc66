//! Typed CloudEvents extension values.

use crate::__bindings::spindle::cloudevents::types as wit;
use crate::timestamp::Timestamp;

/// The value of an extension attribute, in the CloudEvents type system.
///
/// Typed so that, e.g., an integer `sequence` survives transports that carry types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExtensionValue {
    /// `Boolean`.
    Boolean(bool),
    /// `Integer` (signed 32-bit).
    Integer(i32),
    /// `String`.
    String(String),
    /// `Binary`.
    Binary(Vec<u8>),
    /// `URI` (absolute).
    Uri(String),
    /// `URI-reference`.
    UriRef(String),
    /// `Timestamp`, RFC 3339.
    Timestamp(String),
}

impl ExtensionValue {
    /// The text of a string-like value (`String`, `URI`, `URI-reference`, `Timestamp`).
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) | Self::Uri(s) | Self::UriRef(s) | Self::Timestamp(s) => Some(s),
            _ => None,
        }
    }

    /// The instant, if this is a `Timestamp` holding a valid RFC 3339 string.
    pub fn as_timestamp(&self) -> Option<Timestamp> {
        match self {
            Self::Timestamp(s) => s.parse().ok(),
            _ => None,
        }
    }

    /// The integer, if this is an `Integer`.
    pub fn as_i32(&self) -> Option<i32> {
        match self {
            Self::Integer(i) => Some(*i),
            _ => None,
        }
    }

    /// The boolean, if this is a `Boolean`.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Self::Boolean(b) => Some(*b),
            _ => None,
        }
    }

    /// The bytes, if this is `Binary`.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Self::Binary(b) => Some(b),
            _ => None,
        }
    }

    pub(crate) fn from_wit(v: wit::AttributeValue) -> Self {
        match v {
            wit::AttributeValue::Boolean(b) => Self::Boolean(b),
            wit::AttributeValue::Integer(i) => Self::Integer(i),
            wit::AttributeValue::String(s) => Self::String(s),
            wit::AttributeValue::Binary(b) => Self::Binary(b),
            wit::AttributeValue::Uri(s) => Self::Uri(s),
            wit::AttributeValue::UriRef(s) => Self::UriRef(s),
            wit::AttributeValue::Timestamp(s) => Self::Timestamp(s),
        }
    }

    pub(crate) fn into_wit(self) -> wit::AttributeValue {
        match self {
            Self::Boolean(b) => wit::AttributeValue::Boolean(b),
            Self::Integer(i) => wit::AttributeValue::Integer(i),
            Self::String(s) => wit::AttributeValue::String(s),
            Self::Binary(b) => wit::AttributeValue::Binary(b),
            Self::Uri(s) => wit::AttributeValue::Uri(s),
            Self::UriRef(s) => wit::AttributeValue::UriRef(s),
            Self::Timestamp(s) => wit::AttributeValue::Timestamp(s),
        }
    }
}

impl From<bool> for ExtensionValue {
    fn from(b: bool) -> Self {
        Self::Boolean(b)
    }
}

impl From<i32> for ExtensionValue {
    fn from(i: i32) -> Self {
        Self::Integer(i)
    }
}

impl From<&str> for ExtensionValue {
    fn from(s: &str) -> Self {
        Self::String(s.to_owned())
    }
}

impl From<String> for ExtensionValue {
    fn from(s: String) -> Self {
        Self::String(s)
    }
}

impl From<Vec<u8>> for ExtensionValue {
    fn from(b: Vec<u8>) -> Self {
        Self::Binary(b)
    }
}

impl From<Timestamp> for ExtensionValue {
    /// A `Timestamp` extension in its canonical string form.
    fn from(t: Timestamp) -> Self {
        Self::Timestamp(t.to_string())
    }
}
