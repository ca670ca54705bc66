//! Durable acceptance throughput: N concurrent producers each enqueue one event per call
//! (as the HTTP trigger does, one request = one event) and wait for it to be fsynced.
//!
//! `cargo bench -p spindle-delivery --bench accept -- [--producers 64] [--seconds 5]
//! [--batch 1] [--deliver]`
//!
//! Without `--deliver` the subscription's sink never answers, so only acceptance is measured;
//! with it, an in-process sink acknowledges at once and the committer also records the
//! deliveries (the steady state of a healthy system).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cloudevent::{Data, Event};
use delivery::{
    Delivery, Protocol, SendFuture, SendOutcome, Sink, SinkError, SinkFactory, SinkRegistry,
    Subscription, SubscriptionId,
};

struct BenchSink {
    deliver: bool,
    delivered: Arc<AtomicU64>,
}

impl Sink for BenchSink {
    fn send<'a>(&'a self, _event: &'a Event) -> SendFuture<'a> {
        Box::pin(async move {
            if self.deliver {
                self.delivered.fetch_add(1, Ordering::Relaxed);
                SendOutcome::Delivered
            } else {
                std::future::pending().await
            }
        })
    }

    fn describe(&self) -> &str {
        "bench://"
    }
}

struct BenchFactory {
    deliver: bool,
    delivered: Arc<AtomicU64>,
}

impl SinkFactory for BenchFactory {
    fn create(&self, _: &Subscription) -> Result<Arc<dyn Sink>, SinkError> {
        Ok(Arc::new(BenchSink {
            deliver: self.deliver,
            delivered: self.delivered.clone(),
        }))
    }
}

fn arg(args: &[String], name: &str, default: u64) -> u64 {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let args: Vec<String> = std::env::args().collect();
    let producers = arg(&args, "--producers", 64) as usize;
    let seconds = arg(&args, "--seconds", 5);
    let batch = arg(&args, "--batch", 1) as usize;
    let deliver = args.iter().any(|a| a == "--deliver");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(run(producers, seconds, batch, deliver));
}

async fn run(producers: usize, seconds: u64, batch: usize, deliver: bool) {
    // On the project's disk, not a RAM disk, so the fsyncs are real.
    let dir = tempfile::tempdir_in(env!("CARGO_MANIFEST_DIR")).unwrap();
    let delivered = Arc::new(AtomicU64::new(0));
    let mut sinks = SinkRegistry::new();
    sinks.register(
        "bench",
        Arc::new(BenchFactory {
            deliver,
            delivered: delivered.clone(),
        }),
    );
    let engine = Delivery::open(dir.path(), sinks).await.unwrap();
    let mut sub = Subscription::new("bench", Protocol::Http, "bench://sink");
    sub.delivery.max_in_flight = 64;
    engine.put_subscription(sub).await.unwrap();
    let id = SubscriptionId::new("bench");
    let event = Event::builder()
        .id("0")
        .source("/bench")
        .ty("com.example.bench")
        .data_with_type(
            "application/json",
            Data::json(&serde_json::json!({"order": 42, "sku": "A-1", "qty": 3})),
        )
        .build()
        .unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let accepted = Arc::new(AtomicU64::new(0));
    let calls = Arc::new(AtomicU64::new(0));
    let max_latency = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for p in 0..producers {
        let (outbox, id, event) = (engine.outbox(), id.clone(), event.clone());
        let (stop, accepted, calls, max_latency) = (
            stop.clone(),
            accepted.clone(),
            calls.clone(),
            max_latency.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let deliveries = (0..batch)
                    .map(|_| {
                        let mut e = event.clone();
                        e.set_id(format!("{p}-{n}")).unwrap();
                        n += 1;
                        (id.clone(), e)
                    })
                    .collect();
                let t = Instant::now();
                let count = outbox.enqueue(deliveries).await.unwrap();
                max_latency.fetch_max(t.elapsed().as_micros() as u64, Ordering::Relaxed);
                accepted.fetch_add(count as u64, Ordering::Relaxed);
                calls.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = start.elapsed().as_secs_f64();
    let accepted = accepted.load(Ordering::Relaxed);
    let calls = calls.load(Ordering::Relaxed);
    println!(
        "accept: {producers} producers x {batch} event(s)/call, {seconds} s{}",
        if deliver { ", delivering" } else { "" }
    );
    println!(
        "accepted {accepted} events in {elapsed:.2} s = {:.0} events/s ({:.0} durable calls/s, max latency {:.1} ms)",
        accepted as f64 / elapsed,
        calls as f64 / elapsed,
        max_latency.load(Ordering::Relaxed) as f64 / 1000.0
    );
    if deliver {
        tokio::time::sleep(Duration::from_millis(500)).await;
        println!(
            "delivered {} events meanwhile",
            delivered.load(Ordering::Relaxed)
        );
    }
    engine.shutdown().await;
}
