//! MQTT against the real Mosquitto on 127.0.0.1:1883 (MQTT 5 and 3.1.1).

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use transports::mqtt::{self, MqttReceiverConfig, MqttSender, MqttSinkConfig};
use transports::mqtt::{MqttVersion, Qos};
use transports::{Mode, Receiver};

const PORT: u16 = 1883;

fn receiver_config(topic: &str, version: MqttVersion) -> MqttReceiverConfig {
    MqttReceiverConfig {
        broker: endpoint(PORT),
        topic: topic.to_owned(),
        qos: Qos::AtLeastOnce,
        version,
        persistent_session: false,
        client_id: None,
    }
}

async fn sender(topic: &str, version: MqttVersion, qos: Qos, mode: Mode) -> MqttSender {
    MqttSender::connect(
        MqttSinkConfig {
            broker: endpoint(PORT),
            topic: topic.to_owned(),
            qos,
            version,
            retain: false,
            client_id: None,
            expiry: None,
            user_properties: Vec::new(),
        },
        mode,
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn v5_round_trip_in_both_modes_and_every_qos() {
    require(PORT, "mosquitto");
    init_logs();
    let topic = unique("t/v5/");
    let mut rx = mqtt::receive(MqttReceiverConfig {
        qos: Qos::ExactlyOnce,
        ..receiver_config(&topic, MqttVersion::V5)
    })
    .await
    .unwrap();
    for (i, qos) in [Qos::AtMostOnce, Qos::AtLeastOnce, Qos::ExactlyOnce]
        .into_iter()
        .enumerate()
    {
        for (mode, expect) in [(Mode::Binary, true), (Mode::Structured, false)] {
            let tx = sender(&topic, MqttVersion::V5, qos, mode).await;
            let event = sample(&format!("{mode}-{i}"));
            tx.send(&event).await.unwrap();
            let d = next(&mut rx).await;
            let expected = if expect { stringly(event) } else { event };
            assert_eq!(d.event, expected, "{mode} mode, {qos:?}");
            d.ack.ack().await.unwrap();
        }
    }
}

#[tokio::test]
async fn v3_1_1_is_always_structured() {
    require(PORT, "mosquitto");
    let topic = unique("t/v311/");
    let mut rx = mqtt::receive(receiver_config(&topic, MqttVersion::V3_1_1))
        .await
        .unwrap();
    // Binary is asked for, but 3.1.1 has no properties: the event arrives whole anyway.
    let tx = sender(&topic, MqttVersion::V3_1_1, Qos::AtLeastOnce, Mode::Binary).await;
    tx.send(&sample("old")).await.unwrap();
    let d = next(&mut rx).await;
    assert_eq!(d.event, sample("old"));
    d.ack.ack().await.unwrap();
}

/// Events far over the client library's default 10 KiB packet limit go through both ways, in
/// both versions (3.1.1 carries the whole event in its payload).
#[tokio::test]
async fn large_events_pass_in_both_versions() {
    require(PORT, "mosquitto");
    for version in [MqttVersion::V5, MqttVersion::V3_1_1] {
        let topic = unique("t/large/");
        let mut rx = mqtt::receive(receiver_config(&topic, version))
            .await
            .unwrap();
        let tx = sender(&topic, version, Qos::AtLeastOnce, Mode::Structured).await;
        let mut event = sample("large");
        let text = "x".repeat(512 << 10);
        event
            .set_data(
                Some("application/json".into()),
                Some(cloudevent::Data::json(&serde_json::json!({ "text": text }))),
            )
            .unwrap();
        tx.send(&event).await.unwrap();
        let d = next(&mut rx).await;
        assert_eq!(d.event.id(), "large", "{version:?}");
        assert_eq!(d.event.data(), event.data(), "{version:?}");
        d.ack.ack().await.unwrap();
    }
}

async fn persistent(topic: &str, client_id: &str) -> Receiver {
    mqtt::receive(MqttReceiverConfig {
        persistent_session: true,
        client_id: Some(client_id.to_owned()),
        ..receiver_config(topic, MqttVersion::V5)
    })
    .await
    .unwrap()
}

#[tokio::test]
async fn unacked_messages_come_back_to_a_persistent_session_and_acked_ones_do_not() {
    require(PORT, "mosquitto");
    init_logs();
    let topic = unique("t/session/");
    let client_id = unique("spindle-test-");
    let mut rx = persistent(&topic, &client_id).await;
    let tx = sender(&topic, MqttVersion::V5, Qos::AtLeastOnce, Mode::Binary).await;
    tx.send(&sample("keep")).await.unwrap();

    // nak: redelivered from this process, the broker still waiting for the ack.
    let d = next(&mut rx).await;
    assert_eq!(d.event.id(), "keep");
    d.ack.nak(Some(Duration::from_millis(100))).await.unwrap();
    let d = next(&mut rx).await;
    assert_eq!(d.event.id(), "keep");
    // Not acked, and the receiver goes away: the broker redelivers on the next connection.
    drop(d);
    drop(rx);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut rx = persistent(&topic, &client_id).await;
    let d = next(&mut rx).await;
    assert_eq!(
        d.event.id(),
        "keep",
        "the broker redelivers an unacknowledged message"
    );
    d.ack.ack().await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    drop(rx);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut rx = persistent(&topic, &client_id).await;
    nothing_for(&mut rx, Duration::from_secs(2)).await;
}

#[tokio::test]
async fn bad_messages_are_skipped_and_mosquitto_pub_binary_events_are_received() {
    require(PORT, "mosquitto");
    let topic = unique("t/cli/");
    let mut rx = mqtt::receive(receiver_config(&topic, MqttVersion::V5))
        .await
        .unwrap();
    let pub_ = |args: &[&str]| {
        let status = Command::new("mosquitto_pub")
            .args(["-h", "127.0.0.1", "-p", "1883", "-q", "1", "-t", &topic])
            .args(args)
            .status()
            .expect("mosquitto_pub runs (apt-get install mosquitto-clients)");
        assert!(status.success());
    };
    pub_(&["-m", "not a cloudevent"]);
    pub_(&[
        "-V",
        "mqttv5",
        "-D",
        "publish",
        "user-property",
        "id",
        "no-specversion",
        "-m",
        "x",
    ]);
    pub_(&[
        "-V",
        "mqttv5",
        "-D",
        "publish",
        "content-type",
        "application/json",
        "-D",
        "publish",
        "user-property",
        "specversion",
        "1.0",
        "-D",
        "publish",
        "user-property",
        "id",
        "cli-1",
        "-D",
        "publish",
        "user-property",
        "source",
        "/mosquitto_pub",
        "-D",
        "publish",
        "user-property",
        "type",
        "com.example.cli",
        "-D",
        "publish",
        "user-property",
        "myext",
        "hello",
        // A foreign property of the kind real MQTT traffic carries; not a valid attribute
        // name, so it is the message's metadata, not the event's, and must not fail it.
        "-D",
        "publish",
        "user-property",
        "Correlation-Id",
        "abc-123",
        "-m",
        r#"{"from":"mosquitto_pub"}"#,
    ]);
    // The two that are not CloudEvents come first, whole, for the dead letters.
    next_undecodable(&mut rx, b"not a cloudevent").await;
    next_undecodable(&mut rx, b"x").await;
    let d = next(&mut rx).await;
    assert_eq!(d.event.id(), "cli-1");
    assert_eq!(d.event.source(), "/mosquitto_pub");
    assert_eq!(d.event.datacontenttype(), Some("application/json"));
    assert_eq!(
        d.event.data().unwrap().as_bytes(),
        br#"{"from":"mosquitto_pub"}"#
    );
    assert_eq!(
        d.event.extension("myext").unwrap().to_canonical_string(),
        "hello"
    );
    assert_eq!(
        d.event.extensions().len(),
        1,
        "only myext became an extension"
    );
    d.ack.ack().await.unwrap();
    // Structured, from the 3.1.1 client.
    pub_(&[
        "-m",
        r#"{"specversion":"1.0","id":"cli-2","source":"/cli","type":"t"}"#,
    ]);
    let d = next(&mut rx).await;
    assert_eq!(d.event.id(), "cli-2");
    d.ack.reject("testing reject").await.unwrap();
    nothing_for(&mut rx, Duration::from_secs(1)).await;
}

/// A mosquitto of this test's own (its own port, no persistence), so stopping it disturbs
/// no one else.
struct PrivateBroker {
    port: u16,
    config: std::path::PathBuf,
    child: Option<std::process::Child>,
}

impl PrivateBroker {
    fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = std::env::temp_dir().join(unique("spindle-mosquitto-"));
        std::fs::write(
            &config,
            format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"),
        )
        .unwrap();
        let mut b = PrivateBroker {
            port,
            config,
            child: None,
        };
        b.up();
        b
    }

    fn up(&mut self) {
        let child = Command::new("mosquitto")
            .arg("-c")
            .arg(&self.config)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("mosquitto starts (apt-get install mosquitto)");
        self.child = Some(child);
        for _ in 0..200 {
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("private mosquitto did not come up");
    }

    /// Stops the broker with `kill` (SIGTERM), by its process id.
    fn down(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").arg(child.id().to_string()).status();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_file(&self.config);
    }
}

#[tokio::test]
async fn receiver_and_sender_survive_a_broker_restart() {
    require(PORT, "mosquitto");
    init_logs();
    let mut broker = PrivateBroker::start();
    let topic = "restart/events";
    let mut rx = mqtt::receive(MqttReceiverConfig {
        broker: endpoint(broker.port),
        ..receiver_config(topic, MqttVersion::V5)
    })
    .await
    .unwrap();
    let tx = MqttSender::connect(
        MqttSinkConfig {
            broker: endpoint(broker.port),
            topic: topic.to_owned(),
            qos: Qos::AtLeastOnce,
            version: MqttVersion::V5,
            retain: false,
            client_id: None,
            expiry: None,
            user_properties: Vec::new(),
        },
        Mode::Binary,
    )
    .await
    .unwrap();
    for i in 0..3 {
        tx.send(&sample(&format!("before-{i}"))).await.unwrap();
        let d = next(&mut rx).await;
        assert_eq!(d.event.id(), format!("before-{i}"));
        d.ack.ack().await.unwrap();
    }

    broker.down();
    tokio::time::sleep(Duration::from_millis(500)).await;
    broker.up();

    // Probe until the receiver has resubscribed (a QoS 1 message to a topic nobody is
    // subscribed to is dropped by the broker), then check a few more in order.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut k = 0;
    loop {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no event after the restart"
        );
        k += 1;
        if tx.send(&sample(&format!("probe-{k}"))).await.is_err() {
            continue;
        }
        if let Ok(Some(d)) = tokio::time::timeout(Duration::from_millis(500), rx.recv()).await {
            d.ack.ack().await.unwrap();
            break;
        }
    }
    for i in 0..3 {
        tx.send(&sample(&format!("after-{i}"))).await.unwrap();
    }
    let mut after = Vec::new();
    while after.len() < 3 {
        let d = next(&mut rx).await;
        if d.event.id().starts_with("after-") {
            after.push(d.event.id().to_owned());
        }
        d.ack.ack().await.unwrap();
    }
    assert_eq!(after, ["after-0", "after-1", "after-2"]);
}
