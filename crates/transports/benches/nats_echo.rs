//! End-to-end NATS throughput: producer → NATS → transports receiver → native echo handler
//! → transports sender → NATS → counting consumer, in events per second.
//!
//! Run: `cargo bench -p spindle-transports --bench nats_echo` (needs nats-server on
//! 127.0.0.1:4222; `bash scripts/services.sh` starts it). `EVENTS=200000` changes the count.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use cloudevent::{Data, Event};
use futures::StreamExt;
use transports::Endpoint;
use transports::Mode;
use transports::nats::{self, NatsReceiverConfig, NatsSender};

/// The allocator the `spindle` binary ships with, so the figures are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The handler under test: what a trivial component would do, natively.
fn echo(event: &Event) -> Event {
    let mut out = event.clone();
    out.set_type("com.example.echoed").expect("valid type");
    out
}

/// Most events in flight at once, so core NATS never drops for a slow consumer.
const WINDOW: u64 = 8_000;

#[tokio::main]
async fn main() {
    let events: u64 = std::env::var("EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let server = Endpoint::plain("127.0.0.1", 4222);
    if std::net::TcpStream::connect(("127.0.0.1", 4222)).is_err() {
        eprintln!(
            "nats-server is not reachable on 127.0.0.1:4222: run `bash scripts/services.sh` first"
        );
        std::process::exit(1);
    }
    let suffix = std::process::id();
    let (inbound, outbound) = (format!("bench.in.{suffix}"), format!("bench.out.{suffix}"));

    // The counting consumer on the output subject decodes every event, as a sink would.
    let sink = async_nats::connect("127.0.0.1:4222")
        .await
        .expect("connect");
    let mut out_sub = sink.subscribe(outbound.clone()).await.expect("subscribe");
    let received = Arc::new(AtomicU64::new(0));
    let counter = received.clone();
    let done = tokio::spawn(async move {
        while let Some(m) = out_sub.next().await {
            let message = transports::nats::to_message(m.headers.as_ref(), m.payload);
            let e = cloudevent::nats::decode(&message).expect("an echoed event");
            debug_assert_eq!(e.ty(), "com.example.echoed");
            if counter.fetch_add(1, Ordering::Relaxed) + 1 == events {
                return;
            }
        }
    });

    // The pipeline: receive, echo, send, ack. With BASELINE=1, the same path through bare
    // async-nats (no decode, no encode) instead: what the machine and server allow.
    if std::env::var_os("BASELINE").is_some() {
        let client = async_nats::connect("127.0.0.1:4222")
            .await
            .expect("connect");
        let mut sub = client.subscribe(inbound.clone()).await.expect("subscribe");
        client.flush().await.expect("flush");
        let out = async_nats::connect("127.0.0.1:4222")
            .await
            .expect("connect");
        let outbound = outbound.clone();
        tokio::spawn(async move {
            while let Some(m) = sub.next().await {
                out.publish_with_headers(
                    outbound.clone(),
                    m.headers.unwrap_or_default(),
                    m.payload,
                )
                .await
                .expect("publish");
            }
        });
    } else {
        let mut rx = nats::receive(NatsReceiverConfig {
            server: server.clone(),
            subject: inbound.clone(),
            queue_group: None,
            jetstream: None,
        })
        .await
        .expect("receiver");
        let tx = NatsSender::connect(&server, &outbound, Mode::Binary)
            .await
            .expect("sender");
        tokio::spawn(async move {
            while let Some(d) = rx.recv().await {
                let out = echo(&d.event);
                tx.send(&out).await.expect("send");
                d.ack.ack().await.expect("ack");
            }
        });
    }

    let producer = NatsSender::connect(&server, &inbound, Mode::Binary)
        .await
        .expect("producer");
    let template = Event::builder()
        .id("0")
        .source("/bench")
        .ty("com.example.bench")
        .data_with_type("application/json", Data::json(&serde_json::json!({"n": 1})))
        .build()
        .expect("event");
    let start = Instant::now();
    for i in 0..events {
        while i - received.load(Ordering::Relaxed) >= WINDOW {
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        let mut e = template.clone();
        e.set_id(i.to_string()).expect("id");
        producer.send(&e).await.expect("publish");
    }
    tokio::time::timeout(Duration::from_secs(120), done)
        .await
        .expect("all events echoed within 120 s")
        .expect("consumer");
    let elapsed = start.elapsed();
    let rate = events as f64 / elapsed.as_secs_f64();
    println!(
        "nats_echo{}: {events} events NATS -> receive -> echo -> send -> NATS in {:.2} s = {rate:.0} events/s",
        if std::env::var_os("BASELINE").is_some() {
            " (bare async-nats baseline)"
        } else {
            ""
        },
        elapsed.as_secs_f64()
    );
}
