//! End-to-end delivery tests against a real HTTP sink on 127.0.0.1.

mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use cloudevent::AttributeValue;
use delivery::{ContentMode, DeadLetterSelector, SubscriptionId};
use http::Method;
use support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivers_in_order() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let sink = TestSink::start(|_, _, _| Reply::ok()).await;
    let engine = open(dir.path()).await;
    let mut sub = subscription("s1", &sink.url());
    sub.delivery.max_in_flight = 1;
    assert!(engine.put_subscription(sub).await.unwrap());
    let id = SubscriptionId::new("s1");
    let events: Vec<_> = (0..50).map(|i| (id.clone(), event(i))).collect();
    assert_eq!(engine.outbox().enqueue(events).await.unwrap(), 50);
    assert!(wait_until(PATIENCE, || sink.state.delivered().len() >= 50).await);
    let expected: Vec<String> = (0..50).map(|i| format!("e{i}")).collect();
    assert_eq!(sink.state.delivered_ids(), expected);
    // Binary mode by default: attributes in headers, data as the body.
    let first = &sink.state.seen()[0];
    assert_eq!(first.method, Method::POST);
    assert_eq!(first.headers["ce-id"], "e0");
    assert_eq!(first.headers["content-type"], "application/json");
    assert!(wait_until(PATIENCE, || engine.pending(Some(&id)) == 0).await);
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn structured_mode_and_settings_headers() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let sink = TestSink::start(|_, _, _| Reply::status(200)).await;
    let engine = open(dir.path()).await;
    let mut sub = subscription("s", &sink.url());
    sub.delivery.mode = ContentMode::Structured;
    sub.protocolsettings = Some(serde_json::json!({"headers": {"x-tenant": "acme"}}));
    sub.sinkcredential = Some(serde_json::json!({
        "credentialtype": "ACCESSTOKEN", "accesstoken": "t0k", "accesstokenexpiresutc": "2099-01-01T00:00:00Z"
    }));
    engine.put_subscription(sub).await.unwrap();
    engine
        .outbox()
        .enqueue(vec![(SubscriptionId::new("s"), event(1))])
        .await
        .unwrap();
    assert!(wait_until(PATIENCE, || sink.state.delivered().len() == 1).await);
    let seen = &sink.state.seen()[0];
    assert!(
        seen.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/cloudevents+json")
    );
    assert_eq!(seen.headers["x-tenant"], "acme");
    assert_eq!(seen.headers["authorization"], "Bearer t0k");
    assert_eq!(seen.event.as_ref().unwrap(), &event(1));
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sink_down_then_back_gets_everything() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let addr = free_addr().await;
    let engine = open(dir.path()).await;
    engine
        .put_subscription(subscription("s", &format!("http://{addr}/hook")))
        .await
        .unwrap();
    let id = SubscriptionId::new("s");
    let events: Vec<_> = (0..40).map(|i| (id.clone(), event(i))).collect();
    engine.outbox().enqueue(events).await.unwrap();
    // Let a few attempts fail against the closed port.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(engine.pending(Some(&id)), 40);
    let sink = TestSink::start_on(addr, |_, _, _| Reply::ok()).await;
    assert!(wait_until(PATIENCE, || sink.state.delivered().len() >= 40).await);
    let mut ids = sink.state.delivered_ids();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 40);
    assert!(wait_until(PATIENCE, || engine.pending(None) == 0).await);
    assert!(engine.dead_letters(None, 100).unwrap().is_empty());
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_honoured() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let sink = TestSink::start(|_, _, n| {
        if n == 0 {
            Reply::status(429).header("retry-after", "2")
        } else {
            Reply::ok()
        }
    })
    .await;
    let engine = open(dir.path()).await;
    engine
        .put_subscription(subscription("s", &sink.url()))
        .await
        .unwrap();
    let id = SubscriptionId::new("s");
    let outbox = engine.outbox();
    outbox.enqueue(vec![(id.clone(), event(1))]).await.unwrap();
    assert!(wait_until(PATIENCE, || !sink.state.seen().is_empty()).await);
    // Events arriving meanwhile wait too: the whole sink asked for a pause.
    outbox
        .enqueue(vec![(id.clone(), event(2)), (id.clone(), event(3))])
        .await
        .unwrap();
    assert!(wait_until(PATIENCE, || sink.state.delivered().len() == 3).await);
    let seen = sink.state.seen();
    assert_eq!(seen.len(), 4);
    assert_eq!(seen[0].status, 429);
    let waited = seen[1].at - seen[0].at;
    // The backoff alone would be ~20 ms; Retry-After says 2 s.
    assert!(waited >= Duration::from_millis(1900), "{waited:?}");
    assert!(waited < Duration::from_secs(20), "{waited:?}");
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_request_is_dead_lettered_then_replayed() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let sink =
        TestSink::start(|_, _, _| Reply::status(400).body("internal: db=10.0.0.5 pw=x")).await;
    let engine = open(dir.path()).await;
    engine
        .put_subscription(subscription("s", &sink.url()))
        .await
        .unwrap();
    let id = SubscriptionId::new("s");
    engine
        .outbox()
        .enqueue(vec![(id.clone(), event(7))])
        .await
        .unwrap();
    assert!(
        wait_until(PATIENCE, || engine
            .dead_letters(Some(&id), 10)
            .unwrap()
            .len()
            == 1)
        .await
    );
    // A permanent failure is not retried.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(sink.state.seen().len(), 1);
    assert_eq!(engine.pending(Some(&id)), 0);
    let letter = engine.dead_letters(Some(&id), 10).unwrap().remove(0);
    assert_eq!(letter.subscription, id);
    assert_eq!(letter.attempts, 1);
    assert_eq!(letter.status, Some(400));
    // The reason names the status and the body's size, never the body: whoever reads dead
    // letters must not read what an endpoint they point a subscription at answers.
    assert_eq!(letter.reason, "HTTP 400 Bad Request (26-byte body)");
    assert_eq!(letter.event.id(), "e7");
    assert_eq!(
        letter.event.extension("deadletterstatus"),
        Some(&AttributeValue::Integer(400))
    );
    assert_eq!(
        letter.event.extension("deadletterattempts"),
        Some(&AttributeValue::Integer(1))
    );
    assert!(matches!(
        letter.event.extension("deadletterreason"),
        Some(AttributeValue::String(r)) if r.contains("400")
    ));
    assert_eq!(engine.dead_letters(None, 10).unwrap().len(), 1);

    // The sink is fixed: replay.
    sink.set_behaviour(|_, _, _| Reply::ok());
    let replayed = engine
        .replay_dead_letters(DeadLetterSelector::Subscription(id.clone()))
        .await
        .unwrap();
    assert_eq!(replayed, 1);
    assert!(wait_until(PATIENCE, || sink.state.delivered().len() == 1).await);
    let delivered = sink.state.delivered().remove(0);
    assert_eq!(
        delivered,
        event(7),
        "replayed without the deadletter extensions"
    );
    assert!(engine.dead_letters(None, 10).unwrap().is_empty());
    assert!(wait_until(PATIENCE, || engine.pending(None) == 0).await);
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_attempts_then_dead_letter_and_purge() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let sink = TestSink::start(|_, _, _| Reply::status(500)).await;
    let engine = open(dir.path()).await;
    let mut sub = subscription("s", &sink.url());
    sub.delivery.max_attempts = Some(3);
    engine.put_subscription(sub).await.unwrap();
    let id = SubscriptionId::new("s");
    engine
        .outbox()
        .enqueue(vec![(id.clone(), event(1)), (id.clone(), event(2))])
        .await
        .unwrap();
    assert!(
        wait_until(PATIENCE, || engine
            .dead_letters(Some(&id), 10)
            .unwrap()
            .len()
            == 2)
        .await
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.state.seen().len(), 6, "3 attempts each, no more");
    for letter in engine.dead_letters(Some(&id), 10).unwrap() {
        assert_eq!(letter.attempts, 3);
        assert_eq!(letter.status, Some(500));
        assert!(
            letter.reason.contains("gave up after 3 attempts"),
            "{}",
            letter.reason
        );
    }
    let one = engine.dead_letters(Some(&id), 10).unwrap()[0].seq;
    let purged = engine
        .purge_dead_letters(DeadLetterSelector::One(id.clone(), one))
        .await
        .unwrap();
    assert_eq!(purged, 1);
    assert_eq!(
        engine
            .purge_dead_letters(DeadLetterSelector::All)
            .await
            .unwrap(),
        1
    );
    assert!(engine.dead_letters(None, 10).unwrap().is_empty());
    assert_eq!(engine.pending(None), 0);
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_deliveries_and_subscriptions_survive_a_restart() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let addr = free_addr().await;
    let mut sub = subscription("durable", &format!("http://{addr}/hook"));
    sub.filters = Some(vec![
        serde_json::json!({"exact": {"type": "com.example.test"}}),
    ]);
    sub.delivery.max_in_flight = 1;
    {
        let engine = open(dir.path()).await;
        engine.put_subscription(sub.clone()).await.unwrap();
        let events: Vec<_> = (0..25).map(|i| (sub.id.clone(), event(i))).collect();
        assert_eq!(engine.outbox().enqueue(events).await.unwrap(), 25);
        tokio::time::sleep(Duration::from_millis(100)).await;
        engine.shutdown().await;
    }
    let sink = TestSink::start_on(addr, |_, _, _| Reply::ok()).await;
    let engine = open(dir.path()).await;
    assert_eq!(engine.subscriptions().len(), 1);
    assert_eq!(*engine.subscription(&sub.id).unwrap(), sub);
    assert!(wait_until(PATIENCE, || sink.state.delivered().len() >= 25).await);
    // Unordered subscription: entries retried before the restart may come later.
    let mut ids = sink.state.delivered_ids();
    ids.sort_by_key(|id| id[1..].parse::<usize>().unwrap());
    let expected: Vec<String> = (0..25).map(|i| format!("e{i}")).collect();
    assert_eq!(ids, expected);
    assert!(wait_until(PATIENCE, || engine.pending(None) == 0).await);
    engine.shutdown().await;

    // Acknowledgements were durable too: nothing is sent again after another restart.
    let engine = open(dir.path()).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(sink.state.delivered().len(), 25);
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_in_flight_is_respected() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let sink = TestSink::start(|_, _, _| Reply::ok().delay(Duration::from_millis(50))).await;
    let engine = open(dir.path()).await;
    let mut sub = subscription("s", &sink.url());
    sub.delivery.max_in_flight = 3;
    engine.put_subscription(sub).await.unwrap();
    let id = SubscriptionId::new("s");
    let events: Vec<_> = (0..30).map(|i| (id.clone(), event(i))).collect();
    engine.outbox().enqueue(events).await.unwrap();
    assert!(wait_until(PATIENCE, || sink.state.delivered().len() >= 30).await);
    let max = sink
        .state
        .max_in_flight
        .load(std::sync::atomic::Ordering::SeqCst);
    assert!(max <= 3, "{max} concurrent requests");
    assert!(max >= 2, "sends should overlap, saw {max}");
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ordered_per_partition_key_across_retries() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    // Every fourth request fails, and answers take a little while, so unordered delivery
    // would reorder.
    let sink = TestSink::start(|_, _, n| {
        if n % 4 == 1 {
            Reply::status(503)
        } else {
            Reply::ok().delay(Duration::from_millis(fastrand_ms(n)))
        }
    })
    .await;
    let engine = open(dir.path()).await;
    let mut sub = subscription("s", &sink.url());
    sub.delivery.max_in_flight = 8;
    sub.delivery.ordered_by_partitionkey = true;
    engine.put_subscription(sub).await.unwrap();
    let id = SubscriptionId::new("s");
    let keys = ["a", "b", "c", "d"];
    let mut events = Vec::new();
    for i in 0..60 {
        let mut e = event(i);
        e.set_extension(
            "partitionkey",
            AttributeValue::String(keys[i % keys.len()].into()),
        )
        .unwrap();
        events.push((id.clone(), e));
    }
    engine.outbox().enqueue(events).await.unwrap();
    assert!(wait_until(PATIENCE, || sink.state.delivered().len() >= 60).await);
    let mut per_key: HashMap<String, Vec<usize>> = HashMap::new();
    for e in sink.state.delivered() {
        let Some(AttributeValue::String(k)) = e.extension("partitionkey") else {
            panic!("no key");
        };
        let i: usize = e.id()[1..].parse().unwrap();
        per_key.entry(k.clone()).or_default().push(i);
    }
    for (key, order) in &per_key {
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(order, &sorted, "key {key} out of order");
        assert_eq!(order.len(), 15);
    }
    let max = sink
        .state
        .max_in_flight
        .load(std::sync::atomic::Ordering::SeqCst);
    assert!(max <= 4, "at most one in flight per key, saw {max}");
    engine.shutdown().await;
}

/// A cheap deterministic "random" delay of 0–15 ms.
fn fastrand_ms(n: usize) -> u64 {
    ((n * 7919) % 16) as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_a_subscription_drops_its_queue() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let addr = free_addr().await;
    let engine = open(dir.path()).await;
    engine
        .put_subscription(subscription("gone", &format!("http://{addr}/hook")))
        .await
        .unwrap();
    engine
        .put_subscription(subscription("kept", &format!("http://{addr}/hook")))
        .await
        .unwrap();
    let (gone, kept) = (SubscriptionId::new("gone"), SubscriptionId::new("kept"));
    let events = vec![(gone.clone(), event(1)), (kept.clone(), event(2))];
    assert_eq!(engine.outbox().enqueue(events).await.unwrap(), 2);
    assert!(engine.delete_subscription(&gone).await.unwrap());
    assert!(!engine.delete_subscription(&gone).await.unwrap());
    assert_eq!(engine.pending(Some(&gone)), 0);
    assert_eq!(engine.pending(Some(&kept)), 1);
    assert!(engine.subscription(&gone).is_none());
    // Events for unknown subscriptions are not queued.
    let unknown = vec![(gone.clone(), event(3))];
    assert_eq!(engine.outbox().enqueue(unknown).await.unwrap(), 0);
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_handshake_precedes_delivery() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let sink = TestSink::start(|method, _, _| {
        if method == Method::OPTIONS {
            Reply::ok().header("webhook-allowed-origin", "spindle.example.com")
        } else {
            Reply::ok()
        }
    })
    .await;
    let engine = open(dir.path()).await;
    let mut sub = subscription("s", &sink.url());
    sub.config = Some([("webhookorigin".to_owned(), "spindle.example.com".to_owned())].into());
    engine.put_subscription(sub).await.unwrap();
    let id = SubscriptionId::new("s");
    let events = vec![(id.clone(), event(1)), (id.clone(), event(2))];
    engine.outbox().enqueue(events).await.unwrap();
    assert!(wait_until(PATIENCE, || sink.state.delivered().len() >= 2).await);
    let seen = sink.state.seen();
    assert_eq!(seen[0].method, Method::OPTIONS);
    assert_eq!(
        seen[0].headers["webhook-request-origin"],
        "spindle.example.com"
    );
    assert_eq!(
        seen.iter().filter(|s| s.method == Method::OPTIONS).count(),
        1
    );
    assert_eq!(
        seen[1].headers["webhook-request-origin"],
        "spindle.example.com"
    );
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_subscriptions_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let engine = open(dir.path()).await;
    let err = engine
        .put_subscription(subscription("s", "nats://localhost:4222"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("nats"), "{err}");
    let mut sub = subscription("s", "http://127.0.0.1:1/");
    sub.protocolsettings = Some(serde_json::json!({"headers": {"bad header": "x"}}));
    assert!(engine.put_subscription(sub).await.is_err());
    assert!(engine.subscriptions().is_empty());
    let start = Instant::now();
    engine.shutdown().await;
    assert!(start.elapsed() < Duration::from_secs(10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_paces_deliveries() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let sink = TestSink::start(|_, _, _| Reply::ok()).await;
    let engine = open(dir.path()).await;
    let mut sub = subscription("s", &sink.url());
    sub.delivery.rate_limit = Some(20.0);
    engine.put_subscription(sub).await.unwrap();
    let id = SubscriptionId::new("s");
    let events: Vec<_> = (0..30).map(|i| (id.clone(), event(i))).collect();
    engine.outbox().enqueue(events).await.unwrap();
    assert!(wait_until(PATIENCE, || sink.state.delivered().len() >= 30).await);
    let seen = sink.state.seen();
    // A burst of 20, then 20 per second: the last 10 need at least ~0.5 s.
    let span = seen[29].at - seen[0].at;
    assert!(span >= Duration::from_millis(400), "{span:?}");
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn max_age_dead_letters_what_cannot_be_delivered_in_time() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let sink = TestSink::start(|_, _, _| Reply::status(503)).await;
    let engine = open(dir.path()).await;
    let mut sub = subscription("s", &sink.url());
    sub.delivery.max_attempts = None;
    sub.delivery.max_age = Some(Duration::from_millis(300));
    engine.put_subscription(sub).await.unwrap();
    let id = SubscriptionId::new("s");
    let letter = dead_letter_of(&engine, &id, event(1)).await;
    assert!(letter.reason.contains("maximum age"), "{}", letter.reason);
    assert_eq!(letter.status, Some(503));
    assert!(letter.attempts >= 1);
    engine.shutdown().await;
}

#[test]
fn engine_handles_are_shareable() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<delivery::Delivery>();
    assert_send_sync::<delivery::Outbox>();
    assert_send_sync::<delivery::SinkRegistry>();
}

/// An idle subscription with a healthy sink gets its events sent before `enqueue` returns
/// (nothing queued, nothing written); a failing first attempt is queued and retried by the
/// worker like any other, counting as attempt 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_subscriptions_get_events_directly_and_failures_are_queued() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let fail_next = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let failing = fail_next.clone();
    let sink = TestSink::start(move |_, _, _| {
        if failing.swap(false, std::sync::atomic::Ordering::SeqCst) {
            Reply::status(503)
        } else {
            Reply::ok()
        }
    })
    .await;
    let engine = open(dir.path()).await;
    let mut sub = subscription("s", &sink.url());
    sub.delivery.max_attempts = Some(2);
    engine.put_subscription(sub).await.unwrap();
    let id = SubscriptionId::new("s");
    let outbox = engine.outbox();

    // The worker becomes idle right after it starts; until then events are queued. Either
    // way each call is accepted; once idle, a whole call is at the sink when it returns.
    let mut direct = false;
    for round in 0..50 {
        let events: Vec<_> = (0..10)
            .map(|i| (id.clone(), event(round * 10 + i)))
            .collect();
        let before = sink.state.delivered().len();
        assert_eq!(outbox.enqueue(events).await.unwrap(), 10);
        if sink.state.delivered().len() == before + 10 {
            direct = true;
            break;
        }
        assert!(wait_until(PATIENCE, || engine.pending(None) == 0).await);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(direct, "an idle subscription should take events directly");
    assert_eq!(engine.pending(None), 0);

    // A first attempt that fails is queued (attempt 1 spent) and retried by the worker.
    let delivered = sink.state.delivered().len();
    fail_next.store(true, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(
        outbox
            .enqueue(vec![(id.clone(), event(999))])
            .await
            .unwrap(),
        1
    );
    assert!(wait_until(PATIENCE, || sink.state.delivered().len() == delivered + 1).await);
    assert!(wait_until(PATIENCE, || engine.pending(None) == 0).await);
    let seen = sink.state.seen();
    let attempts: Vec<u16> = seen
        .iter()
        .filter(|r| r.headers["ce-id"] == "e999")
        .map(|r| r.status)
        .collect();
    assert_eq!(attempts.len(), 2, "{attempts:?}");
    assert_eq!(attempts[0], 503);
    assert!((200..300).contains(&attempts[1]), "{attempts:?}");
    assert!(engine.dead_letters(None, 10).unwrap().is_empty());
    engine.shutdown().await;
}

/// A sink answering a queued retry with `429` and an absurd `Retry-After` used to panic the
/// subscription's worker (`Instant + Duration` overflow), which then delivered nothing more.
/// Now the event is dead-lettered naming the limit, and the subscription keeps delivering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_absurd_retry_after_dead_letters_and_the_subscription_keeps_delivering() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let sink = TestSink::start(|_, _, n| match n {
        0 => Reply::status(503),
        1 => Reply::status(429).header("retry-after", "9241818780928485360"),
        _ => Reply::ok(),
    })
    .await;
    let engine = open(dir.path()).await;
    let mut sub = subscription("s", &sink.url());
    sub.delivery.max_age = None;
    engine.put_subscription(sub).await.unwrap();
    let id = SubscriptionId::new("s");
    let letter = dead_letter_of(&engine, &id, event(1)).await;
    assert!(
        letter.reason.contains("retry-after of"),
        "{}",
        letter.reason
    );
    assert_eq!(letter.status, Some(429));
    engine
        .outbox()
        .enqueue(vec![(id.clone(), event(2))])
        .await
        .unwrap();
    assert!(wait_until(PATIENCE, || sink.state.delivered_ids() == ["e2"]).await);
    engine.shutdown().await;
}

/// Webhook spec 2.2: "If a delivery target has been retired, but the HTTP site still exists,
/// the site SHOULD return a 410 Gone status code and the sender SHOULD refrain from sending
/// any further notifications."
///
/// The first 410 disables the subscription (durably, visibly in its `config`); the events
/// still pending are dead-lettered unsent with a reason naming the 410, as is everything
/// routed to it later, across a restart; storing the subscription again enables it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gone_disables_the_subscription_until_it_is_stored_again() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    // Five 500s (every event fails once and waits for a retry), then 410 Gone.
    let sink = TestSink::start(|_, _, n| {
        if n < 5 {
            Reply::status(500)
        } else {
            Reply::status(410)
        }
    })
    .await;
    let engine = open(dir.path()).await;
    let mut sub = subscription("s", &sink.url());
    sub.delivery.max_in_flight = 1;
    engine.put_subscription(sub).await.unwrap();
    let id = SubscriptionId::new("s");
    let events: Vec<_> = (0..5).map(|i| (id.clone(), event(i))).collect();
    engine.outbox().enqueue(events).await.unwrap();
    assert!(
        wait_until(PATIENCE, || engine.dead_letters(None, 100).unwrap().len()
            == 5)
        .await
    );
    // One 410, and nothing sent after it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let seen = sink.state.seen();
    assert_eq!(seen.len(), 6, "{seen:?}");
    assert_eq!(seen[5].status, 410);
    assert_eq!(engine.pending(Some(&id)), 0);
    let letters = engine.dead_letters(None, 100).unwrap();
    let gone: Vec<_> = letters.iter().filter(|l| l.status == Some(410)).collect();
    assert_eq!(gone.len(), 1, "{letters:?}");
    assert!(gone[0].reason.contains("410 Gone"), "{}", gone[0].reason);
    assert!(gone[0].reason.contains("disabled"), "{}", gone[0].reason);
    for letter in letters.iter().filter(|l| l.status != Some(410)) {
        assert!(
            letter.reason.contains("subscription disabled") && letter.reason.contains("410 Gone"),
            "{}",
            letter.reason
        );
    }
    // The subscription says it is disabled, and why.
    assert!(
        wait_until(PATIENCE, || engine
            .subscription(&id)
            .is_some_and(|s| s.disabled().is_some()))
        .await
    );
    let why = engine
        .subscription(&id)
        .unwrap()
        .disabled()
        .unwrap()
        .to_owned();
    assert!(why.contains("410 Gone"), "{why}");
    let json = serde_json::to_value(&*engine.subscription(&id).unwrap()).unwrap();
    assert_eq!(json["config"][delivery::CONFIG_DISABLED], why.as_str());

    // Later events are not sent either: dead-lettered at once.
    sink.set_behaviour(|_, _, _| Reply::ok());
    engine
        .outbox()
        .enqueue(vec![(id.clone(), event(5))])
        .await
        .unwrap();
    assert!(
        wait_until(PATIENCE, || engine.dead_letters(None, 100).unwrap().len()
            == 6)
        .await
    );
    assert_eq!(sink.state.seen().len(), 6);

    // Still disabled after a restart.
    engine.shutdown().await;
    let engine = open(dir.path()).await;
    let stored = engine.subscription(&id).unwrap();
    assert_eq!(stored.disabled(), Some(why.as_str()));
    engine
        .outbox()
        .enqueue(vec![(id.clone(), event(6))])
        .await
        .unwrap();
    assert!(
        wait_until(PATIENCE, || engine.dead_letters(None, 100).unwrap().len()
            == 7)
        .await
    );
    assert_eq!(sink.state.seen().len(), 6);

    // Storing it again (as a PUT does, even with the entry still in `config`) enables it.
    engine.put_subscription((*stored).clone()).await.unwrap();
    let enabled = engine.subscription(&id).unwrap();
    assert_eq!(enabled.disabled(), None);
    assert_eq!(enabled.config, None);
    engine
        .outbox()
        .enqueue(vec![(id.clone(), event(7))])
        .await
        .unwrap();
    assert!(wait_until(PATIENCE, || sink.state.delivered_ids() == ["e7"]).await);
    engine.shutdown().await;
}

/// Webhook spec 3.2: "Clients using the URI Query Parameter method SHOULD also send a
/// Cache-Control header containing the \"no-store\" option."
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_token_in_the_query_is_sent_with_cache_control_no_store() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let sink = TestSink::start(|_, _, _| Reply::ok()).await;
    let engine = open(dir.path()).await;
    let with_token = format!("{}?p=q&access_token=mF_9.B5f-4.1JqM", sink.url());
    engine
        .put_subscription(subscription("token", &with_token))
        .await
        .unwrap();
    engine
        .put_subscription(subscription("plain", &sink.url()))
        .await
        .unwrap();
    engine
        .outbox()
        .enqueue(vec![
            (SubscriptionId::new("token"), event(1)),
            (SubscriptionId::new("plain"), event(2)),
        ])
        .await
        .unwrap();
    assert!(wait_until(PATIENCE, || sink.state.delivered().len() == 2).await);
    for seen in sink.state.seen() {
        let id = seen.event.as_ref().unwrap().id().to_owned();
        let cache_control = seen.headers.get("cache-control");
        match id.as_str() {
            "e1" => assert_eq!(cache_control.unwrap(), "no-store"),
            _ => assert_eq!(cache_control, None),
        }
    }
    engine.shutdown().await;
}

/// A sink that trips the worker once: it refuses the event `poison` for good, and the first
/// time after that the worker asks for its description (to write the dead letter), it panics,
/// as a bug in the worker itself would.
struct TripOnce {
    armed: std::sync::atomic::AtomicBool,
    tripped: std::sync::atomic::AtomicBool,
    delivered: std::sync::Mutex<Vec<String>>,
}

impl delivery::sink::Sink for TripOnce {
    fn send<'a>(&'a self, event: &'a cloudevent::Event) -> delivery::sink::SendFuture<'a> {
        use std::sync::atomic::Ordering;
        Box::pin(async move {
            if event.id() == "poison" {
                if !self.tripped.load(Ordering::SeqCst) {
                    self.armed.store(true, Ordering::SeqCst);
                }
                return delivery::sink::SendOutcome::Permanent {
                    reason: "no".into(),
                    status: None,
                };
            }
            self.delivered.lock().unwrap().push(event.id().to_owned());
            delivery::sink::SendOutcome::Delivered
        })
    }

    fn describe(&self) -> &str {
        use std::sync::atomic::Ordering;
        if self.armed.swap(false, Ordering::SeqCst) {
            self.tripped.store(true, Ordering::SeqCst);
            panic!("a bug in the delivery worker");
        }
        "trip://once"
    }
}

struct TripFactory(std::sync::Arc<TripOnce>);

impl delivery::sink::SinkFactory for TripFactory {
    fn create(
        &self,
        _: &delivery::Subscription,
    ) -> Result<std::sync::Arc<dyn delivery::sink::Sink>, delivery::sink::SinkError> {
        Ok(self.0.clone())
    }
}

/// A worker that panics is replaced by a fresh one: the event it had in hand is dead-lettered
/// by its successor, and later events are delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_worker_is_restarted_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let sink = std::sync::Arc::new(TripOnce {
        armed: false.into(),
        tripped: false.into(),
        delivered: Default::default(),
    });
    let mut sinks = delivery::sink::SinkRegistry::new();
    sinks.register("trip", std::sync::Arc::new(TripFactory(sink.clone())));
    let engine = delivery::Delivery::open(dir.path(), sinks).await.unwrap();
    engine
        .put_subscription(subscription("s", "trip://once"))
        .await
        .unwrap();
    let id = SubscriptionId::new("s");
    let mut poison = event(1);
    poison.set_id("poison").unwrap();
    engine
        .outbox()
        .enqueue(vec![(id.clone(), poison)])
        .await
        .unwrap();
    assert!(
        wait_until(PATIENCE, || sink
            .tripped
            .load(std::sync::atomic::Ordering::SeqCst))
        .await,
        "the worker never tripped"
    );
    let mut good = event(2);
    good.set_id("good").unwrap();
    engine
        .outbox()
        .enqueue(vec![(id.clone(), good)])
        .await
        .unwrap();
    assert!(
        wait_until(PATIENCE, || engine
            .dead_letters(Some(&id), 10)
            .unwrap()
            .len()
            == 1
            && sink.delivered.lock().unwrap().contains(&"good".to_owned()))
        .await,
        "dead letters {:?}, delivered {:?}",
        engine.dead_letters(Some(&id), 10).unwrap(),
        sink.delivered.lock().unwrap()
    );
    assert_eq!(
        engine.dead_letters(Some(&id), 10).unwrap()[0].event.id(),
        "poison"
    );
    // The sink took "good" before the worker recorded it: its acknowledgement follows.
    assert!(wait_until(PATIENCE, || engine.pending(Some(&id)) == 0).await);
    let ready = engine.readiness().await;
    assert!(ready.iter().all(|(_, r)| r.is_ok()), "{ready:?}");
    engine.shutdown().await;
}
