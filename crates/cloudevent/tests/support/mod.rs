//! Generators of valid events shared by the property tests.

#![allow(dead_code)]

use chrono::{DateTime, FixedOffset, TimeZone};
use cloudevent::{AttributeValue, Data, Event, Timestamp};
use proptest::prelude::*;

pub fn text() -> impl Strategy<Value = String> {
    // Arbitrary Unicode, minus what the String type forbids.
    any::<String>().prop_map(|s| {
        s.chars()
            .filter(|&c| !c.is_control() && (c as u32) & 0xFFFE != 0xFFFE)
            .filter(|&c| !(0xFDD0..=0xFDEF).contains(&(c as u32)))
            .take(24)
            .collect::<String>()
    })
}

pub fn non_empty_text() -> impl Strategy<Value = String> {
    (text(), "[a-zA-Z0-9 %\"]{1,4}").prop_map(|(a, b)| format!("{b}{a}"))
}

pub fn source() -> impl Strategy<Value = String> {
    prop_oneof![
        "/[a-z]{1,8}(/[a-z0-9._~-]{1,5}){0,3}",
        "https://example\\.com/[a-z0-9]{0,8}(\\?q=[a-z]{1,3})?",
        "urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}",
        "[a-z]{1,5}%20[a-z]{1,3}",
    ]
}

pub fn timestamp() -> impl Strategy<Value = Timestamp> {
    (0i64..4_102_444_800, 0u32..1_000_000_000, -1439i32..1439).prop_map(|(secs, nanos, mins)| {
        let offset = FixedOffset::east_opt(mins * 60).unwrap();
        let dt: DateTime<FixedOffset> = offset.timestamp_opt(secs, nanos).unwrap();
        Timestamp::from(dt)
    })
}

pub fn ext_name() -> impl Strategy<Value = String> {
    "[a-z0-9]{1,12}".prop_filter("not a core attribute or data", |n| {
        !cloudevent::CORE_ATTRIBUTES.contains(&n.as_str()) && n != "data"
    })
}

pub fn ext_value() -> impl Strategy<Value = AttributeValue> {
    prop_oneof![
        any::<bool>().prop_map(AttributeValue::Boolean),
        any::<i32>().prop_map(AttributeValue::Integer),
        text().prop_map(AttributeValue::String),
    ]
}

pub fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        text().prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map("[a-z]{1,4}", inner, 0..4)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

pub fn data() -> impl Strategy<Value = Option<(Option<String>, Data)>> {
    prop_oneof![
        Just(None),
        json_value().prop_map(|v| Some((Some("application/json".to_owned()), Data::json(&v)))),
        non_empty_text()
            .prop_map(|t| Some((Some("text/plain; charset=utf-8".to_owned()), Data::text(t)))),
        prop::collection::vec(any::<u8>(), 1..64)
            .prop_map(|b| Some((Some("application/octet-stream".to_owned()), Data::binary(b)))),
        prop::collection::vec(any::<u8>(), 1..64).prop_map(|b| Some((None, Data::binary(b)))),
    ]
}

prop_compose! {
    pub fn event()(
        id in non_empty_text(),
        source in source(),
        ty in non_empty_text(),
        subject in proptest::option::of(non_empty_text()),
        time in proptest::option::of(timestamp()),
        dataschema in proptest::option::of("https://schemas\\.example\\.com/[a-z]{1,8}\\.json"),
        extensions in prop::collection::btree_map(ext_name(), ext_value(), 0..4),
        data in data(),
    ) -> Event {
        let mut b = Event::builder().id(id).source(source).ty(ty);
        if let Some(s) = subject { b = b.subject(s); }
        if let Some(t) = time { b = b.time(t); }
        if let Some(d) = dataschema { b = b.dataschema(d); }
        for (k, v) in extensions { b = b.extension(k, v); }
        if let Some((ct, d)) = data {
            if let Some(ct) = ct { b = b.datacontenttype(ct); }
            b = b.data(d);
        }
        b.build().expect("generated events are valid")
    }
}

/// Binary mode carries every extension as a string: the best a header can do.
pub fn with_string_extensions(mut event: Event) -> Event {
    let names: Vec<String> = event.extensions().keys().cloned().collect();
    for name in names {
        let value = event.remove_extension(&name).unwrap();
        event
            .set_extension(name, AttributeValue::String(value.to_canonical_string()))
            .unwrap();
    }
    event
}
