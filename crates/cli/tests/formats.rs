//! The Protobuf and Avro event formats through a running app: a structured request in either
//! format is handled and answered in the same format, a malformed one is refused with `400`,
//! and an output with `format = "avro"` publishes `application/cloudevents+avro` to NATS.

#[allow(dead_code)] // this file reads only some of what the helper reports
mod running;
#[path = "../../engine/tests/support/mod.rs"]
mod support;

use std::process::Stdio;
use std::time::Duration;

use cloudevent::{Data, Event, Format};
use futures::StreamExt;
use serde_json::json;

async fn post(url: &str, content_type: &str, body: Vec<u8>) -> (u16, String, bytes::Bytes) {
    let response = reqwest::Client::new()
        .post(url)
        .header("content-type", content_type)
        .body(body)
        .timeout(Duration::from_secs(60))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, content_type, response.bytes().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protobuf_and_avro_events_flow_through_a_running_app() {
    let subject = format!("spindle.formats.{}", uuid::Uuid::new_v4().simple());
    let dir = tempfile::tempdir().unwrap();
    running::write_manifest(
        dir.path(),
        &format!(
            r#"spindle_manifest_version = 1
[application]
name = "formats"
[[trigger.http]]
route = "/in"
component = "behaviours"
[component.behaviours]
source = "{}"
[component.behaviours.outputs]
audit = {{ uri = "nats://127.0.0.1:4222/{subject}", format = "avro" }}
"#,
            support::guest("guest_behaviours").display()
        ),
    );
    let up = running::up(dir.path(), Stdio::inherit());
    let url = format!("{}/in", up.http);
    let nats = async_nats::connect("127.0.0.1:4222").await.unwrap();
    let mut published = nats.subscribe(subject.clone()).await.unwrap();
    nats.flush().await.unwrap();

    // Protobuf in, protobuf out.
    let order = Event::builder()
        .id("p1")
        .source("/test")
        .ty("json.transform")
        .data_with_type(
            "application/json",
            Data::json(&json!({"name": "ada", "qty": 4})),
        )
        .build()
        .unwrap();
    let (status, content_type, body) = post(
        &url,
        "application/cloudevents+protobuf",
        Format::Protobuf.encode(&order).to_vec(),
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(content_type, "application/cloudevents+protobuf");
    let reply = Format::Protobuf.decode(&body).unwrap();
    assert_eq!(reply.ty(), "json.transformed");
    let data: serde_json::Value = serde_json::from_slice(reply.data().unwrap().as_bytes()).unwrap();
    assert_eq!(data["double"], 8);

    // Avro in, avro out; what the component publishes reaches NATS in Avro.
    let publish = Event::builder()
        .id("a1")
        .source("/test")
        .ty("publish")
        .data_with_type("application/json", Data::json(&json!({"n": 1})))
        .build()
        .unwrap();
    let (status, content_type, body) = post(
        &url,
        "application/cloudevents+avro",
        Format::Avro.encode(&publish).to_vec(),
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(content_type, "application/cloudevents+avro");
    assert_eq!(Format::Avro.decode(&body).unwrap().id(), "a1");
    let message = tokio::time::timeout(Duration::from_secs(60), published.next())
        .await
        .expect("the output published within 60 s")
        .unwrap();
    let headers = message.headers.expect("structured mode names its format");
    assert_eq!(
        headers.get("Content-Type").map(|v| v.as_str()),
        Some("application/cloudevents+avro")
    );
    let audited = Format::Avro.decode(&message.payload).unwrap();
    assert_eq!(audited.ty(), "audited");

    // Bytes that are no Protobuf event: 400, saying so.
    let (status, _, body) = post(
        &url,
        "application/cloudevents+protobuf",
        vec![0xff, 0xff, 0xff],
    )
    .await;
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    assert!(
        String::from_utf8_lossy(&body).contains("malformed protobuf event"),
        "{}",
        String::from_utf8_lossy(&body)
    );
}
