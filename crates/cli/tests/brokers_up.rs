//! `spindle up` with broker triggers and broker outputs, as a user runs it: the real binary,
//! a real Wasm component, and the real brokers on 127.0.0.1 (NATS, Mosquitto, RabbitMQ with
//! AMQP 1.0, the Kafka-protocol broker). Events enter through every broker trigger, run through
//! an echo component, and leave through a NATS output; a subscription delivers to a component
//! in process; a message that is not a CloudEvent is rejected without stopping the trigger.

#[allow(dead_code)] // this file reads only some of what the helper reports
mod running;
#[path = "../../engine/tests/support/mod.rs"]
mod support;

use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::Duration;

use running::Up;

use cloudevent::{Data, Event, http as binding};
use transports::{SendOptions, Sender};

/// `spindle up` on `manifest`, written to a directory of its own.
fn start(manifest: &str) -> Up {
    let dir = tempfile::tempdir().unwrap().keep();
    std::fs::write(dir.join("spindle.toml"), manifest).unwrap();
    running::up(&dir, Stdio::inherit())
}

/// [`start`], checking that every broker trigger is listed.
fn up(manifest: &str) -> Up {
    let up = start(manifest);
    assert!(
        up.banner.starts_with("Serving brokers on "),
        "{}",
        up.banner
    );
    for broker in ["nats://", "mqtt://", "amqp://", "kafka://"] {
        assert!(
            up.listing
                .iter()
                .any(|l| l.trim_start().starts_with(broker)),
            "spindle up lists its {broker} trigger: {:?}",
            up.listing
        );
    }
    up
}

fn event(id: &str, ty: &str) -> Event {
    Event::builder()
        .id(id)
        .source("/brokers-up")
        .ty(ty)
        .extension("hop", 1)
        .data_with_type(
            "application/json",
            Data::json(&serde_json::json!({"id": id})),
        )
        .build()
        .unwrap()
}

fn sink(uri: &str) -> manifest::Sink {
    uri.parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_triggers_and_outputs_carry_whole_events_through_a_component() {
    let run = uuid::Uuid::new_v4().simple().to_string();
    let echo = support::guest("guest_echo");
    let (nats_in, mqtt_in, amqp_in, kafka_in) = (
        format!("spindle.in.{run}"),
        format!("spindle/in/{run}"),
        format!("/queue/spindle-in-{run}"),
        format!("spindle-in-{run}"),
    );
    let out = format!("spindle.out.{run}");
    let manifest = format!(
        r#"spindle_manifest_version = 1
[application]
name = "brokers"

[[trigger.http]]
route = "/events"

[[trigger.nats]]
subject = "{nats_in}"
component = "echo"

[[trigger.mqtt]]
topic = "{mqtt_in}"
client_id = "spindle-test-{run}"
component = "echo"

[[trigger.amqp]]
source = "{amqp_in}"
component = "echo"

[[trigger.kafka]]
topic = "{kafka_in}"
component = "echo"

[component.echo]
source = "{}"
[component.echo.outputs]
out = {{ uri = "nats://127.0.0.1:4222/{out}", mode = "structured" }}
"#,
        echo.display()
    );

    // What comes out of the app, read off the NATS output subject.
    let mut results = transports::nats::receive(transports::nats::NatsReceiverConfig {
        server: manifest::Endpoint::plain("127.0.0.1", 4222),
        subject: out.clone(),
        queue_group: None,
        jetstream: None,
    })
    .await
    .unwrap();

    let app = up(&manifest);

    // A NATS message that is not a CloudEvent is rejected (and logged); the trigger goes on.
    let raw = async_nats::connect("127.0.0.1:4222").await.unwrap();
    raw.publish(nats_in.clone(), "not an event".into())
        .await
        .unwrap();
    raw.flush().await.unwrap();

    let mut sent = BTreeSet::new();
    let mut senders = Vec::new(); // kept open: core NATS publishes are flushed in the background
    for (uri, id) in [
        (format!("nats://127.0.0.1:4222/{nats_in}"), "via-nats"),
        (format!("mqtt://127.0.0.1:1883/{mqtt_in}?qos=1"), "via-mqtt"),
        (format!("amqp://127.0.0.1:5672{amqp_in}"), "via-amqp"),
        (format!("kafka://127.0.0.1:9092/{kafka_in}"), "via-kafka"),
    ] {
        let sender = Sender::connect(&sink(&uri), SendOptions::default())
            .await
            .unwrap_or_else(|e| panic!("{uri}: {e}"));
        sender.send(&event(id, "com.example.ping")).await.unwrap();
        senders.push(sender);
        sent.insert(id.to_owned());
    }

    // A component as subscriber: an event posted to the subscriptions-only route reaches
    // `echo` through a `component:echo` subscription, and echo's result leaves on the output.
    let client = reqwest::Client::new();
    let created = client
        .post(format!("{}/subscriptions", app.admin))
        .header("content-type", "application/json")
        .body(
            serde_json::json!({
                "protocol": "HTTP",
                "sink": "component:echo",
                "types": ["com.example.subscribed"]
            })
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    let encoded = binding::encode_binary(&event("via-subscription", "com.example.subscribed"));
    let r = client
        .post(format!("{}/events", app.http))
        .headers(encoded.headers)
        .body(encoded.body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    sent.insert("via-subscription".to_owned());

    let mut got = BTreeSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while got != sent {
        let delivery = tokio::time::timeout_at(deadline, results.recv())
            .await
            .unwrap_or_else(|_| panic!("only {got:?} of {sent:?} came out"))
            .unwrap();
        let e = delivery.event;
        assert_eq!(e.source(), "/brokers-up");
        assert_eq!(e.extension("hop").map(|v| v.to_string()), Some("1".into()));
        assert_eq!(
            e.data().unwrap().as_bytes(),
            Data::json(&serde_json::json!({"id": e.id()})).as_bytes()
        );
        assert!(got.insert(e.id().to_owned()), "{} came out twice", e.id());
        delivery.ack.ack().await.unwrap();
    }
    // Nothing more: the subscriber's result (which matches its own subscription) is not fed
    // back to it, and the delivered event is not taken in again.
    if let Ok(Some(extra)) = tokio::time::timeout(Duration::from_secs(2), results.recv()).await {
        panic!("an extra event came out: {}", extra.event.id());
    }
}

/// An output to `nats://…?jetstream=true` counts an event as delivered only once a stream has
/// stored it: while no stream captures the subject the event waits in the outbox (retried),
/// and once a stream appears it lands there, exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jetstream_output_holds_events_until_a_stream_stores_them() {
    let run = uuid::Uuid::new_v4().simple().to_string();
    let echo = support::guest("guest_echo");
    let (nats_in, out_prefix) = (
        format!("spindle.jsin.{run}"),
        format!("spindle.jsout.{run}"),
    );
    let out = format!("{out_prefix}.results");
    let manifest = format!(
        r#"spindle_manifest_version = 1
[application]
name = "jetstream-output"

[[trigger.nats]]
subject = "{nats_in}"
component = "echo"

[component.echo]
source = "{}"
[component.echo.outputs]
out = "nats://127.0.0.1:4222/{out}?jetstream=true"
"#,
        echo.display()
    );
    let _app = start(&manifest);

    let input = Sender::connect(
        &sink(&format!("nats://127.0.0.1:4222/{nats_in}")),
        SendOptions::default(),
    )
    .await
    .unwrap();
    input
        .send(&event("held-for-a-stream", "com.example.ping"))
        .await
        .unwrap();
    if let Sender::Nats(nats) = &input {
        nats.flush().await.unwrap();
    }

    // No stream yet: the result cannot be stored anywhere, so it must wait, not vanish.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let client = async_nats::connect("127.0.0.1:4222").await.unwrap();
    let js = async_nats::jetstream::new(client);
    let stream_name = format!("SPINDLEOUT{run}");
    js.create_stream(async_nats::jetstream::stream::Config {
        name: stream_name.clone(),
        subjects: vec![format!("{out_prefix}.>")],
        ..Default::default()
    })
    .await
    .unwrap();

    let mut stored = transports::nats::receive(transports::nats::NatsReceiverConfig {
        server: manifest::Endpoint::plain("127.0.0.1", 4222),
        subject: out.clone(),
        queue_group: None,
        jetstream: Some(transports::nats::JetStreamConfig {
            stream: stream_name.clone(),
            durable: Some("check".into()),
            ack_wait: Duration::from_secs(5),
            max_ack_pending: transports::nats::DEFAULT_MAX_ACK_PENDING,
        }),
    })
    .await
    .unwrap();
    let delivery = tokio::time::timeout(Duration::from_secs(30), stored.recv())
        .await
        .expect("the held result reached the stream once it existed")
        .unwrap();
    assert_eq!(delivery.event.id(), "held-for-a-stream");
    assert_eq!(delivery.event.source(), "/brokers-up");
    delivery.ack.ack().await.unwrap();
    if let Ok(Some(extra)) = tokio::time::timeout(Duration::from_secs(2), stored.recv()).await {
        panic!("stored twice: {}", extra.event.id());
    }
    js.delete_stream(&stream_name).await.unwrap();
}

/// A JetStream trigger's consumer is sized from the component: the server hands out at most
/// twice its `max_concurrency` unsettled messages (a backlog waits on the server, where it does
/// not time out), and waits for a settle at least twice the component's timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jetstream_consumer_is_sized_from_its_component() {
    let run = uuid::Uuid::new_v4().simple().to_string();
    let echo = support::guest("guest_echo");
    let (stream, subject, durable) = (
        format!("SIZED{run}"),
        format!("sized.{run}"),
        format!("sized-{run}"),
    );
    let js = async_nats::jetstream::new(async_nats::connect("127.0.0.1:4222").await.unwrap());
    js.create_stream(async_nats::jetstream::stream::Config {
        name: stream.clone(),
        subjects: vec![subject.clone()],
        ..Default::default()
    })
    .await
    .unwrap();
    let app = start(&format!(
        r#"spindle_manifest_version = 1
[application]
name = "sized"
[[trigger.nats]]
subject = "{subject}"
jetstream = {{ stream = "{stream}", durable = "{durable}" }}
component = "echo"
[component.echo]
source = "{}"
[component.echo.limits]
max_concurrency = 3
timeout = "20s"
"#,
        echo.display()
    ));
    let mut consumer: async_nats::jetstream::consumer::PullConsumer = js
        .get_stream(&stream)
        .await
        .unwrap()
        .get_consumer(&durable)
        .await
        .unwrap();
    let info = consumer.info().await.unwrap();
    assert_eq!(info.config.max_ack_pending, 6);
    assert_eq!(info.config.ack_wait, Duration::from_secs(40));
    drop(app);
    js.delete_stream(&stream).await.unwrap();
}
