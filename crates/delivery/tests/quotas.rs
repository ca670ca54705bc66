//! Quotas: a subscription's queue and dead letters, and the app's in all, are bounded; a
//! full one refuses new events (a transient error: 503 / nak upstream), never drops one, and
//! takes events again once it drains. Dead letters past their retention expire.

mod support;

use std::time::Duration;

use delivery::{DeadLetterSelector, Error, SubscriptionId};
use manifest::StoreLimits;
use support::*;

fn full(result: Result<usize, Error>) -> String {
    match result {
        Err(e @ Error::Full { .. }) => {
            assert!(e.is_transient());
            e.to_string()
        }
        other => panic!("expected a full queue, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_refuses_new_events_until_it_drains() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    // The sink fails (503) until told otherwise: events stay queued.
    let sink = TestSink::start(|_, _, _| Reply::status(503)).await;
    let engine = open(dir.path()).await;
    let mut sub = subscription("bounded", &sink.url());
    sub.delivery.max_queued_events = Some(10);
    engine.put_subscription(sub).await.unwrap();
    let other = subscription("other", &format!("http://{}/down", free_addr().await));
    engine.put_subscription(other).await.unwrap();
    let (id, other) = (SubscriptionId::new("bounded"), SubscriptionId::new("other"));

    for i in 0..10 {
        assert_eq!(
            engine
                .outbox()
                .enqueue(vec![(id.clone(), event(i))])
                .await
                .unwrap(),
            1
        );
    }
    assert_eq!(engine.usage(Some(&id)).queued, 10);
    let why = full(engine.outbox().enqueue(vec![(id.clone(), event(10))]).await);
    assert!(why.contains("bounded") && why.contains("10 of 10"), "{why}");
    // An event for both is refused whole: nothing written for either.
    full(
        engine
            .outbox()
            .enqueue(vec![(other.clone(), event(11)), (id.clone(), event(11))])
            .await,
    );
    assert_eq!(engine.pending(Some(&other)), 0);
    // Other subscriptions are not affected.
    assert_eq!(
        engine
            .outbox()
            .enqueue(vec![(other.clone(), event(12))])
            .await
            .unwrap(),
        1
    );

    // The sink recovers: the queue drains and takes events again.
    sink.set_behaviour(|_, _, _| Reply::ok());
    assert!(wait_until(PATIENCE, || engine.usage(Some(&id)).queued == 0).await);
    assert_eq!(
        engine
            .outbox()
            .enqueue(vec![(id.clone(), event(13))])
            .await
            .unwrap(),
        1
    );
    assert!(
        wait_until(PATIENCE, || sink
            .state
            .delivered_ids()
            .contains(&"e13".to_owned()))
        .await
    );
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_dead_letters_refuse_new_events_until_purged_and_expire_after_their_retention() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let sink = TestSink::start(|_, _, _| Reply::status(400)).await;
    let engine = open(dir.path()).await;
    let mut sub = subscription("s", &sink.url());
    sub.delivery.max_dead_letters = Some(3);
    engine.put_subscription(sub).await.unwrap();
    let id = SubscriptionId::new("s");
    for i in 0..3 {
        dead_letter_of_nth(&engine, &id, i).await;
    }
    let why = full(engine.outbox().enqueue(vec![(id.clone(), event(3))]).await);
    assert!(why.contains("dead letters"), "{why}");

    // Purging makes room.
    assert_eq!(
        engine
            .purge_dead_letters(DeadLetterSelector::One(id.clone(), first_seq(&engine, &id)))
            .await
            .unwrap(),
        1
    );
    assert_eq!(engine.usage(Some(&id)).dead, 2);
    dead_letter_of_nth(&engine, &id, 4).await;

    // Retention: letters older than it go.
    let mut sub = engine.subscription(&id).unwrap().as_ref().clone();
    sub.delivery.dead_letter_retention = Some(Duration::from_millis(1));
    engine.put_subscription(sub).await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert_eq!(engine.expire_dead_letters().await.unwrap(), 3);
    assert!(engine.dead_letters(Some(&id), 10).unwrap().is_empty());
    assert_eq!(engine.usage(Some(&id)).dead, 0);
    assert_eq!(engine.usage(Some(&id)).dead_bytes, 0);
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_apps_bounds_hold_across_subscriptions_and_usage_survives_a_restart() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let down = format!("http://{}/down", free_addr().await);
    let engine = open(dir.path()).await;
    engine.set_limits(StoreLimits {
        max_queued_events: Some(6),
        max_queued_bytes: None,
        max_dead_letters: None,
    });
    for name in ["a", "b"] {
        engine
            .put_subscription(subscription(name, &down))
            .await
            .unwrap();
    }
    let (a, b) = (SubscriptionId::new("a"), SubscriptionId::new("b"));
    for i in 0..3 {
        engine
            .outbox()
            .enqueue(vec![(a.clone(), event(i)), (b.clone(), event(i))])
            .await
            .unwrap();
    }
    let why = full(engine.outbox().enqueue(vec![(b.clone(), event(9))]).await);
    assert!(why.contains("the app's queued events"), "{why}");
    let before = engine.usage(None);
    assert_eq!(before.queued, 6);
    assert!(before.queued_bytes > 0);
    engine.shutdown().await;

    // Counted again from the store on open.
    let engine = open(dir.path()).await;
    assert_eq!(engine.usage(None), before);
    assert_eq!(engine.usage(Some(&a)).queued, 3);
    engine.shutdown().await;
}

/// Queues event `i` for `id` and waits until it is dead-lettered.
async fn dead_letter_of_nth(engine: &delivery::Delivery, id: &SubscriptionId, i: usize) {
    let before = engine.dead_letters(Some(id), 100).unwrap().len();
    engine
        .outbox()
        .enqueue(vec![(id.clone(), event(i))])
        .await
        .unwrap();
    assert!(
        wait_until(PATIENCE, || engine
            .dead_letters(Some(id), 100)
            .unwrap()
            .len()
            > before)
        .await
    );
}

fn first_seq(engine: &delivery::Delivery, id: &SubscriptionId) -> u64 {
    engine.dead_letters(Some(id), 1).unwrap()[0].seq
}
