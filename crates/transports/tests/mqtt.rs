//! MQTT against the real Mosquitto on 127.0.0.1:1883 (MQTT 5 and 3.1.1).

mod common;

use std::process::Command;
use std::time::Duration;

use common::*;
use manifest::{MqttVersion, Qos};
use transports::mqtt::{self, MqttReceiverConfig, MqttSender, MqttSinkConfig};
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
        "-m",
        r#"{"from":"mosquitto_pub"}"#,
    ]);
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
