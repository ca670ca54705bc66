//! The HTTP binding's decoder in batched mode: `Content-Type` is
//! `application/cloudevents-batch+json` unless the input sets one. With a batched JSON
//! `Content-Type` the result must be exactly the JSON batch format's; whatever decodes must
//! survive every HTTP mode, the JSON format, and re-encoding as a batch.
//!
//! Input: optional header lines `name: value`, an empty line, the body; without an empty line
//! the whole input is the body (see `fuzz/src/lib.rs`).
#![no_main]

use bytes::Bytes;
use cloudevent::media::{self, Envelope};
use cloudevent::{http, json};
use libfuzzer_sys::fuzz_target;
use spindle_fuzz::{Message, check_http_message, header_map};

fuzz_target!(|data: &[u8]| {
    let message = Message::split(data);
    let mut headers = header_map(&message.fields);
    if !headers.contains_key(::http::header::CONTENT_TYPE) {
        headers.insert(
            ::http::header::CONTENT_TYPE,
            ::http::HeaderValue::from_static("application/cloudevents-batch+json"),
        );
    }
    let body: Bytes = message.body;
    let decoded = http::decode(&headers, body.clone());
    spindle_fuzz::trace(|| format!("{decoded:?}"));
    let batch_json = headers
        .get(::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            matches!(media::envelope(ct), Envelope::Batch(f) if f.eq_ignore_ascii_case("json"))
        });
    if batch_json {
        let direct = json::decode_batch_bytes(&body).map(http::Message::Batch);
        assert_eq!(
            decoded, direct,
            "batched mode must be the JSON batch format"
        );
    }
    if let Ok(decoded) = decoded {
        check_http_message(&decoded);
    }
});
