//! The HTTP binding's decoder in structured mode: `Content-Type` is
//! `application/cloudevents+json; charset=utf-8` unless the input sets one. With a structured
//! JSON `Content-Type` the result must be exactly the JSON format's (`ce-` headers ignored);
//! whatever decodes must survive every HTTP mode and the JSON format.
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
            ::http::HeaderValue::from_static("application/cloudevents+json; charset=utf-8"),
        );
    }
    let body: Bytes = message.body;
    let decoded = http::decode(&headers, body.clone());
    spindle_fuzz::trace(|| format!("{decoded:?}"));
    let structured_json = headers
        .get(::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            matches!(media::envelope(ct), Envelope::Structured(f) if f.eq_ignore_ascii_case("json"))
        });
    if structured_json {
        let direct =
            json::decode_bytes(&body).map(|e| http::Message::Event(e, http::Mode::Structured));
        assert_eq!(
            decoded, direct,
            "structured mode must be the JSON format, ce- headers ignored"
        );
    }
    if let Ok(decoded) = decoded {
        check_http_message(&decoded);
    }
});
