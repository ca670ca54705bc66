//! The MQTT protocol binding (cloudevents/bindings/mqtt-protocol-binding.md, 1.0.3) for MQTT
//! 5.0 (binary mode in the Content Type and User Properties, structured mode in the JSON
//! format) and MQTT 3.1.1 (structured mode only: it has no properties).
//!
//! Pure functions over [`MqttMessage`], a client-neutral picture of a PUBLISH packet, so the
//! transport maps it to and from its client crate and every rule is tested here.

use bytes::Bytes;

use crate::attribute::check_name;
use crate::data::Data;
use crate::error::{Error, Problem};
use crate::event::{Event, EventBuilder};
use crate::json;
use crate::nats::{
    canonical, decode_implied_structured, decode_structured, is_structured,
    reconcile_datacontenttype,
};

pub use crate::nats::Mode;

/// The MQTT protocol version of the connection, which decides what a PUBLISH can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Version {
    /// MQTT 3.1.1: no properties, so always structured JSON (section 3).
    V3_1_1,
    /// MQTT 5.0: Content Type and User Properties, so both modes.
    #[default]
    V5,
}

/// An MQTT PUBLISH as this binding sees it (the topic is routing, kept by the transport).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MqttMessage {
    /// The MQTT 5 Content Type property; always `None` in MQTT 3.1.1.
    pub content_type: Option<String>,
    /// The MQTT 5 User Properties, in order, repeats kept (MQTT allows them); always empty in
    /// MQTT 3.1.1.
    pub user_properties: Vec<(String, String)>,
    /// The payload.
    pub payload: Bytes,
}

/// Decodes the event of an MQTT PUBLISH (section 3).
///
/// MQTT 3.1.1: the payload is always the JSON format (a payload that is not a JSON object
/// with a `specversion` is [`Error::NotCloudEvent`]). MQTT 5.0:
/// - a Content Type starting with `application/cloudevents` (any case) selects structured
///   mode; only the JSON format is read, and User Properties are ignored;
/// - otherwise a `specversion` User Property selects binary mode: every User Property whose
///   name is a valid attribute name is an attribute named exactly as the property, the Content
///   Type is `datacontenttype` (a `datacontenttype` User Property, as in the spec's example,
///   must agree with it), and the payload is `data` (an empty payload is no data);
/// - a PUBLISH with no Content Type and no User Property that could be an attribute is read
///   as structured, as a 3.1.1 publisher bridged to a 5.0 subscriber sends it; if its payload
///   is not JSON the message is [`Error::NotCloudEvent`];
/// - anything else is [`Error::NotCloudEvent`].
///
/// User Properties that cannot be attributes are ignored. Section 3.1.3 maps "all other
/// CloudEvents context attributes, including extensions [...] to and from the User Property
/// fields", and attribute names are `[a-z0-9]+` (core, naming conventions), so a property
/// such as `Correlation-Id` or `x-request-id` (common in MQTT traffic, added by brokers and
/// bridges) is not part of that mapping: it is metadata of the message, not of the event,
/// which the core spec lets a receiver leave out ("a CloudEvents receiver is not mandated to
/// process and pass them along"). A foreign property whose name *is* a valid attribute name
/// (`origin`) cannot be told apart from an extension, since the binding has no prefix, and is
/// read as one.
pub fn decode(message: &MqttMessage, version: Version) -> Result<Event, Error> {
    if version == Version::V3_1_1 {
        return decode_implied_structured(
            "an MQTT 3.1.1 message is always structured",
            &message.payload,
        );
    }
    let content_type = message.content_type.as_deref();
    if let Some(ct) = content_type
        && is_structured(ct)
    {
        return decode_structured("MQTT", ct, Some(&message.payload));
    }
    if message
        .user_properties
        .iter()
        .any(|(name, _)| name == "specversion")
    {
        return decode_binary(message, content_type);
    }
    match content_type {
        None if !message
            .user_properties
            .iter()
            .any(|(name, _)| check_name(name).is_ok()) =>
        {
            decode_implied_structured(
                "an MQTT message with no Content Type and no attribute User Properties is read as structured",
                &message.payload,
            )
        }
        Some(ct) => Err(Error::NotCloudEvent(format!(
            "Content Type `{ct}` is not a CloudEvents format and there is no specversion User Property (binary mode)"
        ))),
        None => Err(Error::NotCloudEvent(
            "User Properties without a specversion property (binary mode)".to_owned(),
        )),
    }
}

fn decode_binary(message: &MqttMessage, content_type: Option<&str>) -> Result<Event, Error> {
    let mut b = EventBuilder::default();
    let mut seen: Vec<&str> = Vec::with_capacity(message.user_properties.len());
    let mut datacontenttype: Option<&str> = None;
    for (name, value) in &message.user_properties {
        let name = name.as_str();
        if check_name(name).is_err() {
            // Not an attribute: the message's own metadata (see `decode`).
            continue;
        }
        if seen.contains(&name) {
            b.problem(Problem::attribute(
                name,
                "the User Property appears more than once",
            ));
            continue;
        }
        seen.push(name);
        if name == "datacontenttype" {
            datacontenttype = Some(value);
        } else {
            b.attribute_str(name, value);
        }
    }
    reconcile_datacontenttype(
        &mut b,
        ("Content Type property", content_type),
        ("datacontenttype User Property", datacontenttype),
    );
    if !message.payload.is_empty() {
        b.set_data(Data::binary(message.payload.clone()));
    }
    b.build_decoded()
}

/// Encodes an event as an MQTT PUBLISH for the given protocol version and mode.
///
/// MQTT 5.0 binary mode: `datacontenttype` is the Content Type, every other attribute a User
/// Property named as the attribute with its canonical string as the value, `data` the payload.
/// Structured mode: Content Type `application/cloudevents+json; charset=utf-8` (MQTT 5.0
/// only) and the JSON format as the payload. MQTT 3.1.1 has no binary mode (section 1.3), so
/// `mode` is ignored and the message is always structured, without any property.
pub fn encode(event: &Event, version: Version, mode: Mode) -> MqttMessage {
    encode_as(event, version, mode, crate::Format::Json)
}

/// [`encode`], with MQTT 5.0 structured mode in `format` (its Content Type names it). MQTT
/// 3.1.1 has no Content Type to name a format with, so it is always JSON there.
pub fn encode_as(
    event: &Event,
    version: Version,
    mode: Mode,
    format: crate::Format,
) -> MqttMessage {
    match (version, mode) {
        (Version::V3_1_1, _) => MqttMessage {
            content_type: None,
            user_properties: Vec::new(),
            payload: Bytes::from(json::encode(event)),
        },
        (Version::V5, Mode::Structured) => MqttMessage {
            content_type: Some(format.media_type().to_owned()),
            user_properties: Vec::new(),
            payload: format.encode(event),
        },
        (Version::V5, Mode::Binary) => MqttMessage {
            content_type: event.datacontenttype().map(str::to_owned),
            user_properties: event
                .attributes()
                .filter(|(name, _)| *name != "datacontenttype")
                .map(|(name, value)| (name.to_owned(), canonical(value)))
                .collect(),
            payload: event.data().map(Data::to_bytes).unwrap_or_default(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attribute::AttributeValue;

    fn message(
        content_type: Option<&str>,
        properties: &[(&str, &str)],
        payload: &'static [u8],
    ) -> MqttMessage {
        MqttMessage {
            content_type: content_type.map(str::to_owned),
            user_properties: properties
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            payload: Bytes::from_static(payload),
        }
    }

    const REQUIRED: [(&str, &str); 4] = [
        ("specversion", "1.0"),
        ("id", "1"),
        ("source", "/s"),
        ("type", "t"),
    ];

    fn binary(
        content_type: Option<&str>,
        extra: &[(&str, &str)],
        payload: &'static [u8],
    ) -> Result<Event, Error> {
        let mut properties = REQUIRED.to_vec();
        properties.extend_from_slice(extra);
        decode(&message(content_type, &properties, payload), Version::V5)
    }

    const JSON_EVENT: &[u8] = br#"{"specversion":"1.0","id":"1","source":"/s","type":"t"}"#;

    #[test]
    fn spec_binary_example_decodes() {
        // Section 3.1.4, which also repeats datacontenttype as a User Property.
        let e = decode(
            &message(
                Some("application/json; charset=utf-8"),
                &[
                    ("specversion", "1.0"),
                    ("type", "com.example.someevent"),
                    ("time", "2018-04-05T03:56:24Z"),
                    ("id", "1234-1234-1234"),
                    ("source", "/mycontext/subcontext"),
                    ("datacontenttype", "application/json; charset=utf-8"),
                ],
                b"{}",
            ),
            Version::V5,
        )
        .unwrap();
        assert_eq!(e.ty(), "com.example.someevent");
        assert_eq!(e.id(), "1234-1234-1234");
        assert_eq!(e.time().unwrap().to_string(), "2018-04-05T03:56:24Z");
        assert_eq!(e.datacontenttype(), Some("application/json; charset=utf-8"));
        assert_eq!(e.data().unwrap().as_bytes(), b"{}");
    }

    #[test]
    fn spec_structured_examples_decode_in_both_versions() {
        // Section 3.2.4: with a Content Type in 5.0, implied in 3.1.1.
        let v5 = message(
            Some("application/cloudevents+json; charset=utf-8"),
            &[],
            JSON_EVENT,
        );
        let v3 = message(None, &[], JSON_EVENT);
        let a = decode(&v5, Version::V5).unwrap();
        assert_eq!(a.id(), "1");
        assert_eq!(decode(&v3, Version::V3_1_1).unwrap(), a);
        // A 3.1.1 publisher seen by a 5.0 subscriber.
        assert_eq!(decode(&v3, Version::V5).unwrap(), a);
    }

    #[test]
    fn v3_ignores_properties_and_reads_json() {
        let m = message(Some("text/plain"), &REQUIRED, JSON_EVENT);
        assert_eq!(decode(&m, Version::V3_1_1).unwrap().id(), "1");
        assert!(matches!(
            decode(&message(None, &[], b"x"), Version::V3_1_1),
            Err(Error::NotCloudEvent(_))
        ));
    }

    #[test]
    fn user_properties_are_attributes_named_as_is() {
        let e = binary(None, &[("subject", "Euro € 😀"), ("myext", "a%20b")], b"").unwrap();
        assert_eq!(e.subject(), Some("Euro € 😀"));
        // Values are canonical strings, not percent-encoded.
        assert_eq!(
            e.extension("myext"),
            Some(&AttributeValue::String("a%20b".into()))
        );
        assert!(e.data().is_none());
    }

    /// MQTT binding 3.1.3: "All other CloudEvents context attributes, including extensions,
    /// MUST be individually mapped to and from the User Property fields"; core: attribute names
    /// "MUST consist of lower-case letters ('a' to 'z') or digits ('0' to '9')", and for other
    /// protocol metadata "a CloudEvents receiver is not mandated to process and pass them
    /// along". A User Property that cannot be an attribute is the message's, not the event's.
    #[test]
    fn user_properties_that_cannot_be_attributes_are_ignored() {
        let e = binary(
            Some("text/plain"),
            &[
                ("Correlation-Id", "x"),
                ("x-request-id", "1"),
                ("x-request-id", "2"),
                ("ID", "other"),
            ],
            b"hi",
        )
        .unwrap();
        assert_eq!(e.id(), "1");
        assert!(e.extensions().is_empty(), "{:?}", e.extensions());
        assert_eq!(e.datacontenttype(), Some("text/plain"));
        // A structured payload from a 3.1.1-style publisher, with a bridge's property added.
        let bridged = message(None, &[("x-bridge", "eu-1")], JSON_EVENT);
        assert_eq!(decode(&bridged, Version::V5).unwrap().id(), "1");
    }

    #[test]
    fn bad_user_properties_are_precise_problems() {
        let err = binary(None, &[("id", "2")], b"").unwrap_err().to_string();
        assert!(err.contains("more than once"), "{err}");
        let err = binary(None, &[("specversion", "0.3")], b"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("more than once"), "{err}");
        let mut properties = REQUIRED.to_vec();
        properties[0] = ("specversion", "0.3");
        let err = decode(&message(None, &properties, b""), Version::V5)
            .unwrap_err()
            .to_string();
        assert!(err.contains("unsupported specversion"), "{err}");
    }

    #[test]
    fn datacontenttype_user_property_must_agree_with_content_type() {
        let e = binary(None, &[("datacontenttype", "text/plain")], b"x").unwrap();
        assert_eq!(e.datacontenttype(), Some("text/plain"));
        let err = binary(
            Some("application/json"),
            &[("datacontenttype", "text/plain")],
            b"x",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("disagree"), "{err}");
    }

    #[test]
    fn mode_detection() {
        let avro = message(Some("application/cloudevents+cbor"), &[], b"");
        assert!(matches!(
            decode(&avro, Version::V5),
            Err(Error::UnsupportedFormat(_))
        ));
        // Structured mode ignores User Properties.
        let m = message(
            Some("Application/CloudEvents+JSON"),
            &[("id", "other")],
            JSON_EVENT,
        );
        assert_eq!(decode(&m, Version::V5).unwrap().id(), "1");
        for m in [
            message(Some("text/plain"), &[], b"x"),
            message(None, &[("id", "1")], b"x"),
            message(None, &[], b"not json"),
            message(None, &[], br#"{"temperature":20}"#),
        ] {
            assert!(
                matches!(decode(&m, Version::V5), Err(Error::NotCloudEvent(_))),
                "{m:?}"
            );
        }
    }

    #[test]
    fn binary_encoding_uses_content_type_and_unprefixed_properties() {
        let e = Event::builder()
            .id("a b")
            .source("/s")
            .ty("t")
            .extension("n", 7)
            .data_with_type("text/plain; charset=utf-8", Data::text("hi"))
            .build()
            .unwrap();
        let m = encode(&e, Version::V5, Mode::Binary);
        assert_eq!(m.content_type.as_deref(), Some("text/plain; charset=utf-8"));
        assert_eq!(
            m.user_properties,
            [
                ("specversion", "1.0"),
                ("id", "a b"),
                ("source", "/s"),
                ("type", "t"),
                ("n", "7"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
        assert_eq!(&m.payload[..], b"hi");
        let back = decode(&m, Version::V5).unwrap();
        assert_eq!(back.id(), "a b");
        assert_eq!(back.data(), e.data());
    }

    #[test]
    fn structured_encoding_per_version() {
        let e = Event::builder()
            .id("1")
            .source("/s")
            .ty("t")
            .build()
            .unwrap();
        let v5 = encode(&e, Version::V5, Mode::Structured);
        assert_eq!(
            v5.content_type.as_deref(),
            Some(crate::Format::Json.media_type())
        );
        assert_eq!(decode(&v5, Version::V5).unwrap(), e);
        // 3.1.1 has no binary mode and no properties at all.
        let v3 = encode(&e, Version::V3_1_1, Mode::Binary);
        assert_eq!(v3.content_type, None);
        assert!(v3.user_properties.is_empty());
        assert_eq!(decode(&v3, Version::V3_1_1).unwrap(), e);
    }
}
