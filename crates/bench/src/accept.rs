//! `spindle-bench accept`: a Spindle app whose `/events` route has no component (it only feeds
//! subscriptions) and one subscription matching the events, delivering to a native HTTP sink
//! that counts them. Measures the `202 Accepted` rate (each one delivered directly while the
//! sink keeps up, else stored with group commit first) under many connections, then how long
//! until the sink has every accepted event (delivered/s end to end); then the same with the
//! sink down, which leaves the pure durable acceptance rate. Target: at least 20k accepted events/s on the 2-core machine.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use delivery::{Protocol, Subscription};

use crate::load::Summary;
use crate::setup::{self, Background, RunningApp};
use crate::{Common, servers, us};

/// Accepted events per second the issue asks for.
const TARGET: f64 = 20_000.0;

const MANIFEST: &str = r#"spindle_manifest_version = 1
[application]
name = "bench-accept"
[[trigger.http]]
route = "/events"
"#;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    common: Common,
    /// Keep-alive connections of the load generator (group commit folds the events waiting
    /// for one fsync together, so acceptance grows with them).
    #[arg(long, default_value_t = 128)]
    connections: usize,
    /// The subscription's `maxInFlight` (deliveries in flight to the sink); default: the
    /// subscription default.
    #[arg(long)]
    sink_in_flight: Option<u32>,
    /// Longest wait, in seconds, for the sink to receive every accepted event.
    #[arg(long, default_value_t = 60.0)]
    drain_timeout: f64,
    /// Skips the second phase (sink down).
    #[arg(long)]
    skip_sink_down: bool,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let server = setup::server_runtime(args.common.server_threads);
    let sink_runtime = Background::start("sink");
    println!(
        "accept: binary-mode POST of one event ({} bytes of JSON data, a fresh id each) to a \
         route without a component -> 202 once stored for 1 subscription (filter prefix \
         type com.example.); {} keep-alive connections; server runtime {} worker thread(s) + \
         the delivery committer thread, load generator 1 thread in {}, sink 1 thread, {} \
         CPUs shared (nothing pinned); {:.1} s after {:.1} s warm-up",
        args.common.body_size,
        args.connections,
        args.common.server_threads,
        args.common.generator(),
        setup::cpus(),
        args.common.duration,
        args.common.warmup,
    );

    // Phase 1: a live sink.
    let received = Arc::new(AtomicU64::new(0));
    let sink = {
        let received = received.clone();
        sink_runtime.run(servers::counting_sink(received))?
    };
    let app = server.block_on(RunningApp::start(MANIFEST))?;
    server.block_on(
        app.delivery
            .put_subscription(subscription(args, &format!("http://{}/sink", sink.addr))),
    )?;
    let cpu = setup::cpu_by_thread();
    let outcome = load(args, &app)?;
    let load_end = Instant::now();
    let during = received.load(Ordering::Relaxed);
    let accepted_load = setup::load_average();
    let deadline = load_end + Duration::from_secs_f64(args.drain_timeout);
    while received.load(Ordering::Relaxed) < outcome.ok_total && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(2));
    }
    let drained = Instant::now();
    let cpu_after = setup::cpu_by_thread();
    let delivered = received.load(Ordering::Relaxed);
    // The generator may be another process: its start is wall-clock time.
    let since_start = SystemTime::now()
        .duration_since(outcome.started)
        .unwrap_or_default();
    let started = drained.checked_sub(since_start).unwrap_or(load_end);
    report("sink up", &outcome, &accepted_load);
    let complete = delivered >= outcome.ok_total;
    println!(
        "    delivered {delivered} of {} accepted: {:.0} events/s end to end (first request to \
         {} delivery, {:.2} s); {:.0}/s while the load ran, then {:.2} s to drain [{}]",
        outcome.ok_total,
        delivered as f64 / (drained - started).as_secs_f64(),
        if complete {
            "last"
        } else {
            "timeout, NOT all delivered"
        },
        (drained - started).as_secs_f64(),
        during as f64 / (load_end - started).as_secs_f64(),
        (drained - load_end).as_secs_f64(),
        setup::load_average(),
    );
    cpu_report(&cpu, &cpu_after, outcome.ok_total, "accepted and delivered");
    server.block_on(app.stop())?;
    drop(sink);

    // Phase 2: nothing listens where the sink was, so every delivery attempt is refused and
    // retried later; what is left is acceptance alone.
    if !args.skip_sink_down {
        let closed = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let app = server.block_on(RunningApp::start(MANIFEST))?;
        server.block_on(
            app.delivery
                .put_subscription(subscription(args, &format!("http://{closed}/sink"))),
        )?;
        let cpu = setup::cpu_by_thread();
        let outcome = load(args, &app)?;
        let cpu_after = setup::cpu_by_thread();
        report("sink down", &outcome, &setup::load_average());
        cpu_report(&cpu, &cpu_after, outcome.ok_total, "accepted");
        let pending = app.delivery.pending(None);
        println!("    {pending} events pending in the outbox afterwards");
        server.block_on(app.stop())?;
    }
    Ok(())
}

fn subscription(args: &Args, sink: &str) -> Subscription {
    let mut sub = Subscription::new("bench", Protocol::Http, sink);
    sub.filters = Some(vec![
        serde_json::json!({"prefix": {"type": "com.example."}}),
    ]);
    if let Some(n) = args.sink_in_flight {
        sub.delivery.max_in_flight = n;
    }
    sub
}

fn load(args: &Args, app: &RunningApp) -> anyhow::Result<Summary> {
    let mut spec = args.common.load(app.addr, "/events", args.connections, 202);
    spec.unique_ids = true;
    let outcome = spec.execute(args.common.in_process)?;
    anyhow::ensure!(
        outcome.ok > 0,
        "no request succeeded: {}",
        outcome.first_error.as_deref().unwrap_or("?")
    );
    Ok(outcome)
}

/// The app's CPU per event, by thread: what the figures cost, whatever else ran on the machine.
fn cpu_report(
    before: &std::collections::BTreeMap<String, u64>,
    after: &std::collections::BTreeMap<String, u64>,
    events: u64,
    what: &str,
) {
    println!(
        "    CPU per event {what}: server threads {:.1} us, delivery committer {:.1} us",
        setup::cpu_per_event(before, after, "server", events),
        setup::cpu_per_event(before, after, "delivery", events),
    );
}

fn report(phase: &str, outcome: &Summary, load: &str) {
    let rate = outcome.rate();
    println!(
        "  {phase:<10} accepted {:>7.0} events/s (target >= {:.0}: {}); latency p50 {}, p99 {} [{load}]",
        rate,
        TARGET,
        if rate >= TARGET { "met" } else { "NOT met" },
        us(outcome.p50),
        us(outcome.p99),
    );
    if outcome.errors > 0 {
        println!(
            "    {} failed requests, the first: {}",
            outcome.errors,
            outcome.first_error.as_deref().unwrap_or("?")
        );
    }
}
