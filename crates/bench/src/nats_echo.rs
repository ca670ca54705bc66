//! `spindle-bench nats-echo`: a Spindle app with a `[[trigger.nats]]` on a run-unique subject
//! feeding the echo component, whose results go to an output `nats://…/<out subject>` (a
//! delivery queue: while the sink keeps up each result is published directly, within the
//! output's `maxInFlight`, with group flushes; what fails is stored with group commit and
//! retried by the delivery worker; the figures show the backlog and the committer's CPU).
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
    /// Events sent through first, not counted (in every trial).
    #[arg(long, default_value_t = 2_000)]
    warmup_events: u64,
    /// Runs of the producer against the same app; the median is the figure (one run on a
    /// shared 2-core machine varies by a quarter either way).
    #[arg(long, default_value_t = 5)]
    trials: usize,
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
    /// Runs the producer and consumer on a thread of this process instead of in a child
    /// process.
    #[arg(long)]
    in_process: bool,
}

/// The producer and consumer's part, as the hidden `nats-load` subcommand takes it.
#[derive(clap::Args, Debug, Clone)]
pub struct Spec {
    /// The NATS server.
    #[arg(long)]
    nats: String,
    /// The subject the app's trigger listens on.
    #[arg(long)]
    inbound: String,
    /// The subject of the app's output.
    #[arg(long)]
    outbound: String,
    /// Events to count.
    #[arg(long)]
    events: u64,
    /// Events sent through first.
    #[arg(long)]
    warmup: u64,
    /// Most events in flight.
    #[arg(long)]
    window: usize,
    /// Size in bytes of the event's JSON data.
    #[arg(long)]
    body_size: usize,
    /// Longest wait in seconds.
    #[arg(long)]
    timeout: f64,
}

/// What the `nats-load` child reports: how many events came back, in how long.
#[derive(serde::Serialize, serde::Deserialize)]
struct Returned {
    received: u64,
    elapsed: Duration,
}

impl Spec {
    /// Runs the producer and consumer (in a child process unless `in_process`) and returns
    /// how many events came back and how long they took.
    fn execute(&self, in_process: bool) -> anyhow::Result<(u64, Duration)> {
        if in_process {
            let spec = self.clone();
            return setup::on_thread("nats-load", move || async move { spec.drive().await });
        }
        let args: Vec<String> = [
            ("--nats", self.nats.clone()),
            ("--inbound", self.inbound.clone()),
            ("--outbound", self.outbound.clone()),
            ("--events", self.events.to_string()),
            ("--warmup", self.warmup.to_string()),
            ("--window", self.window.to_string()),
            ("--body-size", self.body_size.to_string()),
            ("--timeout", self.timeout.to_string()),
        ]
        .into_iter()
        .flat_map(|(flag, value)| [flag.to_owned(), value])
        .collect();
        let back: Returned = setup::run_child("nats-load", &args, "the NATS producer/consumer")?;
        Ok((back.received, back.elapsed))
    }

    /// The hidden `nats-load` subcommand: prints what [`Spec::drive`] measured as JSON.
    pub fn main(&self) -> anyhow::Result<()> {
        let (received, elapsed) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(self.drive())?;
        setup::report_to_parent(&Returned { received, elapsed })
    }

    /// Publishes `warmup` events and waits for them, then publishes `events` more and returns
    /// how many of those came back and how long it took from the first publish to the last
    /// arrival (or to the timeout).
    async fn drive(&self) -> anyhow::Result<(u64, Duration)> {
        let (events, warmup) = (self.events, self.warmup);
        let timeout = Duration::from_secs_f64(self.timeout);
        let consumer = async_nats::connect(&self.nats).await?;
        let mut subscription = consumer.subscribe(self.outbound.clone()).await?;
        consumer.flush().await?;
        let received = Arc::new(AtomicU64::new(0));
        let credit = Arc::new(Semaphore::new(self.window));
        let counting = {
            let (received, credit) = (received.clone(), credit.clone());
            tokio::spawn(async move {
                while let Some(message) = subscription.next().await {
                    let message =
                        transports::nats::to_message(message.headers.as_ref(), message.payload);
                    if cloudevent::nats::decode(&message).is_ok() {
                        received.fetch_add(1, Ordering::Relaxed);
                        credit.add_permits(1);
                    }
                }
            })
        };

        let producer = async_nats::connect(&self.nats).await?;
        let event = Event::builder()
            .id("0")
            .source("/bench/nats")
            .ty("com.example.order.created")
            .data_with_type(
                "application/json",
                Data::binary(load::json_body(self.body_size)),
            )
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
            producer.publish_with_headers(self.inbound.clone(), headers, payload)
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
    let spec = Spec {
        nats: args.nats.clone(),
        inbound: format!("spindle.bench.in.{run}"),
        outbound: format!("spindle.bench.out.{run}"),
        events: args.events,
        warmup: args.warmup_events,
        window: args.window,
        body_size: args.body_size,
        timeout: args.timeout,
    };
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
        nats = spec.nats,
        inbound = spec.inbound,
        outbound = spec.outbound,
        source = wasm.display().to_string(),
    );
    println!(
        "nats-echo: NATS (binary mode, {} bytes of JSON data) -> [[trigger.nats]] -> echo.wasm \
         -> output (direct while the sink keeps up, else queued) -> NATS; {} events after {} warm-up, at most {} in \
         flight; app runtime {} worker thread(s) + the delivery committer thread, producer and \
         consumer 1 thread in {}, nats-server beside, {} CPUs shared (nothing pinned)",
        args.body_size,
        args.events,
        args.warmup_events,
        args.window,
        args.server_threads,
        if args.in_process {
            "this process"
        } else {
            "a child process"
        },
        setup::cpus(),
    );
    let server = setup::server_runtime(args.server_threads);
    let app = server.block_on(RunningApp::start(&manifest))?;
    // How far the output queue falls behind: where the events wait, if anywhere.
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let backlog = {
        let (delivery, done) = (app.delivery.clone(), done.clone());
        std::thread::spawn(move || {
            let mut peak = 0;
            while !done.load(Ordering::Relaxed) {
                peak = peak.max(delivery.pending(None));
                std::thread::sleep(Duration::from_millis(100));
            }
            peak
        })
    };
    let mut rates = Vec::new();
    let mut failure = None;
    for trial in 1..=args.trials.max(1) {
        let cpu = setup::cpu_by_thread();
        let result = spec.execute(args.in_process);
        let cpu_after = setup::cpu_by_thread();
        let load_average = setup::load_average();
        let (received, elapsed) = match result {
            Ok(outcome) => outcome,
            Err(e) => {
                failure = Some(e);
                break;
            }
        };
        let events = args.events;
        let rate = received as f64 / elapsed.as_secs_f64();
        let all = events + args.warmup_events;
        println!(
            "  trial {trial}: {received} of {events} events back in {:.2} s = {rate:.0} events/s \
             end to end; CPU per event: server threads {:.1} us, delivery committer {:.1} us \
             [{load_average}]",
            elapsed.as_secs_f64(),
            setup::cpu_per_event(&cpu, &cpu_after, "server", all),
            setup::cpu_per_event(&cpu, &cpu_after, "delivery", all),
        );
        if received < events {
            println!(
                "  {} events did not come back within {:.0} s",
                events - received,
                args.timeout
            );
            rates.push(0.0);
        } else {
            rates.push(rate);
        }
    }
    done.store(true, Ordering::Relaxed);
    let backlog = backlog.join().unwrap_or(0);
    server.block_on(app.stop())?;
    if let Some(e) = failure {
        return Err(e);
    }
    rates.sort_by(f64::total_cmp);
    let median = rates[rates.len() / 2];
    println!(
        "  median of {} trials: {median:.0} events/s end to end (range {:.0}-{:.0}; target >= \
         {TARGET:.0}: {}); output queue backlog at most {backlog} events (sampled every 100 ms)",
        rates.len(),
        rates[0],
        rates[rates.len() - 1],
        if median >= TARGET { "met" } else { "NOT met" },
    );
    Ok(())
}
