//! The cost of matching one event against N subscriptions (1 to 100,000), with a realistic
//! mix: most subscriptions ask for exact types (spread over N/10 types, so a type has about
//! ten subscribers), a quarter for a source prefix (a tenant), a few for an exact source, and
//! ten are CESQL expressions that every event is tested against. Target: ≤ 10 µs at 10,000.

use std::hint::black_box;

use cloudevent::Event;
use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use delivery::{Protocol, Subscription};
use runtime::routing::SubscriptionIndex;
use serde_json::json;

fn subscriptions(n: usize) -> Vec<Subscription> {
    let types = (n / 10).max(1);
    (0..n)
        .map(|i| {
            let mut s = Subscription::new(
                format!("sub-{i:06}"),
                Protocol::Http,
                "http://127.0.0.1:9/".to_owned(),
            );
            match i % 20 {
                _ if i < 10 && n >= 100 => {
                    s.filters = Some(vec![json!({
                        "sql": format!("subject LIKE 'order-{i}%' AND EXISTS priority")
                    })])
                }
                0..=13 => s.types = Some(vec![format!("com.example.t{}", i % types)]),
                14..=18 => {
                    s.filters = Some(vec![
                        json!({ "prefix": { "source": format!("/tenants/{}/", i % 1000) } }),
                    ])
                }
                _ => s.source = Some(format!("/services/{i}")),
            }
            s
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let event = Event::builder()
        .id("1")
        .source("/tenants/42/orders")
        .ty("com.example.t7")
        .subject("order-12345")
        .build()
        .unwrap();
    let mut group = c.benchmark_group("match one event");
    group.throughput(Throughput::Elements(1));
    for n in [1, 100, 1_000, 10_000, 100_000] {
        let index = SubscriptionIndex::build(&subscriptions(n));
        let mut matched = 0;
        index.matching(&event, |_| matched += 1);
        group.bench_with_input(
            BenchmarkId::new(format!("subscriptions ({matched} match)"), n),
            &index,
            |b, index| {
                b.iter(|| {
                    let mut count = 0usize;
                    index.matching(black_box(&event), |_| count += 1);
                    count
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
