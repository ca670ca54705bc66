//! Kafka against the real Kafka-protocol broker (Tansu) on 127.0.0.1:9092.

mod common;

use std::time::Duration;

use cloudevent::kafka::KeyMapping;
use common::*;
use rdkafka::ClientConfig;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use transports::kafka::{self, KafkaReceiverConfig, KafkaSender};
use transports::{Mode, Receiver};

const PORT: u16 = 9092;

async fn receiver(topic: &str, group: &str, keys: KeyMapping) -> Receiver {
    kafka::receive(KafkaReceiverConfig {
        brokers: vec![endpoint(PORT)],
        topic: topic.to_owned(),
        group: group.to_owned(),
        keys,
        from_beginning: true,
    })
    .await
    .unwrap()
}

async fn sender(topic: &str, mode: Mode, keys: KeyMapping) -> KafkaSender {
    KafkaSender::connect(&[endpoint(PORT)], topic, mode, keys)
        .await
        .unwrap()
}

#[tokio::test]
async fn round_trip_in_both_modes_keeps_the_whole_event_and_keys_by_partitionkey() {
    require(PORT, "the Kafka broker (Tansu)");
    init_logs();
    let topic = unique("spindle-t-");
    let mut rx = receiver(&topic, &unique("g-"), KeyMapping::None).await;
    for mode in [Mode::Binary, Mode::Structured] {
        let tx = sender(&topic, mode, KeyMapping::PartitionKey).await;
        let event = sample(&format!("{mode}"));
        tx.send(&event).await.unwrap();
        let d = next(&mut rx).await;
        let expected = if mode == Mode::Binary {
            stringly(event)
        } else {
            event
        };
        assert_eq!(d.event, expected, "{mode} mode");
        d.ack.ack().await.unwrap();
    }
    // The record key is the partitionkey.
    assert_eq!(first_record(&topic).await.key(), Some(&b"key-1"[..]));
}

#[tokio::test]
async fn nak_redelivers_and_offsets_are_committed_only_after_handling() {
    require(PORT, "the Kafka broker (Tansu)");
    init_logs();
    let topic = unique("spindle-t-");
    let group = unique("g-");
    // One key, so one partition, so one order.
    let tx = sender(&topic, Mode::Binary, KeyMapping::PartitionKey).await;
    // A record that is not a CloudEvent, then two events.
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", "127.0.0.1:9092")
        .create()
        .unwrap();
    producer
        .send(
            FutureRecord::to(&topic).key("key-1").payload("garbage"),
            Duration::from_secs(30),
        )
        .await
        .unwrap();
    tx.send(&sample("a")).await.unwrap();
    tx.send(&sample("b")).await.unwrap();

    let mut rx = receiver(&topic, &group, KeyMapping::None).await;
    next_undecodable(&mut rx, b"garbage").await;
    let a = next(&mut rx).await;
    assert_eq!(a.event.id(), "a");
    let b = next(&mut rx).await;
    assert_eq!(b.event.id(), "b");
    b.ack.ack().await.unwrap();
    a.ack.nak(Some(Duration::from_millis(200))).await.unwrap();
    let a = next(&mut rx).await;
    assert_eq!(a.event.id(), "a", "a nak'd record comes back");
    // Not settled: the group's committed offset must stay before it.
    drop(a);
    tokio::time::sleep(Duration::from_secs(1)).await;
    drop(rx);
    let mut rx = receiver(&topic, &group, KeyMapping::None).await;
    let mut ids = Vec::new();
    while ids.len() < 2 {
        let d = next(&mut rx).await;
        ids.push(d.event.id().to_owned());
        d.ack.ack().await.unwrap();
    }
    assert_eq!(ids, ["a", "b"], "restart from the first unsettled record");
    tokio::time::sleep(Duration::from_secs(1)).await;
    drop(rx);
    let mut rx = receiver(&topic, &group, KeyMapping::None).await;
    nothing_for(&mut rx, Duration::from_secs(8)).await;
}

#[tokio::test]
async fn events_from_the_python_cloudevents_kafka_binding_are_received() {
    require(PORT, "the Kafka broker (Tansu)");
    python_with(
        &["cloudevents.core.bindings.kafka", "kafka"],
        &["cloudevents>=2.2", "kafka-python"],
    );
    let topic = unique("spindle-t-");
    python(
        r#"
import sys
from kafka import KafkaProducer
from cloudevents.core.v1.event import CloudEvent
from cloudevents.core.bindings.kafka import to_binary_event, to_structured_event
p = KafkaProducer(bootstrap_servers="127.0.0.1:9092")
for i, conv in enumerate([to_binary_event, to_structured_event]):
    e = CloudEvent({"id": f"py-{i}", "source": "/python", "type": "com.example.py", "specversion": "1.0",
                    "datacontenttype": "application/json", "partitionkey": "pk"}, {"i": i})
    m = conv(e)
    key = m.key.encode() if isinstance(m.key, str) else m.key
    p.send(sys.argv[1], key=key, value=m.value, headers=list(m.headers.items()))
p.flush()
"#,
        &[&topic],
    );
    let mut rx = receiver(&topic, &unique("g-"), KeyMapping::PartitionKey).await;
    for i in 0..2 {
        let d = next(&mut rx).await;
        assert_eq!(d.event.id(), format!("py-{i}"));
        assert_eq!(d.event.ty(), "com.example.py");
        let data: serde_json::Value =
            serde_json::from_slice(d.event.data().unwrap().as_bytes()).unwrap();
        assert_eq!(data, serde_json::json!({"i": i}));
        assert_eq!(
            d.event
                .extension("partitionkey")
                .unwrap()
                .to_canonical_string(),
            "pk"
        );
        d.ack.ack().await.unwrap();
    }
}

/// Kafka binding 3.1: "Every implementation MUST, by default, map the user provided record
/// key to the Kafka record key." A keyed record from a producer that sets no `partitionkey`
/// is received with its key as `partitionkey`, and forwarded to another topic under the same
/// key (so in the same partition order), with the attribute kept in the event.
#[tokio::test]
async fn a_record_key_survives_kafka_to_kafka_forwarding_by_default() {
    require(PORT, "the Kafka broker (Tansu)");
    init_logs();
    let (inbound, outbound) = (unique("spindle-t-in-"), unique("spindle-t-out-"));
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", "127.0.0.1:9092")
        .create()
        .unwrap();
    let headers = rdkafka::message::OwnedHeaders::new()
        .insert(rdkafka::message::Header {
            key: "ce_specversion",
            value: Some("1.0"),
        })
        .insert(rdkafka::message::Header {
            key: "ce_id",
            value: Some("k-1"),
        })
        .insert(rdkafka::message::Header {
            key: "ce_source",
            value: Some("/keyed"),
        })
        .insert(rdkafka::message::Header {
            key: "ce_type",
            value: Some("com.example.keyed"),
        });
    producer
        .send(
            FutureRecord::to(&inbound)
                .key("customer-42")
                .payload("x")
                .headers(headers),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    let mut rx = receiver(&inbound, &unique("g-"), KeyMapping::default()).await;
    let d = next(&mut rx).await;
    assert_eq!(
        d.event
            .extension("partitionkey")
            .map(|v| v.to_canonical_string()),
        Some("customer-42".to_owned())
    );
    let tx = sender(
        &outbound,
        Mode::Binary,
        transports::SendOptions::default().kafka_keys,
    )
    .await;
    tx.send(&d.event).await.unwrap();
    d.ack.ack().await.unwrap();

    let m = first_record(&outbound).await;
    assert_eq!(m.key(), Some(&b"customer-42"[..]));
    use rdkafka::message::Headers;
    let partitionkey = m
        .headers()
        .and_then(|h| h.iter().find(|h| h.key == "ce_partitionkey"))
        .and_then(|h| h.value);
    assert_eq!(partitionkey, Some(&b"customer-42"[..]));
}

/// The first record of `topic`, read by a plain consumer of its own group.
async fn first_record(topic: &str) -> rdkafka::message::OwnedMessage {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", "127.0.0.1:9092")
        .set("group.id", unique("raw-"))
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .set("heartbeat.interval.ms", "500")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let m = tokio::time::timeout(WAIT, consumer.recv())
        .await
        .unwrap()
        .unwrap();
    m.detach()
}
