//! `spindle-bench`: whole-app benchmarks that print figures.
//!
//! - `http-echo`: binary-mode POST → echo component (a fresh instance per event) → `200` with
//!   the reply event, next to a native hyper server doing the same CloudEvents decode and
//!   encode without Wasm, in the same run: peak events/s of both, the ratio, and p50/p99
//!   latency at half of each one's peak.
//! - `accept`: events/s answered `202` (delivered directly, or stored with group commit) by
//!   a route that only feeds subscriptions, and delivered events/s end to end to a local HTTP
//!   sink; then the same with the sink down (pure durable acceptance).
//! - `nats-echo`: NATS → echo component → NATS output (sent directly while the sink keeps
//!   up, else queued durably), events/s end to end.
//! - `outbound`: p50/p99 of events whose handler makes one outbound HTTP call to a loopback
//!   server, next to the same handler answering without a call, at the same fixed rate.
//! - `cluster`: one app on 1, 2 and 3 nodes sharing NATS JetStream: accepted-and-delivered
//!   events/s, CPU per event per node, and the recovery after a node dies.
//! - `faults`: a fault campaign against the real `spindle up` (see [`faults`]).
//!
//! Build with `--release`: `cargo run --release -p spindle-bench -- http-echo`.

mod accept;
mod cluster;
mod engine_alone;
mod faults;
mod http_echo;
mod load;
mod nats_echo;
mod outbound;
mod servers;
mod setup;

use std::time::Duration;

use clap::{Parser, Subcommand};

/// mimalloc instead of the system allocator: a handler's event is allocated and freed
/// across tasks and threads many times over (codec, instance, delivery), and glibc's malloc
/// was a quarter of the server's CPU per event in profiles of the NATS path.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "spindle-bench",
    about = "Throughput and latency of a whole Spindle app"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// HTTP binary mode → echo component → 200 with the reply, next to a native server.
    HttpEcho(http_echo::Args),
    /// HTTP → 202 once stored for a subscription, and delivery to a local HTTP sink.
    Accept(accept::Args),
    /// NATS → echo component → NATS output, end to end.
    NatsEcho(nats_echo::Args),
    /// The latency a guest's outbound HTTP call to a loopback server adds to an event.
    Outbound(outbound::Args),
    /// One app on 1..=3 nodes joined to NATS JetStream: accepted and delivered events/s, CPU
    /// per event per node, and the recovery when a node dies under load.
    Cluster(cluster::Args),
    /// A fault campaign against the real `spindle up` under load: kill -9, broker restarts,
    /// a sink outage, a full disk, poison messages; prints accepted, delivered,
    /// dead-lettered, duplicates and lost (must be 0).
    Faults(faults::Args),
    /// The HTTP load generator alone (what the other subcommands run in a child process).
    #[command(hide = true)]
    Load(load::Spec),
    /// The NATS producer and consumer of `nats-echo` alone.
    #[command(hide = true)]
    NatsLoad(nats_echo::Spec),
}

/// Settings every subcommand has.
#[derive(clap::Args, Debug, Clone)]
pub struct Common {
    /// Seconds of measured load in each phase.
    #[arg(long, default_value_t = 5.0)]
    pub duration: f64,
    /// Seconds of load before each measured phase, not counted.
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
    /// Worker threads of the server's tokio runtime (the app, or the native server). The load
    /// generator runs on one thread of its own; nothing is pinned to a core.
    #[arg(long, default_value_t = 1)]
    pub server_threads: usize,
    /// Size in bytes of the event's JSON data.
    #[arg(long, default_value_t = 1024)]
    pub body_size: usize,
    /// Runs the load generator on a thread of this process instead of in a child process.
    #[arg(long)]
    pub in_process: bool,
}

impl Common {
    /// A closed-loop load run against `addr` with these settings.
    fn load(
        &self,
        addr: std::net::SocketAddr,
        path: &str,
        connections: usize,
        expect: u16,
    ) -> load::Spec {
        load::Spec {
            addr,
            path: path.to_owned(),
            connections,
            warmup: self.warmup,
            duration: self.duration,
            rate: None,
            body_size: self.body_size,
            expect,
            unique_ids: false,
            tls_ca: None,
            ce_type: None,
            ce_subject: None,
        }
    }

    /// Where the load generator runs, for the summaries.
    fn generator(&self) -> &'static str {
        if self.in_process {
            "this process"
        } else {
            "a child process"
        }
    }
}

fn main() -> anyhow::Result<()> {
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    match Cli::parse().command {
        Command::HttpEcho(args) => http_echo::run(&args),
        Command::Accept(args) => accept::run(&args),
        Command::NatsEcho(args) => nats_echo::run(&args),
        Command::Outbound(args) => outbound::run(&args),
        Command::Cluster(args) => cluster::run(&args),
        Command::Faults(args) => faults::run(&args),
        Command::Load(spec) => spec.main(),
        Command::NatsLoad(spec) => spec.main(),
    }
}

/// Microseconds, for the summaries.
fn us(d: Duration) -> String {
    format!("{:.0} us", d.as_secs_f64() * 1e6)
}
