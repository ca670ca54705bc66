//! What the metrics cost an event on the hot path: an HTTP event handled by a component
//! records its trigger's `accepted` counter, the component's instance gauge up and down, and
//! one handler-duration histogram observation (the handles are looked up once, at start).
//! Measured on one thread and on two threads recording into the same series at once (the
//! shared atomics' contention on this 2-core machine). Compare with the app's CPU per event
//! that `spindle-bench http-echo` prints.

use std::hint::black_box;
use std::time::Instant;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn per_event(trigger: &metrics::TriggerMetrics, component: &metrics::ComponentMetrics) {
    let started = Instant::now();
    component.instances.inc();
    component.instances.dec();
    component.ok.observe(started.elapsed().as_secs_f64());
    trigger.accepted.inc_by(1);
}

fn bench(c: &mut Criterion) {
    let m = metrics::metrics();
    let trigger = m.trigger("http");
    let component = m.component("echo");
    let mut group = c.benchmark_group("metrics");
    group.throughput(Throughput::Elements(1));
    group.bench_function("per event, 1 thread", |b| {
        b.iter(|| per_event(black_box(&trigger), black_box(&component)))
    });
    group.bench_function("per event, 2 threads on the same series", |b| {
        b.iter_custom(|iters| {
            let started = Instant::now();
            std::thread::scope(|s| {
                for _ in 0..2 {
                    s.spawn(|| {
                        for _ in 0..iters {
                            per_event(black_box(&trigger), black_box(&component));
                        }
                    });
                }
            });
            // Each core recorded `iters` events in this time: its cost per event, worst case
            // (back to back, every write contending for the same cache lines).
            started.elapsed()
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
