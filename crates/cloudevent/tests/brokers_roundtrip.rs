//! Property tests for the broker bindings: every valid event survives encode → decode in
//! each binding and mode, and no input makes a decoder panic.
//!
//! The generators are shared with `roundtrip.rs` (in `support/`).

mod support;

use bytes::Bytes;
use chrono::DateTime;
use cloudevent::amqp::{self, AmqpMessage, AmqpValue};
use cloudevent::kafka::{self, KafkaRecord, KeyMapping};
use cloudevent::mqtt::{self, MqttMessage, Version};
use cloudevent::nats::{self, Mode, NatsMessage};
use cloudevent::{AttributeValue, Event};
use proptest::prelude::*;
use support::*;

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
