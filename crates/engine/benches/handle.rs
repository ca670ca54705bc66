//! Throughput and latency of `Handler::handle` with the echo guest: a fresh instance per event
//! (instantiate + call + drop), on one core (a current-thread tokio runtime).
//!
//! `cargo bench -p spindle-engine --bench handle` prints events/s and p50/p99/max latency.
//! Under `cargo test` (no `--bench` argument) it runs a short smoke pass only.

#[path = "../tests/support/mod.rs"]
mod support;

use engine::{CollectingPublisher, Event, Publisher};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (warmup, events) = if full { (5_000, 100_000) } else { (10, 100) };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let engine = support::engine();
        let echo = support::load(&engine, "guest_echo", support::relaxed());
        let publisher: Arc<dyn Publisher> = Arc::new(CollectingPublisher::default());
        let mut event = Event::new("bench-1", "/bench", "com.example.bench");
        event.datacontenttype = Some("application/json".into());
        event.data = Some(br#"{"order":"1234","qty":3,"note":"a small payload"}"#.to_vec());

        for _ in 0..warmup {
            echo.handle(event.clone(), publisher.clone()).await.unwrap();
        }
        let mut latencies = Vec::with_capacity(events);
        let started = Instant::now();
        for _ in 0..events {
            let t = Instant::now();
            let out = echo.handle(event.clone(), publisher.clone()).await.unwrap();
            latencies.push(t.elapsed());
            assert_eq!(out.len(), 1);
        }
        let total = started.elapsed();
        latencies.sort();
        let pct =
            |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        println!(
            "echo, fresh instance per event, 1 core: {events} events in {:.2} s = {:.0} events/s; \
             instantiate+call latency p50 {:.1} us, p99 {:.1} us, max {:.1} us",
            total.as_secs_f64(),
            events as f64 / total.as_secs_f64(),
            us(pct(0.50)),
            us(pct(0.99)),
            us(*latencies.last().unwrap()),
        );
    });
}
