//! Loop protection through a running `spindle up`: two components subscribed to each other's
//! results would pass one event back and forth forever; past `max_hops` it is dead-lettered
//! with a reason naming the loop, and the bouncing stops.

#[allow(dead_code)] // this file reads only some of what the helper reports
mod running;
#[path = "../../engine/tests/support/mod.rs"]
mod support;

use std::process::Stdio;
use std::time::Duration;

use cloudevent::Event;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_components_feeding_each_other_stop_at_the_hop_limit() {
    let echo = support::guest("guest_echo");
    let dir = tempfile::tempdir().unwrap();
    running::write_manifest(
        dir.path(),
        &format!(
            r#"spindle_manifest_version = 1
[application]
name = "loops"
max_hops = 4
[[trigger.http]]
route = "/events"
[component.ping]
source = "{echo}"
[component.pong]
source = "{echo}"
"#,
            echo = echo.display()
        ),
    );
    let up = running::up(dir.path(), Stdio::inherit());
    let client = reqwest::Client::new();
    for component in ["ping", "pong"] {
        let r = client
            .post(format!("{}/subscriptions", up.admin))
            .header("content-type", "application/json")
            .body(
                serde_json::json!({
                    "protocol": "HTTP",
                    "sink": format!("component:{component}"),
                    "types": ["com.example.bounce"]
                })
                .to_string(),
            )
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    }

    let event = Event::builder()
        .id("ball")
        .source("/loops")
        .ty("com.example.bounce")
        .build()
        .unwrap();
    let (status, _) = running::post(&format!("{}/events", up.http), &event).await;
    assert_eq!(status, 202);

    // The ball matches both subscriptions, so two copies bounce (ping → pong → …, and
    // pong → ping → …); each is dead-lettered once it is past 4 hops, with the loop named.
    let letters = running::wait_for_dead_letters(&up.admin, 2).await;
    assert_eq!(letters.len(), 2, "{letters:?}");
    for letter in &letters {
        let text = letter.to_string();
        assert!(text.contains("loop protection"), "{text}");
        assert!(text.contains("\"spindlehops\":5"), "{text}");
        assert_eq!(letter["attempts"], 0, "{text}");
    }

    // And the bouncing has stopped: no more dead letters or deliveries appear.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let again = running::dead_letters(&up.admin).await;
    assert_eq!(again.len(), 2, "{again:?}");
}
