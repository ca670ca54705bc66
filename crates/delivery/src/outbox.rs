//! Durable acceptance: the door through which every event bound for a subscription enters.

use std::sync::Arc;

use cloudevent::Event;

use crate::committer::Committer;
use crate::error::Error;
use crate::model::SubscriptionId;
use crate::store::{self, EntryMeta};
use crate::worker::Workers;

/// A handle to accept events for delivery. Cheap to clone; hand one to every trigger.
#[derive(Clone)]
pub struct Outbox {
    pub(crate) committer: Committer,
    pub(crate) workers: Arc<Workers>,
}

impl Outbox {
    /// Durably queues each event for its subscription, resolving once the queue entries are
    /// fsynced: only then may the caller acknowledge the event upstream (HTTP 202, broker
    /// ack). Concurrent calls share one transaction and one fsync (group commit).
    ///
    /// Returns how many deliveries were queued: entries for subscriptions that do not exist
    /// (any more) are skipped, as deleting a subscription drops its queue anyway. Cancelling
    /// the future does not cancel the write.
    pub async fn enqueue(&self, deliveries: Vec<(SubscriptionId, Event)>) -> Result<usize, Error> {
        if deliveries.is_empty() {
            return Ok(0);
        }
        // Encoding happens here, on the callers' tasks, so the committer thread only writes.
        let now = store::now_ms();
        let meta = EntryMeta {
            attempts: 0,
            first_ms: now,
            next_ms: now,
        };
        let rows: Vec<(SubscriptionId, Vec<u8>)> = deliveries
            .into_iter()
            .map(|(id, event)| {
                let value = store::encode_entry(meta, &cloudevent::json::encode(&event));
                (id, value)
            })
            .collect();
        let workers = self.workers.clone();
        let (accepted, _) = self
            .committer
            .execute_then(
                move |b| {
                    let mut accepted = 0;
                    let mut touched: Vec<String> = Vec::new();
                    for (id, value) in &rows {
                        if !b.subscription_exists(id.as_str())? {
                            tracing::debug!(subscription = %id, "no such subscription, not queued");
                            continue;
                        }
                        let seq = b.next_seq();
                        b.outbox.insert((id.as_str(), seq), value.as_slice())?;
                        accepted += 1;
                        if !touched.iter().any(|t| t == id.as_str()) {
                            touched.push(id.as_str().to_owned());
                        }
                    }
                    Ok((accepted, touched))
                },
                move |(_, touched)| workers.notify(touched.iter().map(String::as_str)),
            )
            .await?;
        Ok(accepted)
    }
}
