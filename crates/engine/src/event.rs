//! The host-side event: a plain mirror of the WIT `event` record.
//!
//! The engine deliberately does not depend on the core `cloudevent` crate, so it can evolve
//! alone; the runtime converts between the two at the boundary.

/// A CloudEvents extension value, typed per the CloudEvents type system (WIT `attribute-value`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AttributeValue {
    /// `Boolean`.
    Boolean(bool),
    /// `Integer` (signed 32-bit).
    Integer(i32),
    /// `String`.
    String(String),
    /// `Binary`.
    Binary(Vec<u8>),
    /// `URI`.
    Uri(String),
    /// `URI-reference`.
    UriRef(String),
    /// `Timestamp`, RFC 3339.
    Timestamp(String),
}

/// One CloudEvent as exchanged with a component (WIT `event`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// `id`.
    pub id: String,
    /// `source`, a URI-reference.
    pub source: String,
    /// `specversion`, `1.0`.
    pub specversion: String,
    /// `type`.
    pub ty: String,
    /// `datacontenttype`.
    pub datacontenttype: Option<String>,
    /// `dataschema`.
    pub dataschema: Option<String>,
    /// `subject`.
    pub subject: Option<String>,
    /// `time`, RFC 3339.
    pub time: Option<String>,
    /// Extension attributes in order.
    pub extensions: Vec<(String, AttributeValue)>,
    /// The payload.
    pub data: Option<Vec<u8>>,
}

impl Event {
    /// An event with the three required attributes a caller must choose, spec version 1.0
    /// and nothing else; the fields are public for the rest.
    pub fn new(id: impl Into<String>, source: impl Into<String>, ty: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            source: source.into(),
            specversion: "1.0".to_owned(),
            ty: ty.into(),
            datacontenttype: None,
            dataschema: None,
            subject: None,
            time: None,
            extensions: Vec::new(),
            data: None,
        }
    }

    /// The value of extension `name`, if present.
    pub fn extension(&self, name: &str) -> Option<&AttributeValue> {
        self.extensions
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }
}
