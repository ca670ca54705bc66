//! Poison messages on a broker trigger, through a running `spindle up` and RabbitMQ (AMQP
//! 1.0): a message its component refuses for good, and one it keeps failing, end up in the
//! trigger's dead-letter queue with the reason, and are acknowledged (not redelivered forever).

#[allow(dead_code)] // this file reads only some of what the helper reports
mod running;
#[path = "../../engine/tests/support/mod.rs"]
mod support;

use std::process::Stdio;
use std::time::Duration;

use cloudevent::Event;
use transports::{SendOptions, Sender};

fn event(id: &str, ty: &str) -> Event {
    Event::builder()
        .id(id)
        .source("/poison")
        .ty(ty)
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn poison_messages_are_dead_lettered_in_the_triggers_queue_and_acknowledged() {
    let run = uuid::Uuid::new_v4().simple().to_string();
    let queue = format!("/queue/spindle-poison-{run}");
    let behaviours = support::guest("guest_behaviours");
    let dir = tempfile::tempdir().unwrap();
    running::write_manifest(
        dir.path(),
        &format!(
            r#"spindle_manifest_version = 1
[application]
name = "poison"
[[trigger.amqp]]
source = "{queue}"
component = "behaviours"
max_deliveries = 2
[component.behaviours]
source = "{}"
"#,
            behaviours.display()
        ),
    );
    let up = running::up(dir.path(), Stdio::inherit());

    let sink: manifest::Sink = format!("amqp://127.0.0.1:5672{queue}").parse().unwrap();
    let sender = Sender::connect(&sink, SendOptions::default())
        .await
        .unwrap();
    sender
        .send(&event("refused", "fail.permanent"))
        .await
        .unwrap();
    sender
        .send(&event("failing", "fail.transient"))
        .await
        .unwrap();

    let letters = running::wait_for_dead_letters(&up.admin, 2).await;
    assert_eq!(letters.len(), 2, "{letters:?}");
    for letter in &letters {
        assert_eq!(letter["subscription"], "trigger:behaviours:0", "{letter}");
    }
    let reason_of = |id: &str| {
        letters
            .iter()
            .find(|l| l["event"]["id"] == id)
            .unwrap_or_else(|| panic!("no dead letter for {id}: {letters:?}"))["reason"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert!(
        reason_of("refused").contains("refused for good"),
        "{letters:?}"
    );
    let failing = reason_of("failing");
    assert!(failing.contains("2 times"), "{failing}");

    // Acknowledged: nothing comes back, so no more dead letters appear.
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(running::dead_letters(&up.admin).await.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_that_is_not_a_cloudevent_is_kept_whole_in_the_triggers_dead_letters() {
    let run = uuid::Uuid::new_v4().simple().to_string();
    let subject = format!("spindle.poison.{run}");
    let echo = support::guest("guest_echo");
    let dir = tempfile::tempdir().unwrap();
    running::write_manifest(
        dir.path(),
        &format!(
            r#"spindle_manifest_version = 1
[application]
name = "raw"
[[trigger.nats]]
subject = "{subject}"
component = "echo"
[component.echo]
source = "{}"
"#,
            echo.display()
        ),
    );
    let up = running::up(dir.path(), Stdio::null());
    let client = async_nats::connect("127.0.0.1:4222").await.unwrap();
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Content-Type", "text/plain");
    client
        .publish_with_headers(subject.clone(), headers, "hello, not an event".into())
        .await
        .unwrap();
    client.flush().await.unwrap();

    let letters = running::wait_for_dead_letters(&up.admin, 1).await;
    assert_eq!(letters.len(), 1, "{letters:?}");
    let letter = &letters[0];
    assert_eq!(letter["subscription"], "trigger:echo:0", "{letter}");
    let reason = letter["reason"].as_str().unwrap();
    assert!(reason.contains("not a CloudEvent"), "{reason}");
    let event = &letter["event"];
    assert_eq!(event["type"], transports::UNDECODABLE_TYPE, "{event}");
    assert_eq!(event["source"], format!("/nats/{subject}"), "{event}");
    assert_eq!(event["datacontenttype"], "text/plain", "{event}");
    assert_eq!(event["data"], "hello, not an event", "{event}");
}
