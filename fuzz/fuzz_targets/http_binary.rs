//! The HTTP binding's decoder (`cloudevent::http::decode`) on arbitrary headers and body,
//! mostly binary mode (`ce-` headers): whatever decodes must survive every HTTP mode and the
//! JSON format (see `spindle_fuzz::check_http`).
//!
//! Input: header lines `name: value`, an empty line, the body (see `fuzz/src/lib.rs`).
#![no_main]

use cloudevent::http;
use libfuzzer_sys::fuzz_target;
use spindle_fuzz::{Message, check_http_message, header_map};

fuzz_target!(|data: &[u8]| {
    let message = Message::split(data);
    let headers = header_map(&message.fields);
    let decoded = http::decode(&headers, message.body);
    spindle_fuzz::trace(|| format!("{decoded:?}"));
    if let Ok(decoded) = decoded {
        check_http_message(&decoded);
    }
});
