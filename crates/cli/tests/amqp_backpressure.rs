//! An AMQP trigger whose component handles one or two events at a time keeps going under a
//! backlog: the link task serves settlements while the trigger has no room for the next
//! message (it used to wait for room while the handlers waited for their settlements).

#[allow(dead_code)] // this file reads only some of what the helper reports
mod running;
#[path = "../../engine/tests/support/mod.rs"]
mod support;

use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::Duration;

use cloudevent::Event;
use futures::StreamExt;
use transports::{SendOptions, Sender};

const EVENTS: usize = 400;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_drains_at_max_concurrency_one_and_two() {
    let echo = support::guest("guest_echo");
    for concurrency in [1, 2] {
        let run = uuid::Uuid::new_v4().simple().to_string();
        let queue = format!("/queue/spindle-backlog-{run}");
        let out = format!("spindle.backlog.{run}");
        let nats = async_nats::connect("127.0.0.1:4222").await.unwrap();
        let mut results = nats.subscribe(out.clone()).await.unwrap();
        nats.flush().await.unwrap();

        // The backlog is on the broker before Spindle starts.
        let sink: manifest::Sink = format!("amqp://127.0.0.1:5672{queue}").parse().unwrap();
        let sender = Sender::connect(&sink, SendOptions::default())
            .await
            .unwrap();
        for i in 0..EVENTS {
            let event = Event::builder()
                .id(format!("e{i}"))
                .source("/backlog")
                .ty("com.example.backlog")
                .build()
                .unwrap();
            sender.send(&event).await.unwrap();
        }

        let dir = tempfile::tempdir().unwrap();
        running::write_manifest(
            dir.path(),
            &format!(
                r#"spindle_manifest_version = 1
[application]
name = "backlog"
[[trigger.amqp]]
source = "{queue}"
component = "echo"
[component.echo]
source = "{}"
[component.echo.limits]
max_concurrency = {concurrency}
[component.echo.outputs]
out = "nats://127.0.0.1:4222/{out}"
"#,
                echo.display()
            ),
        );
        let _up = running::up(dir.path(), Stdio::inherit());

        let mut seen = BTreeSet::new();
        while seen.len() < EVENTS {
            let message = tokio::time::timeout(Duration::from_secs(120), results.next())
                .await
                .unwrap_or_else(|_| {
                    panic!(
                        "max_concurrency {concurrency}: only {} of {EVENTS} came out",
                        seen.len()
                    )
                })
                .unwrap();
            let id = message
                .headers
                .as_ref()
                .and_then(|h| h.get("ce-id"))
                .map(|v| v.to_string())
                .unwrap_or_default();
            seen.insert(id);
        }
    }
}
