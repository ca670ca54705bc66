//! The fixed event the CESQL and filter targets evaluate against: every core attribute and an
//! extension of every type.

use cloudevent::{AttributeValue, Data, Event};

/// Builds the event.
pub fn sample_event() -> Event {
    Event::builder()
        .id("order-42")
        .source("/shop/eu")
        .ty("com.example.order.created")
        .subject("orders/42")
        .time(
            "2026-01-02T03:04:05.678+01:00"
                .parse()
                .expect("a valid timestamp"),
        )
        .dataschema("https://schemas.example.com/order.json")
        .extension("priority", 5)
        .extension("express", true)
        .extension("region", AttributeValue::String("eu-west".into()))
        .extension("negative", -2147483648)
        .extension("flag", AttributeValue::String("true".into()))
        .extension("link", AttributeValue::UriRef("/a?b=c".into()))
        .extension("blob", AttributeValue::Binary(vec![0xFB, 0xFF, 0x00]))
        .data_with_type(
            "application/json",
            Data::json(&serde_json::json!({"sku": "A1", "qty": 2})),
        )
        .build()
        .expect("a valid event")
}
