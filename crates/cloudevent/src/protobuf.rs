//! The Protobuf event format (`application/cloudevents+protobuf`) and its batch format
//! (`application/cloudevents-batch+protobuf`), per cloudevents/formats/protobuf-format.md and
//! its `cloudevents.proto` (package `io.cloudevents.v1`).
//!
//! The messages are declared here with `prost`'s derive, field for field as the `.proto` has
//! them, so no build step needs `protoc`. Decoding is as strict as the JSON format's: the
//! event is built through [`EventBuilder`], so every attribute rule applies, and a typed
//! attribute of the wrong type for a core attribute is refused.
//!
//! Data: text (a JSON or other textual `datacontenttype`) travels as `text_data`, bytes as
//! `binary_data`. A `proto_data` (`google.protobuf.Any`) is read as the packed message's bytes
//! with `datacontenttype` `application/protobuf` and, unless the event names one, the Any's
//! type URL as `dataschema` (the format's "SHOULD").

use std::collections::BTreeMap;

use bytes::Bytes;
use prost::Message as _;

use crate::attribute::{AttributeValue, Timestamp};
use crate::data::{Data, DataKind};
use crate::error::{Error, Problem};
use crate::event::{Event, EventBuilder};

/// `io.cloudevents.v1.CloudEvent`.
#[derive(Clone, PartialEq, prost::Message)]
struct CloudEvent {
    #[prost(string, tag = "1")]
    id: String,
    #[prost(string, tag = "2")]
    source: String,
    #[prost(string, tag = "3")]
    spec_version: String,
    #[prost(string, tag = "4")]
    r#type: String,
    #[prost(btree_map = "string, message", tag = "5")]
    attributes: BTreeMap<String, AttributeValueMessage>,
    #[prost(oneof = "EventData", tags = "6, 7, 8")]
    data: Option<EventData>,
}

/// `oneof data` of `CloudEvent`.
#[allow(clippy::enum_variant_names)] // named as the `.proto`'s fields
#[derive(Clone, PartialEq, prost::Oneof)]
enum EventData {
    #[prost(bytes = "bytes", tag = "6")]
    BinaryData(Bytes),
    #[prost(string, tag = "7")]
    TextData(String),
    #[prost(message, tag = "8")]
    ProtoData(Any),
}

/// `google.protobuf.Any`.
#[derive(Clone, PartialEq, prost::Message)]
struct Any {
    #[prost(string, tag = "1")]
    type_url: String,
    #[prost(bytes = "bytes", tag = "2")]
    value: Bytes,
}

/// `CloudEvent.CloudEventAttributeValue`.
#[derive(Clone, PartialEq, prost::Message)]
struct AttributeValueMessage {
    #[prost(oneof = "Attr", tags = "1, 2, 3, 4, 5, 6, 7")]
    attr: Option<Attr>,
}

/// `oneof attr` of `CloudEventAttributeValue`.
#[allow(clippy::enum_variant_names)] // named as the `.proto`'s fields
#[derive(Clone, PartialEq, prost::Oneof)]
enum Attr {
    #[prost(bool, tag = "1")]
    CeBoolean(bool),
    #[prost(int32, tag = "2")]
    CeInteger(i32),
    #[prost(string, tag = "3")]
    CeString(String),
    #[prost(bytes = "vec", tag = "4")]
    CeBytes(Vec<u8>),
    #[prost(string, tag = "5")]
    CeUri(String),
    #[prost(string, tag = "6")]
    CeUriRef(String),
    #[prost(message, tag = "7")]
    CeTimestamp(ProtoTimestamp),
}

/// `google.protobuf.Timestamp`.
#[derive(Clone, PartialEq, prost::Message)]
struct ProtoTimestamp {
    #[prost(int64, tag = "1")]
    seconds: i64,
    #[prost(int32, tag = "2")]
    nanos: i32,
}

/// `io.cloudevents.v1.CloudEventBatch`.
#[derive(Clone, PartialEq, prost::Message)]
struct CloudEventBatch {
    #[prost(message, repeated, tag = "1")]
    events: Vec<CloudEvent>,
}

/// The media type of a protobuf event's `proto_data`.
const APPLICATION_PROTOBUF: &str = "application/protobuf";

/// Encodes one event.
pub fn encode(event: &Event) -> Vec<u8> {
    to_message(event).encode_to_vec()
}

/// Encodes a batch.
pub fn encode_batch<'a>(events: impl IntoIterator<Item = &'a Event>) -> Vec<u8> {
    CloudEventBatch {
        events: events.into_iter().map(to_message).collect(),
    }
    .encode_to_vec()
}

/// Decodes one event.
pub fn decode(input: &[u8]) -> Result<Event, Error> {
    let message = CloudEvent::decode(input).map_err(malformed)?;
    from_message(message)
}

/// Decodes a batch; every member is checked and problems carry the member's index.
pub fn decode_batch(input: &[u8]) -> Result<Vec<Event>, Error> {
    let batch = CloudEventBatch::decode(input).map_err(malformed)?;
    let mut events = Vec::with_capacity(batch.events.len());
    let mut problems = Vec::new();
    for (i, message) in batch.events.into_iter().enumerate() {
        match from_message(message) {
            Ok(event) => events.push(event),
            Err(Error::Invalid(found)) => problems.extend(found.into_iter().map(|p| p.at_index(i))),
            Err(other) => return Err(other.at_index(i)),
        }
    }
    if problems.is_empty() {
        Ok(events)
    } else {
        Err(Error::Invalid(problems))
    }
}

fn malformed(error: prost::DecodeError) -> Error {
    Error::Malformed {
        format: "protobuf",
        index: None,
        message: error.to_string(),
    }
}

fn to_message(event: &Event) -> CloudEvent {
    let mut attributes = BTreeMap::new();
    let mut put = |name: &str, attr: Attr| {
        attributes.insert(name.to_owned(), AttributeValueMessage { attr: Some(attr) });
    };
    if let Some(ct) = event.datacontenttype() {
        put("datacontenttype", Attr::CeString(ct.to_owned()));
    }
    if let Some(schema) = event.dataschema() {
        put("dataschema", Attr::CeUri(schema.to_owned()));
    }
    if let Some(subject) = event.subject() {
        put("subject", Attr::CeString(subject.to_owned()));
    }
    if let Some(time) = event.time() {
        put("time", Attr::CeTimestamp(timestamp(time)));
    }
    for (name, value) in event.extensions() {
        put(
            name,
            match value {
                AttributeValue::Boolean(b) => Attr::CeBoolean(*b),
                AttributeValue::Integer(i) => Attr::CeInteger(*i),
                AttributeValue::String(s) => Attr::CeString(s.clone()),
                AttributeValue::Binary(b) => Attr::CeBytes(b.clone()),
                AttributeValue::Uri(s) => Attr::CeUri(s.clone()),
                AttributeValue::UriRef(s) => Attr::CeUriRef(s.clone()),
                AttributeValue::Timestamp(t) => Attr::CeTimestamp(timestamp(t)),
            },
        );
    }
    let data = event.data().map(|data| match data.kind() {
        DataKind::Binary => EventData::BinaryData(data.to_bytes()),
        // JSON and text are UTF-8 by construction.
        DataKind::Json | DataKind::Text => {
            EventData::TextData(String::from_utf8_lossy(data.as_bytes()).into_owned())
        }
    });
    CloudEvent {
        id: event.id().to_owned(),
        source: event.source().to_owned(),
        spec_version: event.specversion().to_owned(),
        r#type: event.ty().to_owned(),
        attributes,
        data,
    }
}

fn timestamp(time: &Timestamp) -> ProtoTimestamp {
    let t = time.as_datetime();
    ProtoTimestamp {
        seconds: t.timestamp(),
        nanos: i32::try_from(t.timestamp_subsec_nanos()).unwrap_or(0),
    }
}

fn from_message(message: CloudEvent) -> Result<Event, Error> {
    let mut b = EventBuilder::default();
    b.specversion(&message.spec_version);
    b.attribute_str("id", &message.id);
    b.attribute_str("source", &message.source);
    b.attribute_str("type", &message.r#type);
    for (name, value) in message.attributes {
        let Some(attr) = value.attr else {
            b.problem(Problem::attribute(&name, "the attribute has no value"));
            continue;
        };
        match name.as_str() {
            "id" | "source" | "specversion" | "type" => b.problem(Problem::attribute(
                &name,
                "a required attribute belongs in its own field, not in `attributes`",
            )),
            "datacontenttype" | "subject" | "dataschema" => match attr {
                Attr::CeString(s) | Attr::CeUri(s) | Attr::CeUriRef(s) => {
                    b.attribute_str(&name, &s)
                }
                _ => b.problem(Problem::attribute(&name, "must be a string")),
            },
            "time" => match attr {
                Attr::CeTimestamp(t) => match from_timestamp(&t) {
                    Some(time) => b.attribute_str("time", &time.to_string()),
                    None => b.problem(Problem::attribute("time", "timestamp out of range")),
                },
                Attr::CeString(s) => b.attribute_str("time", &s),
                _ => b.problem(Problem::attribute("time", "must be a timestamp")),
            },
            _ => {
                let value = match attr {
                    Attr::CeBoolean(v) => AttributeValue::Boolean(v),
                    Attr::CeInteger(v) => AttributeValue::Integer(v),
                    Attr::CeString(v) => AttributeValue::String(v),
                    Attr::CeBytes(v) => AttributeValue::Binary(v),
                    Attr::CeUri(v) => AttributeValue::Uri(v),
                    Attr::CeUriRef(v) => AttributeValue::UriRef(v),
                    Attr::CeTimestamp(t) => match from_timestamp(&t) {
                        Some(time) => AttributeValue::Timestamp(time),
                        None => {
                            b.problem(Problem::attribute(&name, "timestamp out of range"));
                            continue;
                        }
                    },
                };
                b.set_extension(name, value);
            }
        }
    }
    match message.data {
        None => {}
        Some(EventData::BinaryData(bytes)) => b.set_data(Data::binary(bytes)),
        Some(EventData::TextData(text)) => {
            let json = b
                .current_datacontenttype()
                .is_some_and(crate::media::is_json);
            if json {
                match Data::json_text(text) {
                    Ok(data) => b.set_data(data),
                    Err(e) => b.problem(Problem::attribute(
                        "data",
                        format!("text_data is not the JSON its datacontenttype declares: {e}"),
                    )),
                }
            } else {
                b.set_data(Data::text(text));
            }
        }
        Some(EventData::ProtoData(any)) => {
            if !b.has_datacontenttype() {
                b.set_datacontenttype(APPLICATION_PROTOBUF.to_owned());
            }
            // A type URL is a dataschema only when it is an absolute URI (`https://...`, not
            // the common scheme-less `type.googleapis.com/...`).
            if !b.has_dataschema() && crate::attribute::check_uri(&any.type_url).is_ok() {
                b.attribute_str("dataschema", &any.type_url);
            }
            b.set_data(Data::binary(any.value));
        }
    }
    b.build_decoded()
}

fn from_timestamp(t: &ProtoTimestamp) -> Option<Timestamp> {
    let nanos = u32::try_from(t.nanos).ok()?;
    chrono::DateTime::from_timestamp(t.seconds, nanos).map(Timestamp::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn full() -> Event {
        Event::builder()
            .id("1")
            .source("/s")
            .ty("t")
            .subject("sub")
            .dataschema("https://example.com/s.json")
            .time("2024-05-06T07:08:09.123456789Z".parse().unwrap())
            .extension("flag", true)
            .extension("count", 7)
            .extension("blob", AttributeValue::Binary(vec![0, 1, 255]))
            .extension("link", AttributeValue::Uri("https://example.com/x".into()))
            .data_with_type("application/json", Data::json(&json!({"a": [1, 2.5, "x"]})))
            .build()
            .unwrap()
    }

    #[test]
    fn every_attribute_type_and_json_data_round_trip() {
        let event = full();
        assert_eq!(decode(&encode(&event)).unwrap(), event);
    }

    #[test]
    fn binary_and_text_data_round_trip() {
        let bin = Event::builder()
            .id("1")
            .source("/s")
            .ty("t")
            .data_with_type(
                "application/octet-stream",
                Data::binary(vec![0u8, 159, 146]),
            )
            .build()
            .unwrap();
        assert_eq!(decode(&encode(&bin)).unwrap(), bin);
        let text = Event::builder()
            .id("1")
            .source("/s")
            .ty("t")
            .data_with_type("text/plain", Data::text("hé"))
            .build()
            .unwrap();
        let back = decode(&encode(&text)).unwrap();
        assert_eq!(back, text);
        assert_eq!(back.data().unwrap().kind(), DataKind::Text);
    }

    #[test]
    fn batches_round_trip_and_locate_problems() {
        let events = vec![full(), full()];
        assert_eq!(decode_batch(&encode_batch(&events)).unwrap(), events);
        let mut bad = to_message(&full());
        bad.id.clear();
        let batch = CloudEventBatch {
            events: vec![to_message(&full()), bad],
        }
        .encode_to_vec();
        let Error::Invalid(problems) = decode_batch(&batch).unwrap_err() else {
            panic!()
        };
        assert_eq!(problems[0].index, Some(1));
        assert_eq!(problems[0].attribute.as_deref(), Some("id"));
    }

    #[test]
    fn it_is_as_strict_as_json() {
        let mut m = to_message(&full());
        m.spec_version = "0.3".into();
        assert!(matches!(decode(&m.encode_to_vec()), Err(Error::Invalid(_))));
        let mut m = to_message(&full());
        m.attributes.insert(
            "time".into(),
            AttributeValueMessage {
                attr: Some(Attr::CeBoolean(true)),
            },
        );
        assert!(matches!(decode(&m.encode_to_vec()), Err(Error::Invalid(_))));
        let mut m = to_message(&full());
        m.data = Some(EventData::TextData("{not json".into()));
        assert!(matches!(decode(&m.encode_to_vec()), Err(Error::Invalid(_))));
        assert!(matches!(
            decode(&[0xff, 0xff, 0xff]),
            Err(Error::Malformed {
                format: "protobuf",
                ..
            })
        ));
    }

    #[test]
    fn proto_data_is_read_as_bytes_with_its_type_url() {
        let mut m = to_message(&full());
        m.attributes.remove("datacontenttype");
        m.attributes.remove("dataschema");
        m.data = Some(EventData::ProtoData(Any {
            type_url: "https://types.example.com/x.Y".into(),
            value: Bytes::from_static(&[8, 1]),
        }));
        let e = decode(&m.encode_to_vec()).unwrap();
        assert_eq!(e.datacontenttype(), Some("application/protobuf"));
        assert_eq!(e.dataschema(), Some("https://types.example.com/x.Y"));
        assert_eq!(e.data().unwrap().as_bytes(), &[8, 1]);
    }
}
