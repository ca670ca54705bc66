//! Broker sinks end to end: subscriptions whose sinks are the real NATS (4222), Mosquitto
//! (1883, MQTT 5 and 3.1.1), RabbitMQ (5672, AMQP 1.0) and Tansu (9092, Kafka) on 127.0.0.1,
//! events queued through the outbox, and consumers (the transports crate's receivers) that
//! check every attribute, extension and the data arrive intact. `bash scripts/services.sh`
//! starts whichever broker is down. Every destination is unique to the test run.

mod support;

use std::collections::HashMap;
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use cloudevent::kafka::KeyMapping;
use cloudevent::{AttributeValue, Data, Event};
use delivery::{ContentMode, Delivery, Protocol, Subscription};
use manifest::{Endpoint, MqttVersion, Qos};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::message::Message;
use support::{PATIENCE, free_addr, init_tracing, open, wait_until};
use transports::Receiver;
use transports::amqp::AmqpReceiverConfig;
use transports::kafka::KafkaReceiverConfig;
use transports::mqtt::MqttReceiverConfig;
use transports::nats::NatsReceiverConfig;

const NATS: u16 = 4222;
const MQTT: u16 = 1883;
const AMQP: u16 = 5672;
const KAFKA: u16 = 9092;

/// Panics with the fix when a broker is down.
fn require(port: u16, name: &str) {
    let addr: SocketAddr = ([127, 0, 0, 1], port).into();
    if TcpStream::connect_timeout(&addr, Duration::from_secs(3)).is_err() {
        panic!("{name} is not reachable on 127.0.0.1:{port}: run `bash scripts/services.sh` first");
    }
}

fn endpoint(port: u16) -> Endpoint {
    Endpoint::plain("127.0.0.1", port)
}

/// A name no other test run uses.
fn unique(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::new_v4().simple())
}

/// An event with every optional attribute, extensions of several types, and JSON data.
fn sample(i: usize) -> Event {
    Event::builder()
        .id(format!("e{i}"))
        .source("/spindle/delivery-tests")
        .ty("com.example.broker.sink")
        .subject("Euro € sign and spaces")
        .time("2026-11-27T10:11:12.345Z".parse().unwrap())
        .dataschema("https://example.com/schema.json")
        .data_with_type(
            "application/json",
            Data::json(&serde_json::json!({"i": i, "text": "héllo"})),
        )
        .extension(
            "myext",
            AttributeValue::string("value with spaces").unwrap(),
        )
        .extension("count", 42)
        .extension("flag", true)
        .extension("partitionkey", AttributeValue::string("key-1").unwrap())
        .build()
        .unwrap()
}

/// The event as header-based binary modes carry it (NATS, MQTT 5, Kafka): extensions as
/// strings, since those headers have no types.
fn stringly(mut event: Event) -> Event {
    let names: Vec<String> = event.extensions().keys().cloned().collect();
    for name in names {
        let value = event.remove_extension(&name).unwrap();
        event
            .set_extension(name, AttributeValue::String(value.to_canonical_string()))
            .unwrap();
    }
    event
}

/// A subscription with fast retries.
fn subscription(protocol: Protocol, sink: &str, mode: ContentMode) -> Subscription {
    let mut sub = Subscription::new(unique("sub-"), protocol, sink);
    sub.delivery.mode = mode;
    sub.delivery.initial_backoff = Duration::from_millis(50);
    sub.delivery.max_backoff = Duration::from_millis(500);
    sub
}

async fn enqueue(engine: &Delivery, sub: &Subscription, events: &[Event]) {
    let batch: Vec<_> = events.iter().map(|e| (sub.id.clone(), e.clone())).collect();
    assert_eq!(engine.outbox().enqueue(batch).await.unwrap(), events.len());
}

/// Receives until every expected event came (duplicates are allowed: delivery is
/// at-least-once), acking each, and checks each arrived exactly as expected.
async fn expect(rx: &mut Receiver, expected: &[Event], what: &str) {
    let deadline = Instant::now() + PATIENCE;
    let mut got: HashMap<String, Event> = HashMap::new();
    while got.len() < expected.len() {
        let left = deadline.saturating_duration_since(Instant::now());
        let d = match tokio::time::timeout(left, rx.recv()).await {
            Ok(Some(d)) => d,
            Ok(None) => panic!("{what}: the receiver closed"),
            Err(_) => panic!(
                "{what}: {} of {} events within {PATIENCE:?}",
                got.len(),
                expected.len()
            ),
        };
        d.ack.ack().await.unwrap();
        got.insert(d.event.id().to_owned(), d.event);
    }
    for e in expected {
        assert_eq!(got.get(e.id()), Some(e), "{what}: event {}", e.id());
    }
}

/// Waits until the subscription's queue is empty and checks nothing was dead-lettered.
async fn drained(engine: &Delivery, sub: &Subscription) {
    let id = &sub.id;
    assert!(
        wait_until(PATIENCE, || engine.pending(Some(id)) == 0).await,
        "{} still pending",
        engine.pending(Some(id))
    );
    assert!(engine.dead_letters(Some(id), 10).unwrap().is_empty());
}

async fn nats_receiver(port: u16, subject: &str) -> Receiver {
    transports::nats::receive(NatsReceiverConfig {
        server: endpoint(port),
        subject: subject.to_owned(),
        queue_group: None,
        jetstream: None,
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_in_binary_and_structured_mode() {
    require(NATS, "nats-server");
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path()).await;
    let events: Vec<Event> = (0..20).map(sample).collect();
    for (mode, expected) in [
        (
            ContentMode::Binary,
            events.iter().cloned().map(stringly).collect(),
        ),
        (ContentMode::Structured, events.clone()),
    ] {
        let subject = unique("spindle.t.sink.");
        let mut rx = nats_receiver(NATS, &subject).await;
        // The subject in the settings, the server in the URI.
        let mut sub = subscription(Protocol::Nats, &format!("nats://127.0.0.1:{NATS}"), mode);
        sub.protocolsettings = Some(serde_json::json!({ "subject": subject }));
        engine.put_subscription(sub.clone()).await.unwrap();
        enqueue(&engine, &sub, &events).await;
        expect(&mut rx, &expected, &format!("NATS {mode:?}")).await;
        drained(&engine, &sub).await;
    }
    engine.shutdown().await;
}

/// A subscription to `nats://…?jetstream=true` (the subject in the settings, as the
/// Subscriptions API allows) delivers into the stream that captures the subject, every event
/// whole, and its queue drains with nothing dead-lettered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_jetstream_sink_delivers_into_the_stream() {
    require(NATS, "nats-server");
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path()).await;
    let prefix = unique("spindle.t.js.");
    let subject = format!("{prefix}.out");
    let stream = unique("SINKTEST");
    let client = async_nats::connect(format!("127.0.0.1:{NATS}"))
        .await
        .unwrap();
    let js = async_nats::jetstream::new(client);
    js.create_stream(async_nats::jetstream::stream::Config {
        name: stream.clone(),
        subjects: vec![format!("{prefix}.>")],
        ..Default::default()
    })
    .await
    .unwrap();
    let mut rx = transports::nats::receive(NatsReceiverConfig {
        server: endpoint(NATS),
        subject: subject.clone(),
        queue_group: None,
        jetstream: Some(transports::nats::JetStreamConfig {
            stream: stream.clone(),
            durable: Some("check".into()),
            ack_wait: Duration::from_secs(5),
            max_ack_pending: transports::nats::DEFAULT_MAX_ACK_PENDING,
        }),
    })
    .await
    .unwrap();

    let events: Vec<Event> = (0..20).map(sample).collect();
    let mut sub = subscription(
        Protocol::Nats,
        &format!("nats://127.0.0.1:{NATS}?jetstream=true"),
        ContentMode::Binary,
    );
    sub.protocolsettings = Some(serde_json::json!({ "subject": subject }));
    engine.put_subscription(sub.clone()).await.unwrap();
    enqueue(&engine, &sub, &events).await;
    let expected: Vec<Event> = events.into_iter().map(stringly).collect();
    expect(&mut rx, &expected, "NATS JetStream").await;
    drained(&engine, &sub).await;
    let info = js
        .get_stream(&stream)
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .clone();
    assert_eq!(info.state.messages, 20, "each event stored once");
    js.delete_stream(&stream).await.unwrap();
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_5_in_binary_and_structured_mode_and_mqtt_3() {
    require(MQTT, "mosquitto");
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path()).await;
    let events: Vec<Event> = (0..10).map(sample).collect();
    let cases = [
        (
            Protocol::Mqtt5,
            ContentMode::Binary,
            events.iter().cloned().map(stringly).collect(),
        ),
        (Protocol::Mqtt5, ContentMode::Structured, events.clone()),
        // MQTT 3.1.1 has no properties: the event travels whole, binary asked for or not.
        (Protocol::Mqtt3, ContentMode::Binary, events.clone()),
    ];
    for (protocol, mode, expected) in cases {
        let topic = unique("spindle/t/sink/");
        let version = match protocol {
            Protocol::Mqtt3 => MqttVersion::V3_1_1,
            _ => MqttVersion::V5,
        };
        let mut rx = transports::mqtt::receive(MqttReceiverConfig {
            broker: endpoint(MQTT),
            topic: topic.clone(),
            qos: Qos::ExactlyOnce,
            version,
            persistent_session: false,
            client_id: None,
        })
        .await
        .unwrap();
        let mut sub = subscription(
            protocol,
            &format!("mqtt://127.0.0.1:{MQTT}/{topic}?qos=1"),
            mode,
        );
        sub.protocolsettings = Some(serde_json::json!({"topicname": topic, "qos": 1}));
        engine.put_subscription(sub.clone()).await.unwrap();
        enqueue(&engine, &sub, &events).await;
        expect(&mut rx, &expected, &format!("{protocol:?} {mode:?}")).await;
        drained(&engine, &sub).await;
    }
    engine.shutdown().await;
}

/// Subscriptions 3.2.2.2, MQTT: "All other settings SHOULD be supported": `expiry`, the
/// "MQTT expiry interval, in seconds", and `userproperties`, "A set of key/value pairs that
/// are copied into the MQTT PUBLISH packet's user property section". Checked with
/// `mosquitto_sub -V 5`, an MQTT client that is not Spindle's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_5_expiry_and_user_properties_reach_the_subscriber() {
    require(MQTT, "mosquitto");
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path()).await;
    let topic = unique("spindle/t/props/");
    let subscriber = std::process::Command::new("mosquitto_sub")
        .args(["-V", "5", "-h", "127.0.0.1", "-p", &MQTT.to_string()])
        .args([
            "-t", &topic, "-q", "1", "-C", "1", "-W", "60", "-F", "%E|%P",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("mosquitto_sub (the mosquitto-clients package)");
    // mosquitto_sub says nothing once subscribed: give it a moment.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let mut sub = subscription(
        Protocol::Mqtt5,
        &format!("mqtt://127.0.0.1:{MQTT}/{topic}"),
        ContentMode::Binary,
    );
    sub.protocolsettings = Some(serde_json::json!({
        "qos": 1,
        "expiry": 3600,
        "userproperties": {"Correlation-Id": "c-1", "region": "eu"}
    }));
    engine.put_subscription(sub.clone()).await.unwrap();
    enqueue(&engine, &sub, &[sample(0)]).await;
    let output = tokio::task::spawn_blocking(move || subscriber.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let line = String::from_utf8(output.stdout).unwrap();
    let (expiry, properties) = line.trim().split_once('|').expect(&line);
    let expiry: u32 = expiry.parse().expect(&line);
    assert!((3500..=3600).contains(&expiry), "{line}");
    let properties: Vec<&str> = properties.split(' ').collect();
    for wanted in [
        "Correlation-Id:c-1",
        "region:eu",
        "id:e0",
        "specversion:1.0",
    ] {
        assert!(properties.contains(&wanted), "{wanted} missing from {line}");
    }
    drained(&engine, &sub).await;
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amqp_in_binary_and_structured_mode() {
    require(AMQP, "rabbitmq-server");
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path()).await;
    let events: Vec<Event> = (0..10).map(sample).collect();
    for mode in [ContentMode::Binary, ContentMode::Structured] {
        let queue = format!("/queue/{}", unique("spindle-t-sink-"));
        // Attaching the receiver declares the queue.
        let mut rx = transports::amqp::receive(AmqpReceiverConfig {
            broker: endpoint(AMQP),
            source: queue.clone(),
            credentials: None,
        })
        .await
        .unwrap();
        let mut sub = subscription(
            Protocol::Amqp,
            &format!("amqp://127.0.0.1:{AMQP}{queue}"),
            mode,
        );
        // The Subscriptions API's AMQP link settings reach the broker's attach.
        sub.protocolsettings = Some(serde_json::json!({
            "sendersettlementmode": "unsettled",
            "linkName": unique("spindle-link-"),
            "linkProperties": {"tenant": "acme"},
        }));
        sub.sinkcredential = Some(serde_json::json!({
            "credentialtype": "PLAIN", "identifier": "guest", "secret": "guest"
        }));
        engine.put_subscription(sub.clone()).await.unwrap();
        enqueue(&engine, &sub, &events).await;
        // AMQP application properties are typed: even binary mode keeps extension types.
        expect(&mut rx, &events, &format!("AMQP {mode:?}")).await;
        drained(&engine, &sub).await;
    }
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kafka_in_binary_and_structured_mode_keyed_by_partitionkey() {
    require(KAFKA, "the Kafka broker (Tansu)");
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path()).await;
    let events: Vec<Event> = (0..10).map(sample).collect();
    for (mode, expected) in [
        (
            ContentMode::Binary,
            events.iter().cloned().map(stringly).collect(),
        ),
        (ContentMode::Structured, events.clone()),
    ] {
        let topic = unique("spindle-t-sink-");
        let mut rx = transports::kafka::receive(KafkaReceiverConfig {
            brokers: vec![endpoint(KAFKA)],
            topic: topic.clone(),
            group: unique("g-"),
            keys: KeyMapping::None,
            from_beginning: true,
        })
        .await
        .unwrap();
        let mut sub = subscription(
            Protocol::Kafka,
            &format!("kafka://127.0.0.1:{KAFKA}/{topic}"),
            mode,
        );
        sub.protocolsettings = Some(serde_json::json!({
            "topicname": topic, "partitionkeyextractor": "partitionkey"
        }));
        engine.put_subscription(sub.clone()).await.unwrap();
        enqueue(&engine, &sub, &events).await;
        expect(&mut rx, &expected, &format!("Kafka {mode:?}")).await;
        drained(&engine, &sub).await;

        // Records are keyed by the partitionkey extension.
        let consumer: StreamConsumer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", format!("127.0.0.1:{KAFKA}"))
            .set("group.id", unique("raw-"))
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", "6000")
            .set("heartbeat.interval.ms", "500")
            .create()
            .unwrap();
        consumer.subscribe(&[&topic]).unwrap();
        let record = tokio::time::timeout(PATIENCE, consumer.recv())
            .await
            .expect("a record within the time limit")
            .unwrap();
        assert_eq!(record.key(), Some(&b"key-1"[..]));
    }
    engine.shutdown().await;
}

/// A TCP forwarder to the real NATS server that the test can switch on: until then nothing
/// listens on its port, as if the broker were down.
struct Forwarder {
    accepted: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Forwarder {
    async fn start(addr: SocketAddr, to: u16) -> Self {
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let accepted = Arc::new(AtomicUsize::new(0));
        let count = accepted.clone();
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    continue;
                };
                count.fetch_add(1, Ordering::SeqCst);
                connections.spawn(async move {
                    if let Ok(mut outbound) =
                        tokio::net::TcpStream::connect(("127.0.0.1", to)).await
                    {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Forwarder { accepted, task }
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_that_is_down_is_retried_and_gets_everything_once_up() {
    require(NATS, "nats-server");
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path()).await;
    let subject = unique("spindle.t.down.");
    // The consumer is on the real server from the start, so nothing published once the
    // sink's broker is reachable can be missed (core NATS keeps nothing for later).
    let mut rx = nats_receiver(NATS, &subject).await;
    let down = free_addr().await;
    let mut sub = subscription(
        Protocol::Nats,
        &format!("nats://{down}/{subject}"),
        ContentMode::Binary,
    );
    sub.delivery.max_in_flight = 4;
    let started = Instant::now();
    engine.put_subscription(sub.clone()).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "creating a sink must not wait for its broker"
    );
    let events: Vec<Event> = (0..8).map(sample).collect();
    enqueue(&engine, &sub, &events).await;

    // Several attempts fail (connection refused); the events stay queued, none is given up.
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(engine.pending(Some(&sub.id)), events.len() as u64);
    assert!(engine.dead_letters(Some(&sub.id), 10).unwrap().is_empty());

    // The broker comes up on that port.
    let forwarder = Forwarder::start(down, NATS).await;
    let expected: Vec<Event> = events.iter().cloned().map(stringly).collect();
    expect(&mut rx, &expected, "NATS after the broker came up").await;
    drained(&engine, &sub).await;
    // One connection serves all the concurrent sends.
    assert_eq!(forwarder.accepted.load(Ordering::SeqCst), 1);
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_subscriptions_are_checked_when_stored() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path()).await;
    // Accepted without a broker: the sink connects on its first send.
    for (protocol, sink) in [
        (Protocol::Nats, "nats://127.0.0.1:9/a.b"),
        (Protocol::Mqtt5, "mqtt://127.0.0.1:9/a/b"),
        (Protocol::Mqtt3, "mqtt://127.0.0.1:9/a/b"),
        (Protocol::Amqp, "amqp://127.0.0.1:9/queue/q"),
        (Protocol::Kafka, "kafka://127.0.0.1:9/t"),
    ] {
        let sub = subscription(protocol, sink, ContentMode::Binary);
        engine.put_subscription(sub).await.unwrap();
    }
    let refused = [
        (Protocol::Nats, "nats://127.0.0.1:9/a/b", None),
        (
            Protocol::Mqtt3,
            "mqtt://127.0.0.1:9/a/b",
            Some(serde_json::json!({"expiry": 5})),
        ),
        (Protocol::Kafka, "kafka://127.0.0.1:9", None),
        (Protocol::Amqp, "nats://127.0.0.1:9/a", None),
    ];
    for (protocol, sink, settings) in refused {
        let mut sub = subscription(protocol, sink, ContentMode::Binary);
        sub.protocolsettings = settings;
        let err = engine.put_subscription(sub).await.unwrap_err();
        assert!(
            matches!(
                err,
                delivery::Error::Sink(delivery::SinkError::Invalid { .. })
            ),
            "{sink}: {err}"
        );
    }
    assert_eq!(engine.subscriptions().len(), 5);
    // The registry names the broker schemes when refusing an unknown one.
    let err = engine
        .put_subscription(subscription(
            Protocol::Nats,
            "gopher://h/x",
            ContentMode::Binary,
        ))
        .await
        .unwrap_err();
    let text = err.to_string();
    for scheme in ["amqp", "http", "kafka", "mqtt", "nats"] {
        assert!(text.contains(scheme), "{text}");
    }
    engine.shutdown().await;
}
