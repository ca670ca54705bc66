//! Property tests: every valid event survives encode → decode unchanged, in each mode.

mod support;

use cloudevent::{http, json};
use proptest::prelude::*;
use support::*;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Binary mode keeps every attribute, and makes the type that data without a
    /// `datacontenttype` implies explicit (webhook 2.1: the Content-Type "MUST be carried").
    #[test]
    fn binary_mode_round_trips(e in event()) {
        let enc = http::encode_binary(&e);
        let back = http::decode(&enc.headers, enc.body).unwrap().into_events().remove(0);
        let mut expected = with_string_extensions(e);
        if expected.datacontenttype().is_none() && let Some(data) = expected.take_data() {
            let implied = http::implied_content_type(&data).to_owned();
            expected.set_data(Some(implied), Some(data)).unwrap();
        }
        prop_assert_eq!(back, expected);
    }

    #[test]
    fn structured_mode_round_trips(e in event()) {
        let enc = http::encode_structured(&e);
        let back = http::decode(&enc.headers, enc.body).unwrap();
        prop_assert_eq!(back.mode(), http::Mode::Structured);
        prop_assert_eq!(back.into_events().remove(0), e);
    }

    #[test]
    fn batched_mode_round_trips(events in prop::collection::vec(event(), 0..5)) {
        let enc = http::encode_batch(&events);
        let back = http::decode(&enc.headers, enc.body).unwrap();
        prop_assert_eq!(back.mode(), http::Mode::Batch);
        prop_assert_eq!(back.into_events(), events);
    }

    #[test]
    fn json_format_round_trips(e in event()) {
        prop_assert_eq!(json::decode(&json::encode(&e)).unwrap(), e);
    }

    #[test]
    fn header_values_round_trip(s in text()) {
        let encoded = cloudevent::header::encode(&s);
        prop_assert!(encoded.bytes().all(|b| (0x21..=0x7E).contains(&b) && b != b'"'));
        let decoded = cloudevent::header::decode(encoded.as_bytes()).unwrap().into_owned();
        prop_assert_eq!(decoded, s.clone());
    }

    #[test]
    fn decoders_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = json::decode(&bytes);
        let _ = json::decode_batch(&bytes);
        let _ = cloudevent::header::decode(&bytes);
    }
}
