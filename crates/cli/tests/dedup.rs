//! Idempotency windows, from the Subscriptions API and from `spindle.toml`, across a SIGKILL
//! and restart: a subscription with `dedupWindowMs` and a NATS trigger with `dedup_window`
//! each take a re-sent event (same `source` and `id`) as handled: acknowledged, not
//! delivered or handled again; a new event still goes through.

#[allow(dead_code)] // this file reads only some of what the helper reports
mod running;
#[path = "../../engine/tests/support/mod.rs"]
mod support;

use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::Duration;

use futures::StreamExt;

fn event(id: &str, ty: &str) -> cloudevent::Event {
    cloudevent::Event::builder()
        .id(id)
        .source("/dedup")
        .ty(ty)
        .build()
        .unwrap()
}

/// The ids that arrive on `subscriber` until `wanted` all came (or 60 s passed), then for
/// one more second, so a late duplicate would be seen.
async fn ids(subscriber: &mut async_nats::Subscriber, wanted: &[&str]) -> Vec<String> {
    let mut got = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut settle = None;
    loop {
        let until = settle.unwrap_or(deadline);
        match tokio::time::timeout_at(until, subscriber.next()).await {
            Ok(Some(message)) => {
                let id = message
                    .headers
                    .as_ref()
                    .and_then(|h| h.get("ce-id"))
                    .map(|v| v.to_string())
                    .unwrap_or_default();
                got.push(id);
            }
            Ok(None) => break,
            Err(_) if settle.is_some() => break,
            Err(_) => panic!("only {got:?} of {wanted:?} arrived"),
        }
        if settle.is_none() && wanted.iter().all(|w| got.iter().any(|g| g == w)) {
            settle = Some(tokio::time::Instant::now() + Duration::from_secs(1));
        }
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn re_sent_events_within_the_window_are_acknowledged_not_repeated_across_a_restart() {
    let run = uuid::Uuid::new_v4().simple().to_string();
    let echo = support::guest("guest_echo");
    let dir = tempfile::tempdir().unwrap();
    let (input, trigger_out, sub_out) = (
        format!("dedup.in.{run}"),
        format!("dedup.trigger.{run}"),
        format!("dedup.sub.{run}"),
    );
    running::write_manifest(
        dir.path(),
        &format!(
            r#"spindle_manifest_version = 1
[application]
name = "dedup"

[[trigger.http]]
route = "/events"

[[trigger.nats]]
subject = "{input}"
component = "echo"
dedup_window = "1h"

[component.echo]
source = "{}"
[component.echo.outputs]
out = "nats://127.0.0.1:4222/{trigger_out}"
"#,
            echo.display()
        ),
    );
    let nats = async_nats::connect("127.0.0.1:4222").await.unwrap();
    let mut from_trigger = nats.subscribe(trigger_out.clone()).await.unwrap();
    let mut from_sub = nats.subscribe(sub_out.clone()).await.unwrap();
    nats.flush().await.unwrap();

    let mut first = running::up(dir.path(), Stdio::inherit());
    let sub = running::create_subscription(
        &first.admin,
        serde_json::json!({
            "protocol": "NATS",
            "sink": format!("nats://127.0.0.1:4222/{sub_out}"),
            "types": ["com.example.sub"],
            "delivery": {"dedupWindowMs": 3_600_000}
        }),
    )
    .await;
    assert_eq!(sub["delivery"]["dedupWindowMs"], 3_600_000, "{sub}");

    let send = |base: String, input: String, nats: async_nats::Client| async move {
        let (status, body) =
            running::post(&format!("{base}/events"), &event("s1", "com.example.sub")).await;
        assert_eq!(status, 202, "{body}");
        let trig = serde_json::json!({"specversion": "1.0", "id": "t1", "source": "/dedup",
            "type": "com.example.trig"});
        nats.publish(input, trig.to_string().into()).await.unwrap();
        nats.flush().await.unwrap();
    };
    send(first.http.clone(), input.clone(), nats.clone()).await;
    assert_eq!(ids(&mut from_sub, &["s1"]).await, ["s1"]);
    assert_eq!(ids(&mut from_trigger, &["t1"]).await, ["t1"]);

    first.child.kill().unwrap();
    first.child.wait().unwrap();
    let second = running::up(dir.path(), Stdio::inherit());
    // The same events again, then new ones.
    send(second.http.clone(), input.clone(), nats.clone()).await;
    let (status, _) = running::post(
        &format!("{}/events", second.http),
        &event("s2", "com.example.sub"),
    )
    .await;
    assert_eq!(status, 202);
    let t2 = serde_json::json!({"specversion": "1.0", "id": "t2", "source": "/dedup",
        "type": "com.example.trig"});
    nats.publish(input.clone(), t2.to_string().into())
        .await
        .unwrap();
    nats.flush().await.unwrap();

    let got: BTreeSet<String> = ids(&mut from_sub, &["s2"]).await.into_iter().collect();
    assert_eq!(
        got,
        BTreeSet::from(["s2".to_owned()]),
        "s1 is not delivered twice"
    );
    let got: BTreeSet<String> = ids(&mut from_trigger, &["t2"]).await.into_iter().collect();
    assert_eq!(
        got,
        BTreeSet::from(["t2".to_owned()]),
        "t1 is not handled twice"
    );
}

/// An HTTP route with `dedup_window`: a re-sent event is answered `202` without running the
/// handler, across a SIGKILL and restart; the same component on a route without a window
/// shows (through its key-value counter) that it ran only once for that event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http_route_with_a_dedup_window_handles_a_re_sent_event_once_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    running::write_manifest(
        dir.path(),
        &format!(
            r#"spindle_manifest_version = 1
[application]
name = "route-dedup"
[[trigger.http]]
route = "/once"
component = "behaviours"
dedup_window = "10m"
[[trigger.http]]
route = "/always"
component = "behaviours"
[component.behaviours]
source = "{}"
key_value_stores = ["default"]
"#,
            support::guest("guest_behaviours").display()
        ),
    );
    let counter = event("e-1", "kv.counter");
    let first = running::up(dir.path(), Stdio::inherit());
    let (status, body) = running::post(&format!("{}/once", first.http), &counter).await;
    assert_eq!((status, body.as_str()), (200, "1"));
    let (status, body) = running::post(&format!("{}/once", first.http), &counter).await;
    assert_eq!(
        (status, body.as_str()),
        (202, ""),
        "a duplicate is not handled"
    );
    drop(first); // SIGKILL

    let second = running::up(dir.path(), Stdio::inherit());
    let (status, _) = running::post(&format!("{}/once", second.http), &counter).await;
    assert_eq!(status, 202, "the window holds across a restart");
    // The handler ran once for e-1: its counter is at 1 before this unguarded call.
    let (status, body) = running::post(&format!("{}/always", second.http), &counter).await;
    assert_eq!((status, body.as_str()), (200, "2"));
    // A new event goes through the guarded route.
    let (status, body) = running::post(
        &format!("{}/once", second.http),
        &event("e-2", "kv.counter"),
    )
    .await;
    assert_eq!((status, body.as_str()), (200, "1"));
}
