//! NATS against the real server on 127.0.0.1:4222 (and, for the restart test, a private
//! nats-server this test starts and stops itself).

mod common;

use std::collections::BTreeSet;
use std::process::{Child, Command};
use std::time::Duration;

use async_nats::jetstream;
use common::*;
use transports::nats::{self, JetStreamConfig, NatsReceiverConfig, NatsSender};
use transports::{Mode, Receiver};

const PORT: u16 = 4222;

async fn core_receiver(subject: &str, group: Option<&str>) -> Receiver {
    nats::receive(NatsReceiverConfig {
        server: endpoint(PORT),
        subject: subject.to_owned(),
        queue_group: group.map(str::to_owned),
        jetstream: None,
    })
    .await
    .unwrap()
}

/// Creates a stream over `<prefix>.>` on the given server.
async fn stream(port: u16, name: &str, prefix: &str) {
    let client = async_nats::connect(format!("127.0.0.1:{port}"))
        .await
        .unwrap();
    jetstream::new(client)
        .create_stream(jetstream::stream::Config {
            name: name.to_owned(),
            subjects: vec![format!("{prefix}.>")],
            ..Default::default()
        })
        .await
        .unwrap();
}

fn js_config(port: u16, stream: &str, subject: &str, durable: &str) -> NatsReceiverConfig {
    NatsReceiverConfig {
        server: endpoint(port),
        subject: subject.to_owned(),
        queue_group: None,
        jetstream: Some(JetStreamConfig {
            stream: stream.to_owned(),
            durable: Some(durable.to_owned()),
            ack_wait: Duration::from_secs(2),
            max_ack_pending: transports::nats::DEFAULT_MAX_ACK_PENDING,
        }),
    }
}

#[tokio::test]
async fn core_round_trip_in_both_modes_keeps_the_whole_event() {
    require(PORT, "nats-server");
    init_logs();
    let subject = unique("t.core.");
    let mut rx = core_receiver(&subject, None).await;
    for (mode, expected) in [
        (Mode::Binary, stringly(sample("b1"))),
        (Mode::Structured, sample("s1")),
    ] {
        let tx = NatsSender::connect(&endpoint(PORT), &subject, mode)
            .await
            .unwrap();
        let event = sample(expected.id());
        tx.send(&event).await.unwrap();
        let d = next(&mut rx).await;
        assert_eq!(d.event, expected, "{mode} mode");
        d.ack.ack().await.unwrap();
    }
}

/// Many concurrent `send` + `flush` pairs on one sender (the delivery engine's pattern):
/// every flush confirms, and every message arrives exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_flushes_are_grouped_and_each_covers_its_send() {
    require(PORT, "nats-server");
    init_logs();
    let subject = unique("t.flush.");
    let mut rx = core_receiver(&subject, None).await;
    let tx = NatsSender::connect(&endpoint(PORT), &subject, Mode::Binary)
        .await
        .unwrap();
    let sends: Vec<_> = (0..300)
        .map(|i| {
            let tx = tx.clone();
            tokio::spawn(async move {
                tx.send(&sample(&format!("f{i}"))).await?;
                tx.flush().await
            })
        })
        .collect();
    for send in sends {
        send.await.unwrap().unwrap();
    }
    let mut ids = BTreeSet::new();
    for _ in 0..300 {
        let d = next(&mut rx).await;
        assert!(
            ids.insert(d.event.id().to_owned()),
            "duplicate {}",
            d.event.id()
        );
        d.ack.ack().await.unwrap();
    }
    nothing_for(&mut rx, Duration::from_millis(200)).await;
    assert_eq!(ids.len(), 300);
}

/// A `?jetstream=true` sink counts a send as done only once a stream stored it: with no
/// stream for the subject the send is deferred (delivery retries it), and once a
/// stream exists every sent event is in it, whole, and a resent event (same source and id)
/// is stored once.
#[tokio::test]
async fn jetstream_sink_sends_are_acknowledged_by_a_stream() {
    require(PORT, "nats-server");
    init_logs();
    let prefix = unique("jssink");
    let subject = format!("{prefix}.out");
    let sink: transports::Sink = format!("nats://127.0.0.1:{PORT}/{subject}?jetstream=true")
        .parse()
        .unwrap();
    let tx = transports::Sender::connect(&sink, transports::SendOptions::default())
        .await
        .unwrap();

    let error = tx.send(&sample("before-the-stream")).await.unwrap_err();
    assert!(
        matches!(&error, transports::SendError::Deferred { reason, .. }
            if reason.contains("no JetStream stream stores subject")),
        "{error:?}"
    );

    let name = unique("SINK");
    stream(PORT, &name, &prefix).await;
    for id in ["js1", "js2", "js1"] {
        tx.send(&sample(id)).await.unwrap();
    }
    let mut rx = nats::receive(js_config(PORT, &name, &subject, "check"))
        .await
        .unwrap();
    for id in ["js1", "js2"] {
        let d = next(&mut rx).await;
        assert_eq!(d.event, stringly(sample(id)));
        d.ack.ack().await.unwrap();
    }
    nothing_for(&mut rx, Duration::from_millis(200)).await;
}

#[tokio::test]
async fn core_queue_group_shares_the_work_and_nak_redelivers_locally() {
    require(PORT, "nats-server");
    let subject = unique("t.group.");
    let mut a = core_receiver(&subject, Some("workers")).await;
    let mut b = core_receiver(&subject, Some("workers")).await;
    let tx = NatsSender::connect(&endpoint(PORT), &subject, Mode::Binary)
        .await
        .unwrap();
    for i in 0..20 {
        tx.send(&sample(&format!("e{i}"))).await.unwrap();
    }
    let mut seen = BTreeSet::new();
    let deadline = tokio::time::Instant::now() + WAIT;
    while seen.len() < 20 && tokio::time::Instant::now() < deadline {
        let d = tokio::select! {
            Some(d) = a.recv() => d,
            Some(d) = b.recv() => d,
            _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
        };
        assert!(
            seen.insert(d.event.id().to_owned()),
            "{} twice",
            d.event.id()
        );
        d.ack.ack().await.unwrap();
    }
    assert_eq!(seen.len(), 20);
    nothing_for(&mut a, Duration::from_millis(300)).await;
    nothing_for(&mut b, Duration::from_millis(300)).await;

    // Core NATS has no redelivery: a nak redelivers from this process.
    tx.send(&sample("again")).await.unwrap();
    let (d, from_a) =
        tokio::select! { d = next(&mut a) => (d, true), d = next(&mut b) => (d, false) };
    let mut rx = if from_a { a } else { b };
    assert_eq!(d.event.id(), "again");
    d.ack.nak(Some(Duration::from_millis(100))).await.unwrap();
    let again = next(&mut rx).await;
    assert_eq!(again.event.id(), "again");
    again.ack.ack().await.unwrap();
}

#[tokio::test]
async fn core_hands_over_messages_that_are_not_cloudevents_whole() {
    require(PORT, "nats-server");
    let subject = unique("t.bad.");
    let mut rx = core_receiver(&subject, None).await;
    let client = async_nats::connect("127.0.0.1:4222").await.unwrap();
    client
        .publish(subject.clone(), "not json".into())
        .await
        .unwrap();
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("ce-id", "no-specversion");
    client
        .publish_with_headers(subject.clone(), headers, "x".into())
        .await
        .unwrap();
    client.flush().await.unwrap();
    let tx = NatsSender::connect(&endpoint(PORT), &subject, Mode::Binary)
        .await
        .unwrap();
    tx.send(&sample("good")).await.unwrap();
    next_undecodable(&mut rx, b"not json").await;
    next_undecodable(&mut rx, b"x").await;
    let d = next(&mut rx).await;
    assert_eq!(d.event.id(), "good");
}

#[tokio::test]
async fn jetstream_nak_redelivers_ack_does_not_and_bad_messages_are_handed_over() {
    require(PORT, "nats-server");
    init_logs();
    let prefix = unique("js");
    let name = unique("S");
    stream(PORT, &name, &prefix).await;
    let subject = format!("{prefix}.orders");
    let mut rx = nats::receive(js_config(PORT, &name, &format!("{prefix}.>"), "spindle"))
        .await
        .unwrap();
    let client = async_nats::connect("127.0.0.1:4222").await.unwrap();
    let js = jetstream::new(client.clone());
    js.publish(subject.clone(), "garbage".into())
        .await
        .unwrap()
        .await
        .unwrap();
    let tx = NatsSender::connect(&endpoint(PORT), &subject, Mode::Structured)
        .await
        .unwrap();
    tx.send(&sample("one")).await.unwrap();

    next_undecodable(&mut rx, b"garbage").await;
    let first = next(&mut rx).await;
    assert_eq!(first.event, sample("one"));
    first
        .ack
        .nak(Some(Duration::from_millis(200)))
        .await
        .unwrap();
    let again = next(&mut rx).await;
    assert_eq!(again.event.id(), "one", "a nak'd message comes back");
    again.ack.ack().await.unwrap();
    // ack_wait is 2 s: anything unacked (the garbage included) would be back by now.
    nothing_for(&mut rx, Duration::from_secs(5)).await;

    tx.send(&sample("two")).await.unwrap();
    let d = next(&mut rx).await;
    assert_eq!(d.event.id(), "two");
    d.ack.reject("poison").await.unwrap();
    nothing_for(&mut rx, Duration::from_secs(4)).await;

    // The durable consumer remembers: a new receiver on it gets nothing old.
    drop(rx);
    let mut rx = nats::receive(js_config(PORT, &name, &format!("{prefix}.>"), "spindle"))
        .await
        .unwrap();
    nothing_for(&mut rx, Duration::from_secs(2)).await;
    js.delete_stream(&name).await.unwrap();
}

#[tokio::test]
async fn events_from_a_python_nats_client_are_received() {
    require(PORT, "nats-server");
    python_with(&["nats"], &["nats-py"]);
    init_logs();
    let subject = unique("t.py.");
    let mut rx = core_receiver(&subject, None).await;
    // Binary mode by hand (the Python SDK has no NATS binding), then structured.
    python(
        r#"
import asyncio, json, sys
import nats
async def main():
    nc = await nats.connect("nats://127.0.0.1:4222")
    await nc.publish(sys.argv[1], b'{"from":"python"}', headers={
        "ce-specversion": "1.0", "ce-id": "py-1", "ce-source": "/python",
        "ce-type": "com.example.py", "ce-datacontenttype": "application/json",
        "ce-subject": "caf%C3%A9", "ce-myext": "x"})
    await nc.publish(sys.argv[1], json.dumps({"specversion": "1.0", "id": "py-2",
        "source": "/python", "type": "com.example.py", "data": {"k": 2}}).encode(),
        headers={"Content-Type": "application/cloudevents+json"})
    await nc.flush()
    await nc.close()
asyncio.run(main())
"#,
        &[&subject],
    );
    let d = next(&mut rx).await;
    assert_eq!(d.event.id(), "py-1");
    assert_eq!(d.event.subject(), Some("café"));
    assert_eq!(d.event.data().unwrap().as_bytes(), br#"{"from":"python"}"#);
    assert_eq!(
        d.event.extension("myext").map(|v| v.to_canonical_string()),
        Some("x".to_owned())
    );
    let d = next(&mut rx).await;
    assert_eq!(d.event.id(), "py-2");
}

/// A nats-server of this test's own (its own port and store), so stopping it disturbs no
/// one else; started with the same command as the shared one.
struct PrivateServer {
    port: u16,
    dir: std::path::PathBuf,
    child: Option<Child>,
}

impl PrivateServer {
    fn start(port: u16, dir: std::path::PathBuf) -> Self {
        let mut s = PrivateServer {
            port,
            dir,
            child: None,
        };
        s.up();
        s
    }

    fn up(&mut self) {
        let child = Command::new("/usr/sbin/nats-server")
            .args([
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-js",
                "-sd",
            ])
            .arg(&self.dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("nats-server starts (apt-get install nats-server)");
        self.child = Some(child);
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("private nats-server did not come up");
    }

    /// Stops the server with `kill` (SIGTERM), by its process id.
    fn down(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn jetstream_receiver_survives_a_server_restart() {
    require(PORT, "nats-server");
    init_logs();
    let port = free_port();
    let dir = std::env::temp_dir().join(unique("spindle-nats-"));
    let mut server = PrivateServer::start(port, dir);
    stream(port, "RESTART", "rs").await;
    let mut rx = nats::receive(js_config(port, "RESTART", "rs.>", "spindle"))
        .await
        .unwrap();
    let tx = NatsSender::connect(&endpoint(port), "rs.events", Mode::Binary)
        .await
        .unwrap();
    let mut expected = BTreeSet::new();
    let mut got = BTreeSet::new();
    for i in 0..5 {
        let id = format!("before-{i}");
        tx.send(&sample(&id)).await.unwrap();
        expected.insert(id);
    }
    while got.len() < 5 {
        let d = next(&mut rx).await;
        got.insert(d.event.id().to_owned());
        d.ack.ack().await.unwrap();
    }

    server.down();
    tokio::time::sleep(Duration::from_millis(500)).await;
    server.up();

    // Published after the restart, once the sender's client is back.
    for i in 0..5 {
        let id = format!("after-{i}");
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            tx.send(&sample(&id)).await.unwrap();
            if tx.flush().await.is_ok() {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "sender never reconnected"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        expected.insert(id);
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while got != expected {
        assert!(
            tokio::time::Instant::now() < deadline,
            "missing {:?}",
            expected.difference(&got).collect::<Vec<_>>()
        );
        let d = match tokio::time::timeout(Duration::from_secs(5), rx.recv()).await {
            Ok(Some(d)) => d,
            _ => continue,
        };
        got.insert(d.event.id().to_owned());
        d.ack.ack().await.unwrap();
    }
}
