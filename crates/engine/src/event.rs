//! The one conversion of the component boundary: the core event (`cloudevent::Event`, what
//! every transport decodes into) to and from the WIT `event` record a component sees.
//!
//! An event coming back from a guest (a result or a publish) is checked on the way in by every
//! rule an event from the wire is, so nothing a component hands over skips validation.

use cloudevent::{AttributeType, AttributeValue, Data, Event, EventBuilder};

use crate::bindings::wit;

/// The WIT form of `event`, for a call into a component.
pub(crate) fn to_wit(event: &Event) -> wit::Event {
    wit::Event {
        id: event.id().to_owned(),
        source: event.source().to_owned(),
        specversion: event.specversion().to_owned(),
        type_: event.ty().to_owned(),
        datacontenttype: event.datacontenttype().map(str::to_owned),
        dataschema: event.dataschema().map(str::to_owned),
        subject: event.subject().map(str::to_owned),
        time: event.time().map(ToString::to_string),
        extensions: event
            .extensions()
            .iter()
            .map(|(name, value)| {
                let value = match value {
                    AttributeValue::Boolean(b) => wit::AttributeValue::Boolean(*b),
                    AttributeValue::Integer(i) => wit::AttributeValue::Integer(*i),
                    AttributeValue::String(s) => wit::AttributeValue::String(s.clone()),
                    AttributeValue::Binary(b) => wit::AttributeValue::Binary(b.clone()),
                    AttributeValue::Uri(s) => wit::AttributeValue::Uri(s.clone()),
                    AttributeValue::UriRef(s) => wit::AttributeValue::UriRef(s.clone()),
                    AttributeValue::Timestamp(t) => wit::AttributeValue::Timestamp(t.to_string()),
                };
                (name.clone(), value)
            })
            .collect(),
        data: event.data().map(|d| d.as_bytes().to_vec()),
    }
}

/// An event a component handed back, checked by every rule an event from the wire is.
pub(crate) fn from_wit(event: wit::Event) -> Result<Event, cloudevent::Error> {
    let mut b = EventBuilder::default();
    b.specversion(&event.specversion);
    b.attribute_str("id", &event.id);
    b.attribute_str("source", &event.source);
    b.attribute_str("type", &event.type_);
    for (name, value) in [
        ("datacontenttype", &event.datacontenttype),
        ("dataschema", &event.dataschema),
        ("subject", &event.subject),
        ("time", &event.time),
    ] {
        if let Some(value) = value {
            b.attribute_str(name, value);
        }
    }
    for (name, value) in event.extensions {
        let typed = match value {
            wit::AttributeValue::Boolean(v) => Ok(AttributeValue::Boolean(v)),
            wit::AttributeValue::Integer(v) => Ok(AttributeValue::Integer(v)),
            wit::AttributeValue::String(v) => AttributeValue::parse(AttributeType::String, &v),
            wit::AttributeValue::Binary(v) => Ok(AttributeValue::Binary(v)),
            wit::AttributeValue::Uri(v) => AttributeValue::parse(AttributeType::Uri, &v),
            wit::AttributeValue::UriRef(v) => AttributeValue::parse(AttributeType::UriRef, &v),
            wit::AttributeValue::Timestamp(v) => {
                AttributeValue::parse(AttributeType::Timestamp, &v)
            }
        };
        b.listed_extension(name, typed);
    }
    if let Some(data) = event.data {
        b.set_data(Data::binary(data));
    }
    b.build_decoded()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A WIT event with the required attributes and `extensions`.
    pub(crate) fn guest_event(extensions: Vec<(String, wit::AttributeValue)>) -> wit::Event {
        wit::Event {
            id: "1".into(),
            source: "/guest".into(),
            specversion: "1.0".into(),
            type_: "t".into(),
            datacontenttype: None,
            dataschema: None,
            subject: None,
            time: None,
            extensions,
            data: None,
        }
    }

    /// CloudEvents core, context attributes: "Each context attribute MUST only appear at most
    /// once in a CloudEvent." A guest's event naming an extension twice is refused with the
    /// attribute named, not collapsed to one of its values.
    #[test]
    fn a_guest_event_with_a_repeated_extension_is_refused() {
        let ok = from_wit(guest_event(vec![
            ("a".into(), wit::AttributeValue::Integer(1)),
            ("b".into(), wit::AttributeValue::Integer(2)),
        ]))
        .unwrap();
        assert_eq!(ok.extensions().len(), 2);
        let err = from_wit(guest_event(vec![
            ("a".into(), wit::AttributeValue::Integer(1)),
            ("b".into(), wit::AttributeValue::Boolean(true)),
            ("a".into(), wit::AttributeValue::Integer(2)),
        ]))
        .unwrap_err();
        let problems = err.problems();
        assert_eq!(problems.len(), 1, "{err}");
        assert_eq!(problems[0].attribute.as_deref(), Some("a"));
        assert!(problems[0].message.contains("more than once"), "{err}");
    }

    #[test]
    fn typed_extensions_round_trip() {
        let event = Event::builder()
            .id("1")
            .source("/s")
            .ty("t")
            .extension("n", 7)
            .extension("flag", true)
            .build()
            .unwrap();
        assert_eq!(from_wit(to_wit(&event)).unwrap(), event);
    }
}
