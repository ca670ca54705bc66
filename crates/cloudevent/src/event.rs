//! The event: context attributes plus data, always valid.

use std::collections::BTreeMap;

use crate::attribute::{
    AttributeType, AttributeValue, Timestamp, ValueError, check_name, check_string, check_uri,
    check_uri_ref,
};
use crate::data::{Data, DataKind};
use crate::error::{Error, Problem};
use crate::media::{APPLICATION_JSON, check_media_type};

/// The only CloudEvents version Spindle speaks.
pub const SPEC_VERSION: &str = "1.0";

/// Names of the context attributes the core specification defines (required and optional).
pub const CORE_ATTRIBUTES: [&str; 8] = [
    "specversion",
    "id",
    "source",
    "type",
    "datacontenttype",
    "dataschema",
    "subject",
    "time",
];

/// A CloudEvent (CloudEvents 1.0.2).
///
/// An `Event` is valid by construction: it can only be made by [`EventBuilder::build`] or by a
/// decoder, both of which check every rule, and its setters check theirs. Code downstream
/// (executor, filters, delivery) therefore never re-validates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    id: String,
    source: String,
    ty: String,
    datacontenttype: Option<String>,
    dataschema: Option<String>,
    subject: Option<String>,
    time: Option<Timestamp>,
    extensions: BTreeMap<String, AttributeValue>,
    data: Option<Data>,
}

/// A borrowed view of one context attribute's value, as [`Event::attribute`] returns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttributeRef<'a> {
    /// A core attribute held as a string (its type is String, URI or URI-reference).
    Str(&'a str),
    /// The `time` attribute.
    Timestamp(&'a Timestamp),
    /// An extension attribute.
    Value(&'a AttributeValue),
}

impl AttributeRef<'_> {
    /// The canonical string form.
    pub fn to_canonical_string(&self) -> String {
        match self {
            AttributeRef::Str(s) => (*s).to_owned(),
            AttributeRef::Timestamp(t) => t.to_string(),
            AttributeRef::Value(v) => v.to_canonical_string(),
        }
    }
}

impl Event {
    /// A builder: the way to make an event from parts.
    pub fn builder() -> EventBuilder {
        EventBuilder::default()
    }

    /// `id`: unique with `source`.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// `source`: a URI-reference naming the context the event happened in.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// `specversion`: always `1.0`.
    pub fn specversion(&self) -> &'static str {
        SPEC_VERSION
    }

    /// `type`: the kind of occurrence.
    pub fn ty(&self) -> &str {
        &self.ty
    }

    /// `datacontenttype`: the media type of `data`.
    pub fn datacontenttype(&self) -> Option<&str> {
        self.datacontenttype.as_deref()
    }

    /// `dataschema`: an absolute URI of the schema `data` adheres to.
    pub fn dataschema(&self) -> Option<&str> {
        self.dataschema.as_deref()
    }

    /// `subject`: what the event is about, within `source`.
    pub fn subject(&self) -> Option<&str> {
        self.subject.as_deref()
    }

    /// `time`: when the occurrence happened.
    pub fn time(&self) -> Option<&Timestamp> {
        self.time.as_ref()
    }

    /// The payload.
    pub fn data(&self) -> Option<&Data> {
        self.data.as_ref()
    }

    /// Takes the payload out, leaving none.
    pub fn take_data(&mut self) -> Option<Data> {
        self.data.take()
    }

    /// Extension attributes, sorted by name.
    pub fn extensions(&self) -> &BTreeMap<String, AttributeValue> {
        &self.extensions
    }

    /// One extension attribute.
    pub fn extension(&self, name: &str) -> Option<&AttributeValue> {
        self.extensions.get(name)
    }

    /// Any context attribute by name, core or extension: what filters and CESQL read.
    pub fn attribute(&self, name: &str) -> Option<AttributeRef<'_>> {
        Some(match name {
            "specversion" => AttributeRef::Str(SPEC_VERSION),
            "id" => AttributeRef::Str(&self.id),
            "source" => AttributeRef::Str(&self.source),
            "type" => AttributeRef::Str(&self.ty),
            "datacontenttype" => AttributeRef::Str(self.datacontenttype.as_deref()?),
            "dataschema" => AttributeRef::Str(self.dataschema.as_deref()?),
            "subject" => AttributeRef::Str(self.subject.as_deref()?),
            "time" => AttributeRef::Timestamp(self.time.as_ref()?),
            _ => AttributeRef::Value(self.extensions.get(name)?),
        })
    }

    /// Every set context attribute, core ones first in specification order, then extensions
    /// by name: the order encoders write them in.
    pub fn attributes(&self) -> impl Iterator<Item = (&str, AttributeRef<'_>)> {
        let core = [
            ("specversion", Some(AttributeRef::Str(SPEC_VERSION))),
            ("id", Some(AttributeRef::Str(&self.id))),
            ("source", Some(AttributeRef::Str(&self.source))),
            ("type", Some(AttributeRef::Str(&self.ty))),
            (
                "datacontenttype",
                self.datacontenttype.as_deref().map(AttributeRef::Str),
            ),
            (
                "dataschema",
                self.dataschema.as_deref().map(AttributeRef::Str),
            ),
            ("subject", self.subject.as_deref().map(AttributeRef::Str)),
            ("time", self.time.as_ref().map(AttributeRef::Timestamp)),
        ];
        core.into_iter()
            .filter_map(|(name, value)| Some((name, value?)))
            .chain(
                self.extensions
                    .iter()
                    .map(|(k, v)| (k.as_str(), AttributeRef::Value(v))),
            )
    }

    /// Sets `id` (non-empty).
    pub fn set_id(&mut self, id: impl Into<String>) -> Result<(), Error> {
        let id = id.into();
        single(check_required("id", &id))?;
        self.id = id;
        Ok(())
    }

    /// Sets `source` (a non-empty URI-reference).
    pub fn set_source(&mut self, source: impl Into<String>) -> Result<(), Error> {
        let source = source.into();
        single(check_source(&source))?;
        self.source = source;
        Ok(())
    }

    /// Sets `type` (non-empty).
    pub fn set_type(&mut self, ty: impl Into<String>) -> Result<(), Error> {
        let ty = ty.into();
        single(check_required("type", &ty))?;
        self.ty = ty;
        Ok(())
    }

    /// Sets or clears `subject`.
    pub fn set_subject(&mut self, subject: Option<String>) -> Result<(), Error> {
        if let Some(s) = &subject {
            single(check_optional_string("subject", s))?;
        }
        self.subject = subject;
        Ok(())
    }

    /// Sets or clears `time`.
    pub fn set_time(&mut self, time: Option<Timestamp>) {
        self.time = time;
    }

    /// Sets or clears `dataschema` (an absolute URI).
    pub fn set_dataschema(&mut self, dataschema: Option<String>) -> Result<(), Error> {
        if let Some(s) = &dataschema {
            single(check_dataschema(s))?;
        }
        self.dataschema = dataschema;
        Ok(())
    }

    /// Sets the payload and its media type together (they only make sense together).
    pub fn set_data(
        &mut self,
        content_type: Option<String>,
        data: Option<Data>,
    ) -> Result<(), Error> {
        if let Some(ct) = &content_type {
            single(check_datacontenttype(ct))?;
        }
        let content_type = match (&content_type, &data) {
            (None, Some(d)) if d.kind() == DataKind::Json => Some(APPLICATION_JSON.to_owned()),
            _ => content_type,
        };
        self.datacontenttype = content_type;
        self.data = data;
        Ok(())
    }

    /// Sets an extension attribute; names are checked, and core attribute names refused.
    pub fn set_extension(
        &mut self,
        name: impl Into<String>,
        value: impl Into<AttributeValue>,
    ) -> Result<(), Error> {
        let name = name.into();
        let value = value.into();
        single(check_extension(&name, &value))?;
        self.extensions.insert(name, value);
        Ok(())
    }

    /// Removes an extension attribute, returning it.
    pub fn remove_extension(&mut self, name: &str) -> Option<AttributeValue> {
        self.extensions.remove(name)
    }
}

fn single(result: Result<(), Problem>) -> Result<(), Error> {
    result.map_err(Error::invalid)
}

fn check_required(name: &str, value: &str) -> Result<(), Problem> {
    if value.is_empty() {
        return Err(Problem::attribute(name, "must be a non-empty string"));
    }
    check_string(value).map_err(|e| Problem::attribute(name, e.reason))?;
    Ok(())
}

fn check_optional_string(name: &str, value: &str) -> Result<(), Problem> {
    if value.is_empty() {
        return Err(Problem::attribute(name, "must not be empty when present"));
    }
    check_string(value).map_err(|e| Problem::attribute(name, e.reason))?;
    Ok(())
}

fn check_source(value: &str) -> Result<(), Problem> {
    if value.is_empty() {
        return Err(Problem::attribute(
            "source",
            "must be a non-empty URI-reference",
        ));
    }
    check_uri_ref(value).map_err(|e| Problem::attribute("source", e.reason))?;
    Ok(())
}

fn check_dataschema(value: &str) -> Result<(), Problem> {
    check_uri(value).map_err(|e| Problem::attribute("dataschema", e.reason))?;
    Ok(())
}

fn check_datacontenttype(value: &str) -> Result<(), Problem> {
    check_media_type(value).map_err(|e| Problem::attribute("datacontenttype", e))
}

fn check_extension(name: &str, value: &AttributeValue) -> Result<(), Problem> {
    if core_attribute_type(name).is_some() {
        return Err(Problem::attribute(
            name,
            "is a core attribute, not an extension",
        ));
    }
    check_name(name).map_err(|e| Problem::attribute(name, e.to_string()))?;
    let checked = match value {
        AttributeValue::String(s) => check_string(s).map(drop),
        AttributeValue::Uri(s) => check_uri(s).map(drop),
        AttributeValue::UriRef(s) => check_uri_ref(s).map(drop),
        _ => Ok(()),
    };
    checked.map_err(|e| Problem::attribute(name, e.to_string()))
}

/// Assembles an [`Event`], collecting every problem instead of stopping at the first.
///
/// Decoders feed it attribute by attribute ([`EventBuilder::attribute_str`] for bindings whose
/// values are strings, typed setters otherwise), so one set of rules serves every binding.
#[derive(Debug, Default, Clone)]
pub struct EventBuilder {
    id: Option<String>,
    source: Option<String>,
    ty: Option<String>,
    specversion_seen: bool,
    datacontenttype: Option<String>,
    dataschema: Option<String>,
    subject: Option<String>,
    time: Option<Timestamp>,
    extensions: BTreeMap<String, AttributeValue>,
    data: Option<Data>,
    problems: Vec<Problem>,
}

impl EventBuilder {
    /// Sets `id`.
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Sets `source`.
    pub fn source(mut self, source: impl Into<String>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// Sets `type`.
    pub fn ty(mut self, ty: impl Into<String>) -> Self {
        self.ty = Some(ty.into());
        self
    }

    /// Sets `subject`.
    pub fn subject(mut self, subject: impl Into<String>) -> Self {
        self.subject = Some(subject.into());
        self
    }

    /// Sets `time`.
    pub fn time(mut self, time: Timestamp) -> Self {
        self.time = Some(time);
        self
    }

    /// Sets `dataschema`.
    pub fn dataschema(mut self, uri: impl Into<String>) -> Self {
        self.dataschema = Some(uri.into());
        self
    }

    /// Sets `datacontenttype`.
    pub fn datacontenttype(mut self, content_type: impl Into<String>) -> Self {
        self.datacontenttype = Some(content_type.into());
        self
    }

    /// Sets the payload.
    pub fn data(mut self, data: Data) -> Self {
        self.data = Some(data);
        self
    }

    /// Sets the payload and its media type.
    pub fn data_with_type(self, content_type: impl Into<String>, data: Data) -> Self {
        self.datacontenttype(content_type).data(data)
    }

    /// Sets a typed extension attribute.
    pub fn extension(mut self, name: impl Into<String>, value: impl Into<AttributeValue>) -> Self {
        self.set_extension(name.into(), value.into());
        self
    }

    /// Sets any attribute from its canonical string form, as string-only bindings (HTTP, Kafka,
    /// NATS headers) carry them: core attributes are parsed per their type, extensions are kept
    /// as Strings (the binding cannot tell their type).
    pub fn attribute_str(&mut self, name: &str, value: &str) {
        match name {
            "specversion" => self.specversion(value),
            "id" => self.id = Some(value.to_owned()),
            "source" => self.source = Some(value.to_owned()),
            "type" => self.ty = Some(value.to_owned()),
            "datacontenttype" => self.datacontenttype = Some(value.to_owned()),
            "dataschema" => self.dataschema = Some(value.to_owned()),
            "subject" => self.subject = Some(value.to_owned()),
            "time" => match value.parse::<Timestamp>() {
                Ok(t) => self.time = Some(t),
                Err(e) => self.problem(Problem::attribute("time", e.reason)),
            },
            _ => self.set_extension(name.to_owned(), AttributeValue::String(value.to_owned())),
        }
    }

    /// Sets an extension with an already-typed value (JSON, AMQP and the WIT record carry
    /// types).
    pub fn set_extension(&mut self, name: String, value: AttributeValue) {
        match check_extension(&name, &value) {
            Ok(()) => {
                self.extensions.insert(name, value);
            }
            Err(p) => self.problem(p),
        }
    }

    /// Sets an extension from a list that can name one twice (the WIT record's, from a
    /// component): a repeat is refused with a problem naming it, as every wire decoder refuses
    /// a repeated attribute (core: "Each context attribute MUST only appear at most once");
    /// which value was meant is unknowable. `value` is the typed value, or why it is not one.
    pub fn listed_extension(&mut self, name: String, value: Result<AttributeValue, ValueError>) {
        if self.extensions.contains_key(&name) {
            self.problem(Problem::attribute(
                name,
                "the component set this extension more than once (an attribute appears at most once)",
            ));
            return;
        }
        match value {
            Ok(value) => self.set_extension(name, value),
            Err(error) => self.problem(Problem::attribute(name, error.to_string())),
        }
    }

    /// Checks a `specversion` value: only `1.0` is accepted.
    pub fn specversion(&mut self, value: &str) {
        self.specversion_seen = true;
        if value != SPEC_VERSION {
            self.problem(Problem::attribute(
                "specversion",
                format!("unsupported specversion `{value}`: Spindle speaks CloudEvents 1.0"),
            ));
        }
    }

    /// Sets the payload in place.
    pub fn set_data(&mut self, data: Data) {
        self.data = Some(data);
    }

    /// Whether `datacontenttype` has been set.
    pub fn has_datacontenttype(&self) -> bool {
        self.datacontenttype.is_some()
    }

    /// Whether `dataschema` has been set.
    pub fn has_dataschema(&self) -> bool {
        self.dataschema.is_some()
    }

    /// The `datacontenttype` set so far.
    pub fn current_datacontenttype(&self) -> Option<&str> {
        self.datacontenttype.as_deref()
    }

    /// Sets `datacontenttype` in place.
    pub fn set_datacontenttype(&mut self, content_type: String) {
        self.datacontenttype = Some(content_type);
    }

    /// Records a problem found by a decoder; [`EventBuilder::build`] will report it.
    pub fn problem(&mut self, problem: Problem) {
        self.problems.push(problem);
    }

    /// Marks `specversion` as present without checking (for builders made in code, which
    /// always mean 1.0).
    fn implied_specversion(&mut self) {
        self.specversion_seen = true;
    }

    /// Checks everything and makes the event, or reports every problem found.
    pub fn build(mut self) -> Result<Event, Error> {
        self.finish()
    }

    /// Like [`EventBuilder::build`], but requires `specversion` to have been given: decoders
    /// use this, since an event on the wire must say which version it is.
    pub fn build_decoded(mut self) -> Result<Event, Error> {
        if !self.specversion_seen {
            self.problems.insert(
                0,
                Problem::attribute("specversion", "required attribute is missing"),
            );
        }
        self.finish()
    }

    fn finish(&mut self) -> Result<Event, Error> {
        self.implied_specversion();
        let mut problems = std::mem::take(&mut self.problems);
        let mut required = |name: &str, value: &Option<String>| match value {
            // A value of the wrong type was already reported; "missing" would be noise.
            None if problems
                .iter()
                .any(|p| p.attribute.as_deref() == Some(name)) => {}
            None => problems.push(Problem::attribute(name, "required attribute is missing")),
            Some(v) if name == "source" => problems.extend(check_source(v).err()),
            Some(v) => problems.extend(check_required(name, v).err()),
        };
        required("id", &self.id);
        required("source", &self.source);
        required("type", &self.ty);
        if let Some(ct) = &self.datacontenttype {
            problems.extend(check_datacontenttype(ct).err());
        }
        if let Some(schema) = &self.dataschema {
            problems.extend(check_dataschema(schema).err());
        }
        if let Some(subject) = &self.subject {
            problems.extend(check_optional_string("subject", subject).err());
        }
        if !problems.is_empty() {
            // Report in a stable order: the one attributes are listed in by the spec.
            problems.sort_by_key(|p| order_of(p.attribute.as_deref()));
            return Err(Error::Invalid(problems));
        }
        if self.datacontenttype.is_none()
            && self
                .data
                .as_ref()
                .is_some_and(|d| d.kind() == DataKind::Json)
        {
            // JSON format 3.1.2: JSON data without a content type implies application/json,
            // and the implied type should be made explicit so other bindings keep the meaning.
            self.datacontenttype = Some(APPLICATION_JSON.to_owned());
        }
        Ok(Event {
            id: self.id.take().unwrap_or_default(),
            source: self.source.take().unwrap_or_default(),
            ty: self.ty.take().unwrap_or_default(),
            datacontenttype: self.datacontenttype.take(),
            dataschema: self.dataschema.take(),
            subject: self.subject.take(),
            time: self.time.take(),
            extensions: std::mem::take(&mut self.extensions),
            data: self.data.take(),
        })
    }
}

fn order_of(attribute: Option<&str>) -> usize {
    attribute
        .and_then(|a| CORE_ATTRIBUTES.iter().position(|c| *c == a))
        .unwrap_or(CORE_ATTRIBUTES.len())
}

/// The type a core attribute has in the CloudEvents type system, `None` for extensions.
pub fn core_attribute_type(name: &str) -> Option<AttributeType> {
    Some(match name {
        "specversion" | "id" | "type" | "datacontenttype" | "subject" => AttributeType::String,
        "source" => AttributeType::UriRef,
        "dataschema" => AttributeType::Uri,
        "time" => AttributeType::Timestamp,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minimal() -> EventBuilder {
        Event::builder().id("1").source("/s").ty("t")
    }

    #[test]
    fn builds_a_minimal_event() {
        let e = minimal().build().unwrap();
        assert_eq!(e.id(), "1");
        assert_eq!(e.specversion(), "1.0");
        assert_eq!(e.attributes().count(), 4);
    }

    #[test]
    fn required_attributes_must_be_present_and_non_empty() {
        let err = Event::builder().id("").build().unwrap_err();
        let problems = err.problems();
        let named: Vec<_> = problems
            .iter()
            .map(|p| p.attribute.clone().unwrap())
            .collect();
        assert_eq!(named, ["id", "source", "type"]);
        assert!(problems[0].message.contains("non-empty"));
    }

    #[test]
    fn source_must_be_a_uri_reference() {
        assert!(minimal().source("has space").build().is_err());
        assert!(minimal().source("urn:x").build().is_ok());
    }

    #[test]
    fn dataschema_must_be_absolute() {
        assert!(minimal().dataschema("/relative").build().is_err());
        assert!(minimal().dataschema("https://x/s.json").build().is_ok());
    }

    #[test]
    fn optional_strings_cannot_be_empty() {
        assert!(minimal().subject("").build().is_err());
    }

    #[test]
    fn extension_names_are_checked() {
        assert!(minimal().extension("Bad-Name", 1).build().is_err());
        assert!(minimal().extension("data", true).build().is_err());
        assert!(minimal().extension("id", true).build().is_err());
        assert!(minimal().extension("ok1", true).build().is_ok());
        let mut e = minimal().build().unwrap();
        assert!(e.set_extension("UPPER", 1).is_err());
        assert!(e.set_extension("lower", 1).is_ok());
        assert_eq!(e.extension("lower"), Some(&AttributeValue::Integer(1)));
    }

    #[test]
    fn specversion_other_than_1_0_is_rejected_clearly() {
        let mut b = minimal();
        b.specversion("0.3");
        let err = b.build().unwrap_err().to_string();
        assert!(err.contains("unsupported specversion `0.3`"), "{err}");
    }

    #[test]
    fn decoded_events_need_a_specversion() {
        assert!(minimal().build_decoded().is_err());
        let mut b = minimal();
        b.specversion("1.0");
        assert!(b.build_decoded().is_ok());
    }
}
