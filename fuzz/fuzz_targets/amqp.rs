//! The AMQP 1.0 binding's decoder (`cloudevent::amqp::decode`) on arbitrary typed
//! application-properties, content-type and body. Whatever decodes must come back equal from
//! structured mode and the JSON format (with the extension types JSON lacks, such as Binary
//! and Timestamp, as strings), and from binary mode with the types AMQP carries
//! natively kept (URIs come back as strings, and so do timestamps an AMQP timestamp cannot
//! hold exactly), unless its `datacontenttype` is a CloudEvents media type.
//!
//! Input: `@content-type: <content-type property>` and `@body: none` (no data section) meta
//! lines, application-property lines `name: value`, an empty line, the body (see
//! `fuzz/src/lib.rs`). A value is a string unless it starts with an AMQP type and a colon:
//! `null`, `bool:true`, `ubyte:`, `ushort:`, `uint:`, `ulong:`, `byte:`, `short:`, `int:`,
//! `long:`, `float:`, `double:`, `char:`, `timestamp:` (ms), `uuid:` (32 hex digits),
//! `binary:` (hex), `symbol:`, `string:`.
#![no_main]

use bytes::Bytes;
use cloudevent::amqp::{self, AmqpMessage, AmqpValue, Mode};
use cloudevent::{AttributeValue, Event};
use libfuzzer_sys::fuzz_target;
use spindle_fuzz::{Message, as_json_carries, binary_safe, check_json, expect_same, lossy};

fn hex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

fn value(raw: &[u8]) -> AmqpValue {
    let text = lossy(raw);
    if text == "null" {
        return AmqpValue::Null;
    }
    let Some((ty, v)) = text.split_once(':') else {
        return AmqpValue::String(text);
    };
    let parsed = match ty {
        "bool" => v.parse().ok().map(AmqpValue::Boolean),
        "ubyte" => v.parse().ok().map(AmqpValue::Ubyte),
        "ushort" => v.parse().ok().map(AmqpValue::Ushort),
        "uint" => v.parse().ok().map(AmqpValue::Uint),
        "ulong" => v.parse().ok().map(AmqpValue::Ulong),
        "byte" => v.parse().ok().map(AmqpValue::Byte),
        "short" => v.parse().ok().map(AmqpValue::Short),
        "int" => v.parse().ok().map(AmqpValue::Int),
        "long" => v.parse().ok().map(AmqpValue::Long),
        "float" => v.parse().ok().map(AmqpValue::Float),
        "double" => v.parse().ok().map(AmqpValue::Double),
        "char" => v.parse().ok().map(AmqpValue::Char),
        "timestamp" => v.parse().ok().map(AmqpValue::Timestamp),
        "uuid" => hex(v).and_then(|b| b.try_into().ok()).map(AmqpValue::Uuid),
        "binary" => hex(v).map(AmqpValue::Binary),
        "symbol" => Some(AmqpValue::Symbol(v.to_owned())),
        "string" => Some(AmqpValue::String(v.to_owned())),
        _ => None,
    };
    parsed.unwrap_or(AmqpValue::String(text))
}

/// What AMQP binary mode gives back: URIs as strings; timestamps as AMQP timestamps when
/// they are whole milliseconds in UTC (not a leap second), else as their canonical string.
fn as_amqp_carries(mut event: Event) -> Event {
    let names: Vec<String> = event.extensions().keys().cloned().collect();
    for name in names {
        let value = event.remove_extension(&name).expect("listed");
        let value = match value {
            AttributeValue::Uri(s) | AttributeValue::UriRef(s) => AttributeValue::String(s),
            AttributeValue::Timestamp(t)
                if t.as_datetime().offset().local_minus_utc() != 0
                    || t.as_datetime().timestamp_subsec_nanos() % 1_000_000 != 0
                    || t.as_datetime().timestamp_subsec_nanos() >= 1_000_000_000 =>
            {
                AttributeValue::String(t.to_string())
            }
            other => other,
        };
        event.set_extension(name, value).expect("a valid extension");
    }
    event
}

fn check(e: &Event) {
    check_json(e);
    let m = amqp::encode(e, Mode::Structured);
    match amqp::decode(&m) {
        Ok(back) => expect_same("AMQP structured", &back, &as_json_carries(e.clone()), &m),
        Err(err) => panic!("AMQP structured: {err}\n  event: {e:?}\n  wire: {m:?}"),
    }
    if binary_safe(e) {
        let m = amqp::encode(e, Mode::Binary);
        let expected = as_amqp_carries(e.clone());
        match amqp::decode(&m) {
            Ok(back) => expect_same("AMQP binary", &back, &expected, &m),
            Err(err) => panic!("AMQP binary: {err}\n  event: {e:?}\n  wire: {m:?}"),
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let message = Message::split(data);
    let no_body = message
        .meta("body")
        .is_some_and(|v| v.eq_ignore_ascii_case(b"none"));
    let msg = AmqpMessage {
        content_type: message.meta_str("content-type"),
        application_properties: message
            .fields
            .iter()
            .map(|(n, v)| (lossy(n), value(v)))
            .collect(),
        body: if no_body {
            None
        } else {
            Some(Bytes::clone(&message.body))
        },
    };
    let decoded = amqp::decode(&msg);
    spindle_fuzz::trace(|| format!("{decoded:?}"));
    if let Ok(e) = &decoded {
        check(e);
    }
});
