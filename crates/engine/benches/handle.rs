//! Throughput and latency of `Handler::handle` with the echo guest: a fresh instance per event
//! (instantiate + call, and every 8th event the drop of the store its instances lived in).
//!
//! `cargo bench -p spindle-engine --bench handle` prints:
//! - **one core**: events handled sequentially on a current-thread tokio runtime, as events/s
//!   of wall time and of this thread's CPU time (the latter is what a loaded machine distorts
//!   least), and the p50/p99/max latency of one `handle` call (instantiate + call + drop);
//! - **concurrent**: the same events from `SPINDLE_BENCH_TASKS` tasks (default 16) on a
//!   multi-thread runtime with one worker per available core, as events/s of wall time;
//! - **one core** again for a minimal echo (`no_std`, no imports: `tests/guests/echo-minimal`):
//!   the host's own share of the cost, and by difference what a std guest's shape costs.
//!
//! `SPINDLE_BENCH_EVENTS` (default 100 000) sets the number of measured events per figure;
//! `SPINDLE_BENCH_CONCURRENT=0` skips the concurrent figure (e.g. under a profiler);
//! `SPINDLE_BENCH_WASM=path.wasm` measures another echo component (say, one built with other
//! profile settings) instead of the test guest.
//! Under `cargo test` (no `--bench` argument) it runs a short smoke pass only.

#[path = "../tests/support/mod.rs"]
mod support;

use engine::{CollectingPublisher, Event, Handler, Publisher};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The allocator the `spindle` binary ships with, so the figures are the binary's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// CPU time this thread has spent running, from `/proc/thread-self/schedstat` (Linux);
/// `None` elsewhere.
fn thread_cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let ns = stat.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(ns))
}

fn bench_event() -> Event {
    Event::builder()
        .id("bench-1")
        .source("/bench")
        .ty("com.example.bench")
        .data_with_type(
            "application/json",
            cloudevent::Data::binary(&br#"{"order":"1234","qty":3,"note":"a small payload"}"#[..]),
        )
        .build()
        .unwrap()
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn one_core(
    label: &str,
    echo: &Handler,
    publisher: &Arc<dyn Publisher>,
    warmup: usize,
    events: usize,
) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let event = bench_event();
        for _ in 0..warmup {
            echo.handle(event.clone(), publisher.clone()).await.unwrap();
        }
        let mut latencies = Vec::with_capacity(events);
        let cpu_before = thread_cpu_time();
        let started = Instant::now();
        for _ in 0..events {
            let event = event.clone();
            let t = Instant::now();
            let out = echo.handle(event, publisher.clone()).await.unwrap();
            latencies.push(t.elapsed());
            assert_eq!(out.len(), 1);
        }
        let total = started.elapsed();
        let cpu = thread_cpu_time()
            .zip(cpu_before)
            .map(|(after, before)| after - before);
        latencies.sort();
        let pct =
            |p: f64| latencies[((latencies.len() as f64 * p) as usize).min(latencies.len() - 1)];
        let cpu = match cpu {
            Some(cpu) => format!(
                "{:.0} events/s of CPU time ({:.1} us CPU per event, {:.0}% of a core)",
                events as f64 / cpu.as_secs_f64(),
                us(cpu) / events as f64,
                100.0 * cpu.as_secs_f64() / total.as_secs_f64(),
            ),
            None => "CPU time unavailable".to_owned(),
        };
        println!(
            "{label}, fresh instance per event, 1 core, sequential: {events} events in {:.2} s = \
             {:.0} events/s; {cpu}; instantiate+call latency p50 {:.1} us, p99 {:.1} us, \
             max {:.1} us",
            total.as_secs_f64(),
            events as f64 / total.as_secs_f64(),
            us(pct(0.50)),
            us(pct(0.99)),
            us(*latencies.last().unwrap()),
        );
    });
}

fn concurrent(echo: &Handler, publisher: &Arc<dyn Publisher>, tasks: usize, events: usize) {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let per_task = events.div_ceil(tasks);
        let run = |n: usize| {
            let handles: Vec<_> = (0..tasks)
                .map(|_| {
                    let echo = echo.clone();
                    let publisher = publisher.clone();
                    tokio::spawn(async move {
                        let event = bench_event();
                        for _ in 0..n {
                            let out = echo.handle(event.clone(), publisher.clone()).await.unwrap();
                            assert_eq!(out.len(), 1);
                        }
                    })
                })
                .collect();
            async move {
                for h in handles {
                    h.await.unwrap();
                }
            }
        };
        run(per_task / 20 + 1).await;
        let started = Instant::now();
        run(per_task).await;
        let total = started.elapsed();
        let done = per_task * tasks;
        println!(
            "echo, fresh instance per event, {tasks} concurrent tasks on {workers} worker \
             threads: {done} events in {:.2} s = {:.0} events/s",
            total.as_secs_f64(),
            done as f64 / total.as_secs_f64(),
        );
    });
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let events = if full {
        env_usize("SPINDLE_BENCH_EVENTS", 100_000)
    } else {
        100
    };
    let warmup = (events / 20).max(10);
    let tasks = env_usize("SPINDLE_BENCH_TASKS", 16).max(1);

    let engine = support::engine();
    let echo = match std::env::var_os("SPINDLE_BENCH_WASM") {
        Some(path) => engine
            .load(
                "echo",
                engine::ComponentSource::Path(path.into()),
                support::relaxed(),
            )
            .expect("load SPINDLE_BENCH_WASM"),
        None => support::load(&engine, "guest_echo", support::relaxed()),
    };
    let publisher: Arc<dyn Publisher> = Arc::new(CollectingPublisher::default());

    one_core("echo", &echo, &publisher, warmup, events);
    if env_usize("SPINDLE_BENCH_CONCURRENT", 1) != 0 {
        concurrent(&echo, &publisher, tasks, events);
    }
    if std::env::var_os("SPINDLE_BENCH_WASM").is_none() {
        // The same handler in the smallest shape a component has (no std, no imports, one
        // core module): what the host costs per event whatever the guest, and by difference
        // what a std guest's shape costs.
        let minimal = support::load(&engine, "guest_echo_minimal", support::relaxed());
        one_core("minimal echo", &minimal, &publisher, warmup, events);
    }
}
