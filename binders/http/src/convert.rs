//! The one conversion of this component's boundary: the codec's event to and from the WIT
//! record the linked handler takes, checked on the way back by every rule a wire event is.

use cloudevent::{AttributeType, AttributeValue, Data, Event, EventBuilder};

use crate::spindle::cloudevents::types as wit;

/// The WIT form of a decoded event.
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

/// An event the handler returned, refused when it breaks a CloudEvents rule (an extension
/// named twice included).
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
