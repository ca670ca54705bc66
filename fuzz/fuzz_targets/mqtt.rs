//! The MQTT binding's decoder (`cloudevent::mqtt::decode`), as MQTT 5 and as MQTT 3.1.1, on
//! arbitrary properties and payload. Whatever decodes must come back equal from MQTT 3.1.1,
//! MQTT 5 structured mode and the JSON format, and from MQTT 5 binary mode with string
//! extensions and empty data as none (unless its `datacontenttype` is a CloudEvents media
//! type, which announces structured mode).
//!
//! Input: `@content-type: <Content Type property>` (optional), User Property lines
//! `name: value`, an empty line, the payload (see `fuzz/src/lib.rs`).
#![no_main]

use cloudevent::Event;
use cloudevent::mqtt::{self, Mode, MqttMessage, Version};
use libfuzzer_sys::fuzz_target;
use spindle_fuzz::{
    Message, as_json_carries, binary_safe, check_json, expect_same, with_string_extensions,
    without_empty_data,
};

fn check(e: &Event) {
    check_json(e);
    for (version, mode) in [
        (Version::V3_1_1, Mode::Binary),
        (Version::V5, Mode::Structured),
    ] {
        let m = mqtt::encode(e, version, mode);
        match mqtt::decode(&m, version) {
            Ok(back) => expect_same("MQTT structured", &back, &as_json_carries(e.clone()), &m),
            Err(err) => panic!("MQTT {version:?} {mode}: {err}\n  event: {e:?}\n  wire: {m:?}"),
        }
    }
    if binary_safe(e) {
        let m = mqtt::encode(e, Version::V5, Mode::Binary);
        let expected = without_empty_data(with_string_extensions(e.clone()));
        match mqtt::decode(&m, Version::V5) {
            Ok(back) => expect_same("MQTT 5 binary", &back, &expected, &m),
            Err(err) => panic!("MQTT 5 binary: {err}\n  event: {e:?}\n  wire: {m:?}"),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let message = Message::split(data);
    let v5 = MqttMessage {
        content_type: message.meta_str("content-type"),
        user_properties: message.text_fields(),
        payload: message.body.clone(),
    };
    let decoded = mqtt::decode(&v5, Version::V5);
    spindle_fuzz::trace(|| format!("MQTT 5: {decoded:?}"));
    if let Ok(e) = &decoded {
        check(e);
    }
    // MQTT 3.1.1 has no properties: the payload alone.
    let v3 = MqttMessage {
        payload: message.body,
        ..MqttMessage::default()
    };
    let decoded = mqtt::decode(&v3, Version::V3_1_1);
    spindle_fuzz::trace(|| format!("MQTT 3.1.1: {decoded:?}"));
    if let Ok(e) = &decoded {
        check(e);
    }
});
