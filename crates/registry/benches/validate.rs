//! What checking an event against its declared schema costs: the contract check the executor
//! runs before a handler (valid data, the common case), the same with a violation reported,
//! and a 1 KiB order with nested items.

use std::hint::black_box;

use cloudevent::{Data, Event};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use registry::DataSchema;
use serde_json::json;

fn schema() -> DataSchema {
    DataSchema::compile(
        "order.json",
        json!({
            "type": "object",
            "required": ["name", "qty", "items"],
            "properties": {
                "name": { "type": "string", "minLength": 1 },
                "qty": { "type": "integer", "minimum": 1 },
                "items": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["sku", "price"],
                        "properties": {
                            "sku": { "type": "string", "pattern": "^[A-Z][0-9]+$" },
                            "price": { "type": "number", "exclusiveMinimum": 0 }
                        }
                    }
                }
            }
        }),
    )
    .unwrap()
}

fn order(items: usize, qty: i64) -> Event {
    let items: Vec<_> = (0..items)
        .map(|i| json!({ "sku": format!("A{i}"), "price": 9.5 + i as f64 }))
        .collect();
    Event::builder()
        .id("1")
        .source("/shop")
        .ty("com.example.order.created")
        .data_with_type(
            "application/json",
            Data::json(&json!({ "name": "ada", "qty": qty, "items": items })),
        )
        .build()
        .unwrap()
}

fn bench(c: &mut Criterion) {
    let schema = schema();
    let mut group = c.benchmark_group("validate");
    group.throughput(Throughput::Elements(1));
    let small = order(1, 2);
    group.bench_function("valid, 1 item (~60 B)", |b| {
        b.iter(|| schema.check(black_box(&small), "urn:order").unwrap())
    });
    let large = order(40, 2);
    assert!(large.data().unwrap().len() >= 1024);
    group.bench_function("valid, 40 items (~1 KiB)", |b| {
        b.iter(|| schema.check(black_box(&large), "urn:order").unwrap())
    });
    let invalid = order(1, 0);
    group.bench_function("invalid, violation reported", |b| {
        b.iter(|| schema.check(black_box(&invalid), "urn:order").unwrap_err())
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
