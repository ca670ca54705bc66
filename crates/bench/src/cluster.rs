//! `spindle-bench cluster`: one app on 1, 2 and 3 nodes joined to the NATS JetStream on
//! 127.0.0.1:4222 (`[application.cluster]`), each node in this process on a runtime of its own
//! (threads `node<i>`, so each node's CPU is read apart). The app's `/events` route only feeds
//! a subscription whose sink counts what it gets; the load is spread over the nodes, one
//! generator per node. Prints, per node count, the accepted events/s, the accepted-and-
//! delivered events/s end to end, and the CPU each node spent per event it took in (the
//! figure that scales: the nodes share the machine's cores). Then the recovery: with two
//! nodes under load, one is stopped without a goodbye (its runtime dropped mid-flight, as a
//! `kill -9` leaves its connections), and the time until every accepted event reached the
//! sink is measured: what the dead node held is redelivered to the survivor after the
//! consumers' ack wait.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use delivery::{Protocol, Subscription, SubscriptionId};

use crate::load::Summary;
use crate::setup::{self, Background, RunningApp};
use crate::{Common, servers, us};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    common: Common,
    /// Keep-alive connections of each node's load generator.
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// The NATS server (with JetStream) the nodes join.
    #[arg(long, default_value = "nats://127.0.0.1:4222")]
    nats: String,
    /// The largest number of nodes (runs 1..=N).
    #[arg(long, default_value_t = 3)]
    nodes: usize,
    /// Longest wait, in seconds, for the sink to receive every accepted event.
    #[arg(long, default_value_t = 90.0)]
    drain_timeout: f64,
    /// Skips the recovery phase (it waits out the ack wait, about 30 s).
    #[arg(long)]
    skip_recovery: bool,
}

/// A node: its runtime (threads `node<i>`) and the app on it.
struct Node {
    runtime: tokio::runtime::Runtime,
    app: RunningApp,
}

fn manifest(app: &str, nats: &str) -> String {
    format!(
        r#"spindle_manifest_version = 1
[application]
name = "{app}"
[application.cluster]
nats = "{nats}"
[[trigger.http]]
route = "/events"
"#
    )
}

fn start_node(i: usize, threads: usize, manifest: &str) -> anyhow::Result<Node> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .thread_name(format!("node{i}"))
        .enable_all()
        .build()?;
    let app = runtime.block_on(RunningApp::start(manifest))?;
    Ok(Node { runtime, app })
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let sink_runtime = Background::start("sink");
    println!(
        "cluster: binary-mode POST of one event ({} bytes of JSON data, a fresh id each) to a \
         route without a component -> 202 once JetStream stored the delivery for 1 \
         subscription -> a counting HTTP sink; nodes in this process, {} worker thread(s) \
         each, joined to {}; one load generator per node in {}, {} connections each; {} CPUs \
         shared by everything (nothing pinned); {:.1} s after {:.1} s warm-up",
        args.common.body_size,
        args.common.server_threads,
        args.nats,
        args.common.generator(),
        args.connections,
        setup::cpus(),
        args.common.duration,
        args.common.warmup,
    );
    for n in 1..=args.nodes.max(1) {
        let received = Arc::new(AtomicU64::new(0));
        let sink = sink_runtime.run(servers::counting_sink(received.clone()))?;
        let manifest = manifest(&format!("bench-cluster-{}", setup::unique()), &args.nats);
        let nodes: Vec<Node> = (0..n)
            .map(|i| start_node(i, args.common.server_threads, &manifest))
            .collect::<anyhow::Result<_>>()?;
        subscribe(&nodes, &format!("http://{}/sink", sink.addr))?;
        let cpu = setup::cpu_by_thread();
        let outcomes = load(args, &nodes)?;
        let load_end = Instant::now();
        let accepted: u64 = outcomes.iter().map(|o| o.ok_total).sum();
        let rate: f64 = outcomes.iter().map(Summary::rate).sum();
        let deadline = load_end + Duration::from_secs_f64(args.drain_timeout);
        while received.load(Ordering::Relaxed) < accepted && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        let drained = Instant::now();
        let cpu_after = setup::cpu_by_thread();
        let delivered = received.load(Ordering::Relaxed);
        let started = outcomes
            .iter()
            .map(|o| o.started)
            .min()
            .and_then(|s| s.elapsed().ok())
            .and_then(|ago| drained.checked_sub(ago))
            .unwrap_or(load_end);
        let p99 = outcomes.iter().map(|o| o.p99).max().unwrap_or_default();
        println!(
            "  {n} node(s): accepted {rate:.0} events/s (p99 {}); delivered {delivered} of \
             {accepted}: {:.0} events/s accepted and delivered end to end{} [{}]",
            us(p99),
            delivered as f64 / (drained - started).as_secs_f64(),
            if delivered >= accepted {
                ""
            } else {
                " (timeout: NOT all delivered)"
            },
            setup::load_average(),
        );
        for (i, outcome) in outcomes.iter().enumerate() {
            println!(
                "    node{i}: {:.0} events/s taken in, {:.1} us CPU per event taken in (HTTP, \
                 JetStream publish, delivery worker, sink send)",
                outcome.rate(),
                setup::cpu_per_event(&cpu, &cpu_after, &format!("node{i}"), outcome.ok_total),
            );
        }
        drop(nodes);
        drop(sink);
    }
    if !args.skip_recovery {
        recovery(args, &sink_runtime)?;
    }
    Ok(())
}

/// Stores the subscription through node 0 and waits until every node runs it.
fn subscribe(nodes: &[Node], sink: &str) -> anyhow::Result<()> {
    let mut sub = Subscription::new("bench", Protocol::Http, sink);
    sub.filters = Some(vec![
        serde_json::json!({"prefix": {"type": "com.example."}}),
    ]);
    sub.delivery.max_in_flight = 64;
    let first = &nodes[0];
    first
        .runtime
        .block_on(first.app.delivery.put_subscription(sub))?;
    let id = SubscriptionId::new("bench");
    let deadline = Instant::now() + Duration::from_secs(10);
    while nodes
        .iter()
        .any(|n| n.app.delivery.subscription(&id).is_none())
    {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the subscription did not reach every node"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

/// One closed-loop generator per node, all at once.
fn load(args: &Args, nodes: &[Node]) -> anyhow::Result<Vec<Summary>> {
    let specs: Vec<_> = nodes
        .iter()
        .map(|n| {
            let mut spec = args
                .common
                .load(n.app.addr, "/events", args.connections, 202);
            spec.unique_ids = true;
            spec
        })
        .collect();
    let in_process = args.common.in_process;
    let handles: Vec<_> = specs
        .into_iter()
        .map(|spec| std::thread::spawn(move || spec.execute(in_process)))
        .collect();
    let mut outcomes = Vec::new();
    for handle in handles {
        let outcome = handle
            .join()
            .map_err(|_| anyhow::anyhow!("a load generator panicked"))??;
        anyhow::ensure!(
            outcome.ok > 0,
            "no request succeeded: {}",
            outcome.first_error.as_deref().unwrap_or("?")
        );
        outcomes.push(outcome);
    }
    Ok(outcomes)
}

/// Two nodes under load; node 1 dies mid-load. How long until every accepted event is
/// delivered, counted from the death.
fn recovery(args: &Args, sink_runtime: &Background) -> anyhow::Result<()> {
    let received = Arc::new(AtomicU64::new(0));
    let sink = sink_runtime.run(servers::counting_sink(received.clone()))?;
    let manifest = manifest(&format!("bench-cluster-{}", setup::unique()), &args.nats);
    let mut nodes: Vec<Node> = (0..2)
        .map(|i| start_node(i, args.common.server_threads, &manifest))
        .collect::<anyhow::Result<_>>()?;
    subscribe(&nodes, &format!("http://{}/sink", sink.addr))?;
    let victim = nodes.pop().expect("two nodes");
    let addr = victim.app.addr;
    let mut spec = args.common.load(addr, "/events", args.connections, 202);
    spec.unique_ids = true;
    let in_process = args.common.in_process;
    let survivor_spec = {
        let mut s = args
            .common
            .load(nodes[0].app.addr, "/events", args.connections, 202);
        s.unique_ids = true;
        s
    };
    let survivor = std::thread::spawn(move || survivor_spec.execute(in_process));
    let victim_load = std::thread::spawn(move || spec.execute(in_process));
    // Halfway through the measured window, node 1 dies: its runtime is dropped with its
    // deliveries in flight, its connections cut.
    std::thread::sleep(Duration::from_secs_f64(
        args.common.warmup + args.common.duration / 2.0,
    ));
    let killed = Instant::now();
    victim.runtime.shutdown_background();
    drop(victim.app);
    let accepted = survivor
        .join()
        .map_err(|_| anyhow::anyhow!("a load generator panicked"))??
        .ok_total
        + victim_load
            .join()
            .map_err(|_| anyhow::anyhow!("a load generator panicked"))?
            .map(|o| o.ok_total)
            .unwrap_or(0);
    let deadline = killed + Duration::from_secs_f64(args.drain_timeout);
    while received.load(Ordering::Relaxed) < accepted && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let delivered = received.load(Ordering::Relaxed);
    println!(
        "  recovery: 2 nodes under load, node1 stopped dead halfway: {accepted} accepted, {} \
         delivered ({} duplicates: sends the dead node made but could not ack), the last {:.1} \
         s after the death{} (what it held is redelivered after the consumers' 30 s ack wait) \
         [{}]",
        delivered.min(accepted),
        delivered.saturating_sub(accepted),
        killed.elapsed().as_secs_f64(),
        if delivered >= accepted {
            ""
        } else {
            " (timeout: NOT all delivered)"
        },
        setup::load_average(),
    );
    drop(nodes);
    drop(sink);
    Ok(())
}
