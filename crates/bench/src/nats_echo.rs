//! `spindle-bench nats-echo`: a Spindle app with a `[[trigger.nats]]` on a run-unique subject
//! feeding the echo component, whose results go to an output `nats://…/<out subject>` (a
//! durable delivery queue: stored with group commit, then published by a delivery worker).
//! A producer publishes events in binary mode as fast as the app takes them (at most
//! `--window` unanswered, so core NATS never drops for a slow consumer) and a consumer on the
//! out subject decodes and counts them. Target: at least 30k events/s end to end.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cloudevent::{Data, Event};
use futures::StreamExt;
use tokio::sync::Semaphore;

use crate::load;
use crate::setup::{self, RunningApp};

/// End-to-end events per second the issue asks for.
const TARGET: f64 = 30_000.0;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Events to send through the app (after the warm-up events).
    #[arg(long, default_value_t = 100_000)]
    events: u64,
    /// Events sent through first, not counted.
    #[arg(long, default_value_t = 2_000)]
    warmup_events: u64,
    /// Most events published and not yet back on the out subject.
    #[arg(long, default_value_t = 8_000)]
    window: usize,
    /// Worker threads of the app's tokio runtime. The producer and the consumer share one
    /// thread of their own; nats-server runs beside them; nothing is pinned.
    #[arg(long, default_value_t = 1)]
    server_threads: usize,
    /// Size in bytes of the event's JSON data.
    #[arg(long, default_value_t = 1024)]
    body_size: usize,
    /// The NATS server.
    #[arg(long, default_value = "127.0.0.1:4222")]
    nats: String,
    /// Longest wait, in seconds, for every event to come back.
    #[arg(long, default_value_t = 60.0)]
    timeout: f64,
    /// The echo component (default: tests/guests/echo, built from source).
    #[arg(long)]
    wasm: Option<PathBuf>,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    if std::net::TcpStream::connect(&args.nats).is_err() {
        anyhow::bail!(
            "nats-server is not reachable on {}: run `bash scripts/services.sh` first",
            args.nats
        );
    }
    let wasm = setup::echo_guest(args.wasm.as_deref());
    let run = setup::unique();
    let (inbound, outbound) = (
        format!("spindle.bench.in.{run}"),
        format!("spindle.bench.out.{run}"),
    );
    let manifest = format!(
        r#"spindle_manifest_version = 1
[application]
name = "bench-nats-echo"
[[trigger.nats]]
address = "nats://{nats}"
subject = "{inbound}"
component = "echo"
[component.echo]
source = {source:?}
[component.echo.outputs]
out = {{ uri = "nats://{nats}/{outbound}", mode = "binary" }}
"#,
        nats = args.nats,
        source = wasm.display().to_string(),
    );
    println!(
        "nats-echo: NATS (binary mode, {} bytes of JSON data) -> [[trigger.nats]] -> echo.wasm \
         -> output queue (group commit) -> NATS; {} events after {} warm-up, at most {} in \
         flight; app runtime {} worker thread(s) + the delivery committer thread, producer and \
         consumer 1 thread, nats-server beside, {} CPUs shared (nothing pinned)",
        args.body_size,
        args.events,
        args.warmup_events,
        args.window,
        args.server_threads,
        setup::cpus(),
    );
    let server = setup::server_runtime(args.server_threads);
    let app = server.block_on(RunningApp::start(&manifest))?;
    let (nats, events, warmup, window, body_size) = (
        args.nats.clone(),
        args.events,
        args.warmup_events,
        args.window,
        args.body_size,
    );
    let timeout = Duration::from_secs_f64(args.timeout);
    let result = setup::on_thread("nats-load", move || async move {
        drive(
            &nats, &inbound, &outbound, events, warmup, window, body_size, timeout,
        )
        .await
    });
    let load_average = setup::load_average();
    server.block_on(app.stop())?;
    let (received, elapsed) = result?;
    let rate = received as f64 / elapsed.as_secs_f64();
    println!(
        "  {received} of {events} events back in {:.2} s = {rate:.0} events/s end to end \
         (target >= {TARGET:.0}: {}) [{load_average}]",
        elapsed.as_secs_f64(),
        if received == events && rate >= TARGET {
            "met"
        } else {
            "NOT met"
        },
    );
    if received < events {
        println!(
            "  {} events did not come back within {:.0} s",
            events - received,
            timeout.as_secs_f64()
        );
    }
    Ok(())
}

/// Publishes `warmup` events and waits for them, then publishes `events` more and returns
/// how many of those came back and how long it took from the first publish to the last
/// arrival (or to the timeout).
#[allow(clippy::too_many_arguments)]
async fn drive(
    nats: &str,
    inbound: &str,
    outbound: &str,
    events: u64,
    warmup: u64,
    window: usize,
    body_size: usize,
    timeout: Duration,
) -> anyhow::Result<(u64, Duration)> {
    let consumer = async_nats::connect(nats).await?;
    let mut subscription = consumer.subscribe(outbound.to_owned()).await?;
    consumer.flush().await?;
    let received = Arc::new(AtomicU64::new(0));
    let credit = Arc::new(Semaphore::new(window));
    let counting = {
        let (received, credit) = (received.clone(), credit.clone());
        tokio::spawn(async move {
            while let Some(message) = subscription.next().await {
                let message = cloudevent::nats::NatsMessage {
                    headers: message
                        .headers
                        .iter()
                        .flat_map(|h| h.iter())
                        .flat_map(|(name, values)| {
                            let name: &str = name.as_ref();
                            values
                                .iter()
                                .map(move |v| (name.to_owned(), v.as_str().to_owned()))
                        })
                        .collect(),
                    payload: message.payload,
                };
                if cloudevent::nats::decode(&message).is_ok() {
                    received.fetch_add(1, Ordering::Relaxed);
                    credit.add_permits(1);
                }
            }
        })
    };

    let producer = async_nats::connect(nats).await?;
    let event = Event::builder()
        .id("0")
        .source("/bench/nats")
        .ty("com.example.order.created")
        .data_with_type("application/json", Data::binary(load::json_body(body_size)))
        .build()?;
    let template = cloudevent::nats::encode(&event, cloudevent::nats::Mode::Binary);
    let publish = |n: u64| {
        let mut headers = async_nats::HeaderMap::new();
        for (name, value) in &template.headers {
            if name == "ce-id" {
                headers.insert("ce-id", n.to_string().as_str());
            } else {
                headers.insert(name.as_str(), value.as_str());
            }
        }
        let payload: Bytes = template.payload.clone();
        producer.publish_with_headers(inbound.to_owned(), headers, payload)
    };
    let wait_for = |count: u64, deadline: Instant| {
        let received = received.clone();
        async move {
            while received.load(Ordering::Relaxed) < count && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    };

    for n in 0..warmup {
        credit.acquire().await?.forget();
        publish(n).await?;
    }
    producer.flush().await?;
    wait_for(warmup, Instant::now() + timeout).await;
    let warmed = received.load(Ordering::Relaxed);
    anyhow::ensure!(
        warmed >= warmup,
        "only {warmed} of {warmup} warm-up events came back within {timeout:?}"
    );

    let started = Instant::now();
    for n in warmup..warmup + events {
        credit.acquire().await?.forget();
        publish(n).await?;
    }
    producer.flush().await?;
    wait_for(warmup + events, started + timeout).await;
    let elapsed = started.elapsed();
    counting.abort();
    let back = received.load(Ordering::Relaxed).saturating_sub(warmup);
    Ok((back.min(events), elapsed))
}
