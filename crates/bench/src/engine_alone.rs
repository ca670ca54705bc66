//! The echo component's own cost, without any I/O around it: the floor under `http-echo`'s
//! app figure.
//!
//! A fresh instance per event costs the same CPU however the event arrived (instantiate, lower
//! the event, call, lift the reply, reset the memory slot). Measured on one thread in a tight
//! loop — the most favourable case, every cache warm — it bounds what any host could reach:
//! a server that spends `n` µs on HTTP and the codec, plus this, cannot exceed
//! `n / (n + floor)` of the native server's rate on the same core.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use engine::{
    CollectingPublisher, ComponentConfig, ComponentSource, Engine, EngineConfig, Event, Publisher,
};

use crate::load;

/// How many events the floor is measured over (after as many again to warm up).
const EVENTS: u32 = 20_000;

/// CPU microseconds one `Handler::handle` of the benchmark event costs on this thread.
pub fn floor_us(wasm: &Path, body_size: usize) -> anyhow::Result<f64> {
    let engine = Engine::new(EngineConfig::default())?;
    let echo = engine.load(
        "echo",
        ComponentSource::Path(wasm.to_owned()),
        ComponentConfig::default(),
    )?;
    let publisher: Arc<dyn Publisher> = Arc::new(CollectingPublisher::default());
    let event = bench_event(body_size)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let once = async || -> anyhow::Result<()> {
            let out = echo.handle(event.clone(), publisher.clone()).await?;
            anyhow::ensure!(out.len() == 1, "echo returned {} events", out.len());
            Ok(())
        };
        for _ in 0..EVENTS {
            once().await?;
        }
        let before = thread_cpu()?;
        for _ in 0..EVENTS {
            once().await?;
        }
        Ok((thread_cpu()? - before).as_secs_f64() * 1e6 / f64::from(EVENTS))
    })
}

/// The event `http-echo` POSTs, decoded from the very request the load generator sends and
/// converted as the app converts it.
fn bench_event(body_size: usize) -> anyhow::Result<Event> {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let (headers, body) = load::binary_event(addr, body_size);
    match cloudevent::http::decode(&headers, body)? {
        cloudevent::http::Message::Event(event, _) => Ok(event),
        cloudevent::http::Message::Batch(_) => anyhow::bail!("the benchmark request is a batch"),
    }
}

/// CPU time this thread has run, from `/proc/thread-self/schedstat` (nanoseconds).
fn thread_cpu() -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat")?;
    let ns = stat
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("unexpected /proc/thread-self/schedstat: {stat:?}"))?;
    Ok(Duration::from_nanos(ns))
}
