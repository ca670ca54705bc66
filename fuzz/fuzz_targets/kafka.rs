//! The Kafka binding's decoder (`cloudevent::kafka::decode`), with and without the
//! partition-key mapping, on arbitrary headers, key and value. The two mappings must agree
//! (the key only ever adds a missing `partitionkey`); whatever decodes must come back equal
//! from structured mode and the JSON format, and from binary mode with string extensions,
//! unless its `datacontenttype` is a CloudEvents media type.
//!
//! Input: `@key: <record key>` and `@value: null` (a null value) meta lines, header lines
//! `name: value` (raw value bytes), an empty line, the value (see `fuzz/src/lib.rs`).
#![no_main]

use bytes::Bytes;
use cloudevent::Event;
use cloudevent::kafka::{self, KafkaRecord, KeyMapping, Mode};
use libfuzzer_sys::fuzz_target;
use spindle_fuzz::{
    Message, as_json_carries, binary_safe, check_json, expect_same, lossy, with_string_extensions,
};

fn check(e: &Event, keys: KeyMapping) {
    check_json(e);
    let r = kafka::encode(e, Mode::Structured, keys);
    match kafka::decode(&r, keys) {
        Ok(back) => expect_same("Kafka structured", &back, &as_json_carries(e.clone()), &r),
        Err(err) => panic!("Kafka structured ({keys:?}): {err}\n  event: {e:?}\n  wire: {r:?}"),
    }
    if binary_safe(e) {
        let r = kafka::encode(e, Mode::Binary, keys);
        let expected = with_string_extensions(e.clone());
        match kafka::decode(&r, keys) {
            Ok(back) => expect_same("Kafka binary", &back, &expected, &r),
            Err(err) => panic!("Kafka binary ({keys:?}): {err}\n  event: {e:?}\n  wire: {r:?}"),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let message = Message::split(data);
    let null_value = message
        .meta("value")
        .is_some_and(|v| v.eq_ignore_ascii_case(b"null"));
    let record = KafkaRecord {
        key: message.meta("key").map(Bytes::copy_from_slice),
        headers: message
            .fields
            .iter()
            .map(|(n, v)| (lossy(n), Bytes::copy_from_slice(v)))
            .collect(),
        value: if null_value { None } else { Some(message.body) },
    };
    let plain = kafka::decode(&record, KeyMapping::None);
    let keyed = kafka::decode(&record, KeyMapping::PartitionKey);
    spindle_fuzz::trace(|| format!("{plain:?} / keyed: {keyed:?}"));
    match (&plain, &keyed) {
        (Ok(plain), Ok(keyed)) => {
            let mut without_key = keyed.clone();
            if plain.extension("partitionkey").is_none() {
                without_key.remove_extension("partitionkey");
            }
            assert_eq!(
                &without_key, plain,
                "the key mapping changed more than partitionkey"
            );
            check(plain, KeyMapping::None);
            check(keyed, KeyMapping::PartitionKey);
        }
        (Err(_), Err(_)) => {}
        _ => panic!("the key mapping changed the outcome: {plain:?} vs {keyed:?}"),
    }
});
