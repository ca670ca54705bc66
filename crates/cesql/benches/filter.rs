//! Throughput of compiled CESQL expressions and dialect filters against a
//! typical event (target: ≥ 5M evaluations/s per core).

use std::borrow::Cow;
use std::hint::black_box;

use cesql::{EventAttributes, Expression, Filter, MapEvent, Value};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;

fn typical_event() -> MapEvent {
    MapEvent::new()
        .with("specversion", "1.0".to_string())
        .with("id", "7d2f1c0e-4b1a-4e57-9a8e-3f0c2d9b6a11".to_string())
        .with("source", "/shop/eu-west/orders".to_string())
        .with("type", "com.example.order.created".to_string())
        .with("subject", "order-12345".to_string())
        .with("time", "2026-11-27T12:00:00Z".to_string())
        .with("datacontenttype", "application/json".to_string())
        .with("tenant", "acme".to_string())
}

/// An event with typed fields, read with a `match` on the name: the shape of
/// the runtime's CloudEvent implementation of the trait.
struct StructEvent {
    id: String,
    source: String,
    ty: String,
    subject: Option<String>,
    time: Option<String>,
    datacontenttype: Option<String>,
    extensions: Vec<(String, String)>,
}

fn s(v: &str) -> Option<Value<'_>> {
    Some(Value::String(Cow::Borrowed(v)))
}

impl EventAttributes for StructEvent {
    fn attribute(&self, name: &str) -> Option<Value<'_>> {
        match name {
            "specversion" => s("1.0"),
            "id" => s(&self.id),
            "source" => s(&self.source),
            "type" => s(&self.ty),
            "subject" => self.subject.as_deref().and_then(s),
            "time" => self.time.as_deref().and_then(s),
            "datacontenttype" => self.datacontenttype.as_deref().and_then(s),
            _ => self
                .extensions
                .iter()
                .find(|(n, _)| n == name)
                .and_then(|(_, v)| s(v)),
        }
    }
}

fn typical_struct_event() -> StructEvent {
    StructEvent {
        id: "7d2f1c0e-4b1a-4e57-9a8e-3f0c2d9b6a11".into(),
        source: "/shop/eu-west/orders".into(),
        ty: "com.example.order.created".into(),
        subject: Some("order-12345".into()),
        time: Some("2026-11-27T12:00:00Z".into()),
        datacontenttype: Some("application/json".into()),
        extensions: vec![("tenant".into(), "acme".into())],
    }
}

fn bench(c: &mut Criterion) {
    let event = typical_event();
    let mut group = c.benchmark_group("filter");
    group.throughput(Throughput::Elements(1));

    let sql = Expression::parse("type = 'com.example.order.created' AND source LIKE '/shop/%'")
        .expect("valid expression");
    assert!(sql.matches(&event));
    group.bench_function("cesql_type_eq_and_source_like", |b| {
        b.iter(|| black_box(&sql).matches(black_box(&event)))
    });
    group.bench_function("cesql_evaluate_with_value", |b| {
        b.iter(|| black_box(&sql).evaluate(black_box(&event)).passes())
    });

    let dialects = Filter::from_json(&json!({
        "all": [
            {"exact": {"type": "com.example.order.created"}},
            {"prefix": {"source": "/shop/"}},
            {"suffix": {"subject": "12345"}},
            {"any": [
                {"exact": {"tenant": "globex"}},
                {"prefix": {"datacontenttype": "application/"}}
            ]}
        ]
    }))
    .expect("valid filter");
    assert!(dialects.matches(&event));
    group.bench_function("dialects_all_any_five_clauses", |b| {
        b.iter(|| black_box(&dialects).matches(black_box(&event)))
    });

    let struct_event = typical_struct_event();
    assert!(sql.matches(&struct_event) && dialects.matches(&struct_event));
    group.bench_function("struct_event/cesql_type_eq_and_source_like", |b| {
        b.iter(|| black_box(&sql).matches(black_box(&struct_event)))
    });
    group.bench_function("struct_event/dialects_all_any_five_clauses", |b| {
        b.iter(|| black_box(&dialects).matches(black_box(&struct_event)))
    });

    let mixed = Filter::from_json_list(&[
        json!({"prefix": {"type": "com.example."}}),
        json!({"sql": "subject LIKE 'order-%' AND tenant IN ('acme', 'initech')"}),
    ])
    .expect("valid filters");
    assert!(mixed.matches(&event));
    group.bench_function("dialects_with_sql", |b| {
        b.iter(|| black_box(&mixed).matches(black_box(&event)))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
