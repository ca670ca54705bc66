//! `spindle-bench outbound`: what one outbound HTTP call costs a handler. The behaviours guest
//! answers events of type `config` at once and, for `http.get`, first GETs the URL in the
//! event's subject (through `wasi:http`, granted by `allowed_outbound_hosts`) from a loopback
//! server; both are driven at the same fixed rate, and the difference of their latencies is
//! the call's cost (connect, request, response, and the host's policy checks).

use crate::setup::{self, RunningApp};
use crate::{Common, servers, us};

#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(flatten)]
    common: Common,
    /// Keep-alive connections of the load generator.
    #[arg(long, default_value_t = 8)]
    connections: usize,
    /// Events per second of both phases (open loop).
    #[arg(long, default_value_t = 500.0)]
    rate: f64,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    eprintln!("building the behaviours guest (tests/guests/behaviours) if needed...");
    let wasm = setup::guest("guest_behaviours");
    let server = setup::server_runtime(args.common.server_threads);
    let upstream = server.block_on(servers::ok_server())?;
    let manifest = format!(
        "spindle_manifest_version = 1\n[application]\nname = \"bench-outbound\"\n\
         [[trigger.http]]\nroute = \"/call\"\ncomponent = \"behaviours\"\n\
         [component.behaviours]\nsource = {:?}\n\
         allowed_outbound_hosts = [\"http://127.0.0.1:{}\"]\n",
        wasm.display().to_string(),
        upstream.addr.port()
    );
    let app = server.block_on(RunningApp::start(&manifest))?;
    println!(
        "outbound: POST /call at {:.0} events/s over {} connections, server runtime {} worker \
         thread(s), {} CPUs shared; {:.1} s per phase after {:.1} s warm-up",
        args.rate,
        args.connections,
        args.common.server_threads,
        setup::cpus(),
        args.common.duration,
        args.common.warmup,
    );
    let url = format!("http://127.0.0.1:{}/rates", upstream.addr.port());
    let mut results = Vec::new();
    for (name, ty, subject) in [
        ("no call", "config", None),
        ("one outbound GET", "http.get", Some(url.clone())),
    ] {
        let mut spec = args.common.load(app.addr, "/call", args.connections, 200);
        spec.rate = Some(args.rate);
        spec.ce_type = Some(ty.to_owned());
        spec.ce_subject = subject;
        let summary = spec.execute(args.common.in_process)?;
        anyhow::ensure!(
            summary.ok > 0,
            "{name}: no request succeeded: {}",
            summary.first_error.as_deref().unwrap_or("?")
        );
        println!(
            "  {name:<18} p50 {}, p99 {} ({} ok, {} failed) [{}]",
            us(summary.p50),
            us(summary.p99),
            summary.ok,
            summary.errors,
            setup::load_average()
        );
        results.push(summary);
    }
    println!(
        "  the call adds p50 {}, p99 {}",
        us(results[1].p50.saturating_sub(results[0].p50)),
        us(results[1].p99.saturating_sub(results[0].p99)),
    );
    server.block_on(app.stop())?;
    Ok(())
}
