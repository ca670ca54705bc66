//! The JSON event format (`cloudevent::json`): single events, batches and `decode_any` on
//! arbitrary bytes. The copying and the zero-copy decoders must agree, `decode_any` must pick
//! the right one, and whatever decodes must re-encode and decode to an equal event (alone and
//! in a batch).
//!
//! Input: the JSON text, raw.
#![no_main]

use bytes::Bytes;
use cloudevent::json;
use libfuzzer_sys::fuzz_target;
use spindle_fuzz::{check_json, lossy};

fuzz_target!(|data: &[u8]| {
    let shared = Bytes::copy_from_slice(data);

    let single = json::decode(data);
    spindle_fuzz::trace(|| format!("single: {single:?}"));
    assert_eq!(
        single,
        json::decode_bytes(&shared),
        "decode and decode_bytes disagree"
    );
    if let Ok(e) = &single {
        check_json(e);
    }

    let batch = json::decode_batch(data);
    spindle_fuzz::trace(|| format!("batch: {batch:?}"));
    assert_eq!(
        batch,
        json::decode_batch_bytes(&shared),
        "decode_batch and decode_batch_bytes disagree"
    );
    if let Ok(events) = &batch {
        for e in events {
            check_json(e);
        }
        let encoded = json::encode_batch(events);
        match json::decode_batch(&encoded) {
            Ok(back) => assert_eq!(&back, events, "batch round trip; json: {}", lossy(&encoded)),
            Err(err) => panic!(
                "a batch of valid events does not decode: {err}; json: {}",
                lossy(&encoded)
            ),
        }
    }

    let is_array = data.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[');
    let any = json::decode_any(data);
    if is_array {
        assert_eq!(
            any,
            batch.map(|events| (events, true)),
            "decode_any of an array"
        );
    } else {
        assert_eq!(
            any,
            single.map(|e| (vec![e], false)),
            "decode_any of a non-array"
        );
    }
});
