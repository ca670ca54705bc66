//! Where events go once they are in the app: to every subscription whose filters they pass,
//! and to the output bindings their component named. Everything goes through the delivery
//! engine's outbox, so an event is acknowledged upstream only once each of its onward
//! deliveries was sent (idle, healthy sinks get it directly) or is on disk (at-least-once,
//! nothing lost on a crash).
//!
//! A trigger collects what one request or message led to in a [`Deliveries`] and commits it
//! with one [`Deliveries::commit`] before acknowledging: concurrent commits share one fsync
//! (the outbox's group commit).

use std::sync::{Arc, RwLock};

use cloudevent::Event;
use delivery::{Delivery, SubscriptionId};

pub mod index;

pub use index::SubscriptionIndex;

/// The compiled subscriptions of one generation of the subscription set.
struct Matchers {
    generation: u64,
    index: SubscriptionIndex,
}

/// Matches events against the subscriptions and queues deliveries. Cheap to clone.
#[derive(Clone)]
pub struct Router {
    delivery: Arc<Delivery>,
    matchers: Arc<RwLock<Arc<Matchers>>>,
}

impl Router {
    /// A router over the subscriptions and outbox of `delivery`.
    pub fn new(delivery: Arc<Delivery>) -> Self {
        Router {
            delivery,
            matchers: Arc::new(RwLock::new(Arc::new(Matchers {
                generation: u64::MAX,
                index: SubscriptionIndex::default(),
            }))),
        }
    }

    /// The delivery engine behind this router.
    pub fn delivery(&self) -> &Arc<Delivery> {
        &self.delivery
    }

    /// An empty set of deliveries to fill for one request or message.
    pub fn deliveries(&self) -> Deliveries<'_> {
        Deliveries {
            router: self,
            matchers: None,
            excluded: None,
            queued: Vec::new(),
        }
    }

    /// The compiled subscriptions, rebuilt when the subscription set changed.
    fn matchers(&self) -> Arc<Matchers> {
        let generation = self.delivery.generation();
        {
            let current = self.matchers.read().unwrap_or_else(|e| e.into_inner());
            if current.generation == generation {
                return current.clone();
            }
        }
        let subscriptions = self.delivery.subscriptions();
        let index = SubscriptionIndex::build(
            subscriptions
                .iter()
                .map(|s| &**s)
                .filter(|s| !s.id.is_internal()),
        );
        let fresh = Arc::new(Matchers { generation, index });
        *self.matchers.write().unwrap_or_else(|e| e.into_inner()) = fresh.clone();
        fresh
    }
}

/// The onward deliveries one request or message led to, committed together.
pub struct Deliveries<'r> {
    router: &'r Router,
    matchers: Option<Arc<Matchers>>,
    excluded: Option<SubscriptionId>,
    queued: Vec<(SubscriptionId, Event)>,
}

impl Deliveries<'_> {
    /// Never matches events to `subscription`: what a subscriber produces does not go back
    /// to the subscription that fed it, which would loop forever.
    pub fn excluding(mut self, subscription: SubscriptionId) -> Self {
        self.excluded = Some(subscription);
        self
    }

    /// Queues `event` for every subscription it matches.
    pub fn matching(&mut self, event: &Event) {
        let router = self.router;
        let matchers = self.matchers.get_or_insert_with(|| router.matchers());
        let excluded = self.excluded.as_ref();
        let queued = &mut self.queued;
        matchers.index.matching(event, |id| {
            if excluded != Some(id) {
                queued.push((id.clone(), event.clone()));
            }
        });
    }

    /// Queues `event` for one output binding of `component`.
    pub fn output(&mut self, component: &str, output: &str, event: Event) {
        self.queued
            .push((SubscriptionId::output(component, output), event));
    }

    /// Takes over what `other` (of the same router) queued, after what this one holds.
    pub fn append(&mut self, mut other: Deliveries<'_>) {
        self.queued.append(&mut other.queued);
    }

    /// How many deliveries are queued so far.
    pub fn len(&self) -> usize {
        self.queued.len()
    }

    /// Drops what was queued after the first `len` deliveries (what a failed event led to).
    pub fn truncate(&mut self, len: usize) {
        self.queued.truncate(len);
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.queued.is_empty()
    }

    /// Hands every collected delivery to the outbox: sent directly to idle, healthy sinks,
    /// written durably (one group commit) otherwise. Returns once each is delivered or on
    /// disk: only then may the caller acknowledge upstream.
    pub async fn commit(self) -> Result<usize, delivery::Error> {
        if self.queued.is_empty() {
            return Ok(0);
        }
        let count = self.queued.len();
        let accepted = self.router.delivery.outbox().enqueue(self.queued).await?;
        if accepted < count {
            // A subscription was deleted between matching and the commit.
            tracing::debug!(
                queued = count,
                accepted,
                "some deliveries had no subscription any more"
            );
        }
        Ok(accepted)
    }
}
