//! The state store's own schema: a store written by the previous format (subscriptions kept
//! as the API's JSON, no schema version) is upgraded in place and keeps delivering; a store
//! from a newer Spindle is refused with a clear error instead of being misread.

mod support;

use delivery::{DB_FILE, Delivery, SinkRegistry, SubscriptionId};
use redb::{Database, ReadableDatabase, TableDefinition};
use support::*;

const SUBSCRIPTIONS: TableDefinition<&str, &[u8]> = TableDefinition::new("subscriptions");
const OUTBOX: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("outbox");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// An outbox value as schema 1 (and 2) lay it out: version 1, attempts, accepted-at and
/// next-attempt times in ms, then the event in the JSON format.
fn outbox_entry(event_json: &[u8]) -> Vec<u8> {
    let mut v = vec![1u8];
    v.extend_from_slice(&0u32.to_le_bytes());
    v.extend_from_slice(&1_700_000_000_000u64.to_le_bytes());
    v.extend_from_slice(&0u64.to_le_bytes());
    v.extend_from_slice(event_json);
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_of_the_previous_format_is_upgraded_and_delivers() {
    init_tracing();
    let sink = TestSink::start(|_, _, _| Reply::ok()).await;
    let dir = tempfile::tempdir().unwrap();
    {
        // Written the way the previous release wrote it.
        let db = Database::create(dir.path().join(DB_FILE)).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut subs = txn.open_table(SUBSCRIPTIONS).unwrap();
            let mut sub = subscription("old", &sink.url());
            sub.delivery.max_age = None;
            let api_json = serde_json::to_vec(&sub).unwrap();
            subs.insert("old", api_json.as_slice()).unwrap();
            let mut outbox = txn.open_table(OUTBOX).unwrap();
            let event = cloudevent::json::encode(&event(7));
            outbox
                .insert(("old", 1), outbox_entry(&event).as_slice())
                .unwrap();
            let mut meta = txn.open_table(META).unwrap();
            meta.insert("next_seq", 2).unwrap();
        }
        txn.commit().unwrap();
    }
    let engine = Delivery::open(dir.path(), SinkRegistry::with_defaults())
        .await
        .expect("the previous format opens");
    let id = SubscriptionId::new("old");
    let sub = engine.subscription(&id).expect("the subscription survived");
    assert_eq!(sub.sink, sink.url());
    assert_eq!(sub.delivery.max_age, None);
    assert!(wait_until(PATIENCE, || sink.state.delivered_ids() == ["e7"]).await);
    engine.shutdown().await;

    // Upgraded in place: the file now says so, and the subscription is no longer API JSON.
    let db = Database::open(dir.path().join(DB_FILE)).unwrap();
    let txn = db.begin_read().unwrap();
    let meta = txn.open_table(META).unwrap();
    assert_eq!(
        meta.get("schema_version").unwrap().map(|v| v.value()),
        Some(delivery::schema::SCHEMA_VERSION)
    );
    let subs = txn.open_table(SUBSCRIPTIONS).unwrap();
    let stored = subs.get("old").unwrap().unwrap();
    assert_ne!(stored.value()[0], b'{');
    drop((stored, subs, meta, txn, db));

    // And it opens again as it is.
    let engine = Delivery::open(dir.path(), SinkRegistry::with_defaults())
        .await
        .unwrap();
    assert!(engine.subscription(&id).is_some());
    engine.shutdown().await;
}

#[tokio::test]
async fn a_store_of_a_newer_spindle_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = Database::create(dir.path().join(DB_FILE)).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(META)
            .unwrap()
            .insert("schema_version", 99)
            .unwrap();
        txn.commit().unwrap();
    }
    let error = Delivery::open(dir.path(), SinkRegistry::with_defaults())
        .await
        .err()
        .expect("refused");
    let message = error.to_string();
    assert!(
        matches!(error, delivery::Error::NewerSchema { .. }),
        "{message}"
    );
    assert!(message.contains("schema version 99"), "{message}");
    assert!(message.contains("newer Spindle"), "{message}");
}
