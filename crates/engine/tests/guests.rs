//! Real guest components, compiled from source, run through the engine: good handlers,
//! failing handlers, and hostile ones, each followed by a good event on the same engine.

mod support;

use cloudevent::Data;
use engine::{
    AttributeValue, CollectingPublisher, DirGrant, ErrorKind, Event, HandleError, Handler,
    Publisher,
};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{engine, ev, load, relaxed};

fn collector() -> Arc<CollectingPublisher> {
    Arc::new(CollectingPublisher::default())
}

fn no_outputs() -> Arc<dyn Publisher> {
    Arc::new(CollectingPublisher::default())
}

/// A good event still works on `handler` (the engine keeps serving after a bad one).
async fn still_serves(handler: &Handler) {
    let mut e = ev("config");
    e.set_id("after-bad").unwrap();
    let out = handler
        .handle(e, no_outputs())
        .await
        .expect("good event after a bad one");
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].id(), "after-bad");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn echo_returns_the_event_unchanged() {
    let engine = engine();
    let echo = load(&engine, "guest_echo", relaxed());
    let e = Event::builder()
        .id("42")
        .source("/src")
        .ty("com.example.ping")
        .subject("sub")
        .time("2026-11-27T20:00:00Z".parse().unwrap())
        .data_with_type("text/plain", Data::binary(&b"hello"[..]))
        .extension("seq", 7)
        .extension("flag", true)
        .extension("bin", AttributeValue::Binary(vec![0, 255]))
        .extension("link", AttributeValue::Uri("https://example.com/x".into()))
        .build()
        .unwrap();
    let out = echo.handle(e.clone(), no_outputs()).await.unwrap();
    assert_eq!(out, vec![e]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_transform_parses_and_emits_json() {
    let engine = engine();
    let h = load(&engine, "guest_behaviours", relaxed());
    let mut e = ev("json.transform");
    e.set_data(
        Some("application/json".into()),
        Some(Data::binary(&br#"{"name":"ada","qty":21}"#[..])),
    )
    .unwrap();
    let out = h.handle(e, no_outputs()).await.unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].ty(), "json.transformed");
    assert_eq!(out[0].subject(), Some("1"));
    assert_eq!(out[0].datacontenttype(), Some("application/json"));
    let v: serde_json::Value = serde_json::from_slice(out[0].data().unwrap().as_bytes()).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"greeting": "hello ada", "double": 42})
    );
    assert!(!out[0].id().is_empty() && out[0].id() != "1", "a fresh id");

    // Malformed JSON is the handler's permanent error, not a trap.
    let mut bad = ev("json.transform");
    bad.set_data(None, Some(Data::binary(&b"{"[..]))).unwrap();
    match h.handle(bad, no_outputs()).await {
        Err(HandleError::Handler {
            kind: ErrorKind::Permanent,
            message,
            ..
        }) => {
            assert!(message.contains("JSON"), "{message}")
        }
        other => panic!("expected a permanent handler error, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_returns_three_events() {
    let engine = engine();
    let h = load(&engine, "guest_behaviours", relaxed());
    let out = h.handle(ev("fanout"), no_outputs()).await.unwrap();
    let subjects: Vec<_> = out.iter().map(|e| e.subject().unwrap()).collect();
    assert_eq!(subjects, ["0", "1", "2"]);
    assert_eq!(out[2].extension("index"), Some(&AttributeValue::Integer(2)));
    let ids: std::collections::HashSet<_> = out.iter().map(|e| e.id()).collect();
    assert_eq!(ids.len(), 3, "distinct ids");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_reaches_declared_outputs_only() {
    let engine = engine();
    let mut config = relaxed();
    config.outputs.insert("audit".into());
    let h = load(&engine, "guest_behaviours", config);
    let publisher = collector();
    let out = h.handle(ev("publish"), publisher.clone()).await.unwrap();
    let published = publisher.take();
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].0, "audit");
    assert_eq!(published[0].1.ty(), "audited");
    assert_eq!(
        out[0].data().map(|d| d.as_bytes()),
        Some(&b"unknown-output refused: true"[..])
    );

    // Without the output declared, the guest's `?` turns the refusal into a permanent error.
    let h = load(&engine, "guest_behaviours", relaxed());
    let publisher = collector();
    match h.handle(ev("publish"), publisher.clone()).await {
        Err(HandleError::Handler {
            kind: ErrorKind::Permanent,
            message,
            ..
        }) => {
            assert!(message.contains("unknown output `audit`"), "{message}")
        }
        other => panic!("expected a permanent error, got {other:?}"),
    }
    assert!(publisher.take().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn handler_errors_keep_their_kind() {
    let engine = engine();
    let h = load(&engine, "guest_behaviours", relaxed());
    let err = h
        .handle(ev("fail.transient"), no_outputs())
        .await
        .unwrap_err();
    assert_eq!(
        err,
        HandleError::Handler {
            component: "guest_behaviours".into(),
            kind: ErrorKind::Transient,
            message: "the database is down, try later".into()
        }
    );
    assert!(err.is_retryable());
    still_serves(&h).await;
    let err = h
        .handle(ev("fail.permanent"), no_outputs())
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            HandleError::Handler {
                kind: ErrorKind::Permanent,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(!err.is_retryable());
    still_serves(&h).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panic_is_a_trap_for_that_event_only() {
    let engine = engine();
    let h = load(&engine, "guest_behaviours", relaxed());
    match h.handle(ev("panic"), no_outputs()).await {
        Err(HandleError::Trap { component, .. }) => assert_eq!(component, "guest_behaviours"),
        other => panic!("expected a trap, got {other:?}"),
    }
    still_serves(&h).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn infinite_loop_is_stopped_by_the_deadline() {
    let engine = engine();
    let mut config = relaxed();
    config.limits.deadline = Duration::from_millis(300);
    let h = load(&engine, "guest_behaviours", config);
    let started = Instant::now();
    let err = h.handle(ev("loop"), no_outputs()).await.unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, HandleError::Timeout { .. }), "{err:?}");
    assert!(
        took >= Duration::from_millis(300),
        "stopped too early: {took:?}"
    );
    assert!(took < Duration::from_secs(20), "stopped too late: {took:?}");
    // The deadline is per event: the same handler serves quick events within it.
    still_serves(&h).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_bomb_is_stopped_by_the_cap() {
    let engine = engine();
    let mut config = relaxed();
    config.limits.max_memory_bytes = 16 << 20;
    let h = load(&engine, "guest_behaviours", config);
    let err = h.handle(ev("membomb"), no_outputs()).await.unwrap_err();
    assert_eq!(
        err,
        HandleError::OutOfMemory {
            component: "guest_behaviours".into(),
            limit_bytes: 16 << 20
        }
    );
    still_serves(&h).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn files_are_denied_unless_granted() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hello.txt"), "granted content").unwrap();
    let engine = engine();
    let mut read = ev("readfile");
    read.set_subject(Some("/data/hello.txt".into())).unwrap();

    let denied = load(&engine, "guest_behaviours", relaxed());
    match denied.handle(read.clone(), no_outputs()).await {
        Err(HandleError::Handler {
            kind: ErrorKind::Permanent,
            ..
        }) => {}
        other => panic!("expected the read to fail, got {other:?}"),
    }
    // Not even the host's own files through a relative or absolute path.
    let mut host_file = ev("readfile");
    host_file
        .set_subject(Some(dir.path().join("hello.txt").display().to_string()))
        .unwrap();
    assert!(denied.handle(host_file, no_outputs()).await.is_err());
    still_serves(&denied).await;

    let mut config = relaxed();
    config.grants.dirs.push(DirGrant {
        host: dir.path().to_owned(),
        guest: "/data".into(),
    });
    let granted = load(&engine, "guest_behaviours", config);
    let out = granted.handle(read, no_outputs()).await.unwrap();
    assert_eq!(
        out[0].data().map(|d| d.as_bytes()),
        Some(&b"granted content"[..])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn environment_and_variables_are_explicit() {
    // SAFETY: set before any thread of this test reads the environment; the guest must not
    // see it anyway.
    unsafe { std::env::set_var("SPINDLE_GUEST_VAR", "host secret") };
    let engine = engine();
    let plain = load(&engine, "guest_behaviours", relaxed());
    let out = plain.handle(ev("env"), no_outputs()).await.unwrap();
    assert_eq!(out[0].data().map(|d| d.as_bytes()), Some(&b"<unset>"[..]));
    let out = plain.handle(ev("config"), no_outputs()).await.unwrap();
    assert_eq!(out[0].data().map(|d| d.as_bytes()), Some(&b"<none>"[..]));

    let mut config = relaxed();
    config
        .grants
        .env
        .push(("SPINDLE_GUEST_VAR".into(), "granted".into()));
    config.variables.insert("greeting".into(), "bonjour".into());
    let granted = load(&engine, "guest_behaviours", config);
    let out = granted.handle(ev("env"), no_outputs()).await.unwrap();
    assert_eq!(out[0].data().map(|d| d.as_bytes()), Some(&b"granted"[..]));
    let out = granted.handle(ev("config"), no_outputs()).await.unwrap();
    assert_eq!(out[0].data().map(|d| d.as_bytes()), Some(&b"bonjour"[..]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_component_answers_busy_at_once() {
    let engine = engine();
    let mut config = relaxed();
    config.limits.max_concurrency = 1;
    config.limits.deadline = Duration::from_secs(3);
    let h = load(&engine, "guest_behaviours", config);
    let looping = tokio::spawn({
        let h = h.clone();
        async move { h.handle(ev("loop"), no_outputs()).await }
    });
    let waited = Instant::now();
    while h.available_slots() > 0 {
        assert!(
            waited.elapsed() < Duration::from_secs(30),
            "loop never started"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let started = Instant::now();
    let err = h.handle(ev("config"), no_outputs()).await.unwrap_err();
    assert!(matches!(err, HandleError::Busy { .. }), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "busy must not wait"
    );
    assert!(err.is_retryable());
    assert!(matches!(
        looping.await.unwrap(),
        Err(HandleError::Timeout { .. })
    ));
    // The slot is free again.
    assert_eq!(h.available_slots(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_gets_a_fresh_instance() {
    let engine = engine();
    let h = load(&engine, "guest_behaviours", relaxed());
    for _ in 0..5 {
        let out = h.handle(ev("counter"), no_outputs()).await.unwrap();
        assert_eq!(
            out[0].data().map(|d| d.as_bytes()),
            Some(&b"1"[..]),
            "global state leaked"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_written_by_one_event_is_pristine_for_the_next() {
    // "scribble" dirties 512 KiB of static memory, small enough for the next event to run in
    // the same (recycled) store; "scribble.grow" dirties 2 MiB it grows the memory for: more
    // than a pool slot resets in place, so both the in-place reset and the decommit of the
    // rest must leave nothing behind.
    let engine = engine();
    let h = load(&engine, "guest_behaviours", relaxed());
    for i in 0..12 {
        let kind = if i % 3 == 2 {
            "scribble.grow"
        } else {
            "scribble"
        };
        let out = h.handle(ev(kind), no_outputs()).await.unwrap();
        assert_eq!(
            out[0].data().map(|d| d.as_bytes()),
            Some(&b"0"[..]),
            "pages written by an earlier event leaked ({kind}, event {i})"
        );
        // An event that touches little in between, reusing the same slot.
        let out = h.handle(ev("counter"), no_outputs()).await.unwrap();
        assert_eq!(out[0].data().map(|d| d.as_bytes()), Some(&b"1"[..]));
    }
}

/// Stores are recycled across events (each event in a fresh instance): the finished instances
/// they keep use the pool slots the engine adds for them, never the slots live events need,
/// and an event after a trap in a recycled store runs in a store of its own, pristine.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recycled_stores_fit_the_pool_and_stay_isolated() {
    for recycled_instances in [0, 1, 3] {
        let engine = engine::Engine::new(engine::EngineConfig {
            pool_size: 1,
            recycled_instances,
            ..engine::EngineConfig::default()
        })
        .unwrap();
        let mut config = relaxed();
        config.limits.max_concurrency = 1;
        let h = load(&engine, "guest_behaviours", config);
        for i in 0..20 {
            let kind = if i % 7 == 6 { "panic" } else { "counter" };
            match h.handle(ev(kind), no_outputs()).await {
                Ok(out) => assert_eq!(
                    out[0].data().map(|d| d.as_bytes()),
                    Some(&b"1"[..]),
                    "state leaked (recycled_instances {recycled_instances}, event {i})"
                ),
                Err(HandleError::Trap { .. }) if kind == "panic" => {}
                Err(e) => panic!("event {i} (recycled_instances {recycled_instances}): {e:?}"),
            }
        }
    }
}

/// The resident set of this process, in KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// A hostile guest that publishes or returns more events than one event may, or floods the
/// log, fails only its own event (or, for logs, loses the excess): the next event is served
/// and the host's memory stays bounded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floods_fail_their_own_event_and_memory_stays_bounded() {
    let engine = engine();
    let mut config = relaxed();
    config.outputs.insert("audit".into());
    let h = load(&engine, "guest_behaviours", config);
    let before = rss_kib();
    for _ in 0..3 {
        let publisher = collector();
        match h.handle(ev("flood.publish"), publisher.clone()).await {
            Err(HandleError::LimitExceeded { message, .. }) => {
                assert!(message.contains("published more than"), "{message}")
            }
            other => panic!("expected a limit error, got {other:?}"),
        }
        assert_eq!(publisher.take().len(), engine::budget::MAX_OUTPUT_EVENTS);
        match h.handle(ev("flood.results"), no_outputs()).await {
            Err(HandleError::LimitExceeded { message, .. }) => {
                assert!(message.contains("returned 5000 events"), "{message}")
            }
            other => panic!("expected a limit error, got {other:?}"),
        }
        // Logs over the cap are dropped, not fatal: the event itself succeeds.
        let out = h.handle(ev("flood.log"), no_outputs()).await.unwrap();
        assert_eq!(out.len(), 1);
        still_serves(&h).await;
    }
    let grown = rss_kib().saturating_sub(before);
    assert!(grown < 256 << 10, "RSS grew by {grown} KiB");
}
