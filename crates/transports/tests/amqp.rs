//! AMQP 1.0 against the real RabbitMQ (rabbitmq_amqp1_0 plugin) on 127.0.0.1:5672.

mod common;

use std::time::Duration;

use common::*;
use fe2o3_amqp::types::messaging::Message;
use transports::amqp::{self, AmqpReceiverConfig, AmqpSender};
use transports::{Mode, Receiver};

const PORT: u16 = 5672;

async fn receiver(source: &str) -> Receiver {
    amqp::receive(AmqpReceiverConfig {
        broker: endpoint(PORT),
        source: source.to_owned(),
        credentials: None,
    })
    .await
    .unwrap()
}

async fn sender(address: &str, mode: Mode) -> AmqpSender {
    AmqpSender::connect(&endpoint(PORT), address, None, mode)
        .await
        .unwrap()
}

#[tokio::test]
async fn round_trip_in_both_modes_keeps_the_whole_event() {
    require(PORT, "rabbitmq-server");
    init_logs();
    let queue = format!("/queue/{}", unique("spindle-t-"));
    let mut rx = receiver(&queue).await;
    for mode in [Mode::Binary, Mode::Structured] {
        let tx = sender(&queue, mode).await;
        let event = sample(&format!("{mode}"));
        tx.send(&event).await.unwrap();
        let d = next(&mut rx).await;
        // AMQP carries extension types natively, so even binary mode keeps them.
        assert_eq!(d.event, event, "{mode} mode");
        d.ack.ack().await.unwrap();
        tx.close().await;
    }
}

#[tokio::test]
async fn exchange_addresses_route_to_bound_receivers() {
    require(PORT, "rabbitmq-server");
    let key = unique("key");
    let address = format!("/exchange/amq.topic/{key}");
    let mut rx = receiver(&address).await;
    let tx = sender(&address, Mode::Binary).await;
    tx.send(&sample("routed")).await.unwrap();
    let d = next(&mut rx).await;
    assert_eq!(d.event, sample("routed"));
    d.ack.ack().await.unwrap();
    tx.close().await;
}

#[tokio::test]
async fn released_messages_come_back_accepted_ones_do_not_and_bad_ones_are_kept_whole() {
    require(PORT, "rabbitmq-server");
    init_logs();
    let queue = format!("/queue/{}", unique("spindle-t-"));
    let mut rx = receiver(&queue).await;

    // A message that is not a CloudEvent, sent with fe2o3 directly.
    {
        let mut connection = fe2o3_amqp::Connection::builder()
            .container_id(unique("raw"))
            .sasl_profile(fe2o3_amqp::sasl_profile::SaslProfile::Anonymous)
            .open("amqp://127.0.0.1:5672")
            .await
            .unwrap();
        let mut session = fe2o3_amqp::Session::begin(&mut connection).await.unwrap();
        let mut raw = fe2o3_amqp::Sender::attach(&mut session, unique("raw"), queue.as_str())
            .await
            .unwrap();
        raw.send(Message::builder().value("just a string").build())
            .await
            .unwrap();
        raw.detach().await.unwrap();
        session.end().await.unwrap();
        connection.close().await.unwrap();
    }

    let tx = sender(&queue, Mode::Binary).await;
    tx.send(&sample("one")).await.unwrap();
    next_undecodable(&mut rx, b"just a string").await;
    let d = next(&mut rx).await;
    assert_eq!(d.event.id(), "one");
    d.ack.nak(None).await.unwrap();
    let d = next(&mut rx).await;
    assert_eq!(d.event.id(), "one", "a released message is redelivered");
    d.ack.nak(Some(Duration::from_millis(300))).await.unwrap();
    let d = next(&mut rx).await;
    assert_eq!(d.event.id(), "one", "released again after the delay");
    d.ack.ack().await.unwrap();

    tx.send(&sample("two")).await.unwrap();
    let d = next(&mut rx).await;
    assert_eq!(d.event.id(), "two");
    d.ack.reject("poison").await.unwrap();
    nothing_for(&mut rx, Duration::from_secs(1)).await;

    // A new link on the queue finds nothing: accepted and rejected messages are gone.
    drop(rx);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut rx = receiver(&queue).await;
    nothing_for(&mut rx, Duration::from_secs(2)).await;
    tx.close().await;
}

/// AMQP binding 3.1.4: receivers may accept other representations of an attribute's type. The
/// PyPI `cloudevents` AMQP binding (the most used Python SDK) writes `time` as an AMQP `long`
/// of milliseconds. Its message, exactly as the binding builds it (application properties
/// with their Python types, content type, body), sent over a plain AMQP link, is received with
/// `time` intact.
#[tokio::test]
async fn the_python_cloudevents_amqp_binding_is_received_with_time_as_a_long() {
    use fe2o3_amqp::types::messaging::{ApplicationProperties, Body, Data, Properties};
    use fe2o3_amqp::types::primitives::{Binary, SimpleValue, Symbol};
    require(PORT, "rabbitmq-server");
    python_with(&["cloudevents.core.bindings.amqp"], &["cloudevents>=2.2"]);
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(
            r#"
import datetime, json
from cloudevents.core.v1.event import CloudEvent
from cloudevents.core.bindings.amqp import to_binary_event
e = CloudEvent({"id": "py-amqp", "source": "/python", "type": "com.example.py", "specversion": "1.0",
                "time": datetime.datetime(2018, 4, 5, 3, 56, 24, tzinfo=datetime.timezone.utc),
                "datacontenttype": "application/json"}, {"i": 1})
m = to_binary_event(e)
print(json.dumps({"props": [[k, type(v).__name__, v] for k, v in m.application_properties.items()],
                  "content_type": m.properties.get("content-type"),
                  "body": m.application_data.decode()}))
"#,
        )
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let m: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut props = ApplicationProperties::default();
    for p in m["props"].as_array().unwrap() {
        let value = match p[1].as_str().unwrap() {
            "int" => SimpleValue::Long(p[2].as_i64().unwrap()),
            _ => SimpleValue::String(p[2].as_str().unwrap().to_owned()),
        };
        props.0.insert(p[0].as_str().unwrap().to_owned(), value);
    }
    assert!(
        matches!(props.0.get("cloudEvents_time"), Some(SimpleValue::Long(_))),
        "the Python binding writes time as a long: {m}"
    );
    let queue = format!("/queue/{}", unique("spindle-py-"));
    let mut rx = receiver(&queue).await;
    let mut connection = fe2o3_amqp::Connection::builder()
        .container_id(unique("py"))
        .sasl_profile(fe2o3_amqp::sasl_profile::SaslProfile::Anonymous)
        .open("amqp://127.0.0.1:5672")
        .await
        .unwrap();
    let mut session = fe2o3_amqp::Session::begin(&mut connection).await.unwrap();
    let mut raw = fe2o3_amqp::Sender::attach(&mut session, unique("py"), queue.as_str())
        .await
        .unwrap();
    let message = Message::builder()
        .properties(Properties {
            content_type: Some(Symbol(m["content_type"].as_str().unwrap().to_owned())),
            ..Default::default()
        })
        .application_properties(props)
        .body(Body::<fe2o3_amqp::types::primitives::Value>::Data(
            vec![Data(Binary::from(
                m["body"].as_str().unwrap().as_bytes().to_vec(),
            ))]
            .into(),
        ))
        .build();
    raw.send(message).await.unwrap();
    raw.detach().await.unwrap();
    session.end().await.unwrap();
    connection.close().await.unwrap();

    let d = next(&mut rx).await;
    assert_eq!(d.event.id(), "py-amqp");
    assert_eq!(d.event.time().unwrap().to_string(), "2018-04-05T03:56:24Z");
    assert_eq!(d.event.datacontenttype(), Some("application/json"));
    d.ack.ack().await.unwrap();
}
