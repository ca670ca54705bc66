//! Decode + encode of a binary-mode HTTP event with a 1 KiB JSON body: the per-event cost of
//! the HTTP trigger's codec. Target: at least 1M decode+encode per second on one core.

use ::http::{HeaderMap, HeaderName, HeaderValue};
use bytes::Bytes;
use cloudevent::http;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn request() -> (HeaderMap, Bytes) {
    let mut headers = HeaderMap::new();
    for (k, v) in [
        ("ce-specversion", "1.0"),
        ("ce-id", "6a1c2f9e-1b7e-4f7d-9b0a-3f1c2d4e5f60"),
        ("ce-source", "/shop/orders"),
        ("ce-type", "com.example.order.created"),
        ("ce-subject", "order-1234"),
        ("ce-time", "2026-11-27T20:42:15.123Z"),
        (
            "ce-traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        ),
        ("content-type", "application/json"),
        ("host", "127.0.0.1:3000"),
        ("content-length", "1024"),
    ] {
        headers.insert(HeaderName::from_static(k), HeaderValue::from_static(v));
    }
    let mut body = String::from("{\"items\":[");
    while body.len() < 1000 {
        body.push_str("{\"sku\":\"A-1\",\"qty\":2},");
    }
    body.pop();
    body.push_str("]}");
    let pad = 1024 - body.len();
    body.insert_str(
        1,
        &format!("\"pad\":\"{}\",", "x".repeat(pad.saturating_sub(9))),
    );
    (headers, Bytes::from(body))
}

fn bench(c: &mut Criterion) {
    let (headers, body) = request();
    assert!((1000..1100).contains(&body.len()), "{}", body.len());
    let mut group = c.benchmark_group("http_binary");
    group.throughput(Throughput::Elements(1));
    group.bench_function("decode+encode 1KiB JSON", |b| {
        b.iter(|| {
            let message = http::decode(&headers, body.clone()).unwrap();
            let http::Message::Event(event, _) = message else {
                unreachable!()
            };
            std::hint::black_box(http::encode_binary(&event))
        })
    });
    group.bench_function("decode", |b| {
        b.iter(|| std::hint::black_box(http::decode(&headers, body.clone()).unwrap()))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
