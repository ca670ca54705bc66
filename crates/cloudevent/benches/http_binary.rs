//! Decode + encode of a binary-mode HTTP event with a 1 KiB JSON body: the per-event cost of
//! the HTTP trigger's codec. Target: at least 1M decode+encode per second on one core.
//!
//! `cargo bench -p spindle-cloudevent` runs the criterion benchmarks and prints the time per
//! decode+encode and the rate it allows. For instruction counts (repeatable on a loaded
//! machine), run the built binary with `HTTP_BINARY_ITERS=N` under callgrind: it then does N
//! decode+encode round trips and nothing else, so total instructions / N is the cost of one.

use ::http::{HeaderMap, HeaderName, HeaderValue};
use bytes::Bytes;
use cloudevent::http;
use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, SystemTime};

use criterion::{Criterion, Throughput, criterion_group};

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
        b.iter(|| round_trip(&headers, &body))
    });
    group.bench_function("decode", |b| {
        b.iter(|| black_box(http::decode(black_box(&headers), black_box(body.clone())).unwrap()))
    });
    let event = http::decode(&headers, body.clone())
        .unwrap()
        .into_events()
        .remove(0);
    group.bench_function("encode", |b| {
        b.iter(|| black_box(http::encode_binary(black_box(&event))))
    });
    group.finish();
}

/// One decode of the request and one encode of the event it carried.
fn round_trip(headers: &HeaderMap, body: &Bytes) -> http::Encoded {
    let message = http::decode(black_box(headers), black_box(body.clone())).unwrap();
    let http::Message::Event(event, _) = message else {
        unreachable!()
    };
    black_box(http::encode_binary(&event))
}

/// The figure the target is stated in, read back from the estimate criterion just wrote (none
/// when a filter skipped the round trip).
fn summary(started: SystemTime) {
    let path = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("../criterion/http_binary/decode+encode 1KiB JSON/new/estimates.json");
    let fresh = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .is_ok_and(|t| t >= started);
    let Some(text) = fresh.then(|| std::fs::read_to_string(&path).ok()).flatten() else {
        return;
    };
    let Some(ns) = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v["mean"]["point_estimate"].as_f64())
    else {
        return;
    };
    println!(
        "\nhttp_binary decode+encode (1 KiB JSON): {ns:.0} ns/iter = {:.2} M/s on one core (target: 1 M/s)",
        1e3 / ns
    );
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(5));
    targets = bench
}

fn main() {
    if let Some(iters) = std::env::var("HTTP_BINARY_ITERS")
        .ok()
        .and_then(|n| n.parse::<u64>().ok())
    {
        let (headers, body) = request();
        for _ in 0..iters {
            drop(round_trip(&headers, &body));
        }
        return;
    }
    let started = SystemTime::now();
    benches();
    Criterion::default().configure_from_args().final_summary();
    summary(started);
}
