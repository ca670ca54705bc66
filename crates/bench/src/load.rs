//! The HTTP load generator: keep-alive HTTP/1.1 connections (hyper's client connection, one
//! request in flight per connection), either as fast as the server answers (closed loop: the
//! peak rate) or at a fixed rate (open loop: latency at a given load).
//!
//! It runs on one current-thread runtime, so it uses at most one core (plus a pacer thread that
//! mostly sleeps, in open loop). By default the subcommands run it in a child process (this
//! binary's hidden `load` subcommand), as a real client would be: a generator inside the
//! server's process would share its address space, so every TLB shootdown the server causes
//! (the Wasm engine's memory resets) would also interrupt the generator's core.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};

/// How early the pacer may release a request rather than sleep again.
const PACER_SLACK: Duration = Duration::from_micros(20);

/// One load run, as the subcommands ask for it and as the hidden `load` subcommand takes it.
#[derive(clap::Args, Debug, Clone)]
pub struct Spec {
    /// Where the server listens.
    #[arg(long)]
    pub addr: SocketAddr,
    /// The request path.
    #[arg(long)]
    pub path: String,
    /// Keep-alive connections.
    #[arg(long)]
    pub connections: usize,
    /// Seconds of load before the measured window.
    #[arg(long)]
    pub warmup: f64,
    /// Seconds of the measured window.
    #[arg(long)]
    pub duration: f64,
    /// Requests per second (open loop); as fast as answered (closed loop) when absent.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Size in bytes of the event's JSON data.
    #[arg(long)]
    pub body_size: usize,
    /// The status a successful request gets.
    #[arg(long)]
    pub expect: u16,
    /// Gives every request a fresh `ce-id`.
    #[arg(long)]
    pub unique_ids: bool,
    /// Connects over TLS (HTTP/1.1), trusting the CA certificate in this PEM file; the server
    /// must present a certificate for `localhost`.
    #[arg(long)]
    pub tls_ca: Option<std::path::PathBuf>,
    /// The event's `ce-type` instead of the order event's.
    #[arg(long)]
    pub ce_type: Option<String>,
    /// The event's `ce-subject` instead of the order event's.
    #[arg(long)]
    pub ce_subject: Option<String>,
}

impl Spec {
    fn target(&self) -> anyhow::Result<(Target, Run)> {
        let (mut headers, body) = binary_event(self.addr, self.body_size);
        for (name, value) in [("ce-type", &self.ce_type), ("ce-subject", &self.ce_subject)] {
            if let Some(value) = value {
                headers.insert(HeaderName::from_static(name), HeaderValue::try_from(value)?);
            }
        }
        let tls = match &self.tls_ca {
            Some(path) => Some(Arc::new(tls_client(&std::fs::read(path)?)?)),
            None => None,
        };
        let target = Target {
            tls,
            addr: self.addr,
            path: self.path.parse()?,
            headers,
            body,
            expect: StatusCode::from_u16(self.expect)?,
            unique_ids: self.unique_ids,
        };
        let run = Run {
            connections: self.connections.max(1),
            warmup: Duration::from_secs_f64(self.warmup.max(0.0)),
            duration: Duration::from_secs_f64(self.duration.max(0.1)),
            pace: self.rate.map_or(Pace::Closed, Pace::Rate),
        };
        Ok((target, run))
    }

    fn to_args(&self) -> Vec<String> {
        let mut args = vec![
            "--addr".into(),
            self.addr.to_string(),
            "--path".into(),
            self.path.clone(),
            "--connections".into(),
            self.connections.to_string(),
            "--warmup".into(),
            self.warmup.to_string(),
            "--duration".into(),
            self.duration.to_string(),
            "--body-size".into(),
            self.body_size.to_string(),
            "--expect".into(),
            self.expect.to_string(),
        ];
        if let Some(rate) = self.rate {
            args.extend(["--rate".into(), rate.to_string()]);
        }
        if self.unique_ids {
            args.push("--unique-ids".into());
        }
        if let Some(ca) = &self.tls_ca {
            args.extend(["--tls-ca".into(), ca.display().to_string()]);
        }
        for (flag, value) in [
            ("--ce-type", &self.ce_type),
            ("--ce-subject", &self.ce_subject),
        ] {
            if let Some(value) = value {
                args.extend([flag.into(), value.clone()]);
            }
        }
        args
    }

    /// Runs the load: in a child process of this binary, or on a thread of this process when
    /// `in_process`.
    pub fn execute(&self, in_process: bool) -> anyhow::Result<Summary> {
        if in_process {
            let (target, run) = self.target()?;
            return crate::setup::on_thread("load", move || async move {
                self::run(&target, run).await.map(|o| o.summary())
            });
        }
        crate::setup::run_child("load", &self.to_args(), "the load generator")
    }

    /// The hidden `load` subcommand: runs the load here and prints its summary as one line of
    /// JSON.
    pub fn main(&self) -> anyhow::Result<()> {
        let (target, run) = self.target()?;
        let outcome = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(self::run(&target, run))?;
        crate::setup::report_to_parent(&outcome.summary())
    }
}

/// What a run measured, in figures (what the child process reports to the parent).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Summary {
    /// When the first request was sent (the start of the warm-up).
    pub started: SystemTime,
    /// Successful requests in the measured window.
    pub ok: u64,
    /// Successful requests over the whole run, warm-up included.
    pub ok_total: u64,
    /// Failed requests.
    pub errors: u64,
    /// The first failure.
    pub first_error: Option<String>,
    /// The measured window.
    pub window: Duration,
    /// Latency from send: median and 99th percentile.
    pub p50: Duration,
    /// See `p50`.
    pub p99: Duration,
    /// Open loop: latency from the scheduled send, median and 99th percentile.
    pub scheduled: Option<(Duration, Duration)>,
}

impl Summary {
    /// Successful requests per second in the measured window.
    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.window.as_secs_f64()
    }
}

/// What every request is: the same method, path, headers and body.
#[derive(Clone)]
pub struct Target {
    /// TLS settings when the server speaks HTTPS.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// Where the server listens.
    pub addr: SocketAddr,
    /// The request path.
    pub path: Uri,
    /// Request headers (`Host` and the `ce-` attributes); hyper adds `Content-Length`.
    pub headers: HeaderMap,
    /// The request body.
    pub body: Bytes,
    /// The status a successful request gets.
    pub expect: StatusCode,
    /// Whether each request carries a fresh `ce-id` (`<connection>-<n>`) instead of the
    /// template's.
    pub unique_ids: bool,
}

/// How requests are paced.
#[derive(Debug, Clone, Copy)]
pub enum Pace {
    /// Each connection sends its next request as soon as the previous one is answered.
    Closed,
    /// Requests are scheduled at this many per second, spread over the connections.
    Rate(f64),
}

/// One run of the generator.
#[derive(Debug, Clone, Copy)]
pub struct Run {
    /// Keep-alive connections.
    pub connections: usize,
    /// Load before the measured window (not counted in the figures).
    pub warmup: Duration,
    /// The measured window.
    pub duration: Duration,
    /// Closed or open loop.
    pub pace: Pace,
}

/// What a run measured.
#[derive(Debug)]
pub struct Outcome {
    /// When the first request was sent (the start of the warm-up).
    pub started: SystemTime,
    /// Successful requests scheduled or started in the measured window.
    pub ok: u64,
    /// Successful requests over the whole run, warm-up included.
    pub ok_total: u64,
    /// Requests that failed: wrong status, connection error.
    pub errors: u64,
    /// The first failure, for the summary.
    pub first_error: Option<String>,
    /// The measured window.
    pub window: Duration,
    /// Latency of each measured request from the moment it was sent, sorted.
    pub latencies: Vec<Duration>,
    /// Open loop only: latency from the moment each measured request was due (so a server
    /// that falls behind shows it, instead of silently slowing the generator down), sorted.
    /// It includes the pacer's slack (a thread sleep: typically under 0.1 ms).
    pub scheduled: Vec<Duration>,
}

impl Outcome {
    /// The figures.
    pub fn summary(&self) -> Summary {
        Summary {
            started: self.started,
            ok: self.ok,
            ok_total: self.ok_total,
            errors: self.errors,
            first_error: self.first_error.clone(),
            window: self.window,
            p50: quantile(&self.latencies, 0.50),
            p99: quantile(&self.latencies, 0.99),
            scheduled: (!self.scheduled.is_empty()).then(|| {
                (
                    quantile(&self.scheduled, 0.50),
                    quantile(&self.scheduled, 0.99),
                )
            }),
        }
    }
}

/// The `p`-quantile of sorted durations (zero when there are none).
pub fn quantile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let index = ((sorted.len() as f64 * p) as usize).min(sorted.len() - 1);
    sorted[index]
}

/// Shared between the connection tasks of one run.
struct Shared {
    target: Target,
    run: Run,
    measure_from: Instant,
    end: Instant,
    /// Open loop: when each request is due, released by the pacer thread as the time comes.
    due: Option<tokio::sync::Mutex<UnboundedReceiver<Instant>>>,
    ok_total: AtomicU64,
}

#[derive(Default)]
struct TaskOutcome {
    latencies: Vec<Duration>,
    scheduled: Vec<Duration>,
    errors: u64,
    first_error: Option<String>,
}

/// Runs the generator against `target` and returns what it measured. Fails only if no
/// connection can be opened at all.
pub async fn run(target: &Target, run: Run) -> anyhow::Result<Outcome> {
    // Connect everything first, so connection set-up is not part of the figures.
    let mut senders = Vec::with_capacity(run.connections);
    for _ in 0..run.connections {
        senders.push(connect(target.addr, target.tls.clone()).await?);
    }
    let start = Instant::now();
    let started = SystemTime::now();
    let end = start + run.warmup + run.duration;
    let (pacer, due) = match run.pace {
        Pace::Closed => (None, None),
        Pace::Rate(rate) => {
            let (tx, rx) = mpsc::unbounded_channel();
            let pacer = std::thread::Builder::new()
                .name("pacer".into())
                .spawn(move || pace(rate, start, end, &tx))?;
            (Some(pacer), Some(tokio::sync::Mutex::new(rx)))
        }
    };
    let shared = Arc::new(Shared {
        target: target.clone(),
        run,
        measure_from: start + run.warmup,
        end,
        due,
        ok_total: AtomicU64::new(0),
    });
    let tasks: Vec<_> = senders
        .into_iter()
        .enumerate()
        .map(|(index, sender)| tokio::spawn(connection(shared.clone(), index, sender)))
        .collect();
    let mut outcome = Outcome {
        started,
        ok: 0,
        ok_total: 0,
        errors: 0,
        first_error: None,
        window: run.duration,
        latencies: Vec::new(),
        scheduled: Vec::new(),
    };
    for task in tasks {
        let task = task.await?;
        outcome.latencies.extend(task.latencies);
        outcome.scheduled.extend(task.scheduled);
        outcome.errors += task.errors;
        if outcome.first_error.is_none() {
            outcome.first_error = task.first_error;
        }
    }
    if let Some(pacer) = pacer {
        let _ = pacer.join();
    }
    outcome.ok = outcome.latencies.len() as u64;
    outcome.ok_total = shared.ok_total.load(Ordering::Relaxed);
    outcome.latencies.sort_unstable();
    outcome.scheduled.sort_unstable();
    Ok(outcome)
}

/// Releases the requests of an open-loop run at `rate` per second from `start` until `end`:
/// each one as it falls due, to whichever connection is free. A thread of its own with
/// `std::thread::sleep`, because tokio's timer only has millisecond resolution, which would
/// add up to a millisecond of slack to every latency measured from the schedule.
fn pace(rate: f64, start: Instant, end: Instant, due: &UnboundedSender<Instant>) {
    let mut slot = 0u64;
    loop {
        let next = start + Duration::from_secs_f64(slot as f64 / rate);
        if next >= end {
            return;
        }
        let now = Instant::now();
        if next > now + PACER_SLACK {
            std::thread::sleep(next - now);
            continue;
        }
        if due.send(next).is_err() {
            return;
        }
        slot += 1;
    }
}

async fn connect(
    addr: SocketAddr,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> anyhow::Result<SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let Some(tls) = tls else {
        let (sender, connection) =
            hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        return Ok(sender);
    };
    let name = rustls::pki_types::ServerName::try_from("localhost")?;
    let stream = tokio_rustls::TlsConnector::from(tls)
        .connect(name, stream)
        .await?;
    let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    Ok(sender)
}

/// A TLS client trusting only `ca_pem`, offering HTTP/1.1.
fn tls_client(ca_pem: &[u8]) -> anyhow::Result<rustls::ClientConfig> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(ca_pem) {
        roots.add(cert?)?;
    }
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// One connection's loop: claims requests (closed loop: the next one at once; open loop: the
/// next free slot of the schedule), sends them and records their latency.
async fn connection(
    shared: Arc<Shared>,
    index: usize,
    mut sender: SendRequest<Full<Bytes>>,
) -> TaskOutcome {
    let ce_id = HeaderName::from_static("ce-id");
    let mut out = TaskOutcome::default();
    let mut n = 0u64;
    loop {
        let due = match shared.run.pace {
            Pace::Closed => {
                let now = Instant::now();
                if now >= shared.end {
                    break;
                }
                now
            }
            Pace::Rate(_) => {
                let Some(due) = &shared.due else { break };
                let Some(due) = due.lock().await.recv().await else {
                    break;
                };
                due
            }
        };
        let mut request = Request::new(Full::new(shared.target.body.clone()));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = shared.target.path.clone();
        *request.headers_mut() = shared.target.headers.clone();
        if shared.target.unique_ids {
            let id = HeaderValue::try_from(format!("{index}-{n}")).expect("an ASCII id");
            request.headers_mut().insert(ce_id.clone(), id);
        }
        n += 1;
        let sent = Instant::now();
        match send(&mut sender, request, shared.target.expect).await {
            Ok(()) => {
                let done = Instant::now();
                shared.ok_total.fetch_add(1, Ordering::Relaxed);
                if due >= shared.measure_from {
                    out.latencies.push(done - sent);
                    if matches!(shared.run.pace, Pace::Rate(_)) {
                        out.scheduled.push(done - due);
                    }
                }
            }
            Err(error) => {
                out.errors += 1;
                if out.first_error.is_none() {
                    out.first_error = Some(error.to_string());
                }
                if sender.is_closed() {
                    // The server closed the connection (or it broke): open another one, after
                    // a pause so a server that is down does not make this spin.
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    match connect(shared.target.addr, shared.target.tls.clone()).await {
                        Ok(fresh) => sender = fresh,
                        Err(_) if Instant::now() < shared.end => continue,
                        Err(_) => break,
                    }
                }
            }
        }
    }
    out
}

async fn send(
    sender: &mut SendRequest<Full<Bytes>>,
    request: Request<Full<Bytes>>,
    expect: StatusCode,
) -> anyhow::Result<()> {
    sender.ready().await?;
    let response = sender.send_request(request).await?;
    let status = response.status();
    let content_type = response.headers().get(CONTENT_TYPE).cloned();
    let body = response.into_body().collect().await?.to_bytes();
    if status != expect {
        anyhow::bail!(
            "status {status} (expected {expect}), content-type {content_type:?}: {}",
            String::from_utf8_lossy(&body[..body.len().min(300)])
        );
    }
    Ok(())
}

/// The benchmark event in binary mode: the `ce-` attributes of an order event (with a
/// `traceparent` extension) and a JSON body of exactly `body_size` bytes (the same request the
/// codec's own benchmark decodes).
pub fn binary_event(addr: SocketAddr, body_size: usize) -> (HeaderMap, Bytes) {
    let mut headers = HeaderMap::new();
    for (name, value) in [
        ("ce-specversion", "1.0"),
        ("ce-id", "6a1c2f9e-1b7e-4f7d-9b0a-3f1c2d4e5f60"),
        ("ce-source", "/shop/orders"),
        ("ce-type", "com.example.order.created"),
        ("ce-subject", "order-1234"),
        ("ce-time", "2026-11-27T20:42:15.123Z"),
        (
            "ce-traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        ),
        ("content-type", "application/json"),
    ] {
        headers.insert(
            HeaderName::from_static(name),
            HeaderValue::from_static(value),
        );
    }
    headers.insert(
        HOST,
        HeaderValue::try_from(addr.to_string()).expect("an address is a valid Host"),
    );
    (headers, json_body(body_size))
}

/// A JSON object of exactly `size` bytes (at least 32): a list of order items and a padding
/// string.
pub fn json_body(size: usize) -> Bytes {
    let size = size.max(32);
    let mut body = String::from("{\"items\":[");
    while body.len() + 24 < size.saturating_sub(16) {
        body.push_str("{\"sku\":\"A-1\",\"qty\":2},");
    }
    if body.ends_with(',') {
        body.pop();
    }
    body.push_str("],\"pad\":\"");
    while body.len() + 2 < size {
        body.push('x');
    }
    body.push_str("\"}");
    debug_assert_eq!(body.len(), size);
    Bytes::from(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_bodies_have_the_asked_size_and_parse() {
        for size in [32, 100, 1024, 4096] {
            let body = json_body(size);
            assert_eq!(body.len(), size);
            serde_json::from_slice::<serde_json::Value>(&body).unwrap();
        }
    }

    #[test]
    fn quantiles_of_sorted_durations() {
        let d: Vec<Duration> = (1..=100).map(Duration::from_millis).collect();
        assert_eq!(quantile(&d, 0.5), Duration::from_millis(51));
        assert_eq!(quantile(&d, 0.99), Duration::from_millis(100));
        assert_eq!(quantile(&[], 0.5), Duration::ZERO);
    }
}
