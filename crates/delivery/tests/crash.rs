//! Crash safety: a child process accepts and delivers events, then aborts (no shutdown, no
//! destructors, like `kill -9`). Reopening the state directory must deliver every event the
//! child acknowledged that its sink had not already taken: redeliveries allowed, losses not.

use std::collections::HashSet;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cloudevent::Event;
use delivery::{
    Delivery, Protocol, SendFuture, SendOutcome, Sink, SinkError, SinkFactory, SinkRegistry,
    Subscription, SubscriptionId,
};

const CHILD_ENV: &str = "SPINDLE_DELIVERY_CRASH_CHILD";

/// A sink that records (and, in the child, prints) what it took, slowly enough that a crash
/// catches deliveries in flight.
struct Recorder {
    print: bool,
    seen: Arc<Mutex<HashSet<String>>>,
}

impl Sink for Recorder {
    fn send<'a>(&'a self, event: &'a Event) -> SendFuture<'a> {
        Box::pin(async move {
            tokio::time::sleep(Duration::from_millis(2)).await;
            if self.print {
                println!("DELIVERED {}", event.id());
            }
            self.seen.lock().unwrap().insert(event.id().to_owned());
            SendOutcome::Delivered
        })
    }

    fn describe(&self) -> &str {
        "rec://"
    }
}

struct RecorderFactory(bool, Arc<Mutex<HashSet<String>>>);

impl SinkFactory for RecorderFactory {
    fn create(&self, _: &Subscription) -> Result<Arc<dyn Sink>, SinkError> {
        Ok(Arc::new(Recorder {
            print: self.0,
            seen: self.1.clone(),
        }))
    }
}

fn registry(print: bool, seen: Arc<Mutex<HashSet<String>>>) -> SinkRegistry {
    let mut sinks = SinkRegistry::new();
    sinks.register("rec", Arc::new(RecorderFactory(print, seen)));
    sinks
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn child(dir: &str) {
    runtime().block_on(async {
        let seen = Arc::new(Mutex::new(HashSet::new()));
        let engine = Delivery::open(dir, registry(true, seen)).await.unwrap();
        let mut sub = Subscription::new("crash", Protocol::Http, "rec://sink");
        sub.delivery.max_in_flight = 4;
        engine.put_subscription(sub).await.unwrap();
        let id = SubscriptionId::new("crash");
        for p in 0..16 {
            let (outbox, id) = (engine.outbox(), id.clone());
            tokio::spawn(async move {
                for n in 0.. {
                    let event = Event::builder()
                        .id(format!("{p}-{n}"))
                        .source("/crash")
                        .ty("t")
                        .build()
                        .unwrap();
                    outbox.enqueue(vec![(id.clone(), event)]).await.unwrap();
                    println!("ACK {p}-{n}");
                }
            });
        }
        tokio::time::sleep(Duration::from_millis(400)).await;
        std::process::abort();
    });
}

#[test]
fn abort_loses_no_acknowledged_event() {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        child(&dir);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "abort_loses_no_acknowledged_event",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir.path())
        .output()
        .unwrap();
    assert!(!output.status.success(), "the child must die by abort");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let acked: HashSet<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("ACK "))
        .collect();
    let delivered_before: HashSet<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("DELIVERED "))
        .collect();
    assert!(
        acked.len() >= 10,
        "the child accepted too little: {}",
        acked.len()
    );

    let seen = Arc::new(Mutex::new(HashSet::new()));
    runtime().block_on(async {
        let engine = Delivery::open(dir.path(), registry(false, seen.clone()))
            .await
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        while engine.pending(None) > 0 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(engine.pending(None), 0);
        engine.shutdown().await;
    });
    let seen = seen.lock().unwrap();
    let lost: Vec<&&str> = acked
        .iter()
        .filter(|id| !delivered_before.contains(**id) && !seen.contains(**id))
        .collect();
    assert!(
        lost.is_empty(),
        "lost {} acknowledged events: {lost:?}",
        lost.len()
    );
    eprintln!(
        "acked {}, delivered before the crash {}, after {}",
        acked.len(),
        delivered_before.len(),
        seen.len()
    );
}
