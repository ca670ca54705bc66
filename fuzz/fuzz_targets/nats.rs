//! The NATS binding's decoder (`cloudevent::nats::decode`) on arbitrary headers and payload.
//! Whatever decodes must come back equal from structured mode and the JSON format, and from
//! binary mode with string extensions and empty data as none.
//!
//! Input: header lines `name: value` (NATS headers, lossily UTF-8), an empty line, the
//! payload (see `fuzz/src/lib.rs`).
#![no_main]

use cloudevent::Event;
use cloudevent::nats::{self, Mode, NatsMessage};
use libfuzzer_sys::fuzz_target;
use spindle_fuzz::{
    Message, as_json_carries, check_json, expect_same, with_string_extensions, without_empty_data,
};

fn check(e: &Event) {
    check_json(e);
    let m = nats::encode(e, Mode::Structured);
    match nats::decode(&m) {
        Ok(back) => expect_same("NATS structured", &back, &as_json_carries(e.clone()), &m),
        Err(err) => panic!("NATS structured: {err}\n  event: {e:?}\n  wire: {m:?}"),
    }
    let m = nats::encode(e, Mode::Binary);
    let expected = without_empty_data(with_string_extensions(e.clone()));
    match nats::decode(&m) {
        Ok(back) => expect_same("NATS binary", &back, &expected, &m),
        Err(err) => panic!("NATS binary: {err}\n  event: {e:?}\n  wire: {m:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let message = Message::split(data);
    let msg = NatsMessage {
        headers: message.text_fields(),
        payload: message.body,
    };
    let decoded = nats::decode(&msg);
    spindle_fuzz::trace(|| format!("{decoded:?}"));
    if let Ok(e) = &decoded {
        check(e);
    }
});
