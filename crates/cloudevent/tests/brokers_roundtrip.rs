//! Property tests for the broker bindings: every valid event survives encode → decode in
//! each binding and mode, and no input makes a decoder panic.
//!
//! The generators are those of `roundtrip.rs`.

use bytes::Bytes;
use chrono::{DateTime, FixedOffset, TimeZone};
use cloudevent::amqp::{self, AmqpMessage, AmqpValue};
use cloudevent::kafka::{self, KafkaRecord, KeyMapping};
use cloudevent::mqtt::{self, MqttMessage, Version};
use cloudevent::nats::{self, Mode, NatsMessage};
use cloudevent::{AttributeValue, Data, Event, Timestamp};
use proptest::prelude::*;

fn text() -> impl Strategy<Value = String> {
    // Arbitrary Unicode, minus what the String type forbids.
    any::<String>().prop_map(|s| {
        s.chars()
            .filter(|&c| !c.is_control() && (c as u32) & 0xFFFE != 0xFFFE)
            .filter(|&c| !(0xFDD0..=0xFDEF).contains(&(c as u32)))
            .take(24)
            .collect::<String>()
    })
}

fn non_empty_text() -> impl Strategy<Value = String> {
    (text(), "[a-zA-Z0-9 %\"]{1,4}").prop_map(|(a, b)| format!("{b}{a}"))
}

fn source() -> impl Strategy<Value = String> {
    prop_oneof![
        "/[a-z]{1,8}(/[a-z0-9._~-]{1,5}){0,3}",
        "https://example\\.com/[a-z0-9]{0,8}(\\?q=[a-z]{1,3})?",
        "urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}",
        "[a-z]{1,5}%20[a-z]{1,3}",
    ]
}

fn timestamp() -> impl Strategy<Value = Timestamp> {
    (0i64..4_102_444_800, 0u32..1_000_000_000, -1439i32..1439).prop_map(|(secs, nanos, mins)| {
        let offset = FixedOffset::east_opt(mins * 60).unwrap();
        let dt: DateTime<FixedOffset> = offset.timestamp_opt(secs, nanos).unwrap();
        Timestamp::from(dt)
    })
}

fn ext_name() -> impl Strategy<Value = String> {
    "[a-z0-9]{1,12}".prop_filter("not a core attribute or data", |n| {
        !cloudevent::CORE_ATTRIBUTES.contains(&n.as_str()) && n != "data"
    })
}

fn ext_value() -> impl Strategy<Value = AttributeValue> {
    prop_oneof![
        any::<bool>().prop_map(AttributeValue::Boolean),
        any::<i32>().prop_map(AttributeValue::Integer),
        text().prop_map(AttributeValue::String),
    ]
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        text().prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map("[a-z]{1,4}", inner, 0..4)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

fn data() -> impl Strategy<Value = Option<(Option<String>, Data)>> {
    prop_oneof![
        Just(None),
        json_value().prop_map(|v| Some((Some("application/json".to_owned()), Data::json(&v)))),
        non_empty_text()
            .prop_map(|t| Some((Some("text/plain; charset=utf-8".to_owned()), Data::text(t)))),
        prop::collection::vec(any::<u8>(), 1..64)
            .prop_map(|b| Some((Some("application/octet-stream".to_owned()), Data::binary(b)))),
        prop::collection::vec(any::<u8>(), 1..64).prop_map(|b| Some((None, Data::binary(b)))),
    ]
}

prop_compose! {
    fn event()(
        id in non_empty_text(),
        source in source(),
        ty in non_empty_text(),
        subject in proptest::option::of(non_empty_text()),
        time in proptest::option::of(timestamp()),
        dataschema in proptest::option::of("https://schemas\\.example\\.com/[a-z]{1,8}\\.json"),
        extensions in prop::collection::btree_map(ext_name(), ext_value(), 0..4),
        data in data(),
    ) -> Event {
        let mut b = Event::builder().id(id).source(source).ty(ty);
        if let Some(s) = subject { b = b.subject(s); }
        if let Some(t) = time { b = b.time(t); }
        if let Some(d) = dataschema { b = b.dataschema(d); }
        for (k, v) in extensions { b = b.extension(k, v); }
        if let Some((ct, d)) = data {
            if let Some(ct) = ct { b = b.datacontenttype(ct); }
            b = b.data(d);
        }
        b.build().expect("generated events are valid")
    }
}

/// Binary mode carries every extension as a string: the best a header can do.
fn with_string_extensions(mut event: Event) -> Event {
    let names: Vec<String> = event.extensions().keys().cloned().collect();
    for name in names {
        let value = event.remove_extension(&name).unwrap();
        event
            .set_extension(name, AttributeValue::String(value.to_canonical_string()))
            .unwrap();
    }
    event
}

/// Extension values of every type, for AMQP, which carries most of them natively.
fn typed_ext_value() -> impl Strategy<Value = AttributeValue> {
    prop_oneof![
        ext_value(),
        prop::collection::vec(any::<u8>(), 0..16).prop_map(AttributeValue::Binary),
        "https://example\\.com/[a-z]{0,6}".prop_map(AttributeValue::Uri),
        "/[a-z]{0,6}".prop_map(AttributeValue::UriRef),
        timestamp().prop_map(AttributeValue::Timestamp),
        (0i64..4_102_444_800_000).prop_map(|ms| {
            AttributeValue::Timestamp(DateTime::from_timestamp_millis(ms).unwrap().into())
        }),
    ]
}

prop_compose! {
    /// An event with extensions of every type.
    fn typed_event()(
        e in event(),
        extensions in prop::collection::btree_map(ext_name(), typed_ext_value(), 0..5),
    ) -> Event {
        let mut e = e;
        for (k, v) in extensions { e.set_extension(k, v).unwrap(); }
        e
    }
}

/// What AMQP gives back: the types it maps natively survive, URIs come back as strings (AMQP
/// carries them as strings) and so do timestamps an AMQP timestamp cannot hold exactly.
fn as_amqp_carries(mut event: Event) -> Event {
    let names: Vec<String> = event.extensions().keys().cloned().collect();
    for name in names {
        let value = event.remove_extension(&name).unwrap();
        let value = match value {
            AttributeValue::Uri(s) | AttributeValue::UriRef(s) => AttributeValue::String(s),
            AttributeValue::Timestamp(t)
                if t.as_datetime().offset().local_minus_utc() != 0
                    || t.as_datetime().timestamp_subsec_nanos() % 1_000_000 != 0 =>
            {
                AttributeValue::String(t.to_string())
            }
            other => other,
        };
        event.set_extension(name, value).unwrap();
    }
    event
}

fn header_name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("ce-specversion".to_owned()),
        Just("CE-ID".to_owned()),
        Just("ce_specversion".to_owned()),
        Just("ce_id".to_owned()),
        Just("content-type".to_owned()),
        Just("specversion".to_owned()),
        Just("id".to_owned()),
        Just("cloudEvents_specversion".to_owned()),
        Just("cloudEvents:id".to_owned()),
        "(ce-|ce_|cloudEvents_)?[a-zA-Z_:-]{0,6}",
        any::<String>(),
    ]
}

fn header_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("1.0".to_owned()),
        Just("application/cloudevents+json".to_owned()),
        Just("application/cloudevents-batch+json".to_owned()),
        any::<String>(),
    ]
}

fn amqp_value() -> impl Strategy<Value = AmqpValue> {
    prop_oneof![
        header_value().prop_map(AmqpValue::String),
        any::<bool>().prop_map(AmqpValue::Boolean),
        any::<i64>().prop_map(AmqpValue::Long),
        any::<u64>().prop_map(AmqpValue::Ulong),
        any::<i64>().prop_map(AmqpValue::Timestamp),
        any::<f64>().prop_map(AmqpValue::Double),
        prop::collection::vec(any::<u8>(), 0..8).prop_map(AmqpValue::Binary),
        Just(AmqpValue::Null),
    ]
}

fn payload() -> impl Strategy<Value = Bytes> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..64).prop_map(Bytes::from),
        Just(Bytes::from_static(
            br#"{"specversion":"1.0","id":"1","source":"/s","type":"t"}"#
        )),
    ]
}

fn pairs<V: std::fmt::Debug>(
    value: impl Strategy<Value = V>,
) -> impl Strategy<Value = Vec<(String, V)>> {
    prop::collection::vec((header_name(), value), 0..8)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn nats_binary_round_trips(e in event()) {
        let back = nats::decode(&nats::encode(&e, Mode::Binary)).unwrap();
        prop_assert_eq!(back, with_string_extensions(e));
    }

    #[test]
    fn nats_structured_round_trips(e in event()) {
        prop_assert_eq!(nats::decode(&nats::encode(&e, Mode::Structured)).unwrap(), e);
    }

    #[test]
    fn mqtt5_binary_round_trips(e in event()) {
        let m = mqtt::encode(&e, Version::V5, Mode::Binary);
        prop_assert_eq!(mqtt::decode(&m, Version::V5).unwrap(), with_string_extensions(e));
    }

    #[test]
    fn mqtt5_structured_round_trips(e in event()) {
        let m = mqtt::encode(&e, Version::V5, Mode::Structured);
        prop_assert_eq!(mqtt::decode(&m, Version::V5).unwrap(), e);
    }

    #[test]
    fn mqtt311_round_trips(e in event(), binary in any::<bool>()) {
        let mode = if binary { Mode::Binary } else { Mode::Structured };
        let m = mqtt::encode(&e, Version::V3_1_1, mode);
        prop_assert_eq!(mqtt::decode(&m, Version::V3_1_1).unwrap(), e);
    }

    #[test]
    fn amqp_binary_round_trips(e in typed_event()) {
        let back = amqp::decode(&amqp::encode(&e, Mode::Binary)).unwrap();
        prop_assert_eq!(back, as_amqp_carries(e));
    }

    #[test]
    fn amqp_structured_round_trips(e in event()) {
        prop_assert_eq!(amqp::decode(&amqp::encode(&e, Mode::Structured)).unwrap(), e);
    }

    #[test]
    fn kafka_binary_round_trips(e in event()) {
        let r = kafka::encode(&e, Mode::Binary, KeyMapping::None);
        prop_assert_eq!(r.value.is_none(), e.data().is_none());
        prop_assert_eq!(kafka::decode(&r, KeyMapping::None).unwrap(), with_string_extensions(e));
    }

    #[test]
    fn kafka_structured_round_trips(e in event()) {
        let r = kafka::encode(&e, Mode::Structured, KeyMapping::None);
        prop_assert_eq!(kafka::decode(&r, KeyMapping::None).unwrap(), e);
    }

    #[test]
    fn kafka_key_mapping_round_trips(e in event(), key in non_empty_text(), binary in any::<bool>()) {
        let mode = if binary { Mode::Binary } else { Mode::Structured };
        let mut e = e;
        e.set_extension("partitionkey", AttributeValue::String(key.clone())).unwrap();
        let r = kafka::encode(&e, mode, KeyMapping::PartitionKey);
        prop_assert_eq!(r.key.as_deref(), Some(key.as_bytes()));
        let expected = if binary { with_string_extensions(e) } else { e };
        prop_assert_eq!(kafka::decode(&r, KeyMapping::PartitionKey).unwrap(), expected.clone());
        // A key alone (the attribute stripped) restores the attribute.
        let mut keyed_only = expected.clone();
        keyed_only.remove_extension("partitionkey");
        let r = kafka::encode(&keyed_only, mode, KeyMapping::None);
        let r = KafkaRecord { key: Some(Bytes::from(key)), ..r };
        prop_assert_eq!(kafka::decode(&r, KeyMapping::PartitionKey).unwrap(), expected);
    }

    #[test]
    fn decoders_never_panic(
        headers in pairs(header_value()),
        content_type in proptest::option::of(header_value()),
        properties in pairs(amqp_value()),
        raw in prop::collection::vec((header_name(), prop::collection::vec(any::<u8>(), 0..8)), 0..8),
        key in proptest::option::of(prop::collection::vec(any::<u8>(), 0..8)),
        payload in payload(),
        null in any::<bool>(),
    ) {
        let _ = nats::decode(&NatsMessage { headers: headers.clone(), payload: payload.clone() });
        let m = MqttMessage { content_type: content_type.clone(), user_properties: headers, payload: payload.clone() };
        let _ = mqtt::decode(&m, Version::V5);
        let _ = mqtt::decode(&m, Version::V3_1_1);
        let _ = amqp::decode(&AmqpMessage {
            content_type,
            application_properties: properties,
            body: (!null).then(|| payload.clone()),
        });
        let r = KafkaRecord {
            key: key.map(Bytes::from),
            headers: raw.into_iter().map(|(k, v)| (k, Bytes::from(v))).collect(),
            value: (!null).then_some(payload),
        };
        let _ = kafka::decode(&r, KeyMapping::None);
        let _ = kafka::decode(&r, KeyMapping::PartitionKey);
    }
}
