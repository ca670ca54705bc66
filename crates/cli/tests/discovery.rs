//! Two apps find each other through discovery: app B's `[[subscribe]]` names only app A's
//! registry; B finds A's Subscriptions API there, subscribes with its own route as the sink,
//! gets A's events, re-creates the subscription when it is deleted behind its back, and
//! withdraws it when it stops. `spindle discover` shows what A offers and how to subscribe.

#[allow(dead_code)] // this file reads only some of what the helper reports
mod running;
#[path = "../../engine/tests/support/mod.rs"]
mod support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use cloudevent::Event;
use serde_json::{Value, json};

async fn subscriptions(admin: &str) -> Vec<Value> {
    let text = reqwest::get(format!("{admin}/subscriptions"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    serde_json::from_str::<Value>(&text)
        .unwrap()
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Polls until `check` holds (panics after 60 s, naming `what`).
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(60);
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_b_subscribes_to_app_a_through_its_registry_and_unsubscribes_on_stop() {
    let behaviours = support::guest("guest_behaviours");
    let a_dir = tempfile::tempdir().unwrap();
    running::write_manifest(
        a_dir.path(),
        &format!(
            r#"spindle_manifest_version = 1
[application]
name = "a"
[[trigger.http]]
route = "/in"
component = "behaviours"
[component.behaviours]
source = "{}"
consumes = ["fanout"]
produces = [{{ type = "fanout.item", description = "One of three" }}]
"#,
            behaviours.display()
        ),
    );
    let a = running::up(a_dir.path(), Stdio::inherit());

    // What A offers, as a user would look it up.
    let discovered = Command::new(env!("CARGO_BIN_EXE_spindle"))
        .args(["discover", &a.admin])
        .output()
        .unwrap();
    assert!(discovered.status.success(), "{discovered:?}");
    let text = String::from_utf8_lossy(&discovered.stdout);
    assert!(text.contains("fanout.item"), "{text}");
    assert!(
        text.contains(&format!("{}/subscriptions", a.admin)),
        "{text}"
    );
    assert!(text.contains("[[subscribe]]"), "{text}");

    let b_dir = tempfile::tempdir().unwrap();
    running::write_manifest(
        b_dir.path(),
        &format!(
            r#"spindle_manifest_version = 1
[application]
name = "b"
[[trigger.http]]
route = "/from-a"
[[subscribe]]
registry = "{}/registry"
route = "/from-a"
types = ["fanout.item"]
refresh = "1s"
"#,
            a.admin
        ),
    );
    let mut b = running::up(b_dir.path(), Stdio::inherit());
    let b_sink = format!("{}/from-a", b.http);

    // B forwards what it gets to a sink of the test's, through its own Subscriptions API.
    let sink = running::RecordingSink::start().await;
    running::create_subscription(&b.admin, json!({ "sink": sink.url, "protocol": "HTTP" })).await;

    eventually("B's subscription at A", || async {
        subscriptions(&a.admin)
            .await
            .iter()
            .any(|s| s["sink"] == b_sink.as_str())
    })
    .await;
    let at_a = subscriptions(&a.admin).await;
    let mine = at_a.iter().find(|s| s["sink"] == b_sink.as_str()).unwrap();
    assert_eq!(mine["types"], json!(["fanout.item"]));

    // An event into A: its three results reach B, and through B the test's sink; the event
    // itself (type `fanout`) is not what B asked for.
    let event = Event::builder()
        .id("e1")
        .source("/test")
        .ty("fanout")
        .build()
        .unwrap();
    let (status, body) = running::post(&format!("{}/in", a.http), &event).await;
    assert_eq!(status, 200, "{body}");
    sink.wait_for(3).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(sink.header("ce-type"), vec!["fanout.item"; 3]);

    // Deleted behind B's back: B notices and subscribes again.
    let id = mine["id"].as_str().unwrap();
    let deleted = reqwest::Client::new()
        .delete(format!("{}/subscriptions/{id}", a.admin))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
    eventually("B's subscription re-created", || async {
        subscriptions(&a.admin)
            .await
            .iter()
            .any(|s| s["sink"] == b_sink.as_str() && s["id"] != id)
    })
    .await;

    // B stops (SIGTERM): its subscription at A goes with it.
    let pid = b.child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while b.child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "B did not stop");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        !subscriptions(&a.admin)
            .await
            .iter()
            .any(|s| s["sink"] == b_sink.as_str()),
        "B's subscription outlived B"
    );
}

/// A subscriber killed without its shutdown (SIGKILL) leaves its subscription at the remote;
/// when it starts again it adopts that one instead of making a second.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_subscriber_adopts_its_subscription_instead_of_duplicating_it() {
    let a_dir = tempfile::tempdir().unwrap();
    running::write_manifest(
        a_dir.path(),
        "spindle_manifest_version = 1\n[application]\nname = \"a\"\n[[trigger.http]]\nroute = \"/in\"\n",
    );
    let a = running::up(a_dir.path(), Stdio::inherit());
    let b_dir = tempfile::tempdir().unwrap();
    // A fixed public URL: the sink is the same whatever port each run listens on.
    let public_url = format!("http://127.0.0.1:9/b-{}", std::process::id());
    running::write_manifest(
        b_dir.path(),
        &format!(
            r#"spindle_manifest_version = 1
[application]
name = "b"
public_url = "{}"
[[trigger.http]]
route = "/from-a"
[[subscribe]]
api = "{}/subscriptions"
route = "/from-a"
types = ["x.y"]
refresh = "1s"
"#,
            public_url, a.admin
        ),
    );
    let expected_sink = format!("{public_url}/from-a");
    let mine = |subs: Vec<Value>| -> Vec<String> {
        subs.iter()
            .filter(|s| s["sink"] == expected_sink.as_str())
            .map(|s| s["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let first = running::up(b_dir.path(), Stdio::inherit());
    eventually("B's subscription at A", || async {
        !mine(subscriptions(&a.admin).await).is_empty()
    })
    .await;
    let before = mine(subscriptions(&a.admin).await);
    drop(first); // SIGKILL: no unsubscribe

    let second = running::up(b_dir.path(), Stdio::inherit());
    // Two refreshes later there is still exactly the one subscription.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(mine(subscriptions(&a.admin).await), before);
    drop(second);
}
