//! The sequence extension on an ordered subscription, through `spindle up` and a real HTTP
//! sink: events of one source go in `sequence` order (numerically: 8, 9, 10), whatever order
//! they were accepted in, across a sink outage and a SIGKILL + restart; an event whose
//! sequence skips a number waits the subscription's `sequenceGapMs` for the missing one, then
//! goes anyway.

use std::process::Stdio;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use cloudevent::Event;

#[allow(dead_code)] // this file reads only some of what the helper reports
mod running;

const MANIFEST: &str = r#"spindle_manifest_version = 1
[application]
name = "sequenced"

[[trigger.http]]
route = "/events"
"#;

async fn post(url: &str, sequence: u32) {
    let event = Event::builder()
        .id(format!("s{sequence}"))
        .source("/counter")
        .ty("com.example.tick")
        .extension(
            "sequence",
            cloudevent::AttributeValue::String(sequence.to_string()),
        )
        .build()
        .unwrap();
    let (status, body) = running::post(url, &event).await;
    assert_eq!(status, 202, "sequence {sequence}: {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sequence_order_holds_across_an_outage_and_a_restart_and_gaps_wait_then_go() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("spindle.toml"), MANIFEST).unwrap();
    let sink = running::RecordingSink::start().await;
    sink.down.store(true, Ordering::SeqCst);

    let mut first = running::up(dir.path(), Stdio::inherit());
    let sub = running::create_subscription(
        &first.admin,
        serde_json::json!({
            "protocol": "HTTP",
            "sink": sink.url,
            "delivery": {"ordered": true, "sequenceGapMs": 1500,
                         "initialBackoffMs": 50, "maxBackoffMs": 400, "maxAttempts": null}
        }),
    )
    .await;
    assert_eq!(sub["delivery"]["sequenceGapMs"], 1500, "{sub}");

    // Out of order while the sink is down, with a SIGKILL in between.
    let url = format!("{}/events", first.http);
    post(&url, 10).await;
    post(&url, 8).await;
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    let second = running::up(dir.path(), Stdio::inherit());
    let url = format!("{}/events", second.http);
    post(&url, 9).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    sink.down.store(false, Ordering::SeqCst);
    sink.wait_for(3).await;
    assert_eq!(sink.header("ce-id"), ["s8", "s9", "s10"]);

    // 11 never comes: 12 waits for it about 1.5 s, then goes; 13 follows at once.
    let posted = Instant::now();
    post(&url, 12).await;
    post(&url, 13).await;
    sink.wait_for(5).await;
    assert_eq!(sink.header("ce-id")[3..], ["s12", "s13"]);
    let waited = sink.times()[3] - posted;
    assert!(
        waited >= Duration::from_millis(1200),
        "12 went after {waited:?}, without waiting for 11"
    );
}
