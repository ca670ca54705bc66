//! Quotas from `spindle.toml` and the admin API to the running app: a subscription whose sink
//! is down takes events until its bound (`delivery.maxQueuedEvents`) or the app's
//! (`[application.store] max_queued_events`), then the HTTP trigger answers `503` with
//! `Retry-After` naming the bound, and nothing accepted is lost.

use std::process::Stdio;

use cloudevent::Event;

#[allow(dead_code)] // this file uses only some of the helpers
mod running;

fn event(i: usize) -> Event {
    Event::builder()
        .id(format!("q{i}"))
        .source("/quota")
        .ty("com.example.quota")
        .build()
        .unwrap()
}

/// A port nothing listens on: the sink is down for the whole test.
fn down_sink() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}/hook")
}

/// The admin API's `/metrics` text.
async fn metrics(admin: &str) -> String {
    reqwest::get(format!("{admin}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_queues_answer_503_with_retry_after_from_the_api_and_the_manifest() {
    let dir = tempfile::tempdir().unwrap();
    running::write_manifest(
        dir.path(),
        r#"spindle_manifest_version = 1

[application]
name = "quotas"

[application.store]
max_queued_events = 5

[[trigger.http]]
route = "/events"
"#,
    );
    let up = running::up(dir.path(), Stdio::null());
    let url = format!("{}/events", up.http);

    // The subscription's own bound: 3.
    let created = running::create_subscription(
        &up.admin,
        serde_json::json!({
            "sink": down_sink(), "protocol": "HTTP",
            "types": ["com.example.quota"],
            "delivery": {"maxQueuedEvents": 3, "initialBackoffMs": 60000, "maxBackoffMs": 60000}
        }),
    )
    .await;
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(created["delivery"]["maxQueuedEvents"], 3);
    for i in 0..3 {
        let (status, body) = running::post(&url, &event(i)).await;
        assert_eq!(status, 202, "{body}");
    }
    let refused = reqwest::Client::new()
        .post(&url)
        .headers(cloudevent::http::encode_binary(&event(3)).headers)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 503);
    assert!(refused.headers().contains_key("retry-after"));
    let body = refused.text().await.unwrap();
    assert!(body.contains("at its bound (3 of 3)"), "{body}");
    // What is queued shows in the metrics, bytes too.
    let text = metrics(&up.admin).await;
    assert!(
        text.contains(&format!("spindle_queue_depth{{subscription=\"{id}\"}} 3")),
        "{text}"
    );
    assert!(
        text.contains(&format!("spindle_queue_bytes{{subscription=\"{id}\"}}")),
        "{text}"
    );

    // The app's bound (5) across subscriptions: a second subscription takes 2 more, then 503.
    running::create_subscription(
        &up.admin,
        serde_json::json!({
            "sink": down_sink(), "protocol": "HTTP", "types": ["com.example.other"],
            "delivery": {"initialBackoffMs": 60000, "maxBackoffMs": 60000}
        }),
    )
    .await;
    let other = |i: usize| {
        Event::builder()
            .id(format!("o{i}"))
            .source("/quota")
            .ty("com.example.other")
            .build()
            .unwrap()
    };
    for i in 0..2 {
        let (status, body) = running::post(&url, &other(i)).await;
        assert_eq!(status, 202, "{body}");
    }
    let (status, body) = running::post(&url, &other(2)).await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("the app's queued events"), "{body}");
}
