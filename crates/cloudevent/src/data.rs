//! The event payload.

use std::fmt;

use bytes::Bytes;

/// What the payload is at runtime, which decides how the JSON format writes it
/// (`data_base64` for binary, a JSON value for JSON, a JSON string for text).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DataKind {
    /// Opaque bytes: binary-mode bodies, `data_base64`.
    Binary,
    /// A Unicode string carried by a non-JSON `datacontenttype` (`"data": "<xml/>"`).
    Text,
    /// JSON text (always well-formed), carried by a JSON `datacontenttype`.
    Json,
}

/// An event's `data`: bytes, plus what they are.
///
/// Bytes are reference-counted, so moving a payload between a request body, the event and a
/// response body never copies it. Two payloads are equal when their bytes are: the kind is a
/// representation hint, not part of the value (a JSON body received in binary mode and the
/// same JSON received in structured mode are the same data).
#[derive(Clone)]
pub struct Data {
    bytes: Bytes,
    kind: DataKind,
}

impl Data {
    /// Opaque bytes.
    pub fn binary(bytes: impl Into<Bytes>) -> Self {
        Data {
            bytes: bytes.into(),
            kind: DataKind::Binary,
        }
    }

    /// A string payload.
    pub fn text(text: impl Into<String>) -> Self {
        Data {
            bytes: Bytes::from(text.into()),
            kind: DataKind::Text,
        }
    }

    /// A JSON value, written compactly.
    pub fn json(value: &serde_json::Value) -> Self {
        Data {
            bytes: Bytes::from(value.to_string()),
            kind: DataKind::Json,
        }
    }

    /// JSON text, checked to be well-formed (UTF-8 throughout, RFC 8259 section 8.1); the text
    /// is kept byte for byte.
    pub fn json_text(text: impl Into<Bytes>) -> Result<Self, serde_json::Error> {
        let bytes = text.into();
        let text = std::str::from_utf8(&bytes).map_err(|e| {
            <serde_json::Error as serde::de::Error>::custom(format!("JSON text is not UTF-8: {e}"))
        })?;
        serde_json::from_str::<serde::de::IgnoredAny>(text)?;
        Ok(Data {
            bytes,
            kind: DataKind::Json,
        })
    }

    /// Whether `bytes` are a JSON document: UTF-8 throughout and well-formed. (serde_json's
    /// byte-slice parser does not check UTF-8 inside strings, so such bytes copied into a JSON
    /// event would make it unreadable.)
    pub fn is_json_text(bytes: &[u8]) -> bool {
        std::str::from_utf8(bytes)
            .is_ok_and(|text| serde_json::from_str::<serde::de::IgnoredAny>(text).is_ok())
    }

    /// JSON text the caller has already checked.
    pub(crate) fn json_unchecked(bytes: Bytes) -> Self {
        Data {
            bytes,
            kind: DataKind::Json,
        }
    }

    /// The payload's bytes, as a protocol body carries them.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The payload's bytes, shared.
    pub fn to_bytes(&self) -> Bytes {
        self.bytes.clone()
    }

    /// The payload's bytes, consuming it.
    pub fn into_bytes(self) -> Bytes {
        self.bytes
    }

    /// What the payload is.
    pub fn kind(&self) -> DataKind {
        self.kind
    }

    /// The payload as UTF-8 text, when it is.
    pub fn as_str(&self) -> Option<&str> {
        std::str::from_utf8(&self.bytes).ok()
    }

    /// Number of bytes.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Whether the payload has no bytes.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

impl PartialEq for Data {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}

impl Eq for Data {}

impl fmt::Debug for Data {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.kind, self.as_str()) {
            (DataKind::Binary, _) | (_, None) => write!(f, "Binary({} bytes)", self.bytes.len()),
            (DataKind::Text, Some(s)) => f.debug_tuple("Text").field(&s).finish(),
            (DataKind::Json, Some(s)) => write!(f, "Json({s})"),
        }
    }
}
