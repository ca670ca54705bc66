//! Ordered delivery from the Subscriptions API to a real HTTP sink: a subscription with
//! `"delivery": {"ordered": true}` gets the events of one source in the order `spindle up`
//! accepted them, across a sink outage (503s) and a SIGKILL + restart of the app in between,
//! while a second source is delivered independently.

use std::process::Stdio;
use std::sync::atomic::Ordering;
use std::time::Duration;

use cloudevent::Event;

#[allow(dead_code)] // this file reads only some of what the helper reports
mod running;

const MANIFEST: &str = r#"spindle_manifest_version = 1
[application]
name = "ordered"

[[trigger.http]]
route = "/events"
"#;

fn event(source: &str, n: usize) -> Event {
    Event::builder()
        .id(format!("{n:03}"))
        .source(source)
        .ty("com.example.step")
        .build()
        .unwrap()
}

async fn post_all(url: &str, source: &str, range: std::ops::Range<usize>) {
    for n in range {
        let (status, body) = running::post(url, &event(source, n)).await;
        assert_eq!(status, 202, "event {n} of {source}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordered_delivery_survives_a_sink_outage_and_a_restart() {
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
            "delivery": {"ordered": true, "maxInFlight": 8,
                         "initialBackoffMs": 50, "maxBackoffMs": 400, "maxAttempts": null}
        }),
    )
    .await;
    assert_eq!(sub["delivery"]["ordered"], true, "{sub}");

    // While the sink answers 503: half of each source's events, then SIGKILL.
    let url = format!("{}/events", first.http);
    tokio::join!(post_all(&url, "/a", 0..20), post_all(&url, "/b", 0..20));
    first.child.kill().unwrap();
    first.child.wait().unwrap();

    let second = running::up(dir.path(), Stdio::inherit());
    let url = format!("{}/events", second.http);
    tokio::join!(post_all(&url, "/a", 20..40), post_all(&url, "/b", 20..40));
    // The sink comes back after a while of 503s.
    tokio::time::sleep(Duration::from_secs(2)).await;
    sink.down.store(false, Ordering::SeqCst);

    sink.wait_for(80).await;
    let received: Vec<(String, String)> = sink
        .header("ce-source")
        .into_iter()
        .zip(sink.header("ce-id"))
        .collect();
    for source in ["/a", "/b"] {
        let ids: Vec<&str> = received
            .iter()
            .filter(|(s, _)| s == source)
            .map(|(_, id)| id.as_str())
            .collect();
        let expected: Vec<String> = (0..40).map(|n| format!("{n:03}")).collect();
        assert_eq!(ids, expected, "source {source} in acceptance order");
    }
}
