//! Cluster mode, as operators run it: a 3-node NATS cluster with JetStream on loopback
//! (Debian's nats-server, cluster routes between the three), three `spindle up` nodes of one
//! app joined to it (each through a different NATS node), an independent HTTP client sending
//! events to all of them, and `kill -9` of one Spindle node and one NATS node under load.

#[allow(dead_code)] // this file uses only some of the helpers
mod running;
#[path = "../../engine/tests/support/mod.rs"]
mod support;

use std::collections::HashSet;

use futures::StreamExt;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cloudevent::{Data, Event};
use running::{RecordingSink, Up, post, up_with_env, wait_for_dead_letters, write_manifest};

/// One nats-server of the test cluster; killed (SIGKILL) when dropped.
struct NatsNode {
    child: Child,
    port: u16,
}

impl Drop for NatsNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts `n` JetStream-enabled nats-servers routed into one cluster, each with its own
/// store under `dir`, and waits until each takes connections.
fn nats_cluster(dir: &Path, n: usize) -> Vec<NatsNode> {
    let client: Vec<u16> = (0..n).map(|_| free_port()).collect();
    let cluster: Vec<u16> = (0..n).map(|_| free_port()).collect();
    let routes: Vec<String> = cluster
        .iter()
        .map(|p| format!("nats-route://127.0.0.1:{p}"))
        .collect();
    let mut nodes = Vec::new();
    for i in 0..n {
        let store: PathBuf = dir.join(format!("js-{i}"));
        let conf = dir.join(format!("nats-{i}.conf"));
        std::fs::write(
            &conf,
            format!(
                "server_name: n{i}\nlisten: 127.0.0.1:{}\njetstream {{ store_dir: \"{}\" }}\n\
                 cluster {{ name: spindle-test\n listen: 127.0.0.1:{}\n routes: [{}] }}\n",
                client[i],
                store.display(),
                cluster[i],
                routes.join(", ")
            ),
        )
        .unwrap();
        let child = Command::new("nats-server")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nats-server (Debian's nats-server package; scripts/services.sh installs it)");
        nodes.push(NatsNode {
            child,
            port: client[i],
        });
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    for node in &nodes {
        while std::net::TcpStream::connect(("127.0.0.1", node.port)).is_err() {
            assert!(Instant::now() < deadline, "nats-server did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    nodes
}

fn event(id: &str, ty: &str) -> Event {
    Event::builder()
        .id(id)
        .source("/cluster-test")
        .ty(ty)
        .data_with_type("application/json", Data::json(&serde_json::json!({"n": 1})))
        .build()
        .unwrap()
}

/// Starts Spindle node `i` of the app in `dir` (a state directory of its own), joined to the
/// cluster its manifest names, or through NATS node `nats` when given.
fn node(dir: &Path, i: usize, nats: Option<&NatsNode>) -> Up {
    let state = format!(".spindle-{i}");
    let mut env = vec![
        ("SPINDLE_STATE_DIR".to_owned(), state),
        ("RUST_LOG".to_owned(), "warn".to_owned()),
    ];
    if let Some(nats) = nats {
        let url = format!("nats://127.0.0.1:{}", nats.port);
        env.push(("SPINDLE_CLUSTER".to_owned(), url));
    }
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    up_with_env(dir, Stdio::inherit(), &env)
}

/// Creates a subscription through `admin` as an operator would after a failure: a `503`
/// (JetStream electing a leader for a stream that lived on a dead NATS node) is tried again,
/// for up to 30 s.
async fn create_subscription_retrying(admin: &str, body: serde_json::Value) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, text) = running::post_subscription(admin, &body).await;
        if status == 201 {
            return serde_json::from_str(&text).unwrap();
        }
        assert!(
            status == 503 && Instant::now() < deadline,
            "{status} {text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// An app named `name` (and a fresh suffix) on two nodes joined to the machine's NATS
/// (127.0.0.1:4222), its triggers and components given by `rest` (manifest tables); its
/// directory goes when the first value is dropped.
fn two_node_app(name: &str, rest: &str) -> (tempfile::TempDir, Vec<Up>) {
    let dir = tempfile::tempdir().unwrap();
    let run = uuid::Uuid::new_v4().simple().to_string();
    write_manifest(
        dir.path(),
        &format!(
            r#"spindle_manifest_version = 1
[application]
name = "{name}-{run}"
[application.cluster]
nats = "nats://127.0.0.1:4222"

{rest}"#
        ),
    );
    let nodes = (0..2).map(|i| node(dir.path(), i, None)).collect();
    (dir, nodes)
}

/// [`two_node_app`] whose `/events` route only feeds subscriptions.
fn two_node_events_app(name: &str) -> (tempfile::TempDir, Vec<Up>) {
    two_node_app(name, "[[trigger.http]]\nroute = \"/events\"\n")
}

/// Creates a subscription through the first node and waits until every node shows it;
/// returns its id.
async fn subscribe_on_all(nodes: &[Up], body: serde_json::Value) -> String {
    let sub = running::create_subscription(&nodes[0].admin, body).await;
    let id = sub["id"].as_str().unwrap().to_owned();
    for (i, node) in nodes.iter().enumerate() {
        wait_until_shown(
            &node.admin,
            &id,
            Duration::from_secs(10),
            &format!("node {i}"),
        )
        .await;
    }
    id
}

/// Waits until the admin API at `admin` (of `node`, for the message) shows subscription `id`,
/// panicking after `within`; returns how long it took.
async fn wait_until_shown(admin: &str, id: &str, within: Duration, node: &str) -> Duration {
    let since = Instant::now();
    while get_status(&format!("{admin}/subscriptions/{id}")).await != 200 {
        assert!(
            since.elapsed() < within,
            "subscription {id} did not reach {node} within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    since.elapsed()
}

async fn get_status(url: &str) -> u16 {
    match reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(5))
        .send()
        .await
    {
        Ok(response) => response.status().as_u16(),
        Err(_) => 0,
    }
}

#[test]
fn three_nodes_share_subscriptions_and_work_and_lose_nothing_when_a_node_dies() {
    let dir = tempfile::tempdir().unwrap();
    let nats = nats_cluster(dir.path(), 3);
    write_manifest(
        dir.path(),
        &format!(
            r#"spindle_manifest_version = 1
[application]
name = "clustered-{}"
[application.cluster]
nats = "nats://127.0.0.1:{}"
replicas = 3

[[trigger.http]]
route = "/events"
"#,
            std::process::id(),
            nats[0].port
        ),
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let sink = RecordingSink::start().await;
        let mut nodes: Vec<Option<Up>> = (0..3)
            .map(|i| Some(node(dir.path(), i, Some(&nats[i]))))
            .collect();
        let listing = &nodes[0].as_ref().unwrap().listing;
        assert!(
            listing
                .iter()
                .any(|l| l.contains("Joined cluster nats://127.0.0.1")),
            "spindle up says which cluster it joined: {listing:?}"
        );
        let urls: Vec<String> = nodes
            .iter()
            .map(|n| n.as_ref().unwrap().http.clone())
            .collect();
        let admins: Vec<String> = nodes
            .iter()
            .map(|n| n.as_ref().unwrap().admin.clone())
            .collect();
        let url = |i: usize| urls[i].clone();
        let admin = |i: usize| admins[i].clone();

        // A subscription made through node A is live on node C.
        let sub = running::create_subscription(
            &admin(0),
            serde_json::json!({
                "protocol": "HTTP",
                "sink": sink.url,
                "types": ["com.example.clustered"],
                "delivery": { "maxInFlight": 8 }
            }),
        )
        .await;
        let id = sub["id"].as_str().unwrap().to_owned();
        let took = wait_until_shown(&admin(2), &id, Duration::from_secs(10), "node C").await;
        eprintln!("subscription live on node C after {took:?}");

        // Load spread over the three nodes; node B and NATS node 3 are killed halfway.
        let load_started = Instant::now();
        let mut accepted = HashSet::new();
        let mut refusals = 0;
        let total = 240;
        for n in 0..total {
            if n == total / 2 {
                let mut b = nodes[1].take().unwrap();
                b.child.kill().unwrap();
                let _ = b.child.wait();
                kill_9(&nats[2]);
            }
            let target = match n % 3 {
                1 if nodes[1].is_some() => 1,
                1 => 0,
                other => other,
            };
            let ev = event(&format!("e-{n}"), "com.example.clustered");
            // As a producer does: a refused event (503 while JetStream elects a new leader
            // for a stream that lived on the dead NATS node) is sent again, a bounded number
            // of times.
            for _ in 0..200 {
                let (status, body) = post(&format!("{}/events", url(target)), &ev).await;
                if (200..300).contains(&status) {
                    accepted.insert(ev.id().to_owned());
                    break;
                }
                refusals += 1;
                if refusals % 20 == 1 {
                    eprintln!("event {n} to node {target}: {status} {body}");
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        eprintln!(
            "load sent in {:?}; {refusals} refusals (503) while the cluster recovered",
            load_started.elapsed()
        );
        assert_eq!(
            accepted.len(),
            total,
            "every event is accepted once the cluster recovered"
        );
        // Everything accepted is delivered; duplicates (a dead node's unacked sends) are
        // counted, not forbidden.
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let seen: HashSet<String> = sink.header("ce-id").into_iter().collect();
            let lost: Vec<&String> = accepted.iter().filter(|id| !seen.contains(*id)).collect();
            if lost.is_empty() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{} accepted events were not delivered: {lost:?}",
                lost.len()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let deliveries = sink.len();
        eprintln!(
            "{} accepted, all delivered; {} duplicate deliveries",
            accepted.len(),
            deliveries - accepted.len().min(deliveries)
        );

        // Node C lost its NATS node: it is ready again once its client moved to another.
        let waited = Instant::now();
        while get_status(&format!("{}/readyz", admin(2))).await != 200 {
            assert!(
                waited.elapsed() < Duration::from_secs(60),
                "node C did not recover from the loss of its NATS node"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        eprintln!(
            "node C ready again {:?} after the checks began",
            waited.elapsed()
        );

        // Dead letters made on one node are listed through another, and replayed through
        // a third once their sink is back.
        let flaky = RecordingSink::start().await;
        flaky.down.store(true, std::sync::atomic::Ordering::SeqCst);
        let refused = create_subscription_retrying(
            &admin(2),
            serde_json::json!({
                "protocol": "HTTP",
                "sink": flaky.url,
                "types": ["com.example.refused"],
                "delivery": { "maxAttempts": 1 }
            }),
        )
        .await;
        let refused_id = refused["id"].as_str().unwrap().to_owned();
        // Right after a NATS node died its streams may still be electing leaders: the
        // subscription reaches node A once its watch (or its 3-second re-read) gets answers.
        let took =
            wait_until_shown(&admin(0), &refused_id, Duration::from_secs(45), "node A").await;
        eprintln!("subscription reached node A after {took:?}");
        let (status, _) = post(
            &format!("{}/events", url(0)),
            &event("dead-1", "com.example.refused"),
        )
        .await;
        assert!((200..300).contains(&status), "{status}");
        let listed = Instant::now();
        let letters = wait_for_dead_letters(&admin(0), 1).await;
        eprintln!(
            "dead letter listed through node A after {:?}",
            listed.elapsed()
        );
        assert!(
            letters.iter().any(|l| l.to_string().contains("dead-1")),
            "{letters:?}"
        );
        flaky.down.store(false, std::sync::atomic::Ordering::SeqCst);
        let replayed = reqwest::Client::new()
            .post(format!("{}/deadletters/replay", admin(2)))
            .header("content-type", "application/json")
            .body(serde_json::json!({ "subscription": refused_id }).to_string())
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let replayed: serde_json::Value = serde_json::from_str(&replayed).unwrap();
        assert_eq!(replayed["replayed"], 1, "{replayed}");
        flaky.wait_for(1).await;
        assert_eq!(flaky.header("ce-id"), ["dead-1"]);
        assert!(running::dead_letters(&admin(0)).await.is_empty());
    });
}

/// Kills a NATS node with SIGKILL, as `kill -9` would.
fn kill_9(node: &NatsNode) {
    let _ = Command::new("kill")
        .args(["-9", &node.child.id().to_string()])
        .status();
}

/// Both nodes of a cluster run the app's NATS trigger, as one queue group: each message is
/// handled by one of them, and what the handler produced reaches the output once.
#[test]
fn a_broker_trigger_on_two_nodes_handles_each_message_once() {
    let echo = support::guest("guest_echo");
    let run = uuid::Uuid::new_v4().simple().to_string();
    let (input, output) = (
        format!("spindle.cl.in.{run}"),
        format!("spindle.cl.out.{run}"),
    );
    let (_dir, nodes) = two_node_app(
        "shared",
        &format!(
            r#"[[trigger.nats]]
subject = "{input}"
component = "echo"

[component.echo]
source = "{}"
[component.echo.outputs]
out = {{ uri = "nats://127.0.0.1:4222/{output}", mode = "structured" }}
"#,
            echo.display()
        ),
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let client = async_nats::connect("127.0.0.1:4222").await.unwrap();
        let mut results = client.subscribe(output.clone()).await.unwrap();
        assert!(
            nodes
                .iter()
                .all(|n| n.listing.iter().any(|l| l.contains("Joined cluster")))
        );
        let total = 100;
        for n in 0..total {
            let ev = event(&format!("m-{n}"), "com.example.ping");
            let encoded = cloudevent::nats::encode(&ev, cloudevent::nats::Mode::Binary);
            let mut headers = async_nats::HeaderMap::new();
            for (name, value) in &encoded.headers {
                headers.append(name.as_str(), value.as_str());
            }
            client
                .publish_with_headers(input.clone(), headers, encoded.payload)
                .await
                .unwrap();
        }
        client.flush().await.unwrap();
        let mut seen = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while seen.len() < total {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "{} of {total} results arrived", seen.len());
            if let Ok(Some(message)) = tokio::time::timeout(left, results.next()).await {
                let event = cloudevent::json::decode(&message.payload).unwrap();
                seen.push(event.id().to_owned());
            }
        }
        // A little longer: a second copy of any message would arrive now.
        while let Ok(Some(message)) =
            tokio::time::timeout(Duration::from_secs(2), results.next()).await
        {
            seen.push(
                cloudevent::json::decode(&message.payload)
                    .unwrap()
                    .id()
                    .to_owned(),
            );
        }
        let distinct: HashSet<&String> = seen.iter().collect();
        assert_eq!(distinct.len(), total, "every message was handled");
        assert_eq!(seen.len(), total, "and each once: {} results", seen.len());
    });
}

/// A subscription with a dedup window: the same event sent through two nodes (a producer
/// retrying against another node) is delivered once.
#[test]
fn a_dedup_window_holds_across_nodes() {
    let (_dir, nodes) = two_node_events_app("dedup");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let sink = RecordingSink::start().await;
        subscribe_on_all(
            &nodes,
            serde_json::json!({
                "protocol": "HTTP",
                "sink": sink.url,
                "types": ["com.example.once"],
                "delivery": { "dedupWindowMs": 60000 }
            }),
        )
        .await;
        for node in &nodes {
            for copy in ["once-1", "once-1", "once-2"] {
                let (status, body) = post(
                    &format!("{}/events", node.http),
                    &event(copy, "com.example.once"),
                )
                .await;
                assert!((200..300).contains(&status), "{status} {body}");
            }
        }
        sink.wait_for(2).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let mut ids = sink.header("ce-id");
        ids.sort();
        assert_eq!(ids, ["once-1", "once-2"], "each event once");
    });
}

/// A subscription's `rateLimit` is the cluster's, not each node's: two nodes sending it
/// share it.
#[test]
fn a_rate_limit_holds_across_nodes() {
    let (_dir, nodes) = two_node_events_app("paced");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let sink = RecordingSink::start().await;
        // Both nodes have heard each other's heartbeat.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        subscribe_on_all(
            &nodes,
            serde_json::json!({
                "protocol": "HTTP",
                "sink": sink.url,
                "types": ["com.example.paced"],
                "delivery": { "rateLimit": 5.0 }
            }),
        )
        .await;
        let total = 20;
        for n in 0..total {
            let node = &nodes[n % 2];
            let (status, body) = post(
                &format!("{}/events", node.http),
                &event(&format!("p-{n}"), "com.example.paced"),
            )
            .await;
            assert!((200..300).contains(&status), "{status} {body}");
        }
        sink.wait_for(total).await;
        let times = sink.times();
        let span = *times.iter().max().unwrap() - *times.iter().min().unwrap();
        // 20 events at 5/s take about 3.8 s; two nodes each at 5/s would take about 1.9 s.
        assert!(
            span >= Duration::from_millis(3000),
            "20 deliveries at a cluster-wide 5/s spread over {span:?}"
        );
    });
}

/// A route's `dedup_window` holds across nodes: an event handled through one node is
/// answered `202` without running the handler when it is re-sent through another.
#[test]
fn a_route_dedup_window_holds_across_nodes() {
    let (_dir, nodes) = two_node_app(
        "route-dedup",
        &format!(
            r#"[[trigger.http]]
route = "/once"
component = "behaviours"
dedup_window = "10m"

[component.behaviours]
source = "{}"
key_value_stores = ["default"]
"#,
            support::guest("guest_behaviours").display()
        ),
    );
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let counter = event("e-1", "kv.counter");
        let (status, body) = post(&format!("{}/once", nodes[0].http), &counter).await;
        assert_eq!((status, body.as_str()), (200, "1"));
        let (status, body) = post(&format!("{}/once", nodes[1].http), &counter).await;
        assert_eq!(
            (status, body.as_str()),
            (202, ""),
            "the copy sent through the other node is not handled"
        );
        let (status, body) = post(
            &format!("{}/once", nodes[1].http),
            &event("e-2", "kv.counter"),
        )
        .await;
        assert_eq!(
            (status, body.as_str()),
            (200, "1"),
            "a new event is handled"
        );
    });
}

/// A webhook answering `410 Gone` disables its subscription on every node: the event is
/// dead-lettered, and the subscription each node shows says why.
#[test]
fn a_gone_sink_disables_its_subscription_across_nodes() {
    let (_dir, nodes) = two_node_events_app("gone");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        // A webhook that has gone away for good.
        let gone = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let gone_url = format!("http://{}/hook", gone.local_addr().unwrap());
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            while let Ok((mut stream, _)) = gone.accept().await {
                tokio::spawn(async move {
                    let mut request = [0u8; 8192];
                    let _ = stream.read(&mut request).await;
                    let _ = stream
                        .write_all(b"HTTP/1.1 410 Gone\r\ncontent-length: 0\r\n\r\n")
                        .await;
                });
            }
        });
        let id = subscribe_on_all(
            &nodes,
            serde_json::json!({
                "protocol": "HTTP",
                "sink": gone_url,
                "types": ["com.example.gone"]
            }),
        )
        .await;
        let (status, _) = post(
            &format!("{}/events", nodes[1].http),
            &event("gone-1", "com.example.gone"),
        )
        .await;
        assert!((200..300).contains(&status), "{status}");
        wait_for_dead_letters(&nodes[0].admin, 1).await;
        // Purged through the other node, gone for both.
        let purged = reqwest::Client::new()
            .delete(format!("{}/deadletters?subscription={id}", nodes[1].admin))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let purged: serde_json::Value = serde_json::from_str(&purged).unwrap();
        assert_eq!(purged["purged"], 1, "{purged}");
        assert!(running::dead_letters(&nodes[0].admin).await.is_empty());
        let waited = Instant::now();
        for node in &nodes {
            loop {
                let shown = reqwest::get(format!("{}/subscriptions/{id}", node.admin))
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap();
                if shown.contains("spindle.disabled") {
                    break;
                }
                assert!(
                    waited.elapsed() < Duration::from_secs(10),
                    "the subscription is not shown disabled: {shown}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    });
}

/// An ordered subscription delivers in acceptance order across nodes, also when its sink
/// fails for a while: the failing event keeps the later ones back.
#[test]
fn an_ordered_subscription_keeps_its_order_through_a_sink_outage() {
    let (_dir, nodes) = two_node_events_app("ordered");
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let sink = RecordingSink::start().await;
        sink.down.store(true, std::sync::atomic::Ordering::SeqCst);
        subscribe_on_all(
            &nodes,
            serde_json::json!({
                "protocol": "HTTP",
                "sink": sink.url,
                "types": ["com.example.ordered"],
                "delivery": { "ordered": true, "initialBackoffMs": 200 }
            }),
        )
        .await;
        let total = 6;
        for n in 0..total {
            let (status, body) = post(
                &format!("{}/events", nodes[n % 2].http),
                &event(&format!("o-{n}"), "com.example.ordered"),
            )
            .await;
            assert!((200..300).contains(&status), "{status} {body}");
        }
        // The sink refuses for a while (each refusal a retry), then comes back.
        tokio::time::sleep(Duration::from_millis(1500)).await;
        sink.down.store(false, std::sync::atomic::Ordering::SeqCst);
        sink.wait_for(total).await;
        let mut order: Vec<String> = Vec::new();
        for id in sink.header("ce-id") {
            if !order.contains(&id) {
                order.push(id);
            }
        }
        let expected: Vec<String> = (0..total).map(|n| format!("o-{n}")).collect();
        assert_eq!(order, expected, "delivered in acceptance order");
    });
}
