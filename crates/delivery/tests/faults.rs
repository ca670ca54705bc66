//! The store under faults: a full disk refuses writes (transiently, nothing acknowledged), and
//! the engine takes writes again once space is freed, without a restart, keeping everything it
//! had accepted. Big dead-letter queues are replayed and purged in steps.

mod support;

use std::time::Duration;

use delivery::{DeadLetterSelector, SubscriptionId};
use support::*;
use test_support::SmallDisk;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_writes_then_the_store_recovers_without_restart() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    let Some(disk) = SmallDisk::mount(dir.path(), "32m") else {
        eprintln!("SKIPPED: cannot mount a tmpfs here (needs root)");
        return;
    };
    let state = disk.path().join("state");
    // A sink that is down: everything accepted stays queued on the small disk.
    let addr = free_addr().await;
    let engine = open(&state).await;
    engine
        .put_subscription(subscription("s", &format!("http://{addr}/hook")))
        .await
        .unwrap();
    let id = SubscriptionId::new("s");
    let mut accepted = 0usize;
    let mut next = 0usize;
    let mut enqueue = |n: usize| {
        let batch: Vec<_> = (next..next + n).map(|i| (id.clone(), event(i))).collect();
        next += n;
        batch
    };
    for _ in 0..5 {
        accepted += engine.outbox().enqueue(enqueue(20)).await.unwrap();
    }
    let filler = disk.fill();

    // Writes fail as the file needs to grow: transient errors, never an acknowledgement.
    let mut refused = None;
    for _ in 0..2000 {
        match engine.outbox().enqueue(enqueue(20)).await {
            Ok(n) => accepted += n,
            Err(e) => {
                refused = Some(e);
                break;
            }
        }
    }
    let refused = refused.expect("a full disk refuses writes");
    assert!(refused.is_transient(), "{refused}");
    let readiness = engine.readiness().await;
    assert!(
        readiness
            .iter()
            .any(|(name, r)| name == "store" && r.is_err()),
        "{readiness:?}"
    );

    // Space freed: the store reopens by itself and takes writes again.
    std::fs::remove_file(filler).unwrap();
    let mut recovered = false;
    for _ in 0..100 {
        match engine.outbox().enqueue(enqueue(1)).await {
            Ok(n) => {
                accepted += n;
                recovered = true;
                break;
            }
            Err(e) => {
                assert!(e.is_transient(), "{e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    assert!(
        recovered,
        "the store took no write within 10 s of the disk freeing up"
    );
    let readiness = engine.readiness().await;
    assert!(readiness.iter().all(|(_, r)| r.is_ok()), "{readiness:?}");
    // Everything acknowledged before, during and after the fault is still queued.
    assert_eq!(engine.pending(Some(&id)), accepted as u64);
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_dead_letter_queues_are_replayed_and_purged_in_steps() {
    init_tracing();
    let dir = tempfile::tempdir().unwrap();
    // Every event is refused for good: 1300 dead letters (more than two steps' worth).
    let sink = TestSink::start(|_, _, _| Reply::status(400)).await;
    let engine = open(dir.path()).await;
    engine
        .put_subscription(subscription("s", &sink.url()))
        .await
        .unwrap();
    let id = SubscriptionId::new("s");
    let total = 1300;
    for chunk in (0..total).collect::<Vec<_>>().chunks(100) {
        let batch = chunk.iter().map(|&i| (id.clone(), event(i))).collect();
        engine.outbox().enqueue(batch).await.unwrap();
    }
    assert!(
        wait_until(PATIENCE, || engine
            .dead_letters(Some(&id), usize::MAX)
            .unwrap()
            .len()
            == total)
        .await
    );
    // Replay them all (they fail again and come back as new letters).
    let replayed = engine
        .replay_dead_letters(DeadLetterSelector::Subscription(id.clone()))
        .await
        .unwrap();
    assert_eq!(replayed, total);
    assert!(
        wait_until(PATIENCE, || engine
            .dead_letters(Some(&id), usize::MAX)
            .unwrap()
            .len()
            == total)
        .await
    );
    let purged = engine
        .purge_dead_letters(DeadLetterSelector::All)
        .await
        .unwrap();
    assert_eq!(purged, total);
    assert!(engine.dead_letters(None, usize::MAX).unwrap().is_empty());
    engine.shutdown().await;
}
