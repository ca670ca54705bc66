//! The live tap: what `spindle events tail` shows. Every handled event and every delivery
//! attempt is offered to the tap with its outcome and latency; whoever watches (the admin
//! API's `/events/tail` stream) gets a copy.
//!
//! Watching never slows the app: records go through a bounded broadcast channel whose send
//! never waits, a watcher that falls behind loses the oldest records (and is told how many),
//! and with nobody watching a record is not even built ([`Tap::offer`] takes a closure).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use cloudevent::Event;
use tokio::sync::{broadcast, watch};

use crate::model::SubscriptionId;
use crate::sink::SendOutcome;

/// Records a watcher may fall behind by before it loses the oldest.
pub const CAPACITY: usize = 1024;
/// Watchers at once; one more is refused (each holds a connection and a task).
pub const MAX_WATCHERS: usize = 16;

/// Where in the app a record was taken.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stage {
    /// A component handled the event.
    Handled {
        /// The component.
        component: String,
    },
    /// One attempt to deliver the event to a subscription's (or output's) sink.
    Delivery {
        /// The subscription (`output:<component>:<name>` for an output).
        subscription: SubscriptionId,
    },
}

/// One thing that happened to one event.
#[derive(Debug, Clone)]
pub struct Record {
    /// When it was finished.
    pub at: SystemTime,
    /// Where.
    pub stage: Stage,
    /// `ok` / `error` for handling; `delivered`, `retry`, `refused` or `gone` for a delivery.
    pub outcome: &'static str,
    /// The error or the reason of a failed attempt, if any.
    pub detail: Option<String>,
    /// How long the handler or the send took.
    pub latency: Duration,
    /// The event (shared, not copied, where the caller already shares it).
    pub event: Arc<Event>,
}

impl Record {
    /// A delivery attempt's record.
    pub fn delivery(
        subscription: &SubscriptionId,
        event: Arc<Event>,
        outcome: &SendOutcome,
        latency: Duration,
    ) -> Self {
        let (name, detail) = match outcome {
            SendOutcome::Delivered => ("delivered", None),
            SendOutcome::Retry { reason, .. } => ("retry", Some(reason.clone())),
            SendOutcome::Permanent { reason, .. } => ("refused", Some(reason.clone())),
            SendOutcome::Gone { reason, .. } => ("gone", Some(reason.clone())),
        };
        Record {
            at: SystemTime::now(),
            stage: Stage::Delivery {
                subscription: subscription.clone(),
            },
            outcome: name,
            detail,
            latency,
            event,
        }
    }
}

/// The app's tap: see the module docs.
#[derive(Debug)]
pub struct Tap {
    records: broadcast::Sender<Arc<Record>>,
    watchers: Arc<AtomicUsize>,
    /// Bumped to end every current watcher (the app is stopping).
    closing: watch::Sender<u64>,
}

/// One watcher's view of the tap; ends when dropped.
#[derive(Debug)]
pub struct Watcher {
    /// The records, in order; `Lagged(n)` when `n` were lost to falling behind.
    pub records: broadcast::Receiver<Arc<Record>>,
    /// Changes when the app stops: then the watcher should end.
    pub closing: watch::Receiver<u64>,
    watchers: Arc<AtomicUsize>,
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.watchers.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Default for Tap {
    fn default() -> Self {
        Tap {
            records: broadcast::channel(CAPACITY).0,
            watchers: Arc::new(AtomicUsize::new(0)),
            closing: watch::channel(0).0,
        }
    }
}

impl Tap {
    /// Whether anyone watches (so a record is worth building). One atomic load: it is asked
    /// for every event and every delivery attempt (the channel's own receiver count would
    /// take its lock).
    pub fn is_watched(&self) -> bool {
        self.watchers.load(Ordering::Acquire) > 0
    }

    /// Offers a record to the watchers, building it only if there are any. Never waits.
    pub fn offer(&self, record: impl FnOnce() -> Record) {
        if self.is_watched() {
            let _ = self.records.send(Arc::new(record()));
        }
    }

    /// Starts watching, or `None` when [`MAX_WATCHERS`] already do.
    pub fn watch(&self) -> Option<Watcher> {
        let taken = self
            .watchers
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < MAX_WATCHERS).then_some(n + 1)
            });
        taken.ok()?;
        Some(Watcher {
            records: self.records.subscribe(),
            closing: self.closing.subscribe(),
            watchers: self.watchers.clone(),
        })
    }

    /// Ends every current watcher (the app is stopping); later ones work again.
    pub fn close_watchers(&self) {
        self.closing.send_modify(|n| *n += 1);
    }
}

/// The process's tap (one app per process, like its metrics).
pub fn global() -> &'static Tap {
    static TAP: OnceLock<Tap> = OnceLock::new();
    TAP.get_or_init(Tap::default)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: &str) -> Arc<Event> {
        Arc::new(
            Event::builder()
                .id(id)
                .source("/t")
                .ty("t")
                .build()
                .unwrap(),
        )
    }

    fn record(id: &str) -> Record {
        Record::delivery(
            &SubscriptionId::from("s"),
            event(id),
            &SendOutcome::Delivered,
            Duration::ZERO,
        )
    }

    #[test]
    fn unwatched_records_are_not_built() {
        let tap = Tap::default();
        tap.offer(|| panic!("built with nobody watching"));
    }

    #[tokio::test]
    async fn a_slow_watcher_loses_the_oldest_and_is_told_how_many() {
        let tap = Tap::default();
        let mut w = tap.watch().unwrap();
        for i in 0..CAPACITY + 10 {
            tap.offer(|| record(&i.to_string()));
        }
        match w.records.recv().await {
            Err(broadcast::error::RecvError::Lagged(n)) => assert_eq!(n, 10),
            other => panic!("{other:?}"),
        }
        assert_eq!(w.records.recv().await.unwrap().event.id(), "10");
    }

    #[test]
    fn watchers_are_capped_and_released() {
        let tap = Tap::default();
        let all: Vec<_> = (0..MAX_WATCHERS).map(|_| tap.watch().unwrap()).collect();
        assert!(tap.watch().is_none());
        drop(all);
        assert!(tap.watch().is_some());
    }
}
