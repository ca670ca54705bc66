//! The guest-side CloudEvent with a builder, typed JSON data and typed extensions.

use crate::__bindings::spindle::cloudevents::types as wit;
use crate::error::{Error, Result};
use crate::extension::ExtensionValue;
use crate::id::fresh_id;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A CloudEvent as a handler sees it.
///
/// Read attributes with the accessors, derive new events with the `with_*` methods (they
/// consume and return the event, so they chain), or build one from scratch with
/// [`Event::builder`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    id: String,
    source: String,
    specversion: String,
    ty: String,
    datacontenttype: Option<String>,
    dataschema: Option<String>,
    subject: Option<String>,
    time: Option<String>,
    extensions: Vec<(String, ExtensionValue)>,
    data: Option<Vec<u8>>,
}

impl Event {
    /// A new event of type `ty` from `source`, with a fresh random id and spec version 1.0.
    pub fn new(ty: impl Into<String>, source: impl Into<String>) -> Self {
        Self {
            id: fresh_id(),
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

    /// A builder, for events whose required attributes are checked at [`EventBuilder::build`].
    pub fn builder() -> EventBuilder {
        EventBuilder::default()
    }

    /// `id`.
    pub fn id(&self) -> &str {
        &self.id
    }
    /// `source`.
    pub fn source(&self) -> &str {
        &self.source
    }
    /// `specversion`.
    pub fn specversion(&self) -> &str {
        &self.specversion
    }
    /// `type` (named `ty` because `type` is a Rust keyword).
    pub fn ty(&self) -> &str {
        &self.ty
    }
    /// `datacontenttype`.
    pub fn datacontenttype(&self) -> Option<&str> {
        self.datacontenttype.as_deref()
    }
    /// `dataschema`.
    pub fn dataschema(&self) -> Option<&str> {
        self.dataschema.as_deref()
    }
    /// `subject`.
    pub fn subject(&self) -> Option<&str> {
        self.subject.as_deref()
    }
    /// `time` (RFC 3339).
    pub fn time(&self) -> Option<&str> {
        self.time.as_deref()
    }

    /// `time` as a [`Timestamp`]; `None` when the event has no `time` (the host only passes
    /// valid ones).
    pub fn timestamp(&self) -> Option<crate::Timestamp> {
        self.time.as_deref()?.parse().ok()
    }
    /// The payload bytes.
    pub fn data(&self) -> Option<&[u8]> {
        self.data.as_deref()
    }
    /// The payload as UTF-8 text, if it is.
    pub fn text(&self) -> Option<&str> {
        self.data().and_then(|d| std::str::from_utf8(d).ok())
    }

    /// The payload parsed as JSON into `T`. A missing or malformed payload is a permanent
    /// error: retrying will not fix it.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T> {
        let data = self
            .data
            .as_deref()
            .ok_or_else(|| Error::permanent("event has no data"))?;
        serde_json::from_slice(data)
            .map_err(|e| Error::permanent(format!("invalid JSON data: {e}")))
    }

    /// The extension `name`, if set.
    pub fn extension(&self, name: &str) -> Option<&ExtensionValue> {
        self.extensions
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }

    /// All extensions in order.
    pub fn extensions(&self) -> impl Iterator<Item = (&str, &ExtensionValue)> {
        self.extensions.iter().map(|(n, v)| (n.as_str(), v))
    }

    /// Sets (or replaces) extension `name`.
    pub fn set_extension(&mut self, name: impl Into<String>, value: impl Into<ExtensionValue>) {
        let name = name.into();
        let value = value.into();
        match self.extensions.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => self.extensions.push((name, value)),
        }
    }

    /// Removes extension `name`, returning its value.
    pub fn remove_extension(&mut self, name: &str) -> Option<ExtensionValue> {
        let pos = self.extensions.iter().position(|(n, _)| n == name)?;
        Some(self.extensions.remove(pos).1)
    }

    /// With extension `name` set.
    pub fn with_extension(
        mut self,
        name: impl Into<String>,
        value: impl Into<ExtensionValue>,
    ) -> Self {
        self.set_extension(name, value);
        self
    }
    /// With `id` replaced.
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = id.into();
        self
    }
    /// With a fresh random `id`: what a derived event usually needs.
    pub fn with_fresh_id(mut self) -> Self {
        self.id = fresh_id();
        self
    }
    /// With `source` replaced.
    pub fn with_source(mut self, source: impl Into<String>) -> Self {
        self.source = source.into();
        self
    }
    /// With `type` replaced.
    pub fn with_type(mut self, ty: impl Into<String>) -> Self {
        self.ty = ty.into();
        self
    }
    /// With `subject` set.
    pub fn with_subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }
    /// With `time` set: an RFC 3339 string or a [`Timestamp`](crate::Timestamp)
    /// (`Timestamp::now()`).
    pub fn with_time(mut self, time: impl Into<String>) -> Self {
        self.time = Some(time.into());
        self
    }
    /// With `dataschema` set.
    pub fn with_dataschema(mut self, schema: impl Into<String>) -> Self {
        self.dataschema = Some(schema.into());
        self
    }
    /// With raw `data` and its `datacontenttype`.
    pub fn with_data(mut self, content_type: impl Into<String>, data: impl Into<Vec<u8>>) -> Self {
        self.datacontenttype = Some(content_type.into());
        self.data = Some(data.into());
        self
    }
    /// Without data (and without `datacontenttype`).
    pub fn without_data(mut self) -> Self {
        self.datacontenttype = None;
        self.data = None;
        self
    }
    /// With `value` serialized as JSON data, `datacontenttype: application/json`.
    pub fn with_json<T: Serialize + ?Sized>(self, value: &T) -> Result<Self> {
        let bytes = serde_json::to_vec(value)?;
        Ok(self.with_data("application/json", bytes))
    }

    pub(crate) fn from_wit(e: wit::Event) -> Self {
        Self {
            id: e.id,
            source: e.source,
            specversion: e.specversion,
            ty: e.type_,
            datacontenttype: e.datacontenttype,
            dataschema: e.dataschema,
            subject: e.subject,
            time: e.time,
            extensions: e
                .extensions
                .into_iter()
                .map(|(n, v)| (n, ExtensionValue::from_wit(v)))
                .collect(),
            data: e.data,
        }
    }

    pub(crate) fn into_wit(self) -> wit::Event {
        wit::Event {
            id: self.id,
            source: self.source,
            specversion: self.specversion,
            type_: self.ty,
            datacontenttype: self.datacontenttype,
            dataschema: self.dataschema,
            subject: self.subject,
            time: self.time,
            extensions: self
                .extensions
                .into_iter()
                .map(|(n, v)| (n, v.into_wit()))
                .collect(),
            data: self.data,
        }
    }
}

/// Builds an [`Event`], checking the required attributes.
#[derive(Debug, Default, Clone)]
pub struct EventBuilder {
    id: Option<String>,
    source: Option<String>,
    ty: Option<String>,
    subject: Option<String>,
    time: Option<String>,
    dataschema: Option<String>,
    extensions: Vec<(String, ExtensionValue)>,
    data: Option<(String, Vec<u8>)>,
    json_error: Option<String>,
}

impl EventBuilder {
    /// `id`; a fresh random one when not set.
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }
    /// `source` (required).
    pub fn source(mut self, source: impl Into<String>) -> Self {
        self.source = Some(source.into());
        self
    }
    /// `type` (required).
    pub fn ty(mut self, ty: impl Into<String>) -> Self {
        self.ty = Some(ty.into());
        self
    }
    /// `subject`.
    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }
    /// `time`: an RFC 3339 string (checked by [`EventBuilder::build`]) or a
    /// [`Timestamp`](crate::Timestamp) (`Timestamp::now()`).
    pub fn time(mut self, time: impl Into<String>) -> Self {
        self.time = Some(time.into());
        self
    }
    /// `dataschema`.
    pub fn dataschema(mut self, schema: impl Into<String>) -> Self {
        self.dataschema = Some(schema.into());
        self
    }
    /// An extension attribute; naming one again replaces its value, as every other setter
    /// does (an attribute appears at most once in an event, and the host refuses an event
    /// that lists one twice).
    pub fn extension(mut self, name: impl Into<String>, value: impl Into<ExtensionValue>) -> Self {
        let (name, value) = (name.into(), value.into());
        match self.extensions.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => self.extensions.push((name, value)),
        }
        self
    }
    /// Raw data with its content type.
    pub fn data(mut self, content_type: impl Into<String>, data: impl Into<Vec<u8>>) -> Self {
        self.data = Some((content_type.into(), data.into()));
        self
    }
    /// JSON data; a serialization failure is reported by [`EventBuilder::build`].
    pub fn json<T: Serialize + ?Sized>(mut self, value: &T) -> Self {
        match serde_json::to_vec(value) {
            Ok(bytes) => self.data = Some(("application/json".into(), bytes)),
            Err(e) => self.json_error = Some(e.to_string()),
        }
        self
    }

    /// The event, or a permanent error naming what is missing.
    pub fn build(self) -> Result<Event> {
        if let Some(e) = self.json_error {
            return Err(Error::permanent(format!("cannot serialize JSON data: {e}")));
        }
        let source = self.source.filter(|s| !s.is_empty());
        let ty = self.ty.filter(|s| !s.is_empty());
        let (Some(source), Some(ty)) = (source, ty) else {
            return Err(Error::permanent(
                "an event needs a non-empty source and type",
            ));
        };
        let mut event = Event::new(ty, source);
        if let Some(id) = self.id {
            if id.is_empty() {
                return Err(Error::permanent("an event id must not be empty"));
            }
            event.id = id;
        }
        // A strongly-typed model "MUST be able to convert from and to the canonical
        // string-encoding": a `time` or timestamp extension that is no RFC 3339 string is
        // refused here, in the guest, rather than by the host after the handler returned.
        if let Some(time) = &self.time {
            crate::Timestamp::parse(time).map_err(|e| Error::permanent(format!("time: {e}")))?;
        }
        for (name, value) in &self.extensions {
            if let ExtensionValue::Timestamp(text) = value {
                crate::Timestamp::parse(text)
                    .map_err(|e| Error::permanent(format!("extension `{name}`: {e}")))?;
            }
        }
        event.subject = self.subject;
        event.time = self.time;
        event.dataschema = self.dataschema;
        event.extensions = self.extensions;
        if let Some((ct, data)) = self.data {
            event = event.with_data(ct, data);
        }
        Ok(event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Order {
        id: u32,
    }

    #[test]
    fn builder_requires_source_and_type() {
        assert!(Event::builder().source("/s").build().is_err());
        let e = Event::builder()
            .id("1")
            .source("/s")
            .ty("t")
            .subject("sub")
            .extension("seq", 7)
            .build()
            .unwrap();
        assert_eq!(
            (e.id(), e.source(), e.ty(), e.subject()),
            ("1", "/s", "t", Some("sub"))
        );
        assert_eq!(e.extension("seq").and_then(ExtensionValue::as_i32), Some(7));
        assert_eq!(e.specversion(), "1.0");
    }

    #[test]
    fn json_round_trips_and_bad_json_is_permanent() {
        let e = Event::new("t", "/s").with_json(&Order { id: 3 }).unwrap();
        assert_eq!(e.datacontenttype(), Some("application/json"));
        assert_eq!(e.json::<Order>().unwrap(), Order { id: 3 });
        let bad = Event::new("t", "/s").with_data("application/json", "{");
        assert_eq!(
            bad.json::<Order>().unwrap_err().kind(),
            crate::ErrorKind::Permanent
        );
    }

    /// CloudEvents core: "Each context attribute MUST only appear at most once in a
    /// CloudEvent." The builder never hands the host an extension twice.
    #[test]
    fn the_builder_keeps_each_extension_once() {
        let e = Event::builder()
            .source("/s")
            .ty("t")
            .extension("a", 1)
            .extension("b", "x")
            .extension("a", 2)
            .build()
            .unwrap();
        assert_eq!(e.extensions().count(), 2);
        assert_eq!(e.extension("a").and_then(ExtensionValue::as_i32), Some(2));
        assert_eq!(e.into_wit().extensions.len(), 2);
    }

    #[test]
    fn extensions_replace_and_remove() {
        let mut e = Event::new("t", "/s").with_extension("a", "x");
        e.set_extension("a", true);
        assert_eq!(e.extensions().count(), 1);
        assert_eq!(
            e.extension("a").and_then(ExtensionValue::as_bool),
            Some(true)
        );
        assert_eq!(e.remove_extension("a"), Some(ExtensionValue::Boolean(true)));
        assert!(e.extension("a").is_none());
    }

    /// CloudEvents spec, type system: "A strongly-typed programming model that represents a
    /// CloudEvent or any extension MUST be able to convert from and to the canonical
    /// string-encoding to the runtime/language native type that best corresponds to the
    /// abstract type." `time` and timestamp extensions take a [`crate::Timestamp`], read
    /// back as one, and a string that is not RFC 3339 is refused by the builder.
    #[test]
    fn time_and_timestamp_extensions_are_native_and_checked() {
        let at: crate::Timestamp = "2026-01-01T10:00:00.5+01:00".parse().unwrap();
        let e = Event::builder()
            .source("/s")
            .ty("t")
            .time(at)
            .extension("due", at)
            .build()
            .unwrap();
        assert_eq!(e.time(), Some("2026-01-01T09:00:00.500Z"));
        assert_eq!(e.timestamp(), Some(at));
        let due = e.extension("due").unwrap();
        assert_eq!(
            due,
            &ExtensionValue::Timestamp("2026-01-01T09:00:00.500Z".into())
        );
        assert_eq!(due.as_timestamp(), Some(at));
        // Strings still work, as before; they are checked now.
        let e = Event::builder()
            .source("/s")
            .ty("t")
            .time("2026-01-01T00:00:00Z")
            .build()
            .unwrap();
        assert_eq!(e.timestamp().unwrap().unix_seconds(), 1_767_225_600);
        let bad = Event::builder()
            .source("/s")
            .ty("t")
            .time("yesterday")
            .build();
        assert!(bad.unwrap_err().to_string().contains("time"));
        let bad = Event::builder()
            .source("/s")
            .ty("t")
            .extension(
                "due",
                ExtensionValue::Timestamp("2026-02-30T00:00:00Z".into()),
            )
            .build();
        assert!(bad.unwrap_err().to_string().contains("due"));
    }

    #[test]
    fn wit_conversion_round_trips() {
        let e = Event::new("t", "/s")
            .with_time("2026-01-01T00:00:00Z")
            .with_extension("bin", vec![1u8, 2])
            .with_data("text/plain", "hi");
        assert_eq!(Event::from_wit(e.clone().into_wit()), e);
        assert_eq!(e.text(), Some("hi"));
    }
}
